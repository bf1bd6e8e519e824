"""Slow and vanishing clients against the vendor as it serves in production
(:func:`reference_vendor.app.serve` on a real socket on 127.0.0.1, spec §11.6).

Every read here is bounded (``READ_BOUND``), far above the agent's own
timeouts set for the test: a test that would wait on an unbounded server
fails instead of hanging. Nothing asserts on time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from reference_vendor.app import serve
from reference_vendor.config import VendorConfig
from vrm_agent.server import Serving

#: The longest any read of this module waits for the agent.
READ_BOUND = 15.0
DISCOVERY_REQUEST = (
    b"GET /.well-known/vrm HTTP/1.1\r\nHost: vendor.test\r\nConnection: close\r\n\r\n"
)


@pytest.fixture
async def serving(make_config: Callable[..., VendorConfig]) -> AsyncIterator[Serving]:
    config = make_config(header_timeout=0.5, body_timeout=0.5, max_connections=4)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    running = await serve(config, sock)
    yield running
    await running.close()


async def _connect(serving: Serving) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", serving.port)


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    """Everything until the agent closes the connection (bounded by READ_BOUND)."""
    async with asyncio.timeout(READ_BOUND):
        return await reader.read()


def _answer(raw: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
    }
    return status, headers, json.loads(body) if body else {}


async def test_a_body_that_never_completes_is_answered_408_and_closed(serving: Serving) -> None:
    reader, writer = await _connect(serving)
    writer.write(
        b"POST /vrm/inbox HTTP/1.1\r\nHost: vendor.test\r\n"
        b"Content-Type: application/vrm+jws\r\nContent-Length: 1000\r\n\r\n" + b"e" * 10
    )
    await writer.drain()
    status, headers, problem = _answer(await _read_all(reader))
    assert (status, headers["content-type"]) == (408, "application/problem+json")
    assert problem["code"] == "request-timeout"
    writer.close()


async def test_headers_that_never_complete_do_not_hold_the_connection(serving: Serving) -> None:
    reader, writer = await _connect(serving)
    writer.write(b"POST /vrm/inbox HTTP/1.1\r\nHost: vendor.test\r\n")
    await writer.drain()
    assert await _read_all(reader) == b"", "the agent closes the connection"
    writer.close()


async def test_connections_beyond_the_cap_are_refused_with_503_and_retry_after(
    serving: Serving,
) -> None:
    held = [await _connect(serving) for _ in range(4)]
    reader, writer = await _connect(serving)
    status, headers, problem = _answer(await _read_all(reader))
    assert (status, problem["code"]) == (503, "temporarily-unavailable")
    assert int(headers["retry-after"]) >= 1
    writer.close()
    for _, idle in held:
        idle.close()
    # Once they are gone, the agent serves again (bounded retries: the agent
    # notices the closes as its event loop gets to them).
    for _ in range(100):
        reader, writer = await _connect(serving)
        writer.write(
            b"GET /.well-known/vrm HTTP/1.1\r\nHost: vendor.test\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        status, _, _ = _answer(await _read_all(reader))
        writer.close()
        if status == 200:
            break
        await asyncio.sleep(0.05)
    assert status == 200


async def test_an_aborted_upload_logs_one_line_and_no_traceback(
    serving: Serving, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _, writer = await _connect(serving)
    writer.write(
        b"POST /vrm/inbox HTTP/1.1\r\nHost: vendor.test\r\n"
        b"Content-Type: application/vrm+jws\r\nContent-Length: 1000\r\n\r\n" + b"e" * 10
    )
    await writer.drain()
    writer.transport.abort()
    # Bounded wait until the agent (the vendor or the runtime it is built on)
    # has dealt with the client that left.
    agent_loggers = ("reference_vendor", "vrm_agent")
    for _ in range(200):
        if any(r.name.startswith(agent_loggers) for r in caplog.records):
            break
        await asyncio.sleep(0.05)
    vendor_records = [r for r in caplog.records if r.name.startswith(agent_loggers)]
    assert vendor_records, "the agent noted the aborted upload"
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /.well-known/vrm HTTP/1.1\r\nHost: vendor.test\r\nX: " + b"a" * 9000 + b"\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\nHost: vendor.test\r\n\r\n",
        b"POST /vrm/inbox HTTP/1.1\r\nHost: vendor.test\r\nContent-Length: abc\r\n\r\n",
    ],
    ids=["header-too-long", "nul-in-path", "bad-content-length"],
)
async def test_malformed_http_is_problem_details_and_no_traceback(
    serving: Serving, caplog: pytest.LogCaptureFixture, raw: bytes
) -> None:
    caplog.set_level(logging.DEBUG)
    reader, writer = await _connect(serving)
    writer.write(raw)
    await writer.drain()
    status, headers, problem = _answer(await _read_all(reader))
    writer.close()
    assert (status, headers["content-type"]) == (400, "application/problem+json")
    assert problem["code"] == "invalid-request"
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
