/* prom_brief.c - what `inferguard metrics summary` needs of a tokenised exposition, read
 * straight from prom_scan()'s rows: per family its samples, its samples equal to 0 and its
 * distinct series (name + label set in any order), and which strings are the `le` /
 * `quantile` values of bucket / quantile samples (Python checks those are numbers).
 *
 * The family of a sample comes from its name (`fam_of`: the family rules ran in Python over
 * the few distinct names).  The numpy road is the twin and the oracle: `_Builder.finish`,
 * `Exposition._zeros` and `Exposition.series_counts` in inferguard/prom/_model.py.
 *
 * Every id and label range is checked before it is used; a bad one returns -1. */
#include "api.h"
#include "mix.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The label entries of row r as sorted (name id << 32 | value id) into buf. */
static void sorted_pairs(const prom_brief_in *in, int64_t r, int64_t *buf) {
    int64_t a = in->lab_first[r], c = in->lab_count[r];
    for (int64_t k = 0; k < c; k++) {
        int64_t x = ((int64_t)in->lab_name[a + k] << 32) | (int64_t)in->lab_value[a + k];
        int64_t j = k - 1; /* insertion sort: label sets are short */
        while (j >= 0 && buf[j] > x) {
            buf[j + 1] = buf[j];
            j--;
        }
        buf[j + 1] = x;
    }
}

int prom_brief(const prom_brief_in *in, prom_brief_out *out) {
    if (!in || !out || in->n_rows < 0 || in->n_labels < 0 || in->n_names < 0 ||
        in->n_strs < 0 || in->n_fams < 0 || in->n_rows >= INT32_MAX ||
        in->n_labels > ((int64_t)1 << 40) || in->n_strs > INT32_MAX ||
        in->n_fams > INT32_MAX)
        return -1;
    if ((in->n_fams > 0 && (!out->samples || !out->zeros || !out->series)) ||
        (in->n_strs > 0 && !out->bound_used))
        return -1;
    if (in->n_fams > 0) {
        memset(out->samples, 0, (size_t)in->n_fams * sizeof *out->samples);
        memset(out->zeros, 0, (size_t)in->n_fams * sizeof *out->zeros);
        memset(out->series, 0, (size_t)in->n_fams * sizeof *out->series);
    }
    if (in->n_strs > 0)
        memset(out->bound_used, 0, (size_t)in->n_strs);
    out->kept = 0;
    out->unbound = 0;
    if (in->n_rows == 0)
        return 0;
    if (!in->kind || !in->name || !in->lab_first || !in->lab_count || !in->value ||
        (in->n_names > 0 && (!in->fam_of || !in->role_of)) ||
        (in->n_labels > 0 && (!in->lab_name || !in->lab_value)))
        return -1;

    /* Pass 1: check every kept row (its ids and label range) and count them. */
    int64_t kept = 0, most = 1;
    for (int64_t r = 0; r < in->n_rows; r++) {
        if (in->kind[r] != PROM_K_SAMPLE)
            continue;
        int32_t nid = in->name[r];
        if (nid < 0 || nid >= in->n_names)
            return -1;
        int32_t f = in->fam_of[nid];
        if (f < -1 || f >= in->n_fams)
            return -1;
        if (f < 0)
            continue;
        int64_t a = in->lab_first[r], c = in->lab_count[r];
        if (a < 0 || c < 0 || a > in->n_labels || c > in->n_labels - a)
            return -1;
        for (int64_t k = a; k < a + c; k++)
            if (in->lab_name[k] < 0 || in->lab_name[k] >= in->n_strs ||
                in->lab_value[k] < 0 || in->lab_value[k] >= in->n_strs)
                return -1;
        if (in->role_of[nid] > 2)
            return -1;
        if (c > most)
            most = c;
        kept++;
    }
    /* Series: an open-addressing set of rows keyed by (family, name, sorted labels); a
     * slot holds the key hash's high 32 bits and row + 1 (0: empty), load <= 3/4. */
    uint64_t cap = 16;
    while (cap < (uint64_t)kept + (uint64_t)kept / 3)
        cap <<= 1;
    uint64_t *table = calloc((size_t)cap, sizeof *table);
    int64_t *mine = malloc((size_t)most * sizeof *mine);
    int64_t *theirs = malloc((size_t)most * sizeof *theirs);
    if (!table || !mine || !theirs) {
        free(table);
        free(mine);
        free(theirs);
        return -2;
    }

    /* Pass 2: per family counts, the bound labels, the distinct series. */
    for (int64_t r = 0; r < in->n_rows; r++) {
        if (in->kind[r] != PROM_K_SAMPLE)
            continue;
        int32_t nid = in->name[r];
        int32_t f = in->fam_of[nid];
        if (f < 0)
            continue;
        int64_t a = in->lab_first[r], c = in->lab_count[r];
        out->samples[f]++;
        out->zeros[f] += in->value[r] == 0.0; /* NaN is not 0; -0.0 is */
        uint8_t role = in->role_of[nid];
        if (role) {
            int32_t want = role == 1 ? in->le_id : in->quantile_id;
            int found = 0;
            for (int64_t j = a; want >= 0 && j < a + c; j++) {
                if (in->lab_name[j] == want) {
                    out->bound_used[in->lab_value[j]] = 1;
                    found = 1;
                    break;
                }
            }
            out->unbound += !found;
        }
        sorted_pairs(in, r, mine);
        uint64_t h = fmix64((((uint64_t)(uint32_t)f << 32) | (uint32_t)nid) ^
                            0x9E3779B97F4A7C15ULL) ^ (uint64_t)c;
        for (int64_t k = 0; k < c; k++)
            h = fmix64(h ^ (uint64_t)mine[k]) + 0x632BE59BD9B4E019ULL;
        uint64_t tag = h >> 32, s = h & (cap - 1);
        int seen = 0;
        while (table[s]) {
            if ((table[s] >> 32) == tag) {
                int64_t j = (int64_t)(table[s] & 0xFFFFFFFFu) - 1;
                int32_t jn = in->name[j];
                if (jn == nid && in->fam_of[jn] == f && in->lab_count[j] == c) {
                    sorted_pairs(in, j, theirs);
                    if (c == 0 || memcmp(mine, theirs, (size_t)c * sizeof *mine) == 0) {
                        seen = 1;
                        break;
                    }
                }
            }
            s = (s + 1) & (cap - 1);
        }
        if (!seen) {
            table[s] = (tag << 32) | (uint64_t)(r + 1);
            out->series[f]++;
        }
        out->kept++;
    }
    free(table);
    free(mine);
    free(theirs);
    return 0;
}
