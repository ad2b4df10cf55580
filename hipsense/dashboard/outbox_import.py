"""Results from a Pi's outbox file that set itself aside as corrupt, into the dashboard.

A Pi whose outbox file is damaged keeps it as ``outbox.sqlite.corrupt-<time>`` and, when it
cannot read every result back without a gap, starts a new outbox numbered above it: the status
it sends (``outbox_first_seq``) then moves the dashboard's acknowledgement past the old
numbers, and the results the old file held that the dashboard had not stored are only in that
file. The Pi can never send them any more (its outbox would forget them at the first
acknowledgement, which is already past them). So the operator copies the file off the Pi and
this stores them on the dashboard's side, straight into the database:

* the file is copied first (with its ``-wal``) and only the copy is opened: the evidence is
  never changed;
* the ``outbox`` table is read as it is; if SQLite cannot read it through (a damaged page),
  it is read by ranges of row ids, each range that fails halved, so that only the rows on
  damaged pages are missed (``sqlite3 FILE .recover`` may read a little more: 3.40's failed
  on these files);
* every row is validated as ingest validates a message (:func:`parse_message`, the plausible
  time window), and must be a result of ``patient``, the patient whose Pi the file came from
  (the file comes from a patient's home: it may claim anything, and the broker's ACL, which
  vouches for a topic's patient on the way in, is not there to check it);
* results are stored once (a result the dashboard already has counts as a duplicate).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import sqlite3
import tempfile
from pathlib import Path

from hipsense.dashboard.event_store import EventStore
from hipsense.protocol import Message, ProtocolError, parse_message, refuse_implausible_instants

__all__ = ["ImportResult", "import_outbox_file"]


@dataclasses.dataclass(frozen=True, slots=True)
class ImportResult:
    read: int  # rows read from the file (results and others)
    stored: int  # results new to the database
    duplicates: int  # results it already had
    refused: list[str]  # why each refused row was refused
    damaged_ranges: int | None  # None: the table read through; else id ranges on damaged pages, not read


_MAX_QUERIES = 100_000  # reading around damage: a bound, should a damaged page cover a huge id range


def _read_rows(path: Path) -> tuple[list[tuple[str, bytes]], int | None]:
    """(topic, payload) of every row that can be read, in id order, and None if the table read
    through, else how many id ranges could not be read (each on a damaged page)."""
    with tempfile.TemporaryDirectory(prefix="hipsense-outbox-import-") as tmp:
        copy = Path(tmp) / "outbox.sqlite"
        shutil.copyfile(path, copy)
        wal = Path(f"{path}-wal")
        if wal.exists():
            shutil.copyfile(wal, Path(f"{copy}-wal"))
        db = sqlite3.connect(copy)
        try:
            try:
                rows = db.execute("SELECT topic, payload FROM outbox ORDER BY id").fetchall()
                return [(str(t), bytes(p)) for t, p in rows], None
            except sqlite3.DatabaseError:
                pass
            return _read_around_damage(db)
        finally:
            db.close()


def _read_around_damage(db: sqlite3.Connection) -> tuple[list[tuple[str, bytes]], int]:
    """Read the table by ranges of its row ids (the b-tree's key), halving each range whose
    read fails, so that only the rows on damaged pages are missed."""
    def bound(sql: str, fallback: int) -> int:
        try:
            value = db.execute(sql).fetchone()[0]
        except sqlite3.DatabaseError:
            return fallback
        return fallback if value is None else int(value)

    high = max(bound("SELECT MAX(id) FROM outbox", 0),
               bound("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'", 0))
    low = bound("SELECT MIN(id) FROM outbox", 1)
    found: dict[int, tuple[str, bytes]] = {}
    lost = queries = 0
    stack = [(min(low, high), high)]
    while stack:
        lo, hi = stack.pop()
        queries += 1
        try:
            for row_id, topic, payload in db.execute(
                    "SELECT id, topic, payload FROM outbox WHERE id BETWEEN ? AND ?", (lo, hi)):
                found[row_id] = (str(topic), bytes(payload))
        except sqlite3.DatabaseError:
            if lo == hi or queries >= _MAX_QUERIES:
                lost += 1
                continue
            middle = (lo + hi) // 2
            stack += [(middle + 1, hi), (lo, middle)]
    return [found[k] for k in sorted(found)], lost


def import_outbox_file(store: EventStore, path: str | Path, patient: str, *,
                       now: dt.datetime | None = None) -> ImportResult:
    """Store the results of ``patient`` held in the outbox file ``path``; see the module docstring."""
    now = now or dt.datetime.now(dt.timezone.utc)
    rows, damaged = _read_rows(Path(path))
    messages: list[Message] = []
    refused: list[str] = []
    for topic, payload in rows:
        try:
            message = parse_message(topic, payload)
        except ProtocolError as exc:
            refused.append(str(exc))
            continue
        if not message.kind.is_event:
            continue  # a status: nothing to keep
        if message.patient != patient:
            refused.append(f"{topic}: a result of {message.patient}, not of {patient}")
            continue
        try:
            refuse_implausible_instants(message.data, now=now, topic=topic)
        except ProtocolError as exc:
            refused.append(str(exc))
            continue
        messages.append(message)
    stored = duplicates = 0
    for start in range(0, len(messages), 500):
        result = store.write_batch(messages[start:start + 500])
        stored += result.stored
        duplicates += result.duplicates
    return ImportResult(read=len(rows), stored=stored, duplicates=duplicates, refused=refused, damaged_ranges=damaged)
