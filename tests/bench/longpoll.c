/*
 * bench_longpoll: how soon long polling hands a new task to a waiting worker, and what an idle
 * worker costs the server.
 *
 * One mode per run:
 *
 * latency: W workers loop over GET /poll/next?wait=S and, when the poll brought a task,
 *   POST /poll/complete. A producer creates tasks at a fixed rate over a few connections of its
 *   own. Each task carries in its input_data the wall-clock time (CLOCK_REALTIME, microseconds)
 *   at which its POST /tasks was handed to libcurl; when a worker has received a poll answer
 *   with a task in full, the difference to now is the delivery latency. It includes the
 *   create's own commit, since a task can be claimed only once that commit is durable.
 *   Producer and workers live in this one process and read one clock.
 *
 * idle: N workers long-poll an empty queue for a bounded time. The run counts the requests
 *   each one makes and how long the server held each poll, and extrapolates to requests per
 *   idle worker per hour.
 *
 * Every client owns one reused easy handle and so one HTTP/1.1 keep-alive connection. They all
 * share one multi handle, driven through libcurl's multi-socket interface by one epoll loop in
 * one thread, with the glue bench_lifecycle uses too (bench_curl.h). Samples are kept whole and
 * sorted at the end, so the percentiles are exact; a run is bounded in time, in tasks and in
 * requests, so they stay small.
 *
 * A latency run ends with one stop task per worker, created at a lower priority than the
 * measured ones so that it is claimed after them: a worker that claims one completes it and
 * polls no more. Closing the workers' connections instead would leave their polls parked in
 * the server until their wait ran out, free to claim tasks that nobody would read.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "bench_curl.h"

#define URL_MAX 512
#define BODY_MAX 256
#define RESPONSE_MAX 8192
#define ROLE_MAX 64
#define TASK_ID_LEN BENCH_TASK_ID_LEN
#define COMPARE_MAX 8

/* A request may take this much longer than the poll's wait before it counts as lost. */
#define REQUEST_SLACK_MS 15000L

/* How long the workers get to claim their stop tasks before their connections are closed. */
#define STOP_GRACE_NS (5ull * 1000000000u)

enum mode { MODE_LATENCY, MODE_IDLE };

enum request { REQ_POLL, REQ_COMPLETE, REQ_CREATE, REQ_COUNT };

static const char *const request_names[REQ_COUNT] = {
    "GET /poll/next",
    "POST /poll/complete",
    "POST /tasks",
};

/* Where a latency run is. An idle run only polls, then ends. */
enum phase {
    PHASE_PRODUCE, /* creating the measured tasks on schedule */
    PHASE_DRAIN,   /* all created: waiting for the last deliveries */
    PHASE_STOP,    /* creating stop tasks until every worker has quit */
    PHASE_IDLE,    /* an idle run: polling until its deadline */
    PHASE_DONE,
};

typedef struct settings {
    const char *url;
    enum mode mode;
    int workers;
    int producers;
    double rate;       /* measured tasks created per second */
    double duration_s; /* of producing (latency) or of polling (idle) */
    double settle_s;   /* workers poll this long before the first task is created */
    double drain_s;    /* the longest wait for deliveries after the last create */
    int wait_s;
    uint64_t max_requests;
    char role[ROLE_MAX];
    int compare_s[COMPARE_MAX]; /* short-poll intervals the figures are set beside */
    int compare_count;
} settings_t;

/* Values in microseconds, grown as needed and sorted when read. */
typedef struct samples {
    uint64_t *values;
    size_t count;
    size_t capacity;
    int sorted;
} samples_t;

typedef struct failures {
    uint64_t http;      /* answered outside 2xx */
    uint64_t transport; /* no answer: refused, reset, timed out */
    uint64_t body;      /* 2xx with an unexpected body */
} failures_t;

typedef struct bench bench_t;

typedef struct client {
    CURL *easy;
    bench_t *bench;
    int index;
    int is_producer;
    int busy;     /* a request is in flight */
    int stopping; /* a worker that claimed its stop task */
    int stopped;  /* a worker that polls no more */
    enum request request;
    uint64_t started_ns;     /* CLOCK_MONOTONIC, when the request was handed to libcurl */
    int64_t started_wall_us; /* CLOCK_REALTIME, the same moment */
    uint64_t polls;          /* polls started */
    uint64_t first_poll_ns;
    uint64_t last_poll_ns;
    size_t body_len;
    bench_buffer_t answer;
    char url[URL_MAX];   /* a worker's poll URL */
    char body[BODY_MAX]; /* the create or completion being sent */
    char response[RESPONSE_MAX];
    char error[CURL_ERROR_SIZE];
} client_t;

struct bench {
    settings_t settings;
    bench_loop_t loop; /* one multi handle for every client */
    client_t *workers;
    client_t *producers;
    struct curl_slist *json_headers;
    char tasks_url[URL_MAX];
    char complete_url[URL_MAX];
    enum phase phase;
    uint64_t start_ns;
    uint64_t produce_from_ns;
    uint64_t phase_deadline_ns; /* the drain's or the stop's end, or the idle run's */
    uint64_t planned;           /* measured tasks to create */
    uint64_t next_seq;          /* the next measured task to create */
    uint64_t created;           /* measured creates acknowledged */
    uint64_t delivered;         /* measured tasks received by a worker, duplicates excluded */
    uint64_t duplicates;
    uint64_t unreadable; /* tasks whose input_data lacked the stamp */
    uint64_t to_waiting; /* deliveries to a poll sent before its task's create */
    uint64_t behind_max_us;
    uint64_t stops_sent;
    uint64_t workers_stopped; /* for any of the three reasons below, or an idle run's end */
    uint64_t workers_quit;    /* claimed a stop task */
    uint64_t workers_failed;  /* stopped at a failure */
    uint64_t workers_cut;     /* closed at the end with a request in flight */
    uint64_t empty_polls;
    uint64_t requests;
    unsigned char *seen; /* one byte per measured task */
    samples_t delivery;
    samples_t create;
    samples_t hold; /* idle: how long the server held each empty poll */
    failures_t failures[REQ_COUNT];
    char first_error[CURL_ERROR_SIZE + 64];
};

static uint64_t seconds_to_ns(double seconds)
{
    return (uint64_t)(seconds * 1e9);
}

/* ---- samples ---- */

static int samples_add(samples_t *samples, uint64_t value)
{
    if (samples->count == samples->capacity) {
        size_t capacity = samples->capacity != 0 ? samples->capacity * 2 : 1024;
        uint64_t *grown = realloc(samples->values, capacity * sizeof(*grown));

        if (grown == NULL)
            return -ENOMEM;
        samples->values = grown;
        samples->capacity = capacity;
    }
    samples->values[samples->count++] = value;
    samples->sorted = 0;
    return 0;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

/* The nearest-rank percentile: the smallest sample with at least `percent` of them at or below
 * it. 0 when there are none. */
static uint64_t samples_percentile(samples_t *samples, double percent)
{
    if (samples->count == 0)
        return 0;
    if (!samples->sorted) {
        qsort(samples->values, samples->count, sizeof(*samples->values), compare_u64);
        samples->sorted = 1;
    }

    size_t rank = (size_t)ceil(percent / 100.0 * (double)samples->count);

    if (rank < 1)
        rank = 1;
    return samples->values[rank - 1];
}

static double samples_mean(const samples_t *samples)
{
    double sum = 0.0;

    for (size_t i = 0; i < samples->count; i++)
        sum += (double)samples->values[i];
    return samples->count != 0 ? sum / (double)samples->count : 0.0;
}

/* ---- requests ---- */

static int start_request(client_t *client, enum request request)
{
    bench_t *bench = client->bench;
    CURL *easy = client->easy;

    if (bench->requests >= bench->settings.max_requests)
        return -EDQUOT;
    if (request == REQ_POLL)
        bench_set_get(easy, client->url);
    else
        bench_set_post(easy, request == REQ_CREATE ? bench->tasks_url : bench->complete_url,
                       client->body, client->body_len, bench->json_headers);
    client->request = request;
    bench_buffer_reset(&client->answer);
    client->error[0] = '\0';
    client->started_ns = bench_now_ns();
    client->started_wall_us = bench_wall_us();
    if (bench_loop_add(&bench->loop, 0, easy) != 0)
        return -EIO;
    client->busy = 1;
    bench->requests++;
    return 0;
}

/* A worker that quits, fails or reaches the end of the run polls no more. */
static void stop_worker(client_t *worker)
{
    if (worker->stopped)
        return;
    worker->stopped = 1;
    worker->bench->workers_stopped++;
}

static void fail_worker(client_t *worker)
{
    if (!worker->stopped)
        worker->bench->workers_failed++;
    stop_worker(worker);
}

static void start_poll(client_t *worker)
{
    bench_t *bench = worker->bench;
    uint64_t now = bench_now_ns();

    /* An idle run polls only until its deadline; the polls then in flight are cut. */
    if (bench->settings.mode == MODE_IDLE && now >= bench->phase_deadline_ns) {
        stop_worker(worker);
        return;
    }
    if (worker->polls == 0)
        worker->first_poll_ns = now;
    worker->last_poll_ns = now;
    worker->polls++;
    if (start_request(worker, REQ_POLL) != 0) {
        worker->polls--;
        fail_worker(worker);
    }
}

/* Builds a create body; a stop task has no stamp and the lowest priority of the run. */
static int build_create(client_t *producer, uint64_t seq, int stop)
{
    const settings_t *settings = &producer->bench->settings;
    int len;

    if (stop)
        len = snprintf(producer->body, BODY_MAX,
                       "{\"task_type\":\"bench-longpoll-stop\",\"role\":\"%s\",\"priority\":0,"
                       "\"input_data\":{\"stop\":true}}",
                       settings->role);
    else
        len = snprintf(producer->body, BODY_MAX,
                       "{\"task_type\":\"bench-longpoll\",\"role\":\"%s\",\"priority\":5,"
                       "\"input_data\":{\"seq\":%" PRIu64 ",\"created_us\":%" PRId64 "}}",
                       settings->role, seq, bench_wall_us());
    if (len < 0 || len >= BODY_MAX)
        return -ENAMETOOLONG;
    producer->body_len = (size_t)len;
    return 0;
}

static client_t *free_producer(bench_t *bench)
{
    for (int i = 0; i < bench->settings.producers; i++) {
        if (!bench->producers[i].busy)
            return &bench->producers[i];
    }
    return NULL;
}

static uint64_t due_ns(const bench_t *bench, uint64_t seq)
{
    return bench->produce_from_ns + (uint64_t)((double)seq * 1e9 / bench->settings.rate);
}

/* Starts every create that is due and has a free connection. A create that finds none goes
 * out late, as soon as one frees; its stamp is taken when it goes, so lateness does not count
 * as latency, and the worst of it is reported. */
static void produce(bench_t *bench)
{
    uint64_t now = bench_now_ns();

    while (bench->phase == PHASE_PRODUCE && bench->next_seq < bench->planned &&
           now >= due_ns(bench, bench->next_seq)) {
        client_t *producer = free_producer(bench);

        if (producer == NULL)
            return;

        uint64_t behind_us = (now - due_ns(bench, bench->next_seq)) / 1000u;

        if (behind_us > bench->behind_max_us)
            bench->behind_max_us = behind_us;
        /* A create that cannot start is skipped, so that the run still reaches its end. */
        if (build_create(producer, bench->next_seq, 0) != 0 ||
            start_request(producer, REQ_CREATE) != 0)
            bench->failures[REQ_CREATE].transport++;
        bench->next_seq++;
    }
    /* One stop task per worker that can still claim one. */
    while (bench->phase == PHASE_STOP &&
           bench->stops_sent + bench->workers_failed < (uint64_t)bench->settings.workers) {
        client_t *producer = free_producer(bench);

        if (producer == NULL || build_create(producer, 0, 1) != 0 ||
            start_request(producer, REQ_CREATE) != 0)
            return;
        bench->stops_sent++;
    }
}

/* ---- answers ---- */

/* Copies the task id that follows `key` into `id` (TASK_ID_LEN + 1 bytes). Returns 0, or -1
 * when no id of the shape of a UUID follows. */
static int read_task_id(const char *response, const char *key, char *id)
{
    const char *at = bench_find_task_id(response, key);

    if (at == NULL)
        return -1;
    memcpy(id, at, TASK_ID_LEN);
    id[TASK_ID_LEN] = '\0';
    return 0;
}

/* Reads an integer field of the task's input_data. Returns 0 or -ENOENT. */
static int find_number(const char *response, const char *key, int64_t *out)
{
    const char *at = strstr(response, key);

    if (at == NULL)
        return -ENOENT;

    char *end = NULL;

    errno = 0;
    long long value = strtoll(at + strlen(key), &end, 10);

    if (errno != 0 || end == at + strlen(key))
        return -ENOENT;
    *out = value;
    return 0;
}

/* Records a measured task's delivery: its latency, and whether it arrived once. */
static void record_delivery(client_t *worker, int64_t received_us)
{
    bench_t *bench = worker->bench;
    int64_t seq = -1;
    int64_t created_us = 0;

    if (find_number(worker->response, "\"seq\":", &seq) != 0 ||
        find_number(worker->response, "\"created_us\":", &created_us) != 0 || seq < 0 ||
        (uint64_t)seq >= bench->planned) {
        bench->unreadable++;
        return;
    }
    if (bench->seen[seq]) {
        bench->duplicates++;
        return;
    }
    bench->seen[seq] = 1;
    bench->delivered++;
    if (worker->started_wall_us < created_us)
        bench->to_waiting++;
    samples_add(&bench->delivery,
                received_us > created_us ? (uint64_t)(received_us - created_us) : 0);
}

/* A poll was answered with 200: claim the task it brought, or poll again. Returns 0, or -1 if
 * the body was neither a task nor the empty answer. */
static int on_poll_answer(client_t *worker, uint64_t done_ns, int64_t done_wall_us)
{
    bench_t *bench = worker->bench;

    if (strstr(worker->response, "\"task\":null") != NULL) {
        bench->empty_polls++;
        samples_add(&bench->hold, (done_ns - worker->started_ns) / 1000u);
        start_poll(worker);
        return 0;
    }

    char id[TASK_ID_LEN + 1];

    if (read_task_id(worker->response, "\"id\":\"", id) != 0)
        return -1;
    if (strstr(worker->response, "\"stop\":true") != NULL)
        worker->stopping = 1;
    else
        record_delivery(worker, done_wall_us);

    int len = snprintf(worker->body, BODY_MAX,
                       "{\"task_id\":\"%s\",\"worker_id\":\"lpw-%d\",\"result\":{\"ok\":true}}", id,
                       worker->index);

    if (len < 0 || len >= BODY_MAX)
        return -1;
    worker->body_len = (size_t)len;
    if (start_request(worker, REQ_COMPLETE) != 0)
        fail_worker(worker);
    return 0;
}

static int on_complete_answer(client_t *worker)
{
    if (strstr(worker->response, "\"status\":\"completed\"") == NULL)
        return -1;
    if (worker->stopping) {
        worker->bench->workers_quit++;
        stop_worker(worker);
    } else {
        start_poll(worker);
    }
    return 0;
}

static int on_create_answer(client_t *producer)
{
    bench_t *bench = producer->bench;

    char id[TASK_ID_LEN + 1];

    if (read_task_id(producer->response, "\"task_id\":\"", id) != 0)
        return -1;
    /* Stop tasks are not measured: only the creates of the producing phase count. */
    if (strstr(producer->body, "\"created_us\":") != NULL) {
        bench->created++;
        samples_add(&bench->create, (bench_now_ns() - producer->started_ns) / 1000u);
    }
    return 0;
}

static void note_failure(bench_t *bench, client_t *client, CURLcode result, long status)
{
    failures_t *failures = &bench->failures[client->request];

    if (result != CURLE_OK)
        failures->transport++;
    else if (status < 200 || status > 299)
        failures->http++;
    else
        failures->body++;
    bench_note_first_failure(bench->first_error, sizeof(bench->first_error),
                             request_names[client->request], result, client->error, status,
                             client->response);
}

static void on_transfer_done(void *context, int multi_index, CURL *easy, CURLcode result)
{
    bench_t *bench = context;
    long status = 0;
    uint64_t done_ns = bench_now_ns();
    int64_t done_wall_us = bench_wall_us();
    client_t *client = bench_transfer_info(easy, &status);

    (void)multi_index;
    client->busy = 0;

    int rc = -1;

    if (result == CURLE_OK && status >= 200 && status <= 299) {
        if (client->request == REQ_POLL)
            rc = on_poll_answer(client, done_ns, done_wall_us);
        else if (client->request == REQ_COMPLETE)
            rc = on_complete_answer(client);
        else
            rc = on_create_answer(client);
    }
    if (rc == 0)
        return;
    note_failure(bench, client, result, status);
    /* A worker stops at its first failure rather than retry in a tight loop; the failure
     * count says the run is not to be trusted. */
    if (!client->is_producer)
        fail_worker(client);
}

/* ---- the run ---- */

/* Closes the connections of every worker still waiting: the end of an idle run, or of a
 * latency run whose workers did not all claim a stop task in time. */
static void cut_workers(bench_t *bench)
{
    for (int i = 0; i < bench->settings.workers; i++) {
        client_t *worker = &bench->workers[i];

        if (!worker->busy)
            continue;
        bench_loop_remove(&bench->loop, 0, worker->easy);
        worker->busy = 0;
        bench->workers_cut++;
        stop_worker(worker);
    }
}

/* Moves a latency run on when its current phase is over. */
static void advance_phase(bench_t *bench)
{
    uint64_t now = bench_now_ns();
    int creating = 0;

    for (int i = 0; i < bench->settings.producers; i++)
        creating |= bench->producers[i].busy;
    if (bench->phase == PHASE_PRODUCE && bench->next_seq == bench->planned && !creating) {
        bench->phase = PHASE_DRAIN;
        bench->phase_deadline_ns = now + seconds_to_ns(bench->settings.drain_s);
    }
    if (bench->phase == PHASE_DRAIN &&
        (bench->delivered >= bench->created || now >= bench->phase_deadline_ns)) {
        bench->phase = PHASE_STOP;
        bench->phase_deadline_ns = now + STOP_GRACE_NS;
    }
    if (bench->phase == PHASE_STOP &&
        (bench->workers_stopped == (uint64_t)bench->settings.workers ||
         now >= bench->phase_deadline_ns)) {
        cut_workers(bench);
        bench->phase = PHASE_DONE;
    }
}

/* The time of the next thing that is due: libcurl's timer, the next create, a deadline. */
static uint64_t next_due_ns(const bench_t *bench)
{
    uint64_t due = bench_loop_next_timer_ns(&bench->loop);

    if (bench->phase == PHASE_PRODUCE && bench->next_seq < bench->planned &&
        due_ns(bench, bench->next_seq) < due)
        due = due_ns(bench, bench->next_seq);
    if (bench->phase != PHASE_PRODUCE && bench->phase_deadline_ns < due)
        due = bench->phase_deadline_ns;
    return due;
}

static int run(bench_t *bench)
{
    const settings_t *settings = &bench->settings;

    bench->start_ns = bench_now_ns();
    bench->produce_from_ns = bench->start_ns + seconds_to_ns(settings->settle_s);
    if (settings->mode == MODE_IDLE) {
        bench->phase_deadline_ns = bench->start_ns + seconds_to_ns(settings->duration_s);
        bench->phase = PHASE_IDLE;
    }
    for (int i = 0; i < settings->workers; i++)
        start_poll(&bench->workers[i]);

    while (bench->phase != PHASE_DONE) {
        int rc = bench_loop_run_once(&bench->loop, bench_wait_ms(next_due_ns(bench)));

        if (rc != 0)
            return rc;
        if (settings->mode == MODE_IDLE) {
            if (bench_now_ns() >= bench->phase_deadline_ns || bench->loop.in_flight == 0) {
                cut_workers(bench);
                bench->phase = PHASE_DONE;
            }
            continue;
        }
        produce(bench);
        advance_phase(bench);
        produce(bench);
    }
    return 0;
}

/* ---- set-up ---- */

/* Sets up a worker or, with `is_producer`, a producer whose easy handle bench_clients_init has
 * made. */
static int on_setup_client(void *context, void *item, int index, int is_producer)
{
    bench_t *bench = context;
    client_t *client = item;
    const settings_t *settings = &bench->settings;

    client->bench = bench;
    client->index = index;
    client->is_producer = is_producer;
    if (!is_producer) {
        int len = snprintf(client->url, URL_MAX, "%s/poll/next?worker_id=lpw-%d&roles=%s&wait=%d",
                           settings->url, index, settings->role, settings->wait_s);

        if (len < 0 || len >= URL_MAX)
            return -ENAMETOOLONG;
    }

    CURL *easy = client->easy;

    client->answer = (bench_buffer_t){.data = client->response, .size = RESPONSE_MAX};
    bench_easy_init(easy, client, &client->answer, client->error,
                    settings->wait_s * 1000L + REQUEST_SLACK_MS, CURL_HTTP_VERSION_1_1);
    return 0;
}

static int bench_setup(bench_t *bench)
{
    const settings_t *settings = &bench->settings;
    int a = snprintf(bench->tasks_url, URL_MAX, "%s/tasks", settings->url);
    int b = snprintf(bench->complete_url, URL_MAX, "%s/poll/complete", settings->url);

    if (a < 0 || b < 0 || a >= URL_MAX || b >= URL_MAX)
        return -ENAMETOOLONG;

    int rc = bench_loop_init(&bench->loop, 1, on_transfer_done, bench, "bench_longpoll");

    if (rc != 0)
        return rc;
    bench->json_headers = curl_slist_append(NULL, "Content-Type: application/json");
    bench->workers = calloc((size_t)settings->workers, sizeof(*bench->workers));
    bench->producers = calloc((size_t)settings->producers, sizeof(*bench->producers));
    if (settings->mode == MODE_LATENCY)
        bench->planned = (uint64_t)llround(settings->rate * settings->duration_s);
    bench->seen = calloc((size_t)bench->planned + 1, 1);
    if (bench->json_headers == NULL || bench->workers == NULL || bench->producers == NULL ||
        bench->seen == NULL)
        return -ENOMEM;
    return bench_crew_init(&bench->loop, bench->workers, settings->workers, bench->producers,
                           settings->producers, sizeof(client_t), offsetof(client_t, easy),
                           on_setup_client, bench);
}

static void bench_teardown(bench_t *bench)
{
    bench_clients_free(bench->workers, bench->settings.workers, sizeof(client_t),
                       offsetof(client_t, easy));
    bench_clients_free(bench->producers, bench->settings.producers, sizeof(client_t),
                       offsetof(client_t, easy));
    bench_loop_free(&bench->loop);
    curl_slist_free_all(bench->json_headers);
    free(bench->seen);
    free(bench->delivery.values);
    free(bench->create.values);
    free(bench->hold.values);
}

/* ---- report ---- */

static uint64_t failure_total(const bench_t *bench)
{
    uint64_t total = 0;

    for (int i = 0; i < REQ_COUNT; i++)
        total += bench->failures[i].http + bench->failures[i].transport + bench->failures[i].body;
    return total;
}

static void print_failures(const bench_t *bench)
{
    printf("failures:");
    for (int i = 0; i < REQ_COUNT; i++) {
        const failures_t *f = &bench->failures[i];

        printf(" %s http %" PRIu64 " transport %" PRIu64 " body %" PRIu64 "%s", request_names[i],
               f->http, f->transport, f->body, i + 1 < REQ_COUNT ? ";" : "\n");
    }
    if (bench->first_error[0] != '\0')
        printf("first failure: %s\n", bench->first_error);
}

static void print_samples_ms(const char *name, samples_t *samples)
{
    printf("%-34s %7zu %9.2f %9.2f %9.2f %9.2f %9.2f\n", name, samples->count,
           samples_percentile(samples, 50.0) / 1e3, samples_percentile(samples, 90.0) / 1e3,
           samples_percentile(samples, 99.0) / 1e3, samples_percentile(samples, 100.0) / 1e3,
           samples_mean(samples) / 1e3);
}

/*
 * The latency a worker would see from polling every `interval` seconds with no wait, for a
 * task created at a moment uniformly spread over the interval: the time to the next poll.
 * One idle worker: uniform on [0, interval], so the quantile q is q * interval. `workers` idle
 * workers polling at independent random phases: the first of them, whose quantile q is
 * interval * (1 - (1 - q)^(1/workers)) and whose mean is interval / (workers + 1). Both leave
 * out the request's own time, which only adds.
 */
static void print_short_poll_latency(const settings_t *settings)
{
    static const double quantiles[] = {0.5, 0.9, 0.99, 1.0};

    printf("short polling instead (analytic, not measured; a poll every T s, no wait), ms:\n");
    for (int i = 0; i < settings->compare_count; i++) {
        double interval_ms = settings->compare_s[i] * 1e3;
        char name[64];

        snprintf(name, sizeof(name), "  T=%d s, one idle worker", settings->compare_s[i]);
        printf("%-34s %7s", name, "-");
        for (size_t q = 0; q < sizeof(quantiles) / sizeof(quantiles[0]); q++)
            printf(" %9.2f", quantiles[q] * interval_ms);
        printf(" %9.2f\n", interval_ms / 2.0);

        snprintf(name, sizeof(name), "  T=%d s, %d idle workers", settings->compare_s[i],
                 settings->workers);
        printf("%-34s %7s", name, "-");
        for (size_t q = 0; q < sizeof(quantiles) / sizeof(quantiles[0]); q++)
            printf(" %9.2f",
                   interval_ms * (1.0 - pow(1.0 - quantiles[q], 1.0 / settings->workers)));
        printf(" %9.2f\n", interval_ms / (settings->workers + 1));
    }
}

static void print_latency_report(bench_t *bench)
{
    const settings_t *settings = &bench->settings;

    printf("mode latency: %d workers (HTTP/1.1 keep-alive, wait=%d), %.1f tasks/s for %.1f s "
           "over %d producer connections; %" PRIu64 " connections opened\n",
           settings->workers, settings->wait_s, settings->rate, settings->duration_s,
           settings->producers, bench->loop.connections);
    printf("tasks: planned %" PRIu64 ", created %" PRIu64 ", delivered %" PRIu64
           ", missing %" PRIu64 ", duplicates %" PRIu64 ", unreadable %" PRIu64 "; %" PRIu64
           " went to a poll sent before the task's create\n",
           bench->planned, bench->created, bench->delivered,
           bench->created > bench->delivered ? bench->created - bench->delivered : 0,
           bench->duplicates, bench->unreadable, bench->to_waiting);
    printf("producer: at most %.2f ms behind schedule; workers: %" PRIu64 " quit on a stop task, "
           "%" PRIu64 " failed, %" PRIu64 " cut with a request in flight; %" PRIu64
           " empty polls\n",
           bench->behind_max_us / 1e3, bench->workers_quit, bench->workers_failed,
           bench->workers_cut, bench->empty_polls);
    printf("%-34s %7s %9s %9s %9s %9s %9s\n", "ms", "count", "p50", "p90", "p99", "max", "mean");
    print_samples_ms("delivery (create sent -> received)", &bench->delivery);
    print_samples_ms("POST /tasks round trip, same tasks", &bench->create);
    print_short_poll_latency(settings);
    print_failures(bench);
    printf("RESULT mode=latency workers=%d rate=%.1f seconds=%.1f planned=%" PRIu64
           " created=%" PRIu64 " delivered=%" PRIu64 " duplicates=%" PRIu64 " failures=%" PRIu64
           " p50_us=%" PRIu64 " p90_us=%" PRIu64 " p99_us=%" PRIu64 " max_us=%" PRIu64
           " create_p50_us=%" PRIu64 " create_p99_us=%" PRIu64 "\n",
           settings->workers, settings->rate, settings->duration_s, bench->planned, bench->created,
           bench->delivered, bench->duplicates, failure_total(bench),
           samples_percentile(&bench->delivery, 50.0), samples_percentile(&bench->delivery, 90.0),
           samples_percentile(&bench->delivery, 99.0), samples_percentile(&bench->delivery, 100.0),
           samples_percentile(&bench->create, 50.0), samples_percentile(&bench->create, 99.0));
}

/*
 * Requests per idle worker per hour, from each worker's polls: the span from its first poll to
 * its last, divided by the polls in between, is its cycle (the server's hold plus the client's
 * turn-around). Counting polls in the run alone would overstate the rate, since the last poll
 * of each worker is cut short by the end of the run.
 */
static double idle_requests_per_hour(const bench_t *bench, uint64_t *min, uint64_t *max)
{
    double cycles_s = 0.0;
    int measured = 0;

    *min = UINT64_MAX;
    *max = 0;
    for (int i = 0; i < bench->settings.workers; i++) {
        const client_t *worker = &bench->workers[i];

        if (worker->polls < *min)
            *min = worker->polls;
        if (worker->polls > *max)
            *max = worker->polls;
        if (worker->polls < 2)
            continue;
        cycles_s += (double)(worker->last_poll_ns - worker->first_poll_ns) / 1e9 /
                    (double)(worker->polls - 1);
        measured++;
    }
    return measured != 0 && cycles_s > 0.0 ? 3600.0 / (cycles_s / measured) : 0.0;
}

static void print_idle_report(bench_t *bench)
{
    const settings_t *settings = &bench->settings;
    uint64_t min = 0;
    uint64_t max = 0;
    double per_hour = idle_requests_per_hour(bench, &min, &max);

    printf("mode idle: %d workers (HTTP/1.1 keep-alive, wait=%d) on an empty queue for %.1f s; "
           "%" PRIu64 " connections opened\n",
           settings->workers, settings->wait_s, settings->duration_s, bench->loop.connections);
    printf("requests: %" PRIu64 " in all, %" PRIu64 " to %" PRIu64 " per worker; %" PRIu64
           " answered \"No tasks available\", %" PRIu64 " cut at the end, %" PRIu64
           " brought a task (none should)\n",
           bench->requests, min, max, bench->empty_polls, bench->workers_cut,
           bench->delivered + bench->unreadable + bench->workers_quit);
    printf("%-34s %7s %9s %9s %9s %9s %9s\n", "ms", "count", "p50", "p90", "p99", "max", "mean");
    print_samples_ms("server hold per empty poll", &bench->hold);
    printf("requests per idle worker per hour: %.1f (measured cycle, extrapolated)\n", per_hour);
    printf("short polling instead (assumed client behaviour, not measured):");
    for (int i = 0; i < settings->compare_count; i++)
        printf("%s a poll every %d s = %.0f/h", i > 0 ? ";" : "", settings->compare_s[i],
               3600.0 / settings->compare_s[i]);
    printf("\n");
    print_failures(bench);
    printf("RESULT mode=idle workers=%d wait=%d seconds=%.1f requests=%" PRIu64
           " per_worker_min=%" PRIu64 " per_worker_max=%" PRIu64 " empty=%" PRIu64 " cut=%" PRIu64
           " per_hour=%.1f hold_min_us=%" PRIu64 " hold_p50_us=%" PRIu64 " hold_max_us=%" PRIu64
           " failures=%" PRIu64 "\n",
           settings->workers, settings->wait_s, settings->duration_s, bench->requests, min, max,
           bench->empty_polls, bench->workers_cut, per_hour, samples_percentile(&bench->hold, 0.0),
           samples_percentile(&bench->hold, 50.0), samples_percentile(&bench->hold, 100.0),
           failure_total(bench));
}

/* ---- options ---- */

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: bench_longpoll [options]\n"
            "  --url URL         server base URL [http://127.0.0.1:5000]\n"
            "  --mode M          latency (a producer creates tasks, waiting workers claim them)\n"
            "                    or idle (workers long-poll an empty queue) [latency]\n"
            "  --workers N       long-polling workers, one connection each [50]\n"
            "  --rate R          latency: tasks created per second, 0.1 to 10000 [20]\n"
            "  --duration S      latency: seconds of creating; idle: seconds of polling [20]\n"
            "  --producers N     latency: producer connections [8]\n"
            "  --settle S        latency: seconds the workers poll before the first task [1]\n"
            "  --drain S         latency: longest wait for deliveries after the last create [10]\n"
            "  --wait S          the polls' wait, 1 to 30 [30]\n"
            "  --role NAME       the role created and polled [lp-PID]\n"
            "  --compare LIST    short-poll intervals in seconds to set beside the figures [30,5]\n"
            "  --max-requests N  stop starting requests after N in all [1000000]\n");
}

/* Reads a comma-separated list of whole seconds, 1 to 3600. */
static int parse_compare(void *context, const char *text)
{
    settings_t *settings = context;
    char item[16];

    settings->compare_count = 0;
    while (*text != '\0') {
        size_t len = strcspn(text, ",");
        double value = 0;

        if (len == 0 || len >= sizeof(item) || settings->compare_count == COMPARE_MAX)
            return -EINVAL;
        memcpy(item, text, len);
        item[len] = '\0';
        if (bench_parse_number(item, 1, 3600, 1, &value) != 0)
            return -EINVAL;
        settings->compare_s[settings->compare_count++] = (int)value;
        text += len;
        if (*text == ',')
            text++;
    }
    return settings->compare_count > 0 ? 0 : -EINVAL;
}

/* A role goes into a URL and a JSON string unescaped, so only plain characters are taken. */
static int parse_role(void *context, const char *text)
{
    char *role = ((settings_t *)context)->role;
    static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789-_.";
    size_t len = strlen(text);

    if (len == 0 || len >= ROLE_MAX || strspn(text, allowed) != len)
        return -EINVAL;
    memcpy(role, text, len + 1);
    return 0;
}

/* --mode: latency or idle. */
static int parse_mode(void *context, const char *arg)
{
    settings_t *settings = context;

    if (strcmp(arg, "idle") != 0 && strcmp(arg, "latency") != 0)
        return -EINVAL;
    settings->mode = strcmp(arg, "idle") == 0 ? MODE_IDLE : MODE_LATENCY;
    return 0;
}

static const bench_option_t options[] = {
    {"url", BENCH_ARG_TEXT, 0, 0, offsetof(settings_t, url), NULL},
    {"mode", BENCH_ARG_CUSTOM, 0, 0, 0, parse_mode},
    {"workers", BENCH_ARG_INT, 1, 10000, offsetof(settings_t, workers), NULL},
    {"rate", BENCH_ARG_REAL, 0.1, 10000, offsetof(settings_t, rate), NULL},
    {"duration", BENCH_ARG_REAL, 0.1, 3600, offsetof(settings_t, duration_s), NULL},
    {"producers", BENCH_ARG_INT, 1, 1000, offsetof(settings_t, producers), NULL},
    {"settle", BENCH_ARG_REAL, 0, 60, offsetof(settings_t, settle_s), NULL},
    {"drain", BENCH_ARG_REAL, 0, 600, offsetof(settings_t, drain_s), NULL},
    {"wait", BENCH_ARG_INT, 1, 30, offsetof(settings_t, wait_s), NULL},
    {"role", BENCH_ARG_CUSTOM, 0, 0, 0, parse_role},
    {"compare", BENCH_ARG_CUSTOM, 0, 0, 0, parse_compare},
    {"max-requests", BENCH_ARG_COUNT, 1, 1e12, offsetof(settings_t, max_requests), NULL},
};

static const bench_program_t program = {
    .name = "bench_longpoll",
    .options = options,
    .option_count = sizeof(options) / sizeof(options[0]),
    .print_usage = print_usage,
};

/* A run is good when nothing failed and it measured something: deliveries, or for an idle
 * run empty answers and no task at all. */
static int run_succeeded(const bench_t *bench)
{
    if (failure_total(bench) != 0)
        return 0;
    if (bench->settings.mode == MODE_LATENCY)
        return bench->delivered > 0;
    return bench->empty_polls > 0 && bench->unreadable == 0 && bench->workers_quit == 0;
}

int main(int argc, char **argv)
{
    static bench_t bench = {
        .settings = {.url = "http://127.0.0.1:5000",
                     .mode = MODE_LATENCY,
                     .workers = 50,
                     .producers = 8,
                     .rate = 20.0,
                     .duration_s = 20.0,
                     .settle_s = 1.0,
                     .drain_s = 10.0,
                     .wait_s = 30,
                     .max_requests = 1000000,
                     .compare_s = {30, 5},
                     .compare_count = 2},
        .loop = {.epoll_fd = -1},
    };
    int status = 1;

    if (bench_start(&program, argc, argv, &bench.settings, &status) != 0)
        return status;
    if (bench.settings.role[0] == '\0')
        snprintf(bench.settings.role, ROLE_MAX, "lp-%ld", (long)getpid());

    int rc = bench_setup(&bench);

    if (rc == 0)
        rc = run(&bench);
    if (rc != 0) {
        fprintf(stderr, "bench_longpoll: %s\n", strerror(-rc));
        goto Exit;
    }
    if (bench.settings.mode == MODE_IDLE)
        print_idle_report(&bench);
    else
        print_latency_report(&bench);
    status = run_succeeded(&bench) ? 0 : 1;
Exit:
    bench_teardown(&bench);
    curl_global_cleanup();
    return status;
}
