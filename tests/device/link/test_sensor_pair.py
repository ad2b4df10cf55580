"""Two sensors on one virtual adapter (left and right thigh) through SensorPair: each stream
arrives complete and tagged with its side, and drops on one side leave the other untouched."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict

import numpy as np
import pytest

from hipsense.device.events import LinkEvent, LinkEventKind
from hipsense.device.bumble_backend import VirtualRadio
from hipsense.device.decoders import make_decoder
from hipsense.device.emulator import (
    Fate,
    ImuRecording,
    MovellaDotEmulator,
    PolarVeritySenseEmulator,
)
from hipsense.device.emulator.polar import VERITY_CLOCK_ORIGIN_NS
from hipsense.device.pair import SensorPair, SideItem
from hipsense.device.samples import GapReason
from hipsense.errors import DeviceNotFoundError
from tests.device.link.clocked import Collected, clocked_link
from tests.device.link.conftest import run, wait_until

SPEED = 5.0
ACC, GYRO = 2, 5


async def _collect(pair: SensorPair, out: dict[str, Collected], order: list[str]) -> None:
    async for tagged in pair.decoded():
        assert isinstance(tagged, SideItem)
        out[tagged.side].add(tagged.item)
        order.append(tagged.side)


def _polar_indices(times: list[float], rate_hz: float) -> list[int]:
    return np.rint((np.asarray(times) - VERITY_CLOCK_ORIGIN_NS / 1e9) * rate_hz).astype(int).tolist()


def test_two_polars_stream_side_by_side_and_a_drop_on_one_leaves_the_other_alone() -> None:
    drops = 5

    async def scenario() -> None:
        radio = VirtualRadio()
        out: dict[str, Collected] = defaultdict(Collected)
        order: list[str] = []
        left = PolarVeritySenseEmulator(
            radio, ImuRecording.swing(100_000), name="Polar Sense 0000AAAA", address="E0:9E:1A:00:00:0A", speed=SPEED
        )
        # The right thigh swings in antiphase, so a sample that landed on the wrong side shows.
        right_recording = ImuRecording.swing(100_000)
        right_recording = ImuRecording(52.0, right_recording.acc_ms2 * [-1, 1, 1], -right_recording.gyr_dps)
        right = PolarVeritySenseEmulator(
            radio, right_recording, name="Polar Sense 0000BBBB", address="E0:9E:1A:00:00:0B", speed=SPEED
        )
        async with left, right:
            pair = SensorPair(
                {
                    "left": clocked_link(radio, make_decoder("polar"), SPEED, address=left.address),
                    "right": clocked_link(radio, make_decoder("polar"), SPEED, address=right.address),
                }
            )
            assert pair.links["left"].adapter_lock is pair.links["right"].adapter_lock is not None
            async with pair:
                consumer = asyncio.create_task(_collect(pair, out, order))
                await wait_until(lambda: out["left"].gyr.n >= 52 and out["right"].gyr.n >= 52, timeout_s=5)
                for _ in range(drops):
                    target = out["left"].gyr.n + 52
                    await wait_until(lambda target=target: out["left"].gyr.n >= target and left.is_subscribed(), timeout_s=5)
                    await left.force_disconnect()
                await wait_until(lambda: len(out["left"].gyr.gaps) == drops and out["left"].gyr.n >= target + 52, timeout_s=5)
            await consumer

        # Both sides interleave in one stream.
        assert set(order) == {"left", "right"}
        switches = sum(1 for a, b in itertools.pairwise(order) if a != b)
        assert switches > 10
        for side, sensor in (("left", left), ("right", right)):
            for measurement, stream in ((ACC, out[side].acc), (GYRO, out[side].gyr)):
                received = _polar_indices(stream.sensor_time_s, 52.0)
                sent = np.rint(np.asarray(sensor.sent_times_s[measurement]) * 52.0).astype(int).tolist()
                assert received == sent[: len(received)], side  # complete, in order, exactly once
            # Each block is the side's own: the recordings differ in the sign of acc x.
            rows = [sensor.recording.index_at(i / 52.0) for i in _polar_indices(out[side].acc.sensor_time_s, 52.0)]
            assert np.allclose(np.asarray(out[side].acc.values), sensor.recording.acc_ms2[rows], atol=2e-3)
        # The dropped side: one gap per drop and stream, each counted on the device clock.
        assert len(out["left"].acc.gaps) == len(out["left"].gyr.gaps) == drops
        assert all(g.reason is GapReason.SENSOR_TIME_JUMP and (g.samples_lost or 0) > 0 for g in out["left"].gyr.gaps)
        assert pair.links["left"].stats.disconnects == drops
        # The other side never noticed: no drop, no gap, no hole.
        assert pair.links["right"].stats.disconnects == 0 and not out["right"].kinds(LinkEventKind.DISCONNECTED)
        assert not out["right"].acc.gaps and not out["right"].gyr.gaps
        assert np.all(np.diff(_polar_indices(out["right"].gyr.sensor_time_s, 52.0)) == 1)
        assert right.connections_accepted == 1
        await radio.close()

    run(scenario(), timeout_s=40)


def test_two_dots_connect_at_once_and_a_silent_one_reconnects_alone() -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        out: dict[str, Collected] = defaultdict(Collected)
        order: list[str] = []
        sensors = {
            side: MovellaDotEmulator(radio, ImuRecording.swing(100_000, 60.0), address=address, speed=SPEED)
            for side, address in (("left", "D4:22:CD:00:00:0A"), ("right", "D4:22:CD:00:00:0B"))
        }
        async with sensors["left"], sensors["right"]:
            pair = SensorPair(
                {
                    side: clocked_link(radio, make_decoder("movella_dot"), SPEED, address=s.address, silence_timeout_s=0.3 * SPEED)
                    for side, s in sensors.items()
                }
            )
            async with pair:
                consumer = asyncio.create_task(_collect(pair, out, order))
                await wait_until(lambda: out["left"].acc.n >= 60 and out["right"].acc.n >= 60, timeout_s=5)
                sensors["right"].go_silent()  # firmware hang: connected, nothing sent
                await wait_until(lambda: len(out["right"].acc.gaps) == 1, timeout_s=5)
                before = out["right"].acc.n
                await wait_until(lambda: out["right"].acc.n >= before + 60, timeout_s=5)
            await consumer
        for side, sensor in sensors.items():
            sent = [round(f.sensor_time_s * 60.0) for f in sensor.fates if f.fate is Fate.SENT]
            us = np.rint(np.asarray(out[side].acc.sensor_time_s) * 1e6).astype(np.int64)
            received = (np.rint((us - us[0]) * 60.0 / 1e6).astype(int) + sent[0]).tolist()
            assert received == sent[: len(received)], side
        assert [e.detail for e in out["right"].kinds(LinkEventKind.DISCONNECTED)] == ["no data for 1.5 s"]
        assert not out["left"].kinds(LinkEventKind.DISCONNECTED) and not out["left"].acc.gaps
        assert pair.links["left"].stats.connects == 1 and pair.links["right"].stats.connects == 2
        await radio.close()

    run(scenario(), timeout_s=40)


def test_a_side_that_gives_up_raises_from_the_pair() -> None:
    async def scenario() -> None:
        radio = VirtualRadio()
        async with PolarVeritySenseEmulator(radio, ImuRecording.swing(1000), speed=SPEED) as sensor:
            pair = SensorPair(
                {
                    "left": clocked_link(radio, make_decoder("polar"), SPEED, address=sensor.address),
                    "right": clocked_link(
                        radio, make_decoder("polar"), SPEED, address="E0:9E:1A:00:00:99", scan_timeout_s=0.2, max_failed_attempts=1
                    ),
                }
            )
            seen: list[SideItem] = []
            with pytest.raises(DeviceNotFoundError, match="E0:9E:1A:00:00:99"):
                async with pair:
                    async for tagged in pair.decoded():
                        seen.append(tagged)
        assert all(t.side == "left" for t in seen)
        assert any(isinstance(t.item, LinkEvent) and t.item.kind is LinkEventKind.CONNECTED for t in seen)
        await radio.close()

    run(scenario())
