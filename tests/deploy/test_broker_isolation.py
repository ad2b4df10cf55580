"""Against a real Mosquitto running deploy/server/mosquitto/hipsense.conf with the ACL and
password file that ``hipsense provision`` wrote: a patient's Pi reaches only its own topics.

Every "never arrives" check is ordered behind a positive control on the same connection (MQTT
keeps one client's messages in order), so absence is proven without long sleeps.
"""

from __future__ import annotations

import pytest

from tests.deploy.broker import DASHBOARD_USER, SECOND_DASHBOARD_USER
from tests.deploy.probe import NOT_AUTHORIZED, Probe

ROOT = "hipsense/v1"


def probe(dep, who: str, client_id: str) -> Probe:
    user, password = {"a": dep.a, "b": dep.b, "dashboard": (DASHBOARD_USER, dep.dashboard_password),
                      "dashboard-2": (SECOND_DASHBOARD_USER, dep.dashboard_password)}[who]
    p = Probe(dep.broker.port, ca=dep.broker.pki.ca_cert, username=user, password=password, client_id=client_id)
    assert p.connect() == 0, f"{who} could not connect: {dep.broker.log_text()[-2000:]}"
    return p


@pytest.fixture
def clients(deployment):
    opened: list[Probe] = []

    def open_(who: str, client_id: str) -> Probe:
        opened.append(probe(deployment, who, client_id))
        return opened[-1]

    yield open_
    for p in opened:
        p.close()


def test_patient_a_cannot_publish_on_patient_b_topics(deployment, clients):
    a_id, b_id = deployment.a[0], deployment.b[0]
    dashboard = clients("dashboard", "dash-watch")
    b = clients("b", "pi-b-watch")
    assert dashboard.subscribe(f"{ROOT}/#") == [1]
    assert b.subscribe(f"{ROOT}/{b_id}/prescription") == [1]
    a = clients("a", "pi-a-attacker")
    forged = [f"{ROOT}/{b_id}/{leaf}" for leaf in ("status", "live", "event/rep", "event/session", "prescription")]
    codes = {topic: a.publish(topic, b"forged by A", retain=topic.endswith(("status", "prescription")))
             for topic in forged}
    assert set(codes.values()) == {NOT_AUTHORIZED}, codes  # MQTT 5 tells A it was refused
    assert a.publish(f"{ROOT}/{a_id}/event/rep", b"control from A") == 0  # A's own topic works
    assert dashboard.wait_for_payload(b"control from A")
    assert not [m for m in dashboard.received() if m[1] == b"forged by A"]
    assert not b.received()
    # Nor with MQTT 3.1.1, where the broker cannot say "refused" and silently drops instead.
    import paho.mqtt.client as paho

    old = Probe(deployment.broker.port, ca=deployment.broker.pki.ca_cert, username=a_id,
                password=deployment.a[1], client_id="pi-a-311", protocol=paho.MQTTv311)
    assert old.connect() == 0
    try:
        old.publish(f"{ROOT}/{b_id}/event/rep", b"forged by A over 3.1.1")
        old.publish(f"{ROOT}/{a_id}/event/rep", b"control from A over 3.1.1")
        assert dashboard.wait_for_payload(b"control from A over 3.1.1")
    finally:
        old.close()
    assert not [m for m in dashboard.received() if b"forged" in m[1]]


def test_patient_a_cannot_read_patient_b_topics(deployment, clients):
    a_id, b_id = deployment.a[0], deployment.b[0]
    dashboard = clients("dashboard", "dash-writer")
    assert dashboard.publish(f"{ROOT}/{b_id}/prescription", b"rx for B", retain=True) == 0
    a = clients("a", "pi-a-snoop")
    # Every filter that would cover B: B's tree, any patient's prescription, everything.
    # Mosquitto 2.0 grants these subscriptions (SUBACK 0x01) and applies the ACL to each
    # message it would deliver, so what matters is what arrives.
    filters = [f"{ROOT}/{b_id}/#", f"{ROOT}/{b_id}/prescription", f"{ROOT}/+/prescription", f"{ROOT}/+/event/#",
               f"{ROOT}/#", "#", f"$share/snoop/{ROOT}/#"]
    for topic_filter in filters:
        a.subscribe(topic_filter)
    b = clients("b", "pi-b-talk")
    assert b.publish(f"{ROOT}/{b_id}/event/rep", b"B's result") == 0
    assert b.publish(f"{ROOT}/{b_id}/status", b"B online", retain=True) == 0
    # Positive control, sent after B's messages: A's own prescription reaches A.
    assert dashboard.publish(f"{ROOT}/{a_id}/prescription", b"rx for A", retain=True) == 0
    assert a.wait_for_payload(b"rx for A")
    leaked = [m for m in a.received() if b_id in m[0]]
    assert not leaked, leaked


def test_a_patient_cannot_write_its_own_prescription(deployment, clients):
    a_id = deployment.a[0]
    dashboard = clients("dashboard", "dash-rx")
    assert dashboard.publish(f"{ROOT}/{a_id}/prescription", b"rx v1 from therapist", retain=True) == 0
    a = clients("a", "pi-a-rx")
    assert a.publish(f"{ROOT}/{a_id}/prescription", b"rx from the patient", retain=True) == NOT_AUTHORIZED
    a.publish(f"{ROOT}/{a_id}/status", b"control", retain=False)
    watcher = clients("dashboard", "dash-rx-watch")
    watcher.subscribe(f"{ROOT}/{a_id}/prescription")
    assert watcher.wait_for_payload(b"rx v1 from therapist")  # the retained one is still the therapist's
    a.subscribe(f"{ROOT}/{a_id}/prescription")  # and the patient may read it
    assert a.wait_for_payload(b"rx v1 from therapist")
    assert not [m for m in watcher.received() + a.received() if m[1] == b"rx from the patient"]


def test_the_dashboard_reads_every_patient_and_writes_prescriptions(deployment, clients):
    a_id, b_id = deployment.a[0], deployment.b[0]
    dashboard = clients("dashboard", "dash-all")
    # The dashboard's own filters (docs/mqtt.md), plus the shared form its ingest uses.
    for topic_filter in (f"{ROOT}/+/event/#", f"{ROOT}/+/status"):
        assert dashboard.subscribe(topic_filter) == [1]
    ingest = clients("dashboard-2", "dash-ingest-1")  # another instance, in the shared form ingest uses
    assert ingest.subscribe(f"$share/ingest/{ROOT}/+/event/session") == [1]
    a, b = clients("a", "pi-a-all"), clients("b", "pi-b-all")
    assert a.publish(f"{ROOT}/{a_id}/event/rep", b"rep A") == 0
    assert b.publish(f"{ROOT}/{b_id}/event/hold", b"hold B") == 0
    assert b.publish(f"{ROOT}/{b_id}/event/session", b"session B") == 0
    assert a.publish(f"{ROOT}/{a_id}/status", b"online A", retain=True) == 0
    for payload in (b"rep A", b"hold B", b"session B", b"online A"):
        assert dashboard.wait_for_payload(payload), payload
    assert ingest.wait_for_payload(b"session B") and len(ingest.received()) == 1
    a.subscribe(f"{ROOT}/{a_id}/prescription")
    b.subscribe(f"{ROOT}/{b_id}/prescription")
    assert dashboard.publish(f"{ROOT}/{a_id}/prescription", b"new rx A", retain=True) == 0
    assert dashboard.publish(f"{ROOT}/{b_id}/prescription", b"new rx B", retain=True) == 0
    assert a.wait_for_payload(b"new rx A") and b.wait_for_payload(b"new rx B")
    assert not [m for m in a.received() if b_id in m[0]]


def test_the_dashboard_cannot_forge_a_pis_results(deployment, clients):
    """Least privilege both ways: a stolen dashboard password cannot invent exercise results."""
    a_id = deployment.a[0]
    dashboard = clients("dashboard", "dash-forge")
    for leaf in ("event/rep", "status", "live"):
        assert dashboard.publish(f"{ROOT}/{a_id}/{leaf}", b"forged by dashboard") == NOT_AUTHORIZED
    assert dashboard.publish("elsewhere/topic", b"x") == NOT_AUTHORIZED


def test_taking_over_another_patients_client_id_leaks_nothing(deployment, clients):
    """Mosquitto would let any authenticated client reuse a connected client id; the shipped
    config binds the id to the account (use_username_as_clientid), so A's connection under B's
    id is A's own session: it must not hand over B's (tests/deploy/test_delivery.py checks the
    dashboard's session the same way)."""
    import paho.mqtt.client as paho

    b_id = deployment.b[0]
    dashboard = clients("dashboard", "dash-takeover")
    # B with a persistent session and a queued prescription.
    b = Probe(deployment.broker.port, ca=deployment.broker.pki.ca_cert, username=b_id, password=deployment.b[1],
              client_id="pi-b-session", protocol=paho.MQTTv311)
    b.client._clean_session = False  # paho 2 keeps 3.1.1 clean_session on the client object
    assert b.connect() == 0
    b.subscribe(f"{ROOT}/{b_id}/prescription")
    b.close()
    assert dashboard.publish(f"{ROOT}/{b_id}/prescription", b"queued rx for B", retain=False) == 0
    thief = Probe(deployment.broker.port, ca=deployment.broker.pki.ca_cert, username=deployment.a[0],
                  password=deployment.a[1], client_id="pi-b-session", protocol=paho.MQTTv311)
    thief.client._clean_session = False
    try:
        assert thief.connect() == 0
        thief.subscribe(f"{ROOT}/{deployment.a[0]}/prescription")
        assert dashboard.publish(f"{ROOT}/{deployment.a[0]}/prescription", b"control rx A") == 0
        assert thief.wait_for_payload(b"control rx A")
        assert not [m for m in thief.received() if b_id in m[0]]
    finally:
        thief.close()
