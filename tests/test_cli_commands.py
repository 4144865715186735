"""The CLI's command table (`cli._main.COMMANDS`): each entry names exactly the top-level
commands its register function adds, so a run can import only its own command's module;
a run of one command builds the same parser for it as the whole CLI does."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from inferguard.cli import _main


class _Recorder:
    """Top-level subparsers as a register() sees them, keeping only the names added."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def add_parser(self, name: str, **_kwargs: Any) -> Any:
        self.names.append(name)
        return _main._SINK


@pytest.mark.parametrize("names,reach", _main.COMMANDS)
def test_each_entry_names_what_its_register_adds(names: tuple[str, ...],
                                                 reach: Callable[[], Any]) -> None:
    rec = _Recorder()
    reach()(rec)
    assert tuple(rec.names) == names


def test_the_table_covers_every_command_once_in_help_order() -> None:
    top = _main.build_parser()
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    listed = [n for names, _ in _main.COMMANDS for n in names]
    assert list(sub.choices) == listed and len(set(listed)) == len(listed)


def _help_of(parser: argparse.ArgumentParser, command: str) -> str:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command].format_help()


@pytest.mark.parametrize("command", [n for names, _ in _main.COMMANDS for n in names])
def test_a_run_builds_its_command_as_the_whole_cli_does(command: str) -> None:
    assert _help_of(_main.build_parser(command), command) == \
        _help_of(_main.build_parser(), command)


def test_an_unknown_command_gets_the_whole_parser() -> None:
    p = _main.build_parser("no-such-command")
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    assert "lmcache-compat" in sub.choices and "trace" in sub.choices


def test_a_run_imports_only_its_own_command_module() -> None:
    body = ("import contextlib, io, json, sys\nfrom inferguard.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "    main(['lmcache-compat', '--help'])\n"
            "print(json.dumps([m for m in sys.modules if m.startswith('inferguard.cli.')]))")
    out = subprocess.run([sys.executable, "-c", body], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    loaded = json.loads(out.strip().splitlines()[-1])
    assert "inferguard.cli._compat" in loaded
    assert not {"inferguard.cli._fleet", "inferguard.cli._collect", "inferguard.cli._query",
                "inferguard.cli._watch"} & set(loaded)
