"""Optional Home Assistant MQTT discovery: today's reps and adherence as two HA sensors.

For families who run Home Assistant on the same broker. Off by default
(``[homeassistant] enabled = true``). The discovery documents and the state are retained
messages that go through the durable outbox as *state* (only the newest per topic is kept), so
they reach HA after an outage too.

The topics lie outside ``hipsense/v1/…``: a clinic broker with the per-patient ACL of
docs/mqtt.md refuses them (the outbox keeps retrying the three small retained rows); grant the
Pi's user ``homeassistant/#`` and the state topic, or use it only with a family broker.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

from hipsense import __version__
from hipsense.protocol import Envelope, Importance
from hipsense.publish import Outbox
from hipsense.service.config import HomeAssistantConfig
from hipsense.service.plan import Plan

__all__ = ["HomeAssistantBridge"]

log = logging.getLogger(__name__)


class HomeAssistantBridge:
    """Publishes discovery once and the day's totals after every stored result."""

    def __init__(self, config: HomeAssistantConfig, patient: str, outbox: Outbox, *, notify: Callable[[], None],
                 state_path: str | os.PathLike[str], plan: Plan | None = None,
                 today: Callable[[], dt.date] = dt.date.today) -> None:
        self.config = config
        self.patient = patient
        self.outbox = outbox
        self._notify = notify
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
        payload = json.dumps(doc, separators=(",", ":")).encode()
        self.outbox.put(topic, payload, qos=1, retain=True, importance=Importance.STATE)
        self._notify()

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
