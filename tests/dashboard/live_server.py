"""A real dashboard for the browser tests: uvicorn on a free port in a thread, ingesting from
the test broker, with a few weeks of history so the pages have something to show."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time

import uvicorn

from hipsense import protocol as p
from hipsense.dashboard.event_store import EventStore
from tests.mosquitto import free_port

SESSION_EXERCISES = [("clam_shells", "left"), ("clam_shells", "right"), ("bridge", "both")]


def seed_history(store: EventStore, patient: str, *, now: dt.datetime, weeks: int = 6, seed: int = 7) -> int:
    """Sessions on most days of the last ``weeks`` weeks (ROM improving, pain easing); return
    the next free seq."""
    rng = random.Random(seed)
    seq = 1
    batch = []
    for day in range(weeks * 7, 0, -1):
        if rng.random() < 0.25:
            continue  # a missed day
        start = (now - dt.timedelta(days=day)).replace(hour=9, minute=0, second=0, microsecond=0)
        session = p.new_session_id()
        progress = 1 - day / (weeks * 7)
        summaries = []
        t = start
        for exercise, side in SESSION_EXERCISES:
            roms = []
            for rep_index in range(1, 11):
                rom = round(30 + 10 * progress + rng.uniform(-3, 3), 1)
                roms.append(rom)
                batch.append(p.build_rep_event(patient, seq=seq, session_id=session, exercise=exercise, side=side,
                                               set_index=1, rep_index=rep_index, t_start=t,
                                               t_end=t + dt.timedelta(seconds=4), rom_deg=rom, hold_s=2.0,
                                               peak_speed_dps=70.0))
                seq += 1
                t += dt.timedelta(seconds=6)
            summaries.append(p.ExerciseSummary(exercise=exercise, side=side, sets=1, sets_target=1, reps=10,
                                               reps_target=12, hold_s_total=20.0, max_rom_deg=max(roms),
                                               mean_rom_deg=sum(roms) / len(roms)))
        batch.append(p.build_session_summary(patient, seq=seq, session_id=session, t_start=start, t_end=t,
                                             exercises=summaries, prescription_version=1,
                                             adherence=round(0.6 + 0.3 * progress, 2)))
        seq += 1
        batch.append(p.build_pain_checkin(patient, seq=seq, score=max(0, round(5 - 3 * progress + rng.uniform(-1, 1))),
                                          moment="after", t=t + dt.timedelta(seconds=30), session_id=session))
        seq += 1
    store.write_batch([p.parse_message(e.topic, e.payload) for e in batch])
    return seq


class LiveServer:
    """uvicorn serving ``app`` on 127.0.0.1 in a daemon thread."""

    def __init__(self, app) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                timeout_graceful_shutdown=1, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="dashboard-uvicorn", daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)
