"""Log reading and redacted log copies: the block reader beside the per-line algorithms it
replaced (the oracles of tests/test_log_scan_identity.py), in the same run, same files.

Two shapes of generated log, ~50 MB each (`INFERGUARD_BENCH_SCALE=smoke`: 1 MB, no claims;
or a number of bytes):
- noise: what a busy engine log mostly is — uvicorn access lines, vLLM `Avg prompt
  throughput` stats lines and request logs (`prompt_token_ids: [...]`, whose key is redacted),
  1/3 each, with 3% of lines drawn from the LMCache-dense fixture below;
- dense: tests/fixtures/lmcache_live/vllm_live_embedded/packet/inputs/log/vllm.log and
  tests/fixtures/lmcache-0.5.7rc2/mp-lmcache-driven/server.log repeated (every line an
  LMCache line: ANSI colours, hints, long config lines).

Rows: `read_log` (InferGuard) vs the per-line reader; the redacted copy (`redacted_lines`)
vs per-line `redact_bytes`; each pair asserts identical results. Whole commands, as fresh
processes, paired A B A B (benchmarks/bench_commands.py `paired`): `lmcache-compat
--lmcache-log-file` and `collect-lmcache --lmcache-log-file` (the log read and its redacted
copy written), against the same commands run with the oracles (benchmarks/log_oracle.py).
MB/s and ratios are printed at the end; figures go to docs/performance-logs.md.
"""

from __future__ import annotations

import compileall
import hashlib
import os
import random
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from inferguard.evidence._copies import redacted_lines
from inferguard.evidence._logs import read_log
from inferguard.evidence._redact import Tally
from tests.test_log_scan_identity import old_read_log, old_redacted_lines

from .bench_commands import _inferguard, paired

SCALE = os.environ.get("INFERGUARD_BENCH_SCALE", "full")
SMOKE = SCALE == "smoke"
SIZE = 1_000_000 if SMOKE else 50_000_000 if SCALE == "full" else int(SCALE)
ROUNDS = 1 if SMOKE else 3
REPO = Path(__file__).resolve().parent.parent
DENSE = [REPO / "tests/fixtures/lmcache_live/vllm_live_embedded/packet/inputs/log/vllm.log",
         REPO / "tests/fixtures/lmcache-0.5.7rc2/mp-lmcache-driven/server.log"]
NOISE = [
    b'INFO:     127.0.0.1:%d - "POST /v1/completions HTTP/1.1" 200 OK\n',
    b"(APIServer pid=25057) INFO 11-28 04:31:%02d [loggers.py:236] Engine 000: Avg prompt "
    b"throughput: 12.3 tokens/s, Avg generation throughput: 45.6 tokens/s, Running: 3 reqs, "
    b"Waiting: 0 reqs, GPU KV cache usage: 1.2%%, Prefix cache hit rate: 45.1%%\n",
    b"(APIServer pid=25057) INFO 11-28 04:31:%02d [logger.py:43] Received request "
    b"cmpl-abc123-0: prompt: 'Hello, my name is John and I like to', params: "
    b"SamplingParams(n=1, temperature=0.0, max_tokens=16), prompt_token_ids: [1, 15043, "
    b"29892, 590, 1024, 338], lora_request: None.\n",
]
RESULTS: dict[str, tuple[float, float, float]] = {}   # name: (median, min, max) seconds
ORACLE: dict[str, bytes] = {}


def _dense(size: int) -> bytes:
    unit = b"".join(p.read_bytes() for p in DENSE)
    data = unit * (size // len(unit) + 1)
    return data[:data.rfind(b"\n", 0, size) + 1]


def _noise(size: int) -> bytes:
    rng = random.Random(1)
    dense = b"".join(p.read_bytes() for p in DENSE).splitlines(keepends=True)
    out: list[bytes] = []
    n = 0
    while n < size:
        if rng.random() < 0.97:
            i = rng.randrange(3)
            line = NOISE[i] % (rng.randrange(60) if i else rng.randrange(1024, 65535))
        else:
            line = rng.choice(dense)
        out.append(line)
        n += len(line)
    return b"".join(out)


@pytest.fixture(scope="module", autouse=True)
def _compiled() -> None:
    compileall.compile_dir(str(REPO / "inferguard"), quiet=1)
    compileall.compile_dir(str(REPO / "benchmarks"), quiet=1)
    compileall.compile_dir(str(REPO / "tests"), quiet=1, maxlevels=0)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("logs")
    out = {}
    for shape, make in (("noise", _noise), ("dense", _dense)):
        out[shape] = d / f"{shape}.log"
        out[shape].write_bytes(make(SIZE))
    return out


def _timed(benchmark: Any, name: str, fn: Callable[[], bytes]) -> bytes:
    got: bytes = benchmark.pedantic(fn, rounds=ROUNDS, iterations=1)
    if benchmark.enabled and benchmark.stats is not None:
        s = benchmark.stats.stats
        RESULTS[name] = (s.median, s.min, s.max)
    return got


def _read(reader: Callable[[Path], Any], path: Path) -> bytes:
    return msgspec.json.encode(reader(path))


def _copy(lines: Callable[..., Any], path: Path) -> bytes:
    """The redacted copy's digest and tally (what `_copy_redacted` keeps of it)."""
    tally = Tally()
    h = hashlib.sha256()
    for _, clean in lines(path, 1 << 62, tally):
        h.update(clean)
    return h.digest() + msgspec.json.encode(tally.as_dict())


@pytest.mark.parametrize("shape", ["noise", "dense"])
@pytest.mark.parametrize("what", ["read", "copy"])
def test_oracle(benchmark: Any, logs: dict[str, Path], shape: str, what: str) -> None:
    fn = old_read_log if what == "read" else old_redacted_lines
    run = _read if what == "read" else _copy
    ORACLE[f"{what}_{shape}"] = _timed(benchmark, f"{what}_{shape}_oracle",
                                       lambda: run(fn, logs[shape]))


@pytest.mark.parametrize("shape", ["noise", "dense"])
@pytest.mark.parametrize("what", ["read", "copy"])
def test_inferguard(benchmark: Any, logs: dict[str, Path], shape: str, what: str) -> None:
    fn = read_log if what == "read" else redacted_lines
    run = _read if what == "read" else _copy
    got = _timed(benchmark, f"{what}_{shape}_inferguard", lambda: run(fn, logs[shape]))
    want = ORACLE.get(f"{what}_{shape}")
    if want is None:   # run alone (-k): the oracle once, untimed
        want = (_read if what == "read" else _copy)(
            old_read_log if what == "read" else old_redacted_lines, logs[shape])
    assert got == want


ORACLE_CMD = [sys.executable, "-m", "benchmarks.log_oracle"]


@pytest.mark.parametrize("shape", ["noise", "dense"])
def test_command_compat(logs: dict[str, Path], shape: str) -> None:
    args = ["lmcache-compat", "--lmcache-log-file", str(logs[shape]), "--json"]
    paired(f"compat_log_{shape}", [*_inferguard(), *args], [*ORACLE_CMD, *args],
           1 if SMOKE else 3, slower_is_a=False)


@pytest.mark.parametrize("shape", ["noise", "dense"])
def test_command_collect(tmp_path: Path, logs: dict[str, Path], shape: str) -> None:
    a, b = tmp_path / "a", tmp_path / "b"

    def args(out: Path) -> list[str]:
        return ["collect-lmcache", "--output-dir", str(out), "--lmcache-log-file",
                str(logs[shape])]

    # each run writes a fresh packet (the previous one removed first, inside the timing)
    paired(f"collect_log_{shape}", ["sh", "-c", f'rm -rf "{a}" && exec "$@"', "sh",
                                    *_inferguard(), *args(a)],
           ["sh", "-c", f'rm -rf "{b}" && exec "$@"', "sh", *ORACLE_CMD, *args(b)],
           1 if SMOKE else 3, slower_is_a=False)
    name = f"inputs/log/{shape}.log"
    assert (a / name).read_bytes() == (b / name).read_bytes()
    shutil.rmtree(a), shutil.rmtree(b)


def teardown_module() -> None:
    for what in ("read", "copy"):
        for shape in ("noise", "dense"):
            o = RESULTS.get(f"{what}_{shape}_oracle")
            n = RESULTS.get(f"{what}_{shape}_inferguard")
            if o and n:
                mb = SIZE / 1e6
                print(f"\n{what} {shape} ({mb:.0f} MB, {ROUNDS} rounds): InferGuard median "
                      f"{n[0]:.2f}s [{n[1]:.2f}-{n[2]:.2f}] = {mb / n[0]:.1f} MB/s; per-line "
                      f"median {o[0]:.2f}s [{o[1]:.2f}-{o[2]:.2f}] = {mb / o[0]:.1f} MB/s; "
                      f"ratio {o[0] / n[0]:.1f}x; load {os.getloadavg()[0]:.1f}")
