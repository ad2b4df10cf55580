"""Hypothesis settings and strategies shared by the device tests.

Budgets are per test, not a global profile, so other folders' hypothesis tests keep their own.
The whole device suite must stay well under ~30 s on two cores.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from hipsense.device.decoders import SensorDecoder
from hipsense.device.samples import ImuSamples
from hipsense.errors import DecodeError

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
"""Budget for fuzzing one decoder with arbitrary or mutated bytes."""

PROPERTY = settings(max_examples=60, deadline=None)
"""Budget for slower property tests (clock simulations, recordings)."""


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """A valid notification truncated, extended, or with a few bits flipped or bytes replaced."""
    data = bytearray(valid)
    kind = draw(st.sampled_from(["truncate", "flip", "replace", "extend", "mixed"]))
    if kind in ("flip", "mixed"):
        for _ in range(draw(st.integers(1, 4))):
            if data:
                i = draw(st.integers(0, len(data) - 1))
                data[i] ^= 1 << draw(st.integers(0, 7))
    if kind in ("replace", "mixed") and data:
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    if kind in ("truncate", "mixed"):
        data = data[: draw(st.integers(0, len(data)))]
    if kind == "extend":
        data += draw(st.binary(min_size=1, max_size=24))
    return bytes(data)


def decode_or_decode_error(
    make: Callable[[], SensorDecoder], payload: bytes, char_uuid: str | None = None
) -> ImuSamples | None:
    """Decode with a fresh decoder; DecodeError is fine, any other exception fails the test."""
    decoder = make()
    try:
        samples = decoder.decode(payload, 1000.0, char_uuid=char_uuid)
    except DecodeError:
        return None
    assert isinstance(samples, ImuSamples)
    for block in (samples.acc_ms2, samples.gyr_rad_s, samples.euler_rad):
        if block is not None:
            assert block.shape == (samples.n, 3)
            assert np.all(np.isfinite(block)), "decoders must never emit NaN or inf"
    assert np.all(np.diff(samples.t_s) > 0)
    return samples
