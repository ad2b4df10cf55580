"""The emulator's PMD encoder against sensors.md's byte layout and test vector, and against the
project's decoder (written separately, so a round trip through both catches a slip in either)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from hipsense.device.decoders._pmd_frames import parse_data_frame
from hipsense.device.decoders.polar_pmd import (
    ControlPointResponse,
    SettingType,
    build_start,
    parse_control_point,
    parse_features,
)
from hipsense.device.emulator.pmd_encoder import (
    delta_bits,
    encode_compressed_frame,
    encode_features,
    encode_response,
    encode_settings,
    pack_deltas,
)
from hipsense.device.emulator.polar import frame_capacity


def test_gyro_frame_matches_the_sdk_test_vector_byte_for_byte() -> None:
    # sensors.md §3.3, GyrDataTest.kt: reference (-22, 8, 13), then one 3-bit block of one sample.
    frame = encode_compressed_frame(5, 0x7FFF_FFFF_FFFF_FFFF, [(-22, 8, 13), (-23, 11, 16)])
    assert frame == bytes.fromhex("05 FFFFFFFFFFFFFF7F 80 EAFF 0800 0D00 0301 DF00")


def test_delta_packing_is_lsb_first_twos_complement() -> None:
    assert delta_bits(np.array([[-1, 3, 3]])) == 3
    assert delta_bits(np.array([[-4, 0, 0]])) == 3
    assert delta_bits(np.array([[4, 0, 0]])) == 4
    assert delta_bits(np.array([[0, 0, 0]])) == 1
    assert pack_deltas(np.array([[-1, 3, 3]]), 3) == bytes([0xDF, 0x00])
    # 10-bit fields straddle bytes: 0x155 then -1 (0x3FF) then 0.
    assert pack_deltas(np.array([[0x155, -1, 0]]), 10) == (0x155 | 0x3FF << 10).to_bytes(4, "little")


@pytest.mark.parametrize("block_samples", [1, 7, 255])
def test_random_frames_round_trip_through_the_project_decoder(block_samples: int) -> None:
    rng = np.random.default_rng(block_samples)
    for trial in range(150):
        n = int(rng.integers(1, 60))
        if trial % 3 == 0:  # full-range jumps: 17-bit deltas
            counts = rng.integers(-32768, 32768, size=(n, 3))
        else:  # smooth movement: narrow deltas
            counts = np.clip(np.cumsum(rng.integers(-50, 50, size=(n, 3)), axis=0), -32768, 32767)
        timestamp = int(rng.integers(0, 2**63))
        for measurement, frame_type in ((2, 1), (2, 0), (5, 0)):
            frame = encode_compressed_frame(
                measurement, timestamp, counts, frame_type=frame_type, block_samples=block_samples
            )
            decoded = parse_data_frame(frame, factor=0.5)
            unit = 1000.0 if (measurement, frame_type) == (2, 0) else 1.0
            assert decoded.measurement_type == measurement and decoded.timestamp_ns == timestamp
            assert decoded.compressed and decoded.frame_type == frame_type
            np.testing.assert_array_equal(decoded.values, counts * 0.5 * unit)


def test_encoder_refuses_what_a_16_bit_stream_cannot_carry() -> None:
    with pytest.raises(ValueError, match="int16"):
        encode_compressed_frame(2, 0, [(40000, 0, 0)])
    with pytest.raises(ValueError, match="shape"):
        encode_compressed_frame(2, 0, np.zeros((0, 3)))


def test_control_point_replies_decode_as_the_decoder_expects() -> None:
    # The settings reply to `01 02` on a Verity in normal mode.
    settings = encode_settings({0: (52,), 1: (16,), 2: (8,), 4: (3,)})
    reply = encode_response(0x01, 2, 0, settings)
    assert reply == bytes.fromhex("F0 01 02 00 00  00 01 3400  01 01 1000  02 01 0800  04 01 03")
    parsed = parse_control_point(reply)
    assert isinstance(parsed, ControlPointResponse) and parsed.ok
    assert parsed.settings == {0: (52,), 1: (16,), 2: (8,), 4: (3,)}
    # The start reply carries the FACTOR as float32.
    start = encode_response(0x02, 5, 0, encode_settings({5: (2000 / 32768,)}))
    assert start[:7] == bytes.fromhex("F0 02 05 00 00 05 01")
    assert struct.unpack("<f", start[7:])[0] == pytest.approx(2000 / 32768)
    assert parse_control_point(start).settings[SettingType.FACTOR][0] == pytest.approx(2000 / 32768)  # type: ignore[union-attr]
    # Errors carry no parameters.
    error = parse_control_point(encode_response(0x02, 2, 8, settings))
    assert isinstance(error, ControlPointResponse) and error.status == 8 and error.parameters == b""
    # What the emulator parses is what the decoder builds.
    assert build_start(2, {0: 52, 1: 16, 2: 8, 4: 3}) == bytes.fromhex("02 02 00 01 34 00 01 01 10 00 02 01 08 00 04 01 03")


def test_feature_bitmap() -> None:
    assert encode_features([1, 2, 3, 5, 6, 9]) == bytes.fromhex("0F 6E 02")
    assert parse_features(encode_features([1, 2, 3, 5, 6, 9])) == {1, 2, 3, 5, 6, 9}


def test_frames_never_outgrow_the_mtu() -> None:
    for mtu in (23, 64, 185, 232, 247, 517):
        for block_samples in (1, 4, 255):
            n = frame_capacity(mtu, block_samples)
            worst = np.full((n, 3), -16384, dtype=np.int64)
            worst[1::2] = 16383  # every delta is ±32767: the full 16 bits
            frame = encode_compressed_frame(2, 0, worst, block_samples=block_samples)
            assert len(frame) <= mtu - 3 or n == 1, (mtu, block_samples, n, len(frame))
