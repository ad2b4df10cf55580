"""Every command, given the bad input a new user really typed (issue 12), answers with one line
a person can act on and a non-zero exit: never a traceback, never silence.

Run through click's CliRunner with ``catch_exceptions=False``: an exception that escapes a
command (what a user sees as a traceback) fails the test with that exception instead of being
turned into an exit code. One case also runs the real ``python -m hipsense`` process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hipsense.cli import main

RECORDING_BAD = {
    "empty.txt": b"",
    "binary.dat": bytes(range(256)) * 4,
    "header_only.csv": b"t_s,acc_x,acc_y,acc_z\n",
    "words.txt": b"hello\nworld\n",
}

# (id, argv, a phrase the one-line error must contain). {tmp} is a fresh empty folder.
CASES = [
    ("eval-missing-dir", ["eval", "mex", "WRONG_DIR"], "does not exist"),
    ("eval-mex-empty-dir", ["eval", "mex", "{tmp}"], "no MEx recordings"),
    ("eval-uci-empty-dir", ["eval", "uci-pt", "{tmp}"], "no UCI recordings"),
    ("eval-cmu-empty-dir", ["eval", "cmu", "{tmp}"], "compact/"),
    ("eval-mex-counts-empty-dir", ["eval", "mex", "{tmp}", "--counts"], "{tmp}"),
    ("eval-personal-not-uci", ["eval", "mex", "{tmp}", "--personal"], "uci-pt"),
    ("db-folder-missing", ["dashboard", "add-user", "--db", "/nonexistent/dir/x.sqlite3", "u", "--password",
                           "long enough pw"], "does the folder exist"),
    ("db-postgres-refused", ["dashboard", "add-user", "--db", "postgresql://nobody@127.0.0.1:1/x", "u",
                             "--password", "long enough pw"], "cannot open the database"),
    ("db-garbage-url", ["dashboard", "add-user", "--db", "garbage://x", "u", "--password", "long enough pw"],
     "not a database URL"),
    ("assign-db-garbage", ["dashboard", "assign-patient", "--db", "garbage://x", "p-1abc", "u"],
     "not a database URL"),
    ("serve-timezone", ["dashboard", "serve", "--timezone", "Mars/Olympus"], "not an IANA time zone"),
    ("serve-db-missing", ["dashboard", "serve", "--db", "/nonexistent/dir/x.sqlite3"], "does the folder exist"),
    ("serve-broker-port", ["dashboard", "serve", "--broker", "localhost:mqtt"], "must be a number"),
    ("replay-empty", ["replay", "{tmp}/empty.txt", "-e", "straight_leg_raise"], "is empty"),
    ("replay-binary", ["replay", "{tmp}/binary.dat", "-e", "straight_leg_raise"], "binary data"),
    ("replay-header-only", ["replay", "{tmp}/header_only.csv", "-e", "straight_leg_raise"], "no samples"),
    ("replay-words", ["replay", "{tmp}/words.txt", "-e", "straight_leg_raise"], "not a UCI, MEx"),
    ("replay-unknown-exercise", ["replay", "{tmp}/words.txt", "-e", "bogus"], "unknown exercise"),
    ("provision-list-empty", ["provision", "list", "--state-dir", "{tmp}", "--broker-dir", "{tmp}"],
     "no patients in"),
    ("calibrate-bogus-exercise", ["calibrate", "--exercise", "bogus", "--side", "left", "--yes"], "unknown exercise"),
    ("calibrate-yes-without-side", ["calibrate", "--yes"], "--side"),
    ("scan-negative-timeout", ["scan", "--timeout", "-1"], "--timeout"),
    ("record-negative-timeout", ["record", "{tmp}/out.hsrec", "--sensor", "AA:BB", "--scan-timeout", "-1"],
     "--scan-timeout"),
    ("run-missing-config", ["run", "--config", "{tmp}/nope.toml"], "nope.toml"),
    ("demo-speed", ["demo", "--speed", "0"], "--speed"),
]

# click's own usage lines around a usage error are fine; anything else is not one line.
_USAGE_LINES = ("Usage: ", "Try '")


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip() and not line.startswith(_USAGE_LINES)]


@pytest.fixture
def bad_files(tmp_path: Path) -> Path:
    for name, content in RECORDING_BAD.items():
        (tmp_path / name).write_bytes(content)
    return tmp_path


@pytest.mark.parametrize(("argv", "phrase"), [pytest.param(a, p, id=i) for i, a, p in CASES])
def test_bad_input_gives_one_line_and_a_non_zero_exit(argv, phrase, bad_files, monkeypatch):
    for name in [n for n in os.environ if n.startswith("HIPSENSE_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(bad_files)  # WRONG_DIR is relative: it must not exist here
    args = [a.replace("{tmp}", str(bad_files)) for a in argv]
    result = CliRunner().invoke(main, args, catch_exceptions=False)  # an escaping exception fails here
    assert result.exit_code not in (0, None), result.output
    lines = _error_lines(result.output)
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: "), result.output
    assert phrase.replace("{tmp}", str(bad_files)) in lines[0], result.output
    assert "Traceback" not in result.output
    assert "scanning" not in result.output  # calibrate checks its options before touching Bluetooth


def test_the_real_command_prints_no_traceback(tmp_path):
    """The same through the installed entry point: what a user's terminal shows."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIPSENSE_")}
    done = subprocess.run([sys.executable, "-m", "hipsense", "dashboard", "add-user", "--db", "garbage://x", "u",
                           "--password", "long enough pw"], capture_output=True, text=True, env=env, timeout=60,
                          cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "Error: --db garbage://x: not a database URL hipsense knows; give a SQLite file path or "
        "postgresql://user@host/db"]
