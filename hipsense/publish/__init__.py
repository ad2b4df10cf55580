"""Delivering results: the durable outbox, and the MQTT client in :mod:`.mqtt`.

:mod:`hipsense.publish.mqtt` is the only module that imports paho; it is not imported here,
so the outbox works (and is testable) without the ``mqtt`` extra.
"""

from hipsense.publish.errors import MqttError, OutboxError, PublishError
from hipsense.publish.outbox import Outbox, OutboxLimits, OutboxRow, OutboxStats

__all__ = ["MqttError", "Outbox", "OutboxError", "OutboxLimits", "OutboxRow", "OutboxStats", "PublishError"]
