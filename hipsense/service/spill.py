"""Results the outbox cannot take (a full card), copied to RAM-backed storage that outlives the
process: a restart of the service (a crash, the watchdog, an update) no longer loses them.

While the outbox cannot be written, :class:`~hipsense.service.results.ResultPublisher` holds
results in memory, in order (up to ``MAX_HELD``). Each one held is also appended to a spill file
on a tmpfs: systemd's ``RuntimeDirectory`` (``/run/hipsense``, kept across restarts of the
service by ``RuntimeDirectoryPreserve=yes``, gone at reboot), else ``$XDG_RUNTIME_DIR``, else
``/dev/shm``. Not the card: it is the card that is full. A power cut still loses them (RAM);
the voice and the status (``unsaved_results``) say so.

Each line is one result, already built (its ``id`` fixed; its ``seq`` is given when it is
stored) with the session state that goes with it, and a spill number ``n``. Storing a spilled
result writes ``n`` into the outbox's state in the same transaction, so a restart imports
exactly the lines after it: none twice, none lost. A line ``{"stored": n}`` appended after the
commit says the same in the file, for an outbox that comes back without its state (see
:meth:`SpillFile.mark_stored`). The file is removed once nothing is held.
A line counts only with its newline: a torn last line (a kill mid-write) is skipped, and cut
off before the next append, as is the part of a line a failed write left (a full tmpfs). The
file is capped (``max_bytes``): past it, the rest is held in memory only, and logged.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path

__all__ = ["SpillEntry", "SpillFile", "default_spill_path"]

log = logging.getLogger(__name__)

MAX_SPILL_BYTES = 32 * 1024 * 1024
"""10 000 held results (``MAX_HELD``) of ~1 KB each with their session state fit."""


@dataclasses.dataclass(frozen=True, slots=True)
class SpillEntry:
    n: int
    what: str
    topic: str
    payload: bytes
    state: Mapping[str, bytes | None] | None


def default_spill_path(patient: str, outbox: os.PathLike[str] | str,
                       environ: Mapping[str, str] | None = None) -> Path | None:
    """Where the service spills held results: a tmpfs that outlives the process, or None.

    The name carries the patient and a digest of the outbox's path: the file belongs to that
    outbox (its stored spill number), and two services on one machine never share one."""
    environ = os.environ if environ is None else environ
    tag = hashlib.sha256(str(Path(outbox).resolve()).encode()).hexdigest()[:12]
    name = f"held-results-{patient}-{tag}.jsonl"
    for candidate in (environ.get("RUNTIME_DIRECTORY"), environ.get("XDG_RUNTIME_DIR")):
        if candidate:
            return Path(candidate.split(":")[0]) / name
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm / f"hipsense-{os.getuid()}-{name}"
    return None


class SpillFile:
    """An append-only file of held results (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int = MAX_SPILL_BYTES) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.stored = 0  # the highest line marked stored, as of the last load()
        self._full_logged = False

    def append(self, n: int, what: str, topic: str, payload: bytes, state: Mapping[str, bytes | None] | None) -> bool:
        """Append one result; False if it could not be (the cap, or the tmpfs failing: logged)."""
        line = json.dumps({
            "n": n, "what": what, "topic": topic, "payload": payload.decode("utf-8"),
            "state": None if state is None else {
                k: None if v is None else base64.b64encode(v).decode("ascii") for k, v in state.items()},
        }, separators=(",", ":")).encode("utf-8") + b"\n"
        return self._append_line(line)

    def mark_stored(self, n: int) -> bool:
        """Line ``n`` is in the outbox now (committed): say so in the file too (``{"stored": n}``).

        The outbox's own mark (written in the result's transaction) is the one that counts;
        this copy is for an outbox that comes back without it (a corrupt file replaced by a
        fresh one, a state directory wiped while /run/hipsense stayed), where importing every
        line would store again, under new numbers, results the dashboard already has."""
        return self._append_line(b'{"stored":%d}\n' % n, capped=False)

    def _append_line(self, line: bytes, *, capped: bool = True) -> bool:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                _check_ours(fd, self.path)
                size = _whole_lines(fd, self.path)
                if capped and size + len(line) > self.max_bytes:
                    if not self._full_logged:
                        self._full_logged = True
                        log.error("spill file %s is at its cap (%d bytes): further results wait in memory only and "
                                  "a restart of the service would lose them", self.path, self.max_bytes)
                    return False
                try:
                    view = memoryview(line)
                    while view:
                        view = view[os.write(fd, view):]
                    os.fsync(fd)
                except OSError:
                    # Part of the line may be written (a tmpfs with room for some bytes): cut it
                    # off, or the retry would be glued onto it and both read as one torn line.
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, size)
                    raise
            finally:
                os.close(fd)
        except OSError as exc:
            log.error("cannot copy a held result to %s: %s (it waits in memory only)", self.path, exc)
            return False
        return True

    def load(self) -> list[SpillEntry]:
        """Every whole line, in order (a torn or unreadable one is skipped, logged); the highest
        line marked stored (:meth:`mark_stored`) is then in :attr:`stored` (0 if none). Read a
        line at a time: the whole file at once was one more copy of it, up to ``max_bytes``,
        under the unit's MemoryMax, at the very start that imports it."""
        self.stored = 0
        entries: list[SpillEntry] = []
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                _check_ours(fd, self.path)
                with os.fdopen(os.dup(fd), "rb") as f:
                    for number, line in enumerate(f, 1):
                        self._read_line(number, line, entries)
            finally:
                os.close(fd)
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.error("cannot read the held results in %s: %s", self.path, exc)
            return []
        return entries

    def _read_line(self, number: int, line: bytes, entries: list[SpillEntry]) -> None:
        if not line.endswith(b"\n"):  # a torn write (dropped by the next append), never a result
            log.warning("skipping the torn end of %s (%d bytes)", self.path, len(line))
            return
        if line == b"\n":
            return
        try:
            doc = json.loads(line)
            if doc.keys() == {"stored"}:
                self.stored = max(self.stored, int(doc["stored"]))
                return
            state = doc["state"]
            entries.append(SpillEntry(
                n=int(doc["n"]), what=str(doc["what"]), topic=str(doc["topic"]),
                payload=str(doc["payload"]).encode("utf-8"),
                state=None if state is None else {
                    str(k): None if v is None else base64.b64decode(v) for k, v in state.items()}))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("skipping line %d of %s (torn or damaged): %s", number, self.path, exc)

    def clear(self) -> None:
        """Nothing is held any more: remove the file."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot remove %s: %s", self.path, exc)
        self._full_logged = False


def _whole_lines(fd: int, path: Path) -> int:
    """The size of the file open at ``fd`` up to its last newline, after cutting off anything
    past it (a line a kill or a failed write left torn), so that a line appended next starts a
    line of its own."""
    size = os.fstat(fd).st_size
    end = size
    while end > 0:
        start = max(0, end - 4096)
        chunk = os.pread(fd, end - start, start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            end = start + newline + 1
            break
        end = start
    if end < size:
        log.warning("cutting off the torn end of %s (%d bytes) before appending", path, size - end)
        os.ftruncate(fd, end)
    return end


def _check_ours(fd: int, path: Path) -> None:
    """Raise unless the file open at ``fd`` is a regular file of this user that no one else may
    read or write. The /dev/shm fallback is a directory every local user may create names in:
    a file someone else put at the (predictable) name would be imported as results, or be
    given ours (``O_NOFOLLOW`` refuses a symlink there)."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise PermissionError(f"{path} is not a private file of this user (owner uid {st.st_uid}, "
                              f"mode {stat.filemode(st.st_mode)}): not used")
