"""End to end against the real upstream server: LMCache 0.5.7 (`lmcache==0.5.7rc2`, the
compiled wheel) on this CPU-only machine, next to the 0.5.6 run of test_live_lmcache.py.

Runs only with INFERGUARD_LIVE=1. `scripts/live-lmcache-packet --lmcache-version 0.5.7rc2`
builds or reuses its own cached venv (`venv-0.5.7rc2`: torch CPU first, then the wheel), runs
the `l1` scenario (storage trace, Prometheus pull) and the `otel` one with
`--enable-token-trace`, both with `--null-block-id -1` (the 0.5.7 server's default 0 makes the
bench's lmcache-driven requests miss; that case is tests/test_trace_schema2.py's, on the real
capture). Checks: trace schema 2 read as upstream's own `trace info` reads it, the two new
lookup counters, the version the report states, and that no prompt token id from the
captured `mp.request.trace` spans reaches any file InferGuard wrote.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from inferguard._packet import Packet
from inferguard.evidence._otel import OtelFacts
from inferguard.evidence._trace import TraceFacts

from ..live_checks import (
    check_http_requests,
    check_trace_against_upstream,
    run_script,
    scenario_report,
    scenario_result,
)

pytestmark = pytest.mark.skipif(
    os.environ.get("INFERGUARD_LIVE") != "1",
    reason="live LMCache 0.5.7rc2 end-to-end run: set INFERGUARD_LIVE=1 (builds or reuses its "
           "own upstream venv and starts lmcache server on 127.0.0.1; docs/live-packet.md)")

RUN_TIMEOUT_S = 1800  # a cold environment build included
VERSION = "0.5.7rc2"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("live057")
    return run_script(["--lmcache-version", VERSION, "--scenario", "l1", "--scenario", "otel"],
                      out, RUN_TIMEOUT_S)


_scenario = scenario_result
_report = scenario_report


def test_script_succeeded_on_057(run: dict[str, Any]) -> None:
    assert run["exit"] == 0 and run["lmcache"] == VERSION
    assert run["venv"].endswith("venv-0.5.7rc2")


@pytest.mark.parametrize("name", ["l1", "otel"])
def test_057_verdict(run: dict[str, Any], name: str) -> None:
    res = _scenario(run, name)
    assert res["compat_exit"] == 0 and res["diagnose_exit"] == 0
    r = _report(res)
    assert r.detected.mode == "mp" and r.missing_required == []
    assert r.versions is not None and r.versions.versions["lmcache"].startswith(VERSION)
    assert r.unknown_lmcache_families == []
    if name == "l1":  # Prometheus pull: the new counters are scraped
        for fam in ("lmcache_mp_lookup_prompt_tokens_total",
                    "lmcache_mp_lookup_request_hit_tokens_total"):
            got = r.family(fam)
            assert got is not None and got.status == "populated", got
    assert "lmcache_mp_first_chunk_never_stored" not in {
        f.code for f in __import__("inferguard").judge_packet(
            Packet.read(res["packet"])).diagnosis.findings}
    check_http_requests(res["http_requests"])


@pytest.mark.parametrize("name", ["l1", "otel"])
def test_057_trace_is_schema2_and_matches_upstream(run: dict[str, Any], name: str) -> None:
    res = _scenario(run, name)
    packet = Packet.load(res["packet"])
    (tf,) = [e.facts for e in packet.evidence if isinstance(e.facts, TraceFacts)]
    assert tf.summary.header.trace_schema_version == 2
    assert tf.summary.header.variant == "schema2"
    check_trace_against_upstream(run, res, packet)


def _token_ids(path: Path, other: set[str]) -> list[list[str]]:
    """The `lmcache.input_ids` arrays of every span of a raw OTLP/JSON export; every other
    intValue of the export goes into `other`."""
    out: list[list[str]] = []
    for line in path.read_text().splitlines():
        stack: list[Any] = [json.loads(line)]
        while stack:
            x = stack.pop()
            if isinstance(x, dict):
                if x.get("key") == "lmcache.input_ids":
                    vals = x["value"]["arrayValue"]["values"]
                    out.append([v["intValue"] for v in vals])
                    continue
                if "intValue" in x:
                    other.add(str(x["intValue"]))
                stack.extend(x.values())
            elif isinstance(x, list):
                stack.extend(x)
    return out


def test_057_token_ids_never_reach_inferguard_files(run: dict[str, Any]) -> None:
    res = _scenario(run, "otel")
    work = Path(res["work"])
    raw = [p for p in (work / "otlp").glob("otlp_*.jsonl") if p.stat().st_size]
    other: set[str] = set()
    arrays = [a for p in raw for a in _token_ids(p, other)]
    assert arrays, "the run emitted no mp.request.trace span with lmcache.input_ids"
    # What InferGuard wrote: both packets (live and final) and the command outputs.
    written = [p for d in ("packet", "live-packet") for p in (work / d).rglob("*")
               if p.is_file()]
    written += [work / n for n in ("compat.out", "diagnose.out", "collect-live.out",
                                   "collect-final.out")]
    # Token ids are small integers that also occur as other numbers, so the check is on
    # their OTLP form (`"intValue":"<id>"`) for ids no other attribute of the export holds,
    # on the attribute's array form, and on each prompt's id sequence as a JSON list.
    ids = {i for a in arrays for i in a} - other
    assert ids, "every token id also occurs as another attribute's value"
    needles = {f'"intValue":"{i}"' for i in ids} | {f'"intValue": "{i}"' for i in ids}
    sequences = {json.dumps([int(i) for i in a]) for a in arrays} | {
        json.dumps([int(i) for i in a], separators=(",", ":")) for a in arrays}
    for p in written:
        body = p.read_text(errors="replace")
        assert "arrayValue" not in body or "lmcache.input_ids" not in body, p
        assert not [n for n in needles if n in body], p
        assert not [s for s in sequences if s in body], p
    facts = [e.facts for e in Packet.read(res["packet"]).evidence
             if isinstance(e.facts, OtelFacts) and e.facts.token_id_spans]
    assert facts and facts[0].token_id_spans == len(arrays)
    assert facts[0].token_ids_total == sum(len(a) for a in arrays)
