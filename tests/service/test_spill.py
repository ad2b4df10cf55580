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


def _line(n):
    return n, "rep", "hipsense/v1/p-0001/event/rep", b'{"id":"%d","seq":1}' % n, None


def test_a_failed_append_leaves_no_part_of_its_line_and_the_retry_is_read_back(tmp_path, monkeypatch):
    """A full tmpfs takes 20 bytes of the line, then ENOSPC: append says False, and the result is
    appended again later. The 20 bytes used to stay, the retry was glued onto them and the merged
    line skipped as torn: result 2 gone, with no seq and so no gap to show (reviewer's torn.py)."""
    import errno
    import os

    spill = SpillFile(tmp_path / "held.jsonl")
    assert spill.append(*_line(1))
    size = spill.path.stat().st_size
    real = os.write
    calls = []

    def room_for_20_bytes(fd, data):
        calls.append(1)
        if len(calls) == 1:
            return real(fd, bytes(data[:20]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", room_for_20_bytes)
    assert not spill.append(*_line(2))
    monkeypatch.setattr(os, "write", real)
    assert spill.path.stat().st_size == size  # nothing of it left
    assert spill.append(*_line(2)) and spill.append(*_line(3))
    assert [e.n for e in spill.load()] == [1, 2, 3]


def test_a_torn_end_left_by_a_kill_is_cut_off_before_the_next_append(tmp_path):
    spill = SpillFile(tmp_path / "held.jsonl")
    assert spill.append(*_line(1))
    other = SpillFile(tmp_path / "other.jsonl")
    assert other.append(*_line(2))
    with open(spill.path, "ab") as f:
        f.write(other.path.read_bytes()[:-1])  # killed mid-write: all of line 2 but its newline
    assert [e.n for e in spill.load()] == [1]  # a line counts only with its newline (append never said yes)
    assert spill.append(*_line(2))
    assert [e.n for e in spill.load()] == [1, 2]
    assert spill.path.read_bytes().count(b"\n") == 2
