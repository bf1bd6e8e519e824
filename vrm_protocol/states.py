"""The states of a relationship (spec §7.1) and what the specification says of each.

A leaf module: the message-type units (:mod:`vrm_protocol.message_types`)
name these states in their transition rows, and the state machine
(:mod:`vrm_protocol.state_machine`) moves between them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from vrm_protocol.vocabulary import LifecycleStep

__all__ = ["STATE_DESCRIPTIONS", "STEP_STATES", "RelationshipState", "StateDescription"]


class RelationshipState(StrEnum):
    """The states of one relationship (spec §7.1). A relationship is in exactly one
    state at a time, whatever the number of its threads.

    Each member's docstring (``RelationshipState.SEARCH.__doc__``) says how the
    relationship enters and leaves it and which of the ten lifecycle steps it
    carries; :data:`STATE_DESCRIPTIONS` holds the same facts as data.
    """

    SEARCH = "search"
    ENQUIRY = "enquiry"
    NEGOTIATION = "negotiation"
    TRANSACTION = "transaction"
    WELCOME = "welcome"
    SERVICING = "servicing"
    DEVELOPMENT = "development"
    PROBLEM = "problem"
    EXITING = "exiting"
    EXITED = "exited"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class StateDescription:
    """What the specification says about one state."""

    steps: tuple[LifecycleStep, ...]
    summary: str
    entry: str
    exit: str

    def docstring(self) -> str:
        """The member docstring built from this description."""
        steps = ", ".join(step.value for step in self.steps)
        return (
            f"{self.summary}\n\nLifecycle step(s): {steps}.\nEntry: {self.entry}\nExit: {self.exit}"
        )


_S = RelationshipState
_L = LifecycleStep

#: Every state with its lifecycle steps, entry and exit (spec §7.1, §4).
STATE_DESCRIPTIONS: Final[Mapping[RelationshipState, StateDescription]] = MappingProxyType(
    {
        _S.SEARCH: StateDescription(
            (_L.SEARCH,),
            "No message yet. Step 1 (Search / Target) is the individual's own research, "
            "kept in her personal data store; it has no message of its own until she "
            "sends an intentcast.",
            "the initial state of every relationship.",
            "the individual's personal-rfi (to ENQUIRY) or personal-rfp (to NEGOTIATION).",
        ),
        _S.ENQUIRY: StateDescription(
            (_L.SEARCH, _L.ENGAGE),
            "The individual has sent a pseudonymous personal RFI (the search's intentcast); "
            "the vendor's enquiry management answers it (step 2, Find / Engage).",
            "a personal-rfi from SEARCH, CLOSED or EXITED (re-engagement).",
            "a vendor offer or an RFP (to NEGOTIATION), a terms assertion in answer "
            "(to WELCOME), or an exit-notice (hers, or a vendor's leaving the market).",
        ),
        _S.NEGOTIATION: StateDescription(
            (_L.ENGAGE, _L.NEGOTIATE),
            "Offers and counter-offers on the table; the personal RFP and its answers "
            "(steps 2 and 3).",
            "a personal-rfp, a vendor offer in ENQUIRY, or the vendor's deal-refusal of a deal "
            "accepted here.",
            "an acceptance (to TRANSACTION), a decline of every live offer (to CLOSED), "
            "or an exit-notice.",
        ),
        _S.TRANSACTION: StateDescription(
            (_L.TRANSACT,),
            "The individual has accepted a binding offer, disclosing her identity; the "
            "vendor has yet to confirm the deal (step 4). Only safety recalls may reach her "
            "meanwhile.",
            "an offer-acceptance in NEGOTIATION or DEVELOPMENT.",
            "the vendor's deal-confirmation (to WELCOME), its deal-refusal (back to the state "
            "the acceptance was made in), or an exit-notice.",
        ),
        _S.WELCOME: StateDescription(
            (_L.WELCOME,),
            "The deal is confirmed; delivery and set-up, and the vendor presents its terms "
            "of sharing (step 5). Only safety recalls reach her as notices until she answers.",
            "a deal-confirmation, a terms-assertion answering an RFI (a third party), or the "
            "resolution of a problem that arose here.",
            "the individual's terms-response (to SERVICING), a support-request (to PROBLEM), "
            "or an exit-notice.",
        ),
        _S.SERVICING: StateDescription(
            (_L.SERVICING,),
            "Ordinary service under the accepted terms: reminders, recalls, updates and the "
            "individual's answers (step 6).",
            "a terms-response in WELCOME, or the resolution of a problem that arose here.",
            "a development offer or her programme-enrolment (to DEVELOPMENT), a support-request "
            "(to PROBLEM), or an exit-notice.",
        ),
        _S.DEVELOPMENT: StateDescription(
            (_L.DEVELOPMENT,),
            "Servicing plus development: retention offers, programmes she asked to join, scoped "
            "data grants (step 7).",
            "a vendor offer with a topic, or her programme-enrolment, in SERVICING; "
            "the resolution of a problem that arose here; the refusal of a development deal.",
            "an acceptance of a development offer (to TRANSACTION), a support-request "
            "(to PROBLEM), or an exit-notice.",
        ),
        _S.PROBLEM: StateDescription(
            (_L.PROBLEMS,),
            "At least one support request is unresolved (step 8).",
            "a support-request in WELCOME, SERVICING or DEVELOPMENT.",
            "a support-resolution that resolves the last open request (back to the state the "
            "first request was made in: WELCOME, SERVICING or DEVELOPMENT), or an exit-notice.",
        ),
        _S.EXITING: StateDescription(
            (_L.EXIT,),
            "An exit notice is waiting for the other party's acknowledgement, which carries "
            "the export and the deletion receipt (step 9).",
            "an exit-notice from the individual, or from a vendor leaving the market.",
            "the other party's exit-acknowledgement (to EXITED).",
        ),
        _S.EXITED: StateDescription(
            (_L.EXIT, _L.REENGAGEMENT),
            "The relationship has ended; its offers are void. Step 10 (Re-engagement) has "
            "no state of its own: it is the individual's new RFI or RFP from here, with the "
            "history kept. The vendor may write only as the exit's re-engagement "
            "preferences allow.",
            "an exit-acknowledgement in EXITING.",
            "the individual's personal-rfi (to ENQUIRY) or personal-rfp (to NEGOTIATION).",
        ),
        _S.CLOSED: StateDescription(
            (_L.NEGOTIATE,),
            "A negotiation that ended without a deal: the individual declined every live offer.",
            "an offer-decline in NEGOTIATION that leaves no live vendor offer.",
            "a new personal-rfi or personal-rfp from the individual, or an exit-notice (hers, "
            "or a vendor's leaving the market).",
        ),
    }
)

for _state, _description in STATE_DESCRIPTIONS.items():
    # Per-member docstrings, so ``help(RelationshipState.WELCOME)`` explains the state.
    _state.__doc__ = _description.docstring()
del _state, _description

#: Which states carry each lifecycle step (derived from :data:`STATE_DESCRIPTIONS`).
STEP_STATES: Final[Mapping[LifecycleStep, tuple[RelationshipState, ...]]] = MappingProxyType(
    {
        step: tuple(state for state, d in STATE_DESCRIPTIONS.items() if step in d.steps)
        for step in LifecycleStep
    }
)

del _S, _L
