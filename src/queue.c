/*
 * The queue core: task and worker state changes against the journal.
 *
 * Each function keeps the records, the pending indexes and the status counters consistent
 * within the caller's transaction, so a crash between two of them cannot happen: LMDB commits
 * all of a transaction or none of it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdn/error.h"
#include "gdn/queue.h"

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

/* Moves a task from one status counter to another. */
static int recount(gdn_journal_txn_t *txn, gdn_task_status_t from, gdn_task_status_t to)
{
    if (from == to)
        return 0;

    int rc = count_status(txn, from, -1);

    return rc != 0 ? rc : count_status(txn, to, 1);
}

static void pending_entry(gdn_journal_pending_t *entry, const gdn_task_t *task)
{
    memset(entry, 0, sizeof(*entry));
    entry->priority = task->priority;
    entry->created_us = task->created_us;
    memcpy(entry->id, task->id, GDN_JOURNAL_ID_LEN);
    memcpy(entry->role, task->role, task->role_len);
}

/* Renders and stores a task under `task:ID`. */
static int store_task(gdn_journal_txn_t *txn, const char *prefix, const gdn_task_t *task,
                      int64_t expires_us)
{
    char key[GDN_JOURNAL_KEY_MAX + 1];
    size_t key_len = gdn_record_key(key, prefix, task->id, GDN_JOURNAL_ID_LEN);
    size_t json_len;
    char *json = gdn_task_render(task, &json_len);

    if (json == NULL)
        return -ENOMEM;

    int rc = gdn_journal_put(txn, key, key_len, json, json_len, expires_us, 0, NULL);

    free(json);
    return rc;
}

/*
 * Loads a stored task. The task's pointers refer into *doc, which the caller frees.
 * Returns GDN_ENOTFOUND if there is no such task.
 */
static int load_task(gdn_journal_txn_t *txn, const char *id, gdn_task_t *task, gdn_json_doc_t **doc)
{
    char key[GDN_JOURNAL_KEY_MAX + 1];
    size_t key_len = gdn_record_key(key, "task", id, strlen(id));
    gdn_journal_record_t record;
    int rc = gdn_journal_get(txn, key, key_len, &record);

    *doc = NULL;
    if (rc != 0)
        return rc;
    return gdn_task_from_json(record.json, record.json_len, task, doc);
}

int gdn_queue_create(gdn_journal_txn_t *txn, const gdn_task_t *task, const char *json,
                     size_t json_len)
{
    char key[GDN_JOURNAL_KEY_MAX + 1];
    size_t key_len = gdn_record_key(key, "task", task->id, GDN_JOURNAL_ID_LEN);
    gdn_journal_record_t existing;
    int rc = gdn_journal_get(txn, key, key_len, &existing);

    if (rc == 0)
        return GDN_ECONFLICT;
    if (rc != GDN_ENOTFOUND)
        return rc;

    gdn_journal_pending_t entry;

    pending_entry(&entry, task);
    rc = gdn_journal_put(txn, key, key_len, json, json_len, 0, 0, NULL);
    if (rc == 0)
        rc = gdn_journal_pending_add(txn, &entry);
    if (rc == 0)
        rc = count_status(txn, GDN_TASK_PENDING, 1);
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

int gdn_queue_claim(gdn_journal_txn_t *txn, const char *const *roles, const size_t *role_lens,
                    int role_count, const char *worker_id, size_t worker_id_len, int64_t now_us,
                    char **json, size_t *json_len)
{
    gdn_journal_pending_t entry;
    gdn_json_doc_t *doc = NULL;
    gdn_task_t task;
    int rc;

    *json = NULL;
    for (;;) {
        rc = first_pending(txn, roles, role_lens, role_count, &entry);
        if (rc <= 0)
            return rc == 0 ? GDN_ENOTFOUND : rc;
        rc = gdn_journal_pending_remove(txn, &entry);
        if (rc != 0)
            return rc;
        rc = load_task(txn, entry.id, &task, &doc);
        if (rc != GDN_ENOTFOUND && rc != GDN_EINVALID)
            break;
        /* An index entry without a readable task cannot be claimed by anyone: it was removed
         * above, and the search goes on with the next entry. */
        gdn_json_free(doc);
        doc = NULL;
    }
    if (rc != 0)
        goto Exit;

    gdn_task_status_t was = task.status;

    task.status = GDN_TASK_PROCESSING;
    task.assigned_to = worker_id;
    task.assigned_to_len = worker_id_len;
    task.assigned_us = now_us;
    task.updated_us = now_us;
    *json = gdn_task_render(&task, json_len);
    if (*json == NULL) {
        rc = -ENOMEM;
        goto Exit;
    }

    char key[GDN_JOURNAL_KEY_MAX + 1];
    size_t key_len = gdn_record_key(key, "task", task.id, GDN_JOURNAL_ID_LEN);

    rc = gdn_journal_put(txn, key, key_len, *json, *json_len, 0, 0, NULL);
    if (rc == 0)
        rc = recount(txn, was, GDN_TASK_PROCESSING);
    if (rc != 0) {
        free(*json);
        *json = NULL;
    }

Exit:
    gdn_json_free(doc);
    return rc;
}

int gdn_queue_complete(gdn_journal_txn_t *txn, const gdn_task_complete_t *complete, int64_t now_us)
{
    gdn_json_doc_t *doc;
    gdn_task_t task;
    int rc = load_task(txn, complete->task_id, &task, &doc);

    if (rc != 0) {
        gdn_json_free(doc);
        return rc == GDN_EINVALID ? GDN_ENOTFOUND : rc;
    }

    gdn_task_status_t was = task.status;

    if (was == GDN_TASK_PENDING) {
        gdn_journal_pending_t entry;

        pending_entry(&entry, &task);
        rc = gdn_journal_pending_remove(txn, &entry);
    }

    task.status = complete->status;
    task.finished = 1;
    task.result = complete->result;
    task.completed_us = now_us;
    task.updated_us = now_us;
    task.observation_id = complete->observation_id;
    task.observation_id_len = complete->observation_id_len;

    if (rc == 0)
        rc = store_task(txn, "task", &task, 0);
    if (rc == 0)
        rc = store_task(txn, "completed", &task,
                        now_us + (int64_t)GDN_QUEUE_COMPLETED_TTL_S * 1000000);
    if (rc == 0)
        rc = recount(txn, was, task.status);
    gdn_json_free(doc);
    return rc;
}

static int store_worker(gdn_journal_txn_t *txn, const gdn_worker_t *worker, int worker_ttl_s,
                        unsigned flags)
{
    char key[GDN_JOURNAL_KEY_MAX + 1];
    size_t key_len = gdn_record_key(key, "worker", worker->worker_id, worker->worker_id_len);
    size_t json_len;
    char *json = gdn_worker_render(worker, &json_len);

    if (json == NULL)
        return -ENOMEM;

    int64_t expires_us = worker->last_heartbeat_us + (int64_t)worker_ttl_s * 1000000;
    int rc = gdn_journal_put(txn, key, key_len, json, json_len, expires_us, flags, NULL);

    free(json);
    return rc;
}

int gdn_queue_register(gdn_journal_txn_t *txn, const gdn_worker_t *worker, int64_t now_us,
                       int worker_ttl_s)
{
    gdn_worker_t registered = *worker;

    registered.registered_us = now_us;
    registered.last_heartbeat_us = now_us;
    return store_worker(txn, &registered, worker_ttl_s, 0);
}

int gdn_queue_heartbeat(gdn_journal_txn_t *txn, const char *worker_id, size_t worker_id_len,
                        int64_t now_us, int worker_ttl_s)
{
    char key[GDN_JOURNAL_KEY_MAX + 1];
    size_t key_len = gdn_record_key(key, "worker", worker_id, worker_id_len);
    gdn_journal_record_t record;
    int rc = gdn_journal_get(txn, key, key_len, &record);

    if (rc != 0)
        return rc;

    gdn_json_doc_t *doc = NULL;
    gdn_worker_t worker;

    /* A heartbeat changes the journal only. The bucket's copy of the worker is refreshed
     * when it was last marked for upload half a time-to-live ago or more, so that it never
     * looks expired there while the worker is alive, at one upload per half TTL at most. */
    int64_t refresh_us = (int64_t)worker_ttl_s * 1000000 / 2;
    unsigned flags = now_us - record.marked_us >= refresh_us ? 0 : GDN_JOURNAL_PUT_LOCAL_ONLY;

    rc = gdn_worker_from_json(record.json, record.json_len, &worker, &doc);
    if (rc == 0) {
        worker.last_heartbeat_us = now_us;
        rc = store_worker(txn, &worker, worker_ttl_s, flags);
    }
    gdn_json_free(doc);
    return rc == GDN_EINVALID ? GDN_ENOTFOUND : rc;
}

static int restore_task(gdn_journal_txn_t *txn, const char *key, const char *json, size_t json_len,
                        gdn_queue_kind_t *kind)
{
    gdn_json_doc_t *doc;
    gdn_task_t task;
    int rc = gdn_task_from_json(json, json_len, &task, &doc);

    if (rc != 0)
        return rc;
    rc =
        gdn_journal_put(txn, key, strlen(key), json, json_len, 0, GDN_JOURNAL_PUT_LOCAL_ONLY, NULL);
    *kind = task.status == GDN_TASK_PENDING ? GDN_QUEUE_KIND_PENDING_TASK : GDN_QUEUE_KIND_TASK;
    if (rc == 0 && task.status == GDN_TASK_PENDING) {
        gdn_journal_pending_t entry;

        pending_entry(&entry, &task);
        rc = gdn_journal_pending_add(txn, &entry);
    }
    if (rc == 0)
        rc = count_status(txn, task.status, 1);
    gdn_json_free(doc);
    return rc;
}

int gdn_queue_restore(gdn_journal_txn_t *txn, const char *key, const char *json, size_t json_len,
                      int worker_ttl_s, gdn_queue_kind_t *kind)
{
    gdn_json_doc_t *doc = NULL;
    int64_t expires_us = 0;
    int rc = GDN_EINVALID;

    if (strncmp(key, "task:", 5) == 0)
        return restore_task(txn, key, json, json_len, kind);
    if (strncmp(key, "completed:", 10) == 0) {
        gdn_task_t task;

        rc = gdn_task_from_json(json, json_len, &task, &doc);
        expires_us = task.completed_us + (int64_t)GDN_QUEUE_COMPLETED_TTL_S * 1000000;
        *kind = GDN_QUEUE_KIND_COMPLETED;
    } else if (strncmp(key, "worker:", 7) == 0) {
        gdn_worker_t worker;

        rc = gdn_worker_from_json(json, json_len, &worker, &doc);
        expires_us = worker.last_heartbeat_us + (int64_t)worker_ttl_s * 1000000;
        *kind = GDN_QUEUE_KIND_WORKER;
    }
    if (rc == 0)
        rc = gdn_journal_put(txn, key, strlen(key), json, json_len, expires_us,
                             GDN_JOURNAL_PUT_LOCAL_ONLY, NULL);
    gdn_json_free(doc);
    return rc;
}

int gdn_queue_list_pending(gdn_journal_txn_t *txn, gdn_buf_t *out, int limit)
{
    gdn_journal_pending_t entries[64];

    if (limit > (int)(sizeof(entries) / sizeof(entries[0])))
        limit = (int)(sizeof(entries) / sizeof(entries[0]));

    int count = gdn_journal_pending_list(txn, NULL, NULL, entries, limit);

    if (count < 0)
        return count;
    gdn_buf_append_str(out, "[");
    for (int i = 0, written = 0; i < count; i++) {
        char key[GDN_JOURNAL_KEY_MAX + 1];
        size_t key_len = gdn_record_key(key, "task", entries[i].id, GDN_JOURNAL_ID_LEN);
        gdn_journal_record_t record;
        int rc = gdn_journal_get(txn, key, key_len, &record);

        if (rc == GDN_ENOTFOUND)
            continue;
        if (rc != 0)
            return rc;
        if (written++ > 0)
            gdn_buf_append_str(out, ",");
        gdn_buf_append(out, record.json, record.json_len);
    }
    return gdn_buf_append_str(out, "]");
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
