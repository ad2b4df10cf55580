"""Home Assistant discovery: two retained sensor configs and a state document through the outbox."""

from __future__ import annotations

import datetime as dt
import json

from hipsense.protocol import Importance, build_rep_event
from hipsense.publish import Outbox
from hipsense.service.config import HomeAssistantConfig
from hipsense.service.homeassistant import HomeAssistantBridge


def test_discovery_and_todays_totals(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    day = [dt.date(2026, 3, 1)]
    bridge = HomeAssistantBridge(HomeAssistantConfig(enabled=True), "p-0001", outbox, notify=lambda: None,
                                 state_path=tmp_path / "today.json", today=lambda: day[0])
    bridge.announce()
    rep = build_rep_event("p-0001", seq=1, session_id="01JQ7Z8K3M4N5P6Q7R8S9T0V1W", exercise="bridge", side="both",
                          set_index=1, rep_index=1, t_start=1.7e9, t_end=1.7e9 + 3, rom_deg=30, hold_s=2,
                          peak_speed_dps=40)
    for _ in range(3):
        bridge.on_result("rep", rep)
    rows = outbox.pending(100)
    topics = {r.topic for r in rows}
    assert "homeassistant/sensor/hipsense_p_0001/reps_today/config" in topics
    assert "homeassistant/sensor/hipsense_p_0001/adherence/config" in topics
    state_rows = [r for r in rows if r.topic == "hipsense-ha/p-0001/state"]
    assert len(state_rows) == 1  # retained state is coalesced: only the newest waits
    assert all(r.retain and r.importance is Importance.STATE for r in rows)
    assert json.loads(state_rows[0].payload)["reps_today"] == 3
    config = json.loads(next(r.payload for r in rows if r.topic.endswith("reps_today/config")))
    assert config["state_topic"] == "hipsense-ha/p-0001/state" and config["unique_id"] == "hipsense_p_0001_reps_today"
    # a new day starts from zero, and the count survived a restart
    again = HomeAssistantBridge(HomeAssistantConfig(enabled=True), "p-0001", outbox, notify=lambda: None,
                                state_path=tmp_path / "today.json", today=lambda: day[0])
    assert again.state()["reps_today"] == 3
    day[0] = dt.date(2026, 3, 2)
    assert again.state()["reps_today"] == 0
    outbox.close()
