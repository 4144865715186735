"""`inferguard trace stats` and `inferguard trace export`: arguments, rendering, progress.

No analytics here: everything comes from `inferguard.trace_stats`.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any

from inferguard.cli._common import EXAMPLES, HelpFormatter, Progress, add_json, emit_json
from inferguard.cli._common import safe as _safe

if _TYPE_CHECKING:
    from inferguard.lct._events import Count, EventStats
    from inferguard.lct._stats import BreakdownRow, LifecycleCount, TraceStats

from inferguard.lct._limits import DEFAULT_MAX_KEYS

_LABEL = 28


def _row(label: str, value: object, indent: int = 2) -> str:
    return f"{' ' * indent}{label + ':':<{_LABEL}}{value}"


def _c(c: Count) -> str:
    if c.exact:
        return str(c.value)
    return f"~{c.value} (+/-{c.stderr:.0f}, {c.method})"


def _pct(a: int, b: int) -> str:
    return f" ({100.0 * a / b:.1f}%)" if b else ""


def _where(life: LifecycleCount) -> str:
    if life.first_offset is None:
        return ""
    t = "" if life.first_t_mono is None else f", t_mono {life.first_t_mono:.3f}s"
    return f"  (first at offset {life.first_offset}{t})"


def _breakdown(title: str, rows: list[BreakdownRow]) -> list[str]:
    if not rows:
        return []
    out = [f"  by {title} (key rows / distinct keys / reads of written / lookups of written):"]
    for r in rows:
        label = r.value
        if r.world_size is not None:
            label += (f" (world_size={r.world_size} global_rank={r.global_rank} "
                      f"local_world_size={r.local_world_size} local_rank={r.local_rank})")
        out.append(f"    {label}: {r.key_rows} / {_c(r.distinct_keys)} / "
                   f"{_c(r.reads_of_written)} / {_c(r.lookups_of_written)}")
    return out


def _events(e: EventStats) -> list[str]:
    out = ["  events:", _row("batches", e.batches, 4), _row("entries", e.entries, 4)]
    if e.undecodable_records or e.malformed_keys:
        out.append(_row("undecodable / bad keys", f"{e.undecodable_records} / "
                        f"{e.malformed_keys}", 4))
    out.append("    per type/tier/backend (batches / entries / bytes):")
    out += [f"      {k.event_type}/{k.tier}/{k.backend}: {k.batches} / "
            f"{k.entries} / {k.bytes}" for k in e.kinds]
    f = e.flow
    out.append("    L1 -> L2 flow:")
    out.append(_row("keys stored on l1 / l2", f"{_c(f.l1_keys_stored)} / "
                    f"{_c(f.l2_keys_stored)}", 6))
    out.append(_row("l1 then l2", _c(f.l1_then_l2_keys), 6))
    out.append(_row("l2 without l1", _c(f.l2_without_l1_keys), 6))
    d = f.l1_to_l2_delay_s
    if d.p50 is not None:
        out.append(_row("delay p50/p90/p99/max", f"{d.p50:.3f}/{d.p90:.3f}/{d.p99:.3f}/"
                        f"{d.max:.3f}s", 6))
    out.append("    lifetimes store -> delete (stored / deleted / alive at end / p50 / p99):")
    for t in e.lifetimes:
        lt = t.lifetime_s
        q = "-" if lt.p50 is None else f"{lt.p50:.3f}s / {lt.p99:.3f}s"
        out.append(f"      {t.tier}: {t.stored} / {t.deleted} / {_c(t.alive_at_end)} / {q}")
    out.append(_row("deletes of unstored keys", _c(e.deletes_of_unstored), 4))
    out.append("    instances:")
    out += [f"      {i.instance_id}: incarnations={i.incarnations} restarts={i.restarts}"
            f" starts={i.starts} stops={i.stops}" for i in e.instances]
    return out


def render_trace_stats(s: TraceStats) -> str:
    """The text form of `inferguard trace stats`."""
    from inferguard.findings._codes import trace_code_spec

    sm = s.summary
    k = s.keys
    out = [f"Trace file: {s.path}",
           _row("level", sm.header.level),
           _row("size_bytes", s.size_bytes),
           _row("total_records", sm.total_records),
           _row("duration", f"{sm.duration_s:.3f}s"),
           _row("backend", s.backend),
           "  keys:" + ("" if k.exact else
                        f" (estimates: hash sample {k.sample_rate:.6g} of keys beyond "
                        f"{k.max_exact_keys})"),
           _row("key_rows", k.key_rows, 4),
           _row("malformed_key_rows", k.malformed_key_rows, 4),
           _row("distinct", _c(k.distinct), 4),
           _row("written", _c(k.written), 4),
           _row("written_more_than_once", _c(k.written_more_than_once), 4),
           _row("reserved", _c(k.reserved), 4),
           _row("looked_up", _c(k.looked_up), 4),
           _row("read", _c(k.read), 4),
           _row("read_never_written", _c(k.read_never_written), 4),
           _row("looked_up_never_read", _c(k.looked_up_never_read), 4)]
    r = s.reuse
    out += ["  reuse (key rows; 'written' = finish_write earlier in this trace):",
            _row("reads", r.reads, 4),
            _row("reads_of_written", _c(r.reads_of_written)
                 + _pct(r.reads_of_written.value, r.reads), 4),
            _row("reads_of_unwritten", _c(r.reads_of_unwritten), 4),
            _row("lookups", r.lookups, 4),
            _row("lookups_of_written", _c(r.lookups_of_written)
                 + _pct(r.lookups_of_written.value, r.lookups), 4),
            _row("writes", r.writes, 4),
            _row("rewrites", _c(r.rewrites), 4),
            _row("write_amplification", "-" if r.write_amplification is None
                 else f"{r.write_amplification:.3f}", 4),
            _row("reserves", r.reserves, 4),
            _row("reserves_of_written", _c(r.reserves_of_written), 4)]
    life = s.lifecycle
    out.append("  lifecycle:")
    for name in ("unfinished_writes", "redundant_reserves", "finish_without_reserve",
                 "open_read_contexts", "exits_without_enter", "unserved_prefetches",
                 "cold_lookups_unread", "reads_without_lookup"):
        lc: LifecycleCount = getattr(life, name)
        out.append(_row(name, _c(lc.count) + _where(lc), 4))
    out.append("  ops (records / key rows / key rows of written keys):")
    for o in s.ops:
        w = "-" if o.key_rows_of_written is None else _c(o.key_rows_of_written)
        out.append(f"    {o.qualname}: {o.count} / {o.key_rows} / {w}")
    b = s.breakdowns
    out += _breakdown("model", b.model)
    out += _breakdown("kv_rank", b.kv_rank)
    out += _breakdown("cache_salt", b.cache_salt)
    out += _breakdown("object_group", b.object_group)
    t = s.time
    out.append(f"  time ({t.buckets} buckets of {t.bucket_s:g}s):")
    if t.records_per_second is not None:
        q = t.records_per_second
        out.append(_row("records/s p50/p90/p99/max",
                        f"{q.p50:.1f} / {q.p90:.1f} / {q.p99:.1f} / {q.max:.1f}", 4))
    if t.key_rows_per_second is not None:
        q = t.key_rows_per_second
        out.append(_row("key rows/s p50/p90/p99/max",
                        f"{q.p50:.1f} / {q.p90:.1f} / {q.p99:.1f} / {q.max:.1f}", 4))
    out.append(_row(f"bursts (>= {t.burst_factor:g}x median)", len(t.bursts), 4))
    out += [f"      {x.t_start:.3f}s..{x.t_end:.3f}s: {x.records} records, peak "
            f"{x.peak_records_per_second:.1f}/s" for x in t.bursts]
    out.append(_row(f"idle gaps >= {t.idle_gap_threshold_s:g}s",
                    f"{t.idle_gaps_over_threshold} ({t.idle_time_s:.3f}s idle)", 4))
    out += [f"      {g.t_start:.3f}s..{g.t_end:.3f}s ({g.duration_s:.3f}s, next record at "
            f"offset {g.offset})" for g in t.largest_idle_gaps[:5]]
    if s.events is not None:
        out += _events(s.events)
    out.append("  findings:" + ("" if s.findings else " (none)"))
    for f in s.findings:
        where = "" if f.first_offset is None else f" [first at offset {f.first_offset}]"
        spec = trace_code_spec(f.code)
        out.append(f"    - {f.code} ({spec.severity}, {f.evidence}): {_c(f.count)}{where}")
        out.append(f"      {spec.title}")
        out.append(f"      {f.detail}")
    integ = sm.integrity
    out.append(_row("integrity", "ok" if integ.ok else
                    f"PROBLEMS ({len(integ.findings) + integ.findings_omitted} findings; "
                    "see `inferguard trace info`)"))
    return "\n".join(_safe(line) for line in out)  # escaped once, here


def _fail(exc: BaseException) -> int:
    print(f"inferguard: error: {_safe(str(exc))}", file=sys.stderr)
    return 2


def _stats(args: argparse.Namespace) -> int:
    from inferguard.evidence._source import InputError, local_input
    from inferguard.lct._file import TraceFormatError
    from inferguard.lct._stats import analyze_trace

    progress = Progress(enabled=not args.json, label="trace stats ")
    try:
        with local_input(args.file) as local:
            analysis = analyze_trace(local, max_exact_keys=args.max_exact_keys,
                                     bucket_s=args.bucket_s, idle_gap_s=args.idle_gap_s,
                                     progress=progress)
    except (InputError, TraceFormatError, OSError, ValueError) as exc:
        progress.close()
        return _fail(exc)
    progress.close()
    stats = analysis.stats
    if local != args.file:
        import msgspec.structs

        shown = "<stdin>" if args.file == "-" else args.file
        stats = msgspec.structs.replace(
            stats, path=shown, summary=msgspec.structs.replace(stats.summary, path=shown))
    if args.json:
        emit_json(stats)
    else:
        print(render_trace_stats(stats))
    return 0


def _export(args: argparse.Namespace) -> int:
    from inferguard.evidence._source import InputError, local_input
    from inferguard.lct._export import PARQUET_TABLES, export_parquet, export_trace
    from inferguard.lct._file import TraceFormatError

    progress = Progress(label="trace export ")
    args.tables_given = args.tables is not None
    if args.tables is None:
        args.tables = "ops,timeline,records"
    tables = tuple(t.strip() for t in args.tables.split(",") if t.strip())
    if args.format == "parquet":  # Hive-partitioned dataset (inferguard[fleet])
        try:
            with local_input(args.file) as local:
                paths = export_parquet(local, args.output, node=args.node or "",
                                       instance=args.instance or args.node or "",
                                       tables=tables if args.tables_given else PARQUET_TABLES,
                                       bucket_s=args.bucket_s,
                                       max_exact_keys=args.max_exact_keys)
        except (InputError, TraceFormatError, OSError, ValueError, ImportError) as exc:
            return _fail(exc)
        for p in paths:
            print(p)
        return 0
    try:
        with local_input(args.file) as local:
            paths = export_trace(local, args.output, args.format, tables=tables,
                                 bucket_s=args.bucket_s, max_exact_keys=args.max_exact_keys,
                                 progress=progress)
    except (InputError, TraceFormatError, OSError, ValueError) as exc:
        progress.close()
        return _fail(exc)
    progress.close()
    for p in paths:
        print(p)
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="the .lct file; '-' reads standard input (spooled "
                   "to a temporary file: the reader needs random access); gzip read "
                   "transparently")
    p.add_argument("--bucket-s", type=float, default=1.0, metavar="SECONDS",
                   help="timeline bucket width (default 1s; doubled if the trace needs more "
                        "than 131072 buckets)")
    p.add_argument("--max-exact-keys", type=int, default=DEFAULT_MAX_KEYS, metavar="N",
                   help="distinct keys counted exactly before hash sampling "
                        f"(default {DEFAULT_MAX_KEYS})")


def register(tsub: Any) -> None:
    """Add `stats` and `export` to the `inferguard trace` subcommands."""
    stats = tsub.add_parser(
        "stats", help="cache behaviour from a .lct: keys, reuse, lifecycles, breakdowns, time",
        description="Cache behaviour from a trace: keys written / looked up / read, reuse, "
                    "lifecycle breaks with byte offsets, breakdowns, timeline, bursts, idle "
                    "gaps, findings. Progress on stderr when it is a terminal (not with --json).",
        epilog=EXAMPLES + "  inferguard trace stats examples/lmcache-0.5.6-storage.lct\n"
               "  inferguard trace stats run.lct --json --max-exact-keys 100000\n",
        formatter_class=HelpFormatter)
    _common(stats)
    stats.add_argument("--idle-gap-s", type=float, default=1.0, metavar="SECONDS",
                       help="report gaps between records at least this long (default 1s)")
    add_json(stats, "print the result as JSON (schema inferguard.trace_stats/1)")
    stats.set_defaults(func=_stats, idle_gap_s=1.0, heavy=True)
    export = tsub.add_parser(
        "export", help="per-op table, timeline and raw record columns as CSV, JSONL, .npz "
        "or Parquet",
        description="Write trace_<table>.<format> files: the per-op table (upstream "
                    "trace_replay_ops.csv columns where they mean the same), the timeline, raw "
                    "record columns, optionally per-key fingerprints. Prints each path written. "
                    "--format parquet writes a Hive-partitioned dataset of many nodes "
                    "(docs/fleet.md).",
        epilog=EXAMPLES + "  inferguard trace export examples/lmcache-0.5.6-storage.lct "
               "--format csv -o out/\n"
               "  inferguard trace export run.lct --format npz --tables ops,keys\n"
               "  inferguard trace export run.lct --format parquet -o dataset/ --node node-a\n",
        formatter_class=HelpFormatter)
    _common(export)
    export.add_argument("--format", required=True, choices=["csv", "jsonl", "npz", "parquet"],
                        help="output format: csv, jsonl (JSON lines), npz (numpy arrays) or "
                             "parquet (DIR/<table>/node=NODE/trace.parquet, a Hive-partitioned "
                             "dataset; needs inferguard[fleet])")
    export.add_argument("--node", metavar="NODE",
                        help="parquet: this trace's node (the partition value; required)")
    export.add_argument("--instance", metavar="NAME",
                        help="parquet: the instance column (default: --node)")
    export.add_argument("-o", "--output", default=".", metavar="DIR",
                        help="directory for trace_<table>.<format> (default .)")
    export.add_argument("--tables", default=None,
                        help="comma-separated: ops, timeline, records, keys (default: the "
                             "first three; keys = one row per ObjectKey, fingerprints only; "
                             "parquet: ops, timeline, keys, lifecycle, all by default)")
    export.set_defaults(func=_export, heavy=True)
