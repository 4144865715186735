"""`--enable-token-trace` spans: prompt token ids never reach a file InferGuard writes.

LMCache 0.5.7 (`mp_observability/subscribers/tracing/mp_server.py`) emits one zero-length
`mp.request.trace` span per lookup, a child of the `request` root, whose `lmcache.input_ids` is
an OTLP `arrayValue` of `intValue` (JSON strings, as OTLP/JSON writes int64): the prompt's
token ids. The 0.5.7 `request` span also gains int/double attributes and `mp.lookup_prefetch`
string ones (the shapes of `../shared/reference/lmcache-0.5.7-findings.md` §2). Token ids are
user content: count and length only, in the evidence, the packet's copies, reports, exports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inferguard import Packet, read_evidence
from inferguard.cli._main import main
from inferguard.evidence._otel import OtelFacts, strip_token_ids

# Distinctive ids (no timestamp, size or hash of this test can contain them by chance).
PROMPTS = [[918273645, 827364519, 736451928, 645192837],
           [918273645, 827364519, 564738291, 473829165, 382916574]]


def _attr(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "value": value}


def _spans(trace: int, ids: list[int]) -> list[dict[str, Any]]:
    tid = f"{trace:032x}"
    root, lookup, tok = f"{trace:08x}00000001", f"{trace:08x}00000002", f"{trace:08x}00000003"
    t0 = 1_796_163_373_000_000_000 + trace * 1_000_000
    n = str(len(ids))
    return [
        {"traceId": tid, "spanId": root, "name": "request", "kind": 1,
         "startTimeUnixNano": str(t0), "endTimeUnixNano": str(t0 + 5_000_000),
         "attributes": [_attr("session_id", {"stringValue": f"req-{trace}"}),
                        _attr("prompt_tokens", {"intValue": n}),
                        _attr("apc_covered_tokens", {"intValue": "0"}),
                        _attr("engine_hit_tokens", {"intValue": "0"}),
                        _attr("request_hit_tokens", {"intValue": "2"}),
                        _attr("engine_hit_rate", {"doubleValue": 0.0}),
                        _attr("request_hit_rate", {"doubleValue": 2 / len(ids)})]},
        {"traceId": tid, "spanId": lookup, "parentSpanId": root, "name": "mp.lookup_prefetch",
         "kind": 1, "startTimeUnixNano": str(t0), "endTimeUnixNano": str(t0 + 3_000_000),
         "attributes": [_attr("prompt_tokens", {"stringValue": n}),
                        _attr("apc_covered_tokens", {"stringValue": "0"}),
                        _attr("engine_hit_tokens", {"stringValue": "0"}),
                        _attr("request_hit_tokens", {"stringValue": "2"})]},
        {"traceId": tid, "spanId": tok, "parentSpanId": root, "name": "mp.request.trace",
         "kind": 1, "startTimeUnixNano": str(t0), "endTimeUnixNano": str(t0),
         "attributes": [_attr("session_id", {"stringValue": f"req-{trace}"}),
                        _attr("lmcache.model", {"stringValue": "test-model"}),
                        _attr("lmcache.input_ids", {"arrayValue": {
                            "values": [{"intValue": str(i)} for i in ids]}})]},
    ]


def _export(path: Path) -> Path:
    lines = []
    for n, ids in enumerate(PROMPTS, 1):
        lines.append(json.dumps({"resourceSpans": [{
            "resource": {"attributes": [_attr("service.instance.id",
                                              {"stringValue": "live-057-B"})]},
            "scopeSpans": [{"scope": {"name": "lmcache_mp.server"},
                            "spans": _spans(n, ids)}]}]}))
    path.write_text("\n".join(lines) + "\n")
    return path


def _ids() -> set[str]:
    return {str(i) for p in PROMPTS for i in p}


def test_reader_keeps_count_and_length_only(tmp_path: Path) -> None:
    ev = read_evidence("otel", _export(tmp_path / "spans.jsonl"))
    f = ev.facts
    assert isinstance(f, OtelFacts)
    assert (f.token_id_spans, f.token_ids_total, f.token_ids_max) == (2, 9, 5)
    tok = f.span("mp.request.trace")
    assert tok is not None and tok.count == 2 and tok.duration_ms_max == 0.0
    # 0.5.7's new attributes: ints on `request`, strings on `mp.lookup_prefetch`, summed alike
    req, look = f.span("request"), f.span("mp.lookup_prefetch")
    assert req is not None and look is not None
    assert req.numeric_sums["prompt_tokens"] == look.numeric_sums["prompt_tokens"] == 9.0
    assert req.numeric_sums["request_hit_tokens"] == look.numeric_sums["request_hit_tokens"] == 4
    text = json.dumps(json.loads(__import__("msgspec").json.encode(ev)))
    assert not any(i in text for i in _ids())


def test_strip_keeps_every_other_byte(tmp_path: Path) -> None:
    data = _export(tmp_path / "spans.jsonl").read_bytes()
    out, n = strip_token_ids(data)
    assert n == 2 and not any(i.encode() in out for i in _ids())
    assert b"<4 token ids removed by inferguard>" in out
    assert strip_token_ids(b'{"resourceSpans": []}\n') == (b'{"resourceSpans": []}\n', 0)
    # a pretty-printed single document, and a damaged line that names the attribute
    pretty = json.dumps(json.loads(data.splitlines()[0]), indent=2).encode()
    out2, n2 = strip_token_ids(pretty)
    assert n2 == 1 and not any(i.encode() in out2 for i in _ids())
    out3, _ = strip_token_ids(b'{"key": "lmcache.input_ids", "value": [918273645\n')
    assert b"918273645" not in out3


@pytest.mark.parametrize("native", [True, False])
def test_no_token_id_reaches_any_file_inferguard_writes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        native: bool) -> None:
    if not native:
        monkeypatch.setenv("INFERGUARD_NO_NATIVE", "1")
    (tmp_path / "in").mkdir()
    src = _export(tmp_path / "in" / "spans.jsonl")
    out = tmp_path / "out"
    pkt = out / "packet"
    assert main(["collect-lmcache", "--output-dir", str(pkt), "--lmcache-otel-file",
                 str(src)]) in (0, 1)
    outputs = [capsys.readouterr().out]
    for argv in (["lmcache-compat", "--packet", str(pkt)],
                 ["lmcache-compat", "--packet", str(pkt), "--json"],
                 ["diagnose-bottleneck", "--packet", str(pkt), "--json"]):
        assert main(argv) in (0, 1)
        outputs.append(capsys.readouterr().out)
    (out / "reports.txt").write_text("\n".join(outputs))
    written = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.parent.name == "otel" for p in written), written  # the copy exists
    for p in written:
        body = p.read_bytes()
        leaked = [i for i in _ids() if i.encode() in body]
        assert not leaked, (p, leaked)
    # the packet judges its copy the same as the original: same counts, same span sums
    again = Packet.read(pkt).of_kind("otel")[0].facts
    first = read_evidence("otel", src).facts
    assert isinstance(again, OtelFacts) and isinstance(first, OtelFacts)
    assert (again.token_id_spans, again.token_ids_total, again.spans) == (
        first.token_id_spans, first.token_ids_total, first.spans)
    manifest = json.loads((pkt / "packet.json").read_text())
    note = next(i["note"] for i in manifest["inputs"] if i["kind"] == "otel")
    assert "token-id" in note
