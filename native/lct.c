/* lct.c - see lct.h.  Every read is bounds-checked against the end of the
 * current frame body; nothing here trusts a declared length. */
#include "lct.h"
#include "utf8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ reader */

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} rd;

static size_t left(const rd *r) { return (size_t)(r->end - r->p); }

static uint64_t be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

/* Read an n-byte big-endian unsigned size; -1 if truncated. */
static int take_be(rd *r, int n, uint64_t *out) {
    if (left(r) < (size_t)n) return -1;
    *out = be(r->p, n);
    r->p += n;
    return 0;
}

/* Skip exactly one msgpack value of any depth without recursion: `pending`
 * counts values still to skip.  Each pending value needs at least one byte, so
 * pending > bytes-left means truncation (and keeps the counter from overflowing).
 * Works on locals (not through `r`) so the hot loop stays in registers. */
/* {"__t__": "ObjectKey", "v": ...} exactly as msgspec writes the codec wrapper. */
static const uint8_t OBJECT_KEY_WRAPPER[19] = {
    0x82, 0xa5, '_', '_', 't', '_', '_', 0xa9, 'O', 'b', 'j', 'e',
    'c', 't', 'K', 'e', 'y', 0xa1, 'v'};

/* The payload upstream writes for an ObjectKey, {"chunk_hash": bin32, "model_name": str,
 * "kv_rank": int, "object_group_id": int}, recognised in one pass.  Returns the end of
 * that one map value, or NULL if the bytes differ in any way (the generic walk then
 * takes over), so the result is exactly what the generic walk would accept. */
static const uint8_t OK_HEAD[] = {0x84, 0xaa, 'c', 'h', 'u', 'n', 'k', '_', 'h', 'a', 's', 'h',
                                  0xc4, 0x20};
static const uint8_t OK_MODEL[] = {0xaa, 'm', 'o', 'd', 'e', 'l', '_', 'n', 'a', 'm', 'e'};
static const uint8_t OK_RANK[] = {0xa7, 'k', 'v', '_', 'r', 'a', 'n', 'k'};
static const uint8_t OK_GROUP[] = {0xaf, 'o', 'b', 'j', 'e', 'c', 't', '_', 'g', 'r', 'o', 'u',
                                   'p', '_', 'i', 'd'};

static const uint8_t *skip_uint(const uint8_t *p, const uint8_t *end) {
    size_t n;
    if (p >= end) return NULL;
    if (*p <= 0x7f) return p + 1;
    switch (*p) {
    case 0xcc: n = 1; break;
    case 0xcd: n = 2; break;
    case 0xce: n = 4; break;
    case 0xcf: n = 8; break;
    default: return NULL;
    }
    return (size_t)(end - p - 1) >= n ? p + 1 + n : NULL;
}

static const uint8_t *skip_object_key_payload(const uint8_t *p, const uint8_t *end) {
    size_t n;
    if ((size_t)(end - p) < sizeof OK_HEAD + 32 + sizeof OK_MODEL + 1) return NULL;
    if (memcmp(p, OK_HEAD, sizeof OK_HEAD) != 0) return NULL;
    p += sizeof OK_HEAD + 32;
    if (memcmp(p, OK_MODEL, sizeof OK_MODEL) != 0) return NULL;
    p += sizeof OK_MODEL;
    if (*p < 0xa0 || *p > 0xbf) return NULL;
    n = *p & 0x1fu;
    p += 1;
    if ((size_t)(end - p) < n + sizeof OK_RANK) return NULL;
    p += n;
    if (memcmp(p, OK_RANK, sizeof OK_RANK) != 0) return NULL;
    p = skip_uint(p + sizeof OK_RANK, end);
    if (!p || (size_t)(end - p) < sizeof OK_GROUP) return NULL;
    if (memcmp(p, OK_GROUP, sizeof OK_GROUP) != 0) return NULL;
    return skip_uint(p + sizeof OK_GROUP, end);
}

static int skip_value(rd *r) {
    const uint8_t *p = r->p;
    const uint8_t *const end = r->end;
    uint64_t pending = 1;
    while (pending) {
        uint64_t n;
        uint8_t op;
        if (p >= end) return -1;
        op = *p++;
        pending--;
        if (op <= 0x7f || op >= 0xe0) continue; /* fixint */
        /* uint16/uint32 (token ids, sizes) with constant steps: a predicted branch, not a
         * size looked up from the byte, so the walk runs ahead of the loads. */
        if (op == 0xcd) {
            if (end - p < 2) return -1;
            p += 2;
            continue;
        }
        if (op == 0xce) {
            if (end - p < 4) return -1;
            p += 4;
            continue;
        }
        if (op >= 0xa0 && op <= 0xbf) {         /* fixstr: the commonest token */
            n = op & 0x1fu;
            if ((uint64_t)(end - p) < n) return -1;
            p += n;
            continue;
        }
        if (op <= 0x8f) { /* fixmap */
            if (op == 0x82 && (size_t)(end - p) >= sizeof OBJECT_KEY_WRAPPER - 1 &&
                memcmp(p, OBJECT_KEY_WRAPPER + 1, sizeof OBJECT_KEY_WRAPPER - 1) == 0) {
                /* {"__t__": "ObjectKey", "v": ...}: three fixstrs, then one value. */
                const uint8_t *q;
                p += sizeof OBJECT_KEY_WRAPPER - 1;
                q = skip_object_key_payload(p, end);
                if (q) {
                    p = q;
                    continue;
                }
                pending += 1;
            } else {
                pending += 2u * (op & 0x0fu);
            }
        } else if (op <= 0x9f) { /* fixarray */
            pending += (op & 0x0fu);
        } else {
            switch (op) {
            case 0xc0: case 0xc2: case 0xc3: continue;
            case 0xcc: case 0xd0: n = 1; break;
            case 0xcd: case 0xd1: n = 2; break;
            case 0xce: case 0xd2: case 0xca: n = 4; break;
            case 0xcf: case 0xd3: case 0xcb: n = 8; break;
            case 0xd4: n = 2; break;
            case 0xd5: n = 3; break;
            case 0xd6: n = 5; break;
            case 0xd7: n = 9; break;
            case 0xd8: n = 17; break;
            case 0xc4: case 0xd9:
                if (p >= end) return -1;
                n = p[0]; p += 1; break;
            case 0xc5: case 0xda:
                if (end - p < 2) return -1;
                n = be(p, 2); p += 2; break;
            case 0xc6: case 0xdb:
                if (end - p < 4) return -1;
                n = be(p, 4); p += 4; break;
            case 0xc7:
                if (p >= end) return -1;
                n = (uint64_t)p[0] + 1; p += 1; break;
            case 0xc8:
                if (end - p < 2) return -1;
                n = be(p, 2) + 1; p += 2; break;
            case 0xc9:
                if (end - p < 4) return -1;
                n = be(p, 4) + 1; p += 4; break;
            case 0xdc:
                if (end - p < 2) return -1;
                pending += be(p, 2); p += 2; n = 0; goto container;
            case 0xdd:
                if (end - p < 4) return -1;
                pending += be(p, 4); p += 4; n = 0; goto container;
            case 0xde:
                if (end - p < 2) return -1;
                pending += 2 * be(p, 2); p += 2; n = 0; goto container;
            case 0xdf:
                if (end - p < 4) return -1;
                pending += 2 * be(p, 4); p += 4; n = 0; goto container;
            default: return -1; /* 0xc1: never used */
            }
            if ((uint64_t)(end - p) < n) return -1;
            p += n;
            continue;
        }
    container:
        if (pending > (uint64_t)(end - p)) return -1;
    }
    r->p = p;
    return 0;
}

/* If the next value is a str, consume it and return its bytes; -2 if it is not
 * a str (nothing consumed), -1 if truncated. */
static int read_str(rd *r, const uint8_t **s, size_t *n) {
    uint64_t len;
    uint8_t op;
    if (r->p >= r->end) return -1;
    op = *r->p;
    if (op >= 0xa0 && op <= 0xbf) {
        r->p++;
        len = op & 0x1fu;
    } else if (op == 0xd9 || op == 0xda || op == 0xdb) {
        r->p++;
        if (take_be(r, op == 0xd9 ? 1 : op == 0xda ? 2 : 4, &len)) return -1;
    } else {
        return -2;
    }
    if (left(r) < len) return -1;
    *s = r->p;
    *n = (size_t)len;
    r->p += len;
    return 0;
}

/* Read an int or float as a double; -2 if another type, -1 if truncated. */
static int read_number(rd *r, double *out) {
    uint8_t op;
    uint64_t u;
    if (r->p >= r->end) return -1;
    op = *r->p;
    if (op <= 0x7f) { r->p++; *out = (double)op; return 0; }
    if (op >= 0xe0) { r->p++; *out = (double)(int8_t)op; return 0; }
    switch (op) {
    case 0xcc: r->p++; if (take_be(r, 1, &u)) return -1; *out = (double)u; return 0;
    case 0xcd: r->p++; if (take_be(r, 2, &u)) return -1; *out = (double)u; return 0;
    case 0xce: r->p++; if (take_be(r, 4, &u)) return -1; *out = (double)u; return 0;
    case 0xcf: r->p++; if (take_be(r, 8, &u)) return -1; *out = (double)u; return 0;
    case 0xd0: r->p++; if (take_be(r, 1, &u)) return -1; *out = (double)(int8_t)(uint8_t)u; return 0;
    case 0xd1: r->p++; if (take_be(r, 2, &u)) return -1; *out = (double)(int16_t)(uint16_t)u; return 0;
    case 0xd2: r->p++; if (take_be(r, 4, &u)) return -1; *out = (double)(int32_t)(uint32_t)u; return 0;
    case 0xd3: {
        int64_t s;
        r->p++;
        if (take_be(r, 8, &u)) return -1;
        memcpy(&s, &u, sizeof s); /* two's complement reinterpretation, no UB */
        *out = (double)s;
        return 0;
    }
    case 0xca: {
        uint32_t bits;
        float f;
        r->p++;
        if (take_be(r, 4, &u)) return -1;
        bits = (uint32_t)u;
        memcpy(&f, &bits, sizeof f);
        *out = (double)f;
        return 0;
    }
    case 0xcb: {
        double d;
        r->p++;
        if (take_be(r, 8, &u)) return -1;
        memcpy(&d, &u, sizeof d);
        *out = d;
        return 0;
    }
    default:
        return -2;
    }
}

/* Strict UTF-8 as CPython decodes it (shared validator, utf8.c). */
static int utf8_valid(const uint8_t *s, size_t n) { return ig_utf8_error(s, n) < 0; }


static int32_t count_object_keys(const uint8_t *p, size_t n) {
    /* Non-overlapping occurrences; the wrapper cannot overlap itself (0x82 occurs once). */
    int32_t count = 0;
    const size_t m = sizeof OBJECT_KEY_WRAPPER;
    const uint8_t *end = p + n;
    while ((size_t)(end - p) >= m) {
        const uint8_t *hit = memchr(p, OBJECT_KEY_WRAPPER[0], (size_t)(end - p) - m + 1);
        if (!hit) break;
        if (memcmp(hit, OBJECT_KEY_WRAPPER, m) == 0) {
            if (count < INT32_MAX) count++;
            p = hit + m;
        } else {
            p = hit + 1;
        }
    }
    return count;
}

static int key_is(const uint8_t *k, size_t kn, const char *lit) {
    size_t ln = strlen(lit);
    return kn == ln && memcmp(k, lit, ln) == 0;
}

/* {"type": "record", "t_mono": f64, "t_wall": f64, "qualname": str, "args": map} as msgspec
 * writes every record, read without the generic entry loop.  1 if the record has exactly
 * this layout and is accepted (outputs set as the loop would set them), 0 if the generic
 * loop must decide (nothing set).  Only a record the loop accepts the same way returns 1. */
static const uint8_t R_HEAD[] = {0x85, 0xa4, 't', 'y', 'p', 'e', 0xa6, 'r', 'e', 'c', 'o', 'r',
                                 'd', 0xa6, 't', '_', 'm', 'o', 'n', 'o', 0xcb};
static const uint8_t R_WALL[] = {0xa6, 't', '_', 'w', 'a', 'l', 'l', 0xcb};
static const uint8_t R_QUAL[] = {0xa8, 'q', 'u', 'a', 'l', 'n', 'a', 'm', 'e'};
static const uint8_t R_ARGS[] = {0xa4, 'a', 'r', 'g', 's'};

static double be_double(const uint8_t *p) {
    uint64_t u = be(p, 8);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

int lct_record_head(const uint8_t *p, const uint8_t *end, const uint8_t **qual, size_t *qn,
                    const uint8_t **args) {
    const size_t fixed = sizeof R_HEAD + 8 + sizeof R_WALL + 8 + sizeof R_QUAL;
    rd r = {p, end};
    if ((size_t)(end - p) < fixed || memcmp(p, R_HEAD, sizeof R_HEAD) != 0 ||
        memcmp(p + sizeof R_HEAD + 8, R_WALL, sizeof R_WALL) != 0 ||
        memcmp(p + fixed - sizeof R_QUAL, R_QUAL, sizeof R_QUAL) != 0)
        return 0;
    r.p = p + fixed;
    if (read_str(&r, qual, qn) || left(&r) <= sizeof R_ARGS ||
        memcmp(r.p, R_ARGS, sizeof R_ARGS) != 0)
        return 0;
    *args = r.p + sizeof R_ARGS;
    return 1;
}

static int decode_canonical(const uint8_t *body, size_t n, double *t_mono, double *t_wall,
                            size_t *qual_off, size_t *qual_len, int32_t *nkeys, int *st,
                            int check_utf8) {
    rd r = {body, body + n};
    const uint8_t *qual, *args;
    size_t qn;
    if (!lct_record_head(body, body + n, &qual, &qn, &args)) return 0;
    r.p = args;
    if (!((*args >= 0x80 && *args <= 0x8f) || *args == 0xde || *args == 0xdf)) return 0;
    if (skip_value(&r) || r.p != r.end || (check_utf8 && !utf8_valid(qual, qn))) return 0;
    *t_mono = be_double(body + sizeof R_HEAD);
    *t_wall = be_double(body + sizeof R_HEAD + 8 + sizeof R_WALL);
    *qual_off = (size_t)(qual - body);
    *qual_len = qn;
    *nkeys = count_object_keys(args, (size_t)(r.end - args));
    *st = qn > LCT_MAX_QUALNAME ? LCT_ROW_QUALNAME_LONG : LCT_ROW_OK;
    return 1;
}

/* lct_decode_record; with check_utf8 0 the qualname's UTF-8 is left to the caller (who
 * must then treat an invalid one as LCT_ROW_MALFORMED: the result is otherwise the same). */
static int decode_record(const uint8_t *body, size_t n, double *t_mono, double *t_wall,
                         size_t *qual_off, size_t *qual_len, int32_t *nkeys, int check_utf8) {
    rd r = {body, body + n};
    uint64_t entries = 0;
    uint8_t op;
    int have_mono = 0, have_wall = 0, have_qual = 0, have_args = 0;
    const uint8_t *args = NULL, *args_end = NULL;
    const uint8_t *qual = NULL;
    size_t qn = 0;
    int st;

    if (decode_canonical(body, n, t_mono, t_wall, qual_off, qual_len, nkeys, &st, check_utf8))
        return st;
    if (r.p >= r.end) return LCT_ROW_MALFORMED;
    op = *r.p++;
    if (op >= 0x80 && op <= 0x8f) entries = op & 0x0fu;
    else if (op == 0xde) { if (take_be(&r, 2, &entries)) return LCT_ROW_MALFORMED; }
    else if (op == 0xdf) { if (take_be(&r, 4, &entries)) return LCT_ROW_MALFORMED; }
    else return LCT_ROW_MALFORMED;

    for (uint64_t i = 0; i < entries; i++) {
        const uint8_t *k;
        size_t kn;
        int rc = read_str(&r, &k, &kn);
        if (rc) return LCT_ROW_MALFORMED; /* truncated, or a key that is not a str */
        if (key_is(k, kn, "type")) {
            const uint8_t *v;
            size_t vn;
            if (read_str(&r, &v, &vn)) return LCT_ROW_MALFORMED;
            if (!key_is(v, vn, "record")) return LCT_ROW_MALFORMED;
        } else if (key_is(k, kn, "t_mono")) {
            if (read_number(&r, t_mono)) return LCT_ROW_MALFORMED;
            have_mono = 1;
        } else if (key_is(k, kn, "t_wall")) {
            if (read_number(&r, t_wall)) return LCT_ROW_MALFORMED;
            have_wall = 1;
        } else if (key_is(k, kn, "qualname")) {
            if (read_str(&r, &qual, &qn)) return LCT_ROW_MALFORMED;
            if (check_utf8 && !utf8_valid(qual, qn)) return LCT_ROW_MALFORMED;
            have_qual = 1;
        } else if (key_is(k, kn, "args")) {
            args = r.p;
            if (skip_value(&r)) return LCT_ROW_MALFORMED;
            args_end = r.p;
            have_args = 1;
        } else {
            if (skip_value(&r)) return LCT_ROW_MALFORMED;
        }
    }
    if (r.p != r.end) return LCT_ROW_MALFORMED; /* trailing bytes */
    if (!(have_mono && have_wall && have_qual && have_args)) return LCT_ROW_MALFORMED;
    op = *args; /* args spans >= 1 byte: skip_value consumed at least the opcode */
    if (!((op >= 0x80 && op <= 0x8f) || op == 0xde || op == 0xdf)) return LCT_ROW_MALFORMED;
    *qual_off = (size_t)(qual - body);
    *qual_len = qn;
    *nkeys = count_object_keys(args, (size_t)(args_end - args));
    return qn > LCT_MAX_QUALNAME ? LCT_ROW_QUALNAME_LONG : LCT_ROW_OK;
}

int lct_decode_record(const uint8_t *body, size_t n, double *t_mono, double *t_wall,
                      size_t *qual_off, size_t *qual_len, int32_t *nkeys) {
    return decode_record(body, n, t_mono, t_wall, qual_off, qual_len, nkeys, 1);
}

/* ---------------------------------------------------------------- interner */

/* The shared interner (intern.c), capped at LCT_MAX_OPS names. */
lct_interner *lct_interner_new(void) {
    lct_interner *in = calloc(1, sizeof *in);
    if (!in) return NULL;
    if (ig_interner_init(&in->in, LCT_MAX_OPS)) {
        lct_interner_free(in);
        return NULL;
    }
    for (int i = 0; i < LCT_RECENT; i++) in->recent[i] = -1;
    return in;
}

void lct_interner_free(lct_interner *in) {
    if (!in) return;
    ig_interner_release(&in->in);
    free(in);
}

uint32_t lct_interner_size(const lct_interner *in) { return in->in.count; }

const uint8_t *lct_interner_name(const lct_interner *in, uint32_t id, size_t *len) {
    return ig_name(&in->in, id, len);
}

int32_t lct_interner_intern(lct_interner *in, const uint8_t *s, size_t n) {
    if (n > LCT_MAX_QUALNAME) return -1;
    return ig_intern(&in->in, s, n);
}

/* -------------------------------------------------------------------- scan */

/* After a malformed frame the chain is trusted only if the frame after it is a complete,
 * valid record within this buffer (or the buffer ends exactly there).  Otherwise the
 * caller decides, with the same rule, whether to go on or resynchronise. */
static int next_frame_is_record(const uint8_t *buf, size_t len, size_t p) {
    uint32_t n;
    double tm, tw;
    size_t qo, qn;
    int32_t nk;
    if (p == len) return 1;
    if (len - p < 4) return 0;
    n = (uint32_t)be(buf + p, 4);
    if (len - p - 4 < n) return 0;
    return lct_decode_record(buf + p + 4, n, &tm, &tw, &qo, &qn, &nk) != LCT_ROW_MALFORMED;
}

/* The id of a recently interned qualname equal to s[0..n), or -1. */
static int32_t recent_id(const lct_interner *in, const uint8_t *s, size_t n) {
    for (int i = 0; i < LCT_RECENT; i++) {
        int32_t id = in->recent[i];
        if (id < 0) break; /* filled in order: the rest are empty too */
        if ((size_t)in->in.len[id] == n && memcmp(in->in.bytes + in->in.off[id], s, n) == 0)
            return id;
    }
    return -1;
}

/* The row's status and op id for an accepted record whose qualname is not yet UTF-8-checked:
 * the cache, else the check and the interner.  -1 if out of memory. */
static int qualname_row(lct_interner *in, const uint8_t *s, size_t n, int st, int32_t *op) {
    int32_t id;
    if (st == LCT_ROW_OK && (id = recent_id(in, s, n)) >= 0) {
        *op = id;
        return st;
    }
    if (!utf8_valid(s, n)) return LCT_ROW_MALFORMED;
    if (st != LCT_ROW_OK) return st;
    id = ig_intern(&in->in, s, n);
    if (id == IG_INTERN_NOMEM) return -1;
    if (id == IG_INTERN_FULL) return LCT_ROW_OP_TABLE_FULL;
    in->recent[in->recent_next] = id;
    in->recent_next = (in->recent_next + 1) % LCT_RECENT;
    *op = id;
    return st;
}

int lct_scan(const uint8_t *buf, size_t len, size_t *pos, int64_t base,
             lct_interner *in, lct_columns *cols) {
    size_t p = *pos;
    int rc = LCT_STOP_END;
    while (cols->count < cols->capacity) {
        size_t i = cols->count;
        uint32_t flen;
        const uint8_t *body;
        double tm = 0.0, tw = 0.0;
        size_t qo = 0, qn = 0;
        int32_t nk = 0;
        int st;

        if (p >= len) { rc = LCT_STOP_END; break; }
        if (len - p < 4) { rc = LCT_STOP_NEED_MORE; break; }
        flen = (uint32_t)be(buf + p, 4);
        if (len - p - 4 < flen) { rc = LCT_STOP_NEED_MORE; break; }
        body = buf + p + 4;
        st = decode_record(body, flen, &tm, &tw, &qo, &qn, &nk, 0);
        cols->offset[i] = base + (int64_t)p;
        cols->length[i] = flen;
        cols->op[i] = -1;
        if (st != LCT_ROW_MALFORMED) {
            int32_t id = -1;
            st = qualname_row(in, body + qo, qn, st, &id);
            if (st < 0) return -1;
            cols->op[i] = id;
        }
        if (st == LCT_ROW_MALFORMED) {
            cols->t_mono[i] = NAN;
            cols->t_wall[i] = NAN;
            cols->nkeys[i] = 0;
        } else {
            cols->t_mono[i] = tm;
            cols->t_wall[i] = tw;
            cols->nkeys[i] = nk;
        }
        cols->status[i] = (uint8_t)st;
        cols->count++;
        p += 4 + (size_t)flen;
        if (st == LCT_ROW_MALFORMED && !next_frame_is_record(buf, len, p)) {
            rc = LCT_STOP_MALFORMED;
            break;
        }
        rc = LCT_STOP_FULL;
    }
    if (rc == LCT_STOP_FULL && p >= len) rc = LCT_STOP_END;
    *pos = p;
    return rc;
}

/* ------------------------------------------- helpers shared with lct_keys.c */

int lct_skip_value(const uint8_t **p, const uint8_t *end) {
    rd r = {*p, end};
    if (*p > end || skip_value(&r)) return -1;
    *p = r.p;
    return 0;
}

int lct_utf8_valid(const uint8_t *s, size_t n) { return utf8_valid(s, n); }
