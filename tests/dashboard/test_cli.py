"""`hipsense dashboard add-user` and `assign-patient`: accounts from the command line."""

from __future__ import annotations

from click.testing import CliRunner

from hipsense.cli import main
from hipsense.dashboard.accounts.therapists import authenticate, patients_of
from hipsense.dashboard.db import make_engine


def test_add_user_and_assign_patient(tmp_path):
    db = str(tmp_path / "dash.sqlite3")
    runner = CliRunner()
    added = runner.invoke(main, ["dashboard", "add-user", "--db", db, "ana", "--name", "Ana P."],
                          env={"HIPSENSE_NEW_PASSWORD": "correct horse battery"})
    assert added.exit_code == 0, added.output
    assigned = runner.invoke(main, ["dashboard", "assign-patient", "--db", db, "p-0001", "ana", "--label", "A.B."])
    assert assigned.exit_code == 0, assigned.output
    engine = make_engine(db)
    ana = authenticate(engine, "ana", "correct horse battery")
    assert ana.display_name == "Ana P." and patients_of(engine, ana.id) == [("p-0001", "A.B.")]


def test_mistakes_are_explained(tmp_path):
    db = str(tmp_path / "dash.sqlite3")
    runner = CliRunner()
    short = runner.invoke(main, ["dashboard", "add-user", "--db", db, "ana", "--password", "short"])
    assert short.exit_code != 0 and "at least 10 characters" in short.output
    name = runner.invoke(main, ["dashboard", "assign-patient", "--db", db, "Maria", "ana"])
    assert name.exit_code != 0 and "not a pseudonym" in name.output
    nobody = runner.invoke(main, ["dashboard", "assign-patient", "--db", db, "p-0001", "nobody"])
    assert nobody.exit_code != 0 and "no user 'nobody'" in nobody.output


def test_serve_documents_its_options():
    result = CliRunner().invoke(main, ["dashboard", "serve", "--help"])
    assert result.exit_code == 0
    for option in ("--db", "--broker", "--host", "--port", "--timezone"):
        assert option in result.output
