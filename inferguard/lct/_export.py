"""`export_trace`: a trace's per-op table, timeline, raw record columns and (opt-in) per-key
fingerprints as CSV, JSON lines or npz (upstream `trace_replay_ops.csv` columns where they
mean the same)."""

from __future__ import annotations

import csv
import io
import math
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np
import numpy.typing as npt
from numpy import lib as np_lib

from inferguard._native import Backend, resolve_backend
from inferguard.lct import _engine as ts
from inferguard.lct._file import PathOrBuffer, TraceFile
from inferguard.lct._stats import (
    KeyColumns,
    OpKeyStats,
    ProgressFn,
    TraceStatsArrays,
    _names_cached,
    analyze_trace,
    iter_key_columns,
)

ExportFormat = Literal["csv", "jsonl", "npz"]
OPS_COLUMNS = ("qualname", "count", "role", "key_rows", "malformed_key_rows",
               "key_rows_of_written", "first_offset", "first_t_mono", "last_t_mono",
               "calls_per_second")
RECORD_COLUMNS = ("offset", "length", "t_mono", "t_wall", "op", "qualname", "nkeys", "status")
KEY_COLUMNS = ("offset", "fingerprint", "model_name", "kv_rank", "object_group_id",
               "cache_salt", "status")


def _key_rows(source: PathOrBuffer, backend: Backend | None) -> Iterator[dict[str, Any]]:
    for kc in iter_key_columns(source, backend=backend):
        for off, fp, m, sa, r, g, st in zip(
                kc.offset.tolist(), kc.fingerprint.tolist(), kc.model.tolist(),
                kc.salt.tolist(), kc.kv_rank.tolist(), kc.object_group_id.tolist(),
                kc.status.tolist(), strict=True):
            yield {"offset": off, "fingerprint": f"{fp:016x}",
                   "model_name": kc.models[m] if m >= 0 else None, "kv_rank": r,
                   "object_group_id": g, "cache_salt": kc.salts[sa] if sa >= 0 else None,
                   "status": st}


def _op_row(o: OpKeyStats) -> dict[str, Any]:
    return {"qualname": o.qualname, "count": o.count, "role": o.role, "key_rows": o.key_rows,
            "malformed_key_rows": o.malformed_key_rows,
            "key_rows_of_written": None if o.key_rows_of_written is None
            else o.key_rows_of_written.value,
            "first_offset": o.first_offset, "first_t_mono": o.first_t_mono,
            "last_t_mono": o.last_t_mono, "calls_per_second": o.calls_per_second}


def _timeline_columns(a: TraceStatsArrays) -> dict[str, npt.NDArray[Any]]:
    cols: dict[str, npt.NDArray[Any]] = {
        "bucket_start": a.bucket_start, "records": a.records, "key_rows": a.key_rows,
        "bytes": a.bytes, "new_keys": a.new_keys}
    cols |= {f"records_{k}": v for k, v in a.records_by_role.items()}
    cols |= {f"events_{k}": v for k, v in a.events_by_kind.items()}
    return cols


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6f}" if math.isfinite(v) else repr(v)
    return str(v)


def export_trace(source: PathOrBuffer, out_dir: str | os.PathLike[str], fmt: ExportFormat, *,
                 tables: tuple[str, ...] = ("ops", "timeline", "records"),
                 backend: Backend | None = None, bucket_s: float = 1.0,
                 max_exact_keys: int = ts.DEFAULT_MAX_KEYS,
                 progress: ProgressFn | None = None) -> list[Path]:
    """Write the per-op table (columns compatible with upstream trace_replay_ops.csv where
    they mean the same: qualname, count; rows sorted by qualname), the timeline, the raw
    per-record scan columns and (table "keys", not by default) one row per ObjectKey with
    its fingerprint, as CSV / JSON lines files or one .npz. Returns the paths."""
    if fmt not in ("csv", "jsonl", "npz"):
        raise ValueError(f"unknown export format {fmt!r}")
    unknown = set(tables) - {"ops", "timeline", "records", "keys"}
    if unknown:
        raise ValueError(f"unknown tables: {sorted(unknown)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with TraceFile(source) as tfile:
        analysis = analyze_trace(tfile, backend=backend, bucket_s=bucket_s,
                                 max_exact_keys=max_exact_keys, progress=progress)
        ops = [_op_row(o) for o in analysis.stats.ops]
        timeline = _timeline_columns(analysis.arrays)
        written: list[Path] = []
        if fmt == "npz":
            path = out / "trace_stats.npz"
            _write_npz(path, tfile, source, backend, ops, timeline, tables)
            return [path]
        for table in tables:
            path = out / f"trace_{table}.{fmt}"
            with path.open("w", newline="" if fmt == "csv" else None, encoding="utf-8") as f:
                if table == "ops":
                    _write_rows(f, fmt, list(OPS_COLUMNS), iter(ops))
                elif table == "timeline":
                    names = list(timeline)
                    rows = ({k: _py(timeline[k][i]) for k in names}
                            for i in range(len(analysis.arrays.records)))
                    _write_rows(f, fmt, names, rows)
                elif table == "records":
                    _write_rows(f, fmt, list(RECORD_COLUMNS), _record_rows(tfile, backend))
                else:
                    _write_rows(f, fmt, list(KEY_COLUMNS), _key_rows(source, backend))
            written.append(path)
        return written


def _py(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _write_rows(f: io.TextIOBase | Any, fmt: str, names: list[str],
                rows: Iterator[dict[str, Any]]) -> None:
    if fmt == "csv":
        w = csv.writer(f)  # the csv module's default dialect, as upstream writes its CSV
        w.writerow(names)
        for row in rows:
            w.writerow([_fmt(row.get(k)) for k in names])
        return
    enc = msgspec.json.Encoder()
    for row in rows:
        f.write(enc.encode({k: row.get(k) for k in names}).decode())
        f.write("\n")


def _record_rows(tfile: TraceFile, backend: Backend | None) -> Iterator[dict[str, Any]]:
    findings: list[Any] = []
    chunks, kernel = tfile._chunks(resolve_backend(backend), findings)
    names = _names_cached(kernel)
    for c in chunks:
        table = names()
        for off, ln, tm, tw, op, nk, st in zip(
                c.offset.tolist(), c.length.tolist(), c.t_mono.tolist(), c.t_wall.tolist(),
                c.op.tolist(), c.nkeys.tolist(), c.status.tolist(), strict=True):
            yield {"offset": off, "length": ln, "t_mono": _json_float(tm),
                   "t_wall": _json_float(tw), "op": op,
                   "qualname": table[op] if op >= 0 else None, "nkeys": nk, "status": st}


def _json_float(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _write_npz(path: Path, tfile: TraceFile, source: PathOrBuffer, backend: Backend | None,
               ops: list[dict[str, Any]], timeline: dict[str, npt.NDArray[Any]],
               tables: tuple[str, ...]) -> None:
    """A .npz written column by column; record columns are streamed (bounded memory)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        if "ops" in tables:
            for k in OPS_COLUMNS:
                vals = [o[k] for o in ops]
                if k in ("qualname", "role"):
                    arr: npt.NDArray[Any] = np.array(vals, dtype=np.str_)
                elif k in ("first_t_mono", "last_t_mono", "calls_per_second"):
                    arr = np.array([np.nan if v is None else v for v in vals], np.float64)
                else:
                    arr = np.array([-1 if v is None else v for v in vals], np.int64)
                _npz_put(z, f"ops_{k}", arr)
        if "timeline" in tables:
            for k, v in timeline.items():
                _npz_put(z, f"timeline_{k}", np.ascontiguousarray(v))
        if "records" in tables:
            _npz_records(z, tfile, backend)
        if "keys" in tables:
            _npz_keys(z, source, backend)


def _npz_put(z: zipfile.ZipFile, name: str, arr: npt.NDArray[Any]) -> None:
    with z.open(name + ".npy", "w", force_zip64=True) as f:
        np_lib.format.write_array(f, arr, allow_pickle=False)


_REC_DTYPES = {"offset": np.int64, "length": np.uint32, "t_mono": np.float64,
               "t_wall": np.float64, "op": np.int32, "nkeys": np.int32, "status": np.uint8}


def _spool(z: zipfile.ZipFile, prefix: str, dtypes: dict[str, Any],
           parts: Iterator[dict[str, npt.NDArray[Any]]]) -> None:
    """Write columns that arrive in parts as one .npy entry each, spooled through
    temporary files next to the archive (bounded memory)."""
    import tempfile

    with tempfile.TemporaryDirectory(dir=Path(z.filename or ".").parent) as tmp:
        files = {k: open(os.path.join(tmp, k), "wb") for k in dtypes}  # noqa: SIM115
        n = 0
        try:
            for part in parts:
                n += len(next(iter(part.values())))
                for k, dt in dtypes.items():
                    files[k].write(np.ascontiguousarray(part[k], dt).tobytes())
        finally:
            for f in files.values():
                f.close()
        for k, dt in dtypes.items():
            with z.open(f"{prefix}_{k}.npy", "w", force_zip64=True) as out:
                header = {"descr": np_lib.format.dtype_to_descr(np.dtype(dt)),
                          "fortran_order": False, "shape": (n,)}
                np_lib.format.write_array_header_1_0(out, header)
                with open(os.path.join(tmp, k), "rb") as src:
                    while True:
                        block = src.read(1 << 22)
                        if not block:
                            break
                        out.write(block)


def _npz_records(z: zipfile.ZipFile, tfile: TraceFile, backend: Backend | None) -> None:
    chunks, kernel = tfile._chunks(resolve_backend(backend), [])
    _spool(z, "records", _REC_DTYPES,
           ({k: getattr(c, k) for k in _REC_DTYPES} for c in chunks))
    _npz_put(z, "records_qualnames", np.array(kernel.names(), dtype=np.str_))


_KEY_DTYPES = {"offset": np.int64, "fingerprint": np.uint64, "model": np.int32,
               "salt": np.int32, "kv_rank": np.int64, "object_group_id": np.int64,
               "status": np.uint8}


def _npz_keys(z: zipfile.ZipFile, source: PathOrBuffer, backend: Backend | None) -> None:
    last: list[KeyColumns] = []

    def parts() -> Iterator[dict[str, npt.NDArray[Any]]]:
        for kc in iter_key_columns(source, backend=backend):
            last[:] = [kc]
            yield {k: getattr(kc, k) for k in _KEY_DTYPES}

    _spool(z, "keys", _KEY_DTYPES, parts())
    _npz_put(z, "keys_models", np.array(last[0].models if last else (), dtype=np.str_))
    _npz_put(z, "keys_salts", np.array(last[0].salts if last else (), dtype=np.str_))


# -- Parquet: columnar tables for many nodes (optional extra inferguard[fleet]) --------------

PARQUET_TABLES = ("ops", "timeline", "keys", "lifecycle")
_LIFECYCLE_RULES = ("unfinished_writes", "redundant_reserves", "finish_without_reserve",
                    "open_read_contexts", "exits_without_enter", "unserved_prefetches",
                    "cold_lookups_unread", "reads_without_lookup")


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ImportError("Parquet export needs pyarrow: pip install 'inferguard[fleet]'"
                          ) from None
    return pyarrow


def partition_dir(root: str | os.PathLike[str], table: str, node: str) -> Path:
    """`root/<table>/node=<node>/`: Hive partitioning, so many nodes' exports under one root
    form one dataset per table (the value is percent-encoded where it is not a plain name)."""
    import urllib.parse

    return Path(root) / table / f"node={urllib.parse.quote(node, safe='-_.:@')}"


def trace_columns(source: PathOrBuffer, *, backend: Backend | None = None,
                  bucket_s: float = 1.0, max_exact_keys: int = ts.DEFAULT_MAX_KEYS
                  ) -> dict[str, dict[str, list[Any]]]:
    """The small tables as columns (ops, timeline, lifecycle): what the Parquet export
    writes, before any Parquet (the per-key table is streamed, see `iter_key_columns`)."""
    with TraceFile(source) as tfile:
        analysis = analyze_trace(tfile, backend=backend, bucket_s=bucket_s,
                                 max_exact_keys=max_exact_keys)
    ops = [_op_row(o) for o in analysis.stats.ops]
    timeline = _timeline_columns(analysis.arrays)
    life = analysis.stats.lifecycle
    rules = [(r, getattr(life, r)) for r in _LIFECYCLE_RULES]
    return {
        "ops": {k: [o[k] for o in ops] for k in OPS_COLUMNS},
        "timeline": {k: v.tolist() for k, v in timeline.items()},
        "lifecycle": {"rule": [r for r, _ in rules],
                      "count": [c.count.value for _, c in rules],
                      "exact": [c.count.exact for _, c in rules],
                      "first_offset": [c.first_offset for _, c in rules]},
    }


def write_parquet_columns(path: Path, columns: dict[str, list[Any]],
                          types: dict[str, Any] | None = None) -> Path:
    """One Parquet file from columns (atomic: written beside, then renamed)."""
    pa = _pyarrow()
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = {k: pa.array(v, type=(types or {}).get(k)) for k, v in columns.items()}
    tmp = path.with_name(path.name + ".tmp")
    pa.parquet.write_table(pa.table(fields), tmp)
    os.replace(tmp, path)
    return path


def export_parquet(source: PathOrBuffer, root: str | os.PathLike[str], *, node: str,
                   instance: str = "", tables: tuple[str, ...] = PARQUET_TABLES,
                   backend: Backend | None = None, bucket_s: float = 1.0,
                   max_exact_keys: int = ts.DEFAULT_MAX_KEYS) -> list[Path]:
    """Write the trace's tables as Parquet under `root/<table>/node=<node>/trace.parquet`,
    each row carrying `instance` (the node is the partition: readers add the column). The
    per-key table holds fingerprints only (64-bit, never the raw chunk hashes) and is
    streamed chunk by chunk (bounded memory)."""
    pa = _pyarrow()
    unknown = set(tables) - set(PARQUET_TABLES)
    if unknown:
        raise ValueError(f"unknown tables: {sorted(unknown)}")
    if not node:
        raise ValueError("a Parquet export needs a node name (--node)")
    small = trace_columns(source, backend=backend, bucket_s=bucket_s,
                          max_exact_keys=max_exact_keys)
    written: list[Path] = []
    for table in tables:
        path = partition_dir(root, table, node) / "trace.parquet"
        if table == "keys":
            written.append(_keys_parquet(pa, source, backend, path, instance))
            continue
        cols = small[table]
        n = len(next(iter(cols.values()))) if cols else 0
        written.append(write_parquet_columns(path, {"instance": [instance] * n, **cols}))
    return written


def _keys_parquet(pa: Any, source: PathOrBuffer, backend: Backend | None, path: Path,
                  instance: str) -> Path:
    schema = pa.schema([("instance", pa.string()), ("offset", pa.int64()),
                        ("fingerprint", pa.uint64()), ("model_name", pa.string()),
                        ("kv_rank", pa.int64()), ("object_group_id", pa.int64()),
                        ("cache_salt", pa.string()), ("status", pa.uint8())])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with pa.parquet.ParquetWriter(tmp, schema) as w:
        for kc in iter_key_columns(source, backend=backend):
            n = len(kc.offset)
            models = np.array([*kc.models, None], dtype=object)
            salts = np.array([*kc.salts, None], dtype=object)
            w.write_table(pa.table({
                "instance": pa.array([instance] * n, pa.string()),
                "offset": pa.array(kc.offset, pa.int64()),
                "fingerprint": pa.array(kc.fingerprint, pa.uint64()),
                "model_name": pa.array(models[np.where(kc.model >= 0, kc.model, -1)],
                                       pa.string()),
                "kv_rank": pa.array(kc.kv_rank, pa.int64()),
                "object_group_id": pa.array(kc.object_group_id, pa.int64()),
                "cache_salt": pa.array(salts[np.where(kc.salt >= 0, kc.salt, -1)],
                                       pa.string()),
                "status": pa.array(kc.status, pa.uint8())}, schema=schema))
    os.replace(tmp, path)
    return path


# -- DuckDB over a dataset ------------------------------------------------------------------

DATASET_TABLES = (*PARQUET_TABLES, "fleet")


def query_dataset(root: str | os.PathLike[str], sql: str
                  ) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run SQL with DuckDB over a dataset root: each table directory present under it
    (`ops`, `timeline`, `keys`, `lifecycle`, `fleet`) is a view of its Parquet files with
    the `node=` partition as a column. Returns (column names, rows)."""
    try:
        import duckdb
    except ImportError:
        raise ImportError("queries need duckdb: pip install 'inferguard[fleet]'") from None
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"{base}: not a dataset directory")
    con = duckdb.connect(":memory:")
    try:
        for table in DATASET_TABLES:
            if any((base / table).glob("node=*/*.parquet")):
                pattern = str(base / table / "node=*" / "*.parquet").replace("'", "''")
                con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{pattern}', "
                            "hive_partitioning = true, union_by_name = true)")
        cur = con.execute(sql)
        names = [d[0] for d in (cur.description or [])]
        return names, list(cur.fetchall())
    finally:
        con.close()
