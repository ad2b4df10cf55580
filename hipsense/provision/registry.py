"""The local provisioning registry: which pseudonym belongs to which clinic reference.

This file is the only place a patient id meets the clinic's own label (e.g. its record
number), so it stays on the provisioning machine, owner-only (0600), and never goes to the
broker, the Pi or a topic. Revoked patients stay listed, so an id is never handed out twice:
the dashboard's history is keyed by it.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

from hipsense.provision.errors import ProvisionError
from hipsense.provision.files import write_private

FORMAT = 1
MAX_LABEL_CHARS = 200


@dataclasses.dataclass(frozen=True)
class Entry:
    patient_id: str
    label: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def check_label(label: str) -> str:
    label = label.strip()
    if not label:
        raise ProvisionError("the label (the clinic's own reference) must not be empty")
    if len(label) > MAX_LABEL_CHARS:
        raise ProvisionError(f"the label is longer than {MAX_LABEL_CHARS} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in label):
        raise ProvisionError("the label must not contain control characters")
    return label


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Registry:
    """Load, change in memory, :meth:`save`. The caller holds the provisioning lock."""

    def __init__(self, path: Path, entries: list[Entry]) -> None:
        self.path = path
        self.entries = entries

    @classmethod
    def load(cls, path: Path) -> Registry:
        path = Path(path)
        if not path.exists():
            return cls(path, [])
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc.get("format") != FORMAT:
                raise ProvisionError(f"{path}: unknown registry format {doc.get('format')!r}")
            entries = [Entry(**item) for item in doc["patients"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ProvisionError(f"{path}: not a hipsense provisioning registry ({exc})") from exc
        return cls(path, entries)

    def save(self) -> None:
        doc = {"format": FORMAT, "patients": [dataclasses.asdict(e) for e in self.entries]}
        write_private(self.path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")

    def get(self, patient_id: str) -> Entry | None:
        return next((e for e in self.entries if e.patient_id == patient_id), None)

    def active(self) -> list[Entry]:
        return [e for e in self.entries if e.active]

    def add(self, patient_id: str, label: str) -> Entry:
        if self.get(patient_id) is not None:
            raise ProvisionError(f"patient id {patient_id} was issued before; ids are never reused")
        if any(e.label == label for e in self.active()):
            raise ProvisionError("an active patient already has this label; revoke it first or use another label")
        entry = Entry(patient_id=patient_id, label=label, created_at=now_utc())
        self.entries.append(entry)
        return entry

    def revoke(self, patient_id: str) -> Entry:
        entry = self.get(patient_id)
        if entry is None:
            raise ProvisionError(f"no patient {patient_id} in the registry {self.path}")
        if not entry.active:
            return entry  # revoking twice is harmless: the files are checked again anyway
        revoked = dataclasses.replace(entry, revoked_at=now_utc())
        self.entries[self.entries.index(entry)] = revoked
        return revoked
