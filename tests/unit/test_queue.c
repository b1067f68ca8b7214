/*
 * Unit tests of the queue core against a real journal in a temporary directory: claim order
 * within and across roles, exhaustive claiming, the fields a claim and a completion write, the
 * status counters, workers and their expiry, the pending listing and the dirty set.
 */
#include <CUnit/CUnit.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cunit_main.h"
#include "gdn/buf.h"
#include "gdn/clock.h"
#include "gdn/error.h"
#include "gdn/journal.h"
#include "gdn/json.h"
#include "gdn/queue.h"
#include "gdn/task.h"

/* 2026-01-01T00:00:00 UTC: a fixed time, so that results do not depend on the clock. */
#define BASE_US INT64_C(1767225600000000)
#define SECOND_US INT64_C(1000000)

/* A journal in a directory of its own. */
struct queue_env {
    char dir[PATH_MAX];
    gdn_journal_t *journal;
};

static void env_open(struct queue_env *env)
{
    gdn_test_tmpdir(env->dir, sizeof(env->dir));
    env->journal = NULL;
    CU_ASSERT_EQUAL_FATAL(gdn_journal_open(&env->journal, env->dir, 64, 4), 0);
}

static void env_close(struct queue_env *env)
{
    gdn_journal_close(env->journal);
    gdn_test_rmdir(env->dir);
}

static gdn_journal_txn_t *begin_write(struct queue_env *env)
{
    gdn_journal_txn_t *txn = NULL;

    CU_ASSERT_EQUAL_FATAL(gdn_journal_write_begin(env->journal, &txn), 0);
    return txn;
}

static void commit_ok(gdn_journal_txn_t *txn)
{
    CU_ASSERT_EQUAL(gdn_journal_commit(txn), 0);
}

/* A task as the create route builds it: parsed from a body, then given identity and time. */
struct new_task {
    gdn_task_t task;
    gdn_json_doc_t *doc;
    char *json;
    size_t json_len;
};

static void make_task(struct new_task *out, const char *role, int64_t priority, int64_t created_us)
{
    char body[512];
    gdn_problems_t problems;

    snprintf(body, sizeof(body),
             "{\"task_type\":\"scan\",\"role\":\"%s\",\"priority\":%" PRId64
             ",\"input_data\":{\"created\":%" PRId64 "},\"project_id\":\"garden\"}",
             role, priority, created_us);
    CU_ASSERT_EQUAL_FATAL(gdn_problems_init(&problems), 0);
    CU_ASSERT_EQUAL_FATAL(
        gdn_task_parse_create(body, strlen(body), &out->task, &out->doc, &problems), 0);
    gdn_problems_free(&problems);
    CU_ASSERT_EQUAL_FATAL(gdn_task_new_id(out->task.id), 0);
    out->task.status = GDN_TASK_PENDING;
    out->task.created_us = created_us;
    out->task.updated_us = created_us;
    out->json = gdn_task_render(&out->task, &out->json_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out->json);
}

static void free_task(struct new_task *task)
{
    free(task->json);
    gdn_json_free(task->doc);
}

/* Creates a pending task and leaves its id in `id`. */
static void create_task(gdn_journal_txn_t *txn, const char *role, int64_t priority,
                        int64_t created_us, char id[GDN_JOURNAL_ID_LEN + 1])
{
    struct new_task made;

    make_task(&made, role, priority, created_us);
    CU_ASSERT_EQUAL(gdn_queue_create(txn, &made.task, made.json, made.json_len), 0);
    memcpy(id, made.task.id, GDN_JOURNAL_ID_LEN + 1);
    free_task(&made);
}

/* A task for a test to start with. */
struct seed {
    const char *role;
    int64_t priority;
    int64_t created_us;
};

/* Opens a journal and commits the seed tasks; ids[i] receives the id of seeds[i]. */
static void env_open_with(struct queue_env *env, const struct seed *seeds, int count,
                          char ids[][GDN_JOURNAL_ID_LEN + 1])
{
    env_open(env);

    gdn_journal_txn_t *txn = begin_write(env);

    for (int i = 0; i < count; i++)
        create_task(txn, seeds[i].role, seeds[i].priority, seeds[i].created_us, ids[i]);
    commit_ok(txn);
}

/*
 * Splits comma-separated roles as the poll route does: each role points into `list` and is
 * not NUL-terminated. @return the number of roles.
 */
static int split_roles(const char *list, const char *roles[GDN_QUEUE_MAX_ROLES],
                       size_t lens[GDN_QUEUE_MAX_ROLES])
{
    int count = 0;
    const char *start = list;

    if (*list == '\0')
        return 0;
    for (;;) {
        const char *comma = strchr(start, ',');
        size_t len = comma != NULL ? (size_t)(comma - start) : strlen(start);

        CU_ASSERT_FATAL(count < GDN_QUEUE_MAX_ROLES);
        roles[count] = start;
        lens[count] = len;
        count++;
        if (comma == NULL)
            return count;
        start = comma + 1;
    }
}

/* Claims for `worker` among comma-separated `role_list` ("" for any role). */
static int claim_json(gdn_journal_txn_t *txn, const char *role_list, const char *worker,
                      int64_t now_us, char **json, size_t *json_len)
{
    const char *roles[GDN_QUEUE_MAX_ROLES];
    size_t lens[GDN_QUEUE_MAX_ROLES];
    int count = split_roles(role_list, roles, lens);

    return gdn_queue_claim(txn, count > 0 ? roles : NULL, count > 0 ? lens : NULL, count, worker,
                           strlen(worker), now_us, json, json_len);
}

/* Claims as claim_json and leaves the claimed task's id in `id` ("" if none). */
static int claim_id(gdn_journal_txn_t *txn, const char *role_list, int64_t now_us,
                    char id[GDN_JOURNAL_ID_LEN + 1])
{
    char *json = NULL;
    size_t json_len = 0;
    int rc = claim_json(txn, role_list, "worker-1", now_us, &json, &json_len);

    id[0] = '\0';
    if (rc != 0) {
        CU_ASSERT_PTR_NULL(json);
        return rc;
    }

    gdn_task_t task;
    gdn_json_doc_t *doc = NULL;

    CU_ASSERT_EQUAL(gdn_task_from_json(json, json_len, &task, &doc), 0);
    if (doc != NULL) {
        CU_ASSERT_EQUAL(task.status, GDN_TASK_PROCESSING);
        memcpy(id, task.id, GDN_JOURNAL_ID_LEN + 1);
    }
    gdn_json_free(doc);
    free(json);
    return rc;
}

static int has_pending(gdn_journal_txn_t *txn, const char *role_list)
{
    const char *roles[GDN_QUEUE_MAX_ROLES];
    size_t lens[GDN_QUEUE_MAX_ROLES];
    int count = split_roles(role_list, roles, lens);

    return gdn_queue_has_pending(txn, roles, lens, count);
}

static void check_claim(gdn_journal_txn_t *txn, const char *role_list, const char *expected_id)
{
    char id[GDN_JOURNAL_ID_LEN + 1];
    int rc = claim_id(txn, role_list, BASE_US + 1000 * SECOND_US, id);

    if (expected_id == NULL) {
        CU_ASSERT_EQUAL(rc, GDN_ENOTFOUND);
        return;
    }
    CU_ASSERT_EQUAL(rc, 0);
    if (strcmp(id, expected_id) != 0)
        fprintf(stderr, "\nclaim of [%s] got %s, wanted %s\n", role_list, id, expected_id);
    CU_ASSERT_STRING_EQUAL(id, expected_id);
}

/* Checks the status counters. */
static void check_counts(gdn_journal_txn_t *txn, int64_t pending, int64_t processing,
                         int64_t completed, int64_t failed)
{
    gdn_queue_stats_t stats;

    CU_ASSERT_EQUAL_FATAL(gdn_queue_stats(txn, BASE_US, &stats), 0);
    CU_ASSERT_EQUAL(stats.by_status[GDN_TASK_PENDING], pending);
    CU_ASSERT_EQUAL(stats.by_status[GDN_TASK_PROCESSING], processing);
    CU_ASSERT_EQUAL(stats.by_status[GDN_TASK_COMPLETED], completed);
    CU_ASSERT_EQUAL(stats.by_status[GDN_TASK_FAILED], failed);
}

/* Reads the record `kind:id`, parses its JSON and returns the document (free it). */
static gdn_json_doc_t *load_record(gdn_journal_txn_t *txn, const char *kind, const char *id,
                                   gdn_journal_record_t *record)
{
    char key[GDN_JOURNAL_KEY_MAX + 1];
    size_t key_len = gdn_record_key(key, kind, id, strlen(id));
    gdn_json_doc_t *doc = NULL;

    CU_ASSERT_EQUAL_FATAL(gdn_journal_get(txn, key, key_len, record), 0);
    CU_ASSERT_EQUAL_FATAL(gdn_json_parse(record->json, record->json_len, &doc, NULL), 0);
    return doc;
}

/* Tells whether `object` has a string member `name` equal to `text`. */
static int has_string(const gdn_json_t *object, const char *name, const char *text)
{
    const gdn_json_t *value = gdn_json_get(object, name);

    return value != NULL && value->type == GDN_JSON_STRING && value->len == strlen(text) &&
           memcmp(value->text, text, value->len) == 0;
}

static int has_time(const gdn_json_t *object, const char *name, int64_t us)
{
    char text[GDN_CLOCK_ISO_LEN + 1];

    gdn_clock_format(us, text);
    return has_string(object, name, text);
}

static void test_queue__claim_follows_priority_age_and_id(void)
{
    /* 2 and 3 share the top priority, 3 is older; 4 and 5 tie on priority and age. */
    static const struct seed seeds[] = {
        {"a", 1, BASE_US},      {"a", -4, BASE_US - 50 * SECOND_US},
        {"a", 9, BASE_US + 20}, {"a", 9, BASE_US + 10},
        {"a", 5, BASE_US + 5},  {"a", 5, BASE_US + 5},
    };
    struct queue_env env;
    char ids[6][GDN_JOURNAL_ID_LEN + 1];

    env_open_with(&env, seeds, 6, ids);

    /* Equal priority and age leave the order to the ids. */
    int tie_order = strcmp(ids[4], ids[5]) < 0;
    gdn_journal_txn_t *txn = begin_write(&env);

    check_claim(txn, "a", ids[3]);
    check_claim(txn, "a", ids[2]);
    check_claim(txn, "a", tie_order ? ids[4] : ids[5]);
    check_claim(txn, "a", tie_order ? ids[5] : ids[4]);
    check_claim(txn, "a", ids[0]);
    check_claim(txn, "a", ids[1]);
    check_claim(txn, "a", NULL);
    commit_ok(txn);
    env_close(&env);
}

static void test_queue__multi_role_claim_takes_best_head(void)
{
    /* a: 0; b: 1, then 2; c: 3, then 4. */
    static const struct seed seeds[] = {
        {"a", 3, BASE_US + 1}, {"b", 7, BASE_US + 5}, {"b", 7, BASE_US + 6},
        {"c", 7, BASE_US + 2}, {"c", 1, BASE_US},
    };
    struct queue_env env;
    char ids[5][GDN_JOURNAL_ID_LEN + 1];

    env_open_with(&env, seeds, 5, ids);

    gdn_journal_txn_t *txn = begin_write(&env);

    CU_ASSERT_EQUAL(has_pending(txn, "a,b"), 1);
    check_claim(txn, "a,b", ids[1]);
    check_claim(txn, "c,a", ids[3]);
    check_claim(txn, "a,b", ids[2]);
    check_claim(txn, "b,a", ids[0]);
    CU_ASSERT_EQUAL(has_pending(txn, "a,b"), 0);
    CU_ASSERT_EQUAL(has_pending(txn, "b,c"), 1);
    check_claim(txn, "a,b", NULL);

    /* Unknown and empty role names are passed over, not errors. */
    check_claim(txn, "zz,,c", ids[4]);
    check_claim(txn, "a,b,c", NULL);
    CU_ASSERT_EQUAL(has_pending(txn, ""), 0);
    commit_ok(txn);
    env_close(&env);
}

static void test_queue__no_role_claim_takes_global_head(void)
{
    static const struct seed seeds[] = {
        {"x", 2, BASE_US},
        {"y", 8, BASE_US + 30},
        {"z", 8, BASE_US + 20},
        {"archivist", INT64_MIN, BASE_US - 1},
    };
    struct queue_env env;
    char ids[4][GDN_JOURNAL_ID_LEN + 1];

    env_open_with(&env, seeds, 4, ids);

    gdn_journal_txn_t *txn = begin_write(&env);

    CU_ASSERT_EQUAL(has_pending(txn, ""), 1);
    check_claim(txn, "", ids[2]);
    check_claim(txn, "", ids[1]);
    check_claim(txn, "", ids[0]);
    check_claim(txn, "", ids[3]);
    check_claim(txn, "", NULL);
    CU_ASSERT_EQUAL(has_pending(txn, ""), 0);
    commit_ok(txn);
    env_close(&env);
}

/* A model of the pending queue to check the claims of a long run against. */
struct model_task {
    char id[GDN_JOURNAL_ID_LEN + 1];
    int role;
    int64_t priority;
    int64_t created_us;
    int claims;
};

static int model_before(const struct model_task *a, const struct model_task *b)
{
    if (a->priority != b->priority)
        return a->priority > b->priority;
    if (a->created_us != b->created_us)
        return a->created_us < b->created_us;
    return strcmp(a->id, b->id) < 0;
}

/* The role sets the long run polls with, in turn; "" takes any role. */
static const char *const poll_roles[] = {"", "r0", "r1,r3", "r2,r4,r0", "r4"};
#define POLL_SETS 5
static const char *const role_names[] = {"r0", "r1", "r2", "r3", "r4"};
#define ROLE_COUNT 5

/* Fills member[i] with 1 if role_names[i] is in the comma-separated `set` ("" takes any). */
static void role_members(const char *set, int member[ROLE_COUNT])
{
    const char *roles[GDN_QUEUE_MAX_ROLES];
    size_t lens[GDN_QUEUE_MAX_ROLES];
    int count = split_roles(set, roles, lens);

    for (int role = 0; role < ROLE_COUNT; role++) {
        member[role] = count == 0;
        for (int i = 0; i < count; i++) {
            if (lens[i] == strlen(role_names[role]) &&
                memcmp(roles[i], role_names[role], lens[i]) == 0)
                member[role] = 1;
        }
    }
}

static const struct model_task *model_next(const struct model_task *tasks, int count,
                                           const int member[ROLE_COUNT])
{
    const struct model_task *best = NULL;

    for (int i = 0; i < count; i++) {
        if (tasks[i].claims == 0 && member[tasks[i].role] &&
            (best == NULL || model_before(&tasks[i], best)))
            best = &tasks[i];
    }
    return best;
}

static struct model_task *model_find(struct model_task *tasks, int count, const char *id)
{
    for (int i = 0; i < count; i++) {
        if (strcmp(tasks[i].id, id) == 0)
            return &tasks[i];
    }
    return NULL;
}

#define LONG_RUN 1000

static void test_queue__each_task_is_claimed_once(void)
{
    struct queue_env env;
    struct model_task *tasks = calloc(LONG_RUN, sizeof(*tasks));

    CU_ASSERT_PTR_NOT_NULL_FATAL(tasks);
    env_open(&env);

    /* Few distinct priorities and ages, so that many tasks tie and their ids decide. */
    gdn_journal_txn_t *txn = begin_write(&env);

    for (int i = 0; i < LONG_RUN; i++) {
        tasks[i].role = i % ROLE_COUNT;
        tasks[i].priority = (i * 37) % 7 - 3;
        tasks[i].created_us = BASE_US + (i * 13) % 50;
        create_task(txn, role_names[tasks[i].role], tasks[i].priority, tasks[i].created_us,
                    tasks[i].id);
    }
    commit_ok(txn);

    int member[POLL_SETS][ROLE_COUNT];
    int claimed = 0;
    int polls = 0;

    for (int i = 0; i < POLL_SETS; i++)
        role_members(poll_roles[i], member[i]);

    txn = begin_write(&env);
    while (claimed < LONG_RUN && polls < 10 * LONG_RUN) {
        const char *set = poll_roles[polls % POLL_SETS];
        const struct model_task *want = model_next(tasks, LONG_RUN, member[polls % POLL_SETS]);
        char id[GDN_JOURNAL_ID_LEN + 1];
        int rc = claim_id(txn, set, BASE_US + SECOND_US, id);

        polls++;
        if (want == NULL) {
            CU_ASSERT_EQUAL(rc, GDN_ENOTFOUND);
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(rc, 0);

        struct model_task *got = model_find(tasks, LONG_RUN, id);

        CU_ASSERT_PTR_NOT_NULL_FATAL(got);
        CU_ASSERT_PTR_EQUAL(got, want);
        CU_ASSERT_EQUAL(got->claims, 0);
        got->claims++;
        claimed++;

        /* Commit now and then, so that claims span many transactions. */
        if (claimed % 50 == 0) {
            commit_ok(txn);
            txn = begin_write(&env);
        }
    }
    CU_ASSERT_EQUAL(claimed, LONG_RUN);
    for (int i = 0; i < POLL_SETS; i++)
        check_claim(txn, poll_roles[i], NULL);
    commit_ok(txn);

    txn = begin_write(&env);
    for (int i = 0; i < LONG_RUN; i++)
        CU_ASSERT_EQUAL(tasks[i].claims, 1);
    check_counts(txn, 0, LONG_RUN, 0, 0);

    gdn_journal_pending_t left[1];

    CU_ASSERT_EQUAL(gdn_journal_pending_list(txn, NULL, NULL, left, 1), 0);
    gdn_journal_abort(txn);
    free(tasks);
    env_close(&env);
}

static void test_queue__claimed_task_shows_its_assignment(void)
{
    struct queue_env env;

    env_open(&env);

    gdn_journal_txn_t *txn = begin_write(&env);
    char id[GDN_JOURNAL_ID_LEN + 1];

    create_task(txn, "gardener", 4, BASE_US, id);
    commit_ok(txn);

    int64_t now = BASE_US + 90 * SECOND_US + 123456;
    char *json = NULL;
    size_t json_len = 0;

    txn = begin_write(&env);
    CU_ASSERT_EQUAL_FATAL(claim_json(txn, "gardener", "pi-7", now, &json, &json_len), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(json);
    CU_ASSERT_EQUAL(strlen(json), json_len);

    gdn_json_doc_t *doc = NULL;

    CU_ASSERT_EQUAL_FATAL(gdn_json_parse(json, json_len, &doc, NULL), 0);

    const gdn_json_t *root = gdn_json_root(doc);

    CU_ASSERT(has_string(root, "id", id));
    CU_ASSERT(has_string(root, "status", "processing"));
    CU_ASSERT(has_string(root, "assigned_to", "pi-7"));
    CU_ASSERT(has_time(root, "assigned_at", now));
    CU_ASSERT(has_time(root, "updated_at", now));
    CU_ASSERT(has_time(root, "created_at", BASE_US));
    CU_ASSERT(has_string(root, "role", "gardener"));
    CU_ASSERT(has_string(root, "task_type", "scan"));
    CU_ASSERT(has_string(root, "project_id", "garden"));
    CU_ASSERT_PTR_NULL(gdn_json_get(root, "completed_at"));

    const gdn_json_t *input = gdn_json_get(root, "input_data");

    CU_ASSERT(input != NULL && input->type == GDN_JSON_OBJECT && input->count == 1);

    /* The stored task is the object the claim returned. */
    gdn_journal_record_t record;
    gdn_json_doc_t *stored = load_record(txn, "task", id, &record);

    CU_ASSERT_EQUAL(record.json_len, json_len);
    CU_ASSERT(record.json_len == json_len && memcmp(record.json, json, json_len) == 0);
    CU_ASSERT_EQUAL(has_pending(txn, "gardener"), 0);
    gdn_json_free(stored);
    gdn_json_free(doc);
    free(json);
    commit_ok(txn);
    env_close(&env);
}

/* Completes a task through a parsed TaskComplete body, as the complete route does. */
static int complete_task(gdn_journal_txn_t *txn, const char *id, const char *status, int64_t now_us)
{
    char body[256];
    gdn_problems_t problems;
    gdn_task_complete_t complete;
    gdn_json_doc_t *doc = NULL;

    snprintf(body, sizeof(body),
             "{\"task_id\":\"%s\",\"result\":{\"ok\":true,\"n\":[1,2]},\"status\":\"%s\","
             "\"observation_id\":\"obs-%s\"}",
             id, status, status);
    CU_ASSERT_EQUAL_FATAL(gdn_problems_init(&problems), 0);
    CU_ASSERT_EQUAL_FATAL(gdn_task_parse_complete(body, strlen(body), &complete, &doc, &problems),
                          0);
    gdn_problems_free(&problems);

    int rc = gdn_queue_complete(txn, &complete, now_us);

    gdn_json_free(doc);
    return rc;
}

/* Checks a finished task object as both `task:ID` and `completed:ID` hold it. */
static void check_finished(const gdn_json_t *root, const char *id, const char *status,
                           int64_t now_us)
{
    char observation[32];

    snprintf(observation, sizeof(observation), "obs-%s", status);
    CU_ASSERT(has_string(root, "id", id));
    CU_ASSERT(has_string(root, "status", status));
    CU_ASSERT(has_string(root, "observation_id", observation));
    CU_ASSERT(has_time(root, "completed_at", now_us));
    CU_ASSERT(has_time(root, "updated_at", now_us));
    CU_ASSERT(has_time(root, "created_at", BASE_US));

    const gdn_json_t *result = gdn_json_get(root, "result");
    const gdn_json_t *ok = gdn_json_get(result, "ok");
    const gdn_json_t *n = gdn_json_get(result, "n");

    CU_ASSERT(result != NULL && result->type == GDN_JSON_OBJECT && result->count == 2);
    CU_ASSERT(ok != NULL && ok->type == GDN_JSON_BOOL && ok->boolean == 1);
    CU_ASSERT(n != NULL && n->type == GDN_JSON_ARRAY && n->count == 2);
}

static void test_queue__complete_finishes_a_claimed_task(void)
{
    static const struct seed seeds[] = {{"a", 2, BASE_US}, {"a", 1, BASE_US}};
    struct queue_env env;
    char ids[2][GDN_JOURNAL_ID_LEN + 1];
    char claimed[GDN_JOURNAL_ID_LEN + 1];
    const char *done = ids[0];
    const char *broken = ids[1];
    int64_t now = BASE_US + 3600 * SECOND_US + 7;

    env_open_with(&env, seeds, 2, ids);

    gdn_journal_txn_t *txn = begin_write(&env);

    CU_ASSERT_EQUAL(claim_id(txn, "a", BASE_US + SECOND_US, claimed), 0);
    CU_ASSERT_STRING_EQUAL(claimed, done);
    CU_ASSERT_EQUAL(claim_id(txn, "a", BASE_US + SECOND_US, claimed), 0);
    CU_ASSERT_STRING_EQUAL(claimed, broken);
    CU_ASSERT_EQUAL(complete_task(txn, done, "completed", now), 0);
    CU_ASSERT_EQUAL(complete_task(txn, broken, "failed", now), 0);
    commit_ok(txn);

    txn = begin_write(&env);

    gdn_journal_record_t task_record;
    gdn_journal_record_t copy_record;
    gdn_json_doc_t *task_doc = load_record(txn, "task", done, &task_record);
    gdn_json_doc_t *copy_doc = load_record(txn, "completed", done, &copy_record);

    check_finished(gdn_json_root(task_doc), done, "completed", now);
    check_finished(gdn_json_root(copy_doc), done, "completed", now);
    CU_ASSERT(has_string(gdn_json_root(task_doc), "assigned_to", "worker-1"));
    CU_ASSERT_EQUAL(task_record.expires_us, 0);
    CU_ASSERT_EQUAL(copy_record.expires_us, now + (int64_t)GDN_QUEUE_COMPLETED_TTL_S * SECOND_US);
    CU_ASSERT_EQUAL(copy_record.expires_us, now + 7 * 24 * 3600 * SECOND_US);
    gdn_json_free(task_doc);
    gdn_json_free(copy_doc);

    task_doc = load_record(txn, "task", broken, &task_record);
    copy_doc = load_record(txn, "completed", broken, &copy_record);
    check_finished(gdn_json_root(task_doc), broken, "failed", now);
    check_finished(gdn_json_root(copy_doc), broken, "failed", now);
    gdn_json_free(task_doc);
    gdn_json_free(copy_doc);
    check_counts(txn, 0, 0, 1, 1);
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_queue__complete_takes_a_pending_task_off_the_index(void)
{
    static const struct seed seeds[] = {{"a", 9, BASE_US}, {"a", 1, BASE_US}};
    struct queue_env env;
    char ids[2][GDN_JOURNAL_ID_LEN + 1];
    const char *second = ids[1];

    env_open_with(&env, seeds, 2, ids);

    gdn_journal_txn_t *txn = begin_write(&env);

    CU_ASSERT_EQUAL(complete_task(txn, ids[0], "completed", BASE_US + SECOND_US), 0);
    commit_ok(txn);

    txn = begin_write(&env);

    gdn_journal_pending_t left[4];

    CU_ASSERT_EQUAL_FATAL(gdn_journal_pending_list(txn, NULL, NULL, left, 4), 1);
    CU_ASSERT_STRING_EQUAL(left[0].id, second);
    CU_ASSERT_EQUAL_FATAL(gdn_journal_pending_list(txn, "a", NULL, left, 4), 1);
    CU_ASSERT_STRING_EQUAL(left[0].id, second);
    check_counts(txn, 1, 0, 1, 0);

    /* The finished task is never handed out. */
    check_claim(txn, "a", second);
    check_claim(txn, "a", NULL);
    check_claim(txn, "", NULL);
    check_counts(txn, 0, 1, 1, 0);
    commit_ok(txn);
    env_close(&env);
}

static void test_queue__complete_of_unknown_task_is_not_found(void)
{
    struct queue_env env;

    env_open(&env);

    gdn_journal_txn_t *txn = begin_write(&env);
    char known[GDN_JOURNAL_ID_LEN + 1];
    char unknown[GDN_JOURNAL_ID_LEN + 1];

    create_task(txn, "a", 1, BASE_US, known);
    commit_ok(txn);
    CU_ASSERT_EQUAL_FATAL(gdn_task_new_id(unknown), 0);

    txn = begin_write(&env);

    int64_t dirty_before = gdn_journal_dirty_count(txn);

    CU_ASSERT_EQUAL(complete_task(txn, unknown, "completed", BASE_US), GDN_ENOTFOUND);

    /* A body whose task_id is no id leaves the id empty: that is not found either. */
    gdn_task_complete_t empty = {.status = GDN_TASK_COMPLETED};

    CU_ASSERT_EQUAL(gdn_queue_complete(txn, &empty, BASE_US), GDN_ENOTFOUND);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), dirty_before);
    check_counts(txn, 1, 0, 0, 0);

    char key[GDN_JOURNAL_KEY_MAX + 1];
    gdn_journal_record_t record;
    size_t key_len = gdn_record_key(key, "completed", unknown, GDN_JOURNAL_ID_LEN);

    CU_ASSERT_EQUAL(gdn_journal_get(txn, key, key_len, &record), GDN_ENOTFOUND);
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_queue__status_counters_follow_every_transition(void)
{
    struct queue_env env;

    env_open(&env);

    gdn_journal_txn_t *txn = begin_write(&env);
    char ids[3][GDN_JOURNAL_ID_LEN + 1];

    check_counts(txn, 0, 0, 0, 0);
    create_task(txn, "a", 3, BASE_US, ids[0]);
    create_task(txn, "a", 2, BASE_US, ids[1]);
    create_task(txn, "b", 1, BASE_US, ids[2]);
    check_counts(txn, 3, 0, 0, 0);
    commit_ok(txn);

    /* A second create with a known id is refused and counts nothing. */
    struct new_task again;

    txn = begin_write(&env);
    make_task(&again, "a", 3, BASE_US);
    memcpy(again.task.id, ids[0], sizeof(again.task.id));
    CU_ASSERT_EQUAL(gdn_queue_create(txn, &again.task, again.json, again.json_len), GDN_ECONFLICT);
    free_task(&again);
    check_counts(txn, 3, 0, 0, 0);

    char claimed[GDN_JOURNAL_ID_LEN + 1];

    CU_ASSERT_EQUAL(claim_id(txn, "a", BASE_US, claimed), 0);
    check_counts(txn, 2, 1, 0, 0);
    CU_ASSERT_EQUAL(complete_task(txn, claimed, "completed", BASE_US), 0);
    check_counts(txn, 2, 0, 1, 0);
    CU_ASSERT_EQUAL(complete_task(txn, ids[2], "failed", BASE_US), 0);
    check_counts(txn, 1, 0, 1, 1);
    CU_ASSERT_EQUAL(claim_id(txn, "", BASE_US, claimed), 0);
    CU_ASSERT_STRING_EQUAL(claimed, ids[1]);
    check_counts(txn, 0, 1, 1, 1);
    CU_ASSERT_EQUAL(claim_id(txn, "", BASE_US, claimed), GDN_ENOTFOUND);
    check_counts(txn, 0, 1, 1, 1);
    commit_ok(txn);

    /* Completing a finished task again moves it between the finished counts only. */
    txn = begin_write(&env);
    CU_ASSERT_EQUAL(complete_task(txn, ids[1], "failed", BASE_US), 0);
    check_counts(txn, 0, 0, 1, 2);
    CU_ASSERT_EQUAL(complete_task(txn, ids[1], "completed", BASE_US), 0);
    check_counts(txn, 0, 0, 2, 1);
    CU_ASSERT_EQUAL(complete_task(txn, ids[1], "completed", BASE_US), 0);
    check_counts(txn, 0, 0, 2, 1);
    commit_ok(txn);

    /* Counters are journal state: a reopen keeps them. */
    gdn_journal_close(env.journal);
    env.journal = NULL;
    CU_ASSERT_EQUAL_FATAL(gdn_journal_open(&env.journal, env.dir, 64, 4), 0);
    txn = begin_write(&env);
    check_counts(txn, 0, 0, 2, 1);
    gdn_journal_abort(txn);
    env_close(&env);
}

/* Registers a worker through a parsed register body, as the register route does. */
static void register_worker(gdn_journal_txn_t *txn, const char *worker_id, int64_t now_us,
                            int ttl_s)
{
    char body[256];
    gdn_problems_t problems;
    gdn_worker_t worker;
    gdn_json_doc_t *doc = NULL;

    snprintf(body, sizeof(body), "{\"worker_id\":\"%s\",\"capabilities\":[\"scan\",\"water\"]}",
             worker_id);
    CU_ASSERT_EQUAL_FATAL(gdn_problems_init(&problems), 0);
    CU_ASSERT_EQUAL_FATAL(gdn_worker_parse_register(body, strlen(body), &worker, &doc, &problems),
                          0);
    gdn_problems_free(&problems);
    CU_ASSERT_EQUAL(gdn_queue_register(txn, &worker, now_us, ttl_s), 0);
    gdn_json_free(doc);
}

static int heartbeat(gdn_journal_txn_t *txn, const char *worker_id, int64_t now_us, int ttl_s)
{
    return gdn_queue_heartbeat(txn, worker_id, strlen(worker_id), now_us, ttl_s);
}

static void check_workers(gdn_journal_txn_t *txn, int64_t now_us, int64_t active, int64_t all)
{
    gdn_queue_stats_t stats;

    CU_ASSERT_EQUAL_FATAL(gdn_queue_stats(txn, now_us, &stats), 0);
    CU_ASSERT_EQUAL(stats.active_workers, active);
    CU_ASSERT_EQUAL(stats.workers, all);
}

static void test_queue__heartbeat_of_unknown_worker_is_not_found(void)
{
    struct queue_env env;

    env_open(&env);

    gdn_journal_txn_t *txn = begin_write(&env);

    CU_ASSERT_EQUAL(heartbeat(txn, "nobody", BASE_US, 600), GDN_ENOTFOUND);
    register_worker(txn, "somebody", BASE_US, 600);
    CU_ASSERT_EQUAL(heartbeat(txn, "nobody", BASE_US, 600), GDN_ENOTFOUND);
    CU_ASSERT_EQUAL(heartbeat(txn, "somebod", BASE_US, 600), GDN_ENOTFOUND);
    CU_ASSERT_EQUAL(heartbeat(txn, "somebody", BASE_US, 600), 0);
    check_workers(txn, BASE_US, 1, 1);
    commit_ok(txn);
    env_close(&env);
}

static void test_queue__active_workers_are_counted_by_expiry(void)
{
    struct queue_env env;

    env_open(&env);

    gdn_journal_txn_t *txn = begin_write(&env);

    /* With a one-second time to live a worker is live strictly before its last word plus 1 s. */
    register_worker(txn, "w1", BASE_US, 1);
    register_worker(txn, "w2", BASE_US + SECOND_US / 2, 1);
    commit_ok(txn);

    txn = begin_write(&env);
    check_workers(txn, BASE_US, 2, 2);
    check_workers(txn, BASE_US + SECOND_US * 9 / 10, 2, 2);
    check_workers(txn, BASE_US + SECOND_US, 1, 2);
    check_workers(txn, BASE_US + SECOND_US * 12 / 10, 1, 2);
    check_workers(txn, BASE_US + SECOND_US * 3 / 2, 0, 2);

    /* A heartbeat brings w1 back and moves its expiry; registration time stays. */
    int64_t beat = BASE_US + SECOND_US * 13 / 10;

    CU_ASSERT_EQUAL(heartbeat(txn, "w1", beat, 1), 0);
    check_workers(txn, BASE_US + SECOND_US * 14 / 10, 2, 2);
    check_workers(txn, beat + SECOND_US - 1, 1, 2);
    check_workers(txn, beat + SECOND_US, 0, 2);

    gdn_journal_record_t record;
    gdn_json_doc_t *doc = load_record(txn, "worker", "w1", &record);
    const gdn_json_t *root = gdn_json_root(doc);
    const gdn_json_t *capabilities = gdn_json_get(root, "capabilities");

    CU_ASSERT_EQUAL(record.expires_us, beat + SECOND_US);
    CU_ASSERT(has_string(root, "worker_id", "w1"));
    CU_ASSERT(has_time(root, "registered_at", BASE_US));
    CU_ASSERT(has_time(root, "last_heartbeat", beat));
    CU_ASSERT(has_string(root, "status", "active"));
    CU_ASSERT(capabilities != NULL && capabilities->type == GDN_JSON_ARRAY &&
              capabilities->count == 2);
    gdn_json_free(doc);

    /* The worker listing holds the live workers only. */
    gdn_buf_t out = GDN_BUF_INIT;

    CU_ASSERT_EQUAL(gdn_queue_list_workers(txn, &out, BASE_US + SECOND_US * 14 / 10), 0);
    CU_ASSERT_EQUAL_FATAL(gdn_json_parse(out.data, out.len, &doc, NULL), 0);
    root = gdn_json_root(doc);
    CU_ASSERT_EQUAL(root->type, GDN_JSON_ARRAY);
    CU_ASSERT_EQUAL_FATAL(root->count, 2);
    CU_ASSERT(has_string(root->first, "worker_id", "w1"));
    CU_ASSERT(has_string(root->first->next, "worker_id", "w2"));
    gdn_json_free(doc);
    gdn_buf_free(&out);

    CU_ASSERT_EQUAL(gdn_queue_list_workers(txn, &out, beat + SECOND_US), 0);
    CU_ASSERT_EQUAL(out.len, 2);
    CU_ASSERT(out.data != NULL && strcmp(out.data, "[]") == 0);
    gdn_buf_free(&out);
    gdn_journal_abort(txn);
    env_close(&env);
}

/* Lists pending tasks and returns the parsed array (free it). */
static gdn_json_doc_t *list_pending(gdn_journal_txn_t *txn, int limit)
{
    gdn_buf_t out = GDN_BUF_INIT;
    gdn_json_doc_t *doc = NULL;

    CU_ASSERT_EQUAL(gdn_queue_list_pending(txn, &out, limit), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out.data);
    CU_ASSERT_EQUAL_FATAL(gdn_json_parse(out.data, out.len, &doc, NULL), 0);
    gdn_buf_free(&out);
    CU_ASSERT_EQUAL_FATAL(gdn_json_root(doc)->type, GDN_JSON_ARRAY);
    return doc;
}

/* Checks that a listing holds the tasks `ids[order[0]]`, ... in that order. */
static void check_listed(const gdn_json_doc_t *doc, char ids[][GDN_JOURNAL_ID_LEN + 1],
                         const int *order, int count)
{
    const gdn_json_t *root = gdn_json_root(doc);
    const gdn_json_t *item = root->first;

    CU_ASSERT_EQUAL(root->count, (size_t)count);
    for (int i = 0; i < count && item != NULL; i++, item = item->next) {
        CU_ASSERT(has_string(item, "id", ids[order[i]]));
        CU_ASSERT(has_string(item, "status", "pending"));
    }
}

static void test_queue__list_pending_returns_the_limit_in_claim_order(void)
{
    struct queue_env env;

    env_open(&env);

    gdn_journal_txn_t *txn = begin_write(&env);
    char ids[8][GDN_JOURNAL_ID_LEN + 1];
    static const int64_t priorities[8] = {1, 9, 5, 5, -2, 9, 0, 7};
    /* Claim order: 1 and 5 (priority 9, 1 older), 7, 2 and 3 (3 older), 0, 6, 4. */
    static const int order[8] = {1, 5, 7, 3, 2, 0, 6, 4};

    for (int i = 0; i < 8; i++) {
        int64_t created = BASE_US + (i == 3 ? 0 : i);

        create_task(txn, i % 2 ? "odd" : "even", priorities[i], created, ids[i]);
    }
    commit_ok(txn);

    txn = begin_write(&env);

    gdn_json_doc_t *doc = list_pending(txn, 3);

    check_listed(doc, ids, order, 3);
    gdn_json_free(doc);
    doc = list_pending(txn, 50);
    check_listed(doc, ids, order, 8);
    gdn_json_free(doc);
    doc = list_pending(txn, 0);
    check_listed(doc, ids, order, 0);
    gdn_json_free(doc);

    /* A claimed task leaves the listing. */
    char claimed[GDN_JOURNAL_ID_LEN + 1];

    CU_ASSERT_EQUAL(claim_id(txn, "", BASE_US, claimed), 0);
    CU_ASSERT_STRING_EQUAL(claimed, ids[1]);
    doc = list_pending(txn, 2);
    check_listed(doc, ids, order + 1, 2);
    gdn_json_free(doc);
    gdn_journal_abort(txn);
    env_close(&env);
}

/* Returns the version `kind:id` is marked dirty with, or 0 if it is not marked for upload. */
static uint64_t dirty_version(gdn_journal_txn_t *txn, const char *kind, const char *id)
{
    char key[GDN_JOURNAL_KEY_MAX + 1];
    gdn_journal_dirty_t all[16];
    int count = gdn_journal_dirty_list(txn, NULL, all, 16);

    gdn_record_key(key, kind, id, strlen(id));
    CU_ASSERT(count >= 0 && count < 16);
    for (int i = 0; i < count; i++) {
        if (strcmp(all[i].key, key) == 0)
            return all[i].deleted ? 0 : all[i].version;
    }
    return 0;
}

/* Checks that `kind:id` is marked with the version it is stored with. */
static void check_marked(gdn_journal_txn_t *txn, const char *kind, const char *id)
{
    char key[GDN_JOURNAL_KEY_MAX + 1];
    size_t key_len = gdn_record_key(key, kind, id, strlen(id));
    gdn_journal_record_t record;

    CU_ASSERT_EQUAL_FATAL(gdn_journal_get(txn, key, key_len, &record), 0);
    if (dirty_version(txn, kind, id) != record.version)
        fprintf(stderr, "\n%s is not marked with its version %" PRIu64 "\n", key, record.version);
    CU_ASSERT_EQUAL(dirty_version(txn, kind, id), record.version);
}

/* Clears every dirty mark, as a flush round that uploaded everything would. */
static void clear_dirty(gdn_journal_txn_t *txn)
{
    gdn_journal_dirty_t all[16];
    int count = gdn_journal_dirty_list(txn, NULL, all, 16);

    CU_ASSERT(count >= 0 && count < 16);
    for (int i = 0; i < count; i++)
        CU_ASSERT_EQUAL(gdn_journal_dirty_clear(txn, all[i].key, all[i].version), 0);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), 0);
}

static void test_queue__dirty_set_tracks_every_change(void)
{
    struct queue_env env;

    env_open(&env);

    gdn_journal_txn_t *txn = begin_write(&env);
    char id[GDN_JOURNAL_ID_LEN + 1];
    char claimed[GDN_JOURNAL_ID_LEN + 1];

    create_task(txn, "a", 1, BASE_US, id);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), 1);
    check_marked(txn, "task", id);
    clear_dirty(txn);
    commit_ok(txn);

    txn = begin_write(&env);
    CU_ASSERT_EQUAL(claim_id(txn, "a", BASE_US, claimed), 0);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), 1);
    check_marked(txn, "task", id);
    clear_dirty(txn);

    CU_ASSERT_EQUAL(complete_task(txn, id, "completed", BASE_US), 0);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), 2);
    check_marked(txn, "task", id);
    check_marked(txn, "completed", id);
    clear_dirty(txn);
    commit_ok(txn);

    /* The journal stamps an upload mark with its own clock, so worker times follow it here. */
    int64_t now = gdn_clock_now_us();
    int ttl_s = 600;

    txn = begin_write(&env);
    register_worker(txn, "w1", now, ttl_s);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), 1);
    check_marked(txn, "worker", "w1");
    clear_dirty(txn);

    /* A heartbeat soon after the last mark stays local; one half a TTL later is uploaded. */
    gdn_journal_record_t record;
    gdn_json_doc_t *doc;

    CU_ASSERT_EQUAL(heartbeat(txn, "w1", now + SECOND_US, ttl_s), 0);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), 0);
    doc = load_record(txn, "worker", "w1", &record);
    CU_ASSERT(has_time(gdn_json_root(doc), "last_heartbeat", now + SECOND_US));
    gdn_json_free(doc);

    CU_ASSERT_EQUAL(heartbeat(txn, "w1", now + (int64_t)ttl_s * SECOND_US, ttl_s), 0);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), 1);
    check_marked(txn, "worker", "w1");
    commit_ok(txn);
    env_close(&env);
}

static CU_TestInfo queue_tests[] = {
    {"claims follow priority, then age, then id", test_queue__claim_follows_priority_age_and_id},
    {"a claim over several roles takes the best head among them",
     test_queue__multi_role_claim_takes_best_head},
    {"a claim with no role takes the head of all roles",
     test_queue__no_role_claim_takes_global_head},
    {"each of 1000 tasks of mixed roles is claimed exactly once, in claim order",
     test_queue__each_task_is_claimed_once},
    {"a claimed task is processing, assigned to the worker, with the claim time",
     test_queue__claimed_task_shows_its_assignment},
    {"complete stores the result, the times and a completed copy kept 7 days",
     test_queue__complete_finishes_a_claimed_task},
    {"completing a pending task takes it off the pending index",
     test_queue__complete_takes_a_pending_task_off_the_index},
    {"completing an unknown task is not found and changes nothing",
     test_queue__complete_of_unknown_task_is_not_found},
    {"the status counters follow every transition",
     test_queue__status_counters_follow_every_transition},
    {"a heartbeat of an unknown worker is not found",
     test_queue__heartbeat_of_unknown_worker_is_not_found},
    {"active workers are counted by the expiry of their last word",
     test_queue__active_workers_are_counted_by_expiry},
    {"the pending listing returns at most the limit, in claim order",
     test_queue__list_pending_returns_the_limit_in_claim_order},
    {"the dirty set holds every record the queue changed",
     test_queue__dirty_set_tracks_every_change},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo gdn_test_suites[] = {
    {.pName = "queue", .pTests = queue_tests},
    CU_SUITE_INFO_NULL,
};
