/* libFuzzer harness for the events.batch decoder (native/lct_events.c) and the per-key
 * events fold (native/lct_evfold.c).
 *
 * The input is scanned as frames (lct_scan); every scanned row is fed to
 * lct_events_decode with a tiny fingerprint capacity, so the stop/resume path runs, and
 * a name table.  Invariants: progress on every call, fingerprints within capacity, each
 * decoded row's fingerprints and string spans inside what was written / the buffer, the
 * summary columns in range, name ids within the table and naming the span's bytes.  The
 * decoded rows' fingerprints then go through lct_evfold (store / delete on a few tiers,
 * a tiny key bound so the sample level rises): durations within what was asked, counts
 * consistent.  Build (clang):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Inative \
 *     fuzz/fuzz_lct_events.c native/lct.c native/lct_keys.c native/lct_events.c \
 *     native/lct_evfold.c native/intern.c native/utf8.c -o fuzz_lct_events
 */
#define FUZZ_ROWS 64
#include "fuzz_scan.h"

#define ROWS FUZZ_ROWS
#define FPS 5

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_columns sc;
    int64_t rows[ROWS * LCT_EV_COLS], lean[ROWS * LCT_EV_COLS];
    uint64_t fp[FPS];
    lct_interner *in, *names;
    lct_evfold *fold;
    double vals[FPS];
    size_t pos = 0;
    uint8_t *buf = fuzz_copy(data, size);
    if (!buf) return 0;
    in = lct_interner_new();
    names = lct_interner_new();
    fold = lct_evfold_new(size % 4); /* 0..3 keys: the level rises often */
    if (!in || !names || !fold) abort();
    fuzz_columns_init(&sc);
    for (;;) {
        size_t before = pos, first = 0;
        int rc = fuzz_scan(buf, size, &pos, in, &sc.cols);
        while (first < sc.cols.count) {
            size_t fp_n = 99, next;
            next = lct_events_decode(buf, size, 0, sc.off, sc.len, sc.cols.count, first, rows,
                                     fp, FPS, &fp_n, names);
            if (next <= first || next > sc.cols.count || fp_n > FPS) abort();
            for (size_t r = 0; r < next - first; r++) {
                const int64_t *row = rows + LCT_EV_COLS * r;
                if (row[0] != 0 && row[0] != 1) abort();
                if (!row[0]) continue;
                if (row[15] < 0 || row[17] < 0 || (size_t)(row[17] + row[15]) > fp_n) abort();
                for (int j = 0; j < 4; j++) {
                    const int64_t *s = row + 1 + 3 * j;
                    int64_t id = row[21 + j];
                    if (s[0] < 0 || s[0] > 3) abort();
                    if (s[0] == 0 && (s[1] < 0 || s[2] < 0 || (size_t)(s[1] + s[2]) > size))
                        abort();
                    if (id < -1 || (s[0] != 0 && id != -1)) abort();
                    if (id >= 0) {
                        size_t nn;
                        const uint8_t *nm;
                        if (id >= (int64_t)lct_interner_size(names)) abort();
                        nm = lct_interner_name(names, (uint32_t)id, &nn);
                        if (!nm || nn != (size_t)s[2] || memcmp(nm, buf + s[1], nn)) abort();
                    }
                }
                if ((row[18] | row[19]) & ~(int64_t)1) abort();
                if (row[20] < 0 || row[20] > row[15]) abort();
                {
                    int op = 1 + (int)(r & 1);
                    int64_t nv = lct_evfold_batch(fold, op, (int32_t)(r % 3), sc.mono[first + r],
                                                  fp + row[17], (size_t)row[15], vals);
                    int64_t c[6];
                    if (nv < 0 || nv > row[15]) abort();
                    lct_evfold_counts(fold, c);
                    if (c[0] < 0 || c[0] > 64 || c[1] < 0 || c[2] < 0 || c[3] + c[4] < 0)
                        abort();
                }
            }
            {   /* the summary's decode (no fingerprints) over the same rows */
                size_t lean_n = 99, lean_next;
                lean_next = lct_events_decode(buf, size, 0, sc.off, sc.len, sc.cols.count, first,
                                              lean, NULL, 0, &lean_n, names);
                if (lean_next != sc.cols.count || lean_n != 0) abort();
                for (size_t r = 0; r < next - first; r++)
                    if (rows[LCT_EV_COLS * r] && (!lean[LCT_EV_COLS * r] ||
                        memcmp(rows + LCT_EV_COLS * r + 18, lean + LCT_EV_COLS * r + 18,
                               7 * sizeof *rows)))
                        abort();
            }
            first = next;
        }
        if (!fuzz_scan_again(rc, pos, before)) break;
    }
    lct_interner_free(in);
    lct_interner_free(names);
    lct_evfold_free(fold);
    free(buf);
    return 0;
}
