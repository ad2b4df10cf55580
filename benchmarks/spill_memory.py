"""Python memory of a restart that imports a spill file of 10,000 held results (tracemalloc), held on
a card still full. Usage: python benchmarks/spill_memory.py [REPO] (default: this checkout)."""
import json
import shutil
import sys
import tempfile
import tracemalloc
from pathlib import Path

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parents[1]))
from hipsense import protocol as p
from hipsense.publish import Outbox, OutboxError
from hipsense.service.results import ResultPublisher
from hipsense.service.spill import SpillFile
tmp = Path(tempfile.mkdtemp())
spill = SpillFile(tmp / "held.jsonl")
state = {"session": b"\x00" + json.dumps({"session_id": "01JQ7Z8K3M4N5P6Q7R8S9T0V1W", "tallies": [{"exercise": "clam_shells", "side": "left", "sets": 3, "reps": 30}] * 6}).encode()}
for i in range(1, 10_001):
    env = p.build_rep_event("p-0001", seq=1, session_id="01JQ7Z8K3M4N5P6Q7R8S9T0V1W", exercise="clam_shells", side="left",
        set_index=1, rep_index=i % 100 + 1, t_start=1.7e9 + i, t_end=1.7e9 + i + 2, rom_deg=30.5, hold_s=1.2,
        peak_speed_dps=55.0, duration_s=2.0, flags=("clock_unsynced",))
    assert spill.append(i, "rep", env.topic, env.payload, state)
size = spill.path.stat().st_size
outbox = Outbox(tmp / "outbox.sqlite")
def full(*a, **k): raise OutboxError("database or disk is full")
outbox.put_sequenced = full
tracemalloc.start()
pub = ResultPublisher("p-0001", outbox, spill=SpillFile(spill.path))
cur, peak = tracemalloc.get_traced_memory()
print(f"spill file {size/1e6:.1f} MB for {pub.held} held; after import {cur/1e6:.1f} MB held in Python, peak {peak/1e6:.1f} MB")
outbox.close()
shutil.rmtree(tmp)
