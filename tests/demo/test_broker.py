"""The demo's embedded broker with the project's real MQTT clients: MQTT 5 falls back to 3.1.1,
a shared subscription gets every message, a retained prescription reaches a late subscriber."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time

import pytest

pytest.importorskip("amqtt")

from hipsense import protocol as p  # noqa: E402
from hipsense.publish.mqtt import MqttClient, shared_filter  # noqa: E402
from hipsense.demo.broker import EmbeddedBroker  # noqa: E402
from hipsense.demo.clinic import PATIENT_ID, PRESCRIPTION  # noqa: E402
from hipsense.demo.ports import free_port  # noqa: E402
from hipsense.publish.mqtt import MqttClient, MqttSettings  # noqa: E402


def settings(port: int, client_id: str, **extra) -> MqttSettings:
    return MqttSettings(host="127.0.0.1", port=port, client_id=client_id, reconnect_min_s=1, reconnect_max_s=1,
                        **extra)


def with_broker(job) -> None:  # noqa: ANN001 - job(broker, port, loop) runs in a thread
    async def main() -> None:
        port = free_port()
        async with EmbeddedBroker(port) as broker:
            await asyncio.to_thread(job, broker, port, asyncio.get_running_loop())

    asyncio.run(main())


def rep(seq: int) -> p.Envelope:
    now = dt.datetime.now(dt.UTC)
    return p.build_rep_event(PATIENT_ID, seq=seq, session_id=p.new_session_id(), exercise="straight_leg_raise",
                             side="right", set_index=1, rep_index=seq, t_start=now - dt.timedelta(seconds=3),
                             t_end=now, rom_deg=20.0, hold_s=5.0, peak_speed_dps=30.0)


def test_mqtt5_clients_fall_back_and_a_shared_subscription_gets_every_result():
    def job(broker: EmbeddedBroker, port: int, loop: asyncio.AbstractEventLoop) -> None:
        stored: list[str | None] = []
        all_arrived = threading.Event()

        def receive(topic: str, payload: bytes, ack) -> None:  # noqa: ANN001
            stored.append(p.parse_message(topic, payload).message_id)
            ack()
            if len(stored) == 3:
                all_arrived.set()

        dashboard = MqttClient(settings(port, "dash", clean_start=False, session_expiry_s=60))
        dashboard.subscribe_deferred(shared_filter("group", p.subscription_filter()), receive)
        pi = MqttClient(settings(port, "pi"), patient=PATIENT_ID)
        with dashboard, pi:
            assert dashboard.wait_connected(10) and pi.wait_connected(10)
            # Both asked for MQTT 5 first: the broker's refusal made them fall back.
            assert (dashboard.protocol_version, pi.protocol_version) == ("3.1.1", "3.1.1")
            deadline = time.monotonic() + 5  # connected before subscribed: wait for the SUBSCRIBE
            while not broker.has_subscriber("dash", p.subscription_filter()):
                assert time.monotonic() < deadline, "the shared subscription was not recorded as a plain one"
                time.sleep(0.02)
            sent = [rep(seq) for seq in (1, 2, 3)]
            for envelope in sent:
                pi.publish(envelope)
            assert all_arrived.wait(5)
        assert stored == [p.parse_message(e.topic, e.payload).message_id for e in sent]

    with_broker(job)


def test_the_retained_prescription_reaches_a_client_that_subscribes_later():
    def job(broker: EmbeddedBroker, port: int, loop: asyncio.AbstractEventLoop) -> None:
        envelope = p.build_prescription(PATIENT_ID, version=1, updated_at=dt.datetime.now(dt.UTC),
                                        exercises=PRESCRIPTION)
        asyncio.run_coroutine_threadsafe(broker.publish_retained(envelope.topic, envelope.payload), loop).result(5)
        got: list[p.Prescription] = []
        arrived = threading.Event()

        def on_prescription(message: p.Message) -> None:
            got.append(p.prescription_from_message(message))
            arrived.set()

        with MqttClient(settings(port, "late")) as client:
            client.subscribe(envelope.topic, on_prescription)
            assert arrived.wait(10)
        assert got[0].version == 1 and got[0].exercises[0].exercise == "straight_leg_raise"

    with_broker(job)


def test_a_client_that_is_not_mqtt_is_dropped_and_the_broker_stays_up():
    def job(broker: EmbeddedBroker, port: int, loop: asyncio.AbstractEventLoop) -> None:
        import socket

        with socket.create_connection(("127.0.0.1", port), timeout=5) as garbage:
            garbage.sendall(b"GET / HTTP/1.1\r\n\r\n")
            garbage.settimeout(5)
            assert garbage.recv(100) == b""  # closed without an answer
        with MqttClient(settings(port, "after")) as client:
            assert client.wait_connected(10)

    with_broker(job)
