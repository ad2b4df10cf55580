"""What the terminal shows while the demo runs: each rep, set and session as the broker sees it.

It is one more MQTT subscriber (the project's own client, which validates every message), so
a line appears when a result has really travelled from the service through the broker, the
same moment the dashboard can store it. It prints at most once per message id: QoS 1 may
deliver twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from hipsense.protocol import Message, MessageKind, subscription_filter

__all__ = ["Narrator", "describe"]

_SHOWN = (MessageKind.REP, MessageKind.SET, MessageKind.SESSION)


def describe(message: Message) -> str | None:
    """One terminal line for a rep, set or session summary (None for anything else)."""
    d = message.data
    if message.kind is MessageKind.REP:
        flags = f"  [{', '.join(d['flags'])}]" if d["flags"] else ""
        return (f"rep    set {d['set_index']} rep {d['rep_index']:2d}  {d['side']:5s} ROM {d['rom_deg']:4.1f}°  "
                f"hold {d['hold_s']:3.1f} s{flags}")
    if message.kind is MessageKind.SET:
        target = f" of {d['reps_target']}" if d["reps_target"] else ""
        return f"set    {d['set_index']} done: {d['reps']}{target} reps, {d['holds']} holds"
    if message.kind is MessageKind.SESSION:
        return (f"session done: adherence {d['adherence'] * 100:.0f} %, "
                f"{sum(e.get('reps', 0) or 0 for e in d['exercises'])} reps in {d['duration_s']:.0f} s")
    return None


class Narrator:
    """Subscribes to one patient's results and prints them with the time since ``t0``."""

    def __init__(self, broker_port: int, patient_id: str, *, echo: Callable[[str], None], t0: float) -> None:
        from hipsense.publish.mqtt import MqttClient, MqttSettings

        self.echo = echo
        self.t0 = t0
        self.first_rep_at: float | None = None  # seconds since t0
        self.session_done = threading.Event()
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._started = False
        self.client = MqttClient(MqttSettings(host="127.0.0.1", port=broker_port, client_id="hipsense-demo-terminal",
                                              reconnect_min_s=1, reconnect_max_s=2))
        self.client.subscribe(subscription_filter(patient=patient_id), self._on_message)

    def start(self) -> None:
        self.client.start()
        self._started = True

    def stop(self) -> None:
        if self._started:
            self.client.stop(timeout=2)
            self._started = False

    def _on_message(self, message: Message) -> None:  # paho's thread
        with self._lock:
            if message.message_id in self._seen:
                return
            self._seen.add(message.message_id)
            line = describe(message) if message.kind in _SHOWN else None
            if line is None:
                return
            elapsed = time.monotonic() - self.t0
            if message.kind is MessageKind.REP and self.first_rep_at is None:
                self.first_rep_at = elapsed
            self.echo(f"{elapsed:6.1f} s  {line}")
        if message.kind is MessageKind.SESSION:
            self.session_done.set()
