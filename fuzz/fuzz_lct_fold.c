/* libFuzzer harness for the key fold and the read-context matcher (native/lct_fold.c).
 *
 * The input drives a tiny per-key state (at most 8 keys, 3 classes) through pieces of
 * key rows whose row, role, status, id and class bytes come straight from the input, so
 * out-of-range values are common; then through a stream of context enters and exits over
 * a few key sets.  Invariants: a refused piece changes nothing; examples stay sorted,
 * distinct and at most LCT_FOLD_EXAMPLES; open contexts = enters - closes - untracked.
 * Build (clang):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Inative \
 *     fuzz/fuzz_lct_fold.c native/lct_fold.c -o fuzz_lct_fold
 *   ./fuzz_lct_fold -max_len=4096 CORPUS
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

#define KEYS 8
#define CLASSES 3
#define NREC 6
#define ROWS 16

typedef struct {
    lct_keyrow rows[KEYS];
    int64_t first_bucket[KEYS];
    int32_t cls[KEYS];
    uint8_t hll[5 * 16384];
    int64_t ex_off[LCT_FOLD_KINDS * LCT_FOLD_CLASSES * LCT_FOLD_EXAMPLES];
    uint8_t ex_n[LCT_FOLD_KINDS * LCT_FOLD_CLASSES];
    int64_t class_roles[CLASSES * 8];
} state;

static state S, snap;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lct_keystate ks;
    size_t at = 0;
    memset(&S, 0, sizeof S);
    ks.rows = S.rows;
    ks.cls = S.cls;
    ks.first_bucket = S.first_bucket;
    ks.hll = NULL;
    ks.ex_off = S.ex_off;
    ks.ex_n = S.ex_n;
    ks.class_roles = S.class_roles;
    ks.nclasses = CLASSES;
    ks.max_keys = KEYS;
    ks.count = 0;
    ks.level = 0;
    /* pieces: [n][n x (row, role, status, id, cls, fp byte)] while bytes last; byte 0xff
     * as n ends them */
    int pieces = 0;
    while (at < size && data[at] != 0xff && pieces++ < 8) { /* few pieces: fast inputs */
        size_t n = data[at++] % (ROWS + 1);
        int32_t row[ROWS], ids[ROWS], cls[ROWS];
        uint64_t fp[ROWS], keysets[NREC] = {0};
        uint8_t status[ROWS], rrole[NREC];
        int64_t offset[NREC], tb[NREC];
        lct_fold_piece p;
        int rc;
        if (size - at < n * 6 + NREC) break;
        for (size_t r = 0; r < NREC; r++) {
            rrole[r] = data[at++] % 9; /* 8: out of range */
            offset[r] = (int64_t)(r * 100 + (size_t)at);
            tb[r] = (r & 1) ? INT64_MIN : (int64_t)r;
        }
        for (size_t i = 0; i < n; i++) {
            row[i] = (int32_t)(data[at++] % (NREC + 2)) - 1; /* -1 .. NREC: two bad */
            at++; /* spare (kept for corpus stability) */
            status[i] = data[at++] & 1;
            ids[i] = (int32_t)(data[at++] % (KEYS + 3)) - 2; /* -2 .. KEYS */
            cls[i] = (int32_t)(data[at++] % (CLASSES + 2)) - 1;
            fp[i] = (uint64_t)data[at++] * 0x9e3779b97f4a7c15ULL;
        }
        if (at < size && (data[at] & 1)) ks.hll = S.hll;
        if (at < size && (data[at] & 2) && ks.level < 64) ks.level++;
        ks.count = (uint32_t)(at < size ? data[at] % (KEYS + 1) : KEYS);
        if (at < size) at++;
        p.n = n;
        p.row = row;
        p.fp = fp;
        p.status = status;
        p.ids = ids;
        p.cls = cls;
        p.before = ks.count / 2;
        p.nrec = NREC;
        p.rrole = rrole;
        p.offset = offset;
        p.tb = tb;
        p.keysets = (n & 1) ? keysets : NULL;
        memcpy(&snap, &S, sizeof S);
        rc = lct_fold_keys(&ks, &p);
        if (rc != 0 && memcmp(&snap, &S, sizeof S) != 0) abort(); /* refused: unchanged */
        for (size_t k = 0; k < (size_t)LCT_FOLD_KINDS * LCT_FOLD_CLASSES; k++) {
            const int64_t *a = S.ex_off + k * LCT_FOLD_EXAMPLES;
            if (S.ex_n[k] > LCT_FOLD_EXAMPLES) abort();
            for (unsigned j = 1; j < S.ex_n[k]; j++)
                if (a[j - 1] >= a[j]) abort();
        }
    }
    if (at < size) at++;
    {
        lct_ctx *c;
        uint64_t keys[64];
        uint8_t ent[64];
        int64_t off[64], alone[64], counts[3], open_off[64];
        double t[64], open_t[64];
        int64_t enters = 0, exits = 0, nalone = 0;
        size_t m = 0, got;
        if (at >= size) return 0;
        if (size - at > 1024) size = at + 1024; /* a bounded stream: fast inputs */
        c = lct_ctx_new();
        if (!c) return 0;
        for (; at < size; at++) {
            keys[m] = (uint64_t)(data[at] >> 1) % 5;
            ent[m] = data[at] & 1;
            off[m] = (int64_t)at;
            t[m] = (double)at;
            if (ent[m]) enters++;
            else exits++;
            if (++m == 64 || at + 1 == size) {
                got = lct_ctx_add(c, m, keys, ent, off, t, alone);
                if (got > m) abort();
                nalone += (int64_t)got;
                m = 0;
            }
        }
        lct_ctx_counts(c, counts);
        /* every enter is open, untracked or closed; every exit closed one or was alone */
        if (counts[2] != nalone || counts[0] + counts[1] + (exits - nalone) != enters) abort();
        got = lct_ctx_open(c, open_off, open_t, 64);
        if ((int64_t)got != (counts[0] < 64 ? counts[0] : 64)) abort();
        lct_ctx_free(c);
    }
    return 0;
}
