"""Native vs pure Python on every fuzz corpus entry: same result or the same error (the
.lct entries: scan, key analytics and the scrubbed copy; the Prometheus entries: the model,
and the family facts the metrics evidence keeps, by prom_facts.c where its road is taken).

    python fuzz/differential.py LCT_CORPUS_DIR PROM_CORPUS_DIR [MORE_LCT_DIRS ...]

Exits 1 on the first disagreement and copies the input to fuzz-out/disagreements/.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inferguard import TraceFile, native_available  # noqa: E402
from inferguard.lct._scrub import scrub_trace  # noqa: E402
from inferguard.lct._stats import trace_stats  # noqa: E402
from inferguard.prom._brief import clean_facts  # noqa: E402
from inferguard.prom._model import parse_text  # noqa: E402
from tests.test_prom_fuzz import model  # noqa: E402

OUT = ROOT / "fuzz-out" / "disagreements"


def scrub_result(data: bytes, backend: str) -> object:
    """The scrubbed copy (bytes and report) of the input as a trace file."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.lct"), os.path.join(tmp, "out.lct")
        with open(src, "wb") as f:
            f.write(data)
        try:
            rep = scrub_trace(src, dst, b"differential-key", backend=backend)  # type: ignore[arg-type]
        except ValueError as exc:
            return ("error", type(exc).__name__, str(exc).replace(src, ""))
        with open(dst, "rb") as f:
            return (f.read(), rep)


def lct_result(data: bytes, backend: str) -> object:
    """The columnar scan, the full key analytics (backend name aside) and the scrub."""
    return (_scan_result(data, backend), scrub_result(data, backend))


def _scan_result(data: bytes, backend: str) -> object:
    try:
        with TraceFile(data, window_size=1 << 16) as t:
            c = t.scan(backend=backend)  # type: ignore[arg-type]
            stats = trace_stats(t, backend=backend)  # type: ignore[arg-type]
            analytics = msgspec.json.encode(msgspec.structs.replace(
                stats, backend="", summary=msgspec.structs.replace(stats.summary, backend="")))
            return (c.offset.tolist(), c.length.tolist(), c.t_mono.tobytes(),
                    c.t_wall.tobytes(), c.op.tolist(), c.nkeys.tolist(), c.status.tolist(),
                    c.ops, [(f.kind, f.offset, f.detail, f.skipped_bytes) for f in c.findings],
                    analytics)
    except ValueError as exc:
        return ("error", type(exc).__name__, str(exc))


def prom_result(data: bytes, backend: str) -> object:
    if not data:
        return None
    fmt = "openmetrics" if data[0] & 1 else "prometheus"
    try:
        return model(data[1:], backend, fmt)
    except ValueError as exc:
        return ("error", type(exc).__name__, str(exc))


def facts_result(data: bytes, backend: str) -> object:
    """The family facts and service instance ids of a 0.0.4 entry: on the native side by the
    road without numpy where it is taken, else (and on the Python side) by the model."""
    if not data or data[0] & 1:
        return None
    text = data[1:]
    try:
        if backend == "native":
            got = clean_facts(text, "<fuzz>", 64)
            if got is not None:
                return repr(got.families), sorted(got.service_instance_ids)
        exp = parse_text(text, path="<fuzz>", backend=backend)  # type: ignore[arg-type]
        ids: set[str] = set()
        for name in ("target_info", "target"):
            if exp.family(name) is not None:
                ids |= exp.label_values(name, "service_instance_id")
        return repr(exp.family_facts(64)), sorted(ids)
    except ValueError as exc:
        return ("error", type(exc).__name__, str(exc))


def main(lct_dir: str, prom_dir: str, *more_lct: str) -> int:
    if not native_available():
        print("native backend not built: nothing to compare", file=sys.stderr)
        return 2
    counts = {}
    jobs = [("lct", [lct_dir, *more_lct], lct_result), ("prom", [prom_dir], prom_result),
            ("facts", [prom_dir], facts_result)]
    for name, dirs, fn in jobs:
        n = 0
        for p in sorted(q for d in dirs for q in Path(d).iterdir()):
            data = p.read_bytes()
            if fn(data, "native") != fn(data, "python"):
                OUT.mkdir(parents=True, exist_ok=True)
                shutil.copy(p, OUT / f"{name}-{p.name}")
                print(f"DISAGREEMENT ({name}): {p}", file=sys.stderr)
                return 1
            n += 1
        counts[name] = n
    print("differential: native == python on " +
          ", ".join(f"{v} {k} inputs" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
