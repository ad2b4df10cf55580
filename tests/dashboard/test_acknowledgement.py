"""How far the dashboard acknowledges a patient's results (``hipsense/v1/<patient>/stored``),
computed by the store on SQLite and PostgreSQL: the highest seq with every result up to it
stored or dead-lettered, never past a gap the Pi could still fill."""

from __future__ import annotations

import datetime as dt

from hipsense import protocol as p
from hipsense.dashboard.event_store import EventStore, dead_letter
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
