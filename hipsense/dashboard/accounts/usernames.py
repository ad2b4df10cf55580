"""The one spelling of a therapist's user name, used wherever a name is looked up or counted."""

from __future__ import annotations


def normalise_username(name: str) -> str:
    """``" Ana "`` and ``"ANA"`` are the account ``"ana"``: log-in, account creation and the
    login throttle must agree, or a variant spelling is a fresh name to guess against."""
    return name.strip().lower()
