"""The block log reader and block redaction give exactly what the line-by-line algorithms
gave: every LogFacts field, hint match, example, count, first/last line and start-failure
result; every redacted byte and tally count. The oracles below are plain copies of the
per-line loops the package used before (`stream_lines` + `read_log_bytes`, and
`redacted_lines` calling `redact_bytes` on each line)."""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import msgspec
import pytest

from inferguard._files import open_regular_fd
from inferguard.evidence import _copies, _logs, _redact, _scan
from inferguard.evidence._logs import (
    ANSI,
    EXAMPLES_PER_HINT,
    LOG_HINTS,
    HintMatch,
    HintSummary,
    LogFacts,
    _patterns,
    _positive,
    _StartScan,
    read_log,
    read_log_bytes,
    safe_text,
)
from inferguard.evidence._model import Evidence, EvidenceKind, EvidenceSource, Problem
from inferguard.evidence._redact import Tally, redact_bytes, redact_lines, redact_text

FIXTURES = Path(__file__).parent / "fixtures"
LOGS = sorted(FIXTURES.rglob("*.log"))


# --- the oracles: the per-line reader as it was --------------------------------------------

def old_stream_lines(f: IO[bytes], sha: Any) -> Iterator[bytes]:
    part = bytearray()
    over = False
    while True:
        block = f.read(_logs.BLOCK)
        if not block:
            break
        sha.update(block)
        start = 0
        while True:
            nl = block.find(b"\n", start)
            if nl < 0:
                if not over:
                    part += block[start:start + _logs.MAX_RAW_LINE - len(part)]
                    over = len(part) >= _logs.MAX_RAW_LINE
                break
            if not over:
                part += block[start:nl][:_logs.MAX_RAW_LINE - len(part)]
            yield from (bytes(part).splitlines() or [b""])
            part.clear()
            over = False
            start = nl + 1
    if part:
        yield from bytes(part).splitlines()


def old_lines(data: bytes | Iterable[bytes]) -> Iterator[tuple[int, str, bool]]:
    raws = data.splitlines() if isinstance(data, bytes) else data
    for n, raw in enumerate(raws, 1):
        try:
            text = raw.decode("utf-8")
            bad = False
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "replace")
            bad = True
        yield n, text, bad


def old_read_log_bytes(data: bytes | Iterable[bytes], source: EvidenceSource, *,
                       role: str = "lmcache", kind: EvidenceKind = "log") -> Evidence:
    max_line = _logs.MAX_LINE
    found: dict[str, list[HintMatch]] = {}
    counts: dict[str, int] = {}
    positive: dict[str, int] = {}
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    lines = long_lines = bad_lines = 0
    start = _StartScan()
    prefilter, compiled = _patterns()
    for n, text, bad in old_lines(data):
        lines = n
        bad_lines += bad
        if len(text) > max_line:
            long_lines += 1
            text = text[:max_line]
        if "\x1b" in text:
            text = ANSI.sub("", text)
        start.feed(n, text)
        if not prefilter.search(text):
            continue
        for hint, rx in compiled:
            m = rx.search(text)
            if m is None:
                continue
            counts[hint.id] = counts.get(hint.id, 0) + 1
            if hint.amount and _positive(m.group(hint.amount)):
                positive[hint.id] = positive.get(hint.id, 0) + 1
            first.setdefault(hint.id, n)
            last[hint.id] = n
            ex = found.setdefault(hint.id, [])
            if len(ex) < EXAMPLES_PER_HINT:
                values = {k: safe_text(v) for k, v in m.groupdict().items() if v is not None}
                ex.append(HintMatch(n, safe_text(redact_text(text.strip())), values))
    hints = [HintSummary(h.id, h.category, h.meaning, counts[h.id], first[h.id], last[h.id],
                         found[h.id], positive.get(h.id, 0) if h.amount else None)
             for h in LOG_HINTS if h.id in counts]
    problems = []
    if long_lines:
        problems.append(Problem(f"{long_lines} lines longer than {max_line} characters were cut"))
    if bad_lines:
        problems.append(Problem(f"{bad_lines} lines are not valid UTF-8 (read with replacement)"))
    facts = LogFacts(role=role, lines=lines, long_lines=long_lines,
                     undecodable_lines=bad_lines, hints=hints, start_failure=start.result())
    return Evidence(kind=kind, source=source, status="partial" if problems else "ok",
                    facts=facts, problems=problems)


def old_read_log(path: Path) -> Evidence:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        ev = old_read_log_bytes(old_stream_lines(f, sha), EvidenceSource(path=str(path)))
        size = f.tell()
    return msgspec.structs.replace(ev, source=EvidenceSource(path=str(path),
                                                             sha256=sha.hexdigest(), size=size))


def old_redacted_lines(path: str | os.PathLike[str], cap: int, tally: Tally
                       ) -> Iterator[tuple[bytes, bytes]]:
    with os.fdopen(open_regular_fd(path), "rb") as f:
        left = cap
        for line in f:
            if left <= 0:
                break
            line = line[:left]
            left -= len(line)
            yield line, redact_bytes(line, tally)


def old_redacted(data: bytes, cap: int | None = None) -> tuple[bytes, dict[str, int]]:
    tally = Tally()
    out = []
    left = len(data) if cap is None else cap
    for line in io.BytesIO(data):   # `for line in f`: lines end after b"\n"
        if left <= 0:
            break
        line = line[:left]
        left -= len(line)
        out.append(redact_bytes(line, tally))
    return b"".join(out), tally.as_dict()


# --- comparison helpers ---------------------------------------------------------------------

def same_log(path: Path) -> None:
    new, old = read_log(path), old_read_log(path)
    assert msgspec.json.encode(new) == msgspec.json.encode(old), path


def same_bytes(data: bytes) -> None:
    src = EvidenceSource(path="<t>")
    old = msgspec.json.encode(old_read_log_bytes(data, src))
    assert msgspec.json.encode(read_log_bytes(data, src)) == old
    lines = data.splitlines()
    assert msgspec.json.encode(read_log_bytes(iter(lines), src)) == \
        msgspec.json.encode(old_read_log_bytes(lines, src))


def same_redaction(data: bytes) -> None:
    want, tally = old_redacted(data)
    t = Tally()
    assert redact_lines(data, t) == want
    assert t.as_dict() == tally


def both(tmp_path: Path, data: bytes, name: str = "x.log") -> None:
    p = tmp_path / name
    p.write_bytes(data)
    same_log(p)
    same_bytes(data)
    same_redaction(data)


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks and the raw line cap small, so block edges fall everywhere."""
    monkeypatch.setattr(_logs, "BLOCK", 97)
    monkeypatch.setattr(_logs, "MAX_RAW_LINE", 300)
    monkeypatch.setattr(_logs, "MAX_LINE", 120)
    monkeypatch.setattr(_copies, "BLOCK", 53)
    monkeypatch.setattr(_logs, "SCAN_BLOCK", 61)
    monkeypatch.setattr(_redact, "PIECE", 71)


# --- inputs ---------------------------------------------------------------------------------

NOISE = [
    'INFO:     127.0.0.1:{n} - "POST /v1/completions HTTP/1.1" 200 OK',
    "(APIServer pid=25057) INFO 11-28 04:31:{s:02d} [loggers.py:236] Engine 000: Avg prompt "
    "throughput: {n}.3 tokens/s, Avg generation throughput: 45.6 tokens/s, Running: 3 reqs, "
    "Waiting: 0 reqs, GPU KV cache usage: 1.2%, Prefix cache hit rate: 45.1%",
    "(APIServer pid=25057) INFO 11-28 04:31:{s:02d} [logger.py:43] Received request "
    "cmpl-{n}-0: prompt: 'Hello, my name is', params: SamplingParams(n=1, temperature=0.0, "
    "max_tokens=16), prompt_token_ids: [1, {n}, 590], lora_request: None.",
]
SPECIAL = [
    "Traceback (most recent call last):", '  File "x.py", line 1, in <module>',
    "    raise ValueError('boom')", "ValueError: boom",
    "During handling of the above exception, another exception occurred:",
    "(EngineCore_DP0 pid=7) ERROR 11-28 04:31:19 [core.py:1] Traceback (most recent call "
    "last):", "(EngineCore_DP0 pid=7) ERROR 11-28 04:31:19 [core.py:1]   File \"a.py\"",
    "(EngineCore_DP0 pid=7) ERROR 11-28 04:31:19 [core.py:1] RuntimeError: no GPU",
    "(EngineCore_DP0 pid=7) INFO 11-28 04:31:19 [core.py:1] Traceback (most recent call last):",
    "(EngineCore_DP0 pid=7) ERROR 11-28 04:31:19 [core.py:1] EngineCore failed to start.",
    "RuntimeError: Engine core initialization failed. See root cause above.",
    "INFO:     Application startup complete.", "INFO:     Uvicorn running on http://0:8000",
    "(APIServer pid=1) INFO 01-01 00:00:00 [Application startup complete] header only",
    "(bad pid=x) not a prefix", "(x\u00e9 pid=\u0661) unicode prefix", "",
    "\x1b[32mLMCache INFO:\x1b[0m Stored 256 tokens in 0.01 seconds",
    "LMC\x1b[0mache hit tokens: 5, need to load: 0", "\x1b[\x1b[0mm nested escape",
    "caf\u00e9 \u2588 version 0.9.1 \u2588  version 0.10.0", "HiCache enabled; HİCACHE; hıcache",
    "Retrieved 0 tokens in 0.5 seconds", "External prefix cache hit rate: 12.5%",
    "Peer connection not initialized", "failing the retrieve", "'enable_pd': True",
    "[ADMIT] req=1 xtimed out", "Authorization: Bearer abcdefghijklmnop",
    "url https://user:pw@host/x and hf_abcdefghijklmnopqrstuvwx sk-abcdefghijklmnopqrstuv",
    "api_key=xyz password: hunter2 --hf-token tok secret=1;token=2&key=3,x_key: 4",
    "tokens=5 max_tokens: 7 api_keys=9 KEY=1 toKen=2 \u017fecret=3 sessionid=4",
    "-----BEGIN RSA PRIVATE KEY----- abc", "eyJabcdefghij.eyJabcdefghij.abcdefghijkl",
    "AKIAABCDEFGHIJKLMNOP ghp_abcdefghijklmnopqrstuv xoxb-1234567890",
    "basic dXNlcjpwYXNz auth=<redacted> a" + "b" * 90 + "token=1",
    "name = value --password  x", "\u00e9token=\u00e9 caf\u00e9 password=\u00e9\u00e9",
]


def fixture_lines() -> list[bytes]:
    return [line for p in LOGS for line in p.read_bytes().splitlines()]


def noise_log(rng: random.Random, lines: int) -> bytes:
    pool = fixture_lines()
    out = []
    for _ in range(lines):
        if rng.random() < 0.95:
            out.append(rng.choice(NOISE).format(n=rng.randrange(1, 65535), s=rng.randrange(60))
                       .encode())
        else:
            out.append(rng.choice(pool))
    return b"\n".join(out) + b"\n"


def mixed_log(rng: random.Random, lines: int) -> bytes:
    pool = fixture_lines() + [s.encode() for s in SPECIAL + NOISE]
    extras = [b"\xff\xfe bad", b"LMCache \xe2\x82 cut", "é".encode() * 1500,
              b"x" * 2500 + b"\x1b[0m tail", b"\x1b[3" + b"y" * 130, b"z" * 400,
              b"LMCache " + "é".encode() * 70 + b"\x1b[1m Stored 5 tokens in 1 seconds"]
    out = []
    for _ in range(lines):
        line = rng.choice(pool if rng.random() < 0.9 else extras)
        if rng.random() < 0.05:
            cut = rng.randrange(len(line) + 1)
            line = line[:cut] + b"\x1b[0m" + line[cut:]
        out.append(line)
        out.append(rng.choice([b"\n"] * 12 + [b"\r\n", b"\r", b"\n\n", b"\r\r\n"]))
    data = b"".join(out)
    return data if rng.random() < 0.5 else data.rstrip(b"\n\r")


# --- the tests ------------------------------------------------------------------------------

@pytest.mark.parametrize("path", LOGS, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_every_fixture_log(path: Path) -> None:
    same_log(path)
    data = path.read_bytes()
    same_bytes(data)
    same_redaction(data)


def test_fixture_logs_small_blocks(small_blocks: None) -> None:
    for path in LOGS:
        same_log(path)
        same_redaction(path.read_bytes())


def test_noise_heavy(tmp_path: Path) -> None:
    both(tmp_path, noise_log(random.Random(1), 20000))


def test_noise_heavy_small_blocks(tmp_path: Path, small_blocks: None) -> None:
    both(tmp_path, noise_log(random.Random(2), 3000))


@pytest.mark.parametrize("seed", range(8))
def test_random_mixes(tmp_path: Path, seed: int) -> None:
    both(tmp_path, mixed_log(random.Random(seed), 3000))


@pytest.mark.parametrize("seed", range(4))
def test_random_mixes_small_blocks(tmp_path: Path, small_blocks: None, seed: int) -> None:
    both(tmp_path, mixed_log(random.Random(100 + seed), 800))


@pytest.mark.parametrize("data", [
    b"", b"\n", b"\r", b"\r\n", b"\n\n\r\r\n", b"no newline", b"LMCache hit tokens: 1, need",
    b"Traceback (most recent call last):\n  File x\n", b"Traceback (most recent call last):",
    b"\xff", b"a\rb\nc\r\nd", "\u2588 version 1.0".encode(), b"\x1b[0m" * 700,
    b"Stored 256 tokens in 0.1 seconds\r\nRetrieved 12 tokens in 0.2 seconds",
])
def test_edges(tmp_path: Path, data: bytes) -> None:
    both(tmp_path, data)


def test_over_long_lines(tmp_path: Path) -> None:
    lines = [b"LMCache " + b"x" * 1995 + b" Stored 5 tokens in 1 seconds",
             "LMCache é".encode() * 300, b"\x1b[1m" * 600 + b"LMCache hit tokens: 3",
             b"y" * (_logs.MAX_RAW_LINE + 10) + b" LMCache Stored 1 tokens in 1 seconds",
             b"Stored 9 tokens in 1 seconds " + "é".encode() * 40000,
             b"z" * (3 * _logs.BLOCK) + b"\x1b[0m", "é".encode() * 1000 + b"\x1b[1mz"]
    both(tmp_path, b"\n".join(lines) + b"\n")
    both(tmp_path, b"\n".join(lines))


def test_start_failure_across_blocks(tmp_path: Path, small_blocks: None) -> None:
    tb = ["Traceback (most recent call last):"] + ['  File "a.py", line 1'] * 30 + \
        ["", "KeyError: 'x'"]
    for head in ([], ["INFO:     Application startup complete."], ["(A pid=1) INFO hi"]):
        both(tmp_path, "\n".join(["noise"] * 7 + head + tb + ["noise"] * 5).encode())


def test_iterable_lines_with_breaks() -> None:
    src = EvidenceSource(path="<t>")
    lines = [b"LMCache hit tokens: 3, need to load: 0", b"a\nb Stored 1 tokens in 1 seconds",
             b"Traceback (most recent call last):", b"x\r", b"ValueError: v", b"\xff"]
    assert msgspec.json.encode(read_log_bytes(lines, src)) == \
        msgspec.json.encode(old_read_log_bytes(lines, src))


def test_redacted_copy_blocks_and_caps(tmp_path: Path, small_blocks: None) -> None:
    data = mixed_log(random.Random(7), 400)
    p = tmp_path / "c.log"
    p.write_bytes(data)
    for cap in (0, 1, 50, 997, len(data) // 2, len(data), len(data) + 10):
        t = Tally()
        got = list(_copies.redacted_lines(p, cap, t))
        want, tally = old_redacted(data, cap)
        t_old = Tally()
        old = list(old_redacted_lines(p, cap, t_old))
        assert b"".join(o for o, _ in got) == data[:cap] == b"".join(o for o, _ in old)
        assert b"".join(r for _, r in got) == want == b"".join(r for _, r in old)
        assert t.as_dict() == tally == t_old.as_dict()


def test_secret_lines() -> None:
    rng = random.Random(3)
    words = ["token", "tokens", "Token_ids", "api_key", "apikeys", "key", "KEY", "x.key",
             "secret", "passwd", "auth", "cookie", "private", "signature", "session_id",
             "sessionid", "tok\u212aen", "\u017fecret", "name"]
    seps = ["=", ": ", ":", " = ", "  ", "=\"", "='", " "]
    glue = [", ", ";", "&", " ", "\t", " ,", "", "\u00e9 "]
    for _ in range(3000):
        line = "".join(rng.choice(["--", "", "", "x_"]) + rng.choice(words) + rng.choice(seps)
                       + rng.choice(["v", "<redacted>", "hf_" + "a" * 22, "1,2", "\u00e9"])
                       + rng.choice(glue) for _ in range(rng.randrange(1, 5)))
        same_redaction(line.encode("utf-8", "surrogatepass") + b"\n")


def test_every_hint_has_anchors() -> None:
    plan = _logs._plan()
    assert plan.every == 0, [h.id for i, (h, _, _) in enumerate(plan.hints)
                             if plan.every >> i & 1]


def test_fold_classes_are_complete() -> None:
    """Every code point an ASCII letter matches under IGNORECASE is in `_fold_class`."""
    everything = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ":
        matched = set(re.findall("(?i)" + c, everything))
        assert matched == set(_scan._fold_class(c) or ""), c


def test_redaction_anchors_cover_needs() -> None:
    """Each rule's anchors hold for the strings its `_NEEDS` test (and regex) start from."""
    idx = _redact._index()
    for rule, probe in enumerate([b"PRIVATE KEY", b"a://b@", b"AuthoriZation", b"BEARER ",
                                  b"xoxb-1", b"TOKEN="]):
        _, hits = idx.line_hits(probe + b"\n")
        assert hits and hits[0][1] >> rule & 1, probe
