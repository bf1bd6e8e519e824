"""The message types of the protocol, GENERATED from schemas/ — do not edit.

One member per message schema (``schemas/<message-type>.schema.json``), in
the order of the envelope's ``type`` enum, which ``python -m tools.codegen``
writes too (with ``message.schema.json``'s ``oneOf``); a new type is
appended. ``python -m tools.codegen --check`` fails when this file and the
schemas disagree. Import ``MessageType`` from :mod:`vrm_protocol.vocabulary`.
Source digest: sha256:d481d6481388da5f.
"""

from enum import StrEnum

__all__ = ["MessageType"]


class MessageType(StrEnum):
    """Every message type of protocol version 1.0 (spec §6), one per message schema.

    The five core documents come first; the others are the replies a complete
    lifecycle needs.
    """

    PERSONAL_RFI = "personal-rfi"
    """Personal RFI (``personal-rfi.schema.json``)."""

    PERSONAL_RFP = "personal-rfp"
    """Personal RFP (``personal-rfp.schema.json``)."""

    OFFER = "offer"
    """Offer (``offer.schema.json``)."""

    TERMS_ASSERTION = "terms-assertion"
    """Terms assertion (``terms-assertion.schema.json``)."""

    EXIT_NOTICE = "exit-notice"
    """Exit notice (``exit-notice.schema.json``)."""

    OFFER_ACCEPTANCE = "offer-acceptance"
    """Offer acceptance (``offer-acceptance.schema.json``)."""

    OFFER_DECLINE = "offer-decline"
    """Offer decline (``offer-decline.schema.json``)."""

    DEAL_CONFIRMATION = "deal-confirmation"
    """Deal confirmation (``deal-confirmation.schema.json``)."""

    DEAL_REFUSAL = "deal-refusal"
    """Deal refusal (``deal-refusal.schema.json``)."""

    TERMS_RESPONSE = "terms-response"
    """Terms response (``terms-response.schema.json``)."""

    SERVICE_NOTICE = "service-notice"
    """Service notice (``service-notice.schema.json``)."""

    SERVICE_RESPONSE = "service-response"
    """Service response (``service-response.schema.json``)."""

    SUPPORT_REQUEST = "support-request"
    """Support request (``support-request.schema.json``)."""

    SUPPORT_RESOLUTION = "support-resolution"
    """Support resolution (``support-resolution.schema.json``)."""

    EXIT_ACKNOWLEDGEMENT = "exit-acknowledgement"
    """Exit acknowledgement (``exit-acknowledgement.schema.json``)."""

    PROBLEM_REPORT = "problem-report"
    """Problem report (``problem-report.schema.json``)."""

    RECEIPT = "receipt"
    """Receipt (``receipt.schema.json``)."""

    DELIVERY_NOTICE = "delivery-notice"
    """Delivery notice (``delivery-notice.schema.json``)."""

    HANDOVER_RECORD = "handover-record"
    """Handover record (``handover-record.schema.json``)."""

    INSPECTION_RESULT = "inspection-result"
    """Inspection result (``inspection-result.schema.json``)."""

    INVOICE = "invoice"
    """Invoice (``invoice.schema.json``)."""

    INVOICE_QUERY = "invoice-query"
    """Invoice query (``invoice-query.schema.json``)."""

    PAYMENT_NOTICE = "payment-notice"
    """Payment notice (``payment-notice.schema.json``)."""

    PAYMENT_RECEIPT = "payment-receipt"
    """Payment receipt (``payment-receipt.schema.json``)."""

    ANSWER = "answer"
    """Answer (``answer.schema.json``)."""

    QUESTION = "question"
    """Question (``question.schema.json``)."""

    SUPPORT_ESCALATION = "support-escalation"
    """Support escalation (``support-escalation.schema.json``)."""

    ACCESS_GRANT = "access-grant"
    """Access grant (``access-grant.schema.json``)."""

    ACCESS_REVOCATION = "access-revocation"
    """Access revocation (``access-revocation.schema.json``)."""

    CONSENT_CHANGE = "consent-change"
    """Consent change (``consent-change.schema.json``)."""

    CONSENT_RECEIPT = "consent-receipt"
    """Consent receipt (``consent-receipt.schema.json``)."""

    ADDON_OFFER = "addon-offer"
    """Add-on offer (``addon-offer.schema.json``)."""

    ADDON_RESPONSE = "addon-response"
    """Add-on response (``addon-response.schema.json``)."""

    APPOINTMENT_BOOKING = "appointment-booking"
    """Appointment booking (``appointment-booking.schema.json``)."""

    APPOINTMENT_CANCELLATION = "appointment-cancellation"
    """Appointment cancellation (``appointment-cancellation.schema.json``)."""

    APPOINTMENT_CONFIRMATION = "appointment-confirmation"
    """Appointment confirmation (``appointment-confirmation.schema.json``)."""

    APPOINTMENT_PROPOSAL = "appointment-proposal"
    """Appointment proposal (``appointment-proposal.schema.json``)."""

    SERVICE_RECORD = "service-record"
    """Service record (``service-record.schema.json``)."""

    DETAILS_RECEIPT = "details-receipt"
    """Details receipt (``details-receipt.schema.json``)."""

    DETAILS_UPDATE = "details-update"
    """Details update (``details-update.schema.json``)."""

    PROGRAMME_ENROLMENT = "programme-enrolment"
    """Programme enrolment (``programme-enrolment.schema.json``)."""

    TERMS_AGREEMENT = "terms-agreement"
    """Terms agreement (``terms-agreement.schema.json``)."""

    TERMS_PROFFER = "terms-proffer"
    """Terms proffer (``terms-proffer.schema.json``)."""

    MATERIAL_DISPATCH = "material-dispatch"
    """Material dispatch (``material-dispatch.schema.json``)."""

    MATERIAL_REQUEST = "material-request"
    """Material request (``material-request.schema.json``)."""
