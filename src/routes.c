/*
 * Routing, and the answers to reads.
 *
 * Reads are answered at once from a short read transaction on the loop thread; writes go to
 * writes.c. Paths and methods follow the existing service: an unknown path is 404, a known
 * path with another method 405, and a CORS preflight is answered for any path.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdn/clock.h"
#include "gdn/error.h"
#include "gdn/http.h"
#include "gdn/queue.h"
#include "gdn/request.h"
#include "gdn/respond.h"
#include "gdn/s3.h"
#include "gdn/writes.h"

static int handle_get_task(h2o_req_t *req, const char *id, size_t id_len)
{
    char key[GDN_JOURNAL_KEY_MAX + 1];
    gdn_loop_t *loop = gdn_loop_of(req);
    gdn_journal_txn_t *txn;

    if (id_len == 0 || id_len > GDN_JOURNAL_ID_LEN)
        return gdn_respond_task_not_found(req);

    size_t key_len = gdn_record_key(key, "task", id, id_len);
    int rc = gdn_journal_read_begin(loop->reader, &txn);

    if (rc != 0)
        return gdn_respond_unavailable(req, rc);

    gdn_journal_record_t record;

    rc = gdn_journal_get(txn, key, key_len, &record);
    if (rc == 0)
        gdn_respond_ok(req, record.json, record.json_len);
    gdn_journal_read_end(loop->reader);
    if (rc == GDN_ENOTFOUND)
        return gdn_respond_task_not_found(req);
    return rc == 0 ? 0 : gdn_respond_unavailable(req, rc);
}

static int handle_list_workers(h2o_req_t *req)
{
    gdn_loop_t *loop = gdn_loop_of(req);
    gdn_buf_t out = GDN_BUF_INIT;
    gdn_journal_txn_t *txn;
    int rc = gdn_journal_read_begin(loop->reader, &txn);

    if (rc != 0)
        return gdn_respond_unavailable(req, rc);
    gdn_buf_append_str(&out, "{\"workers\":");
    rc = gdn_queue_list_workers(txn, &out, gdn_clock_now_us());
    gdn_journal_read_end(loop->reader);
    gdn_buf_append_str(&out, "}");

    size_t len;
    char *body = gdn_buf_take(&out, &len);

    if (rc != 0) {
        free(body);
        return gdn_respond_unavailable(req, rc);
    }
    return gdn_respond_taken(req, body, len);
}

/*
 * GET /tasks: without parameters, up to 50 claimable tasks in claim order, as `{"tasks":[...]}`.
 * With any of status, role, project_id, limit or cursor, a page of the listing and the cursor
 * of the next one.
 */
static int handle_list_tasks(h2o_req_t *req)
{
    gdn_loop_t *loop = gdn_loop_of(req);
    gdn_list_params_t params;
    gdn_queue_listing_t listing;
    gdn_problems_t problems;
    size_t query_len;
    const char *query = gdn_query_string(req, &query_len);
    int rc = gdn_request_list_read(query, query_len, &params);

    if (rc == 0)
        rc = gdn_problems_init(&problems);
    if (rc != 0) {
        gdn_request_list_free(&params);
        return gdn_respond_unavailable(req, rc);
    }
    rc = gdn_request_list_check(&params, &listing, &problems);

    gdn_buf_t out = GDN_BUF_INIT;
    gdn_journal_txn_t *txn;

    if (rc == 0)
        rc = gdn_journal_read_begin(loop->reader, &txn);
    if (rc == 0) {
        if (params.given) {
            gdn_buf_append_str(&out, "{");
            rc = gdn_queue_list(txn, &listing, &out);
        } else {
            gdn_buf_append_str(&out, "{\"tasks\":");
            rc = gdn_queue_list_pending(txn, &out, GDN_REQUEST_LIST_LIMIT);
        }
        gdn_buf_append_str(&out, "}");
        gdn_journal_read_end(loop->reader);
    }
    if (rc == GDN_EINVALID && listing.cursor != NULL && problems.count == 0)
        gdn_problems_add(&problems, "query", "cursor", "value_error",
                         "Value error, not a cursor of this listing");
    if (rc == GDN_EINVALID)
        gdn_respond_problems(req, &problems);
    else if (rc != 0)
        gdn_respond_unavailable(req, rc);
    gdn_problems_free(&problems);
    gdn_request_list_free(&params);

    size_t len;
    char *body = gdn_buf_take(&out, &len);

    if (rc != 0) {
        free(body);
        return 0;
    }
    return gdn_respond_taken(req, body, len);
}

/* The bucket copy's state for /health: "disabled" without a bucket, "degraded" while the
 * flusher's requests fail, else "ok". */
static const char *bucket_state(gdn_loop_t *loop, gdn_flusher_stats_t *stats)
{
    memset(stats, 0, sizeof(*stats));
    if (loop->flusher == NULL)
        return "disabled";
    gdn_flusher_stats(loop->flusher, stats);
    return stats->degraded ? "degraded" : "ok";
}

/* Reads the number of records waiting for upload. */
static int64_t read_backlog(gdn_loop_t *loop)
{
    gdn_journal_txn_t *txn;
    int64_t backlog = -1;

    if (gdn_journal_read_begin(loop->reader, &txn) == 0) {
        backlog = gdn_journal_dirty_count(txn);
        gdn_journal_read_end(loop->reader);
    }
    return backlog;
}

static int handle_health(h2o_req_t *req)
{
    gdn_loop_t *loop = gdn_loop_of(req);
    gdn_flusher_stats_t flusher;
    char body[256];
    int len = snprintf(body, sizeof(body),
                       "{\"status\":\"ok\",\"service\":\"garden-orchestrator\",\"version\":\"%s\","
                       "\"storage\":\"minio\",\"s3\":\"%s\",\"backlog\":%lld}",
                       GDN_VERSION, bucket_state(loop, &flusher), (long long)read_backlog(loop));

    gdn_respond_ok(req, body, (size_t)len);
    return 0;
}

static int handle_stats(h2o_req_t *req)
{
    gdn_loop_t *loop = gdn_loop_of(req);
    gdn_queue_stats_t stats;
    gdn_journal_txn_t *txn;
    int rc = gdn_journal_read_begin(loop->reader, &txn);

    if (rc == 0) {
        rc = gdn_queue_stats(txn, gdn_clock_now_us(), &stats);
        gdn_journal_read_end(loop->reader);
    }
    if (rc != 0)
        return gdn_respond_unavailable(req, rc);

    gdn_flusher_stats_t flusher;
    gdn_s3_counters_t s3;
    char last_flush[GDN_CLOCK_ISO_LEN + 3] = "null";
    uint64_t s3_errors = 0;

    gdn_writer_stats_t writer;

    bucket_state(loop, &flusher);
    gdn_s3_counters(&s3);
    gdn_writer_stats(loop->writer, &writer);
    for (int k = 0; k < GDN_S3_KIND_COUNT; k++)
        s3_errors += s3.failures[k];
    if (flusher.last_flush_us > 0) {
        last_flush[0] = '"';
        gdn_clock_format(flusher.last_flush_us, last_flush + 1);
        memcpy(last_flush + 1 + GDN_CLOCK_ISO_LEN, "\"", 2);
    }

    char body[768];
    int len = snprintf(
        body, sizeof(body),
        "{\"pending_tasks\":%lld,\"active_workers\":%lld,\"version\":\"%s\","
        "\"storage\":\"minio\",\"claude_mem_enabled\":%s,\"processing_tasks\":%lld,"
        "\"completed_tasks\":%lld,\"failed_tasks\":%lld,\"cancelled_tasks\":%lld,"
        "\"registered_workers\":%lld,"
        "\"dirty_records\":%lld,\"s3_puts\":%llu,\"s3_deletes\":%llu,\"s3_gets\":%llu,"
        "\"s3_errors\":%llu,\"last_flush_at\":%s,\"journal_commits\":%llu,"
        "\"journal_commit_ms_avg\":%.3f,\"journal_batch_max\":%llu}",
        (long long)stats.by_status[GDN_TASK_PENDING], (long long)stats.active_workers, GDN_VERSION,
        loop->config->claude_mem_enabled ? "true" : "false",
        (long long)stats.by_status[GDN_TASK_PROCESSING],
        (long long)stats.by_status[GDN_TASK_COMPLETED], (long long)stats.by_status[GDN_TASK_FAILED],
        (long long)stats.by_status[GDN_TASK_CANCELLED], (long long)stats.workers,
        (long long)stats.dirty_records, (unsigned long long)flusher.puts,
        (unsigned long long)flusher.deletes, (unsigned long long)s3.successes[GDN_S3_GET],
        (unsigned long long)s3_errors, last_flush, (unsigned long long)writer.batches,
        writer.batches ? (double)writer.commit_us_total / 1000.0 / (double)writer.batches : 0.0,
        (unsigned long long)writer.max_batch);

    gdn_respond_ok(req, body, (size_t)len);
    return 0;
}

/* Answers a CORS preflight: the requested method and headers are allowed for 10 minutes. */
static int handle_preflight(h2o_req_t *req)
{
    ssize_t origin = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);
    const gdn_config_t *config = gdn_loop_of(req)->config;

    if (origin < 0 || !gdn_config_origin_allowed(config, req->headers.entries[origin].value.base,
                                                 req->headers.entries[origin].value.len)) {
        gdn_respond_text(req, 400, "Bad Request", "Disallowed CORS origin");
        return 0;
    }

    static const char *const copied[][2] = {
        {"access-control-request-method", "access-control-allow-methods"},
        {"access-control-request-headers", "access-control-allow-headers"},
    };

    for (size_t i = 0; i < 2; i++) {
        ssize_t at = h2o_find_header_by_str(&req->headers, copied[i][0], strlen(copied[i][0]), -1);

        if (at >= 0)
            h2o_add_header_by_str(&req->pool, &req->res.headers, copied[i][1], strlen(copied[i][1]),
                                  0, NULL, req->headers.entries[at].value.base,
                                  req->headers.entries[at].value.len);
    }
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-max-age"), 0,
                          NULL, H2O_STRLIT("600"));
    gdn_respond_text(req, 200, "OK", "OK");
    return 0;
}

static int is_method(h2o_req_t *req, const char *method)
{
    return h2o_memis(req->method.base, req->method.len, method, strlen(method));
}

static int method_not_allowed(h2o_req_t *req, const char *allow)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
    gdn_respond_detail(req, 405, "Method Not Allowed", "Method Not Allowed");
    return 0;
}

/* A body larger than the configured limit is refused before it is parsed. */
static int body_too_large(h2o_req_t *req)
{
    if (req->entity.base == NULL || req->entity.len <= gdn_loop_of(req)->config->max_body_bytes)
        return 0;
    gdn_respond_detail(req, 413, "Payload Too Large", "Request body too large");
    return 1;
}

typedef struct route {
    const char *path;
    const char *method;
    gdn_route_t id;
    int open;                 /* answered without a token */
    gdn_auth_action_t action; /* what a token needs to call it */
    int (*handle)(h2o_req_t *req);
} route_t;

static const route_t routes[] = {
    {"/health", "GET", GDN_ROUTE_HEALTH, 1, GDN_AUTH_READ, handle_health},
    {"/stats", "GET", GDN_ROUTE_STATS, 0, GDN_AUTH_STATS, handle_stats},
    {"/metrics", "GET", GDN_ROUTE_METRICS, 0, GDN_AUTH_METRICS, gdn_observe_metrics},
    {"/tasks", "GET", GDN_ROUTE_TASKS_LIST, 0, GDN_AUTH_READ, handle_list_tasks},
    {"/tasks", "POST", GDN_ROUTE_TASKS_CREATE, 0, GDN_AUTH_CREATE, gdn_writes_create},
    {"/poll/register", "POST", GDN_ROUTE_POLL_REGISTER, 0, GDN_AUTH_POLL, gdn_writes_register},
    {"/poll/heartbeat", "POST", GDN_ROUTE_POLL_HEARTBEAT, 0, GDN_AUTH_POLL, gdn_writes_heartbeat},
    {"/poll/next", "GET", GDN_ROUTE_POLL_NEXT, 0, GDN_AUTH_POLL, NULL},
    {"/poll/complete", "POST", GDN_ROUTE_POLL_COMPLETE, 0, GDN_AUTH_POLL, gdn_writes_complete},
    {"/poll/workers", "GET", GDN_ROUTE_POLL_WORKERS, 0, GDN_AUTH_POLL, handle_list_workers},
};

#define ROUTE_COUNT (sizeof(routes) / sizeof(routes[0]))

static const char *const route_labels[GDN_ROUTE_COUNT] = {
    [GDN_ROUTE_HEALTH] = "GET /health",
    [GDN_ROUTE_STATS] = "GET /stats",
    [GDN_ROUTE_METRICS] = "GET /metrics",
    [GDN_ROUTE_TASKS_LIST] = "GET /tasks",
    [GDN_ROUTE_TASKS_CREATE] = "POST /tasks",
    [GDN_ROUTE_TASK_GET] = "GET /tasks/{id}",
    [GDN_ROUTE_TASK_CANCEL] = "POST /tasks/{id}/cancel",
    [GDN_ROUTE_POLL_REGISTER] = "POST /poll/register",
    [GDN_ROUTE_POLL_HEARTBEAT] = "POST /poll/heartbeat",
    [GDN_ROUTE_POLL_NEXT] = "GET /poll/next",
    [GDN_ROUTE_POLL_COMPLETE] = "POST /poll/complete",
    [GDN_ROUTE_POLL_WORKERS] = "GET /poll/workers",
    [GDN_ROUTE_PREFLIGHT] = "OPTIONS",
    [GDN_ROUTE_OTHER] = "other",
};

const char *gdn_route_label(gdn_route_t route)
{
    return route >= 0 && route < GDN_ROUTE_COUNT ? route_labels[route] : "other";
}

static int is_preflight(h2o_req_t *req)
{
    return is_method(req, "OPTIONS") &&
           h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1) >= 0 &&
           h2o_find_header_by_str(&req->headers, H2O_STRLIT("access-control-request-method"), -1) >=
               0;
}

gdn_route_t gdn_route_of(h2o_req_t *req)
{
    h2o_iovec_t path = req->path_normalized;
    const char *id;
    size_t id_len;

    if (is_preflight(req))
        return GDN_ROUTE_PREFLIGHT;
    for (size_t i = 0; i < ROUTE_COUNT; i++)
        if (h2o_memis(path.base, path.len, routes[i].path, strlen(routes[i].path)) &&
            is_method(req, routes[i].method))
            return routes[i].id;
    switch (gdn_request_task_path(path.base, path.len, &id, &id_len)) {
    case GDN_TASK_PATH_TASK:
        return is_method(req, "GET") ? GDN_ROUTE_TASK_GET : GDN_ROUTE_OTHER;
    case GDN_TASK_PATH_CANCEL:
        return is_method(req, "POST") ? GDN_ROUTE_TASK_CANCEL : GDN_ROUTE_OTHER;
    case GDN_TASK_PATH_NONE:
        break;
    }
    return GDN_ROUTE_OTHER;
}

/*
 * Checks the request's bearer token when tokens are configured. Answers 401 (no token, or one
 * that is not known) or 403 (a known token outside its scope) and returns 0; returns 1 when
 * the request may go on, with *token set to the caller's token (NULL when none is needed).
 */
static int authorized(h2o_req_t *req, int open, gdn_auth_action_t action,
                      const gdn_auth_token_t **token)
{
    const gdn_auth_t *auth = gdn_loop_of(req)->auth;

    *token = NULL;
    if (auth == NULL || open)
        return 1;

    ssize_t at = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);

    if (at >= 0)
        *token = gdn_auth_find(auth, req->headers.entries[at].value.base,
                               req->headers.entries[at].value.len);
    if (*token == NULL) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                       H2O_STRLIT("Bearer realm=\"garden-orchestrator\""));
        gdn_respond_detail(req, 401, "Unauthorized", "Not authenticated");
        return 0;
    }
    if (!gdn_auth_permits(*token, action)) {
        gdn_respond_detail(req, 403, "Forbidden", "Not allowed for this token");
        return 0;
    }
    return 1;
}

static int route_exact(h2o_req_t *req, h2o_iovec_t path)
{
    const char *allow = NULL;

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (!h2o_memis(path.base, path.len, routes[i].path, strlen(routes[i].path)))
            continue;
        if (!is_method(req, routes[i].method))
            continue;

        const gdn_auth_token_t *token;

        if (!authorized(req, routes[i].open, routes[i].action, &token) || body_too_large(req))
            return 0;
        return routes[i].handle != NULL ? routes[i].handle(req) : gdn_writes_poll_as(req, token);
    }
    for (size_t i = 0; i < ROUTE_COUNT; i++)
        if (h2o_memis(path.base, path.len, routes[i].path, strlen(routes[i].path)))
            allow = allow == NULL ? routes[i].method : "GET, POST";
    if (allow == NULL)
        return -1;
    return method_not_allowed(req, allow);
}

/* The routes under /tasks/: GET /tasks/{id} and POST /tasks/{id}/cancel. */
static int route_task(h2o_req_t *req, h2o_iovec_t path)
{
    const char *id = NULL;
    size_t id_len = 0;

    const gdn_auth_token_t *token;

    switch (gdn_request_task_path(path.base, path.len, &id, &id_len)) {
    case GDN_TASK_PATH_TASK:
        if (!is_method(req, "GET"))
            return method_not_allowed(req, "GET");
        if (!authorized(req, 0, GDN_AUTH_READ, &token))
            return 0;
        return handle_get_task(req, id, id_len);
    case GDN_TASK_PATH_CANCEL:
        if (!is_method(req, "POST"))
            return method_not_allowed(req, "POST");
        if (!authorized(req, 0, GDN_AUTH_CANCEL, &token))
            return 0;
        return gdn_writes_cancel(req, id, id_len);
    case GDN_TASK_PATH_NONE:
        break;
    }
    return gdn_respond_not_found(req);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    gdn_observe_request_start(req);

    h2o_iovec_t path = req->path_normalized;

    /* Browsers send no credentials with a preflight, so it is answered without a token. */
    if (is_preflight(req))
        return handle_preflight(req);

    if (route_exact(req, path) == 0)
        return 0;

    return route_task(req, path);
}

int gdn_routes_register(h2o_hostconf_t *hostconf)
{
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));

    if (handler == NULL)
        return -ENOMEM;
    handler->on_req = on_req;
    return gdn_observe_register(pathconf);
}
