"""The CLI behaves like the tools people trust, tested as a user meets it: by subprocess.

Usage errors (exit 2, one line naming the flag and path), `-` for stdin, transparent gzip
with a decompressed-size cap, a closed pipe and Ctrl-C without a traceback (130), help on
every subcommand and flag with examples, `--version`, the pure-Python notice, and every
`--json` document carrying its `schema` and validating against the schema shipped in the
package.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from inferguard.cli import build_parser, main
from inferguard.cli._schemas import DOCUMENTS, render, schema_file
from tests.jsonschema_subset import SchemaError, validate

REPO = Path(__file__).resolve().parents[1]
FIX = REPO / "tests" / "fixtures"
TRACE = REPO / "examples" / "lmcache-0.5.6-storage.lct"
PACKET = REPO / "examples" / "vllm-lmcache-mp" / "packet"
SCRAPE = FIX / "lmcache_live" / "vllm_live_mp" / "packet" / "inputs" / "lmcache_metrics" / \
    "127.0.0.1_49795_metrics.txt"
LIVE_PACKETS = sorted(p.parent for p in (FIX / "lmcache_live").glob("*/packet/packet.json"))
TRACES = [TRACE, *sorted(FIX.rglob("*.lct"))]
SCRAPES = sorted((FIX / "lmcache_live").glob("*/packet/inputs/*metrics/*.txt"))


def run(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None,
        check_rc: int | None = None) -> subprocess.CompletedProcess[bytes]:
    """`python -m inferguard.cli ARGS` from a temp-free cwd (the repo), output captured."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "inferguard.cli", *args], input=stdin,
                          capture_output=True, cwd=REPO, env=full_env, timeout=300)
    if check_rc is not None:
        assert proc.returncode == check_rc, (proc.returncode, proc.stderr.decode())
    return proc


# -- usage errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, flag", [
    (["lmcache-compat", "--lmcache-metrics-file", "/nonexistent/x.txt"],
     "--lmcache-metrics-file"),
    (["lmcache-compat", "--packet", "/nonexistent/pkt"], "--packet"),
    (["diagnose-bottleneck", "--packet", "/nonexistent/pkt"], "--packet"),
    (["collect-lmcache", "--output-dir", "OUT", "--lmcache-log-file", "/nonexistent/l.log"],
     "--lmcache-log-file"),
    (["collect-lmcache", "--output-dir", "OUT", "--lmcache-http-capture-dir", "/nonexistent"],
     "--lmcache-http-capture-dir"),
])
def test_missing_path_on_a_flag_is_one_line_exit_2(argv: list[str], flag: str,
                                                   tmp_path: Path) -> None:
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    proc = run(*argv, check_rc=2)
    err = proc.stderr.decode()
    assert err.count("\n") == 1 and flag in err and "/nonexistent" in err, err
    assert "no such file" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_stdin_dash_on_a_repeatable_flag_is_refused() -> None:
    err = run("lmcache-compat", "--lmcache-log-file", "-", check_rc=2).stderr.decode()
    assert err.count("\n") == 1 and "--lmcache-log-file -" in err and "standard input" in err


def test_directory_where_a_file_is_expected(tmp_path: Path) -> None:
    err = run("lmcache-compat", "--lmcache-log-file", str(tmp_path), check_rc=2).stderr.decode()
    assert "is a directory" in err and str(tmp_path) in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file whatever its mode")
def test_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    f = tmp_path / "scrape.txt"
    f.write_text("x 1\n")
    f.chmod(0)
    err = run("metrics", "summary", str(f), check_rc=2).stderr.decode()
    assert "permission denied" in err


def test_unreadable_file_inside_a_packet_stays_evidence(tmp_path: Path) -> None:
    """A packet input that cannot be read is recorded, not fatal: the verdict still comes."""
    import shutil

    pkt = tmp_path / "pkt"
    shutil.copytree(PACKET, pkt)
    victim = next((pkt / "inputs" / "log").iterdir())
    victim.unlink()
    victim.mkdir()  # present but not a readable file, for root too
    proc = run("lmcache-compat", "--packet", str(pkt), "--json", check_rc=0)
    doc = json.loads(proc.stdout)
    assert doc["report"]["detected"]["mode"] == "mp"


def test_existing_path_is_accepted_and_positional_checked() -> None:
    run("lmcache-compat", "--lmcache-metrics-file", str(SCRAPE), check_rc=0)
    err = run("trace", "info", "/nonexistent.lct", check_rc=2).stderr.decode()
    assert err.count("\n") == 1 and "/nonexistent.lct" in err


def test_empty_collect_is_a_usage_error(tmp_path: Path) -> None:
    err = run("collect-lmcache", "--output-dir", str(tmp_path / "o"),
              check_rc=2).stderr.decode()
    assert "no evidence source" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_binary_metrics_input_is_refused() -> None:
    err = run("metrics", "summary", str(TRACE), check_rc=2).stderr.decode()
    assert "binary content" in err and "offset" in err


# -- stdin and gzip ----------------------------------------------------------------------------

def test_stdin_dash_reads_a_pipe_like_the_file() -> None:
    by_file = json.loads(run("trace", "info", str(TRACE), "--json", check_rc=0).stdout)
    by_pipe = json.loads(run("trace", "info", "-", "--json", stdin=TRACE.read_bytes(),
                             check_rc=0).stdout)
    assert by_pipe["path"] == "<stdin>"
    by_pipe["path"] = by_file["path"]
    assert by_pipe == by_file
    m_file = json.loads(run("metrics", "summary", str(SCRAPE), "--json", check_rc=0).stdout)
    m_pipe = json.loads(run("metrics", "summary", "-", "--json", stdin=SCRAPE.read_bytes(),
                            check_rc=0).stdout)
    m_pipe["path"] = m_file["path"]
    assert m_pipe == m_file


def test_stdin_from_a_real_pipe_without_seeking() -> None:
    """An OS pipe (not seekable) works: the reader gets a spooled copy."""
    cat = subprocess.Popen(["cat", str(TRACE)], stdout=subprocess.PIPE)
    proc = subprocess.run([sys.executable, "-m", "inferguard.cli", "trace", "stats", "-"],
                          stdin=cat.stdout, capture_output=True, cwd=REPO, timeout=300)
    assert cat.stdout is not None
    cat.stdout.close()
    cat.wait()
    assert proc.returncode == 0, proc.stderr
    assert b"total_records:              74" in proc.stdout


def test_gzip_input_is_read_transparently(tmp_path: Path) -> None:
    gz = tmp_path / "scrape.txt.gz"
    gz.write_bytes(gzip.compress(SCRAPE.read_bytes()))
    plain = json.loads(run("metrics", "summary", str(SCRAPE), "--json", check_rc=0).stdout)
    packed = json.loads(run("metrics", "summary", str(gz), "--json", check_rc=0).stdout)
    assert packed["path"] == str(gz)
    packed["path"] = plain["path"]
    assert packed == plain
    tgz = tmp_path / "t.lct.gz"
    # two gzip members: `cat a.gz b.gz` is a valid gzip stream too
    raw = TRACE.read_bytes()
    tgz.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]))
    t = json.loads(run("trace", "info", str(tgz), "--json", check_rc=0).stdout)
    assert t["total_records"] == 74 and t["size_bytes"] == len(raw)


def test_gzip_bomb_is_refused_at_the_cap(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.txt.gz"
    bomb.write_bytes(gzip.compress(b"\0" * (8 << 20), compresslevel=9))
    assert bomb.stat().st_size < 64 << 10
    proc = run("metrics", "summary", str(bomb), check_rc=2,
               env={"INFERGUARD_MAX_DECOMPRESSED_BYTES": str(1 << 20)})
    err = proc.stderr.decode()
    assert "more than 1048576 bytes" in err and str(bomb) in err and "Traceback" not in err
    # under the cap the same stream is read (and refused as binary: NULs are not text)
    ok = run("metrics", "summary", str(bomb), check_rc=2,
             env={"INFERGUARD_MAX_DECOMPRESSED_BYTES": str(16 << 20)}).stderr.decode()
    assert "binary content" in ok


def test_truncated_gzip_is_a_clear_error(tmp_path: Path) -> None:
    gz = tmp_path / "cut.txt.gz"
    gz.write_bytes(gzip.compress(SCRAPE.read_bytes())[:200])
    err = run("metrics", "summary", str(gz), check_rc=2).stderr.decode()
    assert "ends early" in err and str(gz) in err


# -- pipes and signals -------------------------------------------------------------------------

def test_closed_pipe_is_quiet() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "inferguard.cli", "lmcache-compat",
                             "--packet", str(PACKET)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=REPO)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # the reader goes away, as `| head -1` does
    err = proc.stderr.read()
    rc = proc.wait(timeout=120)
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err
    assert rc == 0


def _blocked_reading_stdin(pid: int, deadline: float) -> None:
    """Wait until the process sits in read(0, ...) (Linux /proc), i.e. past every import and
    inside the command; fall back to a fixed wait where /proc does not say."""
    path = Path(f"/proc/{pid}/syscall")
    while time.monotonic() < deadline:
        try:
            fields = path.read_text().split()
        except OSError:
            break
        if len(fields) > 1 and fields[0] in ("0", "63") and fields[1] == "0x0":
            return
        time.sleep(0.05)
    time.sleep(3.0)


def test_sigint_exits_130_without_traceback() -> None:
    """Ctrl-C while a command reads a pipe: exit 130, nothing but a newline on stderr."""
    # A terminal delivers Ctrl-C to a process whose SIGINT is at its default; a parent that
    # runs in the background of a non-interactive shell (a CI runner started with `&`)
    # passes SIGINT down ignored, so restore the default in the child, as a terminal has it.
    proc = subprocess.Popen([sys.executable, "-m", "inferguard.cli", "trace", "stats", "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=REPO,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdin is not None
    proc.stdin.write(TRACE.read_bytes()[:100])
    proc.stdin.flush()
    _blocked_reading_stdin(proc.pid, time.monotonic() + 60)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (proc.returncode, err)
    assert b"Traceback" not in err and b"KeyboardInterrupt" not in err, err
    assert out == b""


# -- help and version --------------------------------------------------------------------------

def _parsers(p: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield p.prog, p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _parsers(child)


def test_every_subcommand_has_purpose_examples_and_flag_help() -> None:
    top = build_parser()
    problems = []
    for prog, p in _parsers(top):
        if not p.description:
            problems.append(f"{prog}: no description")
        if not p.epilog or "examples:" not in p.epilog:
            problems.append(f"{prog}: no examples epilog")
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    if not choice.help:
                        problems.append(f"{prog} {choice.dest}: no one-line purpose")
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                problems.append(f"{prog} {action.option_strings or action.dest}: no help")
    assert problems == []


def test_help_output_shows_examples() -> None:
    out = run("lmcache-compat", "--help", check_rc=0).stdout.decode()
    assert "examples:" in out and "--packet examples/vllm-lmcache-mp/packet" in out
    top = run("--help", check_rc=0).stdout.decode()
    assert "note to developers" not in top.lower() and "exit codes" in top


def test_version_names_backend_and_upstream_versions() -> None:
    from inferguard import __version__, native_backend

    out = run("--version", check_rc=0).stdout.decode()
    assert out.startswith(f"inferguard {__version__}\n")
    assert f"backend: {native_backend()}" in out
    for project in ("LMCache 0.5.6", "vLLM", "SGLang"):
        assert project in out
    py = run("--version", env={"INFERGUARD_NO_NATIVE": "1"}, check_rc=0).stdout.decode()
    assert "backend: python (pure Python: slower" in py


def test_python_backend_notice_once_on_stderr_only_when_not_chosen() -> None:
    """Without the C core (simulated by hiding it) a heavy command says so once, on stderr;
    with INFERGUARD_NO_NATIVE (the user's choice) it stays quiet; stdout is untouched."""
    code = ("import sys, inferguard._native as n; n.native_backend = lambda: 'python'; "
            "import inferguard.cli._common as c; c.native_backend = n.native_backend; "
            "from inferguard.cli import main; raise SystemExit(main(sys.argv[1:]))")
    argv = [sys.executable, "-c", code, "trace", "info", str(TRACE), "--json"]
    env = {k: v for k, v in os.environ.items() if k != "INFERGUARD_NO_NATIVE"}
    hidden = subprocess.run(argv, capture_output=True, cwd=REPO, env=env, timeout=120)
    assert hidden.returncode == 0
    assert hidden.stderr.decode().count("pure-Python path") == 1
    json.loads(hidden.stdout)  # stdout is still one JSON document
    chosen = run("trace", "info", str(TRACE), env={"INFERGUARD_NO_NATIVE": "1"}, check_rc=0)
    assert b"pure-Python path" not in chosen.stderr
    light = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True,
                           cwd=REPO, env=env, timeout=120)
    assert b"pure-Python path" not in light.stderr


# -- JSON documents ----------------------------------------------------------------------------

def _shipped_schema(schema_id: str) -> dict[str, object]:
    text = resources.files("inferguard").joinpath("schemas", schema_file(schema_id)).read_text()
    return json.loads(text)  # type: ignore[no-any-return]


def _documents() -> Iterator[tuple[str, list[str]]]:
    for t in TRACES:
        yield "inferguard.trace_summary/1", ["trace", "info", str(t), "--json"]
        yield "inferguard.trace_stats/1", ["trace", "stats", str(t), "--json"]
    for s in SCRAPES:
        yield "inferguard.metrics_summary/1", ["metrics", "summary", str(s), "--json"]
    for p in [PACKET, *LIVE_PACKETS]:
        yield "inferguard.verdict/1", ["lmcache-compat", "--packet", str(p), "--json"]
        yield "inferguard.diagnosis/1", ["diagnose-bottleneck", "--packet", str(p), "--json"]
        yield "inferguard.verdict/1", ["report", "--packet", str(p), "--json"]
    modes = FIX / "lmcache_live" / "modes"
    for d in sorted(x for x in modes.iterdir() if x.is_dir()):
        files = []
        for f in sorted(d.iterdir()):
            flag = {".txt": "--launch-file", ".prom": "--engine-metrics-file",
                    ".log": "--lmcache-log-file"}.get(f.suffix)
            if flag:
                files += [flag, str(f)]
        if files:
            yield "inferguard.verdict/1", ["lmcache-compat", *files, "--json"]
    for p in LIVE_PACKETS:
        yield "inferguard.compare/1", ["compare", str(PACKET), str(p), "--json"]


DOC_CASES = list(_documents())


@pytest.mark.parametrize("schema_id, argv", DOC_CASES,
                         ids=[f"{a[0]}-{Path(a[-2]).parent.name}/{Path(a[-2]).name}"
                              for _, a in DOC_CASES])
def test_every_json_output_validates_against_its_shipped_schema(
        schema_id: str, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """In-process (the subprocess road is the same main(); this keeps the suite fast)."""
    assert main(argv) in (0, 1)
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == schema_id
    validate(doc, _shipped_schema(schema_id))


def test_watch_json_lines_validate_against_the_shipped_schema(
        capsys: pytest.CaptureFixture[str]) -> None:
    """`watch --json` against a local server that answers twice, then 404s: one document per
    round, every one valid (the failed round too)."""
    from .http_fake import RecordingServer, Reply

    served = iter([b"# TYPE lmcache_mp_lookup_hit_tokens_total counter\n"
                   b'lmcache_mp_lookup_hit_tokens_total{model_name="m"} 5\n'] * 2)

    def answer(path: str) -> Reply:
        body = next(served, None)
        return Reply(404, b"") if body is None else Reply(200, body, "text/plain")

    with RecordingServer(answer) as srv:
        assert main(["watch", "--lmcache-metrics-url", srv.url + "/metrics", "--rounds", "3",
                     "--interval", "0.01", "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert len(lines) == 3 and [d["endpoints"][0]["up"] for d in lines] == [True, True, False]
    for doc in lines:
        assert doc["schema"] == "inferguard.watch_round/1"
        validate(doc, _shipped_schema("inferguard.watch_round/1"))


# Documents validated where their command can run (a live server, rounds over time):
# `watch --json` above; `fleet --json` in tests/test_prometheus_api.py, on a real Prometheus.
SERVER_DOCUMENTS = {"inferguard.watch_round/1", "inferguard.fleet/1"}


def test_the_schemas_cover_every_json_command_and_are_not_stale() -> None:
    assert {s for s, _ in DOC_CASES} | SERVER_DOCUMENTS == set(DOCUMENTS)
    for schema_id in DOCUMENTS:
        assert _shipped_schema(schema_id) == json.loads(render(schema_id)), schema_id


def test_keys_are_stable_zeros_and_falses_present() -> None:
    """Two packets with different findings give the same key set per object type: a zero, a
    false and an empty list are written, not dropped."""
    doc = json.loads(run("lmcache-compat", "--packet", str(PACKET), "--json").stdout)
    finding = doc["diagnosis"]["findings"][0]
    assert set(finding) == {"code", "severity", "level", "message", "next_step", "evidence"}
    groups = doc["report"]["groups"]
    assert all({"populated", "zero", "missing", "required"} <= set(g) for g in groups)
    assert any(g["zero"] == 0 for g in groups) and any(g["required"] is False for g in groups)


def test_the_validator_can_fail() -> None:
    """Near misses: a dropped key, an extra key, a wrong type are each caught."""
    schema = _shipped_schema("inferguard.diagnosis/1")
    doc = json.loads(run("diagnose-bottleneck", "--packet", str(PACKET), "--json").stdout)
    validate(doc, schema)
    dropped = json.loads(json.dumps(doc))
    del dropped["diagnosis" if "diagnosis" in dropped else "findings"][0]["evidence"]
    with pytest.raises(SchemaError, match="required key 'evidence'"):
        validate(dropped, schema)
    extra = {**doc, "surprise": 1}
    with pytest.raises(SchemaError, match="not allowed"):
        validate(extra, schema)
    wrong = {**doc, "schema": "inferguard.diagnosis/2"}
    with pytest.raises(SchemaError, match="const"):
        validate(wrong, schema)


# -- progress ----------------------------------------------------------------------------------

def _with_tty_stderr(argv: list[str]) -> tuple[int, bytes, bytes]:
    """Run the CLI with stderr on a pseudo-terminal (stdout a pipe); (rc, stdout, tty bytes)."""
    import pty  # noqa: F401  (POSIX only; the openpty below is its primitive)

    master, slave = os.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "inferguard.cli", *argv],
                                stdout=subprocess.PIPE, stderr=slave, cwd=REPO)
        os.close(slave)
        out, _ = proc.communicate(timeout=300)
        tty = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child side is closed and drained
                break
            if not chunk:
                break
            tty += chunk
    finally:
        os.close(master)
    return proc.returncode, out, tty


def test_progress_on_a_terminal_never_in_json_or_a_pipe(tmp_path: Path) -> None:
    rc, out, tty = _with_tty_stderr(["trace", "stats", str(TRACE)])
    assert rc == 0 and b"total_records" in out
    assert b"trace stats [" in tty and b"100.0%" in tty and b"ETA" in tty and b"/s" in tty
    assert b"\r" not in out  # the bar never reaches stdout
    rc, out, tty = _with_tty_stderr(["trace", "stats", str(TRACE), "--json"])
    assert rc == 0 and json.loads(out)["schema"] == "inferguard.trace_stats/1"
    assert b"ETA" not in tty
    piped = run("trace", "stats", str(TRACE), check_rc=0)  # stderr a pipe: silent
    assert piped.stderr == b""
    rc, out, tty = _with_tty_stderr(["collect-lmcache", "--output-dir", str(tmp_path / "p"),
                                     "--lmcache-trace-file", str(TRACE)])
    assert rc == 0, tty
    assert b"copying inputs [" in tty and b"100.0%" in tty


def test_a_directory_that_is_no_packet_names_the_command_that_writes_one(tmp_path: Path) -> None:
    for cmd, *more in (("lmcache-compat",), ("diagnose-bottleneck",), ("report", "--json")):
        err = run(cmd, "--packet", str(tmp_path), *more, check_rc=2).stderr.decode()
        assert err.count("\n") == 1 and "no packet.json" in err
        assert "inferguard collect-lmcache" in err and "run lmcache-compat" not in err


# -- the shared input helper, directly -----------------------------------------------------------

def test_decompressed_cap_boundary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exactly the cap is read; one byte more is refused (near miss and fire)."""
    from inferguard.evidence._source import InputError, local_input

    data = bytes(range(256)) * 40  # 10240 bytes
    gz = tmp_path / "x.gz"
    gz.write_bytes(gzip.compress(data))
    monkeypatch.setenv("INFERGUARD_MAX_DECOMPRESSED_BYTES", str(len(data)))
    with local_input(str(gz)) as local:
        assert local != str(gz) and Path(local).read_bytes() == data
    assert not Path(local).exists()  # the private copy is gone afterwards
    monkeypatch.setenv("INFERGUARD_MAX_DECOMPRESSED_BYTES", str(len(data) - 1))
    with pytest.raises(InputError, match="more than 10239 bytes"), local_input(str(gz)):
        pass


def test_plain_file_is_used_in_place_and_stdin_spooled(tmp_path: Path) -> None:
    import io

    from inferguard.evidence._source import local_input

    f = tmp_path / "plain.txt"
    f.write_bytes(b"x 1\n")
    with local_input(str(f)) as local:
        assert local == str(f)  # no copy of a regular uncompressed file
    with local_input("-", stdin=io.BytesIO(gzip.compress(b"y 2\n"))) as local:
        assert Path(local).read_bytes() == b"y 2\n"
    with local_input("-", stdin=io.BytesIO(b"z 3\n")) as local:
        assert Path(local).read_bytes() == b"z 3\n"


def test_fifo_on_a_flag_is_refused_without_blocking(tmp_path: Path) -> None:
    """A FIFO is no regular file: refused at parse time (opening it would block)."""
    fifo = tmp_path / "scrape.fifo"
    os.mkfifo(fifo)
    err = run("lmcache-compat", "--lmcache-metrics-file", str(fifo), check_rc=2).stderr.decode()
    assert "not a regular file (a FIFO)" in err and str(fifo) in err
    err = run("metrics", "summary", str(fifo), check_rc=2).stderr.decode()
    assert "not a regular file" in err
