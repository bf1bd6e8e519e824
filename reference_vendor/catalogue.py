"""Vendor catalogues: who the party is, what it sells, on what terms.

A catalogue is a TOML file: the shipped ones are package data
(``reference_vendor/catalogues/<name>.toml``), and ``--catalogue`` also takes
a path. It holds the party's name and role, the categories it serves, its
terms of sharing (the text is digested here, so the reference a terms
assertion carries binds the exact document, spec §6.7), the data it asks
for, its commitments, its products, options, financing plans, trade-in rule,
pricing floor and negotiation rules, the notification categories it sends,
its programmes, and the attestation issuers it trusts (spec §10.3).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any, cast, get_args

from vrm_agent.files import DataDirError, check_config_file
from vrm_protocol.canonical import b64url_encode
from vrm_protocol.http_binding import terms_path
from vrm_protocol.message_types.service_notice import KIND_CATEGORIES
from vrm_protocol.models import Handover
from vrm_protocol.myterms import agreement

__all__ = [
    "Catalogue",
    "CatalogueError",
    "DataRequest",
    "FinancingPlan",
    "Option",
    "Product",
    "Programme",
    "Touchpoint",
    "TradeInRule",
    "TrustedIssuer",
    "load_catalogue",
    "parse_duration",
    "shipped_catalogues",
]


class CatalogueError(ValueError):
    """A catalogue file is missing or malformed."""


_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$")


def parse_duration(period: str) -> timedelta:
    """An ISO 8601 period of years, months, weeks and days as a time span.

    Years count 365 days and months 30: a retention deadline is computed once,
    when the data arrives, and is then a fixed instant.

    Raises:
        CatalogueError: ``period`` is not of the form ``P[nY][nM][nW][nD]``.
    """
    match = _DURATION.fullmatch(period)
    if not match or period == "P":
        raise CatalogueError(f"not an ISO 8601 period of Y/M/W/D: {period!r}")
    years, months, weeks, days = (int(group or 0) for group in match.groups())
    return timedelta(days=years * 365 + months * 30 + weeks * 7 + days)


def _decimal(value: Any, where: str) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation as error:
        raise CatalogueError(f"{where}: not a decimal: {value!r}") from error


@dataclass(frozen=True, slots=True)
class Product:
    """One model and trim the vendor sells."""

    sku: str
    category: str
    make: str
    model: str
    trim: str
    description: str
    year: int
    price: Decimal
    features: frozenset[str]


@dataclass(frozen=True, slots=True)
class Option:
    """An option that can be added to a product (e.g. the premium sound system)."""

    code: str
    description: str
    price: Decimal


@dataclass(frozen=True, slots=True)
class FinancingPlan:
    """A financing plan; ``requires_attestation`` plans need a trusted
    ability-to-pay attestation covering the amount financed (spec §10.1)."""

    plan: str
    apr: Decimal
    term_months: int
    deposit_percent: Decimal
    requires_attestation: bool


@dataclass(frozen=True, slots=True)
class TradeInRule:
    """Valuation of a trade-in: a base value reduced by age and mileage."""

    base_value: Decimal
    depreciation_per_year_percent: Decimal
    per_mile: Decimal
    minimum: Decimal
    handover: Handover


@dataclass(frozen=True, slots=True)
class DataRequest:
    """One data category the party asks for in its terms assertion (spec §6.7)."""

    item: str
    purposes: tuple[str, ...]
    retention: str
    required: bool
    recipients: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Programme:
    """A development programme offered by service notice (seed 004; spec §6.9)."""

    code: str
    kind: str
    category: str
    summary: str
    details: str
    data_requests: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Touchpoint:
    """A retention touchpoint a manufacturer runs (seed 004): a service notice of
    ``kind`` in ``category``, sent only within her notification preferences, and
    only when she shared every item of ``needs`` (a promotion for her area needs
    her area)."""

    code: str
    kind: str
    category: str
    summary: str
    needs: tuple[str, ...] = ()
    programme: str | None = None


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """An attestation issuer the vendor trusts, with its public keys."""

    id: str
    jwks: dict[str, Any]


@functools.lru_cache(maxsize=16)
def _text_digest(text: str) -> str:
    # Every offer and terms assertion carries the terms' digest: hash each text once.
    return "sha-256:" + b64url_encode(hashlib.sha256(text.encode()).digest())


@dataclass(frozen=True, slots=True)
class Catalogue:
    """A parsed catalogue."""

    key: str
    name: str
    role: str
    categories: tuple[str, ...]
    countries: tuple[str, ...]
    currency: str
    terms_id: str
    terms_version: str
    terms_text: str
    data_requests: tuple[DataRequest, ...]
    will_do: tuple[str, ...]
    will_not_do: tuple[str, ...]
    notification_categories: tuple[str, ...]
    floor_percent: Decimal
    max_discount_per_round_percent: Decimal
    max_rounds: int
    offer_validity: timedelta
    rfi_offer_basis: str
    indicative_validity: timedelta
    terms_validity: timedelta
    delivery_days: int
    delivery_method: str
    products: tuple[Product, ...] = ()
    options: tuple[Option, ...] = ()
    financing: tuple[FinancingPlan, ...] = ()
    trade_in: TradeInRule | None = None
    programmes: tuple[Programme, ...] = ()
    trusted_issuers: tuple[TrustedIssuer, ...] = field(default=())
    #: The retention touchpoints it runs, in order (seed 004).
    touchpoints: tuple[Touchpoint, ...] = ()
    #: The MyTerms roster agreements it agrees to (spec §6.71), by ``(id, version)``.
    agreements: tuple[tuple[str, str], ...] = ()
    #: The party's origin (its party id), where its terms are served (spec §11.7);
    #: set by :meth:`at_origin` when the agent knows its address.
    origin: str = ""

    @property
    def terms_digest(self) -> str:
        """``sha-256:`` + base64url of the SHA-256 of the terms text (UTF-8)."""
        return _text_digest(self.terms_text)

    @property
    def terms_bytes(self) -> bytes:
        """The terms document exactly as served (UTF-8): what :attr:`terms_digest` hashes."""
        return self.terms_text.encode("utf-8")

    @property
    def terms_path(self) -> str:
        """Where the agent serves its terms document, under its own origin (spec §11.7)."""
        return terms_path(self.terms_id, self.terms_version)

    def at_origin(self, origin: str) -> Catalogue:
        """This catalogue for the party at ``origin`` (its party id): the terms
        document is served there, so that is where its reference points.

        Raises:
            CatalogueError: ``origin`` is not an http(s) URL.
        """
        from dataclasses import replace

        if not origin.startswith(("https://", "http://")):
            raise CatalogueError(f"the party's origin is an http(s) URL, not {origin!r}")
        return replace(self, origin=origin.rstrip("/"))

    def terms_reference(self) -> dict[str, str]:
        """The ``termsReference`` offers and terms assertions carry (spec §6.7): its
        ``url`` is the terms route on the party's own origin (spec §11.7, D12).

        Raises:
            CatalogueError: the catalogue was not bound to an origin (:meth:`at_origin`).
        """
        if not self.origin:
            raise CatalogueError(
                f"catalogue {self.key} is not bound to the party's origin (at_origin)"
            )
        return {
            "id": self.terms_id,
            "version": self.terms_version,
            "url": self.origin + self.terms_path,
            "digest": self.terms_digest,
        }

    @property
    def sells(self) -> bool:
        """Whether the party sells (a vendor) or only presents terms and notices (a
        third party, a manufacturer): a party that sells nothing neither takes nor
        sends the messages of selling (RFP, offers, acceptance, deal)."""
        return self.role == "vendor"

    def serves(self, category: str) -> bool:
        """Whether ``category`` (or a parent of it) is one the party serves."""
        return any(category == c or category.startswith(c + ".") for c in self.categories)

    def option(self, code: str) -> Option | None:
        """The option with ``code``."""
        return next((option for option in self.options if option.code == code), None)

    def programme(self, code: str) -> Programme | None:
        """The programme with ``code``."""
        return next((p for p in self.programmes if p.code == code), None)

    def with_trusted_issuers(self, extra: tuple[TrustedIssuer, ...]) -> Catalogue:
        """This catalogue, trusting ``extra`` issuers as well."""
        from dataclasses import replace

        return replace(self, trusted_issuers=self.trusted_issuers + extra)


def shipped_catalogues() -> list[str]:
    """The names of the catalogues shipped with the package."""
    folder = resources.files("reference_vendor") / "catalogues"
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    )


def _check_config(path: Path) -> None:
    """Refuse a configuration file others can write (D10): whoever can write a
    catalogue decides what the vendor asks its customers for, and whoever can
    write an issuer file decides whose attestations it believes.

    Raises:
        CatalogueError: it may be written by someone other than the agent's user.
    """
    try:
        check_config_file(path)
    except DataDirError as error:
        raise CatalogueError(str(error)) from error


def load_catalogue(name_or_path: str) -> Catalogue:
    """Load a shipped catalogue by name, or a catalogue file by path.

    Raises:
        CatalogueError: no such catalogue, or it is malformed.
    """
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        _check_config(path)
        try:
            text = path.read_text("utf-8")
        except OSError as error:
            raise CatalogueError(f"cannot read catalogue {path}: {error}") from error
        base: Path | None = path.parent
        key = path.stem
    else:
        resource = resources.files("reference_vendor") / "catalogues" / f"{name_or_path}.toml"
        if not resource.is_file():
            raise CatalogueError(
                f"no catalogue {name_or_path!r}; shipped: {', '.join(shipped_catalogues())}"
            )
        text = resource.read_text("utf-8")
        base = None
        key = name_or_path
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CatalogueError(f"catalogue {name_or_path}: {error}") from error
    try:
        return _parse(key, document, base)
    except (KeyError, TypeError) as error:
        raise CatalogueError(f"catalogue {name_or_path}: missing or wrong {error}") from error


def _parse(key: str, doc: dict[str, Any], base: Path | None) -> Catalogue:
    party = doc["party"]
    terms = doc["terms"]
    if "url" in terms:
        # spec §11.7: a party serves the terms it asserts on its own origin, and
        # the reference names that address; a url written here would name a
        # document nobody can fetch from the party.
        raise CatalogueError(
            "terms.url is not configurable: the agent serves its terms at "
            "<its base URL>/vrm/terms/<id>/<version>; remove the url"
        )
    pricing = doc.get("pricing", {})
    role = str(party["role"])
    if role not in ("vendor", "third-party", "manufacturer"):
        raise CatalogueError(f"party.role must be vendor, third-party or manufacturer: {role!r}")
    products = tuple(
        Product(
            sku=str(p["sku"]),
            category=str(p.get("category", party["categories"][0])),
            make=str(p["make"]),
            model=str(p["model"]),
            trim=str(p.get("trim", "")),
            description=str(p["description"]),
            year=int(p["year"]),
            price=_decimal(p["price"], f"models[{p['sku']}].price"),
            features=frozenset(str(f) for f in p.get("features", [])),
        )
        for p in doc.get("models", [])
    )
    options = tuple(
        Option(str(o["code"]), str(o["description"]), _decimal(o["price"], f"options.{o['code']}"))
        for o in doc.get("options", [])
    )
    financing = tuple(
        FinancingPlan(
            plan=str(f["plan"]),
            apr=_decimal(f["apr"], f"financing.{f['plan']}.apr"),
            term_months=int(f["term_months"]),
            deposit_percent=_decimal(f.get("deposit_percent", "0"), "deposit_percent"),
            requires_attestation=bool(f.get("requires_attestation", True)),
        )
        for f in doc.get("financing", [])
    )
    trade_in_doc = doc.get("trade_in")
    trade_in = (
        TradeInRule(
            base_value=_decimal(trade_in_doc["base_value"], "trade_in.base_value"),
            depreciation_per_year_percent=_decimal(
                trade_in_doc["depreciation_per_year_percent"], "trade_in.depreciation"
            ),
            per_mile=_decimal(trade_in_doc["per_mile"], "trade_in.per_mile"),
            minimum=_decimal(trade_in_doc["minimum"], "trade_in.minimum"),
            handover=_handover(str(trade_in_doc.get("handover", "with-delivery"))),
        )
        if trade_in_doc
        else None
    )
    requests = tuple(
        DataRequest(
            item=str(r["item"]),
            purposes=tuple(str(p) for p in r["purposes"]),
            retention=str(r["retention"]),
            required=bool(r.get("required", False)),
            recipients=tuple(dict(x) for x in r.get("recipients", [])),
        )
        for r in doc.get("data_requests", [])
    )
    for request in requests:
        parse_duration(request.retention)
    programmes = tuple(
        Programme(
            code=str(p["code"]),
            kind=str(p.get("kind", "programme-offer")),
            category=str(p["category"]),
            summary=str(p["summary"]),
            details=str(p.get("details", p["summary"])),
            data_requests=tuple(dict(x) for x in p.get("data_requests", [])),
        )
        for p in doc.get("programmes", [])
    )
    issuers = tuple(_issuer(i, base) for i in doc.get("trusted_issuers", []))
    touchpoints = tuple(
        Touchpoint(
            code=str(t["code"]),
            kind=str(t["kind"]),
            category=str(t["category"]),
            summary=str(t["summary"]),
            needs=tuple(str(x) for x in t.get("needs", [])),
            programme=str(t["programme"]) if "programme" in t else None,
        )
        for t in doc.get("touchpoints", [])
    )
    for touchpoint in touchpoints:
        # spec §6.9 (VRM-MSG-038): a notice is of a category its kind allows, so
        # that her preferences for that category bind.
        if touchpoint.category not in KIND_CATEGORIES.get(touchpoint.kind, frozenset()):
            raise CatalogueError(
                f"touchpoint {touchpoint.code}: a {touchpoint.kind} notice is not of "
                f"category {touchpoint.category}"
            )
    commitments = doc.get("commitments", {})
    return Catalogue(
        key=key,
        name=str(party["name"]),
        role=role,
        categories=tuple(str(c) for c in party["categories"]),
        countries=tuple(str(c) for c in party.get("countries", [])),
        currency=str(party.get("currency", "GBP")),
        terms_id=str(terms["id"]),
        terms_version=str(terms["version"]),
        terms_text=str(terms["text"]),
        data_requests=requests,
        will_do=tuple(str(x) for x in commitments.get("will_do", [])),
        will_not_do=tuple(str(x) for x in commitments.get("will_not_do", [])),
        notification_categories=tuple(str(x) for x in doc.get("notification_categories", [])),
        floor_percent=_decimal(pricing.get("floor_percent", "90"), "pricing.floor_percent"),
        max_discount_per_round_percent=_decimal(
            pricing.get("max_discount_per_round_percent", "3"), "pricing.max_discount"
        ),
        max_rounds=int(pricing.get("max_rounds", 3)),
        offer_validity=parse_duration(str(pricing.get("offer_validity", "P7D"))),
        rfi_offer_basis=_basis(str(pricing.get("rfi_offer_basis", "indicative"))),
        indicative_validity=parse_duration(str(pricing.get("indicative_validity", "P3D"))),
        terms_validity=parse_duration(str(pricing.get("terms_validity", "P30D"))),
        delivery_days=int(pricing.get("delivery_days", 30)),
        delivery_method=str(pricing.get("delivery_method", "home-delivery")),
        products=products,
        options=options,
        financing=financing,
        trade_in=trade_in,
        programmes=programmes,
        trusted_issuers=issuers,
        touchpoints=touchpoints,
        agreements=_agreements(doc.get("myterms", {})),
    )


def _agreements(section: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """``[myterms] agrees = ["id@version", ...]``: roster agreements only (spec §6.70).

    Raises:
        CatalogueError: an agreement the roster does not hold.
    """
    found: list[tuple[str, str]] = []
    for value in section.get("agrees", []):
        agreement_id, _, version = str(value).partition("@")
        if agreement(agreement_id, version or "1.0") is None:
            raise CatalogueError(f"myterms.agrees: {value!r} is not in the MyTerms roster")
        found.append((agreement_id, version or "1.0"))
    return tuple(found)


def _handover(value: str) -> Handover:
    if value not in get_args(Handover):
        raise CatalogueError(
            f"trade_in.handover is one of {list(get_args(Handover))}, not {value!r}"
        )
    return cast(Handover, value)


def _basis(value: str) -> str:
    if value not in ("indicative", "binding"):
        raise CatalogueError(f"pricing.rfi_offer_basis is indicative or binding, not {value!r}")
    return value


def _issuer(entry: dict[str, Any], base: Path | None) -> TrustedIssuer:
    if "jwks" in entry:
        jwks = dict(entry["jwks"])
    elif "jwks_file" in entry:
        path = Path(str(entry["jwks_file"]))
        if not path.is_absolute() and base is not None:
            path = base / path
        jwks = load_issuer_file(path).jwks
    else:
        raise CatalogueError(f"trusted issuer {entry.get('id')!r} needs jwks or jwks_file")
    return TrustedIssuer(str(entry["id"]), jwks)


def load_issuer_file(path: Path, issuer_id: str | None = None) -> TrustedIssuer:
    """Read a trusted issuer from a file: either ``vrm conformance issuer``'s
    output (``{"issuer": id, "jwks": {...}}``) or a bare JWKS (then
    ``issuer_id`` names the issuer).

    Raises:
        CatalogueError: the file cannot be read or holds neither form.
    """
    _check_config(path)
    try:
        document = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise CatalogueError(f"cannot read issuer file {path}: {error}") from error
    if isinstance(document, dict) and isinstance(document.get("jwks"), dict):
        return TrustedIssuer(str(issuer_id or document.get("issuer")), dict(document["jwks"]))
    if isinstance(document, dict) and isinstance(document.get("keys"), list):
        if issuer_id is None:
            raise CatalogueError(f"{path} is a bare JWKS: name the issuer id as well")
        return TrustedIssuer(issuer_id, document)
    raise CatalogueError(f"{path} holds neither an issuer document nor a JWKS")
