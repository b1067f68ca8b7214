/*
 * Wall-clock time in microseconds and its ISO-8601 text form.
 */
#ifndef GDN_CLOCK_H
#define GDN_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/** Length of an ISO-8601 timestamp as written by gdn_clock_format, without the NUL. */
#define GDN_CLOCK_ISO_LEN 26

/**
 * Returns the current UTC time in microseconds since the Unix epoch. Any thread.
 */
int64_t gdn_clock_now_us(void);

/**
 * Writes a UTC timestamp as `YYYY-MM-DDTHH:MM:SS.ffffff` (microseconds, no zone suffix).
 *
 * @param us microseconds since the epoch.
 * @param out a buffer of at least GDN_CLOCK_ISO_LEN + 1 bytes; always NUL-terminated.
 */
void gdn_clock_format(int64_t us, char out[GDN_CLOCK_ISO_LEN + 1]);

/**
 * Parses a timestamp in the form gdn_clock_format writes. The fraction may have 0 to 6 digits,
 * and a trailing `Z` or `+00:00` is accepted.
 *
 * @return 0 and *us set, or GDN_EINVALID.
 */
int gdn_clock_parse(const char *text, size_t len, int64_t *us);

#endif
