"""A rep in progress at a kill, with and without the sample journal (service/journal.py).

The session engine (real tracker, real outbox) is fed UCI subject 1, exercise 3 (straight-leg
raise, 3 x 10 with 5 s holds, the prescription asks for exactly that) and thrown away at a kill
point (no flush: SIGKILL), every 2.3 s from 5 s to 235 s; a new engine on the same files (and
journal) takes the rest of the recording, ``--gap`` seconds of it lost to the restart. A kill
point is wrong unless the outbox ends with 30 reps in sets of 10, 10, 10, no (set, rep) twice
and no seq missing. ``--span`` is the journal's file span (journal.SPAN_S: it replays span..2 x span).

    python benchmarks/journal_kill_points.py --span 60            # 0 of 101 wrong
    python benchmarks/journal_kill_points.py --no-journal         # 58 of 101 (a rep lost, or two sets merged)
    python benchmarks/journal_kill_points.py --span 30            # 8 of 101;  --span 15: 26 of 101
    python benchmarks/journal_kill_points.py --gap 6              # 63 of 101; without the journal 87 of 101

With 6 s lost to the restart (a unit's RestartSec=5 and the start-up), the reps made while no
process listened are lost with or without a journal: it saves only those the dead process saw begin.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hipsense.evaluation.uci import read_uci_file  # noqa: E402
from hipsense.protocol import MessageKind  # noqa: E402
from tests.conftest import DATA  # noqa: E402
from tests.service.test_engine import Rig, rx  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--span", type=float, default=60.0)
    parser.add_argument("--gap", type=float, default=0.0, help="seconds of the recording lost to the restart")
    parser.add_argument("--no-journal", action="store_true")
    args = parser.parse_args()
    journal = not args.no_journal
    t, acc, gyr = (np.asarray(a, float) for a in read_uci_file(DATA / "uci-pt/s1/e3/u3/test.txt.gz"))
    rest = (t[-1] + 0.04 * np.arange(1, 750), np.repeat(acc[-1:], 749, 0), np.zeros((749, 3)))
    wrong = total = 0
    for kill in np.arange(5, 236, 2.3):
        cut = int(np.searchsorted(t, kill))
        with tempfile.TemporaryDirectory() as d:
            first = Rig(Path(d), rx(), journal=journal)
            if first.journal is not None:
                first.journal.span_s = args.span
            first.feed(t, acc, gyr, stop=cut)
            first.outbox.close()
            resume = int(np.searchsorted(t, t[cut] + args.gap)) if args.gap else cut
            second = Rig(Path(d), rx(), journal=journal, now=t[resume])
            second.feed(t, acc, gyr, start=resume)
            second.feed(*rest)
            messages = second.messages()
            reps = [m for m in messages if m.kind is MessageKind.REP]
            sets = [(m.data["set_index"], m.data["reps"]) for m in messages if m.kind is MessageKind.SET]
            keys = collections.Counter((m.data["set_index"], m.data["rep_index"]) for m in reps)
            ok = (len(reps) == 30 and sets == [(1, 10), (2, 10), (3, 10)] and max(keys.values()) == 1
                  and [m.seq for m in messages] == list(range(1, len(messages) + 1)))
            total += 1
            if not ok:
                wrong += 1
                print(f"killed at {kill:5.1f} s: {len(reps)} reps, sets {sets}", flush=True)
    print(f"journal {'on, span ' + str(args.span) + ' s' if journal else 'off'}, gap {args.gap} s: "
          f"{wrong} of {total} kill points wrong")


if __name__ == "__main__":
    main()
