"""Her dashboard: a local web page where the individual sees her relationships and acts.

``vrm buyer serve`` serves it on a socket of its own, on a loopback address
only (never on the agent's public address: the dashboard shows everything her
store holds and can revoke her grants). Routes::

    GET  /open?key=SECRET         the address printed at start-up: sets the session cookie
    GET  /                        the page (server-rendered HTML, no script)
    GET  /dashboard.css           its style sheet
    GET  /consents.jsonld         her consents as ISO/IEC TS 27560 / W3C DPV records
    POST /grants/revoke           revoke one of her access grants (form: grant, csrf)

Who may use it: whoever holds the secret printed at start-up (a fresh random
token each run). ``/open`` compares it in constant time and answers with a
session cookie (``HttpOnly``, ``SameSite=Strict``, path ``/``) holding another
random token, and a redirect to ``/`` so that the secret leaves the address
bar. Every other request must carry that cookie (compared in constant time);
a POST also carries the CSRF token of the page that made it (a hidden form
field) and, when the browser says where it comes from, an ``Origin`` of the
dashboard itself (``SameSite`` does not tell ports of one host apart: a page
served by another program on 127.0.0.1 is "same-site", so the token and the
origin are what refuse its forms). The ``Host`` header must name the loopback address it
serves (a DNS-rebinding page cannot pass). Answers carry a content security
policy that allows no script at all, no framing and forms posted only to the
dashboard itself.

Errors: an HTML error page for a browser (its ``Accept`` names ``text/html``),
problem details (RFC 9457, D9) otherwise; never a traceback.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import secrets
import socket
from dataclasses import dataclass
from importlib import resources
from typing import Final

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from reference_buyer.agent import BuyerAgent
from reference_buyer.dashboard_view import build_view
from reference_buyer.dpv import consent_records
from vrm_agent.http import Handler, problem_details
from vrm_agent.server import Serving
from vrm_agent.server import serve as serve_app
from vrm_protocol.errors import ErrorCode, ProtocolError, RemoteProtocolError

__all__ = [
    "COOKIE",
    "DASHBOARD",
    "Dashboard",
    "DashboardError",
    "check_loopback",
    "create_dashboard_app",
    "listen_dashboard",
    "serve_dashboard",
]

log = logging.getLogger(__name__)

#: The session cookie's name.
COOKIE: Final = "vrm-dashboard"
#: Random bytes of the secret, the session and the CSRF token (256 bits each).
TOKEN_BYTES: Final = 32
#: A form is a grant id and a token: anything bigger is not one of ours.
MAX_FORM_BYTES: Final = 4096

_CSP: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

_ENVIRONMENT = Environment(
    loader=PackageLoader("reference_buyer", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=True),
    undefined=StrictUndefined,
)


class DashboardError(ValueError):
    """The dashboard cannot be served as asked (an address that is not loopback)."""


def check_loopback(host: str) -> None:
    """Refuse any host that is not a loopback address (or ``localhost``).

    Raises:
        DashboardError: ``host`` is not loopback (the dashboard is hers alone).
    """
    if host == "localhost":
        return
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise DashboardError(
            f"the dashboard serves only on a loopback address, not {host!r}"
        ) from None
    if not address.is_loopback:
        raise DashboardError(f"the dashboard serves only on a loopback address, not {host}")


def listen_dashboard(host: str, port: int) -> socket.socket:
    """A listening, non-blocking socket for the dashboard on loopback ``host:port``.

    Raises:
        DashboardError: ``host`` is not loopback, or it cannot be bound there.
    """
    check_loopback(host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((host if host != "localhost" else "127.0.0.1", port))
        # What was bound, not what was asked for, must be loopback.
        check_loopback(str(sock.getsockname()[0]))
    except (OSError, DashboardError) as error:
        sock.close()
        raise DashboardError(f"cannot serve the dashboard on {host}:{port}: {error}") from error
    sock.listen(16)
    sock.setblocking(False)
    return sock


@dataclass(frozen=True, slots=True)
class Dashboard:
    """One run's dashboard: the agent, where it is served, and its three secrets."""

    agent: BuyerAgent
    host: str
    port: int
    secret: str
    session: str
    csrf: str

    @classmethod
    def new(cls, agent: BuyerAgent, host: str, port: int) -> Dashboard:
        """A dashboard with fresh random secrets."""
        return cls(
            agent,
            host,
            port,
            secrets.token_urlsafe(TOKEN_BYTES),
            secrets.token_urlsafe(TOKEN_BYTES),
            secrets.token_urlsafe(TOKEN_BYTES),
        )

    @property
    def origin(self) -> str:
        """Its own origin (scheme, host, port)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def open_url(self) -> str:
        """The address she opens it with (printed at start-up)."""
        return f"{self.origin}/open?key={self.secret}"

    def hosts(self) -> frozenset[str]:
        """The ``Host`` headers it answers."""
        names = {self.host, "localhost", "127.0.0.1", "[::1]"}
        if ":" in self.host:
            names.add(f"[{self.host}]")
        return frozenset(f"{name}:{self.port}" for name in names)


DASHBOARD = web.AppKey("dashboard", Dashboard)


def _same(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a token (a missing one is not equal)."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def _refuse(code: ErrorCode, detail: str) -> RemoteProtocolError:
    return RemoteProtocolError(code, detail)


# -- middlewares -----------------------------------------------------------------------------------


def _wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Problem details for every error (D9), shown as an HTML page to a browser."""
    response = await problem_details(request, handler)
    if response.status < 400 or not _wants_html(request) or not isinstance(response, web.Response):
        return response
    try:
        problem = json.loads(response.body if isinstance(response.body, bytes) else b"{}")
    except ValueError:
        problem = {}
    page = _ENVIRONMENT.get_template("dashboard_error.html.j2").render(
        status=response.status,
        title=str(problem.get("title", response.reason)),
        detail=str(problem.get("detail", "")),
        code=str(problem.get("code", "")),
    )
    html = web.Response(text=page, status=response.status, content_type="text/html")
    for name in ("Allow", "Retry-After", "WWW-Authenticate"):
        if name in response.headers:
            html.headers[name] = response.headers[name]
    return html


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The host, the session cookie, and for a POST the origin and CSRF token."""
    dashboard = request.app[DASHBOARD]
    if request.host not in dashboard.hosts():
        raise _refuse(ErrorCode.INVALID_REQUEST, "the dashboard answers only at its own address")
    if request.path != "/open" and not _same(request.cookies.get(COOKIE), dashboard.session):
        raise _refuse(
            ErrorCode.AUTHENTICATION_REQUIRED,
            "open the dashboard with the address her agent printed when it started",
        )
    if request.method == "POST":
        origin = request.headers.get("Origin")
        if origin is not None and origin != dashboard.origin:
            raise _refuse(ErrorCode.INVALID_REQUEST, "a form posted from elsewhere")
        if request.content_length is None or request.content_length > MAX_FORM_BYTES:
            raise _refuse(ErrorCode.PAYLOAD_TOO_LARGE, "a form is a few hundred bytes")
        form = await request.post()
        token = form.get("csrf")
        if not _same(token if isinstance(token, str) else None, dashboard.csrf):
            raise _refuse(ErrorCode.INVALID_REQUEST, "the form's token is missing or stale")
    response = await handler(request)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    """Security headers on every answer, errors included."""
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"


# -- routes ----------------------------------------------------------------------------------------


async def open_dashboard(request: web.Request) -> web.StreamResponse:
    """``GET /open?key=SECRET``: the secret, compared in constant time, sets the cookie."""
    dashboard = request.app[DASHBOARD]
    if not _same(request.query.get("key"), dashboard.secret):
        raise _refuse(
            ErrorCode.AUTHENTICATION_REQUIRED,
            "not the address her agent printed when it started (it changes at every start)",
        )
    response = web.Response(status=303, headers={"Location": "/"})
    response.set_cookie(COOKIE, dashboard.session, httponly=True, samesite="Strict", path="/")
    response.headers["Cache-Control"] = "no-store"
    return response


async def page(request: web.Request) -> web.Response:
    """``GET /``: the dashboard."""
    dashboard = request.app[DASHBOARD]
    view = await build_view(dashboard.agent)
    notice = request.query.get("done")
    html = _ENVIRONMENT.get_template("dashboard.html.j2").render(
        view=view,
        csrf=dashboard.csrf,
        notice={
            "revoked": "Revoked: its reads are refused from now on, and the grantee was told.",
            "revoked-untold": "Revoked: its reads are refused from now on; the grantee could "
            "not be told now (revoke it again later to tell it).",
        }.get(notice or ""),
    )
    return web.Response(text=html, content_type="text/html")


async def stylesheet(request: web.Request) -> web.Response:
    """``GET /dashboard.css``."""
    css = resources.files("reference_buyer").joinpath("templates/dashboard.css").read_text("utf-8")
    return web.Response(text=css, content_type="text/css")


async def consents_export(request: web.Request) -> web.Response:
    """``GET /consents.jsonld``: her consents as DPV consent records (a download)."""
    document = await consent_records(request.app[DASHBOARD].agent.store)
    return web.json_response(
        document,
        content_type="application/ld+json",
        headers={"Content-Disposition": 'attachment; filename="consents.jsonld"'},
    )


async def revoke(request: web.Request) -> web.StreamResponse:
    """``POST /grants/revoke`` (form ``grant``, ``csrf``): her agent's own revocation
    path (spec §6.19): refused at her agent at once, then the grantee is told."""
    form = await request.post()
    grant = form.get("grant")
    if not isinstance(grant, str) or not grant:
        raise _refuse(ErrorCode.INVALID_REQUEST, "which grant?")
    agent = request.app[DASHBOARD].agent
    record = await agent.store.access_grant(grant_id=grant)
    if record is None or record.revoked_at is not None:
        raise RemoteProtocolError(ErrorCode.NOT_FOUND, "no grant in force by that id")
    done = "revoked"
    try:
        await agent.grants.revoke(grant)
    except ProtocolError as error:
        # The grant is revoked at her agent whatever happened to the message
        # (reference_buyer.grants.Grants.revoke); only telling the grantee failed.
        log.info("revocation of %s not delivered: %s", grant, error)
        done = "revoked-untold"
    raise web.HTTPSeeOther(f"/?done={done}")


def create_dashboard_app(dashboard: Dashboard) -> web.Application:
    """The dashboard's aiohttp application (see the module docstring)."""
    app = web.Application(client_max_size=MAX_FORM_BYTES, middlewares=[error_pages, guard])
    app[DASHBOARD] = dashboard
    app.on_response_prepare.append(_headers)
    app.router.add_get("/open", open_dashboard, allow_head=False)
    app.router.add_get("/", page, allow_head=False)
    app.router.add_get("/dashboard.css", stylesheet, allow_head=False)
    app.router.add_get("/consents.jsonld", consents_export, allow_head=False)
    app.router.add_post("/grants/revoke", revoke)
    return app


async def serve_dashboard(agent: BuyerAgent, sock: socket.socket) -> tuple[Dashboard, Serving]:
    """Serve her dashboard on ``sock`` (from :func:`listen_dashboard`).

    Raises:
        Exception: whatever starting the application raised.
    """
    host, port = sock.getsockname()[:2]
    dashboard = Dashboard.new(agent, str(host), int(port))
    serving = await serve_app(
        create_dashboard_app(dashboard),
        sock,
        header_timeout=agent.config.header_timeout,
        max_connections=32,
    )
    return dashboard, serving
