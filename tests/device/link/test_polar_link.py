"""The emulated Polar Verity Sense through bleak's public API on the Bumble backend: the PMD
control point byte for byte, then SensorLink end to end (start sequence with replies, decoded
samples equal to the replayed ones, forced drops reported as gaps on the device clock)."""

from __future__ import annotations

import asyncio
import statistics
import struct

import numpy as np
import pytest
from bleak import BleakClient, BleakScanner

from hipsense.device.ble import scan_sensors
from hipsense.device.events import LinkEventKind
from hipsense.device.bumble_backend import VirtualRadio
from hipsense.device.decoders import make_decoder
from hipsense.device.decoders.polar_pmd import (
    PMD_CONTROL_POINT_UUID,
    PMD_DATA_UUID,
    PolarPmdDecoder,
)
from hipsense.device.emulator import ImuRecording, PolarVeritySenseEmulator
from hipsense.device.emulator.polar import VERITY_CLOCK_ORIGIN_NS
from hipsense.device.samples import GapReason, ImuSamples
from hipsense.errors import DeviceError, LinkLostError
from tests.device.link.clocked import (
    Collected,
    Stream,
    clocked_link,
    collect,
)
from tests.device.link.conftest import run, wait_until

SPEED = 5.0
ACC, GYRO = 2, 5
G = 9.80665
START_ACC = bytes.fromhex("02 02 00 01 34 00 01 01 10 00 02 01 08 00 04 01 03")  # sensors.md §3.2
START_GYRO = bytes.fromhex("02 05 00 01 34 00 01 01 10 00 02 01 D0 07 04 01 03")


def _indices(stream: Stream, rate_hz: float, origin_ns: int = VERITY_CLOCK_ORIGIN_NS) -> list[int]:
    """Sample numbers since power-on, from the decoded device times (ns since 2000)."""
    t = np.asarray(stream.sensor_time_s) - origin_ns / 1e9
    return np.rint(t * rate_hz).astype(int).tolist()


def _sent_indices(sensor: PolarVeritySenseEmulator, measurement: int) -> list[int]:
    return np.rint(np.asarray(sensor.sent_times_s[measurement]) * sensor.rate_hz).astype(int).tolist()


def _assert_values_match(sensor: PolarVeritySenseEmulator, stream: Stream, measurement: int) -> None:
    """Decoded values equal the replayed ones within half a count of the stream's FACTOR."""
    rec = sensor.recording
    rows = [rec.index_at(i / sensor.rate_hz) for i in _indices(stream, sensor.rate_hz)]
    got = np.asarray(stream.values)
    if measurement == ACC:
        expected, half_count = rec.acc_ms2[rows], 8.0 / 32768 / 2 * G  # ±8 g over int16, in m/s²
    else:
        expected, half_count = rec.gyr_dps[rows], 2000.0 / 32768 / 2  # deg/s
    assert np.max(np.abs(got - expected)) <= half_count * 1.001


def test_pmd_control_point_answers_byte_exactly_over_bleak() -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        sensor = PolarVeritySenseEmulator(radio, ImuRecording.swing(2000), speed=SPEED)
        async with sensor:
            device = await BleakScanner.find_device_by_name("Polar Sense B5A4E12F", timeout=2.0, backend=radio.scanner_backend)
            assert device is not None
            replies: asyncio.Queue[bytes] = asyncio.Queue()
            frames: list[bytes] = []
            async with BleakClient(device, backend=radio.client_backend) as client:
                cp = client.services.get_characteristic(PMD_CONTROL_POINT_UUID)
                assert cp is not None and {"read", "write", "indicate"} <= set(cp.properties)
                assert await client.read_gatt_char(PMD_CONTROL_POINT_UUID) == bytes.fromhex("0F 6E 02")
                assert await client.read_gatt_char("00002a19-0000-1000-8000-00805f9b34fb") == bytes([87])
                await client.start_notify(PMD_CONTROL_POINT_UUID, lambda _c, d: replies.put_nowait(bytes(d)))
                await client.start_notify(PMD_DATA_UUID, lambda _c, d: frames.append(bytes(d)))

                async def ask(command: str) -> bytes:
                    await client.write_gatt_char(PMD_CONTROL_POINT_UUID, bytes.fromhex(command), response=True)
                    return await asyncio.wait_for(replies.get(), 1.0)

                # Settings query: what a Verity offers in normal mode.
                assert await ask("01 02") == bytes.fromhex("F0 01 02 00 00 00 01 3400 01 01 1000 02 01 0800 04 01 03")
                assert await ask("01 05") == bytes.fromhex("F0 01 05 00 00 00 01 3400 01 01 1000 02 01 D007 04 01 03")
                assert await ask("01 00") == bytes.fromhex("F0 01 00 03 00")  # no ECG on a Verity
                # Refusals: 104 Hz needs SDK mode; unknown op code.
                assert await ask("02 02 00 01 68 00 01 01 10 00 02 01 08 00 04 01 03") == bytes.fromhex("F0 02 02 08 00")
                assert await ask("07 02") == bytes.fromhex("F0 07 02 01 00")
                assert not frames  # nothing started yet
                # Start ACC: status 0 and FACTOR (±8 g over int16, in mG per count) as float32.
                reply = await ask(START_ACC.hex())
                assert reply[:7] == bytes.fromhex("F0 02 02 00 00 05 01")
                assert struct.unpack("<f", reply[7:])[0] == pytest.approx(8000 / 32768)
                assert (await ask(START_ACC.hex()))[:4] == bytes.fromhex("F0 02 02 06")  # already started
                reply = await ask(START_GYRO.hex())
                assert struct.unpack("<f", reply[7:])[0] == pytest.approx(2000 / 32768)
                await wait_until(lambda: len(frames) >= 6)
                assert await ask("03 02") == bytes.fromhex("F0 03 02 00 00")
                assert await ask("03 05") == bytes.fromhex("F0 03 05 00 00")
                count = len(frames)
                await asyncio.sleep(0.3)
                assert len(frames) - count <= 2  # at most frames in flight before the stop
                # SDK mode unlocks 104 Hz.
                assert await ask("02 09") == bytes.fromhex("F0 02 09 00 00")
                reply = await ask("02 02 00 01 68 00 01 01 10 00 02 01 10 00 04 01 03")
                assert reply[:4] == bytes.fromhex("F0 02 02 00") and sensor.rate_hz == 104.0
                assert await ask("03 09") == bytes.fromhex("F0 03 09 00 00")
        # Every data frame: ACC or GYRO, compressed type (ACC 1, GYRO 0), timestamps rising per stream.
        last = {ACC: 0, GYRO: 0}
        for frame in frames:
            measurement, timestamp, frame_type = struct.unpack_from("<BQB", frame)
            assert (measurement, frame_type) in ((ACC, 0x81), (GYRO, 0x80))
            assert timestamp > last[measurement]
            last[measurement] = timestamp
        assert min(last.values()) > VERITY_CLOCK_ORIGIN_NS
        await radio.close()

    run(scenario())


def test_scan_lists_the_verity_by_name() -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        async with PolarVeritySenseEmulator(radio, ImuRecording.swing(100)):
            found = await scan_sensors(0.3, backend=radio.scanner_backend)
        assert [(f.name, f.sensor_type) for f in found] == [("Polar Sense B5A4E12F", "polar")]
        await radio.close()

    run(scenario())


def test_sensor_link_streams_acc_and_gyro_equal_to_the_replayed_samples() -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        out = Collected()
        async with PolarVeritySenseEmulator(radio, ImuRecording.swing(5000), speed=SPEED) as sensor:
            async with clocked_link(radio, make_decoder("polar"), SPEED) as link:
                consumer = asyncio.create_task(collect(link, out))
                await wait_until(lambda: out.acc.n >= 300 and out.gyr.n >= 300)
                assert link.is_connected and link.mtu is not None and link.mtu >= 200
            await consumer
        # The start sequence: ACC, then GYRO, each answered before the next; stopped on close.
        assert sensor.commands == [START_ACC, START_GYRO, bytes.fromhex("03 05"), bytes.fromhex("03 02")]
        assert [r[:4] for r in sensor.replies] == [bytes.fromhex(h) for h in ("F0020200", "F0020500", "F0030500", "F0030200")]
        assert [e.kind for e in out.events][:2] == [LinkEventKind.CONNECTED, LinkEventKind.BATTERY]
        assert out.kinds(LinkEventKind.BATTERY)[0].battery_percent == 87
        for measurement, stream in ((ACC, out.acc), (GYRO, out.gyr)):
            # Every sample put on the air arrived once, in order, on its device time...
            received = _indices(stream, sensor.rate_hz)
            assert received == _sent_indices(sensor, measurement)[: len(received)]
            assert np.all(np.diff(received) == 1) and not stream.gaps
            # ... with the replayed value, within the sensor's quantisation ...
            _assert_values_match(sensor, stream, measurement)
            # ... and host times that rise at the sensor's rate (in the link's scaled clock).
            period = np.median(np.diff(stream.t_s))
            assert period == pytest.approx(1 / 52, rel=0.01)
        assert link.stats.undecodable == 0 and link.stats.queue_drops == 0
        await radio.close()

    run(scenario())


def test_forced_disconnects_are_gaps_on_the_device_clock() -> None:
    drops = 20

    async def scenario() -> None:
        radio = VirtualRadio()
        out = Collected()
        async with PolarVeritySenseEmulator(radio, ImuRecording.swing(100_000), speed=SPEED) as sensor:
            async with clocked_link(radio, make_decoder("polar"), SPEED) as link:
                consumer = asyncio.create_task(collect(link, out))
                for _ in range(drops):
                    target = out.gyr.n + 52  # about two frames on this connection
                    await wait_until(lambda target=target: out.gyr.n >= target and sensor.is_subscribed(), timeout_s=5)
                    await sensor.force_disconnect()
                await wait_until(lambda: len(out.gyr.gaps) == drops and out.gyr.n >= target + 52, timeout_s=5)
            await consumer

        rate = sensor.rate_hz
        for measurement, stream in ((ACC, out.acc), (GYRO, out.gyr)):
            received = _indices(stream, rate)
            sent = _sent_indices(sensor, measurement)
            # Exactly once, in order: what arrived is what the sensor put on the air.
            assert received == sent[: len(received)] and len(sent) - len(received) <= 26
            # Each drop is one gap per stream, counted exactly from the device timestamps: the
            # sensor clock ran on while the link was down, so the hole is the lost samples.
            holes = [i for i in range(1, len(received)) if received[i] != received[i - 1] + 1]
            assert holes == stream.gap_positions
            for gap, at in zip(stream.gaps, stream.gap_positions, strict=True):
                assert gap.reason is GapReason.SENSOR_TIME_JUMP
                assert gap.samples_lost == received[at] - received[at - 1] - 1 > 0
                assert gap.end_s > gap.start_s
            # Device-clock continuity: across a gap, times stay on the 1/52 s grid of one clock.
            steps = np.diff(np.asarray(stream.sensor_time_s)) * rate
            assert np.allclose(steps, np.rint(steps), atol=1e-3)
            _assert_values_match(sensor, stream, measurement)
        assert link.stats.disconnects == drops and len(out.kinds(LinkEventKind.DISCONNECTED)) == drops
        # Each reconnection re-ran the start sequence (the Verity forgets its streams on a drop).
        assert sensor.commands.count(START_ACC) == drops + 1 and sensor.commands.count(START_GYRO) == drops + 1
        times = [x / SPEED for x in link.stats.reconnect_s]  # wall seconds
        print(
            f"\nPolar, {drops} drops: reconnect median {statistics.median(times) * 1e3:.0f} ms, "
            f"max {max(times) * 1e3:.0f} ms (wall); {out.acc.n} ACC + {out.gyr.n} GYRO samples, "
            f"{sum(g.samples_lost or 0 for g in out.gyr.gaps)} per stream lost in drops"
        )
        await radio.close()

    run(scenario(), timeout_s=40)


def test_sdk_mode_start_sequence_streams_at_104_hz() -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        out = Collected()
        decoder = make_decoder("polar", rate_hz=104, sdk_mode=True, acc_range_g=8)
        async with PolarVeritySenseEmulator(radio, ImuRecording.swing(5000, 104.0), speed=SPEED) as sensor:
            async with clocked_link(radio, decoder, SPEED) as link:
                consumer = asyncio.create_task(collect(link, out))
                await wait_until(lambda: out.acc.n >= 200 and out.gyr.n >= 200)
            await consumer
        assert sensor.commands[:3] == [bytes.fromhex("02 09"), START_ACC.replace(b"\x34", b"\x68", 1), START_GYRO.replace(b"\x34", b"\x68", 1)]
        assert sensor.rate_hz == 104.0
        received = _indices(out.acc, 104.0)
        assert received == _sent_indices(sensor, ACC)[: len(received)]
        _assert_values_match(sensor, out.acc, ACC)
        await radio.close()

    run(scenario())


def test_a_refused_start_stops_the_link_with_advice() -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        async with PolarVeritySenseEmulator(radio, ImuRecording.swing(100), speed=SPEED) as sensor:
            # 104 Hz without SDK mode: the Verity answers "invalid sample rate".
            link = clocked_link(radio, make_decoder("polar", rate_hz=104), SPEED, max_failed_attempts=1)
            with pytest.raises(DeviceError, match=r"refused command 02 02 .*INVALID_SAMPLE_RATE.*SDK mode"):
                async with link:
                    async for _ in link:
                        pass
            assert sensor.commands == [START_ACC.replace(b"\x34", b"\x68", 1)]  # nothing after the refusal
        await radio.close()

    run(scenario())


def test_a_reply_that_never_comes_times_out_with_advice(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        async with PolarVeritySenseEmulator(radio, ImuRecording.swing(100), speed=SPEED) as sensor:

            async def mute(_connection: object, reply: bytes) -> None:
                sensor.replies.append(reply)  # decided, but never indicated

            monkeypatch.setattr(sensor, "_indicate", mute)
            link = clocked_link(radio, make_decoder("polar"), SPEED, max_failed_attempts=1, reply_timeout_s=0.2)
            with pytest.raises(LinkLostError, match="did not answer command 02 02"):
                async with link:
                    async for _ in link:
                        pass
        await radio.close()

    run(scenario())


def test_the_decoder_alone_decodes_the_emulators_notifications() -> None:
    """The raw stream (what `hipsense record` keeps) replays through a fresh decoder alike."""

    async def scenario() -> None:
        radio = VirtualRadio()
        raw = []
        async with (
            PolarVeritySenseEmulator(radio, ImuRecording.swing(5000), speed=SPEED, acc_frame_type=0, block_samples=5),
            clocked_link(radio, make_decoder("polar"), SPEED) as link,
        ):
            async for item in link:
                raw.append(item)
                if sum(1 for r in raw if getattr(r, "char_uuid", "") == PMD_DATA_UUID) >= 12:
                    break
        decoder = PolarPmdDecoder()
        blocks = [
            decoder.decode(r.payload, r.received_at_s, char_uuid=r.char_uuid) for r in raw if hasattr(r, "payload")
        ]
        acc = [b for b in blocks if isinstance(b, ImuSamples) and b.acc_ms2 is not None]
        assert acc and all(np.all(np.abs(np.linalg.norm(b.acc_ms2, axis=1) - G) < 0.6) for b in acc)
        await radio.close()

    run(scenario())


def test_garbage_frames_are_counted_and_dropped_while_both_streams_go_on() -> None:
    garbage = [
        b"",  # empty
        b"\x02\x00",  # no full header
        bytes.fromhex("03 0000000000000000 80 000000000000"),  # a measurement type not started
        bytes.fromhex("02 0000000000000000 81 0100 0200 0300 0A 05 FF"),  # delta block cut short
        bytes.fromhex("05 0000000000000000 01 0100 0200"),  # raw GYRO: no such frame type
    ]

    async def scenario() -> None:
        radio = VirtualRadio()
        out = Collected()
        async with PolarVeritySenseEmulator(radio, ImuRecording.swing(10_000), speed=SPEED) as sensor:
            async with clocked_link(radio, make_decoder("polar"), SPEED) as link:
                consumer = asyncio.create_task(collect(link, out))
                await wait_until(lambda: out.gyr.n >= 52)
                for payload in garbage * 3:
                    sensor.send_garbage(payload)
                await wait_until(lambda: sensor.garbage_sent == len(garbage) * 3)
                before = out.gyr.n
                await wait_until(lambda: out.gyr.n >= before + 104)
            await consumer
        assert link.stats.undecodable == len(garbage) * 3 and link.stats.disconnects == 0
        for measurement, stream in ((ACC, out.acc), (GYRO, out.gyr)):
            received = _indices(stream, sensor.rate_hz)
            assert received == _sent_indices(sensor, measurement)[: len(received)] and not stream.gaps
        await radio.close()

    run(scenario())


def test_a_unit_without_a_gyroscope_streams_acc_alone() -> None:
    """An H10 (or a replay of an accelerometer-only recording) offers no GYRO: the decoder reads
    the features on connecting and starts ACC only, instead of a start the unit would refuse."""

    async def scenario() -> None:
        radio = VirtualRadio()
        swing = ImuRecording.swing(5000)
        out = Collected()
        async with PolarVeritySenseEmulator(radio, ImuRecording(swing.rate_hz, swing.acc_ms2, None),
                                            speed=SPEED) as sensor:
            assert GYRO not in sensor.features
            async with clocked_link(radio, make_decoder("polar"), SPEED, max_failed_attempts=1) as link:
                consumer = asyncio.create_task(collect(link, out))
                await wait_until(lambda: out.acc.n >= 100)
            await consumer
        assert sensor.commands == [START_ACC, bytes.fromhex("03 02")]
        assert out.gyr.n == 0 and not out.kinds(LinkEventKind.ATTEMPT_FAILED)
        _assert_values_match(sensor, out.acc, ACC)
        await radio.close()

    run(scenario())
