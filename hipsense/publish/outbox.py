"""A durable outbox: every message is committed to SQLite before it is sent, and removed
only when it is safe to forget it.

When a row is forgotten
    * A sequenced result (:meth:`Outbox.put_sequenced`) only when the dashboard's end-to-end
      acknowledgement covers it (:meth:`Outbox.confirm_stored`): the broker's PUBACK merely
      marks it *delivered* (:meth:`Outbox.mark_delivered`), and a delivered row that no
      acknowledgement covers is handed out again (:meth:`Outbox.release_unconfirmed`).
    * Anything else (status) on the broker's PUBACK (:meth:`Outbox.ack_many`).

Durability
    The database runs in WAL mode with ``synchronous=FULL``: each commit fsyncs the WAL, so
    a message :meth:`Outbox.put` returned for survives SIGKILL *and* a power cut. With
    ``NORMAL`` a power cut may roll back the last commits (the file stays consistent, but a
    rep could vanish), which the project's "nothing is lost" rule forbids. The price is one
    fsync per put - a few ms on an SD card, at a few results per minute.

Bounded size (the drop policy)
    * Retained state (``Importance.STATE``: the status) is coalesced: a new message replaces
      any older unsent one on the same topic, since only the newest matters.
    * Live data carries an MQTT expiry; an expired row is deleted instead of sent.
    * Over ``soft_max_rows`` rows, the oldest LIVE rows go first, then the oldest STATE rows.
      Results (rep/hold/set/session/pain) are never dropped for the soft limit.
    * Over ``hard_max_rows`` rows (default 200 000, about 80 MB and months of exercise
      offline), the oldest results are dropped too. Every drop is counted per importance in
      the database (:meth:`Outbox.stats`) and logged.

State kept with the results
    The ``state`` table holds small documents the producer must keep *in step* with what it
    stored (the session service's set and rep numbering, see ``service/state.py``):
    :meth:`Outbox.put_sequenced` takes them and commits them in the result's own
    transaction, so a crash leaves both or neither, never a stored rep whose number the
    restarted service hands out again.

A full file system
    A write that fails for lack of room (SQLITE_FULL: the file, its WAL or its shared-memory
    index cannot grow) raises :class:`OutboxError` with ``full``. Before that, if
    :attr:`Outbox.on_full` is set (the service's card reserve, ``service/reserve.py``), it is
    called once (without the lock); if it says it made room, the whole write is tried again.
    A failed transaction leaves nothing behind, so trying it again is safe.

A corrupt file
    :func:`open_outbox` (what the service opens it with) keeps a corrupt file aside, reads
    back what it can without leaving a gap, and starts a new outbox; see there. Found while
    running (an :class:`OutboxError` with ``corrupt``), :meth:`Outbox.recover` does the same
    in place; the result publisher and the sender call it.

Threads
    One connection guarded by a lock, so a producer thread, a sender thread and acks from
    the MQTT thread may all call in. Calls do disk I/O: do not call them on an asyncio event
    loop, use ``asyncio.to_thread``.
"""

from __future__ import annotations

import calendar
import contextlib
import dataclasses
import logging
import os
import re
import sqlite3
import functools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from hipsense.protocol import Envelope, Importance
from hipsense.protocol.builders import MAX_SEQ
from hipsense.publish.errors import OutboxError

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_P = ParamSpec("_P")

_SCHEMA_VERSION = 3
# An acknowledgement that moves the numbering (see confirm_stored) is refused if it is within
# this of MAX_SEQ (results would soon fail in the builder) or this far above the highest number
# any numbering here could have reached: the last number handed out, or now in Unix ms (a floor
# after a corrupt file; the status's outbox_first_seq comes from these numbers too) - a million
# results is years of exercise.
_ACK_JUMP_MAX = 10**6
_SEQ_HEADROOM = 10**9
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids are never reused, so
                                                    -- a late ack cannot remove a newer row
    topic       TEXT    NOT NULL,
    payload     BLOB    NOT NULL,
    qos         INTEGER NOT NULL,
    retain      INTEGER NOT NULL,
    expiry_s    INTEGER,
    importance  INTEGER NOT NULL,
    created_at  REAL    NOT NULL,                   -- wall clock: it must survive restarts
    stream      TEXT,                               -- sequenced results: whose sequence (the patient)
    seq         INTEGER,                            -- ... and the number in it
    delivered_at REAL                               -- PUBACKed, waiting for the dashboard's ack
);
CREATE INDEX IF NOT EXISTS outbox_by_importance ON outbox (importance, id);
CREATE TABLE IF NOT EXISTS sequences (stream TEXT PRIMARY KEY, last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, doc BLOB NOT NULL);  -- version 3
"""
# Version 1 files (before end-to-end acknowledgements) lack the last three columns; their
# result rows get stream and seq from their own payload, so they too wait for the dashboard.
_UPGRADE_FROM_1 = """
ALTER TABLE outbox ADD COLUMN stream TEXT;
ALTER TABLE outbox ADD COLUMN seq INTEGER;
ALTER TABLE outbox ADD COLUMN delivered_at REAL;
UPDATE outbox SET stream = json_extract(CAST(payload AS TEXT), '$.patient'),
                  seq = json_extract(CAST(payload AS TEXT), '$.seq')
 WHERE importance = 2 AND json_valid(CAST(payload AS TEXT));
"""
_INDEXES = """
CREATE INDEX IF NOT EXISTS outbox_by_stream_seq ON outbox (stream, seq) WHERE seq IS NOT NULL;
CREATE INDEX IF NOT EXISTS outbox_undelivered ON outbox (id) WHERE delivered_at IS NULL;
"""


def _room_retried(method: Callable[Concatenate[Outbox, _P], _T]) -> Callable[Concatenate[Outbox, _P], _T]:
    """A write method that, when it fails for lack of room, asks :attr:`Outbox.on_full` for
    some and, if it made room, runs once more (see "A full file system" above)."""

    @functools.wraps(method)
    def write(self: Outbox, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return method(self, *args, **kwargs)
        except OutboxError as exc:
            if not exc.full or self.on_full is None or not self.on_full(exc):
                raise
        return method(self, *args, **kwargs)

    return write


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxLimits:
    """Size bounds in rows; see the module docstring for the policy."""

    soft_max_rows: int = 20_000
    hard_max_rows: int = 200_000

    def __post_init__(self) -> None:
        if not 0 < self.soft_max_rows <= self.hard_max_rows:
            raise ValueError("need 0 < soft_max_rows <= hard_max_rows")


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxRow:
    """One stored message. ``id`` orders rows in the order they were put."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    expiry_s: int | None
    importance: Importance
    created_at: float
    stream: str | None = None  # set for sequenced results: they wait for the dashboard's ack
    seq: int | None = None

    def remaining_expiry_s(self, now: float) -> int | None:
        """Seconds of MQTT message expiry left (None: never expires; <= 0: expired)."""
        if self.expiry_s is None:
            return None
        return int(self.created_at + self.expiry_s - now)


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxStats:
    """Rows waiting, and rows dropped since the file was created, per importance."""

    pending: dict[Importance, int]
    dropped: dict[Importance, int]
    expired: int
    awaiting_storage: int = 0  # delivered to the broker, not yet acknowledged as stored

    @property
    def pending_total(self) -> int:
        return sum(self.pending.values())


class Outbox:
    """The durable outbox at ``path`` (created if missing).

    Parameters
    ----------
    path : str or Path
        SQLite file. Keep it on local storage: WAL does not work on network filesystems.
    limits : OutboxLimits, optional
        Size bounds.
    clock : callable, optional
        Wall-clock seconds, for expiry; injectable for tests.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, limits: OutboxLimits | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path)
        self.limits = limits or OutboxLimits()
        self._clock = clock
        self._lock = threading.Lock()
        self._seq_floor = 0
        # (aside, problem, base) while a corrupt file is set aside but its replacement could not
        # be opened (aside None: it could not be set aside, nor reopened): every call then raises
        # a corrupt OutboxError, so callers recover() again.
        self._replacing: tuple[Path | None, str, int] | None = None
        # Called (without the lock) when a write fails for lack of room; True: it made some, the
        # write is tried once more. The service's card reserve (service/reserve.py).
        self.on_full: Callable[[OutboxError], bool] | None = None
        self._connect()

    def _connect(self) -> None:
        """Open the file (create it, upgrade its schema) and read the counts."""
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise OutboxError(f"outbox {self.path} cannot use WAL (got {mode!r}); put it on local storage", path=str(self.path))
            self._db.execute("PRAGMA synchronous=FULL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            fresh = self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'outbox'").fetchone() is None
            self._db.executescript(_SCHEMA)
            if not fresh and version < 2:
                self._db.executescript(f"BEGIN IMMEDIATE; {_UPGRADE_FROM_1} COMMIT;")
            self._db.executescript(_INDEXES)
            if version != _SCHEMA_VERSION:  # not on every start: a full disk must not stop one
                self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
            self._counts = self._count_rows()
            floor = self._db.execute("SELECT value FROM counters WHERE name = 'sequence_floor'").fetchone()
            # Never below a floor already in memory (set before a replacement file was opened).
            self._seq_floor = max(int(floor[0]) if floor else 0, self._seq_floor)
        except (sqlite3.Error, OutboxError) as exc:
            if hasattr(self, "_db"):
                self._db.close()
            if isinstance(exc, OutboxError):
                raise
            raise _error(self.path, exc, "cannot open outbox") from exc

    # -- writing -------------------------------------------------------------------------

    @_room_retried
    def put(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int,
        retain: bool,
        expiry_s: int | None = None,
        importance: Importance = Importance.RESULT,
    ) -> int:
        """Store one message; it is on disk when this returns. Return its row id."""
        with self._lock, self._transaction():
            return self._insert(topic, payload, qos, retain, expiry_s, importance)

    def put_envelope(self, envelope: Envelope) -> int:
        """Store a protocol :class:`Envelope`; return its row id."""
        return self.put(
            envelope.topic, envelope.payload, qos=envelope.qos, retain=envelope.retain,
            expiry_s=envelope.expiry_s, importance=envelope.importance,
        )

    @_room_retried
    def put_sequenced(self, stream: str, build: Callable[[int], Envelope], *,
                      state: Mapping[str, bytes | None] | None = None) -> tuple[int, Envelope]:
        """Take the next sequence number of ``stream``, build the message with it, store it.

        Number and message are committed in one transaction, so a crash leaves no gap in the
        sequence and never reuses a number. If ``build`` raises (e.g. ProtocolError), nothing
        is stored and the number is not used. Use the patient id as ``stream``.

        ``state`` (name to document, None to delete it) is written in the same transaction:
        what the producer must remember exactly as far as the results it stored.
        """
        with self._lock, self._transaction():
            seq = self._last(stream) + 1
            envelope = build(seq)
            self._db.execute("INSERT OR REPLACE INTO sequences (stream, last) VALUES (?, ?)", (stream, seq))
            row_id = self._insert(
                envelope.topic, envelope.payload, envelope.qos, envelope.retain, envelope.expiry_s, envelope.importance,
                stream=stream, seq=seq,
            )
            if state:
                self._write_state(state)
            return row_id, envelope

    # -- state kept with the results ------------------------------------------------------------

    def read_state(self, name: str) -> bytes | None:
        """The state document ``name`` (None if there is none)."""
        with self._lock, self._reading():
            row = self._db.execute("SELECT doc FROM state WHERE name = ?", (name,)).fetchone()
        return None if row is None else bytes(row[0])

    @_room_retried
    def write_state(self, state: Mapping[str, bytes | None]) -> None:
        """Write state documents (None deletes one) on their own, in one transaction."""
        with self._lock, self._transaction():
            self._write_state(state)

    def last_sequence(self, stream: str) -> int:
        """Return the last sequence number handed out for ``stream`` (0 if none; the floor of
        an outbox made after a corrupt one, see :func:`open_outbox`)."""
        with self._lock, self._reading():
            return self._last(stream)

    # -- reading and acknowledging ------------------------------------------------------------

    def pending(self, limit: int = 100) -> list[OutboxRow]:
        """Return up to ``limit`` rows to send, oldest first: not yet delivered to the broker
        (or released again). Expired rows are deleted, not returned."""
        now = self._clock()
        with self._lock, self._reading():
            self._delete_expired(now)
            rows = self._db.execute(
                "SELECT id, topic, payload, qos, retain, expiry_s, importance, created_at, stream, seq "
                "FROM outbox WHERE delivered_at IS NULL ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            OutboxRow(id=r[0], topic=r[1], payload=bytes(r[2]), qos=r[3], retain=bool(r[4]), expiry_s=r[5],
                      importance=Importance(r[6]), created_at=r[7], stream=r[8], seq=r[9])
            for r in rows
        ]

    # -- the end-to-end acknowledgement ---------------------------------------------------------

    @_room_retried
    def mark_delivered(self, row_ids: Iterable[int]) -> None:
        """The broker took these rows (PUBACK): keep them, but do not hand them out again until
        :meth:`release_unconfirmed`. Meant for sequenced results; unknown ids are ignored."""
        ids = list(row_ids)
        if not ids:
            return
        now = self._clock()
        with self._lock, self._transaction():
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                self._db.execute(
                    f"UPDATE outbox SET delivered_at = ? WHERE id IN ({','.join('?' * len(chunk))})", (now, *chunk))

    @_room_retried
    def confirm_stored(self, stream: str, seq: int) -> int:
        """The dashboard stored every result of ``stream`` up to ``seq``: forget them.

        Returns how many rows were deleted. An acknowledgement beyond the last number this
        outbox handed out cannot be about its results: the state directory was wiped (a
        reinstall) and the sequence began again, while the dashboard has stored numbers up to
        ``seq`` from before. If this outbox holds no result of ``stream``, its numbering jumps
        to ``seq`` (so that new results are numbered above what the dashboard has, and its
        acknowledgements cover them) and 0 is returned. If it holds some, they may carry
        numbers the dashboard already has from before, so the acknowledgement cannot tell
        whether they are stored: it is ignored, and -1 returned, rather than deleting results
        nobody stored. An acknowledgement no numbering of this Pi could have reached (near
        MAX_SEQ, or far above both the last number and the Unix-ms floor a corrupt file gives)
        is refused the same way (logged), so one bogus message cannot stop every later result.
        """
        with self._lock, self._reading():
            last = self._last(stream)
            if seq > last:
                reachable = max(last, int(self._clock() * 1000)) + _ACK_JUMP_MAX
                if seq > min(reachable, MAX_SEQ - _SEQ_HEADROOM):
                    log.error("refusing the acknowledgement of %s up to seq %d: implausible, no numbering here "
                              "reaches it (last %d; a jump may go up to %d)", stream, seq, last,
                              min(reachable, MAX_SEQ - _SEQ_HEADROOM))
                    return -1
                if self._db.execute("SELECT 1 FROM outbox WHERE stream = ? AND seq IS NOT NULL LIMIT 1",
                                    (stream,)).fetchone() is not None:
                    return -1
                with self._transaction():
                    self._db.execute("INSERT OR REPLACE INTO sequences (stream, last) VALUES (?, ?)", (stream, seq))
                log.warning("the dashboard has stored results of %s up to seq %d, beyond this outbox's last (%d; "
                            "was its state directory wiped?): new results are numbered from %d", stream, seq, last,
                            seq + 1)
                return 0
            with self._transaction():
                deleted = self._db.execute(
                    "DELETE FROM outbox WHERE stream = ? AND seq <= ? RETURNING importance", (stream, seq)).fetchall()
                for (importance,) in deleted:
                    self._counts[Importance(importance)] -= 1
            return len(deleted)

    @_room_retried
    def release_unconfirmed(self) -> int:
        """Hand every delivered but unacknowledged row out again (after a reconnect, a timeout);
        return how many. The dashboard stores each id once, so a repeat costs nothing."""
        with self._lock, self._transaction():
            return self._db.execute("UPDATE outbox SET delivered_at = NULL WHERE delivered_at IS NOT NULL").rowcount

    def first_unconfirmed_seq(self, stream: str) -> int:
        """The lowest seq of ``stream`` still held, or the next one to be handed out if none:
        nothing below it will ever be sent (again). Published in the status, so that a
        dashboard can acknowledge past a gap no one can fill (docs/mqtt.md)."""
        with self._lock, self._reading():
            row = self._db.execute("SELECT MIN(seq) FROM outbox WHERE stream = ? AND seq IS NOT NULL",
                                   (stream,)).fetchone()
            if row[0] is not None:
                return int(row[0])
            return self._last(stream) + 1

    def awaiting_storage(self) -> int:
        """Rows the broker took that no end-to-end acknowledgement covers yet."""
        with self._lock, self._reading():
            return self._db.execute("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NOT NULL").fetchone()[0]

    def ack(self, row_id: int) -> None:
        """Remove a row after the broker acknowledged it (unknown ids are ignored)."""
        self.ack_many((row_id,))

    @_room_retried
    def ack_many(self, row_ids: Iterable[int]) -> None:
        """Remove several acknowledged rows in one transaction."""
        ids = list(row_ids)
        if not ids:
            return
        with self._lock, self._transaction():
            for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for (importance,) in self._db.execute(
                    f"DELETE FROM outbox WHERE id IN ({marks}) RETURNING importance", chunk
                ).fetchall():
                    self._counts[Importance(importance)] -= 1

    def stats(self) -> OutboxStats:
        """Return pending and dropped counts."""
        with self._lock, self._reading():
            counters = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
            pending = dict(self._counts)
            awaiting = self._db.execute("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NOT NULL").fetchone()[0]
        return OutboxStats(
            pending=pending,
            dropped={imp: counters.get(f"dropped_{imp.name.lower()}", 0) for imp in Importance},
            expired=counters.get("expired", 0),
            awaiting_storage=awaiting,
        )

    def check_integrity(self, *, quick: bool = False) -> str:
        """Run SQLite's integrity check (``quick``: the faster one, without index contents);
        return ``"ok"`` or the first problem found."""
        with self._lock, self._reading():
            return self._db.execute("PRAGMA quick_check" if quick else "PRAGMA integrity_check").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- a file that turns out corrupt while running ---------------------------------------------

    def recover(self) -> bool:
        """The file turned out corrupt while running (an :class:`OutboxError` with ``corrupt``):
        do what :func:`open_outbox` does at start, in place, so every thread holding this
        outbox goes on with the new file. Returns False (and changes nothing) if SQLite's quick
        check finds the file sound after all."""
        with self._lock:
            aside: Path | None = None
            if self._replacing is not None:  # a recovery cut short: go on with it
                aside, verdict, base = self._replacing
            else:
                try:
                    verdict = self._db.execute("PRAGMA quick_check").fetchone()[0]
                except sqlite3.Error as exc:
                    verdict = str(exc)
                if verdict == "ok":
                    return False
                # Above every number the old file handed out: taken before anything can fail.
                base = int(self._clock() * 1000)
                self._seq_floor = max(self._seq_floor, base)
                try:
                    self._db.close()
                except sqlite3.Error:
                    pass
            if aside is None:
                try:
                    aside = _set_aside(self.path, self._clock())
                except OSError as exc:  # e.g. a failing card remounted read-only
                    self._replacing = (None, verdict, base)  # calls say "corrupt": recover() tries again
                    with contextlib.suppress(OutboxError):
                        self._connect()  # meanwhile go on with the damaged file, above the floor
                        self._replacing = None
                    raise OutboxError(f"cannot set the corrupt outbox {self.path} aside: {exc}",
                                      path=str(self.path)) from exc
                self._replacing = (aside, verdict, base)
            self._connect()  # if this fails, every call says "corrupt" until a recover() opens one
            self._replacing = None
            self._adopt(aside, verdict, base)
        return True

    def _adopt(self, aside: Path, problem: str, base: int) -> None:
        """(Lock held, a fresh file open.) Read back what ``aside``, the corrupt file, held.

        ``base`` (Unix ms, taken before the file was set aside) is first committed on its own
        as the sequence floor, so that if the copy fails (a full or failing card: what damages
        files) or the process dies, no number the old file used is handed out again. A copy
        that succeeds puts the old file's own numbering back in the same transaction, so the
        sequence goes on without a gap. Raises OutboxError if the copy fails (the floor holds,
        in memory at least).
        """
        salvaged = _salvage(aside)
        try:
            self._apply_floor(base)
            if salvaged is not None:
                rows, sequences, state, counters = salvaged
                with self._transaction():
                    self._db.executemany("INSERT INTO sequences (stream, last) VALUES (?, ?)", sequences)
                    self._db.executemany(
                        "INSERT INTO outbox (id, topic, payload, qos, retain, expiry_s, importance, created_at, stream, "
                        "seq) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)  # their ids too: a PUBACK in flight finds its row
                    self._write_state(dict(state))
                    # Its numbering, floor included (a file made after an unreadable one numbers
                    # from Unix ms, perhaps with no result stored yet), instead of ``base``.
                    self._db.execute("DELETE FROM counters WHERE name = 'sequence_floor'")
                    self._db.executemany("INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)", counters)
                self._seq_floor = int(dict(counters).get("sequence_floor", 0))
        except OutboxError as exc:
            log.error("outbox %s was corrupt (%s): kept as %s, but what it held could not be copied into the new "
                      "outbox (%s); results it held that the dashboard had not stored are only there (recover by "
                      "hand with `sqlite3 %s .recover`). New results are numbered from %d on, above any number it "
                      "used", self.path, problem, aside, exc, aside, self._seq_floor + 1)
            raise
        finally:
            with contextlib.suppress(sqlite3.Error):
                self._counts = self._count_rows()
        if salvaged is not None:
            log.error("outbox %s was corrupt (%s): kept as %s; its %d result(s) waiting, its sequence numbers and "
                      "its state were read back into a new outbox, nothing is lost", self.path, problem, aside,
                      len(salvaged[0]))
        else:
            log.error("outbox %s was corrupt (%s) and could not be read back: kept as %s (recover by hand with "
                      "`sqlite3 %s .recover`); results it held that the dashboard had not stored are only there. "
                      "New results are numbered from %d on, above any number it used", self.path, problem, aside,
                      aside, base + 1)

    def _apply_floor(self, base: int) -> None:
        """Number from above ``base`` (in memory at once, then committed); new row ids too go
        above it, so a late PUBACK for a row of an older file never removes a new one."""
        self._seq_floor = max(self._seq_floor, base)
        with self._transaction():
            self._db.execute(
                "INSERT INTO counters (name, value) VALUES ('sequence_floor', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = MAX(value, excluded.value)", (base,))
            if self._db.execute("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'outbox'",
                                (base,)).rowcount == 0:
                self._db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox', ?)", (base,))

    def _is_fresh(self) -> bool:
        """Nothing numbered yet: no sequence, no floor."""
        with self._lock, self._reading():
            return (self._db.execute("SELECT 1 FROM sequences LIMIT 1").fetchone() is None
                    and self._db.execute("SELECT 1 FROM counters WHERE name = 'sequence_floor'").fetchone() is None)

    # -- internals (call with self._lock held) -----------------------------------------------

    def _check_open(self) -> None:
        if self._replacing is not None:
            raise OutboxError(f"outbox {self.path}: a corrupt file is being replaced (set aside as "
                              f"{self._replacing[0]}; no new file open yet)", path=str(self.path), corrupt=True)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """sqlite3 errors of a read become OutboxError (``corrupt`` when the file is damaged)."""
        self._check_open()
        try:
            yield
        except sqlite3.Error as exc:
            raise _error(self.path, exc) from exc

    def _transaction(self) -> _Transaction:
        return _Transaction(self)

    def _last(self, stream: str) -> int:
        row = self._db.execute("SELECT last FROM sequences WHERE stream = ?", (stream,)).fetchone()
        return max(row[0] if row else 0, self._seq_floor)

    def _write_state(self, state: Mapping[str, bytes | None]) -> None:
        for name, doc in state.items():
            if doc is None:
                self._db.execute("DELETE FROM state WHERE name = ?", (name,))
            else:
                self._db.execute("INSERT OR REPLACE INTO state (name, doc) VALUES (?, ?)", (name, bytes(doc)))

    def _count_rows(self) -> dict[Importance, int]:
        counts = {imp: 0 for imp in Importance}
        for importance, n in self._db.execute("SELECT importance, COUNT(*) FROM outbox GROUP BY importance"):
            counts[Importance(importance)] = n
        return counts

    def _insert(self, topic: str, payload: bytes, qos: int, retain: bool, expiry_s: int | None, importance: Importance,
                *, stream: str | None = None, seq: int | None = None) -> int:
        if importance is Importance.STATE and retain:
            replaced = self._db.execute(
                "DELETE FROM outbox WHERE importance = ? AND retain = 1 AND topic = ?", (int(importance), topic)
            ).rowcount
            self._counts[importance] -= replaced
        cursor = self._db.execute(
            "INSERT INTO outbox (topic, payload, qos, retain, expiry_s, importance, created_at, stream, seq) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            (topic, bytes(payload), qos, int(retain), expiry_s, int(importance), self._clock(), stream, seq),
        )
        self._counts[importance] += 1
        self._enforce_limits()
        return int(cursor.lastrowid)

    def _enforce_limits(self) -> None:
        total = sum(self._counts.values())
        if total <= self.limits.soft_max_rows:
            return
        for importance in (Importance.LIVE, Importance.STATE):
            total -= self._drop_oldest(importance, total - self.limits.soft_max_rows)
            if total <= self.limits.soft_max_rows:
                return
        if total > self.limits.hard_max_rows:
            self._drop_oldest(Importance.RESULT, total - self.limits.hard_max_rows)

    def _drop_oldest(self, importance: Importance, excess: int) -> int:
        if excess <= 0 or self._counts[importance] == 0:
            return 0
        dropped = self._db.execute(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE importance = ? ORDER BY id LIMIT ?)",
            (int(importance), excess),
        ).rowcount
        self._counts[importance] -= dropped
        self._bump_counter(f"dropped_{importance.name.lower()}", dropped)
        level = logging.ERROR if importance is Importance.RESULT else logging.WARNING
        log.log(level, "outbox %s full: dropped %d oldest %s message(s)", self.path, dropped, importance.name.lower())
        return dropped

    def _delete_expired(self, now: float) -> None:
        if self._counts[Importance.LIVE] == 0 and self._counts[Importance.STATE] == 0:
            return  # only results, which never expire: skip the scan
        with self._transaction():
            for (importance,) in self._db.execute(
                "DELETE FROM outbox WHERE expiry_s IS NOT NULL AND created_at + expiry_s <= ? RETURNING importance",
                (now,),
            ).fetchall():
                self._counts[Importance(importance)] -= 1
                self._bump_counter("expired", 1)

    def _bump_counter(self, name: str, n: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
            (name, n, n),
        )


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back (counts re-read) on any error.

    IMMEDIATE takes the write lock up front, so two connections (say, a debugging sqlite3
    shell) cannot deadlock upgrading read locks. sqlite3 errors become OutboxError here.
    """

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    def __enter__(self) -> None:
        self._outbox._check_open()
        try:
            self._outbox._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _error(self._outbox.path, exc) from exc

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        outbox = self._outbox
        if exc_type is None:
            try:
                outbox._db.execute("COMMIT")
                return
            except sqlite3.Error as commit_exc:
                exc = commit_exc
        self._rollback()
        if isinstance(exc, sqlite3.Error):
            raise _error(outbox.path, exc) from exc

    def _rollback(self) -> None:
        outbox = self._outbox
        try:
            if outbox._db.in_transaction:  # SQLite may already have rolled back (disk full, I/O error)
                outbox._db.execute("ROLLBACK")
            # The in-memory counts were updated optimistically inside the transaction.
            outbox._counts = outbox._count_rows()
        except sqlite3.Error:  # a damaged file: the error being raised already says so
            pass


# -- a corrupt outbox -------------------------------------------------------------------------

_CORRUPT = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}
# No room: SQLite's unix VFS says SQLITE_FULL when a write of the file or its WAL meets ENOSPC,
# SQLITE_IOERR_SHMSIZE when the -shm index cannot grow (it too is a file beside the database).
_FULL = {"SQLITE_FULL", "SQLITE_IOERR_SHMSIZE"}


def open_outbox(path: str | os.PathLike[str], *, limits: OutboxLimits | None = None,
                clock: Callable[[], float] = time.time) -> Outbox:
    """Open the outbox at ``path``; if its file is corrupt, keep it aside and start a new one.

    A corrupt file (SQLite says "malformed" or "not a database", or its quick check fails) is
    renamed ``<name>.corrupt-<UTC time>`` (with its -wal and -shm), never deleted, and logged
    as an error. Then:

    * if every result row, the sequence numbers and the saved state can still be read from it,
      they are copied into the new outbox: nothing is lost, the sequence goes on;
    * otherwise nothing is copied (a partial copy would leave a gap the dashboard waits on for
      ever), and the new outbox numbers from the current Unix time in milliseconds: above any
      number the old file handed out, so no number is used twice, and the service's status
      (``outbox_first_seq``) lets the dashboard acknowledge past the gap. What the old file
      held and the dashboard had not stored is only in the kept copy (``sqlite3 FILE .recover``).

    That Unix-ms floor is taken before the file is set aside and committed on its own first: if
    the copy then fails (a full or failing card, what damages files) the new outbox numbers
    above it all the same (logged; the old results are only in the kept copy). A sound outbox
    that has numbered nothing beside a ``*.corrupt-*`` file (a recovery cut short by a crash or
    by a file that could not be created) gets the floor too, never below that file's time.

    Any other failure (permissions, I/O error, WAL impossible) raises :class:`OutboxError`.
    """
    path = Path(path)
    try:
        outbox = Outbox(path, limits=limits, clock=clock)
    except OutboxError as exc:
        if not exc.corrupt:
            raise
        problem = str(exc.__cause__)
    else:
        try:
            problem = outbox.check_integrity(quick=True)
        except OutboxError as exc:
            problem = str(exc.__cause__)
        if problem == "ok":
            _floor_after_unfinished_recovery(outbox, clock)
            return outbox
        outbox.close()
    base = int(clock() * 1000)  # above every number the old file used, taken before anything can fail
    aside = _set_aside(path, clock())
    outbox = Outbox(path, limits=limits, clock=clock)  # if this fails, the next start numbers from the floor below
    with outbox._lock:
        try:
            outbox._adopt(aside, problem, base)
        except OutboxError:
            pass  # logged; the floor holds (in memory at least), so the service can go on
    return outbox


def _floor_after_unfinished_recovery(outbox: Outbox, clock: Callable[[], float]) -> None:
    """A sound outbox that has numbered nothing, next to a corrupt file set aside: the
    recovery may have stopped before the new file got its floor (a failing card, a crash), and
    numbering from 1 would reuse numbers the dashboard holds. Number from Unix ms, and from no
    lower than the newest such file's time (the clock of a Pi without RTC may start behind)."""
    stamps = [_aside_time_ms(p) for p in outbox.path.parent.glob(f"{outbox.path.name}.corrupt-*")
              if not p.name.endswith(("-wal", "-shm"))]
    if not stamps or not outbox._is_fresh():
        return
    base = max([int(clock() * 1000), *(s for s in stamps if s is not None)])
    with outbox._lock:
        try:
            outbox._apply_floor(base)
        except OutboxError as exc:
            log.error("cannot save the sequence floor of %s: %s (held in memory)", outbox.path, exc)
    log.warning("outbox %s is new beside a corrupt one set aside: new results are numbered from %d on, above any "
                "number that one used", outbox.path, base + 1)


def _aside_time_ms(path: Path) -> int | None:
    """The end of the second in which a corrupt file was set aside (its name says it), in ms."""
    match = re.search(r"\.corrupt-(\d{8}T\d{6}Z)", path.name)
    if match is None:
        return None
    return (calendar.timegm(time.strptime(match.group(1), "%Y%m%dT%H%M%SZ")) + 1) * 1000


def _error(path: Path, exc: sqlite3.Error, what: str = "outbox") -> OutboxError:
    name = getattr(exc, "sqlite_errorname", "")
    return OutboxError(f"{what} {path}: {exc}", path=str(path), corrupt=name in _CORRUPT, full=name in _FULL)


def _set_aside(path: Path, now: float) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    for suffix in ("", "-wal", "-shm"):  # the WAL may hold the newest commits: keep it with its file
        source = Path(f"{path}{suffix}")
        if source.exists():
            os.replace(source, Path(f"{aside}{suffix}"))
    return aside


def _salvage(path: Path) -> tuple[list[tuple], list[tuple], list[tuple], list[tuple]] | None:
    """Every result row, the sequences, the state and the counters (the sequence floor among
    them) of a corrupt file, or None if any of it cannot be read."""
    try:
        db = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        rows = db.execute(
            "SELECT id, topic, payload, qos, retain, expiry_s, importance, created_at, stream, seq FROM outbox "
            "WHERE seq IS NOT NULL ORDER BY seq").fetchall()
        sequences = db.execute("SELECT stream, last FROM sequences").fetchall()
        counters = db.execute("SELECT name, value FROM counters").fetchall()
        try:
            state = db.execute("SELECT name, doc FROM state").fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            state = []
    except sqlite3.Error as exc:
        log.error("cannot read back the corrupt outbox %s: %s", path, exc)
        return None
    finally:
        db.close()
    last = dict(sequences)
    for row in rows:  # a row beyond its sequence, or without one, is not a state to trust
        stream, seq = row[8], row[9]
        if stream not in last or not isinstance(seq, int) or seq > last[stream]:
            log.error("the corrupt outbox %s has a result (%r, %r) its sequences do not cover", path, stream, seq)
            return None
    if not all(isinstance(value, int) for _, value in counters):
        log.error("the corrupt outbox %s has counters that are not numbers", path)
        return None
    return rows, sequences, state, counters
