"""``hipsense run``: the Pi's long-running service, and the only place that wires the layers.

Threads, and why:

* the asyncio loop (main thread) runs the BLE links and nothing else: a notification is only
  stamped and queued, so a slow disk can never make the link drop samples;
* the processing thread (:class:`EngineWorker`) batches samples, counts, and stores every
  result in the outbox (an fsync per result) — the only thread that touches the engine;
* paho's network thread and the outbox sender thread (inside :class:`MqttClient`) deliver.

Shutdown on SIGTERM/SIGINT: the links close, the worker flushes the trackers and writes the
session summary, the sender gets a few seconds to deliver what is pending, the client publishes
"offline" and disconnects. Whatever is not delivered by then stays in the outbox for next time.

systemd: ``READY=1`` once the outbox, the prescription and MQTT are set up; ``WATCHDOG=1``
every half watchdog period, but only while the worker thread is alive and keeping up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hipsense import __version__
from hipsense.device.events import LinkEvent, LinkEventKind
from hipsense.device.joining import AccGyroJoiner
from hipsense.device.samples import ImuSamples
from hipsense.protocol import Envelope, Prescription, build_status
from hipsense.publish import Outbox, OutboxError, PrescriptionStore, open_outbox
from hipsense.service.config import ServiceConfig
from hipsense.service.engine import SessionEngine
from hipsense.service.journal import SampleJournal, default_journal_path
from hipsense.service.livetrace import live_trace_from_environment
from hipsense.service.logs import fields
from hipsense.service.reserve import CHECK_S as RESERVE_CHECK_S
from hipsense.service.reserve import CardReserve
from hipsense.service.results import ResultPublisher
from hipsense.service.spill import SpillFile, default_spill_path
from hipsense.service.state import SessionStateStore
from hipsense.service.systemd import Notifier
from hipsense.service.clocksync import clock_synchronized
from hipsense.service.timebase import Timebase
from hipsense.service.voice import Voice, make_speaker

if TYPE_CHECKING:  # the link (and bleak) is imported where links are opened: service.sensors
    from hipsense.device.ble import SensorLink

__all__ = ["EngineWorker", "Service", "open_outbox_with_reserve", "read_sensor", "run_service", "store_status"]

log = logging.getLogger("hipsense.service")

QUEUE_MAX_ITEMS = 4096  # ~160 s of 100 Hz WitMotion notifications: far more than a hiccup
DRAIN_ON_STOP_S = 5.0
STALL_S = 10.0  # worker silent this long → stop pinging the systemd watchdog
TRIM_FIRST_S, TRIM_EVERY_S = 5.0, 600.0  # see memory.py
FLOOR_CHECK_S = 60.0  # how often the outbox's first held seq is compared with the last status's
UNSAVED_STATUS_S = 60.0  # while the outbox cannot be written, a status with unsaved_results this often
_MAX_UNSAVED = 1_000_000  # status.json's bound on unsaved_results


class EngineWorker:
    """The processing thread: everything the engine does happens here, in arrival order."""

    def __init__(self, engine: SessionEngine, *, on_status: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self._queue: queue.Queue[tuple[str, Any, float]] = queue.Queue(maxsize=QUEUE_MAX_ITEMS)
        self._thread = threading.Thread(target=self._run, name="hipsense-engine", daemon=True)
        self._on_status = on_status
        self.heartbeat = time.monotonic()
        self.dropped = 0
        self.failed: BaseException | None = None
        # wall-clock times the item being processed was queued and taken off the queue (livetrace.py)
        self.submitted = self.dequeued = 0.0

    def stamps(self) -> tuple[float, float]:
        return self.submitted, self.dequeued

    def start(self) -> None:
        self._thread.start()

    def submit(self, kind: str, payload: Any = None) -> None:
        """Queue work from any thread (never blocks: a full queue drops and counts)."""
        try:
            self._queue.put_nowait((kind, payload, time.time()))
        except queue.Full:
            self.dropped += 1
            if self.dropped in (1, 100) or self.dropped % 10_000 == 0:
                log.error("processing is behind; sensor data dropped", extra=fields(dropped=self.dropped))

    def stop(self, timeout: float = 30.0) -> None:
        """Process what is queued, then shut the engine down (flush, summary) and end the thread."""
        self._queue.put(("stop", None, time.time()))
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        engine = self.engine
        next_tick = time.monotonic()
        try:
            while True:
                try:
                    kind, payload, self.submitted = self._queue.get(timeout=0.5)
                except queue.Empty:
                    kind, payload = "idle", None
                self.dequeued = time.time()
                now = time.monotonic()
                self.heartbeat = now
                if kind == "samples":
                    engine.on_samples(*payload)
                elif kind == "event":
                    engine.on_link_event(*payload)
                elif kind == "prescription":
                    engine.on_prescription(payload)
                elif kind == "status" and self._on_status is not None:
                    self._on_status()
                elif kind == "call":
                    payload()
                elif kind == "stop":
                    engine.shutdown()
                    return
                if now >= next_tick:
                    engine.tick()
                    next_tick = now + 1.0
        except BaseException as exc:  # reported; the watchdog pings stop, systemd restarts us
            self.failed = exc
            log.exception("the processing thread failed")


class Service:
    """One run of the service with a validated :class:`ServiceConfig`."""

    def __init__(self, config: ServiceConfig, *, environ: dict[str, str] | None = None) -> None:
        self.config = config
        self._environ = environ
        self.notifier = Notifier(environ)
        self._stop = asyncio.Event()
        self.worker: EngineWorker | None = None
        self.client: Any = None

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        from hipsense.publish.mqtt import MqttClient  # paho: only when actually running

        cfg = self.config
        patient = cfg.mqtt.patient_id
        state_dir = cfg.service.state_dir
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        log.info("starting", extra=fields(version=__version__, config=cfg.describe()))
        outbox, reserve = open_outbox_with_reserve(state_dir, cfg.service.card_reserve_mib * 1024 * 1024)
        store = PrescriptionStore(state_dir / "prescription.json", patient=patient)
        if store.current is not None:
            log.info("cached prescription loaded", extra=fields(version=store.current.version))
        else:
            log.info("no cached prescription yet; waiting for one from the broker")
        scale = cfg.emulator.speed if any(s.backend == "emulator" for s in cfg.sensors) else 1.0
        timebase = Timebase(scale)
        client = MqttClient(mqtt_settings(cfg), patient=patient, outbox=outbox, software_version=__version__)
        self.client = client
        spill_path = default_spill_path(patient, outbox.path, self._environ)
        if spill_path is None:
            log.warning("no RAM-backed directory for results the outbox cannot take (RUNTIME_DIRECTORY, "
                        "XDG_RUNTIME_DIR, /dev/shm): on a full card they wait in memory only")
        publisher = ResultPublisher(patient, outbox, notify=client.notify_outbox, send_live=client.publish_live,
                                    live_rate_hz=cfg.service.live_rate_hz,
                                    spill=SpillFile(spill_path) if spill_path is not None else None,
                                    # a replayed recording (the demo, the tests) is not stamped from a patient's clock
                                    clock_synced=None if scale != 1.0 or any(
                                        s.backend == "emulator" for s in cfg.sensors) else clock_synchronized)
        voice = Voice(make_speaker(cfg.service.voice))
        journal_path = default_journal_path(patient, outbox.path, self._environ)
        if journal_path is None:
            log.warning("no RAM-backed directory for the sample journal: a restart loses the rep in progress")
        engine = SessionEngine(
            sensor_sides=[s.side for s in cfg.sensors], publisher=publisher, voice=voice, timebase=timebase,
            settings=cfg.session,
            state=SessionStateStore(state_dir / "session.json", outbox=outbox, held=publisher.held_state),
            prescription=store.current,
            batch_s=min(0.25, 1.0 / cfg.service.live_rate_hz),
            gyroscopes=[s.gyroscope for s in cfg.sensors],
            journal=SampleJournal(journal_path, patient=patient, timebase=timebase) if journal_path else None,
        )

        def put_status() -> None:  # on the worker thread: the outbox does disk I/O
            store_status(outbox, patient, engine, timebase, notify=client.notify_outbox, publisher=publisher,
                         publish_direct=client.publish_when_connected,  # a reconnect sends a fresh one
                         reserve=reserve)

        worker = EngineWorker(engine, on_status=put_status)
        self.worker = worker
        trace = live_trace_from_environment(worker.stamps, self._environ)
        client.live_trace = trace
        engine.on_status_change = lambda: put_status()
        ha = None
        home = None
        if cfg.homeassistant.enabled:
            from hipsense.service.homeassistant import HomeAssistantBridge, HomePublisher

            home = HomePublisher.connect(cfg.homeassistant, patient)  # the home's broker, never the clinic's
            home.start()
            ha = HomeAssistantBridge(cfg.homeassistant, patient, home, state_path=state_dir / "today.json",
                                     plan=engine.plan)
            publisher.on_stored.append(ha.on_result)
            worker.submit("call", ha.announce)
        book = None
        if cfg.patient_page.enabled:  # today's progress for the page, kept from the stored results
            from hipsense.service.checkins import TodayBook

            book = TodayBook(state_dir / "patient_today.json")
            publisher.on_stored.append(book.on_result)
            publisher.on_stored.append(lambda kind, envelope: _ask_for_pain(voice, kind, envelope))
        worker.start()

        def on_prescription(prescription: Prescription) -> None:  # paho's thread: hand over
            worker.submit("prescription", prescription)

        client.follow_prescription(store, on_prescription)
        client.start()
        loop = asyncio.get_running_loop()
        # SIGHUP too: the terminal of someone running `hipsense run` by hand was closed.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self.request_stop)
        self.notifier.ready(f"patient {patient}, {len(cfg.sensors)} sensor(s)")
        log.info("ready", extra=fields(patient=patient, sensors=len(cfg.sensors), systemd=self.notifier.enabled))
        page = self._start_patient_page(engine, worker, timebase, book) if book is not None else None

        from hipsense.service.sensors import open_links

        try:
            async with open_links(cfg.sensors, cfg.emulator, timebase) as links:
                readers = [asyncio.create_task(self._read(i, link, worker), name=f"sensor {i}")
                           for i, link in enumerate(links)]
                housekeeping = asyncio.create_task(
                    self._housekeeping(worker, client, outbox, patient, publisher, reserve), name="housekeeping")
                stop = asyncio.create_task(self._stop.wait(), name="stop")
                done, _ = await asyncio.wait([*readers, housekeeping, stop], return_when=asyncio.FIRST_COMPLETED)
                for task in (*readers, housekeeping, stop):
                    task.cancel()
                await asyncio.gather(*readers, housekeeping, stop, return_exceptions=True)
                for task in done:
                    if task is not stop and not task.cancelled() and task.exception() is not None:
                        log.error("stopping after an error", exc_info=task.exception())
        finally:
            self.notifier.stopping()
            log.info("stopping")
            if page is not None:
                page.stop()
            worker.stop()
            await asyncio.to_thread(self._drain, client, outbox)
            client.stop()
            if home is not None:
                home.stop()
            outbox.close()
            voice.close()
            if trace is not None:
                trace.close()
            log.info("stopped", extra=fields(stored=publisher.stored, live_sent=publisher.live_sent,
                                             dropped=worker.dropped))
        return 1 if worker.failed is not None else 0

    def _start_patient_page(self, engine: SessionEngine, worker: EngineWorker, timebase: Timebase,
                            book: Any) -> Any:
        """The patient's page (after READY: it never delays the start); None if it cannot listen."""
        from hipsense.service.checkins import CheckIns
        from hipsense.service.patient_page import PatientPage

        section = self.config.patient_page
        checkins = CheckIns(engine, lambda job: worker.submit("call", job), utc_now=timebase.utc_now)
        try:
            return PatientPage(book, checkins, host=section.host, port=section.port).start()
        except OSError as exc:  # the counting matters more than the page: say so and go on
            log.error("patient page not available: cannot listen on %s:%s: %s", section.host, section.port, exc)
            return None

    async def _read(self, index: int, link: SensorLink, worker: EngineWorker) -> None:
        await read_sensor(index, link, worker, gyroscope=self.config.sensors[index].gyroscope)

    async def _housekeeping(self, worker: EngineWorker, client: Any, outbox: Outbox, patient: str,
                            publisher: ResultPublisher | None = None, reserve: CardReserve | None = None) -> None:
        """Watchdog pings while the worker is healthy; a fresh sensor status after each reconnect,
        and whenever the outbox's first held result moved (the dashboard acknowledges past a
        gap only once the status says nothing below it will come, see docs/mqtt.md); when the
        outbox stops or starts again taking results, and every minute while it cannot (the
        status then says how many wait: the therapist learns of the full card); when the card's
        reserve is given to the outbox or made again; and every minute while it is not in place,
        whether it fits again (a statvfs; the file is made on a thread)."""
        from hipsense.service.memory import release_free_memory

        interval = min(1.0, (self.notifier.watchdog_s or 2.0) / 2)
        was_connected = False
        trim_at = time.monotonic() + TRIM_FIRST_S  # once start-up (imports, first connect) is over
        floor_at, floor = time.monotonic() + FLOOR_CHECK_S, None
        was_unwritable, unsaved_at = False, 0.0
        reserve_was, reserve_at = reserve.status if reserve is not None else None, time.monotonic() + RESERVE_CHECK_S
        while True:
            now = time.monotonic()
            if reserve is not None:
                if reserve.status != reserve_was:  # given to the outbox (by a write), or made again
                    reserve_was, reserve_at = reserve.status, now + RESERVE_CHECK_S
                    worker.submit("status")
                elif reserve.status is not None and now >= reserve_at:  # does it fit again? (told next round)
                    reserve_at = now + RESERVE_CHECK_S
                    await asyncio.to_thread(reserve.ensure)
            unwritable = publisher is not None and publisher.unwritable
            if unwritable != was_unwritable or (unwritable and now >= unsaved_at):
                worker.submit("status")
                unsaved_at = now + UNSAVED_STATUS_S
                was_unwritable = unwritable
            if now >= trim_at:
                release_free_memory()
                trim_at = now + TRIM_EVERY_S
            if worker.alive and now - worker.heartbeat < STALL_S:
                self.notifier.watchdog()
            elif not worker.alive:
                raise RuntimeError("the processing thread died") from worker.failed
            connected = client.is_connected()
            if connected and not was_connected:
                worker.submit("status")  # the client's own "online" carries no sensor list
            if connected and now >= floor_at and client.sender is not None:
                floor_at = now + FLOOR_CHECK_S
                first = await asyncio.to_thread(outbox.first_unconfirmed_seq, patient)
                # A gap the dashboard waits for and this outbox cannot fill: say so, once.
                if first > client.sender.acknowledged(patient) + 1 and first != floor:
                    worker.submit("status")
                    floor = first
            was_connected = connected
            await asyncio.sleep(interval)

    @staticmethod
    def _drain(client: Any, outbox: Outbox) -> None:
        """Give the sender a moment to deliver the session summary before disconnecting."""
        if not client.is_connected():
            return
        deadline = time.monotonic() + DRAIN_ON_STOP_S
        client.notify_outbox()
        while time.monotonic() < deadline and outbox.stats().pending_total > 0:
            time.sleep(0.05)


async def read_sensor(index: int, link: SensorLink, worker: EngineWorker, *, gyroscope: bool) -> None:
    """Hand sensor ``index``'s decoded stream to the worker, in order.

    Polar and MetaMotion send acceleration and angular rate apart: when such a sensor streams
    its gyroscope (``sensor.gyroscope``), its blocks are joined here (device/joining.py), or the
    engine would count them on the accelerometer alone. Every other block goes straight on: a
    joiner would only hold an accelerometer-only sensor's blocks for its wait (voice, countdown
    and live angle that much late). A dropped link hands on what the joiner holds before the
    DISCONNECTED event: the engine sees the samples before the news, and the last block before
    a drop that never recovers is not held forever.
    """
    joiner = AccGyroJoiner() if gyroscope and type(link.decoder).streams_apart else None

    def release(blocks: list[ImuSamples]) -> None:
        for block in blocks:
            worker.submit("samples", (index, block))

    try:
        async for item in link.decoded():
            if isinstance(item, ImuSamples):
                release(joiner.push(item) if joiner is not None else [item])
            elif isinstance(item, LinkEvent):
                if joiner is not None and item.kind is LinkEventKind.DISCONNECTED:
                    release(joiner.flush())
                worker.submit("event", (index, item, link.address))
    finally:
        if joiner is not None:
            release(joiner.flush())


def open_outbox_with_reserve(state_dir: Path, reserve_bytes: int) -> tuple[Outbox, CardReserve]:
    """The outbox in ``state_dir`` (a corrupt one is set aside, not fatal) and the card reserve
    beside it (``outbox.reserve``, made now if it fits): a write the full card refuses releases
    the reserve and is tried again (service/reserve.py). Opening needs room too: after a clean
    stop SQLite makes its -shm index again (32 KiB), which a full card refuses
    (SQLITE_IOERR_SHMSIZE), and the service could not start; the reserve gives it that room."""
    reserve = CardReserve(state_dir / "outbox.reserve", reserve_bytes)
    reserve.ensure()
    try:
        outbox = open_outbox(state_dir / "outbox.sqlite")
    except OutboxError as exc:
        if not exc.full or not reserve.release(exc):
            raise
        outbox = open_outbox(state_dir / "outbox.sqlite")
    outbox.on_full = reserve.release
    return outbox, reserve


def store_status(outbox: Outbox, patient: str, engine: SessionEngine, timebase: Timebase, *,
                 notify: Callable[[], None], publisher: ResultPublisher | None = None,
                 publish_direct: Callable[[Envelope], bool] | None = None,
                 reserve: CardReserve | None = None) -> None:
    """Put the Pi's status (sensors, and ``outbox_first_seq``: lets the dashboard acknowledge past
    results no one can send any more) in the outbox. On the worker thread: the outbox does disk
    I/O. If the outbox cannot be written (disk full), the status is skipped with an error: it is
    sent again on the next change or reconnect, and the processing thread must go on.

    While the outbox cannot be written (``publisher.unwritable``, or this very write fails), the
    status carries ``unsaved_results`` (the results waiting outside it) and goes straight to the
    broker through ``publish_direct`` (retained, QoS 1; the service's refuses while offline, and
    sends one after each reconnect): the therapist learns of the full card (docs/mqtt.md, Status).
    While the card's reserve is not in place it carries ``card_reserve`` (``reserve.status``)."""
    def status(unsaved: int | None) -> Envelope:
        try:
            first: int | None = outbox.first_unconfirmed_seq(patient)
        except OutboxError:
            first = None
        return build_status(patient, online=True, t=timebase.utc_now(), software_version=__version__,
                            sensors=engine.sensors_status(), outbox_first_seq=first,
                            unsaved_results=None if unsaved is None else min(unsaved, _MAX_UNSAVED),
                            card_reserve=None if reserve is None else reserve.status)

    unwritable = publisher is not None and publisher.unwritable
    if not unwritable or not publisher.held:  # nothing waits outside the outbox: it may take this
        try:
            outbox.put_envelope(status(None))
        except OutboxError as exc:
            log.error("status not stored: %s", exc)
            if publisher is not None:
                # A card that fills while nothing is counted: the status says so (0 waiting) every
                # minute until one is stored, which clears it on the dashboard.
                publisher.unwritable = unwritable = True
        else:
            if publisher is not None:
                publisher.unwritable = False
            notify()
            return
    if not unwritable or publish_direct is None:
        return
    held = publisher.held
    if publish_direct(status(held)):
        log.warning("status sent straight to the broker: the outbox cannot be written, %d result(s) wait outside it",
                    held, extra=fields(unsaved_results=held))


def _ask_for_pain(voice: Voice, kind: str, envelope: Any) -> None:
    """At the end of a session (not a skipped day), the voice asks for the pain check-in."""
    if kind == "session" and b'"skipped"' not in envelope.payload:
        voice.ask_pain_checkin()


def mqtt_settings(cfg: ServiceConfig) -> Any:
    from hipsense.publish.mqtt import MqttSettings, TlsSettings

    m = cfg.mqtt
    return MqttSettings(
        host=m.host, port=m.port, client_id=m.client_id or f"hipsense-{m.patient_id}",
        username=m.username, password=m.password,
        tls=TlsSettings(ca_file=m.tls_ca_file) if m.tls_ca_file else None,
        keepalive_s=m.keepalive_s, reconnect_min_s=1, reconnect_max_s=30,
    )


def run_service(config_path: str | os.PathLike[str] | None = None) -> int:
    """Load the config, set up logging and run until SIGTERM. Returns the exit code."""
    from hipsense.service.config import load_config
    from hipsense.service.logs import setup_logging

    config = load_config(Path(config_path) if config_path else None)
    setup_logging(config.service.log_format, config.service.log_level)
    return asyncio.run(Service(config).run())
