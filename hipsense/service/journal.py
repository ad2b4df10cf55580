"""The last minute or two of raw samples, on RAM-backed storage, so that a restarted service
counts the rep the dead process was in the middle of.

The tracker's state lives in memory. A service killed mid-rep (SIGKILL, the OOM killer, a
crash and systemd's restart) came back with a fresh tracker that had not seen the rep's raise,
and the rep kernel, by design, does not count a rep whose raise it did not see; a rep that had
ended but was still held back (a small first rep waits for the next one) was lost the same way.
Its results were safe (the outbox), its samples were not.

So the engine appends every batch it processes (sample times, acceleration, angular rate, as
float64: replayed, they give the tracker exactly what it had) to this journal: one ``write``
per batch, no fsync (a killed process's writes are in the kernel's page cache already; the
file is on a tmpfs, where an fsync would buy nothing). Two files take turns: the current one
is written until it spans ``span_s`` of sample time, then the other is emptied and written,
so the journal holds between ``span_s`` and twice that, never more (and never more than
``max_bytes``). On start-up the engine reads it back and feeds it through the fresh tracker
before the first live sample (:meth:`SessionEngine._replay_journal`), keeping only the results
that come after the last one the outbox committed.

Where it lives: next to the spill file (:func:`~hipsense.service.spill.default_spill_path`):
systemd's ``RuntimeDirectory`` (kept across restarts of the service, gone at reboot), else
``$XDG_RUNTIME_DIR``, else ``/dev/shm``; opened with ``O_NOFOLLOW`` and used only if it is a
private regular file of this user. A power cut loses it (RAM) and the rep in progress with it,
as before: it covers the restarts of a live machine, which are the common ones.

A journal is used only if it is this boot's (the sample clock is the host's monotonic clock,
which a reboot restarts), of this patient and this speed of replay, and recent (its last
sample at most ``max_age_s`` before now); anything damaged (a torn record, a bad checksum, a
header of another format) is skipped with a log line, and a journal that cannot be written is
logged once and switched off: counting never waits for it nor fails because of it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from hipsense.service.spill import _check_ours
from hipsense.service.timebase import Timebase

__all__ = ["JournalBatch", "SampleJournal", "boot_id", "default_journal_path"]

log = logging.getLogger(__name__)

SPAN_S = 60.0
"""Each of the two files spans this much sample time, so a restart replays 60-120 s. The rep
kernel lets a rep last up to 120 s (``max_rep_s``), but the catalogue's longest prescribed rep is
a 30 s stretch hold (hip flexor stretch), a few seconds with its raise and lowering; a small
first rep may wait for the next one (two reps); and the fresh tracker needs the set's earlier
reps to learn the rest pose and the range as the dead process's tracker had. Measured on the UCI
straight-leg raise (3 x 10, 5 s holds) killed at 101 points 2.3 s apart, each restart checked for
30 reps in sets of 10 (benchmarks/journal_kill_points.py): 58 points wrong without a journal,
26 with 15 s files, 8 with 30 s, 0 with 60 s. 60 s also covers two 30 s holds before the one in
progress; 2 x 60 s of one 100 Hz sensor is 0.7 MB of tmpfs."""
MAX_AGE_S = 300.0
"""A journal whose last sample is older than this (real seconds) is not replayed: what it holds
was not the rep in progress of the session being resumed (a service that stayed down longer
than a rest between sets has nothing in progress to save)."""
MAX_BYTES = 4 * 1024 * 1024
"""Two sensors at 100 Hz with angular rate write 11 KB a second: 2 x 60 s is 1.3 MB."""

_HEAD = struct.Struct("<4sI")  # b"HSJ1", length of the JSON header that follows
_REC = struct.Struct("<4sIIIBBH")  # b"HSRB", payload bytes, crc32 of the payload, seq, sensor, gyro?, n
_HEAD_MAGIC, _REC_MAGIC = b"HSJ1", b"HSRB"
_FORMAT = 1
_MAX_SAMPLES = 65535


@dataclasses.dataclass(frozen=True, slots=True)
class JournalBatch:
    """One processed batch, its sample times mapped onto this process's sample clock."""

    index: int
    t_s: np.ndarray
    acc_ms2: np.ndarray
    gyr_rad_s: np.ndarray | None


def boot_id() -> str:
    """This boot's id (Linux), '' where there is none."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def default_journal_path(patient: str, outbox: os.PathLike[str] | str,
                         environ: Mapping[str, str] | None = None) -> Path | None:
    """Where the service keeps its sample journal (two files: this name + ``.0`` / ``.1``), or
    None: the spill file's directory and naming (a tmpfs; the patient and the outbox's path in
    the name, so two services on one machine never share one)."""
    environ = os.environ if environ is None else environ
    tag = hashlib.sha256(str(Path(outbox).resolve()).encode()).hexdigest()[:12]
    name = f"samples-{patient}-{tag}.journal"
    for candidate in (environ.get("RUNTIME_DIRECTORY"), environ.get("XDG_RUNTIME_DIR")):
        if candidate:
            return Path(candidate.split(":")[0]) / name
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm / f"hipsense-{os.getuid()}-{name}"
    return None


class SampleJournal:
    """The sample journal at ``path`` (see the module docstring): :meth:`load` what a previous
    process left, then :meth:`append` each batch."""

    def __init__(self, path: str | os.PathLike[str], *, patient: str, timebase: Timebase,
                 span_s: float = SPAN_S, max_age_s: float = MAX_AGE_S, max_bytes: int = MAX_BYTES,
                 boot: str | None = None) -> None:
        self.path = Path(path)
        self.files = (self.path.with_name(self.path.name + ".0"), self.path.with_name(self.path.name + ".1"))
        self.patient = patient
        self.timebase = timebase
        self.span_s = span_s
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self.boot = boot_id() if boot is None else boot
        self.enabled = True
        self._fd: int | None = None
        self._which = 1  # the file written now; the first append starts file 0
        self._gen = 0  # files are numbered as they are started; the newer one is read last
        self._file_t0 = 0.0
        self._file_bytes = 0
        self._seq = 0
        self._started = False  # this process has started a file (and removed what an earlier one left)

    # -- writing ---------------------------------------------------------------------------------

    def append(self, index: int, t_s: np.ndarray, acc_ms2: np.ndarray, gyr_rad_s: np.ndarray | None) -> None:
        """Journal one batch: one write. Never raises: a journal that cannot be written is
        logged once and switched off (the counting goes on without it)."""
        if not self.enabled:
            return
        try:
            n = len(t_s)
            if n == 0 or n > _MAX_SAMPLES:
                return
            payload = b"".join((np.ascontiguousarray(t_s, "<f8").tobytes(),
                                np.ascontiguousarray(acc_ms2, "<f8").tobytes(),
                                b"" if gyr_rad_s is None else np.ascontiguousarray(gyr_rad_s, "<f8").tobytes()))
            record = _REC.pack(_REC_MAGIC, len(payload), zlib.crc32(payload), self._seq, index,
                               gyr_rad_s is not None, n) + payload
            t_end = float(t_s[-1])
            if (self._fd is None or t_end - self._file_t0 >= self.span_s
                    or self._file_bytes + len(record) > self.max_bytes // 2):
                self._start_file(float(t_s[0]))
            assert self._fd is not None
            written = os.write(self._fd, record)
            if written != len(record):  # a full tmpfs: the part written is cut off by the next file
                raise OSError(f"short write ({written} of {len(record)} bytes)")
            self._file_bytes += written
            self._seq += 1
        except Exception as exc:  # noqa: BLE001 - whatever it is, counting goes on
            self.enabled = False
            log.error("sample journal %s switched off: %s (a restart of the service loses the rep in progress)",
                      self.path, exc)
            self.close()

    def _start_file(self, t0: float) -> None:
        self.close()
        self._which = 1 - self._which
        self._gen += 1
        path = self.files[self._which]
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self._started:  # an earlier process's other file: read (load) and replayed into this one
            self._started = True
            self.files[1 - self._which].unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            _check_ours(fd, path)  # before truncating: never empty a file that is not ours
            os.ftruncate(fd, 0)
            header = json.dumps({"format": _FORMAT, "patient": self.patient, "boot": self.boot,
                                 "scale": self.timebase.scale, "mono_t0": self.timebase.to_monotonic(0.0),
                                 "gen": self._gen}, separators=(",", ":")).encode()
            os.write(fd, _HEAD.pack(_HEAD_MAGIC, len(header)) + header)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._file_t0 = t0
        self._file_bytes = _HEAD.size + len(header)

    def clear(self) -> None:
        """A clean stop (the session summarised): nothing in the journal is in progress."""
        self.close()
        for path in self.files:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("cannot remove %s: %s", path, exc)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.close(fd)
            except OSError:
                pass

    # -- reading ---------------------------------------------------------------------------------

    def load(self) -> list[JournalBatch]:
        """What a previous process of this boot journaled, in order, mapped onto this process's
        sample clock; [] if there is nothing usable (each reason logged)."""
        found: list[tuple[int, int, JournalBatch]] = []
        for path in self.files:
            found += self._load_file(path)
        if not found:
            return []
        found.sort(key=lambda item: (item[0], item[1]))
        self._gen = max(self._gen, found[-1][0])
        batches = [batch for _, _, batch in found]
        last = max(float(b.t_s[-1]) for b in batches)
        age = self.timebase.monotonic_now() - self.timebase.to_monotonic(last)
        if age > self.max_age_s or age < -1.0:
            log.info("sample journal %s not replayed: its last sample is %.0f s old (at most %.0f s)",
                     self.path, age, self.max_age_s)
            return []
        # each sensor's samples must go forward in time (two files written in turns)
        ordered: list[JournalBatch] = []
        latest: dict[int, float] = {}
        for batch in batches:
            if float(batch.t_s[0]) <= latest.get(batch.index, -np.inf):
                log.warning("sample journal %s: a batch of sensor %d out of order, skipped", self.path, batch.index)
                continue
            latest[batch.index] = float(batch.t_s[-1])
            ordered.append(batch)
        return ordered

    def _load_file(self, path: Path) -> list[tuple[int, int, JournalBatch]]:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.warning("ignoring sample journal %s: %s", path, exc)
            return []
        try:
            _check_ours(fd, path)
            size = os.fstat(fd).st_size
            if size > self.max_bytes:
                raise ValueError(f"{size} bytes, over the {self.max_bytes}-byte cap")
            data = os.pread(fd, size, 0)
        except (OSError, ValueError) as exc:
            log.warning("ignoring sample journal %s: %s", path, exc)
            return []
        finally:
            os.close(fd)
        try:
            gen, shift, offset = self._header(data)
        except ValueError as exc:
            log.warning("ignoring sample journal %s: %s", path, exc)
            return []
        out: list[tuple[int, int, JournalBatch]] = []
        while offset < len(data):
            try:
                seq, batch, offset = _record(data, offset, shift)
            except ValueError as exc:
                log.warning("sample journal %s damaged at byte %d (%s): the %d batch(es) before it are replayed, "
                            "the rest is ignored", path, offset, exc, len(out))
                break
            out.append((gen, seq, batch))
        return out

    def _header(self, data: bytes) -> tuple[int, float, int]:
        if len(data) < _HEAD.size:
            raise ValueError("no header")
        magic, length = _HEAD.unpack_from(data)
        if magic != _HEAD_MAGIC or length > 4096 or _HEAD.size + length > len(data):
            raise ValueError("not a sample journal (bad header)")
        try:
            head = json.loads(data[_HEAD.size:_HEAD.size + length])
            if head["format"] != _FORMAT:
                raise ValueError(f"format {head['format']!r}")
            if head["patient"] != self.patient:
                raise ValueError(f"another patient's ({head['patient']!r})")
            if head["boot"] != self.boot:
                raise ValueError("from another boot (its sample clock is not this one's)")
            scale, mono0, gen = float(head["scale"]), float(head["mono_t0"]), int(head["gen"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"a header without {exc}") from None
        if scale != self.timebase.scale:
            raise ValueError(f"replayed at {scale}x, not {self.timebase.scale}x")
        # the writer's sample time t happened at monotonic mono0 + t / scale (mono_t0: sample
        # time 0's instant, Timebase.to_monotonic); this process's
        # sample time for it is t plus one offset (the same scale: durations are kept)
        return gen, self.timebase.from_monotonic(mono0), _HEAD.size + length


def _record(data: bytes, offset: int, shift: float) -> tuple[int, JournalBatch, int]:
    if offset + _REC.size > len(data):
        raise ValueError("a torn record")
    magic, length, crc, seq, index, gyro, n = _REC.unpack_from(data, offset)
    if magic != _REC_MAGIC:
        raise ValueError("no record where one should start")
    if length != n * 8 * (7 if gyro else 4) or n == 0:
        raise ValueError("a record of an impossible length")
    start = offset + _REC.size
    end = start + length
    if end > len(data):
        raise ValueError("a torn record")
    payload = data[start:end]
    if zlib.crc32(payload) != crc:
        raise ValueError("a bad checksum")
    values = np.frombuffer(payload, "<f8")
    t_s = values[:n] + shift
    acc = values[n:4 * n].reshape(n, 3)
    gyr = values[4 * n:].reshape(n, 3) if gyro else None
    if not (np.all(np.isfinite(t_s)) and np.all(np.diff(t_s) >= 0)):
        raise ValueError("sample times that do not go forward")
    return seq, JournalBatch(index, t_s, acc, gyr), end
