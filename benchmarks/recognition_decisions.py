"""The recogniser's decisions with another low-pass module, window by window (not a timed test).

    git show 92af2a0^:hipsense/exercises/lowpass.py > /tmp/old_lowpass.py
    python benchmarks/recognition_decisions.py /tmp/old_lowpass.py [--datasets ../shared/datasets]

For a change that alters the low-passes' last bits (issue 14: np.convolve → FFT): every 15 s
window every 1 s of every real recording (MEx, CMU, UCI), as the service's switcher would give
it to ``recognise()``, with three candidate sets (all classes at the service's 0.8, bridge only
at 0.8, forced choice), once with the old module's ``filtfilt_lowpass`` and once with the
current ``filtfilt_lowpass_bank``. Prints how many answers or reasons differ and the largest
confidence and feature differences.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np

from hipsense.evaluation.cmu import read_cmu_trial
from hipsense.evaluation.mex import read_mex
from hipsense.evaluation.uci import find_uci_recordings, read_uci_file
from hipsense.exercises import lowpass as current
from hipsense.exercises import recognition as r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old_lowpass", type=Path, help="a lowpass.py with filtfilt_lowpass(x, fc, fs)")
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("old_lowpass", args.old_lowpass)
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    d = args.datasets
    recs = [(m.id, m.t_s, m.acc_ms2) for m in read_mex(d / "mex-thigh")]
    for path in sorted((d / "cmu-exercise" / "compact").glob("*.csv")):
        trial = read_cmu_trial(path)
        recs.append((f"cmu/{path.stem}", trial.t_s, trial.acc_ms2))
    recs += [(f"uci/{u.path}", *read_uci_file(u.path)[:2]) for u in find_uci_recordings(d / "uci-pt")]
    model = r.load_model()
    classes = sorted(model.classes)

    def run(bank):
        r.filtfilt_lowpass_bank = bank
        out = []
        for _, t, acc in recs:
            for start in np.arange(t[0], max(t[0] + 1e-9, t[-1] - 15.0 + 1e-9), 1.0):
                k = (t >= start) & (t < start + 15.0)
                feats = None
                if k.sum() > 2 and t[k][-1] - t[k][0] >= 6.0:
                    feats = r._features_from_grid(r._prepare(t[k], acc[k], None))[0]
                for cands, mc in ((classes, 0.8), (["bridge"], 0.8), (classes, 0.0)):
                    res = r.recognise(r.Window(t[k], acc[k]), cands, min_confidence=mc)
                    out.append((res.exercise_id, res.reason, res.confidence, feats))
        return out

    try:
        a = run(lambda x, cutoffs, fs: np.stack([old.filtfilt_lowpass(x, c, fs) for c in cutoffs]))
        b = run(current.filtfilt_lowpass_bank)
    finally:
        r.filtfilt_lowpass_bank = current.filtfilt_lowpass_bank
    differing = sum(1 for x, y in zip(a, b) if x[:2] != y[:2])
    confidence = max(abs(x[2] - y[2]) for x, y in zip(a, b))
    feature = max((abs(x[3][k] - y[3][k]) / max(abs(x[3][k]), 1e-12) for x, y in zip(a, b) if x[3] for k in x[3]),
                  default=0.0)
    print(f"recordings {len(recs)}, recognise() calls {len(a)}, differing answers or reasons {differing}, "
          f"largest confidence difference {confidence:.2e}, largest relative feature difference {feature:.2e}")


if __name__ == "__main__":
    main()
