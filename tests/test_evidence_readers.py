"""Evidence readers on real LMCache 0.5.6 output and on hand-made damage."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from inferguard.evidence._http import HttpFacts, capture_path, read_http_capture_dir
from inferguard.evidence._launch import LaunchFacts, parse_launch_text
from inferguard.evidence._logs import LogFacts, read_log, read_log_bytes, safe_text
from inferguard.evidence._lookup_hashes import LookupHashFacts, read_lookup_hashes
from inferguard.evidence._model import Evidence, EvidenceSource
from inferguard.evidence._otel import OtelFacts, read_otel
from inferguard.evidence._readers import decode_evidence, read_evidence
from inferguard.evidence._redact import filter_env
from inferguard.evidence._replay import ReplayFacts, read_replay, read_replay_bytes

from .conftest import FIXTURES, UPSTREAM


def roundtrip(ev: Evidence) -> Evidence:
    back = decode_evidence(msgspec.json.decode(msgspec.json.encode(ev)))
    assert back == ev
    return back


def test_http_capture_facts() -> None:
    ev = roundtrip(read_http_capture_dir(UPSTREAM / "http"))
    f = ev.facts
    assert isinstance(f, HttpFacts) and ev.status == "ok"
    assert f.healthy is True
    assert (f.version, f.lmcache_version, f.commit) == ("0.5.6-g3e11e108", "0.5.6", "g3e11e108")
    assert f.engine_type == "MPCacheServer" and f.chunk_size == 16
    assert f.hash_algorithm == "blake3"
    assert f.l1_capacity_bytes == 268435456 and f.l1_used_bytes == 131072
    assert f.num_l2_adapters == 0 and f.l2_adapters == []
    assert f.periodic_threads_healthy is True and f.unhealthy_threads == []
    assert "lmcache-mp-worker-reaper" in f.periodic_threads
    assert f.route_table_paths == 29 and f.unknown_routes == []
    # State-changing routes are listed as skipped, with why.
    skipped = {(s.method, s.path) for s in f.skipped}
    assert ("POST", "/cache/clear") in skipped and ("POST", "/run_script") in skipped
    assert ("DELETE", "/cache/objects") in skipped and ("POST", "/metrics/reset") in skipped
    codes = {r.path: r.status_code for r in f.routes}
    assert codes["/reconfigure/dax/l1/status"] == 409
    # The live collector never GETs /cache/objects (raw cache keys) or every thread's stack:
    # a capture of them is neither read nor copied (issue #21).
    assert "/cache/objects" not in codes and "/threads" not in codes
    assert f.ignored_captures == ["GET_cache_objects.body", "GET_threads.body"]


def test_http_capture_templated_and_query_routes() -> None:
    """Real captures (0.5.7rc2 server; its route table equals 0.5.6's) of templated routes
    (/periodic-threads/{thread_name}, /quota/{cache_salt}, /reconfigure/{backend}/l2/status,
    /cache/prefetches/{request_id}) and a query string (/cache/objects?tier=l1): all known
    (no unknown capture), so the evidence stays ok; none is a route live collection GETs,
    so none is read (the live allow-list applies to captures too)."""
    ev = roundtrip(read_http_capture_dir(FIXTURES / "lmcache-0.5.7rc2" / "http"))
    assert ev.status == "ok" and ev.problems == []
    f = ev.facts
    assert isinstance(f, HttpFacts) and f.unknown_routes == []
    codes = {r.path: r.status_code for r in f.routes}
    ignored = set(f.ignored_captures)
    for name in ("periodic-threads_lmcache-mp-worker-reaper", "quota_nosuchsalt",
                 "reconfigure_fs_l2_status", "cache_objects_tier_l1",
                 "cache_prefetches_req-0-cold", "periodic-threads_DeviceHostFuncDispatcher"):
        assert f"GET_{name}.body" in ignored, name
    assert not any(p.startswith(("/cache/", "/periodic-threads/", "/quota/nosuchsalt"))
                   for p in codes)


@pytest.mark.parametrize(("name", "path"), [
    ("periodic-threads_a_b", "/periodic-threads/a_b"),
    ("periodic-threads-health", "/periodic-threads-health"),
    ("quota_salt1", "/quota/salt1"),
    ("reconfigure_fs_l2_status", "/reconfigure/fs/l2/status"),
    ("reconfigure_dax_l1_status", "/reconfigure/dax/l1/status"),
    ("cache_objects_model_name_m_1", "/cache/objects?model_name=m_1"),
    ("threads?name=lmcache", "/threads?name=lmcache"),
    ("threads_name_lmcache", "/threads?name=lmcache"),
    ("loglevel?logger_name=lmcache", "/loglevel?logger_name=lmcache"),
    ("cache_objects?nope=1", None), ("quota_", None), ("no_such_route", None),
])
def test_capture_names(name: str, path: str | None) -> None:
    assert capture_path(name) == path


def test_env_is_filtered_and_redacted() -> None:
    env = {"LMCACHE_CHUNK_SIZE": "256", "LMCACHE_REMOTE_AUTH_TOKEN": "s3cret", "HOME": "/root",
           "AWS_SECRET_ACCESS_KEY": "x", "PYTHONHASHSEED": "0", "HF_TOKEN": "hf_abc"}
    kept, dropped = filter_env(env)
    assert kept == {"LMCACHE_CHUNK_SIZE": "256", "LMCACHE_REMOTE_AUTH_TOKEN": "<redacted>",
                    "PYTHONHASHSEED": "0"}
    assert dropped == 3


def test_http_capture_with_raw_env_never_keeps_it(tmp_path: Path) -> None:
    (tmp_path / "GET_env.body").write_text(json.dumps({"HF_TOKEN": "hf_secret_value",
                                                       "LMCACHE_X": "1"}))
    (tmp_path / "GET_healthcheck.body").write_text('{"status":"unhealthy","reason":"engine not '
                                                   'initialized"}')
    (tmp_path / "GET_healthcheck.headers").write_text("HTTP/1.1 503 Service Unavailable\n")
    ev = read_http_capture_dir(tmp_path)
    assert "hf_secret_value" not in msgspec.json.encode(ev).decode()
    assert ev.facts.env == {"LMCACHE_X": "1"}
    assert ev.facts.healthy is False and ev.facts.health_reason == "engine not initialized"


def test_mp_server_log_hints() -> None:
    ev = roundtrip(read_log(UPSTREAM / "logs" / "mp_server.log"))
    f = ev.facts
    assert isinstance(f, LogFacts)
    counts = {h.id: h.count for h in f.hints}
    assert counts["mp_cache_server_running"] == 1
    assert counts["mp_stored"] == 8 and counts["mp_retrieved"] == 14
    assert counts["mp_prefetch_completed"] == 14
    assert "vllm_v1_connector" not in counts and "stale_connector" not in counts
    run = next(h for h in f.hints if h.id == "mp_cache_server_running").examples[0]
    assert run.values == {"transport": "zmq", "host": "127.0.0.1", "port": "15555"}
    assert run.line == 37 and "\x1b" not in run.text
    pull = next(h for h in f.hints if h.id == "mp_metrics_pull").examples[0]
    assert pull.values["instance_id"] == "live-packet-A"


def test_blend_log_sees_pressure_and_tracebacks() -> None:
    f = read_log(UPSTREAM / "logs" / "blend_server.log").facts
    assert f.count("allocation_failure") == 13 and f.count("traceback") == 4
    assert f.count("l1_eviction_triggered") == 2


@pytest.mark.parametrize("line,hint", [
    ("(EngineCore_DP0 pid=12) INFO 11-28 [factory.py:51] Creating v1 connector with name: "
     "LMCacheConnectorV1Dynamic and engine_id: x", "vllm_v1_dynamic_connector"),
    ("INFO Creating v1 connector with name: LMCacheConnectorV1 and engine_id: y",
     "vllm_v1_connector"),
    ("INFO Creating v1 connector with name: LMCacheMPConnector and engine_id: z",
     "vllm_mp_connector"),
    ("kv_transfer_config={'kv_connector': 'LMCacheConnector'}", "stale_connector"),
    ("non-default args: {'kv_offloading_backend': 'lmcache'}", "kv_offloading_backend"),
    ("python -m sglang.launch_server --enable-lmcache --model m", "sglang_enable_lmcache"),
    ("Using LMCRadixCache", "sglang_lmc_radix_cache"),
    ("HiCache storage backend ready", "sglang_hicache"),
    ("LMCache INFO: Initialized NONE_HASH=12345 from vLLM (>= PR#20511)", "none_hash"),
    ("LMCache WARNING: Using builtin hash without PYTHONHASHSEED set.", "hash_seed_warning"),
    ("Starting P2P backend batched get handler at 10.0.0.1:8200", "p2p_handler_start"),
    ("PD mode enabled with save_unfull_chunk=True - all KV cache", "pd_enabled"),
    ("LMCache WARNING: EventBus queue full, dropping event", "event_bus_full"),
])
def test_log_hint_patterns(line: str, hint: str) -> None:
    f = read_log_bytes(line.encode(), EvidenceSource(path="<test>")).facts
    assert hint in {h.id for h in f.hints}, line


def test_extra_logging_lines() -> None:
    """The real 0.5.6 --enable-extra-logging lines: L1 memory usage every interval and the
    L0<->L1 window/cumulative pairs, with their values captured."""
    f = read_log(UPSTREAM / "logs" / "extra_logging_lines.txt").facts
    assert isinstance(f, LogFacts)
    hints = {h.id: h for h in f.hints}
    assert hints["extra_l1_memory_usage"].count == 52
    assert hints["extra_l1_memory_usage"].examples[0].values == {
        "used_gib": "0.00", "total_gib": "0.25", "percent": "0.0"}
    stats = hints["extra_l0_l1_stats"]
    assert stats.count == 8
    assert [e.values["window"] for e in stats.examples[:2]] == ["last 2.0s", "cumulative"]
    assert stats.examples[1].values == {
        "device": "cpu", "window": "cumulative", "store_ops": "4", "store_tokens": "192",
        "store_gb": "0.00", "store_gbps": "0.02GB/s", "retrieve_ops": "2",
        "retrieve_tokens": "128", "retrieve_gb": "0.00", "retrieve_gbps": "0.04GB/s"}
    # A side with no timed ops reads avg_copy=n/a (extra_stats.py _format_side).
    line = ("L0<->L1 stats [cpu] last 2.0s: store ops=0 tokens=0 size=0.00GB avg_copy=n/a | "
            "retrieve ops=1 tokens=64 size=0.00GB avg_copy=0.04GB/s")
    (h,) = read_log_bytes(line.encode(), EvidenceSource(path="<t>")).facts.hints
    assert h.examples[0].values["store_gbps"] == "n/a"


def test_lookup_hash_logger_start_line() -> None:
    line = ("[2026-11-28 02:43:05,100] LMCache INFO: LookupHashLoggingSubscriber started: "
            "output_dir=/data/lh, rotation_interval=20s, rotation_max_size=1500, max_files=3, "
            "existing_files=3 (lookup_hash.py:112:lmcache.v1.mp_observability.subscribers."
            "logging.lookup_hash)")
    f = read_log_bytes(line.encode(), EvidenceSource(path="<t>")).facts
    hints = {h.id: h for h in f.hints}
    assert "lookup_hash_logging" in hints  # the older row still matches
    assert hints["lookup_hash_logger_start"].examples[0].values == {
        "dir": "/data/lh", "rotation_interval_s": "20", "rotation_max_size": "1500",
        "max_files": "3", "existing_files": "3"}


def test_log_hostile_content() -> None:
    data = (b"\x1b[31mLMCache ERROR:\x1b[0m Traceback (most recent call last)\n"
            b"Stored 5 tokens in 0.1 seconds \x1b]0;pwned\x07\n"
            + b"x" * 5000 + b"\n" + b"\xff\xfe Retrieved 3 tokens in 0.2 seconds\n")
    ev = read_log_bytes(data, EvidenceSource(path="<t>"))
    f = ev.facts
    assert f.lines == 4 and f.long_lines == 1 and f.undecodable_lines == 1
    assert ev.status == "partial"
    for h in f.hints:
        for ex in h.examples:
            assert "\x1b" not in ex.text and "\x07" not in ex.text
    assert safe_text("a\x1b[2Jb") == "a\\x1b[2Jb"


def test_otel_protobuf_json_mapping() -> None:
    ev = roundtrip(read_otel(UPSTREAM / "otel" / "mp_otlp_traces.jsonl"))
    f = ev.facts
    assert isinstance(f, OtelFacts)
    assert f.id_encoding == "base64" and f.service_instance_ids == ["live-packet-C"]
    req = f.span("request")
    assert req is not None and req.count == 10
    assert req.numeric_sums["requested_tokens"] == 896 and req.numeric_sums["hit_tokens"] == 576
    assert f.root_spans == {"request": 10} and f.orphan_spans == 0
    assert [(e.parent, e.child, e.count) for e in f.edges] == [
        ("request", "mp.lookup_prefetch", 10)]
    look = f.span("mp.lookup_prefetch")
    assert look is not None and look.string_values["model_name"] == {"test-model": 10}


def test_otel_hex_ids_and_types(tmp_path: Path) -> None:
    span = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
            "name": "mp.store", "startTimeUnixNano": 1000000, "endTimeUnixNano": 3000000,
            "attributes": [{"key": "stored_count", "value": {"stringValue": "4"}},
                           {"key": "ok", "value": {"boolValue": True}},
                           {"key": "lst", "value": {"arrayValue": {"values": [
                               {"intValue": 1}]}}}],
            "status": {"code": 2}}
    doc = {"resourceSpans": [{"resource": {"attributes": []},
                              "scopeSpans": [{"scope": {"name": "s"}, "spans": [span]}]}]}
    p = tmp_path / "spans.jsonl"
    p.write_text(json.dumps(doc) + "\nnot json\n")
    ev = read_otel(p)
    assert ev.status == "partial" and ev.problems[0].line == 2
    s = ev.facts.span("mp.store")
    assert s.count == 1 and s.errors == 1 and s.duration_ms_max == 2.0
    assert s.numeric_sums == {"stored_count": 4.0}
    assert ev.facts.id_encoding == "hex"


def test_otel_metrics_lines_and_blend_tree() -> None:
    m = read_otel(UPSTREAM / "otel" / "mp_otlp_metrics.jsonl").facts
    assert m.metric_lines > 0 and "lmcache_mp.l1_eviction_loop_ticks" in m.metric_names
    by = {x.name: x for x in m.metrics}
    # Prometheus names as the 0.5.6 scrape spells them (live-mp-run-findings.md §1).
    assert by["lmcache_mp.l1_write"].prometheus_name == "lmcache_mp_l1_write_chunks_total"
    assert by["lmcache_mp.lookup_hit"].prometheus_name == "lmcache_mp_lookup_hit_tokens_total"
    assert by["lmcache_mp.l1_chunk_reuse_gap"].prometheus_name == (
        "lmcache_mp_l1_chunk_reuse_gap_seconds")
    assert by["lmcache_mp.real_reuse_gap_objects"].prometheus_name == (
        "lmcache_mp_real_reuse_gap_objects")
    assert by["lmcache_mp.l1_memory_usage_bytes"].metric_type == "gauge"
    # Cumulative counters: the latest export's value, not a sum over the three exports.
    assert by["lmcache_mp.l1_write"].metric_type == "counter"
    assert by["lmcache_mp.l1_write"].total == 20.0
    assert by["lmcache_mp.l1_chunk_reuse_gap"].total == 36.0  # histogram: its count
    b = read_otel(UPSTREAM / "otel" / "blend_otlp_traces.jsonl").facts
    edges = {(e.parent, e.child) for e in b.edges}
    assert ("cb.request", "cb.lookup") in edges and ("cb.retrieve", "cb.scatter") in edges


def test_lookup_hashes_never_keep_raw_hashes() -> None:
    d = UPSTREAM / "lookup_hashes"
    ev = roundtrip(read_lookup_hashes(d))
    f = ev.facts
    assert isinstance(f, LookupHashFacts)
    assert f.files == 7 and f.lookups == 20 and f.chunks_total == 96
    assert {m.model_name: m.lookups for m in f.models} == {
        "llama-alpha": 6, "qwen-beta": 4, "test-model": 10}
    assert f.chunks_distinct == 24 and f.chunks_repeated == 72
    assert f.rotation_counters == list(range(7)) and f.missing_rotation_counters == []
    assert (f.rotated_away_counters, f.files_lost_at_least, f.reused_counters,
            f.counts_at_least) == (0, 0, [], False)
    out = msgspec.json.encode(ev).decode()
    raw = set()
    for p in d.iterdir():
        for line in p.read_text().splitlines():
            for h in json.loads(line)["chunk_hashes"]:
                raw.add(h.removeprefix("0x"))
                raw.add(h.removeprefix("0x")[:16])
    assert raw and not any(h in out for h in raw)


def test_lookup_hashes_bad_lines(tmp_path: Path) -> None:
    p = tmp_path / "lookup_hashes_20260101_000000_000003.jsonl"
    p.write_bytes(b'{"request_id":"a","model_name":"m","chunk_hashes":["0x01"],"seq_len":16}\n'
                  b"garbage\n[1,2]\n{\"request_id\": 1}\n")
    ev = read_lookup_hashes(p)
    assert ev.status == "partial" and ev.facts.lookups == 1
    assert [pr.line for pr in ev.problems] == [2, 3, 4]


@pytest.mark.parametrize("name,form", [
    ("trace_replay_ops.csv", "ops_csv"), ("trace_replay_summary.json", "summary_json"),
    ("replay_records.jsonl", "records_jsonl"), ("replay_stdout.txt", "terminal_table")])
def test_replay_forms(name: str, form: str) -> None:
    ev = roundtrip(read_replay(UPSTREAM / "replay" / name))
    f = ev.facts
    assert isinstance(f, ReplayFacts) and f.form == form and ev.status == "ok"
    if form != "terminal_table":
        ops = {o.qualname.rsplit(".", 1)[-1]: o.count for o in f.ops}
        assert ops["submit_prefetch_task"] == 20 and ops["reserve_write"] == 11
    else:
        assert (f.replayed, f.skipped, f.failed, f.digest_match) == (55, 0, 0, False)


def test_replay_jsonl_percentiles_match_upstream_summary() -> None:
    jl = read_replay(UPSTREAM / "replay" / "replay_records.jsonl").facts
    js = read_replay(UPSTREAM / "replay" / "trace_replay_summary.json").facts
    for a, b in zip(jl.ops, js.ops, strict=True):
        assert a.qualname == b.qualname and a.count == b.count
        assert a.p50_ms == b.p50_ms and a.p90_ms == b.p90_ms and a.max_ms == b.max_ms


def test_replay_log_is_evidence_not_malformed() -> None:
    """The replay's stderr alone (the real 0.5.7rc2 log lines, table cut away) is read as
    a replay log: records, progress, and the failures `failed` hides, counted without any
    ObjectKey (raw hashes stay in the reader)."""
    text = (FIXTURES / "lmcache-0.5.7rc2" / "replay" / "replay_stdout.txt").read_bytes()
    log = b"\n".join(ln for ln in text.splitlines() if b"LMCache" in ln)
    bad = (b"[2026-12-01 22:18:42,421] LMCache ERROR: Failed to read prefetched object "
           b"ObjectKey(chunk_hash=b'\\xde\\xad', model_name='m') from L1 storage: The "
           b"specified key does not exist. (storage_manager.py:489:lmcache.v1.x)\n"
           b"[2026-12-01 22:18:42,422] LMCache WARNING: L1Manager: finish read on "
           b"non-existing key ObjectKey(chunk_hash=b'\\xde\\xad'), potential inconsistent "
           b"data might be read (l1_manager.py:414:lmcache.v1.y)\n")
    ev = roundtrip(read_replay_bytes(log + b"\n" + bad, EvidenceSource(path="<t>"), "replay.err"))
    f = ev.facts
    assert ev.status == "ok" and isinstance(f, ReplayFacts) and f.form == "replay_log"
    assert (f.records, f.log_records_ok, f.log_records_failed, f.handler_raised) == (74, 74, 0, 0)
    assert (f.failed_reads, f.reads_of_missing_keys, f.allocation_failures) == (1, 1, 0)
    assert f.failed_read_reasons == {"The specified key does not exist.": 1}
    out = msgspec.json.encode(ev).decode()
    assert "ObjectKey" not in out and "chunk_hash" not in out and "xde" not in out


def test_launch_commands() -> None:
    f, problems = parse_launch_text((UPSTREAM / "blend_cmd.txt").read_text())
    assert isinstance(f, LaunchFacts) and problems == []
    (srv,) = f.launches
    assert srv.program == "lmcache_server" and srv.flags["engine-type"] == "blend"
    text = ("export PYTHONHASHSEED=0\nexport OPENAI_API_KEY=sk-x\n"
            "VLLM_NO_USAGE_STATS=1 python -m vllm.entrypoints.openai.api_server --model m \\\n"
            "  --kv-transfer-config '{\"kv_connector\":\"LMCacheMPConnector\","
            "\"kv_role\":\"kv_both\"}' --hf-token abc\n"
            "python -m sglang.launch_server --enable-lmcache --model m\n"
            "vllm serve m --kv-offloading-backend lmcache\n")
    f, problems = parse_launch_text(text)
    assert [x.program for x in f.launches] == ["vllm", "sglang", "vllm"]
    assert f.launches[0].kv_connector == "LMCacheMPConnector"
    assert f.launches[0].flags["hf-token"] == "<redacted>"
    assert f.launches[1].lmcache_enabled is True
    assert f.launches[2].kv_offloading_backend == "lmcache"
    assert f.env == {"PYTHONHASHSEED": "0", "VLLM_NO_USAGE_STATS": "1"}
    assert "sk-x" not in msgspec.json.encode(f).decode()


@pytest.mark.parametrize("text", [
    "export PYTHONHASHSEED=0",
    "export A=1 PYTHONHASHSEED=0 B=2",
    "export A=1 PYTHONHASHSEED='0' B=\"two words\"",
    "declare -x PYTHONHASHSEED=0",
    "PYTHONHASHSEED=0",
    "PYTHONHASHSEED=0 vllm serve m",
    "A=1 PYTHONHASHSEED=0 B=2 vllm serve m",
    "env PYTHONHASHSEED=0 vllm serve m",
    "env -i -u HOME A=1 PYTHONHASHSEED=0 vllm serve m",
    "/usr/bin/env PYTHONHASHSEED=\"0\" python -m vllm.entrypoints.openai.api_server --model m",
    "A=1 env PYTHONHASHSEED=0 vllm serve m",
    "export A=1 PYTHONHASHSEED=0; vllm serve m > vllm.log 2>&1 &",
    "cd /srv && PYTHONHASHSEED=0 vllm serve m  # the engine",
    "export A=1 \\\n  PYTHONHASHSEED=0 \\\n  B=2",
])
def test_launch_env_in_every_shell_form(text: str) -> None:
    """PYTHONHASHSEED is read however the shell is told to set it (split as the shell does)."""
    f, problems = parse_launch_text(text + "\n")
    assert problems == [] and f.env["PYTHONHASHSEED"] == "0", (f.env, problems)
    assert all(x.program == "vllm" for x in f.launches)
    assert len(f.launches) == ("vllm" in text)


def test_launch_env_forms_that_set_nothing() -> None:
    """An export of bare names, a quoted assignment-looking argument and a comment set no
    variable; a word with `#` inside is not a comment."""
    text = ("export PYTHONHASHSEED\n# PYTHONHASHSEED=1 vllm serve m\n"
            "echo PYTHONHASHSEED=2 x\n"
            "vllm serve m --kv-transfer-config '{\"kv_connector\":\"LMCacheMPConnector\"}' "
            "--url http://h/#frag # PYTHONHASHSEED=3\n")
    f, problems = parse_launch_text(text)
    assert problems == [] and "PYTHONHASHSEED" not in f.env
    (v,) = f.launches
    assert v.kv_connector == "LMCacheMPConnector" and v.flags["url"] == "http://h/#frag"


def test_metrics_and_trace_evidence() -> None:
    scrape = UPSTREAM / "metrics" / "mp-l1-storage-trace" / "metrics_after.txt"
    ev = roundtrip(read_evidence("lmcache_metrics", scrape))
    assert ev.status == "ok" and ev.facts.service_instance_ids == ["live-packet-A"]
    assert ev.facts.summary.families > 0
    tr = roundtrip(read_evidence("trace", UPSTREAM / "storage.lct"))
    assert tr.status == "ok" and tr.facts.summary.total_records == 74


@pytest.mark.parametrize("kind", ["lmcache_metrics", "log", "trace", "otel", "lookup_hash",
                                  "trace_replay", "launch_config"])
@pytest.mark.parametrize("content", [b"", b"\x00\xff\xfe garbage \x89\n" * 50, b"{" * 20000,
                                     b"123", b"\"" + b"a" * 100000 + b"\""])
def test_no_reader_raises_on_garbage(tmp_path: Path, kind: str, content: bytes) -> None:
    p = tmp_path / "input"
    p.write_bytes(content)
    ev = read_evidence(kind, p)
    assert ev.kind == kind
    assert ev.status in ("ok", "partial", "malformed")
    roundtrip(ev)


@pytest.mark.parametrize("kind", ["lmcache_metrics", "log", "trace", "otel", "trace_replay",
                                  "launch_config"])
def test_missing_file_is_malformed_evidence(tmp_path: Path, kind: str) -> None:
    ev = read_evidence(kind, tmp_path / "nope")
    assert ev.status == "malformed" and ev.problems


def test_otel_metric_temporality_and_units(tmp_path: Path) -> None:
    def line(value: int, temporality: int) -> str:
        pts = [{"asInt": str(value), "attributes": [{"key": "device",
                                                    "value": {"stringValue": "cpu"}}]}]
        metrics = [
            {"name": "x.delta", "unit": "requests",
             "sum": {"dataPoints": pts, "aggregationTemporality": temporality,
                     "isMonotonic": True}},
            {"name": "lmcache_mp.l0_l1_store_throughput", "unit": "GB/s",
             "histogram": {"dataPoints": [{"count": str(value), "sum": 1.5}],
                           "aggregationTemporality": 2}},
            {"name": "g", "unit": "{chunks}", "gauge": {"dataPoints": [{"asDouble": value}]}},
        ]
        return json.dumps({"resourceMetrics": [{"scopeMetrics": [{"metrics": metrics}]}]})

    p = tmp_path / "m.jsonl"
    p.write_text(line(3, 1) + "\n" + line(4, 1) + "\n")
    by = {m.name: m for m in read_otel(p).facts.metrics}
    assert by["x.delta"].total == 7.0  # delta: summed over exports
    assert by["x.delta"].prometheus_name == "x_delta_requests_total"
    hist = by["lmcache_mp.l0_l1_store_throughput"]
    assert hist.prometheus_name == "lmcache_mp_l0_l1_store_throughput_GB_per_second"
    assert hist.total == 4.0 and hist.metric_type == "histogram"  # cumulative: the latest
    assert by["g"].prometheus_name == "g" and by["g"].total == 4.0
