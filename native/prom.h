/* prom.h - byte-level tokenising of Prometheus text (format 0.0.4) and
 * OpenMetrics 1.0 text.
 *
 * prom_scan() splits a buffer into lines and writes one row per line into
 * caller-supplied flat columns: the line kind, the interned metric name, the
 * interned label name/value ids, the value and timestamp as
 * doubles, one auxiliary span (HELP text, TYPE/UNIT word, comment, exemplar)
 * and, for a malformed line, the 1-based byte column and a code saying what
 * was expected there.  It never reads outside [buf, buf+len), allocates only
 * when an interner grows, and leaves all meaning (families, unescaping,
 * problems) to Python.  The grammar is specified, line for line, by the pure
 * Python tokeniser in inferguard/_prom_tokens.py; both must agree on every
 * input.
 */
#ifndef INFERGUARD_PROM_H
#define INFERGUARD_PROM_H

#include <stddef.h>
#include <stdint.h>

/* Flags for prom_scan(). */
#define PROM_OPENMETRICS 1

/* Row kinds. */
#define PROM_K_SAMPLE 0
#define PROM_K_HELP 1
#define PROM_K_TYPE 2
#define PROM_K_UNIT 3
#define PROM_K_COMMENT 4
#define PROM_K_BLANK 5
#define PROM_K_EOF 6
#define PROM_K_ERROR 7

/* What a malformed line lacked at its error column. */
#define PROM_E_NONE 0
#define PROM_E_METRIC_NAME 1   /* a metric name */
#define PROM_E_NAME_END 2      /* '{' or a blank after the metric name */
#define PROM_E_LABEL_NAME 3    /* a label name */
#define PROM_E_RESERVED 4      /* a label name other than __name__ */
#define PROM_E_EQUALS 5        /* '=' after the label name */
#define PROM_E_QUOTE 6         /* '"' opening the label value */
#define PROM_E_ESCAPE 7        /* \\, \" or \n after a backslash */
#define PROM_E_UNTERMINATED 8  /* '"' closing the label value */
#define PROM_E_UTF8 9          /* valid UTF-8 */
#define PROM_E_LABEL_SEP 10    /* ',' or '}' after a label */
#define PROM_E_DUP_LABEL 11    /* a label name not already used on the line */
#define PROM_E_SPACE 12        /* a single space */
#define PROM_E_VALUE 13        /* a number */
#define PROM_E_TIMESTAMP 14    /* a timestamp */
#define PROM_E_EOL 15          /* the end of the line */
#define PROM_E_EXEMPLAR 16     /* "# {" opening an exemplar */
#define PROM_E_BLANK_LINE 17   /* a non-empty line (OpenMetrics has no blank lines) */
#define PROM_E_COMMENT 18      /* HELP, TYPE, UNIT or EOF after "# " */
#define PROM_E_TYPE_WORD 19    /* a metric type after the metric name */
#define PROM_E_BLANK 20        /* a blank after the metric name */

/* Why prom_scan() returned. */
#define PROM_STOP_END 0   /* every line was consumed */
#define PROM_STOP_FULL 1  /* rows or labels are full; *pos is at the next line */

/* Interner selectors for prom_state_*(). */
#define PROM_NAMES 0   /* metric names (samples and metadata lines) */
#define PROM_STRS 1    /* label names and raw (still escaped) label values */

typedef struct prom_state prom_state;

typedef struct {
    int64_t *line;      /* 1-based line number */
    uint8_t *kind;      /* PROM_K_* */
    int32_t *name;      /* PROM_NAMES id, -1 if none */
    int64_t *lab_first; /* index of the row's first label in prom_labels */
    int64_t *lab_count;
    double *value;
    double *ts;         /* NaN when absent (the grammar admits no NaN timestamp) */
    int64_t *aux_off;   /* absolute offset of the auxiliary span */
    int64_t *aux_len;
    int64_t *err_col;   /* 1-based byte column of the error, 0 if none */
    uint8_t *err;       /* PROM_E_* */
    size_t capacity;
    size_t count;
} prom_rows;

typedef struct {
    int32_t *name;   /* PROM_STRS id of the label name */
    int32_t *value;  /* PROM_STRS id of the raw label value */
    size_t capacity;
    size_t count;
} prom_labels;

prom_state *prom_state_new(void);
void prom_state_free(prom_state *st);
/* Number of strings in interner `which`, and the total bytes they hold. */
size_t prom_state_count(const prom_state *st, int which);
size_t prom_state_bytes(const prom_state *st, int which);
/* Copy interner `which` out: its bytes (prom_state_bytes) and per id the offset
 * and length in those bytes.  Any pointer may be NULL. */
void prom_state_export(const prom_state *st, int which, uint8_t *bytes, int64_t *off,
                       int64_t *len);
/* Per metric-name id: index (counted over every row ever written through this
 * state) of the first SAMPLE row using it, or -1. */
void prom_state_first_rows(const prom_state *st, int64_t *out);

/* Tokenise lines of buf[*pos, len).  *pos must be at a line start and *line
 * its 1-based number; both advance past every line written.  Use one state
 * per buffer.  Returns PROM_STOP_*, or -1 when memory runs out. */
int prom_scan(const uint8_t *buf, size_t len, size_t *pos, int64_t *line, unsigned flags,
              prom_state *st, prom_rows *rows, prom_labels *labels);

/* The number grammar (see _prom_tokens.py): 0 and *out set if s[0..n) is a
 * number, 1 if it is not, -1 when memory runs out.  `specials` admits NaN and
 * the infinities.  The result equals Python's float() of the same text. */
int prom_parse_number(const uint8_t *s, size_t n, int specials, double *out);

/* -1 if s[0..n) is valid UTF-8 (as CPython decodes it), else the offset of the
 * first byte of the first invalid sequence. */
int64_t prom_utf8_error(const uint8_t *s, size_t n);

#endif
