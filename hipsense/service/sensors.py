"""The sensor links the service reads: BlueZ on the Pi, or an emulated sensor on a virtual radio.

With ``sensor.backend = "emulator"`` the service runs without hardware: an emulated WitMotion
(:mod:`hipsense.device.emulator`) on a Bumble virtual radio replays a real recording, and the
service reaches it through bleak's API exactly as it reaches a real sensor through BlueZ. The
link's clock is the service's sample clock, so when the emulator replays faster than real time
the samples are still stamped in real-time seconds (see :class:`~hipsense.service.timebase.Timebase`).
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import AsyncIterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from hipsense.device.ble import SensorLink
from hipsense.device.decoders import make_decoder
from hipsense.device.reconnect import BackoffPolicy
from hipsense.errors import ConfigError
from hipsense.service.config import EmulatorConfig, SensorConfig
from hipsense.service.timebase import Timebase

__all__ = ["emulator_recording", "open_links"]

log = logging.getLogger(__name__)

SHIPPED_RECORDING = "uci_s1_e3_test.txt.gz"
SILENCE_TIMEOUT_S = 5.0  # real seconds without a notification before the link counts as lost


def emulator_recording(path: Path | None) -> Any:
    """A :class:`WitMotionRecording` from a UCI/hipsense-CSV file (with gyroscope), at its own rate."""
    from hipsense.device.emulator import WitMotionRecording
    from hipsense.recordings import read_samples

    source = path if path is not None else Path(str(files("hipsense") / "data" / SHIPPED_RECORDING))
    samples = read_samples(source)
    if samples.gyr_rad_s is None:
        raise ConfigError(f"{source}: the emulated WitMotion needs a recording with gyroscope data",
                          setting="emulator.recording")
    rate_hz = 1.0 / float(np.median(np.diff(samples.t_s)))
    acc = samples.acc_ms2
    # The WitMotion also sends its own fused angles; roll and pitch from gravity are what it
    # would show for a slowly moving thigh. Nothing downstream relies on them.
    roll = np.arctan2(acc[:, 1], acc[:, 2])
    pitch = np.arctan2(-acc[:, 0], np.hypot(acc[:, 1], acc[:, 2]))
    euler = np.stack([roll, pitch, np.zeros(len(acc))], axis=1)
    return WitMotionRecording.from_si(round(rate_hz, 3), acc, samples.gyr_rad_s, euler)


@contextlib.asynccontextmanager
async def open_links(sensors: tuple[SensorConfig, ...], emulator: EmulatorConfig,
                     timebase: Timebase) -> AsyncIterator[list[SensorLink]]:
    """Started :class:`SensorLink` objects, one per configured sensor; closed on exit."""
    stack = contextlib.AsyncExitStack()
    async with stack:
        links = []
        radio = None
        for index, sensor in enumerate(sensors):
            options: dict[str, Any] = {}
            address = sensor.address
            if sensor.backend == "emulator":
                from hipsense.device.bumble_backend import VirtualRadio
                from hipsense.device.emulator import WitMotionEmulator

                if radio is None:
                    radio = VirtualRadio()
                    stack.push_async_callback(radio.close)  # registered first, so it runs last
                address = address or f"F1:57:00:00:00:{index + 1:02X}"
                fake = WitMotionEmulator(radio, emulator_recording(emulator.recording), name=f"WT901BLE{68 + index}",
                                         address=address, speed=emulator.speed, loop=emulator.loop)
                # The emulator logs every sample's fate for exactly-once tests; a service streaming
                # for hours needs only the recent ones (60 000 records per 10 minutes otherwise).
                fake.fates = collections.deque(maxlen=1000)  # type: ignore[assignment]
                await stack.enter_async_context(fake)
                log.info("emulated sensor started", extra={"fields": {
                    "address": address, "speed": emulator.speed, "samples": fake.recording.n}})
                options = {"scanner_backend": radio.scanner_backend, "client_backend": radio.client_backend,
                           "pause_scale": 1.0 / emulator.speed,
                           "backoff": BackoffPolicy(initial_s=0.2, multiplier=2.0, max_s=2.0, jitter=0.5)}
            decoder_options = {"rate_hz": sensor.rate_hz} if sensor.type == "witmotion" else {}
            link = SensorLink(
                make_decoder(sensor.type, **decoder_options),
                address=address,
                # The watchdog runs on the sample clock: scale it so that it still means
                # SILENCE_TIMEOUT_S of real time when an emulator replays fast.
                silence_timeout_s=SILENCE_TIMEOUT_S * timebase.scale,
                clock=timebase.now,
                **options,
            )
            await stack.enter_async_context(link)
            links.append(link)
        yield links

