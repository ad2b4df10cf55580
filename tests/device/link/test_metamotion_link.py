"""The emulated MetaMotion R through SensorLink on the Bumble backend: found by scanning, the
decoder's start commands configure it byte for byte, the battery is read through the settings
module, and every decoded acc and gyro sample is a replayed one, exactly quantised."""

from __future__ import annotations

import asyncio

import numpy as np

from hipsense.device.ble import SensorLink, scan_sensors
from hipsense.device.bumble_backend import VirtualRadio
from hipsense.device.decoders import make_decoder
from hipsense.device.emulator import Fate, ImuRecording, MetaMotionEmulator
from hipsense.device.events import LinkEvent, LinkEventKind
from hipsense.device.samples import ImuSamples
from tests.device.link.conftest import run, wait_until

SPEED = 2.0
G = 9.80665


def test_metamotion_scans_configures_streams_and_reports_its_battery() -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        sensor = MetaMotionEmulator(radio, ImuRecording.swing(5000, 50.0), speed=SPEED)
        acc: list[np.ndarray] = []
        gyr: list[np.ndarray] = []
        events: list[LinkEvent] = []
        async with sensor:
            (found,) = await scan_sensors(0.5, backend=radio.scanner_backend)
            assert (found.sensor_type, found.name, found.address) == ("metamotion", "MetaWear", sensor.address)
            decoder = make_decoder(found.sensor_type, rate_hz=50)
            link = SensorLink(decoder, address=found.address, max_failed_attempts=2, scan_timeout_s=2.0,
                              scanner_backend=radio.scanner_backend, client_backend=radio.client_backend)

            async def consume() -> None:
                async for item in link.decoded():
                    if isinstance(item, LinkEvent):
                        events.append(item)
                    elif isinstance(item, ImuSamples) and item.acc_ms2 is not None:
                        acc.extend(item.acc_ms2)
                    elif isinstance(item, ImuSamples) and item.gyr_rad_s is not None:
                        gyr.extend(item.gyr_rad_s)

            async with link:
                task = asyncio.create_task(consume())
                await wait_until(lambda: len(acc) >= 90 and len(gyr) >= 90)
                sensor.go_silent(until_reconnect=False)  # freeze what was sent before comparing
                await asyncio.sleep(0.1)
            await task
        await radio.close()

        # The decoder's start sequence, as sensors.md §4.5 spells it for 50 Hz, ±8 g, ±2000 dps.
        start = [c.hex(" ") for c in sensor.commands[:8]]
        assert start == ["03 03 27 08", "13 03 27 00", "03 1c 01", "13 07 01",
                         "03 02 01 00", "13 02 01 00", "03 01 01", "13 01 01"]
        assert "11 cc" in [c.hex(" ") for c in sensor.commands]
        assert sensor.rate_hz == 0.0  # the stop commands went out when the link closed
        assert [e.battery_percent for e in events if e.kind is LinkEventKind.BATTERY] == [99]
        assert [e.kind for e in events].count(LinkEventKind.CONNECTED) == 1

        sent = [sensor.recording.index_at(f.sensor_time_s) for f in sensor.fates if f.fate is Fate.SENT]
        acc_counts = np.rint(sensor.recording.acc_ms2[sent] / G * 4096.0)
        gyr_counts = np.rint(sensor.recording.gyr_dps[sent] * 16.4)
        # Packed: 3 samples a message, the acc message then the gyro one (the last gyro message
        # may still be in flight when the link closes).
        assert max(len(acc), len(gyr)) <= len(sent) and len(acc) % 3 == 0 and len(gyr) % 3 == 0
        assert 0 <= len(acc) - len(gyr) <= 3
        np.testing.assert_allclose(np.asarray(acc) / G * 4096.0, acc_counts[: len(acc)], atol=1e-9)
        np.testing.assert_allclose(np.degrees(np.asarray(gyr)) * 16.4, gyr_counts[: len(gyr)], atol=1e-9)

    run(scenario(), timeout_s=60)


def test_metamotion_streams_its_accelerometer_alone_when_asked() -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        swing = ImuRecording.swing(5000, 50.0)
        sensor = MetaMotionEmulator(radio, ImuRecording(swing.rate_hz, swing.acc_ms2, None), speed=SPEED)
        acc: list[np.ndarray] = []
        gyr: list[np.ndarray] = []
        async with sensor:
            decoder = make_decoder("metamotion", **make_decoder("metamotion").accelerometer_only)
            link = SensorLink(decoder, address=sensor.address, max_failed_attempts=2, scan_timeout_s=2.0,
                              scanner_backend=radio.scanner_backend, client_backend=radio.client_backend)

            async def consume() -> None:
                async for item in link.decoded():
                    if isinstance(item, ImuSamples) and item.acc_ms2 is not None:
                        acc.extend(item.acc_ms2)
                    elif isinstance(item, ImuSamples) and item.gyr_rad_s is not None:
                        gyr.extend(item.gyr_rad_s)

            async with link:
                task = asyncio.create_task(consume())
                await wait_until(lambda: len(acc) >= 90)
            await task
        await radio.close()
        start = [c.hex(" ") for c in sensor.commands[:4]]
        assert start == ["03 03 27 08", "03 1c 01", "03 02 01 00", "03 01 01"]  # no gyro module (0x13)
        assert not any(c[0] == 0x13 for c in sensor.commands) and not gyr
        assert decoder.options()["gyroscope"] is False

    run(scenario(), timeout_s=60)
