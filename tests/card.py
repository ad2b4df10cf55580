"""A small, real file system that fills up: the one way the tests make a full SD card with ENOSPC.

:func:`small_card` mounts a tmpfs of a few MB (so it needs root and ``mount``: the test is
skipped, with the reason, where it cannot) and :func:`fill` writes a file until the file system
says ENOSPC. Unlike SQLite's ``max_page_count`` (tests/service/test_disk_full.py, the
outbox's own file made full), everything on the card then runs out of room: the outbox, its
WAL and -shm, the card reserve; and a file removed gives its room back, as on the card.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_card(mountpoint: Path, size: str = "3m") -> Iterator[Path]:
    """A ``size`` tmpfs mounted at ``mountpoint`` (made if missing) for the time of the block."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs (the full card) needs root and mount")
    mountpoint.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mountpoint)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (the full card): {done.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill(directory: Path, name: str = "filler") -> Path:
    """Write a file in ``directory`` until the file system says ENOSPC (4 KiB, then byte by byte)."""
    filler = directory / name
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def is_full(directory: Path) -> bool:
    """Whether not one more byte fits (a probe file is written and removed)."""
    probe = directory / ".probe"
    try:
        with open(probe, "wb") as f:
            f.write(b"\0")
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        return True
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return False
