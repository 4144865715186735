"""A Prometheus server's HTTP API as an evidence source (read-only GETs; Thanos, Mimir and
VictoriaMetrics speak the same API).

Same road, same verdict: what the API returns for one target is written back as the
Prometheus text exposition that target served (its families from `/api/v1/targets/metadata`,
its series from `/api/v1/query` or `/api/v1/query_range`, with the labels Prometheus attached
to the target removed and `exported_*` labels given back their own names) and read by the
very reader that reads a `/metrics` file (`read_metrics_bytes`), with the time Prometheus
scraped them (the timestamp of the target's `up` sample, as `MetricsFacts.scraped_at`: the
rates' windows use it). A counter read through the
API and one read from the target's `/metrics` therefore give the same `FamilyStats`, the same
family status and the same verdict. The synthesised text is kept byte for byte as the
packet's input copy, as a live scrape's body is (docs/fleet.md lists what the API loses).

A window (`start`, `end`) gives two expositions of each target, one at each end (the
samples the rates need); an instant gives one. A target Prometheus reports down is a failed
scrape (`malformed`, with Prometheus' `lastError`), as a refused `/metrics` GET is.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import msgspec

from inferguard._packet import Packet, PacketInput, PacketSettings
from inferguard.collect._fetch import fetch
from inferguard.evidence._metrics import read_metrics_bytes
from inferguard.evidence._model import Evidence, EvidenceSource, Problem

# The only routes this client ever GETs (all read-only in every Prometheus-API server).
API_PATHS = ("/api/v1/targets", "/api/v1/series", "/api/v1/targets/metadata",
             "/api/v1/query", "/api/v1/query_range")
MAX_API_BYTES = 256 << 20
LOOKBACK_S = 300.0  # Prometheus' default lookback: a sample older than this is not "now"
# Series Prometheus itself writes for every target (never in the target's exposition).
SYNTHETIC = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped",
                       "scrape_samples_post_metric_relabeling", "scrape_series_added",
                       "scrape_timeout_seconds", "scrape_sample_limit",
                       "scrape_body_size_bytes"})
_SUFFIXES = {"counter": ("_total", "_created"),
             "histogram": ("_bucket", "_count", "_sum", "_created"),
             "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
             "summary": ("_count", "_sum", "_created"),
             "info": ("_info",)}
_ENGINE_PREFIXES = ("vllm:", "sglang:")
Role = Literal["lmcache", "engine"]


class PromError(Exception):
    """The Prometheus API could not be asked at all (unreachable, not an API, an error)."""


class PromTarget(msgspec.Struct, frozen=True, omit_defaults=True):
    """One scrape target as the server knows it: its target labels and last scrape."""

    job: str
    instance: str
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    health: str = "unknown"
    last_error: str = ""
    scrape_url: str = ""
    role: Role | None = None


class PromWindow(msgspec.Struct, frozen=True):
    """A window [start, end] in Unix seconds: an exposition is built at each end."""

    start: float
    end: float


class PromGroup(msgspec.Struct, frozen=True):
    """The targets that make one packet (those sharing the grouping label's value)."""

    name: str
    targets: list[PromTarget]


class PromPacket(msgspec.Struct, frozen=True):
    """One group's packet and the bytes of its inputs (the synthesised expositions)."""

    name: str
    targets: list[PromTarget]
    packet: Packet
    blobs: dict[str, bytes]
    notes: list[str] = msgspec.field(default_factory=list)


class TargetEvidence(msgspec.Struct, frozen=True):
    """One target's evidence, its packet inputs and their bytes, and what to tell."""

    evidence: list[Evidence]
    inputs: list[PacketInput] = msgspec.field(default_factory=list)
    blobs: dict[str, bytes] = msgspec.field(default_factory=dict)
    notes: list[str] = msgspec.field(default_factory=list)


# -- the API -------------------------------------------------------------------------------

def shared_transport() -> Any:
    """One httpx transport for a whole fleet run: every request (from every worker thread)
    shares its connection pool, where a client of its own per request costs ~70 ms to set
    up (measured; `benchmarks/bench_fleet.py`). A client closing at the end of its request
    must not close the pool under the other threads: `close()` is a no-op, the run calls
    `close_shared()` once at its end."""
    import httpx

    class SharedTransport(httpx.BaseTransport):
        def __init__(self) -> None:
            self._inner = httpx.HTTPTransport()

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            return self._inner.handle_request(request)

        def close(self) -> None:
            pass

        def close_shared(self) -> None:
            self._inner.close()

    return SharedTransport()


def _get(base: str, path: str, params: Sequence[tuple[str, str]], *, timeout: float,
         transport: Any) -> Any:
    """GET one API route; the `data` member of a success answer, else PromError."""
    assert path in API_PATHS, path
    query = urllib.parse.urlencode(list(params))
    (a,) = fetch(base, [path + ("?" + query if query else "")], timeout=timeout,
                 transport=transport, limit=MAX_API_BYTES)
    where = f"{base}{path}"
    if a.status is None:
        raise PromError(f"{where}: no answer ({a.error})")
    if len(a.raw) > MAX_API_BYTES:
        raise PromError(f"{where}: answer larger than {MAX_API_BYTES} bytes")
    try:
        doc = msgspec.json.decode(a.raw)
    except msgspec.DecodeError:
        raise PromError(f"{where}: HTTP {a.status}, not a Prometheus API answer "
                        f"(expected JSON with a 'status' member)") from None
    if not isinstance(doc, dict) or doc.get("status") != "success":
        err = doc.get("error") if isinstance(doc, dict) else None
        raise PromError(f"{where}: HTTP {a.status}: {err or 'status is not success'}")
    return doc.get("data")


def _selector(labels: dict[str, str]) -> str:
    """`{k="v",...}` with the values escaped as PromQL string literals."""
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in sorted(labels.items())) + "}"


def list_targets(base_url: str, *, match: Sequence[str] = (), engine_match: Sequence[str] = (),
                 at: float | None = None, timeout: float = 5.0, transport: Any = None
                 ) -> list[PromTarget]:
    """The targets to judge: every active target, or (with selectors) those having a series
    that a selector matches in the 5 minutes before `at` (a target that went down still has
    its `up` series). Targets matched by `engine_match` have the engine role; by `match`, the
    LMCache role; otherwise the role is decided from the series' names later."""
    base = base_url.rstrip("/")
    data = _get(base, "/api/v1/targets", [("state", "active")], timeout=timeout,
                transport=transport)
    active: dict[tuple[str, str], PromTarget] = {}
    for t in (data or {}).get("activeTargets", []) if isinstance(data, dict) else []:
        labels = {str(k): str(v) for k, v in (t.get("labels") or {}).items()}
        key = (labels.get("job", ""), labels.get("instance", ""))
        active[key] = PromTarget(job=key[0], instance=key[1], labels=labels,
                                 health=str(t.get("health") or "unknown"),
                                 last_error=str(t.get("lastError") or ""),
                                 scrape_url=str(t.get("scrapeUrl") or ""))
    if not match and not engine_match:
        return sorted(active.values(), key=lambda t: (t.instance, t.job))
    end = time.time() if at is None else at
    chosen: dict[tuple[str, str], PromTarget] = {}
    for role, selectors in (("lmcache", match), ("engine", engine_match)):
        for sel in selectors:
            found = _get(base, "/api/v1/series", [("match[]", sel),
                                                  ("start", f"{end - LOOKBACK_S:.3f}"),
                                                  ("end", f"{end:.3f}")],
                         timeout=timeout, transport=transport)
            for s in found or []:
                key = (str(s.get("job", "")), str(s.get("instance", "")))
                if key in chosen and role == "lmcache":
                    continue
                t = active.get(key) or PromTarget(
                    job=key[0], instance=key[1], labels={"job": key[0], "instance": key[1]},
                    health="gone", last_error="not an active target of this Prometheus")
                chosen[key] = msgspec.structs.replace(t, role=role)
    return sorted(chosen.values(), key=lambda t: (t.instance, t.job))


def group_targets(targets: Iterable[PromTarget], label: str = "instance",
                  only: str | None = None) -> list[PromGroup]:
    """Targets grouped by a target label's value (default: one group per instance); `only`
    keeps the one group of that name."""
    groups: dict[str, list[PromTarget]] = {}
    for t in targets:
        name = t.labels.get(label) or (t.instance if label == "instance" else "")
        if not name:
            name = t.instance
        groups.setdefault(name, []).append(t)
    out = [PromGroup(n, ts) for n, ts in sorted(groups.items())]
    return [g for g in out if g.name == only] if only is not None else out


# -- one target -> expositions -> evidence ----------------------------------------------------

class _Meta(msgspec.Struct, frozen=True):
    type: str
    help: str = ""
    unit: str = ""


def _metadata(base: str, t: PromTarget, *, timeout: float, transport: Any) -> dict[str, _Meta]:
    data = _get(base, "/api/v1/targets/metadata",
                [("match_target", _selector({"job": t.job, "instance": t.instance}))],
                timeout=timeout, transport=transport)
    out: dict[str, _Meta] = {}
    for m in data or []:
        name = str(m.get("metric") or "")
        if name:
            out[name] = _Meta(str(m.get("type") or "unknown"), str(m.get("help") or ""),
                              str(m.get("unit") or ""))
    return out


def _family_of(name: str, meta: dict[str, _Meta], escaped: dict[str, str]
               ) -> tuple[str, str] | None:
    """(metadata family, suffix) of a sample name. OpenMetrics scrapes name a counter's
    family without `_total`, and prometheus_client >= 0.23 escapes `:` to `_` in sample
    names (not in HELP/TYPE) for Prometheus 2.x: both are matched to their family."""
    for table in (meta, escaped):
        if name in table:
            return (escaped.get(name, name) if table is escaped else name), ""
        for fam_type, suffixes in _SUFFIXES.items():
            for suf in suffixes:
                if name.endswith(suf):
                    base = name[: -len(suf)]
                    fam = (escaped.get(base) if table is escaped else base) or ""
                    if fam in meta and meta[fam].type == fam_type:
                        return fam, suf
    return None


# OpenMetrics types as the text format 0.0.4 writes them (prometheus_client's own mapping).
_TEXT_TYPE = {"counter": "counter", "gauge": "gauge", "histogram": "histogram",
              "summary": "summary", "untyped": "untyped", "unknown": "untyped",
              "info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram"}


_NAME_OK = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def _own_labels(metric: dict[str, str], target: PromTarget) -> dict[str, str]:
    """The series' labels as the target exposed them: Prometheus' target labels removed,
    `exported_<name>` (a clash Prometheus renamed) given its own name back."""
    own = {k: v for k, v in metric.items() if k != "__name__" and k not in target.labels}
    for k in [k for k in own if k.startswith("exported_") and k[9:] in target.labels]:
        own[k[9:]] = own.pop(k)
    return own


def _esc_label(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _le_key(labels: dict[str, str]) -> float:
    try:
        return float(labels.get("le", "nan"))
    except ValueError:
        return math.nan


def exposition_text(samples: Iterable[tuple[dict[str, str], str]], meta: dict[str, _Meta],
                    target: PromTarget, timestamp_ms: int | None = None,
                    with_empty: bool = True) -> bytes:
    """The Prometheus text (0.0.4) exposition of one target from API samples: every family
    the target's metadata names (`with_empty`: also those without samples), then series
    without metadata; Prometheus' own per-target series left out."""
    fams: dict[str, list[tuple[str, dict[str, str], str]]] = {n: [] for n in sorted(meta)}
    loose: dict[str, list[tuple[str, dict[str, str], str]]] = {}
    escaped = {n.replace(":", "_"): n for n in meta if ":" in n}
    for metric, value in samples:
        name = metric.get("__name__", "")
        if not name or not _NAME_OK.match(name):
            continue
        hit = _family_of(name, meta, escaped)
        if hit is None:
            if name in SYNTHETIC:
                continue
            loose.setdefault(name, []).append((name, _own_labels(metric, target), value))
        elif hit[1] != "_created":  # a timestamp, never data (the reader drops it too)
            fams[hit[0]].append((hit[0] + hit[1], _own_labels(metric, target), value))
    ts = "" if timestamp_ms is None else f" {timestamp_ms}"
    out: list[str] = []
    for fam, rows in [*fams.items(), *sorted(loose.items())]:
        if not rows and not with_empty:
            continue
        m = meta.get(fam)
        if m is not None:
            # The 0.0.4 family name: an OpenMetrics counter `x` is `x_total`, an info `x_info`.
            text_name = fam
            if m.type == "counter" and not fam.endswith("_total"):
                text_name = fam + "_total"
            elif m.type == "info" and not fam.endswith("_info"):
                text_name = fam + "_info"
            if m.help:
                out.append(f"# HELP {text_name} "
                           + m.help.replace("\\", "\\\\").replace("\n", "\\n"))
            if m.type in _TEXT_TYPE:
                out.append(f"# TYPE {text_name} {_TEXT_TYPE[m.type]}")
        rows.sort(key=lambda r: (sorted((k, v) for k, v in r[1].items() if k != "le"),
                                 r[0], _le_key(r[1])))
        for name, labels, value in rows:
            body = ",".join(f'{k}="{_esc_label(v)}"' for k, v in sorted(labels.items()))
            out.append(f"{name}{{{body}}} {value}{ts}" if body else f"{name} {value}{ts}")
    return ("\n".join(out) + "\n").encode() if out else b""


def _range_params(window: PromWindow) -> list[tuple[str, str]]:
    """start, end and step of a range query that evaluates at exactly both ends: in whole
    milliseconds, as Prometheus steps (`start + step` rounded apart from `end` by a
    millisecond would lose the end point)."""
    s_ms, e_ms = round(window.start * 1000), round(window.end * 1000)
    step_ms = max(e_ms - s_ms, 1)
    return [("start", f"{s_ms / 1000:.3f}"), ("end", f"{(s_ms + step_ms) / 1000:.3f}"),
            ("step", f"{step_ms / 1000:.3f}")]


def _which_end(ts: float, window: PromWindow) -> float:
    """The window end an answer's evaluation time stands for."""
    return window.start if abs(ts - window.start) < abs(ts - window.end) else window.end


def _scrape_times(base: str, sel: str, times: list[float], window: PromWindow | None, *,
                  timeout: float, transport: Any) -> dict[float, float]:
    """When the samples read at each evaluation time were scraped (the timestamp of the
    target's `up` sample, which Prometheus writes with every scrape): the scrape time the
    rates' windows need, not the evaluation time. A time with no sample is left out."""
    query = f"timestamp(up{sel})"
    out: dict[float, float] = {}
    if window is None:
        (t,) = times
        data = _get(base, "/api/v1/query", [("query", query), ("time", f"{t:.3f}")],
                    timeout=timeout, transport=transport)
        for r in (data or {}).get("result", []):
            out[t] = float(r["value"][1])
        return out
    data = _get(base, "/api/v1/query_range", [("query", query), *_range_params(window)],
                timeout=timeout, transport=transport)
    for r in (data or {}).get("result", []):
        for ts, v in r.get("values", []):
            at = _which_end(float(ts), window)
            out[at] = float(v)
    return out


def _role_of(t: PromTarget, names: Iterable[str]) -> Role:
    if t.role is not None:
        return t.role
    return "engine" if any(n.startswith(_ENGINE_PREFIXES) for n in names) else "lmcache"


def target_evidence(base_url: str, target: PromTarget, *, at: float | None = None,
                    window: PromWindow | None = None, timeout: float = 5.0,
                    transport: Any = None) -> TargetEvidence:
    """The evidence of one target: one exposition at `at` (default: now) or one at each end
    of `window`, each read by the `/metrics` reader. Never raises: an API failure or a
    target that is down is `malformed` evidence saying so."""
    base = base_url.rstrip("/")
    kind_of = {"lmcache": "lmcache_metrics", "engine": "engine_metrics"}
    where = target.scrape_url or f"{base} job={target.job} instance={target.instance}"
    if target.health == "down" or target.health == "gone":
        kind = kind_of[target.role or "lmcache"]
        why = "down" if target.health == "down" else "gone"
        return TargetEvidence([Evidence(
            kind=kind, source=EvidenceSource(url=where),  # type: ignore[arg-type]
            status="malformed",
            problems=[Problem(f"scrape failed: Prometheus reports the target {why}: "
                              f"{target.last_error or 'no error given'}", where=where)])])
    sel = _selector({"job": target.job, "instance": target.instance})
    try:
        meta = _metadata(base, target, timeout=timeout, transport=transport)
        if window is None:
            t = time.time() if at is None else at
            data = _get(base, "/api/v1/query", [("query", sel), ("time", f"{t:.3f}")],
                        timeout=timeout, transport=transport)
            points = {t: [(r["metric"], r["value"][1]) for r in (data or {}).get("result", [])]}
        else:
            data = _get(base, "/api/v1/query_range",
                        [("query", sel), *_range_params(window)],
                        timeout=timeout, transport=transport)
            points = {window.start: [], window.end: []}
            for r in (data or {}).get("result", []):
                for ts, v in r.get("values", []):
                    at_ts = _which_end(float(ts), window)
                    points[at_ts].append((r["metric"], v))
    except (PromError, KeyError, TypeError, IndexError, AttributeError) as exc:
        kind = kind_of[target.role or "lmcache"]
        return TargetEvidence([Evidence(
            kind=kind, source=EvidenceSource(url=where),  # type: ignore[arg-type]
            status="malformed", problems=[Problem(f"Prometheus API: {exc}", where=where)])])
    try:  # auxiliary: without it the scrapes' times are unknown, the facts stand
        scraped = _scrape_times(base, sel, list(points), window, timeout=timeout,
                                transport=transport)
    except (PromError, KeyError, TypeError, IndexError, AttributeError, ValueError):
        scraped = {}
    evidence: list[Evidence] = []
    inputs: list[PacketInput] = []
    blobs: dict[str, bytes] = {}
    names = {str(m.get("__name__", "")) for rows in points.values() for m, _ in rows} | set(meta)
    kind = kind_of[_role_of(target, names)]
    # The metadata is the target's latest scrape: a family it names without samples is
    # known to exist only for an exposition of now (not for a window's start, nor the past).
    now = time.time()
    latest = max(points)
    notes: list[str] = []
    for t, rows in points.items():
        when_scraped = scraped.get(t)
        # No sample at all at this time: nothing was scraped then (the metadata alone would
        # make families look present without samples).
        text = b"" if not rows else exposition_text(
            ((dict(m), str(v)) for m, v in rows), meta, target,
            timestamp_ms=None if when_scraped is None else round(when_scraped * 1000),
            with_empty=t == latest and now - t <= LOOKBACK_S)
        # One URL per target (a window's two expositions are two scrapes of one target, as
        # the rates group them); the packet input names the time too (one copy each).
        url = f"{base}/api/v1/query?query={urllib.parse.quote(sel)}"
        original = f"{url}&time={t:.3f}"
        if not text and t != latest and any(points[latest]):
            # The window starts before Prometheus held this target: no scrape to count
            # from, which is not a damaged scrape (the rates then say "since start").
            when = _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(
                timespec="seconds")
            notes.append(f"{target.instance}: no samples at the window start ({when}); "
                         "the window begins at the first sample")
            continue
        if not text:
            evidence.append(Evidence(kind=kind, source=EvidenceSource(url=url),  # type: ignore[arg-type]
                                     status="malformed",
                                     problems=[Problem("Prometheus holds no samples of this "
                                                       "target at this time", where=url)]))
            continue
        ev = read_metrics_bytes(text, EvidenceSource.of_bytes(text, url=url),
                                kind, when_scraped)  # type: ignore[arg-type]
        evidence.append(ev)
        inputs.append(PacketInput(kind=ev.kind, original=original, sha256=ev.source.sha256,
                                  size=ev.source.size))
        blobs[original] = text
    return TargetEvidence(evidence, inputs, blobs, notes)


def prometheus_packet(base_url: str, group: PromGroup, *, at: float | None = None,
                      window: PromWindow | None = None, settings: PacketSettings | None = None,
                      timeout: float = 5.0, transport: Any = None) -> PromPacket:
    """One packet for a group of targets (never raises for what the API answers)."""
    evidence: list[Evidence] = []
    inputs: list[PacketInput] = []
    blobs: dict[str, bytes] = {}
    notes: list[str] = []
    for t in group.targets:
        got = target_evidence(base_url, t, at=at, window=window, timeout=timeout,
                              transport=transport)
        evidence += got.evidence
        inputs += got.inputs
        blobs |= got.blobs
        notes += got.notes
    # The notes go into the packet's manifest too (what was left out, said where it is kept).
    packet = Packet(settings=settings or PacketSettings(), evidence=evidence, inputs=inputs,
                    problems=[Problem(n, where=base_url) for n in notes])
    return PromPacket(group.name, group.targets, packet, blobs, notes)
