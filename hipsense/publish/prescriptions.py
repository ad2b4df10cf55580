"""The prescription the Pi follows: accepted from the broker, cached on disk.

The Pi must work offline from its last good prescription, so a bad message never replaces a
good one: a payload that is malformed, oversized, for another patient, or older than what we
have is rejected with a logged reason and the cached prescription stays in force.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from hipsense.durable_file import write_atomically
from hipsense.protocol import (
    MessageKind,
    Prescription,
    ProtocolError,
    build_topic,
    parse_message,
    prescription_from_message,
)

log = logging.getLogger(__name__)


class PrescriptionStore:
    """The current prescription of ``patient``, cached at ``path`` (raw payload bytes).

    The cache holds the payload exactly as received, so it is re-validated by the same
    :func:`parse_message` on load; a cache damaged on disk is ignored, not trusted.
    """

    def __init__(self, path: str | os.PathLike[str], *, patient: str) -> None:
        self.path = Path(path)
        self.topic = build_topic(MessageKind.PRESCRIPTION, patient)
        self._payload: bytes | None = None
        self.current: Prescription | None = None
        self.last_rejection: str | None = None
        self._load()

    def offer(self, topic: str, payload: bytes) -> Prescription | None:
        """Consider a received prescription; return it if it replaced the current one.

        Returns None, and keeps the current prescription, when the payload is invalid, older,
        a same-version re-delivery (retained messages arrive on every reconnect), or for
        another topic.
        """
        try:
            if topic != self.topic:
                raise ProtocolError(f"not this patient's prescription topic ({self.topic})", topic=topic)
            prescription = prescription_from_message(parse_message(topic, payload))
        except ProtocolError as exc:
            return self._reject(f"malformed: {exc}")
        if self.current is not None:
            if payload == self._payload:
                return None
            if prescription.version <= self.current.version:
                return self._reject(
                    f"version {prescription.version} is not newer than the cached version {self.current.version}"
                )
        try:
            self._write_cache(payload)
        except OSError as exc:  # follow it anyway; it is only lost if we also restart offline
            log.error("prescription version %d not cached to %s: %s", prescription.version, self.path, exc)
        self._payload, self.current, self.last_rejection = payload, prescription, None
        log.info("prescription version %d accepted (%d exercises)", prescription.version, len(prescription.exercises))
        return prescription

    def _reject(self, reason: str) -> None:
        kept = "no cached prescription" if self.current is None else f"keeping cached version {self.current.version}"
        log.warning("prescription rejected, %s: %s", kept, reason)
        self.last_rejection = reason  # after logging: watchers may poll this and read the log
        return None

    def _load(self) -> None:
        try:
            payload = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cannot read cached prescription %s: %s", self.path, exc)
            return
        try:
            self.current = prescription_from_message(parse_message(self.topic, payload))
            self._payload = payload
        except ProtocolError as exc:
            log.warning("ignoring damaged cached prescription %s: %s", self.path, exc)

    def _write_cache(self, payload: bytes) -> None:
        # a power cut leaves either the old or the new file, never half of one
        write_atomically(self.path, payload)
