/* api.h - how C code includes inferguard_api.h: with an include guard and the standard
 * types it uses, which that file cannot carry itself (cffi's cdef reads it bare). */
#ifndef INFERGUARD_API_GUARD_H
#define INFERGUARD_API_GUARD_H

#include <stddef.h>
#include <stdint.h>

#include "inferguard_api.h"

#endif
