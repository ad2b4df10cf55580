"""``hipsense dashboard serve``: the database, the ingest service and the web app in one process.

Several processes may run against the same PostgreSQL database and broker: they split the
results through the shared subscription, and every one serves pages (each sees every live
message, and reads results from the database).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from hipsense.dashboard.clinic_time import ClinicClock
from hipsense.dashboard.db import make_engine, migrate
from hipsense.dashboard.event_store import EventStore
from hipsense.dashboard.ingest import IngestService
from hipsense.dashboard.live_hub import LiveHub
from hipsense.dashboard.web import DashboardContext, create_app
from hipsense.protocol import Envelope
from hipsense.publish.errors import MqttError
from hipsense.publish.mqtt import MqttSettings, TlsSettings

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 24 * 3600  # the broker keeps results for a stopped dashboard this long

# Python hands the GIL between threads every 5 ms by default. Ingest has a CPU-bound thread
# (paho's, validating JSON) and an I/O-bound one (the writer, waiting for the database many
# times a second); with the default the writer waits up to 5 ms for the GIL after every
# database round trip, and throughput halves. 0.5 ms costs little and removes that convoy.
GIL_SWITCH_INTERVAL_S = 0.0005


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    db_url: str | None
    broker_host: str | None
    broker_port: int = 1883
    broker_username: str | None = None
    broker_password: str | None = dataclasses.field(default=None, repr=False)
    broker_ca_file: str | None = None
    client_id: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    timezone: str = "UTC"
    secure_cookies: bool = True


def default_client_id(username: str | None, password: str | None) -> str:
    """Stable (a restarted instance resumes its persistent session) and not guessable.

    The shipped Mosquitto config replaces every client id with the account's user name, so
    there each instance's account is its session. On a broker without that binding, an id
    anyone could guess (host name, "dashboard") would let another account take the session
    over; one derived from this instance's password cannot be guessed without it.
    """
    if password:
        secret = hashlib.sha256(f"hipsense-dashboard-client-id\0{username}\0{password}".encode()).hexdigest()[:20]
        return f"hipsense-dashboard-{secret}"
    # No password: a broker without accounts, where nothing is protected anyway.
    return f"hipsense-dashboard-{socket.gethostname()}-{os.getuid()}"[:64]


def mqtt_settings(options: ServeOptions) -> MqttSettings:
    return MqttSettings(
        host=options.broker_host, port=options.broker_port,
        client_id=options.client_id or default_client_id(options.broker_username, options.broker_password),
        username=options.broker_username, password=options.broker_password,
        tls=TlsSettings(ca_file=Path(options.broker_ca_file)) if options.broker_ca_file else None,
        clean_start=False, session_expiry_s=SESSION_EXPIRY_S,
    )


def broker_publisher(client) -> Callable[[Envelope], None]:
    """Publish and wait for the broker's acknowledgement; refuse at once when disconnected
    (rather than let paho hold the message for a later reconnect while the page waits)."""

    def publish(envelope: Envelope) -> None:
        if not client.is_connected():
            raise MqttError("the dashboard is not connected to the broker")
        client.publish(envelope)

    return publish


def serve(options: ServeOptions) -> None:
    """Run until interrupted."""
    import uvicorn

    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines say nothing useful here
    engine = make_engine(options.db_url)
    migrate(engine)
    hub = LiveHub()
    ingest = None
    if options.broker_host:
        ingest = IngestService(EventStore(engine), mqtt_settings(options), hub=hub)
        ingest.start()
    else:
        log.warning("no --broker: pages only, nothing is ingested and prescriptions cannot be sent")
    context = DashboardContext(
        engine=engine, hub=hub, clock=ClinicClock(zone=ZoneInfo(options.timezone)),
        publish=broker_publisher(ingest.client) if ingest else None, secure_cookies=options.secure_cookies,
    )
    try:
        uvicorn.run(create_app(context), host=options.host, port=options.port, log_level="info",
                    timeout_graceful_shutdown=3, proxy_headers=True)
    finally:
        if ingest is not None:
            ingest.stop()
        engine.dispose()
