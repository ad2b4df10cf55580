"""What the service hands the engine from one sensor link (service.read_sensor): the ACC and
GYRO blocks of a Polar or a MetaMotion joined, everything else straight through, and nothing
held back behind a link drop."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from hipsense.device.decoders import make_decoder
from hipsense.device.events import LinkEvent, LinkEventKind
from hipsense.device.samples import ImuSamples
from hipsense.service.service import read_sensor

RATE_HZ = 52.0


class FakeWorker:
    def __init__(self) -> None:
        self.submitted: list[tuple[str, object]] = []

    def submit(self, kind: str, payload: object = None) -> None:
        self.submitted.append((kind, payload))

    def samples(self) -> list[ImuSamples]:
        return [payload[1] for kind, payload in self.submitted if kind == "samples"]


class FakeLink:
    """A link that yields ``items``, then stays silent (the sensor never comes back). Records,
    each time the reader asks for the next item, how much the worker had been handed."""

    def __init__(self, sensor_type: str, items, worker: FakeWorker) -> None:
        self.decoder = make_decoder(sensor_type)
        self.address = "AA:BB:CC:DD:EE:FF"
        self.items, self.worker = list(items), worker
        self.handed_after: list[int] = []
        self.silent = asyncio.Event()

    async def decoded(self):
        for item in self.items:
            yield item
            self.handed_after.append(len(self.worker.submitted))
        self.silent.set()
        await asyncio.Event().wait()  # nothing more, ever


def _motion(n: int):
    t = 100.0 + np.arange(n) / RATE_HZ
    acc = np.stack([np.sin(t), np.cos(t), 9.81 + 0 * t], 1)
    gyr = np.stack([0.1 * np.cos(t), 0.2 * np.sin(t), 0 * t], 1)
    return t, acc, gyr


def _split(n: int = 26 * 6, frame: int = 26):
    """As a Polar sends them: an ACC frame, then the previous frame's GYRO."""
    t, acc, gyr = _motion(n)
    out: list[ImuSamples] = []
    for a in range(0, n, frame):
        out.append(ImuSamples(t_s=t[a:a + frame], acc_ms2=acc[a:a + frame]))
        if a:
            out.append(ImuSamples(t_s=t[a - frame:a], gyr_rad_s=gyr[a - frame:a]))
    return out


def _read_until_silent(link: FakeLink, worker: FakeWorker, *, gyroscope: bool) -> None:
    async def main() -> None:
        reader = asyncio.create_task(read_sensor(0, link, worker, gyroscope=gyroscope))
        await link.silent.wait()
        await asyncio.sleep(0)
        snapshot = list(worker.submitted)
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        worker.submitted = snapshot  # what had reached the engine while the link stayed down

    asyncio.run(main())


@pytest.mark.parametrize("sensor_type", ["polar", "metamotion"])
def test_a_link_drop_hands_on_every_held_sample_before_the_event(sensor_type):
    worker = FakeWorker()
    drop = LinkEvent(LinkEventKind.DISCONNECTED, 103.0, "silent")
    link = FakeLink(sensor_type, [*_split(), drop], worker)  # the last ACC frame's GYRO never came
    _read_until_silent(link, worker, gyroscope=True)
    kinds = [kind for kind, _ in worker.submitted]
    assert kinds[-1] == "event" and worker.submitted[-1][1][1] is drop
    assert set(kinds[:-1]) == {"samples"}
    samples = worker.samples()
    assert sum(b.n for b in samples) == 26 * 6  # every sample, before the news of the drop
    assert all(b.gyr_rad_s is not None for b in samples)  # joined (the last with its rate held)


@pytest.mark.parametrize("sensor_type", ["polar", "metamotion"])
def test_an_accelerometer_only_sensor_is_handed_on_at_once(sensor_type):
    t, acc, _ = _motion(26 * 8)
    blocks = [ImuSamples(t_s=t[a:a + 26], acc_ms2=acc[a:a + 26]) for a in range(0, len(t), 26)]
    worker = FakeWorker()
    link = FakeLink(sensor_type, blocks, worker)
    _read_until_silent(link, worker, gyroscope=False)
    assert link.handed_after == list(range(1, len(blocks) + 1))  # each block before the next arrives
    assert worker.samples() == blocks


def test_blocks_that_carry_both_go_straight_through():
    t, acc, gyr = _motion(40)
    blocks = [ImuSamples(t_s=t[a:a + 4], acc_ms2=acc[a:a + 4], gyr_rad_s=gyr[a:a + 4]) for a in range(0, 40, 4)]
    worker = FakeWorker()
    link = FakeLink("witmotion", blocks, worker)
    _read_until_silent(link, worker, gyroscope=True)
    assert link.handed_after == list(range(1, len(blocks) + 1))
    assert all(a is b for a, b in zip(worker.samples(), blocks, strict=True))
