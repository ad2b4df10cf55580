"""A TCP proxy in front of mosquitto that behaves like a broker without MQTT 5.

It answers an MQTT 5 CONNECT the way a 3.1.1-only broker does (CONNACK return code 1,
"unacceptable protocol version", then close) and forwards any other connection untouched.
"""

from __future__ import annotations

import socket
import threading


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _read_packet(sock: socket.socket) -> tuple[bytes, bytes]:
    header = _read_exactly(sock, 1)
    length = shift = 0
    while True:
        byte = _read_exactly(sock, 1)
        header += byte
        length |= (byte[0] & 0x7F) << shift
        shift += 7
        if not byte[0] & 0x80:
            break
    return header, _read_exactly(sock, length)


class Mqtt311OnlyProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.refused_mqtt5 = 0
        self.forwarded = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        for sock in [self._server, *self._sockets]:
            try:
                sock.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self._sockets.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            header, body = _read_packet(conn)
            name_length = int.from_bytes(body[:2], "big")
            level = body[2 + name_length]
            if level == 5:
                self.refused_mqtt5 += 1
                conn.sendall(b"\x20\x02\x00\x01")
                conn.close()
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._sockets.append(upstream)
            upstream.sendall(header + body)
            self.forwarded += 1
            threading.Thread(target=self._pipe, args=(upstream, conn), daemon=True).start()
            self._pipe(conn, upstream)
        except (OSError, ConnectionError, IndexError):
            conn.close()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
