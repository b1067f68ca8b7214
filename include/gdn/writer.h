/*
 * The journal writer: the one thread that writes the journal.
 *
 * Any thread submits write operations. The writer takes everything queued, applies it in one
 * write transaction, commits it with one synced flush, and only then reports each operation
 * done. Batching is what makes synced durability cheap: one fsync covers the whole batch.
 *
 * If a batch fails to commit because a single operation could not be stored (a full map, say),
 * the writer applies the operations again one transaction each, so that only the operations
 * that cannot be stored fail and the others still succeed.
 */
#ifndef GDN_WRITER_H
#define GDN_WRITER_H

#include <stdint.h>

#include "gdn/journal.h"
#include "gdn/metrics.h"

typedef struct gdn_writer gdn_writer_t;
typedef struct gdn_write_op gdn_write_op_t;

/** One queued operation. Embed it in a larger struct and recover that with container_of. */
struct gdn_write_op {
    gdn_write_op_t *next; /**< the writer's queue link; owned by the writer while queued */
    /**
     * Applies the operation inside `txn`, on the writer thread. It may run more than once for
     * the same operation (the batch is retried one by one after a failure) and must reset any
     * output of an earlier run. Logical outcomes (not found, nothing to claim) are recorded in
     * the embedding struct and return 0.
     * @return 0, or a journal error: the transaction is then abandoned.
     */
    int (*apply)(gdn_write_op_t *op, gdn_journal_txn_t *txn);
    /**
     * Reports the outcome on the writer thread, after the commit: 0 if the operation is
     * durable, or the error that kept it from being stored. The writer does not touch the
     * operation afterwards.
     */
    void (*done)(gdn_write_op_t *op, int status);
};

/** Counters of the writer's work since it started. */
typedef struct gdn_writer_stats {
    uint64_t batches;         /**< committed transactions */
    uint64_t ops;             /**< operations applied and committed */
    uint64_t failed_ops;      /**< operations reported failed */
    uint64_t commit_us_total; /**< time spent in commits, microseconds */
    uint64_t max_batch;       /**< largest batch committed */
} gdn_writer_stats_t;

/**
 * Starts the writer thread on an open journal.
 * @return 0 and *out set, or -errno.
 */
int gdn_writer_start(gdn_writer_t **out, gdn_journal_t *journal);

/**
 * Queues an operation. Any thread.
 * @return 0, or GDN_ESHUTDOWN once the writer is stopping (done is then not called).
 */
int gdn_writer_submit(gdn_writer_t *writer, gdn_write_op_t *op);

/**
 * Stops the writer: operations already queued are applied and reported, later submissions
 * are refused, and the thread is joined. Then frees the writer. NULL-safe.
 */
void gdn_writer_stop(gdn_writer_t *writer);

/**
 * Sets a function called on the writer thread after every successful commit with the number
 * of operations it held, or clears it with NULL. The hook runs under a lock this call takes
 * too, so once a clear returns the hook is not running and is never called again: its owner
 * may then free what `arg` points to while the writer goes on. The hook must not call this.
 */
void gdn_writer_set_commit_hook(gdn_writer_t *writer, void (*on_commit)(void *arg, uint64_t ops),
                                void *arg);

/**
 * Makes the writer apply `op` at the head of a batch every `interval_ms`, whether or not other
 * work is queued: the home of time-driven work such as expiry. `op` stays owned by the caller
 * and is never queued twice at once. Call before the first submission.
 */
void gdn_writer_set_periodic(gdn_writer_t *writer, gdn_write_op_t *op, int interval_ms);

/**
 * Makes the periodic operation run again with the next batch instead of after its interval,
 * for work it could not finish in one bounded pass. Later passes then share the writer with
 * other batches rather than hold it in one long transaction. Writer thread only: from the
 * periodic operation's apply or done.
 */
void gdn_writer_periodic_again(gdn_writer_t *writer);

/** Copies the counters. Any thread. */
void gdn_writer_stats(gdn_writer_t *writer, gdn_writer_stats_t *out);

/**
 * Copies the histograms of commit time (microseconds) and of operations per commit. Any
 * thread.
 */
void gdn_writer_histograms(gdn_writer_t *writer, gdn_histogram_sum_t *commit_us,
                           gdn_histogram_sum_t *batch_ops);

#endif
