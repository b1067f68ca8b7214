/*
 * Integration tests of the task lifecycle against the real server: leases that lapse or are
 * kept alive by heartbeats, poison tasks, retries with backoff, delayed tasks, workers that go
 * silent, expiry of finished records, idempotent creates, cancellation, paged listings, and
 * long polls over HTTP/1.1 and HTTP/2 (many waiters at once, a client that resets its stream,
 * a shutdown while polls wait).
 *
 * Every test starts its own server with times shortened to seconds. Nothing here asserts how
 * fast the server is: waits are bounded by generous liveness limits, and a lower bound is only
 * checked where the server promises one (a retried task's backoff).
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cunit_main.h"
#include "harness.h"

/* The shortened times every server starts with; tests append their own settings. */
#define BASE_CONFIG                                                                                \
    "task_lease_s = 2\n"                                                                           \
    "worker_ttl_s = 3\n"                                                                           \
    "retry_base_s = 1\n"                                                                           \
    "retry_max_s = 2\n"                                                                            \
    "journal_map_mb = 64\n"                                                                        \
    "log_level = info\n"

/* How long anything that is due may take to happen before a test gives up on it. */
#define LIVENESS_S 10.0

/* Room for a request path with a worker id, roles and a cursor. */
#define PATH_SIZE 512

/* Where the LeakSanitizer suppressions for the servers under test are written. */
static char lsan_path[GDN_IT_PATH_MAX];

/*
 * h2o 2.2.5 leaks two things whenever a loop's context is disposed: the cross-thread message
 * queue (h2o_multithread_destroy_queue frees it only when built for libuv) and the buffers of
 * the queue's eventfd socket, whose close is deferred to a loop run that never comes. Under
 * AddressSanitizer every server exit would be non-zero for those alone, hiding the leaks these
 * tests look for. The server's own allocations (its operations, h2o's streams and requests)
 * are not covered, so a leaked long poll still fails the exit code.
 */
static const char lsan_suppressions[] = "leak:h2o_multithread_create_queue\n"
                                        "leak:h2o_mem_alloc_recycle\n";

static int write_lsan_suppressions(void)
{
    const char *base = getenv("TMPDIR");

    snprintf(lsan_path, sizeof(lsan_path), "%s/gdn-lsan-XXXXXX", base && *base ? base : "/tmp");

    int fd = mkstemp(lsan_path);
    if (fd < 0)
        return -1;

    size_t len = sizeof(lsan_suppressions) - 1;
    int rc = write(fd, lsan_suppressions, len) == (ssize_t)len ? 0 : -1;
    close(fd);

    char options[GDN_IT_PATH_MAX + 32];
    snprintf(options, sizeof(options), "suppressions=%s", lsan_path);
    return rc == 0 ? setenv("LSAN_OPTIONS", options, 1) : -1;
}

static int init_suite(void)
{
    if (gdn_it_global_init() != 0)
        return -1;
    return write_lsan_suppressions();
}

static int cleanup_suite(void)
{
    if (lsan_path[0])
        unlink(lsan_path);
    curl_global_cleanup();
    return 0;
}

/* ---- time ---- */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pause_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Writes the UTC time `ahead_s` seconds from now as the API writes times. */
static void format_utc_ahead(int ahead_s, char *out, size_t size)
{
    struct timespec ts;
    struct tm tm;
    char whole[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    time_t seconds = ts.tv_sec + ahead_s;
    long micros = ts.tv_nsec / 1000;
    gmtime_r(&seconds, &tm);
    strftime(whole, sizeof(whole), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, size, "%s.%06ld", whole, micros);
}

/* ---- servers ---- */

/*
 * Starts a server with BASE_CONFIG, `threads` loop threads and the settings in `extra` (may
 * be NULL); with `tls`, on a self-signed certificate, so that HTTP/2 is negotiated by ALPN.
 * Returns 1 when it answers; otherwise fails the test and cleans up.
 */
static int launch_server(gdn_it_server_t *srv, int threads, const char *extra, int tls)
{
    int rc = gdn_it_server_init(srv);

    if (rc == 0 && tls)
        rc = gdn_it_server_make_cert(srv);
    if (rc == 0)
        rc = gdn_it_server_configf(srv, "%sthreads = %d\ntls_cert = %s\ntls_key = %s\n%s",
                                   BASE_CONFIG, threads, tls ? srv->cert_path : "",
                                   tls ? srv->key_path : "", extra ? extra : "");
    if (rc == 0)
        rc = gdn_it_server_start(srv);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc != 0)
        gdn_it_server_cleanup(srv);
    return rc == 0;
}

static int start_server(gdn_it_server_t *srv, int threads, const char *extra)
{
    return launch_server(srv, threads, extra, 0);
}

/*
 * libcurl 7.88 cannot multiplex streams on a cleartext prior-knowledge HTTP/2 connection (all
 * but the first fail with "Error in the HTTP2 framing layer", fixed in 8.0), so the tests that
 * multiplex long polls speak HTTP/2 over TLS, as browsers do.
 */
static int start_tls_server(gdn_it_server_t *srv, int threads)
{
    return launch_server(srv, threads, NULL, 1);
}

/* A server under test with the base settings and an HTTP/1.1 client of it. */
typedef struct fixture {
    gdn_it_server_t srv;
    gdn_it_client_t client;
} fixture_t;

/* Starts the fixture's server and opens its client. Returns 1, or 0 after failing the test. */
static int open_fixture(fixture_t *f)
{
    if (!start_server(&f->srv, 2, NULL))
        return 0;
    if (gdn_it_client_open(&f->client, &f->srv, GDN_IT_HTTP1) == 0)
        return 1;
    CU_FAIL("cannot open an HTTP client");
    gdn_it_server_cleanup(&f->srv);
    return 0;
}

static void close_fixture(fixture_t *f)
{
    gdn_it_client_close(&f->client);
    gdn_it_server_cleanup(&f->srv);
}

/* Stops the server with SIGTERM and checks that it drained and exited 0 within `limit_s`. */
static void expect_clean_exit(gdn_it_server_t *srv, double limit_s)
{
    gdn_it_exit_t how;
    int rc = gdn_it_server_stop(srv, SIGTERM, limit_s, &how);

    printf("  server stopped: exited=%d code=%d signal=%d after %.2f s\n", how.exited, how.code,
           how.signal, how.seconds);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(how.exited, 1);
    CU_ASSERT_EQUAL(how.code, 0);
}

/*
 * Tells whether the database `db` of the server's journal holds a key or value printed as
 * `text` by mdb_dump (lmdb-utils) in its printable form, read while the server runs: 1 if it
 * does, 0 if not, -1 if the journal could not be read.
 */
static int journal_dump_has(const gdn_it_server_t *srv, const char *db, const char *text)
{
    char command[GDN_IT_PATH_MAX + 64];

    snprintf(command, sizeof(command), "mdb_dump -p -s %s %s 2>/dev/null", db, srv->data_dir);
    FILE *dump = popen(command, "r");
    if (!dump)
        return -1;

    char *line = NULL;
    size_t cap = 0;
    int found = 0;
    int header_seen = 0;
    for (ssize_t len = getline(&line, &cap, dump); len > 0; len = getline(&line, &cap, dump)) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        header_seen |= strcmp(line, "HEADER=END") == 0;
        found |= line[0] == ' ' && strcmp(line + 1, text) == 0;
    }
    free(line);

    int status = pclose(dump);
    if (status != 0 || !header_seen) {
        printf("  mdb_dump (lmdb-utils) could not read the journal in %s\n", srv->data_dir);
        return -1;
    }
    return found;
}

/*
 * Tells whether the server's journal holds a record under `key`: 1, 0, or -1 if unreadable.
 * Records are stored in the `records` database under their bucket key.
 */
static int journal_has_record(const gdn_it_server_t *srv, const char *key)
{
    return journal_dump_has(srv, "records", key);
}

/*
 * Tells whether the journal's change log holds a change of the object `key`, an upload or
 * (`deleted`) a deletion: 1, 0, or -1 if unreadable. The `dirty` database maps a change's
 * version to one flag byte (1 for a deletion) followed by the object key; mdb_dump prints
 * the flag byte as a backslash and two hex digits.
 */
static int journal_has_change(const gdn_it_server_t *srv, const char *key, int deleted)
{
    char text[GDN_IT_ID_SIZE + 32];

    snprintf(text, sizeof(text), "\\%02x%s", deleted ? 1 : 0, key);
    return journal_dump_has(srv, "dirty", text);
}

/* ---- requests ---- */

/* Compares strings where the actual one may be missing (NULL), which never equals. */
static int same_string(const char *actual, const char *expected)
{
    return actual != NULL && strcmp(actual, expected) == 0;
}

static long fetch_task(gdn_it_client_t *client, const char *id, gdn_it_response_t *res)
{
    char path[PATH_SIZE];

    snprintf(path, sizeof(path), "/tasks/%s", id);
    gdn_it_call(client, "GET", path, NULL, res);
    return res->status;
}

/* Copies task `id`'s status into `out`, or "" when the task cannot be read. */
static void read_status(gdn_it_client_t *client, const char *id, char *out, size_t size)
{
    gdn_it_response_t res;

    fetch_task(client, id, &res);
    const char *status = gdn_it_json_string(res.json, "status", NULL);
    snprintf(out, size, "%s", res.status == 200 && status ? status : "");
    gdn_it_response_free(&res);
}

/* The integer field `name` of task `id`, or -1 when it cannot be read. */
static long long read_task_integer(gdn_it_client_t *client, const char *id, const char *name)
{
    gdn_it_response_t res;
    long long value = -1;

    fetch_task(client, id, &res);
    if (res.status != 200 || gdn_it_json_integer(res.json, &value, name, NULL) != 0)
        value = -1;
    gdn_it_response_free(&res);
    return value;
}

/* Waits until task `id` has `status`. Returns 1 if it did within LIVENESS_S. */
static int wait_for_status(gdn_it_client_t *client, const char *id, const char *status)
{
    double deadline = now_s() + LIVENESS_S;
    char seen[32] = "";

    while (now_s() < deadline) {
        read_status(client, id, seen, sizeof(seen));
        if (strcmp(seen, status) == 0)
            return 1;
        pause_ms(100);
    }
    printf("  task %s is still '%s', not '%s', after %.0f s\n", id, seen, status, LIVENESS_S);
    return 0;
}

/* Waits until GET /tasks/{id} answers 404. Returns 1 if it did within LIVENESS_S. */
static int wait_for_task_gone(gdn_it_client_t *client, const char *id)
{
    double deadline = now_s() + LIVENESS_S;

    while (now_s() < deadline) {
        gdn_it_response_t res;
        long http = fetch_task(client, id, &res);
        gdn_it_response_free(&res);
        if (http == 404)
            return 1;
        pause_ms(100);
    }
    return 0;
}

/* POST /tasks with an optional Idempotency-Key; copies the answer's task id into `id`. */
static long create_keyed(gdn_it_client_t *client, const char *body, const char *key, char *id)
{
    char header[256];
    const char *headers[] = {header, NULL};
    gdn_it_response_t res;

    if (key)
        snprintf(header, sizeof(header), "Idempotency-Key: %s", key);
    gdn_it_call_raw(client, "POST", "/tasks", body, strlen(body), key ? headers : NULL, &res);
    const char *task_id = gdn_it_json_string(res.json, "task_id", NULL);
    snprintf(id, GDN_IT_ID_SIZE, "%s", task_id ? task_id : "");
    long http = res.status;
    gdn_it_response_free(&res);
    return http;
}

static long register_worker(gdn_it_client_t *client, const char *worker)
{
    char body[256];
    gdn_it_response_t res;

    snprintf(body, sizeof(body), "{\"worker_id\":\"%s\",\"capabilities\":[\"archivist\"]}", worker);
    gdn_it_call(client, "POST", "/poll/register", body, &res);
    long http = res.status;
    gdn_it_response_free(&res);
    return http;
}

/* POST /poll/heartbeat; the caller frees `res`. */
static long heartbeat(gdn_it_client_t *client, const char *worker, gdn_it_response_t *res)
{
    char body[256];

    snprintf(body, sizeof(body), "{\"worker_id\":\"%s\"}", worker);
    gdn_it_call(client, "POST", "/poll/heartbeat", body, res);
    return res->status;
}

/* Tells whether a heartbeat answer is {"status":"ok"} and lists `id` in cancelled_tasks. */
static int heartbeat_lists(const gdn_it_response_t *res, const char *id)
{
    yajl_val cancelled = gdn_it_json_get(res->json, "cancelled_tasks", NULL);

    for (size_t i = 0; i < gdn_it_json_length(cancelled); i++) {
        yajl_val entry = gdn_it_json_at(cancelled, i);
        if (YAJL_IS_STRING(entry) && strcmp(entry->u.string, id) == 0)
            return 1;
    }
    return 0;
}

/* POST /poll/complete naming the completing worker; the caller frees `res`. */
static long complete_as(gdn_it_client_t *client, const char *id, const char *worker,
                        const char *result, const char *status, gdn_it_response_t *res)
{
    char body[1024];

    snprintf(body, sizeof(body),
             "{\"task_id\":\"%s\",\"worker_id\":\"%s\",\"result\":%s,\"status\":\"%s\"}", id,
             worker, result, status);
    gdn_it_call(client, "POST", "/poll/complete", body, res);
    return res->status;
}

static long complete_as_status(gdn_it_client_t *client, const char *id, const char *worker,
                               const char *result, const char *status)
{
    gdn_it_response_t res;
    long http = complete_as(client, id, worker, result, status, &res);

    gdn_it_response_free(&res);
    return http;
}

/*
 * GET /poll/next?worker_id=W[&roles=R]&wait=S. Copies the claimed task's id into `id` ("" for
 * the empty answer) and returns the HTTP status; `res` may be NULL when the caller needs no more.
 */
static long poll_wait(gdn_it_client_t *client, const char *worker, const char *roles, int wait,
                      char *id, gdn_it_response_t *res)
{
    char path[PATH_SIZE];
    gdn_it_response_t local;
    gdn_it_response_t *out = res ? res : &local;

    snprintf(path, sizeof(path), "/poll/next?worker_id=%s%s%s&wait=%d", worker,
             roles ? "&roles=" : "", roles ? roles : "", wait);
    gdn_it_call(client, "GET", path, NULL, out);
    const char *task_id = gdn_it_json_string(out->json, "task", "id", NULL);
    snprintf(id, GDN_IT_ID_SIZE, "%s", task_id ? task_id : "");
    long http = out->status;
    if (!res)
        gdn_it_response_free(&local);
    return http;
}

/* Polls without waiting until `worker` claims a task. Returns 1 if it did within LIVENESS_S. */
static int poll_until_claimed(gdn_it_client_t *client, const char *worker, char *id)
{
    double deadline = now_s() + LIVENESS_S;

    while (now_s() < deadline) {
        if (gdn_it_poll(client, worker, NULL, id) == 200 && id[0])
            return 1;
        pause_ms(100);
    }
    return 0;
}

/* Tells whether an immediate poll for `worker` finds nothing claimable. */
static int nothing_claimable(gdn_it_client_t *client, const char *worker)
{
    char id[GDN_IT_ID_SIZE];

    return gdn_it_poll(client, worker, NULL, id) == 200 && id[0] == '\0';
}

/* ---- long polls driven by curl multi handles ---- */

/* One long poll in flight, and its answer once it came. */
typedef struct waiting_poll {
    CURL *easy;
    char *body;
    size_t body_len;
    long status;
    CURLcode code;
    int done;
    int removed;
    int has_task; /* 1: a task, 0: the empty answer, -1: anything else */
    char task_id[GDN_IT_ID_SIZE];
} waiting_poll_t;

/* Long polls sharing one multi handle; HTTP/2 groups multiplex them over few connections. */
typedef struct poll_group {
    CURLM *multi;
    const gdn_it_server_t *server;
    int http2;
    waiting_poll_t *polls;
    int capacity;
    int count;
    int done;
} poll_group_t;

/* Opens a group for `capacity` polls; HTTP/2 groups put at most `streams` on a connection. */
static int poll_group_open(poll_group_t *group, const gdn_it_server_t *srv, int capacity, int http2,
                           long streams)
{
    memset(group, 0, sizeof(*group));
    group->server = srv;
    group->http2 = http2;
    group->capacity = capacity;
    group->multi = curl_multi_init();
    group->polls = calloc((size_t)capacity, sizeof(*group->polls));
    if (!group->multi || !group->polls)
        return -1;
    if (http2) {
        curl_multi_setopt(group->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
        curl_multi_setopt(group->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, streams);
    }
    return 0;
}

static size_t on_poll_body(char *data, size_t size, size_t count, void *user)
{
    waiting_poll_t *poll = user;
    size_t len = size * count;
    char *grown = realloc(poll->body, poll->body_len + len + 1);

    if (!grown)
        return 0;
    memcpy(grown + poll->body_len, data, len);
    poll->body_len += len;
    grown[poll->body_len] = '\0';
    poll->body = grown;
    return len;
}

/* Starts a poll for `worker` that may wait `wait` seconds. Returns its index, or -1. */
static int poll_group_start(poll_group_t *group, const char *worker, const char *roles, int wait)
{
    if (group->count == group->capacity)
        return -1;

    int index = group->count;
    waiting_poll_t *poll = &group->polls[index];
    char url[PATH_SIZE];
    const gdn_it_server_t *srv = group->server;
    snprintf(url, sizeof(url), "%s://127.0.0.1:%d/poll/next?worker_id=%s%s%s&wait=%d",
             srv->tls ? "https" : "http", srv->port, worker, roles ? "&roles=" : "",
             roles ? roles : "", wait);

    poll->easy = curl_easy_init();
    if (!poll->easy)
        return -1;
    curl_easy_setopt(poll->easy, CURLOPT_URL, url);
    curl_easy_setopt(poll->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(poll->easy, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(poll->easy, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(poll->easy, CURLOPT_WRITEFUNCTION, on_poll_body);
    curl_easy_setopt(poll->easy, CURLOPT_WRITEDATA, poll);
    curl_easy_setopt(poll->easy, CURLOPT_PRIVATE, poll);
    if (srv->tls)
        curl_easy_setopt(poll->easy, CURLOPT_CAINFO, srv->cert_path);
    long version = srv->tls ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
    curl_easy_setopt(poll->easy, CURLOPT_HTTP_VERSION,
                     group->http2 ? version : CURL_HTTP_VERSION_1_1);
    /* A poll started while its connection is still negotiating waits to share it. */
    if (group->http2)
        curl_easy_setopt(poll->easy, CURLOPT_PIPEWAIT, 1L);
    if (curl_multi_add_handle(group->multi, poll->easy) != CURLM_OK)
        return -1;
    group->count++;
    return index;
}

/* Records an answer: its status and whether it carried a task. */
static void take_answer(poll_group_t *group, CURL *easy, CURLcode code)
{
    waiting_poll_t *poll = NULL;

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&poll);
    if (!poll || poll->done)
        return;
    poll->done = 1;
    poll->code = code;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &poll->status);
    group->done++;

    yajl_val json = poll->body ? yajl_tree_parse(poll->body, NULL, 0) : NULL;
    yajl_val task = gdn_it_json_get(json, "task", NULL);
    const char *id = gdn_it_json_string(task, "id", NULL);
    poll->has_task = id ? 1 : YAJL_IS_NULL(task) ? 0 : -1;
    snprintf(poll->task_id, sizeof(poll->task_id), "%s", id ? id : "");
    if (json)
        yajl_tree_free(json);
}

/* Moves every transfer of the group along and collects what finished. */
static void poll_group_step(poll_group_t *group, int timeout_ms)
{
    int running = 0;
    int left = 0;

    curl_multi_perform(group->multi, &running);
    for (CURLMsg *msg = curl_multi_info_read(group->multi, &left); msg != NULL;
         msg = curl_multi_info_read(group->multi, &left)) {
        if (msg->msg == CURLMSG_DONE)
            take_answer(group, msg->easy_handle, msg->data.result);
    }
    if (running > 0)
        curl_multi_poll(group->multi, NULL, 0, timeout_ms, NULL);
}

/* Counts the active polls of the group that have started sending their request. */
static int poll_group_sent(poll_group_t *group)
{
    int sent = 0;

    for (int i = 0; i < group->count; i++) {
        curl_off_t pretransfer = 0;
        waiting_poll_t *poll = &group->polls[i];
        if (poll->removed)
            continue;
        curl_easy_getinfo(poll->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
        sent += poll->done || pretransfer > 0;
    }
    return sent;
}

/*
 * Drives the groups for up to `seconds`, and stops early once `want_done` polls in all have
 * finished (0: never early).
 */
static void drive_groups(poll_group_t *groups, int count, double seconds, int want_done)
{
    double deadline = now_s() + seconds;

    while (now_s() < deadline) {
        int done = 0;
        for (int g = 0; g < count; g++) {
            poll_group_step(&groups[g], count > 1 ? 2 : 10);
            done += groups[g].done;
        }
        if (want_done > 0 && done >= want_done)
            return;
    }
}

/*
 * Drives the groups until `want_sent` of their active polls have started sending. Returns 1 if
 * they did within LIVENESS_S.
 */
static int drive_until_sent(poll_group_t *groups, int count, int want_sent)
{
    double deadline = now_s() + LIVENESS_S;

    while (now_s() < deadline) {
        int sent = 0;
        drive_groups(groups, count, 0.05, 0);
        for (int g = 0; g < count; g++)
            sent += poll_group_sent(&groups[g]);
        if (sent >= want_sent)
            return 1;
    }
    return 0;
}

/*
 * Abandons poll `index`. An HTTP/2 stream in flight is reset and its connection stays;
 * libcurl 7.88 sends the RST_STREAM with the next frame it writes on that connection.
 */
static void poll_group_abandon(poll_group_t *group, int index)
{
    waiting_poll_t *poll = &group->polls[index];

    curl_multi_remove_handle(group->multi, poll->easy);
    curl_easy_cleanup(poll->easy);
    poll->easy = NULL;
    poll->removed = 1;
}

static long connections_opened(const waiting_poll_t *poll)
{
    long opened = 0;

    curl_easy_getinfo(poll->easy, CURLINFO_NUM_CONNECTS, &opened);
    return opened;
}

static void poll_group_close(poll_group_t *group)
{
    for (int i = 0; i < group->count; i++) {
        waiting_poll_t *poll = &group->polls[i];
        if (poll->easy) {
            curl_multi_remove_handle(group->multi, poll->easy);
            curl_easy_cleanup(poll->easy);
        }
        free(poll->body);
    }
    free(group->polls);
    if (group->multi)
        curl_multi_cleanup(group->multi);
    memset(group, 0, sizeof(*group));
}

/* ---- leases, lapses and heartbeats ---- */

/*
 * A worker claims a task and then goes quiet, as if killed: once the lease lapses the task
 * goes to another worker as its second attempt, and the first worker's late completion is
 * refused and kept as late_result.
 */
static void test_lifecycle__lapsed_lease_hands_task_to_another_worker(void)
{
    fixture_t f;
    char id[GDN_IT_ID_SIZE];
    char claimed[GDN_IT_ID_SIZE];

    if (!open_fixture(&f))
        return;
    gdn_it_client_t *client = &f.client;
    CU_ASSERT_EQUAL(register_worker(client, "doomed"), 200);
    CU_ASSERT_EQUAL(register_worker(client, "survivor"), 200);
    CU_ASSERT_EQUAL(gdn_it_create_task(client, "{\"task_type\":\"lapse\"}", id), 200);

    gdn_it_response_t res;
    CU_ASSERT_EQUAL(poll_wait(client, "doomed", NULL, 0, claimed, &res), 200);
    CU_ASSERT(same_string(claimed, id));
    long long attempts = -1;
    CU_ASSERT_EQUAL(gdn_it_json_integer(res.json, &attempts, "task", "attempts", NULL), 0);
    CU_ASSERT_EQUAL(attempts, 1);
    CU_ASSERT_PTR_NOT_NULL(gdn_it_json_string(res.json, "task", "lease_expires_at", NULL));
    gdn_it_response_free(&res);
    CU_ASSERT(nothing_claimable(client, "survivor"));

    /* "doomed" never heartbeats again: its lease lapses and the task is claimable again. */
    CU_ASSERT(poll_until_claimed(client, "survivor", claimed));
    CU_ASSERT(same_string(claimed, id));
    CU_ASSERT_EQUAL(read_task_integer(client, id, "attempts"), 2);

    CU_ASSERT_EQUAL(complete_as(client, id, "doomed", "{\"by\":\"doomed\"}", "completed", &res),
                    409);
    gdn_it_response_free(&res);
    fetch_task(client, id, &res);
    CU_ASSERT(same_string(gdn_it_json_string(res.json, "status", NULL), "processing"));
    CU_ASSERT(same_string(gdn_it_json_string(res.json, "assigned_to", NULL), "survivor"));
    CU_ASSERT(same_string(gdn_it_json_string(res.json, "late_result", "by", NULL), "doomed"));
    gdn_it_response_free(&res);

    CU_ASSERT_EQUAL(
        complete_as_status(client, id, "survivor", "{\"by\":\"survivor\"}", "completed"), 200);
    fetch_task(client, id, &res);
    CU_ASSERT(same_string(gdn_it_json_string(res.json, "status", NULL), "completed"));
    CU_ASSERT(same_string(gdn_it_json_string(res.json, "result", "by", NULL), "survivor"));
    gdn_it_response_free(&res);

    close_fixture(&f);
}

/*
 * A poison task (max_attempts 2) claimed twice and never completed ends failed with an error
 * once its second lease lapses; the first worker's completion then is refused with 409 and
 * kept as late_result.
 */
static void test_lifecycle__poison_task_fails_after_its_attempts(void)
{
    fixture_t f;
    char id[GDN_IT_ID_SIZE];
    char claimed[GDN_IT_ID_SIZE];

    if (!open_fixture(&f))
        return;
    gdn_it_client_t *client = &f.client;
    CU_ASSERT_EQUAL(gdn_it_create_task(client, "{\"task_type\":\"poison\",\"max_attempts\":2}", id),
                    200);

    CU_ASSERT(poll_until_claimed(client, "first", claimed));
    CU_ASSERT(same_string(claimed, id));
    CU_ASSERT(poll_until_claimed(client, "second", claimed));
    CU_ASSERT(same_string(claimed, id));
    CU_ASSERT(wait_for_status(client, id, "failed"));

    gdn_it_response_t res;
    fetch_task(client, id, &res);
    const char *error = gdn_it_json_string(res.json, "error", NULL);
    long long attempts = -1;
    gdn_it_json_integer(res.json, &attempts, "attempts", NULL);
    printf("  failed task: attempts=%lld error=\"%s\"\n", attempts, error ? error : "(none)");
    CU_ASSERT(error != NULL && error[0] != '\0');
    CU_ASSERT_EQUAL(attempts, 2);
    gdn_it_response_free(&res);
    CU_ASSERT(nothing_claimable(client, "third"));

    CU_ASSERT_EQUAL(complete_as(client, id, "first", "{\"late\":true}", "completed", &res), 409);
    printf("  late completion by the first worker: %ld %s\n", res.status, res.body ? res.body : "");
    gdn_it_response_free(&res);
    fetch_task(client, id, &res);
    CU_ASSERT(same_string(gdn_it_json_string(res.json, "status", NULL), "failed"));
    yajl_val late = gdn_it_json_get(res.json, "late_result", "late", NULL);
    CU_ASSERT(YAJL_IS_TRUE(late));
    if (!YAJL_IS_TRUE(late))
        printf("  no late_result on the failed task: %s\n", res.body ? res.body : "");
    gdn_it_response_free(&res);

    close_fixture(&f);
}

/*
 * Heartbeats from the registered worker that holds a task keep its lease alive past several
 * lease lengths; a heartbeat from an unregistered worker is not_found and keeps nothing, so
 * that worker's task lapses. Once the heartbeats stop, the first task lapses too.
 */
static void test_lifecycle__heartbeats_extend_the_lease(void)
{
    fixture_t f;
    char kept[GDN_IT_ID_SIZE];
    char orphan[GDN_IT_ID_SIZE];
    char claimed[GDN_IT_ID_SIZE];

    if (!open_fixture(&f))
        return;
    gdn_it_client_t *client = &f.client;
    CU_ASSERT_EQUAL(register_worker(client, "steady"), 200);
    CU_ASSERT_EQUAL(gdn_it_create_task(client, "{\"task_type\":\"kept\",\"priority\":9}", kept),
                    200);
    CU_ASSERT_EQUAL(gdn_it_create_task(client, "{\"task_type\":\"orphan\"}", orphan), 200);
    CU_ASSERT_EQUAL(gdn_it_poll(client, "steady", NULL, claimed), 200);
    CU_ASSERT(same_string(claimed, kept));
    CU_ASSERT_EQUAL(gdn_it_poll(client, "unknown", NULL, claimed), 200);
    CU_ASSERT(same_string(claimed, orphan));

    /* Three lease lengths of heartbeats, four per lease. */
    int ok = 0;
    int not_found = 0;
    int stolen = 0;
    for (int i = 0; i < 12; i++) {
        gdn_it_response_t res;
        heartbeat(client, "steady", &res);
        const char *status = gdn_it_json_string(res.json, "status", NULL);
        ok += res.status == 200 && status && strcmp(status, "ok") == 0 &&
              YAJL_IS_ARRAY(gdn_it_json_get(res.json, "cancelled_tasks", NULL));
        gdn_it_response_free(&res);

        heartbeat(client, "unknown", &res);
        status = gdn_it_json_string(res.json, "status", NULL);
        not_found += res.status == 200 && status && strcmp(status, "not_found") == 0;
        gdn_it_response_free(&res);

        if (gdn_it_poll(client, "thief", NULL, claimed) == 200 && strcmp(claimed, kept) == 0)
            stolen++;
        pause_ms(500);
    }
    CU_ASSERT_EQUAL(ok, 12);
    CU_ASSERT_EQUAL(not_found, 12);
    CU_ASSERT_EQUAL(stolen, 0);

    gdn_it_response_t res;
    fetch_task(client, kept, &res);
    CU_ASSERT(same_string(gdn_it_json_string(res.json, "status", NULL), "processing"));
    CU_ASSERT(same_string(gdn_it_json_string(res.json, "assigned_to", NULL), "steady"));
    gdn_it_response_free(&res);
    CU_ASSERT_EQUAL(read_task_integer(client, kept, "attempts"), 1);

    /* The orphan lapsed meanwhile (the thief may have claimed it); the kept task lapses now. */
    CU_ASSERT(read_task_integer(client, orphan, "attempts") >= 2);
    CU_ASSERT(poll_until_claimed(client, "heir", claimed));
    CU_ASSERT(same_string(claimed, kept));
    CU_ASSERT_EQUAL(read_task_integer(client, kept, "attempts"), 2);

    close_fixture(&f);
}

/*
 * A registered worker that stops heartbeating is gone after worker_ttl_s: its record expires
 * and the task it held goes back to pending, although the task's own lease is still running.
 */
static void test_lifecycle__silent_worker_releases_its_task(void)
{
    fixture_t f;
    char id[GDN_IT_ID_SIZE];
    char claimed[GDN_IT_ID_SIZE];

    if (!open_fixture(&f))
        return;
    gdn_it_client_t *client = &f.client;
    CU_ASSERT_EQUAL(register_worker(client, "silent"), 200);
    CU_ASSERT_EQUAL(gdn_it_stat(client, "registered_workers"), 1);
    CU_ASSERT_EQUAL(gdn_it_create_task(client, "{\"task_type\":\"long\",\"lease_s\":120}", id),
                    200);
    CU_ASSERT_EQUAL(gdn_it_poll(client, "silent", NULL, claimed), 200);
    CU_ASSERT(same_string(claimed, id));

    CU_ASSERT(wait_for_status(client, id, "pending"));
    CU_ASSERT_EQUAL(read_task_integer(client, id, "attempts"), 1);
    CU_ASSERT_EQUAL(gdn_it_stat(client, "registered_workers"), 0);
    CU_ASSERT_EQUAL(gdn_it_stat(client, "active_workers"), 0);

    gdn_it_response_t res;
    heartbeat(client, "silent", &res);
    CU_ASSERT(same_string(gdn_it_json_string(res.json, "status", NULL), "not_found"));
    gdn_it_response_free(&res);

    CU_ASSERT_EQUAL(gdn_it_poll(client, "next", NULL, claimed), 200);
    CU_ASSERT(same_string(claimed, id));
    CU_ASSERT_EQUAL(read_task_integer(client, id, "attempts"), 2);

    close_fixture(&f);
}

/* ---- completions and retries ---- */

/*
 * Completing a finished task again with the same body is 200 and changes nothing; with another
 * result or status it is 409. An unknown task is 404.
 */
static void test_lifecycle__repeated_completion_is_idempotent(void)
{
    fixture_t f;
    char id[GDN_IT_ID_SIZE];
    char claimed[GDN_IT_ID_SIZE];

    if (!open_fixture(&f))
        return;
    gdn_it_client_t *client = &f.client;
    CU_ASSERT_EQUAL(gdn_it_create_task(client, "{\"task_type\":\"once\"}", id), 200);
    CU_ASSERT_EQUAL(gdn_it_poll(client, "w", NULL, claimed), 200);

    gdn_it_response_t res;
    CU_ASSERT_EQUAL(complete_as(client, id, "w", "{\"n\":1}", "completed", &res), 200);
    CU_ASSERT(same_string(gdn_it_json_string(res.json, "status", NULL), "completed"));
    gdn_it_response_free(&res);
    CU_ASSERT_EQUAL(complete_as_status(client, id, "w", "{\"n\":1}", "completed"), 200);
    CU_ASSERT_EQUAL(complete_as_status(client, id, "w", "{\"n\":2}", "completed"), 409);
    CU_ASSERT_EQUAL(complete_as_status(client, id, "w", "{\"n\":1}", "failed"), 409);
    CU_ASSERT_EQUAL(gdn_it_complete(client, id, "{\"n\":3}", NULL), 409);

    long long n = -1;
    fetch_task(client, id, &res);
    CU_ASSERT(same_string(gdn_it_json_string(res.json, "status", NULL), "completed"));
    CU_ASSERT_EQUAL(gdn_it_json_integer(res.json, &n, "result", "n", NULL), 0);
    CU_ASSERT_EQUAL(n, 1);
    gdn_it_response_free(&res);

    CU_ASSERT_EQUAL(gdn_it_complete(client, "00000000-0000-4000-8000-000000000000", "1", NULL),
                    404);
    close_fixture(&f);
}

/*
 * Claims the retried task `id` as `worker` once it is back, and checks that it was not
 * claimable right after the retry nor 0.3 s later (the backoff is at least half of 1 s).
 */
static void claim_after_backoff(gdn_it_client_t *client, const char *id, const char *worker,
                                long long attempts_before)
{
    char claimed[GDN_IT_ID_SIZE];

    CU_ASSERT(nothing_claimable(client, worker));
    pause_ms(300);
    CU_ASSERT(nothing_claimable(client, worker));

    char status[32];
    read_status(client, id, status, sizeof(status));
    CU_ASSERT(same_string(status, "pending"));
    CU_ASSERT_EQUAL(read_task_integer(client, id, "attempts"), attempts_before);

    CU_ASSERT(poll_until_claimed(client, worker, claimed));
    CU_ASSERT(same_string(claimed, id));
    CU_ASSERT_EQUAL(read_task_integer(client, id, "attempts"), attempts_before + 1);
}

/*
 * A worker's "retry" puts the task back after a backoff, counting the attempt; the last
 * allowed attempt's retry fails the task.
 */
static void test_lifecycle__retry_backs_off_and_counts_attempts(void)
{
    fixture_t f;
    char id[GDN_IT_ID_SIZE];
    char claimed[GDN_IT_ID_SIZE];

    if (!open_fixture(&f))
        return;
    gdn_it_client_t *client = &f.client;
    CU_ASSERT_EQUAL(register_worker(client, "flaky"), 200);
    CU_ASSERT_EQUAL(gdn_it_create_task(client, "{\"task_type\":\"flaky\",\"max_attempts\":3}", id),
                    200);
    CU_ASSERT_EQUAL(gdn_it_poll(client, "flaky", NULL, claimed), 200);
    CU_ASSERT(same_string(claimed, id));

    gdn_it_response_t res;
    CU_ASSERT_EQUAL(complete_as(client, id, "flaky", "{\"try\":1}", "retry", &res), 200);
    CU_ASSERT(same_string(gdn_it_json_string(res.json, "status", NULL), "retry"));
    CU_ASSERT(same_string(gdn_it_json_string(res.json, "task_id", NULL), id));
    gdn_it_response_free(&res);
    claim_after_backoff(client, id, "flaky", 1);

    CU_ASSERT_EQUAL(complete_as_status(client, id, "flaky", "{\"try\":2}", "retry"), 200);
    claim_after_backoff(client, id, "flaky", 2);

    CU_ASSERT_EQUAL(complete_as_status(client, id, "flaky", "{\"try\":3}", "retry"), 200);
    fetch_task(client, id, &res);
    const char *error = gdn_it_json_string(res.json, "error", NULL);
    printf("  after the third retry: status=%s error=\"%s\"\n",
           gdn_it_json_string(res.json, "status", NULL), error ? error : "(none)");
    CU_ASSERT(same_string(gdn_it_json_string(res.json, "status", NULL), "failed"));
    CU_ASSERT(error != NULL && error[0] != '\0');
    gdn_it_response_free(&res);
    CU_ASSERT(nothing_claimable(client, "flaky"));

    close_fixture(&f);
}

/* ---- delays ---- */

/*
 * Tasks with delay_s or run_at are pending but neither listed as claimable nor handed out
 * before they are due; then they are, and a poll that waits is answered when they fall due.
 */
static void test_lifecycle__delayed_tasks_wait_until_due(void)
{
    fixture_t f;
    char delayed[GDN_IT_ID_SIZE];
    char scheduled[GDN_IT_ID_SIZE];
    char claimed[GDN_IT_ID_SIZE];
    char run_at[64];
    char body[256];

    if (!open_fixture(&f))
        return;
    gdn_it_client_t *client = &f.client;
    format_utc_ahead(3, run_at, sizeof(run_at));
    snprintf(body, sizeof(body), "{\"task_type\":\"later\",\"role\":\"cron\",\"run_at\":\"%s\"}",
             run_at);
    CU_ASSERT_EQUAL(gdn_it_create_task(client, body, scheduled), 200);
    CU_ASSERT_EQUAL(gdn_it_create_task(client, "{\"task_type\":\"soon\",\"delay_s\":2}", delayed),
                    200);

    char status[32];
    read_status(client, delayed, status, sizeof(status));
    CU_ASSERT(same_string(status, "pending"));
    CU_ASSERT(nothing_claimable(client, "early"));
    gdn_it_response_t res;
    gdn_it_call(client, "GET", "/tasks", NULL, &res);
    CU_ASSERT_EQUAL(gdn_it_json_length(gdn_it_json_get(res.json, "tasks", NULL)), 0);
    gdn_it_response_free(&res);

    /* A waiting poll is answered by the task falling due, not by its own deadline. */
    CU_ASSERT_EQUAL(poll_wait(client, "patient", "archivist", 10, claimed, NULL), 200);
    CU_ASSERT(same_string(claimed, delayed));

    CU_ASSERT_EQUAL(poll_wait(client, "patient", "cron", 10, claimed, NULL), 200);
    CU_ASSERT(same_string(claimed, scheduled));
    CU_ASSERT(nothing_claimable(client, "late"));

    close_fixture(&f);
}

/* ---- expiry ---- */

/* Completes one task and cancels another on `srv`; their ids go to `done` and `cancelled`. */
static void finish_two_tasks(gdn_it_client_t *client, char *done, char *cancelled)
{
    char claimed[GDN_IT_ID_SIZE];
    gdn_it_response_t res;

    CU_ASSERT_EQUAL(gdn_it_create_task(client, "{\"task_type\":\"short-lived\"}", done), 200);
    CU_ASSERT_EQUAL(gdn_it_poll(client, "w", NULL, claimed), 200);
    CU_ASSERT_EQUAL(complete_as_status(client, done, "w", "{\"ok\":1}", "completed"), 200);
    CU_ASSERT_EQUAL(gdn_it_create_task(client, "{\"task_type\":\"dropped\"}", cancelled), 200);

    char path[PATH_SIZE];
    snprintf(path, sizeof(path), "/tasks/%s/cancel", cancelled);
    gdn_it_call(client, "POST", path, NULL, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    gdn_it_response_free(&res);
}

/* Waits until the journal no longer holds `key`. Returns 1 if it went within LIVENESS_S. */
static int wait_for_record_gone(const gdn_it_server_t *srv, const char *key)
{
    double deadline = now_s() + LIVENESS_S;

    while (now_s() < deadline) {
        if (journal_has_record(srv, key) == 0)
            return 1;
        pause_ms(200);
    }
    return 0;
}

/*
 * With completed_ttl_s = 2 and task_retention_s = 2, the completed:{id} copy, the finished and
 * cancelled task:{id} records and a silent worker:{id} go away; a second server that keeps
 * finished tasks (task_retention_s = 0) keeps its tasks. The copy is no record of the journal,
 * only an object of the bucket, and a server with no bucket logs no change for upload at all
 * (nothing would ever clear the log): the unit tests follow the copy through the change log.
 */
static void test_lifecycle__finished_records_expire(void)
{
    gdn_it_server_t srv;
    gdn_it_server_t keeper;
    gdn_it_client_t client;
    gdn_it_client_t keeper_client;
    char done[GDN_IT_ID_SIZE];
    char cancelled[GDN_IT_ID_SIZE];
    char kept[GDN_IT_ID_SIZE];
    char kept_cancelled[GDN_IT_ID_SIZE];
    char key[GDN_IT_ID_SIZE + 16];

    if (!start_server(&srv, 2, "completed_ttl_s = 2\ntask_retention_s = 2\n"))
        return;
    if (!start_server(&keeper, 2, "completed_ttl_s = 2\ntask_retention_s = 0\n")) {
        gdn_it_server_cleanup(&srv);
        return;
    }
    CU_ASSERT_FATAL(gdn_it_client_open(&client, &srv, GDN_IT_HTTP1) == 0);
    CU_ASSERT_FATAL(gdn_it_client_open(&keeper_client, &keeper, GDN_IT_HTTP1) == 0);
    CU_ASSERT_EQUAL(register_worker(&client, "passing"), 200);
    finish_two_tasks(&client, done, cancelled);
    finish_two_tasks(&keeper_client, kept, kept_cancelled);

    snprintf(key, sizeof(key), "completed:%s", done);
    CU_ASSERT_EQUAL(journal_has_change(&srv, key, 0), 0);
    CU_ASSERT_EQUAL(journal_has_record(&srv, key), 0);
    snprintf(key, sizeof(key), "worker:passing");
    CU_ASSERT_EQUAL(journal_has_record(&srv, key), 1);
    CU_ASSERT_EQUAL(gdn_it_stat(&client, "completed_tasks"), 1);
    CU_ASSERT_EQUAL(gdn_it_stat(&client, "cancelled_tasks"), 1);

    CU_ASSERT(wait_for_task_gone(&client, done));
    CU_ASSERT(wait_for_task_gone(&client, cancelled));
    snprintf(key, sizeof(key), "worker:passing");
    CU_ASSERT(wait_for_record_gone(&srv, key));
    CU_ASSERT_EQUAL(gdn_it_stat(&client, "registered_workers"), 0);
    CU_ASSERT_EQUAL(gdn_it_stat(&client, "completed_tasks"), 0);
    CU_ASSERT_EQUAL(gdn_it_stat(&client, "cancelled_tasks"), 0);

    snprintf(key, sizeof(key), "completed:%s", kept);
    CU_ASSERT_EQUAL(journal_has_change(&keeper, key, 0), 0);
    char status[32];
    read_status(&keeper_client, kept, status, sizeof(status));
    CU_ASSERT(same_string(status, "completed"));
    read_status(&keeper_client, kept_cancelled, status, sizeof(status));
    CU_ASSERT(same_string(status, "cancelled"));

    gdn_it_client_close(&keeper_client);
    gdn_it_client_close(&client);
    gdn_it_server_cleanup(&keeper);
    gdn_it_server_cleanup(&srv);
}

/* ---- idempotency, cancel, listing ---- */

/*
 * A repeated POST /tasks with the same Idempotency-Key and body returns the first task and
 * creates nothing; the same key with another body is 409; other keys, or none, create.
 */
static void test_lifecycle__idempotency_key_creates_once(void)
{
    static const char body[] = "{\"task_type\":\"charge\",\"input_data\":{\"amount\":5}}";
    static const char other[] = "{\"task_type\":\"charge\",\"input_data\":{\"amount\":6}}";
    fixture_t f;
    gdn_it_client_t client2;
    char first[GDN_IT_ID_SIZE];
    char again[GDN_IT_ID_SIZE];
    char id[GDN_IT_ID_SIZE];

    if (!open_fixture(&f))
        return;
    gdn_it_client_t *client = &f.client;
    CU_ASSERT_FATAL(gdn_it_client_open(&client2, &f.srv, GDN_IT_HTTP2) == 0);

    CU_ASSERT_EQUAL(create_keyed(client, body, "order-17", first), 200);
    CU_ASSERT(first[0] != '\0');
    CU_ASSERT_EQUAL(create_keyed(client, body, "order-17", again), 200);
    CU_ASSERT(same_string(again, first));
    CU_ASSERT_EQUAL(create_keyed(&client2, body, "order-17", again), 200);
    CU_ASSERT(same_string(again, first));
    CU_ASSERT_EQUAL(gdn_it_stat(client, "pending_tasks"), 1);

    CU_ASSERT_EQUAL(create_keyed(client, other, "order-17", id), 409);
    CU_ASSERT_EQUAL(gdn_it_stat(client, "pending_tasks"), 1);

    CU_ASSERT_EQUAL(create_keyed(client, body, "order-18", id), 200);
    CU_ASSERT(strcmp(id, first) != 0);
    CU_ASSERT_EQUAL(create_keyed(client, body, NULL, id), 200);
    CU_ASSERT_EQUAL(create_keyed(client, body, NULL, again), 200);
    CU_ASSERT(strcmp(id, again) != 0);
    CU_ASSERT_EQUAL(gdn_it_stat(client, "pending_tasks"), 4);

    gdn_it_client_close(&client2);
    close_fixture(&f);
}

static long cancel_task(gdn_it_client_t *client, const char *id, gdn_it_response_t *res)
{
    char path[PATH_SIZE];

    snprintf(path, sizeof(path), "/tasks/%s/cancel", id);
    gdn_it_call(client, "POST", path, NULL, res);
    return res->status;
}

/* Checks a 200 cancel answer: {"status":"cancelled","task_id":ID}. */
static void expect_cancelled(gdn_it_client_t *client, const char *id)
{
    gdn_it_response_t res;

    CU_ASSERT_EQUAL(cancel_task(client, id, &res), 200);
    CU_ASSERT(same_string(gdn_it_json_string(res.json, "status", NULL), "cancelled"));
    CU_ASSERT(same_string(gdn_it_json_string(res.json, "task_id", NULL), id));
    gdn_it_response_free(&res);

    char status[32];
    read_status(client, id, status, sizeof(status));
    CU_ASSERT(same_string(status, "cancelled"));
}

/*
 * Cancelling a pending task takes it out of the claim order; cancelling a processing task
 * tells its worker through the heartbeat's cancelled_tasks and refuses its completion. A
 * second cancel is 409, an unknown task 404, and /stats counts the cancelled tasks.
 */
static void test_lifecycle__cancel_pending_and_processing_tasks(void)
{
    fixture_t f;
    char waiting[GDN_IT_ID_SIZE];
    char running[GDN_IT_ID_SIZE];
    char claimed[GDN_IT_ID_SIZE];
    char status[32];

    if (!open_fixture(&f))
        return;
    gdn_it_client_t *client = &f.client;
    CU_ASSERT_EQUAL(register_worker(client, "busy"), 200);
    CU_ASSERT_EQUAL(gdn_it_create_task(client, "{\"task_type\":\"run\",\"priority\":9}", running),
                    200);
    CU_ASSERT_EQUAL(gdn_it_create_task(client, "{\"task_type\":\"wait\"}", waiting), 200);
    CU_ASSERT_EQUAL(gdn_it_poll(client, "busy", NULL, claimed), 200);
    CU_ASSERT(same_string(claimed, running));

    expect_cancelled(client, waiting);
    CU_ASSERT(nothing_claimable(client, "other"));
    expect_cancelled(client, running);

    gdn_it_response_t res;
    CU_ASSERT_EQUAL(heartbeat(client, "busy", &res), 200);
    printf("  heartbeat after the cancel: %s\n", res.body ? res.body : "");
    CU_ASSERT(same_string(gdn_it_json_string(res.json, "status", NULL), "ok"));
    CU_ASSERT(heartbeat_lists(&res, running));
    CU_ASSERT(!heartbeat_lists(&res, waiting));
    gdn_it_response_free(&res);

    CU_ASSERT_EQUAL(complete_as_status(client, running, "busy", "{\"done\":1}", "completed"), 409);
    read_status(client, running, status, sizeof(status));
    CU_ASSERT(same_string(status, "cancelled"));

    CU_ASSERT_EQUAL(cancel_task(client, running, &res), 409);
    gdn_it_response_free(&res);
    CU_ASSERT_EQUAL(cancel_task(client, waiting, &res), 409);
    gdn_it_response_free(&res);
    CU_ASSERT_EQUAL(cancel_task(client, "00000000-0000-4000-8000-000000000000", &res), 404);
    gdn_it_response_free(&res);

    CU_ASSERT_EQUAL(gdn_it_stat(client, "cancelled_tasks"), 2);
    CU_ASSERT_EQUAL(gdn_it_stat(client, "pending_tasks"), 0);
    CU_ASSERT_EQUAL(gdn_it_stat(client, "processing_tasks"), 0);

    /* A finished task cannot be cancelled either. */
    char finished[GDN_IT_ID_SIZE];
    CU_ASSERT_EQUAL(gdn_it_create_task(client, "{\"task_type\":\"quick\"}", finished), 200);
    CU_ASSERT_EQUAL(gdn_it_complete(client, finished, "1", NULL), 200);
    CU_ASSERT_EQUAL(cancel_task(client, finished, &res), 409);
    gdn_it_response_free(&res);

    close_fixture(&f);
}

/*
 * Reads the listing at `query` page by page (at most 10 pages), appending the ids to `ids`.
 * Returns the number of pages, or -1 on an unexpected answer.
 */
static int read_pages(gdn_it_client_t *client, const char *query, char ids[][GDN_IT_ID_SIZE],
                      int capacity, int *count)
{
    char cursor[256] = "";
    int pages = 0;

    *count = 0;
    while (pages < 10) {
        char path[PATH_SIZE];
        gdn_it_response_t res;
        snprintf(path, sizeof(path), "/tasks?%s%s%s", query, cursor[0] ? "&cursor=" : "", cursor);
        gdn_it_call(client, "GET", path, NULL, &res);
        yajl_val tasks = gdn_it_json_get(res.json, "tasks", NULL);
        yajl_val next = gdn_it_json_get(res.json, "next_cursor", NULL);
        if (res.status != 200 || !YAJL_IS_ARRAY(tasks) || !next) {
            printf("  GET %s answered %ld: %s\n", path, res.status, res.body ? res.body : "");
            gdn_it_response_free(&res);
            return -1;
        }
        pages++;
        for (size_t i = 0; i < gdn_it_json_length(tasks) && *count < capacity; i++) {
            const char *id = gdn_it_json_string(gdn_it_json_at(tasks, i), "id", NULL);
            snprintf(ids[(*count)++], GDN_IT_ID_SIZE, "%s", id ? id : "");
        }
        int last = YAJL_IS_NULL(next);
        if (!last)
            snprintf(cursor, sizeof(cursor), "%s", YAJL_IS_STRING(next) ? next->u.string : "");
        gdn_it_response_free(&res);
        if (last)
            return pages;
    }
    return pages;
}

/* Checks that GET /tasks?`query` is refused with a 422 naming query parameter `name`. */
static void expect_bad_query(gdn_it_client_t *client, const char *query, const char *name)
{
    char path[PATH_SIZE];
    gdn_it_response_t res;

    snprintf(path, sizeof(path), "/tasks?%s", query);
    gdn_it_call(client, "GET", path, NULL, &res);
    yajl_val problem = gdn_it_json_at(gdn_it_json_get(res.json, "detail", NULL), 0);
    yajl_val loc = gdn_it_json_get(problem, "loc", NULL);
    yajl_val where = gdn_it_json_at(loc, 0);
    yajl_val field = gdn_it_json_at(loc, 1);
    CU_ASSERT_EQUAL(res.status, 422);
    CU_ASSERT(YAJL_IS_STRING(where) && strcmp(where->u.string, "query") == 0);
    CU_ASSERT(YAJL_IS_STRING(field) && strcmp(field->u.string, name) == 0);
    if (res.status != 422)
        printf("  GET %s answered %ld: %s\n", path, res.status, res.body ? res.body : "");
    gdn_it_response_free(&res);
}

/*
 * GET /tasks pages through five tasks two at a time with a cursor, filters by status, role and
 * project, refuses bad parameters, and without parameters still lists the claimable tasks in
 * claim order with no cursor.
 */
static void test_lifecycle__listing_pages_with_a_cursor(void)
{
    fixture_t f;
    char created[5][GDN_IT_ID_SIZE];
    char urgent[GDN_IT_ID_SIZE];
    char elsewhere[GDN_IT_ID_SIZE];
    char seen[16][GDN_IT_ID_SIZE];
    char claimed[GDN_IT_ID_SIZE];
    int count;

    if (!open_fixture(&f))
        return;
    gdn_it_client_t *client = &f.client;
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(gdn_it_create_task(client,
                                           "{\"task_type\":\"page\",\"role\":\"lister\","
                                           "\"project_id\":\"pager\"}",
                                           created[i]),
                        200);
    CU_ASSERT_EQUAL(gdn_it_create_task(client,
                                       "{\"task_type\":\"other\",\"role\":\"mover\","
                                       "\"project_id\":\"elsewhere\",\"priority\":1}",
                                       elsewhere),
                    200);
    CU_ASSERT_EQUAL(gdn_it_create_task(client,
                                       "{\"task_type\":\"urgent\",\"role\":\"mover\","
                                       "\"project_id\":\"elsewhere\",\"priority\":9}",
                                       urgent),
                    200);

    /* Claim order within one project: same priority, so oldest first. */
    CU_ASSERT_EQUAL(read_pages(client, "project_id=pager&limit=2", seen, 16, &count), 3);
    CU_ASSERT_EQUAL(count, 5);
    for (int i = 0; i < 5 && i < count; i++)
        CU_ASSERT(same_string(seen[i], created[i]));

    /* One status, oldest first, across projects. */
    CU_ASSERT_EQUAL(read_pages(client, "status=pending&limit=2", seen, 16, &count), 4);
    CU_ASSERT_EQUAL(count, 7);
    CU_ASSERT_EQUAL(read_pages(client, "status=pending&role=lister&limit=2", seen, 16, &count), 3);
    CU_ASSERT_EQUAL(count, 5);
    CU_ASSERT_EQUAL(read_pages(client, "role=mover&limit=500", seen, 16, &count), 1);
    CU_ASSERT_EQUAL(count, 2);
    if (count == 2) {
        CU_ASSERT(same_string(seen[0], urgent));
        CU_ASSERT(same_string(seen[1], elsewhere));
    }

    CU_ASSERT_EQUAL(gdn_it_poll(client, "w", "lister", claimed), 200);
    CU_ASSERT_EQUAL(read_pages(client, "status=processing", seen, 16, &count), 1);
    CU_ASSERT_EQUAL(count, 1);
    CU_ASSERT(same_string(seen[0], claimed));
    /* A page that fills up before the listing's end carries a cursor, even when nothing that
     * passes the filters follows: the last page may then be empty. */
    CU_ASSERT(read_pages(client, "project_id=pager&limit=2", seen, 16, &count) >= 2);
    CU_ASSERT_EQUAL(count, 4);

    /* Without parameters: claimable tasks in claim order, and no cursor. */
    gdn_it_response_t res;
    gdn_it_call(client, "GET", "/tasks", NULL, &res);
    yajl_val tasks = gdn_it_json_get(res.json, "tasks", NULL);
    CU_ASSERT_EQUAL(res.status, 200);
    CU_ASSERT_EQUAL(gdn_it_json_length(tasks), 6);
    CU_ASSERT_PTR_NULL(gdn_it_json_get(res.json, "next_cursor", NULL));
    const char *head = gdn_it_json_string(gdn_it_json_at(tasks, 0), "id", NULL);
    CU_ASSERT(head != NULL && strcmp(head, urgent) == 0);
    gdn_it_response_free(&res);

    expect_bad_query(client, "status=sleeping", "status");
    expect_bad_query(client, "limit=0", "limit");
    expect_bad_query(client, "limit=501", "limit");
    expect_bad_query(client, "limit=two", "limit");
    expect_bad_query(client, "cursor=not-a-cursor", "cursor");
    expect_bad_query(client, "status=pending&cursor=1.2.3", "cursor");

    close_fixture(&f);
}

/* ---- long polling ---- */

/*
 * A poll with a wait and nothing to claim gets the usual empty answer at its deadline; one
 * that finds a task created meanwhile gets it; waits outside 0 to 30 are refused.
 */
static void test_lifecycle__long_poll_waits_for_a_task_or_its_deadline(void)
{
    fixture_t f;
    char id[GDN_IT_ID_SIZE];
    char claimed[GDN_IT_ID_SIZE];
    poll_group_t group;

    if (!open_fixture(&f))
        return;
    gdn_it_client_t *client = &f.client;

    gdn_it_response_t res;
    double started = now_s();
    CU_ASSERT_EQUAL(poll_wait(client, "idle", NULL, 1, claimed, &res), 200);
    double waited = now_s() - started;
    CU_ASSERT(same_string(claimed, ""));
    CU_ASSERT(YAJL_IS_NULL(gdn_it_json_get(res.json, "task", NULL)));
    CU_ASSERT(same_string(gdn_it_json_string(res.json, "message", NULL), "No tasks available"));
    gdn_it_response_free(&res);
    printf("  a wait=1 poll with nothing to claim answered after %.2f s\n", waited);

    CU_ASSERT_EQUAL(poll_wait(client, "idle", NULL, 31, claimed, NULL), 422);
    CU_ASSERT_EQUAL(poll_wait(client, "idle", NULL, -1, claimed, NULL), 422);

    CU_ASSERT_FATAL(poll_group_open(&group, &f.srv, 1, 0, 1) == 0);
    int index = poll_group_start(&group, "eager", NULL, 20);
    CU_ASSERT(index == 0);
    CU_ASSERT(drive_until_sent(&group, 1, 1));
    drive_groups(&group, 1, 0.5, 0);
    CU_ASSERT_EQUAL(group.done, 0);
    CU_ASSERT_EQUAL(gdn_it_create_task(client, "{\"task_type\":\"awaited\"}", id), 200);
    drive_groups(&group, 1, LIVENESS_S, 1);
    CU_ASSERT_EQUAL(group.done, 1);
    CU_ASSERT_EQUAL(group.polls[0].status, 200);
    CU_ASSERT(same_string(group.polls[0].task_id, id));
    poll_group_close(&group);

    close_fixture(&f);
}

static int compare_ids(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* Counts the answers of the groups: tasks delivered, empty answers, failures, duplicates. */
static void count_deliveries(poll_group_t *groups, int count, char (*created)[GDN_IT_ID_SIZE],
                             int created_count)
{
    int delivered = 0;
    int empty = 0;
    int failed = 0;
    int unknown = 0;
    char(*ids)[GDN_IT_ID_SIZE] = calloc((size_t)created_count + 1, GDN_IT_ID_SIZE);

    CU_ASSERT_FATAL(ids != NULL);
    for (int g = 0; g < count; g++) {
        for (int i = 0; i < groups[g].count; i++) {
            waiting_poll_t *poll = &groups[g].polls[i];
            if (!poll->done || poll->code != CURLE_OK || poll->status != 200 ||
                poll->has_task < 0) {
                if (failed++ < 3)
                    printf("  poll %d.%d: done=%d curl=%d http=%ld body=%.120s\n", g, i, poll->done,
                           (int)poll->code, poll->status, poll->body ? poll->body : "");
                continue;
            }
            if (poll->has_task == 0) {
                empty++;
                continue;
            }
            if (delivered < created_count)
                memcpy(ids[delivered], poll->task_id, GDN_IT_ID_SIZE);
            delivered++;
            unknown += !bsearch(poll->task_id, created, (size_t)created_count, GDN_IT_ID_SIZE,
                                compare_ids);
        }
    }

    int kept = delivered < created_count ? delivered : created_count;
    int duplicates = 0;
    qsort(ids, (size_t)kept, GDN_IT_ID_SIZE, compare_ids);
    for (int i = 1; i < kept; i++)
        duplicates += strcmp(ids[i - 1], ids[i]) == 0;
    printf("  %d tasks delivered, %d empty answers, %d failed polls, %d duplicates, %d unknown\n",
           delivered, empty, failed, duplicates, unknown);
    CU_ASSERT_EQUAL(delivered, created_count);
    CU_ASSERT_EQUAL(empty, 0);
    CU_ASSERT_EQUAL(failed, 0);
    CU_ASSERT_EQUAL(duplicates, 0);
    CU_ASSERT_EQUAL(unknown, 0);
    free(ids);
}

/* Sums the connections the polls of a group opened, and checks they all spoke `version`. */
static long group_connections(poll_group_t *group, long version)
{
    long total = 0;
    int wrong = 0;

    for (int i = 0; i < group->count; i++) {
        long used = 0;
        total += connections_opened(&group->polls[i]);
        curl_easy_getinfo(group->polls[i].easy, CURLINFO_HTTP_VERSION, &used);
        wrong += used != version;
    }
    CU_ASSERT_EQUAL(wrong, 0);
    return total;
}

/*
 * 200 workers wait at once, 100 over HTTP/1.1 (a connection each) and 100 over HTTP/2 (25
 * streams per connection), on four loop threads; 200 tasks created afterwards over another
 * connection reach them one each: no task twice, no waiter empty-handed.
 */
static void test_lifecycle__two_hundred_waiting_polls_get_one_task_each(void)
{
    enum { PER_PROTOCOL = 100, TASKS = 2 * PER_PROTOCOL, STREAMS = 25 };
    gdn_it_server_t srv;
    gdn_it_client_t client;
    poll_group_t groups[2];
    char(*created)[GDN_IT_ID_SIZE] = calloc(TASKS, GDN_IT_ID_SIZE);

    CU_ASSERT_FATAL(created != NULL);
    if (!start_tls_server(&srv, 4)) {
        free(created);
        return;
    }
    CU_ASSERT_FATAL(gdn_it_client_open(&client, &srv, GDN_IT_HTTP1) == 0);
    CU_ASSERT_FATAL(poll_group_open(&groups[0], &srv, PER_PROTOCOL, 0, 1) == 0);
    CU_ASSERT_FATAL(poll_group_open(&groups[1], &srv, PER_PROTOCOL, 1, STREAMS) == 0);
    char worker[32];
    for (int i = 0; i < PER_PROTOCOL; i++) {
        snprintf(worker, sizeof(worker), "h1-%d", i);
        CU_ASSERT(poll_group_start(&groups[0], worker, NULL, 20) == i);
    }
    /* HTTP/2 polls start a connection's worth at a time: the first stream of a connection
     * negotiates HTTP/2 by ALPN, then the others join it. */
    for (int i = 0; i < PER_PROTOCOL; i++) {
        snprintf(worker, sizeof(worker), "h2-%d", i);
        CU_ASSERT(poll_group_start(&groups[1], worker, NULL, 20) == i);
        if (i % STREAMS == 0)
            CU_ASSERT(drive_until_sent(&groups[1], 1, i + 1));
    }

    /* Every request is on its way; a short pause lets the server park them all. */
    CU_ASSERT(drive_until_sent(groups, 2, TASKS));
    drive_groups(groups, 2, 1.0, 0);
    CU_ASSERT_EQUAL(groups[0].done + groups[1].done, 0);

    int made = 0;
    for (int i = 0; i < TASKS; i++) {
        char body[96];
        snprintf(body, sizeof(body), "{\"task_type\":\"fan-out\",\"input_data\":{\"n\":%d}}", i);
        made += gdn_it_create_task(&client, body, created[made]) == 200;
    }
    CU_ASSERT_EQUAL(made, TASKS);
    qsort(created, (size_t)made, GDN_IT_ID_SIZE, compare_ids);

    drive_groups(groups, 2, LIVENESS_S, TASKS);
    count_deliveries(groups, 2, created, made);
    long h1_connections = group_connections(&groups[0], CURL_HTTP_VERSION_1_1);
    long h2_connections = group_connections(&groups[1], CURL_HTTP_VERSION_2_0);
    printf("  connections: %ld for HTTP/1.1, %ld for HTTP/2\n", h1_connections, h2_connections);
    CU_ASSERT_EQUAL(h1_connections, PER_PROTOCOL);
    CU_ASSERT(h2_connections >= 1 && h2_connections <= 8);
    CU_ASSERT_EQUAL(gdn_it_stat(&client, "pending_tasks"), 0);
    CU_ASSERT_EQUAL(gdn_it_stat(&client, "processing_tasks"), TASKS);

    poll_group_close(&groups[1]);
    poll_group_close(&groups[0]);
    gdn_it_client_close(&client);
    free(created);
    gdn_it_server_cleanup(&srv);
}

/*
 * An HTTP/2 long poll reset by its client, on a connection that stays open with another poll
 * on it, leaves nothing behind: a task created afterwards goes to a fresh poll on the same
 * connection rather than to the reset one (which, parked earlier, would be woken first), and
 * the server still drains and exits 0 (under AddressSanitizer a leaked poll would make that
 * exit non-zero).
 *
 * libcurl 7.88 queues the RST_STREAM of a removed transfer and sends it with the connection's
 * next frame, so the fresh poll is started, and carries the reset out, before the task exists.
 */
static void test_lifecycle__reset_http2_poll_leaves_nothing_behind(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;
    poll_group_t group;
    char id[GDN_IT_ID_SIZE];

    if (!start_tls_server(&srv, 1))
        return;
    CU_ASSERT_FATAL(gdn_it_client_open(&client, &srv, GDN_IT_HTTP1) == 0);
    CU_ASSERT_FATAL(poll_group_open(&group, &srv, 3, 1, 100) == 0);

    /* The keeper waits for a role no task has, holding the connection open. */
    int keeper = poll_group_start(&group, "keeper", "nobody", 10);
    CU_ASSERT(drive_until_sent(&group, 1, 1));
    int victim = poll_group_start(&group, "victim", NULL, 10);
    CU_ASSERT(keeper == 0 && victim == 1);
    CU_ASSERT(drive_until_sent(&group, 1, 2));
    drive_groups(&group, 1, 0.5, 0);
    CU_ASSERT_EQUAL(group.done, 0);
    CU_ASSERT_EQUAL(connections_opened(&group.polls[victim]), 0);

    poll_group_abandon(&group, victim);
    int fresh = poll_group_start(&group, "fresh", NULL, 10);
    CU_ASSERT(drive_until_sent(&group, 1, 2));
    drive_groups(&group, 1, 0.5, 0);
    CU_ASSERT_EQUAL(group.done, 0);

    CU_ASSERT_EQUAL(gdn_it_create_task(&client, "{\"task_type\":\"after-reset\"}", id), 200);
    drive_groups(&group, 1, LIVENESS_S, 1);
    waiting_poll_t *answer = &group.polls[fresh];
    printf("  fresh poll: done=%d http=%ld body=%.160s\n", answer->done, answer->status,
           answer->body ? answer->body : "");
    CU_ASSERT_EQUAL(answer->done, 1);
    CU_ASSERT_EQUAL(answer->status, 200);
    CU_ASSERT(same_string(answer->task_id, id));
    CU_ASSERT_EQUAL(connections_opened(answer), 0);
    CU_ASSERT_EQUAL(group.polls[keeper].done, 0);

    gdn_it_response_t res;
    fetch_task(&client, id, &res);
    CU_ASSERT(same_string(gdn_it_json_string(res.json, "assigned_to", NULL), "fresh"));
    long long attempts = -1;
    gdn_it_json_integer(res.json, &attempts, "attempts", NULL);
    CU_ASSERT_EQUAL(attempts, 1);
    if (attempts != 1)
        printf("  the task after the fresh poll: %s\n", res.body ? res.body : "");
    gdn_it_response_free(&res);

    /* The keeper is reset too, then the server must drain and exit cleanly. */
    poll_group_abandon(&group, keeper);
    drive_groups(&group, 1, 0.3, 0);
    gdn_it_client_close(&client);
    expect_clean_exit(&srv, 5.0);
    poll_group_close(&group);
    gdn_it_server_cleanup(&srv);
}

/* Drives poll groups from a thread while the test's thread stops the server. */
typedef struct group_driver {
    pthread_t thread;
    poll_group_t *groups;
    int count;
    int want_done;
} group_driver_t;

static void *run_group_driver(void *arg)
{
    group_driver_t *driver = arg;

    drive_groups(driver->groups, driver->count, LIVENESS_S, driver->want_done);
    return NULL;
}

/*
 * SIGTERM while five polls wait (three over HTTP/1.1, two over HTTP/2): each gets the empty
 * answer rather than a closed connection, and the server exits 0 within 5 s.
 */
static void test_lifecycle__shutdown_answers_waiting_polls(void)
{
    gdn_it_server_t srv;
    poll_group_t groups[2];
    group_driver_t driver = {.groups = groups, .count = 2, .want_done = 5};

    if (!start_tls_server(&srv, 2))
        return;
    CU_ASSERT_FATAL(poll_group_open(&groups[0], &srv, 3, 0, 1) == 0);
    CU_ASSERT_FATAL(poll_group_open(&groups[1], &srv, 2, 1, 100) == 0);
    CU_ASSERT(poll_group_start(&groups[0], "waiter-h1-0", NULL, 20) == 0);
    CU_ASSERT(poll_group_start(&groups[0], "waiter-h1-1", NULL, 20) == 1);
    CU_ASSERT(poll_group_start(&groups[0], "waiter-h1-2", NULL, 20) == 2);
    CU_ASSERT(poll_group_start(&groups[1], "waiter-h2-0", NULL, 20) == 0);
    CU_ASSERT(poll_group_start(&groups[1], "waiter-h2-1", NULL, 20) == 1);
    CU_ASSERT(drive_until_sent(groups, 2, 5));
    drive_groups(groups, 2, 0.5, 0);
    CU_ASSERT_EQUAL(groups[0].done + groups[1].done, 0);

    CU_ASSERT_FATAL(pthread_create(&driver.thread, NULL, run_group_driver, &driver) == 0);
    expect_clean_exit(&srv, 5.0);
    pthread_join(driver.thread, NULL);

    int empty = 0;
    for (int g = 0; g < 2; g++) {
        for (int i = 0; i < groups[g].count; i++) {
            waiting_poll_t *poll = &groups[g].polls[i];
            printf("  HTTP/%s poll %d: done=%d curl=%d http=%ld body=%.100s\n", g ? "2" : "1.1", i,
                   poll->done, (int)poll->code, poll->status, poll->body ? poll->body : "");
            empty +=
                poll->done && poll->code == CURLE_OK && poll->status == 200 && poll->has_task == 0;
        }
    }
    CU_ASSERT_EQUAL(empty, 5);

    poll_group_close(&groups[1]);
    poll_group_close(&groups[0]);
    gdn_it_server_cleanup(&srv);
}

static CU_TestInfo lifecycle_tests[] = {
    {"A worker that stops heartbeating loses its task to another worker when the lease lapses",
     test_lifecycle__lapsed_lease_hands_task_to_another_worker},
    {"A poison task fails with an error after max_attempts lapses and keeps a late result",
     test_lifecycle__poison_task_fails_after_its_attempts},
    {"Heartbeats of the registered holder extend its lease; unknown workers extend nothing",
     test_lifecycle__heartbeats_extend_the_lease},
    {"A registered worker silent for worker_ttl_s expires and its task goes back to pending",
     test_lifecycle__silent_worker_releases_its_task},
    {"Completing a finished task again is 200 with the same body and 409 with another",
     test_lifecycle__repeated_completion_is_idempotent},
    {"A retry puts the task back after a backoff, counts the attempt, and fails the last one",
     test_lifecycle__retry_backs_off_and_counts_attempts},
    {"Tasks with delay_s or run_at are not claimable until due, then are",
     test_lifecycle__delayed_tasks_wait_until_due},
    {"Completed copies, finished tasks and silent workers expire after their time to live",
     test_lifecycle__finished_records_expire},
    {"An Idempotency-Key creates one task; the same key with another body is 409",
     test_lifecycle__idempotency_key_creates_once},
    {"Cancel stops pending and processing tasks, tells the worker, and refuses repeats",
     test_lifecycle__cancel_pending_and_processing_tasks},
    {"GET /tasks pages with a cursor, filters, and refuses bad parameters",
     test_lifecycle__listing_pages_with_a_cursor},
    {"A long poll gets a task created while it waits, or the empty answer at its deadline",
     test_lifecycle__long_poll_waits_for_a_task_or_its_deadline},
    {"200 long polls over HTTP/1.1 and HTTP/2 receive 200 later tasks, one each",
     test_lifecycle__two_hundred_waiting_polls_get_one_task_each},
    {"An HTTP/2 long poll reset by its client leaves no waiter, task or leak behind",
     test_lifecycle__reset_http2_poll_leaves_nothing_behind},
    {"SIGTERM answers waiting polls with the empty answer and exits 0",
     test_lifecycle__shutdown_answers_waiting_polls},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo gdn_test_suites[] = {
    {.pName = "Task lifecycle",
     .pInitFunc = init_suite,
     .pCleanupFunc = cleanup_suite,
     .pTests = lifecycle_tests},
    CU_SUITE_INFO_NULL,
};
