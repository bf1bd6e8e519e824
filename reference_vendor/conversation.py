"""What the vendor asks and answers in conversation (spec §6.30, §6.31).

The rules are the catalogue's: the vendor asks which trim she means when her
request names a model it sells in more than one trim, and it answers her
questions from what its catalogue says (trims, delivery, financing, warranty
and options). A question it cannot answer from the catalogue still gets an
answer that says so (VRM-CONV-004): she is never left waiting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from reference_vendor.catalogue import Catalogue, Product
from vrm_protocol.models import (
    AnswerBody,
    MessageRef,
    PersonalRfpBody,
    QuestionBody,
    SupportEscalationBody,
    SupportResolutionBody,
)

__all__ = ["TRIM_TOPIC", "answer_body", "escalation_answers", "trim_question"]

#: The topic of the vendor's question about the trim she means.
TRIM_TOPIC: Final = "trim"
#: The longest answer the vendor composes (the schema allows 4000 characters).
_MAX_ANSWER: Final = 4000


def _trims(catalogue: Catalogue, make: str | None, model: str | None) -> list[Product]:
    return [
        product
        for product in catalogue.products
        if (make is None or product.make.casefold() == make.casefold())
        and (model is None or product.model.casefold() == model.casefold())
    ]


def trim_question(
    catalogue: Catalogue, rfp: PersonalRfpBody, about: MessageRef
) -> QuestionBody | None:
    """The question to ask when her RFP names a model sold in several trims, else ``None``."""
    item = rfp.requirements.item
    if item.model is None:
        return None
    products = _trims(catalogue, item.make, item.model)
    trims = sorted({product.trim for product in products})
    if len(trims) < 2:
        return None
    choices = "; ".join(
        f"{p.trim} ({catalogue.currency} {p.price}: {p.description})"
        for p in sorted(products, key=lambda p: (p.price, p.trim))
    )
    return QuestionBody(
        topic=TRIM_TOPIC,
        text=f"Which trim of the {products[0].make} {products[0].model} do you mean? {choices}.",
        about=about,
    )


def _trim_answer(catalogue: Catalogue) -> str:
    by_model: dict[str, list[str]] = {}
    for product in catalogue.products:
        by_model.setdefault(f"{product.make} {product.model}", []).append(
            f"{product.trim} ({catalogue.currency} {product.price})"
        )
    return "Our trims: " + "; ".join(f"{m}: {', '.join(t)}" for m, t in sorted(by_model.items()))


def _delivery_answer(catalogue: Catalogue) -> str:
    return (
        f"We deliver by {catalogue.delivery_method.replace('-', ' ')}, "
        f"{catalogue.delivery_days} days after the deal is confirmed."
    )


def _financing_answer(catalogue: Catalogue) -> str:
    if not catalogue.financing:
        return "We offer no financing of our own; a loan you arrange yourself is welcome."
    plans = "; ".join(
        f"{plan.plan}: {plan.apr}% APR over {plan.term_months} months, "
        f"{plan.deposit_percent}% deposit"
        + (" (needs an ability-to-pay attestation)" if plan.requires_attestation else "")
        for plan in catalogue.financing
    )
    return f"Financing plans: {plans}."


def _warranty_answer(catalogue: Catalogue) -> str:
    extensions = [p for p in catalogue.programmes if "warranty" in p.code]
    extra = f" Extensions: {', '.join(p.code for p in extensions)}." if extensions else ""
    return (
        "Every new car carries the manufacturer's warranty, which we honour at our "
        f"workshops; the terms are those of the offer you accept.{extra}"
    )


def _options_answer(catalogue: Catalogue) -> str:
    if not catalogue.options:
        return "We offer no options beyond the models as listed."
    return "Options: " + "; ".join(
        f"{o.description} ({catalogue.currency} {o.price})" for o in catalogue.options
    )


_ANSWERS: Final[Mapping[str, Callable[[Catalogue], str]]] = {
    TRIM_TOPIC: _trim_answer,
    "delivery": _delivery_answer,
    "financing": _financing_answer,
    "warranty": _warranty_answer,
    "options": _options_answer,
}


def answer_body(catalogue: Catalogue, question: QuestionBody, ref: MessageRef) -> AnswerBody:
    """The vendor's answer to ``question`` (named by ``ref``), from its catalogue.

    A topic the catalogue says nothing of gets an answer that says so
    (VRM-CONV-004), rather than silence.
    """
    compose = _ANSWERS.get(question.topic or "")
    if compose is not None:
        text = compose(catalogue)
    else:
        topics = ", ".join(sorted(_ANSWERS))
        text = (
            f"{catalogue.name} cannot answer this from its catalogue: please ask at the "
            f"showroom, or ask again on one of these topics: {topics}."
        )
    return AnswerBody(question=ref, text=text[:_MAX_ANSWER])


def escalation_answers(
    catalogue: Catalogue, escalation: SupportEscalationBody, ref: MessageRef
) -> list[SupportResolutionBody]:
    """The vendor's answers to her escalation ``ref`` (spec §6.32, VRM-CONV-008):
    the level she named takes the case (``escalated``), reviews the history she
    carried and settles it (``resolved``), each naming the request and the
    escalation. The reference vendor's higher levels settle at once, with a
    goodwill gesture: a real one would answer later, before the deadline."""
    level = escalation.to.name
    taken = SupportResolutionBody(
        request=escalation.request,
        escalation=ref,
        status="escalated",
        resolution=(
            f"{level} has your case, with the {len(escalation.history)} messages of its "
            f"history; you will have its answer before {escalation.deadline}."
        ),
    )
    settled = SupportResolutionBody(
        request=escalation.request,
        escalation=ref,
        status="resolved",
        resolution=(
            f"{level} reviewed the case: {catalogue.name} repairs it at its cost at any of "
            "its workshops, and adds a year to the warranty of the part concerned."
        ),
    )
    return [taken, settled]
