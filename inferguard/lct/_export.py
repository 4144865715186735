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
