"""The MQTT client: the ONLY module that imports paho.

paho-mqtt is the project's mandated client and the Eclipse reference implementation;
we use its threaded API (``loop_start``) directly because the outbox sender is a thread
too, and keep every paho type and return code inside this module: callers see
:class:`MqttClient`, protocol :class:`~hipsense.protocol.Envelope` objects, and
:class:`~hipsense.publish.errors.MqttError`.

What it does
    * MQTT 5 by default; if the broker answers "unsupported protocol version" the client is
      rebuilt for MQTT 3.1.1 (no message expiry or content type there; everything else works).
    * TLS with a CA file (and optionally a client certificate), username/password.
    * Reconnects by itself with exponential backoff (paho's loop thread), including when
      the broker is down at start.
    * With ``patient`` set (the Pi): a retained last will "offline" on the status topic, a
      retained "online" status on every connect, and an explicit "offline" on clean stop.
    * With an ``outbox``: an :class:`~hipsense.publish.sender.OutboxSender` drains it (paho's
      ``on_publish`` with packet-id tracking). With ``patient`` set too, it subscribes to the
      dashboard's end-to-end acknowledgement (``hipsense/v1/<patient>/stored``) and a result
      leaves the outbox only when that covers it, not on the broker's PUBACK (docs/mqtt.md);
      and to the dashboard's "ingest online" announcement, after which what is delivered and
      unacknowledged is sent again within seconds (:mod:`hipsense.protocol.ingest_online`).
    * Subscriptions with validated messages (:meth:`MqttClient.subscribe`), restored on every
      reconnect; :meth:`MqttClient.follow_prescription` on top of it.
    * For an ingester (the dashboard): shared subscriptions and acknowledgements deferred until
      the message is stored (:meth:`MqttClient.subscribe_deferred`), fire-and-forget QoS 1
      publishing (:meth:`MqttClient.publish_nowait`), and a retained announcement after every
      (re)subscribe (:meth:`MqttClient.announce_on_connect`).
    * Connection failures are logged with their reason and the retry cadence, once per reason
      (and again every ``_REPEAT_LOG_S`` while they last), not once per attempt.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import ssl
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from hipsense.protocol import (
    INGEST_ONLINE_TOPIC,
    Envelope,
    Message,
    MessageKind,
    Prescription,
    ProtocolError,
    build_status,
    build_topic,
    parse_ingest_online,
    parse_message,
)
from hipsense.publish.errors import MqttError
from hipsense.publish.outbox import Outbox, OutboxRow
from hipsense.publish.prescriptions import PrescriptionStore
from hipsense.publish.sender import OutboxSender
from hipsense.publish.throttle import LiveThrottle

log = logging.getLogger(__name__)

_UNSUPPORTED_PROTOCOL_VERSION = 0x84
_REPEAT_LOG_S = 300.0  # a connection failure that persists is logged again this often


@dataclasses.dataclass(frozen=True, slots=True)
class TlsSettings:
    """TLS to the broker: the CA that signed its certificate, optionally a client certificate."""

    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class MqttSettings:
    """Broker connection settings (built and validated by the config layer).

    ``clean_start=False`` with ``session_expiry_s > 0`` asks the broker to keep the session
    (subscriptions and queued QoS 1 messages) while the client is away: what a dashboard
    ingester wants. The Pi keeps its own outbox and does not need it.
    """

    host: str
    port: int = 1883
    client_id: str = ""
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)  # never in logs
    tls: TlsSettings | None = None
    keepalive_s: int = 30
    prefer_mqtt5: bool = True
    clean_start: bool = True
    session_expiry_s: int = 0
    reconnect_min_s: int = 1
    reconnect_max_s: int = 60
    inflight_window: int = 64
    # The Pi's outbox keeps results until the dashboard's end-to-end acknowledgement covers
    # them; these tune when unacknowledged ones are sent again (see OutboxSender).
    await_storage_ack: bool = True
    storage_timeout_s: float = 60.0
    storage_timeout_max_s: float = 1800.0
    reconnect_grace_s: float = 5.0
    # After a new "ingest online" announcement, unacknowledged results go again within this many
    # seconds (a random delay: every Pi hears it at once).
    ingest_online_jitter_s: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is not a TCP port")
        if not self.clean_start and not self.client_id:
            raise ValueError("a persistent session (clean_start=False) needs a fixed client_id")
        if self.inflight_window < 1:
            raise ValueError("inflight_window must be at least 1")
        if self.ingest_online_jitter_s < 0:
            raise ValueError("ingest_online_jitter_s must not be negative")


MessageHandler = Callable[[Message], None]
_Receiver = Callable[[str, bytes], None]  # (topic, payload); raising means "do not acknowledge"
Ack = Callable[[], None]
DeferredReceiver = Callable[[str, bytes, Ack], None]  # (topic, payload, ack)
_PahoCallback = Callable[[paho.Client, object, paho.MQTTMessage], None]


def shared_filter(group: str, topic_filter: str) -> str:
    """``$share/<group>/<topic_filter>``; ``group`` may not contain ``/``, ``+`` or ``#``.

    The broker hands each message of a shared subscription to one member of the group, so
    several dashboard instances split the load (MQTT 5).
    """
    if not group or any(char in group for char in "/+#"):
        raise ValueError(f"invalid shared-subscription group {group!r}")
    return f"$share/{group}/{topic_filter}"


def plain_filter(topic_filter: str) -> str:
    """The filter incoming topics are matched against (``$share/<group>/`` removed): paho
    matches its per-filter callbacks against the plain topic."""
    if topic_filter.startswith("$share/"):
        return topic_filter.split("/", 2)[2]
    return topic_filter


@dataclasses.dataclass(frozen=True, slots=True)
class _Subscription:
    qos: int
    on_message: _PahoCallback


class MqttClient:
    """A reconnecting MQTT connection for the Pi (``patient``, ``outbox``) or a dashboard.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. Handlers and
    ``on_change`` callbacks run on paho's network thread: keep them short.
    """

    def __init__(
        self,
        settings: MqttSettings,
        *,
        patient: str | None = None,
        outbox: Outbox | None = None,
        software_version: str | None = None,
    ) -> None:
        self.settings = settings
        self.patient = patient
        self.software_version = software_version
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._subscriptions: dict[str, _Subscription] = {}
        self._dropped_filters: list[str] = []  # unsubscribed on every connect (see drop_subscription)
        # Called on paho's thread after every successful connect (keep them short: set an event).
        self.on_connected: list[Callable[[], None]] = []
        self._mqtt5 = settings.prefer_mqtt5
        self._status_topic = build_topic(MessageKind.STATUS, patient) if patient else None
        self._live_throttles: dict[str, LiveThrottle] = {}
        self.rejected_messages = 0
        self.connects = 0  # successful connections so far (1 + reconnects), for operators and tests
        self.session_present = False  # the broker kept this client's session at the last connect
        self.live_trace: Any = None  # a service.livetrace.LiveTrace when the benchmark asks for one
        self.last_connect_error: str | None = None
        self._logged_failure: tuple[str, float] | None = None  # (reason, when), to log it once
        self._refused_mids: dict[int, tuple[ReasonCode, float]] = {}
        e2e = settings.await_storage_ack and patient is not None
        self._sender = OutboxSender(
            outbox, self, window=settings.inflight_window, await_storage=e2e,
            storage_timeout_s=settings.storage_timeout_s, storage_timeout_max_s=settings.storage_timeout_max_s,
            reconnect_grace_s=settings.reconnect_grace_s,
            ingest_online_jitter_s=(min(0.5, settings.ingest_online_jitter_s), settings.ingest_online_jitter_s),
        ) if outbox else None
        self._announcements: list[tuple[str, Callable[[], bytes]]] = []
        self._client = self._build_client()
        if e2e and self._sender is not None:
            self.subscribe(build_topic(MessageKind.STORED, patient), self._on_stored)
            self._add_subscription(INGEST_ONLINE_TOPIC, 1, self._on_ingest_online)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (retrying until the broker is there) and start sending."""
        self._connect(self._client)
        if self._sender:
            self._sender.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish "offline" (if a patient is set), stop sending, and disconnect cleanly."""
        if self._sender:
            self._sender.stop(timeout)
        client = self._client
        if self._status_topic and self._connected.is_set():
            info = client.publish(self._status_topic, build_status(self.patient, online=False).payload, qos=1, retain=True)
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                try:
                    info.wait_for_publish(timeout)
                except (RuntimeError, ValueError):
                    pass  # connection went away meanwhile; the last will says "offline" for us
        self._connected.clear()  # first, so _on_disconnect knows this one is on purpose
        client.disconnect()
        client.loop_stop()

    def __enter__(self) -> MqttClient:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected (True) or ``timeout`` seconds passed (False)."""
        return self._connected.wait(timeout)

    def is_connected(self) -> bool:
        return self._connected.is_set()

    @property
    def protocol_version(self) -> str:
        """``"5"`` or ``"3.1.1"``: what the client speaks now."""
        return "5" if self._mqtt5 else "3.1.1"

    @property
    def sender(self) -> OutboxSender | None:
        return self._sender

    # -- publishing -------------------------------------------------------------------------

    def notify_outbox(self) -> None:
        """Call after ``outbox.put*``: the sender wakes and sends now instead of at its next poll."""
        if self._sender:
            self._sender.notify()

    def publish_live(self, envelope: Envelope) -> bool:
        """Send a live (QoS 0, expiring) message now, bypassing the outbox.

        Returns False when it was dropped: offline (live data is worthless after seconds, so
        it is not stored), or over the protocol's ``LIVE_MAX_RATE_HZ`` for this topic. Call it
        for every new angle; the throttle picks which ones go out.
        """
        if not self._connected.is_set():
            return False
        throttle = self._live_throttles.setdefault(envelope.topic, LiveThrottle())
        if not throttle.allow(time.monotonic()):
            return False
        trace = self.live_trace
        built = time.time() if trace is not None else 0.0
        info = self._client.publish(
            envelope.topic, envelope.payload, qos=envelope.qos, retain=envelope.retain,
            properties=self._properties(envelope.expiry_s),
        )
        if trace is not None:
            trace.published(envelope.payload, info.mid, built, time.time())
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def publish(self, envelope: Envelope, *, timeout: float = 10.0) -> None:
        """Publish now and wait for the broker's acknowledgement (e.g. a therapist's prescription).

        Raises MqttError if not acknowledged within ``timeout`` seconds or refused.
        """
        self.publish_bytes(envelope.topic, envelope.payload, qos=envelope.qos, retain=envelope.retain,
                           expiry_s=envelope.expiry_s, timeout=timeout)

    def publish_bytes(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                      expiry_s: int | None = None, timeout: float = 10.0) -> None:
        """:meth:`publish` for a payload outside the hipsense protocol (Home Assistant's).

        Raises MqttError if not acknowledged within ``timeout`` seconds, or if an MQTT 5 broker
        answered with a failure reason code (e.g. 0x87, not authorised: ``reason_code`` says
        which). An MQTT 3.1.1 broker drops a refused publish silently; that cannot be seen.
        """
        started = time.monotonic()
        info = self._client.publish(topic, payload, qos=qos, retain=retain, properties=self._properties(expiry_s))
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise MqttError(f"publish to {topic} not accepted: {paho.error_string(info.rc)}", reason_code=int(info.rc))
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as exc:
            raise MqttError(f"publish to {topic} failed: {exc}") from exc
        if not info.is_published():
            raise MqttError(f"publish to {topic} not acknowledged within {timeout} s")
        with self._lock:
            refused = self._refused_mids.pop(info.mid, None)
        if refused is not None and refused[1] >= started:
            raise MqttError(f"the broker refused the publish to {topic}: {refused[0]}", reason_code=refused[0].value)

    def publish_nowait(self, envelope: Envelope) -> bool:
        """Hand a QoS 1 message to the client without waiting for the broker (e.g. the
        dashboard's storage acknowledgements, sent after every commit). paho keeps it and
        sends it on reconnect if offline. Returns False if the client refused it outright."""
        info = self._client.publish(
            envelope.topic, envelope.payload, qos=envelope.qos, retain=envelope.retain,
            properties=self._properties(envelope.expiry_s),
        )
        return info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN)

    def publish_when_connected(self, envelope: Envelope) -> bool:
        """:meth:`publish_nowait`, but only while connected: False (and nothing kept) when not.

        For a message that is worth sending only as it is now and is sent afresh after the next
        connect (the full-card status, see ``service.store_status``): handed to paho while
        offline, one a minute piled up in its memory, without limit, and went out in a burst
        ahead of the results on reconnect."""
        if not self._connected.is_set():
            return False
        return self.publish_nowait(envelope)

    # RowTransport, for the sender thread.
    def send_row(self, row: OutboxRow, now: float) -> int | None:
        remaining = row.remaining_expiry_s(now)
        if remaining is not None and remaining <= 0:
            remaining = 1  # expired in the last instant; the broker will discard it
        info = self._client.publish(row.topic, row.payload, qos=row.qos, retain=row.retain, properties=self._properties(remaining))
        # NO_CONN with QoS 1 still queues the message inside paho; it is sent on reconnect.
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN and row.qos > 0):
            return info.mid
        return None

    # -- subscribing ------------------------------------------------------------------------

    def subscribe(self, topic_filter: str, handler: MessageHandler, *, qos: int = 1) -> None:
        """Call ``handler`` with every valid protocol message matching ``topic_filter``.

        Invalid messages are logged with the reason and counted in ``rejected_messages``; the
        handler never sees them. Subscriptions are restored after every reconnect. A QoS 1
        message is acknowledged to the broker only after ``handler`` returned, so a handler
        that stores it first loses nothing; if the handler raises, it is not acknowledged
        and a persistent session gets it again after a reconnect. Use filters that do not
        overlap.
        """

        def receive(topic: str, payload: bytes) -> None:
            try:
                message = parse_message(topic, payload)
            except ProtocolError as exc:
                self.rejected_messages += 1
                log.warning("rejected message: %s", exc)
                return
            handler(message)

        self._add_subscription(topic_filter, qos, self._acking(receive))

    def subscribe_deferred(self, topic_filter: str, receive: DeferredReceiver, *, qos: int = 1) -> None:
        """Call ``receive(topic, payload, ack)`` for every message on ``topic_filter``.

        ``topic_filter`` may be a shared one (:func:`shared_filter`). The message is
        acknowledged to the broker only when ``ack()`` is called, from any thread, e.g. after
        a batch of messages was committed; call it in arrival order (MQTT wants PUBACKs in
        order). Payloads are not validated here. If ``receive`` raises, the message is left
        unacknowledged. Restored after every reconnect, like :meth:`subscribe`.
        """

        def on_message(client: paho.Client, userdata: object, raw: paho.MQTTMessage) -> None:
            ack: Ack = functools.partial(client.ack, raw.mid, raw.qos)
            try:
                receive(raw.topic, bytes(raw.payload), ack)
            except Exception:  # must not kill paho's network thread
                log.exception("receiver failed for %s; not acknowledged", raw.topic)

        self._add_subscription(topic_filter, qos, on_message)

    def drop_subscription(self, topic_filter: str) -> None:
        """Unsubscribe from ``topic_filter`` on every (re)connect: a filter an older version
        subscribed to, which a persistent session would otherwise keep for ever."""
        with self._lock:
            self._dropped_filters.append(topic_filter)

    def announce_on_connect(self, topic: str, build: Callable[[], bytes | None]) -> None:
        """Publish ``build()`` retained (QoS 1) on ``topic`` after every connect, right after the
        subscriptions are sent (the broker handles a connection's packets in order, so it is
        subscribed by then): the dashboard's "ingest online" announcement. ``build`` runs on
        paho's thread; it may return None (not this time: :meth:`announce` later)."""
        with self._lock:
            self._announcements.append((topic, build))

    def announce(self, topic: str) -> bool:
        """Publish the announcement registered for ``topic`` now, if connected and its ``build``
        gives one (an announcement put off at connect); True if it was handed to paho."""
        with self._lock:
            builds = [build for name, build in self._announcements if name == topic]
        if not builds or not self._connected.is_set():
            return False
        payload = builds[0]()
        if payload is None:
            return False
        info = self._client.publish(topic, payload, qos=1, retain=True, properties=self._properties(None))
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def _on_ingest_online(self, client: paho.Client, userdata: object, raw: paho.MQTTMessage) -> None:
        try:
            epoch = parse_ingest_online(bytes(raw.payload))
        except ProtocolError as exc:
            self.rejected_messages += 1
            log.warning("rejected message: %s", exc)
        else:
            if self._sender is not None:
                # retain set: the broker's stored copy, sent because we just subscribed
                self._sender.ingest_online(epoch, retained=bool(raw.retain))
        client.ack(raw.mid, raw.qos)

    def _on_stored(self, message: Message) -> None:
        if self._sender is not None:
            self._sender.stored(message.patient, int(message.data["seq"]))

    def follow_prescription(
        self, store: PrescriptionStore, on_change: Callable[[Prescription], None] | None = None
    ) -> None:
        """Subscribe to the store's (retained) prescription topic; ``on_change`` gets each new one.

        The store sees raw payloads (not pre-validated) so that it can log why it rejected
        one and keep the cached prescription.
        """

        def receive(topic: str, payload: bytes) -> None:
            accepted = store.offer(topic, payload)
            if accepted is not None and on_change is not None:
                on_change(accepted)

        self._add_subscription(store.topic, 1, self._acking(receive))

    def _add_subscription(self, topic_filter: str, qos: int, on_message: _PahoCallback) -> None:
        with self._lock:
            self._subscriptions[topic_filter] = _Subscription(qos, on_message)
            client = self._client
        client.message_callback_add(plain_filter(topic_filter), on_message)
        if self._connected.is_set():
            client.subscribe(topic_filter, qos=qos)

    def _acking(self, receive: _Receiver) -> Callable[[paho.Client, object, paho.MQTTMessage], None]:
        def on_message(client: paho.Client, userdata: object, raw: paho.MQTTMessage) -> None:
            try:
                receive(raw.topic, bytes(raw.payload))
            except Exception:  # must not kill paho's network thread; leave it unacknowledged
                log.exception("message handler failed for %s; not acknowledged", raw.topic)
                return
            client.ack(raw.mid, raw.qos)

        return on_message

    # -- paho plumbing ------------------------------------------------------------------------

    def _build_client(self) -> paho.Client:
        s = self.settings
        protocol = MQTTProtocolVersion.MQTTv5 if self._mqtt5 else MQTTProtocolVersion.MQTTv311
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=protocol,
            clean_session=None if self._mqtt5 else s.clean_start,
            manual_ack=True,  # see subscribe(): ack only after the handler returned
        )
        client.reconnect_delay_set(min_delay=s.reconnect_min_s, max_delay=s.reconnect_max_s)
        # The sender keeps at most inflight_window messages in paho; no second limit here.
        client.max_inflight_messages_set(s.inflight_window)
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.tls is not None:
            context = ssl.create_default_context(cafile=str(s.tls.ca_file))
            if s.tls.cert_file is not None:
                context.load_cert_chain(str(s.tls.cert_file), None if s.tls.key_file is None else str(s.tls.key_file))
            client.tls_set_context(context)
        if self._status_topic:
            client.will_set(self._status_topic, build_status(self.patient, online=False).payload, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        for topic_filter, subscription in self._subscriptions.items():
            client.message_callback_add(plain_filter(topic_filter), subscription.on_message)
        return client

    def _connect(self, client: paho.Client) -> None:
        s = self.settings
        properties = None
        if self._mqtt5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = s.session_expiry_s
        client.connect_async(
            s.host, s.port, keepalive=s.keepalive_s,
            clean_start=s.clean_start if self._mqtt5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        client.loop_start()

    def _properties(self, expiry_s: int | None) -> Properties | None:
        if not self._mqtt5:
            return None
        properties = Properties(PacketTypes.PUBLISH)
        properties.PayloadFormatIndicator = 1  # UTF-8 text
        properties.ContentType = "application/json"
        if expiry_s is not None:
            properties.MessageExpiryInterval = int(expiry_s)
        return properties

    def _log_connect_failure(self, reason: str) -> None:
        """Log why the broker cannot be reached and how often we retry: once per reason, and
        again every few minutes while it lasts (paho retries every few seconds)."""
        self.last_connect_error = reason
        now = time.monotonic()
        if self._logged_failure is not None:
            last_reason, when = self._logged_failure
            if last_reason == reason and now - when < _REPEAT_LOG_S:
                return
        self._logged_failure = (reason, now)
        s = self.settings
        log.error("cannot connect to the MQTT broker %s:%d as %r: %s; retrying every %d s, backing off to %d s "
                  "(logged again every %.0f min while it lasts)", s.host, s.port, s.username or s.client_id, reason,
                  s.reconnect_min_s, s.reconnect_max_s, _REPEAT_LOG_S / 60)

    def _on_connect_fail(self, client, userdata) -> None:
        # paho calls this inside its `except OSError:` block, so the exception is at hand.
        exc = sys.exc_info()[1]
        self._log_connect_failure(f"{type(exc).__name__}: {exc}" if exc is not None else "connection failed")

    def _on_connect(self, client, userdata, flags, reason_code: ReasonCode, properties) -> None:
        if reason_code.is_failure:
            if self._mqtt5 and reason_code.value == _UNSUPPORTED_PROTOCOL_VERSION:
                self.last_connect_error = str(reason_code)
                log.warning("broker %s does not speak MQTT 5; falling back to 3.1.1", self.settings.host)
                # Not from this (paho's own) thread: loop_stop() would join itself.
                threading.Thread(target=self._fall_back_to_mqtt311, name="hipsense-mqtt-fallback", daemon=True).start()
            else:
                self._log_connect_failure(f"the broker refused the connection: {reason_code}")
            return
        self.last_connect_error = None
        self.connects += 1
        self.session_present = bool(getattr(flags, "session_present", False))
        if self._logged_failure is not None:
            log.warning("connected to %s:%d again after: %s", self.settings.host, self.settings.port,
                        self._logged_failure[0])
            self._logged_failure = None
        log.info("connected to %s:%d (MQTT %s)", self.settings.host, self.settings.port, self.protocol_version)
        if self._status_topic:
            online = build_status(self.patient, online=True, software_version=self.software_version)
            client.publish(self._status_topic, online.payload, qos=1, retain=True, properties=self._properties(None))
        with self._lock:
            subscriptions = [(topic, sub.qos) for topic, sub in self._subscriptions.items()]
            dropped = [topic for topic in self._dropped_filters if topic not in self._subscriptions]
        # subscribe before leaving the dropped filters: the broker handles the two in order,
        # and a result published between them went to neither (the old shared group left, the
        # new not yet joined) until its Pi sent it again; this way it comes through the old
        # group, at worst twice (stored once)
        if subscriptions:
            client.subscribe(subscriptions)
        if dropped:
            client.unsubscribe(dropped)
        with self._lock:
            announcements = list(self._announcements)
        for topic, build in announcements:
            try:
                payload = build()
                if payload is not None:
                    client.publish(topic, payload, qos=1, retain=True, properties=self._properties(None))
            except Exception:  # must not kill paho's network thread
                log.exception("announcement on %s not published", topic)
        self._connected.set()
        if self._sender:
            self._sender.connected()
        for hook in list(self.on_connected):
            try:
                hook()
            except Exception:  # must not kill paho's network thread
                log.exception("an on_connected hook failed")

    def _on_disconnect(self, client, userdata, flags, reason_code: ReasonCode, properties) -> None:
        if self._connected.is_set():
            log.warning("disconnected from %s:%d: %s; reconnecting", self.settings.host, self.settings.port, reason_code)
        self._connected.clear()

    def _on_publish(self, client, userdata, mid: int, reason_code: ReasonCode, properties) -> None:
        if self.live_trace is not None:
            self.live_trace.written(mid)
        if reason_code.is_failure:
            with self._lock:  # for publish_bytes, which learns of a refusal only here
                if len(self._refused_mids) > 1000:
                    self._refused_mids.clear()
                self._refused_mids[mid] = (reason_code, time.monotonic())
        if self._sender:
            self._sender.published(mid, not reason_code.is_failure)

    def _fall_back_to_mqtt311(self) -> None:
        old = self._client
        old.disconnect()
        old.loop_stop()
        self._mqtt5 = False
        self._client = self._build_client()
        if self._sender:
            self._sender.forget_inflight()  # those messages died with the old paho client
        self._connect(self._client)
