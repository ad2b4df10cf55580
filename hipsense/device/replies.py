"""Which indication answers a command the link wrote, and whether the sensor refused it.

A :class:`~hipsense.device.decoders.GattWrite` with ``reply_uuid`` set is answered on that
characteristic. The link waits for the answer before the next write; this module says which
arriving value *is* the answer (another indication may come first, e.g. a sensor-initiated
"streams stopped") and turns a refusal into words a person can act on.

Only Polar's PMD control point has replies today. Sensors without a rule here take the first
value that arrives on the reply characteristic, and never refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from hipsense.device.decoders import GattWrite
from hipsense.device.decoders.polar_pmd import (
    PMD_CONTROL_POINT_UUID,
    ControlPointResponse,
    MeasurementType,
    ResponseStatus,
    parse_control_point,
)
from hipsense.errors import DecodeError

__all__ = ["is_reply_to", "refusal"]

_PMD_ADVICE: Final = {
    ResponseStatus.INVALID_SAMPLE_RATE: (
        "a Verity Sense streams 52 Hz unless SDK mode is on (then 26-416 Hz): "
        "check the sensor's rate setting"
    ),
    ResponseStatus.INVALID_RANGE: (
        "a Verity Sense takes ±8 g and 2000 deg/s unless SDK mode is on: check the range settings"
    ),
    ResponseStatus.NOT_SUPPORTED: "this Polar sensor does not offer that stream (an H10 has no gyroscope)",
    ResponseStatus.DEVICE_IN_CHARGER: "take the sensor off its charger",
    ResponseStatus.DISK_FULL: "the sensor's memory is full: clear its recordings in the Polar app",
}


def _pmd_response(write: GattWrite, payload: bytes) -> ControlPointResponse | None:
    """The PMD response to ``write`` if ``payload`` is it: same op code and measurement type."""
    try:
        message = parse_control_point(payload)
    except DecodeError:
        return None
    if not isinstance(message, ControlPointResponse) or len(write.data) < 2:
        return None
    if (message.op_code, message.measurement_type) != (write.data[0], write.data[1]):
        return None
    return message


def _pmd_refusal(write: GattWrite, payload: bytes) -> str | None:
    response = _pmd_response(write, payload)
    if response is None or response.ok:
        return None
    # Starting what already runs, or stopping what already stopped, leaves the sensor in the
    # state the link wanted.
    if response.status == ResponseStatus.ALREADY_IN_STATE:
        return None
    status = response.status.name if isinstance(response.status, ResponseStatus) else f"status {response.status}"
    try:
        stream = MeasurementType(response.measurement_type).name
    except ValueError:
        stream = f"measurement type {response.measurement_type}"
    advice = _PMD_ADVICE.get(response.status, "check that the configured sensor type and settings match the sensor")
    return f"the sensor refused command {write.data.hex(' ')} for {stream} ({status}): {advice}"


_MATCHERS: Final[dict[str, Callable[[GattWrite, bytes], bool]]] = {
    PMD_CONTROL_POINT_UUID: lambda write, payload: _pmd_response(write, payload) is not None,
}
_REFUSALS: Final[dict[str, Callable[[GattWrite, bytes], str | None]]] = {
    PMD_CONTROL_POINT_UUID: _pmd_refusal,
}


def is_reply_to(write: GattWrite, payload: bytes) -> bool:
    """Whether ``payload``, arriving on ``write.reply_uuid``, answers ``write``."""
    matcher = _MATCHERS.get(write.reply_uuid or "")
    return True if matcher is None else matcher(write, payload)


def refusal(write: GattWrite, payload: bytes) -> str | None:
    """Why the sensor refused ``write`` (plain words and advice), or None if it complied."""
    check = _REFUSALS.get(write.reply_uuid or "")
    return None if check is None else check(write, payload)
