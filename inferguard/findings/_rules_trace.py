"""Trace recordings, spans, replays and lookup-hash logs."""

from __future__ import annotations

from collections.abc import Iterator

from inferguard.findings._codes import FINDING_CODES, table_code
from inferguard.findings._reads import is_measured
from inferguard.findings._registry import Finding, FindingCodeError, finding, rule
from inferguard.judge._mode import INFERRED, MISSING_SIGNAL, PARTIAL, SUPPORTED
from inferguard.judge._report import CompatReport


@rule(emits=(
    "lmcache_trace_damaged",
    "lmcache_trace_no_reads",
    "lmcache_trace_recording_missing",
    "lmcache_tracing_evidence_missing",
))
def tracing_gaps(r: CompatReport) -> Iterator[Finding]:
    """Declared tracing or trace recording without its evidence; damaged or read-less traces."""
    kinds = {e.kind for e in r.evidence if e.status in ("ok", "partial")}
    if r.settings.mp_tracing_enabled and "otel" not in kinds:
        yield finding("lmcache_tracing_evidence_missing",
                      "--mp-tracing-enabled but no OTel evidence", MISSING_SIGNAL, [])
    if r.settings.mp_trace_recording_enabled and "trace" not in kinds:
        yield finding("lmcache_trace_recording_missing",
                      "--mp-trace-recording-enabled but no readable .lct", MISSING_SIGNAL, [])
    for t in r.facts.traces:
        if t.status != "ok":
            yield finding("lmcache_trace_damaged",
                          f"{t.source}: {t.status}, {t.problems} problem(s)"
                          + (f", first at offset {t.first_problem_offset}"
                             if t.first_problem_offset is not None else ""),
                          SUPPORTED, [t.source])
        reads = sum(v for k, v in t.ops.items() if "read" in k)
        writes = sum(v for k, v in t.ops.items() if "write" in k)
        if writes and not reads:
            yield finding("lmcache_trace_no_reads",
                          f"{t.source}: {writes} write records, no read", SUPPORTED, [t.source])


# Analytics codes whose meaning `tracing_gaps` already reports (damage, no reads).
TRACE_COVERED = frozenset(["trace_damaged", "trace_no_read_records"])
ANALYTICS_CODES = (
    "lmcache_trace_events_delete_without_store",
    "lmcache_trace_events_restarts",
    "lmcache_trace_exit_without_enter",
    "lmcache_trace_finish_without_reserve",
    "lmcache_trace_key_stats_sampled",
    "lmcache_trace_leaked_read_contexts",
    "lmcache_trace_malformed_object_keys",
    "lmcache_trace_no_object_keys",
    "lmcache_trace_reads_of_unwritten_keys",
    "lmcache_trace_unfinished_writes",
    "lmcache_trace_unserved_prefetches",
    "lmcache_trace_write_amplification",
)


@rule(emits=ANALYTICS_CODES)
def trace_analytics(r: CompatReport) -> Iterator[Finding]:
    """Pass the trace analytics' findings through, with their levels and offsets; an
    analytics code the table does not know is an error, never skipped."""
    for t in r.facts.traces:
        for a in t.analytics:
            if a.code in TRACE_COVERED:
                continue
            code = table_code(a.code)
            if code not in FINDING_CODES:
                raise FindingCodeError(f"trace analytics code {a.code!r} has no row "
                                       f"{code!r} in FINDING_CODES")
            offsets = ", ".join(str(o) for o in a.offsets)
            yield finding(code, f"{t.source}: {FINDING_CODES[code].title}: {a.detail}"
                          + (f" (offsets {offsets})" if offsets else ""), a.level, [t.source])


@rule(emits=("lmcache_trace_replay_config_mismatch", "lmcache_trace_replay_failures",
             "lmcache_trace_replay_hidden_failures"))
def replay(r: CompatReport) -> Iterator[Finding]:
    """Replay 'failed' means a handler raised; a config digest that differs is a mismatch.
    Failed reads, reads of keys L1 no longer holds and allocation failures are only logged
    (storage_manager.py, l1_manager.py, memory_management.py): the replay's log shows them
    while its `failed` stays 0."""
    for rp in r.facts.replay:
        hidden = {"failed reads": rp.failed_reads or 0,
                  "finish-reads of keys not in L1": rp.reads_of_missing_keys or 0,
                  "allocation failures": rp.allocation_failures or 0}
        if any(hidden.values()):
            yield finding("lmcache_trace_replay_hidden_failures",
                          f"replay ({rp.form}) log: "
                          + ", ".join(f"{n} {k}" for k, n in hidden.items() if n)
                          + f"; its failed count is {rp.failed} (only handlers that raised)",
                          SUPPORTED, [rp.form])
        if (rp.failed or 0) > 0 or rp.errors:
            yield finding("lmcache_trace_replay_failures",
                          f"replay ({rp.form}): failed={rp.failed}, errors={rp.errors}",
                          SUPPORTED, [rp.form])
        if rp.digest_match is False:
            yield finding("lmcache_trace_replay_config_mismatch",
                          "replay config digest differs from the recorded one", SUPPORTED,
                          [rp.form])


@rule(emits=(
    "lmcache_lookup_hash_counter_reused",
    "lmcache_lookup_hash_evidence_present",
    "lmcache_lookup_hash_files_rotated_away",
    "lmcache_lookup_hash_rotation_gap",
))
def lookup_hashes(r: CompatReport) -> Iterator[Finding]:
    """Lost files (a leading or an inner gap in the rotation counters), counters renumbered
    after a restart, and repeated chunks (reuse potential, not reuse served). Upstream
    (0.5.6 LookupHashLoggingSubscriber) numbers files from the count of files it finds at
    start, so across runs every counter 0..max was written once at least; counts over the
    files present are lower bounds when some are gone."""
    f = r.facts
    starts = f.log_hints.get("lookup_hash_logger_start", 0)
    existing = sorted({int(v) for v in f.log_values.get("lookup_hash_logger_start.existing_files",
                                                         []) if v.isdigit()})
    max_files = f.log_values.get("lookup_hash_logger_start.max_files", [])
    cap = f" (the server log says max_files={', '.join(max_files)})" if max_files else ""
    for lh in f.lookup_hashes:
        if lh.rotated_away_counters:
            yield finding("lmcache_lookup_hash_files_rotated_away",
                          f"counters 0..{lh.rotated_away_counters - 1} are absent: at least "
                          f"{lh.rotated_away_counters} file(s) were written and are gone "
                          f"(rotation deletes the oldest beyond --lookup-hash-log-max-files "
                          f"without a log line){cap}; counts cover the {lh.files} file(s) "
                          "present only", SUPPORTED, [])
        if lh.missing_rotation_counters:
            yield finding("lmcache_lookup_hash_rotation_gap",
                          f"rotation counters missing inside the sequence: "
                          f"{lh.missing_rotation_counters[:10]}; at least "
                          f"{lh.files_lost_at_least} file(s) lost in all", SUPPORTED, [])
        if lh.reused_counters:
            yield finding("lmcache_lookup_hash_counter_reused",
                          f"file names reuse rotation counters {lh.reused_counters[:10]}: a "
                          "restart numbered its files from the number of files it found, "
                          "below counters already used", SUPPORTED, [])
        elif lh.files_lost_at_least and any(e > 0 for e in existing):
            # The log proves a start on a non-empty directory; the files prove losses. Had a
            # loss come before that start, its counters were numbered again; which came first
            # neither can tell, hence partial.
            n = min(e for e in existing if e > 0)
            yield finding("lmcache_lookup_hash_counter_reused",
                          f"the server log shows the lookup-hash logger starting on "
                          f"existing_files={n} ({starts} start line(s)) and at least "
                          f"{lh.files_lost_at_least} file(s) are gone: that run numbered its "
                          f"files from {n}, not from the highest counter + 1, so counters from "
                          f"{n} up may name files of two runs", PARTIAL, [])
        if lh.chunks_repeated:
            least = "at least " if lh.counts_at_least else ""
            yield finding("lmcache_lookup_hash_evidence_present",
                          f"{least}{lh.chunks_repeated} of {least}{lh.chunks_total} looked-up "
                          "chunks were looked up before"
                          + (f" (at least {lh.files_lost_at_least} file(s) lost)"
                             if lh.counts_at_least else ""),
                          PARTIAL if is_measured(r) else INFERRED, [])
