/*
 * The flusher: the background thread that copies changed records from the journal to the
 * bucket, so that the bucket holds a full, current copy while S3 writes stay few.
 *
 * Each round it reads the journal's change log oldest first, in short read transactions, and
 * uploads the current version of every changed record once, however often it changed since
 * the last round (within a round, a record is not uploaded again unless it changed since its
 * upload). Deleted records go out as DeleteObjects batches. Then it asks the journal writer to
 * clear the logged changes the uploads covered; a change made while an upload ran has a later
 * version, stays logged, and goes out in the next round.
 *
 * Rounds run every `flush_interval_ms`, or as soon as `flush_batch_max` changes were committed.
 * Failures are retried with exponential backoff and jitter, capped by `flush_retry_max_ms`.
 * The flusher never blocks a request: requests only ever wait for the journal.
 */
#ifndef GDN_FLUSHER_H
#define GDN_FLUSHER_H

#include <stdint.h>

#include "gdn/config.h"
#include "gdn/journal.h"
#include "gdn/writer.h"

typedef struct gdn_flusher gdn_flusher_t;

/** Counters and state for /stats, /health and /metrics. */
typedef struct gdn_flusher_stats {
    uint64_t puts;         /**< objects uploaded */
    uint64_t deletes;      /**< objects deleted */
    uint64_t errors;       /**< failed S3 requests, and keys a DeleteObjects refused */
    uint64_t rounds;       /**< flush rounds that uploaded everything they read */
    int64_t last_flush_us; /**< end of the last successful round; 0 if none yet */
    int degraded;          /**< 1 while the last S3 request of the flusher failed */
    int64_t lag_since_us;  /**< since when the oldest change not yet uploaded has waited, to
                                within one flush interval; 0 when nothing waits */
    char last_error[64];   /**< the kind of the last failure (gdn_s3_failure_kind) */
} gdn_flusher_stats_t;

/**
 * Starts the flusher thread. It checks the bucket (creating it when missing) before its first
 * round, retrying in the background while S3 is unreachable.
 *
 * @param config the S3 and flush settings; must outlive the flusher.
 * @return 0 and *out set; GDN_ECONFIG for an unusable endpoint (logged); -errno.
 */
int gdn_flusher_start(gdn_flusher_t **out, const gdn_config_t *config, gdn_journal_t *journal,
                      gdn_writer_t *writer);

/**
 * Stops the flusher: the round in progress finishes (its transfers are bounded by the S3
 * timeout), no new round starts, and the thread is joined. Changes not yet uploaded stay logged
 * in the journal and are uploaded after the next start. NULL-safe.
 */
void gdn_flusher_stop(gdn_flusher_t *flusher);

/** Tells the flusher that `changes` records were committed. Any thread. */
void gdn_flusher_notify(gdn_flusher_t *flusher, uint64_t changes);

/** Copies the counters. Any thread. */
void gdn_flusher_stats(gdn_flusher_t *flusher, gdn_flusher_stats_t *out);

#endif
