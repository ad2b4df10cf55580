from __future__ import annotations

import json

from click.testing import CliRunner

from hipsense.cli import main

SUMMARY_KEYS = {
    "sets", "exact_rate", "within1_rate", "mae", "reps_true", "reps_counted", "miss_rate",
    "false_rate", "f1", "hold_median_s", "hold_within_rate", "fast_flagged_rate",
    "low_rom_flagged_rate", "recognition_accuracy",
}


def test_eval_uci_json_contract(uci_dir):
    res = CliRunner().invoke(main, ["eval", "uci-pt", str(uci_dir), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["dataset"] == "uci-pt"
    assert SUMMARY_KEYS <= set(report["summary"])
    assert report["summary"]["recognition_accuracy"] is None
    for s in report["sets"]:
        assert {"id", "exercise", "true", "counted", "error"} <= set(s)
        assert s["error"] == s["counted"] - s["true"]


def test_eval_on_a_missing_layout_is_a_clear_error(tmp_path):
    res = CliRunner().invoke(main, ["eval", "uci-pt", str(tmp_path)])
    assert res.exit_code != 0
    assert "no UCI recordings" in res.output


def test_replay_prints_events_as_they_happen(uci_dir):
    f = uci_dir / "s1" / "e1" / "u3" / "test.txt.gz"
    res = CliRunner().invoke(main, ["replay", str(f), "--exercise", "seated_leg_raise", "--hold", "5"])
    assert res.exit_code == 0, res.output
    assert res.output.count(" rep ") == 30
    assert res.output.strip().endswith("30 reps")


def test_replay_unknown_exercise_lists_valid_ids(uci_dir):
    f = uci_dir / "s1" / "e1" / "u3" / "test.txt.gz"
    res = CliRunner().invoke(main, ["replay", str(f), "--exercise", "nope"])
    assert res.exit_code != 0
    assert "straight_leg_raise" in res.output


def test_replay_runs_on_the_shipped_recording():  # the old `hipsense demo`; the new one: tests/demo
    from importlib.resources import files

    path = files("hipsense") / "data" / "uci_s1_e3_test.txt.gz"
    res = CliRunner().invoke(main, ["replay", str(path), "--exercise", "straight_leg_raise", "--hold", "5"])
    assert res.exit_code == 0, res.output
    assert "30 reps" in res.output


def test_eval_cmu_on_shipped_subset():
    from pathlib import Path

    d = Path(__file__).parent / "data" / "cmu-exercise"
    res = CliRunner().invoke(main, ["eval", "cmu", str(d), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["dataset"] == "cmu"
    assert SUMMARY_KEYS <= set(report["summary"])
    by_id = {s["id"].split("/")[0]: s for s in report["sets"]}
    assert set(by_id) == {"SqDL", "FwHop", "Walk", "StepUpL"}
    # squats, hops, strides and step-ups of one real person, counted exactly
    assert all(s["error"] == 0 for s in by_id.values()), by_id
