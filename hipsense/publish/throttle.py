"""Rate limiting of live data, so a 100 Hz angle stream becomes at most 10 messages a second."""

from __future__ import annotations

from hipsense.protocol import LIVE_MAX_RATE_HZ


class LiveThrottle:
    """Let through at most ``max_rate_hz`` messages per second; drop the rest.

    Dropping (rather than queueing) is right for live data: the newest angle replaces any
    older one. Time is passed in (monotonic seconds) so the throttle is deterministic to test.
    """

    def __init__(self, max_rate_hz: float = LIVE_MAX_RATE_HZ) -> None:
        if max_rate_hz <= 0:
            raise ValueError("max_rate_hz must be positive")
        self._interval_s = 1.0 / max_rate_hz
        self._next_allowed_s: float | None = None

    def allow(self, now_s: float) -> bool:
        """Return True if a message may be sent at ``now_s`` (and count it as sent)."""
        if self._next_allowed_s is not None and now_s < self._next_allowed_s:
            return False
        if self._next_allowed_s is None or now_s - self._next_allowed_s > self._interval_s:
            self._next_allowed_s = now_s + self._interval_s  # first message, or after a pause
        else:
            # Step from the previous slot, not from now, so jittery 100 Hz input still gives
            # an even 10 Hz.
            self._next_allowed_s += self._interval_s
        return True
