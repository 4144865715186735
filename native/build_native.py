"""cffi build script (out-of-line API mode): declarations and sources only.

All logic lives in the C files beside this script and in the Python modules of
`inferguard`; this file only tells cffi what to compile into `inferguard._core`.
"""

from __future__ import annotations

import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = ["lct.c", "lct_keys.c", "prom.c", "utf8.c"]

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
    int32_t lct_interner_intern(lct_interner *in, const uint8_t *s, size_t n);
    int lct_scan(const uint8_t *buf, size_t len, size_t *pos, int64_t base,
                 lct_interner *in, lct_columns *cols);
    int lct_decode_record(const uint8_t *body, size_t n, double *t_mono, double *t_wall,
                          size_t *qual_off, size_t *qual_len, int32_t *nkeys);

    #define LCT_KEY_OK 0
    #define LCT_KEY_MALFORMED 1
    #define LCT_NAME_NONE -1
    #define LCT_NAME_UNINTERNED -2
    typedef struct lct_keyx lct_keyx;
    typedef struct {
        int32_t *row;
        uint64_t *fp;
        int32_t *model;
        int32_t *salt;
        int64_t *kv_rank;
        int64_t *group;
        uint8_t *status;
        size_t capacity;
        size_t count;
    } lct_keys;
    typedef struct {
        size_t row;
        size_t at;
    } lct_key_cursor;
    typedef struct {
        uint64_t *fps;
        int32_t *slots;
        uint32_t bits;
        uint32_t max_keys;
        uint32_t count;
    } lct_keytab;
    lct_keyx *lct_keyx_new(void);
    void lct_keyx_free(lct_keyx *x);
    lct_interner *lct_keyx_names(lct_keyx *x, int which);
    int lct_extract_keys(const uint8_t *buf, size_t len, int64_t base, const int64_t *offset,
                         const uint32_t *length, const uint8_t *status, size_t nrows,
                         lct_key_cursor *cur, lct_keyx *x, lct_keys *out);
    uint64_t lct_hash_bytes(const uint8_t *p, size_t n, uint64_t seed);
    uint64_t lct_key_fingerprint(const uint8_t *hash, size_t hash_len, const uint8_t *model,
                                 size_t model_len, int64_t kv_rank, int64_t group,
                                 const uint8_t *salt, size_t salt_len, int has_salt);
    size_t lct_keytab_intern(lct_keytab *t, const uint64_t *fp, const uint8_t *use, size_t n,
                             int32_t *out);
    """
)

# --- Prometheus text (prom.h) ---
ffibuilder.cdef(
    """
    #define PROM_OPENMETRICS 1
    #define PROM_K_SAMPLE 0
    #define PROM_K_HELP 1
    #define PROM_K_TYPE 2
    #define PROM_K_UNIT 3
    #define PROM_K_COMMENT 4
    #define PROM_K_BLANK 5
    #define PROM_K_EOF 6
    #define PROM_K_ERROR 7
    #define PROM_STOP_END 0
    #define PROM_STOP_FULL 1
    #define PROM_NAMES 0
    #define PROM_STRS 1

    typedef struct prom_state prom_state;
    typedef struct {
        int64_t *line;
        uint8_t *kind;
        int32_t *name;
        int64_t *lab_first;
        int64_t *lab_count;
        double *value;
        double *ts;
        int64_t *aux_off;
        int64_t *aux_len;
        int64_t *err_col;
        uint8_t *err;
        size_t capacity;
        size_t count;
    } prom_rows;
    typedef struct {
        int32_t *name;
        int32_t *value;
        size_t capacity;
        size_t count;
    } prom_labels;

    prom_state *prom_state_new(void);
    void prom_state_free(prom_state *st);
    size_t prom_state_count(const prom_state *st, int which);
    size_t prom_state_bytes(const prom_state *st, int which);
    void prom_state_export(const prom_state *st, int which, uint8_t *bytes, int64_t *off,
                           int64_t *len);
    void prom_state_first_rows(const prom_state *st, int64_t *out);
    int prom_scan(const uint8_t *buf, size_t len, size_t *pos, int64_t *line, unsigned flags,
                  prom_state *st, prom_rows *rows, prom_labels *labels);
    int prom_parse_number(const uint8_t *s, size_t n, int specials, double *out);
    int64_t prom_utf8_error(const uint8_t *s, size_t n);
    """
)

_extra_cflags = os.environ.get("INFERGUARD_CFLAGS", "").split()
_extra_ldflags = os.environ.get("INFERGUARD_LDFLAGS", "").split()

ffibuilder.set_source(
    "inferguard._core",
    '#include "lct.h"\n#include "prom.h"',
    sources=[os.path.relpath(os.path.join(HERE, s)) for s in SOURCES],
    include_dirs=[os.path.relpath(HERE)],
    extra_compile_args=["-O2", "-std=c99", "-Wall", "-Wextra", *_extra_cflags],
    extra_link_args=_extra_ldflags,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
