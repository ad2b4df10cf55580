"""A Pi's credentials must not be able to join the dashboard's shared subscription.

Mosquitto hands each message of a shared subscription to ONE member of the group, and checks
that member's read ACL only when it delivers: if the member it picked may not read the topic,
the message is dropped for the whole group (after the publisher got its PUBACK). The group was
the constant ``hipsense-dashboard``, in this source for anyone to read. A Pi account (its
password lives in a patient's home) that subscribed to
``$share/hipsense-dashboard/hipsense/v1/+/event/#`` made the broker throw away about half of
every patient's results (10 of 20 here, against the shipped config and ACL). The end-to-end
acknowledgement has the Pis send them again, but each re-send is dropped with the same odds,
the wait doubles up to 30 min, and every later result waits behind the first one lost.

Now the group's name has a random part kept in the dashboard's database.
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import select

from hipsense import protocol as p
from hipsense.dashboard.db.tables import events
from hipsense.dashboard.event_store import EventStore
from hipsense.dashboard.ingest import SHARE_GROUP, IngestService
from hipsense.publish.mqtt import MqttSettings, TlsSettings
from tests.dashboard.conftest import engine, postgres_url  # noqa: F401 - fixtures
from tests.deploy.broker import DASHBOARD_USER, SECOND_DASHBOARD_USER
from tests.deploy.probe import Probe

ROOT = "hipsense/v1"
SESSION = "01JQ7Z8K3M4N5P6Q7R8S9T0V1W"


def _rep(patient: str, seq: int) -> p.Envelope:
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5) + dt.timedelta(seconds=seq)
    return p.build_rep_event(patient, seq=seq, session_id=SESSION, exercise="clam_shells", side="left", set_index=1,
                             rep_index=seq, t_start=start, t_end=start + dt.timedelta(seconds=2), rom_deg=30.0,
                             hold_s=1.0, peak_speed_dps=50.0)


def _seqs(engine, patient: str) -> list[int]:  # noqa: F811
    with engine.connect() as connection:
        return sorted(connection.execute(select(events.c.seq).where(events.c.patient == patient)).scalars())


def test_a_pi_cannot_join_the_dashboards_share_group_and_drop_results(deployment, engine):  # noqa: F811
    broker = deployment.broker
    (a_id, a_password), (b_id, b_password) = deployment.a, deployment.b
    ingest = IngestService(EventStore(engine), MqttSettings(
        host="127.0.0.1", port=broker.port, client_id=f"dash-{secrets.token_hex(3)}", username=DASHBOARD_USER,
        password=deployment.dashboard_password, tls=TlsSettings(ca_file=broker.pki.ca_cert), clean_start=False,
        session_expiry_s=600))
    attacker = Probe(broker.port, ca=broker.pki.ca_cert, username=a_id, password=a_password, client_id="pi-a-share")
    b = Probe(broker.port, ca=broker.pki.ca_cert, username=b_id, password=b_password, client_id="pi-b-share")
    with ingest:
        assert ingest.wait_connected(10)
        try:
            assert attacker.connect() == 0 and b.connect() == 0
            # Every group name the attacker can read in this source.
            for group in (SHARE_GROUP, "hipsense", "dashboard", DASHBOARD_USER, SECOND_DASHBOARD_USER):
                attacker.subscribe(f"$share/{group}/{ROOT}/+/event/#")
            for seq in range(1, 21):
                rep = _rep(b_id, seq)
                assert b.publish(rep.topic, rep.payload) == 0  # the broker took every one (PUBACK)
            deadline = dt.datetime.now() + dt.timedelta(seconds=5)
            while len(_seqs(engine, b_id)) < 20 and dt.datetime.now() < deadline:
                ingest.drain(1)
            assert _seqs(engine, b_id) == list(range(1, 21))  # none dropped at the attacker's share
            assert not [m for m in attacker.received() if b_id in m[0]]
        finally:
            attacker.close()
            b.close()


def test_instances_on_one_database_share_one_group_that_is_not_the_public_name(engine):  # noqa: F811
    first, second = EventStore(engine).share_group(SHARE_GROUP), EventStore(engine).share_group(SHARE_GROUP)
    assert first == second  # two instances split the results between them
    assert first.startswith(f"{SHARE_GROUP}-") and len(first) > len(SHARE_GROUP) + 20


def test_an_upgraded_dashboard_leaves_the_public_group_its_session_kept(fresh_deployment, engine):  # noqa: F811
    """A dashboard from before the secret group had a persistent session subscribed to
    ``$share/hipsense-dashboard/...``; the broker keeps it across reconnects. Upgraded, it
    would get every result twice (once per group) and stay in a group any Pi can join."""
    deployment = fresh_deployment  # an account whose session holds no other group
    broker = deployment.broker
    b_id, b_password = deployment.b
    settings = MqttSettings(
        host="127.0.0.1", port=broker.port, client_id=f"dash-{secrets.token_hex(3)}", username=SECOND_DASHBOARD_USER,
        password=deployment.dashboard_password, tls=TlsSettings(ca_file=broker.pki.ca_cert), clean_start=False,
        session_expiry_s=600)
    old = Probe(broker.port, ca=broker.pki.ca_cert, username=SECOND_DASHBOARD_USER,
                password=deployment.dashboard_password, client_id=settings.client_id)
    old.client.connect("127.0.0.1", broker.port, clean_start=False, properties=_session_expiry(600))
    old.client.loop_start()
    assert old.wait(lambda: old.connack is not None) and old.connack == 0
    assert old.subscribe(f"$share/{SHARE_GROUP}/{ROOT}/+/event/#") == [1]
    old.close()
    ingest = IngestService(EventStore(engine), settings)
    b = Probe(broker.port, ca=broker.pki.ca_cert, username=b_id, password=b_password, client_id="pi-b-upgrade")
    with ingest:
        assert ingest.wait_connected(10)
        try:
            assert b.connect() == 0
            for seq in range(1, 11):
                rep = _rep(b_id, seq)
                assert b.publish(rep.topic, rep.payload) == 0
            deadline = dt.datetime.now() + dt.timedelta(seconds=5)
            while len(_seqs(engine, b_id)) < 10 and dt.datetime.now() < deadline:
                ingest.drain(1)
            ingest.drain(2)
        finally:
            b.close()
    assert _seqs(engine, b_id) == list(range(1, 11))
    assert ingest.stats.duplicates == 0  # each result came once, not once per group


def _session_expiry(seconds: int):
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = seconds
    return properties


def test_a_pis_credentials_cannot_store_or_acknowledge_results_for_another_patient(deployment, engine):  # noqa: F811
    """Through the shipped broker and the real ingest: A's credentials publish B's results on A's
    own topics (the payload claims B), on B's topics (the ACL refuses), and B's acknowledgement;
    B gets no result, its acknowledgement does not move, and the forgeries are A's dead letters."""
    from hipsense.dashboard.db.tables import dead_letters
    from tests.deploy.probe import NOT_AUTHORIZED

    broker = deployment.broker
    (a_id, a_password), (b_id, _) = deployment.a, deployment.b
    ingest = IngestService(EventStore(engine), MqttSettings(
        host="127.0.0.1", port=broker.port, client_id=f"dash-{secrets.token_hex(3)}", username=DASHBOARD_USER,
        password=deployment.dashboard_password, tls=TlsSettings(ca_file=broker.pki.ca_cert), clean_start=False,
        session_expiry_s=600))
    attacker = Probe(broker.port, ca=broker.pki.ca_cert, username=a_id, password=a_password, client_id="pi-a-forge")
    with ingest:
        assert ingest.wait_connected(10)
        try:
            assert attacker.connect() == 0
            for seq in (1, 2, 3):
                forged = _rep(b_id, seq)
                own_topic = forged.topic.replace(f"/{b_id}/", f"/{a_id}/")
                assert attacker.publish(own_topic, forged.payload) == 0  # the broker takes it: A's own topic
                assert attacker.publish(forged.topic, forged.payload) == NOT_AUTHORIZED
            ack = p.build_stored_ack(b_id, 3)
            assert attacker.publish(ack.topic, ack.payload, retain=True) == NOT_AUTHORIZED
            control = _rep(a_id, 1)
            assert attacker.publish(control.topic, control.payload) == 0
            deadline = dt.datetime.now() + dt.timedelta(seconds=5)
            while _seqs(engine, a_id) != [1] and dt.datetime.now() < deadline:
                ingest.drain(1)
            ingest.drain(2)
        finally:
            attacker.close()
    assert _seqs(engine, a_id) == [1] and _seqs(engine, b_id) == []
    assert EventStore(engine).stored_seq(b_id) == 0
    with engine.connect() as connection:
        letters = connection.execute(select(dead_letters.c.patient, dead_letters.c.reason)).all()
    assert len(letters) == 3 and {patient for patient, _ in letters} == {a_id}
