"""How many results the card reserve (service/reserve.py) saves on a full card, on a real file
system: a tmpfs (root needed) with the outbox and its reserve, ``PRE`` reps stored first (the
WAL's state when the card fills: 0 = a fresh start, the WAL grows first; 1000+ = past its
checkpoints, at its largest), then filled until ENOSPC; reps (with a session state, as the
service stores them) are put until the card refuses again. The first refusal releases the
reserve (Outbox.on_full), as in the service.

Usage (root): python benchmarks/card_reserve.py [RESERVE_MIB ...]   (default: 4 8)
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hipsense import protocol as p  # noqa: E402
from hipsense.publish import Outbox, OutboxError  # noqa: E402
from hipsense.service.reserve import CardReserve  # noqa: E402

STATE = {"session": b"\x00" + json.dumps({"session_id": "01JQ7Z8K3M4N5P6Q7R8S9T0V1W", "tallies": [
    {"exercise": "clam_shells", "side": "left", "sets": 3, "reps": 30}] * 6}).encode()}


def rep(seq: int) -> p.Envelope:
    return p.build_rep_event("p-0001", seq=seq, session_id="01JQ7Z8K3M4N5P6Q7R8S9T0V1W", exercise="clam_shells",
                             side="left", set_index=1, rep_index=seq % 100 + 1, t_start=1.7e9 + seq,
                             t_end=1.7e9 + seq + 2, rom_deg=30.5, hold_s=1.2, peak_speed_dps=55.0, duration_s=2.0,
                             flags=("clock_unsynced",))


def run(card: Path, reserve_mib: int, pre: int) -> tuple[int, dict[str, int]]:
    for f in card.iterdir():
        f.unlink()
    outbox = Outbox(card / "outbox.sqlite")
    reserve = CardReserve(card / "outbox.reserve", reserve_mib << 20)
    reserve.ensure()
    assert reserve.status is None
    outbox.on_full = reserve.release
    for _ in range(pre):
        outbox.put_sequenced("p-0001", rep, state=STATE)
    fd = os.open(card / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    for size in (4096, 1):
        try:
            while True:
                os.write(fd, b"\0" * size)
        except OSError:
            pass
    os.close(fd)
    wal_at_fill = (card / "outbox.sqlite-wal").stat().st_size
    saved = 0
    while True:
        try:
            outbox.put_sequenced("p-0001", rep, state=STATE)
        except OutboxError:
            break
        saved += 1
    assert reserve.status == "in_use"
    sizes = {f.name: f.stat().st_size for f in card.iterdir() if f.name != "filler"}
    outbox.close()
    return saved, {"wal_at_fill": wal_at_fill, **sizes}


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [4, 8]
    card = Path(tempfile.mkdtemp()) / "card"
    card.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m,mode=0700", "tmpfs", str(card)], check=True)
    try:
        for mib in sizes:
            for pre in (0, 50, 120, 1500):
                saved, files = run(card, mib, pre)
                print(f"reserve {mib} MiB, {pre:4d} reps before the card filled: {saved:5d} reps saved on the card "
                      f"after it filled; files {files}")
    finally:
        subprocess.run(["umount", "-l", str(card)], check=False)


if __name__ == "__main__":
    main()
