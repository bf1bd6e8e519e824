"""Small Markdown helpers shared by the generated blocks."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

__all__ = ["link_sections", "table"]

# "§8.1" in prose becomes a link to the section's heading. A "§" directly
# after "[" is already a link's text and is left alone.
_SECTION_REFERENCE: Final = re.compile(r"(?<!\[)§(\d{1,2}(?:\.\d{1,2})?)(?![\d.]*\d)")
_OTHER_DOCUMENT: Final = re.compile(r"RFC ?\d{3,5},? $")
_CODE_SPAN: Final = re.compile(r"(`+)(?:.+?)\1", re.DOTALL)


def _cell(text: str) -> str:
    # GitHub-flavoured tables split cells on "|" even inside code spans, unless escaped.
    return " ".join(text.replace("|", "\\|").split())


def table(header: Sequence[str], rows: Sequence[Sequence[str]], caption: str = "") -> str:
    """A GitHub-flavoured Markdown pipe table, after its ``Table: caption`` line
    (the HTML rendering makes that line the table's caption)."""
    lines = [f"Table: {caption}", ""] if caption else []
    lines += [
        "| " + " | ".join(_cell(cell) for cell in header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def link_sections(text: str, known: set[str], unknown: list[str]) -> str:
    """Turn "§N.M" references outside code spans into links to the section.

    References to sections that the map does not have are left as text and
    appended to ``unknown``, so that the build can report them.
    """

    def replace(match: re.Match[str]) -> str:
        number = match.group(1)
        before = match.string[max(0, match.start() - 12) : match.start()]
        if _OTHER_DOCUMENT.search(before):
            return match.group(0)  # "RFC 9457 §3" is that RFC's section, not ours
        if number not in known:
            unknown.append(number)
            return match.group(0)
        return f"[§{number}](#sec-{number})"

    pieces: list[str] = []
    position = 0
    for span in _CODE_SPAN.finditer(text):
        pieces.append(_SECTION_REFERENCE.sub(replace, text[position : span.start()]))
        pieces.append(span.group(0))
        position = span.end()
    pieces.append(_SECTION_REFERENCE.sub(replace, text[position:]))
    return "".join(pieces)
