"""Build the specification: prose + schemas + registries -> HTML, Markdown, OpenAPI.

Inputs (all read from the repository root given to :func:`build_spec`):

* ``spec/src/NN-*.md`` — the hand-written prose, one file per section of the
  map (spec §1-§17), with ``{{...}}`` markers where generated content goes;
* ``schemas/*.schema.json`` and ``schemas/examples/*.json`` (every example is
  validated during the build), ``schemas/binding/*.schema.json``;
* ``conformance/vectors/index.json`` (the families of test vectors, spec §14.2);
* the library's registries: requirements, error codes, vocabulary, the
  transition table, the HTTP binding's constants.

Outputs (``spec/``): ``vrm-protocol.html`` (one self-contained file: inline
CSS and SVG, no script, nothing fetched), ``vrm-protocol.md`` (for reading on
a code-hosting site) with ``state-machine.svg`` beside it,
``openapi.json``, and ``test-keys.json`` (the published TEST keys that sign
the worked example, spec §17).  Outputs are deterministic: the same inputs give the same
bytes (no timestamps, stable ordering), which is what ``--check`` relies on.

The build fails (:class:`SpecBuildError`) when a heading strays from the
section map, a marker names an unknown requirement or block, a requirement
of the registry is placed nowhere (or twice, or outside its section), an
example does not validate, a signed example (spec §17) does not verify, or
an internal link of the HTML points nowhere.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Final

import jinja2
from markdown_it import MarkdownIt
from markdown_it.token import Token

from tools.openapi import build_openapi
from tools.specgen.blocks import (
    DIAGRAM_FILE,
    BlockContext,
    Flavour,
    expand_block,
    phase_diagram_files,
    state_diagram_svg,
)
from tools.specgen.errors import SpecBuildError
from tools.specgen.export import REQUIREMENTS_FILE, requirements_export
from tools.specgen.markdown import link_sections
from tools.specgen.schema_docs import load_examples, load_schemas
from tools.specgen.sections import SECTION_MAP, SECTION_REFERENCE, section_anchor, slug
from tools.specgen.signed_examples import TEST_KEYS_FILE, sign_journey, verify_journey
from vrm_protocol.errors import ErrorCode
from vrm_protocol.requirements import load_requirements
from vrm_protocol.vocabulary import PROTOCOL_VERSION

__all__ = [
    "HTML_FILE",
    "MARKDOWN_FILE",
    "OPENAPI_FILE",
    "REQUIREMENTS_FILE",
    "build_spec",
    "main_build",
]

HTML_FILE: Final = "spec/vrm-protocol.html"
MARKDOWN_FILE: Final = "spec/vrm-protocol.md"
OPENAPI_FILE: Final = "spec/openapi.json"
DIAGRAM_PATH: Final = f"spec/{DIAGRAM_FILE}"
SOURCE_DIR: Final = "spec/src"
FRONT_MATTER_FILE: Final = "front-matter.toml"
TITLE: Final = f"The VRM/CRM Protocol, version {PROTOCOL_VERSION}"


@dataclass(frozen=True, slots=True)
class FrontMatter:
    """What a standard says before its first section: abstract, status, version,
    date, editors (``spec/src/front-matter.toml``)."""

    title: str
    subtitle: str
    date: str
    status: str
    status_text: str
    editors: tuple[str, ...]
    abstract: str


def _read_front_matter(root: Path) -> FrontMatter:
    path = root / SOURCE_DIR / FRONT_MATTER_FILE
    try:
        data = tomllib.loads(path.read_text("utf-8"))
        editors = data["editors"]
        if not isinstance(editors, list) or not all(isinstance(e, str) for e in editors):
            raise TypeError("editors is a list of names")
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", str(data["date"])):
            raise ValueError("date is YYYY-MM-DD")
        return FrontMatter(
            title=str(data["title"]),
            subtitle=str(data["subtitle"]),
            date=str(data["date"]),
            status=str(data["status"]),
            status_text=" ".join(str(data["status_text"]).split()),
            editors=tuple(editors),
            abstract=" ".join(str(data["abstract"]).split()),
        )
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as error:
        raise SpecBuildError(f"{path}: {error}") from error


_MARKER: Final = re.compile(r"^\{\{([a-z][a-z-]*)(?: +([A-Za-z0-9._-]+))?\}\}$")
_STRAY_MARKER: Final = re.compile(r"\{\{[a-z]")
_NUMBERED_HEADING: Final = re.compile(r"^(#{1,2}) (\d{1,2}(?:\.\d{1,2})?) (.+)$")
_HEADING: Final = re.compile(r"^(#{1,6}) (.+)$")
_FENCE: Final = re.compile(r"^(```|~~~)")


@dataclass(frozen=True, slots=True)
class _Heading:
    level: int
    number: str | None
    title: str
    anchor: str


@dataclass(frozen=True, slots=True)
class _Document:
    markdown: str
    headings: tuple[_Heading, ...]


def _markdown_engine() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True}).enable("table")


def _read_sources(root: Path) -> list[tuple[str, str]]:
    directory = root / SOURCE_DIR
    paths = sorted(directory.glob("*.md"))
    if not paths:
        raise SpecBuildError(f"{directory} holds no Markdown sources")
    return [(path.name, path.read_text("utf-8")) for path in paths]


def _resolve_traceability(
    traceability: Mapping[str, Sequence[str]] | None, warnings: list[str]
) -> dict[str, list[str]] | None:
    """The suite's traceability, sorted, without citations of unknown requirements
    (which become warnings: the suite's coverage gate reports them as errors)."""
    if traceability is None:
        return None
    known = load_requirements()
    resolved: dict[str, list[str]] = {}
    for cited, checks in traceability.items():
        if cited not in known:
            warnings.append(f"conformance checks cite {cited!r}, which the registry does not have")
            continue
        resolved[cited] = sorted(set(checks))
    return resolved


def _assemble(
    sources: Sequence[tuple[str, str]], context: BlockContext, flavour: Flavour
) -> _Document:
    """Expand markers and check headings and requirement placement; one flavour."""
    lines_out: list[str] = []
    headings: list[_Heading] = []
    expected = iter(SECTION_MAP)
    current: str | None = None
    placed: dict[str, str] = {}
    used_anchors: set[str] = set()
    for file_name, text in sources:
        in_fence = False
        for line_number, line in enumerate(text.splitlines(), start=1):
            where = f"{SOURCE_DIR}/{file_name}:{line_number}"
            if _FENCE.match(line):
                in_fence = not in_fence
                lines_out.append(line)
                continue
            if in_fence:
                lines_out.append(line)
                continue
            numbered = _NUMBERED_HEADING.match(line)
            heading = _HEADING.match(line)
            if heading and len(heading.group(1)) <= 2:
                if not numbered:
                    raise SpecBuildError(f"{where}: level-1 and -2 headings carry a map number")
                section = next(expected, None)
                level, number, title = len(numbered.group(1)), numbered.group(2), numbered.group(3)
                if section is None or (section.number, section.title, section.level) != (
                    number,
                    title.strip(),
                    level,
                ):
                    wanted = f"{section.number} {section.title}" if section else "no more sections"
                    raise SpecBuildError(f"{where}: heading '{number} {title}', map says {wanted}")
                current = number
                anchor = section_anchor(number)
                headings.append(_Heading(level, number, title.strip(), anchor))
                used_anchors.add(anchor)
                lines_out.extend(
                    _heading_lines(
                        flavour, anchor, len(numbered.group(1)), f"{number} {title.strip()}"
                    )
                )
                continue
            if heading:
                if current is None:
                    raise SpecBuildError(f"{where}: a sub-heading before the first section")
                title = heading.group(2).strip()
                anchor = f"sec-{current}-{slug(title)}"
                suffix = 2
                while anchor in used_anchors:
                    anchor = f"sec-{current}-{slug(title)}-{suffix}"
                    suffix += 1
                used_anchors.add(anchor)
                headings.append(_Heading(len(heading.group(1)), None, title, anchor))
                lines_out.extend(_heading_lines(flavour, anchor, len(heading.group(1)), title))
                continue
            marker = _MARKER.match(line.strip())
            if marker:
                name, argument = marker.group(1), marker.group(2) or ""
                if name == "req":
                    _place(context, argument, current, where, placed)
                # Blank lines around a block: raw HTML blocks end only at a blank
                # line, and must not swallow the Markdown that follows.
                lines_out.extend(["", expand_block(context, name, argument, flavour), ""])
                continue
            if _STRAY_MARKER.search(line):
                raise SpecBuildError(f"{where}: a marker must stand alone on its line: {line!r}")
            lines_out.append(link_sections(line, set(SECTION_REFERENCE), context.unknown_sections))
        lines_out.append("")  # a file ends a block, whatever its last line was
    missing_sections = [section.number for section in expected]
    if missing_sections:
        raise SpecBuildError(f"the prose lacks sections {', '.join(missing_sections)}")
    unplaced = sorted(set(context.requirements) - set(placed))
    if unplaced:
        raise SpecBuildError(f"requirements placed nowhere in the prose: {', '.join(unplaced)}")
    return _Document(_squeeze_blank_lines(lines_out), tuple(headings))


def _squeeze_blank_lines(lines: Sequence[str]) -> str:
    """Join lines, keeping at most one blank line in a row outside fenced code."""
    kept: list[str] = []
    in_fence = False
    for line in "\n".join(lines).split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        if not in_fence and not line.strip() and (not kept or not kept[-1].strip()):
            continue
        kept.append(line)
    return "\n".join(kept).strip("\n") + "\n"


def _heading_lines(flavour: Flavour, anchor: str, level: int, text: str) -> list[str]:
    """A heading; in Markdown with an explicit anchor (code-hosting sites make up
    their own ids) and one level down, under the document's title."""
    if flavour == "html":
        return [f"{'#' * level} {text}"]
    return [f'<a id="{anchor}"></a>', "", f"{'#' * min(level + 1, 6)} {text}"]


def _place(
    context: BlockContext,
    requirement_id: str,
    section: str | None,
    where: str,
    placed: dict[str, str],
) -> None:
    if requirement_id not in context.requirements:
        raise SpecBuildError(f"{where}: {{{{req {requirement_id}}}}} is not in the registry")
    if requirement_id in placed:
        raise SpecBuildError(
            f"{where}: {requirement_id} is already placed at {placed[requirement_id]}"
        )
    wanted = context.requirements[requirement_id].section
    if section != wanted:
        raise SpecBuildError(
            f"{where}: {requirement_id} belongs to §{wanted} (registry), not §{section}"
        )
    placed[requirement_id] = where


# -- HTML ----------------------------------------------------------------------------------------


def _render_html(document: _Document, engine: MarkdownIt, front: FrontMatter) -> str:
    tokens = engine.parse(document.markdown)
    heading_tokens = [token for token in tokens if token.type == "heading_open"]
    if len(heading_tokens) != len(document.headings):
        # Either a generated block produced a heading, or a raw HTML block
        # swallowed one; both would put the TOC out of step with the text.
        raise SpecBuildError(
            f"the rendered HTML has {len(heading_tokens)} headings where the sources have "
            f"{len(document.headings)}"
        )
    for token, heading in zip(heading_tokens, document.headings, strict=True):
        token.attrSet("id", heading.anchor)
    _mark_tables(tokens)
    content = _finish_html(engine.renderer.render(tokens, engine.options, {}))
    toc = [heading for heading in document.headings if heading.level <= 2]
    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(_template_source),
        autoescape=jinja2.select_autoescape(default=True),
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    template = environment.get_template("spec.html.j2")
    html = template.render(
        title=TITLE,
        front=front,
        abstract=engine.renderInline(front.abstract),
        status_text=engine.renderInline(front.status_text),
        version=PROTOCOL_VERSION,
        toc=toc,
        content=content,
        style=_template_source("style.css"),
    )
    _check_links(html)
    return html


def _mark_tables(tokens: Sequence[Token]) -> None:
    # Wide tables scroll inside their own box instead of widening the page.
    for token in tokens:
        if token.type == "table_open":
            token.attrSet("class", "data")


_CAPTIONED_TABLE: Final = re.compile(r'<p>Table: (.+?)</p>\s*<table class="data">', re.DOTALL)
_HEADING_HTML: Final = re.compile(r'<h([1-4]) id="([^"]+)">(.+?)</h\1>')
#: Inline code at least this long may wrap anywhere; shorter code never breaks
#: (not at its hyphens either: `offer-not-binding` is one word to a reader).
_LONG_CODE: Final = 32
_INLINE_CODE: Final = re.compile(rf'(?<!<pre class="jws">)<code>([^<]{{{_LONG_CODE},}})</code>')


def _finish_html(content: str) -> str:
    """What a reader needs beyond the Markdown: every table in a captioned,
    scrollable figure (the scroll keeps every column reachable on a phone),
    a self-link on every heading, and long code words allowed to wrap.

    Raises:
        SpecBuildError: a table has no caption (a ``Table: ...`` line before it).
    """
    counter = 0

    def caption(match: re.Match[str]) -> str:
        nonlocal counter
        counter += 1
        ident = f"table-{counter}"
        return (
            f'<figure class="table"><div class="scroll" role="region" tabindex="0" '
            f'aria-labelledby="{ident}"><table class="data"><caption id="{ident}">'
            f"{match.group(1)}</caption>"
        )

    content = _CAPTIONED_TABLE.sub(caption, content)
    tables = content.count("<table")
    if tables != counter:
        raise SpecBuildError(
            f"{tables - counter} table(s) without a caption: put 'Table: ...' before each"
        )
    content = content.replace("</table>", "</table></div></figure>")
    content = _HEADING_HTML.sub(
        lambda m: (
            f'<h{m.group(1)} id="{m.group(2)}">{m.group(3)}<a class="self-link" '
            f'href="#{m.group(2)}" aria-label="Link to this section">§</a></h{m.group(1)}>'
        ),
        content,
    )
    return _INLINE_CODE.sub(r'<code class="long">\1</code>', content)


def _template_source(name: str) -> str:
    return (resources.files("tools.specgen") / "templates" / name).read_text("utf-8")


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.fragments: list[str] = []
        self.resources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.append(str(attributes["id"]))
        href = attributes.get("href") or ""
        if href.startswith("#"):
            self.fragments.append(href[1:])
        if tag in {"script", "link", "img", "iframe"} or (tag == "image" and attributes):
            self.resources.append(tag)

    handle_startendtag = handle_starttag


def _check_links(html: str) -> None:
    parser = _Anchors()
    parser.feed(html)
    duplicates = sorted({anchor for anchor in parser.ids if parser.ids.count(anchor) > 1})
    if duplicates:
        raise SpecBuildError(f"ids defined more than once: {', '.join(duplicates[:10])}")
    dangling = sorted(set(parser.fragments) - set(parser.ids))
    if dangling:
        raise SpecBuildError(f"internal links that point nowhere: {', '.join(dangling[:10])}")
    if parser.resources:
        raise SpecBuildError(f"the HTML must be self-contained; it has {parser.resources}")


# -- Markdown ------------------------------------------------------------------------------------


def _render_markdown(document: _Document, front: FrontMatter) -> str:
    toc_lines = []
    for heading in document.headings:
        if heading.level > 2:
            continue
        indent = "  " * (heading.level - 1)
        toc_lines.append(f"{indent}- [{heading.number} {heading.title}](#{heading.anchor})")
    preamble = [
        f"# {TITLE}",
        "",
        f"*{front.subtitle}*",
        "",
        f"- **Version:** {PROTOCOL_VERSION}",
        f"- **Date:** {front.date}",
        f"- **Status:** {front.status}",
        f"- **Editors:** {', '.join(front.editors)}",
        "",
        "## Abstract",
        "",
        front.abstract,
        "",
        "## Status of this document",
        "",
        front.status_text,
        "",
        "<!-- Generated by `python -m tools.specgen` from spec/src, schemas/ and the registries in "
        "vrm_protocol/. Do not edit: edit the sources and rebuild. -->",
        "",
        "This is the Markdown rendering of the specification; the HTML rendering "
        "(`vrm-protocol.html`) has the same content. The HTTP binding is also described "
        "in OpenAPI 3.1 (`openapi.json`).",
        "",
        "## Contents",
        "",
        *toc_lines,
        "",
    ]
    return "\n".join(preamble) + "\n" + document.markdown


# -- the build -----------------------------------------------------------------------------------


def build_spec(
    root: Path,
    *,
    traceability: Mapping[str, Sequence[str]] | None = None,
    waivers: Mapping[str, str] | None = None,
    warnings: list[str] | None = None,
) -> dict[str, bytes]:
    """Build every output; repository-relative path -> bytes. Writes nothing.

    ``traceability`` maps requirement ids to the ids of the conformance
    checks that cite them; ``None`` builds without traceability.  Problems
    that do not make the document wrong (citations of unknown sections in
    generated text, checks citing unknown requirements) are appended to
    ``warnings``.

    Raises:
        SpecBuildError: the sources are inconsistent (see the module docstring).
    """
    notes = warnings if warnings is not None else []
    requirements = load_requirements()
    schemas = load_schemas(root / "schemas")
    examples = load_examples(schemas, root / "schemas" / "examples")
    # Spec §17: every example is shown signed with the published test keys,
    # and every signature, attestation and messageRef digest is verified here.
    signed = sign_journey(examples)
    verify_journey(signed)
    engine = _markdown_engine()
    sources = _read_sources(root)
    outputs: dict[str, bytes] = {}
    documents: dict[Flavour, _Document] = {}
    for flavour in ("html", "md"):
        context = BlockContext(
            requirements=requirements,
            traceability=_resolve_traceability(traceability, notes if flavour == "html" else []),
            schemas=schemas,
            examples=examples,
            inline=engine,
            signed=signed,
            root=root,
        )
        documents[flavour] = _assemble(sources, context, flavour)
        if flavour == "html":
            for number in sorted(set(context.unknown_sections)):
                notes.append(f"§{number} is cited but the section map has no such section")
    for code in ErrorCode:
        # The registry cites a section per code; it must be one of the map's.
        if code.info.spec_section not in SECTION_REFERENCE:
            notes.append(
                f"error code {code.value} cites §{code.info.spec_section}, "
                "which the section map does not have"
            )
    front = _read_front_matter(root)
    outputs[HTML_FILE] = _render_html(documents["html"], engine, front).encode("utf-8")
    outputs[MARKDOWN_FILE] = _render_markdown(documents["md"], front).encode("utf-8")
    export = requirements_export(
        requirements, root=root, date=front.date, traceability=traceability, waivers=waivers
    )
    outputs[REQUIREMENTS_FILE] = (json.dumps(export, indent=2, ensure_ascii=False) + "\n").encode()
    outputs[DIAGRAM_PATH] = state_diagram_svg().encode("utf-8")
    for name, svg in phase_diagram_files().items():
        outputs[f"spec/{name}"] = svg.encode("utf-8")
    test_keys = json.dumps(signed.test_keys_document(), indent=2, ensure_ascii=False) + "\n"
    outputs[TEST_KEYS_FILE] = test_keys.encode("utf-8")
    openapi = build_openapi(schemas_dir=root / "schemas")
    outputs[OPENAPI_FILE] = (json.dumps(openapi, indent=2, ensure_ascii=False) + "\n").encode()
    return outputs


def main_build(
    root: Path | None = None,
    *,
    check: bool = False,
    traceability: Mapping[str, Sequence[str]] | None = None,
    waivers: Mapping[str, str] | None = None,
) -> int:
    """Build ``spec/`` under ``root`` (default: the current directory).

    With ``check``, write nothing and report the outputs that differ from what
    the sources give.  Returns the process exit code: 0 when built (or up to
    date), 1 when the build failed or, with ``check``, when an output is stale.
    Never raises for a problem of the sources; it prints it to stderr.
    """
    base = Path.cwd() if root is None else root
    warnings: list[str] = []
    try:
        outputs = build_spec(base, traceability=traceability, waivers=waivers, warnings=warnings)
    except SpecBuildError as error:
        print(f"spec build failed: {error}", file=sys.stderr)
        return 1
    for warning in warnings:
        print(f"spec build warning: {warning}", file=sys.stderr)
    stale = [
        relative
        for relative, content in outputs.items()
        if not (base / relative).is_file() or (base / relative).read_bytes() != content
    ]
    if check:
        for relative in stale:
            print(f"stale: {relative} (run `python -m tools.specgen`)", file=sys.stderr)
        return 1 if stale else 0
    for relative in stale:
        target = base / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(outputs[relative])
        print(f"wrote {relative}")
    return 0
