"""Raw recordings: exact replay through the decoders, truncated and damaged files."""

from __future__ import annotations

import contextlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hipsense.device.decoders import (
    MovellaDotDecoder,
    PolarPmdDecoder,
    SensorDecoder,
    WitMotionDecoder,
)
from hipsense.device.decoders import polar_pmd as pmd
from hipsense.device.recording_format import (
    FORMAT_NAME,
    NotificationRecord,
    RecordingHeader,
    RecordingWriter,
    decode_recording,
    read_recording,
    recording_bytes,
)
from hipsense.errors import DatasetError, DecodeError
from tests.device.fuzzing import PROPERTY
from tests.device.test_polar_pmd import ACC_COMPRESSED_TYPE0, GYRO_COMPRESSED_TYPE0, start_response
from tests.device.test_witmotion import REAL_FRAME

ADDRESS = "AA:BB:CC:DD:EE:FF"
STARTED = "2026-11-26T12:00:00.000+00:00"


def witmotion_session(n: int = 200) -> list[tuple[bytes, float, str]]:
    rng = np.random.default_rng(5)
    frames = []
    for i in range(n):
        acc = rng.integers(-3000, 3000, size=(4, 9), dtype=np.int16)
        payload = b"".join(b"\x55\x61" + row.astype("<i2").tobytes() for row in acc)
        if i == 50:
            payload = payload[:17]  # a garbled notification: dropped live and on replay
        frames.append(
            (payload, 10.0 + 0.04 * i + rng.exponential(0.01), WitMotionDecoder.data_uuid)
        )
    return frames


def polar_session() -> list[tuple[bytes, float, str]]:
    cp, data = pmd.PMD_CONTROL_POINT_UUID, pmd.PMD_DATA_UUID

    def gyro_at(ts: int) -> bytes:
        return GYRO_COMPRESSED_TYPE0[:1] + ts.to_bytes(8, "little") + GYRO_COMPRESSED_TYPE0[9:]

    def acc_at(ts: int) -> bytes:
        return ACC_COMPRESSED_TYPE0[:1] + ts.to_bytes(8, "little") + ACC_COMPRESSED_TYPE0[9:]

    out = [(start_response(2, 2.44e-4), 1.0, cp), (start_response(5, 0.5), 1.1, cp)]
    for k in range(1, 30):
        out.append((acc_at(600 * 10**9 + k * 57 * 10**9 // 52), 1.2 + k * 57 / 52, data))
        out.append((gyro_at(600 * 10**9 + k * 2 * 10**9 // 52), 1.2 + k * 2 / 52 + 0.003, data))
    out.sort(key=lambda item: item[1])
    return out


def dot_session() -> list[tuple[bytes, float, str]]:
    # Crosses the µs counter wrap; notification 70 is lost.
    return [
        (struct.pack("<I6f", (2**32 - 600_000 + i * 16_667) % 2**32, 0, 0, 9.8, i, 0, 0),
         5.0 + i / 60, MovellaDotDecoder.data_uuid)
        for i in range(120) if i != 70
    ]  # fmt: skip


def record_live(path: Path, decoder: SensorDecoder, session: list[tuple[bytes, float, str]]):
    live = []
    with RecordingWriter(
        path, RecordingHeader.for_decoder(decoder, address=ADDRESS, started_at_utc=STARTED)
    ) as writer:
        for payload, received, uuid in session:
            writer.write(payload, received, char_uuid=uuid)
            with contextlib.suppress(DecodeError):  # dropped live, as the link does
                live.append(decoder.decode(payload, received, char_uuid=uuid))
    return live


@pytest.mark.parametrize(
    ("decoder", "session"),
    [(WitMotionDecoder(rate_hz=100), witmotion_session()),
     (PolarPmdDecoder(rate_hz=52), polar_session()),
     (MovellaDotDecoder(), dot_session())],
    ids=["witmotion", "polar", "movella_dot"],
)  # fmt: skip
def test_replay_reproduces_live_samples_exactly(
    tmp_path: Path, decoder: SensorDecoder, session
) -> None:
    path = tmp_path / "session.hsrec"
    live = record_live(path, decoder, session)
    recording = read_recording(path)
    assert recording.complete
    assert [(r.payload, r.received_at_s, r.char_uuid) for r in recording.records] == session
    replayed = decode_recording(recording)
    assert len(replayed.blocks) == len(live)
    assert all(a.same_as(b) for a, b in zip(live, replayed.blocks, strict=True))
    assert sum(b.n for b in live) > 0


def test_header_contents(tmp_path: Path) -> None:
    path = tmp_path / "h.hsrec"
    record_live(path, PolarPmdDecoder(rate_hz=52), [])
    first_line = path.read_bytes().split(b"\n", 1)[0]
    document = json.loads(first_line)
    assert document["format"] == FORMAT_NAME and document["format_version"] == 1
    assert document["sensor_type"] == "polar" and document["address"] == ADDRESS
    assert document["rate_hz"] == 52.0 and document["started_at_utc"] == STARTED
    assert document["channels"] == [pmd.PMD_CONTROL_POINT_UUID, pmd.PMD_DATA_UUID]
    assert document["decoder_options"]["streams"] == ["acc", "gyro"]
    assert document["clock"] == "monotonic" and document["hipsense_version"]
    assert read_recording(path).records == ()


def test_writer_never_overwrites_and_rejects_unknown_channels(tmp_path: Path) -> None:
    path = tmp_path / "x.hsrec"
    header = RecordingHeader.for_decoder(WitMotionDecoder(), address=ADDRESS)
    with RecordingWriter(path, header) as writer:
        with pytest.raises(ValueError, match="channels"):
            writer.write(b"\x00", 1.0, char_uuid=pmd.PMD_DATA_UUID)
        writer.write(REAL_FRAME, 1.0, char_uuid=WitMotionDecoder.data_uuid.upper())
    with pytest.raises(FileExistsError):
        RecordingWriter(path, header)
    assert read_recording(path).records[0].payload == REAL_FRAME


def test_each_record_is_flushed_as_written(tmp_path: Path) -> None:
    path = tmp_path / "live.hsrec"
    writer = RecordingWriter(
        path, RecordingHeader.for_decoder(WitMotionDecoder(), address=ADDRESS), fsync_every_s=None
    )
    for i in range(5):
        writer.write(REAL_FRAME, float(i), char_uuid=WitMotionDecoder.data_uuid)
        # Another process (or a post-crash reader) sees every record already written.
        assert len(read_recording(path).records) == i + 1
    writer.close()
    writer.close()


def sample_file(
    tmp_path: Path, n: int = 6
) -> tuple[Path, bytes, list[int], list[NotificationRecord]]:
    """A small recording in memory, the byte offsets where its records end, and the records."""
    header = RecordingHeader.for_decoder(
        WitMotionDecoder(), address=ADDRESS, started_at_utc=STARTED
    )
    records = [
        NotificationRecord(float(i), WitMotionDecoder.data_uuid, REAL_FRAME * (1 + i % 3))
        for i in range(n)
    ]
    data = recording_bytes(header, records)
    boundaries = [len(recording_bytes(header, records[:k])) for k in range(n + 1)]
    return tmp_path / "sample.hsrec", data, boundaries, records


@PROPERTY
@given(cut=st.integers(0, 10_000))
def test_truncated_file_keeps_every_whole_record(
    tmp_path_factory: pytest.TempPathFactory, cut: int
) -> None:
    path, data, boundaries, records = sample_file(tmp_path_factory.mktemp("cut"))
    cut = boundaries[0] + cut % (len(data) - boundaries[0] + 1)
    path.write_bytes(data[:cut])
    recording = read_recording(path)
    whole = max(k for k, b in enumerate(boundaries) if b <= cut)
    assert list(recording.records) == records[:whole]
    assert recording.complete == (cut in boundaries)
    if not recording.complete:
        assert "cut short" in recording.damage
        with pytest.raises(DatasetError, match="cut short"):
            read_recording(path, strict=True)


@PROPERTY
@given(position=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_a_flipped_bit_stops_reading_at_that_record(
    tmp_path_factory: pytest.TempPathFactory, position: int, bit: int
) -> None:
    path, data, boundaries, records = sample_file(tmp_path_factory.mktemp("flip"))
    position = boundaries[0] + position % (len(data) - boundaries[0])
    damaged = bytearray(data)
    damaged[position] ^= 1 << bit
    path.write_bytes(bytes(damaged))
    recording = read_recording(path)
    hit = max(k for k, b in enumerate(boundaries) if b <= position)
    # Everything before the damaged record is returned intact; nothing damaged ever is.
    assert list(recording.records) == records[:hit]
    assert not recording.complete


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "no header"), (b"not json\n", "not JSON"), (b'{"format": "other"}\n', "not a hipsense"),
     (json.dumps({"format": FORMAT_NAME, "format_version": 99}).encode() + b"\n", "version 99"),
     (json.dumps({"format": FORMAT_NAME, "format_version": 1}).encode() + b"\n", "missing")],
)  # fmt: skip
def test_bad_headers(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.hsrec"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=message):
        read_recording(path)
    with pytest.raises(DatasetError, match="cannot read"):
        read_recording(tmp_path / "missing.hsrec")
