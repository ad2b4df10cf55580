"""Timestamps on the wire: ISO-8601 UTC strings with a ``Z`` suffix and millisecond precision.

We chose strings over epoch seconds because a therapist, an operator reading a log, and every
JSON tool can read them without a conversion, and the ``Z`` removes any time-zone doubt. The
cost (24 bytes instead of ~14) does not matter at a few messages per second. They are wall
clock from the Pi (NTP-synchronised); durations are sent separately (``duration_s``,
``hold_s``), measured on the sensor clock, so they are right even if the wall clock jumps.
"""

from __future__ import annotations

import datetime as dt
import re

from hipsense.protocol.errors import ProtocolError

Instant = dt.datetime | float
"""An aware datetime, or Unix epoch seconds."""

# As in the schema (common.json's timestamp): ASCII digits only (``\d`` would take any script's).
_WIRE_FORMAT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")


def to_utc_datetime(t: Instant) -> dt.datetime:
    """Return ``t`` (aware datetime or Unix epoch seconds) as an aware UTC datetime.

    A naive datetime is refused: guessing its time zone is how results end up an hour off.
    """
    if isinstance(t, dt.datetime):
        if t.tzinfo is None or t.utcoffset() is None:
            raise ProtocolError(f"naive datetime {t!r}: give a time zone (UTC) or epoch seconds")
        return t.astimezone(dt.timezone.utc)
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        try:
            return dt.datetime.fromtimestamp(float(t), tz=dt.timezone.utc)
        except (OverflowError, ValueError, OSError):  # NaN, or beyond year 1..9999
            raise ProtocolError(f"timestamp {t!r} is not an instant in years 1-9999") from None
    raise ProtocolError(f"timestamp must be an aware datetime or epoch seconds, not {t!r}")


def format_timestamp(t: Instant) -> str:
    """Return ``t`` as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC (see :func:`to_utc_datetime`)."""
    return to_utc_datetime(t).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(text: str) -> dt.datetime:
    """Return the aware UTC datetime of a wire timestamp, or raise ProtocolError."""
    if not isinstance(text, str) or not _WIRE_FORMAT.fullmatch(text):
        raise ProtocolError(f"timestamp {text!r} is not ISO-8601 UTC like 2025-03-01T09:15:02.250Z")
    try:
        # Python 3.11 reads the "Z" itself (UTC); the pattern above keeps out the many other
        # forms fromisoformat accepts (no "T", basic format, offsets, 7+ digit fractions).
        return dt.datetime.fromisoformat(text)
    except ValueError as exc:  # e.g. month 13: the pattern checks shape, not the calendar
        raise ProtocolError(f"timestamp {text!r} is not a real date/time: {exc}") from None
