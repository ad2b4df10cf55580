"""The decoder registry and the contract every decoder keeps."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hipsense.device import decoders
from hipsense.device.decoders import DECODERS, SensorDecoder, decoder_class, make_decoder
from hipsense.errors import ConfigError, DecodeError
from tests.device.fuzzing import FUZZ, decode_or_decode_error

DEVICE = Path(decoders.__file__).parent.parent
# That decoders stay pure (no Bluetooth stack) is an import-linter contract: tests/test_layers.py.


def test_registry_keys() -> None:
    assert set(DECODERS) == {"witmotion", "polar", "movella_dot", "metamotion"}
    for key, cls in DECODERS.items():
        assert cls.sensor_type == key and issubclass(cls, SensorDecoder)


def test_unknown_sensor_type_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="metamotion, movella_dot, polar, witmotion") as info:
        decoder_class("wt901")
    assert info.value.setting == "sensor_type"


@pytest.mark.parametrize("sensor_type", sorted(DECODERS))
def test_options_rebuild_an_equal_decoder(sensor_type: str) -> None:
    decoder = make_decoder(sensor_type)
    options = json.loads(json.dumps(decoder.options()))
    assert make_decoder(sensor_type, **options).options() == decoder.options()


@pytest.mark.parametrize("sensor_type", sorted(DECODERS))
def test_gatt_facts_are_full_lower_case_uuids(sensor_type: str) -> None:
    cls = DECODERS[sensor_type]
    for uuid in (cls.service_uuid, cls.data_uuid, *cls.notify_uuids):
        assert len(uuid) == 36 and uuid == uuid.lower()
    assert cls.data_uuid in cls.notify_uuids
    decoder = make_decoder(sensor_type)
    for write in (*decoder.start_writes(), *decoder.stop_writes()):
        assert write.data and len(write.char_uuid) == 36


@pytest.mark.parametrize("sensor_type", sorted(DECODERS))
def test_non_bytes_payloads_are_decode_errors(sensor_type: str) -> None:
    with pytest.raises(DecodeError):
        make_decoder(sensor_type).decode("55 61", 1.0)  # type: ignore[arg-type]


@FUZZ
@given(
    sensor_type=st.sampled_from(sorted(DECODERS)),
    payload=st.binary(max_size=64),
    which=st.integers(0, 3),
)
def test_every_decoder_turns_any_bytes_into_samples_or_decode_error(
    sensor_type: str, payload: bytes, which: int
) -> None:
    cls = DECODERS[sensor_type]
    uuids = (*cls.notify_uuids, "0000ffff-0000-1000-8000-00805f9b34fb")
    decode_or_decode_error(lambda: make_decoder(sensor_type), payload, uuids[which % len(uuids)])


@pytest.mark.parametrize("sensor_type", sorted(DECODERS))
def test_every_type_declares_what_config_scan_and_calibration_read(sensor_type: str) -> None:
    cls = DECODERS[sensor_type]
    assert cls.display_name and cls.name_prefixes and cls.service_uuid
    assert cls.default_rate_hz in cls.rates_hz
    for rate in cls.rates_hz:  # every rate the config may accept builds a decoder at that rate
        assert make_decoder(sensor_type, rate_hz=rate).nominal_rate_hz == rate
    if cls.full_scale is not None:
        acc_ms2, gyr_rad_s = cls.full_scale
        assert 2 * 9.8 < acc_ms2 < 64 * 9.81 and 1.0 < gyr_rad_s < 100.0


def test_the_link_and_scan_hold_no_sensor_type_strings() -> None:
    # Sensor knowledge lives in the decoders: the link may explain with an example in prose
    # (docstrings, comments) but no code in it names a type, a prefix or a UUID of one.
    names = {n.lower() for cls in DECODERS.values() for n in (cls.sensor_type, *cls.name_prefixes)}
    uuids = {u for cls in DECODERS.values() for u in (cls.service_uuid, *cls.notify_uuids)}
    for module in ("ble.py", "ble_errors.py", "events.py"):
        tree = ast.parse((DEVICE / module).read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                text = node.value.lower()
                assert not any(name in text for name in names | uuids), f"{module}: {node.value!r}"
            if isinstance(node, ast.Name | ast.Attribute | ast.alias):
                ident = (getattr(node, "id", None) or getattr(node, "attr", None) or node.name).lower()
                assert not any(name in ident for name in names if len(name) > 3), f"{module}: {ident}"
