"""Whole commands, start-up included, each paired with its reference in the same run.

Each row runs command A (InferGuard) and command B (the reference) in turn, A B A B ...,
as fresh processes, and takes the ratio pair by pair, so a machine whose speed drifts
(it is shared) moves both sides of a pair alike. Reported: the median and the spread
(min-max) of A's and B's wall seconds, and the median of the per-pair ratios.

    help        inferguard --help                          vs python -c pass
    info_tiny   inferguard trace info TINY.lct --json      vs python -c pass
                (58 KB: the upstream 0.5.6 storage trace in tests/fixtures)
    info_1g     inferguard trace info 1GiB.lct --json      vs upstream `trace info` loop
    summary     inferguard metrics summary 10MB.prom --json   vs prometheus_client parse
    compat      inferguard lmcache-compat --engine-metrics-file 10MB.prom --json   vs it too
    compat_two  the same with --lmcache-metrics-file 10MB-2.prom too   vs parsing both
    stats       inferguard trace stats 1GiB.lct --json (many_keys) vs the `trace info` loop
(the references are benchmarks/references.py, run as commands).

The package is byte-compiled first (`compileall`), as an installed wheel is: with
PYTHONDONTWRITEBYTECODE set, every start-up would otherwise compile the sources again.
Sizes: INFERGUARD_BENCH_SCALE=smoke (CI: small files, two pairs, no claims) or full.
Install: INFERGUARD_BENCH_INSTALL=wheel (default: the wheel built from the working tree,
installed in a fresh venv, benchmarks/_wheel.py: what a user starts) or dev (this venv's
editable install, whose import finder every start-up pays; the figures before 2026-12-04's
seventh session were measured so).
"""

from __future__ import annotations

import compileall
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from tests.prom_gen import generate_exposition

from ._wheel import install_wheel
from .trace_gen import write_storage_trace

SCALE = os.environ.get("INFERGUARD_BENCH_SCALE", "full")
SMOKE = SCALE == "smoke"
REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "tests" / "fixtures" / "lmcache-0.5.6" / "storage.lct"
TRACE_BYTES = (4 << 20) if SMOKE else (1 << 30)
PROM_LABEL_SETS = 20 if SMOKE else 600
INSTALL = os.environ.get("INFERGUARD_BENCH_INSTALL", "wheel")
ROWS: dict[str, str] = {}


def _inferguard() -> list[str]:
    """The console script beside this interpreter (what a user runs), else `-m`."""
    script = shutil.which("inferguard", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "inferguard"]


class Env:
    """The interpreter and the inferguard command both sides of a row run."""
    python: ClassVar[str] = sys.executable
    inferguard: ClassVar[list[str]] = []

    @classmethod
    def ref(cls, *args: str) -> list[str]:
        """A reference of benchmarks/references.py, run by the same interpreter."""
        return [cls.python, "-m", "benchmarks.references", *args]

    @classmethod
    def cmd(cls, *args: str) -> list[str]:
        return [*cls.inferguard, *args]

    @classmethod
    def python_pass(cls) -> list[str]:
        return [cls.python, "-c", "pass"]


def _run(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + sys) seconds of one run of `cmd`, which must succeed."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read() if proc.stderr else b""
    code = os.waitstatus_to_exitcode(status)
    assert code == 0, (cmd, code, err[-2000:])
    return wall, usage.ru_utime + usage.ru_stime


def paired(name: str, a: list[str], b: list[str], pairs: int, *, slower_is_a: bool) -> float:
    """Run A and B in turn `pairs` times (after one unrecorded warm-up pair); print and keep
    the row; return the median ratio (A/B when A is the slower one by design, else B/A)."""
    _run(a), _run(b)
    wa, wb, ca, cb, ratio, cpu_ratio = [], [], [], [], [], []
    for _ in range(pairs):
        (w1, c1), (w2, c2) = _run(a), _run(b)
        wa.append(w1), wb.append(w2), ca.append(c1), cb.append(c2)
        ratio.append(w1 / w2 if slower_is_a else w2 / w1)
        cpu_ratio.append(c1 / c2 if slower_is_a else c2 / c1)
    med = statistics.median(ratio)
    how = "A/B" if slower_is_a else "B/A (times faster)"
    row = (f"{name}: A {statistics.median(wa):.3f}s [{min(wa):.3f}-{max(wa):.3f}] "
           f"cpu {statistics.median(ca):.3f}s; B {statistics.median(wb):.3f}s "
           f"[{min(wb):.3f}-{max(wb):.3f}] cpu {statistics.median(cb):.3f}s; "
           f"{how} wall median {med:.2f} [{min(ratio):.2f}-{max(ratio):.2f}], cpu median "
           f"{statistics.median(cpu_ratio):.2f}; {pairs} pairs, load {os.getloadavg()[0]:.1f}")
    ROWS[name] = row
    print("\n" + row)
    return med


@pytest.fixture(scope="module", autouse=True)
def _installed(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The wheel installed (or, INSTALL=dev, this venv), byte-compiled as pip leaves it."""
    compileall.compile_dir(str(REPO / "inferguard"), quiet=1)
    compileall.compile_dir(str(REPO / "benchmarks"), quiet=1)
    if INSTALL == "dev":
        Env.python, Env.inferguard = sys.executable, _inferguard()
    else:
        Env.python, script = install_wheel(tmp_path_factory.mktemp("cmd-wheel"))
        Env.inferguard = [script]
    version = subprocess.run([*Env.inferguard, "--version"], check=True, capture_output=True,
                             text=True).stdout
    backend = next(line for line in version.splitlines() if line.startswith("backend:"))
    print(f"\ninstall: {INSTALL} ({Env.inferguard[0]}; {backend})")


@pytest.fixture(scope="module")
def big_trace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("cmd-lct") / "pool_keys.lct"
    write_storage_trace(path, TRACE_BYTES)
    yield path
    path.unlink()


@pytest.fixture(scope="module")
def many_keys_trace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("cmd-lct") / "many_keys.lct"
    write_storage_trace(path, TRACE_BYTES, keys_per_call=(1, 6), reuse=0.6)
    yield path
    path.unlink()


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cmd-prom") / "scrape.prom"
    path.write_bytes(generate_exposition(PROM_LABEL_SETS, seed=1))
    return path


@pytest.fixture(scope="module")
def second_exposition(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cmd-prom") / "scrape-2.prom"
    path.write_bytes(generate_exposition(PROM_LABEL_SETS, seed=2))
    return path


def test_help() -> None:
    paired("help", Env.cmd("--help"), Env.python_pass(),
           3 if SMOKE else 21, slower_is_a=True)


def test_trace_info_tiny() -> None:
    paired("info_tiny", Env.cmd("trace", "info", str(TINY), "--json"), Env.python_pass(),
           3 if SMOKE else 21, slower_is_a=True)


def test_trace_info_1g(big_trace: Path) -> None:
    paired("info_1g", Env.cmd("trace", "info", str(big_trace), "--json"),
           Env.ref("trace-info", str(big_trace)), 2 if SMOKE else 5, slower_is_a=False)


def test_metrics_summary(exposition: Path) -> None:
    paired("summary", Env.cmd("metrics", "summary", str(exposition), "--json"),
           Env.ref("prom-parse", str(exposition)), 2 if SMOKE else 7, slower_is_a=False)


def test_lmcache_compat(exposition: Path) -> None:
    paired("compat", Env.cmd("lmcache-compat", "--engine-metrics-file", str(exposition),
                             "--json"),
           Env.ref("prom-parse", str(exposition)), 2 if SMOKE else 7, slower_is_a=False)


def test_lmcache_compat_two_scrapes(exposition: Path, second_exposition: Path) -> None:
    paired("compat_two", Env.cmd("lmcache-compat", "--engine-metrics-file", str(exposition),
                                 "--lmcache-metrics-file", str(second_exposition), "--json"),
           Env.ref("prom-parse", str(exposition), str(second_exposition)), 2 if SMOKE else 7,
           slower_is_a=False)


def test_trace_stats_many_keys(many_keys_trace: Path) -> None:
    paired("stats_many_keys", Env.cmd("trace", "stats", str(many_keys_trace), "--json"),
           Env.ref("trace-info", str(many_keys_trace)), 2 if SMOKE else 3, slower_is_a=False)


def test_report() -> None:
    """All rows of this run together (what docs/performance.md quotes)."""
    if not ROWS:
        pytest.skip("no rows ran")
    print("\n" + "\n".join(ROWS.values()))
