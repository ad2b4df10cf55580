"""The demo's embedded MQTT broker: amqtt in this process, on 127.0.0.1, anonymous, MQTT 3.1.1.

A production deployment runs Mosquitto (deploy/server/); a newcomer's machine has none, so
the demo brings its own broker in pure Python. amqtt speaks only MQTT 3.1.1, and two things
our clients do need adapting here, in the broker, so that the service and the dashboard run
their own unchanged code:

* **MQTT 5 connects.** Our clients try MQTT 5 first and fall back to 3.1.1 when the broker
  answers "unacceptable protocol version" (what MQTT 3.1.1 §3.1.2.2 asks of it). amqtt 0.12.1
  parses the whole CONNECT as 3.1.1 before looking at the version, trips over the MQTT 5
  properties and drops the connection without an answer, so the clients would retry MQTT 5
  forever. We therefore accept the TCP connections ourselves, read the CONNECT's protocol
  level, answer a version-5 client with the 3.1.1 refusal, and hand every 3.1.1 connection to
  amqtt through its public "external listener" entry point, bytes already read included.
* **Shared subscriptions.** The dashboard subscribes to results as
  ``$share/<group>/<filter>`` so that several instances split them. amqtt does not know
  shared subscriptions and would treat that as a literal filter that nothing matches. With
  one dashboard a group of one member gets every message, which is a plain subscription to
  ``<filter>``: so that is what the demo broker records. (Like a real shared subscription,
  it gets no retained messages: amqtt matches those against the ``$share`` name.)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Self

from amqtt.adapters import ReaderAdapter, StreamWriterAdapter
from amqtt.broker import Broker

__all__ = ["EmbeddedBroker"]

log = logging.getLogger(__name__)

_LISTENER = "demo"
_CONNECT = 0x10  # packet type 1, flags 0
_MQTT_311 = 4
_REFUSE_PROTOCOL_VERSION = bytes((0x20, 0x02, 0x00, 0x01))  # CONNACK, rc 1 (3.1.1 format)
_CONNECT_HEADER_TIMEOUT_S = 10.0


class _Refused(Exception):
    """The connection was answered (or dropped) here and never reaches amqtt."""


class _ReplayingReader(ReaderAdapter):
    """A stream reader that first returns the bytes we already read from it."""

    def __init__(self, reader: asyncio.StreamReader, already_read: bytes) -> None:
        self._reader = reader
        self._pending = already_read

    async def read(self, n: int = -1) -> bytes:
        if not self._pending:
            return await (self._reader.read(n) if n == -1 else self._reader.readexactly(n))
        if n == -1:
            head, self._pending = self._pending, b""
            return head + await self._reader.read(-1)
        head, self._pending = self._pending[:n], self._pending[n:]
        return head + (await self._reader.readexactly(n - len(head)) if len(head) < n else b"")

    def feed_eof(self) -> None:
        self._reader.feed_eof()


class _DemoBroker(Broker):
    """amqtt's broker, recording ``$share/<group>/<filter>`` as ``<filter>`` (see the module doc)."""

    async def add_subscription(self, subscription: tuple[str, int], session: Any) -> int:
        topic_filter, qos = subscription
        if topic_filter.startswith("$share/") and topic_filter.count("/") >= 2:
            topic_filter = topic_filter.split("/", 2)[2]
        return await super().add_subscription((topic_filter, qos), session)


async def _read_connect_header(reader: asyncio.StreamReader) -> tuple[bytes, int]:
    """Read a CONNECT up to its protocol level: (bytes read, level); _Refused if not a CONNECT."""
    head = await reader.readexactly(1)
    if head[0] != _CONNECT:
        raise _Refused  # [MQTT-3.1.0-1]: the first packet must be a CONNECT; close at once
    for _ in range(4):  # the remaining length: 1 to 4 bytes, high bit = "more follow"
        byte = await reader.readexactly(1)
        head += byte
        if not byte[0] & 0x80:
            break
    name_length = await reader.readexactly(2)
    name = await reader.readexactly(int.from_bytes(name_length, "big"))
    level = await reader.readexactly(1)
    return head + name_length + name + level, level[0]


class EmbeddedBroker:
    """An anonymous MQTT 3.1.1 broker on ``127.0.0.1:port``; ``async with`` starts and stops it."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._broker: _DemoBroker | None = None
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def __aenter__(self) -> Self:
        config = {
            # "external": amqtt opens no socket; connections come from _accept. ("bind" is
            # only there because amqtt skips a listener without one.)
            "listeners": {"default": {"type": "external", "bind": f"{self.host}:{self.port}"},
                          _LISTENER: {"type": "external", "bind": f"{self.host}:{self.port}"}},
            # Only anonymous access: no $SYS publisher, no per-packet logging plugins.
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        self._broker = _DemoBroker(config)
        await self._broker.start()
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.close()
        if self._broker is not None:
            await self._broker.shutdown()  # disconnects the clients amqtt has taken on
        # Closing the sockets (not cancelling the tasks, which asyncio's stream server would log
        # as errors) ends every connection still in our hands.
        for writer in list(self._connections.values()):
            writer.close()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    # -- what the demo asks of its broker -----------------------------------------------------

    def has_subscriber(self, client_id: str, topic_filter: str) -> bool:
        """Whether ``client_id`` has subscribed to ``topic_filter`` (shared ones as plain)."""
        assert self._broker is not None
        return any(session.client_id == client_id for session, _ in self._broker.subscriptions.get(topic_filter, ()))

    async def publish_retained(self, topic: str, payload: bytes) -> None:
        """Store ``payload`` as the topic's retained message and deliver it to subscribers (QoS 1)."""
        assert self._broker is not None
        await self._broker.retain_message(None, topic, payload, 1)
        await self._broker.internal_message_broadcast(topic, payload, 1)

    # -- connections ---------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            replay = await self._check_version(reader, writer)
            assert self._broker is not None
            await self._broker.external_connected(replay, StreamWriterAdapter(writer), _LISTENER)
        except (TimeoutError, _Refused, asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:  # one client's trouble must not take the demo down
            log.exception("MQTT connection failed")
        finally:
            self._connections.pop(task, None)
            writer.close()  # not awaiting wait_closed(): it can outlive the loop for a dead peer

    async def _check_version(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> ReaderAdapter:
        head, level = await asyncio.wait_for(_read_connect_header(reader), _CONNECT_HEADER_TIMEOUT_S)
        if level != _MQTT_311:
            writer.write(_REFUSE_PROTOCOL_VERSION)  # the client retries with MQTT 3.1.1
            await writer.drain()
            raise _Refused
        return _ReplayingReader(reader, head)
