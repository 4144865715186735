"""Rates and windows (judge/_rates.py) on the real 0.5.6 before/mid/after scrapes, with the
expected figures computed here from the raw text (a line scan, not InferGuard's parser), and
counter resets on constructed scrapes."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import msgspec
import pytest

from inferguard import Packet, compat
from inferguard.judge._rates import packet_deltas, packet_rates

from .conftest import FIXTURES, UPSTREAM

MP = UPSTREAM / "metrics" / "mp-l1-storage-trace"
VLLM = (FIXTURES / "lmcache_live" / "vllm_live_embedded" / "packet" / "inputs"
        / "engine_metrics" / "127.0.0.1_50273_metrics.txt")
SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def raw_total(path: Path, sample: str) -> float:
    """Sum of every sample line named exactly `sample` (0 when there is none)."""
    total = 0.0
    for line in path.read_text().splitlines():
        m = SAMPLE.match(line)
        if m and m.group(1) == sample:
            total += float(m.group(3))
    return total


def packet_of(*files: tuple[str, Path]) -> Packet:
    return Packet.from_files([(k, p) for k, p in files])


def by_name(rates: list, name: str):  # type: ignore[no-untyped-def]
    (r,) = [r for r in rates if r.name == name]
    return r


def test_before_mid_after_rates_match_the_raw_text() -> None:
    names = ("metrics_before.txt", "metrics_mid.txt", "metrics_after.txt")
    p = packet_of(*(("lmcache_metrics", MP / n) for n in names))
    rates = packet_rates(p)
    hit = by_name(rates, "lmcache_mp_lookup_hit_rate")
    d_hit = raw_total(MP / names[2], "lmcache_mp_lookup_hit_tokens_total") - raw_total(
        MP / names[0], "lmcache_mp_lookup_hit_tokens_total")
    d_req = raw_total(MP / names[2], "lmcache_mp_lookup_requested_tokens_total") - raw_total(
        MP / names[0], "lmcache_mp_lookup_requested_tokens_total")
    assert d_req > 0 and d_hit > 0
    assert (hit.numerator, hit.denominator) == (d_hit, d_req)
    assert hit.value == pytest.approx(d_hit / d_req)
    assert hit.window.kind == "between_scrapes" and hit.window.scrapes == 3
    assert hit.window.start and hit.window.start.endswith("metrics_before.txt")
    assert hit.window.end.endswith("metrics_after.txt") and not hit.window.resets
    assert hit.level == "measured"
    l1 = by_name(rates, "lmcache_mp_l1_share")
    d_l1 = raw_total(MP / names[2], "lmcache_mp_lookup_hit_l1_tokens_total") - raw_total(
        MP / names[0], "lmcache_mp_lookup_hit_l1_tokens_total")
    assert l1.numerator == d_l1 and l1.value == pytest.approx(d_l1 / d_hit)
    l2 = by_name(rates, "lmcache_mp_l2_share")
    assert l2.numerator == raw_total(MP / names[2], "lmcache_mp_lookup_hit_l2_tokens_total")
    # The vLLM rates need a vLLM scrape: none here.
    assert not [r for r in rates if r.name.startswith("vllm")]


def test_mid_to_after_window_differs_from_since_start() -> None:
    mid, after = MP / "metrics_mid.txt", MP / "metrics_after.txt"
    window = by_name(packet_rates(packet_of(("lmcache_metrics", mid),
                                            ("lmcache_metrics", after))),
                     "lmcache_mp_lookup_hit_rate")
    d_hit = (raw_total(after, "lmcache_mp_lookup_hit_tokens_total")
             - raw_total(mid, "lmcache_mp_lookup_hit_tokens_total"))
    d_req = (raw_total(after, "lmcache_mp_lookup_requested_tokens_total")
             - raw_total(mid, "lmcache_mp_lookup_requested_tokens_total"))
    assert window.value == pytest.approx(d_hit / d_req)
    single = by_name(packet_rates(packet_of(("lmcache_metrics", mid))),
                     "lmcache_mp_lookup_hit_rate")
    assert single.window.kind == "since_process_start"
    assert "since process start" in single.window.label
    assert single.value == pytest.approx(
        raw_total(mid, "lmcache_mp_lookup_hit_tokens_total")
        / raw_total(mid, "lmcache_mp_lookup_requested_tokens_total"))
    assert single.value != window.value


def test_before_only_has_no_lookup_rate() -> None:
    # Before traffic the lookup families do not exist yet: no rate at all, not a 0 % one.
    rates = packet_rates(packet_of(("lmcache_metrics", MP / "metrics_before.txt")))
    assert not [r for r in rates if r.name == "lmcache_mp_lookup_hit_rate"]


def test_vllm_rates_since_start_from_a_real_vllm_scrape() -> None:
    rates = packet_rates(packet_of(("engine_metrics", VLLM)))
    ext = by_name(rates, "vllm_external_prefix_cache_hit_rate")
    q = raw_total(VLLM, "vllm:external_prefix_cache_queries_total")
    assert ext.denominator == q and q > 0
    assert ext.numerator == raw_total(VLLM, "vllm:external_prefix_cache_hits_total")
    assert ext.value == 0 and ext.note and "measured zero" in ext.note
    loc = by_name(rates, "vllm_local_prefix_cache_hit_rate")
    assert loc.value == pytest.approx(raw_total(VLLM, "vllm:prefix_cache_hits_total")
                                      / raw_total(VLLM, "vllm:prefix_cache_queries_total"))


def _scrape(tmp: Path, name: str, *, start: float, instance: str, hit: float, req: float,
            date: str | None = None) -> Path:
    path = tmp / name
    path.write_text(
        "# TYPE process_start_time_seconds gauge\n"
        f"process_start_time_seconds {start}\n"
        "# TYPE target info\n"
        f'target_info{{service_instance_id="{instance}"}} 1.0\n'
        "# TYPE lmcache_mp_lookup_requested_tokens_total counter\n"
        f'lmcache_mp_lookup_requested_tokens_total{{model_name="m"}} {req}\n'
        "# TYPE lmcache_mp_lookup_hit_tokens_total counter\n"
        f'lmcache_mp_lookup_hit_tokens_total{{model_name="m"}} {hit}\n')
    if date is not None:
        (tmp / (name.removesuffix(".txt") + ".headers")).write_text(
            f"HTTP/1.1 200 OK\ndate: {date}\n")
    return path


def test_a_restart_is_a_reset_and_said_so(tmp_path: Path) -> None:
    a = _scrape(tmp_path, "a.txt", start=100, instance="i", hit=50, req=100)
    b = _scrape(tmp_path, "b.txt", start=200, instance="i", hit=60, req=200)
    r = by_name(packet_rates(packet_of(("lmcache_metrics", a), ("lmcache_metrics", b))),
                "lmcache_mp_lookup_hit_rate")
    # The new process counted from 0: its whole counts are the window's growth.
    assert (r.numerator, r.denominator) == (60, 200)
    assert len(r.window.resets) == 1 and "process_start_time_seconds" in r.window.resets[0]


def test_a_decrease_is_a_reset(tmp_path: Path) -> None:
    a = _scrape(tmp_path, "a.txt", start=100, instance="i", hit=50, req=100)
    b = _scrape(tmp_path, "b.txt", start=100, instance="i", hit=70, req=150)
    c = _scrape(tmp_path, "c.txt", start=100, instance="i", hit=5, req=10)
    r = by_name(packet_rates(packet_of(*(("lmcache_metrics", x) for x in (a, b, c)))),
                "lmcache_mp_lookup_hit_rate")
    assert (r.numerator, r.denominator) == (20 + 5, 50 + 10)
    assert r.window.resets and all("went down" in x for x in r.window.resets)


def test_changed_instance_id_is_a_reset(tmp_path: Path) -> None:
    a = _scrape(tmp_path, "a.txt", start=100, instance="one", hit=50, req=100)
    b = _scrape(tmp_path, "b.txt", start=100, instance="two", hit=80, req=120)
    r = by_name(packet_rates(packet_of(("lmcache_metrics", a), ("lmcache_metrics", b))),
                "lmcache_mp_lookup_hit_rate")
    assert (r.numerator, r.denominator) == (80, 120)
    assert "service_instance_id" in r.window.resets[0]


def test_no_reset_near_miss_and_window_seconds(tmp_path: Path) -> None:
    a = _scrape(tmp_path, "a.txt", start=100, instance="i", hit=50, req=100,
                date="Sat, 28 Nov 2026 01:53:36 GMT")
    b = _scrape(tmp_path, "b.txt", start=100, instance="i", hit=80, req=160,
                date="Sat, 28 Nov 2026 01:54:06 GMT")
    r = by_name(packet_rates(packet_of(("lmcache_metrics", a), ("lmcache_metrics", b))),
                "lmcache_mp_lookup_hit_rate")
    assert (r.numerator, r.denominator) == (30, 60) and not r.window.resets
    assert r.window.seconds == 30 and "30 s)" in r.window.label


def test_zero_denominator_is_no_rate(tmp_path: Path) -> None:
    a = _scrape(tmp_path, "a.txt", start=100, instance="i", hit=50, req=100)
    b = _scrape(tmp_path, "b.txt", start=100, instance="i", hit=50, req=100)
    r = by_name(packet_rates(packet_of(("lmcache_metrics", a), ("lmcache_metrics", b))),
                "lmcache_mp_lookup_hit_rate")
    assert r.denominator == 0 and r.value is None and r.percent() == "n/a"
    assert r.note and "not a 0 % rate" in r.note


def test_deltas_per_counter() -> None:
    p = packet_of(("lmcache_metrics", MP / "metrics_mid.txt"),
                  ("lmcache_metrics", MP / "metrics_after.txt"))
    (d,) = packet_deltas(p, ["lmcache_mp_l1_read_chunks_total"])
    assert d.delta == (raw_total(MP / "metrics_after.txt", "lmcache_mp_l1_read_chunks_total")
                       - raw_total(MP / "metrics_mid.txt", "lmcache_mp_l1_read_chunks_total"))


def test_rates_ride_on_the_report_and_survive_a_packet_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for n in ("metrics_before.txt", "metrics_after.txt"):
        shutil.copy(MP / n, src / n)
    shutil.copy(MP / "metrics_before.headers", src / "metrics_before.headers")
    files = [("lmcache_metrics", src / "metrics_before.txt"),
             ("lmcache_metrics", src / "metrics_after.txt")]
    fresh = compat(Packet.from_files(files))
    Packet.from_files(files).write(tmp_path / "pk")
    again = compat(Packet.read(tmp_path / "pk"))
    strip = [(r.name, r.numerator, r.denominator, r.value) for r in fresh.rates]
    assert strip == [(r.name, r.numerator, r.denominator, r.value) for r in again.rates]
    # The before scrape's time came from its saved headers; the packet keeps it.
    assert fresh.rates[0].window.seconds is None  # the after scrape has no recorded time
    assert next(e.facts.scraped_at for e in Packet.read(tmp_path / "pk").evidence) is not None
    assert strip and msgspec.json.decode(msgspec.json.encode(fresh))["rates"][0]["name"]


def test_embedded_rates_from_constructed_scrape(tmp_path: Path) -> None:
    path = tmp_path / "engine.txt"
    path.write_text("# TYPE lmcache:num_lookup_tokens counter\nlmcache:num_lookup_tokens 400.0\n"
                    "# TYPE lmcache:num_lookup_hits counter\nlmcache:num_lookup_hits 300.0\n"
                    "# TYPE lmcache:num_requested_tokens counter\n"
                    "lmcache:num_requested_tokens 400.0\n"
                    "# TYPE lmcache:num_hit_tokens counter\nlmcache:num_hit_tokens 100.0\n")
    rates = packet_rates(packet_of(("engine_metrics", path)))
    assert by_name(rates, "lmcache_embedded_hit_rate").value == pytest.approx(100 / 400)
    assert by_name(rates, "lmcache_embedded_lookup_hit_rate").value == pytest.approx(300 / 400)


def test_057_prompt_hit_rate_before_after() -> None:
    d = FIXTURES / "lmcache-0.5.7rc2" / "metrics" / "mp-lmcache-driven"
    before, after = d / "metrics_before.txt", d / "metrics_after.txt"
    rates = packet_rates(packet_of(("lmcache_metrics", before), ("lmcache_metrics", after)))
    r = by_name(rates, "lmcache_mp_prompt_hit_rate")
    num = (raw_total(after, "lmcache_mp_lookup_request_hit_tokens_total")
           - raw_total(before, "lmcache_mp_lookup_request_hit_tokens_total"))
    den = (raw_total(after, "lmcache_mp_lookup_prompt_tokens_total")
           - raw_total(before, "lmcache_mp_lookup_prompt_tokens_total"))
    assert den > 0 and (r.numerator, r.denominator) == (num, den)
    # 0.5.6 has no such family: no 0.5.7 rate from a 0.5.6 scrape.
    assert not [x for x in packet_rates(packet_of(("lmcache_metrics", MP / "metrics_after.txt")))
                if x.name == "lmcache_mp_prompt_hit_rate"]


def test_rates_in_the_first_lines_of_lmcache_compat(capsys: pytest.CaptureFixture[str]) -> None:
    from inferguard.cli._main import main

    args = ["lmcache-compat", "--lmcache-metrics-file", str(MP / "metrics_before.txt"),
            "--lmcache-metrics-file", str(MP / "metrics_after.txt")]
    assert main(args) == 0
    head = capsys.readouterr().out.splitlines()[:8]
    line = next(x for x in head if "lmcache_mp_lookup_hit_rate" in x)
    assert "(1024/1536)" in line and "66.7%" in line and "[measured]" in line
    assert main([*args, "--json"]) == 0
    doc = msgspec.json.decode(capsys.readouterr().out)
    rate = next(r for r in doc["report"]["rates"] if r["name"] == "lmcache_mp_lookup_hit_rate")
    assert (rate["numerator"], rate["denominator"]) == (1024, 1536)
    assert rate["window"]["kind"] == "between_scrapes"
