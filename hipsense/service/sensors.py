"""The sensor links the service reads: BlueZ on the Pi, or an emulated sensor on a virtual radio.

With ``sensor.backend = "emulator"`` the service runs without hardware: an emulated sensor of
the configured type (:mod:`hipsense.device.emulator`) on a Bumble virtual radio replays a real
recording, and the
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


from hipsense.device.ble import SensorLink
from hipsense.device.decoders import decoder_class, make_decoder
from hipsense.device.reconnect import BackoffPolicy
from hipsense.errors import ConfigError
from hipsense.service.config import EmulatorConfig, SensorConfig
from hipsense.service.timebase import Timebase

__all__ = ["emulated_sensor", "emulator_recording", "open_links"]

log = logging.getLogger(__name__)

SHIPPED_RECORDING = "uci_s1_e3_test.txt.gz"
SILENCE_TIMEOUT_S = 5.0  # real seconds without a notification before the link counts as lost


def emulator_recording(path: Path | None) -> Any:
    """An :class:`~hipsense.device.emulator.ImuRecording` from a UCI, MEx or hipsense-CSV file, at
    its own rate: what every emulated sensor type replays. Without gyroscope data (MEx) only the
    types that can stream their accelerometer alone replay it (:func:`emulated_sensor`)."""
    from hipsense.device.emulator import ImuRecording
    from hipsense.device.sample_files import read_samples

    source = path if path is not None else Path(str(files("hipsense") / "data" / SHIPPED_RECORDING))
    samples = read_samples(source)
    return ImuRecording.from_samples(samples.t_s, samples.acc_ms2, samples.gyr_rad_s)


def emulated_sensor(sensor: SensorConfig, radio: Any, emulator: EmulatorConfig, *, index: int) -> Any:
    """The emulated ``sensor`` on ``radio``, replaying ``emulator.recording`` (not started yet)."""
    from hipsense.device.emulator import emulate

    recording = emulator_recording(emulator.recording)
    try:
        return emulate(sensor.type, radio, recording, index=index, address=sensor.address,
                       speed=emulator.speed, loop=emulator.loop)
    except ValueError as exc:  # e.g. a WitMotion asked to replay an accelerometer-only recording
        raise ConfigError(f"{emulator.recording or SHIPPED_RECORDING}: {exc}", setting="emulator.recording") from None


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

                if radio is None:
                    radio = VirtualRadio()
                    stack.push_async_callback(radio.close)  # registered first, so it runs last
                fake = emulated_sensor(sensor, radio, emulator, index=index)
                if address is None and len(sensors) > 1:
                    address = fake.address  # else both links could take the first one they see
                # The emulator logs every sample's fate for exactly-once tests; a service streaming
                # for hours needs only the recent ones (60 000 records per 10 minutes otherwise).
                fake.fates = collections.deque(maxlen=1000)  # type: ignore[assignment]
                await stack.enter_async_context(fake)
                log.info("emulated sensor started", extra={"fields": {
                    "type": sensor.type, "address": fake.address, "speed": emulator.speed}})
                options = {"scanner_backend": radio.scanner_backend, "client_backend": radio.client_backend,
                           "pause_scale": 1.0 / emulator.speed,
                           "backoff": BackoffPolicy(initial_s=0.2, multiplier=2.0, max_s=2.0, jitter=0.5)}
            decoder_options: dict[str, Any] = {} if sensor.rate_hz is None else {"rate_hz": sensor.rate_hz}
            if not sensor.gyroscope:  # the config refused this for types that always send it
                decoder_options.update(decoder_class(sensor.type).accelerometer_only or {})
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

