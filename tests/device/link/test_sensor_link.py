"""SensorLink end to end: bleak's real code path on the Bumble backend, against the emulated
WitMotion replaying a numbered recording faster than real time."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field

import numpy as np
import pytest

from hipsense.device.ble import SensorLink
from hipsense.device.events import LinkEvent, LinkEventKind
from hipsense.device.bumble_backend import VirtualRadio
from hipsense.device.decoders import make_decoder
from hipsense.device.emulator import Fate, WitMotionEmulator, WitMotionRecording, sample_index
from hipsense.device.reconnect import BackoffPolicy
from hipsense.device.samples import Gap, ImuSamples
from hipsense.errors import DeviceNotFoundError
from tests.device.link.conftest import run, wait_until

SPEED = 10.0  # 100 Hz recording → 1000 samples per wall second
FAST_BACKOFF = BackoffPolicy(initial_s=0.05, multiplier=2.0, max_s=0.4, jitter=0.5)


def _indices(block: ImuSamples) -> list[int]:
    assert block.gyr_rad_s is not None
    raw = np.rint(np.degrees(block.gyr_rad_s) / 2000.0 * 32768.0).astype(int)
    return [sample_index(x, y) for x, y in raw[:, :2]]


def _link(radio: VirtualRadio, **overrides: object) -> SensorLink:
    options: dict[str, object] = dict(
        address=None,
        silence_timeout_s=0.5,
        backoff=FAST_BACKOFF,
        scan_timeout_s=2.0,
        connect_timeout_s=2.0,
        pause_scale=0.01,  # the emulator needs no 100 ms between unlock and rate write
        scanner_backend=radio.scanner_backend,
        client_backend=radio.client_backend,
    )
    options.update(overrides)
    return SensorLink(make_decoder("witmotion", rate_hz=100), **options)  # type: ignore[arg-type]


@dataclass
class Collected:
    indices: list[int] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    events: list[LinkEvent] = field(default_factory=list)
    gap_positions: list[int] = field(default_factory=list)  # len(indices) when each gap came

    def kinds(self, kind: LinkEventKind) -> list[LinkEvent]:
        return [e for e in self.events if e.kind is kind]


async def _consume(link: SensorLink, out: Collected) -> None:
    async for item in link.decoded():
        if isinstance(item, LinkEvent):
            out.events.append(item)
            continue
        for gap in item.gaps:
            out.gaps.append(gap)
            out.gap_positions.append(len(out.indices))
        if item.n:
            out.indices.extend(_indices(item))


def _sent_indices(sensor: WitMotionEmulator) -> list[int]:
    return [sensor.recording_index(f.sensor_time_s) for f in sensor.fates if f.fate is Fate.SENT]


def test_scan_connect_configure_and_stream_decoded_samples() -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        recording = WitMotionRecording.numbered(20_000)
        async with WitMotionEmulator(radio, recording, speed=SPEED, battery_centivolts=385) as sensor:
            out = Collected()
            async with _link(radio) as link:
                consumer = asyncio.create_task(_consume(link, out))
                await wait_until(lambda: len(out.indices) >= 1000)
                assert link.is_connected and link.address == sensor.address
                assert link.mtu is not None and link.mtu >= 83
            await consumer
        assert sensor.rate_hz == 100.0  # the link configured the rate
        assert sensor.commands[:2] == [bytes.fromhex("ffaa6988b5"), bytes.fromhex("ffaa030900")]
        assert [e.kind for e in out.events][:2] == [LinkEventKind.CONNECTED, LinkEventKind.BATTERY]
        assert out.kinds(LinkEventKind.BATTERY)[0].battery_percent == 60
        # Everything the sensor sent arrived, in order, once; values survive the round trip.
        sent = _sent_indices(sensor)
        assert out.indices == sent[: len(out.indices)]
        assert out.gaps == []
        assert link.stats.queue_drops == 0 and link.stats.undecodable == 0
        await radio.close()

    run(scenario())


def test_one_hundred_forced_disconnects_lose_nothing_outside_the_drops() -> None:
    drops = 100

    async def scenario() -> None:
        radio = VirtualRadio()
        recording = WitMotionRecording.numbered(1_000_000)
        out = Collected()
        async with WitMotionEmulator(radio, recording, speed=SPEED) as sensor:
            async with _link(radio) as link:
                consumer = asyncio.create_task(_consume(link, out))
                for drop in range(drops):
                    # Let some data flow on this connection, then pull the plug.
                    target = len(out.indices) + 20
                    await wait_until(lambda: len(out.indices) >= target and sensor.is_subscribed())
                    await sensor.force_disconnect()
                # (the last reconnect's time is recorded a moment after its gap is reported:
                # 99 of 100 once on a loaded machine)
                await wait_until(lambda: len(out.gaps) == drops and len(out.indices) >= target + 20
                                 and len(link.stats.reconnect_s) == drops)
                sensor.go_silent(until_reconnect=False)  # freeze the tail before comparing
                await asyncio.sleep(0.05)
            await consumer

        received = out.indices
        sent = _sent_indices(sensor)
        # Exactly once, in order: the received stream is the sent stream.
        assert received == sent
        assert len(set(received)) == len(received)
        # Every drop is one gap, and every hole in the received indices is one of them.
        assert link.stats.disconnects == drops
        assert len(out.kinds(LinkEventKind.DISCONNECTED)) == drops
        assert len(out.gaps) == drops
        # Holes are judged on the sensor's production sequence (the recording index also jumps
        # once, harmlessly, when the link switches the rate from 10 Hz to 100 Hz).
        seq_of = {sensor.recording_index(f.sensor_time_s): f.seq for f in sensor.fates if f.fate is Fate.SENT}
        seqs = [seq_of[i] for i in received]
        holes = [i for i in range(1, len(seqs)) if seqs[i] != seqs[i - 1] + 1]
        assert holes == out.gap_positions
        # What fell into the holes is exactly what the sensor produced with nobody listening.
        lost = {f.seq for f in sensor.fates if f.fate is Fate.NO_SUBSCRIBER and seqs[0] < f.seq < seqs[-1]}
        in_holes = {j for i in holes for j in range(seqs[i - 1] + 1, seqs[i])}
        assert in_holes == lost
        for gap in out.gaps:
            assert gap.end_s > gap.start_s
        # Reconnection within the backoff bound (+ scan, connect, discovery on the virtual link).
        times = link.stats.reconnect_s
        assert len(times) == drops
        bound = FAST_BACKOFF.ceiling_s(0) + 0.45  # generous: CI shares 2 cores
        # Nearly every reconnect within the bound; a machine busy with other work may stall
        # the event loop once or twice, which is the scheduler, not the backoff (a 2.0 s stall
        # was seen with the other core under callgrind). The policy's delays themselves are
        # checked without a clock in test_reconnect_policy.py; the worst case is printed.
        within = sum(1 for x in times if x <= bound)
        assert within >= 0.95 * drops, (sorted(times)[-5:], bound)
        print(
            f"\n{drops} drops: reconnect median {statistics.median(times) * 1e3:.0f} ms, "
            f"max {max(times) * 1e3:.0f} ms (bound {bound * 1e3:.0f} ms); "
            f"{len(received)} samples received, {len(in_holes)} lost in drops"
        )
        await radio.close()

    run(scenario(), timeout_s=60)


def test_silent_peripheral_is_detected_within_the_watchdog_time() -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        async with WitMotionEmulator(radio, WitMotionRecording.numbered(100_000), speed=SPEED) as sensor:
            out = Collected()
            async with _link(radio, silence_timeout_s=0.3) as link:
                consumer = asyncio.create_task(_consume(link, out))
                await wait_until(lambda: len(out.indices) >= 200)
                sensor.go_silent()  # stays connected, sends nothing, until a new connection
                silent_at = time.monotonic()
                await wait_until(lambda: bool(out.kinds(LinkEventKind.DISCONNECTED)), timeout_s=2)
                detected_after = time.monotonic() - silent_at
                # ... and the link comes back by itself.
                await wait_until(lambda: len(out.kinds(LinkEventKind.CONNECTED)) == 2 and len(out.gaps) == 1)
                before = len(out.indices)
                await wait_until(lambda: len(out.indices) >= before + 100)
            await consumer
        assert link.stats.silences == 1
        assert "no data for 0.3 s" in out.kinds(LinkEventKind.DISCONNECTED)[0].detail
        # The last notification can come up to one notification period before go_silent().
        assert 0.3 - 0.01 <= detected_after <= 0.3 + 0.25, detected_after
        assert out.indices == sorted(set(out.indices))
        await radio.close()

    run(scenario())


def test_garbage_notifications_are_counted_and_dropped_while_the_session_goes_on() -> None:
    garbage = [
        b"",  # empty
        b"\x00" * 20,  # wrong header
        b"\x55\x61\x01\x02",  # truncated frame
        bytes(range(37)),  # not a whole number of frames
        b"\x55\x61" + b"\xff" * 18 + b"\x13\x37",  # 22 bytes
    ]

    async def scenario() -> None:
        radio = VirtualRadio()
        async with WitMotionEmulator(radio, WitMotionRecording.numbered(100_000), speed=SPEED) as sensor:
            out = Collected()
            async with _link(radio) as link:
                consumer = asyncio.create_task(_consume(link, out))
                await wait_until(lambda: len(out.indices) >= 100)
                for payload in garbage * 4:
                    sensor.send_garbage(payload)
                    await asyncio.sleep(0.003)
                await wait_until(lambda: sensor.garbage_sent >= 21)  # + the battery reply
                before = len(out.indices)
                await wait_until(lambda: len(out.indices) >= before + 300)
                assert link.is_connected
            await consumer
        assert link.stats.undecodable == len(garbage) * 4
        assert link.stats.disconnects == 0 and out.gaps == []
        sent = _sent_indices(sensor)
        assert out.indices == sent[: len(out.indices)]  # no sample lost or invented around garbage
        await radio.close()

    run(scenario())


def test_consumer_too_slow_drops_are_counted_and_reported_as_a_gap() -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        async with WitMotionEmulator(radio, WitMotionRecording.numbered(100_000), speed=SPEED):
            out = Collected()
            async with _link(radio, queue_size=8) as link:
                await wait_until(lambda: link.stats.queue_drops >= 10)  # nobody consumes yet
                consumer = asyncio.create_task(_consume(link, out))
                await wait_until(lambda: len(out.gaps) >= 1 and len(out.indices) >= 200)
            await consumer
        assert link.stats.queue_drops >= 10
        hole = out.gap_positions[0]
        assert out.indices[hole] - out.indices[hole - 1] > 1
        assert out.indices == sorted(set(out.indices))
        await radio.close()

    run(scenario())


def test_missing_sensor_gives_up_with_advice_when_asked_to() -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        link = _link(radio, address="F1:57:00:00:00:99", scan_timeout_s=0.1, max_failed_attempts=2)
        with pytest.raises(DeviceNotFoundError, match="switched on and charged"):
            async with link:
                async for _ in link:
                    pass
        assert link.stats.failed_attempts == 2
        await radio.close()

    run(scenario())


def test_sensor_switched_on_later_is_found_by_retrying() -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        sensor = WitMotionEmulator(radio, WitMotionRecording.numbered(100_000), speed=SPEED)
        out = Collected()
        async with _link(radio, scan_timeout_s=0.1) as link:
            consumer = asyncio.create_task(_consume(link, out))
            await wait_until(lambda: link.stats.failed_attempts >= 2)
            await sensor.start()
            await wait_until(lambda: len(out.indices) >= 100)
        await consumer
        await sensor.stop()
        failed = out.kinds(LinkEventKind.ATTEMPT_FAILED)
        assert failed and all(isinstance(e.error, DeviceNotFoundError) for e in failed)
        assert all(e.retry_in_s is not None and e.retry_in_s <= FAST_BACKOFF.max_s for e in failed)
        await radio.close()

    run(scenario())
