"""Start-up stays light: `import inferguard`, `import inferguard.cli` and `inferguard --help`
load none of the heavy layers (numpy, msgspec (~15-30 ms of imports), the C core, httpx,
prometheus_client, the evidence, judgement, findings and verdict layers); each command
imports what it needs when it runs. Checked in a fresh interpreter, from its `sys.modules`,
not by timing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("numpy", "msgspec", "inferguard._core", "_cffi_backend", "httpx", "prometheus_client",
         "inferguard.evidence", "inferguard.judge", "inferguard.findings",
         "inferguard.verdict", "inferguard.collect", "inferguard._packet",
         "inferguard.lct._stats", "inferguard.lct._engine", "inferguard.prom._model")

_PROBE = """
import json, sys
{body}
print(json.dumps(sorted(sys.modules)))
"""


def _loaded(body: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(body=body)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.splitlines()[-1]))


def _heavy(mods: set[str]) -> list[str]:
    return sorted(m for m in mods if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.mark.parametrize("body", [
    "import inferguard",
    "import inferguard.cli",
    "from inferguard.cli import build_parser; build_parser()",
    # --help prints and exits; the probe then reads what it loaded.
    "import contextlib, io\nfrom inferguard.cli import main\n"
    "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
    "    main(['--help'])",
])
def test_start_up_loads_no_heavy_module(body: str) -> None:
    mods = _loaded(body)
    assert "inferguard" in mods
    assert _heavy(mods) == []


def test_the_probe_sees_heavy_modules_when_they_load() -> None:
    # Near miss: a public name reached through the top level does load its layer.
    mods = _loaded("import inferguard; inferguard.compat")
    assert "inferguard.judge" in _heavy(mods)
    assert "numpy" not in mods  # judging needs no numpy: only the columnar parse does
    mods = _loaded("import inferguard.prom; inferguard.prom.parse_text")
    assert {"inferguard.prom._model", "numpy"} <= set(_heavy(mods))
    tiny = str(Path(__file__).parent / "fixtures" / "lmcache-0.5.6" / "storage.lct")
    mods = _loaded("import contextlib, io\nfrom inferguard.cli import main\n"
                   "with contextlib.redirect_stdout(io.StringIO()):\n"
                   f"    main(['trace', 'info', {tiny!r}, '--json'])")
    assert "msgspec" in _heavy(mods)  # a command that prints JSON does load it


def test_lazy_public_names_resolve_to_the_defining_objects() -> None:
    mods = _loaded("import inferguard, inferguard.lct._file as f\n"
                   "assert inferguard.TraceSummary is f.TraceSummary\n"
                   "assert inferguard.TraceSummary.__module__ == 'inferguard'")
    assert "inferguard.lct._file" in mods


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    import inferguard

    with pytest.raises(AttributeError, match="no_such_name"):
        _ = inferguard.no_such_name  # type: ignore[attr-defined]


_BLAS_PROBE = """
import contextlib, os
from inferguard.cli._main import main
with contextlib.suppress(SystemExit):
    main(["--version"])
print("OPENBLAS_NUM_THREADS=" + str(os.environ.get("OPENBLAS_NUM_THREADS")))
"""


@pytest.mark.parametrize("given,want", [(None, "1"), ("3", "3")])
def test_the_cli_caps_openblas_threads_unless_the_user_set_them(given: str | None,
                                                                want: str) -> None:
    """numpy's OpenBLAS thread pool costs start-up and InferGuard does no linear algebra: the
    CLI asks for one thread, and a value the user gave is kept."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    out = subprocess.run([sys.executable, "-c", _BLAS_PROBE], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[-1] == "OPENBLAS_NUM_THREADS=" + want


def test_the_console_script_tunes_the_collector_and_main_does_not() -> None:
    """`console()` (the script, `python -m inferguard`) collects the young generation less
    often and ends with gc.freeze(): the exit's collections then skip what the command
    left; `main()` in-process leaves gc alone."""
    tiny = "tests/fixtures/lmcache-0.5.6/storage.lct"
    body = ("import contextlib, gc, io\nfrom inferguard.cli import {fn}\nimport sys\n"
            "sys.argv = ['inferguard', 'trace', 'info', {tiny!r}, '--json']\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    rc = {call}\n"
            "assert rc == 0, rc\n"
            "print('young', gc.get_threshold()[0], 'frozen', gc.get_freeze_count())\n")
    for fn, call, frozen in (("console", "console()", True), ("main", "main()", False)):
        proc = subprocess.run([sys.executable, "-c", body.format(fn=fn, tiny=tiny, call=call)],
                              capture_output=True, text=True, timeout=120,
                              cwd=Path(__file__).resolve().parent.parent)
        assert proc.returncode == 0, proc.stderr
        count = int(proc.stdout.split("frozen")[-1])
        young = int(proc.stdout.split("young")[-1].split()[0])
        assert (count > 0) is frozen, (fn, count)
        assert (young == 10_000) is frozen, (fn, young)  # main(): the default 700


def test_a_lazy_pattern_compiles_on_first_use_and_matches_as_compiled() -> None:
    import re

    from inferguard import _lazy

    broken = _lazy.pattern(r"(unclosed")  # not compiled yet: no error at import time
    with pytest.raises(re.error):
        broken.search("x")
    lazy, eager = _lazy.pattern(r"k=(\w+)", re.I), re.compile(r"k=(\w+)", re.I)
    text = "K=a k=b x=c"
    assert lazy.sub("<r>", text) == eager.sub("<r>", text) == "<r> <r> x=c"
    assert [m.group(1) for m in lazy.finditer(text)] == ["a", "b"]
    assert lazy.search(text).span() == eager.search(text).span()  # type: ignore[union-attr]
    assert _lazy.pattern(rb"\d+").findall(b"a1b22") == [b"1", b"22"]


def test_the_redaction_rules_are_not_compiled_at_import() -> None:
    mods = _loaded("import re, inferguard.evidence._redact as r\n"
                   "assert not isinstance(r._PAIR, re.Pattern)\n"
                   "assert 'hunter2' not in r.redact_text('password=hunter2')")
    assert "inferguard.evidence._redact" in mods


def test_beside_returns_the_result_or_raises_what_the_work_raised() -> None:
    from inferguard._threads import beside

    seen: list[str] = []
    join = beside(lambda: seen.append("ran") or 42, "t")
    assert join() == 42 and seen == ["ran"]

    def fails() -> int:
        raise ValueError("from the thread")

    with pytest.raises(ValueError, match="from the thread"):
        beside(fails, "t")()


@pytest.mark.parametrize("columns", ["50", "abc", "0", "-3", None])
def test_the_help_width_is_what_shutil_gives(monkeypatch: pytest.MonkeyPatch,
                                             columns: str | None) -> None:
    """argparse would import shutil (and its zlib/bz2/lzma) for every formatter; the CLI's
    formatter reads the width itself, by shutil's rule."""
    import shutil

    from inferguard.cli._common import terminal_columns

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert terminal_columns() == shutil.get_terminal_size().columns


def test_help_follows_columns_without_importing_shutil() -> None:
    import os

    body = ("import contextlib, io, sys\nfrom inferguard.cli import main\nbuf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):\n"
            "    main(['lmcache-compat', '--help'])\n"
            "assert 'shutil' not in sys.modules\n"
            "print(buf.getvalue())")
    helps = []
    for width in (60, 120):
        proc = subprocess.run([sys.executable, "-c", body], capture_output=True, text=True,
                              timeout=120, env={**os.environ, "COLUMNS": str(width)})
        assert proc.returncode == 0, proc.stderr
        helps.append(proc.stdout)
    assert helps[0] != helps[1]  # the width reached the formatter
    assert len(helps[0].splitlines()) > len(helps[1].splitlines())  # narrower: more lines


def test_judging_a_scrape_loads_no_other_readers_stdlib(tmp_path: Path) -> None:
    """`lmcache-compat` on a metrics file imports what that evidence needs: not pathlib,
    json, csv, shlex, base64 or array (the other readers' tools, ~7 ms of start-up), nor the
    trace scrubber (what the interpreter and the probe load on their own aside: an editable
    install's finder imports pathlib). Near miss: a launch line does load shlex."""
    scrape, launch = tmp_path / "m.prom", tmp_path / "launch.txt"
    scrape.write_text("# TYPE lmcache_mp_hits counter\nlmcache_mp_hits_total 3\n")
    launch.write_text("lmcache server --port 6555\n")
    body = ("import contextlib, io, sys\nfrom inferguard.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    main({args!r})\n")
    own = _loaded("pass")
    mods = _loaded(body.format(args=["lmcache-compat", "--engine-metrics-file", str(scrape),
                                     "--json"])) - own
    assert "inferguard.verdict._verdict" in mods
    assert sorted({"pathlib", "json", "csv", "shlex", "base64", "array",
                   "inferguard.lct._scrub"} & mods) == []
    mods = _loaded(body.format(args=["lmcache-compat", "--engine-metrics-file", str(scrape),
                                     "--launch-file", str(launch), "--json"])) - own
    assert "shlex" in mods


@pytest.mark.parametrize("module,name", [
    ("inferguard.evidence._logs", "_VLLM_HEADER"), ("inferguard.evidence._launch", "_WHEEL"),
    ("inferguard.evidence._capture", "_CAPTURE"), ("inferguard.judge._versions", "_CLAUSE"),
    ("inferguard.prom._tokens", "_PAIRS"), ("inferguard.prom._names", "_SANITIZE"),
])
def test_readers_patterns_compile_on_first_use(module: str, name: str) -> None:
    """Judging imports every reader's module; their patterns cost nothing until read."""
    import importlib
    import re

    mod = importlib.import_module(module)
    assert not isinstance(vars(mod)[name], re.Pattern)


def test_importing_the_judging_layers_compiles_no_lazy_pattern() -> None:
    """No module-level lazy pattern is compiled by its own module's import (one pattern
    derived from another by reading `.pattern` would compile it there): each still holds
    only its source and flags in a fresh interpreter."""
    out = _loaded("import gc, inferguard.verdict._verdict, inferguard.evidence._replay\n"
                  "from inferguard._lazy import _Pattern\n"
                  "used = [sorted(vars(o)) for o in gc.get_objects() if isinstance(o, _Pattern)\n"
                  "        and set(vars(o)) != {'_source', '_flags'}]\n"
                  "assert not used, used\n"
                  "n = sum(isinstance(o, _Pattern) for o in gc.get_objects())\n"
                  "assert n >= 20, n")
    assert "inferguard.evidence._logs" in out
