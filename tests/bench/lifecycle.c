/*
 * bench_lifecycle: a load generator for the task lifecycle.
 *
 * C virtual clients each loop over POST /tasks, GET /poll/next and POST /poll/complete (or over
 * GET /health alone, for the baseline). Every client owns one reused easy handle; all of them
 * run on libcurl's multi-socket interface under one epoll loop in one thread, so that the
 * generator spends as little CPU as it can beside the server it measures.
 *
 * Over HTTP/1.1 every client keeps its own keep-alive connection. Over HTTP/2 (cleartext, prior
 * knowledge) the clients are spread over a few connection groups, one multi handle each, and
 * each group multiplexes its clients' streams over exactly one connection. libcurl would put
 * every stream on a single connection if all clients shared one multi handle, which is why the
 * groups exist.
 *
 * libcurl 7.88.x fails every request but the first on a prior-knowledge HTTP/2 connection
 * ("Error in the HTTP2 framing layer"; fixed in 8.0.0). With those versions each group's
 * connection is instead opened by one uncounted GET /health carrying `Upgrade: h2c`; once it
 * has switched to HTTP/2 every later stream is multiplexed on it exactly as with prior
 * knowledge, so only the connection's first request differs.
 *
 * Latencies go into one bench_histogram_t per endpoint. The libcurl and epoll glue, the
 * histogram and the answer helpers are shared with the other generators (bench_curl.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <curl/curl.h>

#include "bench_curl.h"

enum endpoint { EP_HEALTH, EP_CREATE, EP_POLL, EP_COMPLETE, EP_COUNT };

static const char *const endpoint_names[EP_COUNT] = {
    "GET /health",
    "POST /tasks",
    "GET /poll/next",
    "POST /poll/complete",
};

/* The responses this benchmark reads are a few hundred bytes; longer ones are cut here, which
 * only matters if the claimed task's id were not near the start, and it is the first field. */
#define RESPONSE_MAX 4096
#define URL_MAX 512
#define BODY_MAX 256

/* A request that takes longer than this is abandoned and counted as a transport error. */
#define REQUEST_TIMEOUT_MS 30000L

typedef struct endpoint_stats {
    bench_histogram_t latency; /* every answered request, successful or not */
    uint64_t ok;               /* 2xx with the expected body */
    uint64_t http_errors;      /* answered with a status outside 2xx */
    uint64_t transport;        /* no answer: connection refused, reset, timeout */
    uint64_t parse_errors;     /* 2xx whose body lacked the expected id */
} endpoint_stats_t;

typedef struct settings {
    const char *url;
    int http2;
    int connections;
    int clients;
    double duration_s;
    double warmup_s;
    uint64_t max_requests;
    int health_mode;
    int shared_role;
    int h2c_upgrade; /* open HTTP/2 connections by upgrade rather than prior knowledge */
} settings_t;

typedef struct bench bench_t;

typedef struct client {
    CURL *easy;
    int multi_index; /* which of the loop's multi handles runs this client's requests */
    bench_t *bench;
    enum endpoint endpoint; /* the request in flight */
    uint64_t started_ns;
    bench_buffer_t answer;
    size_t complete_id_at; /* where the task id goes in complete_body */
    size_t create_len;
    size_t complete_len;
    char create_body[BODY_MAX];
    char complete_body[BODY_MAX];
    char poll_url[URL_MAX];
    char response[RESPONSE_MAX];
    char error[CURL_ERROR_SIZE];
} client_t;

struct bench {
    settings_t settings;
    bench_loop_t loop; /* one multi handle per connection group over HTTP/2, else one */
    client_t *clients;
    struct curl_slist *json_headers;
    char health_url[URL_MAX];
    char tasks_url[URL_MAX];
    char complete_url[URL_MAX];
    uint64_t measure_from_ns; /* end of the warm-up: only requests started after it count */
    uint64_t stop_at_ns;      /* no request is started after this */
    uint64_t last_done_ns;
    uint64_t issued;
    uint64_t lifecycles;     /* completed within the measured window */
    uint64_t empty_polls;    /* "No tasks available" answers */
    uint64_t start_errors;   /* requests that could not be handed to libcurl */
    int priming;             /* the h2c upgrade requests are in flight */
    uint64_t priming_failed; /* upgrade requests that did not end on HTTP/2 */
    struct rusage usage_at_measure;
    int usage_taken;
    endpoint_stats_t stats[EP_COUNT];
    char first_error[CURL_ERROR_SIZE + 64]; /* the first transport error, to say why */
};

static void set_request(client_t *client, enum endpoint endpoint)
{
    bench_t *bench = client->bench;

    if (endpoint == EP_HEALTH)
        bench_set_get(client->easy, bench->health_url);
    else if (endpoint == EP_CREATE)
        bench_set_post(client->easy, bench->tasks_url, client->create_body, client->create_len,
                       bench->json_headers);
    else if (endpoint == EP_POLL)
        bench_set_get(client->easy, client->poll_url);
    else
        bench_set_post(client->easy, bench->complete_url, client->complete_body,
                       client->complete_len, bench->json_headers);
}

static void start_request(client_t *client, enum endpoint endpoint)
{
    bench_t *bench = client->bench;

    if (bench_now_ns() >= bench->stop_at_ns)
        return;
    if (bench->settings.max_requests != 0 && bench->issued >= bench->settings.max_requests)
        return;

    client->endpoint = endpoint;
    bench_buffer_reset(&client->answer);
    client->error[0] = '\0';
    set_request(client, endpoint);
    client->started_ns = bench_now_ns();
    if (bench_loop_add(&bench->loop, client->multi_index, client->easy) != 0) {
        bench->start_errors++;
        return;
    }
    bench->issued++;
}

/* Reads a successful answer and returns the endpoint the client calls next, or -1 when the
 * body is not what the endpoint promises. */
static int next_after_success(client_t *client, int counted)
{
    bench_t *bench = client->bench;

    switch (client->endpoint) {
    case EP_HEALTH:
        return EP_HEALTH;
    case EP_CREATE:
        if (bench_find_task_id(client->response, "\"task_id\":\"") != NULL)
            return EP_POLL;
        return -1;
    case EP_POLL: {
        const char *id = bench_find_task_id(client->response, "\"id\":\"");

        if (id != NULL) {
            memcpy(client->complete_body + client->complete_id_at, id, BENCH_TASK_ID_LEN);
            return EP_COMPLETE;
        }
        if (strstr(client->response, "\"task\":null") == NULL)
            return -1;
        bench->empty_polls += (uint64_t)counted;
        return EP_CREATE;
    }
    case EP_COMPLETE:
        if (strstr(client->response, "\"status\":\"completed\"") == NULL)
            return -1;
        bench->lifecycles += (uint64_t)counted;
        return EP_CREATE;
    default:
        return -1;
    }
}

static void on_transfer_done(void *context, int multi_index, CURL *easy, CURLcode result)
{
    bench_t *bench = context;
    long status = 0;
    uint64_t done_ns = bench_now_ns();
    client_t *client = bench_transfer_info(easy, &status);

    (void)multi_index;
    if (bench->priming) {
        long version = 0;

        curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version);
        if (result != CURLE_OK || version != CURL_HTTP_VERSION_2_0)
            bench->priming_failed++;
        return;
    }

    /* Requests started during the warm-up run as usual but are not counted. */
    int counted = client->started_ns >= bench->measure_from_ns;
    endpoint_stats_t *stats = &bench->stats[client->endpoint];
    enum endpoint next = bench->settings.health_mode ? EP_HEALTH : EP_CREATE;

    if (counted) {
        bench_histogram_record(&stats->latency, (done_ns - client->started_ns) / 1000u);
        bench->last_done_ns = done_ns;
    }
    if (result != CURLE_OK) {
        stats->transport += (uint64_t)counted;
        bench_note_first_failure(bench->first_error, sizeof(bench->first_error),
                                 endpoint_names[client->endpoint], result, client->error, status,
                                 client->response);
    } else if (status < 200 || status > 299) {
        stats->http_errors += (uint64_t)counted;
    } else {
        int after = next_after_success(client, counted);

        if (after < 0) {
            stats->parse_errors += (uint64_t)counted;
        } else {
            stats->ok += (uint64_t)counted;
            next = (enum endpoint)after;
        }
    }
    start_request(client, next);
}

static void take_measure_start_usage(bench_t *bench)
{
    if (bench->usage_taken || bench_now_ns() < bench->measure_from_ns)
        return;
    getrusage(RUSAGE_SELF, &bench->usage_at_measure);
    bench->usage_taken = 1;
}

static int run_loop(bench_t *bench)
{
    while (bench->loop.in_flight > 0) {
        int rc = bench_loop_run_once(&bench->loop,
                                     bench_wait_ms(bench_loop_next_timer_ns(&bench->loop)));

        if (rc != 0)
            return rc;
        take_measure_start_usage(bench);
    }
    return 0;
}

/* Over HTTP/2 each multi handle keeps exactly one connection, whose streams are capped by the
 * server's SETTINGS only; over HTTP/1.1 the one multi handle keeps every client's connection
 * in its cache between requests. */
static void configure_multi(const settings_t *settings, CURLM *multi)
{
    if (settings->http2) {
        curl_multi_setopt(multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
        curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 1L);
        curl_multi_setopt(multi, CURLMOPT_MAX_CONCURRENT_STREAMS, (long)settings->clients);
    } else {
        curl_multi_setopt(multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
        curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)settings->clients);
    }
}

/* Sets up a client whose easy handle bench_clients_init has made. */
static int on_setup_client(void *context, void *item, int index, int tag)
{
    bench_t *bench = context;
    client_t *client = item;
    const settings_t *settings = &bench->settings;

    (void)tag;
    int role = settings->shared_role ? 0 : index;

    client->bench = bench;
    client->multi_index = index % bench->loop.multi_count;
    client->answer =
        (bench_buffer_t){.data = client->response, .size = RESPONSE_MAX, .truncate = 1};

    int create_len = snprintf(client->create_body, sizeof(client->create_body),
                              "{\"task_type\":\"bench\",\"role\":\"bench-%d\","
                              "\"input_data\":{\"client\":%d}}",
                              role, index);
    int complete_len =
        snprintf(client->complete_body, sizeof(client->complete_body),
                 "{\"task_id\":\"%0*d\",\"result\":{\"ok\":true}}", BENCH_TASK_ID_LEN, 0);
    int url_len =
        snprintf(client->poll_url, sizeof(client->poll_url),
                 "%s/poll/next?worker_id=bench-w%d&roles=bench-%d", settings->url, index, role);

    if (create_len < 0 || complete_len < 0 || url_len < 0 || url_len >= URL_MAX)
        return -ENAMETOOLONG;
    client->create_len = (size_t)create_len;
    client->complete_len = (size_t)complete_len;
    client->complete_id_at = strlen("{\"task_id\":\"");

    CURL *easy = client->easy;

    long version = CURL_HTTP_VERSION_1_1;

    if (settings->http2)
        version =
            settings->h2c_upgrade ? CURL_HTTP_VERSION_2_0 : CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
    bench_easy_init(easy, client, &client->answer, client->error, REQUEST_TIMEOUT_MS, version);
    /* Wait for the group's connection rather than open a second one beside it. */
    if (settings->http2)
        curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
    return 0;
}

static int build_urls(bench_t *bench)
{
    const char *url = bench->settings.url;
    int a = snprintf(bench->health_url, URL_MAX, "%s/health", url);
    int b = snprintf(bench->tasks_url, URL_MAX, "%s/tasks", url);
    int c = snprintf(bench->complete_url, URL_MAX, "%s/poll/complete", url);

    if (a < 0 || b < 0 || c < 0 || a >= URL_MAX || b >= URL_MAX || c >= URL_MAX)
        return -ENAMETOOLONG;
    return 0;
}

static int bench_setup(bench_t *bench)
{
    const settings_t *settings = &bench->settings;

    if (build_urls(bench) != 0)
        return -ENAMETOOLONG;

    int rc = bench_loop_init(&bench->loop, settings->http2 ? settings->connections : 1,
                             on_transfer_done, bench, "bench_lifecycle");

    if (rc != 0)
        return rc;
    for (int i = 0; i < bench->loop.multi_count; i++)
        configure_multi(settings, bench->loop.multis[i].multi);
    bench->json_headers = curl_slist_append(NULL, "Content-Type: application/json");
    bench->clients = calloc((size_t)settings->clients, sizeof(*bench->clients));
    if (bench->json_headers == NULL || bench->clients == NULL)
        return -ENOMEM;
    return bench_clients_init(bench->clients, settings->clients, sizeof(client_t),
                              offsetof(client_t, easy), on_setup_client, bench, 0);
}

static void bench_teardown(bench_t *bench)
{
    bench_clients_free(bench->clients, bench->settings.clients, sizeof(client_t),
                       offsetof(client_t, easy));
    bench_loop_free(&bench->loop);
    curl_slist_free_all(bench->json_headers);
}

static double cpu_seconds(const struct rusage *usage)
{
    return (double)usage->ru_utime.tv_sec + (double)usage->ru_utime.tv_usec / 1e6 +
           (double)usage->ru_stime.tv_sec + (double)usage->ru_stime.tv_usec / 1e6;
}

static uint64_t endpoint_errors(const endpoint_stats_t *stats)
{
    return stats->http_errors + stats->transport + stats->parse_errors;
}

static void print_row(const char *name, const bench_histogram_t *latency, uint64_t errors,
                      double seconds)
{
    printf("%-22s %10" PRIu64 " %10.1f %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64
           " %7" PRIu64 "\n",
           name, latency->total, (double)latency->total / seconds,
           bench_histogram_percentile(latency, 50.0), bench_histogram_percentile(latency, 90.0),
           bench_histogram_percentile(latency, 99.0), latency->max_us, errors);
}

/* Prints the human table, then one `RESULT key=value ...` line for scripts. */
static void print_report(const bench_t *bench, const struct rusage *usage_end)
{
    const settings_t *settings = &bench->settings;
    double seconds = (double)(bench->last_done_ns - bench->measure_from_ns) / 1e9;
    static bench_histogram_t all;
    uint64_t errors = bench->start_errors;
    uint64_t http = 0, transport = 0, parse = 0;

    if (seconds <= 0.0)
        seconds = 1e-9;
    printf("mode %s, %s, %d clients over %d connection(s) (%" PRIu64 " opened), "
           "measured %.2f s after %.1f s of warm-up\n",
           settings->health_mode ? "health" : "lifecycle",
           !settings->http2        ? "HTTP/1.1 keep-alive"
           : settings->h2c_upgrade ? "HTTP/2 cleartext (connections opened by h2c upgrade)"
                                   : "HTTP/2 cleartext (prior knowledge)",
           settings->clients, settings->http2 ? settings->connections : settings->clients,
           bench->loop.connections, seconds, settings->warmup_s);
    printf("%-22s %10s %10s %8s %8s %8s %8s %7s\n", "endpoint", "requests", "req/s", "p50 us",
           "p90 us", "p99 us", "max us", "errors");
    for (int i = 0; i < EP_COUNT; i++) {
        const endpoint_stats_t *stats = &bench->stats[i];

        if (stats->latency.total == 0)
            continue;
        print_row(endpoint_names[i], &stats->latency, endpoint_errors(stats), seconds);
        bench_histogram_merge(&all, &stats->latency);
        http += stats->http_errors;
        transport += stats->transport;
        parse += stats->parse_errors;
    }
    errors += http + transport + parse;
    print_row("all", &all, errors, seconds);

    double tasks_per_s = (double)bench->lifecycles / seconds;
    double client_cpu = 0.0;

    if (bench->usage_taken)
        client_cpu = cpu_seconds(usage_end) - cpu_seconds(&bench->usage_at_measure);
    if (!settings->health_mode)
        printf("completed lifecycles %" PRIu64 ", tasks/s %.1f\n", bench->lifecycles, tasks_per_s);
    printf("errors: http %" PRIu64 ", transport %" PRIu64 ", unexpected body %" PRIu64
           ", not started %" PRIu64 "; empty polls %" PRIu64 "\n",
           http, transport, parse, bench->start_errors, bench->empty_polls);
    if (bench->first_error[0] != '\0')
        printf("first transport error: %s\n", bench->first_error);
    printf("client CPU %.0f%% of one core, %.1f us per request\n", 100.0 * client_cpu / seconds,
           all.total != 0 ? client_cpu * 1e6 / (double)all.total : 0.0);
    printf("RESULT mode=%s protocol=%s clients=%d connections=%d seconds=%.3f requests=%" PRIu64
           " req_per_s=%.1f tasks_per_s=%.1f errors=%" PRIu64 " p50_us=%" PRIu64 " p99_us=%" PRIu64
           " client_cpu_pct=%.0f\n",
           settings->health_mode ? "health" : "lifecycle", settings->http2 ? "h2" : "h1",
           settings->clients, settings->http2 ? settings->connections : settings->clients, seconds,
           all.total, (double)all.total / seconds, tasks_per_s, errors,
           bench_histogram_percentile(&all, 50.0), bench_histogram_percentile(&all, 99.0),
           100.0 * client_cpu / seconds);
}

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: bench_lifecycle [options]\n"
            "  --url URL           server base URL [http://127.0.0.1:5000]\n"
            "  --http2             HTTP/2 cleartext with prior knowledge, streams multiplexed\n"
            "                      over --connections connections (default: HTTP/1.1 keep-alive,\n"
            "                      one connection per client)\n"
            "  --connections N     HTTP/2 connections [4]\n"
            "  --clients N         concurrent virtual clients (HTTP/2: streams) [64]\n"
            "  --duration S        measured seconds, 0 < S <= 3600 [10]\n"
            "  --warmup S          seconds run before measuring [1]\n"
            "  --max-requests N    stop after N requests in all, warm-up included [no cap]\n"
            "  --mode M            lifecycle (POST /tasks, GET /poll/next, POST /poll/complete)\n"
            "                      or health (GET /health) [lifecycle]\n"
            "  --shared-role       all clients create and poll one role (default: a role each,\n"
            "                      so every poll claims the task its client created)\n");
}

/* --mode: lifecycle or health. */
static int parse_mode(void *context, const char *arg)
{
    settings_t *settings = context;

    if (strcmp(arg, "health") == 0)
        settings->health_mode = 1;
    else if (strcmp(arg, "lifecycle") != 0)
        return -EINVAL;
    return 0;
}

static const bench_option_t options[] = {
    {"url", BENCH_ARG_TEXT, 0, 0, offsetof(settings_t, url), NULL},
    {"http2", BENCH_ARG_FLAG, 0, 0, offsetof(settings_t, http2), NULL},
    {"connections", BENCH_ARG_INT, 1, 1024, offsetof(settings_t, connections), NULL},
    {"clients", BENCH_ARG_INT, 1, 100000, offsetof(settings_t, clients), NULL},
    {"duration", BENCH_ARG_REAL, 0.001, 3600.0, offsetof(settings_t, duration_s), NULL},
    {"warmup", BENCH_ARG_REAL, 0.0, 600.0, offsetof(settings_t, warmup_s), NULL},
    {"max-requests", BENCH_ARG_COUNT, 1, 1e15, offsetof(settings_t, max_requests), NULL},
    {"mode", BENCH_ARG_CUSTOM, 0, 0, 0, parse_mode},
    {"shared-role", BENCH_ARG_FLAG, 0, 0, offsetof(settings_t, shared_role), NULL},
};

static const bench_program_t program = {
    .name = "bench_lifecycle",
    .options = options,
    .option_count = sizeof(options) / sizeof(options[0]),
    .print_usage = print_usage,
};

/*
 * With libcurl 7.88.x, opens every group's connection with an uncounted GET /health that
 * upgrades it to HTTP/2, and checks that each one did.
 *
 * Limitation: a connection the server closes during the run (GOAWAY) is reopened by whichever
 * request comes next; if that is a POST it is not upgraded, the group falls back to HTTP/1.1
 * and its clients queue on one connection. The "opened" count in the report shows it.
 */
static int prime_connections(bench_t *bench)
{
    if (!bench->settings.http2 || !bench->settings.h2c_upgrade)
        return 0;

    bench->priming = 1;
    bench->measure_from_ns = UINT64_MAX;
    bench->stop_at_ns = UINT64_MAX;
    for (int i = 0; i < bench->loop.multi_count; i++)
        start_request(&bench->clients[i], EP_HEALTH);

    int rc = run_loop(bench);

    bench->priming = 0;
    if (rc != 0)
        return rc;
    if (bench->priming_failed != 0) {
        fprintf(
            stderr, "bench_lifecycle: %" PRIu64 " connection(s) did not upgrade to HTTP/2%s%s\n",
            bench->priming_failed, bench->first_error[0] != '\0' ? ": " : "", bench->first_error);
        return -EPROTO;
    }
    bench->issued = 0;
    return 0;
}

/* Chooses how HTTP/2 connections are opened: prior knowledge unless libcurl has the 7.88.x
 * connection reuse defect described at the top of this file. */
static void choose_h2_opening(settings_t *settings)
{
    const curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);

    if (info->version_num >= 0x075800 && info->version_num < 0x080000)
        settings->h2c_upgrade = 1;
}

static uint64_t counted_successes(const bench_t *bench)
{
    uint64_t ok = 0;

    for (int i = 0; i < EP_COUNT; i++)
        ok += bench->stats[i].ok;
    return ok;
}

int main(int argc, char **argv)
{
    static bench_t bench = {
        .settings = {.url = "http://127.0.0.1:5000",
                     .connections = 4,
                     .clients = 64,
                     .duration_s = 10.0,
                     .warmup_s = 1.0},
        .loop = {.epoll_fd = -1},
    };
    int status = 1;

    if (bench_start(&program, argc, argv, &bench.settings, &status) != 0)
        return status;
    /* The connection groups are one per connection: more groups than clients would idle. */
    if (bench.settings.http2 && bench.settings.connections > bench.settings.clients)
        bench.settings.connections = bench.settings.clients;
    choose_h2_opening(&bench.settings);

    int rc = bench_setup(&bench);

    if (rc == 0)
        rc = prime_connections(&bench);
    if (rc != 0) {
        fprintf(stderr, "bench_lifecycle: setup: %s\n", strerror(-rc));
        goto Exit;
    }

    uint64_t start_ns = bench_now_ns();

    bench.measure_from_ns = start_ns + (uint64_t)(bench.settings.warmup_s * 1e9);
    bench.stop_at_ns = bench.measure_from_ns + (uint64_t)(bench.settings.duration_s * 1e9);
    for (int i = 0; i < bench.settings.clients; i++)
        start_request(&bench.clients[i], bench.settings.health_mode ? EP_HEALTH : EP_CREATE);
    take_measure_start_usage(&bench);
    if (run_loop(&bench) != 0)
        goto Exit;

    struct rusage usage_end;

    getrusage(RUSAGE_SELF, &usage_end);
    print_report(&bench, &usage_end);
    if (counted_successes(&bench) == 0)
        fprintf(stderr, "bench_lifecycle: no request succeeded in the measured window\n");
    else
        status = 0;
Exit:
    bench_teardown(&bench);
    curl_global_cleanup();
    return status;
}
