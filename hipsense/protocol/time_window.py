"""Instants a reader believes: not before 2020, not more than a day ahead of its own clock.

The schema checks an instant's shape and parsing checks the calendar; neither knows what year
it is. A session dated 9999-12-31 is well-formed, and once stored it breaks every page that
turns it into a local date east of UTC (the year overflows). hipsense did not exist before
2020, and a Pi whose clock runs a day ahead of the reader's is broken (it is NTP-synchronised),
so the dashboard refuses both at ingest (:func:`refuse_implausible_instants`), naming the field.

Kept apart from :func:`~hipsense.protocol.parse_message` on purpose: parsing is a pure
function of the bytes, this check depends on the reader's clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from hipsense.protocol.errors import ProtocolError
from hipsense.protocol.timestamps import parse_timestamp

EARLIEST_PLAUSIBLE = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
"""No hipsense result can be older than this."""

MAX_AHEAD = dt.timedelta(days=1)
"""How far ahead of the reader's clock an instant may be (clock skew, not a wrong year)."""

INSTANT_FIELDS = ("t", "t_start", "t_end", "updated_at")


def refuse_implausible_instants(data: Mapping[str, Any], *, now: dt.datetime, topic: str | None = None,
                                instants: Mapping[str, dt.datetime] | None = None) -> None:
    """Raise ProtocolError if an instant of ``data`` is before 2020 or more than a day after ``now``.

    ``data`` is a validated payload (its instants are well-formed); ``now`` an aware datetime;
    ``instants`` those of ``data`` already parsed (a Message's), if at hand.
    """
    latest = now + MAX_AHEAD
    for field in INSTANT_FIELDS:
        text = data.get(field)
        if not isinstance(text, str):
            continue
        instant = instants.get(field) if instants else None
        if instant is None:
            instant = parse_timestamp(text)
        if instant < EARLIEST_PLAUSIBLE:
            raise ProtocolError(f"{field} {text} is before {EARLIEST_PLAUSIBLE.year}: the sender's clock is wrong",
                                topic=topic, path=f"/{field}")
        if instant > latest:
            raise ProtocolError(
                f"{field} {text} is more than {MAX_AHEAD.days} day ahead of the reader's clock "
                f"({now.isoformat(timespec='seconds')}): the sender's clock is wrong", topic=topic, path=f"/{field}")
