"""Writing files that hold secrets: atomically, owner-only, and without loosening what exists.

Why atomic: the broker re-reads the password file and the ACL on SIGHUP, possibly while we
write; it must see the old file or the new one, never half of one. Why keep an existing file's
owner and group: the operator gives the broker's group read access once (``root:mosquitto
0640``); the broker re-reads the files after dropping root, so a rewrite must not take that
away. World bits are always dropped.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

OWNER_ONLY = 0o600


def write_private(path: Path, data: str | bytes) -> None:
    """Replace ``path`` atomically: new files 0600; existing ones keep owner, group and mode (minus world bits)."""
    path = Path(path)
    blob = data.encode("utf-8") if isinstance(data, str) else data
    mode, owner = OWNER_ONLY, None
    with contextlib.suppress(FileNotFoundError):
        st = path.stat()
        mode, owner = stat.S_IMODE(st.st_mode) & 0o770, (st.st_uid, st.st_gid)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # born 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(blob)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), mode)
            if owner is not None and owner != (os.geteuid(), os.getegid()):
                with contextlib.suppress(PermissionError):  # only root may give a file away
                    os.fchown(handle.fileno(), *owner)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it 0700: a bundle directory holds a password."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


@contextlib.contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Serialise provisioning runs: two operators adding patients at once must not lose one."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, OWNER_ONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself must survive a power cut
    finally:
        os.close(fd)
