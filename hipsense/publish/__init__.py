"""Delivering results: the durable outbox, its sender, the prescription store, and the MQTT
client in :mod:`.mqtt`.

:mod:`hipsense.publish.mqtt` is the only module that imports paho; it is not imported here,
so everything else works (and is testable) without the ``mqtt`` extra.
"""

from hipsense.publish.errors import MqttError, OutboxError, PublishError
from hipsense.publish.outbox import Outbox, OutboxLimits, OutboxRow, OutboxStats, open_outbox
from hipsense.publish.prescriptions import PrescriptionStore
from hipsense.publish.sender import OutboxSender, RowTransport, SenderStats
from hipsense.publish.throttle import LiveThrottle

__all__ = [
    "LiveThrottle",
    "MqttError",
    "Outbox",
    "OutboxError",
    "OutboxLimits",
    "OutboxRow",
    "OutboxSender",
    "OutboxStats",
    "PrescriptionStore",
    "PublishError",
    "RowTransport",
    "SenderStats",
    "open_outbox",
]
