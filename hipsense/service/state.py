"""The session in progress, on disk, so that a restarted service continues it.

After SIGKILL or a power cut the service comes back with the same session id, the same set
and rep numbers and the same tallies, instead of starting a second session for the same
exercises.

Where it lives: in the outbox's database (its ``state`` table), and the engine hands the
document to the outbox together with each result, so that the result and the numbering it
used are committed in ONE transaction (:meth:`~hipsense.publish.outbox.Outbox.put_sequenced`).
A crash leaves both or neither. (Written in a second step, as it was before, a crash between
the two made the restarted service number its next rep - or set, or session summary - the
same as the one already stored, and the dashboard got the same set and rep twice, under two
message ids.)

Without an outbox (``SessionStateStore(path)``, benchmarks and old callers) the document is a
JSON file replaced atomically after each result: the old behaviour, with that window. A
service that finds such a file (``session.json``, from before this version) next to its
outbox moves it into the outbox once and deletes it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hipsense.durable_file import write_atomically
from hipsense.publish import Outbox
from hipsense.service.logs import fields

__all__ = ["SessionStateStore"]

log = logging.getLogger(__name__)
_FORMAT = 1
_NAME = "session"  # the document's name in the outbox's state table


class SessionStateStore:
    """The session document: in ``outbox`` (atomic with the results) or, without one, at ``path``.

    With an outbox, ``path`` is where a previous version kept it (moved in on opening).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, outbox: Outbox | None = None,
                 held: Callable[[str], tuple[bool, bytes | None]] | None = None) -> None:
        if path is None and outbox is None:
            raise ValueError("a session state needs a file or an outbox")
        self.path = Path(path) if path is not None else None
        self.outbox = outbox
        # ResultPublisher.held_state: results held for want of room (a previous run's, from its
        # spill file) carry newer state than the outbox has; a restart resumes after them.
        self.held = held
        if outbox is not None and self.path is not None and self.path.exists():
            self._adopt_file(outbox, self.path)

    @property
    def atomic(self) -> bool:
        """Whether :meth:`changes` can ride in a result's transaction."""
        return self.outbox is not None

    def load(self) -> dict[str, Any] | None:
        found, raw = self.held(_NAME) if self.held is not None else (False, None)
        if found:
            where = f"results held for the outbox (state {_NAME!r})"
        elif self.outbox is not None:
            raw = self.outbox.read_state(_NAME)
            where = f"{self.outbox.path} (state {_NAME!r})"
        else:
            assert self.path is not None
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                raw = None
            except OSError as exc:
                log.warning("ignoring unreadable session state %s: %s", self.path, exc)
                return None
            where = str(self.path)
        return None if raw is None else _decode(raw, where)

    def read(self, name: str) -> bytes | None:
        """Another state document committed with the results (the engine's ``counted``): the
        newest among results held for want of room, else the outbox's; None without an outbox."""
        found, raw = self.held(name) if self.held is not None else (False, None)
        if found:
            return raw
        return self.outbox.read_state(name) if self.outbox is not None else None

    def changes(self, doc: dict[str, Any] | None) -> Mapping[str, bytes | None]:
        """What :meth:`~hipsense.publish.outbox.Outbox.put_sequenced` writes with a result so
        that the session state is ``doc`` (None: no session in progress any more)."""
        return {_NAME: None if doc is None else _encode(doc)}

    def save(self, doc: dict[str, Any]) -> None:
        """Save on its own (outside any result: a new prescription, a failed store)."""
        if self.outbox is not None:
            self.outbox.write_state(self.changes(doc))
        else:
            assert self.path is not None
            write_atomically(self.path, _encode(doc))

    def clear(self) -> None:
        if self.outbox is not None:
            self.outbox.write_state(self.changes(None))
        else:
            assert self.path is not None
            self.path.unlink(missing_ok=True)

    @staticmethod
    def _adopt_file(outbox: Outbox, path: Path) -> None:
        """A session.json of an earlier version: into the outbox (unless it has one), then gone."""
        if outbox.read_state(_NAME) is None:
            try:
                raw = path.read_bytes()
            except OSError as exc:
                log.warning("ignoring unreadable session state %s: %s", path, exc)
                raw = None
            if raw is not None and _decode(raw, str(path)) is not None:
                outbox.write_state({_NAME: raw})
                log.info("session state moved into the outbox", extra=fields(path=str(path)))
        path.unlink(missing_ok=True)


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps({"format": _FORMAT, **doc}, separators=(",", ":")).encode()


def _decode(raw: bytes, where: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        log.warning("ignoring unreadable session state %s: %s", where, exc)
        return None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        log.warning("ignoring session state %s of an unknown format", where)
        return None
    return doc
