/* lct_scrub.c - see inferguard_api.h, "Trace scrub plan".  Which record frames the
 * scrubbed copy can take as they are with only their chunk-hash bins overwritten, and
 * where those bins are.  The rule it decides is in inferguard/lct/_scrub.py: a frame is
 * "fast" only when msgspec's encoder, given what msgspec's decoder makes of its body,
 * writes the same bytes back (every header the smallest form, float64, str keys, no
 * duplicate keys, no ext) and the scrub walk would change nothing in it but the `bin`
 * values inside `args` (no cache_salt, token_ids or chunk_hash_hex key anywhere, no
 * "__t__" key out of first place, nesting well below the walk's limit).  Anything else
 * is "slow" (the Python walk decides it, dropping it when it does not decode).  Being
 * slow is always correct; being fast must be exact.  Every read is bounds-checked. */
#include "lct.h"

#include <string.h>

#define SCRUB_MAX_DEPTH 64 /* the walk refuses > 200; msgspec decodes far deeper */
#define SCRUB_MAX_MAP 32   /* keys per map checked pairwise for duplicates */

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    const uint8_t *base; /* bin offsets are reported relative to it */
    int64_t *bin_off;
    uint32_t *bin_len;
    size_t cap;
    size_t n;      /* bins found (may exceed cap: then only cap are written) */
} scrub_rd;

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
    if (!lct_utf8_valid(*s, (size_t)*n)) return -1;
    r->p += *n;
    return 0;
}

static int lit(const uint8_t *s, uint64_t n, const char *l) {
    size_t ln = strlen(l);
    return n == ln && memcmp(s, l, ln) == 0;
}

/* Keys the walk treats specially (or that make a frame not a plain record). */
static int special_key(const uint8_t *s, uint64_t n) {
    return lit(s, n, "cache_salt") || lit(s, n, "token_ids") || lit(s, n, "chunk_hash_hex");
}

static int value(scrub_rd *r, int depth, int in_args);

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
        if (special_key(k, n)) return -1;
        if (i > 0 && lit(k, n, "__t__")) return -1; /* the ObjectKey rewrite reorders */
        for (uint64_t j = 0; j < i; j++)
            if (kn[j] == n && memcmp(ks[j], k, (size_t)n) == 0) return -1;
        ks[i] = k;
        kn[i] = n;
        if (top) {
            if (lit(k, n, "type")) {
                const uint8_t *v;
                uint64_t vn;
                if (take_str(r, &v, &vn) || !lit(v, vn, "record")) return -1;
                *top |= 1;
                continue;
            }
            if (lit(k, n, "args")) {
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
            if (r->n < r->cap) {
                r->bin_off[r->n] = (int64_t)(r->p - r->base);
                r->bin_len[r->n] = (uint32_t)n;
            }
            r->n++;
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

int64_t lct_scrub_frame(const uint8_t *body, size_t n, int64_t *bin_off, uint32_t *bin_len,
                        size_t cap) {
    scrub_rd r = {body, body + n, body, bin_off, bin_len, cap, 0};
    uint64_t count;
    uint8_t op;
    int top = 0;
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
    return (int64_t)r.n;
}

int lct_scrub_scan(const uint8_t *buf, size_t len, size_t *pos, lct_scrub_plan *plan) {
    size_t p = *pos;
    int rc = LCT_STOP_END;
    for (;;) {
        uint32_t flen;
        int64_t got;
        size_t room;
        if (p >= len) { rc = LCT_STOP_END; break; }
        if (len - p < 4) { rc = LCT_STOP_NEED_MORE; break; }
        flen = (uint32_t)sbe(buf + p, 4);
        if (len - p - 4 < flen) { rc = LCT_STOP_NEED_MORE; break; }
        room = plan->bin_cap - plan->nbins;
        got = lct_scrub_frame(buf + p + 4, flen, plan->bin_off + plan->nbins,
                              plan->bin_len + plan->nbins, room);
        if (got > (int64_t)room && room < plan->bin_cap) { rc = LCT_STOP_FULL; break; }
        if (got < 0 || got > (int64_t)room) { /* slow, or more bins than a plan holds */
            if (plan->nslow == plan->slow_cap) { rc = LCT_STOP_FULL; break; }
            plan->slow_off[plan->nslow++] = (int64_t)p;
        } else {
            for (int64_t i = 0; i < got; i++)
                plan->bin_off[plan->nbins + (size_t)i] += (int64_t)(p + 4);
            plan->nbins += (size_t)got;
            plan->nfast++;
        }
        p += 4 + (size_t)flen;
    }
    *pos = p;
    return rc;
}
