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


def test_a_file_someone_else_could_have_put_there_is_neither_read_nor_written(tmp_path, caplog):
    """The /dev/shm fallback is a directory every local user may create names in, and the name is
    predictable: a symlink there, a file others may write, or another user's file is refused (it
    was imported as results, or was given ours)."""
    import os

    target = tmp_path / "elsewhere.jsonl"
    real = SpillFile(target)
    assert real.append(*_line(1))
    before = target.read_bytes()
    link = SpillFile(tmp_path / "link.jsonl")
    os.symlink(target, link.path)
    assert not link.append(*_line(2)) and link.load() == []  # O_NOFOLLOW
    assert target.read_bytes() == before

    loose = SpillFile(tmp_path / "loose.jsonl")
    assert loose.append(*_line(1))
    os.chmod(loose.path, 0o666)
    assert loose.load() == [] and not loose.append(*_line(2))
    assert "not a private file of this user" in caplog.text
    if os.getuid() == 0:  # another user's file, private to them
        theirs = SpillFile(tmp_path / "theirs.jsonl")
        assert theirs.append(*_line(1))
        os.chown(theirs.path, 65534, 65534)
        assert theirs.load() == [] and not theirs.append(*_line(2))


def test_only_valid_results_of_this_patient_are_imported(tmp_path, caplog):
    """A line that is not a valid result of this patient (another's, a status, a payload the
    schema refuses) is not stored from the spill file (logged)."""
    import json

    from hipsense.protocol import build_rep_event, build_status
    from hipsense.publish import Outbox
    from hipsense.service.results import ResultPublisher

    def rep(patient):
        return build_rep_event(patient, seq=1, session_id="01JQ7Z8K3M4N5P6Q7R8S9T0V1W", exercise="clam_shells",
                               side="left", set_index=1, rep_index=1, t_start=1.7e9, t_end=1.7e9 + 2, rom_deg=30.0,
                               hold_s=1.0, peak_speed_dps=50.0)

    spill = SpillFile(tmp_path / "run" / "held.jsonl")
    mine, theirs, status = rep("p-0001"), rep("p-0002"), build_status("p-0001", online=True)
    bad = json.dumps({**json.loads(mine.payload), "rom_deg": -1e9, "id": "01JQ7Z8K3M4N5P6Q7R8S9T0V1X"}).encode()
    assert spill.append(1, "rep", mine.topic, mine.payload, None)
    assert spill.append(2, "rep", theirs.topic, theirs.payload, None)
    assert spill.append(3, "rep", status.topic, status.payload, None)
    assert spill.append(4, "rep", mine.topic, bad, None)
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        publisher = ResultPublisher("p-0001", outbox, spill=spill)
        publisher.retry_held()
        assert [json.loads(r.payload)["id"] for r in outbox.pending()] == [mine.message_id]
    assert caplog.text.count("cannot be read back") == 3


def test_held_results_back_from_the_spill_file_fit_the_memory_budget(tmp_path):
    """The unit runs under MemoryMax=200M (RSS ~70 MB), and the tmpfs pages of the spill file
    count too. 2,000 held results imported at a restart (with their session state): under 2.5 KB
    each in Python, at the end and at the peak. Before: ~4 KB each (a parsed document kept per
    result, and the whole file read and split at once): 40 MB for MAX_HELD."""
    import json
    import tracemalloc

    from hipsense.protocol import build_rep_event
    from hipsense.publish import Outbox, OutboxError
    from hipsense.service.results import ResultPublisher

    spill = SpillFile(tmp_path / "held.jsonl")
    state = {"session": b"\x00" + json.dumps({"session_id": "01JQ7Z8K3M4N5P6Q7R8S9T0V1W", "tallies": [
        {"exercise": "clam_shells", "side": "left", "sets": 3, "reps": 30}] * 6}).encode()}
    n = 2000
    for i in range(1, n + 1):
        env = build_rep_event("p-0001", seq=1, session_id="01JQ7Z8K3M4N5P6Q7R8S9T0V1W", exercise="clam_shells",
                              side="left", set_index=1, rep_index=i % 100 + 1, t_start=1.7e9 + i, t_end=1.7e9 + i + 2,
                              rom_deg=30.5, hold_s=1.2, peak_speed_dps=55.0, duration_s=2.0, flags=("clock_unsynced",))
        assert spill.append(i, "rep", env.topic, env.payload, state)
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        def full(*_args, **_kwargs):
            raise OutboxError("database or disk is full")

        outbox.put_sequenced = full  # still full at the restart: all of them stay held
        tracemalloc.start()
        try:
            publisher = ResultPublisher("p-0001", outbox, spill=SpillFile(spill.path))
            publisher.retry_held()
            held, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert publisher.held == n
    assert held < 2500 * n and peak < 2500 * n, (held / n, peak / n)
