/* intern.h - the one string interner of the native core.
 *
 * Strings get dense ids in first-seen order.  The .lct scan (qualnames), the ObjectKey
 * extraction (model names, cache salts) and the Prometheus tokeniser (metric names, label
 * names and values) all use it; each caps the id count it accepts.  The struct is public
 * so hot loops read a name's bytes without a call; only intern.c writes it.
 */
#ifndef INFERGUARD_INTERN_H
#define INFERGUARD_INTERN_H

#include <stddef.h>
#include <stdint.h>

#define IG_INTERN_FULL (-1)  /* a new name, but max_count ids are already handed out */
#define IG_INTERN_NOMEM (-2) /* out of memory */

typedef struct {
    uint64_t hash;
    int64_t id; /* -1: empty */
} ig_slot;

typedef struct {
    uint8_t *bytes;   /* every name, back to back; never NULL after init */
    size_t bytes_len, bytes_cap;
    int64_t *off;     /* id -> offset of its bytes */
    int64_t *len;     /* id -> length */
    int64_t *extra;   /* id -> the owner's scratch value, -1 when interned */
    uint32_t count, cap, max_count;
    ig_slot *table;   /* open addressing, power-of-two size, at most half full */
    size_t table_size;
} ig_interner;

/* 0, or -1 when memory runs out (then ig_interner_release is still safe).  At most
 * max_count ids (<= INT32_MAX) are ever handed out. */
int ig_interner_init(ig_interner *in, uint32_t max_count);
void ig_interner_release(ig_interner *in);

/* The id of s[0..n): an existing one, a new one, IG_INTERN_FULL or IG_INTERN_NOMEM. */
int32_t ig_intern(ig_interner *in, const uint8_t *s, size_t n);

/* ig_intern with a one-entry cache: `*recent` (an id or -1) is tried first, by memcmp
 * against its bytes, and updated on success. */
int32_t ig_intern_recent(ig_interner *in, int32_t *recent, const uint8_t *s, size_t n);

/* The bytes of name `id` (valid until the next ig_intern), or NULL if there is no such id. */
const uint8_t *ig_name(const ig_interner *in, uint32_t id, size_t *len);

#endif
