/* utf8.h - strict UTF-8 validation shared by the native parsers. */
#ifndef INFERGUARD_UTF8_H
#define INFERGUARD_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* -1 if s[0..n) is valid UTF-8 as CPython decodes it (no overlongs, no surrogates,
 * nothing above U+10FFFF), else the offset of the first byte of the first invalid
 * sequence. */
int64_t ig_utf8_error(const uint8_t *s, size_t n);

#endif
