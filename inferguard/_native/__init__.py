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

try:
    # By name: the module is untyped (`Any` inside the glue modules `_lct` and `_prom`).
    _core_module: ModuleType | None = importlib.import_module("inferguard._core")
    _import_error: str | None = None
except ImportError as exc:  # no compiler at install time, or a broken build
    _core_module = None
    _import_error = str(exc)


def native_available() -> bool:
    """True when the compiled C core was built and imports."""
    return _core_module is not None


def native_backend() -> Backend:
    """The backend the library uses now: "native", or "python" if the core is missing
    or `INFERGUARD_NO_NATIVE` is set to anything but "" or "0"."""
    if _core_module is None or os.environ.get("INFERGUARD_NO_NATIVE", "") not in ("", "0"):
        return "python"
    return "native"


def resolve_backend(requested: Backend | None) -> Backend:
    """Turn an optional explicit request into a backend, refusing "native" when absent."""
    if requested is None:
        return native_backend()
    if requested == "native" and _core_module is None:
        raise RuntimeError(f"the native backend is not available: {_import_error}")
    if requested not in ("native", "python"):
        raise ValueError(f"unknown backend {requested!r}; expected 'native' or 'python'")
    return requested


def core() -> ModuleType:
    """The compiled module (for the glue modules only); call only after resolve_backend()
    returned "native"."""
    if _core_module is None:
        raise RuntimeError(f"the native backend is not available: {_import_error}")
    return _core_module
