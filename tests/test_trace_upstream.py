"""The .lct reader against real files written by upstream LMCache 0.5.6."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from inferguard import TraceFile, summarize_trace
from inferguard.cli._main import main
from inferguard.lct._codec import GroupedObjectKeys, ObjectKey, PrefetchTaskSpec

from .conftest import UPSTREAM

TRACE = UPSTREAM / "storage.lct"
DUMP = UPSTREAM / "storage.lct.dump.json"


def _upstream_info(path: Path) -> dict[str, Any]:
    """Parse what `lmcache trace info` printed (its first line is a log line)."""
    rows: dict[str, Any] = {"ops": {}}
    for line in path.read_text().splitlines():
        m = re.match(r"^    (\S+): (\d+)$", line)
        if m:
            rows["ops"][m.group(1)] = int(m.group(2))
            continue
        m = re.match(r"^  (\w+):\s+(.*)$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def _jsonable(v: Any) -> Any:
    """The dump's JSON form: bytes as {"__bytes_hex__": hex}."""
    if isinstance(v, bytes):
        return {"__bytes_hex__": v.hex()}
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    return v


@pytest.mark.parametrize("trace,info", [
    (TRACE, UPSTREAM / "trace_info_storage.txt"),
    (UPSTREAM / "lookup-replay-storage.lct", UPSTREAM / "lookup-replay-trace_info_storage.txt"),
])
def test_summary_matches_upstream_trace_info(backend: str, trace: Path, info: Path) -> None:
    expected = _upstream_info(info)
    s = summarize_trace(trace)
    assert s.backend == backend
    assert s.header.level == expected["level"]
    assert str(s.header.format_version) == expected["format_version"]
    assert str(s.header.trace_schema_version) == expected["trace_schema_version"]
    assert f"{s.duration_s:.3f}s" == expected["duration"]
    assert s.header.sm_config_digest == expected["sm_config_digest"]
    assert s.total_records == int(expected["total_records"])
    assert {o.qualname: o.count for o in s.ops} == expected["ops"]
    assert s.integrity.ok and s.integrity.findings == []
    assert s.header.variant == "schema1"
    assert s.header.sm_config_digest_ok is True


def test_header_fields_match_dump() -> None:
    dump = json.loads(DUMP.read_text())
    h = dump["header"]
    with TraceFile(TRACE) as t:
        hdr = t.header
    assert hdr.magic == "LMCT"
    assert hdr.format_version == h["format_version"] == 1
    assert hdr.level == "storage"
    assert hdr.t_mono_start == h["t_mono_start"]
    assert hdr.t_wall_start == h["t_wall_start"]
    assert hdr.sm_config_json == h["sm_config_json"]
    assert hdr.frame_length == dump["header_frame_len"]
    assert hdr.level_meta == {}


def test_records_identical_to_dump(backend: str) -> None:
    dump = json.loads(DUMP.read_text())
    with TraceFile(TRACE) as t:
        records = list(t.records(unwrap_args=False))
    assert len(records) == len(dump["records"]) == 74
    for got, want in zip(records, dump["records"], strict=True):
        assert got.offset == want["offset"]
        rec = want["record"]
        assert got.t_mono == rec["t_mono"]
        assert got.t_wall == rec["t_wall"]
        assert got.qualname == rec["qualname"]
        assert _jsonable(got.args) == rec["args"]


def test_scan_columns_match_dump(backend: str) -> None:
    dump = json.loads(DUMP.read_text())
    with TraceFile(TRACE) as t:
        cols = t.scan()
    want = dump["records"]
    assert cols.offset.tolist() == [r["offset"] for r in want]
    assert cols.length.tolist() == [r["frame_len"] for r in want]
    assert cols.t_mono.tolist() == [r["record"]["t_mono"] for r in want]
    assert [cols.ops[i] for i in cols.op] == [r["record"]["qualname"] for r in want]
    assert (cols.status == 0).all()
    # Every ObjectKey wrapper in the dump is counted, record by record.
    expected_keys = [json.dumps(r["record"]["args"]).count('"__t__": "ObjectKey"') for r in want]
    assert cols.nkeys.tolist() == expected_keys


def test_unwrapped_args_are_typed() -> None:
    dump = json.loads(DUMP.read_text())
    with TraceFile(TRACE) as t:
        first = next(iter(t.records()))
    spec = first.args["spec"]
    assert isinstance(spec, PrefetchTaskSpec)
    assert spec.num_kv_readers == 1 and spec.fetching_policy == "prefix"
    assert spec.lock_mode.enum == "PrefetchLockMode" and spec.lock_mode.name == "LOCK"
    group = spec.key_groups[0]
    assert isinstance(group, GroupedObjectKeys)
    key = group.keys[0]
    assert isinstance(key, ObjectKey)
    raw_key = dump["records"][0]["record"]["args"]["spec"]["v"]["key_groups"][0]["v"]["keys"][0]
    assert key.chunk_hash.hex() == raw_key["v"]["chunk_hash"]["__bytes_hex__"]
    assert key.kv_rank == raw_key["v"]["kv_rank"] == 16777472
    assert (key.world_size, key.global_rank, key.local_world_size, key.local_rank) == (1, 0, 1, 0)
    assert group.layout_desc.shapes == ((2, 2, 16, 32),)
    assert group.layout_desc.dtypes == ("torch.float16",)


def test_buffer_and_path_give_the_same_scan(backend: str) -> None:
    with TraceFile(TRACE) as a, TraceFile(TRACE.read_bytes()) as b:
        ca, cb = a.scan(), b.scan()
    for f in ("offset", "length", "t_mono", "t_wall", "op", "nkeys", "status"):
        assert np.array_equal(getattr(ca, f), getattr(cb, f))


def test_cli_text_starts_like_upstream(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", "info", str(TRACE)]) == 0
    out = capsys.readouterr().out.splitlines()
    upstream = (UPSTREAM / "trace_info_storage.txt").read_text().splitlines()[1:]
    # Same rows, same label column; only the path differs on the first line.
    assert out[0] == f"Trace file: {TRACE}"
    assert out[1:len(upstream)] == upstream[1:]
    assert "    integrity: ok" in out


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", "info", "--json", str(TRACE)]) == 0
    doc = msgspec.json.decode(capsys.readouterr().out)
    assert doc["schema"] == "inferguard.trace_summary/1"
    assert doc["total_records"] == 74
    assert doc["keys_total"] == sum(o["keys_total"] for o in doc["ops"])
    assert doc["wall_start"] <= doc["wall_end"]


def test_cli_not_a_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("hello world, this is not a trace\n")
    assert main(["trace", "info", str(p)]) == 2
    err = capsys.readouterr().err
    assert str(p) in err and "offset 0" in err and "68 65 6c 6c" in err
