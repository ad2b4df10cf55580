"""Who gets in at all: wrong passwords, anonymous clients, plaintext and revoked patients are
refused by a real Mosquitto running the shipped configuration."""

from __future__ import annotations

import socket
import struct

import paho.mqtt.client as paho
import pytest

from tests.deploy.broker import DASHBOARD_USER
from tests.deploy.probe import BAD_CREDENTIALS, NOT_AUTHORIZED, Probe, connect_result

REFUSED = {BAD_CREDENTIALS, NOT_AUTHORIZED}
BOTH_PROTOCOLS = pytest.mark.parametrize("protocol", [paho.MQTTv5, paho.MQTTv311], ids=["mqtt5", "mqtt311"])


@BOTH_PROTOCOLS
def test_the_right_password_gets_in(deployment, protocol):
    ca = deployment.broker.pki.ca_cert
    assert connect_result(deployment.broker.port, ca=ca, username=deployment.a[0], password=deployment.a[1],
                          client_id="ok-a", protocol=protocol) == 0
    assert connect_result(deployment.broker.port, ca=ca, username=DASHBOARD_USER,
                          password=deployment.dashboard_password, client_id="ok-d", protocol=protocol) == 0


@BOTH_PROTOCOLS
@pytest.mark.parametrize("who", ["wrong password", "other patient's password", "unknown user", "anonymous",
                                 "empty password"])
def test_bad_credentials_are_refused(deployment, protocol, who):
    a_id, b_password = deployment.a[0], deployment.b[1]
    username, password = {
        "wrong password": (a_id, deployment.a[1] + "x"),
        "other patient's password": (a_id, b_password),
        "unknown user": ("p-99zz99zz99", deployment.a[1]),
        "anonymous": (None, None),
        "empty password": (a_id, ""),
    }[who]
    code = connect_result(deployment.broker.port, ca=deployment.broker.pki.ca_cert, username=username,
                          password=password, client_id=f"bad-{protocol}", protocol=protocol)
    assert code in REFUSED, f"{who}: CONNACK {code!r}"


def _mqtt311_connect_packet(username: str, password: str) -> bytes:
    def s(text: str) -> bytes:
        return struct.pack("!H", len(text)) + text.encode()

    body = s("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 30) + s("plain") + s(username) + s(password)
    return bytes([0x10, len(body)]) + body


def test_plaintext_mqtt_to_the_tls_port_is_refused(deployment):
    """A client that forgets TLS sends its password in clear: the broker must not answer it."""
    with socket.create_connection(("127.0.0.1", deployment.broker.port), timeout=5) as sock:
        sock.sendall(_mqtt311_connect_packet(deployment.a[0], deployment.a[1]))
        try:
            reply = sock.recv(64)
        except ConnectionResetError:
            reply = b""
    assert not reply.startswith(b"\x20"), f"a CONNACK over plaintext: {reply!r}"  # 0x20 = CONNACK
    # And paho without TLS never gets a CONNACK either.
    assert connect_result(deployment.broker.port, ca=None, username=deployment.a[0], password=deployment.a[1],
                          client_id="plain") is None


def test_a_client_that_does_not_trust_the_ca_does_not_connect(deployment, tmp_path):
    """The Pi checks the broker too: a stranger's CA (a man in the middle) fails the handshake."""
    from tests.pki import make_pki

    stranger = make_pki(tmp_path / "stranger", ca_name="someone else's CA")
    assert connect_result(deployment.broker.port, ca=stranger.ca_cert, username=deployment.a[0],
                          password=deployment.a[1], client_id="mitm") is None


def test_a_revoked_patient_is_refused_after_the_broker_reloads(fresh_deployment):
    dep = fresh_deployment
    a_id, a_password = dep.a
    ca = dep.broker.pki.ca_cert
    connected = Probe(dep.broker.port, ca=ca, username=a_id, password=a_password, client_id="pi-a-live")
    assert connected.connect() == 0
    try:
        output = dep.broker.revoke(a_id)
        assert "reload" in output and "SIGHUP" in output  # the operator is told what is still missing
        assert a_password not in output
        dep.broker.reload()
        # A new connection is refused; B and the dashboard are untouched.
        assert connect_result(dep.broker.port, ca=ca, username=a_id, password=a_password, client_id="pi-a-again") in REFUSED
        assert connect_result(dep.broker.port, ca=ca, username=dep.b[0], password=dep.b[1], client_id="pi-b") == 0
        assert connect_result(dep.broker.port, ca=ca, username=DASHBOARD_USER, password=dep.dashboard_password,
                              client_id="dash") == 0
        # The connection that was open when the access was revoked is closed by the reload
        # (Mosquitto re-checks connected clients against the new files on SIGHUP).
        assert connected.wait(lambda: connected.disconnected, 5), "the revoked Pi's open connection survived"
    finally:
        connected.close()


def test_revocation_is_not_in_force_before_the_reload(fresh_deployment):
    """Why the CLI insists on the reload: Mosquitto reads the files only at start and on SIGHUP."""
    dep = fresh_deployment
    dep.broker.revoke(dep.a[0])
    assert connect_result(dep.broker.port, ca=dep.broker.pki.ca_cert, username=dep.a[0], password=dep.a[1],
                          client_id="before-reload") == 0


def test_a_new_server_certificate_is_served_after_a_reload(fresh_deployment, tmp_path):
    """Certificate rotation as the README describes it: replace the files, SIGHUP, no restart.
    (A certificate from a different CA makes the switch visible to a client.)"""
    from tests.pki import make_pki

    dep = fresh_deployment
    new = make_pki(tmp_path / "new", ca_name="next CA")
    old_ca = dep.broker.pki.ca_cert
    staying = Probe(dep.broker.port, ca=old_ca, username=dep.b[0], password=dep.b[1], client_id="pi-b-stays")
    assert staying.connect() == 0
    try:
        for src, name in ((new.server_cert, "server.crt"), (new.server_key, "server.key")):
            (dep.broker.broker_dir / name).write_bytes(src.read_bytes())
        dep.broker.reload()
        kwargs = {"username": dep.a[0], "password": dep.a[1]}
        assert connect_result(dep.broker.port, ca=new.ca_cert, client_id="pi-a-new", **kwargs) == 0
        assert connect_result(dep.broker.port, ca=old_ca, client_id="pi-a-old", **kwargs) is None
        # An open session survives the reload: it still gets its PUBACK.
        assert staying.publish(f"hipsense/v1/{dep.b[0]}/event/rep", b"after reload") == 0
        assert not staying.disconnected
    finally:
        staying.close()


def test_the_broker_log_names_users_but_holds_no_password(deployment):
    ca = deployment.broker.pki.ca_cert
    connect_result(deployment.broker.port, ca=ca, username=deployment.a[0], password=deployment.a[1], client_id="log-ok")
    connect_result(deployment.broker.port, ca=ca, username=deployment.b[0], password=deployment.a[1], client_id="log-bad")
    log = deployment.broker.log_text()
    assert deployment.a[0] in log  # the pseudonym is logged: that is what makes the log useful
    for secret in (deployment.a[1], deployment.b[1], deployment.dashboard_password):
        assert secret not in log
