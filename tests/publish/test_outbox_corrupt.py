"""A corrupt outbox file: a clear error, the file kept, what can be read back kept, and a
service that runs (before, ``hipsense run`` died at start with a traceback, for good)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hipsense.protocol import MessageKind
from hipsense.publish import Outbox, OutboxError, open_outbox
from tests.protocol.samples import PATIENT, every_kind

REPO = Path(__file__).resolve().parents[2]
NOW = 1_760_000_000.0


def _rep(seq: int):
    return dataclasses.replace(every_kind()[MessageKind.REP], seq=seq)


def _outbox_with_results(path: Path, n: int = 5) -> list[bytes]:
    with Outbox(path) as box:
        for _ in range(n):
            box.put_sequenced(PATIENT, _rep, state={"session": b'{"n":1}'})
        box.confirm_stored(PATIENT, 2)  # 1..2 stored at the dashboard, 3..n still held
        payloads = [row.payload for row in box.pending()]
        box._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return payloads


def _page_of(path: Path, name: str) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]


def _scribble(path: Path, page: int) -> None:
    """Garbage over one 4 KiB page (as a failing SD card leaves it)."""
    data = bytearray(path.read_bytes())
    start = (page - 1) * 4096
    data[start:start + 4096] = bytes((i * 7 + 13) % 256 for i in range(4096))
    path.write_bytes(bytes(data))


def _aside(path: Path) -> list[Path]:
    """The corrupt files kept (their -wal and -shm, if any, go with them)."""
    return sorted(p for p in path.parent.iterdir() if ".corrupt-" in p.name and not p.name.endswith(("-wal", "-shm")))


def test_a_file_that_is_no_database_is_kept_aside_and_numbering_goes_on_above_it(tmp_path, caplog):
    path = tmp_path / "outbox.sqlite"
    path.write_bytes(b"not a database, something else entirely " * 200)
    with caplog.at_level(logging.ERROR):
        box = open_outbox(path, clock=lambda: NOW)
    with box:
        assert box.check_integrity() == "ok"
        assert box.last_sequence(PATIENT) == int(NOW * 1000)
        assert box.first_unconfirmed_seq(PATIENT) == int(NOW * 1000) + 1  # the status lets the dashboard skip the gap
        assert box.put_sequenced(PATIENT, _rep)[1].seq == int(NOW * 1000) + 1
        assert box.confirm_stored(PATIENT, 40) == 0  # the dashboard's old mark deletes nothing
    (kept,) = _aside(path)
    assert kept.read_bytes().startswith(b"not a database")  # never deleted
    assert "was corrupt" in caplog.text and str(kept) in caplog.text and ".recover" in caplog.text
    with Outbox(path) as again:  # the floor is kept: a restart does not go back to 1
        assert again.put_sequenced(PATIENT, _rep)[1].seq == int(NOW * 1000) + 2


def test_a_damaged_index_loses_nothing_the_rows_are_read_back(tmp_path, caplog):
    path = tmp_path / "outbox.sqlite"
    held = _outbox_with_results(path)
    _scribble(path, _page_of(path, "outbox_by_importance"))
    with caplog.at_level(logging.ERROR):
        box = open_outbox(path, clock=lambda: NOW)
    with box:
        assert box.check_integrity() == "ok"
        assert [row.payload for row in box.pending()] == held  # the results still waiting: all there
        assert [row.seq for row in box.pending()] == [3, 4, 5]
        assert box.put_sequenced(PATIENT, _rep)[1].seq == 6  # the sequence goes on, no gap
        assert box.read_state("session") == b'{"n":1}'  # and the session continues
        assert box.confirm_stored(PATIENT, 6) == 4
    assert len(_aside(path)) == 1 and "nothing is lost" in caplog.text


def test_a_damaged_table_is_kept_aside_and_nothing_half_read_is_copied(tmp_path, caplog):
    path = tmp_path / "outbox.sqlite"
    _outbox_with_results(path)
    _scribble(path, _page_of(path, "outbox"))
    with caplog.at_level(logging.ERROR):
        box = open_outbox(path, clock=lambda: NOW)
    with box:
        assert box.pending() == [] and box.read_state("session") is None
        assert box.put_sequenced(PATIENT, _rep)[1].seq == int(NOW * 1000) + 1
    assert len(_aside(path)) == 1 and "could not be read back" in caplog.text


def test_other_failures_are_errors_and_move_nothing(tmp_path):
    path = tmp_path / "outbox.sqlite"
    path.mkdir()  # e.g. not a file at all
    with pytest.raises(OutboxError, match="cannot open outbox"):
        open_outbox(path)
    assert path.is_dir() and _aside(path) == []


def test_the_service_runs_with_a_corrupt_outbox_and_says_so(tmp_path):
    pytest.importorskip("bumble")
    state = tmp_path / "state"
    state.mkdir()
    (state / "outbox.sqlite").write_bytes(b"\x00garbage" * 4096)
    config = tmp_path / "hipsense.toml"
    config.write_text('[mqtt]\nhost = "127.0.0.1"\nport = 1\npatient_id = "p-0001"\n'
                      '[sensor]\nbackend = "emulator"\n'
                      f'[service]\nstate_dir = "{state}"\nvoice = "off"\nlog_format = "text"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HIPSENSE_", "NOTIFY_SOCKET", "WATCHDOG"))}
    log = tmp_path / "service.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "hipsense", "run", "--config", str(config)], env=env,
                                   stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while " ready" not in log.read_text() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert process.poll() is None, log.read_text()
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log.read_text()
    assert "was corrupt" in text and "Traceback" not in text, text
    assert len(_aside(state / "outbox.sqlite")) == 1


def test_an_outbox_that_cannot_be_opened_is_a_one_line_error_not_a_traceback(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "outbox.sqlite").mkdir()
    config = tmp_path / "hipsense.toml"
    config.write_text('[mqtt]\nhost = "127.0.0.1"\nport = 1\npatient_id = "p-0001"\n'
                      '[sensor]\nbackend = "emulator"\n'
                      f'[service]\nstate_dir = "{state}"\nvoice = "off"\nlog_format = "text"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HIPSENSE_", "NOTIFY_SOCKET", "WATCHDOG"))}
    run = subprocess.run([sys.executable, "-m", "hipsense", "run", "--config", str(config)], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "Error: cannot run: cannot open outbox" in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_the_sender_finding_a_damaged_file_sets_it_aside_and_goes_on(tmp_path, caplog):
    """The sender's pass is often the first to read a page the card damaged."""
    import threading

    from hipsense.publish.sender import OutboxSender

    path = tmp_path / "outbox.sqlite"
    held = _outbox_with_results(path)
    box = Outbox(path)
    sent: list[int] = []
    ready = threading.Event()

    class Transport:
        def is_connected(self) -> bool:
            return ready.is_set()

        def send_row(self, row, now):
            sent.append(row.seq)
            return len(sent)

    with box._lock:  # the card returns garbage for the page of the index the sender reads
        box._db.close()
        _scribble(path, _page_of(path, "outbox_undelivered"))
        box._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    sender = OutboxSender(box, Transport(), poll_s=0.05)
    with caplog.at_level(logging.ERROR):
        sender.start()
        ready.set()
        deadline = time.monotonic() + 10
        while len(sent) < len(held) and time.monotonic() < deadline:
            time.sleep(0.02)
        sender.stop()
    assert sorted(set(sent)) == [3, 4, 5]  # what was held, read back and sent
    assert len(_aside(path)) == 1 and "nothing is lost" in caplog.text
    assert box.check_integrity() == "ok"
    box.close()


# -- a recovery that fails half-way (the card that damaged the file is often full or failing) --


def _disk_full(*_args, **_kwargs):
    exc = sqlite3.OperationalError("database or disk is full")
    exc.sqlite_errorcode, exc.sqlite_errorname = 13, "SQLITE_FULL"
    raise exc


def _damaged_index(path: Path) -> None:
    _scribble(path, _page_of(path, "outbox_by_importance"))


def test_a_copy_that_fails_while_running_never_reuses_a_number(tmp_path, monkeypatch):
    """The insert of what the old file held fails (SQLITE_FULL): the running outbox, and the
    restarted one, go on above every number the old file used, never from 1 again."""
    path = tmp_path / "outbox.sqlite"
    _outbox_with_results(path)  # seq 1..5 handed out, the dashboard holds 1..2
    box = Outbox(path)
    with box._lock:  # the card returns garbage for a page, found while running
        box._db.close()
        _damaged_index(path)
        box._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    with monkeypatch.context() as full:
        full.setattr(Outbox, "_write_state", _disk_full)  # the copy's insert, inside _adopt
        with pytest.raises(OutboxError):
            box.recover()
    used = [box.put_sequenced(PATIENT, _rep)[1].seq for _ in range(2)]  # the disk has room again
    assert min(used) > 5
    box.close()
    with open_outbox(path) as again:  # a restart
        assert again.put_sequenced(PATIENT, _rep)[1].seq == max(used) + 1
    assert len(_aside(path)) == 1


def test_a_copy_that_fails_at_start_never_reuses_a_number(tmp_path, monkeypatch, caplog):
    path = tmp_path / "outbox.sqlite"
    _outbox_with_results(path)
    _damaged_index(path)
    box = None
    with monkeypatch.context() as full, caplog.at_level(logging.ERROR):
        full.setattr(Outbox, "_write_state", _disk_full)
        with contextlib.suppress(OutboxError):  # a service stopped here is restarted by systemd
            box = open_outbox(path, clock=lambda: NOW)
    if box is not None:
        assert box.put_sequenced(PATIENT, _rep)[1].seq == int(NOW * 1000) + 1
        assert "could not be copied" in caplog.text and ".recover" in caplog.text
        box.close()
    with open_outbox(path, clock=lambda: NOW) as again:  # (the next) start
        assert again.put_sequenced(PATIENT, _rep)[1].seq > 5
    assert len(_aside(path)) == 1


def _recovery_whose_new_file_cannot_be_opened(path: Path, monkeypatch) -> Outbox:
    """A running outbox whose file is found damaged, set aside, and whose new file cannot be
    opened (_connect fails): calls then say "corrupt", so the publisher and the sender call
    recover() again, rather than failing until a restart."""
    _outbox_with_results(path)  # seq 1..5, the dashboard holds 1..2
    box = Outbox(path)
    with box._lock:
        box._db.close()
        _damaged_index(path)
        box._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def cannot_open(self):
        raise OutboxError("cannot open outbox: disk I/O error", path=str(self.path))

    with monkeypatch.context() as failing:
        failing.setattr(Outbox, "_connect", cannot_open)
        with pytest.raises(OutboxError):
            box.recover()
        with pytest.raises(OutboxError) as raised:
            box.put_sequenced(PATIENT, _rep)
    assert raised.value.corrupt
    return box


def test_a_new_file_that_could_not_be_opened_is_opened_by_the_next_recovery(tmp_path, monkeypatch):
    box = _recovery_whose_new_file_cannot_be_opened(tmp_path / "outbox.sqlite", monkeypatch)
    assert box.recover() is True
    assert [row.seq for row in box.pending()] == [3, 4, 5]  # read back after all
    assert box.put_sequenced(PATIENT, _rep)[1].seq == 6
    box.close()


def test_a_restart_after_a_recovery_cut_short_numbers_above_the_file_set_aside(tmp_path, monkeypatch):
    path = tmp_path / "outbox.sqlite"
    _recovery_whose_new_file_cannot_be_opened(path, monkeypatch).close()
    with open_outbox(path) as restarted:  # a new, empty file beside the one set aside
        assert restarted.last_sequence(PATIENT) > 5
        assert restarted.put_sequenced(PATIENT, _rep)[1].seq > 5
    with open_outbox(path) as again:  # and the floor is kept
        assert again.last_sequence(PATIENT) > 5
    assert len(_aside(path)) == 1


def test_a_floor_survives_a_second_corruption_that_is_read_back(tmp_path):
    """Corrupt and unreadable (numbering from Unix ms), then corrupt again with its tables
    readable before any result was stored under the floor: the floor is read back too, so the
    numbering does not start from 1 again."""
    path = tmp_path / "outbox.sqlite"
    path.write_bytes(b"not a database, something else entirely " * 200)
    with open_outbox(path, clock=lambda: NOW) as first:
        floor = first.last_sequence(PATIENT)
        assert floor == int(NOW * 1000)
        first._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    _damaged_index(path)
    with open_outbox(path, clock=lambda: NOW + 3600) as second:
        assert second.last_sequence(PATIENT) == floor
        assert second.put_sequenced(PATIENT, _rep)[1].seq == floor + 1
    with open_outbox(path, clock=lambda: NOW + 7200) as restarted:
        assert restarted.put_sequenced(PATIENT, _rep)[1].seq == floor + 2
    assert len(_aside(path)) == 2


def test_a_corrupt_file_that_cannot_be_set_aside_leaves_the_outbox_usable(tmp_path, monkeypatch):
    """Renaming the file fails (a failing card remounted read-only): the outbox goes on with
    the damaged file if it can be reopened, else every call says "corrupt" (before, the
    connection stayed closed and every call failed as not corrupt until a restart); a later
    recovery sets it aside."""
    import hipsense.publish.outbox as outbox_module

    path = tmp_path / "outbox.sqlite"
    _outbox_with_results(path)
    box = Outbox(path, clock=lambda: NOW)
    with box._lock:
        box._db.close()
        _damaged_index(path)
        box._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def read_only(*_args):
        raise OSError(30, "Read-only file system")

    with monkeypatch.context() as failing:
        failing.setattr(outbox_module, "_set_aside", read_only)
        with pytest.raises(OutboxError, match="cannot set the corrupt outbox"):
            box.recover()
    with pytest.raises(OutboxError) as raised:  # (its damaged index cannot even be reopened)
        box.put_sequenced(PATIENT, _rep)
    assert raised.value.corrupt  # so the publisher and the sender call recover() again
    assert box.recover() is True  # the card is writable again
    assert [row.seq for row in box.pending()] == [3, 4, 5]
    assert box.put_sequenced(PATIENT, _rep)[1].seq == 6
    box.close()
    assert len(_aside(path)) == 1
