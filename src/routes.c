/*
 * The API's request handlers.
 *
 * Reads are answered at once from a short read transaction on the loop thread. Writes are
 * validated here, handed to the journal writer as a request_op, and answered when the writer
 * reports them committed: an acknowledged write is on disk.
 *
 * A request can go away while its write is with the writer (an HTTP/2 stream reset, say). The
 * operation is owned by the loop, not by the request: a small link allocated on the request's
 * pool tells the operation when the request is freed, and the answer is then dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gdn/clock.h"
#include "gdn/error.h"
#include "gdn/http.h"
#include "gdn/log.h"
#include "gdn/queue.h"
#include "gdn/s3.h"

#define JSON_TYPE "application/json"

/* How many pending tasks GET /tasks lists. */
#define LIST_LIMIT 50

typedef enum op_kind {
    OP_CREATE,
    OP_CLAIM,
    OP_COMPLETE,
    OP_REGISTER,
    OP_HEARTBEAT,
} op_kind_t;

typedef struct op_link op_link_t;

/* One write on its way through the journal writer. */
typedef struct request_op {
    gdn_write_op_t write;            /* first: the writer's handle */
    h2o_multithread_message_t reply; /* carries the op back to its loop */
    gdn_loop_t *loop;
    h2o_req_t *req; /* NULL once the request is gone */
    op_link_t *link;
    op_kind_t kind;
    int64_t now_us;
    gdn_json_doc_t *doc; /* the parsed body the inputs point into */
    /* inputs */
    gdn_task_t task;
    char *task_json;
    size_t task_json_len;
    gdn_task_complete_t complete;
    gdn_worker_t worker;
    char *worker_id; /* /poll/next: decoded from the query */
    size_t worker_id_len;
    char *roles_text; /* /poll/next: the decoded roles, split in place */
    const char *roles[GDN_QUEUE_MAX_ROLES];
    size_t role_lens[GDN_QUEUE_MAX_ROLES];
    int role_count;
    int worker_ttl_s;
    /* outputs */
    int outcome;   /* 0, or a logical result such as GDN_ENOTFOUND */
    int status;    /* the writer's verdict: 0 when durable */
    char *claimed; /* OP_CLAIM: the claimed task's JSON */
    size_t claimed_len;
} request_op_t;

struct op_link {
    request_op_t *op;
};

/* Adds the CORS headers of an allowed origin to an answer. */
static void add_cors(h2o_req_t *req)
{
    ssize_t at = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);

    if (at < 0)
        return;

    h2o_iovec_t origin = req->headers.entries[at].value;
    const gdn_config_t *config = gdn_loop_of(req)->config;

    if (!gdn_config_origin_allowed(config, origin.base, origin.len))
        return;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCESS_CONTROL_ALLOW_ORIGIN, NULL,
                   origin.base, origin.len);
    h2o_add_header_by_str(&req->pool, &req->res.headers,
                          H2O_STRLIT("access-control-allow-credentials"), 0, NULL,
                          H2O_STRLIT("true"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL, H2O_STRLIT("Origin"));
}

static void respond(h2o_req_t *req, int status, const char *reason, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT(JSON_TYPE));
    add_cors(req);
    h2o_send_inline(req, body, len);
}

static void respond_ok(h2o_req_t *req, const char *body, size_t len)
{
    respond(req, 200, "OK", body, len);
}

static void respond_detail(h2o_req_t *req, int status, const char *reason, const char *detail)
{
    char body[256];
    int len = snprintf(body, sizeof(body), "{\"detail\":\"%s\"}", detail);

    respond(req, status, reason, body, (size_t)len);
}

static int respond_not_found(h2o_req_t *req)
{
    respond_detail(req, 404, "Not Found", "Not Found");
    return 0;
}

static int respond_task_not_found(h2o_req_t *req)
{
    respond_detail(req, 404, "Not Found", "Task not found");
    return 0;
}

/* A failure of the journal or of memory: nothing was stored, the client may retry. */
static int respond_unavailable(h2o_req_t *req, int rc)
{
    const char *detail = rc == GDN_EJOURNAL_FULL ? "Storage is full: the write was not stored"
                                                 : "Storage unavailable: the write was not stored";

    respond_detail(req, 503, "Service Unavailable", detail);
    return 0;
}

static int respond_problems(h2o_req_t *req, gdn_problems_t *problems)
{
    size_t len;
    char *body = gdn_problems_render(problems, &len);

    if (body == NULL)
        return respond_unavailable(req, -ENOMEM);
    respond(req, 422, "Unprocessable Entity", body, len);
    free(body);
    return 0;
}

/* Answers with a malloc'd body and frees it. */
static int respond_taken(h2o_req_t *req, char *body, size_t len)
{
    if (body == NULL)
        return respond_unavailable(req, -ENOMEM);
    respond_ok(req, body, len);
    free(body);
    return 0;
}

/* ---- write operations ---- */

static void free_op(request_op_t *op)
{
    gdn_json_free(op->doc);
    free(op->task_json);
    free(op->worker_id);
    free(op->roles_text);
    free(op->claimed);
    free(op);
}

static void on_link_dispose(void *data)
{
    op_link_t *link = data;

    if (link->op != NULL)
        link->op->req = NULL;
}

static int apply_op(gdn_write_op_t *write, gdn_journal_txn_t *txn)
{
    request_op_t *op = (request_op_t *)write;
    int rc = 0;

    free(op->claimed);
    op->claimed = NULL;
    switch (op->kind) {
    case OP_CREATE:
        rc = gdn_queue_create(txn, &op->task, op->task_json, op->task_json_len);
        break;
    case OP_CLAIM:
        rc = gdn_queue_claim(txn, op->roles, op->role_lens, op->role_count, op->worker_id,
                             op->worker_id_len, op->now_us, &op->claimed, &op->claimed_len);
        break;
    case OP_COMPLETE:
        rc = gdn_queue_complete(txn, &op->complete, op->now_us);
        break;
    case OP_REGISTER:
        rc = gdn_queue_register(txn, &op->worker, op->now_us, op->worker_ttl_s);
        break;
    case OP_HEARTBEAT:
        rc = gdn_queue_heartbeat(txn, op->worker.worker_id, op->worker.worker_id_len, op->now_us,
                                 op->worker_ttl_s);
        break;
    }

    /* Logical outcomes commit (nothing was written for them); storage errors abort. */
    op->outcome = rc == GDN_ENOTFOUND || rc == GDN_ECONFLICT ? rc : 0;
    return op->outcome != 0 ? 0 : rc;
}

static void on_op_done(gdn_write_op_t *write, int status)
{
    request_op_t *op = (request_op_t *)write;

    op->status = status;
    h2o_multithread_send_message(&op->loop->replies, &op->reply);
}

static request_op_t *new_op(h2o_req_t *req, op_kind_t kind)
{
    request_op_t *op = calloc(1, sizeof(*op));

    if (op == NULL)
        return NULL;
    op->write.apply = apply_op;
    op->write.done = on_op_done;
    op->loop = gdn_loop_of(req);
    op->req = req;
    op->kind = kind;
    op->now_us = gdn_clock_now_us();
    op->worker_ttl_s = op->loop->config->worker_ttl_s;
    return op;
}

/* Hands an operation to the writer; the answer comes from answer_op. Takes `op`. */
static int submit_op(request_op_t *op)
{
    h2o_req_t *req = op->req;
    op_link_t *link = h2o_mem_alloc_shared(&req->pool, sizeof(*link), on_link_dispose);

    link->op = op;
    op->link = link;

    int rc = gdn_writer_submit(op->loop->writer, &op->write);

    if (rc != 0) {
        link->op = NULL;
        free_op(op);
        return respond_unavailable(req, rc);
    }
    op->loop->in_flight++;
    return 0;
}

static void answer_claim(h2o_req_t *req, request_op_t *op)
{
    static const char none[] = "{\"task\":null,\"message\":\"No tasks available\","
                               "\"retry_after\":30}";

    if (op->outcome == GDN_ENOTFOUND) {
        respond_ok(req, none, sizeof(none) - 1);
        return;
    }

    size_t len = op->claimed_len + 10;
    char *body = h2o_mem_alloc_pool(&req->pool, len);

    memcpy(body, "{\"task\":", 8);
    memcpy(body + 8, op->claimed, op->claimed_len);
    body[len - 2] = '}';
    respond_ok(req, body, len - 1);
}

static void respond_registered(h2o_req_t *req, const gdn_worker_t *worker)
{
    yajl_gen gen = gdn_json_gen_new();

    if (gen == NULL) {
        respond_unavailable(req, -ENOMEM);
        return;
    }
    yajl_gen_map_open(gen);
    gdn_json_gen_cstr(gen, "status");
    gdn_json_gen_cstr(gen, "registered");
    gdn_json_gen_cstr(gen, "worker_id");
    gdn_json_gen_string(gen, worker->worker_id, worker->worker_id_len);
    yajl_gen_map_close(gen);

    size_t len;
    char *body = gdn_json_gen_take(gen, &len);

    yajl_gen_free(gen);
    respond_taken(req, body, len);
}

static void answer_op(h2o_req_t *req, request_op_t *op)
{
    char body[128];
    int len = 0;

    if (op->status != 0) {
        respond_unavailable(req, op->status);
        return;
    }
    switch (op->kind) {
    case OP_CREATE:
        if (op->outcome != 0) {
            respond_detail(req, 409, "Conflict", "Task already exists");
            return;
        }
        len = snprintf(body, sizeof(body), "{\"task_id\":\"%s\",\"status\":\"created\"}",
                       op->task.id);
        break;
    case OP_CLAIM:
        answer_claim(req, op);
        return;
    case OP_COMPLETE:
        if (op->outcome == GDN_ENOTFOUND) {
            respond_task_not_found(req);
            return;
        }
        len = snprintf(body, sizeof(body), "{\"status\":\"completed\",\"task_id\":\"%s\"}",
                       op->complete.task_id);
        break;
    case OP_REGISTER:
        respond_registered(req, &op->worker);
        return;
    case OP_HEARTBEAT:
        len = snprintf(body, sizeof(body), "{\"status\":\"%s\"}",
                       op->outcome == GDN_ENOTFOUND ? "not_found" : "ok");
        break;
    }
    respond_ok(req, body, (size_t)len);
}

void gdn_routes_on_replies(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *message =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        request_op_t *op = H2O_STRUCT_FROM_MEMBER(request_op_t, reply, message);

        h2o_linklist_unlink(&message->link);
        op->loop->in_flight--;
        if (op->req != NULL) {
            op->link->op = NULL;
            answer_op(op->req, op);
        }
        free_op(op);
    }
}

/* ---- handlers ---- */

static int handle_create(h2o_req_t *req)
{
    request_op_t *op = new_op(req, OP_CREATE);
    gdn_problems_t problems;

    if (op == NULL || gdn_problems_init(&problems) != 0) {
        free(op);
        return respond_unavailable(req, -ENOMEM);
    }

    int rc =
        gdn_task_parse_create(req->entity.base, req->entity.len, &op->task, &op->doc, &problems);

    if (rc != 0) {
        if (rc == GDN_EINVALID)
            respond_problems(req, &problems);
        else
            respond_unavailable(req, rc);
        gdn_problems_free(&problems);
        free_op(op);
        return 0;
    }
    gdn_problems_free(&problems);

    rc = gdn_task_new_id(op->task.id);
    op->task.status = GDN_TASK_PENDING;
    op->task.created_us = op->now_us;
    op->task.updated_us = op->now_us;
    op->task_json = rc == 0 ? gdn_task_render(&op->task, &op->task_json_len) : NULL;
    if (op->task_json == NULL) {
        free_op(op);
        return respond_unavailable(req, rc != 0 ? rc : -ENOMEM);
    }
    return submit_op(op);
}

/* Parses a JSON body with one of the task.h validators and queues the write. */
static int handle_body_op(h2o_req_t *req, op_kind_t kind)
{
    request_op_t *op = new_op(req, kind);
    gdn_problems_t problems;

    if (op == NULL || gdn_problems_init(&problems) != 0) {
        free(op);
        return respond_unavailable(req, -ENOMEM);
    }

    const char *body = req->entity.base;
    size_t len = req->entity.len;
    int rc;

    if (kind == OP_COMPLETE)
        rc = gdn_task_parse_complete(body, len, &op->complete, &op->doc, &problems);
    else if (kind == OP_REGISTER)
        rc = gdn_worker_parse_register(body, len, &op->worker, &op->doc, &problems);
    else
        rc = gdn_worker_parse_heartbeat(body, len, &op->worker, &op->doc, &problems);

    if (rc != 0) {
        if (rc == GDN_EINVALID)
            respond_problems(req, &problems);
        else
            respond_unavailable(req, rc);
        gdn_problems_free(&problems);
        free_op(op);
        return 0;
    }
    gdn_problems_free(&problems);
    if (kind == OP_COMPLETE && op->complete.task_id[0] == '\0') {
        /* An id that cannot name any task is not worth a trip to the writer. */
        free_op(op);
        return respond_task_not_found(req);
    }
    return submit_op(op);
}

static int decode_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes a query value (`+` is a space) into a new malloc'd string. */
static char *decode_query_value(const char *text, size_t len, size_t *out_len)
{
    char *out = malloc(len + 1);
    size_t n = 0;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        int hi = i + 2 < len ? decode_hex(text[i + 1]) : -1;
        int lo = i + 2 < len ? decode_hex(text[i + 2]) : -1;

        if (text[i] == '%' && hi >= 0 && lo >= 0) {
            out[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[n++] = text[i] == '+' ? ' ' : text[i];
        }
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

/*
 * Finds a query parameter by name and returns its decoded value (malloc'd), or NULL if it is
 * absent. A parameter given twice takes its last value.
 */
static char *query_param(h2o_req_t *req, const char *name, size_t *len, int *oom)
{
    *oom = 0;
    if (req->query_at == SIZE_MAX)
        return NULL;

    const char *at = req->path.base + req->query_at + 1;
    const char *end = req->path.base + req->path.len;
    size_t name_len = strlen(name);
    const char *found = NULL;
    size_t found_len = 0;

    while (at < end) {
        const char *amp = memchr(at, '&', (size_t)(end - at));
        const char *stop = amp != NULL ? amp : end;
        const char *eq = memchr(at, '=', (size_t)(stop - at));
        size_t key_len = (size_t)((eq != NULL ? eq : stop) - at);

        if (key_len == name_len && memcmp(at, name, name_len) == 0) {
            found = eq != NULL ? eq + 1 : stop;
            found_len = (size_t)(stop - found);
        }
        at = stop + 1;
    }
    if (found == NULL)
        return NULL;

    char *value = decode_query_value(found, found_len, len);

    *oom = value == NULL;
    return value;
}

/* Splits the roles list in place: comma-separated, spaces trimmed, empty items skipped. */
static int split_roles(request_op_t *op, gdn_problems_t *problems)
{
    char *at = op->roles_text;

    while (at != NULL && *at != '\0') {
        char *comma = strchr(at, ',');
        char *end = comma != NULL ? comma : at + strlen(at);
        char *start = at;

        while (start < end && *start == ' ')
            start++;
        while (end > start && end[-1] == ' ')
            end--;
        if (end > start) {
            if (op->role_count == GDN_QUEUE_MAX_ROLES) {
                gdn_problems_add(problems, "query", "roles", "too_long",
                                 "List should have at most 32 roles");
                return GDN_EINVALID;
            }
            op->roles[op->role_count] = start;
            op->role_lens[op->role_count] = (size_t)(end - start);
            op->role_count++;
        }
        at = comma != NULL ? comma + 1 : NULL;
    }
    return 0;
}

/* Validates the /poll/next query into op. Returns 0, GDN_EINVALID (problems set) or -ENOMEM. */
static int parse_poll_query(h2o_req_t *req, request_op_t *op, gdn_problems_t *problems)
{
    size_t roles_len;
    int oom;

    op->worker_id = query_param(req, "worker_id", &op->worker_id_len, &oom);
    if (oom)
        return -ENOMEM;
    op->roles_text = query_param(req, "roles", &roles_len, &oom);
    if (oom)
        return -ENOMEM;

    int rc = 0;

    if (op->worker_id == NULL) {
        gdn_problems_add(problems, "query", "worker_id", "missing", "Field required");
        rc = GDN_EINVALID;
    } else if (op->worker_id_len > GDN_WORKER_ID_MAX) {
        gdn_problems_add(problems, "query", "worker_id", "string_too_long",
                         "String should have at most 200 characters");
        rc = GDN_EINVALID;
    }
    if (split_roles(op, problems) != 0)
        rc = GDN_EINVALID;
    return rc;
}

static int handle_poll_next(h2o_req_t *req)
{
    request_op_t *op = new_op(req, OP_CLAIM);
    gdn_problems_t problems;

    if (op == NULL || gdn_problems_init(&problems) != 0) {
        free(op);
        return respond_unavailable(req, -ENOMEM);
    }

    int rc = parse_poll_query(req, op, &problems);

    if (rc == GDN_EINVALID)
        respond_problems(req, &problems);
    gdn_problems_free(&problems);
    if (rc != 0) {
        free_op(op);
        return rc == GDN_EINVALID ? 0 : respond_unavailable(req, rc);
    }

    /* Most polls find nothing. Checking in a read transaction first answers those without
     * queueing behind writes; the writer checks again before it claims. */
    gdn_journal_txn_t *txn;

    rc = gdn_journal_read_begin(op->loop->reader, &txn);
    if (rc == 0) {
        rc = gdn_queue_has_pending(txn, op->roles, op->role_lens, op->role_count);
        gdn_journal_read_end(op->loop->reader);
    }
    if (rc == 0) {
        op->outcome = GDN_ENOTFOUND;
        answer_claim(req, op);
        free_op(op);
        return 0;
    }
    return submit_op(op);
}

static int handle_get_task(h2o_req_t *req, const char *id, size_t id_len)
{
    char key[GDN_JOURNAL_KEY_MAX + 1];
    gdn_loop_t *loop = gdn_loop_of(req);
    gdn_journal_txn_t *txn;

    if (id_len == 0 || id_len > GDN_JOURNAL_ID_LEN)
        return respond_task_not_found(req);

    size_t key_len = gdn_record_key(key, "task", id, id_len);
    int rc = gdn_journal_read_begin(loop->reader, &txn);

    if (rc != 0)
        return respond_unavailable(req, rc);

    gdn_journal_record_t record;

    rc = gdn_journal_get(txn, key, key_len, &record);
    if (rc == 0)
        respond_ok(req, record.json, record.json_len);
    gdn_journal_read_end(loop->reader);
    if (rc == GDN_ENOTFOUND)
        return respond_task_not_found(req);
    return rc == 0 ? 0 : respond_unavailable(req, rc);
}

/* Runs a listing on a read transaction and answers `{"NAME":[...]}`. */
static int handle_listing(h2o_req_t *req, const char *name, int workers)
{
    gdn_loop_t *loop = gdn_loop_of(req);
    gdn_buf_t out = GDN_BUF_INIT;
    gdn_journal_txn_t *txn;
    int rc = gdn_journal_read_begin(loop->reader, &txn);

    if (rc != 0)
        return respond_unavailable(req, rc);
    gdn_buf_append_str(&out, "{\"");
    gdn_buf_append_str(&out, name);
    gdn_buf_append_str(&out, "\":");
    if (workers)
        rc = gdn_queue_list_workers(txn, &out, gdn_clock_now_us());
    else
        rc = gdn_queue_list_pending(txn, &out, LIST_LIMIT);
    gdn_journal_read_end(loop->reader);
    gdn_buf_append_str(&out, "}");

    size_t len;
    char *body = gdn_buf_take(&out, &len);

    if (rc != 0) {
        free(body);
        return respond_unavailable(req, rc);
    }
    return respond_taken(req, body, len);
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

    respond_ok(req, body, (size_t)len);
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
        return respond_unavailable(req, rc);

    gdn_flusher_stats_t flusher;
    gdn_s3_counters_t s3;
    char last_flush[GDN_CLOCK_ISO_LEN + 3] = "null";
    uint64_t s3_errors = 0;

    bucket_state(loop, &flusher);
    gdn_s3_counters(&s3);
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
        "\"completed_tasks\":%lld,\"failed_tasks\":%lld,\"registered_workers\":%lld,"
        "\"dirty_records\":%lld,\"s3_puts\":%llu,\"s3_deletes\":%llu,\"s3_gets\":%llu,"
        "\"s3_errors\":%llu,\"last_flush_at\":%s}",
        (long long)stats.by_status[GDN_TASK_PENDING], (long long)stats.active_workers, GDN_VERSION,
        loop->config->claude_mem_enabled ? "true" : "false",
        (long long)stats.by_status[GDN_TASK_PROCESSING],
        (long long)stats.by_status[GDN_TASK_COMPLETED], (long long)stats.by_status[GDN_TASK_FAILED],
        (long long)stats.workers, (long long)stats.dirty_records, (unsigned long long)flusher.puts,
        (unsigned long long)flusher.deletes,
        (unsigned long long)(s3.requests[GDN_S3_GET] - s3.failures[GDN_S3_GET]),
        (unsigned long long)s3_errors, last_flush);

    respond_ok(req, body, (size_t)len);
    return 0;
}

/* Preflight answers are plain text, as browsers expect of them. */
static void respond_text(h2o_req_t *req, int status, const char *reason, const char *text)
{
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = strlen(text);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; charset=utf-8"));
    h2o_send_inline(req, text, req->res.content_length);
}

/* Answers a CORS preflight: the requested method and headers are allowed for 10 minutes. */
static int handle_preflight(h2o_req_t *req)
{
    ssize_t origin = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);
    const gdn_config_t *config = gdn_loop_of(req)->config;

    if (origin < 0 || !gdn_config_origin_allowed(config, req->headers.entries[origin].value.base,
                                                 req->headers.entries[origin].value.len)) {
        respond_text(req, 400, "Bad Request", "Disallowed CORS origin");
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
    add_cors(req);
    respond_text(req, 200, "OK", "OK");
    return 0;
}

static int is_method(h2o_req_t *req, const char *method)
{
    return h2o_memis(req->method.base, req->method.len, method, strlen(method));
}

static int method_not_allowed(h2o_req_t *req, const char *allow)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
    respond_detail(req, 405, "Method Not Allowed", "Method Not Allowed");
    return 0;
}

/* A body larger than the configured limit is refused before it is parsed. */
static int body_too_large(h2o_req_t *req)
{
    if (req->entity.base == NULL || req->entity.len <= gdn_loop_of(req)->config->max_body_bytes)
        return 0;
    respond_detail(req, 413, "Payload Too Large", "Request body too large");
    return 1;
}

typedef struct route {
    const char *path;
    const char *method;
    int (*handle)(h2o_req_t *req);
} route_t;

static int handle_list_tasks(h2o_req_t *req)
{
    return handle_listing(req, "tasks", 0);
}

static int handle_list_workers(h2o_req_t *req)
{
    return handle_listing(req, "workers", 1);
}

static int handle_complete(h2o_req_t *req)
{
    return handle_body_op(req, OP_COMPLETE);
}

static int handle_register(h2o_req_t *req)
{
    return handle_body_op(req, OP_REGISTER);
}

static int handle_heartbeat(h2o_req_t *req)
{
    return handle_body_op(req, OP_HEARTBEAT);
}

static const route_t routes[] = {
    {"/health", "GET", handle_health},
    {"/stats", "GET", handle_stats},
    {"/tasks", "GET", handle_list_tasks},
    {"/tasks", "POST", handle_create},
    {"/poll/register", "POST", handle_register},
    {"/poll/heartbeat", "POST", handle_heartbeat},
    {"/poll/next", "GET", handle_poll_next},
    {"/poll/complete", "POST", handle_complete},
    {"/poll/workers", "GET", handle_list_workers},
};

static int route_exact(h2o_req_t *req, h2o_iovec_t path)
{
    const char *allow = NULL;

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (!h2o_memis(path.base, path.len, routes[i].path, strlen(routes[i].path)))
            continue;
        if (is_method(req, routes[i].method))
            return body_too_large(req) ? 0 : routes[i].handle(req);
        allow = allow == NULL ? routes[i].method : "GET, POST";
    }
    if (allow == NULL)
        return -1;
    return method_not_allowed(req, allow);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    h2o_iovec_t path = req->path_normalized;

    if (is_method(req, "OPTIONS") &&
        h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1) >= 0 &&
        h2o_find_header_by_str(&req->headers, H2O_STRLIT("access-control-request-method"), -1) >= 0)
        return handle_preflight(req);

    if (route_exact(req, path) == 0)
        return 0;

    static const char prefix[] = "/tasks/";
    size_t prefix_len = sizeof(prefix) - 1;

    if (path.len > prefix_len && memcmp(path.base, prefix, prefix_len) == 0 &&
        memchr(path.base + prefix_len, '/', path.len - prefix_len) == NULL) {
        if (!is_method(req, "GET"))
            return method_not_allowed(req, "GET");
        return handle_get_task(req, path.base + prefix_len, path.len - prefix_len);
    }
    return respond_not_found(req);
}

int gdn_routes_register(h2o_hostconf_t *hostconf)
{
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));

    if (handler == NULL)
        return -ENOMEM;
    handler->on_req = on_req;
    return 0;
}
