"""End to end: ``hipsense run`` dies (``os._exit``) right after committing a result to its outbox,
systemd starts it again, and the real dashboard ingest (SQLite, then PostgreSQL) behind a real
Mosquitto must end up with every result once: no (session, set, rep) twice, no seq missing,
and the Pi's outbox empty (the dashboard acknowledged everything end to end).

The process dies after the commit of seq 11, set 1's close: before results and session state
were one transaction, the restarted service numbered set 1 again (and its reps), and the
dashboard stored both.
"""

from __future__ import annotations

import collections
import json
import sqlite3
import subprocess
import sys

import pytest
from sqlalchemy import select

from hipsense.dashboard.db.tables import events
from hipsense.dashboard.event_store import EventStore
from hipsense.dashboard.ingest import IngestService
from tests.dashboard.conftest import engine, mqtt_settings, postgres_url  # noqa: F401 - fixtures
from tests.service.conftest import PATIENT, REPO, ServiceProcess, prescription, wait_until

pytestmark = pytest.mark.slow

DIE_AFTER_SEQ = 11

_DIE_AFTER = """
import os, sys
from hipsense.publish import outbox
put = outbox.Outbox.put_sequenced
def put_then_die(self, stream, build, **kw):
    out = put(self, stream, build, **kw)
    if out[1].seq == {seq}:
        os._exit(9)  # no finally, no atexit: a power cut right after the commit
    return out
outbox.Outbox.put_sequenced = put_then_die
from hipsense.service.service import run_service
sys.exit(run_service(sys.argv[1]))
"""


def _rows(engine) -> list[dict]:
    with engine.connect() as connection:
        return [json.loads(payload) | {"kind": kind} for kind, payload in connection.execute(
            select(events.c.kind, events.c.payload).where(events.c.patient == PATIENT))]


def test_a_power_cut_right_after_a_commit_stores_every_result_once(engine, broker, service_factory):  # noqa: F811
    ingest = IngestService(EventStore(engine), mqtt_settings(broker, client_id="dashboard-crash", clean_start=False,
                                                             session_expiry_s=600))
    service: ServiceProcess = service_factory(broker)
    with ingest:
        assert ingest.wait_connected(10)
        ingest.client.publish(prescription())
        with open(service.log_path, "a") as log:
            first = subprocess.Popen([sys.executable, "-c", _DIE_AFTER.format(seq=DIE_AFTER_SEQ), str(service.config)],
                                     stdout=log, stderr=log, cwd=REPO)
        assert first.wait(120) == 9  # it died where it was meant to
        outbox = service.state_dir / "outbox.sqlite"
        with sqlite3.connect(outbox) as db:
            assert db.execute("SELECT last FROM sequences").fetchone()[0] == DIE_AFTER_SEQ

        service.start()  # systemd's Restart=on-failure
        wait_until(lambda: any(r["kind"] == "session" for r in _rows(engine)), 120, "the session summary")

        def left() -> int:
            with sqlite3.connect(outbox) as db:
                return db.execute("SELECT COUNT(*) FROM outbox WHERE seq IS NOT NULL").fetchone()[0]

        wait_until(lambda: left() == 0, 60, "the dashboard's acknowledgement of everything")
        assert service.terminate() == 0
        assert ingest.drain(10)

    rows = _rows(engine)
    with sqlite3.connect(outbox) as db:
        produced = db.execute("SELECT last FROM sequences").fetchone()[0]
    assert sorted(r["seq"] for r in rows) == list(range(1, produced + 1))  # each once, none missing
    # The emulated sensor goes on replaying after the prescription is done: a rep made before the
    # test stopped the service starts a second session (the product's right answer; on a loaded
    # machine it happened 1 run in 3). Everything up to the first session's summary is one session.
    first_session = min(rows, key=lambda r: r["seq"])["session_id"]
    (end,) = [r["seq"] for r in rows if r["kind"] == "session" and r["session_id"] == first_session]
    assert all(r["seq"] > end for r in rows if r["session_id"] != first_session)
    rows = [r for r in rows if r["session_id"] == first_session]
    reps = [r for r in rows if r["kind"] == "rep"]
    sets = [r for r in rows if r["kind"] == "set"]
    assert len({r["session_id"] for r in rows}) == 1  # the restart continued the session
    twice = [k for k, n in collections.Counter((r["set_index"], r["rep_index"]) for r in reps).items() if n > 1]
    assert twice == []
    assert [s["set_index"] for s in sets] == sorted({s["set_index"] for s in sets})  # each set once
    per_set = collections.Counter(r["set_index"] for r in reps)
    assert {s["set_index"]: s["reps"] for s in sets} == dict(per_set)  # each set counts the reps it sent
    (summary,) = [r for r in rows if r["kind"] == "session"]
    assert summary["exercises"][0]["reps"] == len(reps)
    assert service.logged("resumed session")
