"""cffi build script (out-of-line API mode): declarations and sources only.

All logic lives in the C files beside this script and in the Python modules of
`inferguard`; this file only tells cffi what to compile into `inferguard._core`.
"""

from __future__ import annotations

import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = ["lct.c"]

ffibuilder = FFI()

# --- .lct trace scanning (lct.h) ---
ffibuilder.cdef(
    """
    #define LCT_ROW_OK 0
    #define LCT_ROW_MALFORMED 1
    #define LCT_ROW_OP_TABLE_FULL 2
    #define LCT_ROW_QUALNAME_LONG 3
    #define LCT_STOP_END 0
    #define LCT_STOP_NEED_MORE 1
    #define LCT_STOP_FULL 2
    #define LCT_STOP_MALFORMED 3
    #define LCT_MAX_OPS 4096
    #define LCT_MAX_QUALNAME 1024

    typedef struct lct_interner lct_interner;
    typedef struct {
        int64_t *offset;
        uint32_t *length;
        double *t_mono;
        double *t_wall;
        int32_t *op;
        int32_t *nkeys;
        uint8_t *status;
        size_t capacity;
        size_t count;
    } lct_columns;

    lct_interner *lct_interner_new(void);
    void lct_interner_free(lct_interner *in);
    uint32_t lct_interner_size(const lct_interner *in);
    const uint8_t *lct_interner_name(const lct_interner *in, uint32_t id, size_t *len);
    int lct_scan(const uint8_t *buf, size_t len, size_t *pos, int64_t base,
                 lct_interner *in, lct_columns *cols);
    int lct_decode_record(const uint8_t *body, size_t n, double *t_mono, double *t_wall,
                          size_t *qual_off, size_t *qual_len, int32_t *nkeys);
    """
)

_extra_cflags = os.environ.get("INFERGUARD_CFLAGS", "").split()
_extra_ldflags = os.environ.get("INFERGUARD_LDFLAGS", "").split()

ffibuilder.set_source(
    "inferguard._core",
    '#include "lct.h"',
    sources=[os.path.relpath(os.path.join(HERE, s)) for s in SOURCES],
    include_dirs=[os.path.relpath(HERE)],
    extra_compile_args=["-O2", "-std=c99", "-Wall", "-Wextra", *_extra_cflags],
    extra_link_args=_extra_ldflags,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
