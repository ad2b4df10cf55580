"""Fixtures for the BLE link tests: a virtual radio with an emulated WitMotion on it.

Everything runs in-process on Bumble's virtual link; tests drive bleak's public API with the
Bumble backend, exactly as the service drives it on the Pi with BlueZ.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

pytest.importorskip("bleak")
pytest.importorskip("bumble")

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], *, timeout_s: float = 30.0) -> T:
    """Run one test coroutine on a fresh event loop, failing (not hanging) after ``timeout_s``."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout_s):
            return await coro

    return asyncio.run(bounded())


async def wait_until(predicate: Callable[[], bool], *, timeout_s: float = 5.0, step_s: float = 0.005) -> None:
    """Poll ``predicate`` on the loop until it holds; TimeoutError otherwise."""
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(step_s)

