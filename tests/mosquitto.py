"""The real Mosquitto the MQTT tests run against: one process harness, two configurations.

:class:`MosquittoProcess` is the harness: 127.0.0.1 on a free port, config, log and persistence
in a work directory, started and stopped by PID; :meth:`~MosquittoProcess.stop` then
:meth:`~MosquittoProcess.start` keep the port and the persisted sessions (a broker restart), and
:meth:`~MosquittoProcess.reload` is ``systemctl reload``. What it runs is a subclass's
:meth:`~MosquittoProcess.config`:

* :class:`Mosquitto` (the ``broker`` fixture, ``tests/conftest.py``): the test accounts —
  ``dashboard`` reads and writes everything under hipsense/v1, and one user per patient id may
  only write its own status/live/event topics and read its own prescription and
  acknowledgements — the per-patient ACL the architecture asks the broker to enforce;
* ``tests/deploy/broker.py``'s ``DeployedBroker``: the SHIPPED
  ``deploy/server/mosquitto/hipsense.conf``, with accounts made by ``hipsense provision``.
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

__all__ = ["DASHBOARD_PASSWORD", "DASHBOARD_USER", "MOSQUITTO", "Mosquitto", "MosquittoProcess", "free_port",
           "wait_for_port"]


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


class MosquittoProcess:
    """One mosquitto process running :meth:`config`, written to ``workdir/mosquitto.conf`` at each start."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.log_file = workdir / "mosquitto.log"
        self.process: subprocess.Popen | None = None

    def config(self) -> str:
        """The configuration to run (a subclass's)."""
        raise NotImplementedError

    def harness_lines(self, persistence_dir: Path) -> str:
        """What Debian's main mosquitto.conf adds around a site config, pointed into the work
        directory; ``user`` so that a root test run does not drop to a user that cannot read it."""
        return (f"persistence true\npersistence_location {persistence_dir}/\n"
                f"log_dest file {self.log_file}\nuser {getpass.getuser()}\n")

    def start(self) -> None:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self.config())
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.process.kill()
            _, err = self.process.communicate()
            raise RuntimeError(f"mosquitto did not start: {err.decode(errors='replace')}\n{self.log_text()}") from None

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

    def restart(self, down_s: float = 0.0) -> None:
        """``systemctl restart mosquitto``: SIGTERM (which saves the persistence file), start again."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def reload(self) -> None:
        """What `systemctl reload mosquitto` does: SIGHUP, then wait for the log to say it re-read."""
        assert self.process is not None
        before = self.log_text().count("Reloading config")
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while self.log_text().count("Reloading config") <= before:
            if time.monotonic() > deadline:
                raise TimeoutError("mosquitto did not log a config reload")
            time.sleep(0.02)

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


class Mosquitto(MosquittoProcess):
    """The test configuration (see the module docstring). ``tls`` (a :class:`tests.pki.Pki`)
    puts TLS on the listener; without ``mosquitto_passwd`` it runs anonymous, without ACL."""

    def __init__(self, workdir: Path, *, patients: dict[str, str], tls: object | None = None) -> None:
        super().__init__(workdir)
        self.users = {DASHBOARD_USER: DASHBOARD_PASSWORD, **patients}
        self.tls = tls
        if MOSQUITTO_PASSWD:  # written now: a test may add to the ACL before starting
            passwd = self.workdir / "passwd"
            passwd.write_text("".join(f"{user}:{password}\n" for user, password in self.users.items()))
            subprocess.run([MOSQUITTO_PASSWD, "-U", str(passwd)], check=True, capture_output=True)
            (self.workdir / "acl").write_text(
                f"user {DASHBOARD_USER}\ntopic readwrite hipsense/v1/#\n\n"
                "pattern write hipsense/v1/%u/status\n"
                "pattern write hipsense/v1/%u/live\n"
                "pattern write hipsense/v1/%u/event/#\n"
                "pattern read hipsense/v1/%u/prescription\n"
                "pattern read hipsense/v1/%u/stored\n"
                "pattern read hipsense/v1/_ingest/online\n"
            )

    @property
    def authenticated(self) -> bool:
        return MOSQUITTO_PASSWD is not None

    def config(self) -> str:
        lines = [f"listener {self.port} 127.0.0.1",
                 "log_type error", "log_type warning", "log_type notice", "log_type information"]
        if self.authenticated:
            lines += ["allow_anonymous false", f"password_file {self.workdir / 'passwd'}",
                      f"acl_file {self.workdir / 'acl'}"]
        else:
            lines += ["allow_anonymous true"]
        if self.tls is not None:
            lines += [f"cafile {self.tls.ca_cert}", f"certfile {self.tls.server_cert}", f"keyfile {self.tls.server_key}"]
        return "\n".join(lines) + "\n" + self.harness_lines(self.workdir)
