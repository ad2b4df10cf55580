"""Home Assistant discovery: two retained sensor configs and a state document, sent to the
home's own broker (never the clinic's); a refused publish is reported once, not retried."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time

import pytest

from hipsense.protocol import build_rep_event
from hipsense.service.config import ConfigError, HomeAssistantConfig, load_config
from hipsense.service.homeassistant import HomeAssistantBridge, HomePublisher
from tests.mosquitto import MOSQUITTO, Mosquitto


class Sink:
    def __init__(self) -> None:
        self.offers: list[tuple[str, bytes]] = []

    def offer(self, topic: str, payload: bytes) -> None:
        self.offers.append((topic, payload))

    def latest(self) -> dict[str, dict]:
        return {topic: json.loads(payload) for topic, payload in self.offers}


def _rep():
    return build_rep_event("p-0001", seq=1, session_id="01JQ7Z8K3M4N5P6Q7R8S9T0V1W", exercise="bridge", side="both",
                           set_index=1, rep_index=1, t_start=1.7e9, t_end=1.7e9 + 3, rom_deg=30, hold_s=2,
                           peak_speed_dps=40)


def test_discovery_and_todays_totals(tmp_path):
    sink = Sink()
    day = [dt.date(2026, 3, 1)]
    config = HomeAssistantConfig(enabled=True, broker_host="homeassistant.local")
    bridge = HomeAssistantBridge(config, "p-0001", sink, state_path=tmp_path / "today.json", today=lambda: day[0])
    bridge.announce()
    for _ in range(3):
        bridge.on_result("rep", _rep())
    latest = sink.latest()
    assert "homeassistant/sensor/hipsense_p_0001/reps_today/config" in latest
    assert "homeassistant/sensor/hipsense_p_0001/adherence/config" in latest
    assert latest["hipsense-ha/p-0001/state"]["reps_today"] == 3
    config_doc = latest["homeassistant/sensor/hipsense_p_0001/reps_today/config"]
    assert config_doc["state_topic"] == "hipsense-ha/p-0001/state"
    assert config_doc["unique_id"] == "hipsense_p_0001_reps_today"
    # a new day starts from zero, and the count survived a restart
    again = HomeAssistantBridge(config, "p-0001", Sink(), state_path=tmp_path / "today.json", today=lambda: day[0])
    assert again.state()["reps_today"] == 3
    day[0] = dt.date(2026, 3, 2)
    assert again.state()["reps_today"] == 0


def _config(tmp_path, homeassistant: str) -> str:
    path = tmp_path / "hipsense.toml"
    path.write_text('[mqtt]\nhost = "mqtt.clinic.example"\nport = 8883\npatient_id = "p-0001"\n'
                    '[sensor]\nbackend = "emulator"\nside = "right"\n'
                    f'[homeassistant]\n{homeassistant}\n')
    return path


def test_discovery_needs_the_homes_own_broker(tmp_path):
    with pytest.raises(ConfigError, match="broker_host.*never the clinic's"):
        load_config(_config(tmp_path, "enabled = true"))
    with pytest.raises(ConfigError, match="is the clinic's broker"):
        load_config(_config(tmp_path, 'enabled = true\nbroker_host = "mqtt.clinic.example"\nbroker_port = 8883'))
    config = load_config(_config(tmp_path, 'enabled = true\nbroker_host = "homeassistant.local"\n'
                                           'username = "hipsense"\npassword = "s3cret"'))
    assert (config.homeassistant.broker_host, config.homeassistant.broker_port) == ("homeassistant.local", 1883)
    assert "s3cret" not in json.dumps(config.describe(), default=str)


@pytest.fixture
def home_broker(tmp_path):
    """A home broker where the account ``homeha`` may write Home Assistant's topics and the
    patient's clinic account ``p-0001`` may not (as on a clinic broker)."""
    if MOSQUITTO is None:
        pytest.skip("mosquitto not installed")
    workdir = tmp_path / "home-broker"
    workdir.mkdir()
    server = Mosquitto(workdir, patients={"p-0001": "pi-secret", "homeha": "ha-secret"})
    if not server.authenticated:
        pytest.skip("mosquitto_passwd not installed: no ACL to refuse with")
    with open(workdir / "acl", "a") as acl:
        acl.write("\nuser homeha\ntopic readwrite homeassistant/#\ntopic readwrite hipsense-ha/#\n")
    server.start()
    yield server
    server.stop()


def _publisher(broker, user: str, password: str) -> HomePublisher:
    config = HomeAssistantConfig(enabled=True, broker_host="127.0.0.1", broker_port=broker.port, username=user,
                                 password=password)
    return HomePublisher.connect(config, "p-0001")


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_discovery_reaches_the_home_broker_retained(home_broker, tmp_path):
    from hipsense.publish.mqtt import MqttClient, MqttSettings

    home = _publisher(home_broker, "homeha", "ha-secret")
    home.start()
    try:
        bridge = HomeAssistantBridge(HomeAssistantConfig(enabled=True, broker_host="x"), "p-0001", home,
                                     state_path=tmp_path / "today.json")
        bridge.announce()
        bridge.on_result("rep", _rep())
        assert _wait(lambda: home.published >= 3, 10), home.refused
    finally:
        home.stop()
    seen: dict[str, bytes] = {}
    watcher = MqttClient(MqttSettings(host="127.0.0.1", port=home_broker.port, client_id="ha-itself",
                                      username="homeha", password="ha-secret"))
    watcher.subscribe_deferred("homeassistant/#", lambda topic, payload, ack: (seen.__setitem__(topic, payload), ack()))
    watcher.subscribe_deferred("hipsense-ha/#", lambda topic, payload, ack: (seen.__setitem__(topic, payload), ack()))
    with watcher:
        assert _wait(lambda: len(seen) == 3, 10), seen  # retained: Home Assistant gets them whenever it starts
    assert json.loads(seen["hipsense-ha/p-0001/state"])["reps_today"] == 1


def test_a_refused_publish_is_reported_once_and_not_retried(home_broker, tmp_path, caplog):
    home = _publisher(home_broker, "p-0001", "pi-secret")  # an account the home broker does not let write them
    home.retry_s = 0.05
    with caplog.at_level(logging.ERROR, logger="hipsense.service.homeassistant"):
        home.start()
        try:
            bridge = HomeAssistantBridge(HomeAssistantConfig(enabled=True, broker_host="x"), "p-0001", home,
                                         state_path=tmp_path / "today.json")
            bridge.announce()
            assert _wait(lambda: len(home.refused) == 3, 10), home.refused
            for _ in range(5):
                bridge.on_result("rep", _rep())
            time.sleep(0.5)
        finally:
            home.stop()
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 3  # one line per topic, however many updates followed
    assert all("0x87" in r.getMessage() or "135" in r.getMessage() or "authori" in r.getMessage() for r in refusals)
    assert home.published == 0
