"""Errors of the delivery layer. Nothing from sqlite3 or paho is raised past this package.

    HipsenseError
    └── PublishError      delivering results failed
        ├── OutboxError   the on-disk outbox cannot be opened or written
        └── MqttError     the broker refused us, or a connection could not be set up
"""

from __future__ import annotations

from hipsense.errors import HipsenseError


class PublishError(HipsenseError):
    """Delivering results failed."""


class OutboxError(PublishError):
    """The durable outbox cannot be opened or written (disk full, corrupt file, bad path).
    ``corrupt``: SQLite says the file is damaged (see ``Outbox.recover``); ``full``: the file
    system has no room for it (SQLITE_FULL, a failed write with ENOSPC; see ``Outbox.on_full``)."""

    def __init__(self, message: str, *, path: str | None = None, corrupt: bool = False, full: bool = False) -> None:
        super().__init__(message)
        self.path = path
        self.corrupt = corrupt
        self.full = full


class MqttError(PublishError):
    """A broker connection failed; ``reason_code`` is the MQTT reason code when there is one."""

    def __init__(self, message: str, *, reason_code: int | None = None) -> None:
        super().__init__(message if reason_code is None else f"[code:{reason_code}] {message}")
        self.reason_code = reason_code
