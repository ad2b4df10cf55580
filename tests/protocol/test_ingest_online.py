"""The dashboard's "ingest online" announcement: built and read against ingest_online.json."""

from __future__ import annotations

import json

import jsonschema
import pytest
import referencing

from hipsense import protocol as p

EPOCH = "01JQ7Z9A0B1C2D3E4F5G6H7J8K"


def _reference() -> jsonschema.Draft202012Validator:
    common = p.load_schema("common.json")
    registry = referencing.Registry().with_resource(common["$id"], referencing.Resource.from_contents(common))
    return jsonschema.Draft202012Validator(p.load_schema("ingest_online.json"), registry=registry)


def test_a_built_announcement_reads_back_with_a_new_epoch_each_time():
    first, second = p.build_ingest_online(), p.build_ingest_online(t=1.7e9)
    assert p.parse_ingest_online(first) != p.parse_ingest_online(second)
    assert p.parse_ingest_online(p.build_ingest_online(epoch=EPOCH)) == EPOCH
    assert p.INGEST_ONLINE_TOPIC == "hipsense/v1/_ingest/online"
    with pytest.raises(p.ProtocolError):
        p.build_ingest_online(epoch="not-a-ulid")


@pytest.mark.parametrize("doc", [
    {"schema_version": 1, "epoch": EPOCH},
    {"schema_version": 1, "epoch": EPOCH, "t": "2026-12-03T18:00:00.000Z"},
    {"schema_version": 2, "epoch": EPOCH},
    {"schema_version": 1},
    {"schema_version": 1, "epoch": EPOCH.lower()},
    {"schema_version": 1, "epoch": EPOCH, "patient": "p-0001"},
    {"schema_version": 1, "epoch": EPOCH, "t": "yesterday"},
    {"schema_version": 1, "epoch": 5},
    [EPOCH],
    "online",
])
def test_the_reader_agrees_with_the_schema_file(doc):
    try:
        p.parse_ingest_online(json.dumps(doc).encode())
        accepted = True
    except p.ProtocolError:
        accepted = False
    assert accepted == _reference().is_valid(doc)


@pytest.mark.parametrize("payload", [b"", b"\xff", b"{" * 600, b'{"schema_version": 1, "epoch": NaN}'])
def test_garbage_is_refused(payload):
    with pytest.raises(p.ProtocolError):
        p.parse_ingest_online(payload)


@pytest.mark.parametrize("payload", [
    b'{"schema_version": 1, "epoch": "01JQ7Z8K3M4N5P6Q7R8S9T0V1W", "epoch": "01JQ7Z9A0B1C2D3E4F5G6H7J8K"}',
    b'{"schema_version": 1, "schema_version": 1, "epoch": "01JQ7Z9A0B1C2D3E4F5G6H7J8K"}',
    b'{"schema_version": 1, "ep\\u006fch": "01JQ7Z8K3M4N5P6Q7R8S9T0V1W", "epoch": "01JQ7Z9A0B1C2D3E4F5G6H7J8K"}',
    b'\xef\xbb\xbf{"schema_version": 1, "epoch": "01JQ7Z9A0B1C2D3E4F5G6H7J8K"}',
])
def test_a_key_twice_is_refused_as_in_every_other_message(payload):
    """Read as strictly as every message (protocol.parsing.decode_text): plain json.loads took
    the last of two epochs, where another reader may take the first."""
    with pytest.raises(p.ProtocolError):
        p.parse_ingest_online(payload)
