"""bleak's public API on the Bumble backend against the emulated WitMotion: scan, connect,
discover, write, notify."""

from __future__ import annotations

import asyncio
import struct

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice

from hipsense.device.bumble_backend import VirtualRadio
from hipsense.device.emulator import WitMotionEmulator, WitMotionRecording, sample_index
from hipsense.device.emulator.witmotion import NOTIFY_UUID, SERVICE_UUID, WRITE_UUID
from tests.device.link.conftest import run, wait_until


def _indices(payloads: list[bytes]) -> list[int]:
    out = []
    for payload in payloads:
        assert len(payload) % 20 == 0
        for offset in range(0, len(payload), 20):
            assert payload[offset : offset + 2] == b"\x55\x61"
            values = struct.unpack_from("<9h", payload, offset + 2)
            out.append(sample_index(values[3], values[4]))
    return out


def test_scan_finds_the_emulated_sensor_by_name_and_vendor_uuid() -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        async with WitMotionEmulator(radio, WitMotionRecording.numbered(100), name="WT901BLE42"):
            found = await BleakScanner.discover(
                timeout=0.2,
                return_adv=True,
                service_uuids=[SERVICE_UUID],
                backend=radio.scanner_backend,
            )
            assert list(found) == ["F1:57:00:00:00:01"]
            device, adv = found["F1:57:00:00:00:01"]
            assert device.name == "WT901BLE42"
            assert adv.local_name == "WT901BLE42"
            # The vendor base (…9a34fb) survives; it is not the SIG base (…9b34fb).
            assert adv.service_uuids == [SERVICE_UUID]
            # A filter on another service finds nothing.
            none = await BleakScanner.discover(
                timeout=0.1,
                service_uuids=["0000ffe5-0000-1000-8000-00805f9b34fb"],
                backend=radio.scanner_backend,
            )
            assert none == []
        await radio.close()

    run(scenario())


def test_connect_configure_and_stream_a_replayed_recording() -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        sensor = WitMotionEmulator(radio, WitMotionRecording.numbered(5000), speed=10.0)
        async with sensor:
            device = await BleakScanner.find_device_by_name(
                "WT901BLE68", timeout=2.0, backend=radio.scanner_backend
            )
            assert isinstance(device, BLEDevice)
            queue: asyncio.Queue[bytes] = asyncio.Queue()
            async with BleakClient(device, backend=radio.client_backend) as client:
                assert client.is_connected
                assert client.mtu_size >= 83  # room for 4 frames per notification
                notify = client.services.get_characteristic(NOTIFY_UUID)
                assert notify is not None and "notify" in notify.properties
                write = client.services.get_characteristic(WRITE_UUID)
                assert write is not None and "write" in write.properties
                await client.write_gatt_char(WRITE_UUID, bytes.fromhex("ffaa6988b5"), response=True)
                await client.write_gatt_char(WRITE_UUID, bytes.fromhex("ffaa030900"), response=True)
                assert sensor.rate_hz == 100.0
                await client.start_notify(NOTIFY_UUID, lambda _c, data: queue.put_nowait(bytes(data)))
                await wait_until(lambda: queue.qsize() >= 50)
                await client.stop_notify(NOTIFY_UUID)
            assert not client.is_connected
        payloads = [queue.get_nowait() for _ in range(queue.qsize())]
        assert {len(p) for p in payloads} == {80}
        received = _indices(payloads)
        sent = [sensor.recording_index(f.sensor_time_s) for f in sensor.fates if f.fate.value == "sent"]
        # In order, each exactly once; a notification in flight when we unsubscribed may be
        # dropped by the client side (as BlueZ does), never duplicated.
        assert len(received) >= 200
        assert received == sent[: len(received)]
        assert len(sent) - len(received) <= 8
        await radio.close()

    run(scenario())


def test_battery_register_read_answers_on_the_notify_characteristic() -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        async with WitMotionEmulator(radio, WitMotionRecording.numbered(10), battery_centivolts=381):
            device = await BleakScanner.find_device_by_address(
                "F1:57:00:00:00:01", timeout=2.0, backend=radio.scanner_backend
            )
            assert device is not None
            replies: asyncio.Queue[bytes] = asyncio.Queue()
            async with BleakClient(device, backend=radio.client_backend) as client:
                await client.start_notify(
                    NOTIFY_UUID,
                    lambda _c, data: replies.put_nowait(bytes(data)) if data[1] == 0x71 else None,
                )
                await client.write_gatt_char(WRITE_UUID, bytes.fromhex("ffaa276400"), response=False)
                reply = await asyncio.wait_for(replies.get(), 1.0)
        assert reply[:4] == bytes.fromhex("55716400") and len(reply) == 20
        assert struct.unpack_from("<h", reply, 4)[0] == 381
        await radio.close()

    run(scenario())


def test_peripheral_disconnect_fires_bleaks_disconnected_callback() -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        sensor = WitMotionEmulator(radio, WitMotionRecording.numbered(10))
        async with sensor:
            lost = asyncio.Event()
            client = BleakClient(
                "F1:57:00:00:00:01",
                disconnected_callback=lambda _c: lost.set(),
                backend=radio.client_backend,
                timeout=2.0,
            )
            await client.connect()
            assert await sensor.force_disconnect() == 1
            await asyncio.wait_for(lost.wait(), 1.0)
            assert not client.is_connected
            # It advertises again by itself, so the same client can come back.
            await client.connect()
            assert client.is_connected
            await client.disconnect()
        await radio.close()

    run(scenario())
