"""Fuzzing the dashboard's ingest with hostile payloads: schema-violating, deeply nested, huge
strings, wrong types, random bytes, wrong topics. Nothing crashes, nothing is stored, every
message is acknowledged (a bad message never gets better) and each is logged exactly once."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hipsense.dashboard.event_store import EventStore
from hipsense.dashboard.ingest import IngestService
from hipsense.dashboard.reading.events import count_events
from hipsense.publish.mqtt import MqttSettings
from tests.dashboard.conftest import utc
from tests.dashboard.events import rep

UNUSED = MqttSettings(host="127.0.0.1", port=1)  # never connected: messages are handed in
GOOD = rep("p-0001", 1, utc(2025, 3, 1, 9, 0, 0))
DOCUMENT = json.loads(GOOD.payload)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


def _nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


hostile_payloads = st.one_of(
    st.binary(max_size=300),  # random bytes
    json_values.map(lambda v: json.dumps(v).encode()),  # valid JSON, any shape
    # a real rep with one field replaced by a value of any type (mostly wrong ones)
    st.tuples(st.sampled_from(sorted(DOCUMENT)), json_values).map(
        lambda kv: json.dumps(DOCUMENT | {kv[0]: kv[1]}).encode()
    ),
    # a real rep missing a field
    st.sampled_from(sorted(DOCUMENT)).map(
        lambda k: json.dumps({f: v for f, v in DOCUMENT.items() if f != k}).encode()
    ),
    st.integers(9, 5000).map(_nested),  # deeply nested
    st.integers(70_000, 300_000).map(lambda n: json.dumps(DOCUMENT | {"exercise": "x" * n}).encode()),
)
hostile_topics = st.sampled_from([
    GOOD.topic, "hipsense/v1/p-0001/event/nope", "hipsense/v1/Maria Smith/event/rep",
    "hipsense/v2/p-0001/event/rep", "", "#", "hipsense/v1/p-0001/prescription",
])


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(st.tuples(hostile_topics, hostile_payloads), min_size=1, max_size=6))
def test_hostile_messages_are_rejected_logged_once_and_never_stored(engine, caplog, messages):
    # a payload that happens to be the real, valid rep on its own topic is not hostile
    messages = [(t, b) for t, b in messages if not (t == GOOD.topic and b == GOOD.payload)]
    store = EventStore(engine)
    before = count_events(engine)
    service = IngestService(store, UNUSED)
    service.start(connect=False)
    acked: list[int] = []
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hipsense.dashboard.ingest.service"):
        for i, (topic, payload) in enumerate(messages):
            service.receive(topic, payload, lambda i=i: acked.append(i))
        assert service.drain(10)
    service.stop()
    assert acked == list(range(len(messages)))
    stored = count_events(engine) - before
    # a mutation may leave a message valid (the same value again, an optional field dropped):
    # only those may land, and one id at most once
    assert stored <= len(messages) - service.stats.rejected
    rejected_logs = [r for r in caplog.records if "rejected message" in r.getMessage()]
    assert len(rejected_logs) == service.stats.rejected
    assert all(len(r.getMessage()) < 2_000 for r in rejected_logs), "a log line quoted a huge payload"


# -- the same through a real Mosquitto, on both databases ---------------------------------------

# What a Pi's account may publish to (the broker's ACL refuses the rest before ingest sees it).
BROKER_TOPICS = st.sampled_from([
    GOOD.topic, "hipsense/v1/p-0001/event/nope", "hipsense/v1/p-0001/event/session", "hipsense/v1/p-0001/status",
    "hipsense/v1/p-0001/live",
])


@pytest.fixture
def running_ingest(engine, broker):
    from tests.dashboard.conftest import mqtt_settings

    service = IngestService(EventStore(engine), mqtt_settings(broker, client_id="dash-fuzz", clean_start=False,
                                                              session_expiry_s=600))
    service.start()
    assert service.wait_connected(10)
    pi = _raw_client(broker)
    yield engine, service, pi
    pi.disconnect()
    pi.loop_stop()
    service.stop()


def _raw_client(broker):
    """A hostile Pi: raw paho with p-0001's credentials (it need not follow our client's rules)."""
    import paho.mqtt.client as paho

    from tests.dashboard.conftest import PATIENTS

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="fuzzing-pi", protocol=paho.MQTTv5)
    if broker.authenticated:
        client.username_pw_set("p-0001", PATIENTS["p-0001"])
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client


_control_seq = iter(range(1_000_000, 2_000_000))

# Valid to the schema and hostile to a database whose columns are narrower than the schema (a
# 27-64 character session_id halted the writer on PostgreSQL for good, issue 11).
schema_edge_payloads = st.from_regex(r"[0-9A-Za-z_-]{27,64}", fullmatch=True).map(
    lambda session_id: json.dumps(DOCUMENT | {"session_id": session_id}).encode())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(st.tuples(BROKER_TOPICS, hostile_payloads | schema_edge_payloads), min_size=1, max_size=5))
def test_hostile_messages_through_the_broker_never_halt_ingest(running_ingest, caplog, messages):
    """Each example ends with a valid control result from the same Pi: it must be stored (ingest
    is alive and in order), every rejection logged once, and nothing hostile stored twice."""
    import time

    from hipsense.protocol import parse_message

    engine, service, pi = running_ingest
    messages = [(t, b) for t, b in messages if not (t == GOOD.topic and b == GOOD.payload)]
    control = rep("p-0001", next(_control_seq), utc(2025, 3, 1, 10, 0, 0), rep_index=1)
    before = count_events(engine)
    rejected_before = service.stats.rejected
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hipsense.dashboard.ingest.service"):
        for topic, payload in messages:
            pi.publish(topic, payload, qos=1).wait_for_publish(5)
        pi.publish(control.topic, control.payload, qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 10
        while count_events(engine) <= before or not service.drain(0):
            assert time.monotonic() < deadline, "the control result was not stored: ingest halted"
            time.sleep(0.02)
    rejected = service.stats.rejected - rejected_before
    rejected_logs = [r for r in caplog.records if "rejected message" in r.getMessage()]
    assert len(rejected_logs) == rejected
    assert all(len(r.getMessage()) < 2_000 for r in rejected_logs), "a log line quoted a huge payload"
    valid = 0
    for topic, payload in messages:
        try:
            parse_message(topic, payload)
            valid += 1
        except Exception:  # noqa: BLE001 - counting what the reader refuses
            pass
    assert count_events(engine) - before <= valid + 1
