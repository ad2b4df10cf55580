"""Speed of the whole streaming path, printed as figures (not a timed test).

    python benchmarks/bench_pipeline.py

CPU seconds per hour of 100 Hz 6-axis data through resample → gravity → reps → tracker, fed
in BLE-sized chunks (5 samples), the multiple of real time on one core, and the delay from a
rep's return to rest (true end) to its event. The data is a real UCI recording (25 Hz,
resampled to 100 Hz by linear interpolation and tiled to one hour; see tests/data/uci-pt).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from hipsense.evaluation.uci import read_uci_file
from hipsense.exercises.catalogue import get_exercise
from hipsense.exercises.tracker import ExerciseTracker, TrackerSettings

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "uci-pt" / "s1" / "e3" / "u3" / "test.txt.gz"


def hour_at_100hz() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t, acc, gyr = read_uci_file(DATA)
    t100 = np.arange(0, t[-1], 0.01)
    acc100 = np.column_stack([np.interp(t100, t, acc[:, i]) for i in range(3)])
    gyr100 = np.column_stack([np.interp(t100, t, gyr[:, i]) for i in range(3)])
    reps = int(np.ceil(3600 / t100[-1]))
    n = len(t100)
    tt = np.concatenate([t100 + k * (t100[-1] + 0.01) for k in range(reps)])[: 360000]
    return tt, np.tile(acc100, (reps, 1))[: len(tt)], np.tile(gyr100, (reps, 1))[: len(tt)]


def run(t: np.ndarray, acc: np.ndarray, gyr: np.ndarray, chunk: int) -> None:
    spec = get_exercise("straight_leg_raise")
    tracker = ExerciseTracker(spec, TrackerSettings(hold_target_s=5.0))
    delays = []
    n_reps = 0
    cpu0 = time.process_time()
    for i in range(0, len(t), chunk):
        out = tracker.push(t[i : i + chunk], acc[i : i + chunk], gyr[i : i + chunk])
        for r in out.reps:
            # the event arrives with the chunk holding the rep's end: delay in data time
            delays.append(float(t[min(i + chunk, len(t)) - 1]) - r.end_t_s)
            n_reps += 1
    cpu = time.process_time() - cpu0
    hours = (t[-1] - t[0]) / 3600
    print(f"data: {hours:.2f} h of 100 Hz 6-axis samples, {len(t)} samples, chunks of {chunk}")
    print(f"reps counted: {n_reps}")
    print(f"CPU: {cpu / hours:.2f} s per hour of data  →  {3600 * hours / cpu:.0f}× real time on one core")
    print(f"per sample: {cpu / len(t) * 1e6:.2f} µs")
    if delays:
        print(f"event delay after return to rest: median {np.median(delays):.3f} s, max {np.max(delays):.3f} s")


def main() -> None:
    t, acc, gyr = hour_at_100hz()
    for chunk in (5, 25):  # one BLE notification's worth; the service's 0.25 s batches
        run(t, acc, gyr, chunk)
        print()


if __name__ == "__main__":
    main()
