"""The shipped deployment files: the systemd unit verifies, the broker config admits no one
anonymously and listens in plaintext nowhere but (optionally) loopback."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from tests.deploy.broker import REPO, SHIPPED_CONF

SERVER = REPO / "deploy" / "server"
UNIT = SERVER / "systemd" / "hipsense-dashboard.service"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed (not a systemd system)")


def _unit_with_an_existing_binary(tmp_path):
    """verify insists that ExecStart exists; /opt/hipsense/venv is the production path, so the
    test points it at this environment's hipsense (or python) and changes nothing else."""
    exe = shutil.which("hipsense") or sys.executable
    text = UNIT.read_text()
    assert "ExecStart=/opt/hipsense/venv/bin/hipsense " in text
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace("/opt/hipsense/venv/bin/hipsense", exe))
    return copy


@needs_systemd_analyze
def test_systemd_analyze_verify_accepts_the_dashboard_unit(tmp_path):
    unit = _unit_with_an_existing_binary(tmp_path)
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False)
    # verify exits 0 even for unknown or unparsable keys: any warning about our file fails the test.
    warnings = [line for line in (result.stdout + result.stderr).splitlines() if UNIT.name in line]
    assert result.returncode == 0 and not warnings, result.stdout + result.stderr


@needs_systemd_analyze
def test_the_dashboard_unit_is_sandboxed(tmp_path):
    unit = _unit_with_an_existing_binary(tmp_path)
    result = subprocess.run([SYSTEMD_ANALYZE, "security", "--offline=yes", str(unit)], capture_output=True,
                            text=True, timeout=60, check=False)
    if result.returncode != 0 and "offline" in result.stderr:
        pytest.skip(f"this systemd-analyze has no offline security report: {result.stderr.strip()[:200]}")
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert match, result.stdout[-2000:] + result.stderr
    assert float(match.group(1)) <= 2.0, result.stdout  # systemd calls <= 2 "OK"; 10 is unconfined
    text = UNIT.read_text()
    for line in ("User=hipsense-dashboard", "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes",
                 "CapabilityBoundingSet=\n"):
        assert line in text


def _directives(text: str) -> list[tuple[str, str]]:
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            rows.append((key, value.strip()))
    return rows


def test_the_broker_config_has_no_anonymous_access_and_no_plaintext_listener():
    rows = _directives(SHIPPED_CONF.read_text())
    settings = dict(rows)
    assert settings["allow_anonymous"] == "false" and settings["per_listener_settings"] == "false"
    assert settings["password_file"] and settings["acl_file"]
    # Split into listeners; each must be TLS, or plaintext on 127.0.0.1 only.
    listeners: list[list[tuple[str, str]]] = []
    for key, value in rows:
        if key == "listener":
            listeners.append([(key, value)])
        elif listeners:
            listeners[-1].append((key, value))
    assert listeners, "no listener: Mosquitto 2.0 would fall back to plaintext 1883 on localhost"
    for block in listeners:
        port_and_bind = block[0][1].split()
        keys = {k for k, _ in block}
        if {"certfile", "keyfile"} <= keys:
            assert port_and_bind[0] == "8883" and dict(block)["tls_version"] in {"tlsv1.2", "tlsv1.3"}
        else:
            assert port_and_bind[1:] == ["127.0.0.1"], f"plaintext listener not on loopback: {block[0]}"
    assert "use_identity_as_username" not in settings  # passwords, not certificates, name the user


@pytest.mark.skipif(shutil.which("caddy") is None, reason="caddy not installed here; the Caddyfile is not parsed")
def test_the_caddyfile_parses():
    result = subprocess.run(["caddy", "adapt", "--adapter", "caddyfile", "--config", str(SERVER / "proxy" / "Caddyfile")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
