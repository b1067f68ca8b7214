/*
 * What the server reads from a request besides its body, as pure functions over bytes: query
 * parameters, the parameters of GET /tasks and GET /poll/next, the task id in a /tasks/ path,
 * and the Idempotency-Key header.
 *
 * The handlers call these with what h2o parsed; the fuzz target calls them with anything. No
 * h2o, no journal, no allocation that outlives the call but what the caller frees. Safe on any
 * thread.
 */
#ifndef GDN_REQUEST_H
#define GDN_REQUEST_H

#include <stddef.h>

#include "gdn/queue.h"
#include "gdn/task.h"

/** How many tasks GET /tasks lists without a limit. */
#define GDN_REQUEST_LIST_LIMIT 50
/** The most tasks one page of GET /tasks may ask for. */
#define GDN_REQUEST_LIST_LIMIT_MAX 500
/** Longest wait a poll may ask for, in seconds. */
#define GDN_REQUEST_WAIT_MAX_S 30

/**
 * Finds a parameter in a query string (the text after `?`, without it) and returns its
 * percent-decoded value (`+` is a space), malloc'd and NUL-terminated. The value may itself hold
 * NUL bytes (`%00`); its length is in *len. A parameter given twice takes its last value.
 *
 * @param query the query string, or NULL when the request has none.
 * @param oom set to 1 when NULL means that memory ran out, else to 0.
 * @return the value, or NULL if the parameter is absent (or memory ran out).
 */
char *gdn_request_query_param(const char *query, size_t query_len, const char *name, size_t *len,
                              int *oom);

/** The parameters of GET /tasks, decoded and owned; NULL where absent. */
typedef struct gdn_list_params {
    char *status;
    char *role;
    char *project_id;
    char *limit;
    char *cursor;
    size_t project_id_len;
    size_t cursor_len;
    int given; /**< 1 when any of them is present: the answer is then a page with a cursor */
} gdn_list_params_t;

/**
 * Reads the parameters of GET /tasks from a query string (NULL for none).
 * @return 0, or -ENOMEM; either way free `params` with gdn_request_list_free.
 */
int gdn_request_list_read(const char *query, size_t query_len, gdn_list_params_t *params);

/**
 * Turns read parameters into a listing that points into `params`, recording each bad one in
 * `problems` (located at "query").
 * @return 0, or GDN_EINVALID with the problems recorded.
 */
int gdn_request_list_check(const gdn_list_params_t *params, gdn_queue_listing_t *listing,
                           gdn_problems_t *problems);

/** Frees what gdn_request_list_read stored. */
void gdn_request_list_free(gdn_list_params_t *params);

/** The parameters of GET /poll/next, decoded and owned. */
typedef struct gdn_poll_params {
    char *worker_id; /**< NULL when absent */
    size_t worker_id_len;
    char *roles_text;                       /**< the decoded roles, split in place */
    const char *roles[GDN_QUEUE_MAX_ROLES]; /**< point into roles_text */
    size_t role_lens[GDN_QUEUE_MAX_ROLES];  /**< their lengths */
    int role_count;                         /**< 0: any role */
    int wait_s;                             /**< 0 to GDN_REQUEST_WAIT_MAX_S */
} gdn_poll_params_t;

/**
 * Reads and validates the parameters of GET /poll/next from a query string (NULL for none):
 * `worker_id` required (at most GDN_WORKER_ID_MAX bytes), `roles` comma-separated (spaces
 * trimmed, empty items skipped, at most GDN_QUEUE_MAX_ROLES), `wait` whole seconds.
 * @return 0; GDN_EINVALID with the problems recorded; -ENOMEM. Either way free `params` with
 *         gdn_request_poll_free.
 */
int gdn_request_poll_read(const char *query, size_t query_len, gdn_poll_params_t *params,
                          gdn_problems_t *problems);

/** Frees what gdn_request_poll_read stored. */
void gdn_request_poll_free(gdn_poll_params_t *params);

/** What a path under /tasks/ names. */
typedef enum gdn_task_path {
    GDN_TASK_PATH_NONE,   /**< nothing: 404 */
    GDN_TASK_PATH_TASK,   /**< `/tasks/{id}`: the id is 1 byte or more, without `/` */
    GDN_TASK_PATH_CANCEL, /**< `/tasks/{id}/cancel`: the id may be empty */
} gdn_task_path_t;

/**
 * Splits a (normalised) request path under `/tasks/`. The id is not validated: an id that
 * names no task is the handler's "not found".
 * @param id set to the id's first byte inside `path`, with its length in *id_len, unless NONE.
 */
gdn_task_path_t gdn_request_task_path(const char *path, size_t len, const char **id,
                                      size_t *id_len);

/**
 * Checks an Idempotency-Key header value: 1 to GDN_QUEUE_IDEMPOTENCY_KEY_MAX bytes.
 * @return 0, or GDN_EINVALID with the problem recorded (located at "header").
 */
int gdn_request_idempotency_key(const char *value, size_t len, gdn_problems_t *problems);

#endif
