"""`inferguard metrics summary FILE [--json]` on real and broken files."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from inferguard import MetricsSummary, summarize_metrics
from inferguard.cli._main import main

from .conftest import UPSTREAM

L1_AFTER = UPSTREAM / "metrics" / "mp-l1-storage-trace" / "metrics_after.txt"


def test_summary_text(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["metrics", "summary", str(L1_AFTER)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Metrics file: {L1_AFTER}\n")
    assert "  format:                     prometheus (text 0.0.4)\n" in out
    assert "  families:                   42\n" in out
    assert f"  backend:                    {backend}\n" in out
    assert "    counter: 20\n    gauge: 17\n    histogram: 5\n" in out
    assert "    lmcache_mp (" in out and "      lmcache_mp_l1_write_chunks_total\n" in out
    assert "    lmcache_mp_event_bus_queue_depth\n" in out  # an all-zero family
    assert "  problems: none\n" in out


def test_summary_json(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["metrics", "summary", "--json", str(L1_AFTER)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "inferguard.metrics_summary/1"
    assert doc["backend"] == backend and doc["families"] == 42
    assert doc["types"] == {"counter": 20, "gauge": 17, "histogram": 5}
    assert "lmcache_mp_l1_write_chunks_total" in doc["lmcache"]["lmcache_mp"]
    assert "lmcache_mp_event_bus_queue_depth" in doc["all_zero"]
    brief = next(f for f in doc["family_list"] if f["name"] == "target_info")
    assert brief == {"name": "target_info", "type": "gauge", "help": "Target metadata",
                     "unit": "", "samples": 1, "series": 1, "all_zero": False,
                     "lmcache": None}
    assert doc["problems"] == [] and doc["problem_count"] == 0
    again = msgspec.json.decode(json.dumps(doc), type=MetricsSummary)
    assert again == summarize_metrics(L1_AFTER)


def test_summary_reports_problems(backend: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "broken.txt"
    f.write_bytes(b'lmcache:num_hit_tokens_total{a="1"} 3\nbad{\x1b[31m 1\n')
    assert main(["metrics", "summary", str(f)]) == 0
    out = capsys.readouterr().out
    assert "    lmcache: (1):\n      lmcache:num_hit_tokens_total\n" in out
    assert "  problems: 1\n" in out
    assert f"    {f}:2:5: expected a label name\n" in out
    assert "      | bad{\\x1b[31m 1\n" in out  # control characters are not echoed


def test_summary_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["metrics", "summary", str(tmp_path / "nope.txt")]) == 2
    assert "inferguard: error:" in capsys.readouterr().err
