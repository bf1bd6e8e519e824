"""A loopback balancer: one address in front of several agent processes.

Each connection it accepts goes to the next backend in turn (round robin; a
backend that refuses the connection, e.g. one being restarted, is passed over
for the next). So that consecutive requests of one client land on different
processes although HTTP clients keep connections alive, a connection carries
one request: the balancer sets ``Connection: close`` in the request's head
(the only bytes it rewrites), the backend answers and closes, and the client
opens a new connection, to the next backend, for its next request. Everything
else is copied both ways as it comes, so the backends see every client's timing
(slow headers, slow bodies, early closes) as if the client were theirs; the
upstream connection is made *from the client's own loopback address*, so
per-address budgets count the clients, not the balancer. Loopback only
(127.0.0.0/8), for tests; it runs on a thread of its own with its own event
loop, so a test's synchronous code (the suite run in process) can use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Balancer"]

#: Bytes read at once from either side.
CHUNK = 65536


@dataclass
class Balancer:
    """Round-robin TCP balancer on 127.0.0.1 (see the module docstring).

    Start it with :meth:`bind` (the port is known before the backends start, so
    they can name it as their public URL), then :meth:`start` with the backends'
    ports; :meth:`close` stops it.
    """

    backends: list[int] = field(default_factory=list)
    #: Connections handed to each backend port (for the test to show both served).
    served: dict[int, int] = field(default_factory=dict)
    _sock: socket.socket | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: asyncio.Server | None = None
    _next: itertools.count[int] = field(default_factory=itertools.count)

    def bind(self) -> int:
        """Listen on a free port of 127.0.0.1; the port."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(256)
        sock.setblocking(False)
        self._sock = sock
        return int(sock.getsockname()[1])

    @property
    def url(self) -> str:
        assert self._sock is not None
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def start(self, backends: Sequence[int]) -> None:
        """Serve, handing connections to ``backends`` (ports on 127.0.0.1) in turn."""
        assert self._sock is not None, "bind() first"
        self.backends = list(backends)
        self.served = dict.fromkeys(self.backends, 0)
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)

            async def serve() -> None:
                self._server = await asyncio.start_server(self._handle, sock=self._sock)
                ready.set()
                await self._server.serve_forever()

            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(serve())
            loop.close()

        self._thread = threading.Thread(target=run, name="balancer", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the balancer did not start")

    def close(self) -> None:
        """Stop accepting and end every connection."""
        loop, server = self._loop, self._server
        if loop is not None and server is not None:

            def stop() -> None:
                server.close()
                for task in asyncio.all_tasks(loop):
                    task.cancel()

            loop.call_soon_threadsafe(stop)
        if self._thread is not None:
            self._thread.join(timeout=10)

    async def _connect(
        self, source: str
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """A connection to the next backend that takes one, from ``source``."""
        for _ in range(len(self.backends)):
            port = self.backends[next(self._next) % len(self.backends)]
            try:
                opened = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)), 5
                )
            except (OSError, TimeoutError):
                continue
            self.served[port] += 1
            return opened
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        source = peer[0] if peer and str(peer[0]).startswith("127.") else "127.0.0.1"
        upstream = await self._connect(source)
        if upstream is None:
            writer.close()
            return
        backend_reader, backend_writer = upstream

        async def pipe(
            src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, first_head: bool = False
        ) -> None:
            try:
                if first_head:
                    head = await _request_head(src)
                    dst.write(_closing(head))
                    await dst.drain()
                while chunk := await src.read(CHUNK):
                    dst.write(chunk)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(OSError, RuntimeError):
                    if dst.can_write_eof():
                        dst.write_eof()

        try:
            await asyncio.gather(
                pipe(reader, backend_writer, first_head=True), pipe(backend_reader, writer)
            )
        finally:
            for end in (writer, backend_writer):
                with contextlib.suppress(OSError, RuntimeError):
                    end.close()


#: The most bytes of a request head the balancer looks into.
MAX_HEAD = 65536


async def _request_head(reader: asyncio.StreamReader) -> bytes:
    """The bytes up to the end of the first request's head (all there is, if the
    client stops or sends no head within :data:`MAX_HEAD` bytes)."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < MAX_HEAD:
        chunk = await reader.read(CHUNK)
        if not chunk:
            break
        data += chunk
    return data


def _closing(data: bytes) -> bytes:
    """``data`` with the request head saying ``Connection: close`` (any other
    Connection header dropped); unchanged if it holds no complete head."""
    head, separator, rest = data.partition(b"\r\n\r\n")
    if not separator:
        return data
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close"]) + separator + rest
