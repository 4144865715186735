"""Lazy re-exports for a package's `__init__`: a public name's private module is imported on
first access (PEP 562 module `__getattr__`), so `import inferguard.lct` costs only itself and a
command pays only for the layers it uses. One implementation for every subpackage."""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, AnyStr, cast


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


class _Pattern:
    """A regex compiled on first use; its methods are then kept on the instance, so later
    calls reach the compiled pattern's own (C) methods without this class in between."""

    def __init__(self, source: str | bytes, flags: int) -> None:
        self._source, self._flags = source, flags

    def __getattr__(self, name: str) -> Any:
        got = getattr(re.compile(self._source, self._flags), name)
        setattr(self, name, got)
        return got


def pattern(source: AnyStr, flags: int = 0) -> re.Pattern[AnyStr]:
    """`re.compile(source, flags)` when first used, not at import: a module of many patterns
    (the redaction rules, the replay log lines) then costs nothing to import until it
    reads something. Use its methods (search, sub, ...), not `re.*(pattern, ...)`."""
    return cast("re.Pattern[AnyStr]", _Pattern(source, flags))
