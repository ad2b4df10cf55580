"""The card reserve (service/reserve.py): a full card still saves results ON THE CARD, so a power
cut while it is full loses none.

A REAL full file system (tests/card.py: a small tmpfs, filled with a file until ENOSPC; root
needed, skipped otherwise): the outbox, its WAL and -shm and the reserve all live on it, and the
reserve's removal gives its room back, as on an SD card. The power cut is a copy of the card's
files as they are (no close, no checkpoint) opened by a new outbox, without the process's memory
and without the RAM-backed spill file.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3

import numpy as np
import pytest

from hipsense.protocol import MessageKind, parse_message
from hipsense.publish import Outbox, OutboxError
from hipsense.service.reserve import CardReserve
from tests.card import fill, is_full, small_card
from tests.service.test_disk_full import _rest, _whole_session
from tests.service.test_engine import rx

KIB, MIB = 1024, 1024 * 1024


@pytest.fixture
def uci(uci_s1_e3):
    t, acc, gyr = uci_s1_e3
    return np.asarray(t, float), np.asarray(acc, float), np.asarray(gyr, float)


class _CardRig:
    """The service's parts on ``state_dir`` as ``hipsense run`` wires them (outbox and reserve by
    open_outbox_with_reserve, the spill file elsewhere: /run/hipsense is RAM, not the card)."""

    def __init__(self, state_dir, run_dir, prescription, *, reserve_bytes):
        from hipsense.service.config import SessionConfig
        from hipsense.service.engine import SessionEngine
        from hipsense.service.results import ResultPublisher
        from hipsense.service.service import open_outbox_with_reserve
        from hipsense.service.spill import SpillFile
        from hipsense.service.state import SessionStateStore
        from hipsense.service.timebase import Timebase
        from hipsense.service.voice import Voice
        from tests.service.fakes import FakeClock, RecordingSpeaker

        state_dir.mkdir(parents=True, exist_ok=True)
        self.outbox, self.reserve = open_outbox_with_reserve(state_dir, reserve_bytes)
        self.speaker = RecordingSpeaker()
        self.clock = FakeClock(0.0)
        self.spill = SpillFile(run_dir / "held-results-p-0001.jsonl")
        self.publisher = ResultPublisher("p-0001", self.outbox, send_live=lambda e: True, clock=self.clock,
                                         spill=self.spill)
        self.produced: list[str] = []  # ids of the results stored, as they were
        self.publisher.on_stored.append(lambda kind, envelope: self.produced.append(envelope.message_id))
        self.timebase = Timebase(monotonic=lambda: 0.0, wall=lambda: 1.7e9)
        self.engine = SessionEngine(
            sensor_sides=["right"], publisher=self.publisher, voice=Voice(self.speaker), timebase=self.timebase,
            settings=SessionConfig(recognition=False), prescription=prescription,
            state=SessionStateStore(outbox=self.outbox, held=self.publisher.held_state))

    def feed(self, t, acc, gyr, start=0, stop=None):
        from tests.service.test_engine import blocks

        for block in blocks(t[start:stop], acc[start:stop], gyr[start:stop]):
            self.clock.t = float(block.t_s[-1])
            self.engine.on_samples(0, block)
            self.engine.tick()

    def messages(self):
        return [parse_message(r.topic, r.payload) for r in self.outbox.pending(limit=10_000)]


def _power_cut(state_dir, to):
    """The card as a power cut leaves it: its files copied as they are, the process's connection
    left open (no close, no checkpoint); -shm is RAM-like state SQLite rebuilds from the WAL."""
    to.mkdir()
    for name in ("outbox.sqlite", "outbox.sqlite-wal"):
        if (state_dir / name).exists():
            shutil.copyfile(state_dir / name, to / name)
    return to


def _full_card_then_power_cut(tmp_path, uci, reserve_bytes):
    """Set 1 counted, the card filled (ENOSPC), sets 1-2 counted on the full card, then the power
    cut; the copy of the card comes back with room and the session goes on to its end. Returns
    (the rig before the cut, the ids it had stored, the rig after)."""
    t, acc, gyr = uci
    with small_card(tmp_path / "card", "6m") as card:
        state_dir = card / "state"
        rig = _CardRig(state_dir, tmp_path / "run", rx(), reserve_bytes=reserve_bytes)
        a, b = (int(np.searchsorted(t, s)) for s in (40.0, 100.0))
        rig.feed(t, acc, gyr, stop=a)
        stored_before_full = len(rig.produced)
        fill(card)
        assert is_full(card)  # not one more byte fits
        rig.feed(t, acc, gyr, start=a, stop=b)  # counted on the full card
        assert len(rig.produced) + rig.publisher.held > stored_before_full + 5  # results came meanwhile
        copy = _power_cut(state_dir, tmp_path / "after")
    # The RAM is gone: the process's memory and the spill file on /run/hipsense.
    shutil.rmtree(tmp_path / "run", ignore_errors=True)
    again = _CardRig(copy, tmp_path / "run", rx(), reserve_bytes=0)
    return rig, again


def test_results_counted_on_a_full_card_are_saved_in_its_reserve_and_survive_a_power_cut(tmp_path, uci, caplog):
    """Before the reserve, the results counted on the full card waited in memory and in the
    RAM-backed spill file: the power cut lost them (the control test below: the same run
    without a reserve). Now the first write the card refuses releases the reserve and is tried
    again into its room: nothing waits in memory, all is in the outbox on the card."""
    t, acc, gyr = uci
    with caplog.at_level(logging.ERROR):
        rig, again = _full_card_then_power_cut(tmp_path, uci, 2 * MIB)
    assert rig.publisher.held == 0 and rig.publisher.failed == 0  # nothing waited in memory ...
    assert not rig.spill.path.exists()  # ... nor in the spill file
    assert rig.reserve.status == "in_use"
    released = [r for r in caplog.records if "reserve" in r.getMessage() and "given to the outbox" in r.getMessage()]
    assert len(released) == 1 and released[0].levelno == logging.ERROR  # loud, once
    assert [m.message_id for m in again.messages()] == rig.produced  # every one stored is on the card
    again.feed(t, acc, gyr, start=int(np.searchsorted(t, 100.0)))
    _rest(again, t, acc)
    _whole_session(again.messages())  # 30 reps, sets [10, 10, 10], seq 1..N, each id once


def test_without_a_reserve_the_same_power_cut_loses_what_the_full_card_could_not_take(tmp_path, uci):
    """The control: the scenario above really fills the card (results wait outside the outbox),
    and without a reserve the power cut loses them (the behaviour before the reserve)."""
    t, acc, gyr = uci
    rig, again = _full_card_then_power_cut(tmp_path, uci, 0)
    held = rig.publisher.held
    assert held > 5 and rig.reserve.status is None
    on_card = again.messages()
    assert [m.message_id for m in on_card] == rig.produced  # only what was stored before the card filled
    again.feed(t, acc, gyr, start=int(np.searchsorted(t, 100.0)))
    _rest(again, t, acc)
    reps = [m for m in again.messages() if m.kind is MessageKind.REP]
    assert len(reps) < 30  # the held ones are gone


@pytest.mark.parametrize("before", [0, 30, 150])  # the WAL fresh, growing, past a checkpoint (at its largest)
def test_the_write_the_full_card_refuses_is_retried_into_the_reserve_whatever_the_wal(tmp_path, before):
    """A transaction needs room for its WAL frames (and the checkpoint for the database's growth):
    releasing the reserve makes the retry succeed whatever the WAL's size when the card filled,
    the row is on the card (read by another connection), and once the reserve's room is used
    up too the error says ``full`` (the caller holds the result) without releasing twice."""
    from hipsense.protocol import build_rep_event

    def rep(seq):
        return build_rep_event("p-0001", seq=seq, session_id="01JQ7Z8K3M4N5P6Q7R8S9T0V1W", exercise="clam_shells",
                               side="left", set_index=1, rep_index=1, t_start=1.7e9, t_end=1.7e9 + 2, rom_deg=30.0,
                               hold_s=1.0, peak_speed_dps=50.0, duration_s=2.0, flags=())

    state = {"session": b"x" * 600}
    with small_card(tmp_path / "card", "8m") as card:
        reserve = CardReserve(card / "outbox.reserve", 1 * MIB)
        reserve.ensure()
        outbox = Outbox(card / "outbox.sqlite")
        asked = []
        outbox.on_full = lambda exc: asked.append(exc) or reserve.release(exc)
        for _ in range(before):
            outbox.put_sequenced("p-0001", rep, state=state)
        fill(card)
        saved = 0
        while not asked:  # a WAL past a checkpoint is written over in place: the card refuses a later write
            outbox.put_sequenced("p-0001", rep, state=state)  # never raises: the refused one is tried again
            saved += 1
            assert saved < 5_000
        assert reserve.status == "in_use" and not (card / "outbox.reserve").exists()
        assert len(asked) == 1 and asked[0].full and not asked[0].corrupt
        with pytest.raises(OutboxError) as refused:
            for _ in range(100_000):
                outbox.put_sequenced("p-0001", rep, state=state)
                saved += 1
        assert refused.value.full and not refused.value.corrupt and len(asked) == 2  # asked again, nothing to give
        reader = sqlite3.connect(f"file:{card / 'outbox.sqlite'}?mode=ro", uri=True)
        try:
            assert reader.execute("SELECT COUNT(*), MAX(seq) FROM outbox").fetchone() == (before + saved, before + saved)
        finally:
            reader.close()
        assert saved >= 20 and outbox.last_sequence("p-0001") == before + saved  # 1 MiB: ~27 reps while the WAL grows, thousands once it is at its largest
        outbox.close()


def test_the_reserve_has_real_blocks_and_is_made_again_only_with_room_for_it_twice(tmp_path, monkeypatch, caplog):
    with small_card(tmp_path / "card", "3m") as card:
        path = card / "outbox.reserve"
        reserve = CardReserve(path, 512 * KIB)
        assert reserve.ensure() and reserve.status is None
        assert path.stat().st_size == 512 * KIB and path.stat().st_blocks * 512 >= 512 * KIB  # not sparse
        filler = fill(card)
        with caplog.at_level(logging.ERROR):
            assert reserve.release() is True and reserve.status == "in_use" and not path.exists()
            assert reserve.release() is False  # nothing more to give
        assert "given to the outbox" in caplog.text and not is_full(card)  # its room is free
        assert not reserve.ensure() and reserve.status == "in_use"  # the room is there, but not twice over
        filler.unlink()
        fd = os.open(card / "other", os.O_WRONLY | os.O_CREAT, 0o600)  # leave 700 KiB: more than it, not twice
        os.posix_fallocate(fd, 0, 3 * MIB - 700 * KIB)
        os.close(fd)
        assert not reserve.ensure() and reserve.status == "in_use"
        (card / "other").unlink()
        with caplog.at_level(logging.WARNING):
            assert reserve.ensure() and reserve.status is None  # made again
        assert "made again" in caplog.text and path.stat().st_blocks * 512 >= 512 * KIB


def test_the_reserve_is_written_out_where_it_cannot_be_allocated_and_a_sparse_one_is_replaced(tmp_path, monkeypatch):
    with small_card(tmp_path / "card", "3m") as card:
        path = card / "outbox.reserve"
        with open(path, "wb") as f:
            f.truncate(512 * KIB)  # the right size, no blocks: reserves nothing
        assert path.stat().st_blocks == 0

        def unsupported(fd, offset, length):
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")

        monkeypatch.setattr(os, "posix_fallocate", unsupported)
        reserve = CardReserve(path, 512 * KIB)
        assert reserve.ensure() and reserve.status is None
        assert path.stat().st_size == 512 * KIB and path.stat().st_blocks * 512 >= 512 * KIB  # zeros written


def test_a_card_without_room_for_the_reserve_at_start_up_says_so(tmp_path, caplog):
    with small_card(tmp_path / "card", "3m") as card:
        fd = os.open(card / "other", os.O_WRONLY | os.O_CREAT, 0o600)
        os.posix_fallocate(fd, 0, 2 * MIB + 512 * KIB)  # 512 KiB left: the reserve, not twice over
        os.close(fd)
        reserve = CardReserve(card / "outbox.reserve", 512 * KIB)
        with caplog.at_level(logging.ERROR):
            assert not reserve.ensure() and not reserve.ensure()
        assert reserve.status == "missing" and not (card / "outbox.reserve").exists()
        assert caplog.text.count("no reserve") == 1  # once, not every minute
        assert reserve.release() is False  # nothing to give: the write fails as before


def test_no_reserve_configured_is_never_reported_and_one_made_before_is_removed(tmp_path):
    assert CardReserve(tmp_path / "outbox.reserve", 64 * KIB).ensure()
    reserve = CardReserve(tmp_path / "outbox.reserve", 0)
    assert not reserve.ensure() and reserve.status is None and not reserve.release()
    assert not (tmp_path / "outbox.reserve").exists()


def test_the_status_says_card_reserve_while_the_reserve_is_not_in_place(tmp_path, uci):
    """Stored through the outbox (the reserve's room takes it): ``card_reserve: "in_use"``; once
    the reserve is made again, a status without the field."""
    from hipsense.service.service import store_status

    t, acc, gyr = uci
    with small_card(tmp_path / "card", "6m") as card:
        rig = _CardRig(card / "state", tmp_path / "run", rx(), reserve_bytes=1 * MIB)

        def status():
            store_status(rig.outbox, "p-0001", rig.engine, rig.timebase, notify=lambda: None,
                         publisher=rig.publisher, reserve=rig.reserve)
            return [m.data for m in rig.messages() if m.kind is MessageKind.STATUS][-1]

        assert "card_reserve" not in status()
        filler = fill(card)
        rig.feed(t, acc, gyr, stop=int(np.searchsorted(t, 40.0)))
        assert rig.reserve.status == "in_use" and rig.publisher.held == 0
        assert status()["card_reserve"] == "in_use"
        filler.unlink()
        assert rig.reserve.ensure()
        assert "card_reserve" not in status()
        rig.outbox.close()


def test_the_housekeeping_tells_when_the_reserve_is_given_and_makes_it_again_when_it_fits(tmp_path, monkeypatch):
    """A status when a write gives the reserve to the outbox, and when the housekeeping makes it
    again (checked every RESERVE_CHECK_S while it is not in place; here there is room)."""
    import asyncio
    import time

    import hipsense.service.service as service_module
    from hipsense.service.service import Service

    monkeypatch.setattr(service_module, "RESERVE_CHECK_S", 0.3)
    reserve = CardReserve(tmp_path / "outbox.reserve", 64 * KIB)
    assert reserve.ensure()
    submitted = []

    class Worker:
        alive, heartbeat = True, time.monotonic()

        def submit(self, kind, payload=None):
            submitted.append((kind, reserve.status))

    class Client:
        sender = None

        def is_connected(self):
            return False

    async def scenario():
        task = asyncio.create_task(Service(None, environ={})._housekeeping(Worker(), Client(), None, "p-0001",
                                                                          None, reserve))
        await asyncio.sleep(0.2)
        assert submitted == []  # in place: nothing to tell
        assert reserve.release()  # a write found the card full
        for _ in range(40):
            await asyncio.sleep(0.1)
            if reserve.status is None:
                break
        await asyncio.sleep(1.2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    assert submitted[:2] == [("status", "in_use"), ("status", None)]
    assert (tmp_path / "outbox.reserve").stat().st_blocks * 512 >= 64 * KIB


def test_a_start_on_a_full_card_opens_the_outbox_in_the_reserve(tmp_path):
    """After a clean stop SQLite makes the outbox's -shm index again when it opens it; a full card
    refuses that (SQLITE_IOERR_SHMSIZE, measured) and, without room, the service cannot start at
    all. With the reserve left from the run before, it opens, and takes results."""
    from hipsense.protocol import build_rep_event
    from hipsense.publish import open_outbox
    from hipsense.service.service import open_outbox_with_reserve

    def rep(seq):
        return build_rep_event("p-0001", seq=seq, session_id="01JQ7Z8K3M4N5P6Q7R8S9T0V1W", exercise="clam_shells",
                               side="left", set_index=1, rep_index=1, t_start=1.7e9, t_end=1.7e9 + 2, rom_deg=30.0,
                               hold_s=1.0, peak_speed_dps=50.0, duration_s=2.0, flags=())

    with small_card(tmp_path / "card", "3m") as card:
        outbox, reserve = open_outbox_with_reserve(card, 512 * KIB)
        outbox.put_sequenced("p-0001", rep)
        outbox.close()  # a clean stop: -wal and -shm removed
        fill(card)
        with pytest.raises(OutboxError) as refused:
            open_outbox(card / "outbox.sqlite")  # without the reserve's room the start fails, as before it
        assert refused.value.full
        outbox, reserve = open_outbox_with_reserve(card, 512 * KIB)
        assert reserve.status == "in_use"
        _, envelope = outbox.put_sequenced("p-0001", rep)
        assert envelope.seq == 2
        outbox.close()
