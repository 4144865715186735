/* lct.h - byte-level scanning of LMCache MP trace recordings (.lct).
 *
 * A .lct file is a run of frames [uint32 big-endian length][msgpack body].
 * lct_scan() walks frames in a caller-supplied window and writes one row per
 * complete frame into flat columns.  It never allocates per record, never reads
 * outside [buf, buf+len), and leaves all meaning (findings, resynchronisation,
 * summaries) to Python.  The per-frame contract is specified in pure Python in
 * inferguard/_trace_frame.py; both must agree on every input.
 */
#ifndef INFERGUARD_LCT_H
#define INFERGUARD_LCT_H

#include <stddef.h>
#include <stdint.h>

/* Row status. */
#define LCT_ROW_OK 0
#define LCT_ROW_MALFORMED 1      /* body is not a decodable Record */
#define LCT_ROW_OP_TABLE_FULL 2  /* valid record, but too many distinct qualnames */
#define LCT_ROW_QUALNAME_LONG 3  /* valid record, qualname longer than LCT_MAX_QUALNAME */

/* Why lct_scan() returned. */
#define LCT_STOP_END 0        /* consumed the window exactly */
#define LCT_STOP_NEED_MORE 1  /* a frame (or its length prefix) runs past the window */
#define LCT_STOP_FULL 2       /* the columns are full */
#define LCT_STOP_MALFORMED 3  /* the last row written is a malformed frame */

#define LCT_MAX_OPS 4096
#define LCT_MAX_QUALNAME 1024

typedef struct lct_interner lct_interner;

typedef struct {
    int64_t *offset;   /* absolute offset of the frame's length prefix */
    uint32_t *length;  /* declared body length */
    double *t_mono;
    double *t_wall;
    int32_t *op;       /* interned qualname id, -1 if none */
    int32_t *nkeys;    /* ObjectKey wrappers in args */
    uint8_t *status;   /* LCT_ROW_* */
    size_t capacity;
    size_t count;
} lct_columns;

lct_interner *lct_interner_new(void);
void lct_interner_free(lct_interner *in);
uint32_t lct_interner_size(const lct_interner *in);
/* Pointer to the bytes of name `id` (valid until the interner is freed), or NULL. */
const uint8_t *lct_interner_name(const lct_interner *in, uint32_t id, size_t *len);

/* Intern a name (as lct_scan would): its id, -1 if the table is full (or the name is
 * longer than LCT_MAX_QUALNAME), -2 if out of memory.  Used to merge interners. */
int32_t lct_interner_intern(lct_interner *in, const uint8_t *s, size_t n);

/* Scan frames in buf[*pos, len).  `base` is the absolute file offset of buf[0].
 * Advances *pos past every frame it writes a row for; returns LCT_STOP_*.
 * Returns -1 only if the interner cannot allocate memory. */
int lct_scan(const uint8_t *buf, size_t len, size_t *pos, int64_t base,
             lct_interner *in, lct_columns *cols);

/* Decode one frame body; exposed for tests and fuzzing.  Returns LCT_ROW_*
 * (OP_TABLE_FULL is never returned: interning is lct_scan's job). */
int lct_decode_record(const uint8_t *body, size_t n, double *t_mono, double *t_wall,
                      size_t *qual_off, size_t *qual_len, int32_t *nkeys);

#endif
