"""Build hook: compile the cffi extension in native/, but never fail the install.

When no C compiler (or no Python headers) is present, the package installs without
`inferguard._core` and runs on its pure-Python path; `inferguard.native_backend()` says so.

The extension uses only CPython's limited API (cffi compiles with Py_LIMITED_API and names it
`_core.abi3.so`), so the wheel is tagged `cp310-abi3`: one wheel for CPython 3.10 and later.
The metadata (version included, read from inferguard/_version.py) lives in pyproject.toml.
"""

from __future__ import annotations

import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """build_ext that turns a failed compile into a warning instead of a failed install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # any build failure means "no native backend"
            self._warn(exc)

    def build_extension(self, ext) -> None:  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as exc:  # likewise: a failed extension is a warning
            self._warn(exc)

    @staticmethod
    def _warn(exc: BaseException) -> None:
        sys.stderr.write(
            f"WARNING: inferguard native extension not built ({exc}); "
            "the pure-Python backend will be used.\n"
        )


setup(
    cffi_modules=["native/build_native.py:ffibuilder"],
    cmdclass={"build_ext": OptionalBuildExt},
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
