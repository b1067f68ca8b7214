/*
 * Unit tests of the import of an old key-value export against a real journal in a temporary
 * directory: the file's shape, the records imported (values as JSON and as JSON in strings),
 * the claim order and leases they get, the change log, a second run, a dry run, the reasons of
 * skipped and rejected entries, the printed report, and a journal that fills up part-way. Time
 * is passed in explicitly.
 */
#include <CUnit/CUnit.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cunit_main.h"
#include "gdn/buf.h"
#include "gdn/clock.h"
#include "gdn/error.h"
#include "gdn/import.h"
#include "gdn/journal.h"
#include "gdn/queue.h"
#include "gdn/task.h"

/* 2026-01-01T00:00:00 UTC; the import runs one hour later. */
#define BASE_US INT64_C(1767225600000000)
#define SECOND_US INT64_C(1000000)
#define NOW_US (BASE_US + 3600 * SECOND_US)
#define DAY_S (24 * 3600)

#define ID_A "0a000000-0000-4000-8000-000000000001"
#define ID_B "0b000000-0000-4000-8000-000000000002"
#define ID_C "0c000000-0000-4000-8000-000000000003"
#define ID_D "0d000000-0000-4000-8000-000000000004"
#define ID_E "0e000000-0000-4000-8000-000000000005"
#define ID_MISSING "0f000000-0000-4000-8000-00000000000f"

/* The longest record the tests import, as max_body_bytes would set it. */
#define RECORD_MAX 4096

/* The time rules an import reads; the others do not matter to it. */
static const gdn_queue_policy_t test_policy = {
    .task_lease_s = 60,
    .worker_ttl_s = 600,
    .completed_ttl_s = 7 * DAY_S,
    .task_retention_s = 30 * DAY_S,
};

struct import_env {
    char dir[PATH_MAX];
    gdn_journal_t *journal;
};

static void env_open(struct import_env *env, size_t map_mb)
{
    gdn_test_tmpdir(env->dir, sizeof(env->dir));
    env->journal = NULL;
    CU_ASSERT_EQUAL_FATAL(gdn_journal_open(&env->journal, env->dir, map_mb, 4), 0);
}

static void env_close(struct import_env *env)
{
    gdn_journal_close(env->journal);
    gdn_test_rmdir(env->dir);
}

static void appendf(gdn_buf_t *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void appendf(gdn_buf_t *buf, const char *fmt, ...)
{
    char text[4096];
    va_list args;

    va_start(args, fmt);
    vsnprintf(text, sizeof(text), fmt, args);
    va_end(args);
    CU_ASSERT_EQUAL(gdn_buf_append_str(buf, text), 0);
}

/* An ISO-8601 time `seconds` after BASE_US, as the old service wrote it. */
static const char *when(int64_t seconds, char out[GDN_CLOCK_ISO_LEN + 1])
{
    gdn_clock_format(BASE_US + seconds * SECOND_US, out);
    return out;
}

/* A task object in the old service's shape, with every optional field null. */
static void old_task(gdn_buf_t *buf, const char *id, int priority, const char *status,
                     int64_t created_s, const char *assigned_to)
{
    char created[GDN_CLOCK_ISO_LEN + 1], later[GDN_CLOCK_ISO_LEN + 1];
    int finished = strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0;

    appendf(buf,
            "{\"id\":\"%s\",\"role\":\"archivist\",\"task_type\":\"summarize\","
            "\"input_data\":{\"text\":\"t\"},\"priority\":%d,\"status\":\"%s\","
            "\"created_at\":\"%s\",\"updated_at\":\"%s\",\"project_id\":\"garden\","
            "\"context_enabled\":true,\"context_limit\":10,",
            id, priority, status, when(created_s, created), when(created_s + 60, later));
    if (assigned_to != NULL)
        appendf(buf, "\"assigned_to\":\"%s\",\"assigned_at\":\"%s\",", assigned_to, later);
    else
        appendf(buf, "\"assigned_to\":null,\"assigned_at\":null,");
    if (finished)
        appendf(buf, "\"result\":{\"output\":\"done\"},\"completed_at\":\"%s\",", later);
    else
        appendf(buf, "\"result\":null,\"completed_at\":null,");
    appendf(buf, "\"observation_id\":null}");
}

/* Appends `{"key": "task:ID", "value": ...}`, the value as an object or as a JSON string. */
static void task_entry(gdn_buf_t *buf, const char *kind, const char *id, int priority,
                       const char *status, int64_t created_s, const char *assigned_to,
                       int as_string)
{
    gdn_buf_t value = GDN_BUF_INIT;

    old_task(&value, id, priority, status, created_s, assigned_to);
    appendf(buf, "{\"key\":\"%s:%s\",\"value\":", kind, id);
    if (!as_string) {
        gdn_buf_append_str(buf, value.data);
    } else {
        gdn_buf_append_str(buf, "\"");
        for (const char *c = value.data; *c != '\0'; c++) {
            if (*c == '"')
                gdn_buf_append_str(buf, "\\");
            gdn_buf_append(buf, c, 1);
        }
        gdn_buf_append_str(buf, "\"");
    }
    gdn_buf_append_str(buf, "}");
    gdn_buf_free(&value);
}

static void worker_entry(gdn_buf_t *buf, const char *worker_id, int64_t heartbeat_s)
{
    char registered[GDN_CLOCK_ISO_LEN + 1], heartbeat[GDN_CLOCK_ISO_LEN + 1];

    appendf(buf,
            "{\"key\":\"worker:%s\",\"value\":{\"worker_id\":\"%s\",\"capabilities\":"
            "[\"archivist\"],\"registered_at\":\"%s\",\"last_heartbeat\":\"%s\","
            "\"status\":\"active\"}}",
            worker_id, worker_id, when(0, registered), when(heartbeat_s, heartbeat));
}

/*
 * A good export: three pending tasks (one written as a string), one processing, one completed
 * with its copy, a live worker, and a pending list that names the pending tasks but one.
 */
static char *good_export(size_t *len)
{
    gdn_buf_t buf = GDN_BUF_INIT;

    gdn_buf_append_str(&buf, "[");
    task_entry(&buf, "task", ID_A, 5, "pending", 10, NULL, 0);
    gdn_buf_append_str(&buf, ",");
    task_entry(&buf, "task", ID_B, 9, "pending", 20, NULL, 1);
    gdn_buf_append_str(&buf, ",");
    task_entry(&buf, "task", ID_C, 5, "pending", 5, NULL, 0);
    gdn_buf_append_str(&buf, ",");
    task_entry(&buf, "task", ID_D, 5, "processing", 1, "pi-1", 1);
    gdn_buf_append_str(&buf, ",");
    task_entry(&buf, "task", ID_E, 5, "completed", 2, "pi-1", 0);
    gdn_buf_append_str(&buf, ",");
    task_entry(&buf, "completed", ID_E, 5, "completed", 2, "pi-1", 1);
    gdn_buf_append_str(&buf, ",");
    worker_entry(&buf, "pi-1", 3500);
    gdn_buf_append_str(&buf, ",{\"key\":\"queue:pending\",\"value\":\"[\\\"" ID_B "\\\",\\\"" ID_A
                             "\\\"]\"}]");
    return gdn_buf_take(&buf, len);
}

/* Parses and imports `text`; returns gdn_import_run's result. */
static int import_text(struct import_env *env, const char *text, size_t len, int dry_run,
                       gdn_import_report_t *report)
{
    gdn_import_file_t *file = NULL;
    char reason[256];

    int parsed = gdn_import_parse(text, len, &file, reason, sizeof(reason));

    if (parsed != 0)
        printf("\n  the export was refused: %s\n", reason);
    CU_ASSERT_EQUAL_FATAL(parsed, 0);

    int rc = gdn_import_run(env->journal, &test_policy, file, NOW_US, RECORD_MAX, dry_run, report);

    gdn_import_file_free(file);
    return rc;
}

static int64_t record_count(struct import_env *env)
{
    gdn_journal_reader_t *reader;
    gdn_journal_txn_t *txn;
    int64_t count = -1;

    CU_ASSERT_EQUAL_FATAL(gdn_journal_reader_open(env->journal, &reader), 0);
    if (gdn_journal_read_begin(reader, &txn) == 0) {
        count = gdn_journal_record_count(txn);
        gdn_journal_read_end(reader);
    }
    gdn_journal_reader_close(reader);
    return count;
}

/* Finds the note of `key` (and listed `id`, or NULL). */
static const gdn_import_note_t *find_note(const gdn_import_report_t *report, const char *key,
                                          const char *id)
{
    for (size_t i = 0; i < report->note_count; i++) {
        const gdn_import_note_t *note = &report->notes[i];

        if (strcmp(note->key, key) != 0)
            continue;
        if (id == NULL ? note->id == NULL : note->id != NULL && strcmp(note->id, id) == 0)
            return note;
    }
    return NULL;
}

static void assert_note(const gdn_import_report_t *report, const char *key, const char *id,
                        int rejected, const char *reason_part)
{
    const gdn_import_note_t *note = find_note(report, key, id);

    CU_ASSERT_PTR_NOT_NULL(note);
    if (note == NULL) {
        printf("\n  no note for %s %s\n", key, id ? id : "");
        return;
    }
    CU_ASSERT_EQUAL(note->rejected, rejected);
    CU_ASSERT_PTR_NOT_NULL(strstr(note->reason, reason_part));
    if (strstr(note->reason, reason_part) == NULL)
        printf("\n  %s: reason \"%s\", expected \"%s\"\n", key, note->reason, reason_part);
}

/* ---- the file's shape ---- */

static void expect_malformed(const char *text, const char *reason_part)
{
    gdn_import_file_t *file = NULL;
    char reason[256] = "";

    CU_ASSERT_EQUAL(gdn_import_parse(text, strlen(text), &file, reason, sizeof(reason)),
                    GDN_EINVALID);
    CU_ASSERT_PTR_NULL(file);
    CU_ASSERT_PTR_NOT_NULL(strstr(reason, reason_part));
    if (strstr(reason, reason_part) == NULL)
        printf("\n  %s: reason \"%s\", expected \"%s\"\n", text, reason, reason_part);
}

static void test_import__malformed_files_are_refused_whole(void)
{
    expect_malformed("", "not JSON");
    expect_malformed("[{\"key\":\"task:x\",\"value\":{}}", "not JSON");
    expect_malformed("{\"key\":\"task:x\",\"value\":{}}", "not a JSON array");
    expect_malformed("[{\"key\":\"worker:a\",\"value\":{}}, 5]", "entry 2");
    expect_malformed("[{\"key\":\"worker:a\"}]", "entry 1");
    expect_malformed("[{\"key\":7,\"value\":{}}]", "entry 1");
    expect_malformed("[{\"key\":\"worker:a\",\"value\":{}},{\"key\":\"worker:b\",\"value\":1},"
                     "{\"key\":\"worker:a\",\"value\":[]}]",
                     "worker:a appears more than once");

    gdn_import_file_t *file = NULL;
    char reason[256];

    CU_ASSERT_EQUAL(gdn_import_parse("[]", 2, &file, reason, sizeof(reason)), 0);
    gdn_import_file_free(file);
}

/* ---- importing ---- */

/* Imports the good export (or judges it, in a dry run) and checks the counts of a first run. */
static void import_good(struct import_env *env, const char *text, size_t len, int dry_run)
{
    gdn_import_report_t report;

    CU_ASSERT_EQUAL(import_text(env, text, len, dry_run, &report), 0);
    CU_ASSERT_EQUAL(report.imported, 7);
    CU_ASSERT_EQUAL(report.tasks, 5);
    CU_ASSERT_EQUAL(report.pending, 3);
    CU_ASSERT_EQUAL(report.completed, 1);
    CU_ASSERT_EQUAL(report.workers, 1);
    /* queue:pending leaves out ID_C: that is no problem, it is queued from its task. */
    CU_ASSERT_EQUAL(report.skipped, 0);
    CU_ASSERT_EQUAL(report.rejected, 0);
    gdn_import_report_free(&report);
}

/* Reads a stored task. */
static void load_task(gdn_journal_txn_t *txn, const char *id, gdn_task_t *task,
                      gdn_json_doc_t **doc)
{
    char key[GDN_JOURNAL_KEY_MAX + 1];
    gdn_journal_record_t record;

    *doc = NULL;
    CU_ASSERT_EQUAL_FATAL(
        gdn_journal_get(txn, key, gdn_record_key(key, "task", id, GDN_JOURNAL_ID_LEN), &record), 0);
    CU_ASSERT_EQUAL_FATAL(gdn_task_from_json(record.json, record.json_len, task, doc), 0);
}

static void assert_claim_order(gdn_journal_txn_t *txn)
{
    gdn_journal_pending_t pending[8];
    int count = gdn_journal_pending_list(txn, NULL, NULL, pending, 8);

    /* Highest priority first, then oldest. */
    CU_ASSERT_EQUAL_FATAL(count, 3);
    CU_ASSERT_STRING_EQUAL(pending[0].id, ID_B);
    CU_ASSERT_STRING_EQUAL(pending[1].id, ID_C);
    CU_ASSERT_STRING_EQUAL(pending[2].id, ID_A);
}

static void assert_processing_kept(gdn_journal_txn_t *txn)
{
    gdn_json_doc_t *doc;
    gdn_task_t task;

    load_task(txn, ID_D, &task, &doc);
    CU_ASSERT_EQUAL(task.status, GDN_TASK_PROCESSING);
    CU_ASSERT_EQUAL(task.assigned_to_len, 4);
    CU_ASSERT_NSTRING_EQUAL(task.assigned_to, "pi-1", 4);
    CU_ASSERT_EQUAL(task.attempts, 1);
    CU_ASSERT_EQUAL(task.lease_s, test_policy.task_lease_s);
    CU_ASSERT_EQUAL(task.lease_expires_us, NOW_US + test_policy.task_lease_s * SECOND_US);
    gdn_json_free(doc);

    load_task(txn, ID_A, &task, &doc);
    CU_ASSERT_EQUAL(task.created_us, BASE_US + 10 * SECOND_US);
    CU_ASSERT_EQUAL(task.max_attempts, GDN_TASK_MAX_ATTEMPTS_DEFAULT);
    CU_ASSERT_PTR_NULL(task.assigned_to);
    gdn_json_free(doc);
}

/* Everything imported is logged for upload, the completed copy included. */
static void assert_logged(gdn_journal_txn_t *txn)
{
    gdn_journal_dirty_t dirty[16];
    int count = gdn_journal_dirty_list(txn, 0, dirty, 16);
    const char *expected[] = {"task:" ID_A, "task:" ID_B,      "task:" ID_C, "task:" ID_D,
                              "task:" ID_E, "completed:" ID_E, "worker:pi-1"};

    CU_ASSERT_EQUAL(count, 7);
    for (size_t e = 0; e < sizeof(expected) / sizeof(expected[0]); e++) {
        int found = 0;

        for (int i = 0; i < count; i++)
            found += strcmp(dirty[i].key, expected[e]) == 0 && !dirty[i].deleted;
        CU_ASSERT_EQUAL(found, 1);
    }
}

static void test_import__a_good_export_is_imported_and_logged_for_upload(void)
{
    struct import_env env;
    size_t len;
    char *text = good_export(&len);

    env_open(&env, 64);
    import_good(&env, text, len, 0);
    CU_ASSERT_EQUAL(record_count(&env), 6);

    gdn_journal_txn_t *txn;

    CU_ASSERT_EQUAL_FATAL(gdn_journal_write_begin(env.journal, &txn), 0);
    assert_claim_order(txn);
    assert_processing_kept(txn);
    assert_logged(txn);

    gdn_queue_stats_t stats;

    CU_ASSERT_EQUAL(gdn_queue_stats(txn, NOW_US, &stats), 0);
    CU_ASSERT_EQUAL(stats.by_status[GDN_TASK_PENDING], 3);
    CU_ASSERT_EQUAL(stats.by_status[GDN_TASK_PROCESSING], 1);
    CU_ASSERT_EQUAL(stats.by_status[GDN_TASK_COMPLETED], 1);
    CU_ASSERT_EQUAL(stats.active_workers, 1);

    /* The claim takes the first task in claim order, as for a task created here. */
    char *json = NULL;
    size_t json_len;

    CU_ASSERT_EQUAL(
        gdn_queue_claim(txn, &test_policy, NULL, NULL, 0, "pi-2", 4, NOW_US, &json, &json_len), 0);
    CU_ASSERT_PTR_NOT_NULL(json != NULL ? strstr(json, ID_B) : NULL);
    free(json);
    gdn_journal_abort(txn);
    free(text);
    env_close(&env);
}

static void test_import__a_second_run_skips_everything_as_existing(void)
{
    struct import_env env;
    gdn_import_report_t report;
    size_t len;
    char *text = good_export(&len);

    env_open(&env, 64);
    import_good(&env, text, len, 0);
    CU_ASSERT_EQUAL(import_text(&env, text, len, 0, &report), 0);
    CU_ASSERT_EQUAL(report.imported, 0);
    CU_ASSERT_EQUAL(report.skipped, 7);
    CU_ASSERT_EQUAL(report.rejected, 0);
    assert_note(&report, "task:" ID_A, NULL, 0, "exists");
    assert_note(&report, "completed:" ID_E, NULL, 0, "exists");
    assert_note(&report, "worker:pi-1", NULL, 0, "exists");
    gdn_import_report_free(&report);
    CU_ASSERT_EQUAL(record_count(&env), 6);
    free(text);
    env_close(&env);
}

static void test_import__a_dry_run_judges_everything_and_writes_nothing(void)
{
    struct import_env env;
    size_t len;
    char *text = good_export(&len);

    env_open(&env, 64);
    import_good(&env, text, len, 1);
    CU_ASSERT_EQUAL(record_count(&env), 0);

    /* The real run afterwards still imports everything. */
    import_good(&env, text, len, 0);
    free(text);
    env_close(&env);
}

/* An export with one problem per entry, and a pending list that names tasks it should not. */
static char *bad_export(size_t *len)
{
    gdn_buf_t buf = GDN_BUF_INIT;

    gdn_buf_append_str(&buf, "[");
    task_entry(&buf, "task", ID_A, 5, "processing", 10, NULL, 0);
    appendf(&buf,
            ",{\"key\":\"task:%s\",\"value\":{\"id\":\"%s\",\"task_type\":\"x\","
            "\"status\":\"pending\",\"created_at\":\"yesterday\"}}",
            ID_B, ID_B);
    appendf(&buf,
            ",{\"key\":\"task:%s\",\"value\":{\"id\":\"%s\",\"status\":\"pending\","
            "\"created_at\":\"2026-01-01T00:00:00\"}}",
            ID_C, ID_C);
    appendf(&buf,
            ",{\"key\":\"task:%s\",\"value\":{\"id\":\"%s\",\"task_type\":\"x\","
            "\"status\":\"pending\",\"created_at\":\"2026-01-01T00:00:00\"}}",
            ID_D, ID_E);
    appendf(&buf, ",{\"key\":\"task:0A000000-0000-4000-8000-000000000001\",\"value\":{}}");
    appendf(&buf, ",{\"key\":\"session:42\",\"value\":{}}");
    appendf(&buf, ",{\"key\":\"worker:pi-9\",\"value\":\"{not json\"}");
    appendf(&buf, ",{\"key\":\"worker:pi-8\",\"value\":7}");
    gdn_buf_append_str(&buf, ",");
    task_entry(&buf, "completed", ID_MISSING, 5, "completed", 1, NULL, 0);
    /* A finished task past its retention, and a worker silent past its time to live. */
    gdn_buf_append_str(&buf, ",");
    task_entry(&buf, "task", ID_E, 5, "failed", -40 * DAY_S, NULL, 0);
    gdn_buf_append_str(&buf, ",");
    worker_entry(&buf, "pi-7", -700);
    appendf(&buf, ",{\"key\":\"queue:pending\",\"value\":[\"%s\",\"%s\",\"%s\"]}", ID_A, ID_B,
            ID_MISSING);
    gdn_buf_append_str(&buf, "]");
    return gdn_buf_take(&buf, len);
}

static void test_import__problem_entries_are_rejected_or_skipped_with_a_reason(void)
{
    struct import_env env;
    gdn_import_report_t report;
    size_t len;
    char *text = bad_export(&len);

    env_open(&env, 64);
    CU_ASSERT_EQUAL(import_text(&env, text, len, 0, &report), 0);
    CU_ASSERT_EQUAL(report.imported, 0);
    assert_note(&report, "task:" ID_A, NULL, 1, "assigned_to is missing");
    assert_note(&report, "task:" ID_B, NULL, 1, "created_at is not an ISO-8601 time");
    assert_note(&report, "task:" ID_C, NULL, 1, "task_type is missing");
    assert_note(&report, "task:" ID_D, NULL, 1, "differs from the object's id");
    assert_note(&report, "task:0A000000-0000-4000-8000-000000000001", NULL, 1, "lower-case UUID");
    assert_note(&report, "session:42", NULL, 1, "not a key this server imports");
    assert_note(&report, "worker:pi-9", NULL, 1, "not JSON");
    assert_note(&report, "worker:pi-8", NULL, 1, "neither JSON text");
    assert_note(&report, "completed:" ID_MISSING, NULL, 1, "no task:ID");
    assert_note(&report, "task:" ID_E, NULL, 0, "expired");
    assert_note(&report, "worker:pi-7", NULL, 0, "expired");
    assert_note(&report, "queue:pending", ID_A, 0, "was rejected");
    assert_note(&report, "queue:pending", ID_MISSING, 0, "no task:ID");
    CU_ASSERT_EQUAL(report.rejected, 9);
    CU_ASSERT_EQUAL(report.skipped, 5);
    CU_ASSERT_EQUAL(report.note_count, 14);
    gdn_import_report_free(&report);
    CU_ASSERT_EQUAL(record_count(&env), 0);
    free(text);
    env_close(&env);
}

static void test_import__a_pending_list_that_is_not_an_array_is_rejected(void)
{
    struct import_env env;
    gdn_import_report_t report;
    const char *zset = "[{\"key\":\"queue:pending\",\"value\":{\"" ID_A "\":1}},"
                       "{\"key\":\"task:" ID_B "\",\"value\":{\"id\":\"" ID_B "\","
                       "\"task_type\":\"x\",\"status\":\"processing\",\"assigned_to\":\"w\","
                       "\"assigned_at\":\"2026-01-01T00:00:01.5\","
                       "\"created_at\":\"2026-01-01T00:00:00\"}}]";

    env_open(&env, 64);
    CU_ASSERT_EQUAL(import_text(&env, zset, strlen(zset), 0, &report), 0);
    assert_note(&report, "queue:pending", NULL, 1, "not an array of task ids");
    /* A task written without the fields that have defaults takes the defaults. */
    CU_ASSERT_EQUAL(report.imported, 1);
    CU_ASSERT_EQUAL(report.rejected, 1);
    gdn_import_report_free(&report);
    env_close(&env);
}

static void
test_import__out_of_bounds_attempts_future_times_and_oversized_records_are_rejected(void)
{
    struct import_env env;
    gdn_import_report_t report;
    gdn_buf_t buf = GDN_BUF_INIT;
    size_t len;
    const char *head = "\"task_type\":\"x\",\"status\":\"pending\","
                       "\"created_at\":\"2026-01-01T00:00:00\"";

    appendf(&buf, "[{\"key\":\"task:%s\",\"value\":{\"id\":\"%s\",%s,\"attempts\":%lld}},", ID_A,
            ID_A, head, (long long)INT64_MAX);
    /* The most a pending task can have used: one attempt short of the largest limit. */
    appendf(&buf,
            "{\"key\":\"task:%s\",\"value\":{\"id\":\"%s\",%s,\"attempts\":%d,"
            "\"max_attempts\":%d}},",
            ID_B, ID_B, head, GDN_TASK_MAX_ATTEMPTS_LIMIT - 1, GDN_TASK_MAX_ATTEMPTS_LIMIT);
    /* States the server never stores: no attempt left while pending, more used than allowed,
     * and a creation years ahead of the clock. */
    appendf(&buf,
            "{\"key\":\"task:%s\",\"value\":{\"id\":\"%s\",%s,\"attempts\":3,"
            "\"max_attempts\":3}},",
            ID_D, ID_D, head);
    appendf(&buf,
            "{\"key\":\"task:%s\",\"value\":{\"id\":\"%s\",\"task_type\":\"x\","
            "\"status\":\"completed\",\"created_at\":\"2026-01-01T00:00:00\","
            "\"completed_at\":\"2026-01-01T00:00:01\",\"attempts\":4,\"max_attempts\":3}},",
            ID_E, ID_E);
    appendf(&buf,
            "{\"key\":\"task:%s\",\"value\":{\"id\":\"%s\",\"task_type\":\"x\","
            "\"status\":\"pending\",\"created_at\":\"2999-01-01T00:00:00\"}},",
            ID_MISSING, ID_MISSING);
    appendf(&buf, "{\"key\":\"worker:w-future\",\"value\":{\"worker_id\":\"w-future\","
                  "\"capabilities\":[],\"registered_at\":\"2999-01-01T00:00:00\"}},");
    appendf(&buf, "{\"key\":\"task:%s\",\"value\":{\"id\":\"%s\",%s,\"input_data\":{\"t\":\"", ID_C,
            ID_C, head);
    for (int i = 0; i < RECORD_MAX; i++)
        gdn_buf_append_str(&buf, "a");
    gdn_buf_append_str(&buf, "\"}}}]");

    char *text = gdn_buf_take(&buf, &len);

    env_open(&env, 64);
    CU_ASSERT_EQUAL(import_text(&env, text, len, 0, &report), 0);
    assert_note(&report, "task:" ID_A, NULL, 1, "attempts is not an integer from 0 to 1000");
    assert_note(&report, "task:" ID_C, NULL, 1, "over max_body_bytes (4096)");
    assert_note(&report, "task:" ID_D, NULL, 1, "a pending task must have attempts left");
    assert_note(&report, "task:" ID_E, NULL, 1, "attempts is above max_attempts");
    assert_note(&report, "task:" ID_MISSING, NULL, 1,
                "created_at is more than a day in the future");
    assert_note(&report, "worker:w-future", NULL, 1,
                "registered_at is more than a day in the future");
    CU_ASSERT_PTR_NULL(find_note(&report, "task:" ID_B, NULL));
    CU_ASSERT_EQUAL(report.imported, 1);
    CU_ASSERT_EQUAL(report.rejected, 6);
    CU_ASSERT_EQUAL(record_count(&env), 1);
    gdn_import_report_free(&report);
    free(text);
    env_close(&env);
}

static void test_import__the_report_prints_one_line_per_note_then_the_summary(void)
{
    struct import_env env;
    gdn_import_report_t report;
    const char *text = "[{\"key\":\"odd key\",\"value\":{}},"
                       "{\"key\":\"queue:pending\",\"value\":[\"" ID_MISSING "\"]}]";
    char *printed = NULL;
    size_t printed_len = 0;

    env_open(&env, 64);
    CU_ASSERT_EQUAL(import_text(&env, text, strlen(text), 0, &report), 0);

    FILE *out = open_memstream(&printed, &printed_len);

    CU_ASSERT_FATAL(out != NULL);
    gdn_import_report_print(&report, out);
    fclose(out);
    CU_ASSERT_STRING_EQUAL(printed,
                           "rejected key=\"odd key\" reason=\"not a key this server imports "
                           "(task:ID, worker:ID, completed:ID, queue:pending)\"\n"
                           "skipped key=queue:pending id=" ID_MISSING
                           " reason=\"no task:ID of this id in the export or journal\"\n"
                           "imported 0 (tasks 0, pending 0, completed 0, workers 0), skipped 1, "
                           "rejected 1\n");
    free(printed);
    gdn_import_report_free(&report);
    env_close(&env);
}

/* A journal too small for the import fails part-way: the whole import is undone. */
static void test_import__a_journal_that_fills_up_keeps_nothing_of_the_import(void)
{
    struct import_env env;
    gdn_import_report_t report;
    gdn_buf_t buf = GDN_BUF_INIT;
    char filler[2048];

    memset(filler, 'x', sizeof(filler) - 1);
    filler[sizeof(filler) - 1] = '\0';
    gdn_buf_append_str(&buf, "[");
    for (int i = 0; i < 2000; i++) {
        appendf(&buf,
                "%s{\"key\":\"task:00000000-0000-4000-8000-%012d\",\"value\":{\"id\":"
                "\"00000000-0000-4000-8000-%012d\",\"task_type\":\"x\",\"status\":\"pending\","
                "\"created_at\":\"2026-01-01T00:00:00\",\"input_data\":{\"pad\":\"%s\"}}}",
                i ? "," : "", i, i, filler);
    }
    gdn_buf_append_str(&buf, "]");
    env_open(&env, 1);

    size_t len;
    char *text = gdn_buf_take(&buf, &len);

    CU_ASSERT_FATAL(text != NULL);
    CU_ASSERT_EQUAL(import_text(&env, text, len, 0, &report), GDN_EJOURNAL_FULL);
    gdn_import_report_free(&report);
    CU_ASSERT_EQUAL(record_count(&env), 0);
    free(text);
    env_close(&env);
}

static CU_TestInfo import_tests[] = {
    {"a malformed file is refused as a whole", test_import__malformed_files_are_refused_whole},
    {"a good export is imported, queued in claim order and logged for upload",
     test_import__a_good_export_is_imported_and_logged_for_upload},
    {"a second run imports nothing and skips everything as existing",
     test_import__a_second_run_skips_everything_as_existing},
    {"a dry run judges everything and writes nothing",
     test_import__a_dry_run_judges_everything_and_writes_nothing},
    {"problem entries are rejected or skipped, each with a reason",
     test_import__problem_entries_are_rejected_or_skipped_with_a_reason},
    {"Attempts past the limits, times far ahead and records over max_body_bytes are rejected",
     test_import__out_of_bounds_attempts_future_times_and_oversized_records_are_rejected},
    {"a pending list that is not an array is rejected",
     test_import__a_pending_list_that_is_not_an_array_is_rejected},
    {"the report prints one line per note, then the summary",
     test_import__the_report_prints_one_line_per_note_then_the_summary},
    {"a journal that fills up keeps nothing of the import",
     test_import__a_journal_that_fills_up_keeps_nothing_of_the_import},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo gdn_test_suites[] = {
    {.pName = "import", .pTests = import_tests},
    CU_SUITE_INFO_NULL,
};
