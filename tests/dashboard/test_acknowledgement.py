"""How far the dashboard acknowledges a patient's results (``hipsense/v1/<patient>/stored``),
computed by the store on SQLite and PostgreSQL: the highest seq with every result up to it
stored or dead-lettered, never past a gap the Pi could still fill."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from hipsense import protocol as p
from hipsense.dashboard.db.tables import dead_letters, events
from hipsense.dashboard.event_store import REPEAT_REASON, EventStore, dead_letter
from tests.dashboard.events import parsed, rep

T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.timezone.utc)


def reps(patient: str, *seqs: int) -> list[p.Message]:
    return [parsed(rep(patient, seq, T0 + dt.timedelta(seconds=seq), rep_index=1)) for seq in seqs]


def test_the_acknowledgement_stops_at_the_first_gap_and_moves_when_it_fills(engine):
    store = EventStore(engine)
    assert store.write_batch(reps("p-0001", 1, 2, 4, 5)).acks == {"p-0001": 2}
    assert store.write_batch(reps("p-0001", 6)).acks == {"p-0001": 2}  # 3 is still on its way
    assert store.write_batch(reps("p-0001", 3)).acks == {"p-0001": 6}
    assert store.write_batch(reps("p-0001", 3)).acks == {"p-0001": 6}  # a repeat is answered too
    assert store.write_batch(reps("p-0002", 2)).acks == {"p-0002": 0}  # patients are apart
    assert store.stored_seq("p-0001") == 6


def test_a_dead_letter_counts_as_handled(engine):
    store = EventStore(engine)
    store.write_batch(reps("p-0001", 1, 3))
    bad = rep("p-0001", 2, T0)
    result = store.write_batch([], [dead_letter(bad.topic, bad.payload.replace(b'"rom_deg":38.0', b'"rom_deg":-1e9'),
                                                "schema")])
    assert result.dead_lettered == 1 and result.acks == {"p-0001": 3}


def test_a_long_run_is_walked_in_windows(engine):
    store = EventStore(engine)
    assert store.write_batch(reps("p-0001", *range(1, 4501))).acks == {"p-0001": 4500}


def test_the_pis_outbox_floor_moves_past_a_gap_no_one_can_fill(engine):
    """Results 3 and 4 were forgotten on a PUBACK before this version (or dropped at the Pi's
    hard cap): the Pi's status says it holds nothing below 5, so waiting for them is pointless."""
    store = EventStore(engine)
    store.write_batch(reps("p-0001", 1, 2, 5, 6))
    assert store.stored_seq("p-0001") == 2
    status = p.build_status("p-0001", online=True, t=T0, outbox_first_seq=5)
    assert store.write_batch([parsed(status)]).acks == {"p-0001": 6}
    # a floor never moves the mark back (a wiped Pi starts its sequence again at 1)
    again = p.build_status("p-0001", online=True, t=T0, outbox_first_seq=1)
    assert store.write_batch([parsed(again)]).acks == {"p-0001": 6}


def test_two_instances_never_move_the_mark_back(engine):
    first, second = EventStore(engine), EventStore(engine)
    first.write_batch(reps("p-0001", 1, 2, 3))
    assert second.write_batch(reps("p-0001", 2)).acks == {"p-0001": 3}


def test_results_that_will_never_arrive_are_written_down_when_the_mark_moves_past_them(engine):
    """Before, the floor moved the mark past 3 and 4 and nobody on the dashboard's side learnt
    that two results were gone; now the gap is kept (the monitoring page shows it)."""
    from sqlalchemy import select

    from hipsense.dashboard.db.tables import delivery_gaps

    store = EventStore(engine)
    store.write_batch(reps("p-0001", 1, 2, 5, 6))
    for _ in range(2):  # the Pi sends its status after every connect: written down once
        store.write_batch([parsed(p.build_status("p-0001", online=True, t=T0, outbox_first_seq=5))])
    # a floor that skips nothing (the Pi holds nothing and numbers on) writes nothing
    store.write_batch([parsed(p.build_status("p-0001", online=True, t=T0, outbox_first_seq=7))])
    store.write_batch(reps("p-0002", 1, 2))
    store.write_batch([parsed(p.build_status("p-0002", online=True, t=T0, outbox_first_seq=3))])
    with engine.connect() as connection:
        gaps = [tuple(r) for r in connection.execute(select(
            delivery_gaps.c.patient, delivery_gaps.c.after_seq, delivery_gaps.c.before_seq, delivery_gaps.c.missing))]
    assert gaps == [("p-0001", 2, 5, 2)]


def _again_as(envelope: p.Envelope, seq: int) -> p.Message:
    """The same result (its id) stored by the Pi a second time, numbered ``seq``."""
    doc = json.loads(envelope.payload)
    return p.parse_message(envelope.topic, json.dumps({**doc, "seq": seq}).encode())


def test_a_result_stored_twice_by_the_pi_under_a_new_seq_does_not_stop_the_acknowledgement(engine):
    """A Pi whose outbox lost the mark of its spill file imports spilled results again: the same
    id under the next seq. The repeat was dropped as a duplicate, so that seq never showed up and
    the acknowledgement stopped below it for good (every later result of the patient stayed on the
    Pi). It is dead-lettered as a repeat: handled, the acknowledgement walks on."""
    store = EventStore(engine)
    first = [rep("p-0001", seq, T0 + dt.timedelta(seconds=seq), rep_index=seq) for seq in (1, 2, 3)]
    assert store.write_batch([parsed(e) for e in first]).acks == {"p-0001": 3}
    result = store.write_batch([_again_as(first[2], 4)])
    assert result.acks == {"p-0001": 4} and result.dead_lettered == 1 and result.duplicates == 1
    again = store.write_batch([_again_as(first[2], 4), _again_as(first[1], 5),  # delivered again; one in the batch
                               parsed(rep("p-0001", 6, T0 + dt.timedelta(seconds=6), rep_index=4))])
    assert again.acks == {"p-0001": 6} and again.stored == 1 and again.dead_lettered == 1 and again.duplicates == 2
    with engine.connect() as connection:
        kept = connection.execute(select(events.c.message_id, events.c.seq).order_by(events.c.seq)).all()
        letters = connection.execute(select(dead_letters.c.seq, dead_letters.c.reason)
                                     .order_by(dead_letters.c.seq)).all()
    assert [seq for _, seq in kept] == [1, 2, 3, 6]  # each result once, under its first seq
    assert [seq for seq, _ in letters] == [4, 5] and all(r.startswith(REPEAT_REASON) for _, r in letters)
    assert "as seq 3" in letters[0][1]
    # nothing to retry: the repeat stays a dead letter and is not counted as stored
    assert store.retry_dead_letters(T0) == (0, 0)
    assert store.stored_seq("p-0001") == 6


def test_a_repeat_inside_one_batch_under_a_new_seq_is_handled_too(engine):
    store = EventStore(engine)
    one = rep("p-0001", 1, T0)
    result = store.write_batch([parsed(one), _again_as(one, 2), parsed(rep("p-0001", 3, T0, rep_index=2))])
    assert result.acks == {"p-0001": 3} and result.stored == 2 and result.dead_lettered == 1


def test_another_patients_id_does_not_stop_this_patients_acknowledgement(engine):
    """A result id is a ULID; a repeat across patients is a bug or a hostile Pi: its seq is
    handled (dead-lettered), the first patient's row is untouched."""
    store = EventStore(engine)
    theirs = rep("p-0002", 1, T0)
    store.write_batch([parsed(theirs)])
    doc = json.loads(theirs.payload)
    mine = p.parse_message("hipsense/v1/p-0001/event/rep", json.dumps({**doc, "patient": "p-0001"}).encode())
    result = store.write_batch([mine])
    assert result.acks == {"p-0001": 1} and result.dead_lettered == 1
    assert store.stored_seq("p-0002") == 1
