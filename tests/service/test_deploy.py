"""deploy/pi: the systemd unit verifies, the installer merges the provisioning bundle, and the
real service speaks sd_notify (READY, WATCHDOG, STOPPING) to a socket this test holds."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hipsense.service.config import load_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "pi"
UNIT = DEPLOY / "hipsense.service"
INSTALL = DEPLOY / "install.sh"

# What `hipsense provision` writes into the Pi's bundle (hipsense/provision/bundle.py).
BUNDLE_TOML = """# hipsense Pi configuration for patient p-7k2m9q4x3b
[mqtt]
host = "broker.clinic.example"
port = 8883
tls_ca_file = "/etc/hipsense/ca.crt"
username = "p-7k2m9q4x3b"
password = "Zx9-long-random"
patient_id = "p-7k2m9q4x3b"
"""


def _unit_settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_unit_has_notify_watchdog_restart_user_and_a_sandbox_that_allows_dbus():
    s = _unit_settings()
    assert s["Type"] == ["notify"] and s["WatchdogSec"] == ["30"] and s["Restart"] == ["on-failure"]
    assert s["User"] == ["hipsense"] and "bluetooth" in s["SupplementaryGroups"][0].split()
    assert "AF_UNIX" in s["RestrictAddressFamilies"][0]  # the system D-Bus, hence BlueZ
    assert s["ProtectSystem"] == ["strict"] and s["NoNewPrivileges"] == ["yes"]
    assert "PrivateNetwork" not in s and "PrivateUsers" not in s
    assert s["ExecStart"] == ["/opt/hipsense/venv/bin/hipsense run --config /etc/hipsense/hipsense.toml"]


def test_systemd_analyze_verify_is_clean(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed (no systemd on this machine)")
    # verify insists that ExecStart exists; the venv exists only on an installed Pi.
    unit = tmp_path / "hipsense.service"
    unit.write_text(UNIT.read_text().replace("/opt/hipsense/venv/bin/hipsense", sys.executable))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_installer_is_valid_bash_and_dry_runs(tmp_path):
    subprocess.run(["bash", "-n", str(INSTALL)], check=True)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "hipsense.toml").write_text(BUNDLE_TOML)
    (bundle / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    out = subprocess.run(["bash", str(INSTALL), "--bundle", str(bundle), "--dry-run"], capture_output=True,
                         text=True, check=True).stdout
    for expected in ("useradd --system", "usermod -aG bluetooth,audio hipsense", "python3 -m venv /opt/hipsense/venv",
                     "install -m 0600 -o hipsense -g hipsense", "/etc/hipsense/hipsense.toml",
                     "systemctl enable --now hipsense.service"):
        assert expected in out, expected
    if shutil.which("shellcheck"):
        subprocess.run(["shellcheck", str(INSTALL)], check=True)


def test_the_installed_config_is_the_bundle_plus_the_example(tmp_path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "hipsense.toml").write_text(BUNDLE_TOML)
    merged = subprocess.run(["bash", str(INSTALL), "--bundle", str(bundle), "--print-config"], capture_output=True,
                            text=True, check=True).stdout
    assert merged.count("[mqtt]") == 1 and "[sensor]" in merged and "[service]" in merged
    path = tmp_path / "hipsense.toml"
    path.write_text(merged)
    config = load_config(path, environ={"HIPSENSE_MQTT_TLS_CA_FILE": ""})  # no /etc/hipsense/ca.crt here
    assert config.mqtt.host == "broker.clinic.example" and config.mqtt.password == "Zx9-long-random"
    assert config.sensors[0].backend == "bluez" and config.service.voice is True


def test_the_service_notifies_systemd_ready_watchdog_and_stopping(tmp_path):
    pytest.importorskip("bumble")
    sock_path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(sock_path))
    server.settimeout(30)
    with socket.socket() as unused:  # a broker port with nobody listening: the service still starts
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    config = tmp_path / "hipsense.toml"
    config.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\npatient_id = "p-0001"\n'
                      f'[sensor]\nbackend = "emulator"\n[service]\nstate_dir = "{tmp_path / "state"}"\nvoice = "off"\n')
    env = {**os.environ, "NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "1000000"}
    env.pop("WATCHDOG_PID", None)
    process = subprocess.Popen([sys.executable, "-m", "hipsense", "run", "--config", str(config)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        messages = []
        while messages.count("WATCHDOG=1") < 2:
            messages.append(server.recv(4096).decode())
        assert messages[0].startswith("READY=1\nSTATUS=patient p-0001")
        process.send_signal(signal.SIGTERM)
        while "STOPPING=1" not in messages:
            messages.append(server.recv(4096).decode())
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        server.close()
