"""Test doubles for the service's edges."""

from __future__ import annotations

import numpy as np

from hipsense.device.samples import ImuSamples


class RecordingSpeaker:
    """A fake speaker: records the phrases the voice would speak, so tests can read them."""

    def __init__(self) -> None:
        self.phrases: list[str] = []
        self.closed = False

    def say(self, phrase: str) -> None:
        self.phrases.append(phrase)

    def close(self) -> None:
        self.closed = True


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


def blocks(t: np.ndarray, acc: np.ndarray, gyr: np.ndarray | None, per_block: int = 4):
    """Cut a recording into notification-sized blocks, as the BLE link hands them over."""
    for a in range(0, len(t), per_block):
        yield ImuSamples(t_s=t[a:a + per_block], acc_ms2=acc[a:a + per_block],
                         gyr_rad_s=None if gyr is None else gyr[a:a + per_block])
