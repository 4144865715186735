"""Lazy re-exports for a package's `__init__`: a public name's private module is imported on
first access (PEP 562 module `__getattr__`), so `import inferguard.lct` costs only itself and a
command pays only for the layers it uses. One implementation for every subpackage."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def exports(package: str, where: Mapping[str, str], names: Sequence[str]
            ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The `(__getattr__, __dir__)` pair for `package`: `where` maps each public name to its
    private module, relative (`"._stats"`); a loaded name is kept as a module attribute."""

    def getattr_(name: str) -> Any:
        rel = where.get(name)
        if rel is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        obj = getattr(importlib.import_module(package + rel), name)
        setattr(sys.modules[package], name, obj)
        return obj

    def dir_() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return getattr_, dir_
