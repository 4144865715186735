"""`inferguard watch` against the real LMCache 0.5.6 server: a bounded run of four rounds with
`lmcache bench server` traffic between them. Every round finds the server up, a later window's
`lmcache_mp_lookup_hit_rate` has lookups and hits, each window's numerator and denominator
equal the counter deltas summed here from the raw scrapes the packet stored, the packet judged
afterwards gives the same run rates, and only GETs were sent (the server's own access log).
The command itself runs too, as a user runs it (`inferguard watch --json` in a fresh process,
traffic sent while it polls): every line is a valid `inferguard.watch_round/1` document and its
windows equal the deltas of the scrapes it stored.

Runs only with INFERGUARD_LIVE=1 (CI's live stage), on the upstream venv
`scripts/live-lmcache-packet` builds or reuses; everything on 127.0.0.1, stopped by PID.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import inferguard as ig
from inferguard.collect._watch import WatchEndpoints
from inferguard.verdict._watch import Watcher

from ..live_checks import LiveMpServer

pytestmark = pytest.mark.skipif(
    os.environ.get("INFERGUARD_LIVE") != "1",
    reason="live LMCache watch run: set INFERGUARD_LIVE=1 (builds or reuses the upstream "
           "venv; see docs/live-packet.md)")

RATE = "lmcache_mp_lookup_hit_rate"
HIT, REQ = "lmcache_mp_lookup_hit_tokens_total", "lmcache_mp_lookup_requested_tokens_total"


def _total(text: str, family: str) -> float:
    """Sum of a counter's samples in an exposition, read independently of InferGuard."""
    pat = re.compile(rf"^{re.escape(family)}(?:\{{[^}}]*\}})?\s+(\S+)", re.M)
    return sum(float(v) for v in pat.findall(text))


@pytest.fixture(scope="module")
def live() -> Iterator[dict[str, Any]]:
    with LiveMpServer("inferguard-live-watch", "inferguard-live-watch-") as srv:
        benches = iter([(64, 2), (64, 2), (128, 3)])  # the repeat looks up what the first stored

        def traffic(_seconds: float) -> None:
            """Watcher's sleep between rounds: one bench run instead of idling."""
            srv.bench(*next(benches))
            time.sleep(1.0)  # let the counters settle before the next scrape

        out = srv.work / "watch-packet"
        w = Watcher(WatchEndpoints(lmcache_metrics=[srv.base + "/metrics"],
                                   lmcache_http=[srv.base]),
                    interval=1.0, rounds=4, timeout=10.0, packet_dir=str(out), sleep=traffic)
        ticks = list(w.run())
        cli = _cli_watch(srv, srv.work / "cli-packet")
        yield {"ticks": ticks, "run_rates": w.run_rates(), "packet": out, "log": srv.log,
               "cli": cli, "cli_packet": srv.work / "cli-packet"}


def _cli_watch(srv: LiveMpServer, out: Path) -> list[dict[str, Any]]:
    """`inferguard watch --json` for three rounds, 4 s apart, with one bench run after its
    first round; returns the JSON documents it printed (stderr shown on failure)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "inferguard", "watch", "--lmcache-metrics-url",
         srv.base + "/metrics", "--lmcache-http-base-url", srv.base, "--interval", "4",
         "--rounds", "3", "--timeout", "10", "--output-dir", str(out), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines = [proc.stdout.readline()]
    srv.bench(64, 2)  # the first round is printed: traffic inside the next window
    rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    lines += rest.splitlines()
    return [json.loads(x) for x in lines if x.startswith("{")]


def test_every_round_finds_the_server_up(live: dict[str, Any]) -> None:
    ticks = live["ticks"]
    assert len(ticks) == 4
    assert all(e.up for t in ticks for e in t.endpoints), [t.endpoints for t in ticks]


def test_window_rates_are_the_deltas_of_the_stored_scrapes(live: dict[str, Any]) -> None:
    packet = ig.Packet.read(live["packet"])
    scrapes = [e for e in packet.evidence if e.kind == "lmcache_metrics"]
    assert len(scrapes) == 4 and all(e.status == "ok" for e in scrapes)
    # The raw bodies as stored: inputs/lmcache_metrics/<host>_<port>_metrics_<round>.txt
    stored = sorted((Path(live["packet"]) / "inputs" / "lmcache_metrics").glob("*.txt"),
                    key=lambda f: int(f.stem.rsplit("_", 1)[1]))
    assert len(stored) == 4, stored
    texts = [f.read_text() for f in stored]
    hits = [_total(t, HIT) for t in texts]
    reqs = [_total(t, REQ) for t in texts]
    assert reqs[-1] > reqs[0] and hits[-1] > hits[0], (hits, reqs)  # warm traffic hit
    hit_windows = 0
    for i, tick in enumerate(live["ticks"][1:], start=1):
        r = next(r for r in tick.rates if r.name == RATE)
        assert r.window.kind == "between_scrapes"
        assert (r.numerator, r.denominator) == (hits[i] - hits[i - 1], reqs[i] - reqs[i - 1])
        hit_windows += bool(r.denominator and r.numerator)
    assert hit_windows >= 1
    run = next(r for r in live["run_rates"] if r.name == RATE)
    assert (run.numerator, run.denominator) == (hits[-1] - hits[0], reqs[-1] - reqs[0])
    again = next(r for r in ig.compat(packet).rates if r.name == RATE)
    assert (again.numerator, again.denominator) == (run.numerator, run.denominator)


def test_watch_sent_only_gets(live: dict[str, Any]) -> None:
    """The server's access log (uvicorn) lists every request InferGuard made."""
    log = Path(live["log"]).read_text(errors="replace")
    methods = re.findall(r'"(GET|POST|PUT|DELETE|PATCH) /', log)
    assert methods and set(methods) == {"GET"}, sorted(set(methods))


def _stored_totals(packet: Path) -> tuple[list[float], list[float]]:
    stored = sorted((packet / "inputs" / "lmcache_metrics").glob("*.txt"),
                    key=lambda f: int(f.stem.rsplit("_", 1)[1]))
    texts = [f.read_text() for f in stored]
    return [_total(t, HIT) for t in texts], [_total(t, REQ) for t in texts]


def test_cli_watch_json_lines_are_valid_and_equal_the_stored_deltas(
        live: dict[str, Any]) -> None:
    from ..jsonschema_subset import validate
    from ..test_cli_behaviour import _shipped_schema

    docs = live["cli"]
    assert len(docs) == 3, docs
    schema = _shipped_schema("inferguard.watch_round/1")
    for doc in docs:
        assert doc["schema"] == "inferguard.watch_round/1"
        validate(doc, schema)
        assert doc["endpoints"] and all(e["up"] for e in doc["endpoints"]), doc["endpoints"]
    hits, reqs = _stored_totals(Path(live["cli_packet"]))
    assert len(hits) == 3, (hits, reqs)
    assert reqs[-1] > reqs[0], reqs  # the bench run between the rounds was seen
    for i, doc in enumerate(docs[1:], start=1):
        r = next(r for r in doc["rates"] if r["name"] == RATE)
        assert r["window"]["kind"] == "between_scrapes"
        assert (r["numerator"], r["denominator"]) == (hits[i] - hits[i - 1],
                                                      reqs[i] - reqs[i - 1])
