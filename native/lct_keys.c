/* lct_keys.c - see lct.h, "Trace analytics".  ObjectKey rows out of scanned records,
 * the key fingerprint, and a fingerprint -> dense id table.  Every read is checked
 * against the end of the current args value; nothing trusts a declared length. */
#include "lct.h"
#include "mix.h"

#include <stdlib.h>
#include <string.h>

/* {"__t__": "ObjectKey", "v": ...} exactly as msgspec writes the codec wrapper (the bytes
 * lct_scan counts as nkeys). */
static const uint8_t WRAPPER[19] = {0x82, 0xa5, '_', '_', 't', '_', '_', 0xa9, 'O', 'b',
                                    'j',  'e',  'c', 't', 'K', 'e', 'y', 0xa1, 'v'};

/* ------------------------------------------------------------- fingerprint */

#define K_GOLDEN 0x9e3779b97f4a7c15ULL
#define K_MODEL 0x13198a2e03707344ULL
#define K_SALT 0xa4093822299f31d0ULL
#define K_NOSALT 0x082efa98ec4e6c89ULL
#define K_CTX 0x452821e638d01377ULL
#define K_W1 0x87c37b91114253d5ULL
#define K_W2 0x4cf5ad432745937fULL

static uint64_t le64(const uint8_t *p) { /* compilers turn this into one load */
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

static uint64_t fold(uint64_t h, uint64_t w) {
    h ^= w * K_W1;
    h = (h << 31) | (h >> 33);
    return h * K_W2;
}

/* H(b, seed): fold each 8-byte little-endian word (the last zero-padded), then fmix64. */
uint64_t lct_hash_bytes(const uint8_t *p, size_t n, uint64_t seed) {
    uint64_t h = seed ^ ((uint64_t)n * K_GOLDEN);
    while (n >= 8) {
        h = fold(h, le64(p));
        p += 8;
        n -= 8;
    }
    if (n) {
        uint8_t t[8] = {0};
        memcpy(t, p, n);
        h = fold(h, le64(t));
    }
    return fmix64(h);
}

/* The key's context hash: H over the 32 bytes of four little-endian words. */
static uint64_t context(uint64_t h_model, int64_t kv_rank, int64_t group, uint64_t h_salt) {
    uint64_t h = K_CTX ^ (32 * K_GOLDEN);
    h = fold(h, h_model);
    h = fold(h, (uint64_t)kv_rank); /* two's complement, well defined for unsigned */
    h = fold(h, (uint64_t)group);
    h = fold(h, h_salt);
    return fmix64(h);
}

static uint64_t finish_fp(uint64_t h) { return h ? h : 1; /* 0 means "no key" */ }

uint64_t lct_key_fingerprint(const uint8_t *hash, size_t hash_len, const uint8_t *model,
                             size_t model_len, int64_t kv_rank, int64_t group,
                             const uint8_t *salt, size_t salt_len, int has_salt) {
    uint64_t ctx = context(lct_hash_bytes(model, model_len, K_MODEL), kv_rank, group,
                           has_salt ? lct_hash_bytes(salt, salt_len, K_SALT) : K_NOSALT);
    return finish_fp(lct_hash_bytes(hash, hash_len, ctx));
}

uint64_t lct_key_context(const uint8_t *model, size_t model_len, int64_t kv_rank, int64_t group,
                         const uint8_t *salt, size_t salt_len, int has_salt) {
    return context(lct_hash_bytes(model, model_len, K_MODEL), kv_rank, group,
                   has_salt ? lct_hash_bytes(salt, salt_len, K_SALT) : K_NOSALT);
}

uint64_t lct_key_fingerprint_ctx(const uint8_t *hash, size_t hash_len, uint64_t ctx) {
    return finish_fp(lct_hash_bytes(hash, hash_len, ctx));
}

/* -------------------------------------------------------- extraction state */

struct lct_keyx {
    lct_interner *names[2];
    uint64_t *hash[2]; /* per interned id: the name's lct_hash_bytes */
    uint32_t hashed[2];
    int32_t last[2]; /* the id found last time (consecutive keys share names) */
    const uint8_t *last_p[2]; /* its bytes in the interner (valid until the next intern) */
    size_t last_n[2];
    int have_ctx;    /* context() of the last key with interned names, cached */
    int32_t ctx_model, ctx_salt;
    int64_t ctx_rank, ctx_group;
    uint64_t ctx;
};

static const uint64_t NAME_SEED[2] = {K_MODEL, K_SALT};

lct_keyx *lct_keyx_new(void) {
    lct_keyx *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    for (int w = 0; w < 2; w++) {
        x->names[w] = lct_interner_new();
        x->hash[w] = malloc(sizeof(uint64_t) * LCT_MAX_OPS);
        x->last[w] = -1;
        if (!x->names[w] || !x->hash[w]) {
            lct_keyx_free(x);
            return NULL;
        }
    }
    return x;
}

void lct_keyx_free(lct_keyx *x) {
    if (!x) return;
    for (int w = 0; w < 2; w++) {
        lct_interner_free(x->names[w]);
        free(x->hash[w]);
    }
    free(x);
}

lct_interner *lct_keyx_names(lct_keyx *x, int which) {
    return (which == 0 || which == 1) ? x->names[which] : NULL;
}

/* The id of a name (or LCT_NAME_UNINTERNED) and its hash; -3 if out of memory, -4 if the
 * name is not strict UTF-8.  Only valid names are ever interned, so a name equal to the
 * last one found needs no UTF-8 check. */
static int32_t name_id(lct_keyx *x, int w, const uint8_t *s, size_t n, uint64_t *h) {
    int32_t id = x->last[w];
    if (id >= 0 && x->last_n[w] == n && (n == 0 || memcmp(x->last_p[w], s, n) == 0)) {
        *h = x->hash[w][id];
        return id;
    }
    if (!lct_utf8_valid(s, n)) return -4;
    id = lct_interner_intern(x->names[w], s, n);
    if (id == -2) return -3;
    if (id < 0) {
        *h = lct_hash_bytes(s, n, NAME_SEED[w]);
        return LCT_NAME_UNINTERNED;
    }
    while (x->hashed[w] <= (uint32_t)id) { /* ids are dense: only the newest is unhashed */
        size_t ln = 0;
        const uint8_t *p = lct_interner_name(x->names[w], x->hashed[w], &ln);
        x->hash[w][x->hashed[w]] = lct_hash_bytes(p, ln, NAME_SEED[w]);
        x->hashed[w]++;
    }
    x->last[w] = id;
    x->last_p[w] = lct_interner_name(x->names[w], (uint32_t)id, &x->last_n[w]);
    *h = x->hash[w][id];
    return id;
}

/* ------------------------------------------------------------ msgpack bits */

/* A length-prefixed payload: its 8/16/32-bit size opcodes are c8, c8 + 1, c8 + 2 (str:
 * d9..db, bin: c4..c6), and with `fix` also fixstr (a0..bf, length in the low 5 bits).
 * 1 with the payload in *s, *n (consumed); 0 another type (nothing consumed); -1
 * truncated. */
static int take_sized(const uint8_t **pp, const uint8_t *end, uint8_t c8, int fix,
                      const uint8_t **s, size_t *n) {
    const uint8_t *p = *pp;
    uint64_t len;
    if (p >= end) return -1;
    if (fix && *p >= 0xa0 && *p <= 0xbf) {
        len = *p & 0x1fu;
        p += 1;
    } else if (*p == c8) {
        if (end - p < 2) return -1;
        len = p[1];
        p += 2;
    } else if (*p == (uint8_t)(c8 + 1)) {
        if (end - p < 3) return -1;
        len = ((uint64_t)p[1] << 8) | p[2];
        p += 3;
    } else if (*p == (uint8_t)(c8 + 2)) {
        if (end - p < 5) return -1;
        len = ((uint64_t)p[1] << 24) | ((uint64_t)p[2] << 16) | ((uint64_t)p[3] << 8) | p[4];
        p += 5;
    } else {
        return 0;
    }
    if ((uint64_t)(end - p) < len) return -1;
    *s = p;
    *n = (size_t)len;
    *pp = p + len;
    return 1;
}

/* A str (fixstr, str8/16/32). */
static int take_str(const uint8_t **pp, const uint8_t *end, const uint8_t **s, size_t *n) {
    return take_sized(pp, end, 0xd9, 1, s, n);
}

/* A bin (bin8/16/32). */
static int take_bin(const uint8_t **pp, const uint8_t *end, const uint8_t **s, size_t *n) {
    return take_sized(pp, end, 0xc4, 0, s, n);
}

/* An int that fits int64: 1 (consumed).  Another type, or a uint64 above INT64_MAX:
 * 0 (nothing consumed).  Truncated: -1. */
static int take_int(const uint8_t **pp, const uint8_t *end, int64_t *out) {
    const uint8_t *p = *pp;
    uint8_t op;
    int n;
    uint64_t u = 0;
    if (p >= end) return -1;
    op = *p;
    if (op <= 0x7f) {
        *out = op;
        *pp = p + 1;
        return 1;
    }
    if (op >= 0xe0) {
        *out = (int64_t)op - 256;
        *pp = p + 1;
        return 1;
    }
    switch (op) {
    case 0xcc: case 0xd0: n = 1; break;
    case 0xcd: case 0xd1: n = 2; break;
    case 0xce: case 0xd2: n = 4; break;
    case 0xcf: case 0xd3: n = 8; break;
    default: return 0;
    }
    if (end - p - 1 < n) return -1;
    for (int i = 1; i <= n; i++) u = (u << 8) | p[i];
    if (op >= 0xd0) { /* signed: sign-extend the n-byte two's complement value */
        if (n < 8 && (u >> (8 * n - 1))) u |= ~(uint64_t)0 << (8 * n);
        memcpy(out, &u, sizeof *out);
    } else {
        if (u > (uint64_t)INT64_MAX) return 0;
        *out = (int64_t)u;
    }
    *pp = p + 1 + n;
    return 1;
}

static int key_eq(const uint8_t *k, size_t kn, const char *lit, size_t ln) {
    return kn == ln && memcmp(k, lit, ln) == 0;
}

/* --------------------------------------------------------------- one key */

typedef struct {
    uint64_t fp;
    int32_t model, salt;
    int64_t kv_rank, group;
} key_row;

typedef struct {
    const uint8_t *hash, *model, *salt;
    size_t hash_n, model_n, salt_n;
    int has_salt;
    int64_t rank, group;
} key_fields;

enum { F_ABSENT = 0, F_OK = 1, F_BAD = 2, F_NONE = 3 };

static const uint8_t C_HEAD[] = {0x84, 0xaa, 'c', 'h', 'u', 'n', 'k', '_', 'h', 'a', 's', 'h',
                                 0xc4};
static const uint8_t C_MODEL[] = {0xaa, 'm', 'o', 'd', 'e', 'l', '_', 'n', 'a', 'm', 'e'};
static const uint8_t C_RANK[] = {0xa7, 'k', 'v', '_', 'r', 'a', 'n', 'k'};
static const uint8_t C_GROUP[] = {0xaf, 'o', 'b', 'j', 'e', 'c', 't', '_', 'g', 'r', 'o', 'u',
                                  'p', '_', 'i', 'd'};

/* The layout upstream writes ({chunk_hash: bin8, model_name: fixstr, kv_rank: int,
 * object_group_id: int}), read directly: 1 if it matched (same fields the generic walk
 * would give), 0 if the generic walk must decide. */
static int fields_canonical(const uint8_t *p, const uint8_t *end, key_fields *f) {
    size_t n;
    if ((size_t)(end - p) < sizeof C_HEAD + 1 || memcmp(p, C_HEAD, sizeof C_HEAD) != 0)
        return 0;
    p += sizeof C_HEAD;
    n = *p++;
    if ((size_t)(end - p) < n + sizeof C_MODEL + 1) return 0;
    f->hash = p;
    f->hash_n = n;
    p += n;
    if (memcmp(p, C_MODEL, sizeof C_MODEL) != 0) return 0;
    p += sizeof C_MODEL;
    if (*p < 0xa0 || *p > 0xbf) return 0;
    n = *p++ & 0x1fu;
    if ((size_t)(end - p) < n + sizeof C_RANK) return 0;
    f->model = p;
    f->model_n = n;
    p += n;
    if (memcmp(p, C_RANK, sizeof C_RANK) != 0) return 0;
    p += sizeof C_RANK;
    if (take_int(&p, end, &f->rank) != 1) return 0;
    if ((size_t)(end - p) < sizeof C_GROUP || memcmp(p, C_GROUP, sizeof C_GROUP) != 0) return 0;
    p += sizeof C_GROUP;
    if (take_int(&p, end, &f->group) != 1) return 0;
    f->has_salt = 0;
    return 1;
}

/* Any map: fields from their last occurrence.  LCT_KEY_OK or LCT_KEY_MALFORMED (names are
 * not yet UTF-8-checked). */
static int fields_generic(const uint8_t *p, const uint8_t *end, key_fields *f) {
    uint64_t entries;
    int st_hash = F_ABSENT, st_model = F_ABSENT, st_rank = F_ABSENT, st_group = F_ABSENT,
        st_salt = F_ABSENT;
    if (p >= end) return LCT_KEY_MALFORMED;
    if (*p >= 0x80 && *p <= 0x8f) {
        entries = *p & 0x0fu;
        p += 1;
    } else if (*p == 0xde) {
        if (end - p < 3) return LCT_KEY_MALFORMED;
        entries = ((uint64_t)p[1] << 8) | p[2];
        p += 3;
    } else if (*p == 0xdf) {
        if (end - p < 5) return LCT_KEY_MALFORMED;
        entries = ((uint64_t)p[1] << 24) | ((uint64_t)p[2] << 16) | ((uint64_t)p[3] << 8) | p[4];
        p += 5;
    } else {
        return LCT_KEY_MALFORMED;
    }
    if (entries > (uint64_t)(end - p) / 2) return LCT_KEY_MALFORMED; /* 2 bytes per entry */
    f->group = 0;
    for (uint64_t i = 0; i < entries; i++) {
        const uint8_t *kp;
        size_t kn;
        int rc = take_str(&p, end, &kp, &kn);
        int *st = NULL;
        if (rc < 0) return LCT_KEY_MALFORMED;
        if (rc == 0) { /* a key that is not a str: skipped with its value */
            if (lct_skip_value(&p, end) || lct_skip_value(&p, end)) return LCT_KEY_MALFORMED;
            continue;
        }
        if (key_eq(kp, kn, "chunk_hash", 10)) {
            rc = take_bin(&p, end, &f->hash, &f->hash_n);
            st = &st_hash;
        } else if (key_eq(kp, kn, "model_name", 10)) {
            rc = take_str(&p, end, &f->model, &f->model_n);
            st = &st_model;
        } else if (key_eq(kp, kn, "kv_rank", 7)) {
            rc = take_int(&p, end, &f->rank);
            st = &st_rank;
        } else if (key_eq(kp, kn, "object_group_id", 15)) {
            rc = take_int(&p, end, &f->group);
            st = &st_group;
        } else if (key_eq(kp, kn, "cache_salt", 10)) {
            rc = take_str(&p, end, &f->salt, &f->salt_n);
            st = &st_salt;
        } else {
            rc = 0;
        }
        if (rc < 0) return LCT_KEY_MALFORMED;
        if (rc == 1) {
            *st = F_OK;
            continue;
        }
        if (lct_skip_value(&p, end)) return LCT_KEY_MALFORMED;
        if (st) *st = (st == &st_salt) ? F_NONE : F_BAD; /* a non-str salt means none */
    }
    if (st_hash != F_OK || st_model != F_OK || st_rank != F_OK) return LCT_KEY_MALFORMED;
    if (st_group == F_BAD) return LCT_KEY_MALFORMED;
    if (st_group == F_ABSENT) f->group = 0;
    f->has_salt = st_salt == F_OK;
    return LCT_KEY_OK;
}

/* Parse the payload at p (the value after a wrapper), inside [p, end).  Returns
 * LCT_KEY_OK / LCT_KEY_MALFORMED, or -3 (no memory). */
static int parse_key(const uint8_t *p, const uint8_t *end, lct_keyx *x, key_row *k) {
    key_fields f;
    uint64_t h_model, h_salt = K_NOSALT, ctx;
    if (!fields_canonical(p, end, &f) && fields_generic(p, end, &f) != LCT_KEY_OK)
        return LCT_KEY_MALFORMED;
    /* Validate both names before interning either: a malformed key interns nothing. */
    if (f.has_salt && !lct_utf8_valid(f.salt, f.salt_n)) return LCT_KEY_MALFORMED;
    k->model = name_id(x, 0, f.model, f.model_n, &h_model);
    if (k->model == -3) return -3;
    if (k->model == -4) return LCT_KEY_MALFORMED;
    k->salt = LCT_NAME_NONE;
    if (f.has_salt) {
        k->salt = name_id(x, 1, f.salt, f.salt_n, &h_salt);
        if (k->salt == -3) return -3;
        if (k->salt == -4) return LCT_KEY_MALFORMED;
    }
    k->kv_rank = f.rank;
    k->group = f.group;
    if (x->have_ctx && k->model == x->ctx_model && k->salt == x->ctx_salt &&
        f.rank == x->ctx_rank && f.group == x->ctx_group && k->model >= 0 &&
        k->salt != LCT_NAME_UNINTERNED) {
        ctx = x->ctx;
    } else {
        ctx = context(h_model, f.rank, f.group, h_salt);
        if (k->model >= 0 && k->salt != LCT_NAME_UNINTERNED) {
            x->have_ctx = 1;
            x->ctx_model = k->model;
            x->ctx_salt = k->salt;
            x->ctx_rank = f.rank;
            x->ctx_group = f.group;
            x->ctx = ctx;
        }
    }
    k->fp = finish_fp(lct_hash_bytes(f.hash, f.hash_n, ctx));
    return LCT_KEY_OK;
}

/* The span of the record's (last) "args" value.  The record was accepted by lct_scan,
 * so when "args" is the last entry it runs to the end of the body; otherwise it is
 * skipped.  -1 if the body does not walk as a record map (then it has no keys). */
static int find_args(const uint8_t *p, const uint8_t *end, const uint8_t **a0,
                     const uint8_t **a1) {
    uint64_t entries;
    int found = 0;
    {
        /* The canonical layout: "args" is the fifth and last entry (same as the walk). */
        const uint8_t *s, *q;
        size_t n;
        if (lct_record_head(p, end, &s, &n, &q) && q < end) {
            *a0 = q;
            *a1 = end;
            return 0;
        }
    }
    if (p >= end) return -1;
    if (*p >= 0x80 && *p <= 0x8f) {
        entries = *p & 0x0fu;
        p += 1;
    } else if (*p == 0xde) {
        if (end - p < 3) return -1;
        entries = ((uint64_t)p[1] << 8) | p[2];
        p += 3;
    } else if (*p == 0xdf) {
        if (end - p < 5) return -1;
        entries = ((uint64_t)p[1] << 24) | ((uint64_t)p[2] << 16) | ((uint64_t)p[3] << 8) | p[4];
        p += 5;
    } else {
        return -1;
    }
    for (uint64_t i = 0; i < entries; i++) {
        const uint8_t *kp;
        size_t kn;
        if (take_str(&p, end, &kp, &kn) != 1) return -1;
        if (key_eq(kp, kn, "args", 4)) {
            *a0 = p;
            if (i + 1 == entries) {
                *a1 = end;
                return p < end ? 0 : -1;
            }
            if (lct_skip_value(&p, end)) return -1;
            *a1 = p;
            found = 1;
        } else if (lct_skip_value(&p, end)) {
            return -1;
        }
    }
    return found ? 0 : -1;
}

int lct_extract_keys(const uint8_t *buf, size_t len, int64_t base, const int64_t *offset,
                     const uint32_t *length, const uint8_t *status, size_t nrows,
                     lct_key_cursor *cur, lct_keyx *x, lct_keys *out) {
    const size_t m = sizeof WRAPPER;
    while (cur->row < nrows) {
        size_t r = cur->row;
        int64_t rel = offset[r] - base;
        const uint8_t *body, *a0 = NULL, *a1 = NULL, *p;
        if (status[r] == LCT_ROW_MALFORMED) {
            cur->row++;
            cur->at = 0;
            continue;
        }
        if (rel < 0 || (uint64_t)rel > len || len - (size_t)rel < 4 ||
            len - (size_t)rel - 4 < length[r])
            return -2;
        body = buf + rel + 4;
        if (find_args(body, body + length[r], &a0, &a1) == 0) {
            p = a0;
            if (cur->at) {
                if (cur->at < (size_t)(a0 - buf) || cur->at > (size_t)(a1 - buf)) return -2;
                p = buf + cur->at;
            }
            while ((size_t)(a1 - p) >= m) {
                const uint8_t *hit = memchr(p, WRAPPER[0], (size_t)(a1 - p) - m + 1);
                size_t i;
                key_row k;
                int st;
                if (!hit) break;
                if (memcmp(hit, WRAPPER, m) != 0) {
                    p = hit + 1;
                    continue;
                }
                if (out->count >= out->capacity) {
                    cur->at = (size_t)(hit - buf);
                    return LCT_STOP_FULL;
                }
                st = parse_key(hit + m, a1, x, &k);
                if (st == -3) return -1;
                i = out->count++;
                out->row[i] = (int32_t)r;
                out->status[i] = (uint8_t)st;
                if (st == LCT_KEY_OK) {
                    out->fp[i] = k.fp;
                    out->model[i] = k.model;
                    out->salt[i] = k.salt;
                    out->kv_rank[i] = k.kv_rank;
                    out->group[i] = k.group;
                } else {
                    out->fp[i] = 0;
                    out->model[i] = -1;
                    out->salt[i] = LCT_NAME_NONE;
                    out->kv_rank[i] = 0;
                    out->group[i] = 0;
                }
                p = hit + m;
            }
        }
        cur->row++;
        cur->at = 0;
    }
    return LCT_STOP_END;
}

/* ------------------------------------------------------------------ keytab */

size_t lct_keytab_intern(lct_keytab *t, const uint64_t *fp, const uint8_t *use, size_t n,
                         int32_t *out) {
    size_t full = 0;
    uint32_t shift, mask;
    if (t->bits < 1 || t->bits > 31 || ((uint64_t)1 << t->bits) < 2 * (uint64_t)t->max_keys ||
        t->count > t->max_keys)
        return (size_t)-1;
    shift = 64 - t->bits;
    mask = ((uint32_t)1 << t->bits) - 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t f = fp[i];
        uint32_t j;
#if defined(__GNUC__) || defined(__clang__)
        /* A later row's slot, asked for early (the table is far bigger than the caches). */
        if (i + 16 < n) __builtin_prefetch(t->slots + (uint32_t)(fp[i + 16] >> shift));
        if (i + 8 < n) {
            int32_t ahead = t->slots[(uint32_t)(fp[i + 8] >> shift)];
            if (ahead >= 0 && (uint32_t)ahead < t->count) __builtin_prefetch(t->fps + ahead);
        }
#endif
        if (!use[i]) {
            out[i] = -2;
            continue;
        }
        j = (uint32_t)(f >> shift);
        for (;;) {
            int32_t id = t->slots[j];
            if (id >= (int32_t)t->count) return (size_t)-1; /* not a table this built */
            if (id < 0) {
                if (t->count >= t->max_keys) {
                    out[i] = -1;
                    full++;
                } else {
                    id = (int32_t)t->count++;
                    t->fps[id] = f;
                    t->slots[j] = id;
                    out[i] = id;
                }
                break;
            }
            if (t->fps[id] == f) {
                out[i] = id;
                break;
            }
            j = (j + 1) & mask;
        }
    }
    return full;
}

int lct_find_args(const uint8_t *p, const uint8_t *end, const uint8_t **a0,
                  const uint8_t **a1) {
    return find_args(p, end, a0, a1);
}
