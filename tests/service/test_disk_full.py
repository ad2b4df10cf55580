"""A full disk under the outbox: a clear error, the counting goes on, nothing counted is lost.

SQLite's ``max_page_count`` makes the outbox's file full at its current size: every write
then fails with SQLITE_FULL ("database or disk is full"), exactly as on a full SD card.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from hipsense.protocol import Importance, MessageKind, parse_message
from hipsense.publish import OutboxError
from tests.dashboard.conftest import engine, postgres_url  # noqa: F401 - fixtures
from tests.service.test_crash_windows import _check_whole
from tests.service.test_engine import Rig, rx


def _fill(rig: Rig) -> None:
    """No room left: the file may not grow, and its free pages are taken by a filler table."""
    import sqlite3

    db = rig.outbox._db
    db.execute("CREATE TABLE IF NOT EXISTS filler (b BLOB)")
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    for size in (4096, 512, 64, 8, 1):
        try:
            while True:
                db.execute("INSERT INTO filler VALUES (zeroblob(?))", (size,))
        except sqlite3.OperationalError as exc:
            assert "full" in str(exc)
    for size in (1000, 100, 10, 1):  # and the slack in the outbox's own pages (expired at once)
        try:
            while True:
                rig.outbox.put("filler", b"x" * size, qos=0, retain=False, expiry_s=0, importance=Importance.LIVE)
        except OutboxError as exc:
            assert "full" in str(exc)


def _free(rig: Rig) -> None:
    rig.outbox._db.execute("PRAGMA max_page_count = 1073741823")


def _room_for(rig: Rig, n: int):
    """The card has room for exactly ``n`` more results; returns the outbox's own put_sequenced
    (to give the room back)."""
    put_sequenced, room = rig.outbox.put_sequenced, [n]

    def limited(*args, **kwargs):
        if not room[0]:
            raise OutboxError(f"outbox {rig.outbox.path}: database or disk is full")
        room[0] -= 1
        return put_sequenced(*args, **kwargs)

    rig.outbox.put_sequenced = limited
    return put_sequenced


@pytest.fixture
def uci(uci_s1_e3):
    t, acc, gyr = uci_s1_e3
    return np.asarray(t, float), np.asarray(acc, float), np.asarray(gyr, float)


def test_results_counted_while_the_disk_is_full_are_stored_once_there_is_room(tmp_path, uci, caplog):
    t, acc, gyr = uci
    rig = Rig(tmp_path, rx())
    a, b = (int(np.searchsorted(t, s)) for s in (60.0, 150.0))  # full from set 1's end into set 3
    rig.feed(t, acc, gyr, stop=a)
    _fill(rig)
    with caplog.at_level(logging.ERROR):
        rig.feed(t, acc, gyr, start=a, stop=b)  # nothing escapes: the counting goes on
    assert rig.publisher.held > 0  # results could not be written ...
    assert "database or disk is full" in caplog.text  # ... and the log says why
    assert rig.speaker.phrases.count("Set 1 of 3 done. Rest.") == 1  # the patient still hears the counts
    # ... and is told, once, that the results wait in memory (a power cut would lose them, and the
    # dashboard sees no gap: results are numbered when stored), and once when they are saved
    warnings = [phrase for phrase in rig.speaker.phrases if "cannot be saved" in phrase]
    assert len(warnings) == 1 and "call your clinic" in warnings[0]
    _free(rig)
    rig.feed(t, acc, gyr, start=b)
    rig.feed(t[-1] + 0.04 * np.arange(1, 750), np.repeat(acc[-1:], 749, 0), np.zeros((749, 3)))  # rest 30 s

    messages = rig.messages()
    assert [m.seq for m in messages] == list(range(1, len(messages) + 1))
    _check_whole(messages)
    assert len([m for m in messages if m.kind is MessageKind.REP]) == 30  # every rep, none lost
    assert [m.data["reps"] for m in messages if m.kind is MessageKind.SET] == [10, 10, 10]
    assert rig.publisher.failed == 0 and rig.publisher.held == 0
    assert rig.speaker.phrases.count("Your results are saved again.") == 1


def test_held_results_are_stored_by_the_tick_and_a_restart_resumes_after_them(tmp_path, uci):
    t, acc, gyr = uci
    rig = Rig(tmp_path, rx())
    a = int(np.searchsorted(t, 40.0))
    rig.feed(t, acc, gyr, stop=a)
    _fill(rig)
    b = int(np.searchsorted(t, 70.0))
    rig.feed(t, acc, gyr, start=a, stop=b)
    held = rig.publisher.held
    assert held > 0
    _free(rig)
    rig.engine.tick()  # no new result needed: the engine's tick retries
    assert rig.publisher.held == 0 and len(rig.of(MessageKind.REP)) >= held
    session_id = rig.engine.session_id
    rig.outbox.close()  # SIGKILL
    again = Rig(tmp_path, rx())
    assert again.engine.session_id == session_id
    again.feed(t, acc, gyr, start=b)
    again.engine.shutdown()
    _check_whole(again.messages())


def test_a_status_that_cannot_be_stored_does_not_stop_the_processing_thread(tmp_path, caplog):
    from hipsense.service.service import EngineWorker, store_status

    rig = Rig(tmp_path, rx())
    _fill(rig)
    notified = []
    worker = EngineWorker(rig.engine, on_status=lambda: store_status(
        rig.outbox, "p-0001", rig.engine, rig.timebase, notify=lambda: notified.append(1)))
    worker.start()
    with caplog.at_level(logging.ERROR):
        worker.submit("status")
        worker.stop()
    assert worker.failed is None
    assert "status not stored" in caplog.text
    _free(rig)
    store_status(rig.outbox, "p-0001", rig.engine, rig.timebase, notify=lambda: notified.append(1))
    assert [r.topic for r in rig.outbox.pending()] == ["hipsense/v1/p-0001/status"] and notified == [1]


def test_a_result_the_schema_refuses_is_not_held_but_its_numbering_is_kept(tmp_path, caplog):
    from hipsense.service.state import SessionStateStore

    rig = Rig(tmp_path, rx())
    store = SessionStateStore(outbox=rig.outbox)
    doc = {"session_id": "01JQ7Z8K3M4N5P6Q7R8S9T0V1W", "t_start": 1.7e9, "saved_at": 1.7e9, "tallies": []}
    with caplog.at_level(logging.ERROR):
        stored = rig.publisher.rep(session_id=doc["session_id"], exercise="straight_leg_raise", side="right",
                                   set_index=1, rep_index=1, t_start=1.7e9, t_end=1.7e9 + 2, rom_deg=float("nan"),
                                   hold_s=1.0, peak_speed_dps=30.0, duration_s=2.0, flags=(),
                                   state=store.changes(doc))
    assert stored is None and rig.publisher.failed == 1 and rig.publisher.held == 0  # a bug, not a full disk
    assert "rep not published" in caplog.text and rig.messages() == []
    assert store.load()["session_id"] == doc["session_id"]  # a restart numbers on after it


def test_an_observer_that_fails_neither_stores_a_result_twice_nor_stops_the_counting(tmp_path, uci, caplog):
    """E.g. the Home Assistant bridge or the patient page's book raising on a result."""
    t, acc, gyr = uci
    rig = Rig(tmp_path, rx())

    def broken(kind, envelope):
        raise RuntimeError("observer bug")

    rig.publisher.on_stored.append(broken)
    with caplog.at_level(logging.ERROR):
        rig.feed(t, acc, gyr, stop=int(np.searchsorted(t, 100.0)))
    messages = rig.messages()
    assert [m.seq for m in messages] == list(range(1, len(messages) + 1)) and len(messages) >= 11
    _check_whole(messages)
    assert "an observer of stored results failed" in caplog.text


def test_the_engine_starts_on_a_full_disk_with_an_old_session_to_end(tmp_path, uci, caplog):
    from hipsense.publish import Outbox
    from hipsense.service.config import SessionConfig
    from hipsense.service.engine import SessionEngine
    from hipsense.service.results import ResultPublisher
    from hipsense.service.state import SessionStateStore
    from hipsense.service.timebase import Timebase
    from hipsense.service.voice import Voice
    from tests.service.fakes import RecordingSpeaker

    t, acc, gyr = uci
    rig = Rig(tmp_path, rx())
    rig.feed(t, acc, gyr, stop=int(np.searchsorted(t, 40.0)))  # a session in progress, saved
    rig.outbox.close()
    outbox = Outbox(tmp_path / "outbox.sqlite")

    def full(*_args, **_kwargs):  # SQLite deletes in place, so a filled file would take it: fail it as a full WAL does
        raise OutboxError(f"outbox {outbox.path}: database or disk is full")

    outbox.write_state = full
    put_sequenced = outbox.put_sequenced
    outbox.put_sequenced = full  # the whole card is full: results cannot be stored either
    publisher = ResultPublisher("p-0001", outbox)
    with caplog.at_level(logging.ERROR):
        engine = SessionEngine(  # a day later: the session is too old to resume; it is ended (its set, its summary)
            sensor_sides=["right"], publisher=publisher, voice=Voice(RecordingSpeaker()),
            timebase=Timebase(monotonic=lambda: 0.0, wall=lambda: 1.7e9 + 86_400),
            settings=SessionConfig(recognition=False),
            state=SessionStateStore(outbox=outbox), prescription=rx())
    assert engine.session_id is None and "not stored yet" in caplog.text
    assert publisher.held >= 1  # the summary (and the open set) wait in memory ...
    outbox.put_sequenced = put_sequenced
    engine.tick()  # ... and are stored once there is room
    kinds = [parse_message(r.topic, r.payload).kind for r in outbox.pending(limit=10_000)]
    assert publisher.held == 0 and kinds[-1] is MessageKind.SESSION


def test_a_new_prescription_never_saves_the_state_ahead_of_results_held_in_memory(tmp_path, uci):
    """The disk has room again, but the held results wait for the next tick when a prescription
    arrives: its state write must not commit the held reps' numbering before they are stored
    (a crash then left a state that numbers on after reps never stored)."""
    t, acc, gyr = uci
    rig = Rig(tmp_path, rx())
    a, b = (int(np.searchsorted(t, s)) for s in (40.0, 100.0))
    rig.feed(t, acc, gyr, stop=a)
    _fill(rig)
    rig.feed(t, acc, gyr, start=a, stop=b)
    assert rig.publisher.held > 0
    _free(rig)
    rig.engine.on_prescription(rx(version=2))  # before any tick
    rig.outbox.close()  # SIGKILL: what was still held in memory is gone
    again = Rig(tmp_path, rx(version=2))
    again.feed(t, acc, gyr, start=b)
    again.feed(t[-1] + 0.04 * np.arange(1, 750), np.repeat(acc[-1:], 749, 0), np.zeros((749, 3)))  # rest 30 s
    _check_whole(again.messages())


def test_a_new_prescription_on_a_full_disk_saves_the_state_after_the_held_results(tmp_path, uci, monkeypatch):
    t, acc, gyr = uci
    rig = Rig(tmp_path, rx())
    a, b = (int(np.searchsorted(t, s)) for s in (40.0, 100.0))
    rig.feed(t, acc, gyr, stop=a)
    _fill(rig)
    rig.feed(t, acc, gyr, start=a, stop=b)
    saved = []
    real_save = rig.engine.state.save
    monkeypatch.setattr(rig.engine.state, "save", lambda doc: saved.append(doc) or real_save(doc))
    rig.engine.on_prescription(rx(version=2))
    assert rig.publisher.held > 0 and saved == []  # not written apart while results wait in memory
    _free(rig)
    rig.engine.tick()
    assert rig.publisher.held == 0 and len(saved) == 1  # after them, in order
    assert rig.engine.state.load()["tallies"] == rig.engine.plan.tallies_to_json()


# -- held results outlive the process (spill file) ----------------------------------------------


class _SpillRig(Rig):
    """Rig, with the service's spill file (a tmp dir stands in for /run/hipsense, a tmpfs) and
    the session state read through the held results; ``full`` fills the outbox before the
    publisher opens it (a restart on a card that is still full)."""

    def __init__(self, tmp_path, prescription, *, full: bool = False):
        from hipsense.publish import Outbox
        from hipsense.service.config import SessionConfig
        from hipsense.service.engine import SessionEngine
        from hipsense.service.results import ResultPublisher
        from hipsense.service.spill import SpillFile
        from hipsense.service.state import SessionStateStore
        from hipsense.service.timebase import Timebase
        from hipsense.service.voice import Voice
        from tests.service.fakes import FakeClock, RecordingSpeaker

        self.outbox = Outbox(tmp_path / "outbox.sqlite")
        if full:
            _fill(self)
        self.live = []
        self.speaker = RecordingSpeaker()
        self.clock = FakeClock(0.0)
        self.spill = SpillFile(tmp_path / "run" / "held-results-p-0001.jsonl")
        self.publisher = ResultPublisher("p-0001", self.outbox, send_live=lambda e: self.live.append(e) or True,
                                         clock=self.clock, spill=self.spill)
        self.timebase = Timebase(monotonic=lambda: 0.0, wall=lambda: 1.7e9)
        self.engine = SessionEngine(
            sensor_sides=["right"], publisher=self.publisher, voice=Voice(self.speaker), timebase=self.timebase,
            settings=SessionConfig(recognition=False), prescription=prescription,
            state=SessionStateStore(outbox=self.outbox, held=self.publisher.held_state))


def _rest(rig, t, acc):
    rig.feed(t[-1] + 0.04 * np.arange(1, 750), np.repeat(acc[-1:], 749, 0), np.zeros((749, 3)))  # rest 30 s


def _whole_session(messages) -> None:
    assert [m.seq for m in messages] == list(range(1, len(messages) + 1))
    _check_whole(messages)
    assert len([m for m in messages if m.kind is MessageKind.REP]) == 30  # every rep, once
    assert [m.data["reps"] for m in messages if m.kind is MessageKind.SET] == [10, 10, 10]
    assert len({m.data["id"] for m in messages if "id" in m.data}) == len([m for m in messages if "id" in m.data])


def test_results_held_on_a_full_card_survive_a_restart_of_the_service(tmp_path, uci):
    """The card fills in set 1, the service is killed with results held (SIGKILL: only the spill
    file on the tmpfs has them) and comes back with room: every result once, numbered on.
    The full card is SQLite's SQLITE_FULL (max_page_count, what a full card returns), not a
    real ENOSPC: tests/deploy has the real one with `hipsense run`. Before the spill file, the
    held results died with the process (25 of 30 reps here, set 1 never closed: sets [15, 10])."""
    t, acc, gyr = uci
    rig = _SpillRig(tmp_path, rx())
    a, b = (int(np.searchsorted(t, s)) for s in (40.0, 100.0))
    rig.feed(t, acc, gyr, stop=a)
    _fill(rig)
    rig.feed(t, acc, gyr, start=a, stop=b)
    held = rig.publisher.held
    assert held > 5 and len(rig.spill.load()) == held
    rig.outbox.close()  # SIGKILL: memory gone, the spill file stays

    again = _SpillRig(tmp_path, rx())
    assert again.publisher.held == held  # back, and the session resumes after them ...
    seen = []
    again.publisher.on_stored.append(lambda kind, envelope: seen.append(envelope.message_id))  # the patient's page
    again.engine.tick()
    assert again.publisher.held == 0 and not again.spill.path.exists()  # ... stored by the first tick, file removed
    assert len(seen) == held  # and the observers of stored results (attached after the start) saw them
    again.feed(t, acc, gyr, start=b)
    _rest(again, t, acc)
    _whole_session(again.messages())


def test_a_restart_on_a_card_still_full_keeps_numbering_after_the_held_results(tmp_path, uci):
    """Killed twice while the card is full: the second run resumes the session after the held
    results (their state, not the outbox's older one), spills its own after them, and once
    there is room every result is stored once, in order."""
    t, acc, gyr = uci
    rig = _SpillRig(tmp_path, rx())
    a, b, c = (int(np.searchsorted(t, s)) for s in (40.0, 100.0, 130.0))  # 130: a plain restart there keeps 3 sets
    rig.feed(t, acc, gyr, stop=a)
    _fill(rig)
    rig.feed(t, acc, gyr, start=a, stop=b)
    first = rig.publisher.held
    rig.outbox.close()

    second = _SpillRig(tmp_path, rx(), full=True)
    assert second.publisher.held == first  # back from the file, still waiting
    second.feed(t, acc, gyr, start=b, stop=c)
    assert second.publisher.held > first and len(second.spill.load()) == second.publisher.held
    second.outbox.close()

    third = _SpillRig(tmp_path, rx())
    third.engine.tick()
    assert third.publisher.held == 0
    third.feed(t, acc, gyr, start=c)
    _rest(third, t, acc)
    _whole_session(third.messages())
    assert third.spill.load() == []


def test_a_full_card_is_told_in_a_status_sent_straight_to_the_broker(tmp_path, uci):
    """The outbox cannot take the status either: it goes straight to the client (retained) with
    unsaved_results = the results waiting; once there is room, a status without it goes through
    the outbox as before. Before: 'status not stored', and the dashboard never knew."""
    from hipsense.service.service import store_status

    t, acc, gyr = uci
    rig = _SpillRig(tmp_path, rx())
    a, b = (int(np.searchsorted(t, s)) for s in (40.0, 100.0))
    rig.feed(t, acc, gyr, stop=a)
    _fill(rig)
    rig.feed(t, acc, gyr, start=a, stop=b)
    direct = []

    def status():
        store_status(rig.outbox, "p-0001", rig.engine, rig.timebase, notify=lambda: None, publisher=rig.publisher,
                     publish_direct=lambda envelope: direct.append(envelope) or True)

    status()
    assert len(direct) == 1 and direct[0].retain and direct[0].qos == 1
    sent = parse_message(direct[0].topic, direct[0].payload).data
    assert sent["unsaved_results"] == rig.publisher.held > 0 and sent["state"] == "online"
    _free(rig)
    rig.engine.tick()
    assert rig.publisher.held == 0 and not rig.publisher.unwritable
    status()
    assert len(direct) == 1  # not straight any more
    statuses = [m for m in rig.messages() if m.kind is MessageKind.STATUS]
    assert len(statuses) == 1 and "unsaved_results" not in statuses[0].data


def test_a_spill_file_whose_progress_cannot_be_read_is_left_for_the_next_start(tmp_path, uci):
    """Importing it all could store results twice under new numbers; it is kept, untouched."""
    from hipsense.publish import Outbox
    from hipsense.service.results import SPILL_DONE, ResultPublisher
    from hipsense.service.spill import SpillFile

    t, acc, gyr = uci
    rig = _SpillRig(tmp_path, rx())
    a, b = (int(np.searchsorted(t, s)) for s in (40.0, 100.0))
    rig.feed(t, acc, gyr, stop=a)
    _fill(rig)
    rig.feed(t, acc, gyr, start=a, stop=b)
    held = rig.publisher.held
    rig.outbox.close()
    outbox = Outbox(tmp_path / "outbox.sqlite")
    outbox.write_state({SPILL_DONE: b"not a number"})
    publisher = ResultPublisher("p-0001", outbox, spill=SpillFile(rig.spill.path))
    publisher.retry_held()
    assert publisher.held == 0 and len(SpillFile(rig.spill.path).load()) == held
    outbox.close()


# -- some of the held results stored, then a kill: the rest once, the stored ones never again ------------


def _deliver(rig, store) -> None:
    """What the outbox holds reaches the dashboard (``store``), and its acknowledgement the Pi."""
    from hipsense.protocol import parse_message

    rows = rig.outbox.pending(limit=10_000)
    result = store.write_batch([parse_message(r.topic, r.payload) for r in rows])
    for patient, seq in result.acks.items():
        rig.outbox.confirm_stored(patient, seq)


def _stored_by_the_dashboard(engine):
    from sqlalchemy import select

    from hipsense.dashboard.db.tables import dead_letters, events

    with engine.connect() as connection:
        rows = connection.execute(select(events.c.kind, events.c.payload).order_by(events.c.seq)).all()
        letters = connection.execute(select(dead_letters.c.seq, dead_letters.c.reason)).all()
    return [parse_message(f"hipsense/v1/p-0001/event/{kind}", payload.encode()) for kind, payload in rows], letters


def test_held_results_partly_stored_before_a_kill_are_stored_once_each(tmp_path, uci, engine):  # noqa: F811
    """Room for exactly 3 of the held results, then full again; those 3 reach the dashboard and are
    acknowledged (the Pi forgets them), the service is killed, comes back with room: only the rest
    are imported from the spill file. Each result once on the dashboard (SQLite, PostgreSQL), seq
    1..N, no dead letter, the acknowledgement at N and the outbox empty. Without the spill mark
    stored with each result (``held_spill_done``) the 3 came back under new numbers."""
    from hipsense.dashboard.event_store import EventStore

    t, acc, gyr = uci
    store = EventStore(engine)
    rig = _SpillRig(tmp_path, rx())
    a, b = (int(np.searchsorted(t, s)) for s in (40.0, 100.0))
    rig.feed(t, acc, gyr, stop=a)
    _deliver(rig, store)
    _fill(rig)
    rig.feed(t, acc, gyr, start=a, stop=b)
    held = rig.publisher.held
    assert held > 5 and len(rig.spill.load()) == held
    _free(rig)
    put_sequenced = _room_for(rig, 3)
    rig.spill.mark_stored = lambda n: False  # the spill file's own copy of the mark lost (next test): the outbox's counts
    rig.engine.tick()
    assert rig.publisher.held == held - 3
    rig.outbox.put_sequenced = put_sequenced
    _deliver(rig, store)  # the 3 are stored and acknowledged: the Pi keeps no copy of them
    rig.outbox.close()  # SIGKILL with held - 3 in memory and in the spill file

    again = _SpillRig(tmp_path, rx())
    again.engine.tick()
    assert again.publisher.held == 0
    again.feed(t, acc, gyr, start=b)
    _rest(again, t, acc)
    _deliver(again, store)
    messages, letters = _stored_by_the_dashboard(engine)
    _whole_session(messages)  # 30 reps, sets [10, 10, 10], seq 1..N, each id once
    assert letters == [] and store.stored_seq("p-0001") == len(messages)
    assert again.outbox.pending(limit=10_000) == []


def test_an_outbox_that_comes_back_without_its_spill_mark_does_not_store_results_again(tmp_path, uci):
    """As above, but the outbox comes back corrupt at the restart and is replaced by a fresh one
    (what it held cannot be read back, its spill mark with it): the spill file says itself which
    of its lines were stored, so only the others are imported. Before, all were: the 3 stored
    ones again under new numbers (the reviewer's double_import2.py)."""
    from hipsense.publish import open_outbox
    from hipsense.service.results import ResultPublisher
    from hipsense.service.spill import SpillFile

    t, acc, gyr = uci
    rig = _SpillRig(tmp_path, rx())
    a, b = (int(np.searchsorted(t, s)) for s in (40.0, 100.0))
    rig.feed(t, acc, gyr, stop=a)
    _fill(rig)
    rig.feed(t, acc, gyr, start=a, stop=b)
    held = rig.publisher.held
    spilled = [parse_message(e.topic, e.payload).data["id"] for e in rig.spill.load()]
    assert held > 5 and len(spilled) == held
    _free(rig)
    _room_for(rig, 3)
    rig.engine.tick()
    assert rig.publisher.held == held - 3
    rig.outbox.close()  # SIGKILL
    with open(tmp_path / "outbox.sqlite", "r+b") as f:
        f.write(b"\x00" * 4096)  # unreadable: set aside, a fresh outbox without its state
    outbox = open_outbox(tmp_path / "outbox.sqlite")
    assert outbox.read_state("held_spill_done") is None
    publisher = ResultPublisher("p-0001", outbox, spill=SpillFile(rig.spill.path))
    assert publisher.held == held - 3
    publisher.retry_held()
    ids = [parse_message(r.topic, r.payload).data["id"] for r in outbox.pending(limit=10_000)]
    assert ids == spilled[3:]  # the rest, once each; not the 3 stored before
    outbox.close()


def test_a_card_that_fills_while_nothing_is_counted_is_told_until_a_status_is_stored(tmp_path):
    """No result waits, but the status cannot be stored: it goes straight to the broker with
    unsaved_results 0, and the publisher counts the outbox unwritable, so that the service sends
    it again every minute and, once a status is stored, the flip sends one without the field
    (which clears the dashboard's list). Before, the flag stayed False: one direct status, then
    nothing, and the dashboard listed the Pi for ever."""
    from hipsense.service.service import store_status

    rig = _SpillRig(tmp_path, rx())
    direct = []

    def status():
        store_status(rig.outbox, "p-0001", rig.engine, rig.timebase, notify=lambda: None, publisher=rig.publisher,
                     publish_direct=lambda envelope: direct.append(envelope) or True)

    _fill(rig)
    status()
    assert [parse_message(e.topic, e.payload).data["unsaved_results"] for e in direct] == [0]
    assert rig.publisher.unwritable  # the service's housekeeping sends a status every minute while so
    rig.engine.tick()  # nothing held: a tick proves nothing about the outbox
    assert rig.publisher.unwritable
    status()  # a minute later, still full
    assert len(direct) == 2 and rig.publisher.unwritable
    _free(rig)
    status()  # the next minute's: stored, and the flag flips back
    assert len(direct) == 2 and not rig.publisher.unwritable
    statuses = [m for m in rig.messages() if m.kind is MessageKind.STATUS]
    assert len(statuses) == 1 and "unsaved_results" not in statuses[0].data
