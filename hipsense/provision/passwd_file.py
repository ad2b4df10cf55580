"""Editing a Mosquitto password file one user at a time, leaving every other line alone.

The file may also hold accounts hipsense does not manage (the dashboard, an admin made with
mosquitto_passwd), so we never regenerate it: we replace or drop exactly one ``user:`` line.
"""

from __future__ import annotations

from hipsense.provision.errors import ProvisionError
from hipsense.provision.passwords import is_mosquitto_hash


def _check_username(user: str) -> None:
    # ':' separates user and hash; a newline would smuggle in a second entry.
    if not user or any(c in user for c in ":\n\r\0"):
        raise ProvisionError(f"invalid MQTT user name {user!r}")


def users(text: str) -> list[str]:
    """User names in a password file, in file order."""
    return [line.split(":", 1)[0] for line in text.splitlines() if ":" in line and not line.startswith("#")]


def set_user(text: str, user: str, encoded_hash: str) -> str:
    """Return ``text`` with ``user``'s hash set (replaced in place, or appended)."""
    _check_username(user)
    if not is_mosquitto_hash(encoded_hash):
        raise ProvisionError("refusing to write a password that is not a $7$ hash")  # never plaintext
    entry = f"{user}:{encoded_hash}"
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.split(":", 1)[0] == user:
            lines[i] = entry
            break
    else:
        lines.append(entry)
    return "\n".join(lines) + "\n"


def remove_user(text: str, user: str) -> tuple[str, bool]:
    """Return ``text`` without ``user``'s line, and whether there was one."""
    _check_username(user)
    lines = text.splitlines()
    kept = [line for line in lines if line.split(":", 1)[0] != user]
    return ("\n".join(kept) + "\n") if kept else "", len(kept) != len(lines)
