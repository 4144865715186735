/* libFuzzer harness for the .lct scanner (native/lct.c).
 *
 * The input is read two ways: as one frame body (lct_decode_record), and as a stream
 * of frames scanned with tiny column capacities, so FULL/resume, NEED_MORE at every
 * offset and the qualname interner are all exercised.  Built with ASan and UBSan by
 * fuzz/run; any report is a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lct.h"

#define CAP 3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    double tm, tw;
    size_t qo, qn;
    int32_t nk;
    int64_t off[CAP];
    uint32_t len[CAP];
    double mono[CAP], wall[CAP];
    int32_t op[CAP], keys[CAP];
    uint8_t st[CAP];
    lct_columns cols;
    lct_interner *in;
    size_t pos = 0;
    int rc;

    /* Copy so that reads past `size` are caught by ASan (libFuzzer's buffer is exact too). */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);

    rc = lct_decode_record(buf, size, &tm, &tw, &qo, &qn, &nk);
    if (rc != LCT_ROW_MALFORMED && (qo > size || qn > size - qo)) abort();

    in = lct_interner_new();
    if (!in) { free(buf); return 0; }
    cols.offset = off; cols.length = len; cols.t_mono = mono; cols.t_wall = wall;
    cols.op = op; cols.nkeys = keys; cols.status = st; cols.capacity = CAP;
    for (;;) {
        size_t before = pos;
        cols.count = 0;
        rc = lct_scan(buf, size, &pos, 0, in, &cols);
        if (rc < 0 || pos > size) abort();
        for (size_t i = 0; i < cols.count; i++) {
            size_t n = 0;
            if (op[i] >= 0 && !lct_interner_name(in, (uint32_t)op[i], &n)) abort();
        }
        if (rc == LCT_STOP_FULL || rc == LCT_STOP_MALFORMED) {
            if (pos == before) abort(); /* no progress */
            continue;
        }
        break;
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
