/* lct_scrub.c - see inferguard_api.h, "Trace scrub plan".  Which record frames the
 * scrubbed copy can take as they are with a few same-length spans overwritten, and
 * where those spans are.  The rule it decides is in inferguard/lct/_scrub.py: a frame is
 * "fast" only when msgspec's encoder, given what msgspec's decoder makes of its body,
 * writes the same bytes back (every header the smallest form, float64, str keys, no
 * duplicate keys, no ext) and everything the scrub walk would change in it keeps its
 * length: `bin` values inside `args` (fingerprints), an all-hex even-length
 * chunk_hash_hex (the hex of its fingerprint), token_ids of one-byte ints (zeros); an
 * empty cache_salt stays as it is.  A non-empty salt, any other form of those keys, one
 * of them outside `args`, a hex key or token ids in a frame with a "__t__" key (the
 * ObjectKey rewrite treats them differently), a "__t__" key out of first place, or
 * nesting deeper than 64 make a frame "slow": the Python walk decides it (dropping it
 * when it does not decode).  Being slow is always correct; being fast must be exact.
 * Every read is bounds-checked. */
#include "api.h"
#include "mix.h"
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

#define SCRUB_MAX_DEPTH 64 /* the walk refuses > 200; msgspec decodes far deeper */
#define SCRUB_MAX_MAP 32   /* keys per map checked pairwise for duplicates */

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    const uint8_t *base; /* item offsets are reported relative to it */
    int64_t *off;
    uint32_t *len;
    uint8_t *kind;
    size_t cap;
    size_t n;        /* items found (may exceed cap: then only cap are written) */
    uint64_t hashes; /* fingerprints the walk would take (bins and hex keys) */
    uint64_t tokens; /* token ids it would zero */
    int saw_tag;     /* a "__t__" key */
    int saw_special; /* a chunk_hash_hex or token_ids key */
} scrub_rd;

static void item(scrub_rd *r, const uint8_t *at, uint64_t n, uint8_t kind) {
    if (r->n < r->cap) {
        r->off[r->n] = (int64_t)(at - r->base);
        r->len[r->n] = (uint32_t)n;
        r->kind[r->n] = kind;
    }
    r->n++;
}

static int hexdigit(uint8_t c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static uint64_t sbe(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

/* The `width`-byte length of a str/bin header: 0 and *len when it is at least `lo` (the
 * smallest length that form is used for) and the payload is inside the buffer, else -1. */
static int take_len(scrub_rd *r, size_t width, uint64_t lo, uint64_t *len) {
    if ((size_t)(r->end - r->p) < width) return -1;
    *len = sbe(r->p, width);
    r->p += width;
    if (*len < lo) return -1;
    if ((uint64_t)(r->end - r->p) < *len) return -1;
    return 0;
}

/* A str value or key in its smallest header, valid UTF-8; its bytes in *s, *n. */
static int take_str(scrub_rd *r, const uint8_t **s, uint64_t *n) {
    uint8_t op;
    if (r->p >= r->end) return -1;
    op = *r->p++;
    if (op >= 0xa0 && op <= 0xbf) {
        *n = op & 0x1fu;
        if ((uint64_t)(r->end - r->p) < *n) return -1;
    } else if (op == 0xd9) {
        if (take_len(r, 1, 32, n)) return -1;
    } else if (op == 0xda) {
        if (take_len(r, 2, 256, n)) return -1;
    } else if (op == 0xdb) {
        if (take_len(r, 4, 65536, n)) return -1;
    } else {
        return -1;
    }
    *s = r->p;
    if (ig_utf8_error(*s, (size_t)*n) >= 0) return -1;
    r->p += *n;
    return 0;
}

/* s[0..n) is the string literal l */
#define LIT(s, n, l) ((n) == sizeof(l) - 1 && memcmp((s), (l), sizeof(l) - 1) == 0)

/* Keys the walk treats specially (or that make a frame not a plain record). */
static int special_key(const uint8_t *s, uint64_t n) {
    switch (n) {
    case 9: return LIT(s, n, "token_ids");
    case 10: return LIT(s, n, "cache_salt");
    case 14: return LIT(s, n, "chunk_hash_hex");
    default: return 0;
    }
}

/* An unsigned int in its smallest form (what the generic walk accepts as canonical). */
static const uint8_t *canon_uint(const uint8_t *p, const uint8_t *end) {
    size_t w;
    uint64_t u;
    if (p >= end) return NULL;
    if (*p <= 0x7f) return p + 1;
    if (*p < 0xcc || *p > 0xcf) return NULL;
    w = (size_t)1 << (*p - 0xcc);
    if ((size_t)(end - p - 1) < w) return NULL;
    u = sbe(p + 1, w);
    if (u < (*p == 0xcc ? 128u : *p == 0xcd ? 256u : *p == 0xce ? 65536u : 0x100000000ULL))
        return NULL;
    return p + 1 + w;
}

/* The ObjectKey upstream writes, {"__t__": "ObjectKey", "v": {"chunk_hash": bin 32,
 * "model_name": fixstr, "kv_rank": uint, "object_group_id": uint}}, every piece in the
 * form the generic walk below accepts, recognised in one pass: the end of the value, or
 * NULL when anything differs (the generic walk then decides).  So it only ever accepts
 * what the generic walk would accept, with the same one bin (at p + 33). */
static const uint8_t OK_HEAD[33] = {0x82, 0xa5, '_', '_', 't', '_', '_', 0xa9, 'O', 'b', 'j',
                                    'e', 'c', 't', 'K', 'e', 'y', 0xa1, 'v', 0x84, 0xaa,
                                    'c', 'h', 'u', 'n', 'k', '_', 'h', 'a', 's', 'h', 0xc4,
                                    0x20};
static const uint8_t OK_MODEL[11] = {0xaa, 'm', 'o', 'd', 'e', 'l', '_', 'n', 'a', 'm', 'e'};
static const uint8_t OK_RANK[8] = {0xa7, 'k', 'v', '_', 'r', 'a', 'n', 'k'};
static const uint8_t OK_GROUP[16] = {0xaf, 'o', 'b', 'j', 'e', 'c', 't', '_', 'g', 'r', 'o',
                                     'u', 'p', '_', 'i', 'd'};

static const uint8_t *object_key(const uint8_t *p, const uint8_t *end) {
    size_t n;
    if ((size_t)(end - p) < sizeof OK_HEAD + 32 + sizeof OK_MODEL + 1) return NULL;
    if (memcmp(p, OK_HEAD, sizeof OK_HEAD) != 0) return NULL;
    p += sizeof OK_HEAD + 32;
    if (memcmp(p, OK_MODEL, sizeof OK_MODEL) != 0) return NULL;
    p += sizeof OK_MODEL;
    if (*p < 0xa0 || *p > 0xbf) return NULL;
    n = *p++ & 0x1fu;
    if ((size_t)(end - p) < n + sizeof OK_RANK) return NULL;
    if (ig_utf8_error(p, n) >= 0) return NULL;
    p += n;
    if (memcmp(p, OK_RANK, sizeof OK_RANK) != 0) return NULL;
    p = canon_uint(p + sizeof OK_RANK, end);
    if (!p || (size_t)(end - p) < sizeof OK_GROUP) return NULL;
    if (memcmp(p, OK_GROUP, sizeof OK_GROUP) != 0) return NULL;
    return canon_uint(p + sizeof OK_GROUP, end);
}

static int value(scrub_rd *r, int depth, int in_args);

/* The value of a special key (its key consumed) in the one form that keeps its length. */
static int special(scrub_rd *r, uint64_t kn) {
    const uint8_t *s;
    uint64_t n;
    if (kn == 10) { /* cache_salt: only the empty one stays as it is */
        if (r->p >= r->end || *r->p != 0xa0) return -1;
        r->p++;
        return 0;
    }
    if (kn == 14) { /* chunk_hash_hex: even-length hex -> the hex of its fingerprint */
        if (r->p >= r->end || (*r->p != 0xd9 && (*r->p < 0xa0 || *r->p > 0xbf)))
            return -1; /* str8 at most (a hash of up to 127 bytes) */
        if (take_str(r, &s, &n)) return -1;
        if (n % 2) return -1;
        for (uint64_t i = 0; i < n; i++)
            if (!hexdigit(s[i])) return -1;
        r->hashes++;
        if (n) item(r, s, n, LCT_SCRUB_HEX);
        return 0;
    }
    /* token_ids: an array of one-byte ints -> as many zeros */
    if (r->p >= r->end) return -1;
    if (*r->p >= 0x90 && *r->p <= 0x9f) {
        n = *r->p & 0x0fu;
        r->p++;
    } else if (*r->p == 0xdc) {
        if (r->end - r->p < 3) return -1;
        n = sbe(r->p + 1, 2);
        if (n < 16) return -1;
        r->p += 3;
    } else {
        return -1;
    }
    if (n > (uint64_t)(r->end - r->p)) return -1;
    for (uint64_t i = 0; i < n; i++)
        if (r->p[i] > 0x7f && r->p[i] < 0xe0) return -1;
    r->tokens += n;
    if (n) item(r, r->p, n, LCT_SCRUB_ZERO);
    r->p += n;
    return 0;
}

/* The entries of a map (its header consumed); at the top level, `top` gets whether the
 * "type" value is "record" (bit 0) and whether an "args" key was seen (bit 1). */
static int map_entries(scrub_rd *r, uint64_t count, int depth, int in_args, int *top) {
    const uint8_t *ks[SCRUB_MAX_MAP];
    uint64_t kn[SCRUB_MAX_MAP];
    if (count > SCRUB_MAX_MAP) return -1;
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *k;
        uint64_t n;
        int args = in_args;
        if (take_str(r, &k, &n)) return -1; /* a non-str key: the walk decides */
        if (LIT(k, n, "__t__")) {
            if (i > 0) return -1; /* the ObjectKey rewrite writes it first */
            r->saw_tag = 1;
        }
        for (uint64_t j = 0; j < i; j++)
            if (kn[j] == n && memcmp(ks[j], k, (size_t)n) == 0) return -1;
        ks[i] = k;
        kn[i] = n;
        if (special_key(k, n)) {
            if (!in_args) return -1;
            if (n != 10) r->saw_special = 1; /* an empty salt is kept by both walk paths */
            if (special(r, n)) return -1;
            continue;
        }
        if (top) {
            if (LIT(k, n, "type")) {
                const uint8_t *v;
                uint64_t vn;
                if (take_str(r, &v, &vn) || !LIT(v, vn, "record")) return -1;
                *top |= 1;
                continue;
            }
            if (LIT(k, n, "args")) {
                args = 1;
                *top |= 2;
            }
        }
        if (value(r, depth + 1, args)) return -1;
    }
    return 0;
}

static int value(scrub_rd *r, int depth, int in_args) {
    uint8_t op;
    uint64_t n, u;
    if (depth > SCRUB_MAX_DEPTH) return -1;
    if (r->p >= r->end) return -1;
    op = *r->p;
    if (op <= 0x7f || op >= 0xe0 || op == 0xc0 || op == 0xc2 || op == 0xc3) {
        r->p++;
        return 0;
    }
    if (op >= 0xa0 && op <= 0xbf) {
        const uint8_t *s;
        return take_str(r, &s, &n);
    }
    if (op == 0x82 && depth + 2 <= SCRUB_MAX_DEPTH) {
        const uint8_t *q = object_key(r->p, r->end);
        if (q) {
            if (in_args) {
                item(r, r->p + sizeof OK_HEAD, 32, LCT_SCRUB_BIN);
                r->hashes++;
            }
            r->saw_tag = 1;
            r->p = q;
            return 0;
        }
    }
    r->p++;
    if (op <= 0x8f) return map_entries(r, op & 0x0fu, depth, in_args, NULL);
    if (op <= 0x9f) {
        n = op & 0x0fu;
        goto array;
    }
    switch (op) {
    case 0xc4: case 0xc5: case 0xc6:
        if (take_len(r, op == 0xc4 ? 1 : op == 0xc5 ? 2 : 4,
                     op == 0xc4 ? 0 : op == 0xc5 ? 256 : 65536, &n)) return -1;
        if (in_args) {
            if (n) item(r, r->p, n, LCT_SCRUB_BIN); /* empty: its fingerprint is empty */
            r->hashes++;
        }
        r->p += n;
        return 0;
    case 0xcb: {
        if (r->end - r->p < 8) return -1;
        u = sbe(r->p, 8);
        /* NaN (exponent all ones, mantissa not zero): its payload is left to the walk */
        if ((u & 0x7ff0000000000000ULL) == 0x7ff0000000000000ULL &&
            (u & 0x000fffffffffffffULL) != 0) return -1;
        r->p += 8;
        return 0;
    }
    case 0xcc: case 0xcd: case 0xce: case 0xcf: {
        size_t w = (size_t)1 << (op - 0xcc);
        if ((size_t)(r->end - r->p) < w) return -1;
        u = sbe(r->p, w);
        r->p += w;
        /* the smallest unsigned form: 128.., 256.., 65536.., 2^32.. */
        return u >= (op == 0xcc ? 128u : op == 0xcd ? 256u : op == 0xce ? 65536u
                     : 0x100000000ULL) ? 0 : -1;
    }
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        size_t w = (size_t)1 << (op - 0xd0);
        uint64_t sign = (uint64_t)1 << (8 * w - 1);
        uint64_t mag;
        if ((size_t)(r->end - r->p) < w) return -1;
        u = sbe(r->p, w);
        r->p += w;
        if (!(u & sign)) return -1; /* a non-negative value takes an unsigned form */
        /* -(value), computed without signed overflow: the two's complement magnitude */
        mag = w == 8 ? (uint64_t)0 - u : ((uint64_t)1 << (8 * w)) - u;
        /* the smallest signed form: < -32, < -128, < -32768, < -2^31 */
        return mag > (op == 0xd0 ? 32u : op == 0xd1 ? 128u : op == 0xd2 ? 32768u
                      : 0x80000000ULL) ? 0 : -1;
    }
    case 0xd9: case 0xda: case 0xdb: {
        const uint8_t *s;
        r->p--;
        return take_str(r, &s, &n);
    }
    case 0xdc: case 0xdd:
        if ((size_t)(r->end - r->p) < (op == 0xdc ? 2u : 4u)) return -1;
        n = sbe(r->p, op == 0xdc ? 2 : 4);
        r->p += op == 0xdc ? 2 : 4;
        if (n < (op == 0xdc ? 16u : 65536u)) return -1;
        goto array;
    case 0xde: case 0xdf:
        if ((size_t)(r->end - r->p) < (op == 0xde ? 2u : 4u)) return -1;
        n = sbe(r->p, op == 0xde ? 2 : 4);
        r->p += op == 0xde ? 2 : 4;
        if (n < (op == 0xde ? 16u : 65536u)) return -1;
        return map_entries(r, n, depth, in_args, NULL);
    default:
        return -1; /* ext, float32, 0xc1 */
    }
array:
    if (n > (uint64_t)(r->end - r->p)) return -1; /* every element takes a byte */
    for (uint64_t i = 0; i < n; i++)
        if (value(r, depth + 1, in_args)) return -1;
    return 0;
}

int64_t lct_scrub_frame(const uint8_t *body, size_t n, int64_t *off, uint32_t *len,
                        uint8_t *kind, size_t cap, uint64_t *hashes, uint64_t *tokens) {
    scrub_rd r;
    uint64_t count;
    uint8_t op;
    int top = 0;
    memset(&r, 0, sizeof r);
    r.p = r.base = body;
    r.end = body + n;
    r.off = off;
    r.len = len;
    r.kind = kind;
    r.cap = cap;
    if (n == 0) return -1;
    op = *r.p++;
    if (op >= 0x80 && op <= 0x8f) {
        count = op & 0x0fu;
    } else if (op == 0xde || op == 0xdf) {
        size_t w = op == 0xde ? 2 : 4;
        if (n - 1 < w) return -1;
        count = sbe(r.p, w);
        r.p += w;
        if (count < (op == 0xde ? 16u : 65536u)) return -1;
    } else {
        return -1;
    }
    if (map_entries(&r, count, 0, 0, &top)) return -1;
    if (r.p != r.end || top != 3) return -1;
    if (r.saw_tag && r.saw_special) return -1; /* the ObjectKey path treats them apart */
    *hashes = r.hashes;
    *tokens = r.tokens;
    return (int64_t)r.n;
}

int lct_scrub_scan(const uint8_t *buf, size_t len, size_t *pos, lct_scrub_plan *plan) {
    size_t p = *pos;
    int rc = LCT_STOP_END;
    for (;;) {
        uint32_t flen;
        int64_t got;
        uint64_t hashes = 0, tokens = 0;
        size_t room;
        if (p >= len) { rc = LCT_STOP_END; break; }
        if (len - p < 4) { rc = LCT_STOP_NEED_MORE; break; }
        flen = (uint32_t)sbe(buf + p, 4);
        if (len - p - 4 < flen) { rc = LCT_STOP_NEED_MORE; break; }
        room = plan->item_cap - plan->nitems;
        got = lct_scrub_frame(buf + p + 4, flen, plan->item_off + plan->nitems,
                              plan->item_len + plan->nitems, plan->item_kind + plan->nitems,
                              room, &hashes, &tokens);
        if (got > (int64_t)room && room < plan->item_cap) { rc = LCT_STOP_FULL; break; }
        if (got < 0 || got > (int64_t)room) { /* slow, or more items than a plan holds */
            if (plan->nslow == plan->slow_cap) { rc = LCT_STOP_FULL; break; }
            plan->slow_off[plan->nslow++] = (int64_t)p;
        } else {
            for (int64_t i = 0; i < got; i++)
                plan->item_off[plan->nitems + (size_t)i] += (int64_t)(p + 4);
            plan->nitems += (size_t)got;
            plan->nfast++;
            plan->nhashes += hashes;
            plan->ntokens += tokens;
        }
        p += 4 + (size_t)flen;
    }
    *pos = p;
    return rc;
}

/* ------------------------------------------------------------ BLAKE2b (RFC 7693) */

static const uint64_t B2_IV[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL,
    0xa54ff53a5f1d36f1ULL, 0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL,
    0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL};

static const uint8_t B2_SIGMA[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3}};

static uint64_t rotr64(uint64_t x, unsigned n) { return x >> n | x << (64 - n); }

static uint64_t ld64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

#define B2_G(a, b, c, d, x, y)              \
    do {                                    \
        v[a] = v[a] + v[b] + (x);           \
        v[d] = rotr64(v[d] ^ v[a], 32);     \
        v[c] = v[c] + v[d];                 \
        v[b] = rotr64(v[b] ^ v[c], 24);     \
        v[a] = v[a] + v[b] + (y);           \
        v[d] = rotr64(v[d] ^ v[a], 16);     \
        v[c] = v[c] + v[d];                 \
        v[b] = rotr64(v[b] ^ v[c], 63);     \
    } while (0)

/* One 128-byte block into h; t = bytes hashed so far (including this block). */
static void b2_compress(uint64_t h[8], const uint8_t block[128], uint64_t t, int last) {
    uint64_t v[16], m[16];
    for (int i = 0; i < 16; i++) m[i] = ld64(block + 8 * i);
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = B2_IV[i];
    }
    v[12] ^= t; /* the high word of the 128-bit counter stays 0: inputs < 2^64 bytes */
    if (last) v[14] = ~v[14];
    /* rounds written out: constant message indices keep m[] in registers */
#define B2_ROUND(r)                                                        \
    do {                                                                   \
        B2_G(0, 4, 8, 12, m[B2_SIGMA[r][0]], m[B2_SIGMA[r][1]]);           \
        B2_G(1, 5, 9, 13, m[B2_SIGMA[r][2]], m[B2_SIGMA[r][3]]);           \
        B2_G(2, 6, 10, 14, m[B2_SIGMA[r][4]], m[B2_SIGMA[r][5]]);          \
        B2_G(3, 7, 11, 15, m[B2_SIGMA[r][6]], m[B2_SIGMA[r][7]]);          \
        B2_G(0, 5, 10, 15, m[B2_SIGMA[r][8]], m[B2_SIGMA[r][9]]);          \
        B2_G(1, 6, 11, 12, m[B2_SIGMA[r][10]], m[B2_SIGMA[r][11]]);        \
        B2_G(2, 7, 8, 13, m[B2_SIGMA[r][12]], m[B2_SIGMA[r][13]]);         \
        B2_G(3, 4, 9, 14, m[B2_SIGMA[r][14]], m[B2_SIGMA[r][15]]);         \
    } while (0)
    B2_ROUND(0); B2_ROUND(1); B2_ROUND(2); B2_ROUND(3); B2_ROUND(4); B2_ROUND(5);
    B2_ROUND(6); B2_ROUND(7); B2_ROUND(8); B2_ROUND(9); B2_ROUND(10); B2_ROUND(11);
#undef B2_ROUND
    for (int i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

/* The state after the key block for digest size outlen (1..64): what every keyed
 * hash of that size starts from. */
static void b2_keyed_start(uint64_t h[8], const uint8_t *key, size_t keylen, size_t outlen) {
    uint8_t block[128];
    for (int i = 0; i < 8; i++) h[i] = B2_IV[i];
    h[0] ^= 0x01010000ULL ^ ((uint64_t)keylen << 8) ^ (uint64_t)outlen;
    if (keylen) {
        memset(block, 0, sizeof block);
        memcpy(block, key, keylen);
        b2_compress(h, block, 128, 0); /* the message is never empty here */
    }
}

/* BLAKE2b-`outlen` of msg[0..n) (n >= 1) from a start state (the key block already
 * in, `t0` bytes of it); the digest into out[0..outlen). `pre`/`npre` are prepended. */
static void b2_finish(const uint64_t start[8], uint64_t t0, const uint8_t *pre, size_t npre,
                      const uint8_t *msg, size_t n, uint8_t *out, size_t outlen) {
    uint64_t h[8];
    uint8_t block[128];
    size_t total = npre + n, done = 0;
    memcpy(h, start, sizeof h);
    while (total - done > 128) { /* every full block but the last */
        for (size_t i = 0; i < 128; i++) {
            size_t j = done + i;
            block[i] = j < npre ? pre[j] : msg[j - npre];
        }
        done += 128;
        b2_compress(h, block, t0 + done, 0);
    }
    memset(block, 0, sizeof block);
    for (size_t i = 0; done + i < total; i++) {
        size_t j = done + i;
        block[i] = j < npre ? pre[j] : msg[j - npre];
    }
    b2_compress(h, block, t0 + total, 1);
    for (size_t i = 0; i < outlen; i++) out[i] = (uint8_t)(h[i / 8] >> (8 * (i % 8)));
}

/* ------------------------------------------------------ fingerprint table */

/* Raw bin value (1..LCT_FPTAB_MAX_LEN bytes) -> its fingerprint (as long), open
 * addressing over a seeded hash, so a repeated hash costs one lookup. */
typedef struct {
    uint64_t hash;
    uint64_t where; /* offset of raw (then fp) in arena, << 8 | length; 0 = empty */
} fp_slot;

struct lct_fptab {
    uint8_t key[64];
    size_t keylen;
    uint64_t start[65][8]; /* keyed start state per digest size (size 0: not yet made) */
    uint8_t have[65];
    uint64_t seed;
    fp_slot *slots;  /* 1 << bits of them, at most half full */
    uint32_t bits;
    uint32_t count, max;
    uint8_t *arena;  /* raw || fp per entry, from offset 1 (0 marks an empty slot) */
    size_t used, acap;
};

static const uint64_t *fp_start(lct_fptab *t, size_t outlen) {
    if (!t->have[outlen]) {
        b2_keyed_start(t->start[outlen], t->key, t->keylen, outlen);
        t->have[outlen] = 1;
    }
    return t->start[outlen];
}

void lct_fptab_fingerprint(lct_fptab *t, const uint8_t *raw, size_t n, uint8_t *out) {
    uint64_t t0 = t->keylen ? 128 : 0;
    if (n == 0) return;
    if (n <= 64) {
        b2_finish(fp_start(t, n), t0, NULL, 0, raw, n, out, n);
        return;
    }
    for (size_t i = 0; i * 64 < n; i++) { /* 64-byte blocks of BLAKE2b(counter || raw) */
        uint8_t ctr[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8),
                          (uint8_t)i};
        uint8_t d[64];
        size_t k = n - i * 64 < 64 ? n - i * 64 : 64;
        b2_finish(fp_start(t, 64), t0, ctr, 4, raw, n, d, 64);
        memcpy(out + i * 64, d, k);
    }
}

static uint64_t tab_hash(uint64_t seed, const uint8_t *p, size_t n) {
    uint64_t h = seed ^ ((uint64_t)n * 0x9e3779b97f4a7c15ULL);
    while (n) {
        uint64_t w = 0;
        size_t k = n < 8 ? n : 8;
        memcpy(&w, p, k); /* byte order does not matter: the table only */
        h = fmix64(h ^ w) + 0x87c37b91114253d5ULL;
        p += k;
        n -= k;
    }
    return fmix64(h);
}

lct_fptab *lct_fptab_new(const uint8_t *key, size_t keylen, uint32_t max_entries) {
    static const uint8_t SEED[] = "lct_fptab seed";
    uint8_t seed[sizeof SEED - 1]; /* a fingerprint is as long as its input */
    lct_fptab *t;
    if (keylen > 64) return NULL;
    t = calloc(1, sizeof *t);
    if (!t) return NULL;
    if (keylen) memcpy(t->key, key, keylen);
    t->keylen = keylen;
    /* the table's hash seed comes from the key: a trace's author cannot aim at it */
    lct_fptab_fingerprint(t, SEED, sizeof SEED - 1, seed);
    t->seed = ld64(seed);
    t->max = max_entries > (1u << 30) ? (1u << 30) : max_entries;
    t->bits = 4; /* grows by doubling */
    t->used = 1;
    t->slots = calloc((size_t)1 << t->bits, sizeof *t->slots);
    if (!t->slots) {
        free(t);
        return NULL;
    }
    return t;
}

void lct_fptab_free(lct_fptab *t) {
    if (!t) return;
    free(t->slots);
    free(t->arena);
    free(t);
}

uint32_t lct_fptab_count(const lct_fptab *t) { return t->count; }

/* The fingerprint remembered for raw[0..n) (h its hash), or NULL. */
static const uint8_t *tab_find(const lct_fptab *t, const uint8_t *raw, size_t n, uint64_t h) {
    size_t mask = ((size_t)1 << t->bits) - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const fp_slot *e = &t->slots[i];
        const uint8_t *at;
        if (!e->where) return NULL;
        if (e->hash != h || (e->where & 0xff) != n) continue;
        at = t->arena + (e->where >> 8);
        if (memcmp(at, raw, n) == 0) return at + n;
    }
}

static void tab_place(fp_slot *slots, uint32_t bits, fp_slot e) {
    size_t mask = ((size_t)1 << bits) - 1;
    size_t i = (size_t)e.hash & mask;
    while (slots[i].where) i = (i + 1) & mask;
    slots[i] = e;
}

/* Remember raw -> fp (n in 1..LCT_FPTAB_MAX_LEN, not in the table, h its hash): 0, 1
 * when full, -1 out of memory. */
static int tab_put(lct_fptab *t, const uint8_t *raw, const uint8_t *fp, size_t n, uint64_t h) {
    fp_slot e;
    if (t->count >= t->max) return 1;
    if ((size_t)(t->count + 1) * 2 > ((size_t)1 << t->bits)) { /* grow: rehash */
        size_t old_n = (size_t)1 << t->bits;
        fp_slot *slots = calloc(old_n * 2, sizeof *slots);
        if (!slots) return -1;
        for (size_t i = 0; i < old_n; i++)
            if (t->slots[i].where) tab_place(slots, t->bits + 1, t->slots[i]);
        free(t->slots);
        t->slots = slots;
        t->bits++;
    }
    if (t->acap < t->used + 2 * n) { /* used <= acap once allocated; n <= 64 */
        size_t cap = t->acap ? t->acap * 2 : 65536;
        uint8_t *a;
        while (cap - t->used < 2 * n) cap *= 2;
        a = realloc(t->arena, cap);
        if (!a) return -1;
        t->arena = a;
        t->acap = cap;
    }
    memcpy(t->arena + t->used, raw, n);
    memcpy(t->arena + t->used + n, fp, n);
    e.hash = h;
    e.where = (uint64_t)t->used << 8 | n;
    t->used += 2 * n;
    t->count++;
    tab_place(t->slots, t->bits, e);
    return 0;
}

static const char HEX[16] = {'0', '1', '2', '3', '4', '5', '6', '7',
                             '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};

static uint8_t nibble(uint8_t c) {
    if (c >= '0' && c <= '9') return (uint8_t)(c - '0');
    if (c >= 'a' && c <= 'f') return (uint8_t)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return (uint8_t)(c - 'A' + 10);
    return 0; /* not planned as hex: harmless */
}

/* The fingerprint of raw[0..m) into fp (m >= 1): remembered ones looked up, new ones
 * computed and remembered while there is room; 0, or -2 out of memory. */
static int fingerprint_of(lct_fptab *t, const uint8_t *raw, size_t m, uint8_t *fp) {
    if (m <= LCT_FPTAB_MAX_LEN) {
        uint64_t h = tab_hash(t->seed, raw, m);
        const uint8_t *got = tab_find(t, raw, m, h);
        if (got) {
            memcpy(fp, got, m);
            return 0;
        }
        lct_fptab_fingerprint(t, raw, m, fp);
        return tab_put(t, raw, fp, m, h) < 0 ? -2 : 0;
    }
    lct_fptab_fingerprint(t, raw, m, fp);
    return 0;
}

#if defined(__GNUC__) || defined(__clang__)
#define FP_PREFETCH(p) __builtin_prefetch(p)
#else
#define FP_PREFETCH(p) ((void)(p))
#endif
#define FP_AHEAD 8 /* items whose table slot is fetched ahead of use */

int lct_fptab_patch(lct_fptab *t, const uint8_t *src, size_t src_len, uint8_t *dst,
                    size_t dst_len, const int64_t *off, const uint32_t *len,
                    const uint8_t *kind, size_t n) {
    for (size_t i = 0; i < n; i++) {
        size_t o, m;
        uint8_t small[2 * LCT_FPTAB_MAX_LEN], *tmp = small;
        if (i + FP_AHEAD < n && kind[i + FP_AHEAD] == LCT_SCRUB_BIN && off[i + FP_AHEAD] >= 0) {
            /* a hint only (a lookup far in a large table is a cache miss): checked reads */
            size_t o2 = (size_t)off[i + FP_AHEAD], m2 = len[i + FP_AHEAD];
            if (m2 && m2 <= LCT_FPTAB_MAX_LEN && o2 <= src_len && src_len - o2 >= m2) {
                uint64_t h2 = tab_hash(t->seed, src + o2, m2);
                FP_PREFETCH(&t->slots[(size_t)h2 & (((size_t)1 << t->bits) - 1)]);
            }
        }
        if (off[i] < 0) return -1;
        o = (size_t)off[i];
        m = len[i];
        if (o > src_len || src_len - o < m || o > dst_len || dst_len - o < m) return -1;
        if (kind[i] == LCT_SCRUB_ZERO) {
            memset(dst + o, 0, m);
            continue;
        }
        if (kind[i] == LCT_SCRUB_HEX) m /= 2; /* the raw bytes the hex spells */
        if (m == 0) continue;                 /* the empty fingerprint: nothing to write */
        if (2 * m > sizeof small) { /* long: worked aside (src may be dst) */
            tmp = malloc(2 * m);
            if (!tmp) return -2;
        }
        if (kind[i] == LCT_SCRUB_HEX) {
            for (size_t j = 0; j < m; j++)
                tmp[m + j] = (uint8_t)(nibble(src[o + 2 * j]) << 4 | nibble(src[o + 2 * j + 1]));
            if (fingerprint_of(t, tmp + m, m, tmp)) {
                if (tmp != small) free(tmp);
                return -2;
            }
            for (size_t j = 0; j < m; j++) {
                dst[o + 2 * j] = (uint8_t)HEX[tmp[j] >> 4];
                dst[o + 2 * j + 1] = (uint8_t)HEX[tmp[j] & 15];
            }
        } else {
            if (fingerprint_of(t, src + o, m, tmp)) {
                if (tmp != small) free(tmp);
                return -2;
            }
            memcpy(dst + o, tmp, m);
        }
        if (tmp != small) free(tmp);
    }
    return 0;
}
