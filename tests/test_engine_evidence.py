"""The engine side of a verdict, on real upstream bytes: which MP transfer path a log line
proves (engine-driven vs lmcache-driven), an engine that never started, and vLLM's /health.
"""

from __future__ import annotations

from pathlib import Path

from inferguard._packet import Packet, PacketSettings
from inferguard.evidence._logs import LogFacts
from inferguard.evidence._readers import read_evidence
from inferguard.judge._compat import compat

from .conftest import FIXTURES, UPSTREAM

LIVE = FIXTURES / "lmcache_live"


def _log_facts(path: Path) -> LogFacts:
    ev = read_evidence("log", path)
    assert isinstance(ev.facts, LogFacts)
    return ev.facts


def _mp_report(*inputs: tuple[str, Path]):  # type: ignore[no-untyped-def]
    return compat(Packet.from_files(inputs, settings=PacketSettings(expected_mode="mp")))


# -- (7) engine-driven Stored/Retrieved lines are not the lmcache-driven path ------------------


def test_engine_driven_lines_do_not_make_the_lmcache_driven_path() -> None:
    """vLLM 0.32 + LMCacheMPConnector (the default MP path): every `Stored/Retrieved N tokens`
    line comes from EngineDrivenTransferModule (engine_driven_transfer.py), so the
    lmcache-driven transfer families stay not_applicable instead of turning `missing`."""
    root = LIVE / "vllm_live_mp" / "packet" / "inputs"
    f = _log_facts(root / "log" / "lmcache_server.log")
    assert f.count("mp_stored") == 5 and f.count("mp_retrieved") == 1
    assert f.count("mp_transfer_engine_driven") == 6
    assert f.count("mp_transfer_lmcache_driven") == 0
    scrape = next((root / "lmcache_metrics").iterdir())
    r = _mp_report(("lmcache_metrics", scrape), ("log", root / "log" / "lmcache_server.log"))
    assert r.conditions["lmcache_driven"] is False
    for name in ("lmcache_mp_num_submitted_stores_total",
                 "lmcache_mp_l0_l1_store_throughput_GB_per_second"):
        fam = r.family(name)
        assert fam is not None and fam.status == "not_applicable", fam
        assert "lmcache-driven" in (fam.explanation or "")


def test_lmcache_driven_lines_set_the_condition() -> None:
    """A CacheBlend server (0.5.6) stores through LMCacheDrivenTransferModule.store: its
    lines (lmcache_driven_transfer.py) do show the lmcache-driven path; a server that ran both
    paths counts each line on its own path."""
    blend = _log_facts(UPSTREAM / "logs" / "blend_server.log")
    assert blend.count("mp_transfer_lmcache_driven") == 20
    assert blend.count("mp_transfer_engine_driven") == 0
    both = _log_facts(UPSTREAM / "logs" / "mp_server.log")
    assert both.count("mp_transfer_engine_driven") == 18
    assert both.count("mp_transfer_lmcache_driven") == 4
    assert both.count("mp_stored") + both.count("mp_retrieved") == 22
    r = _mp_report(("log", UPSTREAM / "logs" / "blend_server.log"))
    assert r.conditions["lmcache_driven"] is True
