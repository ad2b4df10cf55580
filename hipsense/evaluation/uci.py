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
from hipsense.exercises.tracker import ExerciseTracker, RepResult, TrackerSettings, track
from hipsense.signal.calibration import PersonalRom, fit_personal_rom

from . import baseline as peak_baseline
from .hold_reference import ReferenceRep, reference_reps, split_reference_blocks

UCI_CITATION = (
    "A. Yurtman, B. Barshan, \"Automated evaluation of physical therapy exercises using multi-template "
    "dynamic time warping on wearable sensor signals\", Computer Methods and Programs in Biomedicine "
    "117(2):189-207, 2014, doi:10.1016/j.cmpb.2014.07.003; data set UCI, doi:10.24432/C5JK60. "
    "Licence: CC BY 4.0."
)
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
#: The protocol's ten correct reps, give or take two the reference may miss or split: a
#: reference "correct block" outside this range means its blocks were not found, and the
#: recording gives no hold reference (UCI e1's ~10° seated raise rarely reaches 15 °/s).
REFERENCE_BLOCK_REPS = (8, 12)
#: evaluation.md: a low-amplitude rep is visibly smaller on the thigh below this share of the
#: correct block's median rise
VISIBLY_SMALLER = 0.75


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


def read_template_times(dataset_dir: Path, rec: UciRecording) -> dict[int, tuple[float, float]]:
    """``template_times.txt``: execution type (1 correct, 2 too fast, 3 low amplitude) → the
    (start, end) in seconds of the one rep of that type the data set selected."""
    path = Path(dataset_dir) / rec.subject / f"e{rec.exercise}" / "template_times.txt"
    if not path.exists():
        raise DatasetError(f"personal mode needs {path} (which template reps are the correct ones)")
    out = {}
    with open(path, newline="") as f:
        for row in csv.reader(f, delimiter=";"):
            if not row or not row[0].strip().isdigit():
                continue  # the header
            try:
                out[int(row[0])] = ((float(row[1]) - 1) / UCI_RATE_HZ, (float(row[2]) - 1) / UCI_RATE_HZ)
            except (IndexError, ValueError):
                raise DatasetError(f"{path}: cannot read the line {';'.join(row)!r}") from None
    if 2 not in out:
        raise DatasetError(f"{path}: no too-fast (type 2) rep, so the correct reps cannot be told apart")
    return out


#: what ``hipsense calibrate --exercise`` asks for: three reps "as your therapist showed you"
REFERENCE_REPS = 3


def personal_rom_from_template(dataset_dir: Path, template: UciRecording) -> PersonalRom:
    """The person's reference reps, as ``hipsense calibrate --exercise`` records them.

    A UCI template session holds three correct reps, then three too fast, then three of low
    amplitude: the reference segment runs from its start to the data set's selected too-fast
    rep. Calibration fits :func:`~hipsense.signal.calibration.fit_personal_rom` to the angle
    along the exercise's motion; UCI has no calibration pose (no standing, no swing), so the
    angle here is the tracker's own — its elevation from rest, the quantity its ``rom_deg``
    and ``low_rom`` use — on the same sensor, the same person and the same exercise.
    """
    t, acc, gyr = read_uci_file(template.path)
    fast_start = read_template_times(dataset_dir, template)[2][0]
    keep = t < fast_start
    tracker = ExerciseTracker(get_exercise(UCI_EXERCISES[template.exercise]),
                              TrackerSettings(hold_target_s=UCI_HOLD_S, side="right"))
    angle = tracker.pipeline.push(t[keep], acc[keep], gyr[keep])
    return fit_personal_rom(tracker.spec.id, angle.t_s, angle.angle_deg, expected_reps=REFERENCE_REPS)


def baseline_from(rom: PersonalRom | None) -> float | None:
    """What the service hands the tracker (service/engine.py ``_baseline_rom``): the
    calibrated reference range when its fit was good, else nothing."""
    return rom.rom_deg if rom is not None and rom.ok else None


def evaluate_uci(dataset_dir: Path, *, personal: bool = False) -> dict[str, Any]:
    """Run every UCI set through the tracker; return evaluation.md's JSON-ready dict.

    ``personal``: each set is counted with the person's own reference reps from their template
    session of the same exercise (:func:`personal_rom_from_template`), reaching the tracker
    the way a calibration does (``TrackerSettings.baseline_rom_deg``); ``"mode": "personal"``.
    """
    dataset_dir = Path(dataset_dir)
    recordings = find_uci_recordings(dataset_dir)
    personal_roms: dict[tuple[str, int], PersonalRom] = {}
    if personal:
        for rec in recordings:
            if rec.session == "template":
                personal_roms[(rec.subject, rec.exercise)] = personal_rom_from_template(dataset_dir, rec)
    sets: list[dict[str, Any]] = []
    n_labels = n_matched = n_detected_labelled = 0
    start_err: list[float] = []
    end_err: list[float] = []
    correct_holds: list[float] = []
    holds_by_subject: dict[str, list[float]] = {}
    fast_total = fast_flagged = 0
    low_total = low_flagged = 0
    low_ratios: list[float] = []
    ref_holds_by_subject: dict[str, list[float]] = {}
    hold_errors_by_subject: dict[str, list[float]] = {}
    low_seen = low_smaller = low_smaller_flagged = 0
    for rec in recordings:
        t, acc, gyr = read_uci_file(rec.path)
        spec = get_exercise(UCI_EXERCISES[rec.exercise])
        rom = personal_roms.get((rec.subject, rec.exercise))
        if personal and rom is None:
            raise DatasetError(f"personal mode: {rec.id} has no template session to take reference reps from")
        baseline = baseline_from(rom)
        out = track(spec, t, acc, gyr,
                    TrackerSettings(hold_target_s=UCI_HOLD_S, side="right", baseline_rom_deg=baseline))
        reps = out.reps
        entry: dict[str, Any] = {
            "id": rec.id,
            "exercise": spec.id,
            "true": rec.true_count,
            "counted": len(reps),
            "error": len(reps) - rec.true_count,
            # the simple offline peak counter (baseline.py), on the same recording
            "baseline_counted": peak_baseline.count_peaks(t, acc),
        }
        if personal:
            entry["baseline_rom_deg"] = _r(baseline)
            entry["reference_reps_deg"] = [_r(p) for p in rom.peaks_deg] if rom else []
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
            hold_ref = compare_with_reference(reps, t, acc, gyr)
            if hold_ref is not None:
                entry["hold_reference"] = hold_ref.summary()
                ref_holds_by_subject.setdefault(rec.subject, []).extend(hold_ref.reference_holds)
                hold_errors_by_subject.setdefault(rec.subject, []).extend(hold_ref.errors)
                low_seen += hold_ref.low_seen
                low_smaller += hold_ref.low_smaller
                low_smaller_flagged += hold_ref.low_smaller_flagged
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
    all_errors = [e for v in hold_errors_by_subject.values() for e in v]
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
        # the independent reference (hold_reference.py: gyroscope lobes, offline)
        "hold_reference_median_by_subject_s": {
            k: _r(statistics.median(v)) for k, v in sorted(ref_holds_by_subject.items()) if v},
        "hold_error_median_s": _r(statistics.median(all_errors)) if all_errors else None,
        "hold_error_median_by_subject_s": {
            k: _r(statistics.median(v)) for k, v in sorted(hold_errors_by_subject.items()) if v},
        "hold_reference_reps_matched": len(all_errors),
        "fast_flagged_rate": _r(fast_flagged / fast_total) if fast_total else None,
        "low_rom_flagged_rate": _r(low_flagged / low_total) if low_total else None,
        "low_rom_ratio": _r(statistics.median(low_ratios)) if low_ratios else None,
        # how many low-amplitude reps the thigh shows as smaller (rise < 75 % of the correct
        # block's median, by the reference), and the share of those the counter flagged
        "low_amplitude_reps_seen": low_seen,
        "low_amplitude_visibly_smaller": low_smaller,
        "low_rom_flagged_visible_rate": _r(low_smaller_flagged / low_smaller) if low_smaller else None,
        "recognition_accuracy": None,
    }
    by_subject = {}
    for subject in sorted({s["id"].split("/")[0] for s in sets}):
        errs = [abs(s["error"]) for s in sets if s["id"].startswith(subject + "/")]
        by_subject[subject] = {"sets": len(errs), "exact_rate": _r(errs.count(0) / len(errs)),
                               "within1_rate": _r(sum(e <= 1 for e in errs) / len(errs)),
                               "mae": _r(sum(errs) / len(errs))}
    for s in sets:
        s["subject"] = s["id"].split("/")[0]
    by_exercise = peak_baseline.grouped(sets, "counted", "exercise")
    return {"dataset": "uci-pt", "mode": "personal" if personal else "default", "summary": summary,
            "by_subject": by_subject, "by_exercise": by_exercise, "baseline": _baseline_block(sets),
            "sets": sets, "citation": UCI_CITATION}


def _baseline_block(sets: list[dict[str, Any]]) -> dict[str, Any]:
    """The simple offline peak counter's figures, beside the product's ``summary``,
    ``by_subject`` and ``by_exercise`` (same fields)."""
    return {"method": peak_baseline.METHOD, "parameters": peak_baseline.PARAMETERS,
            "summary": peak_baseline.score((s["baseline_counted"], s["true"]) for s in sets),
            "by_subject": peak_baseline.grouped(sets, "baseline_counted", "subject"),
            "by_exercise": peak_baseline.grouped(sets, "baseline_counted", "exercise")}


@dataclass(frozen=True)
class HoldComparison:
    """One test session's counter reps against the independent reference."""

    reference_holds: list[float]  # every rep of the reference's correct block
    errors: list[float]  # |detected − reference| for those matched to a counted rep
    low_seen: int  # reference reps in the low-amplitude block
    low_smaller: int  # ... that rose < VISIBLY_SMALLER of the correct block's median rise
    low_smaller_flagged: int  # ... whose matched counted rep carries low_rom

    def summary(self) -> dict[str, Any]:
        return {
            "reference_reps": len(self.reference_holds),
            "matched": len(self.errors),
            "reference_median_s": _r(statistics.median(self.reference_holds)),
            "error_median_s": _r(statistics.median(self.errors)) if self.errors else None,
            "low_seen": self.low_seen,
            "low_visibly_smaller": self.low_smaller,
        }


def compare_with_reference(reps: list[RepResult], t: np.ndarray, acc: np.ndarray,
                           gyr: np.ndarray) -> HoldComparison | None:
    """Match counted reps to the reference reps by time (:func:`match_holds`); None when the
    reference cannot find this recording's correct block."""
    correct, _fast, low = split_reference_blocks(reference_reps(t, acc, gyr, UCI_RATE_HZ))
    if not REFERENCE_BLOCK_REPS[0] <= len(correct) <= REFERENCE_BLOCK_REPS[1]:
        return None
    detected = [(r.start_t_s, r.end_t_s) for r in reps]
    errors = [abs(reps[i].hold_s - correct[j].hold_s) for i, j in match_holds(detected, correct)]
    rise = statistics.median(r.rise_deg for r in correct)
    smaller = [j for j, r in enumerate(low) if r.rise_deg < VISIBLY_SMALLER * rise]
    flagged = sum(1 for i, j in match_holds(detected, low) if j in smaller and "low_rom" in reps[i].flags)
    return HoldComparison([r.hold_s for r in correct], errors, len(low), len(smaller), flagged)


def match_holds(detected: list[tuple[float, float]], refs: list[ReferenceRep]) -> list[tuple[int, int]]:
    """A counted rep holds the reference rep whose hold's midpoint lies inside it (each at
    most once, nearest midpoints first). Not evaluation.md's boundary rule (midpoints within
    1 s): a rep that starts where the last one ended still holds this one's hold, and its hold
    is what is compared."""
    cands = []
    for j, ref in enumerate(refs):
        mid = (ref.raise_end_s + ref.lower_start_s) / 2
        for i, (ds, de) in enumerate(detected):
            if ds <= mid <= de:
                cands.append((abs((ds + de) / 2 - mid), i, j))
    used_d, used_r, pairs = set(), set(), []
    for _, i, j in sorted(cands):
        if i not in used_d and j not in used_r:
            used_d.add(i)
            used_r.add(j)
            pairs.append((i, j))
    return pairs


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)
