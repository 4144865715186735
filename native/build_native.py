"""cffi build script (out-of-line API mode): the one API header, and the sources.

The C API is declared once, in inferguard_api.h beside this script; it is read from disk
and handed to cdef() as it is. All logic lives in the C files and in `inferguard`.
"""

from __future__ import annotations

import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = ["lct.c", "lct_keys.c", "lct_fold.c", "lct_events.c", "lct_evfold.c", "lct_scrub.c",
           "lct_tally.c", "prom.c", "prom_brief.c",
           "prom_facts.c", "distinct.c", "fsum.c", "intern.c", "utf8.c"]

ffibuilder = FFI()
with open(os.path.join(HERE, "inferguard_api.h"), encoding="utf-8") as f:
    ffibuilder.cdef(f.read())
ffibuilder.set_source(
    "inferguard._core",
    '#include "api.h"',
    sources=[os.path.relpath(os.path.join(HERE, s)) for s in SOURCES],
    include_dirs=[os.path.relpath(HERE)],
    extra_compile_args=["-O2", "-std=c99", "-Wall", "-Wextra",
                        *os.environ.get("INFERGUARD_CFLAGS", "").split()],
    extra_link_args=os.environ.get("INFERGUARD_LDFLAGS", "").split(),
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
