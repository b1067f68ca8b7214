/*
 * The HTTP server: h2o on a pool of loop threads, and the request handlers of the API.
 *
 * server.c owns the threads, listeners, TLS and shutdown; routes.c routes requests and answers
 * reads; writes.c handles writes and long polls. Each loop thread has a gdn_loop_t; handlers
 * find it from the request's context.
 */
#ifndef GDN_HTTP_H
#define GDN_HTTP_H

#include <h2o.h>
#include <stdint.h>

#include "gdn/auth.h"
#include "gdn/config.h"
#include "gdn/flusher.h"
#include "gdn/journal.h"
#include "gdn/metrics.h"
#include "gdn/queue.h"
#include "gdn/writer.h"

typedef struct gdn_server gdn_server_t;

/** The routes of the API, as metrics and the access log name them. */
typedef enum gdn_route {
    GDN_ROUTE_HEALTH,
    GDN_ROUTE_STATS,
    GDN_ROUTE_METRICS,
    GDN_ROUTE_TASKS_LIST,
    GDN_ROUTE_TASKS_CREATE,
    GDN_ROUTE_TASK_GET,
    GDN_ROUTE_TASK_CANCEL,
    GDN_ROUTE_POLL_REGISTER,
    GDN_ROUTE_POLL_HEARTBEAT,
    GDN_ROUTE_POLL_NEXT,
    GDN_ROUTE_POLL_COMPLETE,
    GDN_ROUTE_POLL_WORKERS,
    GDN_ROUTE_PREFLIGHT,
    GDN_ROUTE_OTHER, /**< unknown paths and methods */
    GDN_ROUTE_COUNT,
} gdn_route_t;

/** The status codes counted one by one; any other is counted as "other". */
#define GDN_HTTP_STATUS_SLOTS 14

/** Request counts and latencies of one loop thread: written by it, read by any thread. */
typedef struct gdn_http_metrics {
    atomic_uint_least64_t requests[GDN_ROUTE_COUNT][GDN_HTTP_STATUS_SLOTS];
    gdn_histogram_t latency_us[GDN_ROUTE_COUNT];
} gdn_http_metrics_t;

/** One h2o timeout per whole second a poll may wait, 1 to 30 (index 0 unused). */
#define GDN_LOOP_WAIT_TIMEOUTS 31

/** The state of one loop thread. Touched only by that thread unless said otherwise. */
typedef struct gdn_loop {
    h2o_context_t ctx; /**< the thread's h2o context and event loop */
    h2o_accept_ctx_t accept_ctx;
    const gdn_config_t *config;
    const gdn_queue_policy_t *policy;
    gdn_journal_t *journal;
    gdn_journal_reader_t *reader; /**< this thread's read transactions */
    const gdn_auth_t *auth;       /**< NULL when no tokens are configured: anyone may call */
    gdn_writer_t *writer;
    gdn_flusher_t *flusher;                 /**< NULL when no bucket is configured */
    h2o_multithread_receiver_t replies;     /**< finished write operations, sent by the writer */
    h2o_multithread_receiver_t control;     /**< shutdown requests, sent by the main thread */
    h2o_multithread_message_t stop_message; /**< the one control message, owned by the loop */
    h2o_socket_t *listener;                 /**< NULL once the thread stopped accepting */
    int listen_fd;
    uint64_t in_flight; /**< requests waiting for the journal writer, or parked polls */
    h2o_timeout_t wait_timeouts[GDN_LOOP_WAIT_TIMEOUTS]; /**< long-poll deadlines */
    h2o_timeout_t sweep_timeout;     /**< how often waiting HTTP/1.1 polls are checked */
    h2o_timeout_entry_t sweep_entry; /**< the next check */
    int stopping;
    int64_t answered_at_us; /**< while stopping: since when nothing is in flight */
    int abandoned;          /**< exited with connections still open */
    pthread_t thread;
    gdn_server_t *server;
    gdn_http_metrics_t metrics;
} gdn_loop_t;

/**
 * Creates the listeners, starts `config->threads` loop threads (one per core when 0) and
 * returns once all of them accept connections.
 *
 * @param journal an open journal; @param writer a started writer; @param flusher a started
 *        flusher, or NULL without a bucket. All three outlive the server.
 * @return 0 and *out set; -errno if a listener cannot be bound (logged with the address);
 *         GDN_ECONFIG if the TLS certificate or key cannot be loaded (logged).
 *         Main thread only.
 */
int gdn_server_start(gdn_server_t **out, const gdn_config_t *config, gdn_journal_t *journal,
                     gdn_writer_t *writer, gdn_flusher_t *flusher);

/**
 * Shuts the server down gracefully: every thread stops accepting, asks its connections to
 * close, answers what is in flight, and exits; waits at most `drain_ms` for that. Then frees
 * the server. Main thread only. NULL-safe.
 */
void gdn_server_stop(gdn_server_t *server, int drain_ms);

/**
 * Registers the API's handler, and the logger that counts requests and writes the access
 * log, on a host configuration. Call once before any thread starts.
 * @return 0 or -ENOMEM.
 */
int gdn_routes_register(h2o_hostconf_t *hostconf);

/** Names the route a request took, from its method and path. Loop threads. */
gdn_route_t gdn_route_of(h2o_req_t *req);

/** Returns the route's label, such as "GET /tasks/{id}". */
const char *gdn_route_label(gdn_route_t route);

/** Returns the number of loop threads, and one of them. Any thread, while the server runs. */
int gdn_server_loop_count(const gdn_server_t *server);
const gdn_loop_t *gdn_server_loop(const gdn_server_t *server, int index);

/** Sets up a loop's request metrics. Main thread, before the loop starts. */
void gdn_observe_init(gdn_loop_t *loop);

/**
 * Registers the logger that counts each finished request and, with `access_log` set, writes
 * its access-log line. Call once before any thread starts. @return 0 or -ENOMEM.
 */
int gdn_observe_register(h2o_pathconf_t *pathconf);

/**
 * Marks the moment the handler receives a complete request, from which its duration is counted
 * to the end of its answer. Call first thing in the handler. Loop threads.
 */
void gdn_observe_request_start(h2o_req_t *req);

/** Answers GET /metrics. Loop threads. */
int gdn_observe_metrics(h2o_req_t *req);

/** Returns the loop a request is served on. */
static inline gdn_loop_t *gdn_loop_of(h2o_req_t *req)
{
    return (gdn_loop_t *)((char *)req->conn->ctx - offsetof(gdn_loop_t, ctx));
}

#endif
