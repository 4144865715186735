"""The package's layers, checked from the source: the import graph of every module under
`inferguard/` has no circle, and no import goes up the layer order (`LAYERS`).

The graph is read with `ast`, not by importing: every `import` / `from ... import` at any
depth counts — module level, inside functions, under `if TYPE_CHECKING:` — because a lazy
import is still a dependency. `from pkg import name` is an edge to `pkg.name` when that is a
module, else to `pkg`. Dynamic imports (`importlib.import_module`, `__import__`) would hide
edges, so their absence is checked too.

Exceptions are explicit: `ALLOWED_UPWARD` names each tolerated edge and says it is to be
removed; a stale entry (the edge is gone) fails, so the list only shrinks.

The CLI check is textual on purpose (simple, and good enough to keep judgement out of the
CLI): `inferguard/cli/` may import any layer below it, public or private modules, to parse
arguments and print, but it must not *make* judgements — so its source must not mention the
finding table (`FINDING_CODES`), the rule registry (`RULES`), or edit a compat report's facts
(`CompatReport.facts`, `report.facts`, `msgspec.structs.replace(report`). Judgement lives in
`inferguard.judge`, `inferguard.findings` and `inferguard.verdict._verdict`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "inferguard"

LAYERS: dict[str, int] = {
    # 0: the version and the C core (its loader/glue and the compiled cffi module itself).
    "inferguard._version": 0,
    "inferguard._native": 0,
    "inferguard._files": 0,
    "inferguard._lazy": 0,
    "inferguard._threads": 0,
    "inferguard._core": 0,
    # 1: byte parsers. Same layer, but they must not import each other (SEPARATE).
    "inferguard.prom": 1,
    "inferguard.lct": 1,
    # 2: one module per evidence kind (may use prom, lct, _native).
    "inferguard.evidence": 2,
    # 3: the packet (a set of evidence plus settings, read/written as a directory).
    "inferguard._packet": 3,
    # 3: the mode names a packet declares (a table the CLI reads without loading the packet).
    "inferguard._modes": 3,
    # 4: collection (talks to live servers, writes a packet).
    "inferguard.collect": 4,
    # 5: judgement: mode detection and the compat report.
    "inferguard.judge": 5,
    # 6: findings with stable codes, drawn from a compat report.
    "inferguard.findings": 6,
    # 7: the whole judgement of one packet as library calls.
    "inferguard.verdict": 7,
    # 8: presentation: the verdict as an HTML page (reads verdict/ outputs, judges nothing),
    # and the command line, which may use it (html must not import cli: same layer, SEPARATE).
    "inferguard.html": 8,
    "inferguard.cli": 8,
    "inferguard.__main__": 8,
    # 9: the public face (re-exports only). Importing it from inside counts as going up.
    "inferguard": 9,
}
"""Layer of each module: a key names a module or a subpackage (covering all its modules);
the lowest layer is 0, and a module may import only from its own layer or lower ones.
`inferguard` itself matches only the top-level `__init__`, so a new top-level module that is
not in this table fails `test_every_module_has_a_layer` instead of silently landing on top."""

SEPARATE: set[tuple[str, str]] = {
    ("inferguard.lct", "inferguard.prom"),
    ("inferguard.prom", "inferguard.lct"),
    ("inferguard.html", "inferguard.cli"),
}
"""Same-layer subpackages that must not import each other."""

ALLOWED_UPWARD: dict[tuple[str, str], str] = {
    # None today. Form: (importer module, imported module): "why; to be removed when ...".
}
"""Tolerated upward edges, each one named, each one to be removed."""

# Importing the package itself is what `python -m inferguard` is for.
TOP_IMPORT_OK = {"inferguard.__main__"}

# Compiled modules that exist only after a build (no .py source).
EXTENSIONS = {"inferguard._core"}

CLI_FORBIDDEN = {
    "FINDING_CODES": re.compile(r"\bFINDING_CODES\b"),
    "RULES": re.compile(r"\bRULES\b"),
    "CompatReport.facts": re.compile(r"\bCompatReport\.facts\b"),
    "report.facts": re.compile(r"\breport\.facts\b"),
    "msgspec.structs.replace(report": re.compile(r"msgspec\.structs\.replace\(\s*report\b"),
}

CLI_ALLOWED: dict[tuple[str, str], str] = {
    # None today. Form: (cli file, pattern): "why; to be removed when ...".
}
"""Tolerated judgement in the CLI, each (file, pattern) named, each one to be removed."""


# ---------------------------------------------------------------------------------------------
# The graph


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (source file, is a package __init__)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_pkg)
    return out


MODULES = _modules()
KNOWN = set(MODULES) | EXTENSIONS


def _targets(module: str, is_pkg: bool, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    if node.level:
        base = module.split(".") if is_pkg else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        pkg = ".".join(base + ([node.module] if node.module else []))
    else:
        pkg = node.module or ""
    for alias in node.names:
        sub = f"{pkg}.{alias.name}"
        yield sub if sub in KNOWN else pkg


def _imports(module: str) -> set[str]:
    path, is_pkg = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for target in _targets(module, is_pkg, node):
                if target == "inferguard" or target.startswith("inferguard."):
                    out.add(target)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and node.args[0].value.startswith("inferguard")):
            out.add(node.args[0].value)  # importlib.import_module("literal"): an edge too
    return out


GRAPH = {m: _imports(m) for m in MODULES}
"""Explicit edges: what each module's import statements name."""


def _with_parent_packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Add the edges Python adds: importing `a.b.c` from outside `a.b` first runs `a.b`'s
    `__init__` (the root `inferguard` is left out: it runs before anything else)."""
    out = {k: set(v) for k, v in graph.items()}
    for src, targets in graph.items():
        for dst in targets:
            parts = dst.split(".")
            for n in range(2, len(parts)):
                pkg = ".".join(parts[:n])
                if pkg in MODULES and src != pkg and not src.startswith(pkg + "."):
                    out[src].add(pkg)
    return out


def layer_key(module: str) -> str | None:
    """The LAYERS key covering a module (the longest matching one), or None."""
    if module == "inferguard":
        return module
    parts = module.split(".")
    for n in range(len(parts), 1, -1):
        key = ".".join(parts[:n])
        if key in LAYERS and key != "inferguard":
            return key
    return None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a self-import (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _upward_edges(graph: dict[str, set[str]]) -> dict[tuple[str, str], str]:
    bad = {}
    for src, targets in graph.items():
        src_key = layer_key(src)
        assert src_key is not None
        for dst in targets:
            dst_key = layer_key(dst)
            assert dst_key is not None, f"{src} imports {dst}, which has no layer"
            if dst == "inferguard" and src in TOP_IMPORT_OK:
                continue
            if LAYERS[dst_key] > LAYERS[src_key]:
                bad[(src, dst)] = f"layer {LAYERS[src_key]} ({src_key}) imports layer " \
                                  f"{LAYERS[dst_key]} ({dst_key})"
            elif (src_key, dst_key) in SEPARATE:
                bad[(src, dst)] = f"{src_key} and {dst_key} must not import each other"
    return bad


# ---------------------------------------------------------------------------------------------
# The tests


def test_the_graph_is_read() -> None:
    # Guards against a walk that silently finds nothing.
    assert len(MODULES) > 40
    assert "inferguard.findings._diagnose" in GRAPH["inferguard.verdict._verdict"]
    # importlib.import_module("inferguard._core"): the untyped C module, loaded by name.
    assert "inferguard._core" in GRAPH["inferguard._native"]


def test_every_module_has_a_layer() -> None:
    missing = sorted(m for m in KNOWN if layer_key(m) is None)
    assert not missing, f"modules not covered by LAYERS (add them to the table): {missing}"


def test_every_import_names_a_real_module() -> None:
    unknown = {src: sorted(t for t in targets if t not in KNOWN)
               for src, targets in GRAPH.items()}
    unknown = {k: v for k, v in unknown.items() if v}
    assert not unknown, f"imports of inferguard modules that do not exist: {unknown}"


def test_no_dynamic_imports() -> None:
    """Only literal `importlib.import_module("inferguard...")` calls, which the graph reads as
    edges; anything computed would hide an edge."""
    dynamic = re.compile(r"\bimport_module\s*\((?!\"inferguard)|\b__import__\s*\(")
    hits = [str(p.relative_to(REPO)) for m, (p, _) in MODULES.items()
            if m != LAZY and dynamic.search(p.read_text(encoding="utf-8"))]
    assert not hits, f"dynamic imports hide edges from this test: {hits}"


LAZY = "inferguard._lazy"
"""The one computed import: a package's lazy re-exports (its `_WHERE` table)."""


def test_lazy_reexports_are_edges_of_the_graph() -> None:
    """A package handing `_WHERE` to `_lazy.exports` imports those modules on demand: each must
    also be a literal edge of the package (its TYPE_CHECKING block), so the graph sees it."""
    users = [m for m, targets in GRAPH.items() if LAZY in targets
             and "_lazy.exports(" in MODULES[m][0].read_text(encoding="utf-8")]
    assert users, "no package uses inferguard._lazy"
    for pkg in users:
        tree = ast.parse(MODULES[pkg][0].read_text(encoding="utf-8"))
        where = next(node.value for node in ast.walk(tree)
                     if isinstance(node, ast.AnnAssign | ast.Assign)
                     and "_WHERE" in ast.unparse(node.target if isinstance(node, ast.AnnAssign)
                                                 else node.targets[0]))
        assert isinstance(where, ast.Dict)
        wanted = {pkg + v.value for v in where.values if isinstance(v, ast.Constant)}
        assert wanted and wanted <= GRAPH[pkg], (pkg, sorted(wanted - GRAPH[pkg]))


def test_no_import_cycles() -> None:
    assert not _cycles(GRAPH), f"import cycles: {_cycles(GRAPH)}"
    # Also none through the package __init__s that a submodule import runs first.
    implied = _with_parent_packages(GRAPH)
    assert not _cycles(implied), f"import cycles via package __init__: {_cycles(implied)}"


def test_no_import_goes_up_the_layers() -> None:
    bad = {edge: why for edge, why in _upward_edges(GRAPH).items() if edge not in ALLOWED_UPWARD}
    assert not bad, "imports against the layer order:\n" + "\n".join(
        f"  {s} -> {d}: {why}" for (s, d), why in sorted(bad.items()))


def test_allowed_upward_edges_still_exist() -> None:
    stale = sorted(set(ALLOWED_UPWARD) - set(_upward_edges(GRAPH)))
    assert not stale, f"ALLOWED_UPWARD entries that are gone (delete them): {stale}"


CLI_FILES = sorted((PACKAGE / "cli").rglob("*.py")) + sorted((PACKAGE / "html").rglob("*.py"))
"""The CLI and presentation (`inferguard/html/`): neither judges."""
HTML_READS = ("inferguard.verdict", "inferguard.html", "inferguard._version")


@pytest.mark.parametrize("path", CLI_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_cli_does_not_judge(path: Path) -> None:
    rel = str(path.relative_to(REPO))
    text = path.read_text(encoding="utf-8")
    hits = [name for name, rx in CLI_FORBIDDEN.items()
            if rx.search(text) and (rel, name) not in CLI_ALLOWED]
    assert not hits, f"{rel} does judgement the CLI must leave to judge/findings/_verdict: {hits}"


def test_html_reads_only_verdict_outputs() -> None:
    """Presentation consumes what `verdict/` returns; it imports nothing that computes."""
    bad = {m: sorted(t for t in targets if not t.startswith(HTML_READS))
           for m, targets in GRAPH.items() if m.startswith("inferguard.html")}
    bad = {m: t for m, t in bad.items() if t}
    assert not bad, f"inferguard/html imports beyond verdict/: {bad}"
    assert "inferguard.verdict._verdict" in GRAPH["inferguard.html._page"]


def test_cli_allowed_entries_still_exist() -> None:
    stale = sorted((rel, name) for rel, name in CLI_ALLOWED
                   if not CLI_FORBIDDEN[name].search((REPO / rel).read_text(encoding="utf-8")))
    assert not stale, f"CLI_ALLOWED entries that are gone (delete them): {stale}"


def test_the_checks_catch_a_violation() -> None:
    # The checkers themselves: an upward edge, a lct<->prom edge and a circle are all seen.
    fake = {k: set(v) for k, v in GRAPH.items()}
    fake["inferguard.prom._names"].add("inferguard.lct._frame")
    fake["inferguard.lct._frame"].add("inferguard.judge._catalog")
    fake["inferguard.judge._catalog"].add("inferguard.prom._names")
    edges = _upward_edges(fake)
    assert ("inferguard.prom._names", "inferguard.lct._frame") in edges
    assert ("inferguard.lct._frame", "inferguard.judge._catalog") in edges
    assert ["inferguard.judge._catalog", "inferguard.lct._frame",
            "inferguard.prom._names"] in _cycles(fake)
    # An edge into a subpackage runs its __init__, which imports the rest of it.
    via_init = {k: set(v) for k, v in GRAPH.items()}
    via_init["inferguard.evidence._model"].add("inferguard.judge._catalog")
    via_init["inferguard.judge._catalog"].add("inferguard.evidence._model")
    assert "inferguard.evidence" in _with_parent_packages(via_init)["inferguard.judge._catalog"]


def test_every_allowance_says_it_is_to_be_removed() -> None:
    reasons = {**{f"{s} -> {d}": r for (s, d), r in ALLOWED_UPWARD.items()},
               **{f"{f}: {n}": r for (f, n), r in CLI_ALLOWED.items()}}
    vague = sorted(k for k, r in reasons.items() if "to be removed" not in r)
    assert not vague, f"allow-list entries must say 'to be removed' and why: {vague}"
