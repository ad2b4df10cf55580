"""The emulated Movella DOT through bleak's public API on the Bumble backend: its control and
measurement characteristics byte for byte, then SensorLink end to end (decoded samples equal
the replayed ones, the µs clock wrapping mid-stream, forced drops as exactly counted gaps)."""

from __future__ import annotations

import asyncio
import statistics
import struct

import numpy as np
from bleak import BleakClient, BleakScanner

from hipsense.device.ble import scan_sensors
from hipsense.device.events import LinkEventKind
from hipsense.device.bumble_backend import VirtualRadio
from hipsense.device.decoders import make_decoder
from hipsense.device.decoders.movella_dot import (
    BATTERY_UUID,
    DEVICE_CONTROL_UUID,
    MEASUREMENT_CONTROL_UUID,
    MEDIUM_PAYLOAD_UUID,
    MOVELLA_COMPANY_ID,
    build_output_rate_control,
    parse_rate_quantities,
)
from hipsense.device.emulator import Fate, ImuRecording, MovellaDotEmulator
from hipsense.device.samples import GapReason
from tests.device.link.clocked import Collected, Stream, clocked_link, collect
from tests.device.link.conftest import run, wait_until

SPEED = 5.0
WRAP_US = 2**32


def _indices(stream: Stream, sensor: MovellaDotEmulator) -> list[int]:
    """Sample numbers since power-on, from the decoded (unwrapped) µs times."""
    us = np.rint(np.asarray(stream.sensor_time_s) * 1e6).astype(np.int64)
    first = int((int(us[0]) - sensor.clock_start_us) % WRAP_US)  # the decoder starts at a raw reading
    since_power_on = first + (us - us[0])
    return np.rint(since_power_on * sensor.rate_hz / 1e6).astype(int).tolist()


def _sent(sensor: MovellaDotEmulator) -> list[int]:
    return [round(f.sensor_time_s * sensor.rate_hz) for f in sensor.fates if f.fate is Fate.SENT]


def _assert_values_equal(sensor: MovellaDotEmulator, out: Collected) -> None:
    """DOT sends float32 in SI-ish units: the decoded values are the replayed ones as float32."""
    rows = [sensor.recording.index_at(i / sensor.rate_hz) for i in _indices(out.acc, sensor)]
    acc = sensor.recording.acc_ms2[rows].astype(np.float32).astype(np.float64)
    gyr = sensor.recording.gyr_dps[rows].astype(np.float32).astype(np.float64)
    np.testing.assert_array_equal(np.asarray(out.acc.values), acc)
    np.testing.assert_allclose(np.asarray(out.gyr.values), gyr, rtol=1e-12, atol=1e-12)  # deg → rad → deg


def test_dot_characteristics_answer_byte_exactly_over_bleak() -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        sensor = MovellaDotEmulator(radio, ImuRecording.swing(2000, 60.0), speed=SPEED, clock_start_us=1_234_567)
        async with sensor:
            found = await BleakScanner.discover(timeout=0.3, return_adv=True, backend=radio.scanner_backend)
            device, adv = found["D4:22:CD:00:00:01"]
            assert adv.local_name == "Movella DOT" and MOVELLA_COMPANY_ID in adv.manufacturer_data
            payloads: list[bytes] = []
            async with BleakClient(device, backend=radio.client_backend) as client:
                assert await client.read_gatt_char(BATTERY_UUID) == bytes([73, 0])
                control = await client.read_gatt_char(DEVICE_CONTROL_UUID)
                assert len(control) == 32 and struct.unpack_from("<H", control, 24)[0] == 60
                # Output rate: read-modify-write of device control, before measuring.
                await client.write_gatt_char(DEVICE_CONTROL_UUID, build_output_rate_control(control, 30), response=True)
                assert sensor.rate_hz == 30.0
                assert struct.unpack_from("<H", await client.read_gatt_char(DEVICE_CONTROL_UUID), 24)[0] == 30
                # Enable notify first, then start rate quantities (mode 21 = 0x15).
                await client.start_notify(MEDIUM_PAYLOAD_UUID, lambda _c, d: payloads.append(bytes(d)))
                await asyncio.sleep(0.05)
                assert not payloads  # subscribed but not measuring: silence
                await client.write_gatt_char(MEASUREMENT_CONTROL_UUID, bytes.fromhex("010115"), response=True)
                assert await client.read_gatt_char(MEASUREMENT_CONTROL_UUID) == bytes.fromhex("010115")
                await wait_until(lambda: len(payloads) >= 40)
                # The rate cannot change while measuring.
                await client.write_gatt_char(DEVICE_CONTROL_UUID, build_output_rate_control(control, 60), response=True)
                assert sensor.rate_hz == 30.0
                await client.write_gatt_char(MEASUREMENT_CONTROL_UUID, bytes.fromhex("010015"), response=True)
                count = len(payloads)
                await asyncio.sleep(0.1)
                assert len(payloads) - count <= 1
        assert {len(p) for p in payloads} == {40} and all(p[28:] == bytes(12) for p in payloads)
        stamps = np.array([parse_rate_quantities(p).timestamp_us for p in payloads])
        assert set(np.diff(stamps)) <= {33333, 33334}  # 30 Hz in µs
        first = parse_rate_quantities(payloads[0])
        # The timestamp is the sample time rounded to whole µs, which may sit just either side
        # of a recording sample boundary.
        t = (first.timestamp_us - 1_234_567) / 1e6
        rows = {sensor.recording.index_at(t + d) for d in (-1e-6, 0.0, 1e-6)}
        assert first.acc_ms2 in [tuple(np.float32(sensor.recording.acc_ms2[r]).tolist()) for r in rows]
        await radio.close()

    run(scenario())


def test_scan_lists_the_dot_by_name() -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        async with MovellaDotEmulator(radio, ImuRecording.swing(100, 60.0), name="Xsens DOT"):
            found = await scan_sensors(0.3, backend=radio.scanner_backend)
        assert [(f.name, f.sensor_type) for f in found] == [("Xsens DOT", "movella_dot")]
        await radio.close()

    run(scenario())


def test_sensor_link_streams_through_the_timestamp_wrap() -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        out = Collected()
        start_us = WRAP_US - 4_000_000  # the µs counter wraps 4 s (sensor time) after power-on
        async with MovellaDotEmulator(
            radio, ImuRecording.swing(5000, 60.0), speed=SPEED, clock_start_us=start_us
        ) as sensor:
            async with clocked_link(radio, make_decoder("movella_dot"), SPEED) as link:
                consumer = asyncio.create_task(collect(link, out))
                await wait_until(lambda: sensor.fates and sensor.fates[-1].sensor_time_s > 5.0 and out.acc.n >= 100)
            await consumer
        assert sensor.commands[0] == ("measurement_control", bytes.fromhex("010115"))
        assert sensor.commands[-1] == ("measurement_control", bytes.fromhex("010015"))
        assert out.kinds(LinkEventKind.BATTERY)[0].battery_percent == 73
        received = _indices(out.acc, sensor)
        assert received == _sent(sensor)[: len(received)] and np.all(np.diff(received) == 1)
        # The raw counter wrapped; the decoded device time did not: it runs on past 2**32 µs.
        times = np.asarray(out.acc.sensor_time_s)
        assert times[0] < WRAP_US / 1e6 < times[-1]
        assert np.all(np.diff(times) > 0) and np.max(np.diff(times)) < 1.5 / 60
        assert not out.acc.gaps and link.stats.undecodable == 0
        _assert_values_equal(sensor, out)
        await radio.close()

    run(scenario())


def test_forced_disconnects_across_the_wrap_are_exactly_counted_gaps() -> None:
    drops = 12

    async def scenario() -> None:
        radio = VirtualRadio()
        out = Collected()
        async with MovellaDotEmulator(
            radio, ImuRecording.swing(100_000, 60.0), speed=SPEED, clock_start_us=WRAP_US - 3_000_000
        ) as sensor:
            async with clocked_link(radio, make_decoder("movella_dot"), SPEED) as link:
                consumer = asyncio.create_task(collect(link, out))
                for _ in range(drops):
                    target = out.acc.n + 30
                    await wait_until(lambda target=target: out.acc.n >= target and sensor.is_subscribed(), timeout_s=5)
                    await sensor.force_disconnect()
                await wait_until(lambda: len(out.acc.gaps) == drops and out.acc.n >= target + 30, timeout_s=5)
            await consumer
        received = _indices(out.acc, sensor)
        sent = _sent(sensor)
        assert received == sent[: len(received)] and len(sent) - len(received) <= 1
        holes = [i for i in range(1, len(received)) if received[i] != received[i - 1] + 1]
        assert holes == out.acc.gap_positions
        lost = {round(f.sensor_time_s * sensor.rate_hz) for f in sensor.fates if f.fate is Fate.NO_SUBSCRIBER}
        for gap, at in zip(out.acc.gaps, out.acc.gap_positions, strict=True):
            assert gap.reason is GapReason.SENSOR_TIME_JUMP
            assert gap.samples_lost == received[at] - received[at - 1] - 1 > 0
            assert set(range(received[at - 1] + 1, received[at])) <= lost  # the hole is what nobody heard
        times = np.asarray(out.acc.sensor_time_s)
        assert times[0] < WRAP_US / 1e6 < times[-1]  # the wrap happened during the drops
        _assert_values_equal(sensor, out)
        assert link.stats.disconnects == drops
        reconnect = [x / SPEED for x in link.stats.reconnect_s]
        print(
            f"\nDOT, {drops} drops across the µs wrap: reconnect median "
            f"{statistics.median(reconnect) * 1e3:.0f} ms, max {max(reconnect) * 1e3:.0f} ms (wall); "
            f"{len(received)} samples, {sum(g.samples_lost or 0 for g in out.acc.gaps)} lost in drops"
        )
        await radio.close()

    run(scenario(), timeout_s=40)


def test_sensor_link_sets_the_output_rate_before_starting() -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        out = Collected()
        async with MovellaDotEmulator(radio, ImuRecording.swing(5000, 60.0), speed=SPEED) as sensor:
            async with clocked_link(radio, make_decoder("movella_dot", rate_hz=30), SPEED) as link:
                consumer = asyncio.create_task(collect(link, out))
                await wait_until(lambda: out.acc.n >= 60)
            await consumer
        kinds = [kind for kind, _ in sensor.commands]
        assert kinds[:2] == ["device_control", "measurement_control"]  # rate first, then start
        assert struct.unpack_from("<H", sensor.commands[0][1], 24)[0] == 30 and sensor.rate_hz == 30.0
        steps = np.diff(np.asarray(out.acc.sensor_time_s))
        assert np.allclose(steps, 1 / 30, atol=2e-6) and not out.acc.gaps
        await radio.close()

    run(scenario())
