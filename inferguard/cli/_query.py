"""`inferguard query DATASET "SQL"` (or `--ready NAME`): DuckDB over a Parquet dataset of
trace exports and fleet results. Parses, calls `lct._export.query_dataset`, prints."""

from __future__ import annotations

import argparse
import sys

import msgspec

from inferguard.evidence._logs import safe_text
from inferguard.lct._export import READY_QUERIES, query_dataset


def add_query_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ready = "; ".join(f"{k}: {d}" for k, (d, _) in READY_QUERIES.items())
    p = sub.add_parser("query", help="SQL (DuckDB) over a Parquet dataset (inferguard[fleet])",
                       description="Views: ops, timeline, keys, lifecycle, fleet (those present "
                       "under DATASET), each with its node= partition as a column. "
                       f"Ready queries: {ready}.")
    p.add_argument("dataset", metavar="DATASET", help="the dataset root directory")
    p.add_argument("sql", metavar="SQL", nargs="?", help="the query (or --ready NAME)")
    p.add_argument("--ready", choices=sorted(READY_QUERIES), help="run a ready query")
    p.add_argument("--json", action="store_true", help="rows as a JSON list of objects")
    p.set_defaults(func=_query)


def _query(args: argparse.Namespace) -> int:
    if (args.sql is None) == (args.ready is None):
        print("inferguard: error: give SQL or --ready NAME (one of them)", file=sys.stderr)
        return 2
    sql = args.sql if args.sql is not None else READY_QUERIES[args.ready][1]
    try:
        names, rows = query_dataset(args.dataset, sql)
    except ImportError as exc:
        print(f"inferguard: error: {safe_text(str(exc))}", file=sys.stderr)
        return 2
    except Exception as exc:  # DuckDB's own errors (syntax, missing table) are usage errors
        if type(exc).__module__.split(".")[0] not in ("duckdb", "_duckdb", "builtins"):
            raise
        print(f"inferguard: error: {safe_text(str(exc))}", file=sys.stderr)
        return 2
    if args.json:
        out = [dict(zip(names, r, strict=True)) for r in rows]
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(out), indent=2).decode() + "\n")
        return 0
    cells = [[safe_text("" if v is None else str(v)) for v in r] for r in rows]
    widths = [max([len(n), *(len(c[i]) for c in cells)]) for i, n in enumerate(names)]
    print("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip())
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())
    print(f"({len(rows)} rows)")
    return 0
