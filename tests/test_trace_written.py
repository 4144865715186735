"""The .lct reader on traces the tests write: header variants, events level, damage."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from inferguard import TraceFile, TraceFormatError, summarize_trace

from . import lct_writer as w

OPS = ["submit_prefetch_task", "reserve_write", "finish_write",
       "read_prefetched_results.__enter__", "read_prefetched_results.__exit__",
       "finish_read_prefetched"]


def _storage_bodies(n: int, keys: int = 3) -> list[bytes]:
    return [w.storage_record(OPS[i % len(OPS)], keys, 0.5 + i * 0.25, first_key=i)
            for i in range(n)]


def _write(tmp_path: Path, data: bytes, name: str = "t.lct") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("variant,schema,expected", [
    ("v0", None, "v0"), ("schema1", 1, "schema1"), ("schema2", 2, "schema2")])
def test_header_variants(tmp_path: Path, backend: str, variant: str, schema: int | None,
                         expected: str) -> None:
    head = w.header(variant, config={"chunk_size": 256, "adapters": []})
    p = _write(tmp_path, w.trace(*_storage_bodies(12), head=head))
    s = summarize_trace(p)
    assert s.header.variant == expected
    assert s.header.trace_schema_version == schema
    assert s.header.lmcache_version == ("0.3.9" if variant == "v0" else None)
    assert s.header.sm_config_digest_ok is True
    assert s.total_records == 12
    assert {o.qualname.rsplit("StorageManager.", 1)[1]: o.count for o in s.ops} == {
        op: 2 for op in OPS}
    assert s.integrity.ok
    assert s.keys_total == 36
    assert s.duration_s == pytest.approx(0.5 + 11 * 0.25)


def test_events_level(tmp_path: Path, backend: str) -> None:
    meta = {"instance_id": "srv-a", "cache_event_schema_version": 1, "lmcache_version": "0.5.6"}
    head = w.header("schema1", level="events", level_meta=meta)

    def batch(seq: int, etype: str, inc: int, n: int, tokens: bool, shared: bool = False,
              backend: str | None = None) -> bytes:
        entries = [{"key": {"chunk_hash_hex": f"{seq:064x}", "model_name": "m", "kv_rank": 0,
                            "object_group_id": 0, "cache_salt": None},
                    "size_bytes": 1000, "token_ids": [1, 2, 3] if tokens else [],
                    "token_offset": -1} for _ in range(n)]
        args = {"instance_id": "srv-a", "incarnation": inc, "seq": seq, "event_type": etype,
                "tier": "l1" if backend is None else "l2", "backend": backend,
                "entries": entries, "shared": shared, "ts": 1.0, "capacity_bytes": 10,
                "capacity_revision": 0}
        return w.record("events.batch", args, float(seq), 1.8e9 + seq)

    bodies = [
        w.record("events.lifecycle", {"phase": "start", "instance_id": "srv-a", "incarnation": 1,
                                      "ip": "127.0.0.1", "http_port": 1, "mq_port": 2}, 0.0, 1.8e9),
        batch(1, "store", 1, 4, tokens=True),
        batch(2, "store", 1, 2, tokens=False, shared=True, backend="fs"),
        batch(3, "access", 1, 3, tokens=False),
        batch(4, "delete", 2, 1, tokens=False),
        w.record("events.lifecycle", {"phase": "stop", "instance_id": "srv-a"}, 5.0, 1.8e9 + 5),
    ]
    s = summarize_trace(_write(tmp_path, w.trace(*bodies, head=head)))
    assert s.header.variant == "schema1+level_meta"
    assert s.header.level_meta == meta
    assert s.header.lmcache_version == "0.5.6"
    e = s.events
    assert e is not None
    assert [(i.instance_id, i.incarnations, i.restarts) for i in e.instances] == [
        ("srv-a", [1, 2], 1)]
    assert [(b.event_type, b.tier, b.backend, b.scope, b.count) for b in e.batches] == [
        ("access", "l1", "", "local", 1), ("delete", "l1", "", "local", 1),
        ("store", "l1", "", "local", 1), ("store", "l2", "fs", "shared", 1)]
    assert e.entries == {"access": 3, "delete": 1, "store": 6}
    assert e.store_bytes == 6000
    assert e.entries_with_tokens == 4
    assert e.lifecycle == {"start": 1, "stop": 1}


def test_header_only_and_placeholder(tmp_path: Path, backend: str) -> None:
    s = summarize_trace(_write(tmp_path, w.trace()))
    assert s.total_records == 0 and s.ops == [] and s.duration_s == 0.0
    assert s.header.sm_config_digest == "" and s.header.sm_config_digest_ok is None
    assert s.integrity.ok


@pytest.mark.parametrize("kind,head", [
    ("bad_magic", w.header(magic=b"WRNG")),
    ("unknown_schema_version", w.header("schema7")),
    ("unknown_level", w.header(level="gpu")),
])
def test_header_problems_are_findings(tmp_path: Path, backend: str, kind: str,
                                      head: bytes) -> None:
    s = summarize_trace(_write(tmp_path, w.trace(*_storage_bodies(6), head=head)))
    assert [f.kind for f in s.integrity.findings] == [kind]
    assert s.total_records == 6 and not s.integrity.ok


def test_unknown_format_version(tmp_path: Path, backend: str) -> None:
    head = w.header().replace(b"\xaeformat_version\x01", b"\xaeformat_version\x02")
    s = summarize_trace(_write(tmp_path, w.trace(*_storage_bodies(3), head=head)))
    assert [f.kind for f in s.integrity.findings] == ["unknown_format_version"]
    assert s.header.format_version == 2 and s.total_records == 3


def test_config_digest_mismatch(tmp_path: Path, backend: str) -> None:
    head = w.header(config={"a": 1}).replace(b'{"a": 1}', b'{"a": 2}')
    s = summarize_trace(_write(tmp_path, w.trace(*_storage_bodies(2), head=head)))
    assert s.header.sm_config_digest_ok is False
    assert [f.kind for f in s.integrity.findings] == ["config_digest_mismatch"]


def test_truncated_last_frame(tmp_path: Path, backend: str) -> None:
    data = w.trace(*_storage_bodies(10))
    s = summarize_trace(_write(tmp_path, data[:-3]))
    assert s.total_records == 9
    (f,) = s.integrity.findings
    assert f.kind == "truncated_frame"
    assert f.offset == len(data) - 4 - len(_storage_bodies(10)[-1])
    assert f.skipped_bytes == len(data) - 3 - f.offset


def test_partial_length_prefix(tmp_path: Path, backend: str) -> None:
    data = w.trace(*_storage_bodies(4)) + b"\x00\x00"
    s = summarize_trace(_write(tmp_path, data))
    assert s.total_records == 4
    assert [(f.kind, f.offset, f.skipped_bytes) for f in s.integrity.findings] == [
        ("truncated_length_prefix", len(data) - 2, 2)]


def test_undecodable_frame_keeps_reading(tmp_path: Path, backend: str) -> None:
    bodies = _storage_bodies(6)
    bad = b"\xc1" + bodies[2][1:]  # same length, invalid first opcode
    data = w.trace(*bodies[:2], bad, *bodies[3:])
    s = summarize_trace(_write(tmp_path, data))
    assert s.total_records == 5
    (f,) = s.integrity.findings
    assert f.kind == "malformed_record"
    assert "expected a msgpack map, found opcode 0xc1" in f.detail
    assert s.integrity.malformed_frames == 1 and s.integrity.frames == 6


def test_corrupt_length_prefix_resynchronises(tmp_path: Path, backend: str) -> None:
    bodies = _storage_bodies(8)
    data = bytearray(w.trace(*bodies))
    third = len(w.frame(w.header())) + sum(len(w.frame(b)) for b in bodies[:2])
    data[third:third + 4] = struct.pack(">I", 0xFFFFFFF0)  # absurd: 4 GiB
    s = summarize_trace(_write(tmp_path, bytes(data)))
    assert s.total_records == 7  # only the frame behind the bad prefix is lost
    (f,) = s.integrity.findings
    assert f.kind == "bad_length_prefix" and f.offset == third
    assert f.skipped_bytes == len(w.frame(bodies[2]))


def test_short_length_prefix_resynchronises(tmp_path: Path, backend: str) -> None:
    bodies = _storage_bodies(8)
    data = bytearray(w.trace(*bodies))
    third = len(w.frame(w.header())) + sum(len(w.frame(b)) for b in bodies[:2])
    data[third:third + 4] = struct.pack(">I", 40)  # too short: body is cut mid-record
    s = summarize_trace(_write(tmp_path, bytes(data)))
    assert s.total_records == 7
    kinds = [f.kind for f in s.integrity.findings]
    assert kinds == ["malformed_record", "resynchronised"]
    assert s.integrity.findings[1].offset == third + 4


def test_not_a_trace(tmp_path: Path) -> None:
    p = _write(tmp_path, b"# HELP x\n# TYPE x counter\nx 1\n", "metrics.txt")
    with pytest.raises(TraceFormatError) as exc:
        TraceFile(p)
    msg = str(exc.value)
    assert str(p) in msg and "offset 0" in msg and "23 20 48 45" in msg


def test_empty_file(tmp_path: Path) -> None:
    p = _write(tmp_path, b"", "empty.lct")
    with pytest.raises(TraceFormatError, match="empty file"):
        TraceFile(p)


def test_damaged_header_records_still_read(tmp_path: Path, backend: str) -> None:
    data = bytearray(w.trace(*_storage_bodies(5)))
    data[4] = 0xC1  # header body no longer decodes
    s = summarize_trace(_write(tmp_path, bytes(data)))
    assert s.header.variant == "missing"
    assert s.total_records == 5
    assert [f.kind for f in s.integrity.findings] == ["unreadable_header"]


def test_missing_header(tmp_path: Path, backend: str) -> None:
    data = b"".join(w.frame(b) for b in _storage_bodies(3))
    s = summarize_trace(_write(tmp_path, data))
    assert s.header.variant == "missing" and s.total_records == 3
    assert [f.kind for f in s.integrity.findings] == ["missing_header"]


def test_timestamp_anomalies(tmp_path: Path, backend: str) -> None:
    bodies = [w.storage_record("finish_write", 1, t) for t in (1.0, 3.0, 2.0, -1.0)]
    bodies.append(w.record(w.STORAGE_PREFIX + "finish_write", {"keys": []}, float("nan"), 5.0))
    s = summarize_trace(_write(tmp_path, w.trace(*bodies)))
    i = s.integrity
    assert (i.nan_timestamps, i.negative_t_mono, i.t_mono_decreases) == (1, 1, 2)
    assert s.duration_s == 3.0 and not i.ok


def test_frames_crossing_small_windows(tmp_path: Path, backend: str) -> None:
    bodies = _storage_bodies(400, keys=7)
    p = _write(tmp_path, w.trace(*bodies))
    with TraceFile(p) as big, TraceFile(p, window_size=4096) as small:
        a, b = big.scan(), small.scan()
    assert a.offset.tolist() == b.offset.tolist()
    assert a.nkeys.tolist() == b.nkeys.tolist() == [7] * 400
    assert len(b.findings) == 0


def test_frame_larger_than_window(tmp_path: Path, backend: str) -> None:
    bodies = [w.storage_record("finish_write", 2000, 1.0), *_storage_bodies(3)]
    p = _write(tmp_path, w.trace(*bodies))
    with TraceFile(p, window_size=4096) as t:
        cols = t.scan()
    assert cols.nkeys.tolist() == [2000, 3, 3, 3]


@pytest.mark.parametrize("data", [b"", b"{}", "é".encode(), bytes(range(256)) * 40])
def test_the_header_digest_is_sha256(data: bytes) -> None:
    """The config digest is computed without hashlib's OpenSSL load: same bytes out."""
    import hashlib

    from inferguard.lct._file import _sha256_hex

    assert _sha256_hex(data) == hashlib.sha256(data).hexdigest()
