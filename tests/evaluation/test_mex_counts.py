"""MEx rep counting harness (`hipsense eval mex DIR --counts`) on the shipped MEx files.

The files and the reference counts in tests/data/mex are real (subjects 07 and 10, see its
README for the citation); these tests check the harness — what it runs, how it scores, what it
answers for files the thigh does not show — not the counter's accuracy, which the full data
set measures.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hipsense.cli import main
from hipsense.errors import DatasetError
from hipsense.evaluation.mex import read_mex_file
from hipsense.evaluation.mex_counts import (
    MEX_HOLD_S,
    _score,
    count_recording,
    evaluate_mex_counts,
    listing_csv,
    read_rep_counts,
)
from hipsense.exercises.catalogue import get_exercise
from hipsense.exercises.tracker import TrackerSettings, track

DATA = Path(__file__).resolve().parents[1] / "data" / "mex"
SUMMARY_KEYS = {"sets", "exact_rate", "within1_rate", "mae", "reps_true", "reps_counted", "miss_rate",
                "false_rate", "f1", "hold_median_s", "hold_median_by_subject_s",
                "hold_reference_median_by_subject_s", "hold_error_median_s", "fast_flagged_rate",
                "low_rom_flagged_rate", "recognition_accuracy"}


@pytest.fixture(scope="module")
def report():
    return evaluate_mex_counts(DATA)


def test_every_listed_file_is_counted_and_scored(report):
    refs = read_rep_counts(DATA / "rep_counts.csv")
    assert [s["id"] for s in report["sets"]] == [r.id for r in refs]
    assert len(report["sets"]) == 16
    assert SUMMARY_KEYS <= set(report["summary"])
    for s in report["sets"]:
        if s["counted"] is not None and s["true"] is not None:
            assert s["error"] == s["counted"] - s["true"]
    # the headline is the clear files, and its numbers are those of the per-file entries
    clear = [s for s in report["sets"] if s["visibility"] == "clear"]
    errs = [abs((s["counted"] or 0) - s["true"]) for s in clear]
    assert report["summary"]["sets"] == len(clear) == 10
    assert report["summary"]["mae"] == pytest.approx(sum(errs) / len(errs), abs=1e-4)
    assert report["summary"]["exact_rate"] == pytest.approx(errs.count(0) / len(errs), abs=1e-4)
    assert report["summary"]["reps_true"] == sum(s["true"] for s in clear)
    assert report["by_visibility"]["uncertain"]["files"] == 3
    c = report["by_visibility"]["clear"]
    assert c["confident_only"]["files"] + c["low_confidence_only"]["files"] == 10
    assert c["confident_only"]["files"] == sum(s["answer"] == "count" for s in clear)
    assert set(report["by_subject"]) == {"07", "10"}
    assert sum(e["clear"]["files"] for e in report["by_exercise"].values()) == 10
    assert "arXiv:1908.08992" in report["citation"]
    json.dumps(report)


def test_not_visible_files_never_get_a_confident_count(report):
    hidden = [s for s in report["sets"] if s["visibility"] == "not_visible"]
    assert len(hidden) == 3
    assert all(s["answer"] in ("not_measurable", "low_confidence") for s in hidden)
    # prone punches are timed by the catalogue: "not measurable", no number at all
    punches = [s for s in hidden if s["exercise"] == "quadruped_punches"]
    assert punches and all(s["answer"] == "not_measurable" and s["counted"] is None for s in punches)
    assert report["summary"]["not_visible_confident_counts"] == 0


def test_the_count_is_the_service_trackers_streamed_or_batched(report):
    # the harness streams 1 s chunks through ExerciseTracker; the batch tracker agrees
    for s in report["sets"]:
        if s["counted"] is None:
            continue
        subject, name = s["id"].split("/")
        t, acc = read_mex_file(DATA / "act" / subject / f"{name}.csv.gz")
        spec = get_exercise(s["exercise"])
        batch = track(spec, t, acc, None, TrackerSettings(hold_target_s=MEX_HOLD_S.get(name[:2])))
        assert s["counted"] == len(batch.reps), s["id"]


def test_press_ups_are_counted_now():
    t, acc = read_mex_file(DATA / "act" / "10" / "05_act_1.csv.gz")
    res = count_recording("press_ups", t, acc)
    assert res.measurable
    assert len(res.reps) >= 5  # twelve press-ups by eye, 3-20° of thigh pitch each


def test_the_offline_proposal_is_scored_as_the_bar(report):
    rolls = next(s for s in report["sets"] if s["id"] == "07/01_act_1")
    assert rolls["auto_proposal"] == 18  # it counted 9 cycles: 18 rolls to one side
    bar = report["summary"]["auto_proposal"]
    assert bar["files"] == 10
    clear = [s for s in report["sets"] if s["visibility"] == "clear"]
    assert bar["mae"] == pytest.approx(sum(abs(s["auto_proposal"] - s["true"]) for s in clear) / 10, abs=1e-4)


def test_superman_is_scored_against_big_lifts_too(report):
    sm = report["superman"]
    assert sm["reference_count"]["files"] == sm["big_lifts"]["files"] == 2


def test_holds_have_no_reference(report):
    assert set(report["holds"]) <= {"bridge", "pelvic_tilt", "quadruped_opposite_arm_leg"}
    assert all(h["reference"] is None for h in report["holds"].values())
    assert report["summary"]["hold_error_median_s"] is None


def test_scoring_counts_an_unmeasured_file_as_zero():
    entries = [{"true": 10, "counted": 10}, {"true": 10, "counted": 11}, {"true": 10, "counted": None},
               {"true": None, "counted": 4}]
    s = _score(entries)
    assert s["files"] == 3 and s["not_measurable"] == 1
    assert s["exact_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["within1_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["mae"] == pytest.approx(11 / 3, abs=1e-4)


def _write_counts(tmp_path: Path, rows: list[str]) -> Path:
    header = "subject,file,exercise,reference_count,big_lifts,visibility,auto_count,note"
    (tmp_path / "rep_counts.csv").write_text("\n".join([header, *rows]) + "\n")
    return tmp_path / "rep_counts.csv"


@pytest.mark.parametrize("row, message", [
    ("07,02_act_1.csv.gz,02_bridging,nine,,clear,9,", "whole number"),
    ("07,02_act_1.csv.gz,02_bridging,9,,obvious,9,", "visibility"),
    ("07,02_act_1.csv.gz,02_bridging,,,clear,9,", "needs a reference_count"),
    ("07,09_act_1.csv.gz,09_yoga,3,,clear,3,", "not a MEx exercise"),
])
def test_bad_reference_rows_name_the_line(tmp_path, row, message):
    path = _write_counts(tmp_path, [row])
    with pytest.raises(DatasetError, match=message) as err:
        read_rep_counts(path)
    assert ":2" in str(err.value)


def test_a_listed_file_that_is_missing_is_an_error(tmp_path):
    _write_counts(tmp_path, ["07,02_act_1.csv.gz,02_bridging,9,,clear,9,"])
    with pytest.raises(DatasetError, match="not under"):
        evaluate_mex_counts(tmp_path)


def test_cli_json_and_listing(tmp_path, report):
    listing = tmp_path / "listing.csv"
    res = CliRunner().invoke(main, ["eval", "mex", str(DATA), "--counts", "--json", "--listing", str(listing)])
    assert res.exit_code == 0, res.output
    got = json.loads(res.output)
    assert got["mode"] == "counts" and got["summary"] == report["summary"]
    assert listing.read_text() == listing_csv(report)
    assert listing.read_text().splitlines()[0].startswith("file,exercise,visibility,reference,counted")
    text = CliRunner().invoke(main, ["eval", "mex", str(DATA), "--counts"])
    assert text.exit_code == 0 and "| 07/02_act_1 | bridge | clear | 9 |" in text.output


def test_cli_errors_are_clear(tmp_path):
    res = CliRunner().invoke(main, ["eval", "mex", str(tmp_path), "--counts"])
    assert res.exit_code != 0 and "rep_counts.csv" in res.output
    res = CliRunner().invoke(main, ["eval", "cmu", str(tmp_path), "--counts"])
    assert res.exit_code != 0 and "mex data set only" in res.output
