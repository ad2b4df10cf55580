"""The spill file of held results (hipsense/service/spill.py): torn lines, the cap, the path."""

from __future__ import annotations

from hipsense.service.spill import SpillFile, default_spill_path


def test_lines_read_back_in_order_and_a_torn_last_line_is_skipped(tmp_path):
    spill = SpillFile(tmp_path / "run" / "held.jsonl")
    assert spill.load() == []
    assert spill.append(1, "rep", "hipsense/v1/p-0001/event/rep", b'{"seq":1}', {"session": b"\x00{}", "x": None})
    assert spill.append(2, "set", "hipsense/v1/p-0001/event/set", b'{"seq":1}', None)
    with open(spill.path, "ab") as f:
        f.write(b'{"n":3,"what":"rep","top')  # killed mid-write
    entries = spill.load()
    assert [(e.n, e.what) for e in entries] == [(1, "rep"), (2, "set")]
    assert entries[0].state == {"session": b"\x00{}", "x": None} and entries[1].state is None
    assert entries[0].payload == b'{"seq":1}'
    spill.clear()
    assert not spill.path.exists() and spill.load() == []


def test_past_its_cap_nothing_more_is_written(tmp_path, caplog):
    spill = SpillFile(tmp_path / "held.jsonl", max_bytes=300)
    written = [spill.append(n, "rep", "hipsense/v1/p-0001/event/rep", b'{"seq":1}' + b" " * 40, None)
               for n in range(1, 10)]
    assert written[0] and not all(written) and spill.path.stat().st_size <= 300
    assert [e.n for e in spill.load()] == list(range(1, written.index(False) + 1))
    assert "at its cap" in caplog.text


def test_the_path_is_on_the_runtime_directory_and_names_the_outbox(tmp_path):
    a = default_spill_path("p-0001", tmp_path / "a" / "outbox.sqlite", {"RUNTIME_DIRECTORY": "/run/hipsense"})
    b = default_spill_path("p-0001", tmp_path / "b" / "outbox.sqlite", {"RUNTIME_DIRECTORY": "/run/hipsense"})
    assert a.parent.as_posix() == "/run/hipsense" and a.name.startswith("held-results-p-0001-") and a != b
    xdg = default_spill_path("p-0001", tmp_path / "a" / "outbox.sqlite", {"XDG_RUNTIME_DIR": "/run/user/1000"})
    assert xdg.parent.as_posix() == "/run/user/1000"
