"""`compare` (verdict/_compare.py, cli/_compare.py) on two real recorded packets (vLLM with
LMCache MP offload vs embedded LMCache), the same packet against itself (the near miss), and
the TTFT quantiles checked against a bucket walk written here on the raw scrape text."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from inferguard.cli._main import main
from inferguard.verdict._compare import compare_packet_dirs

from .conftest import FIXTURES

LIVE = FIXTURES / "lmcache_live"
OFFLOAD, EMBEDDED = LIVE / "vllm_live_offload" / "packet", LIVE / "vllm_live_embedded" / "packet"
BUCKET = re.compile(r'^vllm:time_to_first_token_seconds_bucket\{.*le="([^"]+)".*\}\s+(\S+)')


def raw_quantile(packet: Path, q: float) -> float:
    """histogram_quantile by hand: cumulative counts per `le` summed over series, then the
    linear interpolation inside the first bucket whose count reaches q * total."""
    (scrape,) = (packet / "inputs" / "engine_metrics").iterdir()
    acc: dict[float, float] = {}
    for line in scrape.read_text().splitlines():
        m = BUCKET.match(line)
        if m:
            acc[float(m.group(1))] = acc.get(float(m.group(1)), 0.0) + float(m.group(2))
    total = acc.pop(float("inf"))
    prev_le, prev_c = 0.0, 0.0
    for le in sorted(acc):
        if acc[le] >= q * total:
            return prev_le + (le - prev_le) * (q * total - prev_c) / (acc[le] - prev_c)
        prev_le, prev_c = le, acc[le]
    raise AssertionError("quantile above the last finite bound")


def test_two_real_packets() -> None:
    c = compare_packet_dirs(str(OFFLOAD), str(EMBEDDED))
    assert (c.mode_a, c.mode_b) == ("mp", "embedded_vllm")
    ext = next(r for r in c.rates if r.name == "vllm_external_prefix_cache_hit_rate")
    assert ext.a is not None and ext.a > 0 and ext.b == 0
    assert ext.window_a is not None and ext.window_a.kind == "since_process_start"
    assert any(r.startswith("vllm_external_prefix_cache_hit_rate") for r in c.regressions)
    assert any("detected mode changed" in r for r in c.regressions)
    fam = {f.name: f for f in c.families}
    assert (fam["vllm:external_prefix_cache_hits"].a,
            fam["vllm:external_prefix_cache_hits"].b) == ("populated", "zero")
    assert "lmcache_zero_hits_after_warmup" in c.findings_appeared
    assert "lmcache_vllm_hits_reconciled" in c.findings_cleared
    assert c.ttft is not None
    for q in c.ttft.quantiles:
        assert q.a == pytest.approx(raw_quantile(OFFLOAD, q.quantile))
        assert q.b == pytest.approx(raw_quantile(EMBEDDED, q.quantile))
        assert q.change == pytest.approx(q.b - q.a)


def test_same_packet_is_no_regression() -> None:
    c = compare_packet_dirs(str(OFFLOAD), str(OFFLOAD))
    assert not c.regressions and not c.families and not c.findings_appeared
    assert all(r.change == 0 for r in c.rates if r.change is not None)


def test_cli_exit_codes_and_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["compare", str(OFFLOAD), str(EMBEDDED), "--fail-on", "regression"]) == 1
    text = capsys.readouterr().out
    assert "vllm_external_prefix_cache_hit_rate" in text and "regressions:" in text
    assert "TTFT" in text
    assert main(["compare", str(OFFLOAD), str(EMBEDDED)]) == 0  # reported, not failed
    capsys.readouterr()
    assert main(["compare", str(OFFLOAD), str(OFFLOAD), "--fail-on", "regression",
                 "--json"]) == 0
    doc = msgspec.json.decode(capsys.readouterr().out)
    assert doc["schema"] == "inferguard.compare/1" and doc["regressions"] == []
    assert main(["compare", str(tmp_path / "nope"), str(OFFLOAD)]) == 2
