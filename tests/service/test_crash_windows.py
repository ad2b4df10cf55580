"""A crash at the worst moment: right after a result was committed to the outbox.

The engine numbers each rep (set, rep), stores the message in the outbox and keeps the
session's tallies for a restart. If the tallies are saved in a second step, a crash between
the two makes the restarted service number the next rep (or set) the same as the one already
stored: the dashboard gets the same (session, set, rep) twice, under two message ids. Both
must be on disk in one transaction.

The crash is simulated in-process (an exception nobody catches, thrown right after the
outbox's commit; the engine and its memory are then thrown away, only the files remain) at
every kind of result, and once for real (``os._exit`` in a subprocess).
"""

from __future__ import annotations

import collections
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hipsense.protocol import MessageKind
from tests.service.test_engine import Rig, rx

REPO = Path(__file__).resolve().parents[2]


class Crash(BaseException):
    """The power cut: nothing may catch it."""


def _crash_after(rig: Rig, commits: int) -> list[int]:
    """Make the ``commits``-th committed sequenced result the last thing the process does;
    return a list that records the seq of each commit."""
    done: list[int] = []
    put = rig.outbox.put_sequenced

    def put_then_die(*args, **kwargs):
        row_id, envelope = put(*args, **kwargs)
        done.append(envelope.seq)
        if len(done) == commits:
            raise Crash(envelope.kind.value)
        return row_id, envelope

    rig.outbox.put_sequenced = put_then_die  # type: ignore[method-assign]
    return done


def _feed_until_crash(rig: Rig, t, acc, gyr) -> int:
    """Feed until the crash; return the index of the first sample not processed."""
    from tests.service.fakes import blocks

    at = 0
    for block in blocks(t, acc, gyr):
        at += block.n
        rig.clock.t = float(block.t_s[-1])
        try:
            rig.engine.on_samples(0, block)
            rig.engine.tick()
        except Crash:
            return at
    raise AssertionError("the crash never came")


def _check_whole(messages) -> None:
    """Each (session, set, rep) and (session, set) once; every count agrees with the reps sent."""
    reps = [m for m in messages if m.kind is MessageKind.REP]
    sets = [m for m in messages if m.kind is MessageKind.SET]
    keys = collections.Counter((m.data["session_id"], m.data["set_index"], m.data["rep_index"]) for m in reps)
    assert [k for k, n in keys.items() if n > 1] == []
    set_keys = collections.Counter((m.data["session_id"], m.data["set_index"]) for m in sets)
    assert [k for k, n in set_keys.items() if n > 1] == []
    by_set = collections.Counter((m.data["session_id"], m.data["set_index"]) for m in reps)
    for s in sets:  # a set counts exactly the reps that were sent for it
        assert s.data["reps"] == by_set[(s.data["session_id"], s.data["set_index"])], s.data
    for set_key in by_set:  # and no rep belongs to a set that was never closed
        assert set_key in set_keys, set_key
    per_set = collections.defaultdict(list)
    for m in reps:
        per_set[(m.data["session_id"], m.data["set_index"])].append(m.data["rep_index"])
    for indices in per_set.values():  # numbered 1..n without a gap
        assert sorted(indices) == list(range(1, len(indices) + 1))
    summaries = [m for m in messages if m.kind is MessageKind.SESSION]
    assert len({m.data["session_id"] for m in summaries}) == len(summaries)  # one summary a session
    for summary in summaries:
        session_reps = sum(1 for m in reps if m.data["session_id"] == summary.data["session_id"])
        assert summary.data["exercises"][0]["reps"] == session_reps


@pytest.fixture
def uci(uci_s1_e3):
    t, acc, gyr = uci_s1_e3
    return np.asarray(t, float), np.asarray(acc, float), np.asarray(gyr, float)


# seq of the message after which the process dies: 1 the first rep (the session is born),
# 5 a rep mid-set, 11 set 1's close, 22 set 2's close, 23 the first rep of set 3, 34 the summary
@pytest.mark.parametrize("crash_at", [1, 5, 11, 22, 23, 34])
def test_a_crash_right_after_a_commit_neither_renumbers_nor_loses_a_result(tmp_path, uci, crash_at):
    t, acc, gyr = uci
    first = Rig(tmp_path, rx())
    _crash_after(first, crash_at)
    if crash_at < 34:
        resume_at = _feed_until_crash(first, t, acc, gyr)
    else:  # the summary comes at the end of the recording's rest
        rest = (t[-1] + 0.04 * np.arange(1, 750), np.repeat(acc[-1:], 749, 0), np.zeros((749, 3)))
        first.feed(t, acc, gyr)
        resume_at = None
        with pytest.raises(Crash):
            first.feed(*rest)
    session_id = first.engine.session_id
    first.outbox.close()  # the process is gone; its files stay

    second = Rig(tmp_path, rx())
    if resume_at is not None:
        assert second.engine.session_id == session_id  # the restart continues the session
        second.feed(t, acc, gyr, start=resume_at)
    second.engine.shutdown()
    messages = second.messages()
    assert [m.seq for m in messages] == list(range(1, len(messages) + 1))  # nothing lost
    _check_whole(messages)
    assert len([m for m in messages if m.kind is MessageKind.SESSION]) == 1
    if resume_at is None:  # the session was over: the restart does not start it again
        assert second.engine.session_id is None


def test_os_exit_right_after_the_commit_in_a_real_process(tmp_path, uci):
    """The same with a real process death (no finally, no atexit), twice in one session."""
    script = textwrap.dedent(f"""
        import os, sys
        import numpy as np
        from pathlib import Path
        sys.path.insert(0, {str(REPO)!r})
        from tests.service.test_engine import Rig, rx
        from hipsense.evaluation.uci import read_uci_file
        from tests.conftest import DATA
        t, acc, gyr = (np.asarray(a, float) for a in read_uci_file(DATA / "uci-pt/s1/e3/u3/test.txt.gz"))
        start, die_at = int(sys.argv[1]), int(sys.argv[2])
        rig = Rig(Path({str(tmp_path)!r}), rx())
        put = rig.outbox.put_sequenced
        def put_then_die(*a, **k):
            out = put(*a, **k)
            if out[1].seq == die_at:
                print(processed[0], flush=True)
                os._exit(9)
            return out
        rig.outbox.put_sequenced = put_then_die
        processed = [start]
        from tests.service.fakes import blocks
        for block in blocks(t[start:], acc[start:], gyr[start:]):
            processed[0] += block.n
            rig.clock.t = float(block.t_s[-1])
            rig.engine.on_samples(0, block)
        rig.engine.shutdown()
        print("done", flush=True)
    """)
    start = "0"
    for die_at in ("6", "15", "0"):  # a rep in set 1, a rep in set 2, then to the end
        run = subprocess.run([sys.executable, "-c", script, start, die_at], capture_output=True, text=True,
                             cwd=REPO, timeout=120)
        if die_at != "0":
            assert run.returncode == 9, run.stderr
            start = run.stdout.split()[-1]
        else:
            assert run.returncode == 0 and run.stdout.split()[-1] == "done", run.stderr
    rig = Rig(tmp_path, rx())
    messages = rig.messages()
    assert [m.seq for m in messages] == list(range(1, len(messages) + 1))
    _check_whole(messages)
    assert len({m.data["session_id"] for m in messages}) == 1


def test_a_session_json_of_the_previous_version_is_moved_into_the_outbox(tmp_path, uci):
    from hipsense.publish import Outbox
    from hipsense.service.state import SessionStateStore

    t, acc, gyr = uci
    half = int(np.searchsorted(t, 120.0))
    (tmp_path / "old").mkdir()
    old = Rig(tmp_path / "old", rx(), state=False)  # the previous version: the state in a file
    old.engine.state = SessionStateStore(tmp_path / "old" / "session.json")
    old.feed(t, acc, gyr, stop=half)
    session_id, numbered = old.engine.session_id, len(old.of(MessageKind.REP))
    assert (tmp_path / "old" / "session.json").exists()
    old.outbox.close()

    with Outbox(tmp_path / "old" / "outbox.sqlite") as outbox:
        store = SessionStateStore(tmp_path / "old" / "session.json", outbox=outbox)
        assert not (tmp_path / "old" / "session.json").exists()
        assert store.atomic and store.load()["session_id"] == session_id
    new = Rig(tmp_path / "old", rx())
    assert new.engine.session_id == session_id
    new.feed(t, acc, gyr, start=half)
    new.engine.shutdown()
    _check_whole(new.messages())
    assert len(new.of(MessageKind.REP)) > numbered
