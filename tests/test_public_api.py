"""The public face: `inferguard.__all__` is importable, fully annotated, says `inferguard.X`, and
the proof one-liner holds on every recorded packet; each subpackage's `__all__` resolves; the
typed client example (`examples/typed_client.py`) runs and agrees with the library."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import inferguard as ig

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
EXAMPLE = REPO / "examples" / "typed_client.py"
EXAMPLE_PACKET = FIXTURES / "lmcache_live" / "vllm_live_mp" / "packet"

# Every recorded packet directory (one holding a packet.json) under tests/fixtures/.
PACKET_DIRS = sorted(p.parent for p in FIXTURES.rglob("packet.json"))

PUBLIC = sorted(ig.__all__)
# Classes and functions of the public face (`__version__` is the one plain value).
PUBLIC_OBJECTS = [n for n in PUBLIC if inspect.isclass(getattr(ig, n))
                  or inspect.isfunction(getattr(ig, n))]
PUBLIC_CLASSES = [n for n in PUBLIC_OBJECTS if inspect.isclass(getattr(ig, n))]
PUBLIC_FUNCTIONS = [n for n in PUBLIC_OBJECTS if inspect.isfunction(getattr(ig, n))]


def _rel(p: Path) -> str:
    return str(p.relative_to(REPO))


# ---------------------------------------------------------------------------------------------
# (a) every name in __all__ is importable and an attribute


def test_all_has_no_duplicates_and_covers_the_plain_values() -> None:
    assert len(ig.__all__) == len(set(ig.__all__))
    assert set(PUBLIC) - set(PUBLIC_OBJECTS) == {"__version__"}
    assert isinstance(ig.__version__, str)


@pytest.mark.parametrize("name", PUBLIC)
def test_all_name_is_importable_and_an_attribute(name: str) -> None:
    assert hasattr(ig, name), name
    namespace: dict[str, Any] = {}
    exec(f"from inferguard import {name} as obj", namespace)
    assert namespace["obj"] is getattr(ig, name)


# ---------------------------------------------------------------------------------------------
# (b) complete annotations: every parameter and the return, on public functions and on the
# public methods (and a hand-written __init__) of public classes, bases defined in inferguard
# included. Annotations are read unevaluated (`eval_str=False`): the modules use postponed
# annotations, and this test is about their presence, not about resolving them.


def _missing_annotations(fn: Callable[..., Any], *, bound_first: bool) -> list[str]:
    sig = inspect.signature(fn, eval_str=False)
    params = list(sig.parameters.values())
    if bound_first:  # self / cls
        params = params[1:]
    missing = [p.name for p in params if p.annotation is inspect.Parameter.empty]
    if sig.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def _public_methods(cls: type) -> Iterator[tuple[str, Callable[..., Any], bool]]:
    """(qualified name, function, whether its first parameter is self/cls) for each public
    method, classmethod, staticmethod and property getter that inferguard itself defines."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("inferguard"):
            continue
        for name, raw in vars(klass).items():
            if name in seen or (name.startswith("_") and name != "__init__"):
                continue
            seen.add(name)
            where = f"{klass.__qualname__}.{name}"
            if isinstance(raw, staticmethod):
                yield where, raw.__func__, False
            elif isinstance(raw, classmethod):
                yield where, raw.__func__, True
            elif isinstance(raw, property):
                if raw.fget is not None:
                    yield where, raw.fget, True
            elif inspect.isfunction(raw):
                yield where, raw, True


@pytest.mark.parametrize("name", PUBLIC_FUNCTIONS)
def test_public_function_is_fully_annotated(name: str) -> None:
    missing = _missing_annotations(getattr(ig, name), bound_first=False)
    assert not missing, f"inferguard.{name}: no annotation on {missing}"


@pytest.mark.parametrize("name", PUBLIC_CLASSES)
def test_public_class_methods_are_fully_annotated(name: str) -> None:
    bad = {}
    for where, fn, bound_first in _public_methods(getattr(ig, name)):
        missing = _missing_annotations(fn, bound_first=bound_first)
        if missing:
            bad[where] = missing
    assert not bad, f"unannotated (parameter or return) in inferguard.{name}: {bad}"


def test_the_method_walk_sees_methods() -> None:
    # Guard the walk itself: Packet has read/load (static) and more; Diagnosis has codes().
    packet_methods = {w for w, _, _ in _public_methods(ig.Packet)}
    assert {"Packet.read", "Packet.load"} <= packet_methods
    assert "Diagnosis.codes" in {w for w, _, _ in _public_methods(ig.Diagnosis)}


# ---------------------------------------------------------------------------------------------
# (c) reprs and docs say inferguard.X


@pytest.mark.parametrize("name", PUBLIC_OBJECTS)
def test_public_object_says_module_inferguard(name: str) -> None:
    assert getattr(ig, name).__module__ == "inferguard"


# ---------------------------------------------------------------------------------------------
# (d) the proof one-liner on every recorded packet


def test_there_are_recorded_packets() -> None:
    assert len(PACKET_DIRS) >= 6, [_rel(d) for d in PACKET_DIRS]


@pytest.mark.parametrize("directory", PACKET_DIRS, ids=_rel)
def test_proof_one_liner_on_recorded_packet(directory: Path) -> None:
    p = ig.Packet.read(directory)
    r = ig.compat(p)
    mode = ig.detect_mode(p).mode
    diagnosis = ig.diagnose(r)
    assert len(diagnosis.findings) >= 0
    assert isinstance(p, ig.Packet)
    assert isinstance(r, ig.CompatReport)
    assert isinstance(diagnosis, ig.Diagnosis)
    assert mode == r.detected.mode
    # judge_packet is the same judgement in one call.
    verdict = ig.judge_packet(p)
    assert isinstance(verdict, ig.Verdict)
    assert verdict.report.detected.mode == mode
    assert verdict.diagnosis.codes() == diagnosis.codes()


# ---------------------------------------------------------------------------------------------
# (e) each subpackage's __all__ resolves (public subpackages must have one)

SUBPACKAGES = sorted(m.name for m in pkgutil.iter_modules(ig.__path__) if m.ispkg)


def test_subpackages_are_discovered() -> None:
    assert {"cli", "evidence", "findings", "judge", "lct", "prom"} <= set(SUBPACKAGES)


@pytest.mark.parametrize("sub", SUBPACKAGES)
def test_subpackage_all_resolves(sub: str) -> None:
    mod = importlib.import_module(f"inferguard.{sub}")
    names = getattr(mod, "__all__", None)
    if names is None:
        assert sub.startswith("_"), f"public subpackage inferguard.{sub} has no __all__"
        return
    assert len(names) == len(set(names)), f"inferguard.{sub}.__all__ has duplicates"
    unresolved = [n for n in names if not hasattr(mod, n)]
    assert not unresolved, f"inferguard.{sub}.__all__ names that do not resolve: {unresolved}"


# ---------------------------------------------------------------------------------------------
# The typed client example runs and prints what the library computes (by the step-by-step
# route here; the script uses judge_packet).


def _run_example(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLE), *args], capture_output=True,
                          text=True, timeout=120, cwd=REPO)


def test_typed_client_example_matches_the_library() -> None:
    proc = _run_example(str(EXAMPLE_PACKET))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    fields = dict(line.split("=", 1) for line in lines if not line.startswith("finding="))
    findings = [line.removeprefix("finding=").split() for line in lines
                if line.startswith("finding=")]

    packet = ig.Packet.read(EXAMPLE_PACKET)
    report = ig.compat(packet)
    detected = ig.detect_mode(packet)
    diagnosis = ig.diagnose(report)
    assert fields["mode"] == detected.mode == report.detected.mode
    assert fields["level"] == detected.level
    assert float(fields["confidence"]) == pytest.approx(detected.confidence)
    assert fields["effective_mode"] == report.effective_mode
    assert findings == [[f.code, f.severity, f.level] for f in diagnosis.findings]
    assert int(fields["findings"]) == len(diagnosis.findings)


def test_typed_client_example_refuses_a_non_packet(tmp_path: Path) -> None:
    proc = _run_example(str(tmp_path))
    assert proc.returncode == 2
    assert "no packet.json" in proc.stderr
    assert proc.stdout == ""
