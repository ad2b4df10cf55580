"""Provisioning for the broker deployment: pseudonymous patients, their MQTT accounts and Pi bundles.

``hipsense provision add|revoke|list`` is the command line over :mod:`.patients`. The modules
each do one thing: :mod:`.passwords` (mosquitto ``$7$`` hashes), :mod:`.passwd_file` and
:mod:`.acl` (the broker's two files), :mod:`.registry` (pseudonym ↔ clinic label, local only),
:mod:`.bundle` (the Pi's TOML + CA), :mod:`.files` (atomic owner-only writes, the lock).
See deploy/server/README.md for the whole deployment.
"""

from hipsense.provision.errors import ProvisionError
from hipsense.provision.passwords import hash_password, new_password, verify_password
from hipsense.provision.patients import (
    RELOAD_HINT,
    Added,
    Broker,
    Layout,
    Listed,
    add_patient,
    list_patients,
    revoke_patient,
)

__all__ = [
    "RELOAD_HINT",
    "Added",
    "Broker",
    "Layout",
    "Listed",
    "ProvisionError",
    "add_patient",
    "hash_password",
    "list_patients",
    "new_password",
    "revoke_patient",
    "verify_password",
]
