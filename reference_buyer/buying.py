"""What she does to buy (steps 1-4 and 10): search, engage, negotiate, transact, re-engage.

Her decisions, under her sharing policy (:mod:`reference_buyer.policy`): an
intentcast to many vendors, each under its own pseudonym and decorrelated
(spec §12), nothing identifying in it; an RFP (by post where a vendor is not
online), with a co-decision-maker named per vendor; a counter-offer; an
acceptance, the only place her identity is disclosed, carrying the approval
her co-decision-maker signed himself (her agent never signs for anyone else);
declines to the other vendors; re-engagement with the history she kept. Each
message is a typed body sent by :class:`~reference_buyer.outgoing.Sender`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any, Final

from pydantic import ValidationError

from reference_buyer.directory import Directory
from reference_buyer.letters import Letter, PostalRecipient
from reference_buyer.outgoing import (
    LetterTo,
    Sender,
    build,
    core,
    latest,
    received_offer,
    revise,
    sharing_records,
)
from reference_buyer.policy import SharingPolicy, check_nothing_identifying
from reference_buyer.pseudonyms import Pseudonyms
from reference_buyer.store import BuyerStore, Channel, CredentialRecord, Entry, Journal, OfferView
from vrm_agent.clock import Clock
from vrm_agent.inbox import Pipeline, Sent
from vrm_agent.unit import DomainWrite, Reply, outgoing, present
from vrm_protocol.attestations import verify_attestation
from vrm_protocol.codec import new_message_id
from vrm_protocol.errors import ErrorCode, LocalProtocolError, ProtocolError
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.ledger import LedgerQuery, OfferStatus
from vrm_protocol.models import (
    AcceptanceTradeIn,
    Attestation,
    AttestationStatement,
    Condition,
    MessageRef,
    Money,
    OfferAcceptanceBody,
    OfferBody,
    OfferDeclineBody,
    OfferPrice,
    Payment,
    PersonalDetails,
    PersonalRfiBody,
    PersonalRfpBody,
    PersonalRfpMessage,
    RegisteredTradeInItem,
    parse_message_dict,
)
from vrm_protocol.state_machine import Direction
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import PROTOCOL_VERSION, MessageType, Role

__all__ = ["ACCEPTANCE_CATEGORIES", "AttestationSource", "Buying"]

log = logging.getLogger(__name__)

#: Identity members of an acceptance and the data categories they disclose (spec §6.4).
#: The vendor's signed messages she shares as evidence when she comes back (step 10).
EVIDENCE_TYPES: Final = frozenset(
    {MessageType.DEAL_CONFIRMATION, MessageType.INVOICE, MessageType.PAYMENT_RECEIPT}
)
ACCEPTANCE_CATEGORIES: Final[Mapping[str, str]] = {
    "name": "identity.name",
    "email": "contact.email",
    "phone": "contact.phone",
    "address": "contact.postal-address",
}

#: Given (subject pseudonym, audience party id), an attestation ``{kind, issuer, token}``.
AttestationSource = Callable[[str, str], Mapping[str, str]]


def _lined_up_financing(rfp: PersonalRfpBody | None) -> bool:
    """Whether her RFP asked for financing with an ability-to-pay attestation:
    a lender (her credit union) stands behind her."""
    return (
        rfp is not None
        and rfp.financing is not None
        and rfp.financing.wanted
        and any(a.kind == "ability-to-pay" for a in rfp.attestations or ())
    )


def _decimal(value: Decimal) -> str:
    """A decimal string as the schema wants it (no exponent, at most 2 places)."""
    return format(value.quantize(Decimal("0.01")).normalize(), "f")


class Buying:
    """Steps 1-4 and 10 (see the module docstring).

    Args:
        store: her store.
        policy: her sharing policy.
        pseudonyms, directory: her pseudonyms, and what the parties publish.
        sender: how a message of hers goes out.
        clock: the one clock.
        pipeline: the runtime's pipeline (whether the state machine allows a move).
        ability_to_pay: a source of ability-to-pay attestations for her pseudonyms.
    """

    def __init__(
        self,
        store: BuyerStore,
        policy: SharingPolicy,
        pseudonyms: Pseudonyms,
        directory: Directory,
        sender: Sender,
        clock: Clock,
        pipeline: Pipeline,
        ability_to_pay: AttestationSource | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self.pseudonyms = pseudonyms
        self.directory = directory
        self.sender = sender
        self.clock = clock
        self.pipeline = pipeline
        self.ability_to_pay = ability_to_pay

    def _attestation_for(self, vendor: str, subject: str) -> tuple[Attestation, CredentialRecord]:
        """An ability-to-pay attestation for this pseudonym and vendor only, and her
        record of it."""
        assert self.ability_to_pay is not None
        attestation = build(Attestation, **dict(self.ability_to_pay(subject, vendor)))
        record = CredentialRecord(
            attestation.kind,
            attestation.issuer,
            subject,
            attestation.token,
            format_timestamp(self.clock.now()),
        )
        return attestation, record

    async def history_refs(self, peer: str) -> list[MessageRef]:
        """The kept history a re-engagement cites: references to the exact bytes of
        the messages that made the old relationship (the first intentcast, the
        accepted offer, the deal confirmation, the exit acknowledgement)."""
        accepted = {
            view.id
            for view in await self.store.offer_views(peer=peer)
            if view.record is not None and view.record.status is OfferStatus.ACCEPTED
        }
        history: list[MessageRef] = []
        first_rfi = True
        for entry in await self.store.history(peer=peer, include_refused=False):
            if entry.token is None:
                continue
            if entry.direction is Direction.SENT:
                if entry.type is MessageType.PERSONAL_RFI and first_rfi:
                    history.append(entry.ref())
                    first_rfi = False
                continue
            if entry.type in (MessageType.DEAL_CONFIRMATION, MessageType.EXIT_ACKNOWLEDGEMENT) or (
                entry.type is MessageType.OFFER and entry.message_id in accepted
            ):
                history.append(entry.ref())
        return history

    async def kept_evidence(self, peer: str) -> list[str]:
        """The signed messages of the earlier relationship with ``peer`` she shares when
        she comes back (spec §6.1 ``evidence``): the deal confirmations and invoices it
        signed, as the compact JWS she received, that the vendor verifies with its key
        history and may use (seed 003 step 10); nothing of hers beyond what it sent."""
        return [
            entry.token.decode()
            for entry in await self.store.history(peer=peer, include_refused=False)
            if entry.token is not None
            and entry.direction is Direction.RECEIVED
            and entry.type in EVIDENCE_TYPES
        ]

    # -- step 1: search ----------------------------------------------------------------------------

    async def send_rfis(
        self, vendors: Sequence[str], body: PersonalRfiBody, *, attest: bool = True
    ) -> dict[str, Sent]:
        """Step 1 (search): the same intentcast to many vendors at once, each under
        its own pseudonym, in its own thread (spec §6.1, §3.1).

        An ability-to-pay attestation, when the agent has a source and
        ``attest`` is true, is issued per pseudonym (its ``sub``), so even the
        credentials differ. A vendor she left earlier gets the history she kept
        (re-engagement, spec §7.5). Copies are decorrelated (spec §12).

        Raises:
            LocalProtocolError: the body identifies her, a vendor cannot be
                reached as it publishes itself, or the move is illegal.
            RemoteProtocolError: a vendor refused its RFI.
        """
        check_nothing_identifying(body)

        async def one(vendor: str, backdate: int) -> tuple[str, Sent]:
            await self.sender.pause()
            await self.directory.discover(vendor)
            pseudonym = await self.pseudonyms.ensure(vendor)
            vendor_body = body
            writes: list[DomainWrite] = []
            if attest and self.ability_to_pay is not None and body.attestations is None:
                attestation, credential = self._attestation_for(vendor, pseudonym.identifier)
                vendor_body = revise(vendor_body, attestations=(attestation,))
                writes.append(credential)
            if (
                body.history is None
                and (await core(self.store, vendor)).state is RelationshipState.EXITED
            ):
                # Re-engagement (spec §7.5): she comes back with the history she kept.
                vendor_body = revise(
                    vendor_body,
                    history=tuple(await self.history_refs(vendor)),
                    **present(evidence=tuple(await self.kept_evidence(vendor)) or None),
                )
            reply = outgoing(vendor_body, thread=None, parent=None, writes=writes)
            return vendor, await self.sender.send(vendor, reply, backdate=backdate)

        offsets = self.sender.offsets(len(vendors))
        results = await asyncio.gather(
            *(one(vendor, offset) for vendor, offset in zip(vendors, offsets, strict=True))
        )
        return dict(results)

    async def reengage(self, peer: str, body: PersonalRfiBody) -> Sent:
        """Step 10 (re-engagement): a new RFI to a vendor left earlier, carrying the
        history she kept (spec §6.1 ``history``, :meth:`history_refs`).

        Raises:
            LocalProtocolError: the move is illegal, or the body identifies her.
            RemoteProtocolError: the vendor refused the RFI.
        """
        check_nothing_identifying(body)
        revised = revise(
            body,
            history=tuple(await self.history_refs(peer)),
            **present(evidence=tuple(await self.kept_evidence(peer)) or None),
        )
        return await self.sender.send(peer, outgoing(revised, thread=None, parent=None))

    # -- step 2: engage ----------------------------------------------------------------------------

    async def send_rfp(
        self,
        vendors: Sequence[str],
        body: PersonalRfpBody,
        *,
        postal: Sequence[PostalRecipient] = (),
        approver: str | Mapping[str, str] | None = None,
    ) -> tuple[dict[str, Sent], dict[str, Letter]]:
        """Step 2 (engage): one personal RFP to several vendors (spec §6.2).

        ``recipientCount`` tells each how many received it, but each online
        vendor gets its own copy signed under its own pseudonym, continuing the
        thread of its RFI and naming the offer it follows, at its own random
        moment with its own ``created`` (spec §12). A vendor reached by post
        gets the same kind of signed message, rendered as a letter.

        ``approver`` names the co-decision-maker who must approve the deal:
        his own party id (per vendor, as a mapping, when there are several:
        one id in every copy would link them, VRM-PRIV-002). Her agent never
        holds his key nor signs for him (VRM-BUY-011): his approval must come
        from him (:meth:`accept` takes it).

        Raises:
            LocalProtocolError: the body identifies her, the move is illegal,
                or one approver id is given for several vendors.
            RemoteProtocolError: a vendor refused its RFP.
        """
        check_nothing_identifying(body)
        count = len(vendors) + len(postal)
        if isinstance(approver, str):
            if count > 1:
                raise LocalProtocolError(
                    ErrorCode.ILLEGAL_TRANSITION,
                    "one co-decision-maker id in every copy would link the copies "
                    "(VRM-PRIV-002): give his id for each vendor",
                )
            approver = {party: approver for party in [*vendors, *(p.party_id for p in postal)]}
        approvers = dict(approver or {})
        offsets = iter(self.sender.offsets(count))

        async def compose(vendor: str) -> Reply:
            pseudonym = await self.pseudonyms.ensure(vendor)
            offer = await latest(self.store, vendor, MessageType.OFFER, Direction.RECEIVED)
            rfi = await latest(self.store, vendor, MessageType.PERSONAL_RFI, Direction.SENT)
            changes: dict[str, Any] = {"recipient_count": count}
            writes: list[DomainWrite] = []
            if offer is not None and offer.token is not None:
                changes["in_response_to"] = (offer.ref(),)
            if self.ability_to_pay is not None and body.attestations is None:
                attestation, credential = self._attestation_for(vendor, pseudonym.identifier)
                changes["attestations"] = (attestation,)
                writes.append(credential)
            if vendor in approvers:
                changes["conditions"] = (
                    *(body.conditions or ()),
                    build(
                        Condition,
                        kind="approval-required",
                        description="My partner approves the deal before I accept it.",
                        party=approvers[vendor],
                    ),
                )
            return outgoing(
                revise(body, **changes),
                thread=rfi.thread if rfi is not None else None,
                parent=offer.message_id if offer is not None else None,
                writes=writes,
            )

        async def online(vendor: str, backdate: int) -> tuple[str, Sent]:
            await self.sender.pause()
            await self.directory.discover(vendor)
            return vendor, await self.sender.send(vendor, await compose(vendor), backdate=backdate)

        deliveries = dict(
            await asyncio.gather(*(online(vendor, next(offsets)) for vendor in vendors))
        )
        letters: dict[str, Letter] = {}
        for recipient in postal:
            reply = await compose(recipient.party_id)
            await self.sender.send(
                recipient.party_id,
                reply,
                backdate=next(offsets),
                letter=LetterTo(recipient, letters),
            )
        return deliveries, letters

    async def enter_paper_answer(
        self, peer: str, body: OfferBody | Mapping[str, Any], *, in_reply_to: str
    ) -> Entry:
        """Record an offer that came by post, typed in by her (seed 000 step 3).

        It is kept as an offer marked unsigned (channel ``paper``) in the thread
        of the letter it answers; it ranks beside the signed offers but cannot
        be accepted electronically: there are no signed bytes to bind to.

        Raises:
            LocalProtocolError: UNKNOWN_OFFER, ``in_reply_to`` is not a letter to
                ``peer``; SCHEMA_INVALID, the offer is not a valid offer body.
        """
        letter = await self.store.entry(in_reply_to, direction=Direction.SENT)
        if letter is None or letter.peer != peer or letter.channel != Channel.LETTER:
            raise LocalProtocolError(
                ErrorCode.UNKNOWN_OFFER, f"no letter {in_reply_to} was sent to {peer}"
            )
        now = self.clock.now()
        message_id = new_message_id()
        if not isinstance(body, OfferBody):
            # Judged as the offer message it stands for: errors name the member.
            payload = {
                "vrm": PROTOCOL_VERSION,
                "type": MessageType.OFFER.value,
                "id": message_id,
                "thread": letter.thread,
                "parent": letter.message_id,
                "from": peer,
                "to": [letter.sender],
                "created": format_timestamp(now),
                "expires": format_timestamp(now + timedelta(days=1)),
                "body": dict(body),
            }
            try:
                parsed = parse_message_dict(payload)
            except ProtocolError as error:
                raise LocalProtocolError(error.code, error.detail, path=error.path) from error
            assert isinstance(parsed.body, OfferBody)
            body = parsed.body
        return await self.store.enter_paper_offer(
            Journal(
                peer=peer,
                sender=peer,
                message_id=message_id,
                type=MessageType.OFFER,
                direction=Direction.RECEIVED,
                channel=Channel.PAPER,
                status="typed-in",
                thread=letter.thread,
                parent=letter.message_id,
                at=format_timestamp(now),
            ),
            body,
        )

    # -- step 3: negotiate -------------------------------------------------------------------------

    async def counter(self, offer_id: str, total: Decimal | str) -> Sent:
        """Step 3 (negotiate): a counter-offer at ``total``, superseding the vendor's
        offer (spec §6.3).

        Raises:
            LocalProtocolError: the offer is unknown, closed or superseded.
            RemoteProtocolError: the vendor refused the counter-offer.
        """
        offer = await received_offer(self.store, offer_id)
        body, price = offer.body, offer.body.price
        currency = price.total.currency
        wanted = Decimal(str(total))
        allowance = price.trade_in_allowance
        discount = (
            Decimal(price.subtotal.amount)
            - (Decimal(allowance.amount) if allowance is not None else Decimal(0))
            - wanted
        )
        counter_price = build(
            OfferPrice,
            subtotal=price.subtotal,
            total=Money(amount=_decimal(wanted), currency=currency),
            **present(
                trade_in_allowance=allowance,
                discount=Money(amount=_decimal(discount), currency=currency)
                if discount > 0
                else None,
            ),
        )
        counter = build(
            OfferBody,
            basis="counter",
            valid_until=format_timestamp(self.clock.now() + timedelta(days=2)),
            items=body.items,
            price=counter_price,
            terms=body.terms,
            supersedes=offer.entry.ref(),
            in_response_to=offer.entry.ref(),
            **present(
                options=body.options,
                trade_in=body.trade_in,
                delivery=body.delivery,
                conditions=body.conditions,
            ),
        )
        reply = outgoing(counter, thread=offer.entry.thread, parent=offer_id)
        return await self.sender.send(offer.peer, reply)

    # -- step 4: transact --------------------------------------------------------------------------

    async def accept(
        self,
        offer_id: str,
        *,
        payment: Payment | Mapping[str, Any] | None = None,
        approvals: Sequence[Attestation | Mapping[str, Any]] = (),
        decline_others: bool = True,
    ) -> Sent:
        """Step 4 (transact): accept exactly this offer (spec §6.4).

        Identity is disclosed now and only now, as far as her policy allows at
        acceptance; each category disclosed is logged as shared. When the offer
        (or her RFP) requires a co-decision-maker's approval, the acceptance
        carries the approval he signed himself, given here in ``approvals`` and
        checked against the offer's bytes: her agent never signs for anyone
        else (VRM-BUY-011), so without his approval it does not accept. Then,
        unless ``decline_others`` is false, the other vendors' live offers are
        declined (:meth:`decline_other_vendors`).

        Raises:
            LocalProtocolError: UNKNOWN_OFFER, OFFER_SUPERSEDED, OFFER_EXPIRED,
                OFFER_CLOSED (the ledger), ILLEGAL_TRANSITION for an indicative
                offer, APPROVAL_MISSING when an approval she needs was not given,
                ATTESTATION_INVALID when one given does not approve this offer.
            RemoteProtocolError: the vendor refused the acceptance.
        """
        offer = await received_offer(self.store, offer_id)
        vendor = offer.peer
        pseudonym = await self.pseudonyms.ensure(vendor)
        ref = offer.entry.ref()
        # The ledger speaks first (superseded, expired, closed, indicative): a move
        # the state machine refuses is refused for that reason, before anything else.
        draft = outgoing(OfferAcceptanceBody(offer=ref), thread=offer.entry.thread, parent=offer_id)
        try:
            await self.pipeline.check_send(vendor, draft)
        except LocalProtocolError as error:
            if error.code is not ErrorCode.APPROVAL_MISSING:
                raise
        profile = await self.store.profile()
        details: dict[str, Any] = {}
        disclosed: list[str] = []
        for member, category in ACCEPTANCE_CATEGORIES.items():
            if category in profile and self.policy.may_disclose("acceptance", category):
                details[member] = profile[category]
                disclosed.append(category)
        rfp = await latest(self.store, vendor, MessageType.PERSONAL_RFP, Direction.SENT)
        rfp_message = rfp.model() if rfp is not None else None
        rfp_body = rfp_message.body if isinstance(rfp_message, PersonalRfpMessage) else None
        if payment is None:
            plans = offer.body.financing
            if plans:
                payment = Payment(method="finance", financing_plan=plans[0].plan)
            elif _lined_up_financing(rfp_body):
                # Seed 000: the loan her credit union agreed pays, though the
                # offer names no plan of the vendor's: it is carried into the
                # deal, never replaced by a bank transfer (spec §6.27).
                payment = Payment(method="finance")
            else:
                payment = Payment(method="bank-transfer")
        elif not isinstance(payment, Payment):
            payment = build(Payment, **dict(payment))
        required = [
            condition
            for condition in (
                *((rfp_body.conditions or ()) if rfp_body is not None else ()),
                *(offer.body.conditions or ()),
            )
            if condition.kind == "approval-required"
        ]
        carried = (
            self._approvals_for(
                required, approvals, subject=pseudonym.identifier, vendor=vendor, offer_ref=ref
            )
            if required
            else ()
        )
        trade_in = None
        if rfp_body is not None and rfp_body.trade_in is not None:
            registration = profile.get("vehicle.registration")
            if isinstance(registration, str) and self.policy.may_disclose(
                "acceptance", "vehicle.registration"
            ):
                item = rfp_body.trade_in.item
                trade_in = build(
                    AcceptanceTradeIn,
                    item=build(
                        RegisteredTradeInItem,
                        registration=registration,
                        **{name: value for name, value in item if value is not None},
                    ),
                )
                disclosed.append("vehicle.registration")
        body = build(
            OfferAcceptanceBody,
            offer=ref,
            payment=payment,
            **present(
                identity=build(PersonalDetails, **details) if "name" in details else None,
                approvals=carried or None,
                trade_in=trade_in,
            ),
        )
        reply = outgoing(body, thread=offer.entry.thread, parent=offer_id)
        terms = offer.body.terms
        reply.writes.extend(
            sharing_records(
                self.clock,
                vendor,
                pseudonym.identifier,
                disclosed,
                reply.id,
                f"{terms.id}@{terms.version}",
                ("delivery", "billing"),
            )
        )
        sent = await self.sender.send(vendor, reply)
        if decline_others:
            await self.decline_other_vendors(vendor)
        return sent

    def _approvals_for(
        self,
        required: Sequence[Condition],
        given: Sequence[Attestation | Mapping[str, Any]],
        *,
        subject: str,
        vendor: str,
        offer_ref: MessageRef,
    ) -> tuple[Attestation, ...]:
        """The approvals an acceptance must carry: one from each party an
        ``approval-required`` condition names, signed by that party itself,
        approving exactly this offer (spec §6.4, §10.2).

        Raises:
            LocalProtocolError: APPROVAL_MISSING or ATTESTATION_INVALID.
        """
        offered = [
            item if isinstance(item, Attestation) else build(Attestation, **dict(item))
            for item in given
        ]
        carried: list[Attestation] = []
        for condition in required:
            party = condition.party
            candidates = [a for a in offered if party is None or a.issuer == party]
            if not candidates:
                raise LocalProtocolError(
                    ErrorCode.APPROVAL_MISSING,
                    f"the offer needs the approval of {party or 'a co-decision-maker'}, and her "
                    "agent has none: it never signs for anyone else, so it does not accept "
                    "until he approves himself",
                    path="/body/approvals",
                )
            for approval in candidates:
                try:
                    verified = verify_attestation(
                        {"kind": approval.kind, "issuer": approval.issuer, "token": approval.token},
                        trusted_issuers={approval.issuer: None},
                        subject=subject,
                        audience=vendor,
                        now=self.clock.now(),
                        kind="approval",
                    )
                    statement = AttestationStatement.model_validate(verified.claims)
                except (ProtocolError, ValidationError) as error:
                    raise LocalProtocolError(
                        ErrorCode.ATTESTATION_INVALID, f"the approval given is refused: {error}"
                    ) from error
                approved = statement.approves.offer if statement.approves is not None else None
                if approved != offer_ref:
                    raise LocalProtocolError(
                        ErrorCode.ATTESTATION_INVALID,
                        "the approval given approves another offer",
                        path="/body/approvals",
                    )
                if approval not in carried:
                    carried.append(approval)
        return tuple(carried)

    async def decline_other_vendors(self, chosen: str) -> list[Sent]:
        """Decline the live offers of every other vendor asked, once ``chosen``'s
        offer is accepted (spec §6.5: a buyer that has accepted an offer SHOULD
        decline the open offers of the others), so no dealer keeps a car waiting.

        The declines are decorrelated like copies (spec §12). A vendor that
        refuses its decline does not undo the acceptance: it is skipped (its
        offers stay open in her store and may be declined later).
        """
        now = self.clock.now()
        pending: list[list[str]] = []
        for relationship in await self.store.relationships():
            if relationship.peer == chosen:
                continue
            facts = await self.store.ledger_facts(
                relationship.peer, LedgerQuery(open_offers_of=Role.VENDOR), now
            )
            live = [
                record.id
                for record in facts.offers.values()
                if record.sender is Role.VENDOR and record.live_at(now)
            ]
            if live:
                pending.append(sorted(live))

        async def one(live: list[str], backdate: int) -> list[Sent]:
            await self.sender.pause()
            try:
                return await self.decline(live, reason="other-offer-accepted", backdate=backdate)
            except ProtocolError as error:
                log.info("a decline was not taken: %s", error)
                return []

        offsets = self.sender.offsets(len(pending))
        results = await asyncio.gather(
            *(one(live, offset) for live, offset in zip(pending, offsets, strict=True))
        )
        return [sent for declines in results for sent in declines]

    async def decline(
        self,
        offer_ids: Sequence[str],
        *,
        reason: str = "other-offer-accepted",
        comment: str | None = None,
        backdate: int = 0,
    ) -> list[Sent]:
        """Decline offers, one decline per vendor in its own thread (spec §6.5).

        Raises:
            LocalProtocolError: an offer is unknown or already closed.
            RemoteProtocolError: a vendor refused the decline.
        """
        by_vendor: dict[str, list[OfferView]] = {}
        for offer_id in offer_ids:
            offer = await received_offer(self.store, offer_id)
            by_vendor.setdefault(offer.peer, []).append(offer)
        sent: list[Sent] = []
        for vendor, offers in by_vendor.items():
            body = build(
                OfferDeclineBody,
                offers=tuple(offer.id for offer in offers),
                reason=reason,
                **present(comment=comment),
            )
            reply = outgoing(body, thread=offers[-1].entry.thread, parent=offers[-1].id)
            sent.append(await self.sender.send(vendor, reply, backdate=backdate))
        return sent
