"""`inferguard report --html`: the page for every recorded packet, in a real headless
Chromium (no console error, no network request, the verdict text, every finding code and
every chart present and non-empty), its numbers checked against the verdict JSON, no raw
hash or token id, and its size bounded on a big generated trace.

Chromium is Debian's `chromium`; without it these browser tests skip, unless
INFERGUARD_REQUIRE_CHROMIUM=1 (set by .ci/run), where they fail. A screenshot of one page
goes to $INFERGUARD_ARTEFACTS (also set by .ci/run) or the test's temp dir.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import msgspec
import pytest

import inferguard as ig
from inferguard.cli import main
from inferguard.evidence._trace import MAX_POINTS
from inferguard.html import CHART_IDS, render_html

from . import lct_writer as w
from .chromium import REQUIRED_ENV, Browser, find_chromium
from .conftest import FIXTURES

PACKETS = sorted(p.parent for p in FIXTURES.rglob("packet.json"))
ONE = FIXTURES / "lmcache_live" / "mp_live_l1" / "packet"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if find_chromium() is None:
        if os.environ.get(REQUIRED_ENV) == "1":
            pytest.fail(f"{REQUIRED_ENV}=1 but chromium is not installed")
        pytest.skip("chromium not installed (apt-get install chromium); CI requires it")
    b = Browser()
    try:
        yield b
    finally:
        b.close()


def _cli_page(packet: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    capsys.readouterr()
    assert main(["report", "--packet", str(packet), "--html", str(out), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


class _Doc(HTMLParser):
    """The parts of the page the tests read: all text, tables as rows of cell text, the
    embedded JSON, and the id of every element."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tables: list[tuple[str, list[list[str]]]] = []
        self.ids: set[str] = set()
        self.json_text = ""
        self._stack: list[str] = []
        self._cell: list[str] | None = None
        self._caption: list[str] | None = None
        self._in_json = False
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "script" and a.get("type") == "application/json":
            self._in_json = True
        elif tag == "table":
            self.tables.append(("", []))
        elif tag == "caption":
            self._caption = []
        elif tag == "tr" and self.tables:
            self.tables[-1][1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_json = False
        elif tag == "caption" and self._caption is not None and self.tables:
            self.tables[-1] = ("".join(self._caption), self.tables[-1][1])
            self._caption = None
        elif tag in ("td", "th") and self._cell is not None and self.tables:
            self.tables[-1][1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._in_json:
            self.json_text += data
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._caption is not None:
            self._caption.append(data)

    def table(self, caption: str) -> list[list[str]]:
        return next(rows for c, rows in self.tables if c == caption)


def _doc(html: str) -> _Doc:
    d = _Doc()
    d.feed(html)
    return d


def _n(cell: str) -> float:
    return float(cell.replace(",", ""))


# ---------------------------------------------------------------------------------------------
# In the browser, every recorded packet


def test_every_recorded_packet_is_covered() -> None:
    assert len(PACKETS) >= 6


@pytest.mark.parametrize("packet", PACKETS, ids=lambda p: p.parent.name)
def test_page_in_chromium(packet: Path, browser: Browser, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    data = _cli_page(packet, out, capsys)
    shoot = packet == ONE
    load = browser.load(out.as_uri(), screenshot=shoot)
    assert not load.errors(), load.errors()
    # The only request is the page itself: nothing fetched, nothing failed.
    assert load.requests == [out.as_uri()], load.requests
    assert not load.failed, load.failed
    verdict = ig.diagnose_packet(packet)
    # The verdict is in the text as rendered (no script runs on this page).
    assert "LMCache is" in load.text or "cannot be said" in load.text
    answer = browser.evaluate("document.getElementById('answer').innerText")
    assert answer and answer.strip() in load.text
    for c in verdict.claims.made:
        assert c.statement in load.text, c.statement
    for f in verdict.diagnosis.findings:
        assert browser.evaluate(f"!!document.getElementById('finding-{f.code}')"), f.code
        assert f.code in load.text, f.code
    # Every chart container holds at least one figure with a drawing or a reason.
    for cid in CHART_IDS:
        n = browser.evaluate(f"""(() => {{ const e = document.getElementById('{cid}');
            if (!e) return -1; const f = e.querySelectorAll('figure');
            let ok = 0; for (const x of f) {{ const s = x.querySelector('svg.plot');
              if (s ? s.querySelectorAll('polyline,rect,circle').length > 1
                    : x.querySelector('p.none').innerText.trim().length > 0) ok++; }}
            return f.length && ok === f.length ? ok : 0; }})()""")
        assert n and n > 0, (cid, n)
    # The embedded JSON is the CLI's JSON, and the DOM keeps it whole.
    embedded = browser.evaluate("document.getElementById('verdict-json').textContent")
    assert json.loads(embedded) == data
    if shoot:
        assert load.screenshot and load.screenshot[:8] == b"\x89PNG\r\n\x1a\n"
        dest = Path(os.environ.get("INFERGUARD_ARTEFACTS") or tmp_path)
        dest.mkdir(parents=True, exist_ok=True)
        (dest / f"report-{packet.parent.name}.png").write_bytes(load.screenshot)
        (dest / f"report-{packet.parent.name}.html").write_bytes(out.read_bytes())


def test_the_browser_checks_can_fail(browser: Browser, tmp_path: Path) -> None:
    """Near miss for the checks above: a page with a console error, a script error and a
    fetch shows all three."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><p>x</p><img src='http://127.0.0.1:9/a.png'>"
                   "<script>console.error('boom'); undefined_fn();</script></body></html>")
    load = browser.load(bad.as_uri())
    errs = load.errors()
    assert any("boom" in e for e in errs), errs
    assert any("undefined_fn" in e for e in errs), errs
    assert "http://127.0.0.1:9/a.png" in load.requests


def test_the_page_needs_no_javascript(browser: Browser, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The only script element is the JSON data block; nothing on the page would run."""
    out = tmp_path / "r.html"
    _cli_page(ONE, out, capsys)
    doc = _doc(out.read_text(encoding="utf-8"))
    scripts = [a for t, a in doc.tags if t == "script"]
    assert scripts == [{"type": "application/json", "id": "verdict-json"}]
    assert not [a for _, a in doc.tags if any(k.startswith("on") for k in a)]
    assert not re.search(r"(src|href)=[\"'](https?:|//)", out.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# The page's text against the verdict JSON (computed here from the JSON)


def test_page_text_matches_the_verdict_json(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    data = _cli_page(ONE, out, capsys)
    html = out.read_text(encoding="utf-8")
    doc = _doc(html)
    text = " ".join(doc.text)
    assert json.loads(doc.json_text) == data
    rep = data["report"]
    det = rep["detected"]
    made = {c["id"]: c for c in data["claims"]["made"]}
    # The answer follows the claims: this packet measures hits with a metric.
    assert made["cache_hits"]["decided_by"] == "metric"
    assert f"LMCache is serving hits: measured by metric ({made['cache_hits']['evidence'][0]}" \
        in text
    verdict_rows = {r[0]: r[1] for r in _dl(html)}
    assert verdict_rows["mode"] == det["mode"]
    assert verdict_rows["level"] == det["level"]
    assert _n(verdict_rows["confidence"]) == det["confidence"]
    # Groups: every group's counts and reason, as in the JSON.
    groups = {r[0]: r for r in doc.table("Groups, with the reason for each status")[1:]}
    assert set(groups) == {g["id"] for g in rep["groups"]}
    for g in rep["groups"]:
        row = groups[g["id"]]
        assert row[2] == g["status"]
        assert [int(x) for x in row[4:7]] == [g.get("populated", 0), g.get("zero", 0),
                                             g.get("missing", 0)]
        assert row[7] == (g.get("reason") or g.get("note") or "")
    # Families: every family's status and total.
    seen = 0
    for g in rep["groups"]:
        fams = [f for f in rep["families"] if f["group"] == g["id"]]
        if not fams:
            continue
        rows = {r[0]: r for r in doc.table(f"Families of {g['id']}")[1:]}
        for f in fams:
            assert rows[f["name"]][1] == f["status"]
            if f.get("total") is None:
                assert rows[f["name"]][4] == "-"
            else:
                assert _n(rows[f["name"]][4]) == pytest.approx(f["total"], rel=1e-5)
            seen += 1
    assert seen == len(rep["families"])
    # Checklist and coverage.
    for c in rep["checklist"]:
        assert c["description"] in text
    assert f"{round(rep['coverage'] * 100, 1):g}%" in text
    # The trace timeline's table is the series in the JSON, point for point.
    series = data["views"]["traces"][0]["series"]
    rows = doc.table("Trace records per second by op")
    assert len(rows) - 1 == len(series["t_s"])
    ops = list(series["ops_per_second"])
    for j, row in enumerate(rows[1:]):
        assert _n(row[0]) == pytest.approx(series["t_s"][j])
        for k, op in enumerate(ops):
            assert _n(row[k + 1]) == pytest.approx(series["ops_per_second"][op][j], rel=1e-5)
    reuse = doc.table("Keys by how many lookups and reads named them")
    assert [r[0] for r in reuse[1:]] == series["reuse_bins"]
    assert [_n(r[2]) for r in reuse[1:]] == pytest.approx(series["keys_by_reads"])
    breaks = doc.table("Lifecycle breaks over time")
    assert {r[0]: _n(r[1]) for r in breaks[1:]} == {b["kind"]: b["count"]
                                                    for b in series["breaks"]}
    # Rates: each with its value and window, or the page says there are none.
    if not rep.get("rates"):
        assert "No rates in this report." in text
    else:
        rows = doc.table("Hit rates (each with its window)")[1:]
        assert len(rows) == len(rep["rates"])
        for row, rate in zip(rows, rep["rates"], strict=True):
            assert row[0] == (rate.get("title") or rate["name"])
            if rate.get("value") is None:
                assert row[2] == "no rate (nothing asked)"
            else:
                assert _n(row[2].split(" ")[0]) == pytest.approx(rate["value"], rel=1e-5)
            assert _n(row[3].split(" ")[0]) == pytest.approx(rate["numerator"], rel=1e-5)
            assert _n(row[4].split(" ")[0]) == pytest.approx(rate["denominator"], rel=1e-5)
            assert row[5].startswith(rate["window"]["label"])


def _dl(html: str) -> list[tuple[str, str]]:
    sect = html[html.index('<section id="verdict">'):html.index("</section>")]
    return re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", sect)


# ---------------------------------------------------------------------------------------------
# Privacy and size


def _raw_ids(trace: Path) -> tuple[set[str], list[list[int]]]:
    """Every chunk hash (hex) and token-id list in a trace, read with the test's decoder."""
    data = trace.read_bytes()
    hashes: set[str] = set()
    tokens: list[list[int]] = []
    off = 0
    n0 = int.from_bytes(data[0:4], "big")
    off = 4 + n0
    while off + 4 <= len(data):
        n = int.from_bytes(data[off:off + 4], "big")
        body = data[off + 4:off + 4 + n]
        off += 4 + n
        try:
            rec = msgspec.msgpack.decode(body)
        except msgspec.DecodeError:  # a damaged record: nothing to look for
            continue
        _walk(rec, hashes, tokens)
    return hashes, tokens


def _walk(v: Any, hashes: set[str], tokens: list[list[int]]) -> None:
    if isinstance(v, dict):
        for k, x in v.items():
            if k in ("chunk_hash", "chunk_hash_hex") and isinstance(x, bytes | str):
                hashes.add(x.hex() if isinstance(x, bytes) else x)
            elif k == "token_ids" and isinstance(x, list) and len(x) >= 4:
                tokens.append([int(t) for t in x])
            _walk(x, hashes, tokens)
    elif isinstance(v, list):
        for x in v:
            _walk(x, hashes, tokens)


@pytest.mark.parametrize("packet", PACKETS, ids=lambda p: p.parent.name)
def test_no_raw_hash_or_token_id_on_the_page(packet: Path) -> None:
    html = render_html(ig.diagnose_packet(packet))
    lowered = html.lower()
    for trace in sorted((packet / "inputs").rglob("*.lct")):
        hashes, tokens = _raw_ids(trace)
        leaked = [h for h in hashes if len(h) >= 16 and h.lower() in lowered]
        assert not leaked, leaked[:3]
        for t in tokens[:200]:
            assert ", ".join(map(str, t[:4])) not in html and \
                ",".join(map(str, t[:4])) not in html, t[:4]
    # Nothing that looks like a digest either (sha256 of inputs, 64-bit fingerprints).
    assert not re.search(r"\b[0-9a-f]{32,}\b", lowered)


def test_the_privacy_check_sees_a_leak() -> None:
    hashes, tokens = _raw_ids(FIXTURES / "lmcache_live" / "mp_live_l2" / "packet" / "inputs"
                              / "trace" / "events.lct")
    assert hashes and tokens  # the check has something to look for


def _big_packet(tmp: Path) -> Path:
    """A packet with a big generated trace spread over a long time (many timeline buckets,
    so the series must be aggregated) and two scrapes of the same kind (counter deltas)."""
    from benchmarks.trace_gen import write_storage_trace

    big = tmp / "big.lct"
    write_storage_trace(big, int(os.environ.get("INFERGUARD_HTML_BIG_MB", "48")) << 20)
    long = tmp / "long.lct"
    long.write_bytes(w.trace(*(w.storage_record(op, 2, t * 7.0, first_key=t % 300)
                               for t in range(3000)
                               for op in ("submit_prefetch_task", "finish_read_prefetched"))))
    m1, m2 = tmp / "a.prom", tmp / "b.prom"
    m1.write_text("# TYPE lmcache_mp_lookup_hit_tokens_total counter\n"
                  "lmcache_mp_lookup_hit_tokens_total 100\n")
    m2.write_text("# TYPE lmcache_mp_lookup_hit_tokens_total counter\n"
                  "lmcache_mp_lookup_hit_tokens_total 350\n")
    packet = ig.Packet.from_files([("trace", big), ("trace", long), ("lmcache_metrics", m1),
                                   ("lmcache_metrics", m2)])
    return packet.write(tmp / "packet")


def test_page_size_is_bounded_on_a_big_trace(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    packet = _big_packet(tmp_path)
    size_in = sum(p.stat().st_size for p in (packet / "inputs").rglob("*.lct"))
    out = tmp_path / "big.html"
    data = _cli_page(packet, out, capsys)
    size = out.stat().st_size
    assert size_in > 40 << 20
    assert size < 1 << 20, size  # a few hundred kB for tens of MB of trace
    traces = data["views"]["traces"]
    assert len(traces) == 2
    for t in traces:
        s = t["series"]
        assert len(s["t_s"]) <= MAX_POINTS
        assert all(len(v) == len(s["t_s"]) for v in s["ops_per_second"].values())
    # The 21,000 s trace is aggregated: each point sums many one-second buckets.
    long = next(t["series"] for t in traces if t["source"].endswith("long.lct"))
    assert long["point_s"] > 100 and long["t_s"][-1] > 20000
    # Per second, averaged over each point: 1 lookup per 7 s.
    lk = long["ops_per_second"]["submit_prefetch_task"]
    assert sum(lk[:-1]) * long["point_s"] + lk[-1] * long["last_point_s"] == \
        pytest.approx(3000, rel=1e-6)
    assert long["last_point_s"] < long["point_s"]  # a partial last point, at its own width
    # Two scrapes of one kind: the counter's increase is drawn.
    (deltas,) = data["views"]["scrape_deltas"]
    assert deltas["counters"] == [{"family": "lmcache_mp_lookup_hit_tokens_total",
                                   "deltas": [250.0], "resets": 0}]
    doc = _doc(out.read_text(encoding="utf-8"))
    rows = doc.table("Counter increases between scrapes of lmcache_metrics")
    assert rows[1] == ["1→2", "250"]


# ---------------------------------------------------------------------------------------------
# The series themselves, against a workload whose truth is known (both backends)


def test_trace_series_match_the_workload(backend: str, tmp_path: Path) -> None:
    from collections import Counter

    from inferguard.evidence._trace import REUSE_EDGES
    from inferguard.evidence._trace_read import read_trace

    from .trace_truth import generate, oracle, role

    wl = generate(5, 400)
    path = tmp_path / "t.lct"
    path.write_bytes(wl.data)
    s = read_trace(path).facts.series
    # Records per op: the per-second values times the point width give back the counts.
    per_role = Counter(role(r.qualname) for r in wl.recs)
    for op, values in s.ops_per_second.items():
        assert sum(values[:-1]) * s.point_s + values[-1] * s.last_point_s == \
            pytest.approx(per_role[op], rel=1e-6), op
    assert set(s.ops_per_second) == {r for r, n in per_role.items() if n}
    # Keys by how many lookup / read records named them, binned by the documented edges.
    lookups: Counter[Any] = Counter()
    reads: Counter[Any] = Counter()
    enters: Counter[Any] = Counter()
    keys = set()
    for r in wl.recs:
        ro = role(r.qualname)
        for k in r.keys:
            if k is None:
                continue
            keys.add(k)
            lookups[k] += ro == "submit_prefetch_task"
            reads[k] += ro == "finish_read_prefetched"
            enters[k] += ro == "read_prefetched_results.__enter__"

    def binned(count: dict[Any, int]) -> list[float]:
        out = [0.0] * len(REUSE_EDGES)
        for k in keys:
            out[max(i for i, e in enumerate(REUSE_EDGES) if count.get(k, 0) >= e)] += 1
        return out

    assert s.keys_by_lookups == binned(lookups)
    assert s.keys_by_reads == binned({k: max(reads[k], enters[k]) for k in keys})
    assert not s.keys_estimated
    # Lifecycle breaks: the oracle's counts, and the example times are the records' times.
    truth = oracle(wl.recs)
    t_of = {r.offset: r.t for r in wl.recs}
    got = {b.kind: b for b in s.breaks}
    want = {k: v for k, v in truth.lifecycle.items() if v[0]}
    assert set(got) == set(want)
    for kind, b in got.items():
        assert b.count == want[kind][0], kind
        times = [t_of[o] for o in want[kind][1][:len(b.t_s)]]
        assert [t - b.t_s[0] for t in b.t_s] == pytest.approx(
            [t - times[0] for t in times], abs=2e-6)  # the series keep microseconds


def test_rates_section_renders_rates_with_windows() -> None:
    from inferguard.html._page import rates_section

    assert "No rates in this report." in rates_section(None)
    assert "No rates in this report." in rates_section([])
    rate = {"name": "lmcache_mp_lookup_hit_rate", "title": "LMCache MP lookup hit rate",
            "target": "http://127.0.0.1:1/metrics", "numerator_family": "hit_total",
            "denominator_family": "req_total", "numerator": 250.0, "denominator": 1000.0,
            "value": 0.25, "window": {"kind": "between_scrapes", "label": "scrape 1 → 2",
                                      "seconds": 30.0, "resets": ["hit_total: went down"]},
            "level": "measured"}
    rows = _doc(rates_section([rate, {**rate, "value": None, "target": "t2"}])) \
        .table("Hit rates (each with its window)")
    assert rows[1] == ["LMCache MP lookup hit rate", "http://127.0.0.1:1/metrics", "0.25 (25%)",
                       "250 hit_total", "1000 req_total",
                       "scrape 1 → 2 (30 s); resets: hit_total: went down", "measured", ""]
    assert rows[2][2] == "no rate (nothing asked)"
    # Anything else is shown field by field.
    other = _doc(rates_section({"a": 1, "b": {"c": "x"}})).table(
        "Hit rates (each with its window)")
    assert other == [["a", "b.c"], ["1", "x"]]


@pytest.mark.parametrize("packet", PACKETS, ids=lambda p: p.parent.name)
def test_the_answer_follows_the_claims(packet: Path) -> None:
    """The one-line answer says no more than the claims: serving only with a supported
    `cache_hits` claim, not serving only with `no_cache_hits` or a withheld claim that names
    contradicting findings, which the answer names."""
    from inferguard.html import hit_answer

    v = ig.diagnose_packet(packet)
    answer, tone = hit_answer(v)
    made = {c.id: c for c in v.claims.made}
    withheld = {w.id: w for w in v.claims.withheld}
    if answer.startswith("LMCache is serving hits"):
        assert made["cache_hits"].level == "supported"
        assert made["cache_hits"].evidence[0] in answer
        assert tone == "pos"
    elif answer.startswith("LMCache is not serving hits"):
        assert "no_cache_hits" in made or withheld["cache_hits"].codes
        codes = withheld["cache_hits"].codes if "cache_hits" in withheld else []
        for code in codes:
            assert code in answer
            assert v.diagnosis.finding(code) is not None
        assert tone == "neg"
    else:
        assert "cache_hits" not in made or made["cache_hits"].level != "supported"
        assert tone == "unk"


@pytest.mark.parametrize("packet", PACKETS, ids=lambda p: p.parent.name)
def test_packets_written_before_the_series_still_load(packet: Path) -> None:
    """The recorded packets' stored evidence predates `TraceFacts.series` and
    `OtelFacts.example_request`: every new field has a default, so none is dropped."""
    stored = ig.Packet.load(packet)
    assert not [p for p in stored.problems if "unreadable" in p.message], stored.problems
    assert ig.Packet.read(packet).of_kind("trace") or not (packet / "inputs" / "trace").exists()


# ---------------------------------------------------------------------------------------------
# The command's edges


def test_report_cli_usage_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--packet", str(ONE)]) == 2
    assert "give --html" in capsys.readouterr().err
    assert main(["report", "--packet", str(tmp_path / "nope"), "--html",
                 str(tmp_path / "x.html")]) == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()
    # An unwritable target (its directory is a file): exit 2, the reason said.
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["report", "--packet", str(ONE), "--html", str(blocker / "r.html")]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert blocker.read_text() == "not a directory"


def test_report_cli_replaces_a_page_whole(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    out.write_text("old")
    data = _cli_page(ONE, out, capsys)
    doc = _doc(out.read_text(encoding="utf-8"))
    assert json.loads(doc.json_text) == data
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # no temp file left
    assert out.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def test_the_page_says_what_the_packet_could_not_read(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    packet = tmp_path / "p"
    shutil.copytree(ONE, packet)
    (packet / "metrics" / "lmcache_log_evidence.json").write_text("{")
    out = tmp_path / "r.html"
    data = _cli_page(packet, out, capsys)
    (problem,) = [p for p in data["views"]["packet_problems"]
                  if p.get("where") == "metrics/lmcache_log_evidence.json"]
    doc = _doc(out.read_text(encoding="utf-8"))
    cap = next(c for c, _ in doc.tables if c.startswith("What the packet could not read"))
    assert f"({data['views']['packet_problem_count']} in all" in cap
    assert ["metrics/lmcache_log_evidence.json", problem["message"]] in doc.table(cap)
    # Near miss: the packet as recorded has nothing to say here.
    _cli_page(ONE, out, capsys)
    assert not [c for c, _ in _doc(out.read_text(encoding="utf-8")).tables
                if c.startswith("What the packet could not read")]


# ---------------------------------------------------------------------------------------------
# Any other result document (compare, fleet) as a page


def test_document_page_in_chromium(browser: Browser, tmp_path: Path) -> None:
    from inferguard.html import render_document_html

    v = ig.diagnose_packet(FIXTURES / "lmcache_live" / "vllm_live_embedded" / "packet")
    out = tmp_path / "d.html"
    out.write_text(render_document_html(v.diagnosis, title="diagnosis"), encoding="utf-8")
    load = browser.load(out.as_uri())
    assert not load.errors(), load.errors()
    assert load.requests == [out.as_uri()]
    assert v.diagnosis.findings
    doc = _doc(out.read_text(encoding="utf-8"))
    rows = doc.table("findings")
    header = rows[0]
    for f, row in zip(v.diagnosis.findings, rows[1:], strict=True):
        cells = dict(zip(header, row, strict=True))
        assert cells["code"] == f.code and cells["message"] == f.message
        assert cells["severity"] == f.severity and f.code in load.text
    assert json.loads(doc.json_text) == msgspec.to_builtins(v.diagnosis)
    assert "mode" in load.text and v.diagnosis.mode in load.text


def test_counter_deltas_follow_the_rates_resets(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Three scrapes of one target: 100 → 350 → 50. The second interval went down, a reset:
    its increase is the new value (50), as the rates count it; a counter that never moved is
    not drawn."""
    paths = []
    for i, v in enumerate((100, 350, 50)):
        p = tmp_path / f"s{i}.prom"
        p.write_text("# TYPE lmcache_mp_lookup_hit_tokens_total counter\n"
                     f"lmcache_mp_lookup_hit_tokens_total {v}\n"
                     "# TYPE lmcache_mp_lookup_requested_tokens_total counter\n"
                     "lmcache_mp_lookup_requested_tokens_total 7\n")
        paths.append(("lmcache_metrics", p))
    packet = ig.Packet.from_files(paths).write(tmp_path / "packet")
    out = tmp_path / "r.html"
    data = _cli_page(packet, out, capsys)
    (d,) = data["views"]["scrape_deltas"]
    assert d["target"] == "lmcache_metrics" and len(d["scrapes"]) == 3
    assert d["counters"] == [{"family": "lmcache_mp_lookup_hit_tokens_total",
                              "deltas": [250.0, 50.0], "resets": 1}]
    rows = _doc(out.read_text(encoding="utf-8")).table(
        "Counter increases between scrapes of lmcache_metrics")
    assert rows[1:] == [["1→2", "250"], ["2→3", "50"]]


def test_compare_page_in_chromium(browser: Browser, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    a = FIXTURES / "lmcache_live" / "mp_live_l1" / "packet"
    b = FIXTURES / "lmcache_live" / "mp_live_l2" / "packet"
    out = tmp_path / "c.html"
    capsys.readouterr()
    assert main(["compare", str(a), str(b), "--json", "--html", str(out)]) == 0
    data = json.loads(capsys.readouterr().out)
    load = browser.load(out.as_uri())
    assert not load.errors(), load.errors()
    assert load.requests == [out.as_uri()]
    doc = _doc(out.read_text(encoding="utf-8"))
    assert json.loads(doc.json_text) == data
    rows = doc.table("families")
    names = [r[0] for r in rows[1:]]
    assert names == [f["name"] for f in data["families"]]
    rates = doc.table("rates")
    for row, r in zip(rates[1:], data["rates"], strict=True):
        assert row[0] == r["name"]
        if r.get("a") is not None:
            assert _n(row[1]) == pytest.approx(r["a"], rel=1e-5)
