"""The patient's page on the Pi, in headless Chromium at a phone's size.

Real parts: the page's HTTP server, the session engine on its own processing thread
(:class:`EngineWorker`), the result publisher and the durable outbox; the prescription is a
real protocol message. The only double is the speaker (no sound card here). The way on from
the outbox (MQTT, dashboard ingest, chart and alert) is covered end to end in
tests/demo/test_demo.py.
"""

from __future__ import annotations

import datetime as dt
import http.client
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from hipsense import protocol as p
from hipsense.protocol import MessageKind
from hipsense.publish import Outbox
from hipsense.service.checkins import TodayBook
from hipsense.service.config import SessionConfig
from hipsense.service.engine import SessionEngine
from hipsense.service.patient_page import PatientPage, client_allowed, host_allowed
from hipsense.service.results import ResultPublisher
from hipsense.service.service import EngineWorker, _ask_for_pain
from hipsense.service.timebase import Timebase
from hipsense.service.voice import Voice
from tests.service.fakes import RecordingSpeaker, blocks

PATIENT = "p-0001"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}  # an iPhone 12-15 sized viewport, CSS pixels
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


def prescription():
    envelope = p.build_prescription(PATIENT, version=3, updated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                                    exercises=[p.PrescribedExercise(1, "straight_leg_raise", 3, 10, 5.0, ("right",)),
                                               p.PrescribedExercise(2, "hip_flexor_stretch", 1, None, 30.0,
                                                                    ("left", "right"))])
    return p.prescription_from_message(p.parse_message(envelope.topic, envelope.payload))


class Pi:
    """The service's parts the page talks to, as service.py wires them."""

    def __init__(self, tmp_path: Path) -> None:
        self.outbox = Outbox(tmp_path / "outbox.sqlite")
        self.publisher = ResultPublisher(PATIENT, self.outbox)
        self.speaker = RecordingSpeaker()
        self.voice = Voice(self.speaker)
        self.engine = SessionEngine(sensor_sides=["right"], publisher=self.publisher, voice=self.voice,
                                    timebase=Timebase(), settings=SessionConfig(recognition=False),
                                    prescription=prescription())
        self.book = TodayBook(tmp_path / "patient_today.json")
        self.publisher.on_stored.append(self.book.on_result)
        self.publisher.on_stored.append(lambda kind, envelope: _ask_for_pain(self.voice, kind, envelope))
        self.worker = EngineWorker(self.engine)
        self.worker.start()
        from hipsense.service.checkins import CheckIns

        checkins = CheckIns(self.engine, lambda job: self.worker.submit("call", job), utc_now=Timebase().utc_now)
        self.page = PatientPage(self.book, checkins, host="127.0.0.1", port=0).start()
        self.url = f"http://127.0.0.1:{self.page.port}/"

    def messages(self, kind):
        return [m for m in (p.parse_message(r.topic, r.payload) for r in self.outbox.pending(limit=1000))
                if m.kind is kind]

    def close(self) -> None:
        self.page.stop()
        self.worker.stop()
        self.outbox.close()


@pytest.fixture
def pi(tmp_path):
    rig = Pi(tmp_path)
    yield rig
    rig.close()


@pytest.fixture
def phone():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download needed)")
    if not Path(CHROMIUM).exists():
        pytest.skip("no system Chromium (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--headless", "--no-sandbox", "--disable-gpu"])
        context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
        yield context.new_page()
        browser.close()


def fits_the_phone(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_pain_before_and_after_a_real_session_reach_the_outbox(pi, phone, uci_s1_e3):
    phone.goto(pi.url)
    assert fits_the_phone(phone)
    plan = phone.locator("#plan").inner_text()
    assert "Straight-Leg Raise" in plan and "3 × 10, hold 5 s" in plan and "0 of 30 reps" in plan
    assert "0 of 30 s held" in plan  # the stretch, a side each

    phone.locator("#pain-before button[value='2']").tap()
    phone.wait_for_url("**/?saved=pain-before")
    assert "saved" in phone.locator(".notice").inner_text()
    assert "You said 2" in phone.locator("#pain-before").inner_text()
    [before] = pi.messages(MessageKind.PAIN)
    assert (before.data["moment"], before.data["score"], before.data["session_id"]) == ("before", 2, None)

    # A real session: the UCI straight-leg raises through the engine on its own thread.
    t, acc, gyr = (np.asarray(x, float) for x in uci_s1_e3)
    t = t - t[0] + time.monotonic()  # sample times are the host's monotonic clock, as the BLE link stamps them
    for block in blocks(t, acc, gyr, per_block=25):
        pi.worker.submit("samples", (0, block))
    tail = t[-1] + 0.04 * np.arange(1, 750)  # 30 s at rest ends the last set
    for block in blocks(tail, np.repeat(acc[-1:], len(tail), 0), np.zeros((len(tail), 3)), per_block=25):
        pi.worker.submit("samples", (0, block))
    pi.worker.submit("call", lambda: pi.engine.end_session(reason="idle"))
    deadline = dt.datetime.now() + dt.timedelta(seconds=60)
    while not pi.messages(MessageKind.SESSION) and dt.datetime.now() < deadline:
        phone.wait_for_timeout(200)
    assert pi.messages(MessageKind.SESSION)
    assert any("pain" in phrase and "phone" in phrase for phrase in pi.speaker.phrases), pi.speaker.phrases

    phone.reload()
    plan = phone.locator("#plan").inner_text()
    reps = len(pi.messages(MessageKind.REP))
    adherence = pi.messages(MessageKind.SESSION)[0].data["adherence"]
    assert reps >= 28  # the counter's accuracy is tested elsewhere; here: the page shows what was stored
    assert f"{reps} of 30 reps" in plan and f"Session done: {adherence * 100:.0f} % of today's plan" in plan
    assert phone.locator("#skip").count() == 0  # done today: nothing to skip
    phone.locator("#pain-after button[value='6']").tap()
    phone.wait_for_url("**/?saved=pain-after")
    after = pi.messages(MessageKind.PAIN)[-1]
    assert (after.data["moment"], after.data["score"]) == ("after", 6)
    assert fits_the_phone(phone)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SCREENSHOTS / "patient-page.png"), full_page=True)


def test_skip_today_sends_a_session_with_no_work_and_the_reason(pi, phone):
    phone.goto(pi.url)
    phone.select_option("#reason", "unwell")
    phone.locator("#skip button").tap()
    phone.wait_for_url("**/?saved=skip")
    assert "skipping today (feeling unwell)" in phone.locator("#plan").inner_text()
    [skipped] = pi.messages(MessageKind.SESSION)
    assert skipped.data["flags"] == ["skipped", "skip_unwell"]
    assert skipped.data["adherence"] == 0.0 and skipped.data["prescription_version"] == 3
    assert [e["reps"] for e in skipped.data["exercises"]] == [0, 0, 0]
    assert not any("pain" in phrase for phrase in pi.speaker.phrases)  # no question after a skip
    assert phone.locator("#skip").count() == 0


def post(url: str, path: str, body: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    host, port = url.split("//")[1].strip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("POST", path, body=body, headers={"Content-Type": "application/x-www-form-urlencoded",
                                                         **headers})
    return connection.getresponse()


def test_another_site_cannot_answer_for_the_patient(pi):
    host = pi.url.split("//")[1].strip("/")
    refused = [
        post(pi.url, "/pain", "moment=after&score=9", {"Origin": "http://evil.example", "Host": host}).status,
        post(pi.url, "/pain", "moment=after&score=9", {"Sec-Fetch-Site": "cross-site", "Host": host}).status,
        # DNS rebinding: a web site's name pointed at the Pi
        post(pi.url, "/pain", "moment=after&score=9", {"Host": "evil.example:8080"}).status,
        post(pi.url, "/pain", "moment=after&score=11", {"Host": host}).status,
        post(pi.url, "/skip", "reason=bored", {"Host": host}).status,
    ]
    assert refused == [403, 403, 421, 400, 400]
    assert pi.messages(MessageKind.PAIN) == [] and pi.messages(MessageKind.SESSION) == []
    # The page's own form, from the phone: accepted.
    assert post(pi.url, "/pain", "moment=after&score=3", {"Origin": f"http://{host}", "Host": host}).status == 303


@pytest.mark.parametrize(("address", "allowed"), [
    ("127.0.0.1", True), ("::1", True), ("192.168.1.23", True), ("10.0.0.7", True), ("172.20.1.1", True),
    ("fd12:3456::1", True), ("fe80::1%wlan0", True), ("169.254.3.4", True), ("::ffff:192.168.1.5", True),
    ("8.8.8.8", False), ("2001:4860::8888", False), ("100.64.0.1", False), ("::ffff:8.8.8.8", False),
    ("0.0.0.0", False), ("not an address", False),
])
def test_only_the_home_network_is_answered(address, allowed):
    assert client_allowed(address) is allowed


@pytest.mark.parametrize(("host", "allowed"), [
    ("192.168.1.5:8080", True), ("[fe80::1]:8080", True), ("localhost:8080", True), ("hipsense.local:8080", True),
    ("raspberrypi.local", True), ("mypi:8080", True), ("evil.example:8080", False), ("", False), (None, False),
])
def test_host_names_a_browser_may_use(host, allowed):
    assert host_allowed(host, ("mypi",)) is allowed
