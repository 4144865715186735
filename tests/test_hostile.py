"""Hostile input: every case ends in a clear, bounded error or a finding, never a crash,
and the rest of a packet survives. Bounds are in docs/reliability.md."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import msgspec
import pytest

from inferguard import (
    CollectOptions,
    TraceFile,
    collect_and_judge,
    native_available,
    parse_text,
    summarize_trace,
)
from inferguard.evidence._logs import read_log
from inferguard.evidence._readers import load_evidence_set, read_evidence
from inferguard.lct._frame import decode_body

from . import lct_writer as w
from .conftest import FIXTURES, UPSTREAM

TINY = w.record("q", {}, 1.0, 2.0)


def test_4gib_length_prefix_on_a_small_file(tmp_path: Path, backend: str) -> None:
    p = tmp_path / "t.lct"
    p.write_bytes(w.trace(TINY) + struct.pack(">I", 0xFFFFFFFF) + b"\x85" * 100)
    t0 = time.perf_counter()
    s = summarize_trace(p)
    assert time.perf_counter() - t0 < 5  # bounded: nothing is read past the file
    assert s.total_records == 1
    (f,) = s.integrity.findings
    assert f.kind == "truncated_frame" and "4294967295" in f.detail


def test_millions_of_tiny_frames(tmp_path: Path, backend: str) -> None:
    n = 2_000_000 if backend == "native" else 200_000
    p = tmp_path / "t.lct"
    p.write_bytes(w.trace(*[TINY] * 1) + w.frame(TINY) * (n - 1))
    s = summarize_trace(p)
    assert s.total_records == n and s.integrity.ok


def test_millions_of_empty_frames_keep_findings_bounded(tmp_path: Path, backend: str) -> None:
    n = 1_000_000 if backend == "native" else 100_000
    # Empty frames interleaved with records: every one is malformed and resynchronised.
    p = tmp_path / "t.lct"
    p.write_bytes(w.frame(w.header()) + (b"\x00\x00\x00\x00" + w.frame(TINY)) * (n // 2))
    s = summarize_trace(p)
    assert s.total_records == n // 2
    assert len(s.integrity.findings) <= 1000
    assert s.integrity.findings_omitted > 0 and s.integrity.malformed_frames == n // 2


def test_msgpack_nested_100000_deep(backend: str) -> None:
    body = w.pack({"type": "record", "t_mono": 1.0, "t_wall": 2.0, "qualname": "deep"})
    deep = b"\x85" + body[1:] + b"\xa4args" + b"\x81\xa1k" + b"\x91" * 100_000 + b"\xc0"
    data = w.trace(deep, TINY)
    with TraceFile(data) as t:
        cols = t.scan()
        recs = list(t.records())
    assert cols.status.tolist() == [0, 0]  # any depth is well-formed msgpack
    assert recs[0].qualname == "deep" and "__inferguard_error__" in recs[0].args
    assert decode_body(deep).status == 0


@pytest.mark.parametrize("declared", [b"\xdb\x7f\xff\xff\xff", b"\xc6\xff\xff\xff\xff",
                                      b"\xdf\xff\xff\xff\xff", b"\xdd\x0f\xff\xff\xff"])
def test_declared_sizes_beyond_the_frame(declared: bytes, backend: str) -> None:
    bad = w.pack({"type": "record", "t_mono": 1.0, "t_wall": 2.0, "qualname": "q"})
    bad = b"\x85" + bad[1:] + b"\xa4args\x81\xa1k" + declared + b"xx"
    s = summarize_trace(w.trace(bad, TINY))
    assert s.total_records == 1 and s.integrity.malformed_frames == 1
    assert s.integrity.findings[0].kind == "malformed_record"


def test_invalid_utf8_qualname_is_a_malformed_record(backend: str) -> None:
    bad = w.pack({"type": "record", "t_mono": 1.0, "t_wall": 2.0}) + b""
    bad = b"\x85" + bad[1:] + b"\xa8qualname\xa2\xff\xfe\xa4args\x80"
    s = summarize_trace(w.trace(bad, TINY))
    assert s.integrity.malformed_frames == 1
    assert "not valid UTF-8" in s.integrity.findings[0].detail


def test_metrics_line_of_100_mb(backend: str) -> None:
    value = b"x" * (100 << 20)
    data = b'# TYPE m gauge\nm{big="' + value + b'"} 1\nok 2\n'
    t0 = time.perf_counter()
    exp = parse_text(data)
    assert time.perf_counter() - t0 < 60
    fam = exp.family("m")
    assert fam is not None and len(fam.samples[0].labels[0][1]) == 100 << 20
    assert exp.family("ok") is not None


def test_metrics_of_only_comments(tmp_path: Path) -> None:
    p = tmp_path / "c.prom"
    p.write_bytes(b"# just a comment\n" * 1000)
    ev = read_evidence("lmcache_metrics", p)
    assert ev.status == "ok" and ev.facts.summary.families == 0


def test_label_value_with_every_escape(backend: str) -> None:
    exp = parse_text(b'm{a="\\\\ \\" \\n end"} 1\n')
    (s,) = exp.family("m").samples  # type: ignore[union-attr]
    assert s.labels == (("a", '\\ " \n end'),)


def test_one_million_label_sets(backend: str) -> None:
    n = 1_000_000 if backend == "native" else 200_000
    data = b"# TYPE m counter\n" + b"".join(b'm_total{id="%d"} 1\n' % i for i in range(n))
    exp = parse_text(data)
    assert exp.sample_count("m_total") == n or len(exp) == n
    assert len(exp.label_values("m_total", "id")) == n


@pytest.mark.parametrize("content,what", [
    (b"42", "a number"),
    (b"[" * 10_000 + b"]" * 10_000, "nested 10,000 deep"),
    (b'{"evidence": "nope"}', "wrong types"),
])
def test_evidence_json_hostile(tmp_path: Path, content: bytes, what: str) -> None:
    p = tmp_path / "e.json"
    p.write_bytes(content)
    (ev,) = load_evidence_set(p, "http")
    assert ev.status == "malformed" and "not an InferGuard evidence file" in ev.problems[0].message


def test_evidence_json_of_1_gb(tmp_path: Path) -> None:
    p = tmp_path / "huge.json"
    with open(p, "wb") as f:  # sparse: 1 GiB on paper, nothing written
        f.write(b'"')
        f.truncate(1 << 30)
    t0 = time.perf_counter()
    (ev,) = load_evidence_set(p, "log")
    assert time.perf_counter() - t0 < 2
    assert ev.status == "malformed" and "limit" in ev.problems[0].message


@pytest.mark.parametrize("kind", ["otel", "lookup_hash", "trace_replay"])
def test_json_lines_nested_10000_deep(tmp_path: Path, kind: str) -> None:
    p = tmp_path / "lookup_hashes_20260101_000000_000000.jsonl"
    p.write_bytes(b'{"a": ' * 10_000 + b"1" + b"}" * 10_000 + b"\n")
    ev = read_evidence(kind, p)
    assert ev.status == "malformed" and ev.problems


def test_log_terminal_escapes_never_echoed(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "evil.log"
    p.write_bytes(b"LMCache INFO: Stored 4 tokens in 0.1 seconds \x1b]2;owned\x07\x1b[2J\n")
    ev = read_log(p)
    text = json.dumps(ev.facts.hints[0].examples[0].text)
    assert "\\u001b" not in text and "\\u0007" not in text
    from inferguard.cli._main import main

    assert main(["collect-lmcache", "--output-dir", str(tmp_path / "pk"), "--lmcache-log-file",
                 str(p)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out


def test_damaged_inputs_never_abort_a_packet(tmp_path: Path) -> None:
    bad_lct = tmp_path / "bad.lct"
    bad_lct.write_bytes(struct.pack(">I", 0xFFFFFFFF) + b"\x00" * 10)
    bad_prom = tmp_path / "bad.prom"
    bad_prom.write_bytes(b"\xff\xfe{{{{ 1 2 3\n" * 100)
    bad_otel = tmp_path / "bad.jsonl"
    bad_otel.write_bytes(b"[" * 50_000)
    packet, path = collect_and_judge(CollectOptions(
        output_dir=str(tmp_path / "p"), lmcache_trace_files=[str(bad_lct)],
        lmcache_metrics_files=[str(bad_prom)], lmcache_otel_files=[str(bad_otel)],
        lmcache_log_files=[str(UPSTREAM / "logs" / "mp_server.log")]))
    statuses = {e.kind: e.status for e in packet.evidence}
    assert statuses == {"trace": "malformed", "lmcache_metrics": "malformed",
                        "otel": "malformed", "log": "ok"}
    assert (path / "metrics" / "lmcache_compat_report.json").exists()


def test_fuzz_regression_inputs_agree(backend: str) -> None:
    """Every input the fuzzers ever flagged stays fixed, on both backends."""
    for p in sorted((FIXTURES / "fuzz-regressions").rglob("*")):
        if not p.is_file():
            continue
        data = p.read_bytes()
        if p.parent.name == "prom":
            fmt = "openmetrics" if data and data[0] & 1 else "prometheus"
            exp = parse_text(data[1:], format=fmt)  # type: ignore[arg-type]
            assert len(exp.families) >= 0
        else:
            try:
                with TraceFile(data) as t:
                    t.summary()
            except ValueError:
                pass


def test_truncated_canonical_key_is_malformed_on_both_backends() -> None:
    """A fuzz input (fuzz/run, lct_keys harness) whose first ObjectKey stops inside the
    canonical layout's kv_rank: the Python extractor's fast path raised its internal `_Bad`
    out of the analytics; it must fall back to the per-key parser and agree with C."""
    from inferguard.lct._stats import trace_stats

    data = (FIXTURES / "fuzz-regressions" / "lct_keys" / "truncated-canonical-rank").read_bytes()
    out = {}
    for backend in ("native", "python"):
        if backend == "native" and not native_available():
            continue
        with TraceFile(data, window_size=1 << 16) as t:
            s = trace_stats(t, backend=backend)  # type: ignore[arg-type]
        out[backend] = msgspec.json.encode(msgspec.structs.replace(
            s, backend="", summary=msgspec.structs.replace(s.summary, backend="")))
    assert len(set(out.values())) == 1
