/*
 * The load generators' shared libcurl and epoll glue; see bench_curl.h.
 */
#include "bench_curl.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define EVENTS_MAX 256

uint64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t bench_wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- libcurl's socket and timer callbacks ---- */

/* libcurl says which sockets to watch and for what; the epoll data carries the multi handle's
 * index beside the socket. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    bench_multi_t *multi = userp;
    int epoll_fd = multi->loop->epoll_fd;
    struct epoll_event event = {0};

    (void)easy;
    (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        /* A socket already closed has left the epoll set by itself; the error is expected. */
        epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, NULL);
        return 0;
    }
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        event.events |= EPOLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        event.events |= EPOLLOUT;
    event.data.u64 = (uint64_t)multi->index << 32 | (uint32_t)fd;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &event) == 0)
        return 0;
    if (errno == ENOENT && epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) == 0)
        return 0;
    fprintf(stderr, "%s: epoll_ctl: %s\n", multi->loop->program, strerror(errno));
    return -1;
}

static int on_timer(CURLM *handle, long timeout_ms, void *userp)
{
    bench_multi_t *multi = userp;

    (void)handle;
    multi->deadline_ns =
        timeout_ms < 0 ? UINT64_MAX : bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
    return 0;
}

/* ---- the loop ---- */

int bench_loop_init(bench_loop_t *loop, int multi_count, bench_on_done_t *on_done, void *context,
                    const char *program)
{
    loop->on_done = on_done;
    loop->context = context;
    loop->program = program;
    loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epoll_fd < 0)
        return -errno;
    loop->multis = calloc((size_t)multi_count, sizeof(*loop->multis));
    if (loop->multis == NULL)
        return -ENOMEM;
    loop->multi_count = multi_count;
    for (int i = 0; i < multi_count; i++) {
        bench_multi_t *multi = &loop->multis[i];

        multi->loop = loop;
        multi->index = (uint32_t)i;
        multi->deadline_ns = UINT64_MAX;
        multi->multi = curl_multi_init();
        if (multi->multi == NULL)
            return -ENOMEM;
        curl_multi_setopt(multi->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
        curl_multi_setopt(multi->multi, CURLMOPT_SOCKETDATA, multi);
        curl_multi_setopt(multi->multi, CURLMOPT_TIMERFUNCTION, on_timer);
        curl_multi_setopt(multi->multi, CURLMOPT_TIMERDATA, multi);
    }
    return 0;
}

void bench_loop_free(bench_loop_t *loop)
{
    for (int i = 0; loop->multis != NULL && i < loop->multi_count; i++) {
        if (loop->multis[i].multi != NULL)
            curl_multi_cleanup(loop->multis[i].multi);
    }
    free(loop->multis);
    loop->multis = NULL;
    loop->multi_count = 0;
    if (loop->epoll_fd >= 0)
        close(loop->epoll_fd);
    loop->epoll_fd = -1;
}

int bench_loop_add(bench_loop_t *loop, int multi_index, CURL *easy)
{
    CURLMcode mc = curl_multi_add_handle(loop->multis[multi_index].multi, easy);

    if (mc != CURLM_OK) {
        fprintf(stderr, "%s: curl_multi_add_handle: %s\n", loop->program, curl_multi_strerror(mc));
        return -EIO;
    }
    loop->in_flight++;
    return 0;
}

void bench_loop_remove(bench_loop_t *loop, int multi_index, CURL *easy)
{
    curl_multi_remove_handle(loop->multis[multi_index].multi, easy);
    loop->in_flight--;
}

uint64_t bench_loop_next_timer_ns(const bench_loop_t *loop)
{
    uint64_t soonest = UINT64_MAX;

    for (int i = 0; i < loop->multi_count; i++) {
        if (loop->multis[i].deadline_ns < soonest)
            soonest = loop->multis[i].deadline_ns;
    }
    return soonest;
}

int bench_wait_ms(uint64_t due_ns)
{
    uint64_t now = bench_now_ns();

    if (due_ns == UINT64_MAX)
        return 1000;
    if (due_ns <= now)
        return 0;
    /* Round up so that what is due really is when the loop wakes. */
    return (int)((due_ns - now + 999999u) / 1000000u);
}

static void fire_due_timers(bench_loop_t *loop)
{
    uint64_t now = bench_now_ns();
    int running = 0;

    for (int i = 0; i < loop->multi_count; i++) {
        bench_multi_t *multi = &loop->multis[i];

        if (multi->deadline_ns > now)
            continue;
        multi->deadline_ns = UINT64_MAX;
        curl_multi_socket_action(multi->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
}

static void deliver_done(bench_loop_t *loop, int multi_index)
{
    CURLM *multi = loop->multis[multi_index].multi;
    int left = 0;

    for (;;) {
        CURLMsg *message = curl_multi_info_read(multi, &left);

        if (message == NULL)
            break;
        if (message->msg != CURLMSG_DONE)
            continue;

        CURL *easy = message->easy_handle;
        CURLcode result = message->data.result;
        long connects = 0;

        /* The message lives in the multi handle and is gone once the handle is removed. */
        curl_multi_remove_handle(multi, easy);
        loop->in_flight--;
        curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connects);
        loop->connections += (uint64_t)connects;
        loop->on_done(loop->context, multi_index, easy, result);
    }
}

int bench_loop_run_once(bench_loop_t *loop, int timeout_ms)
{
    struct epoll_event events[EVENTS_MAX];
    int running = 0;
    int count = epoll_wait(loop->epoll_fd, events, EVENTS_MAX, timeout_ms);

    if (count < 0 && errno != EINTR) {
        int error = errno;

        fprintf(stderr, "%s: epoll_wait: %s\n", loop->program, strerror(error));
        return -error;
    }
    for (int i = 0; i < count; i++) {
        bench_multi_t *multi = &loop->multis[events[i].data.u64 >> 32];
        curl_socket_t fd = (curl_socket_t)(uint32_t)events[i].data.u64;
        int flags = 0;

        if (events[i].events & (EPOLLIN | EPOLLHUP))
            flags |= CURL_CSELECT_IN;
        if (events[i].events & EPOLLOUT)
            flags |= CURL_CSELECT_OUT;
        if (events[i].events & EPOLLERR)
            flags |= CURL_CSELECT_ERR;
        curl_multi_socket_action(multi->multi, fd, flags, &running);
    }
    fire_due_timers(loop);
    for (int i = 0; i < loop->multi_count; i++)
        deliver_done(loop, i);
    return 0;
}

/* ---- easy handles ---- */

static size_t on_response_data(char *data, size_t size, size_t count, void *userp)
{
    bench_buffer_t *buffer = userp;
    size_t len = size * count;
    size_t room = buffer->size - 1 - buffer->len;
    size_t take = len < room ? len : room;

    if (take < len && !buffer->truncate)
        return 0;
    memcpy(buffer->data + buffer->len, data, take);
    buffer->len += take;
    buffer->data[buffer->len] = '\0';
    return len;
}

void bench_easy_init(CURL *easy, void *private, bench_buffer_t *buffer, char *error,
                     long timeout_ms, long http_version)
{
    curl_easy_setopt(easy, CURLOPT_PRIVATE, private);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_response_data);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, buffer);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, http_version);
}

void bench_set_get(CURL *easy, const char *url)
{
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, NULL);
}

void bench_set_post(CURL *easy, const char *url, const char *body, size_t len,
                    struct curl_slist *headers)
{
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
}

void *bench_transfer_info(CURL *easy, long *status)
{
    char *private = NULL;

    *status = 0;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &private);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, status);
    return private;
}

void bench_note_first_failure(char *out, size_t size, const char *what, CURLcode result,
                              const char *error, long status, const char *body)
{
    if (out[0] != '\0')
        return;
    if (result != CURLE_OK)
        snprintf(out, size, "%s: %s", what, error[0] != '\0' ? error : curl_easy_strerror(result));
    else
        snprintf(out, size, "%s: HTTP %ld: %.200s", what, status, body);
}

void bench_buffer_reset(bench_buffer_t *buffer)
{
    buffer->len = 0;
    buffer->data[0] = '\0';
}

/* ---- answers and options ---- */

const char *bench_find_task_id(const char *text, const char *key)
{
    const char *at = strstr(text, key);

    if (at == NULL)
        return NULL;
    at += strlen(key);
    for (int i = 0; i < BENCH_TASK_ID_LEN; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash ? at[i] != '-' : !isxdigit((unsigned char)at[i]))
            return NULL;
    }
    return at[BENCH_TASK_ID_LEN] == '"' ? at : NULL;
}

int bench_parse_number(const char *text, double min, double max, int whole, double *out)
{
    char *end = NULL;

    errno = 0;
    double value = strtod(text, &end);

    if (errno != 0 || end == text || *end != '\0' || !(value >= min && value <= max))
        return -EINVAL;
    if (whole && value != floor(value))
        return -EINVAL;
    *out = value;
    return 0;
}

/* ---- latency histogram ---- */

static size_t histogram_index(uint64_t us)
{
    if (us < BENCH_HIST_LINEAR)
        return (size_t)us;

    int shift = 63 - __builtin_clzll(us) - BENCH_HIST_SUB_BITS;

    if (shift > BENCH_HIST_OCTAVES)
        return BENCH_HIST_SIZE - 1;
    return BENCH_HIST_LINEAR + (size_t)(shift - 1) * BENCH_HIST_SUB +
           (size_t)((us >> shift) - BENCH_HIST_SUB);
}

/* The highest value that lands in bucket `index`: percentiles are reported conservatively. */
static uint64_t histogram_bucket_top(size_t index)
{
    if (index < BENCH_HIST_LINEAR)
        return index;

    size_t octave = (index - BENCH_HIST_LINEAR) / BENCH_HIST_SUB + 1;
    uint64_t sub = (index - BENCH_HIST_LINEAR) % BENCH_HIST_SUB + BENCH_HIST_SUB;

    return ((sub + 1) << octave) - 1;
}

void bench_histogram_record(bench_histogram_t *histogram, uint64_t us)
{
    histogram->counts[histogram_index(us)]++;
    histogram->total++;
    if (us > histogram->max_us)
        histogram->max_us = us;
}

void bench_histogram_merge(bench_histogram_t *into, const bench_histogram_t *from)
{
    for (size_t i = 0; i < BENCH_HIST_SIZE; i++)
        into->counts[i] += from->counts[i];
    into->total += from->total;
    if (from->max_us > into->max_us)
        into->max_us = from->max_us;
}

uint64_t bench_histogram_percentile(const bench_histogram_t *histogram, double percent)
{
    if (histogram->total == 0)
        return 0;

    uint64_t rank = (uint64_t)(percent / 100.0 * (double)histogram->total + 0.999999);
    uint64_t seen = 0;

    if (rank < 1)
        rank = 1;
    for (size_t i = 0; i < BENCH_HIST_SIZE; i++) {
        seen += histogram->counts[i];
        if (seen >= rank) {
            uint64_t top = histogram_bucket_top(i);

            return top < histogram->max_us ? top : histogram->max_us;
        }
    }
    return histogram->max_us;
}

/* ---- the command line ---- */

/* Stores `arg` in the setting `option` names. Returns 0 or -EINVAL. */
static int apply_option(const bench_option_t *option, void *settings, const char *arg)
{
    char *field = (char *)settings + option->offset;
    double value = 0;

    switch (option->kind) {
    case BENCH_ARG_TEXT:
        *(const char **)field = arg;
        return 0;
    case BENCH_ARG_FLAG:
        *(int *)field = 1;
        return 0;
    case BENCH_ARG_CUSTOM:
        return option->parse(settings, arg);
    default:
        break;
    }
    if (bench_parse_number(arg, option->min, option->max, option->kind != BENCH_ARG_REAL, &value) !=
        0)
        return -EINVAL;
    if (option->kind == BENCH_ARG_INT)
        *(int *)field = (int)value;
    else if (option->kind == BENCH_ARG_COUNT)
        *(uint64_t *)field = (uint64_t)value;
    else
        *(double *)field = value;
    return 0;
}

int bench_parse_options(const bench_program_t *program, int argc, char **argv, void *settings)
{
    size_t count = program->option_count;
    /* getopt_long's table: each option's index in the program's table, plus one, as its value,
     * then --help and the zeroed end. */
    struct option *table = calloc(count + 2, sizeof(*table));
    const int help = (int)count + 1;
    int rc = 0;

    if (table == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        const bench_option_t *option = &program->options[i];

        table[i] = (struct option){option->name,
                                   option->kind == BENCH_ARG_FLAG ? no_argument : required_argument,
                                   NULL, (int)i + 1};
    }
    table[count] = (struct option){"help", no_argument, NULL, help};
    for (;;) {
        int id = getopt_long(argc, argv, "", table, NULL);

        if (id == -1)
            break;
        if (id == help) {
            rc = 1;
            goto Exit;
        }
        /* getopt_long has already said what was wrong with an unknown option. */
        if (id < 1 || id > (int)count) {
            rc = -EINVAL;
            goto Exit;
        }

        const bench_option_t *option = &program->options[id - 1];

        if (apply_option(option, settings, optarg) != 0) {
            fprintf(stderr, "%s: bad value for --%s: %s\n", program->name, option->name, optarg);
            rc = -EINVAL;
            goto Exit;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "%s: unexpected argument: %s\n", program->name, argv[optind]);
        rc = -EINVAL;
    }
Exit:
    free(table);
    return rc;
}

int bench_start(const bench_program_t *program, int argc, char **argv, void *settings,
                int *exit_status)
{
    int parsed = bench_parse_options(program, argc, argv, settings);

    if (parsed != 0) {
        program->print_usage(parsed > 0 ? stdout : stderr);
        *exit_status = parsed > 0 ? 0 : 2;
        return parsed > 0 ? -ECANCELED : -EINVAL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "%s: curl_global_init failed\n", program->name);
        *exit_status = 1;
        return -EIO;
    }
    return 0;
}

/* ---- sets of clients ---- */

static CURL **easy_of(void *clients, int index, size_t size, size_t easy_offset)
{
    return (CURL **)((char *)clients + (size_t)index * size + easy_offset);
}

int bench_clients_init(void *clients, int count, size_t size, size_t easy_offset,
                       bench_client_setup_t *setup, void *context, int tag)
{
    for (int i = 0; i < count; i++) {
        CURL **easy = easy_of(clients, i, size, easy_offset);

        *easy = curl_easy_init();
        if (*easy == NULL)
            return -ENOMEM;

        int rc = setup(context, (char *)clients + (size_t)i * size, i, tag);

        if (rc != 0)
            return rc;
    }
    return 0;
}

int bench_crew_init(bench_loop_t *loop, void *workers, int worker_count, void *producers,
                    int producer_count, size_t size, size_t easy_offset,
                    bench_client_setup_t *setup, void *context)
{
    curl_multi_setopt(loop->multis[0].multi, CURLMOPT_MAXCONNECTS,
                      (long)worker_count + producer_count);

    int rc = bench_clients_init(workers, worker_count, size, easy_offset, setup, context, 0);
    if (rc != 0)
        return rc;
    return bench_clients_init(producers, producer_count, size, easy_offset, setup, context, 1);
}

void bench_clients_free(void *clients, int count, size_t size, size_t easy_offset)
{
    for (int i = 0; clients != NULL && i < count; i++) {
        CURL *easy = *easy_of(clients, i, size, easy_offset);

        if (easy != NULL)
            curl_easy_cleanup(easy);
    }
    free(clients);
}
