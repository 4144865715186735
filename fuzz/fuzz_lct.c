/* libFuzzer harness for the .lct scanner (native/lct.c).
 *
 * The input is read two ways: as one frame body (lct_decode_record), and as a stream
 * of frames scanned with tiny column capacities, so FULL/resume, NEED_MORE at every
 * offset and the qualname interner are all exercised.  Every batch of rows is folded by
 * the summary tally (lct_tally.c) twice: into one tally, and into a first-batch tally and
 * a rest tally merged afterwards, which must give the same result.  Built with ASan and
 * UBSan by fuzz/run; any report is a crash. */
#define FUZZ_ROWS 3
#include "fuzz_scan.h"

/* Abort unless two tallies read back the same (the NaNs are all the NAN constant). */
static void same_tally(const lct_tally *a, const lct_tally *b) {
    static int64_t x[6][LCT_MAX_OPS], y[6][LCT_MAX_OPS];
    lct_tally_totals ta, tb;
    lct_tally_read(a, &ta, x[0], x[1], x[2], x[3], x[4], x[5]);
    lct_tally_read(b, &tb, y[0], y[1], y[2], y[3], y[4], y[5]);
    if (memcmp(&ta, &tb, sizeof ta) || memcmp(x, y, sizeof x)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    double tm, tw;
    size_t qo, qn;
    int32_t nk;
    fuzz_columns sc;
    lct_interner *in;
    size_t pos = 0, batch = 0;
    int rc;
    lct_tally *whole, *first, *rest;
    int32_t identity[LCT_MAX_OPS];

    uint8_t *buf = fuzz_copy(data, size);
    if (!buf) return 0;

    rc = lct_decode_record(buf, size, &tm, &tw, &qo, &qn, &nk);
    if (rc != LCT_ROW_MALFORMED && (qo > size || qn > size - qo)) abort();

    in = lct_interner_new();
    whole = lct_tally_new(), first = lct_tally_new(), rest = lct_tally_new();
    if (!in || !whole || !first || !rest) abort();
    fuzz_columns_init(&sc);
    for (;;) {
        size_t before = pos;
        rc = fuzz_scan(buf, size, &pos, in, &sc.cols);
        for (size_t i = 0; i < sc.cols.count; i++) {
            size_t n = 0;
            if (sc.op[i] >= 0 && !lct_interner_name(in, (uint32_t)sc.op[i], &n)) abort();
        }
        if (lct_tally_add(whole, &sc.cols) < 0) abort();
        if (lct_tally_add(batch++ ? rest : first, &sc.cols) < 0) abort();
        if (!fuzz_scan_again(rc, pos, before)) break;
    }
    for (int32_t i = 0; i < LCT_MAX_OPS; i++) identity[i] = i;
    if (lct_tally_merge(first, rest, identity, LCT_MAX_OPS) != 0) abort();
    same_tally(whole, first);
    lct_tally_free(whole), lct_tally_free(first), lct_tally_free(rest);
    /* Interning a name the scan saw must give back the same id. */
    if (lct_interner_size(in) > 0) {
        size_t n = 0;
        const uint8_t *name = lct_interner_name(in, 0, &n);
        if (name && lct_interner_intern(in, name, n) != 0) abort();
    }
    lct_interner_free(in);
    free(buf);
    return 0;
}
