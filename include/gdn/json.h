/*
 * A small JSON document model on top of yajl, with the limits a server needs: bounded nesting,
 * strict UTF-8, no comments, no trailing data, and strings that may hold NUL bytes.
 *
 * A document owns all its nodes in one arena: free the document, never a node. Documents are
 * not shared between threads while in use, but may be handed from one thread to another.
 */
#ifndef GDN_JSON_H
#define GDN_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>

/** Deepest nesting of arrays and objects a document may have. */
#define GDN_JSON_MAX_DEPTH 64

typedef enum gdn_json_type {
    GDN_JSON_NULL,
    GDN_JSON_BOOL,
    GDN_JSON_NUMBER,
    GDN_JSON_STRING,
    GDN_JSON_OBJECT,
    GDN_JSON_ARRAY,
} gdn_json_type_t;

typedef struct gdn_json gdn_json_t;

/** One value. Members of an object or array are chained through `next`. */
struct gdn_json {
    gdn_json_type_t type;
    gdn_json_t *next; /**< the following member of the parent, or NULL */
    const char *key;  /**< the member's name when the parent is an object, else NULL */
    size_t key_len;
    int boolean;       /**< GDN_JSON_BOOL: 0 or 1 */
    const char *text;  /**< GDN_JSON_STRING: the decoded text; GDN_JSON_NUMBER: as written */
    size_t len;        /**< length of `text` in bytes (strings may hold NUL bytes) */
    gdn_json_t *first; /**< GDN_JSON_OBJECT and GDN_JSON_ARRAY: the first member */
    gdn_json_t *last;
    size_t count; /**< number of members */
};

typedef struct gdn_json_doc gdn_json_doc_t;

/** Why a parse failed. */
typedef struct gdn_json_error {
    size_t offset;    /**< byte offset in the input where parsing stopped */
    char message[96]; /**< a short reason, e.g. "invalid UTF-8", "nesting too deep" */
} gdn_json_error_t;

/**
 * Parses one JSON value that must fill `text` exactly (white space aside).
 *
 * @param err receives the reason and offset when parsing fails; may be NULL.
 * @return 0 and *doc set (free with gdn_json_free); GDN_EINVALID for malformed input, invalid
 *         UTF-8 or nesting deeper than GDN_JSON_MAX_DEPTH; -ENOMEM.
 */
int gdn_json_parse(const char *text, size_t len, gdn_json_doc_t **doc, gdn_json_error_t *err);

/** The document's root value. */
gdn_json_t *gdn_json_root(const gdn_json_doc_t *doc);

/** Frees a document and all its nodes. NULL-safe. */
void gdn_json_free(gdn_json_doc_t *doc);

/**
 * Looks up a member of an object by name. With duplicate names the last one wins, as in most
 * JSON readers.
 * @return the value, or NULL if `object` is not an object or has no such member.
 */
const gdn_json_t *gdn_json_get(const gdn_json_t *object, const char *name);

/**
 * Reads a number as a 64-bit integer. Integral values written with a fraction or exponent
 * (`5.0`, `1e3`) are accepted, as lenient JSON schema validators do.
 * @return 0 and *out set; GDN_EINVALID if not a number, not integral or out of range.
 */
int gdn_json_int(const gdn_json_t *value, int64_t *out);

/**
 * Tells whether a value is a number with no fractional part, whatever its size: true for `5`,
 * `5.0`, `1e3` and `1e400`, false for `1.5`. With gdn_json_int it tells a fraction from a number
 * too large for 64 bits.
 * @return 1 or 0; 0 for anything that is not a number.
 */
int gdn_json_is_integral(const gdn_json_t *value);

/**
 * Writes a value (and everything below it) to a generator.
 * @return 0, or GDN_EINVALID if the generator refused it.
 */
int gdn_json_gen(yajl_gen gen, const gdn_json_t *value);

/**
 * Creates a generator configured as the server writes JSON: compact, `/` not escaped, and
 * strings validated as UTF-8. Free with yajl_gen_free.
 * @return the generator, or NULL on allocation failure.
 */
yajl_gen gdn_json_gen_new(void);

/** Writes a string of `len` bytes. @return 0 or GDN_EINVALID. */
int gdn_json_gen_string(yajl_gen gen, const char *text, size_t len);

/**
 * Tells whether `len` bytes are well-formed UTF-8, as the generator requires of every string:
 * no overlong forms, no surrogates, nothing above U+10FFFF. Any thread.
 * @return 1 or 0.
 */
int gdn_json_utf8_valid(const char *text, size_t len);

/** Writes a NUL-terminated string. @return 0 or GDN_EINVALID. */
int gdn_json_gen_cstr(yajl_gen gen, const char *text);

/** Writes a timestamp in microseconds as an ISO-8601 string. @return 0 or GDN_EINVALID. */
int gdn_json_gen_time(yajl_gen gen, int64_t us);

/**
 * Copies what the generator holds into a new NUL-terminated malloc'd buffer.
 * @return the copy (length in *len), or NULL on allocation failure.
 */
char *gdn_json_gen_take(yajl_gen gen, size_t *len);

#endif
