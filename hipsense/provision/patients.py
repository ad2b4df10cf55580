"""Add, revoke and list patients: the steps behind ``hipsense provision``.

Each step is ordered so that a crash half-way leaves *less* access, never more: adding writes
the password line before the ACL grants anything, and revoking takes the ACL rights away
before the password. Every run holds a lock, so two operators cannot lose each other's change.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

from hipsense.protocol import new_patient_id
from hipsense.provision import passwd_file
from hipsense.provision.acl import render_acl
from hipsense.provision.bundle import (
    DEFAULT_PI_CA_PATH,
    read_ca_certificate,
    remove_bundle,
    render_pi_config,
    write_bundle,
)
from hipsense.provision.errors import ProvisionError
from hipsense.provision.files import exclusive_lock, make_private_dir, write_private
from hipsense.provision.passwords import hash_password, new_password
from hipsense.provision.registry import Entry, Registry, check_label

log = logging.getLogger(__name__)

RELOAD_HINT = "reload the broker so it takes effect: sudo systemctl reload mosquitto (sends SIGHUP)"


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where things live. The broker reads ``broker_dir``; ``state_dir`` stays with the operator."""

    broker_dir: Path  # passwd and acl (read by mosquitto) and, by default, ca.crt
    state_dir: Path  # registry.json (labels) and bundles/ (passwords): never readable by the broker

    @property
    def passwd(self) -> Path:
        return self.broker_dir / "passwd"

    @property
    def acl(self) -> Path:
        return self.broker_dir / "acl"

    @property
    def ca_cert(self) -> Path:
        return self.broker_dir / "ca.crt"

    @property
    def registry(self) -> Path:
        return self.state_dir / "registry.json"

    @property
    def bundles(self) -> Path:
        return self.state_dir / "bundles"

    @property
    def lock(self) -> Path:
        return self.state_dir / ".provision.lock"


@dataclasses.dataclass(frozen=True)
class Broker:
    """What a Pi needs to reach the broker."""

    host: str
    port: int = 8883
    ca_cert: Path | None = None  # default: Layout.ca_cert
    ca_path_on_pi: str = DEFAULT_PI_CA_PATH


@dataclasses.dataclass(frozen=True)
class Added:
    patient_id: str
    bundle_dir: Path


@dataclasses.dataclass(frozen=True)
class Listed:
    entry: Entry
    has_password: bool


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def _write_acl(layout: Layout, registry: Registry, dashboard_users: Sequence[str]) -> None:
    write_private(layout.acl, render_acl(dashboard_users, [e.patient_id for e in registry.active()]))


def add_patient(layout: Layout, label: str, broker: Broker, *,
                dashboard_users: Sequence[str] = ("dashboard",)) -> Added:
    """Issue a pseudonym and credentials for one patient and write the Pi's bundle."""
    label = check_label(label)
    if not broker.host or any(c.isspace() for c in broker.host):
        raise ProvisionError(f"invalid broker host {broker.host!r}")
    ca_pem = read_ca_certificate(broker.ca_cert or layout.ca_cert)  # fail before changing anything
    make_private_dir(layout.bundles)  # and state_dir: labels and passwords live under it
    make_private_dir(layout.state_dir)
    with exclusive_lock(layout.lock):
        registry = Registry.load(layout.registry)
        taken = {e.patient_id for e in registry.entries} | set(passwd_file.users(_read(layout.passwd)))
        patient_id = new_patient_id()
        while patient_id in taken:  # 50 random bits: a repeat is rare, but it would merge two people
            patient_id = new_patient_id()
        registry.add(patient_id, label)  # in memory; checks the label is not active already
        password = new_password()
        config = render_pi_config(host=broker.host, port=broker.port, ca_path_on_pi=broker.ca_path_on_pi,
                                  username=patient_id, password=password, patient_id=patient_id,
                                  created_at=registry.get(patient_id).created_at)
        bundle_dir = write_bundle(layout.bundles / patient_id, config, ca_pem)
        write_private(layout.passwd, passwd_file.set_user(_read(layout.passwd), patient_id, hash_password(password)))
        registry.save()
        _write_acl(layout, registry, dashboard_users)  # rights come last
    log.info("provisioned patient %s; bundle in %s", patient_id, bundle_dir)
    return Added(patient_id=patient_id, bundle_dir=bundle_dir)


def revoke_patient(layout: Layout, patient_id: str, *, dashboard_users: Sequence[str] = ("dashboard",)) -> Entry:
    """Take a patient's broker access away (ACL, then password) and delete their bundle."""
    with exclusive_lock(layout.lock):
        registry = Registry.load(layout.registry)
        entry = registry.revoke(patient_id)
        registry.save()
        _write_acl(layout, registry, dashboard_users)  # rights go first
        text, _ = passwd_file.remove_user(_read(layout.passwd), patient_id)
        write_private(layout.passwd, text)
        remove_bundle(layout.bundles / patient_id)
    log.info("revoked patient %s", patient_id)
    return entry


def list_patients(layout: Layout) -> list[Listed]:
    registry = Registry.load(layout.registry)
    users = set(passwd_file.users(_read(layout.passwd)))
    return [Listed(entry=e, has_password=e.patient_id in users) for e in registry.entries]
