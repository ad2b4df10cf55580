"""Unique ids: ULID-style message and session ids, and pseudonymous patient ids.

A ULID is 48 bits of Unix milliseconds followed by 80 random bits, written as 26 characters
of Crockford base32. We use it instead of a uuid4 because ids then sort by creation time,
which keeps the dashboard's primary-key index append-mostly, and a log reader can see when
a message was made. Uniqueness rests on the 80 random bits, as with uuid4's 122.
"""

from __future__ import annotations

import os
import re
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID_PATTERN = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def _encode_base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_message_id(*, now_ms: int | None = None) -> str:
    """Return a new 26-character ULID; ``now_ms`` (Unix milliseconds) is for tests."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    value = (ms & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    return _encode_base32(value, 26)


def new_session_id() -> str:
    """Return a new session id (a ULID, so sessions sort by start time)."""
    return new_message_id()


def new_patient_id() -> str:
    """Return a fresh pseudonymous patient id such as ``p-7k2m9q4x3b``.

    It is random, so it says nothing about the person; the mapping from pseudonym to person
    lives only in the clinic's records. Ten base32 characters give 50 random bits; a retry
    guarantees the digit that validate_patient_id() asks for.
    """
    while True:
        code = _encode_base32(int.from_bytes(os.urandom(7), "big"), 10).lower()
        if any(c.isdigit() for c in code):
            return f"p-{code}"
