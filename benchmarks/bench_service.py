"""End-to-end figures of ``hipsense run``, printed (not a timed test).

    python benchmarks/bench_service.py                 # 10 minutes of 100 Hz streaming, TLS broker
    python benchmarks/bench_service.py --duration 120 --runs 3   # three shorter runs, medians
    python benchmarks/bench_service.py --no-tls        # a plain broker, as before issue 14

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

Per stage: the service is started with ``HIPSENSE_LIVE_TRACE`` (hipsense/service/livetrace.py)
and stamps each live message's newest notification as queued by the BLE loop, as taken by the
processing thread, the message built, paho's publish() returned and the packet written to the
socket; joined with the subscriber's arrival on the message's ``t``, each run prints p50 and
p99 per stage and, for the slowest 1 % end to end, the mean of each stage (what the tail is
made of). "sample → queued" is the link: the fitted sample time is the lower envelope of
receive times (device/clock.py), so it holds the link's jitter above its fastest delivery.

TLS: by default the broker listens with TLS only (a throw-away CA and server certificate made
with openssl, as in production where the Pi talks to the clinic's broker over 8883), the service
verifies it with ``tls_ca_file`` and the subscriber too.

Start-up: before the streaming runs, the service is started ``--starts`` times with a cached
prescription of ``--exercise`` in its state folder (a bridge by default, one of the recognition
model's classes, so the recogniser is loaded before the service says it is ready: the worst
case). "Ready" is the ``READY=1`` the service sends systemd (a NOTIFY_SOCKET made here),
measured from the moment the process is spawned; RSS is read 10 s later, the emulated sensor
streaming. The same number of starts follows with the sensor on the BLE backend, as on a Pi:
READY=1 comes before the sensor links open, so no sensor is needed, and the emulator's Bumble
(imported while the config is read, about 40 % of the emulated start) is not loaded.

Resources: CPU and resident memory (RSS, from /proc) of the service process, after a warm-up.
They include the emulated sensor and Bumble's emulated controller and host, which on a Pi live
in bluetoothd instead; ``--baseline`` measures that part alone in a second process (the same
links without the service) so the difference can be read off. Memory by imported package is
measured in a fresh interpreter, to say what dominates.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
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


def make_tls_files(directory: Path) -> dict[str, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 (openssl), as tests/pki.py makes for the tests."""
    ca_key, ca, key, csr, cert = (directory / n for n in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt"))
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=hipsense bench CA",
        "-keyout", str(ca_key), "-out", str(ca))
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(csr))
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-days", "2",
        "-extfile", str(directory / "san.ext"), "-out", str(cert))
    return {"ca": ca, "cert": cert, "key": key}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


class Subscriber:
    def __init__(self, port: int, ca: Path | None = None) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.live_ms: list[float] = []
        self.live_arrivals: dict[str, float] = {}  # the message's t (as sent) → arrival, for the stage trace
        self.rep_ms: list[float] = []
        self.reps = 0
        self.lock = threading.Lock()
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-sub")
        if ca is not None:
            self.client.tls_set(ca_certs=str(ca))
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
                self.live_arrivals[doc["t"]] = now
            elif message.topic.endswith("/event/rep"):
                self.reps += 1
                if self.measuring:
                    self.rep_ms.append((now - _utc(doc["t_end"])) * 1000)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _utc(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


STAGES = (
    ("sample → queued", 0, 1, "the newest sample's t (fitted sensor clock) to its notification queued by the BLE loop"),
    ("queued → dequeued", 1, 2, "waiting in the processing thread's queue"),
    ("dequeued → built", 2, 3, "the engine: batching, counting, live angle, recogniser, the live message"),
    ("built → publish returned", 3, 4, "paho's publish() on the processing thread"),
    ("built → on socket", 3, 5, "paho's network thread wakes and writes (TLS) the packet"),
    ("on socket → subscriber", 5, 6, "broker in and out, TLS, the subscriber's paho"),
    ("sample → subscriber", 0, 6, "end to end (as the latency above)"),
)


def stage_table(trace: Path, arrivals: dict[str, float]) -> dict[str, list[float]]:
    """Per stage of the live path: [p50, p99, mean over the slowest 1 % end to end, n] in ms.

    Joins the service's stamps (``HIPSENSE_LIVE_TRACE``, see hipsense/service/livetrace.py) with
    the subscriber's arrival times on the message's ``t``."""
    rows = []
    if trace.exists():
        for line in trace.read_text().splitlines():
            t, *stamps = line.split("\t")
            if t in arrivals and len(stamps) == 5:
                rows.append([_utc(t), *map(float, stamps), arrivals[t]])
    if not rows:
        return {}
    totals = sorted(row[6] - row[0] for row in rows)
    tail_from = percentile(totals, 99)
    tail = [row for row in rows if row[6] - row[0] >= tail_from]
    out = {}
    for name, a, b, _ in STAGES:
        ms = [(row[b] - row[a]) * 1000 for row in rows]
        out[name] = [statistics.median(ms), percentile(ms, 99),
                     statistics.mean((row[b] - row[a]) * 1000 for row in tail), len(rows)]
    return out


def print_stages(stages: dict[str, list[float]], title: str = "per stage") -> None:
    if not stages:
        print("  (no stage trace: the service wrote none)")
        return
    n = int(next(iter(stages.values()))[3])
    print(f"  {title} ({n} live messages), ms: p50, p99, and the mean over the slowest 1 % end to end")
    for name, _, _, what in STAGES:
        p50, p99, tail, _ = stages[name]
        print(f"    {name:26s} {p50:7.1f} {p99:7.1f} {tail:7.1f}   {what}")


def prescription(exercise: str):
    from hipsense.protocol import PrescribedExercise, build_prescription

    return build_prescription(PATIENT, version=1, updated_at=dt.datetime.now(dt.UTC), exercises=[
        PrescribedExercise(order=1, exercise=exercise, sets=20, reps=10, hold_s=5, sides=("right",))])


def publish_prescription(port: int, exercise: str, ca: Path | None = None) -> None:
    envelope = prescription(exercise)
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-therapist")
    if ca is not None:
        client.tls_set(ca_certs=str(ca))
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
             ('fastjsonschema + protocol', 'hipsense.protocol'), ('paho-mqtt', 'hipsense.publish.mqtt'),
             ('bleak + device layer', 'hipsense.device.ble'), ('service modules', 'hipsense.service.service'),
             ('bumble + emulator (emulator runs only)', 'hipsense.device.emulator'),
             ('recogniser (numpy only since issue 14)', 'hipsense.exercises.recognition'),
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


def _write_config(workdir: Path, port: int, ca: Path | None, state: Path) -> Path:
    config = workdir / "hipsense.toml"
    tls = f'tls_ca_file = "{ca}"\n' if ca is not None else ""
    config.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\npatient_id = "{PATIENT}"\n{tls}'
        f'[sensor]\nbackend = "emulator"\nside = "right"\nrate_hz = 100\n'
        f'[service]\nstate_dir = "{state}"\nvoice = "off"\nlog_level = "warning"\n'
        f'[session]\nrecognition = "on"\n[emulator]\nspeed = 1.0\nloop = true\n')
    return config


def _spawn(workdir: Path, config: Path, env: dict[str, str], log_name: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hipsense", "run", "--config", str(config)], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(workdir / log_name, "w"), cwd=REPO)


def _stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def measure_start(workdir: Path, port: int, ca: Path | None, exercise: str, env: dict[str, str], k: int,
                  *, bluez: bool = False) -> tuple[float, float]:
    """Seconds from spawn to READY=1, and RSS (MB) 10 s later, with a cached ``exercise`` prescription.

    ``bluez``: the sensor on the BLE backend, as on a Pi, instead of the emulator (no sensor
    answers; READY=1 comes before the links open, so the start is what a Pi's is, without
    importing Bumble for an emulated sensor). RSS is then not measured (0.0)."""
    state = workdir / f"state-start-{'bluez-' if bluez else ''}{k}"
    state.mkdir()
    (state / "prescription.json").write_bytes(prescription(exercise).payload)
    notify_path = workdir / f"notify-{'bluez-' if bluez else ''}{k}.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(30)
    config = _write_config(workdir, port, ca, state)
    if bluez:
        config.write_text(config.read_text().replace('backend = "emulator"',
                                                     'backend = "bluez"\naddress = "F1:57:00:00:00:01"'))
    t0 = time.monotonic()
    service = _spawn(workdir, config, {**env, "NOTIFY_SOCKET": str(notify_path)}, f"service-start-{k}.log")
    try:
        while True:
            message = notify.recv(4096).decode()
            if "READY=1" in message:
                ready_s = time.monotonic() - t0
                break
        if bluez:
            return ready_s, 0.0
        time.sleep(10)
        return ready_s, proc_rss_mb(service.pid)
    finally:
        _stop(service)
        notify.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="measured seconds of streaming per run (default 600)")
    parser.add_argument("--runs", type=int, default=1, help="streaming runs (default 1; medians over runs)")
    parser.add_argument("--starts", type=int, default=3, help="start-ups measured for ready time and RSS (default 3)")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds before measuring (default 15)")
    parser.add_argument("--baseline", action="store_true", help="also measure the emulated BLE part alone")
    parser.add_argument("--tls", action=argparse.BooleanOptionalAction, default=True, help="TLS on the broker (default on)")
    parser.add_argument("--exercise", default="bridge",
                        help="prescribed exercise (default bridge, a class of the recognition model, so the service "
                             "loads the recogniser and recognises a window every 5 s: the worst case; "
                             "straight_leg_raise is one the recogniser does not know)")
    args = parser.parse_args()

    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    workdir = Path(tempfile.mkdtemp(prefix="hipsense-bench-"))
    port = free_port()
    # as root, mosquitto would drop to a user that cannot read the key in the temporary folder
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true", f"user {getpass.getuser()}"]
    ca = None
    if args.tls:
        files = make_tls_files(workdir)
        ca = files["ca"]
        lines += [f"cafile {files['ca']}", f"certfile {files['cert']}", f"keyfile {files['key']}"]
    (workdir / "mosquitto.conf").write_text("\n".join(lines) + "\n")
    broker = subprocess.Popen([mosquitto, "-c", str(workdir / "mosquitto.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    if broker.poll() is not None:
        raise SystemExit(f"mosquitto did not start (exit {broker.returncode}); config: {workdir / 'mosquitto.conf'}")
    env = {**os.environ, **unit_environment()}
    print("service environment (from the unit):", " ".join(f"{k}={v}" for k, v in unit_environment().items()))
    print(f"broker: mosquitto on 127.0.0.1:{port}, {'TLS' if args.tls else 'plain'}; prescription: {args.exercise}")

    subscriber = None
    try:
        starts = [measure_start(workdir, port, ca, args.exercise, env, k) for k in range(args.starts)]
        if starts:
            ready, rss_start = [r for r, _ in starts], [m for _, m in starts]
            print(f"\nstart-up ({args.starts} starts, cached {args.exercise} prescription, recogniser loaded before ready): "
                  f"ready after {statistics.median(ready):.2f} s median ({', '.join(f'{r:.2f}' for r in ready)}); "
                  f"RSS 10 s later {statistics.median(rss_start):.1f} MB median ({', '.join(f'{m:.1f}' for m in rss_start)})"
                  "   (floor: ready ≤ 1.5 s, RSS ≤ 80 MB)")
            # the same starts with the sensor on the BLE backend: what a Pi runs (no Bumble)
            ready_pi = [measure_start(workdir, port, ca, args.exercise, env, k, bluez=True)[0]
                        for k in range(args.starts)]
            print(f"start-up with the BLE backend, as on a Pi ({args.starts} starts): ready after "
                  f"{statistics.median(ready_pi):.2f} s median ({', '.join(f'{r:.2f}' for r in ready_pi)})")

        publish_prescription(port, args.exercise, ca)
        subscriber = Subscriber(port, ca)
        per_run = []
        for run in range(args.runs):
            state = workdir / f"state-run-{run}"
            config = _write_config(workdir, port, ca, state)
            trace_path = workdir / f"live-trace-{run}.tsv"
            service = _spawn(workdir, config, {**env, "HIPSENSE_LIVE_TRACE": str(trace_path)}, f"service-run-{run}.log")
            baseline = None
            if args.baseline and run == 0:
                baseline = subprocess.Popen([sys.executable, "-c", BASELINE], cwd=REPO, env=env,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                print(f"run {run + 1}/{args.runs}: warming up {args.warmup:.0f} s, then measuring {args.duration:.0f} s "
                      "of 100 Hz streaming …", flush=True)
                time.sleep(args.warmup)
                with subscriber.lock:
                    subscriber.live_ms, subscriber.rep_ms, subscriber.live_arrivals = [], [], {}
                subscriber.measuring = True
                pids = [("service", service.pid)] + ([("baseline", baseline.pid)] if baseline else [])
                start = {name: (time.monotonic(), proc_cpu_s(pid)) for name, pid in pids}
                rss = {name: [proc_rss_mb(pid)] for name, pid in pids}
                end_at = time.monotonic() + args.duration
                while time.monotonic() < end_at:
                    time.sleep(min(5.0, max(0.0, end_at - time.monotonic())))
                    for name, pid in pids:
                        rss[name].append(proc_rss_mb(pid))
                usage = {name: (proc_cpu_s(pid) - start[name][1]) / (time.monotonic() - start[name][0]) * 100
                         for name, pid in pids}
                subscriber.measuring = False
                maps = Path(f"/proc/{service.pid}/maps").read_text()
            finally:
                _stop(service)
                _stop(baseline)
            live = list(subscriber.live_ms)
            per_run.append({
                "live": len(live), "p50": statistics.median(live) if live else float("nan"),
                "p99": percentile(live, 99) if live else float("nan"), "max": max(live) if live else float("nan"),
                "reps": len(subscriber.rep_ms), "rep_p50": statistics.median(subscriber.rep_ms) if subscriber.rep_ms else float("nan"),
                "cpu": usage["service"], "rss_max": max(rss["service"]), "rss_end": rss["service"][-1],
                "scipy": "/scipy/" in maps, "usage": usage, "rss": rss,
            })
            r = per_run[-1]
            print(f"  live {r['live']} ({r['live'] / args.duration:.1f}/s), latency p50 {r['p50']:.1f} ms, "
                  f"p99 {r['p99']:.1f} ms, max {r['max']:.1f} ms; rep events {r['reps']}; CPU {r['cpu']:.2f} % of one core; "
                  f"RSS max {r['rss_max']:.1f} MB; scipy loaded: {r['scipy']}")
            r["stages"] = stage_table(trace_path, dict(subscriber.live_arrivals))
            print_stages(r["stages"])
            if baseline is not None:
                print(f"  emulated BLE part alone: CPU {usage['baseline']:.2f} %, RSS max {max(rss['baseline']):.1f} MB")
    finally:
        if subscriber is not None:
            subscriber.stop()
        broker.terminate()
        broker.wait()

    if per_run:
        med = {k: statistics.median(r[k] for r in per_run) for k in ("p50", "p99", "max", "cpu", "rss_max")}
        print(f"\nservice: python -m hipsense run, emulated WitMotion at 100 Hz, {args.runs} run(s) of {args.duration:.0f} s, "
              f"{'TLS' if args.tls else 'plain'} broker, prescription {args.exercise}")
        print(f"latency notification → subscriber, median over runs: p50 {med['p50']:.1f} ms, p99 {med['p99']:.1f} ms, "
              f"max {med['max']:.1f} ms   (floor: p99 ≤ 50 ms with TLS)")
        traced = [r["stages"] for r in per_run if r["stages"]]
        print_stages({k: [statistics.median(stages[k][i] for stages in traced) for i in range(4)]
                      for k in (traced[0] if traced else {})}, "per stage, median over runs")
        print(f"service CPU {med['cpu']:.2f} % of one core (emulated sensor and Bumble included), RSS max {med['rss_max']:.1f} MB")
    steps = json.loads(subprocess.run([sys.executable, "-c", IMPORTS], capture_output=True, text=True, cwd=REPO,
                                      env={**os.environ, **unit_environment()}, check=True).stdout)
    print("\nresident memory by import (fresh interpreter): MB added, MB total")
    for label, added, total in steps:
        print(f"  {label:44s} +{added:5.1f}  {total:6.1f}")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
