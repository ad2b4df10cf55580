"""sd_notify over a real datagram socket, and the stretch hold timer."""

from __future__ import annotations

import socket

import numpy as np

from hipsense.service.holds import HoldTimer
from hipsense.service.systemd import Notifier


def test_notifier_speaks_the_notify_protocol(tmp_path):
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "20000000"})
        assert notifier.enabled and notifier.watchdog_s == 20.0
        assert notifier.ready("patient p-0001")
        assert notifier.watchdog()
        assert notifier.stopping()
        got = [server.recv(256).decode() for _ in range(3)]
    assert got == ["READY=1\nSTATUS=patient p-0001", "WATCHDOG=1", "STOPPING=1"]


def test_notifier_is_a_no_op_outside_systemd():
    notifier = Notifier({})
    assert not notifier.enabled and notifier.watchdog_s is None and not notifier.ready()


def test_watchdog_for_another_pid_is_ignored():
    assert Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}).watchdog_s is None


def test_hold_timer_times_a_stretch_and_ignores_fidgets():
    t = np.arange(0, 60, 0.01)
    speed = np.full_like(t, 40.0)
    speed[(t > 10) & (t < 40)] = 2.0  # a 30 s stretch
    speed[(t > 45) & (t < 46.5)] = 2.0  # a 1.5 s pause: not a hold
    angle = np.where((t > 10) & (t < 40), 35.0, 0.0)
    timer = HoldTimer()
    holds = []
    for a in range(0, len(t), 10):
        holds += timer.push(t[a:a + 10], angle[a:a + 10], speed[a:a + 10])
    assert len(holds) == 1
    (hold,) = holds
    assert abs(hold.hold_s - 30.0) < 0.05 and abs(hold.mean_angle_deg - 35.0) < 0.5
