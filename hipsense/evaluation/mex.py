"""MEx (thigh accelerometer) reader and leave-one-subject-out exercise-recognition evaluation.

Data: A. Wijekoon, N. Wiratunga, K. Cooper, "MEx: Multi-modal Exercises Dataset for Human
Activity Recognition", arXiv:1908.08992, 2019 (CC BY 4.0). Layout read here::

    DIR/act/<subject>/<ex>_act_<k>.csv.gz     CSV without header: timestamp, x, y, z (g)

(``DIR`` may also be the ``act`` folder itself). The first two digits of a file name are the MEx
exercise number, mapped to catalogue ids by :data:`hipsense.exercises.recognition.MEX_EXERCISES`.
"""

from __future__ import annotations

import gzip
import io
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from hipsense.exercises.recognition import (
    GRAVITY_MS2,
    MEX_CITATION,
    MEX_EXERCISES,
    RecognitionModel,
    fit_recognition_model,
    recognise_from_vectors,
    train_recognition_model,
    window_vectors,
)

__all__ = ["MexRecording", "read_mex_file", "read_mex", "evaluate_mex", "train_mex_model"]

_NAME = re.compile(r"^(\d\d)_act_(\d+)\.csv(\.gz)?$")

NULL_FIELDS = (
    "exact_rate", "within1_rate", "mae", "reps_true", "reps_counted", "miss_rate",
    "false_rate", "f1", "hold_median_s", "hold_within_rate", "fast_flagged_rate",
    "low_rom_flagged_rate",
)


@dataclass(frozen=True)
class MexRecording:
    subject: str
    name: str  # e.g. "02_act_1"
    exercise: str  # catalogue id
    t_s: np.ndarray  # (n,) seconds from the first sample
    acc_ms2: np.ndarray  # (n, 3) m/s²

    @property
    def id(self) -> str:
        return f"{self.subject}/{self.name}"


def _parse_time(s: str) -> float:
    s = s.strip()
    try:
        return float(s)
    except ValueError:
        return datetime.fromisoformat(s).timestamp()


def read_mex_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One MEx accelerometer file → (t_s from 0, acc in m/s²). Malformed lines are skipped."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    times: list[float] = []
    rows: list[tuple[float, float, float]] = []
    for line in io.StringIO(raw.decode("utf-8", errors="replace")):
        parts = line.split(",")
        if len(parts) < 4:
            continue
        try:
            t = _parse_time(parts[0])
            x, y, z = float(parts[1]), float(parts[2]), float(parts[3])
        except ValueError:
            continue
        times.append(t)
        rows.append((x, y, z))
    if len(times) < 2:
        raise ValueError(f"{path}: fewer than two readable samples")
    t = np.asarray(times)
    return t - t[0], np.asarray(rows) * GRAVITY_MS2


def read_mex(dataset_dir: Path) -> list[MexRecording]:
    """Every recording under ``dataset_dir`` (``DIR/act/<subject>/…`` or ``DIR/<subject>/…``)."""
    root = Path(dataset_dir)
    if (root / "act").is_dir():
        root = root / "act"
    if not root.is_dir():
        raise FileNotFoundError(f"no MEx data at {dataset_dir}")
    out: list[MexRecording] = []
    for subject_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(subject_dir.iterdir()):
            m = _NAME.match(f.name)
            if not m or m.group(1) not in MEX_EXERCISES:
                continue
            t, acc = read_mex_file(f)
            name = f"{m.group(1)}_act_{m.group(2)}"
            out.append(MexRecording(subject_dir.name, name, MEX_EXERCISES[m.group(1)], t, acc))
    if not out:
        raise FileNotFoundError(f"no MEx recordings under {root}")
    return out


def _by_subject(recs: list[MexRecording]) -> dict[str, list[tuple[str, np.ndarray, np.ndarray]]]:
    out: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    for r in recs:
        out.setdefault(r.subject, []).append((r.exercise, r.t_s, r.acc_ms2))
    return out


def train_mex_model(dataset_dir: Path) -> RecognitionModel:
    """Rebuild the shipped model from every subject of a MEx folder."""
    recs = read_mex(dataset_dir)
    subjects = sorted({r.subject for r in recs})
    meta = {
        "trained_on": f"MEx thigh accelerometer, subjects {', '.join(subjects)}, "
        f"{len(recs)} recordings",
        "citation": MEX_CITATION,
        "licence": "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)",
        "rebuild": "hipsense.evaluation.mex.train_mex_model(DIR).to_dict() → JSON",
    }
    return train_recognition_model(_by_subject(recs), meta=meta)


def evaluate_mex(dataset_dir: Path, *, min_confidence: float = 0.0) -> dict[str, Any]:
    """Leave-one-subject-out recognition accuracy on MEx, as the ``hipsense eval --json`` object.

    For each subject, a model is trained on all *other* subjects and names each of this subject's
    recordings (:func:`recognise_recording`'s pooling over 15 s windows, all 7 exercises as
    candidates). By default the answer is forced (``min_confidence=0``: the file *is* one of the
    seven exercises, as MEx results are reported in the literature); each set carries its
    confidence, so the share a live threshold would turn into "unknown" can be read off; pass
    ``min_confidence`` to count such answers as "unknown" (and wrong) here. Returns::

        {"dataset": "mex", "summary": {..., "recognition_accuracy": x}, "sets": [...],
         "confusion": {"labels": [7 ids], "matrix": rows true × cols predicted,
                       "unknown": per true id, count answered "unknown"}}
    """
    recs = read_mex(dataset_dir)
    labels = list(MEX_EXERCISES.values())
    vectors = [window_vectors([(r.exercise, r.t_s, r.acc_ms2)]) for r in recs]
    subjects = sorted({r.subject for r in recs})
    sets: list[dict[str, Any]] = []
    matrix = [[0] * len(labels) for _ in labels]
    unknown = [0] * len(labels)
    for subject in subjects:
        train: dict[str, list] = {}
        for r, v in zip(recs, vectors):
            if r.subject != subject:
                train.setdefault(r.subject, []).extend(v)
        model = fit_recognition_model(train)
        for r, v in zip(recs, vectors):
            if r.subject != subject:
                continue
            rec = recognise_from_vectors([vec for _ex, vec in v], model=model,
                                         min_confidence=min_confidence)
            sets.append({
                "id": r.id, "exercise": r.exercise, "predicted": rec.exercise_id,
                "true": None, "counted": None, "error": None,
                "confidence": round(rec.confidence, 4),
            })
            ti = labels.index(r.exercise)
            if rec.exercise_id in labels:
                matrix[ti][labels.index(rec.exercise_id)] += 1
            else:
                unknown[ti] += 1
    correct = sum(1 for s in sets if s["predicted"] == s["exercise"])
    summary: dict[str, Any] = {"sets": len(sets)}
    summary.update({k: None for k in NULL_FIELDS})
    summary["recognition_accuracy"] = round(correct / len(sets), 4) if sets else None
    return {
        "dataset": "mex",
        "summary": summary,
        "sets": sets,
        "confusion": {"labels": labels, "matrix": matrix, "unknown": unknown},
    }
