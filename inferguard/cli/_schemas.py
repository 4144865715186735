"""The JSON documents the CLI prints (`--json`), and the JSON Schema of each, shipped in
`inferguard/schemas/` as package data.

Each schema is derived from the document's msgspec types (`msgspec.json.schema`), then
tightened to what `to_document` writes: every key of every object is required (keys are
stable: zeros, falses and nulls are written) and no other key appears.

    python -m inferguard.cli._schemas          # rewrite inferguard/schemas/*.json
    python -m inferguard.cli._schemas --check  # exit 1 when a shipped schema is stale
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from inferguard.findings._registry import DIAGNOSIS_SCHEMA, Diagnosis
from inferguard.lct._file import SUMMARY_SCHEMA as TRACE_SUMMARY_SCHEMA
from inferguard.lct._file import TraceSummary
from inferguard.lct._stats import STATS_SCHEMA, TraceStats
from inferguard.prom._model import SUMMARY_SCHEMA as METRICS_SUMMARY_SCHEMA
from inferguard.prom._model import MetricsSummary
from inferguard.verdict._compare import COMPARE_SCHEMA, Comparison
from inferguard.verdict._fleet import FLEET_SCHEMA, FleetReport
from inferguard.verdict._verdict import VERDICT_SCHEMA, Verdict
from inferguard.verdict._watch import WATCH_SCHEMA, WatchTick

DOCUMENTS: dict[str, type[msgspec.Struct]] = {
    TRACE_SUMMARY_SCHEMA: TraceSummary,   # trace info --json
    STATS_SCHEMA: TraceStats,             # trace stats --json
    METRICS_SUMMARY_SCHEMA: MetricsSummary,  # metrics summary --json
    VERDICT_SCHEMA: Verdict,              # lmcache-compat --json
    DIAGNOSIS_SCHEMA: Diagnosis,          # diagnose-bottleneck --json
    COMPARE_SCHEMA: Comparison,           # compare --json
    WATCH_SCHEMA: WatchTick,              # watch --json (one document per line)
    FLEET_SCHEMA: FleetReport,            # fleet --json
}
"""Schema id (`name/version`, the document's `schema` field) -> its top-level type."""

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


def schema_file(schema_id: str) -> str:
    """`inferguard.verdict/1` -> `verdict.v1.json`."""
    name, version = schema_id.split("/")
    return f"{name.removeprefix('inferguard.')}.v{version}.json"


@contextlib.contextmanager
def _public_names_resolvable() -> Iterator[None]:
    """Public Structs say `__module__ == "inferguard"` (reprs read `inferguard.X`), so msgspec
    would resolve their postponed annotations in the package namespace, where the private
    names they mention are absent. For the schema walk only, lend the package those names
    from the modules that define them, then take them back."""
    ns = vars(sys.modules["inferguard"])  # always loaded: the parent of this package
    offer: dict[str, object] = {}
    ambiguous: set[str] = set()
    for modname, mod in sorted(sys.modules.items()):
        if not modname.startswith("inferguard.") or mod is None:
            continue
        for name, value in vars(mod).items():
            if name.startswith("__") or name in ns:
                continue
            if name in offer and offer[name] is not value:
                ambiguous.add(name)  # two meanings: lend neither, so a use fails loudly
            offer.setdefault(name, value)
    lent = [name for name in offer if name not in ambiguous]
    try:
        for name in lent:
            ns[name] = offer[name]
        yield
    finally:
        for name in lent:
            ns.pop(name, None)


def _tighten(node: Any) -> None:
    """Every object's keys all required, none beyond them (what to_document writes)."""
    if isinstance(node, dict):
        props = node.get("properties")
        if node.get("type") == "object" and isinstance(props, dict):
            node["required"] = sorted(props)
            node["additionalProperties"] = False
        for value in node.values():
            _tighten(value)
    elif isinstance(node, list):
        for value in node:
            _tighten(value)


def build_schema(schema_id: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of one document."""
    with _public_names_resolvable():
        raw = msgspec.json.schema(DOCUMENTS[schema_id])
    _tighten(raw)
    out: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_file(schema_id),
        "title": schema_id,
    }
    out.update(raw)
    top = raw["$ref"].split("/")[-1] if "$ref" in raw else None
    if top is not None:
        out["$defs"][top]["properties"]["schema"] = {"const": schema_id}
    return out


def render(schema_id: str) -> str:
    return json.dumps(build_schema(schema_id), indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    stale = []
    for schema_id in DOCUMENTS:
        path = SCHEMA_DIR / schema_file(schema_id)
        text = render(schema_id)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            SCHEMA_DIR.mkdir(exist_ok=True)
            path.write_text(text)
    if stale:
        print("stale schemas (run python -m inferguard.cli._schemas):", *stale, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
