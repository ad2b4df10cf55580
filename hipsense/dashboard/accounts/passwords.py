"""Password hashing with Argon2id (argon2-cffi): slow, salted, memory-hard.

argon2-cffi's defaults follow RFC 9106's recommendations; ``needs_rehash`` lets a login
upgrade an old hash when the parameters are raised later.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


# Verified against when the user name is unknown, so a login takes as long either way and
# the response time does not reveal which user names exist.
DUMMY_HASH = _hasher.hash("not-a-real-password-0000")
