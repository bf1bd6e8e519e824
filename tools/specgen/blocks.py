"""The generated blocks that ``{{...}}`` markers in the prose expand to.

Each block is produced from the single source of its facts (the error
registry, the vocabulary, the transition table, the schemas, the examples,
the requirements registry), in one of two flavours: ``html`` (for the
self-contained HTML document, where raw HTML and inline SVG are allowed) and
``md`` (for rendering on a code-hosting site, where the SVG is a separate
file).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from markdown_it import MarkdownIt

from tools.specgen.diagram import Edge, render_state_diagram
from tools.specgen.errors import SpecBuildError
from tools.specgen.markdown import link_sections, table
from tools.specgen.schema_docs import Example, SchemaSet
from tools.specgen.sections import MESSAGE_SECTION, SECTION_REFERENCE
from tools.specgen.signed_examples import (
    TEST_KEYS_FILE,
    TEST_ONLY_WARNING,
    SignedJourney,
)
from vrm_protocol import directory, http_binding, read_proof, registries, state_machine, vocabulary
from vrm_protocol.errors import ERROR_TYPE_BASE, ErrorCode, RemoteProtocolError
from vrm_protocol.message_types import MESSAGE_TYPES
from vrm_protocol.requirements import Requirement

__all__ = [
    "DIAGRAM_FILE",
    "BlockContext",
    "Flavour",
    "expand_block",
    "phase_diagram_files",
    "state_diagram_svg",
]

Flavour = Literal["html", "md"]

#: The state diagram as a file beside the Markdown rendering (spec/ relative).
DIAGRAM_FILE: Final = "state-machine.svg"


@dataclass
class BlockContext:
    """Everything a block may draw on, plus what the build learns while expanding."""

    requirements: Mapping[str, Requirement]
    #: requirement id -> ids of the conformance checks citing it; None: not traced.
    traceability: Mapping[str, Sequence[str]] | None
    schemas: SchemaSet
    examples: Sequence[Example]
    inline: MarkdownIt
    #: The worked example signed with the published test keys (spec §17).
    signed: SignedJourney | None = None
    #: Section numbers cited in generated text that the map does not have.
    unknown_sections: list[str] = field(default_factory=list)
    #: The repository root (for the files a block reads, the vector index).
    root: Path = field(default_factory=Path)

    def prose(self, text: str) -> str:
        """Markdown inline text with its "§N" references linked."""
        return link_sections(text, set(SECTION_REFERENCE), self.unknown_sections)

    def inline_html(self, text: str) -> str:
        """Markdown inline text rendered as HTML."""
        return str(self.inline.renderInline(self.prose(text)))


def _section_link(number: str) -> str:
    if number in SECTION_REFERENCE:
        return f"[§{number}](#sec-{number})"
    return f"§{number}"


# -- requirements --------------------------------------------------------------------------------


def _checks_text(context: BlockContext, requirement: Requirement) -> str:
    if context.traceability is None:
        return "Checks: not traced in this build."
    checks = context.traceability.get(requirement.id, ())
    if not checks:
        return "No conformance check."
    return "Checked by: " + ", ".join(f"`{check}`" for check in checks) + "."


def requirement_block(context: BlockContext, requirement_id: str, flavour: Flavour) -> str:
    """One requirement, anchored by its id, with level, binding, text and checks.

    Raises:
        KeyError: ``requirement_id`` is not in ``context.requirements``.
    """
    requirement = context.requirements[requirement_id]
    checks = _checks_text(context, requirement)
    if flavour == "html":
        level = requirement.level.value
        return (
            f'<div class="req req-{level.lower()}" id="{requirement.id}">'
            f'<p class="req-head"><a class="req-id" href="#{requirement.id}">{requirement.id}</a> '
            f'<span class="req-level">{level}</span> '
            f'<span class="req-binds">binds {requirement.binds.value}</span></p>'
            f'<p class="req-text">{context.inline_html(requirement.text)}</p>'
            f'<p class="req-checks">{context.inline.renderInline(checks)}</p></div>'
        )
    return "\n".join(
        [
            f'<a id="{requirement.id}"></a>',
            "",
            f"> **[{requirement.id}](#{requirement.id})** · **{requirement.level.value}** · "
            f"binds {requirement.binds.value}",
            ">",
            f"> {context.prose(requirement.text)}",
            ">",
            f"> {checks}",
        ]
    )


def _requirements_index(context: BlockContext) -> str:
    rows = []
    for requirement in context.requirements.values():
        if context.traceability is None:
            checks = "not traced"
        else:
            found = context.traceability.get(requirement.id, ())
            checks = ", ".join(f"`{check}`" for check in found) or "no check"
        rows.append(
            [
                f"[{requirement.id}](#{requirement.id})",
                requirement.level.value,
                requirement.binds.value,
                _section_link(requirement.section),
                checks,
            ]
        )
    return table(
        ["Requirement", "Level", "Binds", "Section", "Conformance checks"],
        rows,
        "Every requirement and the conformance checks that test it",
    )


def _requirements_summary(context: BlockContext) -> str:
    counts: dict[tuple[str, str], int] = {}
    for requirement in context.requirements.values():
        key = (requirement.area, requirement.level.value)
        counts[key] = counts.get(key, 0) + 1
    areas = sorted({area for area, _ in counts})
    rows = [
        [area, *(str(counts.get((area, level), 0)) for level in ("MUST", "SHOULD", "MAY"))]
        for area in areas
    ]
    return table(["Area", "MUST", "SHOULD", "MAY"], rows, "Requirements by area and level")


# -- registries ----------------------------------------------------------------------------------


def _error_codes(context: BlockContext) -> str:
    rows = [
        [
            f'<a id="error-{code.value}"></a>`{code.value}`',
            str(code.http_status),
            code.info.title,
            context.prose(code.info.description),
        ]
        for code in ErrorCode
    ]
    return table(["Code", "HTTP status", "Title", "Meaning"], rows, "The error codes")


def _senders(message_type: vocabulary.MessageType) -> str:
    if message_type in state_machine.ALWAYS_ALLOWED:
        return "either"
    roles = {row.sender for row in state_machine.TRANSITION_ROWS if row.message is message_type}
    if len(roles) == 2:
        return "either"
    return ", ".join(sorted(str(role) for role in roles)) or "none"


def _message_types(context: BlockContext) -> str:
    rows = []
    for message_type in vocabulary.MessageType:
        schema = context.schemas.documents.get(str(message_type), {})
        rows.append(
            [
                f"`{message_type.value}`",
                _section_link(MESSAGE_SECTION[str(message_type)]),
                _senders(message_type),
                context.prose(" ".join(str(schema.get("description", "")).split())),
            ]
        )
    return table(["Type", "Section", "Sent by", "Purpose"], rows, "The message types")


def _media_types(context: BlockContext) -> str:
    rows = [
        [f"`{vocabulary.MESSAGE_MEDIA_TYPE}`", "HTTP media type", "A message in transit", "§11.3"],
        [f"`{vocabulary.MESSAGE_TYP}`", "JWS `typ`", "A protocol message", "§8.2"],
        [f"`{vocabulary.ATTESTATION_TYP}`", "JWS `typ`", "A third-party attestation", "§10.3"],
        [f"`{http_binding.POLL_TYP}`", "JWS `typ`", "A mailbox poll token", "§11.4"],
        [f"`{directory.LISTING_TYP}`", "JWS `typ`", "A vendor's directory listing", "§11.10"],
        [
            f"`{http_binding.POLL_AUTH_SCHEME}`",
            "HTTP authentication scheme",
            "Authorises a mailbox request",
            "§11.4",
        ],
        [f"`{read_proof.READ_TYP}`", "JWS `typ`", "A granted read's proof", "§11.9"],
        [
            f"`{read_proof.READ_AUTH_SCHEME}`",
            "HTTP authentication scheme",
            "Authorises a granted read",
            "§11.9",
        ],
        [f"`{http_binding.DISCOVERY_PATH}`", "Well-known URI", "The discovery document", "§11.1"],
        [
            f"`{http_binding.PROBLEM_MEDIA_TYPE}`",
            "HTTP media type (RFC 9457)",
            "A rejection's problem details",
            "§11.5",
        ],
        [f"`{ERROR_TYPE_BASE}<code>`", "Problem type URI", "One per error code", "§11.5"],
    ]
    linked = [[context.prose(cell) for cell in row] for row in rows]
    return table(
        ["Value", "Kind", "Identifies", "Section"],
        linked,
        "Media types, JWS types and well-known names",
    )


def _enum_of(context: BlockContext, stem: str, name: str) -> list[str]:
    definition = context.schemas.get(stem).get("$defs", {}).get(name, {})
    values = definition.get("enum")
    if not isinstance(values, list):
        raise SpecBuildError(f"schemas/{stem}.schema.json: $defs/{name} has no enum")
    return [str(value) for value in values]


def _walk(value: Any, visit: Callable[[str, Any], None]) -> None:
    if isinstance(value, Mapping):
        for key, member in value.items():
            visit(str(key), member)
            _walk(member, visit)
    elif isinstance(value, list):
        for member in value:
            _walk(member, visit)


def _example_values(context: BlockContext, keys: set[str]) -> dict[str, set[str]]:
    """Every string value found under one of ``keys`` in the examples -> the example names."""
    found: dict[str, set[str]] = {}
    for example in context.examples:

        def visit(key: str, value: Any, example: Example = example) -> None:
            values = value if isinstance(value, list) else [value]
            if key in keys:
                for item in values:
                    if isinstance(item, str):
                        found.setdefault(item, set()).add(example.name)

        _walk(example.payload, visit)
    return found


def _registry_rows(found: Mapping[str, set[str]]) -> list[list[str]]:
    return [
        [f"`{value}`", ", ".join(f"`{name}`" for name in sorted(names))]
        for value, names in sorted(found.items())
    ]


def _used_in(names: set[str]) -> str:
    return ", ".join(f"`{name}`" for name in sorted(names)) or "none"


def _data_categories(context: BlockContext) -> str:
    """The data-categories registry (schemas/registries/data-categories.json, spec §16.8)."""
    found = _example_values(context, {"item", "categories", "deleted"})
    unregistered = sorted(
        value
        for value in found
        if "." in value and " " not in value and value not in registries.data_categories()
    )
    if unregistered:
        raise SpecBuildError(f"examples use unregistered data categories: {unregistered}")
    rows = [
        [
            f"`{entry.value}`",
            "yes" if entry.identifying else "no",
            f"`{entry.acceptance_member}`" if entry.acceptance_member else "",
            context.prose(entry.description),
            _used_in(found.get(entry.value, set())),
        ]
        for entry in registries.data_categories().values()
    ]
    return table(
        ["Data category", "Identifying", "At acceptance", "Meaning", "Used in examples"],
        rows,
        "The registered data categories",
    )


def _identifying_categories(context: BlockContext) -> str:
    rows = [
        [f"`{entry.value}`", context.prose(entry.description)]
        for entry in registries.data_categories().values()
        if entry.identifying
    ]
    return table(["Identifying category", "What it is"], rows, "The identifying data categories")


def _purposes(context: BlockContext) -> str:
    """The purposes registry (schemas/registries/purposes.json, spec §16.7)."""
    found = _example_values(context, {"purposes"})
    unregistered = sorted(set(found) - set(registries.purposes()))
    if unregistered:
        raise SpecBuildError(f"examples use unregistered purposes: {unregistered}")
    rows = [
        [
            f"`{entry.value}`",
            context.prose(entry.description),
            context.prose(entry.reference),
            _used_in(found.get(entry.value, set())),
        ]
        for entry in registries.purposes().values()
    ]
    return table(
        ["Purpose", "Meaning", "Section", "Used in examples"], rows, "The registered purposes"
    )


#: The test driver's routes (spec §14.3): method and path, who serves it, the
#: request and answer definitions of schemas/binding/test-driver.schema.json.
_DRIVER_ROUTES: Final = (
    ("POST clock", "every agent", "ClockInstruction", "ClockAnswer"),
    ("GET state", "every agent", "", "State"),
    ("POST touchpoints", "vendor (optional)", "TouchpointsInstruction", "TouchpointsAnswer"),
    ("POST leave-market", "vendor (optional)", "LeaveMarketInstruction", "InstructionAnswer"),
    ("POST rfi", "buyer", "RfiInstruction", "InstructionAnswer"),
    ("POST rfp", "buyer", "RfpInstruction", "InstructionAnswer"),
    ("POST accept", "buyer", "AcceptInstruction", "InstructionAnswer"),
    ("POST decline", "buyer", "DeclineInstruction", "InstructionAnswer"),
    ("POST exit", "buyer", "ExitInstruction", "InstructionAnswer"),
    ("POST terms", "buyer", "TermsInstruction", "InstructionAnswer (200 or 202)"),
    ("POST service", "buyer", "ServiceInstruction", "InstructionAnswer (200 or 202)"),
    ("POST service-notice", "vendor (optional)", "ServiceNoticeInstruction", "InstructionAnswer"),
    ("POST grant", "buyer", "GrantInstruction", "InstructionAnswer"),
    ("POST revoke", "buyer", "RevokeInstruction", "InstructionAnswer"),
    ("POST consent", "buyer", "ConsentInstruction", "InstructionAnswer"),
    ("POST read-grant", "vendor (optional)", "ReadGrantInstruction", "ReadGrantAnswer"),
)


def _test_driver_routes(context: BlockContext) -> str:
    definitions = context.schemas.get("binding/test-driver").get("$defs", {})
    rows = []
    for route, who, request, answer in _DRIVER_ROUTES:
        for name in (request, answer.split(" ")[0]):
            if name and name not in definitions:
                raise SpecBuildError(f"test-driver.schema.json has no definition {name}")
        described = definitions.get(request or answer.split(" ")[0], {}).get("description", "")
        rows.append(
            [
                f"`{route}`",
                who,
                f"`{request}`" if request else "none",
                f"`{answer.split(' ')[0]}`" + answer[len(answer.split(" ")[0]) :],
                context.prose(" ".join(str(described).split())),
            ]
        )
    return table(
        ["Route", "Served by", "Request", "Answer", "What it does"],
        rows,
        "The test driver's routes",
    )


def _terms_documents(context: BlockContext) -> str:
    seen: dict[tuple[str, str, str], set[str]] = {}
    for example in context.examples:

        def visit(key: str, value: Any, example: Example = example) -> None:
            if key == "terms" and isinstance(value, Mapping) and "id" in value:
                ident = (str(value["id"]), str(value.get("version", "")), str(value.get("url", "")))
                seen.setdefault(ident, set()).add(example.name)

        _walk(example.payload, visit)
    rows = [
        [f"`{ident}`", f"`{version}`", f"`{url}`", ", ".join(f"`{n}`" for n in sorted(names))]
        for (ident, version, url), names in sorted(seen.items())
    ]
    return table(
        ["Terms id", "Version", "URL", "Used in examples"],
        rows,
        "The terms documents of the examples",
    )


def _notice_kinds(context: BlockContext) -> str:
    from vrm_protocol.message_types.service_notice import KIND_CATEGORIES

    schema = context.schemas.get("service-notice")
    kinds = schema["$defs"]["ServiceNoticeBody"]["properties"]["kind"]["enum"]
    if set(kinds) != set(KIND_CATEGORIES):
        raise SpecBuildError("service-notice kinds and the kind-category table differ")
    rows = [
        [f"`{kind}`", ", ".join(f"`{category}`" for category in sorted(KIND_CATEGORIES[kind]))]
        for kind in kinds
    ]
    return table(
        ["Kind", "Categories it may be sent in"], rows, "The kinds of notice and their categories"
    )


def _myterms_roster(context: BlockContext) -> str:
    """The MyTerms roster (schemas/registries/myterms-roster.json, spec §6.70)."""
    from vrm_protocol.myterms import roster

    rows = [
        [
            f"`{item.id}`",
            item.version,
            item.title,
            context.prose(" ".join(item.text.split())),
            f"`{item.digest}`",
        ]
        for item in roster().values()
    ]
    return table(["Id", "Version", "Title", "Text", "Digest"], rows, "The MyTerms roster")


def _notification_categories(context: BlockContext) -> str:
    rows = [[f"`{value}`"] for value in _enum_of(context, "common", "notificationCategory")]
    return table(["Notification category"], rows, "The notification categories")


# -- HTTP binding ----------------------------------------------------------------------------------


def _http_endpoints(context: BlockContext) -> str:
    rows = [
        [f"`GET {http_binding.DISCOVERY_PATH}`", "Discovery document (§11.1)", "`200` JSON"],
        [f"`GET {http_binding.JWKS_PATH}`", "The party's public keys (§11.2)", "`200` JWKS"],
        [
            f"`POST {http_binding.INBOX_PATH}`",
            f"Deliver one message, `{vocabulary.MESSAGE_MEDIA_TYPE}` (§11.3)",
            "`202` or `200` with a signed receipt; problem details otherwise",
        ],
        [
            f"`GET {http_binding.MAILBOX_PATH}?after=N`",
            f"Collect waiting messages, `Authorization: {http_binding.POLL_AUTH_SCHEME} <token>` "
            "(§11.4)",
            '`200` `{"messages": [...], "next": N}`',
        ],
        [
            f"`GET {http_binding.TERMS_PATH_PREFIX}/{{id}}/{{version}}`",
            "A terms document the party asserts (§11.7)",
            "`200` `text/plain; charset=utf-8`, the bytes its digest covers",
        ],
        [
            f"`GET {http_binding.EXPORTS_PATH_PREFIX}/{{id}}`",
            f"An exit's export too large to embed (§6.14), `Authorization: "
            f"{http_binding.POLL_AUTH_SCHEME} <token>` of the relationship's pseudonym",
            "`200` JSON, the RFC 8785 form of the export",
        ],
        [
            f"`{http_binding.TEST_DRIVER_PREFIX}/...`",
            "Test mode only (§14.3); a buyer agent serves this and its reply inboxes only",
            "see §14.3",
        ],
    ]
    linked = [[context.prose(cell) for cell in row] for row in rows]
    return table(
        ["Method and path", "Purpose", "Answer"], linked, "The endpoints of a vendor agent"
    )


def _problem_example(_: BlockContext) -> str:
    error = RemoteProtocolError(
        ErrorCode.WRONG_AUDIENCE, "this agent is not among the message's receivers"
    )
    response = http_binding.problem_response(error)
    reason = HTTPStatus(response.status).phrase
    headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
    body = json.dumps(json.loads(response.body), indent=2, ensure_ascii=False)
    return f"```http\nHTTP/1.1 {response.status} {reason}\n{headers}\n\n{body}\n```"


# -- state machine -------------------------------------------------------------------------------


def _states(context: BlockContext) -> str:
    rows = [
        [
            f"`{state.value.upper()}`",
            ", ".join(step.value for step in description.steps),
            context.prose(description.summary),
            context.prose(description.entry),
            context.prose(description.exit),
        ]
        for state, description in state_machine.STATE_DESCRIPTIONS.items()
    ]
    return table(
        ["State", "Lifecycle steps", "Meaning", "Entered by", "Left by"],
        rows,
        "The states of a relationship",
    )


def _transitions(context: BlockContext) -> str:
    rows = []
    for row in state_machine.TRANSITION_ROWS:
        target = f"`{row.target.value.upper()}`"
        if row.resumes:
            choices = ", ".join(f"`{state.value.upper()}`" for state in row.resumes)
            target = f"the state the detour began in ({choices}; `{row.target.value.upper()}` "
            target += "when none was recorded)"
        if row.otherwise is not None:
            target += f", or `{row.otherwise.value.upper()}` when {row.otherwise_when}"
        rows.append(
            [
                f"`{row.state.value.upper()}`",
                row.sender.value,
                f"`{row.message.value}`",
                target,
                context.prose(row.why),
            ]
        )
    return table(["State", "Sender", "Message", "Next state", "Why"], rows, "The transition table")


def _guards(context: BlockContext) -> str:
    """Every message type's guard rules, in the order its guard checks them (spec §8.6)."""
    rows: list[list[str]] = []
    for spec in MESSAGE_TYPES.values():
        name = f"`{spec.type.value}`"
        if spec.always_allowed:
            rows.append([name, "none", "not a move: only the participant check applies", ""])
            continue
        if not spec.rules:
            rows.append([name, "none", "no check beyond the table and the participants", ""])
            continue
        for rule in spec.rules:
            rows.append(
                [
                    name,
                    f"[`{rule.code.value}`](#error-{rule.code.value})",
                    context.prose(rule.when),
                    f"[{rule.requirement}](#{rule.requirement})",
                ]
            )
    return table(
        ["Message", "Code", "When", "Requirement"],
        rows,
        "Every guard rule, by message type, in the order the guard applies them",
    )


#: What each family of vectors tests (spec §14.2), in the order of §8.6.
_VECTOR_FAMILIES: Final = (
    ("jose", "stages 3 to 7: size, framing, protected header, key, signature, payload bytes"),
    ("canonical", "stage 7: RFC 8785 canonical payload bytes and duplicate members"),
    ("payloads", "stages 8 and 9: protocol version, message type and schema"),
    ("state", "stage 14: a receiver's ledger and one message: the next state or the refusal"),
)


def _vector_families(context: BlockContext) -> str:
    index_path = context.root / "conformance" / "vectors" / "index.json"
    try:
        index = json.loads(index_path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise SpecBuildError(f"{index_path}: the vector index cannot be read: {error}") from error
    counts: dict[str, int] = {}
    for entry in index.get("vectors", []):
        counts[str(entry.get("kind"))] = counts.get(str(entry.get("kind")), 0) + 1
    rows = [
        [f"`conformance/vectors/{family}/`", context.prose(what), str(counts.get(family, 0))]
        for family, what in _VECTOR_FAMILIES
    ]
    return table(
        ["Family", "What it tests (§8.6)", "Vectors"], rows, "The families of test vectors"
    )


def _lifecycle_states(_: BlockContext) -> str:
    rows = [
        [f"`{step.value}`", ", ".join(f"`{state.value.upper()}`" for state in states)]
        for step, states in state_machine.STEP_STATES.items()
    ]
    return table(
        ["Lifecycle step", "States that carry it"], rows, "The lifecycle steps and their states"
    )


def _edges() -> list[Edge]:
    edges: list[Edge] = []
    for row in state_machine.TRANSITION_ROWS:
        exit_move = row.message is vocabulary.MessageType.EXIT_NOTICE
        label = f"{row.message.value} ({row.sender.value})"
        for target in row.targets:
            edges.append(Edge(row.state.value, target.value, label, exit=exit_move))
    return edges


def state_diagram_svg() -> str:
    """The whole state diagram (SVG) from the transition table."""
    return render_state_diagram(
        [state.value for state in state_machine.RelationshipState],
        _edges(),
        initial=state_machine.RelationshipState.SEARCH.value,
        title="The relationship state machine (spec §7)",
    )


@dataclass(frozen=True, slots=True)
class _Phase:
    """One of the diagrams of spec §7.1: a few states, drawn at a readable size."""

    slug: str
    title: str
    grid: Mapping[str, tuple[int, int]]
    legend: str
    #: Only moves from these states are drawn (all of the phase's when empty).
    sources: frozenset[str] = frozenset()


#: The box that stands, in the exit diagram, for every state an exit notice leaves.
_ANY_STATE: Final = "any-state"

_PHASES: Final = (
    _Phase(
        "before-the-deal",
        "Before the deal: enquiry, negotiation, transaction (steps 1 to 4)",
        {"search": (0, 0), "enquiry": (1, 0), "negotiation": (2, 0), "closed": (1, 1),
         "transaction": (2, 1)},
        "Thick border: initial state. A third party's terms answering an RFI lead to WELCOME.",
    ),
    _Phase(
        "the-deal",
        "The deal: confirmed or refused, welcome, servicing, development (steps 4 to 7)",
        {"transaction": (0, 0), "welcome": (1, 0), "servicing": (2, 0), "negotiation": (0, 1),
         "development": (2, 1)},
        "A refused deal returns to the state it was accepted in (§7.1).",
    ),
    _Phase(
        "problems",
        "Problems (step 8)",
        {"welcome": (0, 0), "servicing": (1, 0), "development": (2, 0), "problem": (1, 1)},
        "Resolving the last open request returns to the state the first was made in (§7.1).",
    ),
    _Phase(
        "exit-and-re-engagement",
        "Exit and re-engagement (steps 9 and 10)",
        {_ANY_STATE: (0, 0), "exiting": (1, 0), "exited": (2, 0), "enquiry": (1, 1),
         "negotiation": (2, 1)},
        "A vendor gives notice only when it leaves the market; the other party acknowledges.",
        frozenset({_ANY_STATE, "exiting", "exited"}),
    ),
)  # fmt: skip


def phase_diagram_svg(phase: _Phase) -> str:
    """One phase's diagram: its states, and the moves between them."""
    states = list(phase.grid)
    edges: list[Edge] = []
    for edge in _edges():
        source = _ANY_STATE if edge.exit and _ANY_STATE in phase.grid else edge.source
        if source == edge.target or source not in phase.grid or edge.target not in phase.grid:
            continue
        if edge.exit and _ANY_STATE not in phase.grid:
            continue
        if phase.sources and source not in phase.sources:
            continue
        edges.append(Edge(source, edge.target, edge.label))
    return render_state_diagram(
        states,
        sorted(set(edges), key=lambda e: (e.source, e.target, e.label)),
        initial="search" if "search" in phase.grid else None,
        title=phase.title,
        grid=phase.grid,
        names={_ANY_STATE: "ANY OTHER STATE"},
        legend=phase.legend,
        column_width=300.0,
        ident=f"diagram-{phase.slug}",
    )


def phase_diagram_files() -> dict[str, str]:
    """The phase diagrams as files beside the Markdown rendering (spec/ relative)."""
    return {f"state-machine-{phase.slug}.svg": phase_diagram_svg(phase) for phase in _PHASES}


def _state_diagram(_: BlockContext, flavour: Flavour) -> str:
    full = (
        f"The whole machine in one diagram: [{DIAGRAM_FILE}]({DIAGRAM_FILE}) "
        "(full size, beside this document)."
    )
    if flavour == "md":
        images = [f"![{phase.title}](state-machine-{phase.slug}.svg)" for phase in _PHASES]
        return "\n\n".join([*images, full])
    figures = [
        f'<figure class="diagram" id="diagram-{phase.slug}">'
        f"<figcaption>{phase.title}</figcaption>"
        f'<div class="scroll" role="region" tabindex="0" aria-label="{phase.title}">'
        f"{phase_diagram_svg(phase).strip()}</div></figure>"
        for phase in _PHASES
    ]
    return "\n".join(figures) + "\n\n" + full


# -- worked example ------------------------------------------------------------------------------


def _party(identifier: str, counterparty: str) -> str:
    if identifier.startswith("did:jwk:"):
        return f"Sally's pseudonym for {urlsplit(counterparty).hostname or counterparty}"
    return urlsplit(identifier).hostname or identifier


def _get(value: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _money(value: Any) -> str:
    if isinstance(value, Mapping) and "amount" in value:
        return f"{value.get('currency', '')} {value['amount']}".strip()
    return "?"


def _count(value: Any) -> int:
    return len(value) if isinstance(value, list) else 0


def _summary(example: Example) -> str:
    """One line saying what the example's body says, for the worked example's steps."""
    body = example.payload.get("body", {})
    kind = example.message_type
    facts: list[str] = []
    if kind == "personal-rfi":
        facts = [
            str(_get(body, "intent.summary")),
            f"budget up to {_money(_get(body, 'budget.max'))}",
        ]
    elif kind == "personal-rfp":
        facts = [str(_get(body, "requirements.item.description"))]
        if _get(body, "recipientCount"):
            facts.append(f"one of {_get(body, 'recipientCount')} copies")
    elif kind == "offer":
        facts = [f"{_get(body, 'basis')} offer", f"total {_money(_get(body, 'price.total'))}"]
        if _get(body, "tradeIn.handover"):
            facts.append(f"trade-in handover {_get(body, 'tradeIn.handover')}")
        if _get(body, "supersedes"):
            facts.append("supersedes an earlier offer")
    elif kind == "offer-acceptance":
        facts = ["accepts the offer it names by digest"]
        if _count(_get(body, "approvals")):
            facts.append("with a co-decision-maker's approval")
    elif kind == "offer-decline":
        facts = [f"reason {_get(body, 'reason')}"]
    elif kind == "deal-confirmation":
        facts = [f"deal total {_money(_get(body, 'deal.total'))}"]
    elif kind == "terms-assertion":
        facts = [f"{_get(body, 'party.name')} asks for {_count(_get(body, 'requests'))} item(s)"]
    elif kind == "terms-response":
        facts = [f"{_get(body, 'decision')}", f"{_count(_get(body, 'accepted'))} item(s) accepted"]
    elif kind == "service-notice":
        facts = [f"{_get(body, 'kind')}", str(_get(body, "summary"))]
    elif kind == "service-response":
        facts = [f"{_get(body, 'decision')}"]
    elif kind == "support-request":
        facts = [str(_get(body, "subject")), f"severity {_get(body, 'severity')}"]
    elif kind == "support-resolution":
        facts = [f"{_get(body, 'status')}"]
    elif kind == "exit-notice":
        facts = [
            f"reason {_get(body, 'reason')}",
            f"export {'requested' if _get(body, 'export.requested') else 'not requested'}",
            f"deletion {'requested' if _get(body, 'deletion.requested') else 'not requested'}",
        ]
    elif kind == "exit-acknowledgement":
        facts = [f"{_count(_get(body, 'deletionReceipt.deleted'))} item(s) deleted"]
    elif kind == "problem-report":
        facts = [f"code `{_get(body, 'code')}`"]
    elif kind == "receipt":
        facts = [f"status {_get(body, 'status')}"]
    return "; ".join(fact for fact in facts if fact and fact != "None")


#: Width of the lines a compact JWS is wrapped at in the Markdown rendering.
JWS_LINE_WIDTH: Final = 76


def _wrapped_token(token: str, flavour: Flavour) -> str:
    if flavour == "html":
        # One unbroken token (copy-paste gives the exact bytes); CSS wraps it.
        return f'<pre class="jws"><code>{token}</code></pre>'
    lines = [token[i : i + JWS_LINE_WIDTH] for i in range(0, len(token), JWS_LINE_WIDTH)]
    return "```text\n" + "\n".join(lines) + "\n```"


def _worked_example(context: BlockContext, flavour: Flavour) -> str:
    if not context.examples:
        raise SpecBuildError("schemas/examples holds no example for the worked example")
    if context.signed is None:
        raise SpecBuildError("the worked example needs the signed journey")
    parts: list[str] = []
    for number, signed in enumerate(context.signed.messages, start=1):
        example = signed.example
        payload = signed.payload
        to = [str(t) for t in payload.get("to", [])]
        sender = str(payload.get("from", ""))
        receiver = to[0] if to else ""
        caption = (
            f"**Step {number}: `{example.message_type}`** "
            f"({_section_link(MESSAGE_SECTION.get(example.message_type, '6'))}), "
            f"{payload.get('created', '')}, from {_party(sender, receiver)} "
            f"to {_party(receiver, sender)}: {_summary(example)}. "
            f"Source: `schemas/examples/{example.name}.json`, re-keyed to the test keys."
        )
        body = json.dumps(payload, indent=2, ensure_ascii=False)
        signed_line = (
            f"Signed by {_party(sender, receiver)} as a compact JWS ({_section_link('8')}), "
            f"message digest ({_section_link('8.5')}) `{signed.digest}`:"
        )
        token = _wrapped_token(signed.token.decode("ascii"), flavour)
        if flavour == "html":
            # Compact: the payload and the token are one click away, the step's
            # summary and its digest always in view.
            summary = (
                f"Signed by {_party(sender, receiver)}: compact JWS of "
                f"{len(signed.token)} characters, digest <code>{signed.digest}</code>"
            )
            parts.append(
                caption
                + '\n\n<details class="example"><summary>Payload</summary>\n\n```json\n'
                + body
                + '\n```\n\n</details>\n\n<details class="example"><summary>'
                + summary
                + "</summary>\n\n"
                + token
                + "\n\n</details>"
            )
        else:
            parts.append(
                caption + "\n\n```json\n" + body + "\n```\n\n" + signed_line + "\n\n" + token
            )
    return "\n\n".join(parts)


def _test_keys(context: BlockContext) -> str:
    if context.signed is None:
        raise SpecBuildError("the test keys need the signed journey")
    rows = [
        [
            f"`{party.label}`",
            f"`{party.identifier}`"
            if not party.identifier.startswith("did:")
            else "did:jwk (below)",
            f"`{party.key.kid}`" if not party.key.kid.startswith("did:") else "`<id>#0`",
        ]
        for party in context.signed.parties
    ]
    document = json.dumps(context.signed.test_keys_document(), indent=2, ensure_ascii=False)
    return (
        f"**{TEST_ONLY_WARNING}**\n\n"
        + table(["Seed label", "Party", "kid"], rows, "The published test keys")
        + f"\n\nThe same document is published as `{TEST_KEYS_FILE}`:\n\n```json\n"
        + document
        + "\n```"
    )


# -- dispatch ------------------------------------------------------------------------------------

_SIMPLE: Final[Mapping[str, Callable[[BlockContext], str]]] = {
    "error-codes": _error_codes,
    "message-types": _message_types,
    "media-types": _media_types,
    "data-categories": _data_categories,
    "purposes": _purposes,
    "terms-documents": _terms_documents,
    "notification-categories": _notification_categories,
    "http-endpoints": _http_endpoints,
    "problem-example": _problem_example,
    "states": _states,
    "transitions": _transitions,
    "guards": _guards,
    "lifecycle-states": _lifecycle_states,
    "vector-families": _vector_families,
    "identifying-categories": _identifying_categories,
    "test-driver-routes": _test_driver_routes,
    "notice-kinds": _notice_kinds,
    "requirements-index": _requirements_index,
    "requirements-summary": _requirements_summary,
    "test-keys": _test_keys,
    "myterms-roster": _myterms_roster,
}


def expand_block(context: BlockContext, name: str, argument: str, flavour: Flavour) -> str:
    """The Markdown (with raw HTML in the ``html`` flavour) of one ``{{name argument}}`` marker.

    Raises:
        SpecBuildError: the marker is unknown, or its argument names nothing.
    """
    if name == "req":
        if argument not in context.requirements:
            raise SpecBuildError(f"{{{{req {argument}}}}} names no requirement of the registry")
        return requirement_block(context, argument, flavour)
    if name == "fields":
        return context.schemas.field_tables(argument, context.prose)
    if name == "state-diagram":
        return _state_diagram(context, flavour)
    if name == "worked-example":
        return _worked_example(context, flavour)
    if name in _SIMPLE and not argument:
        return _SIMPLE[name](context)
    raise SpecBuildError(f"unknown marker {{{{{name} {argument}}}}}".replace(" }}", "}}"))
