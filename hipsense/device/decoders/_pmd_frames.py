"""Polar PMD data frames: header, raw and delta-compressed sample blocks, per-sample times.

Facts from sensors.md §3.3, which cites ``polarofficial/polar-ble-sdk``
(``.../pmd/PmdDataFrame.kt``, ``model/AccData.kt``, ``model/GyrData.kt``,
``model/PmdTimeStampUtils.kt`` and their unit tests). Split out of ``polar_pmd.py`` so the
bit-level work sits apart from the GATT and command protocol.

Frame layout::

    0      measurement type (2 = ACC, 5 = GYRO)
    1..8   uint64 LE, ns since 2000-01-01T00:00:00Z: time of the LAST sample in the frame
    9      frame type: bit 7 = delta-compressed, bits 0..6 = type number
    10..   samples

Raw frames: channels x, y, z interleaved, 1/2/3-byte signed LE for types 0/1/2.
Compressed frames: a reference sample (3 channels, signed LE of the stream's width), then
blocks ``[delta_bits u8][count u8]`` + ``ceil(count * 3 * delta_bits / 8)`` bytes of
two's-complement deltas, read LSB-first within each byte; each sample adds its deltas to the
previous sample.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hipsense.errors import DecodeError

__all__ = ["FrameFormat", "PmdFrame", "parse_data_frame", "sample_times_ns"]

HEADER_LENGTH = 10
CHANNELS = 3
COMPRESSED_FLAG = 0x80
MEASUREMENT_ACC = 2
MEASUREMENT_GYRO = 5
MAX_DELTA_BITS = 32


class Encoding(enum.Enum):
    SIGNED_INT = "int"
    FLOAT32_BITS = "float32"  # deltas are added to the IEEE-754 bit pattern, then reinterpreted


@dataclass(frozen=True, slots=True)
class FrameFormat:
    """How one (measurement type, frame type) pair is stored and scaled.

    ``unit_per_count`` is multiplied by the start response's FACTOR when ``uses_factor``; the
    result is in mG for ACC and deg/s for GYRO.
    """

    width_bits: int
    encoding: Encoding
    uses_factor: bool
    unit_per_count: float


# (measurement type, compressed, frame type number) → format. Anything else is unsupported, as
# in the Polar SDK's parsers.
FRAME_FORMATS: dict[tuple[int, bool, int], FrameFormat] = {
    # Raw ACC counts are mG directly (H10 type 1).
    (MEASUREMENT_ACC, False, 0): FrameFormat(8, Encoding.SIGNED_INT, False, 1.0),
    (MEASUREMENT_ACC, False, 1): FrameFormat(16, Encoding.SIGNED_INT, False, 1.0),
    (MEASUREMENT_ACC, False, 2): FrameFormat(24, Encoding.SIGNED_INT, False, 1.0),
    # Compressed ACC type 0 is the odd one: count × FACTOR is in g, hence × 1000 for mG.
    (MEASUREMENT_ACC, True, 0): FrameFormat(16, Encoding.SIGNED_INT, True, 1000.0),
    (MEASUREMENT_ACC, True, 1): FrameFormat(16, Encoding.SIGNED_INT, True, 1.0),
    (MEASUREMENT_GYRO, True, 0): FrameFormat(16, Encoding.SIGNED_INT, True, 1.0),
    (MEASUREMENT_GYRO, True, 1): FrameFormat(32, Encoding.FLOAT32_BITS, True, 1.0),
}


@dataclass(frozen=True, slots=True)
class PmdFrame:
    """One decoded PMD data frame.

    ``values`` has shape (n, 3): mG for ACC, deg/s for GYRO, already scaled by the FACTOR.
    ``timestamp_ns`` is the sensor time of the last sample, ns since 2000-01-01 UTC.
    """

    measurement_type: int
    timestamp_ns: int
    frame_type: int
    compressed: bool
    values: npt.NDArray[np.float64]


def _signed_le(data: bytes, width_bytes: int) -> npt.NDArray[np.int64]:
    """Little-endian two's-complement integers of ``width_bytes`` each."""
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, width_bytes).astype(np.int64)
    unsigned = (raw << (8 * np.arange(width_bytes, dtype=np.int64))).sum(axis=1)
    sign_bit = np.int64(1) << (8 * width_bytes - 1)
    return unsigned - ((unsigned & sign_bit) << 1)


def _unpack_deltas(data: bytes, count: int, bits: int) -> npt.NDArray[np.int64]:
    """``count`` × 3 two's-complement deltas of ``bits`` each, LSB-first bit order."""
    if bits == 0:
        return np.zeros((count, CHANNELS), dtype=np.int64)
    total = count * CHANNELS
    bit_array = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
    fields = bit_array[: total * bits].reshape(total, bits).astype(np.int64)
    unsigned = fields @ (np.int64(1) << np.arange(bits, dtype=np.int64))
    signed = unsigned - (fields[:, -1] << bits)
    return signed.reshape(count, CHANNELS)


def _decompress(body: bytes, fmt: FrameFormat, payload: bytes) -> npt.NDArray[np.int64]:
    """Reference sample + delta blocks → integer samples (n, 3), n >= 1."""
    width_bytes = fmt.width_bits // 8
    reference_length = CHANNELS * width_bytes
    if len(body) < reference_length:
        raise DecodeError("PMD compressed frame shorter than its reference sample", payload=payload)
    reference = _signed_le(body[:reference_length], width_bytes)
    if fmt.encoding is Encoding.FLOAT32_BITS:
        reference = reference & 0xFFFFFFFF  # work on the unsigned bit pattern
    blocks = [reference.reshape(1, CHANNELS)]
    offset = reference_length
    while offset < len(body):
        if offset + 2 > len(body):
            raise DecodeError("PMD delta block header cut short", payload=payload)
        bits, count = body[offset], body[offset + 1]
        offset += 2
        if bits > MAX_DELTA_BITS:
            raise DecodeError(f"PMD delta width {bits} bits is impossible", payload=payload)
        length = math.ceil(count * CHANNELS * bits / 8)
        if offset + length > len(body):
            raise DecodeError(
                f"PMD delta block needs {length} bytes, {len(body) - offset} left", payload=payload
            )
        blocks.append(_unpack_deltas(body[offset : offset + length], count, bits))
        offset += length
    samples = np.cumsum(np.concatenate(blocks), axis=0)
    if fmt.encoding is Encoding.FLOAT32_BITS:
        samples &= 0xFFFFFFFF  # the SDK adds in 32-bit ints, so sums wrap
    return samples


def _to_units(
    counts: npt.NDArray[np.int64], fmt: FrameFormat, factor: float
) -> npt.NDArray[np.float64]:
    if fmt.encoding is Encoding.FLOAT32_BITS:
        values = counts.astype(np.uint32).view(np.float32).astype(np.float64)
    else:
        values = counts.astype(np.float64)
    scale = fmt.unit_per_count * (factor if fmt.uses_factor else 1.0)
    return values * scale


def parse_data_frame(payload: bytes, *, factor: float | None) -> PmdFrame:
    """Decode one PMD data notification.

    Parameters
    ----------
    payload
        The notification value from the PMD data characteristic.
    factor
        The FACTOR from this stream's start response; None when none was seen. Compressed
        frames cannot be scaled without it and raise.

    Raises
    ------
    DecodeError
        Short header, unsupported measurement or frame type, bad lengths, missing factor,
        or non-finite values.
    """
    if len(payload) < HEADER_LENGTH:
        raise DecodeError(f"PMD frame of {len(payload)} bytes has no full header", payload=payload)
    measurement_type = payload[0]
    timestamp_ns = int.from_bytes(payload[1:9], "little")
    compressed = bool(payload[9] & COMPRESSED_FLAG)
    frame_type = payload[9] & ~COMPRESSED_FLAG & 0xFF
    fmt = FRAME_FORMATS.get((measurement_type, compressed, frame_type))
    if fmt is None:
        raise DecodeError(
            f"PMD measurement type {measurement_type}, "
            f"{'compressed' if compressed else 'raw'} frame type {frame_type} is not supported",
            payload=payload,
        )
    body = payload[HEADER_LENGTH:]
    if compressed:
        if factor is None:
            raise DecodeError(
                "compressed PMD frame before any start response gave its FACTOR", payload=payload
            )
        counts = _decompress(body, fmt, payload)
    else:
        sample_length = CHANNELS * fmt.width_bits // 8
        if not body or len(body) % sample_length:
            raise DecodeError(
                f"raw PMD frame body of {len(body)} bytes is not whole "
                f"{sample_length}-byte samples",
                payload=payload,
            )
        counts = _signed_le(body, fmt.width_bits // 8).reshape(-1, CHANNELS)
    values = _to_units(counts, fmt, 1.0 if factor is None else factor)
    if not np.all(np.isfinite(values)):
        raise DecodeError("PMD frame decodes to non-finite values", payload=payload)
    return PmdFrame(measurement_type, timestamp_ns, frame_type, compressed, values)


def _div_round_half_even(numerator: int, denominator: int) -> int:
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2):
        quotient += 1
    return quotient


def sample_times_ns(
    previous_ns: int | None, frame_ns: int, n: int, rate_hz: float, *, missing: int = 0
) -> list[int]:
    """Sensor time (ns since 2000) of each of a frame's ``n`` samples, oldest first.

    As the Polar SDK does (``PmdTimeStampUtils.getTimeStamps``): with a previous frame, the
    samples are spaced evenly between its timestamp and this one; for the first frame, at the
    nominal ``rate_hz``. The last sample always gets exactly ``frame_ns``. ``missing`` samples
    known to be lost before this frame extend the even spacing over them too. Rounding is half
    to even, as the SDK's. Exact integer arithmetic: timestamps reach 2**63.

    Raises DecodeError when the first sample would fall before the clock's epoch.
    """
    if previous_ns is None:
        period_ns = 1e9 / rate_hz
        times = [frame_ns - round((n - 1 - i) * period_ns) for i in range(n)]
    else:
        span = frame_ns - previous_ns
        slots = n + missing
        times = [
            previous_ns + _div_round_half_even(span * (missing + i + 1), slots) for i in range(n)
        ]
    times[-1] = frame_ns
    if times[0] < 0:
        raise DecodeError(f"PMD timestamp {frame_ns} ns is earlier than its {n} samples")
    return times
