"""One verdict as one self-contained HTML page: styles, charts (inline SVG) and the verdict
JSON inline, no script to run and nothing fetched, so it reads the same offline, from a
ticket attachment, or with JavaScript off.

Order, top first: the verdict (mode, level, the one-line answer), hit rates, findings by
severity, groups with their families, the checklist, then the pictures. Every number printed
is a value of the `Verdict` (the same document `--json` prints, embedded at the end as
`<script type="application/json" id="verdict-json">`); the page rephrases claims, it never
makes one.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

import msgspec

from inferguard._version import __version__
from inferguard.html import _svg
from inferguard.html._style import CSS as _CSS
from inferguard.html._style import plain as _plain
from inferguard.html._svg import num
from inferguard.verdict._verdict import Verdict
from inferguard.verdict._views import SUPPORTED, ScrapeDeltas, TraceSeries, TraceView

SEVERITIES = ("error", "warning", "info")
CHART_IDS = ("chart-timeline", "chart-lookups", "chart-evictions", "chart-reuse",
             "chart-breaks", "chart-waterfall", "chart-deltas")
"""The pictures' containers, in page order (each holds at least one figure)."""
_T = "time since the trace's first record (s)"
_LOOKUP, _READ = "submit_prefetch_task", "finish_read_prefetched"


def hit_answer(v: Verdict) -> tuple[str, str]:
    """The one-line answer and its tone (pos, neg, unk), worded from the claims alone."""
    made = {c.id: c for c in v.claims.made}
    withheld = {w.id: w for w in v.claims.withheld}
    if (c := made.get("cache_hits")) is not None:
        ev = "; ".join(c.evidence[:3])
        if c.level == SUPPORTED:
            return f"LMCache is serving hits: measured by {c.decided_by} ({ev}).", "pos"
        return (f"LMCache may be serving hits: only {c.decided_by} evidence says so ({ev}); "
                "nothing measured it.", "unk")
    if (c := made.get("no_cache_hits")) is not None:
        return (f"LMCache is not serving hits: measured by {c.decided_by} "
                f"({'; '.join(c.evidence[:3])}).", "neg")
    if (w := withheld.get("cache_hits")) is not None:
        if w.codes:
            many = len(w.codes) > 1
            return (f"LMCache is not serving hits: the finding{'s' if many else ''} "
                    f"{', '.join(w.codes)} contradict{'' if many else 's'} it (see Findings).",
                    "neg")
        return f"Whether LMCache is serving hits cannot be said: {w.reason}.", "unk"
    return "Whether LMCache is serving hits cannot be said from this packet.", "unk"


def _h(text: object) -> str:
    return escape(str(text))


def _verdict(v: Verdict) -> str:
    r, det = v.report, v.report.detected
    answer, tone = hit_answer(v)
    mode_claim = next((c for c in v.claims.made if c.id in ("mode", "mode_configured")), None)
    rows = [("mode", det.mode + (f" ({det.flavor})" if det.flavor else "")),
            ("level", det.level), ("confidence", num(det.confidence))]
    if r.expected_mode:
        rows.append(("expected mode", f"{r.expected_mode} (match: {r.mode_match})"))
    if mode_claim is not None:
        rows.append(("mode claim", f"{mode_claim.statement} [{mode_claim.level}], decided by "
                                   f"{mode_claim.decided_by}"))
    dl = "".join(f"<dt>{_h(k)}</dt><dd>{_h(val)}</dd>" for k, val in rows)
    made = "".join(
        f"<li><strong>{_h(c.statement)}</strong> [{_h(c.level)}]"
        + (f", decided by {_h(c.decided_by)}" if c.decided_by else "")
        + (f": {_h('; '.join(c.evidence))}" if c.evidence else "") + "</li>"
        for c in v.claims.made)
    withheld = "".join(f"<li>{_h(w.statement)}: {_h(w.reason)}</li>" for w in v.claims.withheld)
    notes = "".join(f"<li>{_h(n)}</li>" for n in det.notes)
    return (f'<section id="verdict"><h2>Verdict</h2><p class="answer {tone}" id="answer">'
            f"{_h(answer)}</p><dl>{dl}</dl>"
            f"<h3>Claims made</h3><ul>{made or '<li>none</li>'}</ul>"
            f"<h3>Not claimed</h3><ul>{withheld or '<li>none</li>'}</ul>"
            + (f"<h3>Mode notes</h3><ul>{notes}</ul>" if notes else "") + "</section>")


def _cells(value: Any) -> str:
    if isinstance(value, float | int) and not isinstance(value, bool):
        return num(value)
    if isinstance(value, dict | list):
        return msgspec.json.encode(value).decode()
    return "-" if value is None else str(value)


def _rates(v: Verdict) -> str:
    """Hit rates with their windows, as the report carries them (`report.rates`, when the
    report has them)."""
    rates = getattr(v.report, "rates", None)
    return rates_section(None if rates is None else _plain(rates))


def _flat(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, x in row.items():
        if isinstance(x, dict):
            out.update(_flat(x, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = x
    return out


def rates_section(data: Any) -> str:
    """The rates section from the rates' JSON form: a rate with a `value` and a `window` is
    shown as value, numerator / denominator, window and level; anything else as its fields."""
    head = '<section id="rates"><h2>Hit rates</h2>'
    items: list[Any] = [data] if data is not None else []
    if isinstance(data, list):
        items = data
    elif isinstance(data, dict) and isinstance(data.get("rates"), list):
        items = data["rates"]
    rows = [x for x in items if isinstance(x, dict)]
    if not rows:
        return head + '<p class="none">No rates in this report.</p></section>'
    if all("value" in x and isinstance(x.get("window"), dict) for x in rows):
        cells = []
        for x in rows:
            win = x["window"]
            span = f"{win.get('label', '')}" + (f" ({num(win['seconds'])} s)"
                                                  if win.get("seconds") is not None else "")
            if win.get("resets"):
                span += "; resets: " + "; ".join(map(str, win["resets"]))
            cells.append([str(x.get("title") or x.get("name", "")), str(x.get("target", "")),
                          "no rate (nothing asked)" if x["value"] is None
                          else f"{num(x['value'])} ({num(round(x['value'] * 100, 2))}%)",
                          f"{num(x.get('numerator'))} {x.get('numerator_family', '')}",
                          f"{num(x.get('denominator'))} {x.get('denominator_family', '')}",
                          span, str(x.get("level", "")), str(x.get("note") or "")])
        return head + '<div class="wide">' + _svg.table(
            ["rate", "target", "value (ratio)", "numerator", "denominator", "window", "level",
             "note"], cells, "Hit rates (each with its window)") + "</div></section>"
    flat = [_flat(x) for x in rows]
    cols: list[str] = []
    for x in flat:
        cols += [k for k in x if k not in cols]
    return head + _svg.table(cols, [[_cells(x.get(c)) for c in cols] for x in flat],
                             "Hit rates (each with its window)") + "</section>"


def _findings(v: Verdict) -> str:
    out = ['<section id="findings"><h2>Findings</h2>']
    if not v.diagnosis.findings:
        out.append('<p class="none">No findings.</p>')
    for sev in SEVERITIES:
        fs = [f for f in v.diagnosis.findings if f.severity == sev]
        if not fs:
            continue
        out.append(f"<h3>{_h(sev)} ({len(fs)})</h3>")
        for f in fs:
            ev = "".join(f"<li>{_h(e)}</li>" for e in f.evidence)
            out.append(
                f'<div class="finding" id="finding-{_h(f.code)}"><span class="sev '
                f'sev-{_h(f.severity)}">{_h(f.severity)}</span> <code>{_h(f.code)}</code> '
                f"[{_h(f.level)}]<p>{_h(f.message)}</p>"
                + (f"<p>Evidence:</p><ul>{ev}</ul>" if ev else "")
                + f"<p><strong>Next step:</strong> {_h(f.next_step)}</p></div>")
    return "".join(out) + "</section>"


def _groups(v: Verdict) -> str:
    r = v.report
    rows = [[g.id, g.title, g.status, "yes" if g.required else "", str(g.populated),
             str(g.zero), str(g.missing), g.reason or g.note or ""] for g in r.groups]
    out = ['<section id="groups"><h2>Metric groups and families</h2>',
           _svg.table(["group", "title", "status", "required", "populated", "zero", "missing",
                       "reason"], rows, "Groups, with the reason for each status")]
    for g in r.groups:
        fams = [f for f in r.families if f.group == g.id]
        if not fams:
            continue
        out.append(f"<details><summary>{_h(g.id)}: {len(fams)} families ({_h(g.status)})"
                   "</summary>")
        out.append(_svg.table(
            ["family", "status", "type", "samples", "total", "found as", "explanation"],
            [[f.name, f.status, f.type, str(f.samples), num(f.total), f.found_as or "",
              f.explanation or ""] for f in fams], f"Families of {g.id}"))
        out.append("</details>")
    if r.missing_required:
        out.append(f"<p>Missing required: {_h(', '.join(r.missing_required))}</p>")
    if r.zero_required:
        out.append(f"<p>Zero required: {_h(', '.join(r.zero_required))}</p>")
    return "".join(out) + "</section>"


def _checklist(v: Verdict) -> str:
    r = v.report
    cov = ("n/a (no checklist for this mode)" if r.coverage is None
           else f"{num(round(r.coverage * 100, 1))}%")
    items = "".join(
        f'<li><span class="{"present" if c.present else "absent"}">'
        f'{"present" if c.present else "absent"}</span> {_h(c.description)}'
        + (f" ({_h('; '.join(c.evidence))})" if c.evidence else "") + "</li>"
        for c in r.checklist)
    return (f'<section id="checklist"><h2>Checklist</h2><p>Evidence coverage for '
            f"{_h(r.effective_mode)}: {_h(cov)}</p><ul>{items or '<li>none</li>'}</ul>"
            "</section>")


def _op_label(role: str) -> str:
    return "other records" if role == "other" else role


def _trace_charts(i: int, tv: TraceView) -> dict[str, str]:
    s: TraceSeries = tv.series
    sfx = f"-{i}"
    src = f" ({tv.source})"
    out: dict[str, str] = {}
    last = (f" (the last {num(s.last_point_s)} s)"
            if s.last_point_s not in (None, s.point_s) else "")
    cap_t = (f"Each point sums {num(s.point_s)} s{last} of the trace{src}; "
             "values are records per second over the point.")
    ops = [(_op_label(k), v) for k, v in s.ops_per_second.items()]
    out["chart-timeline"] = (_svg.lines(f"chart-timeline{sfx}", "Trace records per second by op",
                                        s.t_s, ops, _T, "records per second (1/s)", cap_t)
                             if ops else _svg.empty(f"chart-timeline{sfx}", "Trace timeline",
                                                    f"The trace{src} holds no records."))
    lk = [(f"lookups ({_LOOKUP})", s.ops_per_second[_LOOKUP])] if _LOOKUP in s.ops_per_second \
        else []
    lk += [(f"reads of prefetched hits ({_READ})", s.ops_per_second[_READ])] \
        if _READ in s.ops_per_second else []
    out["chart-lookups"] = (
        _svg.lines(f"chart-lookups{sfx}", "Lookups vs reads of their hits", s.t_s, lk, _T,
                   "calls per second (1/s)",
                   cap_t + " A read of prefetched results follows a lookup that found data.")
        if lk else _svg.empty(f"chart-lookups{sfx}", "Lookups vs hits",
                              f"The trace{src} records no lookup or read call "
                              "(events-level traces carry cache events instead)."))
    ev = [(k, v) for k, v in s.events_per_second.items()
          if k.startswith(("delete_l1", "store_l1"))]
    ev.sort(key=lambda kv: (not kv[0].startswith("delete"), kv[0]))
    out["chart-evictions"] = (
        _svg.lines(f"chart-evictions{sfx}", "L1 deletes (evictions) and stores per second",
                   s.t_s, ev, _T, "cache entries per second (1/s)",
                   cap_t + " delete_l1 events are L1 evictions or explicit deletes.")
        if ev else _svg.empty(f"chart-evictions{sfx}", "L1 evictions",
                              f"The trace{src} carries no L1 cache events (only events-level "
                              "traces record stores and deletes per tier)."))
    if s.reuse_bins:
        est = " Counts are estimated from a hash sample of keys." if s.keys_estimated else ""
        out["chart-reuse"] = _svg.bars(
            f"chart-reuse{sfx}", "Keys by how many lookups and reads named them", s.reuse_bins,
            [("keys by lookups", s.keys_by_lookups), ("keys by reads", s.keys_by_reads)],
            "records naming the key (per key)", "keys (count)",
            f"Key reuse in the trace{src}: a key read twice or more was reused.{est}")
    else:
        out["chart-reuse"] = _svg.empty(f"chart-reuse{sfx}", "Key reuse",
                                        f"The trace{src} carries no object keys to count.")
    end = (s.t_s[-1] + s.point_s) if s.t_s else 0.0
    out["chart-breaks"] = (
        _svg.strips(f"chart-breaks{sfx}", "Lifecycle breaks over time",
                    [(b.kind, b.count, b.t_s) for b in s.breaks], end, _T,
                    f"Each mark is one break of that kind in the trace{src} (its first examples;"
                    " the count in brackets is the total).")
        if s.breaks else _svg.empty(f"chart-breaks{sfx}", "Lifecycle breaks",
                                    f"No lifecycle break in the trace{src}."))
    return out


def _delta_chart(i: int, d: ScrapeDeltas) -> str:
    cid = f"chart-deltas-{i}"
    if len(d.scrapes) < 2:
        return _svg.empty(cid, f"Counter deltas ({d.target})",
                          f"One scrape of {d.target} ({', '.join(d.scrapes)}): deltas need two "
                          "scrapes of the same kind.")
    if not d.counters:
        return _svg.empty(cid, f"Counter deltas ({d.target})",
                          f"No counter of {d.target} moved between its {len(d.scrapes)} scrapes.")
    cats = [f"{a + 1}→{a + 2}" for a in range(len(d.scrapes) - 1)]
    return _svg.bars(cid, f"Counter increases between scrapes of {d.target}", cats,
                     [(c.family, c.deltas) for c in d.counters[:6]],
                     "scrape interval (n-th to next)", "increase (counter units)",
                     f"The counters of {d.target} that moved most, over the scrapes "
                     + "; ".join(f"{n + 1}: {s}" for n, s in enumerate(d.scrapes))
                     + (f" ({len(d.counters)} in the JSON)" if len(d.counters) > 6 else ""))


def _pictures(v: Verdict) -> str:
    sets: dict[str, list[str]] = {k: [] for k in CHART_IDS}
    for i, tv in enumerate(v.views.traces):
        for k, fig in _trace_charts(i, tv).items():
            sets[k].append(fig)
    if not v.views.traces:
        for k, title in (("chart-timeline", "Trace timeline"), ("chart-lookups",
                         "Lookups vs hits"), ("chart-evictions", "L1 evictions"),
                         ("chart-reuse", "Key reuse"), ("chart-breaks", "Lifecycle breaks")):
            sets[k].append(_svg.empty(f"{k}-0", title, "No .lct trace in this packet."))
    req = v.views.request
    sets["chart-waterfall"].append(
        _svg.waterfall("chart-waterfall-0", "Span waterfall of one request",
                       [(s.name, s.depth, s.start_ms, s.duration_ms) for s in req.spans],
                       f"The spans of the request with the most spans in {req.source}; "
                       "dashed bars are spans that never ended.")
        if req is not None else
        _svg.empty("chart-waterfall-0", "Span waterfall", "No request spans in this packet."))
    sets["chart-deltas"] += [_delta_chart(i, d) for i, d in enumerate(v.views.scrape_deltas)] \
        or [_svg.empty("chart-deltas-0", "Counter deltas", "No metrics scrape in this packet.")]
    body = "".join(f'<div id="{k}" class="chart-set">{"".join(figs)}</div>'
                   for k, figs in sets.items())
    return f'<section id="pictures"><h2>Pictures</h2>{body}</section>'


def _evidence(v: Verdict) -> str:
    rows = [[e.kind, e.source, e.status, str(e.problems)] for e in v.report.evidence]
    out = ['<section id="evidence"><h2>Evidence read</h2>',
           _svg.table(["kind", "source", "status", "problems"], rows, "Evidence in the packet")
           if rows else '<p class="none">No evidence was read from this packet.</p>']
    vw = v.views
    if vw.packet_problems:
        out.append(_svg.table(
            ["where", "problem"], [[p.where or "-", p.message] for p in vw.packet_problems],
            f"What the packet could not read ({vw.packet_problem_count} in all; the verdict "
            "is judged without it)"))
    return "".join(out) + "</section>"


def verdict_json(v: Verdict, document: Any = None) -> str:
    """The verdict as the page embeds it: compact JSON (of `document`, the verdict's JSON
    form the caller prints, when given), `<` escaped so no `</script>` ends the block early
    (JSON parsers read `\\u003c` back as `<`)."""
    data = msgspec.json.encode(v if document is None else document)
    return data.decode().replace("<", "\\u003c")


def render_html(v: Verdict, *, title: str | None = None, document: Any = None) -> str:
    """The whole page for one verdict (a str of UTF-8 HTML, no external reference).
    `document` is the verdict's JSON form to embed, when the caller prints one (the CLI
    passes what `--json` prints, so the page carries exactly that); default: the verdict."""
    head = title or f"InferGuard report: {v.report.detected.mode}"
    parts: Iterable[str] = (
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{_h(head)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{_h(head)}</h1><p>Schema {_h(v.schema)}, InferGuard "
        f"{_h(__version__)}. Every number on this page is a value of the verdict JSON "
        "embedded at its end.</p></header>",
        _verdict(v), _rates(v), _findings(v), _groups(v), _checklist(v), _pictures(v),
        _evidence(v),
        '<footer>Machine-readable: the <code>script#verdict-json</code> element holds the '
        "verdict (the same JSON as <code>inferguard report --json</code>).</footer>",
        f'<script type="application/json" id="verdict-json">{verdict_json(v, document)}</script>',
        "</body></html>")
    return "\n".join(parts) + "\n"
