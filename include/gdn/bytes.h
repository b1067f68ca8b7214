/*
 * Big-endian integers in index keys: byte order that sorts like the numbers, so that LMDB's
 * plain byte comparison orders keys by time or rank.
 */
#ifndef GDN_BYTES_H
#define GDN_BYTES_H

#include <stdint.h>

/** Writes `value` as 8 big-endian bytes. */
static inline void gdn_put_u64be(unsigned char *out, uint64_t value)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (unsigned char)(value & 0xff);
        value >>= 8;
    }
}

/** Reads 8 big-endian bytes. */
static inline uint64_t gdn_get_u64be(const unsigned char *in)
{
    uint64_t value = 0;

    for (int i = 0; i < 8; i++)
        value = (value << 8) | in[i];
    return value;
}

#endif
