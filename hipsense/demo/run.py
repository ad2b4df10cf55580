"""``hipsense demo``: the whole system on one machine, nothing to install but the package.

What runs, and where:

* this process: the embedded broker (:mod:`.broker`) on an asyncio loop, and a subscriber that
  prints each result to the terminal (:mod:`.narrator`);
* ``hipsense run``: the Pi service, unchanged, with an emulated WitMotion on a virtual Bumble
  radio replaying the shipped recording (bleak → decoder → signal → exercises → outbox → MQTT);
* ``hipsense dashboard serve``: ingest into a SQLite file and the web pages.

Order matters twice. At start, the prescription is retained on the broker before the service
connects (so it follows it from the first sample), and the dashboard has subscribed before the
service starts (so it stores the first rep: results are not retained). At stop, the service
goes first (it sends its session summary and "offline"), then the dashboard, then the broker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hipsense.demo.broker import EmbeddedBroker
from hipsense.demo.clinic import DemoClinic, seed_clinic
from hipsense.demo.narrator import Narrator
from hipsense.demo.ports import free_port, port_is_free
from hipsense.demo.processes import ChildProcess
from hipsense.demo.service_config import write_service_config
from hipsense.protocol import subscription_filter

__all__ = ["DEFAULT_SPEED", "DemoError", "DemoOptions", "run_demo"]

# Twice real time: the first rep arrives about 4 s after the sensor starts and the whole
# session (3 sets, 30 reps, 236 s of recording) ends with its summary in two minutes, while
# the live thigh angle and the hold countdown still move slowly enough to follow by eye.
DEFAULT_SPEED = 2.0
PREFERRED_WEB_PORT = 8080
DASHBOARD_CLIENT_ID = "hipsense-demo-dashboard"
START_TIMEOUT_S = 90.0  # imports and migrations on a slow machine (a Pi Zero takes long)
SERVICE_STOP_S = 20.0  # it drains its outbox for up to 5 s, then disconnects
DASHBOARD_STOP_S = 15.0
# Ctrl-C, `kill`, and closing the terminal (SIGHUP): each stops everything in order.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class DemoError(Exception):
    """The demo could not start (a port taken, a part that did not come up)."""


@dataclasses.dataclass(frozen=True)
class DemoOptions:
    speed: float = DEFAULT_SPEED
    port: int | None = None  # the dashboard's; None = 8080 if free, else any free port
    open_browser: bool | None = None  # None = only where there is a graphical display
    voice: bool = False


def run_demo(options: DemoOptions, echo: Callable[[str], None] = print) -> int:
    """Run until SIGINT or SIGTERM; returns the exit code (0 after a clean stop)."""
    _quiet_logging()
    return asyncio.run(_Demo(options, echo).run())


def _quiet_logging() -> None:
    """Warnings and errors of this process to stderr, minus the expected ones: every client's
    MQTT 5 attempt is refused by the embedded broker (by design, see broker.py), and amqtt
    warns about each such refused or dropped connection."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("hipsense.publish.mqtt").setLevel(logging.ERROR)
    logging.getLogger("amqtt").setLevel(logging.ERROR)
    logging.getLogger("transitions").setLevel(logging.ERROR)


def _child_environment() -> dict[str, str]:
    # HIPSENSE_* variables override the service's configuration (and pick the dashboard's
    # database): one left in the user's shell must not point the demo elsewhere.
    return {name: value for name, value in os.environ.items() if not name.startswith("HIPSENSE_")}


def _has_display() -> bool:
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class _Demo:
    def __init__(self, options: DemoOptions, echo: Callable[[str], None]) -> None:
        self.options = options
        self._echo = echo
        self.t0 = time.monotonic()
        self.stop = asyncio.Event()
        self.signals = 0

    async def run(self) -> int:
        workdir = Path(tempfile.mkdtemp(prefix="hipsense-demo-"))
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self._on_signal)
        try:
            return await self._run_in(workdir)
        except DemoError as exc:
            self.echo(f"hipsense demo: {exc}")
            return 1
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
            shutil.rmtree(workdir, ignore_errors=True)

    def echo(self, line: str) -> None:
        """Print, unless the terminal is gone (after SIGHUP): the clean stop must still happen."""
        try:
            self._echo(line)
        except OSError:
            pass

    def _on_signal(self) -> None:
        self.signals += 1
        if self.signals == 1:
            self.echo("\nstopping (Ctrl-C again to stop at once) ...")
        self.stop.set()

    async def _run_in(self, workdir: Path) -> int:
        options = self.options
        web_port = options.port if options.port is not None else free_port(preferred=PREFERRED_WEB_PORT)
        if not port_is_free(web_port):
            raise DemoError(f"cannot listen on port {web_port} (in use, or reserved); choose another with --port")
        broker_port = free_port()
        page_port = free_port()
        db_path = workdir / "dashboard.sqlite3"
        clinic = seed_clinic(str(db_path))
        config = write_service_config(workdir / "hipsense.toml", broker_port=broker_port, patient_id=clinic.patient_id,
                                      state_dir=workdir / "pi-state", speed=options.speed, voice=options.voice,
                                      patient_page_port=page_port)
        env = _child_environment()
        dashboard = ChildProcess("dashboard", [
            "dashboard", "serve", "--db", str(db_path), "--broker", f"127.0.0.1:{broker_port}",
            "--client-id", DASHBOARD_CLIENT_ID, "--host", "127.0.0.1", "--port", str(web_port),
            # Plain HTTP on loopback: a Secure cookie would be refused by some browsers there.
            "--insecure-cookies",
        ], workdir / "dashboard.log", env=env)
        service = ChildProcess("Pi service", ["run", "--config", str(config)], workdir / "service.log", env=env)
        self.pi_log = ServiceLog(workdir / "service.log")
        url = f"http://127.0.0.1:{web_port}/"

        async with EmbeddedBroker(broker_port) as broker:
            await broker.publish_retained(clinic.prescription.topic, clinic.prescription.payload)
            narrator = Narrator(broker_port, clinic.patient_id, echo=self.echo, t0=self.t0)
            try:
                dashboard.start()
                self.echo(f"broker     mqtt://127.0.0.1:{broker_port} (embedded, MQTT 3.1.1)")
                if not await self._until(lambda: broker.has_subscriber(DASHBOARD_CLIENT_ID, subscription_filter()),
                                         "the dashboard to subscribe", dashboard):
                    return await self._shut_down(service, dashboard, narrator)
                if not await self._until(lambda: _accepts(web_port), "the dashboard's pages", dashboard):
                    return await self._shut_down(service, dashboard, narrator)
                # The login first, then the sensor: whoever opens the page now sees the session begin.
                self._banner(url, clinic.username, clinic.password, clinic.patient_id)
                self.echo(f"Pi's page  http://127.0.0.1:{page_port}/ (the patient's phone at home: pain, "
                          "today's plan, skip a day)")
                if options.voice and not _has_speech():
                    self.echo("voice      espeak-ng is not installed, so the cues stay silent "
                              "(sudo apt-get install espeak-ng)")
                # The clinic's past weeks before the live session: seeding them costs seconds of
                # CPU that a replayed sensor must not compete with (it would show gaps).
                history = HistoryJob(str(db_path), clinic)
                self.echo("history    counting the demo clinic's past weeks in real recordings ...")
                while history.process.is_alive():
                    if self.stop.is_set():
                        history.process.terminate()
                        return await self._shut_down(service, dashboard, narrator)
                    await asyncio.sleep(0.1)
                self.echo(history.poll() or "")
                # Both children start before this process has any thread (see processes.py).
                service.start()
                narrator.start()  # connects in milliseconds; the service needs seconds to its first rep
                self.echo(f"sensor     emulated WitMotion replaying UCI subject 1, straight-leg raise, "
                          f"at {options.speed:g}x real time")
                if options.open_browser or (options.open_browser is None and _has_display()):
                    import webbrowser

                    await asyncio.to_thread(webbrowser.open, url + "patients/" + clinic.patient_id)
                self.echo("Reps appear below and on the patient's page as they are counted. Ctrl-C stops everything.")
                self.echo("")
                failed = await self._watch(service, dashboard, narrator)
            except BaseException:
                await self._shut_down(service, dashboard, narrator)
                raise
            code = await self._shut_down(service, dashboard, narrator)
            return 1 if failed else code

    def _banner(self, url: str, username: str, password: str, patient: str) -> None:
        self.echo("")
        self.echo(f"dashboard  {url}")
        self.echo(f"login      {username} / {password}")
        self.echo(f"patient    {url}patients/{patient}")

    async def _until(self, ready: Callable[[], bool], what: str, child: ChildProcess) -> bool:
        """Wait for ``ready``; False if stopped by a signal; DemoError if ``child`` died or timed out."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            if self.stop.is_set():
                return False
            if not child.running():
                raise DemoError(f"the {child.name} stopped (exit code {child.exit_code()}) while waiting for "
                                f"{what}; its log ends with:\n{child.log_tail()}")
            if time.monotonic() > deadline:
                raise DemoError(f"timed out waiting for {what}; the {child.name}'s log ends with:\n{child.log_tail()}")
            await asyncio.sleep(0.1)
        return True

    async def _watch(self, service: ChildProcess, dashboard: ChildProcess, narrator: Narrator) -> bool:
        """Run until a signal (False) or until a part stops by itself (True: that is a failure)."""
        announced = False
        while not self.stop.is_set():
            for child in (service, dashboard):
                if not child.running():
                    self.echo(f"the {child.name} stopped unexpectedly (exit code {child.exit_code()}); "
                              f"its log ends with:\n{child.log_tail()}")
                    return True
            for version, exercises in self.pi_log.prescriptions_followed():
                self.echo(f"{time.monotonic() - self.t0:6.1f} s  Pi     follows prescription version {version}"
                          f"{f' ({exercises})' if exercises else ''}")
            if narrator.session_done.is_set() and not announced:
                announced = True
                first = f"; first rep {narrator.first_rep_at:.1f} s after start" if narrator.first_rep_at else ""
                self.echo(f"The recording is over{first}. The dashboard stays up: Ctrl-C to stop.")
            try:
                await asyncio.wait_for(self.stop.wait(), 0.2)
            except TimeoutError:
                pass
        return False

    async def _shut_down(self, service: ChildProcess, dashboard: ChildProcess, narrator: Narrator) -> int:
        """Service, then dashboard (the broker stops when the caller's ``async with`` ends)."""
        hurry = lambda: self.signals > 1  # noqa: E731 - a second Ctrl-C: no patience left
        code = 0
        for child, timeout in ((service, SERVICE_STOP_S), (dashboard, DASHBOARD_STOP_S)):
            if child.process is None:
                continue
            # -SIGTERM (stopped before its handler was installed) is still a clean stop.
            if await child.stop(timeout, give_up=hurry) not in (0, -signal.SIGTERM):
                code = 1
            if child is service and not hurry():
                await asyncio.sleep(0.3)  # the dashboard stores the summary the service just sent
        narrator.stop()
        self.echo("stopped" if code == 0 else "stopped, but a part did not exit cleanly")
        return code


class HistoryJob:
    """The demo clinic's other patients and past weeks (hipsense/demo/history.py), seeded in a
    process of its own: counting the recordings and storing ~4000 results takes seconds of CPU
    that the embedded broker (this process) must not wait behind."""

    def __init__(self, db_url: str, clinic: DemoClinic) -> None:
        import multiprocessing

        from hipsense.demo.history import seed_history_into

        context = multiprocessing.get_context("spawn")
        self._started = time.monotonic()
        self._result = context.Queue()
        self.process = context.Process(target=_seed_history, args=(self._result, os.getpid(), seed_history_into, db_url,
                                                                   clinic.username, clinic.therapist_id,
                                                                   clinic.patient_id), daemon=True)
        self.process.start()
        self.done = False

    def poll(self) -> str | None:
        """A console line once it has finished (or failed), else None."""
        if self.done or self.process.is_alive():
            return None
        self.done = True
        try:
            ok, detail = self._result.get(timeout=1)
        except Exception:  # noqa: BLE001 - the process died without a word (killed)
            ok, detail = False, f"exit code {self.process.exitcode}"
        if not ok:
            return f"history    not seeded: {detail} (the live patient works without it)"
        return (f"history    {len(detail)} patients' past weeks are on the dashboard ({sum(detail.values())} "
                f"messages; every rep counted by the real counter in a real recording)")


def _seed_history(result, parent: int, seed, *args) -> None:  # noqa: ANN001 - in the spawned process
    from hipsense.demo.processes import die_with_parent

    die_with_parent(parent)  # a killed demo leaves nothing running
    try:
        result.put((True, seed(*args)))
    except Exception as exc:  # noqa: BLE001 - reported on the demo's console
        result.put((False, f"{type(exc).__name__}: {exc}"))


def _has_speech() -> bool:
    return shutil.which("espeak-ng") is not None or shutil.which("espeak") is not None


class ServiceLog:
    """Reads the Pi service's log as it grows, for what the console should say: the service
    logs "following prescription" when it has taken a new version (the Pi's own word that the
    prescription arrived, not the broker's)."""

    _FOLLOWING = re.compile(r"\bfollowing prescription version=(\d+)(?: exercises=(.*))?$")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = ""

    def prescriptions_followed(self) -> list[tuple[int, str]]:
        try:
            with open(self.path, "rb") as log:
                log.seek(self._offset)
                chunk = log.read()
        except OSError:
            return []
        self._offset += len(chunk)
        text = self._partial + chunk.decode("utf-8", "replace")
        lines = text.split("\n")
        self._partial = lines.pop()
        found = []
        for line in lines:
            if match := self._FOLLOWING.search(line.rstrip()):
                exercises = (match.group(2) or "").strip("[]").replace("'", "")
                found.append((int(match.group(1)), exercises))
        return found


def _accepts(port: int) -> bool:
    """Whether something answers a TCP connect on ``127.0.0.1:port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True
