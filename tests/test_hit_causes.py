"""Why hits are zero: each `hit_cause` log hint against the upstream line it was taken from
(the format string, filled in as the logger would; file and function cited per case), a near
miss per hint, and the zero-hit finding naming the most likely cause."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import inferguard as ig
from inferguard.evidence._logs import LOG_HINTS

from .conftest import UPSTREAM

PATTERNS = {h.id: re.compile(h.pattern) for h in LOG_HINTS}

# hint id -> (upstream file, function, the line as logged, a near miss)
UPSTREAM_LINES: dict[str, tuple[str, str, str, str]] = {
    "mp_shm_insufficient": (
        "lmcache 0.5.6 lmcache/v1/multiprocess/server.py", "run_cache_server",
        "Insufficient /dev/shm capacity: need 268435456 bytes, have 1048576 bytes. "
        "Disabling SHM, falling back to pickle.",
        "Checking if shm capacity is larger than L1 request"),
    "mp_session_not_found": (
        "lmcache 0.5.6 lmcache/v1/multiprocess/modules/lookup.py", "LookupModule.end_session",
        "Session cmpl-42-0 not found, skipping touch",
        "Session cmpl-42-0 has no lookup ipc key, skipping touch"),
    "mp_server_unreachable": (
        "lmcache 0.5.6 lmcache/integration/vllm/vllm_multi_process_adapter.py",
        "_raise_server_unreachable",
        "ConnectionError: Cannot reach the LMCache MP server at 'tcp://127.0.0.1:5555' "
        "within 30.0s.",
        "LMCache MP server became healthy"),
    "mp_lookup_timed_out": (
        "lmcache 0.5.6 lmcache/integration/vllm/vllm_multi_process_adapter.py",
        "LMCacheMPSchedulerAdapter._mark_lookup_timed_out",
        "LOOKUP to tcp://127.0.0.1:5555 timed out after 30.0s. Marking server as unhealthy.",
        "LOOKUP to tcp://127.0.0.1:5555 answered"),
    "mp_prefetch_status_timed_out": (
        "lmcache 0.5.6 lmcache/integration/vllm/vllm_multi_process_adapter.py",
        "LMCacheMPSchedulerAdapter.check_lookup_result",
        "QUERY_PREFETCH_STATUS to tcp://127.0.0.1:5555 timed out. Marking unhealthy.",
        "QUERY_PREFETCH_STATUS to tcp://127.0.0.1:5555"),
    "mp_server_degraded": (
        "lmcache 0.5.6 lmcache/integration/vllm/vllm_multi_process_adapter.py",
        "HeartbeatThread._execute",
        "LMCache server is unhealthy \u2014 entering degraded mode",
        "LMCache server is healthy"),
    "tokens_below_chunk": (
        "lmcache 0.5.6 lmcache/sdk/context.py", "LMCacheSDKContext.retrieve",
        "Number of tokens (12) is less than chunk size (256); returning None.",
        "No tokens provided for retrieval; returning None."),
    "embedded_prefix_already_local": (
        "vLLM 0.33.0 vllm/distributed/kv_transfer/kv_connector/v1/lmcache_integration/"
        "vllm_v1_adapter.py", "LMCacheConnectorV1Impl.get_num_new_matched_tokens",
        "Reqid: cmpl-1, Total tokens 512, LMCache hit tokens: 256, need to load: 0",
        "Reqid: cmpl-1, Total tokens 512, LMCache hit tokens: 256, need to load: 128"),
    "mp_prefix_already_local": (
        "vLLM 0.33.0 vllm/distributed/kv_transfer/kv_connector/v1/lmcache_mp_connector.py",
        "LMCacheMPConnector.get_num_new_matched_tokens",
        "vLLM hit is: 256, Need to load is 0",
        "vLLM hit is: 256, Need to load is 64"),
}


def test_every_hit_cause_hint_has_an_upstream_line() -> None:
    assert set(UPSTREAM_LINES) == {h.id for h in LOG_HINTS if h.category == "hit_cause"}


@pytest.mark.parametrize("hint", sorted(UPSTREAM_LINES))
def test_hint_matches_its_upstream_line_and_not_the_near_miss(hint: str, tmp_path: Path) -> None:
    _file, _function, line, near = UPSTREAM_LINES[hint]
    assert PATTERNS[hint].search(line)
    assert not PATTERNS[hint].search(near)
    # Through the reader, in LMCache's log format: the hint is found, with its line number.
    path = tmp_path / "x.log"
    path.write_text(f"[2026-11-28 04:06:01,374] LMCache WARNING: {near} (a.py:1:m)\n"
                    f"[2026-11-28 04:06:02,374] LMCache WARNING: {line} (a.py:2:m)\n")
    ev = ig.read_evidence("log", path)
    (h,) = [h for h in ev.facts.hints if h.id == hint]
    assert (h.count, h.first_line) == (1, 2)


def test_embedded_lookup_line_of_lmcache_056_with_min_retrieve() -> None:
    # lmcache 0.5.6 integration/vllm/vllm_v1_adapter.py get_num_new_matched_tokens, the
    # below-min-retrieve branch (need to load is max(need, 0)).
    line = ("Reqid: r1, Total tokens 300, Inference Engine computed tokens: 256, LMCache hit "
            "tokens: 256, but need to load: 0 < min_retrieve 16, skip retrieve but record for "
            "save skip")
    assert PATTERNS["embedded_prefix_already_local"].search(line)
    assert PATTERNS["embedded_lookup"].search(line)


MP_ZERO = ("# TYPE lmcache_mp_lookups_requests_total counter\n"
           "lmcache_mp_lookups_requests_total 10.0\n"
           "# TYPE lmcache_mp_lookup_requested_tokens_total counter\n"
           "lmcache_mp_lookup_requested_tokens_total {tokens}\n"
           "# TYPE lmcache_mp_lookup_hit_tokens_total counter\n"
           "lmcache_mp_lookup_hit_tokens_total 0.0\n")


def _zero_hit(tmp: Path, tokens: float, *log_lines: str) -> ig.Finding | None:
    (tmp / "m.txt").write_text(MP_ZERO.format(tokens=tokens))
    ev = [ig.read_evidence("lmcache_metrics", tmp / "m.txt")]
    http = tmp / "http"
    shutil.copytree(UPSTREAM / "http", http)  # real 0.5.6 answers: /status chunk_size 16
    ev.append(ig.read_evidence("http", http))
    if log_lines:
        (tmp / "v.log").write_text("".join(
            f"[2026-11-28 04:06:0{i},374] LMCache WARNING: {x} (a.py:1:m)\n"
            for i, x in enumerate(log_lines)))
        ev.append(ig.read_evidence("log", tmp / "v.log"))
    v = ig.judge_packet(ig.Packet(settings=ig.PacketSettings(), evidence=ev))
    return v.diagnosis.finding("lmcache_zero_hits_after_warmup")


def test_zero_hits_names_prompts_below_one_chunk(tmp_path: Path) -> None:
    f = _zero_hit(tmp_path, 120.0)  # 12 tokens per lookup, chunk size 16
    assert f is not None and "shorter than one chunk" in f.message and "measured" in f.message


def test_zero_hits_near_miss_long_prompts_no_cause(tmp_path: Path) -> None:
    f = _zero_hit(tmp_path, 1280.0)  # 128 tokens per lookup: no cause in the evidence
    assert f is not None and "most likely cause" not in f.message


def test_zero_hits_names_an_unreachable_server_first(tmp_path: Path) -> None:
    f = _zero_hit(tmp_path, 120.0, UPSTREAM_LINES["mp_lookup_timed_out"][2])
    assert f is not None and "could not reach the LMCache MP server" in f.message


def test_zero_hits_names_the_hash_seed(tmp_path: Path) -> None:
    # lmcache 0.5.6 v1/multiprocess/token_hasher.py (TokenHasher): "Computed NONE_HASH=%s
    # using hash function" in two processes with different values.
    f = _zero_hit(tmp_path, 1280.0, "Computed NONE_HASH=123 using hash function",
                  "Computed NONE_HASH=456 using hash function")
    assert f is not None and "hash-seed mismatch" in f.message


def _embedded(tmp: Path, held: float, line: str) -> list[str]:
    """An embedded vLLM scrape plus one engine log line; the finding codes."""
    (tmp / "e.txt").write_text(
        "# TYPE lmcache:num_lookup_tokens counter\nlmcache:num_lookup_tokens 512.0\n"
        "# TYPE lmcache:num_lookup_hits counter\nlmcache:num_lookup_hits 256.0\n"
        "# TYPE lmcache:num_vllm_hit_tokens counter\n"
        f"lmcache:num_vllm_hit_tokens {held}\n")
    (tmp / "v.log").write_text(f"(EngineCore_DP0 pid=1) INFO 12-02 09:15:10 [a.py:1] {line}\n")
    ev = [ig.read_evidence("engine_metrics", tmp / "e.txt"), ig.read_evidence("log", tmp / "v.log")]
    v = ig.judge_packet(ig.Packet(settings=ig.PacketSettings(), evidence=ev))
    return [f.message for f in v.diagnosis.findings if f.code == "lmcache_hit_counters_disagree"]


def test_log_need_to_load_zero_vs_vllm_hit_counter(tmp_path: Path) -> None:
    line = UPSTREAM_LINES["embedded_prefix_already_local"][2]
    msgs = _embedded(tmp_path, 0.0, line)
    assert any("num_vllm_hit_tokens=0" in m and "trust the metric" in m for m in msgs)
    # Near miss: the counter saw the held prefix too.
    assert not _embedded(tmp_path, 256.0, line)
