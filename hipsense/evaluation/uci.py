"""Counting, rep boundaries, holds and form on the UCI physical-therapy exercises data set.

Data: A. Yurtman, B. Barshan, "Automated evaluation of physical therapy exercises using
multi-template dynamic time warping on wearable sensor signals", Computer Methods and Programs
in Biomedicine 117(2):189–207, 2014, doi:10.1016/j.cmpb.2014.07.003; data set UCI,
doi:10.24432/C5JK60 (CC BY 4.0).

Metrics and the JSON shape follow docs/evaluation.md. Every set runs through the same
streaming tracker the live service runs, with the same parameters for every subject.
"""

from __future__ import annotations

import csv
import gzip
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hipsense.errors import DatasetError
from hipsense.exercises.catalogue import get_exercise
from hipsense.exercises.tracker import RepResult, TrackerSettings, track

#: UCI exercise number → catalogue id (evaluation.md's mapping table)
UCI_EXERCISES = {
    1: "seated_leg_raise",
    3: "straight_leg_raise",
    4: "side_lying_hip_abduction",
    5: "prone_hip_extension",
}
UCI_RATE_HZ = 25.0
UCI_HOLD_S = 5.0
THIGH_UNIT = "u3"
SESSIONS = {"test": ("test.txt.gz", 30), "template": ("template_session.txt.gz", 9)}


@dataclass(frozen=True)
class UciRecording:
    subject: str
    exercise: int
    session: str
    path: Path
    true_count: int

    @property
    def id(self) -> str:
        return f"{self.subject}/e{self.exercise}/{self.session}"


def read_uci_file(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``t_s`` (n,), ``acc_ms2`` (n, 3), ``gyr_rad_s`` (n, 3) of one UCI file."""
    try:
        with gzip.open(path, "rt") as f:
            data = np.loadtxt(f, delimiter=";", skiprows=1)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read UCI file {path}: {exc}") from exc
    if data.ndim != 2 or data.shape[1] < 7:
        raise DatasetError(f"{path}: expected ≥ 7 ';'-separated columns, got shape {data.shape}")
    t = (data[:, 0] - 1.0) / UCI_RATE_HZ
    return t, data[:, 1:4], data[:, 4:7]


def find_uci_recordings(dataset_dir: Path) -> list[UciRecording]:
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        raise DatasetError(f"no such directory: {dataset_dir}")
    recs = []
    for subject_dir in sorted(p for p in dataset_dir.iterdir() if p.is_dir() and p.name.startswith("s")):
        for ex, _ in UCI_EXERCISES.items():
            for session, (fname, count) in SESSIONS.items():
                path = subject_dir / f"e{ex}" / THIGH_UNIT / fname
                if path.exists():
                    recs.append(UciRecording(subject_dir.name, ex, session, path, count))
    if not recs:
        raise DatasetError(
            f"{dataset_dir} holds no UCI recordings (expected s*/e{{1,3,4,5}}/{THIGH_UNIT}/test.txt.gz)"
        )
    return recs


def read_hand_labels(dataset_dir: Path, rec: UciRecording) -> list[tuple[float, float]] | None:
    """Third-party hand labels (start, end) in seconds, where they exist (s1 test sessions)."""
    if rec.session != "test":
        return None
    path = Path(dataset_dir) / rec.subject / f"e{rec.exercise}" / "test_times_LiamCHayes_handlabel.csv"
    if not path.exists():
        return None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [((float(r["start"]) - 1) / UCI_RATE_HZ, (float(r["end"]) - 1) / UCI_RATE_HZ) for r in rows]


def match_reps(
    detected: list[tuple[float, float]], labels: list[tuple[float, float]], max_mid_s: float = 1.0
) -> list[tuple[int, int]]:
    """evaluation.md's rule: overlap and midpoints within ``max_mid_s``; greedy by distance."""
    cands = []
    for i, (ds, de) in enumerate(detected):
        for j, (ls, le) in enumerate(labels):
            if ds < le and ls < de:
                d = abs((ds + de) / 2 - (ls + le) / 2)
                if d <= max_mid_s:
                    cands.append((d, i, j))
    used_d, used_l, pairs = set(), set(), []
    for _, i, j in sorted(cands):
        if i not in used_d and j not in used_l:
            used_d.add(i)
            used_l.add(j)
            pairs.append((i, j))
    return pairs


def label_offsets_by_block(
    detected: list[tuple[float, float]], labels: list[tuple[float, float]]
) -> list[float | None]:
    """Per block of ten labels, the median time from each label's midpoint to the nearest
    detected rep's midpoint. A few tenths of a second is labelling precision; a block whose
    labels sit a second or more off detections that follow the motion was labelled off the
    motion (UCI s1 e5's too-fast block, 1.4 s: its labels start on the previous rep's lowering)."""
    if not detected:
        return [None] * ((len(labels) + 9) // 10)
    mids = np.array([(a + b) / 2 for a, b in detected])
    out: list[float | None] = []
    for k in range(0, len(labels), 10):
        offs = [(a + b) / 2 - mids[np.argmin(np.abs(mids - (a + b) / 2))] for a, b in labels[k : k + 10]]
        out.append(_r(float(np.median(np.abs(offs)))))
    return out


def split_blocks(reps: list[RepResult]) -> list[list[RepResult]]:
    """Correct / too fast / low amplitude blocks: by order when exactly 30 reps were counted,
    otherwise at the two longest rests between consecutive reps."""
    if len(reps) == 30:
        return [reps[0:10], reps[10:20], reps[20:30]]
    if len(reps) < 3:
        return [reps, [], []]
    rests = [(reps[i + 1].start_t_s - reps[i].end_t_s, i) for i in range(len(reps) - 1)]
    cut = sorted(i for _, i in sorted(rests, reverse=True)[:2])
    return [reps[: cut[0] + 1], reps[cut[0] + 1 : cut[1] + 1], reps[cut[1] + 1 :]]


def evaluate_uci(dataset_dir: Path) -> dict[str, Any]:
    """Run every UCI set through the tracker; return evaluation.md's JSON-ready dict."""
    dataset_dir = Path(dataset_dir)
    sets: list[dict[str, Any]] = []
    n_labels = n_matched = n_detected_labelled = 0
    start_err: list[float] = []
    end_err: list[float] = []
    correct_holds: list[float] = []
    holds_by_subject: dict[str, list[float]] = {}
    fast_total = fast_flagged = 0
    low_total = low_flagged = 0
    low_ratios: list[float] = []
    for rec in find_uci_recordings(dataset_dir):
        t, acc, gyr = read_uci_file(rec.path)
        spec = get_exercise(UCI_EXERCISES[rec.exercise])
        out = track(spec, t, acc, gyr, TrackerSettings(hold_target_s=UCI_HOLD_S, side="right"))
        reps = out.reps
        entry: dict[str, Any] = {
            "id": rec.id,
            "exercise": spec.id,
            "true": rec.true_count,
            "counted": len(reps),
            "error": len(reps) - rec.true_count,
        }
        labels = read_hand_labels(dataset_dir, rec)
        if labels is not None:
            det = [(r.start_t_s, r.end_t_s) for r in reps]
            pairs = match_reps(det, labels)
            n_labels += len(labels)
            n_matched += len(pairs)
            n_detected_labelled += len(det)
            start_err += [abs(det[i][0] - labels[j][0]) for i, j in pairs]
            end_err += [abs(det[i][1] - labels[j][1]) for i, j in pairs]
            entry["labelled_matched"] = len(pairs)
            entry["label_offset_by_block_s"] = label_offsets_by_block(det, labels)
        if rec.session == "test":
            correct, fast, low = split_blocks(reps)
            correct_holds += [r.hold_s for r in correct]
            holds_by_subject.setdefault(rec.subject, []).extend(r.hold_s for r in correct)
            fast_total += len(fast)
            fast_flagged += sum(
                1 for r in fast if r.hold_s < 1.0 and {"too_fast", "short_hold"} & set(r.flags)
            )
            low_total += len(low)
            low_flagged += sum(1 for r in low if "low_rom" in r.flags)
            if correct and low:
                low_ratios.append(
                    statistics.median(r.rom_deg for r in low) / statistics.median(r.rom_deg for r in correct)
                )
        sets.append(entry)

    errors = [abs(s["error"]) for s in sets]
    miss = (n_labels - n_matched) / n_labels if n_labels else None
    false = (n_detected_labelled - n_matched) / n_labels if n_labels else None
    f1 = (2 * n_matched / (n_labels + n_detected_labelled)) if n_labels else None
    summary = {
        "sets": len(sets),
        "exact_rate": _r(sum(e == 0 for e in errors) / len(sets)),
        "within1_rate": _r(sum(e <= 1 for e in errors) / len(sets)),
        "mae": _r(sum(errors) / len(sets)),
        "reps_true": sum(s["true"] for s in sets),
        "reps_counted": sum(s["counted"] for s in sets),
        "miss_rate": _r(miss),
        "false_rate": _r(false),
        "f1": _r(f1),
        "start_error_median_s": _r(statistics.median(start_err)) if start_err else None,
        "end_error_median_s": _r(statistics.median(end_err)) if end_err else None,
        "hold_median_s": _r(statistics.median(correct_holds)) if correct_holds else None,
        "hold_within_rate": _r(sum(3.5 <= h <= 6.5 for h in correct_holds) / len(correct_holds))
        if correct_holds
        else None,
        # the pooled median hides that people hold differently: one figure per subject too
        "hold_median_by_subject_s": {k: _r(statistics.median(v)) for k, v in sorted(holds_by_subject.items()) if v},
        "fast_flagged_rate": _r(fast_flagged / fast_total) if fast_total else None,
        "low_rom_flagged_rate": _r(low_flagged / low_total) if low_total else None,
        "low_rom_ratio": _r(statistics.median(low_ratios)) if low_ratios else None,
        "recognition_accuracy": None,
    }
    return {"dataset": "uci-pt", "summary": summary, "sets": sets}


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)
