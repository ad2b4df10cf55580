"""Polar PMD decoder: every sensors.md §3 vector plus the SDK tests it cites, commands, timing."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hipsense.device.decoders import polar_pmd as pmd
from hipsense.device.decoders._pmd_frames import parse_data_frame, sample_times_ns
from hipsense.device.decoders.polar_pmd import (
    MeasurementType,
    PolarPmdDecoder,
    ResponseStatus,
    SettingType,
)
from hipsense.device.samples import GapReason
from hipsense.errors import DecodeError
from tests.device.fuzzing import FUZZ, decode_or_decode_error, mutated

G = 9.80665
CP = pmd.PMD_CONTROL_POINT_UUID

# ---- vectors: sensors.md §3.3, from polarofficial/polar-ble-sdk AccDataTest.kt / GyrDataTest.kt

ACC_RAW_TYPE1 = bytes.fromhex("02 0094357700000000 01") + bytes.fromhex(
    "F7FFFFFFE703 F8FFFEFFE503 F9FFFFFFE503 FAFFFFFFE603 FAFFFEFFE603 F9FFFFFFE503"
    "F8FFFFFFE603 F8FFFEFFE603 FAFFFFFFE503 FAFFFFFFE703 FAFFFFFFE503 F8FFFFFFE603"
    "F7FFFFFFE603 F8FFFEFFE603 F9FFFEFFE703 F9FF0000E603 F9FFFFFFE603 F7FFFEFFE503"
    "F9FFFFFFE503 F9FFFFFFE503 FAFF0000E603 F9FFFEFFE603 F8FFFFFFE603 F8FFFFFFE503"
    "F9FFFFFFE603 F9FFFFFFE503 FAFFFFFFE603 F9FFFFFFE503 F9FFFFFFE503 F8FFFEFFE603"
    "F9FFFFFFE603 F9FFFFFFE603 F9FF0000E503 F9FFFEFFE603 F8FFFEFFE603 F7FFFEFFE603"
)
GYRO_COMPRESSED_TYPE0 = bytes.fromhex("05 FFFFFFFFFFFFFF7F 80 EAFF08000D00 0301 DF00")
ACC_COMPRESSED_TYPE0 = bytes.fromhex("02 0094357700000000 80") + bytes.fromhex(
    "71 07 F0 6A 9E 8D 0A 38 BE 5C BE BA 2F 96 B3 EE 4B E5 AD FB 42 B9 EB BE 4C FE BA 2F 92 BF"
    "EE 4B E4 B1 FB 12 B9 EC BD 3C 3E BB 2F 8F D3 DE 4B E3 B5 F7 D2 B8 ED BD 30 7E 7B 2F 8B E3"
    "CE 8B E2 BA F7 A2 B8 EE BC 20 BE 7B 2F 88 F3 CE CB E1 BD EF 52 F8 EF BC 18 FE 3B 2F 84 03"
    "BF CB E0 C2 EF 32 B8 F0 BB 04 4E BC 2E 81 13 AF 0B E0 C6 EF F2 F7 F1 B9 FC 7D BC 2E 7D 27"
    "9F 4B DF CA EB C2 F7 F2 B8 EC CD 7C 2E 7B 37 8F 4B DE CE E3 92 F7 F3 B8 E0 0D FD 2D 77 4B"
    "7F CB DD D2 DF 62 37 F5 B7 D4 4D BD 2D 74 5B 6F CB DC D7 D7 32 37 F6 B5 C8 8D 7D 2D 71 6B"
    "4F 4B DC DC D3 F2 36 F7 B4 BC DD FD 2C 6F 7B 3F 4B DB E0 CF D2 36 F8 B2 B0 2D BE 2C 6C 8F"
    "1F CB DA E3 C7 A2 76 F9"
)
# Not printed in sensors.md, from the same SDK test files it cites:
ACC_COMPRESSED_TYPE1 = bytes.fromhex("02 6500000000000000 81 F1FF1400F003 0601 7B0F08")
GYRO_COMPRESSED_TYPE1 = bytes.fromhex(
    "05 0094357700000000 81 0000803F 00002041 0000A041 1C01 0000A00100000 8CDCCEC0D".replace(
        " ", ""
    )
)

STARTED = bytes.fromhex("F0 02 02 00 00")  # start ACC: success, no more, no parameters


def f32(x: float) -> float:
    return float(np.float32(x))


def start_response(measurement: int, factor: float) -> bytes:
    return bytes([0xF0, 0x02, measurement, 0x00, 0x00, 0x05, 0x01]) + struct.pack("<f", factor)


def test_uncompressed_acc_type1_vector() -> None:
    frame = parse_data_frame(ACC_RAW_TYPE1, factor=None)
    assert frame.measurement_type == MeasurementType.ACC
    assert frame.timestamp_ns == 2_000_000_000
    assert (frame.compressed, frame.frame_type) == (False, 1)
    assert frame.values.shape == (36, 3)  # 216 bytes / 2 bytes / 3 channels
    np.testing.assert_array_equal(frame.values[:2], [[-9, -1, 999], [-8, -2, 997]])  # mG
    # Through the decoder, at 52 Hz with no previous frame: 1/fs spacing, last = frame time.
    samples = PolarPmdDecoder(rate_hz=52).decode(ACC_RAW_TYPE1, 500.0)
    assert samples.gyr_rad_s is None
    np.testing.assert_allclose(samples.acc_ms2[0], np.array([-9, -1, 999]) * G / 1000)
    assert samples.sensor_time_s[-1] == 2.0
    np.testing.assert_allclose(np.diff(samples.sensor_time_s), 1 / 52, rtol=1e-6)
    assert samples.t_s[-1] == pytest.approx(500.0)


def test_compressed_gyro_type0_vector() -> None:
    frame = parse_data_frame(GYRO_COMPRESSED_TYPE0, factor=1.0)
    assert frame.timestamp_ns == 2**63 - 1
    # Reference (-22, 8, 13); DF read LSB-first gives 3-bit deltas (-1, +3, +3).
    np.testing.assert_array_equal(frame.values, [[-22, 8, 13], [-23, 11, 16]])  # deg/s
    decoder = PolarPmdDecoder(factors={"gyro": 1.0})
    samples = decoder.decode(GYRO_COMPRESSED_TYPE0, 1.0)
    np.testing.assert_allclose(samples.gyr_rad_s, np.deg2rad([[-22, 8, 13], [-23, 11, 16]]))
    assert samples.acc_ms2 is None


def test_compressed_acc_type0_vector() -> None:
    factor = f32(2.44e-4)  # the SDK test's factor; type 0 counts × factor are g
    frame = parse_data_frame(ACC_COMPRESSED_TYPE0, factor=factor)
    assert frame.values.shape == (57, 3)  # reference + one block of 56 10-bit deltas
    reference = np.array([1905, 27376, -29282])
    sample1 = reference + [190, -105, -85]
    # The SDK truncates to whole mG; we keep the fraction.
    np.testing.assert_allclose(frame.values[0], reference * factor * 1000, atol=1e-9)
    np.testing.assert_allclose(frame.values[1], sample1 * factor * 1000, atol=1e-9)
    # The SDK's own assertion, in float32, truncated to int: ours agrees to within that 1 mG.
    sdk_mg = (
        np.array([reference, sample1], dtype=np.float32) * np.float32(factor) * np.float32(1000)
    ).astype(int)
    assert np.all(np.abs(frame.values[:2] - sdk_mg) < 1)
    assert np.all(np.abs(frame.values) <= 8 * 1000)  # the SDK test's range check (±8 g)


def test_compressed_acc_type1_vector() -> None:
    frame = parse_data_frame(ACC_COMPRESSED_TYPE1, factor=1.0)
    np.testing.assert_array_equal(frame.values, [[-15, 20, 1008], [-20, 17, 1008]])
    assert frame.timestamp_ns == 101
    # The SDK test: previous frame at 100 ns → samples at 100 and 101 ns.
    assert sample_times_ns(100, 101, 2, 52) == [100, 101]


@pytest.mark.parametrize("factor", [1.0, 0.5])
def test_compressed_gyro_type1_float_bit_pattern_vector(factor: float) -> None:
    frame = parse_data_frame(GYRO_COMPRESSED_TYPE1, factor=factor)

    def bits_to_float(bits: int) -> float:
        return struct.unpack("<f", (bits & 0xFFFFFFFF).to_bytes(4, "little"))[0]

    expected = [
        [1.0, 10.0, 20.0],
        [bits_to_float(0x3F800000 + 0x1A00000), bits_to_float(0x41200000 + 0x0800000),
         bits_to_float(0x41A00000 + 0xFDECCCCD)],
    ]  # fmt: skip
    np.testing.assert_array_equal(frame.values, np.array(expected) * factor)


def test_sample_times_follow_the_sdk_rule() -> None:
    # AccDataTest compressed type 0: previous 100 ns, frame 2 000 000 000 ns, 57 samples.
    times = sample_times_ns(100, 2_000_000_000, 57, 52)
    delta = (2_000_000_000 - 100) / 57
    assert times[0] == round(100 + delta)
    assert times[-1] == 2_000_000_000
    assert all(abs(t - round(100 + delta * (i + 1))) <= 1 for i, t in enumerate(times))
    # First frame: nominal spacing back from the frame time.
    assert sample_times_ns(None, 1_000_000_000, 3, 50) == [960_000_000, 980_000_000, 1_000_000_000]
    with pytest.raises(DecodeError):
        sample_times_ns(None, 10, 3, 50)


# ---- control point: sensors.md §3.2 concrete commands


def test_start_and_stop_commands_match_the_sheet() -> None:
    h10_acc = pmd.build_start(
        MeasurementType.ACC,
        {SettingType.SAMPLE_RATE: 200, SettingType.RESOLUTION: 16, SettingType.RANGE: 8},
    )
    assert h10_acc.hex(" ") == "02 02 00 01 c8 00 01 01 10 00 02 01 08 00"
    verity = PolarPmdDecoder(rate_hz=52)
    writes = verity.start_writes()
    assert [w.data.hex(" ") for w in writes] == [
        "02 02 00 01 34 00 01 01 10 00 02 01 08 00 04 01 03",  # Verity ACC 52 Hz ±8 g
        "02 05 00 01 34 00 01 01 10 00 02 01 d0 07 04 01 03",  # Verity GYRO 52 Hz ±2000 dps
    ]
    assert all(w.char_uuid == CP and w.reply_uuid == CP for w in writes)
    assert [w.data.hex() for w in verity.stop_writes()] == ["0305", "0302"]
    assert pmd.build_stop(MeasurementType.ACC).hex() == "0302"
    assert pmd.build_stop(MeasurementType.GYRO).hex() == "0305"
    sdk = PolarPmdDecoder(rate_hz=104, sdk_mode=True)
    assert sdk.start_writes()[0].data.hex() == "0209"
    assert sdk.stop_writes()[-1].data.hex() == "0309"
    h10 = PolarPmdDecoder(rate_hz=200, streams=("acc",), send_channels=False)
    assert [w.data for w in h10.start_writes()] == [h10_acc]
    assert pmd.build_settings_query(MeasurementType.GYRO).hex() == "0105"
    with pytest.raises(ValueError):
        pmd.serialize_settings({SettingType.FACTOR: 1})


def test_settings_response_is_parsed() -> None:
    # polar-ble-sdk PmdSettingTest: rate 52, resolution 16, ranges 245/500/1000/2000, 3 channels.
    settings = pmd.parse_settings(bytes.fromhex("00013400 01011000 0204F500F401E803D007 040103"))
    assert settings == {0: (52,), 1: (16,), 2: (245, 500, 1000, 2000), 4: (3,)}
    milli = pmd.parse_settings(bytes.fromhex("0302FFFFFFFFFF000000 01010E00"))
    assert milli == {3: (-1, 255), 1: (14,)}
    response = pmd.parse_control_point(bytes.fromhex("F0 01 05 00 00 00013400 01011000"))
    assert response.ok and response.op_code == pmd.OpCode.GET_MEASUREMENT_SETTINGS
    assert response.settings == {0: (52,), 1: (16,)}
    with pytest.raises(DecodeError):
        pmd.parse_settings(bytes.fromhex("0701 00"))  # unknown type
    with pytest.raises(DecodeError):
        pmd.parse_settings(bytes.fromhex("0002 3400"))  # cut short


def test_control_point_errors_and_device_stop() -> None:
    error = pmd.parse_control_point(bytes.fromhex("F0 02 02 0A"))
    assert not error.ok and error.status is ResponseStatus.INVALID_MTU and error.parameters == b""
    odd = pmd.parse_control_point(bytes.fromhex("F0 02 02 63 01 02"))
    assert odd.status == 0x63 and not odd.ok
    stopped = pmd.parse_control_point(bytes.fromhex("01 02 05"))
    assert stopped == pmd.StreamsStoppedByDevice((2, 5))
    with pytest.raises(DecodeError):
        pmd.parse_control_point(b"\xf0\x02")


def test_features_bitmap() -> None:
    features = pmd.parse_features(bytes([0x0F, 0x04 | 0x20 | 0x02, 0x02]))
    assert features == {
        MeasurementType.ACC,
        MeasurementType.GYRO,
        MeasurementType.PPG,
        MeasurementType.SDK_MODE,
    }


def test_start_response_factor_is_learned_from_the_control_point() -> None:
    decoder = PolarPmdDecoder()
    with pytest.raises(DecodeError, match="FACTOR"):
        decoder.decode(ACC_COMPRESSED_TYPE0, 1.0)
    assert decoder.decode(start_response(MeasurementType.ACC, 2.44e-4), 1.0, char_uuid=CP).n == 0
    samples = decoder.decode(ACC_COMPRESSED_TYPE0, 1.1)
    assert samples.n == 57
    np.testing.assert_allclose(
        samples.acc_ms2[0], np.array([1905, 27376, -29282]) * f32(2.44e-4) * G
    )
    # A start response without FACTOR means 1.0.
    other = PolarPmdDecoder()
    other.decode(STARTED, 1.0, char_uuid=CP)
    later = ACC_COMPRESSED_TYPE1[:1] + (2 * 10**9).to_bytes(8, "little") + ACC_COMPRESSED_TYPE1[9:]
    np.testing.assert_allclose(
        other.decode(later, 1.0).acc_ms2[1], np.array([-20, 17, 1008]) * G / 1000
    )


# ---- streaming behaviour: spacing, gaps, clock


def acc_frame(timestamp_ns: int, n: int, value: int = 1000) -> bytes:
    body = np.tile(np.array([0, 0, value], dtype="<i2"), n).tobytes()
    return bytes([2]) + timestamp_ns.to_bytes(8, "little") + b"\x01" + body


def test_consecutive_frames_are_spaced_between_timestamps_and_lost_frames_reported() -> None:
    decoder = PolarPmdDecoder(rate_hz=52, streams=("acc",))
    t0 = 700_000_000 * 10**9
    period = 10**9 // 52
    blocks = []
    for k in range(6):
        if k == 3:
            continue  # frame 3 lost
        ts = t0 + (k + 1) * 10 * period
        blocks.append(decoder.decode(acc_frame(ts, 10), 100.0 + (k + 1) * 10 / 52 + 0.01))
    all_sensor = np.concatenate([b.sensor_time_s for b in blocks])
    assert np.all(np.diff(all_sensor) > 0)
    assert [len(b.gaps) for b in blocks] == [0, 0, 0, 1, 0]
    gap = blocks[3].gaps[0]
    assert gap.reason is GapReason.SENSOR_TIME_JUMP and gap.samples_lost == 10
    assert gap.start_s == blocks[2].t_s[-1] and gap.end_s == blocks[3].t_s[0]
    # Even spacing survives the gap: 20 slots between the timestamps, the last 10 are ours.
    # (float64 seconds since 2000 resolve ~0.1 µs.)
    np.testing.assert_allclose(np.diff(blocks[3].sensor_time_s), period / 1e9, atol=3e-7)


def test_sensor_clock_reset_is_a_gap_of_unknown_size() -> None:
    decoder = PolarPmdDecoder(rate_hz=52, streams=("acc",))
    first = decoder.decode(acc_frame(600 * 10**18 // 1000, 10), 50.0)
    after = decoder.decode(acc_frame(10 * 10**9, 10), 50.2)  # clock back to a firmware default
    (gap,) = after.gaps
    assert gap.reason is GapReason.SENSOR_CLOCK_RESET and gap.samples_lost is None
    assert after.t_s[0] > first.t_s[-1]
    assert after.t_s[-1] == pytest.approx(50.2)


def test_acc_and_gyro_share_the_clock() -> None:
    decoder = PolarPmdDecoder(factors={"gyro": 1.0})
    acc = decoder.decode(acc_frame(2_000_000_000, 4), 10.0)
    gyro = decoder.decode(
        GYRO_COMPRESSED_TYPE0[:1]
        + (2_000_000_000).to_bytes(8, "little")
        + GYRO_COMPRESSED_TYPE0[9:],
        10.01,
    )
    assert gyro.t_s[-1] == pytest.approx(acc.t_s[-1])  # same sensor time → same host time


def test_unsupported_frames_and_characteristics() -> None:
    decoder = PolarPmdDecoder(factors={"acc": 1.0, "gyro": 1.0})
    for payload in (
        b"",
        ACC_RAW_TYPE1[:9],
        ACC_RAW_TYPE1[:10],  # header only, no samples
        ACC_RAW_TYPE1[:-1],
        bytes([6]) + ACC_RAW_TYPE1[1:],  # MAG
        GYRO_COMPRESSED_TYPE0[:9] + b"\x01" + GYRO_COMPRESSED_TYPE0[10:],  # raw gyro
        GYRO_COMPRESSED_TYPE0[:-1],  # delta block cut short
        GYRO_COMPRESSED_TYPE0 + b"\x03",  # dangling block header
        GYRO_COMPRESSED_TYPE0[:16] + b"\x21\x01" + bytes(13),  # 33-bit deltas
    ):
        with pytest.raises(DecodeError):
            decoder.decode(payload, 1.0)
    with pytest.raises(DecodeError):
        decoder.decode(ACC_RAW_TYPE1, 1.0, char_uuid=pmd.PMD_SERVICE_UUID)


def test_non_finite_float_frames_are_rejected() -> None:
    nan_reference = bytes.fromhex("0000C07F") * 3
    payload = GYRO_COMPRESSED_TYPE1[:10] + nan_reference
    with pytest.raises(DecodeError, match="non-finite"):
        parse_data_frame(payload, factor=1.0)


def test_polar_epoch() -> None:
    assert pmd.POLAR_EPOCH_UNIX_NS == 946_684_800 * 10**9
    assert math.isclose(pmd.POLAR_EPOCH_UNIX_NS / 1e9 / 86400 / 365.2425, 30, rel_tol=1e-3)


def known_factors() -> PolarPmdDecoder:
    return PolarPmdDecoder(factors={"acc": 1.0, "gyro": 0.5})


@FUZZ
@given(st.binary(max_size=256))
def test_fuzz_any_bytes_on_the_data_characteristic(payload: bytes) -> None:
    decode_or_decode_error(known_factors, payload)


@FUZZ
@given(
    st.binary(min_size=10, max_size=200).map(
        lambda b: bytes([b[0] % 2 * 3 + 2]) + b[1:9] + bytes([0x80 | b[9] % 2]) + b[10:]
    )
)
def test_fuzz_compressed_acc_and_gyro_frames(payload: bytes) -> None:
    decode_or_decode_error(known_factors, payload)


@FUZZ
@given(st.sampled_from([ACC_RAW_TYPE1, GYRO_COMPRESSED_TYPE0, ACC_COMPRESSED_TYPE0,
                        ACC_COMPRESSED_TYPE1, GYRO_COMPRESSED_TYPE1]).flatmap(mutated))  # fmt: skip
def test_fuzz_mutated_vectors(payload: bytes) -> None:
    decode_or_decode_error(known_factors, payload)


@FUZZ
@given(st.one_of(st.binary(max_size=40), mutated(start_response(2, 0.25))))
def test_fuzz_control_point(payload: bytes) -> None:
    decode_or_decode_error(known_factors, payload, char_uuid=CP)
