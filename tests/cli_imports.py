"""Run `inferguard` in a fresh interpreter and report whether numpy got imported: the import
set of a command is a property of the process, so it is checked in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec

REPO = Path(__file__).resolve().parent.parent


def run_cli(args: list[str]) -> tuple[int, bool, Any]:
    """(exit code, whether numpy was imported, the command's stdout decoded as JSON)."""
    code = ("import json, sys, contextlib, io\nfrom inferguard.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            f"    rc = main({args!r})\n"
            "print(json.dumps([rc, 'numpy' in sys.modules, json.loads(out.getvalue())]))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rc, numpy_loaded, out = msgspec.json.decode(proc.stdout.splitlines()[-1])
    return rc, numpy_loaded, out
