"""What she does as an owner (steps 5-9): welcome, servicing, development, problems, exit.

Her decisions, under her sharing policy (:mod:`reference_buyer.policy`) and
her guards: terms are answered only once the document they name is matched,
by its digest, against what the asserting party publishes on its own origin
(D12; otherwise she shares nothing and says why with a problem report);
nothing identifying goes to a party whose offer she has not accepted
(VRM-PRIV-011, :class:`~reference_buyer.faults.IdentityRule`); data answering a
notice goes only within terms she accepted with that party (VRM-BUY-007); what
she shares is logged, committed with the message that shares it and only if
the party took it. Then a support request, her exit (asking for export and
deletion), and her acknowledgement of a vendor's own exit. Each message is a
typed body sent by :class:`~reference_buyer.outgoing.Sender`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final

from reference_buyer.directory import Directory
from reference_buyer.faults import IdentityRule
from reference_buyer.outgoing import (
    Sender,
    build,
    has_deal,
    received,
    sharing_records,
)
from reference_buyer.policy import (
    ItemDecision,
    SharingPolicy,
    TermsDecision,
    evaluate_data_requests,
    evaluate_service_notice,
    evaluate_terms,
)
from reference_buyer.pseudonyms import Pseudonyms
from reference_buyer.signatories import VERIFIED_SIGNATORIES, SignatoryRule
from reference_buyer.store import BuyerStore, ConsentRecord, Entry, Grant, Withheld
from vrm_agent.clock import Clock
from vrm_agent.inbox import Sent
from vrm_agent.unit import outgoing, present
from vrm_protocol.canonical import message_digest
from vrm_protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.keys import KeySet
from vrm_protocol.models import (
    AcceptedRequest,
    DataItem,
    DeclinedItem,
    DeletionReceipt,
    DeletionRequest,
    ExitAcknowledgementBody,
    ExitNoticeBody,
    ExportRequest,
    NotificationPreferences,
    ProblemReportBody,
    ProblemSubject,
    ReengagementPreferences,
    RefusedRequest,
    ScopedDataRequest,
    ServiceNoticeMessage,
    ServiceResponseBody,
    SupportRequestBody,
    TermsAssertionMessage,
    TermsReference,
    TermsResponseBody,
)
from vrm_protocol.vocabulary import MessageType

__all__ = ["NOT_BEFORE_ACCEPTANCE", "NOT_COVERED", "OWN_RECORDS", "Owning"]

#: The reasons an item is withheld, as her answers state them.
NOT_BEFORE_ACCEPTANCE: Final = (
    "identifying data is shared only with a party whose offer she has accepted (spec §12)"
)
NOT_COVERED: Final = "not covered by terms of sharing she accepted with this party"
#: What she allows after an exit unless she says otherwise: safety and recall
#: matters, only in answer to her own intentcasts (spec §6.13).
DEFAULT_REENGAGEMENT: Final = ReengagementPreferences(
    allowed=True, topics=("safety", "recall"), channel="intentcast-only"
)
#: What she keeps when a vendor leaving the market asks her to delete.
OWN_RECORDS: Final = "the individual's own record of the relationship: hers to keep"


class Owning:
    """Steps 5-9 (see the module docstring).

    Args:
        store: her store.
        policy: her sharing policy.
        pseudonyms, directory: her pseudonyms, and what the parties publish.
        sender: how a message of hers goes out.
        clock: the one clock.
        identity: whether identifying data may go to a party (her guard).
    """

    def __init__(
        self,
        store: BuyerStore,
        policy: SharingPolicy,
        pseudonyms: Pseudonyms,
        directory: Directory,
        sender: Sender,
        clock: Clock,
        identity: IdentityRule,
        *,
        signatories: SignatoryRule = VERIFIED_SIGNATORIES,
        registries: Mapping[str, KeySet] | None = None,
    ) -> None:
        self.signatories = signatories
        #: The terms registries she trusts, and their keys (spec §10.4).
        self.registries: Mapping[str, KeySet] = dict(registries or {})
        self.store = store
        self.policy = policy
        self.pseudonyms = pseudonyms
        self.directory = directory
        self.sender = sender
        self.clock = clock
        self.identity = identity

    async def notifications_allowed(self, peer: str) -> tuple[str, ...]:
        """The notification categories she allowed ``peer``: those of her latest
        terms response it took (none before one)."""
        consents = await self.store.consents(peer)
        return consents[-1].notifications if consents else ()

    # -- step 5: welcome ---------------------------------------------------------------------------

    async def _unmatched_terms(self, party: str, reference: TermsReference | None) -> str | None:
        """Why the terms ``reference`` names cannot be matched, or ``None`` when the
        document fetched from ``party``'s own origin has exactly its digest (D12,
        VRM-BUY-010)."""
        if reference is None:
            return "the message names no terms document"
        try:
            document = await self.directory.terms_document(party, reference.url)
        except LocalProtocolError as error:
            return error.detail
        if message_digest(document) != reference.digest:
            return (
                f"the digest {reference.digest} does not match the terms document published "
                f"at {reference.url}"
            )
        return None

    async def _before_acceptance(self, party: str, decision: TermsDecision) -> TermsDecision:
        """``decision`` with every identifying item refused, while she has accepted no
        offer of ``party`` (spec §12, VRM-PRIV-011: identity is disclosed at
        acceptance, to that party only, and not before)."""
        if self.identity.may_identify(deal=await has_deal(self.store, party)):
            return decision
        return decision.withholding(self.policy.is_identifying, NOT_BEFORE_ACCEPTANCE)

    async def report_problem(
        self, entry: Entry, code: ErrorCode, detail: str, *, path: str | None = None
    ) -> Sent:
        """Tell the sender of ``entry`` why she does not act on it: a
        ``problem-report`` in its thread, answering it (spec §6.15).

        Raises:
            LocalProtocolError: the report would not be a valid message.
            RemoteProtocolError: the counterparty refused it.
        """
        body = build(
            ProblemReportBody,
            regarding=ProblemSubject(id=entry.message_id, **present(digest=entry.digest)),
            code=code.value,
            title=code.info.title,
            detail=detail[:4000],
            **present(path=path),
        )
        reply = outgoing(body, thread=entry.thread, parent=entry.message_id)
        return await self.sender.send(entry.peer, reply)

    async def answer_terms(
        self,
        assertion_id: str,
        *,
        decision: TermsDecision | None = None,
        notifications: Sequence[str] | None = None,
    ) -> tuple[Sent, TermsDecision | None]:
        """Step 5 (welcome): answer a terms-of-sharing assertion (spec §6.8).

        First the terms themselves: the document the assertion names is
        fetched from the asserting party's own origin, within bounds, and its
        digest must match (D12, VRM-BUY-010). When it cannot be matched she
        shares nothing: the answer is a ``problem-report`` of code
        ``reference-mismatch`` and the decision returned is ``None``.

        Then her policy decides item by item (anything left to her is refused
        when no decision is given); an identifying item is refused while she
        has accepted no offer of this party (spec §12, VRM-PRIV-011), whatever
        the policy or the given decision say; ``notifications``, when given, are
        the categories she chooses for this party instead of the decision's;
        data goes only with accepted items her profile holds; the consent record
        and the sharing log are committed with the response, and only if the
        party takes it.

        Raises:
            LocalProtocolError: no such assertion, or the move is illegal.
            RemoteProtocolError: the counterparty refused the response.
        """
        entry = await received(self.store, assertion_id, MessageType.TERMS_ASSERTION)
        message = entry.model()
        assert isinstance(message, TermsAssertionMessage)
        assertion = message.body
        vendor = entry.peer
        mismatch = await self._unmatched_terms(vendor, assertion.terms)
        if mismatch is not None:
            problem = await self.report_problem(
                entry, ErrorCode.REFERENCE_MISMATCH, mismatch, path="/body/terms/digest"
            )
            return problem, None
        try:
            # Spec §10.4, VRM-ATT-012: who signed the terms, verified before sharing.
            self.signatories.check(message, self.registries, self.clock.now())
        except RemoteProtocolError as error:
            problem = await self.report_problem(entry, error.code, error.detail, path=error.path)
            return problem, None
        if decision is None:
            decision = evaluate_terms(assertion, self.policy, now=self.clock.now())
        if notifications is not None:
            decision = dataclasses.replace(decision, notifications=tuple(notifications))
        decision = await self._before_acceptance(vendor, decision.resolved())
        profile = await self.store.profile()
        accepted = tuple(
            build(
                AcceptedRequest,
                item=item.item,
                purposes=item.purposes,
                **present(retention=item.retention),
            )
            for item in decision.accepted
        )
        refused = tuple(
            build(RefusedRequest, item=item.item, reason="; ".join(item.reasons) or "not needed")
            for item in decision.refused
        )
        data = tuple(
            build(DataItem, item=item.item, value=profile[item.item])
            for item in decision.accepted
            if item.item in profile
        )
        body = build(
            TermsResponseBody,
            assertion=entry.ref(),
            decision=decision.decision.value,
            accepted=accepted,
            notification_preferences=build(NotificationPreferences, allowed=decision.notifications),
            **present(refused=refused or None, data=data or None),
        )
        pseudonym = await self.pseudonyms.ensure(vendor)
        reply = outgoing(body, thread=entry.thread, parent=entry.message_id)
        terms_name = f"{assertion.terms.id}@{assertion.terms.version}"
        purposes = {item.item: item.purposes for item in decision.accepted}
        reply.writes.append(
            ConsentRecord(
                peer=vendor,
                assertion_id=entry.message_id,
                assertion_digest=str(entry.digest),
                response_id=reply.id,
                decision=decision.decision.value,
                accepted=tuple(Grant(item.item, item.purposes) for item in decision.accepted),
                refused=tuple(
                    Withheld(item.item, "; ".join(item.reasons) or "not needed")
                    for item in decision.refused
                ),
                notifications=decision.notifications,
                at=format_timestamp(self.clock.now()),
            )
        )
        for item in data:
            reply.writes.extend(
                sharing_records(
                    self.clock,
                    vendor,
                    pseudonym.identifier,
                    [item.item],
                    reply.id,
                    terms_name,
                    purposes.get(item.item, ()),
                )
            )
        return await self.sender.send(vendor, reply), decision

    # -- steps 6 and 7: servicing, development -----------------------------------------------------

    async def answer_service_notice(
        self, notice_id: str, *, by_grant: Collection[str] = ()
    ) -> Sent:
        """Steps 6-7 (servicing, development): answer a service notice as her policy
        says (spec §6.10).

        Proposed work the policy declines is declined with its reason (seed
        000: the tyres stay); the rest is accepted. Scoped data requests (a
        programme asking for travel dates, seed 000 step 7) carry data only
        where she agreed to share it with this party for that purpose
        (VRM-BUY-007): under terms the notice names, whose document she matched
        (D12; otherwise she shares nothing and answers with a
        ``problem-report`` of code ``reference-mismatch``) and that her policy
        accepts; or, when it names none, within the items and purposes of the
        terms response in force with this party. Nothing identifying goes to a
        party whose offer she has not accepted (VRM-PRIV-011). What is shared is
        logged. An accepted item named in ``by_grant`` is accepted without its
        value: she shares it by an access grant instead (spec §6.18), which the
        party reads from her agent while it is in force.

        Raises:
            LocalProtocolError: no such notice, or the move is illegal.
            RemoteProtocolError: the counterparty refused the response.
        """
        entry = await received(self.store, notice_id, MessageType.SERVICE_NOTICE)
        message = entry.model()
        assert isinstance(message, ServiceNoticeMessage)
        notice = message.body
        vendor = entry.peer
        requests = notice.data_requests or ()
        if requests and notice.terms is not None:
            mismatch = await self._unmatched_terms(vendor, notice.terms)
            if mismatch is not None:
                return await self.report_problem(
                    entry, ErrorCode.REFERENCE_MISMATCH, mismatch, path="/body/terms/digest"
                )
        work = evaluate_service_notice([p.code for p in notice.proposals or ()], self.policy)
        items = (
            evaluate_data_requests(requests, self.policy)
            if notice.terms is not None
            else await self._covered_by_consent(vendor, requests)
        )
        if not self.identity.may_identify(deal=await has_deal(self.store, vendor)):
            items = tuple(
                ItemDecision(i.item, False, (), None, (*i.reasons, NOT_BEFORE_ACCEPTANCE))
                if i.accepted and self.policy.is_identifying(i.item)
                else i
                for i in items
            )
        profile = await self.store.profile()
        accepted = (*work.accepted, *(i.item for i in items if i.accepted))
        declined = (
            *(build(DeclinedItem, item=item, reason=why) for item, why in work.declined),
            *(
                build(DeclinedItem, item=i.item, reason="; ".join(i.reasons) or "not needed")
                for i in items
                if not i.accepted
            ),
        )
        data = tuple(
            build(DataItem, item=i.item, value=profile[i.item])
            for i in items
            if i.accepted and i.item in profile and i.item not in by_grant
        )
        if not declined:
            decision = "accept"
        elif not accepted:
            decision = "decline"
        else:
            decision = "accept-in-part"
        body = build(
            ServiceResponseBody,
            notice=entry.ref(),
            decision=decision,
            **present(accepted=accepted or None, declined=declined or None, data=data or None),
        )
        pseudonym = await self.pseudonyms.ensure(vendor)
        reply = outgoing(body, thread=entry.thread, parent=entry.message_id)
        terms = notice.terms
        terms_name = f"{terms.id}@{terms.version}" if terms is not None else None
        purposes = {i.item: i.purposes for i in items if i.accepted}
        for item in data:
            reply.writes.extend(
                sharing_records(
                    self.clock,
                    vendor,
                    pseudonym.identifier,
                    [item.item],
                    reply.id,
                    terms_name,
                    purposes.get(item.item, ()),
                )
            )
        return await self.sender.send(vendor, reply)

    async def _covered_by_consent(
        self, party: str, requests: Sequence[ScopedDataRequest]
    ) -> tuple[ItemDecision, ...]:
        """Data requests that name no terms: each is granted only within an item and
        purposes she accepted in the terms response in force with ``party``, less
        what she withdrew or narrowed since."""
        consents = await self.store.consents(party)
        in_force = (
            {grant.item: set(grant.purposes) for grant in consents[-1].accepted}
            if (consents)
            else {}
        )
        # What she withdrew or narrowed since (spec §6.20) is in force too.
        since = consents[-1].at if consents else ""
        for changed in await self.store.consent_changes(party):
            if changed.at < since:
                continue
            for change in changed.changes:
                item = str(change.get("item"))
                if change.get("action") == "withdraw":
                    in_force.pop(item, None)
                elif change.get("action") == "narrow" and item in in_force:
                    in_force[item] &= {str(p) for p in change.get("purposes") or ()}
        decided = []
        for request in requests:
            asked = tuple(request.purposes)
            if asked and request.item in in_force and set(asked) <= in_force[request.item]:
                decided.append(ItemDecision(request.item, True, asked, None, ()))
            else:
                decided.append(ItemDecision(request.item, False, (), None, (NOT_COVERED,)))
        return tuple(decided)

    # -- step 8: problems --------------------------------------------------------------------------

    async def support_request(
        self,
        peer: str,
        *,
        subject: str,
        description: str,
        severity: str = "normal",
        regarding: str | None = None,
    ) -> Sent:
        """Step 8 (problems): tell the counterparty something is wrong (spec §6.11).

        Raises:
            LocalProtocolError: the relationship is in no state to raise a problem.
            RemoteProtocolError: the counterparty refused the request.
        """
        about = await self.store.entry(regarding) if regarding is not None else None
        if about is not None and about.token is None:
            about = None  # a paper answer: nothing signed to refer to
        body = build(
            SupportRequestBody,
            subject=subject,
            description=description,
            severity=severity,
            **present(regarding=about.ref() if about is not None else None),
        )
        reply = outgoing(
            body,
            thread=about.thread if about is not None else None,
            parent=about.message_id if about is not None else None,
        )
        return await self.sender.send(peer, reply)

    # -- step 9: exit ------------------------------------------------------------------------------

    async def exit(
        self,
        peer: str,
        *,
        reason: str = "need-changed",
        explanation: str | None = None,
        reengagement: ReengagementPreferences | Mapping[str, Any] | None = None,
    ) -> Sent:
        """Step 9 (exit): leave the relationship, asking for export and deletion (spec §6.13).

        The acknowledgement is checked against her sharing log when it arrives
        (:mod:`reference_buyer.exits`); the outcome is in ``store.exits()``.

        Raises:
            LocalProtocolError: the relationship cannot be exited in its state.
            RemoteProtocolError: the counterparty refused the notice.
        """
        if reengagement is None:
            reengagement = DEFAULT_REENGAGEMENT
        preferences = (
            reengagement
            if isinstance(reengagement, ReengagementPreferences)
            else build(ReengagementPreferences, **dict(reengagement))
        )
        body = build(
            ExitNoticeBody,
            reason=reason,
            effective_at=format_timestamp(self.clock.now()),
            export=ExportRequest(requested=True, media_type="application/json"),
            deletion=DeletionRequest(requested=True),
            reengagement=preferences,
            **present(explanation=explanation),
        )
        signed = [e for e in await self.store.history(peer=peer, include_refused=False) if e.token]
        last = signed[-1] if signed else None
        reply = outgoing(
            body,
            thread=last.thread if last is not None else None,
            parent=last.message_id if last is not None else None,
        )
        return await self.sender.send(peer, reply)

    async def acknowledge_exit(self, notice_id: str) -> Sent:
        """Acknowledge a vendor's exit (it leaves the market, spec §6.13): her own
        record of the relationship is hers to keep, so she deletes nothing and
        says so.

        Raises:
            LocalProtocolError: no such notice, or the move is illegal.
            RemoteProtocolError: the vendor refused the acknowledgement.
        """
        entry = await received(self.store, notice_id, MessageType.EXIT_NOTICE)
        pseudonym = await self.pseudonyms.ensure(entry.peer)
        body = build(
            ExitAcknowledgementBody,
            notice=entry.ref(),
            deletion_receipt=build(
                DeletionReceipt,
                relationship=pseudonym.identifier,
                deleted=(),
                deleted_at=format_timestamp(self.clock.now()),
                retained=({"item": "relationship.history", "basis": OWN_RECORDS},),
            ),
        )
        reply = outgoing(body, thread=entry.thread, parent=entry.message_id)
        return await self.sender.send(entry.peer, reply)
