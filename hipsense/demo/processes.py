"""The demo's child processes (the Pi service, the dashboard): started, watched, stopped.

Each runs the real command (``python -m hipsense run`` / ``dashboard serve``) in a session of
its own, so a Ctrl-C in the terminal reaches only the demo, which then stops them in order:
the service first (it writes the session summary and says "offline" while the broker and the
dashboard still listen), then the dashboard, then the broker. Their output goes to a log file
each, not to the terminal.

If the demo itself dies without cleaning up (SIGKILL, a crash), Linux's parent-death signal
sends each child SIGTERM, so nothing keeps running unseen.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["ChildProcess", "die_with_parent"]

_PR_SET_PDEATHSIG = 1


def _parent_death_signal():  # -> preexec_fn or None
    """A preexec_fn that asks Linux to SIGTERM the child when the demo dies (None elsewhere).

    A preexec_fn is unsafe once the parent has threads (the child could wait forever for a
    lock another thread held at the fork), so the demo starts its children before any thread,
    and the function is resolved here, in the parent: between fork and exec it only makes one
    foreign call.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def set_parent_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the demo died between fork and prctl
            os._exit(1)

    return set_parent_death_signal


def die_with_parent(parent: int) -> None:
    """In a child started otherwise (multiprocessing): SIGTERM when ``parent`` dies, as above."""
    if not sys.platform.startswith("linux"):
        return
    try:
        prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return
    prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # it died already
        os._exit(1)


class ChildProcess:
    """One ``python -m hipsense ...`` command with its output in ``log_path``."""

    def __init__(self, name: str, args: list[str], log_path: Path, *, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.args = [sys.executable, "-m", "hipsense", *args]
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, **(self.env or {}), "PYTHONUNBUFFERED": "1"}
        env.pop("NOTIFY_SOCKET", None)  # the service must not talk to systemd on the demo's behalf
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True, preexec_fn=_parent_death_signal(),  # noqa: PLW1509 - see above
            )

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def exit_code(self) -> int | None:
        """None while running (or never started)."""
        return None if self.process is None else self.process.poll()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self) -> None:
        """Ask it to stop (SIGTERM: both commands then shut down cleanly)."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)

    async def stopped(self, timeout: float, give_up: Callable[[], bool] = lambda: False) -> bool:
        """Wait (without blocking the event loop, which runs the broker) until it has exited;
        False after ``timeout`` s or as soon as ``give_up()`` says so."""
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() > deadline or give_up():
                return False
            await asyncio.sleep(0.05)
        return True

    async def stop(self, timeout: float, give_up: Callable[[], bool] = lambda: False) -> int | None:
        """SIGTERM, up to ``timeout`` s to finish, then SIGKILL. Returns the exit code."""
        self.terminate()
        if not await self.stopped(timeout, give_up):
            self.kill()
        return self.exit_code()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self.process.wait(5)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

