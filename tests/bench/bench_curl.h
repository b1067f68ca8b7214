/*
 * The part the load generators in tests/bench share: libcurl's multi-socket interface driven by
 * one epoll loop in one thread, the easy-handle set-up every client needs, and small helpers to
 * read answers, options and latencies.
 *
 * A loop owns one epoll instance and one or more multi handles. Each multi handle has its own
 * libcurl timer; an epoll event carries the index of its multi handle and the socket, so no
 * per-socket allocation exists that an event already returned by epoll could outlive. More than
 * one multi handle is useful over HTTP/2: libcurl puts every stream of one multi handle on one
 * connection per host, so a handle per connection spreads the streams over several.
 *
 * Everything here is single-threaded: a loop and the handles it drives belong to the thread
 * that runs it. None of these functions logs except where its comment says so.
 */
#ifndef GDN_BENCH_CURL_H
#define GDN_BENCH_CURL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <curl/curl.h>

/* A task id is a UUID in its text form. */
#define BENCH_TASK_ID_LEN 36

typedef struct bench_loop bench_loop_t;

/*
 * Called for each finished transfer, from bench_loop_run_once, after the easy handle has been
 * removed from its multi handle (so it may be added again at once) and counted out of the
 * transfers in flight. `multi_index` says which of
 * the loop's multi handles ran it; `result` is libcurl's outcome of the transfer.
 */
typedef void bench_on_done_t(void *context, int multi_index, CURL *easy, CURLcode result);

/* One multi handle of a loop, with the time libcurl next wants its timeout action. */
typedef struct bench_multi {
    CURLM *multi;
    uint64_t deadline_ns; /* CLOCK_MONOTONIC; UINT64_MAX for never */
    bench_loop_t *loop;
    uint32_t index;
} bench_multi_t;

struct bench_loop {
    int epoll_fd;
    bench_multi_t *multis;
    int multi_count;
    bench_on_done_t *on_done;
    void *context;
    const char *program;  /* names the generator in the few messages the loop prints */
    uint64_t in_flight;   /* transfers added and neither finished nor removed */
    uint64_t connections; /* connections libcurl opened for the transfers that finished */
};

/*
 * A client's answer buffer, filled by libcurl through the write callback that bench_easy_init
 * installs. `data` is the client's own storage of `size` bytes; the text in it is kept
 * NUL-terminated, so it can be read as a string whenever the transfer is done. With `truncate` set,
 * an answer longer than the buffer is cut and the transfer goes on; without it the transfer fails
 * with a write error, so that a cut answer is counted as a failure rather than misread.
 */
typedef struct bench_buffer {
    char *data;
    size_t size;
    size_t len;
    int truncate;
} bench_buffer_t;

/*
 * Sets up a loop of `multi_count` multi handles whose finished transfers go to
 * `on_done(context, ...)`. Multi-handle options beyond the socket and timer callbacks are the
 * caller's, through loop->multis[i].multi. Returns 0, -ENOMEM or -errno; on failure whatever was
 * made is released by bench_loop_free, which is safe on a loop zeroed beforehand.
 */
int bench_loop_init(bench_loop_t *loop, int multi_count, bench_on_done_t *on_done, void *context,
                    const char *program);

/* Releases the loop's multi handles and epoll instance. The easy handles are the caller's and
 * must have been removed or cleaned up already. */
void bench_loop_free(bench_loop_t *loop);

/* Hands `easy` to multi handle `multi_index` and counts it in flight. Returns 0, or -EIO after
 * printing libcurl's reason on stderr. */
int bench_loop_add(bench_loop_t *loop, int multi_index, CURL *easy);

/* Takes a transfer still in flight away from multi handle `multi_index`, which closes its
 * connection, and counts it out of the transfers in flight. Its callback is not called. */
void bench_loop_remove(bench_loop_t *loop, int multi_index, CURL *easy);

/* The soonest time any multi handle wants its timeout action, UINT64_MAX for never. */
uint64_t bench_loop_next_timer_ns(const bench_loop_t *loop);

/*
 * Waits for socket events up to `timeout_ms` (-1: no limit), passes them to libcurl, fires the
 * timers that are due and delivers every finished transfer to the loop's callback. Returns 0,
 * or -errno when epoll_wait fails (after printing it); an interrupted wait is not a failure.
 */
int bench_loop_run_once(bench_loop_t *loop, int timeout_ms);

/* The epoll timeout that wakes the loop no earlier than `due_ns`: rounded up to whole
 * milliseconds, 0 when it is past, and 1000 when nothing is due. */
int bench_wait_ms(uint64_t due_ns);

/*
 * Gives a client's reused easy handle what every request needs: `private` as
 * CURLINFO_PRIVATE, answers into `buffer`, libcurl's error text into `error`
 * (CURL_ERROR_SIZE bytes), no signals, TCP_NODELAY, a whole-transfer timeout and the HTTP
 * version (a CURL_HTTP_VERSION_* value).
 */
void bench_easy_init(CURL *easy, void *private, bench_buffer_t *buffer, char *error,
                     long timeout_ms, long http_version);

/* Makes the next transfer of `easy` a GET of `url`. */
void bench_set_get(CURL *easy, const char *url);

/* Makes the next transfer of `easy` a POST of `len` bytes of `body` to `url` with `headers`.
 * libcurl reads the body in place, so it must stay unchanged until the transfer is done. */
void bench_set_post(CURL *easy, const char *url, const char *body, size_t len,
                    struct curl_slist *headers);

/* Reads the HTTP status of a finished transfer (0 when none came) into `status`. Returns the
 * pointer given to bench_easy_init as `private`. */
void *bench_transfer_info(CURL *easy, long *status);

/*
 * Keeps the first reason a run saw for a failure: when `out` is still empty, writes why the
 * request failed into it, libcurl's text (`error` if it has one, else the text of `result`)
 * when no answer came, else the status and the start of the answer `body`; when `out` already
 * holds a reason, leaves it. `what` names the request, for example "POST /tasks".
 */
void bench_note_first_failure(char *out, size_t size, const char *what, CURLcode result,
                              const char *error, long status, const char *body);

/* Empties a buffer before its client's next request. */
void bench_buffer_reset(bench_buffer_t *buffer);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* CLOCK_REALTIME in microseconds: a time that another process on this machine can compare. */
int64_t bench_wall_us(void);

/*
 * Finds `key` (for example "\"id\":\"") in `text` and checks that a UUID and a closing quote
 * follow. Returns a pointer to the id, which is not NUL-terminated, or NULL.
 */
const char *bench_find_task_id(const char *text, const char *key);

/* Reads a decimal number within [min, max]; `whole` refuses fractions. Returns 0 or -EINVAL. */
int bench_parse_number(const char *text, double min, double max, int whole, double *out);

/*
 * A latency histogram in microseconds: exact buckets below BENCH_HIST_LINEAR, and
 * BENCH_HIST_SUB buckets per power of two above (relative error under 0.2%), so recording costs
 * an index computation and an increment whatever the run's length.
 */
#define BENCH_HIST_LINEAR 1024
#define BENCH_HIST_SUB 512
#define BENCH_HIST_SUB_BITS 9
#define BENCH_HIST_OCTAVES 32
#define BENCH_HIST_SIZE (BENCH_HIST_LINEAR + BENCH_HIST_OCTAVES * BENCH_HIST_SUB)

typedef struct bench_histogram {
    uint64_t counts[BENCH_HIST_SIZE];
    uint64_t total;
    uint64_t max_us;
} bench_histogram_t;

/* Counts one value. */
void bench_histogram_record(bench_histogram_t *histogram, uint64_t us);

/* Adds the counts of `from` to `into`. */
void bench_histogram_merge(bench_histogram_t *into, const bench_histogram_t *from);

/* The value at `percent` (0 to 100), rounded up to its bucket's top but never above the
 * largest value recorded; 0 for an empty histogram. */
uint64_t bench_histogram_percentile(const bench_histogram_t *histogram, double percent);

/* How the text of an option becomes a setting. */
typedef enum bench_arg_kind {
    BENCH_ARG_TEXT,   /* const char *: the text itself, which stays in argv */
    BENCH_ARG_FLAG,   /* int set to 1; the option takes no value */
    BENCH_ARG_INT,    /* int, whole, within [min, max] */
    BENCH_ARG_COUNT,  /* uint64_t, whole, within [min, max] */
    BENCH_ARG_REAL,   /* double within [min, max] */
    BENCH_ARG_CUSTOM, /* read by the option's own `parse` */
} bench_arg_kind_t;

/* One command-line option of a generator and the setting it fills. */
typedef struct bench_option {
    const char *name; /* without the leading "--" */
    bench_arg_kind_t kind;
    double min;
    double max;
    size_t offset; /* of the setting in the generator's settings structure */
    /* BENCH_ARG_CUSTOM: reads `arg` into `settings`; returns 0 or -EINVAL. */
    int (*parse)(void *settings, const char *arg);
} bench_option_t;

/* What bench_start needs to know about a generator. */
typedef struct bench_program {
    const char *name; /* prefixes its messages, for example "bench_soak" */
    const bench_option_t *options;
    size_t option_count;
    void (*print_usage)(FILE *out);
} bench_program_t;

/*
 * Reads the command line into `settings` by the program's option table, with getopt_long, and
 * accepts --help besides. Prints the reason for a bad value or a stray argument on stderr.
 * Returns 0, 1 when --help was given, or -EINVAL.
 */
int bench_parse_options(const bench_program_t *program, int argc, char **argv, void *settings);

/*
 * What every generator does before its run: reads the command line as bench_parse_options
 * does, prints the usage (on stdout for --help, on stderr after a bad command line) and
 * initialises libcurl. Returns 0 when the run is to go on, and the caller then owes
 * curl_global_cleanup; else a negative code (-ECANCELED after --help, -EINVAL, -EIO) with the
 * status the program is to exit with in `exit_status`: 0 after --help, 2 for a bad command
 * line, 1 when libcurl could not be initialised.
 */
int bench_start(const bench_program_t *program, int argc, char **argv, void *settings,
                int *exit_status);

/* ---- sets of clients ---- */

/* Sets up the client at `client`, whose easy handle already exists; `tag` is what the caller
 * gave bench_clients_init, for example to tell one kind of client from another. Returns 0 or
 * -errno. */
typedef int bench_client_setup_t(void *context, void *client, int index, int tag);

/*
 * Readies an array of `count` zeroed client structures of `size` bytes each: gives every one a
 * new easy handle, stored as the CURL * at `easy_offset` in it, and then calls
 * `setup(context, client, index, tag)` on it. Stops at the first failure and returns its code, or
 * -ENOMEM when libcurl could not make a handle; the handles made so far stay in the array for
 * bench_clients_free. Returns 0 when all are ready.
 */
int bench_clients_init(void *clients, int count, size_t size, size_t easy_offset,
                       bench_client_setup_t *setup, void *context, int tag);

/*
 * Readies the clients of a generator of workers and producers, both arrays of client
 * structures of `size` bytes with the easy handle at `easy_offset`, that run on multi handle 0
 * of `loop` over HTTP/1.1: lets that multi handle keep a connection per client in its cache
 * between requests, then runs bench_clients_init on the workers with tag 0 and on the
 * producers with tag 1. Returns 0 or the first failure's code.
 */
int bench_crew_init(bench_loop_t *loop, void *workers, int worker_count, void *producers,
                    int producer_count, size_t size, size_t easy_offset,
                    bench_client_setup_t *setup, void *context);

/* Cleans up the easy handle of each of the `count` clients that has one, then frees the array
 * itself. Safe on NULL. The handles must not be in a multi handle any more. */
void bench_clients_free(void *clients, int count, size_t size, size_t easy_offset);

#endif
