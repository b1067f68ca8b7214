/*
 * The flusher thread: write-behind of dirty journal records to the bucket.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gdn/clock.h"
#include "gdn/error.h"
#include "gdn/flusher.h"
#include "gdn/json.h"
#include "gdn/log.h"
#include "gdn/queue.h"
#include "gdn/s3.h"
#include "gdn/task.h"

/* The first wait after a failure; it doubles up to flush_retry_max_ms. */
#define BACKOFF_BASE_MS 500

/* Steps in one round before the flusher rests until the next interval, so that records that
 * change faster than they upload cannot keep a round going forever. */
#define ROUND_STEPS_MAX 64

/* Looks at the change log remembered for the flush lag (see note_span). */
#define SPAN_SAMPLES 256

typedef struct span_sample {
    uint64_t newest; /* the newest logged version seen */
    int64_t seen_us; /* when */
} span_sample_t;

/* One logged change read for upload. Changes of one record are grouped: the one with the
 * highest version leads the group and carries the record's current JSON; the others follow it
 * and are cleared with it. */
typedef struct flush_item {
    char key[GDN_JOURNAL_KEY_MAX + 1];
    uint64_t version;        /* the logged change to clear once uploaded */
    int follows;             /* the index of the group's leader, or -1 for a leader */
    uint64_t record_version; /* leader: the record version read, 0 if the record is gone */
    int deleted;
    char *json;
    size_t json_len;
    char created_at[GDN_CLOCK_ISO_LEN + 1];
    char expires_at[GDN_CLOCK_ISO_LEN + 1];
    int uploaded;
} flush_item_t;

/* The request to the journal writer that clears the dirty marks of uploaded records. */
typedef struct clear_op {
    gdn_write_op_t write;
    gdn_flusher_t *flusher;
    flush_item_t *items;
    int count;
    int done;
    int status;
} clear_op_t;

/*
 * The records a round already uploaded, and at which version: a record changed again later in
 * the same round, but not since its upload, is not uploaded twice. Open addressing on the key.
 */
typedef struct round_set {
    char **keys;
    uint64_t *versions;
    size_t cap;
    size_t count;
} round_set_t;

static size_t hash_key(const char *key)
{
    uint64_t hash = UINT64_C(1469598103934665603);

    for (; *key != '\0'; key++)
        hash = (hash ^ (unsigned char)*key) * UINT64_C(1099511628211);
    return (size_t)hash;
}

static void round_set_clear(round_set_t *set)
{
    for (size_t i = 0; i < set->cap; i++) {
        free(set->keys[i]);
        set->keys[i] = NULL;
    }
    set->count = 0;
}

static void round_set_free(round_set_t *set)
{
    round_set_clear(set);
    free(set->keys);
    free(set->versions);
    memset(set, 0, sizeof(*set));
}

/* Finds the slot of `key`: where it is, or the empty slot where it would go. */
static size_t round_set_slot(const round_set_t *set, const char *key)
{
    size_t at = hash_key(key) & (set->cap - 1);

    while (set->keys[at] != NULL && strcmp(set->keys[at], key) != 0)
        at = (at + 1) & (set->cap - 1);
    return at;
}

/* Tells whether `key` was uploaded at `version` this round. */
static int round_set_has(const round_set_t *set, const char *key, uint64_t version)
{
    if (set->cap == 0)
        return 0;

    size_t at = round_set_slot(set, key);

    return set->keys[at] != NULL && set->versions[at] == version;
}

/* Records an upload; a failure to grow only costs a later duplicate upload. */
static void round_set_add(round_set_t *set, const char *key, uint64_t version)
{
    if ((set->count + 1) * 2 > set->cap) {
        round_set_t grown = {.cap = set->cap ? set->cap * 2 : 1024};

        grown.keys = calloc(grown.cap, sizeof(*grown.keys));
        grown.versions = calloc(grown.cap, sizeof(*grown.versions));
        if (grown.keys == NULL || grown.versions == NULL) {
            free(grown.keys);
            free(grown.versions);
            return;
        }
        for (size_t i = 0; i < set->cap; i++) {
            if (set->keys[i] == NULL)
                continue;

            size_t at = round_set_slot(&grown, set->keys[i]);

            grown.keys[at] = set->keys[i];
            grown.versions[at] = set->versions[i];
            grown.count++;
        }
        free(set->keys);
        free(set->versions);
        *set = grown;
    }

    size_t at = round_set_slot(set, key);

    if (set->keys[at] == NULL) {
        set->keys[at] = strdup(key);
        if (set->keys[at] == NULL)
            return;
        set->count++;
    }
    set->versions[at] = version;
}

struct gdn_flusher {
    const gdn_config_t *config;
    gdn_journal_t *journal;
    gdn_writer_t *writer;
    gdn_journal_reader_t *reader;
    gdn_s3_t *s3;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    /* Guarded by lock: */
    int stopping;
    uint64_t changes; /* committed since the last round started */
    gdn_flusher_stats_t stats;
    /* Flusher thread only: */
    int failures; /* consecutive failed rounds */
    int bucket_ready;
    unsigned seed;
    flush_item_t *items;
    round_set_t uploaded;                /* what this round already uploaded, by key */
    span_sample_t samples[SPAN_SAMPLES]; /* a ring, oldest first */
    int sample_first;
    int sample_count;
};

static int is_stopping(gdn_flusher_t *flusher)
{
    pthread_mutex_lock(&flusher->lock);
    int stopping = flusher->stopping;
    pthread_mutex_unlock(&flusher->lock);
    return stopping;
}

/* Waits up to `ms`, or until a stop, or (when `early` is set) until enough changes piled up. */
static void rest(gdn_flusher_t *flusher, int ms, int early)
{
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }

    pthread_mutex_lock(&flusher->lock);
    while (!flusher->stopping &&
           !(early && flusher->changes >= (uint64_t)flusher->config->flush_batch_max)) {
        if (pthread_cond_timedwait(&flusher->wake, &flusher->lock, &until) == ETIMEDOUT)
            break;
    }
    flusher->changes = 0;
    pthread_mutex_unlock(&flusher->lock);
}

/*
 * Records a failed S3 request, logging only when the flusher's state or the kind of failure
 * changes. Kinds are compared rather than full descriptions, which for transport errors hold
 * an elapsed time that differs on every retry of the same outage.
 */
static void note_failure(gdn_flusher_t *flusher, const gdn_s3_request_t *request, const char *key)
{
    const char *kind = gdn_s3_failure_kind(request);

    pthread_mutex_lock(&flusher->lock);
    int changed = !flusher->stats.degraded ||
                  strncmp(flusher->stats.last_error, kind, sizeof(flusher->stats.last_error) - 1);

    flusher->stats.errors++;
    flusher->stats.degraded = 1;
    snprintf(flusher->stats.last_error, sizeof(flusher->stats.last_error), "%s", kind);
    pthread_mutex_unlock(&flusher->lock);

    if (changed) {
        char quoted[160];
        char quoted_key[GDN_JOURNAL_KEY_MAX * 4 + 3];

        gdn_log(GDN_LOG_ERROR, "flusher", "s3_request_failed", "method=%s key=%s http=%ld code=%s",
                request->method, gdn_log_quote(key ? key : "-", quoted_key, sizeof(quoted_key)),
                request->http_status,
                gdn_log_quote(gdn_s3_failure(request), quoted, sizeof(quoted)));
    }
}

static void note_success(gdn_flusher_t *flusher, uint64_t puts, uint64_t deletes, int round_done)
{
    pthread_mutex_lock(&flusher->lock);
    int recovered = flusher->stats.degraded;

    flusher->stats.puts += puts;
    flusher->stats.deletes += deletes;
    flusher->stats.degraded = 0;
    if (round_done) {
        flusher->stats.rounds++;
        flusher->stats.last_flush_us = gdn_clock_now_us();
    }
    pthread_mutex_unlock(&flusher->lock);
    if (recovered)
        gdn_log(GDN_LOG_INFO, "flusher", "s3_recovered", NULL);
}

/* Finds the object's creation time for its metadata: a task's created_at, a worker's
 * registered_at. */
static void find_created_at(flush_item_t *item)
{
    gdn_json_doc_t *doc;

    item->created_at[0] = '\0';
    if (gdn_json_parse(item->json, item->json_len, &doc, NULL) != 0)
        return;

    const gdn_json_t *root = gdn_json_root(doc);
    const gdn_json_t *created = gdn_json_get(root, "created_at");

    if (created == NULL)
        created = gdn_json_get(root, "registered_at");
    if (created != NULL && created->type == GDN_JSON_STRING && created->len <= GDN_CLOCK_ISO_LEN) {
        memcpy(item->created_at, created->text, created->len);
        item->created_at[created->len] = '\0';
    }
    gdn_json_free(doc);
}

static void free_items(flush_item_t *items, int count)
{
    for (int i = 0; i < count; i++) {
        free(items[i].json);
        items[i].json = NULL;
    }
}

static int compare_changes(const void *a, const void *b, void *arg)
{
    const flush_item_t *items = arg;
    const flush_item_t *x = &items[*(const int *)a];
    const flush_item_t *y = &items[*(const int *)b];
    int by_key = strcmp(x->key, y->key);

    if (by_key != 0)
        return by_key;
    return x->version < y->version ? -1 : x->version > y->version;
}

/* Groups the changes of each record: the newest leads, the others follow it. */
static int group_changes(flush_item_t *items, int count)
{
    int *order = malloc((size_t)count * sizeof(*order));

    if (order == NULL)
        return -ENOMEM;
    for (int i = 0; i < count; i++)
        order[i] = i;
    qsort_r(order, (size_t)count, sizeof(*order), compare_changes, items);
    for (int at = 0; at < count;) {
        int end = at + 1;

        while (end < count && strcmp(items[order[end]].key, items[order[at]].key) == 0)
            end++;

        int leader = order[end - 1];

        items[leader].follows = -1;
        for (int k = at; k < end - 1; k++)
            items[order[k]].follows = leader;
        at = end;
    }
    free(order);
    return 0;
}

/*
 * A completed:ID object is the finished task:ID record: the journal does not store it twice.
 * Its expiry is completed_at plus completed_ttl_s. Returns 0 with the record, or GDN_ENOTFOUND
 * if the task is gone or not finished (the copy is then removed).
 */
static int read_completed_copy(gdn_flusher_t *flusher, gdn_journal_txn_t *txn, const char *key,
                               gdn_journal_record_t *record)
{
    char task_key[GDN_JOURNAL_KEY_MAX + 1];
    const char *id = key + strlen("completed:");
    size_t task_key_len = gdn_record_key(task_key, "task", id, strlen(id));
    int rc = gdn_journal_get(txn, task_key, task_key_len, record);

    if (rc != 0)
        return rc;

    gdn_json_doc_t *doc;
    gdn_task_t task;

    rc = gdn_task_from_json(record->json, record->json_len, &task, &doc);
    if (rc == 0 && !task.finished)
        rc = GDN_ENOTFOUND;
    if (rc == 0)
        record->expires_us =
            task.completed_us + (int64_t)flusher->config->completed_ttl_s * 1000000;
    gdn_json_free(doc);
    return rc == GDN_EINVALID ? GDN_ENOTFOUND : rc;
}

/* Reads the current state of a group's record into its leader. */
static int read_leader(gdn_flusher_t *flusher, gdn_journal_txn_t *txn, flush_item_t *item)
{
    gdn_journal_record_t record;
    int rc;

    if (strncmp(item->key, "completed:", 10) == 0)
        rc = item->deleted ? GDN_ENOTFOUND : read_completed_copy(flusher, txn, item->key, &record);
    else
        rc = gdn_journal_get(txn, item->key, strlen(item->key), &record);

    if (rc == GDN_ENOTFOUND) {
        /* Gone, whatever the changes were: removing the object is the right answer. */
        item->deleted = 1;
        item->record_version = 0;
    } else if (rc != 0) {
        return rc;
    } else {
        item->deleted = 0;
        item->record_version = record.version;
        item->json = malloc(record.json_len + 1);
        if (item->json == NULL)
            return -ENOMEM;
        memcpy(item->json, record.json, record.json_len);
        item->json_len = record.json_len;
        if (record.expires_us > 0)
            gdn_clock_format(record.expires_us, item->expires_at);
    }
    /* Already uploaded in this state earlier in the round: only the log entries remain. */
    item->uploaded = round_set_has(&flusher->uploaded, item->key, item->record_version);
    return 0;
}

/* Reads up to `max` logged changes and the current state of their records in one short read
 * transaction. Returns how many changes, or a negative error. */
/*
 * Keeps the flush lag: the age of the oldest change not yet uploaded. The change log holds
 * versions, not times, so each look at it records the newest version seen and when. The oldest
 * change left was committed no later than the first look that saw its version or a later one,
 * so the lag is known to within the time between looks. Changes logged before this process
 * started count from its first look. When the ring is full its last sample absorbs newer
 * versions, which can only make the lag of those look longer, never shorter.
 */
static void note_span(gdn_flusher_t *flusher, uint64_t oldest, uint64_t newest)
{
    span_sample_t *ring = flusher->samples;
    int64_t since = 0;

    while (flusher->sample_count > 0 &&
           (oldest == 0 || ring[flusher->sample_first].newest < oldest)) {
        flusher->sample_first = (flusher->sample_first + 1) % SPAN_SAMPLES;
        flusher->sample_count--;
    }
    if (oldest != 0) {
        int last = (flusher->sample_first + flusher->sample_count - 1) % SPAN_SAMPLES;

        if (flusher->sample_count == 0 || ring[last].newest < newest) {
            if (flusher->sample_count == SPAN_SAMPLES) {
                ring[last].newest = newest;
            } else {
                last = (flusher->sample_first + flusher->sample_count) % SPAN_SAMPLES;
                ring[last] = (span_sample_t){.newest = newest, .seen_us = gdn_clock_now_us()};
                flusher->sample_count++;
            }
        }
        since = ring[flusher->sample_first].seen_us;
    }
    pthread_mutex_lock(&flusher->lock);
    flusher->stats.lag_since_us = since;
    pthread_mutex_unlock(&flusher->lock);
}

static int read_dirty(gdn_flusher_t *flusher, flush_item_t *items, int max)
{
    gdn_journal_dirty_t *dirty = calloc((size_t)max, sizeof(*dirty));
    gdn_journal_txn_t *txn;

    if (dirty == NULL)
        return -ENOMEM;

    int rc = gdn_journal_read_begin(flusher->reader, &txn);

    if (rc != 0) {
        free(dirty);
        return rc;
    }

    uint64_t oldest;
    uint64_t newest;
    int count = gdn_journal_dirty_span(txn, &oldest, &newest);

    if (count == 0) {
        note_span(flusher, oldest, newest);
        count = gdn_journal_dirty_list(txn, 0, dirty, max);
    }
    for (int i = 0; i < count; i++) {
        memset(&items[i], 0, sizeof(items[i]));
        memcpy(items[i].key, dirty[i].key, sizeof(items[i].key));
        items[i].version = dirty[i].version;
        items[i].deleted = dirty[i].deleted;
    }
    rc = count > 0 ? group_changes(items, count) : 0;
    for (int i = 0; i < count && rc == 0; i++) {
        if (items[i].follows < 0)
            rc = read_leader(flusher, txn, &items[i]);
    }
    gdn_journal_read_end(flusher->reader);
    free(dirty);
    if (rc != 0) {
        free_items(items, count);
        return rc;
    }
    return count;
}

/* Uploads the items that are not deletions, flush_concurrency at a time. Returns the number of
 * failures. */
static int upload_items(gdn_flusher_t *flusher, flush_item_t *items, int count)
{
    gdn_s3_request_t *requests = calloc((size_t)count, sizeof(*requests));
    int *which = calloc((size_t)count, sizeof(*which));
    int puts = 0;
    int failures = 0;

    if (requests == NULL || which == NULL) {
        free(requests);
        free(which);
        return count;
    }
    for (int i = 0; i < count; i++) {
        if (items[i].deleted || items[i].follows >= 0 || items[i].uploaded)
            continue;
        find_created_at(&items[i]);
        requests[puts] = (gdn_s3_request_t){
            .method = "PUT",
            .key = items[i].key,
            .body = items[i].json,
            .body_len = items[i].json_len,
            .content_type = "application/json",
            .meta_created_at = items[i].created_at[0] ? items[i].created_at : NULL,
            .meta_expires_at = items[i].expires_at[0] ? items[i].expires_at : NULL,
        };
        which[puts++] = i;
    }
    gdn_s3_perform(flusher->s3, requests, (size_t)puts);

    uint64_t done = 0;

    for (int r = 0; r < puts; r++) {
        if (gdn_s3_ok(&requests[r])) {
            items[which[r]].uploaded = 1;
            done++;
        } else {
            note_failure(flusher, &requests[r], items[which[r]].key);
            failures++;
        }
        gdn_s3_request_reset(&requests[r]);
    }
    if (done > 0)
        note_success(flusher, done, 0, 0);
    free(requests);
    free(which);
    return failures;
}

struct delete_failures {
    gdn_flusher_t *flusher;
    flush_item_t *items;
    int count;
    int failed;
};

static void on_delete_error(void *arg, const char *key, const char *code)
{
    struct delete_failures *failures = arg;
    gdn_s3_request_t shown = {.method = "POST", .http_status = 200};

    snprintf(shown.error_code, sizeof(shown.error_code), "%s", code);
    note_failure(failures->flusher, &shown, key);
    for (int i = 0; i < failures->count; i++) {
        if (failures->items[i].deleted && failures->items[i].follows < 0 &&
            strcmp(failures->items[i].key, key) == 0)
            failures->items[i].uploaded = 0;
    }
    failures->failed++;
}

/* Tells whether an item stands for an object to remove: the leader of a gone record not yet
 * removed this round. */
static int deletes_object(const flush_item_t *item)
{
    return item->deleted && item->follows < 0 && !item->uploaded;
}

/* Sends one DeleteObjects request for items[from, to). Returns the number of failures. */
static int delete_chunk(gdn_flusher_t *flusher, flush_item_t *items, int from, int to)
{
    const char *keys[GDN_S3_DELETE_MAX];
    int key_count = 0;

    for (int i = from; i < to; i++) {
        if (deletes_object(&items[i]))
            keys[key_count++] = items[i].key;
    }
    if (key_count == 0)
        return 0;

    gdn_s3_request_t request;
    char *storage;

    if (gdn_s3_delete_request(&request, keys, (size_t)key_count, &storage) != 0)
        return key_count;
    gdn_s3_perform(flusher->s3, &request, 1);

    struct delete_failures failures = {
        .flusher = flusher, .items = items + from, .count = to - from};

    /* A 200 that is not a DeleteObjects result (a proxy's or a console's page) deleted nothing. */
    if (gdn_s3_ok(&request) &&
        (request.response == NULL || strstr(request.response, "<DeleteResult") == NULL))
        snprintf(request.error_code, sizeof(request.error_code), "InvalidDeleteResult");
    if (gdn_s3_ok(&request) && request.error_code[0] == '\0') {
        for (int i = from; i < to; i++)
            items[i].uploaded = items[i].uploaded || deletes_object(&items[i]);
        gdn_s3_delete_errors(&request, on_delete_error, &failures);
        note_success(flusher, 0, (uint64_t)(key_count - failures.failed), 0);
    } else {
        note_failure(flusher, &request, NULL);
        failures.failed = key_count;
    }
    gdn_s3_request_reset(&request);
    free(storage);
    return failures.failed;
}

/* Removes the deleted items' objects, GDN_S3_DELETE_MAX keys per request. Returns the number
 * of failures. */
static int delete_items(gdn_flusher_t *flusher, flush_item_t *items, int count)
{
    int failures = 0;
    int from = 0;

    while (from < count) {
        int to = from;

        for (int keys = 0; to < count && keys < GDN_S3_DELETE_MAX; to++)
            keys += deletes_object(&items[to]);
        failures += delete_chunk(flusher, items, from, to);
        from = to;
    }
    return failures;
}

static int apply_clear(gdn_write_op_t *write, gdn_journal_txn_t *txn)
{
    clear_op_t *op = (clear_op_t *)write;

    for (int i = 0; i < op->count; i++) {
        if (!op->items[i].uploaded)
            continue;

        int rc = gdn_journal_dirty_clear(txn, op->items[i].key, op->items[i].version);

        if (rc != 0 && rc != GDN_ENOTFOUND)
            return rc;
    }
    return 0;
}

static void on_clear_done(gdn_write_op_t *write, int status)
{
    clear_op_t *op = (clear_op_t *)write;

    pthread_mutex_lock(&op->flusher->lock);
    op->done = 1;
    op->status = status;
    pthread_cond_broadcast(&op->flusher->wake);
    pthread_mutex_unlock(&op->flusher->lock);
}

/* Asks the writer to clear the marks of what was uploaded, and waits for the commit. */
static int clear_marks(gdn_flusher_t *flusher, flush_item_t *items, int count)
{
    clear_op_t op = {.write = {.apply = apply_clear, .done = on_clear_done},
                     .flusher = flusher,
                     .items = items,
                     .count = count};
    int rc = gdn_writer_submit(flusher->writer, &op.write);

    if (rc != 0)
        return rc;
    pthread_mutex_lock(&flusher->lock);
    while (!op.done)
        pthread_cond_wait(&flusher->wake, &flusher->lock);
    pthread_mutex_unlock(&flusher->lock);
    return op.status;
}

/* One step of a round: up to flush_batch_max records. Returns the number of records read (0
 * when nothing is dirty), or a negative code if anything failed. */
static int flush_step(gdn_flusher_t *flusher)
{
    int max = flusher->config->flush_batch_max;
    int count = read_dirty(flusher, flusher->items, max);

    if (count <= 0)
        return count;

    flush_item_t *items = flusher->items;
    int failures = upload_items(flusher, items, count);

    failures += delete_items(flusher, items, count);

    /* What the leaders did is done for their followers too; the round remembers it. */
    for (int i = 0; i < count; i++) {
        if (items[i].follows >= 0)
            items[i].uploaded = items[items[i].follows].uploaded;
        else if (items[i].uploaded)
            round_set_add(&flusher->uploaded, items[i].key, items[i].record_version);
    }

    int rc = clear_marks(flusher, flusher->items, count);

    if (rc != 0 && rc != GDN_ESHUTDOWN)
        gdn_log(GDN_LOG_WARN, "flusher", "clear_failed", "reason=\"%s\"", gdn_strerror(rc));
    free_items(flusher->items, count);
    return failures > 0 ? -EIO : rc != 0 ? rc : count;
}

/* Runs steps until nothing is dirty. Returns 0, or a negative code after a failure. */
static int flush_round(gdn_flusher_t *flusher)
{
    round_set_clear(&flusher->uploaded);
    for (int step = 0; step < ROUND_STEPS_MAX && !is_stopping(flusher); step++) {
        int rc = flush_step(flusher);

        if (rc < 0)
            return rc;
        if (rc < flusher->config->flush_batch_max)
            break;
    }
    note_success(flusher, 0, 0, 1);
    return 0;
}

/* The writer operation that logs everything again (see gdn_queue_relog_all). */
typedef struct relog_op {
    gdn_write_op_t write;
    gdn_flusher_t *flusher;
    gdn_queue_policy_t policy;
    int logged;
    int done;
    int status;
} relog_op_t;

static int apply_relog(gdn_write_op_t *write, gdn_journal_txn_t *txn)
{
    relog_op_t *op = (relog_op_t *)write;

    op->logged = gdn_queue_relog_all(txn, &op->policy, gdn_clock_now_us());
    return op->logged < 0 ? op->logged : 0;
}

static void on_relog_done(gdn_write_op_t *write, int status)
{
    relog_op_t *op = (relog_op_t *)write;

    pthread_mutex_lock(&op->flusher->lock);
    op->done = 1;
    op->status = status;
    pthread_cond_broadcast(&op->flusher->wake);
    pthread_mutex_unlock(&op->flusher->lock);
}

/*
 * A journal that ran without a bucket logged no changes. Before the first round to a bucket,
 * everything it holds is logged again, so that the bucket gets a full copy. Objects deleted
 * from the journal meanwhile are not known, and stay in the bucket.
 */
static int relog_if_untracked(gdn_flusher_t *flusher)
{
    gdn_journal_txn_t *txn;
    int untracked = 0;
    int rc = gdn_journal_read_begin(flusher->reader, &txn);

    if (rc == 0) {
        rc = gdn_journal_untracked(txn, &untracked);
        gdn_journal_read_end(flusher->reader);
    }
    if (rc != 0 || !untracked)
        return rc;

    relog_op_t op = {.write = {.apply = apply_relog, .done = on_relog_done}, .flusher = flusher};

    gdn_queue_policy_init(&op.policy, flusher->config);
    rc = gdn_writer_submit(flusher->writer, &op.write);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&flusher->lock);
    while (!op.done)
        pthread_cond_wait(&flusher->wake, &flusher->lock);
    pthread_mutex_unlock(&flusher->lock);
    if (op.status == 0)
        gdn_log(GDN_LOG_INFO, "flusher", "journal_relogged",
                "objects=%d reason=\"changes made without a bucket\"", op.logged);
    return op.status;
}

static int check_bucket(gdn_flusher_t *flusher)
{
    gdn_s3_request_t failed = {.method = "HEAD"};
    int rc = gdn_s3_ensure_bucket(flusher->s3, &failed);

    if (rc != 0) {
        note_failure(flusher, &failed, NULL);
        gdn_s3_request_reset(&failed);
        return rc;
    }
    rc = relog_if_untracked(flusher);
    if (rc != 0) {
        gdn_log(GDN_LOG_ERROR, "flusher", "relog_failed", "reason=\"%s\"", gdn_strerror(rc));
        return rc;
    }
    flusher->bucket_ready = 1;
    return 0;
}

/* The wait after `failures` failed rounds: exponential, capped, with jitter over its upper
 * half so that several servers do not retry in step. */
static int backoff_ms(gdn_flusher_t *flusher)
{
    long wait = BACKOFF_BASE_MS;

    for (int i = 1; i < flusher->failures && wait < flusher->config->flush_retry_max_ms; i++)
        wait *= 2;
    if (wait > flusher->config->flush_retry_max_ms)
        wait = flusher->config->flush_retry_max_ms;
    return (int)(wait / 2 + rand_r(&flusher->seed) % (wait / 2 + 1));
}

static void *flusher_main(void *arg)
{
    gdn_flusher_t *flusher = arg;

    while (!is_stopping(flusher)) {
        int rc = flusher->bucket_ready ? flush_round(flusher) : check_bucket(flusher);

        if (rc != 0 && !is_stopping(flusher)) {
            flusher->failures++;
            rest(flusher, backoff_ms(flusher), 0);
            continue;
        }
        flusher->failures = 0;
        if (flusher->bucket_ready)
            rest(flusher, flusher->config->flush_interval_ms, 1);
    }
    return NULL;
}

void gdn_flusher_notify(gdn_flusher_t *flusher, uint64_t changes)
{
    pthread_mutex_lock(&flusher->lock);
    flusher->changes += changes;
    if (flusher->changes >= (uint64_t)flusher->config->flush_batch_max)
        pthread_cond_broadcast(&flusher->wake);
    pthread_mutex_unlock(&flusher->lock);
}

static void on_commit(void *arg, uint64_t ops)
{
    gdn_flusher_notify(arg, ops);
}

static void free_flusher(gdn_flusher_t *flusher)
{
    gdn_s3_close(flusher->s3);
    gdn_journal_reader_close(flusher->reader);
    free(flusher->items);
    round_set_free(&flusher->uploaded);
    pthread_cond_destroy(&flusher->wake);
    pthread_mutex_destroy(&flusher->lock);
    free(flusher);
}

int gdn_flusher_start(gdn_flusher_t **out, const gdn_config_t *config, gdn_journal_t *journal,
                      gdn_writer_t *writer)
{
    gdn_flusher_t *flusher = calloc(1, sizeof(*flusher));

    *out = NULL;
    if (flusher == NULL)
        return -ENOMEM;
    flusher->config = config;
    flusher->journal = journal;
    flusher->writer = writer;
    flusher->seed = (unsigned)gdn_clock_now_us();
    pthread_mutex_init(&flusher->lock, NULL);
    pthread_cond_init(&flusher->wake, NULL);

    gdn_s3_config_t s3_config;

    gdn_s3_config_init(&s3_config, config);
    char err[256] = "";
    int rc = gdn_s3_open(&flusher->s3, &s3_config, err, sizeof(err));

    if (rc == 0)
        rc = gdn_journal_reader_open(journal, &flusher->reader);
    flusher->items = calloc((size_t)config->flush_batch_max, sizeof(*flusher->items));
    if (rc == 0 && flusher->items == NULL)
        rc = -ENOMEM;
    if (rc == 0)
        rc = -pthread_create(&flusher->thread, NULL, flusher_main, flusher);
    if (rc != 0) {
        gdn_log(GDN_LOG_ERROR, "flusher", "start_failed", "reason=\"%s\"",
                err[0] ? err : gdn_strerror(rc));
        free_flusher(flusher);
        return rc;
    }
    gdn_writer_set_commit_hook(writer, on_commit, flusher);
    *out = flusher;
    return 0;
}

void gdn_flusher_stop(gdn_flusher_t *flusher)
{
    if (flusher == NULL)
        return;
    /* The writer outlives the flusher and goes on committing (expiry, the last answers): it
     * must stop telling a flusher that is about to be freed. */
    gdn_writer_set_commit_hook(flusher->writer, NULL, NULL);
    pthread_mutex_lock(&flusher->lock);
    flusher->stopping = 1;
    pthread_cond_broadcast(&flusher->wake);
    pthread_mutex_unlock(&flusher->lock);
    gdn_s3_abort(flusher->s3);
    pthread_join(flusher->thread, NULL);
    free_flusher(flusher);
}

void gdn_flusher_stats(gdn_flusher_t *flusher, gdn_flusher_stats_t *out)
{
    pthread_mutex_lock(&flusher->lock);
    *out = flusher->stats;
    pthread_mutex_unlock(&flusher->lock);
}
