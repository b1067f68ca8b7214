/*
 * A libFuzzer target for what the server parses from a request, through the same functions the
 * handlers call: JSON bodies with their validation, the query strings of GET /tasks and
 * GET /poll/next, paths under /tasks/, and the headers the server reads (Idempotency-Key,
 * Origin, Authorization).
 *
 * The first input byte chooses the surface and the rest is the input. `(byte + 2) % 10` makes
 * the ASCII digits '0' to '9' choose surfaces 0 to 9, so that seed files can be written as
 * text: `0{"task_type":"x"}` is a TaskCreate body.
 *
 * Besides the sanitizers, the target checks what must hold for any input: a body that passes
 * validation renders to an object that reads back and renders again byte for byte the same (a
 * stored record must survive a restore), and every 422 body is itself valid JSON.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <h2o.h>

#include "gdn/auth.h"
#include "gdn/buf.h"
#include "gdn/config.h"
#include "gdn/error.h"
#include "gdn/journal.h"
#include "gdn/json.h"
#include "gdn/queue.h"
#include "gdn/request.h"
#include "gdn/task.h"

enum surface {
    SURFACE_CREATE,        /* '0': POST /tasks body */
    SURFACE_COMPLETE,      /* '1': POST /poll/complete body */
    SURFACE_REGISTER,      /* '2': POST /poll/register body */
    SURFACE_HEARTBEAT,     /* '3': POST /poll/heartbeat body */
    SURFACE_LIST_QUERY,    /* '4': GET /tasks query string */
    SURFACE_POLL_QUERY,    /* '5': GET /poll/next query string */
    SURFACE_PATH,          /* '6': a request target, normalised by h2o, then routed */
    SURFACE_IDEMPOTENCY,   /* '7': Idempotency-Key value */
    SURFACE_ORIGIN,        /* '8': Origin value */
    SURFACE_AUTHORIZATION, /* '9': Authorization value */
    SURFACE_COUNT,
};

/* A fixed time, so that runs are reproducible. */
#define FUZZ_NOW_US 1767225600000000LL
#define FUZZ_TASK_ID "0b7e7a52-1c3a-4d2e-9f00-5a6b7c8d9e0f"

/* State shared by every run: a journal with a few tasks, and two CORS configurations. */
static struct {
    char dir[64];
    gdn_journal_t *journal;
    gdn_journal_reader_t *reader;
    gdn_config_t any_origin;
    gdn_config_t listed_origins;
} fuzz;

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_request: %s\n", what);
    abort();
}

/* Checks that a text is one JSON value, as every answer the server renders must be. */
static void expect_json(const char *text, size_t len, const char *what)
{
    gdn_json_doc_t *doc;

    if (gdn_json_parse(text, len, &doc, NULL) != 0)
        fail(what);
    gdn_json_free(doc);
}

/* Renders the problems of a refused body and checks the 422 body is JSON. */
static void finish_problems(gdn_problems_t *problems)
{
    size_t len;
    char *body = gdn_problems_render(problems, &len);

    if (body != NULL)
        expect_json(body, len, "a 422 body is not JSON");
    free(body);
    gdn_problems_free(problems);
}

/* Reads a rendered object back and renders it again: the new text, or NULL. */
typedef char *(*rerender_fn)(const char *text, size_t len, size_t *again_len);

static char *rerender_task(const char *text, size_t len, size_t *again_len)
{
    gdn_task_t back;
    gdn_json_doc_t *doc;

    if (gdn_task_from_json(text, len, &back, &doc) != 0)
        return NULL;

    char *again = gdn_task_render(&back, again_len);

    gdn_json_free(doc);
    return again;
}

static char *rerender_worker(const char *text, size_t len, size_t *again_len)
{
    gdn_worker_t back;
    gdn_json_doc_t *doc;

    if (gdn_worker_from_json(text, len, &back, &doc) != 0)
        return NULL;

    char *again = gdn_worker_render(&back, again_len);

    gdn_json_free(doc);
    return again;
}

/* A stored record must read back and render again to the same bytes. Takes `text`. */
static void expect_round_trip(char *text, size_t len, rerender_fn rerender, const char *what)
{
    size_t again_len = 0;

    if (text == NULL)
        fail(what);

    char *again = rerender(text, len, &again_len);

    if (again == NULL || again_len != len || memcmp(again, text, len) != 0)
        fail(what);
    free(again);
    free(text);
}

/* As gdn_writes_create fills a task after validation. */
static void complete_task_fields(gdn_task_t *task)
{
    memcpy(task->id, FUZZ_TASK_ID, sizeof(task->id));
    task->status = GDN_TASK_PENDING;
    task->created_us = FUZZ_NOW_US;
    task->updated_us = FUZZ_NOW_US;
    if (task->lease_s == 0)
        task->lease_s = 600;
}

static void fuzz_body(enum surface surface, const char *body, size_t len)
{
    gdn_problems_t problems;
    gdn_json_doc_t *doc = NULL;
    gdn_task_t task;
    gdn_task_complete_t complete;
    gdn_worker_t worker;
    char *text;
    size_t text_len = 0;
    int rc = GDN_EINVALID;

    if (gdn_problems_init(&problems) != 0)
        return;
    switch (surface) {
    case SURFACE_CREATE:
        rc = gdn_task_parse_create(body, len, FUZZ_NOW_US, &task, &doc, &problems);
        if (rc == 0) {
            complete_task_fields(&task);
            text = gdn_task_render(&task, &text_len);
            expect_round_trip(text, text_len, rerender_task,
                              "a validated task does not round-trip");
        }
        break;
    case SURFACE_COMPLETE:
        rc = gdn_task_parse_complete(body, len, &complete, &doc, &problems);
        if (rc == 0 && complete.task_id[0] != '\0' &&
            !gdn_task_id_valid(complete.task_id, strlen(complete.task_id)))
            fail("a completion kept an invalid task id");
        break;
    case SURFACE_REGISTER:
    case SURFACE_HEARTBEAT:
        rc = surface == SURFACE_REGISTER
                 ? gdn_worker_parse_register(body, len, &worker, &doc, &problems)
                 : gdn_worker_parse_heartbeat(body, len, &worker, &doc, &problems);
        if (rc == 0) {
            worker.registered_us = FUZZ_NOW_US;
            worker.last_heartbeat_us = FUZZ_NOW_US;
            text = gdn_worker_render(&worker, &text_len);
            expect_round_trip(text, text_len, rerender_worker,
                              "a validated worker does not round-trip");
        }
        break;
    default:
        break;
    }
    if (rc == GDN_EINVALID && problems.count == 0)
        fail("a refused body has no problem to report");
    finish_problems(&problems);
    gdn_json_free(doc);
}

/* GET /tasks: the parameters, then the listing itself on the seeded journal. */
static void fuzz_list_query(const char *query, size_t len)
{
    gdn_list_params_t params;
    gdn_queue_listing_t listing;
    gdn_problems_t problems;

    if (gdn_request_list_read(query, len, &params) != 0 || gdn_problems_init(&problems) != 0) {
        gdn_request_list_free(&params);
        return;
    }

    int rc = gdn_request_list_check(&params, &listing, &problems);
    gdn_journal_txn_t *txn;

    if (rc == 0 && gdn_journal_read_begin(fuzz.reader, &txn) == 0) {
        gdn_buf_t out = GDN_BUF_INIT;

        gdn_buf_append_str(&out, "{");
        rc = gdn_queue_list(txn, &listing, &out);
        gdn_buf_append_str(&out, "}");
        gdn_journal_read_end(fuzz.reader);
        if (rc == 0)
            expect_json(out.data, out.len, "a listing is not JSON");
        gdn_buf_free(&out);
    }
    finish_problems(&problems);
    gdn_request_list_free(&params);
}

/* GET /poll/next: the parameters, then the read-only check a poll without a wait makes. */
static void fuzz_poll_query(const char *query, size_t len)
{
    gdn_poll_params_t params;
    gdn_problems_t problems;

    if (gdn_problems_init(&problems) != 0)
        return;

    int rc = gdn_request_poll_read(query, len, &params, &problems);
    gdn_journal_txn_t *txn;

    if (rc == 0 && (params.wait_s < 0 || params.wait_s > GDN_REQUEST_WAIT_MAX_S))
        fail("a poll wait out of range was accepted");
    if (rc == 0 && gdn_journal_read_begin(fuzz.reader, &txn) == 0) {
        gdn_queue_has_pending(txn, params.roles, params.role_lens, params.role_count);
        gdn_journal_read_end(fuzz.reader);
    }
    finish_problems(&problems);
    gdn_request_poll_free(&params);
}

/* A request target as h2o hands it over: normalised, its query split off, then routed. */
static void fuzz_path(const char *target, size_t len)
{
    h2o_mem_pool_t pool;
    size_t query_at = SIZE_MAX;
    size_t *norm_indexes = NULL;

    h2o_mem_init_pool(&pool);

    h2o_iovec_t path = h2o_url_normalize_path(&pool, target, len, &query_at, &norm_indexes);
    const char *id = NULL;
    size_t id_len = 0;
    gdn_task_path_t kind = gdn_request_task_path(path.base, path.len, &id, &id_len);

    if (kind != GDN_TASK_PATH_NONE && (id < path.base || id + id_len > path.base + path.len))
        fail("a task id lies outside its path");
    if (kind == GDN_TASK_PATH_TASK && id_len > 0 && id_len <= GDN_JOURNAL_ID_LEN) {
        char key[GDN_JOURNAL_KEY_MAX + 1];

        gdn_record_key(key, "task", id, id_len);
    }
    if (kind == GDN_TASK_PATH_CANCEL)
        gdn_task_id_valid(id, id_len);
    if (query_at != SIZE_MAX && query_at < len) {
        size_t value_len;
        int oom;
        char *value = gdn_request_query_param(target + query_at + 1, len - query_at - 1,
                                              "worker_id", &value_len, &oom);

        if (value != NULL && value[value_len] != '\0')
            fail("a query value is not NUL-terminated");
        free(value);
    }
    h2o_mem_clear_pool(&pool);
}

static void fuzz_idempotency(const char *value, size_t len)
{
    gdn_problems_t problems;

    if (gdn_problems_init(&problems) != 0)
        return;

    int rc = gdn_request_idempotency_key(value, len, &problems);

    if (rc == 0 && (len == 0 || len > GDN_QUEUE_IDEMPOTENCY_KEY_MAX))
        fail("an Idempotency-Key of a bad length was accepted");
    finish_problems(&problems);
}

static void fuzz_origin(const char *value, size_t len)
{
    if (!gdn_config_origin_allowed(&fuzz.any_origin, value, len))
        fail("an origin was refused under cors_origins = *");
    gdn_config_origin_allowed(&fuzz.listed_origins, value, len);
}

/* The tokens the Authorization surface looks values up in; one worker token has roles. */
static const char fuzz_tokens[] = "ops admin admin-token-0123456789\n"
                                  "web producer producer-token-0123456789\n"
                                  "pi worker worker-token-0123456789 a,b\n"
                                  "scrape metrics metrics-token-0123456789\n";

/*
 * An Authorization header value is looked up in a fixed table, and a token it finds narrows a
 * poll's roles. The same bytes are then read as a whole tokens file, the other text the
 * server parses for auth: it must either load or be refused with a message, never crash.
 */
static void fuzz_authorization(const char *value, size_t len)
{
    static gdn_auth_t *table;
    char err[256];

    if (table == NULL &&
        gdn_auth_parse(fuzz_tokens, strlen(fuzz_tokens), &table, err, sizeof(err)) != 0)
        abort();

    const gdn_auth_token_t *token = gdn_auth_find(table, value, len);

    if (token != NULL) {
        const char *roles[GDN_QUEUE_MAX_ROLES] = {"a"};
        size_t lens[GDN_QUEUE_MAX_ROLES] = {1};
        int count = len % 2;

        if (gdn_auth_limit_roles(token, roles, lens, &count, GDN_QUEUE_MAX_ROLES) == 0 &&
            (count < 0 || count > GDN_QUEUE_MAX_ROLES))
            abort();
        (void)gdn_auth_permits(token, GDN_AUTH_POLL);
    }

    gdn_auth_t *parsed = NULL;

    err[0] = '\0';
    if (gdn_auth_parse(value, len, &parsed, err, sizeof(err)) == 0) {
        if (gdn_auth_count(parsed) == 0)
            abort();
        gdn_auth_free(parsed);
    } else if (err[0] == '\0') {
        abort();
    }
}

static int on_remove(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void on_exit_cleanup(void)
{
    gdn_journal_reader_close(fuzz.reader);
    gdn_journal_close(fuzz.journal);
    gdn_config_free(&fuzz.any_origin);
    gdn_config_free(&fuzz.listed_origins);
    if (fuzz.dir[0] != '\0')
        nftw(fuzz.dir, on_remove, 8, FTW_DEPTH | FTW_PHYS);
}

/* Stores a few tasks through the create path, so that listings and polls have work to do. */
static void seed_journal(void)
{
    static const char *const bodies[] = {
        "{\"task_type\":\"seed\",\"role\":\"archivist\",\"priority\":9}",
        "{\"task_type\":\"seed\",\"role\":\"coder\",\"project_id\":\"p\"}",
        "{\"task_type\":\"seed\",\"delay_s\":3600}",
    };
    gdn_queue_policy_t policy;
    gdn_journal_txn_t *txn;

    gdn_queue_policy_init(&policy, &fuzz.any_origin);
    if (gdn_journal_write_begin(fuzz.journal, &txn) != 0)
        fail("cannot write the journal");
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        gdn_task_t task;
        gdn_json_doc_t *doc;
        size_t len;
        char existing[GDN_JOURNAL_ID_LEN + 1];
        gdn_queue_wakeups_t wakeups = {0};

        if (gdn_task_parse_create(bodies[i], strlen(bodies[i]), FUZZ_NOW_US, &task, &doc, NULL) !=
            0)
            fail("cannot make a seed task");
        complete_task_fields(&task);
        if (gdn_task_new_id(task.id) != 0)
            fail("cannot make a seed task id");

        char *json = gdn_task_render(&task, &len);

        if (json == NULL || gdn_queue_create(txn, &policy, &task, json, len, NULL, FUZZ_NOW_US,
                                             existing, &wakeups) != 0)
            fail("cannot store a seed task");
        free(json);
        gdn_json_free(doc);
    }
    if (gdn_journal_commit(txn) != 0)
        fail("cannot commit the seed tasks");
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    char err[256];

    snprintf(fuzz.dir, sizeof(fuzz.dir), "%s/gdn-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(fuzz.dir) == NULL)
        fail("cannot make a temporary directory");
    atexit(on_exit_cleanup);
    if (gdn_config_init(&fuzz.any_origin) != 0 || gdn_config_init(&fuzz.listed_origins) != 0 ||
        gdn_config_set(&fuzz.listed_origins, "cors_origins",
                       "https://garden.example, http://localhost:3000", err, sizeof(err)) != 0)
        fail("cannot make the configurations");
    if (gdn_journal_open(&fuzz.journal, fuzz.dir, 16, 4) != 0 ||
        gdn_journal_reader_open(fuzz.journal, &fuzz.reader) != 0)
        fail("cannot open a journal");
    seed_journal();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;

    enum surface surface = (enum surface)((data[0] + 2u) % SURFACE_COUNT);
    const char *input = (const char *)data + 1;
    size_t len = size - 1;

    switch (surface) {
    case SURFACE_CREATE:
    case SURFACE_COMPLETE:
    case SURFACE_REGISTER:
    case SURFACE_HEARTBEAT:
        fuzz_body(surface, input, len);
        break;
    case SURFACE_LIST_QUERY:
        fuzz_list_query(input, len);
        break;
    case SURFACE_POLL_QUERY:
        fuzz_poll_query(input, len);
        break;
    case SURFACE_PATH:
        fuzz_path(input, len);
        break;
    case SURFACE_IDEMPOTENCY:
        fuzz_idempotency(input, len);
        break;
    case SURFACE_ORIGIN:
        fuzz_origin(input, len);
        break;
    case SURFACE_AUTHORIZATION:
    case SURFACE_COUNT:
        fuzz_authorization(input, len);
        break;
    }
    return 0;
}
