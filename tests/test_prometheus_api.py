"""A real Prometheus server scrapes local servers that serve real recorded LMCache 0.5.6 and
vLLM /metrics bodies under several instance labels; what `collect-lmcache --prometheus-url`
and `fleet` make of them must equal what the same bodies give when read as files.

Prometheus' data model has one loss, and it is the only difference allowed: a label with an
empty value is no label (upstream's `cache_salt=""`), so the file road's stats are compared
with their empty-valued labels taken out, and the verdicts are compared whole.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from inferguard import Packet, PacketSettings
from inferguard.cli import main
from inferguard.collect import scrape_metrics
from inferguard.collect._prometheus import (
    PromTarget,
    exposition_text,
    group_targets,
    list_targets,
    prometheus_packet,
)
from inferguard.evidence._metrics import FamilyStats, LabelValues, MetricsFacts, read_metrics
from inferguard.verdict import Verdict, judge_packet
from inferguard.verdict._fleet import ROW_RATES, FleetOptions, judge_fleet
from tests.http_fake import RecordingServer, Reply
from tests.prom_server import PrometheusServer, PromTargetSpec, free_port, require_prometheus

FIX = Path(__file__).parent / "fixtures"
LIVE = FIX / "lmcache_live"
# instance label -> (job, body, evidence kind): real recorded bodies (upstream 0.5.6 runs).
BODIES: dict[str, tuple[str, Path, str]] = {
    "mp-l1:9000": ("lmcache-mp", FIX / "lmcache-0.5.6/metrics/mp-l1-storage-trace/"
                   "metrics_after.txt", "lmcache_metrics"),
    "mp-l1-idle:9000": ("lmcache-mp", FIX / "lmcache-0.5.6/metrics/mp-l1-storage-trace/"
                        "metrics_before.txt", "lmcache_metrics"),
    "blend:9000": ("lmcache-mp", FIX / "lmcache-0.5.6/metrics/blend-prometheus/"
                   "metrics_final.txt", "lmcache_metrics"),
    "live-l2:9000": ("lmcache-mp", LIVE / "mp_live_l2/packet/inputs/lmcache_metrics/"
                     "127.0.0.1_33989_metrics.txt", "lmcache_metrics"),
    "vllm-mp:8000": ("vllm", LIVE / "vllm_live_mp/packet/inputs/engine_metrics/"
                     "127.0.0.1_36687_metrics.txt", "engine_metrics"),
    "vllm-embedded:8000": ("vllm", LIVE / "vllm_live_embedded/packet/inputs/engine_metrics/"
                           "127.0.0.1_50273_metrics.txt", "engine_metrics"),
}
DOWN = "gone-node:9000"  # a target on a port nobody listens on
# Serves `before`, switched to `after` by the window test. Its own target: Prometheus keeps a
# family's metadata for 10 scrapes after it disappeared, so a body that shrinks is not
# compared with a file until then (docs/fleet.md, "What the API cannot say").
SWITCH = "switch:9000"
# The LMCache MP server and the vLLM of one live run, two targets with one `node` label.
PAIR = {"pair-lmcache:9000": ("pair-lmcache", LIVE / "vllm_live_mp/packet/inputs/"
                              "lmcache_metrics/127.0.0.1_49795_metrics.txt", "lmcache_metrics"),
        "pair-vllm:8000": ("pair-vllm", LIVE / "vllm_live_mp/packet/inputs/engine_metrics/"
                           "127.0.0.1_36687_metrics.txt", "engine_metrics")}
BEFORE = FIX / "lmcache-0.5.6/metrics/mp-l1-storage-trace/metrics_before.txt"
AFTER = BEFORE.with_name("metrics_after.txt")
# The same recorded bodies served as OpenMetrics (what prometheus_client answers a Prometheus
# 2.x scraper: counter families without `_total`, and from 0.23 on `:` escaped to `_` in
# sample names), made by prometheus_client's own parser and OpenMetrics exposition.
OM = {"om-vllm-embedded:8000": BODIES["vllm-embedded:8000"],
      "om-vllm-mp:8000": BODIES["vllm-mp:8000"],
      "om-mp-l1:9000": BODIES["mp-l1:9000"],
      "om-escaped-vllm-embedded:8000": BODIES["vllm-embedded:8000"]}
OM_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
MATCH = ['{job=~"lmcache.*"}']
ENGINE_MATCH = ['{job="vllm"}']


class Fleet:
    """The body server, its switchable bodies, and the Prometheus scraping it."""

    def __init__(self, prom: PrometheusServer, served: dict[str, bytes]) -> None:
        self.prom, self.served = prom, served
        self.url = prom.url


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    binary = require_prometheus()
    served = {inst: body.read_bytes() for inst, (_, body, _) in BODIES.items()}
    served[SWITCH] = BEFORE.read_bytes()
    served |= {inst: body.read_bytes() for inst, (_, body, _) in PAIR.items()}
    served |= {inst: openmetrics(body, escaped="escaped" in inst)
               for inst, (_, body, _) in OM.items()}
    lock = threading.Lock()

    log: list[tuple[float, str, bytes]] = []  # when each body was served (the window test)

    def answer(path: str) -> Reply:
        inst = path.split("/")[1]
        with lock:
            body = served.get(inst)
            if body is not None:
                log.append((time.time(), inst, body))
        if body is None:
            return Reply(404, b"no such instance", "text/plain")
        if inst in OM:
            return Reply(200, body, OM_TYPE)
        return Reply(200, body, "text/plain; version=0.0.4; charset=utf-8")

    with RecordingServer(answer) as srv:
        addr = srv.url.split("//", 1)[1]
        specs = [PromTargetSpec(job, inst, addr, f"/{inst}/metrics")
                 for inst, (job, _, _) in BODIES.items()]
        specs.append(PromTargetSpec("lmcache-mp", DOWN, f"127.0.0.1:{free_port()}"))
        specs.append(PromTargetSpec("switching", SWITCH, addr, f"/{SWITCH}/metrics"))
        specs += [PromTargetSpec(job, inst, addr, f"/{inst}/metrics", {"node": "node-7"})
                  for inst, (job, _, _) in PAIR.items()]
        specs += [PromTargetSpec("om", inst, addr, f"/{inst}/metrics") for inst in OM]
        prom = PrometheusServer(binary, specs, interval="2s")  # 2 s: slack for a loaded machine
        prom.start()
        try:
            prom.wait_scraped(len(specs) - 1)  # the down target is "scraped" too, failing
            prom.wait_scraped(len(specs))
            f = Fleet(prom, served)
            f.lock = lock  # type: ignore[attr-defined]
            f.log = log  # type: ignore[attr-defined]
            yield f
        finally:
            print("---- prometheus log ----\n" + prom.log())  # shown when a test failed
            prom.stop()


def openmetrics(body: Path, escaped: bool = False) -> bytes:
    """A recorded text body as prometheus_client serves it to an OpenMetrics scraper;
    `escaped`: with `:` written `_` in sample names but not in HELP/TYPE, as prometheus_client
    >= 0.23 answers Prometheus 2.x (shared/reference/embedded-engines.md, "Colons")."""
    from prometheus_client.openmetrics.exposition import generate_latest
    from prometheus_client.parser import text_string_to_metric_families
    from prometheus_client.registry import CollectorRegistry

    families = list(text_string_to_metric_families(body.read_text()))

    class Recorded:
        def collect(self) -> list[Any]:
            return families

    registry = CollectorRegistry()
    registry.register(Recorded())  # type: ignore[arg-type]
    data: bytes = generate_latest(registry)
    if escaped:
        data = b"\n".join(line if line.startswith(b"#") else
                          line.split(b"{", 1)[0].split(b" ", 1)[0].replace(b":", b"_")
                          + line[len(line.split(b"{", 1)[0].split(b" ", 1)[0]):]
                          for line in data.split(b"\n"))
    return data


def _without_empty_labels(f: FamilyStats) -> FamilyStats:
    """The file road's stats as Prometheus can hold them: empty-valued labels are no labels."""
    labels = {k: LabelValues(len([v for v in lv.values if v]), [v for v in lv.values if v])
              for k, lv in f.labels.items() if any(lv.values)}
    return msgspec.structs.replace(f, labels=labels)


def _assert_same(api: FamilyStats, fil: FamilyStats, where: object) -> None:
    want = _without_empty_labels(fil)
    if want.labels != fil.labels and not fil.label_totals and api.label_totals:
        # Dropping the empty label left one label: the reader now splits totals by it.
        (split,) = api.label_totals.values()
        assert math.isclose(math.fsum(split.values()), api.total), where
        api = msgspec.structs.replace(api, label_totals={})
    assert api == want, where


def _stats(ev: Any) -> dict[str, FamilyStats]:
    assert isinstance(ev.facts, MetricsFacts), ev
    return {f.name: f for f in ev.facts.families}


def _verdict_key(v: Verdict) -> dict[str, Any]:
    """Everything a verdict says, but the evidence's own names (paths vs URLs)."""
    r = v.report
    return {
        "mode": (r.detected.mode, r.detected.level, r.detected.confidence, r.detected.flavor),
        "families": [(f.name, f.status, f.total, f.samples, f.nonzero_samples)
                     for f in r.families],
        "groups": [(g.id, g.status, g.populated, g.zero, g.missing) for g in r.groups],
        "missing_required": r.missing_required, "zero_required": r.zero_required,
        "checklist": [(c.description, c.present) for c in r.checklist],
        "findings": [(f.code, f.severity, f.level) for f in v.diagnosis.findings],
        "claims": [(c.id, c.level, c.decided_by) for c in v.claims.made],
        "withheld": [w.id for w in v.claims.withheld],
    }


def _api_packets(f: Fleet) -> dict[str, Packet]:
    targets = list_targets(f.url, match=MATCH, engine_match=ENGINE_MATCH)
    return {g.name: prometheus_packet(f.url, g).packet for g in group_targets(targets)}


def test_targets_listed_with_roles_and_health(fleet: Fleet) -> None:
    targets = {t.instance: t for t in list_targets(fleet.url, match=MATCH,
                                                   engine_match=ENGINE_MATCH)}
    assert set(targets) == {*BODIES, DOWN}  # SWITCH's job matches neither selector
    for inst, (job, _, kind) in BODIES.items():
        assert targets[inst].job == job and targets[inst].health == "up"
        assert targets[inst].role == ("engine" if kind == "engine_metrics" else "lmcache")
    assert targets[DOWN].health == "down" and targets[DOWN].last_error
    only_engines = list_targets(fleet.url, engine_match=ENGINE_MATCH)
    assert {t.instance for t in only_engines} == {"vllm-mp:8000", "vllm-embedded:8000"}


def test_api_family_stats_equal_the_file_reader(fleet: Fleet) -> None:
    packets = _api_packets(fleet)
    for inst, (_, body, kind) in BODIES.items():
        (api_ev,) = packets[inst].evidence
        file_ev = read_metrics(body, kind)  # type: ignore[arg-type]
        assert api_ev.kind == kind and api_ev.status == file_ev.status == "ok", api_ev.problems
        api, fil = _stats(api_ev), _stats(file_ev)
        assert set(api) == set(fil), inst
        for name, fs in fil.items():
            _assert_same(api[name], fs, (inst, name))
        assert api_ev.facts.service_instance_ids == file_ev.facts.service_instance_ids


def test_api_verdict_equals_the_file_verdict(fleet: Fleet) -> None:
    packets = _api_packets(fleet)
    modes = set()
    for inst, (_, body, kind) in BODIES.items():
        file_v = judge_packet(Packet.from_files([(kind, body)]))
        api_v = judge_packet(packets[inst])
        assert _verdict_key(api_v) == _verdict_key(file_v), inst
        modes.add(api_v.report.detected.mode)
    assert len(modes) >= 2  # the bodies are not all the same case


def test_down_target_judged_like_a_refused_scrape(fleet: Fleet) -> None:
    (ev,) = _api_packets(fleet)[DOWN].evidence
    assert ev.status == "malformed" and "down" in ev.problems[0].message
    refused, _ = scrape_metrics(f"http://127.0.0.1:{free_port()}/metrics", "lmcache_metrics",
                                timeout=2)
    assert _verdict_key(judge_packet(Packet(settings=PacketSettings(), evidence=[ev]))) == \
        _verdict_key(judge_packet(Packet(settings=PacketSettings(), evidence=[refused])))


def test_window_gives_the_samples_at_both_ends(fleet: Fleet) -> None:
    """Serve `before`, then switch to `after`: a window across the switch holds both."""
    inst, before, after = SWITCH, BEFORE, AFTER
    n = len(BODIES) + 2 + len(PAIR) + len(OM)
    fleet.prom.wait_scraped(n, after=time.time())
    with fleet.lock:  # type: ignore[attr-defined]
        fleet.served[inst] = after.read_bytes()
        # The window starts when `before` was last served: that scrape's sample (stamped at
        # its start, a moment earlier) is the last one at or before it, whatever the load.
        old = BEFORE.read_bytes()
        t_start = max(t for t, i, b in fleet.log if i == inst and b == old)  # type: ignore[attr-defined]
    t_switch = time.time()
    try:
        # Until a scrape taken after the switch is queryable (its `up` sample is committed
        # with its samples; `lastScrape` says only that it started).
        deadline = time.monotonic() + 30
        while True:
            q = urllib.parse.quote(f'timestamp(up{{instance="{inst}"}})')
            res = fleet.prom.api(f"/api/v1/query?query={q}")["result"]
            if res and float(res[0]["value"][1]) > t_switch:
                break
            assert time.monotonic() < deadline, fleet.prom.log()
            time.sleep(0.2)
        t_end = time.time()
        opts = FleetOptions(prometheus_url=fleet.url, instance=inst, at=t_end,
                            window_s=t_end - t_start)
        outcome = judge_fleet(opts)
        (row,) = outcome.report.rows
        assert row.judged and row.instance == inst
        from inferguard.verdict._fleet import fleet_groups, group_packet

        (g,) = fleet_groups(opts, at=t_end)
        pp = group_packet(opts, g, at=t_end)
        first, last = pp.packet.evidence
        for ev, body in ((first, before), (last, after)):
            fil, api = _stats(read_metrics(body)), _stats(ev)
            assert set(api) == set(fil)
            for name, fs in fil.items():
                _assert_same(api[name], fs, (body.name, name))
        hit = "lmcache_mp_lookup_hit_tokens_total"
        assert hit not in _stats(first) and _stats(last)[hit].total > 0  # as the files say
        # The row's hit rate is the report's rate between the two scrapes: the same figure
        # as the two files' rate (judge/_rates.py), with the scrapes' own times.
        files = judge_packet(Packet.from_files([("lmcache_metrics", before),
                                                ("lmcache_metrics", after)]))
        want = next(r for r in files.report.rates if r.name == "lmcache_mp_lookup_hit_rate")
        got = next(r for r in outcome.verdicts[inst].report.rates if r.name == want.name)
        assert (got.numerator, got.denominator, got.value) == \
            (want.numerator, want.denominator, want.value)
        assert want.value is not None and want.window.kind == got.window.kind == "between_scrapes"
        assert got.window.seconds is not None and 0 < got.window.seconds <= t_end - t_start
        assert row.hit_rate == want.value and row.hit_rate_name == want.name
        assert first.facts.scraped_at is not None and first.facts.scraped_at <= t_start
    finally:
        with fleet.lock:  # type: ignore[attr-defined]
            fleet.served[inst] = before.read_bytes()


def test_collect_cli_writes_one_packet_per_instance(fleet: Fleet, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "packets"
    argv = ["collect-lmcache", "--output-dir", str(out), "--prometheus-url", fleet.url]
    argv += [x for m in MATCH for x in ("--match", m)]
    argv += [x for m in ENGINE_MATCH for x in ("--engine-match", m)]
    assert main(argv) == 0
    dirs = sorted(p.name for p in out.iterdir())
    assert len(dirs) == len(BODIES) + 1  # SWITCH's job matches neither selector
    for inst, (_, body, kind) in BODIES.items():
        d = out / "".join(c if c.isalnum() or c in "-_." else "_" for c in inst)
        # The packet as written and read back: the same verdict as the file.
        assert _verdict_key(judge_packet(Packet.read(d))) == \
            _verdict_key(judge_packet(Packet.from_files([(kind, body)])))
        # The copy kept in the packet reads back to the evidence it holds.
        (copy,) = (d / "inputs" / kind).iterdir()
        (ev,) = Packet.load(d).evidence
        assert _stats(read_metrics(copy, kind)) == _stats(ev)  # type: ignore[arg-type]
    assert main(argv) == 2  # never overwrites
    one = tmp_path / "one"
    assert main(["collect-lmcache", "--output-dir", str(one), "--prometheus-url", fleet.url,
                 "--instance", "blend:9000"]) == 0
    assert [p.name for p in one.iterdir()] == ["blend_9000"]
    assert main(["collect-lmcache", "--output-dir", str(tmp_path / "none"), "--prometheus-url",
                 fleet.url, "--instance", "no-such:1"]) == 2
    assert main(["fleet", "--prometheus-url", fleet.url, "--instance", "no-such:1"]) == 2
    assert "no target with instance='no-such:1'" in capsys.readouterr().err


def test_fleet_cli_rows_rollup_and_fail_on(fleet: Fleet,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["fleet", "--prometheus-url", fleet.url, "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    # The document matches the schema shipped for it (stable keys: every field written).
    from importlib import resources

    from tests.jsonschema_subset import validate

    schema = json.loads(resources.files("inferguard").joinpath(
        "schemas", "fleet.v1.json").read_text())
    assert doc["schema"] == "inferguard.fleet/1"
    validate(doc, schema)
    rows = {r["instance"]: r for r in doc["rows"]}
    assert set(rows) == {*BODIES, DOWN, SWITCH, *PAIR, *OM}  # no selector: every target
    for inst, (_, body, kind) in BODIES.items():
        v = judge_packet(Packet.from_files([(kind, body)]))
        assert rows[inst]["judged"] and rows[inst]["mode"] == v.report.detected.mode
        assert rows[inst]["level"] == v.report.detected.level
        assert rows[inst]["finding_codes"] == sorted({f.code for f in v.diagnosis.findings})
        worst = v.diagnosis.findings[0].code if v.diagnosis.findings else None
        assert rows[inst].get("worst_code") == worst
        rate = next((r for n in ROW_RATES for r in v.report.rates if r.name == n), None)
        assert rows[inst]["hit_rate"] == (rate.value if rate else None), inst
        assert rows[inst]["hit_rate_name"] == (rate.name if rate else None), inst
    assert rows[DOWN]["malformed_evidence"] == 1 and "down" in rows[DOWN]["reason"]
    modes: dict[str, int] = {}
    for r in rows.values():
        modes[r["mode"]] = modes.get(r["mode"], 0) + 1
    assert doc["by_mode"] == dict(sorted(modes.items()))
    for code, n in doc["by_finding"].items():
        assert n == sum(code in r["finding_codes"] for r in rows.values())
    errors = [i for i, r in rows.items() if r.get("worst_severity") == "error"]
    code = main(["fleet", "--prometheus-url", fleet.url, "--fail-on", "error-finding"])
    text = capsys.readouterr()
    assert code == (1 if errors else 0)
    for inst in BODIES:
        assert inst in text.out
    assert "hit rate" in text.out and "by mode:" in text.out


def test_unlistable_server_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with RecordingServer(lambda p: Reply(200, b"not json", "text/plain")) as srv:
        assert main(["fleet", "--prometheus-url", srv.url]) == 2
        assert srv.requests == [("GET", "/api/v1/targets?state=active")]
    assert "not a Prometheus API answer" in capsys.readouterr().err


def test_collect_from_prometheus_never_drops_other_inputs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "server.log"
    log.write_text("x\n")
    with RecordingServer(lambda p: Reply(500, b"")) as srv:
        assert main(["collect-lmcache", "--output-dir", str(tmp_path / "out"),
                     "--prometheus-url", srv.url, "--lmcache-log-file", str(log)]) == 2
        assert srv.requests == []  # refused before any request
    assert "--lmcache-log-file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_exposition_text_is_the_target_view() -> None:
    """Target labels go, `exported_*` come back, Prometheus' own series are left out."""
    t = PromTarget(job="j", instance="i:1", labels={"job": "j", "instance": "i:1", "node": "n"})
    meta = {"c_total": msgspec.convert({"type": "counter", "help": "a\nb"},
                                        type=__import__("inferguard.collect._prometheus",
                                                        fromlist=["_Meta"])._Meta)}
    text = exposition_text([({"__name__": "c_total", "job": "j", "instance": "i:1",
                              "node": "n", "exported_instance": "own", "x": 'q"'}, "3"),
                            ({"__name__": "up", "job": "j", "instance": "i:1"}, "1")],
                           meta, t).decode()
    assert text == ('# HELP c_total a\\nb\n# TYPE c_total counter\n'
                    'c_total{instance="own",x="q\\""} 3\n')
    assert not math.isnan(float(text.split()[-1]))


def test_slow_instance_is_a_row_saying_why() -> None:
    """An instance whose answers do not come in time is a row that says so; the others are
    judged (a fake API: the timing is what is tested, not Prometheus)."""
    body = BODIES["mp-l1:9000"][1].read_bytes().decode()
    samples = []
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples.append({"metric": {"__name__": name.split("{")[0]}, "value": [1, value]})
    targets = {"status": "success", "data": {"activeTargets": [
        {"labels": {"job": "j", "instance": i}, "health": "up", "lastError": "",
         "scrapeUrl": f"http://{i}/metrics"} for i in ("fast:1", "slow:1")]}}

    def answer(path: str) -> Reply:
        if path.startswith("/api/v1/targets?"):
            return Reply(200, json.dumps(targets).encode())
        if path.startswith("/api/v1/targets/metadata"):
            return Reply(200, b'{"status":"success","data":[]}')
        if "slow" in path:
            time.sleep(1.5)
        return Reply(200, json.dumps({"status": "success", "data": {
            "resultType": "vector", "result": samples}}).encode())

    with RecordingServer(answer) as srv:
        out = judge_fleet(FleetOptions(prometheus_url=srv.url, instance_timeout=0.5,
                                       timeout=5))
        assert all(m == "GET" for m, _ in srv.requests)
    rows = {r.instance: r for r in out.report.rows}
    assert rows["fast:1"].judged and rows["fast:1"].mode is not None
    assert not rows["slow:1"].judged and "not judged within 0.5 s" in (rows["slow:1"].reason
                                                                         or "")
    assert out.report.unjudged == 1 and set(out.verdicts) == {"fast:1"}


def test_group_label_pairs_an_mp_server_with_its_engine(fleet: Fleet) -> None:
    """`--group-label node`: the two targets of one node are one packet, judged like the
    two files of that run given together."""
    targets = list_targets(fleet.url, match=['{job="pair-lmcache"}'],
                           engine_match=['{job="pair-vllm"}'])
    (group,) = group_targets(targets, "node")
    assert group.name == "node-7" and {t.instance for t in group.targets} == set(PAIR)
    packet = prometheus_packet(fleet.url, group).packet
    assert sorted(e.kind for e in packet.evidence) == ["engine_metrics", "lmcache_metrics"]
    files = Packet.from_files([(kind, body) for _, body, kind in PAIR.values()])
    v_api, v_file = judge_packet(packet), judge_packet(files)
    assert _verdict_key(v_api) == _verdict_key(v_file)
    # Grouped, the node says more than either target alone (the vLLM↔LMCache join).
    alone = [judge_packet(prometheus_packet(fleet.url, g).packet)
             for g in group_targets(targets)]
    assert len(alone) == 2
    for v in alone:
        assert _verdict_key(v) != _verdict_key(v_api)
    assert "lmcache_vllm_hits_reconciled" in {f.code for f in v_api.diagnosis.findings}


def test_fleet_parquet_and_ready_query(fleet: Fleet, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    if os.environ.get("INFERGUARD_REQUIRE_FLEET") != "1":  # CI installs the extra
        pytest.importorskip("pyarrow", reason="pyarrow not installed (pip install '.[fleet]')")
        pytest.importorskip("duckdb", reason="duckdb not installed (pip install '.[fleet]')")
    ds = tmp_path / "ds"
    assert main(["fleet", "--prometheus-url", fleet.url, "--match", MATCH[0],
                 "--engine-match", ENGINE_MATCH[0], "--json", "--parquet", str(ds)]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert main(["query", str(ds), "SELECT node, instance, mode, judged FROM fleet "
                 "ORDER BY instance", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert [(r["instance"], r["mode"], r["judged"]) for r in got] == sorted(
        (r["instance"], r.get("mode"), r["judged"]) for r in rows)
    assert all(r["node"] == r["instance"] for r in got)


def test_window_older_than_the_data_is_a_note_not_damage(fleet: Fleet) -> None:
    """A window that starts before Prometheus held the target: the start is said, not
    counted as a damaged scrape; the verdict is the one of the end alone."""
    inst = "mp-l1:9000"
    out = judge_fleet(FleetOptions(prometheus_url=fleet.url, instance=inst, window_s=86400))
    (row,) = out.report.rows
    assert row.judged and row.malformed_evidence == 0
    assert row.notes and "no samples at the window start" in row.notes[0]
    _, body, kind = BODIES[inst]
    want = judge_packet(Packet.from_files([(kind, body)]))
    assert _verdict_key(out.verdicts[inst]) == _verdict_key(want)


def test_concurrency_is_bounded() -> None:
    """At most --concurrency instances are asked at once, and more than one is (a fake API
    counts the queries in flight; the first waits for a second, so they overlap if allowed)."""
    names = [f"n{i}:1" for i in range(6)]
    targets = {"status": "success", "data": {"activeTargets": [
        {"labels": {"job": "j", "instance": i}, "health": "up"} for i in names]}}
    lock = threading.Lock()
    state = {"now": 0, "max": 0}
    overlap = threading.Event()

    def answer(path: str) -> Reply:
        if path.startswith("/api/v1/targets?"):
            return Reply(200, json.dumps(targets).encode())
        if path.startswith("/api/v1/targets/metadata"):
            return Reply(200, b'{"status":"success","data":[]}')
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
            if state["now"] >= 2:
                overlap.set()
        overlap.wait(3)  # the first query waits for a second one: they overlap if allowed
        time.sleep(0.1)
        with lock:
            state["now"] -= 1
        return Reply(200, json.dumps({"status": "success", "data": {
            "resultType": "vector", "result": [
                {"metric": {"__name__": "x_total"}, "value": [1, "1"]}]}}).encode())

    with RecordingServer(answer) as srv:
        out = judge_fleet(FleetOptions(prometheus_url=srv.url, concurrency=2))
    assert [r.instance for r in out.report.rows] == names and out.report.unjudged == 0
    assert state["max"] == 2


def test_openmetrics_scrape_same_verdict_as_the_text_file(fleet: Fleet) -> None:
    """Prometheus scraping OpenMetrics (OM counter names, escaped `:`) still gives the text
    file's families and verdict: the API road writes the 0.0.4 names back."""
    targets = list_targets(fleet.url, engine_match=['{job="om"}'])
    packets = {g.name: prometheus_packet(fleet.url, g).packet for g in group_targets(targets)}
    assert set(packets) == set(OM)
    for inst, (_, body, _) in OM.items():  # the OpenMetrics forms really differ
        om = openmetrics(body, escaped="escaped" in inst)
        assert om.endswith(b"# EOF\n") and b"_total counter\n" not in om
    esc = openmetrics(OM["om-escaped-vllm-embedded:8000"][1], escaped=True)
    assert b"\nlmcache_" in esc and b"\nlmcache:" not in esc and b"# TYPE lmcache:" in esc
    for inst, (_, body, kind) in OM.items():
        (ev,) = packets[inst].evidence
        fil = _stats(read_metrics(body, kind))  # type: ignore[arg-type]
        api = _stats(ev)
        assert set(api) == set(fil), inst
        for name, fs in fil.items():
            _assert_same(api[name], fs, (inst, name))
        want = judge_packet(Packet.from_files([("engine_metrics", body)]))
        assert _verdict_key(judge_packet(packets[inst])) == _verdict_key(want), inst


def test_range_query_lands_on_both_ends() -> None:
    """Start and end rounded to milliseconds apart from the step lost the end point
    (100.001 + 5.000 > 105.000): the step is the difference of the rounded ends."""
    from inferguard.collect._prometheus import PromWindow, _range_params

    for start, end in ((100.0006, 105.0004), (100.0004, 105.0006), (1.7e9 + 0.0005, 1.7e9 + 3)):
        p = dict(_range_params(PromWindow(start, end)))
        s_ms, e_ms = round(float(p["start"]) * 1000), round(float(p["end"]) * 1000)
        assert s_ms + round(float(p["step"]) * 1000) == e_ms
        assert abs(e_ms / 1000 - end) <= 0.0011 and abs(s_ms / 1000 - start) <= 0.0006


def test_fleet_html_page_embeds_the_printed_document(fleet: Fleet, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`fleet --html` writes one page whose embedded JSON is the document `--json` printed and
    whose text names every instance; in headless Chromium (when installed) it loads with no
    error and fetches nothing."""
    from tests.chromium import REQUIRED_ENV, Browser, find_chromium
    from tests.test_html import _doc

    out = tmp_path / "fleet.html"
    assert main(["fleet", "--prometheus-url", fleet.url, "--json", "--html", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    page = out.read_text(encoding="utf-8")
    doc = _doc(page)
    assert json.loads(doc.json_text) == printed
    for row in printed["rows"]:
        assert row["instance"] in doc.text
    if find_chromium() is None:
        if os.environ.get(REQUIRED_ENV) == "1":
            pytest.fail(f"{REQUIRED_ENV}=1 but chromium is not installed")
        return
    b = Browser()
    try:
        load = b.load(out.as_uri())
        assert not load.errors(), load.errors()
        assert load.requests == [out.as_uri()]
        assert all(row["instance"] in load.text for row in printed["rows"])
    finally:
        b.close()
