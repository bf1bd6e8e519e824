"""The vendor agent over HTTP (spec §11): an aiohttp application.

Routes (spec §11.1-§11.4)::

    GET  /.well-known/vrm        discovery document
    GET  /vrm/jwks.json          the vendor's public keys
    GET  /vrm/terms/{id}/{ver}   the terms document it asserts (text/plain; charset=utf-8)
    POST /vrm/inbox              one message (application/vrm+jws) -> 202 + receipt
    GET  /vrm/mailbox?after=N    every message sent to the poller, until it expires (VRM-Poll)

and, only with ``test_mode`` (spec §14.3), the test driver::

    POST /vrm/test-driver/clock           {"offsetSeconds": N}: run N s ahead of real time
    GET  /vrm/test-driver/state           relationships, offers, data held, deletions
    POST /vrm/test-driver/service-notice  {"peer", "kind", "category"?, "programme"?, "summary"?}
    POST /vrm/test-driver/sweep           run the retention sweep now
    POST /vrm/test-driver/deliver         attempt every due delivery now
    POST /vrm/test-driver/touchpoints     {"peer"}: run the retention touchpoints (seed 004)
    POST /vrm/test-driver/leave-market    {"explanation"?}: leave the market (seed 003 step 9)

and, only with an ``operator_token``, the operator's own routes (same bodies as
the driver's ``service-notice`` and ``leave-market``, ``Authorization: Bearer <token>``)::

    POST /vrm/operator/service-notice
    POST /vrm/operator/leave-market

Every answer of 400 or more, on every route, is RFC 9457 problem details
with the stable code (spec §11.5, :func:`vrm_agent.http.problem_details`); a
store that cannot be written is ``503 temporarily-unavailable`` with
``Retry-After``; an unexpected failure is ``internal-error`` and, because the
agent commits one unit of work per message, leaves nothing half-written.
Only the address is charged before a message is verified, the sender after
(§11.6). The discovery document's ``accepts`` and ``sends`` come from the
message-type registry (:func:`vrm_protocol.message_types.accepted_by`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from reference_vendor import (
    handlers_living,
    handlers_transaction,
    leaving,
    party_attestations,
    retention,
)
from reference_vendor.agent import VendorAgent
from reference_vendor.config import (
    KEY_FILE,
    LOCK_FILE,
    STORE_FILE,
    VendorConfig,
    load_or_create_key,
)
from reference_vendor.handlers_myterms import agreement_refs
from reference_vendor.store import SqliteVendorStore, VendorStore
from vrm_agent.clock import AgentClock
from vrm_agent.files import DataDirError, DataDirLock, lock_data_dir
from vrm_agent.http import Handler, inbox_route, json_object, mailbox_route, problem_details
from vrm_agent.net import ATTEMPT_TIMEOUT_SECONDS, client_session
from vrm_agent.server import Serving
from vrm_agent.server import serve as serve_app
from vrm_agent.store import StoreError
from vrm_protocol.errors import ErrorCode, LocalProtocolError, ProtocolError, RemoteProtocolError
from vrm_protocol.http_binding import (
    DISCOVERY_PATH,
    INBOX_PATH,
    JWKS_PATH,
    MAILBOX_PATH,
    TERMS_PATH_PREFIX,
    TERMS_TEXT_MEDIA_TYPE,
    TEST_DRIVER_PREFIX,
    RateLimiter,
    discovery_document,
)
from vrm_protocol.keys import SigningKey

__all__ = ["AGENT", "CONFIG", "OPERATOR_PREFIX", "create_app", "serve"]

CONFIG = web.AppKey("config", VendorConfig)
AGENT = web.AppKey("agent", VendorAgent)
ADDRESS_LIMITER = web.AppKey("address_limiter", RateLimiter)
SENDER_LIMITER = web.AppKey("sender_limiter", RateLimiter)
INBOX_ROUTE: web.AppKey[Handler] = web.AppKey("inbox_route")
MAILBOX_ROUTE: web.AppKey[Handler] = web.AppKey("mailbox_route")

#: The operator's routes (enabled by ``operator_token``).
OPERATOR_PREFIX = "/vrm/operator"


async def inbox(request: web.Request) -> web.StreamResponse:
    """``POST /vrm/inbox`` (spec §11.3): step 1 of the pipeline, then the agent's."""
    return await request.app[INBOX_ROUTE](request)


async def mailbox(request: web.Request) -> web.StreamResponse:
    """``GET /vrm/mailbox?after=N`` with a signed poll token (spec §11.4)."""
    return await request.app[MAILBOX_ROUTE](request)


async def discovery(request: web.Request) -> web.Response:
    """``GET /.well-known/vrm`` (spec §11.1)."""
    config = request.app[CONFIG]
    agent = request.app[AGENT]
    catalogue = agent.catalogue
    document = discovery_document(
        party_id=config.party_id,
        # A third party takes the vendor role in its own relationship (vocabulary.Role).
        role="vendor",
        name=catalogue.name,
        base_url=config.party_id,
        accepts=sorted(agent.accepts),
        sends=sorted(agent.sends),
        terms=[catalogue.terms_reference()],
        categories=catalogue.categories,
        max_message_bytes=config.limits.max_message_bytes,
        max_depth=config.limits.max_nesting_depth,
        rate_per_minute=int(config.rate_per_second * 60),
        test_driver=config.test_mode,
        agreements=agreement_refs(catalogue),
        programmes=[{"code": p.code, "title": p.summary} for p in catalogue.programmes],
    )
    document["partyRole"] = catalogue.role
    return web.json_response(document)


async def terms_document(request: web.Request) -> web.Response:
    """``GET /vrm/terms/{id}/{version}`` (spec §11.7): the terms document the agent
    asserts, as the exact bytes its digest covers.

    Raises:
        RemoteProtocolError: NOT_FOUND for any other id or version.
    """
    catalogue = request.app[AGENT].catalogue
    wanted = (request.match_info["id"], request.match_info["version"])
    if wanted != (catalogue.terms_id, catalogue.terms_version):
        raise RemoteProtocolError(ErrorCode.NOT_FOUND, "no terms document of this id and version")
    return web.Response(body=catalogue.terms_bytes, headers={"Content-Type": TERMS_TEXT_MEDIA_TYPE})


async def jwks(request: web.Request) -> web.Response:
    """``GET /vrm/jwks.json`` (spec §11.2): public keys under their thumbprints."""
    return web.json_response(request.app[AGENT].key_set.to_jwks())


# -- test driver (spec §14.3) -------------------------------------------------------------------


#: The largest clock offset the driver takes: a century either way keeps every
#: instant the agent computes (offer ends, retention ends) within the calendar.
MAX_CLOCK_OFFSET_SECONDS = 100 * 366 * 24 * 3600


async def _instruction(request: web.Request) -> dict[str, Any]:
    config = request.app[CONFIG]
    return await json_object(request, config.limits, config.body_timeout)


async def driver_clock(request: web.Request) -> web.Response:
    """``POST /clock {"offsetSeconds": N}``: absolute offset from real time."""
    document = await _instruction(request)
    offset = document.get("offsetSeconds")
    if (
        not isinstance(offset, int)
        or isinstance(offset, bool)
        or abs(offset) > MAX_CLOCK_OFFSET_SECONDS
    ):
        raise RemoteProtocolError(
            ErrorCode.INVALID_REQUEST,
            f"offsetSeconds is an integer of at most {MAX_CLOCK_OFFSET_SECONDS} either way",
            path="/offsetSeconds",
        )
    agent = request.app[AGENT]
    # What is in flight arrives before time jumps (see Outbox.flush).
    await agent.outbox.flush(ahead=request.app[CONFIG].reply_delay)
    await agent.set_clock_offset(offset)
    return web.json_response({"offsetSeconds": offset, "now": agent.clock.now().isoformat()})


async def driver_state(request: web.Request) -> web.Response:
    """``GET /state``: relationships, offers, data held, deletions."""
    return web.json_response(await request.app[AGENT].summary())


async def driver_service_notice(request: web.Request) -> web.Response:
    """``POST /service-notice {"buyer"|"peer", "kind"?, "category"?, "programme"?, "summary"?,
    "proposals"?}``:
    prompt the vendor to send a service notice or programme offer (spec §14.3).

    ``200`` when sent; ``409`` ``illegal-transition`` (problem details with
    ``sent: false`` and the ``reason``) when the individual's preferences or
    the relationship's state forbid it (the refusal is recorded); ``404``
    ``not-found`` for an unknown relationship or programme.

    Raises:
        RemoteProtocolError: INVALID_REQUEST, NOT_FOUND or ILLEGAL_TRANSITION.
    """
    document = await _instruction(request)
    peer = document.get("peer", document.get("buyer"))
    if not isinstance(peer, str):
        raise RemoteProtocolError(
            ErrorCode.INVALID_REQUEST, "name the relationship: buyer (or peer) is a party id"
        )
    options = {
        name: value if isinstance(value, str) else None
        for name in ("kind", "category", "programme", "summary")
        for value in (document.get(name),)
    }
    proposals = document.get("proposals") or []
    if not isinstance(proposals, list) or not all(isinstance(p, dict) for p in proposals):
        raise RemoteProtocolError(
            ErrorCode.INVALID_REQUEST, "proposals is a list of objects", path="/proposals"
        )
    try:
        outcome = await request.app[AGENT].send_notice(peer, proposals=proposals, **options)
    except LookupError as error:
        raise RemoteProtocolError(ErrorCode.NOT_FOUND, str(error)) from error
    except LocalProtocolError as error:
        raise RemoteProtocolError(
            ErrorCode.INVALID_REQUEST, f"not a valid notice: {error}"
        ) from error
    if not outcome.sent:
        raise RemoteProtocolError(
            ErrorCode.ILLEGAL_TRANSITION,
            outcome.reason or "the notice was not sent",
            extra={"sent": False, "reason": outcome.reason},
        )
    return web.json_response({"sent": True, "id": outcome.message_id, "reason": None})


async def operator_service_notice(request: web.Request) -> web.Response:
    """``POST /vrm/operator/service-notice``: the driver's instruction, for the operator.

    Raises:
        RemoteProtocolError: AUTHENTICATION_REQUIRED without the operator's
            bearer token; otherwise as :func:`driver_service_notice`.
    """
    _check_operator(request)
    return await driver_service_notice(request)


def _check_operator(request: web.Request) -> None:
    """The operator's bearer token, or no operator route.

    Raises:
        RemoteProtocolError: AUTHENTICATION_REQUIRED.
    """
    token = request.app[CONFIG].operator_token
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if (
        token is None
        or scheme != "Bearer"
        or not hmac.compare_digest(given.encode(), token.encode())
    ):
        raise RemoteProtocolError(
            ErrorCode.AUTHENTICATION_REQUIRED,
            "operator routes need 'Authorization: Bearer <token>'",
            extra={"www_authenticate": "Bearer"},
        )


async def driver_read_grant(request: web.Request) -> web.Response:
    """``POST /read-grant {"grant"}``: read the items of an access grant it holds
    from the individual's agent, now (spec §11.9, §14.3). ``200`` with her
    agent's status and answer (``{"read": true, "status", "answer"}``);
    problem details ``grant-revoked`` / ``grant-expired`` when the vendor
    stops itself (nothing is sent), ``404`` for a grant it does not hold.

    Raises:
        RemoteProtocolError: INVALID_REQUEST, NOT_FOUND, GRANT_REVOKED,
            GRANT_EXPIRED, UNKNOWN_KEY or TEMPORARILY_UNAVAILABLE.
    """
    document = await _instruction(request)
    grant = document.get("grant")
    if not isinstance(grant, str):
        raise RemoteProtocolError(
            ErrorCode.INVALID_REQUEST, "grant is the id of a grant", path="/grant"
        )
    try:
        read = await request.app[AGENT].read_grant(grant)
    except LookupError as error:
        raise RemoteProtocolError(ErrorCode.NOT_FOUND, str(error)) from error
    except LocalProtocolError as error:
        raise RemoteProtocolError(error.code, error.detail) from error
    return web.json_response({"read": True, "status": read.status, "answer": read.document})


async def driver_sweep(request: web.Request) -> web.Response:
    """``POST /sweep``: delete data whose retention has ended, now."""
    deleted = await request.app[AGENT].sweep()
    return web.json_response({"deleted": [{"peer": d.peer, "item": d.item} for d in deleted]})


async def driver_handover(request: web.Request) -> web.Response:
    """``POST /handover {"buyer"|"peer"}``: deliver the latest deal with the
    individual: a delivery notice, then the handover record (spec §6.22, §6.23).

    Raises:
        RemoteProtocolError: INVALID_REQUEST, NOT_FOUND (no relationship or deal)
            or ILLEGAL_TRANSITION (the relationship's state forbids it).
    """
    document = await _instruction(request)
    peer = document.get("peer", document.get("buyer"))
    if not isinstance(peer, str):
        raise RemoteProtocolError(
            ErrorCode.INVALID_REQUEST, "name the relationship: buyer (or peer) is a party id"
        )
    try:
        delivered = await handlers_transaction.deliver(request.app[AGENT], peer)
    except LookupError as error:
        raise RemoteProtocolError(ErrorCode.NOT_FOUND, str(error)) from error
    except LocalProtocolError as error:
        raise RemoteProtocolError(ErrorCode.ILLEGAL_TRANSITION, error.detail) from error
    return web.json_response(
        {"sent": [delivered.notice, delivered.handover], "tradeIn": delivered.trade_in}
    )


async def driver_invoice(request: web.Request) -> web.Response:
    """``POST /invoice {"buyer"|"peer"}``: invoice the latest deal with the
    individual (spec §6.25); refused before she accepted a handover.

    Raises:
        RemoteProtocolError: INVALID_REQUEST, NOT_FOUND (no relationship or deal)
            or ILLEGAL_TRANSITION (not delivered yet, or the state forbids it).
    """
    document = await _instruction(request)
    peer = document.get("peer", document.get("buyer"))
    if not isinstance(peer, str):
        raise RemoteProtocolError(
            ErrorCode.INVALID_REQUEST, "name the relationship: buyer (or peer) is a party id"
        )
    try:
        invoice_id = await handlers_transaction.send_invoice(request.app[AGENT], peer)
    except LookupError as error:
        raise RemoteProtocolError(ErrorCode.NOT_FOUND, str(error)) from error
    except LocalProtocolError as error:
        raise RemoteProtocolError(ErrorCode.ILLEGAL_TRANSITION, error.detail) from error
    return web.json_response({"sent": [invoice_id]})


async def driver_appointment(request: web.Request) -> web.Response:
    """``POST /appointment {"buyer"|"peer", "kind", "about"?}``: propose slots
    for an appointment (spec §6.40): a test drive, a service, a handover.

    Raises:
        RemoteProtocolError: INVALID_REQUEST, NOT_FOUND (no relationship, or
            ``about`` names no message of the vendor to it) or ILLEGAL_TRANSITION
            (the relationship's state allows no appointment).
    """
    document = await _instruction(request)
    peer = document.get("peer", document.get("buyer"))
    kind = document.get("kind", "service")
    about = document.get("about")
    if not isinstance(peer, str):
        raise RemoteProtocolError(
            ErrorCode.INVALID_REQUEST, "name the relationship: buyer (or peer) is a party id"
        )
    if kind not in handlers_living.APPOINTMENT_KINDS or not (
        about is None or isinstance(about, str)
    ):
        raise RemoteProtocolError(
            ErrorCode.INVALID_REQUEST,
            f"kind is one of {', '.join(handlers_living.APPOINTMENT_KINDS)}; about a message id",
        )
    try:
        proposal = await handlers_living.propose_appointment(request.app[AGENT], peer, kind, about)
    except LookupError as error:
        raise RemoteProtocolError(ErrorCode.NOT_FOUND, str(error)) from error
    except LocalProtocolError as error:
        raise RemoteProtocolError(ErrorCode.ILLEGAL_TRANSITION, error.detail) from error
    return web.json_response({"sent": [proposal]})


async def driver_cancel_appointment(request: web.Request) -> web.Response:
    """``POST /cancel-appointment {"buyer"|"peer", "appointment", "reason"?}``: cancel
    an appointment, its confirmation or her booking (spec §6.43).

    Raises:
        RemoteProtocolError: INVALID_REQUEST, NOT_FOUND (no such appointment) or
            ILLEGAL_TRANSITION (done or cancelled already).
    """
    document = await _instruction(request)
    peer = document.get("peer", document.get("buyer"))
    appointment = document.get("appointment")
    reason = document.get("reason", "The vendor cannot keep the appointment")
    if not (isinstance(peer, str) and isinstance(appointment, str) and isinstance(reason, str)):
        raise RemoteProtocolError(
            ErrorCode.INVALID_REQUEST,
            "buyer (or peer) is a party id, appointment a message id, reason a string",
        )
    try:
        sent = await handlers_living.cancel_appointment(
            request.app[AGENT], peer, appointment, reason
        )
    except LookupError as error:
        raise RemoteProtocolError(ErrorCode.NOT_FOUND, str(error)) from error
    except LocalProtocolError as error:
        raise RemoteProtocolError(ErrorCode.ILLEGAL_TRANSITION, error.detail) from error
    return web.json_response({"sent": [sent]})


async def driver_service_record(request: web.Request) -> web.Response:
    """``POST /service-record {"buyer"|"peer", "response"?, "appointment"?, "mileage"?}``:
    record the work done (spec §6.44): the proposals of the notice her response
    answered, at the appointment confirmed.

    Raises:
        RemoteProtocolError: INVALID_REQUEST, NOT_FOUND (no relationship, response
            or appointment) or ILLEGAL_TRANSITION (the state forbids it).
    """
    document = await _instruction(request)
    peer = document.get("peer", document.get("buyer"))
    response, appointment = document.get("response"), document.get("appointment")
    mileage = document.get("mileage", 12480)
    if (
        not isinstance(peer, str)
        or not all(v is None or isinstance(v, str) for v in (response, appointment))
        or not isinstance(mileage, int)
        or isinstance(mileage, bool)
        or mileage < 0
    ):
        raise RemoteProtocolError(
            ErrorCode.INVALID_REQUEST,
            "buyer (or peer) is a party id, response and appointment message ids, "
            "mileage a whole number",
        )
    try:
        record = await handlers_living.send_service_record(
            request.app[AGENT], peer, response=response, appointment=appointment, mileage=mileage
        )
    except LookupError as error:
        raise RemoteProtocolError(ErrorCode.NOT_FOUND, str(error)) from error
    except LocalProtocolError as error:
        raise RemoteProtocolError(ErrorCode.ILLEGAL_TRANSITION, error.detail) from error
    return web.json_response({"sent": [record]})


async def driver_addons(request: web.Request) -> web.Response:
    """``POST /addons {"buyer"|"peer"}``: propose the dealer's extras for the latest
    deal with the individual (spec §6.45).

    Raises:
        RemoteProtocolError: INVALID_REQUEST, NOT_FOUND (no relationship or deal)
            or ILLEGAL_TRANSITION (the relationship's state forbids it).
    """
    document = await _instruction(request)
    peer = document.get("peer", document.get("buyer"))
    if not isinstance(peer, str):
        raise RemoteProtocolError(
            ErrorCode.INVALID_REQUEST, "name the relationship: buyer (or peer) is a party id"
        )
    try:
        offer = await handlers_living.propose_addons(request.app[AGENT], peer)
    except LookupError as error:
        raise RemoteProtocolError(ErrorCode.NOT_FOUND, str(error)) from error
    except LocalProtocolError as error:
        raise RemoteProtocolError(ErrorCode.ILLEGAL_TRANSITION, error.detail) from error
    return web.json_response({"sent": [offer]})


async def driver_list(request: web.Request) -> web.Response:
    """``POST /list {"directory", "areas"?}``: list the vendor in a directory now
    (spec §11.10), as ``vrm vendor serve --list-at`` does at start-up.

    Raises:
        RemoteProtocolError: INVALID_REQUEST (a malformed instruction, or an area
            a listing cannot carry), TEMPORARILY_UNAVAILABLE (the directory
            refused the listing or could not be reached).
    """
    from reference_vendor.listing import ListingRefused, list_at

    document = await _instruction(request)
    directory, areas = document.get("directory"), document.get("areas", [])
    if not isinstance(directory, str) or not (
        isinstance(areas, list) and all(isinstance(a, str) for a in areas)
    ):
        raise RemoteProtocolError(
            ErrorCode.INVALID_REQUEST, "directory is a URL, areas a list of areas"
        )
    try:
        listed = await list_at(request.app[AGENT], directory, areas)
    except ProtocolError as error:
        raise RemoteProtocolError(ErrorCode.INVALID_REQUEST, error.detail) from error
    except (ListingRefused, ValueError) as error:
        raise RemoteProtocolError(ErrorCode.TEMPORARILY_UNAVAILABLE, str(error)[:300]) from error
    return web.json_response({"sent": [], "listed": listed})


async def driver_touchpoints(request: web.Request) -> web.Response:
    """``POST /touchpoints {"buyer"|"peer"}``: run the catalogue's retention
    touchpoints for the individual (seed 004): each sent within her notification
    preferences and the data she shared, or recorded as not sent with its reason.

    Raises:
        RemoteProtocolError: INVALID_REQUEST or NOT_FOUND (no relationship).
    """
    document = await _instruction(request)
    peer = document.get("peer", document.get("buyer"))
    if not isinstance(peer, str):
        raise RemoteProtocolError(
            ErrorCode.INVALID_REQUEST, "name the relationship: buyer (or peer) is a party id"
        )
    try:
        outcomes = await retention.run_touchpoints(request.app[AGENT], peer)
    except LookupError as error:
        raise RemoteProtocolError(ErrorCode.NOT_FOUND, str(error)) from error
    return web.json_response(
        {
            "touchpoints": [
                {
                    "code": o.code,
                    "kind": o.kind,
                    "category": o.category,
                    "needs": list(o.needs),
                    "sent": o.sent,
                    "id": o.message_id,
                    "reason": o.reason,
                }
                for o in outcomes
            ]
        }
    )


async def driver_leave_market(request: web.Request) -> web.Response:
    """``POST /leave-market {"explanation"?, "buyer"?}``: the vendor leaves the market
    (seed 003 step 9): an exit notice to every relationship not already ending (with
    ``buyer``, to that one only: a test's), carrying her export and the receipt of
    the deletion done with it (spec §6.13).

    Raises:
        RemoteProtocolError: INVALID_REQUEST for a malformed instruction.
    """
    document = await _instruction(request)
    explanation = document.get("explanation")
    if explanation is not None and not isinstance(explanation, str):
        raise RemoteProtocolError(
            ErrorCode.INVALID_REQUEST, "explanation is a string", path="/explanation"
        )
    only = document.get("buyer")
    if only is not None and not isinstance(only, str):
        raise RemoteProtocolError(ErrorCode.INVALID_REQUEST, "buyer is a party id", path="/buyer")
    departures = await leaving.leave_market(request.app[AGENT], explanation=explanation, only=only)
    return web.json_response(
        {
            "sent": [d.message_id for d in departures if d.sent],
            "relationships": [
                {"peer": d.peer, "sent": d.sent, "id": d.message_id, "reason": d.reason}
                for d in departures
            ],
        }
    )


async def operator_leave_market(request: web.Request) -> web.Response:
    """``POST /vrm/operator/leave-market``: the driver's instruction, for the operator.

    Raises:
        RemoteProtocolError: AUTHENTICATION_REQUIRED without the operator's
            bearer token; otherwise as :func:`driver_leave_market`.
    """
    _check_operator(request)
    return await driver_leave_market(request)


async def driver_deliver(request: web.Request) -> web.Response:
    """``POST /deliver``: attempt every due delivery now."""
    attempted = await request.app[AGENT].outbox.deliver_due()
    return web.json_response({"attempted": attempted})


# -- lifecycle --------------------------------------------------------------------------------


#: Seconds between two looks at the shared outbox while nothing of this process's
#: own is due (a store several processes serve): replies another process
#: committed but could not deliver (it was killed) go out within this.
SHARED_OUTBOX_RECHECK_SECONDS = 5.0


@dataclass
class _Storage:
    """The store, the signing key and, for SQLite, the data directory's lock."""

    store: VendorStore
    key: SigningKey
    lock: DataDirLock | None

    async def close(self) -> None:
        await self.store.close()
        if self.lock is not None:
            self.lock.release()


def _open_sqlite(config: VendorConfig, data_dir: Path) -> SqliteVendorStore:
    """The store in the data directory (migrated), on a worker thread: its first
    open may write and fsync.

    Raises:
        DataDirError: it cannot be opened or migrated (one line for the operator).
    """
    path = data_dir / STORE_FILE
    try:
        return SqliteVendorStore(path, busy_timeout=config.store_busy_timeout)
    except StoreError as error:
        raise DataDirError(f"cannot open the store {path}: {error}") from error


async def _open_storage(config: VendorConfig) -> _Storage:
    """The vendor's store and key: SQLite and a key file in the locked data
    directory (D10: no second agent on it), or a PostgreSQL database that holds
    both and that other processes of the vendor may serve too.

    Raises:
        DataDirError: they cannot be opened (one line for the operator).
    """
    if config.store_url is not None:
        try:
            from reference_vendor.store_postgres import PostgresVendorStore
        except ImportError as error:
            raise DataDirError(
                "a PostgreSQL store needs asyncpg: pip install 'vrm-protocol[postgresql]'"
            ) from error
        try:
            store = await PostgresVendorStore.open(
                config.store_url, lock_timeout=config.store_busy_timeout, name="vrm-vendor"
            )
        except StoreError as error:
            raise DataDirError(f"cannot open the store: {error}") from error
        try:
            key = await store.signing_key()
        except StoreError as error:
            await store.close()
            raise DataDirError(f"cannot read the signing key from the store: {error}") from error
        return _Storage(store, key, None)
    if config.data_dir is None:
        raise DataDirError("the vendor needs a data directory or a PostgreSQL store")
    data_dir = config.data_dir
    # The data directory first: private, and locked so that no second agent
    # serves the same store (D10). Each failure is one line (DataDirError).
    lock = lock_data_dir(data_dir, lock_file=LOCK_FILE, agent="vendor agent")
    try:
        sqlite_store = await asyncio.to_thread(_open_sqlite, config, data_dir)
        try:
            key = await asyncio.to_thread(load_or_create_key, data_dir / KEY_FILE)
        except BaseException:
            await sqlite_store.close()
            raise
    except BaseException:
        lock.release()
        raise
    return _Storage(sqlite_store, key, lock)


async def _recheck_shared_outbox(agent: VendorAgent) -> None:
    """Wake the outbox now and then: with a store several processes serve, what
    another process committed and did not deliver is this one's to deliver."""
    while True:
        await asyncio.sleep(SHARED_OUTBOX_RECHECK_SECONDS)
        agent.outbox.wake()


@web.middleware
async def shared_clock(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Test mode on a store several processes serve: the test driver may have moved
    the clock through another process, so each request reads the offset first."""
    agent = request.app.get(AGENT)
    if agent is not None:
        await agent.restore_clock_offset()
    return await handler(request)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    storage = await _open_storage(config)
    store, key = storage.store, storage.key
    session = client_session(config.delivery_policy, total_timeout=ATTEMPT_TIMEOUT_SECONDS)
    try:
        agent = VendorAgent(
            config,
            store,
            AgentClock(),
            key,
            session=session,
            sender_limiter=app[SENDER_LIMITER],
        )
        if config.test_mode:
            await agent.restore_clock_offset()
    except BaseException:
        await session.close()
        await storage.close()
        raise
    app[AGENT] = agent
    app[INBOX_ROUTE] = inbox_route(
        agent.receive,
        limits=config.limits,
        body_timeout=config.body_timeout,
        clock=agent.clock,
        address_limiter=app[ADDRESS_LIMITER],
        sender_limiter=app[SENDER_LIMITER],
        admission=agent.strategies.runtime.admission,
        after_answer=agent.outbox.wake,
    )
    app[MAILBOX_ROUTE] = mailbox_route(
        agent.mailbox.page, clock=agent.clock, address_limiter=app[ADDRESS_LIMITER]
    )
    tasks = [asyncio.create_task(agent.sweep_forever(config.sweep_interval), name="vendor-sweeper")]
    if config.background_delivery:
        tasks.append(asyncio.create_task(agent.outbox.run(), name="vendor-outbox"))
        if config.shared_store:
            tasks.append(
                asyncio.create_task(_recheck_shared_outbox(agent), name="vendor-outbox-recheck")
            )
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await session.close()
        await storage.close()


def create_app(config: VendorConfig) -> web.Application:
    """The vendor agent as an aiohttp application.

    The store, the key and the background tasks (reply delivery, retention
    sweep) start with the application and stop with it (``cleanup_ctx``).

    Raises:
        FaultError: a fault outside test mode (checked when it starts).
    """
    limits = config.limits
    # The inbox bounds its own body; this bounds the test driver's JSON bodies.
    middlewares: list[Middleware] = [problem_details]
    if config.test_mode and config.shared_store:
        middlewares.append(shared_clock)
    app = web.Application(client_max_size=limits.max_message_bytes + 1024, middlewares=middlewares)
    app[CONFIG] = config
    app[ADDRESS_LIMITER] = RateLimiter(config.address_rate_per_second, config.address_burst)
    app[SENDER_LIMITER] = RateLimiter(config.rate_per_second, config.burst)
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_get(DISCOVERY_PATH, discovery)
    app.router.add_get(JWKS_PATH, jwks)
    app.router.add_get(TERMS_PATH_PREFIX + "/{id}/{version}", terms_document)
    app.router.add_post(INBOX_PATH, inbox)
    app.router.add_get(MAILBOX_PATH, mailbox)
    if config.operator_token:
        app.router.add_post(OPERATOR_PREFIX + "/service-notice", operator_service_notice)
        app.router.add_post(OPERATOR_PREFIX + "/leave-market", operator_leave_market)
    if config.test_mode:
        app.router.add_post(TEST_DRIVER_PREFIX + "/clock", driver_clock)
        app.router.add_get(TEST_DRIVER_PREFIX + "/state", driver_state)
        app.router.add_post(TEST_DRIVER_PREFIX + "/service-notice", driver_service_notice)
        app.router.add_post(TEST_DRIVER_PREFIX + "/sweep", driver_sweep)
        app.router.add_post(TEST_DRIVER_PREFIX + "/deliver", driver_deliver)
        app.router.add_post(TEST_DRIVER_PREFIX + "/handover", driver_handover)
        app.router.add_post(TEST_DRIVER_PREFIX + "/invoice", driver_invoice)
        app.router.add_post(TEST_DRIVER_PREFIX + "/touchpoints", driver_touchpoints)
        app.router.add_post(TEST_DRIVER_PREFIX + "/leave-market", driver_leave_market)
        app.router.add_post(TEST_DRIVER_PREFIX + "/read-grant", driver_read_grant)
        app.router.add_post(TEST_DRIVER_PREFIX + "/appointment", driver_appointment)
        app.router.add_post(TEST_DRIVER_PREFIX + "/service-record", driver_service_record)
        app.router.add_post(TEST_DRIVER_PREFIX + "/addons", driver_addons)
        app.router.add_post(TEST_DRIVER_PREFIX + "/cancel-appointment", driver_cancel_appointment)
        app.router.add_post(TEST_DRIVER_PREFIX + "/list", driver_list)
        app.router.add_post(
            TEST_DRIVER_PREFIX + "/party-attestation", party_attestations.driver_party_attestation
        )
    return app


async def serve(config: VendorConfig, sock: socket.socket) -> Serving:
    """Serve the vendor agent on ``sock`` (bound, listening, non-blocking), with the
    connection bounds of spec §11.6 (:func:`vrm_agent.server.serve`).

    Raises:
        Exception: whatever starting the agent raised (its store, key or data
            directory); nothing is left running then.
    """
    return await serve_app(
        create_app(config),
        sock,
        header_timeout=config.header_timeout,
        max_connections=config.max_connections,
    )
