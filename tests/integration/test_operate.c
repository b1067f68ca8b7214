/*
 * Integration tests of what operators rely on: bearer tokens and their scopes, the access log
 * and the rest of the server log, and GET /metrics checked with promtool and by value.
 *
 * The request scenarios run twice, over HTTP/1.1 and over cleartext HTTP/2 with prior
 * knowledge; the two suites share one test table and differ only in their init function.
 */
#include <CUnit/CUnit.h>
#include <stdarg.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cunit_main.h"
#include "harness.h"

/* The protocol of the suite being run, set by the suite's init function. */
static gdn_it_proto_t suite_proto = GDN_IT_HTTP1;

/* The ways a request presents itself, in the column order of the route table. */
enum caller {
    CALLER_NONE,      /* no Authorization header */
    CALLER_UNKNOWN,   /* a well-formed token that is not in the file */
    CALLER_TRUNCATED, /* the admin token without its last characters */
    CALLER_ADMIN,
    CALLER_PRODUCER,
    CALLER_WORKER,
    CALLER_WORKER_AB, /* a worker token limited to roles a and b */
    CALLER_METRICS,
    CALLER_COUNT,
};

/* The names the tokens file gives, and the access log shows; "-" when no token is known. */
static const char *const caller_names[CALLER_COUNT] = {
    "-", "-", "-", "ops", "frontend", "pi-kitchen", "pi-garden", "scraper",
};

/* The tokens presented, and so the strings that must never reach the log. */
static const char *const caller_tokens[CALLER_COUNT] = {
    NULL,
    "Unkn0wnTok-5d1a9e7c3b2f8046",
    "Adm1nTok-7f3c9e2a51d84b",
    "Adm1nTok-7f3c9e2a51d84b06",
    "Pr0dTok-4b8e1d7c29a05f63",
    "W0rkTok-9d2f6a18c4e7b035",
    "WabTok-1c5e8f2a7d3b9046",
    "M3trTok-6e0a4c9f2b7d1835",
};

static const char tokens_file_text[] = "# name      scope     token                      roles\n"
                                       "ops         admin     Adm1nTok-7f3c9e2a51d84b06\n"
                                       "frontend    producer  Pr0dTok-4b8e1d7c29a05f63\n"
                                       "pi-kitchen  worker    W0rkTok-9d2f6a18c4e7b035\n"
                                       "pi-garden   worker    WabTok-1c5e8f2a7d3b9046    a,b\n"
                                       "scraper     metrics   M3trTok-6e0a4c9f2b7d1835\n";

/* What a route needs before it is called: nothing, a pending task, or a claimed task. */
enum fixture {
    FIXTURE_NONE,
    FIXTURE_PENDING,
    FIXTURE_CLAIMED,
};

/* One route of the API and the status each caller gets from it. */
struct route_case {
    const char *method;
    const char *path; /* "{id}" stands for the fixture task's id */
    const char *body; /* likewise; NULL for none */
    enum fixture fixture;
    const char *label; /* the route as /metrics and the access log name it */
    long expected[CALLER_COUNT];
};

#define DENIED 401, 401, 401

static const struct route_case route_cases[] = {
    {"GET", "/health", NULL, FIXTURE_NONE, "GET /health", {200, 200, 200, 200, 200, 200, 200, 200}},
    {"GET", "/stats", NULL, FIXTURE_NONE, "GET /stats", {DENIED, 200, 200, 403, 403, 403}},
    {"GET", "/metrics", NULL, FIXTURE_NONE, "GET /metrics", {DENIED, 200, 403, 403, 403, 200}},
    {"GET", "/tasks", NULL, FIXTURE_NONE, "GET /tasks", {DENIED, 200, 200, 403, 403, 403}},
    {"POST",
     "/tasks",
     "{\"task_type\":\"table\",\"role\":\"table\"}",
     FIXTURE_NONE,
     "POST /tasks",
     {DENIED, 200, 200, 403, 403, 403}},
    {"GET",
     "/tasks/{id}",
     NULL,
     FIXTURE_PENDING,
     "GET /tasks/{id}",
     {DENIED, 200, 200, 403, 403, 403}},
    {"POST",
     "/tasks/{id}/cancel",
     NULL,
     FIXTURE_PENDING,
     "POST /tasks/{id}/cancel",
     {DENIED, 200, 200, 403, 403, 403}},
    {"POST",
     "/poll/register",
     "{\"worker_id\":\"w-table\",\"capabilities\":[\"table\"]}",
     FIXTURE_NONE,
     "POST /poll/register",
     {DENIED, 200, 403, 200, 200, 403}},
    {"POST",
     "/poll/heartbeat",
     "{\"worker_id\":\"w-table\"}",
     FIXTURE_NONE,
     "POST /poll/heartbeat",
     {DENIED, 200, 403, 200, 200, 403}},
    {"GET",
     "/poll/next?worker_id=w-table",
     NULL,
     FIXTURE_NONE,
     "GET /poll/next",
     {DENIED, 200, 403, 200, 200, 403}},
    {"POST",
     "/poll/complete",
     "{\"task_id\":\"{id}\",\"result\":{\"ok\":true}}",
     FIXTURE_CLAIMED,
     "POST /poll/complete",
     {DENIED, 200, 403, 200, 200, 403}},
    {"GET",
     "/poll/workers",
     NULL,
     FIXTURE_NONE,
     "GET /poll/workers",
     {DENIED, 200, 403, 200, 200, 403}},
};

#define ROUTE_CASES (sizeof(route_cases) / sizeof(route_cases[0]))

static int init_http1(void)
{
    suite_proto = GDN_IT_HTTP1;
    return gdn_it_global_init();
}

static int init_http2(void)
{
    suite_proto = GDN_IT_HTTP2;
    return gdn_it_global_init();
}

static int cleanup_suite(void)
{
    curl_global_cleanup();
    return 0;
}

static int str_equal(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* Writes `text` to `name` in the server's directory with `mode`, and its path into `path`. */
static void write_server_file(const gdn_it_server_t *srv, const char *name, const char *text,
                              mode_t mode, char *path, size_t path_size)
{
    snprintf(path, path_size, "%s/%s", srv->dir, name);

    FILE *f = fopen(path, "w");

    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_FATAL(fputs(text, f) >= 0);
    CU_ASSERT_FATAL(fclose(f) == 0);
    /* chmod, not the umask, decides: the world-readable warning depends on the exact mode. */
    CU_ASSERT_FATAL(chmod(path, mode) == 0);
}

/*
 * Starts a server whose config names a tokens file of `tokens_text` with `mode` (no tokens
 * file when NULL) and holds `extra` config lines, and opens a client of the suite's protocol.
 */
static void start_server(gdn_it_server_t *srv, gdn_it_client_t *client, const char *tokens_text,
                         mode_t mode, const char *extra)
{
    char tokens_path[GDN_IT_PATH_MAX];

    CU_ASSERT_FATAL(gdn_it_server_init(srv) == 0);
    if (tokens_text != NULL) {
        write_server_file(srv, "tokens", tokens_text, mode, tokens_path, sizeof(tokens_path));
        CU_ASSERT_FATAL(gdn_it_server_configf(srv, "auth_tokens_file = %s\n%s", tokens_path,
                                              extra != NULL ? extra : "") == 0);
    } else {
        CU_ASSERT_FATAL(gdn_it_server_configf(srv, "%s", extra != NULL ? extra : "") == 0);
    }
    CU_ASSERT_FATAL(gdn_it_server_start(srv) == 0);
    CU_ASSERT_FATAL(gdn_it_client_open(client, srv, suite_proto) == 0);
}

/* Counts the occurrences of `needle` in `text`. */
static int count_in(const char *text, const char *needle)
{
    int count = 0;

    for (const char *at = strstr(text, needle); at != NULL; at = strstr(at + 1, needle))
        count++;
    return count;
}

/* Reads the whole server log into a malloc'd string; NULL when it cannot be read. */
static char *read_log(const gdn_it_server_t *srv)
{
    FILE *f = fopen(srv->log_path, "r");

    if (f == NULL)
        return NULL;

    size_t cap = 1 << 16;
    size_t len = 0;
    char *text = malloc(cap);

    while (text != NULL) {
        len += fread(text + len, 1, cap - 1 - len, f);
        if (len < cap - 1)
            break;
        cap *= 2;

        char *grown = realloc(text, cap);

        if (grown == NULL)
            free(text);
        text = grown;
    }
    fclose(f);
    if (text != NULL)
        text[len] = '\0';
    return text;
}

/*
 * Stops the server with SIGTERM and checks that it drained and exited 0 with no sanitizer
 * report in its log (in a sanitizer build, a report can leave the answers intact).
 */
static void stop_server(gdn_it_server_t *srv, gdn_it_client_t *client)
{
    gdn_it_exit_t ex;

    gdn_it_client_close(client);
    CU_ASSERT_EQUAL(gdn_it_server_stop(srv, SIGTERM, 10.0, &ex), 0);
    CU_ASSERT(ex.exited && ex.code == 0);

    char *log = read_log(srv);

    CU_ASSERT_PTR_NOT_NULL(log);
    if (log != NULL) {
        CU_ASSERT_EQUAL(count_in(log, "Sanitizer"), 0);
        CU_ASSERT_EQUAL(count_in(log, "runtime error"), 0);
    }
    free(log);
    gdn_it_server_cleanup(srv);
}

/*
 * Sends a request presenting `token` (none when NULL) and checks that it travelled over the
 * client's protocol. The caller frees the response.
 */
static void call_as(gdn_it_client_t *client, const char *token, const char *method,
                    const char *path, const char *body, gdn_it_response_t *res)
{
    char authorization[320];
    const char *headers[2] = {NULL, NULL};

    if (token != NULL) {
        snprintf(authorization, sizeof(authorization), "Authorization: Bearer %s", token);
        headers[0] = authorization;
    }

    int rc =
        gdn_it_call_raw(client, method, path, body, body != NULL ? strlen(body) : 0, headers, res);

    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(res->version, client->proto == GDN_IT_HTTP1 ? 11 : 20);
}

/* call_as for a call whose only interest is its status. */
static long status_as(gdn_it_client_t *client, const char *token, const char *method,
                      const char *path, const char *body)
{
    gdn_it_response_t res;

    call_as(client, token, method, path, body, &res);

    long status = res.status;

    gdn_it_response_free(&res);
    return status;
}

/* Creates a task with `token` and copies its id into `id` (GDN_IT_ID_SIZE bytes). */
static void create_as(gdn_it_client_t *client, const char *token, const char *role, int priority,
                      char *id)
{
    char body[256];
    gdn_it_response_t res;

    snprintf(body, sizeof(body), "{\"task_type\":\"operate\",\"role\":\"%s\",\"priority\":%d}",
             role, priority);
    call_as(client, token, "POST", "/tasks", body, &res);
    CU_ASSERT_EQUAL(res.status, 200);

    const char *task_id = gdn_it_json_string(res.json, "task_id", NULL);

    CU_ASSERT_PTR_NOT_NULL(task_id);
    snprintf(id, GDN_IT_ID_SIZE, "%s", task_id != NULL ? task_id : "");
    gdn_it_response_free(&res);
}

/*
 * Polls with `token` as `worker` for `roles` (any when NULL). Copies the claimed task's id into
 * `id`, or an empty string when nothing was claimed. Returns the status.
 */
static long poll_as(gdn_it_client_t *client, const char *token, const char *worker,
                    const char *roles, char *id)
{
    char path[256];
    gdn_it_response_t res;

    snprintf(path, sizeof(path), "/poll/next?worker_id=%s%s%s", worker, roles ? "&roles=" : "",
             roles ? roles : "");
    call_as(client, token, "GET", path, NULL, &res);

    const char *task_id = gdn_it_json_string(res.json, "task", "id", NULL);

    snprintf(id, GDN_IT_ID_SIZE, "%s", res.status == 200 && task_id != NULL ? task_id : "");

    long status = res.status;

    gdn_it_response_free(&res);
    return status;
}

/* The status of task `id`, read with `token`, into `out`; empty when it cannot be read. */
static void task_status_as(gdn_it_client_t *client, const char *token, const char *id, char *out,
                           size_t size)
{
    char path[128];
    gdn_it_response_t res;

    snprintf(path, sizeof(path), "/tasks/%s", id);
    call_as(client, token, "GET", path, NULL, &res);

    const char *status = gdn_it_json_string(res.json, "status", NULL);

    snprintf(out, size, "%s", res.status == 200 && status != NULL ? status : "");
    gdn_it_response_free(&res);
}

/* Checks the shape of a refusal: 401 with the challenge, or 403, each with its detail. */
static void check_refusal(const gdn_it_response_t *res, long expected)
{
    char challenge[128];
    const char *have = gdn_it_header(res, "WWW-Authenticate", challenge, sizeof(challenge));
    const char *detail = gdn_it_json_string(res->json, "detail", NULL);

    if (expected == 401) {
        CU_ASSERT(str_equal(have, "Bearer realm=\"garden-orchestrator\""));
        CU_ASSERT(str_equal(detail, "Not authenticated"));
    } else {
        CU_ASSERT_PTR_NULL(have);
        CU_ASSERT(str_equal(detail, "Not allowed for this token"));
    }
}

/* The /stats counts a refused request must leave as they were. */
struct counts {
    long long pending;
    long long processing;
    long long completed;
    long long cancelled;
    long long workers;
};

static void read_counts(gdn_it_client_t *client, struct counts *out)
{
    gdn_it_response_t res;

    call_as(client, caller_tokens[CALLER_ADMIN], "GET", "/stats", NULL, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    memset(out, 0xff, sizeof(*out));
    CU_ASSERT(gdn_it_json_integer(res.json, &out->pending, "pending_tasks", NULL) == 0);
    CU_ASSERT(gdn_it_json_integer(res.json, &out->processing, "processing_tasks", NULL) == 0);
    CU_ASSERT(gdn_it_json_integer(res.json, &out->completed, "completed_tasks", NULL) == 0);
    CU_ASSERT(gdn_it_json_integer(res.json, &out->cancelled, "cancelled_tasks", NULL) == 0);
    CU_ASSERT(gdn_it_json_integer(res.json, &out->workers, "registered_workers", NULL) == 0);
    gdn_it_response_free(&res);
}

/*
 * Makes the task a route case needs, with the admin token: a pending task, or one claimed by
 * a fixture worker in a role of its own so that nothing else is claimed with it.
 */
static void make_fixture(gdn_it_client_t *client, enum fixture fixture, char *id)
{
    static int serial;
    char role[32];
    char claimed[GDN_IT_ID_SIZE];

    id[0] = '\0';
    if (fixture == FIXTURE_NONE)
        return;
    snprintf(role, sizeof(role), "fixture-%d", ++serial);
    create_as(client, caller_tokens[CALLER_ADMIN], role, 5, id);
    if (fixture == FIXTURE_PENDING)
        return;
    CU_ASSERT_EQUAL(poll_as(client, caller_tokens[CALLER_ADMIN], "fixture", role, claimed), 200);
    CU_ASSERT(str_equal(claimed, id));
}

/* Copies `template` into `out` with each "{id}" replaced by `id`. */
static void expand_id(char *out, size_t size, const char *template, const char *id)
{
    size_t used = 0;

    for (const char *at = template; *at != '\0' && used + 1 < size;) {
        if (strncmp(at, "{id}", 4) == 0) {
            used += (size_t)snprintf(out + used, size - used, "%s", id);
            at += 4;
        } else {
            out[used++] = *at++;
        }
    }
    out[used < size ? used : size - 1] = '\0';
}

/* Calls one route case as `caller` with fixture `id` and checks the status and its shape. */
static void run_case(gdn_it_client_t *client, const struct route_case *rc, enum caller caller,
                     const char *token, const char *id)
{
    char path[256];
    char body[256];
    gdn_it_response_t res;

    expand_id(path, sizeof(path), rc->path, id);
    if (rc->body != NULL)
        expand_id(body, sizeof(body), rc->body, id);
    call_as(client, token, rc->method, path, rc->body != NULL ? body : NULL, &res);

    long expected = rc->expected[caller];

    if (res.status != expected)
        fprintf(stderr, "  %s %s as %s: %ld, expected %ld\n", rc->method, rc->path,
                caller_names[caller], res.status, expected);
    CU_ASSERT_EQUAL(res.status, expected);
    if (expected == 401 || expected == 403) {
        check_refusal(&res, expected);
    } else if (strcmp(rc->path, "/metrics") == 0) {
        CU_ASSERT(res.body != NULL && strncmp(res.body, "# HELP ", 7) == 0);
    } else {
        CU_ASSERT_PTR_NOT_NULL(res.json);
    }
    gdn_it_response_free(&res);
}

static void test_operate__every_route_answers_each_token_by_its_scope(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;
    char pending[GDN_IT_ID_SIZE];
    char claimed[GDN_IT_ID_SIZE];
    char state[32];
    struct counts before;
    struct counts after;

    start_server(&srv, &client, tokens_file_text, 0600, NULL);
    make_fixture(&client, FIXTURE_PENDING, pending);
    make_fixture(&client, FIXTURE_CLAIMED, claimed);
    read_counts(&client, &before);

    /* Every refusal first: none of them may change what the server holds. */
    for (size_t r = 0; r < ROUTE_CASES; r++) {
        const struct route_case *rc = &route_cases[r];

        for (int c = 0; c < CALLER_COUNT; c++)
            if (rc->expected[c] == 401 || rc->expected[c] == 403)
                run_case(&client, rc, (enum caller)c, caller_tokens[c],
                         rc->fixture == FIXTURE_CLAIMED ? claimed : pending);
    }
    read_counts(&client, &after);
    CU_ASSERT(memcmp(&before, &after, sizeof(before)) == 0);
    task_status_as(&client, caller_tokens[CALLER_PRODUCER], pending, state, sizeof(state));
    CU_ASSERT(str_equal(state, "pending"));
    task_status_as(&client, caller_tokens[CALLER_ADMIN], claimed, state, sizeof(state));
    CU_ASSERT(str_equal(state, "processing"));

    /* Then every permitted call, each with a fixture of its own. */
    for (size_t r = 0; r < ROUTE_CASES; r++) {
        const struct route_case *rc = &route_cases[r];

        for (int c = 0; c < CALLER_COUNT; c++) {
            char id[GDN_IT_ID_SIZE];

            if (rc->expected[c] == 401 || rc->expected[c] == 403)
                continue;
            make_fixture(&client, rc->fixture, id);
            run_case(&client, rc, (enum caller)c, caller_tokens[c], id);
        }
    }
    stop_server(&srv, &client);
}

/* Sends a request with extra headers and no token; returns the response for the caller. */
static void call_with_headers(gdn_it_client_t *client, const char *method, const char *path,
                              const char *const *headers, gdn_it_response_t *res)
{
    CU_ASSERT_EQUAL(gdn_it_call_raw(client, method, path, NULL, 0, headers, res), 0);
    CU_ASSERT_EQUAL(res->version, client->proto == GDN_IT_HTTP1 ? 11 : 20);
}

static void test_operate__open_routes_and_routing_errors_need_no_token(void)
{
    static const char *const preflight[] = {"Origin: https://garden.example",
                                            "Access-Control-Request-Method: POST",
                                            "Access-Control-Request-Headers: authorization", NULL};
    gdn_it_server_t srv;
    gdn_it_client_t client;
    gdn_it_response_t res;
    char value[128];

    start_server(&srv, &client, tokens_file_text, 0600, NULL);

    call_as(&client, NULL, "GET", "/health", NULL, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "status", NULL), "ok"));
    gdn_it_response_free(&res);

    const char *preflight_paths[] = {"/tasks", "/metrics", "/poll/next", "/stats"};

    for (size_t i = 0; i < sizeof(preflight_paths) / sizeof(preflight_paths[0]); i++) {
        call_with_headers(&client, "OPTIONS", preflight_paths[i], preflight, &res);
        CU_ASSERT_EQUAL(res.status, 200);
        CU_ASSERT(
            str_equal(gdn_it_header(&res, "Access-Control-Max-Age", value, sizeof(value)), "600"));
        CU_ASSERT_PTR_NULL(gdn_it_header(&res, "WWW-Authenticate", value, sizeof(value)));
        gdn_it_response_free(&res);
    }

    /* Routing errors come before tokens, with or without one. */
    const char *tokens[] = {NULL, caller_tokens[CALLER_UNKNOWN], caller_tokens[CALLER_METRICS]};

    for (size_t t = 0; t < sizeof(tokens) / sizeof(tokens[0]); t++) {
        call_as(&client, tokens[t], "GET", "/no-such-path", NULL, &res);
        CU_ASSERT_EQUAL(res.status, 404);
        CU_ASSERT(str_equal(gdn_it_json_string(res.json, "detail", NULL), "Not Found"));
        gdn_it_response_free(&res);

        call_as(&client, tokens[t], "DELETE", "/tasks", NULL, &res);
        CU_ASSERT_EQUAL(res.status, 405);
        CU_ASSERT(str_equal(gdn_it_json_string(res.json, "detail", NULL), "Method Not Allowed"));
        gdn_it_response_free(&res);

        call_as(&client, tokens[t], "PUT", "/metrics", NULL, &res);
        CU_ASSERT_EQUAL(res.status, 405);
        gdn_it_response_free(&res);

        call_as(&client, tokens[t], "DELETE", "/tasks/0b6c8f3e-2d7a-4e19-b5c1-f08a3d6e9b27", NULL,
                &res);
        CU_ASSERT_EQUAL(res.status, 405);
        gdn_it_response_free(&res);

        CU_ASSERT_EQUAL(status_as(&client, tokens[t], "GET", "/tasks/a/b/c", NULL), 404);
    }

    /* A scheme other than Bearer, or a bare token, is no token at all. */
    static const char *const basic[] = {"Authorization: Basic b3BzOnNlY3JldA==", NULL};
    static const char *const bare[] = {"Authorization: Adm1nTok-7f3c9e2a51d84b06", NULL};

    call_with_headers(&client, "GET", "/stats", basic, &res);
    CU_ASSERT_EQUAL(res.status, 401);
    check_refusal(&res, 401);
    gdn_it_response_free(&res);
    call_with_headers(&client, "GET", "/stats", bare, &res);
    CU_ASSERT_EQUAL(res.status, 401);
    gdn_it_response_free(&res);
    stop_server(&srv, &client);
}

static void test_operate__a_worker_token_with_roles_claims_only_those_roles(void)
{
    const char *admin = caller_tokens[CALLER_ADMIN];
    const char *limited = caller_tokens[CALLER_WORKER_AB];
    gdn_it_server_t srv;
    gdn_it_client_t client;
    gdn_it_response_t res;
    char a1[GDN_IT_ID_SIZE], a2[GDN_IT_ID_SIZE], b1[GDN_IT_ID_SIZE];
    char c1[GDN_IT_ID_SIZE], c2[GDN_IT_ID_SIZE], got[GDN_IT_ID_SIZE];
    char state[32];

    start_server(&srv, &client, tokens_file_text, 0600, NULL);
    create_as(&client, admin, "c", 9, c1);
    create_as(&client, caller_tokens[CALLER_PRODUCER], "a", 1, a1);
    create_as(&client, admin, "b", 2, b1);
    create_as(&client, admin, "c", 8, c2);

    /* Without roles the poll gets the token's roles: b, then a, then nothing, though c ranks
     * higher than both. */
    CU_ASSERT_EQUAL(poll_as(&client, limited, "w-ab", NULL, got), 200);
    CU_ASSERT(str_equal(got, b1));
    CU_ASSERT_EQUAL(poll_as(&client, limited, "w-ab", "", got), 200);
    CU_ASSERT(str_equal(got, a1));
    CU_ASSERT_EQUAL(poll_as(&client, limited, "w-ab", NULL, got), 200);
    CU_ASSERT(str_equal(got, ""));
    task_status_as(&client, admin, c1, state, sizeof(state));
    CU_ASSERT(str_equal(state, "pending"));

    /* A poll that waits goes to the writer rather than the read check; it too keeps to a and b,
     * and ends its wait with nothing. */
    call_as(&client, limited, "GET", "/poll/next?worker_id=w-ab&wait=1", NULL, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    CU_ASSERT(YAJL_IS_NULL(gdn_it_json_get(res.json, "task", NULL)));
    gdn_it_response_free(&res);

    /* Naming a role outside the token's is refused and claims nothing. */
    const char *outside[] = {"c", "a,c", "c,b", "ab"};

    for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
        char path[128];

        snprintf(path, sizeof(path), "/poll/next?worker_id=w-ab&roles=%s", outside[i]);
        call_as(&client, limited, "GET", path, NULL, &res);
        CU_ASSERT_EQUAL(res.status, 403);
        check_refusal(&res, 403);
        gdn_it_response_free(&res);
    }
    task_status_as(&client, admin, c1, state, sizeof(state));
    CU_ASSERT(str_equal(state, "pending"));
    task_status_as(&client, admin, c2, state, sizeof(state));
    CU_ASSERT(str_equal(state, "pending"));

    /* A role of its own is claimed as usual. */
    create_as(&client, admin, "a", 1, a2);
    CU_ASSERT_EQUAL(poll_as(&client, limited, "w-ab", "b", got), 200);
    CU_ASSERT(str_equal(got, ""));
    CU_ASSERT_EQUAL(poll_as(&client, limited, "w-ab", "a", got), 200);
    CU_ASSERT(str_equal(got, a2));

    /* A worker token without roles may still claim any role. */
    CU_ASSERT_EQUAL(poll_as(&client, caller_tokens[CALLER_WORKER], "w-any", "c", got), 200);
    CU_ASSERT(str_equal(got, c1));
    stop_server(&srv, &client);
}

/* One request of the log scenario and the access-log line it must leave. */
struct logged_call {
    enum caller caller;
    const char *method;
    const char *path; /* as sent, query included */
    const char *logged_path;
    const char *route;
    long status;
};

/*
 * Counts the access-log lines that match `call`: its method, path, route, status, token name
 * and protocol. Lines with a query string count as failures.
 */
static int count_access_lines(const char *log, const struct logged_call *call, const char *proto)
{
    char head[256];
    char tail[128];
    int count = 0;

    snprintf(head, sizeof(head),
             "module=http event=request method=%s path=%s route=\"%s\" status=%ld ", call->method,
             call->logged_path, call->route, call->status);
    snprintf(tail, sizeof(tail), " proto=%s peer=127.0.0.1 token=%s\n", proto,
             caller_names[call->caller]);
    for (const char *at = strstr(log, head); at != NULL; at = strstr(at + 1, head)) {
        const char *end = strchr(at, '\n');
        const char *found = strstr(at, tail);

        if (end != NULL && found != NULL && found + strlen(tail) - 1 == end)
            count++;
    }
    return count;
}

static void test_operate__tokens_never_reach_the_log_and_each_request_is_logged_once(void)
{
    static const struct logged_call calls[] = {
        {CALLER_ADMIN, "GET", "/stats", "/stats", "GET /stats", 200},
        {CALLER_PRODUCER, "GET", "/tasks?status=pending&limit=5", "/tasks", "GET /tasks", 200},
        {CALLER_WORKER, "GET", "/poll/next?worker_id=w-secret-query&roles=zz", "/poll/next",
         "GET /poll/next", 200},
        {CALLER_WORKER_AB, "GET", "/poll/next?worker_id=w-ab&roles=c", "/poll/next",
         "GET /poll/next", 403},
        {CALLER_METRICS, "GET", "/metrics", "/metrics", "GET /metrics", 200},
        {CALLER_METRICS, "GET", "/stats", "/stats", "GET /stats", 403},
        {CALLER_UNKNOWN, "GET", "/stats", "/stats", "GET /stats", 401},
        {CALLER_TRUNCATED, "GET", "/poll/workers", "/poll/workers", "GET /poll/workers", 401},
        {CALLER_NONE, "GET", "/metrics", "/metrics", "GET /metrics", 401},
        {CALLER_ADMIN, "GET", "/no-such-path?x=1", "/no-such-path", "other", 404},
        {CALLER_ADMIN, "POST", "/tasks", "/tasks", "POST /tasks", 422},
    };
    enum { CALLS = sizeof(calls) / sizeof(calls[0]) };
    const char *proto = suite_proto == GDN_IT_HTTP1 ? "http/1.1" : "h2";
    gdn_it_server_t srv;
    gdn_it_client_t client;

    start_server(&srv, &client, tokens_file_text, 0600, "log_level = debug\naccess_log = true\n");
    for (int i = 0; i < CALLS; i++) {
        const char *body = strcmp(calls[i].method, "POST") == 0 ? "{\"role\":\"x\"}" : NULL;

        CU_ASSERT_EQUAL(status_as(&client, caller_tokens[calls[i].caller], calls[i].method,
                                  calls[i].path, body),
                        calls[i].status);
    }

    /* A token sent twice, with odd spacing and a lower-case scheme, is still not logged. */
    static const char *const odd[] = {"authorization: bearer    W0rkTok-9d2f6a18c4e7b035  ", NULL};
    gdn_it_response_t res;

    CU_ASSERT_EQUAL(gdn_it_call_raw(&client, "GET", "/poll/workers", NULL, 0, odd, &res), 0);
    CU_ASSERT_EQUAL(res.status, 200);
    gdn_it_response_free(&res);

    /* A request is logged when h2o lets go of it, which may follow its answer by a moment:
     * wait (bounded) until every call has its line, then count them. */
    char *log = NULL;

    for (int attempt = 0; attempt < 250; attempt++) {
        free(log);
        log = read_log(&srv);
        CU_ASSERT_FATAL(log != NULL);

        int complete =
            count_in(log, "path=/poll/workers route=\"GET /poll/workers\" status=200") > 0;

        for (int i = 0; i < CALLS && complete; i++)
            complete = count_access_lines(log, &calls[i], proto) > 0;
        if (complete)
            break;
        gdn_it_sleep_ms(20);
    }
    for (int i = 0; i < CALLS; i++) {
        /* Two calls share a line shape (/stats refused twice differs by status only). */
        int wanted = 0;

        for (int j = 0; j < CALLS; j++)
            wanted += calls[j].caller == calls[i].caller &&
                      strcmp(calls[j].logged_path, calls[i].logged_path) == 0 &&
                      calls[j].status == calls[i].status &&
                      strcmp(calls[j].method, calls[i].method) == 0;

        int have = count_access_lines(log, &calls[i], proto);

        if (have != wanted)
            fprintf(stderr, "  %s %s as %s: %d access-log lines, expected %d\n", calls[i].method,
                    calls[i].path, caller_names[calls[i].caller], have, wanted);
        CU_ASSERT_EQUAL(have, wanted);
    }
    CU_ASSERT(count_in(log, "token=pi-kitchen\n") == 2);
    CU_ASSERT_EQUAL(count_in(log, "log_level=debug"), 1);
    CU_ASSERT_EQUAL(count_in(log, "w-secret-query"), 0);
    CU_ASSERT_EQUAL(count_in(log, "status=pending"), 0);
    CU_ASSERT_EQUAL(count_in(log, "event=tokens_loaded"), 1);
    CU_ASSERT_EQUAL(count_in(log, "tokens=5"), 1);
    CU_ASSERT_EQUAL(count_in(log, "tokens_file_world_readable"), 0);
    CU_ASSERT_EQUAL(count_in(log, "event=auth_disabled"), 0);

    /* No token, whole or in part, is anywhere in the log. */
    for (int c = 0; c < CALLER_COUNT; c++) {
        if (caller_tokens[c] == NULL)
            continue;

        char part[GDN_IT_ID_SIZE];

        snprintf(part, sizeof(part), "%.12s", caller_tokens[c] + 6);
        CU_ASSERT_EQUAL(count_in(log, caller_tokens[c]), 0);
        CU_ASSERT_EQUAL(count_in(log, part), 0);
    }
    free(log);
    stop_server(&srv, &client);
}

static void test_operate__without_tokens_every_route_is_open_and_says_so_once(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;

    start_server(&srv, &client, NULL, 0, NULL);

    char *log = read_log(&srv);

    CU_ASSERT_FATAL(log != NULL);
    CU_ASSERT_EQUAL(count_in(log, "event=auth_disabled"), 1);
    CU_ASSERT_EQUAL(count_in(log, "event=tokens_loaded"), 0);
    free(log);

    /* Every route answers a caller without a token as it answers the admin token. */
    for (size_t r = 0; r < ROUTE_CASES; r++) {
        char id[GDN_IT_ID_SIZE];
        struct route_case unlocked = route_cases[r];

        for (int c = 0; c < CALLER_COUNT; c++)
            unlocked.expected[c] = route_cases[r].expected[CALLER_ADMIN];
        make_fixture(&client, unlocked.fixture, id);
        run_case(&client, &unlocked, CALLER_NONE, NULL, id);
        make_fixture(&client, unlocked.fixture, id);
        run_case(&client, &unlocked, CALLER_UNKNOWN, caller_tokens[CALLER_UNKNOWN], id);
    }

    /* The access log is off by default. */
    log = read_log(&srv);
    CU_ASSERT_FATAL(log != NULL);
    CU_ASSERT_EQUAL(count_in(log, "event=auth_disabled"), 1);
    CU_ASSERT_EQUAL(count_in(log, "event=request"), 0);
    free(log);
    stop_server(&srv, &client);
}

static void test_operate__an_access_log_below_log_level_is_warned_about(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;

    start_server(&srv, &client, NULL, 0, "log_level = warn\naccess_log = true\n");
    CU_ASSERT_EQUAL(status_as(&client, NULL, "GET", "/stats", NULL), 200);

    char *log = read_log(&srv);

    CU_ASSERT_FATAL(log != NULL);
    CU_ASSERT_EQUAL(count_in(log, "event=access_log_dropped"), 1);
    CU_ASSERT_EQUAL(count_in(log, "event=request"), 0);
    CU_ASSERT_EQUAL(count_in(log, "level=info"), 0);
    free(log);
    stop_server(&srv, &client);
}

static void test_operate__a_tokens_file_others_can_read_is_warned_about(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;

    start_server(&srv, &client, tokens_file_text, 0644, NULL);
    CU_ASSERT_EQUAL(status_as(&client, caller_tokens[CALLER_PRODUCER], "GET", "/stats", NULL), 200);

    char *log = read_log(&srv);

    CU_ASSERT_FATAL(log != NULL);
    CU_ASSERT_EQUAL(count_in(log, "event=tokens_file_world_readable"), 1);
    CU_ASSERT_EQUAL(count_in(log, "event=tokens_loaded"), 1);
    for (int c = 0; c < CALLER_COUNT; c++) {
        if (caller_tokens[c] != NULL)
            CU_ASSERT_EQUAL(count_in(log, caller_tokens[c]), 0);
    }
    free(log);
    stop_server(&srv, &client);
}

/* A malformed tokens file, the line its message must name, and the token it must not show. */
struct bad_tokens {
    const char *text;
    const char *line;
    const char *secret;
};

static void test_operate__a_malformed_tokens_file_stops_the_server_naming_the_line(void)
{
    static const struct bad_tokens cases[] = {
        /* Scope and token swapped. */
        {"ops admin Adm1nTok-7f3c9e2a51d84b06\n"
         "frontend Pr0dTok-4b8e1d7c29a05f63 producer\n",
         "line 2", "Pr0dTok-4b8e1d7c29a05f63"},
        /* Name and token swapped: the name field holds the token, the token field a name. */
        {"# tokens\n\nAdm1nTok-7f3c9e2a51d84b06 admin ops\n", "line 3",
         "Adm1nTok-7f3c9e2a51d84b06"},
        /* A token too short to be safe. */
        {"ops admin Adm1nTok-7f3c9e2a51d84b06\nscraper metrics M3trTok-6e0a\n", "line 2",
         "M3trTok-6e0a"},
        /* Roles on a token that is not a worker's. */
        {"frontend producer Pr0dTok-4b8e1d7c29a05f63 a,b\n", "line 1", "Pr0dTok-4b8e1d7c29a05f63"},
        /* A second name for the same token. */
        {"ops admin Adm1nTok-7f3c9e2a51d84b06\nops2 admin Adm1nTok-7f3c9e2a51d84b06\n", "line 2",
         "Adm1nTok-7f3c9e2a51d84b06"},
        /* A comment where the token should be. */
        {"ops admin # Adm1nTok-7f3c9e2a51d84b06\n", "line 1", "Adm1nTok-7f3c9e2a51d84b06"},
    };
    char out[8192];
    char listen[64];
    char tokens_path[GDN_IT_PATH_MAX];
    int code;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gdn_it_server_t srv;

        CU_ASSERT_FATAL(gdn_it_server_init(&srv) == 0);
        write_server_file(&srv, "tokens", cases[i].text, 0600, tokens_path, sizeof(tokens_path));
        CU_ASSERT_FATAL(gdn_it_server_configf(&srv, "auth_tokens_file = %s\n", tokens_path) == 0);

        const char *check[] = {"--config", srv.config_path, "--check-config", NULL};

        CU_ASSERT_EQUAL(gdn_it_run_program(check, out, sizeof(out), &code), 0);
        CU_ASSERT_EQUAL(code, 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, cases[i].line));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, tokens_path));
        CU_ASSERT_PTR_NULL(strstr(out, cases[i].secret));
        if (code != 2 || strstr(out, cases[i].line) == NULL || strstr(out, cases[i].secret))
            fprintf(stderr, "  case %zu, --check-config exit %d:\n%s\n", i, code, out);

        /* Started for real, it refuses the same way before it listens. */
        snprintf(listen, sizeof(listen), "127.0.0.1:%d", gdn_it_free_port());

        const char *serve[] = {"--config",   srv.config_path, "--listen", listen,
                               "--data-dir", srv.data_dir,    NULL};

        CU_ASSERT_EQUAL(gdn_it_run_program(serve, out, sizeof(out), &code), 0);
        CU_ASSERT_EQUAL(code, 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, cases[i].line));
        CU_ASSERT_PTR_NULL(strstr(out, cases[i].secret));
        CU_ASSERT_PTR_NULL(strstr(out, "event=listening"));
        if (code != 2 || strstr(out, cases[i].secret))
            fprintf(stderr, "  case %zu, serving exit %d:\n%s\n", i, code, out);
        gdn_it_server_cleanup(&srv);
    }
}

/* ---- GET /metrics ---- */

#define SAMPLES_MAX 2048

/* One sample line: `name{labels} value`, the labels unescaped as `k=v` joined by '\x1f'. */
struct sample {
    char name[128];
    char labels[512];
    double value;
};

struct samples {
    struct sample items[SAMPLES_MAX];
    int count;
};

static int is_name_char(char c, int first, int colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':') ||
           (!first && c >= '0' && c <= '9');
}

/* Reads a metric or label name at *at into `out`; returns its length, 0 when there is none. */
static size_t read_name(const char **at, char *out, size_t size, int colon)
{
    size_t len = 0;

    while (is_name_char((*at)[len], len == 0, colon) && len + 1 < size) {
        out[len] = (*at)[len];
        len++;
    }
    out[len] = '\0';
    *at += len;
    return len;
}

/* Appends `text` to `out` (of `size` bytes). Returns 0, or -1 when it does not fit. */
static int append(char *out, size_t size, const char *text, size_t len)
{
    size_t used = strlen(out);

    if (used + len + 1 > size)
        return -1;
    memcpy(out + used, text, len);
    out[used + len] = '\0';
    return 0;
}

/* Reads `{k="v",...}` at *at into s->labels; an escape other than \\, \" and \n is an error. */
static int read_labels(const char **at, struct sample *s)
{
    s->labels[0] = '\0';
    if (**at != '{')
        return 0;
    (*at)++;
    while (**at != '}') {
        char name[64];
        char value[256];
        size_t len = 0;

        if (read_name(at, name, sizeof(name), 0) == 0 || **at != '=' || (*at)[1] != '"')
            return -1;
        *at += 2;
        while (**at != '"') {
            char c = **at;

            if (c == '\0' || c == '\n' || len + 1 >= sizeof(value))
                return -1;
            if (c == '\\') {
                c = (*at)[1] == 'n' ? '\n' : (*at)[1];
                if (c != '\\' && c != '"' && c != '\n')
                    return -1;
                (*at)++;
            }
            value[len++] = c;
            (*at)++;
        }
        value[len] = '\0';
        (*at)++;
        if (s->labels[0] != '\0' && append(s->labels, sizeof(s->labels), "\x1f", 1) != 0)
            return -1;
        if (append(s->labels, sizeof(s->labels), name, strlen(name)) != 0 ||
            append(s->labels, sizeof(s->labels), "=", 1) != 0 ||
            append(s->labels, sizeof(s->labels), value, len) != 0)
            return -1;
        if (**at == ',')
            (*at)++;
        else if (**at != '}')
            return -1;
    }
    (*at)++;
    return 0;
}

/* Parses one sample line (without its newline). Returns 0, or -1 when it is malformed. */
static int parse_sample(const char *line, struct sample *s)
{
    const char *at = line;

    if (read_name(&at, s->name, sizeof(s->name), 1) == 0 || read_labels(&at, s) != 0 || *at != ' ')
        return -1;
    at++;

    char *end;

    s->value = strtod(at, &end);
    return end != at && *end == '\0' ? 0 : -1;
}

/*
 * Parses a /metrics body: comment lines must be `# HELP` or `# TYPE`, every other line a
 * sample, and no series may appear twice. Returns 0, or -1 after naming the line.
 */
static int parse_samples(const char *body, struct samples *out)
{
    const char *line = body;
    int number = 1;

    out->count = 0;
    while (*line != '\0') {
        const char *newline = strchr(line, '\n');
        char text[1024];
        size_t len = newline != NULL ? (size_t)(newline - line) : strlen(line);

        if (newline == NULL || len >= sizeof(text) || out->count == SAMPLES_MAX) {
            fprintf(stderr, "  /metrics line %d: unterminated or too long\n", number);
            return -1;
        }
        memcpy(text, line, len);
        text[len] = '\0';
        if (strncmp(text, "# HELP ", 7) != 0 && strncmp(text, "# TYPE ", 7) != 0) {
            struct sample *s = &out->items[out->count];

            if (parse_sample(text, s) != 0) {
                fprintf(stderr, "  /metrics line %d is not a sample: %s\n", number, text);
                return -1;
            }
            for (int i = 0; i < out->count; i++) {
                if (strcmp(out->items[i].name, s->name) == 0 &&
                    strcmp(out->items[i].labels, s->labels) == 0) {
                    fprintf(stderr, "  /metrics line %d repeats a series: %s\n", number, text);
                    return -1;
                }
            }
            out->count++;
        }
        line = newline + 1;
        number++;
    }
    return 0;
}

/*
 * Finds the sample `name` whose labels are exactly the NULL-terminated `key, value` pairs
 * that follow, in order. Returns its value, or -1 when there is no such sample.
 */
static double sample_value(const struct samples *samples, const char *name, ...)
{
    char labels[512] = "";
    va_list ap;

    va_start(ap, name);
    for (const char *key = va_arg(ap, const char *); key != NULL; key = va_arg(ap, const char *)) {
        const char *value = va_arg(ap, const char *);

        if (labels[0] != '\0')
            append(labels, sizeof(labels), "\x1f", 1);
        append(labels, sizeof(labels), key, strlen(key));
        append(labels, sizeof(labels), "=", 1);
        append(labels, sizeof(labels), value, strlen(value));
    }
    va_end(ap);
    for (int i = 0; i < samples->count; i++)
        if (strcmp(samples->items[i].name, name) == 0 &&
            strcmp(samples->items[i].labels, labels) == 0)
            return samples->items[i].value;
    return -1;
}

/*
 * Checks a latency histogram of one route: buckets that never decrease, `+Inf` equal to
 * `_count`, `_count` equal to the requests of that route, and a `_sum` above 0.
 */
static void check_route_histogram(const struct samples *samples, const char *route, double requests)
{
    const char *name = "garden_http_request_duration_seconds_bucket";
    char prefix[160];
    double last = 0;
    int buckets = 0;

    snprintf(prefix, sizeof(prefix), "route=%s\x1fle=", route);
    for (int i = 0; i < samples->count; i++) {
        const struct sample *s = &samples->items[i];

        if (strcmp(s->name, name) != 0 || strncmp(s->labels, prefix, strlen(prefix)) != 0)
            continue;
        CU_ASSERT(s->value >= last);
        last = s->value;
        buckets++;
    }
    CU_ASSERT(buckets > 1);

    double count =
        sample_value(samples, "garden_http_request_duration_seconds_count", "route", route, NULL);

    CU_ASSERT_EQUAL(sample_value(samples, name, "route", route, "le", "+Inf", NULL), count);
    CU_ASSERT_EQUAL(count, requests);
    /* Every answered request takes some microseconds; a sum of 0 means the clock read is one
     * that does not move within an event-loop turn. */
    CU_ASSERT(sample_value(samples, "garden_http_request_duration_seconds_sum", "route", route,
                           NULL) > 0);
}

/*
 * Runs `promtool check metrics` on `body`, through a file in the server's directory since
 * promtool reads standard input, and prints its output unless it exits `expected`. Returns
 * its exit code; 127 when promtool is not installed.
 */
static int run_promtool(const gdn_it_server_t *srv, const char *body, int expected)
{
    char path[GDN_IT_PATH_MAX];
    char script[GDN_IT_PATH_MAX + 64];
    char out[8192] = "";
    int code = -1;

    write_server_file(srv, "metrics.txt", body, 0600, path, sizeof(path));
    snprintf(script, sizeof(script), "exec promtool check metrics < '%s'", path);

    const char *argv[] = {"/bin/sh", "-c", script, NULL};

    CU_ASSERT_EQUAL(gdn_it_run_argv(argv, out, sizeof(out), &code), 0);
    if (code == 127)
        fprintf(stderr, "  promtool is not installed: packaging/install-deps.sh --test installs "
                        "it (Debian package prometheus)\n");
    if (code != expected)
        fprintf(stderr, "  promtool check metrics exited %d:\n%s\n", code, out);
    return code;
}

/* GETs /metrics and parses it into `samples`; returns the body, which the caller frees. */
static char *fetch_metrics(gdn_it_client_t *client, struct samples *samples)
{
    gdn_it_response_t res;
    char type[128];

    call_as(client, NULL, "GET", "/metrics", NULL, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    CU_ASSERT(gdn_it_header(&res, "Content-Type", type, sizeof(type)) != NULL &&
              strncmp(type, "text/plain; version=0.0.4", 25) == 0);

    char *body = res.body;

    res.body = NULL;
    gdn_it_response_free(&res);
    CU_ASSERT(body != NULL && parse_samples(body, samples) == 0);
    return body;
}

static void test_operate__metrics_parse_and_count_a_known_sequence(void)
{
    const char *odd_role = "q\"b\\s";
    gdn_it_server_t srv;
    gdn_it_client_t client;
    char id[GDN_IT_ID_SIZE];
    char got[GDN_IT_ID_SIZE];
    struct samples *samples = calloc(1, sizeof(*samples));

    CU_ASSERT_FATAL(samples != NULL);
    start_server(&srv, &client, NULL, 0, NULL);

    /* Two tasks in r2 first, so that r2 holds the oldest; three in r1; one in a role that
     * needs escaping and one holding a newline. Then a claim of r1, a 404 and a 422. */
    create_as(&client, NULL, "r2", 5, id);
    create_as(&client, NULL, "r2", 5, id);
    for (int i = 0; i < 3; i++)
        create_as(&client, NULL, "r1", 5, id);
    create_as(&client, NULL, "q\\\"b\\\\s", 5, id);
    create_as(&client, NULL, "n\\nl", 5, id);
    CU_ASSERT_EQUAL(poll_as(&client, NULL, "w-metrics", "r1", got), 200);
    CU_ASSERT(got[0] != '\0');
    CU_ASSERT_EQUAL(status_as(&client, NULL, "GET", "/no-such-path", NULL), 404);
    CU_ASSERT_EQUAL(status_as(&client, NULL, "POST", "/tasks", "{\"role\":\"r1\"}"), 422);

    /* Requests are counted when h2o lets go of them, a moment after the answer: read until
     * the last ones show (bounded), then check every value. */
    char *body = NULL;

    for (int attempt = 0; attempt < 250; attempt++) {
        free(body);
        body = fetch_metrics(&client, samples);
        if (sample_value(samples, "garden_http_requests_total", "route", "POST /tasks", "status",
                         "422", NULL) == 1 &&
            sample_value(samples, "garden_http_requests_total", "route", "other", "status", "404",
                         NULL) == 1)
            break;
        gdn_it_sleep_ms(20);
    }
    CU_ASSERT_FATAL(body != NULL);
    CU_ASSERT_EQUAL(run_promtool(&srv, body, 0), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "garden_queue_depth{role=\"q\\\"b\\\\s\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "garden_queue_depth{role=\"n\\nl\"} 1\n"));

    CU_ASSERT_EQUAL(sample_value(samples, "garden_http_requests_total", "route", "POST /tasks",
                                 "status", "200", NULL),
                    7);
    CU_ASSERT_EQUAL(sample_value(samples, "garden_http_requests_total", "route", "POST /tasks",
                                 "status", "422", NULL),
                    1);
    CU_ASSERT_EQUAL(sample_value(samples, "garden_http_requests_total", "route", "other", "status",
                                 "404", NULL),
                    1);
    CU_ASSERT_EQUAL(sample_value(samples, "garden_http_requests_total", "route", "GET /poll/next",
                                 "status", "200", NULL),
                    1);
    check_route_histogram(samples, "POST /tasks", 8);
    check_route_histogram(samples, "GET /poll/next", 1);
    check_route_histogram(samples, "other", 1);

    CU_ASSERT_EQUAL(sample_value(samples, "garden_tasks", "status", "pending", NULL), 6);
    CU_ASSERT_EQUAL(sample_value(samples, "garden_tasks", "status", "processing", NULL), 1);
    CU_ASSERT_EQUAL(sample_value(samples, "garden_tasks", "status", "completed", NULL), 0);
    CU_ASSERT_EQUAL(sample_value(samples, "garden_queue_depth", "role", "r1", NULL), 2);
    CU_ASSERT_EQUAL(sample_value(samples, "garden_queue_depth", "role", "r2", NULL), 2);
    CU_ASSERT_EQUAL(sample_value(samples, "garden_queue_depth", "role", odd_role, NULL), 1);
    CU_ASSERT_EQUAL(sample_value(samples, "garden_queue_depth", "role", "n\nl", NULL), 1);

    double r1_age = sample_value(samples, "garden_queue_oldest_age_seconds", "role", "r1", NULL);
    double r2_age = sample_value(samples, "garden_queue_oldest_age_seconds", "role", "r2", NULL);

    CU_ASSERT(r1_age > 0);
    CU_ASSERT(r2_age > 0);
    CU_ASSERT(r2_age >= r1_age);
    CU_ASSERT(sample_value(samples, "garden_queue_oldest_age_seconds", "role", odd_role, NULL) >=
              0);

    CU_ASSERT(sample_value(samples, "garden_journal_commits_total", NULL) > 0);
    CU_ASSERT(sample_value(samples, "garden_journal_operations_total", NULL) >= 7);

    double used = sample_value(samples, "garden_journal_used_bytes", NULL);
    double map = sample_value(samples, "garden_journal_map_bytes", NULL);

    CU_ASSERT(used > 0);
    CU_ASSERT(used <= map);
    CU_ASSERT(sample_value(samples, "process_resident_memory_bytes", NULL) > 0);
    CU_ASSERT_EQUAL(sample_value(samples, "garden_bucket_up", NULL), 0);
    CU_ASSERT_EQUAL(sample_value(samples, "garden_build_info", "version", "0.1.0", NULL), 1);

    free(body);
    free(samples);
    stop_server(&srv, &client);
}

static void test_operate__promtool_refuses_a_malformed_exposition(void)
{
    gdn_it_server_t srv;

    /* The check above only means something if promtool fails bad text: show that it does. */
    CU_ASSERT_FATAL(gdn_it_server_init(&srv) == 0);
    CU_ASSERT_NOT_EQUAL(run_promtool(&srv,
                                     "# HELP x_total X.\n# TYPE x_total counter\n"
                                     "x_total{role=\"a\"b\"} 1\n",
                                     1),
                        0);
    gdn_it_server_cleanup(&srv);
}

static CU_TestInfo request_tests[] = {
    {"Every route answers no token and unknown tokens 401, others 403, its scope as usual",
     test_operate__every_route_answers_each_token_by_its_scope},
    {"Health, CORS preflights, 404 and 405 answer without a token as before",
     test_operate__open_routes_and_routing_errors_need_no_token},
    {"A worker token with roles claims only tasks of those roles and may name no other",
     test_operate__a_worker_token_with_roles_claims_only_those_roles},
    {"No token reaches the log, and each request has one access-log line naming its token",
     test_operate__tokens_never_reach_the_log_and_each_request_is_logged_once},
    {"Without a tokens file every route is open and the server says so once",
     test_operate__without_tokens_every_route_is_open_and_says_so_once},
    {"GET /metrics passes promtool and counts a known sequence of requests and tasks",
     test_operate__metrics_parse_and_count_a_known_sequence},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo program_tests[] = {
    {"A tokens file that others can read is loaded with a warning",
     test_operate__a_tokens_file_others_can_read_is_warned_about},
    {"access_log with log_level warn says once at start that its lines are dropped",
     test_operate__an_access_log_below_log_level_is_warned_about},
    {"A malformed tokens file fails --check-config and the start with exit 2, token unshown",
     test_operate__a_malformed_tokens_file_stops_the_server_naming_the_line},
    {"promtool check metrics fails malformed text, so its pass means something",
     test_operate__promtool_refuses_a_malformed_exposition},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo gdn_test_suites[] = {
    {.pName = "Tokens, logs and metrics over HTTP/1.1",
     .pInitFunc = init_http1,
     .pCleanupFunc = cleanup_suite,
     .pTests = request_tests},
    {.pName = "Tokens, logs and metrics over HTTP/2 with prior knowledge",
     .pInitFunc = init_http2,
     .pCleanupFunc = cleanup_suite,
     .pTests = request_tests},
    {.pName = "Tokens files",
     .pInitFunc = init_http1,
     .pCleanupFunc = cleanup_suite,
     .pTests = program_tests},
    CU_SUITE_INFO_NULL,
};
