/* lct.h - the .lct scan and ObjectKey extraction (lct.c, lct_keys.c).
 *
 * The public API (what Python sees) is declared in inferguard_api.h; this header adds
 * only what lct.c shares with lct_keys.c.  The per-frame contract is specified in pure
 * Python in inferguard/lct/_frame.py, the key contract in inferguard/lct/_keys.py.
 */
#ifndef INFERGUARD_LCT_H
#define INFERGUARD_LCT_H

#include "api.h"
#include "intern.h"

/* The shared interner under its public name (intern.h), with the scan's cache of the
 * qualnames it interned last (ids, -1: empty): a record whose qualname equals one of them
 * needs neither the UTF-8 check nor a hash (lct_scan only). */
#define LCT_RECENT 8
struct lct_interner {
    ig_interner in;
    int32_t recent[LCT_RECENT];
    uint32_t recent_next;
};

/* Helpers lct_keys.c shares with the frame scan: skip exactly one msgpack value
 * in [*p, end) (advances *p; -1 if ill-formed or truncated) and strict UTF-8. */
int lct_skip_value(const uint8_t **p, const uint8_t *end);
int lct_utf8_valid(const uint8_t *s, size_t n);

/* The bytes [*a0, *a1) of a record body's `args` value (the last one); -1 if the body
 * does not walk as a record map (lct_keys.c, used by lct_events.c). */
int lct_find_args(const uint8_t *p, const uint8_t *end, const uint8_t **a0,
                  const uint8_t **a1);

/* The head msgspec writes for every record ({"type": "record", "t_mono": f64, "t_wall": f64,
 * "qualname": str, "args": ...}, lct.c): 1 with the qualname's bytes and the start of the
 * args value, 0 for any other layout (the generic walks decide then). */
int lct_record_head(const uint8_t *p, const uint8_t *end, const uint8_t **qual, size_t *qn,
                    const uint8_t **args);

/* The fingerprint in two steps (lct_keys.c): the context hash, then the key's. */
uint64_t lct_key_context(const uint8_t *model, size_t model_len, int64_t kv_rank, int64_t group,
                         const uint8_t *salt, size_t salt_len, int has_salt);
uint64_t lct_key_fingerprint_ctx(const uint8_t *hash, size_t hash_len, uint64_t ctx);

#endif
