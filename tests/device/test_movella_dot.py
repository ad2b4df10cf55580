"""Movella DOT decoder: the sensors.md §2.3 vector, commands, wraps, gaps, fuzzing."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hipsense.device.decoders import movella_dot as dot
from hipsense.device.decoders.movella_dot import MovellaDotDecoder, parse_rate_quantities
from hipsense.device.samples import GapReason
from hipsense.errors import DecodeError
from tests.device.fuzzing import FUZZ, decode_or_decode_error, mutated

# sensors.md §2.3, synthetic (spec layout): 28 bytes + 12 bytes of zero padding.
SYNTHETIC = bytes.fromhex(
    "87 d6 12 00 8f c2 f5 3d cd cc 4c bd c3 f5 1c 41 00 00 c0 3f 00 00 f2 c1 00 00 00 00"
) + bytes(12)


def payload(timestamp_us: int, acc: tuple[float, float, float] = (0.0, 0.0, 9.81),
            gyr_dps: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> bytes:  # fmt: skip
    return struct.pack("<I6f", timestamp_us % 2**32, *acc, *gyr_dps) + bytes(12)


def test_synthetic_vector() -> None:
    sample = parse_rate_quantities(SYNTHETIC)
    assert sample.timestamp_us == 1_234_567
    np.testing.assert_allclose(sample.acc_ms2, (0.12, -0.05, 9.81), rtol=1e-7)
    assert sample.gyr_dps == (1.5, -30.25, 0.0)
    samples = MovellaDotDecoder().decode(SYNTHETIC, 20.0)
    assert samples.n == 1 and samples.t_s.tolist() == [20.0]
    assert samples.sensor_time_s.tolist() == [1.234567]
    np.testing.assert_allclose(samples.gyr_rad_s[0], np.deg2rad([1.5, -30.25, 0.0]))
    np.testing.assert_allclose(samples.acc_ms2[0], (0.12, -0.05, 9.81), rtol=1e-7)


def test_28_bytes_without_padding_and_mode_20_are_accepted() -> None:
    assert parse_rate_quantities(SYNTHETIC[:28]).timestamp_us == 1_234_567
    with_mag = SYNTHETIC[:28] + bytes.fromhex("0100 0200 0300")
    assert parse_rate_quantities(with_mag).gyr_dps == (1.5, -30.25, 0.0)


@pytest.mark.parametrize("bad", [b"", SYNTHETIC[:27], SYNTHETIC + b"\x00"])
def test_bad_lengths(bad: bytes) -> None:
    with pytest.raises(DecodeError):
        MovellaDotDecoder().decode(bad, 1.0)


def test_nan_is_rejected() -> None:
    with pytest.raises(DecodeError, match="non-finite"):
        parse_rate_quantities(SYNTHETIC[:4] + bytes.fromhex("0000c07f") + SYNTHETIC[8:])


def test_commands() -> None:
    assert dot.build_measurement_control(start=True).hex(" ") == "01 01 15"
    assert dot.build_measurement_control(start=False).hex(" ") == "01 00 15"
    decoder = MovellaDotDecoder()
    assert [(w.char_uuid, w.data.hex()) for w in decoder.start_writes()] == [
        (dot.MEASUREMENT_CONTROL_UUID, "010115")
    ]
    assert decoder.stop_writes()[0].data.hex() == "010015"
    assert dot.MEASUREMENT_CONTROL_UUID == "15172001-4947-11e9-8646-d663bd873d93"
    assert dot.MEDIUM_PAYLOAD_UUID == "15172003-4947-11e9-8646-d663bd873d93"
    assert decoder.notify_uuids == (dot.MEDIUM_PAYLOAD_UUID,)


def test_output_rate_is_a_read_modify_write() -> None:
    current = bytes(range(32))
    written = dot.build_output_rate_control(current, 30)
    assert written[0] == 0x10
    assert written[24:26] == (30).to_bytes(2, "little")
    assert written[1:24] == current[1:24] and written[26:] == current[26:]
    with pytest.raises(ValueError):
        dot.build_output_rate_control(current, 120)  # recording only
    with pytest.raises(DecodeError):
        dot.build_output_rate_control(current[:31], 60)


def test_battery() -> None:
    assert dot.parse_battery(b"\x57\x01") == (87, True)
    with pytest.raises(DecodeError):
        dot.parse_battery(b"\x65\x00")


def stream(
    decoder: MovellaDotDecoder,
    first_us: int,
    count: int,
    host0: float,
    skip: set[int] = frozenset(),
):
    period_us = 1e6 / 60
    out = []
    for i in range(count):
        if i in skip:
            continue
        out.append(decoder.decode(payload(round(first_us + i * period_us)), host0 + i / 60 + 0.005))
    return out


def test_timestamp_wrap_is_continuous() -> None:
    decoder = MovellaDotDecoder()
    blocks = stream(decoder, 2**32 - 30 * 16_667, 60, 100.0)
    sensor = np.concatenate([b.sensor_time_s for b in blocks])
    assert not any(b.gaps for b in blocks)
    np.testing.assert_allclose(np.diff(sensor), 1 / 60, atol=2e-6)
    assert sensor[-1] > 2**32 / 1e6
    np.testing.assert_allclose(
        np.concatenate([b.t_s for b in blocks]) - sensor, blocks[0].t_s[0] - sensor[0], atol=1e-6
    )


def test_lost_notifications_are_counted_exactly() -> None:
    decoder = MovellaDotDecoder()
    blocks = stream(decoder, 5_000_000, 40, 10.0, skip={10, 11, 12, 30})
    gaps = [g for b in blocks for g in b.gaps]
    assert [(g.samples_lost, g.reason) for g in gaps] == [
        (3, GapReason.SENSOR_TIME_JUMP),
        (1, GapReason.SENSOR_TIME_JUMP),
    ]
    assert gaps[0].end_s - gaps[0].start_s == pytest.approx(4 / 60, abs=1e-4)


def test_long_silence_over_a_wrap_keeps_counting() -> None:
    decoder = MovellaDotDecoder()
    decoder.decode(payload(1_000_000), 10.0)
    silence_s = 80 * 60.0  # longer than the 71.6 min wrap
    after = decoder.decode(payload(1_000_000 + round(silence_s * 1e6)), 10.0 + silence_s)
    assert after.sensor_time_s[0] == pytest.approx(1.0 + silence_s)
    (gap,) = after.gaps
    assert gap.samples_lost == round(silence_s * 60) - 1


def test_clock_going_backwards_is_a_reset() -> None:
    decoder = MovellaDotDecoder()
    before = stream(decoder, 50_000_000, 10, 10.0)
    after = decoder.decode(payload(1_000), 10.0 + 10 / 60)
    (gap,) = after.gaps
    assert gap.reason is GapReason.SENSOR_CLOCK_RESET and gap.samples_lost is None
    assert after.t_s[0] > before[-1].t_s[0]
    assert after.sensor_time_s[0] == pytest.approx(0.001)


def make() -> MovellaDotDecoder:
    return MovellaDotDecoder()


@FUZZ
@given(st.binary(max_size=48))
def test_fuzz_any_bytes(data: bytes) -> None:
    decode_or_decode_error(make, data)


@FUZZ
@given(mutated(SYNTHETIC))
def test_fuzz_mutated_vector(data: bytes) -> None:
    decode_or_decode_error(make, data)


@FUZZ
@given(st.lists(st.tuples(st.binary(min_size=28, max_size=40), st.floats(0.0, 5.0)), max_size=8))
def test_fuzz_sequences_keep_time_increasing(items: list[tuple[bytes, float]]) -> None:
    decoder = MovellaDotDecoder()
    host, last = 100.0, -np.inf
    for data, dt in items:
        host += dt
        try:
            block = decoder.decode(data, host)
        except DecodeError:
            continue
        assert block.t_s[0] > last
        last = block.t_s[-1]
