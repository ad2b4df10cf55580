"""The sensor registry: one decoder class per sensor type, picked by its name.

Each module holds one sensor's protocol: GATT UUIDs, command builders, pure parsing functions
and a :class:`SensorDecoder` subclass, which declares everything hipsense knows about the type
(registry name, advertised service and names, configurable rates, rate and battery set-up; see
:mod:`._base`). The service's config validation, the scan, the link and ``hipsense calibrate``
read :data:`DECODERS`; no other module switches on a sensor-type string. Only numpy and the
standard library are used here; the BLE link (bleak) lives in :mod:`hipsense.device.ble`.
"""

from __future__ import annotations

from typing import Any

from hipsense.device.decoders._base import Gatt, GattWrite, SensorDecoder
from hipsense.device.decoders.metamotion import MetaMotionDecoder
from hipsense.device.decoders.movella_dot import MovellaDotDecoder
from hipsense.device.decoders.polar_pmd import PolarPmdDecoder
from hipsense.device.decoders.witmotion import WitMotionDecoder
from hipsense.errors import ConfigError

__all__ = [
    "DECODERS",
    "Gatt",
    "GattWrite",
    "MetaMotionDecoder",
    "MovellaDotDecoder",
    "PolarPmdDecoder",
    "SensorDecoder",
    "WitMotionDecoder",
    "decoder_class",
    "make_decoder",
]

DECODERS: dict[str, type[SensorDecoder]] = {
    cls.sensor_type: cls
    for cls in (WitMotionDecoder, PolarPmdDecoder, MovellaDotDecoder, MetaMotionDecoder)
}
"""Sensor-type string → decoder class."""


def decoder_class(sensor_type: str) -> type[SensorDecoder]:
    """The decoder class for ``sensor_type``; ConfigError naming the valid keys otherwise."""
    try:
        return DECODERS[sensor_type]
    except KeyError:
        valid = ", ".join(sorted(DECODERS))
        raise ConfigError(
            f"unknown sensor type {sensor_type!r}; valid sensor types: {valid}",
            setting="sensor_type",
        ) from None


def make_decoder(sensor_type: str, **options: Any) -> SensorDecoder:
    """A fresh decoder for ``sensor_type``, built with ``options`` (see each class)."""
    return decoder_class(sensor_type)(**options)
