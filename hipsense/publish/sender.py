"""The sender: a thread that drains the outbox into the broker and acks rows on PUBACK.

It knows nothing of paho. The MQTT client gives it a :class:`RowTransport` and reports each
broker acknowledgement through :meth:`OutboxSender.published`, which only enqueues: the
MQTT network thread must never wait for the disk. All bookkeeping (which outbox row a
packet id belongs to) happens on the sender thread, which is why a PUBACK that arrives before
``send_row`` has even returned is still matched correctly.

Delivery is at least once. With ``await_storage`` (what the Pi runs), a sequenced result is
deleted only when the dashboard's end-to-end acknowledgement covers it (:meth:`stored`); its
PUBACK only marks it delivered. Delivered rows that no acknowledgement covers are handed out
again a few seconds after every (re)connect (time for the retained acknowledgement to arrive
first) and whenever the acknowledgements stop making progress for ``storage_timeout_s`` (then
twice as long, up to ``storage_timeout_max_s``, so a dashboard that is down for a day is not
flooded with copies). Other rows are deleted after their PUBACK (QoS 1) or once written to the
socket (QoS 0). Rows still in flight when the process dies are sent again on restart; readers
de-duplicate by message id.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Protocol

from hipsense.publish.errors import OutboxError
from hipsense.publish.outbox import Outbox, OutboxRow

log = logging.getLogger(__name__)


class RowTransport(Protocol):
    """What the sender needs from an MQTT client."""

    def is_connected(self) -> bool: ...

    def send_row(self, row: OutboxRow, now: float) -> int | None:
        """Hand ``row`` to the client; return its packet id, or None if it was not accepted."""


@dataclasses.dataclass(slots=True)
class SenderStats:
    sent: int = 0
    acked: int = 0
    refused: int = 0  # the broker answered with a failure reason code (e.g. not authorised)
    resent_after_timeout: int = 0
    confirmed: int = 0  # rows forgotten because the dashboard acknowledged storing them
    released: int = 0  # delivered rows handed out again for want of that acknowledgement
    ignored_acks: int = 0  # acknowledgements beyond this outbox's own sequence
    ingest_online: int = 0  # new "ingest online" announcements heard (each schedules a resend)


@dataclasses.dataclass(slots=True)
class _InFlight:
    row_id: int
    since: float
    sequenced: bool = False


class OutboxSender:
    """Drains ``outbox`` through ``transport`` on its own thread.

    Parameters
    ----------
    window : int
        Most rows handed to the client and not yet acknowledged. Bounds the client's memory
        while the broker is down for hours: the rest waits on disk.
    refused_retry_s : float
        How long a row the broker refused waits before it is tried again.
    inflight_timeout_s : float
        A row without an acknowledgement for this long is handed over again (the client can
        lose QoS 0 packets on a disconnect; for QoS 1 it resends by itself).
    poll_s : float
        Longest sleep between passes when nobody calls :meth:`notify`.
    await_storage : bool
        Keep sequenced results after their PUBACK until :meth:`stored` covers them.
    storage_timeout_s, storage_timeout_max_s : float
        Without acknowledgement progress for this long, delivered rows are sent again; the
        wait doubles after every such round, up to the maximum, and resets on progress.
    reconnect_grace_s : float
        After a (re)connect, how long to wait for the retained acknowledgement before sending
        again what it does not cover.
    ingest_online_jitter_s : (float, float)
        After a new "ingest online" announcement (:meth:`ingest_online`), delivered rows no
        acknowledgement covers are sent again after a random delay in this range (seconds):
        every Pi hears the announcement at the same instant.
    """

    def __init__(
        self,
        outbox: Outbox,
        transport: RowTransport,
        *,
        window: int = 64,
        refused_retry_s: float = 30.0,
        inflight_timeout_s: float = 120.0,
        poll_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        await_storage: bool = False,
        storage_timeout_s: float = 60.0,
        storage_timeout_max_s: float = 1800.0,
        reconnect_grace_s: float = 5.0,
        ingest_online_jitter_s: tuple[float, float] = (0.5, 5.0),
    ) -> None:
        self._outbox = outbox
        self._transport = transport
        self._window = window
        self._refused_retry_s = refused_retry_s
        self._inflight_timeout_s = inflight_timeout_s
        self._poll_s = poll_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._events: queue.SimpleQueue[tuple[str, object, object]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._inflight_by_mid: dict[int, _InFlight] = {}
        self._not_before: dict[int, float] = {}
        self._await_storage = await_storage
        self._storage_timeout_s = storage_timeout_s
        self._storage_timeout_max_s = storage_timeout_max_s
        self._reconnect_grace_s = reconnect_grace_s
        self._storage_wait_s = storage_timeout_s  # the current wait, doubled without progress
        self._release_at: float | None = None  # when to send unacknowledged delivered rows again
        # A prompt re-send (after a reconnect, an "ingest online") that an acknowledgement must
        # not push back: what was delivered before may be lost all the same.
        self._prompt_at: float | None = None
        self._stored_seq: dict[str, int] = {}
        self._ingest_epoch: str | None = None  # the newest "ingest online" epoch seen
        lo, hi = ingest_online_jitter_s
        if not 0 <= lo <= hi:
            raise ValueError(f"ingest_online_jitter_s {ingest_online_jitter_s!r} is not a range of seconds")
        self._ingest_online_jitter_s = (float(lo), float(hi))
        self._random = random.Random()
        self.stats = SenderStats()

    # -- called from other threads ------------------------------------------------------------

    def published(self, mid: int, ok: bool) -> None:
        """The broker acknowledged packet ``mid`` (``ok=False``: with a failure code)."""
        self._events.put(("ack", mid, ok))
        self._wake.set()

    def stored(self, stream: str, seq: int) -> None:
        """The dashboard acknowledged storing ``stream``'s results up to ``seq`` (any thread)."""
        self._events.put(("stored", stream, seq))
        self._wake.set()

    def ingest_online(self, epoch: str, *, retained: bool = False) -> None:
        """A dashboard ingest announced that it (re)subscribed (epoch: new on every subscribe);
        ``retained``: the broker's stored copy, delivered because this client just subscribed."""
        self._events.put(("online", epoch, retained))
        self._wake.set()

    def connected(self) -> None:
        """The client (re)connected: what is delivered but unacknowledged may have been lost."""
        self._events.put(("connected", 0, False))
        self._wake.set()

    def forget_inflight(self) -> None:
        """The client was replaced and lost its queue: hand every unacked row over again."""
        self._events.put(("forget", 0, False))
        self._wake.set()

    def notify(self) -> None:
        """New rows were put: send them now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._stopping.clear()  # a stopped sender can be started again
        self._thread = threading.Thread(target=self._run, name="hipsense-outbox-sender", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def acknowledged(self, stream: str) -> int:
        """The highest seq of ``stream`` the dashboard acknowledged as stored so far (0: none)."""
        return self._stored_seq.get(stream, 0)

    @property
    def ingest_epoch(self) -> str | None:
        """The newest "ingest online" epoch heard (None: none yet)."""
        return self._ingest_epoch

    @property
    def inflight(self) -> int:
        return len(self._inflight_by_mid)

    # -- the sender thread --------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self.drain_once()
            except OutboxError as exc:
                if exc.corrupt and self._recover():
                    continue
                log.error("outbox sender pass failed (%s); retrying", exc)
                self._stopping.wait(1.0)
            except Exception:  # a full disk must not kill delivery for good; retry next pass
                log.exception("outbox sender pass failed; retrying")
                self._stopping.wait(1.0)
            self._wake.wait(self._poll_s)
        try:
            self._apply_events()  # store the acks that arrived while stopping
        except Exception:
            log.exception("outbox sender: final acks failed; those rows will be sent again")

    def drain_once(self) -> int:
        """Apply pending acks, then hand over rows up to the window; return how many were sent."""
        self._apply_events()
        if not self._transport.is_connected():
            return 0
        now = self._clock()
        self._expire_inflight(now)
        self._release_unconfirmed_if_due(now)
        room = self._window - len(self._inflight_by_mid)
        if room <= 0:
            return 0
        busy = {entry.row_id for entry in self._inflight_by_mid.values()}
        sent = 0
        for row in self._outbox.pending(limit=self._window + len(busy) + len(self._not_before)):
            if sent >= room:
                break
            if row.id in busy or self._not_before.get(row.id, 0.0) > now:
                continue
            mid = self._transport.send_row(row, self._wall_clock())
            if mid is None:
                break  # the client is full or just lost the connection: try again next pass
            self._not_before.pop(row.id, None)
            self._inflight_by_mid[mid] = _InFlight(row.id, now, sequenced=row.seq is not None)
            self.stats.sent += 1
            sent += 1
        return sent

    def _apply_events(self) -> None:
        acked: list[int] = []
        delivered: list[int] = []
        while True:
            try:
                kind, mid, ok = self._events.get_nowait()
            except queue.Empty:
                break
            if kind == "forget":
                self._inflight_by_mid.clear()
                continue
            if kind == "stored":
                self._confirm(str(mid), int(ok))
                continue
            if kind == "connected":
                # a re-send after the grace that an acknowledgement may still put off (acks are
                # cumulative: one arriving says the dashboard stores what came before it); an
                # "ingest online" prompt (_prompt_at) is not put off (see _confirm)
                grace = self._clock() + self._reconnect_grace_s
                self._release_at = grace if self._prompt_at is None else min(grace, self._prompt_at)
                continue
            if kind == "online":
                self._on_ingest_online(str(mid), bool(ok))
                continue
            entry = self._inflight_by_mid.pop(mid, None)
            if entry is None:
                continue  # an ack for a packet we no longer track (after forget_inflight)
            if ok and entry.sequenced and self._await_storage:
                delivered.append(entry.row_id)
            elif ok:
                acked.append(entry.row_id)
            else:
                self.stats.refused += 1
                self._not_before[entry.row_id] = self._clock() + self._refused_retry_s
                log.error("broker refused outbox row %d; retrying in %.0f s", entry.row_id, self._refused_retry_s)
        if acked:
            self._outbox.ack_many(acked)
            self.stats.acked += len(acked)
        if delivered:
            self._outbox.mark_delivered(delivered)
            self.stats.acked += len(delivered)
            if self._release_at is None:
                self._release_at = self._clock() + self._storage_wait_s

    def _on_ingest_online(self, epoch: str, retained: bool) -> None:
        """A new announcement: what the broker took while no ingest was subscribed went nowhere.
        Send again what is delivered and unacknowledged, after a random delay of up to
        ``ingest_online_jitter_s`` (every Pi hears it at once), or at the release already due
        sooner. Repeats of an epoch (the retained copy on every reconnect) change nothing, and
        neither does the first retained copy this process hears (the announcement is older than
        this connection, whose own re-send after ``reconnect_grace_s`` covers it); a first one
        heard live is news (the broker had lost the retained one, e.g. a restart without state)."""
        if epoch == self._ingest_epoch:
            return
        first = self._ingest_epoch is None
        self._ingest_epoch = epoch
        if first and retained:
            log.info("dashboard ingest online since before this connection (epoch %s)", epoch)
            return
        self.stats.ingest_online += 1
        self._storage_wait_s = self._storage_timeout_s  # a dashboard is back: start the backoff again
        low, high = self._ingest_online_jitter_s
        due = self._clock() + self._random.uniform(low, high)
        if self._release_at is None or due < self._release_at:
            self._release_at = due
        if self._prompt_at is None or due < self._prompt_at:
            self._prompt_at = due
        log.info("dashboard ingest online (epoch %s%s); results delivered and not acknowledged are sent again "
                 "within %.1f s", epoch, ", the first this process heard" if first else "", due - self._clock())

    def _confirm(self, stream: str, seq: int) -> None:
        if seq <= self._stored_seq.get(stream, 0):
            return  # a repeat (the retained copy after a reconnect) or an older one
        forgotten = self._outbox.confirm_stored(stream, seq)
        if forgotten < 0:
            self.stats.ignored_acks += 1
            log.warning("ignoring the acknowledgement of %s up to seq %d: this outbox has not reached it, and "
                        "holds results that may carry numbers stored before (was its state directory wiped?) or "
                        "no numbering here could have reached it (see above)", stream, seq)
            return
        self._stored_seq[stream] = seq
        self.stats.confirmed += forgotten
        # Progress: the dashboard is storing. Wait the base time again before any resend, but
        # not past a prompt one already due sooner.
        self._storage_wait_s = self._storage_timeout_s
        self._release_at = self._clock() + self._storage_wait_s
        if self._prompt_at is not None and self._prompt_at < self._release_at:
            self._release_at = self._prompt_at

    def _recover(self) -> bool:
        """The outbox file is damaged: set it aside and go on in a new one (what it held and
        could be read back keeps its row ids; in-flight rows are handed out again)."""
        try:
            recovered = self._outbox.recover()
        except OutboxError as exc:
            log.error("cannot set the corrupt outbox aside: %s", exc)
            return False
        self._inflight_by_mid.clear()
        return recovered

    def _release_unconfirmed_if_due(self, now: float) -> None:
        if self._release_at is None or now < self._release_at:
            return
        self._release_at = self._prompt_at = None
        released = self._outbox.release_unconfirmed()
        if released:
            self.stats.released += released
            log.warning("%d result(s) delivered to the broker but not acknowledged as stored; sending them again "
                        "(next check in %.0f s)", released, self._storage_wait_s)
            self._storage_wait_s = min(self._storage_wait_s * 2, self._storage_timeout_max_s)

    def _expire_inflight(self, now: float) -> None:
        stale = [mid for mid, entry in self._inflight_by_mid.items() if now - entry.since > self._inflight_timeout_s]
        for mid in stale:
            del self._inflight_by_mid[mid]
            self.stats.resent_after_timeout += 1
        if stale:
            log.warning("%d outbox row(s) unacknowledged for %.0f s; sending again", len(stale), self._inflight_timeout_s)
