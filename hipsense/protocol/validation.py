"""Schema validation of received messages, against the JSON Schema files in ``schemas/``.

The files are the contract (a dashboard in another language reads the same files). A reader
checks untrusted input against them with a validator that fastjsonschema compiles from those
very files into plain Python, once per kind and process: about 5 µs a message, where the
interpreting jsonschema took 150 µs (issue 14). The files' cross-file references are inlined
first and the schema is handed over as draft 7: the files use only keywords whose meaning is
the same in draft 7 and 2020-12 (:data:`PORTABLE_KEYWORDS`, checked by a test, so a new
keyword cannot slip through with a different meaning). The tests prove the compiled validator
equivalent to jsonschema on the files as written, on valid and on hostile documents, with one
deliberate difference: a pattern's ``$`` does not match before a trailing newline here (as in
the ECMA-262 regexes the JSON Schema specification prescribes), while Python's ``re`` in
jsonschema lets ``"clam_shells\\n"`` through.

Before that validator, :mod:`.acceptor` (compiled from the same files) gives a quick yes to
a valid document in about a third of the time; any "no" or "unsure" goes to fastjsonschema,
which decides and names what is wrong.

The Pi does not validate its own messages at runtime: its builders are correct by
construction (:mod:`.builders`), and a test checks every builder's output against the files.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

import fastjsonschema

from hipsense.protocol.acceptor import Unsure, compile_acceptor
from hipsense.protocol.errors import ProtocolError
from hipsense.protocol.topics import MessageKind

SCHEMA_VERSION = 1

SCHEMA_FILES: dict[MessageKind, str] = {
    MessageKind.STATUS: "status.json",
    MessageKind.LIVE: "live.json",
    MessageKind.REP: "rep.json",
    MessageKind.HOLD: "hold.json",
    MessageKind.SET: "set.json",
    MessageKind.SESSION: "session.json",
    MessageKind.PAIN: "pain.json",
    MessageKind.PRESCRIPTION: "prescription.json",
    MessageKind.STORED: "stored.json",
}

PORTABLE_KEYWORDS = frozenset({
    # annotations
    "$schema", "$id", "$defs", "$ref", "title", "description",
    # assertions and applicators with the same meaning in draft 7 and 2020-12
    "type", "enum", "const", "minimum", "maximum", "minLength", "maxLength", "pattern",
    "minItems", "maxItems", "uniqueItems", "items", "required", "properties", "additionalProperties",
    "anyOf", "if", "then", "else",
})
"""Keywords the schema files may use (2020-12's ``prefixItems``, ``unevaluatedProperties``,
``dependentRequired`` and the like would be misread or ignored by a draft 7 validator)."""

DRAFT_7 = "http://json-schema.org/draft-07/schema#"


def load_schema(name: str) -> dict[str, Any]:
    """Return one schema file (e.g. ``"rep.json"``) as a dict."""
    text = resources.files("hipsense.protocol").joinpath("schemas", name).read_text("utf-8")
    return json.loads(text)


def _inline_refs(node: Any, defs: Mapping[str, Any]) -> Any:
    """Replace every ``{"$ref": "common.json#/$defs/x"}`` with a copy of that definition."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("common.json#/$defs/"):
                raise ValueError(f"unsupported $ref {ref!r}: only common.json#/$defs/... is inlined")
            target = _inline_refs(defs[ref.rsplit("/", 1)[1]], defs)
            rest = {k: _inline_refs(v, defs) for k, v in node.items() if k != "$ref"}
            return {**target, **rest} if rest else target
        return {k: _inline_refs(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


def self_contained_schema(kind: MessageKind) -> dict[str, Any]:
    """The schema of ``kind`` with its references to common.json inlined (no ``$id``)."""
    defs = load_schema("common.json").get("$defs", {})
    schema = _inline_refs(load_schema(SCHEMA_FILES[kind]), defs)
    schema.pop("$id", None)
    return schema


@functools.cache
def _validator(kind: MessageKind) -> Callable[[Any], Any]:
    schema = {**self_contained_schema(kind), "$schema": DRAFT_7}
    return fastjsonschema.compile(schema)


@functools.cache
def acceptor(kind: MessageKind) -> Callable[[Any], bool]:
    """The quick yes for ``kind`` (:mod:`.acceptor`), compiled from the same file."""
    return compile_acceptor(self_contained_schema(kind))


def _pointer(path: list[str]) -> str:
    return "".join(f"/{part}" for part in path[1:])  # path[0] is fastjsonschema's "data"


def validate_payload(kind: MessageKind, document: Mapping[str, Any], *, topic: str | None = None) -> None:
    """Raise ProtocolError if ``document`` does not match the schema of ``kind``."""
    version = document.get("schema_version") if isinstance(document, Mapping) else None
    if isinstance(document, Mapping) and "schema_version" in document and version != SCHEMA_VERSION:
        raise ProtocolError(
            f"schema_version {version!r} is not supported (this reader knows {SCHEMA_VERSION})",
            topic=topic,
            path="/schema_version",
        )
    try:
        if acceptor(kind)(document):
            return
    except Unsure:
        pass
    # Invalid, or the quick checks would not say: the full validator decides and names the field.
    try:
        _validator(kind)(document)
    except fastjsonschema.JsonSchemaValueException as exc:
        # "data.exercises[0].reps must be ..." → "exercises[0].reps must be ..."
        detail = exc.message
        if exc.name and detail.startswith(exc.name):
            detail = (exc.name.removeprefix("data").removeprefix(".") or "the document") + detail[len(exc.name):]
        # The message can quote the offending value, which can be the whole 64 KiB document.
        detail = detail if len(detail) <= 200 else detail[:200] + "..."
        raise ProtocolError(
            f"{kind.name.lower()} payload does not match its schema: {detail}",
            topic=topic,
            path=_pointer(exc.path or []),
        ) from None
