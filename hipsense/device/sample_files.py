"""Read the recording formats hipsense replays: UCI and MEx files, plain CSV, and raw hipsense
BLE recordings (``hipsense record``; decoded by the very decoders the live link runs).

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
    if _is_raw_recording(path):
        return _read_raw_recording(path)
    try:
        with _open_text(path) as f:
            first = f.readline().strip()
            rest = f.read()
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: binary data, not a recording (UCI, MEx or hipsense CSV text, "
                           "or a raw `hipsense record` file)") from None
    except (OSError, EOFError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    if not first and not rest.strip():
        raise DatasetError(f"{path} is empty: no samples to replay")
    if "\x00" in first:
        raise DatasetError(f"{path}: binary data, not a recording")
    samples = _parse_text(path, first, rest)
    if len(samples.t_s) < 2:
        raise DatasetError(f"{path}: holds {len(samples.t_s)} samples; nothing to replay")
    return samples


def _parse_text(path: Path, first: str, rest: str) -> Samples:
    if first.startswith(("time index;", "t_s,")) and not rest.strip():
        raise DatasetError(f"{path}: a header and no samples; nothing to replay")
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


_RAW_MAGIC = b'"format": "hipsense-ble-recording"'


def _is_raw_recording(path: Path) -> bool:
    """A raw recording starts with its JSON header line naming the format."""
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return False
    return head.startswith(b"{") and _RAW_MAGIC in head.split(b"\n", 1)[0]


def _read_raw_recording(path: Path) -> Samples:
    """Decode a raw BLE recording into one stream of samples.

    Sensors that send accelerometer and gyroscope together (WitMotion, Movella DOT,
    MetaMotion fused) give rows as they are; Polar sends them as two streams, so the gyroscope
    is interpolated onto the accelerometer's times (within its own time span only).
    """
    from hipsense.device.recording_format import decode_recording, read_recording

    recording = read_recording(path)  # a damaged tail is reported, not fatal: use what is sound
    result = decode_recording(recording)
    blocks = [b for b in result.blocks if b.n and b.acc_ms2 is not None]
    if not blocks:
        raise DatasetError(f"{path}: the recording holds no accelerometer samples")
    t = np.concatenate([b.t_s for b in blocks])
    acc = np.concatenate([b.acc_ms2 for b in blocks])
    gyr = None
    if all(b.gyr_rad_s is not None for b in blocks):
        gyr = np.concatenate([b.gyr_rad_s for b in blocks])
    else:
        gyro_blocks = [b for b in result.blocks if b.n and b.gyr_rad_s is not None
                       and b.acc_ms2 is None]
        if gyro_blocks:
            tg = np.concatenate([b.t_s for b in gyro_blocks])
            g = np.concatenate([b.gyr_rad_s for b in gyro_blocks])
            inside = (t >= tg[0]) & (t <= tg[-1])
            t, acc = t[inside], acc[inside]
            gyr = np.stack([np.interp(t, tg, g[:, k]) for k in range(3)], axis=1)
    if len(t) == 0:
        raise DatasetError(f"{path}: accelerometer and gyroscope samples do not overlap in time")
    return Samples(t, acc, gyr, f"hipsense-ble:{recording.header.sensor_type}")
