/*
 * The growable byte buffer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gdn/buf.h"

int gdn_buf_append(gdn_buf_t *buf, const void *data, size_t len)
{
    if (buf->failed)
        return -ENOMEM;
    if (buf->len + len + 1 > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 256;

        while (cap < buf->len + len + 1)
            cap *= 2;

        char *grown = realloc(buf->data, cap);

        if (grown == NULL) {
            buf->failed = 1;
            return -ENOMEM;
        }
        buf->data = grown;
        buf->cap = cap;
    }
    if (len > 0)
        memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
    return 0;
}

int gdn_buf_append_str(gdn_buf_t *buf, const char *text)
{
    return gdn_buf_append(buf, text, strlen(text));
}

char *gdn_buf_take(gdn_buf_t *buf, size_t *len)
{
    char *data = buf->data;
    size_t data_len = buf->len;

    if (buf->failed) {
        free(data);
        data = NULL;
        data_len = 0;
    } else if (data == NULL) {
        data = calloc(1, 1);
    }
    buf->data = NULL;
    buf->len = buf->cap = 0;
    buf->failed = 0;
    *len = data_len;
    return data;
}

void gdn_buf_free(gdn_buf_t *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}
