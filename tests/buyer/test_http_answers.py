"""The buyer agent's HTTP answers (spec §11.5, D9, D11): every non-2xx answer is
RFC 9457 problem details with a registry code, bad driver instructions are
``invalid-request``, the mailbox wants authentication, an aborted upload is
not a crash, and a store that cannot write answers 503."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from reference_buyer.scenario import sally_rfi_body
from vrm_protocol.errors import ErrorCode
from vrm_protocol.http_binding import MAILBOX_PATH, PROBLEM_MEDIA_TYPE
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE, MessageType

from .conftest import BuyerFactory, RunningBuyer, VendorFactory, offer_body

VRM = (sys.executable, "-c", "from vrm_protocol.cli import main; main()")


async def _request(
    method: str, url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any] | None, aiohttp.typedefs.LooseHeaders]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=data, headers=headers) as response,
    ):
        body = await response.read()
        problem = json.loads(body) if response.content_type == PROBLEM_MEDIA_TYPE else None
        return response.status, problem, dict(response.headers)


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("accept", b"not json"),
        ("accept", b"[1, 2]"),
        ("accept", b"{}"),
        ("decline", b'{"offers": "urn:uuid:x"}'),
        ("clock", b'{"offsetSeconds": "soon"}'),
        ("clock", b'{"offsetSeconds": 1e400}'),
        ("rfi", b'{"vendors": 7}'),
        ("terms", b"{}"),
        ("service", b'{"notice": null}'),
        ("exit", b'{"vendors": []}'),
    ],
)
async def test_a_bad_instruction_is_invalid_request_problem_details(
    buyer: RunningBuyer, action: str, body: bytes
) -> None:
    url = buyer.url(f"/vrm/test-driver/{action}")
    status, problem, _ = await _request(
        "POST", url, data=body, headers={"Content-Type": "application/json"}
    )
    assert status == 400
    assert problem is not None
    assert problem["code"] == ErrorCode.INVALID_REQUEST.value
    assert problem["status"] == 400


@pytest.mark.parametrize("authorization", [None, "Bearer abc", "VRM-Poll", "Basic dXNlcg=="])
async def test_the_mailbox_without_credentials_is_authentication_required(
    buyer: RunningBuyer, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    status, problem, _ = await _request("GET", buyer.url(MAILBOX_PATH), headers=headers)
    assert status == 401
    assert problem is not None
    assert problem["code"] == ErrorCode.AUTHENTICATION_REQUIRED.value


@pytest.mark.parametrize("after", ["-1", "x", "99999999999999999999999999"])
async def test_a_bad_mailbox_cursor_is_invalid_request(buyer: RunningBuyer, after: str) -> None:
    status, problem, _ = await _request(
        "GET",
        buyer.url(MAILBOX_PATH) + f"?after={after}",
        headers={"Authorization": "VRM-Poll a.b.c"},
    )
    assert status == 400
    assert problem is not None
    assert problem["code"] == ErrorCode.INVALID_REQUEST.value


async def test_unknown_paths_and_methods_are_problem_details(buyer: RunningBuyer) -> None:
    status, problem, _ = await _request("GET", buyer.url("/no/such/path"))
    assert (status, problem and problem["code"]) == (404, ErrorCode.NOT_FOUND.value)
    status, problem, headers = await _request("DELETE", buyer.url("/vrm/inbox"))
    assert (status, problem and problem["code"]) == (405, ErrorCode.METHOD_NOT_ALLOWED.value)
    assert "POST" in str(headers.get("Allow"))
    status, problem, _ = await _request(
        "POST",
        buyer.url("/vrm/test-driver/accept"),
        data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert (status, problem and problem["code"]) == (413, ErrorCode.PAYLOAD_TOO_LARGE.value)


def test_a_client_aborting_an_upload_logs_no_traceback(tmp_path: Path) -> None:
    # The real `vrm buyer serve` (an in-process test server cancels the handler
    # when the client goes, which would hide the defect).
    process = subprocess.Popen(
        [*VRM, "buyer", "serve", "--port", "0", "--data-dir", str(tmp_path / "d"), "--test-mode"],
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "err").open("wb"),
    )
    try:
        assert process.stdout is not None
        match = re.match(rb"listening on http://127\.0\.0\.1:(\d+)", process.stdout.readline())
        assert match
        port = int(match.group(1))
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
                connection.sendall(
                    b"POST /vrm/inbox HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: " + MESSAGE_MEDIA_TYPE.encode() + b"\r\n"
                    b"Content-Length: 40000\r\n\r\n" + b"e" * 1000
                )
                time.sleep(0.2)  # the agent is now reading the body; the client goes
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(
                b"GET /.well-known/vrm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            assert connection.recv(12) == b"HTTP/1.1 200"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    log = (tmp_path / "err").read_text(errors="replace")
    assert "Traceback" not in log, log
    assert len(log.splitlines()) <= 3, log


async def test_a_store_that_cannot_write_answers_503_and_applies_nothing(
    buyer: RunningBuyer, start_vendor: VendorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    vendor = await start_vendor("A")
    await buyer.agent.buying.send_rfis([vendor.id], sally_rfi_body(buyer.agent.clock.now()))
    _, rfi = vendor.last("personal-rfi")
    offer, token = vendor.reply(rfi, MessageType.OFFER, offer_body(datetime.now(UTC)))
    # Another process holds the write lock: the database is locked (D11).
    blocker = sqlite3.connect(buyer.store.path, timeout=0.1, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        status, answer, content_type = await buyer.post(token)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert status == 503, answer
    assert content_type == PROBLEM_MEDIA_TYPE
    assert json.loads(answer)["code"] == ErrorCode.TEMPORARILY_UNAVAILABLE.value
    assert not [r for r in caplog.records if r.exc_info]
    assert await buyer.store.message(vendor.id, offer["id"]) is None
    # Nothing was applied: the same message is taken as new once the store writes again.
    status, _, _ = await buyer.post(token)
    assert status == 202
    assert await buyer.store.offer_view(offer["id"]) is not None


def _template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


async def test_every_route_served_is_described_with_its_problem_answers(
    buyer: RunningBuyer,
) -> None:
    from jsonschema import Draft202012Validator

    from tools.openapi import build_openapi

    document = build_openapi()
    described = {
        (method.upper(), _template(path))
        for path, operations in document["paths"].items()
        for method in operations
    }
    served = {
        (route.method, _template(route.resource.canonical))
        for route in buyer.serving.runner.app.router.routes()
        if route.resource is not None
    }
    assert served - described == set()
    # A driver's problem answer is one the description declares, and conforms to it.
    url = buyer.url("/vrm/test-driver/terms")
    status, problem, _ = await _request(
        "POST", url, data=b"{}", headers={"Content-Type": "application/json"}
    )
    declared = document["paths"]["/vrm/test-driver/terms"]["post"]["responses"][str(status)]
    schema = {
        **declared["content"][PROBLEM_MEDIA_TYPE]["schema"],
        "components": document["components"],
    }
    assert not list(Draft202012Validator(schema).iter_errors(problem))


async def test_a_body_that_never_completes_is_request_timeout(buyers: BuyerFactory) -> None:
    buyer = await buyers(body_timeout=0.3)
    host, _, port = buyer.base.removeprefix("http://").partition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            b"POST /vrm/inbox HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: " + MESSAGE_MEDIA_TYPE.encode() + b"\r\n"
            b"Content-Length: 40000\r\n\r\n" + b"e" * 100
        )
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(4096), 10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), head
    assert json.loads(body)["code"] == ErrorCode.REQUEST_TIMEOUT.value
