"""LMCache MP trace recordings (`.lct`): header, records, columnar scan, summary.

A `.lct` file is `[uint32 big-endian length][msgpack map]` frames: a header, then one
record per traced StorageManager call (or coordinator cache event at the `events` level).
`TraceFile` reads any header variant upstream has written, iterates records lazily with
codec wrappers unwrapped, scans all records into numpy columns without a Python object per
record (C when built, pure Python otherwise, same results), and summarises like upstream
`lmcache trace info` plus JSON, wall-clock bounds, rates, keys per op and integrity.
Damage never aborts a read: it becomes a `TraceFinding` beside everything still readable.
"""

from __future__ import annotations

import itertools
import math
import os
import struct
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from inferguard.lct._columns import TraceColumns

from inferguard._native import Backend, resolve_backend
from inferguard._native._lct import NativeEventsDecoder, NativeFrameScanner
from inferguard._native._protocols import TallyResult
from inferguard.lct import _evrows
from inferguard.lct import _frame as tf
from inferguard.lct._codec import unwrap
from inferguard.lct._scan import (
    DEFAULT_WINDOW,
    Chunk,
    Finding,
    FindingLog,
    Source,
    TallyKernel,
    find_next_record,
    make_kernel,
    scan_frames,
)
from inferguard.lct._summary import (
    BatchCount,
    EventsSummary,
    InstanceSummary,
    OpStats,
    TraceFinding,
    TraceHeader,
    TraceIntegrity,
    TraceRecord,
    TraceSummary,
)

__all__ = [
    "MAGIC",
    "SUMMARY_SCHEMA",
    "BatchCount",
    "EventsSummary",
    "InstanceSummary",
    "OpStats",
    "TraceFile",
    "TraceFinding",
    "TraceFormatError",
    "TraceHeader",
    "TraceIntegrity",
    "TraceRecord",
    "TraceSummary",
    "summarize_trace",
]

MAGIC = b"LMCT"
SUMMARY_SCHEMA = "inferguard.trace_summary/1"
KNOWN_FORMAT_VERSIONS = frozenset([1])
KNOWN_SCHEMA_VERSIONS = frozenset([1, 2])
KNOWN_LEVELS = frozenset(["storage", "events"])
MAX_FINDINGS = 1000
# A trace this small is summarised from one scan into Python lists, without numpy: a
# `trace info` on it costs little more than the interpreter's start-up. Any damage (a
# malformed or cut frame, a special row) sends it down the general path instead.
SMALL_TRACE_BYTES = 1 << 20
PathOrBuffer = str | os.PathLike[str] | bytes | bytearray | memoryview

_BE32 = struct.Struct(">I")
_HEADER_SIGNATURE = b"\xa4type\xa6header"


def _sha256_hex(data: bytes) -> str:
    """SHA-256 of a header's config (a few KB) by CPython's builtin implementation where it
    has one: `import hashlib` loads OpenSSL (~3 ms, a tenth of a small trace's whole run)."""
    try:
        from _sha2 import sha256  # type: ignore[import-not-found]  # CPython >= 3.12
    except ImportError:
        try:
            from _sha256 import sha256  # type: ignore[import-not-found]  # 3.10, 3.11
        except ImportError:
            from hashlib import sha256
    return str(sha256(data).hexdigest())


class TraceFormatError(ValueError):
    """The input is not an LMCache trace at all (damage inside a trace is a finding)."""


_STATUS_NAMES = {tf.ROW_OP_TABLE_FULL: f"(more than {tf.MAX_OPS} distinct qualnames)",
                 tf.ROW_QUALNAME_LONG: f"(qualname longer than {tf.MAX_QUALNAME} bytes)"}


def _describe_start(data: bytes, size: int) -> str:
    shown = data[:16]
    text = "".join(chr(b) if 32 <= b < 127 else "." for b in shown)
    what = f"bytes {shown.hex(' ')} ({text!r})"
    if len(data) >= 4:
        (n,) = _BE32.unpack(data[:4])
        what += f"; read as a length prefix that is {n} bytes"
        if n + 4 > size:
            what += f", more than the file's {size}"
    return what


def _findings(raw: list[Finding]) -> list[TraceFinding]:
    return [TraceFinding(f.kind, f.offset, f.detail, f.skipped) for f in raw]


class TraceFile:
    """An open `.lct` trace (a path, or bytes already in memory).

    The header is read on open; `TraceFormatError` is raised only when the input is not a
    trace at all. Everything else is read on demand: `records()`, `scan()`, `summary()`.
    """

    def __init__(self, source: PathOrBuffer, *, window_size: int = DEFAULT_WINDOW) -> None:
        self._src = Source(source)
        self.path = self._src.name
        self.size = self._src.size
        self._window = window_size
        self._header_findings: list[Finding] = []
        try:
            self.header, self._records_start = self._read_header()
        except BaseException:
            self._src.close()
            raise

    def close(self) -> None:
        self._src.close()

    def __enter__(self) -> TraceFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- header --------------------------------------------------------------------------

    def _not_a_trace(self, why: str) -> TraceFormatError:
        head = self._src.read(0, 16)
        return TraceFormatError(
            f"{self.path}: not an LMCache trace (.lct): {why}; at offset 0: "
            f"{_describe_start(head, self.size)}. Expected a 4-byte big-endian frame length "
            'followed by a msgpack header map ("type": "header", magic b"LMCT").')

    def _read_header(self) -> tuple[TraceHeader, int]:
        size = self.size
        if size == 0:
            raise TraceFormatError(f"{self.path}: empty file: not an LMCache trace (.lct); "
                                   "expected a 4-byte length prefix and a header frame")
        if size < 4:
            raise self._not_a_trace(f"only {size} bytes")
        (n,) = _BE32.unpack(self._src.read(0, 4))
        looks_like_header = self._src.read(5, len(_HEADER_SIGNATURE)) == _HEADER_SIGNATURE
        fields: Any = None
        if 4 + n <= size:
            try:
                fields = msgspec.msgpack.decode(self._src.read(4, n))
            except (msgspec.DecodeError, RecursionError, ValueError):
                fields = None
        if isinstance(fields, dict) and fields.get("type") in ("header", None) and (
                "magic" in fields or "format_version" in fields or "level" in fields):
            return self._header_from(fields, n), 4 + n
        if isinstance(fields, dict) and fields.get("type") == "record":
            self._header_findings.append(Finding(
                "missing_header", 0, "frame 0 is a record, not a header; reading records"))
            return TraceHeader(variant="missing"), 0
        # Frame 0 is damaged or absent: a trace only if records can still be found.
        found = find_next_record(self._src, 4 if looks_like_header else 0, self._window)
        if found is None:
            if looks_like_header:
                why = ("the header frame is cut short" if 4 + n > size
                       else "the header frame does not decode")
                self._header_findings.append(Finding("unreadable_header", 0, why, size))
                return TraceHeader(variant="missing"), size
            raise self._not_a_trace("no header frame and no record frame found")
        self._header_findings.append(Finding(
            "unreadable_header", 0,
            f"frame 0 is not a readable header; records resume at offset {found}", found))
        return TraceHeader(variant="missing"), found

    def _header_from(self, f: dict[str, Any], frame_len: int) -> TraceHeader:
        problems: list[str] = []

        def typed(key: str, kind: type | tuple[type, ...]) -> Any:
            v = f.get(key)
            if v is None:
                return None
            if isinstance(v, bool) or not isinstance(v, kind):
                problems.append(f"{key} has type {type(v).__name__}")
                return None
            return v

        magic = f.get("magic")
        fmt = typed("format_version", int)
        level = typed("level", str)
        schema = typed("trace_schema_version", int)
        lmc_version = typed("lmcache_version", str)
        t_mono_start = typed("t_mono_start", (int, float))
        t_wall_start = typed("t_wall_start", (int, float))
        cfg = typed("sm_config_json", str) or ""
        digest = typed("sm_config_digest", str) or ""
        meta = typed("level_meta", dict) or {}
        level_meta = {str(k): v for k, v in meta.items()}
        if lmc_version is None and isinstance(level_meta.get("lmcache_version"), str):
            lmc_version = level_meta["lmcache_version"]

        if schema is None:
            variant = "v0" if "lmcache_version" in f else "unknown"
        else:
            variant = f"schema{schema}"
        if "level_meta" in f:
            variant += "+level_meta"

        add = self._header_findings.append
        if magic != MAGIC:
            add(Finding("bad_magic", 4, f"header magic is {magic!r}, expected b'LMCT'"))
        if fmt not in KNOWN_FORMAT_VERSIONS:
            add(Finding("unknown_format_version", 4,
                        f"format_version {fmt!r}; known: {sorted(KNOWN_FORMAT_VERSIONS)}"))
        if schema is not None and schema not in KNOWN_SCHEMA_VERSIONS:
            add(Finding("unknown_schema_version", 4,
                        f"trace_schema_version {schema}; known: {sorted(KNOWN_SCHEMA_VERSIONS)}"))
        if schema is None and variant.startswith("unknown"):
            add(Finding("unknown_schema_version", 4,
                        "header has neither trace_schema_version nor lmcache_version"))
        if level not in KNOWN_LEVELS:
            add(Finding("unknown_level", 4, f"level {level!r}; known: storage, events"))
        for p in problems:
            add(Finding("bad_header_field", 4, p))
        digest_ok = None
        if cfg or digest:
            digest_ok = _sha256_hex(cfg.encode("utf-8", "surrogatepass")) == digest
            if not digest_ok:
                add(Finding("config_digest_mismatch", 4,
                            "sm_config_digest is not the SHA-256 of sm_config_json"))
        return TraceHeader(
            variant=variant,
            magic=magic.decode("latin-1") if isinstance(magic, bytes) else None,
            format_version=fmt, level=level, trace_schema_version=schema,
            lmcache_version=lmc_version,
            t_mono_start=None if t_mono_start is None else float(t_mono_start),
            t_wall_start=None if t_wall_start is None else float(t_wall_start),
            sm_config_json=cfg, sm_config_digest=digest, sm_config_digest_ok=digest_ok,
            level_meta=level_meta, frame_length=frame_len)

    # -- records -------------------------------------------------------------------------

    def _chunks(self, backend: Backend | None, findings: list[Finding], keys: bool = False
                ) -> tuple[Iterator[Chunk], Any]:
        """Row chunks from the records' start, and the kernel; `keys`: the caller (the
        analytics) extracts ObjectKeys from each chunk before asking for the next one, and
        the scan runs on one thread (the analytics' second thread is their fold: with the
        window split as well, three threads shared two cores and lost 8%)."""
        kernel = make_kernel(resolve_backend(backend), keys)
        return scan_frames(self._src, self._records_start, kernel, findings, self._window,
                           1 if keys else None), kernel

    def records(self, *, unwrap_args: bool = True,
                backend: Backend | None = None) -> Iterator[TraceRecord]:
        """Decoded records in file order; damaged frames are skipped (see `scan()`)."""
        import numpy as np

        findings = FindingLog(MAX_FINDINGS)
        chunks, _ = self._chunks(backend, findings)
        for chunk in chunks:
            for i in np.flatnonzero(chunk.status != tf.ROW_MALFORMED):
                off, n = int(chunk.offset[i]), int(chunk.length[i])
                body = chunk.window.body(off, n)
                try:
                    raw = msgspec.msgpack.decode(body)
                    qualname, args = str(raw["qualname"]), raw["args"]
                    if unwrap_args:
                        args = unwrap(args)
                except RecursionError:  # valid but deeper than Python objects can go
                    qualname = tf.decode_body(body).qualname or ""
                    args = {"__inferguard_error__": "args nested too deeply to decode"}
                yield TraceRecord(off, float(chunk.t_mono[i]), float(chunk.t_wall[i]),
                                  qualname, args)

    def scan(self, *, backend: Backend | None = None) -> TraceColumns:
        """All frames as numpy columns (the hot path; no Python object per record)."""
        import numpy as np

        from inferguard.lct._columns import TraceColumns

        findings = FindingLog(MAX_FINDINGS)
        chunks, kernel = self._chunks(backend, findings)
        parts = list(chunks)
        names = tuple(kernel.names())

        def cat(field: str, dtype: Any) -> Any:
            import numpy as np

            if not parts:
                return np.empty(0, dtype)
            return np.concatenate([getattr(c, field) for c in parts])

        return TraceColumns(
            cat("offset", np.int64), cat("length", np.uint32), cat("t_mono", np.float64),
            cat("t_wall", np.float64), cat("op", np.int32), cat("nkeys", np.int32),
            cat("status", np.uint8), names,
            tuple(_findings(self._header_findings + findings)))

    def summary(self, *, backend: Backend | None = None) -> TraceSummary:
        """Aggregate the whole trace in one bounded-memory pass."""
        chosen = resolve_backend(backend)
        if self.size <= SMALL_TRACE_BYTES:
            small = self._small_summary(chosen)
            if small is not None:
                return small
        findings = FindingLog(MAX_FINDINGS)
        if chosen == "native" and self.header.level != "events":
            # Storage traces: rows folded in C as they are scanned (no numpy import).
            tallying = TallyKernel()
            for _ in scan_frames(self._src, self._records_start, tallying, findings,
                                 self._window):
                pass
            return _SmallAggregate.from_tally(tallying.tally.read()).result(
                self, chosen, tallying.names(), self._header_findings + findings,
                findings.omitted, findings.omitted_skipped)
        chunks, kernel = self._chunks(chosen, findings)
        agg = _Aggregate(self.header.level == "events", chosen)
        for chunk in chunks:
            agg.add(chunk, kernel.names())
        return agg.result(self, chosen, kernel.names(), self._header_findings + findings,
                          findings.omitted, findings.omitted_skipped)


    def _small_summary(self, backend: Backend) -> TraceSummary | None:
        """The summary of a clean small trace from one list scan (same rows as the general
        path's, on the same backend), or None when any frame is damaged."""
        data = self._src.read(0, self.size)
        rows = tf.Rows()
        start = self._records_start
        if backend == "native":
            scanner = NativeFrameScanner()
            stop, pos = tf.STOP_FULL, start
            while stop == tf.STOP_FULL:
                stop, pos = scanner.scan_lists(data, pos, 0, 1 << 16, rows)
            names = scanner.names()
        else:
            interner = tf.PyInterner()
            stop, pos = tf.scan_python(data, start, 0, interner, self.size, rows)
            names = list(interner.names)
        if (stop != tf.STOP_END or pos != self.size or any(rows.status)
                or (rows.op and min(rows.op) < 0)):
            return None
        agg = _SmallAggregate(self.header.level == "events")
        agg.add_rows(rows, len(names), data, names)
        return agg.result(self, backend, names, list(self._header_findings))


def summarize_trace(source: PathOrBuffer, *, backend: Backend | None = None) -> TraceSummary:
    """Open, summarise and close a trace."""
    with TraceFile(source) as tfile:
        return tfile.summary(backend=backend)


class _Aggregate:
    """Streaming per-chunk aggregation for `TraceFile.summary()`."""

    def __init__(self, events_level: bool, backend: str = "python") -> None:
        self._zeros()
        self.special: Counter[int] = Counter()
        self.special_keys: Counter[int] = Counter()
        self.special_max: dict[int, int] = {}
        self.frames = self.malformed = self.records = 0
        self.nan_ts = self.neg_mono = self.decreases = 0
        self.mono_min = self.mono_max = math.nan
        self.mono_first = self.mono_last = math.nan
        self.wall_min = self.wall_max = math.nan
        self.events = _EventsAggregate(backend) if events_level else None

    def _zeros(self) -> None:
        import numpy as np

        self.counts: Any = np.zeros(0, np.int64)
        self.keys: Any = np.zeros(0, np.int64)
        self.keys_max: Any = np.zeros(0, np.int64)

    def _grow(self, n: int) -> None:
        import numpy as np

        if n > len(self.counts):
            pad = n - len(self.counts)
            self.counts = np.concatenate([self.counts, np.zeros(pad, np.int64)])
            self.keys = np.concatenate([self.keys, np.zeros(pad, np.int64)])
            self.keys_max = np.concatenate([self.keys_max, np.zeros(pad, np.int64)])

    def add(self, c: Chunk, op_names: list[str], ev: _evrows.EventRows | None = None) -> None:
        """One chunk's records; `op_names`: the scanner's op table as of this chunk."""
        import numpy as np

        self.frames += len(c.status)
        rec = c.status != tf.ROW_MALFORMED
        self.malformed += int(len(rec) - np.count_nonzero(rec))
        if not rec.any():
            return
        op, nk = c.op[rec], c.nkeys[rec].astype(np.int64)
        self.records += len(op)
        named = op >= 0
        if named.any():
            ids = op[named]
            size = int(ids.max()) + 1
            self._grow(size)
            self.counts[:size] += np.bincount(ids, minlength=size)
            self.keys[:size] += np.bincount(ids, weights=nk[named], minlength=size).astype(
                np.int64)
            np.maximum.at(self.keys_max, ids, nk[named])
        if not named.all():
            for st, k in zip(c.status[rec][~named], nk[~named], strict=True):
                self.special[int(st)] += 1
                self.special_keys[int(st)] += int(k)
                self.special_max[int(st)] = max(self.special_max.get(int(st), 0), int(k))
        tm, tw = c.t_mono[rec], c.t_wall[rec]
        self.nan_ts += int(np.count_nonzero(np.isnan(tm)) + np.count_nonzero(np.isnan(tw)))
        fm = tm[~np.isnan(tm)]
        if len(fm):
            self.neg_mono += int(np.count_nonzero(fm < 0))
            prev = self.mono_last
            self.decreases += int(np.count_nonzero(np.diff(fm) < 0)) + int(
                not math.isnan(prev) and fm[0] < prev)
            if math.isnan(self.mono_first):
                self.mono_first = float(fm[0])
            self.mono_last = float(fm[-1])
            self.mono_min = float(np.fmin(self.mono_min, fm.min()))
            self.mono_max = float(np.fmax(self.mono_max, fm.max()))
        fw = tw[~np.isnan(tw)]
        if len(fw):
            self.wall_min = float(np.fmin(self.wall_min, fw.min()))
            self.wall_max = float(np.fmax(self.wall_max, fw.max()))
        if self.events is not None:
            self.events.add(c, op_names, ev)

    def result(self, tfile: TraceFile, backend: str, names: list[str],
               raw_findings: list[Finding], omitted: int = 0,
               omitted_skipped: int = 0) -> TraceSummary:
        self._grow(len(names))
        ops = [OpStats(name, int(self.counts[i]), int(self.keys[i]), int(self.keys_max[i]),
                       _ratio(int(self.keys[i]), int(self.counts[i])))
               for i, name in enumerate(names) if self.counts[i]]
        ops += [OpStats(_STATUS_NAMES[st], n, self.special_keys[st], self.special_max[st],
                        _ratio(self.special_keys[st], n)) for st, n in self.special.items()]
        ops.sort(key=lambda o: o.qualname)
        findings = _findings(raw_findings)
        skipped = sum(f.skipped_bytes for f in findings) + omitted_skipped
        span = self.mono_max - self.mono_min
        integrity = TraceIntegrity(
            ok=not findings and not omitted and self.nan_ts == 0, frames=self.frames,
            malformed_frames=self.malformed, skipped_bytes=skipped, nan_timestamps=self.nan_ts,
            negative_t_mono=self.neg_mono, t_mono_decreases=self.decreases,
            findings=findings[:MAX_FINDINGS],
            findings_omitted=max(0, len(findings) - MAX_FINDINGS) + omitted)
        return TraceSummary(
            schema=SUMMARY_SCHEMA, path=tfile.path, size_bytes=tfile.size, backend=backend,
            header=tfile.header, total_records=self.records,
            # Upstream prints max(t_mono) over records (0 when there are none) as duration.
            duration_s=max(0.0, self.mono_max) if not math.isnan(self.mono_max) else 0.0,
            t_mono_first=_opt(self.mono_first), t_mono_last=_opt(self.mono_last),
            # + 0.0: a -0.0 and a 0.0 tie, and which of them a min/max keeps differs between
            # numpy's vectorised reductions and a loop; both roads report 0.0.
            wall_start=_opt(self.wall_min + 0.0), wall_end=_opt(self.wall_max + 0.0),
            records_per_second=(self.records / span) if span > 0 else None,
            keys_total=int(sum(self.keys)) + sum(self.special_keys.values()), ops=ops,
            events=self.events.result() if self.events is not None else None,
            integrity=integrity)


class _SmallAggregate(_Aggregate):
    """`_Aggregate` over one clean scan held in Python lists (ROW_OK rows only), no numpy."""

    def _zeros(self) -> None:
        self.counts, self.keys, self.keys_max = [], [], []

    def _grow(self, n: int) -> None:
        pad = n - len(self.counts)
        if pad > 0:
            self.counts += [0] * pad
            self.keys += [0] * pad
            self.keys_max += [0] * pad

    @classmethod
    def from_tally(cls, t: TallyResult) -> _SmallAggregate:
        """The aggregate of a C summary tally (a storage trace's, so no events block)."""
        agg = cls(False)
        agg.counts, agg.keys, agg.keys_max = t.counts, t.keys, t.keys_max
        for st, (n, k, m) in t.special.items():
            agg.special[st], agg.special_keys[st], agg.special_max[st] = n, k, m
        agg.frames, agg.malformed, agg.records = t.frames, t.malformed, t.records
        agg.nan_ts, agg.neg_mono, agg.decreases = t.nan_ts, t.neg_mono, t.decreases
        agg.mono_min, agg.mono_max = t.mono_min, t.mono_max
        agg.mono_first, agg.mono_last = t.mono_first, t.mono_last
        agg.wall_min, agg.wall_max = t.wall_min, t.wall_max
        return agg

    def add_rows(self, rows: tf.Rows, nops: int, data: bytes, names: list[str]) -> None:
        self._grow(nops)
        n = len(rows.op)
        self.frames += n
        self.records += n
        counts, keys, kmax = self.counts, self.keys, self.keys_max
        for o, k in zip(rows.op, rows.nkeys, strict=True):
            counts[o] += 1
            keys[o] += k
            if k > kmax[o]:
                kmax[o] = k
        tm = [t for t in rows.t_mono if not math.isnan(t)]
        tw = [t for t in rows.t_wall if not math.isnan(t)]
        self.nan_ts += 2 * n - len(tm) - len(tw)
        if tm:
            self.neg_mono += sum(1 for t in tm if t < 0)
            self.decreases += sum(1 for a, b in itertools.pairwise(tm) if b < a)
            self.mono_first, self.mono_last = tm[0], tm[-1]
            self.mono_min, self.mono_max = min(tm), max(tm)
        if tw:
            self.wall_min, self.wall_max = min(tw), max(tw)
        if self.events is not None:
            wanted = {i for i, q in enumerate(names) if q in _evrows.EVENT_OPS}
            for o, off, flen in zip(rows.op, rows.offset, rows.length, strict=True):
                if o in wanted:
                    self.events.add_body(names[o], data[off + 4:off + 4 + flen])


def _ratio(a: int, b: int) -> float:
    return a / b if b else 0.0


def _opt(x: float) -> float | None:
    return None if math.isnan(x) else x


class _EventsAggregate:
    """Mirror of upstream's events block, tolerant of any field type. On the native
    backend the batch rows whose lenient reading the C columns reproduce exactly
    (`_evrows.ok_for_summary`) are folded from them; every other record is decoded here
    with msgspec."""

    def __init__(self, backend: str = "python") -> None:
        self._decoder = NativeEventsDecoder() if backend == "native" else None
        self.incarnations: dict[str, set[int]] = {}
        self.batches: Counter[tuple[str, str, str, bool]] = Counter()
        self.entries: Counter[str] = Counter()
        self.store_bytes = 0
        self.with_tokens = 0
        self.lifecycle: Counter[str] = Counter()
        self.bad = 0
        self._ids: dict[str, int] | None = None

    def add(self, c: Chunk, names: list[str], ev: _evrows.EventRows | None = None) -> None:
        """The chunk's events records; `ev` is the chunk's decode when the analytics pass
        already made it (the same rows, decoded once)."""
        if ev is None:
            ev = _evrows.decode(self._decoder, c, names, fingerprints=False)
        if ev is None:
            return
        idx = ev.idx
        if ev.rows is not None:
            ok = _evrows.ok_for_summary(ev.rows)
            self._from_rows(ev.rows[ok], ev.names)
            idx = idx[~ok]
        for i in idx.tolist():
            self.add_body(names[int(c.op[i])], c.window.body(int(c.offset[i]), int(c.length[i])))

    def _from_rows(self, rows: npt.NDArray[np.int64], names: list[str]) -> None:
        """`_fold` of events.batch records from their C columns, grouped: str() of a str is
        itself, of nil "None"; `backend or ""`; int(incarnation) with 0 when absent."""
        import numpy as np

        if not len(rows):
            return

        def s(code: int, absent: str, nil: str) -> str:
            return names[code] if code >= 0 else nil if code == -2 else absent

        ec, tc, bc, ic = (_evrows.codes(rows, f) for f in range(4))
        pairs, _, _ = _evrows.first_seen(np.stack([ic, rows[:, 14]], axis=1))
        for code, inc in pairs.tolist():  # incarnation: 0 unless an int (column 14)
            self.incarnations.setdefault(s(code, "?", "None"), set()).add(inc)
        keys, _, inv = _evrows.first_seen(np.stack([ec, tc, bc, rows[:, 19]], axis=1))
        for (e, t, b, shared), n in zip(keys.tolist(),
                                        np.bincount(inv, minlength=len(keys)).tolist(),
                                        strict=True):
            self.batches[(s(e, "?", "None"), s(t, "?", "None"), s(b, "", ""),
                          bool(shared))] += n
        ets, _, inv = _evrows.first_seen(ec[:, None])
        for j, n in enumerate(_evrows.group_sums(inv, len(ets), rows[:, 15])):
            event_type = s(int(ets[j, 0]), "?", "None")
            self.entries[event_type] += n
            if event_type == "store":
                mine = inv == j
                self.store_bytes += _evrows.isum(rows[mine, 16])
                self.with_tokens += _evrows.isum(rows[mine, 20])

    def add_body(self, qualname: str, body: bytes) -> None:
        """Fold one events record's body (an undecodable one is counted, not raised)."""
        try:
            raw = msgspec.msgpack.decode(body)
            self._fold(qualname, raw.get("args") or {})
        except (msgspec.DecodeError, RecursionError, ValueError, TypeError, AttributeError):
            self.bad += 1

    def _fold(self, qualname: str, args: dict[str, Any]) -> None:
        if qualname == "events.lifecycle":
            self.lifecycle[str(args.get("phase", "?"))] += 1
            return
        instance = str(args.get("instance_id", "?"))
        self.incarnations.setdefault(instance, set()).add(int(args.get("incarnation", 0)))
        event_type = str(args.get("event_type", "?"))
        entries = args.get("entries") or []
        self.batches[(event_type, str(args.get("tier", "?")), str(args.get("backend") or ""),
                      bool(args.get("shared", False)))] += 1
        self.entries[event_type] += len(entries)
        if event_type == "store":
            for e in entries:
                self.store_bytes += int(e.get("size_bytes", 0))
                if e.get("token_ids"):
                    self.with_tokens += 1

    def result(self) -> EventsSummary:
        return EventsSummary(
            instances=[InstanceSummary(k, sorted(v), max(0, len(v) - 1))
                       for k, v in sorted(self.incarnations.items())],
            batches=[BatchCount(t, tier, b, "shared" if s else "local", n)
                     for (t, tier, b, s), n in sorted(self.batches.items())],
            entries=dict(sorted(self.entries.items())), store_bytes=self.store_bytes,
            entries_with_tokens=self.with_tokens, lifecycle=dict(sorted(self.lifecycle.items())),
            undecodable_records=self.bad)
