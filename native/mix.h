/* mix.h - the 64-bit finalizer (MurmurHash3's fmix64) the hash tables and fingerprints of
 * the C core share: a bijection that spreads every input bit over the output. */
#ifndef INFERGUARD_MIX_H
#define INFERGUARD_MIX_H

#include <stdint.h>

static inline uint64_t fmix64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

#endif
