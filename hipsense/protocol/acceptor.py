"""A quick yes for a valid document: schema files compiled into plain Python checks.

:func:`compile_acceptor` turns one self-contained schema (``$ref`` inlined) into a function
``accept(document) -> bool``: True when the document is valid, False when it is not, and
:class:`Unsure` raised where it will not decide (a float where an integer belongs, a value
that is no JSON type, a long array whose items must be unique and are not all strings). It
says nothing about *why* a document is invalid: :func:`validation.validate_payload` asks it
first and leaves every "no" and every "unsure" to the fastjsonschema validator, which names
the field. So a document is accepted when this says yes or fastjsonschema says yes; the tests
hold this to jsonschema on the files, on valid and hostile documents, like the validator.

Why another compiler: fastjsonschema's generated code is general (isinstance chains, a set
difference and a dict copy per object, a definition dict built for every error it could
raise); a rep event cost about 8 µs to validate, as much as decoding its JSON. The checks
here are the few comparisons each keyword needs, about a third of that (issue 14).

Only the keywords of :data:`validation.PORTABLE_KEYWORDS` are compiled; a schema with any
other keyword (or a ``$ref`` left) is refused with :class:`SchemaNotCompiled`. Every check is
exact for JSON values (``dict``, ``list``, ``str``, ``int``, ``float``, ``bool``, ``None``)
with JSON Schema's meaning: ``true`` is no number, ``1`` equals ``1.0`` in ``enum``/``const``/
``uniqueItems``, lengths count code points, and a pattern's ``$`` matches at the very end
only (fastjsonschema's reading, see :mod:`.validation`). Exactness matters inside ``if``:
a wrong "no" there would pick ``else`` instead of ``then``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_JSON_TYPES = frozenset({dict, list, str, int, float, bool, type(None)})
_NUMBER = frozenset({int, float})
_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "title", "description"})
_COMPILED = frozenset({
    "type", "enum", "const", "minimum", "maximum", "minLength", "maxLength", "pattern",
    "minItems", "maxItems", "uniqueItems", "items", "required", "properties", "additionalProperties",
    "anyOf", "if", "then", "else",
})
_DOLLAR = re.compile(r"(?<!\\)\$")  # an unescaped $, as fastjsonschema finds it
_UNIQUE_PAIRWISE_MAX = 64
"""Longest array whose items' uniqueness is checked pair by pair (when they are not all
strings); a longer one is left to fastjsonschema, which hashes them."""


class Unsure(Exception):
    """The acceptor does not decide this document; ask the full validator."""


class SchemaNotCompiled(ValueError):
    """The schema uses something :func:`compile_acceptor` does not compile."""


def _other(value: Any) -> bool:
    """Called where ``value`` failed a type test: a JSON value is definitely invalid there;
    anything else (a dict subclass, a tuple, a Decimal) is left to the full validator."""
    if type(value) in _JSON_TYPES:
        return False
    raise Unsure


def _not_integer(value: Any) -> bool:
    """``value`` is no int: a float may still be an integer to JSON Schema (``1.0``)."""
    if type(value) is float:
        raise Unsure
    return _other(value)


def json_equal(a: Any, b: Any) -> bool:
    """Equality of two JSON values as JSON Schema means it (``1 == 1.0``, ``true != 1``)."""
    ta, tb = type(a), type(b)
    if ta not in _JSON_TYPES or tb not in _JSON_TYPES:
        raise Unsure
    if ta is bool or tb is bool:
        return ta is tb and a == b
    if ta in _NUMBER and tb in _NUMBER:
        return a == b
    if ta is not tb:
        return False
    if ta is dict:
        return a.keys() == b.keys() and all(json_equal(a[key], b[key]) for key in a)
    if ta is list:
        return len(a) == len(b) and all(map(json_equal, a, b))
    return a == b


def _in_enum(value: Any, members: tuple) -> bool:
    return any(json_equal(value, member) for member in members)


def _unique_items(items: list) -> bool:
    if all(type(item) is str for item in items):
        return len(set(items)) == len(items)
    if len(items) > _UNIQUE_PAIRWISE_MAX:
        raise Unsure
    return not any(json_equal(items[i], items[j]) for i in range(len(items)) for j in range(i))


_TYPE_TESTS = {
    "object": "type({v}) is dict",
    "array": "type({v}) is list",
    "string": "type({v}) is str",
    "integer": "type({v}) is int",
    "number": "(type({v}) is int or type({v}) is float)",
    "boolean": "type({v}) is bool",
    "null": "{v} is None",
}


class _Compiler:
    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {
            "Unsure": Unsure, "_other": _other, "_not_integer": _not_integer, "_json_equal": json_equal,
            "_in_enum": _in_enum, "_unique_items": _unique_items, "_MISSING": object(),
        }
        self.functions: list[str] = []
        self._names = 0

    def name(self, prefix: str) -> str:
        self._names += 1
        return f"{prefix}{self._names}"

    def constant(self, value: Any, prefix: str = "_k") -> str:
        name = self.name(prefix)
        self.namespace[name] = value
        return name

    def function(self, schema: Any) -> str:
        """Compile ``schema`` into a function of its own; return its name."""
        name = self.name("_s")
        body: list[str] = []
        self.checks(schema, "v0", body, 1)
        self.functions.append("\n".join([f"def {name}(v0):", *body, "    return True"]))
        return name

    def checks(self, schema: Any, v: str, out: list[str], depth: int) -> None:
        """Append to ``out`` the statements that ``return False`` if ``v`` fails ``schema``."""
        pad = "    " * depth
        if schema is True:
            return
        if schema is False:
            out.append(f"{pad}return False")
            return
        if not isinstance(schema, dict):
            raise SchemaNotCompiled(f"a schema must be an object or a boolean, not {schema!r}")
        unknown = set(schema) - _COMPILED - _ANNOTATIONS
        if unknown:
            raise SchemaNotCompiled(f"keywords not compiled: {sorted(unknown)}")

        types = schema.get("type")
        types = [types] if isinstance(types, str) else types
        if types is not None:
            if not types or any(t not in _TYPE_TESTS for t in types):
                raise SchemaNotCompiled(f"unknown type {schema['type']!r}")
            test = " or ".join(_TYPE_TESTS[t].format(v=v) for t in types)
            otherwise = "_not_integer" if "integer" in types and "number" not in types else "_other"
            out.append(f"{pad}if not ({test}):")
            out.append(f"{pad}    return {otherwise}({v})")
        only = types[0] if types is not None and len(types) == 1 else None

        def guard(json_type: str) -> tuple[str, int]:
            """An ``if`` for keywords that apply to one type only, unless ``type`` ensures it."""
            if only == json_type or (json_type == "number" and only == "integer"):
                return pad, depth
            out.append(f"{pad}if {_TYPE_TESTS[json_type].format(v=v)}:")
            return pad + "    ", depth + 1

        if "const" in schema:
            self._equals(v, (schema["const"],), out, pad)
        if "enum" in schema:
            if not isinstance(schema["enum"], list):
                raise SchemaNotCompiled("enum must be an array")
            self._equals(v, tuple(schema["enum"]), out, pad)

        bounds = [(key, schema[key]) for key in ("minimum", "maximum") if key in schema]
        if bounds:
            for key, bound in bounds:
                if type(bound) not in _NUMBER:
                    raise SchemaNotCompiled(f"{key} must be a number")
            inner, _ = guard("number")
            for key, bound in bounds:
                op = "<" if key == "minimum" else ">"
                out.append(f"{inner}if {v} {op} {bound!r}:")
                out.append(f"{inner}    return False")

        string_keys = [key for key in ("minLength", "maxLength", "pattern") if key in schema]
        if string_keys:
            inner, _ = guard("string")
            if "minLength" in schema:
                out.append(f"{inner}if len({v}) < {int(schema['minLength'])}:")
                out.append(f"{inner}    return False")
            if "maxLength" in schema:
                out.append(f"{inner}if len({v}) > {int(schema['maxLength'])}:")
                out.append(f"{inner}    return False")
            if "pattern" in schema:
                search = self.constant(re.compile(_DOLLAR.sub(r"\\Z", schema["pattern"])).search, "_p")
                out.append(f"{inner}if not {search}({v}):")
                out.append(f"{inner}    return False")

        array_keys = [key for key in ("minItems", "maxItems", "uniqueItems", "items") if key in schema]
        if array_keys:
            inner, inner_depth = guard("array")
            if "minItems" in schema:
                out.append(f"{inner}if len({v}) < {int(schema['minItems'])}:")
                out.append(f"{inner}    return False")
            if "maxItems" in schema:  # before uniqueItems: a long hostile array stops here
                out.append(f"{inner}if len({v}) > {int(schema['maxItems'])}:")
                out.append(f"{inner}    return False")
            if "items" in schema:
                if not isinstance(schema["items"], (dict, bool)):
                    raise SchemaNotCompiled("items must be one schema (2020-12), not an array")
                item = self.name("v")
                body: list[str] = []
                self.checks(schema["items"], item, body, inner_depth + 1)
                if body:
                    out.append(f"{inner}for {item} in {v}:")
                    out.extend(body)
            if schema.get("uniqueItems") is True:
                out.append(f"{inner}if not _unique_items({v}):")
                out.append(f"{inner}    return False")

        object_keys = [key for key in ("required", "properties", "additionalProperties") if key in schema]
        if object_keys:
            inner, inner_depth = guard("object")
            required = schema.get("required", [])
            properties = schema.get("properties", {})
            if not isinstance(properties, dict) or not all(isinstance(r, str) for r in required):
                raise SchemaNotCompiled("properties must be an object and required an array of names")
            if required:
                out.append(f"{inner}if not ({self.constant(frozenset(required))} <= {v}.keys()):")
                out.append(f"{inner}    return False")
            extra = schema.get("additionalProperties", True)
            if extra is False:
                out.append(f"{inner}if not ({v}.keys() <= {self.constant(frozenset(properties))}):")
                out.append(f"{inner}    return False")
            for key, sub in properties.items():
                value = self.name("v")
                body = []
                self.checks(sub, value, body, inner_depth + (0 if key in required else 1))
                if not body:
                    continue
                if key in required:
                    out.append(f"{inner}{value} = {v}[{key!r}]")
                else:
                    out.append(f"{inner}{value} = {v}.get({key!r}, _MISSING)")
                    out.append(f"{inner}if {value} is not _MISSING:")
                out.extend(body)
            if extra not in (True, False):
                value, body = self.name("v"), []
                self.checks(extra, value, body, inner_depth + 1)
                if body:
                    key_var = self.name("k")
                    out.append(f"{inner}for {key_var} in {v}.keys() - {self.constant(frozenset(properties))}:")
                    out.append(f"{inner}    {value} = {v}[{key_var}]")
                    out.extend(body)

        if "anyOf" in schema:
            branches = schema["anyOf"]
            if not isinstance(branches, list) or not branches:
                raise SchemaNotCompiled("anyOf must be a non-empty array")
            calls = " or ".join(f"{self.function(branch)}({v})" for branch in branches)
            out.append(f"{pad}if not ({calls}):")
            out.append(f"{pad}    return False")
        if "if" in schema and ("then" in schema or "else" in schema):
            condition = self.function(schema["if"])
            out.append(f"{pad}if {condition}({v}):")
            body = []
            self.checks(schema.get("then", True), v, body, depth + 1)
            out.extend(body or [f"{pad}    pass"])
            out.append(f"{pad}else:")
            body = []
            self.checks(schema.get("else", True), v, body, depth + 1)
            out.extend(body or [f"{pad}    pass"])

    def _equals(self, v: str, members: tuple, out: list[str], pad: str) -> None:
        """``v`` must equal one of ``members`` (JSON equality); strings take a quick path."""
        name = self.constant(members)
        quick = []
        for kind in (str, int):  # a str equals only a str; an int here only an int (true is no int)
            same = frozenset(m for m in members if type(m) is kind)
            if same:
                quick.append(f"(type({v}) is {kind.__name__} and {v} in {self.constant(same)})")
        quick.append(f"_in_enum({v}, {name})")
        out.append(f"{pad}if not ({' or '.join(quick)}):")
        out.append(f"{pad}    return False")


def compile_acceptor(schema: dict[str, Any]) -> Callable[[Any], bool]:
    """Return ``accept(document)`` for a self-contained ``schema`` (see the module docstring).

    Raises SchemaNotCompiled if the schema uses what is not compiled here.
    """
    compiler = _Compiler()
    entry = compiler.function(schema)
    source = "\n\n".join(compiler.functions)
    exec(compile(source, f"<acceptor {schema.get('title', '')}>", "exec"), compiler.namespace)  # noqa: S102
    accept = compiler.namespace[entry]
    accept.source = source  # for a reader who wonders what it checks
    return accept
