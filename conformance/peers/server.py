"""A small HTTP server of the suite's, on 127.0.0.1, with a canary route.

Every request the target makes to the suite is recorded in the transcript.
The canary (``/canary/<nonce>``) is a URL the suite plants in places a
conformant agent must never dereference (a ``jku`` or ``x5u`` header, a URL
inside a message body): any request to it is evidence of SSRF exposure
(RFC 8725 §3.10; spec §8.2).
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Awaitable, Callable

from aiohttp import web

from conformance.context import Session
from conformance.model import HarnessError
from conformance.transcript import Direction, Transcript

__all__ = ["SuiteServer"]

Handler = Callable[[web.Request, bytes], Awaitable[web.Response]]


class SuiteServer:
    """One aiohttp application on an ephemeral 127.0.0.1 port."""

    def __init__(self, session: Session, name: str, *, prefix: str = "") -> None:
        self.session = session
        self.name = name
        #: Path under which every route is served (a party's base URL may have a path).
        self.prefix = prefix.rstrip("/")
        self.app = web.Application(client_max_size=8 * 1024 * 1024)
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self.canary_hits: dict[str, list[str]] = defaultdict(list)
        #: Transcript scope for requests to a given path (set by whoever
        #: planted the path: the check that created a persona, say).
        self.scope_for_path: Callable[[str, bytes], str | None] = lambda path, body: None
        self.app.router.add_route("*", self.prefix + "/canary/{nonce}", self._canary)

    @property
    def transcript(self) -> Transcript:
        """The run's transcript."""
        return self.session.transcript

    async def start(self) -> None:
        """Bind an ephemeral port on 127.0.0.1 and serve.

        Raises:
            HarnessError: the port could not be bound.
        """
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
        except OSError as error:
            await runner.cleanup()
            raise HarnessError(f"{self.name}: cannot listen on 127.0.0.1: {error}") from error
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}{self.prefix}"
        self.session.on_close(self.stop)

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Serve ``handler`` at ``path``; the request and response are recorded."""

        async def recorded(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            exchange = self.transcript.open(
                Direction.FROM_TARGET,
                request.method,
                str(request.url),
                headers=dict(request.headers),
                body=body,
                scope=self.scope_for_path(request.path, body) or self.session.active_scope,
            )
            response = await handler(request, body)
            Transcript.complete(
                exchange,
                response.status,
                headers=dict(response.headers),
                body=response.body if isinstance(response.body, bytes) else None,
            )
            return response

        self.app.router.add_route(method, self.prefix + path, recorded)

    def new_canary(self) -> tuple[str, str]:
        """A fresh canary URL and its nonce."""
        nonce = secrets.token_urlsafe(12)
        return f"{self.base_url}/canary/{nonce}", nonce

    async def _canary(self, request: web.Request) -> web.Response:
        self.canary_hits[request.match_info["nonce"]].append(
            f"{request.method} {request.path_qs} from {request.remote}"
        )
        exchange = self.transcript.open(
            Direction.FROM_TARGET,
            request.method,
            str(request.url),
            headers=dict(request.headers),
            note="canary: a URL the target was never meant to fetch",
            scope=self.session.active_scope,
        )
        Transcript.complete(exchange, 404)
        return web.Response(status=404)
