"""A raw paho client for attacking and checking the broker: records every CONNACK, SUBACK,
PUBACK reason code and every message, so a test can say exactly what was tried and refused.

Raw paho rather than hipsense's MqttClient: an attacker does not follow our client's rules
(it retries refused publishes, keeps an outbox), and we want the broker's bare answers.
"""

from __future__ import annotations

import ssl
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho

NOT_AUTHORIZED = 0x87
BAD_CREDENTIALS = 0x86
NO_MATCHING_SUBSCRIBERS = 0x10


class Probe:
    def __init__(self, port: int, *, ca: Path | None, username: str | None = None, password: str | None = None,
                 client_id: str = "", protocol: int = paho.MQTTv5) -> None:
        self.port = port
        self._cond = threading.Condition()
        self.connack: int | None = None  # reason code of the first CONNACK
        self.disconnected = False
        self.messages: list[tuple[str, bytes, bool]] = []
        self.subacks: dict[int, list[int]] = {}
        self.pubacks: dict[int, int] = {}
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                                  reconnect_on_failure=False)
        if username is not None:
            self.client.username_pw_set(username, password)
        if ca is not None:
            self.client.tls_set(ca_certs=str(ca), cert_reqs=ssl.CERT_REQUIRED)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish

    # -- callbacks (paho's network thread) --
    def _notify(self, change) -> None:
        with self._cond:
            change()
            self._cond.notify_all()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self._notify(lambda: setattr(self, "connack", int(reason_code.value)) if self.connack is None else None)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._notify(lambda: setattr(self, "disconnected", True))

    def _on_message(self, client, userdata, msg) -> None:
        self._notify(lambda: self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain))))

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self._notify(lambda: self.subacks.__setitem__(mid, [int(rc.value) for rc in reason_codes]))

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._notify(lambda: self.pubacks.__setitem__(mid, int(reason_code.value)))

    def wait(self, predicate, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    # -- actions --
    def connect(self, timeout: float = 5.0) -> int | None:
        """Reason code of the CONNACK (0 = accepted), or None if the broker never sent one."""
        try:
            self.client.connect("127.0.0.1", self.port, keepalive=30)
        except (OSError, ssl.SSLError):
            return None
        self.client.loop_start()
        self.wait(lambda: self.connack is not None or self.disconnected, timeout)
        return self.connack

    def subscribe(self, topic_filter: str, qos: int = 1) -> list[int]:
        _, mid = self.client.subscribe(topic_filter, qos=qos)
        assert self.wait(lambda: mid in self.subacks), f"no SUBACK for {topic_filter}"
        return self.subacks[mid]

    def publish(self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False) -> int:
        """Reason code of the PUBACK (MQTT 5: 0x87 when the ACL refuses)."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        assert self.wait(lambda: info.mid in self.pubacks), f"no PUBACK for {topic}"
        code = self.pubacks[info.mid]
        return 0 if code == NO_MATCHING_SUBSCRIBERS else code  # 0x10 is a success too

    def received(self, topic: str | None = None) -> list[tuple[str, bytes, bool]]:
        with self._cond:
            return [m for m in self.messages if topic is None or m[0] == topic]

    def wait_for_payload(self, payload: bytes, timeout: float = 5.0) -> bool:
        return self.wait(lambda: any(m[1] == payload for m in self.messages), timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connect_result(port: int, **kwargs) -> int | None:
    """Connect, report the CONNACK reason code, disconnect."""
    probe = Probe(port, **kwargs)
    try:
        return probe.connect()
    finally:
        probe.close()


def settle(seconds: float = 0.2) -> None:
    """Only for checking that something does NOT happen after a positive control already arrived."""
    time.sleep(seconds)
