"""The live-message stage trace (service/livetrace.py): off by default, one line per message
whatever the order of paho's two callbacks, other messages' acknowledgements ignored."""

from __future__ import annotations

import json

from hipsense.service.livetrace import ENVIRONMENT_VARIABLE, LiveTrace, live_trace_from_environment


def _payload(t: str) -> bytes:
    return json.dumps({"t": t, "thigh_angle_deg": 1.0}).encode()


def test_off_unless_the_environment_names_a_file(tmp_path):
    assert live_trace_from_environment(lambda: (0.0, 0.0), {}) is None
    trace = live_trace_from_environment(lambda: (0.0, 0.0), {ENVIRONMENT_VARIABLE: str(tmp_path / "t.tsv")})
    assert isinstance(trace, LiveTrace)
    trace.close()


def test_one_line_per_message_in_either_callback_order(tmp_path):
    path = tmp_path / "trace.tsv"
    stamps = iter([(1.0, 2.0), (11.0, 12.0)])
    trace = LiveTrace(path, lambda: next(stamps))
    trace.published(_payload("2026-01-01T00:00:00.100Z"), 7, 3.0, 4.0)  # written after publish() returned
    trace.written(7)
    trace.written(8)  # written before publish() returned
    trace.published(_payload("2026-01-01T00:00:00.200Z"), 8, 13.0, 14.0)
    trace.written(9)  # a QoS 1 result's acknowledgement: not a live message, no line
    trace.close()
    lines = [line.split("\t") for line in path.read_text().splitlines()]
    assert [line[0] for line in lines] == ["2026-01-01T00:00:00.100Z", "2026-01-01T00:00:00.200Z"]
    assert [[float(x) for x in line[1:5]] for line in lines] == [[1.0, 2.0, 3.0, 4.0], [11.0, 12.0, 13.0, 14.0]]
    assert all(len(line) == 6 and float(line[5]) > 0 for line in lines)
