"""A real Mosquitto running the SHIPPED deploy/server/mosquitto/hipsense.conf (the process
harness is :class:`tests.mosquitto.MosquittoProcess`, the same as the other MQTT tests').

The only changes to the file: paths under /etc/mosquitto/hipsense/ point into a temporary
directory and ``listener 8883`` becomes a free port on 127.0.0.1; then the few lines Debian's
main mosquitto.conf would add (persistence, log file, and ``user`` so a root test run does not
drop to a ``mosquitto`` user that cannot read the temporary directory). Accounts are made the way an
operator makes them: ``hipsense provision add`` for patients, a ``$7$`` line for the dashboard.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from click.testing import CliRunner

from hipsense.cli import main as cli
from hipsense.provision import hash_password
from tests.mosquitto import MOSQUITTO, MosquittoProcess  # noqa: F401 (MOSQUITTO re-exported)
from tests.pki import Pki

REPO = Path(__file__).resolve().parents[2]
SHIPPED_CONF = REPO / "deploy" / "server" / "mosquitto" / "hipsense.conf"
PROD_DIR = "/etc/mosquitto/hipsense/"
DASHBOARD_USER = "dashboard"
# A second dashboard instance has its own account: the shipped config binds a session to the
# account (use_username_as_clientid), so two instances sharing one would throw each other out.
SECOND_DASHBOARD_USER = "dashboard-2"


def render_test_config(shipped: str, broker_dir: Path, port: int) -> str:
    """The shipped config with its paths in ``broker_dir`` and its listener on 127.0.0.1:``port``."""
    text = shipped.replace(PROD_DIR, f"{broker_dir}/")
    text, n = re.subn(r"(?m)^listener 8883$", f"listener {port} 127.0.0.1", text)
    assert n == 1, "the shipped config must have exactly one `listener 8883` line"
    return text


class DeployedBroker(MosquittoProcess):
    """Broker files in ``workdir/broker``, provisioning state in ``workdir/state``."""

    def __init__(self, workdir: Path, pki: Pki, *, dashboard_password: str) -> None:
        super().__init__(workdir)
        self.pki = pki
        self.broker_dir = workdir / "broker"
        self.state_dir = workdir / "state"
        self.broker_dir.mkdir(parents=True)
        for src, name in ((pki.ca_cert, "ca.crt"), (pki.server_cert, "server.crt"), (pki.server_key, "server.key")):
            shutil.copy(src, self.broker_dir / name)
        # The operator's one manual step: the dashboard account (mosquitto_passwd would do the same).
        (self.broker_dir / "passwd").write_text("".join(
            f"{user}:{hash_password(dashboard_password)}\n" for user in (DASHBOARD_USER, SECOND_DASHBOARD_USER)))
        (self.broker_dir / "passwd").chmod(0o600)

    def config(self) -> str:
        return (render_test_config(SHIPPED_CONF.read_text(), self.broker_dir, self.port)
                + "\n# test harness: what Debian's /etc/mosquitto/mosquitto.conf adds\n"
                + self.harness_lines(self.broker_dir))

    @property
    def env(self) -> dict[str, str]:
        return {"HIPSENSE_BROKER_DIR": str(self.broker_dir), "HIPSENSE_PROVISION_DIR": str(self.state_dir)}

    def provision(self, label: str) -> tuple[str, str]:
        """``hipsense provision add`` as an operator runs it; returns (patient id, password from the bundle)."""
        import tomllib

        result = CliRunner().invoke(cli, ["provision", "add", label, "--broker-host", "127.0.0.1",
                                          "--broker-port", str(self.port), "--dashboard-user", DASHBOARD_USER,
                                          "--dashboard-user", SECOND_DASHBOARD_USER], env=self.env)
        assert result.exit_code == 0, result.output
        patient = re.search(r"patient id: (\S+)", result.output).group(1)
        bundle = tomllib.loads((self.state_dir / "bundles" / patient / "hipsense.toml").read_text())["mqtt"]
        return patient, bundle["password"]

    def revoke(self, patient: str) -> str:
        result = CliRunner().invoke(cli, ["provision", "revoke", patient, "--dashboard-user", DASHBOARD_USER,
                                          "--dashboard-user", SECOND_DASHBOARD_USER], env=self.env)
        assert result.exit_code == 0, result.output
        return result.output
