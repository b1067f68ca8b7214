/*
 * The harness of the integration tests: it starts the real garden-orchestrator binary on
 * 127.0.0.1 and a free port with its own temporary data directory, waits until it answers,
 * talks to it over HTTP/1.1 or HTTP/2 with libcurl, and stops it by its pid.
 *
 * The binary is found through the GDN_SERVER_BIN environment variable, which ctest sets.
 * Everything here is meant for the test process only: functions report failures through
 * CUnit assertions as well as through their return codes.
 */
#ifndef GDN_TEST_HARNESS_H
#define GDN_TEST_HARNESS_H

#include <curl/curl.h>
#include <stddef.h>
#include <sys/types.h>
#include <yajl/yajl_tree.h>

/** Longest path the harness builds for files in a server's temporary directory. */
#define GDN_IT_PATH_MAX 512

/** Longest temporary directory path; the files inside it stay within GDN_IT_PATH_MAX. */
#define GDN_IT_DIR_MAX 256

/** Room for a task id (a UUID) and its terminating NUL. */
#define GDN_IT_ID_SIZE 64

/** Most extra command-line arguments a server can be given. */
#define GDN_IT_MAX_ARGS 16

/** One server process under test and the files that belong to it. */
typedef struct gdn_it_server {
    char dir[GDN_IT_DIR_MAX];          /**< temporary root, removed by gdn_it_server_cleanup */
    char data_dir[GDN_IT_PATH_MAX];    /**< the journal directory, kept across restarts */
    char log_path[GDN_IT_PATH_MAX];    /**< stdout and stderr of every run, appended */
    char config_path[GDN_IT_PATH_MAX]; /**< config file passed with --config, or empty */
    char cert_path[GDN_IT_PATH_MAX];   /**< self-signed certificate when TLS is on, or empty */
    char key_path[GDN_IT_PATH_MAX];    /**< its private key, or empty */
    const char *extra_args[GDN_IT_MAX_ARGS]; /**< appended to the command line, not owned */
    int extra_count;                         /**< entries used in extra_args */
    pid_t pid;                               /**< the running process, or 0 */
    int port;                                /**< the port of the current run */
    int tls;                                 /**< 1 when the port speaks TLS only */
    unsigned failures_at_init;               /**< CUnit failures before this server existed */
    long log_offset;                         /**< where the current run's log output starts */
} gdn_it_server_t;

/** How a stopped server ended. */
typedef struct gdn_it_exit {
    int exited;     /**< 1 if the process called exit */
    int code;       /**< its exit code when exited */
    int signal;     /**< the signal that ended it, or 0 */
    double seconds; /**< from sending the signal to the end of the process */
} gdn_it_exit_t;

/** The protocol a client speaks. */
typedef enum gdn_it_proto {
    GDN_IT_HTTP1, /**< HTTP/1.1 with keep-alive (over TLS when the server uses TLS) */
    GDN_IT_HTTP2, /**< HTTP/2: prior knowledge in cleartext (a new connection per request),
                       ALPN over TLS */
    GDN_IT_H2C,   /**< HTTP/1.1 request carrying `Upgrade: h2c` */
} gdn_it_proto_t;

/** A connection-keeping HTTP client bound to one server; one per thread. */
typedef struct gdn_it_client {
    const gdn_it_server_t *server;
    CURL *curl;
    gdn_it_proto_t proto;
} gdn_it_client_t;

/** One answer, or the reason there was none. */
typedef struct gdn_it_response {
    long status;        /**< HTTP status, or 0 when no answer arrived */
    CURLcode code;      /**< libcurl's result */
    int version;        /**< protocol used: 11 for HTTP/1.1, 20 for HTTP/2 */
    char *body;         /**< NUL-terminated body (may hold other NULs), owned */
    size_t body_len;    /**< bytes of body before the terminating NUL */
    char *headers;      /**< the last header block, raw, NUL-terminated, owned */
    size_t headers_len; /**< bytes of headers */
    yajl_val json;      /**< the body parsed as JSON, or NULL if it is not JSON */
} gdn_it_response_t;

/** Seconds on the monotonic clock, for deadlines. Safe from any thread. */
double gdn_it_now_seconds(void);

/** Asks the kernel for a free TCP port on 127.0.0.1. Returns it, or -1. */
int gdn_it_free_port(void);

/** Sleeps `ms` milliseconds, resuming after signals. */
void gdn_it_sleep_ms(long ms);

/**
 * Prepares the test process: libcurl's global state, SIGPIPE ignored. Call from a suite's init
 * function, before any thread starts. Returns 0, or -1 if libcurl cannot start.
 */
int gdn_it_global_init(void);

/**
 * Makes the server's temporary directory and data directory. Does not start anything.
 * @return 0 or -errno.
 */
int gdn_it_server_init(gdn_it_server_t *srv);

/**
 * Writes (replaces) the config file the next start passes with --config, from a printf format.
 * @return 0 or -errno.
 */
int gdn_it_server_configf(gdn_it_server_t *srv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** Appends one argument to the command line of later starts; `arg` must outlive the server. */
void gdn_it_server_add_arg(gdn_it_server_t *srv, const char *arg);

/**
 * Makes a self-signed certificate for 127.0.0.1 with the openssl command-line tool, in the
 * server's directory, and marks the server as TLS-only. The config file must still name the
 * files (cert_path, key_path).
 * @return 0 or a negative code.
 */
int gdn_it_server_make_cert(gdn_it_server_t *srv);

/**
 * Starts the binary on 127.0.0.1 and a free port, then waits (bounded) until GET /health
 * answers 200. A start that fails because the port was taken is retried on another port.
 * @return 0, or a negative code after printing the server's log.
 */
int gdn_it_server_start(gdn_it_server_t *srv);

/**
 * Sends `sig` (SIGTERM or SIGINT) and waits up to `limit_s` seconds for the process to end;
 * kills it with SIGKILL past that. Fills `out` with how it ended.
 * @return 0 if it ended by itself, -ETIMEDOUT if it had to be killed.
 */
int gdn_it_server_stop(gdn_it_server_t *srv, int sig, double limit_s, gdn_it_exit_t *out);

/** Kills the server with SIGKILL and reaps it: a crash, as far as the journal can tell. */
void gdn_it_server_kill(gdn_it_server_t *srv);

/**
 * Stops a running server (SIGKILL), prints its log if a CUnit assertion failed since
 * gdn_it_server_init, and removes its temporary directory.
 */
void gdn_it_server_cleanup(gdn_it_server_t *srv);

/** Prints the server's captured stdout and stderr to the test's stderr. */
void gdn_it_server_dump_log(const gdn_it_server_t *srv);

/**
 * Runs the binary with `args` (NULL-terminated, program name excluded) to completion, with no
 * server expected, and captures its stdout and stderr into `out`.
 * @param exit_code the exit code, or -1 if it did not exit normally within 20 s.
 * @return 0 or a negative code.
 */
int gdn_it_run_program(const char *const *args, char *out, size_t out_size, int *exit_code);

/**
 * Runs `argv` (NULL-terminated; argv[0] an absolute path, such as a wrapper that runs the
 * binary as another user) to completion, killing it after 20 s, and captures its stdout and
 * stderr into `out`.
 * @param exit_code the exit code, or -1 if it did not exit normally in time.
 * @return 0 or a negative code.
 */
int gdn_it_run_argv(const char *const *argv, char *out, size_t out_size, int *exit_code);

/**
 * Opens a client that speaks `proto` to `srv`. The client follows the server across restarts
 * (it reads the port at each request).
 * @return 0 or -ENOMEM.
 */
int gdn_it_client_open(gdn_it_client_t *client, const gdn_it_server_t *srv, gdn_it_proto_t proto);

/** Closes the client's connections and frees it. */
void gdn_it_client_close(gdn_it_client_t *client);

/**
 * Sends one request. `body` may be NULL; when set, `Content-Type: application/json` is sent
 * unless `headers` (NULL-terminated "Name: value" strings, may be NULL) names another.
 * @return 0 when an answer arrived (any status), or -1 with res->code set.
 */
int gdn_it_call_raw(gdn_it_client_t *client, const char *method, const char *path, const char *body,
                    size_t body_len, const char *const *headers, gdn_it_response_t *res);

/** gdn_it_call_raw with a NUL-terminated body (or NULL) and no extra headers. */
int gdn_it_call(gdn_it_client_t *client, const char *method, const char *path, const char *body,
                gdn_it_response_t *res);

/** Frees what a response owns and zeroes it. */
void gdn_it_response_free(gdn_it_response_t *res);

/**
 * Copies the value of the first header called `name` (any case), trimmed, into `out`.
 * @return out, or NULL when the header is absent.
 */
char *gdn_it_header(const gdn_it_response_t *res, const char *name, char *out, size_t size);

/**
 * Tells whether any header called `name` lists `token` (any case) among its comma-separated
 * values.
 */
int gdn_it_header_has_token(const gdn_it_response_t *res, const char *name, const char *token);

/** Follows object keys (NULL-terminated) from `root`; NULL when any step is missing. */
yajl_val gdn_it_json_get(yajl_val root, ...) __attribute__((sentinel));

/** The string at the end of the keys, or NULL when missing or not a string. */
const char *gdn_it_json_string(yajl_val root, ...) __attribute__((sentinel));

/**
 * Reads the integer at the end of the keys into `out`.
 * @return 0, or -1 when missing or not an integer.
 */
int gdn_it_json_integer(yajl_val root, long long *out, ...) __attribute__((sentinel));

/** Number of entries of an array value; 0 for anything else. */
size_t gdn_it_json_length(yajl_val array);

/** Entry `i` of an array value, or NULL. */
yajl_val gdn_it_json_at(yajl_val array, size_t i);

/**
 * POST /tasks with `body`; on 200 copies the new task's id into `id` (GDN_IT_ID_SIZE bytes).
 * @return the HTTP status, or 0 when no answer arrived.
 */
long gdn_it_create_task(gdn_it_client_t *client, const char *body, char *id);

/**
 * GET /poll/next for `worker` with `roles` (NULL to leave it out). On 200 copies the claimed
 * task's id into `id`, or an empty string when no task was available.
 * @return the HTTP status, or 0 when no answer arrived.
 */
long gdn_it_poll(gdn_it_client_t *client, const char *worker, const char *roles, char *id);

/**
 * POST /poll/complete for task `id` with `result` (JSON text) and `status` (NULL for the
 * default).
 * @return the HTTP status, or 0 when no answer arrived.
 */
long gdn_it_complete(gdn_it_client_t *client, const char *id, const char *result,
                     const char *status);

/** The integer field `name` of GET /stats, or -1 when it cannot be read. */
long long gdn_it_stat(gdn_it_client_t *client, const char *name);

/*
 * The test S3 service of tests/s3 (s3rver behind the SigV4-checking front) and the comparison
 * of a bucket with the journal. The scripts are found through GDN_S3_DIR, which ctest sets for
 * the tests that need them. The bucket is read from s3rver directly, around the front, so that
 * the front's counters hold the server's requests alone and reads work during its outages.
 */

/** The key pair the front accepts and the servers under test are given. */
#define GDN_IT_S3_ACCESS_KEY "garden-test"
#define GDN_IT_S3_SECRET_KEY "garden-test-secret"
#define GDN_IT_S3_REGION "us-east-1"

/** A growable list of strings, sorted on demand for lookups. */
typedef struct gdn_it_strs {
    char **items;
    size_t count;
    size_t cap;
} gdn_it_strs_t;

/** Appends a copy of `text`. @return 0 or -ENOMEM. */
int gdn_it_strs_push(gdn_it_strs_t *list, const char *text);

/** Frees the strings and the list's storage, and zeroes it. */
void gdn_it_strs_free(gdn_it_strs_t *list);

/** Sorts the list for gdn_it_strs_has. */
void gdn_it_strs_sort(gdn_it_strs_t *list);

/** Tells whether a list sorted by gdn_it_strs_sort holds `text`. */
int gdn_it_strs_has(const gdn_it_strs_t *list, const char *text);

/** The records a journal, and so its bucket, should hold. */
typedef struct gdn_it_records {
    gdn_it_strs_t tasks;     /**< task ids: one task:{id} each */
    gdn_it_strs_t completed; /**< finished (completed or failed) task ids: one completed:{id} */
    gdn_it_strs_t workers;   /**< worker ids: one worker:{id} each */
} gdn_it_records_t;

/** Frees the three lists. */
void gdn_it_records_free(gdn_it_records_t *records);

/**
 * Fills `out` (overwritten, not freed first) with every record the server's API shows: tasks
 * of every status, paged through GET /tasks?status=, and the workers of GET /poll/workers.
 * @return 0, or -1 when a listing could not be read.
 */
int gdn_it_records_from_api(gdn_it_client_t *client, gdn_it_records_t *out);

/** One running test S3 service. */
typedef struct gdn_it_s3 {
    char scripts[GDN_IT_PATH_MAX]; /**< tests/s3 */
    char state[GDN_IT_DIR_MAX];    /**< STATE_DIR given to start.sh */
    int s3_port;                   /**< the front */
    int control_port;              /**< the front's control API */
    int s3rver_port;               /**< s3rver itself */
    int running;                   /**< 1 once start.sh ran: stop.sh must run */
    gdn_it_server_t control;       /**< only its port is used, by the control calls */
} gdn_it_s3_t;

/**
 * Starts the service with tests/s3/start.sh on free ports, accepting the GDN_IT_S3_* key
 * pair. Call from a suite's init function, and gdn_it_s3_stop from its cleanup.
 * @return 0, or -1 after printing start.sh's output and stopping what did start.
 */
int gdn_it_s3_start(gdn_it_s3_t *s3);

/** Stops the service by its recorded pids and removes its state directory. */
void gdn_it_s3_stop(gdn_it_s3_t *s3);

/** Sends one request to the front's control API; the caller frees `res`. Returns the status. */
long gdn_it_s3_control_call(const gdn_it_s3_t *s3, const char *method, const char *path,
                            const char *body, gdn_it_response_t *res);

/** Sends one control request, printing any answer but 200. Returns the status. */
long gdn_it_s3_control(const gdn_it_s3_t *s3, const char *method, const char *path,
                       const char *body);

/**
 * Reads the integer counter `group`.`name` (name may be NULL) of the front's /stats. A counter
 * the front has not created yet is 0; -1 means /stats could not be read.
 */
long long gdn_it_s3_counter(const gdn_it_s3_t *s3, const char *group, const char *name);

/**
 * Writes the config of `srv`, pointing it at the front with `bucket`, `secret` and `extra`
 * config lines (may be NULL). S3 timeouts and retries are kept short, and 2 loop threads.
 * @return 0 or -errno.
 */
int gdn_it_s3_configure(gdn_it_server_t *srv, const gdn_it_s3_t *s3, const char *bucket,
                        const char *secret, const char *extra);

/**
 * Checks that `bucket` holds exactly the records of `exp` and that every object equals what
 * the server's API shows for its record, byte for byte, with its metadata. The two fields
 * whose bucket copy the README says may lag (a task's lease_expires_at, a worker's
 * last_heartbeat, both moved by heartbeats) may hold an earlier time. Failures are CUnit
 * assertions too.
 * @return the number of mismatches (missing, extra or different objects).
 */
int gdn_it_s3_compare_bucket(const gdn_it_s3_t *s3, gdn_it_client_t *client, const char *bucket,
                             const gdn_it_records_t *exp);

/** Reads /health: the backlog and the bucket state ("ok", "degraded", "disabled"). 0 or -1. */
int gdn_it_read_health(gdn_it_client_t *client, long long *backlog, char *state, size_t size);

/** Waits until the backlog is 0 and /health says s3 ok. Returns 0, or -1 after `limit_s`. */
int gdn_it_wait_flushed(gdn_it_client_t *client, double limit_s);

/** Waits until /health says s3 degraded with records waiting. Returns 0, or -1. */
int gdn_it_wait_degraded(gdn_it_client_t *client, double limit_s, long long *backlog);

/** GETs `path` and hands its body over to `*body` (malloc'd). Returns the HTTP status. */
long gdn_it_fetch_body(gdn_it_client_t *client, const char *path, char **body, size_t *len);

#endif
