"""The terminal side of ``hipsense calibrate``: prompts, progress bars, problems, in click.

No dependency beyond click: its progress bar is enough for a handful of short steps, and a
Raspberry Pi Zero pays for every import. Prompts run in a worker thread so the event loop (and
with it the Bluetooth link) keeps going while a person reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import click

__all__ = ["ClickUi"]


class _Bar:
    def __init__(self, bar: object) -> None:
        self._bar = bar
        self._done = 0

    def update(self, fraction: float) -> None:
        target = round(100 * max(0.0, min(1.0, fraction)))
        if target > self._done:
            self._bar.update(target - self._done)  # type: ignore[attr-defined]
            self._done = target


class ClickUi:
    """Prompts and progress on the terminal (or wherever click writes)."""

    def heading(self, text: str) -> None:
        click.secho(f"\n{text}", bold=True)

    def say(self, text: str) -> None:
        click.echo(text)

    def problem(self, text: str) -> None:
        click.secho(f"! {text}", fg="yellow")

    async def ready(self, prompt: str) -> None:
        click.echo(prompt)
        await asyncio.to_thread(click.prompt, "Press Enter when ready", default="",
                                show_default=False, prompt_suffix=" ")

    async def choose(self, prompt: str, count: int) -> int:
        return int(await asyncio.to_thread(click.prompt, prompt, type=click.IntRange(1, count),
                                           default=1))

    @contextmanager
    def progress(self, label: str) -> Iterator[_Bar]:
        with click.progressbar(length=100, label=f"  {label:24s}", show_eta=False) as bar:
            yield _Bar(bar)
