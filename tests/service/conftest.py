"""Fixtures for the service tests: a real Mosquitto, the real ``hipsense run`` in a subprocess
with an emulated sensor (Bumble virtual radio + WitMotion emulator replaying the shipped UCI
recording, straight-leg raise, 3 x 10 reps with 5 s holds), and a de-duplicating subscriber
that plays the dashboard.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hipsense import protocol as p
from tests.mosquitto import DASHBOARD_PASSWORD, DASHBOARD_USER, Mosquitto

PATIENT, PASSWORD = "p-0001", "pi-secret"
SPEED = 20.0  # the 236 s recording in about 12 s
REPO = Path(__file__).resolve().parents[2]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def prescription(version: int = 1, *, sets: int = 3, reps: int = 10) -> p.Envelope:
    return p.build_prescription(
        PATIENT, version=version, updated_at=dt.datetime.now(dt.UTC),
        exercises=[p.PrescribedExercise(order=1, exercise="straight_leg_raise", sets=sets, reps=reps, hold_s=5,
                                        sides=("right",))],
    )


class Dashboard:
    """Subscribes like a dashboard ingester (persistent session), stores each id once and
    acknowledges how far the results are stored, as docs/mqtt.md asks."""

    def __init__(self, broker: Mosquitto, client_id: str = "test-dashboard") -> None:
        from hipsense.publish.mqtt import MqttClient, MqttSettings

        self.by_id: dict[str, p.Message] = {}
        self.deliveries = 0
        self.statuses: list[dict[str, Any]] = []
        self.live = 0
        self.lock = threading.Lock()
        self.client = MqttClient(MqttSettings(
            host="127.0.0.1", port=broker.port, client_id=client_id,
            username=DASHBOARD_USER if broker.authenticated else None,
            password=DASHBOARD_PASSWORD if broker.authenticated else None,
            clean_start=False, session_expiry_s=600, reconnect_min_s=1, reconnect_max_s=1))
        self.client.subscribe(p.subscription_filter(patient=PATIENT), self._on_event)
        self.client.subscribe(p.build_topic(p.MessageKind.STATUS, PATIENT), self._on_status)
        self.client.subscribe(p.build_topic(p.MessageKind.LIVE, PATIENT), self._on_live, qos=0)

    def _on_event(self, message: p.Message) -> None:
        with self.lock:
            self.deliveries += 1
            self.by_id.setdefault(message.message_id, message)
            stored = {m.seq for m in self.by_id.values()}
            mark = 0
            while mark + 1 in stored:
                mark += 1
        if mark:  # the end-to-end acknowledgement a real dashboard sends after storing
            self.client.publish_nowait(p.build_stored_ack(message.patient, mark))

    def _on_status(self, message: p.Message) -> None:
        with self.lock:
            self.statuses.append(dict(message.data))

    def _on_live(self, message: p.Message) -> None:
        with self.lock:
            self.live += 1

    def events(self, kind: p.MessageKind | None = None) -> list[p.Message]:
        with self.lock:
            found = [m for m in self.by_id.values() if kind is None or m.kind is kind]
        return sorted(found, key=lambda m: m.seq)

    def seqs(self) -> list[int]:
        return [m.seq for m in self.events()]

    def publish(self, topic: str, payload: bytes, *, retain: bool = True) -> None:
        info = self.client._client.publish(topic, payload, qos=1, retain=retain)  # raw bytes on purpose
        info.wait_for_publish(5)

    def __enter__(self) -> Dashboard:
        self.client.start()
        assert self.client.wait_connected(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.stop()


class ServiceProcess:
    """``python -m hipsense run --config …`` with JSON logs captured to a file."""

    def __init__(self, workdir: Path, broker: Mosquitto, *, sensor_type: str = "witmotion",
                 sensor: dict[str, Any] | None = None, recording: Path | None = None, speed: float = SPEED,
                 env: dict[str, str] | None = None, **session: Any) -> None:
        self.workdir = workdir
        self.env = env or {}
        self.state_dir = workdir / "state"
        self.config = workdir / "hipsense.toml"
        self.log_path = workdir / "service.log"
        session_lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in {"idle_end_s": 60, **session}.items())
        sensor_lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in (sensor or {}).items())
        emulator_lines = f"recording = {json.dumps(str(recording))}\n" if recording is not None else ""
        auth = f'username = "{PATIENT}"\npassword = "{PASSWORD}"\n' if broker.authenticated else ""
        self.config.write_text(
            f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\npatient_id = "{PATIENT}"\n{auth}'
            f'[sensor]\ntype = "{sensor_type}"\nbackend = "emulator"\nside = "right"\n{sensor_lines}'
            f'[service]\nstate_dir = "{self.state_dir}"\nvoice = "off"\n'
            f'[session]\n{session_lines}\n'
            f'[emulator]\nspeed = {speed}\n{emulator_lines}'
        )
        self.process: subprocess.Popen | None = None
        self.runs = 0

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        env.pop("NOTIFY_SOCKET", None)
        log = open(self.log_path, "a")
        self.process = subprocess.Popen([sys.executable, "-m", "hipsense", "run", "--config", str(self.config)],
                                        stdout=log, stderr=log, env=env, cwd=REPO)
        log.close()
        self.runs += 1

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"msg": line})
        return out

    def logged(self, text: str) -> list[dict[str, Any]]:
        return [entry for entry in self.logs() if text in entry.get("msg", "")]

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 20) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def stop_if_running(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    pytest.importorskip("bumble")
    made: list[ServiceProcess] = []

    def make(broker: Mosquitto, **options: Any) -> ServiceProcess:
        workdir = tmp_path / f"pi{len(made)}"
        workdir.mkdir()
        service = ServiceProcess(workdir, broker, **options)
        made.append(service)
        return service

    yield make
    for service in made:
        service.stop_if_running()
