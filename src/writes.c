/*
 * The API's writes and long polls.
 *
 * Every write becomes a write_op: validated here on the loop thread, applied by the journal
 * writer, and answered back on the loop thread once committed. A small link allocated on the
 * request's pool tells the operation when its request is freed; the operation itself is always
 * freed by its loop thread.
 *
 * A poll with `wait` is a claim that, when it finds nothing, is parked by the writer in the
 * long-poll registry (see longpoll.h) and sent to claim again when a task for it commits. Its
 * deadline is an h2o timer on its loop thread.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdn/clock.h"
#include "gdn/error.h"
#include "gdn/log.h"
#include "gdn/longpoll.h"
#include "gdn/request.h"
#include "gdn/respond.h"
#include "gdn/writes.h"

_Static_assert(GDN_REQUEST_WAIT_MAX_S == GDN_WRITES_WAIT_MAX_S,
               "the query reader and the loops' wait timers must agree on the longest wait");

/* Deadline entries handled per pass of the periodic operation, and how often it runs: expiry
 * never holds the writer for long, and a lapsed lease is noticed within a quarter second. A
 * pass that leaves due entries behind runs again with the next batch, so expiry keeps up
 * however many deadlines fall due at once (a finished task has two). */
#define EXPIRE_BATCH 256
#define EXPIRE_INTERVAL_MS 250

/* How often a loop checks whether the clients of its waiting HTTP/1.1 polls are still there. */
#define SWEEP_INTERVAL_MS 1000

static const char no_task[] = "{\"task\":null,\"message\":\"No tasks available\","
                              "\"retry_after\":30}";

typedef enum op_kind {
    OP_CREATE,
    OP_CLAIM,
    OP_COMPLETE,
    OP_REGISTER,
    OP_HEARTBEAT,
    OP_CANCEL,
} op_kind_t;

typedef struct op_link op_link_t;

/* One write on its way through the journal writer. */
typedef struct write_op {
    gdn_write_op_t write;            /* the writer's handle */
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
    gdn_queue_idempotency_t idempotency;
    char *idempotency_key; /* NULL without the header */
    gdn_task_complete_t complete;
    gdn_worker_t worker;
    char task_id[GDN_JOURNAL_ID_LEN + 1]; /* cancel */
    char *worker_id;                      /* poll: decoded from the query */
    size_t worker_id_len;
    char *roles_text; /* poll: the decoded roles, split in place */
    const char *roles[GDN_QUEUE_MAX_ROLES];
    size_t role_lens[GDN_QUEUE_MAX_ROLES];
    int role_count;
    int wait_s; /* poll: how long it may wait; 0 for none */
    gdn_waiter_t waiter;
    h2o_timeout_entry_t wait_timer;
    /* outputs, reset by every apply */
    int outcome; /* 0, or a logical result such as GDN_ENOTFOUND */
    int status;  /* the writer's verdict: 0 when durable */
    char *claimed;
    size_t claimed_len;
    char existing_id[GDN_JOURNAL_ID_LEN + 1];
    gdn_queue_completion_t completion;
    gdn_buf_t cancelled;
    gdn_queue_wakeups_t wakeups;
} write_op_t;

struct op_link {
    write_op_t *op;
};

static void free_op(write_op_t *op)
{
    if (h2o_timeout_is_linked(&op->wait_timer))
        h2o_timeout_unlink(&op->wait_timer);
    gdn_json_free(op->doc);
    free(op->task_json);
    free(op->idempotency_key);
    free(op->worker_id);
    free(op->roles_text);
    free(op->claimed);
    gdn_buf_free(&op->cancelled);
    free(op);
}

/* Answers a poll whose wait ended with nothing, and lets go of it. */
static void finish_waiter(write_op_t *op)
{
    op->loop->in_flight--;
    if (op->req != NULL) {
        op->link->op = NULL;
        gdn_respond_ok(op->req, no_task, sizeof(no_task) - 1);
    }
    free_op(op);
}

static void on_link_dispose(void *data)
{
    op_link_t *link = data;
    write_op_t *op = link->op;

    if (op == NULL)
        return;
    op->req = NULL;
    /* A parked poll whose client went away is freed now; one with the writer comes back. */
    if (op->wait_s > 0 && gdn_longpoll_close(&op->waiter))
        finish_waiter(op);
}

static void on_wait_timeout(h2o_timeout_entry_t *entry)
{
    write_op_t *op = H2O_STRUCT_FROM_MEMBER(write_op_t, wait_timer, entry);

    if (gdn_longpoll_close(&op->waiter))
        finish_waiter(op);
}

static void reset_outputs(write_op_t *op)
{
    free(op->claimed);
    op->claimed = NULL;
    op->existing_id[0] = '\0';
    gdn_buf_free(&op->cancelled);
    op->wakeups.count = 0;
    op->wakeups.all = 0;
}

static int apply_op(gdn_write_op_t *write, gdn_journal_txn_t *txn)
{
    write_op_t *op = H2O_STRUCT_FROM_MEMBER(write_op_t, write, write);
    const gdn_queue_policy_t *policy = op->loop->policy;
    int rc = 0;

    reset_outputs(op);
    switch (op->kind) {
    case OP_CREATE:
        rc = gdn_queue_create(txn, policy, &op->task, op->task_json, op->task_json_len,
                              op->idempotency_key ? &op->idempotency : NULL, op->now_us,
                              op->existing_id, &op->wakeups);
        break;
    case OP_CLAIM:
        rc = gdn_queue_claim(txn, policy, op->roles, op->role_lens, op->role_count, op->worker_id,
                             op->worker_id_len, gdn_clock_now_us(), &op->claimed, &op->claimed_len);
        break;
    case OP_COMPLETE:
        rc = gdn_queue_complete(txn, policy, &op->complete, op->now_us, &op->completion);
        break;
    case OP_REGISTER:
        rc = gdn_queue_register(txn, policy, &op->worker, op->now_us);
        break;
    case OP_HEARTBEAT:
        rc = gdn_queue_heartbeat(txn, policy, op->worker.worker_id, op->worker.worker_id_len,
                                 op->now_us, &op->cancelled);
        break;
    case OP_CANCEL:
        rc = gdn_queue_cancel(txn, policy, op->task_id, op->now_us);
        break;
    }

    /* Logical outcomes commit (nothing was written for them); storage errors abort. */
    op->outcome = rc == GDN_ENOTFOUND || rc == GDN_ECONFLICT ? rc : 0;
    return op->outcome != 0 ? 0 : rc;
}

/* Sends a woken poll to claim again. Journal writer thread. */
static void resume_waiter(gdn_waiter_t *waiter)
{
    write_op_t *op = H2O_STRUCT_FROM_MEMBER(write_op_t, waiter, waiter);

    if (gdn_writer_submit(op->loop->writer, &op->write) != 0) {
        /* The writer is stopping: the poll gets the empty answer. */
        op->status = 0;
        op->outcome = GDN_ENOTFOUND;
        h2o_multithread_send_message(&op->loop->replies, &op->reply);
    }
}

static void on_op_done(gdn_write_op_t *write, int status)
{
    write_op_t *op = H2O_STRUCT_FROM_MEMBER(write_op_t, write, write);

    op->status = status;
    if (status == 0 && (op->wakeups.count > 0 || op->wakeups.all))
        gdn_longpoll_wake(&op->wakeups, resume_waiter);
    if (op->kind == OP_CLAIM && op->wait_s > 0 && status == 0 && op->outcome == GDN_ENOTFOUND &&
        gdn_longpoll_park(&op->waiter))
        return;
    h2o_multithread_send_message(&op->loop->replies, &op->reply);
}

static write_op_t *new_op(h2o_req_t *req, op_kind_t kind)
{
    write_op_t *op = calloc(1, sizeof(*op));

    if (op == NULL)
        return NULL;
    op->write.apply = apply_op;
    op->write.done = on_op_done;
    op->loop = gdn_loop_of(req);
    op->req = req;
    op->kind = kind;
    op->now_us = gdn_clock_now_us();
    op->waiter.owner = op->loop;
    return op;
}

/* Hands an operation to the writer; the answer comes from answer_op. Takes `op`. */
static int submit_op(write_op_t *op)
{
    h2o_req_t *req = op->req;
    op_link_t *link = h2o_mem_alloc_shared(&req->pool, sizeof(*link), on_link_dispose);

    link->op = op;
    op->link = link;

    int rc = gdn_writer_submit(op->loop->writer, &op->write);

    if (rc != 0) {
        link->op = NULL;
        free_op(op);
        return gdn_respond_unavailable(req, rc);
    }
    op->loop->in_flight++;
    if (op->wait_s > 0) {
        op->wait_timer.cb = on_wait_timeout;
        h2o_timeout_link(op->loop->ctx.loop, &op->loop->wait_timeouts[op->wait_s], &op->wait_timer);
    }
    return 0;
}

/* ---- answers ---- */

static void answer_claim(h2o_req_t *req, write_op_t *op)
{
    if (op->outcome == GDN_ENOTFOUND) {
        gdn_respond_ok(req, no_task, sizeof(no_task) - 1);
        return;
    }

    size_t len = op->claimed_len + 10;
    char *body = h2o_mem_alloc_pool(&req->pool, len);

    memcpy(body, "{\"task\":", 8);
    memcpy(body + 8, op->claimed, op->claimed_len);
    body[len - 2] = '}';
    gdn_respond_ok(req, body, len - 1);
}

static void answer_registered(h2o_req_t *req, const gdn_worker_t *worker)
{
    yajl_gen gen = gdn_json_gen_new();

    if (gen == NULL) {
        gdn_respond_unavailable(req, -ENOMEM);
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
    gdn_respond_taken(req, body, len);
}

static void answer_heartbeat(h2o_req_t *req, write_op_t *op)
{
    if (op->outcome == GDN_ENOTFOUND) {
        static const char unknown[] = "{\"status\":\"not_found\"}";

        gdn_respond_ok(req, unknown, sizeof(unknown) - 1);
        return;
    }

    gdn_buf_t body = GDN_BUF_INIT;
    size_t len;

    gdn_buf_append_str(&body, "{\"status\":\"ok\",\"cancelled_tasks\":");
    gdn_buf_append(&body, op->cancelled.data ? op->cancelled.data : "[]",
                   op->cancelled.data ? op->cancelled.len : 2);
    gdn_buf_append_str(&body, "}");

    char *text = gdn_buf_take(&body, &len);

    gdn_respond_taken(req, text, len);
}

static void answer_complete(h2o_req_t *req, write_op_t *op)
{
    char body[128];

    if (op->outcome == GDN_ENOTFOUND) {
        gdn_respond_task_not_found(req);
        return;
    }
    if (op->completion == GDN_QUEUE_LATE) {
        gdn_respond_detail(req, 409, "Conflict",
                           "The task is no longer held by this worker; the result was kept as "
                           "late_result");
        return;
    }
    if (op->completion == GDN_QUEUE_REFUSED) {
        gdn_respond_detail(req, 409, "Conflict",
                           "The task is already finished or cancelled; nothing was changed");
        return;
    }

    int len = snprintf(body, sizeof(body), "{\"status\":\"%s\",\"task_id\":\"%s\"}",
                       op->complete.retry ? "retry" : "completed", op->complete.task_id);

    gdn_respond_ok(req, body, (size_t)len);
}

static void answer_op(h2o_req_t *req, write_op_t *op)
{
    char body[128];
    int len;

    if (op->status != 0) {
        gdn_respond_unavailable(req, op->status);
        return;
    }
    switch (op->kind) {
    case OP_CREATE:
        if (op->outcome == GDN_ECONFLICT) {
            gdn_respond_detail(req, 409, "Conflict",
                               op->idempotency_key ? "Idempotency-Key was used with another body"
                                                   : "Task already exists");
            return;
        }
        len = snprintf(body, sizeof(body), "{\"task_id\":\"%s\",\"status\":\"created\"}",
                       op->existing_id[0] ? op->existing_id : op->task.id);
        gdn_respond_ok(req, body, (size_t)len);
        return;
    case OP_CLAIM:
        answer_claim(req, op);
        return;
    case OP_COMPLETE:
        answer_complete(req, op);
        return;
    case OP_REGISTER:
        answer_registered(req, &op->worker);
        return;
    case OP_HEARTBEAT:
        answer_heartbeat(req, op);
        return;
    case OP_CANCEL:
        if (op->outcome == GDN_ENOTFOUND) {
            gdn_respond_task_not_found(req);
            return;
        }
        if (op->outcome == GDN_ECONFLICT) {
            gdn_respond_detail(req, 409, "Conflict", "The task is already finished or cancelled");
            return;
        }
        len = snprintf(body, sizeof(body), "{\"status\":\"cancelled\",\"task_id\":\"%s\"}",
                       op->task_id);
        gdn_respond_ok(req, body, (size_t)len);
        return;
    }
}

void gdn_writes_on_replies(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *message =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        write_op_t *op = H2O_STRUCT_FROM_MEMBER(write_op_t, reply, message);

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

/* Reports a failed validation (422) or a failure to validate (503), and drops the op. */
static int refuse(h2o_req_t *req, write_op_t *op, gdn_problems_t *problems, int rc)
{
    if (rc == GDN_EINVALID)
        gdn_respond_problems(req, problems);
    else
        gdn_respond_unavailable(req, rc);
    gdn_problems_free(problems);
    free_op(op);
    return 0;
}

/* Reads the Idempotency-Key header into the op with the digest of the body. */
static int read_idempotency(h2o_req_t *req, write_op_t *op, gdn_problems_t *problems)
{
    ssize_t at = h2o_find_header_by_str(&req->headers, H2O_STRLIT("idempotency-key"), -1);

    if (at < 0)
        return 0;

    h2o_iovec_t key = req->headers.entries[at].value;

    if (gdn_request_idempotency_key(key.base, key.len, problems) != 0)
        return GDN_EINVALID;
    op->idempotency_key = h2o_strdup(NULL, key.base, key.len).base;
    if (op->idempotency_key == NULL)
        return -ENOMEM;
    op->idempotency.key = op->idempotency_key;
    op->idempotency.key_len = key.len;

    unsigned int digest_len = 0;

    EVP_Digest(req->entity.base ? req->entity.base : "", req->entity.len, op->idempotency.digest,
               &digest_len, EVP_sha256(), NULL);
    return 0;
}

int gdn_writes_create(h2o_req_t *req)
{
    write_op_t *op = new_op(req, OP_CREATE);
    gdn_problems_t problems;

    if (op == NULL || gdn_problems_init(&problems) != 0) {
        free(op);
        return gdn_respond_unavailable(req, -ENOMEM);
    }

    int rc = gdn_task_parse_create(req->entity.base, req->entity.len, op->now_us, &op->task,
                                   &op->doc, &problems);
    int header_rc = read_idempotency(req, op, &problems);

    if (rc == 0 || (rc == GDN_EINVALID && header_rc != 0))
        rc = header_rc != 0 ? header_rc : rc;
    if (rc != 0)
        return refuse(req, op, &problems, rc);
    gdn_problems_free(&problems);

    rc = gdn_task_new_id(op->task.id);
    op->task.status = GDN_TASK_PENDING;
    op->task.created_us = op->now_us;
    op->task.updated_us = op->now_us;
    if (op->task.lease_s == 0)
        op->task.lease_s = op->loop->policy->task_lease_s;
    op->task_json = rc == 0 ? gdn_task_render(&op->task, &op->task_json_len) : NULL;
    if (op->task_json == NULL) {
        free_op(op);
        return gdn_respond_unavailable(req, rc != 0 ? rc : -ENOMEM);
    }
    return submit_op(op);
}

/* Parses a JSON body with one of the task.h validators and queues the write. */
static int body_op(h2o_req_t *req, op_kind_t kind)
{
    write_op_t *op = new_op(req, kind);
    gdn_problems_t problems;

    if (op == NULL || gdn_problems_init(&problems) != 0) {
        free(op);
        return gdn_respond_unavailable(req, -ENOMEM);
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
    if (rc != 0)
        return refuse(req, op, &problems, rc);
    gdn_problems_free(&problems);
    if (kind == OP_COMPLETE && op->complete.task_id[0] == '\0') {
        /* An id that cannot name any task is not worth a trip to the writer. */
        free_op(op);
        return gdn_respond_task_not_found(req);
    }
    return submit_op(op);
}

int gdn_writes_complete(h2o_req_t *req)
{
    return body_op(req, OP_COMPLETE);
}

int gdn_writes_register(h2o_req_t *req)
{
    return body_op(req, OP_REGISTER);
}

int gdn_writes_heartbeat(h2o_req_t *req)
{
    return body_op(req, OP_HEARTBEAT);
}

int gdn_writes_cancel(h2o_req_t *req, const char *id, size_t id_len)
{
    if (!gdn_task_id_valid(id, id_len))
        return gdn_respond_task_not_found(req);

    write_op_t *op = new_op(req, OP_CANCEL);

    if (op == NULL)
        return gdn_respond_unavailable(req, -ENOMEM);
    memcpy(op->task_id, id, GDN_JOURNAL_ID_LEN);
    op->task_id[GDN_JOURNAL_ID_LEN] = '\0';
    return submit_op(op);
}

/*
 * Validates the /poll/next query into op, which takes the decoded strings. Returns 0,
 * GDN_EINVALID (problems set) or -ENOMEM.
 */
static int parse_poll_query(h2o_req_t *req, write_op_t *op, gdn_problems_t *problems)
{
    gdn_poll_params_t params;
    size_t query_len;
    const char *query = gdn_query_string(req, &query_len);
    int rc = gdn_request_poll_read(query, query_len, &params, problems);

    op->worker_id = params.worker_id;
    op->worker_id_len = params.worker_id_len;
    op->roles_text = params.roles_text;
    memcpy(op->roles, params.roles, sizeof(op->roles));
    memcpy(op->role_lens, params.role_lens, sizeof(op->role_lens));
    op->role_count = params.role_count;
    op->wait_s = params.wait_s;
    op->waiter.roles = op->roles;
    op->waiter.role_lens = op->role_lens;
    op->waiter.role_count = op->role_count;
    return rc;
}

int gdn_writes_poll_as(h2o_req_t *req, const gdn_auth_token_t *token)
{
    write_op_t *op = new_op(req, OP_CLAIM);
    gdn_problems_t problems;

    if (op == NULL || gdn_problems_init(&problems) != 0) {
        free(op);
        return gdn_respond_unavailable(req, -ENOMEM);
    }

    int rc = parse_poll_query(req, op, &problems);

    if (rc != 0)
        return refuse(req, op, &problems, rc);
    gdn_problems_free(&problems);

    /* A worker token limited to some roles claims only tasks of those roles. */
    if (gdn_auth_limit_roles(token, op->roles, op->role_lens, &op->role_count,
                             GDN_QUEUE_MAX_ROLES) != 0) {
        free_op(op);
        gdn_respond_detail(req, 403, "Forbidden", "Not allowed for this token");
        return 0;
    }
    op->waiter.role_count = op->role_count;

    /* Most polls without a wait find nothing. Checking in a read transaction first answers
     * those without queueing behind writes; the writer checks again before it claims. A poll
     * that may wait goes to the writer either way, which parks it if nothing is there. */
    if (op->wait_s == 0) {
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
    }
    return submit_op(op);
}

/* ---- time-driven work ---- */

static struct expiry_op {
    gdn_write_op_t write;
    gdn_writer_t *writer;
    /* A copy: the writer runs this pass until it stops, after the server that owns the
     * policy it was started with has been freed. */
    gdn_queue_policy_t policy;
    gdn_queue_wakeups_t wakeups;
    int handled;
    int batch; /* deadline entries per pass: EXPIRE_BATCH, or fewer while the map is full */
} expiry;

/*
 * Runs one expiry pass. Removing records needs fresh pages too, so on a full map a whole pass
 * can fail where a smaller one fits: the pass is then halved, down to one entry, and grows back
 * as passes succeed. That keeps retention freeing space, and leases lapsing, while the map is
 * full; creates meanwhile get 503.
 */
static int apply_expiry(gdn_write_op_t *write, gdn_journal_txn_t *txn)
{
    struct expiry_op *op = (struct expiry_op *)write;
    int more;

    op->wakeups.count = 0;
    op->wakeups.all = 0;
    op->handled =
        gdn_queue_expire(txn, &op->policy, gdn_clock_now_us(), op->batch, &op->wakeups, &more);
    if (op->handled == GDN_EJOURNAL_FULL && op->batch > 1) {
        op->batch /= 2;
        gdn_writer_periodic_again(op->writer);
    } else if (op->handled >= 0 && op->batch < EXPIRE_BATCH) {
        op->batch = op->batch * 2 < EXPIRE_BATCH ? op->batch * 2 : EXPIRE_BATCH;
    }
    if (op->handled > 0 && more)
        gdn_writer_periodic_again(op->writer);
    return op->handled < 0 ? op->handled : 0;
}

static void on_expiry_done(gdn_write_op_t *write, int status)
{
    struct expiry_op *op = (struct expiry_op *)write;

    if (status != 0) {
        gdn_log(GDN_LOG_WARN, "queue", "expiry_failed", "reason=\"%s\"", gdn_strerror(status));
        return;
    }
    if (op->handled > 0)
        gdn_log(GDN_LOG_DEBUG, "queue", "deadlines_handled", "count=%d", op->handled);
    if (op->wakeups.count > 0 || op->wakeups.all)
        gdn_longpoll_wake(&op->wakeups, resume_waiter);
}

void gdn_writes_start(gdn_writer_t *writer, const gdn_queue_policy_t *policy)
{
    expiry.write.apply = apply_expiry;
    expiry.write.done = on_expiry_done;
    expiry.writer = writer;
    expiry.policy = *policy;
    expiry.batch = EXPIRE_BATCH;
    gdn_writer_set_periodic(writer, &expiry.write, EXPIRE_INTERVAL_MS);
}

/*
 * h2o does not read an HTTP/1.1 connection while its request is being handled, so a client that
 * closes it during a long poll goes unnoticed: its poll would stay parked and take the next
 * task, which would then wait out its lease. A closed peer shows as a hang-up on the socket,
 * which this asks the kernel about without reading. (HTTP/2 reads on; its resets are seen.)
 */
static int waiter_gone(gdn_waiter_t *waiter)
{
    write_op_t *op = H2O_STRUCT_FROM_MEMBER(write_op_t, waiter, waiter);

    if (op->req == NULL)
        return 1;
    if (op->req->version >= 0x200 || op->req->conn->callbacks->get_socket == NULL)
        return 0;

    h2o_socket_t *sock = op->req->conn->callbacks->get_socket(op->req->conn);
    struct pollfd check = {.fd = sock != NULL ? h2o_socket_get_fd(sock) : -1, .events = POLLRDHUP};

    return check.fd >= 0 && poll(&check, 1, 0) > 0 &&
           (check.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

static void answer_closed_waiter(gdn_waiter_t *waiter)
{
    finish_waiter(H2O_STRUCT_FROM_MEMBER(write_op_t, waiter, waiter));
}

static void on_sweep(h2o_timeout_entry_t *entry)
{
    gdn_loop_t *loop = H2O_STRUCT_FROM_MEMBER(gdn_loop_t, sweep_entry, entry);

    gdn_longpoll_sweep_owner(loop, waiter_gone, answer_closed_waiter);
    if (!loop->stopping)
        h2o_timeout_link(loop->ctx.loop, &loop->sweep_timeout, &loop->sweep_entry);
}

void gdn_writes_loop_init(gdn_loop_t *loop)
{
    for (int s = 1; s < GDN_LOOP_WAIT_TIMEOUTS; s++)
        h2o_timeout_init(loop->ctx.loop, &loop->wait_timeouts[s], (uint64_t)s * 1000);
    h2o_timeout_init(loop->ctx.loop, &loop->sweep_timeout, SWEEP_INTERVAL_MS);
    loop->sweep_entry.cb = on_sweep;
    h2o_timeout_link(loop->ctx.loop, &loop->sweep_timeout, &loop->sweep_entry);
}

void gdn_writes_loop_stop(gdn_loop_t *loop)
{
    if (h2o_timeout_is_linked(&loop->sweep_entry))
        h2o_timeout_unlink(&loop->sweep_entry);
    gdn_longpoll_close_owner(loop, answer_closed_waiter);
}

void gdn_writes_loop_dispose(gdn_loop_t *loop)
{
    for (int s = 1; s < GDN_LOOP_WAIT_TIMEOUTS; s++)
        h2o_timeout_dispose(loop->ctx.loop, &loop->wait_timeouts[s]);
    h2o_timeout_dispose(loop->ctx.loop, &loop->sweep_timeout);
}
