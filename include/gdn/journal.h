/*
 * The journal: every record of the server, durable in LMDB before it is acknowledged.
 *
 * A journal is one LMDB environment with these databases, always changed together inside one
 * write transaction:
 *
 *   records      object key (`task:ID`, `worker:ID`) -> version, expiry, JSON exactly as it
 *                is uploaded to the bucket (`completed:ID` objects are uploaded from `task:ID`)
 *   pending      role, claim rank, created time, id -> (nothing): claim order per role
 *   pending_all  claim rank, created time, id -> role: claim order across all roles
 *   dirty        the change log: version of a change -> object key and whether it was a delete
 *   meta         schema version, version sequence, counters
 *   deadlines, held, idempotency, by_status
 *                secondary indexes whose keys the queue core encodes (gdn_journal_index_t)
 *
 * The claim rank orders higher priorities first; the created time and the id break ties, so a
 * cursor seek returns the next task to claim in O(log n) whatever the queue length.
 *
 * Threads: one thread at a time may hold the write transaction (the journal writer). Read
 * transactions come from a gdn_journal_reader_t, one per thread, and may run on any thread
 * alongside the writer. No function here logs: callers log with context.
 */
#ifndef GDN_JOURNAL_H
#define GDN_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

/** Length of a task id (a lower-case UUID text). */
#define GDN_JOURNAL_ID_LEN 36
/** Longest role name the pending index accepts, in bytes. */
#define GDN_JOURNAL_ROLE_MAX 128
/** Longest record key, in bytes (LMDB's key limit is 511). */
#define GDN_JOURNAL_KEY_MAX 256
/** Schema version written into new journals and required of existing ones. */
#define GDN_JOURNAL_SCHEMA 5

typedef struct gdn_journal gdn_journal_t;
typedef struct gdn_journal_txn gdn_journal_txn_t;
typedef struct gdn_journal_reader gdn_journal_reader_t;

/** A record as stored. `json` points into the transaction's memory: valid until it ends. */
typedef struct gdn_journal_record {
    uint64_t version;   /**< changes on every write of the record; never 0 */
    int64_t expires_us; /**< when the record may be dropped; 0 for never */
    int64_t marked_us;  /**< when the record was last marked for upload; 0 if never */
    const char *json;   /**< the object's JSON body, not NUL-terminated */
    size_t json_len;
} gdn_journal_record_t;

/** One entry of the pending index. */
typedef struct gdn_journal_pending {
    int64_t priority;
    int64_t created_us;
    char id[GDN_JOURNAL_ID_LEN + 1];
    char role[GDN_JOURNAL_ROLE_MAX + 1];
} gdn_journal_pending_t;

/** One logged change. */
typedef struct gdn_journal_dirty {
    char key[GDN_JOURNAL_KEY_MAX + 1];
    uint64_t version; /**< the version the change gave the record (or the delete) */
    int deleted;      /**< 1 if the object must be removed from the bucket */
} gdn_journal_dirty_t;

/** The secondary indexes. Their keys and values are the queue core's to encode. */
typedef enum gdn_journal_index {
    GDN_JOURNAL_DEADLINES,   /**< time, kind, subject: what falls due when */
    GDN_JOURNAL_HELD,        /**< worker id, task id: the tasks a worker holds */
    GDN_JOURNAL_IDEMPOTENCY, /**< client key -> the task it created */
    GDN_JOURNAL_BY_STATUS,   /**< status, created time, id: tasks listed by status */
    GDN_JOURNAL_INDEX_COUNT,
} gdn_journal_index_t;

/** gdn_journal_put flag: store the record without marking it for upload. */
#define GDN_JOURNAL_PUT_LOCAL_ONLY 0x1u

/**
 * Opens (creating if needed) the journal in directory `dir`, which must exist.
 *
 * Clears reader slots left by dead processes and checks the schema version.
 *
 * @param map_mb the map size in MiB: the most the journal can hold.
 * @param max_readers reader slots to provide; at least one per thread that reads.
 * @return 0 and *out set; -errno for file errors (EACCES, ENOENT, ...), GDN_ESCHEMA for a
 *         journal of another version, GDN_EJOURNAL for a corrupt or unreadable environment.
 *         Call from one thread before others use the journal.
 */
int gdn_journal_open(gdn_journal_t **out, const char *dir, size_t map_mb, unsigned max_readers);

/** Closes the journal. No transaction or reader may be open. NULL-safe. */
void gdn_journal_close(gdn_journal_t *journal);

/**
 * Returns the text of the last LMDB error this thread saw in a journal call, for logs
 * (for example "MDB_CORRUPTED: Located page was wrong type"). Empty if none.
 */
const char *gdn_journal_last_error(void);

/**
 * Begins the write transaction. Only one thread may hold it: the caller must serialise.
 * @return 0 and *out set, or a journal error.
 */
int gdn_journal_write_begin(gdn_journal_t *journal, gdn_journal_txn_t **out);

/**
 * Commits a write transaction with a synced flush to disk, then frees it (also on failure).
 * @return 0, GDN_EJOURNAL_FULL, or GDN_EJOURNAL. After a failure nothing of it is stored.
 */
int gdn_journal_commit(gdn_journal_txn_t *txn);

/** Aborts a write transaction and frees it; nothing of it is stored. NULL-safe. */
void gdn_journal_abort(gdn_journal_txn_t *txn);

/**
 * Creates a reader: a reusable read-transaction handle for one thread at a time.
 * @return 0 and *out set, or -ENOMEM.
 */
int gdn_journal_reader_open(gdn_journal_t *journal, gdn_journal_reader_t **out);

/** Frees a reader; its transaction must have ended. NULL-safe. */
void gdn_journal_reader_close(gdn_journal_reader_t *reader);

/**
 * Starts a snapshot read on the reader. Keep it short: a long read holds old pages alive.
 * @return 0 and *out set (owned by the reader), or a journal error.
 */
int gdn_journal_read_begin(gdn_journal_reader_t *reader, gdn_journal_txn_t **out);

/** Ends the reader's snapshot read. NULL-safe. */
void gdn_journal_read_end(gdn_journal_reader_t *reader);

/**
 * Looks up a record.
 * @return 0 and *out set, GDN_ENOTFOUND, or a journal error.
 */
int gdn_journal_get(gdn_journal_txn_t *txn, const char *key, size_t key_len,
                    gdn_journal_record_t *out);

/**
 * Stores a record with a new version and, unless GDN_JOURNAL_PUT_LOCAL_ONLY is given, marks
 * it dirty with that version and sets its `marked_us` to the current time. A local-only put
 * keeps the `marked_us` of the record it replaces. Write transactions only.
 *
 * @param version_out if not NULL, receives the record's new version.
 * @return 0, GDN_EINVALID (key empty or too long), GDN_EJOURNAL_FULL (abort the transaction)
 *         or GDN_EJOURNAL.
 */
int gdn_journal_put(gdn_journal_txn_t *txn, const char *key, size_t key_len, const char *json,
                    size_t json_len, int64_t expires_us, unsigned flags, uint64_t *version_out);

/**
 * Removes a record and marks it for deletion from the bucket.
 * @return 0, GDN_ENOTFOUND, GDN_EJOURNAL_FULL or GDN_EJOURNAL.
 */
int gdn_journal_delete(gdn_journal_txn_t *txn, const char *key, size_t key_len);

/**
 * Turns the change log on or off. Without a bucket nothing would ever clear it, so a server
 * with no bucket turns it off; the first commit that then leaves a change unlogged marks the
 * journal as untracked, so that a bucket configured later is sent everything (see
 * gdn_journal_untracked). On by default. Call before any write transaction.
 */
void gdn_journal_set_change_log(gdn_journal_t *journal, int enabled);

/**
 * Tells whether changes were made while the change log was off.
 * @return 0 and *untracked set, or a journal error.
 */
int gdn_journal_untracked(gdn_journal_txn_t *txn, int *untracked);

/** Clears the untracked mark, once everything was logged again. @return 0 or an error. */
int gdn_journal_clear_untracked(gdn_journal_txn_t *txn);

/**
 * Logs a change of an object that has no record of its own in the journal (an object the
 * flusher derives from another record), for upload or, with `deleted`, for deletion. Write
 * transactions only.
 * @return 0, GDN_EINVALID, GDN_EJOURNAL_FULL or GDN_EJOURNAL.
 */
int gdn_journal_mark(gdn_journal_txn_t *txn, const char *key, size_t key_len, int deleted);

/**
 * Calls `cb` for each record whose key starts with `prefix`, in key order, until it returns
 * non-zero. Record memory is valid during the call only.
 * @return 0, the callback's non-zero value, or a journal error.
 */
int gdn_journal_scan(gdn_journal_txn_t *txn, const char *prefix,
                     int (*cb)(void *arg, const char *key, size_t key_len,
                               const gdn_journal_record_t *record),
                     void *arg);

/**
 * Adds a task to the pending indexes (per role and across roles). Write transactions only.
 * @return 0, GDN_EINVALID (bad id or role), GDN_EJOURNAL_FULL or GDN_EJOURNAL.
 */
int gdn_journal_pending_add(gdn_journal_txn_t *txn, const gdn_journal_pending_t *entry);

/**
 * Removes a task from both pending indexes. Removing an absent entry is not an error.
 * @return 0, GDN_EINVALID, or a journal error.
 */
int gdn_journal_pending_remove(gdn_journal_txn_t *txn, const gdn_journal_pending_t *entry);

/**
 * Lists pending tasks in claim order, of one role or (role NULL) of all roles.
 *
 * @param after if not NULL, start after this entry (a listing cursor); it need not exist.
 * @param out receives up to `max` entries.
 * @return the number of entries written (0 to max), or a negative error.
 */
int gdn_journal_pending_list(gdn_journal_txn_t *txn, const char *role,
                             const gdn_journal_pending_t *after, gdn_journal_pending_t *out,
                             int max);

/**
 * Compares two pending entries in claim order (role ignored).
 * @return negative if `a` is claimed first, 0 if equal, positive otherwise.
 */
int gdn_journal_pending_compare(const gdn_journal_pending_t *a, const gdn_journal_pending_t *b);

/**
 * Lists logged changes oldest first, starting after version `after_version` (0: from the
 * start). A record changed several times since its last upload has one entry per change; the
 * flusher uploads its latest version once and clears them all.
 * @return the number written (0 to max), or a negative error.
 */
int gdn_journal_dirty_list(gdn_journal_txn_t *txn, uint64_t after_version, gdn_journal_dirty_t *out,
                           int max);

/**
 * Clears the logged change of `key` with `version`, once an upload covered it: the upload of
 * any version of the record at or after it. A change made after the upload read the record has
 * a later version, and stays. Write transactions only.
 * @return 0 if cleared, GDN_ENOTFOUND if there is no such change, or a journal error.
 */
int gdn_journal_dirty_clear(gdn_journal_txn_t *txn, const char *key, uint64_t version);

/** Returns the number of logged changes not yet uploaded, or a negative error. */
int64_t gdn_journal_dirty_count(gdn_journal_txn_t *txn);

/**
 * Gives the versions of the oldest and the newest logged change, both 0 when none is logged.
 * @return 0 or a journal error.
 */
int gdn_journal_dirty_span(gdn_journal_txn_t *txn, uint64_t *oldest, uint64_t *newest);

/** The claimable tasks of one role. */
typedef struct gdn_journal_role_depth {
    char role[GDN_JOURNAL_ROLE_MAX + 1];
    int64_t depth;             /**< tasks in the pending index */
    int64_t oldest_created_us; /**< created time of the oldest of them */
} gdn_journal_role_depth_t;

/**
 * Lists the roles that have claimable tasks, in byte order of their names, with how many and
 * the created time of the oldest. Counts are kept as tasks enter and leave the pending index;
 * the oldest is found with one seek per distinct priority of the role, so the cost does not
 * grow with the number of tasks.
 *
 * @param max capacity of `out`; roles past it are not listed.
 * @return the number of roles stored, or a journal error.
 */
int gdn_journal_pending_roles(gdn_journal_txn_t *txn, gdn_journal_role_depth_t *out, int max);

/**
 * Stores `value` under `key` in a secondary index, replacing what was there. Keys are 1 to
 * GDN_JOURNAL_KEY_MAX bytes. Write transactions only.
 * @return 0, GDN_EINVALID, GDN_EJOURNAL_FULL or GDN_EJOURNAL.
 */
int gdn_journal_index_put(gdn_journal_txn_t *txn, gdn_journal_index_t index, const void *key,
                          size_t key_len, const void *value, size_t value_len);

/**
 * Looks up a key of a secondary index. The value points into the transaction's memory.
 * @return 0, GDN_ENOTFOUND, or a journal error.
 */
int gdn_journal_index_get(gdn_journal_txn_t *txn, gdn_journal_index_t index, const void *key,
                          size_t key_len, const void **value, size_t *value_len);

/**
 * Removes a key from a secondary index. Write transactions only.
 * @return 0, GDN_ENOTFOUND if absent, or a journal error.
 */
int gdn_journal_index_delete(gdn_journal_txn_t *txn, gdn_journal_index_t index, const void *key,
                             size_t key_len);

/**
 * Calls `cb` for the keys of a secondary index in order, from the first key at or after `start`
 * (after it, when `after` is set and it exists), until `cb` returns non-zero or the index ends.
 * The callback must not change the index.
 * @return 0, the callback's non-zero value, or a journal error.
 */
int gdn_journal_index_scan(gdn_journal_txn_t *txn, gdn_journal_index_t index, const void *start,
                           size_t start_len, int after,
                           int (*cb)(void *arg, const void *key, size_t key_len, const void *value,
                                     size_t value_len),
                           void *arg);

/**
 * Adds `delta` to a named counter kept in the journal (creating it at 0).
 * @return 0 or a journal error.
 */
int gdn_journal_counter_add(gdn_journal_txn_t *txn, const char *name, int64_t delta);

/** Reads a named counter; an absent counter reads 0. @return 0 or a journal error. */
int gdn_journal_counter_get(gdn_journal_txn_t *txn, const char *name, int64_t *value);

/** Returns the number of records, or a negative error. */
int64_t gdn_journal_record_count(gdn_journal_txn_t *txn);

/**
 * Removes every record, pending entry, dirty mark, index entry and counter, keeping the schema
 * and the version sequence. Write transactions only.
 * @return 0 or a journal error.
 */
int gdn_journal_clear(gdn_journal_txn_t *txn);

/**
 * Reports the map's size and the bytes in use (last page used times the page size).
 * @return 0 or a journal error.
 */
int gdn_journal_usage(gdn_journal_t *journal, uint64_t *map_bytes, uint64_t *used_bytes);

/** The part of the map kept for changes that move work along: a 64th, at least 1 MiB (but
 * never more than an eighth of a map smaller than 8 MiB). */
#define GDN_JOURNAL_RESERVE_SHARE 64
#define GDN_JOURNAL_RESERVE_MIN_BYTES (1u << 20)

/**
 * Tells whether the room left in the map, never used pages and free ones together, has fallen
 * to the reserve. Changes that add records (a new task, a new worker) are then to be refused,
 * so that the reserve stays for claims, completions and expiry, which move work along and let
 * retention free space; otherwise a full map would refuse those too, and no worker could drain
 * the queue until a restart with a larger map. Cheap while the map has never-used room beyond
 * the reserve; past that it counts the free pages in a read transaction of its own, which needs
 * a free reader slot (without one it answers 0). Write transactions, on the writer thread.
 * @return 1 within the reserve, 0 outside it, or a journal error.
 */
int gdn_journal_in_reserve(gdn_journal_txn_t *txn);

/**
 * Tells whether the records of this write transaction, once committed, would leave no more than
 * the reserve of the map free: a check for one large transaction (an import) whose own growth
 * gdn_journal_in_reserve, which sees the last commit, cannot see. It compares the pages the
 * journal's trees hold in this transaction's view with the map, so pages on LMDB's free list
 * count as free, as they will be once older readers let go of them.
 * @return 1 when it would reach the reserve, 0 when not, or a journal error.
 */
int gdn_journal_txn_reaches_reserve(gdn_journal_txn_t *txn);

#endif
