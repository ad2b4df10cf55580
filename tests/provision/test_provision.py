"""``hipsense provision``: pseudonyms, the broker's files, the Pi bundle, and what is kept secret."""

from __future__ import annotations

import logging
import os
import stat
import tomllib

import pytest
from click.testing import CliRunner

from hipsense.cli import main as cli
from hipsense.protocol import validate_patient_id
from hipsense.provision import (
    Broker,
    Layout,
    ProvisionError,
    add_patient,
    list_patients,
    revoke_patient,
)
from hipsense.provision.passwords import verify_password

LABEL = "Clinic ref 4711 / Müller"


@pytest.fixture
def layout(tmp_path, pki):
    broker_dir = tmp_path / "broker"
    broker_dir.mkdir()
    (broker_dir / "ca.crt").write_bytes(pki.ca_cert.read_bytes())
    return Layout(broker_dir=broker_dir, state_dir=tmp_path / "state")


def env_for(layout: Layout) -> dict[str, str]:
    return {"HIPSENSE_BROKER_DIR": str(layout.broker_dir), "HIPSENSE_PROVISION_DIR": str(layout.state_dir),
            "HIPSENSE_BROKER_HOST": "mqtt.clinic.example"}


def add(layout: Layout, label: str = LABEL) -> tuple[str, dict]:
    added = add_patient(layout, label, Broker(host="mqtt.clinic.example"))
    return added.patient_id, tomllib.loads((added.bundle_dir / "hipsense.toml").read_text())["mqtt"]


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_bundle_has_the_pi_services_keys_and_a_working_password(layout, pki):
    patient, mqtt = add(layout)
    validate_patient_id(patient)
    assert set(mqtt) == {"host", "port", "tls_ca_file", "username", "password", "patient_id"}
    assert mqtt["username"] == mqtt["patient_id"] == patient and mqtt["port"] == 8883
    assert mqtt["host"] == "mqtt.clinic.example" and mqtt["tls_ca_file"] == "/etc/hipsense/ca.crt"
    line = next(x for x in layout.passwd.read_text().splitlines() if x.startswith(f"{patient}:"))
    assert verify_password(mqtt["password"], line.split(":", 1)[1])
    assert (layout.bundles / patient / "ca.crt").read_bytes() == pki.ca_cert.read_bytes()


def test_the_label_stays_in_the_registry(layout):
    patient, _ = add(layout)
    assert LABEL in layout.registry.read_text(encoding="utf-8")
    for path in (layout.passwd, layout.acl, layout.bundles / patient / "hipsense.toml"):
        text = path.read_text(encoding="utf-8")
        assert "4711" not in text and "Müller" not in text, path
    assert patient in layout.acl.read_text() and "4711" not in patient


def test_files_holding_secrets_are_owner_only(layout):
    patient, _ = add(layout)
    for path in (layout.passwd, layout.acl, layout.registry, layout.bundles / patient / "hipsense.toml"):
        assert mode(path) == 0o600, f"{path}: {oct(mode(path))}"
    assert mode(layout.bundles / patient) == 0o700 and mode(layout.state_dir) == 0o700
    assert not [p for p in layout.broker_dir.iterdir() if p.name.endswith(".tmp")]  # no leftovers


def test_a_rewrite_keeps_the_brokers_group_read_but_never_world_read(layout):
    """The operator gives the broker's group read access once; provisioning must keep it."""
    add(layout)
    os.chmod(layout.passwd, 0o644)  # an operator's mistake
    os.chmod(layout.acl, 0o640)
    add(layout, "second patient")
    assert mode(layout.passwd) == 0o640 and mode(layout.acl) == 0o640


def test_accounts_it_does_not_manage_are_left_alone(layout):
    layout.passwd.write_text("dashboard:$7$101$AAAAAAAAAAAAAAAA$" + "A" * 86 + "==\nadmin:$7$101$x$y\n")
    patient, _ = add(layout)
    revoke_patient(layout, patient)
    assert layout.passwd.read_text().splitlines() == ["dashboard:$7$101$AAAAAAAAAAAAAAAA$" + "A" * 86 + "==",
                                                      "admin:$7$101$x$y"]


def test_revoke_removes_password_acl_and_bundle_and_keeps_the_id_reserved(layout):
    a, _ = add(layout, "patient A")
    b, _ = add(layout, "patient B")
    revoke_patient(layout, a)
    assert f"{a}:" not in layout.passwd.read_text() and a not in layout.acl.read_text()
    assert f"{b}:" in layout.passwd.read_text() and f"user {b}" in layout.acl.read_text()
    assert not (layout.bundles / a).exists()
    states = {row.entry.patient_id: (row.entry.active, row.has_password) for row in list_patients(layout)}
    assert states == {a: (False, False), b: (True, True)}
    revoke_patient(layout, a)  # twice is harmless
    with pytest.raises(ProvisionError, match="no patient"):
        revoke_patient(layout, "p-00000000zz")


def test_refusals_change_nothing(layout, pki):
    add(layout, "patient A")
    before = {p: p.read_bytes() for p in (layout.passwd, layout.acl, layout.registry)}
    with pytest.raises(ProvisionError, match="already has this label"):
        add(layout, "patient A")
    with pytest.raises(ProvisionError, match="private key"):
        add_patient(layout, "other", Broker(host="h", ca_cert=pki.ca_key))  # the CA key must never ship
    with pytest.raises(ProvisionError, match="empty"):
        add(layout, "   ")
    with pytest.raises(ProvisionError, match="control"):
        add(layout, "two\nlines")
    assert before == {p: p.read_bytes() for p in before}


def test_the_cli_never_shows_the_password_in_output_or_logs(layout, caplog):
    caplog.set_level(logging.DEBUG)
    result = CliRunner().invoke(cli, ["provision", "add", LABEL], env=env_for(layout))
    assert result.exit_code == 0, result.output
    patient = result.output.split("patient id: ")[1].split()[0]
    password = tomllib.loads((layout.bundles / patient / "hipsense.toml").read_text())["mqtt"]["password"]
    listing = CliRunner().invoke(cli, ["provision", "list"], env=env_for(layout))
    revoked = CliRunner().invoke(cli, ["provision", "revoke", patient], env=env_for(layout))
    assert listing.exit_code == 0 and revoked.exit_code == 0
    assert patient in listing.output and LABEL in listing.output
    assert "provisioned patient" in caplog.text  # the log says what happened...
    for text in (result.output, listing.output, revoked.output, caplog.text):
        assert password not in text  # ...but never the secret
        assert "$7$" not in text
    assert LABEL not in caplog.text  # the label is personal: not in logs either


def test_help_shows_no_secret_and_no_option_takes_a_password(layout, monkeypatch):
    """A password on the command line ends up in `ps` and shell history; none is accepted."""
    for key, value in env_for(layout).items():
        monkeypatch.setenv(key, value)
    _, mqtt = add(layout)
    for args in (["--help"], ["provision", "--help"], ["provision", "add", "--help"],
                 ["provision", "revoke", "--help"], ["provision", "list", "--help"]):
        output = CliRunner().invoke(cli, args).output
        assert mqtt["password"] not in output and "$7$" not in output
        assert "--password" not in output.replace("No option takes a password", "")
    from hipsense.cli import provision

    options = [p.name for c in provision.commands.values() for p in c.params]
    assert not [name for name in options if "password" in name or "secret" in name], options
