"""How many failed log-ins are allowed before the login form stops trying passwords.

Argon2 makes each guess cost the server ~50 ms, but nothing stopped a script from guessing all
day. Failures are counted per client address (behind the Caddy proxy uvicorn's proxy headers
give the real one) and per user name, over a sliding window: past ``per_address`` failures
from one address, or ``per_user`` failures for one name from anywhere, further attempts are
refused with 429 — *before* the password is hashed — until the oldest failure leaves the
window. The per-name bar is higher than one person's typos and low enough to stop a
distributed guess; it can be used to keep a therapist out for one window, which is the price
of stopping the guessing.

Names are counted in the spelling log-in uses (:func:`normalise_username`: " ANA" is "ana"),
so case and blank variants are not fresh names. A successful log-in clears the failures
against *that* account only (the name's, and the address's attempts at that name): logging
in to one's own account from an address must not wipe the address's guesses at others.

In memory, per process: a restart forgets, and several dashboard processes count apart.
Bounded: at most ``max_keys`` addresses and names are remembered (the oldest go first).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from hipsense.dashboard.accounts.usernames import normalise_username

__all__ = ["LoginThrottle"]


@dataclass
class LoginThrottle:
    per_address: int = 20
    per_user: int = 10
    window_s: float = 15 * 60.0
    max_keys: int = 10_000
    clock: Callable[[], float] = time.monotonic
    # key -> (time, normalised name) of each failure, oldest first
    _failures: OrderedDict[tuple[str, str], deque[tuple[float, str]]] = field(default_factory=OrderedDict, repr=False)

    def retry_after_s(self, address: str, username: str) -> float:
        """0 when this attempt may go ahead, else the seconds until it may."""
        now = self.clock()
        waits = [
            self._wait(("address", address), self.per_address, now),
            self._wait(("user", normalise_username(username)), self.per_user, now),
        ]
        return max(waits)

    def failed(self, address: str, username: str) -> None:
        now = self.clock()
        name = normalise_username(username)
        for key in (("address", address), ("user", name)):
            times = self._failures.pop(key, None) or deque()
            times.append((now, name))
            self._failures[key] = times  # most recent last: the eviction order
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, address: str, username: str) -> None:
        name = normalise_username(username)
        self._failures.pop(("user", name), None)
        times = self._failures.get(("address", address))
        if times:
            kept = deque(entry for entry in times if entry[1] != name)
            if kept:
                self._failures[("address", address)] = kept
            else:
                del self._failures[("address", address)]

    def _wait(self, key: tuple[str, str], limit: int, now: float) -> float:
        times = self._failures.get(key)
        if not times:
            return 0.0
        while times and now - times[0][0] >= self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0.0
        if len(times) < limit:
            return 0.0
        # refused until enough failures have aged out to bring the count under the limit
        return max(0.0, times[len(times) - limit][0] + self.window_s - now) or math.ulp(1.0)
