"""``hipsense run`` on a card that fills up, killed while results wait outside its outbox, then
restarted with room: every result arrives once, and the dashboard side heard of the full card.

A REAL full file system: the Pi's state directory is a small tmpfs this test mounts (so it needs
root; skipped otherwise) and fills with a file until ENOSPC (tests/card.py). Twice: without a
card reserve (``card_reserve_mib = 0``: the path results take once the reserve is used up too),
and with one (2 MiB on an 8 MB card): the results counted on the full card are then committed
on it, none spilled, and the kill is a power cut (the RAM-backed spill directory wiped too).
The spill directory
(``RUNTIME_DIRECTORY``, /run/hipsense under systemd) is another directory, as on the Pi. The
dashboard's ingest is stopped while the card fills, so the outbox must grow (nothing is
acknowledged) and writing fails. Shipped broker config, the real ingest on SQLite and on PostgreSQL.

Before the spill file, the same run lost every result held in memory at the kill (31 in one
run) without a trace: they had no ``seq`` yet, so no gap showed (37 produced, 37 stored).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys

import pytest

from hipsense import protocol as p
from tests.card import fill, small_card
from tests.dashboard.conftest import engine, postgres_url  # noqa: F401 - fixtures
from tests.deploy.probe import Probe
from tests.deploy.test_delivery import REPO, Dashboard, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(params=[0, 2], ids=["no-reserve", "reserve"])
def reserve_mib(request):
    return request.param


@pytest.fixture
def card(tmp_path, reserve_mib):
    """A tmpfs standing in for the Pi's SD card: 3 MB, 8 MB with room for the reserve twice over."""
    with small_card(tmp_path / "card", "8m" if reserve_mib else "3m") as mountpoint:
        yield mountpoint


def test_a_service_killed_on_a_full_card_loses_nothing(fresh_deployment, tmp_path, engine, card,  # noqa: F811
                                                       reserve_mib):
    pytest.importorskip("bumble")
    broker = fresh_deployment.broker
    patient, password = fresh_deployment.a
    dashboard = Dashboard(fresh_deployment, tmp_path / "unused.sqlite3", reconnect_min_s=1)
    dashboard.engine = engine  # SQLite, then PostgreSQL
    dashboard.start()
    state_dir = card / "state"
    runtime = tmp_path / "run-hipsense"  # /run/hipsense: RAM, but not the card
    config = tmp_path / "hipsense.toml"
    config.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\npatient_id = "{patient}"\n'
        f'username = "{patient}"\npassword = "{password}"\ntls_ca_file = "{broker.pki.ca_cert}"\n'
        f'[sensor]\nbackend = "emulator"\nside = "right"\n'
        f'[service]\nstate_dir = "{state_dir}"\nvoice = "off"\ncard_reserve_mib = {reserve_mib}\n'
        f'[session]\nidle_end_s = 60\n[emulator]\nspeed = 10.0\n'
    )
    dashboard.ingest.client.publish(p.build_prescription(
        patient, version=1, updated_at=dt.datetime.now(dt.timezone.utc),
        exercises=[p.PrescribedExercise(order=1, exercise="straight_leg_raise", sets=3, reps=10, hold_s=5,
                                        sides=("right",))]))
    statuses: list[dict] = []
    watcher = Probe(broker.port, ca=broker.pki.ca_cert, username="dashboard-2",
                    password=fresh_deployment.dashboard_password, client_id=f"w-{secrets.token_hex(3)}")
    watcher.client.on_message = lambda c, u, m: statuses.append(json.loads(m.payload))
    assert watcher.connect() == 0
    watcher.subscribe(p.build_topic(p.MessageKind.STATUS, patient))
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"} | {"RUNTIME_DIRECTORY": str(runtime)}
    log_path = tmp_path / "service.log"

    def start():
        with open(log_path, "a") as log:
            return subprocess.Popen([sys.executable, "-m", "hipsense", "run", "--config", str(config)],
                                    stdout=log, stderr=log, env=env, cwd=REPO)

    def spilled_lines() -> list[dict]:  # the results in the spill files (not the lines that mark some stored)
        return [doc for path in runtime.glob("held-results-*.jsonl") for line in path.read_bytes().splitlines()
                if line and "payload" in (doc := json.loads(line))]

    def spilled() -> int:
        return len(spilled_lines())

    def produced() -> int:
        db = sqlite3.connect(f"file:{state_dir / 'outbox.sqlite'}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT last FROM sequences WHERE stream = ?", (patient,)).fetchone()
        finally:
            db.close()
        return row[0] if row else 0

    service = start()
    try:
        wait_until(lambda: dashboard.count(patient) >= 3, 60, "the first results")
        dashboard.stop()  # nothing is acknowledged now: the outbox has to grow ...
        filler = fill(card)  # ... on a card with no room left
        at_fill = produced()
        if reserve_mib:
            wait_until(lambda: produced() >= at_fill + 5, 120, "results committed on the full card (its reserve)")
            wait_until(lambda: any(s.get("card_reserve") == "in_use" for s in statuses), 30,
                       "a status telling the reserve is in use")
        else:
            wait_until(lambda: spilled() >= 3, 120, "results held outside the outbox (and spilled)")
            wait_until(lambda: any(s.get("unsaved_results", 0) >= 1 for s in statuses), 30,
                       "a status telling the full card")
        service.send_signal(signal.SIGKILL)
        service.wait(10)
        held_at_kill, on_card_at_kill = spilled(), produced()
        spilled_ids = {json.loads(doc["payload"])["id"] for doc in spilled_lines()}
        if reserve_mib:
            shutil.rmtree(runtime, ignore_errors=True)  # a power cut: what was in RAM is gone
        filler.unlink()  # room again
        dashboard.start()
        service = start()
        wait_until(lambda: "session" in _kinds(dashboard), 180, "the session summary")

        wait_until(lambda: dashboard.count(patient) >= produced(), 60, "every result")
        service.terminate()
        assert service.wait(30) == 0
    finally:
        if service.poll() is None:
            service.kill()
            service.wait(10)
        watcher.close()
    with sqlite3.connect(state_dir / "outbox.sqlite") as db:
        total = db.execute("SELECT last FROM sequences WHERE stream = ?", (patient,)).fetchone()[0]
        left = db.execute("SELECT COUNT(*) FROM outbox WHERE seq IS NOT NULL").fetchone()[0]
    rows = dashboard.rows(patient)
    dashboard.stop()
    if os.environ.get("HIPSENSE_PRINT_FIGURES"):
        print(f"\nfull card, reserve {reserve_mib} MiB: {at_fill} stored when it filled, {on_card_at_kill} on "
              f"the card and {held_at_kill} held at the kill, {total} produced, {len(rows)} stored, statuses with "
              f"unsaved_results: {[s['unsaved_results'] for s in statuses if 'unsaved_results' in s]}")
    if reserve_mib:
        assert held_at_kill == 0 and on_card_at_kill >= at_fill + 5  # committed on the card, not held in RAM
    else:
        assert held_at_kill >= 3 and len(spilled_ids) == held_at_kill
    assert spilled_ids <= {m for m, _ in rows}  # what waited outside the outbox at the kill arrived
    assert len(rows) == total and len({m for m, _ in rows}) == total  # each once
    assert {s for _, s in rows} == set(range(1, total + 1)) and left == 0
    assert spilled() == 0  # the spill file is gone once its results are stored


def _kinds(dashboard: Dashboard) -> set[str]:
    from sqlalchemy import select

    from hipsense.dashboard.db.tables import events

    with dashboard.engine.connect() as connection:
        return set(connection.execute(select(events.c.kind)).scalars())
