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
#define LCT_STOP_MALFORMED 3  /* the last row is a malformed frame not followed, within
                                 this buffer, by a complete valid record */

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

/* Helpers lct_keys.c shares with the frame scan: skip exactly one msgpack value
 * in [*p, end) (advances *p; -1 if ill-formed or truncated) and strict UTF-8. */
int lct_skip_value(const uint8_t **p, const uint8_t *end);
int lct_utf8_valid(const uint8_t *s, size_t n);

/* ------------------------------------------------------------------------
 * Trace analytics (lct_keys.c): one row per ObjectKey in the records a scan
 * found, and a fingerprint -> dense id table.  Runs only when asked for.
 * The contract (which bytes are a key, the fingerprint) is specified in
 * inferguard/_trace_keys.py and docs/trace-format.md; both must agree.
 * ------------------------------------------------------------------------ */

#define LCT_KEY_OK 0
#define LCT_KEY_MALFORMED 1
#define LCT_NAME_NONE (-1)       /* salt: the key has no cache_salt */
#define LCT_NAME_UNINTERNED (-2) /* model/salt: name table full or name too long */

typedef struct lct_keyx lct_keyx; /* extraction state: model and salt interners */

typedef struct {
    int32_t *row;     /* index, into the rows passed in, of the key's record */
    uint64_t *fp;     /* fingerprint; 0 for a malformed key */
    int32_t *model;   /* interned model_name id, LCT_NAME_UNINTERNED; -1 if malformed */
    int32_t *salt;    /* interned cache_salt id, LCT_NAME_NONE, LCT_NAME_UNINTERNED */
    int64_t *kv_rank;
    int64_t *group;   /* object_group_id (0 when absent) */
    uint8_t *status;  /* LCT_KEY_* */
    size_t capacity;
    size_t count;
} lct_keys;

typedef struct {
    size_t row; /* next row to extract from */
    size_t at;  /* 0, or where the wrapper search resumes inside that row (buf index) */
} lct_key_cursor;

lct_keyx *lct_keyx_new(void);
void lct_keyx_free(lct_keyx *x);
/* The interner of model names (which = 0) or cache salts (which = 1). */
lct_interner *lct_keyx_names(lct_keyx *x, int which);

/* Emit key rows for rows[cur->row .. nrows) of a scan of buf (status != malformed),
 * where `base` is the absolute offset of buf[0].  Returns LCT_STOP_END when every row
 * is done, LCT_STOP_FULL when `out` filled up (call again with the same cursor),
 * -1 when out of memory, -2 when a row's frame is not inside buf. */
int lct_extract_keys(const uint8_t *buf, size_t len, int64_t base, const int64_t *offset,
                     const uint32_t *length, const uint8_t *status, size_t nrows,
                     lct_key_cursor *cur, lct_keyx *x, lct_keys *out);

/* The documented fingerprint pieces (exposed for tests). */
uint64_t lct_hash_bytes(const uint8_t *p, size_t n, uint64_t seed);
uint64_t lct_key_fingerprint(const uint8_t *hash, size_t hash_len, const uint8_t *model,
                             size_t model_len, int64_t kv_rank, int64_t group,
                             const uint8_t *salt, size_t salt_len, int has_salt);

/* Fingerprint -> dense id in first-seen order, all memory owned by the caller:
 * fps[max_keys] (id -> fingerprint) and slots[1 << bits] (-1 = empty), with
 * (1 << bits) >= 2 * max_keys. */
typedef struct {
    uint64_t *fps;
    int32_t *slots;
    uint32_t bits;
    uint32_t max_keys;
    uint32_t count;
} lct_keytab;

/* For each i < n: out[i] = -2 if !use[i]; else the id of fp[i], a new id if there is
 * room, or -1 if the table is full.  Returns how many rows got -1. */
size_t lct_keytab_intern(lct_keytab *t, const uint64_t *fp, const uint8_t *use, size_t n,
                         int32_t *out);

#endif
