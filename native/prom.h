/* prom.h - Prometheus text (format 0.0.4) and OpenMetrics 1.0 tokenising (prom.c).
 *
 * The public API (what Python sees) is declared in inferguard_api.h; this header adds
 * the error codes a row's `err` column holds.  The grammar is specified, line for line,
 * by the pure Python tokeniser in inferguard/prom/_tokens.py (E_* there); both must
 * agree on every input.
 */
#ifndef INFERGUARD_PROM_H
#define INFERGUARD_PROM_H

#include "api.h"

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

#endif
