/*
 * The queue core: task and worker state changes against the journal.
 *
 * Each function keeps the records, the pending indexes, the secondary indexes and the status
 * counters consistent within the caller's transaction, so a crash between two of them cannot
 * happen: LMDB commits all of a transaction or none of it.
 *
 * Index keys encoded here:
 *   deadlines    time (8, big-endian), kind (1), subject: a task id, a record key or a client key
 *   held         worker id, NUL, claim time (8, big-endian), task id
 *   idempotency  client key -> task id, body digest, expiry (8, native)
 *   by_status    status (1), created time (8, big-endian), task id
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdn/bytes.h"
#include "gdn/error.h"
#include "gdn/queue.h"

#define US_PER_S INT64_C(1000000)

/* Deadline kinds. */
#define DUE_LEASE 'L'       /* a claimed task's lease lapses */
#define DUE_RUN 'R'         /* a delayed task becomes claimable */
#define DUE_EXPIRY 'X'      /* a record's time to live ends */
#define DUE_IDEMPOTENCY 'I' /* an Idempotency-Key is forgotten */

#define DEADLINE_KEY_MAX (9 + GDN_JOURNAL_KEY_MAX)
#define BY_STATUS_KEY_LEN (1 + 8 + GDN_JOURNAL_ID_LEN)
#define IDEMPOTENCY_VALUE_LEN (GDN_JOURNAL_ID_LEN + GDN_QUEUE_DIGEST_LEN + 8)

/* A task loaded from the journal, with what its record says about uploads. */
typedef struct loaded_task {
    gdn_task_t task;
    gdn_json_doc_t *doc;
    int64_t marked_us;
    int64_t expires_us; /* the record's, kept by a write that must not change it */
} loaded_task_t;

/* ---- counters and indexes ---- */

/* The journal keeps one counter per task status, named "status:<name>". */
static void status_counter(char name[48], gdn_task_status_t status)
{
    snprintf(name, 48, "status:%s", gdn_task_status_name(status));
}

static int count_status(gdn_journal_txn_t *txn, gdn_task_status_t status, int64_t delta)
{
    char name[48];

    status_counter(name, status);
    return gdn_journal_counter_add(txn, name, delta);
}

static size_t by_status_key(unsigned char *out, gdn_task_status_t status, const gdn_task_t *task)
{
    out[0] = (unsigned char)status;
    gdn_put_u64be(out + 1, (uint64_t)task->created_us);
    memcpy(out + 9, task->id, GDN_JOURNAL_ID_LEN);
    return BY_STATUS_KEY_LEN;
}

/* Moves a task between status counters and status listings; `from` < 0 for a new task. */
static int move_status(gdn_journal_txn_t *txn, const gdn_task_t *task, int from)
{
    unsigned char key[BY_STATUS_KEY_LEN];
    int rc = 0;

    if (from == (int)task->status)
        return 0;
    if (from >= 0) {
        rc = count_status(txn, (gdn_task_status_t)from, -1);
        if (rc == 0)
            rc = gdn_journal_index_delete(txn, GDN_JOURNAL_BY_STATUS, key,
                                          by_status_key(key, (gdn_task_status_t)from, task));
        if (rc == GDN_ENOTFOUND)
            rc = 0;
    }
    if (rc == 0)
        rc = count_status(txn, task->status, 1);
    if (rc == 0)
        rc = gdn_journal_index_put(txn, GDN_JOURNAL_BY_STATUS, key,
                                   by_status_key(key, task->status, task), "", 0);
    return rc;
}

static size_t deadline_key(unsigned char *out, int64_t at_us, char kind, const char *subject,
                           size_t len)
{
    if (len > GDN_JOURNAL_KEY_MAX)
        len = GDN_JOURNAL_KEY_MAX;
    gdn_put_u64be(out, (uint64_t)at_us);
    out[8] = (unsigned char)kind;
    memcpy(out + 9, subject, len);
    return 9 + len;
}

static int deadline_set(gdn_journal_txn_t *txn, int64_t at_us, char kind, const char *subject,
                        size_t len)
{
    unsigned char key[DEADLINE_KEY_MAX];

    return gdn_journal_index_put(txn, GDN_JOURNAL_DEADLINES, key,
                                 deadline_key(key, at_us, kind, subject, len), "", 0);
}

/* Removes a deadline; one that is not there is not an error. */
static int deadline_clear(gdn_journal_txn_t *txn, int64_t at_us, char kind, const char *subject,
                          size_t len)
{
    unsigned char key[DEADLINE_KEY_MAX];
    int rc = gdn_journal_index_delete(txn, GDN_JOURNAL_DEADLINES, key,
                                      deadline_key(key, at_us, kind, subject, len));

    return rc == GDN_ENOTFOUND ? 0 : rc;
}

#define HELD_KEY_MAX (GDN_WORKER_ID_MAX + 1 + 8 + GDN_JOURNAL_ID_LEN)

/* A worker's held tasks are keyed by their claim time after the worker id: a claim appends to
 * the worker's range instead of landing on a page picked by the random task id. */
static size_t held_key(unsigned char *out, const char *worker_id, size_t worker_id_len,
                       int64_t claimed_us, const char *task_id)
{
    memcpy(out, worker_id, worker_id_len);
    out[worker_id_len] = '\0';
    gdn_put_u64be(out + worker_id_len + 1, (uint64_t)claimed_us);
    memcpy(out + worker_id_len + 9, task_id, GDN_JOURNAL_ID_LEN);
    return worker_id_len + 9 + GDN_JOURNAL_ID_LEN;
}

/* Adds or removes the held entry of a worker's claim. Removing an absent one is no error. */
static int held_update(gdn_journal_txn_t *txn, const char *worker_id, size_t worker_id_len,
                       int64_t claimed_us, const char *task_id, int add)
{
    unsigned char key[HELD_KEY_MAX];

    if (worker_id == NULL || worker_id_len > GDN_WORKER_ID_MAX)
        return 0;

    size_t len = held_key(key, worker_id, worker_id_len, claimed_us, task_id);

    if (add)
        return gdn_journal_index_put(txn, GDN_JOURNAL_HELD, key, len, "", 0);

    int rc = gdn_journal_index_delete(txn, GDN_JOURNAL_HELD, key, len);

    return rc == GDN_ENOTFOUND ? 0 : rc;
}

/* Adds or removes the held entry of a task's current claim. */
static int held_set(gdn_journal_txn_t *txn, const gdn_task_t *task, int add)
{
    return held_update(txn, task->assigned_to, task->assigned_to_len, task->assigned_us, task->id,
                       add);
}

static void pending_entry(gdn_journal_pending_t *entry, const gdn_task_t *task)
{
    memset(entry, 0, sizeof(*entry));
    entry->priority = task->priority;
    entry->created_us = task->created_us;
    memcpy(entry->id, task->id, GDN_JOURNAL_ID_LEN);
    memcpy(entry->role, task->role, task->role_len);
}

static void note_claimable(gdn_queue_wakeups_t *wakeups, const gdn_task_t *task)
{
    if (wakeups == NULL)
        return;
    if (wakeups->count == GDN_QUEUE_WAKE_MAX) {
        wakeups->all = 1;
        return;
    }
    memcpy(wakeups->roles[wakeups->count], task->role, task->role_len);
    wakeups->roles[wakeups->count][task->role_len] = '\0';
    wakeups->count++;
}

/* Puts a pending task where it belongs: the claim order, or the deadline index until run_at. */
static int enqueue(gdn_journal_txn_t *txn, const gdn_task_t *task, int64_t now_us,
                   gdn_queue_wakeups_t *wakeups)
{
    if (task->run_at_us > now_us)
        return deadline_set(txn, task->run_at_us, DUE_RUN, task->id, GDN_JOURNAL_ID_LEN);

    gdn_journal_pending_t entry;

    pending_entry(&entry, task);
    note_claimable(wakeups, task);
    return gdn_journal_pending_add(txn, &entry);
}

/* Takes a pending task out of the claim order, or out of the deadline index. */
static int dequeue(gdn_journal_txn_t *txn, const gdn_task_t *task)
{
    gdn_journal_pending_t entry;

    pending_entry(&entry, task);

    int rc = gdn_journal_pending_remove(txn, &entry);

    if (rc == 0 && task->run_at_us != 0)
        rc = deadline_clear(txn, task->run_at_us, DUE_RUN, task->id, GDN_JOURNAL_ID_LEN);
    return rc;
}

/* ---- loading and storing ---- */

static void drop_task(loaded_task_t *loaded)
{
    gdn_json_free(loaded->doc);
    loaded->doc = NULL;
}

/* Loads a stored task. Returns GDN_ENOTFOUND if there is none (or it cannot be read). */
static int load_task(gdn_journal_txn_t *txn, const char *id, size_t id_len, loaded_task_t *out)
{
    char key[GDN_JOURNAL_KEY_MAX + 1];
    size_t key_len = gdn_record_key(key, "task", id, id_len);
    gdn_journal_record_t record;
    int rc = gdn_journal_get(txn, key, key_len, &record);

    out->doc = NULL;
    if (rc != 0)
        return rc;
    out->marked_us = record.marked_us;
    out->expires_us = record.expires_us;
    rc = gdn_task_from_json(record.json, record.json_len, &out->task, &out->doc);
    return rc == GDN_EINVALID ? GDN_ENOTFOUND : rc;
}

/* Renders and stores a task as `PREFIX:ID`. */
static int store_task(gdn_journal_txn_t *txn, const char *prefix, const gdn_task_t *task,
                      int64_t expires_us, unsigned flags)
{
    char key[GDN_JOURNAL_KEY_MAX + 1];
    size_t key_len = gdn_record_key(key, prefix, task->id, GDN_JOURNAL_ID_LEN);
    size_t json_len;
    char *json = gdn_task_render(task, &json_len);

    if (json == NULL)
        return -ENOMEM;

    int rc = gdn_journal_put(txn, key, key_len, json, json_len, expires_us, flags, NULL);

    free(json);
    return rc;
}

/* Stores a changed task and moves it between status counters and listings. */
static int save_task(gdn_journal_txn_t *txn, const gdn_task_t *task, gdn_task_status_t was,
                     int64_t expires_us, unsigned flags)
{
    int rc = store_task(txn, "task", task, expires_us, flags);

    return rc != 0 ? rc : move_status(txn, task, (int)was);
}

/* ---- create and claim ---- */

static int remember_key(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy,
                        const gdn_queue_idempotency_t *idempotency, const char *task_id,
                        int64_t now_us)
{
    unsigned char value[IDEMPOTENCY_VALUE_LEN];
    int64_t expires_us = now_us + policy->idempotency_ttl_s * US_PER_S;

    memcpy(value, task_id, GDN_JOURNAL_ID_LEN);
    memcpy(value + GDN_JOURNAL_ID_LEN, idempotency->digest, GDN_QUEUE_DIGEST_LEN);
    memcpy(value + GDN_JOURNAL_ID_LEN + GDN_QUEUE_DIGEST_LEN, &expires_us, 8);

    int rc = gdn_journal_index_put(txn, GDN_JOURNAL_IDEMPOTENCY, idempotency->key,
                                   idempotency->key_len, value, sizeof(value));

    if (rc == 0)
        rc = deadline_set(txn, expires_us, DUE_IDEMPOTENCY, idempotency->key, idempotency->key_len);
    return rc;
}

/* Looks a key up. Returns 1 with the task id for a live repeat, 0 for a new key,
 * GDN_ECONFLICT for a key that came with another body, or a journal error. */
static int check_key(gdn_journal_txn_t *txn, const gdn_queue_idempotency_t *idempotency,
                     int64_t now_us, char existing_id[GDN_JOURNAL_ID_LEN + 1])
{
    const void *value;
    size_t value_len;
    int rc = gdn_journal_index_get(txn, GDN_JOURNAL_IDEMPOTENCY, idempotency->key,
                                   idempotency->key_len, &value, &value_len);

    if (rc == GDN_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (value_len != IDEMPOTENCY_VALUE_LEN)
        return 0;

    const unsigned char *bytes = value;
    int64_t expires_us;

    memcpy(&expires_us, bytes + GDN_JOURNAL_ID_LEN + GDN_QUEUE_DIGEST_LEN, 8);
    if (expires_us <= now_us)
        return 0;
    if (memcmp(bytes + GDN_JOURNAL_ID_LEN, idempotency->digest, GDN_QUEUE_DIGEST_LEN) != 0)
        return GDN_ECONFLICT;
    memcpy(existing_id, bytes, GDN_JOURNAL_ID_LEN);
    existing_id[GDN_JOURNAL_ID_LEN] = '\0';
    return 1;
}

int gdn_queue_create(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy,
                     const gdn_task_t *task, const char *json, size_t json_len,
                     const gdn_queue_idempotency_t *idempotency, int64_t now_us,
                     char existing_id[GDN_JOURNAL_ID_LEN + 1], gdn_queue_wakeups_t *wakeups)
{
    existing_id[0] = '\0';
    if (idempotency != NULL) {
        int seen = check_key(txn, idempotency, now_us, existing_id);

        if (seen != 0)
            return seen > 0 ? 0 : seen;
    }

    char key[GDN_JOURNAL_KEY_MAX + 1];
    size_t key_len = gdn_record_key(key, "task", task->id, GDN_JOURNAL_ID_LEN);
    gdn_journal_record_t existing;
    int rc = gdn_journal_get(txn, key, key_len, &existing);

    if (rc == 0)
        return GDN_ECONFLICT;
    if (rc != GDN_ENOTFOUND)
        return rc;
    rc = gdn_journal_in_reserve(txn);
    if (rc != 0)
        return rc > 0 ? GDN_EJOURNAL_FULL : rc;

    rc = gdn_journal_put(txn, key, key_len, json, json_len, 0, 0, NULL);
    if (rc == 0)
        rc = move_status(txn, task, -1);
    if (rc == 0)
        rc = enqueue(txn, task, now_us, wakeups);
    if (rc == 0 && idempotency != NULL)
        rc = remember_key(txn, policy, idempotency, task->id, now_us);
    return rc;
}

/*
 * Finds the first pending entry in claim order among the given roles: the head of each role's
 * index, then the best of those heads. One cursor seek per role.
 */
static int first_pending(gdn_journal_txn_t *txn, const char *const *roles, const size_t *role_lens,
                         int role_count, gdn_journal_pending_t *best)
{
    if (role_count == 0)
        return gdn_journal_pending_list(txn, NULL, NULL, best, 1);

    int found = 0;

    for (int i = 0; i < role_count; i++) {
        char role[GDN_JOURNAL_ROLE_MAX + 1];
        gdn_journal_pending_t head;

        if (role_lens[i] == 0 || role_lens[i] > GDN_JOURNAL_ROLE_MAX)
            continue;
        memcpy(role, roles[i], role_lens[i]);
        role[role_lens[i]] = '\0';

        int rc = gdn_journal_pending_list(txn, role, NULL, &head, 1);

        if (rc < 0)
            return rc;
        if (rc == 1 && (!found || gdn_journal_pending_compare(&head, best) < 0)) {
            *best = head;
            found = 1;
        }
    }
    return found;
}

int gdn_queue_has_pending(gdn_journal_txn_t *txn, const char *const *roles, const size_t *role_lens,
                          int role_count)
{
    gdn_journal_pending_t head;

    return first_pending(txn, roles, role_lens, role_count, &head);
}

static int64_t lease_of(const gdn_queue_policy_t *policy, const gdn_task_t *task)
{
    return task->lease_s > 0 ? task->lease_s : policy->task_lease_s;
}

/* Takes the next claimable task off the claim order. Entries whose task is gone or no longer
 * pending cannot be claimed by anyone: they are dropped and the search goes on. */
static int take_next(gdn_journal_txn_t *txn, const char *const *roles, const size_t *role_lens,
                     int role_count, loaded_task_t *loaded)
{
    for (;;) {
        gdn_journal_pending_t entry;
        int rc = first_pending(txn, roles, role_lens, role_count, &entry);

        if (rc <= 0)
            return rc == 0 ? GDN_ENOTFOUND : rc;
        /* A removal that fails (a full journal, say) has loaded nothing there is to drop. */
        rc = gdn_journal_pending_remove(txn, &entry);
        if (rc != 0)
            return rc;
        rc = load_task(txn, entry.id, GDN_JOURNAL_ID_LEN, loaded);
        if (rc == 0 && loaded->task.status == GDN_TASK_PENDING)
            return 0;
        drop_task(loaded);
        if (rc != 0 && rc != GDN_ENOTFOUND)
            return rc;
    }
}

int gdn_queue_claim(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy,
                    const char *const *roles, const size_t *role_lens, int role_count,
                    const char *worker_id, size_t worker_id_len, int64_t now_us, char **json,
                    size_t *json_len)
{
    loaded_task_t loaded;
    int rc = take_next(txn, roles, role_lens, role_count, &loaded);

    *json = NULL;
    if (rc != 0)
        return rc;

    gdn_task_t *task = &loaded.task;

    task->status = GDN_TASK_PROCESSING;
    task->assigned_to = worker_id;
    task->assigned_to_len = worker_id_len;
    task->assigned_us = now_us;
    task->updated_us = now_us;
    task->attempts++;
    task->lease_expires_us = now_us + lease_of(policy, task) * US_PER_S;
    *json = gdn_task_render(task, json_len);
    rc = *json == NULL ? -ENOMEM : 0;

    char key[GDN_JOURNAL_KEY_MAX + 1];
    size_t key_len = gdn_record_key(key, "task", task->id, GDN_JOURNAL_ID_LEN);

    if (rc == 0)
        rc = gdn_journal_put(txn, key, key_len, *json, *json_len, 0, 0, NULL);
    if (rc == 0)
        rc = move_status(txn, task, GDN_TASK_PENDING);
    if (rc == 0)
        rc = held_set(txn, task, 1);
    if (rc == 0)
        rc = deadline_set(txn, task->lease_expires_us, DUE_LEASE, task->id, GDN_JOURNAL_ID_LEN);
    if (rc != 0) {
        free(*json);
        *json = NULL;
    }
    drop_task(&loaded);
    return rc;
}

/* ---- finishing, releasing, cancelling ---- */

/* Ends a claim: the worker no longer holds the task and its lease no longer runs. A task put
 * back in the queue forgets its worker; a finished one keeps the record of who ran it. */
static int end_claim(gdn_journal_txn_t *txn, gdn_task_t *task, int keep_assignment)
{
    int rc = held_set(txn, task, 0);

    if (rc == 0 && task->lease_expires_us != 0)
        rc = deadline_clear(txn, task->lease_expires_us, DUE_LEASE, task->id, GDN_JOURNAL_ID_LEN);
    task->lease_expires_us = 0;
    if (!keep_assignment) {
        task->assigned_to = NULL;
        task->assigned_to_len = 0;
        task->assigned_us = 0;
    }
    return rc;
}

/* Stores a task that reached an end state (completed, failed or cancelled), with its expiry,
 * and for completed and failed tasks the `completed:ID` copy. */
static int store_finished(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy,
                          gdn_task_t *task, gdn_task_status_t was, int64_t now_us)
{
    int64_t expires_us =
        policy->task_retention_s > 0 ? now_us + policy->task_retention_s * US_PER_S : 0;
    int rc = save_task(txn, task, was, expires_us, 0);

    if (rc == 0 && expires_us != 0) {
        char key[GDN_JOURNAL_KEY_MAX + 1];
        size_t key_len = gdn_record_key(key, "task", task->id, GDN_JOURNAL_ID_LEN);

        rc = deadline_set(txn, expires_us, DUE_EXPIRY, key, key_len);
    }
    if (rc != 0 || task->status == GDN_TASK_CANCELLED)
        return rc;

    /* The completed:ID copy is the finished task object: rather than store it twice, the
     * journal logs it for upload and the flusher reads it from task:ID. Its expiry is a
     * deadline of its own, which logs its deletion. */
    int64_t copy_expires_us = now_us + policy->completed_ttl_s * US_PER_S;
    char key[GDN_JOURNAL_KEY_MAX + 1];
    size_t key_len = gdn_record_key(key, "completed", task->id, GDN_JOURNAL_ID_LEN);

    rc = gdn_journal_mark(txn, key, key_len, 0);
    if (rc == 0)
        rc = deadline_set(txn, copy_expires_us, DUE_EXPIRY, key, key_len);
    return rc;
}

/* The wait before retry number `attempts`: exponential from retry_base_s, capped at
 * retry_max_s, with jitter over its upper half so that tasks failed together do not come back
 * together. Writer thread only: the jitter state is not shared. */
static int64_t retry_backoff_us(const gdn_queue_policy_t *policy, int64_t attempts, int64_t now_us)
{
    static uint64_t jitter_state;
    int64_t wait_s = policy->retry_base_s;

    for (int64_t i = 1; i < attempts && wait_s < policy->retry_max_s; i++)
        wait_s *= 2;
    if (wait_s > policy->retry_max_s)
        wait_s = policy->retry_max_s;

    /* xorshift64, seeded from the clock on first use */
    if (jitter_state == 0)
        jitter_state = (uint64_t)now_us | 1;
    jitter_state ^= jitter_state << 13;
    jitter_state ^= jitter_state >> 7;
    jitter_state ^= jitter_state << 17;

    int64_t wait_us = wait_s * US_PER_S;

    return wait_us / 2 + (int64_t)(jitter_state % (uint64_t)(wait_us / 2 + 1));
}

/*
 * Puts a task that was processing back: to pending (at once, or after a backoff for a retry),
 * or to failed with `reason` once its attempts are used up.
 */
static int release(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy, gdn_task_t *task,
                   int retry, const char *reason, int64_t now_us, gdn_queue_wakeups_t *wakeups)
{
    gdn_task_status_t was = task->status;
    int rc = end_claim(txn, task, 0);

    if (rc != 0)
        return rc;
    task->updated_us = now_us;
    if (task->attempts >= task->max_attempts) {
        /* Room for the longest reason (a silent worker's, with its id) and the counts: a cut
         * could fall inside a UTF-8 character, which the JSON writer refuses to render. */
        char error[GDN_WORKER_ID_MAX + 160];

        snprintf(error, sizeof(error), "%s after %lld of %lld attempts", reason,
                 (long long)task->attempts, (long long)task->max_attempts);
        task->status = GDN_TASK_FAILED;
        task->finished = 1;
        task->completed_us = now_us;
        task->error = error;
        task->error_len = strlen(error);
        return store_finished(txn, policy, task, was, now_us);
    }
    task->status = GDN_TASK_PENDING;
    task->run_at_us = retry ? now_us + retry_backoff_us(policy, task->attempts, now_us) : 0;
    rc = save_task(txn, task, was, 0, 0);
    return rc != 0 ? rc : enqueue(txn, task, now_us, wakeups);
}

/* Tells whether a completion repeats how the task already finished. */
static int same_completion(const gdn_task_t *task, const gdn_task_complete_t *complete)
{
    if (complete->retry || task->status != complete->status)
        return 0;
    if ((task->observation_id == NULL) != (complete->observation_id == NULL))
        return 0;
    if (task->observation_id != NULL &&
        (task->observation_id_len != complete->observation_id_len ||
         memcmp(task->observation_id, complete->observation_id, task->observation_id_len) != 0))
        return 0;

    yajl_gen a = gdn_json_gen_new();
    yajl_gen b = gdn_json_gen_new();
    int same = 0;

    if (a != NULL && b != NULL) {
        gdn_json_t null_value = {.type = GDN_JSON_NULL};
        const unsigned char *text_a;
        const unsigned char *text_b;
        size_t len_a = 0;
        size_t len_b = 0;

        gdn_json_gen(a, task->result ? task->result : &null_value);
        gdn_json_gen(b, complete->result ? complete->result : &null_value);
        yajl_gen_get_buf(a, &text_a, &len_a);
        yajl_gen_get_buf(b, &text_b, &len_b);
        same = len_a == len_b && memcmp(text_a, text_b, len_a) == 0;
    }
    if (a != NULL)
        yajl_gen_free(a);
    if (b != NULL)
        yajl_gen_free(b);
    return same;
}

/* Keeps the result of a worker that lost its claim, without changing the task's state: the
 * record keeps its expiry too, so that a finished task is still removed when its retention
 * ends. */
static int keep_late_result(gdn_journal_txn_t *txn, loaded_task_t *loaded,
                            const gdn_task_complete_t *complete, int64_t now_us)
{
    gdn_json_t null_value = {.type = GDN_JSON_NULL};
    gdn_task_t *task = &loaded->task;

    task->late_result = complete->result != NULL ? complete->result : &null_value;
    task->updated_us = now_us;
    return save_task(txn, task, task->status, loaded->expires_us, 0);
}

/* Tells whether the completing worker is the one that finished the task. */
static int finished_by(const gdn_task_t *task, const gdn_task_complete_t *complete)
{
    return task->error == NULL && task->assigned_to != NULL &&
           task->assigned_to_len == complete->worker_id_len &&
           memcmp(task->assigned_to, complete->worker_id, complete->worker_id_len) == 0;
}

static int holds(const gdn_task_t *task, const gdn_task_complete_t *complete)
{
    return task->status == GDN_TASK_PROCESSING && task->assigned_to != NULL &&
           task->assigned_to_len == complete->worker_id_len &&
           memcmp(task->assigned_to, complete->worker_id, complete->worker_id_len) == 0;
}

int gdn_queue_complete(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy,
                       const gdn_task_complete_t *complete, int64_t now_us,
                       gdn_queue_completion_t *outcome)
{
    loaded_task_t loaded;
    int rc = load_task(txn, complete->task_id, strlen(complete->task_id), &loaded);

    if (rc != 0)
        return rc;

    gdn_task_t *task = &loaded.task;
    gdn_task_status_t was = task->status;
    int open = was == GDN_TASK_PENDING || was == GDN_TASK_PROCESSING;

    if (was == GDN_TASK_CANCELLED) {
        *outcome = GDN_QUEUE_REFUSED;
        /* The worker now knows: it need not be told again in heartbeats. */
        if (complete->worker_id != NULL && task->assigned_to != NULL &&
            task->assigned_to_len == complete->worker_id_len &&
            memcmp(task->assigned_to, complete->worker_id, complete->worker_id_len) == 0)
            rc = held_set(txn, task, 0);
    } else if (task->finished) {
        /* A repeat changes nothing. A worker that did not finish the task (the server failed
         * it, or another worker completed it) is late: its result is kept. */
        if (same_completion(task, complete)) {
            *outcome = GDN_QUEUE_REPEATED;
        } else if (complete->worker_id != NULL && !finished_by(task, complete)) {
            *outcome = GDN_QUEUE_LATE;
            rc = keep_late_result(txn, &loaded, complete, now_us);
        } else {
            *outcome = GDN_QUEUE_REFUSED;
        }
    } else if (complete->worker_id != NULL && !holds(task, complete)) {
        *outcome = GDN_QUEUE_LATE;
        rc = keep_late_result(txn, &loaded, complete, now_us);
    } else if (complete->retry && open && was == GDN_TASK_PROCESSING) {
        *outcome = GDN_QUEUE_COMPLETED;
        rc = release(txn, policy, task, 1, "retries exhausted", now_us, NULL);
    } else {
        *outcome = GDN_QUEUE_COMPLETED;
        rc = was == GDN_TASK_PENDING ? dequeue(txn, task) : end_claim(txn, task, 1);
        task->status = complete->retry ? GDN_TASK_FAILED : complete->status;
        task->finished = 1;
        task->result = complete->result;
        task->completed_us = now_us;
        task->updated_us = now_us;
        task->observation_id = complete->observation_id;
        task->observation_id_len = complete->observation_id_len;
        if (rc == 0)
            rc = store_finished(txn, policy, task, was, now_us);
    }
    drop_task(&loaded);
    return rc;
}

int gdn_queue_cancel(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy, const char *id,
                     int64_t now_us)
{
    loaded_task_t loaded;
    int rc = load_task(txn, id, strlen(id), &loaded);

    if (rc != 0)
        return rc;

    gdn_task_t *task = &loaded.task;
    gdn_task_status_t was = task->status;

    if (was == GDN_TASK_PENDING) {
        rc = dequeue(txn, task);
    } else if (was != GDN_TASK_PROCESSING) {
        drop_task(&loaded);
        return GDN_ECONFLICT;
    }

    /* A processing task keeps its held entry and lease deadline: the worker learns of the
     * cancellation from its heartbeats until the lease would have lapsed. */
    task->status = GDN_TASK_CANCELLED;
    task->updated_us = now_us;
    if (rc == 0)
        rc = store_finished(txn, policy, task, was, now_us);
    drop_task(&loaded);
    return rc;
}

/* ---- workers ---- */

/* Moves a worker's expiry deadline along with its last heartbeat. */
static int store_worker(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy,
                        const gdn_worker_t *worker, int64_t old_expires_us, unsigned flags)
{
    char key[GDN_JOURNAL_KEY_MAX + 1];
    size_t key_len = gdn_record_key(key, "worker", worker->worker_id, worker->worker_id_len);
    size_t json_len;
    char *json = gdn_worker_render(worker, &json_len);

    if (json == NULL)
        return -ENOMEM;

    int64_t expires_us = worker->last_heartbeat_us + policy->worker_ttl_s * US_PER_S;
    int rc = gdn_journal_put(txn, key, key_len, json, json_len, expires_us, flags, NULL);

    free(json);
    if (rc == 0 && old_expires_us != 0 && old_expires_us != expires_us)
        rc = deadline_clear(txn, old_expires_us, DUE_EXPIRY, key, key_len);
    if (rc == 0)
        rc = deadline_set(txn, expires_us, DUE_EXPIRY, key, key_len);
    return rc;
}

int gdn_queue_register(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy,
                       const gdn_worker_t *worker, int64_t now_us)
{
    char key[GDN_JOURNAL_KEY_MAX + 1];
    size_t key_len = gdn_record_key(key, "worker", worker->worker_id, worker->worker_id_len);
    gdn_journal_record_t record;
    int rc = gdn_journal_get(txn, key, key_len, &record);

    if (rc != 0 && rc != GDN_ENOTFOUND)
        return rc;
    /* A new worker adds a record; one registering again only changes its own. */
    if (rc == GDN_ENOTFOUND) {
        int full = gdn_journal_in_reserve(txn);

        if (full != 0)
            return full > 0 ? GDN_EJOURNAL_FULL : full;
    }

    gdn_worker_t registered = *worker;

    registered.registered_us = now_us;
    registered.last_heartbeat_us = now_us;
    return store_worker(txn, policy, &registered, rc == 0 ? record.expires_us : 0, 0);
}

/* The tasks a worker holds and when it claimed them, read before any of them changes. */
typedef struct held_list {
    const char *worker_id;
    size_t worker_id_len;
    char ids[GDN_QUEUE_HELD_MAX][GDN_JOURNAL_ID_LEN + 1];
    int64_t claimed_us[GDN_QUEUE_HELD_MAX];
    int count;
} held_list_t;

static int on_held(void *arg, const void *key, size_t key_len, const void *value, size_t value_len)
{
    held_list_t *list = arg;
    size_t prefix = list->worker_id_len + 1;

    (void)value;
    (void)value_len;
    if (key_len != prefix + 8 + GDN_JOURNAL_ID_LEN ||
        memcmp(key, list->worker_id, prefix - 1) != 0 || ((const char *)key)[prefix - 1] != '\0' ||
        list->count == GDN_QUEUE_HELD_MAX)
        return 1;
    list->claimed_us[list->count] = (int64_t)gdn_get_u64be((const unsigned char *)key + prefix);
    memcpy(list->ids[list->count], (const char *)key + prefix + 8, GDN_JOURNAL_ID_LEN);
    list->ids[list->count][GDN_JOURNAL_ID_LEN] = '\0';
    list->count++;
    return 0;
}

static int list_held(gdn_journal_txn_t *txn, const char *worker_id, size_t worker_id_len,
                     held_list_t *list)
{
    unsigned char start[GDN_WORKER_ID_MAX + 1];

    list->worker_id = worker_id;
    list->worker_id_len = worker_id_len;
    list->count = 0;
    if (worker_id_len > GDN_WORKER_ID_MAX)
        return 0;
    memcpy(start, worker_id, worker_id_len);
    start[worker_id_len] = '\0';

    int rc =
        gdn_journal_index_scan(txn, GDN_JOURNAL_HELD, start, worker_id_len + 1, 0, on_held, list);

    return rc == 1 ? 0 : rc;
}

/* Extends one held task's lease, or reports it cancelled. Entries for tasks the worker no
 * longer holds are dropped. */
static int renew_lease(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy,
                       const char *worker_id, size_t worker_id_len, const char *id,
                       int64_t claimed_us, int64_t now_us, gdn_buf_t *cancelled,
                       int *cancelled_count)
{
    loaded_task_t loaded;
    int rc = load_task(txn, id, GDN_JOURNAL_ID_LEN, &loaded);
    gdn_task_t *task = &loaded.task;

    if (rc == GDN_ENOTFOUND)
        return held_update(txn, worker_id, worker_id_len, claimed_us, id, 0);
    if (rc != 0)
        return rc;
    if (task->status == GDN_TASK_CANCELLED) {
        gdn_buf_append_str(cancelled, *cancelled_count > 0 ? ",\"" : "\"");
        gdn_buf_append_str(cancelled, task->id);
        gdn_buf_append_str(cancelled, "\"");
        (*cancelled_count)++;
    } else if (task->status == GDN_TASK_PROCESSING && task->assigned_to_len == worker_id_len &&
               memcmp(task->assigned_to, worker_id, worker_id_len) == 0) {
        int64_t lease_us = lease_of(policy, task) * US_PER_S;
        int64_t old_expires = task->lease_expires_us;
        /* Like a worker's, a task's bucket copy is refreshed at most once per half lease. */
        unsigned flags = now_us - loaded.marked_us >= lease_us / 2 ? 0 : GDN_JOURNAL_PUT_LOCAL_ONLY;

        task->lease_expires_us = now_us + lease_us;
        rc = deadline_clear(txn, old_expires, DUE_LEASE, task->id, GDN_JOURNAL_ID_LEN);
        if (rc == 0)
            rc = deadline_set(txn, task->lease_expires_us, DUE_LEASE, task->id, GDN_JOURNAL_ID_LEN);
        if (rc == 0)
            rc = store_task(txn, "task", task, 0, flags);
    } else {
        rc = held_update(txn, worker_id, worker_id_len, claimed_us, id, 0);
    }
    drop_task(&loaded);
    return rc;
}

int gdn_queue_heartbeat(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy,
                        const char *worker_id, size_t worker_id_len, int64_t now_us,
                        gdn_buf_t *cancelled)
{
    char key[GDN_JOURNAL_KEY_MAX + 1];
    size_t key_len = gdn_record_key(key, "worker", worker_id, worker_id_len);
    gdn_journal_record_t record;
    int rc = gdn_journal_get(txn, key, key_len, &record);

    if (rc != 0)
        return rc;

    /* A heartbeat changes the journal only. The bucket's copy of the worker is refreshed
     * when it was last marked for upload half a time-to-live ago or more, so that it never
     * looks expired there while the worker is alive, at one upload per half TTL at most. */
    int64_t refresh_us = policy->worker_ttl_s * US_PER_S / 2;
    unsigned flags = now_us - record.marked_us >= refresh_us ? 0 : GDN_JOURNAL_PUT_LOCAL_ONLY;
    int64_t old_expires_us = record.expires_us;
    gdn_json_doc_t *doc = NULL;
    gdn_worker_t worker;

    rc = gdn_worker_from_json(record.json, record.json_len, &worker, &doc);
    if (rc == 0) {
        worker.last_heartbeat_us = now_us;
        rc = store_worker(txn, policy, &worker, old_expires_us, flags);
    }
    gdn_json_free(doc);
    if (rc != 0)
        return rc == GDN_EINVALID ? GDN_ENOTFOUND : rc;

    held_list_t *held = malloc(sizeof(*held));
    int cancelled_count = 0;

    if (held == NULL)
        return -ENOMEM;
    rc = list_held(txn, worker_id, worker_id_len, held);
    gdn_buf_append_str(cancelled, "[");
    for (int i = 0; i < held->count && rc == 0; i++)
        rc = renew_lease(txn, policy, worker_id, worker_id_len, held->ids[i], held->claimed_us[i],
                         now_us, cancelled, &cancelled_count);
    gdn_buf_append_str(cancelled, "]");
    free(held);
    return rc;
}

/* ---- what falls due ---- */

typedef struct due_entry {
    int64_t at_us;
    char kind;
    char subject[GDN_JOURNAL_KEY_MAX + 1];
    size_t subject_len;
} due_entry_t;

typedef struct due_list {
    int64_t now_us;
    due_entry_t *entries;
    int count;
    int max;
    int more;
} due_list_t;

static int on_due(void *arg, const void *key, size_t key_len, const void *value, size_t value_len)
{
    due_list_t *list = arg;
    const unsigned char *bytes = key;

    (void)value;
    (void)value_len;
    if (key_len < 9 || key_len > DEADLINE_KEY_MAX)
        return 0;

    int64_t at_us = (int64_t)gdn_get_u64be(bytes);

    if (at_us > list->now_us)
        return 1;
    if (list->count == list->max) {
        list->more = 1;
        return 1;
    }

    due_entry_t *entry = &list->entries[list->count++];

    entry->at_us = at_us;
    entry->kind = (char)bytes[8];
    entry->subject_len = key_len - 9;
    memcpy(entry->subject, bytes + 9, entry->subject_len);
    entry->subject[entry->subject_len] = '\0';
    return 0;
}

/* A lease lapsed: the task goes back unless it was finished or re-leased since. */
static int lapse_lease(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy,
                       const due_entry_t *due, int64_t now_us, gdn_queue_wakeups_t *wakeups)
{
    loaded_task_t loaded;
    int rc = load_task(txn, due->subject, due->subject_len, &loaded);

    if (rc != 0)
        return rc == GDN_ENOTFOUND ? 0 : rc;

    gdn_task_t *task = &loaded.task;

    if (task->status == GDN_TASK_PROCESSING && task->lease_expires_us <= due->at_us)
        rc = release(txn, policy, task, 0, "lease expired", now_us, wakeups);
    else if (task->status == GDN_TASK_CANCELLED)
        rc = held_set(txn, task, 0);
    drop_task(&loaded);
    return rc;
}

/* A delayed task fell due: it joins the claim order. */
static int run_due(gdn_journal_txn_t *txn, const due_entry_t *due, int64_t now_us,
                   gdn_queue_wakeups_t *wakeups)
{
    loaded_task_t loaded;
    int rc = load_task(txn, due->subject, due->subject_len, &loaded);

    if (rc != 0)
        return rc == GDN_ENOTFOUND ? 0 : rc;
    if (loaded.task.status == GDN_TASK_PENDING && loaded.task.run_at_us <= now_us)
        rc = enqueue(txn, &loaded.task, now_us, wakeups);
    drop_task(&loaded);
    return rc;
}

/* A worker went silent: the tasks it holds go back (or fail), and its record goes. */
static int expire_worker(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy,
                         const char *worker_id, size_t worker_id_len, int64_t now_us,
                         gdn_queue_wakeups_t *wakeups)
{
    held_list_t *held = malloc(sizeof(*held));
    char reason[GDN_WORKER_ID_MAX + 64];

    if (held == NULL)
        return -ENOMEM;
    snprintf(reason, sizeof(reason), "worker %.*s silent for %lld s", (int)worker_id_len, worker_id,
             (long long)policy->worker_ttl_s);

    int rc = list_held(txn, worker_id, worker_id_len, held);

    for (int i = 0; i < held->count && rc == 0; i++) {
        loaded_task_t loaded;

        rc = load_task(txn, held->ids[i], GDN_JOURNAL_ID_LEN, &loaded);
        if (rc == GDN_ENOTFOUND) {
            rc = held_update(txn, worker_id, worker_id_len, held->claimed_us[i], held->ids[i], 0);
            continue;
        }
        if (rc == 0 && loaded.task.status == GDN_TASK_PROCESSING &&
            loaded.task.assigned_to_len == worker_id_len &&
            memcmp(loaded.task.assigned_to, worker_id, worker_id_len) == 0)
            rc = release(txn, policy, &loaded.task, 0, reason, now_us, wakeups);
        else if (rc == 0)
            rc = held_update(txn, worker_id, worker_id_len, held->claimed_us[i], held->ids[i], 0);
        drop_task(&loaded);
    }
    free(held);
    return rc;
}

/* A record's time to live ended: it leaves the journal, and the bucket after it. */
static int expire_record(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy,
                         const due_entry_t *due, int64_t now_us, gdn_queue_wakeups_t *wakeups)
{
    /* A completed copy has no record: its one deadline removes it from the bucket. */
    if (strncmp(due->subject, "completed:", 10) == 0)
        return gdn_journal_mark(txn, due->subject, due->subject_len, 1);

    gdn_journal_record_t record;
    int rc = gdn_journal_get(txn, due->subject, due->subject_len, &record);

    if (rc != 0)
        return rc == GDN_ENOTFOUND ? 0 : rc;
    if (record.expires_us == 0 || record.expires_us > now_us)
        return 0; /* renewed since this deadline was set */

    if (strncmp(due->subject, "worker:", 7) == 0) {
        rc = expire_worker(txn, policy, due->subject + 7, due->subject_len - 7, now_us, wakeups);
    } else if (strncmp(due->subject, "task:", 5) == 0) {
        loaded_task_t loaded;

        rc = load_task(txn, due->subject + 5, due->subject_len - 5, &loaded);
        if (rc == 0) {
            unsigned char key[BY_STATUS_KEY_LEN];

            rc = count_status(txn, loaded.task.status, -1);
            if (rc == 0)
                rc = gdn_journal_index_delete(txn, GDN_JOURNAL_BY_STATUS, key,
                                              by_status_key(key, loaded.task.status, &loaded.task));
            if (rc == GDN_ENOTFOUND)
                rc = 0;
        }
        drop_task(&loaded);
        if (rc == GDN_ENOTFOUND)
            rc = 0;
    }
    return rc != 0 ? rc : gdn_journal_delete(txn, due->subject, due->subject_len);
}

static int forget_key(gdn_journal_txn_t *txn, const due_entry_t *due, int64_t now_us)
{
    const void *value;
    size_t value_len;
    int rc = gdn_journal_index_get(txn, GDN_JOURNAL_IDEMPOTENCY, due->subject, due->subject_len,
                                   &value, &value_len);

    if (rc != 0)
        return rc == GDN_ENOTFOUND ? 0 : rc;

    int64_t expires_us = 0;

    if (value_len == IDEMPOTENCY_VALUE_LEN)
        memcpy(&expires_us, (const char *)value + GDN_JOURNAL_ID_LEN + GDN_QUEUE_DIGEST_LEN, 8);
    if (expires_us > now_us)
        return 0;
    return gdn_journal_index_delete(txn, GDN_JOURNAL_IDEMPOTENCY, due->subject, due->subject_len);
}

int gdn_queue_expire(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy, int64_t now_us,
                     int max, gdn_queue_wakeups_t *wakeups, int *more)
{
    due_list_t list = {.now_us = now_us, .max = max};

    *more = 0;
    if (max <= 0)
        return 0;
    list.entries = malloc((size_t)max * sizeof(*list.entries));
    if (list.entries == NULL)
        return -ENOMEM;

    int rc = gdn_journal_index_scan(txn, GDN_JOURNAL_DEADLINES, NULL, 0, 0, on_due, &list);

    rc = rc == 1 ? 0 : rc;
    for (int i = 0; i < list.count && rc == 0; i++) {
        const due_entry_t *due = &list.entries[i];

        rc = deadline_clear(txn, due->at_us, due->kind, due->subject, due->subject_len);
        if (rc != 0)
            break;
        if (due->kind == DUE_LEASE)
            rc = lapse_lease(txn, policy, due, now_us, wakeups);
        else if (due->kind == DUE_RUN)
            rc = run_due(txn, due, now_us, wakeups);
        else if (due->kind == DUE_EXPIRY)
            rc = expire_record(txn, policy, due, now_us, wakeups);
        else if (due->kind == DUE_IDEMPOTENCY)
            rc = forget_key(txn, due, now_us);
    }
    free(list.entries);
    *more = list.more;
    return rc != 0 ? rc : list.count;
}

/* ---- listings ---- */

/* A listing in progress: the page so far and where the next one starts. */
typedef struct page {
    gdn_journal_txn_t *txn;
    const gdn_queue_listing_t *listing;
    gdn_buf_t *out;
    int written;
    int examined;
    int full;
    char cursor[GDN_QUEUE_CURSOR_MAX];
    int rc;
} page_t;

/* Entries examined per page at most, so that a filter that matches little cannot make one
 * request walk the whole journal: the page ends early and its cursor continues the walk. */
#define LIST_EXAMINE_MAX 5000

/* Tells whether a stored task passes the listing's role and project filters. The role is
 * already applied by the index for claim-order listings without a project filter. */
static int passes_filters(const gdn_queue_listing_t *listing, const gdn_journal_record_t *record)
{
    int role_by_index = listing->status < 0;

    if (listing->project_id == NULL && (listing->role == NULL || role_by_index))
        return 1;

    loaded_task_t loaded = {0};
    int keep = gdn_task_from_json(record->json, record->json_len, &loaded.task, &loaded.doc) == 0;

    if (keep && listing->project_id != NULL)
        keep = loaded.task.project_id_len == listing->project_id_len &&
               memcmp(loaded.task.project_id, listing->project_id, listing->project_id_len) == 0;
    if (keep && listing->role != NULL)
        keep = loaded.task.role_len == strlen(listing->role) &&
               memcmp(loaded.task.role, listing->role, loaded.task.role_len) == 0;
    drop_task(&loaded);
    return keep;
}

/*
 * Appends the task if it passes the filters. Returns 1 when the page is done: a task that
 * passes arrives once the page is full (it starts the next page), or the examination bound is
 * reached. The cursor follows every entry examined before that, so that the next page starts
 * right after what this one looked at.
 */
static int page_add(page_t *page, const char *id, const char *cursor)
{
    char key[GDN_JOURNAL_KEY_MAX + 1];
    size_t key_len = gdn_record_key(key, "task", id, GDN_JOURNAL_ID_LEN);
    gdn_journal_record_t record;

    if (page->examined == LIST_EXAMINE_MAX) {
        page->full = 1;
        return 1;
    }

    int rc = gdn_journal_get(page->txn, key, key_len, &record);

    if (rc != 0 && rc != GDN_ENOTFOUND) {
        page->rc = rc;
        return 1;
    }
    if (rc == 0 && passes_filters(page->listing, &record)) {
        if (page->written == page->listing->limit) {
            page->full = 1;
            return 1;
        }
        if (page->written++ > 0)
            gdn_buf_append_str(page->out, ",");
        gdn_buf_append(page->out, record.json, record.json_len);
    }
    page->examined++;
    snprintf(page->cursor, sizeof(page->cursor), "%s", cursor);
    return 0;
}

/* Claim-order cursors read `PRIORITY.CREATED.ID`; status cursors `CREATED.ID`. */
static int parse_cursor(const gdn_queue_listing_t *listing, gdn_journal_pending_t *after)
{
    char text[GDN_QUEUE_CURSOR_MAX + 1];
    long long priority = 0;
    long long created = 0;
    char id[GDN_JOURNAL_ID_LEN + 2] = "";
    int n;

    if (listing->cursor_len == 0 || listing->cursor_len > GDN_QUEUE_CURSOR_MAX)
        return GDN_EINVALID;
    memcpy(text, listing->cursor, listing->cursor_len);
    text[listing->cursor_len] = '\0';
    if (listing->status < 0)
        n = sscanf(text, "%lld.%lld.%37s", &priority, &created, id) == 3 ? 3 : 0;
    else
        n = sscanf(text, "%lld.%37s", &created, id) == 2 ? 3 : 0;
    if (n != 3 || !gdn_task_id_valid(id, strlen(id)))
        return GDN_EINVALID;
    memset(after, 0, sizeof(*after));
    after->priority = priority;
    after->created_us = created;
    memcpy(after->id, id, GDN_JOURNAL_ID_LEN + 1);
    return 0;
}

static int list_claim_order(page_t *page, const gdn_journal_pending_t *after)
{
    gdn_journal_pending_t entries[64];
    gdn_journal_pending_t cursor;
    const gdn_journal_pending_t *from = after;

    for (;;) {
        int count = gdn_journal_pending_list(page->txn, page->listing->role, from, entries, 64);

        if (count < 0)
            return count;
        for (int i = 0; i < count; i++) {
            char text[GDN_QUEUE_CURSOR_MAX];

            snprintf(text, sizeof(text), "%lld.%lld.%s", (long long)entries[i].priority,
                     (long long)entries[i].created_us, entries[i].id);
            if (page_add(page, entries[i].id, text))
                return page->rc;
        }
        if (count < 64)
            return 0;
        cursor = entries[63];
        from = &cursor;
    }
}

static int on_status_entry(void *arg, const void *key, size_t key_len, const void *value,
                           size_t value_len)
{
    page_t *page = arg;
    const unsigned char *bytes = key;
    char id[GDN_JOURNAL_ID_LEN + 1];
    char text[GDN_QUEUE_CURSOR_MAX];

    (void)value;
    (void)value_len;
    if (key_len != BY_STATUS_KEY_LEN || bytes[0] != (unsigned char)page->listing->status)
        return 1;
    memcpy(id, bytes + 9, GDN_JOURNAL_ID_LEN);
    id[GDN_JOURNAL_ID_LEN] = '\0';
    snprintf(text, sizeof(text), "%lld.%s", (long long)gdn_get_u64be(bytes + 1), id);
    return page_add(page, id, text);
}

static int list_by_status(page_t *page, const gdn_journal_pending_t *after)
{
    unsigned char start[BY_STATUS_KEY_LEN];
    size_t start_len = 1;

    start[0] = (unsigned char)page->listing->status;
    if (after != NULL) {
        gdn_put_u64be(start + 1, (uint64_t)after->created_us);
        memcpy(start + 9, after->id, GDN_JOURNAL_ID_LEN);
        start_len = BY_STATUS_KEY_LEN;
    }

    int rc = gdn_journal_index_scan(page->txn, GDN_JOURNAL_BY_STATUS, start, start_len,
                                    after != NULL, on_status_entry, page);

    return rc == 1 ? page->rc : rc;
}

/* Appends the listing's tasks, comma-separated; `page` says where the next page starts. */
static int list_tasks(gdn_journal_txn_t *txn, const gdn_queue_listing_t *listing, gdn_buf_t *out,
                      page_t *page)
{
    gdn_journal_pending_t after;

    *page = (page_t){.txn = txn, .listing = listing, .out = out};
    if (listing->cursor != NULL && parse_cursor(listing, &after) != 0)
        return GDN_EINVALID;

    const gdn_journal_pending_t *from = listing->cursor != NULL ? &after : NULL;

    return listing->status < 0 ? list_claim_order(page, from) : list_by_status(page, from);
}

int gdn_queue_list_pending(gdn_journal_txn_t *txn, gdn_buf_t *out, int limit)
{
    gdn_queue_listing_t listing = {.status = -1, .limit = limit};
    page_t page;

    gdn_buf_append_str(out, "[");

    int rc = list_tasks(txn, &listing, out, &page);

    gdn_buf_append_str(out, "]");
    return rc != 0 ? rc : out->failed ? -ENOMEM : 0;
}

int gdn_queue_list(gdn_journal_txn_t *txn, const gdn_queue_listing_t *listing, gdn_buf_t *out)
{
    page_t page;

    gdn_buf_append_str(out, "\"tasks\":[");

    int rc = list_tasks(txn, listing, out, &page);

    if (rc != 0)
        return rc;
    gdn_buf_append_str(out, "],\"next_cursor\":");
    if (page.full) {
        gdn_buf_append_str(out, "\"");
        gdn_buf_append_str(out, page.cursor);
        gdn_buf_append_str(out, "\"");
    } else {
        gdn_buf_append_str(out, "null");
    }
    return out->failed ? -ENOMEM : 0;
}

struct worker_walk {
    gdn_buf_t *out;
    int64_t now_us;
    int64_t live;
    int64_t all;
};

static int on_worker(void *arg, const char *key, size_t key_len, const gdn_journal_record_t *record)
{
    struct worker_walk *walk = arg;

    (void)key;
    (void)key_len;
    walk->all++;
    if (record->expires_us <= walk->now_us)
        return 0;
    if (walk->out != NULL) {
        if (walk->live > 0)
            gdn_buf_append_str(walk->out, ",");
        gdn_buf_append(walk->out, record->json, record->json_len);
    }
    walk->live++;
    return 0;
}

int gdn_queue_list_workers(gdn_journal_txn_t *txn, gdn_buf_t *out, int64_t now_us)
{
    struct worker_walk walk = {.out = out, .now_us = now_us};

    gdn_buf_append_str(out, "[");

    int rc = gdn_journal_scan(txn, "worker:", on_worker, &walk);

    if (rc != 0)
        return rc;
    return gdn_buf_append_str(out, "]");
}

/* ---- restore ---- */

/* Derives a restored task's index entries from its state. */
static int index_task(gdn_journal_txn_t *txn, const gdn_task_t *task, int64_t expires_us)
{
    int rc = move_status(txn, task, -1);

    /* Compared with a "now" of 0, a delayed task always waits for its deadline; one already
     * due is made claimable by the first expiry pass. */
    if (rc == 0 && task->status == GDN_TASK_PENDING)
        rc = enqueue(txn, task, 0, NULL);
    if (rc == 0 && task->status == GDN_TASK_PROCESSING) {
        rc = held_set(txn, task, 1);
        if (rc == 0 && task->lease_expires_us != 0)
            rc = deadline_set(txn, task->lease_expires_us, DUE_LEASE, task->id, GDN_JOURNAL_ID_LEN);
    }
    if (rc == 0 && expires_us != 0) {
        char key[GDN_JOURNAL_KEY_MAX + 1];
        size_t key_len = gdn_record_key(key, "task", task->id, GDN_JOURNAL_ID_LEN);

        rc = deadline_set(txn, expires_us, DUE_EXPIRY, key, key_len);
    }
    return rc;
}

static int restore_task(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy, const char *key,
                        const char *json, size_t json_len, unsigned flags, gdn_queue_kind_t *kind)
{
    gdn_json_doc_t *doc;
    gdn_task_t task;
    int rc = gdn_task_from_json(json, json_len, &task, &doc);

    if (rc != 0)
        return rc;

    int ended = task.finished || task.status == GDN_TASK_CANCELLED;
    int64_t expires_us = ended && policy->task_retention_s > 0
                             ? task.updated_us + policy->task_retention_s * US_PER_S
                             : 0;

    rc = gdn_journal_put(txn, key, strlen(key), json, json_len, expires_us, flags, NULL);
    *kind = task.status == GDN_TASK_PENDING ? GDN_QUEUE_KIND_PENDING_TASK : GDN_QUEUE_KIND_TASK;
    if (rc == 0)
        rc = index_task(txn, &task, expires_us);
    gdn_json_free(doc);
    return rc;
}

/*
 * Stores a record and derives its index entries: for a restore with `flags` local-only (the
 * bucket holds the record already), for an import with `flags` 0 (the bucket has never seen it).
 */
static int store_record(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy, const char *key,
                        const char *json, size_t json_len, unsigned flags, gdn_queue_kind_t *kind)
{
    gdn_json_doc_t *doc = NULL;
    int64_t expires_us = 0;
    int rc = GDN_EINVALID;

    if (strncmp(key, "task:", 5) == 0)
        return restore_task(txn, policy, key, json, json_len, flags, kind);
    if (strncmp(key, "completed:", 10) == 0) {
        /* The journal keeps only when the copy goes; the flusher uploads it from task:ID, so
         * an imported copy is logged for upload like any change. */
        gdn_task_t task;

        rc = gdn_task_from_json(json, json_len, &task, &doc);
        *kind = GDN_QUEUE_KIND_COMPLETED;
        if (rc == 0)
            rc = deadline_set(txn, task.completed_us + policy->completed_ttl_s * US_PER_S,
                              DUE_EXPIRY, key, strlen(key));
        if (rc == 0 && (flags & GDN_JOURNAL_PUT_LOCAL_ONLY) == 0)
            rc = gdn_journal_mark(txn, key, strlen(key), 0);
        gdn_json_free(doc);
        return rc;
    } else if (strncmp(key, "worker:", 7) == 0) {
        gdn_worker_t worker;

        rc = gdn_worker_from_json(json, json_len, &worker, &doc);
        expires_us = worker.last_heartbeat_us + policy->worker_ttl_s * US_PER_S;
        *kind = GDN_QUEUE_KIND_WORKER;
    }
    if (rc == 0)
        rc = gdn_journal_put(txn, key, strlen(key), json, json_len, expires_us, flags, NULL);
    if (rc == 0)
        rc = deadline_set(txn, expires_us, DUE_EXPIRY, key, strlen(key));
    gdn_json_free(doc);
    return rc;
}

int gdn_queue_restore(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy, const char *key,
                      const char *json, size_t json_len, gdn_queue_kind_t *kind)
{
    return store_record(txn, policy, key, json, json_len, GDN_JOURNAL_PUT_LOCAL_ONLY, kind);
}

int gdn_queue_import(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy, const char *key,
                     const char *json, size_t json_len, gdn_queue_kind_t *kind)
{
    return store_record(txn, policy, key, json, json_len, 0, kind);
}

struct relog_walk {
    gdn_journal_txn_t *txn;
    const gdn_queue_policy_t *policy;
    int64_t now_us;
    int logged;
};

/* Logs one record again, and the completed copy of a task that finished recently. */
static int on_relog(void *arg, const char *key, size_t key_len, const gdn_journal_record_t *record)
{
    struct relog_walk *walk = arg;
    int rc = gdn_journal_mark(walk->txn, key, key_len, 0);

    if (rc != 0)
        return rc;
    walk->logged++;
    if (strncmp(key, "task:", 5) != 0)
        return 0;

    gdn_json_doc_t *doc;
    gdn_task_t task;

    if (gdn_task_from_json(record->json, record->json_len, &task, &doc) != 0)
        return 0;

    int64_t copy_expires_us = task.completed_us + walk->policy->completed_ttl_s * US_PER_S;

    if (task.finished && copy_expires_us > walk->now_us) {
        char copy[GDN_JOURNAL_KEY_MAX + 1];
        size_t copy_len = gdn_record_key(copy, "completed", task.id, GDN_JOURNAL_ID_LEN);

        rc = gdn_journal_mark(walk->txn, copy, copy_len, 0);
        walk->logged += rc == 0;
    }
    gdn_json_free(doc);
    return rc;
}

int gdn_queue_relog_all(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy, int64_t now_us)
{
    struct relog_walk walk = {.txn = txn, .policy = policy, .now_us = now_us};
    int rc = gdn_journal_scan(txn, "", on_relog, &walk);

    if (rc == 0)
        rc = gdn_journal_clear_untracked(txn);
    return rc != 0 ? rc : walk.logged;
}

void gdn_queue_policy_init(gdn_queue_policy_t *policy, const gdn_config_t *config)
{
    policy->task_lease_s = config->task_lease_s;
    policy->worker_ttl_s = config->worker_ttl_s;
    policy->retry_base_s = config->retry_base_s;
    policy->retry_max_s = config->retry_max_s;
    policy->completed_ttl_s = config->completed_ttl_s;
    policy->task_retention_s = config->task_retention_s;
    policy->idempotency_ttl_s = config->idempotency_ttl_s;
}

int gdn_queue_stats(gdn_journal_txn_t *txn, int64_t now_us, gdn_queue_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    for (int s = 0; s < GDN_TASK_STATUS_COUNT; s++) {
        char name[48];

        status_counter(name, (gdn_task_status_t)s);

        int rc = gdn_journal_counter_get(txn, name, &out->by_status[s]);

        if (rc != 0)
            return rc;
    }

    struct worker_walk walk = {.now_us = now_us};
    int rc = gdn_journal_scan(txn, "worker:", on_worker, &walk);

    if (rc != 0)
        return rc;
    out->active_workers = walk.live;
    out->workers = walk.all;
    out->dirty_records = gdn_journal_dirty_count(txn);
    return out->dirty_records < 0 ? (int)out->dirty_records : 0;
}
