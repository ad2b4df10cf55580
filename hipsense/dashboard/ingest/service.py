"""The ingest service: subscribe, validate, store in batches, acknowledge after the commit.

Threads: paho's network thread validates each message (``parse_message`` and the plausible
time window) and queues it; one writer thread takes whatever has queued up (up to
``batch_max``), stores it and only then acknowledges those messages to the broker, in arrival
order, and publishes each patient's end-to-end acknowledgement (``hipsense/v1/<patient>/stored``:
every result up to that ``seq`` is stored), which is what lets the Pi forget them. Under load a
batch holds many messages; when idle, a batch is a single message and is stored at once.

Nothing halts intake:

* the database is down: the writer keeps retrying the same batch and acknowledges nothing, so
  the broker keeps (and redelivers) the messages, and the Pis keep them too;
* a message the database refuses (a value it cannot hold): the batch is stored one message at
  a time and the refused one goes to the ``dead_letters`` table with the reason;
* a message that fails validation: dead-lettered with the reason as well (live data is only
  logged), and counted as handled for its patient's acknowledgement.

Subscriptions (see docs/dashboard.md):

* results, ``$share/<group>/hipsense/v1/+/event/#``: shared, so N dashboard instances split
  the work; each message is stored by one of them (and once, thanks to the unique id). The
  group is ``hipsense-dashboard-<random>``, the random part kept in the database
  (:meth:`EventStore.share_group`): Mosquitto checks a member's read ACL only when it hands it
  a message, and drops the message for the whole group if the member may not read it, so a
  Pi's credentials that joined a group named in this source would have the broker throw away
  a share of every patient's results;
* ``hipsense/v1/+/status``: not shared, because a broker sends retained messages to shared
  subscriptions never, and each instance wants every Pi's current state at start;
* ``hipsense/v1/+/live``: not shared, because every instance serves pages that show it. Live
  data goes straight to the :class:`LiveHub`, never to the database.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

from hipsense.dashboard.event_store import BatchResult, DeadLetter, EventStore, dead_letter, dead_letter_of
from hipsense.dashboard.live_hub import LiveHub, Update
from hipsense.protocol import (
    INGEST_ONLINE_TOPIC,
    Envelope,
    Importance,
    Message,
    MessageKind,
    ProtocolError,
    build_ingest_online,
    build_stored_ack,
    build_topic,
    parse_message,
    refuse_implausible_instants,
    subscription_filter,
)
from hipsense.publish.mqtt import Ack, MqttClient, MqttSettings, shared_filter

log = logging.getLogger(__name__)

SHARE_GROUP = "hipsense-dashboard"
"""The prefix of the results' shared-subscription group; the rest is a secret in the database."""
_RETRY_MAX_S = 5.0


@dataclasses.dataclass(slots=True)
class IngestStats:
    """Counters for the operator (each written by one thread only)."""

    received: int = 0
    rejected: int = 0
    stored: int = 0
    duplicates: int = 0
    statuses: int = 0
    batches: int = 0
    live: int = 0
    write_failures: int = 0
    dead_lettered: int = 0
    acks_published: int = 0


def refused_by_database(exc: BaseException) -> bool:
    """True if ``exc`` says the database refused *this data* rather than being unreachable.

    DB-API drivers (sqlite3, psycopg) and SQLAlchemy all name these ``DataError`` (a value
    that does not fit) and ``IntegrityError`` (a constraint); a value SQLAlchemy could not
    even bind (a naive or out-of-range datetime) is a StatementError around a ValueError,
    TypeError or OverflowError. Anything else (connection lost, server restarting,
    serialisation failure, a bug) is retried as it is, never dead-lettered.
    """
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"DataError", "IntegrityError"} or isinstance(exc, OverflowError):
        return True
    return "StatementError" in names and isinstance(getattr(exc, "orig", None), (ValueError, TypeError, OverflowError))


ANNOUNCE_EVERY_S = 120.0
"""The least time between two "ingest online" announcements while the broker keeps the session."""


class IngestService:
    """Subscribe to the broker and store what arrives; ``start()``/``stop()`` or a ``with`` block."""

    def __init__(
        self,
        store: EventStore,
        mqtt: MqttSettings,
        *,
        hub: LiveHub | None = None,
        share_group: str | None = None,
        batch_max: int = 500,
        linger_s: float = 0.005,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
        announce_every_s: float = ANNOUNCE_EVERY_S,
    ) -> None:
        self.store = store
        self.hub = hub
        self.stats = IngestStats()
        self.batch_max = batch_max
        self.linger_s = linger_s
        self._clock = clock
        self.client = MqttClient(mqtt)
        # What receive() hands the writer, oldest first. A deque and three events rather than a
        # queue.Queue: a Queue takes a lock and signals a condition on every put and get (and
        # task_done), about 5 µs a message (issue 14); here receive() appends and signals only
        # when the writer sleeps, and the writer takes a whole batch at once.
        self._inbox: collections.deque[tuple[Message | DeadLetter | None, Ack]] = collections.deque()
        self._inbox_max = 20_000  # then receive() waits (paho stops reading: TCP pushes back)
        self._writer_idle = False
        self._arrived = threading.Event()  # receive() -> an idle writer
        self._full = threading.Event()  # receive() -> a lingering writer: batch_max are waiting
        self._room = threading.Condition()  # the writer -> a receive() waiting for room
        self._busy = False  # the writer holds a batch it has not acknowledged yet (see drain)
        self._stopping = threading.Event()
        self._connected_once = False
        self._writer = threading.Thread(target=self._write_loop, name="hipsense-dashboard-writer", daemon=True)
        # After every connect the prescriptions are published again (retained): a broker that
        # lost its state (no persistence, a crash before its autosave) lost them too, and a Pi
        # without a cached one (a new install) would wait for one for ever.
        self._republish = threading.Event()
        self.client.on_connected.append(self._republish.set)
        self.share_group = share_group  # None: EventStore.share_group's, read when connecting
        self.client.subscribe_deferred(subscription_filter(MessageKind.STATUS), self.receive)
        self.client.subscribe_deferred(subscription_filter(MessageKind.LIVE), self.receive, qos=0)
        # After every (re)subscribe: "ingest online", with a new epoch. A broker that lost the
        # subscription (a restart without its state; Mosquitto 2.0 never restores a shared one)
        # PUBACKed what the Pis sent meanwhile and dropped it; a Pi that hears a new epoch sends
        # again what no acknowledgement covers within seconds instead of at its storage timeout
        # (60 s, doubling to 30 min). See hipsense.protocol.ingest_online.
        # Every announcement makes every Pi send again all it has unacknowledged: at most one per
        # announce_every_s while the broker kept the session (an overloaded ingest whose
        # keep-alive fails reconnects often: a fleet-wide re-send each time fed the overload),
        # and none while the database cannot take what arrives; put off, not dropped (_announcement).
        self.announce_every_s = announce_every_s
        self._announce_lock = threading.Lock()
        self._announced_at: float | None = None
        self._announce_pending = False
        self._writer_failing = False
        self.client.announce_on_connect(INGEST_ONLINE_TOPIC, self._announcement)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, *, connect: bool = True) -> None:
        """Start the writer and (unless ``connect=False``, for feeding :meth:`receive` directly)
        the broker connection, which retries in the background until the broker is there."""
        self._writer.start()
        if connect:
            if self.share_group is None:
                self.share_group = self.store.share_group(SHARE_GROUP)
            self.client.subscribe_deferred(shared_filter(self.share_group, subscription_filter()), self.receive)
            # Before revision 0004 the group was the public SHARE_GROUP: a persistent session
            # would keep that subscription too (every result twice, and a group any Pi can join).
            self.client.drop_subscription(shared_filter(SHARE_GROUP, subscription_filter()))
            self.client.start()
            self._connected_once = True

    def stop(self, timeout: float = 5.0) -> None:
        """Disconnect, then store what was already received (its acks are then moot: the
        persistent session redelivers it, and the unique id keeps it single)."""
        if self._connected_once:
            self.client.stop(timeout)
        self._stopping.set()
        self._writer.join(timeout)
        self.store.close()

    def __enter__(self) -> IngestService:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait_connected(self, timeout: float) -> bool:
        return self.client.wait_connected(timeout)

    # -- receiving (paho's thread) ------------------------------------------------------------

    def receive(self, topic: str, payload: bytes, ack: Ack) -> None:
        """Validate one message and queue it for the writer (rejected ones are logged once and
        dead-lettered, except live data)."""
        self.stats.received += 1
        try:
            message = parse_message(topic, payload)
            refuse_implausible_instants(message.data, now=self._clock(), topic=topic, instants=message.instants)
        except ProtocolError as exc:
            self.stats.rejected += 1
            log.warning("rejected message (%d bytes): %s", len(payload), exc)
            # Acknowledged (a bad message never becomes good), but through the writer's queue
            # so that acknowledgements leave in arrival order and only after the dead letter
            # is stored.
            letter = None if topic.endswith("/live") else dead_letter(topic, payload, str(exc))
            self._put((letter, ack))
            return
        if message.kind is MessageKind.LIVE:
            self.stats.live += 1
            if self.hub is not None:
                self.hub.publish(Update("live", message.patient, message.data))
            return
        if message.kind is MessageKind.PRESCRIPTION:  # not subscribed; a filter mistake
            self._put((None, ack))
            return
        self._put((message, ack))

    def _put(self, item: tuple[Message | DeadLetter | None, Ack]) -> None:
        inbox = self._inbox
        if len(inbox) >= self._inbox_max:
            with self._room:
                while len(inbox) >= self._inbox_max and not self._stopping.is_set():
                    self._room.wait(0.1)
        inbox.append(item)
        # The writer sets its flag before it looks at the inbox a last time and sleeps: either
        # it sees this item, or this sees the flag.
        if self._writer_idle:
            self._arrived.set()
        if len(inbox) >= self.batch_max:
            self._full.set()

    # -- writing (the writer thread) ----------------------------------------------------------

    def _next_batch(self) -> list[tuple[Message | DeadLetter | None, Ack]]:
        inbox = self._inbox
        if not inbox:
            self._writer_idle = True
            self._arrived.clear()
            if not inbox:
                self._arrived.wait(0.2)
            self._writer_idle = False
            if not inbox:
                return []
        # Linger a few milliseconds for more: each database statement costs far more than one
        # row in it, so under load fewer, larger batches store more per second (and the
        # database has CPU to spare). A therapist does not see 5 ms.
        if len(inbox) < self.batch_max and self.linger_s > 0:
            self._full.clear()
            if len(inbox) < self.batch_max:
                self._full.wait(self.linger_s)
        self._busy = True  # before taking them: drain() must see them in one place or the other
        batch = [inbox.popleft() for _ in range(min(len(inbox), self.batch_max))]
        with self._room:
            self._room.notify_all()
        return batch

    def _announcement(self) -> bytes | None:
        """The "ingest online" payload, or None to put it off (paho's thread at a connect, or
        the writer's for one put off): announced when the broker lost the session (it lost the
        subscription with it), else at most once per ``announce_every_s``; never while the
        writer cannot store (the Pis' re-sends would only pile up); a put-off one is sent as
        soon as both allow (:meth:`_write_loop`)."""
        with self._announce_lock:
            now = time.monotonic()
            due = (not self.client.session_present or self._announced_at is None
                   or now - self._announced_at >= self.announce_every_s)
            if self._writer_failing or not due:
                if not self._announce_pending:
                    log.info("ingest online announcement put off (%s)", "the database cannot be written"
                             if self._writer_failing else f"one was made {now - self._announced_at:.0f} s ago")
                self._announce_pending = True
                return None
            self._announce_pending = False
            self._announced_at = now
        return build_ingest_online(t=self._clock())

    def _write_loop(self) -> None:
        while True:
            if self._republish.is_set():
                self._republish.clear()
                self._republish_prescriptions()
            if self._announce_pending and not self._writer_failing:
                self.client.announce(INGEST_ONLINE_TOPIC)
            batch = self._next_batch()
            if not batch:
                if self._stopping.is_set():
                    return
                continue
            messages = [item for item, _ in batch if isinstance(item, Message)]
            letters = [item for item, _ in batch if isinstance(item, DeadLetter)]
            if (messages or letters) and not self._store_with_retry(messages, letters):
                return  # stopping while the database is down: leave them unacknowledged
            for _, ack in batch:
                ack()
            self._busy = False

    def _store_with_retry(self, messages: list[Message], letters: list[DeadLetter]) -> bool:
        delay = 0.1
        while True:
            try:
                result = self._store_isolating_refusals(messages, letters)
            except Exception as exc:  # the database is down: keep the batch
                self._writer_failing = True
                self.stats.write_failures += 1
                log.error("could not store %d messages (%s); retrying in %.1f s", len(messages) + len(letters),
                          exc, delay)
                if self._stopping.wait(delay):
                    return False
                delay = min(delay * 2, _RETRY_MAX_S)
                continue
            self._writer_failing = False
            self.stats.batches += 1
            self.stats.stored += result.stored
            self.stats.duplicates += result.duplicates
            self.stats.statuses += result.statuses
            self.stats.dead_lettered += result.dead_lettered
            self._publish_acks(result.acks)
            if self.hub is not None:
                for patient in result.patients:
                    self.hub.publish(Update("stored", patient, {}))
            return True

    def _store_isolating_refusals(self, messages: list[Message], letters: list[DeadLetter]) -> BatchResult:
        """Store the batch; if the database refuses something in it, store the messages one by
        one and dead-letter each one it refuses. Raises only when the database is unreachable."""
        try:
            return self.store.write_batch(messages, letters)
        except Exception as exc:
            if not refused_by_database(exc):
                raise
            self.store.ping()  # an outage that merely looks like a refusal is retried, not dead-lettered
        letters = list(letters)
        results: list[BatchResult] = []
        for message in messages:
            try:
                results.append(self.store.write_batch([message]))
            except Exception as exc:
                if not refused_by_database(exc):
                    raise
                self.store.ping()
                reason = f"the database refused it: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                log.error("dead-lettering %s seq %s of %s: %s", message.kind.value, message.seq, message.patient, reason)
                letters.append(dead_letter_of(message, reason))
        results.append(self.store.write_batch([], letters))
        acks: dict[str, int] = {}
        for result in results:
            acks.update(result.acks)
        return BatchResult(
            stored=sum(r.stored for r in results), duplicates=sum(r.duplicates for r in results),
            statuses=sum(r.statuses for r in results), patients=frozenset().union(*(r.patients for r in results)),
            dead_lettered=sum(r.dead_lettered for r in results), acks=acks,
        )

    def _republish_prescriptions(self) -> None:
        try:
            current = self.store.current_prescriptions()
        except Exception as exc:  # the database is down: try again shortly
            log.warning("cannot read the prescriptions to publish them again: %s", exc)
            self._republish.set()
            self._stopping.wait(1.0)
            return
        for patient, payload in current:
            self.client.publish_nowait(Envelope(
                kind=MessageKind.PRESCRIPTION, topic=build_topic(MessageKind.PRESCRIPTION, patient), payload=payload,
                qos=1, retain=True, expiry_s=None, importance=Importance.STATE))
        if current:
            log.info("published the %d current prescription(s) again (retained)", len(current))

    def _publish_acks(self, acks: dict[str, int]) -> None:
        """Tell each Pi how far its results are stored (retained, QoS 1, not waited for: the next
        batch with a result of that patient publishes again)."""
        for patient, seq in acks.items():
            if seq > 0 and self.client.publish_nowait(build_stored_ack(patient, seq)):
                self.stats.acks_published += 1

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until everything received so far is stored and acknowledged (tests, benchmark)."""
        deadline = time.monotonic() + timeout
        while self._inbox or self._busy:  # in this order (see _next_batch)
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True
