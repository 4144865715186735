"""Why hits are zero, and which hit counter to trust.

`zero_hit_cause(r)` names the most likely cause of zero hits from the evidence (the zero-hit
finding carries it): the upstream log lines of `LOG_HINTS` category `hit_cause` and measured
values (average tokens per lookup against the chunk size, NONE_HASH across processes). The
rules here say when the engine could not reach the MP server, when the MP server runs
without shared memory, when LMCache hit but vLLM already held the prefix, and reconcile the
embedded counters (lookup hits, retrieved tokens, vLLM external hits) and the log's
lookup lines against them.

Upstream semantics (lmcache 0.5.6 `observability.py`): `lmcache:num_lookup_hits` is fed by
`on_lookup_finished` (every token the lookup found), `lmcache:num_hit_tokens` by
`on_retrieve_finished` (tokens actually retrieved), `lmcache:num_vllm_hit_tokens` by the
adapter (tokens vLLM's own prefix cache held). A lookup hit on a prefix vLLM still holds
is never retrieved: lookup hits > 0 with retrieved tokens 0 is that, not zero hits.
"""

from __future__ import annotations

from collections.abc import Iterator

from inferguard.findings._reads import hints_of, total_of
from inferguard.findings._registry import Finding, finding, rule
from inferguard.judge._mode import INFERRED, PARTIAL, SUPPORTED
from inferguard.judge._report import CompatReport

_UNREACHABLE = ("mp_server_unreachable", "mp_lookup_timed_out", "mp_prefetch_status_timed_out",
                "mp_server_degraded")
_ALREADY_LOCAL = ("embedded_prefix_already_local", "mp_prefix_already_local")


def _count(r: CompatReport, ids: tuple[str, ...]) -> list[str]:
    logs = hints_of(r)
    return [f"{i} x{logs[i]}" for i in ids if logs.get(i)]


def _family(r: CompatReport, name: str) -> bool:
    f = r.family(name)
    return f is not None and f.status in ("populated", "zero")


def chunk_cause(r: CompatReport) -> str | None:
    """Measured: lookups average fewer tokens than one chunk (no full chunk can hit)."""
    http = r.facts.http
    chunk = http.chunk_size if http is not None else None
    lookups = total_of(r, "lmcache_mp_lookups_requests_total")
    tokens = total_of(r, "lmcache_mp_lookup_requested_tokens_total")
    if chunk and lookups > 0 and tokens / lookups < chunk:
        return (f"prompts shorter than one chunk: {tokens / lookups:.0f} tokens per lookup on "
                f"average, chunk size {chunk} (measured: lookup counters and /status)")
    return None


def zero_hit_cause(r: CompatReport) -> str | None:
    """The most likely cause of zero hits the evidence shows, strongest first, or None."""
    logs = hints_of(r)
    if unreachable := _count(r, _UNREACHABLE):
        return ("the engine could not reach the LMCache MP server (log: "
                + ", ".join(unreachable) + ")")
    if logs.get("lmcache_init_failed"):
        return "LMCache failed to initialise and the engine runs degraded (log)"
    none_hashes = sorted(set(r.facts.log_values.get("none_hash.value", [])))
    if len(none_hashes) > 1:
        return (f"hash-seed mismatch: NONE_HASH differs across processes {none_hashes} "
                "(log): the same prefix hashes to different keys")
    if measured := chunk_cause(r):
        return measured
    if short := _count(r, ("tokens_below_chunk", "mp_session_not_found")):
        return ("requests never looked up or shorter than one chunk (log: "
                + ", ".join(short) + ")")
    if local := _count(r, _ALREADY_LOCAL):
        return "vLLM already held the prefix locally (log: " + ", ".join(local) + ")"
    if logs.get("mp_shm_insufficient"):
        return "the MP server runs without shared memory (log: mp_shm_insufficient)"
    return None


@rule(emits=("lmcache_mp_unreachable",))
def mp_unreachable(r: CompatReport) -> Iterator[Finding]:
    ev = _count(r, _UNREACHABLE)
    if ev:
        yield finding("lmcache_mp_unreachable", "engine log: " + ", ".join(ev), INFERRED,
                      [f"log: {e}" for e in ev])


@rule(emits=("lmcache_mp_shm_fallback",))
def shm_fallback(r: CompatReport) -> Iterator[Finding]:
    n = hints_of(r).get("mp_shm_insufficient")
    if n:
        need = r.facts.log_values.get("mp_shm_insufficient.need", ["?"])[0]
        have = r.facts.log_values.get("mp_shm_insufficient.have", ["?"])[0]
        yield finding("lmcache_mp_shm_fallback",
                      f"server log: Insufficient /dev/shm capacity (need {need} bytes, have "
                      f"{have}); SHM disabled, falling back to pickle", INFERRED,
                      ["log: mp_shm_insufficient"])


@rule(emits=("lmcache_prefix_already_local",))
def prefix_already_local(r: CompatReport) -> Iterator[Finding]:
    lookup_hits = total_of(r, "lmcache:num_lookup_hits")
    retrieved = total_of(r, "lmcache:num_hit_tokens")
    vllm_held = total_of(r, "lmcache:num_vllm_hit_tokens")
    if (lookup_hits > 0 and _family(r, "lmcache:num_hit_tokens") and retrieved == 0
            and vllm_held > 0):
        yield finding("lmcache_prefix_already_local",
                      f"lmcache:num_lookup_hits={lookup_hits:g} but lmcache:num_hit_tokens=0 "
                      f"while lmcache:num_vllm_hit_tokens={vllm_held:g}: the lookups found "
                      "prefixes vLLM's own prefix cache still held, so nothing was retrieved "
                      "(measured; the counters, not a zero-hit cache)", SUPPORTED,
                      ["lmcache:num_lookup_hits", "lmcache:num_hit_tokens",
                       "lmcache:num_vllm_hit_tokens"])
        return
    local = _count(r, _ALREADY_LOCAL)
    positive = sum(r.facts.log_positive.get(i, 0) for i in _ALREADY_LOCAL)
    if local and positive:
        yield finding("lmcache_prefix_already_local",
                      "engine log: LMCache hit tokens > 0 with need to load <= 0 ("
                      + ", ".join(local) + "): vLLM already held those prefixes", INFERRED,
                      [f"log: {e}" for e in local])


@rule(emits=("lmcache_embedded_hits_reconciled", "lmcache_hit_counters_disagree"))
def embedded_reconciled(r: CompatReport) -> Iterator[Finding]:
    """The embedded counters against each other and against the log's lookup lines."""
    have_lmc = _family(r, "lmcache:num_hit_tokens")
    have_ext = _family(r, "vllm:external_prefix_cache_hits")
    retrieved = total_of(r, "lmcache:num_hit_tokens")
    ext = total_of(r, "vllm:external_prefix_cache_hits")
    lookup_hits = total_of(r, "lmcache:num_lookup_hits")
    names = ["lmcache:num_lookup_hits", "lmcache:num_hit_tokens",
             "vllm:external_prefix_cache_hits"]
    if have_lmc and have_ext:
        if (ext > 0) != (retrieved > 0):
            right = ("vllm:external_prefix_cache_hits" if ext > 0 else "lmcache:num_hit_tokens")
            yield finding("lmcache_hit_counters_disagree",
                          f"vllm:external_prefix_cache_hits={ext:g} but "
                          f"lmcache:num_hit_tokens={retrieved:g}: both count tokens the "
                          f"connector loaded; trust {right} (the non-zero counter recorded "
                          "loads that happened; a zero beside it is a counter not fed, e.g. a "
                          "second engine or a scrape of another process)", PARTIAL, names)
        elif ext > 0 or retrieved > 0 or lookup_hits > 0:
            yield finding("lmcache_embedded_hits_reconciled",
                          f"lmcache:num_lookup_hits={lookup_hits:g} (every lookup hit), "
                          f"lmcache:num_hit_tokens={retrieved:g} and "
                          f"vllm:external_prefix_cache_hits={ext:g} (tokens loaded)",
                          SUPPORTED, names)
    logs = hints_of(r)
    log_lookups = logs.get("embedded_lookup", 0)
    log_hits = r.facts.log_positive.get("embedded_lookup", 0)
    metric = r.family("lmcache:num_lookup_hits")
    if log_lookups and metric is not None and metric.status in ("populated", "zero"):
        if log_hits > 0 and lookup_hits == 0:
            yield finding("lmcache_hit_counters_disagree",
                          f"the engine log has {log_hits} lookup lines with LMCache hit tokens "
                          "> 0, but lmcache:num_lookup_hits=0: trust the metric for the scraped "
                          "process (measured); the log's hits happened in a process or at a "
                          "time this scrape does not cover", PARTIAL,
                          ["log: embedded_lookup", "lmcache:num_lookup_hits"])
        elif log_hits == 0 and lookup_hits > 0 and not _count(r, _ALREADY_LOCAL):
            yield finding("lmcache_hit_counters_disagree",
                          f"lmcache:num_lookup_hits={lookup_hits:g} but all {log_lookups} "
                          "lookup lines of the log say 0 hit tokens: trust the metric (it "
                          "counts every lookup since the process started; the log holds only "
                          "the lines it kept)", SUPPORTED,
                          ["lmcache:num_lookup_hits", "log: embedded_lookup"])
    # The log's "LMCache hit tokens: H, need to load: 0" lines say vLLM held the prefix; the
    # adapter feeds lmcache:num_vllm_hit_tokens from the same per-request number
    # (LoadSpec.vllm_cached_tokens, vllm_v1_adapter.py start_load_kv).
    held = r.family("lmcache:num_vllm_hit_tokens")
    local_lines = r.facts.log_positive.get("embedded_prefix_already_local", 0)
    if (local_lines and held is not None and held.status in ("populated", "zero")
            and total_of(r, "lmcache:num_vllm_hit_tokens") == 0):
        yield finding("lmcache_hit_counters_disagree",
                      f"the engine log has {local_lines} lookup lines where vLLM already held "
                      "the prefix (need to load <= 0), but lmcache:num_vllm_hit_tokens=0: "
                      "trust the metric for the scraped process (measured); the log lines "
                      "come from a process or a time this scrape does not cover", PARTIAL,
                      ["log: embedded_prefix_already_local", "lmcache:num_vllm_hit_tokens"])
