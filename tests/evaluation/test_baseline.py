"""The simple offline peak counter (hipsense/evaluation/baseline.py) and where it is reported.

Synthetic thigh tilts check the counter itself; the shipped real files (tests/data, see their
READMEs for the citations) check that every ``hipsense eval ... --json`` carries a ``baseline``
block scored like the product's figures, and that docs/accuracy.md shows where it does better.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hipsense.evaluation import baseline as B
from hipsense.evaluation.accuracy import evidence, render_markdown
from hipsense.evaluation.cmu import evaluate_cmu
from hipsense.evaluation.mex_counts import evaluate_mex_counts
from hipsense.evaluation.uci import evaluate_uci

DATA = Path(__file__).resolve().parents[1] / "data"


def _thigh(angle_deg: np.ndarray, fs: float, seed: int = 0, noise_ms2: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """A thigh whose tilt follows ``angle_deg`` in one plane, strapped on at a random rotation."""
    rng = np.random.default_rng(seed)
    a = np.radians(angle_deg)
    g = 9.81 * np.stack([np.sin(a), np.zeros_like(a), np.cos(a)], axis=1)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    acc = g @ q.T + rng.normal(scale=noise_ms2, size=g.shape)
    return np.arange(len(a)) / fs, acc


def _raises(n: int, fs: float, rise_deg: float = 30.0, hold_s: float = 3.0, rest_s: float = 3.0,
            sway_deg: float = 0.0) -> np.ndarray:
    """``n`` raise-hold-lower reps from rest, with a sway of ``sway_deg`` on each hold."""
    pieces = [np.zeros(int(rest_s * fs))]
    for _ in range(n):
        up = np.linspace(0, 1, int(fs))
        hold = np.ones(int(hold_s * fs)) + sway_deg / rise_deg * np.sin(np.linspace(0, 6 * np.pi, int(hold_s * fs)))
        pieces += [rise_deg * up, rise_deg * hold, rise_deg * up[::-1], np.zeros(int(rest_s * fs))]
    return np.concatenate(pieces)


@pytest.mark.parametrize("fs", [25.0, 100.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_counts_raises_whatever_the_mounting_and_rate(fs, seed):
    t, acc = _thigh(_raises(10, fs, sway_deg=3.0), fs, seed)
    assert B.count_peaks(t, acc) == 10
    # units do not matter (MEx is in g): only the direction of gravity is used
    assert B.count_peaks(t, acc / 9.81) == 10


def test_excursions_are_turned_away_from_rest():
    fs = 50.0
    t, acc = _thigh(-_raises(7, fs), fs)  # the reps tilt the other way: still 7, not 8 rests
    assert B.count_peaks(t, acc) == 7


def test_both_ways_counts_every_swing_to_either_side():
    fs = 50.0
    t_s = np.arange(int(24 * fs)) / fs
    angle = 25.0 * np.sin(2 * np.pi * t_s / 3.0)  # 8 full rolls: 16 swings to one side
    t, acc = _thigh(angle, fs)
    assert B.count_peaks(t, acc, both_ways=True) == 16
    assert B.count_peaks(t, acc) == 8


def test_a_rep_below_the_prominence_fraction_is_not_counted():
    fs = 50.0
    big, small = _raises(5, fs, rise_deg=40.0), _raises(1, fs, rise_deg=6.0)  # 15 % of the range
    t, acc = _thigh(np.concatenate([big, small]), fs)
    assert B.count_peaks(t, acc) == 5
    assert B.count_peaks(t, acc, prominence_fraction=0.1) == 6


def test_score_and_grouping():
    assert B.score([(3, 3), (4, 3), (None, 2)]) == {"sets": 3, "exact_rate": 0.3333, "within1_rate": 0.6667,
                                                     "mae": 1.0, "reps_true": 8, "reps_counted": 7}
    sets = [{"g": "a", "c": 1, "true": 1}, {"g": "b", "c": 0, "true": 2}]
    assert B.grouped(sets, "c", "g")["b"]["mae"] == 2.0 and B.score([])["sets"] == 0


@pytest.fixture(scope="module")
def reports():
    return {"uci": evaluate_uci(DATA / "uci-pt"), "mex_counts": evaluate_mex_counts(DATA / "mex"),
            "cmu": evaluate_cmu(DATA / "cmu-exercise")}


def test_every_report_carries_the_baseline_beside_the_product(reports):
    for name, rep in reports.items():
        b = rep["baseline"]
        assert b["parameters"] == B.PARAMETERS and "find_peaks" in b["method"], name
        assert all(isinstance(s["baseline_counted"], int) for s in rep["sets"]), name
    uci = reports["uci"]
    assert uci["baseline"]["summary"] == B.score((s["baseline_counted"], s["true"]) for s in uci["sets"])
    assert set(uci["baseline"]["by_subject"]) == set(uci["by_subject"]) == {"s1", "s2"}
    assert set(uci["baseline"]["by_exercise"]) == set(uci["by_exercise"])
    for group in ("by_subject", "by_exercise"):
        for k, v in uci[group].items():
            assert {"exact_rate", "within1_rate", "mae"} <= set(v) & set(uci["baseline"][group][k])
    mex = reports["mex_counts"]
    clear = [s for s in mex["sets"] if s["visibility"] == "clear"]
    errs = [abs(s["baseline_counted"] - s["true"]) for s in clear]
    assert mex["baseline"]["summary"]["clear"]["mae"] == pytest.approx(sum(errs) / len(errs), abs=1e-4)
    assert set(mex["baseline"]["by_exercise"]) == set(mex["by_exercise"])
    assert set(mex["baseline"]["by_subject"]) == set(mex["by_subject"]) == {"07", "10"}
    cmu = reports["cmu"]
    assert set(cmu["baseline"]["by_exercise"]) == set(cmu["by_exercise"])


def test_accuracy_md_shows_where_the_baseline_does_better(reports):
    md = render_markdown(reports, evidence(reports))
    assert "## Against a simple offline peak counter" in md
    # make the baseline perfect on UCI subject s1: its row must say so
    uci = dict(reports["uci"])
    b = dict(uci["baseline"])
    s1 = dict(b["by_subject"]["s1"], exact_rate=1.0, within1_rate=1.0, mae=0.0)
    uci["baseline"] = {**b, "by_subject": {**b["by_subject"], "s1": s1}}
    prod_s1 = uci["by_subject"]["s1"]
    uci["by_subject"] = {**uci["by_subject"], "s1": {**prod_s1, "mae": 0.5, "exact_rate": 0.5}}
    md = render_markdown({**reports, "uci": uci}, evidence(reports))
    row = next(line for line in md.splitlines() if line.startswith("| UCI PT | subject s1 |"))
    assert row.endswith("| **baseline** |")
    # a report from before the baseline existed renders without the section
    old = {k: {kk: vv for kk, vv in v.items() if kk != "baseline"} for k, v in reports.items()}
    assert "Against a simple" not in render_markdown(old, evidence(old))


def test_the_text_reports_show_the_baseline_too():
    from click.testing import CliRunner

    from hipsense.cli import main

    res = CliRunner().invoke(main, ["eval", "cmu", str(DATA / "cmu-exercise")])
    assert res.exit_code == 0, res.output
    assert "baseline (offline peaks)" in res.output and " baseline " in res.output.splitlines()[-1]
    res = CliRunner().invoke(main, ["eval", "mex", str(DATA / "mex"), "--counts"])
    assert res.exit_code == 0, res.output
    assert "simple offline peak counter" in res.output
