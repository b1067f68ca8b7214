/*
 * Integration tests of the journal's limits: a journal that fills up under concurrent load,
 * and data directories the server cannot use (unwritable, holding garbage, truncated).
 *
 * A full journal must refuse writes with 503 and nothing else: the server keeps answering,
 * everything acknowledged before stays readable, LMDB's own tools read the file cleanly, and
 * a restart with a larger journal_map_mb brings back every record and accepts new writes. An
 * unusable data directory must stop the server at start with one error line and exit code 3,
 * as src/main.c documents, rather than crash or serve.
 *
 * test_hostile fills a journal with a few requests of 900 KiB, one at a time. Here several
 * threads fill it with small creates, claims and completions at once, so that the journal
 * runs out of room in the middle of group commits that hold many operations.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cunit_main.h"
#include "harness.h"

#define THREADS 4

/* Bytes of padding per task: a 16 MiB journal fills after a few thousand creates. */
#define PAD_BYTES 2000

/* Each thread stops after this many 503 answers, or after LOAD_LIMIT_S. */
#define REFUSALS_PER_THREAD 25
#define LOAD_LIMIT_S 60.0

/* Problems printed in detail before the rest are only counted. */
#define SHOWN_MAX 5

/* Room for the output of the server or an LMDB tool run to completion. */
#define OUTPUT_MAX 65536

/* Room for mdb_dump's output of the records database of a full 16 MiB journal. */
#define DUMP_MAX (48u * 1024 * 1024)

/* What a thread was told, per task. */
enum ack_state { ACK_CREATED, ACK_CLAIMED, ACK_COMPLETED };

struct ack {
    char id[GDN_IT_ID_SIZE];
    enum ack_state state;
    long long result;
};

/* One load thread: creates padded tasks, claims and completes some, until refused enough. */
struct fill_thread {
    pthread_t thread;
    int index;
    gdn_it_server_t *srv;
    char worker[32];
    struct ack *acks;
    size_t count;
    size_t cap;
    int ok[3];      /* 200 answers: creates, claims, completions */
    int refused[3]; /* 503 answers, same order */
    int unexpected;
    int health_failures;
};

static const char *const kinds[] = {"creates", "claims", "completions"};

static int init_suite(void)
{
    return gdn_it_global_init();
}

static int cleanup_suite(void)
{
    curl_global_cleanup();
    return 0;
}

static struct ack *push_ack(struct fill_thread *t, const char *id)
{
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        struct ack *grown = realloc(t->acks, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        t->acks = grown;
        t->cap = cap;
    }
    struct ack *a = &t->acks[t->count++];
    memset(a, 0, sizeof(*a));
    snprintf(a->id, sizeof(a->id), "%s", id);
    return a;
}

/* Counts an answer of kind `kind`: 200 and 503 are expected, anything else is a failure. */
static int count_answer(struct fill_thread *t, int kind, const gdn_it_response_t *res)
{
    if (res->status == 200) {
        t->ok[kind]++;
        return 1;
    }
    if (res->status == 503 && gdn_it_json_get(res->json, "detail", NULL)) {
        t->refused[kind]++;
        return 0;
    }
    if (t->unexpected++ < SHOWN_MAX)
        fprintf(stderr, "  %s: %s answered %ld: %.200s\n", t->worker, kinds[kind], res->status,
                res->body ? res->body : curl_easy_strerror(res->code));
    return 0;
}

/* Claims one task and completes it; records what was acknowledged. */
static void claim_and_complete(struct fill_thread *t, gdn_it_client_t *client, long long seq)
{
    char path[128];
    char body[256];
    gdn_it_response_t res;

    snprintf(path, sizeof(path), "/poll/next?worker_id=%s&roles=fill", t->worker);
    gdn_it_call(client, "GET", path, NULL, &res);
    const char *id = gdn_it_json_string(res.json, "task", "id", NULL);
    struct ack *a = NULL;
    if (count_answer(t, 1, &res) && id) {
        /* A task created by another thread may not be in this thread's list: add it. */
        for (size_t i = 0; i < t->count && !a; i++)
            a = strcmp(t->acks[i].id, id) == 0 ? &t->acks[i] : NULL;
        if (!a)
            a = push_ack(t, id);
        if (a)
            a->state = ACK_CLAIMED;
    }
    gdn_it_response_free(&res);
    if (!a || seq % 2)
        return;

    snprintf(body, sizeof(body), "{\"task_id\":\"%s\",\"result\":{\"seq\":%lld}}", a->id, seq);
    gdn_it_call(client, "POST", "/poll/complete", body, &res);
    if (count_answer(t, 2, &res)) {
        a->state = ACK_COMPLETED;
        a->result = seq;
    }
    gdn_it_response_free(&res);
}

static void *run_fill(void *arg)
{
    struct fill_thread *t = arg;
    gdn_it_client_t client;
    char *body = malloc(PAD_BYTES + 256);
    char pad[PAD_BYTES + 1];
    double deadline = gdn_it_now_seconds() + LOAD_LIMIT_S;

    memset(pad, 'a' + t->index, PAD_BYTES);
    pad[PAD_BYTES] = '\0';
    if (!body || gdn_it_client_open(&client, t->srv, t->index % 2 ? GDN_IT_HTTP2 : GDN_IT_HTTP1)) {
        free(body);
        t->unexpected++;
        return NULL;
    }
    for (long long seq = 0; gdn_it_now_seconds() < deadline; seq++) {
        int refusals = t->refused[0] + t->refused[1] + t->refused[2];
        if (refusals >= REFUSALS_PER_THREAD || t->unexpected > 0)
            break;

        gdn_it_response_t res;
        snprintf(body, PAD_BYTES + 256,
                 "{\"task_type\":\"fill\",\"role\":\"fill\",\"input_data\":{\"seq\":%lld,"
                 "\"pad\":\"%s\"}}",
                 seq, pad);
        gdn_it_call(&client, "POST", "/tasks", body, &res);
        const char *id = gdn_it_json_string(res.json, "task_id", NULL);
        if (count_answer(t, 0, &res) && (!id || !push_ack(t, id)))
            t->unexpected++;
        gdn_it_response_free(&res);
        if (seq % 3 == 0)
            claim_and_complete(t, &client, seq);

        /* Reads need no room in the journal: the server must answer them throughout. */
        if (seq % 16 == 0) {
            gdn_it_call(&client, "GET", "/health", NULL, &res);
            t->health_failures += res.status != 200;
            gdn_it_response_free(&res);
        }
    }
    gdn_it_client_close(&client);
    free(body);
    return NULL;
}

/* Checks one acknowledged task against the server. Returns 0, or 1 when it is not as told. */
static int check_ack(gdn_it_client_t *client, const struct ack *a, const char *worker)
{
    char path[128];
    gdn_it_response_t res;

    snprintf(path, sizeof(path), "/tasks/%s", a->id);
    gdn_it_call(client, "GET", path, NULL, &res);
    const char *status = gdn_it_json_string(res.json, "status", NULL);
    const char *owner = gdn_it_json_string(res.json, "assigned_to", NULL);
    long long result = -1;
    gdn_it_json_integer(res.json, &result, "result", "seq", NULL);

    int ok = res.status == 200 && status;
    if (ok && a->state == ACK_CLAIMED)
        ok = owner && strcmp(owner, worker) == 0 &&
             (strcmp(status, "processing") == 0 || strcmp(status, "completed") == 0);
    if (ok && a->state == ACK_COMPLETED)
        ok = strcmp(status, "completed") == 0 && result == a->result;
    gdn_it_response_free(&res);
    return ok ? 0 : 1;
}

/* Checks every acknowledged task of every thread. Returns the number that are not as told. */
static int check_all_acks(gdn_it_server_t *srv, struct fill_thread *threads, const char *when)
{
    gdn_it_client_t client;
    int lost = 0;
    size_t checked = 0;

    CU_ASSERT_FATAL(gdn_it_client_open(&client, srv, GDN_IT_HTTP1) == 0);
    for (int i = 0; i < THREADS; i++) {
        for (size_t k = 0; k < threads[i].count; k++) {
            int bad = check_ack(&client, &threads[i].acks[k], threads[i].worker);
            if (bad && lost < SHOWN_MAX)
                fprintf(stderr, "  %s: task %s is not as acknowledged\n", when,
                        threads[i].acks[k].id);
            lost += bad;
            checked++;
        }
    }
    gdn_it_client_close(&client);
    printf("  %s: %zu acknowledged tasks read back, %d not as acknowledged\n", when, checked, lost);
    return lost;
}

/* Runs an LMDB tool on the data directory; returns its exit code with its output in `out`. */
static int run_lmdb_tool(const char *tool, const char *flags, const char *data_dir, char *out,
                         size_t out_size)
{
    const char *argv[] = {tool, flags, data_dir, NULL};
    int code = -1;

    CU_ASSERT_EQUAL(gdn_it_run_argv(argv, out, out_size, &code), 0);
    return code;
}

/*
 * Checks the stopped journal with LMDB's own tools: mdb_stat walks the free list and every
 * database, and mdb_dump of the records database must hold every acknowledged task.
 * Returns the acknowledged tasks missing from the dump.
 */
static int check_with_lmdb_tools(const char *data_dir, struct fill_thread *threads)
{
    char *out = malloc(DUMP_MAX);
    gdn_it_strs_t keys = {0};
    int missing = 0;

    CU_ASSERT_FATAL(out != NULL);
    int code = run_lmdb_tool("/usr/bin/mdb_stat", "-efa", data_dir, out, OUTPUT_MAX);
    const char *entries = strstr(out, "Status of records");
    printf("  mdb_stat -efa: exit %d; %.*s\n", code, entries ? 120 : 0, entries ? entries : "");
    CU_ASSERT_EQUAL(code, 0);
    CU_ASSERT_PTR_NOT_NULL(entries);

    /* -p prints keys as text, each on a line of its own that starts with a space. */
    const char *argv[] = {"/usr/bin/mdb_dump", "-p", "-s", "records", data_dir, NULL};
    CU_ASSERT_EQUAL(gdn_it_run_argv(argv, out, DUMP_MAX, &code), 0);
    CU_ASSERT_EQUAL(code, 0);
    for (char *line = out; line && *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        if (strncmp(line, " task:", 6) == 0)
            CU_ASSERT_FATAL(gdn_it_strs_push(&keys, line + 6) == 0);
        line = end ? end + 1 : NULL;
    }
    gdn_it_strs_sort(&keys);
    for (int i = 0; i < THREADS; i++) {
        for (size_t k = 0; k < threads[i].count; k++)
            missing += !gdn_it_strs_has(&keys, threads[i].acks[k].id);
    }
    printf("  mdb_dump -s records: exit %d, %zu task records, %d acknowledged tasks missing\n",
           code, keys.count, missing);
    gdn_it_strs_free(&keys);
    free(out);
    return missing;
}

/* Tasks a worker claims and completes while the journal is full. */
#define DRAIN_TASKS 20

/*
 * While the journal is full: a new task is refused, but a worker still drains the queue, since
 * claims and completions may use the part of the map kept in reserve. Returns the number of
 * answers that were not as expected.
 */
static int drain_while_full(gdn_it_server_t *srv)
{
    gdn_it_client_t client;
    char id[GDN_IT_ID_SIZE];
    int failures = 0;

    CU_ASSERT_FATAL(gdn_it_client_open(&client, srv, GDN_IT_HTTP1) == 0);
    failures +=
        gdn_it_create_task(&client, "{\"task_type\":\"late\",\"role\":\"fill\"}", id) != 503;
    for (int i = 0; i < DRAIN_TASKS; i++) {
        char claimed[GDN_IT_ID_SIZE] = "";

        failures += gdn_it_poll(&client, "drain-worker", "fill", claimed) != 200 || !claimed[0];
        failures += gdn_it_complete(&client, claimed, "{\"drained\":true}", NULL) != 200;
    }
    gdn_it_client_close(&client);
    printf("  journal full: a create refused, %d tasks claimed and completed, %d unexpected "
           "answers\n",
           DRAIN_TASKS, failures);
    return failures;
}

/* Writes a task, claims it and completes it. Returns the number of answers that were not 200. */
static int lifecycle_works(gdn_it_server_t *srv)
{
    gdn_it_client_t client;
    char id[GDN_IT_ID_SIZE];
    char claimed[GDN_IT_ID_SIZE];
    int failures = 0;

    CU_ASSERT_FATAL(gdn_it_client_open(&client, srv, GDN_IT_HTTP1) == 0);
    failures +=
        gdn_it_create_task(&client, "{\"task_type\":\"after\",\"role\":\"after\"}", id) != 200;
    failures += gdn_it_poll(&client, "after-worker", "after", claimed) != 200;
    CU_ASSERT_STRING_EQUAL(claimed, id);
    failures += gdn_it_complete(&client, id, "{\"after\":true}", NULL) != 200;
    gdn_it_client_close(&client);
    return failures;
}

static void test_limits__full_journal_under_load_refuses_cleanly_and_recovers(void)
{
    gdn_it_server_t srv;
    struct fill_thread threads[THREADS];
    int ok[3] = {0}, refused[3] = {0}, unexpected = 0, health_failures = 0;

    CU_ASSERT_FATAL(gdn_it_server_init(&srv) == 0);
    CU_ASSERT_FATAL(gdn_it_server_configf(&srv, "journal_map_mb = 16\nthreads = 2\n") == 0);
    CU_ASSERT_FATAL(gdn_it_server_start(&srv) == 0);

    memset(threads, 0, sizeof(threads));
    double start = gdn_it_now_seconds();
    for (int i = 0; i < THREADS; i++) {
        threads[i].index = i;
        threads[i].srv = &srv;
        snprintf(threads[i].worker, sizeof(threads[i].worker), "fill-%d", i);
        CU_ASSERT_FATAL(pthread_create(&threads[i].thread, NULL, run_fill, &threads[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i].thread, NULL);
        for (int k = 0; k < 3; k++) {
            ok[k] += threads[i].ok[k];
            refused[k] += threads[i].refused[k];
        }
        unexpected += threads[i].unexpected;
        health_failures += threads[i].health_failures;
    }
    printf("  %.1f s of load on a 16 MiB journal: %d creates, %d claims, %d completions "
           "acknowledged; 503 for %d creates, %d claims, %d completions; %d other answers, "
           "%d failed health checks\n",
           gdn_it_now_seconds() - start, ok[0], ok[1], ok[2], refused[0], refused[1], refused[2],
           unexpected, health_failures);
    CU_ASSERT(ok[0] > 0);
    CU_ASSERT(refused[0] > 0);
    CU_ASSERT_EQUAL(unexpected, 0);
    CU_ASSERT_EQUAL(health_failures, 0);

    /* While full: every acknowledged task is readable as acknowledged, and workers drain. */
    CU_ASSERT_EQUAL(check_all_acks(&srv, threads, "journal full"), 0);
    CU_ASSERT_EQUAL(drain_while_full(&srv), 0);

    gdn_it_exit_t ex;
    CU_ASSERT_EQUAL(gdn_it_server_stop(&srv, SIGTERM, 10.0, &ex), 0);
    printf("  server stopped: %s %d\n", ex.exited ? "exit code" : "signal",
           ex.exited ? ex.code : ex.signal);
    CU_ASSERT(ex.exited && ex.code == 0);
    CU_ASSERT_EQUAL(check_with_lmdb_tools(srv.data_dir, threads), 0);

    /* A larger map: the same records, and room for new writes. */
    CU_ASSERT_FATAL(gdn_it_server_configf(&srv, "journal_map_mb = 64\nthreads = 2\n") == 0);
    CU_ASSERT_FATAL(gdn_it_server_start(&srv) == 0);
    CU_ASSERT_EQUAL(check_all_acks(&srv, threads, "restarted with 64 MiB"), 0);
    CU_ASSERT_EQUAL(lifecycle_works(&srv), 0);
    CU_ASSERT_EQUAL(gdn_it_server_stop(&srv, SIGTERM, 10.0, &ex), 0);
    CU_ASSERT(ex.exited && ex.code == 0);

    for (int i = 0; i < THREADS; i++)
        free(threads[i].acks);
    gdn_it_server_cleanup(&srv);
}

/*
 * Runs the server on `data_dir` (as `user` through setpriv when set) until it exits by itself,
 * and checks that it exits 3 with an error line of the journal that contains `reason`.
 */
static void expect_unusable(const char *data_dir, const char *user, const char *reason,
                            const char *what)
{
    const char *bin = getenv("GDN_SERVER_BIN");
    char listen[64];
    char reuid[64];
    char regid[64];
    char *out = malloc(OUTPUT_MAX);
    int code = -1;

    CU_ASSERT_FATAL(bin != NULL && out != NULL);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", gdn_it_free_port());
    snprintf(reuid, sizeof(reuid), "--reuid=%s", user ? user : "");
    snprintf(regid, sizeof(regid), "--regid=%s", user ? user : "");
    const char *direct[] = {bin, "--listen", listen, "--data-dir", data_dir, NULL};
    const char *as_user[] = {"/usr/bin/setpriv", reuid,  regid,        "--clear-groups", bin,
                             "--listen",         listen, "--data-dir", data_dir,         NULL};
    CU_ASSERT_EQUAL(gdn_it_run_argv(user ? as_user : direct, out, OUTPUT_MAX, &code), 0);

    const char *line = strstr(out, "level=error module=journal event=open_failed");
    const char *end = line ? strchr(line, '\n') : NULL;
    int named = line && strstr(line, reason) && (!end || strstr(line, reason) < end);
    printf("  %s: exit %d: %.*s\n", what, code, line ? (int)(end ? end - line : 200) : 0,
           line ? line : "");
    CU_ASSERT_EQUAL(code, 3);
    CU_ASSERT(named);
    if (code != 3 || !named)
        fprintf(stderr, "---- server output ----\n%s\n---- end ----\n", out);
    free(out);
}

/* The unprivileged user the server runs as when the tests run as root, where permission bits
 * would not stop a write. */
#define UNPRIVILEGED "65534"

static void test_limits__unwritable_data_dir_exits_3(void)
{
    gdn_it_server_t srv;
    char path[GDN_IT_PATH_MAX + 32];
    const char *user = geteuid() == 0 ? UNPRIVILEGED : NULL;

    CU_ASSERT_FATAL(gdn_it_server_init(&srv) == 0);

    /* A data directory below a regular file can never be made. */
    snprintf(path, sizeof(path), "%s/file", srv.dir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fclose(f);
    snprintf(path, sizeof(path), "%s/file/data", srv.dir);
    expect_unusable(path, NULL, "Not a directory", "data_dir below a regular file");

    /* An empty directory of the service's own user, read and search only. */
    CU_ASSERT_FATAL(chmod(srv.dir, 0711) == 0);
    if (user)
        CU_ASSERT_FATAL(chown(srv.data_dir, 65534, 65534) == 0);
    CU_ASSERT_FATAL(chmod(srv.data_dir, 0500) == 0);
    expect_unusable(srv.data_dir, user, "Permission denied", "empty data_dir with mode 0500");

    /* A journal that was written, then made read-only with its directory. The server that
     * writes it runs as the test does: root refuses a data directory of another user's. */
    CU_ASSERT_FATAL(chmod(srv.data_dir, 0700) == 0);
    if (user)
        CU_ASSERT_FATAL(chown(srv.data_dir, 0, 0) == 0);
    CU_ASSERT_FATAL(gdn_it_server_start(&srv) == 0);
    gdn_it_client_t client;
    char id[GDN_IT_ID_SIZE];
    CU_ASSERT_FATAL(gdn_it_client_open(&client, &srv, GDN_IT_HTTP1) == 0);
    CU_ASSERT_EQUAL(gdn_it_create_task(&client, "{\"task_type\":\"ro\"}", id), 200);
    gdn_it_client_close(&client);
    gdn_it_exit_t ex;
    CU_ASSERT_EQUAL(gdn_it_server_stop(&srv, SIGTERM, 10.0, &ex), 0);
    static const char *const files[] = {"data.mdb", "lock.mdb"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s", srv.data_dir, files[i]);
        if (user)
            CU_ASSERT(chown(path, 65534, 65534) == 0);
        CU_ASSERT(chmod(path, 0400) == 0);
    }
    if (user)
        CU_ASSERT_FATAL(chown(srv.data_dir, 65534, 65534) == 0);
    CU_ASSERT_FATAL(chmod(srv.data_dir, 0500) == 0);
    expect_unusable(srv.data_dir, user, "Permission denied", "read-only journal");

    CU_ASSERT(chmod(srv.data_dir, 0700) == 0);
    gdn_it_server_cleanup(&srv);
}

/* Fills `path` with `size` bytes that are no LMDB file (a fixed pseudo-random sequence). */
static void write_garbage(const char *path, size_t size)
{
    FILE *f = fopen(path, "w");
    uint32_t x = 2463534242u;

    CU_ASSERT_FATAL(f != NULL);
    for (size_t i = 0; i < size; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        fputc((int)(x & 0xff), f);
    }
    fclose(f);
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "r");
    FILE *out = fopen(to, "w");
    char buf[65536];
    size_t n;

    CU_ASSERT_FATAL(in != NULL && out != NULL);
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        CU_ASSERT_FATAL(fwrite(buf, 1, n, out) == n);
    fclose(in);
    fclose(out);
}

static void test_limits__corrupt_or_truncated_journal_exits_3(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;
    char data[GDN_IT_PATH_MAX + 32];
    char saved[GDN_IT_PATH_MAX + 32];
    char id[GDN_IT_ID_SIZE];
    char pad[1024];
    char body[1200];
    int failures = 0;

    CU_ASSERT_FATAL(gdn_it_server_init(&srv) == 0);
    snprintf(data, sizeof(data), "%s/data.mdb", srv.data_dir);
    snprintf(saved, sizeof(saved), "%s/saved.mdb", srv.dir);

    write_garbage(data, 65536);
    expect_unusable(srv.data_dir, NULL, "MDB_INVALID", "64 KiB of garbage in data.mdb");
    CU_ASSERT_FATAL(unlink(data) == 0);

    /* A real journal of a few hundred KiB, then cut at several points. */
    CU_ASSERT_FATAL(gdn_it_server_start(&srv) == 0);
    CU_ASSERT_FATAL(gdn_it_client_open(&client, &srv, GDN_IT_HTTP1) == 0);
    memset(pad, 'p', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    snprintf(body, sizeof(body), "{\"task_type\":\"cut\",\"input_data\":{\"pad\":\"%s\"}}", pad);
    for (int i = 0; i < 300; i++)
        failures += gdn_it_create_task(&client, body, id) != 200;
    CU_ASSERT_EQUAL(failures, 0);
    gdn_it_client_close(&client);
    gdn_it_exit_t ex;
    CU_ASSERT_EQUAL(gdn_it_server_stop(&srv, SIGTERM, 10.0, &ex), 0);
    copy_file(data, saved);

    struct stat st;
    CU_ASSERT_FATAL(stat(saved, &st) == 0);
    off_t cuts[] = {100, 8192, st.st_size / 2, st.st_size - 4096};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        char what[96];
        copy_file(saved, data);
        CU_ASSERT_FATAL(truncate(data, cuts[i]) == 0);
        snprintf(what, sizeof(what), "data.mdb of %lld bytes cut to %lld", (long long)st.st_size,
                 (long long)cuts[i]);
        expect_unusable(srv.data_dir, NULL, cuts[i] < 8192 ? "MDB_INVALID" : "truncated", what);
    }

    /* The whole file again: the same journal opens and holds every task. */
    copy_file(saved, data);
    CU_ASSERT_FATAL(gdn_it_server_start(&srv) == 0);
    CU_ASSERT_FATAL(gdn_it_client_open(&client, &srv, GDN_IT_HTTP1) == 0);
    CU_ASSERT_EQUAL(gdn_it_stat(&client, "pending_tasks"), 300);
    gdn_it_client_close(&client);
    CU_ASSERT_EQUAL(gdn_it_server_stop(&srv, SIGTERM, 10.0, &ex), 0);
    CU_ASSERT(ex.exited && ex.code == 0);
    gdn_it_server_cleanup(&srv);
}

static CU_TestInfo limits_tests[] = {
    {"A journal filled by concurrent writes answers 503, stays readable and intact, and "
     "recovers with a larger map",
     test_limits__full_journal_under_load_refuses_cleanly_and_recovers},
    {"A data directory that cannot be written stops the server with an error line and exit 3",
     test_limits__unwritable_data_dir_exits_3},
    {"Garbage in data.mdb or a truncated data.mdb stops the server with an error line and "
     "exit 3",
     test_limits__corrupt_or_truncated_journal_exits_3},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo gdn_test_suites[] = {
    {.pName = "Journal limits",
     .pInitFunc = init_suite,
     .pCleanupFunc = cleanup_suite,
     .pTests = limits_tests},
    CU_SUITE_INFO_NULL,
};
