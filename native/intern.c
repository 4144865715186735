/* intern.c - see intern.h.  Equality is always decided by length and memcmp; the hash
 * only picks the probe start, so ids never depend on it. */
#include "intern.h"

#include <stdlib.h>
#include <string.h>

#define TABLE0 64
#define BYTES0 4096

static uint64_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 0x243f6a8885a308d3ULL ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x9fb21c651e98df25ULL;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * 0x9fb21c651e98df25ULL;
        h ^= h >> 29;
    }
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ULL;
    h ^= h >> 32;
    return h;
}

int ig_interner_init(ig_interner *in, uint32_t max_count) {
    memset(in, 0, sizeof *in);
    in->max_count = max_count > (uint32_t)INT32_MAX ? (uint32_t)INT32_MAX : max_count;
    in->table_size = TABLE0;
    in->table = malloc(sizeof(ig_slot) * in->table_size);
    in->bytes_cap = BYTES0; /* never NULL, so a name pointer is valid even for "" */
    in->bytes = malloc(in->bytes_cap);
    if (!in->table || !in->bytes) return -1;
    for (size_t i = 0; i < in->table_size; i++) in->table[i].id = -1;
    return 0;
}

void ig_interner_release(ig_interner *in) {
    free(in->bytes);
    free(in->off);
    free(in->len);
    free(in->extra);
    free(in->table);
    memset(in, 0, sizeof *in);
}

static int grow_table(ig_interner *in) {
    size_t size = in->table_size * 2;
    ig_slot *t;
    if (size > ((size_t)1 << 33)) return -1;
    t = malloc(sizeof(ig_slot) * size);
    if (!t) return -1;
    for (size_t i = 0; i < size; i++) t[i].id = -1;
    for (size_t i = 0; i < in->table_size; i++) {
        size_t j;
        if (in->table[i].id < 0) continue;
        j = (size_t)(in->table[i].hash & (size - 1));
        while (t[j].id != -1) j = (j + 1) & (size - 1);
        t[j] = in->table[i];
    }
    free(in->table);
    in->table = t;
    in->table_size = size;
    return 0;
}

static int grow_entries(ig_interner *in) {
    uint64_t want = in->cap ? (uint64_t)in->cap * 2 : 256;
    uint32_t cap = want > in->max_count ? in->max_count : (uint32_t)want;
    int64_t *p;
    if (cap <= in->count) return -1;
    p = realloc(in->off, sizeof(int64_t) * cap);
    if (!p) return -1;
    in->off = p;
    p = realloc(in->len, sizeof(int64_t) * cap);
    if (!p) return -1;
    in->len = p;
    p = realloc(in->extra, sizeof(int64_t) * cap);
    if (!p) return -1;
    in->extra = p;
    in->cap = cap;
    return 0;
}

int32_t ig_intern(ig_interner *in, const uint8_t *s, size_t n) {
    uint64_t h = hash_bytes(s, n);
    size_t mask = in->table_size - 1;
    size_t j = (size_t)(h & mask);
    int32_t id;
    while (in->table[j].id != -1) {
        if (in->table[j].hash == h) {
            int64_t k = in->table[j].id;
            if ((size_t)in->len[k] == n && (n == 0 || memcmp(in->bytes + in->off[k], s, n) == 0))
                return (int32_t)k;
        }
        j = (j + 1) & mask;
    }
    if (in->count >= in->max_count) return IG_INTERN_FULL;
    if (in->count == in->cap && grow_entries(in)) return IG_INTERN_NOMEM;
    if (n > in->bytes_cap - in->bytes_len) {
        size_t cap = in->bytes_cap;
        uint8_t *b;
        while (cap - in->bytes_len < n) {
            if (cap > SIZE_MAX / 2) return IG_INTERN_NOMEM;
            cap *= 2;
        }
        b = realloc(in->bytes, cap);
        if (!b) return IG_INTERN_NOMEM;
        in->bytes = b;
        in->bytes_cap = cap;
    }
    if (n) memcpy(in->bytes + in->bytes_len, s, n);
    id = (int32_t)in->count;
    in->off[id] = (int64_t)in->bytes_len;
    in->len[id] = (int64_t)n;
    in->extra[id] = -1;
    in->bytes_len += n;
    in->count++;
    in->table[j].hash = h;
    in->table[j].id = id;
    if ((size_t)in->count * 2 > in->table_size && grow_table(in)) return IG_INTERN_NOMEM;
    return id;
}

int32_t ig_intern_recent(ig_interner *in, int32_t *recent, const uint8_t *s, size_t n) {
    int32_t id = *recent;
    if (id >= 0 && (uint32_t)id < in->count && (size_t)in->len[id] == n &&
        (n == 0 || memcmp(in->bytes + in->off[id], s, n) == 0))
        return id;
    id = ig_intern(in, s, n);
    if (id >= 0) *recent = id;
    return id;
}

const uint8_t *ig_name(const ig_interner *in, uint32_t id, size_t *len) {
    if (id >= in->count) return NULL;
    *len = (size_t)in->len[id];
    return in->bytes + in->off[id];
}
