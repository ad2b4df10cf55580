"""How much the counts depend on each constant of the counter: a sensitivity study (not a test).

    python benchmarks/sensitivity.py --datasets /work/shared/datasets            # the full study
    python benchmarks/sensitivity.py --datasets ... --only enter_deg,acc_tau_s  # a few parameters
    python benchmarks/sensitivity.py --datasets ... --jobs 1 --out counts.json  # no extra process

Issue 10: the counter was tuned on two people and did worse on people it had not seen. A
constant whose default sits on a knife edge (a modest change makes a big difference) is a
constant fitted to recordings, and the next person is a modest change away. So every
constant is moved by ``x0.7`` and ``x1.4``, one at a time, and every recording we have is
counted again:

* UCI PT (s1, s2; test and template sessions, 25 Hz with a gyroscope), per subject; also the
  UCI hold error (median per-rep |counted hold - gyroscope reference|, hold_reference.py);
* MEx, the ``clear`` files of subjects 01-10 (accelerometer only, streamed in 1 s chunks as
  ``hipsense eval mex --counts`` does), pooled and per subject;
* CMU (one subject; squats, lunges and step-ups go through the rep kernel; jumps and walking
  through the impact and step kernels, which only the orientation settings reach).

What is perturbed (the *effective* value the kernel receives, after the tracker's
per-exercise choices): every numeric field of ``RepSettings`` (hipsense/signal/reps.py) as
``rep_settings_for`` (hipsense/exercises/tracker.py) hands it over — so ``first_rep_min_deg``
is a third of the exercise's ``rom_deg_min``, ``reanchor_s`` at least twice the hold plus 5 s,
and so on; the catalogue's ``rom_deg_min`` / ``rom_deg_max`` themselves (catalogue.toml, which
feed those); every numeric field of ``GravitySettings`` (hipsense/signal/orientation.py: the
angle the counter sees); and, for comparison, the three parameters of the offline baseline
(hipsense/evaluation/baseline.py). The product's code is not changed: the benchmark wraps
``tracker.rep_settings_for`` and ``tracker.pipeline_settings_for`` while it runs. A perturbation
that violates a constraint of ``RepSettings`` (``min_rom_deg >= enter_deg``, ``exit_deg <=
enter_deg``) moves the partner with it and is marked ``*``.

Flags, per parameter, on any data set or UCI subject: ``KNIFE`` when a x0.7 or x1.4 change
raises the MAE by >= 0.5 reps/set or drops the exact share by >= 25 points; ``sensitive`` at
>= 0.2 / >= 12.5 points; ``not-best`` when a perturbation improves the pooled figure (the
default is not at its own optimum); ``splits`` when a perturbation helps one UCI subject and
hurts the other by >= 0.125 MAE each.

Leave one subject out: for each parameter, the factor (0.7, 1 or 1.4) that the other
subjects would choose (lowest MAE; ties keep the default) is scored on the held-out subject.
The gain in sample (each subject's own best factor) against the gain out of sample is how
much tuning on these people fits them rather than people. Also: the factor the two UCI people
choose, scored on MEx and CMU (other people, other exercises).

Work: about 100 configurations x ~6 s; ``--jobs 2`` (the default) runs half of them in one
extra process.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import math
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from hipsense.evaluation import baseline as peak_baseline
from hipsense.evaluation.cmu import CMU_EXERCISES, read_cmu_trial
from hipsense.evaluation.hold_reference import reference_reps, split_reference_blocks
from hipsense.evaluation.mex import read_mex_file
from hipsense.evaluation.mex_counts import MEX_HOLD_S, _find_file, count_recording, read_rep_counts
from hipsense.evaluation.uci import (
    REFERENCE_BLOCK_REPS,
    UCI_EXERCISES,
    UCI_HOLD_S,
    UCI_RATE_HZ,
    find_uci_recordings,
    match_holds,
    read_uci_file,
)
from hipsense.exercises import tracker as tracker_mod
from hipsense.exercises.catalogue import get_exercise
from hipsense.exercises.tracker import TrackerSettings, track
from hipsense.signal.orientation import GravitySettings
from hipsense.signal.reps import RepSettings

FACTORS = (0.7, 1.4)
KNIFE_MAE, KNIFE_EXACT = 0.5, 0.25
SENSITIVE_MAE, SENSITIVE_EXACT = 0.2, 0.125
SPLIT_MAE = 0.125


# -- data ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rec:
    dataset: str  # uci | mex | cmu
    id: str
    subject: str
    exercise: str
    true: int
    t: np.ndarray
    acc: np.ndarray
    gyr: np.ndarray | None
    hold_target_s: float | None
    bidirectional: bool
    hold_refs: tuple[Any, ...] | None = None  # UCI test sessions: the reference's correct block


def load(datasets: Path) -> list[Rec]:
    recs: list[Rec] = []
    for r in find_uci_recordings(datasets / "uci-pt"):
        t, acc, gyr = read_uci_file(r.path)
        refs = None
        if r.session == "test":
            correct, _f, _l = split_reference_blocks(reference_reps(t, acc, gyr, UCI_RATE_HZ))
            if REFERENCE_BLOCK_REPS[0] <= len(correct) <= REFERENCE_BLOCK_REPS[1]:
                refs = tuple(correct)
        recs.append(Rec("uci", r.id, r.subject, UCI_EXERCISES[r.exercise], r.true_count, t, acc, gyr,
                        UCI_HOLD_S, False, refs))
    root = datasets / "mex-thigh"
    for ref in read_rep_counts(root / "rep_counts.csv"):
        if ref.visibility != "clear":
            continue
        t, acc = read_mex_file(_find_file(root, ref))
        recs.append(Rec("mex", ref.id, ref.subject, ref.exercise, ref.reference_count, t, acc, None,
                        MEX_HOLD_S.get(ref.number), get_exercise(ref.exercise).motion.bidirectional))
    for name, ex in CMU_EXERCISES.items():
        path = datasets / "cmu-exercise" / "compact" / f"{name}.csv"
        if path.exists():
            tr = read_cmu_trial(path)
            recs.append(Rec("cmu", name, "cmu", ex, tr.true_count, tr.t_s, tr.acc_ms2, tr.gyr_rad_s, None, False))
    return recs


# -- perturbations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    group: str  # reps | catalogue | gravity | baseline | default
    name: str
    factor: float


def parameters() -> list[tuple[str, str]]:
    out = [("reps", f.name) for f in fields(RepSettings)
           if f.type in ("float", float) and f.name != "reference_rise_deg"]  # 0 unless calibrated
    out += [("catalogue", "rom_deg_min"), ("catalogue", "rom_deg_max")]
    out += [("gravity", f.name) for f in fields(GravitySettings) if f.type in ("float", float)]
    out += [("baseline", n) for n in ("lowpass_hz", "prominence_fraction", "min_distance_s")]
    return out


def _scaled_reps(rs: RepSettings, name: str, factor: float) -> tuple[RepSettings, bool]:
    value = getattr(rs, name) * factor
    try:
        return replace(rs, **{name: value}), False
    except ValueError:
        pass
    # keep the constraints: min_rom_deg >= enter_deg >= exit_deg (the partner moves along)
    changes = {name: value}
    if name == "min_rom_deg":
        changes["enter_deg"] = min(rs.enter_deg, value)
        changes["exit_deg"] = min(rs.exit_deg, changes["enter_deg"])
    elif name == "enter_deg":
        changes["min_rom_deg"] = max(rs.min_rom_deg, value)
        changes["exit_deg"] = min(rs.exit_deg, value)
    elif name == "exit_deg":
        changes["enter_deg"] = max(rs.enter_deg, value)
        changes["min_rom_deg"] = max(rs.min_rom_deg, changes["enter_deg"])
    return replace(rs, **changes), True


@contextmanager
def perturbed(cfg: Config) -> Iterator[list[bool]]:
    """Patch the tracker module's settings builders for one configuration; yields [coupled]."""
    orig_rep, orig_pipe = tracker_mod.rep_settings_for, tracker_mod.pipeline_settings_for
    coupled = [False]

    def rep_settings_for(spec, hold, personal=None):  # noqa: ANN001, ANN202
        if cfg.group == "catalogue":
            motion = replace(spec.motion, **{cfg.name: getattr(spec.motion, cfg.name) * cfg.factor})
            spec = replace(spec, motion=motion)
        rs = orig_rep(spec, hold, personal)
        if cfg.group == "reps":
            rs, c = _scaled_reps(rs, cfg.name, cfg.factor)
            coupled[0] = coupled[0] or c
        return rs

    def pipeline_settings_for(spec, hold, **kw):  # noqa: ANN001, ANN202
        ps = orig_pipe(spec, hold, **kw)
        if cfg.group == "gravity":
            g = ps.gravity
            ps = replace(ps, gravity=replace(g, **{cfg.name: getattr(g, cfg.name) * cfg.factor}))
        return ps

    tracker_mod.rep_settings_for = rep_settings_for
    tracker_mod.pipeline_settings_for = pipeline_settings_for
    try:
        yield coupled
    finally:
        tracker_mod.rep_settings_for, tracker_mod.pipeline_settings_for = orig_rep, orig_pipe


# -- one configuration --------------------------------------------------------------------------

_RECS: list[Rec] = []


def _count(rec: Rec) -> tuple[int, list[float]]:
    """The product's count of one recording (as ``hipsense eval`` runs it), and hold errors."""
    if rec.dataset == "mex":
        res = count_recording(rec.exercise, rec.t, rec.acc, rec.hold_target_s)
        return (len(res.reps) if res.measurable else 0), []
    if rec.dataset == "uci":
        out = track(get_exercise(rec.exercise), rec.t, rec.acc, rec.gyr,
                    TrackerSettings(hold_target_s=UCI_HOLD_S, side="right"))
    else:
        out = track(get_exercise(rec.exercise), rec.t, rec.acc, rec.gyr, TrackerSettings(impact_require_flight=False))
    errors = []
    if rec.hold_refs:
        det = [(r.start_t_s, r.end_t_s) for r in out.reps]
        errors = [abs(out.reps[i].hold_s - rec.hold_refs[j].hold_s) for i, j in match_holds(det, list(rec.hold_refs))]
    return len(out.reps), errors


def run_config(cfg: Config) -> dict[str, Any]:
    t0 = time.process_time()
    counts: dict[str, int] = {}
    holds: dict[str, list[float]] = {}
    coupled = False
    try:
        if cfg.group == "baseline":
            kw = {cfg.name: getattr(peak_baseline, {"lowpass_hz": "LOWPASS_HZ",
                                                   "prominence_fraction": "PROMINENCE_FRACTION",
                                                   "min_distance_s": "MIN_DISTANCE_S"}[cfg.name]) * cfg.factor}
            for rec in _RECS:
                counts[f"{rec.dataset}:{rec.id}"] = peak_baseline.count_peaks(rec.t, rec.acc, both_ways=rec.bidirectional,
                                                                              **kw)
        else:
            with perturbed(cfg) as c:
                for rec in _RECS:
                    n, errs = _count(rec)
                    counts[f"{rec.dataset}:{rec.id}"] = n
                    if errs:
                        holds[f"{rec.dataset}:{rec.id}"] = errs
                coupled = c[0]
    except ValueError as exc:  # a settings class refused the value
        return {"config": cfg.__dict__, "error": str(exc)}
    return {"config": cfg.__dict__, "counts": counts, "holds": holds, "coupled": coupled,
            "cpu_s": round(time.process_time() - t0, 2)}


def _run_many(cfgs: list[Config]) -> list[dict[str, Any]]:
    return [run_config(c) for c in cfgs]


# -- scoring ------------------------------------------------------------------------------------

#: the columns of the table: (label, dataset, subject or None)
VIEWS = (("UCI s1", "uci", "s1"), ("UCI s2", "uci", "s2"), ("MEx clear", "mex", None), ("CMU", "cmu", None))


def score(recs: list[Rec], counts: dict[str, int], dataset: str, subject: str | None = None) -> dict[str, float]:
    errs = [abs(counts[f"{r.dataset}:{r.id}"] - r.true) for r in recs
            if r.dataset == dataset and (subject is None or r.subject == subject)]
    if not errs:
        return {"n": 0, "exact": math.nan, "mae": math.nan}
    return {"n": len(errs), "exact": errs.count(0) / len(errs), "mae": sum(errs) / len(errs)}


def hold_error(holds: dict[str, list[float]], subject: str) -> float:
    errs = [e for k, v in holds.items() if k.startswith(f"uci:{subject}/") for e in v]
    return statistics.median(errs) if errs else math.nan


def _fmt(s: dict[str, float]) -> str:
    return "–" if not s["n"] else f"{round(s['exact'] * s['n'])}/{s['n']} {s['mae']:.2f}"


def analyse(recs: list[Rec], results: dict[tuple[str, str, float], dict[str, Any]]) -> dict[str, Any]:
    """The per-parameter table, flags and the leave-one-subject-out figures."""
    default = results[("default", "", 1.0)]
    base = results[("baseline-default", "", 1.0)]
    rows = []
    for group, name in parameters():
        res = {f: results.get((group, name, f)) for f in FACTORS}
        ref = base if group == "baseline" else default
        row: dict[str, Any] = {"group": group, "name": name, "flags": [], "cells": {}, "coupled": False}
        if any(r is None or "error" in r for r in res.values()):
            row["error"] = "; ".join(r["error"] for r in res.values() if r and "error" in r) or "not run"
            rows.append(row)
            continue
        worst_mae = worst_exact = 0.0
        improves = False
        for label, ds, subj in VIEWS:
            d = score(recs, ref["counts"], ds, subj)
            cells = [score(recs, res[0.7]["counts"], ds, subj), d, score(recs, res[1.4]["counts"], ds, subj)]
            row["cells"][label] = cells
            for c in (cells[0], cells[2]):
                if c["n"]:
                    worst_mae = max(worst_mae, c["mae"] - d["mae"])
                    worst_exact = max(worst_exact, d["exact"] - c["exact"])
        for f in FACTORS:
            pooled = [score(recs, res[f]["counts"], ds) for ds in ("uci", "mex", "cmu")]
            pooled_d = [score(recs, ref["counts"], ds) for ds in ("uci", "mex", "cmu")]
            if all(p["mae"] <= q["mae"] + 1e-9 for p, q in zip(pooled, pooled_d)) and \
                    any(p["mae"] < q["mae"] - 1e-9 for p, q in zip(pooled, pooled_d)):
                improves = True
            s1 = score(recs, res[f]["counts"], "uci", "s1")["mae"] - score(recs, ref["counts"], "uci", "s1")["mae"]
            s2 = score(recs, res[f]["counts"], "uci", "s2")["mae"] - score(recs, ref["counts"], "uci", "s2")["mae"]
            if (s1 <= -SPLIT_MAE and s2 >= SPLIT_MAE) or (s2 <= -SPLIT_MAE and s1 >= SPLIT_MAE):
                row["flags"].append(f"splits@x{f}")
        if worst_mae >= KNIFE_MAE or worst_exact >= KNIFE_EXACT:
            row["flags"].insert(0, "KNIFE")
        elif worst_mae >= SENSITIVE_MAE or worst_exact >= SENSITIVE_EXACT:
            row["flags"].insert(0, "sensitive")
        if improves:
            row["flags"].append("not-best")
        row["worst_mae_rise"] = round(worst_mae, 3)
        row["worst_exact_drop"] = round(worst_exact, 3)
        if group != "baseline":
            row["hold_error_s"] = {s: [hold_error(res[0.7]["holds"], s), hold_error(default["holds"], s),
                                       hold_error(res[1.4]["holds"], s)] for s in ("s1", "s2")}
        row["coupled"] = any(r.get("coupled") for r in res.values())
        # which recordings moved, and how (for the flagged rows' details)
        truth = {f"{r.dataset}:{r.id}": r.true for r in recs}
        row["changed"] = {
            f"x{f}": [(k, ref["counts"][k], res[f]["counts"][k], truth[k]) for k in truth
                      if res[f]["counts"][k] != ref["counts"][k]]
            for f in FACTORS}
        rows.append(row)
    return {"rows": rows, "loso": loso(recs, results), "default": {
        label: score(recs, default["counts"], ds, subj) for label, ds, subj in VIEWS},
        "baseline": {label: score(recs, base["counts"], ds, subj) for label, ds, subj in VIEWS}}


def _choose(recs: list[Rec], options: dict[float, dict[str, int]], pick: Callable[[Rec], bool]) -> float:
    """The factor with the lowest MAE on the recordings ``pick`` selects (ties keep the default,
    then the smaller change)."""
    def mae(counts: dict[str, int]) -> float:
        errs = [abs(counts[f"{r.dataset}:{r.id}"] - r.true) for r in recs if pick(r)]
        return sum(errs) / len(errs)
    return min(options, key=lambda f: (round(mae(options[f]), 9), f != 1.0, abs(math.log(f))))


def _mae(recs: list[Rec], counts: dict[str, int], pick: Callable[[Rec], bool]) -> float:
    errs = [abs(counts[f"{r.dataset}:{r.id}"] - r.true) for r in recs if pick(r)]
    return sum(errs) / len(errs)


def loso(recs: list[Rec], results: dict[tuple[str, str, float], dict[str, Any]]) -> dict[str, Any]:
    """For each product parameter and each held-out subject (UCI: 2, MEx: 10): the factor the
    other subjects choose, scored on the held-out one, against the default there."""
    default = results[("default", "", 1.0)]["counts"]
    out: dict[str, Any] = {"per_parameter": {}}
    tot = {"uci_in": 0.0, "uci_out": 0.0, "mex_in": 0.0, "mex_out": 0.0, "cross_mex": 0.0, "cross_cmu": 0.0}
    n_params = 0
    for group, name in parameters():
        if group == "baseline":
            continue
        options = {1.0: default}
        for f in FACTORS:
            r = results.get((group, name, f))
            if r is None or "error" in r:
                break
            options[f] = r["counts"]
        else:
            n_params += 1
            entry = {}
            for ds, subjects in (("uci", ("s1", "s2")), ("mex", sorted({r.subject for r in recs if r.dataset == "mex"}))):
                gain_in = gain_out = 0.0
                chosen = {}
                for s in subjects:
                    mine = lambda r, s=s, ds=ds: r.dataset == ds and r.subject == s  # noqa: E731
                    others = lambda r, s=s, ds=ds: r.dataset == ds and r.subject != s  # noqa: E731
                    f_out = _choose(recs, options, others)
                    f_in = _choose(recs, options, mine)
                    d = _mae(recs, default, mine)
                    gain_out += d - _mae(recs, options[f_out], mine)
                    gain_in += d - _mae(recs, options[f_in], mine)
                    chosen[s] = f_out
                entry[ds] = {"gain_in_sample": round(gain_in / len(subjects), 4),
                             "gain_out_of_sample": round(gain_out / len(subjects), 4), "chosen_by_others": chosen}
                tot[f"{ds}_in"] += gain_in / len(subjects)
                tot[f"{ds}_out"] += gain_out / len(subjects)
            f_uci = _choose(recs, options, lambda r: r.dataset == "uci")
            cross = {}
            for ds in ("mex", "cmu"):
                pick = lambda r, ds=ds: r.dataset == ds  # noqa: E731
                cross[ds] = round(_mae(recs, default, pick) - _mae(recs, options[f_uci], pick), 4)
                tot[f"cross_{ds}"] += cross[ds]
            entry["uci_choice"] = {"factor": f_uci, "gain_on": cross}
            out["per_parameter"][f"{group}.{name}"] = entry
    out["totals"] = {k: round(v, 4) for k, v in tot.items()}
    out["parameters"] = n_params
    return out


# -- printing -----------------------------------------------------------------------------------


def default_value(group: str, name: str) -> str:
    if group == "reps":
        v = getattr(RepSettings(), name)
        per_ex = {"first_rep_min_deg": "rom_min/3", "first_rep_sure_deg": "rom_min",
                  "reanchor_s": "max(15, 2 hold+5)", "posture_change_deg": "max(70, 1.2 rom_max)"}
        return per_ex.get(name, f"{v:g}")
    if group == "gravity":
        return f"{getattr(GravitySettings(), name):g}"
    if group == "baseline":
        return f"{peak_baseline.PARAMETERS[[k for k in peak_baseline.PARAMETERS if k.startswith(name[:6])][0]]:g}"
    return "catalogue"


def render(report: dict[str, Any]) -> str:
    lines = ["Cells: exact sets / MAE (reps per set) at x0.7 | default | x1.4.",
             "Default product: " + ", ".join(f"{k} {_fmt(v)}" for k, v in report["default"].items()),
             "Default baseline: " + ", ".join(f"{k} {_fmt(v)}" for k, v in report["baseline"].items()), "",
             "| parameter | default | " + " | ".join(v[0] for v in VIEWS) + " | UCI hold err s1 ; s2 (s) | flags |",
             "|---|---|" + "---|" * len(VIEWS) + "---|---|"]
    for row in report["rows"]:
        name = f"{row['group']}.{row['name']}" + ("*" if row.get("coupled") else "")
        if "error" in row:
            lines.append(f"| {name} | {default_value(row['group'], row['name'])} | {row['error']} |")
            continue
        cells = []
        for label, *_ in VIEWS:
            lo, d, hi = row["cells"][label]
            mark = lambda c: f"**{_fmt(c)}**" if c["n"] and (  # noqa: E731
                c["mae"] - d["mae"] >= SENSITIVE_MAE or d["exact"] - c["exact"] >= SENSITIVE_EXACT) else _fmt(c)
            cells.append(f"{mark(lo)} \\| {_fmt(d)} \\| {mark(hi)}")
        holds = row.get("hold_error_s")
        hcell = "–" if not holds else " ; ".join("/".join(f"{x:.2f}" for x in v) for v in holds.values())
        lines.append(f"| {name} | {default_value(row['group'], row['name'])} | " + " | ".join(cells)
                     + f" | {hcell} | {' '.join(row['flags'])} |")
    lines += ["", "Recordings whose count moved (id: default -> perturbed, true), flagged parameters:"]
    for row in report["rows"]:
        if "error" in row or not row["flags"]:
            continue
        for f, ch in row["changed"].items():
            if ch:
                worse = sum(abs(c - t) > abs(d - t) for _, d, c, t in ch)
                lines.append(f"  {row['group']}.{row['name']} {f}: {len(ch)} moved, {worse} worse: " + ", ".join(
                    f"{k} {d}->{c} ({t})" for k, d, c, t in ch[:12]) + (" ..." if len(ch) > 12 else ""))
    lo = report["loso"]
    t = lo["totals"]
    lines += ["", f"Leave one subject out, one parameter at a time ({lo['parameters']} product parameters, "
              "factor 0.7 / 1 / 1.4; sums over parameters of the MAE gained, reps per set; positive = better):",
              f"  UCI (2 subjects): gain in sample {t['uci_in']:+.3f}, out of sample {t['uci_out']:+.3f}",
              f"  MEx (10 subjects, clear files): gain in sample {t['mex_in']:+.3f}, out of sample {t['mex_out']:+.3f}",
              f"  the factor both UCI people choose, scored on MEx {t['cross_mex']:+.3f} and CMU {t['cross_cmu']:+.3f}",
              "", "Parameters where tuning would move (factor chosen != 1 somewhere):"]
    for name, e in lo["per_parameter"].items():
        moved = {**{f"UCI-{k}": v for k, v in e["uci"]["chosen_by_others"].items() if v != 1.0},
                 **{f"MEx-{k}": v for k, v in e["mex"]["chosen_by_others"].items() if v != 1.0}}
        if moved or e["uci_choice"]["factor"] != 1.0:
            lines.append(f"  {name}: UCI out-of-sample gain {e['uci']['gain_out_of_sample']:+.3f} "
                         f"(in {e['uci']['gain_in_sample']:+.3f}); MEx out {e['mex']['gain_out_of_sample']:+.3f} "
                         f"(in {e['mex']['gain_in_sample']:+.3f}); UCI's pick x{e['uci_choice']['factor']} on MEx "
                         f"{e['uci_choice']['gain_on']['mex']:+.3f}, CMU {e['uci_choice']['gain_on']['cmu']:+.3f}; "
                         f"chosen by the others: {moved}")
    return "\n".join(lines)


CROPS_S = (2.0, 1.0, 0.5, 0.25, 0.1, 0.0)


def crop_check(recs: list[Rec]) -> str:
    """Issue 10's failure mode 1 on our own data: every UCI recording cut to start ``d`` s before
    its first raise (the independent gyroscope reference's first raise start, hold_reference.py;
    nothing of a rep is cut, so the truth stays), counted by the product and by the baseline."""
    rows = {}
    for rec in recs:
        if rec.dataset != "uci":
            continue
        refs = reference_reps(rec.t, rec.acc, rec.gyr, UCI_RATE_HZ)
        if not refs:
            continue
        first = refs[0].raise_start_s
        for d in (None, *CROPS_S):
            keep = slice(None) if d is None else rec.t >= first - d
            t, acc, gyr = rec.t[keep], rec.acc[keep], rec.gyr[keep]
            rows.setdefault(d, []).append((rec, _count_product(rec, t, acc, gyr), peak_baseline.count_peaks(t, acc)))
    lines = ["", "Start-crop check (UCI, each recording starting d s before its first raise by the gyroscope "
             "reference; cells exact / MAE, product | baseline):",
             "| start | UCI s1 | UCI s2 | changed (id: full -> cropped, true) |", "|---|---|---|---|"]
    full = {r.id: n for r, n, _ in rows[None]}
    for d, items in rows.items():
        cells = []
        for subj in ("s1", "s2"):
            mine = [(r, n, b) for r, n, b in items if r.subject == subj]
            pe = [abs(n - r.true) for r, n, _ in mine]
            be = [abs(b - r.true) for r, _, b in mine]
            cells.append(f"{pe.count(0)}/{len(pe)} {sum(pe) / len(pe):.2f} \\| {be.count(0)}/{len(be)} {sum(be) / len(be):.2f}")
        moved = ", ".join(f"{r.id} {full[r.id]}->{n} ({r.true})" for r, n, _ in items if n != full[r.id])
        lines.append(f"| {'as recorded' if d is None else f'{d:g} s before'} | {cells[0]} | {cells[1]} | {moved or '–'} |")
    return "\n".join(lines)


START_STEP_S = 0.5


def start_anywhere_check(recs: list[Rec]) -> str:
    """A recording may start anywhere, not only just before a raise (the UCI README: "recording
    starts and ends are not at rest in every file"): every UCI recording cut to start at every
    ``START_STEP_S`` through its first rep cycle (up to the second raise by the gyroscope
    reference), counted by the product. The truth is the product's own count of the whole
    recording less the reference reps whose raise was more than half done at the cut (a rep
    cut in its hold or lowering is not a rep; README: half of the rise must be inside): this
    checks consistency under a cut, not accuracy."""
    rows = []
    for rec in recs:
        if rec.dataset != "uci":
            continue
        refs = reference_reps(rec.t, rec.acc, rec.gyr, UCI_RATE_HZ)
        if len(refs) < 2:
            continue
        full = _count_product(rec, rec.t, rec.acc, rec.gyr)
        for cut in np.arange(rec.t[0] + START_STEP_S, refs[1].raise_start_s, START_STEP_S):
            before = sum(0.5 * (r.raise_start_s + r.raise_end_s) < cut for r in refs)
            keep = rec.t >= cut
            n = _count_product(rec, rec.t[keep], rec.acc[keep], rec.gyr[keep])
            rows.append((rec, float(cut - rec.t[0]), n, full - before))
    lines = ["", f"Start-anywhere check (UCI, every recording cut every {START_STEP_S:g} s through its first rep "
             "cycle; truth = the whole recording's count less the reps more than half raised at the cut):"]
    for subj in ("s1", "s2"):
        mine = [(n, t) for r, _, n, t in rows if r.subject == subj]
        errs = [abs(n - t) for n, t in mine]
        lines.append(f"  {subj}: {len(errs)} cuts, exact {errs.count(0)} ({errs.count(0) / len(errs):.2f}), MAE {sum(errs) / len(errs):.2f}")
    worst: dict[str, list[str]] = {}
    for rec, cut, n, truth in rows:
        if n != truth:
            worst.setdefault(rec.id, []).append(f"{cut:g} s {n} ({truth})")
    for rid, items in sorted(worst.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"  {rid}: {len(items)} cuts off: " + ", ".join(items[:8]) + (" ..." if len(items) > 8 else ""))
    return "\n".join(lines)


END_CROPS_S = (1.0, 0.5, 0.25, 0.0)
TEMPI = (0.7, 0.85, 1.2, 1.4)


def _count_product(rec: Rec, t: np.ndarray, acc: np.ndarray, gyr: np.ndarray | None) -> int:
    if rec.dataset == "mex":
        res = count_recording(rec.exercise, t, acc, rec.hold_target_s)
        return len(res.reps) if res.measurable else 0
    settings = (TrackerSettings(hold_target_s=UCI_HOLD_S, side="right") if rec.dataset == "uci"
                else TrackerSettings(impact_require_flight=False))
    return len(track(get_exercise(rec.exercise), t, acc, gyr, settings).reps)


def end_crop_check(recs: list[Rec]) -> str:
    """Every UCI recording cut to end ``d`` s after its last rep: the later of the gyroscope
    reference's last lowering end and the product's own last rep end on the whole recording
    (the reference does not see the smallest low-amplitude reps: UCI e1, s1 e5) — a patient
    who stops the recording as the leg lands."""
    rows: dict[float | None, list[tuple[Rec, int, int]]] = {}
    for rec in recs:
        if rec.dataset != "uci":
            continue
        refs = reference_reps(rec.t, rec.acc, rec.gyr, UCI_RATE_HZ)
        if not refs:
            continue
        reps = track(get_exercise(rec.exercise), rec.t, rec.acc, rec.gyr,
                     TrackerSettings(hold_target_s=UCI_HOLD_S, side="right")).reps
        last = max(refs[-1].lower_end_s, reps[-1].end_t_s if reps else -math.inf)
        for d in (None, *END_CROPS_S):
            keep = slice(None) if d is None else rec.t <= last + d
            t, acc, gyr = rec.t[keep], rec.acc[keep], rec.gyr[keep]
            rows.setdefault(d, []).append((rec, _count_product(rec, t, acc, gyr), peak_baseline.count_peaks(t, acc)))
    return _crop_table(rows, "End-crop check (UCI, each recording ending d s after its last rep: the later of the "
                             "reference's last lowering end and the product's last rep end; cells exact / MAE, "
                             "product | baseline):", "after")


def _crop_table(rows: dict[float | None, list[tuple[Rec, int, int]]], title: str, word: str) -> str:
    lines = ["", title, "| cut | UCI s1 | UCI s2 | changed (id: full -> cut, true) |", "|---|---|---|---|"]
    full = {r.id: n for r, n, _ in rows[None]}
    for d, items in rows.items():
        cells = []
        for subj in ("s1", "s2"):
            mine = [(r, n, b) for r, n, b in items if r.subject == subj]
            pe = [abs(n - r.true) for r, n, _ in mine]
            be = [abs(b - r.true) for r, _, b in mine]
            cells.append(f"{pe.count(0)}/{len(pe)} {sum(pe) / len(pe):.2f} \\| {be.count(0)}/{len(be)} {sum(be) / len(be):.2f}")
        moved = ", ".join(f"{r.id} {full[r.id]}->{n} ({r.true})" for r, n, _ in items if n != full[r.id])
        lines.append(f"| {'as recorded' if d is None else f'{d:g} s {word}'} | {cells[0]} | {cells[1]} | {moved or '–'} |")
    return "\n".join(lines)


def tempo_check(recs: list[Rec]) -> str:
    """People move at their own pace: every recording played ``k`` times as slow (k < 1: faster;
    resampled at its own rate by linear interpolation, angular rate divided by k; rests and
    holds scale too), counted by the product and by the baseline. The truth stays."""
    lines = ["", "Tempo check (every recording played k x as long: k < 1 faster, k > 1 slower; cells exact / MAE, "
             "product | baseline):", "| k | " + " | ".join(v[0] for v in VIEWS) + " |", "|---|" + "---|" * len(VIEWS)]
    moved: list[str] = []
    as_recorded: dict[str, int] = {}
    for k in (1.0, *TEMPI):
        counts: dict[str, int] = {}
        base: dict[str, int] = {}
        for rec in recs:
            t = rec.t
            if k == 1.0:
                tn, acc, gyr = t, rec.acc, rec.gyr
            else:
                dt = float(np.median(np.diff(t)))
                tn = np.arange(t[0], t[0] + (t[-1] - t[0]) * k, dt)
                src = t[0] + (tn - t[0]) / k
                acc = np.stack([np.interp(src, t, rec.acc[:, i]) for i in range(3)], axis=1)
                gyr = None if rec.gyr is None else np.stack(
                    [np.interp(src, t, rec.gyr[:, i]) for i in range(3)], axis=1) / k
            key = f"{rec.dataset}:{rec.id}"
            counts[key] = _count_product(rec, tn, acc, gyr)
            base[key] = peak_baseline.count_peaks(tn, acc, both_ways=rec.bidirectional)
        cells = [f"{_fmt(score(recs, counts, ds, subj))} \\| {_fmt(score(recs, base, ds, subj))}"
                 for _, ds, subj in VIEWS]
        lines.append(f"| {k:g} | " + " | ".join(cells) + " |")
        if k == 1.0:
            as_recorded = counts
        else:
            truth = {f"{r.dataset}:{r.id}": r.true for r in recs}
            moved.append(f"  k {k:g}, product: " + ", ".join(
                f"{key} {as_recorded[key]}->{n} ({truth[key]})" for key, n in counts.items() if n != as_recorded[key]))
    return "\n".join(lines + ["", "Recordings whose product count moved with the tempo (id: as recorded -> k, true):"] + moved)


AMPLITUDES = (0.5, 0.7)


def scale_amplitude(acc: np.ndarray, gyr: np.ndarray | None, a: float) -> tuple[np.ndarray, np.ndarray | None]:
    """The same recording with every tilt away from the recording's middle pose (the median
    accelerometer direction) scaled by ``a``: each sample rotated about the axis ``middle x u``
    so its angle from the middle becomes ``a`` times what it was (norm kept); angular rate
    scaled by ``a``. A person who moves ``a`` of the range these people moved."""
    u = acc / np.maximum(np.linalg.norm(acc, axis=1, keepdims=True), 1e-9)
    mid = np.median(u, axis=0)
    mid /= np.linalg.norm(mid)
    axis = np.cross(mid, u)
    sin = np.linalg.norm(axis, axis=1)
    theta = np.arctan2(sin, u @ mid)
    k = axis / np.maximum(sin, 1e-12)[:, None]
    phi = ((a - 1.0) * theta)[:, None]  # rotate toward (a < 1) or away from the middle
    v = acc
    rotated = (v * np.cos(phi) + np.cross(k, v) * np.sin(phi)
               + k * np.sum(k * v, axis=1, keepdims=True) * (1 - np.cos(phi)))
    return rotated, None if gyr is None else gyr * a


def amplitude_check(recs: list[Rec]) -> str:
    lines = ["", "Amplitude check (every tilt from the recording's middle pose scaled by a; cells exact / MAE, "
             "product | baseline):", "| a | " + " | ".join(v[0] for v in VIEWS) + " |", "|---|" + "---|" * len(VIEWS)]
    moved: list[str] = []
    as_recorded: dict[str, int] = {}
    truth = {f"{r.dataset}:{r.id}": r.true for r in recs}
    for a in (1.0, *AMPLITUDES):
        counts: dict[str, int] = {}
        base: dict[str, int] = {}
        for rec in recs:
            acc, gyr = (rec.acc, rec.gyr) if a == 1.0 else scale_amplitude(rec.acc, rec.gyr, a)
            key = f"{rec.dataset}:{rec.id}"
            counts[key] = _count_product(rec, rec.t, acc, gyr)
            base[key] = peak_baseline.count_peaks(rec.t, acc, both_ways=rec.bidirectional)
        cells = [f"{_fmt(score(recs, counts, ds, subj))} \\| {_fmt(score(recs, base, ds, subj))}"
                 for _, ds, subj in VIEWS]
        lines.append(f"| {a:g} | " + " | ".join(cells) + " |")
        if a == 1.0:
            as_recorded = counts
        else:
            moved.append(f"  a {a:g}, product: " + ", ".join(
                f"{key} {as_recorded[key]}->{n} ({truth[key]})" for key, n in counts.items() if n != as_recorded[key]))
    return "\n".join(lines + ["", "Recordings whose product count moved with the amplitude (id: as recorded -> a, true):"]
                     + moved)


def main(argv: list[str] | None = None) -> int:
    global _RECS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", type=Path, default=Path("/work/shared/datasets"))
    ap.add_argument("--jobs", type=int, default=2, choices=(1, 2), help="2: one extra process (shared machine)")
    ap.add_argument("--only", default="", help="comma-separated parameter names (default: all)")
    ap.add_argument("--out", type=Path, default=None, help="write every count and the analysis as JSON here")
    ap.add_argument("--crop-only", action="store_true",
                    help="only the start/end-crop, start-anywhere, tempo and amplitude checks (~2 min), not the parameter sweep")
    args = ap.parse_args(argv)
    t0 = time.time()
    _RECS = load(args.datasets)
    print(f"loaded {len(_RECS)} recordings in {time.time() - t0:.1f} s", file=sys.stderr)
    if args.crop_only:
        print(crop_check(_RECS))
        print(start_anywhere_check(_RECS))
        print(end_crop_check(_RECS))
        print(tempo_check(_RECS))
        print(amplitude_check(_RECS))
        return 0
    only = {s for s in args.only.split(",") if s}
    cfgs = [Config("default", "", 1.0), Config("baseline-default", "", 1.0)]
    cfgs[1] = Config("baseline", "lowpass_hz", 1.0)  # the baseline at its own defaults
    cfgs += [Config(g, n, f) for g, n in parameters() if not only or n in only for f in FACTORS]
    if args.jobs == 2:
        # one extra process (fork: it inherits the loaded recordings), the rest here
        ctx = multiprocessing.get_context("fork")
        with cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            fut = pool.submit(_run_many, cfgs[1::2])
            mine = _run_many(cfgs[0::2])
            results_list = mine + fut.result()
    else:
        results_list = _run_many(cfgs)
    results: dict[tuple[str, str, float], dict[str, Any]] = {}
    for r in results_list:
        c = r["config"]
        key = (c["group"], c["name"], c["factor"])
        if key == ("baseline", "lowpass_hz", 1.0):
            key = ("baseline-default", "", 1.0)
        results[key] = r
    report = analyse(_RECS, results)
    print(render(report))
    print(crop_check(_RECS))
    print(start_anywhere_check(_RECS))
    print(end_crop_check(_RECS))
    print(tempo_check(_RECS))
    print(amplitude_check(_RECS))
    cpu = sum(r.get("cpu_s", 0.0) for r in results_list)
    print(f"\n{len(cfgs)} configurations, {cpu:.0f} CPU s, {time.time() - t0:.0f} s wall", file=sys.stderr)
    if args.out:
        args.out.write_text(json.dumps({"report": report, "runs": results_list}, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
