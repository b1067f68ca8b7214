/*
 * Import: load an export of the old key-value store into the journal.
 *
 * The old service wrote its task objects with every optional field present and null, and
 * times without a zone, sometimes without a fraction. Its objects are read here into the
 * structs of this server and rendered again, so that what the journal holds (and uploads) is
 * exactly what the server itself writes. Fields that TaskCreate gives a default may be absent
 * or null and take that default; the fields without one (id, task_type, status, created_at)
 * are required, and so are the claim of a processing task and the end of a finished one.
 *
 * Judging runs in two passes inside the one write transaction that stores the result: tasks,
 * workers and unknown keys first, then the completed copies and `queue:pending`, which are
 * checked against the tasks of the first pass and of the journal.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdn/clock.h"
#include "gdn/error.h"
#include "gdn/import.h"
#include "gdn/log.h"
#include "gdn/task.h"

#define US_PER_S INT64_C(1000000)
#define QUEUE_KEY "queue:pending"

/* TaskCreate's defaults, which the old objects may leave out. */
#define DEFAULT_ROLE "archivist"
#define DEFAULT_PRIORITY 5
#define DEFAULT_PROJECT "default"
#define DEFAULT_CONTEXT_LIMIT 10

/* One `{"key": K, "value": V}` entry. The key points into the file's document. */
typedef struct entry {
    const char *key;
    size_t key_len;
    const gdn_json_t *value;
} entry_t;

struct gdn_import_file {
    gdn_json_doc_t *doc;
    entry_t *entries;
    size_t count;
};

typedef enum key_kind {
    KIND_OTHER,
    KIND_TASK,
    KIND_COMPLETED,
    KIND_WORKER,
    KIND_QUEUE,
} key_kind_t;

typedef enum verdict {
    VERDICT_NONE,
    VERDICT_ACCEPTED,
    VERDICT_SKIPPED,
    VERDICT_REJECTED,
} verdict_t;

/* An entry being judged, and what will be stored for it. */
typedef struct item {
    const entry_t *entry;
    key_kind_t kind;
    verdict_t verdict;
    gdn_json_doc_t *doc;     /* the value's own document, when it was JSON in a string */
    const gdn_json_t *value; /* the decoded value */
    char id[GDN_JOURNAL_ID_LEN + 1];
    gdn_task_t task; /* a task read from the value; its strings point into a document */
    char key[GDN_JOURNAL_KEY_MAX + 1];
    char *json; /* the record as it will be stored, owned */
    size_t json_len;
    const char *store_json; /* `json`, or for a completed copy its task's */
    size_t store_json_len;
} item_t;

typedef struct import_run {
    gdn_journal_txn_t *txn;
    const gdn_queue_policy_t *policy;
    int64_t now_us;
    size_t record_max; /* longest record accepted, in bytes; 0 for any */
    gdn_import_report_t *report;
    item_t *items;
    size_t count;
    item_t **tasks; /* the task items with a valid id, sorted by id */
    size_t task_count;
} import_run_t;

/* ---- the file's shape ---- */

static int compare_entries(const void *a, const void *b)
{
    const entry_t *x = *(const entry_t *const *)a;
    const entry_t *y = *(const entry_t *const *)b;
    size_t common = x->key_len < y->key_len ? x->key_len : y->key_len;
    int order = memcmp(x->key, y->key, common);

    if (order != 0)
        return order;
    return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/* Copies a key into a NUL-terminated buffer for messages, stopping at a NUL it may hold. */
static const char *key_text(const char *key, size_t len, char *out, size_t out_size)
{
    size_t n = strnlen(key, len < out_size ? len : out_size - 1);

    memcpy(out, key, n);
    out[n] = '\0';
    return out;
}

/* A key named twice leaves no way to tell which value is meant: the file is refused. */
static int check_duplicates(const gdn_import_file_t *file, char *reason, size_t reason_size)
{
    const entry_t **sorted = malloc((file->count ? file->count : 1) * sizeof(*sorted));

    if (sorted == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < file->count; i++)
        sorted[i] = &file->entries[i];
    qsort(sorted, file->count, sizeof(*sorted), compare_entries);

    int rc = 0;

    for (size_t i = 1; i < file->count && rc == 0; i++) {
        if (compare_entries(&sorted[i - 1], &sorted[i]) != 0)
            continue;

        char text[GDN_JOURNAL_KEY_MAX + 1], quoted[2 * GDN_JOURNAL_KEY_MAX];

        key_text(sorted[i]->key, sorted[i]->key_len, text, sizeof(text));
        snprintf(reason, reason_size, "key %s appears more than once",
                 gdn_log_quote(text, quoted, sizeof(quoted)));
        rc = GDN_EINVALID;
    }
    free(sorted);
    return rc;
}

/* Fills the entries from the root array, refusing anything but `{"key": K, "value": V}`. */
static int read_entries(gdn_import_file_t *file, char *reason, size_t reason_size)
{
    const gdn_json_t *root = gdn_json_root(file->doc);

    if (root->type != GDN_JSON_ARRAY) {
        snprintf(reason, reason_size, "not a JSON array of {\"key\": K, \"value\": V} entries");
        return GDN_EINVALID;
    }
    file->entries = calloc(root->count ? root->count : 1, sizeof(*file->entries));
    if (file->entries == NULL)
        return -ENOMEM;

    size_t at = 0;

    for (const gdn_json_t *item = root->first; item != NULL; item = item->next, at++) {
        const gdn_json_t *key = gdn_json_get(item, "key");
        const gdn_json_t *value = gdn_json_get(item, "value");

        if (key == NULL || key->type != GDN_JSON_STRING || value == NULL) {
            snprintf(reason, reason_size,
                     "entry %zu (counting from 1) is not a {\"key\": K, \"value\": V} object with "
                     "a string key",
                     at + 1);
            return GDN_EINVALID;
        }
        file->entries[at] = (entry_t){.key = key->text, .key_len = key->len, .value = value};
    }
    file->count = at;
    return check_duplicates(file, reason, reason_size);
}

int gdn_import_parse(const char *text, size_t len, gdn_import_file_t **out, char *reason,
                     size_t reason_size)
{
    gdn_import_file_t *file = calloc(1, sizeof(*file));
    gdn_json_error_t error = {0};

    *out = NULL;
    reason[0] = '\0';
    if (file == NULL)
        return -ENOMEM;

    int rc = gdn_json_parse(text, len, &file->doc, &error);

    if (rc == GDN_EINVALID)
        snprintf(reason, reason_size, "not JSON: %s at byte %zu", error.message, error.offset);
    if (rc == 0)
        rc = read_entries(file, reason, reason_size);
    if (rc != 0) {
        gdn_import_file_free(file);
        return rc;
    }
    *out = file;
    return 0;
}

void gdn_import_file_free(gdn_import_file_t *file)
{
    if (file == NULL)
        return;
    gdn_json_free(file->doc);
    free(file->entries);
    free(file);
}

/* ---- the report ---- */

static char *copy_text(const char *text, size_t len)
{
    char *copy = malloc(len + 1);

    if (copy != NULL) {
        memcpy(copy, text, len);
        copy[len] = '\0';
    }
    return copy;
}

/* Records a skipped or rejected entry (or listed id, when `id` is not NULL). */
static int add_note(gdn_import_report_t *report, const entry_t *entry, int rejected,
                    const gdn_json_t *id, const char *reason)
{
    if (report->note_count == report->note_cap) {
        size_t cap = report->note_cap ? report->note_cap * 2 : 16;
        gdn_import_note_t *grown = realloc(report->notes, cap * sizeof(*grown));

        if (grown == NULL)
            return -ENOMEM;
        report->notes = grown;
        report->note_cap = cap;
    }

    gdn_import_note_t *note = &report->notes[report->note_count];

    memset(note, 0, sizeof(*note));
    note->rejected = rejected;
    snprintf(note->reason, sizeof(note->reason), "%s", reason);
    note->key = copy_text(entry->key, entry->key_len);
    if (id != NULL)
        note->id = copy_text(id->text, id->len);
    if (note->key == NULL || (id != NULL && note->id == NULL)) {
        free(note->key);
        free(note->id);
        return -ENOMEM;
    }
    report->note_count++;
    if (rejected)
        report->rejected++;
    else
        report->skipped++;
    return 0;
}

/* Gives an item its verdict, with a note unless it was accepted. */
static int judge(import_run_t *run, item_t *item, verdict_t verdict, const char *reason)
{
    item->verdict = verdict;
    if (verdict == VERDICT_ACCEPTED)
        return 0;
    return add_note(run->report, item->entry, verdict == VERDICT_REJECTED, NULL, reason);
}

void gdn_import_report_print(const gdn_import_report_t *report, FILE *out)
{
    for (size_t i = 0; i < report->note_count; i++) {
        const gdn_import_note_t *note = &report->notes[i];
        char key[2 * GDN_JOURNAL_KEY_MAX], id[2 * GDN_JOURNAL_KEY_MAX];
        char reason[2 * GDN_IMPORT_REASON_MAX];

        fprintf(out, "%s key=%s", note->rejected ? "rejected" : "skipped",
                gdn_log_quote(note->key, key, sizeof(key)));
        if (note->id != NULL)
            fprintf(out, " id=%s", gdn_log_quote(note->id, id, sizeof(id)));
        fprintf(out, " reason=%s\n", gdn_log_quote(note->reason, reason, sizeof(reason)));
    }
    fprintf(out,
            "imported %llu (tasks %llu, pending %llu, completed %llu, workers %llu), skipped "
            "%llu, rejected %llu\n",
            (unsigned long long)report->imported, (unsigned long long)report->tasks,
            (unsigned long long)report->pending, (unsigned long long)report->completed,
            (unsigned long long)report->workers, (unsigned long long)report->skipped,
            (unsigned long long)report->rejected);
}

void gdn_import_report_free(gdn_import_report_t *report)
{
    for (size_t i = 0; i < report->note_count; i++) {
        free(report->notes[i].key);
        free(report->notes[i].id);
    }
    free(report->notes);
    memset(report, 0, sizeof(*report));
}

/* ---- reading the old objects ---- */

/* Reads the fields of one object; the first problem is kept as the reason. */
typedef struct field_reader {
    const gdn_json_t *object;
    char *reason;
    size_t reason_size;
    int failed;
} field_reader_t;

static void fail(field_reader_t *reader, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(field_reader_t *reader, const char *fmt, ...)
{
    if (reader->failed++)
        return;

    va_list args;

    va_start(args, fmt);
    vsnprintf(reader->reason, reader->reason_size, fmt, args);
    va_end(args);
}

/* A field's value, or NULL when it is absent or null: the old service wrote both for "unset". */
static const gdn_json_t *field(const field_reader_t *reader, const char *name)
{
    const gdn_json_t *value = gdn_json_get(reader->object, name);

    return value == NULL || value->type == GDN_JSON_NULL ? NULL : value;
}

/* What a string field may hold. */
typedef struct text_rule {
    size_t min_len;
    size_t max_len;
    const char *forbidden;      /* characters refused besides NUL, or NULL to allow NUL too */
    const char *forbidden_text; /* how a message names them */
} text_rule_t;

static const text_rule_t any_text = {.max_len = SIZE_MAX};
static const text_rule_t field_text = {.max_len = GDN_TASK_FIELD_MAX};
/* Roles are listed comma-separated in polls; worker ids are part of a record key. */
static const text_rule_t role_text = {
    .min_len = 1, .max_len = GDN_JOURNAL_ROLE_MAX, .forbidden = ",", .forbidden_text = "','"};
static const text_rule_t worker_text = {.min_len = 1,
                                        .max_len = GDN_WORKER_ID_MAX,
                                        .forbidden = GDN_WORKER_ID_FORBIDDEN,
                                        .forbidden_text = "'/', a control character"};

/* Reads a string field; an unset one keeps *text. @return 1 if it was set and valid. */
static int read_text(field_reader_t *reader, const char *name, int required,
                     const text_rule_t *rule, const char **text, size_t *len)
{
    const gdn_json_t *value = field(reader, name);

    if (value == NULL) {
        if (required)
            fail(reader, "%s is missing", name);
        return 0;
    }
    if (value->type != GDN_JSON_STRING) {
        fail(reader, "%s is not a string", name);
        return 0;
    }
    if (value->len < rule->min_len || value->len > rule->max_len) {
        fail(reader, "%s has %zu bytes, outside %zu to %zu", name, value->len, rule->min_len,
             rule->max_len);
        return 0;
    }
    for (size_t i = 0; rule->forbidden != NULL && i < value->len; i++) {
        if (value->text[i] == '\0' || strchr(rule->forbidden, value->text[i]) != NULL) {
            fail(reader, "%s holds %s or a NUL character", name, rule->forbidden_text);
            return 0;
        }
    }
    *text = value->text;
    *len = value->len;
    return 1;
}

/* Reads an integer field within [min, max]; an unset one keeps *out. */
static void read_integer(field_reader_t *reader, const char *name, int64_t min, int64_t max,
                         int64_t *out)
{
    const gdn_json_t *value = field(reader, name);
    int64_t number;

    if (value == NULL)
        return;
    if (gdn_json_int(value, &number) != 0 || number < min || number > max)
        fail(reader, "%s is not an integer from %lld to %lld", name, (long long)min,
             (long long)max);
    else
        *out = number;
}

/* Reads an ISO-8601 time field; an unset one keeps *out. @return 1 if it was set and valid. */
static int read_when(field_reader_t *reader, const char *name, int required, int64_t *out)
{
    const char *text = NULL;
    size_t len = 0;

    if (!read_text(reader, name, required, &any_text, &text, &len))
        return 0;
    if (gdn_clock_parse(text, len, out) != 0) {
        fail(reader, "%s is not an ISO-8601 time", name);
        return 0;
    }
    return 1;
}

/* Reads a field that must be a JSON value of one type; an unset one keeps *out. */
static void read_typed(field_reader_t *reader, const char *name, gdn_json_type_t type,
                       const char *what, const gdn_json_t **out)
{
    const gdn_json_t *value = field(reader, name);

    if (value == NULL)
        return;
    if (value->type != type)
        fail(reader, "%s is not %s", name, what);
    else
        *out = value;
}

static void read_task_identity(field_reader_t *reader, gdn_task_t *task)
{
    const char *id = NULL;
    size_t id_len = 0;
    const char *status = NULL;
    size_t status_len = 0;

    if (read_text(reader, "id", 1, &any_text, &id, &id_len)) {
        if (gdn_task_id_valid(id, id_len))
            memcpy(task->id, id, GDN_JOURNAL_ID_LEN);
        else
            fail(reader, "id is not a lower-case UUID");
    }
    if (read_text(reader, "status", 1, &any_text, &status, &status_len) &&
        gdn_task_status_parse(status, status_len, &task->status) != 0)
        fail(reader, "status is not one of pending, processing, completed, failed, cancelled");
    read_when(reader, "created_at", 1, &task->created_us);
    task->updated_us = task->created_us;
    read_when(reader, "updated_at", 0, &task->updated_us);
}

static void read_task_body(field_reader_t *reader, gdn_task_t *task)
{
    const gdn_json_t *enabled = NULL;

    read_text(reader, "role", 0, &role_text, &task->role, &task->role_len);
    read_text(reader, "task_type", 1, &field_text, &task->task_type, &task->task_type_len);
    read_typed(reader, "input_data", GDN_JSON_OBJECT, "an object", &task->input_data);
    read_integer(reader, "priority", INT64_MIN, INT64_MAX, &task->priority);
    read_text(reader, "project_id", 0, &field_text, &task->project_id, &task->project_id_len);
    read_typed(reader, "context_enabled", GDN_JSON_BOOL, "a boolean", &enabled);
    if (enabled != NULL)
        task->context_enabled = enabled->boolean;
    read_integer(reader, "context_limit", INT64_MIN, INT64_MAX, &task->context_limit);
    read_text(reader, "observation_id", 0, &field_text, &task->observation_id,
              &task->observation_id_len);
    read_text(reader, "error", 0, &any_text, &task->error, &task->error_len);
    task->late_result = field(reader, "late_result");
}

/* The claim, the end and the extension fields, as far as the task's status uses them. */
static void read_task_state(field_reader_t *reader, gdn_task_t *task)
{
    if (read_text(reader, "assigned_to", 0, &worker_text, &task->assigned_to,
                  &task->assigned_to_len))
        read_when(reader, "assigned_at", 1, &task->assigned_us);
    if (task->status == GDN_TASK_PROCESSING && task->assigned_to == NULL)
        fail(reader, "assigned_to is missing: a processing task is held by a worker");
    /* A pending task is held by nobody: a claim it went through before was given up. */
    if (task->status == GDN_TASK_PENDING) {
        task->assigned_to = NULL;
        task->assigned_to_len = 0;
        task->assigned_us = 0;
    }

    task->finished = task->status == GDN_TASK_COMPLETED || task->status == GDN_TASK_FAILED;
    if (task->finished) {
        task->result = field(reader, "result");
        read_when(reader, "completed_at", 1, &task->completed_us);
    }
    read_integer(reader, "attempts", 0, GDN_TASK_MAX_ATTEMPTS_LIMIT, &task->attempts);
    read_integer(reader, "max_attempts", 1, GDN_TASK_MAX_ATTEMPTS_LIMIT, &task->max_attempts);
    read_integer(reader, "lease_s", 1, GDN_TASK_LEASE_MAX_S, &task->lease_s);
    read_when(reader, "run_at", 0, &task->run_at_us);
}

/*
 * Reads an old task object into `task`, whose strings then point into the object's document.
 * @return 0, or GDN_EINVALID with the first problem in `reason`.
 */
static int read_old_task(const gdn_json_t *object, const gdn_queue_policy_t *policy,
                         gdn_task_t *task, char *reason, size_t reason_size)
{
    field_reader_t reader = {.object = object, .reason = reason, .reason_size = reason_size};

    if (object->type != GDN_JSON_OBJECT) {
        snprintf(reason, reason_size, "the value is not a JSON object");
        return GDN_EINVALID;
    }
    *task = (gdn_task_t){
        .role = DEFAULT_ROLE,
        .role_len = strlen(DEFAULT_ROLE),
        .priority = DEFAULT_PRIORITY,
        .project_id = DEFAULT_PROJECT,
        .project_id_len = strlen(DEFAULT_PROJECT),
        .context_enabled = 1,
        .context_limit = DEFAULT_CONTEXT_LIMIT,
        .max_attempts = GDN_TASK_MAX_ATTEMPTS_DEFAULT,
        .lease_s = policy->task_lease_s,
    };
    read_task_identity(&reader, task);
    read_task_body(&reader, task);
    read_task_state(&reader, task);
    return reader.failed ? GDN_EINVALID : 0;
}

static int read_old_worker(const gdn_json_t *object, gdn_worker_t *worker, char *reason,
                           size_t reason_size)
{
    field_reader_t reader = {.object = object, .reason = reason, .reason_size = reason_size};

    if (object->type != GDN_JSON_OBJECT) {
        snprintf(reason, reason_size, "the value is not a JSON object");
        return GDN_EINVALID;
    }
    memset(worker, 0, sizeof(*worker));
    read_text(&reader, "worker_id", 1, &worker_text, &worker->worker_id, &worker->worker_id_len);
    read_typed(&reader, "capabilities", GDN_JSON_ARRAY, "an array", &worker->capabilities);
    for (const gdn_json_t *item = worker->capabilities ? worker->capabilities->first : NULL;
         item != NULL; item = item->next) {
        if (item->type != GDN_JSON_STRING)
            fail(&reader, "capabilities holds something other than strings");
    }
    read_when(&reader, "registered_at", 1, &worker->registered_us);
    worker->last_heartbeat_us = worker->registered_us;
    read_when(&reader, "last_heartbeat", 0, &worker->last_heartbeat_us);
    return reader.failed ? GDN_EINVALID : 0;
}

/* ---- judging ---- */

/* Tells what a key names, and copies its id into item->id for tasks and completed copies. */
static key_kind_t classify(item_t *item)
{
    const char *key = item->entry->key;
    size_t len = item->entry->key_len;

    if (len == strlen(QUEUE_KEY) && memcmp(key, QUEUE_KEY, len) == 0)
        return KIND_QUEUE;
    if (len > 7 && memcmp(key, "worker:", 7) == 0)
        return KIND_WORKER;

    key_kind_t kind = KIND_OTHER;
    size_t prefix = 0;

    if (len > 5 && memcmp(key, "task:", 5) == 0) {
        kind = KIND_TASK;
        prefix = 5;
    } else if (len > 10 && memcmp(key, "completed:", 10) == 0) {
        kind = KIND_COMPLETED;
        prefix = 10;
    }
    if (kind != KIND_OTHER && gdn_task_id_valid(key + prefix, len - prefix))
        memcpy(item->id, key + prefix, GDN_JOURNAL_ID_LEN);
    return kind;
}

/* Decodes a value: JSON held in a string is parsed into a document of the item's own. */
static int decode_value(item_t *item, char *reason, size_t reason_size)
{
    const gdn_json_t *value = item->entry->value;

    if (value->type == GDN_JSON_OBJECT || value->type == GDN_JSON_ARRAY) {
        item->value = value;
        return 0;
    }
    if (value->type != GDN_JSON_STRING) {
        snprintf(reason, reason_size, "the value is neither JSON text nor an object or array");
        return GDN_EINVALID;
    }

    gdn_json_error_t error = {0};
    int rc = gdn_json_parse(value->text, value->len, &item->doc, &error);

    if (rc == GDN_EINVALID)
        snprintf(reason, reason_size, "the value's text is not JSON: %s at byte %zu", error.message,
                 error.offset);
    if (rc == 0)
        item->value = gdn_json_root(item->doc);
    return rc;
}

/* Tells whether the journal holds a record. @return 1, 0, or a journal error. */
static int stored(import_run_t *run, const char *key)
{
    gdn_journal_record_t record;
    int rc = gdn_journal_get(run->txn, key, strlen(key), &record);

    if (rc == GDN_ENOTFOUND)
        return 0;
    return rc == 0 ? 1 : rc;
}

/* How far ahead of this clock a recorded time may be: the old service's clock may have been
 * off a little, but a time days ahead would keep a worker alive or a task unexpired for good. */
#define FUTURE_SKEW_US (86400 * US_PER_S)

/* Names the first of the times that lies too far ahead of `now_us`, or returns NULL. */
static const char *time_ahead(int64_t now_us, const int64_t *times, const char *const *names,
                              size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (times[i] > now_us + FUTURE_SKEW_US)
            return names[i];
    }
    return NULL;
}

/* Checks what the server itself could never have stored: times ahead of now, and more
 * attempts than allowed. Returns 0, or GDN_EINVALID with the reason. */
static int check_task_plausible(const import_run_t *run, const gdn_task_t *task, char *reason,
                                size_t reason_size)
{
    static const char *const names[] = {"created_at", "updated_at", "assigned_at", "completed_at"};
    const int64_t times[] = {task->created_us, task->updated_us, task->assigned_us,
                             task->completed_us};
    const char *ahead = time_ahead(run->now_us, times, names, 4);

    if (ahead != NULL) {
        snprintf(reason, reason_size, "%s is more than a day in the future", ahead);
        return GDN_EINVALID;
    }
    if (task->attempts > task->max_attempts) {
        snprintf(reason, reason_size, "attempts is above max_attempts");
        return GDN_EINVALID;
    }
    if (task->status == GDN_TASK_PENDING && task->attempts == task->max_attempts) {
        snprintf(reason, reason_size,
                 "a pending task must have attempts left: attempts is "
                 "max_attempts");
        return GDN_EINVALID;
    }
    return 0;
}

/* Decodes an item's value as a task (for task:ID and completed:ID) with the id of its key. */
static int read_item_task(import_run_t *run, item_t *item, char *reason, size_t reason_size)
{
    if (item->id[0] == '\0') {
        snprintf(reason, reason_size, "the key's id is not a lower-case UUID");
        return GDN_EINVALID;
    }

    int rc = decode_value(item, reason, reason_size);

    if (rc == 0)
        rc = read_old_task(item->value, run->policy, &item->task, reason, reason_size);
    if (rc == 0 && memcmp(item->task.id, item->id, GDN_JOURNAL_ID_LEN) != 0) {
        snprintf(reason, reason_size, "the key's id differs from the object's id");
        rc = GDN_EINVALID;
    }
    if (rc == 0)
        rc = check_task_plausible(run, &item->task, reason, reason_size);
    return rc;
}

/* Accepts an item with the record rendered for it (length in item->json_len), or NULL when
 * rendering ran out of memory. */
static int accept_rendered(import_run_t *run, item_t *item, char *json)
{
    if (json == NULL)
        return -ENOMEM;
    if (run->record_max > 0 && item->json_len > run->record_max) {
        char reason[GDN_IMPORT_REASON_MAX];

        snprintf(reason, sizeof(reason), "the record takes %zu bytes, over max_body_bytes (%zu)",
                 item->json_len, run->record_max);
        free(json);
        return judge(run, item, VERDICT_REJECTED, reason);
    }
    item->json = json;
    item->store_json = json;
    item->store_json_len = item->json_len;
    return judge(run, item, VERDICT_ACCEPTED, NULL);
}

/* Tells whether a finished or cancelled task's retention ended by now. */
static int task_expired(const import_run_t *run, const gdn_task_t *task)
{
    int ended = task->finished || task->status == GDN_TASK_CANCELLED;

    return ended && run->policy->task_retention_s > 0 &&
           task->updated_us + run->policy->task_retention_s * US_PER_S <= run->now_us;
}

static int judge_task(import_run_t *run, item_t *item)
{
    char reason[GDN_IMPORT_REASON_MAX];
    int rc = read_item_task(run, item, reason, sizeof(reason));

    if (rc == GDN_EINVALID)
        return judge(run, item, VERDICT_REJECTED, reason);
    if (rc != 0)
        return rc;
    gdn_record_key(item->key, "task", item->id, GDN_JOURNAL_ID_LEN);
    rc = stored(run, item->key);
    if (rc != 0)
        return rc < 0 ? rc : judge(run, item, VERDICT_SKIPPED, "exists");
    if (task_expired(run, &item->task))
        return judge(run, item, VERDICT_SKIPPED, "expired");

    /* A task that was running when the old store was exported gets a fresh lease: the worker
     * still running it can complete it, and if none does it goes back to pending when the
     * lease lapses. Its current claim counts as an attempt. */
    gdn_task_t *task = &item->task;

    if (task->status == GDN_TASK_PROCESSING) {
        int64_t lease_s = task->lease_s > 0 ? task->lease_s : run->policy->task_lease_s;

        task->lease_expires_us = run->now_us + lease_s * US_PER_S;
        if (task->attempts < 1)
            task->attempts = 1;
    }
    return accept_rendered(run, item, gdn_task_render(task, &item->json_len));
}

static int judge_worker(import_run_t *run, item_t *item)
{
    char reason[GDN_IMPORT_REASON_MAX];
    gdn_worker_t worker;
    int rc = decode_value(item, reason, sizeof(reason));

    if (rc == 0)
        rc = read_old_worker(item->value, &worker, reason, sizeof(reason));
    if (rc == 0 && (worker.worker_id_len + 7 != item->entry->key_len ||
                    memcmp(worker.worker_id, item->entry->key + 7, worker.worker_id_len) != 0)) {
        snprintf(reason, sizeof(reason), "the key's id differs from the object's worker_id");
        rc = GDN_EINVALID;
    }
    if (rc == 0) {
        static const char *const names[] = {"registered_at", "last_heartbeat"};
        const int64_t times[] = {worker.registered_us, worker.last_heartbeat_us};
        const char *ahead = time_ahead(run->now_us, times, names, 2);

        if (ahead != NULL) {
            snprintf(reason, sizeof(reason), "%s is more than a day in the future", ahead);
            rc = GDN_EINVALID;
        }
    }
    if (rc == GDN_EINVALID)
        return judge(run, item, VERDICT_REJECTED, reason);
    if (rc != 0)
        return rc;
    gdn_record_key(item->key, "worker", worker.worker_id, worker.worker_id_len);
    rc = stored(run, item->key);
    if (rc != 0)
        return rc < 0 ? rc : judge(run, item, VERDICT_SKIPPED, "exists");
    if (worker.last_heartbeat_us + run->policy->worker_ttl_s * US_PER_S <= run->now_us)
        return judge(run, item, VERDICT_SKIPPED, "expired");
    return accept_rendered(run, item, gdn_worker_render(&worker, &item->json_len));
}

static int compare_task_items(const void *a, const void *b)
{
    const item_t *x = *(const item_t *const *)a;
    const item_t *y = *(const item_t *const *)b;

    return memcmp(x->id, y->id, GDN_JOURNAL_ID_LEN);
}

/* Finds the task:ID item of the file with this id, or NULL. */
static item_t *find_task(const import_run_t *run, const char *id, size_t id_len)
{
    if (!gdn_task_id_valid(id, id_len))
        return NULL;

    item_t probe = {0};
    const item_t *key = &probe;

    memcpy(probe.id, id, GDN_JOURNAL_ID_LEN);

    item_t **found =
        bsearch(&key, run->tasks, run->task_count, sizeof(*run->tasks), compare_task_items);

    return found != NULL ? *found : NULL;
}

/* A completed copy is uploaded from its finished task: it goes in with its task, or not at all. */
static int judge_completed(import_run_t *run, item_t *item)
{
    char reason[GDN_IMPORT_REASON_MAX];
    int rc = read_item_task(run, item, reason, sizeof(reason));

    if (rc == 0 && !item->task.finished) {
        snprintf(reason, sizeof(reason), "a completed copy must be completed or failed, not %s",
                 gdn_task_status_name(item->task.status));
        rc = GDN_EINVALID;
    }
    if (rc == GDN_EINVALID)
        return judge(run, item, VERDICT_REJECTED, reason);
    if (rc != 0)
        return rc;

    char task_key[GDN_JOURNAL_KEY_MAX + 1];

    gdn_record_key(item->key, "completed", item->id, GDN_JOURNAL_ID_LEN);
    gdn_record_key(task_key, "task", item->id, GDN_JOURNAL_ID_LEN);
    rc = stored(run, task_key);
    if (rc != 0)
        return rc < 0 ? rc : judge(run, item, VERDICT_SKIPPED, "exists");

    const item_t *task = find_task(run, item->id, GDN_JOURNAL_ID_LEN);

    if (task == NULL)
        return judge(run, item, VERDICT_REJECTED, "no task:ID of this id in the export or journal");
    if (task->verdict == VERDICT_REJECTED)
        return judge(run, item, VERDICT_REJECTED, "its task:ID was rejected");
    if (task->verdict == VERDICT_SKIPPED)
        return judge(run, item, VERDICT_SKIPPED, "its task:ID was skipped");
    if (!task->task.finished) {
        snprintf(reason, sizeof(reason), "its task:ID is %s, not finished",
                 gdn_task_status_name(task->task.status));
        return judge(run, item, VERDICT_REJECTED, reason);
    }
    /* The flusher uploads the copy from the task and expires it by the task's completed_at. */
    if (task->task.completed_us + run->policy->completed_ttl_s * US_PER_S <= run->now_us)
        return judge(run, item, VERDICT_SKIPPED, "expired");
    item->store_json = task->store_json;
    item->store_json_len = task->store_json_len;
    return judge(run, item, VERDICT_ACCEPTED, NULL);
}

/* Why a listed id of queue:pending does not name a task that will be pending, or NULL. */
static int check_listed(import_run_t *run, const gdn_json_t *id, const char **why)
{
    const item_t *task = find_task(run, id->text, id->len);

    *why = NULL;
    if (task != NULL && task->verdict == VERDICT_ACCEPTED) {
        if (task->task.status != GDN_TASK_PENDING)
            *why = "its task is not pending";
        return 0;
    }
    if (task != NULL && task->verdict == VERDICT_REJECTED) {
        *why = "its task:ID was rejected";
        return 0;
    }

    gdn_journal_record_t record;
    char key[GDN_JOURNAL_KEY_MAX + 1];
    int rc = GDN_ENOTFOUND;

    if (gdn_task_id_valid(id->text, id->len))
        rc =
            gdn_journal_get(run->txn, key, gdn_record_key(key, "task", id->text, id->len), &record);
    if (rc == GDN_ENOTFOUND) {
        *why = task != NULL ? "its task:ID was skipped"
                            : "no task:ID of this id in the export "
                              "or journal";
        return 0;
    }
    if (rc != 0)
        return rc;

    gdn_json_doc_t *doc = NULL;
    gdn_task_t stored_task;

    if (gdn_task_from_json(record.json, record.json_len, &stored_task, &doc) != 0 ||
        stored_task.status != GDN_TASK_PENDING)
        *why = "its task is not pending";
    gdn_json_free(doc);
    return 0;
}

/* The old pending list is only cross-checked: the claim order comes from the tasks. */
static int judge_queue(import_run_t *run, item_t *item)
{
    char reason[GDN_IMPORT_REASON_MAX];
    int rc = decode_value(item, reason, sizeof(reason));

    if (rc == 0 && item->value->type != GDN_JSON_ARRAY) {
        snprintf(reason, sizeof(reason), "queue:pending is not an array of task ids");
        rc = GDN_EINVALID;
    }
    for (const gdn_json_t *id = rc == 0 ? item->value->first : NULL; id != NULL; id = id->next) {
        if (id->type != GDN_JSON_STRING) {
            snprintf(reason, sizeof(reason), "queue:pending holds something other than ids");
            rc = GDN_EINVALID;
        }
    }
    if (rc == GDN_EINVALID)
        return judge(run, item, VERDICT_REJECTED, reason);
    if (rc != 0)
        return rc;
    item->verdict = VERDICT_ACCEPTED;
    for (const gdn_json_t *id = item->value->first; id != NULL && rc == 0; id = id->next) {
        const char *why;

        rc = check_listed(run, id, &why);
        if (rc == 0 && why != NULL)
            rc = add_note(run->report, item->entry, 0, id, why);
    }
    return rc;
}

static int judge_first(import_run_t *run, item_t *item)
{
    switch (item->kind) {
    case KIND_TASK:
        return judge_task(run, item);
    case KIND_WORKER:
        return judge_worker(run, item);
    case KIND_OTHER:
        return judge(run, item, VERDICT_REJECTED,
                     "not a key this server imports (task:ID, worker:ID, completed:ID, "
                     "queue:pending)");
    default:
        return 0;
    }
}

static int judge_all(import_run_t *run)
{
    int rc = 0;

    for (size_t i = 0; i < run->count && rc == 0; i++)
        rc = judge_first(run, &run->items[i]);
    if (rc != 0)
        return rc;

    run->tasks = malloc((run->count ? run->count : 1) * sizeof(*run->tasks));
    if (run->tasks == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < run->count; i++) {
        if (run->items[i].kind == KIND_TASK && run->items[i].id[0] != '\0')
            run->tasks[run->task_count++] = &run->items[i];
    }
    qsort(run->tasks, run->task_count, sizeof(*run->tasks), compare_task_items);

    for (size_t i = 0; i < run->count && rc == 0; i++) {
        item_t *item = &run->items[i];

        if (item->kind == KIND_COMPLETED)
            rc = judge_completed(run, item);
        else if (item->kind == KIND_QUEUE)
            rc = judge_queue(run, item);
    }
    return rc;
}

/* ---- storing ---- */

static int store_item(import_run_t *run, const item_t *item)
{
    gdn_queue_kind_t kind;
    int rc = gdn_queue_import(run->txn, run->policy, item->key, item->store_json,
                              item->store_json_len, &kind);

    if (rc != 0)
        return rc;
    run->report->imported++;
    run->report->tasks += kind == GDN_QUEUE_KIND_TASK || kind == GDN_QUEUE_KIND_PENDING_TASK;
    run->report->pending += kind == GDN_QUEUE_KIND_PENDING_TASK;
    run->report->completed += kind == GDN_QUEUE_KIND_COMPLETED;
    run->report->workers += kind == GDN_QUEUE_KIND_WORKER;
    return 0;
}

/* Stores the accepted records, tasks before the completed copies uploaded from them. */
static int store_all(import_run_t *run)
{
    int rc = 0;

    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        for (size_t i = 0; i < run->count && rc == 0; i++) {
            const item_t *item = &run->items[i];

            if (item->verdict != VERDICT_ACCEPTED || item->kind == KIND_QUEUE)
                continue;
            if ((item->kind == KIND_COMPLETED) == (pass == 1))
                rc = store_item(run, item);
        }
    }
    return rc;
}

static void free_items(import_run_t *run)
{
    for (size_t i = 0; i < run->count; i++) {
        free(run->items[i].json);
        gdn_json_free(run->items[i].doc);
    }
    free(run->items);
    free(run->tasks);
}

int gdn_import_run(gdn_journal_t *journal, const gdn_queue_policy_t *policy,
                   const gdn_import_file_t *file, int64_t now_us, size_t record_max, int dry_run,
                   gdn_import_report_t *report)
{
    import_run_t run = {
        .policy = policy, .now_us = now_us, .record_max = record_max, .report = report};

    memset(report, 0, sizeof(*report));
    run.items = calloc(file->count ? file->count : 1, sizeof(*run.items));
    if (run.items == NULL)
        return -ENOMEM;
    run.count = file->count;
    for (size_t i = 0; i < file->count; i++) {
        run.items[i].entry = &file->entries[i];
        run.items[i].kind = classify(&run.items[i]);
    }

    int rc = gdn_journal_write_begin(journal, &run.txn);

    if (rc == 0)
        rc = judge_all(&run);
    if (rc == 0)
        rc = store_all(&run);
    /* The server keeps the map's last share for claims, completions and expiry; an import that
     * would eat into it could leave a journal whose workers cannot drain the queue. */
    if (rc == 0) {
        int full = gdn_journal_txn_reaches_reserve(run.txn);

        rc = full > 0 ? GDN_EJOURNAL_FULL : full;
    }
    if (rc == 0 && !dry_run)
        rc = gdn_journal_commit(run.txn);
    else
        gdn_journal_abort(run.txn);
    free_items(&run);
    return rc;
}
