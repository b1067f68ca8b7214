/*
 * The journal writer thread: group commit of queued write operations.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gdn/clock.h"
#include "gdn/error.h"
#include "gdn/log.h"
#include "gdn/writer.h"

/* Most operations applied in one transaction. A bound keeps one transaction from growing
 * without limit under a flood; the rest simply go into the next batch. */
#define WRITER_BATCH_MAX 1024

/* Commit times in microseconds: a synced commit takes from tens of microseconds (a disk cache
 * that acknowledges at once) to tens of milliseconds (a spinning disk or a busy SD card). */
static const uint64_t commit_bounds_us[] = {50,    100,   250,   500,    1000,   2500,   5000,
                                            10000, 25000, 50000, 100000, 250000, 1000000};

/* Operations per commit, in powers of two up to the batch limit. */
static const uint64_t batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

struct gdn_writer {
    gdn_journal_t *journal;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    gdn_write_op_t *head;
    gdn_write_op_t *tail;
    int stopping;
    gdn_writer_stats_t stats; /* guarded by lock */
    gdn_histogram_t commit_us;
    gdn_histogram_t batch_ops;
    /* The commit hook, called with hook_lock held, so that whoever clears it knows it is no
     * longer running once the clear returns. */
    pthread_mutex_t hook_lock;
    void (*on_commit)(void *arg, uint64_t ops);
    void *on_commit_arg;
    gdn_write_op_t *periodic;
    int64_t periodic_interval_ns;
    int64_t periodic_next_ns; /* CLOCK_MONOTONIC */
};

static int64_t monotonic_ns(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* Waits for work or for the periodic operation's time. Called with the lock held. */
static void wait_for_work(gdn_writer_t *writer)
{
    if (writer->periodic == NULL) {
        pthread_cond_wait(&writer->wake, &writer->lock);
        return;
    }

    struct timespec until = {.tv_sec = writer->periodic_next_ns / 1000000000,
                             .tv_nsec = writer->periodic_next_ns % 1000000000};

    pthread_cond_timedwait(&writer->wake, &writer->lock, &until);
}

int gdn_writer_submit(gdn_writer_t *writer, gdn_write_op_t *op)
{
    int rc = 0;

    op->next = NULL;
    pthread_mutex_lock(&writer->lock);
    if (writer->stopping) {
        rc = GDN_ESHUTDOWN;
    } else {
        if (writer->tail != NULL)
            writer->tail->next = op;
        else
            writer->head = op;
        writer->tail = op;
        pthread_cond_signal(&writer->wake);
    }
    pthread_mutex_unlock(&writer->lock);
    return rc;
}

/* Takes up to WRITER_BATCH_MAX queued operations, waiting for at least one or for the periodic
 * operation, which then leads the batch. Returns NULL when the writer is stopping and nothing
 * is left. */
static gdn_write_op_t *take_batch(gdn_writer_t *writer)
{
    int periodic_due = 0;

    pthread_mutex_lock(&writer->lock);
    for (;;) {
        periodic_due = writer->periodic != NULL && monotonic_ns() >= writer->periodic_next_ns;
        if (writer->head != NULL || writer->stopping || periodic_due)
            break;
        wait_for_work(writer);
    }
    if (writer->stopping && writer->head == NULL)
        periodic_due = 0;

    gdn_write_op_t *batch = writer->head;
    gdn_write_op_t *last = batch;

    for (int n = 1; last != NULL && last->next != NULL && n < WRITER_BATCH_MAX; n++)
        last = last->next;
    if (last != NULL) {
        writer->head = last->next;
        if (writer->head == NULL)
            writer->tail = NULL;
        last->next = NULL;
    }
    if (periodic_due) {
        writer->periodic->next = batch;
        batch = writer->periodic;
        writer->periodic_next_ns = monotonic_ns() + writer->periodic_interval_ns;
    }
    pthread_mutex_unlock(&writer->lock);
    return batch;
}

/* Reports every operation of a list. The next link is read first: once told, an operation
 * belongs to its submitter again and may be freed at once. */
static void finish_all(gdn_write_op_t *op, int status)
{
    while (op != NULL) {
        gdn_write_op_t *next = op->next;

        op->done(op, status);
        op = next;
    }
}

static void count_commit(gdn_writer_t *writer, uint64_t ops, uint64_t failed, int64_t started)
{
    int64_t elapsed = gdn_clock_now_us() - started;

    if (ops > 0) {
        pthread_mutex_lock(&writer->hook_lock);
        if (writer->on_commit != NULL)
            writer->on_commit(writer->on_commit_arg, ops);
        pthread_mutex_unlock(&writer->hook_lock);
    }
    if (ops > 0) {
        gdn_histogram_observe(&writer->commit_us, elapsed > 0 ? (uint64_t)elapsed : 0);
        gdn_histogram_observe(&writer->batch_ops, ops);
    }

    pthread_mutex_lock(&writer->lock);
    if (ops > 0) {
        writer->stats.batches++;
        writer->stats.ops += ops;
        writer->stats.commit_us_total += elapsed > 0 ? (uint64_t)elapsed : 0;
        if (ops > writer->stats.max_batch)
            writer->stats.max_batch = ops;
    }
    writer->stats.failed_ops += failed;
    pthread_mutex_unlock(&writer->lock);
}

/* Applies and commits a list of operations in one transaction. Returns the number applied, or
 * a negative error if the transaction could not be committed (nothing of it is stored). */
static int apply_batch(gdn_writer_t *writer, gdn_write_op_t *batch)
{
    gdn_journal_txn_t *txn;
    int rc = gdn_journal_write_begin(writer->journal, &txn);

    if (rc != 0)
        return rc;

    int count = 0;

    for (gdn_write_op_t *op = batch; op != NULL; op = op->next) {
        rc = op->apply(op, txn);
        if (rc != 0) {
            gdn_journal_abort(txn);
            return rc;
        }
        count++;
    }
    rc = gdn_journal_commit(txn);
    return rc != 0 ? rc : count;
}

/*
 * After a failed batch, stores each operation in its own transaction so that one operation
 * that cannot be stored (a full map) does not fail the others with it.
 */
static void apply_one_by_one(gdn_writer_t *writer, gdn_write_op_t *batch)
{
    while (batch != NULL) {
        gdn_write_op_t *next = batch->next;
        int64_t started = gdn_clock_now_us();

        batch->next = NULL;

        int rc = apply_batch(writer, batch);

        if (rc < 0)
            gdn_log(rc == GDN_EJOURNAL_FULL ? GDN_LOG_WARN : GDN_LOG_ERROR, "journal",
                    "write_failed", "reason=\"%s\" detail=\"%s\"", gdn_strerror(rc),
                    gdn_journal_last_error());
        count_commit(writer, rc < 0 ? 0 : 1, rc < 0 ? 1 : 0, started);
        batch->done(batch, rc < 0 ? rc : 0);
        batch = next;
    }
}

static void *writer_main(void *arg)
{
    gdn_writer_t *writer = arg;
    for (;;) {
        gdn_write_op_t *batch = take_batch(writer);

        if (batch == NULL)
            break;

        int64_t started = gdn_clock_now_us();
        int rc = apply_batch(writer, batch);

        if (rc >= 0) {
            count_commit(writer, (uint64_t)rc, 0, started);
            finish_all(batch, 0);
        } else {
            apply_one_by_one(writer, batch);
        }
    }
    return NULL;
}

int gdn_writer_start(gdn_writer_t **out, gdn_journal_t *journal)
{
    gdn_writer_t *writer = calloc(1, sizeof(*writer));

    if (writer != NULL) {
        gdn_histogram_init(&writer->commit_us, commit_bounds_us,
                           (int)(sizeof(commit_bounds_us) / sizeof(commit_bounds_us[0])));
        gdn_histogram_init(&writer->batch_ops, batch_bounds,
                           (int)(sizeof(batch_bounds) / sizeof(batch_bounds[0])));
    }

    *out = NULL;
    if (writer == NULL)
        return -ENOMEM;
    writer->journal = journal;
    pthread_mutex_init(&writer->lock, NULL);
    pthread_mutex_init(&writer->hook_lock, NULL);

    pthread_condattr_t attr;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&writer->wake, &attr);
    pthread_condattr_destroy(&attr);

    int rc = pthread_create(&writer->thread, NULL, writer_main, writer);

    if (rc != 0) {
        pthread_cond_destroy(&writer->wake);
        pthread_mutex_destroy(&writer->hook_lock);
        pthread_mutex_destroy(&writer->lock);
        free(writer);
        return -rc;
    }
    *out = writer;
    return 0;
}

void gdn_writer_stop(gdn_writer_t *writer)
{
    if (writer == NULL)
        return;
    pthread_mutex_lock(&writer->lock);
    writer->stopping = 1;
    pthread_cond_signal(&writer->wake);
    pthread_mutex_unlock(&writer->lock);
    pthread_join(writer->thread, NULL);
    pthread_cond_destroy(&writer->wake);
    pthread_mutex_destroy(&writer->hook_lock);
    pthread_mutex_destroy(&writer->lock);
    free(writer);
}

void gdn_writer_set_commit_hook(gdn_writer_t *writer, void (*on_commit)(void *arg, uint64_t ops),
                                void *arg)
{
    pthread_mutex_lock(&writer->hook_lock);
    writer->on_commit = on_commit;
    writer->on_commit_arg = arg;
    pthread_mutex_unlock(&writer->hook_lock);
}

void gdn_writer_periodic_again(gdn_writer_t *writer)
{
    pthread_mutex_lock(&writer->lock);
    writer->periodic_next_ns = monotonic_ns();
    pthread_mutex_unlock(&writer->lock);
}

void gdn_writer_set_periodic(gdn_writer_t *writer, gdn_write_op_t *op, int interval_ms)
{
    pthread_mutex_lock(&writer->lock);
    writer->periodic = op;
    writer->periodic_interval_ns = (int64_t)interval_ms * 1000000;
    writer->periodic_next_ns = monotonic_ns() + writer->periodic_interval_ns;
    pthread_cond_signal(&writer->wake);
    pthread_mutex_unlock(&writer->lock);
}

void gdn_writer_stats(gdn_writer_t *writer, gdn_writer_stats_t *out)
{
    pthread_mutex_lock(&writer->lock);
    *out = writer->stats;
    pthread_mutex_unlock(&writer->lock);
}

void gdn_writer_histograms(gdn_writer_t *writer, gdn_histogram_sum_t *commit_us,
                           gdn_histogram_sum_t *batch_ops)
{
    gdn_histogram_sum_init(commit_us, &writer->commit_us);
    gdn_histogram_sum_add(commit_us, &writer->commit_us);
    gdn_histogram_sum_init(batch_ops, &writer->batch_ops);
    gdn_histogram_sum_add(batch_ops, &writer->batch_ops);
}
