/* libFuzzer harness for the Prometheus/OpenMetrics tokeniser (native/prom.c).
 *
 * The first input byte picks the format (OpenMetrics or 0.0.4); the rest is text,
 * scanned with tiny row/label capacities so FULL/resume runs at every line.  The
 * number and UTF-8 helpers also get the raw bytes.  Built with ASan and UBSan. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

#define ROWS 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    unsigned flags;
    uint8_t *buf;
    prom_state *st;
    int64_t line_no = 1, line[ROWS], lab_first[ROWS], lab_count[ROWS], aux_off[ROWS],
        aux_len[ROWS], err_col[ROWS];
    uint8_t kind[ROWS], err[ROWS];
    int32_t name[ROWS];
    size_t cap_labels = 2;
    int32_t *lname = NULL, *lvalue = NULL;
    double value[ROWS], ts[ROWS], num;
    prom_rows rows;
    prom_labels labels;
    size_t pos = 0;

    if (size == 0) return 0;
    flags = (data[0] & 1) ? PROM_OPENMETRICS : 0;
    data++;
    size--;
    buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);

    (void)prom_parse_number(buf, size < 64 ? size : 64, 1, &num);
    (void)prom_utf8_error(buf, size);

    st = prom_state_new();
    if (!st) { free(buf); return 0; }
    rows.line = line; rows.kind = kind; rows.name = name; rows.lab_first = lab_first;
    rows.lab_count = lab_count; rows.value = value; rows.ts = ts; rows.aux_off = aux_off;
    rows.aux_len = aux_len; rows.err_col = err_col; rows.err = err; rows.capacity = ROWS;
    for (;;) {
        if (!lname) {
            lname = malloc(sizeof(int32_t) * cap_labels);
            lvalue = malloc(sizeof(int32_t) * cap_labels);
            if (!lname || !lvalue) abort();
        }
        labels.name = lname; labels.value = lvalue; labels.capacity = cap_labels;
        size_t before = pos;
        int rc;
        rows.count = 0;
        labels.count = 0;
        rc = prom_scan(buf, size, &pos, &line_no, flags, st, &rows, &labels);
        if (rc < 0 || pos > size) abort();
        for (size_t i = 0; i < rows.count; i++) {
            if (aux_off[i] < 0 || (size_t)aux_off[i] > size ||
                aux_len[i] < 0 || (size_t)aux_len[i] > size - (size_t)aux_off[i])
                abort();
            if (lab_first[i] < 0 || lab_count[i] < 0 ||
                (size_t)(lab_first[i] + lab_count[i]) > labels.count)
                abort();
        }
        if (rc == PROM_STOP_FULL) {
            if (pos == before && rows.count == 0) {
                /* One line holds more labels than fit: the caller grows the buffer (as
                 * inferguard/_prom_tokens.py does).  A line cannot hold more labels than
                 * it has bytes, so growth past that is a bug. */
                if (cap_labels > size + 2) abort();
                cap_labels *= 2;
                free(lname);
                free(lvalue);
                lname = lvalue = NULL;
            }
            continue;
        }
        break;
    }
    {
        size_t n = prom_state_count(st, PROM_STRS), b = prom_state_bytes(st, PROM_STRS);
        uint8_t *bytes = malloc(b ? b : 1);
        int64_t *o = malloc(sizeof(int64_t) * (n ? n : 1));
        int64_t *l = malloc(sizeof(int64_t) * (n ? n : 1));
        if (bytes && o && l) prom_state_export(st, PROM_STRS, bytes, o, l);
        free(bytes);
        free(o);
        free(l);
    }
    prom_state_free(st);
    free(lname);
    free(lvalue);
    free(buf);
    return 0;
}
