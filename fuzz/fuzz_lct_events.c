/* libFuzzer harness for the events.batch decoder (native/lct_events.c).
 *
 * The input is scanned as frames (lct_scan); every scanned row is fed to
 * lct_events_decode with a tiny fingerprint capacity, so the stop/resume path runs.
 * Invariants: progress on every call, fingerprints within capacity, each decoded row's
 * fingerprints and string spans inside what was written / the buffer.  Build (clang):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Inative \
 *     fuzz/fuzz_lct_events.c native/lct.c native/lct_keys.c native/lct_events.c \
 *     native/intern.c native/utf8.c -o fuzz_lct_events
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lct.h"

#define ROWS 64
#define FPS 5

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int64_t off[ROWS];
    uint32_t len[ROWS];
    double mono[ROWS], wall[ROWS];
    int32_t op[ROWS], nkeys[ROWS];
    uint8_t st[ROWS];
    int64_t rows[ROWS * LCT_EV_COLS];
    uint64_t fp[FPS];
    lct_columns cols;
    lct_interner *in;
    size_t pos = 0;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size); /* exact-size copy: reads past the end are ASan reports */
    in = lct_interner_new();
    if (!in) abort();
    cols.offset = off; cols.length = len; cols.t_mono = mono; cols.t_wall = wall;
    cols.op = op; cols.nkeys = nkeys; cols.status = st; cols.capacity = ROWS;
    for (;;) {
        size_t before = pos, first = 0;
        int rc;
        cols.count = 0;
        rc = lct_scan(buf, size, &pos, 0, in, &cols);
        if (rc < 0 || pos > size) abort();
        while (first < cols.count) {
            size_t fp_n = 99, next;
            next = lct_events_decode(buf, size, 0, off, len, cols.count, first, rows, fp, FPS,
                                     &fp_n);
            if (next <= first || next > cols.count || fp_n > FPS) abort();
            for (size_t r = 0; r < next - first; r++) {
                const int64_t *row = rows + LCT_EV_COLS * r;
                if (row[0] != 0 && row[0] != 1) abort();
                if (!row[0]) continue;
                if (row[15] < 0 || row[17] < 0 || (size_t)(row[17] + row[15]) > fp_n) abort();
                for (int j = 0; j < 4; j++) {
                    const int64_t *s = row + 1 + 3 * j;
                    if (s[0] < 0 || s[0] > 3) abort();
                    if (s[0] == 0 && (s[1] < 0 || s[2] < 0 || (size_t)(s[1] + s[2]) > size))
                        abort();
                }
            }
            first = next;
        }
        if (rc == LCT_STOP_FULL || rc == LCT_STOP_MALFORMED) {
            if (pos == before) abort();
            continue;
        }
        break;
    }
    lct_interner_free(in);
    free(buf);
    return 0;
}
