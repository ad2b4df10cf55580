"""The dashboard's broker connection: :class:`MqttClient` plus two things an ingester needs.

1. **Shared subscriptions** (``$share/<group>/<filter>``, MQTT 5): the broker hands each
   message to one member of the group, so several dashboard instances split the load. paho
   matches its per-filter callbacks against the *plain* topic, so the callback must be
   registered under the filter without the ``$share/<group>/`` prefix.
2. **Deferred acknowledgements**: the receiver gets an ``ack`` callable and calls it after
   the message is committed, possibly from another thread and for many messages at once.
   :meth:`MqttClient.subscribe` acknowledges when the handler returns, which would force one
   commit per message.

Both belong in :class:`hipsense.publish.mqtt.MqttClient` (which owns paho); until then this
subclass uses its ``_build_client``/``_subscriptions``/``_lock``/``_client`` internals, and the
dashboard tests fail loudly if those change.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from hipsense.publish.mqtt import MqttClient

log = logging.getLogger(__name__)

Ack = Callable[[], None]
DeferredReceiver = Callable[[str, bytes, Ack], None]  # (topic, payload, ack)


def shared_filter(group: str, topic_filter: str) -> str:
    """``$share/<group>/<topic_filter>``; ``group`` may not contain ``/``, ``+`` or ``#``."""
    if not group or any(char in group for char in "/+#"):
        raise ValueError(f"invalid shared-subscription group {group!r}")
    return f"$share/{group}/{topic_filter}"


def plain_filter(topic_filter: str) -> str:
    """The filter that incoming topics are matched against (``$share/<group>/`` removed)."""
    if topic_filter.startswith("$share/"):
        return topic_filter.split("/", 2)[2]
    return topic_filter


def _ignore(topic: str, payload: bytes) -> None:  # pragma: no cover - never registered with paho
    raise AssertionError("deferred subscriptions are dispatched by DashboardMqttClient")


class DashboardMqttClient(MqttClient):
    """An :class:`MqttClient` with :meth:`subscribe_deferred` (shared filters, deferred acks)."""

    def __init__(self, *args, **kwargs) -> None:
        # Set before super().__init__, which builds the paho client (see _build_client).
        self._deferred: dict[str, tuple[int, DeferredReceiver]] = {}
        super().__init__(*args, **kwargs)

    def subscribe_deferred(self, topic_filter: str, receive: DeferredReceiver, *, qos: int = 1) -> None:
        """Call ``receive(topic, payload, ack)`` for every message on ``topic_filter``.

        ``topic_filter`` may be a shared one (:func:`shared_filter`). The message is
        acknowledged to the broker when ``ack()`` is called; call it in arrival order (MQTT
        wants PUBACKs in order). If ``receive`` raises, the message is left unacknowledged.
        Restored after every reconnect, like :meth:`MqttClient.subscribe`.
        """
        with self._lock:
            self._deferred[topic_filter] = (qos, receive)
            # Registered here only so that MqttClient (re)subscribes it on every connect.
            self._subscriptions[topic_filter] = (qos, _ignore)
            client = self._client
        client.message_callback_add(plain_filter(topic_filter), self._deferring(receive))
        if self.is_connected():
            client.subscribe(topic_filter, qos=qos)

    def _deferring(self, receive: DeferredReceiver):
        def on_message(client, userdata, raw) -> None:
            ack: Ack = functools.partial(client.ack, raw.mid, raw.qos)
            try:
                receive(raw.topic, bytes(raw.payload), ack)
            except Exception:  # must not kill paho's network thread
                log.exception("receiver failed for %s; not acknowledged", raw.topic)

        return on_message

    def _build_client(self):
        client = super()._build_client()
        # MqttClient registered our filters with its own acking wrapper (under the $share
        # name, which never matches); register the deferring one under the plain filter.
        for topic_filter, (_, receive) in self._deferred.items():
            client.message_callback_add(plain_filter(topic_filter), self._deferring(receive))
        return client
