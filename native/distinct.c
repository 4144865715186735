/* distinct.c - which rows of a columnar table start a new distinct key, where a row's key is
 * (head[i], items[first[i] .. first[i] + count[i])).  Used by the Prometheus summary and the
 * per-family facts (distinct series per family) in place of a per-length lexsort in numpy;
 * the numpy computation in inferguard/prom/_model.py is the twin and the oracle.
 *
 * All output memory is the caller's; every range is checked against n_items before any
 * read, and a bad one changes nothing. */
#include "api.h"
#include "mix.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void sort_i64(int64_t *v, int64_t n) {
    if (n > 16) {
        qsort(v, (size_t)n, sizeof *v, cmp_i64);
        return;
    }
    for (int64_t i = 1; i < n; i++) { /* insertion sort: label sets are short */
        int64_t x = v[i], j = i - 1;
        while (j >= 0 && v[j] > x) {
            v[j + 1] = v[j];
            j--;
        }
        v[j + 1] = x;
    }
}

int ig_distinct_rows(const int64_t *head, const int64_t *first, const int64_t *count,
                     int64_t n, const int64_t *items, int64_t n_items, int sort_items,
                     uint8_t *is_first) {
    if (n < 0 || n_items < 0 || n > ((int64_t)1 << 40))
        return -1;
    if (n == 0)
        return 0;
    if (!head || !first || !count || !is_first || (n_items > 0 && !items))
        return -1;
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        if (count[i] < 0 || first[i] < 0 || first[i] > n_items - count[i])
            return -1;
        if (count[i] > ((int64_t)1 << 56) - total)
            return -1; /* a total no allocation could hold (and no signed overflow) */
        total += count[i];
    }
    const int64_t *arena = items;
    int64_t *sorted = NULL, *start = NULL;
    if (sort_items) {
        sorted = malloc((size_t)(total > 0 ? total : 1) * sizeof *sorted);
        start = malloc((size_t)n * sizeof *start);
        if (!sorted || !start) {
            free(sorted);
            free(start);
            return -2;
        }
        int64_t at = 0;
        for (int64_t i = 0; i < n; i++) {
            start[i] = at;
            if (count[i] > 0)
                memcpy(sorted + at, items + first[i], (size_t)count[i] * sizeof *sorted);
            sort_i64(sorted + at, count[i]);
            at += count[i];
        }
        arena = sorted;
    }
    const int64_t *off = sort_items ? start : first;
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2)
        cap <<= 1;
    int64_t *slot = malloc((size_t)cap * sizeof *slot); /* row index + 1, 0 = empty */
    uint64_t *hash = malloc((size_t)cap * sizeof *hash);
    if (!slot || !hash) {
        free(slot);
        free(hash);
        free(sorted);
        free(start);
        return -2;
    }
    memset(slot, 0, (size_t)cap * sizeof *slot);
    for (int64_t i = 0; i < n; i++) {
        const int64_t *v = arena + off[i];
        int64_t c = count[i];
        uint64_t h = fmix64((uint64_t)head[i] ^ 0x9E3779B97F4A7C15ULL) ^ (uint64_t)c;
        for (int64_t k = 0; k < c; k++)
            h = fmix64(h ^ (uint64_t)v[k]) + 0x632BE59BD9B4E019ULL;
        uint64_t s = h & (cap - 1);
        is_first[i] = 1;
        while (slot[s]) {
            int64_t j = slot[s] - 1;
            if (hash[s] == h && head[j] == head[i] && count[j] == c &&
                (c == 0 || memcmp(arena + off[j], v, (size_t)c * sizeof *v) == 0)) {
                is_first[i] = 0;
                break;
            }
            s = (s + 1) & (cap - 1);
        }
        if (is_first[i]) {
            slot[s] = i + 1;
            hash[s] = h;
        }
    }
    free(slot);
    free(hash);
    free(sorted);
    free(start);
    return 0;
}
