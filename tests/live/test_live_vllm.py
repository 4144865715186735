"""End to end against real vLLM (CPU) + LMCache 0.5.6: `scripts/live-vllm-packet`.

Runs only with INFERGUARD_LIVE_VLLM=1 (not with INFERGUARD_LIVE alone: it builds a ~1.2 GB
vLLM venv and takes about 4 minutes warm). The script runs the three scenarios on 127.0.0.1,
records them as fixtures into a temp dir, and the offline checks of
tests/test_live_vllm_fixtures.py run again on that fresh recording.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .. import test_live_vllm_fixtures as fx
from ..live_checks import ROOT, script

pytestmark = pytest.mark.skipif(
    os.environ.get("INFERGUARD_LIVE_VLLM") != "1",
    reason="live vLLM + LMCache run: set INFERGUARD_LIVE_VLLM=1 (builds or reuses the vLLM "
           "venv and starts vLLM and lmcache server on 127.0.0.1; see docs/live-packet.md)")

SCRIPT = ROOT / "scripts" / "live-vllm-packet"
# A cold environment build included (91 s + ~4 min measured); below the 15-min `timeout` of
# the CI stage, so this test (which stops every recorded PID) always fires first.
RUN_TIMEOUT_S = float(os.environ.get("INFERGUARD_LIVE_VLLM_RUN_TIMEOUT", "1500"))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    out = tmp_path_factory.mktemp("live-vllm")
    rec = out / "fixtures"
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--out", str(out / "runs"),
                             "--record-fixture", str(rec)], stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        proc.wait(RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        pytest.fail(f"{SCRIPT.name} did not finish within {RUN_TIMEOUT_S:.0f} s")
    finally:
        for pids in (out / "runs").glob("*/pids.txt"):
            script().kill_recorded(pids)
    summary: dict[str, Any] = json.loads((out / "runs" / "summary.json").read_text())
    before = fx.ROOT["dir"]
    fx.ROOT["dir"] = rec
    try:
        yield summary
    finally:
        fx.ROOT["dir"] = before
        for pids in (out / "runs").glob("*/pids.txt"):
            for line in pids.read_text().splitlines():
                pid = int(line.split()[0])
                assert not Path(f"/proc/{pid}").exists() or _zombie(pid), line


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except OSError:
        return True


def test_all_scenarios_ok(recorded: dict[str, Any]) -> None:
    assert [r["scenario"] for r in recorded["scenarios"]] == ["mp", "offload", "embedded"]
    assert all(r["ok"] for r in recorded["scenarios"]), [
        (r["scenario"], r.get("error")) for r in recorded["scenarios"]]


@pytest.mark.parametrize("name", ["mp", "offload", "embedded"])
def test_run_clean(recorded: dict[str, Any], name: str) -> None:
    del recorded
    fx.test_recorded_run_was_clean(name)


@pytest.mark.parametrize("name", ["mp", "offload"])
def test_mp_reconciled(recorded: dict[str, Any], name: str) -> None:
    del recorded
    fx.test_mp_connector_hits_reconciled(name)


def test_embedded_dead(recorded: dict[str, Any]) -> None:
    del recorded
    fx.test_embedded_configured_but_dead()
    fx.test_embedded_levels_follow_the_evidence()
