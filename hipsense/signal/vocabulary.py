"""The words the signal kernels put in their events, each defined once.

String-valued enums (:class:`enum.StrEnum`): a member equals its string, so code that compares
or serialises strings (JSON, logs, tests) sees exactly what it saw before. The layers above
build on these; the MQTT wire vocabulary is :mod:`hipsense.protocol.vocabulary`.
"""

from __future__ import annotations

import enum

__all__ = ["RestReason"]


class RestReason(enum.StrEnum):
    """Why the rep kernel (:mod:`hipsense.signal.reps`) took a new rest pose (``RestEvent.reason``)."""

    INITIAL = "initial"
    """The stream's first rest pose."""
    POSTURE_CHANGE = "posture_change"
    """The patient settled into another posture: a set ends with it."""
    REST_SHIFT = "rest_shift"
    """A small move of the same rest pose (shifting on the mat): the set goes on."""
