"""Counting on the CMU exercise-monitoring sample (one subject, standing and jumping exercises).

Data: V. Phan et al., "Seven Things to Know About Exercise Classification With Inertial
Sensing Wearables", IEEE JBHI 28(6):3411–3421, 2024, doi:10.1109/JBHI.2024.3368042 (CC BY 4.0).

The publishers cut the samples between reps out. As the data set's README asks, a continuous
stream is rebuilt by joining the reps with rests in between: ``rest_s`` seconds holding the
pose at the neighbouring rep's edge (mean accelerometer direction of its first or last 0.1 s,
at exactly 1 g) with the gyroscope at zero — still, as a person standing between reps. That rest is ours, not measured; it is the same for
every exercise, and only rests (never motion) are added. The jumps' flight phases were cut out
with the rest, so for them the landing-after-flight check is switched off.

Each exercise is counted on the thigh that moves more (the working leg of single-leg
exercises; either for bilateral ones), chosen by gyroscope energy before counting — never by
the count. The truth is the number of reps in ``rep_segments.csv``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hipsense.errors import DatasetError
from hipsense.exercises.catalogue import get_exercise
from hipsense.exercises.tracker import TrackerSettings, track

from . import baseline as peak_baseline

#: CMU exercise → catalogue id. Exercises a thigh sensor cannot count (Pose, HeelRaise: the
#: thigh barely moves) and the running drills are left out.
CMU_EXERCISES = {
    "SqDL": "squat", "SqHalfDL": "squat", "SumoSq": "squat", "DeclineSq": "squat",
    "SqSL": "squat", "SqHalfSL": "squat", "BulgSq": "squat", "SpainSq": "squat",
    "Lunge": "lunge",
    "StepUpL": "step_up", "StepUpH": "step_up", "StepDnL": "step_up", "StepDnH": "step_up",
    "CMJDL": "jump", "CMJSL": "jump", "FwJump": "jump", "FwJumpFast": "jump",
    "LatJump": "jump", "LatJumpFast": "jump", "FwHop": "jump", "FwHopFast": "jump",
    "LatHop": "jump", "LatHopFast": "jump", "MaxJump": "jump", "MaxHop": "jump",
    "DropJumpDL": "jump", "DropJumpSL": "jump", "SplitJump": "jump", "SportJump": "jump",
    "Walk": "walk",
}
RATE_HZ = 100.0
REST_S = 3.0
THIGHS = ("LeftThigh", "RightThigh")


@dataclass(frozen=True)
class CmuTrial:
    exercise: str
    true_count: int
    t_s: np.ndarray
    acc_ms2: np.ndarray
    gyr_rad_s: np.ndarray
    thigh: str


def _columns(header: list[str], thigh: str) -> list[int]:
    names = [f"{thigh}_{q}_{a}" for q in ("acc", "gyr") for a in "xyz"]
    try:
        return [header.index(n) for n in names]
    except ValueError as exc:
        raise DatasetError(f"CMU file lacks a column: {exc}") from exc


def read_cmu_trial(path: Path, rest_s: float = REST_S) -> CmuTrial:
    """Read one ``compact/<Exercise>.csv`` and rebuild a continuous stream of the working thigh."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        raise DatasetError(f"{path} is empty")
    header = rows[0]
    data = np.array([[float(v) for v in r] for r in rows[1:] if r])
    rep = data[:, 0].astype(int)
    reps = [data[rep == k] for k in np.unique(rep)]
    best = None
    for thigh in THIGHS:
        cols = _columns(header, thigh)
        energy = float(np.sum(data[:, cols[3:]] ** 2))
        if best is None or energy > best[0]:
            best = (energy, thigh, cols)
    _, thigh, cols = best
    n_rest = int(round(rest_s * RATE_HZ))

    edge = int(0.1 * RATE_HZ)

    def rest_like(samples: np.ndarray) -> np.ndarray:
        # the pose at the rep's edge: its mean accelerometer direction at exactly 1 g (the
        # edge samples still carry some motion), no rotation — a person standing still
        acc = samples[:, :3].mean(axis=0)
        still = np.zeros((n_rest, 6))
        still[:, :3] = acc / np.linalg.norm(acc) * 9.80665
        return still

    pieces = [rest_like(reps[0][:edge, cols])]
    for r in reps:
        pieces.append(r[:, cols])
        pieces.append(rest_like(r[-edge:, cols]))
    x = np.vstack(pieces)
    t = np.arange(len(x)) / RATE_HZ
    return CmuTrial(path.stem, len(reps), t, x[:, :3], x[:, 3:], thigh)


def evaluate_cmu(dataset_dir: Path) -> dict[str, Any]:
    """Count every mapped CMU exercise; return evaluation.md's JSON-ready dict."""
    compact = Path(dataset_dir) / "compact"
    if not compact.is_dir():
        raise DatasetError(f"{dataset_dir} has no compact/ folder (expected the CMU sample layout)")
    sets = []
    for name, exercise_id in CMU_EXERCISES.items():
        path = compact / f"{name}.csv"
        if not path.exists():
            continue
        trial = read_cmu_trial(path)
        settings = TrackerSettings(impact_require_flight=False)  # flights were cut out
        out = track(get_exercise(exercise_id), trial.t_s, trial.acc_ms2, trial.gyr_rad_s, settings)
        n = len(out.reps)
        sets.append({
            "id": f"{name}/{trial.thigh}",
            "exercise": exercise_id,
            "true": trial.true_count,
            "counted": n,
            "error": n - trial.true_count,
            # the simple offline peak counter (baseline.py) on the same rebuilt stream
            "baseline_counted": peak_baseline.count_peaks(trial.t_s, trial.acc_ms2),
        })
    if not sets:
        raise DatasetError(f"{compact} holds none of the CMU exercises hipsense counts")
    errors = [abs(s["error"]) for s in sets]
    summary: dict[str, Any] = {
        "sets": len(sets),
        "exact_rate": round(sum(e == 0 for e in errors) / len(sets), 4),
        "within1_rate": round(sum(e <= 1 for e in errors) / len(sets), 4),
        "mae": round(sum(errors) / len(sets), 4),
        "reps_true": sum(s["true"] for s in sets),
        "reps_counted": sum(s["counted"] for s in sets),
    }
    for key in ("miss_rate", "false_rate", "f1", "hold_median_s", "hold_within_rate",
                "fast_flagged_rate", "low_rom_flagged_rate", "recognition_accuracy"):
        summary[key] = None
    baseline = {"method": peak_baseline.METHOD, "parameters": peak_baseline.PARAMETERS,
                "summary": peak_baseline.score((s["baseline_counted"], s["true"]) for s in sets),
                "by_exercise": peak_baseline.grouped(sets, "baseline_counted", "exercise")}
    return {"dataset": "cmu", "summary": summary, "by_exercise": peak_baseline.grouped(sets, "counted", "exercise"),
            "baseline": baseline, "sets": sets}
