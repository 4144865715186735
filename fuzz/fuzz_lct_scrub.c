/* libFuzzer harness for the scrub plan and its fingerprint table (native/lct_scrub.c).
 *
 * The input is planned as a stream of frames (lct_scrub_scan) with tiny capacities, so
 * LCT_STOP_FULL lands between every few frames, and each planned piece is patched in
 * place through a fingerprint table of 3 entries (so it fills up).  Invariants: every
 * frame is planned exactly once, fast or slow, as lct_scrub_frame says on its own; a
 * fast frame's bins lie inside its body, in order, apart; patching changes bytes only
 * inside bins, and the same raw value always gets the same fingerprint (the table and
 * the direct computation agree).  Build (clang):
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
    lct_scrub_plan plan;
    lct_fptab *tab, *direct;
    size_t pos = 0, frames_fast = 0, frames_slow = 0;
    uint8_t *buf = malloc(size ? size : 1), *orig = malloc(size ? size : 1);
    if (!buf || !orig) abort();
    memcpy(buf, data, size); /* exact-size copies: reads past the end are ASan reports */
    memcpy(orig, data, size);
    tab = lct_fptab_new(KEY, sizeof KEY, 3);
    direct = lct_fptab_new(KEY, sizeof KEY, 0); /* remembers nothing: always computes */
    if (!tab || !direct) abort();
    plan.bin_off = bin_off;
    plan.bin_len = bin_len;
    plan.bin_cap = BINS;
    plan.slow_off = slow_off;
    plan.slow_cap = SLOW;
    for (;;) {
        size_t before = pos, p, b = 0, s = 0;
        int rc;
        plan.nbins = plan.nslow = plan.nfast = 0;
        rc = lct_scrub_scan(buf, size, &pos, &plan);
        if (rc != LCT_STOP_END && rc != LCT_STOP_NEED_MORE && rc != LCT_STOP_FULL) abort();
        if (pos > size || pos < before) abort();
        if (rc == LCT_STOP_FULL && pos == before) abort(); /* a fresh plan always moves */
        /* walk the planned frames again, one by one, against the plan */
        for (p = before; p < pos;) {
            uint32_t n;
            int64_t got;
            if (size - p < 4) abort();
            n = be32(buf + p);
            if (size - p - 4 < n) abort();
            got = lct_scrub_frame(orig + p + 4, n, fb_off, fb_len, FRAME_BINS);
            if (s < plan.nslow && (size_t)slow_off[s] == p) {
                if (got >= 0 && got <= BINS) abort(); /* fast and fitting: not slow */
                s++;
                frames_slow++;
            } else {
                if (got < 0 || (size_t)got > BINS) abort();
                for (int64_t i = 0; i < got; i++, b++) {
                    if (b >= plan.nbins) abort();
                    if (i < FRAME_BINS && (bin_off[b] != (int64_t)(p + 4) + fb_off[i] ||
                                           bin_len[b] != fb_len[i]))
                        abort();
                    if (bin_off[b] < (int64_t)(p + 4) ||
                        (size_t)bin_off[b] + bin_len[b] > p + 4 + n)
                        abort();
                    if (b && bin_off[b] < bin_off[b - 1] + (int64_t)bin_len[b - 1]) abort();
                }
                frames_fast++;
            }
            p += 4 + (size_t)n;
        }
        if (p != pos || b != plan.nbins || s != plan.nslow) abort();
        /* patch in place; only bin bytes may change, each to its fingerprint */
        if (lct_fptab_patch(tab, buf, size, buf, size, bin_off, bin_len, plan.nbins) != 0)
            abort();
        for (size_t i = 0; i < plan.nbins; i++) {
            size_t o = (size_t)bin_off[i], m = bin_len[i];
            uint8_t *want = malloc(m ? m : 1);
            if (!want) abort();
            lct_fptab_fingerprint(direct, orig + o, m, want);
            if (m && memcmp(buf + o, want, m) != 0) abort();
            free(want);
        }
        if (rc != LCT_STOP_FULL) break;
    }
    {   /* outside bins, nothing changed */
        size_t q = 0;
        pos = 0;
        for (;;) {
            int rc;
            plan.nbins = plan.nslow = plan.nfast = 0;
            rc = lct_scrub_scan(orig, size, &pos, &plan);
            for (size_t i = 0; i < plan.nbins; i++) {
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
        if (lct_fptab_patch(tab, buf, size, buf, size, bad_off, bad_len, 1) != -1) abort();
        if (lct_fptab_patch(tab, buf, size, buf, size, bad_off + 1, bad_len + 1, 1) != -1)
            abort();
    }
    (void)frames_fast;
    (void)frames_slow;
    lct_fptab_free(tab);
    lct_fptab_free(direct);
    free(buf);
    free(orig);
    return 0;
}
