/*
 * Integration tests with hostile input: malformed JSON, wrong types, missing fields, deep
 * nesting, invalid UTF-8, oversized bodies and numbers, unknown ids, and a journal that runs
 * out of room. Each request must get its 4xx (or 503), leave the stored state exactly as it
 * was, and leave the server answering.
 */
#include <CUnit/CUnit.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cunit_main.h"
#include "harness.h"

/* Ten times the default max_body_bytes: past what the server reads (twice the limit plus
 * 1 MiB), so h2o refuses it before any handler runs. */
#define HUGE_BODY_BYTES (10u * 1024 * 1024)

/* Task bodies that fill a 16 MiB journal in a few dozen requests. */
#define BIG_TASK_BYTES (900u * 1024)

/* What must not change when a request is rejected. */
struct snapshot {
    long long counts[5];
    char *tasks;   /* raw body of GET /tasks */
    char *workers; /* raw body of GET /poll/workers */
};

static const char *const counted[] = {"pending_tasks", "processing_tasks", "completed_tasks",
                                      "failed_tasks", "active_workers"};

/* The server, a client, and the baseline state every test starts from. */
struct fixture {
    gdn_it_server_t srv;
    gdn_it_client_t client;
    char claimed[GDN_IT_ID_SIZE];
    struct snapshot before;
    int rejected;
};

static int init_suite(void)
{
    return gdn_it_global_init();
}

static int cleanup_suite(void)
{
    curl_global_cleanup();
    return 0;
}

static char *fetch_body(gdn_it_client_t *client, const char *path)
{
    gdn_it_response_t res;

    gdn_it_call(client, "GET", path, NULL, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    char *body = res.body;
    res.body = NULL;
    gdn_it_response_free(&res);
    return body;
}

static void take_snapshot(gdn_it_client_t *client, struct snapshot *s)
{
    for (size_t i = 0; i < 5; i++)
        s->counts[i] = gdn_it_stat(client, counted[i]);
    s->tasks = fetch_body(client, "/tasks");
    s->workers = fetch_body(client, "/poll/workers");
}

static void free_snapshot(struct snapshot *s)
{
    free(s->tasks);
    free(s->workers);
    memset(s, 0, sizeof(*s));
}

static int same_text(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* Checks that the server still answers and that nothing stored changed since `before`. */
static void expect_unchanged(struct fixture *fx)
{
    struct snapshot now;
    gdn_it_response_t res;

    gdn_it_call(&fx->client, "GET", "/health", NULL, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    gdn_it_response_free(&res);

    take_snapshot(&fx->client, &now);
    for (size_t i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(now.counts[i], fx->before.counts[i]);
        if (now.counts[i] != fx->before.counts[i])
            fprintf(stderr, "  %s went from %lld to %lld\n", counted[i], fx->before.counts[i],
                    now.counts[i]);
    }
    CU_ASSERT(same_text(now.tasks, fx->before.tasks));
    CU_ASSERT(same_text(now.workers, fx->before.workers));
    free_snapshot(&now);
}

/* Starts a server with `config` (or none) and stores three tasks, one claimed, and a worker. */
static void setup_fixture(struct fixture *fx, const char *config)
{
    char id[GDN_IT_ID_SIZE];

    memset(fx, 0, sizeof(*fx));
    CU_ASSERT_FATAL(gdn_it_server_init(&fx->srv) == 0);
    if (config)
        CU_ASSERT_FATAL(gdn_it_server_configf(&fx->srv, "%s", config) == 0);
    CU_ASSERT_FATAL(gdn_it_server_start(&fx->srv) == 0);
    CU_ASSERT_FATAL(gdn_it_client_open(&fx->client, &fx->srv, GDN_IT_HTTP1) == 0);

    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(gdn_it_create_task(&fx->client, "{\"task_type\":\"baseline\"}", id), 200);
    CU_ASSERT_EQUAL(gdn_it_poll(&fx->client, "baseline-worker", NULL, fx->claimed), 200);
    CU_ASSERT(fx->claimed[0] != '\0');

    gdn_it_response_t res;
    gdn_it_call(&fx->client, "POST", "/poll/register",
                "{\"worker_id\":\"baseline-worker\",\"capabilities\":[\"archivist\"]}", &res);
    CU_ASSERT_EQUAL(res.status, 200);
    gdn_it_response_free(&res);
    take_snapshot(&fx->client, &fx->before);
}

static void teardown_fixture(struct fixture *fx)
{
    free_snapshot(&fx->before);
    gdn_it_client_close(&fx->client);
    gdn_it_server_cleanup(&fx->srv);
}

static void show_mismatch(const char *path, const char *body, size_t len,
                          const gdn_it_response_t *res)
{
    fprintf(stderr, "  POST %s %.*s -> %ld (curl %d) %.300s\n", path, (int)(len < 120 ? len : 120),
            body, res->status, (int)res->code, res->body ? res->body : "");
}

/*
 * Checks a 422 body: a non-empty detail list whose entries have a type, a message and a
 * location starting with "body"; when `field` is set, one location must name it second.
 */
static int valid_422(const gdn_it_response_t *res, const char *field)
{
    yajl_val detail = gdn_it_json_get(res->json, "detail", NULL);
    int named = field == NULL;

    if (res->status != 422 || gdn_it_json_length(detail) == 0)
        return 0;
    for (size_t i = 0; i < gdn_it_json_length(detail); i++) {
        yajl_val entry = gdn_it_json_at(detail, i);
        yajl_val loc = gdn_it_json_get(entry, "loc", NULL);
        if (!gdn_it_json_string(entry, "type", NULL) || !gdn_it_json_string(entry, "msg", NULL) ||
            !same_text(YAJL_GET_STRING(gdn_it_json_at(loc, 0)), "body"))
            return 0;
        if (field && same_text(YAJL_GET_STRING(gdn_it_json_at(loc, 1)), field))
            named = 1;
    }
    return named;
}

/* POSTs a raw body and expects a 422 naming `field` (NULL: any body location). */
static void expect_422(struct fixture *fx, const char *path, const char *body, size_t len,
                       const char *field)
{
    gdn_it_response_t res;

    gdn_it_call_raw(&fx->client, "POST", path, body, len, NULL, &res);
    int ok = valid_422(&res, field);
    CU_ASSERT(ok);
    if (!ok)
        show_mismatch(path, body, len, &res);
    fx->rejected++;
    gdn_it_response_free(&res);
}

static void expect_422_text(struct fixture *fx, const char *path, const char *body,
                            const char *field)
{
    expect_422(fx, path, body, strlen(body), field);
}

static void expect_status(struct fixture *fx, const char *path, const char *body, long status,
                          const char *detail)
{
    gdn_it_response_t res;

    gdn_it_call(&fx->client, "POST", path, body, &res);
    int ok = res.status == status &&
             (!detail || same_text(gdn_it_json_string(res.json, "detail", NULL), detail));
    CU_ASSERT(ok);
    if (!ok)
        show_mismatch(path, body, strlen(body), &res);
    fx->rejected++;
    gdn_it_response_free(&res);
}

static const char *const endpoints[] = {"/tasks", "/poll/complete", "/poll/register",
                                        "/poll/heartbeat"};
#define ENDPOINTS (sizeof(endpoints) / sizeof(endpoints[0]))

static void test_hostile__malformed_bodies_are_rejected_on_every_endpoint(void)
{
    static const char *const not_json[] = {
        "{\"task_type\": \"x\",",
        "{",
        "nul",
        "{'task_type':'x'}",
        "{\"a\":1}}",
        "",
        "{\"a\" 1}",
        "[1,2,",
        "\"unterminated",
        "{\"a\":01}",
        "{\"a\":NaN}",
    };
    static const char *const not_object[] = {"[1,2,3]", "\"text\"", "42", "null", "true", "[]"};
    struct fixture fx;

    setup_fixture(&fx, NULL);
    for (size_t e = 0; e < ENDPOINTS; e++) {
        for (size_t i = 0; i < sizeof(not_json) / sizeof(not_json[0]); i++)
            expect_422_text(&fx, endpoints[e], not_json[i], NULL);
        for (size_t i = 0; i < sizeof(not_object) / sizeof(not_object[0]); i++)
            expect_422_text(&fx, endpoints[e], not_object[i], NULL);
        expect_422(&fx, endpoints[e], "{\"a\":\"\0\"}", 9, NULL);
    }
    expect_unchanged(&fx);
    printf("  %d malformed bodies rejected on %zu endpoints\n", fx.rejected, ENDPOINTS);
    teardown_fixture(&fx);
}

static void test_hostile__missing_fields_and_wrong_types_are_rejected(void)
{
    static const char *const task_cases[][2] = {
        {"{}", "task_type"},
        {"{\"role\":\"archivist\"}", "task_type"},
        {"{\"task_type\":5}", "task_type"},
        {"{\"task_type\":null}", "task_type"},
        {"{\"task_type\":[\"x\"]}", "task_type"},
        {"{\"task_type\":\"x\",\"priority\":\"high\"}", "priority"},
        {"{\"task_type\":\"x\",\"priority\":1.5}", "priority"},
        {"{\"task_type\":\"x\",\"priority\":null}", "priority"},
        {"{\"task_type\":\"x\",\"input_data\":[1]}", "input_data"},
        {"{\"task_type\":\"x\",\"input_data\":\"text\"}", "input_data"},
        {"{\"task_type\":\"x\",\"context_enabled\":\"maybe\"}", "context_enabled"},
        {"{\"task_type\":\"x\",\"context_limit\":{}}", "context_limit"},
        {"{\"task_type\":\"x\",\"role\":[]}", "role"},
        {"{\"task_type\":\"x\",\"project_id\":7}", "project_id"},
    };
    static const char *const worker_cases[][3] = {
        {"/poll/register", "{}", "worker_id"},
        {"/poll/register", "{\"capabilities\":[\"archivist\"]}", "worker_id"},
        {"/poll/register", "{\"worker_id\":5}", "worker_id"},
        {"/poll/register", "{\"worker_id\":\"w\",\"capabilities\":\"archivist\"}", "capabilities"},
        {"/poll/register", "{\"worker_id\":\"w\",\"capabilities\":[1]}", "capabilities"},
        {"/poll/register", "{\"worker_id\":\"w\",\"capabilities\":{\"a\":1}}", "capabilities"},
        {"/poll/heartbeat", "{}", "worker_id"},
        {"/poll/heartbeat", "{\"worker_id\":[\"baseline-worker\"]}", "worker_id"},
        {"/poll/heartbeat", "{\"worker_id\":{\"id\":\"baseline-worker\"}}", "worker_id"},
        {"/poll/heartbeat", "{\"worker_id\":null}", "worker_id"},
        {"/poll/complete", "{}", "task_id"},
        {"/poll/complete", "{\"task_id\":123}", "task_id"},
        {"/poll/complete", "{\"task_id\":null,\"result\":1}", "task_id"},
    };
    struct fixture fx;
    char body[512];

    setup_fixture(&fx, NULL);
    for (size_t i = 0; i < sizeof(task_cases) / sizeof(task_cases[0]); i++)
        expect_422_text(&fx, "/tasks", task_cases[i][0], task_cases[i][1]);
    for (size_t i = 0; i < sizeof(worker_cases) / sizeof(worker_cases[0]); i++)
        expect_422_text(&fx, worker_cases[i][0], worker_cases[i][1], worker_cases[i][2]);

    /* The id is real and claimed: a server that acted before validating would change it. */
    snprintf(body, sizeof(body), "{\"task_id\":\"%s\",\"status\":7}", fx.claimed);
    expect_422_text(&fx, "/poll/complete", body, "status");
    snprintf(body, sizeof(body), "{\"task_id\":\"%s\",\"observation_id\":5}", fx.claimed);
    expect_422_text(&fx, "/poll/complete", body, "observation_id");

    /* Two problems give two entries. */
    expect_422_text(&fx, "/tasks", "{\"task_type\":5,\"priority\":\"x\"}", "task_type");
    expect_422_text(&fx, "/tasks", "{\"task_type\":5,\"priority\":\"x\"}", "priority");

    expect_unchanged(&fx);
    printf("  %d bodies with missing or mistyped fields rejected\n", fx.rejected);
    teardown_fixture(&fx);
}

static void test_hostile__out_of_range_numbers_are_rejected(void)
{
    static const char *const cases[][2] = {
        {"{\"task_type\":\"x\",\"priority\":1e400}", "priority"},
        {"{\"task_type\":\"x\",\"priority\":-1e400}", "priority"},
        {"{\"task_type\":\"x\",\"priority\":1180591620717411303424}", "priority"},
        {"{\"task_type\":\"x\",\"priority\":-1180591620717411303424}", "priority"},
        {"{\"task_type\":\"x\",\"priority\":99999999999999999999999999999999999999}", "priority"},
        {"{\"task_type\":\"x\",\"context_limit\":1180591620717411303424}", "context_limit"},
        {"{\"task_type\":\"x\",\"context_limit\":1e400}", "context_limit"},
    };
    struct fixture fx;

    setup_fixture(&fx, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_422_text(&fx, "/tasks", cases[i][0], cases[i][1]);
    expect_unchanged(&fx);
    printf("  %d out-of-range numbers rejected\n", fx.rejected);
    teardown_fixture(&fx);
}

static void test_hostile__invalid_utf8_is_rejected_on_every_endpoint(void)
{
    static const char *const bad_strings[] = {
        "\xff", "ab\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf8\x88\x80\x80\x80", "ok\x80"};
    /* Each body is a prefix, the bad string, and a suffix, posted to the path beside it. */
    static const char *const templates[][3] = {
        {"/tasks", "{\"task_type\":\"", "\"}"},
        {"/tasks", "{\"task_type\":\"x\",\"input_data\":{\"k\":\"", "\"}}"},
        {"/poll/complete", "{\"task_id\":\"", "\"}"},
        {"/poll/register", "{\"worker_id\":\"", "\",\"capabilities\":[]}"},
        {"/poll/heartbeat", "{\"worker_id\":\"", "\"}"},
    };
    struct fixture fx;
    char body[256];

    setup_fixture(&fx, NULL);
    for (size_t t = 0; t < sizeof(templates) / sizeof(templates[0]); t++) {
        for (size_t i = 0; i < sizeof(bad_strings) / sizeof(bad_strings[0]); i++) {
            snprintf(body, sizeof(body), "%s%s%s", templates[t][1], bad_strings[i],
                     templates[t][2]);
            expect_422_text(&fx, templates[t][0], body, NULL);
        }
    }
    expect_unchanged(&fx);
    printf("  %d bodies with invalid UTF-8 rejected\n", fx.rejected);
    teardown_fixture(&fx);
}

/* Builds `prefix` + `depth` opening brackets + `depth` closing ones + `suffix`. */
static char *nested_arrays(const char *prefix, size_t depth, const char *suffix)
{
    size_t prefix_len = strlen(prefix), suffix_len = strlen(suffix);
    char *body = malloc(prefix_len + 2 * depth + suffix_len + 1);

    CU_ASSERT_FATAL(body != NULL);
    memcpy(body, prefix, prefix_len);
    memset(body + prefix_len, '[', depth);
    memset(body + prefix_len + depth, ']', depth);
    memcpy(body + prefix_len + 2 * depth, suffix, suffix_len + 1);
    return body;
}

static size_t array_depth(yajl_val v)
{
    size_t depth = 0;

    while (YAJL_IS_ARRAY(v)) {
        depth++;
        v = gdn_it_json_at(v, 0);
    }
    return depth;
}

/*
 * Creates a task whose input_data nests `depth` arrays. The server may refuse it (4xx), or
 * store it and give it back intact; either way it keeps answering. Returns 1 if stored.
 */
static int create_deep_task(struct fixture *fx, size_t depth)
{
    char *body = nested_arrays("{\"task_type\":\"deep\",\"input_data\":{\"x\":", depth, "}}");
    gdn_it_response_t res;
    int stored = 0;

    gdn_it_call(&fx->client, "POST", "/tasks", body, &res);
    printf("  %zu-deep input_data: %ld\n", depth, res.status);
    CU_ASSERT(res.status == 200 || (res.status >= 400 && res.status < 500));
    const char *id = gdn_it_json_string(res.json, "task_id", NULL);
    if (res.status == 200 && id) {
        char path[128];
        gdn_it_response_t task;
        snprintf(path, sizeof(path), "/tasks/%s", id);
        gdn_it_call(&fx->client, "GET", path, NULL, &task);
        CU_ASSERT_EQUAL(task.status, 200);
        CU_ASSERT_EQUAL(array_depth(gdn_it_json_get(task.json, "input_data", "x", NULL)), depth);
        gdn_it_response_free(&task);
        stored = 1;
    }
    gdn_it_response_free(&res);
    free(body);
    return stored;
}

static void test_hostile__deep_nesting_neither_crashes_nor_corrupts(void)
{
    enum { DEPTH = 1000, VERY_DEEP = 100000 };
    struct fixture fx;
    char prefix[256];

    setup_fixture(&fx, NULL);

    /* Wrong types at depth: a server may refuse the nesting itself or the type it finds. */
    char *body = nested_arrays("{\"worker_id\":\"w\",\"capabilities\":", DEPTH, "}");
    expect_422_text(&fx, "/poll/register", body, NULL);
    free(body);
    body = nested_arrays("{\"worker_id\":", DEPTH, "}");
    expect_422_text(&fx, "/poll/heartbeat", body, NULL);
    free(body);
    snprintf(prefix, sizeof(prefix), "{\"task_id\":\"%s\",\"observation_id\":", fx.claimed);
    body = nested_arrays(prefix, DEPTH, "}");
    expect_422_text(&fx, "/poll/complete", body, NULL);
    free(body);
    /* A deep result for an unknown task: refused as too deep (422) or not found (404). */
    body = nested_arrays("{\"task_id\":\"00000000-0000-4000-8000-000000000000\",\"result\":", DEPTH,
                         "}");
    gdn_it_response_t res;
    gdn_it_call(&fx.client, "POST", "/poll/complete", body, &res);
    CU_ASSERT(res.status == 404 || valid_422(&res, NULL));
    gdn_it_response_free(&res);
    fx.rejected++;
    free(body);
    expect_unchanged(&fx);

    int stored = create_deep_task(&fx, DEPTH);
    stored += create_deep_task(&fx, VERY_DEEP);
    CU_ASSERT_EQUAL(gdn_it_stat(&fx.client, "pending_tasks"), fx.before.counts[0] + stored);
    CU_ASSERT_EQUAL(gdn_it_stat(&fx.client, "processing_tasks"), fx.before.counts[1]);

    printf("  %d deep bodies rejected, %d deep tasks stored\n", fx.rejected, stored);
    teardown_fixture(&fx);
}

static void test_hostile__unknown_task_ids_on_complete_are_not_found(void)
{
    static const char *const ids[] = {
        "not-a-uuid",
        "",
        "../../etc/passwd",
        "task:00000000-0000-4000-8000-000000000000",
        "00000000-0000-4000-8000-000000000000",
        "' OR 1=1 --",
        "%00",
        "\\u0000",
    };
    struct fixture fx;
    char body[512];

    setup_fixture(&fx, NULL);
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        snprintf(body, sizeof(body), "{\"task_id\":\"%s\",\"result\":\"x\"}", ids[i]);
        expect_status(&fx, "/poll/complete", body, 404, "Task not found");
    }
    /* Near misses of the claimed task's id must not reach it. */
    snprintf(body, sizeof(body), "{\"task_id\":\"%s \",\"result\":\"x\"}", fx.claimed);
    expect_status(&fx, "/poll/complete", body, 404, "Task not found");
    snprintf(body, sizeof(body), "{\"task_id\":\"%s\\u0000x\",\"result\":\"x\"}", fx.claimed);
    expect_status(&fx, "/poll/complete", body, 404, "Task not found");

    char *long_id = malloc(20002);
    CU_ASSERT_FATAL(long_id != NULL);
    memcpy(long_id, "{\"task_id\":\"", 12);
    memset(long_id + 12, 'a', 19984);
    memcpy(long_id + 19996, "\"}", 3);
    expect_status(&fx, "/poll/complete", long_id, 404, "Task not found");
    free(long_id);

    expect_unchanged(&fx);
    printf("  %d unknown or malformed task ids answered 404\n", fx.rejected);
    teardown_fixture(&fx);
}

/* Names the protocol a response came over, for messages. */
static const char *version_name(int version)
{
    return version == 20 ? "2" : version == 11 ? "1.1" : "(no answer)";
}

/*
 * Sends an oversized body. One the server reads (read_whole) must get the API's JSON 413. One
 * past that is refused by h2o before it is read whole: a 413 of its own on HTTP/1.1, and on
 * HTTP/2 a 413 or a reset of the stream. Either way the server serves on, as the requests that
 * follow show.
 */
static void send_huge(struct fixture *fx, gdn_it_client_t *client, const char *path,
                      const char *body, size_t len, int read_whole)
{
    gdn_it_response_t res;

    gdn_it_call_raw(client, "POST", path, body, len, NULL, &res);
    int json_413 = res.status == 413 && same_text(gdn_it_json_string(res.json, "detail", NULL),
                                                  "Request body too large");
    int ok = read_whole ? json_413
                        : res.status == 413 || (client->proto == GDN_IT_HTTP2 && res.status == 0 &&
                                                res.code == CURLE_RECV_ERROR);
    CU_ASSERT(ok);
    if (!ok)
        fprintf(stderr, "  %zu-byte POST %s over HTTP/%s -> %ld (curl %d: %s) %.200s\n", len, path,
                version_name(res.version), res.status, (int)res.code, curl_easy_strerror(res.code),
                res.body ? res.body : "");
    fx->rejected++;
    gdn_it_response_free(&res);
}

/* A JSON body of exactly `len` bytes that would be a valid request but for its size. */
static char *oversized_body(size_t len)
{
    static const char head[] =
        "{\"task_type\":\"huge\",\"worker_id\":\"w\",\"input_data\":{\"b\":\"";
    char *body = malloc(len + 1);

    CU_ASSERT_FATAL(body != NULL);
    memset(body, 'a', len);
    memcpy(body, head, sizeof(head) - 1);
    memcpy(body + len - 3, "\"}}", 4);
    return body;
}

static void test_hostile__oversized_bodies_get_413(void)
{
    /* Twice the limit, which the server reads and answers with the JSON 413, and ten times it,
     * which h2o refuses before reading it whole. */
    static const size_t sizes[] = {2u * 1024 * 1024, HUGE_BODY_BYTES};
    struct fixture fx;
    gdn_it_client_t h2;

    setup_fixture(&fx, NULL);
    CU_ASSERT_FATAL(gdn_it_client_open(&h2, &fx.srv, GDN_IT_HTTP2) == 0);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *body = oversized_body(sizes[i]);
        for (size_t e = 0; e < ENDPOINTS; e++) {
            send_huge(&fx, &fx.client, endpoints[e], body, sizes[i], i == 0);
            send_huge(&fx, &h2, endpoints[e], body, sizes[i], i == 0);
        }
        free(body);
    }
    gdn_it_client_close(&h2);
    expect_unchanged(&fx);
    printf("  %d bodies of 2 and 10 MiB sent over HTTP/1.1 and HTTP/2\n", fx.rejected);
    teardown_fixture(&fx);
}

static char *big_task_body(void)
{
    static const char head[] = "{\"task_type\":\"big\",\"input_data\":{\"blob\":\"";
    char *body = malloc(BIG_TASK_BYTES + 1);

    CU_ASSERT_FATAL(body != NULL);
    memset(body, 'b', BIG_TASK_BYTES);
    memcpy(body, head, sizeof(head) - 1);
    memcpy(body + BIG_TASK_BYTES - 3, "\"}}", 4);
    return body;
}

/* Creates big tasks until one is refused with 503; returns how many were accepted. */
static int fill_journal(struct fixture *fx, const char *body, int *refused)
{
    enum { ATTEMPTS = 100 };
    int accepted = 0;

    *refused = 0;
    for (int i = 0; i < ATTEMPTS && !*refused; i++) {
        gdn_it_response_t res;
        gdn_it_call(&fx->client, "POST", "/tasks", body, &res);
        if (res.status == 200) {
            accepted++;
        } else {
            *refused = res.status == 503;
            CU_ASSERT_EQUAL(res.status, 503);
            CU_ASSERT(gdn_it_json_get(res.json, "detail", NULL) != NULL);
            printf("  request %d answered %ld: %.200s\n", i + 1, res.status,
                   res.body ? res.body : "");
            if (res.status != 503)
                break;
        }
        gdn_it_response_free(&res);
    }
    return accepted;
}

static void test_hostile__full_journal_answers_503_and_keeps_nothing(void)
{
    struct fixture fx;
    int refused;

    setup_fixture(&fx, "journal_map_mb = 16\nmax_body_bytes = 1048576\n");
    long long baseline_pending = fx.before.counts[0];
    char *body = big_task_body();

    int accepted = fill_journal(&fx, body, &refused);
    printf("  %d tasks of %u KiB accepted before a 503\n", accepted, BIG_TASK_BYTES / 1024);
    CU_ASSERT(refused);
    CU_ASSERT_EQUAL(gdn_it_stat(&fx.client, "pending_tasks"), baseline_pending + accepted);

    gdn_it_response_t res;
    gdn_it_call(&fx.client, "GET", "/tasks", NULL, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    size_t listed = gdn_it_json_length(gdn_it_json_get(res.json, "tasks", NULL));
    long long expected_listed = baseline_pending + accepted;
    CU_ASSERT_EQUAL((long long)listed, expected_listed < 50 ? expected_listed : 50);
    gdn_it_response_free(&res);

    gdn_it_exit_t ex;
    CU_ASSERT_EQUAL(gdn_it_server_stop(&fx.srv, SIGTERM, 10.0, &ex), 0);
    CU_ASSERT(ex.exited && ex.code == 0);
    CU_ASSERT_FATAL(gdn_it_server_configf(&fx.srv, "journal_map_mb = 64\n"
                                                   "max_body_bytes = 1048576\n") == 0);
    CU_ASSERT_FATAL(gdn_it_server_start(&fx.srv) == 0);

    char id[GDN_IT_ID_SIZE];
    CU_ASSERT_EQUAL(gdn_it_create_task(&fx.client, "{\"task_type\":\"after\"}", id), 200);
    CU_ASSERT_EQUAL(gdn_it_create_task(&fx.client, body, id), 200);
    CU_ASSERT_EQUAL(gdn_it_stat(&fx.client, "pending_tasks"), baseline_pending + accepted + 2);
    printf("  after a restart with a 64 MiB map: 2 more tasks accepted\n");

    free(body);
    teardown_fixture(&fx);
}

static CU_TestInfo hostile_tests[] = {
    {"Invalid JSON and non-object bodies get 422 on every endpoint and change nothing",
     test_hostile__malformed_bodies_are_rejected_on_every_endpoint},
    {"Missing fields and wrong types get 422 naming the field and change nothing",
     test_hostile__missing_fields_and_wrong_types_are_rejected},
    {"Numbers beyond 64 bits get 422 and change nothing",
     test_hostile__out_of_range_numbers_are_rejected},
    {"Invalid UTF-8 inside JSON strings gets 422 on every endpoint and changes nothing",
     test_hostile__invalid_utf8_is_rejected_on_every_endpoint},
    {"Deeply nested arrays neither crash the server nor corrupt its state",
     test_hostile__deep_nesting_neither_crashes_nor_corrupts},
    {"Completing a malformed or unknown task id answers 404 and changes nothing",
     test_hostile__unknown_task_ids_on_complete_are_not_found},
    {"2 MiB bodies get the JSON 413 on every endpoint, 10 MiB ones are refused unread",
     test_hostile__oversized_bodies_get_413},
    {"A full journal answers 503, keeps nothing of the refused request, and recovers when grown",
     test_hostile__full_journal_answers_503_and_keeps_nothing},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo gdn_test_suites[] = {
    {.pName = "Hostile input",
     .pInitFunc = init_suite,
     .pCleanupFunc = cleanup_suite,
     .pTests = hostile_tests},
    CU_SUITE_INFO_NULL,
};
