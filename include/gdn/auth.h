/*
 * Bearer tokens and what each may do.
 *
 * The tokens file (`auth_tokens_file`) has one token per line, `#` starting a comment:
 *
 *     # name       scope     token                              roles (worker only)
 *     frontend     producer  0b6c8f3e2d7a4e19b5c1f08a3d6e9b27
 *     pi-kitchen   worker    5e2a9c7d1b4f4a08a6e3c9d2f1b7e480   archivist,coder
 *     ops          admin     c4d1e8a7b2f94c36a0e5d7b9f3a2c618
 *
 * The name identifies the token in logs and metrics; the token itself is never logged and is
 * kept in memory only as its SHA-256 digest. Scopes:
 *
 *   admin     everything;
 *   producer  create, read, list and cancel tasks, and read /stats;
 *   worker    the /poll endpoints; with roles, it claims tasks of those roles only;
 *   metrics   GET /metrics only, for a scraper.
 *
 * A loaded table is immutable and may be read from any thread.
 */
#ifndef GDN_AUTH_H
#define GDN_AUTH_H

#include <stddef.h>

/** Shortest and longest token accepted, in bytes. */
#define GDN_AUTH_TOKEN_MIN 16
#define GDN_AUTH_TOKEN_MAX 256

/** What a request asks to do; each route maps to one action. */
typedef enum gdn_auth_action {
    GDN_AUTH_READ,    /**< read or list tasks */
    GDN_AUTH_CREATE,  /**< create a task */
    GDN_AUTH_CANCEL,  /**< cancel a task */
    GDN_AUTH_STATS,   /**< read /stats */
    GDN_AUTH_POLL,    /**< register, heartbeat, claim, complete, list workers */
    GDN_AUTH_METRICS, /**< read /metrics */
} gdn_auth_action_t;

typedef struct gdn_auth gdn_auth_t;
typedef struct gdn_auth_token gdn_auth_token_t;

/**
 * Parses the text of a tokens file.
 *
 * @param err on failure, a message naming the line; never quotes a token.
 * @return 0 and *out set (free with gdn_auth_free); GDN_ECONFIG for a bad line, a duplicate
 *         name or token, or a file that lists no token; -ENOMEM.
 */
int gdn_auth_parse(const char *text, size_t len, gdn_auth_t **out, char *err, size_t err_size);

/**
 * Reads and parses a tokens file. The file must be a regular file of at most 1 MiB.
 *
 * @param world_readable set to 1 when anyone on the machine may read the file, else 0.
 * @return as gdn_auth_parse, or GDN_ECONFIG when the file cannot be read (err says why).
 */
int gdn_auth_load(const char *path, gdn_auth_t **out, int *world_readable, char *err,
                  size_t err_size);

/** Frees a table. NULL-safe. */
void gdn_auth_free(gdn_auth_t *auth);

/** Returns the number of tokens in the table. */
size_t gdn_auth_count(const gdn_auth_t *auth);

/**
 * Finds the token an `Authorization` header value presents (`Bearer TOKEN`, the scheme in any
 * case). Every known token is compared, each in constant time, so the time taken tells nothing
 * about which bytes matched.
 *
 * @return the token, or NULL when the header is not a bearer header or the token is unknown.
 */
const gdn_auth_token_t *gdn_auth_find(const gdn_auth_t *auth, const char *header, size_t len);

/** Returns 1 if the token's scope allows `action`, else 0. */
int gdn_auth_permits(const gdn_auth_token_t *token, gdn_auth_action_t action);

/** Returns the token's name, for logs. */
const char *gdn_auth_name(const gdn_auth_token_t *token);

/**
 * Applies a worker token's roles to a poll's role list. A token without roles leaves the list
 * as it is. With roles, an empty list becomes the token's roles (pointers into the table, which
 * outlives any request), and a list naming a role outside them is refused.
 *
 * @param roles, lens, count the poll's roles; `max` is the capacity of `roles` and `lens`.
 * @return 0, or GDN_EFORBIDDEN for a role outside the token's.
 */
int gdn_auth_limit_roles(const gdn_auth_token_t *token, const char **roles, size_t *lens,
                         int *count, int max);

#endif
