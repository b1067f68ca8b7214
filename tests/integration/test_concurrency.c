/*
 * Integration tests of concurrent claims: many pollers, over HTTP/1.1 and HTTP/2 at once, must
 * each receive a task exactly once, whether the tasks were all created beforehand or arrive
 * while the pollers run.
 */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cunit_main.h"
#include "harness.h"

/* Unexpected answers printed per thread; the rest are only counted. */
#define ERRORS_SHOWN 3

typedef char task_id_t[GDN_IT_ID_SIZE];

/* One creator or poller thread and what it did. */
struct load_thread {
    pthread_t thread;
    gdn_it_server_t *srv;
    gdn_it_proto_t proto;
    char worker[32];
    task_id_t *ids;            /* creators: their slots; pollers: their claims */
    size_t count;              /* tasks created or claimed */
    size_t target;             /* creators: how many to create; pollers: room in ids */
    int errors;                /* unexpected answers */
    atomic_int *creators_done; /* pollers: stop at an empty poll only once this is set */
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

static void report_error(struct load_thread *t, const char *what, const gdn_it_response_t *res)
{
    if (t->errors++ < ERRORS_SHOWN)
        fprintf(stderr, "  %s: %s answered %ld (curl %d): %.200s\n", t->worker, what, res->status,
                (int)res->code, res->body ? res->body : "");
}

static void *run_creator(void *arg)
{
    struct load_thread *t = arg;
    gdn_it_client_t client;
    char body[128];

    if (gdn_it_client_open(&client, t->srv, t->proto) != 0) {
        t->errors++;
        return NULL;
    }
    for (size_t i = 0; i < t->target; i++) {
        snprintf(body, sizeof(body), "{\"task_type\":\"load\",\"input_data\":{\"n\":%zu}}", i);
        gdn_it_response_t res;
        gdn_it_call(&client, "POST", "/tasks", body, &res);
        const char *id = gdn_it_json_string(res.json, "task_id", NULL);
        if (res.status == 200 && id)
            snprintf(t->ids[t->count++], GDN_IT_ID_SIZE, "%s", id);
        else
            report_error(t, "POST /tasks", &res);
        gdn_it_response_free(&res);
    }
    gdn_it_client_close(&client);
    return NULL;
}

/*
 * Handles one poll answer. Returns 1 when a task was claimed, 0 when none was available, -1
 * on an unexpected answer.
 */
static int take_claim(struct load_thread *t, const gdn_it_response_t *res)
{
    if (res->status != 200 || !gdn_it_json_get(res->json, "task", NULL)) {
        report_error(t, "GET /poll/next", res);
        return -1;
    }

    yajl_val task = gdn_it_json_get(res->json, "task", NULL);
    if (YAJL_IS_NULL(task))
        return 0;

    const char *id = gdn_it_json_string(task, "id", NULL);
    const char *owner = gdn_it_json_string(task, "assigned_to", NULL);
    const char *status = gdn_it_json_string(task, "status", NULL);
    if (!id || !owner || strcmp(owner, t->worker) != 0 || !status ||
        strcmp(status, "processing") != 0 || t->count >= t->target) {
        report_error(t, "GET /poll/next (claimed task)", res);
        return -1;
    }
    snprintf(t->ids[t->count++], GDN_IT_ID_SIZE, "%s", id);
    return 1;
}

static void *run_poller(void *arg)
{
    struct load_thread *t = arg;
    gdn_it_client_t client;
    char path[128];

    if (gdn_it_client_open(&client, t->srv, t->proto) != 0) {
        t->errors++;
        return NULL;
    }
    snprintf(path, sizeof(path), "/poll/next?worker_id=%s", t->worker);
    for (;;) {
        /* Read the flag before polling: an empty answer after it was set means drained. */
        int done = !t->creators_done || atomic_load(t->creators_done);
        gdn_it_response_t res;
        gdn_it_call(&client, "GET", path, NULL, &res);
        int claimed = take_claim(t, &res);
        gdn_it_response_free(&res);
        if (claimed < 0 || (claimed == 0 && done))
            break;
        if (claimed == 0)
            usleep(1000);
    }
    gdn_it_client_close(&client);
    return NULL;
}

static void setup_threads(struct load_thread *threads, int count, gdn_it_server_t *srv,
                          const char *kind)
{
    for (int i = 0; i < count; i++) {
        memset(&threads[i], 0, sizeof(threads[i]));
        threads[i].srv = srv;
        threads[i].proto = i % 2 ? GDN_IT_HTTP2 : GDN_IT_HTTP1;
        snprintf(threads[i].worker, sizeof(threads[i].worker), "%s-%d", kind, i);
    }
}

static void start_threads(struct load_thread *threads, int count, void *(*run)(void *))
{
    for (int i = 0; i < count; i++)
        CU_ASSERT_FATAL(pthread_create(&threads[i].thread, NULL, run, &threads[i]) == 0);
}

static int join_threads(struct load_thread *threads, int count)
{
    int errors = 0;

    for (int i = 0; i < count; i++) {
        pthread_join(threads[i].thread, NULL);
        errors += threads[i].errors;
    }
    return errors;
}

static int compare_ids(const void *a, const void *b)
{
    return strcmp(*(const task_id_t *)a, *(const task_id_t *)b);
}

/* Gathers every thread's ids into one sorted array of `*total` entries; the caller frees it. */
static task_id_t *gather_ids(struct load_thread *threads, int count, size_t *total)
{
    size_t n = 0;

    for (int i = 0; i < count; i++)
        n += threads[i].count;
    task_id_t *all = calloc(n ? n : 1, sizeof(task_id_t));
    CU_ASSERT_FATAL(all != NULL);
    size_t at = 0;
    for (int i = 0; i < count; i++) {
        memcpy(all[at], threads[i].ids, threads[i].count * sizeof(task_id_t));
        at += threads[i].count;
    }
    qsort(all, n, sizeof(task_id_t), compare_ids);
    *total = n;
    return all;
}

static size_t count_duplicates(task_id_t *sorted, size_t n)
{
    size_t duplicates = 0;

    for (size_t i = 1; i < n; i++)
        duplicates += strcmp(sorted[i - 1], sorted[i]) == 0;
    return duplicates;
}

/* Checks that the claimed ids are exactly the created ones, each once. */
static void check_each_claimed_once(struct load_thread *creators, int creator_count,
                                    struct load_thread *pollers, int poller_count, size_t total)
{
    size_t created_n, claimed_n;
    task_id_t *created = gather_ids(creators, creator_count, &created_n);
    task_id_t *claimed = gather_ids(pollers, poller_count, &claimed_n);
    size_t duplicates = count_duplicates(claimed, claimed_n);

    size_t matched = 0;
    for (size_t i = 0; i < created_n && i < claimed_n; i++)
        matched += strcmp(created[i], claimed[i]) == 0;
    printf("  %zu created, %zu claimed, %zu duplicate claims, %zu matched by id\n", created_n,
           claimed_n, duplicates, matched);
    for (int i = 0; i < poller_count; i++)
        printf("    %s (HTTP/%s) claimed %zu\n", pollers[i].worker,
               pollers[i].proto == GDN_IT_HTTP2 ? "2" : "1.1", pollers[i].count);

    CU_ASSERT_EQUAL(created_n, total);
    CU_ASSERT_EQUAL(claimed_n, total);
    CU_ASSERT_EQUAL(duplicates, 0);
    CU_ASSERT_EQUAL(matched, total);
    free(created);
    free(claimed);
}

static void allocate_ids(struct load_thread *threads, int count, size_t per_thread)
{
    for (int i = 0; i < count; i++) {
        threads[i].ids = calloc(per_thread, sizeof(task_id_t));
        threads[i].target = per_thread;
        CU_ASSERT_FATAL(threads[i].ids != NULL);
    }
}

static void free_ids(struct load_thread *threads, int count)
{
    for (int i = 0; i < count; i++)
        free(threads[i].ids);
}

static void expect_queue_counts(gdn_it_server_t *srv, long long pending, long long processing)
{
    gdn_it_client_t client;

    CU_ASSERT_FATAL(gdn_it_client_open(&client, srv, GDN_IT_HTTP1) == 0);
    long long seen_pending = gdn_it_stat(&client, "pending_tasks");
    long long seen_processing = gdn_it_stat(&client, "processing_tasks");
    printf("  /stats: %lld pending, %lld processing\n", seen_pending, seen_processing);
    CU_ASSERT_EQUAL(seen_pending, pending);
    CU_ASSERT_EQUAL(seen_processing, processing);
    gdn_it_client_close(&client);
}

static void test_concurrency__pollers_drain_precreated_tasks_once_each(void)
{
    enum { CREATORS = 4, POLLERS = 8, TASKS = 2000 };
    gdn_it_server_t srv;
    struct load_thread creators[CREATORS];
    struct load_thread pollers[POLLERS];

    CU_ASSERT_FATAL(gdn_it_server_init(&srv) == 0);
    CU_ASSERT_FATAL(gdn_it_server_start(&srv) == 0);

    setup_threads(creators, CREATORS, &srv, "creator");
    allocate_ids(creators, CREATORS, TASKS / CREATORS);
    start_threads(creators, CREATORS, run_creator);
    CU_ASSERT_EQUAL(join_threads(creators, CREATORS), 0);
    expect_queue_counts(&srv, TASKS, 0);

    setup_threads(pollers, POLLERS, &srv, "poller");
    allocate_ids(pollers, POLLERS, TASKS);
    start_threads(pollers, POLLERS, run_poller);
    CU_ASSERT_EQUAL(join_threads(pollers, POLLERS), 0);

    check_each_claimed_once(creators, CREATORS, pollers, POLLERS, TASKS);
    expect_queue_counts(&srv, 0, TASKS);

    free_ids(creators, CREATORS);
    free_ids(pollers, POLLERS);
    gdn_it_server_cleanup(&srv);
}

static void test_concurrency__pollers_claim_tasks_created_meanwhile_once_each(void)
{
    enum { CREATORS = 4, POLLERS = 4, TASKS = 1000 };
    gdn_it_server_t srv;
    struct load_thread creators[CREATORS];
    struct load_thread pollers[POLLERS];
    atomic_int creators_done = 0;

    CU_ASSERT_FATAL(gdn_it_server_init(&srv) == 0);
    CU_ASSERT_FATAL(gdn_it_server_start(&srv) == 0);

    setup_threads(creators, CREATORS, &srv, "creator");
    allocate_ids(creators, CREATORS, TASKS / CREATORS);
    setup_threads(pollers, POLLERS, &srv, "poller");
    allocate_ids(pollers, POLLERS, TASKS);
    for (int i = 0; i < POLLERS; i++)
        pollers[i].creators_done = &creators_done;

    start_threads(pollers, POLLERS, run_poller);
    start_threads(creators, CREATORS, run_creator);
    CU_ASSERT_EQUAL(join_threads(creators, CREATORS), 0);
    atomic_store(&creators_done, 1);
    CU_ASSERT_EQUAL(join_threads(pollers, POLLERS), 0);

    check_each_claimed_once(creators, CREATORS, pollers, POLLERS, TASKS);
    expect_queue_counts(&srv, 0, TASKS);

    free_ids(creators, CREATORS);
    free_ids(pollers, POLLERS);
    gdn_it_server_cleanup(&srv);
}

static CU_TestInfo concurrency_tests[] = {
    {"Eight pollers over HTTP/1.1 and HTTP/2 drain 2,000 tasks, each claimed exactly once",
     test_concurrency__pollers_drain_precreated_tasks_once_each},
    {"Pollers claim tasks created while they poll, each exactly once",
     test_concurrency__pollers_claim_tasks_created_meanwhile_once_each},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo gdn_test_suites[] = {
    {.pName = "Concurrent claims",
     .pInitFunc = init_suite,
     .pCleanupFunc = cleanup_suite,
     .pTests = concurrency_tests},
    CU_SUITE_INFO_NULL,
};
