"""Reconnect timing for the BLE link: capped, jittered exponential backoff and a silence watchdog.

Pure and time-injected: nothing here reads a clock, sleeps or draws random numbers by itself, so
the policy is unit-testable to the microsecond. :mod:`hipsense.device.ble` drives both with
``time.monotonic()`` and ``random.Random``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Backoff", "BackoffPolicy", "SilenceWatchdog"]


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """How long to wait before reconnect attempt ``n`` (0 = the first attempt after a loss).

    The ceiling for attempt ``n`` is ``min(max_s, initial_s × multiplier**n)``; the actual delay
    is drawn uniformly from ``[(1 - jitter) × ceiling, ceiling]``, so two sensors that dropped
    together (one adapter, one Wi-Fi burst) do not retry in lock-step. ``jitter = 1`` is "full
    jitter"; ``0`` is deterministic.

    Attributes
    ----------
    initial_s
        Ceiling of the first delay (s). bleak and D-Bus need ~0.25 s to clean up after a failure.
    multiplier
        Growth per failed attempt (≥ 1).
    max_s
        Cap (s): a sensor that comes back in range is found again within this long.
    jitter
        Fraction of the ceiling that is randomised, in [0, 1].
    """

    initial_s: float = 0.5
    multiplier: float = 2.0
    max_s: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not (self.initial_s > 0 and math.isfinite(self.initial_s)):
            raise ValueError(f"initial_s must be a positive number of seconds, got {self.initial_s}")
        if not self.multiplier >= 1:
            raise ValueError(f"multiplier must be >= 1, got {self.multiplier}")
        if not self.max_s >= self.initial_s:
            raise ValueError(f"max_s ({self.max_s}) must be >= initial_s ({self.initial_s})")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be in [0, 1], got {self.jitter}")

    def ceiling_s(self, attempt: int) -> float:
        """The longest delay attempt ``attempt`` can get (its bound)."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt}")
        # Compare exponents instead of computing huge powers after many failures.
        if self.multiplier > 1 and attempt * math.log(self.multiplier) > math.log(self.max_s / self.initial_s):
            return self.max_s
        return min(self.max_s, self.initial_s * self.multiplier**attempt)

    def delay_s(self, attempt: int, uniform: float) -> float:
        """The delay for ``attempt`` given ``uniform`` drawn from [0, 1)."""
        if not 0 <= uniform <= 1:
            raise ValueError(f"uniform must be in [0, 1], got {uniform}")
        ceiling = self.ceiling_s(attempt)
        return ceiling * (1.0 - self.jitter * uniform)


class Backoff:
    """Attempt counter over a :class:`BackoffPolicy`: ``next_delay_s`` after each failure,
    ``reset`` once a connection streams again."""

    __slots__ = ("attempt", "policy")

    def __init__(self, policy: BackoffPolicy) -> None:
        self.policy = policy
        self.attempt = 0

    def next_delay_s(self, uniform: float) -> float:
        """Delay before the next attempt; advances the attempt count."""
        delay = self.policy.delay_s(self.attempt, uniform)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


class SilenceWatchdog:
    """Connected but nothing received for ``timeout_s`` → the link counts as lost.

    Feed it every receive time; ask it with the current time. Times are seconds on one
    monotonic clock.
    """

    __slots__ = ("last_s", "timeout_s")

    def __init__(self, timeout_s: float) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.timeout_s = float(timeout_s)
        self.last_s: float | None = None

    def arm(self, now_s: float) -> None:
        """Start (or restart) watching, as if something had just arrived."""
        self.last_s = now_s

    def feed(self, received_at_s: float) -> None:
        """Something arrived at ``received_at_s``."""
        if self.last_s is None or received_at_s > self.last_s:
            self.last_s = received_at_s

    def remaining_s(self, now_s: float) -> float:
        """Seconds until silence would be declared (≤ 0: it is silent now). Unarmed: timeout."""
        if self.last_s is None:
            return self.timeout_s
        return self.last_s + self.timeout_s - now_s

    def is_silent(self, now_s: float) -> bool:
        return self.last_s is not None and self.remaining_s(now_s) <= 0
