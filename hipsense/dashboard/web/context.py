"""Everything a request handler needs, built once by ``serve`` (or by a test)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping

from sqlalchemy import Engine

from hipsense.dashboard.accounts.login_throttle import LoginThrottle
from hipsense.dashboard.clinic_time import ClinicClock
from hipsense.dashboard.live_hub import LiveHub
from hipsense.dashboard.reading.overview import AlertRules
from hipsense.protocol import Envelope


@dataclasses.dataclass
class DashboardContext:
    """``publish`` sends an envelope and waits for the broker's acknowledgement (raises if it
    cannot); None means the dashboard runs without a broker (prescriptions cannot be saved)."""

    engine: Engine
    hub: LiveHub = dataclasses.field(default_factory=LiveHub)
    clock: ClinicClock = dataclasses.field(default_factory=ClinicClock)
    publish: Callable[[Envelope], None] | None = None
    alert_rules: AlertRules = dataclasses.field(default_factory=AlertRules)
    secure_cookies: bool = True
    sse_poll_s: float = 2.0
    sse_heartbeat_s: float = 15.0
    login_throttle: LoginThrottle = dataclasses.field(default_factory=LoginThrottle)

    @functools.cached_property
    def catalogue(self) -> Mapping[str, object]:
        # The exercises as data (exported from the catalogue into the protocol package): the
        # editor offers their ids, names and doses; the exercises layer is never imported.
        from hipsense.protocol.exercise_list import load_exercise_list

        return load_exercise_list()
