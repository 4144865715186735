/* prom_facts.c - what the metrics evidence keeps of each family (FamilyFacts), read
 * straight from prom_scan()'s rows, so `lmcache-compat` on a well-formed scrape needs no
 * numpy.  The numpy road is the twin and the oracle: `Exposition.family_facts` in
 * inferguard/prom/_model.py (its sums are in row order, as np.bincount adds).
 *
 * Three small tables keyed by (family, 64-bit key) hold the distinct label triples, the
 * bucket sums and the label-total sums; a fourth (row ids, as in prom_brief.c) the series.
 * Every id and label range is checked before it is used; a bad one returns -1. */
#include "api.h"
#include "mix.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t b;
    int32_t a;
    double sum;
} ent;

/* An open-addressing map (a, b) -> entry, entries in insertion order; load <= 3/4. */
typedef struct {
    ent *ents;
    int64_t n, ents_cap;
    uint32_t *slots; /* entry index + 1; 0: empty */
    uint64_t cap;
} emap;

static uint64_t emap_hash(int32_t a, uint64_t b) {
    return fmix64(fmix64((uint64_t)(uint32_t)a ^ 0x9E3779B97F4A7C15ULL) ^ b);
}

static int emap_grow(emap *m) {
    uint64_t cap = m->cap ? m->cap * 2 : 64;
    uint32_t *slots = calloc((size_t)cap, sizeof *slots);
    if (!slots)
        return -2;
    for (int64_t i = 0; i < m->n; i++) {
        uint64_t s = emap_hash(m->ents[i].a, m->ents[i].b) & (cap - 1);
        while (slots[s])
            s = (s + 1) & (cap - 1);
        slots[s] = (uint32_t)(i + 1);
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

/* The entry of (a, b), added with sum 0 when new; NULL when memory runs out. */
static ent *emap_get(emap *m, int32_t a, uint64_t b) {
    if ((uint64_t)(m->n + 1) * 4 > m->cap * 3 && emap_grow(m) != 0)
        return NULL;
    uint64_t s = emap_hash(a, b) & (m->cap - 1);
    while (m->slots[s]) {
        ent *e = &m->ents[m->slots[s] - 1];
        if (e->a == a && e->b == b)
            return e;
        s = (s + 1) & (m->cap - 1);
    }
    if (m->n == m->ents_cap) {
        int64_t want = m->ents_cap ? m->ents_cap * 2 : 64;
        ent *grown = realloc(m->ents, (size_t)want * sizeof *grown);
        if (!grown)
            return NULL;
        m->ents = grown;
        m->ents_cap = want;
    }
    ent *e = &m->ents[m->n];
    e->a = a;
    e->b = b;
    e->sum = 0.0;
    m->slots[s] = (uint32_t)(++m->n);
    return e;
}

static void emap_free(emap *m) {
    free(m->ents);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static int ent_cmp(const void *x, const void *y) {
    const ent *p = x, *q = y;
    if (p->a != q->a)
        return p->a < q->a ? -1 : 1;
    return p->b < q->b ? -1 : p->b > q->b;
}

static int32_t canon_of(const prom_facts_in *in, int32_t v) {
    return in->canon ? in->canon[v] : v;
}

/* Row r's family when it is a kept sample (a SAMPLE row of a family, not `_created`). */
static int32_t kept_family(const prom_facts_in *in, int64_t r) {
    if (in->kind[r] != PROM_K_SAMPLE)
        return -1;
    int32_t nid = in->name[r];
    int32_t f = in->fam_of[nid];
    return f >= 0 && !(in->name_flags[nid] & PROM_FACT_CREATED) ? f : -1;
}

static int counted(const prom_facts_in *in, int32_t f, int32_t nid) {
    return !(in->fam_flags[f] & PROM_FACT_COUNTED) || (in->name_flags[nid] & PROM_FACT_COUNT);
}

/* The index of row r's first label entry named `label`, or -1. */
static int64_t first_entry(const prom_facts_in *in, int64_t r, int32_t label) {
    int64_t a = in->lab_first[r], c = in->lab_count[r];
    for (int64_t k = a; label >= 0 && k < a + c; k++)
        if (in->lab_name[k] == label)
            return k;
    return -1;
}

static int same_series(const prom_facts_in *in, int64_t r, int64_t j) {
    int64_t a = in->lab_first[r], b = in->lab_first[j], c = in->lab_count[r];
    if (in->name[j] != in->name[r] || in->lab_count[j] != c)
        return 0;
    for (int64_t k = 0; k < c; k++)
        if (in->lab_name[a + k] != in->lab_name[b + k] ||
            canon_of(in, in->lab_value[a + k]) != canon_of(in, in->lab_value[b + k]))
            return 0;
    return 1;
}

/* Row r's labels, le and quantile aside, are row j's (in written order, by canon id): its
 * label triples are then already in the table (a histogram's buckets repeat their series'
 * labels line after line). */
static int same_labels(const prom_facts_in *in, int64_t r, int64_t j) {
    int64_t a = in->lab_first[r], ea = a + in->lab_count[r];
    int64_t b = in->lab_first[j], eb = b + in->lab_count[j];
    for (;;) {
        while (a < ea && (in->lab_name[a] == in->le_id || in->lab_name[a] == in->quantile_id))
            a++;
        while (b < eb && (in->lab_name[b] == in->le_id || in->lab_name[b] == in->quantile_id))
            b++;
        if (a == ea || b == eb)
            return a == ea && b == eb;
        if (in->lab_name[a] != in->lab_name[b] ||
            canon_of(in, in->lab_value[a]) != canon_of(in, in->lab_value[b]))
            return 0;
        a++, b++;
    }
}

static int check(const prom_facts_in *in) {
    if (in->n_rows < 0 || in->n_labels < 0 || in->n_names < 0 || in->n_strs < 0 ||
        in->n_fams < 0 || in->n_rows >= INT32_MAX || in->n_labels >= INT32_MAX || in->n_strs > INT32_MAX ||
        in->n_fams > INT32_MAX || in->keep < 0)
        return -1;
    if (in->n_rows == 0)
        return 0;
    if (!in->kind || !in->name || !in->lab_first || !in->lab_count || !in->value ||
        (in->n_names > 0 && (!in->fam_of || !in->name_flags)) ||
        (in->n_fams > 0 && !in->fam_flags) ||
        (in->n_labels > 0 && (!in->lab_name || !in->lab_value)))
        return -1;
    for (int64_t i = 0; i < in->n_strs; i++)
        if (in->canon && (in->canon[i] < 0 || in->canon[i] >= in->n_strs))
            return -1;
    for (int64_t i = 0; i < in->n_names; i++)
        if (in->fam_of[i] < -1 || in->fam_of[i] >= in->n_fams)
            return -1;
    for (int64_t r = 0; r < in->n_rows; r++) {
        if (in->kind[r] != PROM_K_SAMPLE)
            continue;
        int32_t nid = in->name[r];
        if (nid < 0 || nid >= in->n_names)
            return -1;
        if (in->fam_of[nid] < 0)
            continue;
        int64_t a = in->lab_first[r], c = in->lab_count[r];
        if (a < 0 || c < 0 || a > in->n_labels || c > in->n_labels - a)
            return -1;
        for (int64_t k = a; k < a + c; k++)
            if (in->lab_name[k] < 0 || in->lab_name[k] >= in->n_strs ||
                in->lab_value[k] < 0 || in->lab_value[k] >= in->n_strs)
                return -1;
    }
    return 0;
}

/* Each family's counted finite values, gathered family after family, then summed exactly;
 * an overflowing family is summed again scaled by 2**-64 (as exact_sum does). */
static int totals(const prom_facts_in *in, prom_facts_out *out) {
    int64_t nf = in->n_fams;
    int64_t *at = calloc((size_t)nf + 1, sizeof *at);
    if (!at)
        return -2;
    for (int64_t r = 0; r < in->n_rows; r++) {
        int32_t f = kept_family(in, r);
        if (f >= 0 && counted(in, f, in->name[r]) && isfinite(in->value[r]))
            at[f + 1]++;
    }
    for (int64_t f = 0; f < nf; f++)
        at[f + 1] += at[f];
    double *vals = malloc((size_t)(at[nf] ? at[nf] : 1) * sizeof *vals);
    int64_t *fill = malloc((size_t)(nf ? nf : 1) * sizeof *fill);
    if (!vals || !fill) {
        free(at);
        free(vals);
        free(fill);
        return -2;
    }
    memcpy(fill, at, (size_t)nf * sizeof *fill);
    for (int64_t r = 0; r < in->n_rows; r++) {
        int32_t f = kept_family(in, r);
        if (f >= 0 && counted(in, f, in->name[r]) && isfinite(in->value[r]))
            vals[fill[f]++] = in->value[r];
    }
    for (int64_t f = 0; f < nf; f++) {
        double *x = vals + at[f];
        int64_t n = at[f + 1] - at[f];
        int rc = ig_fsum(x, n, &out->total[f]);
        if (rc == 1) {
            for (int64_t k = 0; k < n; k++)
                x[k] /= 18446744073709551616.0; /* 2**64 */
            rc = ig_fsum(x, n, &out->total[f]);
            out->total[f] *= 18446744073709551616.0;
        }
        if (rc != 0)
            out->declined = 1;
    }
    free(at);
    free(vals);
    free(fill);
    return 0;
}

/* Per family the label its totals split by (see the header), from the sorted triples. */
static void choose_splits(const prom_facts_in *in, prom_facts_out *out, const ent *pairs,
                          int64_t n) {
    for (int64_t i = 0; i < n;) {
        int32_t f = pairs[i].a;
        int64_t labels = 0, varying = 0, only = 0, only_n = 0, vary = 0, vary_n = 0;
        while (i < n && pairs[i].a == f) {
            uint64_t name = pairs[i].b >> 32;
            int64_t k = 0;
            while (i < n && pairs[i].a == f && pairs[i].b >> 32 == name)
                i++, k++;
            if (labels++ == 0)
                only = (int64_t)name, only_n = k;
            if (k > 1 && varying++ == 0)
                vary = (int64_t)name, vary_n = k;
        }
        if (!(in->fam_flags[f] & PROM_FACT_SPLIT))
            continue;
        if (labels == 1 && only_n <= in->keep)
            out->split[f] = (int32_t)only;
        else if (labels > 1 && varying == 1 && vary_n <= in->keep)
            out->split[f] = (int32_t)vary;
    }
}

static int export_map(emap *m, int32_t **fam, int32_t **key, double **sum, int64_t *n) {
    if (m->n > 1) /* qsort of a NULL array is undefined even for 0 items */
        qsort(m->ents, (size_t)m->n, sizeof *m->ents, ent_cmp);
    size_t k = (size_t)(m->n ? m->n : 1);
    *fam = malloc(k * sizeof **fam);
    *key = malloc(k * sizeof **key);
    if (sum)
        *sum = malloc(k * sizeof **sum);
    if (!*fam || !*key || (sum && !*sum))
        return -2;
    for (int64_t i = 0; i < m->n; i++) {
        (*fam)[i] = m->ents[i].a;
        (*key)[i] = (int32_t)(m->ents[i].b & 0xFFFFFFFFu);
        if (sum)
            (*sum)[i] = m->ents[i].sum;
    }
    *n = m->n;
    return 0;
}

void prom_facts_free(prom_facts_out *out) {
    if (!out)
        return;
    free(out->samples);
    free(out->series);
    free(out->nonzero);
    free(out->total);
    free(out->split);
    free(out->pair_fam);
    free(out->pair_name);
    free(out->pair_value);
    free(out->bucket_fam);
    free(out->bucket_le);
    free(out->bucket_sum);
    free(out->split_fam);
    free(out->split_value);
    free(out->split_sum);
    free(out->sid_used);
    memset(out, 0, sizeof *out);
}

static int run(const prom_facts_in *in, prom_facts_out *out) {
    size_t nf = (size_t)(in->n_fams ? in->n_fams : 1);
    out->samples = calloc(nf, sizeof *out->samples);
    out->series = calloc(nf, sizeof *out->series);
    out->nonzero = calloc(nf, sizeof *out->nonzero);
    out->total = calloc(nf, sizeof *out->total);
    out->split = malloc(nf * sizeof *out->split);
    out->sid_used = calloc((size_t)(in->n_strs ? in->n_strs : 1), 1);
    if (!out->samples || !out->series || !out->nonzero || !out->total || !out->split ||
        !out->sid_used)
        return -2;
    for (int64_t f = 0; f < in->n_fams; f++)
        out->split[f] = -1;

    int64_t kept = 0;
    for (int64_t r = 0; r < in->n_rows; r++)
        kept += kept_family(in, r) >= 0;
    uint64_t cap = 16;
    while (cap < (uint64_t)kept + (uint64_t)kept / 3)
        cap <<= 1;
    uint64_t *table = calloc((size_t)cap, sizeof *table);
    emap pairs = {0}, buckets = {0}, splits = {0};
    int rc = table ? 0 : -2;
    int64_t last = -1; /* the previous kept row */
    int32_t last_f = -1;

    /* One pass: counts, series, label triples, bucket sums, the sid values. */
    for (int64_t r = 0; rc == 0 && r < in->n_rows; r++) {
        if (in->kind[r] != PROM_K_SAMPLE)
            continue;
        int32_t nid = in->name[r];
        int32_t f = in->fam_of[nid];
        if (f < 0)
            continue;
        int64_t a = in->lab_first[r], c = in->lab_count[r];
        if (in->sid_label >= 0 && (f == in->sid_fam0 || f == in->sid_fam1))
            for (int64_t k = a; k < a + c; k++)
                if (in->lab_name[k] == in->sid_label)
                    out->sid_used[in->lab_value[k]] = 1;
        if (in->name_flags[nid] & PROM_FACT_CREATED)
            continue;
        double v = in->value[r];
        out->samples[f]++;
        out->nonzero[f] += v != 0.0 && !isnan(v);

        uint64_t h = fmix64((((uint64_t)(uint32_t)f << 32) | (uint32_t)nid) ^
                            0x9E3779B97F4A7C15ULL) ^ (uint64_t)c;
        for (int64_t k = a; k < a + c; k++)
            h = fmix64(h ^ (((uint64_t)(uint32_t)in->lab_name[k] << 32) |
                            (uint32_t)canon_of(in, in->lab_value[k]))) + 0x632BE59BD9B4E019ULL;
        uint64_t tag = h >> 32, s = h & (cap - 1);
        int seen = 0;
        while (table[s]) {
            if ((table[s] >> 32) == tag &&
                same_series(in, r, (int64_t)(table[s] & 0xFFFFFFFFu) - 1)) {
                seen = 1;
                break;
            }
            s = (s + 1) & (cap - 1);
        }
        if (!seen) {
            table[s] = (tag << 32) | (uint64_t)(r + 1);
            out->series[f]++;
        }

        int dup = last_f == f && same_labels(in, r, last);
        for (int64_t k = a; k < a + c && !dup; k++) {
            int32_t ln = in->lab_name[k];
            if (ln == in->le_id || ln == in->quantile_id)
                continue;
            uint64_t key = ((uint64_t)(uint32_t)ln << 32) |
                           (uint32_t)canon_of(in, in->lab_value[k]);
            if (!emap_get(&pairs, f, key))
                rc = -2;
        }
        last = r, last_f = f;
        if ((in->fam_flags[f] & PROM_FACT_HISTOGRAM) && (in->name_flags[nid] & PROM_FACT_BUCKET) &&
            isfinite(v)) {
            int64_t k = first_entry(in, r, in->le_id);
            if (k >= 0) {
                ent *e = emap_get(&buckets, f, (uint32_t)canon_of(in, in->lab_value[k]));
                if (e)
                    e->sum += v;
                else
                    rc = -2;
            }
        }
    }
    free(table);
    if (rc == 0)
        rc = totals(in, out);
    if (rc == 0) /* sorts the triples: the splits are chosen from their runs */
        rc = export_map(&pairs, &out->pair_fam, &out->pair_value, NULL, &out->n_pairs);
    if (rc == 0) {
        choose_splits(in, out, pairs.ents, pairs.n);
        out->pair_name = malloc((size_t)(pairs.n ? pairs.n : 1) * sizeof *out->pair_name);
        rc = out->pair_name ? 0 : -2;
        for (int64_t i = 0; rc == 0 && i < pairs.n; i++)
            out->pair_name[i] = (int32_t)(pairs.ents[i].b >> 32);
    }
    /* The label totals, now that each family's split label is known. */
    for (int64_t r = 0; rc == 0 && r < in->n_rows; r++) {
        int32_t f = kept_family(in, r);
        if (f < 0 || out->split[f] < 0 || !isfinite(in->value[r]))
            continue;
        int64_t k = first_entry(in, r, out->split[f]);
        if (k < 0)
            continue;
        ent *e = emap_get(&splits, f, (uint32_t)canon_of(in, in->lab_value[k]));
        if (e)
            e->sum += in->value[r];
        else
            rc = -2;
    }
    if (rc == 0)
        rc = export_map(&buckets, &out->bucket_fam, &out->bucket_le, &out->bucket_sum,
                        &out->n_buckets);
    if (rc == 0)
        rc = export_map(&splits, &out->split_fam, &out->split_value, &out->split_sum,
                        &out->n_splits);
    emap_free(&pairs);
    emap_free(&buckets);
    emap_free(&splits);
    return rc;
}

int prom_facts(const prom_facts_in *in, prom_facts_out *out) {
    if (!in || !out)
        return -1;
    memset(out, 0, sizeof *out);
    if (check(in) != 0)
        return -1;
    int rc = run(in, out);
    if (rc != 0)
        prom_facts_free(out);
    return rc;
}
