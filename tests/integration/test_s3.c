/*
 * Integration test of the bucket copy: the real server writes behind to the project's test S3
 * service (s3rver behind the SigV4-checking front of tests/s3), and the tests check what lands
 * in the bucket, how many requests it costs, how the server rides out outages, crashes and a
 * wrong secret, and that `restore` rebuilds a server from the bucket alone.
 *
 * The suite starts one S3 service with tests/s3/start.sh (found through GDN_S3_DIR) and stops
 * it by its recorded pids with tests/s3/stop.sh. Each test writes to a bucket of its own, which
 * the server creates, and resets the front's counters and faults first.
 *
 * The bucket is read back from s3rver directly, on its own port, with requests signed for its
 * built-in key S3RVER (s3rver checks the key, not the signature). Reading around the front
 * keeps its counters for the server's requests alone, and works while the front has an outage.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cunit_main.h"
#include "harness.h"

/* Bound of every wait for the server to catch up with the bucket. */
#define CATCH_UP_S 30.0

/* Mismatches printed in detail before the rest are only counted. */
#define SHOWN_MAX 5

/* The load threads of the fault-storm test. */
#define LOAD_THREADS 2

/* Creates per load thread at most, to keep the comparison that follows short. */
#define LOAD_CREATES_MAX 600

/* Room for a bucket name of this suite. */
#define BUCKET_SIZE 64

/* Size of the buffer that receives the output of the restore command. */
#define OUTPUT_MAX 16384

/* The test S3 service of this suite. */
static gdn_it_s3_t service;

static int init_suite(void)
{
    if (gdn_it_global_init() != 0)
        return -1;
    return gdn_it_s3_start(&service);
}

static int cleanup_suite(void)
{
    gdn_it_s3_stop(&service);
    curl_global_cleanup();
    return 0;
}

/* Clears every fault and counter, so that a test starts on a healthy, silent service. */
static void reset_service(void)
{
    CU_ASSERT_EQUAL(gdn_it_s3_control(&service, "DELETE", "/fault", NULL), 200);
    CU_ASSERT_EQUAL(gdn_it_s3_control(&service, "POST", "/reset-stats", NULL), 200);
}

/* Adds a fault to the front (see tests/s3/README.md). */
static void set_fault(const char *fault)
{
    CU_ASSERT_EQUAL(gdn_it_s3_control(&service, "POST", "/fault", fault), 200);
}

/* Makes the front stop listening until the faults are cleared. */
static void start_outage(void)
{
    set_fault("{\"mode\":\"outage\"}");
}

/* Clears every fault of the front, an outage included. */
static void clear_faults(void)
{
    CU_ASSERT_EQUAL(gdn_it_s3_control(&service, "DELETE", "/fault", NULL), 200);
}

/* ---- the server under test ---- */

/* Gives each test a bucket of its own, which the server creates. */
static void next_bucket(char *out, size_t size)
{
    static int seq;

    snprintf(out, size, "gdn-s3-%ld-%d", (long)getpid(), ++seq);
}

/* Copies last_flush_at from /stats ("null" before the first round). */
static int read_last_flush(gdn_it_client_t *client, char *out, size_t size)
{
    gdn_it_response_t res;
    int rc = -1;

    gdn_it_call(client, "GET", "/stats", NULL, &res);
    const char *at = gdn_it_json_string(res.json, "last_flush_at", NULL);

    if (res.status == 200) {
        snprintf(out, size, "%s", at ? at : "null");
        rc = 0;
    }
    gdn_it_response_free(&res);
    return rc;
}

/* Waits for `rounds` flush rounds to end, as seen from last_flush_at changing. */
static int wait_rounds(gdn_it_client_t *client, int rounds, double limit_s)
{
    double deadline = gdn_it_now_seconds() + limit_s;
    char last[64] = "";
    char seen[64];

    if (read_last_flush(client, last, sizeof(last)) != 0)
        return -1;
    while (rounds > 0 && gdn_it_now_seconds() < deadline) {
        gdn_it_sleep_ms(10);
        if (read_last_flush(client, seen, sizeof(seen)) == 0 && strcmp(seen, last) != 0) {
            memcpy(last, seen, sizeof(last));
            rounds--;
        }
    }
    return rounds == 0 ? 0 : -1;
}

static long register_worker(gdn_it_client_t *client, const char *worker, const char *capability)
{
    char body[256];
    gdn_it_response_t res;

    snprintf(body, sizeof(body), "{\"worker_id\":\"%s\",\"capabilities\":[\"%s\"]}", worker,
             capability);
    gdn_it_call(client, "POST", "/poll/register", body, &res);
    long status = res.status;
    gdn_it_response_free(&res);
    return status;
}

static long heartbeat(gdn_it_client_t *client, const char *worker)
{
    char body[256];
    gdn_it_response_t res;

    snprintf(body, sizeof(body), "{\"worker_id\":\"%s\"}", worker);
    gdn_it_call(client, "POST", "/poll/heartbeat", body, &res);
    long status = res.status;
    gdn_it_response_free(&res);
    return status;
}

/* Creates one task and records its id. Returns the HTTP status. */
static long create_recorded(gdn_it_client_t *client, const char *body, gdn_it_strs_t *ids)
{
    char id[GDN_IT_ID_SIZE];
    long status = gdn_it_create_task(client, body, id);

    if (status == 200 && id[0])
        CU_ASSERT_FATAL(gdn_it_strs_push(ids, id) == 0);
    return status;
}

/* Claims and finishes tasks of `role` as `worker`: `claims` claims, the first `completes` of
 * them finished (every third one as failed). Returns the number of unexpected answers. */
static int claim_and_complete(gdn_it_client_t *client, const char *worker, const char *role,
                              int claims, int completes, gdn_it_records_t *exp)
{
    int unexpected = 0;

    for (int i = 0; i < claims; i++) {
        char id[GDN_IT_ID_SIZE];

        if (gdn_it_poll(client, worker, role, id) != 200 || !id[0]) {
            unexpected++;
            continue;
        }
        if (i >= completes)
            continue;

        char result[64];

        snprintf(result, sizeof(result), "{\"n\":%d,\"by\":\"%s\"}", i, worker);
        if (gdn_it_complete(client, id, result, i % 3 == 2 ? "failed" : NULL) != 200)
            unexpected++;
        else
            CU_ASSERT_FATAL(gdn_it_strs_push(&exp->completed, id) == 0);
    }
    return unexpected;
}

/* Starts a server on `bucket` with `extra` config lines; fatal if it does not start. */
static void start_server(gdn_it_server_t *srv, const char *bucket, const char *extra)
{
    CU_ASSERT_FATAL(gdn_it_server_init(srv) == 0);
    CU_ASSERT_FATAL(gdn_it_s3_configure(srv, &service, bucket, GDN_IT_S3_SECRET_KEY, extra) == 0);
    CU_ASSERT_FATAL(gdn_it_server_start(srv) == 0);
}

static void stop_server(gdn_it_server_t *srv)
{
    gdn_it_exit_t ex;

    CU_ASSERT_EQUAL(gdn_it_server_stop(srv, SIGTERM, 10.0, &ex), 0);
    CU_ASSERT(ex.exited && ex.code == 0);
}

/* Begins a test: a service without faults or counts, a fresh bucket, a server on it with
 * `extra` config lines, and a client for it. */
static void begin_test(gdn_it_server_t *srv, gdn_it_client_t *client, char *bucket,
                       const char *extra)
{
    reset_service();
    next_bucket(bucket, BUCKET_SIZE);
    start_server(srv, bucket, extra);
    CU_ASSERT_FATAL(gdn_it_client_open(client, srv, GDN_IT_HTTP1) == 0);
}

/* Ends a test begun with begin_test; the server must stop cleanly. */
static void end_test(gdn_it_server_t *srv, gdn_it_client_t *client, gdn_it_records_t *exp)
{
    gdn_it_client_close(client);
    stop_server(srv);
    gdn_it_server_cleanup(srv);
    if (exp)
        gdn_it_records_free(exp);
}

/* ---- the tests ---- */

static void test_s3__bucket_equals_journal_after_flush(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;
    gdn_it_records_t exp = {0};
    char bucket[BUCKET_SIZE];
    char body[512];
    int unexpected = 0;

    begin_test(&srv, &client, bucket, "flush_interval_ms = 100\n");

    for (int i = 0; i < 24; i++) {
        snprintf(body, sizeof(body),
                 "{\"task_type\":\"t%d\",\"role\":\"%s\",\"priority\":%d,"
                 "\"input_data\":{\"n\":%d,\"text\":\"caf\\u00e9 \\\"q\\\" / \\\\\"}}",
                 i, i % 2 ? "gardener" : "archivist", i % 7, i);
        unexpected += create_recorded(&client, body, &exp.tasks) != 200;
    }
    unexpected += register_worker(&client, "s3-w1", "gardener") != 200;
    unexpected += register_worker(&client, "s3-w2", "archivist") != 200;
    unexpected += register_worker(&client, "s3-w3", "any") != 200;
    CU_ASSERT_FATAL(gdn_it_strs_push(&exp.workers, "s3-w1") == 0);
    CU_ASSERT_FATAL(gdn_it_strs_push(&exp.workers, "s3-w2") == 0);
    CU_ASSERT_FATAL(gdn_it_strs_push(&exp.workers, "s3-w3") == 0);
    unexpected += claim_and_complete(&client, "s3-w1", "gardener", 6, 4, &exp);
    unexpected += claim_and_complete(&client, "s3-w2", "archivist", 5, 3, &exp);
    CU_ASSERT_EQUAL(unexpected, 0);
    CU_ASSERT_EQUAL(exp.tasks.count, 24);
    CU_ASSERT_EQUAL(exp.completed.count, 7);

    CU_ASSERT_EQUAL(gdn_it_wait_flushed(&client, CATCH_UP_S), 0);
    CU_ASSERT_EQUAL(gdn_it_s3_compare_bucket(&service, &client, bucket, &exp), 0);
    CU_ASSERT_EQUAL(gdn_it_stat(&client, "dirty_records"), 0);
    CU_ASSERT(gdn_it_stat(&client, "s3_puts") >= 24 + 7 + 3);

    end_test(&srv, &client, &exp);
}

static void test_s3__one_put_per_record_within_an_interval(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;
    char bucket[BUCKET_SIZE];
    char id[GDN_IT_ID_SIZE];
    char claimed[GDN_IT_ID_SIZE];

    begin_test(&srv, &client, bucket, "flush_interval_ms = 3000\nflush_batch_max = 100000\n");

    /* The first round ends once the bucket is checked; the counters start after it. Then the
     * three changes are made right after a round ended, far from the next one. */
    CU_ASSERT_FATAL(wait_rounds(&client, 1, 15.0) == 0);
    CU_ASSERT_EQUAL(gdn_it_s3_control(&service, "POST", "/reset-stats", NULL), 200);
    CU_ASSERT_FATAL(wait_rounds(&client, 1, 10.0) == 0);

    CU_ASSERT_EQUAL(gdn_it_create_task(&client, "{\"task_type\":\"once\",\"role\":\"r2\"}", id),
                    200);
    CU_ASSERT_EQUAL(gdn_it_poll(&client, "s3-once", "r2", claimed), 200);
    CU_ASSERT_STRING_EQUAL(claimed, id);
    CU_ASSERT_EQUAL(gdn_it_complete(&client, id, "{\"ok\":true}", NULL), 200);

    CU_ASSERT_EQUAL(gdn_it_wait_flushed(&client, 15.0), 0);
    long long puts_task = gdn_it_s3_counter(&service, "by_key", "PUT task");
    long long puts_completed = gdn_it_s3_counter(&service, "by_key", "PUT completed");
    long long requests = gdn_it_s3_counter(&service, "requests", NULL);

    printf("  PUT task %lld, PUT completed %lld, requests %lld\n", puts_task, puts_completed,
           requests);
    CU_ASSERT_EQUAL(puts_task, 1);
    CU_ASSERT_EQUAL(puts_completed, 1);
    CU_ASSERT_EQUAL(gdn_it_s3_counter(&service, "by_key_ok", "PUT task"), 1);
    CU_ASSERT_EQUAL(gdn_it_s3_counter(&service, "by_key_ok", "PUT completed"), 1);
    CU_ASSERT_EQUAL(requests, 2);

    end_test(&srv, &client, NULL);
}

/* Registers a worker, sends heartbeats every `every_ms` for `count` beats, waits for two more
 * flush rounds, and returns the number of PUTs of worker objects the front saw. */
static long long heartbeat_puts(const char *extra, const char *worker, int count, long every_ms)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;
    char bucket[BUCKET_SIZE];
    int unexpected = 0;

    begin_test(&srv, &client, bucket, extra);
    CU_ASSERT_FATAL(wait_rounds(&client, 1, 15.0) == 0);
    CU_ASSERT_EQUAL(gdn_it_s3_control(&service, "POST", "/reset-stats", NULL), 200);

    double start = gdn_it_now_seconds();

    unexpected += register_worker(&client, worker, "beat") != 200;
    for (int i = 1; i <= count; i++) {
        /* Beats follow a fixed schedule from the registration, so that drift cannot add one. */
        long wait_ms =
            (long)((start + (double)(i * every_ms) / 1000.0 - gdn_it_now_seconds()) * 1000.0);

        if (wait_ms > 0)
            gdn_it_sleep_ms(wait_ms);
        unexpected += heartbeat(&client, worker) != 200;
    }
    CU_ASSERT_EQUAL(unexpected, 0);
    CU_ASSERT_EQUAL(gdn_it_wait_flushed(&client, 15.0), 0);
    CU_ASSERT_EQUAL(wait_rounds(&client, 2, 15.0), 0);
    CU_ASSERT_EQUAL(gdn_it_wait_flushed(&client, 15.0), 0);

    long long puts = gdn_it_s3_counter(&service, "by_key", "PUT worker");

    CU_ASSERT_EQUAL(gdn_it_s3_counter(&service, "by_method", "PUT"), puts);
    end_test(&srv, &client, NULL);
    return puts;
}

static void test_s3__heartbeats_are_cheap(void)
{
    long long puts =
        heartbeat_puts("flush_interval_ms = 50\nworker_ttl_s = 600\n", "s3-beat", 50, 5);

    printf("  worker_ttl_s 600, 50 heartbeats: %lld PUTs\n", puts);
    CU_ASSERT_EQUAL(puts, 1);

    /* With a 2 s time-to-live the bucket copy is refreshed every second or so: 12 beats over
     * 3 s come to the registration plus about three refreshes. */
    puts = heartbeat_puts("flush_interval_ms = 50\nworker_ttl_s = 2\n", "s3-beat-short", 12, 250);
    printf("  worker_ttl_s 2, 12 heartbeats over 3 s: %lld PUTs\n", puts);
    CU_ASSERT(puts >= 2);
    CU_ASSERT(puts <= 4);
}

/* One thread of the outage load: creates, claims and completes until told to stop. */
struct load_thread {
    pthread_t thread;
    gdn_it_server_t *srv;
    char worker[32];
    atomic_int *stop; /* set by the test thread, read by the load threads */
    gdn_it_strs_t created;
    gdn_it_strs_t completed;
    int requests;
    int failures;
    long last_failure;
    double *latencies; /* seconds per request, in the order sent */
    size_t latency_count;
    size_t latency_cap;
};

/* Counts an answer to a request sent at `sent` (monotonic seconds) and keeps its latency. */
static void count_answer(struct load_thread *t, long status, double sent)
{
    t->requests++;
    if (status < 200 || status > 299) {
        t->failures++;
        t->last_failure = status;
    }
    if (t->latency_count == t->latency_cap) {
        size_t cap = t->latency_cap ? t->latency_cap * 2 : 1024;
        double *grown = realloc(t->latencies, cap * sizeof(*grown));

        if (!grown)
            return;
        t->latencies = grown;
        t->latency_cap = cap;
    }
    t->latencies[t->latency_count++] = gdn_it_now_seconds() - sent;
}

static void *run_load(void *arg)
{
    struct load_thread *t = arg;
    gdn_it_client_t client;

    if (gdn_it_client_open(&client, t->srv, GDN_IT_HTTP1) != 0) {
        t->failures++;
        return NULL;
    }
    while (!atomic_load(t->stop) && t->created.count < LOAD_CREATES_MAX) {
        char id[GDN_IT_ID_SIZE];
        char body[128];

        snprintf(body, sizeof(body),
                 "{\"task_type\":\"load\",\"role\":\"s3load\",\"priority\":%zu}",
                 t->created.count % 4);
        double sent = gdn_it_now_seconds();
        long status = gdn_it_create_task(&client, body, id);

        count_answer(t, status, sent);
        if (status == 200 && gdn_it_strs_push(&t->created, id) != 0)
            break;
        sent = gdn_it_now_seconds();
        status = gdn_it_poll(&client, t->worker, "s3load", id);
        count_answer(t, status, sent);
        if (status == 200 && id[0] && t->created.count % 2 == 0) {
            sent = gdn_it_now_seconds();
            status = gdn_it_complete(&client, id, "{\"load\":true}", NULL);
            count_answer(t, status, sent);
            if (status == 200 && gdn_it_strs_push(&t->completed, id) != 0)
                break;
        }
        /* A steady pace keeps the run near four seconds without piling up thousands of
         * records for the comparison that follows. */
        gdn_it_sleep_ms(8);
    }
    gdn_it_client_close(&client);
    return NULL;
}

/* What the load threads of one run did, summed. */
struct load_totals {
    int requests;
    int failures;
    double *latencies; /* seconds, of every request */
    size_t latency_count;
};

/* Joins the load threads and sums their figures into `totals`; the ids of the tasks they were
 * told were created and completed go to `acked`. */
static void join_load(struct load_thread *threads, struct load_totals *totals,
                      gdn_it_records_t *acked)
{
    for (int i = 0; i < LOAD_THREADS; i++) {
        struct load_thread *t = &threads[i];

        pthread_join(t->thread, NULL);
        totals->requests += t->requests;
        totals->failures += t->failures;
        if (t->failures)
            fprintf(stderr, "  load thread %d: %d of %d requests failed, last answer %ld\n", i,
                    t->failures, t->requests, t->last_failure);

        double *grown =
            realloc(totals->latencies, (totals->latency_count + t->latency_count) * sizeof(*grown));
        CU_ASSERT_FATAL(grown != NULL);
        totals->latencies = grown;
        memcpy(grown + totals->latency_count, t->latencies, t->latency_count * sizeof(*grown));
        totals->latency_count += t->latency_count;
        for (size_t k = 0; k < t->created.count; k++)
            CU_ASSERT_FATAL(gdn_it_strs_push(&acked->tasks, t->created.items[k]) == 0);
        for (size_t k = 0; k < t->completed.count; k++)
            CU_ASSERT_FATAL(gdn_it_strs_push(&acked->completed, t->completed.items[k]) == 0);
        free(t->latencies);
        gdn_it_strs_free(&t->created);
        gdn_it_strs_free(&t->completed);
    }
}

/* Counts the ids of `acked` missing from `listed` (sorted with gdn_it_strs_sort). */
static int count_missing(const gdn_it_strs_t *acked, const gdn_it_strs_t *listed)
{
    int missing = 0;

    for (size_t i = 0; i < acked->count; i++)
        missing += !gdn_it_strs_has(listed, acked->items[i]);
    return missing;
}

/* Watches /health during a fault: its own latency and the bucket states it reports. */
struct health_probe {
    pthread_t thread;
    gdn_it_server_t *srv;
    atomic_int *stop;
    int calls;
    int failures;
    int degraded; /* answers with s3 "degraded" */
    long long backlog_max;
    double latency_max;
};

static void *run_probe(void *arg)
{
    struct health_probe *p = arg;
    gdn_it_client_t client;

    if (gdn_it_client_open(&client, p->srv, GDN_IT_HTTP1) != 0) {
        p->failures++;
        return NULL;
    }
    while (!atomic_load(p->stop)) {
        long long backlog = -1;
        char state[32] = "";
        double sent = gdn_it_now_seconds();
        int rc = gdn_it_read_health(&client, &backlog, state, sizeof(state));
        double latency = gdn_it_now_seconds() - sent;

        p->calls++;
        p->failures += rc != 0;
        p->degraded += rc == 0 && strcmp(state, "degraded") == 0;
        if (backlog > p->backlog_max)
            p->backlog_max = backlog;
        if (latency > p->latency_max)
            p->latency_max = latency;
        gdn_it_sleep_ms(50);
    }
    gdn_it_client_close(&client);
    return NULL;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return (x > y) - (x < y);
}

/* One fault of the storm test: the front's faults to add, and how long they last. */
struct fault_phase {
    const char *name;
    const char *faults[3]; /* bodies of POST /fault, NULL-terminated */
    long ms;
    int degrades; /* whether /health must show the bucket copy degraded meanwhile */
};

/* Starts the load threads and the /health probe of a fault phase. */
static void start_phase_load(gdn_it_server_t *srv, struct load_thread *threads,
                             struct health_probe *probe, atomic_int *stop)
{
    memset(threads, 0, LOAD_THREADS * sizeof(*threads));
    memset(probe, 0, sizeof(*probe));
    probe->srv = srv;
    probe->stop = stop;
    CU_ASSERT_FATAL(pthread_create(&probe->thread, NULL, run_probe, probe) == 0);
    for (int i = 0; i < LOAD_THREADS; i++) {
        threads[i].srv = srv;
        threads[i].stop = stop;
        snprintf(threads[i].worker, sizeof(threads[i].worker), "s3-load-%d", i);
        CU_ASSERT_FATAL(pthread_create(&threads[i].thread, NULL, run_load, &threads[i]) == 0);
    }
}

/* The fault hits the front counted since its counters were reset: refused connections of an
 * outage are not counted, the connections it reset are. */
static long long fault_hits(void)
{
    return gdn_it_s3_counter(&service, "faults", "slowdown") +
           gdn_it_s3_counter(&service, "faults", "reset") +
           gdn_it_s3_counter(&service, "faults", "delay") +
           gdn_it_s3_counter(&service, "outage_resets", NULL);
}

/*
 * Checks that the bucket caught up once the faults were cleared: the backlog drains, every
 * task and completion acknowledged during the phase is in the journal, and the bucket equals
 * the journal object by object. Prints the figures of the phase.
 */
static void check_converged(gdn_it_client_t *client, const char *bucket,
                            const struct fault_phase *phase, const gdn_it_records_t *acked)
{
    double cleared = gdn_it_now_seconds();
    CU_ASSERT_EQUAL(gdn_it_wait_flushed(client, CATCH_UP_S), 0);
    double drained = gdn_it_now_seconds() - cleared;
    gdn_it_records_t records;
    CU_ASSERT_EQUAL(gdn_it_records_from_api(client, &records), 0);
    gdn_it_strs_sort(&records.tasks);
    gdn_it_strs_sort(&records.completed);
    int lost = count_missing(&acked->tasks, &records.tasks) +
               count_missing(&acked->completed, &records.completed);
    int mismatches = gdn_it_s3_compare_bucket(&service, client, bucket, &records);
    printf("  %s: drained %.1f s after the fault; %zu tasks and %zu completions acknowledged, "
           "%d missing; %zu objects compared, %d mismatches\n",
           phase->name, drained, acked->tasks.count, acked->completed.count, lost,
           records.tasks.count + records.completed.count + records.workers.count, mismatches);
    CU_ASSERT_EQUAL(lost, 0);
    gdn_it_records_free(&records);
}

/* Runs the load and a /health probe through one fault phase, then clears the faults and checks
 * that the bucket catches up. */
static void run_fault_phase(gdn_it_server_t *srv, gdn_it_client_t *client, const char *bucket,
                            const struct fault_phase *phase)
{
    struct load_thread threads[LOAD_THREADS];
    struct health_probe probe;
    struct load_totals totals = {0};
    gdn_it_records_t acked = {0};
    atomic_int stop = 0;

    CU_ASSERT_EQUAL(gdn_it_s3_control(&service, "POST", "/reset-stats", NULL), 200);
    for (size_t i = 0; phase->faults[i]; i++)
        CU_ASSERT_EQUAL(gdn_it_s3_control(&service, "POST", "/fault", phase->faults[i]), 200);
    start_phase_load(srv, threads, &probe, &stop);
    gdn_it_sleep_ms(phase->ms);
    atomic_store(&stop, 1);
    pthread_join(probe.thread, NULL);
    join_load(threads, &totals, &acked);
    long long hits = fault_hits();
    CU_ASSERT_EQUAL(gdn_it_s3_control(&service, "DELETE", "/fault", NULL), 200);

    qsort(totals.latencies, totals.latency_count, sizeof(double), compare_doubles);
    size_t n = totals.latency_count;
    double p99 = n ? totals.latencies[(n * 99) / 100] : 0;
    double max = n ? totals.latencies[n - 1] : 0;
    printf("  %s, %.1f s: %d task calls, %d failed, p99 %.1f ms, max %.1f ms; /health %d calls, "
           "%d failed, %d degraded, max %.1f ms, backlog up to %lld; %lld fault hits\n",
           phase->name, (double)phase->ms / 1000.0, totals.requests, totals.failures, p99 * 1000.0,
           max * 1000.0, probe.calls, probe.failures, probe.degraded, probe.latency_max * 1000.0,
           probe.backlog_max, hits);
    CU_ASSERT(totals.requests > 0);
    CU_ASSERT_EQUAL(totals.failures, 0);
    CU_ASSERT(probe.calls > 0);
    CU_ASSERT_EQUAL(probe.failures, 0);
    if (phase->degrades)
        CU_ASSERT(probe.degraded > 0);

    check_converged(client, bucket, phase, &acked);
    gdn_it_records_free(&acked);
    free(totals.latencies);
}

static void test_s3__fault_storms_under_load_then_converge(void)
{
    static const struct fault_phase phases[] = {
        {"outage", {"{\"mode\":\"outage\"}", NULL}, 4000, 1},
        {"SlowDown storm", {"{\"mode\":\"slowdown\"}", NULL}, 3000, 1},
        {"resets in the middle of uploads",
         {"{\"mode\":\"reset\",\"method\":\"PUT\",\"after_bytes\":64,\"share\":0.5}",
          "{\"mode\":\"reset\",\"when\":\"after\",\"method\":\"PUT\",\"share\":0.5}", NULL},
         3000,
         0},
        {"slow responses of 1 and 2 s",
         {"{\"mode\":\"delay\",\"ms\":1000,\"share\":0.5}", "{\"mode\":\"delay\",\"ms\":2000}",
          NULL},
         3000,
         0},
    };
    gdn_it_server_t srv;
    gdn_it_client_t client;
    char bucket[BUCKET_SIZE];

    begin_test(&srv, &client, bucket, "flush_interval_ms = 100\n");
    CU_ASSERT_FATAL(wait_rounds(&client, 1, 15.0) == 0);
    for (int i = 0; i < LOAD_THREADS; i++) {
        char worker[32];

        snprintf(worker, sizeof(worker), "s3-load-%d", i);
        CU_ASSERT_EQUAL(register_worker(&client, worker, "s3load"), 200);
    }
    for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++)
        run_fault_phase(&srv, &client, bucket, &phases[i]);
    end_test(&srv, &client, NULL);
}

/* Counts the error lines of the server's log that contain `needle`. */
static int count_error_lines(const char *log_path, const char *needle)
{
    FILE *f = fopen(log_path, "r");
    char line[4096];
    int count = 0;

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strstr(line, "level=error") && strstr(line, needle))
            count++;
    }
    fclose(f);
    return count;
}

static void test_s3__sigkill_with_backlog_uploads_after_restart(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;
    gdn_it_records_t exp = {0};
    char bucket[BUCKET_SIZE];
    long long backlog = -1;
    int unexpected = 0;

    begin_test(&srv, &client, bucket, "flush_interval_ms = 100\n");
    CU_ASSERT_FATAL(wait_rounds(&client, 1, 15.0) == 0);

    start_outage();
    for (int i = 0; i < 100; i++) {
        char body[128];

        snprintf(body, sizeof(body), "{\"task_type\":\"crash\",\"priority\":%d}", i % 10);
        unexpected += create_recorded(&client, body, &exp.tasks) != 200;
    }
    CU_ASSERT_EQUAL(unexpected, 0);
    CU_ASSERT_EQUAL(exp.tasks.count, 100);
    CU_ASSERT_EQUAL(gdn_it_wait_degraded(&client, 10.0, &backlog), 0);
    printf("  backlog before SIGKILL: %lld\n", backlog);
    CU_ASSERT_EQUAL(backlog, 100);

    /* Every upload of the outage fails with the same kind of transport error, however often
     * retried and whatever elapsed time each attempt's description holds: it is logged once.
     * The first attempts may fail another way (a kept-alive connection the front reset), so
     * a few lines are allowed, not one per failed request. */
    double until = gdn_it_now_seconds() + 15.0;

    while (gdn_it_stat(&client, "s3_errors") < 6 && gdn_it_now_seconds() < until)
        gdn_it_sleep_ms(50);

    long long errors = gdn_it_stat(&client, "s3_errors");
    int lines = count_error_lines(srv.log_path, "s3_request_failed");

    printf("  %lld failed S3 requests in the outage, %d error lines\n", errors, lines);
    CU_ASSERT(errors >= 6);
    CU_ASSERT(lines >= 1 && lines <= 3);

    gdn_it_server_kill(&srv);
    clear_faults();
    CU_ASSERT_EQUAL(gdn_it_s3_control(&service, "POST", "/reset-stats", NULL), 200);
    CU_ASSERT_FATAL(gdn_it_server_start(&srv) == 0);
    CU_ASSERT_EQUAL(gdn_it_wait_flushed(&client, CATCH_UP_S), 0);
    CU_ASSERT_EQUAL(gdn_it_s3_counter(&service, "by_key_ok", "PUT task"), 100);
    CU_ASSERT_EQUAL(gdn_it_s3_compare_bucket(&service, &client, bucket, &exp), 0);

    end_test(&srv, &client, &exp);
}

/* Everything the restore test compares between the original server and a restored one. */
struct snapshot {
    char *pending; /* GET /tasks: the first 50 pending tasks in claim order */
    size_t pending_len;
    char *workers; /* GET /poll/workers */
    size_t workers_len;
    char **tasks; /* GET /tasks/{id} for every id, in the order of the id list */
    size_t *task_lens;
    size_t count;
    long long stats[6];
};

static const char *const snapshot_stats[] = {
    "pending_tasks", "processing_tasks",   "completed_tasks",
    "failed_tasks",  "registered_workers", "active_workers",
};

static void snapshot_take(gdn_it_client_t *client, const gdn_it_strs_t *ids, struct snapshot *s)
{
    char path[128];

    memset(s, 0, sizeof(*s));
    CU_ASSERT_EQUAL(gdn_it_fetch_body(client, "/tasks", &s->pending, &s->pending_len), 200);
    CU_ASSERT_EQUAL(gdn_it_fetch_body(client, "/poll/workers", &s->workers, &s->workers_len), 200);
    s->tasks = calloc(ids->count, sizeof(*s->tasks));
    s->task_lens = calloc(ids->count, sizeof(*s->task_lens));
    CU_ASSERT_FATAL(s->tasks != NULL && s->task_lens != NULL);
    s->count = ids->count;

    int failed = 0;

    for (size_t i = 0; i < ids->count; i++) {
        snprintf(path, sizeof(path), "/tasks/%s", ids->items[i]);
        failed += gdn_it_fetch_body(client, path, &s->tasks[i], &s->task_lens[i]) != 200;
    }
    CU_ASSERT_EQUAL(failed, 0);
    for (size_t i = 0; i < sizeof(snapshot_stats) / sizeof(snapshot_stats[0]); i++)
        s->stats[i] = gdn_it_stat(client, snapshot_stats[i]);
}

static void snapshot_free(struct snapshot *s)
{
    free(s->pending);
    free(s->workers);
    for (size_t i = 0; i < s->count; i++)
        free(s->tasks[i]);
    free(s->tasks);
    free(s->task_lens);
    memset(s, 0, sizeof(*s));
}

static int same_bytes(const char *a, size_t a_len, const char *b, size_t b_len)
{
    return a && b && a_len == b_len && memcmp(a, b, a_len) == 0;
}

/* Compares a restored server's snapshot with the original's. Returns the differences. */
static int snapshot_compare(const struct snapshot *want, const struct snapshot *got,
                            const char *what)
{
    int differences = 0;

    if (!same_bytes(want->pending, want->pending_len, got->pending, got->pending_len)) {
        fprintf(stderr, "  %s: GET /tasks differs:\n  %s\n  %s\n", what,
                want->pending ? want->pending : "", got->pending ? got->pending : "");
        differences++;
    }
    if (!same_bytes(want->workers, want->workers_len, got->workers, got->workers_len)) {
        fprintf(stderr, "  %s: GET /poll/workers differs:\n  %s\n  %s\n", what,
                want->workers ? want->workers : "", got->workers ? got->workers : "");
        differences++;
    }
    for (size_t i = 0; i < want->count && i < got->count; i++) {
        if (!same_bytes(want->tasks[i], want->task_lens[i], got->tasks[i], got->task_lens[i])) {
            if (differences++ < SHOWN_MAX)
                fprintf(stderr, "  %s: task differs:\n  %s\n  %s\n", what,
                        want->tasks[i] ? want->tasks[i] : "", got->tasks[i] ? got->tasks[i] : "");
        }
    }
    for (size_t i = 0; i < sizeof(snapshot_stats) / sizeof(snapshot_stats[0]); i++) {
        if (want->stats[i] != got->stats[i]) {
            fprintf(stderr, "  %s: %s is %lld, was %lld\n", what, snapshot_stats[i], got->stats[i],
                    want->stats[i]);
            differences++;
        }
    }
    return differences;
}

/* Runs `garden-orchestrator restore` for `target`'s data directory with `config`. */
static int run_restore(const char *config, const char *data_dir, int force, char *output)
{
    const char *args[] = {
        "restore", "--config", config, "--data-dir", data_dir, force ? "--force" : NULL, NULL};
    int code = -1;

    output[0] = '\0';
    CU_ASSERT_EQUAL(gdn_it_run_program(args, output, OUTPUT_MAX, &code), 0);
    return code;
}

/* Starts a server on an empty data directory with `extra` config lines and snapshots it. */
static void snapshot_fresh(const char *bucket, const char *extra, const gdn_it_strs_t *ids,
                           struct snapshot *s, char *log, size_t log_size)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;

    start_server(&srv, bucket, extra);
    CU_ASSERT_FATAL(gdn_it_client_open(&client, &srv, GDN_IT_HTTP1) == 0);
    snapshot_take(&client, ids, s);
    gdn_it_client_close(&client);
    stop_server(&srv);

    FILE *f = fopen(srv.log_path, "r");
    size_t n = f ? fread(log, 1, log_size - 1, f) : 0;

    log[n] = '\0';
    if (f)
        fclose(f);
    gdn_it_server_cleanup(&srv);
}

/*
 * Runs `restore` through S3 faults, on the journal of `restored` (which holds the bucket's 354
 * records) and on an empty one: retried faults do not end it, and one that fails leaves the
 * journal exactly as it was, full or empty.
 */
static void restore_through_faults(gdn_it_server_t *restored, const char *bucket, char *output)
{
    const char *config = restored->config_path;
    const char *data = restored->data_dir;

    /* A few connections reset in the middle of GETs are retried. */
    set_fault("{\"mode\":\"reset\",\"method\":\"GET\",\"prefix\":\"task\",\"count\":3}");
    CU_ASSERT_EQUAL(run_restore(config, data, 1, output), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(output, "restored 354 records"));
    clear_faults();

    /* A bucket that cannot be listed, and one whose worker objects cannot be read, fail the
     * restore after its retries; the records --force was to replace are kept (checked below,
     * and compared with the original by the caller). */
    start_outage();
    CU_ASSERT_EQUAL(run_restore(config, data, 1, output), 4);
    clear_faults();
    set_fault("{\"mode\":\"slowdown\",\"method\":\"GET\",\"prefix\":\"worker\"}");
    CU_ASSERT_EQUAL(run_restore(config, data, 1, output), 4);

    /* An empty journal stays empty, so that a restore without --force can run again. */
    gdn_it_server_t empty;

    CU_ASSERT_FATAL(gdn_it_server_init(&empty) == 0);
    CU_ASSERT_FATAL(gdn_it_s3_configure(&empty, &service, bucket, GDN_IT_S3_SECRET_KEY, NULL) == 0);
    CU_ASSERT_EQUAL(run_restore(empty.config_path, empty.data_dir, 0, output), 4);
    clear_faults();
    CU_ASSERT_EQUAL(run_restore(empty.config_path, empty.data_dir, 0, output), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(output, "restored 354 records"));
    gdn_it_server_cleanup(&empty);

    /* The full journal still holds its records: a restore without --force refuses it. */
    CU_ASSERT_EQUAL(run_restore(config, data, 0, output), 3);
}

static void test_s3__restore_reproduces_records_and_claim_order(void)
{
    static const char *const roles[] = {"archivist", "gardener", "scout"};
    gdn_it_server_t srv;
    gdn_it_server_t restored;
    gdn_it_client_t client;
    gdn_it_records_t exp = {0};
    struct snapshot before;
    struct snapshot after;
    char bucket[BUCKET_SIZE];
    char *output = malloc(OUTPUT_MAX);
    int unexpected = 0;

    CU_ASSERT_FATAL(output != NULL);
    begin_test(&srv, &client, bucket, "flush_interval_ms = 100\n");

    for (int i = 0; i < 300; i++) {
        char body[256];

        snprintf(body, sizeof(body),
                 "{\"task_type\":\"restore\",\"role\":\"%s\",\"priority\":%d,"
                 "\"project_id\":\"p%d\",\"input_data\":{\"i\":%d}}",
                 roles[i % 3], (i * 7) % 11 - 2, i % 4, i);
        unexpected += create_recorded(&client, body, &exp.tasks) != 200;
    }
    for (int i = 0; i < 4; i++) {
        char worker[32];

        snprintf(worker, sizeof(worker), "s3-restore-%d", i);
        unexpected += register_worker(&client, worker, roles[i % 3]) != 200;
        CU_ASSERT_FATAL(gdn_it_strs_push(&exp.workers, worker) == 0);
    }
    unexpected += claim_and_complete(&client, "s3-restore-0", "archivist", 30, 20, &exp);
    unexpected += claim_and_complete(&client, "s3-restore-1", "gardener,scout", 40, 25, &exp);
    unexpected += claim_and_complete(&client, "s3-restore-2", NULL, 20, 5, &exp);
    CU_ASSERT_EQUAL(unexpected, 0);
    CU_ASSERT_EQUAL(gdn_it_wait_flushed(&client, CATCH_UP_S), 0);
    snapshot_take(&client, &exp.tasks, &before);
    printf("  original: %lld pending, %lld processing, %lld completed, %lld failed, %lld "
           "workers\n",
           before.stats[0], before.stats[1], before.stats[2], before.stats[3], before.stats[4]);
    CU_ASSERT_EQUAL(before.stats[0], 300 - 90);
    CU_ASSERT_EQUAL(before.stats[1], 90 - 50);
    gdn_it_client_close(&client);
    stop_server(&srv);

    /* The restore command on an empty data directory, then twice more on the full one. */
    CU_ASSERT_FATAL(gdn_it_server_init(&restored) == 0);
    CU_ASSERT_FATAL(gdn_it_s3_configure(&restored, &service, bucket, GDN_IT_S3_SECRET_KEY, NULL) ==
                    0);
    int code = run_restore(restored.config_path, restored.data_dir, 0, output);

    printf("  restore: exit %d: %s", code, output);
    CU_ASSERT_EQUAL(code, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(output, "restored 354 records"));
    code = run_restore(restored.config_path, restored.data_dir, 0, output);
    CU_ASSERT_EQUAL(code, 3);
    code = run_restore(restored.config_path, restored.data_dir, 1, output);
    CU_ASSERT_EQUAL(code, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(output, "restored 354 records"));
    restore_through_faults(&restored, bucket, output);

    CU_ASSERT_FATAL(gdn_it_server_start(&restored) == 0);
    CU_ASSERT_FATAL(gdn_it_client_open(&client, &restored, GDN_IT_HTTP1) == 0);
    snapshot_take(&client, &exp.tasks, &after);
    CU_ASSERT_EQUAL(snapshot_compare(&before, &after, "restore command"), 0);
    CU_ASSERT_EQUAL(gdn_it_stat(&client, "dirty_records"), 0);
    gdn_it_client_close(&client);
    stop_server(&restored);
    snapshot_free(&after);

    /* A server started on an empty data directory restores by itself... */
    char *log = malloc(OUTPUT_MAX);

    CU_ASSERT_FATAL(log != NULL);
    snapshot_fresh(bucket, NULL, &exp.tasks, &after, log, OUTPUT_MAX);
    CU_ASSERT_EQUAL(snapshot_compare(&before, &after, "restore_on_empty"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "restore_done"));
    snapshot_free(&after);

    /* ...unless told not to. */
    snapshot_fresh(bucket, "restore_on_empty = false\n", &(gdn_it_strs_t){0}, &after, log,
                   OUTPUT_MAX);
    for (size_t i = 0; i < sizeof(snapshot_stats) / sizeof(snapshot_stats[0]); i++)
        CU_ASSERT_EQUAL(after.stats[i], 0);
    CU_ASSERT_STRING_EQUAL(after.pending ? after.pending : "", "{\"tasks\":[]}");
    CU_ASSERT_PTR_NULL(strstr(log, "restore_done"));
    snapshot_free(&after);

    snapshot_free(&before);
    gdn_it_server_cleanup(&srv);
    gdn_it_server_cleanup(&restored);
    gdn_it_records_free(&exp);
    free(output);
    free(log);
}

/* A key that XML spells far longer than it is: a worker id of 200 quotes takes 1,207
 * characters in a listing (`&quot;`). Restore must read it whole. */
static void test_s3__restore_reads_a_key_that_xml_spells_long(void)
{
    gdn_it_server_t srv;
    gdn_it_server_t restored;
    gdn_it_client_t client;
    gdn_it_response_t res;
    char bucket[BUCKET_SIZE];
    char body[1024] = "{\"worker_id\":\"";
    char *output = malloc(OUTPUT_MAX);

    CU_ASSERT_FATAL(output != NULL);
    for (int i = 0; i < 200; i++)
        strncat(body, "\\\"", sizeof(body) - strlen(body) - 1);
    strncat(body, "\",\"capabilities\":[\"quote\"]}", sizeof(body) - strlen(body) - 1);
    begin_test(&srv, &client, bucket, "flush_interval_ms = 100\n");
    gdn_it_call(&client, "POST", "/poll/register", body, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    gdn_it_response_free(&res);
    CU_ASSERT_EQUAL(gdn_it_wait_flushed(&client, CATCH_UP_S), 0);
    end_test(&srv, &client, NULL);

    CU_ASSERT_FATAL(gdn_it_server_init(&restored) == 0);
    CU_ASSERT_FATAL(gdn_it_s3_configure(&restored, &service, bucket, GDN_IT_S3_SECRET_KEY, NULL) ==
                    0);
    CU_ASSERT_EQUAL(run_restore(restored.config_path, restored.data_dir, 0, output), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(output, "restored 1 records"));
    CU_ASSERT_PTR_NOT_NULL(strstr(output, "1 workers"));
    gdn_it_server_cleanup(&restored);
    free(output);
}

static void test_s3__wrong_secret_degrades_then_recovers(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;
    gdn_it_records_t exp = {0};
    char bucket[BUCKET_SIZE];
    long long backlog = -1;
    int unexpected = 0;
    const char *extra = "flush_interval_ms = 100\nflush_retry_max_ms = 400\n"
                        "restore_on_empty = false\n";

    reset_service();
    next_bucket(bucket, sizeof(bucket));
    CU_ASSERT_FATAL(gdn_it_server_init(&srv) == 0);
    CU_ASSERT_FATAL(gdn_it_s3_configure(&srv, &service, bucket, "not-the-secret", extra) == 0);
    CU_ASSERT_FATAL(gdn_it_server_start(&srv) == 0);
    CU_ASSERT_FATAL(gdn_it_client_open(&client, &srv, GDN_IT_HTTP1) == 0);

    for (int i = 0; i < 50; i++)
        unexpected += create_recorded(&client, "{\"task_type\":\"secret\"}", &exp.tasks) != 200;
    CU_ASSERT_EQUAL(unexpected, 0);
    CU_ASSERT_EQUAL(gdn_it_wait_degraded(&client, 10.0, &backlog), 0);
    CU_ASSERT_EQUAL(backlog, 50);

    /* Let several retries fail, so that a line per attempt or per record would show. */
    double deadline = gdn_it_now_seconds() + 10.0;

    while (gdn_it_s3_counter(&service, "rejected", "SignatureDoesNotMatch") < 6 &&
           gdn_it_now_seconds() < deadline)
        gdn_it_sleep_ms(100);
    long long rejected = gdn_it_s3_counter(&service, "rejected", "SignatureDoesNotMatch");

    CU_ASSERT(rejected >= 6);
    CU_ASSERT(gdn_it_s3_counter(&service, "by_status", "403") >= rejected);
    CU_ASSERT_EQUAL(gdn_it_s3_counter(&service, "by_key", "PUT task"), 0);
    CU_ASSERT(gdn_it_read_health(&client, &backlog, (char[32]){0}, 32) == 0 && backlog == 50);
    gdn_it_client_close(&client);
    stop_server(&srv);

    int lines = count_error_lines(srv.log_path, "SignatureDoesNotMatch");

    printf("  %lld requests refused with SignatureDoesNotMatch, %d error lines name it\n", rejected,
           lines);
    CU_ASSERT(lines >= 1);
    CU_ASSERT(lines <= 3);

    /* With the right secret, the same journal goes out in full. */
    CU_ASSERT_FATAL(gdn_it_s3_configure(&srv, &service, bucket, GDN_IT_S3_SECRET_KEY, extra) == 0);
    CU_ASSERT_FATAL(gdn_it_server_start(&srv) == 0);
    CU_ASSERT_FATAL(gdn_it_client_open(&client, &srv, GDN_IT_HTTP1) == 0);
    CU_ASSERT_EQUAL(gdn_it_wait_flushed(&client, CATCH_UP_S), 0);
    CU_ASSERT_EQUAL(gdn_it_s3_compare_bucket(&service, &client, bucket, &exp), 0);
    end_test(&srv, &client, &exp);
}

/* Knocks on a port while a server that should not serve is running. */
struct knocker {
    gdn_it_server_t target; /* only its port is used */
    atomic_int stop;
    int answers;
};

static void *run_knocker(void *arg)
{
    struct knocker *k = arg;
    gdn_it_client_t client;

    if (gdn_it_client_open(&client, &k->target, GDN_IT_HTTP1) != 0)
        return NULL;
    while (!atomic_load(&k->stop)) {
        gdn_it_response_t res;

        gdn_it_call(&client, "GET", "/health", NULL, &res);
        k->answers += res.status != 0;
        gdn_it_response_free(&res);
        gdn_it_sleep_ms(50);
    }
    gdn_it_client_close(&client);
    return NULL;
}

static void test_s3__empty_journal_and_unreachable_bucket_refuse_to_start(void)
{
    gdn_it_server_t srv;
    struct knocker knocker;
    char bucket[BUCKET_SIZE];
    char listen[64];
    char *output = malloc(OUTPUT_MAX);
    int code = -1;

    CU_ASSERT_FATAL(output != NULL);
    reset_service();
    next_bucket(bucket, sizeof(bucket));
    CU_ASSERT_FATAL(gdn_it_server_init(&srv) == 0);
    CU_ASSERT_FATAL(gdn_it_s3_configure(&srv, &service, bucket, GDN_IT_S3_SECRET_KEY,
                                        "restore_wait_s = 2\n") == 0);

    memset(&knocker, 0, sizeof(knocker));
    knocker.target.port = gdn_it_free_port();
    CU_ASSERT_FATAL(knocker.target.port > 0);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", knocker.target.port);

    const char *args[] = {"--listen", listen,          "--data-dir", srv.data_dir,
                          "--config", srv.config_path, NULL};
    pthread_t thread;

    start_outage();
    CU_ASSERT_FATAL(pthread_create(&thread, NULL, run_knocker, &knocker) == 0);
    double start = gdn_it_now_seconds();

    CU_ASSERT_EQUAL(gdn_it_run_program(args, output, OUTPUT_MAX, &code), 0);
    double seconds = gdn_it_now_seconds() - start;

    atomic_store(&knocker.stop, 1);
    pthread_join(thread, NULL);
    clear_faults();

    printf("  exit %d after %.1f s, %d answers on its port\n", code, seconds, knocker.answers);
    CU_ASSERT_EQUAL(code, 4);
    CU_ASSERT_EQUAL(knocker.answers, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(output, "level=error"));
    CU_ASSERT_PTR_NOT_NULL(strstr(output, "bucket_unreachable"));
    if (code != 4 || !strstr(output, "bucket_unreachable"))
        fprintf(stderr, "---- server output ----\n%s\n---- end ----\n", output);
    gdn_it_server_cleanup(&srv);
    free(output);
}

static CU_TestInfo s3_tests[] = {
    {"After a flush the bucket holds exactly the journal's records, byte for byte",
     test_s3__bucket_equals_journal_after_flush},
    {"A task created, claimed and completed within one interval costs one PUT per record",
     test_s3__one_put_per_record_within_an_interval},
    {"Heartbeats upload the worker only when half its time-to-live has passed",
     test_s3__heartbeats_are_cheap},
    {"Through an outage, SlowDown, resets mid-upload and slow answers the server keeps "
     "answering, and the bucket then equals the journal",
     test_s3__fault_storms_under_load_then_converge},
    {"A backlog left by SIGKILL is uploaded after a restart with no request",
     test_s3__sigkill_with_backlog_uploads_after_restart},
    {"Restore into an empty data directory reproduces every record and the claim order",
     test_s3__restore_reproduces_records_and_claim_order},
    {"restore reads a 200-quote worker id that the listing spells in 1,207 characters",
     test_s3__restore_reads_a_key_that_xml_spells_long},
    {"A wrong secret degrades the bucket copy with one error line, and the right one recovers",
     test_s3__wrong_secret_degrades_then_recovers},
    {"An empty journal beside an unreachable bucket exits 4 without serving",
     test_s3__empty_journal_and_unreachable_bucket_refuse_to_start},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo gdn_test_suites[] = {
    {.pName = "Bucket copy on S3",
     .pInitFunc = init_suite,
     .pCleanupFunc = cleanup_suite,
     .pTests = s3_tests},
    CU_SUITE_INFO_NULL,
};
