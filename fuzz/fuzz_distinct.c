/* libFuzzer harness for the distinct-rows kernel (native/distinct.c).
 *
 * The input is a table: a flags byte (bit 0: compare items as a sorted multiset), then per
 * row 4 bytes (head, first, count, and a byte that sometimes pushes first/count out of
 * range), then the items, one signed byte each.  Invariants: a refused table leaves the
 * output untouched; an accepted one flags exactly the rows whose key (head, items) did not
 * occur in an earlier row, checked against a quadratic walk.
 * Build (clang):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Inative \
 *     fuzz/fuzz_distinct.c native/distinct.c -o fuzz_distinct
 *   ./fuzz_distinct -max_len=4096 CORPUS
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

#define MAXROWS 64

static int cmp(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Same key: equal heads and equal item sequences (sorted copies when `sorted`). */
static int same(const int64_t *items, int64_t fa, int64_t ca, int64_t fb, int64_t cb,
                int sorted) {
    if (ca != cb)
        return 0;
    int64_t a[256], b[256];
    memcpy(a, items + fa, (size_t)ca * sizeof *a);
    memcpy(b, items + fb, (size_t)cb * sizeof *b);
    if (sorted) {
        qsort(a, (size_t)ca, sizeof *a, cmp);
        qsort(b, (size_t)cb, sizeof *b, cmp);
    }
    return memcmp(a, b, (size_t)ca * sizeof *a) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    int sorted = data[0] & 1;
    size_t at = 1;
    int64_t head[MAXROWS], first[MAXROWS], count[MAXROWS];
    int64_t n = 0;
    size_t rows = (size - 1) / 5 < MAXROWS ? (size - 1) / 5 : MAXROWS;
    for (; (size_t)n < rows; n++, at += 4) {
        head[n] = (int8_t)data[at] % 4;
        first[n] = data[at + 1] % 64;
        count[n] = data[at + 2] % 16;
        uint8_t odd = data[at + 3];
        if (odd == 0xFF)
            first[n] = -1;
        else if (odd == 0xFE)
            count[n] = -1;
        else if (odd == 0xFD)
            first[n] = INT64_MAX;
    }
    int64_t n_items = (int64_t)(size - at);
    if (n_items > 255)
        n_items = 255;
    int64_t items[256];
    for (int64_t i = 0; i < n_items; i++)
        items[i] = (int8_t)data[at + (size_t)i] % 3;
    uint8_t out[MAXROWS];
    memset(out, 0xAA, sizeof out);
    int rc = ig_distinct_rows(head, first, count, n, items, n_items, sorted, out);
    int valid = 1;
    for (int64_t i = 0; i < n; i++)
        if (count[i] < 0 || first[i] < 0 || first[i] > n_items - count[i])
            valid = 0;
    if (rc != 0) {
        if (valid || rc != -1)
            abort(); /* a valid table refused, or memory ran out on a tiny one */
        for (int64_t i = 0; i < MAXROWS; i++)
            if (out[i] != 0xAA)
                abort(); /* a refused table wrote output */
        return 0;
    }
    if (!valid)
        abort();
    for (int64_t i = 0; i < n; i++) {
        int fresh = 1;
        for (int64_t j = 0; j < i && fresh; j++)
            if (head[j] == head[i] && same(items, first[j], count[j], first[i], count[i], sorted))
                fresh = 0;
        if (out[i] != fresh)
            abort();
    }
    return 0;
}
