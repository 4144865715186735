/* inferguard_api.h - every C name `inferguard._core` exposes to Python, declared once.
 *
 * native/build_native.py passes this file, as it is, to cffi's cdef(), and the C sources
 * get it through api.h.  So it holds only what cdef accepts: no #include, no include
 * guard, no macro but `#define NAME <integer>`.  Contracts are specified in Python:
 * inferguard/lct/_frame.py (frames), inferguard/lct/_keys.py (ObjectKeys),
 * inferguard/prom/_tokens.py (Prometheus text); both backends must agree on every input.
 */

/* ------------------------------------------------------------------------
 * .lct trace scanning (lct.c).  A .lct file is a run of frames
 * [uint32 big-endian length][msgpack body]; lct_scan() walks the frames of a
 * caller-supplied window and writes one row per complete frame into flat columns.
 * It never allocates per record and never reads outside [buf, buf+len).
 * ------------------------------------------------------------------------ */

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

/* A name table of at most LCT_MAX_OPS names (the shared interner, intern.c). */
lct_interner *lct_interner_new(void);
void lct_interner_free(lct_interner *in);
uint32_t lct_interner_size(const lct_interner *in);
/* Pointer to the bytes of name `id` (valid until the next intern), or NULL. */
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

/* ------------------------------------------------------------------------
 * The summary fold of `trace info` (lct_tally.c): per-op counts and key totals, and
 * the timestamp facts, folded from lct_scan's rows in file order (numpy twin:
 * `_Aggregate.add` in inferguard/lct/_file.py).  NaN in a min/max/first/last: none yet.
 * ------------------------------------------------------------------------ */

typedef struct {
    int64_t frames, malformed, records, nan_ts, neg_mono, decreases;
    double mono_min, mono_max, mono_first, mono_last, wall_min, wall_max;
} lct_tally_totals;

typedef struct lct_tally lct_tally;
lct_tally *lct_tally_new(void);
void lct_tally_free(lct_tally *t);
/* Fold cols' rows; the number of malformed rows among them, -1 (nothing folded) if a row's
 * op id is past LCT_MAX_OPS or count past capacity. */
int64_t lct_tally_add(lct_tally *t, const lct_columns *cols);
/* Fold src (the rows that follow dst's, op ids of another table) into dst: src op i is
 * dst op map[i], or an OP_TABLE_FULL row when i >= nmap or map[i] < 0.  -1 (nothing
 * merged) if nmap or a map entry is past LCT_MAX_OPS. */
int lct_tally_merge(lct_tally *dst, const lct_tally *src, const int32_t *map, size_t nmap);
/* Copy out the totals, the per-op columns (LCT_MAX_OPS each) and the per-status columns
 * of the rows without an op id (256 each: count, key total, key max). */
void lct_tally_read(const lct_tally *t, lct_tally_totals *out, int64_t *count, int64_t *keys,
                    int64_t *keys_max, int64_t *s_count, int64_t *s_keys, int64_t *s_max);

/* ------------------------------------------------------------------------
 * Trace analytics (lct_keys.c): one row per ObjectKey in the records a scan
 * found, and a fingerprint -> dense id table.  Runs only when asked for.
 * ------------------------------------------------------------------------ */

#define LCT_KEY_OK 0
#define LCT_KEY_MALFORMED 1
#define LCT_NAME_NONE -1         /* salt: the key has no cache_salt */
#define LCT_NAME_UNINTERNED -2   /* model/salt: name table full or name too long */

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

/* events.batch rows (lct_events.c): for rows first.. of (offset, length) frames inside
 * buf (which starts at file offset base), LCT_EV_COLS int64 per row into rows:
 * [0] 1 decoded / 0 not taken here (decode it with msgspec); then (kind, offset in buf,
 * length) for event_type, tier, backend, instance_id (kind 0 str, 1 nil, 2 another type,
 * 3 absent); [13] 1 if incarnation is an int, [14] its value; [15] entries, [16] sum of
 * int size_bytes, [17] index of the row's first fingerprint in fp (0 = malformed key);
 * for the summary's lenient events block: [18] 1 if it is reproduced from this row (the
 * record in canonical layout; every size_bytes an int or absent, incarnation an int or
 * absent, bool() of shared and of each token_ids known), [19] bool(shared), [20] entries
 * with a truthy token_ids; [21..24] the ids in `names` (may be NULL) of the four name
 * fields when they are a str (-1: not a str, or the table is full).  fp == NULL: no
 * fingerprints (the summary's decode): keys are read as msgpack only (no hex decoding, so
 * a key with non-hex chars does not make the row fall back), [17] is 0, fp_cap unused.
 * Stops when fp may not hold the next row; returns the row index to continue from. */
#define LCT_EV_COLS 25
size_t lct_events_decode(const uint8_t *buf, size_t len, int64_t base, const int64_t *offset,
                         const uint32_t *length, size_t nrows, size_t first, int64_t *rows,
                         uint64_t *fp, size_t fp_cap, size_t *fp_n, lct_interner *names);

/* The per-key part of the events fold (lct_evfold.c; twin: EventsEngine._fold's loops).
 * lct_evfold_batch folds one batch of key fingerprints (0 = malformed, skipped) of event
 * LCT_EV_STORE / LCT_EV_DELETE on tier id `tier` (0 = "l1", 1 = "l2") at time t, writing
 * the durations it yields (L1 -> L2 delays for a store, lifetimes for a delete; at most
 * n) into vals; returns how many, -1 out of memory, -2 a tier id < 0 or > 2^20.  counts: level, keys ever on L1,
 * on L2, L1-then-L2 keys, L2-without-L1 keys, deletes of unstored keys. */
#define LCT_EV_STORE 1
#define LCT_EV_DELETE 2
typedef struct lct_evfold lct_evfold;
lct_evfold *lct_evfold_new(uint64_t max_keys);
void lct_evfold_free(lct_evfold *f);
int64_t lct_evfold_batch(lct_evfold *f, int op, int32_t tier, double t, const uint64_t *fps,
                         size_t n, double *vals);
void lct_evfold_counts(const lct_evfold *f, int64_t *out);
int64_t lct_evfold_alive(const lct_evfold *f, int32_t tier);
/* lct_evfold_batch for rows r < nrows in order (fingerprints fps[start[r]..+count[r]]),
 * their durations back to back in vals, nvals[r] per row; returns the total, -1 out of
 * memory, -2 a bad tier id or a row outside fps or vals (nothing is read or written out of bounds). */
int64_t lct_evfold_rows(lct_evfold *f, size_t nrows, const int32_t *op, const int32_t *tier,
                        const double *t, const int64_t *start, const int64_t *count,
                        const uint64_t *fps, size_t fps_len, double *vals, size_t vals_cap,
                        int64_t *nvals);

/* For each i < n: out[i] = -2 if !use[i]; else the id of fp[i], a new id if there is
 * room, or -1 if the table is full.  Returns how many rows got -1. */
size_t lct_keytab_intern(lct_keytab *t, const uint64_t *fp, const uint8_t *use, size_t n,
                         int32_t *out);

/* ------------------------------------------------------------------------
 * Trace scrub plan (lct_scrub.c; the rule is specified in inferguard/lct/_scrub.py).
 * A record frame is "fast" when re-encoding msgspec's decode of its body gives the same
 * bytes and everything the scrub walk would change in it keeps its length: items, each
 * patched in place, of three kinds: a `bin` inside `args` (-> its fingerprint), an
 * even-length all-hex chunk_hash_hex str (-> the hex of the fingerprint of the bytes it
 * spells), the one-byte ints of a token_ids array (-> zeros).  Any other frame is "slow"
 * (the Python walk re-encodes it or drops it).
 * ------------------------------------------------------------------------ */

#define LCT_SCRUB_BIN 0
#define LCT_SCRUB_HEX 1
#define LCT_SCRUB_ZERO 2

typedef struct {
    int64_t *item_off;  /* buf index of an item's first byte (a bin's payload, a str's) */
    uint32_t *item_len; /* its length in bytes (never 0) */
    uint8_t *item_kind; /* LCT_SCRUB_* */
    size_t item_cap;
    size_t nitems;
    int64_t *slow_off;  /* buf index of a slow frame's length prefix */
    size_t slow_cap;
    size_t nslow;
    size_t nfast;       /* fast frames planned */
    uint64_t nhashes;   /* fingerprints the walk takes in them (bins and hex keys) */
    uint64_t ntokens;   /* token ids it zeroes in them */
} lct_scrub_plan;

/* Plan the complete frames of buf[*pos, len), appending to plan (the caller zeroes the
 * counts).  Advances *pos past every frame it planned; returns LCT_STOP_END (window
 * consumed), LCT_STOP_NEED_MORE (the next frame runs past len) or LCT_STOP_FULL (the
 * items or slow offsets are full: call again with a fresh plan).  A frame with more
 * items than item_cap is slow. */
int lct_scrub_scan(const uint8_t *buf, size_t len, size_t *pos, lct_scrub_plan *plan);

/* One frame body: -1 when it is slow, else the number of its items (their offsets,
 * relative to body, lengths and kinds written for the first cap of them) and, in
 * *hashes and *tokens, what the walk would count for it. */
int64_t lct_scrub_frame(const uint8_t *body, size_t n, int64_t *off, uint32_t *len,
                        uint8_t *kind, size_t cap, uint64_t *hashes, uint64_t *tokens);

/* The scrub's fingerprints in C: keyed BLAKE2b (RFC 7693) exactly as
 * inferguard/lct/_scrub.py::_Keyed computes them with hashlib (1..64 bytes: the digest of
 * that size; longer: 64-byte digests of a 4-byte big-endian counter || raw, cut to
 * length; empty: empty), with a table of up to max_entries raw values of 1..
 * LCT_FPTAB_MAX_LEN bytes so a repeated hash costs one lookup.  new: NULL when out of
 * memory or keylen > 64.  fingerprint: n bytes into out.  patch: each item i < n
 * (off/len/kind into src, as a plan reports them) written, scrubbed, at the same offsets
 * of dst (dst may be src: in place; else they must not overlap); 0, -1 if an item is
 * outside src or dst (nothing read or written out of bounds), -2 out of memory. */
#define LCT_FPTAB_MAX_LEN 64
typedef struct lct_fptab lct_fptab;
lct_fptab *lct_fptab_new(const uint8_t *key, size_t keylen, uint32_t max_entries);
void lct_fptab_free(lct_fptab *t);
uint32_t lct_fptab_count(const lct_fptab *t);
void lct_fptab_fingerprint(lct_fptab *t, const uint8_t *raw, size_t n, uint8_t *out);
int lct_fptab_patch(lct_fptab *t, const uint8_t *src, size_t src_len, uint8_t *dst,
                    size_t dst_len, const int64_t *off, const uint32_t *len,
                    const uint8_t *kind, size_t n);

/* ------------------------------------------------------------------------
 * The per-key fold of the trace analytics (lct_fold.c); its pure-Python twin is
 * inferguard/lct/_engine.py.  The caller owns every array: per-key state for
 * max_keys keys (the hot part one lct_keyrow per key, so a key row's state is one or two
 * cache lines; class and first bucket, set once per key, in columns), the HyperLogLog
 * registers (5 x 16384, NULL while exact), the examples (first LCT_FOLD_EXAMPLES offsets
 * per example kind and survival class) and the per-(class, role) row counts.
 * ------------------------------------------------------------------------ */

#define LCT_FOLD_EXAMPLES 20
#define LCT_FOLD_KINDS 7
#define LCT_FOLD_CLASSES 66
#define LCT_FOLD_COUNTERS 14

/* numpy twin: _engine.KEYROW (a structured dtype; the glue checks every offset). */
typedef struct {
    int64_t pend_lookup;   /* pending offset + 1, 0: none */
    int64_t pend_reserve;
    uint32_t cnt[14];      /* LCT_FOLD_COUNTERS counters (C_* in lct_fold.c) */
    uint8_t flags;
    uint8_t survival;      /* survival class */
    uint8_t pad[6];
} lct_keyrow;

typedef struct {
    lct_keyrow *rows;
    int32_t *cls;
    int64_t *first_bucket;
    uint8_t *hll;
    int64_t *ex_off;       /* LCT_FOLD_KINDS x LCT_FOLD_CLASSES x LCT_FOLD_EXAMPLES */
    uint8_t *ex_n;         /* LCT_FOLD_KINDS x LCT_FOLD_CLASSES */
    int64_t *class_roles;  /* nclasses x 8 */
    uint32_t nclasses;
    uint32_t max_keys;
    uint32_t count;        /* keys in the table (ids 0..count-1) */
    uint32_t level;        /* the sampling level */
} lct_keystate;

/* One piece of key rows (file order) and the records of its chunk. */
typedef struct {
    size_t n;
    const int32_t *row;     /* key row -> record index (< nrec) */
    const uint64_t *fp;
    const uint8_t *status;  /* LCT_KEY_* */
    const int32_t *ids;     /* key id (< count), negative: not tracked */
    const int32_t *cls;     /* class id (< nclasses) of ok rows */
    uint32_t before;        /* ids at or above it are new in this piece */
    size_t nrec;
    const uint8_t *rrole;   /* per record: lifecycle role (< 8) */
    const int64_t *offset;  /* per record: byte offset */
    const int64_t *tb;      /* per record: base timeline bucket (INT64_MIN: none) */
    uint64_t *keysets;      /* per record: sum of mixed fingerprints of enter/exit rows, or NULL */
} lct_fold_piece;

/* Fold one piece into the state: 0, or negative (nothing changed) when an index is out
 * of range: -1 state, -2 row or role, -3 class, -4 id. */
int lct_fold_keys(lct_keystate *s, const lct_fold_piece *p);

/* Add fingerprints to one HyperLogLog's 16384 registers (p = 14, as _engine.HyperLogLog). */
void lct_hll_add(uint8_t *reg, const uint64_t *fp, size_t n);

/* read_prefetched_results contexts: an exit closes the newest open enter of the same key
 * multiset; at most LCT_CTX_MAX open at once (more: untracked). */
#define LCT_CTX_MAX 65536
typedef struct lct_ctx lct_ctx;
lct_ctx *lct_ctx_new(void);
void lct_ctx_free(lct_ctx *c);
/* Match n records; writes the offsets of exits that closed nothing to alone (room for n),
 * returns how many. */
size_t lct_ctx_add(lct_ctx *c, size_t n, const uint64_t *keysets, const uint8_t *is_enter,
                   const int64_t *off, const double *t, int64_t *alone);
/* [open, untracked, exits alone] */
void lct_ctx_counts(const lct_ctx *c, int64_t *out3);
/* The open contexts (offset, t), up to cap; returns how many. */
size_t lct_ctx_open(const lct_ctx *c, int64_t *off, double *t, size_t cap);

/* ------------------------------------------------------------------------
 * Prometheus text 0.0.4 and OpenMetrics 1.0 (prom.c).  prom_scan() splits a
 * buffer into lines and writes one row per line into caller-supplied flat
 * columns: kind, interned metric name, interned label name/value ids, value
 * and timestamp as doubles, one auxiliary span (HELP text, TYPE/UNIT word,
 * comment, exemplar) and, for a malformed line, the 1-based byte column and a
 * PROM_E_* code (prom.h) saying what was expected there.
 * ------------------------------------------------------------------------ */

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
    double *ts;         /* NaN when absent (the grammar admits no NaN timestamp); may be NULL */
    int64_t *aux_off;   /* absolute offset of the auxiliary span */
    int64_t *aux_len;
    int64_t *err_col;   /* 1-based byte column of the error, 0 if none; may be NULL */
    uint8_t *err;       /* PROM_E_*; may be NULL (ts, err_col, err: not written then) */
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

/* The number grammar: 0 and *out set if s[0..n) is a number, 1 if it is not, -1 when
 * memory runs out.  `specials` admits NaN and the infinities.  The result equals
 * Python's float() of the same text. */
int prom_parse_number(const uint8_t *s, size_t n, int specials, double *out);

/* -1 if s[0..n) is valid UTF-8 (as CPython decodes it), else the offset of the
 * first byte of the first invalid sequence. */
int64_t prom_utf8_error(const uint8_t *s, size_t n);

/* prom_brief.c: what a metrics summary needs of prom_scan()'s rows [0, n_rows) (one call's
 * rows with their labels; an OpenMetrics caller passes the rows before `# EOF`).  A SAMPLE
 * row is kept when fam_of[its name] >= 0; per kept family: samples, samples == 0, distinct
 * series (name + label multiset).  A kept sample whose name has role 1 (histogram bucket)
 * or 2 (summary quantile) needs a label le_id / quantile_id (-1: no such string): its value
 * id is marked in bound_used, or the row counts in `unbound`.  Returns 0, -1 for an id or
 * range out of bounds (outputs then undefined), -2 when memory runs out. */
typedef struct {
    const uint8_t *kind;
    const int32_t *name;
    const int64_t *lab_first;
    const int64_t *lab_count;
    const double *value;
    int64_t n_rows;
    const int32_t *lab_name;
    const int32_t *lab_value;
    int64_t n_labels;
    const int32_t *fam_of;  /* per name id: family index, or -1 */
    const uint8_t *role_of; /* per name id: 0, 1 bucket, 2 quantile */
    int64_t n_names;
    int32_t le_id;
    int32_t quantile_id;
    int64_t n_strs;
    int64_t n_fams;
} prom_brief_in;

typedef struct {
    int64_t *samples;     /* n_fams */
    int64_t *zeros;       /* n_fams */
    int64_t *series;      /* n_fams */
    uint8_t *bound_used;  /* n_strs */
    int64_t kept;
    int64_t unbound;
} prom_brief_out;

int prom_brief(const prom_brief_in *in, prom_brief_out *out);

/* prom_facts.c: what the metrics evidence keeps of each family (the numpy twin and oracle:
 * Exposition.family_facts), from prom_scan()'s rows [0, n_rows).  A SAMPLE row belongs to
 * family fam_of[its name] (-1: none); rows whose name has PROM_FACT_CREATED never count.
 * Per family: kept samples, distinct series (name + labels in written order, values by
 * canon id), samples neither 0 nor NaN, and the exact sum (ig_fsum) of the finite values
 * of the counted samples (all, or only PROM_FACT_COUNT names in a PROM_FACT_COUNTED
 * family).  Also: the distinct (family, label name, canon value) triples, le / quantile
 * aside, sorted; per PROM_FACT_HISTOGRAM family the finite PROM_FACT_BUCKET values summed
 * in row order per canon id of their first le value (the caller reads the bounds); per
 * PROM_FACT_SPLIT family whose only label, or only label with more
 * than one value, has at most `keep` values (`split`), the finite values summed in row
 * order per canon value of that label's first entry; and the raw values of label
 * sid_label in families sid_fam[0..1] (every row, `_created` ones too) marked in sid_used.
 * Results live in memory the kernel owns until prom_facts_free().  Returns 0, -1 for an
 * id or range out of bounds, -2 when memory runs out (results then freed). */
#define PROM_FACT_CREATED 1
#define PROM_FACT_COUNT 2
#define PROM_FACT_BUCKET 4
#define PROM_FACT_COUNTED 1
#define PROM_FACT_HISTOGRAM 2
#define PROM_FACT_SPLIT 4

typedef struct {
    const uint8_t *kind;
    const int32_t *name;
    const int64_t *lab_first;
    const int64_t *lab_count;
    const double *value;
    int64_t n_rows;
    const int32_t *lab_name;
    const int32_t *lab_value;
    int64_t n_labels;
    const int32_t *fam_of;     /* per name id: family index, or -1 */
    const uint8_t *name_flags; /* per name id: PROM_FACT_CREATED / _COUNT / _BUCKET */
    int64_t n_names;
    const uint8_t *fam_flags;  /* per family: PROM_FACT_COUNTED / _HISTOGRAM / _SPLIT */
    int64_t n_fams;
    const int32_t *canon;      /* per string id: the id its value compares by; NULL: itself */
    int64_t n_strs;
    int32_t le_id;             /* -1: no such string */
    int32_t quantile_id;
    int32_t keep;
    int32_t sid_fam0;          /* -1: none */
    int32_t sid_fam1;
    int32_t sid_label;
} prom_facts_in;

typedef struct {
    int64_t *samples;  /* n_fams each */
    int64_t *series;
    int64_t *nonzero;
    double *total;
    int32_t *split;    /* label name id of the label totals, or -1 */
    int32_t *pair_fam; /* n_pairs each */
    int32_t *pair_name;
    int32_t *pair_value;
    int64_t n_pairs;
    int32_t *bucket_fam; /* n_buckets each, sorted by (family, le value id) */
    int32_t *bucket_le;
    double *bucket_sum;
    int64_t n_buckets;
    int32_t *split_fam;  /* n_splits each, by (family, value id) */
    int32_t *split_value;
    double *split_sum;
    int64_t n_splits;
    uint8_t *sid_used;   /* n_strs */
    int32_t declined;    /* 1: a total fsum.c refused (the caller decides) */
} prom_facts_out;

int prom_facts(const prom_facts_in *in, prom_facts_out *out);
void prom_facts_free(prom_facts_out *out);

/* fsum.c: *out = the correctly rounded sum of x[0..n) (math.fsum's result).  Returns 0;
 * 1 if a partial sum overflows (math.fsum raises: the caller rescales); -1 for a non-finite
 * value, a bad size, or partials beyond the fixed bound (nothing written). */
int ig_fsum(const double *x, int64_t n, double *out);

/* distinct.c: is_first[i] = 1 for the first row of each distinct key
 * (head[i], items[first[i] .. first[i] + count[i])), else 0; with sort_items the items of
 * a row are compared as a sorted multiset.  Returns 0, -1 for a bad range or size
 * (nothing written), -2 when memory runs out. */
int ig_distinct_rows(const int64_t *head, const int64_t *first, const int64_t *count,
                     int64_t n, const int64_t *items, int64_t n_items, int sort_items,
                     uint8_t *is_first);
