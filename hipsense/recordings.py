"""Read the recording formats hipsense replays: UCI and MEx files, and plain CSV.

Returns timestamped samples in SI units (``t_s`` (n,), ``acc_ms2`` (n, 3), ``gyr_rad_s``
(n, 3) or None). Which format a file is comes from its first line, not its name.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hipsense.errors import DatasetError

G_MS2 = 9.80665


@dataclass(frozen=True)
class Samples:
    t_s: np.ndarray
    acc_ms2: np.ndarray
    gyr_rad_s: np.ndarray | None
    source: str


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return gzip.open(path, "rt")
    return open(path)


def read_samples(path: str | Path) -> Samples:
    """Read a UCI (``time index;acc_x;…``), MEx (``timestamp,x,y,z`` in g) or hipsense CSV
    (header ``t_s,acc_x,acc_y,acc_z[,gyr_x,gyr_y,gyr_z]`` in SI units) file."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"no such file: {path}")
    try:
        with _open_text(path) as f:
            first = f.readline().strip()
            rest = f.read()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    try:
        if first.startswith("time index;"):
            data = np.loadtxt(io.StringIO(rest), delimiter=";", ndmin=2)
            return Samples((data[:, 0] - 1) / 25.0, data[:, 1:4], data[:, 4:7], "uci-pt")
        if first.startswith("t_s,"):
            data = np.loadtxt(io.StringIO(rest), delimiter=",", ndmin=2)
            gyr = data[:, 4:7] if data.shape[1] >= 7 else None
            return Samples(data[:, 0], data[:, 1:4], gyr, "hipsense-csv")
        # MEx: no header; "YYYY-mm-dd HH:MM:SS.ffffff,x,y,z" in g
        lines = [first] + rest.splitlines()
        rows = [ln.split(",") for ln in lines if ln.strip()]
        t = np.array([np.datetime64(r[0].strip().replace(" ", "T")) for r in rows])
        t_s = (t - t[0]) / np.timedelta64(1, "us") / 1e6
        acc = np.array([[float(v) for v in r[1:4]] for r in rows]) * G_MS2
        return Samples(t_s.astype(float), acc, None, "mex")
    except (ValueError, IndexError) as exc:
        raise DatasetError(f"{path}: not a UCI, MEx or hipsense CSV recording ({exc})") from exc
