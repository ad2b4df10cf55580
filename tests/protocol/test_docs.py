"""docs/mqtt.md is a contract too: every example in it must pass parse_message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hipsense import protocol as p

DOC = Path(__file__).resolve().parents[2] / "docs" / "mqtt.md"
EXAMPLE = re.compile(r"Topic: `(?P<topic>[^`]+)`.*?```json\n(?P<payload>.*?)```", re.DOTALL)


def _examples() -> list[tuple[str, str]]:
    return [(m["topic"], m["payload"]) for m in EXAMPLE.finditer(DOC.read_text())]


def test_every_kind_has_an_example():
    kinds = {p.parse_topic(topic)[0] for topic, _ in _examples()}
    assert kinds == set(p.MessageKind)


@pytest.mark.parametrize(("topic", "payload"), _examples())
def test_doc_example_is_a_valid_message(topic, payload):
    p.parse_message(topic, payload.encode())


def test_documented_limits_match_the_code():
    text = DOC.read_text()
    assert f"deeper than {p.MAX_JSON_DEPTH} levels" in text
    assert f"larger than {p.MAX_PAYLOAD_BYTES // 1024} KiB" in text
    assert f"expires after {p.LIVE_EXPIRY_S} s" in text


def test_the_documented_flags_and_sides_are_the_vocabulary():
    text = " ".join(DOC.read_text().split())
    known = re.search(r"Known values are (.*?)\. Readers must tolerate", text)[1]
    assert set(re.findall(r"`(\w+)`", known)) == set(p.Flag) - {p.Flag.SKIPPED}  # skipped: its own paragraph
    assert "the flags `skipped` and `skip_<reason>`" in text
    assert "`side` is `left`, `right` or `both`" in text and list(p.Side) == ["left", "right", "both"]
