"""deploy/pi/install.sh run for real, as root, in a private mount namespace (issue 12).

What is real: bash running the script, ``useradd``/``usermod``/``id`` (on a private copy of
/etc), ``install`` with owners and modes, ``runuser``, the installed ``/usr/local/bin/hipsense``
wrapper. What cannot run here and is replaced by a stub that logs its arguments (this machine
has no systemd, no apt archive for Pi OS, and no network for pip): ``apt-get``, ``systemctl``,
``python3 -m venv`` and the venv's ``pip``/``python``/``hipsense``. The stub ``hipsense``
records who ran it, with which environment, and exits with the code the test asks for.

Only the namespace sees the private /etc, /opt, /var/lib and /usr/local/bin: the machine's own
stay untouched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "deploy" / "pi" / "install.sh"
BUNDLE_TOML = """[mqtt]
host = "broker.clinic.example"
port = 8883
tls_ca_file = "/etc/hipsense/ca.crt"
username = "p-7k2m9q4x3b"
password = "Zx9-long-random"
patient_id = "p-7k2m9q4x3b"
"""

def _can_make_a_mount_namespace() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("useradd") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True,
                           timeout=10)
    return probe.returncode == 0  # a container without CAP_SYS_ADMIN cannot


pytestmark = pytest.mark.skipif(not _can_make_a_mount_namespace(),
                                reason="needs root, useradd and a private mount namespace (unshare)")

STUB = "#!/bin/sh\necho \"$(basename \"$0\") $*\" >> {log}\n{body}\n"
FAKE_VENV = """#!/bin/sh
# the stub `python3`: "python3 -m venv DIR" makes a venv of stubs
echo "python3 $*" >> {log}
[ "$1" = "-m" ] && [ "$2" = "venv" ] || exit 0
mkdir -p "$3/bin"
for tool in pip python; do
  printf '#!/bin/sh\\necho "venv-%s $*" >> {log}\\n' "$tool" > "$3/bin/$tool"
done
cat > "$3/bin/hipsense" <<'EOF'
#!/bin/sh
echo "hipsense-cli user=$(id -un) config=$HIPSENSE_CONFIG config_dir=$HIPSENSE_CONFIG_DIR args=$*" >> {log}
exit "$(cat {exit_code})"
EOF
chmod 755 "$3/bin/"*
"""


def run_in_namespace(tmp_path: Path, script: str) -> subprocess.CompletedProcess[str]:
    """``script`` (bash) as root in a new mount namespace with private /etc, /opt, /var/lib
    and /usr/local/bin, and the stubs first on PATH."""
    ns = tmp_path / "ns"
    for name in ("opt", "varlib", "localbin", "stubs"):
        (ns / name).mkdir(parents=True, exist_ok=True)
    log, exit_code = tmp_path / "shared" / "calls.log", tmp_path / "shared" / "exit_code"
    log.touch(mode=0o666)
    log.chmod(0o666)  # the service user's stub appends to it
    exit_code.write_text("0")
    exit_code.chmod(0o644)
    stubs = ns / "stubs"
    (stubs / "apt-get").write_text(STUB.format(log=log, body="exit 0"))
    # systemctl: the service is active until stopped
    (stubs / "systemctl").write_text(STUB.format(log=log, body=textwrap.dedent(f"""\
        case "$1" in is-active) [ ! -e {ns}/stopped ] ;; stop) touch {ns}/stopped ;; start) rm -f {ns}/stopped ;; esac""")))
    (stubs / "python3").write_text(FAKE_VENV.format(log=log, exit_code=exit_code))
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    setup = textwrap.dedent(f"""\
        set -euo pipefail
        cp -a /etc {ns}/etc
        mount --bind {ns}/etc /etc
        mount --bind {ns}/opt /opt
        mount --bind {ns}/varlib /var/lib
        mount --bind {ns}/localbin /usr/local/bin
        getent group bluetooth >/dev/null || groupadd --system bluetooth
        getent group audio >/dev/null || groupadd --system audio
        export PATH={stubs}:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
        """)
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", setup + script],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)


@pytest.fixture
def tmp_path():
    """pytest's own folder is private to root: the service user's stub must reach its log."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="hipsense-install-"))
    path.chmod(0o755)
    (path / "shared").mkdir(mode=0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def bundle(tmp_path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "hipsense.toml").write_text(BUNDLE_TOML)
    (bundle / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    return bundle


def calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "shared" / "calls.log").read_text().splitlines()


def test_install_then_the_documented_commands_run_as_the_service(tmp_path, bundle):
    done = run_in_namespace(tmp_path, f"""
        bash {INSTALL} --bundle {bundle} --source {REPO}
        stat -c '%U %G %a %n' /etc/hipsense /etc/hipsense/hipsense.toml /etc/hipsense/ca.crt /var/lib/hipsense \\
            /usr/local/bin/hipsense
        id -nG hipsense
        echo 1 > {tmp_path}/shared/exit_code        # the calibration fails: the service must come back anyway
        hipsense calibrate --side right && exit 9 || echo "calibrate exit $?"
        echo 0 > {tmp_path}/shared/exit_code
        hipsense scan
        """)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "root hipsense 750 /etc/hipsense\n" in out
    assert "hipsense hipsense 600 /etc/hipsense/hipsense.toml\n" in out
    assert "hipsense hipsense 700 /var/lib/hipsense\n" in out
    assert "root root 755 /usr/local/bin/hipsense\n" in out
    assert {"bluetooth", "audio"} <= set(out.split("calibrate exit")[0].split())
    assert "calibrate exit 1" in out
    assert "sudo hipsense calibrate --side right" in out  # what the installer tells the person
    log = calls(tmp_path)
    # (gcc and the Python headers: the source tree's C module is built at install)
    assert "apt-get install -y --no-install-recommends bluez python3-venv avahi-daemon qrencode espeak-ng gcc python3-dev" in log
    assert any(line.startswith("venv-pip install --upgrade ") and line.endswith("[ble,mqtt]") for line in log)
    assert "systemctl enable --now hipsense.service" in log
    cli = [line for line in log if line.startswith(("hipsense-cli", "systemctl stop", "systemctl start"))]
    assert cli == [
        "systemctl stop hipsense",
        "hipsense-cli user=hipsense config=/etc/hipsense/hipsense.toml config_dir=/var/lib/hipsense "
        "args=calibrate --side right",
        "systemctl start hipsense",
        # scan does not need the sensor to itself: the service keeps running
        "hipsense-cli user=hipsense config=/etc/hipsense/hipsense.toml config_dir=/var/lib/hipsense args=scan",
    ]
    assert "stopping the service while calibrate uses the sensor" in done.stderr


def test_a_stopped_service_stays_stopped_after_calibrate(tmp_path, bundle):
    done = run_in_namespace(tmp_path, f"""
        bash {INSTALL} --bundle {bundle} --source {REPO} --no-voice > /dev/null
        touch {tmp_path}/ns/stopped          # the installer stopped it, or the person did
        hipsense calibrate --side left
        """)
    assert done.returncode == 0, done.stdout + done.stderr
    log = calls(tmp_path)
    assert not [line for line in log if line.startswith(("systemctl stop", "systemctl start"))]
    assert "hipsense-cli user=hipsense config=/etc/hipsense/hipsense.toml config_dir=/var/lib/hipsense " \
           "args=calibrate --side left" in log
    assert not any("espeak-ng" in line for line in log if line.startswith("apt-get"))


def test_no_compile_installs_no_compiler(tmp_path, bundle):
    done = run_in_namespace(tmp_path, f"bash {INSTALL} --bundle {bundle} --source {REPO} --no-voice --no-compile > /dev/null")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "apt-get install -y --no-install-recommends bluez python3-venv avahi-daemon qrencode" in calls(tmp_path)


def test_reinstalling_keeps_the_sensor_settings(tmp_path, bundle):
    done = run_in_namespace(tmp_path, f"""
        bash {INSTALL} --bundle {bundle} --source {REPO} > /dev/null
        sed -i 's/^address = ""/address = "F1:57:00:00:00:01"/' /etc/hipsense/hipsense.toml
        bash {INSTALL} --bundle {bundle} --source {REPO} > /dev/null
        grep -c '^\\[mqtt\\]' /etc/hipsense/hipsense.toml
        grep '^address' /etc/hipsense/hipsense.toml
        grep -A1 '^\\[patient_page\\]' /etc/hipsense/hipsense.toml
        """)
    assert done.returncode == 0, done.stdout + done.stderr
    count, address, page = done.stdout.splitlines()[:3]
    assert count == "1"  # the bundle's [mqtt] once
    assert address.startswith('address = "F1:57:00:00:00:01"')  # the installer's own edit survived
    assert page == "[patient_page]"  # and the patient page stays configured
