"""Writing what the broker delivers: result events once each, the newest status of each Pi,
dead letters, and how far each patient's results are stored without a gap.

Results are stored with insert-or-ignore against the unique ``message_id``: the protocol
delivers at least once, and a repeat carries the same content, so the first copy wins and
the rest are counted as duplicates. A repeat under another ``seq`` (a Pi that stored a
result a second time: its spill file imported again after its outbox lost the mark, see
``service/results.py``) is dead-lettered as such (:data:`REPEAT_REASON`): its ``seq`` is then
handled, and the acknowledgement walks past it instead of stopping below it for good. The ingester acknowledges a batch to the broker only
after :meth:`EventStore.write_batch` returned, and then publishes :attr:`BatchResult.acks`
(the end-to-end acknowledgement, docs/mqtt.md); so the store's commits are durable ones
(fsynced on SQLite, ``synchronous_commit=on`` on PostgreSQL, see ``EventStore._open``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import secrets
import threading
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, Engine, and_, case, func, or_, select, union
from sqlalchemy.dialects import postgresql, sqlite

from hipsense.dashboard.db.tables import (
    dashboard_settings,
    prescriptions,
    dead_letters,
    delivery_gaps,
    delivery_progress,
    device_status,
    events,
    patients,
)
from hipsense.protocol import (
    EventKind,
    Message,
    MessageKind,
    ProtocolError,
    parse_message,
    parse_timestamp,
    parse_topic,
    refuse_implausible_instants,
)

# How many sequence numbers one query looks at while advancing a patient's acknowledgement.
_SEQ_WINDOW = 2000
_MAX_DEAD_PAYLOAD_CHARS = 64 * 1024
_MAX_REASON_CHARS = 1000

REPEAT_REASON = "repeat of a stored result"
"""How a dead letter for a result whose id is already stored under another seq begins: its
seq is handled (the result is stored, under the first one), nothing is left to retry."""


@dataclasses.dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that could not be stored, and why. See :func:`dead_letter`."""

    topic: str
    payload: bytes
    reason: str
    patient: str | None
    seq: int | None


def dead_letter(topic: str, payload: bytes, reason: str) -> DeadLetter:
    """A dead letter for ``payload``: its patient from the topic (the broker's ACL vouches for
    it; a payload can claim anything) and its ``seq`` if it is a result with a usable one, so
    the patient's acknowledgement can move past it."""
    patient = seq = None
    try:
        kind, patient = parse_topic(topic)
    except Exception:  # noqa: BLE001 - not even the topic is ours; keep it for the operator anyway
        kind = None
    if kind is not None and kind.is_event:
        try:
            value = json.loads(payload).get("seq")
        except Exception:  # noqa: BLE001 - unreadable JSON has no seq
            value = None
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 2**53 - 1:
            seq = value
    return DeadLetter(topic=topic, payload=bytes(payload), reason=reason, patient=patient, seq=seq)


def dead_letter_of(message: Message, reason: str) -> DeadLetter:
    """A dead letter for a validated message the database refused."""
    payload = json.dumps(message.data, separators=(",", ":"), ensure_ascii=False).encode()
    return DeadLetter(topic=message.topic, payload=payload, reason=reason, patient=message.patient,
                      seq=message.seq if message.kind.is_event else None)


def _dead_letter_row(letter: DeadLetter, now: dt.datetime) -> dict:
    # PostgreSQL text cannot hold NUL; a hostile payload may have one (or be no UTF-8 at all).
    text = letter.payload.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    return {
        "digest": hashlib.sha256(letter.topic.encode("utf-8", "replace") + b"\x00" + letter.payload).hexdigest(),
        "topic": letter.topic.replace("\x00", "\ufffd")[:1024],
        "patient": letter.patient,
        "seq": letter.seq,
        "reason": letter.reason.replace("\x00", "\ufffd")[:_MAX_REASON_CHARS],
        "payload": text[:_MAX_DEAD_PAYLOAD_CHARS],
        "received_at": now,
    }


@dataclasses.dataclass(frozen=True, slots=True)
class BatchResult:
    """What one :meth:`EventStore.write_batch` did."""

    stored: int
    duplicates: int
    statuses: int
    patients: frozenset[str]  # whose rows changed, for live page updates
    dead_lettered: int = 0
    # Per patient with a result (new, repeated or dead-lettered) in the batch: the highest seq
    # stored without a gap. Published even when unchanged, so a Pi that re-sent because the
    # broker lost the retained acknowledgement gets it again.
    acks: dict[str, int] = dataclasses.field(default_factory=dict)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def event_span(message: Message) -> tuple[dt.datetime, dt.datetime]:
    """The event time of a result: ``t_start``..``t_end``, or ``t`` twice for a pain check-in."""
    data, instants = message.data, message.instants
    if "t_start" in data:
        t_start = instants.get("t_start") or parse_timestamp(data["t_start"])
        return t_start, instants.get("t_end") or parse_timestamp(data["t_end"])
    instant = instants.get("t") or parse_timestamp(data["t"])
    return instant, instant


def event_payload(message: Message) -> str:
    """The JSON text stored for a result: as received when it is plainly the same document,
    else written again from ``data``.

    A received text without a backslash has no escapes: ``data`` holds its strings as they
    are written, and decoding it again gives ``data`` back (it was checked strict: no key
    twice, no NaN). Writing it again cost about as much as all the rest of a row (issue 14).
    With escapes it is written again, as before: ``\\ud800`` reads back as a lone surrogate,
    which the database then refuses (dead letter) rather than storing text no page can show.
    """
    text = message.text
    if text is not None and "\\" not in text:
        return text
    return json.dumps(message.data, separators=(",", ":"), ensure_ascii=False)


def event_row(message: Message, received_at: dt.datetime) -> dict:
    """The ``events`` row of a validated result message."""
    t_start, t_end = event_span(message)
    data = message.data
    return {
        "message_id": message.message_id,
        "patient": message.patient,
        "kind": _EVENT_KIND[message.kind],
        "seq": message.seq,
        "session_id": data.get("session_id"),
        "exercise": data.get("exercise"),
        "side": data.get("side"),
        "t_start": t_start,
        "t_end": t_end,
        "payload": event_payload(message),
        "received_at": received_at,
    }


_EVENT_KIND = {kind: EventKind(kind.value.removeprefix("event/")).value for kind in MessageKind if kind.is_event}
_EVENT_COLUMNS = {
    "message_id": "varchar", "patient": "varchar", "kind": "varchar", "seq": "bigint", "session_id": "varchar",
    "exercise": "varchar", "side": "varchar", "t_start": "timestamptz", "t_end": "timestamptz", "payload": "text",
}
# received_at is one value for the whole batch.
_UNNEST_INSERT = (
    f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}, received_at) "
    f"SELECT *, %(received_at)b::timestamptz FROM "
    f"unnest({', '.join(f'%({name})b::{kind}[]' for name, kind in _EVENT_COLUMNS.items())}) "
    "ON CONFLICT (message_id) DO NOTHING RETURNING message_id, patient"
)
_PG_STORED_IDS = "SELECT message_id, patient, seq FROM events WHERE message_id = ANY(%(ids)s::varchar[])"

# The acknowledgement marks on PostgreSQL (EventStore._advance_pg): fixed statement texts.
_PG_MARKS = "SELECT patient, stored_seq FROM delivery_progress WHERE patient = ANY(%(patients)s::varchar[])"
# The seqs above each mark, within the window, from results and dead letters (distinct per
# patient), in ascending order.
_PG_ABOVE_MARKS = (
    "SELECT m.patient, w.seq FROM unnest(%(patients)s::varchar[], %(marks)s::bigint[]) AS m(patient, mark) "
    "CROSS JOIN LATERAL ("
    "SELECT e.seq FROM events e WHERE e.patient = m.patient AND e.seq > m.mark AND e.seq <= m.mark + %(window)s "
    "UNION "
    "SELECT d.seq FROM dead_letters d WHERE d.patient = m.patient AND d.seq > m.mark AND d.seq <= m.mark + %(window)s"
    ") AS w ORDER BY w.seq"
)
# Another instance may be ahead: a mark only grows.
_PG_MOVE_MARKS = (
    "INSERT INTO delivery_progress (patient, stored_seq, updated_at) "
    "SELECT p, s, %(now)s FROM unnest(%(patients)s::varchar[], %(marks)s::bigint[]) AS m(p, s) "
    "ON CONFLICT (patient) DO UPDATE SET "
    "stored_seq = CASE WHEN excluded.stored_seq > delivery_progress.stored_seq "
    "THEN excluded.stored_seq ELSE delivery_progress.stored_seq END, "
    "updated_at = excluded.updated_at"
)


class EventStore:
    """The write side of the database, used by one ingest writer thread at a time.

    Throughput comes from doing as few round trips as possible per batch: the store keeps one
    connection in autocommit mode and writes a batch's results with ONE multi-row
    ``INSERT … ON CONFLICT DO NOTHING RETURNING`` (the statement is its own transaction), and
    remembers which patients it has registered so that it does not ask again. Atomicity
    across statements is not needed: everything is idempotent, and nothing is acknowledged to
    the broker until every statement succeeded, so a failure halfway is redelivered and
    completed.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dialect = {"postgresql": postgresql, "sqlite": sqlite}.get(engine.dialect.name)
        if self._dialect is None:
            raise ValueError(f"unsupported database {engine.dialect.name!r}: use SQLite or PostgreSQL")
        self._lock = threading.Lock()
        self._connection: Connection | None = None
        self._known_patients: set[str] = set()
        self._insert_events = self._dialect.insert(events).on_conflict_do_nothing(
            index_elements=["message_id"]).returning(events.c.message_id, events.c.patient)

    def write_batch(self, messages: Sequence[Message], letters: Sequence[DeadLetter] = ()) -> BatchResult:
        """Store result events (each id once), status updates and dead letters, then advance
        the acknowledgement of every patient involved; raises if the database fails."""
        with self._lock:
            try:
                connection = self._open()
                result, repeats = self._write(messages, connection)
                letters = [*letters, *repeats]
                dead = self._insert_dead_letters(connection, letters, _now()) if letters else 0
                involved = {m.patient for m in messages if m.kind.is_event}
                involved |= {letter.patient for letter in letters if letter.patient is not None and letter.seq is not None}
                # A Pi's status says below which seq it holds nothing: results there that never
                # arrived (dropped at its hard cap, or forgotten on a PUBACK before this version)
                # can never come, and waiting for them would keep everything after in its outbox.
                floors = {m.patient: int(m.data["outbox_first_seq"]) - 1 for m in messages
                          if m.kind is MessageKind.STATUS and "outbox_first_seq" in m.data}
                involved |= set(floors)
                if floors:
                    self._record_gaps(connection, floors)
                acks = self._advance(connection, involved, floors) if involved else {}
                return dataclasses.replace(result, dead_lettered=dead, acks=acks)
            except Exception:
                self._close()  # a broken connection is replaced on the next try
                raise

    def _record_gaps(self, connection: Connection, floors: dict[str, int]) -> None:
        """Before a Pi's status moves its acknowledgement past numbers that never arrived, write
        down how many (``delivery_gaps``): they will never come, and someone must be told."""
        for patient, floor in sorted(floors.items()):
            mark = connection.execute(select(delivery_progress.c.stored_seq)
                                      .where(delivery_progress.c.patient == patient)).scalar() or 0
            if floor <= mark:
                continue
            have = union(
                select(events.c.seq).where(events.c.patient == patient, events.c.seq > mark, events.c.seq <= floor),
                select(dead_letters.c.seq).where(dead_letters.c.patient == patient, dead_letters.c.seq > mark,
                                                 dead_letters.c.seq <= floor)).subquery()
            missing = floor - mark - connection.execute(select(func.count()).select_from(have)).scalar_one()
            if missing > 0:
                insert = self._dialect.insert(delivery_gaps).on_conflict_do_nothing(
                    index_elements=["patient", "after_seq"])
                connection.execute(insert, {"patient": patient, "after_seq": mark, "before_seq": floor + 1,
                                            "missing": missing, "detected_at": _now()})

    def stored_seq(self, patient: str) -> int:
        """The highest seq of ``patient`` stored without a gap (0 if none)."""
        with self.engine.connect() as connection:
            value = connection.execute(
                select(delivery_progress.c.stored_seq).where(delivery_progress.c.patient == patient)).scalar()
        return value or 0

    def retry_dead_letters(self, now: dt.datetime, *, patient: str | None = None) -> tuple[int, int]:
        """Store the dead-lettered results that pass validation now; return (stored, still refused).

        A result refused for its instants (a Pi's clock, or this server's, more than a day off)
        was acknowledged to its Pi as handled, and the Pi forgot it: the dead letter is its only
        copy. Once the clock is right it is a valid result like any other. Each one that now
        passes is stored (once: a copy already stored is a duplicate) and its dead letter
        removed; the rest stay, with their reason. Status messages are left as they are, and so
        are repeats of a stored result under another seq (:data:`REPEAT_REASON`: nothing to store).
        """
        query = select(dead_letters.c.row_no, dead_letters.c.topic, dead_letters.c.payload).where(
            dead_letters.c.reason.not_like(f"{REPEAT_REASON}%")).order_by(dead_letters.c.row_no)
        if patient is not None:
            query = query.where(dead_letters.c.patient == patient)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        stored = refused = 0
        for row_no, topic, payload in rows:
            try:
                message = parse_message(topic, payload.encode("utf-8"))
                refuse_implausible_instants(message.data, now=now, topic=topic)
            except ProtocolError:
                refused += 1
                continue
            if not message.kind.is_event:
                refused += 1
                continue
            try:
                self.write_batch([message])
            except Exception as exc:
                from hipsense.dashboard.ingest.service import refused_by_database

                if not refused_by_database(exc):
                    raise
                refused += 1
                continue
            with self.engine.begin() as connection:  # stored (durably): the dead letter may go
                connection.execute(dead_letters.delete().where(dead_letters.c.row_no == row_no))
            stored += 1
        return stored, refused

    def current_prescriptions(self) -> list[tuple[str, bytes]]:
        """(patient, payload) of each patient's newest prescription the broker confirmed."""
        newest = select(prescriptions.c.patient, func.max(prescriptions.c.version).label("version")).where(
            prescriptions.c.confirmed).group_by(prescriptions.c.patient).subquery()
        query = select(prescriptions.c.patient, prescriptions.c.payload).join(newest, and_(
            prescriptions.c.patient == newest.c.patient, prescriptions.c.version == newest.c.version))
        with self.engine.connect() as connection:
            return [(patient, payload.encode("utf-8")) for patient, payload in connection.execute(query)]

    def share_group(self, prefix: str) -> str:
        """The shared-subscription group of every ingest on this database: ``prefix`` and a
        random part made by the first instance and kept in the database (revision 0004), so
        that no Pi can guess it and join the group (the broker would drop what it hands the Pi)."""
        with self.engine.begin() as connection:
            insert = self._dialect.insert(dashboard_settings).on_conflict_do_nothing(index_elements=["name"])
            connection.execute(insert, {"name": "share_group", "value": secrets.token_hex(16)})
            value = connection.execute(select(dashboard_settings.c.value)
                                       .where(dashboard_settings.c.name == "share_group")).scalar_one()
        return f"{prefix}-{value}"

    def ping(self) -> None:
        """Raise if the database cannot be reached (tells a refused message from an outage)."""
        with self._lock:
            try:
                self._open().exec_driver_sql("SELECT 1")
            except Exception:
                self._close()
                raise

    def _insert_dead_letters(self, connection: Connection, letters: Iterable[DeadLetter], now: dt.datetime) -> int:
        rows = list({row["digest"]: row for row in (_dead_letter_row(letter, now) for letter in letters)}.values())
        insert = self._dialect.insert(dead_letters).on_conflict_do_nothing(index_elements=["digest"])
        return len(connection.execute(insert.returning(dead_letters.c.row_no), rows).all())

    def _advance(self, connection: Connection, patient_ids: set[str],
                 floors: dict[str, int] | None = None) -> dict[str, int]:
        """Move each patient's stored-without-a-gap mark as far as events and dead letters allow
        (starting, if the Pi said so, from the seq below which it holds nothing).

        Three statements for the whole batch, however many patients it has (a batch often
        holds many): read the marks, read the next ``_SEQ_WINDOW`` seqs above each (again for a
        patient whose run is longer), write the marks that moved.
        """
        floors = floors or {}
        if self.engine.dialect.name == "postgresql":
            return self._advance_pg(connection, patient_ids, floors)
        known = dict(connection.execute(
            select(delivery_progress.c.patient, delivery_progress.c.stored_seq)
            .where(delivery_progress.c.patient.in_(sorted(patient_ids)))).all())
        marks = {patient: max(known.get(patient, 0), floors.get(patient, 0)) for patient in patient_ids}

        def above_marks(table, patients):
            return select(table.c.patient, table.c.seq).where(or_(*(
                and_(table.c.patient == patient, table.c.seq > marks[patient],
                     table.c.seq <= marks[patient] + _SEQ_WINDOW)
                for patient in patients)))

        walking = sorted(patient_ids)
        while walking:  # more than one round only for a run longer than the window
            window = union(above_marks(events, walking), above_marks(dead_letters, walking)).subquery()
            rows = connection.execute(select(window.c.patient, window.c.seq).order_by(window.c.seq))
            walking = _walk_marks(marks, walking, rows)
        moved = [{"patient": patient, "stored_seq": mark, "updated_at": _now()}
                 for patient, mark in sorted(marks.items()) if mark > known.get(patient, 0)]
        if moved:
            insert = self._dialect.insert(delivery_progress)
            grown = case((insert.excluded.stored_seq > delivery_progress.c.stored_seq, insert.excluded.stored_seq),
                         else_=delivery_progress.c.stored_seq)  # another instance may be ahead
            connection.execute(insert.on_conflict_do_update(
                index_elements=["patient"], set_={"stored_seq": grown, "updated_at": insert.excluded.updated_at}),
                moved)
        return marks

    def _advance_pg(self, connection: Connection, patient_ids: set[str], floors: dict[str, int]) -> dict[str, int]:
        """:meth:`_advance` on PostgreSQL: the same three steps and the same walk, as three
        statements whose text does not depend on the batch (patients and marks go in as
        arrays), so psycopg prepares them once. Building and compiling the SQLAlchemy form —
        an OR of one clause per patient, for two tables — cost more CPU than everything
        else of a stored message (issue 14)."""
        walking = sorted(patient_ids)
        with connection.connection.driver_connection.cursor(binary=True) as cursor:
            cursor.execute(_PG_MARKS, {"patients": walking})
            known = dict(cursor.fetchall())
            marks = {patient: max(known.get(patient, 0), floors.get(patient, 0)) for patient in patient_ids}
            while walking:  # more than one round only for a run longer than the window
                cursor.execute(_PG_ABOVE_MARKS, {"patients": walking, "marks": [marks[p] for p in walking],
                                                 "window": _SEQ_WINDOW})
                walking = _walk_marks(marks, walking, cursor.fetchall())
            moved = [(patient, mark) for patient, mark in sorted(marks.items()) if mark > known.get(patient, 0)]
            if moved:
                cursor.execute(_PG_MOVE_MARKS, {"patients": [p for p, _ in moved], "marks": [m for _, m in moved],
                                                "now": _now()})
        return marks

    def close(self) -> None:
        with self._lock:
            self._close()

    def _open(self) -> Connection:
        if self._connection is None:
            connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                # What this store commits is acknowledged right after (PUBACK, and end to end to
                # the Pi, which then forgets it): the commit must survive a power cut. SQLite's
                # WAL with synchronous=NORMAL (the engine's default, fine for the web pages) and
                # PostgreSQL with synchronous_commit=off (a DBA's speed-up) may both lose the
                # last commits; on this connection they wait for the disk.
                if self.engine.dialect.name == "sqlite":
                    connection.exec_driver_sql("PRAGMA synchronous=FULL")
                else:
                    connection.exec_driver_sql("SET synchronous_commit TO on")
            except Exception:
                connection.close()
                raise
            self._connection = connection
        return self._connection

    def _close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass
            self._connection = None

    def _write(self, messages: Sequence[Message], connection: Connection) -> tuple[BatchResult, list[DeadLetter]]:
        now = _now()
        results = [m for m in messages if m.kind.is_event]
        statuses = [m for m in messages if m.kind is MessageKind.STATUS]
        # Within one batch too: the same id twice would make the multi-row insert ambiguous.
        unique = list({m.message_id: m for m in reversed(results)}.values())
        unique.reverse()
        self._register_patients(connection, {m.patient for m in messages}, now)
        stored = self._insert_results(connection, unique, now) if unique else {}
        repeats = []
        if len(stored) < len(results):  # repeats (of an earlier batch, or in this one)
            new = {id(m) for m in unique if m.message_id in stored}
            repeats = self._repeats_under_another_seq(connection, [m for m in results if id(m) not in new])
        for message in statuses:
            self._upsert_status(connection, message, now)
        return BatchResult(
            stored=len(stored),
            duplicates=len(results) - len(stored),  # a repeat under another seq too (and dead-lettered)
            statuses=len(statuses),
            patients=frozenset(stored.values()) | {m.patient for m in statuses},
        ), repeats

    def _repeats_under_another_seq(self, connection: Connection, results: list[Message]) -> list[DeadLetter]:
        """Dead letters for the ``results`` (not new: their id is stored) whose stored row has
        another seq or patient. A plain repeat (same seq) needs nothing; one under a new seq
        would leave that seq unhandled for ever, and the patient's acknowledgement below it."""
        ids = sorted({m.message_id for m in results})
        if self.engine.dialect.name == "postgresql":
            with connection.connection.driver_connection.cursor(binary=True) as cursor:
                cursor.execute(_PG_STORED_IDS, {"ids": ids})
                rows = cursor.fetchall()
        else:
            rows = []
            for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
                rows += connection.execute(select(events.c.message_id, events.c.patient, events.c.seq)
                                           .where(events.c.message_id.in_(ids[start:start + 500]))).all()
        first = {message_id: (patient, seq) for message_id, patient, seq in rows}
        letters = []
        for message in results:
            if message.message_id not in first or first[message.message_id] == (message.patient, message.seq):
                continue
            patient, seq = first[message.message_id]
            where = f"as seq {seq}; the Pi stored it twice" if patient == message.patient else "for another patient"
            letters.append(dead_letter_of(message, f"{REPEAT_REASON} (id {message.message_id}, stored {where})"))
        return letters

    def _insert_results(self, connection: Connection, results: list[Message], now: dt.datetime) -> dict[str, str]:
        """Insert-or-ignore the rows of ``results`` (distinct ids); return the patient of each
        row that was new, by its id."""
        if self.engine.dialect.name == "postgresql":
            # One statement whose text does not depend on the batch size, so psycopg parses
            # and prepares it once; a multi-row VALUES list is new text for every size, and
            # parsing it cost more CPU than the rest of storing.
            # Binary parameters: text-format arrays would escape every quote of every payload.
            # The columns are built straight from the messages (no row dicts in between).
            spans = [event_span(m) for m in results]
            datas = [m.data for m in results]
            columns = {
                "message_id": [d["id"] for d in datas],
                "patient": [m.patient for m in results],
                "kind": [_EVENT_KIND[m.kind] for m in results],
                "seq": [d["seq"] for d in datas],
                "session_id": [d.get("session_id") for d in datas],
                "exercise": [d.get("exercise") for d in datas],
                "side": [d.get("side") for d in datas],
                "t_start": [span[0] for span in spans],
                "t_end": [span[1] for span in spans],
                "payload": [event_payload(m) for m in results],
                "received_at": now,
            }
            with connection.connection.driver_connection.cursor(binary=True) as cursor:
                cursor.execute(_UNNEST_INSERT, columns)
                return dict(cursor.fetchall())
        rows = [event_row(m, now) for m in results]
        return {row.message_id: row.patient for row in connection.execute(self._insert_events, rows)}

    def _register_patients(self, connection: Connection, patient_ids: set[str], now: dt.datetime) -> None:
        # Pis appear before an operator assigns them; they show up unassigned until then.
        new = sorted(patient_ids - self._known_patients)
        if new:
            insert = self._dialect.insert(patients).on_conflict_do_nothing(index_elements=["patient_id"])
            connection.execute(insert, [{"patient_id": p, "first_seen": now} for p in new])
            self._known_patients.update(new)

    def _upsert_status(self, connection: Connection, message: Message, now: dt.datetime) -> None:
        data = message.data
        if "outbox_first_seq" not in data and "unsaved_results" not in data and "card_reserve" not in data:
            data = self._keep_unsaved_results(connection, message.patient, data)
        status_t = parse_timestamp(data["t"]) if "t" in data else None
        values = {
            "patient": message.patient,
            "online": data["state"] == "online",
            "status_t": status_t,
            "received_at": now,
            "payload": json.dumps(data, separators=(",", ":")),
        }
        insert = self._dialect.insert(device_status).values(values)
        update = {key: insert.excluded[key] for key in ("online", "status_t", "received_at", "payload")}
        connection.execute(insert.on_conflict_do_update(index_elements=["patient"], set_=update))

    @staticmethod
    def _keep_unsaved_results(connection: Connection, patient: str, data: dict) -> dict:
        """A status that is not the Pi service's own (the MQTT client's "online" on connect, its
        last will or clean-stop "offline": no ``outbox_first_seq``) knows nothing of a full card;
        the ``unsaved_results`` of the status it replaces is kept in it, so the monitoring page
        goes on listing the Pi until a status of the service says otherwise. Before, a Pi whose
        card was full vanished from the list as soon as it went offline or reconnected. The same
        for ``card_reserve`` (the card full, saving into the room it kept back)."""
        previous = connection.execute(select(device_status.c.payload)
                                      .where(device_status.c.patient == patient)).scalar()
        if previous is None or ('"unsaved_results"' not in previous and '"card_reserve"' not in previous):
            return data
        try:
            before = json.loads(previous)
        except ValueError:
            return data
        kept = dict(data)
        if isinstance(before.get("unsaved_results"), int):
            kept["unsaved_results"] = before["unsaved_results"]
        if before.get("card_reserve") in ("in_use", "missing"):
            kept["card_reserve"] = before["card_reserve"]
        return kept


def _walk_marks(marks: dict[str, int], walking: list[str], rows: Iterable[tuple[str, int]]) -> list[str]:
    """One round of the walk: move each walking patient's mark up through the seqs above it
    that follow on (``rows``: (patient, seq), distinct and ascending per patient, at most
    ``_SEQ_WINDOW`` each); return the patients whose window was all contiguous (walk on)."""
    seqs: dict[str, list[int]] = {}
    for patient, seq in rows:
        seqs.setdefault(patient, []).append(seq)
    still = []
    for patient in walking:
        before = mark = marks[patient]
        for seq in seqs.get(patient, ()):  # contiguous while each is the next
            if seq != mark + 1:
                break
            mark = seq
        marks[patient] = mark
        if mark - before == _SEQ_WINDOW:
            still.append(patient)
    return still
