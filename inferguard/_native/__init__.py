"""Which backend runs the hot paths: the compiled C core or the pure-Python path.

The C core (`inferguard._core`, built by cffi from `native/`) is optional: an install
without a compiler still works, on the pure-Python path. `INFERGUARD_NO_NATIVE=1` forces
the pure-Python path at run time; it is read on every call so tests can switch per test.

`_lct` and `_prom` are the only modules that touch the compiled module's `ffi` / `lib`;
they implement the protocols of `_protocols`, as the pure-Python twins do.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Literal

Backend = Literal["native", "python"]

_core_module: ModuleType | None = None
_import_error: str | None = None
_loaded = False


def _load() -> ModuleType | None:
    """Import the compiled core once, on first use (start-up does not pay for it)."""
    global _core_module, _import_error, _loaded
    if not _loaded:
        try:
            # By name: the module is untyped (`Any` inside the glue modules `_lct`, `_prom`).
            _core_module = importlib.import_module("inferguard._core")
        except ImportError as exc:  # no compiler at install time, or a broken build
            _import_error = str(exc)
        _loaded = True
    return _core_module


def _disabled() -> bool:
    return os.environ.get("INFERGUARD_NO_NATIVE", "") not in ("", "0")


def native_available() -> bool:
    """True when the compiled C core was built and imports."""
    return _load() is not None


def native_backend() -> Backend:
    """The backend the library uses now: "native", or "python" if the core is missing
    or `INFERGUARD_NO_NATIVE` is set to anything but "" or "0"."""
    if _disabled() or _load() is None:
        return "python"
    return "native"


def resolve_backend(requested: Backend | None) -> Backend:
    """Turn an optional explicit request into a backend, refusing "native" when absent."""
    if requested is None:
        return native_backend()
    if requested == "native" and _load() is None:
        raise RuntimeError(f"the native backend is not available: {_import_error}")
    if requested not in ("native", "python"):
        raise ValueError(f"unknown backend {requested!r}; expected 'native' or 'python'")
    return requested


def core() -> ModuleType:
    """The compiled module (for the glue modules only); call only after resolve_backend()
    returned "native"."""
    mod = _load()
    if mod is None:
        raise RuntimeError(f"the native backend is not available: {_import_error}")
    return mod
