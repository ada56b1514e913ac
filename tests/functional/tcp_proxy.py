"""A TCP proxy in front of a test server that can slow the client's bytes down and cut a connection after a given
number of them, as a flaky network or a restarting load balancer does. It counts what went through."""

from __future__ import annotations

import socket
import threading
import time

from tests.functional.server import free_port


class TcpProxy:
    def __init__(self, target_port: int, rate: float | None = None, port: int | None = None) -> None:
        """rate: bytes per second from client to server (None: as fast as they come); port: where to listen (a
        proxy stopped earlier comes back on its port), a free one by default."""
        self.target = ("127.0.0.1", target_port)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.rate = rate
        self.bytes_up = 0  # client -> server, over every connection
        self.cuts = 0
        self._cut_at: int | None = None
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._open: set[socket.socket] = set()
        self._closed = False

    def __enter__(self) -> TcpProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed = True
        _close(self._listener)  # the shutdown wakes the thread waiting in accept(), which close() alone does not
        with self._lock:
            for sock in list(self._open):
                _close(sock)

    def cut_after(self, count: int) -> None:
        """Drop the connection that carries the count-th client byte from now on (once)."""
        with self._lock:
            self._cut_at = self.bytes_up + count

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open.update((client, server))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        try:
            while data := source.recv(65536):
                if upstream and self._count(len(data)):
                    break
                sink.sendall(data)
                if upstream and self.rate:
                    time.sleep(len(data) / self.rate)
        except OSError:
            pass
        with self._lock:
            self._open.difference_update((source, sink))
        _close(source)
        _close(sink)

    def _count(self, size: int) -> bool:
        """Count client bytes; True when this connection must be cut now."""
        with self._lock:
            self.bytes_up += size
            if self._cut_at is not None and self.bytes_up >= self._cut_at:
                self._cut_at = None
                self.cuts += 1
                return True
            return False


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
