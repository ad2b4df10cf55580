"""`hipsense demo` as a newcomer runs it: a subprocess, its printed URL and login, a browser.

Headless system Chromium (Playwright) logs in with the printed credentials and sees the
replayed session's reps on the patient's page; then SIGINT must stop everything: the demo
exits 0, its child processes are gone and its ports are free again. The replay runs at 10x,
so the whole 236 s session is over in about 25 s (20x works too, but leaves little CPU to spare
on two cores shared with Chromium: the emulated sensor then starts to show gaps).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hipsense.demo.ports import port_is_free

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = REPO / "test-output" / "screenshots"
SPEED = "10"
PHONE = {"width": 390, "height": 844}  # CSS pixels of a current phone


class DemoProcess:
    """``python -m hipsense demo`` with its terminal output collected line by line."""

    def __init__(self, tmp_path: Path) -> None:
        env = {name: value for name, value in os.environ.items() if not name.startswith("HIPSENSE_")}
        env.update(TMPDIR=str(tmp_path), PYTHONUNBUFFERED="1")
        env.pop("DISPLAY", None)
        self.tmp_path = tmp_path
        self.t0 = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hipsense", "demo", "--speed", SPEED, "--no-open"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, env=env, cwd=REPO)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := re.search(pattern, line):
                    return match
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} within {timeout} s; output so far:\n{self.output}")

    def log(self, name: str) -> str:
        """A part's log (``dashboard`` or ``service``) while the demo runs (its files go at exit)."""
        return "\n".join(path.read_text(errors="replace") for path in self.tmp_path.glob(f"hipsense-demo-*/{name}.log"))

    def children(self) -> set[int]:
        """PIDs whose parent is the demo (the service and the dashboard)."""
        found = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == self.process.pid:
                found.add(int(stat.parent.name))
        return found

    @staticmethod
    def commands(pids: set[int]) -> set[str]:
        """The hipsense commands (``run``, ``dashboard``) among ``pids``."""
        found = set()
        for pid in pids:
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"hipsense" in argv and argv.index(b"hipsense") + 1 < len(argv):
                found.add(argv[argv.index(b"hipsense") + 1].decode())
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def demo(tmp_path: Path):
    if not sys.platform.startswith("linux"):
        pytest.skip("checks child processes through /proc")
    pytest.importorskip("amqtt")
    pytest.importorskip("bumble")
    process = DemoProcess(tmp_path)
    yield process
    process.stop()


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download needed)")
    if not Path(CHROMIUM).exists():
        pytest.skip("no system Chromium (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def alive(pid: int) -> bool:
    """Running (a zombie waiting for whoever adopted it to reap it has stopped running)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_until_gone(pids: set[int], timeout: float) -> list[int]:
    """The PIDs still alive after up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while [pid for pid in pids if alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in pids if alive(pid)]


def open_patient_page(page, demo: DemoProcess, url: str) -> None:
    response = page.goto(url + "patients/p-demo1")
    assert response is not None and response.ok, demo.log("dashboard")


def pain_this_week(page) -> float:
    """The newest point of the pain chart (the current week's mean), from its tooltip."""
    titles = page.eval_on_selector_all("svg[aria-label^='Pain'] circle.dot title", "ts => ts.map(t => t.textContent)")
    return float(titles[-1].rsplit(":", 1)[1])


def take_overview_screenshots(page, url: str) -> None:
    """The main pages with the demo clinic in them (docs/img holds copies for the README)."""

    def shot(name: str, height: int) -> None:
        page.screenshot(path=str(SCREENSHOTS / name), full_page=True, clip={"x": 0, "y": 0, "width": 1280,
                                                                            "height": height})

    page.screenshot(path=str(SCREENSHOTS / "demo-patient-after.png"), full_page=True,
                    clip={"x": 0, "y": 0, "width": 1280, "height": 1250})
    page.goto(url)
    page.wait_for_selector("#patients-table")
    shot("demo-patients.png", 540)
    page.goto(url + "patients/p-demo3")
    shot("demo-rom-falling.png", 1250)
    page.goto(url + "monitoring")
    shot("demo-monitoring.png", 600)
    page.goto(url + "patients/p-demo1/prescription")
    shot("demo-prescription.png", 560)


def test_demo_shows_reps_in_the_browser_and_stops_cleanly_on_ctrl_c(browser, demo):
    url = demo.wait_for_line(r"^dashboard\s+(http://\S+/)$", 60).group(1)
    username, password = demo.wait_for_line(r"^login\s+(\S+) / (\S+)$", 5).groups()
    broker_port = int(demo.wait_for_line(r"mqtt://127\.0\.0\.1:(\d+)", 5).group(1))
    web_port = int(url.rsplit(":", 1)[1].strip("/"))
    assert broker_port != 1883, "the demo must never take the standard MQTT port"

    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.goto(url)
    assert "/login" in page.url
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(url)
    assert "Demo patient" in page.locator("#patients-table").inner_text()
    assert demo.wait_for_line(r"Pi\s+follows prescription version 1 \(straight_leg_raise\)", 60)
    open_patient_page(page, demo, url)

    # A rep counted from the emulated sensor, through the service, the broker and the ingest,
    # pushed into the open page.
    page.wait_for_selector("#today-results li.kind-rep", timeout=120_000)  # the history is seeded first
    first_rep_s = time.monotonic() - demo.t0
    children = demo.children()
    assert demo.commands(children) >= {"run", "dashboard"}, demo.output  # the Pi service and the dashboard

    # Mid-session (set 3, with holds), for the README's picture: docs/img/dashboard.png.
    page.locator("#today-results li.kind-rep").nth(5).wait_for(timeout=60_000)
    open_patient_page(page, demo, url)  # reloading mid-session, with live data cached, works
    page.locator("#today-results li.kind-rep").nth(22).wait_for(timeout=60_000)
    assert "Straight-Leg Raise" in page.locator("#live-exercise").inner_text()
    # One 24-hour format everywhere, the live clock too; and a 10x replay never stamps the future.
    page.wait_for_function("/^\\d{2}:\\d{2}:\\d{2}$/.test(document.getElementById('live-updated').textContent)")
    newest = page.locator("#today-results li .time").first.inner_text()
    assert re.fullmatch(r"\d{2}:\d{2}:\d{2}", newest), newest
    now = dt.datetime.now(dt.UTC)
    stamped = dt.datetime.combine(now.date(), dt.time.fromisoformat(newest), tzinfo=dt.UTC)
    assert stamped <= now + dt.timedelta(seconds=2), (newest, now)  # the demo's clinic runs on UTC
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "demo-patient.png"))

    demo.wait_for_line(r"session done: adherence 100 %, 30 reps", 60)
    page.wait_for_selector("#today-results li.kind-session", timeout=10_000)
    assert page.locator("#today-results li.kind-rep").count() == 30
    assert page.locator("#today-results li").first.get_attribute("class").endswith("kind-session")  # after its reps

    # The clinic's history (other patients, the live patient's past weeks) is in by now.
    demo.wait_for_line(r"^history\s+5 patients", 5)  # seeded before the live session began
    open_patient_page(page, demo, url)
    assert "pain rising" not in page.locator("body").inner_text()
    pain_before = pain_this_week(page)

    # The patient answers on the Pi's page, on a phone: check-in -> outbox -> MQTT -> dashboard.
    pi_page = demo.wait_for_line(r"^Pi's page\s+(http://\S+/)", 5).group(1)
    phone_context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    phone = phone_context.new_page()
    phone.goto(pi_page)
    assert "30 of 30 reps" in phone.locator("#plan").inner_text()
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    phone.locator("#pain-after button[value='8']").tap()
    phone.wait_for_url("**/?saved=pain-after")
    phone.screenshot(path=str(SCREENSHOTS / "pi-page.png"), full_page=True)
    phone_context.close()
    page.wait_for_selector("#today-results li.kind-pain", timeout=20_000)  # pushed to the open page
    open_patient_page(page, demo, url)
    assert any("pain rising" in alert for alert in page.locator(".alert").all_inner_texts())
    assert pain_this_week(page) > pain_before  # the chart's point for this week moved up
    take_overview_screenshots(page, url)
    context.close()

    demo.process.send_signal(signal.SIGINT)
    assert demo.process.wait(40) == 0, demo.output
    assert demo.output.splitlines()[-1] == "stopped", demo.output
    assert not wait_until_gone(children, 5), "a child process outlived the demo"
    assert port_is_free(web_port) and port_is_free(broker_port)
    assert not list(demo.tmp_path.glob("hipsense-demo-*")), "the demo's files were left behind"
    print(f"first rep on the dashboard {first_rep_s:.1f} s after `hipsense demo` started")


def test_if_the_demo_is_killed_its_children_stop_too(demo):
    """SIGKILL leaves the demo no chance to clean up: Linux's parent-death signal must."""
    url = demo.wait_for_line(r"^dashboard\s+(http://\S+/)$", 60).group(1)
    demo.wait_for_line(r"^sensor\s", 120)  # after the history is seeded
    children = demo.children()
    assert demo.commands(children) >= {"run", "dashboard"}, demo.output
    demo.process.kill()
    demo.process.wait(10)
    assert not wait_until_gone(children, 30), "a child outlived the killed demo"
    assert port_is_free(int(url.rsplit(":", 1)[1].strip("/")))
