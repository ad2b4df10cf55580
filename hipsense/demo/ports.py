"""Free TCP ports on the loopback interface for the demo's broker and web pages.

The demo never takes 1883 or 8883: a Mosquitto (or another demo) may already be there, and a
Pi service on this machine would then publish into the wrong broker. The OS hands out an unused
ephemeral port; the tiny window between closing our probe socket and the real server binding
it is harmless on a desktop, and a lost race shows up as a clear "address in use" error.
"""

from __future__ import annotations

import socket

__all__ = ["free_port", "port_is_free"]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could bind ``host:port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As servers bind (asyncio, uvicorn): a port whose old connections linger in TIME_WAIT
        # is free for a new listener.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1", *, preferred: int | None = None) -> int:
    """``preferred`` if it is free, otherwise a port the OS picks."""
    if preferred is not None and port_is_free(preferred, host):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
