/* libFuzzer harness for the Prometheus/OpenMetrics tokeniser (native/prom.c).
 *
 * The first input byte picks the format (OpenMetrics or 0.0.4); the rest is text,
 * scanned with tiny row/label capacities so FULL/resume runs at every line.  The
 * number and UTF-8 helpers also get the raw bytes, and prom_brief and prom_facts (the
 * metrics summary and family-facts kernels) the rows of one full scan.  Built with ASan
 * and UBSan. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

#define ROWS 4

/* prom_facts over the same rows: flags per name and family drawn from the ids, a
 * canonical id per string (every odd id mapped to the one before it) on the second pass;
 * every figure must stay within the rows. */
static void facts(const prom_brief_in *b) {
    int64_t n_names = b->n_names, n_strs = b->n_strs;
    uint8_t *nf = malloc((size_t)(n_names + 1)), ff[3] = {1, 2, 4 | 2};
    int32_t *canon = malloc((size_t)(n_strs + 1) * sizeof *canon);
    if (!nf || !canon) abort();
    for (int64_t i = 0; i < n_names; i++)
        nf[i] = (uint8_t)(i % 8);
    for (int64_t i = 0; i < n_strs; i++)
        canon[i] = (int32_t)(i & ~(int64_t)1);
    for (int pass = 0; pass < 2; pass++) {
        prom_facts_in in = {b->kind, b->name, b->lab_first, b->lab_count, b->value, b->n_rows,
                            b->lab_name, b->lab_value, b->n_labels, b->fam_of, nf, n_names,
                            ff, 3, pass ? canon : NULL, n_strs, b->le_id,
                            b->quantile_id, pass ? 1 : 64, 0, 1, n_strs > 2 ? 2 : -1};
        prom_facts_out out;
        int rc = prom_facts(&in, &out);
        if (rc == -1) abort(); /* the scan's own ids are always in range */
        if (rc != 0) continue;
        int64_t kept = 0;
        for (int i = 0; i < 3; i++) {
            if (out.series[i] > out.samples[i] || out.nonzero[i] > out.samples[i] ||
                out.series[i] < 0 || (out.split[i] >= 0 && !(ff[i] & PROM_FACT_SPLIT)))
                abort();
            kept += out.samples[i];
        }
        if (out.n_pairs > b->n_labels || out.n_buckets > kept || out.n_splits > kept) abort();
        for (int64_t i = 1; i < out.n_pairs; i++)
            if (out.pair_fam[i] < out.pair_fam[i - 1]) abort(); /* sorted */
        prom_facts_free(&out);
        prom_facts_free(&out); /* freeing twice is harmless: the pointers were cleared */
    }
    free(nf);
    free(canon);
}

/* One full-capacity scan (room for every line, as the summary road sizes it; the ts,
 * err_col and err columns left NULL), then prom_brief over its rows with a family and a
 * role per name drawn from the name ids: every count must stay within the kept rows. */
static void brief(const uint8_t *buf, size_t size, unsigned flags) {
    size_t cap = size + 1, pos = 0;
    int64_t line_no = 1;
    prom_state *st = prom_state_new();
    int64_t *line = malloc(cap * sizeof *line), *lf = malloc(cap * sizeof *lf),
            *lc = malloc(cap * sizeof *lc), *ao = malloc(cap * sizeof *ao),
            *al = malloc(cap * sizeof *al);
    uint8_t *kind = malloc(cap);
    int32_t *name = malloc(cap * sizeof *name), *ln = malloc(cap * sizeof *ln),
            *lv = malloc(cap * sizeof *lv);
    double *value = malloc(cap * sizeof *value);
    if (!st || !line || !lf || !lc || !ao || !al || !kind || !name || !ln || !lv || !value)
        abort();
    prom_rows rows = {line, kind, name, lf, lc, value, NULL, ao, al, NULL, NULL, cap, 0};
    prom_labels labels = {ln, lv, cap, 0};
    if (prom_scan(buf, size, &pos, &line_no, flags, st, &rows, &labels) != PROM_STOP_END)
        abort(); /* a line is at least one byte, a label at least one byte */
    int64_t n_names = (int64_t)prom_state_count(st, PROM_NAMES);
    int64_t n_strs = (int64_t)prom_state_count(st, PROM_STRS);
    int32_t *fam_of = malloc((size_t)(n_names + 1) * sizeof *fam_of);
    uint8_t *role_of = malloc((size_t)(n_names + 1));
    int64_t n_fams = 3, samples[3], zeros[3], series[3];
    uint8_t *used = malloc((size_t)(n_strs + 1));
    if (!fam_of || !role_of || !used) abort();
    for (int64_t i = 0; i < n_names; i++) {
        fam_of[i] = (int32_t)(i % 4) - 1;
        role_of[i] = (uint8_t)(i % 3);
    }
    prom_brief_in in = {kind, name, lf, lc, value, (int64_t)rows.count, ln, lv,
                        (int64_t)labels.count, fam_of, role_of, n_names,
                        n_strs > 0 ? 0 : -1, n_strs > 1 ? 1 : -1, n_strs, n_fams};
    prom_brief_out out = {samples, zeros, series, used, 0, 0};
    int rc = prom_brief(&in, &out);
    if (rc == -1) abort(); /* the scan's own ids are always in range */
    if (rc == 0) {
        int64_t total = 0;
        for (int i = 0; i < 3; i++) {
            if (zeros[i] > samples[i] || series[i] > samples[i] || series[i] < 0) abort();
            total += samples[i];
        }
        if (total != out.kept || out.unbound > out.kept) abort();
    }
    facts(&in);
    free(fam_of);
    free(role_of);
    free(used);
    free(line); free(lf); free(lc); free(ao); free(al); free(kind); free(name);
    free(ln); free(lv); free(value);
    prom_state_free(st);
}

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
    brief(buf, size, flags);
    free(buf);
    return 0;
}
