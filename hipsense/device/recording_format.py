"""Raw BLE recordings: every notification's bytes and receive time, for exact replay.

Format (``docs/recording-format.md`` is the full description): one line of JSON header, then
length-prefixed binary records, each closed by a CRC-32::

    u16 LE  payload length
    u8      channel (index into the header's "channels", i.e. the characteristic UUID)
    f64 LE  host receive time, seconds (the link's monotonic clock)
    bytes   payload, exactly as the sensor sent it
    u32 LE  CRC-32 (zlib) of the 11 head bytes + payload

Recording at this lowest level means replay runs the very same decoders, clock fit and gap
detection as the live link: :func:`decode_recording` reproduces the live samples bit for bit.

The writer appends one record per ``write`` and flushes it, so a crashed process loses at most
the record being written; the reader stops at a cut-short or damaged record and reports it.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import struct
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from hipsense import __version__
from hipsense.device.decoders import SensorDecoder, make_decoder
from hipsense.device.samples import ImuSamples
from hipsense.errors import DatasetError, DecodeError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "NotificationRecord",
    "Recording",
    "RecordingHeader",
    "RecordingWriter",
    "ReplayResult",
    "decode_recording",
    "read_recording",
    "recording_bytes",
]

FORMAT_NAME = "hipsense-ble-recording"
FORMAT_VERSION = 1
SUFFIX = ".hsrec"

_HEAD = struct.Struct("<HBd")  # payload length, channel, receive time
_CRC = struct.Struct("<I")
_MAX_HEADER_BYTES = 1 << 20
_MAX_PAYLOAD = 0xFFFF


@dataclass(frozen=True)
class RecordingHeader:
    """What a recording says about itself (the JSON first line).

    Attributes
    ----------
    sensor_type
        Decoder registry key (``hipsense.device.decoders.DECODERS``).
    address
        The sensor's BLE address (or platform identifier).
    rate_hz
        Nominal sample rate (Hz).
    channels
        Characteristic UUIDs; a record's channel byte indexes this list.
    decoder_options
        Keyword arguments that rebuild an identical decoder (``SensorDecoder.options()``).
    started_at_utc
        ISO-8601 UTC wall-clock time when recording began (receive times are monotonic seconds
        and say nothing about the date).
    hipsense_version
        Version of hipsense that wrote the file.
    metadata
        Free JSON-serialisable extras (side, session id, ...). No personal data.
    """

    sensor_type: str
    address: str
    rate_hz: float
    channels: tuple[str, ...]
    decoder_options: Mapping[str, Any] = field(default_factory=dict)
    started_at_utc: str = ""
    hipsense_version: str = __version__
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def for_decoder(
        cls,
        decoder: SensorDecoder,
        *,
        address: str,
        started_at_utc: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> RecordingHeader:
        """A header matching ``decoder``: its type, options, rate and subscribed characteristics."""
        return cls(
            sensor_type=decoder.sensor_type,
            address=address,
            rate_hz=decoder.nominal_rate_hz,
            channels=tuple(decoder.notify_uuids),
            decoder_options=decoder.options(),
            started_at_utc=started_at_utc
            or dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            metadata=dict(metadata or {}),
        )

    def to_json_line(self) -> bytes:
        document = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "sensor_type": self.sensor_type,
            "address": self.address,
            "rate_hz": self.rate_hz,
            "channels": list(self.channels),
            "decoder_options": dict(self.decoder_options),
            "started_at_utc": self.started_at_utc,
            "clock": "monotonic",
            "hipsense_version": self.hipsense_version,
            "metadata": dict(self.metadata),
        }
        # json.dumps never emits a raw newline, so the header is exactly one line.
        return json.dumps(document, ensure_ascii=False, allow_nan=False).encode() + b"\n"

    @classmethod
    def from_json_line(cls, line: bytes, source: str) -> RecordingHeader:
        try:
            document = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DatasetError(f"{source}: header line is not JSON ({exc})") from exc
        if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
            raise DatasetError(f"{source}: not a hipsense BLE recording")
        if document.get("format_version") != FORMAT_VERSION:
            raise DatasetError(
                f"{source}: recording format version {document.get('format_version')!r} "
                f"is not supported (this hipsense reads version {FORMAT_VERSION})"
            )
        try:
            return cls(
                sensor_type=str(document["sensor_type"]),
                address=str(document["address"]),
                rate_hz=float(document["rate_hz"]),
                channels=tuple(str(c) for c in document["channels"]),
                decoder_options=dict(document.get("decoder_options", {})),
                started_at_utc=str(document.get("started_at_utc", "")),
                hipsense_version=str(document.get("hipsense_version", "")),
                metadata=dict(document.get("metadata", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{source}: header field missing or malformed ({exc!r})") from exc


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    """One notification as received: host receive time (s), characteristic, raw bytes."""

    received_at_s: float
    char_uuid: str
    payload: bytes


def _encode_record(channel: int, received_at_s: float, payload: bytes) -> bytes:
    head = _HEAD.pack(len(payload), channel, received_at_s)
    return head + payload + _CRC.pack(zlib.crc32(payload, zlib.crc32(head)))


class RecordingWriter:
    """Appends notifications to a new recording file.

    Each :meth:`write` appends one whole record and flushes it to the operating system, so a
    crash of this process loses at most that record. Every ``fsync_every_s`` of receive time
    the file is also fsynced, bounding what a power cut can take; None never fsyncs
    (the OS writes back within seconds anyway).

    Writing is a few microseconds of buffered I/O; the fsync can block for milliseconds on an
    SD card, so call from a worker thread if the event loop must never wait.

    The file must not exist yet: a recording is never overwritten.
    """

    def __init__(self, path: str | os.PathLike[str], header: RecordingHeader, *,
                 fsync_every_s: float | None = 1.0) -> None:  # fmt: skip
        if not header.channels or len(header.channels) > 255:
            raise ValueError("a recording needs 1 to 255 channels")
        self.path = Path(path)
        self.header = header
        self._channel_of = {uuid.lower(): i for i, uuid in enumerate(header.channels)}
        self._fsync_every_s = fsync_every_s
        self._last_fsync_s: float | None = None
        self.records_written = 0
        self._file: BinaryIO = open(self.path, "xb")
        self._file.write(header.to_json_line())
        self._sync()

    def write(self, payload: bytes | bytearray, received_at_s: float, *, char_uuid: str) -> None:
        """Append one notification from ``char_uuid`` (one of the header's channels)."""
        channel = self._channel_of.get(char_uuid.lower())
        if channel is None:
            raise ValueError(
                f"{char_uuid} is not one of this recording's channels {self.header.channels}"
            )
        data = bytes(payload)
        if len(data) > _MAX_PAYLOAD:
            raise ValueError(f"payload of {len(data)} bytes is too long for a record")
        self._file.write(_encode_record(channel, float(received_at_s), data))
        self._file.flush()
        self.records_written += 1
        if self._fsync_every_s is not None and (
            self._last_fsync_s is None or received_at_s - self._last_fsync_s >= self._fsync_every_s
        ):
            self._sync()
            self._last_fsync_s = received_at_s

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Flush, fsync and close. Safe to call twice."""
        if not self._file.closed:
            self._sync()
            self._file.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True)
class Recording:
    """A recording read back.

    ``damage`` is None for a clean file; otherwise it says where and why reading stopped
    (a record cut short by a crash, or a CRC mismatch), and ``records`` holds everything before.
    """

    header: RecordingHeader
    records: tuple[NotificationRecord, ...]
    damage: str | None = None

    @property
    def complete(self) -> bool:
        return self.damage is None


def _iter_records(
    data: memoryview, offset: int, channels: tuple[str, ...], damage: list[str]
) -> Iterator[NotificationRecord]:
    end = len(data)
    while offset < end:
        if end - offset < _HEAD.size:
            damage.append(
                f"last record cut short at byte {offset} ({end - offset} bytes of its head)"
            )
            return
        length, channel, received_at_s = _HEAD.unpack_from(data, offset)
        record_end = offset + _HEAD.size + length + _CRC.size
        if record_end > end:
            damage.append(
                f"last record cut short at byte {offset} "
                f"({end - offset} of {record_end - offset} bytes)"
            )
            return
        payload = bytes(data[offset + _HEAD.size : record_end - _CRC.size])
        (stored_crc,) = _CRC.unpack_from(data, record_end - _CRC.size)
        head = bytes(data[offset : offset + _HEAD.size])
        if zlib.crc32(payload, zlib.crc32(head)) != stored_crc or channel >= len(channels):
            damage.append(
                f"record at byte {offset} is corrupt (CRC or channel mismatch); "
                f"{end - offset} bytes from there on were not read"
            )
            return
        yield NotificationRecord(received_at_s, channels[channel], payload)
        offset = record_end


def read_recording(path: str | os.PathLike[str], *, strict: bool = False) -> Recording:
    """Read a whole recording.

    Parameters
    ----------
    path
        The file.
    strict
        Raise DatasetError for a damaged tail instead of reporting it in ``Recording.damage``.

    Raises
    ------
    DatasetError
        Missing file, not a recording, unsupported version, or (``strict``) damage.
    """
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DatasetError(f"{source}: cannot read recording ({exc.strerror})") from exc
    newline = raw.find(b"\n", 0, _MAX_HEADER_BYTES)
    if newline < 0:
        raise DatasetError(f"{source}: no header line")
    header = RecordingHeader.from_json_line(raw[:newline], source)
    damage: list[str] = []
    records = tuple(_iter_records(memoryview(raw), newline + 1, header.channels, damage))
    problem = f"{source}: {damage[0]}" if damage else None
    if problem and strict:
        raise DatasetError(problem)
    return Recording(header, records, problem)


@dataclass(frozen=True)
class ReplayResult:
    """Samples decoded from a recording, and the records that failed to decode (by index)."""

    blocks: tuple[ImuSamples, ...]
    decode_errors: tuple[tuple[int, DecodeError], ...]


def decode_recording(recording: Recording, decoder: SensorDecoder | None = None) -> ReplayResult:
    """Feed every record through a decoder, exactly as the live link would.

    Without ``decoder``, a fresh one is built from the header (type and options), which makes
    the output identical to what the live decoder produced. Undecodable records are dropped and
    listed, as live.
    """
    if decoder is None:
        decoder = make_decoder(recording.header.sensor_type, **recording.header.decoder_options)
    blocks: list[ImuSamples] = []
    errors: list[tuple[int, DecodeError]] = []
    for index, record in enumerate(recording.records):
        try:
            blocks.append(
                decoder.decode(record.payload, record.received_at_s, char_uuid=record.char_uuid)
            )
        except DecodeError as exc:
            errors.append((index, exc))
    return ReplayResult(tuple(blocks), tuple(errors))


def recording_bytes(header: RecordingHeader, records: list[NotificationRecord]) -> bytes:
    """A whole recording in memory (tests, the emulated sensor's fixtures)."""
    channel_of = {uuid.lower(): i for i, uuid in enumerate(header.channels)}
    out = io.BytesIO()
    out.write(header.to_json_line())
    for record in records:
        out.write(
            _encode_record(
                channel_of[record.char_uuid.lower()], record.received_at_s, record.payload
            )
        )
    return out.getvalue()
