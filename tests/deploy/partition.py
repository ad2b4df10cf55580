"""A TCP proxy in front of the broker that can cut the network the way a home router does.

``cut()`` starts a partition: every byte either way is read and thrown away, and new
connections are taken and then ignored (no RST, no FIN): like packets dropped on the floor,
each side only finds out through its keep-alive. ``heal()`` ends it: the connections that lived
through it are closed (TCP would have timed them out or reset them; bytes were lost, so they
cannot go on) and new ones are forwarded again. TLS goes through untouched (bytes only).
"""

from __future__ import annotations

import socket
import threading


class PartitionProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._cut = False
        self._open: list[socket.socket] = []
        self._stopping = False
        self.connections = 0
        threading.Thread(target=self._accept, name="partition-proxy", daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            self._cut = True

    def heal(self) -> None:
        with self._lock:
            self._cut = False
            doomed, self._open = self._open, []
        for sock in doomed:
            _close(sock)

    def close(self) -> None:
        self._stopping = True
        _close(self._listener)
        self.heal()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                cut = self._cut
                self._open.append(client)
            self.connections += 1
            if cut:  # taken, never answered
                threading.Thread(target=self._swallow, args=(client,), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open.append(upstream)
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _swallow(self, sock: socket.socket) -> None:
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if self._cut:
                    continue  # dropped on the floor
                sink.sendall(data)
        except OSError:
            pass
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
