"""systemd integration without a dependency: ``sd_notify`` over the NOTIFY_SOCKET datagram.

With ``Type=notify`` systemd waits for ``READY=1`` before it calls the unit started, and with
``WatchdogSec=`` it restarts the service unless ``WATCHDOG=1`` arrives in time. The service
pings only while its processing thread is alive and keeping up (see service.py), so a hung
engine is restarted rather than left "running". Outside systemd (no NOTIFY_SOCKET) every call
is a no-op.
"""

from __future__ import annotations

import os
import socket

__all__ = ["Notifier"]


class Notifier:
    """Send state lines to systemd's notify socket."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        if address and address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace socket
        self._address = address
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        enabled = usec is not None and (pid is None or pid == str(os.getpid()))
        self.watchdog_s: float | None = int(usec) / 1e6 if enabled and usec and usec.isdigit() else None

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, state: str) -> bool:
        """Send ``state`` (e.g. ``"READY=1"``); False when not under systemd or the send failed."""
        if not self._address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self._address)
                sock.sendall(state.encode())
            return True
        except OSError:
            return False  # systemd went away (shutdown); nothing useful to do about it

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")
