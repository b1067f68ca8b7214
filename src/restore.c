/*
 * Restore: rebuild the journal from the bucket.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdn/clock.h"
#include "gdn/error.h"
#include "gdn/log.h"
#include "gdn/queue.h"
#include "gdn/restore.h"
#include "gdn/s3.h"

/* Objects read and stored per step: one synced commit each. */
#define RESTORE_CHUNK 512
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

    if (rc != 0)
        gdn_log(GDN_LOG_ERROR, "restore", "s3_unusable", "reason=\"%s\"", err);
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

static int list_all(gdn_s3_t *s3, key_list_t *list, int progress)
{
    char *token = NULL;

    do {
        gdn_s3_request_t failed = {0};
        char *next = NULL;
        int rc = gdn_s3_list_page(s3, token, LIST_PAGE, on_listed_key, list, &next, &failed);

        free(token);
        token = next;
        if (rc != 0) {
            gdn_log(GDN_LOG_ERROR, "restore", "list_failed", "code=%s", gdn_s3_failure(&failed));
            gdn_s3_request_reset(&failed);
            free(token);
            return -EIO;
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

/* Reads keys[from, to) with several GETs in flight and stores them in one transaction. */
static int restore_chunk(gdn_s3_t *s3, gdn_journal_t *journal, const gdn_config_t *config,
                         char **keys, size_t count, gdn_restore_report_t *report)
{
    gdn_s3_request_t requests[RESTORE_CHUNK];
    gdn_journal_txn_t *txn = NULL;
    int rc = 0;

    memset(requests, 0, sizeof(requests));
    for (size_t i = 0; i < count; i++) {
        requests[i].method = "GET";
        requests[i].key = keys[i];
    }
    gdn_s3_perform(s3, requests, count);
    for (size_t i = 0; i < count && rc == 0; i++) {
        if (!gdn_s3_ok(&requests[i])) {
            gdn_log(GDN_LOG_ERROR, "restore", "get_failed", "key=%s code=%s", keys[i],
                    gdn_s3_failure(&requests[i]));
            rc = -EIO;
        }
    }
    if (rc == 0)
        rc = gdn_journal_write_begin(journal, &txn);
    gdn_queue_policy_t policy;

    gdn_queue_policy_init(&policy, config);
    for (size_t i = 0; i < count && rc == 0; i++)
        rc = store_object(txn, &policy, keys[i], &requests[i], report);
    if (txn != NULL && rc == 0)
        rc = gdn_journal_commit(txn);
    else
        gdn_journal_abort(txn);
    for (size_t i = 0; i < count; i++)
        gdn_s3_request_reset(&requests[i]);
    return rc;
}

/* Checks the journal is empty, or empties it when replacing. */
static int prepare_journal(gdn_journal_t *journal, int replace)
{
    gdn_journal_txn_t *txn;
    int rc = gdn_journal_write_begin(journal, &txn);

    if (rc != 0)
        return rc;

    int64_t records = gdn_journal_record_count(txn);

    if (records < 0) {
        rc = (int)records;
    } else if (records > 0 && !replace) {
        rc = GDN_ECONFLICT;
    } else {
        rc = gdn_journal_clear(txn);
        if (rc == 0)
            return gdn_journal_commit(txn);
    }
    gdn_journal_abort(txn);
    return rc;
}

int gdn_restore_run(const gdn_config_t *config, gdn_journal_t *journal, int replace, int progress,
                    gdn_restore_report_t *report)
{
    int64_t started = gdn_clock_now_us();
    gdn_s3_t *s3 = NULL;
    key_list_t list = {0};

    memset(report, 0, sizeof(*report));

    int rc = prepare_journal(journal, replace);

    if (rc == 0)
        rc = open_client(config, &s3);
    if (rc == 0)
        rc = list_all(s3, &list, progress);
    report->listed = list.count;
    for (size_t at = 0; rc == 0 && at < list.count; at += RESTORE_CHUNK) {
        size_t count = list.count - at < RESTORE_CHUNK ? list.count - at : RESTORE_CHUNK;

        rc = restore_chunk(s3, journal, config, list.keys + at, count, report);
        if (progress)
            fprintf(stderr, "\rrestore: %zu/%zu objects", at + count, list.count);
    }
    if (progress && list.count > 0)
        fprintf(stderr, "\n");
    report->elapsed_us = gdn_clock_now_us() - started;
    free_keys(&list);
    gdn_s3_close(s3);
    return rc;
}
