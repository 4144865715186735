"""Issue #21 items 2, 3, 5: the packet's trace is a scrubbed `.lct` — readable by upstream
0.5.6's own `TraceReader` (loaded from the wheel without torch) and by InferGuard with the
same record counts and the same `trace stats` apart from fingerprints; no raw chunk hash in
it; fingerprints keyed per packet; escape codes from a trace printed escaped, once."""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import subprocess
import sys
import types
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from inferguard._packet import Packet
from inferguard.cli._main import main
from inferguard.collect import CollectOptions, collect_lmcache
from inferguard.lct._file import TraceFile, summarize_trace
from inferguard.lct._scrub import scrub_trace
from inferguard.lct._stats import trace_stats

from . import lct_writer as w
from .conftest import UPSTREAM

TRACES = [UPSTREAM / "storage.lct", UPSTREAM / "lookup-replay-storage.lct"]
_TRACE_PKG = "lmcache/v1/mp_observability/trace/"


def _wheel(tmp: Path) -> Path | None:
    """The lmcache 0.5.6 wheel: $INFERGUARD_LMCACHE_WHEEL, one already downloaded, or
    `pip download --no-deps lmcache==0.5.6` (skipped when none can be had)."""
    for cand in [os.environ.get("INFERGUARD_LMCACHE_WHEEL", ""),
                 *glob.glob("/tmp/wheels/lmcache-0.5.6-*.whl")]:
        if cand and Path(cand).is_file():
            return Path(cand)
    r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "lmcache==0.5.6", "-d", str(tmp)], capture_output=True, timeout=300)
    found = sorted(tmp.glob("lmcache-0.5.6-*.whl"))
    return found[0] if r.returncode == 0 and found else None


@pytest.fixture(scope="module")
def upstream_reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Upstream's `TraceReader` from the wheel's own `format.py` and `reader.py`, under
    stub parent packages (no torch, no lmcache runtime)."""
    tmp = tmp_path_factory.mktemp("wheel")
    cache = Path(os.environ.get("INFERGUARD_LIVE_CACHE", Path.home() / ".cache/inferguard-live"))
    installed = [p for p in sorted(cache.glob(f"venv/lib/python*/site-packages/{_TRACE_PKG}"
                                              "reader.py"))
                 if list(p.parents[4].glob("lmcache-0.5.6.dist-info"))]
    if installed:  # the live stage's upstream environment (lmcache 0.5.6 from its wheel)
        src = Path(str(installed[0])[:-len(_TRACE_PKG + "reader.py")])
    else:
        whl = _wheel(tmp)
        if whl is None:
            pytest.skip("lmcache 0.5.6 wheel not available")
        src = tmp / "src"
        with zipfile.ZipFile(whl) as z:
            for name in ("format.py", "reader.py"):
                z.extract(_TRACE_PKG + name, src)
    saved = {k: v for k, v in sys.modules.items() if k == "lmcache" or k.startswith("lmcache.")}
    for name in ("lmcache", "lmcache.v1", "lmcache.v1.mp_observability",
                 "lmcache.v1.mp_observability.trace"):
        mod = types.ModuleType(name)
        mod.__path__ = []
        sys.modules[name] = mod
    log = types.ModuleType("lmcache.logging")
    log.init_logger = logging.getLogger  # type: ignore[attr-defined]
    sys.modules["lmcache.logging"] = log
    mods = {}
    for name in ("format", "reader"):
        full = f"lmcache.v1.mp_observability.trace.{name}"
        spec = importlib.util.spec_from_file_location(full, src / _TRACE_PKG / f"{name}.py")
        assert spec is not None and spec.loader is not None
        mods[name] = importlib.util.module_from_spec(spec)
        sys.modules[full] = mods[name]
        spec.loader.exec_module(mods[name])
    yield mods["reader"].TraceReader
    for k in [k for k in sys.modules if k == "lmcache" or k.startswith("lmcache.")]:
        del sys.modules[k]
    sys.modules.update(saved)


def _chunk_hashes(path: Path) -> set[bytes]:
    with TraceFile(str(path)) as t:
        out: set[bytes] = set()
        for rec in t.records():
            _collect(rec.args, out)
    return out


def _collect(v: Any, out: set[bytes]) -> None:
    if isinstance(v, bytes):
        out.add(v)
    elif isinstance(v, dict):
        for x in v.values():
            _collect(x, out)
    elif isinstance(v, (list, tuple)):
        for x in v:
            _collect(x, out)
    elif hasattr(v, "__struct_fields__"):
        for f in v.__struct_fields__:
            _collect(getattr(v, f), out)


def _stats_without_paths(path: Path) -> Any:
    doc = msgspec.to_builtins(trace_stats(str(path)))

    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k != "path"}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v
    return strip(doc)


@pytest.mark.parametrize("trace", TRACES, ids=lambda p: p.name)
def test_scrubbed_trace_reads_upstream_and_here_the_same(tmp_path: Path, trace: Path,
                                                          upstream_reader: Any) -> None:
    out = tmp_path / "scrubbed.lct"
    rep = scrub_trace(trace, out, b"k" * 32)
    raw = _chunk_hashes(trace)
    assert raw and rep.hashes_replaced > 0 and rep.frames_dropped == 0
    data = out.read_bytes()
    assert not any(h in data for h in raw)  # no raw chunk hash anywhere in the bytes
    # upstream's own reader: same header, same records apart from the hashes
    with upstream_reader(str(trace)) as a, upstream_reader(str(out)) as b:
        assert a.header == b.header
        ra, rb = list(a.records()), list(b.records())
    assert len(ra) == len(rb) == rep.records
    assert [r.qualname for r in ra] == [r.qualname for r in rb]
    assert [(r.t_mono, r.t_wall) for r in ra] == [(r.t_mono, r.t_wall) for r in rb]
    # InferGuard: the same trace stats (record and key counts, reuse, lifecycle, findings)
    assert _stats_without_paths(out) == _stats_without_paths(trace)
    assert summarize_trace(str(out)).total_records == summarize_trace(str(trace)).total_records


def test_fingerprints_are_keyed_per_packet(tmp_path: Path) -> None:
    def copy(name: str, **kw: Any) -> bytes:
        _, path = collect_lmcache(CollectOptions(output_dir=str(tmp_path / name),
                                                 lmcache_trace_files=[str(TRACES[0])], **kw))
        note = Packet.load(path).inputs[0].note or ""
        assert ("raw copy" if kw.get("include_raw_trace") else "scrubbed") in note
        return (path / "inputs" / "trace" / TRACES[0].name).read_bytes()
    a, b = copy("a"), copy("b")
    assert a != b and len(a) == len(b)  # unjoinable: each packet its own key
    keyf = tmp_path / "key"
    keyf.write_bytes(os.urandom(32))
    c = copy("c", trace_fingerprint_key_file=str(keyf))
    d = copy("d", trace_fingerprint_key_file=str(keyf))
    assert c == d != a  # joinable only on request
    blob = b"".join(p.read_bytes() for p in (tmp_path / "c").rglob("*") if p.is_file())
    assert keyf.read_bytes() not in blob  # the key is never written
    raw = copy("raw", include_raw_trace=True)
    assert raw == TRACES[0].read_bytes()
    again = Packet.read(tmp_path / "a").of_kind("trace")[0]
    assert again.status == "ok" and again.facts.summary.total_records == 74


def test_salts_tokens_and_config_secrets_scrubbed(tmp_path: Path) -> None:
    cfg = {"l2_adapter": "redis://u:pw-in-config@h:1", "chunk_size": 256}
    trace = tmp_path / "t.lct"
    key = w.object_key(1, salt="tenant-acme")
    rec = w.record(w.STORAGE_PREFIX + "reserve_write",
                   {"keys": [key], "layout_desc": w.layout(), "mode": "new"}, 0.1, 1.8e9)
    trace.write_bytes(w.trace(rec, head=w.header(variant="schema2", config=cfg)))
    out = tmp_path / "s.lct"
    rep = scrub_trace(trace, out, b"x" * 32, redact_config=lambda s: s.replace(
        "u:pw-in-config@", "<redacted>@"))
    data = out.read_bytes()
    assert b"tenant-acme" not in data and b"pw-in-config" not in data and rep.config_redacted
    s = summarize_trace(str(out))
    assert s.header.sm_config_digest_ok is True and s.total_records == 1


def test_escape_codes_in_a_trace_are_printed_escaped_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    esc = "\x1b]52;c;ZXZpbA==\x07"  # an OSC 52 clipboard write
    trace = tmp_path / "e.lct"
    trace.write_bytes(w.trace(
        w.record(f"evil{esc}.op", {"keys": []}, 0.1, 1.8e9),
        head=w.header(level=f"storage{esc}", level_meta={f"m{esc}": f"v{esc}"})))
    assert main(["trace", "info", str(trace)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert out.count("\\x1b]52;c;ZXZpbA==\\x07") >= 4  # qualname, level, meta key and value
    assert "\\\\x1b" not in out  # escaped once, never twice
