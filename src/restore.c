/*
 * Restore: rebuild the journal from the bucket.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gdn/clock.h"
#include "gdn/error.h"
#include "gdn/log.h"
#include "gdn/queue.h"
#include "gdn/restore.h"
#include "gdn/s3.h"

/* Objects read per step, with flush_concurrency GETs in flight. */
#define RESTORE_CHUNK 512
/* Tries of each listing page and each GET before the restore gives up. */
#define RESTORE_ATTEMPTS 5
/* Keys per listing page (the S3 maximum). */
#define LIST_PAGE 1000

typedef struct key_list {
    char **keys;
    size_t count;
    size_t cap;
    int failed;
} key_list_t;

static void on_listed_key(void *arg, const char *key, size_t key_len)
{
    key_list_t *list = arg;

    if (list->failed)
        return;
    if (list->count == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 1024;
        char **grown = realloc(list->keys, cap * sizeof(*grown));

        if (grown == NULL) {
            list->failed = 1;
            return;
        }
        list->keys = grown;
        list->cap = cap;
    }
    list->keys[list->count] = strndup(key, key_len);
    if (list->keys[list->count] == NULL)
        list->failed = 1;
    else
        list->count++;
}

static void free_keys(key_list_t *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->keys[i]);
    free(list->keys);
    memset(list, 0, sizeof(*list));
}

static int open_client(const gdn_config_t *config, gdn_s3_t **s3)
{
    gdn_s3_config_t s3_config;

    gdn_s3_config_init(&s3_config, config);
    char err[256] = "";
    int rc = gdn_s3_open(s3, &s3_config, err, sizeof(err));

    if (rc != 0) {
        char quoted[320];

        gdn_log(GDN_LOG_ERROR, "restore", "s3_unusable", "reason=%s",
                gdn_log_quote(err, quoted, sizeof(quoted)));
    }
    return rc;
}

static void note_list_failure(gdn_s3_request_t *failed, char *reason, size_t reason_size)
{
    snprintf(reason, reason_size, "%s", gdn_s3_failure(failed));
    gdn_s3_request_reset(failed);
}

int gdn_restore_probe(const gdn_config_t *config, int *has, char *reason, size_t reason_size)
{
    gdn_s3_t *s3;
    int rc = open_client(config, &s3);

    *has = 0;
    if (rc != 0) {
        snprintf(reason, reason_size, "unusable S3 endpoint");
        return rc;
    }

    key_list_t list = {0};
    gdn_s3_request_t failed = {0};
    char *next = NULL;

    rc = gdn_s3_list_page(s3, NULL, 1, on_listed_key, &list, &next, &failed);
    if (rc != 0 && strcmp(failed.error_code, "NoSuchBucket") == 0) {
        rc = 0;
        gdn_s3_request_reset(&failed);
    } else if (rc != 0) {
        note_list_failure(&failed, reason, reason_size);
    }
    *has = list.count > 0 || next != NULL;
    free(next);
    free_keys(&list);
    gdn_s3_close(s3);
    return rc;
}

/* Sleeps before retry `attempt` (1, 2, ...) of a failed S3 request: 250 ms, doubling. */
static void pause_before_retry(int attempt)
{
    long ms = 250L << (attempt - 1);
    struct timespec pause = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

    nanosleep(&pause, NULL);
}

/* Lists one page, retrying a failed listing RESTORE_ATTEMPTS times in all. Keys reach the list
 * only from a page that was read whole, so a retry never lists a key twice. */
static int list_page(gdn_s3_t *s3, const char *token, key_list_t *list, char **next)
{
    for (int attempt = 1;; attempt++) {
        gdn_s3_request_t failed = {0};
        int rc = gdn_s3_list_page(s3, token, LIST_PAGE, on_listed_key, list, next, &failed);
        /* The failure text comes from the S3 endpoint, so it is quoted like any foreign value. */
        char code[160];

        if (rc == 0 || rc != -EIO || attempt == RESTORE_ATTEMPTS) {
            if (rc != 0)
                gdn_log(GDN_LOG_ERROR, "restore", "list_failed", "attempts=%d code=%s", attempt,
                        gdn_log_quote(gdn_s3_failure(&failed), code, sizeof(code)));
            gdn_s3_request_reset(&failed);
            return rc;
        }
        gdn_log(GDN_LOG_WARN, "restore", "list_retried", "attempt=%d code=%s", attempt,
                gdn_log_quote(gdn_s3_failure(&failed), code, sizeof(code)));
        gdn_s3_request_reset(&failed);
        pause_before_retry(attempt);
    }
}

static int list_all(gdn_s3_t *s3, key_list_t *list, int progress)
{
    char *token = NULL;

    do {
        char *next = NULL;
        int rc = list_page(s3, token, list, &next);

        free(token);
        token = next;
        if (rc != 0) {
            free(token);
            return rc;
        }
        if (list->failed) {
            free(token);
            return -ENOMEM;
        }
        if (progress)
            fprintf(stderr, "\rrestore: listed %zu objects", list->count);
    } while (token != NULL);
    if (progress)
        fprintf(stderr, "\n");
    return 0;
}

static int store_object(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy, const char *key,
                        const gdn_s3_request_t *got, gdn_restore_report_t *report)
{
    gdn_queue_kind_t kind = GDN_QUEUE_KIND_TASK;
    int rc = GDN_EINVALID;

    if (got->response != NULL)
        rc = gdn_queue_restore(txn, policy, key, got->response, got->response_len, &kind);
    if (rc == GDN_EINVALID) {
        char quoted[300];

        gdn_log(GDN_LOG_WARN, "restore", "object_skipped", "key=%s reason=\"not a record\"",
                gdn_log_quote(key, quoted, sizeof(quoted)));
        report->skipped++;
        return 0;
    }
    if (rc != 0)
        return rc;
    report->restored++;
    report->tasks += kind == GDN_QUEUE_KIND_TASK || kind == GDN_QUEUE_KIND_PENDING_TASK;
    report->pending += kind == GDN_QUEUE_KIND_PENDING_TASK;
    report->completed += kind == GDN_QUEUE_KIND_COMPLETED;
    report->workers += kind == GDN_QUEUE_KIND_WORKER;
    return 0;
}

/* Tells whether a failed GET would fail again: the object is gone, or the request is refused. */
static int get_failed_for_good(const gdn_s3_request_t *request)
{
    return request->http_status == 404 || request->http_status == 403 ||
           request->http_status == 400;
}

/*
 * Reads keys[0, count) into requests[0, count) with several GETs in flight, retrying the failed
 * ones RESTORE_ATTEMPTS times in all, so that a SlowDown or a reset connection does not end a
 * long restore. Failed requests are moved to the front of the array for each retry, so the
 * requests end in another order than the keys: each names its own key. Returns 0 when every
 * request succeeded, or -EIO (logged) when one still failed.
 */
static int read_objects(gdn_s3_t *s3, char **keys, gdn_s3_request_t *requests, size_t count)
{
    size_t pending = count;

    for (size_t i = 0; i < count; i++)
        requests[i] = (gdn_s3_request_t){.method = "GET", .key = keys[i]};
    for (int attempt = 1; pending > 0; attempt++) {
        if (gdn_s3_perform(s3, requests, pending) != 0)
            return -ENOMEM;

        size_t failed = 0;

        for (size_t i = 0; i < pending; i++) {
            if (gdn_s3_ok(&requests[i]))
                continue;
            if (attempt == RESTORE_ATTEMPTS || get_failed_for_good(&requests[i])) {
                char quoted[GDN_JOURNAL_KEY_MAX * 4 + 3];
                char code[160];

                gdn_log(GDN_LOG_ERROR, "restore", "get_failed", "key=%s attempts=%d code=%s",
                        gdn_log_quote(requests[i].key, quoted, sizeof(quoted)), attempt,
                        gdn_log_quote(gdn_s3_failure(&requests[i]), code, sizeof(code)));
                return -EIO;
            }

            gdn_s3_request_t swapped = requests[failed];

            requests[failed++] = requests[i];
            requests[i] = swapped;
        }
        if (failed > 0) {
            char code[160];

            gdn_log(GDN_LOG_WARN, "restore", "get_retried", "attempt=%d objects=%zu code=%s",
                    attempt, failed,
                    gdn_log_quote(gdn_s3_failure(&requests[0]), code, sizeof(code)));
            for (size_t i = 0; i < failed; i++)
                gdn_s3_request_reset(&requests[i]);
            pause_before_retry(attempt);
        }
        pending = failed;
    }
    return 0;
}

/* Reads keys[0, count) and stores them in `txn`. */
static int restore_chunk(gdn_s3_t *s3, gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy,
                         char **keys, size_t count, gdn_restore_report_t *report)
{
    gdn_s3_request_t requests[RESTORE_CHUNK];

    memset(requests, 0, sizeof(requests));

    int rc = read_objects(s3, keys, requests, count);

    for (size_t i = 0; i < count && rc == 0; i++)
        rc = store_object(txn, policy, requests[i].key, &requests[i], report);
    for (size_t i = 0; i < count; i++)
        gdn_s3_request_reset(&requests[i]);
    return rc;
}

/* Checks that the journal holds no record, unless it is to be replaced. */
static int check_journal(gdn_journal_txn_t *txn, int replace)
{
    int64_t records = gdn_journal_record_count(txn);

    if (records < 0)
        return (int)records;
    return records > 0 && !replace ? GDN_ECONFLICT : 0;
}

/* Empties the journal within the restore's transaction. The untracked mark goes too: what the
 * restore stores is what the bucket holds. */
static int empty_journal(gdn_journal_txn_t *txn)
{
    int rc = gdn_journal_clear(txn);

    return rc == 0 ? gdn_journal_clear_untracked(txn) : rc;
}

/*
 * The whole restore is one write transaction: the bucket is listed first, the journal is
 * emptied (when replacing) and filled in that transaction, and it is committed once at the
 * end. A restore that fails at any point, bucket unreachable, an object unreadable, the map
 * full, leaves the journal exactly as it was, so a server started after it neither serves a
 * part of the bucket nor has lost records that --force was to replace. LMDB spills the pages
 * of a large transaction to the file as it goes, so its size is bounded by the map alone; the
 * replaced records' pages are reused only after the commit, so a --force restore needs room for
 * both copies.
 */
int gdn_restore_run(const gdn_config_t *config, gdn_journal_t *journal, int replace, int progress,
                    gdn_restore_report_t *report)
{
    int64_t started = gdn_clock_now_us();
    gdn_s3_t *s3 = NULL;
    gdn_journal_txn_t *txn = NULL;
    key_list_t list = {0};
    gdn_queue_policy_t policy;

    memset(report, 0, sizeof(*report));
    gdn_queue_policy_init(&policy, config);

    int rc = gdn_journal_write_begin(journal, &txn);

    if (rc == 0)
        rc = check_journal(txn, replace);
    if (rc == 0)
        rc = open_client(config, &s3);
    if (rc == 0)
        rc = list_all(s3, &list, progress);
    report->listed = list.count;
    if (rc == 0)
        rc = empty_journal(txn);
    for (size_t at = 0; rc == 0 && at < list.count; at += RESTORE_CHUNK) {
        size_t count = list.count - at < RESTORE_CHUNK ? list.count - at : RESTORE_CHUNK;

        rc = restore_chunk(s3, txn, &policy, list.keys + at, count, report);
        if (progress)
            fprintf(stderr, "\rrestore: %zu/%zu objects", at + count, list.count);
    }
    if (progress && list.count > 0)
        fprintf(stderr, "\n");
    if (txn != NULL && rc == 0)
        rc = gdn_journal_commit(txn);
    else
        gdn_journal_abort(txn);
    report->elapsed_us = gdn_clock_now_us() - started;
    free_keys(&list);
    gdn_s3_close(s3);
    return rc;
}
