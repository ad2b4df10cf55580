"""The session in progress, on disk, so that a restarted service continues it.

After SIGKILL or a power cut the service comes back with the same session id, the same set
and rep numbers and the same tallies, instead of starting a second session for the same
exercises. Written after every result (write-to-temp, fsync, rename): a crash leaves the old
or the new file, never half of one.

The window: a result is committed to the outbox first and to this file second, so a crash
between the two leaves that one result out of the resumed tallies (it is still delivered;
only the session summary may count one rep less).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from hipsense.durable_file import write_atomically

__all__ = ["SessionStateStore"]

log = logging.getLogger(__name__)
_FORMAT = 1


class SessionStateStore:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, Any] | None:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable session state %s: %s", self.path, exc)
            return None
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            log.warning("ignoring session state %s of an unknown format", self.path)
            return None
        return doc

    def save(self, doc: dict[str, Any]) -> None:
        data = json.dumps({"format": _FORMAT, **doc}, separators=(",", ":")).encode()
        write_atomically(self.path, data)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
