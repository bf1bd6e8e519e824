"""Her dashboard without a browser: who may open it, what a POST must carry, where
it may be served, and that its errors are problem details or an HTML page.

Her real agent serves on 127.0.0.1 (the ``buyers`` fixture) and its dashboard
on a loopback socket of its own, as ``vrm buyer serve`` does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner

from reference_buyer.cli import buyer as buyer_cli
from reference_buyer.dashboard import (
    COOKIE,
    Dashboard,
    DashboardError,
    check_loopback,
    listen_dashboard,
    serve_dashboard,
)
from reference_buyer.scenario import sally_rfp_body
from vrm_agent.server import Serving
from vrm_protocol.vocabulary import MessageType

from .conftest import BuyerFactory, RunningBuyer, VendorFactory


@dataclass
class Board:
    buyer: RunningBuyer
    dashboard: Dashboard
    serving: Serving

    @property
    def origin(self) -> str:
        return self.dashboard.origin


@pytest.fixture
async def board(buyers: BuyerFactory) -> AsyncIterator[Board]:
    buyer = await buyers("sally")
    dashboard, serving = await serve_dashboard(buyer.agent, listen_dashboard("127.0.0.1", 0))
    yield Board(buyer, dashboard, serving)
    await serving.close()


def _session(**cookies: str) -> aiohttp.ClientSession:
    # unsafe=True: the jar keeps cookies of an IP address (the dashboard's 127.0.0.1).
    return aiohttp.ClientSession(
        cookies=cookies or None,
        cookie_jar=aiohttp.CookieJar(unsafe=True),
        timeout=aiohttp.ClientTimeout(total=15),
    )


async def _granted(board: Board, start_vendor: VendorFactory) -> str:
    vendor = await start_vendor("Road Warrior")
    agent = board.buyer.agent
    await agent.buying.send_rfp([vendor.id], sally_rfp_body(agent.clock.now()))
    _, record = await agent.grants.grant(
        vendor.id,
        items=("travel.dates",),
        purposes=("programme-membership",),
        until=agent.clock.now() + timedelta(days=1),
    )
    return record.grant_id


async def test_no_secret_and_a_wrong_secret_open_nothing(board: Board) -> None:
    async with _session() as session:
        for path in ("/", "/dashboard.css"):
            async with session.get(board.origin + path) as response:
                assert response.status == 401
                assert response.content_type == "application/problem+json"
                assert (await response.json())["code"] == "authentication-required"
        wrong = board.dashboard.secret[:-1] + ("A" if board.dashboard.secret[-1] != "A" else "B")
        for url in (f"{board.origin}/open?key={wrong}", f"{board.origin}/open"):
            async with session.get(url, allow_redirects=False) as response:
                assert response.status == 401
                assert "Set-Cookie" not in response.headers
        # The secret is not the session: a cookie holding the secret opens nothing.
        session.cookie_jar.update_cookies({COOKIE: board.dashboard.secret})
        async with session.get(board.origin + "/") as response:
            assert response.status == 401


async def test_the_secret_sets_a_strict_http_only_cookie_and_leaves_the_address(
    board: Board,
) -> None:
    async with _session() as session:
        async with session.get(board.dashboard.open_url, allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/"
            cookie = response.headers["Set-Cookie"]
            assert cookie.startswith(f"{COOKIE}={board.dashboard.session};")
            assert "HttpOnly" in cookie
            assert "SameSite=Strict" in cookie
        async with session.get(board.origin + "/", headers={"Accept": "text/html"}) as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            assert "script-src" not in response.headers["Content-Security-Policy"]
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
            assert response.headers["X-Frame-Options"] == "DENY"
            page = await response.text()
            assert "<script" not in page
            assert board.dashboard.secret not in page


async def test_a_post_without_its_csrf_token_or_from_elsewhere_is_refused(
    board: Board, start_vendor: VendorFactory
) -> None:
    grant = await _granted(board, start_vendor)
    store = board.buyer.store
    url = board.origin + "/grants/revoke"
    async with _session(**{COOKIE: board.dashboard.session}) as session:
        refusals = [
            ({"grant": grant}, {}),
            ({"grant": grant, "csrf": "not-the-token"}, {}),
            ({"grant": grant, "csrf": board.dashboard.csrf}, {"Origin": "http://evil.example"}),
            ({"grant": grant, "csrf": board.dashboard.csrf}, {"Origin": "null"}),
        ]
        for form, headers in refusals:
            async with session.post(
                url, data=form, headers=headers, allow_redirects=False
            ) as response:
                assert response.status == 400, (form, headers)
                assert (await response.json())["code"] == "invalid-request"
            record = await store.access_grant(grant_id=grant)
            assert record is not None
            assert record.revoked_at is None
        # Without the session cookie, the token alone does nothing either.
        async with (
            _session() as stranger,
            stranger.post(
                url, data={"grant": grant, "csrf": board.dashboard.csrf}, allow_redirects=False
            ) as response,
        ):
            assert response.status == 401
        async with session.post(
            url,
            data={"grant": grant, "csrf": board.dashboard.csrf},
            headers={"Origin": board.origin},
            allow_redirects=False,
        ) as response:
            assert response.status == 303, await response.text()
            assert response.headers["Location"] == "/?done=revoked"
    record = await store.access_grant(grant_id=grant)
    assert record is not None
    assert record.revoked_at is not None
    assert record.revocation_id is not None  # the grantee took the revocation


async def test_the_consent_export_is_a_json_ld_download(board: Board) -> None:
    async with _session() as session:
        async with session.get(board.origin + "/consents.jsonld") as response:
            assert response.status == 401
        session.cookie_jar.update_cookies({COOKIE: board.dashboard.session})
        async with session.get(board.origin + "/consents.jsonld") as response:
            assert response.status == 200
            assert response.content_type == "application/ld+json"
            assert "attachment" in response.headers["Content-Disposition"]
            document = await response.json(content_type="application/ld+json")
    assert document == {"@context": document["@context"], "@graph": []}
    assert document["@context"]["dpv"] == "https://w3id.org/dpv#"


async def test_the_page_shows_what_she_shared_refused_and_changed(
    board: Board, start_vendor: VendorFactory
) -> None:
    from .test_guard import _welcomed  # a deal, and her terms response: contact.email

    vendor = await start_vendor("Careful Motors")
    rfi = await _welcomed(board.buyer, vendor)
    tyres = {
        "kind": "software-update",
        "category": "technical",
        "summary": "Your tyres are due",
        "proposals": [{"code": "tyre-replacement", "description": "Four new tyres"}],
    }
    notice, token = vendor.reply(rfi, MessageType.SERVICE_NOTICE, tyres)
    status, answer, _ = await board.buyer.post(token)
    assert status == 202, answer
    await board.buyer.agent.owning.answer_service_notice(notice["id"])
    await board.buyer.agent.consents.change(
        vendor.id, [{"item": "contact.email", "action": "withdraw"}]
    )
    async with (
        _session(**{COOKIE: board.dashboard.session}) as session,
        session.get(board.origin + "/") as response,
    ):
        assert response.status == 200
        page = await response.text()
    sections = {
        name: page.split(f'<section id="{name}">', 1)[1].split("</section>", 1)[0]
        for name in ("relationships", "shared", "consents", "notices")
    }
    assert vendor.id in sections["relationships"]
    assert "contact.email" in sections["shared"]
    assert "P2Y" in sections["shared"]  # how long the vendor said it keeps it
    assert "withdraw contact.email" in sections["consents"]
    assert "receipt awaited" in sections["consents"]
    assert "Your tyres are due" in sections["notices"]
    assert "declined: manufacturer advice" in sections["notices"]


async def test_another_host_name_is_refused_even_with_the_cookie(board: Board) -> None:
    # A page on a name rebound to 127.0.0.1 (DNS rebinding) gets nothing.
    async with (
        _session(**{COOKIE: board.dashboard.session}) as session,
        session.get(
            board.origin + "/", headers={"Host": f"rebound.example:{board.dashboard.port}"}
        ) as response,
    ):
        assert response.status == 400


async def test_errors_are_problem_details_or_an_html_page_never_a_traceback(
    board: Board,
) -> None:
    async with _session(**{COOKIE: board.dashboard.session}) as session:
        async with session.get(board.origin + "/nowhere") as response:
            assert response.status == 404
            assert (await response.json(content_type="application/problem+json"))[
                "code"
            ] == "not-found"
        async with session.get(
            board.origin + "/nowhere", headers={"Accept": "text/html"}
        ) as response:
            assert (response.status, response.content_type) == (404, "text/html")
            assert "Traceback" not in await response.text()
        async with session.post(
            board.origin + "/grants/revoke",
            data={"grant": "urn:uuid:none", "csrf": board.dashboard.csrf},
            headers={"Accept": "text/html"},
            allow_redirects=False,
        ) as response:
            assert (response.status, response.content_type) == (404, "text/html")
        async with session.delete(board.origin + "/") as response:
            assert response.status == 405
            assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.com", "10.0.0.1"])
def test_it_is_never_bound_to_an_address_that_is_not_loopback(host: str) -> None:
    with pytest.raises(DashboardError):
        check_loopback(host)
    with pytest.raises(DashboardError):
        listen_dashboard(host, 0).close()


def test_serve_refuses_a_dashboard_host_that_is_not_loopback(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        buyer_cli,
        ["serve", "--data-dir", str(tmp_path / "d"), "--dashboard-host", "0.0.0.0"],
    )
    assert result.exit_code == 2, result.output
    assert "loopback" in result.output
    assert not (tmp_path / "d").exists()  # refused before anything was created
