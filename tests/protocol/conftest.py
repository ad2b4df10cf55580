from __future__ import annotations

# The broker fixture is tests/conftest.py's; its default account is this Pi's.
PI_PATIENT, PI_PASSWORD = "p-0001", "pi-secret"
