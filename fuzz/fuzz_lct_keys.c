/* libFuzzer harness for ObjectKey extraction (native/lct_keys.c).
 *
 * The input is scanned as a stream of frames (lct_scan); every scanned row is then fed to
 * lct_extract_keys with a tiny key capacity, so FULL/resume lands inside records, and the
 * fingerprints go through a small lct_keytab that overflows.  Invariants: one key row per
 * ObjectKey wrapper the scan counted, rows in order, ids dense.  Build (clang):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Inative \
 *     fuzz/fuzz_lct_keys.c native/lct.c native/lct_keys.c native/utf8.c \
 *     -o fuzz_lct_keys
 *   ./fuzz_lct_keys -dict=fuzz/lct.dict -max_len=65536 CORPUS SEEDS
 */
#define FUZZ_ROWS 64
#include "fuzz_scan.h"

#define ROWS FUZZ_ROWS
#define KEYS 3
#define TAB_KEYS 4
#define TAB_BITS 3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_columns sc;
    int32_t krow[KEYS], kmodel[KEYS], ksalt[KEYS], ids[KEYS];
    uint64_t kfp[KEYS];
    int64_t krank[KEYS], kgroup[KEYS];
    uint8_t kst[KEYS], use[KEYS];
    lct_keys keys;
    uint64_t tab_fps[TAB_KEYS];
    int32_t slots[1 << TAB_BITS];
    lct_keytab tab;
    lct_interner *in;
    lct_keyx *x;
    size_t pos = 0;
    uint8_t *buf = fuzz_copy(data, size);
    if (!buf) return 0;
    in = lct_interner_new();
    x = lct_keyx_new();
    if (!in || !x) abort();
    for (int i = 0; i < (1 << TAB_BITS); i++) slots[i] = -1;
    tab.fps = tab_fps;
    tab.slots = slots;
    tab.bits = TAB_BITS;
    tab.max_keys = TAB_KEYS;
    tab.count = 0;
    fuzz_columns_init(&sc);
    keys.row = krow; keys.fp = kfp; keys.model = kmodel; keys.salt = ksalt;
    keys.kv_rank = krank; keys.group = kgroup; keys.status = kst; keys.capacity = KEYS;
    for (;;) {
        size_t before = pos;
        lct_key_cursor cur = {0, 0};
        int64_t per_row[ROWS] = {0};
        int rc = fuzz_scan(buf, size, &pos, in, &sc.cols);
        for (;;) {
            int kr;
            keys.count = 0;
            kr = lct_extract_keys(buf, size, 0, sc.off, sc.len, sc.st, sc.cols.count, &cur, x,
                                  &keys);
            if (kr < 0) abort();
            for (size_t i = 0; i < keys.count; i++) {
                if (krow[i] < 0 || (size_t)krow[i] >= sc.cols.count) abort();
                if (i && krow[i] < krow[i - 1]) abort();
                per_row[krow[i]]++;
                if (kst[i] == LCT_KEY_OK && kfp[i] == 0) abort();
                if (kst[i] != LCT_KEY_OK && kfp[i] != 0) abort();
                use[i] = kst[i] == LCT_KEY_OK;
            }
            if (lct_keytab_intern(&tab, kfp, use, keys.count, ids) == (size_t)-1) abort();
            for (size_t i = 0; i < keys.count; i++)
                if (ids[i] >= (int32_t)tab.count || ids[i] < -2) abort();
            if (kr == LCT_STOP_END) break;
            if (kr != LCT_STOP_FULL || keys.count != KEYS) abort();
        }
        for (size_t r = 0; r < sc.cols.count; r++)
            if (sc.st[r] != LCT_ROW_MALFORMED && per_row[r] != sc.nkeys[r]) abort();
        if (!fuzz_scan_again(rc, pos, before)) break;
    }
    lct_keyx_free(x);
    lct_interner_free(in);
    free(buf);
    return 0;
}
