"""The models and the schemas reach the same verdict on every payload (spec §5, §6).

The library validates a received message once, by building its model
(:func:`vrm_protocol.models.parse_message_dict`), and keeps the schemas
normative: a refusal is explained by the schemas. That is sound only if the
models accept exactly what the schemas accept. These tests hold them to it
on every example and every vector, and on payloads Hypothesis derives from
them: a member replaced by a value from anywhere in the corpus or by an edge
case (nulls, integral floats, booleans for numbers, strings at and past their
length limits, Unicode digits, trailing newlines, non-calendar dates), a
member removed, an unknown member added, an array element repeated.

For every payload: the models accept it exactly when the compiled schema
validator does, the compiled and reference schema validators agree, and
the error :func:`parse_message_dict` raises is the schema's.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from vrm_protocol.errors import ProtocolError
from vrm_protocol.models import MESSAGE_ADAPTER, parse_message_dict
from vrm_protocol.schema_registry import default_registry

ROOT: Final = Path(__file__).resolve().parents[2]
EXAMPLES: Final = sorted((ROOT / "schemas" / "examples").glob("*.json"))
VECTORS: Final = sorted((ROOT / "conformance" / "vectors" / "payloads").rglob("*.json"))
SCHEMAS: Final = sorted((ROOT / "schemas").glob("*.schema.json"))


def _load(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


def _payloads() -> list[dict[str, Any]]:
    payloads = [_load(path) for path in EXAMPLES]
    payloads += [_load(path)["payload"] for path in VECTORS]
    return [payload for payload in payloads if isinstance(payload, dict)]


def _schema_accepts(payload: Any) -> bool:
    try:
        default_registry().validate_message(payload)
    except ProtocolError:
        return False
    return True


PAYLOADS: Final = _payloads()
VALID: Final = [payload for payload in PAYLOADS if _schema_accepts(payload)]
TYPES: Final = frozenset(message_type.value for message_type in default_registry().message_types)


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for member in value.values():
            yield from _leaves(member)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def _member_names(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for name, member in value.items():
            yield name
            yield from _member_names(member)
    elif isinstance(value, list):
        for item in value:
            yield from _member_names(item)


def _schema_numbers(keyword: str) -> set[int]:
    found: set[int] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get(keyword), int):
                found.add(node[keyword])
            for member in node.values():
                walk(member)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for path in SCHEMAS:
        walk(_load(path))
    return found


#: Every leaf value of the corpus (strings, integers, booleans), deduplicated.
LEAVES: Final = sorted(
    {json.dumps(leaf) for payload in PAYLOADS for leaf in _leaves(payload)}, key=str
)
NAMES: Final = sorted({name for payload in PAYLOADS for name in _member_names(payload)})
BOUNDS: Final = sorted(_schema_numbers("minimum") | _schema_numbers("maximum"))
LENGTHS: Final = sorted(_schema_numbers("minLength") | _schema_numbers("maxLength"))


def _tweaks(text: str) -> list[str]:
    """Edge cases near a valid string: the spellings where validators tend to differ."""
    return [
        text + "\n",
        "\n" + text,
        text.upper(),
        text.replace("0", "\u0660").replace("1", "\u0661"),
        text[:-1],
        text + text[-1:],
        text.replace("-", "_"),
        text.replace("Z", "z"),
        text.replace("T", " "),
        text.replace("-01-", "-02-").replace("-28T", "-30T").replace("-10T", "-31T"),
        " " + text,
        text + "\u2028",
    ]


def _corpus_value() -> st.SearchStrategy[Any]:
    leaf = st.sampled_from(LEAVES).map(json.loads)
    tweaked = (
        st.sampled_from([v for v in (json.loads(x) for x in LEAVES) if isinstance(v, str) and v])
        .flatmap(lambda text: st.sampled_from(_tweaks(text)))
    )  # fmt: skip
    numbers = st.sampled_from(BOUNDS).flatmap(
        lambda bound: st.sampled_from([bound - 1, bound, bound + 1, float(bound), bound + 0.5])
    )
    lengths = st.sampled_from(LENGTHS).flatmap(
        lambda length: st.sampled_from(["a" * max(length - 1, 0), "a" * length, "a" * (length + 1)])
    )
    scalars = st.one_of(
        leaf,
        tweaked,
        numbers,
        lengths,
        st.none(),
        st.booleans(),
        st.integers(-2, 3),
        st.sampled_from([0.0, 1.0, 1.5, -0.0, 2**53, 2**53 + 1]),
        st.text(max_size=4),
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(st.sampled_from(NAMES), children, max_size=3),
        ),
        max_leaves=4,
    )


def _locations(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for name, member in value.items():
            yield (*prefix, name)
            yield from _locations(member, (*prefix, name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index)
            yield from _locations(item, (*prefix, index))


def _parent(payload: Any, location: tuple[Any, ...]) -> Any:
    for part in location[:-1]:
        payload = payload[part]
    return payload


@st.composite
def mutated_payloads(draw: st.DrawFn) -> dict[str, Any]:
    """A valid payload of the corpus with one to three mutations."""
    payload = copy.deepcopy(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 3))):
        locations = list(_locations(payload))
        if not locations:
            break
        location = draw(st.sampled_from(locations))
        parent, last = _parent(payload, location), location[-1]
        operation = draw(st.sampled_from(["replace", "replace", "delete", "add", "repeat"]))
        if operation == "replace":
            parent[last] = draw(_corpus_value())
        elif operation == "delete":
            del parent[last]
        elif operation == "add" and isinstance(parent[last], dict):
            parent[last][draw(st.sampled_from(NAMES))] = draw(_corpus_value())
        elif operation == "repeat" and isinstance(parent[last], list) and parent[last]:
            parent[last].append(copy.deepcopy(parent[last][0]))
    return payload


def _models_accept(payload: Any) -> bool:
    try:
        MESSAGE_ADAPTER.validate_python(payload, by_alias=True, by_name=False)
    except ValidationError:
        return False
    return True


def _verdict(judge: Any, payload: Any) -> tuple[str, str | None, Any] | None:
    try:
        judge(payload)
    except ProtocolError as error:
        return (error.code.value, error.path, error.extra.get("errors"))
    return None


def _check(payload: Any) -> None:
    registry = default_registry()
    schema = _verdict(registry.validate_message, payload)
    assert _models_accept(payload) is (schema is None), json.dumps(payload)[:2000]
    # The models' refusal is explained by the schema: the same error, path and list.
    assert _verdict(parse_message_dict, payload) == schema
    message_type = payload.get("type") if isinstance(payload, dict) else None
    if schema is not None and schema[0] == "schema-invalid" and message_type in TYPES:
        # The two schema engines agree too (the compiled one judges, the reference explains).
        name = f"{message_type}.schema.json"
        assert not registry.is_valid(payload, name)
        assert registry.reference_errors(payload, name)


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda payload: str(payload.get("id"))[-12:])
def test_models_and_schemas_agree_on_every_example_and_vector(payload: dict[str, Any]) -> None:
    _check(payload)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(payload=mutated_payloads())
def test_models_and_schemas_agree_on_mutated_payloads(payload: dict[str, Any]) -> None:
    _check(payload)
