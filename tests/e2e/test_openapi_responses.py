"""The running agents answer as the published OpenAPI 3.1 description says (spec §11).

Real vendor and buyer processes on 127.0.0.1; each response's status must be
declared for its operation, its media type declared for that status, and its
body must validate against the declared schema (OpenAPI 3.1 schemas are JSON
Schema 2020-12, so the reference validator judges them directly).
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from tests.e2e.conftest import Agents, Buyer, post_token
from tools.openapi import build_openapi
from vrm_protocol.http_binding import (
    DISCOVERY_PATH,
    INBOX_PATH,
    JWKS_PATH,
    MAILBOX_PATH,
    POLL_AUTH_SCHEME,
    TERMS_PATH_PREFIX,
    TEST_DRIVER_PREFIX,
)
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE

DOCUMENT = build_openapi()


def _declared_schema(path: str, method: str, status: int, media_type: str) -> dict[str, Any]:
    operation = DOCUMENT["paths"][path][method]
    responses = operation["responses"]
    assert str(status) in responses, f"{method.upper()} {path} answered {status}, not declared"
    content = responses[str(status)].get("content", {})
    assert media_type in content, f"{method.upper()} {path} {status}: {media_type} not declared"
    return dict(content[media_type]["schema"])


def _validate(schema: dict[str, Any], instance: Any) -> None:
    # Resolve "#/components/..." against the whole document.
    wrapper = {**schema, "components": DOCUMENT["components"]}
    errors = sorted(
        Draft202012Validator(wrapper, format_checker=FormatChecker()).iter_errors(instance),
        key=lambda error: list(error.absolute_path),
    )
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


async def _check(response: aiohttp.ClientResponse, path: str, method: str) -> bytes:
    body = await response.read()
    schema = _declared_schema(path, method, response.status, response.content_type)
    if response.content_type == MESSAGE_MEDIA_TYPE:
        _validate(schema, body.decode("ascii"))
    else:
        _validate(schema, json.loads(body))
    return body


@pytest.fixture(params=["vendor", "buyer"])
def agent(request: pytest.FixtureRequest, agents: Agents) -> tuple[str, str]:
    # The `agents` fixture stops the process when the test ends.
    return str(request.param), agents.start(request.param).base_url


async def test_discovery_and_keys_conform(agent: tuple[str, str]) -> None:
    _, agent_url = agent
    async with aiohttp.ClientSession() as session:
        async with session.get(agent_url + DISCOVERY_PATH) as response:
            assert response.status == 200
            await _check(response, DISCOVERY_PATH, "get")
        async with session.get(agent_url + JWKS_PATH) as response:
            assert response.status == 200
            await _check(response, JWKS_PATH, "get")


async def test_inbox_answers_conform(agent: tuple[str, str]) -> None:
    role, agent_url = agent
    buyer = Buyer(agent_url)
    token = buyer.rfi()
    # A vendor takes the RFI (202), then answers the identical resend with the
    # original receipt (200). A buyer agent refuses it: the RFI is addressed to
    # the agent's URL, and a buyer speaks only through its pseudonyms (421).
    first, again = ({202}, {200}) if role == "vendor" else ({421}, {421})
    async with aiohttp.ClientSession() as session:
        answers = [
            (token, MESSAGE_MEDIA_TYPE, first),
            (token, MESSAGE_MEDIA_TYPE, again),
            # a flipped signature byte, a wrong media type, a body that is not a JWS
            (
                token[:-2] + (b"A" if token[-2:-1] != b"A" else b"B") + token[-1:],
                MESSAGE_MEDIA_TYPE,
                {401, 409},
            ),
            (token, "application/json", {415}),
            (b"not a jws", MESSAGE_MEDIA_TYPE, {400}),
        ]
        for body, media_type, expected in answers:
            async with session.post(
                agent_url + INBOX_PATH, data=body, headers={"Content-Type": media_type}
            ) as response:
                assert response.status in expected, (response.status, await response.text())
                await _check(response, INBOX_PATH, "post")


async def test_mailbox_answers_conform(agent: tuple[str, str]) -> None:
    role, agent_url = agent
    buyer = Buyer(agent_url)
    async with aiohttp.ClientSession() as session:
        posted = await post_token(session, agent_url, buyer.rfi())
        assert posted.status == (202 if role == "vendor" else 421)
        async with session.get(agent_url + MAILBOX_PATH + "?after=0") as response:
            assert response.status >= 400  # no poll token
            await _check(response, MAILBOX_PATH, "get")
        token = buyer.poll_token(0).decode()
        async with session.get(
            agent_url + MAILBOX_PATH + "?after=0",
            headers={"Authorization": f"{POLL_AUTH_SCHEME} {token}"},
        ) as response:
            assert response.status == 200
            await _check(response, MAILBOX_PATH, "get")


async def test_vendor_terms_driver_and_problem_answers_conform(agents: Agents) -> None:
    agent_url = agents.start("vendor").base_url
    async with aiohttp.ClientSession() as session:
        async with session.get(agent_url + DISCOVERY_PATH) as response:
            [terms] = (await response.json())["terms"]
        path = terms["url"].removeprefix(agent_url)
        async with session.get(terms["url"]) as response:
            assert response.status == 200
            schema = _declared_schema(
                TERMS_PATH_PREFIX + "/{id}/{version}", "get", 200, response.headers["Content-Type"]
            )
            _validate(schema, (await response.read()).decode("utf-8"))
        async with session.get(agent_url + path + "-nope") as response:
            assert response.status == 404
            await _check(response, TERMS_PATH_PREFIX + "/{id}/{version}", "get")
        for route, body, status in (
            ("/clock", b"not json", 400),
            ("/service-notice", b'{"peer": "did:jwk:nobody"}', 404),
        ):
            async with session.post(
                agent_url + TEST_DRIVER_PREFIX + route,
                data=body,
                headers={"Content-Type": "application/json"},
            ) as response:
                assert response.status == status
                await _check(response, TEST_DRIVER_PREFIX + route, "post")
        async with session.get(agent_url + MAILBOX_PATH + "?after=-1") as response:
            assert response.status == 401  # credentials are judged first
            await _check(response, MAILBOX_PATH, "get")
