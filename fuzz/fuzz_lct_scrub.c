/* libFuzzer harness for the scrub plan and its fingerprint table (native/lct_scrub.c).
 *
 * The input is planned as a stream of frames (lct_scrub_scan) with tiny capacities, so
 * LCT_STOP_FULL lands between every few frames, and each planned piece is patched in
 * place through a fingerprint table of 3 entries (so it fills up).  Invariants: every
 * frame is planned exactly once, fast or slow, as lct_scrub_frame says on its own (with
 * the same counts); a fast frame's items lie inside its body, in order, apart, non-empty;
 * patching changes bytes only inside items, each to what it must become (a bin: its
 * fingerprint; hex: the lowercase hex of the fingerprint of the bytes it spells; token
 * ids: zeros), the table and the direct computation agreeing.  Build (clang):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Inative \
 *     fuzz/fuzz_lct_scrub.c native/lct_scrub.c native/utf8.c -o fuzz_lct_scrub
 *   ./fuzz_lct_scrub -dict=fuzz/lct.dict -max_len=65536 CORPUS SEEDS
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

#define BINS 4
#define SLOW 2
#define FRAME_BINS 64

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint8_t KEY[7] = {'f', 'u', 'z', 'z', 'k', 'e', 'y'};
    int64_t bin_off[BINS], slow_off[SLOW], fb_off[FRAME_BINS];
    uint32_t bin_len[BINS], fb_len[FRAME_BINS];
    uint8_t bin_kind[BINS], fb_kind[FRAME_BINS];
    uint64_t hashes = 0, tokens = 0;
    lct_scrub_plan plan;
    lct_fptab *tab, *direct, *big;
    size_t pos = 0, frames_fast = 0, frames_slow = 0;
    uint8_t *buf = malloc(size ? size : 1), *orig = malloc(size ? size : 1);
    uint8_t *copy = malloc(size ? size : 1);
    if (!buf || !orig || !copy) abort();
    memcpy(buf, data, size); /* exact-size copies: reads past the end are ASan reports */
    memcpy(orig, data, size);
    tab = lct_fptab_new(KEY, sizeof KEY, 3);
    direct = lct_fptab_new(KEY, sizeof KEY, 0); /* remembers nothing: always computes */
    big = lct_fptab_new(KEY, sizeof KEY, 1u << 20); /* grows (and rehashes) as it fills */
    if (!tab || !direct || !big) abort();
    plan.item_off = bin_off;
    plan.item_len = bin_len;
    plan.item_kind = bin_kind;
    plan.item_cap = BINS;
    plan.slow_off = slow_off;
    plan.slow_cap = SLOW;
    for (;;) {
        size_t before = pos, p, b = 0, s = 0;
        int rc;
        plan.nitems = plan.nslow = plan.nfast = 0;
        plan.nhashes = plan.ntokens = 0;
        hashes = tokens = 0;
        rc = lct_scrub_scan(buf, size, &pos, &plan);
        if (rc != LCT_STOP_END && rc != LCT_STOP_NEED_MORE && rc != LCT_STOP_FULL) abort();
        if (pos > size || pos < before) abort();
        if (rc == LCT_STOP_FULL && pos == before) abort(); /* a fresh plan always moves */
        /* walk the planned frames again, one by one, against the plan */
        for (p = before; p < pos;) {
            uint32_t n;
            int64_t got;
            uint64_t fh = 0, ft = 0;
            if (size - p < 4) abort();
            n = be32(buf + p);
            if (size - p - 4 < n) abort();
            got = lct_scrub_frame(orig + p + 4, n, fb_off, fb_len, fb_kind, FRAME_BINS, &fh,
                                  &ft);
            if (s < plan.nslow && (size_t)slow_off[s] == p) {
                if (got >= 0 && got <= BINS) abort(); /* fast and fitting: not slow */
                s++;
                frames_slow++;
            } else {
                if (got < 0 || (size_t)got > BINS) abort();
                hashes += fh;
                tokens += ft;
                for (int64_t i = 0; i < got; i++, b++) {
                    if (b >= plan.nitems) abort();
                    if (i < FRAME_BINS && (bin_off[b] != (int64_t)(p + 4) + fb_off[i] ||
                                           bin_len[b] != fb_len[i] || bin_kind[b] != fb_kind[i]))
                        abort();
                    if (bin_len[b] == 0 || bin_kind[b] > LCT_SCRUB_ZERO) abort();
                    if (bin_kind[b] == LCT_SCRUB_HEX && bin_len[b] % 2) abort();
                    if (bin_off[b] < (int64_t)(p + 4) ||
                        (size_t)bin_off[b] + bin_len[b] > p + 4 + n)
                        abort();
                    if (b && bin_off[b] < bin_off[b - 1] + (int64_t)bin_len[b - 1]) abort();
                }
                frames_fast++;
            }
            p += 4 + (size_t)n;
        }
        if (p != pos || b != plan.nitems || s != plan.nslow) abort();
        if (hashes != plan.nhashes || tokens != plan.ntokens) abort();
        /* patch in place; only item bytes may change, each to what it must become */
        memcpy(copy, buf, size);
        if (lct_fptab_patch(tab, buf, size, buf, size, bin_off, bin_len, bin_kind,
                            plan.nitems) != 0)
            abort();
        /* the same through a growing table, on a copy: the same bytes */
        if (lct_fptab_patch(big, copy, size, copy, size, bin_off, bin_len, bin_kind,
                            plan.nitems) != 0 || memcmp(copy, buf, size) != 0)
            abort();
        for (size_t i = 0; i < plan.nitems; i++) {
            size_t o = (size_t)bin_off[i], m = bin_len[i];
            uint8_t *want = malloc(m), *raw = malloc(m);
            if (!want || !raw) abort();
            if (bin_kind[i] == LCT_SCRUB_ZERO) {
                memset(want, 0, m);
            } else if (bin_kind[i] == LCT_SCRUB_HEX) {
                static const char hx[] = "0123456789abcdef";
                for (size_t j = 0; j < m / 2; j++) {
                    const char *a = strchr(hx, orig[o + 2 * j] | 0x20);
                    const char *c = strchr(hx, orig[o + 2 * j + 1] | 0x20);
                    if (!a || !c || !orig[o + 2 * j] || !orig[o + 2 * j + 1]) abort();
                    raw[j] = (uint8_t)((a - hx) << 4 | (c - hx));
                }
                lct_fptab_fingerprint(direct, raw, m / 2, raw + m / 2);
                for (size_t j = 0; j < m / 2; j++) {
                    want[2 * j] = (uint8_t)hx[raw[m / 2 + j] >> 4];
                    want[2 * j + 1] = (uint8_t)hx[raw[m / 2 + j] & 15];
                }
            } else {
                lct_fptab_fingerprint(direct, orig + o, m, want);
            }
            if (memcmp(buf + o, want, m) != 0) abort();
            free(want);
            free(raw);
        }
        if (rc != LCT_STOP_FULL) break;
    }
    {   /* outside bins, nothing changed */
        size_t q = 0;
        pos = 0;
        for (;;) {
            int rc;
            plan.nitems = plan.nslow = plan.nfast = 0;
            rc = lct_scrub_scan(orig, size, &pos, &plan);
            for (size_t i = 0; i < plan.nitems; i++) {
                size_t o = (size_t)bin_off[i];
                if (o < q) abort();
                if (memcmp(buf + q, orig + q, o - q) != 0) abort();
                q = o + bin_len[i];
            }
            if (rc != LCT_STOP_FULL) break;
        }
        if (q > size || memcmp(buf + q, orig + q, size - q) != 0) abort();
    }
    /* out-of-range bins are refused without a read */
    {
        int64_t bad_off[2] = {(int64_t)size, -1};
        uint32_t bad_len[2] = {1, 0};
        uint8_t bad_kind[2] = {LCT_SCRUB_HEX, LCT_SCRUB_BIN};
        if (lct_fptab_patch(tab, buf, size, buf, size, bad_off, bad_len, bad_kind, 1) != -1)
            abort();
        if (lct_fptab_patch(tab, buf, size, buf, size, bad_off + 1, bad_len + 1, bad_kind + 1,
                            1) != -1)
            abort();
    }
    (void)frames_fast;
    (void)frames_slow;
    lct_fptab_free(tab);
    lct_fptab_free(direct);
    lct_fptab_free(big);
    free(copy);
    free(buf);
    free(orig);
    return 0;
}
