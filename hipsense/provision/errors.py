"""The one error provisioning raises on purpose (the CLI turns it into a clear message)."""

from __future__ import annotations

from hipsense.errors import HipsenseError


class ProvisionError(HipsenseError):
    """A provisioning step cannot be done as asked; nothing was changed."""
