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
