"""Which indication answers a command, and what a refusal says (hipsense.device.replies)."""

from __future__ import annotations

from hipsense.device.decoders import GattWrite, make_decoder
from hipsense.device.decoders.polar_pmd import PMD_CONTROL_POINT_UUID
from hipsense.device.replies import is_reply_to, refusal

START_ACC = make_decoder("polar").start_writes()[0]


def test_the_answer_is_the_response_with_the_same_op_code_and_type() -> None:
    assert START_ACC.reply_uuid == PMD_CONTROL_POINT_UUID
    assert is_reply_to(START_ACC, bytes.fromhex("F0 02 02 00 00 05 01 00 00 7A 3E"))
    assert not is_reply_to(START_ACC, bytes.fromhex("F0 02 05 00 00"))  # the GYRO start's answer
    assert not is_reply_to(START_ACC, bytes.fromhex("F0 01 02 00 00"))  # a settings answer
    assert not is_reply_to(START_ACC, bytes.fromhex("01 02 05"))  # "streams stopped" by the sensor
    assert not is_reply_to(START_ACC, b"")  # garbage


def test_refusals_name_the_status_and_what_to_do() -> None:
    assert refusal(START_ACC, bytes.fromhex("F0 02 02 00 00 05 01 00 00 7A 3E")) is None
    assert refusal(START_ACC, bytes.fromhex("F0 02 02 06 00")) is None  # already running: fine
    rate = refusal(START_ACC, bytes.fromhex("F0 02 02 08 00"))
    assert rate is not None and "INVALID_SAMPLE_RATE" in rate and "SDK mode" in rate and "ACC" in rate
    charger = refusal(START_ACC, bytes.fromhex("F0 02 02 0D 00"))
    assert charger is not None and "charger" in charger
    odd = refusal(START_ACC, bytes.fromhex("F0 02 02 63 00"))
    assert odd is not None and "status 99" in odd


def test_sensors_without_rules_take_the_first_value_and_never_refuse() -> None:
    write = GattWrite("0000ffe9-0000-1000-8000-00805f9a34fb", b"\x01", reply_uuid="0000ffe4-0000-1000-8000-00805f9a34fb")
    assert is_reply_to(write, b"anything")
    assert refusal(write, b"anything") is None
