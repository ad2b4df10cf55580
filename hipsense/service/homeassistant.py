"""Optional Home Assistant MQTT discovery: today's reps and adherence as two HA sensors.

For families who run Home Assistant. Off by default (``[homeassistant] enabled = true``), and
then it needs ``broker_host``: the home's own broker, the one Home Assistant uses. Never the
clinic's: its per-patient ACL refuses these topics (before issue 11 the Pi retried them every
30 s for ever, filling the log), and family dashboards have no business on it anyway.

The discovery documents and the state are retained messages, sent by :class:`HomePublisher` on
a connection of their own: only the newest document per topic waits (a missed update is
replaced by the next), nothing goes through the results' outbox. A publish the home broker
refuses (MQTT 5 reason code, e.g. not authorised) is logged once, with the topic and the
reason, and that topic is not tried again until the service restarts.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from hipsense import __version__
from hipsense.protocol import Envelope
from hipsense.service.config import HomeAssistantConfig
from hipsense.service.plan import Plan

__all__ = ["HomeAssistantBridge", "HomePublisher"]

log = logging.getLogger(__name__)
_RETRY_S = 30.0  # a home broker that is down or slow: the newest documents are tried again


class RetainedSink(Protocol):
    def offer(self, topic: str, payload: bytes) -> None:
        """Send ``payload`` retained on ``topic`` soon; a newer offer for the topic replaces it."""


class HomePublisher:
    """The newest retained document per topic, published to the home broker on its own thread.

    ``client`` is an :class:`~hipsense.publish.mqtt.MqttClient` for the home broker (built by
    :meth:`connect`), or anything with ``is_connected()`` and ``publish_bytes(...)``.
    """

    def __init__(self, client: Any, *, retry_s: float = _RETRY_S) -> None:
        self.client = client
        self.retry_s = retry_s
        self.refused: dict[str, str] = {}  # topic -> why, each logged once
        self.published = 0
        self._latest: dict[str, bytes] = {}
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="hipsense-homeassistant", daemon=True)

    @classmethod
    def connect(cls, config: HomeAssistantConfig, patient: str) -> HomePublisher:
        from hipsense.publish.mqtt import MqttClient, MqttSettings, TlsSettings

        settings = MqttSettings(
            host=config.broker_host, port=config.broker_port, client_id=f"hipsense-ha-{patient}",
            username=config.username, password=config.password,
            tls=TlsSettings(ca_file=config.tls_ca_file) if config.tls_ca_file else None,
            reconnect_min_s=1, reconnect_max_s=60,
        )
        return cls(MqttClient(settings))

    def start(self) -> None:
        if hasattr(self.client, "start"):
            self.client.start()
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if hasattr(self.client, "stop"):
            self.client.stop(timeout)

    def offer(self, topic: str, payload: bytes) -> None:
        with self._cond:
            if topic in self.refused:
                return  # refused once, reported once: not retried
            self._latest[topic] = payload
            self._cond.notify_all()

    def _run(self) -> None:
        from hipsense.publish.errors import MqttError

        while True:
            with self._cond:
                while not self._stopping and not (self._latest and self.client.is_connected()):
                    self._cond.wait(1.0)
                if self._stopping:
                    return
                topic, payload = next(iter(self._latest.items()))
                del self._latest[topic]
            try:
                self.client.publish_bytes(topic, payload, qos=1, retain=True, timeout=10.0)
                self.published += 1
            except MqttError as exc:
                with self._cond:
                    if exc.reason_code is not None and exc.reason_code >= 0x80:  # refused, will stay refused
                        self.refused[topic] = str(exc)
                        log.error("the Home Assistant broker refused %s (%s); not retrying it. Grant this "
                                  "account write access to it on the home broker.", topic, exc)
                        continue
                    self._latest.setdefault(topic, payload)  # down or slow: the newest is tried later
                    self._cond.wait(self.retry_s)


class HomeAssistantBridge:
    """Publishes discovery once and the day's totals after every stored result."""

    def __init__(self, config: HomeAssistantConfig, patient: str, sink: RetainedSink, *,
                 state_path: str | os.PathLike[str], plan: Plan | None = None,
                 today: Callable[[], dt.date] = dt.date.today) -> None:
        self.config = config
        self.patient = patient
        self.sink = sink
        self._path = Path(state_path)
        self._plan = plan
        self._today = today
        self.state_topic = config.state_topic or f"hipsense-ha/{patient}/state"
        self.totals = self._load()

    def discovery(self) -> list[tuple[str, dict]]:
        """(topic, config) of each HA sensor."""
        device = {"identifiers": [f"hipsense_{self.patient}"], "name": f"hipsense {self.patient}",
                  "manufacturer": "hipsense", "sw_version": __version__}
        node = self.patient.replace("-", "_")
        sensors = [
            ("reps_today", {"name": "Reps today", "icon": "mdi:counter", "state_class": "total_increasing",
                            "value_template": "{{ value_json.reps_today }}"}),
            ("adherence", {"name": "Adherence", "icon": "mdi:check-circle-outline", "unit_of_measurement": "%",
                           "state_class": "measurement",
                           "value_template": "{{ (value_json.adherence * 100) | round(0) if value_json.adherence is not none else none }}"}),
        ]
        out = []
        for key, extra in sensors:
            doc = {"unique_id": f"hipsense_{node}_{key}", "object_id": f"hipsense_{node}_{key}",
                   "state_topic": self.state_topic, "device": device, **extra}
            out.append((f"{self.config.discovery_prefix}/sensor/hipsense_{node}/{key}/config", doc))
        return out

    def announce(self) -> None:
        for topic, doc in self.discovery():
            self._put(topic, doc)
        self._put(self.state_topic, self.state())
        log.info("home assistant discovery published", extra={"fields": {"state_topic": self.state_topic}})

    def state(self) -> dict:
        self._roll_over()
        return {"reps_today": self.totals["reps"], "adherence": self.totals["adherence"], "date": self.totals["date"]}

    def on_result(self, kind: str, envelope: Envelope) -> None:
        """Observer of :class:`ResultPublisher`: count reps, take adherence from summaries."""
        self._roll_over()
        if kind == "rep":
            self.totals["reps"] += 1
        elif kind == "session":
            self.totals["adherence"] = json.loads(envelope.payload).get("adherence")
        else:
            return
        if kind == "rep" and self._plan is not None and self._plan.lines:
            self.totals["adherence"] = self._plan.adherence()  # running value during the session
        self._save()
        self._put(self.state_topic, self.state())

    def _roll_over(self) -> None:
        today = self._today().isoformat()
        if self.totals.get("date") != today:
            self.totals = {"date": today, "reps": 0, "adherence": None}

    def _put(self, topic: str, doc: dict) -> None:
        self.sink.offer(topic, json.dumps(doc, separators=(",", ":")).encode())

    def _load(self) -> dict:
        try:
            doc = json.loads(self._path.read_text())
            if {"date", "reps", "adherence"} <= set(doc):
                return doc
        except (OSError, ValueError):
            pass
        return {"date": self._today().isoformat(), "reps": 0, "adherence": None}

    def _save(self) -> None:
        # Not fsynced: a lost count here is a display glitch, the results themselves are safe.
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.totals))
        os.replace(tmp, self._path)
