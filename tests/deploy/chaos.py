"""Chaos for the delivery path, end to end: Pis and dashboard ingests as processes that are
SIGKILLed at random moments, a broker restarted with and without its saved state, and a
check after every Pi death that the Pi forgot nothing the dashboard's database does not hold.

Shape (the deployed one): Mosquitto runs the SHIPPED config (TLS, passwords, per-patient ACL,
``use_username_as_clientid``) on a free port; each Pi is a process with the real outbox
(``open_outbox``, WAL, ``synchronous=FULL``) and the real :class:`MqttClient` with its
end-to-end acknowledgement, producing results at ~30 a second with their producer state in the
result's own transaction (as the service engine does) and a status with ``outbox_first_seq``
on every start (as ``hipsense run`` does); each dashboard instance is a process running the
real :class:`IngestService` on a fresh SQLite file or PostgreSQL database.

What can happen (each kind of blow once first, in random order, then at random; seeded:
``HIPSENSE_CHAOS_SEED`` repeats a run):

* a Pi is SIGKILLed from outside at a random instant, or kills itself at a chosen point:
  right after an outbox commit (before the sender hears of it), right after paho took a
  packet (before the sender counts it in flight), when the PUBACK arrives (before it is
  recorded), after it is recorded, or when the dashboard's acknowledgement arrives (before
  the outbox forgets anything);
* a Pi's wall clock steps back (up to 2 h) between lives or during one;
* a dashboard instance is SIGKILLed (mid-batch: after its commit and before its PUBACK and
  its acknowledgement, or anywhere) and started again;
* the broker is restarted with its saved state (SIGTERM), or SIGKILLed and its persistence
  file deleted: sessions, subscriptions, retained acknowledgements and queued results lost,
  while the Pis keep publishing (the dashboards reconnect 2 s later than the Pis);
* the database goes away for 0.5-2 s: PostgreSQL cuts every ingest connection again and again
  (a restart, a failover), SQLite's file is held by another writer.

After every Pi death: every ``seq`` the Pi handed out is either still in its outbox or in the
dashboard's ``events`` table (a Pi forgets a result only after the dashboard's database has
it). At the end, once the chaos stops: every result is stored exactly once (no ``seq`` twice,
no (set, rep) twice, none missing) and every outbox is empty.

Used by tests/deploy/test_chaos_delivery.py (short, in the default suite) and by
benchmarks/soak_delivery.py (long, prints figures).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select, text

from hipsense.dashboard.db import make_engine
from hipsense.dashboard.db.tables import dead_letters, delivery_gaps, events
from tests.deploy.broker import DASHBOARD_USER, SECOND_DASHBOARD_USER, DeployedBroker

REPO = Path(__file__).resolve().parents[2]

# What must be empty (or 0) for every patient at the end (Chaos.verdict).
BAD_OUTCOMES = ("missing", "seq_twice", "rep_twice", "set_twice", "session_twice", "set_miscounted", "dead_lettered",
                "gaps", "left_in_outbox")
BLOWS = ("kill_pi", "kill_ingest", "broker_restart", "broker_lost", "clock_step", "database_away")
CRASH_POINTS = ("after_commit", "mid_publish", "at_puback", "after_mark_delivered", "at_stored_ack")

PI_PROGRAM = r"""
import json, os, signal, sys, threading, time
cfg = json.loads(sys.argv[1])
_real_time = time.time
_offset = [cfg["clock_offset_s"]]
time.time = lambda: _real_time() + _offset[0]  # the Pi's wall clock, stepped by the test (before any import)

import datetime as dt
from hipsense import protocol as p
from hipsense.publish import outbox as outbox_mod, sender as sender_mod
from hipsense.publish.mqtt import MqttClient, MqttSettings, TlsSettings

crash = cfg.get("crash")
hits = [0]

def point(name):
    if crash is not None and crash["point"] == name:
        hits[0] += 1
        if hits[0] >= crash["after"]:
            os.kill(os.getpid(), signal.SIGKILL)

def wrap(cls, method, before=None, after=None):
    original = getattr(cls, method)
    def wrapped(*args, **kwargs):
        if before: point(before)
        out = original(*args, **kwargs)
        if after: point(after)
        return out
    setattr(cls, method, wrapped)

wrap(outbox_mod.Outbox, "put_sequenced", after="after_commit")
wrap(MqttClient, "send_row", after="mid_publish")
wrap(sender_mod.OutboxSender, "published", before="at_puback")
wrap(outbox_mod.Outbox, "mark_delivered", after="after_mark_delivered")
wrap(outbox_mod.Outbox, "confirm_stored", before="at_stored_ack")

patient = cfg["patient"]
outbox = outbox_mod.open_outbox(cfg["outbox"])
client = MqttClient(MqttSettings(
    host="127.0.0.1", port=cfg["port"], client_id=f"hipsense-{patient}", username=patient,
    password=cfg["password"], tls=TlsSettings(ca_file=cfg["ca"]), reconnect_min_s=1, reconnect_max_s=1,
    storage_timeout_s=1.0, storage_timeout_max_s=2.0, reconnect_grace_s=0.5,
), patient=patient, outbox=outbox)
outbox.put_envelope(p.build_status(patient, online=True, t=time.time(),
                                   outbox_first_seq=outbox.first_unconfirmed_seq(patient)))
client.start()

state = json.loads(outbox.read_state("chaos") or b'{"n": 0}')
session = cfg["session"]

def rep(n):
    def build(seq):
        end = time.time()
        return p.build_rep_event(patient, seq=seq, session_id=session, exercise="clam_shells", side="left",
                                 set_index=1 + n // 50, rep_index=1 + n % 50, t_start=end - 2.0, t_end=end,
                                 rom_deg=30.0 + n % 7, hold_s=1.0, peak_speed_dps=50.0)
    return build

step_at = time.monotonic() + cfg["step_after_s"] if cfg.get("step_after_s") is not None else None
stop_file = cfg["stop_file"]
while not os.path.exists(stop_file):
    if step_at is not None and time.monotonic() >= step_at:
        _offset[0] += cfg["step_s"]  # the clock jumps (back) while the Pi runs
        step_at = None
    n = state["n"]
    state = {"n": n + 1}
    outbox.put_sequenced(patient, rep(n), state={"chaos": json.dumps(state).encode()})
    client.notify_outbox()
    time.sleep(cfg["period_s"])
# Producing stops; delivery goes on until the test ends this process.
threading.Event().wait()
"""

SERVICE_PROGRAM = r"""
import json, os, signal, sys, threading
cfg = json.loads(sys.argv[1])
# `hipsense run` as systemd runs it; the test's crash points and clock steps are for the other Pi.
# When the chaos ends (the stop file), the sensor stops: SIGTERM, which ends the session and
# stores its summary, as `systemctl stop` would; delivery then goes on in a new process.
if os.path.exists(cfg["stop_file"]):
    from hipsense.publish import open_outbox
    from hipsense.service.config import load_config
    from hipsense.service.service import mqtt_settings
    from hipsense.publish.mqtt import MqttClient
    config = load_config(cfg["config"])
    outbox = open_outbox(cfg["outbox"])
    client = MqttClient(mqtt_settings(config), patient=config.mqtt.patient_id, outbox=outbox)
    client.start()
    threading.Event().wait()
from hipsense.service.service import run_service
def stop_when_told():
    import time
    while not os.path.exists(cfg["stop_file"]):
        time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=stop_when_told, daemon=True).start()
sys.exit(run_service(cfg["config"]))
"""

INGEST_PROGRAM = r"""
import json, signal, sys, threading
cfg = json.loads(sys.argv[1])
from hipsense.dashboard.db import make_engine
from hipsense.dashboard.event_store import EventStore
from hipsense.dashboard.ingest import IngestService
from hipsense.publish.mqtt import MqttSettings, TlsSettings
ingest = IngestService(EventStore(make_engine(cfg["db"])), MqttSettings(
    host="127.0.0.1", port=cfg["port"], client_id=cfg["user"], username=cfg["user"], password=cfg["password"],
    tls=TlsSettings(ca_file=cfg["ca"]), clean_start=False, session_expiry_s=3600, reconnect_min_s=2,
    reconnect_max_s=2))
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
ingest.start()
stop.wait()
ingest.stop()
"""


@dataclasses.dataclass
class Figures:
    seed: int
    database: str
    seconds: float = 0.0
    produced: dict[str, int] = dataclasses.field(default_factory=dict)
    stored: dict[str, int] = dataclasses.field(default_factory=dict)
    events: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    checks: int = 0  # outbox-or-database checks after a Pi death
    violations: list[str] = dataclasses.field(default_factory=list)
    settle_s: float = 0.0
    resends: int = 0  # times a Pi sent again what the broker took but the dashboard did not acknowledge

    def summary(self) -> str:
        made = sum(self.produced.values())
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.events.items()))
        return (f"seed {self.seed}, {self.database}, {self.seconds:.0f} s of chaos: {made} results produced, "
                f"{sum(self.stored.values())} stored, {self.checks} checks after a Pi death, "
                f"{len(self.violations)} violations; {self.resends} re-sends for want of an acknowledgement; "
                f"settled {self.settle_s:.1f} s after the chaos; {kinds}")


class _Process:
    def __init__(self, program: str, cfg: dict, log: Path) -> None:
        self.program, self.cfg, self.log = program, cfg, log
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0

    def start(self, **overrides) -> None:
        self.started_at = time.monotonic()
        cfg = {**self.cfg, **overrides}
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        with open(self.log, "a") as log:
            self.process = subprocess.Popen([sys.executable, "-c", self.program, json.dumps(cfg)], stdout=log,
                                            stderr=log, cwd=REPO, env=env)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class Chaos:
    """Two Pis (the deployment's patients A and B), one or two dashboard instances on ``db_url``."""

    def __init__(self, deployment, workdir: Path, db_url: str, *, instances: int, seed: int,
                 service: bool = False) -> None:
        self.broker: DeployedBroker = deployment.broker
        self.workdir = workdir
        self.db_url = db_url
        self.engine = make_engine(db_url)
        self.rng = random.Random(seed)
        self.figures = Figures(seed=seed, database=self.engine.dialect.name)
        self.stop_file = workdir / "stop-producing"
        self._dashboard_password = deployment.dashboard_password
        ca = str(self.broker.pki.ca_cert)
        self.pis: dict[str, _Process] = {}
        self.service = service
        for index, (patient, password) in enumerate((deployment.a, deployment.b)):
            if service and index == 0:  # patient A's Pi is `hipsense run` itself
                self.pis[patient] = self._service_process(patient, password, workdir / f"service-{patient}")
                self.figures.produced[patient] = 0
                continue
            self.pis[patient] = _Process(PI_PROGRAM, {
                "patient": patient, "password": password, "port": self.broker.port, "ca": ca,
                "outbox": str(workdir / f"outbox-{patient}.sqlite"), "session": "01JQ7Z8K3M4N5P6Q7R8S9T0V1W",
                "period_s": 0.03, "stop_file": str(self.stop_file), "clock_offset_s": 0.0, "crash": None,
                "step_after_s": None, "step_s": 0.0,
            }, workdir / f"pi-{patient}.log")
            self.figures.produced[patient] = 0
        users = (DASHBOARD_USER, SECOND_DASHBOARD_USER)[:instances]
        self.ingests = [_Process(INGEST_PROGRAM, {
            "db": db_url, "port": self.broker.port, "ca": ca, "user": user, "password": deployment.dashboard_password,
        }, workdir / f"ingest-{user}.log") for user in users]
        self._clock_offset = {patient: 0.0 for patient in self.pis}
        self._first_blows: list[str] = []

    def _service_process(self, patient: str, password: str, workdir: Path) -> _Process:
        """``hipsense run`` with an emulated WitMotion looping the shipped UCI session (straight-leg
        raises, 3 x 10 with 5 s holds) at 20x, TLS to the deployed broker with the patient's
        account, and a prescription for it retained on the broker."""
        import datetime as dt

        from hipsense import protocol as p
        from tests.deploy.probe import Probe

        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "hipsense.toml"
        config.write_text(
            f'[mqtt]\nhost = "127.0.0.1"\nport = {self.broker.port}\npatient_id = "{patient}"\n'
            f'username = "{patient}"\npassword = "{password}"\ntls_ca_file = "{self.broker.pki.ca_cert}"\n'
            f'[sensor]\nbackend = "emulator"\nside = "right"\n'
            f'[service]\nstate_dir = "{workdir / "state"}"\nvoice = "off"\n'
            f'[session]\nidle_end_s = 60\n[emulator]\nspeed = 20.0\nloop = true\n')
        rx = p.build_prescription(patient, version=1, updated_at=dt.datetime.now(dt.timezone.utc), exercises=[
            p.PrescribedExercise(order=1, exercise="straight_leg_raise", sets=3, reps=10, hold_s=5, sides=("right",))])
        probe = Probe(self.broker.port, ca=self.broker.pki.ca_cert, username=DASHBOARD_USER,
                      password=self._dashboard_password, client_id="chaos-prescriber")
        assert probe.connect() == 0
        assert probe.publish(rx.topic, rx.payload, retain=True) == 0
        probe.close()
        return _Process(SERVICE_PROGRAM, {"config": str(config), "outbox": str(workdir / "state" / "outbox.sqlite"),
                                          "stop_file": str(self.stop_file)}, workdir / "service.log")

    # -- the run ------------------------------------------------------------------------------

    def run(self, seconds: float, settle_timeout: float = 60.0) -> Figures:
        started = time.monotonic()
        for ingest in self.ingests:
            ingest.start()
        for patient in self.pis:
            self._start_pi(patient)
        try:
            while time.monotonic() - started < seconds:
                time.sleep(self.rng.uniform(0.3, 1.2))
                self._reap_pis()
                self._one_blow()
            self.figures.seconds = time.monotonic() - started
            self._reap_pis()
            self._settle(settle_timeout)
        finally:
            self.close()
        return self.figures

    def _one_blow(self) -> None:
        if not self._first_blows:  # every kind of blow once (in random order), then at random
            self._first_blows = list(BLOWS)
            self.rng.shuffle(self._first_blows)
            self._first_blows.append("")
        if self._first_blows[0]:
            action = self._first_blows.pop(0)
        else:
            action = self.rng.choices(BLOWS, weights=[6, 3, 1, 1, 1, 1])[0]
        self.figures.events[action] += 1
        if action == "kill_pi":
            patient = self.rng.choice(sorted(self.pis))
            pi = self.pis[patient]
            if pi.program is SERVICE_PROGRAM and time.monotonic() - pi.started_at < self.rng.uniform(2.0, 8.0):
                patient = next(p for p in sorted(self.pis) if p != patient)  # let `hipsense run` count a little
            self.pis[patient].kill()
            self._after_pi_death(patient)
            time.sleep(self.rng.uniform(0.0, 0.4))
            self._start_pi(patient)
        elif action == "kill_ingest":
            ingest = self.rng.choice(self.ingests)
            ingest.kill()
            time.sleep(self.rng.uniform(0.0, 1.0))
            ingest.start()
        elif action == "broker_restart":
            self.broker.restart()  # SIGTERM saves sessions, subscriptions, retained and queued messages
        elif action == "broker_lost":
            self.broker.stop(signal.SIGKILL)  # nothing saved since the last autosave ...
            for saved in self.broker.broker_dir.glob("mosquitto.db*"):
                saved.unlink()  # ... and not even that: as a broker without persistence
            time.sleep(self.rng.uniform(0.0, 0.5))
            self.broker.start()
        elif action == "database_away":
            self._database_away(self.rng.uniform(0.5, 2.0))
        elif action == "clock_step":
            patient = self.rng.choice(sorted(p for p in self.pis if self.pis[p].program is PI_PROGRAM))
            self.pis[patient].kill()
            self._after_pi_death(patient)
            self._clock_offset[patient] -= self.rng.uniform(60, 7200)
            self._start_pi(patient, step_after_s=self.rng.uniform(0.2, 1.0), step_s=-self.rng.uniform(60, 3600))

    def _database_away(self, seconds: float) -> None:
        """PostgreSQL: every ingest connection cut (as by a server restart or a failover), again
        and again for ``seconds``. SQLite: the file locked by another writer for ``seconds``."""
        if self.engine.dialect.name == "postgresql":
            until = time.monotonic() + seconds
            with self.engine.connect() as connection:
                while time.monotonic() < until:
                    connection.execute(text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
                    time.sleep(0.1)
            return
        with self.engine.connect() as connection:
            connection.exec_driver_sql("BEGIN EXCLUSIVE")
            time.sleep(seconds)
            connection.exec_driver_sql("ROLLBACK")

    def _start_pi(self, patient: str, **overrides) -> None:
        if self.pis[patient].program is SERVICE_PROGRAM:
            self.pis[patient].start()
            return
        crash = None
        if self.rng.random() < 0.5:
            crash = {"point": self.rng.choice(CRASH_POINTS), "after": self.rng.randint(1, 20)}
        self.pis[patient].start(crash=crash, clock_offset_s=self._clock_offset[patient], **overrides)

    def _reap_pis(self) -> None:
        """A Pi that killed itself at its crash point: check, and start it again (systemd's Restart=)."""
        for patient, pi in self.pis.items():
            if pi.process is not None and not pi.alive():
                code = pi.process.returncode
                if code != -signal.SIGKILL:
                    self.figures.violations.append(f"{patient}: the Pi process ended by itself with {code} "
                                                   f"(see {pi.log})")
                self.figures.events["pi_crash_point"] += 1
                pi.kill()
                self._after_pi_death(patient)
                self._start_pi(patient)

    # -- checks -------------------------------------------------------------------------------

    def _outbox(self, patient: str) -> tuple[int, set[int]]:
        path = self.pis[patient].cfg["outbox"]
        if not os.path.exists(path):
            return 0, set()
        db = sqlite3.connect(path, timeout=10)
        try:
            row = db.execute("SELECT last FROM sequences WHERE stream = ?", (patient,)).fetchone()
            held = {seq for (seq,) in db.execute("SELECT seq FROM outbox WHERE stream = ? AND seq IS NOT NULL",
                                                 (patient,))}
        finally:
            db.close()
        return (row[0] if row else 0), held

    def stored_seqs(self, patient: str) -> list[int]:
        with self.engine.connect() as connection:
            return list(connection.execute(select(events.c.seq).where(events.c.patient == patient)).scalars())

    def _after_pi_death(self, patient: str) -> None:
        """The Pi is dead, its outbox frozen: whatever it no longer holds must be in the database."""
        last, held = self._outbox(patient)
        stored = set(self.stored_seqs(patient))  # read after the outbox: the database only grows
        missing = sorted(set(range(1, last + 1)) - held - stored)
        self.figures.checks += 1
        if missing:
            self.figures.violations.append(f"{patient}: forgotten by the Pi but not in the database: {missing[:20]}"
                                           f"{' ...' if len(missing) > 20 else ''} (of 1..{last})")

    def _settle(self, timeout: float) -> None:
        self.stop_file.write_text("")
        for patient, pi in self.pis.items():  # no crash points now: let delivery finish
            if pi.program is SERVICE_PROGRAM and pi.process is not None:
                try:
                    code = pi.process.wait(30)  # SIGTERM by itself: the session summary is stored
                except subprocess.TimeoutExpired:
                    code = None
                if code != 0:
                    self.figures.violations.append(f"{patient}: `hipsense run` did not stop cleanly ({code}; {pi.log})")
            pi.kill()
        for patient in self.pis:
            self._after_pi_death(patient)
            if self.pis[patient].program is SERVICE_PROGRAM:
                self.pis[patient].start()
            else:
                self.pis[patient].start(crash=None, clock_offset_s=self._clock_offset[patient])
        for ingest in self.ingests:
            if not ingest.alive():
                ingest.start()
        begun = time.monotonic()
        while time.monotonic() - begun < timeout:
            done = True
            for patient in self.pis:
                last, held = self._outbox(patient)
                if held or len(set(self.stored_seqs(patient))) < last:
                    done = False
            if done:
                break
            time.sleep(0.2)
        self.figures.settle_s = time.monotonic() - begun
        self.figures.resends = sum(pi.log.read_text(errors="replace").count("not acknowledged as stored; sending them")
                                   for pi in self.pis.values() if pi.log.exists())

    def verdict(self) -> dict[str, object]:
        """What must hold at the end, per patient: every seq once, none missing, (set, rep) once,
        nothing dead-lettered, nothing left in the outbox."""
        out: dict[str, object] = {}
        for patient in self.pis:
            last, held = self._outbox(patient)
            with self.engine.connect() as connection:
                rows = connection.execute(
                    select(events.c.seq, events.c.payload).where(events.c.patient == patient)).all()
                dead = connection.execute(select(dead_letters.c.seq).where(dead_letters.c.patient == patient)).all()
                gaps = connection.execute(select(delivery_gaps.c.after_seq).where(
                    delivery_gaps.c.patient == patient)).all()
            seqs = collections.Counter(seq for seq, _ in rows)
            docs = [json.loads(payload) for _, payload in rows]
            reps = [d for d in docs if "rep_index" in d]
            keys = collections.Counter((d["session_id"], d["exercise"], d["side"], d["set_index"], d["rep_index"])
                                       for d in reps)
            sets = [d for d in docs if "reps" in d and "set_index" in d and "rep_index" not in d]
            set_keys = collections.Counter((d["session_id"], d["exercise"], d["side"], d["set_index"]) for d in sets)
            per_set = collections.Counter((d["session_id"], d["exercise"], d["side"], d["set_index"]) for d in reps)
            self.figures.produced[patient] = last
            self.figures.stored[patient] = len(rows)
            out[patient] = {
                "produced": last,
                "missing": sorted(set(range(1, last + 1)) - set(seqs))[:20],
                "seq_twice": sorted(s for s, n in seqs.items() if n > 1)[:20],
                "rep_twice": sorted(k for k, n in keys.items() if n > 1)[:20],
                "set_twice": sorted(k for k, n in set_keys.items() if n > 1)[:20],
                "session_twice": sorted(k for k, n in collections.Counter(
                    d["session_id"] for d in docs if "adherence" in d).items() if n > 1)[:20],
                # a set counts exactly the reps stored for it
                "set_miscounted": [k for k in set_keys if per_set[k] != next(
                    d["reps"] for d in sets if (d["session_id"], d["exercise"], d["side"], d["set_index"]) == k)][:20],
                "kinds": dict(collections.Counter(
                    "rep" if "rep_index" in d else "set" if "reps" in d and "set_index" in d
                    else "hold" if "hold_index" in d else "session" if "adherence" in d else "other" for d in docs)),
                "dead_lettered": len(dead),
                "gaps": len(gaps),  # results the dashboard was told will never arrive
                "left_in_outbox": len(held),
            }
        return out

    def close(self) -> None:
        for pi in self.pis.values():
            pi.kill()
        for ingest in self.ingests:
            ingest.terminate()
        if self.broker.process is None:
            self.broker.start()  # the fixture stops it

    def dispose(self) -> None:
        self.engine.dispose()


def database_url(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def ping(engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
