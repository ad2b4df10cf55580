"""The sensor side of Polar PMD: data frames (delta-compressed) and control-point replies.

Written from the byte tables in ``docs/sensors.md`` §3, independently of the project's decoder
(``hipsense.device.decoders.polar_pmd`` and ``_pmd_frames``), so that a test through both
catches a mistake in either. Nothing here imports the decoder.

Data frame::

    0      measurement type (2 = ACC, 5 = GYRO)
    1..8   uint64 LE: ns since 2000-01-01T00:00:00Z of the LAST sample in the frame
    9      frame type: 0x80 (compressed) | type number
    10..   reference sample: 3 channels, signed LE, 2 bytes each (16-bit streams)
           blocks: [delta_bits u8][count u8] + ceil(count * 3 * delta_bits / 8) bytes of
           two's-complement deltas, x, y, z of each sample in turn, LSB-first in each byte

Control-point reply (an indication): ``F0 <op> <type> <status> <more> <parameters…>``, the
parameters being settings groups ``[type u8][count u8][count values LE]``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

__all__ = [
    "ACC",
    "GYRO",
    "SDK_MODE",
    "delta_bits",
    "encode_compressed_frame",
    "encode_features",
    "encode_response",
    "encode_settings",
    "pack_deltas",
]

ACC = 2
GYRO = 5
SDK_MODE = 9
CHANNELS = 3
COMPRESSED = 0x80
RESPONSE = 0xF0
FEATURES = 0x0F
MAX_BLOCK_SAMPLES = 255  # the block's sample count is one byte

# Setting type → value width in bytes (sensors.md §3.2); 5 = FACTOR is a float32.
SETTING_WIDTHS = {0: 2, 1: 2, 2: 2, 3: 4, 4: 1, 5: 4}
SETTING_FACTOR = 5


def delta_bits(deltas: npt.NDArray[np.int64]) -> int:
    """The narrowest two's-complement width (>= 1 bit) that holds every delta."""
    if deltas.size == 0:
        return 1
    low, high = int(deltas.min()), int(deltas.max())
    bits = 1
    while low < -(1 << (bits - 1)) or high > (1 << (bits - 1)) - 1:
        bits += 1
    return bits


def pack_deltas(deltas: npt.NDArray[np.int64], bits: int) -> bytes:
    """Deltas of shape (count, 3) as ``bits``-wide fields, LSB-first, in row order.

    Field k occupies bits ``k*bits … (k+1)*bits - 1`` of one little-endian bit string, which is
    exactly "LSB-first within each byte, bytes in order"; a Python int is that bit string.
    """
    flat = [int(v) for v in np.asarray(deltas, dtype=np.int64).ravel()]
    mask = (1 << bits) - 1
    packed = 0
    for k, value in enumerate(flat):
        packed |= (value & mask) << (k * bits)
    return packed.to_bytes(math.ceil(len(flat) * bits / 8), "little")


def encode_compressed_frame(
    measurement: int,
    timestamp_ns: int,
    counts: npt.ArrayLike,
    *,
    frame_type: int = 0,
    block_samples: int = MAX_BLOCK_SAMPLES,
) -> bytes:
    """A delta-compressed 16-bit frame holding ``counts`` (shape (n, 3), int16 range).

    Parameters
    ----------
    measurement
        2 (ACC) or 5 (GYRO).
    timestamp_ns
        Sensor time of the last sample, ns since 2000-01-01.
    counts
        Integer samples; the first becomes the reference sample.
    frame_type
        The type number (0 or 1) ORed with the compressed flag.
    block_samples
        Most samples per delta block; each block gets the narrowest width its deltas need,
        so shorter blocks compress a burst of movement better (and exercise the decoder's
        block loop).
    """
    samples = np.asarray(counts, dtype=np.int64)
    if samples.ndim != 2 or samples.shape[1] != CHANNELS or samples.shape[0] == 0:
        raise ValueError(f"counts must have shape (n>0, 3), got {samples.shape}")
    if samples.min() < -32768 or samples.max() > 32767:
        raise ValueError("16-bit PMD samples must lie in the int16 range")
    if not 0 < block_samples <= MAX_BLOCK_SAMPLES:
        raise ValueError(f"block_samples must be 1..{MAX_BLOCK_SAMPLES}, got {block_samples}")
    out = bytearray(struct.pack("<BQB", measurement, timestamp_ns, COMPRESSED | frame_type))
    out += struct.pack("<3h", *(int(v) for v in samples[0]))
    deltas = np.diff(samples, axis=0)
    for start in range(0, deltas.shape[0], block_samples):
        block = deltas[start : start + block_samples]
        bits = delta_bits(block)
        out += bytes([bits, block.shape[0]]) + pack_deltas(block, bits)
    return bytes(out)


def encode_settings(settings: Mapping[int, Sequence[float]]) -> bytes:
    """Settings groups ``[type][count][values LE]`` in ascending type; FACTOR as float32."""
    out = bytearray()
    for setting_type in sorted(settings):
        values = list(settings[setting_type])
        out += bytes([setting_type, len(values)])
        for value in values:
            if setting_type == SETTING_FACTOR:
                out += struct.pack("<f", float(value))
            else:
                out += int(value).to_bytes(SETTING_WIDTHS[setting_type], "little", signed=setting_type == 3)
    return bytes(out)


def encode_response(op_code: int, measurement: int, status: int = 0, parameters: bytes = b"") -> bytes:
    """A control-point reply; errors carry no parameters, and nothing here spans two replies."""
    return bytes([RESPONSE, op_code, measurement, status, 0]) + (parameters if status == 0 else b"")


def encode_features(measurements: Sequence[int]) -> bytes:
    """The control point's read value: ``0F`` then a bitmap, bit n = measurement type n."""
    bitmap = sum(1 << m for m in set(measurements))
    width = max(2, math.ceil(bitmap.bit_length() / 8))
    return bytes([FEATURES]) + bitmap.to_bytes(width, "little")
