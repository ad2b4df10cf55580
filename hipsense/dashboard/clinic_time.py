"""Days and weeks in the clinic's time zone: "today", "this week", the 30-day window.

Event instants are UTC; a therapist thinks in local days, and a rep at 00:30 local time
belongs to that local day, not to the UTC one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo


@dataclasses.dataclass(frozen=True)
class ClinicClock:
    """The clinic's time zone and "now" (fixed in tests)."""

    zone: ZoneInfo = ZoneInfo("UTC")
    fixed_now: dt.datetime | None = None

    def now(self) -> dt.datetime:
        return self.fixed_now or dt.datetime.now(dt.timezone.utc)

    def today(self) -> dt.date:
        return self.local_date(self.now())

    def to_local(self, instant: dt.datetime) -> dt.datetime:
        """``instant`` in the clinic's zone. An instant so close to the ends of the calendar
        that the zone's offset takes it past year 9999 or before year 1 (a row stored from a
        broken clock before ingest refused such dates) stays in UTC rather than raising
        OverflowError and taking the page down."""
        try:
            return instant.astimezone(self.zone)
        except OverflowError:
            return instant.astimezone(dt.timezone.utc)

    def local_date(self, instant: dt.datetime) -> dt.date:
        return self.to_local(instant).date()

    def day_start(self, day: dt.date) -> dt.datetime:
        """The UTC instant at which local ``day`` begins."""
        return dt.datetime.combine(day, dt.time(), tzinfo=self.zone).astimezone(dt.timezone.utc)

    def week_start(self, day: dt.date) -> dt.date:
        """Monday of ``day``'s week."""
        return day - dt.timedelta(days=day.weekday())
