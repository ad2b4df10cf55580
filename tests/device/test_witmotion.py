"""WitMotion WT901BLECL decoder: sensors.md §1 vectors, commands, timing, fuzzing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hipsense.device.decoders import witmotion
from hipsense.device.decoders.witmotion import WitMotionDecoder, parse_notification, witmotion_battery_percent
from hipsense.device.samples import GapReason
from hipsense.errors import DecodeError
from tests.device.fuzzing import FUZZ, decode_or_decode_error, mutated

G = 9.80665
DEG = math.pi / 180

# sensors.md §1.3: a real capture from a WT901BLE5.0 (a table-tennis IMU project's parser tests).
REAL_FRAME = bytes.fromhex("55 61 fc ff ef ff 11 08 00 00 00 00 00 00 98 ff 0d 00 f8 31")
# §1.4: the answer to "read battery" (FF AA 27 64 00) is 55 71 64 00 <u16 LE>; 396 ≈ 3.96 V.
# The 8 registers after the first are synthetic zeros.
BATTERY_REPLY = bytes.fromhex("55 71 64 00 8c 01") + bytes(14)


def test_real_capture_raw_counts() -> None:
    frames = parse_notification(REAL_FRAME)
    assert frames.acc.tolist() == [[-4, -17, 2065]]
    assert frames.gyr.tolist() == [[0, 0, 0]]
    assert frames.angle.tolist() == [[-104, 13, 12792]]
    assert frames.register_replies == () and frames.skipped_flags == ()


def test_real_capture_decodes_to_si_units() -> None:
    samples = WitMotionDecoder(rate_hz=100).decode(REAL_FRAME, 50.0)
    assert samples.n == 1
    assert samples.t_s.tolist() == [50.0]
    acc_g = samples.acc_ms2[0] / G
    # The sheet's decoded values: -0.00195 g, -0.0083 g, 1.0083 g; the test asserts Az ≈ 1.008 g.
    np.testing.assert_allclose(acc_g, [-4 / 2048, -17 / 2048, 2065 / 2048], rtol=1e-12)
    assert acc_g[2] == pytest.approx(1.0083, abs=5e-5)
    assert acc_g[0] == pytest.approx(-0.00195, abs=5e-6)
    assert acc_g[1] == pytest.approx(-0.0083, abs=5e-5)
    np.testing.assert_array_equal(samples.gyr_rad_s, [[0.0, 0.0, 0.0]])
    roll, pitch, yaw = samples.euler_rad[0] / DEG
    assert roll == pytest.approx(-0.571, abs=5e-4)
    assert pitch == pytest.approx(0.071, abs=5e-4)
    assert yaw == pytest.approx(70.27, abs=5e-3)  # the capture's test asserts yaw ≈ 70.26°
    assert samples.sensor_time_s is None


@pytest.mark.parametrize(("frames", "rate_hz"), [(4, 10), (2, 50), (1, 100)])
def test_several_frames_per_notification_are_back_filled(frames: int, rate_hz: int) -> None:
    # 80-byte notifications at the default rate, 40-byte at 50 Hz (sensors.md §1.3).
    samples = WitMotionDecoder(rate_hz=rate_hz).decode(REAL_FRAME * frames, 7.0)
    assert samples.n == frames
    np.testing.assert_allclose(samples.t_s, 7.0 - np.arange(frames)[::-1] / rate_hz)


def test_gyro_and_full_scale_counts() -> None:
    frame = bytearray(REAL_FRAME)
    frame[8:14] = np.array([16384, -32768, 1], dtype="<i2").tobytes()
    samples = WitMotionDecoder().decode(bytes(frame), 1.0)
    np.testing.assert_allclose(samples.gyr_rad_s[0] / DEG, [1000.0, -2000.0, 2000 / 32768])


def test_register_reply_is_kept_and_yields_no_samples() -> None:
    decoder = WitMotionDecoder()
    samples = decoder.decode(BATTERY_REPLY, 1.0)
    assert samples.n == 0
    (reply,) = decoder.last_register_replies
    assert reply.first_register == witmotion.REGISTER_BATTERY
    assert reply.values[0] == 396


def test_mixed_sample_and_reply_frames() -> None:
    decoder = WitMotionDecoder()
    samples = decoder.decode(REAL_FRAME + BATTERY_REPLY + REAL_FRAME, 1.0)
    assert samples.n == 2
    assert decoder.last_register_replies[0].values[0] == 396


def test_unknown_flag_frames_are_skipped() -> None:
    other = b"\x55\x62" + bytes(18)  # well-formed frame of a kind we do not use
    frames = parse_notification(other + REAL_FRAME)
    assert frames.skipped_flags == (0x62,)
    assert frames.acc.shape == (1, 3)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        REAL_FRAME[:16],  # the truncated logs of obedier/vib (sensors.md §1.3)
        REAL_FRAME + REAL_FRAME[:1],
        REAL_FRAME[1:] + b"\x55",  # misaligned
        b"\x54" + REAL_FRAME[1:],
        REAL_FRAME + b"\x00" + REAL_FRAME[1:],
    ],
)
def test_bad_notifications_raise_decode_error(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        WitMotionDecoder().decode(payload, 1.0)


def test_decode_error_carries_payload_and_leaves_state_alone() -> None:
    decoder = WitMotionDecoder(rate_hz=100)
    first = decoder.decode(REAL_FRAME * 2, 1.00)
    with pytest.raises(DecodeError) as info:
        decoder.decode(REAL_FRAME[:16], 1.02)
    assert info.value.payload_hex == REAL_FRAME[:16].hex()
    second = decoder.decode(REAL_FRAME * 2, 1.02)
    np.testing.assert_allclose(np.diff(np.r_[first.t_s, second.t_s]), 0.01)


def test_wrong_characteristic_is_rejected() -> None:
    with pytest.raises(DecodeError):
        WitMotionDecoder().decode(REAL_FRAME, 1.0, char_uuid=witmotion.WRITE_UUID)
    # Upper-case UUIDs from a platform backend are fine.
    WitMotionDecoder().decode(REAL_FRAME, 1.0, char_uuid=witmotion.NOTIFY_UUID.upper())


def test_uuids_use_the_witmotion_base_not_the_sig_base() -> None:
    for uuid in (witmotion.SERVICE_UUID, witmotion.NOTIFY_UUID, witmotion.WRITE_UUID):
        assert uuid.endswith("-0000-1000-8000-00805f9a34fb")


@pytest.mark.parametrize(
    ("rate_hz", "command"),
    [(10, "ffaa030600"), (50, "ffaa030800"), (100, "ffaa030900"), (200, "ffaa030b00"),
     (1, "ffaa030300"), (125, "ffaa030a00")],
)  # fmt: skip
def test_set_rate_commands(rate_hz: int, command: str) -> None:
    # 10 Hz→06, 50→08, 100→09, 200→0B are confirmed by captures (sensors.md §1.4).
    assert witmotion.build_set_rate(rate_hz).hex() == command


def test_other_commands() -> None:
    assert witmotion.CMD_UNLOCK.hex() == "ffaa6988b5"
    assert witmotion.CMD_SAVE.hex() == "ffaa000000"
    assert witmotion.build_read_register(witmotion.REGISTER_BATTERY).hex() == "ffaa276400"
    assert witmotion.build_write_register(0x01, 0x0001).hex() == "ffaa010100"  # calibrate acc
    with pytest.raises(ValueError, match="unsupported"):
        witmotion.build_set_rate(99)


def test_start_writes_unlock_then_set_rate() -> None:
    writes = WitMotionDecoder(rate_hz=50).start_writes()
    assert [w.data.hex() for w in writes] == ["ffaa6988b5", "ffaa030800"]
    assert all(w.char_uuid == witmotion.WRITE_UUID for w in writes)
    assert writes[0].pause_after_s >= 0.1
    assert WitMotionDecoder(configure_rate=False).start_writes() == ()


def test_silence_longer_than_latency_is_reported_as_gap_of_unknown_size() -> None:
    decoder = WitMotionDecoder(rate_hz=100)
    blocks = [decoder.decode(REAL_FRAME * 4, 10.0 + 0.04 * i) for i in range(100)]
    assert all(not b.gaps for b in blocks)
    after = decoder.decode(REAL_FRAME * 4, 10.0 + 0.04 * 99 + 2.0)
    (gap,) = after.gaps
    assert gap.reason is GapReason.RECEIVE_TIME_JUMP
    assert gap.samples_lost is None
    assert gap.start_s == blocks[-1].t_s[-1]
    assert gap.end_s == after.t_s[0]
    assert after.t_s[-1] == pytest.approx(10.0 + 0.04 * 99 + 2.0, abs=1e-9)


def test_times_follow_a_fast_sensor_without_drifting() -> None:
    # A module whose 100 Hz is really 100.6 Hz, 4 frames per notification, BLE latency jitter.
    rng = np.random.default_rng(7)
    true_rate = 100.6
    decoder = WitMotionDecoder(rate_hz=100)
    errors = []
    for i in range(120 * 25):
        sent = (4 * i + 3) / true_rate
        latency = 0.008 + rng.exponential(0.012)
        samples = decoder.decode(REAL_FRAME * 4, 100.0 + sent + latency)
        truth = 100.0 + (4 * i + np.arange(4)) / true_rate + 0.008
        errors.append(np.max(np.abs(samples.t_s - truth)))
    assert max(errors[-25 * 30 :]) < 0.004  # last 30 s: within 4 ms of the truth
    assert decoder._clock.rate_error_ppm == pytest.approx(6000, abs=300)


@FUZZ
@given(st.binary(max_size=120))
def test_fuzz_any_bytes(payload: bytes) -> None:
    decode_or_decode_error(WitMotionDecoder, payload)


@FUZZ
@given(st.integers(1, 4).flatmap(lambda k: mutated(REAL_FRAME * k)))
def test_fuzz_mutated_frames(payload: bytes) -> None:
    decode_or_decode_error(WitMotionDecoder, payload)


@FUZZ
@given(st.lists(st.binary(min_size=18, max_size=18), min_size=1, max_size=4))
def test_fuzz_well_framed_random_contents(bodies: list[bytes]) -> None:
    payload = b"".join(b"\x55" + bytes([0x61 if i % 2 == 0 else 0x71]) + body
                       for i, body in enumerate(bodies))  # fmt: skip
    samples = decode_or_decode_error(WitMotionDecoder, payload)
    assert samples is not None and samples.n == (len(bodies) + 1) // 2


def test_battery_table() -> None:
    assert witmotion_battery_percent(410) == 100
    assert witmotion_battery_percent(396) == 100
    assert witmotion_battery_percent(381) == 50
    assert witmotion_battery_percent(355) == 10
    assert witmotion_battery_percent(300) == 0
