"""Structured logs: one JSON object per line (journald, log shippers) or key=value text.

Call sites log a short event name and pass fields as ``extra={"fields": {...}}``; the
formatter puts them in the record, so ``journalctl -o cat -u hipsense | jq`` can filter on
them. Messages from other libraries (paho, bleak) come out in the same shape.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

__all__ = ["JsonFormatter", "KeyValueFormatter", "fields", "setup_logging"]

# Never printed even if a caller passes them by mistake.
_SECRET_KEYS = frozenset({"password", "passwd", "secret", "token"})


def fields(**values: Any) -> dict[str, Any]:
    """``log.info("rep", extra=fields(exercise=..., rep=...))``."""
    return {"fields": values}


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    return {k: ("***" if k.lower() in _SECRET_KEYS else v) for k, v in values.items()}


class JsonFormatter(logging.Formatter):
    """``{"t": ..., "level": ..., "logger": ..., "msg": ..., <fields>}``, one per line."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "t": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(_clean(getattr(record, "fields", None) or {}))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


class KeyValueFormatter(logging.Formatter):
    """``2025-03-01T09:15:02.250 info rep exercise=clam_shells rep=3`` for a person at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        head = f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')} {record.levelname.lower():7s} {record.getMessage()}"
        extra = _clean(getattr(record, "fields", None) or {})
        tail = " ".join(f"{k}={json.dumps(v, default=str) if isinstance(v, str) and ' ' in v else v}" for k, v in extra.items())
        text = f"{head} {tail}".rstrip()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(log_format: str = "json", level: str = "info", stream: TextIO | None = None) -> None:
    """Send every logger to ``stream`` (stderr: journald picks it up under systemd)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else KeyValueFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Bumble and bleak are chatty at INFO about every GATT step.
    for noisy in ("bumble", "bleak"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
