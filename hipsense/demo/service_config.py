"""The Pi service's configuration for the demo: deploy/pi/hipsense.toml with a local broker
and ``sensor.backend = "emulator"``, so ``hipsense run`` reaches the emulated sensor through
bleak exactly as it reaches a real one through BlueZ."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["write_service_config"]


def write_service_config(path: Path, *, broker_port: int, patient_id: str, state_dir: Path, speed: float,
                         voice: bool, patient_page_port: int | None = None) -> Path:
    """Write the TOML to ``path`` (owner-only, like the real one) and return ``path``."""
    q = json.dumps  # a JSON string is a valid TOML basic string
    text = f"""\
# Written by `hipsense demo`; see deploy/pi/hipsense.toml for every setting.
[mqtt]
host = "127.0.0.1"
port = {broker_port}
tls_ca_file = ""      # the demo broker listens on loopback only, without TLS or passwords
patient_id = {q(patient_id)}

[sensor]
type = "witmotion"
backend = "emulator"  # an emulated WitMotion on a virtual Bumble radio
side = "right"        # the recording's thigh

[emulator]
recording = ""        # the shipped UCI recording (subject 1, straight-leg raise)
speed = {speed!r}

[service]
state_dir = {q(str(state_dir))}
voice = {q("on" if voice else "off")}
log_format = "text"
log_level = "info"
"""
    if patient_page_port is not None:
        text += f"""
[patient_page]
enabled = true
host = "127.0.0.1"    # the demo machine only (on a Pi: 0.0.0.0, answered only from the home network)
port = {patient_page_port}
"""
    path.touch(mode=0o600)
    path.write_text(text, encoding="utf-8")
    return path
