"""The family catalog against real upstream scrapes: every `lmcache:*` family a real 0.5.6
scrape carries is catalogued (0.5.6 `lmcache/observability.py` PrometheusLogger registers
them all at construction), so none is reported as unknown."""

from __future__ import annotations

from pathlib import Path

import pytest

import inferguard as ig
from inferguard.evidence._metrics import MetricsFacts
from inferguard.judge._catalog import FAMILIES, known_names
from inferguard.prom._names import normalize_name

from .conftest import FIXTURES

# Real scrapes in the fixtures, by the evidence kind they were collected as.
SCRAPES = sorted(
    [("engine_metrics", p) for p in FIXTURES.glob("lmcache_live/*/packet/inputs/engine_metrics/*")]
    + [("lmcache_metrics", p)
       for p in FIXTURES.glob("lmcache_live/*/packet/inputs/lmcache_metrics/*")]
    + [("lmcache_metrics", p) for p in FIXTURES.glob("lmcache-0.5.6/metrics/*/*.txt")]
    + [("lmcache_metrics", p)
       for p in FIXTURES.glob("lmcache-0.5.6/controller/*/GET_metrics.body")],
    key=lambda kp: str(kp[1]))


def _lmcache_colon_families(kind: str, path: Path) -> list[str]:
    ev = ig.read_evidence(kind, path)
    assert isinstance(ev.facts, MetricsFacts), path
    return [f.name for f in ev.facts.families if f.name.startswith("lmcache:")]


@pytest.mark.parametrize(("kind", "path"), SCRAPES, ids=lambda x: str(x)[-60:])
def test_every_lmcache_colon_family_is_known(kind: str, path: Path) -> None:
    known = known_names()
    unknown = [n for n in _lmcache_colon_families(kind, path) if normalize_name(n) not in known]
    assert unknown == []
    verdict = ig.judge_packet(ig.Packet(settings=ig.PacketSettings(),
                                        evidence=[ig.read_evidence(kind, path)]))
    assert [n for n in verdict.report.unknown_lmcache_families if n.startswith("lmcache:")] == []


def test_the_scrapes_cover_the_whole_prometheus_logger() -> None:
    """Together the real scrapes (the embedded vLLM one and the engine's internal API
    server) carry all 94 families 0.5.6's PrometheusLogger registers: each catalogued."""
    names = {normalize_name(n) for kind, p in SCRAPES for n in _lmcache_colon_families(kind, p)
             if not n.startswith("lmcache:cache_controller_")}
    names = {n for n in names if not n.endswith("_created")}
    assert len(names) == 94
    assert names <= {normalize_name(f.name) for f in FAMILIES}


def test_created_companions_are_not_families() -> None:
    """`x_created` (prometheus_client's 0.0.4 companion gauge) is known only beside a
    catalogued counter or histogram, never for a gauge."""
    known = known_names()
    assert "lmcache_num_hit_tokens_created" in known
    assert "lmcache_time_to_retrieve_created" in known
    assert "lmcache_lookup_hit_rate_created" not in known
