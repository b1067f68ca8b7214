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
 * Latencies go into one histogram per endpoint with exact microsecond buckets below about a
 * millisecond and 512 buckets per power of two above (relative error under 0.2%), so recording
 * costs an index computation and an increment whatever the run length.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

enum endpoint { EP_HEALTH, EP_CREATE, EP_POLL, EP_COMPLETE, EP_COUNT };

static const char *const endpoint_names[EP_COUNT] = {
    "GET /health",
    "POST /tasks",
    "GET /poll/next",
    "POST /poll/complete",
};

/* Histogram geometry: values below HIST_LINEAR microseconds have a bucket each; above, every
 * power of two is split into HIST_SUB buckets. HIST_OCTAVES octaves reach past 2^40 us. */
#define HIST_LINEAR 1024
#define HIST_SUB 512
#define HIST_SUB_BITS 9
#define HIST_OCTAVES 32
#define HIST_SIZE (HIST_LINEAR + HIST_OCTAVES * HIST_SUB)

/* The responses this benchmark reads are a few hundred bytes; longer ones are cut here, which
 * only matters if the claimed task's id were not near the start, and it is the first field. */
#define RESPONSE_MAX 4096
#define URL_MAX 512
#define BODY_MAX 256
#define TASK_ID_LEN 36
#define EVENTS_MAX 256

/* A request that takes longer than this is abandoned and counted as a transport error. */
#define REQUEST_TIMEOUT_MS 30000L

typedef struct histogram {
    uint64_t counts[HIST_SIZE];
    uint64_t total;
    uint64_t max_us;
} histogram_t;

typedef struct endpoint_stats {
    histogram_t latency;   /* every answered request, successful or not */
    uint64_t ok;           /* 2xx with the expected body */
    uint64_t http_errors;  /* answered with a status outside 2xx */
    uint64_t transport;    /* no answer: connection refused, reset, timeout */
    uint64_t parse_errors; /* 2xx whose body lacked the expected id */
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

typedef struct group group_t;
typedef struct bench bench_t;

/* One multi handle and its libcurl timer; over HTTP/2, one connection. */
struct group {
    CURLM *multi;
    uint64_t deadline_ns; /* when libcurl wants its timeout action; UINT64_MAX for never */
    bench_t *bench;
    uint32_t index;
};

typedef struct client {
    CURL *easy;
    group_t *group;
    bench_t *bench;
    enum endpoint endpoint; /* the request in flight */
    uint64_t started_ns;
    size_t response_len;
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
    int epoll_fd;
    group_t *groups;
    int group_count;
    client_t *clients;
    struct curl_slist *json_headers;
    char health_url[URL_MAX];
    char tasks_url[URL_MAX];
    char complete_url[URL_MAX];
    uint64_t measure_from_ns; /* end of the warm-up: only requests started after it count */
    uint64_t stop_at_ns;      /* no request is started after this */
    uint64_t last_done_ns;
    uint64_t issued;
    uint64_t in_flight;
    uint64_t lifecycles;     /* completed within the measured window */
    uint64_t empty_polls;    /* "No tasks available" answers */
    uint64_t connections;    /* connections libcurl opened */
    uint64_t start_errors;   /* requests that could not be handed to libcurl */
    int priming;             /* the h2c upgrade requests are in flight */
    uint64_t priming_failed; /* upgrade requests that did not end on HTTP/2 */
    struct rusage usage_at_measure;
    int usage_taken;
    endpoint_stats_t stats[EP_COUNT];
    char first_error[CURL_ERROR_SIZE + 64]; /* the first transport error, to say why */
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t histogram_index(uint64_t us)
{
    if (us < HIST_LINEAR)
        return (size_t)us;

    int shift = 63 - __builtin_clzll(us) - HIST_SUB_BITS;

    if (shift > HIST_OCTAVES)
        return HIST_SIZE - 1;
    return HIST_LINEAR + (size_t)(shift - 1) * HIST_SUB + (size_t)((us >> shift) - HIST_SUB);
}

/* The highest value that lands in bucket `index`: percentiles are reported conservatively. */
static uint64_t histogram_bucket_top(size_t index)
{
    if (index < HIST_LINEAR)
        return index;

    size_t octave = (index - HIST_LINEAR) / HIST_SUB + 1;
    uint64_t sub = (index - HIST_LINEAR) % HIST_SUB + HIST_SUB;

    return ((sub + 1) << octave) - 1;
}

static void histogram_record(histogram_t *histogram, uint64_t us)
{
    histogram->counts[histogram_index(us)]++;
    histogram->total++;
    if (us > histogram->max_us)
        histogram->max_us = us;
}

static void histogram_merge(histogram_t *into, const histogram_t *from)
{
    for (size_t i = 0; i < HIST_SIZE; i++)
        into->counts[i] += from->counts[i];
    into->total += from->total;
    if (from->max_us > into->max_us)
        into->max_us = from->max_us;
}

static uint64_t histogram_percentile(const histogram_t *histogram, double percent)
{
    if (histogram->total == 0)
        return 0;

    uint64_t rank = (uint64_t)(percent / 100.0 * (double)histogram->total + 0.999999);
    uint64_t seen = 0;

    if (rank < 1)
        rank = 1;
    for (size_t i = 0; i < HIST_SIZE; i++) {
        seen += histogram->counts[i];
        if (seen >= rank) {
            uint64_t top = histogram_bucket_top(i);

            return top < histogram->max_us ? top : histogram->max_us;
        }
    }
    return histogram->max_us;
}

static size_t on_response_data(char *data, size_t size, size_t count, void *userp)
{
    client_t *client = userp;
    size_t len = size * count;
    size_t room = RESPONSE_MAX - 1 - client->response_len;
    size_t take = len < room ? len : room;

    memcpy(client->response + client->response_len, data, take);
    client->response_len += take;
    return len;
}

/* libcurl tells which sockets to watch; the epoll data carries the group index and the socket,
 * so no per-socket allocation exists that an already-returned event could outlive. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    group_t *group = userp;
    struct epoll_event event = {0};

    (void)easy;
    (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        /* The socket may already be closed; epoll then forgot it by itself. */
        epoll_ctl(group->bench->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
        return 0;
    }
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        event.events |= EPOLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        event.events |= EPOLLOUT;
    event.data.u64 = (uint64_t)group->index << 32 | (uint32_t)fd;

    int rc = epoll_ctl(group->bench->epoll_fd, EPOLL_CTL_MOD, fd, &event);

    if (rc != 0 && errno == ENOENT)
        rc = epoll_ctl(group->bench->epoll_fd, EPOLL_CTL_ADD, fd, &event);
    if (rc != 0) {
        fprintf(stderr, "bench_lifecycle: epoll_ctl: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    group_t *group = userp;

    (void)multi;
    if (timeout_ms < 0)
        group->deadline_ns = UINT64_MAX;
    else
        group->deadline_ns = now_ns() + (uint64_t)timeout_ms * 1000000u;
    return 0;
}

static void set_get(CURL *easy, const char *url)
{
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, NULL);
}

/* The body is the client's own buffer: libcurl reads it in place, with no copy per request. */
static void set_post(CURL *easy, const char *url, const char *body, size_t len,
                     struct curl_slist *headers)
{
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
}

static void set_request(client_t *client, enum endpoint endpoint)
{
    bench_t *bench = client->bench;

    if (endpoint == EP_HEALTH)
        set_get(client->easy, bench->health_url);
    else if (endpoint == EP_CREATE)
        set_post(client->easy, bench->tasks_url, client->create_body, client->create_len,
                 bench->json_headers);
    else if (endpoint == EP_POLL)
        set_get(client->easy, client->poll_url);
    else
        set_post(client->easy, bench->complete_url, client->complete_body, client->complete_len,
                 bench->json_headers);
}

static void start_request(client_t *client, enum endpoint endpoint)
{
    bench_t *bench = client->bench;

    if (now_ns() >= bench->stop_at_ns)
        return;
    if (bench->settings.max_requests != 0 && bench->issued >= bench->settings.max_requests)
        return;

    client->endpoint = endpoint;
    client->response_len = 0;
    client->error[0] = '\0';
    set_request(client, endpoint);
    client->started_ns = now_ns();

    CURLMcode mc = curl_multi_add_handle(client->group->multi, client->easy);

    if (mc != CURLM_OK) {
        fprintf(stderr, "bench_lifecycle: curl_multi_add_handle: %s\n", curl_multi_strerror(mc));
        bench->start_errors++;
        return;
    }
    bench->issued++;
    bench->in_flight++;
}

/* Finds the first `"id":"` and checks that a full task id follows. The claimed task's id is the
 * first field of the task object, and the create answer names it task_id, hence the `key`. */
static const char *find_task_id(const char *response, const char *key)
{
    const char *at = strstr(response, key);

    if (at == NULL)
        return NULL;
    at += strlen(key);
    if (strlen(at) < TASK_ID_LEN + 1 || at[TASK_ID_LEN] != '"')
        return NULL;
    return at;
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
        if (find_task_id(client->response, "\"task_id\":\"") != NULL)
            return EP_POLL;
        return -1;
    case EP_POLL: {
        const char *id = find_task_id(client->response, "\"id\":\"");

        if (id != NULL) {
            memcpy(client->complete_body + client->complete_id_at, id, TASK_ID_LEN);
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

static void on_transfer_done(bench_t *bench, group_t *group, CURL *easy, CURLcode result)
{
    client_t *client = NULL;
    long status = 0;
    long connects = 0;
    uint64_t done_ns = now_ns();

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&client);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connects);
    curl_multi_remove_handle(group->multi, easy);
    bench->in_flight--;
    bench->connections += (uint64_t)connects;
    client->response[client->response_len] = '\0';
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
        histogram_record(&stats->latency, (done_ns - client->started_ns) / 1000u);
        bench->last_done_ns = done_ns;
    }
    if (result != CURLE_OK) {
        stats->transport += (uint64_t)counted;
        if (bench->first_error[0] == '\0')
            snprintf(bench->first_error, sizeof(bench->first_error), "%s: %s",
                     endpoint_names[client->endpoint],
                     client->error[0] != '\0' ? client->error : curl_easy_strerror(result));
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

static void drain_messages(bench_t *bench, group_t *group)
{
    CURLMsg *message;
    int left = 0;

    for (;;) {
        message = curl_multi_info_read(group->multi, &left);
        if (message == NULL)
            break;
        if (message->msg == CURLMSG_DONE)
            on_transfer_done(bench, group, message->easy_handle, message->data.result);
    }
}

static int wait_ms_until_deadline(const bench_t *bench)
{
    uint64_t soonest = UINT64_MAX;

    for (int i = 0; i < bench->group_count; i++) {
        if (bench->groups[i].deadline_ns < soonest)
            soonest = bench->groups[i].deadline_ns;
    }
    if (soonest == UINT64_MAX)
        return 1000;

    uint64_t now = now_ns();

    if (soonest <= now)
        return 0;
    /* Round up so that the timer has really expired when the loop wakes. */
    return (int)((soonest - now + 999999u) / 1000000u);
}

static void fire_due_timers(bench_t *bench)
{
    uint64_t now = now_ns();
    int running = 0;

    for (int i = 0; i < bench->group_count; i++) {
        group_t *group = &bench->groups[i];

        if (group->deadline_ns > now)
            continue;
        group->deadline_ns = UINT64_MAX;
        curl_multi_socket_action(group->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
}

static void take_measure_start_usage(bench_t *bench)
{
    if (bench->usage_taken || now_ns() < bench->measure_from_ns)
        return;
    getrusage(RUSAGE_SELF, &bench->usage_at_measure);
    bench->usage_taken = 1;
}

static int run_loop(bench_t *bench)
{
    struct epoll_event events[EVENTS_MAX];
    int running = 0;

    while (bench->in_flight > 0) {
        int count = epoll_wait(bench->epoll_fd, events, EVENTS_MAX, wait_ms_until_deadline(bench));

        if (count < 0 && errno != EINTR) {
            fprintf(stderr, "bench_lifecycle: epoll_wait: %s\n", strerror(errno));
            return -errno;
        }
        for (int i = 0; i < count; i++) {
            group_t *group = &bench->groups[events[i].data.u64 >> 32];
            curl_socket_t fd = (curl_socket_t)(uint32_t)events[i].data.u64;
            int flags = 0;

            if (events[i].events & (EPOLLIN | EPOLLHUP))
                flags |= CURL_CSELECT_IN;
            if (events[i].events & EPOLLOUT)
                flags |= CURL_CSELECT_OUT;
            if (events[i].events & EPOLLERR)
                flags |= CURL_CSELECT_ERR;
            curl_multi_socket_action(group->multi, fd, flags, &running);
        }
        fire_due_timers(bench);
        for (int i = 0; i < bench->group_count; i++)
            drain_messages(bench, &bench->groups[i]);
        take_measure_start_usage(bench);
    }
    return 0;
}

static int setup_group(bench_t *bench, group_t *group, uint32_t index)
{
    const settings_t *settings = &bench->settings;

    group->bench = bench;
    group->index = index;
    group->deadline_ns = UINT64_MAX;
    group->multi = curl_multi_init();
    if (group->multi == NULL)
        return -ENOMEM;
    curl_multi_setopt(group->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(group->multi, CURLMOPT_SOCKETDATA, group);
    curl_multi_setopt(group->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(group->multi, CURLMOPT_TIMERDATA, group);
    if (settings->http2) {
        /* One connection per group; its streams are capped by the server's SETTINGS only. */
        curl_multi_setopt(group->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
        curl_multi_setopt(group->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 1L);
        curl_multi_setopt(group->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, (long)settings->clients);
    } else {
        /* Keep every client's connection in the cache between its requests. */
        curl_multi_setopt(group->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
        curl_multi_setopt(group->multi, CURLMOPT_MAXCONNECTS, (long)settings->clients);
    }
    return 0;
}

static int setup_client(bench_t *bench, client_t *client, int index)
{
    const settings_t *settings = &bench->settings;
    int role = settings->shared_role ? 0 : index;

    client->bench = bench;
    client->group = &bench->groups[index % bench->group_count];
    client->easy = curl_easy_init();
    if (client->easy == NULL)
        return -ENOMEM;

    int create_len = snprintf(client->create_body, sizeof(client->create_body),
                              "{\"task_type\":\"bench\",\"role\":\"bench-%d\","
                              "\"input_data\":{\"client\":%d}}",
                              role, index);
    int complete_len = snprintf(client->complete_body, sizeof(client->complete_body),
                                "{\"task_id\":\"%0*d\",\"result\":{\"ok\":true}}", TASK_ID_LEN, 0);
    int url_len =
        snprintf(client->poll_url, sizeof(client->poll_url),
                 "%s/poll/next?worker_id=bench-w%d&roles=bench-%d", settings->url, index, role);

    if (create_len < 0 || complete_len < 0 || url_len < 0 || url_len >= URL_MAX)
        return -ENAMETOOLONG;
    client->create_len = (size_t)create_len;
    client->complete_len = (size_t)complete_len;
    client->complete_id_at = strlen("{\"task_id\":\"");

    CURL *easy = client->easy;

    curl_easy_setopt(easy, CURLOPT_PRIVATE, client);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_response_data);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, client);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, client->error);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
    if (settings->http2) {
        long version =
            settings->h2c_upgrade ? CURL_HTTP_VERSION_2_0 : CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;

        curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, version);
        /* Wait for the group's connection rather than open a second one beside it. */
        curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
    } else {
        curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    }
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
    bench->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (bench->epoll_fd < 0)
        return -errno;
    bench->json_headers = curl_slist_append(NULL, "Content-Type: application/json");
    bench->group_count = settings->http2 ? settings->connections : 1;
    bench->groups = calloc((size_t)bench->group_count, sizeof(*bench->groups));
    bench->clients = calloc((size_t)settings->clients, sizeof(*bench->clients));
    if (bench->json_headers == NULL || bench->groups == NULL || bench->clients == NULL)
        return -ENOMEM;
    for (int i = 0; i < bench->group_count; i++) {
        int rc = setup_group(bench, &bench->groups[i], (uint32_t)i);

        if (rc != 0)
            return rc;
    }
    for (int i = 0; i < settings->clients; i++) {
        int rc = setup_client(bench, &bench->clients[i], i);

        if (rc != 0)
            return rc;
    }
    return 0;
}

static void bench_teardown(bench_t *bench)
{
    for (int i = 0; bench->clients != NULL && i < bench->settings.clients; i++) {
        if (bench->clients[i].easy != NULL)
            curl_easy_cleanup(bench->clients[i].easy);
    }
    for (int i = 0; bench->groups != NULL && i < bench->group_count; i++) {
        if (bench->groups[i].multi != NULL)
            curl_multi_cleanup(bench->groups[i].multi);
    }
    curl_slist_free_all(bench->json_headers);
    free(bench->clients);
    free(bench->groups);
    if (bench->epoll_fd >= 0)
        close(bench->epoll_fd);
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

static void print_row(const char *name, const histogram_t *latency, uint64_t errors, double seconds)
{
    printf("%-22s %10" PRIu64 " %10.1f %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64
           " %7" PRIu64 "\n",
           name, latency->total, (double)latency->total / seconds,
           histogram_percentile(latency, 50.0), histogram_percentile(latency, 90.0),
           histogram_percentile(latency, 99.0), latency->max_us, errors);
}

/* Prints the human table, then one `RESULT key=value ...` line for scripts. */
static void print_report(const bench_t *bench, const struct rusage *usage_end)
{
    const settings_t *settings = &bench->settings;
    double seconds = (double)(bench->last_done_ns - bench->measure_from_ns) / 1e9;
    static histogram_t all;
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
           bench->connections, seconds, settings->warmup_s);
    printf("%-22s %10s %10s %8s %8s %8s %8s %7s\n", "endpoint", "requests", "req/s", "p50 us",
           "p90 us", "p99 us", "max us", "errors");
    for (int i = 0; i < EP_COUNT; i++) {
        const endpoint_stats_t *stats = &bench->stats[i];

        if (stats->latency.total == 0)
            continue;
        print_row(endpoint_names[i], &stats->latency, endpoint_errors(stats), seconds);
        histogram_merge(&all, &stats->latency);
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
           histogram_percentile(&all, 50.0), histogram_percentile(&all, 99.0),
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

static int parse_long(const char *text, long min, long max, long *out)
{
    char *end = NULL;

    errno = 0;
    long value = strtol(text, &end, 10);

    if (errno != 0 || end == text || *end != '\0' || value < min || value > max)
        return -EINVAL;
    *out = value;
    return 0;
}

static int parse_seconds(const char *text, double min, double max, double *out)
{
    char *end = NULL;

    errno = 0;
    double value = strtod(text, &end);

    if (errno != 0 || end == text || *end != '\0' || !(value >= min && value <= max))
        return -EINVAL;
    *out = value;
    return 0;
}

enum option_id {
    OPT_URL = 1,
    OPT_HTTP2,
    OPT_CONNECTIONS,
    OPT_CLIENTS,
    OPT_DURATION,
    OPT_WARMUP,
    OPT_MAX_REQUESTS,
    OPT_MODE,
    OPT_SHARED_ROLE,
    OPT_HELP,
};

static int apply_option(settings_t *settings, int id, const char *arg)
{
    long value = 0;
    int rc = 0;

    switch (id) {
    case OPT_URL:
        settings->url = arg;
        break;
    case OPT_HTTP2:
        settings->http2 = 1;
        break;
    case OPT_CONNECTIONS:
        rc = parse_long(arg, 1, 1024, &value);
        settings->connections = (int)value;
        break;
    case OPT_CLIENTS:
        rc = parse_long(arg, 1, 100000, &value);
        settings->clients = (int)value;
        break;
    case OPT_DURATION:
        rc = parse_seconds(arg, 0.001, 3600.0, &settings->duration_s);
        break;
    case OPT_WARMUP:
        rc = parse_seconds(arg, 0.0, 600.0, &settings->warmup_s);
        break;
    case OPT_MAX_REQUESTS:
        rc = parse_long(arg, 1, LONG_MAX, &value);
        settings->max_requests = (uint64_t)value;
        break;
    case OPT_MODE:
        if (strcmp(arg, "health") == 0)
            settings->health_mode = 1;
        else if (strcmp(arg, "lifecycle") != 0)
            rc = -EINVAL;
        break;
    case OPT_SHARED_ROLE:
        settings->shared_role = 1;
        break;
    default:
        rc = -EINVAL;
        break;
    }
    return rc;
}

/* Returns 0, 1 when help was asked for, or -EINVAL. */
static int parse_options(int argc, char **argv, settings_t *settings)
{
    static const struct option options[] = {
        {"url", required_argument, NULL, OPT_URL},
        {"http2", no_argument, NULL, OPT_HTTP2},
        {"connections", required_argument, NULL, OPT_CONNECTIONS},
        {"clients", required_argument, NULL, OPT_CLIENTS},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"max-requests", required_argument, NULL, OPT_MAX_REQUESTS},
        {"mode", required_argument, NULL, OPT_MODE},
        {"shared-role", no_argument, NULL, OPT_SHARED_ROLE},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };

    for (;;) {
        int id = getopt_long(argc, argv, "", options, NULL);

        if (id == -1)
            break;
        if (id == OPT_HELP)
            return 1;
        if (apply_option(settings, id, optarg) != 0) {
            if (id != '?')
                fprintf(stderr, "bench_lifecycle: bad value for --%s: %s\n",
                        options[id - OPT_URL].name, optarg);
            return -EINVAL;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "bench_lifecycle: unexpected argument: %s\n", argv[optind]);
        return -EINVAL;
    }
    /* The connection groups are one per connection: more groups than clients would idle. */
    if (settings->http2 && settings->connections > settings->clients)
        settings->connections = settings->clients;
    return 0;
}

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
    for (int i = 0; i < bench->group_count; i++)
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
        .epoll_fd = -1,
    };
    int status = 1;

    int parsed = parse_options(argc, argv, &bench.settings);

    if (parsed != 0) {
        print_usage(parsed > 0 ? stdout : stderr);
        return parsed > 0 ? 0 : 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "bench_lifecycle: curl_global_init failed\n");
        return 1;
    }

    choose_h2_opening(&bench.settings);

    int rc = bench_setup(&bench);

    if (rc == 0)
        rc = prime_connections(&bench);
    if (rc != 0) {
        fprintf(stderr, "bench_lifecycle: setup: %s\n", strerror(-rc));
        goto Exit;
    }

    uint64_t start_ns = now_ns();

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
