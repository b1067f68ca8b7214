/*
 * A growable byte buffer for building answers from pieces, such as stored JSON objects that
 * are copied into a listing verbatim.
 */
#ifndef GDN_BUF_H
#define GDN_BUF_H

#include <stddef.h>

typedef struct gdn_buf {
    char *data; /**< NUL-terminated while not failed; owned by the buffer */
    size_t len;
    size_t cap;
    int failed; /**< set once an allocation failed; later appends do nothing */
} gdn_buf_t;

/** An empty buffer; needs no call before use. */
#define GDN_BUF_INIT                                                                               \
    {                                                                                              \
        NULL, 0, 0, 0                                                                              \
    }

/** Appends `len` bytes. @return 0, or -ENOMEM (and the buffer is marked failed). */
int gdn_buf_append(gdn_buf_t *buf, const void *data, size_t len);

/** Appends a NUL-terminated string. @return 0 or -ENOMEM. */
int gdn_buf_append_str(gdn_buf_t *buf, const char *text);

/**
 * Hands the contents over to the caller (free with free()) and leaves the buffer empty.
 * @return the data, or NULL if the buffer failed (it is then emptied too).
 */
char *gdn_buf_take(gdn_buf_t *buf, size_t *len);

/** Frees the contents and leaves the buffer empty. */
void gdn_buf_free(gdn_buf_t *buf);

#endif
