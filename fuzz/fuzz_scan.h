/* What the .lct scan harnesses share: an exact-size copy of the input (a read past its end
 * is an ASan report), scan columns of FUZZ_ROWS rows, and the scan step with its
 * invariants (no error, position within the input, progress whenever the scan stops
 * early).  Define FUZZ_ROWS before including. */
#ifndef FUZZ_SCAN_H
#define FUZZ_SCAN_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lct.h"

#ifndef FUZZ_ROWS
#error "define FUZZ_ROWS (the scan column capacity) before including fuzz_scan.h"
#endif

typedef struct {
    int64_t off[FUZZ_ROWS];
    uint32_t len[FUZZ_ROWS];
    double mono[FUZZ_ROWS], wall[FUZZ_ROWS];
    int32_t op[FUZZ_ROWS], nkeys[FUZZ_ROWS];
    uint8_t st[FUZZ_ROWS];
    lct_columns cols;
} fuzz_columns;

/* Point the columns at their arrays. */
static void fuzz_columns_init(fuzz_columns *c) {
    c->cols.offset = c->off; c->cols.length = c->len;
    c->cols.t_mono = c->mono; c->cols.t_wall = c->wall;
    c->cols.op = c->op; c->cols.nkeys = c->nkeys; c->cols.status = c->st;
    c->cols.capacity = FUZZ_ROWS;
    c->cols.count = 0;
}

/* A heap copy of exactly `size` bytes (one byte for an empty input); NULL without memory. */
static uint8_t *fuzz_copy(const uint8_t *data, size_t size) {
    uint8_t *buf = malloc(size ? size : 1);
    if (buf) memcpy(buf, data, size);
    return buf;
}

/* One lct_scan from *pos into emptied columns; aborts on an error or a position past the
 * input. */
static int fuzz_scan(const uint8_t *buf, size_t size, size_t *pos, lct_interner *in,
                     lct_columns *cols) {
    int rc;
    cols->count = 0;
    rc = lct_scan(buf, size, pos, 0, in, cols);
    if (rc < 0 || *pos > size) abort();
    return rc;
}

/* Whether to scan again: the scan stopped early (columns full, or a malformed frame
 * skipped), which must have made progress from `before`. */
static int fuzz_scan_again(int rc, size_t pos, size_t before) {
    if (rc != LCT_STOP_FULL && rc != LCT_STOP_MALFORMED) return 0;
    if (pos == before) abort(); /* no progress */
    return 1;
}

#endif
