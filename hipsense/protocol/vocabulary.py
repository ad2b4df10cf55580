"""The words of the MQTT messages that are not free values, each defined once (docs/mqtt.md).

String-valued enums (:class:`enum.StrEnum`): a member equals its string and serialises as it,
so the JSON on the wire is unchanged. Shared by the Pi and the dashboard.
"""

from __future__ import annotations

import enum

__all__ = ["EventKind", "Flag", "Side"]


class Side(enum.StrEnum):
    """``side`` of a result or a prescribed exercise."""

    LEFT = "left"
    RIGHT = "right"
    BOTH = "both"
    """Bilateral exercises (the bridge); never the side of a sensor or of live data."""


class Flag(enum.StrEnum):
    """The known ``flags`` of a result. Flags are open-ended: readers tolerate others
    (a skipped day also carries ``skip_<reason>``, :mod:`.skipped_day`)."""

    # a repetition's form, judged by the tracker (hipsense.exercises.vocabulary.FormFlag)
    TOO_FAST = "too_fast"
    TOO_SLOW = "too_slow"
    SHORT_HOLD = "short_hold"
    LOW_ROM = "low_rom"
    INCOMPLETE = "incomplete"
    # where the result stands against the prescription and the data
    WRONG_SIDE = "wrong_side"
    NOT_PRESCRIBED = "not_prescribed"
    SENSOR_GAP = "sensor_gap"
    UNCERTAIN_COUNT = "uncertain_count"
    """Sets and sessions: the count could not be trusted (the thigh did not show the reps clearly)."""
    CLOCK_UNSYNCED = "clock_unsynced"
    """The Pi's clock was not synchronised (no NTP yet) when the result was stamped: its date may
    be off by as long as the Pi was without power or network (no battery clock)."""
    # a session summary's
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"


class EventKind(enum.StrEnum):
    """What a result is, in one word: the ``event/<kind>`` topic's last part (``MessageKind``),
    as the Pi's outbox hands results to its observers and the dashboard stores and reads them."""

    REP = "rep"
    HOLD = "hold"
    SET = "set"
    SESSION = "session"
    PAIN = "pain"
