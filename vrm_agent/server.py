"""Serving an agent on a socket, with the connection bounds of spec §11.6.

aiohttp carries the HTTP; this module sets what a stranger's slow or idle
connections may cost:

* **headers**: aiohttp's ``keepalive_timeout`` runs from the moment a
  connection is made and after every answer, and closes a connection whose
  next request's headers have not all arrived by then (aiohttp 3.14
  ``RequestHandler``: "there's no other protection against a dead connection
  that doesn't send a request at all"); ``header_timeout`` sets it;
* **body**: each route reads its body under ``body_timeout`` and answers
  ``408 request-timeout`` when it does not arrive in time
  (:func:`vrm_agent.http.read_body`); ``lingering_time`` bounds how
  long the rest of such a body is then drained before the connection closes;
* **malformed HTTP**: what aiohttp's parser refuses is answered with problem
  details and one log line (:class:`_ProblemRequestHandler`), not a traceback;
* **connections**: at most ``max_connections`` at once. Beyond that a new
  connection is answered ``503 temporarily-unavailable`` with ``Retry-After``
  and closed, before anything of it is read, so slow connections cannot
  starve the file descriptors the agent needs for its store and its replies.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from vrm_agent.http import code_for_status
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.http_binding import problem_response

__all__ = ["OVER_CAPACITY_RETRY_SECONDS", "Serving", "serve"]

log = logging.getLogger(__name__)

#: What a connection over the cap is told to wait before trying again.
OVER_CAPACITY_RETRY_SECONDS = 1
#: How long the refusal of a connection over the cap waits for its client to
#: read it and hang up before the agent closes the connection itself.
_REFUSAL_LINGER_SECONDS = 1.0
#: How long the unread rest of a body refused early (408, 413) is drained.
_LINGERING_SECONDS = 1.0


def _over_capacity_answer() -> bytes:
    rendered = problem_response(
        RemoteProtocolError(
            ErrorCode.TEMPORARILY_UNAVAILABLE, "the agent holds as many connections as it takes"
        ),
        retry_after_seconds=OVER_CAPACITY_RETRY_SECONDS,
    )
    head = [
        f"HTTP/1.1 {rendered.status} Service Unavailable",
        *(f"{name}: {value}" for name, value in rendered.headers.items()),
        f"Content-Length: {len(rendered.body)}",
        "Connection: close",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + rendered.body


class _OverCapacity(asyncio.Protocol):
    """A connection beyond the cap: answered 503 at once, nothing of it read."""

    def __init__(self, answer: bytes) -> None:
        self._answer = answer
        self._closer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self._answer)
        if transport.can_write_eof():
            # Half-close, so the client reads the answer before the connection
            # goes; closing at once with its request unread could reset it first.
            transport.write_eof()
        self._closer = asyncio.get_running_loop().call_later(
            _REFUSAL_LINGER_SECONDS, transport.close
        )

    def data_received(self, data: bytes) -> None:
        """Discard: nothing of a refused connection is read."""

    def connection_lost(self, exc: Exception | None) -> None:
        if self._closer is not None:
            self._closer.cancel()


class _ProblemRequestHandler(web.RequestHandler):
    """aiohttp's request handler, but what its HTTP parser refuses (a header line
    too long, a NUL in the path, a malformed Content-Length) is answered with
    problem details and logged in one line, like everything else the agent
    refuses (spec §11.5), instead of ``text/plain`` and a traceback."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The problem details for ``status``; closes the connection, as aiohttp does.

        Raises:
            ConnectionError: part of another answer was already sent.
        """
        detail = (message or (str(exc) if exc is not None else "") or f"HTTP {status}").strip()
        first_line = detail.splitlines()[0][:200] if detail else f"HTTP {status}"
        if status >= 500:
            # Not the client's doing: keep the traceback for whoever fixes it.
            log.error("error answering %s: %s", request.remote, first_line, exc_info=exc)
        else:
            log.info("refused a malformed request from %s: %s", request.remote, first_line)
        if request.writer.output_size > 0:
            raise ConnectionError("an answer is already under way; cannot send another")
        rendered = problem_response(RemoteProtocolError(code_for_status(status), first_line))
        response = web.Response(
            status=rendered.status, body=rendered.body, headers=rendered.headers
        )
        response.force_close()
        return response


def _guarded(
    server: web.Server, cap: int, options: Mapping[str, Any]
) -> Callable[[], asyncio.Protocol]:
    """The protocol factory: the request handler (with ``options``, as the runner
    was given them) while fewer than ``cap`` connections are open, the 503
    refusal beyond."""
    answer = _over_capacity_answer()
    loop = asyncio.get_running_loop()

    def factory() -> asyncio.Protocol:
        if len(server.connections) >= cap:
            return _OverCapacity(answer)
        return _ProblemRequestHandler(server, loop=loop, **options)

    return factory


@dataclass
class Serving:
    """The agent serving on a socket until :meth:`close`."""

    runner: web.AppRunner
    listener: asyncio.Server
    port: int

    async def close(self) -> None:
        """Stop accepting, finish what is in flight, stop the agent's tasks and store."""
        self.listener.close()
        await self.listener.wait_closed()
        await self.runner.cleanup()


async def serve(
    app: web.Application,
    sock: socket.socket,
    *,
    header_timeout: float,
    max_connections: int,
) -> Serving:
    """Serve ``app`` on ``sock`` (bound, listening, non-blocking): headers within
    ``header_timeout`` seconds, at most ``max_connections`` connections at once.

    Raises:
        Exception: whatever starting the application raised (its store, key or
            data directory); nothing is left running then.
    """
    options: dict[str, Any] = {
        "access_log": None,
        "keepalive_timeout": header_timeout,
        "lingering_time": _LINGERING_SECONDS,
    }
    runner = web.AppRunner(app, handle_signals=False, **options)
    await runner.setup()
    try:
        server = runner.server
        assert server is not None
        listener = await asyncio.get_running_loop().create_server(
            _guarded(server, max_connections, options), sock=sock
        )
    except BaseException:
        await runner.cleanup()
        raise
    return Serving(runner, listener, int(sock.getsockname()[1]))
