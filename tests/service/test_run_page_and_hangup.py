"""The real ``hipsense run`` with ``[patient_page] enabled``: the page answers once the service
is up, and closing the terminal (SIGHUP) stops the service as cleanly as Ctrl-C: exit 0, the
session state flushed, the page's port free again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_service_serves_the_page_and_stops_on_sighup(tmp_path):
    pytest.importorskip("bumble")
    page_port, broker_port = free_port(), free_port()  # nobody listens on the broker port: it still runs
    config = tmp_path / "hipsense.toml"
    config.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {broker_port}\npatient_id = "p-0001"\n'
                      f'[sensor]\nbackend = "emulator"\n'
                      f'[service]\nstate_dir = "{tmp_path / "state"}"\nvoice = "off"\nlog_format = "text"\n'
                      f'[patient_page]\nenabled = true\nhost = "127.0.0.1"\nport = {page_port}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HIPSENSE_", "NOTIFY_SOCKET", "WATCHDOG"))}
    log = tmp_path / "service.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "hipsense", "run", "--config", str(config)], env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        page = None
        while page is None and time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{page_port}/", timeout=2) as response:
                    page = response.read().decode()
            except OSError:
                time.sleep(0.2)
        assert page is not None, log.read_text()
        assert "How much pain do you have now?" in page.replace("how much", "How much")
        assert "No exercises prescribed yet" in page  # no broker, no prescription: it says so

        process.send_signal(signal.SIGHUP)
        assert process.wait(30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log.read_text()
    assert "patient page listening" in text and " stopped" in text, text
    with socket.socket() as probe:  # the page's port is free again (for a restarted service, which
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # like http.server reuses TIME_WAIT)
        probe.bind(("127.0.0.1", page_port))
        probe.listen()
