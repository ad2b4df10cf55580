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
