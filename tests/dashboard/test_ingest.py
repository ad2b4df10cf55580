"""Ingest: validation, rejection without stopping, idempotent storing, acknowledgements after
the commit; then through a real Mosquitto with the shared subscription."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time

import pytest

from hipsense import protocol as p
from hipsense.dashboard.event_store import EventStore
from hipsense.dashboard.ingest import IngestService
from hipsense.dashboard.live_hub import LiveHub
from hipsense.dashboard.reading.events import count_events, load_events
from hipsense.publish.mqtt import MqttClient, MqttSettings
from tests.dashboard.conftest import mqtt_settings, utc
from tests.dashboard.events import rep

T0 = utc(2025, 3, 1, 9, 0, 0)
UNUSED = MqttSettings(host="127.0.0.1", port=1)  # never connected in the direct tests


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class Acks:
    def __init__(self) -> None:
        self.order: list[str] = []

    def __call__(self, name: str):
        return lambda: self.order.append(name)


def test_malformed_and_oversized_are_rejected_logged_once_and_ingest_goes_on(engine, caplog):
    service = IngestService(EventStore(engine), UNUSED)
    service.start(connect=False)
    acks = Acks()
    good = rep("p-0001", 1, T0)
    topic = good.topic
    document = json.loads(good.payload)
    bad = {
        "not json": b"{not json",
        "schema": json.dumps(document | {"rom_deg": "wide"}).encode(),
        "other patient": json.dumps(document | {"patient": "p-0002"}).encode(),
        "oversized": json.dumps(document | {"flags": ["x" * 70_000]}).encode(),
        "nan": good.payload.replace(b'"rom_deg":38.0', b'"rom_deg":NaN'),
    }
    with caplog.at_level(logging.WARNING, logger="hipsense.dashboard.ingest.service"):
        for name, payload in bad.items():
            service.receive(topic, payload, acks(name))
        service.receive("hipsense/v1/Maria/event/rep", good.payload, acks("bad topic"))
        service.receive(topic, good.payload, acks("good"))
        assert service.drain(5)
    service.stop()
    assert service.stats.rejected == 6
    assert len([r for r in caplog.records if "rejected message" in r.getMessage()]) == 6
    assert "over the 65536-byte limit" in caplog.text
    # Everything is acknowledged (a bad message never gets better), in arrival order.
    assert acks.order == [*bad, "bad topic", "good"]
    assert [e.message_id for e in load_events(engine, "p-0001")] == [good.message_id]


def test_a_duplicate_delivery_is_stored_once_and_acknowledged(engine):
    service = IngestService(EventStore(engine), UNUSED)
    service.start(connect=False)
    acks = Acks()
    envelope = rep("p-0001", 1, T0)
    for copy in range(3):
        service.receive(envelope.topic, envelope.payload, acks(f"copy {copy}"))
        assert service.drain(5)
    service.stop()
    assert acks.order == ["copy 0", "copy 1", "copy 2"]
    assert count_events(engine, "p-0001") == 1
    assert (service.stats.stored, service.stats.duplicates) == (1, 2)


def test_nothing_is_acknowledged_while_the_database_refuses(sqlite_engine):
    class FlakyStore(EventStore):
        failures = 2

        def write_batch(self, messages, letters=()):
            if self.failures:
                self.failures -= 1
                raise OSError("database is down")
            return super().write_batch(messages, letters)

    service = IngestService(FlakyStore(sqlite_engine), UNUSED)
    service.start(connect=False)
    acks = Acks()
    envelope = rep("p-0001", 1, T0)
    service.receive(envelope.topic, envelope.payload, acks("rep"))
    time.sleep(0.05)
    assert acks.order == []  # the broker keeps it while the database is down
    assert service.drain(5)
    service.stop()
    assert acks.order == ["rep"] and service.stats.write_failures == 2
    assert count_events(sqlite_engine, "p-0001") == 1


def test_a_full_inbox_holds_the_receiver_back_and_loses_nothing(sqlite_engine):
    """While the database is slow the inbox fills; past its limit receive() waits (paho stops
    reading, TCP pushes back on the broker) until the writer took a batch. Nothing is lost,
    doubled or acknowledged out of order, and nothing before its commit."""
    import threading

    release = threading.Event()
    committed: list[int] = []

    class SlowStore(EventStore):
        def write_batch(self, messages, letters=()):
            release.wait(10)
            result = super().write_batch(messages, letters)
            committed.extend(m.seq for m in messages)
            return result

    service = IngestService(SlowStore(sqlite_engine), UNUSED, batch_max=4, linger_s=0)
    service._inbox_max = 6
    service.start(connect=False)
    acked: list[int] = []
    envelopes = [rep("p-0001", seq, T0 + dt.timedelta(seconds=5 * seq)) for seq in range(1, 31)]

    def ack(seq: int):
        def done() -> None:
            assert seq in committed, f"seq {seq} acknowledged before its commit"
            acked.append(seq)
        return done

    received = []

    def feed() -> None:
        for seq, envelope in enumerate(envelopes, start=1):
            service.receive(envelope.topic, envelope.payload, ack(seq))
            received.append(seq)

    feeder = threading.Thread(target=feed)
    feeder.start()
    wait_until(lambda: len(service._inbox) == 6, 5, "the inbox to fill")
    time.sleep(0.2)
    # The writer holds one batch (1 to 4, blocked in the store), the inbox 6, the feeder waits.
    assert len(service._inbox) == 6 and 7 <= len(received) <= 10 and acked == []
    release.set()
    feeder.join(10)
    assert service.drain(10)
    service.stop()
    assert acked == list(range(1, 31))
    assert [e.seq for e in load_events(sqlite_engine, "p-0001")] == list(range(1, 31))
    assert (service.stats.stored, service.stats.duplicates) == (30, 0)


def test_live_data_reaches_the_hub_and_never_the_database(sqlite_engine):
    hub = LiveHub()
    service = IngestService(EventStore(sqlite_engine), UNUSED, hub=hub)
    service.start(connect=False)
    live = p.build_live("p-0001", t=T0, side="left", thigh_angle_deg=30.0, exercise="clam_shells", rep_count=4)
    service.receive(live.topic, live.payload, lambda: None)
    service.stop()
    assert hub.last_live("p-0001", max_age_s=5)["rep_count"] == 4
    assert count_events(sqlite_engine) == 0


# -- through a real broker -------------------------------------------------------------------


def publish_all(broker, envelopes, *, user: str = "p-0001") -> None:
    with MqttClient(mqtt_settings(broker, user=user)) as pi:
        assert pi.wait_connected(5)
        for envelope in envelopes:
            pi.publish(envelope, timeout=5)


@pytest.mark.slow
def test_broker_to_store_once_each_in_event_order(engine, broker):
    service = IngestService(EventStore(engine), mqtt_settings(broker))
    with service:
        assert service.wait_connected(5)
        time.sleep(0.2)  # the SUBACK
        envelopes = [rep("p-0001", seq, T0 + dt.timedelta(seconds=5 * seq)) for seq in range(1, 6)]
        oversized = dataclasses.replace(envelopes[0], payload=b"{" + b" " * 70_000 + b"}")
        malformed = dataclasses.replace(envelopes[0], payload=b'{"seq": 1')
        # Out of order, a duplicate, and two bad messages in between.
        publish_all(broker, [envelopes[3], envelopes[0], oversized, envelopes[4], envelopes[0], malformed,
                             envelopes[2], envelopes[1], envelopes[3]])
        wait_until(lambda: service.stats.received >= 9, 5, "all deliveries")
        assert service.drain(5)
    assert service.stats.rejected == 2
    assert [e.seq for e in load_events(engine, "p-0001")] == [1, 2, 3, 4, 5]


@pytest.mark.slow
def test_two_instances_share_the_subscription_and_store_each_message_once(sqlite_engine, broker):
    first = IngestService(EventStore(sqlite_engine), mqtt_settings(broker))
    second = IngestService(EventStore(sqlite_engine), mqtt_settings(broker))
    with first, second:
        assert first.wait_connected(5) and second.wait_connected(5)
        time.sleep(0.2)
        envelopes = [rep("p-0002", seq, T0 + dt.timedelta(seconds=seq)) for seq in range(1, 61)]
        publish_all(broker, envelopes + envelopes[:10], user="p-0002")
        wait_until(lambda: first.stats.received + second.stats.received >= 70, 10, "all deliveries")
        assert first.drain(5) and second.drain(5)
    # The broker split the stream: each instance got a part, and none got everything.
    assert first.stats.received and second.stats.received
    assert count_events(sqlite_engine, "p-0002") == 60
    assert first.stats.duplicates + second.stats.duplicates == 10


@pytest.mark.slow
def test_results_sent_while_the_dashboard_is_stopped_are_stored_when_it_is_back(sqlite_engine, broker):
    settings = mqtt_settings(broker, client_id="dashboard-restart", clean_start=False, session_expiry_s=300)
    first = IngestService(EventStore(sqlite_engine), settings)
    with first:
        assert first.wait_connected(5)
        time.sleep(0.2)
    envelopes = [rep("p-0001", seq, T0 + dt.timedelta(seconds=seq)) for seq in range(1, 6)]
    publish_all(broker, envelopes)  # the broker keeps them for the persistent session
    second = IngestService(EventStore(sqlite_engine), settings)
    with second:
        wait_until(lambda: second.stats.stored >= 5, 10, "the queued results")
    assert [e.seq for e in load_events(sqlite_engine, "p-0001")] == [1, 2, 3, 4, 5]


@pytest.mark.slow
def test_the_shared_subscription_is_restored_after_a_broker_restart(sqlite_engine, broker):
    service = IngestService(EventStore(sqlite_engine), mqtt_settings(broker))
    with service:
        assert service.wait_connected(5)
        broker.stop()
        wait_until(lambda: not service.client.is_connected(), 5, "the disconnect")
        broker.start()
        assert service.wait_connected(10)
        time.sleep(0.3)  # the re-subscription
        publish_all(broker, [rep("p-0001", 1, T0)])
        wait_until(lambda: service.stats.stored == 1, 5, "the result after the restart")


@pytest.mark.slow
def test_the_ingest_announces_itself_once_a_while_and_not_while_it_cannot_store(sqlite_engine, broker):
    """Every "ingest online" makes every Pi send again all it has unacknowledged. An overloaded
    ingest whose keep-alive fails reconnects again and again: it announced each time (a
    fleet-wide re-send on each, feeding the overload). Now, while the broker keeps its session,
    once per announce_every_s (put off, not dropped); at once when the broker lost the session;
    and never while the database cannot take what arrives (sent when it can)."""
    import signal
    import socket

    import paho.mqtt.client as paho

    from hipsense.protocol.ingest_online import INGEST_ONLINE_TOPIC
    from tests.mosquitto import DASHBOARD_PASSWORD, DASHBOARD_USER

    epochs: list[str] = []
    watcher = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="watcher", protocol=paho.MQTTv5)
    if broker.authenticated:
        watcher.username_pw_set(DASHBOARD_USER, DASHBOARD_PASSWORD)
    watcher.on_message = lambda client, userdata, message: epochs.append(json.loads(message.payload)["epoch"])
    watcher.on_connect = lambda client, *args: client.subscribe(INGEST_ONLINE_TOPIC, qos=1)
    watcher.reconnect_delay_set(1, 1)
    watcher.connect("127.0.0.1", broker.port)
    watcher.loop_start()
    service = IngestService(EventStore(sqlite_engine), mqtt_settings(broker, client_id="dashboard-flapping",
                                                                      clean_start=False, session_expiry_s=600),
                            announce_every_s=600)
    try:
        with service:
            assert service.wait_connected(5)
            wait_until(lambda: len(set(epochs)) == 1, 5, "the first announcement")
            for n in (2, 3, 4):  # the keep-alive fails three times: the broker keeps the session
                service.client._client.socket().shutdown(socket.SHUT_RDWR)
                wait_until(lambda: service.client.connects == n and service.client.is_connected(), 10, "a reconnect")
                assert service.client.session_present
            time.sleep(0.5)
            assert len(set(epochs)) == 1  # before: 4, one per reconnect
            service.announce_every_s = 0  # the while is over: the put-off one goes out, without a reconnect
            wait_until(lambda: len(set(epochs)) == 2, 5, "the announcement put off")

            real_write = service.store.write_batch
            service.store.write_batch = lambda *args, **kwargs: (_ for _ in ()).throw(OSError("database down"))
            publish_all(broker, [rep("p-0001", 1, T0)])
            wait_until(lambda: service.stats.write_failures >= 1, 5, "the writer failing")
            service.client._client.socket().shutdown(socket.SHUT_RDWR)
            wait_until(lambda: service.client.connects == 5 and service.client.is_connected(), 10, "a reconnect")
            time.sleep(0.5)
            assert len(set(epochs)) == 2  # not while nothing can be stored
            service.store.write_batch = real_write
            wait_until(lambda: service.stats.stored == 1, 10, "the result, once the database is back")
            wait_until(lambda: len(set(epochs)) == 3, 5, "the announcement, once it can store")

            service.announce_every_s = 600
            broker.stop(signal.SIGKILL)  # a restart without its state: the session (and subscription) lost
            for saved in broker.workdir.rglob("*.db"):
                saved.unlink()
            broker.start()
            wait_until(lambda: service.client.connects == 6 and service.client.is_connected(), 10, "a reconnect")
            assert not service.client.session_present
            wait_until(lambda: len(set(epochs)) == 4, 5, "the announcement at once")
    finally:
        watcher.loop_stop()
        watcher.disconnect()
