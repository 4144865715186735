"""Which LMCache / vLLM / SGLang versions a packet shows, and which version-keyed rules hold.

A version comes from a measured answer (the MP server's `/version`, vLLM's `/version`), a trace
header (`level_meta.lmcache_version`), a log line (vLLM's banner, LMCache's in-process start
line) or the launch file's package versions (`vllm==0.33.0`), in that order of weight. Rules
say for which versions they hold with a spec string (`"vllm>=0.32,<=0.33.0"`), as data in
the catalog and the tables below, never as branches. Versions compare on their release
numbers only: a pre-release or dev build (`0.5.7rc2`, `0.33.1.dev5+g…`) counts as its release
(`0.5.7`, `0.33.1`). A version newer than the newest InferGuard has read gets the newest
known rules and a note; no version at all gets the newest known *release*'s rules and a note.
"""

from __future__ import annotations

import re

import msgspec

from inferguard import _lazy
from inferguard._packet import Packet
from inferguard.evidence._engine_http import EngineHealthFacts
from inferguard.evidence._http import HttpFacts
from inferguard.evidence._launch import LaunchFacts
from inferguard.evidence._logs import LogFacts
from inferguard.evidence._model import source_label
from inferguard.evidence._trace import TraceFacts

Product = str  # "lmcache" | "vllm" | "sglang"
PRODUCTS: tuple[str, ...] = ("lmcache", "vllm", "sglang")

# The newest version of each product whose wheel (or source) InferGuard's rules were read from.
NEWEST_READ: dict[str, str] = {"lmcache": "0.5.7", "vllm": "0.33.0", "sglang": "0.5.23"}
# How much each kind of source weighs when two disagree (the highest wins).
_RANK = {"http /version": 4, "engine /version": 4, "trace header": 3, "log": 2,
         "launch packages": 1}


class VersionSeen(msgspec.Struct, frozen=True):
    """One version one evidence states: the product, the version string as given, the
    evidence it came from and how it was read."""

    product: str
    version: str
    source: str
    how: str


class VersionReport(msgspec.Struct, frozen=True):
    """The versions seen (one per product: the best-sourced), every statement behind them,
    the version-keyed rules that selected something, and notes (newer than read, none seen,
    conflicting statements)."""

    versions: dict[str, str]
    seen: list[VersionSeen]
    selected: list[str]
    notes: list[str]


_NUM = _lazy.pattern(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?")


def parse_version(text: str) -> tuple[int, int, int] | None:
    """The release numbers of a version string (`0.5.7rc2-gbf85b41f` → (0, 5, 7))."""
    m = _NUM.match(text.strip())
    if m is None:
        return None
    return (int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0))


_CLAUSE = _lazy.pattern(r"^(>=|<=|==|>|<)\s*(\S+)$")


def holds(spec: str, versions: dict[str, str]) -> bool | None:
    """Does `spec` (`"product"` or `"product>=A,<B"`) hold for the versions seen? None when
    the packet states no version of that product (the caller picks the default rules)."""
    m = re.match(r"^([a-z]+)(.*)$", spec.strip())
    if m is None:
        raise ValueError(f"bad version spec {spec!r}")
    product, rest = m.group(1), m.group(2)
    seen = versions.get(product)
    if seen is None:
        return None
    v = parse_version(seen)
    if v is None:
        return None
    for clause in filter(None, (c.strip() for c in rest.split(","))):
        cm = _CLAUSE.match(clause)
        if cm is None:
            raise ValueError(f"bad version clause {clause!r} in {spec!r}")
        op, bound_text = cm.groups()
        bound = parse_version(bound_text)
        if bound is None:
            raise ValueError(f"bad version {bound_text!r} in {spec!r}")
        ok = {">=": v >= bound, "<=": v <= bound, "==": v == bound, ">": v > bound,
              "<": v < bound}[op]
        if not ok:
            return False
    return True


def spec_product(spec: str) -> str:
    m = re.match(r"^([a-z]+)", spec.strip())
    return m.group(1) if m else ""


def _log_versions(f: LogFacts) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for h in f.hints:
        for ex in h.examples[:1]:
            if h.id == "vllm_version":
                v = ex.values.get("plain") or ex.values.get("engine") or ex.values.get("logo")
                if v:
                    out.append(("vllm", v))
            elif h.id == "vllm_lmcache_initialized" and ex.values.get("version"):
                out.append(("lmcache", ex.values["version"]))
    return out


def versions_seen(packet: Packet) -> list[VersionSeen]:
    """Every version statement of the packet's readable evidence."""
    out: list[VersionSeen] = []
    for ev in packet.evidence:
        f = ev.facts
        if ev.status not in ("ok", "partial") or f is None:
            continue
        src = source_label(ev)
        if isinstance(f, HttpFacts) and (f.lmcache_version or f.version):
            out.append(VersionSeen("lmcache", f.lmcache_version or f.version or "", src,
                                   "http /version"))
        elif isinstance(f, EngineHealthFacts) and f.version:
            out.append(VersionSeen("vllm", f.version, src, "engine /version"))
        elif isinstance(f, TraceFacts) and f.summary.header.lmcache_version:
            out.append(VersionSeen("lmcache", f.summary.header.lmcache_version, src,
                                   "trace header"))
        elif isinstance(f, LogFacts):
            out.extend(VersionSeen(p, v, src, "log") for p, v in _log_versions(f))
        elif isinstance(f, LaunchFacts):
            out.extend(VersionSeen(p, v, src, "launch packages")
                       for p, v in sorted(f.packages.items()))
    return [s for s in out if parse_version(s.version) is not None]


def version_report(packet: Packet) -> VersionReport:
    """The versions a packet shows, one per product, with notes; `selected` is filled by
    the judges that apply version-keyed rules (`with_selected`)."""
    seen = versions_seen(packet)
    versions: dict[str, str] = {}
    notes: list[str] = []
    for product in PRODUCTS:
        mine = sorted((s for s in seen if s.product == product),
                      key=lambda s: -_RANK.get(s.how, 0))
        if not mine:
            continue
        versions[product] = mine[0].version
        releases = {parse_version(s.version) for s in mine}
        if len(releases) > 1:
            notes.append(f"{product}: the evidence states different versions ("
                         + ", ".join(sorted({f"{s.version} ({s.how})" for s in mine}))
                         + f"); rules follow {mine[0].version} ({mine[0].how})")
        newest = parse_version(NEWEST_READ[product])
        got = parse_version(mine[0].version)
        if got is not None and newest is not None and got > newest:
            notes.append(f"{product} {mine[0].version} is newer than the newest version "
                         f"InferGuard's rules were read from ({NEWEST_READ[product]}): judged "
                         "by the newest known rules")
    return VersionReport(versions, seen, [], notes)


def with_selected(report: VersionReport, selected: list[str], notes: list[str]
                  ) -> VersionReport:
    """The report with the version-keyed rules that selected something, and their notes."""
    keep = list(dict.fromkeys([*report.selected, *selected]))
    return VersionReport(report.versions, report.seen, keep,
                         list(dict.fromkeys([*report.notes, *notes])))
