"""Browser tests: headless Chromium (the system's, driven by Playwright) against a real
dashboard, a real Mosquitto and a database. Screenshots go to test-output/screenshots/."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import time
from pathlib import Path

import pytest

from hipsense import protocol as p
from hipsense.dashboard.accounts.therapists import add_therapist, assign_patient
from hipsense.dashboard.event_store import EventStore
from hipsense.dashboard.ingest import IngestService
from hipsense.dashboard.live_hub import LiveHub
from hipsense.dashboard.web import DashboardContext, create_app
from hipsense.publish.mqtt import MqttClient
from tests.dashboard.conftest import mqtt_settings
from tests.dashboard.live_server import LiveServer, seed_history
from tests.dashboard.web_helpers import PASSWORD

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
PATIENT = "p-0001"


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download needed)")
    if not Path(CHROMIUM).exists():
        pytest.skip("no system Chromium (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def site(sqlite_engine, broker):
    """The dashboard as `hipsense dashboard serve` runs it: ingest + pages in one process."""
    add_therapist(sqlite_engine, "ana", PASSWORD, "Ana Therapist")
    add_therapist(sqlite_engine, "ben", PASSWORD, "Ben")
    assign_patient(sqlite_engine, PATIENT, "ana", label="A.B. (hip, left)")
    assign_patient(sqlite_engine, "p-0002", "ana", label="C.D.")
    assign_patient(sqlite_engine, "p-0003", "ben")
    store = EventStore(sqlite_engine)
    next_seq = seed_history(store, PATIENT, now=dt.datetime.now(dt.timezone.utc))
    status = p.build_status(PATIENT, online=True, software_version="0.1.0",
                            sensors=[{"side": "left", "connected": True, "battery_pct": 76}])
    store.write_batch([p.parse_message(status.topic, status.payload)])
    hub = LiveHub()
    ingest = IngestService(store, mqtt_settings(broker), hub=hub)
    ingest.start()
    assert ingest.wait_connected(5)
    context = DashboardContext(engine=sqlite_engine, hub=hub, publish=ingest.client.publish,
                               secure_cookies=True, sse_poll_s=0.5)
    server = LiveServer(create_app(context))
    server.start()
    yield server, broker, next_seq
    server.stop()
    ingest.stop()


def log_in(browser, server, username: str = "ana"):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(server.url + "/")
    assert "/login" in page.url
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/")
    return context, page


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_log_in_and_see_the_main_pages(browser, site):
    server, _, _ = site
    anonymous = browser.new_context()
    login = anonymous.new_page()
    login.goto(server.url + "/login")
    shot(login, "login")
    anonymous.close()
    context, page = log_in(browser, server)
    assert page.locator("#patients-table").inner_text().count("A.B.") == 1
    assert "p-0003" not in page.content()  # Ben's patient
    shot(page, "patients")
    page.click("text=A.B. (hip, left)")
    page.wait_for_selector("svg.chart.rom circle")
    assert "Sessions, last 30 days" in page.content()
    shot(page, "patient")
    page.click("text=Prescription")
    page.wait_for_selector("#prescription-form")
    shot(page, "prescription-editor")
    page.click("text=Remote monitoring")
    page.wait_for_selector("text=Days with data")
    assert "eligible" in page.locator(f"tr[data-patient={PATIENT}]").inner_text()
    shot(page, "remote-monitoring")
    context.close()


def test_a_rep_published_to_the_broker_appears_without_reload(browser, site):
    server, broker, seq = site
    context, page = log_in(browser, server)
    page.goto(f"{server.url}/patients/{PATIENT}")
    page.evaluate("window.__notReloaded = true")
    page.wait_for_timeout(300)  # the EventSource connects
    now = dt.datetime.now(dt.timezone.utc)
    session = p.new_session_id()
    with MqttClient(mqtt_settings(broker, user=PATIENT), patient=PATIENT) as pi:
        assert pi.wait_connected(5)
        pi.publish_live(p.build_live(PATIENT, t=now, side="left", thigh_angle_deg=41.3, exercise="clam_shells",
                                     session_id=session, rep_count=7, hold_remaining_s=1.5))
        pi.publish(p.build_rep_event(PATIENT, seq=seq, session_id=session, exercise="clam_shells", side="left",
                                     set_index=2, rep_index=7, t_start=now - dt.timedelta(seconds=3), t_end=now,
                                     rom_deg=44.4, hold_s=2.0, peak_speed_dps=80.0))
    page.wait_for_selector("#today-results li.fresh:has-text('set 2 rep 7: ROM 44°')", timeout=10_000)
    assert page.locator("#live-reps").inner_text() == "7"
    assert page.locator("#live-angle").inner_text() == "41°"
    assert page.locator("#live-exercise").inner_text() == "Clam Shells"
    assert page.evaluate("window.__notReloaded") is True
    shot(page, "patient-live")
    context.close()


def test_a_prescribed_hold_counts_down_on_the_live_view(browser, site, tmp_path, uci_s1_e3):
    """Issue 12: during a 3 × 10 with a 5 s hold, "Hold left" shows the seconds left, not "–".
    The live message is the one the real session engine sent during the first rep's hold of a
    real recording (UCI s1, straight-leg raise)."""
    import json

    import numpy as np

    from hipsense.service.timebase import Timebase
    from tests.service.test_engine import Rig, rx
    from tests.service.fakes import blocks

    server, broker, _ = site
    t, acc, gyr = (np.asarray(a, float) for a in uci_s1_e3)
    rig = Rig(tmp_path, rx(hold_s=5.0))
    rig.engine.timebase = Timebase(monotonic=lambda: 0.0, wall=time.time)  # stamped "now"
    stop = int(np.searchsorted(t, 25.0))  # the first reps, each held about 5 s
    for block in blocks(t[:stop], acc[:stop], gyr[:stop]):
        rig.clock.t = float(block.t_s[-1])
        rig.engine.on_samples(0, block)
    holding = [e for e in rig.live if json.loads(e.payload).get("hold_remaining_s") is not None]
    assert holding, "the engine sent no live message with the time left in a hold"
    envelope = holding[len(holding) // 2]
    left = json.loads(envelope.payload)["hold_remaining_s"]

    context, page = log_in(browser, server)
    page.goto(f"{server.url}/patients/{PATIENT}")
    assert page.locator("#live-hold").inner_text() == "–"
    page.wait_for_timeout(300)  # the EventSource connects
    with MqttClient(mqtt_settings(broker, user=PATIENT), patient=PATIENT) as pi:
        assert pi.wait_connected(5)
        pi.publish_live(envelope)
    page.wait_for_function("document.querySelector('#live-hold').innerText !== '–'", timeout=10_000)
    assert page.locator("#live-hold").inner_text() == f"{left:.1f} s"
    assert 0.0 <= left <= 5.0
    context.close()


def test_a_prescription_edit_reaches_a_subscribed_client(browser, site):
    server, broker, _ = site
    received: list[p.Prescription] = []
    arrived = threading.Event()

    def on_prescription(message: p.Message) -> None:
        received.append(p.prescription_from_message(message))
        arrived.set()

    with MqttClient(mqtt_settings(broker, user=PATIENT)) as pi:
        assert pi.wait_connected(5)
        pi.subscribe(p.build_topic(p.MessageKind.PRESCRIPTION, PATIENT), on_prescription)
        time.sleep(0.2)
        context, page = log_in(browser, server)
        page.goto(f"{server.url}/patients/{PATIENT}/prescription")
        page.select_option("select[name=rows-0-exercise]", "clam_shells")
        page.fill("input[name=rows-0-sets]", "3")
        page.fill("input[name=rows-0-reps]", "12")
        page.fill("input[name=rows-0-hold_s]", "2")
        page.select_option("select[name=rows-0-sides]", "left,right")
        page.select_option("select[name=rows-1-exercise]", "hip_flexor_stretch")
        page.fill("input[name=rows-1-sets]", "1")
        page.fill("input[name=rows-1-hold_s]", "30")
        page.click("text=Save and send to the Pi")
        page.wait_for_selector("text=Version 1 saved")
        assert arrived.wait(5), "the Pi side never got the prescription"
        context.close()
    [prescription] = received
    assert prescription.patient == PATIENT and prescription.version == 1
    assert [(i.exercise, i.sets, i.reps, i.hold_s, i.sides) for i in prescription.exercises] == [
        ("clam_shells", 3, 12, 2, ("left", "right")), ("hip_flexor_stretch", 1, None, 30, ("left", "right"))]


def test_every_route_refuses_an_anonymous_browser(browser, site):
    server, _, _ = site
    context = browser.new_context()
    page = context.new_page()
    for path in ("/", "/monitoring", f"/patients/{PATIENT}", f"/patients/{PATIENT}/prescription"):
        page.goto(server.url + path)
        assert page.url.startswith(server.url + "/login"), path
        assert "A.B." not in page.content()
    for path in (f"/patients/{PATIENT}/stream", "/patients/stream", "/patients/table", "/assets/dashboard.js",
                 f"/patients/{PATIENT}/export.csv?start=2025-01-01&end=2025-01-02",
                 f"/patients/{PATIENT}/export.fhir.json?start=2025-01-01&end=2025-01-02"):
        assert context.request.get(server.url + path).status == 401, path
    for path in ("/logout", f"/patients/{PATIENT}/prescription"):
        assert context.request.post(server.url + path, form={"csrf_token": "x"}).status == 401, path
    context.close()


def test_the_patients_list_updates_itself(browser, site):
    server, broker, _ = site
    context, page = log_in(browser, server)
    row = page.locator("tr[data-patient=p-0002]")
    assert "missed" in row.inner_text()
    page.evaluate("window.__notReloaded = true")
    page.wait_for_timeout(300)
    with MqttClient(mqtt_settings(broker, user="p-0002")) as pi:
        assert pi.wait_connected(5)
        pi.publish_live(p.build_live("p-0002", t=dt.datetime.now(dt.timezone.utc), side="right",
                                     thigh_angle_deg=12.0, exercise="bridge"))
        page.wait_for_selector("tr[data-patient=p-0002] .status-exercising", timeout=10_000)
    assert page.evaluate("window.__notReloaded") is True
    context.close()
