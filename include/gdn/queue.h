/*
 * The queue core: the state changes of tasks and workers, written against the journal.
 *
 * Mutations take a write transaction and run on the journal writer; reads take any
 * transaction. Nothing here logs or touches the network: results are return codes and JSON.
 *
 * Task states and what moves a task between them:
 *
 *   pending    --claim-->            processing   (attempts + 1, lease set)
 *   processing --complete-->         completed or failed
 *   processing --retry, lease lapse,
 *                worker silent-->    pending (after a backoff for retry), or failed once
 *                                    max_attempts claims were used
 *   pending, processing --cancel-->  cancelled
 *
 * A pending task with `run_at` in the future waits in the deadline index and joins the claim
 * order when it falls due. Everything time-driven (lease lapses, due tasks, expiry of finished
 * tasks, completed copies, silent workers and idempotency keys) is done by gdn_queue_expire,
 * which walks the deadline index in time order, a bounded number of entries at a time.
 */
#ifndef GDN_QUEUE_H
#define GDN_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "gdn/buf.h"
#include "gdn/config.h"
#include "gdn/journal.h"
#include "gdn/task.h"

/** Most roles one poll may name. */
#define GDN_QUEUE_MAX_ROLES 32
/** Most tasks one heartbeat extends; a worker holding more keeps the rest on their leases. */
#define GDN_QUEUE_HELD_MAX 256
/** Most claimable-task notices one call records before it asks to wake every waiter. */
#define GDN_QUEUE_WAKE_MAX 32
/** Bytes of an idempotency digest (SHA-256 of the request body). */
#define GDN_QUEUE_DIGEST_LEN 32
/** Longest Idempotency-Key, in bytes. */
#define GDN_QUEUE_IDEMPOTENCY_KEY_MAX 200
/** Longest listing cursor, in bytes. */
#define GDN_QUEUE_CURSOR_MAX 96

/** The time rules of the queue, from the configuration. All in seconds. */
typedef struct gdn_queue_policy {
    int64_t task_lease_s;      /**< lease of a task that names none */
    int64_t worker_ttl_s;      /**< a worker silent this long is gone, and its tasks with it */
    int64_t retry_base_s;      /**< first backoff of a retried task */
    int64_t retry_max_s;       /**< longest backoff */
    int64_t completed_ttl_s;   /**< how long `completed:ID` copies are kept */
    int64_t task_retention_s;  /**< how long finished tasks are kept; 0 keeps them */
    int64_t idempotency_ttl_s; /**< how long an Idempotency-Key is remembered */
} gdn_queue_policy_t;

/** Fills a policy from the configuration. */
void gdn_queue_policy_init(gdn_queue_policy_t *policy, const gdn_config_t *config);

/** Tasks that became claimable, so that waiting polls can be woken. */
typedef struct gdn_queue_wakeups {
    int count;
    int all; /**< more than GDN_QUEUE_WAKE_MAX: wake every waiter */
    char roles[GDN_QUEUE_WAKE_MAX][GDN_JOURNAL_ROLE_MAX + 1];
} gdn_queue_wakeups_t;

/** An Idempotency-Key and the digest of the body it came with. */
typedef struct gdn_queue_idempotency {
    const char *key;
    size_t key_len;
    unsigned char digest[GDN_QUEUE_DIGEST_LEN];
} gdn_queue_idempotency_t;

/** Queue-wide figures for /stats. */
typedef struct gdn_queue_stats {
    int64_t by_status[GDN_TASK_STATUS_COUNT];
    int64_t active_workers;
    int64_t workers;
    int64_t dirty_records;
} gdn_queue_stats_t;

/** How a completion was taken. */
typedef enum gdn_queue_completion {
    GDN_QUEUE_COMPLETED, /**< the task is finished with this result, or put back for a retry */
    GDN_QUEUE_REPEATED,  /**< the same completion again: nothing changed */
    GDN_QUEUE_LATE,      /**< the worker no longer holds the task: kept as late_result */
    GDN_QUEUE_REFUSED,   /**< finished differently before, or cancelled: nothing changed */
} gdn_queue_completion_t;

/** A task listing request. */
typedef struct gdn_queue_listing {
    int status;             /**< a gdn_task_status_t, or -1 for claimable tasks in claim order */
    const char *role;       /**< NUL-terminated, or NULL for any */
    const char *project_id; /**< or NULL for any */
    size_t project_id_len;
    int limit;          /**< 1 to 500 */
    const char *cursor; /**< from an earlier page, or NULL */
    size_t cursor_len;
} gdn_queue_listing_t;

/**
 * Stores a new task whose fields are all set (id, status pending, times, lease_s). A task with
 * `run_at` in the future waits for it; any other joins the claim order at once. Writer only.
 *
 * @param json the task rendered by gdn_task_render, on the caller's thread, so that the single
 *        writer thread does as little as possible.
 * @param idempotency NULL, or the request's key: a key seen within its time to live with the
 *        same digest creates nothing and returns the first task's id in `existing_id`.
 * @param existing_id set to the earlier task's id on a repeat, else to "".
 * @return 0; GDN_ECONFLICT if the id exists or the key came with another body; a journal error.
 */
int gdn_queue_create(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy,
                     const gdn_task_t *task, const char *json, size_t json_len,
                     const gdn_queue_idempotency_t *idempotency, int64_t now_us,
                     char existing_id[GDN_JOURNAL_ID_LEN + 1], gdn_queue_wakeups_t *wakeups);

/**
 * Claims the next task in claim order among `roles` (none: any role) for `worker_id`: marks it
 * processing and assigned to the worker, counts the attempt, and starts its lease. Writer only.
 *
 * @param json receives the claimed task object, malloc'd (length in *json_len).
 * @return 0; GDN_ENOTFOUND if nothing is claimable for those roles; a journal error; -ENOMEM.
 */
int gdn_queue_claim(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy,
                    const char *const *roles, const size_t *role_lens, int role_count,
                    const char *worker_id, size_t worker_id_len, int64_t now_us, char **json,
                    size_t *json_len);

/**
 * Tells whether anything is claimable for `roles` (none: any role), without changing anything.
 * @return 1, 0, or a journal error.
 */
int gdn_queue_has_pending(gdn_journal_txn_t *txn, const char *const *roles, const size_t *role_lens,
                          int role_count);

/**
 * Takes a completion. From the worker that holds the task (or from a client that names no
 * worker, while the task is pending or processing) it finishes the task, or with `retry` puts
 * it back after a backoff (failing it once its attempts are used up). A worker that no longer
 * holds the task gets GDN_QUEUE_LATE and its result is kept as `late_result`. A finished task
 * completed again with the same status, result and observation is GDN_QUEUE_REPEATED; any other
 * completion of a finished or cancelled task is GDN_QUEUE_REFUSED. Writer only.
 *
 * @return 0 with *outcome set, GDN_ENOTFOUND, or a journal error.
 */
int gdn_queue_complete(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy,
                       const gdn_task_complete_t *complete, int64_t now_us,
                       gdn_queue_completion_t *outcome);

/**
 * Cancels a pending or processing task: it leaves the claim order, and its worker's completion
 * will be refused. Writer only.
 * @return 0, GDN_ENOTFOUND, GDN_ECONFLICT if it is already finished or cancelled, or a journal
 *         error.
 */
int gdn_queue_cancel(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy, const char *id,
                     int64_t now_us);

/**
 * Registers a worker, or re-registers it with new capabilities. The worker is live until
 * `worker_ttl_s` after its last heartbeat. Writer only.
 * @return 0 or a journal error.
 */
int gdn_queue_register(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy,
                       const gdn_worker_t *worker, int64_t now_us);

/**
 * Records a heartbeat in the journal and extends the leases of the tasks the worker holds. The
 * bucket copies of the worker and of those tasks are refreshed only when they were last marked
 * for upload half their time to live ago or more. Writer only.
 *
 * @param cancelled receives a JSON array of the ids of held tasks that were cancelled.
 * @return 0, GDN_ENOTFOUND for an unknown worker, or a journal error.
 */
int gdn_queue_heartbeat(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy,
                        const char *worker_id, size_t worker_id_len, int64_t now_us,
                        gdn_buf_t *cancelled);

/**
 * Does what has fallen due by `now_us`, oldest first, at most `max` deadline entries: lapsed
 * leases, delayed tasks, silent workers, and records past their time to live (which are
 * removed from the journal and so, by the flusher, from the bucket). Writer only.
 *
 * @param more set to 1 if more entries were already due.
 * @return the number of entries handled, or a journal error.
 */
int gdn_queue_expire(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy, int64_t now_us,
                     int max, gdn_queue_wakeups_t *wakeups, int *more);

/**
 * Appends `[task, ...]`: up to `limit` (at most 64) claimable tasks in claim order, copied
 * verbatim.
 * @return 0, a journal error, or -ENOMEM.
 */
int gdn_queue_list_pending(gdn_journal_txn_t *txn, gdn_buf_t *out, int limit);

/**
 * Appends `"tasks":[...],"next_cursor":C` for a listing: claimable tasks in claim order, or
 * tasks of one status oldest first, filtered by role and project. `next_cursor` is null on the
 * last page.
 * @return 0, GDN_EINVALID for a malformed cursor, a journal error, or -ENOMEM.
 */
int gdn_queue_list(gdn_journal_txn_t *txn, const gdn_queue_listing_t *listing, gdn_buf_t *out);

/**
 * Appends `[worker, ...]`: the workers heard from within their time to live at `now_us`.
 * @return 0, a journal error, or -ENOMEM.
 */
int gdn_queue_list_workers(gdn_journal_txn_t *txn, gdn_buf_t *out, int64_t now_us);

/** What gdn_queue_restore or gdn_queue_import stored. */
typedef enum gdn_queue_kind {
    GDN_QUEUE_KIND_TASK,         /**< a task that is not pending */
    GDN_QUEUE_KIND_PENDING_TASK, /**< a pending task, queued again */
    GDN_QUEUE_KIND_COMPLETED,    /**< a finished task's completed copy */
    GDN_QUEUE_KIND_WORKER,
} gdn_queue_kind_t;

/**
 * Stores a record read back from the bucket and derives its index entries from it: a task is
 * counted by status and queued, leased or scheduled again as its state says; completed copies
 * and workers get their expiry. The record is not marked for upload. Writer only.
 *
 * @return 0 and *kind set; GDN_EINVALID if the key or JSON is not a record of this server;
 *         a journal error.
 */
int gdn_queue_restore(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy, const char *key,
                      const char *json, size_t json_len, gdn_queue_kind_t *kind);

/**
 * Stores a record brought in from another store (the import of an export), as
 * gdn_queue_restore does, except that the record is logged for upload like any change: the
 * bucket has never seen it. A `completed:ID` copy is logged too; the flusher uploads it from
 * the finished `task:ID` record, which must be stored in the same transaction or before. A
 * processing task keeps the `lease_expires_at` it carries. Writer only, or a tool that holds
 * the journal alone.
 *
 * @return 0 and *kind set; GDN_EINVALID if the key or JSON is not a record of this server;
 *         a journal error.
 */
int gdn_queue_import(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy, const char *key,
                     const char *json, size_t json_len, gdn_queue_kind_t *kind);

/**
 * Logs every record for upload again, with the completed copies of tasks that finished within
 * `completed_ttl_s`, and clears the journal's untracked mark: for a bucket that was configured
 * after the server had run without one. Writer only; one transaction, so it holds the writer
 * for as long as it takes to walk the records.
 * @return the number of objects logged, or a journal error.
 */
int gdn_queue_relog_all(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy, int64_t now_us);

/** Fills queue-wide figures. @return 0 or a journal error. */
int gdn_queue_stats(gdn_journal_txn_t *txn, int64_t now_us, gdn_queue_stats_t *out);

#endif
