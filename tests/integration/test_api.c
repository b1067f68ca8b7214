/*
 * Integration tests of the HTTP API (API.md sections 1 to 3) and of the program itself
 * (section 6). The API scenarios run twice, once over HTTP/1.1 and once over cleartext HTTP/2
 * with prior knowledge: the two suites share one table and differ only in their init function.
 */
#include <CUnit/CUnit.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cunit_main.h"
#include "harness.h"

/* The protocol of the suite being run, set by the suite's init function. */
static gdn_it_proto_t suite_proto = GDN_IT_HTTP1;

/* What one task contributes to the claim order. */
struct task_key {
    char id[GDN_IT_ID_SIZE];
    long long priority;
    char created_at[40];
};

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

static int init_program(void)
{
    suite_proto = GDN_IT_HTTP1;
    return gdn_it_global_init();
}

static int cleanup_suite(void)
{
    curl_global_cleanup();
    return 0;
}

/* Starts a server (with `config`, which may be NULL) and opens a client of the suite's protocol. */
static void start_server(gdn_it_server_t *srv, gdn_it_client_t *client, const char *config)
{
    CU_ASSERT_FATAL(gdn_it_server_init(srv) == 0);
    if (config)
        CU_ASSERT_FATAL(gdn_it_server_configf(srv, "%s", config) == 0);
    CU_ASSERT_FATAL(gdn_it_server_start(srv) == 0);
    CU_ASSERT_FATAL(gdn_it_client_open(client, srv, suite_proto) == 0);
}

static void stop_server(gdn_it_server_t *srv, gdn_it_client_t *client)
{
    gdn_it_client_close(client);
    gdn_it_server_cleanup(srv);
}

/* Sends a request and checks that it really travelled over the suite's protocol. */
static void call(gdn_it_client_t *client, const char *method, const char *path, const char *body,
                 gdn_it_response_t *res)
{
    int rc = gdn_it_call(client, method, path, body, res);

    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(res->version, client->proto == GDN_IT_HTTP1 ? 11 : 20);
}

static void call_with_headers(gdn_it_client_t *client, const char *method, const char *path,
                              const char *const *headers, gdn_it_response_t *res)
{
    int rc = gdn_it_call_raw(client, method, path, NULL, 0, headers, res);

    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(res->version, client->proto == GDN_IT_HTTP1 ? 11 : 20);
}

static int str_equal(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* Checks the `2026-01-17T12:34:56.123456` shape: UTC, microseconds, no zone suffix. */
static int is_timestamp(const char *s)
{
    static const char pattern[] = "dddd-dd-ddTdd:dd:dd.dddddd";

    if (!s || strlen(s) != sizeof(pattern) - 1)
        return 0;
    for (size_t i = 0; pattern[i]; i++) {
        int ok = pattern[i] == 'd' ? (s[i] >= '0' && s[i] <= '9') : s[i] == pattern[i];
        if (!ok)
            return 0;
    }
    return 1;
}

/* Checks a lower-case UUID version 4 string. */
static int is_uuid4(const char *s)
{
    if (!s || strlen(s) != 36)
        return 0;
    for (size_t i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        int ok =
            dash ? s[i] == '-' : ((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'));
        if (!ok)
            return 0;
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static int is_json_type(const gdn_it_response_t *res)
{
    char type[128];

    return gdn_it_header(res, "Content-Type", type, sizeof(type)) &&
           strstr(type, "application/json") != NULL;
}

/* GET /tasks/{id}; the caller frees the response. */
static void get_task(gdn_it_client_t *client, const char *id, gdn_it_response_t *res)
{
    char path[128];

    snprintf(path, sizeof(path), "/tasks/%s", id);
    call(client, "GET", path, NULL, res);
    CU_ASSERT_EQUAL(res->status, 200);
}

static void create_checked(gdn_it_client_t *client, const char *body, char *id)
{
    CU_ASSERT_EQUAL(gdn_it_create_task(client, body, id), 200);
    CU_ASSERT(is_uuid4(id));
}

static void fetch_key(gdn_it_client_t *client, const char *id, struct task_key *key)
{
    gdn_it_response_t res;

    get_task(client, id, &res);
    snprintf(key->id, sizeof(key->id), "%s", id);
    key->priority = -1;
    CU_ASSERT_EQUAL(gdn_it_json_integer(res.json, &key->priority, "priority", NULL), 0);
    const char *created = gdn_it_json_string(res.json, "created_at", NULL);
    CU_ASSERT(is_timestamp(created));
    snprintf(key->created_at, sizeof(key->created_at), "%s", created ? created : "");
    gdn_it_response_free(&res);
}

/* Claim order: highest priority, then oldest created_at (fixed-width text sorts by time), id. */
static int compare_claim_order(const void *a, const void *b)
{
    const struct task_key *x = a;
    const struct task_key *y = b;

    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    int by_time = strcmp(x->created_at, y->created_at);
    return by_time ? by_time : strcmp(x->id, y->id);
}

/* Creates one task per priority, roles rotating over three, and sorts them in claim order. */
static void create_sorted(gdn_it_client_t *client, const char *type, const int *priorities,
                          int count, struct task_key *keys)
{
    char body[256];

    for (int i = 0; i < count; i++) {
        char id[GDN_IT_ID_SIZE];
        snprintf(body, sizeof(body), "{\"task_type\":\"%s\",\"role\":\"r%d\",\"priority\":%d}",
                 type, i % 3, priorities[i]);
        create_checked(client, body, id);
        fetch_key(client, id, &keys[i]);
    }
    qsort(keys, (size_t)count, sizeof(keys[0]), compare_claim_order);
}

static void expect_no_task(gdn_it_client_t *client, const char *path)
{
    gdn_it_response_t res;
    long long retry = 0;

    call(client, "GET", path, NULL, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    CU_ASSERT(YAJL_IS_NULL(gdn_it_json_get(res.json, "task", NULL)));
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "message", NULL), "No tasks available"));
    CU_ASSERT(gdn_it_json_integer(res.json, &retry, "retry_after", NULL) == 0 && retry == 30);
    gdn_it_response_free(&res);
}

static void expect_detail(const gdn_it_response_t *res, long status, const char *detail)
{
    CU_ASSERT_EQUAL(res->status, status);
    CU_ASSERT(str_equal(gdn_it_json_string(res->json, "detail", NULL), detail));
    if (res->status != status || !str_equal(gdn_it_json_string(res->json, "detail", NULL), detail))
        fprintf(stderr, "  expected %ld %s, got %ld %s\n", status, detail, res->status,
                res->body ? res->body : "(no body)");
}

static void test_api__readme_examples_round_trip(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;
    gdn_it_response_t res;
    char id[GDN_IT_ID_SIZE];
    char body[256];

    start_server(&srv, &client, NULL);

    call(&client, "POST", "/tasks",
         "{\"task_type\":\"summarize\",\"role\":\"archivist\","
         "\"input_data\":{\"text\":\"Hello world\"},\"priority\":5}",
         &res);
    CU_ASSERT_EQUAL(res.status, 200);
    CU_ASSERT(is_json_type(&res));
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "status", NULL), "created"));
    const char *created = gdn_it_json_string(res.json, "task_id", NULL);
    snprintf(id, sizeof(id), "%s", created ? created : "");
    CU_ASSERT(is_uuid4(id));
    gdn_it_response_free(&res);

    call(&client, "GET", "/poll/next?worker_id=test-worker&roles=archivist", NULL, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "task", "id", NULL), id));
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "task", "status", NULL), "processing"));
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "task", "assigned_to", NULL), "test-worker"));
    CU_ASSERT(is_timestamp(gdn_it_json_string(res.json, "task", "assigned_at", NULL)));
    gdn_it_response_free(&res);

    snprintf(body, sizeof(body), "{\"task_id\":\"%s\",\"result\":{\"output\":\"Done\"}}", id);
    call(&client, "POST", "/poll/complete", body, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "status", NULL), "completed"));
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "task_id", NULL), id));
    gdn_it_response_free(&res);

    get_task(&client, id, &res);
    CU_ASSERT(is_json_type(&res));
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "id", NULL), id));
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "status", NULL), "completed"));
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "result", "output", NULL), "Done"));
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "assigned_to", NULL), "test-worker"));
    CU_ASSERT(is_timestamp(gdn_it_json_string(res.json, "completed_at", NULL)));
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "input_data", "text", NULL), "Hello world"));
    gdn_it_response_free(&res);

    printf("  create, claim, complete, read of task %s\n", id);
    stop_server(&srv, &client);
}

static void check_task_fields(yajl_val task, const char *role, long long priority,
                              const char *project, int context_enabled, long long context_limit)
{
    long long value = -1;

    CU_ASSERT(str_equal(gdn_it_json_string(task, "role", NULL), role));
    CU_ASSERT(gdn_it_json_integer(task, &value, "priority", NULL) == 0 && value == priority);
    CU_ASSERT(str_equal(gdn_it_json_string(task, "project_id", NULL), project));
    yajl_val enabled = gdn_it_json_get(task, "context_enabled", NULL);
    CU_ASSERT(context_enabled ? YAJL_IS_TRUE(enabled) : YAJL_IS_FALSE(enabled));
    value = -1;
    CU_ASSERT(gdn_it_json_integer(task, &value, "context_limit", NULL) == 0 &&
              value == context_limit);
    CU_ASSERT(str_equal(gdn_it_json_string(task, "status", NULL), "pending"));
    CU_ASSERT(is_timestamp(gdn_it_json_string(task, "created_at", NULL)));
    CU_ASSERT(is_timestamp(gdn_it_json_string(task, "updated_at", NULL)));
}

static void test_api__task_create_defaults_are_visible(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;
    gdn_it_response_t res;
    char id[GDN_IT_ID_SIZE];

    start_server(&srv, &client, NULL);

    create_checked(&client, "{\"task_type\":\"minimal\"}", id);
    get_task(&client, id, &res);
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "id", NULL), id));
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "task_type", NULL), "minimal"));
    yajl_val input = gdn_it_json_get(res.json, "input_data", NULL);
    CU_ASSERT(YAJL_IS_OBJECT(input) && input->u.object.len == 0);
    check_task_fields(res.json, "archivist", 5, "default", 1, 10);
    gdn_it_response_free(&res);

    create_checked(&client,
                   "{\"task_type\":\"explicit\",\"role\":\"coder\",\"input_data\":{\"a\":[1,2,"
                   "{\"b\":null}],\"s\":\"x\\u00e9\"},\"priority\":-3,\"project_id\":\"p1\","
                   "\"context_enabled\":false,\"context_limit\":0}",
                   id);
    get_task(&client, id, &res);
    CU_ASSERT_EQUAL(gdn_it_json_length(gdn_it_json_get(res.json, "input_data", "a", NULL)), 3);
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "input_data", "s", NULL), "x\xc3\xa9"));
    check_task_fields(res.json, "coder", -3, "p1", 0, 0);
    gdn_it_response_free(&res);

    printf("  checked the defaults and an explicit task\n");
    stop_server(&srv, &client);
}

static void test_api__claims_follow_priority_then_age_then_id(void)
{
    static const int priorities[] = {1, 9, 5, 9, 5, 1, 7};
    enum { COUNT = sizeof(priorities) / sizeof(priorities[0]) };
    gdn_it_server_t srv;
    gdn_it_client_t client;
    struct task_key keys[COUNT];

    start_server(&srv, &client, NULL);
    create_sorted(&client, "order", priorities, COUNT, keys);

    for (int i = 0; i < COUNT; i++) {
        char id[GDN_IT_ID_SIZE];
        CU_ASSERT_EQUAL(gdn_it_poll(&client, "order-worker", NULL, id), 200);
        CU_ASSERT_STRING_EQUAL(id, keys[i].id);
    }
    expect_no_task(&client, "/poll/next?worker_id=order-worker");

    printf("  %d tasks claimed in priority, age, id order\n", COUNT);
    stop_server(&srv, &client);
}

static void expect_claim(gdn_it_client_t *client, const char *roles, const char *expected)
{
    char id[GDN_IT_ID_SIZE];

    CU_ASSERT_EQUAL(gdn_it_poll(client, "role-worker", roles, id), 200);
    CU_ASSERT_STRING_EQUAL(id, expected);
}

static void test_api__roles_filter_the_claim(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;
    char alpha_low[GDN_IT_ID_SIZE], beta[GDN_IT_ID_SIZE], third[GDN_IT_ID_SIZE];
    char alpha_high[GDN_IT_ID_SIZE];

    start_server(&srv, &client, NULL);
    create_checked(&client, "{\"task_type\":\"t\",\"role\":\"alpha\",\"priority\":1}", alpha_low);
    create_checked(&client, "{\"task_type\":\"t\",\"role\":\"beta\",\"priority\":9}", beta);
    create_checked(&client, "{\"task_type\":\"t\",\"role\":\"gamma\",\"priority\":5}", third);
    create_checked(&client, "{\"task_type\":\"t\",\"role\":\"alpha\",\"priority\":2}", alpha_high);

    expect_claim(&client, "alpha", alpha_high);
    expect_claim(&client, "delta", "");
    expect_claim(&client, "alpha,gamma", third);
    expect_claim(&client, "", beta);
    expect_claim(&client, "beta", "");
    expect_claim(&client, NULL, alpha_low);
    expect_no_task(&client, "/poll/next?worker_id=role-worker");

    printf("  single role, unknown role, two roles, empty and absent roles\n");
    stop_server(&srv, &client);
}

static void test_api__task_list_shows_pending_in_claim_order(void)
{
    enum { COUNT = 60, LISTED = 50, CLAIMED = 3 };
    gdn_it_server_t srv;
    gdn_it_client_t client;
    gdn_it_response_t res;
    struct task_key keys[COUNT];
    int priorities[COUNT];

    for (int i = 0; i < COUNT; i++)
        priorities[i] = (i * 5) % 7;
    start_server(&srv, &client, NULL);
    create_sorted(&client, "list", priorities, COUNT, keys);

    call(&client, "GET", "/tasks", NULL, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    yajl_val tasks = gdn_it_json_get(res.json, "tasks", NULL);
    CU_ASSERT_EQUAL(gdn_it_json_length(tasks), LISTED);
    for (size_t i = 0; i < gdn_it_json_length(tasks) && i < LISTED; i++) {
        yajl_val task = gdn_it_json_at(tasks, i);
        CU_ASSERT(str_equal(gdn_it_json_string(task, "id", NULL), keys[i].id));
        CU_ASSERT(str_equal(gdn_it_json_string(task, "status", NULL), "pending"));
    }
    gdn_it_response_free(&res);

    for (int i = 0; i < CLAIMED; i++) {
        char id[GDN_IT_ID_SIZE];
        CU_ASSERT_EQUAL(gdn_it_poll(&client, "list-worker", NULL, id), 200);
    }
    call(&client, "GET", "/tasks", NULL, &res);
    tasks = gdn_it_json_get(res.json, "tasks", NULL);
    CU_ASSERT_EQUAL(gdn_it_json_length(tasks), LISTED);
    CU_ASSERT(
        str_equal(gdn_it_json_string(gdn_it_json_at(tasks, 0), "id", NULL), keys[CLAIMED].id));
    CU_ASSERT(str_equal(gdn_it_json_string(gdn_it_json_at(tasks, LISTED - 1), "id", NULL),
                        keys[CLAIMED + LISTED - 1].id));
    gdn_it_response_free(&res);

    printf("  %d created, %d listed, %d claimed then listed again\n", COUNT, LISTED, CLAIMED);
    stop_server(&srv, &client);
}

/* Finds worker `id` in GET /poll/workers; returns 1 when listed, after checking its shape. */
static int worker_listed(gdn_it_client_t *client, const char *id)
{
    gdn_it_response_t res;
    int found = 0;

    call(client, "GET", "/poll/workers", NULL, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    yajl_val workers = gdn_it_json_get(res.json, "workers", NULL);
    CU_ASSERT(YAJL_IS_ARRAY(workers));
    for (size_t i = 0; i < gdn_it_json_length(workers); i++) {
        yajl_val w = gdn_it_json_at(workers, i);
        if (!str_equal(gdn_it_json_string(w, "worker_id", NULL), id))
            continue;
        found = 1;
        yajl_val caps = gdn_it_json_get(w, "capabilities", NULL);
        CU_ASSERT_EQUAL(gdn_it_json_length(caps), 2);
        CU_ASSERT(str_equal(YAJL_GET_STRING(gdn_it_json_at(caps, 0)), "archivist"));
        CU_ASSERT(str_equal(YAJL_GET_STRING(gdn_it_json_at(caps, 1)), "coder"));
        CU_ASSERT(is_timestamp(gdn_it_json_string(w, "registered_at", NULL)));
        CU_ASSERT(is_timestamp(gdn_it_json_string(w, "last_heartbeat", NULL)));
        CU_ASSERT(str_equal(gdn_it_json_string(w, "status", NULL), "active"));
    }
    gdn_it_response_free(&res);
    return found;
}

static void register_worker(gdn_it_client_t *client, const char *id)
{
    gdn_it_response_t res;
    char body[256];

    snprintf(body, sizeof(body),
             "{\"worker_id\":\"%s\",\"capabilities\":[\"archivist\",\"coder\"]}", id);
    call(client, "POST", "/poll/register", body, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "status", NULL), "registered"));
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "worker_id", NULL), id));
    gdn_it_response_free(&res);
}

static void expect_heartbeat(gdn_it_client_t *client, const char *id, const char *status)
{
    gdn_it_response_t res;
    char body[256];

    snprintf(body, sizeof(body), "{\"worker_id\":\"%s\"}", id);
    call(client, "POST", "/poll/heartbeat", body, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "status", NULL), status));
    gdn_it_response_free(&res);
}

static void test_api__workers_register_heartbeat_and_expire(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;

    start_server(&srv, &client, "worker_ttl_s = 1\n");

    register_worker(&client, "pi-1");
    expect_heartbeat(&client, "pi-1", "ok");
    expect_heartbeat(&client, "ghost-worker", "not_found");
    CU_ASSERT(worker_listed(&client, "pi-1"));
    CU_ASSERT_EQUAL(gdn_it_stat(&client, "active_workers"), 1);

    /* Past the one-second TTL the worker is no longer live, and no longer listed. */
    usleep(2500 * 1000);
    CU_ASSERT(!worker_listed(&client, "pi-1"));
    CU_ASSERT_EQUAL(gdn_it_stat(&client, "active_workers"), 0);

    register_worker(&client, "pi-2");
    CU_ASSERT(worker_listed(&client, "pi-2"));
    CU_ASSERT(!worker_listed(&client, "pi-1"));
    CU_ASSERT_EQUAL(gdn_it_stat(&client, "active_workers"), 1);

    printf("  2 registered, 1 heartbeat, 1 unknown heartbeat, 1 expired\n");
    stop_server(&srv, &client);
}

static void expect_stats(gdn_it_client_t *client, long long pending, long long processing,
                         long long completed, long long failed, long long workers)
{
    CU_ASSERT_EQUAL(gdn_it_stat(client, "pending_tasks"), pending);
    CU_ASSERT_EQUAL(gdn_it_stat(client, "processing_tasks"), processing);
    CU_ASSERT_EQUAL(gdn_it_stat(client, "completed_tasks"), completed);
    CU_ASSERT_EQUAL(gdn_it_stat(client, "failed_tasks"), failed);
    CU_ASSERT_EQUAL(gdn_it_stat(client, "active_workers"), workers);
}

/* Checks /health exactly and returns its version string in `version`. */
static void check_health(gdn_it_client_t *client, char *version, size_t size)
{
    gdn_it_response_t res;

    call(client, "GET", "/health", NULL, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "status", NULL), "ok"));
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "service", NULL), "garden-orchestrator"));
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "storage", NULL), "minio"));
    const char *v = gdn_it_json_string(res.json, "version", NULL);
    CU_ASSERT(v && *v);
    snprintf(version, size, "%s", v ? v : "");
    gdn_it_response_free(&res);
}

static void test_api__health_and_stats_report_counts(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;
    gdn_it_response_t res;
    char version[64];
    char ids[4][GDN_IT_ID_SIZE];

    start_server(&srv, &client, NULL);
    check_health(&client, version, sizeof(version));

    call(&client, "GET", "/stats", NULL, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "version", NULL), version));
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "storage", NULL), "minio"));
    CU_ASSERT(YAJL_IS_TRUE(gdn_it_json_get(res.json, "claude_mem_enabled", NULL)));
    long long dirty = -1;
    CU_ASSERT(gdn_it_json_integer(res.json, &dirty, "dirty_records", NULL) == 0 && dirty >= 0);
    gdn_it_response_free(&res);
    expect_stats(&client, 0, 0, 0, 0, 0);

    register_worker(&client, "stats-worker");
    for (int i = 0; i < 4; i++)
        create_checked(&client, "{\"task_type\":\"count\"}", ids[i]);
    expect_stats(&client, 4, 0, 0, 0, 1);

    char first[GDN_IT_ID_SIZE], second[GDN_IT_ID_SIZE];
    CU_ASSERT_EQUAL(gdn_it_poll(&client, "stats-worker", NULL, first), 200);
    CU_ASSERT_EQUAL(gdn_it_poll(&client, "stats-worker", NULL, second), 200);
    expect_stats(&client, 2, 2, 0, 0, 1);

    CU_ASSERT_EQUAL(gdn_it_complete(&client, first, "\"fine\"", NULL), 200);
    char body[256];
    snprintf(body, sizeof(body), "{\"task_id\":\"%s\",\"result\":null,\"status\":\"failed\"}",
             second);
    call(&client, "POST", "/poll/complete", body, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "status", NULL), "completed"));
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "task_id", NULL), second));
    gdn_it_response_free(&res);
    expect_stats(&client, 2, 0, 1, 1, 1);

    get_task(&client, second, &res);
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "status", NULL), "failed"));
    gdn_it_response_free(&res);
    get_task(&client, first, &res);
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "status", NULL), "completed"));
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "result", NULL), "fine"));
    gdn_it_response_free(&res);

    printf("  version %s; 4 created, 2 claimed, 1 completed, 1 failed\n", version);
    stop_server(&srv, &client);
}

/* Checks a 422 whose detail list has an entry for query parameter `name`. */
static void expect_missing_query(gdn_it_client_t *client, const char *path, const char *name)
{
    gdn_it_response_t res;
    int found = 0;

    call(client, "GET", path, NULL, &res);
    CU_ASSERT_EQUAL(res.status, 422);
    yajl_val detail = gdn_it_json_get(res.json, "detail", NULL);
    CU_ASSERT(gdn_it_json_length(detail) >= 1);
    for (size_t i = 0; i < gdn_it_json_length(detail); i++) {
        yajl_val entry = gdn_it_json_at(detail, i);
        yajl_val loc = gdn_it_json_get(entry, "loc", NULL);
        CU_ASSERT(gdn_it_json_string(entry, "type", NULL) != NULL);
        CU_ASSERT(gdn_it_json_string(entry, "msg", NULL) != NULL);
        found |= gdn_it_json_length(loc) == 2 &&
                 str_equal(YAJL_GET_STRING(gdn_it_json_at(loc, 0)), "query") &&
                 str_equal(YAJL_GET_STRING(gdn_it_json_at(loc, 1)), name);
    }
    CU_ASSERT(found);
    gdn_it_response_free(&res);
}

static void expect_call_detail(gdn_it_client_t *client, const char *method, const char *path,
                               const char *body, long status, const char *detail)
{
    gdn_it_response_t res;

    call(client, method, path, body, &res);
    expect_detail(&res, status, detail);
    gdn_it_response_free(&res);
}

static void test_api__errors_have_the_documented_shapes(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;

    start_server(&srv, &client, NULL);

    expect_call_detail(&client, "GET", "/no/such/path", NULL, 404, "Not Found");
    expect_call_detail(&client, "GET", "/tasks/00000000-0000-4000-8000-000000000000", NULL, 404,
                       "Task not found");
    expect_call_detail(&client, "DELETE", "/tasks", NULL, 405, "Method Not Allowed");
    expect_call_detail(&client, "PUT", "/health", "{}", 405, "Method Not Allowed");
    expect_call_detail(&client, "GET", "/poll/complete", NULL, 405, "Method Not Allowed");
    expect_call_detail(&client, "POST", "/poll/complete",
                       "{\"task_id\":\"00000000-0000-4000-8000-000000000000\"}", 404,
                       "Task not found");
    expect_missing_query(&client, "/poll/next", "worker_id");
    expect_missing_query(&client, "/poll/next?roles=archivist", "worker_id");
    CU_ASSERT_EQUAL(gdn_it_stat(&client, "pending_tasks"), 0);

    printf("  404, 405 and 422 answers checked\n");
    stop_server(&srv, &client);
}

static void expect_cors(const gdn_it_response_t *res, const char *origin)
{
    char value[256];

    CU_ASSERT(gdn_it_header(res, "Access-Control-Allow-Origin", value, sizeof(value)) &&
              strcmp(value, origin) == 0);
    CU_ASSERT(gdn_it_header(res, "Access-Control-Allow-Credentials", value, sizeof(value)) &&
              strcmp(value, "true") == 0);
    CU_ASSERT(gdn_it_header_has_token(res, "Vary", "Origin"));
}

static void preflight(gdn_it_client_t *client, const char *origin, gdn_it_response_t *res)
{
    char origin_header[256];

    snprintf(origin_header, sizeof(origin_header), "Origin: %s", origin);
    const char *headers[] = {origin_header, "Access-Control-Request-Method: POST",
                             "Access-Control-Request-Headers: Content-Type, X-Requested-With",
                             NULL};
    call_with_headers(client, "OPTIONS", "/tasks", headers, res);
}

static void simple_request(gdn_it_client_t *client, const char *origin, gdn_it_response_t *res)
{
    char origin_header[256];

    snprintf(origin_header, sizeof(origin_header), "Origin: %s", origin);
    const char *headers[] = {origin_header, NULL};
    call_with_headers(client, "GET", "/health", headers, res);
}

static void test_api__cors_allows_any_origin_by_default(void)
{
    static const char origin[] = "https://garden.example.org";
    gdn_it_server_t srv;
    gdn_it_client_t client;
    gdn_it_response_t res;
    char value[256];

    start_server(&srv, &client, NULL);

    simple_request(&client, origin, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    expect_cors(&res, origin);
    gdn_it_response_free(&res);

    const char *headers[] = {"Origin: https://garden.example.org", NULL};
    const char *body = "{\"task_type\":\"cors\"}";
    CU_ASSERT_EQUAL(gdn_it_call_raw(&client, "POST", "/tasks", body, strlen(body), headers, &res),
                    0);
    CU_ASSERT_EQUAL(res.status, 200);
    expect_cors(&res, origin);
    gdn_it_response_free(&res);

    preflight(&client, origin, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    expect_cors(&res, origin);
    CU_ASSERT(gdn_it_header_has_token(&res, "Access-Control-Allow-Methods", "POST"));
    CU_ASSERT(gdn_it_header_has_token(&res, "Access-Control-Allow-Headers", "Content-Type"));
    CU_ASSERT(gdn_it_header_has_token(&res, "Access-Control-Allow-Headers", "X-Requested-With"));
    CU_ASSERT(gdn_it_header(&res, "Access-Control-Max-Age", value, sizeof(value)) &&
              strcmp(value, "600") == 0);
    gdn_it_response_free(&res);
    CU_ASSERT_EQUAL(gdn_it_stat(&client, "pending_tasks"), 1);

    printf("  simple request, POST and preflight from %s\n", origin);
    stop_server(&srv, &client);
}

static void test_api__cors_origins_narrow_the_allowed_origins(void)
{
    static const char allowed[] = "https://allowed.example";
    static const char denied[] = "https://evil.example";
    gdn_it_server_t srv;
    gdn_it_client_t client;
    gdn_it_response_t res;
    char value[256];

    start_server(&srv, &client, "cors_origins = https://allowed.example\n");

    simple_request(&client, allowed, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    expect_cors(&res, allowed);
    gdn_it_response_free(&res);

    simple_request(&client, denied, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    CU_ASSERT(!gdn_it_header(&res, "Access-Control-Allow-Origin", value, sizeof(value)));
    CU_ASSERT(!gdn_it_header(&res, "Access-Control-Allow-Credentials", value, sizeof(value)));
    gdn_it_response_free(&res);

    preflight(&client, allowed, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    expect_cors(&res, allowed);
    gdn_it_response_free(&res);

    preflight(&client, denied, &res);
    CU_ASSERT_EQUAL(res.status, 400);
    CU_ASSERT(!gdn_it_header(&res, "Access-Control-Allow-Origin", value, sizeof(value)));
    gdn_it_response_free(&res);

    printf("  allowed and denied origins, simple and preflight\n");
    stop_server(&srv, &client);
}

static void test_api__h2c_upgrade_switches_to_http2(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;
    gdn_it_response_t res;

    CU_ASSERT_FATAL(gdn_it_server_init(&srv) == 0);
    CU_ASSERT_FATAL(gdn_it_server_start(&srv) == 0);
    CU_ASSERT_FATAL(gdn_it_client_open(&client, &srv, GDN_IT_H2C) == 0);

    CU_ASSERT_EQUAL(gdn_it_call(&client, "GET", "/health", NULL, &res), 0);
    CU_ASSERT_EQUAL(res.status, 200);
    CU_ASSERT_EQUAL(res.version, 20);
    CU_ASSERT(str_equal(gdn_it_json_string(res.json, "status", NULL), "ok"));
    gdn_it_response_free(&res);

    CU_ASSERT_EQUAL(gdn_it_call(&client, "GET", "/tasks", NULL, &res), 0);
    CU_ASSERT_EQUAL(res.status, 200);
    CU_ASSERT_EQUAL(res.version, 20);
    CU_ASSERT(YAJL_IS_ARRAY(gdn_it_json_get(res.json, "tasks", NULL)));
    gdn_it_response_free(&res);

    printf("  2 requests after Upgrade: h2c answered over HTTP/2\n");
    stop_server(&srv, &client);
}

static void expect_protocol(gdn_it_server_t *srv, gdn_it_proto_t proto, int version)
{
    gdn_it_client_t client;
    gdn_it_response_t res;
    char id[GDN_IT_ID_SIZE];

    CU_ASSERT_FATAL(gdn_it_client_open(&client, srv, proto) == 0);
    CU_ASSERT_EQUAL(gdn_it_call(&client, "GET", "/health", NULL, &res), 0);
    CU_ASSERT_EQUAL(res.status, 200);
    CU_ASSERT_EQUAL(res.version, version);
    gdn_it_response_free(&res);
    CU_ASSERT_EQUAL(gdn_it_create_task(&client, "{\"task_type\":\"tls\"}", id), 200);
    CU_ASSERT(is_uuid4(id));
    gdn_it_client_close(&client);
}

static void test_api__tls_negotiates_http2_with_alpn(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;

    CU_ASSERT_FATAL(gdn_it_server_init(&srv) == 0);
    CU_ASSERT_FATAL(gdn_it_server_make_cert(&srv) == 0);
    CU_ASSERT_FATAL(gdn_it_server_configf(&srv, "tls_cert = %s\ntls_key = %s\n", srv.cert_path,
                                          srv.key_path) == 0);
    CU_ASSERT_FATAL(gdn_it_server_start(&srv) == 0);

    expect_protocol(&srv, GDN_IT_HTTP2, 20);
    expect_protocol(&srv, GDN_IT_HTTP1, 11);

    /* The port speaks TLS only: a cleartext request must not be served. */
    gdn_it_server_t cleartext = srv;
    gdn_it_response_t res;
    cleartext.tls = 0;
    CU_ASSERT_FATAL(gdn_it_client_open(&client, &cleartext, GDN_IT_HTTP1) == 0);
    gdn_it_call(&client, "GET", "/health", NULL, &res);
    CU_ASSERT_NOT_EQUAL(res.status, 200);
    gdn_it_response_free(&res);
    gdn_it_client_close(&client);

    CU_ASSERT_FATAL(gdn_it_client_open(&client, &srv, GDN_IT_HTTP2) == 0);
    CU_ASSERT_EQUAL(gdn_it_stat(&client, "pending_tasks"), 2);

    printf("  HTTP/2 and HTTP/1.1 over TLS; cleartext refused\n");
    stop_server(&srv, &client);
}

static void run_cli(const char *const *args, char *out, size_t size, int expected_code)
{
    int code = -1;

    CU_ASSERT_FATAL(gdn_it_run_program(args, out, size, &code) == 0);
    CU_ASSERT_EQUAL(code, expected_code);
    if (code != expected_code)
        fprintf(stderr, "  %s exited %d, expected %d; output:\n%s\n", args[0], code, expected_code,
                out);
}

static void check_bad_config(gdn_it_server_t *srv, const char *text, const char *line_tag)
{
    char out[8192];

    CU_ASSERT_FATAL(gdn_it_server_configf(srv, "%s", text) == 0);
    const char *args[] = {"--check-config", "--config", srv->config_path, NULL};
    run_cli(args, out, sizeof(out), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, line_tag));
}

static void test_api__command_line_options(void)
{
    gdn_it_server_t srv;
    char out[8192];

    CU_ASSERT_FATAL(gdn_it_server_init(&srv) == 0);

    const char *version_args[] = {"--version", NULL};
    run_cli(version_args, out, sizeof(out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, GDN_VERSION));

    const char *help_args[] = {"--help", NULL};
    run_cli(help_args, out, sizeof(out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--config"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--check-config"));

    CU_ASSERT_FATAL(gdn_it_server_configf(&srv, "# a comment line\n"
                                                "port = 5123\n"
                                                "minio_endpoint = 127.0.0.1:9\n"
                                                "minio_access_key = garden-access\n"
                                                "minio_secret_key = s3cr3t-Value-Xyz\n") == 0);
    const char *check_args[] = {"--check-config", "--config", srv.config_path, NULL};
    run_cli(check_args, out, sizeof(out), 0);
    CU_ASSERT_PTR_NULL(strstr(out, "s3cr3t-Value-Xyz"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "minio_secret_key"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "5123"));

    check_bad_config(&srv, "port = 5000\nthreads = 2\nport = seventy\n", ":3");
    check_bad_config(&srv, "port = 5000\nno_such_key = 1\n", ":2");
    check_bad_config(&srv, "journal_map_mb = 8\n", ":1");

    printf("  --version, --help, --check-config (masked), 3 bad configs\n");
    gdn_it_server_cleanup(&srv);
}

static void test_api__second_server_on_a_taken_port_exits(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;
    gdn_it_response_t res;
    char listen[64], second_dir[GDN_IT_PATH_MAX], out[8192];

    CU_ASSERT_FATAL(gdn_it_server_init(&srv) == 0);
    CU_ASSERT_FATAL(gdn_it_server_start(&srv) == 0);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", srv.port);
    snprintf(second_dir, sizeof(second_dir), "%s/second", srv.dir);
    CU_ASSERT_FATAL(mkdir(second_dir, 0700) == 0);

    /* A second instance must not share the port: it would take half of the connections to
     * another journal. The program documents exit code 1 for a server that cannot start. */
    const char *args[] = {"--listen", listen, "--data-dir", second_dir, NULL};
    run_cli(args, out, sizeof(out), 1);

    CU_ASSERT_FATAL(gdn_it_client_open(&client, &srv, GDN_IT_HTTP1) == 0);
    CU_ASSERT_EQUAL(gdn_it_call(&client, "GET", "/health", NULL, &res), 0);
    CU_ASSERT_EQUAL(res.status, 200);
    gdn_it_response_free(&res);
    printf("  a second server on port %d was refused; the first still answers\n", srv.port);
    stop_server(&srv, &client);
}

/* Opens `count` clients of `proto`, each with one finished request on a kept-alive connection. */
static void open_idle_clients(gdn_it_server_t *srv, gdn_it_client_t *clients, int count,
                              gdn_it_proto_t proto)
{
    for (int i = 0; i < count; i++) {
        gdn_it_response_t res;
        CU_ASSERT_FATAL(gdn_it_client_open(&clients[i], srv, proto) == 0);
        CU_ASSERT_EQUAL(gdn_it_call(&clients[i], "GET", "/health", NULL, &res), 0);
        CU_ASSERT_EQUAL(res.status, 200);
        gdn_it_response_free(&res);
    }
}

static void shutdown_with_idle_connections(int sig)
{
    enum { HTTP1_CLIENTS = 4, H2C_CLIENTS = 2, HTTP2_CLIENTS = 2 };
    enum { CLIENTS = HTTP1_CLIENTS + H2C_CLIENTS + HTTP2_CLIENTS };
    gdn_it_server_t srv;
    gdn_it_client_t clients[CLIENTS];
    gdn_it_exit_t ex;

    CU_ASSERT_FATAL(gdn_it_server_init(&srv) == 0);
    CU_ASSERT_FATAL(gdn_it_server_start(&srv) == 0);
    open_idle_clients(&srv, clients, HTTP1_CLIENTS, GDN_IT_HTTP1);
    open_idle_clients(&srv, clients + HTTP1_CLIENTS, H2C_CLIENTS, GDN_IT_H2C);
    open_idle_clients(&srv, clients + HTTP1_CLIENTS + H2C_CLIENTS, HTTP2_CLIENTS, GDN_IT_HTTP2);

    int rc = gdn_it_server_stop(&srv, sig, 10.0, &ex);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(ex.exited);
    CU_ASSERT_EQUAL(ex.code, 0);
    CU_ASSERT(ex.seconds < 5.0);
    printf("  signal %d with %d idle connections: exit code %d after %.2f s\n", sig, CLIENTS,
           ex.code, ex.seconds);

    for (int i = 0; i < CLIENTS; i++)
        gdn_it_client_close(&clients[i]);
    gdn_it_server_cleanup(&srv);
}

static void test_api__sigterm_exits_cleanly_with_idle_connections(void)
{
    shutdown_with_idle_connections(SIGTERM);
}

static void test_api__sigint_exits_cleanly_with_idle_connections(void)
{
    shutdown_with_idle_connections(SIGINT);
}

static CU_TestInfo api_tests[] = {
    {"The README examples create, claim, complete and read a task",
     test_api__readme_examples_round_trip},
    {"Every TaskCreate default is visible in the created task",
     test_api__task_create_defaults_are_visible},
    {"Claims follow priority, then age, then id",
     test_api__claims_follow_priority_then_age_then_id},
    {"The roles parameter filters which tasks a poll may claim", test_api__roles_filter_the_claim},
    {"GET /tasks lists at most 50 pending tasks in claim order",
     test_api__task_list_shows_pending_in_claim_order},
    {"Workers register, heartbeat, and drop out of the list past their TTL",
     test_api__workers_register_heartbeat_and_expire},
    {"Health and stats have their shapes and count tasks by status",
     test_api__health_and_stats_report_counts},
    {"Unknown paths, wrong methods and missing parameters get the documented errors",
     test_api__errors_have_the_documented_shapes},
    {"CORS echoes any origin with credentials by default, preflight included",
     test_api__cors_allows_any_origin_by_default},
    {"cors_origins leaves other origins without CORS headers and fails their preflight",
     test_api__cors_origins_narrow_the_allowed_origins},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo program_tests[] = {
    {"An Upgrade: h2c request switches the connection to HTTP/2",
     test_api__h2c_upgrade_switches_to_http2},
    {"With a certificate the port serves HTTP/2 over TLS chosen by ALPN, and TLS only",
     test_api__tls_negotiates_http2_with_alpn},
    {"--version, --help and --check-config behave, secrets masked and bad lines named",
     test_api__command_line_options},
    {"A second server on a port already in use exits 1 and leaves the first serving",
     test_api__second_server_on_a_taken_port_exits},
    {"SIGTERM exits 0 within 5 s while idle keep-alive connections are open",
     test_api__sigterm_exits_cleanly_with_idle_connections},
    {"SIGINT exits 0 within 5 s while idle keep-alive connections are open",
     test_api__sigint_exits_cleanly_with_idle_connections},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo gdn_test_suites[] = {
    {.pName = "API over HTTP/1.1",
     .pInitFunc = init_http1,
     .pCleanupFunc = cleanup_suite,
     .pTests = api_tests},
    {.pName = "API over HTTP/2 with prior knowledge",
     .pInitFunc = init_http2,
     .pCleanupFunc = cleanup_suite,
     .pTests = api_tests},
    {.pName = "Program, transports and signals",
     .pInitFunc = init_program,
     .pCleanupFunc = cleanup_suite,
     .pTests = program_tests},
    CU_SUITE_INFO_NULL,
};
