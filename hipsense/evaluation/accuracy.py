"""docs/accuracy.md and the catalogue's evidence, generated from ``hipsense eval --json`` reports.

A therapist reading a count on the dashboard should know whether it rests on evidence. For
every catalogue exercise this module says how a thigh sensor measures it (counted, timed, or
not measurable from the thigh), which real recordings it was measured on (data set and
people, or "synthetic only") and the figures there. The same facts go to
``hipsense/exercises/evidence.json``, which the catalogue attaches to each exercise as its
``evidence`` field (so ``hipsense exercises --json`` carries them).

Refresh both with ``hipsense eval-report`` (or ``hipsense eval-report --from-json DIR``):
everything below is computed from the reports, nothing is typed in by hand.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hipsense.exercises.catalogue import load_catalogue
from hipsense.exercises.spec import ExerciseSpec

#: report name → (data set folder, how to run it); ``hipsense eval-report`` runs these
REPORTS = ("uci", "uci_personal", "mex_counts", "mex_recognition", "cmu")

CITATIONS = {
    "uci-pt": "A. Yurtman, B. Barshan, \"Automated evaluation of physical therapy exercises using "
              "multi-template dynamic time warping on wearable sensor signals\", Computer Methods "
              "and Programs in Biomedicine 117(2):189-207, 2014, doi:10.1016/j.cmpb.2014.07.003; "
              "data set UCI, doi:10.24432/C5JK60",
    "mex-thigh": "A. Wijekoon, N. Wiratunga, K. Cooper, \"MEx: Multi-modal Exercises Dataset for "
                 "Human Activity Recognition\", arXiv:1908.08992, 2019; reference rep counts made "
                 "for hipsense by people outside the team (shared/datasets/mex-thigh/rep_counts.csv)",
    "cmu-exercise": "V. Phan et al., \"Seven Things to Know About Exercise Classification With "
                    "Inertial Sensing Wearables\", IEEE JBHI 28(6):3411-3421, 2024, "
                    "doi:10.1109/JBHI.2024.3368042",
}
LICENCE = "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)"
HOW = {
    "reps": "counted", "cycles": "counted", "impacts": "counted", "steps": "counted",
    "holds": "timed (holds)", "timed": "not measurable from the thigh (time only)",
}


def run_reports(datasets: Path) -> dict[str, dict[str, Any]]:
    """Run every evaluation on ``datasets`` (laid out as shared/datasets); skip missing sets."""
    from .cmu import evaluate_cmu
    from .mex import evaluate_mex
    from .mex_counts import evaluate_mex_counts
    from .uci import evaluate_uci

    jobs: dict[str, tuple[str, Callable[[Path], dict[str, Any]]]] = {
        "uci": ("uci-pt", evaluate_uci),
        "uci_personal": ("uci-pt", lambda d: evaluate_uci(d, personal=True)),
        "mex_counts": ("mex-thigh", evaluate_mex_counts),
        "mex_recognition": ("mex-thigh", evaluate_mex),
        "cmu": ("cmu-exercise", evaluate_cmu),
    }
    out = {}
    for name, (folder, run) in jobs.items():
        if (datasets / folder).is_dir():
            out[name] = run(datasets / folder)
    return out


def load_reports(folder: Path) -> dict[str, dict[str, Any]]:
    """``<name>.json`` for each of :data:`REPORTS` that exists in ``folder``."""
    return {n: json.loads((folder / f"{n}.json").read_text(encoding="utf-8"))
            for n in REPORTS if (folder / f"{n}.json").is_file()}


def _score(sets: list[dict[str, Any]]) -> dict[str, Any]:
    pairs = [((s["counted"] or 0), s["true"]) for s in sets if s.get("true") is not None]
    if not pairs:
        return {"sets": 0}
    errs = [abs(c - t) for c, t in pairs]
    return {
        "sets": len(pairs),
        "exact": sum(e == 0 for e in errs),
        "within1": sum(e <= 1 for e in errs),
        "mae": round(sum(errs) / len(errs), 2),
    }


def _subjects(sets: list[dict[str, Any]]) -> list[str]:
    return sorted({s["id"].split("/")[0] for s in sets})


def evidence(reports: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per catalogue exercise: how it is measured, on which real data, and the figures."""
    out = {}
    for spec in load_catalogue().values():
        entry: dict[str, Any] = {"how": HOW[spec.measure], "measured_on": [], "figures": {}}
        _add_uci(entry, spec, reports)
        _add_mex(entry, spec, reports)
        _add_cmu(entry, spec, reports)
        entry["synthetic_only"] = not entry["measured_on"]
        out[spec.id] = entry
    return out


def _add_uci(entry: dict[str, Any], spec: ExerciseSpec, reports: dict[str, dict[str, Any]]) -> None:
    rep = reports.get("uci")
    sets = [s for s in rep["sets"] if s["exercise"] == spec.id] if rep else []
    if not sets:
        return
    people = _subjects(sets)
    entry["measured_on"].append({"dataset": "uci-pt", "people": len(people), "subjects": people,
                                 "sets": len(sets)})
    fig: dict[str, Any] = {"count": _score(sets)}
    personal = reports.get("uci_personal")
    if personal:
        fig["count_personal"] = _score([s for s in personal["sets"] if s["exercise"] == spec.id])
    holds = [s["hold_reference"] for s in sets if s.get("hold_reference")]
    if holds:
        errs = [h["error_median_s"] for h in holds if h["error_median_s"] is not None]
        fig["hold_reference_median_s"] = round(statistics.median(h["reference_median_s"] for h in holds), 2)
        fig["hold_error_median_s"] = round(statistics.median(errs), 2) if errs else None
    entry["figures"]["uci-pt"] = fig


def _add_mex(entry: dict[str, Any], spec: ExerciseSpec, reports: dict[str, dict[str, Any]]) -> None:
    counts, recog = reports.get("mex_counts"), reports.get("mex_recognition")
    sets = [s for s in counts["sets"] if s["exercise"] == spec.id] if counts else []
    fig: dict[str, Any] = {}
    if sets:
        people = _subjects(sets)
        entry["measured_on"].append({"dataset": "mex-thigh", "people": len(people), "subjects": people,
                                     "sets": len(sets)})
        by_vis = {v: [s for s in sets if s["visibility"] == v] for v in ("clear", "uncertain", "not_visible")}
        fig["count_clear"] = _score(by_vis["clear"])
        fig["count_uncertain"] = _score(by_vis["uncertain"])
        fig["answers"] = {a: sum(s["answer"] == a for s in sets)
                          for a in ("count", "low_confidence", "not_measurable")}
        fig["not_visible_files"] = len(by_vis["not_visible"])
        fig["not_visible_confident"] = sum(s["answer"] == "count" for s in by_vis["not_visible"])
        hold = counts.get("holds", {}).get(spec.id)
        if hold and hold["median_hold_s"] is not None:
            fig["hold_median_s_no_reference"] = hold["median_hold_s"]
        if spec.id == "quadruped_opposite_arm_leg":
            big = counts["superman"]["big_lifts"]
            fig["count_vs_big_lifts"] = {"files": big["files"], "exact_rate": big["exact_rate"], "mae": big["mae"]}
    if recog:
        conf = recog["confusion"]
        if spec.id in conf["labels"]:
            i = conf["labels"].index(spec.id)
            row = conf["matrix"][i]
            total = sum(row) + conf["unknown"][i]
            if total:
                fig["recognised_rate_loso"] = round(row[i] / total, 3)
    if fig:
        entry["figures"]["mex-thigh"] = fig


def _add_cmu(entry: dict[str, Any], spec: ExerciseSpec, reports: dict[str, dict[str, Any]]) -> None:
    rep = reports.get("cmu")
    sets = [s for s in rep["sets"] if s["exercise"] == spec.id] if rep else []
    if not sets:
        return
    entry["measured_on"].append({"dataset": "cmu-exercise", "people": 1, "subjects": ["one subject"],
                                 "sets": len(sets)})
    entry["figures"]["cmu-exercise"] = {"count": _score(sets)}


# -- rendering ----------------------------------------------------------------------------------


def _fmt_score(s: dict[str, Any]) -> str:
    if not s.get("sets"):
        return "–"
    return f"exact {s['exact']}/{s['sets']}, ±1 {s['within1']}/{s['sets']}, MAE {s['mae']}"


def _cell_data(e: dict[str, Any]) -> str:
    if e["synthetic_only"]:
        return "synthetic only"
    names = {"uci-pt": "UCI PT", "mex-thigh": "MEx", "cmu-exercise": "CMU"}
    return "; ".join(f"{names[m['dataset']]}: {_n(m['people'], 'person', 'people')}, "
                     f"{_n(m['sets'], 'recording', 'recordings')}" for m in e["measured_on"])


def _n(k: int, one: str, many: str) -> str:
    return f"{k} {one if k == 1 else many}"


def _cell_figures(e: dict[str, Any]) -> str:
    parts = []
    f = e["figures"]
    if "uci-pt" in f:
        u = f["uci-pt"]
        parts.append(f"UCI: {_fmt_score(u['count'])}")
        if "count_personal" in u:
            parts.append(f"UCI personal reference: {_fmt_score(u['count_personal'])}")
        if u.get("hold_reference_median_s") is not None:
            parts.append(f"UCI hold: reference median {u['hold_reference_median_s']} s, "
                         f"per-rep error median {u['hold_error_median_s']} s")
    if "mex-thigh" in f:
        m = f["mex-thigh"]
        if "count_clear" in m:
            if m["count_clear"].get("sets"):
                parts.append(f"MEx clear: {_fmt_score(m['count_clear'])}")
            if m["count_uncertain"].get("sets"):
                parts.append(f"MEx uncertain: {_fmt_score(m['count_uncertain'])}")
            if m["not_visible_files"]:
                parts.append(f"MEx not visible on the thigh: {m['not_visible_files']} files, "
                             f"{m['not_visible_confident']} given a confident count")
            a = m["answers"]
            parts.append(f"answers: {a['count']} counts, {a['low_confidence']} 'not sure', "
                         f"{a['not_measurable']} 'not measurable'")
        if "count_vs_big_lifts" in m:
            b = m["count_vs_big_lifts"]
            parts.append(f"MEx against the sensor leg's lifts only: exact rate {b['exact_rate']}, MAE {b['mae']}")
        if "hold_median_s_no_reference" in m:
            parts.append(f"MEx median hold {m['hold_median_s_no_reference']} s (no reference exists)")
        if "recognised_rate_loso" in m:
            parts.append(f"recognised {round(100 * m['recognised_rate_loso'])} % (leave one subject out)")
    if "cmu-exercise" in f:
        parts.append(f"CMU: {_fmt_score(f['cmu-exercise']['count'])}")
    return "<br>".join(parts) if parts else "–"


def _per(by_subject: dict[str, float] | None) -> str:
    return ", ".join(f"{k} {v} s" for k, v in (by_subject or {}).items()) or "–"


def render_markdown(reports: dict[str, dict[str, Any]], ev: dict[str, dict[str, Any]]) -> str:
    catalogue = load_catalogue()
    lines = [
        "# What hipsense's numbers rest on",
        "",
        "<!-- generated by `hipsense eval-report` from the `hipsense eval --json` reports; do not edit by hand -->",
        "",
        "One row per catalogue exercise: how a single thigh sensor measures it, the real recordings",
        "it was measured on, and how well it did there. \"Synthetic only\" means the only evidence is",
        "the project's own simulated recordings: treat those counts as unproven. Every figure comes",
        "from people the project did not record; see docs/evaluation.md for the metrics.",
        "",
        "* **counted** — reps (or circles, jumps, steps) are counted;",
        "* **timed (holds)** — a stretch is measured by how long it is held;",
        "* **not measurable from the thigh** — the thigh barely moves: only the time spent is shown.",
        "",
        "MEx files are rated by people outside the team as `clear`, `uncertain` (the reference itself",
        "may be off by one or more) or `not_visible` (the thigh does not show the reps; the honest",
        "answer is \"not measurable\" or a count marked not sure). A count is shown as a number when its",
        "confidence (hipsense/exercises/confidence.py: reps above the rest noise, alike in size and",
        "pace) is at least 0.5; otherwise it is marked \"not sure\". The service works it out for",
        "every set it counts (the tracker keeps, rep by rep, what it needs) and flags a set below 0.5",
        "`uncertain_count`, and the session with it; the dashboard reads it \"count not sure\".",
        "",
        "| exercise | how | measured on | figures |",
        "|---|---|---|---|",
    ]
    for ex_id, e in ev.items():
        lines.append(f"| {catalogue[ex_id].name} (`{ex_id}`) | {e['how']} | {_cell_data(e)} | {_cell_figures(e)} |")
    lines += ["", "## Summaries", ""]
    if "uci" in reports:
        s = reports["uci"]["summary"]
        lines.append(f"* UCI PT (s1, s2; `hipsense eval uci-pt DIR --json`): {s['sets']} sets, exact "
                     f"{s['exact_rate']}, within ±1 {s['within1_rate']}, MAE {s['mae']}; holds per subject "
                     f"{_per(s.get('hold_median_by_subject_s'))} against the gyroscope reference "
                     f"{_per(s.get('hold_reference_median_by_subject_s'))} (per-rep error median "
                     f"{s.get('hold_error_median_s')} s); low-amplitude reps visibly smaller on the thigh "
                     f"{s.get('low_amplitude_visibly_smaller')} of {s.get('low_amplitude_reps_seen')}, "
                     f"flagged {s.get('low_rom_flagged_visible_rate')}.")
    if "uci_personal" in reports:
        s = reports["uci_personal"]["summary"]
        lines.append(f"* UCI PT with the person's own reference reps (`--personal`): exact {s['exact_rate']}, "
                     f"within ±1 {s['within1_rate']}, MAE {s['mae']}, low-amplitude flagged "
                     f"{s['low_rom_flagged_rate']}. Today only the reference range of motion reaches the "
                     "tracker (`TrackerSettings.baseline_rom_deg`, as after `hipsense calibrate --exercise`): "
                     "it changes form flags, not counts.")
    if "mex_counts" in reports:
        s = reports["mex_counts"]["summary"]
        lines.append(f"* MEx (subjects 01–10; `hipsense eval mex DIR --counts --json`): clear files {s['sets']}: "
                     f"exact {s['exact_rate']}, within ±1 {s['within1_rate']}, MAE {s['mae']}; uncertain "
                     f"{s['uncertain']['files']}: exact {s['uncertain']['exact_rate']}, MAE {s['uncertain']['mae']}; "
                     f"not visible {s['not_visible']['files']}: {s['not_visible']['not_measurable']} not "
                     f"measurable, {s['not_visible']['low_confidence']} not sure, "
                     f"{s['not_visible']['confident_count']} confident counts."
                     + (f" The offline proposal the references were corrected from scores exact "
                        f"{s['auto_proposal']['exact_rate']}, within ±1 {s['auto_proposal']['within1_rate']}, "
                        f"MAE {s['auto_proposal']['mae']} on the same clear files (it is favoured: the "
                        "references are its corrections)." if s.get("auto_proposal") else ""))
    if "mex_recognition" in reports:
        s = reports["mex_recognition"]["summary"]
        lines.append(f"* MEx exercise recognition, leave one subject out (`hipsense eval mex DIR --json`): "
                     f"{s['recognition_accuracy']}.")
    if "cmu" in reports:
        s = reports["cmu"]["summary"]
        lines.append(f"* CMU (one subject; `hipsense eval cmu DIR --json`): {s['sets']} sets, exact "
                     f"{s['exact_rate']}, MAE {s['mae']}.")
    lines += _baseline_section(reports)
    lines += ["", "## Data and licences", ""]
    lines += [f"* {name}: {cite}. Licence {LICENCE}." for name, cite in CITATIONS.items()]
    lines += ["", "The figures above are derived from these data sets; they are shared under the same "
              "licence with this attribution.", ""]
    return "\n".join(lines)


def _cmp(prod: dict[str, Any], base: dict[str, Any]) -> tuple[str, str, str]:
    """Two scores with the same fields → (product cell, baseline cell, which is better)."""
    def cell(x: dict[str, Any]) -> str:
        n = x.get("sets", x.get("files"))
        if not n:
            return "–"
        return (f"exact {round(x['exact_rate'] * n)}/{n}, ±1 {round(x['within1_rate'] * n)}/{n}, "
                f"MAE {round(x['mae'], 2)}")
    if not prod.get("sets", prod.get("files")) or not base.get("sets", base.get("files")):
        return cell(prod), cell(base), ""
    key_p, key_b = (prod["mae"], -prod["exact_rate"]), (base["mae"], -base["exact_rate"])
    better = "product" if key_p < key_b else "**baseline**" if key_b < key_p else "tie"
    return cell(prod), cell(base), better


def _baseline_section(reports: dict[str, dict[str, Any]]) -> list[str]:
    """The product's counter beside the simple offline peak counter (baseline.py), on the same
    recordings, per data set, person and exercise. Where the baseline does better, it shows."""
    rows: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
    uci = reports.get("uci")
    if uci and "baseline" in uci:
        b = uci["baseline"]
        rows.append(("UCI PT", "all sets", uci["summary"], b["summary"]))
        rows += [("UCI PT", f"subject {k}", v, b["by_subject"][k]) for k, v in uci["by_subject"].items()]
        rows += [("UCI PT", f"`{k}`", v, b["by_exercise"][k]) for k, v in uci["by_exercise"].items()]
    mex = reports.get("mex_counts")
    if mex and "baseline" in mex:
        b = mex["baseline"]
        clear = {**mex["summary"], "files": mex["summary"]["sets"]}
        rows.append(("MEx", "clear files", clear, b["summary"]["clear"]))
        rows.append(("MEx", "uncertain files", mex["summary"]["uncertain"], b["summary"]["uncertain"]))
        rows += [("MEx", f"subject {k} (clear)", v["clear"], b["by_subject"][k]["clear"])
                 for k, v in mex["by_subject"].items()]
        rows += [("MEx", f"`{k}` (clear)", v["clear"], b["by_exercise"][k]["clear"])
                 for k, v in mex["by_exercise"].items() if v["clear"].get("files")]
    cmu = reports.get("cmu")
    if cmu and "baseline" in cmu:
        b = cmu["baseline"]
        rows.append(("CMU", "all sets", cmu["summary"], b["summary"]))
        rows += [("CMU", f"`{k}`", v, b["by_exercise"][k]) for k, v in cmu["by_exercise"].items()]
    if not rows:
        return []
    params = next(r["baseline"]["parameters"] for r in (uci, mex, cmu) if r and "baseline" in r)
    out = ["", "## Against a simple offline peak counter", "",
           "The same recordings counted by a plain offline peak counter (`hipsense/evaluation/baseline.py`: "
           "the accelerometer's tilt on its first principal axis, zero-phase low-pass, `scipy.signal.find_peaks` "
           "with a prominence relative to the recording's own range; parameters "
           + ", ".join(f"{k} = {v}" for k, v in params.items())
           + ", chosen once and the same for every data set). It sees the whole recording at once; the "
           "product streams. \"better\": lower MAE, then more exact sets. The baseline is in the JSON of "
           "`hipsense eval ... --json` as `baseline`.", "",
           "| data set | sets | product | baseline | better |", "|---|---|---|---|---|"]
    for ds, group, p, bl in rows:
        pc, bc, better = _cmp(p, bl)
        out.append(f"| {ds} | {group} | {pc} | {bc} | {better} |")
    out += ["", "How much these figures depend on the counter's constants (each moved x0.7 and x1.4; "
            "`benchmarks/sensitivity.py`), a leave-one-subject-out check and the knife edges found: "
            "docs/signal.md, \"How robust the constants are\"."]
    return out


def write_all(reports: dict[str, dict[str, Any]], markdown_path: Path, evidence_path: Path,
              json_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    """Write docs/accuracy.md and the evidence file (and the reports, if ``json_dir``)."""
    ev = evidence(reports)
    if json_dir is not None:
        json_dir.mkdir(parents=True, exist_ok=True)
        for name, rep in reports.items():
            (json_dir / f"{name}.json").write_text(json.dumps(rep, indent=1) + "\n", encoding="utf-8")
    markdown_path.write_text(render_markdown(reports, ev), encoding="utf-8")
    doc = {
        "generated_by": "hipsense eval-report (hipsense/evaluation/accuracy.py)",
        "licence": LICENCE,
        "citations": CITATIONS,
        "exercises": ev,
    }
    evidence_path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return ev
