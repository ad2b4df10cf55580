"""A synthetic calibration session as a raw WitMotion recording, for the emulated sensor."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hipsense.device.decoders import make_decoder
from hipsense.device.emulator import WitMotionRecording, encode_data_frame
from hipsense.device.emulator.witmotion import NOTIFY_UUID
from hipsense.device.recording_format import (
    NotificationRecord,
    RecordingHeader,
    recording_bytes,
)
from tests.calibration.sessions import Session

ADDRESS = "F1:57:00:00:00:2A"
NAME = "WT901BLE42"
FRAMES_PER_NOTIFICATION = 4


def write_session_recording(session: Session, path: Path) -> Path:
    """The session's samples as the notifications a WT901BLE at 100 Hz would have sent."""
    raw = WitMotionRecording.from_si(100.0, session.acc_ms2, session.gyr_rad_s,
                                     np.zeros_like(session.acc_ms2)).raw
    header = RecordingHeader.for_decoder(make_decoder("witmotion", rate_hz=100), address=ADDRESS,
                                         metadata={"name": NAME})
    records = []
    for start in range(0, len(raw) - FRAMES_PER_NOTIFICATION + 1, FRAMES_PER_NOTIFICATION):
        payload = b"".join(encode_data_frame(row) for row in raw[start:start + FRAMES_PER_NOTIFICATION])
        received = (start + FRAMES_PER_NOTIFICATION) / 100.0
        records.append(NotificationRecord(received, NOTIFY_UUID, payload))
    path.write_bytes(recording_bytes(header, records))
    return path
