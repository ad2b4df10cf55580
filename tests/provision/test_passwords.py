"""Our ``$7$`` hashes are mosquitto_passwd's: checked against the real tool both ways.
(The broker accepting them is shown by every login in test_broker_*.)"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from hipsense.provision.passwords import (
    hash_password,
    is_mosquitto_hash,
    new_password,
    verify_password,
)

MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")
needs_tool = pytest.mark.skipif(MOSQUITTO_PASSWD is None, reason="mosquitto_passwd not installed (apt-get install mosquitto)")


def _tool_hash(tmp_path, user: str, password: str) -> str:
    path = tmp_path / "pw"
    # -b takes the password on argv: fine for a test password (and -U would split "a:b$c" wrongly).
    subprocess.run([MOSQUITTO_PASSWD, "-c", "-b", str(path), user, password], check=True, capture_output=True)
    line = path.read_text().strip()
    assert line.startswith(f"{user}:$7$")
    return line.split(":", 1)[1]


@needs_tool
@pytest.mark.parametrize("password", ["correct horse battery staple", new_password(), "ünïcødé ☃", "a:b$c"])
def test_we_verify_what_mosquitto_passwd_writes(tmp_path, password):
    encoded = _tool_hash(tmp_path, "someone", password)
    assert verify_password(password, encoded)
    assert not verify_password(password + "x", encoded)


@needs_tool
def test_we_write_exactly_what_mosquitto_passwd_writes_for_the_same_salt(tmp_path):
    import base64

    password = new_password()
    encoded = _tool_hash(tmp_path, "someone", password)
    _, _, iterations, salt, _ = encoded.split("$")
    assert hash_password(password, salt=base64.b64decode(salt), iterations=int(iterations)) == encoded


def test_hash_format_and_randomness():
    a, b = hash_password("same"), hash_password("same")
    assert a != b  # fresh salt each time
    assert a.startswith("$7$101$") and is_mosquitto_hash(a)
    assert verify_password("same", a) and not verify_password("Same", a)
    assert not verify_password("x", "plaintext") and not is_mosquitto_hash("$6$abc$def")


def test_new_passwords_are_long_and_unique():
    passwords = {new_password() for _ in range(200)}
    assert len(passwords) == 200
    assert all(len(p) >= 43 and p.isascii() for p in passwords)  # 32 random bytes, URL-safe base64
