"""The C API is declared once, and only the glue modules touch it.

native/inferguard_api.h is what build_native.py hands to cffi's cdef(), so the names it
declares must be exactly the public names of the compiled `lib`; and no module outside
inferguard/_native/ may reach the cffi objects (ffi, lib, inferguard._core) directly.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from inferguard import native_available

ROOT = Path(__file__).resolve().parents[1]
HEADER = ROOT / "native" / "inferguard_api.h"
PACKAGE = ROOT / "inferguard"
GLUE = PACKAGE / "_native"


def header_names() -> tuple[set[str], set[str]]:
    """(function names, #define constants) declared in the API header."""
    text = re.sub(r"/\*.*?\*/", " ", HEADER.read_text(encoding="utf-8"), flags=re.S)
    consts = set(re.findall(r"^\s*#define\s+(\w+)\s+-?\d+\s*$", text, flags=re.M))
    body = re.sub(r"^\s*#.*$", " ", text, flags=re.M)
    body = re.sub(r"\{[^{}]*\}", " ", body)  # struct bodies: no functions inside
    funcs = set()
    for stmt in body.split(";"):
        stmt = stmt.strip()
        if not stmt or stmt.startswith("typedef"):
            continue
        m = re.search(r"(\w+)\s*\(", stmt)
        assert m, f"unexpected declaration in {HEADER.name}: {stmt!r}"
        funcs.add(m.group(1))
    return funcs, consts


def test_header_is_cffi_clean() -> None:
    text = re.sub(r"/\*.*?\*/", " ", HEADER.read_text(encoding="utf-8"), flags=re.S)
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            assert re.fullmatch(r"\s*#define\s+\w+\s+-?\d+\s*", line), line


@pytest.mark.skipif(not native_available(), reason="native backend not built")
def test_header_names_are_the_compiled_api() -> None:
    from inferguard._native import core

    funcs, consts = header_names()
    assert funcs and consts
    public = {n for n in dir(core().lib) if not n.startswith("_")}
    assert funcs | consts == public


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        bad = None
        if isinstance(node, ast.Name) and node.id in ("ffi", "lib", "_core"):
            bad = node.id
        elif isinstance(node, ast.Attribute) and node.attr in ("ffi", "lib", "_core"):
            bad = "." + node.attr
        elif isinstance(node, ast.Import) and any("_core" in a.name for a in node.names):
            bad = "import _core"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("inferguard") and (
                "_core" in (node.module or "")
                or any(a.name in ("ffi", "lib", "_core") for a in node.names)):
            bad = f"from {node.module} import ..."
        elif isinstance(node, ast.Constant) and node.value == "inferguard._core":
            bad = repr(node.value)
        if bad:
            out.append(f"{path}:{getattr(node, 'lineno', '?')}: {bad}")
    return out


def test_only_the_glue_touches_cffi() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if GLUE in path.parents:
            continue
        found += _violations(path)
    assert found == []


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    """The walk above catches each form of direct access."""
    p = tmp_path / "probe.py"
    p.write_text("from inferguard import _core\nx = _core.lib.f()\ny = m.ffi\n")
    assert len(_violations(p)) >= 4
