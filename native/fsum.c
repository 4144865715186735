/* fsum.c - the correctly rounded sum of doubles (Shewchuk's exact partials, rounded half
 * to even at the end), the result Python's math.fsum gives for the same finite values in
 * the same order.  Used by the Prometheus family facts (per-family totals) in place of
 * math.fsum over a Python list; math.fsum is the twin and the oracle.
 *
 * Only + - and * 2 on doubles (no contraction can change a result: the one product is
 * exact); the partials are a fixed array, and a sum that would need more of them than it
 * holds is refused rather than guessed. */
#include "api.h"

#include <math.h>

#define MAX_PARTIALS 128 /* non-overlapping doubles span ~2100 bits: 40 or so suffice */

int ig_fsum(const double *x, int64_t n, double *out) {
    double p[MAX_PARTIALS];
    int np = 0;
    if (n < 0 || (n > 0 && !x) || !out) return -1;
    for (int64_t k = 0; k < n; k++) {
        double v = x[k];
        int i = 0;
        if (!isfinite(v)) return -1; /* the caller sums finite values only */
        for (int j = 0; j < np; j++) {
            double y = p[j], hi, lo;
            if (fabs(v) < fabs(y)) {
                double t = v;
                v = y;
                y = t;
            }
            hi = v + y;
            lo = y - (hi - v);
            if (lo != 0.0) p[i++] = lo;
            v = hi;
        }
        np = i;
        if (v != 0.0) {
            if (!isfinite(v)) return 1; /* intermediate overflow: math.fsum raises too */
            if (np == MAX_PARTIALS) return -1;
            p[np++] = v;
        }
    }
    {
        double hi = 0.0, lo = 0.0;
        if (np > 0) {
            hi = p[--np];
            while (np > 0) { /* add from the top until the sum is inexact */
                double v = hi, y = p[--np];
                hi = v + y;
                lo = y - (hi - v);
                if (lo != 0.0) break;
            }
            /* half-way case: round toward the sign of the partials left below */
            if (np > 0 && ((lo < 0.0 && p[np - 1] < 0.0) || (lo > 0.0 && p[np - 1] > 0.0))) {
                double y = lo * 2.0, v = hi + y;
                if (y == v - hi) hi = v;
            }
        }
        *out = hi;
    }
    return 0;
}
