"""The compiled ingest validator says what jsonschema says, on valid and on hostile documents.

The reference is jsonschema reading the schema files as written (draft 2020-12, references
resolved through a registry), independent of hipsense.protocol.validation. Valid documents are
drawn from the schema itself (:func:`from_schema` below, for the keywords the files use; the
reference keeps only those it accepts); hostile ones are those documents
mutated: fields removed, added, or replaced by JSON of any type (bools for integers, 1.0 for 1,
huge numbers, deep nesting, strings where numbers belong and the other way round).

The one deliberate difference, asserted as such: a string that matches a pattern only because
Python's ``$`` also matches before a trailing newline passes jsonschema and fails the compiled
validator (the JSON Schema specification prescribes ECMA-262 regexes, where it fails too).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hipsense import protocol as p
from hipsense.protocol import acceptor, validation
from tests.protocol.samples import every_kind

SCHEMA_DIR = Path(p.__file__).parent / "schemas"
KINDS = list(p.MessageKind)


def _reference(kind: p.MessageKind) -> jsonschema.Draft202012Validator:
    schemas = {path.name: json.loads(path.read_text()) for path in SCHEMA_DIR.glob("*.json")}
    registry = referencing.Registry().with_resources(
        (s["$id"], referencing.Resource.from_contents(s)) for s in schemas.values())
    return jsonschema.Draft202012Validator(schemas[validation.SCHEMA_FILES[kind]], registry=registry)


REFERENCE = {kind: _reference(kind) for kind in KINDS}


def _compiled_accepts(kind: p.MessageKind, doc: Any) -> bool:
    try:
        validation.validate_payload(kind, doc)
    except p.ProtocolError:
        return False
    return True


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


def assert_agree(kind: p.MessageKind, doc: Any) -> None:
    reference = REFERENCE[kind].is_valid(doc)
    compiled = _compiled_accepts(kind, doc)
    assert_acceptor_agrees(kind, doc, reference)
    if reference and not compiled and any(s.endswith("\n") for s in _strings(doc)):
        return  # the deliberate difference (module docstring)
    assert compiled == reference, f"{kind.name}: compiled {compiled}, jsonschema {reference}: {doc!r}"


def assert_acceptor_agrees(kind: p.MessageKind, doc: Any, reference: bool) -> None:
    """The quick acceptor, on its own: where it decides, it says what jsonschema says (with
    the same trailing-newline difference); it never says yes to an invalid document."""
    try:
        quick = validation.acceptor(kind)(doc)
    except acceptor.Unsure:
        return
    if reference and not quick and any(s.endswith("\n") for s in _strings(doc)):
        return
    assert quick == reference, f"{kind.name}: acceptor {quick}, jsonschema {reference}: {doc!r}"


def test_the_schema_files_use_only_keywords_that_mean_the_same_in_draft_7():
    def keywords(node: Any, under_properties: bool = False) -> set[str]:
        found: set[str] = set()
        if isinstance(node, dict):
            for key, value in node.items():
                if not under_properties:
                    found.add(key)
                found |= keywords(value, under_properties=(key in ("properties", "$defs") and not under_properties))
        elif isinstance(node, list):
            for value in node:
                found |= keywords(value)
        return found

    for path in SCHEMA_DIR.glob("*.json"):
        used = keywords(json.loads(path.read_text()))
        assert used <= validation.PORTABLE_KEYWORDS, f"{path.name} uses {sorted(used - validation.PORTABLE_KEYWORDS)}"


@pytest.mark.parametrize("kind", KINDS)
def test_every_builder_sample_is_valid_to_both(kind):
    doc = json.loads(every_kind()[kind].payload)
    assert REFERENCE[kind].is_valid(doc) and _compiled_accepts(kind, doc)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40)
    | st.sampled_from([0, 1, -1, 1.0, 0.5, True, False, "", "left", "both", "clam_shells", "clam_shells\n",
                       "2025-03-01T09:15:02.250Z", "01JQ7Z8K3M4N5P6Q7R8S9T0V1W", 86400, 86400.001, 360, 10000, 2**53]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


def _replace(node: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(node, dict):
        return {**node, head: _replace(node[head], rest, value)}
    copy = list(node)
    copy[head] = _replace(node[head], rest, value)
    return copy


def _delete(node: Any, path: tuple) -> Any:
    if len(path) == 1:
        if isinstance(node, dict):
            return {k: v for k, v in node.items() if k != path[0]}
        return [v for i, v in enumerate(node) if i != path[0]]
    head = path[0]
    if isinstance(node, dict):
        return {**node, head: _delete(node[head], path[1:])}
    copy = list(node)
    copy[head] = _delete(node[head], path[1:])
    return copy


@st.composite
def hostile(draw: st.DrawFn, valid: st.SearchStrategy) -> Any:
    doc = draw(valid)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            doc = _replace(doc, path, draw(json_values))
        elif action == "delete" and path:
            doc = _delete(doc, path)
        else:
            target = doc
            for part in path:
                target = target[part]
            if isinstance(target, dict):
                key = draw(st.sampled_from(["extra", "id", "seq", "side", "flags", "t", "exercise"]) | st.text(max_size=8))
                doc = _replace(doc, path, {**target, key: draw(json_values)})
            elif isinstance(target, list):
                doc = _replace(doc, path, [*target, draw(json_values)])
    return doc


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy:
    """Documents shaped by ``schema`` (the files' keywords; ``if``/``then``/``else`` is left to
    the caller's filter). Strings of a pattern match it whole, so none ends in a stray newline."""
    if "anyOf" in schema:
        return st.one_of([from_schema(branch) for branch in schema["anyOf"]])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))

        @st.composite
        def objects(draw: st.DrawFn) -> dict[str, Any]:
            return {key: draw(from_schema(sub)) for key, sub in properties.items()
                    if key in required or draw(st.booleans())}
        return objects()
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {})), min_size=schema.get("minItems", 0),
                        max_size=min(schema.get("maxItems", 5), 5), unique_by=json.dumps if schema.get("uniqueItems") else None)
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda s: len(s) <= schema.get("maxLength", 10**6))
        return st.text(max_size=schema.get("maxLength", 40))
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**60)), schema.get("maximum", 2**60))
    if kind == "number":
        lo, hi = schema.get("minimum"), schema.get("maximum")
        return st.floats(lo, hi, allow_nan=False, allow_infinity=False) | st.integers(
            int(lo) if lo is not None else -(2**60), int(hi) if hi is not None else 2**60)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    raise AssertionError(f"from_schema does not know {schema}")


VALID = {kind: from_schema(validation.self_contained_schema(kind)).filter(REFERENCE[kind].is_valid) for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(data=st.data())
def test_valid_documents_generated_from_the_schema_pass_both(kind, data):
    doc = data.draw(VALID[kind])
    assert_agree(kind, doc)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(data=st.data())
def test_hostile_documents_get_the_same_verdict(kind, data):
    doc = data.draw(hostile(VALID[kind]))
    assert_agree(kind, doc)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=30, deadline=None)
@given(doc=json_values)
def test_any_json_at_all_gets_the_same_verdict(kind, doc):
    assert_agree(kind, doc)


def test_the_trailing_newline_difference_is_the_stricter_side():
    doc = json.loads(every_kind()[p.MessageKind.REP].payload) | {"exercise": "clam_shells\n"}
    assert REFERENCE[p.MessageKind.REP].is_valid(doc)
    with pytest.raises(p.ProtocolError, match="exercise must match pattern"):
        validation.validate_payload(p.MessageKind.REP, doc)


def test_errors_name_the_field_as_a_json_pointer():
    doc = json.loads(every_kind()[p.MessageKind.PRESCRIPTION].payload)
    doc["exercises"][1]["sets"] = 0
    with pytest.raises(p.ProtocolError) as info:
        validation.validate_payload(p.MessageKind.PRESCRIPTION, doc)
    assert info.value.path == "/exercises/1/sets"
    assert "exercises[1].sets must be bigger than or equal to 1" in info.value.reason


# -- the quick acceptor -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_every_builder_sample_takes_the_quick_path(kind):
    doc = json.loads(every_kind()[kind].payload)
    assert validation.acceptor(kind)(doc) is True


def test_the_acceptor_follows_the_schema_files():
    # A new optional field in a file (as status.json may get) is accepted when valid and
    # checked when present, with nothing to change here: the acceptor is compiled from the file.
    schema = validation.self_contained_schema(p.MessageKind.STATUS)
    schema["properties"]["new_counter"] = {"type": "integer", "minimum": 0}
    accept = acceptor.compile_acceptor(schema)
    doc = json.loads(every_kind()[p.MessageKind.STATUS].payload)
    assert accept(doc) and accept(doc | {"new_counter": 3})
    assert not accept(doc | {"new_counter": -1}) and not accept(doc | {"new_counter": "3"})
    assert not accept(doc | {"unknown": 1})


@pytest.mark.parametrize("schema", [
    {"type": "object", "patternProperties": {"^x": {}}},
    {"prefixItems": [{"type": "string"}]},
    {"$ref": "common.json#/$defs/seq"},
    {"type": "decimal"},
    {"items": [{"type": "string"}]},
])
def test_the_acceptor_refuses_to_compile_what_it_does_not_know(schema):
    with pytest.raises(acceptor.SchemaNotCompiled):
        acceptor.compile_acceptor(schema)


@pytest.mark.parametrize(("schema", "doc", "verdict"), [
    ({"type": "integer"}, 1, True),
    ({"type": "integer"}, True, False),
    ({"type": "number"}, False, False),
    ({"type": "integer"}, 1.0, None),  # an integer to JSON Schema: left to the full validator
    ({"type": "integer"}, 1.5, None),
    ({"const": 1}, 1.0, True),
    ({"const": 1}, True, False),
    ({"enum": [0, "a"]}, False, False),
    ({"enum": [[1, {"a": 1}]]}, [1.0, {"a": 1}], True),
    ({"uniqueItems": True}, [1, 1.0], False),
    ({"uniqueItems": True}, [1, True], True),
    ({"uniqueItems": True}, [{"a": [1]}, {"a": [1.0]}], False),
    ({"uniqueItems": True}, list(range(65)), None),
    ({"type": "object"}, {"a": 1}.keys(), None),  # not a JSON value at all
    ({"pattern": "^a$"}, "a\n", False),
    ({"minLength": 2}, "\U0001f600", False),  # one code point
    ({"maximum": 2**53}, 2**53 + 1, False),
    ({"anyOf": [{"type": "string"}, {"type": "null"}]}, None, True),
    ({"if": {"properties": {"k": {"const": "x"}}}, "then": {"required": ["y"]}, "else": {"required": ["z"]}},
     {"k": "x", "z": 1}, False),
    ({"if": {"properties": {"k": {"const": "x"}}}, "then": {"required": ["y"]}, "else": {"required": ["z"]}},
     {"k": "w", "z": 1}, True),
])
def test_the_acceptor_reads_json_schema_as_json_schema_does(schema, doc, verdict):
    accept = acceptor.compile_acceptor(schema)
    if verdict is None:
        with pytest.raises(acceptor.Unsure):
            accept(doc)
    else:
        assert accept(doc) is verdict
    if verdict is not None and not isinstance(doc, type({}.keys())):
        assert jsonschema.Draft202012Validator(schema).is_valid(doc) is (verdict or doc == "a\n")


def _subschemas(schema: dict[str, Any], path: tuple) -> list[dict[str, Any]]:
    """The subschemas (every anyOf branch) that apply at ``path`` of a document."""
    found = [schema]
    for part in path:
        nxt = []
        for node in found:
            for branch in [node, *node.get("anyOf", [])]:
                if isinstance(part, str) and part in branch.get("properties", {}):
                    nxt.append(branch["properties"][part])
                elif isinstance(part, int) and isinstance(branch.get("items"), dict):
                    nxt.append(branch["items"])
        found = nxt
    return [branch for node in found for branch in [node, *node.get("anyOf", [])]]


def _edge_values(schema: dict[str, Any], current: Any) -> list[Any]:
    """Values at and just past each bound of ``schema``, and of the wrong type."""
    values: list[Any] = [None, True, False, 0, 1, 1.0, -1, "", "x", [], {}]
    for key in ("minimum", "maximum"):
        if key in schema:
            bound = schema[key]
            values += [bound, float(bound), bound - 1, bound + 1, bound - 0.5, bound + 0.5, bound + 1e-9]
    for key in ("minLength", "maxLength"):
        if key in schema:
            values += ["a" * max(0, schema[key] - 1), "a" * schema[key], "a" * (schema[key] + 1)]
    if isinstance(current, str):
        values += [current + "\n", current + "x", current[:-1], current.upper(), current + "\u00e9", " " + current]
        if "maxLength" in schema:
            values += [(current * 40)[: schema["maxLength"]], (current * 40)[: schema["maxLength"] + 1]]
    for key in ("enum", "const"):
        members = schema.get(key) if key == "enum" else [schema.get(key)] if key in schema else []
        for member in members or []:
            values += [member, str(member).capitalize(), [member]]
            if isinstance(member, int) and not isinstance(member, bool):
                values += [float(member), member + 1]
    if isinstance(current, list):
        items = current or ["x"]
        for key in ("minItems", "maxItems"):
            if key in schema:
                for n in (schema[key] - 1, schema[key], schema[key] + 1):
                    if n >= 0:
                        values += [(items * (n + 1))[:n], [f"f_{chr(97 + i % 26)}{i}" for i in range(n)]]
        values += [items + items[:1], items + [None]]
    if isinstance(current, dict):
        values += [{k: v for k, v in current.items() if k != key} for key in current]
        values += [current | {"extra": 1}]
    return values


@pytest.mark.parametrize("kind", KINDS)
def test_edge_documents_get_the_same_verdict(kind):
    """Every value of every builder sample replaced by values at and just past its schema's
    bounds (lengths, sizes, ranges, members, types): the acceptor, the validator and jsonschema
    agree on each (the hypothesis tests above rarely reach a 17-item array)."""
    schema = validation.self_contained_schema(kind)
    doc = json.loads(every_kind()[kind].payload)
    checked = 0
    for path in _paths(doc):
        current = doc
        for part in path:
            current = current[part]
        for sub in _subschemas(schema, path):
            for value in _edge_values(sub, current):
                assert_agree(kind, _replace(doc, path, value))
                checked += 1
    assert checked > 50
