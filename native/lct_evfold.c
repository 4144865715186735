/* lct_evfold.c - the per-key part of the events fold (inferguard/lct/_events.py
 * EventsEngine._fold, whose Python loops are the twin and the oracle), in C.
 *
 * State: the first store time of each (tier, key) still stored, the keys ever stored on
 * L1 and on L2, the sample level (keys with fp & (2^level - 1) != 0 are skipped) and the
 * flow / delete counters.  Tables are open addressing with linear probing; a key
 * fingerprint is never 0 (0 marks a malformed key, skipped, so 0 marks an empty slot).
 * Slots are found from the fingerprint's high bits (Fibonacci hashing): sampled keys all
 * share their low bits. */
#include "api.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t fp; /* 0: empty */
    int32_t tier;
    double t;
} st_slot;

typedef struct {
    uint64_t *slot; /* 0: empty */
    size_t bits, count;
} fp_set;

typedef struct {
    st_slot *slot;
    size_t bits, count;
} st_map;

struct lct_evfold {
    st_map stored;
    fp_set l1, l2;
    int64_t *alive; /* per tier id: keys stored */
    size_t ntiers;
    uint64_t max_keys;
    int64_t level, flow_both, flow_l2_only, deletes_unstored;
};

/* A cache hint for a slot a few keys ahead (the tables outgrow the caches). */
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif
#define AHEAD 8

static size_t home(uint64_t fp, int32_t tier, size_t bits) {
    uint64_t h = (fp ^ ((uint64_t)(uint32_t)tier * 0xC2B2AE3D27D4EB4FULL)) *
                 0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> (64 - bits));
}

/* ---------------------------------------------------------------- key sets */

static int set_init(fp_set *s, size_t bits) {
    s->slot = calloc((size_t)1 << bits, sizeof *s->slot);
    s->bits = bits;
    s->count = 0;
    return s->slot ? 0 : -1;
}

/* 1 added, 0 present; -1 out of memory. */
static int set_add(fp_set *s, uint64_t fp);

static int set_rebuild(fp_set *s, size_t bits, uint64_t mask) {
    fp_set n;
    if (set_init(&n, bits)) return -1;
    for (size_t i = 0; i < ((size_t)1 << s->bits); i++)
        if (s->slot[i] && !(s->slot[i] & mask) && set_add(&n, s->slot[i]) < 0) {
            free(n.slot);
            return -1;
        }
    free(s->slot);
    *s = n;
    return 0;
}

static int set_has(const fp_set *s, uint64_t fp) {
    size_t m = ((size_t)1 << s->bits) - 1, i = home(fp, 0, s->bits);
    while (s->slot[i]) {
        if (s->slot[i] == fp) return 1;
        i = (i + 1) & m;
    }
    return 0;
}

static int set_add(fp_set *s, uint64_t fp) {
    size_t m, i;
    if (2 * (s->count + 1) > ((size_t)1 << s->bits)) {
        if (s->bits >= 40 || set_rebuild(s, s->bits + 1, 0)) return -1;
    }
    m = ((size_t)1 << s->bits) - 1;
    i = home(fp, 0, s->bits);
    while (s->slot[i]) {
        if (s->slot[i] == fp) return 0;
        i = (i + 1) & m;
    }
    s->slot[i] = fp;
    s->count++;
    return 1;
}

/* ---------------------------------------------------------------- stored map */

static int map_init(st_map *s, size_t bits) {
    s->slot = calloc((size_t)1 << bits, sizeof *s->slot);
    s->bits = bits;
    s->count = 0;
    return s->slot ? 0 : -1;
}

static st_slot *map_find(const st_map *s, uint64_t fp, int32_t tier) {
    size_t m = ((size_t)1 << s->bits) - 1, i = home(fp, tier, s->bits);
    while (s->slot[i].fp) {
        if (s->slot[i].fp == fp && s->slot[i].tier == tier) return &s->slot[i];
        i = (i + 1) & m;
    }
    return NULL;
}

/* Insert a key known to be absent (the table has room). */
static void map_put(st_map *s, uint64_t fp, int32_t tier, double t) {
    size_t m = ((size_t)1 << s->bits) - 1, i = home(fp, tier, s->bits);
    while (s->slot[i].fp) i = (i + 1) & m;
    s->slot[i].fp = fp;
    s->slot[i].tier = tier;
    s->slot[i].t = t;
    s->count++;
}

static int map_rebuild(st_map *s, size_t bits, uint64_t mask) {
    st_map n;
    if (map_init(&n, bits)) return -1;
    for (size_t i = 0; i < ((size_t)1 << s->bits); i++)
        if (s->slot[i].fp && !(s->slot[i].fp & mask))
            map_put(&n, s->slot[i].fp, s->slot[i].tier, s->slot[i].t);
    free(s->slot);
    *s = n;
    return 0;
}

/* Remove the slot at i (backward-shift deletion keeps every probe chain intact). */
static void map_remove(st_map *s, size_t i) {
    size_t m = ((size_t)1 << s->bits) - 1, j = i;
    for (;;) {
        size_t k;
        j = (j + 1) & m;
        if (!s->slot[j].fp) break;
        k = home(s->slot[j].fp, s->slot[j].tier, s->bits);
        /* the entry at j may move to i unless its home lies cyclically in (i, j] */
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) continue;
        s->slot[i] = s->slot[j];
        i = j;
    }
    s->slot[i].fp = 0;
    s->count--;
}

/* ---------------------------------------------------------------- the fold */

lct_evfold *lct_evfold_new(uint64_t max_keys) {
    lct_evfold *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->max_keys = max_keys;
    if (map_init(&f->stored, 10) || set_init(&f->l1, 10) || set_init(&f->l2, 10)) {
        lct_evfold_free(f);
        return NULL;
    }
    return f;
}

void lct_evfold_free(lct_evfold *f) {
    if (!f) return;
    free(f->stored.slot);
    free(f->l1.slot);
    free(f->l2.slot);
    free(f->alive);
    free(f);
}

static int64_t *alive_of(lct_evfold *f, int32_t tier) {
    if (tier < 0) return NULL;
    if ((size_t)tier >= f->ntiers) {
        size_t n = (size_t)tier + 16;
        int64_t *a = realloc(f->alive, n * sizeof *a);
        if (!a) return NULL;
        memset(a + f->ntiers, 0, (n - f->ntiers) * sizeof *a);
        f->alive = a;
        f->ntiers = n;
    }
    return &f->alive[tier];
}

static uint64_t mask_of(int64_t level) {
    return level >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << level) - 1;
}

/* Raise the level until the maps hold at most 4 * max_keys keys (EventsEngine._room; at
 * level 64 every key is sampled out, so the loop ends there). */
static int room(lct_evfold *f) {
    uint64_t bound = f->max_keys > UINT64_MAX / 4 ? UINT64_MAX : 4 * f->max_keys;
    while ((uint64_t)(f->stored.count + f->l1.count + f->l2.count) > bound && f->level < 64) {
        uint64_t mask;
        f->level++;
        mask = mask_of(f->level);
        if (map_rebuild(&f->stored, f->stored.bits, mask) ||
            set_rebuild(&f->l1, f->l1.bits, mask) || set_rebuild(&f->l2, f->l2.bits, mask))
            return -1;
        memset(f->alive, 0, f->ntiers * sizeof *f->alive);
        for (size_t i = 0; i < ((size_t)1 << f->stored.bits); i++)
            if (f->stored.slot[i].fp) f->alive[f->stored.slot[i].tier]++;
    }
    return 0;
}

int64_t lct_evfold_batch(lct_evfold *f, int op, int32_t tier, double t, const uint64_t *fps,
                         size_t n, double *vals) {
    uint64_t mask = mask_of(f->level);
    int64_t nv = 0, *alive;
    if (tier < 0 || tier > (1 << 20)) return -2;
    alive = alive_of(f, tier);
    if (!alive) return -1;
    if (op == LCT_EV_STORE) {
        for (size_t i = 0; i < n; i++) {
            uint64_t fp = fps[i];
            if (i + AHEAD < n) {
                uint64_t q = fps[i + AHEAD];
                PREFETCH(&f->stored.slot[home(q, tier, f->stored.bits)]);
                PREFETCH(&f->l1.slot[home(q, 0, f->l1.bits)]);
                if (tier == 1) {
                    PREFETCH(&f->l2.slot[home(q, 0, f->l2.bits)]);
                    PREFETCH(&f->stored.slot[home(q, 0, f->stored.bits)]);
                }
            }
            if (!fp || (fp & mask)) continue;
            if (!map_find(&f->stored, fp, tier)) {
                if (2 * (f->stored.count + 1) > ((size_t)1 << f->stored.bits) &&
                    (f->stored.bits >= 40 ||
                     map_rebuild(&f->stored, f->stored.bits + 1, 0)))
                    return -1;
                map_put(&f->stored, fp, tier, t);
                (*alive)++;
            }
            if (tier == 0) {
                if (set_add(&f->l1, fp) < 0) return -1;
            } else if (tier == 1 && !set_has(&f->l2, fp)) {
                if (set_add(&f->l2, fp) < 0) return -1;
                if (set_has(&f->l1, fp)) {
                    const st_slot *s1 = map_find(&f->stored, fp, 0);
                    f->flow_both++;
                    if (s1 && isfinite(t - s1->t)) vals[nv++] = t - s1->t;
                } else {
                    f->flow_l2_only++;
                }
            }
        }
        if (room(f)) return -1;
    } else if (op == LCT_EV_DELETE) {
        for (size_t i = 0; i < n; i++) {
            uint64_t fp = fps[i];
            st_slot *s;
            if (i + AHEAD < n)
                PREFETCH(&f->stored.slot[home(fps[i + AHEAD], tier, f->stored.bits)]);
            if (!fp || (fp & mask)) continue;
            s = map_find(&f->stored, fp, tier);
            if (!s) {
                f->deletes_unstored++;
                continue;
            }
            if (isfinite(t - s->t)) vals[nv++] = t - s->t;
            map_remove(&f->stored, (size_t)(s - f->stored.slot));
            (*alive)--;
        }
    }
    return nv;
}

void lct_evfold_counts(const lct_evfold *f, int64_t *out) {
    out[0] = f->level;
    out[1] = (int64_t)f->l1.count;
    out[2] = (int64_t)f->l2.count;
    out[3] = f->flow_both;
    out[4] = f->flow_l2_only;
    out[5] = f->deletes_unstored;
}

int64_t lct_evfold_alive(const lct_evfold *f, int32_t tier) {
    return tier >= 0 && (size_t)tier < f->ntiers ? f->alive[tier] : 0;
}

int64_t lct_evfold_rows(lct_evfold *f, size_t nrows, const int32_t *op, const int32_t *tier,
                        const double *t, const int64_t *start, const int64_t *count,
                        const uint64_t *fps, size_t fps_len, double *vals, size_t vals_cap,
                        int64_t *nvals) {
    size_t total = 0;
    for (size_t r = 0; r < nrows; r++) {
        int64_t got;
        if (start[r] < 0 || count[r] < 0 || (uint64_t)start[r] > fps_len ||
            (uint64_t)count[r] > fps_len - (size_t)start[r] ||
            (uint64_t)count[r] > vals_cap - total)
            return -2;
        got = lct_evfold_batch(f, op[r], tier[r], t[r], fps + start[r], (size_t)count[r],
                               vals + total);
        if (got < 0) return got;
        nvals[r] = got;
        total += (size_t)got;
    }
    return (int64_t)total;
}
