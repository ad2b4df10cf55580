"""Rep counts on MEx: every file through the service's streaming tracker, against references.

Data: A. Wijekoon, N. Wiratunga, K. Cooper, "MEx: Multi-modal Exercises Dataset for Human
Activity Recognition", arXiv:1908.08992, 2019 (CC BY 4.0). Reference counts
(``rep_counts.csv``: one row per file, ``subject, file, exercise, reference_count, big_lifts,
visibility, auto_count, note``) were made for this project by people outside the team, by eye
from plots of the thigh's tilt (shared/datasets/README.md says how and how good they are).

What is measured (docs/evaluation.md):

* every file runs through :class:`~hipsense.exercises.tracker.ExerciseTracker` — the object the
  session service runs — fed in :data:`CHUNK_S` chunks as a live sensor's samples arrive, with
  the catalogue exercise the MEx exercise maps to and the hold the MEx protocol asked for;
* exact / within ±1 / MAE against ``reference_count``, on ``clear`` files (the floor) and
  separately on ``uncertain`` ones; per exercise, per subject;
* ``not_visible`` files (the thigh does not show the reps) must be answered "not measurable"
  (a timed exercise: the catalogue's honest answer) or with a count whose confidence
  (:mod:`hipsense.exercises.confidence`) is below :data:`~hipsense.exercises.confidence.CONFIDENT`;
* superman: ``reference_count`` is every lift visible on the thigh; ``big_lifts`` (the
  sensor's own leg) is compared separately;
* holds of bridging, pelvic tilt and superman: the median detected hold per exercise. MEx has
  no hold reference, so these are descriptions, not accuracy.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hipsense.errors import DatasetError
from hipsense.exercises.catalogue import get_exercise
from hipsense.exercises.confidence import CONFIDENT, count_confidence
from hipsense.exercises.recognition import MEX_CITATION, MEX_EXERCISES
from hipsense.exercises.tracker import ExerciseTracker, RepResult, TrackerSettings

from . import baseline as peak_baseline
from .mex import read_mex_file

__all__ = [
    "CHUNK_S",
    "MEX_HOLD_S",
    "RepReference",
    "count_recording",
    "evaluate_mex_counts",
    "listing_csv",
    "listing_markdown",
    "read_rep_counts",
]

#: Samples are pushed this many seconds at a time, as the service hands a tracker what the
#: sensor delivered since the last loop (BLE notifications arrive every few tens of ms; the
#: service batches them). The tracker's result does not depend on the chunking.
CHUNK_S = 1.0
#: The hold the MEx protocol asked for, by MEx exercise number (shared/datasets/README.md);
#: the other exercises have none, and get the catalogue's default prescription.
MEX_HOLD_S = {"02": 5.0, "03": 5.0, "07": 5.0}
VISIBILITIES = ("clear", "uncertain", "not_visible")
SUPERMAN = "07"
HOLD_EXERCISES = ("02", "03", "07")
REP_COUNTS = "rep_counts.csv"
REP_COUNTS_COLUMNS = ("subject", "file", "exercise", "reference_count", "big_lifts", "visibility")


@dataclass(frozen=True)
class RepReference:
    """One row of ``rep_counts.csv``."""

    subject: str
    file: str  # e.g. "02_act_1.csv.gz"
    label: str  # MEx's own name, e.g. "02_bridging"
    reference_count: int | None  # None where the thigh does not show the reps
    big_lifts: int | None  # superman only: lifts of the sensor's own leg
    visibility: str  # clear | uncertain | not_visible
    note: str = ""
    auto_count: int | None = None  # the offline proposal the references started from

    @property
    def auto_reps(self) -> int | None:
        """The offline proposal in the reference's units: for knee rolling it counted cycles,
        two rolls each (shared/datasets/README.md). Scored like this it gives issue 15's bar
        (exact 77 %, within ±1 100 %, MAE 0.23 on the clear files of subjects 01-10)."""
        if self.auto_count is None:
            return None
        return 2 * self.auto_count if self.number == "01" else self.auto_count

    @property
    def number(self) -> str:
        return self.file[:2]

    @property
    def exercise(self) -> str:
        return MEX_EXERCISES[self.number]

    @property
    def id(self) -> str:
        return f"{self.subject}/{self.file.split('.')[0]}"


def _int_or_none(text: str, where: str) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise DatasetError(f"{where}: expected a whole number, got {text!r}") from None


def read_rep_counts(path: Path) -> list[RepReference]:
    """Parse ``rep_counts.csv``; a missing column or a bad value names the line."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"no reference counts at {path} (MEx counting needs {REP_COUNTS})")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REP_COUNTS_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise DatasetError(f"{path}: missing column(s) {', '.join(missing)}")
        out = []
        for line, row in enumerate(reader, start=2):
            where = f"{path}:{line}"
            name = row["file"].strip()
            if name[:2] not in MEX_EXERCISES:
                raise DatasetError(f"{where}: {name!r} is not a MEx exercise file (01..07)")
            if row["visibility"] not in VISIBILITIES:
                raise DatasetError(f"{where}: visibility {row['visibility']!r} is not one of {VISIBILITIES}")
            ref = RepReference(
                subject=row["subject"].strip(),
                file=name,
                label=row["exercise"].strip(),
                reference_count=_int_or_none(row["reference_count"], where),
                big_lifts=_int_or_none(row["big_lifts"], where),
                visibility=row["visibility"],
                note=row.get("note") or "",
                auto_count=_int_or_none(row.get("auto_count") or "", where),
            )
            if ref.reference_count is None and ref.visibility != "not_visible":
                raise DatasetError(f"{where}: a {ref.visibility} file needs a reference_count")
            out.append(ref)
    if not out:
        raise DatasetError(f"{path}: no rows")
    return out


class _AngleRecorder:
    """Wraps a tracker's pipeline and keeps the whole angle trace it computed (as the service's
    angle tap does for the latest chunk): the confidence is judged on the counter's own angle."""

    def __init__(self, pipeline: Any) -> None:
        self._inner = pipeline
        self.t_s: list[np.ndarray] = []
        self.angle_deg: list[np.ndarray] = []

    def push(self, *args: Any, **kwargs: Any) -> Any:
        out = self._inner.push(*args, **kwargs)
        self.t_s.append(out.t_s)
        self.angle_deg.append(out.angle_deg)
        self._revise(out)
        return out

    def flush(self) -> Any:
        out = self._inner.flush()
        self._revise(out)
        return out

    def _revise(self, out: Any) -> None:
        """A stream's start read again (``PipelineOutput.revised_*``): the kept trace takes the
        new angles, as the service's tracker does, so the confidence is judged on what counted."""
        if not len(out.revised_t_s) or not self.t_s:
            return
        t, angle = self.trace()
        idx = np.minimum(np.searchsorted(out.revised_t_s, t), len(out.revised_t_s) - 1)
        hit = out.revised_t_s[idx] == t
        angle = angle.copy()
        angle[hit] = out.revised_angle_deg[idx[hit]]
        self.t_s, self.angle_deg = [t], [angle]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def trace(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.t_s:
            return np.empty(0), np.empty(0)
        return np.concatenate(self.t_s), np.concatenate(self.angle_deg)


@dataclass(frozen=True)
class FileCount:
    measurable: bool  # False: the catalogue times this exercise, it does not count it
    reps: list[RepResult]
    confidence: dict[str, float | None] | None
    confident: bool


def count_recording(exercise_id: str, t_s: np.ndarray, acc_ms2: np.ndarray,
                    hold_target_s: float | None = None, chunk_s: float = CHUNK_S) -> FileCount:
    """One accelerometer-only recording through the service's tracker, streamed in chunks."""
    spec = get_exercise(exercise_id)
    if spec.measure == "timed":
        return FileCount(False, [], None, False)
    tracker = ExerciseTracker(spec, TrackerSettings(hold_target_s=hold_target_s), has_gyro=False)
    recorder = _AngleRecorder(tracker.pipeline)
    tracker.pipeline = recorder  # type: ignore[assignment]
    reps: list[RepResult] = []
    edges = np.searchsorted(t_s, np.arange(t_s[0], t_s[-1] + chunk_s, chunk_s))
    for a, b in zip(edges[:-1], np.append(edges[1:-1], len(t_s))):
        if b > a:
            reps += tracker.push(t_s[a:b], acc_ms2[a:b]).reps
    reps += tracker.flush().reps
    t, angle = recorder.trace()
    conf = count_confidence(
        [r.start_t_s for r in reps], [r.end_t_s for r in reps], [r.rom_deg for r in reps],
        t, angle, alternating=spec.motion.bidirectional,
        min_rom_deg=tracker.pipeline.settings.reps.min_rom_deg,
    )
    return FileCount(True, reps, conf.to_dict(), conf.confident)


def _find_file(root: Path, ref: RepReference) -> Path:
    for base in (root / "act", root):
        path = base / ref.subject / ref.file
        if path.is_file():
            return path
    raise DatasetError(f"{ref.file} of subject {ref.subject} is listed in {REP_COUNTS} but not under {root}")


def _score(entries: Iterable[dict[str, Any]], key: str = "true") -> dict[str, Any]:
    """exact / within ±1 / MAE of ``counted`` against ``key`` over entries that have a ``key``."""
    scored = [e for e in entries if e.get(key) is not None]
    # a file with a reference that the catalogue refuses to count ("not measurable") counted 0:
    # the patient saw no count for reps that were there
    pairs = [(e["counted"] or 0, e[key]) for e in scored]
    if not pairs:
        return {"files": 0, "exact_rate": None, "within1_rate": None, "mae": None,
                "reps_true": 0, "reps_counted": 0, "not_measurable": 0}
    errors = [abs(c - r) for c, r in pairs]
    return {
        "files": len(pairs),
        "exact_rate": _r(sum(e == 0 for e in errors) / len(pairs)),
        "within1_rate": _r(sum(e <= 1 for e in errors) / len(pairs)),
        "mae": _r(sum(errors) / len(pairs)),
        "reps_true": sum(r for _, r in pairs),
        "reps_counted": sum(c for c, _ in pairs),
        "not_measurable": sum(e["counted"] is None for e in scored),
    }


def _as_counted(entries: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The entries with ``key`` in place of the counter's count (to score another counter)."""
    return [{**e, "counted": e[key]} for e in entries if e.get(key) is not None]


def _answers(entries: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "files": len(entries),
        "not_measurable": sum(e["answer"] == "not_measurable" for e in entries),
        "low_confidence": sum(e["answer"] == "low_confidence" for e in entries),
        "confident_count": sum(e["answer"] == "count" for e in entries),
    }


def evaluate_mex_counts(dataset_dir: Path, *, chunk_s: float = CHUNK_S) -> dict[str, Any]:
    """Every file listed in ``DIR/rep_counts.csv`` counted and compared; a JSON-ready dict."""
    root = Path(dataset_dir)
    refs = read_rep_counts(root / REP_COUNTS)
    sets: list[dict[str, Any]] = []
    holds: dict[str, list[float]] = {}
    for ref in refs:
        t, acc = read_mex_file(_find_file(root, ref))
        res = count_recording(ref.exercise, t, acc, MEX_HOLD_S.get(ref.number), chunk_s)
        counted = len(res.reps) if res.measurable else None
        answer = "not_measurable" if not res.measurable else ("count" if res.confident else "low_confidence")
        sets.append({
            "id": ref.id,
            "subject": ref.subject,
            "exercise": ref.exercise,
            "mex_exercise": ref.label,
            "visibility": ref.visibility,
            "true": ref.reference_count,  # the reference count (None: the thigh does not show the reps)
            "big_lifts": ref.big_lifts,
            "counted": counted,
            "error": None if counted is None or ref.reference_count is None else counted - ref.reference_count,
            "answer": answer,
            "confidence": None if res.confidence is None else res.confidence["confidence"],
            "confidence_parts": res.confidence,
            "hold_median_s": _r(statistics.median(r.hold_s for r in res.reps)) if res.reps else None,
            "auto_proposal": ref.auto_reps,
            # the simple offline peak counter (baseline.py) on the same file; unlike the
            # auto_proposal, the references were not corrected from it
            "baseline_counted": peak_baseline.count_peaks(
                t, acc, both_ways=get_exercise(ref.exercise).motion.bidirectional),
        })
        if ref.number in HOLD_EXERCISES and ref.visibility != "not_visible":
            holds.setdefault(ref.exercise, []).extend(r.hold_s for r in res.reps)

    clear = [s for s in sets if s["visibility"] == "clear"]
    uncertain = [s for s in sets if s["visibility"] == "uncertain"]
    hidden = [s for s in sets if s["visibility"] == "not_visible"]
    headline = _score(clear)
    clear_holds = [h for ex in holds.values() for h in ex]
    summary: dict[str, Any] = {
        "sets": len(clear),
        "files": len(sets),
        "exact_rate": headline["exact_rate"],
        "within1_rate": headline["within1_rate"],
        "mae": headline["mae"],
        "reps_true": headline["reps_true"],
        "reps_counted": headline["reps_counted"],
        # no rep boundaries are labelled in MEx: nothing to match reps against
        "miss_rate": None,
        "false_rate": None,
        "f1": None,
        "hold_median_s": _r(statistics.median(clear_holds)) if clear_holds else None,
        "hold_within_rate": None,
        "hold_median_by_subject_s": None,
        "hold_reference_median_by_subject_s": None,
        "hold_error_median_s": None,  # MEx has no hold reference
        "fast_flagged_rate": None,
        "low_rom_flagged_rate": None,
        "recognition_accuracy": None,
        "uncertain": _score(uncertain),
        "not_visible": _answers(hidden),
        "not_visible_confident_counts": sum(s["answer"] == "count" for s in hidden),
        "confident_threshold": CONFIDENT,
        # the bar: the offline proposal the references started from (favoured: the references
        # are its corrections), scored on the same clear files
        "auto_proposal": _score(_as_counted(clear, "auto_proposal")),
    }
    exercises = sorted({s["exercise"] for s in sets}, key=lambda e: list(MEX_EXERCISES.values()).index(e))
    by_exercise = {}
    for ex in exercises:
        mine = [s for s in sets if s["exercise"] == ex]
        by_exercise[ex] = {
            "clear": _score(s for s in mine if s["visibility"] == "clear"),
            "auto_proposal_clear": _score(_as_counted([s for s in mine if s["visibility"] == "clear"], "auto_proposal")),
            "uncertain": _score(s for s in mine if s["visibility"] == "uncertain"),
            "answers": _answers(mine),
            "not_visible": _answers([s for s in mine if s["visibility"] == "not_visible"]),
        }
    by_visibility = {
        # is the confidence worth showing? the confident counts should be the right ones
        "clear": {**_score(clear), **_answers(clear),
                  "confident_only": _score(s for s in clear if s["answer"] == "count"),
                  "low_confidence_only": _score(s for s in clear if s["answer"] == "low_confidence")},
        "uncertain": {**_score(uncertain), **_answers(uncertain)},
        "not_visible": _answers(hidden),
    }
    by_subject = {
        subj: {
            "clear": _score(s for s in clear if s["subject"] == subj),
            "uncertain": _score(s for s in uncertain if s["subject"] == subj),
        }
        for subj in sorted({s["subject"] for s in sets})
    }
    superman = [s for s in sets if s["id"].split("/")[1].startswith(SUPERMAN)]
    report = {
        "dataset": "mex",
        "mode": "counts",
        "summary": summary,
        "baseline": _baseline_block(sets, exercises),
        "by_exercise": by_exercise,
        "by_visibility": by_visibility,
        "by_subject": by_subject,
        "superman": {
            "reference_count": _score(s for s in superman if s["visibility"] != "not_visible"),
            "big_lifts": _score((s for s in superman if s["visibility"] != "not_visible"), key="big_lifts"),
        },
        "holds": {
            ex: {
                "reps": len(v),
                "median_hold_s": _r(statistics.median(v)) if v else None,
                "reference": None,
                "note": "MEx has no hold reference: a description of what was detected, not an accuracy",
            }
            for ex, v in holds.items()
        },
        "sets": sets,
        "citation": MEX_CITATION,
        "reference_counts": "shared/datasets/mex-thigh/rep_counts.csv (counted by eye by people outside the team)",
        "chunk_s": chunk_s,
    }
    return report


def _baseline_block(sets: list[dict[str, Any]], exercises: list[str]) -> dict[str, Any]:
    """The simple offline peak counter's figures, beside the product's (same fields: clear files
    as the headline, uncertain apart; per exercise and per subject)."""
    def both(mine: list[dict[str, Any]]) -> dict[str, Any]:
        return {v: _score(_as_counted([s for s in mine if s["visibility"] == v], "baseline_counted"))
                for v in ("clear", "uncertain")}

    return {
        "method": peak_baseline.METHOD,
        "parameters": peak_baseline.PARAMETERS,
        "summary": both(sets),
        "by_exercise": {ex: both([s for s in sets if s["exercise"] == ex]) for ex in exercises},
        "by_subject": {subj: both([s for s in sets if s["subject"] == subj])
                       for subj in sorted({s["subject"] for s in sets})},
    }


LISTING_COLUMNS = ("file", "exercise", "visibility", "reference", "counted", "answer", "confidence", "proposal")


def _listing_rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for s in report["sets"]:
        rows.append([
            s["id"], s["exercise"], s["visibility"],
            "" if s["true"] is None else str(s["true"]),
            "-" if s["counted"] is None else str(s["counted"]),
            s["answer"],
            "" if s["confidence"] is None else f"{s['confidence']:.2f}",
            "" if s["auto_proposal"] is None else str(s["auto_proposal"]),
        ])
    return rows


def listing_csv(report: dict[str, Any]) -> str:
    """One line per file, stable order, for diffing two runs of the counter (``proposal``:
    the offline proposal the reference was corrected from, in the reference's units)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(LISTING_COLUMNS)
    w.writerows(_listing_rows(report))
    return buf.getvalue()


def listing_markdown(report: dict[str, Any]) -> str:
    lines = ["| " + " | ".join(LISTING_COLUMNS) + " |", "|" + "---|" * len(LISTING_COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in _listing_rows(report)]
    return "\n".join(lines) + "\n"


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def render_text(report: dict[str, Any]) -> str:
    """The human summary ``hipsense eval mex DIR --counts`` prints."""
    s = report["summary"]
    out = [
        "MEx rep counts (thigh accelerometer; " + report["citation"] + ")",
        f"  clear files {s['sets']}: exact {s['exact_rate']}, within ±1 {s['within1_rate']}, "
        f"MAE {s['mae']} reps/file",
        f"  uncertain files {s['uncertain']['files']}: exact {s['uncertain']['exact_rate']}, "
        f"within ±1 {s['uncertain']['within1_rate']}, MAE {s['uncertain']['mae']}",
        f"  not_visible files {s['not_visible']['files']}: not measurable "
        f"{s['not_visible']['not_measurable']}, low confidence {s['not_visible']['low_confidence']}, "
        f"confident count {s['not_visible']['confident_count']} (confident = confidence ≥ {s['confident_threshold']})",
    ]
    conf = report["by_visibility"]["clear"]["confident_only"]
    out.append(f"  clear files given a confident count {conf['files']}: exact {conf['exact_rate']}, "
               f"MAE {conf['mae']} (the others are shown as 'not sure')")
    a = s["auto_proposal"]
    out.append(f"  the offline proposal on the same clear files: exact {a['exact_rate']}, "
               f"within ±1 {a['within1_rate']}, MAE {a['mae']}")
    b = report["baseline"]["summary"]["clear"]
    out.append(f"  the simple offline peak counter (baseline.py) on the same clear files: exact {b['exact_rate']}, "
               f"within ±1 {b['within1_rate']}, MAE {b['mae']}")
    out.append("  by exercise (clear files; in brackets the offline proposal):")
    for ex, e in report["by_exercise"].items():
        c, p = e["clear"], e["auto_proposal_clear"]
        out.append(f"    {ex:28s} files {c['files']:2d}  exact {c['exact_rate']} ({p['exact_rate']})  "
                   f"within ±1 {c['within1_rate']} ({p['within1_rate']})  MAE {c['mae']} ({p['mae']})")
    sm = report["superman"]
    out.append(f"  superman against big_lifts: exact {sm['big_lifts']['exact_rate']}, MAE {sm['big_lifts']['mae']}")
    for ex, h in report["holds"].items():
        out.append(f"  median hold {ex}: {h['median_hold_s']} s over {h['reps']} reps (no reference exists)")
    out.append("")
    out.append(listing_markdown(report))
    return "\n".join(out)
