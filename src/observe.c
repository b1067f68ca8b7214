/*
 * What the server tells its operators about itself: request counts and latencies, the access
 * log, and GET /metrics in the Prometheus text format.
 *
 * Every finished request passes through an h2o logger on its loop thread, which counts it in
 * that loop's own counters; /metrics adds the loops together. Relaxed atomics make the counters
 * safe to read from another loop without making the loop that writes them wait.
 */
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "gdn/clock.h"
#include "gdn/http.h"
#include "gdn/log.h"
#include "gdn/queue.h"
#include "gdn/respond.h"
#include "gdn/s3.h"

/* The status codes counted one by one; the last slot counts any other. */
static const int status_codes[GDN_HTTP_STATUS_SLOTS - 1] = {200, 400, 401, 403, 404, 405, 408,
                                                            409, 413, 422, 431, 500, 503};

/* Most roles /metrics lists; the rest are left out rather than let clients grow the output
 * without bound by inventing role names. */
#define ROLES_MAX 1000

static const char *const s3_kind_names[GDN_S3_KIND_COUNT] = {"head", "get", "put", "post",
                                                             "delete"};

static int64_t process_started_us;

void gdn_observe_init(gdn_loop_t *loop)
{
    if (process_started_us == 0)
        process_started_us = gdn_clock_now_us();
    for (int r = 0; r < GDN_ROUTE_COUNT; r++) {
        for (int s = 0; s < GDN_HTTP_STATUS_SLOTS; s++)
            atomic_init(&loop->metrics.requests[r][s], 0);
        gdn_histogram_init(&loop->metrics.latency_us[r], gdn_metrics_latency_bounds_us,
                           gdn_metrics_latency_bound_count);
    }
}

static int status_slot(int status)
{
    for (int i = 0; i < GDN_HTTP_STATUS_SLOTS - 1; i++)
        if (status_codes[i] == status)
            return i;
    return GDN_HTTP_STATUS_SLOTS - 1;
}

/*
 * h2o's own timestamps come from a cache refreshed at most once per millisecond and event-loop
 * turn: its start and end of a request answered within one turn are equal however long the
 * answer took, and a start can be a millisecond early. So the handler overwrites the moment h2o
 * records as the start of processing with a reading of the clock, and the logger, which runs
 * when the answer has been sent, reads the clock again.
 */
void gdn_observe_request_start(h2o_req_t *req)
{
    gettimeofday(&req->processed_at.at, NULL);
}

/* Microseconds from gdn_observe_request_start to the end of the answer. A request that h2o
 * answered itself, without the handler, is timed from its cached start instead. */
static uint64_t request_duration_us(h2o_req_t *req)
{
    struct timeval *start = &req->processed_at.at;
    struct timeval now;

    if (h2o_timeval_is_null(start))
        start = &req->timestamps.request_begin_at;
    gettimeofday(&now, NULL);

    int64_t us = (int64_t)(now.tv_sec - start->tv_sec) * 1000000 + (now.tv_usec - start->tv_usec);

    return us > 0 ? (uint64_t)us : 0;
}

/*
 * Writes the access-log line of a request. The token is named, never shown; the query string
 * is left out, since it may carry worker ids and cursors nobody needs in a log.
 */
static void log_request(gdn_loop_t *loop, h2o_req_t *req, gdn_route_t route, uint64_t us)
{
    char method[16];
    char path[256];
    char peer[NI_MAXHOST] = "-";
    const char *token = "-";
    struct sockaddr_storage sa;
    socklen_t sa_len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&sa);

    if (sa_len > 0 && h2o_socket_getnumerichost((struct sockaddr *)&sa, sa_len, peer) == SIZE_MAX)
        snprintf(peer, sizeof(peer), "-");
    snprintf(method, sizeof(method), "%.*s", (int)(req->method.len < 15 ? req->method.len : 15),
             req->method.base);
    if (loop->auth != NULL) {
        ssize_t at = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
        const gdn_auth_token_t *found =
            at < 0 ? NULL
                   : gdn_auth_find(loop->auth, req->headers.entries[at].value.base,
                                   req->headers.entries[at].value.len);

        token = found != NULL ? gdn_auth_name(found) : "-";
    }

    char quoted_method[40];

    gdn_log(
        GDN_LOG_INFO, "http", "request",
        "method=%s path=%s route=\"%s\" status=%d ms=%.3f bytes=%zu proto=%s peer=%s "
        "token=%s",
        gdn_log_quote(method, quoted_method, sizeof(quoted_method)),
        gdn_log_quote_n(req->path_normalized.base, req->path_normalized.len, path, sizeof(path)),
        gdn_route_label(route), req->res.status, (double)us / 1000.0, req->bytes_sent,
        req->version >= 0x200 ? "h2" : "http/1.1", peer, token);
}

static void on_log_access(h2o_logger_t *self, h2o_req_t *req)
{
    (void)self;
    gdn_loop_t *loop = gdn_loop_of(req);
    gdn_route_t route = gdn_route_of(req);
    uint64_t us = request_duration_us(req);

    atomic_fetch_add_explicit(&loop->metrics.requests[route][status_slot(req->res.status)], 1,
                              memory_order_relaxed);
    gdn_histogram_observe(&loop->metrics.latency_us[route], us);
    if (loop->config->access_log)
        log_request(loop, req, route, us);
}

int gdn_observe_register(h2o_pathconf_t *pathconf)
{
    h2o_logger_t *logger = h2o_create_logger(pathconf, sizeof(*logger));

    if (logger == NULL)
        return -ENOMEM;
    logger->log_access = on_log_access;
    return 0;
}

/* ---- GET /metrics ---- */

static void render_http(gdn_buf_t *out, const gdn_server_t *server)
{
    int loops = gdn_server_loop_count(server);
    char labels[160];

    gdn_metrics_family(out, "garden_http_requests_total", "counter",
                       "Answered requests by route and status code.");
    for (int r = 0; r < GDN_ROUTE_COUNT; r++) {
        for (int s = 0; s < GDN_HTTP_STATUS_SLOTS; s++) {
            uint64_t total = 0;

            for (int i = 0; i < loops; i++)
                total += atomic_load_explicit(&gdn_server_loop(server, i)->metrics.requests[r][s],
                                              memory_order_relaxed);
            if (total == 0)
                continue;

            char status[16] = "other";

            if (s < GDN_HTTP_STATUS_SLOTS - 1)
                snprintf(status, sizeof(status), "%d", status_codes[s]);
            labels[0] = '\0';
            gdn_metrics_label(labels, sizeof(labels), "route", gdn_route_label((gdn_route_t)r),
                              strlen(gdn_route_label((gdn_route_t)r)));
            gdn_metrics_label(labels, sizeof(labels), "status", status, strlen(status));
            gdn_metrics_sample_u64(out, "garden_http_requests_total", labels, total);
        }
    }

    gdn_metrics_family(
        out, "garden_http_request_duration_seconds", "histogram",
        "Time from the handler receiving a whole request to the end of its answer, by route; "
        "long polls include their wait.");
    for (int r = 0; r < GDN_ROUTE_COUNT; r++) {
        gdn_histogram_sum_t sum;

        gdn_histogram_sum_init(&sum, &gdn_server_loop(server, 0)->metrics.latency_us[r]);
        for (int i = 0; i < loops; i++)
            gdn_histogram_sum_add(&sum, &gdn_server_loop(server, i)->metrics.latency_us[r]);
        if (sum.count == 0)
            continue;
        labels[0] = '\0';
        gdn_metrics_label(labels, sizeof(labels), "route", gdn_route_label((gdn_route_t)r),
                          strlen(gdn_route_label((gdn_route_t)r)));
        gdn_metrics_histogram(out, "garden_http_request_duration_seconds", labels, &sum, 1e6);
    }
}

/* Task counts, workers and the queue per role, from one read transaction. */
static int render_queue(gdn_buf_t *out, gdn_loop_t *loop, int64_t now_us)
{
    gdn_journal_role_depth_t *roles = calloc(ROLES_MAX, sizeof(*roles));
    gdn_queue_stats_t stats;
    gdn_journal_txn_t *txn;
    int rc = roles == NULL ? -ENOMEM : gdn_journal_read_begin(loop->reader, &txn);
    int role_count = 0;
    int64_t records = 0;

    if (rc == 0) {
        rc = gdn_queue_stats(txn, now_us, &stats);
        if (rc == 0)
            role_count = gdn_journal_pending_roles(txn, roles, ROLES_MAX);
        if (rc == 0 && role_count < 0)
            rc = role_count;
        records = gdn_journal_record_count(txn);
        gdn_journal_read_end(loop->reader);
    }
    if (rc != 0) {
        free(roles);
        return rc;
    }

    char labels[GDN_JOURNAL_ROLE_MAX * 2 + 32];

    gdn_metrics_family(out, "garden_tasks", "gauge", "Tasks in the journal by status.");
    for (int s = 0; s < GDN_TASK_STATUS_COUNT; s++) {
        const char *name = gdn_task_status_name((gdn_task_status_t)s);

        labels[0] = '\0';
        gdn_metrics_label(labels, sizeof(labels), "status", name, strlen(name));
        gdn_metrics_sample(out, "garden_tasks", labels, (double)stats.by_status[s]);
    }
    gdn_metrics_family(out, "garden_workers", "gauge",
                       "Workers heard from within worker_ttl_s (live), and all registered.");
    gdn_metrics_sample(out, "garden_workers", "state=\"live\"", (double)stats.active_workers);
    gdn_metrics_sample(out, "garden_workers", "state=\"registered\"", (double)stats.workers);

    gdn_metrics_family(out, "garden_queue_depth", "gauge",
                       "Tasks that can be claimed now, by role.");
    for (int i = 0; i < role_count; i++) {
        labels[0] = '\0';
        gdn_metrics_label(labels, sizeof(labels), "role", roles[i].role, strlen(roles[i].role));
        gdn_metrics_sample(out, "garden_queue_depth", labels, (double)roles[i].depth);
    }
    gdn_metrics_family(out, "garden_queue_oldest_age_seconds", "gauge",
                       "Age of the oldest task that can be claimed now, by role.");
    for (int i = 0; i < role_count; i++) {
        int64_t age = now_us - roles[i].oldest_created_us;

        labels[0] = '\0';
        gdn_metrics_label(labels, sizeof(labels), "role", roles[i].role, strlen(roles[i].role));
        gdn_metrics_sample(out, "garden_queue_oldest_age_seconds", labels,
                           age > 0 ? (double)age / 1e6 : 0.0);
    }
    gdn_metrics_family(out, "garden_journal_records", "gauge",
                       "Records in the journal: tasks and workers.");
    gdn_metrics_sample(out, "garden_journal_records", NULL, (double)records);
    gdn_metrics_family(out, "garden_upload_backlog", "gauge",
                       "Changes committed to the journal and not yet uploaded to the bucket.");
    gdn_metrics_sample(out, "garden_upload_backlog", NULL, (double)stats.dirty_records);
    free(roles);
    return 0;
}

static void render_journal(gdn_buf_t *out, gdn_loop_t *loop)
{
    gdn_writer_stats_t writer;
    gdn_histogram_sum_t commit_us;
    gdn_histogram_sum_t batch_ops;
    uint64_t map_bytes = 0;
    uint64_t used_bytes = 0;

    gdn_writer_stats(loop->writer, &writer);
    gdn_writer_histograms(loop->writer, &commit_us, &batch_ops);
    gdn_metrics_family(out, "garden_journal_commits_total", "counter",
                       "Synced journal transactions.");
    gdn_metrics_sample_u64(out, "garden_journal_commits_total", NULL, writer.batches);
    gdn_metrics_family(out, "garden_journal_operations_total", "counter",
                       "Write operations committed.");
    gdn_metrics_sample_u64(out, "garden_journal_operations_total", NULL, writer.ops);
    gdn_metrics_family(out, "garden_journal_failed_operations_total", "counter",
                       "Write operations the journal refused (full map, disk error).");
    gdn_metrics_sample_u64(out, "garden_journal_failed_operations_total", NULL, writer.failed_ops);
    gdn_metrics_family(out, "garden_journal_commit_duration_seconds", "histogram",
                       "Time to commit and sync one journal transaction.");
    gdn_metrics_histogram(out, "garden_journal_commit_duration_seconds", NULL, &commit_us, 1e6);
    gdn_metrics_family(out, "garden_journal_batch_operations", "histogram",
                       "Write operations committed together in one transaction.");
    gdn_metrics_histogram(out, "garden_journal_batch_operations", NULL, &batch_ops, 1.0);
    if (gdn_journal_usage(loop->journal, &map_bytes, &used_bytes) == 0) {
        gdn_metrics_family(out, "garden_journal_map_bytes", "gauge",
                           "Size of the journal's memory map (journal_map_mb).");
        gdn_metrics_sample_u64(out, "garden_journal_map_bytes", NULL, map_bytes);
        gdn_metrics_family(out, "garden_journal_used_bytes", "gauge",
                           "Bytes of the map in use; writes fail with 503 when it is full.");
        gdn_metrics_sample_u64(out, "garden_journal_used_bytes", NULL, used_bytes);
    }
}

static void render_s3(gdn_buf_t *out, gdn_loop_t *loop, int64_t now_us)
{
    gdn_s3_counters_t s3;
    char labels[64];

    gdn_s3_counters(&s3);
    gdn_metrics_family(out, "garden_s3_requests_total", "counter",
                       "S3 requests by kind and outcome (error: no answer, or not 2xx).");
    for (int k = 0; k < GDN_S3_KIND_COUNT; k++) {
        snprintf(labels, sizeof(labels), "kind=\"%s\",outcome=\"ok\"", s3_kind_names[k]);
        gdn_metrics_sample_u64(out, "garden_s3_requests_total", labels, s3.successes[k]);
        snprintf(labels, sizeof(labels), "kind=\"%s\",outcome=\"error\"", s3_kind_names[k]);
        gdn_metrics_sample_u64(out, "garden_s3_requests_total", labels, s3.failures[k]);
    }

    gdn_flusher_stats_t flusher;

    memset(&flusher, 0, sizeof(flusher));
    if (loop->flusher != NULL)
        gdn_flusher_stats(loop->flusher, &flusher);
    gdn_metrics_family(out, "garden_bucket_up", "gauge",
                       "1 while uploads to the bucket succeed, 0 while they fail or no bucket "
                       "is configured.");
    gdn_metrics_sample(out, "garden_bucket_up", NULL,
                       loop->flusher != NULL && !flusher.degraded ? 1.0 : 0.0);
    gdn_metrics_family(out, "garden_flush_uploads_total", "counter", "Objects uploaded.");
    gdn_metrics_sample_u64(out, "garden_flush_uploads_total", NULL, flusher.puts);
    gdn_metrics_family(out, "garden_flush_deletes_total", "counter", "Objects deleted.");
    gdn_metrics_sample_u64(out, "garden_flush_deletes_total", NULL, flusher.deletes);
    gdn_metrics_family(out, "garden_flush_lag_seconds", "gauge",
                       "How long the oldest change not yet uploaded has waited, to within one "
                       "flush interval; 0 when nothing waits.");
    gdn_metrics_sample(out, "garden_flush_lag_seconds", NULL,
                       flusher.lag_since_us > 0 && now_us > flusher.lag_since_us
                           ? (double)(now_us - flusher.lag_since_us) / 1e6
                           : 0.0);
    if (flusher.last_flush_us > 0) {
        gdn_metrics_family(out, "garden_flush_last_success_timestamp_seconds", "gauge",
                           "When the last flush round that uploaded all it read ended.");
        gdn_metrics_sample(out, "garden_flush_last_success_timestamp_seconds", NULL,
                           (double)flusher.last_flush_us / 1e6);
    }
}

/* Resident memory and open descriptors, from /proc, as Prometheus clients name them. */
static void render_process(gdn_buf_t *out)
{
    FILE *statm = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    unsigned long resident = 0;

    if (statm != NULL) {
        if (fscanf(statm, "%lu %lu", &pages, &resident) == 2) {
            gdn_metrics_family(out, "process_resident_memory_bytes", "gauge",
                               "Resident memory size in bytes.");
            gdn_metrics_sample(out, "process_resident_memory_bytes", NULL,
                               (double)resident * (double)sysconf(_SC_PAGESIZE));
        }
        fclose(statm);
    }

    DIR *fds = opendir("/proc/self/fd");

    if (fds != NULL) {
        long count = 0;

        while (readdir(fds) != NULL)
            count++;
        closedir(fds);
        gdn_metrics_family(out, "process_open_fds", "gauge", "Open file descriptors.");
        gdn_metrics_sample(out, "process_open_fds", NULL, (double)(count > 3 ? count - 3 : 0));
    }
    gdn_metrics_family(out, "process_start_time_seconds", "gauge",
                       "Start time of the process since the epoch, in seconds.");
    gdn_metrics_sample(out, "process_start_time_seconds", NULL, (double)process_started_us / 1e6);
}

int gdn_observe_metrics(h2o_req_t *req)
{
    gdn_loop_t *loop = gdn_loop_of(req);
    int64_t now_us = gdn_clock_now_us();
    gdn_buf_t out = GDN_BUF_INIT;
    char labels[64];

    snprintf(labels, sizeof(labels), "version=\"%s\"", GDN_VERSION);
    gdn_metrics_family(&out, "garden_build_info", "gauge", "The running version; always 1.");
    gdn_metrics_sample(&out, "garden_build_info", labels, 1.0);
    render_http(&out, loop->server);

    int rc = render_queue(&out, loop, now_us);

    render_journal(&out, loop);
    render_s3(&out, loop, now_us);
    render_process(&out);

    size_t len;
    char *body = gdn_buf_take(&out, &len);

    if (rc != 0 || body == NULL) {
        free(body);
        return gdn_respond_unavailable(req, rc != 0 ? rc : -ENOMEM);
    }
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; version=0.0.4; charset=utf-8"));
    h2o_send_inline(req, body, len);
    free(body);
    return 0;
}
