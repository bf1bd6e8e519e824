"""Pydantic models of every protocol message, GENERATED from schemas/ — do not edit.

Regenerate with ``python -m tools.codegen``; ``python -m tools.codegen --check``
fails when this file and the schemas disagree. Source digest: sha256:d481d6481388da5f.
"""

from types import MappingProxyType
from typing import Annotated, Final, Literal, TypeAlias

from pydantic import AfterValidator, Field, JsonValue, StringConstraints

from vrm_protocol.models._base import (
    JsonBool,
    JsonStr,
    NotNull,
    VRMModel,
    conforms_to,
    json_int,
    unique_items,
)
from vrm_protocol.vocabulary import MessageType

__all__ = [
    "MESSAGE_MODELS",
    "AcceptanceTradeIn",
    "AcceptedRequest",
    "AccessGrantBody",
    "AccessGrantMessage",
    "AccessRevocationBody",
    "AccessRevocationMessage",
    "Addon",
    "AddonDeal",
    "AddonOfferBody",
    "AddonOfferMessage",
    "AddonResponseBody",
    "AddonResponseMessage",
    "AgreementRef",
    "AnswerBody",
    "AnswerMessage",
    "AppliedChange",
    "AppointmentBookingBody",
    "AppointmentBookingMessage",
    "AppointmentCancellationBody",
    "AppointmentCancellationMessage",
    "AppointmentConfirmationBody",
    "AppointmentConfirmationMessage",
    "AppointmentProposalBody",
    "AppointmentProposalMessage",
    "AppointmentSlot",
    "ApprovedMatter",
    "AssertingParty",
    "Attestation",
    "AttestationClaims",
    "AttestationStatement",
    "BaseMessage",
    "Commitments",
    "Condition",
    "ConsentChangeBody",
    "ConsentChangeItem",
    "ConsentChangeMessage",
    "ConsentReceiptBody",
    "ConsentReceiptMessage",
    "Currency",
    "DataCategory",
    "DataExport",
    "DataItem",
    "DataRecipient",
    "DataRequest",
    "DataValue",
    "Date",
    "Deal",
    "DealConfirmationBody",
    "DealConfirmationMessage",
    "DealDelivery",
    "DealRefusalBody",
    "DealRefusalMessage",
    "DealTradeIn",
    "Decimal",
    "DeclinedItem",
    "DeletionReceipt",
    "DeletionRequest",
    "DeliveryConsent",
    "DeliveryDeal",
    "DeliveryItem",
    "DeliveryNoticeBody",
    "DeliveryNoticeMessage",
    "DetailsReceiptBody",
    "DetailsReceiptMessage",
    "DetailsUpdateBody",
    "DetailsUpdateMessage",
    "Digest",
    "Duration",
    "EscalationLevel",
    "ExitAcknowledgementBody",
    "ExitAcknowledgementMessage",
    "ExitNoticeBody",
    "ExitNoticeMessage",
    "ExportRequest",
    "Extensions",
    "Feature",
    "FinancingPlan",
    "FinancingRequest",
    "Handover",
    "HandoverDeal",
    "HandoverItem",
    "HandoverRecordBody",
    "HandoverRecordMessage",
    "InspectionEvidence",
    "InspectionReason",
    "InspectionResultBody",
    "InspectionResultMessage",
    "InvoiceBody",
    "InvoiceDeal",
    "InvoiceDifference",
    "InvoiceLine",
    "InvoiceMessage",
    "InvoiceQueryBody",
    "InvoiceQueryMessage",
    "KebabToken",
    "Location",
    "MaterialDispatchBody",
    "MaterialDispatchMessage",
    "MaterialItem",
    "MaterialRequestBody",
    "MaterialRequestMessage",
    "MediaType",
    "Message",
    "MessageId",
    "MessageRef",
    "Money",
    "MoneyRange",
    "NotificationCategory",
    "NotificationPreferences",
    "OfferAcceptanceBody",
    "OfferAcceptanceMessage",
    "OfferBody",
    "OfferDeclineBody",
    "OfferDeclineMessage",
    "OfferDelivery",
    "OfferItem",
    "OfferMessage",
    "OfferOption",
    "OfferPrice",
    "OfferTradeIn",
    "PartyId",
    "Payment",
    "PaymentFinancing",
    "PaymentNoticeBody",
    "PaymentNoticeMessage",
    "PaymentReceiptBody",
    "PaymentReceiptMessage",
    "PersonalDetails",
    "PersonalRfiBody",
    "PersonalRfiMessage",
    "PersonalRfpBody",
    "PersonalRfpMessage",
    "PostalAddress",
    "ProblemReportBody",
    "ProblemReportMessage",
    "ProblemSubject",
    "ProductCategory",
    "ProgrammeEnrolmentBody",
    "ProgrammeEnrolmentMessage",
    "ProgrammeTerms",
    "ProposedWork",
    "Purpose",
    "QuestionBody",
    "QuestionMessage",
    "ReceiptBody",
    "ReceiptMessage",
    "ReengagementPreferences",
    "RefusedRequest",
    "RegisteredTradeInItem",
    "ReplyTo",
    "ResponseItem",
    "RetainedConsentItem",
    "RetainedItem",
    "Retention",
    "RfiContext",
    "RfiIntent",
    "RfpDelivery",
    "RfpItem",
    "RfpRequirements",
    "ScopedDataRequest",
    "ServiceNoticeBody",
    "ServiceNoticeMessage",
    "ServicePart",
    "ServiceRecordBody",
    "ServiceRecordMessage",
    "ServiceResponseBody",
    "ServiceResponseMessage",
    "ServiceWork",
    "SupportEscalationBody",
    "SupportEscalationMessage",
    "SupportRequestBody",
    "SupportRequestMessage",
    "SupportResolutionBody",
    "SupportResolutionMessage",
    "TermsAgreementBody",
    "TermsAgreementMessage",
    "TermsAssertionBody",
    "TermsAssertionMessage",
    "TermsProfferBody",
    "TermsProfferMessage",
    "TermsReference",
    "TermsResponseBody",
    "TermsResponseMessage",
    "Timestamp",
    "Topic",
    "TradeIn",
    "TradeInItem",
]


PartyId: TypeAlias = Annotated[
    JsonStr,
    StringConstraints(
        min_length=8,
        max_length=4096,
        pattern=(
            "^(did:jwk:[A-Za-z0-9_-]+|https?://([a-z0-9]([a-z0-9-]{0,61}["
            "a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*|\\[[0-9a-f"
            ":.]+\\])(:[1-9][0-9]{0,4})?(/([A-Za-z0-9._~-]|%[0-9A-F]{2})+"
            ")*)$"
        ),
    ),
]
"""Party identifier.

Who a party is (spec §3), compared as an exact string and so written in one spelling: a buyer's
pairwise pseudonym `did:jwk:<base64url(JWK)>` in its canonical form (§3.1), or the base URL of a
vendor's or third party's agent (§3.2): `https://` (`http://` for tests on one machine only),
the host in lower case, a port only when it is not the scheme's default, and the path, if any,
without a trailing slash, query or fragment.
"""


MessageId: TypeAlias = Annotated[
    JsonStr,
    StringConstraints(
        min_length=45,
        max_length=45,
        pattern=("^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
    ),
]
"""Message identifier.

A message's globally unique id: `urn:uuid:` followed by a lowercase UUID, generated at random
(version 4) by the sender (spec §5.1).
"""


Timestamp: TypeAlias = Annotated[
    JsonStr,
    StringConstraints(
        max_length=20, pattern="^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-5][0-9]Z$"
    ),
    conforms_to("date-time"),
]
"""Timestamp.

An instant: RFC 3339 date-time in UTC with a `Z` designator and whole seconds, e.g.
`2026-11-23T10:00:00Z` (spec §5.1). A date that does not exist and a leap second (second `60`)
are not instants: the pattern allows seconds `00` to `59` only, and the `date-time` format
refuses 30 February (spec §9.1).
"""


Date: TypeAlias = Annotated[
    JsonStr,
    StringConstraints(max_length=10, pattern="^[0-9]{4}-[0-9]{2}-[0-9]{2}$"),
    conforms_to("date"),
]
"""Calendar date.

A calendar date (RFC 3339 full-date), e.g. `2027-03-01`.
"""


Decimal: TypeAlias = Annotated[
    JsonStr, StringConstraints(max_length=18, pattern="^-?(0|[1-9][0-9]{0,11})(\\.[0-9]{1,4})?$")
]
"""Decimal.

An exact decimal number written as a string (at most 12 integer and 4 fraction digits). Money
and rates are never JSON numbers, so no value is ever a binary float.
"""


Currency: TypeAlias = Annotated[
    JsonStr, StringConstraints(min_length=3, max_length=3, pattern="^[A-Z]{3}$")
]
"""Currency code.

An ISO 4217 alphabetic currency code, e.g. `GBP`.
"""


class Money(VRMModel):
    """Money.

    An amount in one currency.
    """

    amount: Decimal = Field(
        description="The amount as a decimal string, e.g. `28500` or `312.50`.",
    )

    currency: Currency = Field(
        description="The ISO 4217 currency of the amount.",
    )


class MoneyRange(VRMModel):
    """Money range.

    A range of amounts, e.g. a budget; the minimum may be left out. Both bounds use the same
    currency.
    """

    min: Annotated[Money | None, NotNull] = Field(
        default=None,
        description="The lowest amount of the range (inclusive), when there is one.",
    )

    max: Money = Field(
        description="The highest amount of the range (inclusive).",
    )


Digest: TypeAlias = Annotated[
    JsonStr, StringConstraints(min_length=51, max_length=51, pattern="^sha-256:[A-Za-z0-9_-]{43}$")
]
"""Message digest.

`sha-256:` followed by the unpadded base64url SHA-256 of the exact bytes digested (for a
message: its compact JWS token, spec §8.5).
"""


class MessageRef(VRMModel):
    """Message reference.

    Binds a reply to the exact bytes of a message received: its id and the digest of its compact
    JWS token (spec §8.5).
    """

    id: MessageId = Field(
        description="The id of the message referred to.",
    )

    digest: Digest = Field(
        description="The digest of the message's compact JWS token as received.",
    )


DataCategory: TypeAlias = Annotated[
    JsonStr,
    StringConstraints(
        min_length=3, max_length=100, pattern="^[a-z0-9]+(-[a-z0-9]+)*(\\.[a-z0-9]+(-[a-z0-9]+)*)+$"
    ),
]
"""Data category.

A category of personal or product data: dotted lowercase kebab-case labels, most general first,
e.g. `contact.email`, `vehicle.vin`, `travel.dates`: a value of the data-categories registry
(`schemas/registries/data-categories.json`, spec §16.8), or one a published specification
defines.
"""


ProductCategory: TypeAlias = Annotated[
    JsonStr,
    StringConstraints(
        min_length=1, max_length=100, pattern="^[a-z0-9]+(-[a-z0-9]+)*(\\.[a-z0-9]+(-[a-z0-9]+)*)*$"
    ),
]
"""Product category.

What kind of product or service is wanted: dotted lowercase kebab-case labels, most general
first, e.g. `vehicles.cars`.
"""


Purpose: TypeAlias = Annotated[
    JsonStr, StringConstraints(min_length=1, max_length=64, pattern="^[a-z0-9]+(-[a-z0-9]+)*$")
]
"""Purpose of processing.

Why data is asked for, in kebab-case: a value of the purposes registry
(`schemas/registries/purposes.json`, spec §16.7), or a token a published specification defines.
"""


KebabToken: TypeAlias = Annotated[
    JsonStr, StringConstraints(min_length=1, max_length=64, pattern="^[a-z0-9]+(-[a-z0-9]+)*$")
]
"""Kebab-case token.

A short machine-readable token in lowercase kebab-case, e.g. `home-delivery`.
"""


Duration: TypeAlias = Annotated[
    JsonStr,
    StringConstraints(
        min_length=3, max_length=32, pattern="^P([0-9]+Y)?([0-9]+M)?([0-9]+W)?([0-9]+D)?$"
    ),
]
"""Duration.

An ISO 8601 duration in years, months, weeks and days, e.g. `P2Y`, `P90D`, `P1Y6M`.
"""


class Retention(VRMModel):
    """Retention.

    How long data is kept, and on what basis.
    """

    period: Duration = Field(
        description="How long the data is kept after it is received.",
    )

    basis: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=200)] | None, NotNull
    ] = Field(
        default=None,
        description=(
            "Why it is kept that long, e.g. a legal obligation or the purpose's natural end."
        ),
    )


class TermsReference(VRMModel):
    """Terms reference.

    Names one version of a published terms document (e.g. a standard terms of sharing) and binds
    it by digest.
    """

    id: Annotated[JsonStr, StringConstraints(min_length=1, max_length=100)] = Field(
        description="The terms document's stable identifier, e.g. `kantara-terms-of-sharing`.",
    )

    version: Annotated[JsonStr, StringConstraints(min_length=1, max_length=32)] = Field(
        description="The version of the document, e.g. `1.0`.",
    )

    url: Annotated[
        JsonStr, StringConstraints(min_length=1, max_length=2048), conforms_to("uri")
    ] = Field(
        description="Where the document is published (identifies it; receivers need not fetch it).",
    )

    digest: Digest = Field(
        description="The digest of the document's bytes, so that both sides name the same text.",
    )


class Attestation(VRMModel):
    """Attestation.

    A third party's signed statement about the sender (spec §10): a compact JWS with `typ`
    `vrm-attestation+jws` whose claims are described by `attestation.schema.json`.
    """

    kind: Annotated[
        JsonStr, StringConstraints(min_length=1, max_length=64, pattern="^[a-z0-9]+(-[a-z0-9]+)*$")
    ] = Field(
        description=(
            "What is attested: `ability-to-pay` (spec §10.1), `approval` "
            "(§10.2), `terms-signatory`, or another registered kebab-case "
            "kind."
        ),
    )

    issuer: PartyId = Field(
        description=(
            "Who issued and signed the attestation (a credit union, a "
            "co-decision-maker's pseudonym, a terms registry)."
        ),
    )

    token: Annotated[
        JsonStr,
        StringConstraints(
            min_length=1,
            max_length=16384,
            pattern=(
                "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+((~[A-Za-z0"
                "-9_-]+)*~[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+)?$"
            ),
        ),
    ] = Field(
        description=(
            "The attestation as a compact JWS (`header.payload.signature`, "
            "base64url), or, with `format` `dc+sd-jwt`, an SD-JWT VC "
            "presentation with its key-binding JWT "
            "(`<jwt>~<disclosure>~...~<kb-jwt>`, spec §10.5)."
        ),
    )

    format: Annotated[Literal["vrm-attestation+jws", "dc+sd-jwt"] | None, NotNull] = Field(
        default=None,
        description=(
            "How `token` is made: `vrm-attestation+jws` (the default, spec "
            "§10.3) or `dc+sd-jwt`, a selective-disclosure credential with "
            "holder key binding (spec §10.5)."
        ),
    )


class Feature(VRMModel):
    """Feature.

    A wanted feature of a product and how much it matters.
    """

    name: Annotated[JsonStr, StringConstraints(min_length=1, max_length=100)] = Field(
        description="The feature, preferably as a kebab-case token, e.g. `isofix`.",
    )

    importance: Literal["must", "should", "nice"] = Field(
        description=(
            "How much the feature matters: `must` (a requirement), `should`, or `nice` (to have)."
        ),
    )

    detail: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)] | None, NotNull
    ] = Field(
        default=None,
        description="Free-text detail, e.g. `MP3 playback from a phone`.",
    )


class Location(VRMModel):
    """Coarse location.

    Where, coarsely: a country and at most a postcode area or region. Never a street address
    (spec §12).
    """

    country: Annotated[
        JsonStr, StringConstraints(min_length=1, max_length=2, pattern="^[A-Z]{2}$")
    ] = Field(
        description="ISO 3166-1 alpha-2 country code.",
    )

    postcode_area: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=4, pattern="^[A-Z0-9]{1,4}$")]
        | None,
        NotNull,
    ] = Field(
        default=None,
        alias="postcodeArea",
        description=(
            "The outward (area or district) part of a postcode only, e.g. "
            "`SW1`; never a full postcode."
        ),
    )

    region: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=100)] | None, NotNull
    ] = Field(
        default=None,
        description="A region or city name, e.g. `London`.",
    )


class Condition(VRMModel):
    """Condition.

    A condition that must hold for a deal to complete.
    """

    kind: Literal[
        "concurrent-exchange", "approval-required", "inspection", "financing-approval", "other"
    ] = Field(
        description=(
            "The kind of condition: both handovers at once "
            "(`concurrent-exchange`), a co-decision-maker's approval "
            "(`approval-required`), an `inspection`, a `financing-approval`, "
            "or `other`."
        ),
    )

    description: Annotated[JsonStr, StringConstraints(min_length=1, max_length=1000)] = Field(
        description="What the condition says, in words.",
    )

    party: Annotated[PartyId | None, NotNull] = Field(
        default=None,
        description="The party who must act or approve, when there is one.",
    )


Handover: TypeAlias = Literal["with-delivery", "before-delivery", "after-delivery"]
"""Handover timing.

When a traded-in item (or its papers) changes hands relative to delivery of the new item:
`with-delivery` (at the same time, concurrently), `before-delivery`, or `after-delivery`.
"""


class TradeInItem(VRMModel):
    """Trade-in item.

    The item a buyer offers in part exchange, described without anything that identifies it or
    its owner (no registration: spec §12).
    """

    description: Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)] = Field(
        description="What the item is, e.g. `2019 sports coupe, grey`.",
    )

    make: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=100)] | None, NotNull
    ] = Field(
        default=None,
        description="The make, e.g. `Mazda`.",
    )

    model: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=100)] | None, NotNull
    ] = Field(
        default=None,
        description="The model, e.g. `MX-5`.",
    )

    year: Annotated[Annotated[int, json_int(ge=1900, le=2100)] | None, NotNull] = Field(
        default=None,
        description="The model year.",
    )

    mileage: Annotated[Annotated[int, json_int(ge=0, le=10000000)] | None, NotNull] = Field(
        default=None,
        description="The odometer reading in miles or kilometres as the market uses.",
    )


class TradeIn(VRMModel):
    """Trade-in.

    A part exchange: the item and when it and its papers change hands.
    """

    item: TradeInItem = Field(
        description="The item traded in.",
    )

    handover: Handover = Field(
        description="When the item changes hands.",
    )

    papers_handover: Annotated[Handover | None, NotNull] = Field(
        default=None,
        alias="papersHandover",
        description=(
            "When the item's ownership papers change hands (the same as the item when left out)."
        ),
    )


class FinancingRequest(VRMModel):
    """Financing request.

    Whether the buyer wants financing, and for how long at most.
    """

    wanted: JsonBool = Field(
        description="True when the buyer wants to pay by financing.",
    )

    max_term_months: Annotated[Annotated[int, json_int(ge=1, le=120)] | None, NotNull] = Field(
        default=None,
        alias="maxTermMonths",
        description="The longest term acceptable, in months.",
    )


class PostalAddress(VRMModel):
    """Postal address.

    A postal address (personal data: only after acceptance or under accepted terms).
    """

    lines: Annotated[
        tuple[Annotated[JsonStr, StringConstraints(min_length=1, max_length=200)], ...],
        Field(min_length=1, max_length=5),
    ] = Field(
        description="The street lines, most specific first.",
    )

    postcode: Annotated[JsonStr, StringConstraints(min_length=1, max_length=16)] = Field(
        description="The full postcode.",
    )

    country: Annotated[
        JsonStr, StringConstraints(min_length=1, max_length=2, pattern="^[A-Z]{2}$")
    ] = Field(
        description="ISO 3166-1 alpha-2 country code.",
    )


class PersonalDetails(VRMModel):
    """Personal details.

    Who the buyer is. Disclosed only when accepting an offer (spec §6.4, §12); never in an RFI
    or RFP.
    """

    name: Annotated[JsonStr, StringConstraints(min_length=1, max_length=200)] = Field(
        description="The buyer's name.",
    )

    email: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=320), conforms_to("email")]
        | None,
        NotNull,
    ] = Field(
        default=None,
        description="An e-mail address.",
    )

    phone: Annotated[
        Annotated[
            JsonStr, StringConstraints(min_length=1, max_length=32, pattern="^\\+[0-9 ]{6,30}$")
        ]
        | None,
        NotNull,
    ] = Field(
        default=None,
        description="A telephone number in international form, e.g. `+44 20 7946 0000`.",
    )

    address: Annotated[PostalAddress | None, NotNull] = Field(
        default=None,
        description="The postal address, when delivery needs it.",
    )


NotificationCategory: TypeAlias = Literal[
    "safety",
    "recall",
    "technical",
    "maintenance",
    "warranty",
    "promotions",
    "new-products",
    "events",
]
"""Notification category.

A category of notification an individual may allow (spec §6.8): `safety`, `recall`, `technical`,
`maintenance`, `warranty`, `promotions`, `new-products`, `events`.
"""


Topic: TypeAlias = Annotated[
    JsonStr, StringConstraints(min_length=1, max_length=64, pattern="^[a-z0-9]+(-[a-z0-9]+)*$")
]
"""Topic.

What a notice or offer is about: a notification category or another kebab-case topic, e.g.
`safety`, `test-drive`, `service-reminder`.
"""


class ReengagementPreferences(VRMModel):
    """Re-engagement preferences.

    Whether, about what, until when and how a counterparty may approach an individual after an
    exit (spec §6.13, §4 step 10).
    """

    allowed: JsonBool = Field(
        description="True when the counterparty may approach the individual again at all.",
    )

    topics: Annotated[
        Annotated[tuple[Topic, ...], Field(max_length=32), AfterValidator(unique_items)] | None,
        NotNull,
    ] = Field(
        default=None,
        description="The topics allowed (all allowed topics when left out).",
    )

    until: Annotated[Timestamp | None, NotNull] = Field(
        default=None,
        description="When the permission ends.",
    )

    channel: Annotated[Literal["intentcast-only", "vendor-may-contact"] | None, NotNull] = Field(
        default=None,
        description=(
            "How contact may happen: only by answering the individual's own "
            "intentcasts (`intentcast-only`), or by the counterparty's own "
            "message (`vendor-may-contact`)."
        ),
    )


DataValue: TypeAlias = (
    Annotated[JsonStr, StringConstraints(min_length=1, max_length=4000)] | PostalAddress
)
"""Data value.

The value of one data item: a string, or a postal address for address categories.
"""


class DataItem(VRMModel):
    """Data item.

    One item of data shared under accepted terms.
    """

    item: DataCategory = Field(
        description="The data category, which the terms accepted.",
    )

    value: DataValue = Field(
        description="The data itself.",
    )


MediaType: TypeAlias = Annotated[
    JsonStr,
    StringConstraints(
        max_length=128, pattern="^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$"
    ),
]
"""Media type.

An IANA media type, e.g. `application/json`.
"""


Extensions: TypeAlias = dict[
    Annotated[
        JsonStr,
        StringConstraints(
            max_length=128, pattern="^[a-z0-9]+(-[a-z0-9]+)*(\\.[a-z0-9]+(-[a-z0-9]+)*)+$"
        ),
    ],
    JsonValue,
]
"""Extensions.

Open data outside the protocol (spec §5.4): a map from reverse-DNS names (`com.example.colour`)
to any JSON value. Receivers ignore extensions they do not understand.
"""


class AgreementRef(VRMModel):
    """Agreement reference.

    Names one agreement of the MyTerms roster (spec §6.70) by its id, version and the digest of
    its text.
    """

    id: KebabToken = Field(
        description="The agreement's id in the roster, e.g. `myterms-sd-bb`.",
    )

    version: Annotated[
        JsonStr, StringConstraints(max_length=16, pattern="^[0-9]+(\\.[0-9]+)*$")
    ] = Field(
        description="The agreement's version, e.g. `1.0`.",
    )

    digest: Digest = Field(
        description="The digest of the agreement's text as the roster gives it.",
    )


class ReplyTo(VRMModel):
    """Reply address.

    Where the sender wants replies delivered.
    """

    inbox: Annotated[
        JsonStr, StringConstraints(min_length=1, max_length=2048), conforms_to("uri")
    ] = Field(
        description="The URL of the sender's inbox (spec §11.3).",
    )


class BaseMessage(VRMModel):
    """Envelope.

    The members every message shares (spec §5). The body is an open object here; each message
    type's schema closes it.

    The base of every message model: each message type narrows `type` to its own value and
    `body` to its own body model.
    """

    vrm: Literal["1.0"] = Field(
        description="The protocol version the message is written in (spec §15).",
    )

    type: Literal[
        "personal-rfi",
        "personal-rfp",
        "offer",
        "terms-assertion",
        "exit-notice",
        "offer-acceptance",
        "offer-decline",
        "deal-confirmation",
        "deal-refusal",
        "terms-response",
        "service-notice",
        "service-response",
        "support-request",
        "support-resolution",
        "exit-acknowledgement",
        "problem-report",
        "receipt",
        "delivery-notice",
        "handover-record",
        "inspection-result",
        "invoice",
        "invoice-query",
        "payment-notice",
        "payment-receipt",
        "answer",
        "question",
        "support-escalation",
        "access-grant",
        "access-revocation",
        "consent-change",
        "consent-receipt",
        "addon-offer",
        "addon-response",
        "appointment-booking",
        "appointment-cancellation",
        "appointment-confirmation",
        "appointment-proposal",
        "service-record",
        "details-receipt",
        "details-update",
        "programme-enrolment",
        "terms-agreement",
        "terms-proffer",
        "material-dispatch",
        "material-request",
    ] = Field(
        description="The message type (spec §6); selects the body's schema.",
    )

    id: MessageId = Field(
        description="This message's id, unique for its sender (spec §9.3).",
    )

    thread: MessageId = Field(
        description=(
            "The id of the message that started the thread; a message that "
            "starts a thread names its own id (spec §5.2)."
        ),
    )

    parent: Annotated[MessageId | None, NotNull] = Field(
        default=None,
        description="The id of the message this one answers, when it answers one (spec §5.2).",
    )

    from_: PartyId = Field(
        alias="from",
        description="The sender; the signing key must belong to it (spec §8.4).",
    )

    to: Annotated[
        tuple[PartyId, ...], Field(min_length=1, max_length=32), AfterValidator(unique_items)
    ] = Field(
        description=(
            "The audience: every intended recipient; a receiver not listed "
            "rejects the message (spec §9.2)."
        ),
    )

    created: Timestamp = Field(
        description="When the sender created the message.",
    )

    expires: Timestamp = Field(
        description="After this instant receivers reject the message (spec §9.1).",
    )

    reply_to: Annotated[ReplyTo | None, NotNull] = Field(
        default=None,
        alias="replyTo",
        description=(
            "Where replies go; when left out, replies wait in the recipient's mailbox (spec §11.4)."
        ),
    )

    body: VRMModel = Field(
        description="The type-specific content, defined by the message type's schema.",
    )

    extensions: Annotated[Extensions | None, NotNull] = Field(
        default=None,
        description="Open data outside the protocol, keyed by reverse-DNS name (spec §5.4).",
    )


class ApprovedMatter(VRMModel):
    """Approved matter.

    What a co-decision-maker approves.
    """

    offer: Annotated[MessageRef | None, NotNull] = Field(
        default=None,
        description="The exact offer approved, when the approval is for one offer.",
    )

    summary: Annotated[JsonStr, StringConstraints(min_length=1, max_length=1000)] = Field(
        description="The approval in words, e.g. `Prius with premium sound, up to GBP 31,000`.",
    )


class AttestationStatement(VRMModel):
    """Attestation statement.

    The statement an attestation makes. `ability-to-pay` uses `range` (and `purpose`);
    `approval` uses `approves` (and `relation`); `terms-signatory` uses `terms`.
    """

    range: Annotated[MoneyRange | None, NotNull] = Field(
        default=None,
        description=(
            "Ability to pay: the range within which the subject can pay; not "
            "the amount of any loan (spec §10.1)."
        ),
    )

    purpose: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=200)] | None, NotNull
    ] = Field(
        default=None,
        description="Ability to pay: what the funds are for, e.g. `vehicle purchase`.",
    )

    approves: Annotated[ApprovedMatter | None, NotNull] = Field(
        default=None,
        description="Approval: what the co-decision-maker approves (spec §10.2).",
    )

    relation: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=64)] | None, NotNull
    ] = Field(
        default=None,
        description="Approval: how the approver relates to the subject, e.g. `spouse`.",
    )

    terms: Annotated[TermsReference | None, NotNull] = Field(
        default=None,
        description="Terms signatory: the terms document the subject has signed.",
    )


class AttestationClaims(VRMModel):
    """Attestation claims.

    The payload of a third-party attestation: a compact JWS with `typ` `vrm-attestation+jws`
    (spec §10). It binds a statement about the subject (a buyer's pseudonym) to its audience and
    lifetime, so that it cannot be lifted into another relationship.
    """

    iss: PartyId = Field(
        description="The issuer: the party that signed the attestation.",
    )

    sub: PartyId = Field(
        description=(
            "The subject: the buyer's pairwise pseudonym the statement is "
            "about, or, for a party attestation (`terms-signatory`, spec "
            "§10.4), the attested party's own id."
        ),
    )

    aud: Annotated[
        Annotated[
            tuple[PartyId, ...], Field(min_length=1, max_length=32), AfterValidator(unique_items)
        ]
        | None,
        NotNull,
    ] = Field(
        default=None,
        description=(
            "The parties the attestation is meant for. Required in an "
            "attestation about a buyer's pseudonym (spec §10.3); omitted in a"
            " party attestation (spec §10.4), which any receiver may verify."
        ),
    )

    jti: MessageId = Field(
        description="The attestation's unique id.",
    )

    iat: Timestamp = Field(
        description="When the attestation was issued.",
    )

    exp: Timestamp = Field(
        description="When the attestation stops being valid.",
    )

    kind: Annotated[
        JsonStr, StringConstraints(min_length=1, max_length=64, pattern="^[a-z0-9]+(-[a-z0-9]+)*$")
    ] = Field(
        description=(
            "What is attested: `ability-to-pay` (spec §10.1), `approval` "
            "(§10.2), `terms-signatory`, or another registered kind; must "
            "equal the `kind` beside the token."
        ),
    )

    claims: AttestationStatement = Field(
        description="What the issuer states; which members are present depends on `kind`.",
    )


class RfiIntent(VRMModel):
    """RFI intent.

    What the individual wants.
    """

    category: ProductCategory = Field(
        description="The kind of product, e.g. `vehicles.cars`.",
    )

    summary: Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)] = Field(
        description="The want in a sentence.",
    )

    features: Annotated[Annotated[tuple[Feature, ...], Field(max_length=50)] | None, NotNull] = (
        Field(
            default=None,
            description="Wanted features.",
        )
    )

    quantity: Annotated[Annotated[int, json_int(ge=1, le=10000)] | None, NotNull] = Field(
        default=None,
        description="How many.",
    )


class RfiContext(VRMModel):
    """RFI context.

    The individual's situation, coarse enough not to identify them.
    """

    location: Annotated[Location | None, NotNull] = Field(
        default=None,
        description="Roughly where (never an address).",
    )

    need_by: Annotated[Date | None, NotNull] = Field(
        default=None,
        alias="needBy",
        description="When the product is needed by.",
    )

    situation: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=1000)] | None, NotNull
    ] = Field(
        default=None,
        description="The situation in words, e.g. `current lease ends in March`.",
    )


class PersonalRfiBody(VRMModel):
    """Personal RFI body.

    What is wanted, for how much, in what context. Carries nothing identifying: no name, contact
    or address (spec §12).
    """

    intent: RfiIntent = Field(
        description="What the individual wants.",
    )

    budget: MoneyRange = Field(
        description="The budget range.",
    )

    priorities: Annotated[
        Annotated[tuple[KebabToken, ...], Field(max_length=20), AfterValidator(unique_items)]
        | None,
        NotNull,
    ] = Field(
        default=None,
        description="What matters most, most important first, e.g. `child-friendly`.",
    )

    context: Annotated[RfiContext | None, NotNull] = Field(
        default=None,
        description="The individual's situation, instead of their identity.",
    )

    financing: Annotated[FinancingRequest | None, NotNull] = Field(
        default=None,
        description="Whether financing is wanted.",
    )

    trade_in: Annotated[TradeIn | None, NotNull] = Field(
        default=None,
        alias="tradeIn",
        description="An item offered in part exchange (without its registration).",
    )

    attestations: Annotated[
        Annotated[tuple[Attestation, ...], Field(max_length=10)] | None, NotNull
    ] = Field(
        default=None,
        description="Third-party attestations, e.g. a credit union's ability to pay (spec §10.1).",
    )

    history: Annotated[Annotated[tuple[MessageRef, ...], Field(max_length=100)] | None, NotNull] = (
        Field(
            default=None,
            description=(
                "Re-engagement: messages of an earlier relationship with the "
                "recipient that the individual kept and shares (spec §4 step 10)."
            ),
        )
    )

    response_by: Timestamp = Field(
        alias="responseBy",
        description="When answers are wanted by.",
    )

    evidence: Annotated[
        Annotated[
            tuple[
                Annotated[
                    JsonStr,
                    StringConstraints(
                        min_length=1,
                        max_length=65536,
                        pattern="^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$",
                    ),
                ],
                ...,
            ],
            Field(max_length=20),
        ]
        | None,
        NotNull,
    ] = Field(
        default=None,
        description=(
            "Signed messages of an earlier relationship with the recipient "
            "that the individual kept and shares with this request (spec "
            "§6.1): each the compact JWS exactly as she received it (a deal "
            "confirmation, an invoice, a service notice). The recipient "
            "verifies them with its key history (§13.4) and uses them for "
            "this request only, as part of its context (§12)."
        ),
    )


class PersonalRfiMessage(BaseMessage):
    """Personal RFI.

    A pseudonymous request for information (an intentcast): what the individual wants, in
    context, with no identifying data (spec §6.1).
    """

    type: Literal["personal-rfi"] = Field(
        description="Always `personal-rfi`.",
    )

    body: PersonalRfiBody = Field(
        description="The `personal-rfi` body.",
    )


class RfpItem(VRMModel):
    """RFP item.

    The product required.
    """

    category: ProductCategory = Field(
        description="The kind of product.",
    )

    description: Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)] = Field(
        description="The product in words.",
    )

    make: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=100)] | None, NotNull
    ] = Field(
        default=None,
        description="The make, e.g. `Toyota`.",
    )

    model: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=100)] | None, NotNull
    ] = Field(
        default=None,
        description="The model, e.g. `Prius`.",
    )

    year: Annotated[Annotated[int, json_int(ge=1900, le=2100)] | None, NotNull] = Field(
        default=None,
        description="The model year.",
    )


class RfpRequirements(VRMModel):
    """RFP requirements.

    The item, features and options required.
    """

    item: RfpItem = Field(
        description="The item required.",
    )

    features: Annotated[Annotated[tuple[Feature, ...], Field(max_length=50)] | None, NotNull] = (
        Field(
            default=None,
            description="Required or wanted features.",
        )
    )

    options: Annotated[
        Annotated[
            tuple[Annotated[JsonStr, StringConstraints(min_length=1, max_length=100)], ...],
            Field(max_length=50),
            AfterValidator(unique_items),
        ]
        | None,
        NotNull,
    ] = Field(
        default=None,
        description="Factory or dealer options wanted.",
    )

    quantity: Annotated[Annotated[int, json_int(ge=1, le=10000)] | None, NotNull] = Field(
        default=None,
        description="How many.",
    )


class RfpDelivery(VRMModel):
    """RFP delivery.

    Where, when and how delivery is wanted.
    """

    location: Annotated[Location | None, NotNull] = Field(
        default=None,
        description="Roughly where (the full address is disclosed only on acceptance).",
    )

    wanted_by: Annotated[Date | None, NotNull] = Field(
        default=None,
        alias="wantedBy",
        description="When delivery is wanted by.",
    )

    method: Annotated[KebabToken | None, NotNull] = Field(
        default=None,
        description="How, e.g. `home-delivery` or `collection`.",
    )


class PersonalRfpBody(VRMModel):
    """Personal RFP body.

    The requirement, budget, financing, delivery, trade-in and conditions a proposal must meet.
    Carries nothing identifying.
    """

    requirements: RfpRequirements = Field(
        description="What is required.",
    )

    budget: MoneyRange = Field(
        description="The budget range.",
    )

    financing: Annotated[FinancingRequest | None, NotNull] = Field(
        default=None,
        description="Whether financing is wanted.",
    )

    delivery: Annotated[RfpDelivery | None, NotNull] = Field(
        default=None,
        description="Where, when and how delivery is wanted.",
    )

    trade_in: Annotated[TradeIn | None, NotNull] = Field(
        default=None,
        alias="tradeIn",
        description="An item offered in part exchange, and when it and its papers are handed over.",
    )

    attestations: Annotated[
        Annotated[tuple[Attestation, ...], Field(max_length=10)] | None, NotNull
    ] = Field(
        default=None,
        description="Third-party attestations, e.g. a credit union's ability to pay.",
    )

    conditions: Annotated[
        Annotated[tuple[Condition, ...], Field(max_length=20)] | None, NotNull
    ] = Field(
        default=None,
        description="Conditions a deal must meet, e.g. approval by a co-decision-maker.",
    )

    in_response_to: Annotated[
        Annotated[tuple[MessageRef, ...], Field(max_length=32)] | None, NotNull
    ] = Field(
        default=None,
        alias="inResponseTo",
        description="The RFI or offers this RFP follows up.",
    )

    recipient_count: Annotated[Annotated[int, json_int(ge=1, le=100)] | None, NotNull] = Field(
        default=None,
        alias="recipientCount",
        description=(
            "How many vendors receive a copy of this RFP (including any "
            "reached by post), so that each knows it competes."
        ),
    )

    response_by: Timestamp = Field(
        alias="responseBy",
        description="When proposals are wanted by.",
    )

    evidence: Annotated[
        Annotated[
            tuple[
                Annotated[
                    JsonStr,
                    StringConstraints(
                        min_length=1,
                        max_length=65536,
                        pattern="^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$",
                    ),
                ],
                ...,
            ],
            Field(max_length=20),
        ]
        | None,
        NotNull,
    ] = Field(
        default=None,
        description=(
            "Signed messages of an earlier relationship with the recipient "
            "that the individual kept and shares with this request (spec "
            "§6.1): each the compact JWS exactly as she received it (a deal "
            "confirmation, an invoice, a service notice). The recipient "
            "verifies them with its key history (§13.4) and uses them for "
            "this request only, as part of its context (§12)."
        ),
    )


class PersonalRfpMessage(BaseMessage):
    """Personal RFP.

    A pseudonymous request for proposals: a specific requirement that vendors answer with
    offers. A request for several vendors is sent as one copy per vendor, each from that
    relationship's pseudonym, stating the number of copies (spec §6.2).
    """

    type: Literal["personal-rfp"] = Field(
        description="Always `personal-rfp`.",
    )

    body: PersonalRfpBody = Field(
        description="The `personal-rfp` body.",
    )


class OfferItem(VRMModel):
    """Offer item.

    One line of an offer.
    """

    sku: Annotated[JsonStr, StringConstraints(min_length=1, max_length=100)] = Field(
        description="The vendor's stock-keeping unit.",
    )

    description: Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)] = Field(
        description="The item in words.",
    )

    quantity: Annotated[int, json_int(ge=1, le=10000)] = Field(
        description="How many.",
    )

    unit_price: Money = Field(
        alias="unitPrice",
        description="The price of one.",
    )


class OfferOption(VRMModel):
    """Offer option.

    An option included in the offer.
    """

    code: Annotated[JsonStr, StringConstraints(min_length=1, max_length=100)] = Field(
        description="The option code, e.g. `premium-sound-system`.",
    )

    description: Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)] = Field(
        description="The option in words.",
    )

    price: Money = Field(
        description="The option's price.",
    )


class OfferPrice(VRMModel):
    """Offer price.

    The price breakdown; total = subtotal - trade-in allowance - discount.
    """

    subtotal: Money = Field(
        description="Items and options together.",
    )

    trade_in_allowance: Annotated[Money | None, NotNull] = Field(
        default=None,
        alias="tradeInAllowance",
        description="What the trade-in is worth against the price.",
    )

    discount: Annotated[Money | None, NotNull] = Field(
        default=None,
        description="Any discount.",
    )

    total: Money = Field(
        description="What the buyer pays.",
    )


class FinancingPlan(VRMModel):
    """Financing plan.

    One financing plan on offer.
    """

    plan: Annotated[JsonStr, StringConstraints(min_length=1, max_length=100)] = Field(
        description="The plan's name or code, e.g. `hp-48`.",
    )

    apr: Decimal = Field(
        description="The annual percentage rate, e.g. `4.9`.",
    )

    term_months: Annotated[int, json_int(ge=1, le=120)] = Field(
        alias="termMonths",
        description="The term in months.",
    )

    deposit: Annotated[Money | None, NotNull] = Field(
        default=None,
        description="The deposit due at the start.",
    )

    monthly_payment: Money = Field(
        alias="monthlyPayment",
        description="Each monthly payment.",
    )

    total_payable: Money = Field(
        alias="totalPayable",
        description="Everything paid over the term, deposit included.",
    )

    requires_attestation: Annotated[JsonBool | None, NotNull] = Field(
        default=None,
        alias="requiresAttestation",
        description="True when taking this plan requires an ability-to-pay attestation.",
    )


class OfferTradeIn(VRMModel):
    """Offer trade-in.

    The vendor's valuation of the trade-in and the handover it proposes.
    """

    item: TradeInItem = Field(
        description="The item valued.",
    )

    valuation: Money = Field(
        description="What the vendor pays for it.",
    )

    handover: Handover = Field(
        description="When the item changes hands.",
    )

    papers_handover: Annotated[Handover | None, NotNull] = Field(
        default=None,
        alias="papersHandover",
        description="When the ownership papers change hands.",
    )


class OfferDelivery(VRMModel):
    """Offer delivery.

    How and when the item is delivered.
    """

    method: KebabToken = Field(
        description="How, e.g. `home-delivery`.",
    )

    by: Annotated[Date | None, NotNull] = Field(
        default=None,
        description="Delivered no later than this date.",
    )


class OfferBody(VRMModel):
    """Offer body.

    What is offered, at what price, under which terms, until when.
    """

    basis: Literal["indicative", "binding", "counter"] = Field(
        description=(
            "`indicative` (not acceptable as it stands), `binding` "
            "(acceptance closes a deal), or `counter` (a counter-proposal "
            "that supersedes the offer it names)."
        ),
    )

    valid_until: Timestamp = Field(
        alias="validUntil",
        description="The offer cannot be accepted after this instant.",
    )

    items: Annotated[tuple[OfferItem, ...], Field(min_length=1, max_length=50)] = Field(
        description="The items offered.",
    )

    options: Annotated[Annotated[tuple[OfferOption, ...], Field(max_length=50)] | None, NotNull] = (
        Field(
            default=None,
            description="Options included in the price.",
        )
    )

    price: OfferPrice = Field(
        description="The price breakdown.",
    )

    financing: Annotated[
        Annotated[tuple[FinancingPlan, ...], Field(max_length=10)] | None, NotNull
    ] = Field(
        default=None,
        description="Financing plans on offer.",
    )

    trade_in: Annotated[OfferTradeIn | None, NotNull] = Field(
        default=None,
        alias="tradeIn",
        description="The valuation of the buyer's trade-in and its handover.",
    )

    delivery: Annotated[OfferDelivery | None, NotNull] = Field(
        default=None,
        description="How and when delivery happens.",
    )

    conditions: Annotated[
        Annotated[tuple[Condition, ...], Field(max_length=20)] | None, NotNull
    ] = Field(
        default=None,
        description="Conditions of the deal, e.g. concurrent exchange of the trade-in.",
    )

    terms: TermsReference = Field(
        description="The terms of sale the offer is made under.",
    )

    supersedes: Annotated[MessageRef | None, NotNull] = Field(
        default=None,
        description=(
            "The offer this one replaces, bound to the exact bytes of that "
            "offer as the sender holds it; the replaced offer can no longer "
            "be accepted (spec §6.3, §7.4)."
        ),
    )

    topic: Annotated[Topic | None, NotNull] = Field(
        default=None,
        description=(
            "For a development offer after the deal: what it is about, "
            "checked against the individual's notification and re-engagement "
            "preferences."
        ),
    )

    in_response_to: Annotated[MessageRef | None, NotNull] = Field(
        default=None,
        alias="inResponseTo",
        description="The RFI or RFP this offer answers.",
    )


class OfferMessage(BaseMessage):
    """Offer.

    A proposal: indicative (an answer to an RFI), binding (acceptable as it stands), or a
    counter-offer that supersedes an earlier offer (spec §6.3).
    """

    type: Literal["offer"] = Field(
        description="Always `offer`.",
    )

    body: OfferBody = Field(
        description="The `offer` body.",
    )


class AssertingParty(VRMModel):
    """Asserting party.

    The party that asserts the terms.
    """

    id: PartyId = Field(
        description="Its identifier.",
    )

    name: Annotated[JsonStr, StringConstraints(min_length=1, max_length=200)] = Field(
        description="Its name.",
    )

    role: Literal["vendor", "third-party", "manufacturer"] = Field(
        description="`vendor`, `third-party` (e.g. a component maker), or `manufacturer`.",
    )


class DataRecipient(VRMModel):
    """Data recipient.

    Another party that receives the data.
    """

    id: Annotated[PartyId | None, NotNull] = Field(
        default=None,
        description="Its identifier, when it has one.",
    )

    name: Annotated[JsonStr, StringConstraints(min_length=1, max_length=200)] = Field(
        description="Its name.",
    )

    role: KebabToken = Field(
        description="Its role, e.g. `processor` or `manufacturer`.",
    )


class DataRequest(VRMModel):
    """Data request.

    One data category asked for.
    """

    item: DataCategory = Field(
        description="The data category.",
    )

    purposes: Annotated[
        tuple[Purpose, ...], Field(min_length=1, max_length=20), AfterValidator(unique_items)
    ] = Field(
        description="What it is used for.",
    )

    recipients: Annotated[
        Annotated[tuple[DataRecipient, ...], Field(max_length=20)] | None, NotNull
    ] = Field(
        default=None,
        description="Who else receives it (nobody when left out).",
    )

    retention: Retention = Field(
        description="How long it is kept.",
    )

    required: JsonBool = Field(
        description="True when the relationship cannot work without it.",
    )


class Commitments(VRMModel):
    """Commitments.

    What the party undertakes.
    """

    will_do: Annotated[
        tuple[Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)], ...],
        Field(max_length=50),
    ] = Field(
        alias="willDo",
        description="What it will do.",
    )

    will_not_do: Annotated[
        tuple[Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)], ...],
        Field(max_length=50),
    ] = Field(
        alias="willNotDo",
        description="What it will not do.",
    )


class ProgrammeTerms(VRMModel):
    """Programme terms.

    The programme whose terms these are, and the enrolment they answer.
    """

    code: KebabToken = Field(
        description="The programme's code, as her enrolment names it.",
    )

    enrolment: MessageRef = Field(
        description="Her programme-enrolment, by the digest of its token as received.",
    )


class TermsAssertionBody(VRMModel):
    """Terms assertion body.

    The terms, the party bound by them, the data requested and the commitments made.
    """

    terms: TermsReference = Field(
        description="The terms document asserted, e.g. a standard terms of sharing.",
    )

    party: AssertingParty = Field(
        description="Who asserts the terms and is bound by them.",
    )

    on_behalf_of: Annotated[PartyId | None, NotNull] = Field(
        default=None,
        alias="onBehalfOf",
        description="When the assertion is relayed: the party the asserting party acts for.",
    )

    requests: Annotated[tuple[DataRequest, ...], Field(min_length=1, max_length=100)] = Field(
        description="The data asked for.",
    )

    commitments: Commitments = Field(
        description="What the party will and will not do with the data.",
    )

    notification_categories: Annotated[
        Annotated[
            tuple[NotificationCategory, ...], Field(max_length=8), AfterValidator(unique_items)
        ]
        | None,
        NotNull,
    ] = Field(
        default=None,
        alias="notificationCategories",
        description=(
            "The notification categories the party may send, for the individual to choose from."
        ),
    )

    attestations: Annotated[
        Annotated[tuple[Attestation, ...], Field(max_length=10)] | None, NotNull
    ] = Field(
        default=None,
        description=(
            "Attestations backing the assertion, e.g. that the party signed "
            "the terms (`terms-signatory`)."
        ),
    )

    valid_until: Timestamp = Field(
        alias="validUntil",
        description="The assertion cannot be accepted after this instant.",
    )

    programme: Annotated[ProgrammeTerms | None, NotNull] = Field(
        default=None,
        description=(
            "When the terms are those of a programme she asked to join: the "
            "programme and her enrolment (spec §6.72)."
        ),
    )


class TermsAssertionMessage(BaseMessage):
    """Terms assertion.

    A vendor's or third party's terms of sharing: what data it asks for, why, for how long, and
    what it will and will not do (spec §6.7).
    """

    type: Literal["terms-assertion"] = Field(
        description="Always `terms-assertion`.",
    )

    body: TermsAssertionBody = Field(
        description="The `terms-assertion` body.",
    )


class ExportRequest(VRMModel):
    """Export request.

    Whether to export the data held, and in what form; a vendor leaving the market carries the
    export itself in `data`, with its `digest` (spec §6.13).
    """

    requested: JsonBool = Field(
        description="True when an export is wanted.",
    )

    media_type: Annotated[MediaType | None, NotNull] = Field(
        default=None,
        alias="mediaType",
        description="The form wanted, e.g. `application/json`.",
    )

    data: Annotated[
        dict[Annotated[JsonStr, StringConstraints(pattern="^[A-Za-z0-9._:-]{1,200}$")], JsonValue]
        | None,
        NotNull,
    ] = Field(
        default=None,
        description=(
            "A vendor leaving the market only: the data it held for the "
            "relationship, keyed by data category or record name, as in an "
            "exit-acknowledgement's export (spec §6.14)."
        ),
    )

    digest: Annotated[Digest | None, NotNull] = Field(
        default=None,
        description="With `data`: the digest of the RFC 8785 canonical JSON of the data.",
    )


class DeletionRequest(VRMModel):
    """Deletion request.

    Whether to delete the data held.
    """

    requested: JsonBool = Field(
        description="True when deletion is wanted.",
    )

    categories: Annotated[
        Annotated[tuple[DataCategory, ...], Field(max_length=100), AfterValidator(unique_items)]
        | None,
        NotNull,
    ] = Field(
        default=None,
        description="Only these categories (all when left out).",
    )


class RetainedItem(VRMModel):
    """Retained item.

    Data kept after an exit.
    """

    item: Annotated[JsonStr, StringConstraints(min_length=1, max_length=200)] = Field(
        description="The data category or record name.",
    )

    basis: Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)] = Field(
        description="Why it must be kept, e.g. `legal-obligation: tax records`.",
    )

    until: Annotated[Date | None, NotNull] = Field(
        default=None,
        description="When it will be deleted.",
    )


class DeletionReceipt(VRMModel):
    """Deletion receipt.

    What was deleted, when, and what is retained on what basis.
    """

    relationship: PartyId = Field(
        description="The individual (pseudonym) whose data was deleted.",
    )

    deleted: Annotated[
        tuple[Annotated[JsonStr, StringConstraints(min_length=1, max_length=200)], ...],
        Field(max_length=500),
        AfterValidator(unique_items),
    ] = Field(
        description="What was deleted.",
    )

    deleted_at: Timestamp = Field(
        alias="deletedAt",
        description="When the deletion completed.",
    )

    retained: Annotated[
        Annotated[tuple[RetainedItem, ...], Field(max_length=100)] | None, NotNull
    ] = Field(
        default=None,
        description="What is kept despite the request, and why.",
    )


class ExitNoticeBody(VRMModel):
    """Exit notice body.

    Why the relationship ends, when, what happens to the data, and whether re-engagement is
    welcome.
    """

    reason: Literal[
        "problem", "need-changed", "circumstances-changed", "vendor-leaving-market", "other"
    ] = Field(
        description=(
            "`problem`, `need-changed`, `circumstances-changed`, "
            "`vendor-leaving-market`, or `other`."
        ),
    )

    explanation: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=1000)] | None, NotNull
    ] = Field(
        default=None,
        description="The reason in words.",
    )

    effective_at: Timestamp = Field(
        alias="effectiveAt",
        description="When the exit takes effect.",
    )

    export: ExportRequest = Field(
        description="Whether the data held is to be exported first.",
    )

    deletion: DeletionRequest = Field(
        description="Whether the data held is to be deleted.",
    )

    reengagement: ReengagementPreferences = Field(
        description="Whether and how the counterparty may approach the individual again.",
    )

    deletion_receipt: Annotated[DeletionReceipt | None, NotNull] = Field(
        default=None,
        alias="deletionReceipt",
        description=(
            "A vendor leaving the market only: what it deleted when it gave "
            "notice and what it retains, on what basis (spec §6.13)."
        ),
    )


class ExitNoticeMessage(BaseMessage):
    """Exit notice.

    Ends a relationship, with a reason, export and deletion requests, and the terms of any
    re-engagement (spec §6.13).
    """

    type: Literal["exit-notice"] = Field(
        description="Always `exit-notice`.",
    )

    body: ExitNoticeBody = Field(
        description="The `exit-notice` body.",
    )


class Payment(VRMModel):
    """Payment.

    How the buyer pays.
    """

    method: Literal["bank-transfer", "card", "finance"] = Field(
        description="`bank-transfer`, `card` or `finance`.",
    )

    financing_plan: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=100)] | None, NotNull
    ] = Field(
        default=None,
        alias="financingPlan",
        description="With `finance`: the offered plan chosen.",
    )


class RegisteredTradeInItem(VRMModel):
    """Registered trade-in item.

    The traded-in item with its identifying registration (disclosed only on acceptance, spec
    §6.4, §12).
    """

    description: Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)] = Field(
        description="What the item is.",
    )

    make: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=100)] | None, NotNull
    ] = Field(
        default=None,
        description="The make.",
    )

    model: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=100)] | None, NotNull
    ] = Field(
        default=None,
        description="The model.",
    )

    year: Annotated[Annotated[int, json_int(ge=1900, le=2100)] | None, NotNull] = Field(
        default=None,
        description="The model year.",
    )

    mileage: Annotated[Annotated[int, json_int(ge=0, le=10000000)] | None, NotNull] = Field(
        default=None,
        description="The odometer reading in miles or kilometres as the market uses.",
    )

    registration: Annotated[JsonStr, StringConstraints(min_length=1, max_length=20)] = Field(
        description="The registration plate.",
    )


class AcceptanceTradeIn(VRMModel):
    """Acceptance trade-in.

    The trade-in the offer valued, now with its registration. When it changes hands is the
    offer's `tradeIn.handover` and `papersHandover`, and nothing the acceptance says (spec
    §6.4).
    """

    item: RegisteredTradeInItem = Field(
        description="The item traded in, with its registration.",
    )


class OfferAcceptanceBody(VRMModel):
    """Offer acceptance body.

    The offer accepted, the buyer's details, payment and approvals.
    """

    offer: MessageRef = Field(
        description="The offer accepted, bound to the exact bytes received.",
    )

    identity: Annotated[PersonalDetails | None, NotNull] = Field(
        default=None,
        description="Who the buyer is, disclosed now that there is a deal.",
    )

    payment: Annotated[Payment | None, NotNull] = Field(
        default=None,
        description="How the buyer pays.",
    )

    approvals: Annotated[
        Annotated[tuple[Attestation, ...], Field(max_length=10)] | None, NotNull
    ] = Field(
        default=None,
        description=(
            "Approvals the offer's conditions require, e.g. the co-decision-maker's (spec §10.2)."
        ),
    )

    trade_in: Annotated[AcceptanceTradeIn | None, NotNull] = Field(
        default=None,
        alias="tradeIn",
        description="The trade-in, now with its registration; its handover is the offer's.",
    )

    attestations: Annotated[
        Annotated[tuple[Attestation, ...], Field(max_length=10)] | None, NotNull
    ] = Field(
        default=None,
        description=(
            "Attestations the chosen terms require, e.g. the ability-to-pay "
            "attestation a financing plan marked `requiresAttestation` asks "
            "for (spec §6.4, §10.1): issued for this vendor and this "
            "pseudonym."
        ),
    )


class OfferAcceptanceMessage(BaseMessage):
    """Offer acceptance.

    Accepts exactly one offer, bound by digest; the buyer discloses identity only now (spec
    §6.4).
    """

    type: Literal["offer-acceptance"] = Field(
        description="Always `offer-acceptance`.",
    )

    body: OfferAcceptanceBody = Field(
        description="The `offer-acceptance` body.",
    )


class OfferDeclineBody(VRMModel):
    """Offer decline body.

    The offers declined and why.
    """

    offers: Annotated[
        tuple[MessageId, ...], Field(min_length=1, max_length=32), AfterValidator(unique_items)
    ] = Field(
        description="The ids of the offers declined.",
    )

    reason: Literal["price", "other-offer-accepted", "features", "timing", "other"] = Field(
        description="Why: `price`, `other-offer-accepted`, `features`, `timing`, or `other`.",
    )

    comment: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=1000)] | None, NotNull
    ] = Field(
        default=None,
        description="Free-text feedback.",
    )


class OfferDeclineMessage(BaseMessage):
    """Offer decline.

    Declines one or more offers, with a reason that helps the vendor (spec §6.5).
    """

    type: Literal["offer-decline"] = Field(
        description="Always `offer-decline`.",
    )

    body: OfferDeclineBody = Field(
        description="The `offer-decline` body.",
    )


class Deal(VRMModel):
    """Deal.

    What was agreed.
    """

    id: Annotated[
        JsonStr, StringConstraints(min_length=1, max_length=100, pattern="^[A-Za-z0-9._:-]+$")
    ] = Field(
        description="The vendor's deal reference.",
    )

    offer: MessageRef = Field(
        description="The offer accepted.",
    )

    acceptance: MessageId = Field(
        description="The acceptance that closed the deal.",
    )

    total: Money = Field(
        description="The total the buyer pays.",
    )


class DealDelivery(VRMModel):
    """Deal delivery.

    When and how delivery happens.
    """

    scheduled_for: Timestamp = Field(
        alias="scheduledFor",
        description="When delivery is scheduled.",
    )

    method: KebabToken = Field(
        description="How, e.g. `home-delivery`.",
    )


class DealTradeIn(VRMModel):
    """Deal trade-in.

    The agreed trade-in.
    """

    handover: Handover = Field(
        description="When the trade-in changes hands.",
    )

    papers_handover: Annotated[Handover | None, NotNull] = Field(
        default=None,
        alias="papersHandover",
        description="When its papers change hands.",
    )

    valuation: Money = Field(
        description="What the vendor pays for it.",
    )


class DealConfirmationBody(VRMModel):
    """Deal confirmation body.

    The deal, its delivery, trade-in and conditions.
    """

    deal: Deal = Field(
        description="The deal.",
    )

    delivery: Annotated[DealDelivery | None, NotNull] = Field(
        default=None,
        description="When and how delivery happens.",
    )

    trade_in: Annotated[DealTradeIn | None, NotNull] = Field(
        default=None,
        alias="tradeIn",
        description="The agreed trade-in handover and valuation.",
    )

    conditions: Annotated[
        Annotated[tuple[Condition, ...], Field(max_length=20)] | None, NotNull
    ] = Field(
        default=None,
        description="Conditions still to be met at completion.",
    )


class DealConfirmationMessage(BaseMessage):
    """Deal confirmation.

    The vendor confirms the deal an acceptance closed, with delivery and trade-in arrangements
    (spec §6.6).
    """

    type: Literal["deal-confirmation"] = Field(
        description="Always `deal-confirmation`.",
    )

    body: DealConfirmationBody = Field(
        description="The `deal-confirmation` body.",
    )


class DealRefusalBody(VRMModel):
    """Deal refusal body.

    The acceptance refused, the offer it accepted, and why.
    """

    offer: MessageRef = Field(
        description="The accepted offer, as the vendor sent it.",
    )

    acceptance: MessageRef = Field(
        description="The acceptance refused, bound to the exact bytes received.",
    )

    reason: Literal[
        "item-unavailable",
        "pricing-error",
        "financing-declined",
        "attestation-not-verified",
        "approval-not-verified",
        "other",
    ] = Field(
        description=(
            "Why, in coarse terms: `item-unavailable` (sold or withdrawn), "
            "`pricing-error`, `financing-declined`, "
            "`attestation-not-verified` (an attestation the deal needs did "
            "not verify), `approval-not-verified` (a co-decision-maker's "
            "approval did not verify), or `other`."
        ),
    )

    explanation: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=1000)] | None, NotNull
    ] = Field(
        default=None,
        description="The reason in words.",
    )


class DealRefusalMessage(BaseMessage):
    """Deal refusal.

    The vendor cannot honour an acceptance: it names the acceptance and the offer by digest and
    says why; the accepted offer lapses and the relationship returns to the state it was in
    before the acceptance (spec §6.17).
    """

    type: Literal["deal-refusal"] = Field(
        description="Always `deal-refusal`.",
    )

    body: DealRefusalBody = Field(
        description="The `deal-refusal` body.",
    )


class AcceptedRequest(VRMModel):
    """Accepted request.

    A data request accepted, possibly for fewer purposes or a shorter retention.
    """

    item: DataCategory = Field(
        description="The data category.",
    )

    purposes: Annotated[
        tuple[Purpose, ...], Field(min_length=1, max_length=20), AfterValidator(unique_items)
    ] = Field(
        description="The purposes accepted.",
    )

    retention: Annotated[Retention | None, NotNull] = Field(
        default=None,
        description="The retention accepted (the requested one when left out).",
    )


class RefusedRequest(VRMModel):
    """Refused request.

    A data request refused.
    """

    item: DataCategory = Field(
        description="The data category.",
    )

    reason: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)] | None, NotNull
    ] = Field(
        default=None,
        description="Why, e.g. `not needed`.",
    )


class NotificationPreferences(VRMModel):
    """Notification preferences.

    The notification categories allowed; everything else is not wanted.
    """

    allowed: Annotated[
        tuple[NotificationCategory, ...], Field(max_length=8), AfterValidator(unique_items)
    ] = Field(
        description="The categories allowed.",
    )


class TermsResponseBody(VRMModel):
    """Terms response body.

    What is accepted and refused, which notifications are allowed, and the data shared under the
    accepted terms.
    """

    assertion: MessageRef = Field(
        description="The terms assertion answered.",
    )

    decision: Literal["accept", "accept-in-part", "refuse"] = Field(
        description="`accept` (everything), `accept-in-part`, or `refuse` (everything).",
    )

    accepted: Annotated[tuple[AcceptedRequest, ...], Field(max_length=100)] = Field(
        description="The requests accepted.",
    )

    refused: Annotated[
        Annotated[tuple[RefusedRequest, ...], Field(max_length=100)] | None, NotNull
    ] = Field(
        default=None,
        description="The requests refused.",
    )

    notification_preferences: NotificationPreferences = Field(
        alias="notificationPreferences",
        description="Which notifications the individual allows.",
    )

    data: Annotated[Annotated[tuple[DataItem, ...], Field(max_length=100)] | None, NotNull] = Field(
        default=None,
        description="The data shared: only for accepted categories (spec §12).",
    )


class TermsResponseMessage(BaseMessage):
    """Terms response.

    The individual's answer to a terms assertion: the consent record, with notification choices
    and the data shared (spec §6.8).
    """

    type: Literal["terms-response"] = Field(
        description="Always `terms-response`.",
    )

    body: TermsResponseBody = Field(
        description="The `terms-response` body.",
    )


class ProposedWork(VRMModel):
    """Proposed work.

    One piece of work or action proposed.
    """

    code: KebabToken = Field(
        description="The proposal's code, used in the response, e.g. `tyre-replacement`.",
    )

    description: Annotated[JsonStr, StringConstraints(min_length=1, max_length=1000)] = Field(
        description="The proposal in words.",
    )

    price: Annotated[Money | None, NotNull] = Field(
        default=None,
        description="What it costs, when it costs anything.",
    )

    reason: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=1000)] | None, NotNull
    ] = Field(
        default=None,
        description="Why it is proposed, e.g. a manufacturer advisory.",
    )


class ScopedDataRequest(VRMModel):
    """Scoped data request.

    A data category asked for, for stated purposes, retention and scope.
    """

    item: DataCategory = Field(
        description="The data category.",
    )

    purposes: Annotated[
        tuple[Purpose, ...], Field(min_length=1, max_length=20), AfterValidator(unique_items)
    ] = Field(
        description="What it is used for.",
    )

    retention: Retention = Field(
        description="How long it is kept.",
    )

    scope: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)] | None, NotNull
    ] = Field(
        default=None,
        description="Any narrower scope, e.g. `road trips only, next 12 months`.",
    )


class ServiceNoticeBody(VRMModel):
    """Service notice body.

    What the notice is about, work proposed, data requested, and when to respond.
    """

    kind: Literal[
        "maintenance-reminder",
        "safety-recall",
        "software-update",
        "programme-offer",
        "warranty-extension",
        "other",
    ] = Field(
        description=(
            "`maintenance-reminder`, `safety-recall`, `software-update`, "
            "`programme-offer`, `warranty-extension`, or `other`."
        ),
    )

    category: NotificationCategory = Field(
        description=(
            "The notification category the notice falls under; a vendor sends"
            " only categories the individual's notification preferences allow"
            " (spec §6.9)."
        ),
    )

    summary: Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)] = Field(
        description="The notice in a sentence.",
    )

    details: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=4000)] | None, NotNull
    ] = Field(
        default=None,
        description="The notice in full.",
    )

    proposals: Annotated[
        Annotated[tuple[ProposedWork, ...], Field(max_length=50)] | None, NotNull
    ] = Field(
        default=None,
        description="Work or actions proposed, each of which the individual may accept or decline.",
    )

    data_requests: Annotated[
        Annotated[tuple[ScopedDataRequest, ...], Field(max_length=50)] | None, NotNull
    ] = Field(
        default=None,
        alias="dataRequests",
        description="Data asked for, scoped (e.g. access to travel dates for a programme).",
    )

    terms: Annotated[TermsReference | None, NotNull] = Field(
        default=None,
        description="The terms the proposals or data requests are made under.",
    )

    respond_by: Annotated[Timestamp | None, NotNull] = Field(
        default=None,
        alias="respondBy",
        description="When a response is wanted by.",
    )


class ServiceNoticeMessage(BaseMessage):
    """Service notice.

    A vendor's notice in an established relationship: a maintenance reminder, recall, update, or
    a programme offer that may ask for scoped data (spec §6.9).
    """

    type: Literal["service-notice"] = Field(
        description="Always `service-notice`.",
    )

    body: ServiceNoticeBody = Field(
        description="The `service-notice` body.",
    )


ResponseItem: TypeAlias = Annotated[
    JsonStr,
    StringConstraints(
        min_length=1, max_length=100, pattern="^[a-z0-9]+(-[a-z0-9]+)*(\\.[a-z0-9]+(-[a-z0-9]+)*)*$"
    ),
]
"""Response item.

A proposal code (kebab-case) or a data category (dotted) from the notice.
"""


class DeclinedItem(VRMModel):
    """Declined item.

    What is declined and why.
    """

    item: Annotated[ResponseItem | None, NotNull] = Field(
        default=None,
        description="The proposal code or data category declined (the whole notice when left out).",
    )

    reason: Annotated[JsonStr, StringConstraints(min_length=1, max_length=1000)] = Field(
        description="Why.",
    )


class ServiceResponseBody(VRMModel):
    """Service response body.

    The decision, per item, with any data granted.
    """

    notice: MessageRef = Field(
        description="The service notice answered.",
    )

    decision: Literal["accept", "accept-in-part", "decline"] = Field(
        description="`accept`, `accept-in-part`, or `decline`.",
    )

    accepted: Annotated[
        Annotated[tuple[ResponseItem, ...], Field(max_length=100), AfterValidator(unique_items)]
        | None,
        NotNull,
    ] = Field(
        default=None,
        description="The proposal codes and data categories accepted.",
    )

    declined: Annotated[
        Annotated[tuple[DeclinedItem, ...], Field(max_length=100)] | None, NotNull
    ] = Field(
        default=None,
        description="What is declined and why.",
    )

    data: Annotated[Annotated[tuple[DataItem, ...], Field(max_length=100)] | None, NotNull] = Field(
        default=None,
        description="Data granted: only for accepted data requests.",
    )

    comment: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=1000)] | None, NotNull
    ] = Field(
        default=None,
        description="Free-text comment.",
    )


class ServiceResponseMessage(BaseMessage):
    """Service response.

    The individual's answer to a service notice: which proposals and data requests are accepted
    or declined, and the data granted (spec §6.10).
    """

    type: Literal["service-response"] = Field(
        description="Always `service-response`.",
    )

    body: ServiceResponseBody = Field(
        description="The `service-response` body.",
    )


class SupportRequestBody(VRMModel):
    """Support request body.

    The problem and how severe it is.
    """

    subject: Annotated[JsonStr, StringConstraints(min_length=1, max_length=200)] = Field(
        description="The problem in a few words.",
    )

    description: Annotated[JsonStr, StringConstraints(min_length=1, max_length=4000)] = Field(
        description="The problem in full.",
    )

    severity: Literal["low", "normal", "high", "safety"] = Field(
        description="`low`, `normal`, `high`, or `safety` (a risk to people).",
    )

    regarding: Annotated[MessageRef | None, NotNull] = Field(
        default=None,
        description="The message the problem concerns, e.g. the deal confirmation.",
    )


class SupportRequestMessage(BaseMessage):
    """Support request.

    The individual reports a problem and asks for help (spec §6.11).
    """

    type: Literal["support-request"] = Field(
        description="Always `support-request`.",
    )

    body: SupportRequestBody = Field(
        description="The `support-request` body.",
    )


class SupportResolutionBody(VRMModel):
    """Support resolution body.

    The request answered, its status and the resolution.
    """

    request: MessageRef = Field(
        description="The support request answered.",
    )

    escalation: Annotated[MessageRef | None, NotNull] = Field(
        default=None,
        description=(
            "Her escalation of the request that this resolution answers, when"
            " it answers one (spec §6.32)."
        ),
    )

    status: Literal["resolved", "in-progress", "rejected", "open", "escalated"] = Field(
        description=(
            "`open` (received, not yet worked on), `in-progress`, `escalated`"
            " (taken to the higher level the individual named), `resolved`, "
            "or `rejected` (spec §6.12, §6.32)."
        ),
    )

    resolution: Annotated[JsonStr, StringConstraints(min_length=1, max_length=4000)] = Field(
        description="What was done or will be done, or why nothing will be.",
    )


class SupportResolutionMessage(BaseMessage):
    """Support resolution.

    The vendor's answer to a support request (spec §6.12).
    """

    type: Literal["support-resolution"] = Field(
        description="Always `support-resolution`.",
    )

    body: SupportResolutionBody = Field(
        description="The `support-resolution` body.",
    )


class DataExport(VRMModel):
    """Data export.

    The data held for the relationship, embedded in `data` or, when embedding would make the
    message larger than the individual's agent takes, published at `url` on the vendor's own
    origin (spec §6.14); exactly one of the two.
    """

    media_type: MediaType = Field(
        alias="mediaType",
        description="The form of `data`, e.g. `application/json`.",
    )

    data: Annotated[
        dict[Annotated[JsonStr, StringConstraints(pattern="^[A-Za-z0-9._:-]{1,200}$")], JsonValue]
        | None,
        NotNull,
    ] = Field(
        default=None,
        description="The data held, keyed by data category or record name (embedded export).",
    )

    digest: Digest = Field(
        description=(
            "The digest of the RFC 8785 canonical JSON of the data (embedded or published)."
        ),
    )

    url: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=2048), conforms_to("uri")]
        | None,
        NotNull,
    ] = Field(
        default=None,
        description=(
            "Where the export is published instead (spec §6.14): "
            "`/vrm/exports/{id}` on the vendor's own origin, served to a poll"
            " token of the relationship's pseudonym as the RFC 8785 JSON of "
            "the data."
        ),
    )

    size: Annotated[Annotated[int, json_int(ge=0, le=1073741824)] | None, NotNull] = Field(
        default=None,
        description=(
            "With `url`: the length in bytes of the export served there, so "
            "that the individual's agent can bound what it reads."
        ),
    )


class ExitAcknowledgementBody(VRMModel):
    """Exit acknowledgement body.

    The export and the deletion receipt.
    """

    notice: MessageRef = Field(
        description="The exit notice acknowledged.",
    )

    export: Annotated[DataExport | None, NotNull] = Field(
        default=None,
        description="The data held, present when the exit notice asked for an export (spec §6.14).",
    )

    deletion_receipt: Annotated[DeletionReceipt | None, NotNull] = Field(
        default=None,
        alias="deletionReceipt",
        description=(
            "What was deleted and what is retained, and why: present when the"
            " exit notice asked for deletion (spec §6.14)."
        ),
    )


class ExitAcknowledgementMessage(BaseMessage):
    """Exit acknowledgement.

    The counterparty acknowledges an exit: the exported data and a signed receipt of deletion
    (spec §6.14).
    """

    type: Literal["exit-acknowledgement"] = Field(
        description="Always `exit-acknowledgement`.",
    )

    body: ExitAcknowledgementBody = Field(
        description="The `exit-acknowledgement` body.",
    )


class ProblemSubject(VRMModel):
    """Problem subject.

    The message a problem concerns.
    """

    id: MessageId = Field(
        description="Its id.",
    )

    digest: Annotated[Digest | None, NotNull] = Field(
        default=None,
        description="The digest of its token, when it was a parseable token.",
    )


class ProblemReportBody(VRMModel):
    """Problem report body.

    Which message failed, and why.
    """

    regarding: Annotated[ProblemSubject | None, NotNull] = Field(
        default=None,
        description="The message the problem concerns, when it could be identified.",
    )

    code: Literal[
        "payload-too-large",
        "nesting-too-deep",
        "unsupported-media-type",
        "rate-limited",
        "invalid-request",
        "authentication-required",
        "not-found",
        "method-not-allowed",
        "request-timeout",
        "malformed-jws",
        "unsupported-algorithm",
        "invalid-typ",
        "invalid-header",
        "unsupported-critical-header",
        "unknown-key",
        "bad-signature",
        "malformed-json",
        "duplicate-member",
        "non-canonical-payload",
        "unsupported-version",
        "unknown-message-type",
        "schema-invalid",
        "key-sender-mismatch",
        "wrong-audience",
        "message-expired",
        "message-not-yet-valid",
        "lifetime-too-long",
        "replay",
        "not-a-participant",
        "illegal-transition",
        "unknown-offer",
        "offer-expired",
        "offer-superseded",
        "offer-closed",
        "offer-not-binding",
        "reference-mismatch",
        "relationship-exited",
        "reengagement-not-permitted",
        "attestation-invalid",
        "untrusted-issuer",
        "approval-missing",
        "attestation-missing",
        "not-accepted-by-terms",
        "exit-incomplete",
        "mislabelled-notice",
        "grant-revoked",
        "grant-expired",
        "internal-error",
        "temporarily-unavailable",
    ] = Field(
        description="The error code (spec §16 error registry).",
    )

    title: Annotated[JsonStr, StringConstraints(min_length=1, max_length=200)] = Field(
        description="A short human-readable summary of the code.",
    )

    detail: Annotated[JsonStr, StringConstraints(min_length=1, max_length=4000)] = Field(
        description="What exactly was wrong.",
    )

    path: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=0, max_length=1000, pattern="^(/[^/]*)*$")]
        | None,
        NotNull,
    ] = Field(
        default=None,
        description="A JSON Pointer (RFC 6901) into the payload where the problem was found.",
    )


class ProblemReportMessage(BaseMessage):
    """Problem report.

    Reports that a message was rejected, with its error code, when no HTTP response can carry
    the rejection (e.g. a message collected from a mailbox) (spec §6.15).
    """

    type: Literal["problem-report"] = Field(
        description="Always `problem-report`.",
    )

    body: ProblemReportBody = Field(
        description="The `problem-report` body.",
    )


class ReceiptBody(VRMModel):
    """Receipt body.

    The message received, and how.
    """

    regarding: MessageRef = Field(
        description="The message received, bound to its exact bytes.",
    )

    status: Literal["accepted", "duplicate"] = Field(
        description="`accepted` (first delivery) or `duplicate` (an identical resend).",
    )

    received_at: Timestamp = Field(
        alias="receivedAt",
        description="When the message was committed.",
    )


class ReceiptMessage(BaseMessage):
    """Receipt.

    The receiver's signed acknowledgement, returned by its inbox, that a message was durably
    committed (spec §6.16).
    """

    type: Literal["receipt"] = Field(
        description="Always `receipt`.",
    )

    body: ReceiptBody = Field(
        description="The `receipt` body.",
    )


class DeliveryDeal(VRMModel):
    """Delivery deal.

    The deal a delivery notice is about.
    """

    id: Annotated[
        JsonStr, StringConstraints(min_length=1, max_length=100, pattern="^[A-Za-z0-9._:-]+$")
    ] = Field(
        description="The vendor's deal reference (the deal confirmation's `deal.id`).",
    )

    offer: MessageRef = Field(
        description="The accepted offer, by its digest.",
    )


class DeliveryItem(VRMModel):
    """Delivery item.

    One thing that changes hands.
    """

    kind: Literal["new-vehicle", "trade-in", "papers"] = Field(
        description=(
            "`new-vehicle` (the item bought), `trade-in` (the item traded in)"
            " or `papers` (ownership papers, keys, documents)."
        ),
    )

    description: Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)] = Field(
        description="What it is, e.g. `Toyota Prius, VIN JTDKB20U093000000`.",
    )

    direction: Literal["to-buyer", "to-vendor"] = Field(
        description="Who receives it: the individual (`to-buyer`) or the vendor (`to-vendor`).",
    )


class DeliveryNoticeBody(VRMModel):
    """Delivery notice body.

    The deal, when and where, and what changes hands.
    """

    deal: DeliveryDeal = Field(
        description="The deal delivered.",
    )

    scheduled_for: Timestamp = Field(
        alias="scheduledFor",
        description="When delivery takes place.",
    )

    place: Location = Field(
        description=(
            "Where, coarsely (a postcode area or region): the address is the "
            "vendor's or hers, agreed in person."
        ),
    )

    items: Annotated[tuple[DeliveryItem, ...], Field(min_length=1, max_length=20)] = Field(
        description="Everything that will change hands, in both directions.",
    )


class DeliveryNoticeMessage(BaseMessage):
    """Delivery notice.

    The vendor announces when and where the deal is delivered, and what will change hands (spec
    §6.22).
    """

    type: Literal["delivery-notice"] = Field(
        description="Always `delivery-notice`.",
    )

    body: DeliveryNoticeBody = Field(
        description="The `delivery-notice` body.",
    )


class HandoverDeal(VRMModel):
    """Handover deal.

    The deal a handover record is bound to.
    """

    id: Annotated[
        JsonStr, StringConstraints(min_length=1, max_length=100, pattern="^[A-Za-z0-9._:-]+$")
    ] = Field(
        description="The vendor's deal reference (the deal confirmation's `deal.id`).",
    )

    offer: MessageRef = Field(
        description="The accepted offer, by its digest.",
    )

    acceptance: MessageRef = Field(
        description="Her acceptance of it, by its digest.",
    )

    trade_in: JsonBool = Field(
        alias="tradeIn",
        description=(
            "True when the deal includes a trade-in (the accepted offer has a"
            " `tradeIn`): then the new item and the trade-in change hands "
            "together, or neither does."
        ),
    )


class HandoverItem(VRMModel):
    """Handover item.

    One thing that changes hands.
    """

    kind: Literal["new-vehicle", "trade-in", "papers"] = Field(
        description=(
            "`new-vehicle` (the item bought), `trade-in` (the item traded in)"
            " or `papers` (ownership papers, keys, documents)."
        ),
    )

    description: Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)] = Field(
        description="What it is, e.g. `Toyota Prius, VIN JTDKB20U093000000`.",
    )

    direction: Literal["to-buyer", "to-vendor"] = Field(
        description="Who receives it: the individual (`to-buyer`) or the vendor (`to-vendor`).",
    )


class HandoverRecordBody(VRMModel):
    """Handover record body.

    The deal, when, and what changed hands.
    """

    deal: HandoverDeal = Field(
        description="The deal handed over.",
    )

    notice: Annotated[MessageRef | None, NotNull] = Field(
        default=None,
        description="The delivery notice this handover carries out, when one was sent.",
    )

    at: Timestamp = Field(
        description="When the handover took place.",
    )

    items: Annotated[tuple[HandoverItem, ...], Field(min_length=1, max_length=20)] = Field(
        description="Everything that changed hands, in both directions.",
    )


class HandoverRecordMessage(BaseMessage):
    """Handover record.

    The vendor's signed record of what changed hands at delivery, in both directions, bound to
    the deal (spec §6.23).
    """

    type: Literal["handover-record"] = Field(
        description="Always `handover-record`.",
    )

    body: HandoverRecordBody = Field(
        description="The `handover-record` body.",
    )


class InspectionReason(VRMModel):
    """Inspection reason.

    One reason for refusing a handover.
    """

    code: KebabToken = Field(
        description=(
            "What is wrong: `trade-in-not-taken`, `new-item-not-delivered`, "
            "`not-as-described`, `damaged`, `papers-missing`, or `other`."
        ),
    )

    text: Annotated[JsonStr, StringConstraints(min_length=1, max_length=1000)] = Field(
        description="The reason in words.",
    )


class InspectionEvidence(VRMModel):
    """Inspection evidence.

    One signed message, as received.
    """

    message: MessageRef = Field(
        description="The message, by its id and digest.",
    )

    token: Annotated[
        JsonStr,
        StringConstraints(
            min_length=20,
            max_length=65536,
            pattern="^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$",
        ),
    ] = Field(
        description="Its compact JWS token, whose digest is `message.digest`.",
    )


class InspectionResultBody(VRMModel):
    """Inspection result body.

    The handover inspected, her decision and why.
    """

    handover: MessageRef = Field(
        description="The handover record inspected, by its digest.",
    )

    decision: Literal["accept", "refuse"] = Field(
        description="`accept` (the deal is delivered) or `refuse` (it is not; `reasons` say why).",
    )

    reasons: Annotated[
        Annotated[tuple[InspectionReason, ...], Field(min_length=1, max_length=20)] | None, NotNull
    ] = Field(
        default=None,
        description="Why she refuses (required with `refuse`).",
    )

    evidence: Annotated[
        Annotated[tuple[InspectionEvidence, ...], Field(max_length=10)] | None, NotNull
    ] = Field(
        default=None,
        description=(
            "The signed messages her refusal rests on (the handover record, "
            "the accepted offer), as the compact JWS tokens received, so that"
            " a third party can verify the refusal without either agent."
        ),
    )


class InspectionResultMessage(BaseMessage):
    """Inspection result.

    The individual's inspection of a handover: she accepts it (her countersignature) or refuses
    it with her reasons (spec §6.24).
    """

    type: Literal["inspection-result"] = Field(
        description="Always `inspection-result`.",
    )

    body: InspectionResultBody = Field(
        description="The `inspection-result` body.",
    )


class InvoiceDeal(VRMModel):
    """Invoice deal.

    The deal an invoice is for.
    """

    id: Annotated[
        JsonStr, StringConstraints(min_length=1, max_length=100, pattern="^[A-Za-z0-9._:-]+$")
    ] = Field(
        description="The vendor's deal reference (the deal confirmation's `deal.id`).",
    )

    offer: MessageRef = Field(
        description="The accepted offer, by its digest.",
    )


class InvoiceLine(VRMModel):
    """Invoice line.

    One line of an invoice.
    """

    code: KebabToken = Field(
        description="The line's code, e.g. `vehicle`, `trade-in-allowance`, `discount`.",
    )

    description: Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)] = Field(
        description="The line in words.",
    )

    amount: Money = Field(
        description="Its amount; negative for a credit.",
    )


class InvoiceDifference(VRMModel):
    """Invoice difference.

    One difference from the accepted offer's total.
    """

    line: KebabToken = Field(
        description="The code of the line that makes the difference.",
    )

    amount: Money = Field(
        description="What it adds to the offer's total (negative when it takes off).",
    )

    reason: Annotated[JsonStr, StringConstraints(min_length=1, max_length=1000)] = Field(
        description="Why, e.g. `registration fee required by law, not in the offer`.",
    )


class InvoiceBody(VRMModel):
    """Invoice body.

    The invoice: the deal, the lines, the total and when it is due.
    """

    id: Annotated[
        JsonStr, StringConstraints(min_length=1, max_length=100, pattern="^[A-Za-z0-9._:/-]+$")
    ] = Field(
        description="The vendor's invoice number.",
    )

    deal: InvoiceDeal = Field(
        description="The deal invoiced.",
    )

    lines: Annotated[tuple[InvoiceLine, ...], Field(min_length=1, max_length=50)] = Field(
        description=(
            "What is charged (positive) or credited (negative, e.g. the trade-in allowance)."
        ),
    )

    total: Money = Field(
        description="What she pays: the sum of the lines, in their currency.",
    )

    due: Timestamp = Field(
        description="When payment is due.",
    )

    supersedes: Annotated[MessageRef | None, NotNull] = Field(
        default=None,
        description="The earlier invoice this one replaces (an adjustment, answering her query).",
    )

    differences: Annotated[
        Annotated[tuple[InvoiceDifference, ...], Field(min_length=1, max_length=50)] | None, NotNull
    ] = Field(
        default=None,
        description=(
            "Every difference from the accepted offer's total, itemised: the "
            "line, the amount it adds (negative when it takes off) and why."
        ),
    )


class InvoiceMessage(BaseMessage):
    """Invoice.

    The vendor's invoice for a delivered deal: its lines and total, bound to the deal and the
    accepted offer (spec §6.25).
    """

    type: Literal["invoice"] = Field(
        description="Always `invoice`.",
    )

    body: InvoiceBody = Field(
        description="The `invoice` body.",
    )


class InvoiceQueryBody(VRMModel):
    """Invoice query body.

    The invoice queried, the lines and why.
    """

    invoice: MessageRef = Field(
        description="The invoice queried, by its digest.",
    )

    lines: Annotated[
        tuple[KebabToken, ...], Field(min_length=1, max_length=50), AfterValidator(unique_items)
    ] = Field(
        description="The codes of the lines queried.",
    )

    reason: Annotated[JsonStr, StringConstraints(min_length=1, max_length=1000)] = Field(
        description="Why she queries them.",
    )


class InvoiceQueryMessage(BaseMessage):
    """Invoice query.

    The individual queries lines of an invoice; the vendor answers with an invoice that
    supersedes it (spec §6.26).
    """

    type: Literal["invoice-query"] = Field(
        description="Always `invoice-query`.",
    )

    body: InvoiceQueryBody = Field(
        description="The `invoice-query` body.",
    )


class PaymentFinancing(VRMModel):
    """Payment financing.

    The financing that pays: the vendor's plan she chose at acceptance, or her own lender's
    loan, or both; at least one of `plan` and `provider`.
    """

    plan: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=100)] | None, NotNull
    ] = Field(
        default=None,
        description=(
            "The vendor's financing plan she chose at acceptance "
            "(`payment.financingPlan`), when she chose one."
        ),
    )

    provider: Annotated[PartyId | None, NotNull] = Field(
        default=None,
        description=(
            "Who lends: the issuer of the ability-to-pay attestation she "
            "lined her financing up with (a credit union), when she has one."
        ),
    )

    reference: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=100)] | None, NotNull
    ] = Field(
        default=None,
        description="The provider's reference for the loan, when known.",
    )


class PaymentNoticeBody(VRMModel):
    """Payment notice body.

    The invoice paid, how, and how much.
    """

    invoice: MessageRef = Field(
        description="The invoice paid, by its digest.",
    )

    method: Literal["finance", "bank-transfer", "card"] = Field(
        description="How she pays: the acceptance's `payment.method`.",
    )

    financing: Annotated[PaymentFinancing | None, NotNull] = Field(
        default=None,
        description="With `finance`: the financing she lined up and chose at acceptance.",
    )

    amount: Money = Field(
        description="The amount paid.",
    )


class PaymentNoticeMessage(BaseMessage):
    """Payment notice.

    The individual pays an invoice, by the means she chose at acceptance: her financing is
    carried into the payment (spec §6.27).
    """

    type: Literal["payment-notice"] = Field(
        description="Always `payment-notice`.",
    )

    body: PaymentNoticeBody = Field(
        description="The `payment-notice` body.",
    )


class PaymentReceiptBody(VRMModel):
    """Payment receipt body.

    The payment received, how much and when.
    """

    payment: MessageRef = Field(
        description="The payment notice receipted, by its digest.",
    )

    amount: Money = Field(
        description="The amount received.",
    )

    received_at: Timestamp = Field(
        alias="receivedAt",
        description="When it was received.",
    )


class PaymentReceiptMessage(BaseMessage):
    """Payment receipt.

    The vendor receipts a payment (spec §6.28).
    """

    type: Literal["payment-receipt"] = Field(
        description="Always `payment-receipt`.",
    )

    body: PaymentReceiptBody = Field(
        description="The `payment-receipt` body.",
    )


class AnswerBody(VRMModel):
    """Answer body.

    The question answered and the answer.
    """

    question: MessageRef = Field(
        description="The question answered, bound to the exact bytes received.",
    )

    text: Annotated[JsonStr, StringConstraints(min_length=1, max_length=4000)] = Field(
        description="The answer in words.",
    )


class AnswerMessage(BaseMessage):
    """Answer.

    The answer to an open question of the other party; it closes the question and changes no
    state (spec §6.31).
    """

    type: Literal["answer"] = Field(
        description="Always `answer`.",
    )

    body: AnswerBody = Field(
        description="The `answer` body.",
    )


class QuestionBody(VRMModel):
    """Question body.

    The question, what it is about, and its topic.
    """

    topic: Annotated[Topic | None, NotNull] = Field(
        default=None,
        description=(
            "What the question is about, in kebab-case, e.g. `trim`, `warranty`, `delivery`."
        ),
    )

    text: Annotated[JsonStr, StringConstraints(min_length=1, max_length=2000)] = Field(
        description="The question in words.",
    )

    about: Annotated[MessageRef | None, NotNull] = Field(
        default=None,
        description="The message the question concerns, e.g. the RFP or an offer.",
    )


class QuestionMessage(BaseMessage):
    """Question.

    Either party asks the other a question during the relationship; it opens a request the other
    party answers with an `answer`, and changes no state (spec §6.30).
    """

    type: Literal["question"] = Field(
        description="Always `question`.",
    )

    body: QuestionBody = Field(
        description="The `question` body.",
    )


class EscalationLevel(VRMModel):
    """Escalation level.

    A named higher level of the vendor: its kind and its name.
    """

    level: KebabToken = Field(
        description="The kind of level, e.g. `customer-relations`, `management`, `manufacturer`.",
    )

    name: Annotated[JsonStr, StringConstraints(min_length=1, max_length=200)] = Field(
        description="Its name, e.g. `Mayfair Motors customer relations`.",
    )


class SupportEscalationBody(VRMModel):
    """Support escalation body.

    The request escalated, to whom, by when, and the history carried along.
    """

    request: MessageRef = Field(
        description="Her support request, still open, bound to the bytes she sent.",
    )

    to: EscalationLevel = Field(
        description="The higher level the request goes to.",
    )

    deadline: Timestamp = Field(
        description=(
            "When she expects the vendor's answer at that level by; after the"
            " escalation's `created`."
        ),
    )

    history: Annotated[tuple[MessageRef, ...], Field(min_length=1, max_length=100)] = Field(
        description=(
            "The messages of the problem she relies on, oldest first, each "
            "bound to its bytes: the request first, then the vendor's answers"
            " so far."
        ),
    )

    reason: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=2000)] | None, NotNull
    ] = Field(
        default=None,
        description="Why the answers so far do not settle the problem.",
    )


class SupportEscalationMessage(BaseMessage):
    """Support escalation.

    The individual takes an open support request to a named higher level of the vendor, with a
    deadline for its answer and the history she relies on; a side exchange in PROBLEM (spec
    §6.32).
    """

    type: Literal["support-escalation"] = Field(
        description="Always `support-escalation`.",
    )

    body: SupportEscalationBody = Field(
        description="The `support-escalation` body.",
    )


class AccessGrantBody(VRMModel):
    """Access grant body.

    What may be read, by whom, why, until when, where, and with which key.
    """

    id: MessageId = Field(
        description=(
            "The grant's id (`urn:uuid:`), named by every read proof and by its revocation."
        ),
    )

    grantee: PartyId = Field(
        description="The party that may read: the message's addressee.",
    )

    items: Annotated[
        tuple[DataCategory, ...], Field(min_length=1, max_length=32), AfterValidator(unique_items)
    ] = Field(
        description="The data categories it may read, e.g. `travel.dates`.",
    )

    purposes: Annotated[
        tuple[Purpose, ...], Field(min_length=1, max_length=16), AfterValidator(unique_items)
    ] = Field(
        description="What it may use them for.",
    )

    until: Timestamp = Field(
        description="The end of the grant: a read after it is refused with `grant-expired`.",
    )

    endpoint: Annotated[
        JsonStr,
        StringConstraints(min_length=8, max_length=2000, pattern="^https?://[^ ]+$"),
        conforms_to("uri"),
    ] = Field(
        description=(
            "Her read endpoint for this grant: an absolute `https` URL "
            "(`http` only where both sides allow it, spec §11.8) that the "
            "grantee reads with `GET` (spec §11.9)."
        ),
    )

    key: Annotated[
        JsonStr, StringConstraints(min_length=43, max_length=43, pattern="^[A-Za-z0-9_-]{43}$")
    ] = Field(
        description=(
            "The RFC 7638 JWK SHA-256 thumbprint (unpadded base64url) of the "
            "grantee's published key that must sign its read proofs."
        ),
    )


class AccessGrantMessage(BaseMessage):
    """Access grant.

    The individual grants a named party access to named items of her data store, for named
    purposes, until a time: the party reads them from her agent with a proof bound to its own
    key (spec §6.18).
    """

    type: Literal["access-grant"] = Field(
        description="Always `access-grant`.",
    )

    body: AccessGrantBody = Field(
        description="The `access-grant` body.",
    )


class AccessRevocationBody(VRMModel):
    """Access revocation body.

    The grant revoked, and why.
    """

    grant: MessageId = Field(
        description="The id of the grant revoked (the `id` of its access grant's body).",
    )

    reason: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)] | None, NotNull
    ] = Field(
        default=None,
        description="Why, in a few words.",
    )


class AccessRevocationMessage(BaseMessage):
    """Access revocation.

    The individual ends an access grant before its time: every later read is refused with
    `grant-revoked` (spec §6.19).
    """

    type: Literal["access-revocation"] = Field(
        description="Always `access-revocation`.",
    )

    body: AccessRevocationBody = Field(
        description="The `access-revocation` body.",
    )


class ConsentChangeItem(VRMModel):
    """Consent change item.

    The change of her consent to one data item.
    """

    item: DataCategory = Field(
        description="The data category.",
    )

    action: Literal["withdraw", "narrow", "widen"] = Field(
        description=(
            "`withdraw` (no purpose any more: the item is deleted unless a "
            "legal basis remains), `narrow` (only the `purposes` named "
            "remain) or `widen` (the `purposes` named are added, within terms"
            " already asserted)."
        ),
    )

    purposes: Annotated[
        Annotated[
            tuple[Purpose, ...], Field(min_length=1, max_length=16), AfterValidator(unique_items)
        ]
        | None,
        NotNull,
    ] = Field(
        default=None,
        description=(
            "For `narrow`: the purposes that remain; for `widen`: the "
            "purposes added. Absent for `withdraw`."
        ),
    )

    retention: Annotated[Retention | None, NotNull] = Field(
        default=None,
        description="For `narrow` or `widen`: how long the item may be kept from now on.",
    )


class ConsentChangeBody(VRMModel):
    """Consent change body.

    What changes, item by item.
    """

    changes: Annotated[tuple[ConsentChangeItem, ...], Field(min_length=1, max_length=32)] = Field(
        description="One change per data item.",
    )

    reason: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)] | None, NotNull
    ] = Field(
        default=None,
        description="Why, in a few words.",
    )


class ConsentChangeMessage(BaseMessage):
    """Consent change.

    The individual withdraws, narrows or widens her consent to data items at any time in a
    relationship; the party answers with a consent receipt (spec §6.20).
    """

    type: Literal["consent-change"] = Field(
        description="Always `consent-change`.",
    )

    body: ConsentChangeBody = Field(
        description="The `consent-change` body.",
    )


class AppliedChange(VRMModel):
    """Applied change.

    One changed item as the party now holds it.
    """

    item: DataCategory = Field(
        description="The data category.",
    )

    purposes: Annotated[tuple[Purpose, ...], Field(max_length=16), AfterValidator(unique_items)] = (
        Field(
            description="The purposes the party now uses the item for (none after a withdrawal).",
        )
    )

    deleted: JsonBool = Field(
        description="True when the party deleted the item.",
    )


class RetainedConsentItem(VRMModel):
    """Retained item.

    An item kept despite its withdrawal.
    """

    item: DataCategory = Field(
        description="The data category.",
    )

    basis: Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)] = Field(
        description="The legal basis it is kept on, e.g. `legal-obligation: sales records`.",
    )

    until: Date = Field(
        description="When it will be deleted.",
    )


class ConsentReceiptBody(VRMModel):
    """Consent receipt body.

    The change answered, what was applied, what is retained.
    """

    change: MessageRef = Field(
        description="The consent change answered, bound by its digest.",
    )

    applied: Annotated[tuple[AppliedChange, ...], Field(max_length=32)] = Field(
        description="Each changed item as the party now holds it.",
    )

    retained: Annotated[tuple[RetainedConsentItem, ...], Field(max_length=32)] = Field(
        description=(
            "What the party keeps despite a withdrawal, and on which legal basis, until when."
        ),
    )


class ConsentReceiptMessage(BaseMessage):
    """Consent receipt.

    The party's signed statement of what it did with a consent change: what it now uses each
    item for, what it deleted, and what it retains on which legal basis until when (spec §6.21).
    """

    type: Literal["consent-receipt"] = Field(
        description="Always `consent-receipt`.",
    )

    body: ConsentReceiptBody = Field(
        description="The `consent-receipt` body.",
    )


class AddonDeal(VRMModel):
    """Add-on deal.

    The deal: its id and the accepted offer, by its digest.
    """

    id: Annotated[JsonStr, StringConstraints(min_length=1, max_length=100)] = Field(
        description="The deal's id (the deal confirmation's).",
    )

    offer: MessageRef = Field(
        description="The accepted offer, by its digest.",
    )


class Addon(VRMModel):
    """Add-on.

    One extra: its code, what it is, its price.
    """

    code: KebabToken = Field(
        description="The extra's code, unique in the offer (the invoice line's code).",
    )

    description: Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)] = Field(
        description="What it is.",
    )

    price: Money = Field(
        description="Its price.",
    )


class AddonOfferBody(VRMModel):
    """Add-on offer body.

    The deal, the extras proposed and until when.
    """

    deal: AddonDeal = Field(
        description="The deal the extras are for.",
    )

    addons: Annotated[tuple[Addon, ...], Field(min_length=1, max_length=50)] = Field(
        description="The extras proposed.",
    )

    valid_until: Timestamp = Field(
        alias="validUntil",
        description="Until when the proposal holds.",
    )


class AddonOfferMessage(BaseMessage):
    """Add-on offer.

    The vendor proposes extras for the deal under way, each with its price; she accepts or
    declines each (spec §6.45).
    """

    type: Literal["addon-offer"] = Field(
        description="Always `addon-offer`.",
    )

    body: AddonOfferBody = Field(
        description="The `addon-offer` body.",
    )


class AddonResponseBody(VRMModel):
    """Add-on response body.

    The add-on offer answered, and each of its codes accepted or declined.
    """

    addon_offer: MessageRef = Field(
        alias="addonOffer",
        description="The add-on offer answered, by its digest.",
    )

    accepted: Annotated[
        tuple[KebabToken, ...], Field(max_length=50), AfterValidator(unique_items)
    ] = Field(
        description="The codes of the extras accepted.",
    )

    declined: Annotated[
        tuple[KebabToken, ...], Field(max_length=50), AfterValidator(unique_items)
    ] = Field(
        description="The codes of the extras declined.",
    )


class AddonResponseMessage(BaseMessage):
    """Add-on response.

    The individual accepts or declines each extra the vendor proposed (spec §6.46).
    """

    type: Literal["addon-response"] = Field(
        description="Always `addon-response`.",
    )

    body: AddonResponseBody = Field(
        description="The `addon-response` body.",
    )


class AppointmentBookingBody(VRMModel):
    """Appointment booking body.

    The proposal and the slot chosen: nothing that identifies her.
    """

    proposal: MessageRef = Field(
        description="The proposal, by its digest.",
    )

    slot: KebabToken = Field(
        description="The id of the slot chosen.",
    )


class AppointmentBookingMessage(BaseMessage):
    """Appointment booking.

    The individual books one slot of a proposal, and discloses nothing else (spec §6.41).
    """

    type: Literal["appointment-booking"] = Field(
        description="Always `appointment-booking`.",
    )

    body: AppointmentBookingBody = Field(
        description="The `appointment-booking` body.",
    )


class AppointmentCancellationBody(VRMModel):
    """Appointment cancellation body.

    The appointment cancelled (the booking or its confirmation) and why.
    """

    appointment: MessageRef = Field(
        description="The booking or the confirmation cancelled, by its digest.",
    )

    reason: Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)] = Field(
        description="Why.",
    )


class AppointmentCancellationMessage(BaseMessage):
    """Appointment cancellation.

    Either party cancels a booked or confirmed appointment (spec §6.43).
    """

    type: Literal["appointment-cancellation"] = Field(
        description="Always `appointment-cancellation`.",
    )

    body: AppointmentCancellationBody = Field(
        description="The `appointment-cancellation` body.",
    )


class AppointmentConfirmationBody(VRMModel):
    """Appointment confirmation body.

    The booking confirmed, and the slot as booked.
    """

    booking: MessageRef = Field(
        description="The booking confirmed, by its digest.",
    )

    slot: KebabToken = Field(
        description="The id of the slot booked.",
    )

    start: Timestamp = Field(
        description="When it starts (the slot's start).",
    )

    end: Timestamp = Field(
        description="When it ends (the slot's end).",
    )

    place: Location = Field(
        description="Where (the slot's place).",
    )

    contact: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=200)] | None, NotNull
    ] = Field(
        default=None,
        description="Whom to ask for on arrival (a desk, a role).",
    )


class AppointmentConfirmationMessage(BaseMessage):
    """Appointment confirmation.

    The vendor confirms a booking: the slot booked, when and where (spec §6.42).
    """

    type: Literal["appointment-confirmation"] = Field(
        description="Always `appointment-confirmation`.",
    )

    body: AppointmentConfirmationBody = Field(
        description="The `appointment-confirmation` body.",
    )


class AppointmentSlot(VRMModel):
    """Appointment slot.

    One slot: its id, when, and where (coarsely).
    """

    id: KebabToken = Field(
        description="The slot's id, unique in the proposal.",
    )

    start: Timestamp = Field(
        description="When it starts.",
    )

    end: Timestamp = Field(
        description="When it ends.",
    )

    place: Location = Field(
        description="Where, coarsely (the vendor's site, a postcode area).",
    )


class AppointmentProposalBody(VRMModel):
    """Appointment proposal body.

    What the appointment is for, the slots offered and when she must choose.
    """

    kind: Literal["test-drive", "service", "handover"] = Field(
        description="What the appointment is for: a test drive, a service, a handover.",
    )

    about: Annotated[MessageRef | None, NotNull] = Field(
        default=None,
        description=(
            "The message the appointment serves (a service notice, an offer), by its digest."
        ),
    )

    slots: Annotated[tuple[AppointmentSlot, ...], Field(min_length=1, max_length=20)] = Field(
        description="The slots offered.",
    )

    respond_by: Timestamp = Field(
        alias="respondBy",
        description="When the slots are no longer held.",
    )


class AppointmentProposalMessage(BaseMessage):
    """Appointment proposal.

    The vendor proposes slots for an appointment: a test drive, a service, a handover (spec
    §6.40).
    """

    type: Literal["appointment-proposal"] = Field(
        description="Always `appointment-proposal`.",
    )

    body: AppointmentProposalBody = Field(
        description="The `appointment-proposal` body.",
    )


class ServiceWork(VRMModel):
    """Service work.

    One piece of work: its code (a proposal's code when it carries one out) and what it was.
    """

    code: KebabToken = Field(
        description="The work's code.",
    )

    description: Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)] = Field(
        description="What was done.",
    )


class ServicePart(VRMModel):
    """Service part.

    One part fitted.
    """

    code: Annotated[KebabToken | None, NotNull] = Field(
        default=None,
        description="The part's code, if it has one.",
    )

    description: Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)] = Field(
        description="The part.",
    )

    quantity: Annotated[int, json_int(ge=1, le=1000)] = Field(
        description="How many.",
    )


class ServiceRecordBody(VRMModel):
    """Service record body.

    What was done, with what, for how much, at what mileage, and when.
    """

    appointment: Annotated[MessageRef | None, NotNull] = Field(
        default=None,
        description=(
            "The confirmed appointment the work was done at (its confirmation), by its digest."
        ),
    )

    notice: Annotated[MessageRef | None, NotNull] = Field(
        default=None,
        description="The service notice whose proposals the work carries out, by its digest.",
    )

    work: Annotated[tuple[ServiceWork, ...], Field(min_length=1, max_length=50)] = Field(
        description="The work done.",
    )

    parts: Annotated[Annotated[tuple[ServicePart, ...], Field(max_length=100)] | None, NotNull] = (
        Field(
            default=None,
            description="The parts fitted.",
        )
    )

    cost: Money = Field(
        description="What the work cost her.",
    )

    mileage: Annotated[int, json_int(ge=0, le=10000000)] = Field(
        description="The odometer reading when the work was done.",
    )

    completed_at: Timestamp = Field(
        alias="completedAt",
        description="When the work was completed.",
    )


class ServiceRecordMessage(BaseMessage):
    """Service record.

    The vendor's signed record of work completed: the work, the parts, the cost and the mileage,
    kept by the individual as her service history (spec §6.44).
    """

    type: Literal["service-record"] = Field(
        description="Always `service-record`.",
    )

    body: ServiceRecordBody = Field(
        description="The `service-record` body.",
    )


class DetailsReceiptBody(VRMModel):
    """Details receipt body.

    The update receipted and what it now holds.
    """

    update: MessageRef = Field(
        description="Her details update, by the digest of its token as received.",
    )

    held: Annotated[
        tuple[DataCategory, ...], Field(max_length=32), AfterValidator(unique_items)
    ] = Field(
        description="The items of the update it holds under her consent, now with their new value.",
    )


class DetailsReceiptMessage(BaseMessage):
    """Details receipt.

    The party's receipt of her details update: the items of which it now holds the new value
    (spec §6.74).
    """

    type: Literal["details-receipt"] = Field(
        description="Always `details-receipt`.",
    )

    body: DetailsReceiptBody = Field(
        description="The `details-receipt` body.",
    )


class DetailsUpdateBody(VRMModel):
    """Details update body.

    The items changed, with their new values.
    """

    items: Annotated[tuple[DataItem, ...], Field(min_length=1, max_length=32)] = Field(
        description="Each item the party holds under her consent, with its new value.",
    )

    reason: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=500)] | None, NotNull
    ] = Field(
        default=None,
        description="Why the details changed (e.g. she moved house).",
    )


class DetailsUpdateMessage(BaseMessage):
    """Details update.

    The individual's new value of details the party holds under her consent (a new address, a
    new phone): her suppliers follow her (spec §6.73).
    """

    type: Literal["details-update"] = Field(
        description="Always `details-update`.",
    )

    body: DetailsUpdateBody = Field(
        description="The `details-update` body.",
    )


class ProgrammeEnrolmentBody(VRMModel):
    """Programme enrolment body.

    The programme she asks to join.
    """

    programme: KebabToken = Field(
        description=(
            "The programme's code, as the party's discovery document lists it under `programmes`."
        ),
    )

    note: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=1000)] | None, NotNull
    ] = Field(
        default=None,
        description="Anything she wants the party to know.",
    )


class ProgrammeEnrolmentMessage(BaseMessage):
    """Programme enrolment.

    The individual asks to join a programme the party's discovery document lists; the party
    answers with its terms assertion for the programme (spec §6.72).
    """

    type: Literal["programme-enrolment"] = Field(
        description="Always `programme-enrolment`.",
    )

    body: ProgrammeEnrolmentBody = Field(
        description="The `programme-enrolment` body.",
    )


class TermsAgreementBody(VRMModel):
    """Terms agreement body.

    The proffer answered, the agreement, and the decision.
    """

    proffer: MessageRef = Field(
        description="Her proffer, by the digest of its token as received.",
    )

    agreement: AgreementRef = Field(
        description="The agreement proffered, as the proffer names it.",
    )

    decision: Literal["agree", "decline"] = Field(
        description=(
            "`agree`: the party is bound by the agreement in this "
            "relationship; `decline`: it is not."
        ),
    )

    reason: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=1000)] | None, NotNull
    ] = Field(
        default=None,
        description="Why it declines (or any note on its agreement).",
    )


class TermsAgreementMessage(BaseMessage):
    """Terms agreement.

    The party's answer to her proffer: it agrees to her terms or declines them, bound to the
    proffer by its digest (spec §6.71).
    """

    type: Literal["terms-agreement"] = Field(
        description="Always `terms-agreement`.",
    )

    body: TermsAgreementBody = Field(
        description="The `terms-agreement` body.",
    )


class TermsProfferBody(VRMModel):
    """Terms proffer body.

    The agreement she proffers.
    """

    agreement: AgreementRef = Field(
        description="The roster agreement she proffers.",
    )


class TermsProfferMessage(BaseMessage):
    """Terms proffer.

    The individual proffers her own terms: one agreement of the MyTerms roster, by id, version
    and digest (spec §6.70, IEEE 7012).
    """

    type: Literal["terms-proffer"] = Field(
        description="Always `terms-proffer`.",
    )

    body: TermsProfferBody = Field(
        description="The `terms-proffer` body.",
    )


class MaterialDispatchBody(VRMModel):
    """Material dispatch body.

    The request answered, what was posted and when, and the address's deletion.
    """

    request: MessageRef = Field(
        description="Her material-request, by the digest of the bytes received.",
    )

    materials: Annotated[tuple[KebabToken, ...], Field(min_length=1, max_length=10)] = Field(
        description="The codes of the material posted: those she asked for.",
    )

    sent_at: Timestamp = Field(
        alias="sentAt",
        description="When it was posted.",
    )

    address_deleted: Literal[True] = Field(
        alias="addressDeleted",
        description="Always `true`: the address was deleted when the material was posted.",
    )


class MaterialDispatchMessage(BaseMessage):
    """Material dispatch.

    The vendor says the material she asked for was posted and that the address she gave for it
    was deleted (spec §6.61). It answers her material-request and closes it; it changes no
    state.
    """

    type: Literal["material-dispatch"] = Field(
        description="Always `material-dispatch`.",
    )

    body: MaterialDispatchBody = Field(
        description="The `material-dispatch` body.",
    )


class MaterialItem(VRMModel):
    """Material item.

    One piece of printed material.
    """

    code: KebabToken = Field(
        description="What it is, e.g. `brochure`, `price-list`, `spec-sheet`.",
    )

    product: Annotated[
        Annotated[JsonStr, StringConstraints(min_length=1, max_length=200)] | None, NotNull
    ] = Field(
        default=None,
        description="The product it is about, e.g. `Toyota Prius`.",
    )


class DeliveryConsent(VRMModel):
    """Delivery consent.

    The one purpose the address is given for (`delivery`) and its retention: until the material
    is sent.
    """

    purpose: Literal["delivery"] = Field(
        description="Always `delivery`: the address is for posting this material, nothing else.",
    )

    retention: Literal["until-sent"] = Field(
        description="Always `until-sent`: the address is deleted once the material is posted.",
    )


class MaterialRequestBody(VRMModel):
    """Material request body.

    What material, where to post it, and the one-purpose consent the address is given under.
    """

    materials: Annotated[tuple[MaterialItem, ...], Field(min_length=1, max_length=10)] = Field(
        description="The printed material asked for, each once.",
    )

    address: PostalAddress = Field(
        description="Where to post it: the only personal data the request carries.",
    )

    consent: DeliveryConsent = Field(
        description="What the address may be used for, and for how long.",
    )

    about: Annotated[MessageRef | None, NotNull] = Field(
        default=None,
        description="The message the material concerns, e.g. an offer.",
    )


class MaterialRequestMessage(BaseMessage):
    """Material request.

    The individual asks a vendor for printed material (a brochure) by post during the enquiry or
    the negotiation, disclosing only what delivery by post needs: a postal address given for
    that delivery alone and kept only until the material is sent (spec §6.60). A side exchange:
    it opens a request the vendor answers with a `material-dispatch`, and changes no state.
    """

    type: Literal["material-request"] = Field(
        description="Always `material-request`.",
    )

    body: MaterialRequestBody = Field(
        description="The `material-request` body.",
    )


#: Any message of the protocol; ``type`` selects the model (spec §6).
Message: TypeAlias = Annotated[
    PersonalRfiMessage
    | PersonalRfpMessage
    | OfferMessage
    | TermsAssertionMessage
    | ExitNoticeMessage
    | OfferAcceptanceMessage
    | OfferDeclineMessage
    | DealConfirmationMessage
    | DealRefusalMessage
    | TermsResponseMessage
    | ServiceNoticeMessage
    | ServiceResponseMessage
    | SupportRequestMessage
    | SupportResolutionMessage
    | ExitAcknowledgementMessage
    | ProblemReportMessage
    | ReceiptMessage
    | DeliveryNoticeMessage
    | HandoverRecordMessage
    | InspectionResultMessage
    | InvoiceMessage
    | InvoiceQueryMessage
    | PaymentNoticeMessage
    | PaymentReceiptMessage
    | AnswerMessage
    | QuestionMessage
    | SupportEscalationMessage
    | AccessGrantMessage
    | AccessRevocationMessage
    | ConsentChangeMessage
    | ConsentReceiptMessage
    | AddonOfferMessage
    | AddonResponseMessage
    | AppointmentBookingMessage
    | AppointmentCancellationMessage
    | AppointmentConfirmationMessage
    | AppointmentProposalMessage
    | ServiceRecordMessage
    | DetailsReceiptMessage
    | DetailsUpdateMessage
    | ProgrammeEnrolmentMessage
    | TermsAgreementMessage
    | TermsProfferMessage
    | MaterialDispatchMessage
    | MaterialRequestMessage,
    Field(discriminator="type"),
]

#: The model of each message type.
MESSAGE_MODELS: Final[MappingProxyType[MessageType, type[BaseMessage]]] = MappingProxyType(
    {
        MessageType.PERSONAL_RFI: PersonalRfiMessage,
        MessageType.PERSONAL_RFP: PersonalRfpMessage,
        MessageType.OFFER: OfferMessage,
        MessageType.TERMS_ASSERTION: TermsAssertionMessage,
        MessageType.EXIT_NOTICE: ExitNoticeMessage,
        MessageType.OFFER_ACCEPTANCE: OfferAcceptanceMessage,
        MessageType.OFFER_DECLINE: OfferDeclineMessage,
        MessageType.DEAL_CONFIRMATION: DealConfirmationMessage,
        MessageType.DEAL_REFUSAL: DealRefusalMessage,
        MessageType.TERMS_RESPONSE: TermsResponseMessage,
        MessageType.SERVICE_NOTICE: ServiceNoticeMessage,
        MessageType.SERVICE_RESPONSE: ServiceResponseMessage,
        MessageType.SUPPORT_REQUEST: SupportRequestMessage,
        MessageType.SUPPORT_RESOLUTION: SupportResolutionMessage,
        MessageType.EXIT_ACKNOWLEDGEMENT: ExitAcknowledgementMessage,
        MessageType.PROBLEM_REPORT: ProblemReportMessage,
        MessageType.RECEIPT: ReceiptMessage,
        MessageType.DELIVERY_NOTICE: DeliveryNoticeMessage,
        MessageType.HANDOVER_RECORD: HandoverRecordMessage,
        MessageType.INSPECTION_RESULT: InspectionResultMessage,
        MessageType.INVOICE: InvoiceMessage,
        MessageType.INVOICE_QUERY: InvoiceQueryMessage,
        MessageType.PAYMENT_NOTICE: PaymentNoticeMessage,
        MessageType.PAYMENT_RECEIPT: PaymentReceiptMessage,
        MessageType.ANSWER: AnswerMessage,
        MessageType.QUESTION: QuestionMessage,
        MessageType.SUPPORT_ESCALATION: SupportEscalationMessage,
        MessageType.ACCESS_GRANT: AccessGrantMessage,
        MessageType.ACCESS_REVOCATION: AccessRevocationMessage,
        MessageType.CONSENT_CHANGE: ConsentChangeMessage,
        MessageType.CONSENT_RECEIPT: ConsentReceiptMessage,
        MessageType.ADDON_OFFER: AddonOfferMessage,
        MessageType.ADDON_RESPONSE: AddonResponseMessage,
        MessageType.APPOINTMENT_BOOKING: AppointmentBookingMessage,
        MessageType.APPOINTMENT_CANCELLATION: AppointmentCancellationMessage,
        MessageType.APPOINTMENT_CONFIRMATION: AppointmentConfirmationMessage,
        MessageType.APPOINTMENT_PROPOSAL: AppointmentProposalMessage,
        MessageType.SERVICE_RECORD: ServiceRecordMessage,
        MessageType.DETAILS_RECEIPT: DetailsReceiptMessage,
        MessageType.DETAILS_UPDATE: DetailsUpdateMessage,
        MessageType.PROGRAMME_ENROLMENT: ProgrammeEnrolmentMessage,
        MessageType.TERMS_AGREEMENT: TermsAgreementMessage,
        MessageType.TERMS_PROFFER: TermsProfferMessage,
        MessageType.MATERIAL_DISPATCH: MaterialDispatchMessage,
        MessageType.MATERIAL_REQUEST: MaterialRequestMessage,
    }
)
