/*
 * logfmt event lines on stderr.
 *
 * Each line is built in a buffer on the caller's stack and handed to the kernel with a single
 * write(2), so lines from different threads never interleave and no lock is needed. The buffer
 * is no larger than PIPE_BUF (4096 on Linux), which makes the write atomic even when stderr is
 * a pipe; a longer line is cut at the last whole field and marked `truncated=true`.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "gdn/clock.h"
#include "gdn/error.h"
#include "gdn/log.h"

#define LINE_MAX_BYTES 2048

/* What replaces the fields that did not fit; it keeps the line valid logfmt. */
#define TRUNCATED_MARK " truncated=true"

/*
 * The level is meant to be set once before threads start, but it is an atomic read with relaxed
 * ordering anyway: that costs nothing on the platforms we run on, and a later change of level
 * (on a signal, say) would then be a harmless race rather than undefined behaviour.
 */
static atomic_int log_level = GDN_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void gdn_log_set_level(gdn_log_level_t level)
{
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

int gdn_log_enabled(gdn_log_level_t level)
{
    return (int)level >= atomic_load_explicit(&log_level, memory_order_relaxed);
}

int gdn_log_parse_level(const char *name, gdn_log_level_t *level)
{
    for (int i = GDN_LOG_DEBUG; i <= GDN_LOG_ERROR; i++) {
        if (name != NULL && strcasecmp(name, level_names[i]) == 0) {
            *level = (gdn_log_level_t)i;
            return 0;
        }
    }
    return GDN_EINVALID;
}

/*
 * Finds where the fields in text[0..len) can be cut so that only whole `key=value` pairs stay:
 * the last space outside double quotes. Returns 0 when not even the first field fits.
 */
static size_t last_field_end(const char *text, size_t len)
{
    size_t end = 0;
    bool quoted = false;

    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\\' && quoted)
            i++;
        else if (text[i] == '"')
            quoted = !quoted;
        else if (text[i] == ' ' && !quoted)
            end = i;
    }
    return end;
}

/*
 * Appends the caller's fields after the fixed prefix that fills line[0..used). Returns the new
 * length, which always leaves room for the newline.
 */
__attribute__((format(printf, 3, 0))) static size_t append_fields(char *line, size_t used,
                                                                  const char *fmt, va_list args)
{
    size_t room = LINE_MAX_BYTES - used - 1;

    line[used++] = ' ';
    room--;

    int written = vsnprintf(line + used, room + 1, fmt, args);

    if (written <= 0)
        return used - 1;
    if ((size_t)written <= room)
        return used + (size_t)written;

    /* The fields did not fit: keep the whole ones that leave room for the mark. */
    size_t keep = last_field_end(line + used, room + 1 - sizeof(TRUNCATED_MARK));

    used = keep > 0 ? used + keep : used - 1;
    memcpy(line + used, TRUNCATED_MARK, sizeof(TRUNCATED_MARK) - 1);
    return used + sizeof(TRUNCATED_MARK) - 1;
}

/*
 * Returns the length (1 to 4) of the well-formed UTF-8 character that starts text[0..avail), or 0
 * when its first byte starts none: a stray continuation byte, an overlong form, a surrogate, a
 * code point past U+10FFFF or a sequence cut short. The ranges are those of RFC 3629.
 */
static size_t utf8_length(const unsigned char *text, size_t avail)
{
    unsigned char lead = text[0];
    unsigned char low = 0x80;
    unsigned char high = 0xbf;
    size_t len;

    if (lead < 0x80)
        return 1;
    if (lead >= 0xc2 && lead <= 0xdf) {
        len = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        len = 3;
        low = lead == 0xe0 ? 0xa0 : low;   /* below is overlong */
        high = lead == 0xed ? 0x9f : high; /* above is a surrogate */
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        len = 4;
        low = lead == 0xf0 ? 0x90 : low;   /* below is overlong */
        high = lead == 0xf4 ? 0x8f : high; /* above is past U+10FFFF */
    } else {
        return 0;
    }
    if (avail < len || text[1] < low || text[1] > high)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if ((text[i] & 0xc0) != 0x80)
            return 0;
    }
    return len;
}

void gdn_log(gdn_log_level_t level, const char *module, const char *event, const char *fmt, ...)
{
    if (!gdn_log_enabled(level))
        return;

    /* Callers often log right before reading errno for their own return value. */
    int saved_errno = errno;
    char ts[GDN_CLOCK_ISO_LEN + 1];
    char line[LINE_MAX_BYTES];

    gdn_clock_format(gdn_clock_now_us(), ts);

    const char *name = (unsigned)level <= GDN_LOG_ERROR ? level_names[level] : "error";
    int prefix = snprintf(line, sizeof(line), "ts=%sZ level=%s module=%s event=%s", ts, name,
                          module != NULL ? module : "unknown", event != NULL ? event : "unknown");
    size_t used = prefix < 0 ? 0 : (size_t)prefix;

    /* Module and event are fixed words, so this only trips on a misuse; cut it short then. */
    if (used > sizeof(line) - 2)
        used = sizeof(line) - 2;
    if (fmt != NULL && fmt[0] != '\0' && used + sizeof(TRUNCATED_MARK) + 2 < sizeof(line)) {
        va_list args;

        va_start(args, fmt);
        used = append_fields(line, used, fmt, args);
        va_end(args);
    }
    /* Values should come through gdn_log_quote; a control character that did not still never
     * ends the line early, where it would let a client-chosen string forge a log line, and a
     * stray byte of broken UTF-8 never turns the line into one journald stores as binary and
     * journalctl hides. */
    for (size_t i = 0; i < used;) {
        const unsigned char *at = (const unsigned char *)line + i;
        size_t n = utf8_length(at, used - i);

        if (n == 0 || (n == 1 && (*at < 0x20 || *at == 0x7f))) {
            line[i] = '?';
            n = 1;
        }
        i += n;
    }
    line[used++] = '\n';

    /* Nothing useful can be done if stderr is gone; a signal before any byte is retried. */
    while (write(STDERR_FILENO, line, used) < 0 && errno == EINTR) {
    }
    errno = saved_errno;
}

/*
 * True when a logfmt value must be quoted to be read back as one value, or to show a byte that
 * is not valid UTF-8 as an escape.
 */
static bool needs_quotes(const char *value, size_t len)
{
    const unsigned char *text = (const unsigned char *)value;

    if (len == 0)
        return true;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_length(text + i, len - i);

        if (n == 0)
            return true;
        if (n == 1 && (text[i] <= ' ' || text[i] == '"' || text[i] == '=' || text[i] == '\\' ||
                       text[i] == 0x7f))
            return true;
        i += n;
    }
    return false;
}

/*
 * Writes the escaped form of one byte into piece (at most 7 bytes) and returns its length.
 * Control characters become \n, \r, \t or \u00XX so that a value never breaks the line.
 */
static size_t escape_byte(unsigned char c, char piece[8])
{
    static const char hex[] = "0123456789abcdef";

    if (c == '"' || c == '\\') {
        piece[0] = '\\';
        piece[1] = (char)c;
        return 2;
    }
    if (c == '\n' || c == '\r' || c == '\t') {
        piece[0] = '\\';
        piece[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        return 2;
    }
    if (c < 0x20 || c == 0x7f) {
        memcpy(piece, "\\u00", 4);
        piece[4] = hex[c >> 4];
        piece[5] = hex[c & 0xf];
        return 6;
    }
    piece[0] = (char)c;
    return 1;
}

/*
 * Writes the escaped form of the character at text[0..avail) into piece and returns its length;
 * *taken is set to the number of input bytes it stands for. A well-formed UTF-8 character is
 * copied as it is; a byte that starts none is shown as \xNN, so that the value stays valid UTF-8
 * and still tells what the byte was.
 */
static size_t escape_character(const char *text, size_t avail, char piece[8], size_t *taken)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = (unsigned char)text[0];
    size_t len = utf8_length((const unsigned char *)text, avail);

    *taken = len > 0 ? len : 1;
    if (len == 0) {
        memcpy(piece, "\\x", 2);
        piece[2] = hex[c >> 4];
        piece[3] = hex[c & 0xf];
        return 4;
    }
    if (len == 1)
        return escape_byte(c, piece);
    memcpy(piece, text, len);
    return len;
}

/*
 * Steps back from a cut before text[len], a byte that exists, to the start of its UTF-8
 * sequence, so truncation never leaves half a character. The text must be valid UTF-8, as a
 * value that needs no quotes is.
 */
static size_t utf8_boundary(const char *text, size_t len)
{
    while (len > 0 && ((unsigned char)text[len] & 0xc0) == 0x80)
        len--;
    return len;
}

const char *gdn_log_quote(const char *value, char *out, size_t out_size)
{
    return gdn_log_quote_n(value, value != NULL ? strlen(value) : 0, out, out_size);
}

const char *gdn_log_quote_n(const char *value, size_t value_len, char *out, size_t out_size)
{
    if (out_size == 0)
        return out;
    if (value == NULL)
        value = "";

    if (!needs_quotes(value, value_len)) {
        size_t n = value_len < out_size ? value_len : utf8_boundary(value, out_size - 1);

        memcpy(out, value, n);
        out[n] = '\0';
        return out;
    }

    /* Room for the opening quote, the closing quote and the NUL. */
    if (out_size < 3) {
        out[0] = '\0';
        return out;
    }

    size_t used = 0;

    out[used++] = '"';
    for (size_t i = 0; i < value_len;) {
        char piece[8];
        size_t taken;
        size_t n = escape_character(value + i, value_len - i, piece, &taken);

        /* Each character goes in whole or not at all: a cut inside one could leave half a UTF-8
         * sequence, or a lone backslash that would escape the closing quote. */
        if (used + n > out_size - 2)
            break;
        memcpy(out + used, piece, n);
        used += n;
        i += taken;
    }
    out[used++] = '"';
    out[used] = '\0';
    return out;
}
