/*
 * The queue core: the state changes of tasks and workers, written against the journal.
 *
 * Mutations take a write transaction and run on the journal writer; reads take any
 * transaction. Nothing here logs or touches the network: results are return codes and JSON.
 */
#ifndef GDN_QUEUE_H
#define GDN_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include "gdn/buf.h"
#include "gdn/journal.h"
#include "gdn/task.h"

/** Most roles one poll may name. */
#define GDN_QUEUE_MAX_ROLES 32
/** How long a finished task's `completed:ID` copy is kept, in seconds (7 days). */
#define GDN_QUEUE_COMPLETED_TTL_S (7 * 24 * 3600)

/** Queue-wide figures for /stats. */
typedef struct gdn_queue_stats {
    int64_t by_status[GDN_TASK_STATUS_COUNT];
    int64_t active_workers;
    int64_t workers;
    int64_t dirty_records;
} gdn_queue_stats_t;

/**
 * Stores a new pending task whose fields are all set (id, status pending, times). Writer only.
 *
 * @param json the task rendered by gdn_task_render: rendering happens on the caller's thread
 *        so that the single writer thread does as little as possible.
 * @return 0, GDN_ECONFLICT if the id exists, or a journal error.
 */
int gdn_queue_create(gdn_journal_txn_t *txn, const gdn_task_t *task, const char *json,
                     size_t json_len);

/**
 * Claims the next task in claim order among `roles` (none: any role) for `worker_id`: marks it
 * processing, assigned to the worker, and takes it off the pending indexes. Writer only.
 *
 * @param json receives the claimed task object, malloc'd (length in *json_len).
 * @return 0; GDN_ENOTFOUND if nothing is pending for those roles; a journal error; -ENOMEM.
 */
int gdn_queue_claim(gdn_journal_txn_t *txn, const char *const *roles, const size_t *role_lens,
                    int role_count, const char *worker_id, size_t worker_id_len, int64_t now_us,
                    char **json, size_t *json_len);

/**
 * Tells whether anything is pending for `roles` (none: any role), without changing anything.
 * @return 1, 0, or a journal error.
 */
int gdn_queue_has_pending(gdn_journal_txn_t *txn, const char *const *roles, const size_t *role_lens,
                          int role_count);

/**
 * Finishes a task with a result: sets status, result, completed_at and observation_id, takes
 * it off the pending indexes if it was still pending, and stores the `completed:ID` copy.
 * Writer only.
 * @return 0, GDN_ENOTFOUND, or a journal error.
 */
int gdn_queue_complete(gdn_journal_txn_t *txn, const gdn_task_complete_t *complete, int64_t now_us);

/**
 * Registers a worker, or re-registers it with new capabilities. The record's expiry is the
 * last heartbeat plus `worker_ttl_s`: a worker is live while that lies in the future. Writer
 * only.
 * @return 0 or a journal error.
 */
int gdn_queue_register(gdn_journal_txn_t *txn, const gdn_worker_t *worker, int64_t now_us,
                       int worker_ttl_s);

/**
 * Records a heartbeat in the journal. The worker's record is marked for upload only when its
 * last upload mark is `worker_ttl_s / 2` old or older. Writer only.
 * @return 0, GDN_ENOTFOUND for an unknown worker, or a journal error.
 */
int gdn_queue_heartbeat(gdn_journal_txn_t *txn, const char *worker_id, size_t worker_id_len,
                        int64_t now_us, int worker_ttl_s);

/**
 * Appends `[task, ...]`: up to `limit` (at most 64) pending tasks in claim order, copied
 * verbatim.
 * @return 0, a journal error, or -ENOMEM.
 */
int gdn_queue_list_pending(gdn_journal_txn_t *txn, gdn_buf_t *out, int limit);

/**
 * Appends `[worker, ...]`: the workers heard from within their time to live at `now_us`.
 * @return 0, a journal error, or -ENOMEM.
 */
int gdn_queue_list_workers(gdn_journal_txn_t *txn, gdn_buf_t *out, int64_t now_us);

/** What gdn_queue_restore stored. */
typedef enum gdn_queue_kind {
    GDN_QUEUE_KIND_TASK,         /**< a task that is not pending */
    GDN_QUEUE_KIND_PENDING_TASK, /**< a pending task, queued again */
    GDN_QUEUE_KIND_COMPLETED,    /**< a finished task's completed copy */
    GDN_QUEUE_KIND_WORKER,
} gdn_queue_kind_t;

/**
 * Stores a record read back from the bucket: a task (queued again if pending, and counted by
 * status), a completed copy (kept 7 days from its completion) or a worker (kept `worker_ttl_s`
 * from its last heartbeat). The record is not marked for upload. Writer only.
 *
 * @return 0 and *kind set; GDN_EINVALID if the key or JSON is not a record of this server;
 *         a journal error.
 */
int gdn_queue_restore(gdn_journal_txn_t *txn, const char *key, const char *json, size_t json_len,
                      int worker_ttl_s, gdn_queue_kind_t *kind);

/** Fills queue-wide figures. @return 0 or a journal error. */
int gdn_queue_stats(gdn_journal_txn_t *txn, int64_t now_us, gdn_queue_stats_t *out);

#endif
