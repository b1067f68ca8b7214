/*
 * A JSON document model built from yajl's event parser.
 *
 * yajl_tree is not used: it accepts comments unless told otherwise, stores strings as C strings
 * (so anything after an embedded NUL is lost) and frees its trees recursively with no bound on
 * depth. Here the parser's callbacks build the nodes, the nesting limit is enforced while
 * parsing, and every node and copied string lives in one arena per document, so freeing a
 * document is a walk over a short list of chunks.
 *
 * Numbers are kept as the text the client wrote: nothing is lost to a double on the way through,
 * and a stored object is written back byte for byte as it was read.
 *
 * Limitation: yajl decodes a high surrogate escape (`\uD800` to `\uDBFF`) that is not followed by
 * another `\u` escape as `?`, and pairs it with whatever `\u` escape follows, low surrogate or
 * not. Such malformed escapes are stored as yajl decoded them instead of being refused.
 *
 * Limitation: yajl does not check the results of its own internal allocations (parser buffers,
 * generator output); only the creation of a parser or generator reports failure. Our arena
 * allocations are checked and fail the parse with -ENOMEM.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "gdn/clock.h"
#include "gdn/error.h"
#include "gdn/json.h"

/* The first chunk is small: most request bodies are a few hundred bytes. */
#define ARENA_FIRST_CHUNK 4096
/* Chunks double up to this size; larger requests get a chunk of their own. */
#define ARENA_LARGEST_CHUNK (1024 * 1024)

typedef struct arena_chunk arena_chunk_t;

struct arena_chunk {
    arena_chunk_t *next;
    size_t size; /* usable bytes in data */
    size_t used;
    max_align_t data[];
};

struct gdn_json_doc {
    arena_chunk_t *chunks; /* the chunk being filled first; the document lives in one of them */
    size_t next_size;
    gdn_json_t *root;
};

/* What the parser's callbacks share while one document is built. */
typedef struct parse_state {
    gdn_json_doc_t *doc;
    yajl_handle parser;
    gdn_json_t *open[GDN_JSON_MAX_DEPTH]; /* the arrays and objects not yet closed */
    size_t depth;
    const char *key; /* the name given by the last map key event, for the next value */
    size_t key_len;
    int failure;         /* set when a callback cancels the parse: GDN_EINVALID or -ENOMEM */
    const char *message; /* why a callback cancelled the parse */
    bool root_done;      /* the root value is complete: anything more is trailing data */
    size_t root_end;     /* bytes of the input consumed when the root value was complete */
} parse_state_t;

static arena_chunk_t *new_chunk(size_t size)
{
    arena_chunk_t *chunk = malloc(sizeof(*chunk) + size);

    if (chunk == NULL)
        return NULL;
    chunk->next = NULL;
    chunk->size = size;
    chunk->used = 0;
    return chunk;
}

/* Takes `size` bytes aligned to `align` (a power of two) from the document's arena. */
static void *arena_alloc(gdn_json_doc_t *doc, size_t size, size_t align)
{
    arena_chunk_t *chunk = doc->chunks;
    size_t start = (chunk->used + align - 1) & ~(align - 1);

    if (start <= chunk->size && chunk->size - start >= size) {
        chunk->used = start + size;
        return (char *)chunk->data + start;
    }

    /*
     * A request larger than the next chunk gets a chunk of its own, kept behind the one being
     * filled so that the room left there still serves the small requests that follow.
     */
    if (size > doc->next_size) {
        if (size > SIZE_MAX - sizeof(*chunk))
            return NULL;
        chunk = new_chunk(size);
        if (chunk == NULL)
            return NULL;
        chunk->next = doc->chunks->next;
        doc->chunks->next = chunk;
        chunk->used = size;
        return chunk->data;
    }

    chunk = new_chunk(doc->next_size);
    if (chunk == NULL)
        return NULL;
    chunk->next = doc->chunks;
    doc->chunks = chunk;
    if (doc->next_size < ARENA_LARGEST_CHUNK)
        doc->next_size *= 2;
    chunk->used = size;
    return chunk->data;
}

/* Copies `len` bytes into the arena and NUL-terminates them, for callers that want a C string. */
static char *arena_copy(gdn_json_doc_t *doc, const void *bytes, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;

    char *copy = arena_alloc(doc, len + 1, 1);

    if (copy == NULL)
        return NULL;
    if (len > 0)
        memcpy(copy, bytes, len);
    copy[len] = '\0';
    return copy;
}

static gdn_json_doc_t *new_doc(void)
{
    arena_chunk_t *chunk = new_chunk(ARENA_FIRST_CHUNK);

    if (chunk == NULL)
        return NULL;

    /* The document lives in its own first chunk, so freeing the chunks frees everything. */
    gdn_json_doc_t *doc = (gdn_json_doc_t *)(void *)chunk->data;

    chunk->used = sizeof(*doc);
    doc->chunks = chunk;
    doc->next_size = ARENA_FIRST_CHUNK * 2;
    doc->root = NULL;
    return doc;
}

void gdn_json_free(gdn_json_doc_t *doc)
{
    if (doc == NULL)
        return;

    arena_chunk_t *chunk = doc->chunks;

    while (chunk != NULL) {
        arena_chunk_t *next = chunk->next;

        free(chunk);
        chunk = next;
    }
}

gdn_json_t *gdn_json_root(const gdn_json_doc_t *doc)
{
    return doc == NULL ? NULL : doc->root;
}

/* Stops the parse from inside a callback; yajl then reports a cancelled parse. */
static int cancel_parse(parse_state_t *state, int failure, const char *message)
{
    state->failure = failure;
    state->message = message;
    return 0;
}

/*
 * Checks that bytes are UTF-8 as RFC 3629 defines it. yajl's own check only looks at the shape
 * of each sequence: it lets through overlong forms, UTF-16 surrogates (also those a lone `\uDC00`
 * escape decodes to) and code points above U+10FFFF, which stricter readers of the stored
 * objects would refuse.
 */
static bool is_strict_utf8(const unsigned char *bytes, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = bytes[i];
        size_t follow;
        unsigned char low = 0x80, high = 0xBF;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            follow = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            follow = 2;
            low = c == 0xE0 ? 0xA0 : 0x80;
            high = c == 0xED ? 0x9F : 0xBF;
        } else if (c >= 0xF0 && c <= 0xF4) {
            follow = 3;
            low = c == 0xF0 ? 0x90 : 0x80;
            high = c == 0xF4 ? 0x8F : 0xBF;
        } else {
            return false;
        }
        if (len - i <= follow || bytes[i + 1] < low || bytes[i + 1] > high)
            return false;
        for (size_t k = 2; k <= follow; k++) {
            if ((bytes[i + k] & 0xC0) != 0x80)
                return false;
        }
        i += follow + 1;
    }
    return true;
}

/* Makes a node and hangs it under the innermost open container, or makes it the root. */
static gdn_json_t *add_node(parse_state_t *state, gdn_json_type_t type)
{
    gdn_json_t *node = arena_alloc(state->doc, sizeof(*node), alignof(gdn_json_t));

    if (node == NULL) {
        cancel_parse(state, -ENOMEM, "out of memory");
        return NULL;
    }
    memset(node, 0, sizeof(*node));
    node->type = type;

    if (state->depth == 0) {
        state->doc->root = node;
        return node;
    }

    gdn_json_t *parent = state->open[state->depth - 1];

    if (parent->type == GDN_JSON_OBJECT) {
        node->key = state->key;
        node->key_len = state->key_len;
    }
    if (parent->last == NULL)
        parent->first = node;
    else
        parent->last->next = node;
    parent->last = node;
    parent->count++;
    return node;
}

/*
 * Notes where the root value ends, once a value at depth 0 is complete, so that data after it can
 * be reported where it starts rather than where yajl gave up reading it.
 */
static int end_value(parse_state_t *state)
{
    if (state->depth == 0) {
        state->root_done = true;
        state->root_end = yajl_get_bytes_consumed(state->parser);
    }
    return 1;
}

static int on_null(void *ctx)
{
    if (add_node(ctx, GDN_JSON_NULL) == NULL)
        return 0;
    return end_value(ctx);
}

static int on_boolean(void *ctx, int value)
{
    gdn_json_t *node = add_node(ctx, GDN_JSON_BOOL);

    if (node == NULL)
        return 0;
    node->boolean = value ? 1 : 0;
    return end_value(ctx);
}

/* Stores the text of a number or string in a new node. */
static int add_text(parse_state_t *state, gdn_json_type_t type, const void *text, size_t len)
{
    gdn_json_t *node = add_node(state, type);

    if (node == NULL)
        return 0;
    node->text = arena_copy(state->doc, text, len);
    if (node->text == NULL)
        return cancel_parse(state, -ENOMEM, "out of memory");
    node->len = len;
    return end_value(state);
}

static int on_number(void *ctx, const char *text, size_t len)
{
    return add_text(ctx, GDN_JSON_NUMBER, text, len);
}

static int on_string(void *ctx, const unsigned char *text, size_t len)
{
    if (!is_strict_utf8(text, len))
        return cancel_parse(ctx, GDN_EINVALID, "invalid UTF-8");
    return add_text(ctx, GDN_JSON_STRING, text, len);
}

static int on_map_key(void *ctx, const unsigned char *text, size_t len)
{
    parse_state_t *state = ctx;

    if (!is_strict_utf8(text, len))
        return cancel_parse(state, GDN_EINVALID, "invalid UTF-8");
    state->key = arena_copy(state->doc, text, len);
    if (state->key == NULL)
        return cancel_parse(state, -ENOMEM, "out of memory");
    state->key_len = len;
    return 1;
}

/* Opens an array or object; refusing here keeps yajl from ever going deeper than the limit. */
static int open_container(parse_state_t *state, gdn_json_type_t type)
{
    if (state->depth >= GDN_JSON_MAX_DEPTH)
        return cancel_parse(state, GDN_EINVALID, "nesting too deep");

    gdn_json_t *node = add_node(state, type);

    if (node == NULL)
        return 0;
    state->open[state->depth++] = node;
    return 1;
}

static int on_start_map(void *ctx)
{
    return open_container(ctx, GDN_JSON_OBJECT);
}

static int on_start_array(void *ctx)
{
    return open_container(ctx, GDN_JSON_ARRAY);
}

static int on_end_container(void *ctx)
{
    parse_state_t *state = ctx;

    state->depth--;
    return end_value(state);
}

static const yajl_callbacks parse_callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_boolean,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_map_key,
    .yajl_end_map = on_end_container,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end_container,
};

/*
 * Copies yajl's short error text into `err`, without its "lexical error: " or "parse error: "
 * prefix and its trailing period and newline. Its invalid UTF-8 message is renamed to ours.
 */
static void describe_yajl_error(yajl_handle parser, gdn_json_error_t *err)
{
    unsigned char *text = yajl_get_error(parser, 0, NULL, 0);
    const char *reason = text == NULL ? "malformed JSON" : (const char *)text;
    const char *colon = strstr(reason, ": ");

    if (colon != NULL)
        reason = colon + 2;
    if (strstr(reason, "UTF8") != NULL)
        reason = "invalid UTF-8";

    size_t len = strcspn(reason, "\n");

    while (len > 0 && reason[len - 1] == '.')
        len--;
    if (len >= sizeof(err->message))
        len = sizeof(err->message) - 1;
    memcpy(err->message, reason, len);
    err->message[len] = '\0';
    if (text != NULL)
        yajl_free_error(parser, text);
}

/* Skips the white space JSON allows between tokens. */
static size_t skip_white_space(const char *text, size_t len, size_t offset)
{
    while (offset < len && (text[offset] == ' ' || text[offset] == '\t' || text[offset] == '\r' ||
                            text[offset] == '\n'))
        offset++;
    return offset;
}

/*
 * Runs yajl over the whole input. The input is given in one piece, so bytes consumed by the
 * failing yajl_parse call are an offset into it; a failure only found by yajl_complete_parse
 * (premature end) is at the end of the input. After a complete value the only possible error is
 * trailing data, located where it starts; such a value always ends inside the input, since the
 * single space yajl_complete_parse feeds cannot be followed by anything.
 */
static int run_parser(yajl_handle parser, parse_state_t *state, const char *text, size_t len,
                      gdn_json_error_t *err)
{
    yajl_status status = yajl_status_ok;
    size_t offset = len;

    if (len > 0)
        status = yajl_parse(parser, (const unsigned char *)text, len);
    if (status != yajl_status_ok)
        offset = yajl_get_bytes_consumed(parser);
    else
        status = yajl_complete_parse(parser);
    if (status == yajl_status_ok)
        return 0;
    if (state->root_done && state->failure == 0)
        offset = skip_white_space(text, len, state->root_end);

    int rc = state->failure != 0 ? state->failure : GDN_EINVALID;

    if (err != NULL) {
        err->offset = offset < len ? offset : len;
        if (state->message != NULL)
            snprintf(err->message, sizeof(err->message), "%s", state->message);
        else
            describe_yajl_error(parser, err);
    }
    return rc;
}

int gdn_json_parse(const char *text, size_t len, gdn_json_doc_t **doc, gdn_json_error_t *err)
{
    *doc = NULL;

    /* yajl's defaults are the strict ones: UTF-8 checked, no comments, one value, no garbage. */
    parse_state_t state = {.doc = new_doc()};
    yajl_handle parser = state.doc == NULL ? NULL : yajl_alloc(&parse_callbacks, NULL, &state);

    state.parser = parser;
    if (parser == NULL) {
        gdn_json_free(state.doc);
        if (err != NULL) {
            err->offset = 0;
            snprintf(err->message, sizeof(err->message), "out of memory");
        }
        return -ENOMEM;
    }

    int rc = run_parser(parser, &state, text, len, err);

    yajl_free(parser);
    if (rc != 0) {
        gdn_json_free(state.doc);
        return rc;
    }
    *doc = state.doc;
    return 0;
}

const gdn_json_t *gdn_json_get(const gdn_json_t *object, const char *name)
{
    if (object == NULL || object->type != GDN_JSON_OBJECT)
        return NULL;

    size_t name_len = strlen(name);
    const gdn_json_t *found = NULL;

    for (const gdn_json_t *member = object->first; member != NULL; member = member->next) {
        if (member->key_len == name_len && memcmp(member->key, name, name_len) == 0)
            found = member;
    }
    return found;
}

/* What the text of a JSON number says about it as a 64-bit integer. */
typedef enum number_kind {
    NUMBER_INT64,
    NUMBER_FRACTIONAL,
    NUMBER_TOO_LARGE,
    NUMBER_MALFORMED,
} number_kind_t;

/* Exponents are clamped to this magnitude: far past any int64, far from int64 overflow. */
#define EXPONENT_CLAMP (INT64_MAX / 4)

/*
 * Reads the exponent after `e` or `E`, clamping its magnitude so that a written exponent of any
 * length cannot overflow. @return the position after it, or NULL if there are no digits.
 */
static const char *read_exponent(const char *p, const char *end, int64_t *exponent)
{
    bool negative = false;

    if (p < end && (*p == '+' || *p == '-')) {
        negative = *p == '-';
        p++;
    }
    if (p == end || *p < '0' || *p > '9')
        return NULL;

    int64_t value = 0;

    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (value > (EXPONENT_CLAMP - 9) / 10)
            value = EXPONENT_CLAMP;
        else
            value = value * 10 + (*p - '0');
    }
    *exponent = negative ? -value : value;
    return p;
}

/*
 * Classifies the text of a number without converting it to a double, so that a long mantissa
 * or a huge exponent is judged exactly rather than rounded. The value is read as its significant
 * digits (leading and trailing zeros dropped) times a power of ten: a negative power means a
 * fraction, and more than 19 digits in all cannot fit in 64 bits.
 */
static number_kind_t classify_number(const char *text, size_t len, int64_t *out)
{
    const char *p = text;
    const char *end = text + len;
    bool negative = p < end && *p == '-';

    if (negative)
        p++;

    const char *first_nonzero = NULL, *last_nonzero = NULL;
    int64_t digits = 0, fraction_digits = 0, digits_after_last_nonzero = 0;
    bool in_fraction = false;

    for (; p < end && ((*p >= '0' && *p <= '9') || (*p == '.' && !in_fraction)); p++) {
        if (*p == '.') {
            in_fraction = true;
            continue;
        }
        digits++;
        fraction_digits += in_fraction;
        digits_after_last_nonzero++;
        if (*p != '0') {
            if (first_nonzero == NULL)
                first_nonzero = p;
            last_nonzero = p;
            digits_after_last_nonzero = 0;
        }
    }

    int64_t exponent = 0;

    if (digits == 0)
        return NUMBER_MALFORMED;
    if (p < end && (*p == 'e' || *p == 'E'))
        p = read_exponent(p + 1, end, &exponent);
    if (p != end)
        return NUMBER_MALFORMED;
    if (first_nonzero == NULL) {
        *out = 0;
        return NUMBER_INT64;
    }

    int64_t scale = exponent - fraction_digits + digits_after_last_nonzero;

    if (scale < 0)
        return NUMBER_FRACTIONAL;

    /* Count the significant digits, then refuse anything longer than 19 digits in all. */
    int64_t significant = 0;

    for (const char *q = first_nonzero; q <= last_nonzero; q++)
        significant += *q != '.';
    if (scale > 19 || significant + scale > 19)
        return NUMBER_TOO_LARGE;

    /* At most 19 digits: below 10^19, which an unsigned 64-bit value holds. */
    uint64_t magnitude = 0;

    for (const char *q = first_nonzero; q <= last_nonzero; q++) {
        if (*q != '.')
            magnitude = magnitude * 10 + (uint64_t)(*q - '0');
    }
    for (int64_t i = 0; i < scale; i++)
        magnitude *= 10;

    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;

    if (magnitude > limit)
        return NUMBER_TOO_LARGE;
    *out = negative ? (int64_t)(0 - magnitude) : (int64_t)magnitude;
    return NUMBER_INT64;
}

int gdn_json_int(const gdn_json_t *value, int64_t *out)
{
    if (value == NULL || value->type != GDN_JSON_NUMBER)
        return GDN_EINVALID;

    int64_t result;

    if (classify_number(value->text, value->len, &result) != NUMBER_INT64)
        return GDN_EINVALID;
    *out = result;
    return 0;
}

int gdn_json_is_integral(const gdn_json_t *value)
{
    if (value == NULL || value->type != GDN_JSON_NUMBER)
        return 0;

    int64_t ignored;
    number_kind_t kind = classify_number(value->text, value->len, &ignored);

    return kind == NUMBER_INT64 || kind == NUMBER_TOO_LARGE;
}

static int gen_status(yajl_gen_status status)
{
    return status == yajl_gen_status_ok ? 0 : GDN_EINVALID;
}

static int gen_members(yajl_gen gen, const gdn_json_t *container)
{
    for (const gdn_json_t *member = container->first; member != NULL; member = member->next) {
        if (container->type == GDN_JSON_OBJECT &&
            gdn_json_gen_string(gen, member->key, member->key_len) != 0)
            return GDN_EINVALID;
        if (gdn_json_gen(gen, member) != 0)
            return GDN_EINVALID;
    }
    return 0;
}

/*
 * The recursion is as deep as the value: at most GDN_JSON_MAX_DEPTH for parsed documents, and
 * for values built by hand yajl's generator refuses to nest deeper than its own limit of 128.
 * A NULL value is written as null.
 */
int gdn_json_gen(yajl_gen gen, const gdn_json_t *value)
{
    if (value == NULL)
        return gen_status(yajl_gen_null(gen));

    switch (value->type) {
    case GDN_JSON_NULL:
        return gen_status(yajl_gen_null(gen));
    case GDN_JSON_BOOL:
        return gen_status(yajl_gen_bool(gen, value->boolean));
    case GDN_JSON_NUMBER:
        return gen_status(yajl_gen_number(gen, value->text, value->len));
    case GDN_JSON_STRING:
        return gdn_json_gen_string(gen, value->text, value->len);
    case GDN_JSON_OBJECT:
        if (yajl_gen_map_open(gen) != yajl_gen_status_ok || gen_members(gen, value) != 0)
            return GDN_EINVALID;
        return gen_status(yajl_gen_map_close(gen));
    case GDN_JSON_ARRAY:
        if (yajl_gen_array_open(gen) != yajl_gen_status_ok || gen_members(gen, value) != 0)
            return GDN_EINVALID;
        return gen_status(yajl_gen_array_close(gen));
    }
    return GDN_EINVALID;
}

yajl_gen gdn_json_gen_new(void)
{
    yajl_gen gen = yajl_gen_alloc(NULL);

    if (gen == NULL)
        return NULL;

    /* Escaping `/` is allowed but needless; leaving it keeps paths and URLs readable. */
    yajl_gen_config(gen, yajl_gen_beautify, 0);
    yajl_gen_config(gen, yajl_gen_validate_utf8, 1);
    yajl_gen_config(gen, yajl_gen_escape_solidus, 0);
    return gen;
}

int gdn_json_gen_string(yajl_gen gen, const char *text, size_t len)
{
    return gen_status(yajl_gen_string(gen, (const unsigned char *)text, len));
}

int gdn_json_gen_cstr(yajl_gen gen, const char *text)
{
    return gdn_json_gen_string(gen, text, strlen(text));
}

int gdn_json_gen_time(yajl_gen gen, int64_t us)
{
    char text[GDN_CLOCK_ISO_LEN + 1];

    gdn_clock_format(us, text);
    return gdn_json_gen_string(gen, text, GDN_CLOCK_ISO_LEN);
}

char *gdn_json_gen_take(yajl_gen gen, size_t *len)
{
    const unsigned char *buf = NULL;
    size_t buf_len = 0;

    if (yajl_gen_get_buf(gen, &buf, &buf_len) != yajl_gen_status_ok)
        buf_len = 0;

    char *copy = malloc(buf_len + 1);

    if (copy == NULL)
        return NULL;
    if (buf_len > 0)
        memcpy(copy, buf, buf_len);
    copy[buf_len] = '\0';
    if (len != NULL)
        *len = buf_len;
    return copy;
}

/* The length of the UTF-8 sequence that starts with `lead`, or 0 for a byte no sequence
 * starts with (a continuation byte, an overlong two-byte lead, or past U+10FFFF). */
static int sequence_length(unsigned char lead)
{
    if (lead < 0x80)
        return 1;
    if (lead >= 0xc2 && lead <= 0xdf)
        return 2;
    if (lead >= 0xe0 && lead <= 0xef)
        return 3;
    if (lead >= 0xf0 && lead <= 0xf4)
        return 4;
    return 0;
}

int gdn_json_utf8_valid(const char *text, size_t len)
{
    const unsigned char *at = (const unsigned char *)text;
    const unsigned char *end = at + len;

    while (at < end) {
        int n = sequence_length(at[0]);

        if (n == 0 || end - at < n)
            return 0;
        for (int i = 1; i < n; i++)
            if ((at[i] & 0xc0) != 0x80)
                return 0;
        /* The second byte rules out overlong three- and four-byte forms, surrogates and code
         * points past U+10FFFF. */
        if ((at[0] == 0xe0 && at[1] < 0xa0) || (at[0] == 0xed && at[1] > 0x9f) ||
            (at[0] == 0xf0 && at[1] < 0x90) || (at[0] == 0xf4 && at[1] > 0x8f))
            return 0;
        at += n;
    }
    return 1;
}
