"""Mosquitto-compatible password hashes: the ``$7$`` (PBKDF2-HMAC-SHA512) lines of mosquitto_passwd.

A line of a Mosquitto password file reads ``user:$7$<iterations>$<salt>$<hash>`` where salt
(12 bytes) and hash (64 bytes) are standard base64. Writing the hash ourselves (hashlib) means
provisioning needs no mosquitto_passwd on the machine that provisions, and no password ever
goes through a command line, where ``ps`` and shell history would see it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

# mosquitto_passwd's own default. It is low for human passwords, but every patient password is
# 256 random bits (new_password), so stretching adds nothing against guessing, while each
# CONNECT costs the broker's single thread one PBKDF2: after a broker restart every Pi
# reconnects at once, and 101 iterations keep that burst cheap.
DEFAULT_ITERATIONS = 101
SALT_BYTES = 12  # as mosquitto_passwd
_PREFIX = "$7$"


def new_password() -> str:
    """A random password: 32 bytes as URL-safe base64 (no characters that need quoting)."""
    return secrets.token_urlsafe(32)


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = DEFAULT_ITERATIONS) -> str:
    """Return ``$7$<iterations>$<salt>$<hash>`` as mosquitto_passwd writes it."""
    if iterations < 1:
        raise ValueError("iterations must be positive")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"{_PREFIX}{iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """True if ``password`` matches a ``$7$`` hash (constant-time comparison)."""
    try:
        iterations, salt, digest = _split(encoded)
    except ValueError:
        return False
    candidate = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(candidate, digest)


def is_mosquitto_hash(encoded: str) -> bool:
    try:
        _split(encoded)
    except ValueError:
        return False
    return True


def _split(encoded: str) -> tuple[int, bytes, bytes]:
    if not encoded.startswith(_PREFIX):
        raise ValueError("not a $7$ hash")
    parts = encoded[len(_PREFIX):].split("$")
    if len(parts) != 3 or not parts[0].isdigit():
        raise ValueError("malformed $7$ hash")
    try:
        salt = base64.b64decode(parts[1], validate=True)
        digest = base64.b64decode(parts[2], validate=True)
    except binascii.Error as exc:
        raise ValueError("malformed base64 in $7$ hash") from exc
    if len(digest) != 64:
        raise ValueError("a $7$ hash holds 64 bytes")
    return int(parts[0]), salt, digest


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
