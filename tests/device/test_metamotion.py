"""MetaMotion (MetaWear) decoder: sensors.md §4 vectors from the MetaWear C++ SDK tests."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hipsense.device.decoders import metamotion as mm
from hipsense.device.decoders.metamotion import Chip, MetaMotionDecoder
from hipsense.errors import DecodeError
from tests.device.fuzzing import FUZZ, decode_or_decode_error, mutated

G = 9.80665
ACC_AT_4G = bytes.fromhex("03 04 16 c4 94 a2 2a d0")  # test_accelerometer_bmi160.py
ACC_PACKED_AT_8G = bytes.fromhex("03 1c 62 b7 53 0d e9 fd 16 d0 4d 0e 57 02 8a ff a1 05 0a 01")
GYRO_AT_500DPS = bytes.fromhex("13 05 3e 43 ff 7f 00 80")  # test_gyro_bmi160.py


def test_acc_vector() -> None:
    samples = MetaMotionDecoder(acc_range_g=4, packed=False).decode(ACC_AT_4G, 3.0)
    assert samples.n == 1 and samples.gyr_rad_s is None and samples.t_s.tolist() == [3.0]
    np.testing.assert_allclose(samples.acc_ms2[0] / G, np.array([-15338, -23916, -12246]) / 8192)
    np.testing.assert_allclose(samples.acc_ms2[0] / G, [-1.872, -2.919, -1.495], atol=5e-4)


def test_packed_acc_vector() -> None:
    samples = MetaMotionDecoder(rate_hz=100, acc_range_g=8).decode(ACC_PACKED_AT_8G, 3.0)
    expected_g = [[-4.539, 0.833, -0.131], [-2.995, 0.894, 0.146], [-0.029, 0.352, 0.065]]
    np.testing.assert_allclose(samples.acc_ms2 / G, expected_g, atol=5e-4)
    np.testing.assert_allclose(samples.t_s, [2.98, 2.99, 3.0])


def test_gyro_vector() -> None:
    samples = MetaMotionDecoder(gyr_range_dps=500, packed=False).decode(GYRO_AT_500DPS, 3.0)
    np.testing.assert_allclose(
        np.rad2deg(samples.gyr_rad_s[0]), [262.409, 499.497, -499.512], atol=5e-4
    )
    assert samples.acc_ms2 is None


def test_module_info_and_battery() -> None:
    r = mm.parse_module_info(bytes.fromhex("03 80 01 01"))
    assert (r.module, r.implementation, r.revision, r.chip) == (3, 1, 1, Chip.BMI160)
    assert mm.parse_module_info(bytes.fromhex("03 80 04 00")).chip is Chip.BMI270
    assert mm.parse_battery(bytes.fromhex("11 8c 63 34 10")) == mm.BatteryState(99, 4148)
    with pytest.raises(DecodeError):
        mm.parse_battery(bytes.fromhex("11 8c 63"))
    decoder = MetaMotionDecoder()
    assert decoder.decode(bytes.fromhex("11 8c 63 34 10"), 1.0).n == 0  # responses pass through
    assert decoder.last_response == bytes.fromhex("11 8c 63 34 10")


def test_start_and_stop_commands() -> None:
    writes = MetaMotionDecoder(
        rate_hz=100, acc_range_g=2, gyr_range_dps=2000, packed=False
    ).start_writes()
    # sensors.md §4.5: raw acc + gyro at 100 Hz.
    assert [w.data.hex(" ") for w in writes] == [
        "03 03 28 03", "13 03 28 00", "03 04 01", "13 05 01",
        "03 02 01 00", "13 02 01 00", "03 01 01", "13 01 01",
    ]  # fmt: skip
    assert all(w.char_uuid == mm.COMMAND_UUID and not w.response for w in writes)
    packed = MetaMotionDecoder(rate_hz=200, acc_range_g=8).start_writes()
    assert packed[0].data.hex(" ") == "03 03 29 08"  # the sheet's 200 Hz ±8 g example
    assert {w.data.hex(" ") for w in packed} >= {"03 1c 01", "13 07 01"}
    stops = MetaMotionDecoder(packed=False).stop_writes()
    assert [w.data.hex(" ") for w in stops] == [
        "13 01 00",
        "03 01 00",
        "13 02 00 01",
        "03 02 00 01",
        "13 05 00",
        "03 04 00",
    ]
    with pytest.raises(ValueError):
        MetaMotionDecoder(chip="bmi270").start_writes()
    # 7.5 ms .. 15 ms interval, no latency, 6 s supervision timeout
    assert (
        mm.build_connection_parameters(7.5, 15, 0, 6000).hex(" ") == "11 09 06 00 0c 00 00 00 58 02"
    )


def test_bmi270_data_registers() -> None:
    decoder = MetaMotionDecoder(chip="bmi270", gyr_range_dps=500, packed=False)
    samples = decoder.decode(bytes.fromhex("13 04") + GYRO_AT_500DPS[2:], 1.0)
    np.testing.assert_allclose(
        np.rad2deg(samples.gyr_rad_s[0]), [262.409, 499.497, -499.512], atol=5e-4
    )


@pytest.mark.parametrize("bad", [b"", b"\x03", ACC_AT_4G[:-1], ACC_PACKED_AT_8G + b"\x00"])
def test_bad_data_messages(bad: bytes) -> None:
    with pytest.raises(DecodeError):
        MetaMotionDecoder().decode(bad, 1.0)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=24),
        st.sampled_from([ACC_AT_4G, ACC_PACKED_AT_8G, GYRO_AT_500DPS]).flatmap(mutated),
    )
)
def test_fuzz(data: bytes) -> None:
    decode_or_decode_error(MetaMotionDecoder, data)
    decode_or_decode_error(lambda: MetaMotionDecoder(packed=False), data)
