/* lct_fold.c - the per-key lifecycle fold and the read-context matching of the trace
 * analytics, in C.  The pure-Python twin (the oracle) is inferguard/lct/_engine.py
 * (Keys.fold/_lookups/_reserves/_bump, Engine._piece, Contexts.add): same rows in, same
 * per-key state, counters and examples out.  All memory of the fold is the caller's
 * (numpy arrays); every index read from an input array is checked before use, and a bad
 * one changes nothing (the whole piece is validated first). */
#include "api.h"
#include "mix.h"

#include <stdlib.h>
#include <string.h>

/* Roles, counters and flags as in _engine.py. */
enum { R_OTHER, R_RESERVE, R_WRITE, R_ABORT, R_LOOKUP, R_ENTER, R_EXIT, R_READ, NROLES };
enum {
    C_RESERVE, C_WRITE, C_LOOKUP, C_READ, C_ENTER, C_READ_STORED, C_LOOKUP_STORED,
    C_RESERVE_STORED, C_UNSERVED_STORED, C_UNSERVED_COLD, C_UNFINISHED_STORED,
    C_UNFINISHED_NEW, C_FINISH_NO_RESERVE, C_READ_NO_LOOKUP, NC
};
enum {
    EX_UNSERVED_STORED, EX_UNSERVED_COLD, EX_UNFINISHED_STORED, EX_UNFINISHED_NEW,
    EX_FINISH_NO_RESERVE, EX_READ_NO_LOOKUP, EX_READ_UNSTORED
};
/* The counters above are the LCT_FOLD_COUNTERS of a key row (fails to compile if not). */
typedef char lct_fold_nc_check[NC == LCT_FOLD_COUNTERS ? 1 : -1];
#define F_PEND_LOOKUP_STORED 1u
#define F_PEND_RESERVE_STORED 2u
#define F_HAS_BUCKET 4u
#define F_SEEN 8u /* native only: the key's first row was seen (class, bucket, survival set) */
#define NO_BUCKET INT64_MIN
#define HLL_P 14
#define HLL_M (1u << HLL_P)
#define K_SET 0x3C6EF372FE94F82BULL

/* Trailing / leading zero bits, 64 for 0 (no builtin is called on 0). */
static unsigned ctz64(uint64_t x) {
    unsigned n = 0;
    if (!x) return 64;
#if defined(__GNUC__) || defined(__clang__)
    n = (unsigned)__builtin_ctzll(x);
#else
    while (!(x & 1u)) {
        x >>= 1;
        n++;
    }
#endif
    return n;
}

static unsigned clz64(uint64_t x) {
    unsigned n = 0;
    if (!x) return 64;
#if defined(__GNUC__) || defined(__clang__)
    n = (unsigned)__builtin_clzll(x);
#else
    while (!(x >> 63)) {
        x <<= 1;
        n++;
    }
#endif
    return n;
}

static void hll_add(uint8_t *reg, uint64_t fp) {
    uint32_t idx = (uint32_t)(fp >> (64 - HLL_P));
    unsigned rank = clz64(fp << HLL_P) + 1;
    if (rank > 64 - HLL_P + 1) rank = 64 - HLL_P + 1;
    if (reg[idx] < rank) reg[idx] = (uint8_t)rank;
}

void lct_hll_add(uint8_t *reg, const uint64_t *fp, size_t n) {
    for (size_t i = 0; i < n; i++) hll_add(reg, fp[i]);
}

/* The first LCT_FOLD_EXAMPLES distinct offsets of one (example, survival class), sorted. */
static void example(lct_keystate *s, int kind, uint8_t cls, int64_t off) {
    size_t at = ((size_t)kind * LCT_FOLD_CLASSES + cls);
    int64_t *a = s->ex_off + at * LCT_FOLD_EXAMPLES;
    unsigned n = s->ex_n[at], i;
    if (cls < s->level) return; /* never tracked at this level: Examples.add skips it too */
    if (n == LCT_FOLD_EXAMPLES && off >= a[n - 1]) return;
    i = n;
    while (i > 0 && a[i - 1] > off) i--;
    if (i > 0 && a[i - 1] == off) return;
    if (n == LCT_FOLD_EXAMPLES) n--; /* the largest falls off */
    memmove(a + i + 1, a + i, (n - i) * sizeof *a);
    a[i] = off;
    s->ex_n[at] = (uint8_t)(n + 1);
}

static void bump(lct_keystate *s, lct_keyrow *k, int c, int kind, int64_t off) {
    k->cnt[c]++; /* unsigned: wraps like numpy's uint32 */
    example(s, kind, k->survival, off);
}

/* The per-key state is far bigger than the caches and keys come in random order: ask
 * for a later row's state early, so the misses overlap (a hint only, no access).  A key's
 * row is 80 bytes: its first and last byte cover the one or two lines it spans. */
#define PREFETCH 12
static void prefetch_key(const lct_keystate *s, int32_t id) {
#if defined(__GNUC__) || defined(__clang__)
    if (id < 0) return;
    __builtin_prefetch(s->rows + id, 1);
    __builtin_prefetch((const char *)(s->rows + id) + sizeof(lct_keyrow) - 1, 1);
#else
    (void)s;
    (void)id;
#endif
}

int lct_fold_keys(lct_keystate *s, const lct_fold_piece *p) {
    if (!s->rows || !s->cls || !s->first_bucket || !s->ex_off || !s->ex_n || !s->class_roles ||
        s->count > s->max_keys || p->before > s->count || s->level > 64)
        return -1;
    /* Validate every index first: a bad piece changes nothing. */
    for (size_t i = 0; i < p->n; i++) {
        int32_t r = p->row[i];
        if (r < 0 || (size_t)r >= p->nrec || p->rrole[r] >= NROLES) return -2;
        if (p->status[i] != LCT_KEY_OK) continue;
        if (p->cls[i] < 0 || (uint32_t)p->cls[i] >= s->nclasses) return -3;
        if (p->ids[i] >= 0 && (uint32_t)p->ids[i] >= s->count) return -4;
    }
    for (size_t i = 0; i < p->n; i++) {
        int32_t r = p->row[i];
        if (i + PREFETCH < p->n) prefetch_key(s, p->ids[i + PREFETCH]);
        unsigned role = p->rrole[r];
        uint32_t id;
        lct_keyrow *k;
        uint64_t fp = p->fp[i];
        int64_t off;
        int wb;
        if (p->keysets && (role == R_ENTER || role == R_EXIT))
            p->keysets[r] += fmix64(fp ^ K_SET); /* every key row, malformed too */
        if (p->status[i] != LCT_KEY_OK) continue;
        s->class_roles[(size_t)p->cls[i] * NROLES + role]++;
        if (s->hll) {
            hll_add(s->hll, fp);
            if (role == R_WRITE) hll_add(s->hll + HLL_M, fp);
            else if (role == R_LOOKUP) hll_add(s->hll + 2 * HLL_M, fp);
            else if (role == R_READ || role == R_ENTER) hll_add(s->hll + 3 * HLL_M, fp);
            else if (role == R_RESERVE) hll_add(s->hll + 4 * HLL_M, fp);
        }
        if (p->ids[i] < 0) continue; /* not tracked (sampled out) */
        id = (uint32_t)p->ids[i];
        k = s->rows + id;
        if (id >= p->before && !(k->flags & F_SEEN)) { /* a new key's first row */
            int64_t b = p->tb[r];
            k->survival = (uint8_t)ctz64(fp);
            s->cls[id] = p->cls[i];
            s->first_bucket[id] = b;
            k->flags |= (uint8_t)(F_SEEN | (b != NO_BUCKET ? F_HAS_BUCKET : 0));
        }
        if (role == R_EXIT || role == R_OTHER) continue;
        off = p->offset[r];
        wb = k->cnt[C_WRITE] > 0; /* written strictly before this row */
        switch (role) {
        case R_RESERVE:
            k->cnt[C_RESERVE]++;
            if (wb) k->cnt[C_RESERVE_STORED]++;
            if (k->pend_reserve) { /* superseded before it finished */
                if (k->flags & F_PEND_RESERVE_STORED)
                    bump(s, k, C_UNFINISHED_STORED, EX_UNFINISHED_STORED, k->pend_reserve - 1);
                else
                    bump(s, k, C_UNFINISHED_NEW, EX_UNFINISHED_NEW, k->pend_reserve - 1);
            }
            k->pend_reserve = off + 1;
            k->flags = (uint8_t)((k->flags & ~F_PEND_RESERVE_STORED) |
                                 (wb ? F_PEND_RESERVE_STORED : 0));
            break;
        case R_WRITE:
            k->cnt[C_WRITE]++;
            if (k->pend_reserve) k->pend_reserve = 0;
            else bump(s, k, C_FINISH_NO_RESERVE, EX_FINISH_NO_RESERVE, off);
            k->flags &= (uint8_t)~F_PEND_RESERVE_STORED;
            break;
        case R_ABORT:
            k->pend_reserve = 0;
            k->flags &= (uint8_t)~F_PEND_RESERVE_STORED;
            break;
        case R_LOOKUP:
            k->cnt[C_LOOKUP]++;
            if (wb) k->cnt[C_LOOKUP_STORED]++;
            if (k->pend_lookup) { /* superseded before it was read */
                if (k->flags & F_PEND_LOOKUP_STORED)
                    bump(s, k, C_UNSERVED_STORED, EX_UNSERVED_STORED, k->pend_lookup - 1);
                else
                    bump(s, k, C_UNSERVED_COLD, EX_UNSERVED_COLD, k->pend_lookup - 1);
            }
            k->pend_lookup = off + 1;
            k->flags = (uint8_t)((k->flags & ~F_PEND_LOOKUP_STORED) |
                                 (wb ? F_PEND_LOOKUP_STORED : 0));
            break;
        case R_READ:
            k->cnt[C_READ]++;
            if (wb) k->cnt[C_READ_STORED]++;
            else example(s, EX_READ_UNSTORED, k->survival, off);
            if (k->pend_lookup) k->pend_lookup = 0;
            else bump(s, k, C_READ_NO_LOOKUP, EX_READ_NO_LOOKUP, off);
            k->flags &= (uint8_t)~F_PEND_LOOKUP_STORED;
            break;
        case R_ENTER:
            k->cnt[C_ENTER]++;
            break;
        default:
            break;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ read contexts */

#define CTX_BITS 17 /* slots: twice the most open contexts */

struct lct_ctx {
    uint64_t key[1u << CTX_BITS]; /* slot -> key multiset hash */
    int32_t head[1u << CTX_BITS]; /* slot -> newest open context (node), -1: empty slot */
    int64_t off[LCT_CTX_MAX];     /* nodes */
    double t[LCT_CTX_MAX];
    int32_t next[LCT_CTX_MAX];    /* older context of the same slot, or free list */
    int32_t free_node;
    int64_t n_open, untracked, exit_alone;
};

lct_ctx *lct_ctx_new(void) {
    lct_ctx *c = malloc(sizeof *c);
    if (!c) return NULL;
    for (size_t i = 0; i < (1u << CTX_BITS); i++) c->head[i] = -1;
    for (int32_t i = 0; i < LCT_CTX_MAX; i++) c->next[i] = i + 1 < LCT_CTX_MAX ? i + 1 : -1;
    c->free_node = 0;
    c->n_open = c->untracked = c->exit_alone = 0;
    return c;
}

void lct_ctx_free(lct_ctx *c) { free(c); }

static uint32_t ctx_home(uint64_t k) {
    return (uint32_t)((k * 0x9e3779b97f4a7c15ULL) >> (64 - CTX_BITS));
}

/* The slot of key k, or the empty slot where it would go. */
static uint32_t ctx_slot(const lct_ctx *c, uint64_t k) {
    uint32_t j = ctx_home(k);
    while (c->head[j] >= 0 && c->key[j] != k) j = (j + 1) & ((1u << CTX_BITS) - 1);
    return j;
}

/* Empty slot i of a linear-probing table (backward shift: no tombstones). */
static void ctx_remove(lct_ctx *c, uint32_t i) {
    const uint32_t mask = (1u << CTX_BITS) - 1;
    uint32_t j = i;
    for (;;) {
        uint32_t h;
        j = (j + 1) & mask;
        if (c->head[j] < 0) break;
        h = ctx_home(c->key[j]);
        /* entry j may move to i if its home is not cyclically in (i, j] */
        if (((j > i) && (h <= i || h > j)) || ((j < i) && (h <= i && h > j))) {
            c->key[i] = c->key[j];
            c->head[i] = c->head[j];
            i = j;
        }
    }
    c->head[i] = -1;
}

size_t lct_ctx_add(lct_ctx *c, size_t n, const uint64_t *keysets, const uint8_t *is_enter,
                   const int64_t *off, const double *t, int64_t *alone) {
    size_t nalone = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t j = ctx_slot(c, keysets[i]);
        if (is_enter[i]) {
            int32_t node = c->free_node;
            if (c->n_open >= LCT_CTX_MAX || node < 0) {
                c->untracked++;
                continue;
            }
            c->free_node = c->next[node];
            c->off[node] = off[i];
            c->t[node] = t[i];
            if (c->head[j] < 0) {
                c->key[j] = keysets[i];
                c->next[node] = -1;
            } else {
                c->next[node] = c->head[j];
            }
            c->head[j] = node;
            c->n_open++;
        } else if (c->head[j] >= 0) { /* close the newest open context of this multiset */
            int32_t node = c->head[j];
            int32_t older = c->next[node];
            c->next[node] = c->free_node;
            c->free_node = node;
            c->n_open--;
            if (older >= 0) c->head[j] = older;
            else ctx_remove(c, j);
        } else {
            c->exit_alone++;
            alone[nalone++] = off[i];
        }
    }
    return nalone;
}

void lct_ctx_counts(const lct_ctx *c, int64_t *out3) {
    out3[0] = c->n_open;
    out3[1] = c->untracked;
    out3[2] = c->exit_alone;
}

size_t lct_ctx_open(const lct_ctx *c, int64_t *off, double *t, size_t cap) {
    size_t n = 0;
    for (size_t j = 0; j < (1u << CTX_BITS); j++)
        for (int32_t node = c->head[j]; node >= 0 && n < cap; node = c->next[node]) {
            off[n] = c->off[node];
            t[n] = c->t[node];
            n++;
        }
    return n;
}
