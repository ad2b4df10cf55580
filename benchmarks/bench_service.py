"""End-to-end figures of ``hipsense run``, printed (not a timed test).

    python benchmarks/bench_service.py                 # 10 minutes of 100 Hz streaming
    python benchmarks/bench_service.py --duration 60   # shorter

What runs: a Mosquitto on a free port; the real service (``python -m hipsense run``) in a
subprocess with an emulated WitMotion at 100 Hz replaying the UCI straight-leg-raise recording
in a loop at real time (Bumble virtual radio, the same bleak code path as BlueZ); a subscriber in
this process. A prescription of 20 sets (the maximum; about 27 minutes of this recording) keeps the session going for the whole run.

Latency: for every live message, its arrival time at the subscriber minus its ``t``, the UTC
time of the newest sample it carries. That sample's time is its notification's receive time as
fitted by the WitMotion clock (the sensor has no clock of its own), so this is "sensor
notification → message at a subscriber", including batching, counting, JSON + schema, paho,
the broker and paho again. Both ends read the same host clock. Rep events are reported too,
from the end of the rep (the moment the leg is back at rest) to arrival: that includes the
counter's own confirmation delay, which is algorithmic, not transport.

Resources: CPU and resident memory (RSS, from /proc) of the service process, after a warm-up.
They include the emulated sensor and Bumble's emulated controller and host, which on a Pi live
in bluetoothd instead; ``--baseline`` measures that part alone in a second process (the same
links without the service) so the difference can be read off. Memory by imported package is
measured in a fresh interpreter, to say what dominates.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PATIENT = "p-0001"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def unit_environment() -> dict[str, str]:
    """The Environment= settings of deploy/pi/hipsense.service: measure the service as deployed."""
    env: dict[str, str] = {}
    for line in (REPO / "deploy" / "pi" / "hipsense.service").read_text().splitlines():
        if line.startswith("Environment="):
            for item in line.removeprefix("Environment=").split():
                key, _, value = item.partition("=")
                env[key] = value
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


class Subscriber:
    def __init__(self, port: int) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.live_ms: list[float] = []
        self.rep_ms: list[float] = []
        self.reps = 0
        self.lock = threading.Lock()
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-sub")
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *a: c.subscribe([(f"hipsense/v1/{PATIENT}/live", 0),
                                                              (f"hipsense/v1/{PATIENT}/event/#", 1)])
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.measuring = False

    def _on_message(self, client, userdata, message) -> None:
        now = time.time()
        doc = json.loads(message.payload)
        with self.lock:
            if message.topic.endswith("/live") and self.measuring:
                self.live_ms.append((now - _utc(doc["t"])) * 1000)
            elif message.topic.endswith("/event/rep"):
                self.reps += 1
                if self.measuring:
                    self.rep_ms.append((now - _utc(doc["t_end"])) * 1000)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _utc(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def publish_prescription(port: int, exercise: str) -> None:
    from hipsense.protocol import PrescribedExercise, build_prescription

    envelope = build_prescription(PATIENT, version=1, updated_at=dt.datetime.now(dt.UTC), exercises=[
        PrescribedExercise(order=1, exercise=exercise, sets=20, reps=10, hold_s=5, sides=("right",))])
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-therapist")
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish(envelope.topic, envelope.payload, qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


BASELINE = textwrap.dedent("""
    import asyncio, sys
    from hipsense.service.config import EmulatorConfig, SensorConfig
    from hipsense.service.sensors import open_links
    from hipsense.service.timebase import Timebase

    async def main():
        async with open_links((SensorConfig(backend="emulator"),), EmulatorConfig(loop=True), Timebase()) as links:
            n = 0
            async for item in links[0].decoded():
                n += getattr(item, "n", 0)
    asyncio.run(main())
""")

IMPORTS = textwrap.dedent("""
    import importlib, json
    def rss():
        for line in open('/proc/self/status'):
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    steps = [('python', None), ('numpy', 'numpy'),
             ('tracker + signal kernels (numpy only)', 'hipsense.exercises.tracker'),
             ('jsonschema + protocol', 'hipsense.protocol'), ('paho-mqtt', 'hipsense.publish.mqtt'),
             ('bleak + device layer', 'hipsense.device.ble'), ('service modules', 'hipsense.service.service'),
             ('bumble + emulator (emulator runs only)', 'hipsense.device.emulator'),
             ('recogniser: scipy.signal, stats, ... (lazy)', 'hipsense.exercises.recognition'),
             ('recognition model', None)]
    out, last = [], rss()
    for label, module in steps:
        if module:
            importlib.import_module(module)
        elif label == 'recognition model':
            from hipsense.exercises.recognition import load_model; load_model()
        now = rss(); out.append((label, round(now - last, 1), round(now, 1))); last = now
    print(json.dumps(out))
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="measured seconds of streaming (default 600)")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds before measuring (default 15)")
    parser.add_argument("--baseline", action="store_true", help="also measure the emulated BLE part alone")
    parser.add_argument("--exercise", default="straight_leg_raise",
                        help="prescribed exercise (default straight_leg_raise, which the recogniser does not know, "
                             "so scipy is never loaded; 'bridge' makes the service load it: the worst case)")
    args = parser.parse_args()

    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    workdir = Path(tempfile.mkdtemp(prefix="hipsense-bench-"))
    port = free_port()
    (workdir / "mosquitto.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    broker = subprocess.Popen([mosquitto, "-c", str(workdir / "mosquitto.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    publish_prescription(port, args.exercise)
    subscriber = Subscriber(port)
    config = workdir / "hipsense.toml"
    config.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\npatient_id = "{PATIENT}"\n'
        f'[sensor]\nbackend = "emulator"\nside = "right"\nrate_hz = 100\n'
        f'[service]\nstate_dir = "{workdir / "state"}"\nvoice = "off"\nlog_level = "warning"\n'
        f'[session]\nrecognition = "on"\n[emulator]\nspeed = 1.0\nloop = true\n')
    env = {**os.environ, **unit_environment()}
    print("service environment (from the unit):", " ".join(f"{k}={v}" for k, v in unit_environment().items()))
    service = subprocess.Popen([sys.executable, "-m", "hipsense", "run", "--config", str(config)], env=env,
                               stdout=subprocess.DEVNULL, stderr=open(workdir / "service.log", "w"), cwd=REPO)
    baseline = None
    if args.baseline:
        baseline = subprocess.Popen([sys.executable, "-c", BASELINE], cwd=REPO, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        print(f"warming up {args.warmup:.0f} s, then measuring {args.duration:.0f} s of 100 Hz streaming …", flush=True)
        time.sleep(args.warmup)
        subscriber.measuring = True
        pids = [("service", service.pid)] + ([("baseline", baseline.pid)] if baseline else [])
        start = {name: (time.monotonic(), proc_cpu_s(pid)) for name, pid in pids}
        rss = {name: [proc_rss_mb(pid)] for name, pid in pids}
        end_at = time.monotonic() + args.duration
        while time.monotonic() < end_at:
            time.sleep(min(5.0, max(0.0, end_at - time.monotonic())))
            for name, pid in pids:
                rss[name].append(proc_rss_mb(pid))
        usage = {}
        for name, pid in pids:
            wall0, cpu0 = start[name]
            usage[name] = (proc_cpu_s(pid) - cpu0) / (time.monotonic() - wall0) * 100
        subscriber.measuring = False
        (workdir / "maps.txt").write_text(Path(f"/proc/{service.pid}/maps").read_text())
    finally:
        for process in (service, baseline):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
        subscriber.stop()
        broker.terminate()
        broker.wait()

    live = subscriber.live_ms
    print(f"\nservice: python -m hipsense run, emulated WitMotion at 100 Hz, {args.duration:.0f} s measured, "
          f"prescription {args.exercise}")
    scipy_loaded = "/scipy/" in (workdir / "maps.txt").read_text() if (workdir / "maps.txt").exists() else None
    print(f"scipy loaded by the service: {scipy_loaded}")
    if live:
        print(f"live messages: {len(live)} ({len(live) / args.duration:.1f}/s)")
        print(f"latency notification → subscriber: p50 {statistics.median(live):.1f} ms, "
              f"p99 {percentile(live, 99):.1f} ms, max {max(live):.1f} ms   (floor: p99 ≤ 100 ms)")
    if subscriber.rep_ms:
        print(f"rep events: {len(subscriber.rep_ms)}, rep end → subscriber: p50 {statistics.median(subscriber.rep_ms):.0f} ms "
              f"(counter confirmation delay included)")
    for name in usage:
        values = rss[name]
        quarters = [values[min(len(values) - 1, round(q * (len(values) - 1)))] for q in (0.25, 0.5, 0.75, 1.0)]
        print(f"{name}: CPU {usage[name]:.2f} % of one core, RSS {values[0]:.1f} MB at start, "
              f"{' / '.join(f'{v:.1f}' for v in quarters)} MB at 1/4 … end, max {max(values):.1f} MB"
              + ("   (floor: ≤ 5 %, ≤ 120 MB)" if name == "service" else "   (emulated BLE part alone)"))
    steps = json.loads(subprocess.run([sys.executable, "-c", IMPORTS], capture_output=True, text=True, cwd=REPO,
                                      env={**os.environ, **unit_environment()}, check=True).stdout)
    print("\nresident memory by import (fresh interpreter): MB added, MB total")
    for label, added, total in steps:
        print(f"  {label:44s} +{added:5.1f}  {total:6.1f}")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
