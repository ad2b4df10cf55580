"""End to end: ``hipsense run`` is killed (SIGKILL) in the middle of a rep while an emulated
sensor replays a real recording, systemd starts it again, and the sensor goes on where it was.
Every rep of the recording must reach the dashboard exactly once, numbered on in the same set.

The recording is the first 40 s of UCI subject 1, exercise 3 (straight-leg raise, 5 s holds:
five reps), replayed at real speed (at 20x the restart's second or two of real time would be
a minute of sample time: no rep lasts through that). The first process replays it up to 19.5 s,
just after rep 3's raise, and is killed once it has processed that; the second replays the
rest (the sensor kept streaming, as a real one does, but in this test nothing is lost while
no one listens: the time the restart takes is a gap in the samples). Before the sample
journal (service/journal.py) the restarted tracker never saw rep 3's raise and did not count
it: 4 reps of 5.
"""

from __future__ import annotations

import collections
import time
from pathlib import Path

import numpy as np
import pytest

from hipsense import protocol as p
from hipsense.protocol import MessageKind
from tests.service.conftest import PATIENT, Dashboard, prescription, wait_until

pytestmark = pytest.mark.slow

END_S, KILL_S = 40.0, 19.5


def _write_csv(path: Path, t: np.ndarray, acc: np.ndarray, gyr: np.ndarray) -> Path:
    rows = np.column_stack([t - t[0], acc, gyr])
    np.savetxt(path, rows, delimiter=",", fmt="%.17g", header="t_s,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z", comments="")
    return path


def _streamed(service, seconds: float) -> None:
    """Wait until ``service``'s sensor has streamed ``seconds`` since it connected (at real speed,
    sample time is real time), and a little more for the processing to catch up. Then the
    emulator repeats its recording's last sample: a leg held still."""
    wait_until(lambda: service.logged("sensor connected"), 60, "the sensor's connection")
    time.sleep(seconds + 0.3)


def test_a_rep_in_progress_at_sigkill_is_counted_after_the_restart(broker, service_factory, tmp_path, uci_s1_e3):
    from tests.service.test_engine import Rig, rx

    t, acc, gyr = (np.asarray(a, float) for a in uci_s1_e3)
    end, cut = int(np.searchsorted(t, END_S)), int(np.searchsorted(t, KILL_S))
    # what the engine counts on the 40 s straight through: the reps the dashboard must get
    reference = Rig(tmp_path, rx())
    reference.feed(t, acc, gyr, stop=end)
    reference.engine.shutdown()
    expected = len(reference.of(MessageKind.REP))
    assert expected == 5
    assert any(r.data["t_start"] < r.data["t_end"] for r in reference.of(MessageKind.REP))

    before = _write_csv(tmp_path / "before.csv", t[:cut], acc[:cut], gyr[:cut])
    after = _write_csv(tmp_path / "after.csv", t[cut:end], acc[cut:end], gyr[cut:end])
    run_dir = tmp_path / "run"  # systemd's RuntimeDirectory (a tmpfs on the Pi), kept across restarts
    with Dashboard(broker) as dashboard:
        dashboard.publish(p.build_topic(MessageKind.PRESCRIPTION, PATIENT), prescription().payload)
        first = service_factory(broker, recording=before, speed=1.0, env={"RUNTIME_DIRECTORY": str(run_dir)})
        first.start()
        _streamed(first, KILL_S)
        first.kill()  # SIGKILL: no flush, no summary
        wait_until(lambda: len(dashboard.events(MessageKind.REP)) >= 2, 10, "reps 1 and 2")
        assert len(dashboard.events(MessageKind.REP)) == 2  # rep 3 was under way

        second = service_factory(broker, recording=after, speed=1.0, env={"RUNTIME_DIRECTORY": str(run_dir)})
        second.state_dir = first.state_dir  # the same Pi: the same state directory
        second.config.write_text(first.config.read_text().replace(str(before), str(after)))
        second.start()
        _streamed(second, END_S - KILL_S + 1.0)  # and a second of the rest it ends with
        assert second.terminate() == 0  # SIGTERM: the trackers flushed, the session summarised
        wait_until(lambda: dashboard.events(MessageKind.SESSION), 30, "the session summary")

    reps = dashboard.events(MessageKind.REP)
    keys = collections.Counter((m.data["session_id"], m.data["set_index"], m.data["rep_index"]) for m in reps)
    assert [k for k, n in keys.items() if n > 1] == []  # none twice
    assert [(m.data["set_index"], m.data["rep_index"]) for m in reps] == [(1, i) for i in range(1, expected + 1)]
    assert len({m.data["session_id"] for m in dashboard.events()}) == 1  # the restart continued the session
    seqs = dashboard.seqs()
    assert seqs == list(range(1, len(seqs) + 1))
    assert [(m.data["set_index"], m.data["reps"]) for m in dashboard.events(MessageKind.SET)] == [(1, expected)]
    (summary,) = dashboard.events(MessageKind.SESSION)
    assert summary.data["exercises"][0]["reps"] == expected
    replayed = second.logged("replayed the sample journal")
    assert replayed and replayed[0]["stored_before"] == 2 and replayed[0]["counted_again"] == 0, replayed
    # the rep across the restart says that its samples have a hole
    assert "sensor_gap" in reps[2].data["flags"], [m.data["flags"] for m in reps]
    assert not list(run_dir.glob("samples-*"))  # a clean stop leaves no journal to replay
