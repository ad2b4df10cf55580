"""Whether the Pi's wall clock is synchronised (NTP), to flag results stamped while it is not.

A Pi has no battery clock: after a power cut it starts with the time fake-hwclock saved (hours
or weeks behind) and keeps it until NTP reaches a server. A patient whose router is off too
exercises on that clock: the results are dated wrongly, plausibly enough for the dashboard to
store them. :class:`~hipsense.service.timebase.Timebase` follows the clock once NTP steps it;
results stamped before that carry the flag ``clock_unsynced``.

Two ways to tell, the first that answers wins:

* systemd-timesyncd (Raspberry Pi OS's) creates ``/run/systemd/timesync/synchronized`` once
  it has synchronised the clock since boot;
* the kernel's NTP state (``ntp_adjtime`` with no changes asked: TIME_ERROR means the clock is
  not synchronised), for chrony or ntpd. The shipped unit's ``ProtectClock=yes`` refuses the
  call (EPERM); then the answer is "cannot tell", and nothing is flagged.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

__all__ = ["clock_synchronized"]

TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")
_TIME_ERROR = 5


def _kernel_says() -> bool | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        timex = ctypes.create_string_buffer(512)  # struct timex, zeroed: modes 0 asks for nothing
        state = libc.ntp_adjtime(timex)
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != _TIME_ERROR


def clock_synchronized(timesyncd_flag: Path = TIMESYNCD_FLAG) -> bool | None:
    """True or False if it can be told, else None."""
    if timesyncd_flag.exists():
        return True
    if timesyncd_flag.parent.is_dir() and os.path.exists("/run/systemd/system"):  # timesyncd runs, not synced yet
        return False
    return _kernel_says()
