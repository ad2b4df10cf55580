"""``hipsense run`` cut from the broker (a network partition), twice, mid-session: every result
arrives once.

The Pi reaches the broker through :class:`tests.deploy.partition.PartitionProxy`: during a cut
its packets are dropped on the floor (no reset: the Pi and the broker find out through their
keep-alives, 5 s here), connections made meanwhile are never answered, and what was in flight
is lost with the connection. The dashboard's ingest stays connected to the broker. Shipped
broker config, the real ingest on SQLite and on PostgreSQL, the emulated sensor replaying a real session.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from hipsense import protocol as p
from tests.dashboard.conftest import engine, postgres_url  # noqa: F401 - fixtures
from tests.deploy.partition import PartitionProxy
from tests.deploy.test_delivery import REPO, Dashboard, _kinds, wait_until

pytestmark = pytest.mark.slow


def test_a_service_cut_from_the_broker_twice_delivers_every_result_once(fresh_deployment, tmp_path, engine):  # noqa: F811
    pytest.importorskip("bumble")
    broker = fresh_deployment.broker
    patient, password = fresh_deployment.a
    dashboard = Dashboard(fresh_deployment, tmp_path / "unused.sqlite3", reconnect_min_s=1)
    dashboard.engine = engine  # SQLite, then PostgreSQL
    dashboard.start()
    proxy = PartitionProxy(broker.port)
    state_dir = tmp_path / "pi-state"
    config = tmp_path / "hipsense.toml"
    config.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {proxy.port}\npatient_id = "{patient}"\nkeepalive_s = 5\n'
        f'username = "{patient}"\npassword = "{password}"\ntls_ca_file = "{broker.pki.ca_cert}"\n'
        f'[sensor]\nbackend = "emulator"\nside = "right"\n'
        f'[service]\nstate_dir = "{state_dir}"\nvoice = "off"\n'
        f'[session]\nidle_end_s = 60\n[emulator]\nspeed = 10.0\n'
    )
    dashboard.ingest.client.publish(p.build_prescription(
        patient, version=1, updated_at=dt.datetime.now(dt.timezone.utc),
        exercises=[p.PrescribedExercise(order=1, exercise="straight_leg_raise", sets=3, reps=10, hold_s=5,
                                        sides=("right",))]))

    def produced() -> int:
        with sqlite3.connect(state_dir / "outbox.sqlite") as db:
            row = db.execute("SELECT last FROM sequences WHERE stream = ?", (patient,)).fetchone()
        return 0 if row is None else row[0]

    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    cuts = []
    with open(tmp_path / "service.log", "a") as log:
        service = subprocess.Popen([sys.executable, "-m", "hipsense", "run", "--config", str(config)],
                                   stdout=log, stderr=log, env=env, cwd=REPO)
    try:
        for threshold in (3, 15):
            wait_until(lambda: dashboard.count(patient) >= threshold, 90, f"{threshold} results stored")
            proxy.cut()
            before = produced()
            time.sleep(12)  # past the keep-alive (5 s): both ends notice; the session goes on
            cuts.append((before, produced()))
            proxy.heal()
        wait_until(lambda: "session" in _kinds(dashboard.engine, patient), 180, "the session summary")
        wait_until(lambda: dashboard.count(patient) >= produced(), 60, "every result")
        service.terminate()
        assert service.wait(30) == 0
    finally:
        if service.poll() is None:
            service.kill()
            service.wait(10)
        proxy.close()
    with sqlite3.connect(state_dir / "outbox.sqlite") as db:
        total = db.execute("SELECT last FROM sequences WHERE stream = ?", (patient,)).fetchone()[0]
        left = db.execute("SELECT COUNT(*) FROM outbox WHERE seq IS NOT NULL").fetchone()[0]
    rows = dashboard.rows(patient)
    dashboard.stop()
    if os.environ.get("HIPSENSE_PRINT_FIGURES"):
        print(f"\npartition: produced during the cuts {cuts}, {total} produced, {len(rows)} stored, "
              f"{proxy.connections} connections through the proxy")
    assert any(after > before for before, after in cuts)  # results were made while cut off
    assert len(rows) == total and len({m for m, _ in rows}) == total  # each once
    assert {s for _, s in rows} == set(range(1, total + 1)) and left == 0
