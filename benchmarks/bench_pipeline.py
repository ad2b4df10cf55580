"""Speed of the path the Pi runs, printed as figures (not a timed test).

    python benchmarks/bench_pipeline.py                # one hour of data, 3 runs per case
    python benchmarks/bench_pipeline.py --minutes 10   # shorter
    python benchmarks/bench_pipeline.py --profile      # plus where the time goes (cProfile)
    python benchmarks/bench_pipeline.py --parts        # plus each part's share (that part a no-op)

Headline: the service path. ``SessionEngine.on_samples`` is fed 4-sample notifications, as
the BLE link hands them over, with everything the service does per sample switched on: the
engine's 0.1 s batches, the tracker, live messages built at the service's 10 Hz (sample-clock
throttle, so a faster-than-real-time run still builds one per 0.1 s of data), results built
and committed to a real SQLite outbox in a temporary folder, the session state file, and the
exercise recogniser (the prescription is a bridge, one of the model's classes, so a 15 s
window is scored every 5 s of data), and each sensor calibrated (the live angle is the
calibrated flexion, its own orientation filter on every sample). One sensor, and two (left and right thigh, both
counting). Not included: paho and the socket (``publish_live`` receives the built envelope and
drops it; ``bench_service.py`` measures the real process with a broker), and the BLE stack.

Beside it, in the same run, the tracker alone (``ExerciseTracker.push``) in the service's
12-sample batches, so the ratio of the two is read off one machine at one moment.

Data: a real UCI straight-leg-raise recording (25 Hz, linearly resampled to 100 Hz, tiled to
the requested length; see tests/data/uci-pt) with a constant 1.7e9 s wall-clock offset.

Figures: CPU seconds (``time.process_time``) per hour of 100 Hz data, the multiple of real
time on one core, µs per sample, over ``--repeats`` runs: the median (what to expect) and the
best (the run least disturbed: shared machines wander by ±30 % from run to run).

Pi Zero 2 W estimate: this machine's CPU time scaled by the single-thread ratio of a
reproducible reference benchmark, ``sysbench cpu --threads=1`` (primes up to 10,000; events/s).
A Raspberry Pi 3B+ (Cortex-A53 at 1.4 GHz, the Zero 2 W's core) scores 687 events/s
(leoncode.co.uk, "Raspberry Pi CPU Benchmarks", sysbench 1.0.20); scaled to the Zero 2 W's
1.0 GHz that is 491. This machine's figure is measured when sysbench is installed, else the
value recorded below is used. A tight integer loop flatters an in-order core compared with a
bytecode interpreter (branchy, cache-hungry), so the script also prints the estimate at twice
that factor as the cautious end of the range; measure on a real Pi to replace both.

The rep "event delay" of the tracker section is measured against the counter's own rep end
(the moment it says the leg was back), not against the true return to rest: on synthetic
truth the event arrives ~0.5 s before the leg is back at rest and ~0.6 s after it starts
down (issue 14's measurement), so read it as the counter's confirmation latency only.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import pstats
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from hipsense import protocol as p
from hipsense.device.samples import ImuSamples
from hipsense.evaluation.uci import read_uci_file
from hipsense.exercises.catalogue import get_exercise
from hipsense.exercises.tracker import ExerciseTracker, TrackerSettings
from hipsense.publish import Outbox
from hipsense.service.config import SessionConfig
from hipsense.service.engine import SessionEngine
from hipsense.service.journal import SampleJournal
from hipsense.service.live_angle import CalibratedAngle
from hipsense.service.results import ResultPublisher
from hipsense.service.state import SessionStateStore
from hipsense.service.timebase import Timebase
from hipsense.service.voice import SilentSpeaker, Voice
from hipsense.signal.calibration import Calibration

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "uci-pt" / "s1" / "e3" / "u3" / "test.txt.gz"
PATIENT = "p-0001"
NOTIFICATION = 4  # samples per BLE notification
SERVICE_BATCH = 12  # what the engine's 0.1 s batches hold at 100 Hz with 4-sample notifications
BATCH_S = 0.1  # the service's batch (SessionEngine's default); --batch-s tries others

MOUNTING = ((0.0, 0.0, 1.0), (-1.0, 0.0, 0.0), (0.0, -1.0, 0.0))
PI_ZERO_2W_SYSBENCH = 687.45 * 1000 / 1400  # Pi 3B+ (A53 at 1.4 GHz) scaled to 1.0 GHz
THIS_MACHINE_SYSBENCH = 3250.0  # recorded here (AMD EPYC VM, 2026-12-03, median of 3) if sysbench is missing


def data_at_100hz(minutes: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t, acc, gyr = read_uci_file(DATA)
    t100 = np.arange(0, t[-1], 0.01)
    acc100 = np.column_stack([np.interp(t100, t, acc[:, i]) for i in range(3)])
    gyr100 = np.column_stack([np.interp(t100, t, gyr[:, i]) for i in range(3)])
    n = int(minutes * 60 * 100)
    reps = int(np.ceil(n / len(t100)))
    tt = (np.arange(len(t100) * reps) * 0.01)[:n]
    return tt, np.tile(acc100, (reps, 1))[:n], np.tile(gyr100, (reps, 1))[:n]


# -- the service path ---------------------------------------------------------------------------


class _SampleClock:
    """The live throttle's clock: the newest sample time (the service runs in real time, the
    benchmark much faster; a wall clock would throttle away almost every live message)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _engine(workdir: Path, sides: tuple[str, ...], clock: _SampleClock, live: list[int],
            batch_s: float = BATCH_S, journal: Path | None = None) -> SessionEngine:
    outbox = Outbox(workdir / "outbox.sqlite")
    publisher = ResultPublisher(PATIENT, outbox, send_live=lambda envelope: live.append(len(envelope.payload)) or True,
                                clock=clock)
    envelope = p.build_prescription(PATIENT, version=1, updated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), exercises=[
        p.PrescribedExercise(order=1, exercise="bridge", sets=20, reps=10, hold_s=0, sides=sides)])
    prescription = p.prescription_from_message(p.parse_message(envelope.topic, envelope.payload))
    timebase = Timebase(monotonic=lambda: 0.0, wall=lambda: 1.7e9)
    engine = SessionEngine(
        sensor_sides=list(sides), publisher=publisher, voice=Voice(SilentSpeaker()),
        timebase=timebase,
        journal=SampleJournal(journal, patient=PATIENT, timebase=timebase) if journal is not None else None,
        settings=SessionConfig(recognition=True), state=SessionStateStore(outbox=outbox),  # as hipsense run: the state rides in each result's transaction
        prescription=prescription, batch_s=batch_s)
    for channel, side in zip(engine.channels, sides):
        # As after `hipsense calibrate`: the live angle is the calibrated flexion (its own
        # orientation filter on every sample), as on an installed Pi. Any proper rotation.
        channel.angle = CalibratedAngle(Calibration(mounting=MOUNTING, side=side))
    return engine


def service_run(t: np.ndarray, acc: np.ndarray, gyr: np.ndarray, sensors: int,
                profile: cProfile.Profile | None = None, batch_s: float = BATCH_S,
                journal: bool = False) -> tuple[float, dict[str, int]]:
    """CPU seconds to push the data through the engine from ``sensors`` sensors, and counts.
    ``journal``: with the sample journal (service/journal.py) on a tmpfs (/dev/shm), as on the
    Pi (/run/hipsense); the counts then include the CPU seconds of its appends alone."""
    sides = ("right",) if sensors == 1 else ("left", "right")
    workdir = Path(tempfile.mkdtemp(prefix="hipsense-bench-"))
    shm = Path(tempfile.mkdtemp(prefix="hipsense-bench-", dir="/dev/shm")) if journal else None
    from hipsense.exercises import recognition

    original, recognised = recognition.recognise, [0]

    def counted(*args, **kwargs):  # the switcher imports it on every window: count them
        recognised[0] += 1
        return original(*args, **kwargs)

    recognition.recognise = counted
    try:
        clock, live = _SampleClock(), []
        engine = _engine(workdir, sides, clock, live, batch_s, journal=shm / "samples.journal" if shm else None)
        appending = [0.0]
        if engine.journal is not None:
            append = engine.journal.append

            def timed_append(*args):
                c0 = time.process_time()
                append(*args)
                appending[0] += time.process_time() - c0

            engine.journal.append = timed_append  # type: ignore[method-assign]
        blocks = [(a, ImuSamples(t_s=t[a:a + NOTIFICATION], acc_ms2=acc[a:a + NOTIFICATION],
                                 gyr_rad_s=gyr[a:a + NOTIFICATION])) for a in range(0, len(t), NOTIFICATION)]
        tick_every = 100 // NOTIFICATION  # the service's housekeeping ticks about once a second
        if profile is not None:
            profile.enable()
        cpu0 = time.process_time()
        for k, (a, block) in enumerate(blocks):
            clock.t = float(t[min(a + NOTIFICATION, len(t)) - 1])
            for index in range(sensors):
                engine.on_samples(index, block)
            if k % tick_every == 0:
                engine.tick()
        cpu = time.process_time() - cpu0
        if profile is not None:
            profile.disable()
        engine.publisher.outbox.close()
        counts = {"live messages": len(live), "results stored": engine.publisher.stored,
                  "windows recognised": recognised[0]}
        if engine.journal is not None:
            counts["journal append CPU ms"] = round(appending[0] * 1000)
            counts["journal bytes"] = sum(f.stat().st_size for f in engine.journal.files if f.exists())
        return cpu, counts
    finally:
        recognition.recognise = original
        shutil.rmtree(workdir, ignore_errors=True)
        if shm is not None:
            shutil.rmtree(shm, ignore_errors=True)


PARTS = {
    # part → (object, attribute, no-op). Without the calibrated angle there is no live message
    # either (the live view has no reading), so its share includes the live messages'.
    "calibrated live angle + live messages": ("hipsense.service.live_angle:CalibratedAngle", "push",
                                              lambda self, *a: None),
    "recogniser (switcher.push)": ("hipsense.service.switching:ExerciseSwitcher", "push", lambda self, *a, **k: None),
    "live messages (_live)": ("hipsense.service.engine:SessionEngine", "_live", lambda self, *a: None),
    "results (_handle)": ("hipsense.service.engine:SessionEngine", "_handle", lambda self, *a: None),
}


def service_run_without(part: str | None, t: np.ndarray, acc: np.ndarray, gyr: np.ndarray) -> float:
    """:func:`service_run` for one sensor with ``part`` (a key of PARTS, or None) made a no-op."""
    if part is None:
        return service_run(t, acc, gyr, 1)[0]
    import importlib

    where, attribute, no_op = PARTS[part]
    module, name = where.split(":")
    owner = getattr(importlib.import_module(module), name)
    original = getattr(owner, attribute)
    setattr(owner, attribute, no_op)
    try:
        return service_run(t, acc, gyr, 1)[0]
    finally:
        setattr(owner, attribute, original)


# -- the tracker alone --------------------------------------------------------------------------


def tracker_run(t: np.ndarray, acc: np.ndarray, gyr: np.ndarray, chunk: int) -> tuple[float, list[float]]:
    """CPU seconds for the tracker alone, and each rep's delay after the counter's rep end."""
    tracker = ExerciseTracker(get_exercise("straight_leg_raise"), TrackerSettings(hold_target_s=5.0))
    delays = []
    cpu0 = time.process_time()
    for i in range(0, len(t), chunk):
        out = tracker.push(t[i:i + chunk], acc[i:i + chunk], gyr[i:i + chunk])
        for r in out.reps:
            delays.append(float(t[min(i + chunk, len(t)) - 1]) - r.end_t_s)
    return time.process_time() - cpu0, delays


# -- reporting ----------------------------------------------------------------------------------


def sysbench_events_per_s() -> tuple[float, str]:
    if shutil.which("sysbench") is None:
        return THIS_MACHINE_SYSBENCH, "recorded (sysbench not installed)"
    out = subprocess.run(["sysbench", "cpu", "--threads=1", "--time=5", "run"], capture_output=True, text=True).stdout
    match = re.search(r"events per second:\s*([\d.]+)", out)
    return (float(match.group(1)), "measured now") if match else (THIS_MACHINE_SYSBENCH, "recorded")


def report(label: str, cpus: list[float], samples: int, hours: float, pi_factor: float | None) -> None:
    median, best = statistics.median(cpus), min(cpus)
    line = (f"{label:42s} CPU/h of data: median {median / hours:6.2f} s (best {best / hours:6.2f})"
            f"  → {3600 * hours / median:6.0f}× real time (best {3600 * hours / best:.0f}×)"
            f"  {median / samples * 1e6:5.2f} µs/sample")
    print(line)
    if pi_factor is not None:
        pi_s = median / hours * pi_factor
        print(f"{'':42s} Pi Zero 2 W core, estimated: {pi_s:6.1f} s/h ({pi_s / 36:.2f} % of one core)"
              f" … {2 * pi_s:6.1f} s/h ({2 * pi_s / 36:.2f} %) at twice the factor")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="minutes of 100 Hz data per run (default 60)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case (default 3; the median is reported)")
    parser.add_argument("--profile", action="store_true", help="profile one one-sensor service run and print the top")
    parser.add_argument("--batch-s", type=float, default=BATCH_S,
                        help="the engine's batch for the service path (default 0.1 s, the service's): what larger "
                             "batches would save (they delay counting, not the live angle's latency)")
    parser.add_argument("--journal", action="store_true",
                        help="only the one-sensor service path, without and with the sample journal, alternated")
    parser.add_argument("--parts", action="store_true",
                        help="also run the one-sensor service path with each part a no-op (CPU time; for instruction "
                             "counts run service_run_without under callgrind, see docs/performance.md)")
    args = parser.parse_args()

    t, acc, gyr = data_at_100hz(args.minutes)
    hours = len(t) / 100 / 3600
    here, how = sysbench_events_per_s()
    factor = here / PI_ZERO_2W_SYSBENCH
    print(f"data: {hours * 60:.0f} min of 100 Hz 6-axis samples ({len(t)}), {NOTIFICATION}-sample notifications, "
          f"{args.repeats} runs per case, the engine's batches {args.batch_s:g} s")
    print(f"Pi Zero 2 W factor: sysbench here {here:.0f} events/s ({how}) / Pi Zero 2 W {PI_ZERO_2W_SYSBENCH:.0f}"
          f" = {factor:.1f}× (see the docstring)\n")

    if args.journal:
        runs: dict[bool, list[tuple[float, dict[str, int]]]] = {False: [], True: []}
        for _ in range(args.repeats):
            for journal in (False, True):
                runs[journal].append(service_run(t, acc, gyr, 1, batch_s=args.batch_s, journal=journal))
        for journal in (False, True):
            report(f"service path, 1 sensor, journal {'on' if journal else 'off'}", [c for c, _ in runs[journal]],
                   len(t), hours, factor)
            print(f"{'':42s} " + ", ".join(f"{k}: {v}" for k, v in runs[journal][0][1].items()))
        appends = statistics.median(c["journal append CPU ms"] for _, c in runs[True]) / 1000
        whole = statistics.median(c for c, _ in runs[True])
        print(f"journal appends alone: {appends:.2f} CPU s of {whole:.2f} ({100 * appends / whole:.1f} %), "
              f"{appends / len(t) * 1e6:.2f} µs a sample")
        return
    for sensors in (1, 2):
        runs = [service_run(t, acc, gyr, sensors, batch_s=args.batch_s) for _ in range(args.repeats)]
        counts = runs[0][1]
        report(f"service path, {sensors} sensor{'s' if sensors > 1 else ''}", [c for c, _ in runs],
               len(t) * sensors, hours, factor)
        print(f"{'':42s} " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    for chunk in (SERVICE_BATCH, NOTIFICATION):
        runs = [tracker_run(t, acc, gyr, chunk) for _ in range(args.repeats)]
        report(f"tracker alone, {chunk}-sample chunks", [c for c, _ in runs], len(t), hours, None)
        delays = runs[0][1]
        if delays:
            print(f"{'':42s} reps: {len(delays)}; event after the counter's own rep end: median "
                  f"{np.median(delays):.3f} s, max {np.max(delays):.3f} s (not the true return to rest)")

    if args.parts:
        print("\nthe one-sensor service path with one part a no-op (CPU µs per sample, median of the runs):")
        whole = statistics.median(service_run_without(None, t, acc, gyr) for _ in range(args.repeats))
        print(f"  {'whole':42s} {whole / len(t) * 1e6:6.2f}")
        for part in PARTS:
            cpu = statistics.median(service_run_without(part, t, acc, gyr) for _ in range(args.repeats))
            print(f"  {'without ' + part:42s} {cpu / len(t) * 1e6:6.2f}   → the part: {(whole - cpu) / len(t) * 1e6:5.2f}")

    if args.profile:
        profile = cProfile.Profile()
        service_run(t, acc, gyr, 1, profile)
        print("\nwhere the time goes (one sensor, cumulative and own time, top 30 by own time):")
        pstats.Stats(profile).strip_dirs().sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
