"""The outbox sender without a broker: a fake transport that acks when told to."""

from __future__ import annotations

import json

from hipsense.publish import Outbox
from hipsense.publish.sender import OutboxSender


class FakeTransport:
    def __init__(self) -> None:
        self.connected = True
        self.accept = True
        self.sent: list[tuple[int, int]] = []  # (mid, n)
        self._mid = 0

    def is_connected(self) -> bool:
        return self.connected

    def send_row(self, row, now):
        if not self.accept:
            return None
        self._mid += 1
        self.sent.append((self._mid, json.loads(row.payload)["n"]))
        return self._mid


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def _fill(box: Outbox, count: int) -> None:
    for n in range(count):
        box.put("hipsense/v1/p-0001/event/rep", json.dumps({"n": n}).encode(), qos=1, retain=False)


def test_sends_in_order_within_the_window_and_acks_only_on_puback(tmp_path):
    with Outbox(tmp_path / "o.db") as box:
        _fill(box, 10)
        transport = FakeTransport()
        sender = OutboxSender(box, transport, window=4)
        assert sender.drain_once() == 4 and sender.drain_once() == 0  # window full
        assert [n for _, n in transport.sent] == [0, 1, 2, 3]
        assert box.stats().pending_total == 10  # nothing removed before an ack
        sender.published(2, ok=True)  # acks may arrive out of order
        sender.published(1, ok=True)
        assert sender.drain_once() == 2
        assert box.stats().pending_total == 8
        assert [n for _, n in transport.sent][-2:] == [4, 5]


def test_an_ack_racing_ahead_of_send_row_is_still_matched(tmp_path):
    with Outbox(tmp_path / "o.db") as box:
        _fill(box, 1)
        transport = FakeTransport()
        sender = OutboxSender(box, transport, window=4)
        sender.published(1, ok=True)  # the PUBACK for mid 1 arrives "before" the sender recorded it
        sender.drain_once()  # ...is applied before sending: unknown mid, ignored; row 0 goes out as mid 1
        sender.published(1, ok=True)
        sender.drain_once()
        assert box.stats().pending_total == 0


def test_nothing_is_sent_while_disconnected_and_inflight_survives_reconnects(tmp_path):
    with Outbox(tmp_path / "o.db") as box:
        _fill(box, 3)
        transport = FakeTransport()
        sender = OutboxSender(box, transport, window=8)
        sender.drain_once()
        transport.connected = False
        assert sender.drain_once() == 0
        transport.connected = True
        assert sender.drain_once() == 0  # the client resends its own unacked packets
        for mid in (1, 2, 3):
            sender.published(mid, ok=True)
        sender.drain_once()
        assert box.stats().pending_total == 0 and len(transport.sent) == 3


def test_refused_rows_are_kept_and_retried_later(tmp_path):
    with Outbox(tmp_path / "o.db") as box:
        _fill(box, 2)
        transport, clock = FakeTransport(), Clock()
        sender = OutboxSender(box, transport, window=8, refused_retry_s=30, clock=clock)
        sender.drain_once()
        sender.published(1, ok=False)
        sender.published(2, ok=True)
        assert sender.drain_once() == 0 and box.stats().pending_total == 1
        clock.t = 31
        assert sender.drain_once() == 1 and transport.sent[-1][1] == 0
        assert sender.stats.refused == 1


def test_forgotten_or_stale_inflight_rows_are_sent_again(tmp_path):
    with Outbox(tmp_path / "o.db") as box:
        _fill(box, 2)
        transport, clock = FakeTransport(), Clock()
        sender = OutboxSender(box, transport, window=8, inflight_timeout_s=60, clock=clock)
        sender.drain_once()
        sender.forget_inflight()  # the MQTT client was rebuilt
        assert sender.drain_once() == 2
        clock.t = 61
        assert sender.drain_once() == 2 and sender.stats.resent_after_timeout == 2
        assert [n for _, n in transport.sent] == [0, 1, 0, 1, 0, 1]


def test_client_refusing_a_row_stops_the_pass(tmp_path):
    with Outbox(tmp_path / "o.db") as box:
        _fill(box, 3)
        transport = FakeTransport()
        transport.accept = False
        sender = OutboxSender(box, transport, window=8)
        assert sender.drain_once() == 0 and sender.inflight == 0


def _rep(seq: int):
    from hipsense import protocol as p

    return p.build_rep_event("p-0001", seq=seq, session_id="s1", exercise="clam_shells", side="left", set_index=1,
                             rep_index=seq, t_start=1.7e9, t_end=1.7e9 + 2, rom_deg=30.0, hold_s=0.0,
                             peak_speed_dps=50.0)


class _SeqTransport(FakeTransport):
    def send_row(self, row, now):
        self._mid += 1
        self.sent.append((self._mid, row.seq))
        return self._mid


def test_a_new_ingest_epoch_sends_the_unacknowledged_again_within_the_jitter_once(tmp_path):
    """The dashboard's "ingest online" announcement: delivered, unacknowledged results go again
    after a random delay within the range, not at the storage timeout; the same epoch again (the
    retained copy on every reconnect) does nothing; the backoff starts over."""
    with Outbox(tmp_path / "o.db") as box:
        for _ in range(3):
            box.put_sequenced("p-0001", _rep)
        clock = Clock()
        transport = _SeqTransport()
        sender = OutboxSender(box, transport, clock=clock, await_storage=True, storage_timeout_s=600.0,
                              storage_timeout_max_s=1800.0, ingest_online_jitter_s=(1.0, 4.0))
        sender.drain_once()
        for mid in (1, 2, 3):
            sender.published(mid, ok=True)
        sender.drain_once()
        assert box.awaiting_storage() == 3 and len(transport.sent) == 3
        sender.ingest_online("01JQ7Z9A0B1C2D3E4F5G6H7J8K")
        sender.drain_once()  # the sender takes the announcement now, at t = 0: due within 1-4 s
        clock.t = 0.99
        sender.drain_once()
        assert len(transport.sent) == 3  # not before the jitter's lower bound
        clock.t = 4.0
        sender.drain_once()
        assert [seq for _, seq in transport.sent[3:]] == [1, 2, 3] and sender.stats.released == 3
        for mid in (4, 5, 6):
            sender.published(mid, ok=True)
        sender.ingest_online("01JQ7Z9A0B1C2D3E4F5G6H7J8K")  # the same epoch again
        clock.t = 100.0
        sender.drain_once()
        assert len(transport.sent) == 6 and sender.stats.ingest_online == 1
        sender.ingest_online("01JQ7Z9A0B1C2D3E4F5G6H7J8M")  # a new one: due within 4 s again
        sender.drain_once()
        clock.t = 104.0
        sender.drain_once()
        assert len(transport.sent) == 9 and sender.stats.ingest_online == 2


def test_the_first_retained_announcement_a_process_hears_is_only_noted(tmp_path):
    """Heard on subscribing (retained): older than this connection, whose reconnect grace sends
    again anyway. A first one heard live is news (the broker had lost the retained one)."""
    with Outbox(tmp_path / "o.db") as box:
        box.put_sequenced("p-0001", _rep)
        clock = Clock()
        transport = _SeqTransport()
        sender = OutboxSender(box, transport, clock=clock, await_storage=True, storage_timeout_s=600.0,
                              ingest_online_jitter_s=(1.0, 4.0))
        sender.drain_once()
        sender.published(1, ok=True)
        sender.ingest_online("01JQ7Z9A0B1C2D3E4F5G6H7J8K", retained=True)
        sender.drain_once()
        clock.t = 10.0
        sender.drain_once()
        assert len(transport.sent) == 1 and sender.stats.ingest_online == 0
        sender.ingest_online("01JQ7Z9A0B1C2D3E4F5G6H7J8M", retained=True)  # changed while we were away
        sender.drain_once()
        clock.t = 14.0
        sender.drain_once()
        assert len(transport.sent) == 2
    with Outbox(tmp_path / "o2.db") as box:
        box.put_sequenced("p-0001", _rep)
        clock = Clock()
        transport = _SeqTransport()
        sender = OutboxSender(box, transport, clock=clock, await_storage=True, storage_timeout_s=600.0,
                              ingest_online_jitter_s=(1.0, 4.0))
        sender.drain_once()
        sender.published(1, ok=True)
        sender.ingest_online("01JQ7Z9A0B1C2D3E4F5G6H7J8K", retained=False)
        sender.drain_once()
        clock.t = 4.0
        sender.drain_once()
        assert len(transport.sent) == 2


def test_an_acknowledgement_does_not_push_back_the_prompt_re_send(tmp_path):
    """An "ingest online" makes the unacknowledged go again within seconds; an acknowledgement
    of some of them arriving meanwhile (the dashboard stored the first ones) set the next re-send
    to now + the storage timeout, and the rest waited that long (10 min here) instead."""
    with Outbox(tmp_path / "o.db") as box:
        for _ in range(3):
            box.put_sequenced("p-0001", _rep)
        clock = Clock()
        transport = _SeqTransport()
        sender = OutboxSender(box, transport, clock=clock, await_storage=True, storage_timeout_s=600.0,
                              storage_timeout_max_s=1800.0, ingest_online_jitter_s=(1.0, 4.0))
        sender.drain_once()
        for mid in (1, 2, 3):
            sender.published(mid, ok=True)
        sender.drain_once()
        sender.ingest_online("01JQ7Z9A0B1C2D3E4F5G6H7J8K")
        sender.drain_once()
        clock.t = 0.5
        sender.stored("p-0001", 1)  # the first was stored before the broker lost the rest
        sender.drain_once()
        clock.t = 4.0
        sender.drain_once()
        assert [seq for _, seq in transport.sent[3:]] == [2, 3]  # at the prompt time, not at 600 s
        for mid in (4, 5):
            sender.published(mid, ok=True)
        sender.stored("p-0001", 2)
        clock.t = 100.0
        sender.drain_once()  # after it, an acknowledgement waits the storage timeout again
        clock.t = 699.0
        sender.drain_once()
        assert len(transport.sent) == 5
        clock.t = 700.0
        sender.drain_once()
        assert [seq for _, seq in transport.sent[5:]] == [3]
