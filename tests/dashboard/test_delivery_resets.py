"""The real ingest behind a real Mosquitto and a Pi's real outbox + MQTT client, through resets
that lose state: a broker killed (its persistence, saved only every 30 min, is gone: sessions,
subscriptions and the retained acknowledgements), and a Pi reinstalled (its state directory
wiped, its numbering starting again). Every result is stored once and the outbox empties."""

from __future__ import annotations

import datetime as dt
import signal
import time

import pytest
from sqlalchemy import func, select

from hipsense import protocol as p
from hipsense.dashboard.db.tables import events
from hipsense.dashboard.event_store import EventStore
from hipsense.dashboard.ingest import IngestService
from hipsense.publish import Outbox
from hipsense.publish.mqtt import MqttClient
from tests.dashboard.conftest import mqtt_settings

pytestmark = pytest.mark.slow

PATIENT = "p-0001"
SESSION = "01JQ7Z8K3M4N5P6Q7R8S9T0V1W"


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class Pi:
    """A patient's outbox and MQTT client, wired as ``hipsense run`` does (short re-send timers)."""

    def __init__(self, broker, path) -> None:
        self.outbox = Outbox(path)
        self.client = MqttClient(mqtt_settings(broker, user=PATIENT, client_id=f"hipsense-{PATIENT}",
                                               storage_timeout_s=2.0, reconnect_grace_s=1.0),
                                 patient=PATIENT, outbox=self.outbox)
        self.made: list[int] = []

    def produce(self, count: int) -> None:
        for _ in range(count):
            _, envelope = self.outbox.put_sequenced(PATIENT, self._rep)
            self.made.append(envelope.seq)
            self.client.notify_outbox()
            time.sleep(0.01)

    @staticmethod
    def _rep(seq: int) -> p.Envelope:
        start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10) + dt.timedelta(seconds=seq % 500)
        return p.build_rep_event(PATIENT, seq=seq, session_id=SESSION, exercise="clam_shells", side="left",
                                 set_index=1, rep_index=1, t_start=start, t_end=start + dt.timedelta(seconds=2),
                                 rom_deg=35.0, hold_s=1.0, peak_speed_dps=60.0)

    def left(self) -> int:
        return self.outbox.stats().pending_total

    def close(self) -> None:
        self.client.stop()
        self.outbox.close()


def stored(engine) -> list[int]:
    with engine.connect() as connection:
        return sorted(connection.execute(select(events.c.seq).where(events.c.patient == PATIENT)).scalars())


def stored_ids(engine) -> tuple[int, int]:
    with engine.connect() as connection:
        rows = connection.execute(select(func.count(), func.count(events.c.message_id.distinct()))
                                  .where(events.c.patient == PATIENT)).one()
    return rows[0], rows[1]


@pytest.fixture
def ingest(engine, broker):
    service = IngestService(EventStore(engine), mqtt_settings(broker, client_id="hipsense-dashboard-main",
                                                              clean_start=False, session_expiry_s=3600))
    service.start()
    assert service.wait_connected(10)
    time.sleep(0.3)  # the SUBACK
    yield service
    service.stop()


def test_a_killed_broker_that_forgot_every_session_and_retained_message_loses_nothing(engine, broker, ingest,
                                                                                      tmp_path):
    pi = Pi(broker, tmp_path / "outbox.sqlite")
    try:
        pi.client.start()
        assert pi.client.wait_connected(10)
        pi.produce(10)
        wait_until(lambda: len(stored(engine)) == 10 and pi.left() == 0, 20, "the first 10 stored and acknowledged")
        pi.produce(5)  # some of these are in flight when the broker dies
        broker.stop(signal.SIGKILL)  # no persistence saved: sessions, subscriptions, retained acks gone
        pi.produce(5)  # made while the broker is down
        broker.start()
        wait_until(pi.client.is_connected, 15, "the Pi to reconnect")
        pi.produce(5)
        wait_until(lambda: len(stored(engine)) >= 25 and pi.left() == 0, 60, "everything stored and acknowledged")
    finally:
        pi.close()
    assert stored(engine) == list(range(1, 26))
    assert stored_ids(engine) == (25, 25)


def test_a_reinstalled_pi_numbers_on_above_what_the_dashboard_has_and_its_outbox_empties(engine, broker, ingest,
                                                                                         tmp_path):
    old = Pi(broker, tmp_path / "old.sqlite")
    try:
        old.client.start()
        assert old.client.wait_connected(10)
        old.produce(5)
        wait_until(lambda: old.left() == 0, 20, "the old installation's results acknowledged")
    finally:
        old.close()
    new = Pi(broker, tmp_path / "wiped.sqlite")  # the same patient, a fresh state directory
    try:
        new.client.start()
        assert new.client.wait_connected(10)
        wait_until(lambda: new.client.sender.acknowledged(PATIENT) == 5, 10, "the retained acknowledgement")
        new.produce(3)
        wait_until(lambda: new.left() == 0, 30, "the new results acknowledged")
    finally:
        new.close()
    assert new.made == [6, 7, 8]
    assert stored(engine) == list(range(1, 9))
    assert stored_ids(engine) == (8, 8)


def test_a_pi_restarting_with_a_full_outbox_delivers_it_all_once(engine, broker, ingest, tmp_path):
    """3,000 results waiting (the Pi was offline for weeks), a third of them marked delivered by
    the previous run's PUBACKs but lost by the broker: all stored once, the outbox empties."""
    path = tmp_path / "outbox.sqlite"
    with Outbox(path) as box:
        for _ in range(3000):
            box.put_sequenced(PATIENT, Pi._rep)
        box.mark_delivered([row.id for row in box.pending(limit=1000)])
        assert box.awaiting_storage() == 1000
    pi = Pi(broker, path)
    started = time.monotonic()
    try:
        pi.client.start()
        wait_until(lambda: pi.left() == 0, 120, "the outbox to empty")
    finally:
        pi.close()
    assert stored(engine) == list(range(1, 3001))
    assert stored_ids(engine) == (3000, 3000)
    assert time.monotonic() - started < 60


_INGEST = """
import sys, time
from hipsense.dashboard.db import make_engine
from hipsense.dashboard.event_store import EventStore
from hipsense.dashboard.ingest import IngestService
from hipsense.publish.mqtt import MqttSettings
port, url = int(sys.argv[1]), sys.argv[2]
user, password = sys.argv[3] or None, sys.argv[4] or None
settings = MqttSettings(host="127.0.0.1", port=port, client_id="hipsense-dashboard-killed", username=user,
                        password=password, clean_start=False, session_expiry_s=3600, reconnect_min_s=1,
                        reconnect_max_s=1)
service = IngestService(EventStore(make_engine(url)), settings)
service.start()
print("started", flush=True)
while True:
    time.sleep(1)
"""


def test_a_dashboard_killed_mid_ingest_again_and_again_loses_and_doubles_nothing(engine, broker, tmp_path):
    import subprocess
    import sys

    from tests.mosquitto import DASHBOARD_PASSWORD, DASHBOARD_USER

    url = engine.url.render_as_string(hide_password=False)
    auth = [DASHBOARD_USER, DASHBOARD_PASSWORD] if broker.authenticated else ["", ""]

    def start_dashboard():
        process = subprocess.Popen([sys.executable, "-c", _INGEST, str(broker.port), url, *auth],
                                   stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "started"
        return process

    pi = Pi(broker, tmp_path / "outbox.sqlite")
    dashboard = start_dashboard()
    try:
        time.sleep(1.0)  # its subscription
        pi.client.start()
        assert pi.client.wait_connected(10)
        for _ in range(4):
            pi.produce(50)  # the dashboard is storing some of these when it dies
            dashboard.kill()
            dashboard.wait(10)
            dashboard.stdout.close()
            pi.produce(10)  # queued for its persistent session meanwhile
            dashboard = start_dashboard()
        wait_until(lambda: len(stored(engine)) >= 240 and pi.left() == 0, 90, "everything stored and acknowledged")
    finally:
        pi.close()
        dashboard.kill()
        dashboard.wait(10)
        dashboard.stdout.close()
    assert stored(engine) == list(range(1, 241))
    assert stored_ids(engine) == (240, 240)


def test_a_pi_whose_outbox_was_corrupt_numbers_on_above_and_the_dashboard_skips_the_gap(engine, broker, ingest,
                                                                                     tmp_path):
    from hipsense.publish import open_outbox

    old = Pi(broker, tmp_path / "outbox.sqlite")
    try:
        old.client.start()
        assert old.client.wait_connected(10)
        old.produce(5)
        wait_until(lambda: old.left() == 0, 20, "the first results acknowledged")
        old.client.sender.stop()  # results 6..8 never leave the Pi before its SD card fails
        old.produce(3)
    finally:
        old.close()
    (tmp_path / "outbox.sqlite").write_bytes(b"\x00 what a failing card leaves " * 1000)
    recovered = open_outbox(tmp_path / "outbox.sqlite")
    recovered.close()
    new = Pi(broker, tmp_path / "outbox.sqlite")
    try:
        floor = new.outbox.last_sequence(PATIENT)
        assert floor > 10**12
        new.client.start()
        assert new.client.wait_connected(10)
        # what `hipsense run` does on every connect: the status says below which seq it holds nothing
        new.outbox.put_envelope(p.build_status(PATIENT, online=True,
                                               outbox_first_seq=new.outbox.first_unconfirmed_seq(PATIENT)))
        new.produce(3)
        wait_until(lambda: new.left() == 0, 30, "the new results acknowledged past the gap")
    finally:
        new.close()
    assert stored(engine) == [1, 2, 3, 4, 5, floor + 1, floor + 2, floor + 3]  # 6..8 are in the kept file only
    assert stored_ids(engine) == (8, 8)
