"""Personal reference mode on UCI, docs/accuracy.md generation and the catalogue's evidence.

Real files from tests/data (see their READMEs for the citations)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from hipsense.cli import main
from hipsense.errors import DatasetError
from hipsense.evaluation import uci as uci_mod
from hipsense.evaluation.accuracy import HOW, evidence, render_markdown, write_all
from hipsense.evaluation.mex_counts import evaluate_mex_counts
from hipsense.evaluation.uci import (
    baseline_from,
    evaluate_uci,
    find_uci_recordings,
    personal_rom_from_template,
)
from hipsense.exercises.catalogue import load_catalogue, load_evidence
from hipsense.signal.calibration import PersonalRom

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture()
def s1_e3(tmp_path):
    """The shipped s1 e3 test and template sessions only (the other shipped sets have no template)."""
    dst = tmp_path / "uci" / "s1" / "e3"
    shutil.copytree(DATA / "uci-pt" / "s1" / "e3", dst)
    return tmp_path / "uci"


def test_reference_reps_come_from_the_template_sessions_correct_reps(s1_e3):
    template = next(r for r in find_uci_recordings(s1_e3) if r.session == "template")
    rom = personal_rom_from_template(s1_e3, template)
    assert rom.ok and rom.exercise_id == "straight_leg_raise"
    # three correct reps come before the selected too-fast rep; a too-fast one may precede it
    assert 3 <= len(rom.peaks_deg) <= 5
    assert 10.0 <= rom.rom_deg <= 45.0
    assert baseline_from(rom) == rom.rom_deg
    assert baseline_from(PersonalRom("x", math.nan, (), (object(),))) is None  # a failed fit


def test_personal_mode_hands_the_baseline_to_the_tracker(s1_e3, monkeypatch):
    personal = evaluate_uci(s1_e3, personal=True)
    assert personal["mode"] == "personal" and evaluate_uci(s1_e3)["mode"] == "default"
    assert all(s["baseline_rom_deg"] is not None for s in personal["sets"])
    # the baseline reaches the counter (the set's amplitude starts from it) and the form flags
    # (low_rom is judged against it): a patient whose reps "go" 1000 degrees makes none here,
    # and one whose reps go 40 degrees has every rep of this recording (25-30) flagged low
    monkeypatch.setattr(uci_mod, "fit_personal_rom", lambda ex, t, a, **kw: PersonalRom(ex, 1000.0, (1000.0,)))
    assert evaluate_uci(s1_e3, personal=True)["summary"]["reps_counted"] == 0
    monkeypatch.setattr(uci_mod, "fit_personal_rom", lambda ex, t, a, **kw: PersonalRom(ex, 40.0, (40.0,)))
    assert evaluate_uci(s1_e3, personal=True)["summary"]["low_rom_flagged_rate"] == 1.0


def test_personal_mode_without_a_template_is_a_clear_error(tmp_path):
    shutil.copytree(DATA / "uci-pt" / "s1" / "e1", tmp_path / "s1" / "e1")
    with pytest.raises(DatasetError, match="template"):
        evaluate_uci(tmp_path, personal=True)
    shutil.copytree(DATA / "uci-pt" / "s1" / "e3", tmp_path / "s1" / "e3")
    (tmp_path / "s1" / "e3" / "template_times.txt").unlink()
    with pytest.raises(DatasetError, match="template_times"):
        evaluate_uci(tmp_path, personal=True)


def test_cli_personal(s1_e3):
    res = CliRunner().invoke(main, ["eval", "uci-pt", str(s1_e3), "--personal", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["mode"] == "personal"
    res = CliRunner().invoke(main, ["eval", "mex", str(s1_e3), "--personal"])
    assert res.exit_code != 0 and "uci-pt data set only" in res.output


@pytest.fixture(scope="module")
def reports():
    return {"uci": evaluate_uci(DATA / "uci-pt"), "mex_counts": evaluate_mex_counts(DATA / "mex")}


def test_every_exercise_gets_a_row_and_its_provenance(reports):
    ev = evidence(reports)
    catalogue = load_catalogue()
    assert list(ev) == list(catalogue)
    md = render_markdown(reports, ev)
    for spec in catalogue.values():
        assert f"(`{spec.id}`)" in md
    assert ev["bridge"]["measured_on"][0]["dataset"] == "mex-thigh"
    assert ev["bridge"]["measured_on"][0]["people"] == 2  # subjects 07 and 10 in the fixture
    assert ev["straight_leg_raise"]["measured_on"][0]["subjects"] == ["s1"]
    assert ev["hip_flexor_stretch"]["synthetic_only"] and "synthetic only" in md
    assert ev["quadruped_punches"]["how"].startswith("not measurable")
    assert ev["quadruped_punches"]["figures"]["mex-thigh"]["answers"]["not_measurable"] == 2
    assert "CC BY 4.0" in md and "arXiv:1908.08992" in md and "10.24432/C5JK60" in md


def test_eval_report_command_writes_both_files(tmp_path, reports):
    src = tmp_path / "json"
    src.mkdir()
    for name, rep in reports.items():
        (src / f"{name}.json").write_text(json.dumps(rep))
    md, ev = tmp_path / "accuracy.md", tmp_path / "evidence.json"
    res = CliRunner().invoke(main, ["eval-report", "--from-json", str(src), "--markdown", str(md),
                                    "--evidence", str(ev)])
    assert res.exit_code == 0, res.output
    assert md.read_text() == render_markdown(reports, evidence(reports))
    assert json.loads(ev.read_text())["exercises"] == json.loads(json.dumps(evidence(reports)))
    res = CliRunner().invoke(main, ["eval-report", "--from-json", str(src), "--datasets", str(src)])
    assert res.exit_code != 0 and "exactly one" in res.output


def test_write_all_keeps_the_reports(tmp_path, reports):
    write_all(reports, tmp_path / "a.md", tmp_path / "e.json", tmp_path / "j")
    assert sorted(p.name for p in (tmp_path / "j").iterdir()) == ["mex_counts.json", "uci.json"]


def test_shipped_evidence_matches_the_catalogue():
    # regenerate with `hipsense eval-report --datasets ../shared/datasets` after changing the catalogue
    ev = load_evidence()
    catalogue = load_catalogue()
    assert set(ev) == set(catalogue)
    for ex_id, spec in catalogue.items():
        assert ev[ex_id]["how"] == HOW[spec.measure], ex_id
        assert ev[ex_id]["synthetic_only"] == (not ev[ex_id]["measured_on"])


def test_exercises_json_carries_the_evidence():
    res = CliRunner().invoke(main, ["exercises", "--json"])
    doc = json.loads(res.output)
    assert all("evidence" in e for e in doc["exercises"].values())
    assert doc["exercises"]["press_ups"]["evidence"]["measured_on"][0]["dataset"] == "mex-thigh"
