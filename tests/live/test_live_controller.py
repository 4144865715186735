"""End to end against the real upstream controller: `lmcache_controller` 0.5.6 alone.

Runs only with INFERGUARD_LIVE=1. `scripts/live-lmcache-packet --scenario controller` starts
the controller on 127.0.0.1 (in its own network namespace where `unshare -n` works), collects
it with `collect-lmcache --lmcache-controller-url` and judges the packet. The checks: only
InferGuard's allow-listed GETs reached the controller (its uvicorn access log), nothing left
loopback, and the packet is reported as controller-only evidence.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from inferguard._packet import Packet
from inferguard.evidence._controller import ControllerFacts, request_paths

from ..live_checks import check_isolation, run_script

pytestmark = pytest.mark.skipif(
    os.environ.get("INFERGUARD_LIVE") != "1",
    reason="live LMCache end-to-end run: set INFERGUARD_LIVE=1 (builds or reuses the upstream "
           "venv and starts lmcache_controller on 127.0.0.1; see docs/live-packet.md)")

RUN_TIMEOUT_S = 1800  # a cold environment build included


@pytest.fixture(scope="module")
def res(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("live-controller")
    (result,) = run_script(["--scenario", "controller"], out, RUN_TIMEOUT_S)["scenarios"]
    assert result["ok"], result.get("error")
    return result


def test_only_allow_listed_gets_reached_the_controller(res: dict[str, Any]) -> None:
    seen = [(r["method"], r["path"]) for r in res["http_requests"]]
    assert seen[0] == ("GET", "/openapi.json")  # the script's readiness probe
    assert seen[1:] == [("GET", p) for p in request_paths("controller")]
    assert all(r["status"] == 200 for r in res["http_requests"])
    check_isolation(res)
    assert res["server_stop"]["signal"] == "SIGINT"


def test_packet_is_controller_only(res: dict[str, Any]) -> None:
    packet = Packet.load(res["packet"])
    facts = packet.of_kind("controller")[0].facts
    assert isinstance(facts, ControllerFacts) and facts.app == "controller"
    assert facts.route_table_paths == 22 and facts.unknown_routes == []
    assert len(facts.gauges) == 13 and set(facts.gauges.values()) == {0.0}
    assert facts.workers_listed == 0 and facts.periodic_threads_healthy is True
    report = json.loads((Path(res["work"]) / "compat.out").read_text())["report"]
    assert report["detected"]["mode"] == "controller_only"
    assert any("not cache performance proof" in n for n in report["detected"]["notes"])
    codes = [f["code"] for f in json.loads(
        (Path(res["work"]) / "diagnose.out").read_text())["findings"]]
    assert "lmcache_controller_only_evidence" in codes


def test_every_process_stopped(res: dict[str, Any]) -> None:
    pids = [int(line.split()[0]) for line in
            (Path(res["work"]) / "pids.txt").read_text().splitlines()]
    assert len(pids) >= 4  # controller, collect, compat, diagnose
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
