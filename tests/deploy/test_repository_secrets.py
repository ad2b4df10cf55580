"""Nothing secret is committed: no private keys, no Mosquitto password lines, no Pi bundles.

Scans what git would ship, the tree at HEAD and the index (so a staged key fails too), with
``git grep``. Patterns are assembled at run time so this file does not match itself.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.deploy.broker import REPO

BEGIN = "-----" + "BEGIN"
PATTERNS = {
    "a PEM private key": BEGIN + r" ([A-Z]+ )?PRIVATE KEY-----",
    "an OpenSSH private key": BEGIN + " OPENSSH PRIVATE" + " KEY",
    "a Mosquitto password line": r"^[^:#[:space:]]+:\$[67]\$[0-9]+\$[A-Za-z0-9+/=]{8,}\$",
    "a Pi bundle password": r"^password = \"[A-Za-z0-9_-]{40,}\"",
}
# By name as well as by content; not hipsense.toml, whose documented example (deploy/pi/) is
# committed on purpose: its content is scanned for a real password instead.
SECRET_FILE_NAMES = ("passwd", "registry.json")
SECRET_SUFFIXES = (".key", ".p12", ".pfx")


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def repo():
    if shutil.which("git") is None or _git("rev-parse", "--git-dir").returncode != 0:
        pytest.skip("not a git checkout: nothing committed to scan")
    return REPO


@pytest.mark.parametrize("what", sorted(PATTERNS))
@pytest.mark.parametrize("where", ["HEAD", "--cached"])
def test_no_secret_in_the_repository(repo, what, where):
    scope = ["--cached"] if where == "--cached" else []
    tree = [where] if where == "HEAD" else []
    result = _git("grep", *scope, "-I", "-n", "-E", "-e", PATTERNS[what], *tree)
    assert result.returncode in (0, 1), result.stderr  # 1 = no match
    assert result.stdout == "", f"{what} committed ({where}):\n{result.stdout[:2000]}"


def test_no_secret_files_in_the_repository(repo):
    files = _git("ls-files").stdout.splitlines() + _git("ls-tree", "-r", "--name-only", "HEAD").stdout.splitlines()
    bad = sorted({f for f in files if f.rsplit("/", 1)[-1] in SECRET_FILE_NAMES or f.endswith(SECRET_SUFFIXES)})
    assert not bad, bad


def test_the_scan_would_find_one(repo, tmp_path):
    """The patterns are not vacuous: in a scratch repository, git grep finds each example."""
    from hipsense.provision import hash_password

    examples = {"a PEM private key": BEGIN + " EC PRIVATE" + " KEY-----",
                "an OpenSSH private key": BEGIN + " OPENSSH PRIVATE" + " KEY-----",
                "a Mosquitto password line": f"p-0001abcd:{hash_password('x')}",
                "a Pi bundle password": 'password = "' + "A" * 43 + '"'}
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    subprocess.run(["git", "init", "-q", str(scratch)], check=True)
    for i, text in enumerate(examples.values()):
        (scratch / f"f{i}.txt").write_text(f"context\n{text}\n")
    subprocess.run(["git", "-C", str(scratch), "add", "."], check=True)
    for what, pattern in PATTERNS.items():
        found = subprocess.run(["git", "-C", str(scratch), "grep", "--cached", "-I", "-l", "-E", "-e", pattern],
                               capture_output=True, text=True, check=False).stdout.split()
        assert f"f{list(examples).index(what)}.txt" in found, (what, found)
        assert "f2.txt" not in found or what == "a Mosquitto password line"  # no pattern matches everything
