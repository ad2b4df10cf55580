"""The durable outbox: order, acks, sequence numbers, the drop policy, threads, SIGKILL."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from hipsense.protocol import Importance, MessageKind
from hipsense.publish import Outbox, OutboxLimits
from tests.protocol.samples import PATIENT, every_kind


class FakeClock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _put_result(box: Outbox, n: int) -> int:
    return box.put(f"hipsense/v1/{PATIENT}/event/rep", f'{{"n":{n}}}'.encode(), qos=1, retain=False)


def test_pending_is_in_put_order_and_ack_removes(tmp_path):
    with Outbox(tmp_path / "o.db") as box:
        ids = [_put_result(box, n) for n in range(5)]
        assert [row.id for row in box.pending()] == ids
        assert [json.loads(row.payload)["n"] for row in box.pending(limit=2)] == [0, 1]
        box.ack(ids[1])
        box.ack(12345)  # unknown id: ignored
        assert [row.id for row in box.pending()] == [ids[0], *ids[2:]]
        box.ack_many(ids)
        assert box.pending() == [] and box.stats().pending_total == 0


def test_rows_survive_reopening_and_ids_are_never_reused(tmp_path):
    with Outbox(tmp_path / "o.db") as box:
        first = _put_result(box, 1)
        box.ack(first)
        second = _put_result(box, 2)
    with Outbox(tmp_path / "o.db") as box:
        assert [row.id for row in box.pending()] == [second]
        assert box.stats().pending[Importance.RESULT] == 1
        assert _put_result(box, 3) > second > first


def test_envelopes_keep_their_delivery_settings(tmp_path):
    with Outbox(tmp_path / "o.db") as box:
        for envelope in every_kind().values():
            box.put_envelope(envelope)
        rows = {row.topic.split("/", 3)[3]: row for row in box.pending()}
    assert rows["status"].retain and rows["status"].qos == 1 and rows["status"].importance is Importance.STATE
    assert rows["live"].qos == 0 and rows["live"].expiry_s == 5 and rows["live"].importance is Importance.LIVE
    assert rows["event/rep"].qos == 1 and not rows["event/rep"].retain


def test_sequence_numbers_have_no_gaps_and_failed_builds_use_none(tmp_path):
    template = every_kind()[MessageKind.REP]

    def build_ok(seq):
        return dataclasses.replace(template, seq=seq)

    def build_fails(seq):
        raise ValueError("bad measurement")

    with Outbox(tmp_path / "o.db") as box:
        assert box.put_sequenced(PATIENT, build_ok)[1].seq == 1
        with pytest.raises(ValueError):
            box.put_sequenced(PATIENT, build_fails)
        assert box.put_sequenced(PATIENT, build_ok)[1].seq == 2
        assert box.put_sequenced("p-other1", build_ok)[1].seq == 1
        assert len(box.pending()) == 3
    with Outbox(tmp_path / "o.db") as box:
        assert box.last_sequence(PATIENT) == 2
        assert box.put_sequenced(PATIENT, build_ok)[1].seq == 3


def test_state_is_committed_with_its_result_or_not_at_all(tmp_path):
    template = every_kind()[MessageKind.REP]

    def build_fails(seq):
        raise ValueError("bad measurement")

    with Outbox(tmp_path / "o.db") as box:
        assert box.read_state("session") is None
        box.put_sequenced(PATIENT, lambda seq: dataclasses.replace(template, seq=seq), state={"session": b"rep 1"})
        with pytest.raises(ValueError):  # the result is not stored: neither is its state
            box.put_sequenced(PATIENT, build_fails, state={"session": b"rep 2"})
        assert box.read_state("session") == b"rep 1"
    with Outbox(tmp_path / "o.db") as box:
        assert box.read_state("session") == b"rep 1" and len(box.pending()) == 1
        box.put_sequenced(PATIENT, lambda seq: dataclasses.replace(template, seq=seq), state={"session": None})
        assert box.read_state("session") is None and len(box.pending()) == 2
        box.write_state({"session": b"on its own"})
        assert box.read_state("session") == b"on its own"


def test_retained_state_is_coalesced_to_the_newest(tmp_path):
    with Outbox(tmp_path / "o.db") as box:
        topic = f"hipsense/v1/{PATIENT}/status"
        for state in ("online", "offline", "online"):
            box.put(topic, state.encode(), qos=1, retain=True, importance=Importance.STATE)
        assert [row.payload for row in box.pending()] == [b"online"]
        assert box.stats().pending[Importance.STATE] == 1


def test_live_rows_expire_instead_of_being_sent(tmp_path):
    clock = FakeClock()
    with Outbox(tmp_path / "o.db", clock=clock) as box:
        box.put("t/live", b"1", qos=0, retain=False, expiry_s=5, importance=Importance.LIVE)
        _put_result(box, 1)
        clock.t += 3
        live = [row for row in box.pending() if row.importance is Importance.LIVE]
        assert live and live[0].remaining_expiry_s(clock.t) == 2
        clock.t += 3
        assert [row.importance for row in box.pending()] == [Importance.RESULT]
        assert box.stats().expired == 1


def test_soft_limit_drops_live_then_state_but_never_results(tmp_path, caplog):
    limits = OutboxLimits(soft_max_rows=10, hard_max_rows=1000)
    with Outbox(tmp_path / "o.db", limits=limits) as box:
        for n in range(6):
            box.put("t/live", str(n).encode(), qos=0, retain=False, importance=Importance.LIVE)
        for n in range(3):
            box.put(f"t/state{n}", b"s", qos=1, retain=True, importance=Importance.STATE)
        for n in range(15):
            _put_result(box, n)
        stats = box.stats()
    assert stats.pending == {Importance.LIVE: 0, Importance.STATE: 0, Importance.RESULT: 15}
    assert stats.dropped == {Importance.LIVE: 6, Importance.STATE: 3, Importance.RESULT: 0}
    assert "dropped" in caplog.text


def test_hard_limit_drops_oldest_results_and_reports_it(tmp_path, caplog):
    limits = OutboxLimits(soft_max_rows=5, hard_max_rows=8)
    with Outbox(tmp_path / "o.db", limits=limits) as box:
        for n in range(12):
            _put_result(box, n)
        assert [json.loads(row.payload)["n"] for row in box.pending()] == list(range(4, 12))
        assert box.stats().dropped[Importance.RESULT] == 4
    assert any(record.levelname == "ERROR" for record in caplog.records)


def test_one_writer_and_one_sender_thread(tmp_path):
    total = 400
    with Outbox(tmp_path / "o.db") as box:
        done = threading.Event()
        received: list[int] = []
        errors: list[BaseException] = []

        def writer():
            try:
                for n in range(total):
                    _put_result(box, n)
            except BaseException as exc:  # noqa: BLE001 - surfaced in the assert below
                errors.append(exc)
            finally:
                done.set()

        def sender():
            try:
                while not (done.is_set() and box.stats().pending_total == 0):
                    rows = box.pending(limit=25)
                    received.extend(json.loads(row.payload)["n"] for row in rows)
                    box.ack_many(row.id for row in rows)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=writer), threading.Thread(target=sender)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not errors
        assert received == list(range(total))


_KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from hipsense.protocol import Envelope, Importance, MessageKind
    from hipsense.publish import Outbox

    box = Outbox(sys.argv[1])
    start = box.last_sequence("p-0001")
    for n in range(start + 1, start + 100_000):
        payload = (f'{{"n":{n},"pad":"' + "x" * (n % 700) + '"}').encode()
        def build(seq, payload=payload):
            return Envelope(MessageKind.REP, "hipsense/v1/p-0001/event/rep", payload, 1, False, None,
                            Importance.RESULT, None, seq)
        row_id, env = box.put_sequenced("p-0001", build)
        print(row_id, env.seq, n, flush=True)   # only after the commit returned
    """
)


@pytest.mark.parametrize("round_count", [3])
def test_everything_committed_survives_sigkill(tmp_path, round_count):
    path = tmp_path / "o.db"
    committed: dict[int, tuple[int, int]] = {}
    for round_index in range(round_count):
        proc = subprocess.Popen(
            [sys.executable, "-c", _KILLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True,
        )
        target = 150 + 97 * round_index  # kill at a different point each round
        for _ in range(target):
            row_id, seq, n = map(int, proc.stdout.readline().split())
            committed[row_id] = (seq, n)
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: it keeps writing until the signal lands
        proc.wait(timeout=10)
        proc.stdout.close()

        with Outbox(path) as box:
            assert box.check_integrity() == "ok"
            rows = {row.id: row for row in box.pending(limit=1_000_000)}
            for row_id, (seq, n) in committed.items():
                assert row_id in rows, f"committed row {row_id} lost"
                assert json.loads(rows[row_id].payload)["n"] == n
            for row in rows.values():
                json.loads(row.payload)  # rows written but not yet reported are whole, too
            # the sequence continued without gaps across the kills
            assert box.last_sequence("p-0001") == len(rows)
            seqs = [seq for seq, _ in committed.values()]
            assert len(set(seqs)) == len(seqs) and set(seqs) <= set(range(1, len(rows) + 1))


def test_an_acknowledgement_beyond_a_fresh_outbox_moves_its_numbering_above_it(tmp_path):
    """A reinstalled Pi (state directory wiped) gets the dashboard's retained acknowledgement of
    what its previous installation sent: new results must be numbered above it, or the
    dashboard's acknowledgements can never cover them (and, once the numbers catch up, would
    cover them without their having been stored)."""
    template = every_kind()[MessageKind.REP]

    def build(seq):
        return dataclasses.replace(template, seq=seq)

    with Outbox(tmp_path / "fresh.db") as box:
        assert box.confirm_stored(PATIENT, 500) == 0
        assert box.put_sequenced(PATIENT, build)[1].seq == 501
        assert box.first_unconfirmed_seq(PATIENT) == 501
        assert box.confirm_stored(PATIENT, 501) == 1
    with Outbox(tmp_path / "offline.db") as box:  # results made before the first connection:
        for _ in range(3):
            box.put_sequenced(PATIENT, build)
        assert box.confirm_stored(PATIENT, 500) == -1  # they may carry numbers stored before: kept
        assert len(box.pending()) == 3 and box.put_sequenced(PATIENT, build)[1].seq == 4


def test_an_acknowledgement_no_numbering_could_have_reached_is_refused(tmp_path, caplog):
    """One bogus acknowledgement near MAX_SEQ (or far beyond any number a Pi hands out: counting
    from 1, or from a Unix-ms floor after a corrupt file) must not move the numbering there:
    every later result would fail in the builder, or the status floor push the dashboard's
    acknowledgement past results never sent."""
    import logging

    from hipsense.protocol.builders import MAX_SEQ

    now = 1_760_000_000.0
    template = every_kind()[MessageKind.REP]

    def build(seq):
        return dataclasses.replace(template, seq=seq)

    with Outbox(tmp_path / "fresh.db", clock=lambda: now) as box, caplog.at_level(logging.WARNING):
        assert box.confirm_stored(PATIENT, MAX_SEQ) == -1
        assert box.confirm_stored(PATIENT, MAX_SEQ - 1000) == -1
        assert box.confirm_stored(PATIENT, int(now * 1000) + 10**8) == -1
        assert "implausible" in caplog.text
        assert box.put_sequenced(PATIENT, build)[1].seq == 1  # numbering untouched, results still build
        # An acknowledgement from before a corrupt file's Unix-ms floor (the dashboard moved to it
        # through that Pi's status) is plausible: the numbering moves above it.
        box.confirm_stored(PATIENT, 1)
        floor_ack = int((now - 86_400) * 1000) + 37
        assert box.confirm_stored(PATIENT, floor_ack) == 0
        assert box.put_sequenced(PATIENT, build)[1].seq == floor_ack + 1


def _no_room(box: Outbox) -> None:
    """The file may not grow, and its free pages are taken by a filler table (SQLITE_FULL)."""
    import sqlite3

    db = box._db
    db.execute("CREATE TABLE IF NOT EXISTS filler (b BLOB)")
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    for size in (4096, 512, 64, 8, 1):
        try:
            while True:
                db.execute("INSERT INTO filler VALUES (zeroblob(?))", (size,))
        except sqlite3.OperationalError as exc:
            assert "full" in str(exc)


def test_a_write_that_finds_no_room_asks_on_full_once_and_is_tried_again_if_it_made_some(tmp_path):
    """SQLITE_FULL (here: the file may not grow past max_page_count) is an OutboxError with
    ``full``; ``on_full`` is asked (without the lock: it may call in) and, if it made room, the
    same write runs once more, whole: nothing of the failed attempt is left (tests/service/
    test_card_reserve.py has the service's reserve on a real full file system)."""
    from hipsense.publish import OutboxError

    rep = every_kind()[MessageKind.REP]

    def build(seq):
        return dataclasses.replace(rep, seq=seq)

    with Outbox(tmp_path / "o.db") as box:
        box.put_sequenced(PATIENT, build)
        _no_room(box)
        with pytest.raises(OutboxError) as no_hook:
            for _ in range(10_000):
                box.put_sequenced(PATIENT, build, state={"s": b"1" * 500})
        assert no_hook.value.full and not no_hook.value.corrupt
        last = box.last_sequence(PATIENT)
        asked = []

        def make_room(exc):
            asked.append(exc)
            assert box.stats() is not None  # the lock is not held
            box._db.execute("PRAGMA max_page_count = 1073741823")
            return True

        box.on_full = make_room
        _, envelope = box.put_sequenced(PATIENT, build, state={"s": b"2"})
        assert len(asked) == 1 and asked[0].full and envelope.seq == last + 1
        assert box.read_state("s") == b"2" and box.last_sequence(PATIENT) == last + 1
        _no_room(box)
        box.on_full = lambda exc: asked.append(exc) and False  # no room to give: the error as before
        with pytest.raises(OutboxError) as refused:
            for _ in range(10_000):
                box.put_sequenced(PATIENT, build, state={"s": b"3" * 500})
        assert refused.value.full and len(asked) == 2

        def not_about_room(seq):
            raise OutboxError("not about room")

        box.on_full = lambda exc: pytest.fail("asked for a write that failed otherwise")
        with pytest.raises(OutboxError) as other:
            box.put_sequenced(PATIENT, not_about_room)
        assert not other.value.full
