"""A real Mosquitto for the integration tests: own config, 127.0.0.1, a free port.

Users: ``dashboard`` (reads and writes everything under hipsense/v1) and one user per patient
id, which may only write its own status/live/event topics and read its own prescription: the
per-patient ACL the architecture asks the broker to enforce.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")
DASHBOARD_USER, DASHBOARD_PASSWORD = "dashboard", "dash-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


class Mosquitto:
    """One mosquitto process; :meth:`stop` and :meth:`start` again keep the port and the data."""

    def __init__(self, workdir: Path, *, patients: dict[str, str], tls_files: dict[str, Path] | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.users = {DASHBOARD_USER: DASHBOARD_PASSWORD, **patients}
        self._write_config(patients, tls_files)

    def _write_config(self, patients: dict[str, str], tls_files: dict[str, Path] | None) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"persistence true",
            f"persistence_location {self.workdir}/",
            f"log_dest file {self.workdir / 'mosquitto.log'}",
            "log_type error", "log_type warning", "log_type notice", "log_type information",
            f"user {getpass.getuser()}",  # as root, mosquitto would drop to a user that cannot read tmp
        ]
        if MOSQUITTO_PASSWD:
            passwd = self.workdir / "passwd"
            passwd.write_text("".join(f"{user}:{password}\n" for user, password in self.users.items()))
            subprocess.run([MOSQUITTO_PASSWD, "-U", str(passwd)], check=True, capture_output=True)
            acl = self.workdir / "acl"
            acl.write_text(
                f"user {DASHBOARD_USER}\ntopic readwrite hipsense/v1/#\n\n"
                "pattern write hipsense/v1/%u/status\n"
                "pattern write hipsense/v1/%u/live\n"
                "pattern write hipsense/v1/%u/event/#\n"
                "pattern read hipsense/v1/%u/prescription\n"
                "pattern read hipsense/v1/%u/stored\n"
            )
            lines += ["allow_anonymous false", f"password_file {passwd}", f"acl_file {acl}"]
        else:
            lines += ["allow_anonymous true"]
        if tls_files:
            lines += [f"cafile {tls_files['ca']}", f"certfile {tls_files['cert']}", f"keyfile {tls_files['key']}"]
        (self.workdir / "mosquitto.conf").write_text("\n".join(lines) + "\n")

    @property
    def authenticated(self) -> bool:
        return MOSQUITTO_PASSWD is not None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.workdir / "mosquitto.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.process.kill()
            _, err = self.process.communicate()
            raise RuntimeError(f"mosquitto did not start: {err.decode(errors='replace')}") from None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the broker (SIGTERM saves its persistence file, as a service stop would)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def log_text(self) -> str:
        path = self.workdir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""


def make_tls_files(directory: Path) -> dict[str, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1, made with the openssl CLI."""
    ca_key, ca, key, csr, cert = (directory / name for name in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt"))
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=hipsense test CA",
        "-keyout", str(ca_key), "-out", str(ca))
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(csr))
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-days", "2",
        "-extfile", str(ext), "-out", str(cert))
    return {"ca": ca, "cert": cert, "key": key}
