/*
 * Integration test of durability across crashes: several threads drive a mixed load (creates,
 * claims with short and long polls, completions, registrations, heartbeats) and record every
 * acknowledged operation; the server is killed with SIGKILL at a random moment and restarted
 * on the same data directory, cycle after cycle. After each restart every acknowledged effect
 * must still be there, and no task may ever have been handed to two workers at once. After
 * the last restart the bucket copy must catch up and equal the journal object by object.
 *
 * An operation whose answer never arrived may or may not have happened. Each thread keeps its
 * one in-flight operation so that the check can allow exactly those outcomes and no others.
 *
 * The kill delays come from a seed printed at the start; GDN_CRASH_SEED replays a run, and
 * GDN_CRASH_CYCLES raises the number of cycles for long runs. The suite starts the test S3
 * service of tests/s3 (found through GDN_S3_DIR), as test_s3 does.
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
#define ROLE "crash"
#define HELD_MAX 8
#define ERRORS_SHOWN 5

/* Kill-and-restart cycles unless GDN_CRASH_CYCLES asks for more. */
#define CYCLES_DEFAULT 30

/* Creates per thread and cycle: enough to keep claims and completions busy, few enough that
 * the object-by-object comparison of the bucket at the end stays short. */
#define CREATES_PER_CYCLE 20

/* The load runs this long at least, and up to KILL_SPREAD_MS more, before the kill. */
#define KILL_MIN_MS 150
#define KILL_SPREAD_MS 1850

/* The lease of every claim; no lease can lapse within a run, so a task held by one worker
 * must never be handed to another. */
#define LEASE_S 600

/* Bound of the wait for the bucket copy to catch up after the last restart. */
#define CATCH_UP_S 60.0

/* Task states, ordered: an acknowledged state is never replaced by an earlier one. */
enum task_state { STATE_PENDING, STATE_PROCESSING, STATE_COMPLETED, STATE_FAILED };

static const char *const state_names[] = {"pending", "processing", "completed", "failed"};

struct model_task {
    char id[GDN_IT_ID_SIZE];
    enum task_state state;
    char owner[32];   /* assigned_to once claimed */
    long long result; /* the `seq` of the result once finished */
    char holder[32];  /* the worker whose acknowledged claim is not finished yet, or empty */
    double held_at;   /* when that claim was acknowledged, on the monotonic clock */
};

/* Everything the server acknowledged, shared by the load threads. */
struct model {
    pthread_mutex_t lock;
    struct model_task *tasks;
    size_t count;
    size_t capacity;
    int workers_registered[THREADS];
    int double_holds; /* claims of a task another worker still held */
};

enum op_kind { OP_NONE, OP_CREATE, OP_POLL, OP_COMPLETE, OP_REGISTER, OP_HEARTBEAT, OP_KINDS };

/* The test S3 service of this suite. */
static gdn_it_s3_t service;

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
    int creates_left;
    int acknowledged;
    int by_kind[OP_KINDS]; /* acknowledged operations by kind; claims count tasks received */
    int unexpected;
};

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

static struct model_task *find_task(struct model *m, const char *id)
{
    for (size_t i = 0; i < m->count; i++) {
        if (strcmp(m->tasks[i].id, id) == 0)
            return &m->tasks[i];
    }
    return NULL;
}

/* Finds task `id` in the model, adding it as pending if it is new. Call with the lock held. */
static struct model_task *model_task(struct model *m, const char *id)
{
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
    return t;
}

/*
 * Records that `worker` was handed task `t`. A task still held by an acknowledged claim whose
 * lease has not lapsed, with no acknowledged completion since, must not be handed out again:
 * that would be two workers holding it at once. Call with the lock held.
 */
static void note_claim(struct model *m, struct model_task *t, const char *worker)
{
    double now = gdn_it_now_seconds();

    if (t->holder[0] && now - t->held_at < LEASE_S) {
        m->double_holds++;
        fprintf(stderr, "  task %s handed to %s while %s held it (claimed %.1f s ago)\n", t->id,
                worker, t->holder, now - t->held_at);
    }
    snprintf(t->holder, sizeof(t->holder), "%s", worker);
    t->held_at = now;
}

/*
 * Records an acknowledged state. Answers can be processed out of order between threads (a
 * claim of a task whose creator has not yet read its own answer), so a state only ever moves
 * forward; claims and completions also start and end holds.
 */
static void record_state(struct model *m, const char *id, enum task_state state, const char *owner,
                         long long result)
{
    pthread_mutex_lock(&m->lock);
    struct model_task *t = model_task(m, id);
    if (t && state == STATE_PROCESSING)
        note_claim(m, t, owner);
    if (t && state >= STATE_COMPLETED)
        t->holder[0] = '\0';
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
    if (kind != OP_POLL)
        t->by_kind[kind]++;
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

    /* A third of the polls answer at once; the others wait up to one or two seconds, so that
     * kills also land while polls are parked. */
    int wait_s = (int)((unsigned)rand_r(&t->seed) % 3);
    snprintf(path, sizeof(path), "/poll/next?worker_id=%s&roles=" ROLE "&wait=%d", t->worker,
             wait_s);
    int rc = send_op(t, client, OP_POLL, "GET", path, NULL, &res);
    const char *id = gdn_it_json_string(res.json, "task", "id", NULL);
    const char *owner = gdn_it_json_string(res.json, "task", "assigned_to", NULL);
    if (rc == 1 && id) {
        if (!owner || strcmp(owner, t->worker) != 0)
            note_unexpected(t, "claim with another owner", &res);
        record_state(t->model, id, STATE_PROCESSING, t->worker, 0);
        t->by_kind[OP_POLL]++;
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
    if (dice < 7 && t->creates_left > 0) {
        t->creates_left--;
        return do_create(t, client);
    }
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
        if (seen == STATE_PROCESSING) {
            snprintf(m->owner, sizeof(m->owner), "%s", owner);
            note_claim(threads[0].model, m, owner);
        } else {
            m->holder[0] = '\0';
        }
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
 * Pages through the claimable tasks (GET /tasks without a status, in claim order): each task
 * the model holds as pending must be listed, and nothing else but tasks whose create was in
 * flight. Reading the queue rather than draining it leaves the tasks to the next cycle's load.
 * Returns the number of problems.
 */
static int verify_queue(gdn_it_client_t *client, const struct crash_thread *threads,
                        struct model *m)
{
    size_t expected = 0, listed = 0;
    int unknown = 0, problems = 0;
    char cursor[256] = "";

    for (size_t i = 0; i < m->count; i++)
        expected += m->tasks[i].state == STATE_PENDING;
    do {
        char path[384];
        gdn_it_response_t res;

        snprintf(path, sizeof(path), "/tasks?role=" ROLE "&limit=500%s%s",
                 cursor[0] ? "&cursor=" : "", cursor);
        cursor[0] = '\0';
        gdn_it_call(client, "GET", path, NULL, &res);
        yajl_val tasks = gdn_it_json_get(res.json, "tasks", NULL);
        const char *next = gdn_it_json_string(res.json, "next_cursor", NULL);
        if (res.status != 200 || !YAJL_IS_ARRAY(tasks))
            problems++;
        for (size_t i = 0; i < gdn_it_json_length(tasks); i++) {
            const char *id = gdn_it_json_string(gdn_it_json_at(tasks, i), "id", NULL);
            struct model_task *t = id ? find_task(m, id) : NULL;
            if (t && t->state == STATE_PENDING) {
                listed++;
            } else if (!t) {
                unknown++;
            } else {
                fprintf(stderr, "  task %s is claimable but was %s\n", id, state_names[t->state]);
                problems++;
            }
        }
        if (next && res.status == 200) {
            char *escaped = curl_easy_escape(client->curl, next, 0);
            snprintf(cursor, sizeof(cursor), "%s", escaped ? escaped : "");
            curl_free(escaped);
        }
        gdn_it_response_free(&res);
    } while (cursor[0] && problems == 0);
    if (listed != expected || unknown > count_in_flight(threads, OP_CREATE)) {
        fprintf(stderr, "  %zu of %zu pending tasks claimable, %d unknown\n", listed, expected,
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
        t->creates_left = CREATES_PER_CYCLE;
        snprintf(t->worker, sizeof(t->worker), "crash-worker-%d", i);
    }
}

/* Totals over all cycles, printed at the end. */
struct crash_totals {
    int cycles;
    int by_kind[OP_KINDS];
    int explained;
    int losses;
    int queue_problems;
    int missing_workers;
};

/* Runs the load, kills the server after `delay_ms`, and adds the acknowledged operations up. */
static int run_cycle(gdn_it_server_t *srv, struct crash_thread *threads, long delay_ms,
                     struct crash_totals *totals)
{
    int acknowledged = 0;

    for (int i = 0; i < THREADS; i++)
        CU_ASSERT_FATAL(pthread_create(&threads[i].thread, NULL, run_load, &threads[i]) == 0);
    gdn_it_sleep_ms(delay_ms);
    gdn_it_server_kill(srv);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i].thread, NULL);
        acknowledged += threads[i].acknowledged;
        for (int k = 0; k < OP_KINDS; k++)
            totals->by_kind[k] += threads[i].by_kind[k];
        CU_ASSERT_EQUAL(threads[i].unexpected, 0);
    }
    return acknowledged;
}

static void verify_after_restart(gdn_it_server_t *srv, struct crash_thread *threads,
                                 struct model *m, int cycle, struct crash_totals *totals)
{
    gdn_it_client_t client;
    int wrong = 0, explained = 0;

    CU_ASSERT_FATAL(gdn_it_client_open(&client, srv, GDN_IT_HTTP1) == 0);
    for (size_t i = 0; i < m->count; i++) {
        int rc = verify_task(&client, threads, &m->tasks[i]);
        wrong += rc < 0;
        explained += rc > 0;
    }
    int queue_problems = verify_queue(&client, threads, m);
    int missing_workers = verify_workers(&client, m);

    size_t by_state[4] = {0};
    for (size_t i = 0; i < m->count; i++)
        by_state[m->tasks[i].state]++;
    printf("  cycle %d: %zu tasks (%zu pending, %zu processing, %zu completed, %zu failed), "
           "%d explained by unanswered requests, %d lost, %d queue problems, "
           "%d workers missing, %d double holds so far\n",
           cycle, m->count, by_state[STATE_PENDING], by_state[STATE_PROCESSING],
           by_state[STATE_COMPLETED], by_state[STATE_FAILED], explained, wrong, queue_problems,
           missing_workers, m->double_holds);
    totals->explained += explained;
    totals->losses += wrong;
    totals->queue_problems += queue_problems;
    totals->missing_workers += missing_workers;
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(queue_problems, 0);
    CU_ASSERT_EQUAL(missing_workers, 0);
    gdn_it_client_close(&client);
}

/* Reads a positive integer from the environment, or returns `fallback`. */
static long env_number(const char *name, long fallback)
{
    const char *text = getenv(name);
    char *end;

    if (!text || !*text)
        return fallback;
    long value = strtol(text, &end, 10);
    return *end == '\0' && value > 0 ? value : fallback;
}

/* After the last restart (at `restarted`, monotonic seconds): the flusher uploads the backlog
 * with no request needed, and the bucket then holds exactly the journal's records. Returns
 * the objects compared. */
static size_t verify_bucket(gdn_it_server_t *srv, const char *bucket, double restarted)
{
    gdn_it_client_t client;
    gdn_it_records_t records;

    CU_ASSERT_FATAL(gdn_it_client_open(&client, srv, GDN_IT_HTTP1) == 0);
    CU_ASSERT_EQUAL(gdn_it_wait_flushed(&client, CATCH_UP_S), 0);
    double drained = gdn_it_now_seconds() - restarted;
    CU_ASSERT_EQUAL(gdn_it_records_from_api(&client, &records), 0);
    int mismatches = gdn_it_s3_compare_bucket(&service, &client, bucket, &records);
    size_t objects = records.tasks.count + records.completed.count + records.workers.count;
    printf("  bucket: backlog 0 within %.1f s of the last restart; %zu objects (%zu tasks, "
           "%zu completed, %zu workers) compared, %d mismatches\n",
           drained, objects, records.tasks.count, records.completed.count, records.workers.count,
           mismatches);
    gdn_it_records_free(&records);
    gdn_it_client_close(&client);
    return objects;
}

static void test_crash__acknowledged_work_survives_sigkill(void)
{
    gdn_it_server_t srv;
    struct model m = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct crash_thread threads[THREADS];
    struct crash_totals totals = {0};
    unsigned seed = (unsigned)env_number("GDN_CRASH_SEED", (long)(time(NULL) ^ getpid()));
    int cycles = (int)env_number("GDN_CRASH_CYCLES", CYCLES_DEFAULT);
    char bucket[64];
    double start = gdn_it_now_seconds();
    double restarted = start;

    printf("  random seed %u (GDN_CRASH_SEED replays it), %d cycles\n", seed, cycles);
    snprintf(bucket, sizeof(bucket), "gdn-crash-%ld", (long)getpid());
    CU_ASSERT_EQUAL(gdn_it_s3_control(&service, "DELETE", "/fault", NULL), 200);
    CU_ASSERT_FATAL(gdn_it_server_init(&srv) == 0);
    CU_ASSERT_FATAL(gdn_it_s3_configure(&srv, &service, bucket, GDN_IT_S3_SECRET_KEY,
                                        "flush_interval_ms = 200\n"
                                        "task_lease_s = 600\n"
                                        "worker_ttl_s = 600\n") == 0);
    CU_ASSERT_FATAL(gdn_it_server_start(&srv) == 0);

    for (int cycle = 0; cycle < cycles; cycle++) {
        setup_threads(threads, &srv, &m, seed + (unsigned)cycle * 97u);
        long delay_ms = KILL_MIN_MS + (long)(rand_r(&seed) % KILL_SPREAD_MS);
        int acknowledged = run_cycle(&srv, threads, delay_ms, &totals);
        printf("  cycle %d: killed after %ld ms, %d operations acknowledged\n", cycle, delay_ms,
               acknowledged);
        totals.cycles++;

        if (gdn_it_server_start(&srv) != 0) {
            CU_FAIL("the server did not restart on its data directory");
            break;
        }
        restarted = gdn_it_now_seconds();
        verify_after_restart(&srv, threads, &m, cycle, &totals);
    }
    size_t objects = verify_bucket(&srv, bucket, restarted);

    printf("  %d cycles in %.1f s; acknowledged: %d creates, %d claims, %d completions, "
           "%d registrations, %d heartbeats; %d outcomes of unanswered requests adopted; "
           "losses %d, double holds %d, queue problems %d, workers missing %d; "
           "%zu objects in the bucket equal the journal\n",
           totals.cycles, gdn_it_now_seconds() - start, totals.by_kind[OP_CREATE],
           totals.by_kind[OP_POLL], totals.by_kind[OP_COMPLETE], totals.by_kind[OP_REGISTER],
           totals.by_kind[OP_HEARTBEAT], totals.explained, totals.losses, m.double_holds,
           totals.queue_problems, totals.missing_workers, objects);
    CU_ASSERT_EQUAL(totals.cycles, cycles);
    CU_ASSERT(totals.by_kind[OP_CREATE] > 0);
    CU_ASSERT(totals.by_kind[OP_POLL] > 0);
    CU_ASSERT(totals.by_kind[OP_COMPLETE] > 0);
    CU_ASSERT_EQUAL(m.double_holds, 0);

    gdn_it_exit_t ex;
    CU_ASSERT_EQUAL(gdn_it_server_stop(&srv, SIGTERM, 10.0, &ex), 0);
    CU_ASSERT(ex.exited && ex.code == 0);
    free(m.tasks);
    gdn_it_server_cleanup(&srv);
}

static CU_TestInfo crash_tests[] = {
    {"Every acknowledged create, claim, completion and registration survives repeated SIGKILL, "
     "no task is held twice, and the bucket then equals the journal",
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
