"""The state diagram of spec §7 as a self-contained SVG, drawn from the transition table.

No layout engine and no script: states sit on a fixed grid in lifecycle order
(states the grid does not know are appended on an extra row), and every pair
of states joined by at least one transition gets one arrow, labelled with the
messages that cause it.  An arrow whose straight path would cross another
state is bent, a little more each time, until it does not.  Transitions that
keep the state, and the exit notices (one per engaged state), are drawn as the
legend says rather than labelled one by one.  The output depends only on the
table, so it is byte-identical from run to run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from xml.sax.saxutils import escape

__all__ = ["Edge", "render_state_diagram"]

_BOX_WIDTH: Final = 150.0
_BOX_HEIGHT: Final = 44.0
_COLUMN: Final = 340.0
_ROW: Final = 190.0
_MARGIN: Final = 30.0
#: Labels are drawn at this size and the SVG is shown at its natural size (never
#: scaled down: a narrow screen scrolls it), so they read at 12 px or more.
LABEL_FONT_SIZE: Final = 12.0
_LABEL_LINE: Final = 15.0
_CHAR_WIDTH: Final = 6.7

#: Grid cell (column, row) of each state, by its wire value.
_GRID: Final[Mapping[str, tuple[int, int]]] = {
    "search": (0, 0),
    "enquiry": (1, 0),
    "negotiation": (2, 0),
    "transaction": (3, 0),
    "welcome": (4, 0),
    "closed": (1, 1),
    "development": (3, 1),
    "servicing": (4, 1),
    "exited": (1, 2),
    "exiting": (2, 2),
    "problem": (4, 2),
}


@dataclass(frozen=True, slots=True)
class Edge:
    """A transition of the table, reduced to what the diagram shows."""

    source: str
    target: str
    label: str  # e.g. "offer (vendor)"
    exit: bool = False


@dataclass(frozen=True, slots=True)
class _Point:
    x: float
    y: float


def _positions(
    states: Sequence[str], grid: Mapping[str, tuple[int, int]], column_width: float
) -> dict[str, _Point]:
    placed: dict[str, _Point] = {}
    spare = 0
    rows = max((row for _, row in grid.values()), default=0) + 1
    for state in states:
        if state in grid:
            column, row = grid[state]
        else:
            column, row = spare, rows
            spare += 1
        placed[state] = _Point(
            _MARGIN + column * column_width + _BOX_WIDTH / 2,
            _MARGIN + row * _ROW + _BOX_HEIGHT / 2,
        )
    return placed


def _quadratic(start: _Point, control: _Point, end: _Point, t: float) -> _Point:
    u = 1.0 - t
    return _Point(
        u * u * start.x + 2 * u * t * control.x + t * t * end.x,
        u * u * start.y + 2 * u * t * control.y + t * t * end.y,
    )


def _inside(point: _Point, centre: _Point, pad: float) -> bool:
    return (
        abs(point.x - centre.x) <= _BOX_WIDTH / 2 + pad
        and abs(point.y - centre.y) <= _BOX_HEIGHT / 2 + pad
    )


def _border(centre: _Point, toward: _Point) -> _Point:
    """Where the ray from a box's centre toward ``toward`` leaves the box."""
    dx, dy = toward.x - centre.x, toward.y - centre.y
    if dx == 0 and dy == 0:
        return centre
    scale = min(
        (_BOX_WIDTH / 2) / abs(dx) if dx else math.inf,
        (_BOX_HEIGHT / 2) / abs(dy) if dy else math.inf,
    )
    return _Point(centre.x + dx * scale, centre.y + dy * scale)


def _route(start: _Point, end: _Point, obstacles: Iterable[_Point], reverse_exists: bool) -> _Point:
    """The control point of a quadratic curve from ``start`` to ``end`` that avoids
    the ``obstacles`` (state centres); bends left of the direction of travel so
    that a pair of opposite arrows stays apart."""
    obstacles = list(obstacles)
    mid = _Point((start.x + end.x) / 2, (start.y + end.y) / 2)
    length = math.hypot(end.x - start.x, end.y - start.y) or 1.0
    normal = _Point((end.y - start.y) / length, -(end.x - start.x) / length)
    bends = [0.0, 0.12, 0.22, 0.32, 0.45, 0.6, -0.22, -0.32, -0.45, -0.6]
    if reverse_exists:
        bends = [bend for bend in bends if bend >= 0.2] + [b for b in bends if b < 0]
    best = mid
    for bend in bends:
        control = _Point(mid.x + normal.x * bend * length, mid.y + normal.y * bend * length)
        samples = (_quadratic(start, control, end, step / 24) for step in range(3, 22))
        if not any(_inside(p, o, 6.0) for p in samples for o in obstacles):
            return control
        best = control
    return best


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


@dataclass(frozen=True, slots=True)
class _Box:
    left: float
    top: float
    width: float
    height: float

    def overlaps(self, other: _Box) -> bool:
        return not (
            self.left + self.width <= other.left
            or other.left + other.width <= self.left
            or self.top + self.height <= other.top
            or other.top + other.height <= self.top
        )


def _free_spot(box: _Box, taken: Sequence[_Box]) -> _Box:
    """``box``, moved up or down by whole label lines until it overlaps nothing taken."""
    for step in (0, 1, -1, 2, -2, 3, -3, 4, -4):
        moved = _Box(box.left, box.top + step * (_LABEL_LINE + 2), box.width, box.height)
        if not any(moved.overlaps(other) for other in taken):
            return moved
    return box


def render_state_diagram(
    states: Sequence[str],
    edges: Sequence[Edge],
    *,
    initial: str | None,
    title: str,
    grid: Mapping[str, tuple[int, int]] | None = None,
    names: Mapping[str, str] | None = None,
    legend: str | None = None,
    column_width: float = _COLUMN,
    ident: str = "state-diagram",
) -> str:
    """The SVG document (without XML declaration) of a state diagram.

    ``states`` are wire values in display order, placed on ``grid`` (column,
    row; the full lifecycle's by default); ``names`` overrides the text of a
    state's box (for a box that stands for several states); ``edges`` may
    repeat a pair of states (their labels are stacked). ``ident`` prefixes every
    id in the SVG, so that several diagrams can share one HTML page.
    """
    positions = _positions(states, grid if grid is not None else _GRID, column_width)
    shown = names or {}
    grouped: dict[tuple[str, str], list[Edge]] = {}
    for edge in edges:
        if edge.source != edge.target:
            grouped.setdefault((edge.source, edge.target), []).append(edge)
    state_boxes = [
        _Box(p.x - _BOX_WIDTH / 2, p.y - _BOX_HEIGHT / 2, _BOX_WIDTH, _BOX_HEIGHT)
        for p in positions.values()
    ]
    taken: list[_Box] = list(state_boxes)
    xs = [b.left for b in state_boxes] + [b.left + b.width for b in state_boxes]
    ys = [b.top for b in state_boxes] + [b.top + b.height for b in state_boxes]
    paths: list[str] = []
    labels: list[str] = []
    for (source, target), group in sorted(grouped.items()):
        start_centre, end_centre = positions[source], positions[target]
        others = [p for state, p in positions.items() if state not in {source, target}]
        control = _route(start_centre, end_centre, others, (target, source) in grouped)
        start = _border(start_centre, control)
        end = _border(end_centre, control)
        apex = _quadratic(start, control, end, 0.5)
        xs.append(apex.x)
        ys.append(apex.y)
        exit_only = all(edge.exit for edge in group)
        colour, marker = (
            ("#a33", f"{ident}-arrow-exit") if exit_only else ("#334", f"{ident}-arrow")
        )
        dash = ' stroke-dasharray="6 4"' if exit_only else ""
        paths.append(
            f'<path d="M{_number(start.x)},{_number(start.y)} Q{_number(control.x)},'
            f'{_number(control.y)} {_number(end.x)},{_number(end.y)}" fill="none" '
            f'stroke="{colour}" stroke-width="1.6"{dash} marker-end="url(#{marker})"/>'
        )
        if exit_only:
            continue
        texts = sorted({edge.label for edge in group if not edge.exit})
        width = max(len(text) for text in texts) * _CHAR_WIDTH + 8
        height = len(texts) * _LABEL_LINE + 4
        box = _free_spot(_Box(apex.x - width / 2, apex.y - height / 2, width, height), taken)
        taken.append(box)
        xs.extend([box.left, box.left + box.width])
        ys.extend([box.top, box.top + box.height])
        labels.append(
            f'<rect x="{_number(box.left)}" y="{_number(box.top)}" width="{_number(width)}" '
            f'height="{_number(height)}" rx="3" fill="#fff" fill-opacity="0.92"/>'
        )
        for index, text in enumerate(texts):
            baseline = box.top + 2 + _LABEL_LINE * (index + 1) - 3
            labels.append(
                f'<text x="{_number(box.left + width / 2)}" y="{_number(baseline)}" '
                f'text-anchor="middle" font-size="{_number(LABEL_FONT_SIZE)}" fill="#223">'
                f"{escape(text)}</text>"
            )
    legend_text = legend or (
        "Thick border: initial state. Dashed red arrows: exit-notice (either party). "
        "Messages that keep the state, problem-report and receipt: see the table."
    )
    left, top = min(xs) - _MARGIN, min(ys) - _MARGIN
    xs.append(left + _MARGIN + len(legend_text) * _CHAR_WIDTH)
    width = max(xs) + _MARGIN - left
    legend_y = max(ys) + _MARGIN
    height = legend_y + 12 - top
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{_number(left)} {_number(top)} '
        f'{_number(width)} {_number(height)}" width="{_number(width)}" '
        f'height="{_number(height)}" font-family="Helvetica, Arial, sans-serif" role="img" '
        f'aria-labelledby="{ident}-title" class="state-diagram">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        "<defs>"
        f'<marker id="{ident}-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#334"/></marker>'
        f'<marker id="{ident}-arrow-exit" viewBox="0 0 10 10" refX="9" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path '
        'd="M0,0 L10,5 L0,10 z" fill="#a33"/></marker>'
        "</defs>",
        # No background: in the HTML, the scroll box's shadows must show through.
        f'<rect x="{_number(left)}" y="{_number(top)}" width="{_number(width)}" '
        f'height="{_number(height)}" fill="none"/>',
        *paths,
    ]
    for state in states:
        centre = positions[state]
        stroke = 'stroke="#334" stroke-width="2.5"' if state == initial else 'stroke="#334"'
        out.append(
            f'<g class="state"><rect x="{_number(centre.x - _BOX_WIDTH / 2)}" '
            f'y="{_number(centre.y - _BOX_HEIGHT / 2)}" width="{_number(_BOX_WIDTH)}" '
            f'height="{_number(_BOX_HEIGHT)}" rx="8" fill="#eef3fb" {stroke}/>'
            f'<text x="{_number(centre.x)}" y="{_number(centre.y + 5)}" text-anchor="middle" '
            f'font-size="14" font-weight="bold" fill="#112">'
            f"{escape(shown.get(state, state.upper()))}</text></g>"
        )
    out.extend(labels)
    out.append(
        f'<text x="{_number(left + _MARGIN)}" y="{_number(legend_y)}" font-size="12" '
        f'fill="#223">{escape(legend_text)}</text>'
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"
