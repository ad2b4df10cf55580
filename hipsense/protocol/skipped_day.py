"""A skipped day: how the Pi says "the patient will not exercise today, because …".

No message kind of its own: it is a session summary with no work, adherence 0, and the flags
``skipped`` and ``skip_<reason>`` (flags are open-ended: readers tolerate unknown ones, see
docs/mqtt.md). The reasons are a fixed vocabulary, never free text, so nothing a patient types
travels (no name or diagnosis by accident). Shared by the Pi's page and the dashboard.
"""

from __future__ import annotations

from collections.abc import Iterable

from hipsense.protocol.vocabulary import Flag

__all__ = ["SKIPPED", "SKIP_REASONS", "skip_flags", "skip_reason"]

SKIPPED = Flag.SKIPPED
# reason -> words, as the patient reads them on the Pi and the therapist on the dashboard
SKIP_REASONS: dict[str, str] = {
    "pain": "too much pain",
    "unwell": "feeling unwell",
    "no_time": "no time today",
    "away": "away from home",
    "other": "another reason",
}


def skip_flags(reason: str) -> tuple[str, str]:
    if reason not in SKIP_REASONS:
        raise ValueError(f"unknown reason {reason!r}; one of {', '.join(SKIP_REASONS)}")
    return (SKIPPED, f"skip_{reason}")


def skip_reason(flags: Iterable[str]) -> str | None:
    """The words for a skipped day's reason; None if the flags are not a skipped day's."""
    flags = list(flags)
    if SKIPPED not in flags:
        return None
    reason = next((f[len("skip_"):] for f in flags if f.startswith("skip_")), "other")
    return SKIP_REASONS.get(reason, reason.replace("_", " "))
