"""The outbox file goes bad while the service runs (a failing SD card): the next write finds
it, the file is set aside and replaced in place, what can be read back is kept, and the
counting goes on with the same session and numbering; nothing escapes to stop the thread."""

from __future__ import annotations

import logging
import sqlite3

import numpy as np
import pytest

from hipsense.protocol import MessageKind
from tests.service.test_crash_windows import _check_whole
from tests.service.test_engine import Rig, rx


def _damage(rig: Rig, name: str) -> None:
    """Garbage over the root page of table or index ``name``, as the card returns it from now on."""
    box = rig.outbox
    with box._lock:
        box._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = box._db.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]
        box._db.close()
        data = bytearray(box.path.read_bytes())
        data[(page - 1) * 4096:page * 4096] = bytes((i * 7 + 13) % 256 for i in range(4096))
        box.path.write_bytes(bytes(data))
        box._db = sqlite3.connect(box.path, isolation_level=None, check_same_thread=False)


@pytest.fixture
def uci(uci_s1_e3):
    t, acc, gyr = uci_s1_e3
    return np.asarray(t, float), np.asarray(acc, float), np.asarray(gyr, float)


def _whole_session(rig: Rig, t, acc, gyr, damage: str, caplog) -> None:
    a = int(np.searchsorted(t, 100.0))  # in set 2
    rig.feed(t, acc, gyr, stop=a)
    session_id = rig.engine.session_id
    _damage(rig, damage)
    with caplog.at_level(logging.ERROR):
        rig.feed(t, acc, gyr, start=a)
        rig.feed(t[-1] + 0.04 * np.arange(1, 750), np.repeat(acc[-1:], 749, 0), np.zeros((749, 3)))  # rest 30 s
    assert "was corrupt" in caplog.text
    assert rig.publisher.held == 0 and rig.publisher.failed == 0
    assert rig.outbox.check_integrity() == "ok"
    assert sorted(p.name for p in rig.outbox.path.parent.iterdir() if ".corrupt-" in p.name)[0].startswith(
        "outbox.sqlite.corrupt-")
    after = [m for m in rig.messages() if m.data.get("session_id") == session_id]
    assert [m.data["set_index"] for m in after if m.kind is MessageKind.SET][-1] == 3  # the numbering went on
    (summary,) = [m for m in after if m.kind is MessageKind.SESSION]
    assert summary.data["exercises"][0]["reps"] == 30


def test_a_damaged_index_found_while_running_loses_nothing(tmp_path, uci, caplog):
    rig = Rig(tmp_path, rx())
    _whole_session(rig, *uci, damage="outbox_by_importance", caplog=caplog)
    messages = rig.messages()
    assert [m.seq for m in messages] == list(range(1, 35))  # every result, the old ones read back
    _check_whole(messages)
    assert "nothing is lost" in caplog.text


def test_a_damaged_table_found_while_running_keeps_counting_above_the_old_numbers(tmp_path, uci, caplog):
    rig = Rig(tmp_path, rx())
    _whole_session(rig, *uci, damage="outbox", caplog=caplog)
    seqs = [m.seq for m in rig.messages()]  # the results before the damage are in the kept file only
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) and seqs[0] > 10**12
    assert "could not be read back" in caplog.text
