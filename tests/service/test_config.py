"""Config: the example file loads, environment overrides win, and every error names the setting."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hipsense.errors import ConfigError
from hipsense.service.config import load_config
from hipsense.service.logs import JsonFormatter, fields

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "pi" / "hipsense.toml"
NO_TLS = {"HIPSENSE_MQTT_TLS_CA_FILE": ""}  # the example points at /etc/hipsense/ca.crt


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hipsense.toml"
    path.write_text(text)
    return path


MINIMAL = '[mqtt]\nhost = "broker.local"\npatient_id = "p-0001"\n'


def test_the_documented_example_loads():
    config = load_config(EXAMPLE, environ=NO_TLS)
    assert config.mqtt.host == "broker.example.org" and config.mqtt.patient_id == "p-7k2m9q4x3b"
    assert config.sensors[0].type == "witmotion" and config.sensors[0].side == "either"
    assert config.service.voice is True and config.service.live_rate_hz == 10
    assert config.homeassistant.enabled is False


def test_defaults_from_a_minimal_file(tmp_path):
    config = load_config(write(tmp_path, MINIMAL), environ={})
    assert config.mqtt.port == 1883 and config.mqtt.tls_ca_file is None
    assert len(config.sensors) == 1 and config.sensors[0].backend == "bluez"
    assert config.service.state_dir == Path("/var/lib/hipsense")


def test_environment_overrides_win_and_are_typed(tmp_path):
    env = {"HIPSENSE_MQTT_PORT": "2883", "HIPSENSE_SERVICE_VOICE": "off", "HIPSENSE_EMULATOR_SPEED": "12.5",
           "HIPSENSE_SECOND_SENSOR_SIDE": "left", "HIPSENSE_SENSOR_SIDE": "right", "HIPSENSE_MQTT_PASSWORD": "s3cret",
           "HIPSENSE_MQTT_USERNAME": "p-0001"}
    config = load_config(write(tmp_path, MINIMAL), environ=env)
    assert config.mqtt.port == 2883 and config.service.voice is False and config.emulator.speed == 12.5
    assert [s.side for s in config.sensors] == ["right", "left"]
    assert config.mqtt.password == "s3cret"


def test_an_environment_error_names_the_variable(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, MINIMAL), environ={"HIPSENSE_MQTT_PORT": "eighty"})
    assert err.value.setting == "mqtt.port" and "HIPSENSE_MQTT_PORT" in str(err.value)


@pytest.mark.parametrize(("text", "setting", "line", "words"), [
    (MINIMAL + "port = 99999\n", "mqtt.port", 4, "between 1 and 65535"),
    ('[mqtt]\nhost = "b"\npatient_id = "maria"\n', "mqtt.patient_id", 3, "no digit"),
    (MINIMAL + '[sensor]\ntype = "fitbit"\n', "sensor.type", 5, "witmotion"),
    (MINIMAL + '[sensor]\nadress = "F1:57:00:00:00:01"\n', "sensor.adress", 5, "unknown setting"),
    (MINIMAL + '[sensor]\nrate_hz = 30\n', "sensor.rate_hz", 5, "WitMotion WT901BLE supports"),
    (MINIMAL + '[service]\nvoice = "loud"\n', "service.voice", 5, "on/off"),
    (MINIMAL + '[service]\nlive_rate_hz = 50\n', "service.live_rate_hz", 5, "between"),
    (MINIMAL + '[service]\ncard_reserve_mib = -1\n', "service.card_reserve_mib", 5, "between"),
    (MINIMAL + '[service]\ncard_reserve_mib = 1.5\n', "service.card_reserve_mib", 5, "integer"),
    (MINIMAL + '[session]\ndefault_exercise = "yoga"\n', "session.default_exercise", 5, "unknown exercise"),
    (MINIMAL + '[sensor]\nside = "left"\n[second_sensor]\nside = "left"\n', "second_sensor.side", None, "one must be"),
    (MINIMAL + '[sesion]\n', "sesion", 4, "unknown section"),
    ('[mqtt]\npatient_id = "p-0001"\n', "mqtt.host", None, "required"),
    (MINIMAL + 'tls_ca_file = "/nonexistent/ca.crt"\n', "mqtt.tls_ca_file", 4, "does not exist"),
])
def test_errors_name_the_setting_and_the_line(tmp_path, text, setting, line, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    message = str(err.value)
    assert err.value.setting == setting
    assert message.startswith(setting + ":") and words in message and str(path) in message
    if line is not None:
        assert f"line {line}" in message


def test_toml_syntax_errors_carry_tomllibs_line(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, MINIMAL + "port = = 3\n"), environ={})
    assert "line 4" in str(err.value) and "not valid TOML" in str(err.value)


def test_a_missing_file_says_how_to_point_at_one(tmp_path):
    with pytest.raises(ConfigError, match="--config or set HIPSENSE_CONFIG"):
        load_config(tmp_path / "nope.toml", environ={})


def test_the_password_is_never_logged(tmp_path):
    config = load_config(write(tmp_path, MINIMAL + 'username = "p-0001"\npassword = "hunter2-secret"\n'), environ={})
    assert "hunter2" not in repr(config) and "hunter2" not in str(config.describe())
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "starting", None, None)
    record.fields = fields(config=config.describe(), password="hunter2-secret")["fields"]
    assert "hunter2" not in JsonFormatter().format(record)
