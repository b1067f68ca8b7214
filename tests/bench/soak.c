/*
 * bench_soak: a bounded soak of a running server, to see whether anything grows with the work
 * it does rather than with the data it keeps.
 *
 * Two kinds of client share one process:
 *
 * - a busy frontend: P clients, one request at a time each, create tasks in four roles at a
 *   steady rate (--rate, spread over the clients; 0 lets every client go as fast as it can),
 *   and mix in reads: GET /tasks/{id} of the task just created after every fourth create, and
 *   a GET /tasks listing of one role after every twentieth;
 * - W workers, one request at a time each: each registers, then long-polls GET /poll/next for
 *   two of the roles with a wait of 5 to 10 s, completes every task it gets, and sends a
 *   heartbeat between two polls once 5 s have passed since the last one. A worker parked in a 10 s
 * poll therefore heartbeats up to about 10 s apart, far inside worker_ttl_s.
 *
 * Every 10 s it prints one line: tasks created and completed in the interval, the latency of
 * POST /tasks and of POST /poll/complete, the pending depth and the upload backlog
 * (dirty_records) from GET /stats, the server's resident memory and the journal's size. The
 * memory comes from /proc/PID/status when --pid names the server (VmRSS and RssAnon: LMDB's
 * map is file-backed, so the pages of the journal it touches count in VmRSS but not in
 * RssAnon, which is where a leak would show), else from GET /metrics
 * (process_resident_memory_bytes, which is VmRSS alone). The journal's size is that of
 * DATA_DIR/data.mdb when --data-dir is given.
 *
 * At the deadline the frontend stops; the workers go on until their poll comes back empty or
 * 15 s have passed, so that the queue drains, and then a summary is printed.
 *
 * All clients speak HTTP/1.1 keep-alive. libcurl 7.88.x, the Debian version, cannot reuse a
 * prior-knowledge HTTP/2 connection (see lifecycle.c), and the upgrade way round that is not
 * worth its complexity here: the soak is about the server's memory over time, not about the
 * protocol, which bench_lifecycle measures. The clients share libcurl's pool of connections
 * under one multi handle, which hands an idle connection to whichever request comes next and
 * opens another when none is idle, so there are about W + P connections, not one per client for
 * good: the summary's "connections opened" beyond W + P is that pool's turnover.
 *
 * The generator runs on the glue in bench_curl.h: one multi handle and one epoll loop in one
 * thread. The /stats, /metrics and memory samples are taken in that thread between events,
 * which stalls the clients for the millisecond or so they take, once per interval.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <curl/curl.h>

#include "bench_curl.h"

#define URL_MAX 512
#define BODY_MAX 256
#define RESPONSE_MAX 4096
#define WORKER_ID_MAX 32
#define ROLE_COUNT 4
#define INTERVAL_NS (10ull * 1000000000u)
#define HEARTBEAT_NS (5ull * 1000000000u)
#define DRAIN_NS (15ull * 1000000000u)
#define RETRY_NS 1000000000ull
#define WAIT_MIN_S 5
#define WAIT_SPAN_S 6
/* A poll may take this much longer than its wait before it counts as lost. */
#define REQUEST_SLACK_MS 15000L
#define REQUEST_TIMEOUT_MS 30000L
/* How often idle clients are looked at for a create that is due or a retry. */
#define TICK_NS 2000000ull
#define MIB (1024.0 * 1024.0)

static const char *const role_names[ROLE_COUNT] = {"soak-a", "soak-b", "soak-c", "soak-d"};

enum request {
    REQ_CREATE,
    REQ_GET,
    REQ_LIST,
    REQ_REGISTER,
    REQ_HEARTBEAT,
    REQ_POLL,
    REQ_COMPLETE,
    REQ_COUNT
};

static const char *const request_names[REQ_COUNT] = {
    "POST /tasks",          "GET /tasks/{id}", "GET /tasks?role=",    "POST /poll/register",
    "POST /poll/heartbeat", "GET /poll/next",  "POST /poll/complete",
};

typedef struct settings {
    const char *url;
    const char *data_dir;
    double seconds;
    double rate; /* creates per second over all producers; 0 for no limit */
    int workers;
    int producers;
    int pid;
} settings_t;

typedef struct bench bench_t;

typedef struct client {
    CURL *easy;
    bench_t *bench;
    int index;
    int is_producer;
    int busy;
    int stopped;
    int registered; /* a worker whose registration was answered */
    enum request request;
    uint64_t started_ns;
    uint64_t resume_ns;    /* an idle client starts nothing before this (a retry's pause) */
    uint64_t heartbeat_ns; /* a worker's last heartbeat or registration */
    uint64_t polls;
    uint64_t creates; /* a producer's creates acknowledged */
    int get_owed;     /* a producer reads the task it just created next */
    int list_owed;    /* a producer lists a role next */
    bench_buffer_t answer;
    size_t body_len;
    char worker_id[WORKER_ID_MAX];
    char task_id[BENCH_TASK_ID_LEN + 1];
    char url[URL_MAX];
    char body[BODY_MAX];
    char response[RESPONSE_MAX];
    char error[CURL_ERROR_SIZE];
} client_t;

/* What the server looked like at one moment. Values unknown are negative. */
typedef struct sample {
    double elapsed_s;
    uint64_t completed; /* tasks completed by then */
    long long pending;
    long long backlog; /* changes not yet uploaded (dirty_records), -1 when unknown */
    long long vm_rss_kb;
    long long rss_anon_kb;
    long long rss_file_kb;
    long long journal_bytes;
} sample_t;

/* Counters kept for the interval and for the whole run. */
typedef struct tally {
    uint64_t done[REQ_COUNT];   /* answered as expected */
    uint64_t failed[REQ_COUNT]; /* transport error, status outside 2xx or an unexpected body */
    uint64_t empty_polls;
    bench_histogram_t latency[REQ_COUNT];
    bench_histogram_t task_age; /* create sent to completion acknowledged, all in this process */
} tally_t;

struct bench {
    settings_t settings;
    bench_loop_t loop;
    client_t *workers;
    client_t *producers;
    CURL *probe; /* the blocking handle for /stats and /metrics */
    struct curl_slist *json_headers;
    char tasks_url[URL_MAX];
    char register_url[URL_MAX];
    char heartbeat_url[URL_MAX];
    char complete_url[URL_MAX];
    uint64_t start_ns;
    uint64_t stop_ns;  /* the end of the frontend's creating */
    uint64_t drain_ns; /* the end of the workers' draining */
    uint64_t next_interval_ns;
    uint64_t interval_began_ns;
    uint64_t next_tick_ns;
    uint64_t next_create;    /* the create the rate's schedule is at */
    uint64_t stop_completed; /* tasks completed when the frontend stopped */
    int draining;
    int workers_stopped;
    tally_t interval;
    tally_t total;
    sample_t first; /* before the load */
    sample_t warm;  /* at the end of the first interval */
    sample_t middle;
    sample_t last;
    sample_t *samples;
    int sample_count;
    int sample_capacity;
    char first_error[CURL_ERROR_SIZE + 128];
};

/* ---- the server's side: /stats, /metrics, /proc, the journal file ---- */

typedef struct probe_answer {
    char text[1 << 16];
    size_t len;
} probe_answer_t;

static size_t on_probe_data(char *data, size_t size, size_t count, void *userp)
{
    probe_answer_t *answer = userp;
    size_t len = size * count;
    size_t room = sizeof(answer->text) - 1 - answer->len;
    size_t take = len < room ? len : room;

    memcpy(answer->text + answer->len, data, take);
    answer->len += take;
    return len;
}

/* GETs `path` with the blocking probe handle. Returns 0, or -EIO when no 2xx answer came. */
static int probe_get(bench_t *bench, const char *path, probe_answer_t *answer)
{
    char url[URL_MAX];
    long status = 0;

    snprintf(url, sizeof(url), "%s%s", bench->settings.url, path);
    answer->len = 0;
    curl_easy_setopt(bench->probe, CURLOPT_URL, url);
    curl_easy_setopt(bench->probe, CURLOPT_WRITEFUNCTION, on_probe_data);
    curl_easy_setopt(bench->probe, CURLOPT_WRITEDATA, answer);
    curl_easy_setopt(bench->probe, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(bench->probe, CURLOPT_NOSIGNAL, 1L);

    CURLcode result = curl_easy_perform(bench->probe);

    answer->text[answer->len] = '\0';
    curl_easy_getinfo(bench->probe, CURLINFO_RESPONSE_CODE, &status);
    return result == CURLE_OK && status >= 200 && status <= 299 ? 0 : -EIO;
}

/* Reads the number that follows `key` in `text`, or -1 when there is none. */
static long long number_after(const char *text, const char *key)
{
    const char *at = strstr(text, key);

    if (at == NULL)
        return -1;

    char *end = NULL;
    double value = strtod(at + strlen(key), &end);

    return end == at + strlen(key) ? -1 : (long long)value;
}

/* Reads VmRSS, RssAnon and RssFile (kB) of the server from /proc/PID/status. */
static int read_proc_memory(long pid, sample_t *sample)
{
    char path[64];
    char text[4096];

    snprintf(path, sizeof(path), "/proc/%ld/status", pid);

    FILE *file = fopen(path, "r");

    if (file == NULL)
        return -errno;

    size_t len = fread(text, 1, sizeof(text) - 1, file);

    fclose(file);
    text[len] = '\0';
    sample->vm_rss_kb = number_after(text, "\nVmRSS:");
    sample->rss_anon_kb = number_after(text, "\nRssAnon:");
    sample->rss_file_kb = number_after(text, "\nRssFile:");
    return 0;
}

static void take_sample(bench_t *bench, sample_t *sample)
{
    static probe_answer_t answer;
    const settings_t *settings = &bench->settings;

    *sample = (sample_t){.elapsed_s = (double)(bench_now_ns() - bench->start_ns) / 1e9,
                         .completed = bench->total.done[REQ_COMPLETE],
                         .pending = -1,
                         .backlog = -1,
                         .vm_rss_kb = -1,
                         .rss_anon_kb = -1,
                         .rss_file_kb = -1,
                         .journal_bytes = -1};
    if (probe_get(bench, "/stats", &answer) == 0) {
        sample->pending = number_after(answer.text, "\"pending_tasks\":");
        sample->backlog = number_after(answer.text, "\"dirty_records\":");
    }
    if (settings->pid <= 0 || read_proc_memory((long)settings->pid, sample) != 0) {
        if (probe_get(bench, "/metrics", &answer) == 0) {
            long long bytes = number_after(answer.text, "\nprocess_resident_memory_bytes ");

            sample->vm_rss_kb = bytes >= 0 ? bytes / 1024 : -1;
        }
    }
    if (settings->data_dir != NULL) {
        char path[URL_MAX];
        struct stat st;

        snprintf(path, sizeof(path), "%s/data.mdb", settings->data_dir);
        if (stat(path, &st) == 0)
            sample->journal_bytes = (long long)st.st_size;
    }
}

/* Keeps every interval's sample, so that the middle one can be found at the end. */
static void keep_sample(bench_t *bench, const sample_t *sample)
{
    if (bench->sample_count == bench->sample_capacity) {
        int capacity = bench->sample_capacity != 0 ? bench->sample_capacity * 2 : 64;
        sample_t *grown = realloc(bench->samples, (size_t)capacity * sizeof(*grown));

        if (grown == NULL)
            return;
        bench->samples = grown;
        bench->sample_capacity = capacity;
    }
    bench->samples[bench->sample_count++] = *sample;
}

/* ---- requests ---- */

static int start_request(client_t *client, enum request request)
{
    bench_t *bench = client->bench;

    if (request == REQ_GET || request == REQ_LIST || request == REQ_POLL) {
        bench_set_get(client->easy, client->url);
    } else {
        const char *url = request == REQ_CREATE      ? bench->tasks_url
                          : request == REQ_REGISTER  ? bench->register_url
                          : request == REQ_HEARTBEAT ? bench->heartbeat_url
                                                     : bench->complete_url;

        bench_set_post(client->easy, url, client->body, client->body_len, bench->json_headers);
    }
    client->request = request;
    bench_buffer_reset(&client->answer);
    client->error[0] = '\0';
    client->started_ns = bench_now_ns();
    if (bench_loop_add(&bench->loop, 0, client->easy) != 0)
        return -EIO;
    client->busy = 1;
    return 0;
}

/* Writes `format` into the client's body. Returns 0 or -ENAMETOOLONG. */
static int set_body(client_t *client, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static int set_body(client_t *client, const char *format, ...)
{
    va_list args;

    va_start(args, format);

    int len = vsnprintf(client->body, BODY_MAX, format, args);

    va_end(args);
    if (len < 0 || len >= BODY_MAX)
        return -ENAMETOOLONG;
    client->body_len = (size_t)len;
    return 0;
}

static int set_url(client_t *client, const char *format, ...) __attribute__((format(printf, 2, 3)));

static int set_url(client_t *client, const char *format, ...)
{
    va_list args;

    va_start(args, format);

    int len = vsnprintf(client->url, URL_MAX, format, args);

    va_end(args);
    return len < 0 || len >= URL_MAX ? -ENAMETOOLONG : 0;
}

/* Whether the rate's schedule has a create due now; it has always one without a rate. */
static int create_due(const bench_t *bench, uint64_t now)
{
    double rate = bench->settings.rate;

    if (rate <= 0.0)
        return 1;
    return now >= bench->start_ns + (uint64_t)((double)bench->next_create * 1e9 / rate);
}

/* A producer's next request: an owed read first, then a create if one is due. */
static int start_producer(client_t *producer, uint64_t now)
{
    bench_t *bench = producer->bench;
    const char *url = bench->settings.url;
    int rc = 0;

    if (producer->get_owed) {
        producer->get_owed = 0;
        rc = set_url(producer, "%s/tasks/%s", url, producer->task_id);
        return rc != 0 ? rc : start_request(producer, REQ_GET);
    }
    if (producer->list_owed) {
        producer->list_owed = 0;
        rc = set_url(producer, "%s/tasks?role=%s&limit=20", url,
                     role_names[producer->creates % ROLE_COUNT]);
        return rc != 0 ? rc : start_request(producer, REQ_LIST);
    }
    if (!create_due(bench, now))
        return 0;

    uint64_t seq = bench->next_create++;

    rc = set_body(producer,
                  "{\"task_type\":\"soak\",\"role\":\"%s\",\"project_id\":\"soak\","
                  "\"input_data\":{\"seq\":%" PRIu64 ",\"created_us\":%" PRId64 "}}",
                  role_names[seq % ROLE_COUNT], seq, bench_wall_us());
    return rc != 0 ? rc : start_request(producer, REQ_CREATE);
}

/* A worker's next request: its registration first, a heartbeat when one is due, else a poll of
 * its two roles. */
static int start_worker(client_t *worker, uint64_t now)
{
    bench_t *bench = worker->bench;
    const char *first_role = role_names[worker->index % ROLE_COUNT];
    const char *second_role = role_names[(worker->index + 1) % ROLE_COUNT];

    if (bench->draining && now >= bench->drain_ns)
        return -ECANCELED;
    if (!worker->registered) {
        int rc = set_body(worker, "{\"worker_id\":\"%s\",\"capabilities\":[\"%s\",\"%s\"]}",
                          worker->worker_id, first_role, second_role);

        return rc != 0 ? rc : start_request(worker, REQ_REGISTER);
    }
    if (now - worker->heartbeat_ns >= HEARTBEAT_NS) {
        int rc = set_body(worker, "{\"worker_id\":\"%s\"}", worker->worker_id);

        return rc != 0 ? rc : start_request(worker, REQ_HEARTBEAT);
    }

    int wait = WAIT_MIN_S + (int)((worker->polls + (uint64_t)worker->index) % WAIT_SPAN_S);
    int rc = set_url(worker, "%s/poll/next?worker_id=%s&roles=%s,%s&wait=%d", bench->settings.url,
                     worker->worker_id, first_role, second_role, wait);

    worker->polls++;
    return rc != 0 ? rc : start_request(worker, REQ_POLL);
}

static void stop_client(client_t *client)
{
    if (client->stopped)
        return;
    client->stopped = 1;
    if (!client->is_producer)
        client->bench->workers_stopped++;
}

/* Starts an idle client's next request if it has one now. */
static void kick_client(client_t *client, uint64_t now)
{
    bench_t *bench = client->bench;

    if (client->busy || client->stopped || now < client->resume_ns)
        return;
    if (client->is_producer && now >= bench->stop_ns) {
        stop_client(client);
        return;
    }

    int rc = client->is_producer ? start_producer(client, now) : start_worker(client, now);

    if (rc == -ECANCELED)
        stop_client(client);
    else if (rc != 0)
        client->resume_ns = now + RETRY_NS;
}

static void kick_all(bench_t *bench, uint64_t now)
{
    for (int i = 0; i < bench->settings.producers; i++)
        kick_client(&bench->producers[i], now);
    for (int i = 0; i < bench->settings.workers; i++)
        kick_client(&bench->workers[i], now);
}

/* ---- answers ---- */

/* Reads a poll's answer: an empty one, or a task to complete. Returns 0 or -1. */
static int on_poll_answer(client_t *worker)
{
    bench_t *bench = worker->bench;

    if (strstr(worker->response, "\"task\":null") != NULL) {
        bench->interval.empty_polls++;
        bench->total.empty_polls++;
        /* Draining: this worker's roles are empty, so it is done. */
        if (bench->draining)
            stop_client(worker);
        return 0;
    }

    const char *id = bench_find_task_id(worker->response, "\"id\":\"");

    if (id == NULL)
        return -1;
    memcpy(worker->task_id, id, BENCH_TASK_ID_LEN);
    worker->task_id[BENCH_TASK_ID_LEN] = '\0';

    /* The completion's answer does not repeat the task, so the task's creation time travels in
     * the completion's own body (as its result), where it is at hand when that answer comes. */
    long long created_us = number_after(worker->response, "\"created_us\":");
    int rc = set_body(worker,
                      "{\"task_id\":\"%s\",\"worker_id\":\"%s\",\"result\":{\"created_us\":%lld}}",
                      worker->task_id, worker->worker_id, created_us);

    if (rc != 0)
        return -1;
    if (start_request(worker, REQ_COMPLETE) != 0)
        worker->resume_ns = bench_now_ns() + RETRY_NS;
    return 0;
}

static void record_task_age(bench_t *bench, const client_t *worker)
{
    long long created_us = number_after(worker->body, "\"created_us\":");
    int64_t now_us = bench_wall_us();

    if (created_us <= 0 || now_us < created_us)
        return;
    bench_histogram_record(&bench->interval.task_age, (uint64_t)(now_us - created_us));
    bench_histogram_record(&bench->total.task_age, (uint64_t)(now_us - created_us));
}

/* Reads a successful answer. Returns 0 when it is what the request promises, else -1. */
static int on_answer(client_t *client)
{
    const char *text = client->response;

    switch (client->request) {
    case REQ_CREATE: {
        const char *id = bench_find_task_id(text, "\"task_id\":\"");

        if (id == NULL)
            return -1;
        memcpy(client->task_id, id, BENCH_TASK_ID_LEN);
        client->task_id[BENCH_TASK_ID_LEN] = '\0';
        client->creates++;
        client->get_owed = client->creates % 4 == 0;
        client->list_owed = client->creates % 20 == 0;
        return 0;
    }
    case REQ_GET:
        return bench_find_task_id(text, "\"id\":\"") != NULL ? 0 : -1;
    case REQ_LIST:
        return strncmp(text, "{\"tasks\":[", 10) == 0 ? 0 : -1;
    case REQ_REGISTER:
        if (strstr(text, "\"registered\"") == NULL)
            return -1;
        client->registered = 1;
        return 0;
    case REQ_HEARTBEAT:
        return strstr(text, "\"status\":\"ok\"") != NULL ? 0 : -1;
    case REQ_POLL:
        return on_poll_answer(client);
    case REQ_COMPLETE:
        if (strstr(text, "\"status\":\"completed\"") == NULL)
            return -1;
        record_task_age(client->bench, client);
        return 0;
    default:
        return -1;
    }
}

static void note_failure(bench_t *bench, client_t *client, CURLcode result, long status)
{
    bench->interval.failed[client->request]++;
    bench->total.failed[client->request]++;
    bench_note_first_failure(bench->first_error, sizeof(bench->first_error),
                             request_names[client->request], result, client->error, status,
                             client->response);
}

static void on_transfer_done(void *context, int multi_index, CURL *easy, CURLcode result)
{
    bench_t *bench = context;
    long status = 0;
    uint64_t now = bench_now_ns();
    client_t *client = bench_transfer_info(easy, &status);

    (void)multi_index;
    client->busy = 0;

    enum request request = client->request;
    uint64_t us = (now - client->started_ns) / 1000u;

    bench_histogram_record(&bench->interval.latency[request], us);
    bench_histogram_record(&bench->total.latency[request], us);
    if (request == REQ_HEARTBEAT || request == REQ_REGISTER)
        client->heartbeat_ns = client->started_ns;
    if (result == CURLE_OK && status >= 200 && status <= 299 && on_answer(client) == 0) {
        bench->interval.done[request]++;
        bench->total.done[request]++;
    } else {
        /* A failed client pauses before its next request rather than retry in a tight loop. */
        note_failure(bench, client, result, status);
        client->resume_ns = now + RETRY_NS;
    }
    kick_client(client, now);
}

/* ---- report ---- */

static double kb_to_mib(long long kb)
{
    return kb >= 0 ? (double)kb / 1024.0 : -1.0;
}

static double bytes_to_mib(long long bytes)
{
    return bytes >= 0 ? (double)bytes / MIB : -1.0;
}

static void print_header(void)
{
    printf("%7s %8s %7s %8s %7s | %-20s | %-20s | %8s %8s | %8s %8s | %8s | %6s\n", "time s",
           "created", "/s", "complete", "/s", "create ms p50/p99/max", "complete ms p50/p99/max",
           "pending", "backlog", "VmRSS", "RssAnon", "journal", "errors");
    printf("%7s %8s %7s %8s %7s | %-20s | %-20s | %8s %8s | %8s %8s | %8s | %6s\n", "", "", "", "",
           "", "", "", "", "", "MiB", "MiB", "MiB", "");
}

static void format_latency(char *out, size_t size, const bench_histogram_t *latency)
{
    snprintf(out, size, "%.1f/%.1f/%.1f", bench_histogram_percentile(latency, 50.0) / 1e3,
             bench_histogram_percentile(latency, 99.0) / 1e3, latency->max_us / 1e3);
}

static uint64_t failures(const tally_t *tally)
{
    uint64_t sum = 0;

    for (int i = 0; i < REQ_COUNT; i++)
        sum += tally->failed[i];
    return sum;
}

static void print_interval(bench_t *bench, const sample_t *sample, double seconds)
{
    const tally_t *tally = &bench->interval;
    char create[32];
    char complete[32];

    format_latency(create, sizeof(create), &tally->latency[REQ_CREATE]);
    format_latency(complete, sizeof(complete), &tally->latency[REQ_COMPLETE]);
    printf("%7.1f %8" PRIu64 " %7.1f %8" PRIu64 " %7.1f | %-20s | %-20s | %8lld %8lld | "
           "%8.1f %8.1f | %8.1f | %6" PRIu64 "\n",
           sample->elapsed_s, tally->done[REQ_CREATE], (double)tally->done[REQ_CREATE] / seconds,
           tally->done[REQ_COMPLETE], (double)tally->done[REQ_COMPLETE] / seconds, create, complete,
           sample->pending, sample->backlog, kb_to_mib(sample->vm_rss_kb),
           kb_to_mib(sample->rss_anon_kb), bytes_to_mib(sample->journal_bytes), failures(tally));
    fflush(stdout);
}

/* Closes an interval: samples the server, prints the line and starts the next interval. */
static void end_interval(bench_t *bench, uint64_t now)
{
    sample_t sample;

    take_sample(bench, &sample);
    print_interval(bench, &sample, (double)(now - bench->interval_began_ns) / 1e9);
    bench->interval_began_ns = now;
    keep_sample(bench, &sample);
    if (bench->sample_count == 1)
        bench->warm = sample;
    memset(&bench->interval, 0, sizeof(bench->interval));
}

static void print_growth(const char *name, long long from_kb, long long to_kb, uint64_t tasks)
{
    if (from_kb < 0 || to_kb < 0 || tasks == 0) {
        printf("  %-8s growth per 100k tasks: unknown\n", name);
        return;
    }
    /* Not kb_to_mib: a shrink is a negative difference, which that reads as "unknown". */
    double change_mib = (double)(to_kb - from_kb) / 1024.0;

    printf("  %-8s %+.1f MiB over %" PRIu64 " tasks = %+.2f MiB per 100k tasks\n", name, change_mib,
           tasks, change_mib * 1e5 / (double)tasks);
}

static void print_memory_row(const char *name, const sample_t *sample)
{
    printf("  %-28s %6.1f s %9" PRIu64 " done  VmRSS %7.1f  RssAnon %7.1f  RssFile %7.1f  "
           "journal %8.1f MiB\n",
           name, sample->elapsed_s, sample->completed, kb_to_mib(sample->vm_rss_kb),
           kb_to_mib(sample->rss_anon_kb), kb_to_mib(sample->rss_file_kb),
           bytes_to_mib(sample->journal_bytes));
}

static void print_summary(bench_t *bench)
{
    const tally_t *total = &bench->total;
    double seconds = (double)(bench->stop_ns - bench->start_ns) / 1e9;
    uint64_t tasks = bench->last.completed - bench->warm.completed;

    printf("\n== summary\n");
    printf("frontend %.0f s at %s, %d producers, %d workers (HTTP/1.1 keep-alive); "
           "%" PRIu64 " connections opened\n",
           seconds, bench->settings.url, bench->settings.producers, bench->settings.workers,
           bench->loop.connections);
    printf("%-22s %10s %10s %9s %9s %9s %9s\n", "request", "done", "failed", "p50 ms", "p99 ms",
           "max ms", "per s");
    for (int i = 0; i < REQ_COUNT; i++) {
        const bench_histogram_t *latency = &total->latency[i];

        printf("%-22s %10" PRIu64 " %10" PRIu64 " %9.2f %9.2f %9.2f %9.1f\n", request_names[i],
               total->done[i], total->failed[i], bench_histogram_percentile(latency, 50.0) / 1e3,
               bench_histogram_percentile(latency, 99.0) / 1e3, latency->max_us / 1e3,
               (double)total->done[i] / seconds);
    }
    printf("task age at completion (create sent to completion answered): p50 %.2f ms, p99 %.2f "
           "ms, max %.2f ms\n",
           bench_histogram_percentile(&total->task_age, 50.0) / 1e3,
           bench_histogram_percentile(&total->task_age, 99.0) / 1e3, total->task_age.max_us / 1e3);
    printf("throughput over the frontend's %.0f s: %.1f created/s, %.1f completed/s; "
           "%" PRIu64 " empty polls; pending at the end %lld\n",
           seconds, (double)total->done[REQ_CREATE] / seconds,
           (double)bench->stop_completed / seconds, total->empty_polls, bench->last.pending);
    if (bench->first_error[0] != '\0')
        printf("first failure: %s\n", bench->first_error);
    printf("server memory (MiB):\n");
    print_memory_row("start (before the load)", &bench->first);
    print_memory_row("warm (end of first interval)", &bench->warm);
    print_memory_row("middle", &bench->middle);
    print_memory_row("end (after the drain)", &bench->last);
    printf("growth from the end of the first interval to the end (%" PRIu64 " tasks):\n", tasks);
    print_growth("VmRSS", bench->warm.vm_rss_kb, bench->last.vm_rss_kb, tasks);
    print_growth("RssAnon", bench->warm.rss_anon_kb, bench->last.rss_anon_kb, tasks);
    print_growth("journal", bench->warm.journal_bytes >= 0 ? bench->warm.journal_bytes / 1024 : -1,
                 bench->last.journal_bytes >= 0 ? bench->last.journal_bytes / 1024 : -1, tasks);
    printf("RESULT seconds=%.0f created=%" PRIu64 " completed=%" PRIu64 " failures=%" PRIu64
           " create_p99_us=%" PRIu64 " complete_p99_us=%" PRIu64 " rss_warm_kb=%lld"
           " rss_end_kb=%lld anon_warm_kb=%lld anon_end_kb=%lld journal_end_bytes=%lld\n",
           seconds, total->done[REQ_CREATE], total->done[REQ_COMPLETE], failures(total),
           bench_histogram_percentile(&total->latency[REQ_CREATE], 99.0),
           bench_histogram_percentile(&total->latency[REQ_COMPLETE], 99.0), bench->warm.vm_rss_kb,
           bench->last.vm_rss_kb, bench->warm.rss_anon_kb, bench->last.rss_anon_kb,
           bench->last.journal_bytes);
}

/* ---- the run ---- */

static void pick_middle(bench_t *bench)
{
    double half = (double)(bench->stop_ns - bench->start_ns) / 2e9;
    double best = -1.0;

    for (int i = 0; i < bench->sample_count; i++) {
        double distance = bench->samples[i].elapsed_s - half;

        if (distance < 0)
            distance = -distance;
        if (best < 0.0 || distance < best) {
            best = distance;
            bench->middle = bench->samples[i];
        }
    }
}

/* Closes every connection still in use: the polls still parked when the drain ends. */
static void cut_clients(bench_t *bench, client_t *clients, int count)
{
    for (int i = 0; i < count; i++) {
        if (!clients[i].busy)
            continue;
        bench_loop_remove(&bench->loop, 0, clients[i].easy);
        clients[i].busy = 0;
        stop_client(&clients[i]);
    }
}

static uint64_t next_due_ns(const bench_t *bench)
{
    uint64_t due = bench_loop_next_timer_ns(&bench->loop);

    if (bench->next_tick_ns < due)
        due = bench->next_tick_ns;
    if (bench->next_interval_ns < due)
        due = bench->next_interval_ns;
    return due;
}

/* Moves from creating to draining at the deadline, where an interval ends early so that no
 * line mixes the two, and reports that the run is over once every worker has stopped or the
 * drain's time is up. */
static int advance(bench_t *bench, uint64_t now)
{
    if (!bench->draining && now >= bench->stop_ns) {
        bench->draining = 1;
        bench->stop_completed = bench->total.done[REQ_COMPLETE];
        if (now > bench->interval_began_ns + INTERVAL_NS / 10)
            end_interval(bench, now);
        now = bench_now_ns();
        bench->drain_ns = now + DRAIN_NS;
        bench->next_interval_ns = now + INTERVAL_NS;
        printf("-- the frontend stopped at %.1f s; the workers drain the queue for up to %.0f s\n",
               (double)(now - bench->start_ns) / 1e9, DRAIN_NS / 1e9);
    }
    if (!bench->draining)
        return 0;
    return bench->workers_stopped == bench->settings.workers || now >= bench->drain_ns;
}

static int run(bench_t *bench)
{
    const settings_t *settings = &bench->settings;

    take_sample(bench, &bench->first);
    bench->start_ns = bench_now_ns();
    bench->first.elapsed_s = 0.0;
    bench->stop_ns = bench->start_ns + (uint64_t)(settings->seconds * 1e9);
    bench->next_interval_ns = bench->start_ns + INTERVAL_NS;
    bench->interval_began_ns = bench->start_ns;
    print_header();
    for (;;) {
        int rc = bench_loop_run_once(&bench->loop, bench_wait_ms(next_due_ns(bench)));
        uint64_t now = bench_now_ns();

        if (rc != 0)
            return rc;
        if (now >= bench->next_tick_ns) {
            bench->next_tick_ns = now + TICK_NS;
            kick_all(bench, now);
        }
        if (now >= bench->next_interval_ns) {
            end_interval(bench, now);
            bench->next_interval_ns = now + INTERVAL_NS;
            now = bench_now_ns();
        }
        if (advance(bench, now))
            break;
    }
    cut_clients(bench, bench->workers, settings->workers);
    cut_clients(bench, bench->producers, settings->producers);
    /* The drain may have ended just as an interval did; a line of nothing adds nothing. */
    if (bench->sample_count == 0 || bench_now_ns() > bench->interval_began_ns + INTERVAL_NS / 10)
        end_interval(bench, bench_now_ns());
    if (bench->sample_count == 0)
        return -ENOMEM;
    bench->last = bench->samples[bench->sample_count - 1];
    pick_middle(bench);
    return 0;
}

/* ---- set-up ---- */

/* Sets up a worker or, with `is_producer`, a producer whose easy handle bench_clients_init has
 * made. */
static int on_setup_client(void *context, void *item, int index, int is_producer)
{
    bench_t *bench = context;
    client_t *client = item;
    client->bench = bench;
    client->index = index;
    client->is_producer = is_producer;
    client->answer =
        (bench_buffer_t){.data = client->response, .size = RESPONSE_MAX, .truncate = 1};
    snprintf(client->worker_id, sizeof(client->worker_id), "soak-w%d", index);
    /* A worker's poll waits up to 10 s on the server before it is answered. */
    bench_easy_init(client->easy, client, &client->answer, client->error,
                    is_producer ? REQUEST_TIMEOUT_MS
                                : (WAIT_MIN_S + WAIT_SPAN_S) * 1000L + REQUEST_SLACK_MS,
                    CURL_HTTP_VERSION_1_1);
    return 0;
}

static int build_urls(bench_t *bench)
{
    const char *url = bench->settings.url;
    int a = snprintf(bench->tasks_url, URL_MAX, "%s/tasks", url);
    int b = snprintf(bench->register_url, URL_MAX, "%s/poll/register", url);
    int c = snprintf(bench->heartbeat_url, URL_MAX, "%s/poll/heartbeat", url);
    int d = snprintf(bench->complete_url, URL_MAX, "%s/poll/complete", url);

    if (a < 0 || b < 0 || c < 0 || d < 0 || a >= URL_MAX || b >= URL_MAX || c >= URL_MAX ||
        d >= URL_MAX)
        return -ENAMETOOLONG;
    return 0;
}

static int bench_setup(bench_t *bench)
{
    const settings_t *settings = &bench->settings;
    int rc = build_urls(bench);

    if (rc != 0)
        return rc;
    rc = bench_loop_init(&bench->loop, 1, on_transfer_done, bench, "bench_soak");
    if (rc != 0)
        return rc;
    bench->json_headers = curl_slist_append(NULL, "Content-Type: application/json");
    bench->workers = calloc((size_t)settings->workers, sizeof(*bench->workers));
    bench->producers = calloc((size_t)settings->producers, sizeof(*bench->producers));
    bench->probe = curl_easy_init();
    if (bench->json_headers == NULL || bench->workers == NULL || bench->producers == NULL ||
        bench->probe == NULL)
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
    if (bench->probe != NULL)
        curl_easy_cleanup(bench->probe);
    bench_loop_free(&bench->loop);
    curl_slist_free_all(bench->json_headers);
    free(bench->samples);
}

/* ---- options ---- */

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: bench_soak [options]\n"
            "  --url URL         server base URL [http://127.0.0.1:5000]\n"
            "  --seconds N       seconds of load from the frontend, 10 to 86400 [300]\n"
            "  --workers W       long-polling workers, one request at a time each [200]\n"
            "  --producers P     frontend clients creating and reading tasks [8]\n"
            "  --rate R          tasks created per second over all producers; 0: no limit [1000]\n"
            "  --pid PID         the server's pid: memory from /proc/PID/status\n"
            "                    (default: process_resident_memory_bytes from GET /metrics)\n"
            "  --data-dir DIR    the server's data directory: journal size from DIR/data.mdb\n");
}

static const bench_option_t options[] = {
    {"url", BENCH_ARG_TEXT, 0, 0, offsetof(settings_t, url), NULL},
    {"seconds", BENCH_ARG_REAL, 10, 86400, offsetof(settings_t, seconds), NULL},
    {"workers", BENCH_ARG_INT, 1, 10000, offsetof(settings_t, workers), NULL},
    {"producers", BENCH_ARG_INT, 1, 1000, offsetof(settings_t, producers), NULL},
    {"rate", BENCH_ARG_REAL, 0, 100000, offsetof(settings_t, rate), NULL},
    {"pid", BENCH_ARG_INT, 1, 4194304, offsetof(settings_t, pid), NULL},
    {"data-dir", BENCH_ARG_TEXT, 0, 0, offsetof(settings_t, data_dir), NULL},
};

static const bench_program_t program = {
    .name = "bench_soak",
    .options = options,
    .option_count = sizeof(options) / sizeof(options[0]),
    .print_usage = print_usage,
};

int main(int argc, char **argv)
{
    static bench_t bench = {
        .settings = {.url = "http://127.0.0.1:5000",
                     .seconds = 300,
                     .rate = 1000,
                     .workers = 200,
                     .producers = 8},
        .loop = {.epoll_fd = -1},
    };
    int status = 1;

    if (bench_start(&program, argc, argv, &bench.settings, &status) != 0)
        return status;

    int rc = bench_setup(&bench);

    if (rc == 0)
        rc = run(&bench);
    if (rc != 0) {
        fprintf(stderr, "bench_soak: %s\n", strerror(-rc));
        goto Exit;
    }
    print_summary(&bench);
    /* The run is good when it did work; failures are figures to read, not a verdict. */
    status = bench.total.done[REQ_COMPLETE] > 0 ? 0 : 1;
Exit:
    bench_teardown(&bench);
    curl_global_cleanup();
    return status;
}
