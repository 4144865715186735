/* lct_events.c - the events level (`events.batch` records) decoded in C.
 *
 * Only records whose args read unambiguously are decoded here; for anything else the
 * row gets status 0 and the caller decodes it with msgspec (inferguard/lct/_events.py),
 * so the result is what the msgspec path gives by construction.  Taken here: args a map
 * with str keys, no known field twice; scalar values (containers only where the schema
 * has them: `entries`, each entry's `key`, and arrays of scalars elsewhere); every str
 * valid UTF-8; chunk_hash_hex only hex digits (at most LCT_EV_MAX_HEX).  Every read is
 * bounds-checked against the end of the args value. */
#include "lct.h"

#include <string.h>

#define LCT_EV_MAX_HEX 512

enum { V_STR = 0, V_NIL = 1, V_OTHER = 2, V_ABSENT = 3, V_INT = 4, V_BOOL = 5, V_UBIG = 6,
       V_BIN = 7 };

typedef struct {
    int kind;
    const uint8_t *s; /* V_STR */
    size_t n;
    int64_t i; /* V_INT */
} scal;

static uint64_t bep(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

/* 1 if s[0..n) is all ASCII: words of 8 (the last one overlapping), then 4, 2, 1. */
static int ascii(const uint8_t *s, size_t n) {
    uint64_t any = 0, w;
    uint32_t h;
    uint16_t q;
    if (n >= 8) {
        size_t i;
        for (i = 0; i + 8 <= n; i += 8) {
            memcpy(&w, s + i, 8);
            any |= w;
        }
        memcpy(&w, s + n - 8, 8);
        return !((any | w) & 0x8080808080808080ULL);
    }
    if (n >= 4) {
        memcpy(&h, s, 4);
        any = h;
        memcpy(&h, s + n - 4, 4);
        any |= h;
    } else if (n >= 2) {
        memcpy(&q, s, 2);
        any = q;
        memcpy(&q, s + n - 2, 2);
        any |= q;
    } else if (n == 1) {
        any = s[0];
    }
    return !(any & 0x80808080u);
}

/* One scalar value at *pp: 1 read (consumed), 0 a container/ext or invalid UTF-8 (the
 * caller falls back), -1 truncated. */
static inline int scalar(const uint8_t **pp, const uint8_t *end, scal *v) {
    const uint8_t *p = *pp;
    uint8_t op;
    uint64_t len;
    int n;
    if (p >= end) return -1;
    op = *p++;
    v->kind = V_OTHER;
    if (op <= 0x7f) { v->kind = V_INT; v->i = op; goto done; }
    if (op >= 0xe0) { v->kind = V_INT; v->i = (int64_t)op - 256; goto done; }
    if (op >= 0xa0 && op <= 0xbf) { len = op & 0x1fu; goto str; }
    switch (op) {
    case 0xc0: v->kind = V_NIL; goto done;
    case 0xc2: case 0xc3: v->kind = V_BOOL; v->i = op == 0xc3; goto done;
    case 0xd9: case 0xda: case 0xdb:
        n = op == 0xd9 ? 1 : op == 0xda ? 2 : 4;
        if (end - p < n) return -1;
        len = bep(p, n);
        p += n;
        goto str;
    case 0xc4: case 0xc5: case 0xc6: /* bin: a non-str value */
        n = op == 0xc4 ? 1 : op == 0xc5 ? 2 : 4;
        if (end - p < n) return -1;
        len = bep(p, n);
        p += n;
        if ((uint64_t)(end - p) < len) return -1;
        p += len;
        v->kind = V_BIN;
        v->n = (size_t)len;
        goto done;
    case 0xca: n = 4; goto fixed;
    case 0xcb: n = 8; goto fixed;
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        uint64_t u;
        n = 1 << ((op - 0xcc) & 3);
        if (end - p < n) return -1;
        u = bep(p, n);
        p += n;
        if (op >= 0xd0) {
            if (n < 8 && (u >> (8 * n - 1))) u |= ~(uint64_t)0 << (8 * n);
            memcpy(&v->i, &u, sizeof v->i);
            v->kind = V_INT;
        } else if (u > (uint64_t)INT64_MAX) {
            v->kind = V_UBIG;
        } else {
            v->i = (int64_t)u;
            v->kind = V_INT;
        }
        goto done;
    }
    default:
        return 0; /* map, array, ext, 0xc1 */
    }
fixed:
    if (end - p < n) return -1;
    p += n;
    goto done;
str:
    if ((uint64_t)(end - p) < len) return -1;
    {
        /* ASCII is valid UTF-8: test 8 bytes at a time, validate only the rest */
        if (!ascii(p, (size_t)len) && !lct_utf8_valid(p, (size_t)len)) return 0;
    }
    v->kind = V_STR;
    v->s = p;
    v->n = (size_t)len;
    p += len;
done:
    *pp = p;
    return 1;
}

/* A map or array header: 1 with the count, 0 another type, -1 truncated. */
static int container(const uint8_t **pp, const uint8_t *end, int map, uint64_t *count) {
    const uint8_t *p = *pp;
    uint8_t fix = map ? 0x80 : 0x90, c16 = map ? 0xde : 0xdc;
    if (p >= end) return -1;
    if (*p >= fix && *p <= fix + 0x0f) {
        *count = *p & 0x0fu;
        p += 1;
    } else if (*p == c16 || *p == c16 + 1) {
        int n = *p == c16 ? 2 : 4;
        if (end - p - 1 < n) return -1;
        *count = bep(p + 1, n);
        p += 1 + n;
    } else {
        return 0;
    }
    /* each element needs at least one byte */
    if (*count > (uint64_t)(end - p)) return -1;
    *pp = p;
    return 1;
}

/* The encoded size of a fixed-size scalar by its first byte (ints, nil, bools, floats);
 * 0 for everything else (str, bin, containers, ext, 0xc1). */
static size_t fixlen(uint8_t op) {
    if (op <= 0x7f || op >= 0xe0) return 1;
    switch (op) {
    case 0xc0: case 0xc2: case 0xc3: return 1;
    case 0xcc: case 0xd0: return 2;
    case 0xcd: case 0xd1: return 3;
    case 0xca: case 0xce: case 0xd2: return 5;
    case 0xcb: case 0xcf: case 0xd3: return 9;
    default: return 0;
    }
}

/* n array elements that are scalars (token ids): 1, else 0 (a container) / -1. Runs of
 * fixed-size scalars are skipped by size alone; the rest go through scalar(). */
static int scalars(const uint8_t **pp, const uint8_t *end, uint64_t n) {
    const uint8_t *p = *pp;
    scal v;
    for (uint64_t i = 0; i < n; i++) {
        size_t k;
        if (p >= end) return -1;
        /* the commonest token ids with constant steps (a predicted branch lets the walk run
         * ahead of the loads; a size looked up from the byte does not) */
        if (*p == 0xcd) k = 3;
        else if (*p == 0xce) k = 5;
        else if (*p <= 0x7f) k = 1;
        else k = fixlen(*p);
        if (k) {
            if ((size_t)(end - p) < k) return -1;
            p += k;
            continue;
        }
        {
            int rc = scalar(&p, end, &v);
            if (rc != 1) return rc;
        }
    }
    *pp = p;
    return 1;
}

/* A value that is a scalar or an array of scalars (token_ids): 1, else 0/-1. */
static int flat_value(const uint8_t **pp, const uint8_t *end) {
    scal v;
    uint64_t n;
    int rc = container(pp, end, 0, &n);
    if (rc < 0) return -1;
    if (rc == 0) return scalar(pp, end, &v);
    return scalars(pp, end, n);
}

/* Python's bool() of a scalar as msgspec decodes it: 0/1, or -1 where this file does not
 * reproduce it (floats; the summary then decodes the record with msgspec). */
static int truth(const scal *v) {
    switch (v->kind) {
    case V_NIL: case V_ABSENT: return 0;
    case V_BOOL: case V_INT: return v->i != 0;
    case V_UBIG: return 1;
    case V_STR: case V_BIN: return v->n != 0;
    default: return -1;
    }
}

/* flat_value, also giving bool() of the value (an array: non-empty). */
static int flat_truth(const uint8_t **pp, const uint8_t *end, int *t) {
    scal v;
    uint64_t n;
    int rc = container(pp, end, 0, &n);
    if (rc < 0) return -1;
    if (rc == 0) {
        rc = scalar(pp, end, &v);
        *t = rc == 1 ? truth(&v) : -1;
        return rc;
    }
    *t = n != 0;
    return scalars(pp, end, n);
}

static inline int str_key(const uint8_t **pp, const uint8_t *end, const uint8_t **k,
                          size_t *kn) {
    scal v;
    int rc;
    const uint8_t *p = *pp;
    if (p < end && (*p & 0xe0) == 0xa0) { /* a fixstr key: the common case, read here */
        size_t n = *p & 0x1fu;
        if ((size_t)(end - p - 1) < n) return -1;
        if (!ascii(p + 1, n) && !lct_utf8_valid(p + 1, n)) return 0;
        *k = p + 1;
        *kn = n;
        *pp = p + 1 + n;
        return 1;
    }
    rc = scalar(pp, end, &v);
    if (rc != 1) return rc;
    if (v.kind != V_STR) return 0;
    *k = v.s;
    *kn = v.n;
    return 1;
}

/* k[0..kn) == the string literal `lit` (its length known at compile time). */
#define IS(k, kn, lit) ((kn) == sizeof(lit) - 1 && memcmp((k), (lit), sizeof(lit) - 1) == 0)

/* Hex digit value + 1 (0: not a hex digit). */
static const uint8_t HEX1[256] = {
    ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,
    ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15,
    ['f'] = 16, ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16};

/* The context hash of the last key (consecutive keys share model, rank, group, salt). */
typedef struct {
    int have;
    const uint8_t *model, *salt;
    size_t model_n, salt_n;
    int has_salt;
    int64_t rank, group;
    uint64_t ctx;
} ctx_cache;

static int same(const uint8_t *a, size_t an, const uint8_t *b, size_t bn) {
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

static uint64_t key_fp(ctx_cache *c, const uint8_t *hash, size_t hn, const scal *model,
                       int64_t rank, int64_t group, const scal *salt) {
    int has_salt = salt->kind == V_STR;
    if (!(c->have && c->rank == rank && c->group == group && c->has_salt == has_salt &&
          same(c->model, c->model_n, model->s, model->n) &&
          (!has_salt || same(c->salt, c->salt_n, salt->s, salt->n)))) {
        c->have = 1;
        c->model = model->s;
        c->model_n = model->n;
        c->salt = has_salt ? salt->s : NULL;
        c->salt_n = has_salt ? salt->n : 0;
        c->has_salt = has_salt;
        c->rank = rank;
        c->group = group;
        c->ctx = lct_key_context(model->s, model->n, rank, group, c->salt, c->salt_n,
                                 has_salt);
    }
    return lct_key_fingerprint_ctx(hash, hn, c->ctx);
}

/* The entry's key: 1 with *fp (0 = malformed key, as the Python rules say), 0 fall back,
 * -1 truncated. */
static int read_key(const uint8_t **pp, const uint8_t *end, ctx_cache *cc, uint64_t *fp) {
    uint64_t n;
    scal hh = {V_ABSENT, 0, 0, 0}, model = {V_ABSENT, 0, 0, 0}, rank = {V_ABSENT, 0, 0, 0};
    scal group = {V_ABSENT, 0, 0, 0}, salt = {V_ABSENT, 0, 0, 0};
    uint8_t raw[LCT_EV_MAX_HEX / 2];
    int rc = container(pp, end, 1, &n);
    if (rc < 0) return -1;
    if (rc == 0) { /* not a dict: malformed, if it reads as a scalar */
        scal v;
        rc = scalar(pp, end, &v);
        *fp = 0;
        return rc;
    }
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *k;
        size_t kn;
        scal v, *dst = NULL;
        rc = str_key(pp, end, &k, &kn);
        if (rc != 1) return rc;
        rc = scalar(pp, end, &v);
        if (rc != 1) return rc;
        if (IS(k, kn, "chunk_hash_hex")) dst = &hh;
        else if (IS(k, kn, "model_name")) dst = &model;
        else if (IS(k, kn, "kv_rank")) dst = &rank;
        else if (IS(k, kn, "object_group_id")) dst = &group;
        else if (IS(k, kn, "cache_salt")) dst = &salt;
        if (dst) {
            if (dst->kind != V_ABSENT) return 0; /* duplicate: let msgspec/dict decide */
            *dst = v;
        }
    }
    *fp = 0;
    if (!cc) return 1; /* no fingerprints wanted (the summary's decode) */
    if (hh.kind != V_STR) return 1; /* missing (KeyError) or not a str (TypeError) */
    if (hh.n > LCT_EV_MAX_HEX) return 0;
    {
        uint8_t bad = 0;
        size_t i;
        for (i = 0; i + 1 < hh.n; i += 2) {
            uint8_t a = HEX1[hh.s[i]], b = HEX1[hh.s[i + 1]];
            bad |= (uint8_t)(!a | !b);
            raw[i / 2] = (uint8_t)(((a - 1) & 0x0f) << 4 | ((b - 1) & 0x0f));
        }
        if (i < hh.n) bad |= (uint8_t)!HEX1[hh.s[i]];
        if (bad) return 0; /* whitespace etc.: bytes.fromhex decides */
    }
    if (hh.n & 1) return 1; /* odd length: ValueError */
    if (model.kind != V_STR) return 1;
    if (rank.kind == V_ABSENT) { rank.kind = V_INT; rank.i = 0; }
    if (group.kind == V_ABSENT) { group.kind = V_INT; group.i = 0; }
    if (rank.kind != V_INT || group.kind != V_INT) return 1;
    *fp = key_fp(cc, raw, hh.n / 2, &model, rank.i, group.i, &salt);
    return 1;
}

/* What the summary's lenient events block needs from the entries (lct_events_decode's
 * columns 18-20): ok = its int()/bool() of every size_bytes / token_ids is reproduced. */
typedef struct {
    int ok;
    int64_t tokens; /* entries whose token_ids is truthy */
} sum_info;

/* One entry map: 1 (fp and size added), 0 fall back, -1 truncated. */
static int read_entry(const uint8_t **pp, const uint8_t *end, ctx_cache *cc, uint64_t *fp,
                      int64_t *size, sum_info *si) {
    uint64_t n;
    int have_key = 0, have_size = 0, have_tok = 0;
    int rc = container(pp, end, 1, &n);
    if (rc != 1) return rc;
    *fp = 0; /* key absent: None, malformed */
    *size = 0;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *k;
        size_t kn;
        rc = str_key(pp, end, &k, &kn);
        if (rc != 1) return rc;
        if (IS(k, kn, "key")) {
            if (have_key++) return 0;
            rc = read_key(pp, end, cc, fp);
        } else if (IS(k, kn, "size_bytes")) {
            scal v;
            if (have_size++) return 0;
            rc = scalar(pp, end, &v);
            if (rc == 1 && v.kind == V_UBIG) return 0;
            if (rc == 1 && v.kind != V_INT) si->ok = 0; /* int(x) of a float, bool, ... */
            *size = v.kind == V_INT ? v.i : 0;
        } else if (IS(k, kn, "token_ids")) {
            int t = 0;
            rc = flat_truth(pp, end, &t);
            if (have_tok++ || t < 0) si->ok = 0;
            else if (t) si->tokens++;
        } else {
            rc = flat_value(pp, end);
        }
        if (rc != 1) return rc;
    }
    return 1;
}

static void span(const scal *v, const uint8_t *buf, int64_t *out) {
    out[0] = v->kind == V_STR ? 0 : v->kind == V_NIL ? 1 : v->kind == V_ABSENT ? 3 : 2;
    out[1] = v->kind == V_STR ? (int64_t)(v->s - buf) : 0;
    out[2] = v->kind == V_STR ? (int64_t)v->n : 0;
}

/* One events.batch args value [p, end): 1 decoded (row filled, fps appended), 0 not
 * taken here. */
static int decode_batch(const uint8_t *buf, const uint8_t *p, const uint8_t *end,
                        ctx_cache *cc, int64_t *row, uint64_t *fp, size_t fp_cap,
                        size_t *fp_n) {
    uint64_t n;
    scal f[5]; /* event_type, tier, backend, instance_id, incarnation */
    int have_entries = 0, have_shared = 0, shared = 0;
    sum_info si = {1, 0};
    size_t start = *fp_n, count = 0;
    int64_t total = 0;
    for (int j = 0; j < 5; j++) f[j].kind = V_ABSENT;
    if (container(&p, end, 1, &n) != 1) return 0;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *k;
        size_t kn;
        int j, rc;
        if (str_key(&p, end, &k, &kn) != 1) return 0;
        j = IS(k, kn, "event_type") ? 0 : IS(k, kn, "tier") ? 1 : IS(k, kn, "backend") ? 2
            : IS(k, kn, "instance_id") ? 3 : IS(k, kn, "incarnation") ? 4 : 5;
        if (j < 5) {
            scal v;
            if (f[j].kind != V_ABSENT) return 0;
            if (scalar(&p, end, &v) != 1) return 0;
            if (j == 4 && v.kind == V_UBIG) return 0;
            f[j] = v;
        } else if (IS(k, kn, "entries")) {
            uint64_t m;
            if (have_entries++) return 0;
            if (container(&p, end, 0, &m) != 1) return 0;
            if (fp && m > fp_cap - *fp_n) return 0;
            for (uint64_t e = 0; e < m; e++) {
                int64_t sz;
                uint64_t unused;
                if (read_entry(&p, end, fp ? cc : NULL, fp ? &fp[*fp_n] : &unused, &sz, &si)
                    != 1)
                    return 0;
                if ((sz > 0 && total > INT64_MAX - sz) || (sz < 0 && total < INT64_MIN - sz))
                    return 0;
                total += sz;
                if (fp) (*fp_n)++;
            }
            count = (size_t)m;
        } else if (IS(k, kn, "shared")) {
            if (have_shared++) return 0;
            if (flat_truth(&p, end, &shared) != 1) return 0;
            if (shared < 0) si.ok = 0;
        } else {
            rc = flat_value(&p, end);
            if (rc != 1) return 0;
        }
    }
    if (p != end) return 0;
    /* int(incarnation) is reproduced for an int or an absent one (0), not a bool or float */
    if (f[4].kind != V_INT && f[4].kind != V_ABSENT) si.ok = 0;
    row[18] = si.ok;
    row[19] = shared > 0;
    row[20] = si.tokens;
    row[0] = 1;
    for (int j = 0; j < 4; j++) span(&f[j], buf, row + 1 + 3 * j);
    row[13] = f[4].kind == V_INT ? 1 : 0;
    row[14] = f[4].kind == V_INT ? f[4].i : 0;
    row[15] = (int64_t)count;
    row[16] = total;
    row[17] = (int64_t)start;
    return 1;
}

/* The record is {"type": "record", "t_mono": f64, "t_wall": f64, "qualname": str,
 * "args": ...} in that order, with args at a0 (lct_scan checked the qualname's UTF-8):
 * then msgspec decodes the whole body exactly when it decodes args. */
static int canonical(const uint8_t *p, const uint8_t *a0) {
    static const uint8_t head[] = {0x85, 0xa4, 't', 'y', 'p', 'e', 0xa6, 'r', 'e', 'c', 'o',
                                   'r', 'd', 0xa6, 't', '_', 'm', 'o', 'n', 'o', 0xcb};
    static const uint8_t wall[] = {0xa6, 't', '_', 'w', 'a', 'l', 'l', 0xcb};
    static const uint8_t qual[] = {0xa8, 'q', 'u', 'a', 'l', 'n', 'a', 'm', 'e'};
    static const uint8_t args[] = {0xa4, 'a', 'r', 'g', 's'};
    const size_t fixed = sizeof head + 8 + sizeof wall + 8 + sizeof qual;
    size_t avail = (size_t)(a0 - p), hdr, qn;
    const uint8_t *q = p + fixed;
    if (avail < fixed + 1 + sizeof args) return 0;
    if (memcmp(p, head, sizeof head) || memcmp(p + sizeof head + 8, wall, sizeof wall) ||
        memcmp(p + sizeof head + 8 + sizeof wall + 8, qual, sizeof qual))
        return 0;
    if (*q >= 0xa0 && *q <= 0xbf) { hdr = 1; qn = *q & 0x1fu; }
    else if (*q == 0xd9 && avail >= fixed + 2) { hdr = 2; qn = q[1]; }
    else return 0;
    if (avail - fixed != hdr + qn + sizeof args) return 0;
    return memcmp(q + hdr + qn, args, sizeof args) == 0;
}

/* The ids of a decoded row's four name fields (columns 21-24; -1: not a str, or no id). */
static void name_ids(const uint8_t *buf, int64_t *row, lct_interner *names, int32_t *recent) {
    for (int j = 0; j < 4; j++) {
        const int64_t *s = row + 1 + 3 * j;
        int32_t id = -1;
        if (names && s[0] == 0) {
            id = ig_intern_recent(&names->in, &recent[j], buf + s[1], (size_t)s[2]);
            if (id < 0) id = -1;
        }
        row[21 + j] = id;
    }
}

size_t lct_events_decode(const uint8_t *buf, size_t len, int64_t base, const int64_t *offset,
                         const uint32_t *length, size_t nrows, size_t first, int64_t *rows,
                         uint64_t *fp, size_t fp_cap, size_t *fp_n, lct_interner *names) {
    size_t i;
    ctx_cache cc;
    int32_t recent[4] = {-1, -1, -1, -1};
    memset(&cc, 0, sizeof cc);
    *fp_n = 0;
    for (i = first; i < nrows; i++) {
        int64_t *row = rows + LCT_EV_COLS * (i - first);
        const uint8_t *a0, *a1;
        size_t before = *fp_n;
        int64_t rel = offset[i] - base;
        memset(row, 0, LCT_EV_COLS * sizeof *row);
        row[21] = row[22] = row[23] = row[24] = -1;
        if (rel < 0 || (uint64_t)rel > len || len - (size_t)rel < 4 ||
            len - (size_t)rel - 4 < length[i])
            continue; /* not inside this buffer: status 0, the caller decides */
        if (lct_find_args(buf + rel + 4, buf + rel + 4 + length[i], &a0, &a1)) continue;
        /* A row whose entries may not fit: stop so the caller can flush, unless it is
         * the first (then it falls back, which keeps the loop moving). */
        if (fp && (size_t)(a1 - a0) > fp_cap - *fp_n && *fp_n > 0) break;
        if (!decode_batch(buf, a0, a1, &cc, row, fp, fp_cap, fp_n)) {
            memset(row, 0, LCT_EV_COLS * sizeof *row);
            row[21] = row[22] = row[23] = row[24] = -1;
            *fp_n = before;
            continue;
        }
        if (!canonical(buf + rel + 4, a0))
            row[18] = 0; /* other record fields: the summary's full decode decides */
        name_ids(buf, row, names, recent);
    }
    return i;
}
