"""Parquet export and DuckDB queries over many nodes (the optional extra inferguard[fleet]):
the tables read back (pyarrow and DuckDB) equal the in-memory tables and the CSV export, and a
query over a two-node dataset equals the sum of each node's `trace stats`."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from inferguard.cli import main
from inferguard.lct._export import (
    export_parquet,
    export_trace,
    query_dataset,
    trace_columns,
)
from inferguard.lct._stats import analyze_trace, iter_key_columns
from inferguard.verdict._fleet import FleetReport, FleetRow, fleet_columns, write_fleet_parquet

if os.environ.get("INFERGUARD_REQUIRE_FLEET") == "1":  # CI: the extra must be there
    import duckdb
    import pyarrow as pa
    import pyarrow.dataset  # noqa: F401
    import pyarrow.parquet as pq
else:
    pa = pytest.importorskip("pyarrow", reason="pyarrow not installed (pip install '.[fleet]')")
    pq = pytest.importorskip("pyarrow.parquet")
    pytest.importorskip("pyarrow.dataset")
    duckdb = pytest.importorskip("duckdb", reason="duckdb not installed (pip install '.[fleet]')")

FIX = Path(__file__).parent / "fixtures" / "lmcache-0.5.6"
NODES = {"node-a": FIX / "storage.lct", "node-b": FIX / "lookup-replay-storage.lct"}


def _export_two(root: Path) -> None:
    for node, trace in NODES.items():
        export_parquet(trace, root, node=node, instance=f"{node}:9000")


def test_round_trip_pyarrow_and_duckdb_equal_memory(tmp_path: Path) -> None:
    trace = NODES["node-a"]
    export_parquet(trace, tmp_path, node="node-a", instance="i-a")
    mem = trace_columns(trace)
    for table, cols in mem.items():
        path = tmp_path / table / "node=node-a" / "trace.parquet"
        back = pq.read_table(path).to_pydict()
        assert back == {"instance": ["i-a"] * len(next(iter(cols.values()))), **cols}, table
        names, rows = query_dataset(tmp_path, f"SELECT * EXCLUDE (node) FROM {table}")
        assert [dict(zip(names, r, strict=True)) for r in rows] == [
            dict(zip(back, vals, strict=True)) for vals in zip(*back.values(), strict=True)]
    # The per-key table: fingerprints only, equal to the key columns and to the CSV export.
    keys = pq.read_table(tmp_path / "keys" / "node=node-a" / "trace.parquet").to_pydict()
    fps = [int(f) for kc in iter_key_columns(trace) for f in kc.fingerprint]
    assert keys["fingerprint"] == fps and len(fps) > 0
    (csv_path,) = export_trace(trace, tmp_path / "csv", "csv", tables=("keys",))
    with csv_path.open() as f:
        rows_csv = list(csv.DictReader(f))
    assert [f"{fp:016x}" for fp in keys["fingerprint"]] == [r["fingerprint"] for r in rows_csv]
    assert [m or "" for m in keys["model_name"]] == [r["model_name"] for r in rows_csv]
    assert set(keys) == {"instance", "offset", "fingerprint", "model_name", "kv_rank",
                         "object_group_id", "cache_salt", "status"}  # no raw hash column
    # Hive partitioning: pyarrow's dataset reader gives the node column.
    ds = pa.dataset.dataset(tmp_path / "ops", format="parquet", partitioning="hive")
    assert set(ds.to_table().column("node").to_pylist()) == {"node-a"}


def test_two_node_query_equals_sum_of_trace_stats(tmp_path: Path) -> None:
    _export_two(tmp_path)
    want: dict[str, int] = {}
    for trace in NODES.values():
        for o in analyze_trace(trace).stats.ops:
            want[o.qualname] = want.get(o.qualname, 0) + o.count
    _, rows = query_dataset(tmp_path, "SELECT qualname, sum(count) FROM ops "
                                "GROUP BY qualname ORDER BY qualname")
    assert dict(rows) == want
    _, nodes = query_dataset(tmp_path, "SELECT DISTINCT node FROM ops ORDER BY node")
    assert [n for (n,) in nodes] == sorted(NODES)


def test_ready_queries(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _export_two(tmp_path)
    per_node = {n: {int(f) for kc in iter_key_columns(t) for f, s in zip(kc.fingerprint,
                                                                        kc.status,
                                                                        strict=True) if s == 0}
                for n, t in NODES.items()}
    shared = per_node["node-a"] & per_node["node-b"]
    assert main(["query", str(tmp_path), "--ready", "keys-reused-across-nodes", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert {r["fingerprint"] for r in got} == shared
    assert all(r["nodes"] == 2 for r in got)
    assert main(["query", str(tmp_path), "--ready", "nodes-with-lifecycle-breaks",
                 "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    for node, trace in NODES.items():
        life = analyze_trace(trace).stats.lifecycle
        broken = {r for r in life.__struct_fields__ if r != "untracked_contexts"
                  and getattr(life, r).count.value > 0}
        assert {r["rule"] for r in got if r["node"] == node} == broken
    assert main(["query", str(tmp_path), "SELECT count(*) AS n FROM timeline"]) == 0
    assert "(1 rows)" in capsys.readouterr().out
    assert main(["query", str(tmp_path), "SELECT * FROM nosuchtable"]) == 2
    assert main(["query", str(tmp_path)]) == 2


def test_fleet_rows_as_parquet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [FleetRow("a:1", ["lmcache"], True, mode="mp", level="measured",
                     finding_codes=["x"], models=["m1", "m2"]),
            FleetRow("b:1", ["lmcache"], True, mode="mp", level="measured", hit_rate=0.5,
                     models=["m1"]),
            FleetRow("c:1", ["lmcache"], False, reason="down")]
    report = FleetReport("http://p", 1.0, None, rows, {"mp": 2}, {"x": 1}, 1)
    write_fleet_parquet(report, tmp_path)
    names, back = query_dataset(tmp_path, "SELECT * EXCLUDE (node) FROM fleet ORDER BY instance")
    cols = fleet_columns(report)
    assert [dict(zip(names, r, strict=True)) for r in back] == [
        {k: v[i] for k, v in cols.items()} for i in range(3)]
    assert main(["query", str(tmp_path), "--ready", "fleet-hit-rate-by-model", "--json"]) == 0
    got = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert got["m1"]["instances"] == 2 and got["m1"]["mean_hit_rate"] == 0.5
    assert got["m2"]["instances"] == 1 and got["m2"]["mean_hit_rate"] is None


def test_cli_trace_export_parquet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = NODES["node-a"]
    assert main(["trace", "export", str(trace), "--format", "parquet", "-o", str(tmp_path),
                 "--node", "n1"]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(Path(p).parent.parent.name for p in printed) == sorted(
        ["ops", "timeline", "keys", "lifecycle"])
    assert main(["trace", "export", str(trace), "--format", "parquet", "-o",
                 str(tmp_path)]) == 2  # a partition needs its node
