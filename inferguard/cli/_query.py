"""`inferguard query DATASET "SQL"` (or `--ready NAME`): DuckDB over a Parquet dataset of
trace exports and fleet results. Parses, calls `lct._export.query_dataset`, prints."""

from __future__ import annotations

import argparse

from inferguard.cli._common import EXAMPLES, HelpFormatter, add_json, emit_json, error
from inferguard.cli._common import safe as safe_text
from inferguard.lct._queries import READY_QUERIES


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `query` to the top-level subcommands."""
    ready = "; ".join(f"{k}: {d}" for k, (d, _) in READY_QUERIES.items())
    p = sub.add_parser(
        "query", help="SQL (DuckDB) over a Parquet dataset of nodes (inferguard[fleet])",
        description="Run SQL with DuckDB over a dataset written by `trace export --format "
                    "parquet` and `fleet --parquet`. Views: ops, timeline, keys, lifecycle, "
                    "fleet (those present under DATASET), each with its node= partition as a "
                    f"column. Ready queries: {ready}.",
        epilog=EXAMPLES + "  inferguard query dataset/ \"SELECT node, sum(count) FROM ops "
               "GROUP BY node\"\n"
               "  inferguard query dataset/ --ready keys-reused-across-nodes --json\n",
        formatter_class=HelpFormatter)
    p.add_argument("dataset", metavar="DATASET", help="the dataset root directory")
    p.add_argument("sql", metavar="SQL", nargs="?", help="the query (or --ready NAME)")
    p.add_argument("--ready", choices=sorted(READY_QUERIES), metavar="NAME",
                   help="run a ready query: " + ", ".join(sorted(READY_QUERIES)))
    add_json(p, "rows as a JSON list of objects")
    p.set_defaults(func=_query)


def _query(args: argparse.Namespace) -> int:
    from inferguard.lct._export import query_dataset

    if (args.sql is None) == (args.ready is None):
        return error("query: give SQL or --ready NAME (one of them)")
    sql = args.sql if args.sql is not None else READY_QUERIES[args.ready][1]
    try:
        names, rows = query_dataset(args.dataset, sql)
    except (ImportError, OSError) as exc:
        return error(str(exc))
    except Exception as exc:  # DuckDB's own errors (syntax, missing table) are usage errors
        if type(exc).__module__.split(".")[0] not in ("duckdb", "_duckdb"):
            raise
        return error(str(exc))
    if args.json:
        emit_json([dict(zip(names, r, strict=True)) for r in rows])
        return 0
    cells = [[safe_text("" if v is None else str(v)) for v in r] for r in rows]
    widths = [max([len(n), *(len(c[i]) for c in cells)]) for i, n in enumerate(names)]
    print("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip())
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())
    print(f"({len(rows)} rows)")
    return 0
