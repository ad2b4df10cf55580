from __future__ import annotations

import pytest

from hipsense import protocol as p


@pytest.mark.parametrize("patient", ["p-7k2m9q4x", "pt0042", "a1b2", "x" * 62 + "_9"])
def test_pseudonymous_ids_are_accepted(patient):
    assert p.validate_patient_id(patient) == patient


@pytest.mark.parametrize(
    "patient",
    ["maria", "john.smith", "anna@clinic.org", "P-0042", "p/0042", "p+1", "p#1", "ab1", "", "x" * 64 + "1", "-p01"],
)
def test_names_logins_and_topic_breakers_are_refused(patient):
    with pytest.raises(p.ProtocolError):
        p.validate_patient_id(patient)


def test_new_patient_ids_are_valid_and_distinct():
    ids = {p.new_patient_id() for _ in range(200)}
    assert len(ids) == 200
    for patient in ids:
        p.validate_patient_id(patient)


@pytest.mark.parametrize("kind", list(p.MessageKind))
def test_topics_round_trip(kind):
    topic = p.build_topic(kind, "p-0042")
    assert p.parse_topic(topic) == (kind, "p-0042")


@pytest.mark.parametrize(
    ("topic", "match"),
    [
        ("hipsense/v2/p-0042/status", "prefix"),
        ("hipsense/v1/p-0042/event/unknown", "unknown message kind"),
        ("hipsense/v1/p-0042", "unknown message kind"),
        ("hipsense/v1/maria/status", "no digit"),
        ("hipsense/v1/p-0042/status/extra", "unknown message kind"),
    ],
)
def test_bad_topics_name_the_problem(topic, match):
    with pytest.raises(p.ProtocolError, match=match) as info:
        p.parse_topic(topic)
    assert info.value.topic == topic


def test_subscription_filters():
    assert p.subscription_filter() == "hipsense/v1/+/event/#"
    assert p.subscription_filter(p.MessageKind.STATUS) == "hipsense/v1/+/status"
    assert p.subscription_filter(p.MessageKind.PRESCRIPTION, "p-0042") == "hipsense/v1/p-0042/prescription"


def test_parsed_topics_are_remembered_and_bad_ones_refused_every_time():
    from hipsense.protocol import topics

    topic = p.build_topic(p.MessageKind.REP, "p-0099")
    assert p.parse_topic(topic) == p.parse_topic(topic) == (p.MessageKind.REP, "p-0099")
    assert topic in topics._PARSED
    for _ in range(2):
        with pytest.raises(p.ProtocolError, match="no digit"):
            p.parse_topic("hipsense/v1/maria/event/rep")
    assert "hipsense/v1/maria/event/rep" not in topics._PARSED

    class Sneaky(str):
        pass

    assert p.parse_topic(Sneaky(topic)) == (p.MessageKind.REP, "p-0099")  # parsed, not looked up
    full = dict.fromkeys(range(topics._TOPICS_MAX))
    saved = dict(topics._PARSED)
    try:
        topics._PARSED.clear()
        topics._PARSED.update(full)  # full: nothing more is remembered, everything still parsed
        other = p.build_topic(p.MessageKind.HOLD, "p-0100")
        assert p.parse_topic(other) == (p.MessageKind.HOLD, "p-0100") and other not in topics._PARSED
    finally:
        topics._PARSED.clear()
        topics._PARSED.update(saved)
