/* lct_tally.c - the summary fold of `trace info` over lct_scan's rows, in C.
 *
 * The numpy twin (the oracle) is `_Aggregate.add` in inferguard/lct/_file.py: the same
 * rows in file order give the same counts, key totals and timestamp facts.  With it a
 * storage trace is summarised without numpy (whose import alone is about a third of the
 * command on a 1 GiB trace).  All state lives in one heap block; every op id read from a
 * row is checked against the table before it indexes anything.
 */
#include "api.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct lct_tally {
    lct_tally_totals t;
    int64_t count[LCT_MAX_OPS], keys[LCT_MAX_OPS], keys_max[LCT_MAX_OPS];
    int64_t s_count[256], s_keys[256], s_max[256];
};

lct_tally *lct_tally_new(void) {
    lct_tally *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->t.mono_min = t->t.mono_max = t->t.mono_first = t->t.mono_last = NAN;
    t->t.wall_min = t->t.wall_max = NAN;
    return t;
}

void lct_tally_free(lct_tally *t) { free(t); }

/* The running min / max of the non-NaN values seen (NaN: none yet). */
static void take_min(double *m, double v) { if (isnan(*m) || v < *m) *m = v; }
static void take_max(double *m, double v) { if (isnan(*m) || v > *m) *m = v; }

/* One non-NaN t_mono, in file order: sign, order against the previous one, range. */
static void take_mono(lct_tally_totals *t, double m) {
    if (m < 0) t->neg_mono++;
    if (!isnan(t->mono_last) && m < t->mono_last) t->decreases++;
    if (isnan(t->mono_first)) t->mono_first = m;
    t->mono_last = m;
    take_min(&t->mono_min, m);
    take_max(&t->mono_max, m);
}

int64_t lct_tally_add(lct_tally *t, const lct_columns *cols) {
    size_t n = cols->count, i;
    int64_t malformed = 0;
    if (n > cols->capacity) return -1;
    for (i = 0; i < n; i++) /* validate first: a bad row changes nothing */
        if (cols->op[i] >= LCT_MAX_OPS) return -1;
    for (i = 0; i < n; i++) {
        int32_t op = cols->op[i];
        int64_t k = cols->nkeys[i];
        double m = cols->t_mono[i], w = cols->t_wall[i];
        uint8_t st = cols->status[i];
        if (st == LCT_ROW_MALFORMED) {
            malformed++;
            continue;
        }
        t->t.records++;
        if (op >= 0) {
            t->count[op]++;
            t->keys[op] += k;
            if (k > t->keys_max[op]) t->keys_max[op] = k;
        } else {
            t->s_count[st]++;
            t->s_keys[st] += k;
            if (k > t->s_max[st]) t->s_max[st] = k;
        }
        if (isnan(m)) t->t.nan_ts++;
        else take_mono(&t->t, m);
        if (isnan(w)) {
            t->t.nan_ts++;
        } else {
            take_min(&t->t.wall_min, w);
            take_max(&t->t.wall_max, w);
        }
    }
    t->t.frames += (int64_t)n;
    t->t.malformed += malformed;
    return malformed;
}

int lct_tally_merge(lct_tally *dst, const lct_tally *src, const int32_t *map, size_t nmap) {
    size_t i;
    const lct_tally_totals *s = &src->t;
    lct_tally_totals *d = &dst->t;
    if (nmap > LCT_MAX_OPS) return -1;
    for (i = 0; i < nmap; i++)
        if (map[i] >= LCT_MAX_OPS) return -1;
    for (i = 0; i < LCT_MAX_OPS; i++) {
        int64_t c = src->count[i], k = src->keys[i], km = src->keys_max[i];
        int64_t *dc, *dk, *dm;
        if (!c) continue;
        if (i < nmap && map[i] >= 0) {
            dc = &dst->count[map[i]], dk = &dst->keys[map[i]], dm = &dst->keys_max[map[i]];
        } else { /* the name did not fit this table: its rows become OP_TABLE_FULL rows */
            dc = &dst->s_count[LCT_ROW_OP_TABLE_FULL], dk = &dst->s_keys[LCT_ROW_OP_TABLE_FULL];
            dm = &dst->s_max[LCT_ROW_OP_TABLE_FULL];
        }
        *dc += c, *dk += k;
        if (km > *dm) *dm = km;
    }
    for (i = 0; i < 256; i++) {
        dst->s_count[i] += src->s_count[i];
        dst->s_keys[i] += src->s_keys[i];
        if (src->s_max[i] > dst->s_max[i]) dst->s_max[i] = src->s_max[i];
    }
    d->frames += s->frames, d->malformed += s->malformed, d->records += s->records;
    d->nan_ts += s->nan_ts, d->neg_mono += s->neg_mono, d->decreases += s->decreases;
    if (!isnan(s->mono_first)) { /* src's first t_mono follows dst's last one */
        if (!isnan(d->mono_last) && s->mono_first < d->mono_last) d->decreases++;
        if (isnan(d->mono_first)) d->mono_first = s->mono_first;
        d->mono_last = s->mono_last;
        take_min(&d->mono_min, s->mono_min);
        take_max(&d->mono_max, s->mono_max);
    }
    if (!isnan(s->wall_min)) {
        take_min(&d->wall_min, s->wall_min);
        take_max(&d->wall_max, s->wall_max);
    }
    return 0;
}

void lct_tally_read(const lct_tally *t, lct_tally_totals *out, int64_t *count, int64_t *keys,
                    int64_t *keys_max, int64_t *s_count, int64_t *s_keys, int64_t *s_max) {
    *out = t->t;
    memcpy(count, t->count, sizeof t->count);
    memcpy(keys, t->keys, sizeof t->keys);
    memcpy(keys_max, t->keys_max, sizeof t->keys_max);
    memcpy(s_count, t->s_count, sizeof t->s_count);
    memcpy(s_keys, t->s_keys, sizeof t->s_keys);
    memcpy(s_max, t->s_max, sizeof t->s_max);
}
