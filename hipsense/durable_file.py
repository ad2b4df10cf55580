"""Replace a small file so that a crash or a power cut leaves the old or the new content,
never half of one: write a temporary file beside it, fsync it, rename it over, fsync the
directory. The temporary file is born 0600 (mkstemp, O_EXCL), so nobody can slip a link in.

A leaf module (stdlib only): the outbox's prescription cache, the service's session state and
the calibration store all need exactly this.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes, *, mode: int = 0o600, dir_mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` durably; the file ends with permissions ``mode``."""
    path = Path(path)
    if dir_mode is None:
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        path.parent.mkdir(mode=dir_mode, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
            os.fchmod(file.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)
