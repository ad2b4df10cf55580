"""Nothing a Pi sends is lost, counted from the Pi's outbox to the dashboard's database rows.

Everything is real: Mosquitto runs the SHIPPED configuration with persistence (as Debian's
main config sets it), the dashboard is the real :class:`IngestService` (shared subscription,
persistent session, its database), and the Pi is the real outbox + :class:`MqttClient` the
service runs (`test_a_real_service_session_survives_a_broker_restart` runs ``hipsense run``
itself with the emulated sensor). A broker's PUBACK is not storage: each scenario below lost
results on the code before the end-to-end acknowledgement (issue 11), and must lose none now.

Each scenario returns its figures (produced / stored / stored twice / left in the outbox),
which docs/mqtt.md quotes; ``HIPSENSE_PRINT_FIGURES=1`` prints them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import secrets
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hipsense import protocol as p
from hipsense.dashboard.db import make_engine, migrate
from hipsense.dashboard.db.tables import events
from hipsense.dashboard.event_store import EventStore
from hipsense.dashboard.ingest import IngestService
from hipsense.publish import Outbox
from hipsense.publish.mqtt import MqttClient, MqttSettings, TlsSettings
from tests.deploy.broker import DASHBOARD_USER
from tests.deploy.probe import NOT_AUTHORIZED, Probe

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SESSION = "01JQ7Z8K3M4N5P6Q7R8S9T0V1W"


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@dataclasses.dataclass
class Figures:
    scenario: str
    produced: int  # sequence numbers the Pi's outbox handed out
    stored: int  # rows in the dashboard's database
    stored_twice: int  # rows whose message id is stored more than once
    seqs_missing: int
    left_in_outbox: int

    def show(self) -> None:
        if os.environ.get("HIPSENSE_PRINT_FIGURES"):
            print(f"\n| {self.scenario} | {self.produced} | {self.stored} | {self.stored_twice} | {self.left_in_outbox} |")


class Dashboard:
    """The real ingest on a SQLite file, logged in with the dashboard's account."""

    def __init__(self, deployment, db_path: Path, *, reconnect_min_s: int = 1) -> None:
        self.engine = make_engine(str(db_path))
        migrate(self.engine)
        self.deployment = deployment
        self.reconnect_min_s = reconnect_min_s
        self.ingest: IngestService | None = None

    def settings(self) -> MqttSettings:
        broker = self.deployment.broker
        return MqttSettings(
            host="127.0.0.1", port=broker.port, client_id="hipsense-dashboard-main", username=DASHBOARD_USER,
            password=self.deployment.dashboard_password, tls=TlsSettings(ca_file=broker.pki.ca_cert),
            clean_start=False, session_expiry_s=3600, reconnect_min_s=self.reconnect_min_s,
            reconnect_max_s=self.reconnect_min_s,
        )

    def start(self) -> None:
        self.ingest = IngestService(EventStore(self.engine), self.settings())
        self.ingest.start()
        assert self.ingest.wait_connected(10)

    def stop(self) -> None:
        if self.ingest is not None:
            self.ingest.stop()
            self.ingest = None

    def rows(self, patient: str) -> list[tuple[str, int]]:
        with self.engine.connect() as connection:
            return [tuple(r) for r in connection.execute(
                select(events.c.message_id, events.c.seq).where(events.c.patient == patient))]

    def count(self, patient: str) -> int:
        with self.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(events).where(events.c.patient == patient)).scalar()


class Pi:
    """A patient's outbox and MQTT client, as `hipsense run` wires them (short re-send timers)."""

    def __init__(self, deployment, workdir: Path, who: tuple[str, str]) -> None:
        self.patient, password = who
        self.outbox = Outbox(workdir / f"outbox-{self.patient}.sqlite")
        broker = deployment.broker
        self.client = MqttClient(MqttSettings(
            host="127.0.0.1", port=broker.port, client_id=f"hipsense-{self.patient}", username=self.patient,
            password=password, tls=TlsSettings(ca_file=broker.pki.ca_cert), reconnect_min_s=1, reconnect_max_s=1,
            storage_timeout_s=2.0, reconnect_grace_s=1.0,
        ), patient=self.patient, outbox=self.outbox)

    def produce(self, count: int) -> None:
        for _ in range(count):
            self.outbox.put_sequenced(self.patient, self._rep)
            self.client.notify_outbox()
            time.sleep(0.01)

    def _rep(self, seq: int) -> p.Envelope:
        start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10) + dt.timedelta(seconds=seq)
        return p.build_rep_event(
            self.patient, seq=seq, session_id=SESSION, exercise="clam_shells", side="left", set_index=1,
            rep_index=1 + (seq - 1) % 100, t_start=start, t_end=start + dt.timedelta(seconds=2), rom_deg=35.0,
            hold_s=1.0, peak_speed_dps=60.0,
        )

    @property
    def produced(self) -> int:
        return self.outbox.last_sequence(self.patient)

    def left(self) -> int:
        return self.outbox.stats().pending_total

    def close(self) -> None:
        self.client.stop()
        self.outbox.close()


def figures(scenario: str, pi: Pi, dashboard: Dashboard) -> Figures:
    rows = dashboard.rows(pi.patient)
    ids = [message_id for message_id, _ in rows]
    seqs = {seq for _, seq in rows}
    result = Figures(scenario=scenario, produced=pi.produced, stored=len(rows), stored_twice=len(ids) - len(set(ids)),
                     seqs_missing=len(set(range(1, pi.produced + 1)) - seqs), left_in_outbox=pi.left())
    result.show()
    return result


def settle(pi: Pi, dashboard: Dashboard, timeout: float = 60) -> None:
    """Wait until every result is stored and the Pi's outbox is empty (the acknowledgement reached it)."""
    wait_until(lambda: dashboard.count(pi.patient) >= pi.produced, timeout, f"{pi.produced} results stored")
    wait_until(lambda: pi.left() == 0, timeout, "the outbox to empty")


@pytest.fixture
def stack(fresh_deployment, tmp_path):
    made: list = []

    def make(*, dashboard_reconnect_s: int = 1):
        dashboard = Dashboard(fresh_deployment, tmp_path / "dashboard.sqlite3", reconnect_min_s=dashboard_reconnect_s)
        pi = Pi(fresh_deployment, tmp_path, fresh_deployment.a)
        made.extend([pi, dashboard])
        return fresh_deployment.broker, dashboard, pi

    yield make
    for thing in reversed(made):
        thing.close() if isinstance(thing, Pi) else thing.stop()


def test_broker_restart_while_the_dashboard_is_up_loses_nothing(stack):
    # The dashboard reconnects more slowly than the Pi (as a busy server may): until it has
    # subscribed again, the broker acknowledges the Pi's results and has no one to give them to.
    broker, dashboard, pi = stack(dashboard_reconnect_s=4)
    dashboard.start()
    pi.client.start()
    assert pi.client.wait_connected(10)
    pi.produce(20)
    wait_until(lambda: dashboard.count(pi.patient) == 20, 20, "the first 20 results")

    broker.restart()
    wait_until(pi.client.is_connected, 10, "the Pi to reconnect")
    pi.produce(20)  # the broker has taken these before the dashboard is back
    settle(pi, dashboard)

    result = figures("broker restarted, dashboard up", pi, dashboard)
    assert (result.produced, result.stored, result.stored_twice, result.seqs_missing, result.left_in_outbox) == \
        (40, 40, 0, 0, 0)
    assert pi.client.sender.stats.released > 0  # the loss window was real: the Pi had to send again


def test_broker_restart_while_the_dashboard_is_down_loses_nothing(stack):
    broker, dashboard, pi = stack()
    dashboard.start()
    pi.client.start()
    assert pi.client.wait_connected(10)
    pi.produce(10)
    wait_until(lambda: dashboard.count(pi.patient) == 10, 20, "the first 10 results")

    dashboard.stop()  # its persistent session queues what comes next ...
    pi.produce(15)
    time.sleep(0.5)
    broker.restart()  # ... and the restart forgets the shared subscription that queued it
    wait_until(pi.client.is_connected, 10, "the Pi to reconnect")
    pi.produce(15)
    time.sleep(1.0)
    assert pi.left() >= 30  # the broker took them all; the Pi still holds them
    dashboard.start()
    settle(pi, dashboard)

    result = figures("broker restarted, dashboard down", pi, dashboard)
    assert (result.produced, result.stored, result.stored_twice, result.seqs_missing, result.left_in_outbox) == \
        (40, 40, 0, 0, 0)


def test_a_pi_credential_cannot_take_the_dashboards_session(stack, fresh_deployment):
    """Patient B's credentials, connecting with the dashboard's client id and clean_start=false
    again and again, get neither its session nor its queued results; A's results all arrive."""
    broker, dashboard, pi = stack()
    dashboard.start()
    pi.client.start()
    assert pi.client.wait_connected(10)
    # The Pi has heard the ingest's "online" announcement: one heard live later (the ingest
    # subscribing after the Pi connected) would rightly send the unacknowledged again, which is
    # not what this test counts
    deadline = time.monotonic() + 10
    while pi.client.sender.ingest_epoch is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pi.client.sender.ingest_epoch is not None
    connects_before = dashboard.ingest.client.connects
    stolen_id = dashboard.settings().client_id
    attacker_id, attacker_password = fresh_deployment.b
    attempts = []
    for round_ in range(6):
        pi.produce(10)
        attacker = Probe(broker.port, ca=broker.pki.ca_cert, username=attacker_id, password=attacker_password,
                         client_id=stolen_id)
        attacker.client.connect("127.0.0.1", broker.port, clean_start=False,
                                properties=_session_expiry(3600))
        attacker.client.loop_start()
        time.sleep(0.3)
        attempts.append(attacker.connack)
        attacker.client.disconnect()
        attacker.client.loop_stop()
    settle(pi, dashboard)

    result = figures("a Pi credential uses the dashboard's client id (6 attempts)", pi, dashboard)
    assert (result.produced, result.stored, result.stored_twice, result.seqs_missing, result.left_in_outbox) == \
        (60, 60, 0, 0, 0)
    # The broker bound each attempt to the attacker's own account: the dashboard was never
    # thrown out (a takeover disconnects the session's owner).
    assert dashboard.ingest.client.connects == connects_before
    assert f"Client {stolen_id} already connected" not in broker.log_text()
    assert pi.client.sender.stats.released == 0  # nothing even needed a second try


def _session_expiry(seconds: int):
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = seconds
    return properties


def test_a_dashboard_that_never_stores_lets_the_pi_keep_everything(stack):
    """Control for the scenarios above: the broker PUBACKs every result, and still the Pi keeps
    them all while no dashboard says they are stored."""
    broker, dashboard, pi = stack()
    pi.client.start()
    assert pi.client.wait_connected(10)
    pi.produce(15)
    wait_until(lambda: pi.client.sender.stats.acked >= 15, 10, "the broker's PUBACKs")
    assert pi.left() == 15 and pi.outbox.awaiting_storage() == 15
    dashboard.start()  # a dashboard with no session yet: the broker had no one to queue them for
    settle(pi, dashboard)  # the Pi's timer sends them again
    result = figures("results sent before any dashboard subscribed", pi, dashboard)
    assert (result.produced, result.stored, result.stored_twice, result.left_in_outbox) == (15, 15, 0, 0)


def test_a_gap_no_one_can_fill_does_not_keep_results_in_the_outbox(stack):
    """Results 3 and 4 were forgotten on a broker PUBACK by the version before end-to-end
    acknowledgements (and lost by the broker). The dashboard waits at 2 until the Pi's status
    says it holds nothing below 5; then it acknowledges 5..8 and the outbox empties."""
    broker, dashboard, pi = stack()
    for _ in range(8):
        pi.outbox.put_sequenced(pi.patient, pi._rep)
    pi.outbox.ack_many([row.id for row in pi.outbox.pending() if row.seq in (3, 4)])  # the old PUBACK path
    dashboard.start()
    pi.client.start()
    assert pi.client.wait_connected(10)
    wait_until(lambda: dashboard.count(pi.patient) == 6, 20, "the 6 results the Pi still had")
    wait_until(lambda: pi.client.sender.acknowledged(pi.patient) == 2, 10, "the acknowledgement of 1..2")
    assert pi.left() == 4  # 5..8 stored, but not acknowledged past the gap
    # what `hipsense run` does when its outbox's first result is past the acknowledgement
    pi.outbox.put_envelope(p.build_status(pi.patient, online=True, outbox_first_seq=pi.outbox.first_unconfirmed_seq(
        pi.patient)))
    pi.client.notify_outbox()
    wait_until(lambda: pi.left() == 0, 20, "the outbox to empty")
    result = figures("a gap from before the upgrade (3, 4 lost then)", pi, dashboard)
    assert (result.produced, result.stored, result.stored_twice, result.seqs_missing, result.left_in_outbox) == \
        (8, 6, 0, 2, 0)


# -- the real service ---------------------------------------------------------------------------


def test_a_real_service_session_survives_a_broker_restart(fresh_deployment, tmp_path):
    """``hipsense run`` with the emulated sensor replaying a real session (3 x 10 straight-leg
    raises at 20x), the real ingest, and a broker restart in the middle of the session."""
    pytest.importorskip("bumble")
    broker = fresh_deployment.broker
    patient, password = fresh_deployment.a
    dashboard = Dashboard(fresh_deployment, tmp_path / "dashboard.sqlite3", reconnect_min_s=3)
    dashboard.start()
    state_dir = tmp_path / "pi-state"
    config = tmp_path / "hipsense.toml"
    config.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\npatient_id = "{patient}"\n'
        f'username = "{patient}"\npassword = "{password}"\ntls_ca_file = "{broker.pki.ca_cert}"\n'
        f'[sensor]\nbackend = "emulator"\nside = "right"\n'
        f'[service]\nstate_dir = "{state_dir}"\nvoice = "off"\n'
        f'[session]\nidle_end_s = 60\n[emulator]\nspeed = 20.0\n'
    )
    prescription = p.build_prescription(
        patient, version=1, updated_at=dt.datetime.now(dt.timezone.utc),
        exercises=[p.PrescribedExercise(order=1, exercise="straight_leg_raise", sets=3, reps=10, hold_s=5,
                                        sides=("right",))])
    dashboard.ingest.client.publish(prescription)
    log_path = tmp_path / "service.log"
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    with open(log_path, "a") as log:
        service = subprocess.Popen([sys.executable, "-m", "hipsense", "run", "--config", str(config)],
                                   stdout=log, stderr=log, env=env, cwd=REPO)
    try:
        wait_until(lambda: dashboard.count(patient) >= 6, 60, "the first results")
        broker.restart()
        with_summary = lambda: any(kind == "session" for kind in _kinds(dashboard.engine, patient))  # noqa: E731
        wait_until(with_summary, 90, "the session summary")

        def produced() -> int:
            with sqlite3.connect(state_dir / "outbox.sqlite") as db:
                return db.execute("SELECT last FROM sequences WHERE stream = ?", (patient,)).fetchone()[0]

        wait_until(lambda: dashboard.count(patient) >= produced(), 60, "every result")
        service.terminate()
        assert service.wait(30) == 0
    finally:
        if service.poll() is None:
            service.kill()
            service.wait(10)
    with sqlite3.connect(state_dir / "outbox.sqlite") as db:
        total = db.execute("SELECT last FROM sequences WHERE stream = ?", (patient,)).fetchone()[0]
        left = db.execute("SELECT COUNT(*) FROM outbox WHERE seq IS NOT NULL").fetchone()[0]
    rows = dashboard.rows(patient)
    result = Figures("hipsense run (emulated sensor), broker restarted mid-session", total, len(rows),
                     len(rows) - len({m for m, _ in rows}), len(set(range(1, total + 1)) - {s for _, s in rows}), left)
    result.show()
    dashboard.stop()
    assert total >= 10  # reps, sets and the summary (how many reps is the counter's business)
    assert (result.stored, result.stored_twice, result.seqs_missing, result.left_in_outbox) == (total, 0, 0, 0)


def _kinds(engine, patient: str) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(select(events.c.kind).where(events.c.patient == patient)).scalars())


def test_the_acl_lets_only_dashboard_accounts_write_acknowledgements(deployment):
    """A Pi cannot acknowledge results as stored, its own or another's: only dashboard accounts may."""
    broker = deployment.broker
    a_id, a_password = deployment.a
    b_id = deployment.b[0]
    probe = Probe(broker.port, ca=broker.pki.ca_cert, username=a_id, password=a_password,
                  client_id=f"x-{secrets.token_hex(3)}")
    assert probe.connect() == 0
    try:
        for patient in (a_id, b_id):
            ack = p.build_stored_ack(patient, 10**6)
            assert probe.publish(ack.topic, ack.payload, retain=True) == NOT_AUTHORIZED
    finally:
        probe.close()
    dashboard = Probe(broker.port, ca=broker.pki.ca_cert, username=DASHBOARD_USER,
                      password=deployment.dashboard_password, client_id=f"d-{secrets.token_hex(3)}")
    assert dashboard.connect() == 0
    try:
        ack = p.build_stored_ack(a_id, 0)  # seq 0 acknowledges nothing: harmless to leave retained
        assert dashboard.publish(ack.topic, ack.payload, retain=True) == 0
    finally:
        dashboard.close()
