/* prom.c - see prom.h.  Every read is checked against the end of the current
 * line; lines are found with memchr inside [buf, buf+len). */
#include "prom.h"
#include "intern.h"
#include "utf8.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------------- character classes */

#define C_NAME0 1u  /* [a-zA-Z_:] first byte of a metric name */
#define C_NAME 2u   /* [a-zA-Z0-9_:] */
#define C_LAB0 4u   /* [a-zA-Z_] first byte of a label name */
#define C_LAB 8u    /* [a-zA-Z0-9_] */
#define C_DIGIT 16u /* [0-9] */

static const uint8_t cls[256] = {
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    26, 26, 26, 26, 26, 26, 26, 26, 26, 26,  3,  0,  0,  0,  0,  0,
     0, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,  0,  0,  0,  0, 15,
     0, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
};

static int is_blank(uint8_t c) { return c == ' ' || c == '\t'; }

static int all_ascii(const uint8_t *s, size_t n) {
    uint64_t acc = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        acc |= w;
    }
    for (; i < n; i++) acc |= s[i];
    return (acc & 0x8080808080808080ULL) == 0;
}

/* ------------------------------------------------------------------- UTF-8 */

int64_t prom_utf8_error(const uint8_t *s, size_t n) { return ig_utf8_error(s, n); }

/* ------------------------------------------------------------------ numbers */

static int ieq(const uint8_t *s, const char *lit, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((s[i] | 0x20) != (uint8_t)lit[i]) return 0;
    return 1;
}

#define EXP_CAP 100000000000000000LL /* 1e17: beyond it only the sign matters */

static const double POW10[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The i-th digit of the mantissa made of ip[0..in) followed by fp[0..fn). */
static uint8_t digit_at(const uint8_t *ip, size_t in, const uint8_t *fp, size_t k) {
    return k < in ? ip[k] : fp[k - in];
}

/* value = (digits) * 10^(exp - fn), correctly rounded.  The digits are copied
 * without the decimal point, so strtod never meets a locale-dependent byte. */
static int convert(int neg, const uint8_t *ip, size_t in, const uint8_t *fp, size_t fn,
                   int64_t exp, double *out) {
    size_t total = in + fn, first = 0, last;
    int64_t e10;
    size_t d;
    while (first < total && digit_at(ip, in, fp, first) == '0') first++;
    if (first == total) { *out = neg ? -0.0 : 0.0; return 0; }
    last = total; /* one past the last non-zero digit */
    while (digit_at(ip, in, fp, last - 1) == '0') last--;
    d = last - first;
    /* digits[first..last) * 10^e10 */
    e10 = exp - (int64_t)fn + (int64_t)(total - last);
    if (e10 + (int64_t)d - 1 >= 309) { *out = neg ? -HUGE_VAL : HUGE_VAL; return 0; }
    if (e10 + (int64_t)d <= -324) { *out = neg ? -0.0 : 0.0; return 0; }
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
    if (d <= 19 && e10 >= -22 && e10 <= 22) {
        /* Clinger's fast path: both operands exact, one IEEE rounding. */
        uint64_t m = 0;
        for (size_t k = first; k < last; k++) m = m * 10 + (uint64_t)(digit_at(ip, in, fp, k) - '0');
        if (m <= ((uint64_t)1 << 53)) {
            double r = (double)m;
            r = e10 >= 0 ? r * POW10[e10] : r / POW10[-e10];
            *out = neg ? -r : r;
            return 0;
        }
    }
#endif
    {
        char stackbuf[160];
        size_t need = d + 32;
        char *b = need <= sizeof stackbuf ? stackbuf : malloc(need);
        size_t j = 0;
        int64_t e = e10;
        char tmp[24];
        int t = 0;
        if (!b) return -1;
        if (neg) b[j++] = '-';
        for (size_t k = first; k < last; k++) b[j++] = (char)digit_at(ip, in, fp, k);
        b[j++] = 'e';
        if (e < 0) { b[j++] = '-'; e = -e; }
        do { tmp[t++] = (char)('0' + (int)(e % 10)); e /= 10; } while (e);
        while (t) b[j++] = tmp[--t];
        b[j] = '\0';
        *out = strtod(b, NULL);
        if (b != stackbuf) free(b);
        return 0;
    }
}

int prom_parse_number(const uint8_t *s, size_t n, int specials, double *out) {
    size_t i = 0, is, ie, fs, fe;
    int neg = 0;
    int64_t exp = 0;
    if (n == 0) return 1;
    if (s[0] == '+' || s[0] == '-') { neg = s[0] == '-'; i = 1; }
    if (specials && i < n && (s[i] | 0x20) == 'i') {
        size_t r = n - i;
        if ((r == 3 && ieq(s + i, "inf", 3)) || (r == 8 && ieq(s + i, "infinity", 8))) {
            *out = neg ? -HUGE_VAL : HUGE_VAL;
            return 0;
        }
        return 1;
    }
    if (specials && i == 0 && (s[0] | 0x20) == 'n') {
        if (n == 3 && ieq(s, "nan", 3)) { *out = NAN; return 0; }
        return 1;
    }
    is = i;
    while (i < n && (cls[s[i]] & C_DIGIT)) i++;
    ie = i;
    fs = fe = i;
    if (i < n && s[i] == '.') {
        i++;
        fs = i;
        while (i < n && (cls[s[i]] & C_DIGIT)) i++;
        fe = i;
    }
    if (ie == is && fe == fs) return 1;
    if (i < n && (s[i] | 0x20) == 'e') {
        int eneg = 0;
        size_t es;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) { eneg = s[i] == '-'; i++; }
        es = i;
        while (i < n && (cls[s[i]] & C_DIGIT)) {
            if (exp < EXP_CAP) exp = exp * 10 + (s[i] - '0');
            i++;
        }
        if (i == es) return 1;
        if (eneg) exp = -exp;
    }
    if (i != n) return 1;
    return convert(neg, s + is, ie - is, s + fs, fe - fs, exp, out);
}

/* A 0.0.4 timestamp: [+-]?[0-9]+ within int64 (milliseconds), as a double. */
static int parse_int64_ts(const uint8_t *s, size_t n, double *out) {
    static const char MAXV[] = "9223372036854775807";
    size_t i = 0, ds, d;
    int neg = 0;
    if (n && (s[0] == '+' || s[0] == '-')) { neg = s[0] == '-'; i = 1; }
    if (i == n) return 1;
    for (size_t k = i; k < n; k++)
        if (!(cls[s[k]] & C_DIGIT)) return 1;
    ds = i;
    while (ds < n - 1 && s[ds] == '0') ds++;
    d = n - ds;
    if (d > 19) return 1;
    if (d == 19 && memcmp(s + ds, neg ? "9223372036854775808" : MAXV, 19) > 0) return 1;
    return prom_parse_number(s, n, 0, out);
}

/* ---------------------------------------------------------------- interners */

/* The shared interner (intern.c); `extra` holds, for names, the first sample row, and
 * for strs, the duplicate-label stamp. */
typedef ig_interner interner; /* ig_intern() < 0: out of memory or ids */

#define RECENT 16 /* label positions whose last ids are remembered */

struct prom_state {
    interner in[2];
    int64_t rows_written;
    int64_t attempt;
    /* The ids last seen at each label position: consecutive lines mostly repeat them, and
     * a memcmp against the interned bytes is cheaper than hashing. */
    int32_t recent_name[RECENT];
    int32_t recent_value[RECENT];
    int32_t recent_metric;
};

prom_state *prom_state_new(void) {
    prom_state *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    for (int i = 0; i < 2; i++) {
        if (ig_interner_init(&st->in[i], (uint32_t)INT32_MAX)) {
            prom_state_free(st);
            return NULL;
        }
    }
    for (int i = 0; i < RECENT; i++) st->recent_name[i] = st->recent_value[i] = -1;
    st->recent_metric = -1;
    return st;
}

void prom_state_free(prom_state *st) {
    if (!st) return;
    for (int i = 0; i < 2; i++) ig_interner_release(&st->in[i]);
    free(st);
}

static const interner *pick(const prom_state *st, int which) {
    return which >= 0 && which < 2 ? &st->in[which] : NULL;
}

size_t prom_state_count(const prom_state *st, int which) {
    const interner *in = pick(st, which);
    return in ? in->count : 0;
}

size_t prom_state_bytes(const prom_state *st, int which) {
    const interner *in = pick(st, which);
    return in ? in->bytes_len : 0;
}

void prom_state_export(const prom_state *st, int which, uint8_t *bytes, int64_t *off,
                       int64_t *len) {
    const interner *in = pick(st, which);
    if (!in) return;
    if (bytes && in->bytes_len) memcpy(bytes, in->bytes, in->bytes_len);
    if (off && in->count) memcpy(off, in->off, sizeof(int64_t) * in->count);
    if (len && in->count) memcpy(len, in->len, sizeof(int64_t) * in->count);
}

void prom_state_first_rows(const prom_state *st, int64_t *out) {
    const interner *in = &st->in[PROM_NAMES];
    if (in->count) memcpy(out, in->extra, sizeof(int64_t) * in->count);
}

/* ------------------------------------------------------------------ lines */

/* Outcome of tokenising one line. */
#define L_OK 0
#define L_FULL 1 /* the line's labels do not fit; nothing was written */
#define L_OOM -1

typedef struct {
    uint8_t kind;
    int32_t name;
    int64_t lab_count;
    double value, ts;
    size_t aux_off, aux_len; /* relative to the line start */
    size_t err_at;           /* 0-based index of the error in the line */
    uint8_t err;
} line_out;

/* What the tokeniser learnt about a sample line, so that the next line can skip the
 * prefix it shares with it: the same bytes tokenise the same way. */
typedef struct {
    const uint8_t *s; /* the line (in the caller's buffer; valid during one prom_scan) */
    size_t n;
    int valid;
    size_t name_end; /* index just after the metric name */
    int32_t name;
    size_t open;     /* index of '{', or 0 when there are no labels */
    int64_t k;       /* labels recorded below (at most RECENT) */
    size_t end[RECENT]; /* index just after the closing quote of label j */
    int32_t lname[RECENT], lvalue[RECENT];
} line_memo;

typedef struct {
    const uint8_t *s;
    size_t n;
    int om;
    prom_state *st;
    prom_labels *labs;
    int store; /* intern and store labels (a sample), or only check them (an exemplar) */
    line_memo *prev, *cur;
} ctx;

static size_t common_prefix(const uint8_t *a, const uint8_t *b, size_t n) {
    size_t i = 0;
    while (i + 8 <= n) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y) break;
        i += 8;
    }
    while (i < n && a[i] == b[i]) i++;
    return i;
}

static size_t skip_blanks(const uint8_t *s, size_t n, size_t i) {
    while (i < n && is_blank(s[i])) i++;
    return i;
}

/* Scan a label block from just after '{'; on success *pi is just after '}'.  With
 * k0 > 0 the first k0 labels are already stored and *pi is just after the closing
 * quote of the last of them.  Returns L_OK (o->err == 0 on success, else the error is
 * set), L_FULL or L_OOM. */
static int scan_labels(ctx *c, size_t *pi, line_out *o, int64_t k0) {
    const uint8_t *s = c->s;
    size_t n = c->n, i = *pi;
    int64_t k = k0;
    int resume = k0 > 0;
    size_t base = c->store ? c->labs->count : 0;
    if (!resume) {
        if (!c->om) i = skip_blanks(s, n, i);
        if (i < n && s[i] == '}') {
            *pi = i + 1;
            if (c->store) o->lab_count = 0;
            return L_OK;
        }
    }
    for (;;) {
        size_t a = i, an, v, vn, qi;
        if (resume) {
            resume = 0;
            goto separator;
        }
        if (i >= n || !(cls[s[i]] & C_LAB0)) { o->err = PROM_E_LABEL_NAME; o->err_at = i; return L_OK; }
        i++;
        while (i < n && (cls[s[i]] & C_LAB)) i++;
        an = i - a;
        if (an == 8 && memcmp(s + a, "__name__", 8) == 0) {
            o->err = PROM_E_RESERVED;
            o->err_at = a;
            return L_OK;
        }
        if (!c->om) i = skip_blanks(s, n, i);
        if (i >= n || s[i] != '=') { o->err = PROM_E_EQUALS; o->err_at = i; return L_OK; }
        i++;
        if (!c->om) i = skip_blanks(s, n, i);
        if (i >= n || s[i] != '"') { o->err = PROM_E_QUOTE; o->err_at = i; return L_OK; }
        i++;
        v = i;
        /* The value runs to the first '"' not escaped: find the next quote, then any
         * backslash before it (both with memchr); an escape past the quote moves it. */
        qi = SIZE_MAX; /* not searched yet */
        for (;;) {
            const uint8_t *b;
            if (qi == SIZE_MAX || i > qi) {
                const uint8_t *q = memchr(s + i, '"', n - i);
                qi = q ? (size_t)(q - s) : n;
            }
            b = memchr(s + i, '\\', qi - i);
            if (!b) {
                i = qi;
                if (i >= n) { o->err = PROM_E_UNTERMINATED; o->err_at = n; return L_OK; }
                break;
            }
            i = (size_t)(b - s);
            if (i + 1 >= n || !(s[i + 1] == '\\' || s[i + 1] == '"' || s[i + 1] == 'n')) {
                o->err = PROM_E_ESCAPE;
                o->err_at = i;
                return L_OK;
            }
            i += 2;
        }
        vn = i - v;
        i++; /* closing quote */
        if (!all_ascii(s + v, vn)) {
            int64_t bad = prom_utf8_error(s + v, vn);
            if (bad >= 0) { o->err = PROM_E_UTF8; o->err_at = v + (size_t)bad; return L_OK; }
        }
        if (c->store) {
            interner *strs = &c->st->in[PROM_STRS];
            int32_t nid, vid;
            if (base + (size_t)k >= c->labs->capacity) return L_FULL;
            nid = k < RECENT ? ig_intern_recent(strs, &c->st->recent_name[k], s + a, an)
                             : ig_intern(strs, s + a, an);
            if (nid < 0) return L_OOM;
            if (strs->extra[nid] == c->st->attempt) {
                o->err = PROM_E_DUP_LABEL;
                o->err_at = a;
                return L_OK;
            }
            strs->extra[nid] = c->st->attempt;
            vid = k < RECENT ? ig_intern_recent(strs, &c->st->recent_value[k], s + v, vn)
                             : ig_intern(strs, s + v, vn);
            if (vid < 0) return L_OOM;
            c->labs->name[base + (size_t)k] = nid;
            c->labs->value[base + (size_t)k] = vid;
            if (k < RECENT) {
                c->cur->end[k] = i;
                c->cur->lname[k] = nid;
                c->cur->lvalue[k] = vid;
                c->cur->k = k + 1;
            }
        }
        k++;
    separator:
        if (!c->om) i = skip_blanks(s, n, i);
        if (i < n && s[i] == ',') {
            i++;
            if (!c->om) {
                i = skip_blanks(s, n, i);
                if (i < n && s[i] == '}') break;
            }
            continue;
        }
        if (i < n && s[i] == '}') break;
        o->err = PROM_E_LABEL_SEP;
        o->err_at = i;
        return L_OK;
    }
    *pi = i + 1;
    if (c->store) o->lab_count = k;
    return L_OK;
}

static size_t token_end(const uint8_t *s, size_t n, size_t i, int om) {
    if (om)
        while (i < n && s[i] != ' ') i++;
    else
        while (i < n && !is_blank(s[i])) i++;
    return i;
}

#define FAIL(code, at) do { o->err = (code); o->err_at = (at); return L_OK; } while (0)

/* OpenMetrics exemplar: s[i] is '#'. */
static int scan_exemplar(ctx *c, size_t i, line_out *o) {
    const uint8_t *s = c->s;
    size_t n = c->n, t, start;
    int rc, store = c->store;
    double d;
    i++;
    if (i >= n || s[i] != ' ') FAIL(PROM_E_EXEMPLAR, i);
    i++;
    if (i >= n || s[i] != '{') FAIL(PROM_E_EXEMPLAR, i);
    start = i;
    i++;
    c->store = 0;
    rc = scan_labels(c, &i, o, 0);
    c->store = store;
    if (rc != L_OK || o->err) return rc;
    if (i >= n || s[i] != ' ') FAIL(PROM_E_SPACE, i);
    i++;
    t = i;
    i = token_end(s, n, i, 1);
    rc = prom_parse_number(s + t, i - t, 1, &d);
    if (rc < 0) return L_OOM;
    if (rc) FAIL(PROM_E_VALUE, t);
    if (i < n) {
        i++; /* the space */
        t = i;
        i = token_end(s, n, i, 1);
        rc = prom_parse_number(s + t, i - t, 0, &d);
        if (rc < 0) return L_OOM;
        if (rc) FAIL(PROM_E_TIMESTAMP, t);
        if (i < n) FAIL(PROM_E_EOL, i);
    }
    o->aux_off = start;
    o->aux_len = n - start;
    o->kind = PROM_K_SAMPLE;
    return L_OK;
}

static int scan_sample(ctx *c, size_t i, line_out *o) {
    const uint8_t *s = c->s;
    size_t n = c->n, a, t, same = 0;
    int rc, brace = 0;
    const line_memo *prev = c->prev;
    line_memo *cur = c->cur;
    if (prev->valid) same = common_prefix(s, prev->s, n < prev->n ? n : prev->n);
    if (prev->valid && prev->name_end < same) {
        /* the name and the byte after it are the previous line's */
        o->name = prev->name;
        i = prev->name_end;
    } else {
        if (!(cls[s[i]] & C_NAME0)) FAIL(PROM_E_METRIC_NAME, i);
        a = i;
        i++;
        while (i < n && (cls[s[i]] & C_NAME)) i++;
        o->name = ig_intern_recent(&c->st->in[PROM_NAMES], &c->st->recent_metric, s + a, i - a);
        if (o->name < 0) return L_OOM;
    }
    cur->name_end = i;
    cur->name = o->name;
    cur->open = 0;
    cur->k = 0;
    if (i < n && s[i] == '{') {
        brace = 1;
    } else if (c->om) {
        if (i >= n || s[i] != ' ') FAIL(PROM_E_NAME_END, i);
        i++;
    } else {
        if (i >= n || !is_blank(s[i])) FAIL(PROM_E_NAME_END, i);
        i = skip_blanks(s, n, i);
        brace = i < n && s[i] == '{';
    }
    if (brace) {
        int64_t k0 = 0;
        cur->open = i;
        c->st->attempt++;
        if (prev->valid && prev->open == i && prev->k > 0) {
            /* labels that end inside the shared prefix are the previous line's */
            int64_t j = prev->k;
            while (j > 0 && prev->end[j - 1] > same) j--;
            if (j > 0) {
                interner *strs = &c->st->in[PROM_STRS];
                size_t base = c->labs->count;
                if (base + (size_t)j > c->labs->capacity) return L_FULL;
                for (int64_t q = 0; q < j; q++) {
                    c->labs->name[base + (size_t)q] = prev->lname[q];
                    c->labs->value[base + (size_t)q] = prev->lvalue[q];
                    strs->extra[prev->lname[q]] = c->st->attempt;
                    cur->end[q] = prev->end[q];
                    cur->lname[q] = prev->lname[q];
                    cur->lvalue[q] = prev->lvalue[q];
                }
                cur->k = j;
                k0 = j;
                i = prev->end[j - 1];
            }
        }
        if (k0 == 0) i++;
        rc = scan_labels(c, &i, o, k0);
        if (rc != L_OK || o->err) return rc;
        if (c->om) {
            if (i >= n || s[i] != ' ') FAIL(PROM_E_SPACE, i);
            i++;
        } else {
            i = skip_blanks(s, n, i);
        }
    }
    t = i;
    i = token_end(s, n, i, c->om);
    rc = prom_parse_number(s + t, i - t, 1, &o->value);
    if (rc < 0) return L_OOM;
    if (rc) FAIL(PROM_E_VALUE, t);
    if (c->om) {
        if (i == n) goto done;
        i++; /* the space */
        if (i < n && s[i] == '#') return scan_exemplar(c, i, o);
        t = i;
        i = token_end(s, n, i, 1);
        rc = prom_parse_number(s + t, i - t, 0, &o->ts);
        if (rc < 0) return L_OOM;
        if (rc) FAIL(PROM_E_TIMESTAMP, t);
        if (i == n) goto done;
        i++;
        if (i < n && s[i] == '#') return scan_exemplar(c, i, o);
        FAIL(PROM_E_EXEMPLAR, i);
    }
    i = skip_blanks(s, n, i);
    if (i == n) goto done;
    t = i;
    i = token_end(s, n, i, 0);
    rc = parse_int64_ts(s + t, i - t, &o->ts);
    if (rc < 0) return L_OOM;
    if (rc) FAIL(PROM_E_TIMESTAMP, t);
    i = skip_blanks(s, n, i);
    if (i != n) FAIL(PROM_E_EOL, i);
done:
    o->kind = PROM_K_SAMPLE;
    return L_OK;
}

static int keyword_is(const uint8_t *s, size_t n, const char *kw) {
    return n == 4 && memcmp(s, kw, 4) == 0;
}

/* A metric name at s[i]; returns its end (== i if none). */
static size_t metric_name_end(const uint8_t *s, size_t n, size_t i) {
    if (i >= n || !(cls[s[i]] & C_NAME0)) return i;
    i++;
    while (i < n && (cls[s[i]] & C_NAME)) i++;
    return i;
}

static int scan_comment(ctx *c, size_t i, line_out *o) {
    const uint8_t *s = c->s;
    size_t n = c->n, hash = i, k, e;
    uint8_t kind;
    if (c->om) {
        if (n == 5 && memcmp(s, "# EOF", 5) == 0) { o->kind = PROM_K_EOF; return L_OK; }
        if (n < 2 || s[1] != ' ') FAIL(PROM_E_COMMENT, 1);
        i = 2;
        k = token_end(s, n, i, 1);
        if (keyword_is(s + i, k - i, "HELP")) kind = PROM_K_HELP;
        else if (keyword_is(s + i, k - i, "TYPE")) kind = PROM_K_TYPE;
        else if (keyword_is(s + i, k - i, "UNIT")) kind = PROM_K_UNIT;
        else FAIL(PROM_E_COMMENT, 2);
        i = k;
        if (i == n) FAIL(PROM_E_METRIC_NAME, i);
        i++;
        e = metric_name_end(s, n, i);
        if (e == i) FAIL(PROM_E_METRIC_NAME, i);
        o->name = ig_intern(&c->st->in[PROM_NAMES], s + i, e - i);
        if (o->name < 0) return L_OOM;
        i = e;
        if (i >= n || s[i] != ' ') FAIL(PROM_E_SPACE, i);
        i++;
        o->aux_off = i;
        o->aux_len = n - i;
        o->kind = kind;
        return L_OK;
    }
    i++;
    i = skip_blanks(s, n, i);
    k = token_end(s, n, i, 0);
    if (keyword_is(s + i, k - i, "HELP")) kind = PROM_K_HELP;
    else if (keyword_is(s + i, k - i, "TYPE")) kind = PROM_K_TYPE;
    else {
        o->aux_off = hash + 1;
        o->aux_len = n - hash - 1;
        o->kind = PROM_K_COMMENT;
        return L_OK;
    }
    i = skip_blanks(s, n, k);
    e = metric_name_end(s, n, i);
    if (e == i) FAIL(PROM_E_METRIC_NAME, i);
    o->name = ig_intern(&c->st->in[PROM_NAMES], s + i, e - i);
    if (o->name < 0) return L_OOM;
    i = e;
    if (kind == PROM_K_HELP) {
        if (i < n && !is_blank(s[i])) FAIL(PROM_E_BLANK, i);
        i = skip_blanks(s, n, i);
        o->aux_off = i;
        o->aux_len = n - i;
        o->kind = kind;
        return L_OK;
    }
    if (i == n) FAIL(PROM_E_TYPE_WORD, i);
    if (!is_blank(s[i])) FAIL(PROM_E_BLANK, i);
    i = skip_blanks(s, n, i);
    if (i == n) FAIL(PROM_E_TYPE_WORD, i);
    k = token_end(s, n, i, 0);
    o->aux_off = i;
    o->aux_len = k - i;
    i = skip_blanks(s, n, k);
    if (i != n) FAIL(PROM_E_EOL, i);
    o->kind = kind;
    return L_OK;
}

#undef FAIL

static int scan_line(ctx *c, line_out *o) {
    size_t i = 0;
    if (!c->om) i = skip_blanks(c->s, c->n, 0);
    if (i == c->n) {
        if (c->om) {
            o->err = PROM_E_BLANK_LINE;
            o->err_at = 0;
        } else {
            o->kind = PROM_K_BLANK;
        }
        return L_OK;
    }
    if (c->s[i] == '#') return scan_comment(c, i, o);
    return scan_sample(c, i, o);
}

int prom_scan(const uint8_t *buf, size_t len, size_t *pos, int64_t *line, unsigned flags,
              prom_state *st, prom_rows *rows, prom_labels *labels) {
    size_t p = *pos;
    int64_t ln = *line;
    int om = (flags & PROM_OPENMETRICS) != 0;
    int rc = PROM_STOP_END;
    line_memo memo[2];
    int flip = 0;
    memo[0].valid = memo[1].valid = 0;
    while (p < len) {
        const uint8_t *nl = memchr(buf + p, '\n', len - p);
        size_t end = nl ? (size_t)(nl - buf) : len;
        size_t next = nl ? end + 1 : len;
        size_t r = rows->count;
        int64_t first = (int64_t)labels->count;
        line_out o;
        ctx c;
        int got;
        if (r >= rows->capacity) { rc = PROM_STOP_FULL; break; }
        if (!om && end > p && buf[end - 1] == '\r') end--;
        c.s = buf + p;
        c.n = end - p;
        c.om = om;
        c.st = st;
        c.labs = labels;
        c.store = 1;
        c.prev = &memo[flip];
        c.cur = &memo[!flip];
        c.cur->valid = 0;
        o.kind = PROM_K_ERROR;
        o.name = -1;
        o.lab_count = 0;
        o.value = 0.0;
        o.ts = NAN;
        o.aux_off = 0;
        o.aux_len = 0;
        o.err_at = 0;
        o.err = PROM_E_NONE;
        got = scan_line(&c, &o);
        if (got == L_OOM) return -1;
        if (got == L_FULL) { rc = PROM_STOP_FULL; break; }
        if (!o.err && o.kind == PROM_K_SAMPLE) {
            /* the memo always describes the last sample line read without error */
            c.cur->valid = 1;
            c.cur->s = c.s;
            c.cur->n = c.n;
            flip = !flip;
        }
        if (o.err) {
            rows->kind[r] = PROM_K_ERROR;
            rows->name[r] = -1;
            rows->lab_count[r] = 0;
            rows->value[r] = 0.0;
            rows->aux_off[r] = 0;
            rows->aux_len[r] = 0;
            if (rows->ts) rows->ts[r] = NAN;
            if (rows->err_col) rows->err_col[r] = (int64_t)o.err_at + 1;
            if (rows->err) rows->err[r] = o.err;
        } else {
            rows->kind[r] = o.kind;
            rows->name[r] = o.name;
            rows->lab_count[r] = o.lab_count;
            rows->value[r] = o.value;
            rows->aux_off[r] = o.aux_len ? (int64_t)(p + o.aux_off) : 0;
            rows->aux_len[r] = (int64_t)o.aux_len;
            if (rows->ts) rows->ts[r] = o.ts;
            if (rows->err_col) rows->err_col[r] = 0;
            if (rows->err) rows->err[r] = PROM_E_NONE;
            labels->count += (size_t)o.lab_count;
            if (o.kind == PROM_K_SAMPLE && st->in[PROM_NAMES].extra[o.name] < 0)
                st->in[PROM_NAMES].extra[o.name] = st->rows_written;
        }
        rows->line[r] = ln;
        rows->lab_first[r] = first;
        rows->count++;
        st->rows_written++;
        ln++;
        p = next;
    }
    *pos = p;
    *line = ln;
    return rc;
}
