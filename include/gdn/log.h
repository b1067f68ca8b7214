/*
 * One-line-per-event logging in logfmt on stderr:
 *
 *     ts=2026-01-17T12:34:56.123456Z level=warn module=flusher event=s3_put_failed http=503
 *
 * `event` is a fixed snake_case word. The fields after it are given by the caller as a
 * printf-style string of `key=value` pairs; use gdn_log_quote for values that may hold spaces.
 * Never log secrets, tokens or whole request bodies.
 */
#ifndef GDN_LOG_H
#define GDN_LOG_H

#include <stddef.h>

typedef enum gdn_log_level {
    GDN_LOG_DEBUG = 0,
    GDN_LOG_INFO = 1,
    GDN_LOG_WARN = 2,
    GDN_LOG_ERROR = 3,
} gdn_log_level_t;

/** Sets the lowest level that is written. Call before starting threads. Default: info. */
void gdn_log_set_level(gdn_log_level_t level);

/** Returns 1 if a message at `level` would be written. Any thread. */
int gdn_log_enabled(gdn_log_level_t level);

/**
 * Parses a level name (`debug`, `info`, `warn`, `error`).
 * @return 0 and *level set, or GDN_EINVALID.
 */
int gdn_log_parse_level(const char *name, gdn_log_level_t *level);

/**
 * Writes one event line. Any thread; each line is written with a single write(2).
 *
 * @param level severity; lines below the configured level are dropped.
 * @param module the module name, e.g. "journal", "http", "flusher".
 * @param event a fixed snake_case event name.
 * @param fmt NULL, or printf-style `key=value key=value` fields appended after the event.
 */
void gdn_log(gdn_log_level_t level, const char *module, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/**
 * Quotes a value for logfmt when it needs it (empty, or holding spaces, quotes, `=`, control
 * characters or bytes that are not valid UTF-8), escaping quotes and backslashes as `\"` and
 * `\\`, control characters as `\n`, `\r`, `\t` or `\u00XX`, and each byte that is not part of a
 * well-formed UTF-8 character (a stray continuation byte, an overlong form, a surrogate, a code
 * point past U+10FFFF, a cut-short sequence) as `\xNN`. Well-formed UTF-8 is copied as it is, so
 * the result is always valid UTF-8. A value too long for `out` is cut before the first
 * character or escape that does not fit whole, and a quoted one still ends in its closing quote.
 * Any thread.
 *
 * @param value the value; NULL is taken as "".
 * @param out buffer for the result; always NUL-terminated when out_size > 0. A value that needs
 *            quotes yields an empty string when out_size < 3.
 * @param out_size the size of out.
 * @return out, for use as a printf argument.
 */
const char *gdn_log_quote(const char *value, char *out, size_t out_size);

/**
 * gdn_log_quote of the `len` bytes at `value`, which need not end in a NUL and may hold NULs
 * (each is escaped as a control character): for text such as a request path, whose length is
 * known.
 */
const char *gdn_log_quote_n(const char *value, size_t len, char *out, size_t out_size);

#endif
