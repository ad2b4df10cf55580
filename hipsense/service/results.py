"""From counted results to protocol messages: the outbox for results, straight out for live data.

Every rep, hold, set, session summary and pain check-in is built with its sequence number and
committed to the durable outbox in one transaction (:meth:`Outbox.put_sequenced`) before the
sender is woken: it is on disk before anything is sent, and a crash leaves no gap in ``seq``.
A result's ``state`` (the session's numbering after it, see ``service/state.py``) is committed
in that same transaction. A result the outbox cannot take (disk full, and the card reserve of
:mod:`hipsense.service.reserve`, which the outbox gives up first, used up) is held in memory, in
order, and stored as soon as it can be (:meth:`ResultPublisher.retry_held`); with a spill file
(:mod:`hipsense.service.spill`) each one held is copied to RAM-backed storage too, so that a
restart of the service stores it then instead of losing it.

Live angles are never stored; they go to the MQTT client's live path when connected and are
dropped otherwise.

Instants arrive as UTC epoch seconds (see :mod:`hipsense.service.timebase`).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from hipsense.protocol import (
    DELIVERY,
    Envelope,
    EventKind,
    ExerciseSummary,
    Flag,
    ProtocolError,
    build_hold_event,
    build_live,
    build_pain_checkin,
    build_rep_event,
    build_session_summary,
    build_set_event,
    parse_message,
    parse_topic,
)
from hipsense.publish import LiveThrottle, Outbox, OutboxError
from hipsense.service.logs import fields
from hipsense.service.spill import SpillFile

__all__ = ["ResultPublisher"]

log = logging.getLogger(__name__)


MAX_HELD = 10_000
"""Results kept in memory while the outbox cannot be written: days of exercise, a few MB."""


SPILL_DONE = "held_spill_done"
"""The outbox state naming the last spilled result stored (written in its transaction)."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Held:
    what: str
    build: Callable[[int], Envelope]
    state: Mapping[str, bytes | None] | None
    spilled: int | None = None  # its number in the spill file, once copied there


def _renumbering(template: Envelope) -> Callable[[int], Envelope]:
    """A result built once (its id fixed), numbered when it is stored. Only its payload is
    kept (read again when it is stored): a parsed document took ~3 KB more per held result,
    40 MB for MAX_HELD under the unit's MemoryMax=200M (docs/mqtt.md)."""
    template = dataclasses.replace(template, payload=bytes(template.payload))

    def build(seq: int) -> Envelope:
        doc = json.loads(template.payload)
        payload = json.dumps({**doc, "seq": seq}, separators=(",", ":"), ensure_ascii=False,
                             allow_nan=False).encode("utf-8")
        return dataclasses.replace(template, payload=payload, seq=seq)

    return build


def _envelope(topic: str, payload: bytes) -> Envelope:
    kind, _ = parse_topic(topic)
    delivery = DELIVERY[kind]
    doc = json.loads(payload)
    return Envelope(kind=kind, topic=topic, payload=payload, qos=delivery.qos, retain=delivery.retain,
                    expiry_s=delivery.expiry_s, importance=delivery.importance, message_id=doc.get("id"),
                    seq=doc.get("seq"))


class ResultPublisher:
    """Builds and stores (or sends, for live data) the messages of one patient."""

    def __init__(
        self,
        patient: str,
        outbox: Outbox,
        *,
        notify: Callable[[], None] = lambda: None,
        send_live: Callable[[Envelope], bool] | None = None,
        live_rate_hz: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        max_held: int = MAX_HELD,
        clock_synced: Callable[[], bool | None] | None = None,
        spill: SpillFile | None = None,
    ) -> None:
        self.patient = patient
        self.outbox = outbox
        self._notify = notify
        self._send_live = send_live
        self._throttle = LiveThrottle(live_rate_hz)
        self._clock = clock
        self.stored = 0
        self.failed = 0
        self.live_sent = 0
        self.on_stored: list[Callable[[str, Envelope], None]] = []  # e.g. Home Assistant totals
        self.max_held = max_held
        # Whether the wall clock is synchronised (None: cannot tell); a result stamped while it
        # is not carries the flag clock_unsynced, so that its date is not taken at face value.
        self._clock_synced = clock_synced
        self._held: collections.deque[_Held] = collections.deque()
        self._unwritable_since: float | None = None
        # The last attempt to write the outbox failed (a result, or the status: store_status sets
        # and clears it too, so that a card that fills while nothing is counted shows, and clears).
        self.unwritable = False
        self._spill = spill
        self._spill_next = 1
        self._spill_used = False  # the file may hold lines (removed once nothing is held)
        if spill is not None:
            self._adopt_spill(spill)

    def _adopt_spill(self, spill: SpillFile) -> None:
        """Results a previous process held (its outbox could not take them): held again, in
        order, and stored by the next :meth:`retry_held` (the engine's first tick, or its first
        result), once the observers of stored results (the patient's page, Home Assistant) are
        in place; the engine resumes from their state meanwhile (:meth:`held_state`)."""
        try:
            raw = self.outbox.read_state(SPILL_DONE)
            done = int(raw) if raw else 0
        except (OutboxError, ValueError) as exc:
            # Importing them all could store some twice under new numbers (one id, two seqs: the
            # dashboard would wait for ever at the second). Leave the file for the next start.
            log.error("cannot read which results of %s were stored (%s): left there for the next start; results "
                      "held now wait in memory only", spill.path, exc)
            self._spill = None
            return
        entries = spill.load()
        if spill.stored > done:  # the outbox lost its mark (a fresh one after a corrupt file, a wiped state directory)
            log.warning("the outbox says spilled results up to %d were stored, %s says up to %d: importing only the lines "
                        "after %d", done, spill.path, spill.stored, spill.stored)
            done = spill.stored
        self._spill_next = max([done, *(e.n for e in entries)]) + 1
        fresh = [e for e in entries if e.n > done]
        self._spill_used = bool(entries)
        if not fresh:
            spill.clear()
            return
        for entry in fresh:
            try:
                template = _envelope(entry.topic, entry.payload)
                message = parse_message(entry.topic, entry.payload)  # what the dashboard will check
                if message.patient != self.patient or not message.kind.is_event:
                    raise ProtocolError(f"a {message.kind.value} of {message.patient}, not a result of {self.patient}")
            except (ProtocolError, ValueError) as exc:
                log.error("a spilled %s cannot be read back: %s", entry.what, exc)
                continue
            self._held.append(_Held(entry.what, _renumbering(template), entry.state, entry.n))
        log.warning("%d result(s) a previous run could not store are back from %s", len(self._held), spill.path,
                    extra=fields(held=len(self._held)))

    def held_state(self, name: str) -> tuple[bool, bytes | None]:
        """The newest value of state document ``name`` among the held results, (False, None) if
        none carries it: what the outbox will hold once they are stored."""
        for item in reversed(self._held):
            if item.state is not None and name in item.state:
                return True, item.state[name]
        return False, None

    # -- results -----------------------------------------------------------------------------

    def _store(self, what: EventKind, build: Callable[[int], Envelope],
               state: Mapping[str, bytes | None] | None = None, *, hold: bool = True) -> Envelope | None:
        """Store one result (with ``state``, see the module docstring); None if it is not stored now.

        If the outbox cannot be written (disk full or failing) the result is held in memory, in
        order, and stored with its state as soon as a write succeeds again (the next result or
        :meth:`retry_held`), so a full disk costs nothing as long as the process lives. A file
        SQLite finds damaged is set aside and replaced at once (:meth:`Outbox.recover`). With
        ``hold=False`` (a patient's answer on the page, who is told to try again) it fails at once.
        """
        if not hold:
            self.retry_held()
            if self._held:
                self.failed += 1
                log.error("%s not stored: the outbox cannot be written (%d result(s) waiting)", what, len(self._held),
                          extra=fields(kind=what))
                return None
            try:
                return self._put(_Held(what, build, state), raise_outbox_error=True)
            except OutboxError as exc:
                if exc.corrupt and self._recover():
                    return self._put(_Held(what, build, state))
                self.failed += 1
                self.unwritable = True
                log.error("%s not stored: %s", what, exc, extra=fields(kind=what))
                return None
        item = _Held(what, build, state)
        if len(self._held) >= self.max_held:
            self.failed += 1
            log.error("%s lost: the outbox cannot be written and %d results already wait in memory", what,
                      len(self._held), extra=fields(kind=what))
            return None
        self._held.append(item)
        stored = self.retry_held()
        return stored.get(id(item))

    @property
    def held(self) -> int:
        """Results waiting in memory for the outbox to be writable again."""
        return len(self._held)

    def retry_held(self) -> dict[int, Envelope]:
        """Store the results held in memory, oldest first, until one cannot be; call now and
        then (the engine's tick). Returns the envelopes stored, by ``id()`` of their item."""
        stored: dict[int, Envelope] = {}
        recovered = False
        tried = bool(self._held)  # with nothing held, nothing shows the outbox writable again
        while self._held:
            item = self._held[0]
            try:
                envelope = self._put(item, raise_outbox_error=True)
            except OutboxError as exc:
                if exc.corrupt and not recovered:  # the file is damaged: set it aside, go on in a new one
                    recovered = True
                    if self._recover():
                        continue
                self.unwritable = True
                self._spill_held()
                if self._unwritable_since is None:
                    self._unwritable_since = self._clock()
                    log.error("%s not stored yet: %s; kept in memory (%d waiting) and stored when the outbox can be "
                              "written again", item.what, exc, len(self._held), extra=fields(kind=item.what))
                return stored
            self._held.popleft()
            if envelope is not None:
                stored[id(item)] = envelope
        if tried:
            self.unwritable = False
        if self._spill_used:
            self._spill_used = False
            self._spill.clear()
        if self._unwritable_since is not None:
            log.warning("the outbox can be written again; every result held meanwhile is stored",
                        extra=fields(waited_s=round(self._clock() - self._unwritable_since, 1)))
            self._unwritable_since = None
        return stored

    def _spill_held(self) -> None:
        """Copy the held results not yet in the spill file there, in order (built once now: the
        copy and the one in memory have the same id)."""
        if self._spill is None:
            return
        for index, item in enumerate(self._held):
            if item.spilled is not None:
                continue
            try:
                template = item.build(1)
            except ProtocolError:
                continue  # refused again when it is stored (logged then)
            self._spill_used = True
            if not self._spill.append(self._spill_next, item.what, template.topic, template.payload, item.state):
                return  # the rest waits in memory only (logged)
            self._held[index] = _Held(item.what, _renumbering(template), item.state, self._spill_next)
            self._spill_next += 1

    def _recover(self) -> bool:
        try:
            return self.outbox.recover()
        except OutboxError as exc:
            log.error("cannot set the corrupt outbox aside: %s", exc)
            return False

    def _put(self, item: _Held, *, raise_outbox_error: bool = False) -> Envelope | None:
        if item.spilled is not None:  # stored with it: a restart then imports only the lines after it
            item = dataclasses.replace(item, state={**(item.state or {}), SPILL_DONE: str(item.spilled).encode()})
        try:
            _, envelope = self.outbox.put_sequenced(self.patient, item.build, state=item.state)
        except ProtocolError as exc:  # a measurement the schema refuses (a bug): say so, keep going
            self.failed += 1
            log.error("%s not published: %s", item.what, exc, extra=fields(kind=item.what))
            if item.state:  # the numbering moved on all the same: keep it for a restart
                try:
                    self.outbox.write_state(item.state)
                except OutboxError as state_exc:
                    log.error("session state not saved: %s", state_exc)
            return None
        except OutboxError as exc:
            if raise_outbox_error:
                raise
            self.failed += 1  # disk full or failing: the counting goes on, the error is loud
            log.error("%s not stored: %s", item.what, exc, extra=fields(kind=item.what))
            return None
        if item.spilled is not None and self._spill is not None:
            self._spill.mark_stored(item.spilled)  # the file's copy of the mark (logged if it fails)
        self.stored += 1
        self._notify()
        for observer in self.on_stored:
            try:
                observer(item.what, envelope)
            except Exception:  # stored is stored: an observer's bug must not store it again, nor stop counting
                log.exception("%s stored, but an observer of stored results failed", item.what)
        log.info("%s stored", item.what, extra=fields(kind=item.what, seq=envelope.seq, id=envelope.message_id))
        return envelope

    def _flags(self, flags: Iterable[str]) -> tuple[str, ...]:
        flags = tuple(flags)
        if self._clock_synced is not None and self._clock_synced() is False and Flag.CLOCK_UNSYNCED not in flags:
            flags += (Flag.CLOCK_UNSYNCED.value,)
        return flags

    def rep(self, *, session_id: str, exercise: str, side: str, set_index: int, rep_index: int,
            t_start: float, t_end: float, rom_deg: float, hold_s: float, peak_speed_dps: float,
            duration_s: float, flags: Iterable[str], state: Mapping[str, bytes | None] | None = None) -> Envelope | None:
        flags = self._flags(flags)
        return self._store(EventKind.REP, lambda seq: build_rep_event(
            self.patient, seq=seq, session_id=session_id, exercise=exercise, side=side, set_index=set_index,
            rep_index=rep_index, t_start=t_start, t_end=max(t_end, t_start), rom_deg=rom_deg, hold_s=max(hold_s, 0.0),
            peak_speed_dps=max(peak_speed_dps, 0.0), duration_s=max(duration_s, 0.0), flags=flags), state)

    def hold(self, *, session_id: str, exercise: str, side: str, set_index: int, hold_index: int,
             t_start: float, t_end: float, hold_s: float, target_hold_s: float | None, mean_angle_deg: float,
             flags: Iterable[str], state: Mapping[str, bytes | None] | None = None) -> Envelope | None:
        flags = self._flags(flags)
        return self._store(EventKind.HOLD, lambda seq: build_hold_event(
            self.patient, seq=seq, session_id=session_id, exercise=exercise, side=side, set_index=set_index,
            hold_index=hold_index, t_start=t_start, t_end=max(t_end, t_start), hold_s=hold_s,
            target_hold_s=target_hold_s, mean_angle_deg=mean_angle_deg, flags=flags), state)

    def set(self, *, session_id: str, exercise: str, side: str, set_index: int, t_start: float, t_end: float,
            reps: int, reps_target: int | None, holds: int, hold_s_total: float, target_hold_s: float | None,
            prescribed: bool, flags: Iterable[str], state: Mapping[str, bytes | None] | None = None) -> Envelope | None:
        flags = self._flags(flags)
        return self._store(EventKind.SET, lambda seq: build_set_event(
            self.patient, seq=seq, session_id=session_id, exercise=exercise, side=side, set_index=set_index,
            t_start=t_start, t_end=max(t_end, t_start), reps=reps, reps_target=reps_target, holds=holds,
            hold_s_total=hold_s_total, target_hold_s=target_hold_s, prescribed=prescribed, flags=flags), state)

    def session(self, *, session_id: str, t_start: float, t_end: float, exercises: Sequence[ExerciseSummary],
                prescription_version: int | None, adherence: float | None, flags: Iterable[str],
                state: Mapping[str, bytes | None] | None = None, hold: bool = True) -> Envelope | None:
        flags = self._flags(flags)
        return self._store(EventKind.SESSION, lambda seq: build_session_summary(
            self.patient, seq=seq, session_id=session_id, t_start=t_start, t_end=max(t_end, t_start),
            exercises=exercises, prescription_version=prescription_version, adherence=adherence, flags=flags), state,
            hold=hold)

    def pain(self, *, score: int, moment: str, t: float, session_id: str | None = None,
             exercise: str | None = None) -> Envelope | None:
        """A pain check-in, 0-10 (the payload path; how the patient enters it is up to the caller).
        Not held if the outbox cannot be written: the patient is told and can answer again."""
        return self._store(EventKind.PAIN, lambda seq: build_pain_checkin(
            self.patient, seq=seq, score=score, moment=moment, t=t, session_id=session_id, exercise=exercise),
            hold=False)

    # -- live --------------------------------------------------------------------------------

    def wants_live(self) -> bool:
        """Whether a live message would go out now (check before doing the work of building one)."""
        return self._send_live is not None and self._throttle.allow(self._clock())

    def live(self, *, t: float, side: str, thigh_angle_deg: float, exercise: str | None, session_id: str | None,
             rep_count: int | None, hold_remaining_s: float | None, abduction_deg: float | None = None) -> bool:
        """Send one live message (call after :meth:`wants_live` said yes)."""
        if self._send_live is None:
            return False
        try:
            envelope = build_live(self.patient, t=t, side=side, thigh_angle_deg=thigh_angle_deg, exercise=exercise,
                                  session_id=session_id, rep_count=rep_count, hold_remaining_s=hold_remaining_s,
                                  abduction_deg=abduction_deg)
        except ProtocolError as exc:
            log.debug("live message not built: %s", exc)
            return False
        sent = self._send_live(envelope)
        self.live_sent += int(sent)
        return sent
