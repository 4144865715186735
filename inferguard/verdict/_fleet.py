"""`judge_fleet`: every instance a Prometheus server knows, judged like one packet each.

Each group of targets (default: one per `instance` label) becomes a packet through
`collect._prometheus` (the API's answers read back by the `/metrics` reader) and is judged by
`judge_packet`, the same call every other road ends in. Instances are judged in parallel
(bounded by `concurrency`), each request bounded by `timeout` and each instance by
`instance_timeout`; an instance that cannot be judged is a row saying why, never a crash.

The hit-rate column is the report's own rate (`CompatReport.rates`, `judge/_rates.py`):
LMCache's hit rate where the instance has one (MP lookup, MP prompt, embedded retrieve,
embedded lookup), else vLLM's external (KV connector) prefix-cache hit rate; over the window
when `window_s` is given (two scrapes of each target), else since process start. No
denominator growth is no rate (`n/a`), never a 0 %.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from inferguard._packet import REPORT_FILE, PacketSettings
from inferguard.collect._prometheus import (
    PromGroup,
    PromPacket,
    PromWindow,
    group_targets,
    list_targets,
    prometheus_packet,
    shared_transport,
)
from inferguard.evidence._metrics import MetricsFacts
from inferguard.judge._compat import compat
from inferguard.verdict._verdict import Verdict, judge_packet

FLEET_SCHEMA = "inferguard.fleet/1"
_SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}
# The row's hit rate: the first of these the report has (shares and vLLM's own GPU prefix
# cache are not LMCache hit rates).
ROW_RATES = ("lmcache_mp_lookup_hit_rate", "lmcache_mp_prompt_hit_rate",
             "lmcache_embedded_hit_rate", "lmcache_embedded_lookup_hit_rate",
             "vllm_external_prefix_cache_hit_rate")


class FleetOptions(msgspec.Struct, frozen=True, omit_defaults=True):
    """What `inferguard fleet` (and `collect-lmcache --prometheus-url`) takes."""

    prometheus_url: str
    match: list[str] = msgspec.field(default_factory=list)
    engine_match: list[str] = msgspec.field(default_factory=list)
    instance: str | None = None
    group_label: str = "instance"
    at: float | None = None
    window_s: float | None = None
    concurrency: int = 8
    timeout: float = 5.0
    instance_timeout: float = 30.0
    settings: PacketSettings = msgspec.field(default_factory=PacketSettings)


class FleetRow(msgspec.Struct, frozen=True, omit_defaults=True):
    """One instance: its verdict in brief, or why it could not be judged."""

    instance: str
    jobs: list[str]
    judged: bool
    reason: str | None = None
    mode: str | None = None
    level: str | None = None
    hit_rate: float | None = None
    hit_rate_name: str | None = None
    hit_rate_window: str | None = None
    worst_code: str | None = None
    worst_severity: str | None = None
    finding_codes: list[str] = msgspec.field(default_factory=list)
    models: list[str] = msgspec.field(default_factory=list)
    malformed_evidence: int = 0
    notes: list[str] = msgspec.field(default_factory=list)
    seconds: float = 0.0


class FleetReport(msgspec.Struct, frozen=True, omit_defaults=True):
    """Every row, and the roll-up: instances per mode and per finding code."""

    prometheus_url: str
    evaluated_at: float
    window_s: float | None
    rows: list[FleetRow]
    by_mode: dict[str, int]
    by_finding: dict[str, int]
    unjudged: int
    schema: str = FLEET_SCHEMA


class FleetOutcome(NamedTuple):
    """The report, and the full verdict of each judged instance (for --fail-on)."""

    report: FleetReport
    verdicts: dict[str, Verdict]


def _window(opts: FleetOptions, at: float) -> PromWindow | None:
    if opts.window_s is None:
        return None
    if not opts.window_s > 0:
        raise ValueError(f"--window must be positive seconds, got {opts.window_s}")
    return PromWindow(at - opts.window_s, at)


def fleet_groups(opts: FleetOptions, *, at: float, transport: Any = None) -> list[PromGroup]:
    """The groups to judge (raises PromError when the server cannot list them)."""
    targets = list_targets(opts.prometheus_url, match=opts.match,
                           engine_match=opts.engine_match, at=at, timeout=opts.timeout,
                           transport=transport)
    return group_targets(targets, opts.group_label, opts.instance)


def group_packet(opts: FleetOptions, group: PromGroup, *, at: float,
                 transport: Any = None) -> PromPacket:
    return prometheus_packet(opts.prometheus_url, group, at=at, window=_window(opts, at),
                             settings=opts.settings, timeout=opts.timeout, transport=transport)


def _models(pp: PromPacket) -> list[str]:
    """The `model_name` label values the packet's scrapes carry (at most 16)."""
    out: set[str] = set()
    for ev in pp.packet.evidence:
        if isinstance(ev.facts, MetricsFacts):
            for fam in ev.facts.families:
                lv = fam.labels.get("model_name")
                if lv is not None:
                    out |= set(lv.values)
    return sorted(out)[:16]


def _row(group: PromGroup, pp: PromPacket, v: Verdict, seconds: float) -> FleetRow:
    findings = sorted(v.diagnosis.findings, key=lambda f: _SEVERITY_RANK.get(f.severity, 9))
    worst = findings[0] if findings else None
    bad = sum(1 for e in pp.packet.evidence if e.status == "malformed")
    rate = next((r for name in ROW_RATES for r in v.report.rates if r.name == name), None)
    reason = None
    if bad == len(pp.packet.evidence):
        reason = "; ".join(p.message for e in pp.packet.evidence for p in e.problems[:1])
    return FleetRow(
        instance=group.name, jobs=sorted({t.job for t in group.targets}), judged=True,
        reason=reason, mode=v.report.detected.mode, level=v.report.detected.level,
        hit_rate=rate.value if rate else None, hit_rate_name=rate.name if rate else None,
        hit_rate_window=rate.window.label if rate else None,
        worst_code=worst.code if worst else None,
        worst_severity=worst.severity if worst else None,
        finding_codes=sorted({f.code for f in findings}), models=_models(pp),
        malformed_evidence=bad, notes=pp.notes, seconds=round(seconds, 3))


def judge_fleet(opts: FleetOptions, *, transport: Any = None,
                clock: Any = time.time) -> FleetOutcome:
    """Judge every group; raises PromError only when the server cannot list its targets."""
    if opts.concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {opts.concurrency}")
    at = float(opts.at if opts.at is not None else clock())
    _window(opts, at)  # a bad window is a usage error before any request
    own = transport is None
    transport = shared_transport() if own else transport
    try:
        return _judge_all(opts, at, transport)
    finally:
        if own:
            transport.close_shared()


def _judge_all(opts: FleetOptions, at: float, transport: Any) -> FleetOutcome:
    import concurrent.futures as cf  # here: start-up of every other command stays lean

    groups = fleet_groups(opts, at=at, transport=transport)
    if opts.instance is not None and not groups:
        raise ValueError(f"no target with {opts.group_label}={opts.instance!r} matches")

    starts: dict[str, float] = {}

    def one(group: PromGroup) -> tuple[FleetRow, Verdict]:
        starts[group.name] = time.monotonic()
        t0 = time.perf_counter()
        pp = group_packet(opts, group, at=at, transport=transport)
        v = judge_packet(pp.packet)
        return _row(group, pp, v, time.perf_counter() - t0), v

    rows: dict[str, FleetRow] = {}
    verdicts: dict[str, Verdict] = {}
    pool = cf.ThreadPoolExecutor(max_workers=min(opts.concurrency, max(len(groups), 1)))
    try:
        pending = {g.name: (g, pool.submit(one, g)) for g in groups}
        while pending:
            cf.wait([f for _, f in pending.values()], timeout=0.1,
                    return_when=cf.FIRST_COMPLETED)
            now = time.monotonic()
            for name, (g, fut) in list(pending.items()):
                if fut.done():
                    del pending[name]
                    try:
                        rows[name], verdicts[name] = fut.result()
                    except Exception as exc:  # never a crash: the row says why
                        rows[name] = _unjudged(g, f"{type(exc).__name__}: {exc}")
                elif name in starts and now - starts[name] > opts.instance_timeout:
                    # Its thread ends with its own request timeouts; the row is final now.
                    del pending[name]
                    rows[name] = _unjudged(g, f"not judged within {opts.instance_timeout:g} s")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    ordered = [rows[g.name] for g in groups]
    by_mode = Counter(r.mode for r in ordered if r.judged and r.mode is not None)
    by_code = Counter(c for r in ordered for c in r.finding_codes)
    report = FleetReport(prometheus_url=opts.prometheus_url, evaluated_at=at,
                         window_s=opts.window_s, rows=ordered,
                         by_mode=dict(sorted(by_mode.items())),
                         by_finding=dict(sorted(by_code.items(), key=lambda kv: (-kv[1], kv[0]))),
                         unjudged=sum(1 for r in ordered if not r.judged))
    return FleetOutcome(report, verdicts)


def _unjudged(g: PromGroup, reason: str) -> FleetRow:
    return FleetRow(instance=g.name, jobs=sorted({t.job for t in g.targets}), judged=False,
                    reason=reason)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:100] or "_"


def collect_prometheus_packets(opts: FleetOptions, output_dir: str | os.PathLike[str], *,
                               overwrite: bool = False, transport: Any = None,
                               clock: Any = time.time) -> list[tuple[str, Path, list[str]]]:
    """`collect-lmcache --prometheus-url`: one packet per group under `output_dir/<group>/`,
    each with its compat report stored. Returns (group, path, notes) triples."""
    out = Path(output_dir)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: already exists; refusing to overwrite packets "
                              "(choose a new --output-dir, or pass --force)")
    at = float(opts.at if opts.at is not None else clock())
    _window(opts, at)
    own = transport is None
    transport = shared_transport() if own else transport
    try:
        return _write_all(opts, out, at, overwrite, transport)
    finally:
        if own:
            transport.close_shared()


def _write_all(opts: FleetOptions, out: Path, at: float, overwrite: bool, transport: Any
               ) -> list[tuple[str, Path, list[str]]]:
    groups = fleet_groups(opts, at=at, transport=transport)
    if opts.instance is not None and not groups:
        raise ValueError(f"no target with {opts.group_label}={opts.instance!r} matches")
    written: list[tuple[str, Path, list[str]]] = []
    out.mkdir(parents=True, exist_ok=True)
    for g in groups:
        pp = group_packet(opts, g, at=at, transport=transport)
        path = pp.packet.write(out / _slug(g.name), overwrite=overwrite, blobs=pp.blobs,
                               extra_files={REPORT_FILE: compat(pp.packet)})
        written.append((g.name, path, pp.notes))
    return written


FLEET_COLUMNS = ("instance", "jobs", "judged", "reason", "mode", "level", "hit_rate",
                 "hit_rate_name", "hit_rate_window", "worst_code", "worst_severity",
                 "finding_codes", "models", "malformed_evidence", "evaluated_at", "window_s")


def fleet_columns(report: FleetReport) -> dict[str, list[Any]]:
    """The fleet rows as columns (one per FleetRow field, plus when and over which window)."""
    cols: dict[str, list[Any]] = {k: [] for k in FLEET_COLUMNS}
    for row in report.rows:
        for k in FLEET_COLUMNS:
            if k == "evaluated_at":
                cols[k].append(report.evaluated_at)
            elif k == "window_s":
                cols[k].append(report.window_s)
            else:
                cols[k].append(getattr(row, k))
    return cols


def write_fleet_parquet(report: FleetReport, root: str | os.PathLike[str]) -> list[Path]:
    """The rows as Parquet, `root/fleet/node=<instance>/fleet-<time>.parquet`: one dataset
    with trace exports under the same root (re-runs add files: a history per instance)."""
    import pyarrow as pa

    from inferguard.lct._export import partition_dir, write_parquet_columns

    cols = fleet_columns(report)
    types = {"hit_rate": pa.float64(), "window_s": pa.float64(),
             **{k: pa.string() for k in ("reason", "mode", "level", "hit_rate_name",
                                         "hit_rate_window", "worst_code", "worst_severity")},
             "jobs": pa.list_(pa.string()), "finding_codes": pa.list_(pa.string()),
             "models": pa.list_(pa.string())}
    stamp = f"{report.evaluated_at:.3f}".replace(".", "_")
    out = []
    for i, row in enumerate(report.rows):
        one = {k: [v[i]] for k, v in cols.items()}
        out.append(write_parquet_columns(partition_dir(root, "fleet", row.instance)
                                         / f"fleet-{stamp}.parquet", one, types))
    return out
