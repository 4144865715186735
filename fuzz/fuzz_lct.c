/* libFuzzer harness for the .lct scanner (native/lct.c).
 *
 * The input is read two ways: as one frame body (lct_decode_record), and as a stream
 * of frames scanned with tiny column capacities, so FULL/resume, NEED_MORE at every
 * offset and the qualname interner are all exercised.  Built with ASan and UBSan by
 * fuzz/run; any report is a crash. */
#define FUZZ_ROWS 3
#include "fuzz_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    double tm, tw;
    size_t qo, qn;
    int32_t nk;
    fuzz_columns sc;
    lct_interner *in;
    size_t pos = 0;
    int rc;

    uint8_t *buf = fuzz_copy(data, size);
    if (!buf) return 0;

    rc = lct_decode_record(buf, size, &tm, &tw, &qo, &qn, &nk);
    if (rc != LCT_ROW_MALFORMED && (qo > size || qn > size - qo)) abort();

    in = lct_interner_new();
    if (!in) { free(buf); return 0; }
    fuzz_columns_init(&sc);
    for (;;) {
        size_t before = pos;
        rc = fuzz_scan(buf, size, &pos, in, &sc.cols);
        for (size_t i = 0; i < sc.cols.count; i++) {
            size_t n = 0;
            if (sc.op[i] >= 0 && !lct_interner_name(in, (uint32_t)sc.op[i], &n)) abort();
        }
        if (!fuzz_scan_again(rc, pos, before)) break;
    }
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
