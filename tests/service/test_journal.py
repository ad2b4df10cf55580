"""The raw-sample journal (service/journal.py): what a restarted engine replays.

The engine tests kill an engine (thrown away, only its files kept) at points all through the
real UCI recording (straight-leg raise, 3 x 10) and start a new one on the same files, as
systemd does after a SIGKILL; the real-process test is test_crash_mid_rep.py.
"""

from __future__ import annotations

import collections
import logging
import os

import numpy as np
import pytest

from hipsense.protocol import MessageKind
from hipsense.service.journal import SampleJournal, default_journal_path
from hipsense.service.timebase import Timebase
from tests.service.test_crash_windows import _crash_after, _feed_until_crash
from tests.service.test_engine import PATIENT, Rig, rx


@pytest.fixture
def uci(uci_s1_e3):
    t, acc, gyr = uci_s1_e3
    return np.asarray(t, float), np.asarray(acc, float), np.asarray(gyr, float)


def _rest(t, acc):
    return t[-1] + 0.04 * np.arange(1, 750), np.repeat(acc[-1:], 749, 0), np.zeros((749, 3))  # 30 s still


def _whole(rig) -> None:
    """Every rep of the recording once, in three sets of ten, no seq missing."""
    messages = rig.messages()
    reps = [m for m in messages if m.kind is MessageKind.REP]
    keys = collections.Counter((m.data["session_id"], m.data["set_index"], m.data["rep_index"]) for m in reps)
    assert [k for k, n in keys.items() if n > 1] == []
    assert [(m.data["set_index"], m.data["reps"]) for m in messages if m.kind is MessageKind.SET] == [
        (1, 10), (2, 10), (3, 10)]
    assert [(m.data["set_index"], m.data["rep_index"]) for m in reps] == [
        (s, r) for s in (1, 2, 3) for r in range(1, 11)]
    assert [m.seq for m in messages] == list(range(1, len(messages) + 1))
    assert len({m.data["session_id"] for m in messages}) == 1


# in a rep of set 1 (its last), 2 and 3 (each lost before the journal: 29 reps), and in a rest
@pytest.mark.parametrize("kill_s", [75.7, 119.5, 163.3, 185.2, 90.0])
def test_a_kill_mid_rep_loses_nothing_with_the_journal(tmp_path, uci, kill_s, caplog):
    t, acc, gyr = uci
    cut = int(np.searchsorted(t, kill_s))
    first = Rig(tmp_path, rx(), journal=True)
    first.feed(t, acc, gyr, stop=cut)
    first.outbox.close()  # SIGKILL: no flush; the files stay
    with caplog.at_level(logging.INFO, "hipsense.service.engine"):
        second = Rig(tmp_path, rx(), journal=True, now=t[cut])
    assert any("replayed the sample journal" in r.message for r in caplog.records)
    second.feed(t, acc, gyr, start=cut)
    second.feed(*_rest(t, acc))
    _whole(second)


def test_without_the_journal_the_rep_in_progress_is_lost(tmp_path, uci):
    """What the journal is for (the same kill as above, at 119.5 s, in set 2's fifth rep)."""
    t, acc, gyr = uci
    cut = int(np.searchsorted(t, 119.5))
    first = Rig(tmp_path, rx())
    first.feed(t, acc, gyr, stop=cut)
    first.outbox.close()
    second = Rig(tmp_path, rx())
    second.feed(t, acc, gyr, start=cut)
    second.feed(*_rest(t, acc))
    assert len(second.of(MessageKind.REP)) == 29


# right after the commit of: the first rep, a rep mid-set, set 1's close, set 2's close, set 3's first rep
@pytest.mark.parametrize("crash_at", [1, 5, 11, 22, 23])
def test_a_crash_right_after_a_commit_replays_nothing_twice(tmp_path, uci, crash_at):
    t, acc, gyr = uci
    first = Rig(tmp_path, rx(), journal=True)
    _crash_after(first, crash_at)
    resume_at = _feed_until_crash(first, t, acc, gyr)
    first.outbox.close()
    second = Rig(tmp_path, rx(), journal=True, now=t[resume_at - 1])
    second.feed(t, acc, gyr, start=resume_at)
    second.feed(*_rest(t, acc))
    _whole(second)


def test_twice_killed_the_journal_goes_on_across_both(tmp_path, uci):
    t, acc, gyr = uci
    a, b = int(np.searchsorted(t, 117.0)), int(np.searchsorted(t, 119.5))  # both in set 2's fifth rep
    first = Rig(tmp_path, rx(), journal=True)
    first.feed(t, acc, gyr, stop=a)
    first.outbox.close()
    second = Rig(tmp_path, rx(), journal=True, now=t[a])
    second.feed(t, acc, gyr, start=a, stop=b)
    second.outbox.close()
    third = Rig(tmp_path, rx(), journal=True, now=t[b])
    third.feed(t, acc, gyr, start=b)
    third.feed(*_rest(t, acc))
    _whole(third)


def test_a_journal_too_old_is_not_replayed(tmp_path, uci, caplog):
    t, acc, gyr = uci
    cut = int(np.searchsorted(t, 119.5))
    first = Rig(tmp_path, rx(), journal=True)
    first.feed(t, acc, gyr, stop=cut)
    first.outbox.close()
    with caplog.at_level(logging.INFO, "hipsense.service"):
        second = Rig(tmp_path, rx(), journal=True, now=t[cut] + 400.0)  # down for 400 s
    assert any("not replayed: its last sample is 400 s old" in r.getMessage() for r in caplog.records)
    assert not any("replayed the sample journal" in r.message for r in caplog.records)
    assert second.engine.channels[0].tracker is None


def test_an_unwritable_journal_is_logged_once_and_counting_goes_on(tmp_path, uci, caplog):
    t, acc, gyr = uci
    rig = Rig(tmp_path, rx(), journal=True)
    (tmp_path / "blocker").write_text("")
    rig.journal.files = (tmp_path / "blocker" / "j.0", tmp_path / "blocker" / "j.1")  # under a file: ENOTDIR
    with caplog.at_level(logging.ERROR, "hipsense.service.journal"):
        rig.feed(t, acc, gyr)
        rig.feed(*_rest(t, acc))
    assert len([r for r in caplog.records if "switched off" in r.message]) == 1
    assert not rig.journal.enabled
    assert len(rig.of(MessageKind.REP)) == 30


# -- the file itself ------------------------------------------------------------------------------

def _journal(tmp_path, clock, **kw) -> SampleJournal:
    return SampleJournal(tmp_path / "j", patient=PATIENT, timebase=Timebase(monotonic=lambda: clock[0]),
                         boot="boot-1", **kw)


def _write(journal: SampleJournal, seconds: float, *, start: float = 0.0, rate: float = 100.0,
           batch: int = 10) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = start + np.arange(int(seconds * rate)) / rate
    acc, gyr = rng.normal(size=(len(t), 3)), rng.normal(size=(len(t), 3))
    for a in range(0, len(t), batch):
        journal.append(0, t[a:a + batch], acc[a:a + batch], gyr[a:a + batch])
    return t


def test_what_is_journaled_comes_back_exactly(tmp_path):
    clock = [0.0]
    writer = _journal(tmp_path, clock)
    t = _write(writer, 30.0)
    clock[0] = t[-1] + 2.0
    batches = _journal(tmp_path, clock).load()
    assert np.array_equal(np.concatenate([b.t_s for b in batches]), t)
    assert all(b.gyr_rad_s is not None and b.acc_ms2.shape == (len(b.t_s), 3) for b in batches)
    for path in writer.files[:1]:
        assert os.stat(path).st_mode & 0o777 == 0o600


def test_the_journal_stays_bounded(tmp_path):
    clock = [0.0]
    writer = _journal(tmp_path, clock, span_s=60.0)
    t = _write(writer, 600.0)  # ten minutes at 100 Hz
    clock[0] = t[-1]
    batches = _journal(tmp_path, clock, span_s=60.0).load()
    kept = np.concatenate([b.t_s for b in batches])
    assert 60.0 <= kept[-1] - kept[0] <= 120.0 and kept[-1] == t[-1]
    assert sum(p.stat().st_size for p in writer.files) < 2 * 60.5 * 100 * 7 * 8 + 20_000  # 2 x 60 s of samples


def test_a_damaged_journal_is_read_up_to_the_damage(tmp_path, caplog):
    clock = [0.0]
    writer = _journal(tmp_path, clock)
    t = _write(writer, 10.0)
    clock[0] = t[-1]
    data = bytearray(writer.files[0].read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped byte in the middle
    writer.files[0].write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, "hipsense.service.journal"):
        batches = _journal(tmp_path, clock).load()
    assert 0 < sum(len(b.t_s) for b in batches) < len(t) / 2 + 10
    assert any("damaged at byte" in r.getMessage() and "the rest is ignored" in r.getMessage() for r in caplog.records)
    # torn at the end (a kill mid-write): everything before the torn record
    writer.files[0].write_bytes(writer.files[0].read_bytes()[:-5])
    caplog.clear()
    with caplog.at_level(logging.WARNING, "hipsense.service.journal"):
        _journal(tmp_path, clock).load()
    assert any("damaged at byte" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("change", "message"), [
    ({"patient": "p-0002"}, "another patient's"),
    ({"boot": "boot-2"}, "from another boot"),
    ({"scale": 20.0}, "replayed at 1.0x, not 20.0x"),
    ({"garbage": True}, "not a sample journal"),
])
def test_a_journal_of_another_session_is_ignored(tmp_path, caplog, change, message):
    clock = [0.0]
    t = _write(_journal(tmp_path, clock), 5.0)
    clock[0] = t[-1]
    if change.get("garbage"):
        (tmp_path / "j.0").write_bytes(b"{}\n" + os.urandom(100))
    reader = SampleJournal(tmp_path / "j", patient=change.get("patient", PATIENT), boot=change.get("boot", "boot-1"),
                           timebase=Timebase(change.get("scale", 1.0), monotonic=lambda: clock[0]))
    with caplog.at_level(logging.WARNING, "hipsense.service.journal"):
        assert reader.load() == []
    assert any("ignoring sample journal" in r.getMessage() and message in r.getMessage() for r in caplog.records), \
        [r.getMessage() for r in caplog.records]


def test_a_symlink_or_a_shared_file_is_refused(tmp_path, caplog):
    clock = [0.0]
    (tmp_path / "elsewhere").write_bytes(b"")
    os.symlink(tmp_path / "elsewhere", tmp_path / "j.0")
    journal = _journal(tmp_path, clock)
    with caplog.at_level(logging.ERROR, "hipsense.service.journal"):
        _write(journal, 1.0)
    assert not journal.enabled and (tmp_path / "elsewhere").read_bytes() == b""
    os.unlink(tmp_path / "j.0")
    (tmp_path / "j.0").write_bytes(b"")
    os.chmod(tmp_path / "j.0", 0o666)
    journal = _journal(tmp_path, clock)
    _write(journal, 1.0)
    assert not journal.enabled


def test_the_journal_lives_where_the_spill_file_does(tmp_path):
    assert default_journal_path("p-1", tmp_path / "o.sqlite", {"RUNTIME_DIRECTORY": "/run/hipsense"}).parent.as_posix() \
        == "/run/hipsense"
    a = default_journal_path("p-1", tmp_path / "a.sqlite", {"XDG_RUNTIME_DIR": str(tmp_path)})
    b = default_journal_path("p-1", tmp_path / "b.sqlite", {"XDG_RUNTIME_DIR": str(tmp_path)})
    assert a != b and a.parent == tmp_path
