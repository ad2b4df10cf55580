"""A space reserve on the card: room kept back so that a full card still saves results on it.

On a full card the outbox cannot take a result, which then waits in memory and in a RAM-backed
spill file (``service/spill.py``): a restart keeps it, a power cut loses it. So the service
keeps a file of real blocks, ``outbox.reserve``, in its state directory (on the card, beside
the outbox). When a write to the outbox fails for lack of room, the outbox calls
:meth:`CardReserve.release` (``Outbox.on_full``): the file is removed, that is logged (error,
once), the status says ``card_reserve: "in_use"`` (docs/mqtt.md) and the write is tried again,
now into the freed room: the result is on the card, committed, as if nothing had happened.
Only once the reserve's room is used up too do results wait outside the outbox as before.

The reserve is made at start-up, and made again by the service's housekeeping (every
``CHECK_S`` while it is not in place) once the card has room for it and as much again: made
back as soon as it fits, the next write would take it again at once. A card without that room
at start-up gets none (``card_reserve: "missing"``): it is nearly full already.

Its blocks are real: ``os.posix_fallocate`` (glibc writes a byte a block where the file system
cannot allocate), else zeros written; a sparse file reserves nothing. A file system that still
does not give it its blocks (compression) is logged. Nothing of this runs per sample or per
result: only at start-up, on a failed write, and a ``statvfs`` a minute while it is in use.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from hipsense.service.logs import fields

if TYPE_CHECKING:
    from hipsense.publish import OutboxError

__all__ = ["CHECK_S", "DEFAULT_RESERVE_MIB", "CardReserve"]

log = logging.getLogger(__name__)

DEFAULT_RESERVE_MIB = 8
"""8 MiB: the outbox's WAL may need ~4 MiB of it first (it grows to ~1,000 pages between
checkpoints, ~35 KiB a result while it grows: each commit appends every page it touched; after
a start it is small again), and a rep then takes ~0.5 KB of the rest in the database (with its
indexes and the session state). Measured on a real full tmpfs, ``python
benchmarks/card_reserve.py 4 8``: 8 MiB saved 8,585 reps when the card filled with the WAL
fresh (the worst case) and 16,711 with it at its largest; 4 MiB only 216 in the worst case (the
WAL took it all) and 8,353. A few results a minute of exercise: weeks."""

CHECK_S = 60.0
"""While the reserve is not in place, how often the housekeeping sees whether it fits again."""

_MIB = 1024 * 1024
_CHUNK = _MIB


class CardReserve:
    """The reserve file at ``path`` of ``size_bytes`` (0: none). Thread-safe: writes on any
    thread may release it, the housekeeping makes it again."""

    def __init__(self, path: str | os.PathLike[str], size_bytes: int) -> None:
        self.path = Path(path)
        self.size = int(size_bytes)
        self._lock = threading.Lock()
        self._status: str | None = None if self.size == 0 else "missing"
        self._missing_logged = False

    @property
    def status(self) -> str | None:
        """None: in place (or none configured); ``"in_use"``: given up to a write that found the
        card full, not made again yet; ``"missing"``: it could not be made (the card has not room
        for it and as much again). What the status message carries as ``card_reserve``."""
        return self._status

    def ensure(self) -> bool:
        """Make the reserve if it is not in place and the card has room for it and as much again
        (at start-up, and from the housekeeping). Returns True if :attr:`status` changed."""
        if self.size == 0:
            if self.path.exists():  # none configured now: give back the room of one made before
                log.info("no card reserve configured: removing %s", self.path)
                with self._lock:
                    self._remove()
            return False
        with self._lock:
            before = self._status
            if self._intact():
                self._status = None
            elif self._make():
                if before == "in_use":
                    log.warning("the card has room again: its %g MiB reserve (%s) is made again", self.size / _MIB,
                                self.path)
                self._status = None
            return self._status != before

    def release(self, exc: OutboxError | None = None) -> bool:
        """A write found the card full: remove the reserve (``Outbox.on_full``). Returns True if
        that made room (the write is then tried again), False if there was none to give."""
        with self._lock:
            if self.size == 0 or self._status is not None:
                return False
            self._status = "in_use"
            try:
                os.unlink(self.path)
            except OSError as unlink_exc:
                log.error("the card is full and its reserve %s cannot be removed: %s", self.path, unlink_exc)
                return False
        log.error("the card is full (%s): its %g MiB reserve (%s) is given to the outbox, so results are still "
                  "saved on the card, for a while (thousands); make room on the card", exc or "no room",
                  self.size / _MIB, self.path, extra=fields(card_reserve="in_use"))
        return True

    # -- internals (lock held) ------------------------------------------------------------------

    def _intact(self) -> bool:
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISREG(st.st_mode) and st.st_size == self.size and st.st_blocks * 512 >= self.size:
            return True
        log.warning("the card reserve %s is not a file of %d bytes with its blocks (%d bytes, %d allocated): made "
                    "again", self.path, self.size, st.st_size, st.st_blocks * 512)
        self._remove()
        return False

    def _make(self) -> bool:
        try:
            vfs = os.statvfs(self.path.parent)
        except OSError as exc:
            log.error("cannot see the free space for the card reserve %s: %s", self.path, exc)
            return False
        free = vfs.f_bavail * vfs.f_frsize
        if free < 2 * self.size:
            if self._status == "missing" and not self._missing_logged:  # in use: it waits for room, quietly
                self._missing_logged = True
                log.error("the card has %d bytes free, less than twice its %g MiB reserve: no reserve (%s), a full "
                          "card will keep results in memory only", free, self.size / _MIB, self.path,
                          extra=fields(card_reserve="missing"))
            return False
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            log.error("cannot make the card reserve %s: %s", self.path, exc)
            return False
        try:
            _allocate(fd, self.size)
            os.fsync(fd)
            allocated = os.fstat(fd).st_blocks * 512
        except OSError as exc:
            os.close(fd)
            self._remove()
            log.error("cannot make the card reserve %s: %s", self.path, exc)
            return False
        os.close(fd)
        if allocated < self.size:
            log.warning("the file system gives the card reserve %s only %d of its %d bytes (compression?): it "
                        "reserves less than it says", self.path, allocated, self.size)
        return True

    def _remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def _allocate(fd: int, size: int) -> None:
    """Give the file open at ``fd`` ``size`` bytes of real blocks."""
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is not None:
        try:
            fallocate(fd, 0, size)
            return
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
    zeros = bytes(_CHUNK)
    written = 0
    while written < size:
        written += os.write(fd, zeros[:min(_CHUNK, size - written)])
