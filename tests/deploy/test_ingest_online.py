"""A broker that lost the dashboard's subscription: the Pi sends again within seconds, because
the dashboard announces itself ("ingest online", a new epoch) every time it (re)subscribes.

Before, results a Pi sent while no ingest was subscribed (a broker restarted without its state;
Mosquitto 2.0 never restores a shared subscription) were PUBACKed and dropped, and the Pi sent
them again only when its storage timeout expired: 60 s, doubling to 30 min (the chaos soak's
``--service`` runs: the last results took 61 s). Here the Pi's timers are 10 minutes, so only
the announcement can bring them within the test's wait. Shipped broker config (its ACL from
``hipsense provision``), the real ingest, SQLite and PostgreSQL.

And the announcement is the dashboards' alone: no Pi's credentials can write it (it makes every
Pi send again), retained or not.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import signal
import time

import pytest
from sqlalchemy import func, select

from hipsense import protocol as p
from hipsense.dashboard.db.tables import events
from hipsense.dashboard.event_store import EventStore
from hipsense.dashboard.ingest import IngestService
from hipsense.publish import Outbox
from hipsense.publish.mqtt import MqttClient, MqttSettings, TlsSettings
from tests.dashboard.conftest import engine, postgres_url  # noqa: F401 - fixtures
from tests.deploy.broker import DASHBOARD_USER
from tests.deploy.probe import NOT_AUTHORIZED, Probe, settle

pytestmark = pytest.mark.slow

SESSION = "01JQ7Z8K3M4N5P6Q7R8S9T0V1W"
LONG_S = 600.0  # the Pi's storage timeout and reconnect grace: never reached in these tests


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _ingest(deployment, engine) -> IngestService:  # noqa: F811
    broker = deployment.broker
    return IngestService(EventStore(engine), MqttSettings(
        host="127.0.0.1", port=broker.port, client_id="hipsense-dashboard-main", username=DASHBOARD_USER,
        password=deployment.dashboard_password, tls=TlsSettings(ca_file=broker.pki.ca_cert), clean_start=False,
        session_expiry_s=3600, reconnect_min_s=1, reconnect_max_s=1))


def _pi(deployment, tmp_path, who) -> tuple[MqttClient, Outbox]:
    patient, password = who
    outbox = Outbox(tmp_path / f"outbox-{patient}.sqlite")
    broker = deployment.broker
    client = MqttClient(MqttSettings(
        host="127.0.0.1", port=broker.port, client_id=f"hipsense-{patient}", username=patient, password=password,
        tls=TlsSettings(ca_file=broker.pki.ca_cert), reconnect_min_s=1, reconnect_max_s=1,
        storage_timeout_s=LONG_S, storage_timeout_max_s=LONG_S, reconnect_grace_s=LONG_S, ingest_online_jitter_s=1.0,
    ), patient=patient, outbox=outbox)
    return client, outbox


def _produce(client: MqttClient, outbox: Outbox, patient: str, count: int) -> None:
    def rep(seq: int) -> p.Envelope:
        start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10) + dt.timedelta(seconds=seq)
        return p.build_rep_event(patient, seq=seq, session_id=SESSION, exercise="clam_shells", side="left",
                                 set_index=1, rep_index=seq, t_start=start, t_end=start + dt.timedelta(seconds=2),
                                 rom_deg=35.0, hold_s=1.0, peak_speed_dps=60.0)

    for _ in range(count):
        outbox.put_sequenced(patient, rep)
        client.notify_outbox()


def _stored(engine, patient: str) -> tuple[int, int]:  # noqa: F811
    """(rows, distinct seqs) of ``patient`` in the dashboard's database."""
    with engine.connect() as connection:
        return tuple(connection.execute(select(func.count(), func.count(events.c.seq.distinct()))
                                        .where(events.c.patient == patient)).one())


def test_results_sent_while_no_ingest_was_subscribed_are_sent_again_when_it_announces_itself(
        fresh_deployment, tmp_path, engine):  # noqa: F811
    deployment, broker = fresh_deployment, fresh_deployment.broker
    patient = deployment.a[0]
    client, outbox = _pi(deployment, tmp_path, deployment.a)
    ingest = _ingest(deployment, engine)
    ingest.start()
    try:
        client.start()
        assert client.wait_connected(10) and ingest.wait_connected(10)
        _produce(client, outbox, patient, 5)
        wait_until(lambda: outbox.stats().pending_total == 0, 20, "the first 5 results stored and acknowledged")
        heard = client.sender.stats.ingest_online

        ingest.stop()  # its persistent session would queue what comes next ...
        broker.stop(signal.SIGKILL)
        for saved in broker.broker_dir.glob("mosquitto.db*"):
            saved.unlink()  # ... but the broker comes back without it: no one subscribed to results
        broker.start()
        wait_until(lambda: client.is_connected() and client.connects >= 2, 15, "the Pi to reconnect")
        _produce(client, outbox, patient, 10)
        wait_until(lambda: outbox.awaiting_storage() == 10, 15, "the broker's PUBACKs of results it drops")
        assert _stored(engine, patient) == (5, 5)

        ingest = _ingest(deployment, engine)
        back = time.monotonic()
        ingest.start()  # subscribes, then announces itself
        wait_until(lambda: outbox.stats().pending_total == 0, 30, "the 10 results stored and acknowledged")
        if os.environ.get("HIPSENSE_PRINT_FIGURES"):
            print(f"\ningest online: the 10 dropped results stored and acknowledged {time.monotonic() - back:.1f} s "
                  f"after the ingest started again (jitter up to 1 s; the Pi's timers at {LONG_S:.0f} s)")
        assert _stored(engine, patient) == (15, 15)  # each once
        assert client.sender.stats.ingest_online > heard
        assert client.sender.stats.released >= 10  # sent again on the announcement, not on a timer
    finally:
        client.stop()
        outbox.close()
        ingest.stop()


def test_no_pi_can_announce_an_ingest(fresh_deployment, tmp_path):
    """B's credentials (a patient's home) publish a well-formed announcement, plain and retained:
    refused by the broker (0x87); A's Pi hears nothing and sends nothing again, and the retained
    announcement stays the dashboard's. A Pi may read it."""
    deployment, broker = fresh_deployment, fresh_deployment.broker
    client, outbox = _pi(deployment, tmp_path, deployment.a)
    client.start()
    try:
        assert client.wait_connected(10)
        dashboard = Probe(broker.port, ca=broker.pki.ca_cert, username=DASHBOARD_USER,
                          password=deployment.dashboard_password, client_id=f"dash-{secrets.token_hex(3)}")
        assert dashboard.connect() == 0
        genuine = p.build_ingest_online()
        assert dashboard.publish(p.INGEST_ONLINE_TOPIC, genuine, retain=True) == 0
        dashboard.close()
        wait_until(lambda: client.sender.ingest_epoch == p.parse_ingest_online(genuine), 10,
                   "A to hear the dashboard's announcement")
        heard = client.sender.stats.ingest_online  # 1 if heard live, 0 if on subscribing (retained)
        attacker_id, attacker_password = deployment.b
        attacker = Probe(broker.port, ca=broker.pki.ca_cert, username=attacker_id, password=attacker_password,
                         client_id=f"x-{secrets.token_hex(3)}")
        assert attacker.connect() == 0
        assert attacker.subscribe(p.INGEST_ONLINE_TOPIC) == [1]  # every Pi may read it
        for retain in (False, True):
            assert attacker.publish(p.INGEST_ONLINE_TOPIC, p.build_ingest_online(), retain=retain) == NOT_AUTHORIZED
        attacker.close()
        settle(1.0)
        assert client.sender.ingest_epoch == p.parse_ingest_online(genuine)
        assert client.sender.stats.ingest_online == heard and client.sender.stats.released == 0
    finally:
        client.stop()
        outbox.close()
    reader = Probe(broker.port, ca=broker.pki.ca_cert, username=deployment.b[0], password=deployment.b[1],
                   client_id=f"r-{secrets.token_hex(3)}")
    assert reader.connect() == 0
    reader.subscribe(p.INGEST_ONLINE_TOPIC)
    assert reader.wait(lambda: reader.received(), 5)
    assert [payload for _, payload, _ in reader.received()] == [genuine]
    reader.close()
