"""The Pi service's configuration: a TOML file, ``HIPSENSE_*`` environment overrides, validated once.

Everything is checked at start, before anything connects: a typo or a bad value stops the
service with a :class:`~hipsense.errors.ConfigError` whose message names the setting
(``mqtt.port``), the file and, when it can be found, the line. The documented example is
``deploy/pi/hipsense.toml``.

Environment overrides: ``HIPSENSE_<SECTION>_<KEY>``, e.g. ``HIPSENSE_MQTT_HOST`` or
``HIPSENSE_EMULATOR_SPEED``. They win over the file, so a systemd drop-in or a test can change
one value without rewriting the file (and the password can come from a credential store).

Secrets: :attr:`MqttConfig.password` is excluded from ``repr``; :meth:`ServiceConfig.describe`
is what the service logs at start, with the password masked.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hipsense.errors import ConfigError
from hipsense.exercises.vocabulary import ONE_THIGH, Thigh

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "EmulatorConfig",
    "HomeAssistantConfig",
    "MqttConfig",
    "PatientPageConfig",
    "SensorConfig",
    "ServiceConfig",
    "ServiceSection",
    "SessionConfig",
    "load_config",
]

DEFAULT_CONFIG_PATH = Path("/etc/hipsense/hipsense.toml")
DEFAULT_STATE_DIR = Path("/var/lib/hipsense")
SENSOR_SIDES = tuple(Thigh)
_ADDRESS = re.compile(r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f-]{36}$")  # MAC, or macOS UUID
_HOSTNAME = re.compile(r"^[A-Za-z0-9.:_-]{1,253}$")


@dataclasses.dataclass(frozen=True, slots=True)
class MqttConfig:
    """``[mqtt]``: the broker. The provisioning tool writes exactly these keys."""

    host: str
    patient_id: str
    port: int = 8883
    tls_ca_file: Path | None = None
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)  # never logged
    client_id: str | None = None
    keepalive_s: int = 30


@dataclasses.dataclass(frozen=True, slots=True)
class SensorConfig:
    """``[sensor]`` (and ``[second_sensor]``): one thigh sensor.

    ``side`` is the thigh it is strapped to; ``either`` means a single sensor that the patient
    moves to the leg being trained (the prescription says which one that is).
    """

    type: str = "witmotion"  # a key of hipsense.device.decoders.DECODERS
    address: str | None = None
    side: Thigh = Thigh.EITHER
    rate_hz: int | None = None  # None: the sensor type's default_rate_hz (the reader fills it in)
    backend: str = "bluez"  # "bluez" on the Pi, "emulator" for a hardware-free run
    gyroscope: bool = True  # False: the accelerometer alone (sensor types that allow it); counted on tilt


@dataclasses.dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """``[emulator]``: an emulated sensor of the configured type on a virtual radio
    (``sensor.backend = "emulator"``).

    ``speed`` replays faster than real time; sample times are scaled by it so that the counting
    sees real-time motion (a 5 s hold is still 5 s of sample time).
    """

    recording: Path | None = None  # None: the shipped UCI recording (straight-leg raise)
    speed: float = 1.0
    loop: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceSection:
    """``[service]``."""

    state_dir: Path = DEFAULT_STATE_DIR
    voice: bool = True
    live_rate_hz: float = 10.0
    card_reserve_mib: int = 8  # kept back on the card for a full one (service/reserve.py); 0: none
    log_format: str = "json"  # "json" (journald, machines) or "text" (a person at a terminal)
    log_level: str = "info"


@dataclasses.dataclass(frozen=True, slots=True)
class SessionConfig:
    """``[session]``: how a session is followed. Times are sample-clock seconds."""

    set_rest_s: float = 20.0
    idle_end_s: float = 600.0
    resume_within_s: float = 1800.0
    recognition: bool = True
    recognition_min_confidence: float = 0.8
    default_exercise: str | None = None  # tracked (as not prescribed) when there is no prescription


@dataclasses.dataclass(frozen=True, slots=True)
class HomeAssistantConfig:
    """``[homeassistant]``: optional MQTT discovery of today's reps and adherence (off by default)."""

    enabled: bool = False
    discovery_prefix: str = "homeassistant"
    state_topic: str | None = None  # default: hipsense-ha/<patient_id>/state
    # The home's own broker (the one Home Assistant uses), never the clinic's: the clinic's ACL
    # refuses these topics, and family data has no business there. Required when enabled.
    broker_host: str | None = None
    broker_port: int = 1883
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)  # never logged
    tls_ca_file: Path | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class PatientPageConfig:
    """``[patient_page]``: the patient's page on the home network (pain, plan, skip a day).

    Off unless enabled (deploy/pi/hipsense.toml enables it): see service/patient_page.py.
    """

    enabled: bool = False
    host: str = "0.0.0.0"  # every interface; only home-network clients are answered
    port: int = 8080


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceConfig:
    """The whole configuration, validated."""

    mqtt: MqttConfig
    sensors: tuple[SensorConfig, ...]
    service: ServiceSection = ServiceSection()
    session: SessionConfig = SessionConfig()
    emulator: EmulatorConfig = EmulatorConfig()
    homeassistant: HomeAssistantConfig = HomeAssistantConfig()
    patient_page: PatientPageConfig = PatientPageConfig()
    source: str = "<defaults>"

    def describe(self) -> dict[str, Any]:
        """The configuration as logged at start: everything but the password."""
        doc = {name: _plain(getattr(self, name)) for name in ("service", "session", "homeassistant", "patient_page")}
        doc["homeassistant"]["password"] = "***" if self.homeassistant.password else None
        mqtt = _plain(self.mqtt)
        mqtt["password"] = "***" if self.mqtt.password else None
        doc["mqtt"] = mqtt
        doc["sensors"] = [_plain(s) for s in self.sensors]
        if any(s.backend == "emulator" for s in self.sensors):
            doc["emulator"] = _plain(self.emulator)
        doc["source"] = self.source
        return doc


def _plain(obj: Any) -> dict[str, Any]:
    return {f.name: (str(v) if isinstance(v := getattr(obj, f.name), Path) else v) for f in dataclasses.fields(obj)}


# ------------------------------------------------------------------------------------------------
# Reading


_SECTIONS: dict[str, type] = {
    "mqtt": MqttConfig,
    "sensor": SensorConfig,
    "second_sensor": SensorConfig,
    "service": ServiceSection,
    "session": SessionConfig,
    "emulator": EmulatorConfig,
    "homeassistant": HomeAssistantConfig,
    "patient_page": PatientPageConfig,
}


def load_config(path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None) -> ServiceConfig:
    """Read ``path`` (default ``/etc/hipsense/hipsense.toml``), apply ``HIPSENSE_*`` overrides, validate.

    Raises ConfigError naming the setting (and the file and line) on any problem.
    """
    environ = os.environ if environ is None else environ
    path = Path(path) if path is not None else Path(environ.get("HIPSENSE_CONFIG", DEFAULT_CONFIG_PATH))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found (pass --config or set HIPSENSE_CONFIG)", setting="config") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}", setting="config") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message carries "(at line L, column C)"
        raise ConfigError(f"{path}: not valid TOML: {exc}", setting="config") from None
    return _Reader(raw, text=text, source=str(path), environ=environ).config()


def config_from_mapping(raw: Mapping[str, Any], *, environ: Mapping[str, str] | None = None) -> ServiceConfig:
    """Validate an already parsed mapping (tests, tools); same rules as :func:`load_config`."""
    return _Reader(dict(raw), text="", source="<mapping>", environ=environ or {}).config()


class _Reader:
    """Holds the raw tables and knows where each key came from, for error messages."""

    def __init__(self, raw: dict[str, Any], *, text: str, source: str, environ: Mapping[str, str]) -> None:
        self.raw = raw
        self.lines = text.splitlines()
        self.source = source
        self.from_env: set[str] = set()
        for name, table in raw.items():
            if name not in _SECTIONS:
                self.fail(name, f"unknown section [{name}]; known: {', '.join(_SECTIONS)}")
            if not isinstance(table, dict):
                self.fail(name, "must be a table ([" + name + "])")
        self._apply_environment(environ)

    # -- errors ----------------------------------------------------------------------------------

    def fail(self, setting: str, problem: str) -> None:
        if setting in self.from_env:
            where = f"environment variable HIPSENSE_{setting.replace('.', '_').upper()}"
        else:
            line = self._line_of(setting)
            where = self.source + (f", line {line}" if line else "")
        raise ConfigError(f"{setting}: {problem} ({where})", setting=setting)

    def _line_of(self, setting: str) -> int | None:
        """The line that sets ``setting`` (section.key), found by a plain scan of the file."""
        section, _, key = setting.partition(".")
        current = None
        for number, line in enumerate(self.lines, 1):
            stripped = line.strip()
            if m := re.match(r"^\[\s*([A-Za-z0-9_]+)\s*\]", stripped):
                current = m.group(1)
                if not key and current == section:
                    return number
            elif key and current == section and re.match(rf"^{re.escape(key)}\s*=", stripped):
                return number
        return None

    # -- environment -----------------------------------------------------------------------------

    def _apply_environment(self, environ: Mapping[str, str]) -> None:
        sections = sorted(_SECTIONS, key=len, reverse=True)  # second_sensor before sensor
        for name, value in environ.items():
            if not name.startswith("HIPSENSE_") or name == "HIPSENSE_CONFIG":
                continue
            rest = name[len("HIPSENSE_"):].lower()
            section = next((s for s in sections if rest.startswith(s + "_")), None)
            if section is None:
                continue  # not ours (e.g. HIPSENSE_LOG used by a tool); ignoring is the safe choice
            key = rest[len(section) + 1:]
            setting = f"{section}.{key}"
            self.from_env.add(setting)
            self.raw.setdefault(section, {})[key] = _EnvText(value)

    # -- values ----------------------------------------------------------------------------------

    def table(self, section: str) -> dict[str, Any]:
        table = dict(self.raw.get(section, {}))
        known = {f.name for f in dataclasses.fields(_SECTIONS[section])}
        for key in table:
            if key not in known:
                self.fail(f"{section}.{key}", f"unknown setting; [{section}] knows {', '.join(sorted(known))}")
        return table

    def text(self, setting: str, value: Any, *, allow_empty: bool = False) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(setting, f"must be a string, got {value!r}")
        if value == "" and not allow_empty:
            return None
        return str(value)

    def integer(self, setting: str, value: Any, low: int, high: int) -> int:
        if isinstance(value, _EnvText):
            try:
                value = int(value)
            except ValueError:
                self.fail(setting, f"must be an integer, got {str(value)!r}")
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(setting, f"must be an integer, got {value!r}")
        if not low <= value <= high:
            self.fail(setting, f"must be between {low} and {high}, got {value}")
        return int(value)

    def number(self, setting: str, value: Any, low: float, high: float) -> float:
        if isinstance(value, _EnvText):
            try:
                value = float(value)
            except ValueError:
                self.fail(setting, f"must be a number, got {str(value)!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(setting, f"must be a number, got {value!r}")
        if not low <= value <= high:
            self.fail(setting, f"must be between {low:g} and {high:g}, got {value:g}")
        return float(value)

    def switch(self, setting: str, value: Any) -> bool:
        """true/false, also "on"/"off" (what a person writes for ``voice``)."""
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("on", "true", "yes", "1"):
                return True
            if lowered in ("off", "false", "no", "0"):
                return False
        self.fail(setting, f"must be on/off (or true/false), got {value!r}")
        raise AssertionError  # unreachable; keeps type checkers calm

    def choice(self, setting: str, value: Any, allowed: tuple[str, ...]) -> str:
        if value not in allowed:
            self.fail(setting, f"must be one of {', '.join(allowed)}, got {value!r}")
        return str(value)

    def path(self, setting: str, value: Any) -> Path | None:
        text = self.text(setting, value)
        return None if text is None else Path(text).expanduser()

    # -- sections --------------------------------------------------------------------------------

    def config(self) -> ServiceConfig:
        mqtt = self.mqtt()
        sensors = [self.sensor("sensor")]
        if "second_sensor" in self.raw:
            sensors.append(self.sensor("second_sensor"))
            if {sensors[0].side, sensors[1].side} != set(ONE_THIGH):
                self.fail("second_sensor.side", "with two sensors, one must be side = \"left\" and the other \"right\"")
        service = self.service()
        return ServiceConfig(
            mqtt=mqtt,
            sensors=tuple(sensors),
            service=service,
            session=self.session(),
            emulator=self.emulator(),
            homeassistant=self.homeassistant(mqtt),
            patient_page=self.patient_page(),
            source=self.source,
        )

    def mqtt(self) -> MqttConfig:
        from hipsense.protocol import ProtocolError, validate_patient_id

        if "mqtt" not in self.raw:
            self.fail("mqtt", "missing section [mqtt] (host and patient_id are required)")
        t = self.table("mqtt")
        host = self.text("mqtt.host", t.get("host"))
        if host is None:
            self.fail("mqtt.host", "is required (the broker's host name or address)")
        if not _HOSTNAME.match(host):
            self.fail("mqtt.host", f"{host!r} is not a host name or address")
        patient = self.text("mqtt.patient_id", t.get("patient_id"))
        if patient is None:
            self.fail("mqtt.patient_id", "is required (the pseudonym from provisioning)")
        try:
            validate_patient_id(patient)
        except ProtocolError as exc:
            self.fail("mqtt.patient_id", exc.reason)
        ca = self.path("mqtt.tls_ca_file", t.get("tls_ca_file"))
        if ca is not None and not ca.is_file():
            self.fail("mqtt.tls_ca_file", f"{ca} does not exist or is not a file")
        port = self.integer("mqtt.port", t.get("port", 8883 if ca else 1883), 1, 65535)
        username = self.text("mqtt.username", t.get("username"))
        password = self.text("mqtt.password", t.get("password"))
        if password is not None and username is None:
            self.fail("mqtt.password", "is set but mqtt.username is not")
        return MqttConfig(
            host=host, patient_id=patient, port=port, tls_ca_file=ca, username=username, password=password,
            client_id=self.text("mqtt.client_id", t.get("client_id")),
            keepalive_s=self.integer("mqtt.keepalive_s", t.get("keepalive_s", 30), 5, 3600),
        )

    def sensor(self, section: str) -> SensorConfig:
        # The sensor types, their rates and which of them can be emulated come from the
        # decoder registry: nothing about a sensor type is written down here.
        from hipsense.device.decoders import DECODERS, WitMotionDecoder

        t = self.table(section)
        kind = self.choice(f"{section}.type", t.get("type", WitMotionDecoder.sensor_type), tuple(DECODERS))
        decoder = DECODERS[kind]
        address = self.text(f"{section}.address", t.get("address"))
        if address is not None and not _ADDRESS.match(address):
            self.fail(f"{section}.address", f"{address!r} is not a Bluetooth address like F1:57:00:00:00:01")
        side = self.choice(f"{section}.side", t.get("side", Thigh.EITHER), SENSOR_SIDES)
        # Every sensor type can be emulated (tests/service/test_sensor_types.py holds the emulator
        # registry to the decoder registry), so the emulator (Bumble, a third of an emulated
        # start) is not imported to check it here: it loads when the links open, after READY=1,
        # as bleak does on a Pi.
        backend = self.choice(f"{section}.backend", t.get("backend", "bluez"), ("bluez", "emulator"))
        rate = self.integer(f"{section}.rate_hz", t.get("rate_hz", decoder.default_rate_hz), 1, 10_000)
        if rate not in decoder.rates_hz:
            self.fail(f"{section}.rate_hz", f"{decoder.display_name} supports {sorted(decoder.rates_hz)} Hz, got {rate}")
        gyroscope = self.switch(f"{section}.gyroscope", t.get("gyroscope", True))
        if not gyroscope and decoder.accelerometer_only is None:
            only = " | ".join(k for k, d in DECODERS.items() if d.accelerometer_only is not None)
            self.fail(f"{section}.gyroscope", f"{decoder.display_name} always streams its gyroscope; "
                      f"gyroscope = false is for type = {only}")
        return SensorConfig(type=kind, address=address, side=side, rate_hz=rate, backend=backend,
                            gyroscope=gyroscope)

    def service(self) -> ServiceSection:
        t = self.table("service")
        state_dir = self.path("service.state_dir", t.get("state_dir")) or DEFAULT_STATE_DIR
        from hipsense.protocol import LIVE_MAX_RATE_HZ
        from hipsense.service.reserve import DEFAULT_RESERVE_MIB

        return ServiceSection(
            state_dir=state_dir,
            voice=self.switch("service.voice", t.get("voice", True)),
            live_rate_hz=self.number("service.live_rate_hz", t.get("live_rate_hz", LIVE_MAX_RATE_HZ), 0.1, LIVE_MAX_RATE_HZ),
            card_reserve_mib=self.integer("service.card_reserve_mib", t.get("card_reserve_mib", DEFAULT_RESERVE_MIB),
                                          0, 1024),
            log_format=self.choice("service.log_format", t.get("log_format", "json"), ("json", "text")),
            log_level=self.choice("service.log_level", str(t.get("log_level", "info")).lower(),
                                  ("debug", "info", "warning", "error")),
        )

    def session(self) -> SessionConfig:
        t = self.table("session")
        default = self.text("session.default_exercise", t.get("default_exercise"))
        if default is not None:
            from hipsense.exercises.catalogue import load_catalogue

            if default not in load_catalogue():
                self.fail("session.default_exercise", f"unknown exercise id {default!r} (see `hipsense exercises`)")
        return SessionConfig(
            set_rest_s=self.number("session.set_rest_s", t.get("set_rest_s", 20.0), 3.0, 600.0),
            idle_end_s=self.number("session.idle_end_s", t.get("idle_end_s", 600.0), 5.0, 86400.0),
            resume_within_s=self.number("session.resume_within_s", t.get("resume_within_s", 1800.0), 0.0, 86400.0),
            recognition=self.switch("session.recognition", t.get("recognition", True)),
            recognition_min_confidence=self.number(
                "session.recognition_min_confidence", t.get("recognition_min_confidence", 0.8), 0.5, 0.999),
            default_exercise=default,
        )

    def emulator(self) -> EmulatorConfig:
        t = self.table("emulator")
        recording = self.path("emulator.recording", t.get("recording"))
        if recording is not None and not recording.is_file():
            self.fail("emulator.recording", f"{recording} does not exist")
        return EmulatorConfig(
            recording=recording,
            speed=self.number("emulator.speed", t.get("speed", 1.0), 0.1, 50.0),
            loop=self.switch("emulator.loop", t.get("loop", False)),
        )

    def homeassistant(self, clinic: MqttConfig) -> HomeAssistantConfig:
        t = self.table("homeassistant")
        prefix = self.text("homeassistant.discovery_prefix", t.get("discovery_prefix", "homeassistant"))
        if prefix is None or any(c in prefix for c in "+#"):
            self.fail("homeassistant.discovery_prefix", "must be a topic without wildcards")
        state = self.text("homeassistant.state_topic", t.get("state_topic"))
        if state is not None and any(c in state for c in "+#"):
            self.fail("homeassistant.state_topic", "must be a topic without wildcards")
        enabled = self.switch("homeassistant.enabled", t.get("enabled", False))
        host = self.text("homeassistant.broker_host", t.get("broker_host"))
        if host is not None and not _HOSTNAME.match(host):
            self.fail("homeassistant.broker_host", f"{host!r} is not a host name or address")
        if enabled and host is None:
            self.fail("homeassistant.broker_host", "is required: discovery goes to the home's own MQTT broker "
                                                    "(the one Home Assistant uses), never the clinic's")
        ca = self.path("homeassistant.tls_ca_file", t.get("tls_ca_file"))
        if ca is not None and not ca.is_file():
            self.fail("homeassistant.tls_ca_file", f"{ca} does not exist or is not a file")
        port = self.integer("homeassistant.broker_port", t.get("broker_port", 8883 if ca else 1883), 1, 65535)
        if enabled and host == clinic.host and port == clinic.port:
            self.fail("homeassistant.broker_host", "is the clinic's broker ([mqtt]); give the home's own broker")
        username = self.text("homeassistant.username", t.get("username"))
        password = self.text("homeassistant.password", t.get("password"))
        if password is not None and username is None:
            self.fail("homeassistant.password", "is set but homeassistant.username is not")
        return HomeAssistantConfig(
            enabled=enabled, discovery_prefix=prefix, state_topic=state, broker_host=host, broker_port=port,
            username=username, password=password, tls_ca_file=ca,
        )

    def patient_page(self) -> PatientPageConfig:
        t = self.table("patient_page")
        host = self.text("patient_page.host", t.get("host", "0.0.0.0"))
        if host is None or not _HOSTNAME.match(host):
            self.fail("patient_page.host", f"{host!r} is not an address to listen on (e.g. 0.0.0.0)")
        return PatientPageConfig(
            enabled=self.switch("patient_page.enabled", t.get("enabled", False)),
            host=host, port=self.integer("patient_page.port", t.get("port", 8080), 1, 65535),
        )


class _EnvText(str):
    """A value from the environment: text that the typed readers may convert."""
