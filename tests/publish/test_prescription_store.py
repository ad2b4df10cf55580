from __future__ import annotations

import dataclasses
import json
import logging

from hipsense.publish.prescriptions import PrescriptionStore
from tests.protocol.samples import PATIENT, sample_prescription


def test_accepts_newer_versions_and_caches_them(tmp_path):
    store = PrescriptionStore(tmp_path / "rx" / "p.json", patient=PATIENT)
    assert store.current is None
    v1 = sample_prescription(1)
    assert store.offer(v1.topic, v1.payload).version == 1
    assert store.offer(v1.topic, v1.payload) is None  # retained re-delivery: no change, no complaint
    assert store.last_rejection is None
    v2 = sample_prescription(2)
    assert store.offer(v2.topic, v2.payload).version == 2
    assert PrescriptionStore(tmp_path / "rx" / "p.json", patient=PATIENT).current.version == 2


def test_rejections_keep_the_cached_prescription_and_say_why(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    store = PrescriptionStore(tmp_path / "p.json", patient=PATIENT)
    v2 = sample_prescription(2)
    store.offer(v2.topic, v2.payload)
    other = sample_prescription(5, patient="p-9999")
    same_version_changed = json.loads(v2.payload)
    same_version_changed["exercises"][0]["reps"] = 20
    for topic, payload, reason in [
        (v2.topic, b"", "payload is empty"),
        (v2.topic, b"\x00garbage", "not JSON"),
        (v2.topic, sample_prescription(1).payload, "version 1 is not newer"),
        (v2.topic, json.dumps(same_version_changed).encode(), "version 2 is not newer"),
        (other.topic, other.payload, "not this patient's prescription topic"),
        (v2.topic, other.payload, "differs from the topic"),
    ]:
        assert store.offer(topic, payload) is None
        assert reason in store.last_rejection, store.last_rejection
        assert store.current.version == 2
    assert "keeping cached version 2" in caplog.text
    assert json.loads((tmp_path / "p.json").read_bytes())["version"] == 2


def test_a_damaged_cache_file_is_ignored_not_trusted(tmp_path, caplog):
    path = tmp_path / "p.json"
    path.write_bytes(sample_prescription(3).payload[:-10])
    assert PrescriptionStore(path, patient=PATIENT).current is None
    assert "damaged cached prescription" in caplog.text


def test_no_temporary_files_are_left_behind(tmp_path):
    store = PrescriptionStore(tmp_path / "p.json", patient=PATIENT)
    for version in (1, 2, 3):
        envelope = sample_prescription(version)
        store.offer(envelope.topic, envelope.payload)
    assert [f.name for f in tmp_path.iterdir()] == ["p.json"]
    assert dataclasses.is_dataclass(store.current)
