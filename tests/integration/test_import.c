/*
 * Integration test of `garden-orchestrator import-kv`: the real binary imports an export of the
 * old key-value store that the test writes (values as JSON objects and as JSON held in strings,
 * with times relative to now so that workers are live), then the server is started on the same
 * data directory and asked over HTTP what it holds.
 *
 * What it checks: a dry run writes nothing; the import reports what it imported, skipped and
 * rejected; a second run imports nothing; malformed files exit 2 and change nothing (the
 * journal is compared with mdb_dump, from lmdb-utils, before and after); an import while the
 * server holds the data directory exits 3; the server then serves the imported tasks, hands out
 * the pending ones in claim order, lists the worker, and lets the worker of a processing task
 * complete it.
 */
#include <CUnit/CUnit.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "cunit_main.h"
#include "harness.h"

/* The config both the import and the server read: the import must use its lease. */
#define CONFIG                                                                                     \
    "task_lease_s = 120\n"                                                                         \
    "journal_map_mb = 64\n"                                                                        \
    "log_level = info\n"

#define OUTPUT_MAX 65536
#define EXPORT_MAX 16384

/* Pending tasks in the claim order the server must hand them out in. */
#define P1 "a1000000-0000-4000-8000-000000000001" /* priority 9, newest */
#define P2 "a2000000-0000-4000-8000-000000000002" /* priority 5, oldest */
#define P3 "a3000000-0000-4000-8000-000000000003" /* priority 5, newer, listed nowhere */
#define P4 "a4000000-0000-4000-8000-000000000004" /* priority 1 */
#define RUNNING "b1000000-0000-4000-8000-000000000005"
#define DONE "c1000000-0000-4000-8000-000000000006"
#define BAD_TIME "d1000000-0000-4000-8000-000000000007"
#define GHOST "e1000000-0000-4000-8000-000000000008"

static int init_suite(void)
{
    return gdn_it_global_init();
}

/* Writes `seconds` from now as the old service did: ISO-8601, UTC, no zone. */
static const char *iso_from_now(int seconds, int with_fraction, char *out, size_t size)
{
    struct timespec now;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &now);

    time_t at = now.tv_sec + seconds;

    gmtime_r(&at, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    if (with_fraction) {
        size_t len = strlen(out);

        snprintf(out + len, size - len, ".%06ld", now.tv_nsec / 1000);
    }
    return out;
}

typedef struct text {
    char data[EXPORT_MAX];
    size_t len;
} text_t;

static void add(text_t *text, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(text_t *text, const char *fmt, ...)
{
    va_list args;

    va_start(args, fmt);

    int n = vsnprintf(text->data + text->len, sizeof(text->data) - text->len, fmt, args);

    va_end(args);
    CU_ASSERT_FATAL(n >= 0 && (size_t)n < sizeof(text->data) - text->len);
    text->len += (size_t)n;
}

/* A task object in the old service's shape, every optional field present and null if unset. */
static void old_task(text_t *text, const char *id, int priority, const char *status, int created_s,
                     const char *worker)
{
    char created[64], updated[64];
    int finished = strcmp(status, "completed") == 0;

    add(text,
        "{\"id\":\"%s\",\"role\":\"archivist\",\"task_type\":\"summarize\","
        "\"input_data\":{\"text\":\"old %s\"},\"priority\":%d,\"status\":\"%s\","
        "\"created_at\":\"%s\",\"updated_at\":\"%s\",\"project_id\":\"garden\","
        "\"context_enabled\":true,\"context_limit\":10,",
        id, id, priority, status, iso_from_now(created_s, 1, created, sizeof(created)),
        iso_from_now(created_s + 1, 0, updated, sizeof(updated)));
    if (worker != NULL)
        add(text, "\"assigned_to\":\"%s\",\"assigned_at\":\"%s\",", worker, updated);
    else
        add(text, "\"assigned_to\":null,\"assigned_at\":null,");
    if (finished)
        add(text, "\"result\":{\"output\":\"Done\"},\"completed_at\":\"%s\",", updated);
    else
        add(text, "\"result\":null,\"completed_at\":null,");
    add(text, "\"observation_id\":null}");
}

/* Appends an entry whose value is the task object, or (as_string) a JSON string holding it. */
static void task_entry(text_t *text, const char *kind, const char *id, int priority,
                       const char *status, int created_s, const char *worker, int as_string)
{
    text_t value = {.len = 0};

    old_task(&value, id, priority, status, created_s, worker);
    add(text, "%s{\"key\":\"%s:%s\",\"value\":", text->len > 1 ? "," : "", kind, id);
    if (!as_string) {
        add(text, "%s}", value.data);
        return;
    }
    add(text, "\"");
    for (size_t i = 0; i < value.len; i++)
        add(text, "%s%c", value.data[i] == '"' ? "\\" : "", value.data[i]);
    add(text, "\"}");
}

/*
 * The export: four pending tasks, one processing, one completed with its copy, a live worker,
 * the old pending list (with a task that does not exist), and two entries to reject.
 */
static void write_export(const char *path)
{
    text_t text = {.len = 0};
    char registered[64], heartbeat[64];

    add(&text, "[");
    task_entry(&text, "task", P1, 9, "pending", -10, NULL, 0);
    task_entry(&text, "task", P2, 5, "pending", -300, NULL, 1);
    task_entry(&text, "task", P3, 5, "pending", -200, NULL, 0);
    task_entry(&text, "task", P4, 1, "pending", -400, NULL, 1);
    task_entry(&text, "task", RUNNING, 5, "processing", -500, "pi-1", 1);
    task_entry(&text, "task", DONE, 5, "completed", -600, "pi-1", 0);
    task_entry(&text, "completed", DONE, 5, "completed", -600, "pi-1", 1);
    add(&text,
        ",{\"key\":\"worker:pi-1\",\"value\":{\"worker_id\":\"pi-1\",\"capabilities\":"
        "[\"archivist\"],\"registered_at\":\"%s\",\"last_heartbeat\":\"%s\","
        "\"status\":\"active\"}}",
        iso_from_now(-3600, 1, registered, sizeof(registered)),
        iso_from_now(-30, 1, heartbeat, sizeof(heartbeat)));
    add(&text, ",{\"key\":\"queue:pending\",\"value\":\"[\\\"" P1 "\\\",\\\"" P2 "\\\",\\\"" P4
               "\\\",\\\"" GHOST "\\\"]\"}");
    add(&text, ",{\"key\":\"task:" BAD_TIME "\",\"value\":{\"id\":\"" BAD_TIME "\","
               "\"task_type\":\"x\",\"status\":\"pending\",\"created_at\":\"17/01/2026\"}}");
    add(&text, ",{\"key\":\"stats:daily\",\"value\":{\"writes\":1000}}]");

    FILE *file = fopen(path, "w");

    CU_ASSERT_FATAL(file != NULL);
    fwrite(text.data, 1, text.len, file);
    fclose(file);
}

static void write_file(const char *path, const char *content)
{
    FILE *file = fopen(path, "w");

    CU_ASSERT_FATAL(file != NULL);
    fputs(content, file);
    fclose(file);
}

/* Runs import-kv on `file` with the server's config and data directory. Returns the exit code. */
static int run_import(const gdn_it_server_t *srv, const char *file, int dry_run, char *out)
{
    const char *args[] = {"import-kv",
                          file,
                          "--config",
                          srv->config_path,
                          "--data-dir",
                          srv->data_dir,
                          dry_run ? "--dry-run" : NULL,
                          NULL};
    int code = -1;

    CU_ASSERT_FATAL(gdn_it_run_program(args, out, OUTPUT_MAX, &code) == 0);
    return code;
}

static void expect_import(const gdn_it_server_t *srv, const char *file, int dry_run,
                          int expected_code, const char *expected_text, char *out)
{
    int code = run_import(srv, file, dry_run, out);

    CU_ASSERT_EQUAL(code, expected_code);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, expected_text));
    if (code != expected_code || strstr(out, expected_text) == NULL)
        fprintf(stderr, "\n  import-kv %s exited %d, expected %d and \"%s\"; output:\n%s\n", file,
                code, expected_code, expected_text, out);
}

/* The journal's whole contents as mdb_dump prints them, malloc'd; NULL if it cannot run. */
static char *dump_journal(const char *data_dir)
{
    char command[GDN_IT_PATH_MAX + 64];

    snprintf(command, sizeof(command), "mdb_dump -a -p %s 2>/dev/null", data_dir);

    FILE *pipe = popen(command, "r");
    size_t cap = 1 << 20, len = 0;
    char *dump = malloc(cap);

    CU_ASSERT_FATAL(pipe != NULL && dump != NULL);
    for (size_t n; (n = fread(dump + len, 1, cap - 1 - len, pipe)) > 0;) {
        len += n;
        if (len == cap - 1) {
            cap *= 2;
            dump = realloc(dump, cap);
            CU_ASSERT_FATAL(dump != NULL);
        }
    }
    dump[len] = '\0';
    if (pclose(pipe) != 0 || len == 0) {
        free(dump);
        return NULL;
    }
    return dump;
}

static void assert_unchanged(const char *before, const gdn_it_server_t *srv, const char *what)
{
    char *after = dump_journal(srv->data_dir);

    CU_ASSERT_PTR_NOT_NULL_FATAL(after);
    CU_ASSERT_STRING_EQUAL(before, after);
    if (strcmp(before, after) != 0)
        fprintf(stderr, "\n  %s changed the journal\n", what);
    free(after);
}

/* The dry run, the import, the second run and the malformed files; the server is not up. */
static void import_offline(gdn_it_server_t *srv, const char *good, char *out)
{
    char path[GDN_IT_PATH_MAX];

    expect_import(srv, good, 1, 0, "dry run: nothing was written", out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "imported 8 (tasks 6, pending 4, completed 1, workers 1)"));
    /* The data directory held no journal, and the dry run made none. */
    char journal_file[GDN_IT_PATH_MAX + 16];

    snprintf(journal_file, sizeof(journal_file), "%s/data.mdb", srv->data_dir);
    CU_ASSERT_NOT_EQUAL(access(journal_file, F_OK), 0);

    expect_import(srv, good, 0, 0,
                  "imported 8 (tasks 6, pending 4, completed 1, workers 1), skipped 1, rejected 2",
                  out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "rejected key=task:" BAD_TIME
                                       " reason=\"created_at is not an ISO-8601 time\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "rejected key=stats:daily reason="));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "skipped key=queue:pending id=" GHOST " reason="));
    printf("\n  first import: %s", strstr(out, "imported "));

    char *imported = dump_journal(srv->data_dir);

    CU_ASSERT_PTR_NOT_NULL_FATAL(imported);
    CU_ASSERT_PTR_NOT_NULL(strstr(imported, P1));

    /* A second run imports nothing: each record is skipped as existing. */
    expect_import(srv, good, 0, 0,
                  "imported 0 (tasks 0, pending 0, completed 0, workers 0), "
                  "skipped 9, rejected 2",
                  out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "skipped key=task:" P1 " reason=exists"));
    assert_unchanged(imported, srv, "a second import");
    expect_import(srv, good, 1, 0, "dry run", out);
    assert_unchanged(imported, srv, "a dry run");

    static const char *const malformed[] = {
        "[{\"key\":\"task:x\",\"value\":{}}",
        "{\"tasks\":[]}",
        "[{\"key\":\"worker:w\",\"value\":{}},{\"key\":\"worker:w\",\"value\":{}}]",
        "[{\"key\":\"worker:w\",\"val\":{}}]",
    };

    snprintf(path, sizeof(path), "%s/malformed.json", srv->dir);
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        write_file(path, malformed[i]);
        expect_import(srv, path, 0, 2, "nothing was imported", out);
        assert_unchanged(imported, srv, malformed[i]);
    }
    snprintf(path, sizeof(path), "%s/absent.json", srv->dir);
    expect_import(srv, path, 0, 2, "cannot read", out);
    free(imported);
}

/* Polls once for any role; returns the claimed id in `id` ("" for none). */
static void poll_one(gdn_it_client_t *client, char *id)
{
    CU_ASSERT_EQUAL(gdn_it_poll(client, "pi-2", NULL, id), 200);
}

static void check_served(gdn_it_client_t *client)
{
    gdn_it_response_t res;

    CU_ASSERT_EQUAL(gdn_it_call(client, "GET", "/tasks/" RUNNING, NULL, &res), 0);
    CU_ASSERT_EQUAL(res.status, 200);
    CU_ASSERT_STRING_EQUAL(gdn_it_json_string(res.json, "status", NULL), "processing");
    CU_ASSERT_STRING_EQUAL(gdn_it_json_string(res.json, "assigned_to", NULL), "pi-1");

    long long number = -1;

    CU_ASSERT_EQUAL(gdn_it_json_integer(res.json, &number, "lease_s", NULL), 0);
    CU_ASSERT_EQUAL(number, 120);
    CU_ASSERT_EQUAL(gdn_it_json_integer(res.json, &number, "attempts", NULL), 0);
    CU_ASSERT_EQUAL(number, 1);
    gdn_it_response_free(&res);

    CU_ASSERT_EQUAL(gdn_it_call(client, "GET", "/tasks/" DONE, NULL, &res), 0);
    CU_ASSERT_EQUAL(res.status, 200);
    CU_ASSERT_STRING_EQUAL(gdn_it_json_string(res.json, "status", NULL), "completed");
    CU_ASSERT_STRING_EQUAL(gdn_it_json_string(res.json, "result", "output", NULL), "Done");
    gdn_it_response_free(&res);

    CU_ASSERT_EQUAL(gdn_it_call(client, "GET", "/tasks/" BAD_TIME, NULL, &res), 0);
    CU_ASSERT_EQUAL(res.status, 404);
    gdn_it_response_free(&res);

    CU_ASSERT_EQUAL(gdn_it_call(client, "GET", "/poll/workers", NULL, &res), 0);
    CU_ASSERT_EQUAL(res.status, 200);

    yajl_val workers = gdn_it_json_get(res.json, "workers", NULL);

    CU_ASSERT_EQUAL(gdn_it_json_length(workers), 1);
    CU_ASSERT_STRING_EQUAL(gdn_it_json_string(gdn_it_json_at(workers, 0), "worker_id", NULL),
                           "pi-1");
    gdn_it_response_free(&res);
}

static void check_claims(gdn_it_client_t *client)
{
    static const char *const order[] = {P1, P2, P3, P4};
    char id[GDN_IT_ID_SIZE];

    CU_ASSERT_EQUAL(gdn_it_stat(client, "pending_tasks"), 4);
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        poll_one(client, id);
        CU_ASSERT_STRING_EQUAL(id, order[i]);
    }
    poll_one(client, id);
    CU_ASSERT_STRING_EQUAL(id, "");

    /* The worker that held the task when the old store was exported can still complete it. */
    gdn_it_response_t res;

    CU_ASSERT_EQUAL(gdn_it_call(client, "POST", "/poll/complete",
                                "{\"task_id\":\"" RUNNING "\",\"result\":{\"output\":\"late\"},"
                                "\"worker_id\":\"pi-1\"}",
                                &res),
                    0);
    CU_ASSERT_EQUAL(res.status, 200);
    gdn_it_response_free(&res);
    CU_ASSERT_EQUAL(gdn_it_call(client, "GET", "/tasks/" RUNNING, NULL, &res), 0);
    CU_ASSERT_STRING_EQUAL(gdn_it_json_string(res.json, "status", NULL), "completed");
    gdn_it_response_free(&res);
}

static void test_import__an_export_is_imported_once_and_served(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;
    gdn_it_exit_t exit_status;
    char good[GDN_IT_PATH_MAX];
    char *out = malloc(OUTPUT_MAX);

    CU_ASSERT_FATAL(out != NULL);
    CU_ASSERT_FATAL(gdn_it_server_init(&srv) == 0);
    CU_ASSERT_FATAL(gdn_it_server_configf(&srv, "%s", CONFIG) == 0);
    snprintf(good, sizeof(good), "%s/kv-export.json", srv.dir);
    write_export(good);

    import_offline(&srv, good, out);

    CU_ASSERT_FATAL(gdn_it_server_start(&srv) == 0);
    /* The running server holds the data directory: an import now is refused. */
    expect_import(&srv, good, 0, 3, "data_dir_locked", out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, srv.data_dir));

    CU_ASSERT_FATAL(gdn_it_client_open(&client, &srv, GDN_IT_HTTP1) == 0);
    check_served(&client);
    check_claims(&client);
    gdn_it_client_close(&client);
    CU_ASSERT_EQUAL(gdn_it_server_stop(&srv, SIGTERM, 10.0, &exit_status), 0);
    CU_ASSERT_EQUAL(exit_status.code, 0);
    gdn_it_server_cleanup(&srv);
    free(out);
}

/*
 * A dry run answers for the real run: a data directory the real run could not make is refused
 * by the dry run too. Run as root, both refuse a data directory of another user's (the service
 * user's, in a packaged install), where files root made would keep the server from starting,
 * and create nothing in it.
 */
static void test_import__refuses_what_the_real_run_could_not_do(void)
{
    gdn_it_server_t srv;
    char good[GDN_IT_PATH_MAX];
    char plain[GDN_IT_PATH_MAX + 16];
    char below[GDN_IT_PATH_MAX + 32];
    char *out = malloc(OUTPUT_MAX);
    int code = -1;

    CU_ASSERT_FATAL(out != NULL);
    CU_ASSERT_FATAL(gdn_it_server_init(&srv) == 0);
    CU_ASSERT_FATAL(gdn_it_server_configf(&srv, "%s", CONFIG) == 0);
    snprintf(good, sizeof(good), "%s/kv-export.json", srv.dir);
    write_export(good);
    snprintf(plain, sizeof(plain), "%s/plain", srv.dir);
    write_file(plain, "not a directory");
    snprintf(below, sizeof(below), "%s/data", plain);

    const char *args[] = {"import-kv",  good,  "--config",  srv.config_path,
                          "--data-dir", below, "--dry-run", NULL};

    CU_ASSERT_FATAL(gdn_it_run_program(args, out, OUTPUT_MAX, &code) == 0);
    CU_ASSERT_EQUAL(code, 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "cannot be made or written: Not a directory"));

    if (geteuid() == 0) {
        char lock[GDN_IT_PATH_MAX + 16];

        CU_ASSERT_FATAL(chown(srv.data_dir, 65534, 65534) == 0);
        for (int dry_run = 1; dry_run >= 0; dry_run--) {
            CU_ASSERT_EQUAL(run_import(&srv, good, dry_run, out), 3);
            CU_ASSERT_PTR_NOT_NULL(strstr(out, "event=data_dir_owner"));
            CU_ASSERT_PTR_NOT_NULL(strstr(out, "runuser -u"));
        }
        snprintf(lock, sizeof(lock), "%s/lock", srv.data_dir);
        CU_ASSERT_NOT_EQUAL(access(lock, F_OK), 0);
        CU_ASSERT_FATAL(chown(srv.data_dir, 0, 0) == 0);
    }
    gdn_it_server_cleanup(&srv);
    free(out);
}

/* Writes an export of `count` pending tasks with 1,000-byte inputs: about 1.1 journal pages a
 * task, so that a few thousand fill a 16 MiB map. */
static void write_padded_export(const char *path, int count)
{
    FILE *file = fopen(path, "w");
    char created[64];
    char pad[1001];

    CU_ASSERT_FATAL(file != NULL);
    memset(pad, 'x', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    iso_from_now(-3600, 1, created, sizeof(created));
    fputc('[', file);
    for (int i = 0; i < count; i++)
        fprintf(file,
                "%s{\"key\":\"task:f0000000-0000-4000-8000-%012d\",\"value\":{"
                "\"id\":\"f0000000-0000-4000-8000-%012d\",\"task_type\":\"summarize\","
                "\"input_data\":{\"text\":\"%s\"},\"status\":\"pending\","
                "\"created_at\":\"%s\"}}",
                i > 0 ? "," : "", i, i, pad, created);
    fputc(']', file);
    CU_ASSERT_FATAL(fclose(file) == 0);
}

/*
 * The server keeps the last 64th of the map for claims, completions and expiry, so that workers
 * can drain a full queue. An import must leave it free too: exports from 4,000 down to 3,300
 * large tasks are tried on a 16 MiB map (4,096 pages, a reserve of 256) until one is accepted.
 * The larger ones are refused whole, and the accepted one leaves a journal whose tasks can all
 * be claimed and completed.
 */
static void test_import__an_import_leaves_the_reserve_free(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;
    gdn_it_exit_t exit_status;
    char path[GDN_IT_PATH_MAX];
    char *out = malloc(OUTPUT_MAX);
    int refused = 0;
    int accepted = 0;

    CU_ASSERT_FATAL(out != NULL);
    CU_ASSERT_FATAL(gdn_it_server_init(&srv) == 0);
    CU_ASSERT_FATAL(gdn_it_server_configf(&srv, "journal_map_mb = 16\nlog_level = warn\n") == 0);
    snprintf(path, sizeof(path), "%s/large-export.json", srv.dir);
    for (int count = 4000; count >= 3300 && accepted == 0; count -= 100) {
        write_padded_export(path, count);

        int code = run_import(&srv, path, 0, out);

        if (code == 0) {
            accepted = count;
            break;
        }
        CU_ASSERT_EQUAL(code, 3);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "nothing was written"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "raise journal_map_mb"));

        char *dump = dump_journal(srv.data_dir);

        CU_ASSERT_PTR_NOT_NULL_FATAL(dump);
        CU_ASSERT_PTR_NULL(strstr(dump, "task:f0000000"));
        free(dump);
        refused++;
    }
    printf("\n  16 MiB map: %d larger exports refused whole, %d tasks imported", refused, accepted);
    CU_ASSERT(refused > 0);
    CU_ASSERT_FATAL(accepted > 0);

    /* Every imported task can be claimed and completed, none answers 503. */
    CU_ASSERT_FATAL(gdn_it_server_start(&srv) == 0);
    CU_ASSERT_FATAL(gdn_it_client_open(&client, &srv, GDN_IT_HTTP1) == 0);

    int completed = 0;

    for (int i = 0; i < accepted; i++) {
        char id[GDN_IT_ID_SIZE];
        char body[128];
        gdn_it_response_t res;

        if (gdn_it_poll(&client, "drainer", NULL, id) != 200 || id[0] == '\0')
            break;
        snprintf(body, sizeof(body), "{\"task_id\":\"%s\",\"result\":{}}", id);
        CU_ASSERT_FATAL(gdn_it_call(&client, "POST", "/poll/complete", body, &res) == 0);
        completed += res.status == 200;
        gdn_it_response_free(&res);
        if (completed != i + 1)
            break;
    }
    printf(", %d claimed and completed\n", completed);
    CU_ASSERT_EQUAL(completed, accepted);
    gdn_it_client_close(&client);
    CU_ASSERT_EQUAL(gdn_it_server_stop(&srv, SIGTERM, 10.0, &exit_status), 0);
    CU_ASSERT_EQUAL(exit_status.code, 0);
    gdn_it_server_cleanup(&srv);
    free(out);
}

static CU_TestInfo import_tests[] = {
    {"an export is imported once, then served: claim order, workers, held tasks",
     test_import__an_export_is_imported_once_and_served},
    {"a dry run refuses a data directory the import could not make; root, another user's",
     test_import__refuses_what_the_real_run_could_not_do},
    {"an import that would fill the map's reserve is refused whole; a smaller one drains",
     test_import__an_import_leaves_the_reserve_free},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo gdn_test_suites[] = {
    {.pName = "import-kv", .pInitFunc = init_suite, .pTests = import_tests},
    CU_SUITE_INFO_NULL,
};
