"""A broker that lost its state lost the retained prescriptions too: the dashboard publishes
them again after every connect.

Before, the retained prescription was published once, when the therapist saved it. A broker
without persistence, or SIGKILLed before its autosave, restarted without it, and a Pi with no
cached prescription (a new install, a wiped state directory) waited for one for ever: the chaos
soak's ``hipsense run`` counted whole sessions with no prescription (adherence null) after such
a restart. Shipped broker config, real ingest, SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import secrets
import signal

from hipsense import protocol as p
from hipsense.dashboard.db.tables import prescriptions
from hipsense.dashboard.event_store import EventStore
from hipsense.dashboard.ingest import IngestService
from hipsense.publish.mqtt import MqttSettings, TlsSettings
from tests.dashboard.conftest import engine, postgres_url  # noqa: F401 - fixtures
from tests.deploy.broker import DASHBOARD_USER
from tests.deploy.probe import Probe


def _prescription(patient: str, version: int, sets: int) -> p.Envelope:
    return p.build_prescription(patient, version=version, updated_at=dt.datetime.now(dt.timezone.utc), exercises=[
        p.PrescribedExercise(order=1, exercise="clam_shells", sets=sets, reps=10, hold_s=2, sides=("left",))])


def _retained(deployment, who: tuple[str, str]) -> list[bytes]:
    patient, password = who
    probe = Probe(deployment.broker.port, ca=deployment.broker.pki.ca_cert, username=patient, password=password,
                  client_id=f"pi-{secrets.token_hex(3)}")
    assert probe.connect() == 0
    try:
        probe.subscribe(p.build_topic(p.MessageKind.PRESCRIPTION, patient))
        probe.wait(lambda: probe.received(), 2.0)
        return [payload for _, payload, _ in probe.received()]
    finally:
        probe.close()


def test_prescriptions_are_published_again_after_the_broker_lost_them(fresh_deployment, engine):  # noqa: F811
    deployment, broker = fresh_deployment, fresh_deployment.broker
    a, b = deployment.a[0], deployment.b[0]
    now = dt.datetime.now(dt.timezone.utc)
    newest = _prescription(a, 2, sets=3)
    with engine.begin() as connection:  # what the prescription editor left: A's v1 and v2, v3 never confirmed
        connection.execute(prescriptions.insert(), [
            {"patient": a, "version": 1, "published_at": now, "payload": _prescription(a, 1, 2).payload.decode(),
             "confirmed": True},
            {"patient": a, "version": 2, "published_at": now, "payload": newest.payload.decode(), "confirmed": True},
            {"patient": a, "version": 3, "published_at": now, "payload": _prescription(a, 3, 4).payload.decode(),
             "confirmed": False},
        ])
    ingest = IngestService(EventStore(engine), MqttSettings(
        host="127.0.0.1", port=broker.port, client_id=f"dash-{secrets.token_hex(3)}", username=DASHBOARD_USER,
        password=deployment.dashboard_password, tls=TlsSettings(ca_file=broker.pki.ca_cert), clean_start=False,
        session_expiry_s=600, reconnect_min_s=1, reconnect_max_s=1))
    with ingest:
        assert ingest.wait_connected(10)
        broker.stop(signal.SIGKILL)  # nothing saved ...
        for saved in broker.broker_dir.glob("mosquitto.db*"):
            saved.unlink()  # ... at all: retained prescriptions gone
        broker.start()
        connects = ingest.client.connects
        deadline = dt.datetime.now() + dt.timedelta(seconds=10)
        while ingest.client.connects == connects and dt.datetime.now() < deadline:
            ingest.drain(0.2)
        assert ingest.client.connects > connects  # the dashboard is back
        received = []
        deadline = dt.datetime.now() + dt.timedelta(seconds=5)
        while not received and dt.datetime.now() < deadline:
            received = _retained(deployment, deployment.a)
    assert received == [newest.payload]  # the newest confirmed version, not the unconfirmed one
    assert _retained(deployment, deployment.b) == []  # B has none, and sees none of A's
