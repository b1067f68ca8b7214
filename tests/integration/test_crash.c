/*
 * Integration test of durability across crashes: several threads drive a mixed load (creates,
 * claims, completions, registrations, heartbeats) and record every acknowledged operation;
 * the server is killed with SIGKILL at a random moment and restarted on the same data
 * directory, and every acknowledged effect must still be there.
 *
 * An operation whose answer never arrived may or may not have happened. Each thread keeps its
 * one in-flight operation so that the check can allow exactly those outcomes and no others.
 */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cunit_main.h"
#include "harness.h"

#define THREADS 4
#define CYCLES 5
#define ROLE "crash"
#define HELD_MAX 8
#define ERRORS_SHOWN 5

/* Task states, ordered: an acknowledged state is never replaced by an earlier one. */
enum task_state { STATE_PENDING, STATE_PROCESSING, STATE_COMPLETED, STATE_FAILED };

static const char *const state_names[] = {"pending", "processing", "completed", "failed"};

struct model_task {
    char id[GDN_IT_ID_SIZE];
    enum task_state state;
    char owner[32];   /* assigned_to once claimed */
    long long result; /* the `seq` of the result once finished */
};

/* Everything the server acknowledged, shared by the load threads. */
struct model {
    pthread_mutex_t lock;
    struct model_task *tasks;
    size_t count;
    size_t capacity;
    int workers_registered[THREADS];
};

enum op_kind { OP_NONE, OP_CREATE, OP_POLL, OP_COMPLETE, OP_REGISTER, OP_HEARTBEAT };

/* The operation a thread had sent when the server died. */
struct in_flight {
    enum op_kind kind;
    char task_id[GDN_IT_ID_SIZE];
    enum task_state final_state;
    long long result;
};

struct crash_thread {
    pthread_t thread;
    int index;
    gdn_it_server_t *srv;
    gdn_it_proto_t proto;
    struct model *model;
    char worker[32];
    unsigned seed;
    long long next_seq;
    char held[HELD_MAX][GDN_IT_ID_SIZE];
    int held_count;
    struct in_flight in_flight;
    int acknowledged;
    int unexpected;
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

static struct model_task *find_task(struct model *m, const char *id)
{
    for (size_t i = 0; i < m->count; i++) {
        if (strcmp(m->tasks[i].id, id) == 0)
            return &m->tasks[i];
    }
    return NULL;
}

/*
 * Records an acknowledged state. Answers can be processed out of order between threads (a
 * claim of a task whose creator has not yet read its own answer), so a state only ever moves
 * forward.
 */
static void record_state(struct model *m, const char *id, enum task_state state, const char *owner,
                         long long result)
{
    pthread_mutex_lock(&m->lock);
    struct model_task *t = find_task(m, id);
    if (!t && m->count == m->capacity) {
        size_t capacity = m->capacity ? m->capacity * 2 : 1024;
        struct model_task *grown = realloc(m->tasks, capacity * sizeof(*grown));
        if (grown) {
            m->tasks = grown;
            m->capacity = capacity;
        }
    }
    if (!t && m->count < m->capacity) {
        t = &m->tasks[m->count++];
        memset(t, 0, sizeof(*t));
        snprintf(t->id, sizeof(t->id), "%s", id);
        t->state = STATE_PENDING;
    }
    if (t && state > t->state) {
        t->state = state;
        if (owner)
            snprintf(t->owner, sizeof(t->owner), "%s", owner);
        t->result = result;
    }
    pthread_mutex_unlock(&m->lock);
}

static void note_unexpected(struct crash_thread *t, const char *what, const gdn_it_response_t *res)
{
    if (t->unexpected++ < ERRORS_SHOWN)
        fprintf(stderr, "  %s: %s answered %ld: %.200s\n", t->worker, what, res->status,
                res->body ? res->body : "");
}

/*
 * Sends one request with `kind` recorded as in flight. Returns 1 with the answer in `res` when
 * it is a 200, 0 when the server is gone (the thread stops, the operation stays in flight), or
 * -1 on any other answer, which the test counts as a failure.
 */
static int send_op(struct crash_thread *t, gdn_it_client_t *client, enum op_kind kind,
                   const char *method, const char *path, const char *body, gdn_it_response_t *res)
{
    t->in_flight.kind = kind;
    if (gdn_it_call(client, method, path, body, res) != 0)
        return 0;
    if (res->status != 200) {
        note_unexpected(t, path, res);
        return -1;
    }
    t->in_flight.kind = OP_NONE;
    t->acknowledged++;
    return 1;
}

static int do_create(struct crash_thread *t, gdn_it_client_t *client)
{
    char body[256];
    gdn_it_response_t res;

    snprintf(body, sizeof(body),
             "{\"task_type\":\"crash\",\"role\":\"" ROLE "\",\"priority\":%d,"
             "\"input_data\":{\"thread\":%d,\"seq\":%lld}}",
             (int)(rand_r(&t->seed) % 3), t->index, t->next_seq++);
    int rc = send_op(t, client, OP_CREATE, "POST", "/tasks", body, &res);
    const char *id = gdn_it_json_string(res.json, "task_id", NULL);
    if (rc == 1 && id)
        record_state(t->model, id, STATE_PENDING, NULL, 0);
    else if (rc == 1)
        rc = -1;
    gdn_it_response_free(&res);
    return rc;
}

static int do_poll(struct crash_thread *t, gdn_it_client_t *client)
{
    char path[128];
    gdn_it_response_t res;

    snprintf(path, sizeof(path), "/poll/next?worker_id=%s&roles=" ROLE, t->worker);
    int rc = send_op(t, client, OP_POLL, "GET", path, NULL, &res);
    const char *id = gdn_it_json_string(res.json, "task", "id", NULL);
    const char *owner = gdn_it_json_string(res.json, "task", "assigned_to", NULL);
    if (rc == 1 && id) {
        if (!owner || strcmp(owner, t->worker) != 0)
            note_unexpected(t, "claim with another owner", &res);
        record_state(t->model, id, STATE_PROCESSING, t->worker, 0);
        if (t->held_count < HELD_MAX)
            snprintf(t->held[t->held_count++], GDN_IT_ID_SIZE, "%s", id);
    }
    gdn_it_response_free(&res);
    return rc;
}

static int do_complete(struct crash_thread *t, gdn_it_client_t *client)
{
    char body[512];
    gdn_it_response_t res;
    struct in_flight *f = &t->in_flight;

    snprintf(f->task_id, sizeof(f->task_id), "%s", t->held[--t->held_count]);
    f->result = t->next_seq++;
    f->final_state = f->result % 5 == 0 ? STATE_FAILED : STATE_COMPLETED;
    snprintf(body, sizeof(body),
             "{\"task_id\":\"%s\",\"status\":\"%s\",\"result\":{\"by\":\"%s\",\"seq\":%lld}}",
             f->task_id, state_names[f->final_state], t->worker, f->result);
    int rc = send_op(t, client, OP_COMPLETE, "POST", "/poll/complete", body, &res);
    if (rc == 1)
        record_state(t->model, f->task_id, f->final_state, NULL, f->result);
    gdn_it_response_free(&res);
    return rc;
}

static int do_worker_op(struct crash_thread *t, gdn_it_client_t *client)
{
    char body[256];
    gdn_it_response_t res;
    int registered = t->model->workers_registered[t->index];

    if (!registered) {
        snprintf(body, sizeof(body), "{\"worker_id\":\"%s\",\"capabilities\":[\"" ROLE "\"]}",
                 t->worker);
        int rc = send_op(t, client, OP_REGISTER, "POST", "/poll/register", body, &res);
        if (rc == 1)
            t->model->workers_registered[t->index] = 1;
        gdn_it_response_free(&res);
        return rc;
    }
    snprintf(body, sizeof(body), "{\"worker_id\":\"%s\"}", t->worker);
    int rc = send_op(t, client, OP_HEARTBEAT, "POST", "/poll/heartbeat", body, &res);
    const char *status = gdn_it_json_string(res.json, "status", NULL);
    if (rc == 1 && (!status || strcmp(status, "ok") != 0)) {
        note_unexpected(t, "heartbeat of a registered worker", &res);
        rc = -1;
    }
    gdn_it_response_free(&res);
    return rc;
}

/* Runs one step of the load, chosen at random. Returns what send_op returned. */
static int run_step(struct crash_thread *t, gdn_it_client_t *client, int step)
{
    unsigned dice = (unsigned)rand_r(&t->seed) % 10;

    if (step % 8 == 0)
        return do_worker_op(t, client);
    if (t->held_count > 0 && (dice < 4 || t->held_count == HELD_MAX))
        return do_complete(t, client);
    if (dice < 7)
        return do_create(t, client);
    return do_poll(t, client);
}

static void *run_load(void *arg)
{
    struct crash_thread *t = arg;
    gdn_it_client_t client;

    if (gdn_it_client_open(&client, t->srv, t->proto) != 0) {
        t->unexpected++;
        return NULL;
    }
    for (int step = 0;; step++) {
        if (run_step(t, &client, step) != 1)
            break;
    }
    gdn_it_client_close(&client);
    return NULL;
}

/*
 * Whether a thread's in-flight operation could have left task `m` as the server shows it. An
 * operation explains one task at most: it is used up once it has.
 */
static int in_flight_explains(struct crash_thread *threads, const struct model_task *m,
                              enum task_state seen, const char *owner, long long result)
{
    for (int i = 0; i < THREADS; i++) {
        struct in_flight *f = &threads[i].in_flight;
        int owner_is_thread = owner && strcmp(owner, threads[i].worker) == 0;
        int claimed = f->kind == OP_POLL && m->state == STATE_PENDING && seen == STATE_PROCESSING &&
                      owner_is_thread;
        int finished = f->kind == OP_COMPLETE && strcmp(f->task_id, m->id) == 0 &&
                       m->state == STATE_PROCESSING && seen == f->final_state &&
                       result == f->result;
        if (claimed || finished) {
            f->kind = OP_NONE;
            return 1;
        }
    }
    return 0;
}

static int parse_state(const char *name)
{
    for (int i = 0; i < 4; i++) {
        if (name && strcmp(name, state_names[i]) == 0)
            return i;
    }
    return -1;
}

/*
 * Reads task `m` back and checks it against the model; adopts an outcome that an in-flight
 * operation explains. Returns 0 when the task is as acknowledged, 1 when an in-flight
 * operation explains it, -1 otherwise.
 */
static int verify_task(gdn_it_client_t *client, struct crash_thread *threads, struct model_task *m)
{
    char path[128];
    gdn_it_response_t res;

    snprintf(path, sizeof(path), "/tasks/%s", m->id);
    gdn_it_call(client, "GET", path, NULL, &res);
    int seen = parse_state(gdn_it_json_string(res.json, "status", NULL));
    const char *owner = gdn_it_json_string(res.json, "assigned_to", NULL);
    long long result = -1;
    gdn_it_json_integer(res.json, &result, "result", "seq", NULL);

    int explained = 0;
    int ok = res.status == 200 && seen == (int)m->state;
    if (ok && m->state >= STATE_PROCESSING)
        ok = owner && strcmp(owner, m->owner) == 0;
    if (ok && m->state >= STATE_COMPLETED)
        ok = result == m->result;
    if (!ok && res.status == 200 && seen >= 0 &&
        in_flight_explains(threads, m, (enum task_state)seen, owner, result)) {
        m->state = (enum task_state)seen;
        if (seen == STATE_PROCESSING)
            snprintf(m->owner, sizeof(m->owner), "%s", owner);
        m->result = result;
        ok = 1;
        explained = 1;
    }
    if (!ok)
        fprintf(stderr, "  task %s acknowledged %s (owner %s, result %lld), now %ld %.300s\n",
                m->id, state_names[m->state], m->owner, m->result, res.status,
                res.body ? res.body : "");
    gdn_it_response_free(&res);
    return ok ? explained : -1;
}

static int count_in_flight(const struct crash_thread *threads, enum op_kind kind)
{
    int n = 0;

    for (int i = 0; i < THREADS; i++)
        n += threads[i].in_flight.kind == kind;
    return n;
}

/*
 * Claims every pending task with a verification worker: each task the model holds as pending
 * must come out, and nothing else but tasks whose create was in flight. Returns the number of
 * problems.
 */
static int drain_pending(gdn_it_client_t *client, const struct crash_thread *threads,
                         struct model *m, int cycle)
{
    char worker[32], id[GDN_IT_ID_SIZE];
    size_t expected = 0, drained = 0;
    int unknown = 0, problems = 0;

    snprintf(worker, sizeof(worker), "verify-%d", cycle);
    for (size_t i = 0; i < m->count; i++)
        expected += m->tasks[i].state == STATE_PENDING;
    for (;;) {
        long status = gdn_it_poll(client, worker, ROLE, id);
        if (status != 200 || !id[0]) {
            problems += status != 200;
            break;
        }
        struct model_task *t = find_task(m, id);
        if (t && t->state == STATE_PENDING) {
            t->state = STATE_PROCESSING;
            snprintf(t->owner, sizeof(t->owner), "%s", worker);
            drained++;
        } else if (!t) {
            unknown++;
        } else {
            fprintf(stderr, "  task %s was claimable but is %s\n", id, state_names[t->state]);
            problems++;
        }
    }
    if (drained != expected || unknown > count_in_flight(threads, OP_CREATE)) {
        fprintf(stderr, "  drained %zu of %zu pending tasks, %d unknown\n", drained, expected,
                unknown);
        problems++;
    }
    return problems;
}

static int verify_workers(gdn_it_client_t *client, const struct model *m)
{
    gdn_it_response_t res;
    int missing = 0;

    gdn_it_call(client, "GET", "/poll/workers", NULL, &res);
    yajl_val workers = gdn_it_json_get(res.json, "workers", NULL);
    for (int i = 0; i < THREADS; i++) {
        char name[32];
        int found = 0;
        snprintf(name, sizeof(name), "crash-worker-%d", i);
        for (size_t w = 0; w < gdn_it_json_length(workers); w++) {
            const char *id = gdn_it_json_string(gdn_it_json_at(workers, w), "worker_id", NULL);
            found |= id && strcmp(id, name) == 0;
        }
        if (m->workers_registered[i] && !found) {
            fprintf(stderr, "  registered worker %s is gone\n", name);
            missing++;
        }
    }
    gdn_it_response_free(&res);
    return missing;
}

static void setup_threads(struct crash_thread *threads, gdn_it_server_t *srv, struct model *m,
                          unsigned seed)
{
    for (int i = 0; i < THREADS; i++) {
        struct crash_thread *t = &threads[i];
        memset(t, 0, sizeof(*t));
        t->index = i;
        t->srv = srv;
        t->proto = i % 2 ? GDN_IT_HTTP2 : GDN_IT_HTTP1;
        t->model = m;
        t->seed = seed + (unsigned)i;
        t->next_seq = 1;
        snprintf(t->worker, sizeof(t->worker), "crash-worker-%d", i);
    }
}

/* Runs the load, kills the server after `delay_ms`, and returns the acknowledged count. */
static int run_cycle(gdn_it_server_t *srv, struct crash_thread *threads, long delay_ms)
{
    int acknowledged = 0;

    for (int i = 0; i < THREADS; i++)
        CU_ASSERT_FATAL(pthread_create(&threads[i].thread, NULL, run_load, &threads[i]) == 0);
    usleep((useconds_t)delay_ms * 1000);
    gdn_it_server_kill(srv);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i].thread, NULL);
        acknowledged += threads[i].acknowledged;
        CU_ASSERT_EQUAL(threads[i].unexpected, 0);
    }
    return acknowledged;
}

static void verify_after_restart(gdn_it_server_t *srv, struct crash_thread *threads,
                                 struct model *m, int cycle)
{
    gdn_it_client_t client;
    int wrong = 0, explained = 0;

    CU_ASSERT_FATAL(gdn_it_client_open(&client, srv, GDN_IT_HTTP1) == 0);
    for (size_t i = 0; i < m->count; i++) {
        int rc = verify_task(&client, threads, &m->tasks[i]);
        wrong += rc < 0;
        explained += rc > 0;
    }
    int drain_problems = drain_pending(&client, threads, m, cycle);
    int missing_workers = verify_workers(&client, m);

    size_t by_state[4] = {0};
    for (size_t i = 0; i < m->count; i++)
        by_state[m->tasks[i].state]++;
    printf("  cycle %d: %zu tasks known (%zu processing, %zu completed, %zu failed), "
           "%d explained by unanswered requests, %d wrong, %d drain problems, "
           "%d workers missing\n",
           cycle, m->count, by_state[STATE_PROCESSING], by_state[STATE_COMPLETED],
           by_state[STATE_FAILED], explained, wrong, drain_problems, missing_workers);
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(drain_problems, 0);
    CU_ASSERT_EQUAL(missing_workers, 0);
    gdn_it_client_close(&client);
}

static void test_crash__acknowledged_work_survives_sigkill(void)
{
    gdn_it_server_t srv;
    struct model m = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct crash_thread threads[THREADS];
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    int total_acknowledged = 0;

    printf("  random seed %u\n", seed);
    CU_ASSERT_FATAL(gdn_it_server_init(&srv) == 0);
    CU_ASSERT_FATAL(gdn_it_server_start(&srv) == 0);

    for (int cycle = 0; cycle < CYCLES; cycle++) {
        setup_threads(threads, &srv, &m, seed + (unsigned)cycle * 97u);
        long delay_ms = 150 + (long)(rand_r(&seed) % 550);
        int acknowledged = run_cycle(&srv, threads, delay_ms);
        printf("  cycle %d: killed after %ld ms, %d operations acknowledged\n", cycle, delay_ms,
               acknowledged);
        total_acknowledged += acknowledged;

        if (gdn_it_server_start(&srv) != 0) {
            CU_FAIL("the server did not restart on its data directory");
            break;
        }
        verify_after_restart(&srv, threads, &m, cycle);
    }
    CU_ASSERT(total_acknowledged > 0);

    gdn_it_exit_t ex;
    CU_ASSERT_EQUAL(gdn_it_server_stop(&srv, SIGTERM, 10.0, &ex), 0);
    CU_ASSERT(ex.exited && ex.code == 0);
    free(m.tasks);
    gdn_it_server_cleanup(&srv);
}

static CU_TestInfo crash_tests[] = {
    {"Every acknowledged create, claim, completion and registration survives SIGKILL",
     test_crash__acknowledged_work_survives_sigkill},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo gdn_test_suites[] = {
    {.pName = "Crash recovery",
     .pInitFunc = init_suite,
     .pCleanupFunc = cleanup_suite,
     .pTests = crash_tests},
    CU_SUITE_INFO_NULL,
};
