"""``hipsense record``: what a sensor sends, at the lowest level, into a raw recording file.

Raw notification bytes and receive times go through untouched (``device/recording_format.py``'s
format), so ``hipsense replay`` later runs the very decoders the live link ran. Link events
(drops, reconnections) are counted and reported; the recording itself carries the gaps as the
missing stretch of receive times.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RecordSummary", "record_sensor"]


@dataclass(frozen=True)
class RecordSummary:
    path: Path
    sensor_type: str
    notifications: int
    disconnects: int
    seconds: float


async def record_sensor(
    out: Path,
    address: str,
    *,
    duration_s: float | None,
    sensor_type: str | None = None,
    scan_timeout_s: float = 5.0,
    backends: Any = None,
    on_event: Any = None,
) -> RecordSummary:
    """Record ``address`` into ``out`` (which must not exist) for ``duration_s`` seconds
    (None: until cancelled, e.g. Ctrl-C)."""
    from hipsense.device.backends import BleBackends
    from hipsense.device.ble import SensorLink, scan_sensors
    from hipsense.device.ble_errors import ADVICE_SENSOR_MISSING
    from hipsense.device.events import LinkEvent
    from hipsense.device.decoders import make_decoder
    from hipsense.device.recording_format import RecordingHeader, RecordingWriter
    from hipsense.errors import DeviceNotFoundError

    backends = backends or BleBackends()
    name = None
    if sensor_type is None:
        found = [f for f in await scan_sensors(scan_timeout_s, backend=backends.scanner)
                 if f.address.upper() == address.upper()]
        if not found:
            raise DeviceNotFoundError(f"sensor {address} was not found. {ADVICE_SENSOR_MISSING}",
                                      address=address)
        sensor_type, name = found[0].sensor_type, found[0].name
    decoder = make_decoder(sensor_type)
    header = RecordingHeader.for_decoder(decoder, address=address,
                                         metadata={"name": name} if name else {})
    link = SensorLink(decoder, address=address, scanner_backend=backends.scanner,
                      client_backend=backends.client,
                      pause_scale=0.01 if backends.emulated else 1.0)
    notifications = disconnects = 0
    started = time.monotonic()
    with RecordingWriter(out, header) as writer:
        async with link:
            try:
                async with asyncio.timeout(duration_s):
                    async for item in link:
                        if isinstance(item, LinkEvent):
                            disconnects += item.kind.value == "disconnected"
                            if on_event is not None:
                                on_event(item)
                            continue
                        writer.write(item.payload, item.received_at_s, char_uuid=item.char_uuid)
                        notifications += 1
            except TimeoutError:
                pass  # the requested duration is over
    return RecordSummary(Path(out), sensor_type, notifications, disconnects,
                         time.monotonic() - started)
