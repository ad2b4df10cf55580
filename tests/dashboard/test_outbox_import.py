"""Results only in a Pi's outbox file set aside as corrupt reach the database
(``hipsense dashboard import-outbox``), once each, and only the patient's own.

Before: the service kept the file (``outbox.sqlite.corrupt-<time>``) and numbered on above it,
its status moved the dashboard's acknowledgement past the old numbers, and nothing could ever
deliver what the file held: the Pi cannot (its outbox forgets every result below the
acknowledgement), and there was no tool (README: "there is no tool yet to send it on").
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from hipsense import protocol as p
from hipsense.cli import main as cli
from hipsense.dashboard.db.tables import events
from hipsense.dashboard.event_store import EventStore
from hipsense.publish import Outbox, open_outbox
from tests.dashboard.events import parsed, rep

NOW = dt.datetime.now(dt.timezone.utc)


def _scribble(path: Path, page: int) -> None:
    data = bytearray(path.read_bytes())
    start = (page - 1) * 4096
    data[start:start + 4096] = bytes((i * 7 + 13) % 256 for i in range(4096))
    path.write_bytes(bytes(data))


def _pages(path: Path, table: str, kind: str = "leaf") -> list[int]:
    with sqlite3.connect(path) as db:
        return [page for (page,) in db.execute(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = ? ORDER BY pageno", (table, kind))]


def _pi_outbox_set_aside(tmp_path: Path, n: int, damage: str) -> Path:
    """A Pi's outbox holding results 1..n (1..5 already stored at the dashboard), then damaged
    so that the Pi cannot read it back: it sets it aside and numbers on above it."""
    path = tmp_path / "outbox.sqlite"
    with Outbox(path) as box:
        for _ in range(n):
            box.put_sequenced("p-0001", lambda seq: rep("p-0001", seq, NOW - dt.timedelta(hours=1, seconds=-seq)),
                              state={"session": b"{}"})
        box.confirm_stored("p-0001", 5)
        # A row a hostile Pi slipped in for another patient: never imported as theirs.
        box.put_envelope(rep("p-0002", 1, NOW - dt.timedelta(hours=1)))
        box._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if damage == "sequences":  # the outbox table is sound, the file is not: read as it is
        _scribble(path, _pages(path, "sequences")[0])
    else:  # a leaf page of the outbox table itself: the rest is read around it
        leaves = _pages(path, "outbox")
        _scribble(path, leaves[len(leaves) // 2])
    new = open_outbox(path)
    assert new.pending() == []  # nothing could be read back into the new outbox
    new.close()
    (aside,) = [f for f in tmp_path.iterdir() if ".corrupt-" in f.name and not f.name.endswith(("-wal", "-shm"))]
    return aside


def _stored(engine) -> list[int]:
    with engine.connect() as connection:
        return sorted(connection.execute(select(events.c.seq).where(events.c.patient == "p-0001")).scalars())


def _import(engine, path: Path):
    url = engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(cli, ["dashboard", "import-outbox", str(path), "--patient", "p-0001", "--db", url])


def test_results_only_in_a_set_aside_outbox_are_stored_once(engine, tmp_path):
    store = EventStore(engine)
    store.write_batch([parsed(rep("p-0001", seq, NOW - dt.timedelta(hours=1, seconds=-seq))) for seq in range(1, 6)])
    aside = _pi_outbox_set_aside(tmp_path, 400, damage="sequences")
    before = aside.read_bytes()
    result = _import(engine, aside)
    assert result.exit_code == 0, result.output
    assert _stored(engine) == list(range(1, 401))  # 6..400 were only in the file
    assert "395 result(s) stored" in result.output and "1 refused" in result.output  # p-0002's row
    with engine.connect() as connection:
        assert connection.execute(select(events.c.seq).where(events.c.patient == "p-0002")).all() == []
    again = _import(engine, aside)  # twice: nothing new
    assert again.exit_code == 0 and "0 result(s) stored, 395 already stored" in again.output
    assert aside.read_bytes() == before  # the evidence is untouched
    assert EventStore(engine).stored_seq("p-0001") == 400


def test_a_damaged_outbox_table_is_read_around_the_damage(engine, tmp_path):
    aside = _pi_outbox_set_aside(tmp_path, 400, damage="outbox")
    result = _import(engine, aside)
    assert result.exit_code == 0, result.output
    assert "read around the damage" in result.output
    stored = _stored(engine)
    assert 300 < len(stored) < 400 and len(set(stored)) == len(stored)  # all but one page's rows, once
