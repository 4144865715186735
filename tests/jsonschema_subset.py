"""A validator for the subset of JSON Schema 2020-12 the shipped schemas use (no new
dependency for one test). A keyword outside the subset is an error, never silently passed."""

from __future__ import annotations

from typing import Any

_IGNORED = {"$schema", "$id", "$defs", "title", "description", "default", "examples"}
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


class SchemaError(AssertionError):
    """The instance does not match; the message names the JSON path."""


def validate(instance: Any, schema: dict[str, Any]) -> None:
    """Raise SchemaError at the first mismatch."""
    _check(instance, schema, schema, "$")


def _resolve(root: dict[str, Any], ref: str) -> dict[str, Any]:
    if not ref.startswith("#/"):
        raise SchemaError(f"unsupported $ref {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node  # type: ignore[no-any-return]


def _check(v: Any, s: dict[str, Any], root: dict[str, Any], at: str) -> None:
    unknown = set(s) - _IGNORED - {
        "$ref", "type", "properties", "required", "additionalProperties", "items",
        "prefixItems", "minItems", "maxItems", "anyOf", "enum", "const", "minimum", "maximum",
        "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength"}
    if unknown:
        raise SchemaError(f"{at}: schema keyword(s) outside the supported subset: {unknown}")
    if "$ref" in s:
        _check(v, _resolve(root, s["$ref"]), root, at)
    if "type" in s:
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        if not any(_TYPES[t](v) for t in types):
            raise SchemaError(f"{at}: {type(v).__name__} {v!r:.60} is not {types}")
    if "const" in s and v != s["const"]:
        raise SchemaError(f"{at}: {v!r} != const {s['const']!r}")
    if "enum" in s and v not in s["enum"]:
        raise SchemaError(f"{at}: {v!r} not in {s['enum']}")
    if "anyOf" in s:
        errors = []
        for option in s["anyOf"]:
            try:
                _check(v, option, root, at)
                break
            except SchemaError as exc:
                errors.append(str(exc))
        else:
            raise SchemaError(f"{at}: matches no anyOf option: {errors}")
    if isinstance(v, dict):
        props = s.get("properties", {})
        for key in s.get("required", []):
            if key not in v:
                raise SchemaError(f"{at}: required key {key!r} missing")
        extra = s.get("additionalProperties", True)
        for key, value in v.items():
            if key in props:
                _check(value, props[key], root, f"{at}.{key}")
            elif extra is False:
                raise SchemaError(f"{at}: key {key!r} not allowed")
            elif isinstance(extra, dict):
                _check(value, extra, root, f"{at}.{key}")
    if isinstance(v, list):
        if "minItems" in s and len(v) < s["minItems"]:
            raise SchemaError(f"{at}: fewer than {s['minItems']} items")
        if "maxItems" in s and len(v) > s["maxItems"]:
            raise SchemaError(f"{at}: more than {s['maxItems']} items")
        prefix = s.get("prefixItems", [])
        for i, item in enumerate(v):
            if i < len(prefix):
                _check(item, prefix[i], root, f"{at}[{i}]")
            elif "items" in s and s["items"] is not False:
                _check(item, s["items"], root, f"{at}[{i}]")
            elif s.get("items") is False:
                raise SchemaError(f"{at}: item {i} beyond prefixItems")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        for key, ok in (("minimum", lambda b: v >= b), ("maximum", lambda b: v <= b),
                        ("exclusiveMinimum", lambda b: v > b),
                        ("exclusiveMaximum", lambda b: v < b)):
            if key in s and not ok(s[key]):
                raise SchemaError(f"{at}: {v} violates {key} {s[key]}")
    if isinstance(v, str):
        if "minLength" in s and len(v) < s["minLength"]:
            raise SchemaError(f"{at}: shorter than {s['minLength']}")
        if "maxLength" in s and len(v) > s["maxLength"]:
            raise SchemaError(f"{at}: longer than {s['maxLength']}")
