"""Dashboard ingest throughput into PostgreSQL with two instances sharing the subscription.

    python benchmarks/bench_dashboard_ingest.py [--messages 20000] [--pg postgresql://postgres@127.0.0.1/postgres]
    python benchmarks/bench_dashboard_ingest.py --in-process 2000   # the ingest's own work, no MQTT

Starts its own Mosquitto (a temporary directory, a free port on 127.0.0.1) and a fresh
PostgreSQL database (dropped at the end), then runs two dashboard ingest processes, each an
``IngestService`` on the shared subscription ``$share/hipsense-dashboard/hipsense/v1/+/event/#``,
exactly as ``hipsense dashboard serve`` does. A publisher sends rep events of 20 patients
(QoS 1) plus 5% repeats of earlier messages, the at-least-once redeliveries a dashboard must
absorb. The clock runs from the first publish until the database holds every unique
message. Then it checks that nothing was lost (the stored ids are exactly the published
ones) and nothing was stored twice (row count = unique ids; the repeats were counted as
duplicates), and prints the figures. The rate counts distinct messages only (the repeats are
work the dashboard must do, but they are not results). Exit status 1 if a check fails or the
live rate is below the floor of 5,000 distinct messages/s (issue 14).
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

FLOOR_MSG_PER_S = 5000
PATIENTS = [f"p-bench{n:03d}" for n in range(20)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_mosquitto(workdir: Path) -> tuple[subprocess.Popen, int]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    # Inflight/queue limits raised from Mosquitto's defaults (20 in flight, 1000 queued per
    # client): the dashboard acknowledges a message after its batch commit, so the inflight
    # window is the largest batch the broker lets it build. docs/dashboard.md has these too.
    (workdir / "mosquitto.conf").write_text("\n".join([
        f"listener {port} 127.0.0.1", "allow_anonymous true", "persistence false",
        "max_inflight_messages 1000", "max_queued_messages 200000",
        f"log_dest file {workdir / 'mosquitto.log'}", f"user {os.environ.get('USER') or 'root'}",
    ]) + "\n")
    process = subprocess.Popen([binary, "-c", str(workdir / "mosquitto.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            time.sleep(0.02)
    process.kill()
    raise SystemExit("mosquitto did not start")


def build_messages(count: int) -> list[tuple[str, bytes, str]]:
    """``count`` valid rep events as (topic, payload, message id), spread over the patients."""
    from hipsense import protocol as p

    t0 = dt.datetime(2025, 3, 1, 9, tzinfo=dt.timezone.utc)
    session = p.new_session_id()
    messages = []
    for index in range(count):
        patient = PATIENTS[index % len(PATIENTS)]
        seq = index // len(PATIENTS) + 1
        t = t0 + dt.timedelta(seconds=4 * seq)
        envelope = p.build_rep_event(patient, seq=seq, session_id=session, exercise="clam_shells", side="left",
                                     set_index=1 + seq // 12, rep_index=1 + seq % 12, t_start=t,
                                     t_end=t + dt.timedelta(seconds=3), rom_deg=30 + seq % 10, hold_s=2.0,
                                     peak_speed_dps=60.0)
        messages.append((envelope.topic, envelope.payload, envelope.message_id))
    return messages


def run_ingester(index: int, db_url: str, port: int, go, ready, stop, results) -> None:
    """One dashboard instance in its own process (so the two really run in parallel), set up
    as ``hipsense dashboard serve`` sets it up: a persistent session and a short GIL switch
    interval (see hipsense/dashboard/serve.py)."""
    import dataclasses

    from hipsense.dashboard.db import make_engine
    from hipsense.dashboard.event_store import EventStore
    from hipsense.dashboard.ingest import IngestService
    from hipsense.dashboard.serve import GIL_SWITCH_INTERVAL_S
    from hipsense.publish.mqtt import MqttSettings

    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    engine = make_engine(db_url)
    settings = MqttSettings(host="127.0.0.1", port=port, client_id=f"bench-dashboard-{index}",
                            clean_start=False, session_expiry_s=600)
    service = IngestService(EventStore(engine), settings)
    go.wait()  # imports done: the clock measures ingest, not Python start-up
    cpu_start = time.process_time()
    service.start()
    if not service.wait_connected(10):
        results.put((index, None))
        return
    ready.set()
    stop.wait()
    service.drain(10)
    cpu_s = time.process_time() - cpu_start
    service.stop()
    results.put((index, dataclasses.asdict(service.stats) | {"cpu_s": cpu_s}))
    engine.dispose()


def publish(port: int, messages: list[tuple[str, bytes, str]]) -> float:
    """Publish everything at QoS 1 as fast as the broker acknowledges; return the start time."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    acked = threading.Semaphore(0)
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-publisher",
                         protocol=MQTTProtocolVersion.MQTTv5)
    client.max_inflight_messages_set(500)
    client.max_queued_messages_set(0)
    client.on_publish = lambda *args: acked.release()
    client.connect("127.0.0.1", port)
    client.loop_start()
    started = time.monotonic()
    for topic, payload, _ in messages:
        client.publish(topic, payload, qos=1)
    for _ in messages:
        acked.acquire(timeout=60)
    client.disconnect()
    client.loop_stop()
    return started


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_raw(port: int, messages: list[tuple[str, bytes, str]]) -> float:
    """Publish everything at QoS 1 from packets encoded before the clock starts, over one plain
    MQTT 3.1.1 connection, and wait for every PUBACK; return the start time.

    The Pis encode and send on their own CPUs; paho's publisher costs the dashboard's cores
    about 130 µs a message (a third of what two cores give per message at 5,000/s), which this
    one does not (``--publisher raw``)."""
    import struct

    client_id = b"bench-raw-publisher"
    connect_body = b"\x00\x04MQTT\x04\x02\x00\x3c" + struct.pack("!H", len(client_id)) + client_id
    packets = []
    for index, (topic, payload, _) in enumerate(messages):
        name = topic.encode()
        body = struct.pack("!H", len(name)) + name + struct.pack("!H", index % 65535 + 1) + payload
        packets.append(b"\x32" + _remaining_length(len(body)) + body)
    stream = b"".join(packets)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"\x10" + _remaining_length(len(connect_body)) + connect_body)
    connack = b""
    while len(connack) < 4:
        connack += sock.recv(4 - len(connack))
    if connack[0] != 0x20 or connack[3] != 0:
        raise SystemExit(f"broker refused the raw publisher: {connack!r}")
    acked = 0
    done = threading.Event()

    def read_acks() -> None:
        nonlocal acked
        pending = b""
        while acked < len(messages):
            chunk = sock.recv(65536)
            if not chunk:
                break
            pending += chunk
            while len(pending) >= 2:  # PUBACKs are 4 bytes; anything else is skipped whole
                size = 2 + pending[1]
                if len(pending) < size:
                    break
                if pending[0] == 0x40:
                    acked += 1
                pending = pending[size:]
        done.set()

    reader = threading.Thread(target=read_acks, daemon=True)
    reader.start()
    started = time.monotonic()
    view = memoryview(stream)
    for offset in range(0, len(stream), 65536):
        sock.sendall(view[offset:offset + 65536])
    done.wait(120)
    sock.sendall(b"\xe0\x00")
    sock.close()
    if acked < len(messages):
        raise SystemExit(f"only {acked} of {len(messages)} publishes acknowledged")
    return started


class Instances:
    """The two dashboard ingest processes."""

    def __init__(self, ctx, db_url: str, port: int) -> None:
        self.ctx, self.db_url, self.port = ctx, db_url, port
        self.stop, self.results, self.workers = ctx.Event(), ctx.Queue(), []

    def load(self) -> None:
        """Start the processes; they import and connect nothing until :meth:`go`."""
        self.stop.clear()
        self.go, self.readies = self.ctx.Event(), []
        for index in range(2):
            ready = self.ctx.Event()
            worker = self.ctx.Process(target=run_ingester, args=(
                index, self.db_url, self.port, self.go, ready, self.stop, self.results))
            worker.start()
            self.workers.append(worker)
            self.readies.append(ready)
        time.sleep(3)  # generous time for the imports (spawned processes start from scratch)

    def start(self) -> bool:
        """Let the loaded processes connect; True once both are connected."""
        self.go.set()
        return all(ready.wait(30) for ready in self.readies)

    def finish(self) -> dict[int, dict]:
        self.stop.set()
        stats = dict(self.results.get(timeout=30) for _ in self.workers)
        for worker in self.workers:
            worker.join(10)
        self.workers = []
        return stats

    def kill(self) -> None:
        self.stop.set()
        for worker in self.workers:
            if worker.is_alive():
                worker.terminate()


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_POLLERS: set[int] = set()  # the backends of wait_for_rows, not counted as the ingest's


def database_cpu_s(admin, name: str) -> float:
    """CPU seconds of the PostgreSQL backends now connected to database ``name`` but the
    poller's: the ingest instances' (each phase's instances connect anew), from /proc (the
    server runs on this machine)."""
    pids = [pid for (pid,) in admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [name])
            if pid not in _POLLERS]
    total = 0.0
    for pid in pids:
        try:
            total += process_cpu_s(pid)
        except OSError:  # gone meanwhile
            pass
    return total


def wait_for_rows(engine, target: int, timeout: float = 300) -> float:
    """Poll until the events table holds ``target`` rows; return the time it happened."""
    from sqlalchemy import func, select

    from hipsense.dashboard.db.tables import events

    with engine.connect() as connection:
        _POLLERS.add(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
        deadline = time.monotonic() + timeout
        while connection.scalar(select(func.count()).select_from(events)) < target:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)  # count(*) is not free: polling must not eat the CPU being measured
            connection.rollback()  # a fresh snapshot each time
    return time.monotonic()


def with_repeats(unique: list, rng: random.Random) -> tuple[list, int]:
    repeats = rng.sample(unique, len(unique) // 20)
    stream = unique + repeats
    rng.shuffle(stream)  # repeats and out-of-order arrivals mixed in
    return stream, len(repeats)


def report(title: str, stats: dict[int, dict], unique: int, sent: int, elapsed: float, broker_cpu_s: float,
           database_cpu: float, publisher_cpu_s: float | None = None) -> float:
    rate = unique / elapsed
    print(f"\n{title}")
    for index, s in sorted(stats.items()):
        print(f"  instance {index}: received {s['received']:6d}  stored {s['stored']:6d}  duplicates "
              f"{s['duplicates']:5d}  rejected {s['rejected']}  commits {s['batches']:5d} "
              f"({s['received'] / max(1, s['batches']):.1f} msg each)  CPU {s['cpu_s']:.1f} s "
              f"({s['cpu_s'] / max(1, s['received']) * 1e6:.0f} µs/msg)")
    ingest_cpu_s = sum(s["cpu_s"] for s in stats.values())
    print(f"  mosquitto CPU {broker_cpu_s:.1f} s, PostgreSQL backends {database_cpu:.1f} s"
          + ("" if publisher_cpu_s is None else f", publisher {publisher_cpu_s:.1f} s"))
    parts = [("ingest", ingest_cpu_s), ("PostgreSQL", database_cpu), ("mosquitto", broker_cpu_s)]
    if publisher_cpu_s is not None:
        parts.append(("publisher", publisher_cpu_s))
    total = sum(cpu for _, cpu in parts)
    print(f"  CPU per distinct message: {total / unique * 1e6:.0f} µs in all ("
          + ", ".join(f"{label} {cpu / unique * 1e6:.0f}" for label, cpu in parts)
          + f"); the {os.cpu_count()} cores gave {os.cpu_count() * elapsed / unique * 1e6:.0f} µs per message")
    print(f"  {unique} distinct messages ({sent} with the repeats) in {elapsed:.2f} s: {rate:,.0f} distinct messages/s "
          f"({sent / elapsed:,.0f}/s counting the repeats)")
    return rate


def in_process(count: int, pg: str) -> int:
    """The ingest's own work without MQTT: ``receive()`` of ``count`` rep events (acknowledgements
    are no-ops), then the writer stores them in batches of 200 on a fresh PostgreSQL database.
    Prints the client's CPU per message. Under callgrind, run it with 0 and with N messages:
    the difference / N is the instructions per message, which other work on the machine does
    not change."""
    import psycopg

    from hipsense.dashboard.db import make_engine, migrate
    from hipsense.dashboard.event_store import EventStore
    from hipsense.dashboard.ingest import IngestService
    from hipsense.publish.mqtt import MqttSettings

    messages = build_messages(2000)  # the same work before the clock, whatever the count
    messages = (messages * (count // len(messages) + 1))[:count] if count > len(messages) else messages[:count]
    name = f"hipsense_bench_{secrets.token_hex(4)}"
    admin = psycopg.connect(pg, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        engine = make_engine(pg.rsplit("/", 1)[0] + "/" + name)
        migrate(engine)
        now = dt.datetime(2025, 3, 2, tzinfo=dt.timezone.utc)  # the messages' day: all plausible
        service = IngestService(EventStore(engine), MqttSettings(host="127.0.0.1", port=1), batch_max=200,
                                clock=lambda: now)
        service.store.write_batch([])  # connected before the clock
        cpu = time.process_time()
        for topic, payload, _ in messages:  # all queued first: the batches are the same every run
            service.receive(topic, payload, lambda: None)
        service.start(connect=False)
        drained = service.drain(600)
        cpu = time.process_time() - cpu
        service.stop()
        engine.dispose()
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    unique = len({message_id for _, _, message_id in messages})
    if not drained or service.stats.stored != unique:
        print(f"FAILED: stored {service.stats.stored} of {unique}", file=sys.stderr)
        return 1
    per_message = f"{cpu / count * 1e6:.0f} µs of client CPU per message" if count else f"{cpu * 1e6:.0f} µs of CPU"
    print(f"in process, no MQTT: {count} rep events received and stored in batches of 200: {per_message}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000, help="unique messages per phase (default 20000)")
    parser.add_argument("--publisher", choices=["paho", "raw"], default="paho",
                        help="paho (default, as before) or raw: packets encoded before the clock, see publish_raw()")
    parser.add_argument("--pg", default=os.environ.get("HIPSENSE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="an admin URL of the PostgreSQL server (a database is created and dropped)")
    parser.add_argument("--in-process", type=int, metavar="N", default=None,
                        help="only the ingest's own work on N messages, without MQTT (see in_process())")
    args = parser.parse_args()
    if args.in_process is not None:
        return in_process(args.in_process, args.pg)
    sender = publish_raw if args.publisher == "raw" else publish

    import psycopg
    from sqlalchemy import func, select

    from hipsense.dashboard.db import make_engine, migrate
    from hipsense.dashboard.db.tables import events

    load_before = os.getloadavg()
    name = f"hipsense_bench_{secrets.token_hex(4)}"
    admin = psycopg.connect(args.pg, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    db_url = args.pg.rsplit("/", 1)[0] + "/" + name
    workdir = Path(tempfile.mkdtemp(prefix="hipsense-bench-"))
    broker, port = start_mosquitto(workdir)
    instances = Instances(multiprocessing.get_context("spawn"), db_url, port)
    rng = random.Random(1)
    try:
        engine = make_engine(db_url)
        migrate(engine)
        print(f"building 2 x {args.messages} messages (validated by the protocol's builders)...", flush=True)
        live_unique, backlog_unique = build_messages(args.messages), build_messages(args.messages)
        live_stream, live_repeats = with_repeats(live_unique, rng)
        backlog_stream, backlog_repeats = with_repeats(backlog_unique, rng)

        # 1. Live: both instances online while the publisher sends (all on the same 2 cores).
        instances.load()
        broker_cpu = process_cpu_s(broker.pid)
        if not instances.start():
            print("an ingest instance did not connect", file=sys.stderr)
            return 1
        print(f"live: publishing {len(live_stream)} messages ({live_repeats} repeats) to 2 dashboard instances...",
              flush=True)
        publisher_cpu = time.process_time()
        started = sender(port, live_stream)
        live_publisher_cpu = time.process_time() - publisher_cpu  # the publisher's thread and this one
        live_elapsed = wait_for_rows(engine, len(live_unique)) - started
        live_database_cpu = database_cpu_s(admin, name)
        live_stats = instances.finish()
        live_broker_cpu = process_cpu_s(broker.pid) - broker_cpu

        # 2. Backlog: the instances are away (persistent sessions), the broker queues a morning's
        #    results, then both come back and drain it; the publisher no longer competes for CPU.
        print(f"backlog: queueing {len(backlog_stream)} messages while the dashboards are stopped...", flush=True)
        sender(port, backlog_stream)
        instances.load()
        broker_cpu = process_cpu_s(broker.pid)
        started = time.monotonic()
        if not instances.start():
            print("an ingest instance did not reconnect", file=sys.stderr)
            return 1
        backlog_elapsed = wait_for_rows(engine, len(live_unique) + len(backlog_unique)) - started
        backlog_database_cpu = database_cpu_s(admin, name)
        backlog_stats = instances.finish()
        backlog_broker_cpu = process_cpu_s(broker.pid) - broker_cpu

        with engine.connect() as connection:
            rows = connection.scalar(select(func.count()).select_from(events))
            stored_ids = set(connection.scalars(select(events.c.message_id)))
        engine.dispose()
    finally:
        instances.kill()
        broker.terminate()
        broker.wait(5)
        shutil.rmtree(workdir, ignore_errors=True)
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    print(f"\nPostgreSQL database {name} (dropped), Mosquitto on 127.0.0.1:{port}, "
          f"2 ingest processes, {os.cpu_count()} cores")
    # Other work on the machine takes CPU from the run; say how busy it was.
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (1 min)")
    live_rate = report(f"live (the {args.publisher} publisher running on the same cores):", live_stats, len(live_unique), len(live_stream),
                       live_elapsed, live_broker_cpu, live_database_cpu, live_publisher_cpu)
    backlog_rate = report("backlog drain after a restart (ingest alone):", backlog_stats, len(backlog_unique),
                          len(backlog_stream), backlog_elapsed, backlog_broker_cpu, backlog_database_cpu)
    published_ids = {message_id for _, _, message_id in live_unique + backlog_unique}
    lost = len(published_ids - stored_ids)
    duplicates = sum(s["duplicates"] for stats in (live_stats, backlog_stats) for s in stats.values())
    print(f"\nlost: {lost}   rows: {rows} for {len(published_ids)} unique ids   repeats counted as duplicates: "
          f"{duplicates} of {live_repeats + backlog_repeats}")
    ok = lost == 0 and rows == len(published_ids) and stored_ids == published_ids
    ok = ok and duplicates >= live_repeats + backlog_repeats
    ok = ok and all(s["received"] for stats in (live_stats, backlog_stats) for s in stats.values())
    if not ok:
        print("FAILED: lost, doubled or unshared messages", file=sys.stderr)
        return 1
    print("nothing lost, nothing stored twice; both instances took a share in both phases")
    if live_rate < FLOOR_MSG_PER_S:
        print(f"BELOW THE FLOOR: live ingest {live_rate:,.0f} distinct messages/s < {FLOOR_MSG_PER_S:,} "
              f"(backlog drain {backlog_rate:,.0f}/s)", file=sys.stderr)
        return 1
    print(f"OK: live ingest {live_rate:,.0f} distinct messages/s >= floor {FLOOR_MSG_PER_S:,} "
          f"(backlog drain {backlog_rate:,.0f}/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
