"""The result types of a trace's summary and analytics findings, apart from the code that
computes them: evidence and packets decode these types (a packet's `TraceFacts`), and a
command that only judges a packet should not import the scanner, numpy and the C core.

`inferguard.lct._file`, `_events` and `_stats` re-export them where they were first defined.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "BatchCount",
    "Count",
    "EventsSummary",
    "InstanceSummary",
    "OpStats",
    "TraceFinding",
    "TraceHeader",
    "TraceIntegrity",
    "TraceRecord",
    "TraceStatsFinding",
    "TraceSummary",
]


class TraceFinding(msgspec.Struct, frozen=True):
    """One integrity observation: kind, byte offset, what was seen, bytes not read as records."""

    kind: str
    offset: int
    detail: str
    skipped_bytes: int = 0


class TraceHeader(msgspec.Struct, frozen=True):
    """Frame 0. `variant` names the upstream header generation the file was written by:
    "v0" (lmcache_version, no schema), "schema1", "schema2", with "+level_meta" for the
    events-era header, or "missing" when no header could be read."""

    variant: str
    magic: str | None = None
    format_version: int | None = None
    level: str | None = None
    trace_schema_version: int | None = None
    lmcache_version: str | None = None
    t_mono_start: float | None = None
    t_wall_start: float | None = None
    sm_config_json: str = ""
    sm_config_digest: str = ""
    sm_config_digest_ok: bool | None = None
    level_meta: dict[str, Any] = msgspec.field(default_factory=dict)
    frame_length: int = 0


class TraceRecord(msgspec.Struct, frozen=True):
    """One decoded record; `args` has codec wrappers unwrapped unless asked otherwise."""

    offset: int
    t_mono: float
    t_wall: float
    qualname: str
    args: dict[str, Any]


class OpStats(msgspec.Struct, frozen=True):
    """Per-qualname counts: calls, and the object keys those calls touched."""

    qualname: str
    count: int
    keys_total: int
    keys_max: int
    keys_per_call: float


class InstanceSummary(msgspec.Struct, frozen=True):
    instance_id: str
    incarnations: list[int]
    restarts: int


class BatchCount(msgspec.Struct, frozen=True):
    event_type: str
    tier: str
    backend: str
    scope: str
    count: int


class EventsSummary(msgspec.Struct, frozen=True):
    """The `events` block of upstream `trace info`: coordinator cache-event batches."""

    instances: list[InstanceSummary]
    batches: list[BatchCount]
    entries: dict[str, int]
    store_bytes: int
    entries_with_tokens: int
    lifecycle: dict[str, int]
    undecodable_records: int = 0


class TraceIntegrity(msgspec.Struct, frozen=True):
    """What could not be read, and timestamps that break the recorder's own rules."""

    ok: bool
    frames: int
    malformed_frames: int
    skipped_bytes: int
    nan_timestamps: int
    negative_t_mono: int
    t_mono_decreases: int
    findings: list[TraceFinding]
    findings_omitted: int = 0


class TraceSummary(msgspec.Struct, frozen=True):
    """`lmcache trace info`, plus wall-clock bounds, rates, keys per op and integrity."""

    schema: str
    path: str
    size_bytes: int
    backend: str
    header: TraceHeader
    total_records: int
    duration_s: float
    t_mono_first: float | None
    t_mono_last: float | None
    wall_start: float | None
    wall_end: float | None
    records_per_second: float | None
    keys_total: int
    ops: list[OpStats]
    events: EventsSummary | None
    integrity: TraceIntegrity


class Count(msgspec.Struct, frozen=True, omit_defaults=True):
    """A count. `method` is "exact", "key_sample" (scaled from a uniform hash sample of
    keys), "hyperloglog" or "decimated"; `stderr` is the standard error of `value` (0 when
    exact or unknown). Defaults are omitted in JSON: {"value": n} is exact."""

    value: int
    exact: bool = True
    stderr: float = 0.0
    method: str = "exact"


class TraceStatsFinding(msgspec.Struct, frozen=True):
    """A trace-derived diagnosis input: stable `code`, `evidence` (one of EVIDENCE_LEVELS),
    what was seen, the count, and where (byte offsets of records). Severity, title and next
    step live in the one finding table (`inferguard.findings.FINDING_CODES`, under
    `lmcache_<code>`), not here."""

    code: str
    evidence: str
    detail: str
    count: Count
    first_offset: int | None = None
    first_t_mono: float | None = None
    offsets: list[int] = msgspec.field(default_factory=list)
