/*
 * Unit tests of the queue core against a real journal in a temporary directory: claim order
 * within and across roles, exhaustive claiming, the fields a claim and a completion write, the
 * status counters, workers and their expiry, the listings and the dirty set; and the task
 * lifecycle: leases and their lapse, heartbeats, retries with backoff, late and repeated
 * completions, cancellation, delayed tasks, expiry of finished records, idempotent creation and
 * restore. Time is always passed in explicitly: nothing here sleeps or reads the clock to decide.
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
#include "gdn/config.h"
#include "gdn/error.h"
#include "gdn/journal.h"
#include "gdn/json.h"
#include "gdn/queue.h"
#include "gdn/task.h"

/* 2026-01-01T00:00:00 UTC: a fixed time, so that results do not depend on the clock. */
#define BASE_US INT64_C(1767225600000000)
#define SECOND_US INT64_C(1000000)
#define DAY_S (24 * 3600)

/* The time rules most tests run under; a test that needs others copies and changes them. */
static const gdn_queue_policy_t test_policy = {
    .task_lease_s = 60,
    .worker_ttl_s = 600,
    .retry_base_s = 10,
    .retry_max_s = 80,
    .completed_ttl_s = 7 * DAY_S,
    .task_retention_s = 30 * DAY_S,
    .idempotency_ttl_s = 3600,
};

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

/* What a new task's create body says beyond its role, priority and creation time. */
struct task_spec {
    const char *role;
    int64_t priority;
    int64_t created_us;
    const char *project_id; /* NULL: "garden" */
    const char *extra;      /* more members of the body, each led by a comma; NULL: none */
};

/* A task as the create route builds it: parsed from a body, then given identity and time. */
struct new_task {
    gdn_task_t task;
    gdn_json_doc_t *doc;
    char *json;
    size_t json_len;
};

/* Builds a task as the create route does, with its creation time as the time of the request. */
static void make_task_spec(struct new_task *out, const struct task_spec *spec)
{
    char body[512];
    gdn_problems_t problems;

    snprintf(body, sizeof(body),
             "{\"task_type\":\"scan\",\"role\":\"%s\",\"priority\":%" PRId64
             ",\"input_data\":{\"created\":%" PRId64 "},\"project_id\":\"%s\"%s}",
             spec->role, spec->priority, spec->created_us,
             spec->project_id != NULL ? spec->project_id : "garden",
             spec->extra != NULL ? spec->extra : "");
    CU_ASSERT_EQUAL_FATAL(gdn_problems_init(&problems), 0);
    CU_ASSERT_EQUAL_FATAL(gdn_task_parse_create(body, strlen(body), spec->created_us, &out->task,
                                                &out->doc, &problems),
                          0);
    gdn_problems_free(&problems);
    CU_ASSERT_EQUAL_FATAL(gdn_task_new_id(out->task.id), 0);
    out->task.status = GDN_TASK_PENDING;
    out->task.created_us = spec->created_us;
    out->task.updated_us = spec->created_us;
    if (out->task.lease_s == 0)
        out->task.lease_s = test_policy.task_lease_s;
    out->json = gdn_task_render(&out->task, &out->json_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out->json);
}

static void make_task(struct new_task *out, const char *role, int64_t priority, int64_t created_us)
{
    const struct task_spec spec = {.role = role, .priority = priority, .created_us = created_us};

    make_task_spec(out, &spec);
}

static void free_task(struct new_task *task)
{
    free(task->json);
    gdn_json_free(task->doc);
}

/* Creates a task as `spec` says, at its creation time, and leaves its id in `id`. */
static void create_spec(gdn_journal_txn_t *txn, const struct task_spec *spec,
                        gdn_queue_wakeups_t *wakeups, char id[GDN_JOURNAL_ID_LEN + 1])
{
    struct new_task made;
    char existing[GDN_JOURNAL_ID_LEN + 1] = "x";

    make_task_spec(&made, spec);
    CU_ASSERT_EQUAL(gdn_queue_create(txn, &test_policy, &made.task, made.json, made.json_len, NULL,
                                     spec->created_us, existing, wakeups),
                    0);
    CU_ASSERT_STRING_EQUAL(existing, "");
    memcpy(id, made.task.id, GDN_JOURNAL_ID_LEN + 1);
    free_task(&made);
}

/* Creates a pending task and leaves its id in `id`. */
static void create_task(gdn_journal_txn_t *txn, const char *role, int64_t priority,
                        int64_t created_us, char id[GDN_JOURNAL_ID_LEN + 1])
{
    const struct task_spec spec = {.role = role, .priority = priority, .created_us = created_us};

    create_spec(txn, &spec, NULL, id);
}

/* Creates a task of role "r" with more body members, such as a lease or a delay. */
static void create_with(gdn_journal_txn_t *txn, int64_t created_us, const char *extra,
                        char id[GDN_JOURNAL_ID_LEN + 1])
{
    const struct task_spec spec = {
        .role = "r", .priority = 5, .created_us = created_us, .extra = extra};

    create_spec(txn, &spec, NULL, id);
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

    return gdn_queue_claim(txn, &test_policy, count > 0 ? roles : NULL, count > 0 ? lens : NULL,
                           count, worker, strlen(worker), now_us, json, json_len);
}

/* Claims as claim_json and leaves the claimed task's id in `id` ("" if none). */
static int claim_by(gdn_journal_txn_t *txn, const char *role_list, const char *worker,
                    int64_t now_us, char id[GDN_JOURNAL_ID_LEN + 1])
{
    char *json = NULL;
    size_t json_len = 0;
    int rc = claim_json(txn, role_list, worker, now_us, &json, &json_len);

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

static int claim_id(gdn_journal_txn_t *txn, const char *role_list, int64_t now_us,
                    char id[GDN_JOURNAL_ID_LEN + 1])
{
    return claim_by(txn, role_list, "worker-1", now_us, id);
}

static int has_pending(gdn_journal_txn_t *txn, const char *role_list)
{
    const char *roles[GDN_QUEUE_MAX_ROLES];
    size_t lens[GDN_QUEUE_MAX_ROLES];
    int count = split_roles(role_list, roles, lens);

    return gdn_queue_has_pending(txn, roles, lens, count);
}

static void check_claim_at(gdn_journal_txn_t *txn, const char *role_list, int64_t now_us,
                           const char *expected_id)
{
    char id[GDN_JOURNAL_ID_LEN + 1];
    int rc = claim_id(txn, role_list, now_us, id);

    if (expected_id == NULL) {
        CU_ASSERT_EQUAL(rc, GDN_ENOTFOUND);
        return;
    }
    CU_ASSERT_EQUAL(rc, 0);
    if (strcmp(id, expected_id) != 0)
        fprintf(stderr, "\nclaim of [%s] got %s, wanted %s\n", role_list, id, expected_id);
    CU_ASSERT_STRING_EQUAL(id, expected_id);
}

static void check_claim(gdn_journal_txn_t *txn, const char *role_list, const char *expected_id)
{
    check_claim_at(txn, role_list, BASE_US + 1000 * SECOND_US, expected_id);
}

/* Checks the status counters. */
static void check_counts(gdn_journal_txn_t *txn, int64_t pending, int64_t processing,
                         int64_t completed, int64_t failed, int64_t cancelled)
{
    gdn_queue_stats_t stats;

    CU_ASSERT_EQUAL_FATAL(gdn_queue_stats(txn, BASE_US, &stats), 0);
    CU_ASSERT_EQUAL(stats.by_status[GDN_TASK_PENDING], pending);
    CU_ASSERT_EQUAL(stats.by_status[GDN_TASK_PROCESSING], processing);
    CU_ASSERT_EQUAL(stats.by_status[GDN_TASK_COMPLETED], completed);
    CU_ASSERT_EQUAL(stats.by_status[GDN_TASK_FAILED], failed);
    CU_ASSERT_EQUAL(stats.by_status[GDN_TASK_CANCELLED], cancelled);
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

/* Reads the stored task `id` into `task`; returns the document it points into (free it). */
static gdn_json_doc_t *read_task(gdn_journal_txn_t *txn, const char *id, gdn_task_t *task)
{
    char key[GDN_JOURNAL_KEY_MAX + 1];
    size_t key_len = gdn_record_key(key, "task", id, strlen(id));
    gdn_journal_record_t record;
    gdn_json_doc_t *doc = NULL;

    CU_ASSERT_EQUAL_FATAL(gdn_journal_get(txn, key, key_len, &record), 0);
    CU_ASSERT_EQUAL_FATAL(gdn_task_from_json(record.json, record.json_len, task, &doc), 0);
    return doc;
}

/* Returns the status of the stored task `id`. */
static gdn_task_status_t status_of(gdn_journal_txn_t *txn, const char *id)
{
    gdn_task_t task;
    gdn_json_doc_t *doc = read_task(txn, id, &task);

    gdn_json_free(doc);
    return task.status;
}

/* Tells whether the record `kind:id` exists. */
static int record_exists(gdn_journal_txn_t *txn, const char *kind, const char *id)
{
    char key[GDN_JOURNAL_KEY_MAX + 1];
    size_t key_len = gdn_record_key(key, kind, id, strlen(id));
    gdn_journal_record_t record;
    int rc = gdn_journal_get(txn, key, key_len, &record);

    CU_ASSERT(rc == 0 || rc == GDN_ENOTFOUND);
    return rc == 0;
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

static int has_int(const gdn_json_t *object, const char *name, int64_t expected)
{
    const gdn_json_t *value = gdn_json_get(object, name);
    int64_t n = 0;

    return value != NULL && value->type == GDN_JSON_NUMBER && gdn_json_int(value, &n) == 0 &&
           n == expected;
}

/* Runs the expiry pass at `now_us` and returns how many deadlines it handled. */
static int expire_at(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy, int64_t now_us,
                     gdn_queue_wakeups_t *wakeups)
{
    int more = -1;
    int handled = gdn_queue_expire(txn, policy, now_us, 100, wakeups, &more);

    CU_ASSERT(handled >= 0);
    CU_ASSERT_EQUAL(more, 0);
    return handled;
}

/* Finds the newest logged change of `kind:id`. @return 1 an upload, 2 a deletion, 0 none. */
static int dirty_state(gdn_journal_txn_t *txn, const char *kind, const char *id, uint64_t *version)
{
    char key[GDN_JOURNAL_KEY_MAX + 1];
    gdn_journal_dirty_t all[32];
    int count = gdn_journal_dirty_list(txn, 0, all, 32);
    int state = 0;

    gdn_record_key(key, kind, id, strlen(id));
    CU_ASSERT(count >= 0 && count < 32);
    for (int i = 0; i < count; i++) {
        if (strcmp(all[i].key, key) != 0)
            continue;
        if (version != NULL)
            *version = all[i].version;
        state = all[i].deleted ? 2 : 1;
    }
    return state;
}

/*
 * Returns the state of the `completed:ID` copy of task `id` in the change log: 1 logged for
 * upload, 2 for deletion, 0 not logged. The copy is never a record of its own: the flusher
 * uploads the finished `task:ID` under its name.
 */
static int copy_state(gdn_journal_txn_t *txn, const char *id)
{
    CU_ASSERT_FALSE(record_exists(txn, "completed", id));
    return dirty_state(txn, "completed", id, NULL);
}

/* Checks that the expiry pass logs the deletion of the copy of `id` at `due_us`, not before. */
static void check_copy_expires(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy,
                               const char *id, int64_t due_us)
{
    expire_at(txn, policy, due_us - 1, NULL);
    CU_ASSERT_NOT_EQUAL(copy_state(txn, id), 2);
    expire_at(txn, policy, due_us, NULL);
    CU_ASSERT_EQUAL(copy_state(txn, id), 2);
}

/* Tells whether the wakeups name `role` `count` times, and nothing else. */
static int woke_role(const gdn_queue_wakeups_t *wakeups, const char *role, int count)
{
    if (wakeups->all || wakeups->count != count)
        return 0;
    for (int i = 0; i < wakeups->count; i++) {
        if (strcmp(wakeups->roles[i], role) != 0)
            return 0;
    }
    return 1;
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
    check_counts(txn, 0, LONG_RUN, 0, 0, 0);

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

    /* The claim is the first attempt, leased for the task's lease from the claim on. */
    CU_ASSERT(has_int(root, "attempts", 1));
    CU_ASSERT(has_int(root, "max_attempts", 3));
    CU_ASSERT(has_int(root, "lease_s", test_policy.task_lease_s));
    CU_ASSERT(has_time(root, "lease_expires_at", now + test_policy.task_lease_s * SECOND_US));

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

static void test_queue__claim_leases_for_the_task_s_own_lease(void)
{
    struct queue_env env;
    char id[GDN_JOURNAL_ID_LEN + 1];
    char claimed[GDN_JOURNAL_ID_LEN + 1];

    env_open(&env);

    gdn_journal_txn_t *txn = begin_write(&env);

    create_with(txn, BASE_US, ",\"lease_s\":15,\"max_attempts\":4", id);
    CU_ASSERT_EQUAL(claim_by(txn, "r", "w", BASE_US + SECOND_US, claimed), 0);
    CU_ASSERT_STRING_EQUAL(claimed, id);

    gdn_task_t task;
    gdn_json_doc_t *doc = read_task(txn, id, &task);

    CU_ASSERT_EQUAL(task.attempts, 1);
    CU_ASSERT_EQUAL(task.max_attempts, 4);
    CU_ASSERT_EQUAL(task.lease_s, 15);
    CU_ASSERT_EQUAL(task.lease_expires_us, BASE_US + 16 * SECOND_US);
    gdn_json_free(doc);

    /* The lease lapses at its own deadline and not a microsecond before. */
    CU_ASSERT_EQUAL(expire_at(txn, &test_policy, BASE_US + 16 * SECOND_US - 1, NULL), 0);
    CU_ASSERT_EQUAL(status_of(txn, id), GDN_TASK_PROCESSING);
    CU_ASSERT_EQUAL(expire_at(txn, &test_policy, BASE_US + 16 * SECOND_US, NULL), 1);
    CU_ASSERT_EQUAL(status_of(txn, id), GDN_TASK_PENDING);
    gdn_journal_abort(txn);
    env_close(&env);
}

/* A completion as the complete route reads it from a body. */
struct completion {
    const char *id;
    const char *worker;      /* NULL: a client that names no worker */
    const char *status;      /* "completed", "failed" or "retry" */
    const char *result;      /* JSON text */
    const char *observation; /* NULL: none */
};

/* Completes a task through a parsed TaskComplete body. @return the queue's code. */
static int complete_with(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy,
                         const struct completion *c, int64_t now_us,
                         gdn_queue_completion_t *outcome)
{
    char body[512];
    char worker[256] = "";
    char observation[128] = "";
    gdn_problems_t problems;
    gdn_task_complete_t complete;
    gdn_json_doc_t *doc = NULL;

    if (c->worker != NULL)
        snprintf(worker, sizeof(worker), ",\"worker_id\":\"%s\"", c->worker);
    if (c->observation != NULL)
        snprintf(observation, sizeof(observation), ",\"observation_id\":\"%s\"", c->observation);
    snprintf(body, sizeof(body), "{\"task_id\":\"%s\",\"result\":%s,\"status\":\"%s\"%s%s}", c->id,
             c->result, c->status, observation, worker);
    CU_ASSERT_EQUAL_FATAL(gdn_problems_init(&problems), 0);
    CU_ASSERT_EQUAL_FATAL(gdn_task_parse_complete(body, strlen(body), &complete, &doc, &problems),
                          0);
    gdn_problems_free(&problems);
    *outcome = (gdn_queue_completion_t)-1;

    int rc = gdn_queue_complete(txn, policy, &complete, now_us, outcome);

    gdn_json_free(doc);
    return rc;
}

/* Completes as `worker` (NULL: a client) and returns the outcome, failing on an error. */
static gdn_queue_completion_t complete_outcome(gdn_journal_txn_t *txn, const char *id,
                                               const char *worker, const char *status,
                                               const char *result, int64_t now_us)
{
    const struct completion c = {
        .id = id, .worker = worker, .status = status, .result = result, .observation = NULL};
    gdn_queue_completion_t outcome;

    CU_ASSERT_EQUAL(complete_with(txn, &test_policy, &c, now_us, &outcome), 0);
    return outcome;
}

/*
 * Completes a task as a client that names no worker, with a fixed result and an observation
 * named after the status. A completion taken must be GDN_QUEUE_COMPLETED.
 */
static int complete_task(gdn_journal_txn_t *txn, const char *id, const char *status, int64_t now_us)
{
    char observation[32];

    snprintf(observation, sizeof(observation), "obs-%s", status);

    const struct completion c = {.id = id,
                                 .status = status,
                                 .result = "{\"ok\":true,\"n\":[1,2]}",
                                 .observation = observation};
    gdn_queue_completion_t outcome;
    int rc = complete_with(txn, &test_policy, &c, now_us, &outcome);

    if (rc == 0)
        CU_ASSERT_EQUAL(outcome, GDN_QUEUE_COMPLETED);
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
    gdn_json_doc_t *task_doc = load_record(txn, "task", done, &task_record);

    check_finished(gdn_json_root(task_doc), done, "completed", now);
    CU_ASSERT(has_string(gdn_json_root(task_doc), "assigned_to", "worker-1"));

    /* The finished task is kept task_retention_s. */
    CU_ASSERT_EQUAL(task_record.expires_us, now + test_policy.task_retention_s * SECOND_US);

    /* The claim ended: no lease runs on a finished task. */
    CU_ASSERT_PTR_NULL(gdn_json_get(gdn_json_root(task_doc), "lease_expires_at"));
    gdn_json_free(task_doc);

    task_doc = load_record(txn, "task", broken, &task_record);
    check_finished(gdn_json_root(task_doc), broken, "failed", now);
    gdn_json_free(task_doc);
    check_counts(txn, 0, 0, 1, 1, 0);

    /* Both completed copies are logged for upload, and leave the bucket completed_ttl_s on. */
    CU_ASSERT_EQUAL(copy_state(txn, done), 1);
    CU_ASSERT_EQUAL(copy_state(txn, broken), 1);
    CU_ASSERT_EQUAL(expire_at(txn, &test_policy, now + 7 * DAY_S * SECOND_US - 1, NULL), 0);
    CU_ASSERT_EQUAL(copy_state(txn, done), 1);
    CU_ASSERT_EQUAL(
        expire_at(txn, &test_policy, now + test_policy.completed_ttl_s * SECOND_US, NULL), 2);
    CU_ASSERT_EQUAL(copy_state(txn, done), 2);
    CU_ASSERT_EQUAL(copy_state(txn, broken), 2);
    CU_ASSERT(record_exists(txn, "task", done));
    check_counts(txn, 0, 0, 1, 1, 0);
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
    check_counts(txn, 1, 0, 1, 0, 0);

    /* The finished task is never handed out. */
    check_claim(txn, "a", second);
    check_claim(txn, "a", NULL);
    check_claim(txn, "", NULL);
    check_counts(txn, 0, 1, 1, 0, 0);
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
    gdn_queue_completion_t outcome;

    CU_ASSERT_EQUAL(gdn_queue_complete(txn, &test_policy, &empty, BASE_US, &outcome),
                    GDN_ENOTFOUND);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), dirty_before);
    check_counts(txn, 1, 0, 0, 0, 0);

    char key[GDN_JOURNAL_KEY_MAX + 1];
    gdn_journal_record_t record;
    size_t key_len = gdn_record_key(key, "completed", unknown, GDN_JOURNAL_ID_LEN);

    CU_ASSERT_EQUAL(gdn_journal_get(txn, key, key_len, &record), GDN_ENOTFOUND);
    CU_ASSERT_EQUAL(gdn_queue_cancel(txn, &test_policy, unknown, BASE_US), GDN_ENOTFOUND);
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_queue__status_counters_follow_every_transition(void)
{
    struct queue_env env;

    env_open(&env);

    gdn_journal_txn_t *txn = begin_write(&env);
    char ids[4][GDN_JOURNAL_ID_LEN + 1];

    check_counts(txn, 0, 0, 0, 0, 0);
    create_task(txn, "a", 3, BASE_US, ids[0]);
    create_task(txn, "a", 2, BASE_US, ids[1]);
    create_task(txn, "b", 1, BASE_US, ids[2]);
    create_task(txn, "b", 0, BASE_US, ids[3]);
    check_counts(txn, 4, 0, 0, 0, 0);
    commit_ok(txn);

    /* A second create with a known id is refused and counts nothing. */
    struct new_task again;
    char existing[GDN_JOURNAL_ID_LEN + 1];

    txn = begin_write(&env);
    make_task(&again, "a", 3, BASE_US);
    memcpy(again.task.id, ids[0], sizeof(again.task.id));
    CU_ASSERT_EQUAL(gdn_queue_create(txn, &test_policy, &again.task, again.json, again.json_len,
                                     NULL, BASE_US, existing, NULL),
                    GDN_ECONFLICT);
    free_task(&again);
    check_counts(txn, 4, 0, 0, 0, 0);

    char claimed[GDN_JOURNAL_ID_LEN + 1];

    CU_ASSERT_EQUAL(claim_id(txn, "a", BASE_US, claimed), 0);
    check_counts(txn, 3, 1, 0, 0, 0);
    CU_ASSERT_EQUAL(complete_task(txn, claimed, "completed", BASE_US), 0);
    check_counts(txn, 3, 0, 1, 0, 0);
    CU_ASSERT_EQUAL(complete_task(txn, ids[2], "failed", BASE_US), 0);
    check_counts(txn, 2, 0, 1, 1, 0);
    CU_ASSERT_EQUAL(gdn_queue_cancel(txn, &test_policy, ids[3], BASE_US), 0);
    check_counts(txn, 1, 0, 1, 1, 1);
    CU_ASSERT_EQUAL(claim_id(txn, "", BASE_US, claimed), 0);
    CU_ASSERT_STRING_EQUAL(claimed, ids[1]);
    check_counts(txn, 0, 1, 1, 1, 1);
    CU_ASSERT_EQUAL(claim_id(txn, "", BASE_US, claimed), GDN_ENOTFOUND);
    check_counts(txn, 0, 1, 1, 1, 1);
    commit_ok(txn);

    /* A finished task is finished once: completing it again moves no counter. */
    txn = begin_write(&env);
    CU_ASSERT_EQUAL(complete_task(txn, ids[1], "failed", BASE_US), 0);
    check_counts(txn, 0, 0, 1, 2, 1);
    CU_ASSERT_EQUAL(complete_outcome(txn, ids[1], NULL, "completed", "null", BASE_US),
                    GDN_QUEUE_REFUSED);
    check_counts(txn, 0, 0, 1, 2, 1);
    CU_ASSERT_EQUAL(complete_outcome(txn, ids[3], NULL, "completed", "null", BASE_US),
                    GDN_QUEUE_REFUSED);
    check_counts(txn, 0, 0, 1, 2, 1);
    commit_ok(txn);

    /* Counters are journal state: a reopen keeps them. */
    gdn_journal_close(env.journal);
    env.journal = NULL;
    CU_ASSERT_EQUAL_FATAL(gdn_journal_open(&env.journal, env.dir, 64, 4), 0);
    txn = begin_write(&env);
    check_counts(txn, 0, 0, 1, 2, 1);
    gdn_journal_abort(txn);
    env_close(&env);
}

/* Registers a worker through a parsed register body, as the register route does. */
static void register_worker(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy,
                            const char *worker_id, int64_t now_us)
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
    CU_ASSERT_EQUAL(gdn_queue_register(txn, policy, &worker, now_us), 0);
    gdn_json_free(doc);
}

/*
 * Sends a heartbeat. On success `cancelled` (if not NULL) receives the array of cancelled held
 * tasks the queue answered with. @return the queue's code.
 */
static int heartbeat_cancelled(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy,
                               const char *worker_id, int64_t now_us, char *cancelled,
                               size_t cancelled_size)
{
    gdn_buf_t out = GDN_BUF_INIT;
    int rc = gdn_queue_heartbeat(txn, policy, worker_id, strlen(worker_id), now_us, &out);

    if (rc == 0 && cancelled != NULL) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(out.data);
        snprintf(cancelled, cancelled_size, "%s", out.data);
    }
    gdn_buf_free(&out);
    return rc;
}

static int heartbeat(gdn_journal_txn_t *txn, const gdn_queue_policy_t *policy,
                     const char *worker_id, int64_t now_us)
{
    char cancelled[256];
    int rc = heartbeat_cancelled(txn, policy, worker_id, now_us, cancelled, sizeof(cancelled));

    if (rc == 0)
        CU_ASSERT_STRING_EQUAL(cancelled, "[]");
    return rc;
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

    CU_ASSERT_EQUAL(heartbeat(txn, &test_policy, "nobody", BASE_US), GDN_ENOTFOUND);
    register_worker(txn, &test_policy, "somebody", BASE_US);
    CU_ASSERT_EQUAL(heartbeat(txn, &test_policy, "nobody", BASE_US), GDN_ENOTFOUND);
    CU_ASSERT_EQUAL(heartbeat(txn, &test_policy, "somebod", BASE_US), GDN_ENOTFOUND);
    CU_ASSERT_EQUAL(heartbeat(txn, &test_policy, "somebody", BASE_US), 0);
    check_workers(txn, BASE_US, 1, 1);
    commit_ok(txn);
    env_close(&env);
}

static void test_queue__active_workers_are_counted_by_expiry(void)
{
    struct queue_env env;
    gdn_queue_policy_t policy = test_policy;

    policy.worker_ttl_s = 1;
    env_open(&env);

    gdn_journal_txn_t *txn = begin_write(&env);

    /* With a one-second time to live a worker is live strictly before its last word plus 1 s. */
    register_worker(txn, &policy, "w1", BASE_US);
    register_worker(txn, &policy, "w2", BASE_US + SECOND_US / 2);
    commit_ok(txn);

    txn = begin_write(&env);
    check_workers(txn, BASE_US, 2, 2);
    check_workers(txn, BASE_US + SECOND_US * 9 / 10, 2, 2);
    check_workers(txn, BASE_US + SECOND_US, 1, 2);
    check_workers(txn, BASE_US + SECOND_US * 12 / 10, 1, 2);
    check_workers(txn, BASE_US + SECOND_US * 3 / 2, 0, 2);

    /* A heartbeat brings w1 back and moves its expiry; registration time stays. */
    int64_t beat = BASE_US + SECOND_US * 13 / 10;

    CU_ASSERT_EQUAL(heartbeat(txn, &policy, "w1", beat), 0);
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
    uint64_t version = 0;

    return dirty_state(txn, kind, id, &version) == 1 ? version : 0;
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
    gdn_journal_dirty_t all[32];
    int count = gdn_journal_dirty_list(txn, 0, all, 32);

    CU_ASSERT(count >= 0 && count < 32);
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
    CU_ASSERT_EQUAL(copy_state(txn, id), 1);
    clear_dirty(txn);
    commit_ok(txn);

    /* The journal stamps an upload mark with its own clock, so worker times follow it here. */
    int64_t now = gdn_clock_now_us();

    txn = begin_write(&env);
    register_worker(txn, &test_policy, "w1", now);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), 1);
    check_marked(txn, "worker", "w1");
    clear_dirty(txn);

    /* A heartbeat soon after the last mark stays local; one half a TTL later is uploaded. */
    gdn_journal_record_t record;
    gdn_json_doc_t *doc;

    CU_ASSERT_EQUAL(heartbeat(txn, &test_policy, "w1", now + SECOND_US), 0);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), 0);
    doc = load_record(txn, "worker", "w1", &record);
    CU_ASSERT(has_time(gdn_json_root(doc), "last_heartbeat", now + SECOND_US));
    gdn_json_free(doc);

    CU_ASSERT_EQUAL(
        heartbeat(txn, &test_policy, "w1", now + (int64_t)test_policy.worker_ttl_s * SECOND_US), 0);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), 1);
    check_marked(txn, "worker", "w1");
    commit_ok(txn);
    env_close(&env);
}

/* Checks the claim order of role `role` (NULL: all roles) against `ids` in that order. */
static void check_claim_order(gdn_journal_txn_t *txn, const char *role, const char *const *ids,
                              int count)
{
    gdn_journal_pending_t entries[16];
    int listed = gdn_journal_pending_list(txn, role, NULL, entries, 16);

    CU_ASSERT_EQUAL(listed, count);
    for (int i = 0; i < listed && i < count; i++) {
        if (strcmp(entries[i].id, ids[i]) != 0)
            fprintf(stderr, "\nclaim order position %d: %s, wanted %s\n", i, entries[i].id, ids[i]);
        CU_ASSERT_STRING_EQUAL(entries[i].id, ids[i]);
    }
}

static void test_queue__lapsed_lease_puts_the_task_back_in_its_place(void)
{
    /* In claim order: 2 (priority 9), then 0 and 1 (priority 5, 0 older); 3 has another role. */
    static const struct seed seeds[] = {
        {"r", 5, BASE_US}, {"r", 5, BASE_US + 1}, {"r", 9, BASE_US + 2}, {"s", 5, BASE_US}};
    struct queue_env env;
    char ids[4][GDN_JOURNAL_ID_LEN + 1];
    char claimed[GDN_JOURNAL_ID_LEN + 1];
    int64_t t0 = BASE_US + 10 * SECOND_US;
    int64_t lapse = t0 + test_policy.task_lease_s * SECOND_US;

    env_open_with(&env, seeds, 4, ids);

    gdn_journal_txn_t *txn = begin_write(&env);

    CU_ASSERT_EQUAL(claim_by(txn, "r", "w", t0, claimed), 0);
    CU_ASSERT_STRING_EQUAL(claimed, ids[2]);
    CU_ASSERT_EQUAL(claim_by(txn, "r", "w", t0, claimed), 0);
    CU_ASSERT_STRING_EQUAL(claimed, ids[0]);
    check_counts(txn, 2, 2, 0, 0, 0);
    commit_ok(txn);

    /* Before the lease ends nothing happens. */
    gdn_queue_wakeups_t wakeups = {0};

    txn = begin_write(&env);
    CU_ASSERT_EQUAL(expire_at(txn, &test_policy, lapse - 1, &wakeups), 0);
    CU_ASSERT_EQUAL(wakeups.count, 0);
    check_counts(txn, 2, 2, 0, 0, 0);

    /* At its end both tasks go back where they were, and waiting polls of "r" are woken. */
    CU_ASSERT_EQUAL(expire_at(txn, &test_policy, lapse, &wakeups), 2);
    CU_ASSERT(woke_role(&wakeups, "r", 2));
    check_counts(txn, 4, 0, 0, 0, 0);
    commit_ok(txn);

    txn = begin_write(&env);

    gdn_task_t task;
    gdn_json_doc_t *doc = read_task(txn, ids[0], &task);

    CU_ASSERT_EQUAL(task.status, GDN_TASK_PENDING);
    CU_ASSERT_EQUAL(task.priority, 5);
    CU_ASSERT_EQUAL(task.created_us, BASE_US);
    CU_ASSERT_EQUAL(task.updated_us, lapse);
    CU_ASSERT_EQUAL(task.attempts, 1);
    CU_ASSERT_PTR_NULL(task.assigned_to);
    CU_ASSERT_EQUAL(task.lease_expires_us, 0);
    CU_ASSERT_EQUAL(task.run_at_us, 0);
    CU_ASSERT_PTR_NULL(task.error);
    CU_ASSERT_EQUAL(task.finished, 0);
    gdn_json_free(doc);

    /* Across roles, 0 and 3 tie on priority and age, so their ids decide. */
    int tie = strcmp(ids[0], ids[3]) < 0;
    const char *order_r[] = {ids[2], ids[0], ids[1]};
    const char *order_all[] = {ids[2], tie ? ids[0] : ids[3], tie ? ids[3] : ids[0], ids[1]};

    check_claim_order(txn, "r", order_r, 3);
    check_claim_order(txn, NULL, order_all, 4);

    /* The next claim is the task's second attempt. */
    CU_ASSERT_EQUAL(claim_by(txn, "r", "w2", lapse + SECOND_US, claimed), 0);
    CU_ASSERT_STRING_EQUAL(claimed, ids[2]);
    doc = read_task(txn, ids[2], &task);
    CU_ASSERT_EQUAL(task.attempts, 2);
    gdn_json_free(doc);
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_queue__lease_lapses_past_max_attempts_fail_the_task(void)
{
    struct queue_env env;
    char id[GDN_JOURNAL_ID_LEN + 1];
    char claimed[GDN_JOURNAL_ID_LEN + 1];
    int64_t lease_us = test_policy.task_lease_s * SECOND_US;
    int64_t t1 = BASE_US + SECOND_US;
    int64_t t2 = t1 + lease_us + SECOND_US;
    gdn_queue_wakeups_t wakeups = {0};

    env_open(&env);

    gdn_journal_txn_t *txn = begin_write(&env);

    create_with(txn, BASE_US, ",\"max_attempts\":2", id);
    CU_ASSERT_EQUAL(claim_by(txn, "r", "w", t1, claimed), 0);
    CU_ASSERT_EQUAL(expire_at(txn, &test_policy, t1 + lease_us, NULL), 1);
    CU_ASSERT_EQUAL(status_of(txn, id), GDN_TASK_PENDING);
    CU_ASSERT_EQUAL(claim_by(txn, "r", "w", t2, claimed), 0);
    CU_ASSERT_STRING_EQUAL(claimed, id);
    clear_dirty(txn);

    /* The second lapse uses the last attempt: the task fails, and nobody is woken for it. */
    CU_ASSERT_EQUAL(expire_at(txn, &test_policy, t2 + lease_us, &wakeups), 1);
    CU_ASSERT_EQUAL(wakeups.count, 0);
    check_counts(txn, 0, 0, 0, 1, 0);
    CU_ASSERT_EQUAL(has_pending(txn, ""), 0);

    gdn_task_t task;
    gdn_json_doc_t *doc = read_task(txn, id, &task);

    CU_ASSERT_EQUAL(task.status, GDN_TASK_FAILED);
    CU_ASSERT_EQUAL(task.attempts, 2);
    CU_ASSERT_EQUAL(task.finished, 1);
    CU_ASSERT_PTR_NULL(task.result);
    CU_ASSERT_EQUAL(task.completed_us, t2 + lease_us);
    CU_ASSERT_PTR_NULL(task.assigned_to);
    CU_ASSERT_EQUAL(task.lease_expires_us, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(task.error);

    char error[256];

    snprintf(error, sizeof(error), "%.*s", (int)task.error_len, task.error);
    if (strstr(error, "lease expired") == NULL)
        fprintf(stderr, "\nerror of a task failed by its lease: %s\n", error);
    CU_ASSERT_PTR_NOT_NULL(strstr(error, "lease expired"));
    gdn_json_free(doc);

    /* Like any finished task it has a completed copy, and both are marked for upload. */
    check_marked(txn, "task", id);
    CU_ASSERT_EQUAL(copy_state(txn, id), 1);
    check_copy_expires(txn, &test_policy, id,
                       t2 + lease_us + test_policy.completed_ttl_s * SECOND_US);
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_queue__heartbeat_extends_the_leases_a_worker_holds(void)
{
    struct queue_env env;
    char ids[3][GDN_JOURNAL_ID_LEN + 1];
    char claimed[GDN_JOURNAL_ID_LEN + 1];
    int64_t lease_us = test_policy.task_lease_s * SECOND_US;
    int64_t t0 = BASE_US + SECOND_US;
    int64_t beat = t0 + 40 * SECOND_US;

    env_open(&env);

    gdn_journal_txn_t *txn = begin_write(&env);

    for (int i = 0; i < 3; i++)
        create_task(txn, "r", 5, BASE_US + i, ids[i]);
    register_worker(txn, &test_policy, "w", t0);
    register_worker(txn, &test_policy, "other", t0);
    CU_ASSERT_EQUAL(claim_by(txn, "r", "w", t0, claimed), 0);
    CU_ASSERT_EQUAL(claim_by(txn, "r", "w", t0, claimed), 0);
    CU_ASSERT_EQUAL(claim_by(txn, "r", "other", t0, claimed), 0);
    CU_ASSERT_STRING_EQUAL(claimed, ids[2]);
    commit_ok(txn);

    txn = begin_write(&env);
    CU_ASSERT_EQUAL(heartbeat(txn, &test_policy, "w", beat), 0);

    gdn_task_t task;
    gdn_json_doc_t *doc;

    for (int i = 0; i < 2; i++) {
        doc = read_task(txn, ids[i], &task);
        CU_ASSERT_EQUAL(task.lease_expires_us, beat + lease_us);
        CU_ASSERT_EQUAL(task.status, GDN_TASK_PROCESSING);
        gdn_json_free(doc);
    }
    doc = read_task(txn, ids[2], &task);
    CU_ASSERT_EQUAL(task.lease_expires_us, t0 + lease_us);
    gdn_json_free(doc);

    /* At the old deadline only the other worker's task lapses. */
    CU_ASSERT_EQUAL(expire_at(txn, &test_policy, t0 + lease_us, NULL), 1);
    CU_ASSERT_EQUAL(status_of(txn, ids[0]), GDN_TASK_PROCESSING);
    CU_ASSERT_EQUAL(status_of(txn, ids[1]), GDN_TASK_PROCESSING);
    CU_ASSERT_EQUAL(status_of(txn, ids[2]), GDN_TASK_PENDING);

    /* With no heartbeat since, the extended leases lapse at their new deadline. */
    CU_ASSERT_EQUAL(expire_at(txn, &test_policy, beat + lease_us - 1, NULL), 0);
    CU_ASSERT_EQUAL(expire_at(txn, &test_policy, beat + lease_us, NULL), 2);
    CU_ASSERT_EQUAL(status_of(txn, ids[0]), GDN_TASK_PENDING);
    CU_ASSERT_EQUAL(status_of(txn, ids[1]), GDN_TASK_PENDING);
    check_counts(txn, 3, 0, 0, 0, 0);

    /* A worker holding nothing any more extends nothing. */
    CU_ASSERT_EQUAL(heartbeat(txn, &test_policy, "w", beat + lease_us + SECOND_US), 0);
    CU_ASSERT_EQUAL(status_of(txn, ids[0]), GDN_TASK_PENDING);
    gdn_journal_abort(txn);
    env_close(&env);
}

/* When the worker of open_with_two_held registers and claims. */
#define HELD_US (BASE_US + SECOND_US)

/*
 * Opens a journal where worker "w" registered at HELD_US and claimed two tasks of role "r",
 * created with the body members `extra`; ids[] receives them in claim order. Returns the write
 * transaction that did it, still open.
 */
static gdn_journal_txn_t *open_with_two_held(struct queue_env *env,
                                             const gdn_queue_policy_t *policy, const char *extra,
                                             char ids[2][GDN_JOURNAL_ID_LEN + 1])
{
    char claimed[GDN_JOURNAL_ID_LEN + 1];

    env_open(env);

    gdn_journal_txn_t *txn = begin_write(env);

    create_with(txn, BASE_US, extra, ids[0]);
    create_with(txn, BASE_US + 1, extra, ids[1]);
    register_worker(txn, policy, "w", HELD_US);
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(claim_by(txn, "r", "w", HELD_US, claimed), 0);
        CU_ASSERT_STRING_EQUAL(claimed, ids[i]);
    }
    return txn;
}

static void test_queue__silent_worker_releases_its_tasks(void)
{
    struct queue_env env;
    gdn_queue_policy_t policy = test_policy;
    char ids[2][GDN_JOURNAL_ID_LEN + 1];
    int64_t t0 = HELD_US;
    gdn_queue_wakeups_t wakeups = {0};

    /* The worker goes silent long before the leases of its tasks end. */
    policy.worker_ttl_s = 100;

    gdn_journal_txn_t *txn = open_with_two_held(&env, &policy, ",\"lease_s\":3600", ids);

    register_worker(txn, &policy, "w2", t0 + 50 * SECOND_US);
    commit_ok(txn);

    txn = begin_write(&env);
    clear_dirty(txn);
    CU_ASSERT_EQUAL(expire_at(txn, &policy, t0 + 100 * SECOND_US - 1, &wakeups), 0);
    CU_ASSERT(record_exists(txn, "worker", "w"));

    /* At the end of its time to live the worker is gone, and its tasks go back. */
    CU_ASSERT_EQUAL(expire_at(txn, &policy, t0 + 100 * SECOND_US, &wakeups), 1);
    CU_ASSERT(woke_role(&wakeups, "r", 2));
    CU_ASSERT_FALSE(record_exists(txn, "worker", "w"));
    CU_ASSERT_EQUAL(dirty_state(txn, "worker", "w", NULL), 2);
    CU_ASSERT(record_exists(txn, "worker", "w2"));
    check_counts(txn, 2, 0, 0, 0, 0);
    check_workers(txn, t0 + 100 * SECOND_US, 1, 1);

    for (int i = 0; i < 2; i++) {
        gdn_task_t task;
        gdn_json_doc_t *doc = read_task(txn, ids[i], &task);

        CU_ASSERT_EQUAL(task.status, GDN_TASK_PENDING);
        CU_ASSERT_EQUAL(task.attempts, 1);
        CU_ASSERT_PTR_NULL(task.assigned_to);
        CU_ASSERT_EQUAL(task.lease_expires_us, 0);
        gdn_json_free(doc);
        check_marked(txn, "task", ids[i]);
    }

    const char *order[] = {ids[0], ids[1]};

    check_claim_order(txn, "r", order, 2);
    CU_ASSERT_EQUAL(heartbeat(txn, &policy, "w", t0 + 101 * SECOND_US), GDN_ENOTFOUND);

    /* The old lease deadlines, when they come, release nothing a second time. */
    expire_at(txn, &policy, t0 + 3601 * SECOND_US, NULL);
    for (int i = 0; i < 2; i++) {
        gdn_task_t task;
        gdn_json_doc_t *doc = read_task(txn, ids[i], &task);

        CU_ASSERT_EQUAL(task.status, GDN_TASK_PENDING);
        CU_ASSERT_EQUAL(task.attempts, 1);
        CU_ASSERT_EQUAL(task.updated_us, t0 + 100 * SECOND_US);
        gdn_json_free(doc);
    }
    check_claim_order(txn, "r", order, 2);
    check_counts(txn, 2, 0, 0, 0, 0);
    gdn_journal_abort(txn);
    env_close(&env);
}

/* A silent worker whose id is as long as allowed, in three-byte characters, fails the last
 * attempt of its task with the whole id in the error: a cut inside a character would leave a
 * task the JSON writer cannot render, and an expiry pass that fails on it for good. */
static void test_queue__a_silent_worker_with_a_long_utf8_id_fails_its_task(void)
{
    struct queue_env env;
    gdn_queue_policy_t policy = test_policy;
    char worker[GDN_WORKER_ID_MAX + 1];
    char id[GDN_JOURNAL_ID_LEN + 1];
    char claimed[GDN_JOURNAL_ID_LEN + 1];
    size_t worker_len = 0;

    while (worker_len + 3 <= GDN_WORKER_ID_MAX) {
        memcpy(worker + worker_len, "\xe2\x82\xac", 3); /* U+20AC, the euro sign */
        worker_len += 3;
    }
    worker[worker_len] = '\0';
    policy.worker_ttl_s = 100;
    env_open(&env);

    gdn_journal_txn_t *txn = begin_write(&env);

    create_with(txn, BASE_US, ",\"max_attempts\":1,\"lease_s\":3600", id);
    register_worker(txn, &policy, worker, HELD_US);
    CU_ASSERT_EQUAL(claim_by(txn, "r", worker, HELD_US, claimed), 0);
    CU_ASSERT_STRING_EQUAL(claimed, id);
    CU_ASSERT_EQUAL(expire_at(txn, &policy, HELD_US + 100 * SECOND_US, NULL), 1);

    gdn_task_t task;
    gdn_json_doc_t *doc = read_task(txn, id, &task);

    CU_ASSERT_EQUAL(task.status, GDN_TASK_FAILED);
    CU_ASSERT_PTR_NOT_NULL(
        task.error != NULL ? memmem(task.error, task.error_len, worker, worker_len) : NULL);
    gdn_json_free(doc);
    check_counts(txn, 0, 0, 0, 1, 0);
    gdn_journal_abort(txn);
    env_close(&env);
}

/* Counts the entries of the held index that belong to `worker_id`. */
struct held_count {
    const char *worker_id;
    int count;
};

static int on_held_entry(void *arg, const void *key, size_t key_len, const void *value,
                         size_t value_len)
{
    struct held_count *held = arg;
    size_t len = strlen(held->worker_id);

    (void)value;
    (void)value_len;
    if (key_len > len && memcmp(key, held->worker_id, len) == 0 && ((const char *)key)[len] == '\0')
        held->count++;
    return 0;
}

static int held_entries(gdn_journal_txn_t *txn, const char *worker_id)
{
    struct held_count held = {.worker_id = worker_id};

    CU_ASSERT_EQUAL(gdn_journal_index_scan(txn, GDN_JOURNAL_HELD, NULL, 0, 0, on_held_entry, &held),
                    0);
    return held.count;
}

static void test_queue__silent_worker_leaves_nothing_held(void)
{
    struct queue_env env;
    gdn_queue_policy_t policy = test_policy;
    char ids[2][GDN_JOURNAL_ID_LEN + 1];
    char cancelled[256];
    int64_t t0 = HELD_US;

    policy.worker_ttl_s = 100;

    /* One task the worker still works on, one cancelled while it held it. */
    gdn_journal_txn_t *txn = open_with_two_held(&env, &policy, ",\"lease_s\":3600", ids);

    CU_ASSERT_EQUAL(gdn_queue_cancel(txn, &policy, ids[1], t0 + SECOND_US), 0);
    CU_ASSERT_EQUAL(held_entries(txn, "w"), 2);
    CU_ASSERT_EQUAL(expire_at(txn, &policy, t0 + 100 * SECOND_US, NULL), 1);
    CU_ASSERT_EQUAL(status_of(txn, ids[0]), GDN_TASK_PENDING);
    CU_ASSERT_EQUAL(status_of(txn, ids[1]), GDN_TASK_CANCELLED);

    /* The worker is gone, and so is everything it held: a worker that registers again under
     * the same id starts with nothing, and is told of no cancellation from before. */
    CU_ASSERT_EQUAL(held_entries(txn, "w"), 0);
    register_worker(txn, &policy, "w", t0 + 200 * SECOND_US);
    CU_ASSERT_EQUAL(
        heartbeat_cancelled(txn, &policy, "w", t0 + 201 * SECOND_US, cancelled, sizeof(cancelled)),
        0);
    CU_ASSERT_STRING_EQUAL(cancelled, "[]");
    gdn_journal_abort(txn);
    env_close(&env);
}

/* Returns the run_at of the stored task `id` (0 for none). */
static int64_t run_at_of(gdn_journal_txn_t *txn, const char *id)
{
    gdn_task_t task;
    gdn_json_doc_t *doc = read_task(txn, id, &task);

    gdn_json_free(doc);
    return task.run_at_us;
}

/* Checks that a retried task waits for its run_at, then joins the claim order at it. */
static void check_retry_wait(gdn_journal_txn_t *txn, const char *id, int64_t run_at_us)
{
    gdn_queue_wakeups_t wakeups = {0};

    CU_ASSERT_EQUAL(has_pending(txn, "r"), 0);
    check_claim_at(txn, "r", run_at_us - 1, NULL);
    CU_ASSERT_EQUAL(expire_at(txn, &test_policy, run_at_us - 1, &wakeups), 0);
    CU_ASSERT_EQUAL(has_pending(txn, "r"), 0);
    CU_ASSERT_EQUAL(expire_at(txn, &test_policy, run_at_us, &wakeups), 1);
    CU_ASSERT(woke_role(&wakeups, "r", 1));
    CU_ASSERT_EQUAL(has_pending(txn, "r"), 1);

    char claimed[GDN_JOURNAL_ID_LEN + 1];

    CU_ASSERT_EQUAL(claim_by(txn, "r", "w", run_at_us, claimed), 0);
    CU_ASSERT_STRING_EQUAL(claimed, id);
}

static void test_queue__retry_puts_the_task_back_after_a_backoff(void)
{
    struct queue_env env;
    char id[GDN_JOURNAL_ID_LEN + 1];
    char claimed[GDN_JOURNAL_ID_LEN + 1];
    int64_t base_us = test_policy.retry_base_s * SECOND_US;
    int64_t t1 = BASE_US + 5 * SECOND_US;

    env_open(&env);

    gdn_journal_txn_t *txn = begin_write(&env);

    create_with(txn, BASE_US, "", id);
    CU_ASSERT_EQUAL(claim_by(txn, "r", "w", BASE_US + SECOND_US, claimed), 0);

    /* The first retry waits between half the base backoff and all of it. */
    CU_ASSERT_EQUAL(complete_outcome(txn, id, "w", "retry", "{\"busy\":true}", t1),
                    GDN_QUEUE_COMPLETED);

    gdn_task_t task;
    gdn_json_doc_t *doc = read_task(txn, id, &task);

    CU_ASSERT_EQUAL(task.status, GDN_TASK_PENDING);
    CU_ASSERT_EQUAL(task.attempts, 1);
    CU_ASSERT_EQUAL(task.finished, 0);
    CU_ASSERT_PTR_NULL(task.assigned_to);
    CU_ASSERT_EQUAL(task.lease_expires_us, 0);
    CU_ASSERT(task.run_at_us >= t1 + base_us / 2 && task.run_at_us <= t1 + base_us);
    gdn_json_free(doc);
    check_counts(txn, 1, 0, 0, 0, 0);
    CU_ASSERT_EQUAL(copy_state(txn, id), 0);
    check_retry_wait(txn, id, run_at_of(txn, id));

    /* The second waits twice as long. */
    int64_t t2 = run_at_of(txn, id) + SECOND_US;

    CU_ASSERT_EQUAL(complete_outcome(txn, id, "w", "retry", "null", t2), GDN_QUEUE_COMPLETED);

    int64_t run_at = run_at_of(txn, id);

    CU_ASSERT(run_at >= t2 + base_us && run_at <= t2 + 2 * base_us);
    check_retry_wait(txn, id, run_at);

    /* The third claim was the last attempt: a retry now fails the task for good. */
    int64_t t3 = run_at + SECOND_US;

    CU_ASSERT_EQUAL(complete_outcome(txn, id, "w", "retry", "null", t3), GDN_QUEUE_COMPLETED);
    doc = read_task(txn, id, &task);
    CU_ASSERT_EQUAL(task.status, GDN_TASK_FAILED);
    CU_ASSERT_EQUAL(task.attempts, 3);
    CU_ASSERT_EQUAL(task.finished, 1);
    CU_ASSERT_EQUAL(task.completed_us, t3);
    CU_ASSERT_PTR_NOT_NULL(task.error);
    gdn_json_free(doc);
    CU_ASSERT_EQUAL(copy_state(txn, id), 1);
    check_counts(txn, 0, 0, 0, 1, 0);
    CU_ASSERT_EQUAL(expire_at(txn, &test_policy, t3 + 1000 * SECOND_US, NULL), 0);
    CU_ASSERT_EQUAL(has_pending(txn, ""), 0);
    check_copy_expires(txn, &test_policy, id, t3 + test_policy.completed_ttl_s * SECOND_US);
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_queue__retry_backoff_is_capped(void)
{
    struct queue_env env;
    char id[GDN_JOURNAL_ID_LEN + 1];
    char claimed[GDN_JOURNAL_ID_LEN + 1];
    int64_t max_us = test_policy.retry_max_s * SECOND_US;
    int64_t now = BASE_US;

    env_open(&env);

    gdn_journal_txn_t *txn = begin_write(&env);

    /* Base 10 s doubles to 20, 40, 80, then stays at the 80 s cap. */
    create_with(txn, BASE_US, ",\"max_attempts\":8", id);
    for (int attempt = 1; attempt <= 6; attempt++) {
        int64_t wait_us = test_policy.retry_base_s * SECOND_US << (attempt - 1);

        if (wait_us > max_us)
            wait_us = max_us;
        CU_ASSERT_EQUAL_FATAL(claim_by(txn, "r", "w", now, claimed), 0);
        now += SECOND_US;
        CU_ASSERT_EQUAL(complete_outcome(txn, id, "w", "retry", "null", now), GDN_QUEUE_COMPLETED);

        int64_t run_at = run_at_of(txn, id);

        CU_ASSERT(run_at >= now + wait_us / 2 && run_at <= now + wait_us);
        now = run_at;
        CU_ASSERT_EQUAL(expire_at(txn, &test_policy, now, NULL), 1);
    }
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_queue__completion_by_a_worker_that_lost_the_task_is_late(void)
{
    struct queue_env env;
    char id[GDN_JOURNAL_ID_LEN + 1];
    char claimed[GDN_JOURNAL_ID_LEN + 1];
    int64_t t0 = BASE_US + SECOND_US;
    int64_t lapse = t0 + test_policy.task_lease_s * SECOND_US;

    env_open(&env);

    gdn_journal_txn_t *txn = begin_write(&env);

    create_with(txn, BASE_US, "", id);
    CU_ASSERT_EQUAL(claim_by(txn, "r", "w1", t0, claimed), 0);
    CU_ASSERT_EQUAL(expire_at(txn, &test_policy, lapse, NULL), 1);

    /* w1's lease lapsed: its result is kept aside and the task stays pending. */
    CU_ASSERT_EQUAL(complete_outcome(txn, id, "w1", "completed", "{\"late\":1}", lapse + 1),
                    GDN_QUEUE_LATE);

    gdn_task_t task;
    gdn_json_doc_t *doc = read_task(txn, id, &task);

    CU_ASSERT_EQUAL(task.status, GDN_TASK_PENDING);
    CU_ASSERT_EQUAL(task.finished, 0);
    CU_ASSERT_PTR_NULL(task.result);
    CU_ASSERT_PTR_NOT_NULL_FATAL(task.late_result);
    CU_ASSERT(has_int(task.late_result, "late", 1));
    gdn_json_free(doc);
    check_counts(txn, 1, 0, 0, 0, 0);
    CU_ASSERT_EQUAL(has_pending(txn, "r"), 1);
    CU_ASSERT_EQUAL(copy_state(txn, id), 0);

    /* Once w2 holds the task, w1's completion is still late, and w2's is taken. */
    CU_ASSERT_EQUAL(claim_by(txn, "r", "w2", lapse + 2, claimed), 0);
    CU_ASSERT_STRING_EQUAL(claimed, id);
    CU_ASSERT_EQUAL(complete_outcome(txn, id, "w1", "failed", "{\"late\":2}", lapse + 3),
                    GDN_QUEUE_LATE);
    doc = read_task(txn, id, &task);
    CU_ASSERT_EQUAL(task.status, GDN_TASK_PROCESSING);
    CU_ASSERT(task.assigned_to_len == 2 && memcmp(task.assigned_to, "w2", 2) == 0);
    CU_ASSERT_EQUAL(task.lease_expires_us, lapse + 2 + test_policy.task_lease_s * SECOND_US);
    CU_ASSERT(task.late_result != NULL && has_int(task.late_result, "late", 2));
    gdn_json_free(doc);
    check_counts(txn, 0, 1, 0, 0, 0);

    /* A worker that never held the task is late too; a retry from it changes nothing either. */
    CU_ASSERT_EQUAL(complete_outcome(txn, id, "w3", "retry", "null", lapse + 4), GDN_QUEUE_LATE);
    CU_ASSERT_EQUAL(status_of(txn, id), GDN_TASK_PROCESSING);

    CU_ASSERT_EQUAL(complete_outcome(txn, id, "w2", "completed", "{\"on_time\":true}", lapse + 5),
                    GDN_QUEUE_COMPLETED);
    doc = read_task(txn, id, &task);
    CU_ASSERT_EQUAL(task.status, GDN_TASK_COMPLETED);
    CU_ASSERT(task.result != NULL && gdn_json_get(task.result, "on_time") != NULL);
    gdn_json_free(doc);
    check_counts(txn, 0, 0, 1, 0, 0);

    /* A late result for the finished task keeps its retention: it is still removed when that
     * ends. */
    int64_t removal = lapse + 5 + test_policy.task_retention_s * SECOND_US;
    gdn_journal_record_t record;

    CU_ASSERT_EQUAL(complete_outcome(txn, id, "w1", "completed", "{\"late\":3}", lapse + 6),
                    GDN_QUEUE_LATE);
    doc = load_record(txn, "task", id, &record);
    CU_ASSERT_EQUAL(record.expires_us, removal);
    gdn_json_free(doc);
    expire_at(txn, &test_policy, removal, NULL);
    CU_ASSERT_FALSE(record_exists(txn, "task", id));
    check_counts(txn, 0, 0, 0, 0, 0);
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_queue__completing_twice_is_repeated_or_refused(void)
{
    struct queue_env env;
    char id[GDN_JOURNAL_ID_LEN + 1];
    char claimed[GDN_JOURNAL_ID_LEN + 1];
    const char *result = "{\"leaves\":[3,1],\"ok\":true}";

    env_open(&env);

    gdn_journal_txn_t *txn = begin_write(&env);

    create_with(txn, BASE_US, "", id);
    CU_ASSERT_EQUAL(claim_by(txn, "r", "w", BASE_US + SECOND_US, claimed), 0);

    const struct completion first = {
        .id = id, .worker = "w", .status = "completed", .result = result, .observation = "o-1"};
    gdn_queue_completion_t outcome;

    CU_ASSERT_EQUAL(complete_with(txn, &test_policy, &first, BASE_US + 2 * SECOND_US, &outcome), 0);
    CU_ASSERT_EQUAL(outcome, GDN_QUEUE_COMPLETED);
    clear_dirty(txn);

    gdn_journal_record_t record;
    gdn_json_doc_t *doc = load_record(txn, "task", id, &record);
    uint64_t version = record.version;

    gdn_json_free(doc);

    /* The same completion again, from the worker or from a client, changes nothing. */
    struct completion again = first;

    CU_ASSERT_EQUAL(complete_with(txn, &test_policy, &again, BASE_US + 3 * SECOND_US, &outcome), 0);
    CU_ASSERT_EQUAL(outcome, GDN_QUEUE_REPEATED);
    again.worker = NULL;
    CU_ASSERT_EQUAL(complete_with(txn, &test_policy, &again, BASE_US + 3 * SECOND_US, &outcome), 0);
    CU_ASSERT_EQUAL(outcome, GDN_QUEUE_REPEATED);

    /* Any other completion is refused, and changes nothing either. */
    struct completion other[5];

    for (int i = 0; i < 5; i++)
        other[i] = first;
    other[0].result = "{\"leaves\":[3,1],\"ok\":false}";
    other[1].status = "failed";
    other[2].observation = "o-2";
    other[3].observation = NULL;
    other[4].status = "retry";
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(
            complete_with(txn, &test_policy, &other[i], BASE_US + 4 * SECOND_US, &outcome), 0);
        if (outcome != GDN_QUEUE_REFUSED)
            fprintf(stderr, "\ndifferent completion %d was taken as %d\n", i, (int)outcome);
        CU_ASSERT_EQUAL(outcome, GDN_QUEUE_REFUSED);
    }

    doc = load_record(txn, "task", id, &record);
    CU_ASSERT_EQUAL(record.version, version);
    CU_ASSERT(has_time(gdn_json_root(doc), "completed_at", BASE_US + 2 * SECOND_US));
    CU_ASSERT(has_string(gdn_json_root(doc), "observation_id", "o-1"));
    gdn_json_free(doc);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), 0);
    check_counts(txn, 0, 0, 1, 0, 0);
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_queue__cancel_takes_a_pending_task_out_of_the_claim_order(void)
{
    static const struct seed seeds[] = {
        {"r", 5, BASE_US}, {"r", 5, BASE_US + 1}, {"r", 5, BASE_US + 2}};
    struct queue_env env;
    char ids[3][GDN_JOURNAL_ID_LEN + 1];
    int64_t now = BASE_US + 30 * SECOND_US;

    env_open_with(&env, seeds, 3, ids);

    gdn_journal_txn_t *txn = begin_write(&env);

    clear_dirty(txn);
    CU_ASSERT_EQUAL(gdn_queue_cancel(txn, &test_policy, ids[1], now), 0);

    const char *order[] = {ids[0], ids[2]};

    check_claim_order(txn, "r", order, 2);
    check_claim_order(txn, NULL, order, 2);
    check_counts(txn, 2, 0, 0, 0, 1);

    gdn_task_t task;
    gdn_json_doc_t *doc = read_task(txn, ids[1], &task);

    CU_ASSERT_EQUAL(task.status, GDN_TASK_CANCELLED);
    CU_ASSERT_EQUAL(task.updated_us, now);
    CU_ASSERT_EQUAL(task.finished, 0);
    gdn_json_free(doc);
    check_marked(txn, "task", ids[1]);
    CU_ASSERT_EQUAL(copy_state(txn, ids[1]), 0);

    /* Cancelled is an end state: no second cancel, no completion, never claimed. */
    CU_ASSERT_EQUAL(gdn_queue_cancel(txn, &test_policy, ids[1], now), GDN_ECONFLICT);
    CU_ASSERT_EQUAL(complete_outcome(txn, ids[1], NULL, "completed", "null", now),
                    GDN_QUEUE_REFUSED);
    CU_ASSERT_EQUAL(status_of(txn, ids[1]), GDN_TASK_CANCELLED);
    check_claim_at(txn, "r", now, ids[0]);
    check_claim_at(txn, "r", now, ids[2]);
    check_claim_at(txn, "r", now, NULL);
    check_counts(txn, 0, 2, 0, 0, 1);
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_queue__cancel_of_a_processing_task_reaches_its_worker(void)
{
    struct queue_env env;
    char ids[2][GDN_JOURNAL_ID_LEN + 1];
    char cancelled[256];
    int64_t t0 = HELD_US;
    int64_t lease_us = test_policy.task_lease_s * SECOND_US;
    gdn_journal_txn_t *txn = open_with_two_held(&env, &test_policy, "", ids);

    CU_ASSERT_EQUAL(gdn_queue_cancel(txn, &test_policy, ids[0], t0 + SECOND_US), 0);
    CU_ASSERT_EQUAL(gdn_queue_cancel(txn, &test_policy, ids[1], t0 + SECOND_US), 0);
    check_counts(txn, 0, 0, 0, 0, 2);

    /* The worker's heartbeats name both, and extend neither lease. */
    CU_ASSERT_EQUAL(heartbeat_cancelled(txn, &test_policy, "w", t0 + 10 * SECOND_US, cancelled,
                                        sizeof(cancelled)),
                    0);

    char expected[128];

    snprintf(expected, sizeof(expected), "[\"%s\",\"%s\"]",
             strcmp(ids[0], ids[1]) < 0 ? ids[0] : ids[1],
             strcmp(ids[0], ids[1]) < 0 ? ids[1] : ids[0]);
    CU_ASSERT_STRING_EQUAL(cancelled, expected);

    gdn_task_t task;
    gdn_json_doc_t *doc = read_task(txn, ids[0], &task);

    CU_ASSERT_EQUAL(task.status, GDN_TASK_CANCELLED);
    CU_ASSERT_EQUAL(task.lease_expires_us, t0 + lease_us);
    gdn_json_free(doc);

    /* The worker's completion of the first is refused; the task stays cancelled. */
    CU_ASSERT_EQUAL(
        complete_outcome(txn, ids[0], "w", "completed", "{\"done\":1}", t0 + 11 * SECOND_US),
        GDN_QUEUE_REFUSED);
    doc = read_task(txn, ids[0], &task);
    CU_ASSERT_EQUAL(task.status, GDN_TASK_CANCELLED);
    CU_ASSERT_EQUAL(task.finished, 0);
    CU_ASSERT_PTR_NULL(task.result);
    gdn_json_free(doc);
    CU_ASSERT_EQUAL(copy_state(txn, ids[0]), 0);
    check_counts(txn, 0, 0, 0, 0, 2);

    /* Having answered, the worker is told only of the other, until its lease would have ended. */
    snprintf(expected, sizeof(expected), "[\"%s\"]", ids[1]);
    CU_ASSERT_EQUAL(heartbeat_cancelled(txn, &test_policy, "w", t0 + 12 * SECOND_US, cancelled,
                                        sizeof(cancelled)),
                    0);
    CU_ASSERT_STRING_EQUAL(cancelled, expected);
    expire_at(txn, &test_policy, t0 + lease_us, NULL);
    CU_ASSERT_EQUAL(status_of(txn, ids[1]), GDN_TASK_CANCELLED);
    CU_ASSERT_EQUAL(heartbeat(txn, &test_policy, "w", t0 + lease_us + SECOND_US), 0);
    check_counts(txn, 0, 0, 0, 0, 2);
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_queue__cancel_of_a_finished_task_conflicts(void)
{
    struct queue_env env;
    char ids[2][GDN_JOURNAL_ID_LEN + 1];

    env_open(&env);

    gdn_journal_txn_t *txn = begin_write(&env);

    create_with(txn, BASE_US, "", ids[0]);
    create_with(txn, BASE_US, "", ids[1]);
    CU_ASSERT_EQUAL(complete_task(txn, ids[0], "completed", BASE_US + SECOND_US), 0);
    CU_ASSERT_EQUAL(complete_task(txn, ids[1], "failed", BASE_US + SECOND_US), 0);
    clear_dirty(txn);
    CU_ASSERT_EQUAL(gdn_queue_cancel(txn, &test_policy, ids[0], BASE_US + 2 * SECOND_US),
                    GDN_ECONFLICT);
    CU_ASSERT_EQUAL(gdn_queue_cancel(txn, &test_policy, ids[1], BASE_US + 2 * SECOND_US),
                    GDN_ECONFLICT);
    CU_ASSERT_EQUAL(status_of(txn, ids[0]), GDN_TASK_COMPLETED);
    CU_ASSERT_EQUAL(status_of(txn, ids[1]), GDN_TASK_FAILED);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), 0);
    check_counts(txn, 0, 0, 1, 1, 0);
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_queue__delayed_task_waits_for_its_run_at(void)
{
    struct queue_env env;
    char delayed[GDN_JOURNAL_ID_LEN + 1];
    char past[GDN_JOURNAL_ID_LEN + 1];
    gdn_queue_wakeups_t wakeups = {0};
    int64_t run_at = BASE_US + 30 * SECOND_US;

    env_open(&env);

    gdn_journal_txn_t *txn = begin_write(&env);
    const struct task_spec later = {
        .role = "r", .priority = 9, .created_us = BASE_US, .extra = ",\"delay_s\":30"};
    const struct task_spec overdue = {.role = "r",
                                      .priority = 1,
                                      .created_us = BASE_US,
                                      .extra = ",\"run_at\":\"2025-12-31T23:59:00\""};

    /* A task due already is claimable at once; a delayed one wakes nobody yet. */
    create_spec(txn, &later, &wakeups, delayed);
    CU_ASSERT_EQUAL(wakeups.count, 0);
    create_spec(txn, &overdue, &wakeups, past);
    CU_ASSERT(woke_role(&wakeups, "r", 1));
    CU_ASSERT_EQUAL(run_at_of(txn, delayed), run_at);
    check_counts(txn, 2, 0, 0, 0, 0);

    const char *order[] = {past};

    check_claim_order(txn, NULL, order, 1);
    commit_ok(txn);

    txn = begin_write(&env);
    wakeups = (gdn_queue_wakeups_t){0};
    CU_ASSERT_EQUAL(expire_at(txn, &test_policy, run_at - 1, &wakeups), 0);
    CU_ASSERT_EQUAL(wakeups.count, 0);
    check_claim_at(txn, "r", run_at - 1, past);
    check_claim_at(txn, "r", run_at - 1, NULL);
    CU_ASSERT_EQUAL(has_pending(txn, ""), 0);

    /* At run_at it joins the claim order, by its priority, and its role's polls are woken. */
    CU_ASSERT_EQUAL(expire_at(txn, &test_policy, run_at, &wakeups), 1);
    CU_ASSERT(woke_role(&wakeups, "r", 1));
    CU_ASSERT_EQUAL(has_pending(txn, "r"), 1);
    check_claim_at(txn, "r", run_at, delayed);
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_queue__cancel_of_a_delayed_task_forgets_its_run_at(void)
{
    struct queue_env env;
    char id[GDN_JOURNAL_ID_LEN + 1];

    env_open(&env);

    gdn_journal_txn_t *txn = begin_write(&env);

    create_with(txn, BASE_US, ",\"delay_s\":30", id);
    CU_ASSERT_EQUAL(gdn_queue_cancel(txn, &test_policy, id, BASE_US + SECOND_US), 0);
    CU_ASSERT_EQUAL(expire_at(txn, &test_policy, BASE_US + 30 * SECOND_US, NULL), 0);
    CU_ASSERT_EQUAL(has_pending(txn, ""), 0);
    CU_ASSERT_EQUAL(status_of(txn, id), GDN_TASK_CANCELLED);
    check_counts(txn, 0, 0, 0, 0, 1);
    gdn_journal_abort(txn);
    env_close(&env);
}

/* Lists tasks and returns the parsed `{"tasks":[...],"next_cursor":...}` (free it). */
static gdn_json_doc_t *list_tasks(gdn_journal_txn_t *txn, const gdn_queue_listing_t *listing)
{
    gdn_buf_t out = GDN_BUF_INIT;
    gdn_json_doc_t *doc = NULL;

    gdn_buf_append_str(&out, "{");
    CU_ASSERT_EQUAL_FATAL(gdn_queue_list(txn, listing, &out), 0);
    gdn_buf_append_str(&out, "}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(out.data);
    CU_ASSERT_EQUAL_FATAL(gdn_json_parse(out.data, out.len, &doc, NULL), 0);
    gdn_buf_free(&out);
    return doc;
}

/*
 * Takes one page: checks its tasks are `ids[0..count)` in that order and copies its next
 * cursor into `cursor` ("" when null).
 */
static void check_page(gdn_journal_txn_t *txn, gdn_queue_listing_t *listing, const char *const *ids,
                       int count, char cursor[GDN_QUEUE_CURSOR_MAX + 1])
{
    gdn_json_doc_t *doc = list_tasks(txn, listing);
    const gdn_json_t *root = gdn_json_root(doc);
    const gdn_json_t *tasks = gdn_json_get(root, "tasks");
    const gdn_json_t *next = gdn_json_get(root, "next_cursor");

    CU_ASSERT_FATAL(tasks != NULL && tasks->type == GDN_JSON_ARRAY);
    CU_ASSERT_EQUAL(tasks->count, (size_t)count);

    const gdn_json_t *item = tasks->first;

    for (int i = 0; i < count && item != NULL; i++, item = item->next) {
        if (!has_string(item, "id", ids[i]))
            fprintf(stderr, "\nlisting position %d is not %s\n", i, ids[i]);
        CU_ASSERT(has_string(item, "id", ids[i]));
    }
    CU_ASSERT_FATAL(next != NULL);
    cursor[0] = '\0';
    if (next->type == GDN_JSON_STRING) {
        CU_ASSERT(next->len > 0 && next->len <= GDN_QUEUE_CURSOR_MAX);
        snprintf(cursor, GDN_QUEUE_CURSOR_MAX + 1, "%.*s", (int)next->len, next->text);
    } else {
        CU_ASSERT_EQUAL(next->type, GDN_JSON_NULL);
    }
    gdn_json_free(doc);
}

/* Points a listing at `cursor`, or at the first page when it is "". */
static void set_cursor(gdn_queue_listing_t *listing, const char *cursor)
{
    listing->cursor = cursor[0] != '\0' ? cursor : NULL;
    listing->cursor_len = strlen(cursor);
}

static void test_queue__listing_pages_the_claim_order_by_role(void)
{
    /* Role r in claim order: 2, 4, 0, 3, 5; role s (1 and 6) is in between. */
    static const struct seed seeds[] = {
        {"r", 5, BASE_US}, {"s", 8, BASE_US},  {"r", 9, BASE_US + 5},  {"r", 5, BASE_US + 1},
        {"r", 7, BASE_US}, {"r", -1, BASE_US}, {"s", 6, BASE_US + 10},
    };
    struct queue_env env;
    char ids[7][GDN_JOURNAL_ID_LEN + 1];
    char cursor[GDN_QUEUE_CURSOR_MAX + 1];
    char claimed[GDN_JOURNAL_ID_LEN + 1];

    env_open_with(&env, seeds, 7, ids);

    gdn_journal_txn_t *txn = begin_write(&env);
    gdn_queue_listing_t listing = {.status = -1, .role = "r", .limit = 2};
    const char *page1[] = {ids[2], ids[4]};
    const char *page2[] = {ids[0], ids[3]};
    const char *page3[] = {ids[5]};

    check_page(txn, &listing, page1, 2, cursor);
    CU_ASSERT_NOT_EQUAL(cursor[0], '\0');

    /* A cursor holds its place even if the task it names leaves the claim order. */
    CU_ASSERT_EQUAL(claim_id(txn, "r", BASE_US, claimed), 0);
    CU_ASSERT_STRING_EQUAL(claimed, ids[2]);
    CU_ASSERT_EQUAL(claim_id(txn, "r", BASE_US, claimed), 0);
    CU_ASSERT_STRING_EQUAL(claimed, ids[4]);
    set_cursor(&listing, cursor);
    check_page(txn, &listing, page2, 2, cursor);
    CU_ASSERT_NOT_EQUAL(cursor[0], '\0');
    set_cursor(&listing, cursor);
    check_page(txn, &listing, page3, 1, cursor);
    CU_ASSERT_STRING_EQUAL(cursor, "");

    /* Without a role the listing is the claim order of all roles. */
    const char *all[] = {ids[1], ids[6], ids[0], ids[3], ids[5]};

    listing = (gdn_queue_listing_t){.status = -1, .limit = 500};
    check_page(txn, &listing, all, 5, cursor);
    CU_ASSERT_STRING_EQUAL(cursor, "");

    /* A page that ends with the last task has no next page. */
    listing = (gdn_queue_listing_t){.status = -1, .role = "s", .limit = 2};
    check_page(txn, &listing, all, 2, cursor);
    CU_ASSERT_STRING_EQUAL(cursor, "");
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_queue__listing_by_status_is_oldest_first_per_project(void)
{
    struct queue_env env;
    char ids[5][GDN_JOURNAL_ID_LEN + 1];
    char cursor[GDN_QUEUE_CURSOR_MAX + 1];
    char claimed[GDN_JOURNAL_ID_LEN + 1];
    static const struct {
        int64_t priority;
        int64_t created_s;
        const char *project;
        const char *role;
    } specs[] = {
        {9, 3, "garden", "r"}, {5, 1, "orchard", "r"}, {1, 2, "garden", "r"},
        {5, 5, "garden", "s"}, {0, 4, "garden", "r"},
    };

    env_open(&env);

    gdn_journal_txn_t *txn = begin_write(&env);

    for (int i = 0; i < 5; i++) {
        const struct task_spec spec = {.role = specs[i].role,
                                       .priority = specs[i].priority,
                                       .created_us = BASE_US + specs[i].created_s * SECOND_US,
                                       .project_id = specs[i].project};

        create_spec(txn, &spec, NULL, ids[i]);
    }

    /* Task 0 (priority 9) is claimed and listed as processing from then on. */
    CU_ASSERT_EQUAL(claim_id(txn, "", BASE_US + 10 * SECOND_US, claimed), 0);
    CU_ASSERT_STRING_EQUAL(claimed, ids[0]);

    gdn_queue_listing_t listing = {.status = GDN_TASK_PENDING, .limit = 10};
    const char *pending_all[] = {ids[1], ids[2], ids[4], ids[3]};
    const char *pending_garden[] = {ids[2], ids[4], ids[3]};

    check_page(txn, &listing, pending_all, 4, cursor);
    CU_ASSERT_STRING_EQUAL(cursor, "");

    /* Paged one at a time within a project. */
    listing.project_id = "garden";
    listing.project_id_len = 6;
    listing.limit = 1;
    for (int i = 0; i < 3; i++) {
        check_page(txn, &listing, pending_garden + i, 1, cursor);
        if (i < 2)
            CU_ASSERT_NOT_EQUAL(cursor[0], '\0');
        set_cursor(&listing, cursor);
    }
    CU_ASSERT_STRING_EQUAL(cursor, "");

    /* Project and role together; a project prefix is not the project. */
    const char *garden_r[] = {ids[2], ids[4]};

    listing = (gdn_queue_listing_t){.status = GDN_TASK_PENDING,
                                    .role = "r",
                                    .project_id = "garden",
                                    .project_id_len = 6,
                                    .limit = 10};
    check_page(txn, &listing, garden_r, 2, cursor);
    listing = (gdn_queue_listing_t){
        .status = GDN_TASK_PENDING, .project_id = "gard", .project_id_len = 4, .limit = 10};
    check_page(txn, &listing, NULL, 0, cursor);

    /* Other statuses list their own tasks only. */
    const char *processing[] = {ids[0]};

    listing = (gdn_queue_listing_t){.status = GDN_TASK_PROCESSING, .limit = 10};
    check_page(txn, &listing, processing, 1, cursor);
    listing.status = GDN_TASK_COMPLETED;
    check_page(txn, &listing, NULL, 0, cursor);
    CU_ASSERT_STRING_EQUAL(cursor, "");
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_queue__listing_refuses_a_malformed_cursor(void)
{
    struct queue_env env;
    char id[GDN_JOURNAL_ID_LEN + 1];
    char long_cursor[GDN_QUEUE_CURSOR_MAX + 2];
    static const char *const claim_cursors[] = {
        "garbage",
        "5.123",
        "5.123.not-an-id",
        "5.123.0f8fad5b-d9cb-469f-a165-70867728950",
        "123.0f8fad5b-d9cb-469f-a165-70867728950e",
        "x.1.0f8fad5b-d9cb-469f-a165-70867728950e",
    };
    static const char *const status_cursors[] = {
        "garbage",
        "123",
        "123.not-an-id",
        "x.0f8fad5b-d9cb-469f-a165-70867728950e",
    };

    env_open(&env);

    gdn_journal_txn_t *txn = begin_write(&env);

    create_task(txn, "r", 5, BASE_US, id);

    gdn_queue_listing_t listing = {.status = -1, .limit = 10};
    gdn_buf_t out = GDN_BUF_INIT;

    for (size_t i = 0; i < sizeof(claim_cursors) / sizeof(claim_cursors[0]); i++) {
        set_cursor(&listing, claim_cursors[i]);
        CU_ASSERT_EQUAL(gdn_queue_list(txn, &listing, &out), GDN_EINVALID);
        gdn_buf_free(&out);
    }
    listing.status = GDN_TASK_PENDING;
    for (size_t i = 0; i < sizeof(status_cursors) / sizeof(status_cursors[0]); i++) {
        set_cursor(&listing, status_cursors[i]);
        CU_ASSERT_EQUAL(gdn_queue_list(txn, &listing, &out), GDN_EINVALID);
        gdn_buf_free(&out);
    }

    /* An empty or over-long cursor is malformed too. */
    listing.cursor = "";
    listing.cursor_len = 0;
    CU_ASSERT_EQUAL(gdn_queue_list(txn, &listing, &out), GDN_EINVALID);
    gdn_buf_free(&out);
    memset(long_cursor, '1', sizeof(long_cursor) - 1);
    long_cursor[sizeof(long_cursor) - 1] = '\0';
    set_cursor(&listing, long_cursor);
    CU_ASSERT_EQUAL(gdn_queue_list(txn, &listing, &out), GDN_EINVALID);
    gdn_buf_free(&out);

    /* A well-formed cursor naming no task is fine: the listing goes on after its place. */
    const char *listed[] = {id};
    char cursor[GDN_QUEUE_CURSOR_MAX + 1];

    listing = (gdn_queue_listing_t){.status = GDN_TASK_PENDING, .limit = 10};
    set_cursor(&listing, "0.0f8fad5b-d9cb-469f-a165-70867728950e");
    check_page(txn, &listing, listed, 1, cursor);
    gdn_journal_abort(txn);
    env_close(&env);
}

/* The time the tasks of open_with_ended_tasks end. */
#define ENDED_US (BASE_US + SECOND_US)

/*
 * Opens a journal under `policy` (whose completed copies are kept 100 s) holding four tasks:
 * ids[0] completed, ids[1] failed and ids[2] cancelled at ENDED_US, and ids[3] still pending.
 */
static void open_with_ended_tasks(struct queue_env *env, gdn_queue_policy_t *policy,
                                  int64_t retention_s, char ids[4][GDN_JOURNAL_ID_LEN + 1])
{
    const struct completion done = {.id = ids[0], .status = "completed", .result = "1"};
    const struct completion failed = {.id = ids[1], .status = "failed", .result = "2"};
    gdn_queue_completion_t outcome;

    *policy = test_policy;
    policy->completed_ttl_s = 100;
    policy->task_retention_s = retention_s;
    env_open(env);

    gdn_journal_txn_t *txn = begin_write(env);

    for (int i = 0; i < 4; i++)
        create_with(txn, BASE_US + i, "", ids[i]);
    CU_ASSERT_EQUAL(complete_with(txn, policy, &done, ENDED_US, &outcome), 0);
    CU_ASSERT_EQUAL(complete_with(txn, policy, &failed, ENDED_US, &outcome), 0);
    CU_ASSERT_EQUAL(gdn_queue_cancel(txn, policy, ids[2], ENDED_US), 0);
    check_counts(txn, 1, 0, 1, 1, 1);
    commit_ok(txn);
}

static void test_queue__finished_records_expire_after_their_time_to_live(void)
{
    struct queue_env env;
    gdn_queue_policy_t policy;
    char ids[4][GDN_JOURNAL_ID_LEN + 1];

    open_with_ended_tasks(&env, &policy, 1000, ids);

    gdn_journal_txn_t *txn = begin_write(&env);

    clear_dirty(txn);
    CU_ASSERT_EQUAL(expire_at(txn, &policy, ENDED_US + 100 * SECOND_US - 1, NULL), 0);

    /* The completed copies go first, marked for deletion from the bucket; the tasks stay. */
    CU_ASSERT_EQUAL(expire_at(txn, &policy, ENDED_US + 100 * SECOND_US, NULL), 2);
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(copy_state(txn, ids[i]), 2);
        CU_ASSERT(record_exists(txn, "task", ids[i]));
    }
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), 2);
    check_counts(txn, 1, 0, 1, 1, 1);
    commit_ok(txn);

    /* Then the finished and cancelled tasks, leaving the counters and listings with them. */
    txn = begin_write(&env);
    clear_dirty(txn);
    CU_ASSERT_EQUAL(expire_at(txn, &policy, ENDED_US + 1000 * SECOND_US - 1, NULL), 0);
    CU_ASSERT_EQUAL(expire_at(txn, &policy, ENDED_US + 1000 * SECOND_US, NULL), 3);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_FALSE(record_exists(txn, "task", ids[i]));
        CU_ASSERT_EQUAL(dirty_state(txn, "task", ids[i], NULL), 2);
    }
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), 3);
    check_counts(txn, 1, 0, 0, 0, 0);

    char cursor[GDN_QUEUE_CURSOR_MAX + 1];
    gdn_queue_listing_t listing = {.status = GDN_TASK_COMPLETED, .limit = 10};

    for (int status = GDN_TASK_COMPLETED; status <= GDN_TASK_CANCELLED; status++) {
        listing.status = status;
        check_page(txn, &listing, NULL, 0, cursor);
    }
    CU_ASSERT_EQUAL(complete_task(txn, ids[0], "completed", ENDED_US), GDN_ENOTFOUND);
    CU_ASSERT_EQUAL(gdn_queue_cancel(txn, &policy, ids[2], ENDED_US), GDN_ENOTFOUND);

    /* The pending task was never due. */
    CU_ASSERT(record_exists(txn, "task", ids[3]));
    check_claim_at(txn, "r", ENDED_US, ids[3]);
    commit_ok(txn);
    env_close(&env);
}

static void test_queue__retention_of_zero_keeps_finished_tasks(void)
{
    struct queue_env env;
    gdn_queue_policy_t policy;
    char ids[4][GDN_JOURNAL_ID_LEN + 1];

    open_with_ended_tasks(&env, &policy, 0, ids);

    gdn_journal_txn_t *txn = begin_write(&env);

    for (int i = 0; i < 3; i++) {
        gdn_journal_record_t record;
        gdn_json_doc_t *doc = load_record(txn, "task", ids[i], &record);

        CU_ASSERT_EQUAL(record.expires_us, 0);
        gdn_json_free(doc);
    }

    /* Ten years on only the completed copies have gone. */
    CU_ASSERT_EQUAL(expire_at(txn, &policy, ENDED_US + 3650 * (int64_t)DAY_S * SECOND_US, NULL), 2);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(copy_state(txn, ids[i]), i < 2 ? 2 : 0);
        CU_ASSERT(record_exists(txn, "task", ids[i]));
    }
    check_counts(txn, 1, 0, 1, 1, 1);
    gdn_journal_abort(txn);
    env_close(&env);
}

/* Creates `made` under an Idempotency-Key whose digest is `digest_byte` repeated. */
static int create_keyed(gdn_journal_txn_t *txn, const struct new_task *made, const char *key,
                        unsigned char digest_byte, int64_t now_us,
                        char existing[GDN_JOURNAL_ID_LEN + 1], gdn_queue_wakeups_t *wakeups)
{
    gdn_queue_idempotency_t idempotency = {.key = key, .key_len = strlen(key)};

    memset(idempotency.digest, digest_byte, sizeof(idempotency.digest));
    return gdn_queue_create(txn, &test_policy, &made->task, made->json, made->json_len,
                            &idempotency, now_us, existing, wakeups);
}

static void test_queue__idempotency_key_returns_the_first_task(void)
{
    struct queue_env env;
    struct new_task made[5];
    char existing[GDN_JOURNAL_ID_LEN + 1];
    gdn_queue_wakeups_t wakeups = {0};
    int64_t t0 = BASE_US + SECOND_US;
    int64_t ttl_us = test_policy.idempotency_ttl_s * SECOND_US;

    env_open(&env);
    for (int i = 0; i < 5; i++)
        make_task(&made[i], "r", 5, BASE_US + i);

    gdn_journal_txn_t *txn = begin_write(&env);

    CU_ASSERT_EQUAL(create_keyed(txn, &made[0], "order-17", 0x11, t0, existing, &wakeups), 0);
    CU_ASSERT_STRING_EQUAL(existing, "");
    CU_ASSERT(woke_role(&wakeups, "r", 1));
    commit_ok(txn);

    /* The same key with the same body answers with the first task and creates nothing. */
    txn = begin_write(&env);
    clear_dirty(txn);
    wakeups = (gdn_queue_wakeups_t){0};
    CU_ASSERT_EQUAL(
        create_keyed(txn, &made[1], "order-17", 0x11, t0 + 10 * SECOND_US, existing, &wakeups), 0);
    CU_ASSERT_STRING_EQUAL(existing, made[0].task.id);
    CU_ASSERT_FALSE(record_exists(txn, "task", made[1].task.id));
    CU_ASSERT_EQUAL(wakeups.count, 0);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), 0);
    check_counts(txn, 1, 0, 0, 0, 0);

    /* With another body it is a conflict, and creates nothing either. */
    CU_ASSERT_EQUAL(
        create_keyed(txn, &made[2], "order-17", 0x22, t0 + 20 * SECOND_US, existing, NULL),
        GDN_ECONFLICT);
    CU_ASSERT_FALSE(record_exists(txn, "task", made[2].task.id));
    check_counts(txn, 1, 0, 0, 0, 0);

    /* Another key is another request. */
    CU_ASSERT_EQUAL(
        create_keyed(txn, &made[2], "order-18", 0x11, t0 + 20 * SECOND_US, existing, NULL), 0);
    CU_ASSERT_STRING_EQUAL(existing, "");
    CU_ASSERT(record_exists(txn, "task", made[2].task.id));
    commit_ok(txn);

    /* After its time to live the key is forgotten, and may name a new request. */
    txn = begin_write(&env);
    CU_ASSERT_EQUAL(expire_at(txn, &test_policy, t0 + ttl_us - 1, NULL), 0);
    CU_ASSERT_EQUAL(expire_at(txn, &test_policy, t0 + ttl_us, NULL), 1);

    const void *value = NULL;
    size_t value_len = 0;

    CU_ASSERT_EQUAL(
        gdn_journal_index_get(txn, GDN_JOURNAL_IDEMPOTENCY, "order-17", 8, &value, &value_len),
        GDN_ENOTFOUND);
    CU_ASSERT_EQUAL(
        gdn_journal_index_get(txn, GDN_JOURNAL_IDEMPOTENCY, "order-18", 8, &value, &value_len), 0);
    CU_ASSERT_EQUAL(create_keyed(txn, &made[3], "order-17", 0x22, t0 + ttl_us, existing, NULL), 0);
    CU_ASSERT_STRING_EQUAL(existing, "");
    CU_ASSERT(record_exists(txn, "task", made[3].task.id));
    CU_ASSERT_EQUAL(
        create_keyed(txn, &made[4], "order-17", 0x22, t0 + ttl_us + SECOND_US, existing, NULL), 0);
    CU_ASSERT_STRING_EQUAL(existing, made[3].task.id);
    CU_ASSERT_FALSE(record_exists(txn, "task", made[4].task.id));
    check_counts(txn, 3, 0, 0, 0, 0);
    commit_ok(txn);
    for (int i = 0; i < 5; i++)
        free_task(&made[i]);
    env_close(&env);
}

/* Renders `task` and restores it under `task:ID`, checking the kind restore reports. */
static void restore_task(gdn_journal_txn_t *txn, const gdn_task_t *task, gdn_queue_kind_t expected)
{
    char key[GDN_JOURNAL_KEY_MAX + 1];
    size_t json_len = 0;
    char *json = gdn_task_render(task, &json_len);
    gdn_queue_kind_t kind = (gdn_queue_kind_t)-1;

    gdn_record_key(key, "task", task->id, GDN_JOURNAL_ID_LEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(json);
    CU_ASSERT_EQUAL(gdn_queue_restore(txn, &test_policy, key, json, json_len, &kind), 0);
    CU_ASSERT_EQUAL(kind, expected);
    free(json);
}

/* Makes a task held by `worker` since BASE_US, on its `attempts`-th claim. */
static void make_held(struct new_task *out, int64_t priority, const char *worker, int64_t attempts,
                      int64_t lease_expires_us)
{
    make_task(out, "r", priority, BASE_US);
    out->task.status = GDN_TASK_PROCESSING;
    out->task.assigned_to = worker;
    out->task.assigned_to_len = strlen(worker);
    out->task.assigned_us = BASE_US;
    out->task.attempts = attempts;
    out->task.lease_expires_us = lease_expires_us;
}

static void test_queue__restore_rebuilds_the_indexes_from_tasks(void)
{
    struct queue_env env;
    struct new_task pending[3];
    struct new_task held[2];
    struct new_task done;
    int64_t lease_us = test_policy.task_lease_s * SECOND_US;
    int64_t lease_end = BASE_US + 50 * SECOND_US;
    int64_t run_at = BASE_US + 100 * SECOND_US;
    char cancelled[64];

    env_open(&env);
    make_task(&pending[0], "r", 5, BASE_US);
    make_task(&pending[1], "r", 9, BASE_US + 1);
    pending[1].task.run_at_us = run_at;
    make_task(&pending[2], "r", 1, BASE_US + 2);
    make_held(&held[0], 7, "w", 1, lease_end);
    make_held(&held[1], 6, "v", 2, lease_end);
    make_task(&done, "r", 5, BASE_US);
    done.task.status = GDN_TASK_COMPLETED;
    done.task.finished = 1;
    done.task.attempts = 1;
    done.task.completed_us = BASE_US + 5 * SECOND_US;
    done.task.updated_us = BASE_US + 5 * SECOND_US;

    gdn_journal_txn_t *txn = begin_write(&env);

    for (int i = 0; i < 3; i++)
        restore_task(txn, &pending[i].task, GDN_QUEUE_KIND_PENDING_TASK);
    for (int i = 0; i < 2; i++)
        restore_task(txn, &held[i].task, GDN_QUEUE_KIND_TASK);
    restore_task(txn, &done.task, GDN_QUEUE_KIND_TASK);

    /* The finished task's completed copy, and the worker that holds held[0]. */
    char key[GDN_JOURNAL_KEY_MAX + 1];
    size_t json_len = 0;
    char *json = gdn_task_render(&done.task, &json_len);
    gdn_queue_kind_t kind;

    int64_t records = gdn_journal_record_count(txn);

    gdn_record_key(key, "completed", done.task.id, GDN_JOURNAL_ID_LEN);
    CU_ASSERT_EQUAL(gdn_queue_restore(txn, &test_policy, key, json, json_len, &kind), 0);
    CU_ASSERT_EQUAL(kind, GDN_QUEUE_KIND_COMPLETED);
    CU_ASSERT_EQUAL(gdn_journal_record_count(txn), records);
    free(json);

    const gdn_worker_t worker = {.worker_id = "w",
                                 .worker_id_len = 1,
                                 .registered_us = BASE_US,
                                 .last_heartbeat_us = BASE_US};

    json = gdn_worker_render(&worker, &json_len);
    CU_ASSERT_EQUAL(gdn_queue_restore(txn, &test_policy, "worker:w", json, json_len, &kind), 0);
    CU_ASSERT_EQUAL(kind, GDN_QUEUE_KIND_WORKER);
    free(json);

    /* Records that are not this server's are refused and leave nothing behind. */
    records = gdn_journal_record_count(txn);

    CU_ASSERT_EQUAL(gdn_queue_restore(txn, &test_policy, "junk:1", "{}", 2, &kind), GDN_EINVALID);
    CU_ASSERT_EQUAL(gdn_queue_restore(txn, &test_policy, "task:x", "{}", 2, &kind), GDN_EINVALID);
    CU_ASSERT_EQUAL(gdn_journal_record_count(txn), records);
    commit_ok(txn);

    txn = begin_write(&env);

    /* Nothing restored is marked for upload: it came from the bucket. */
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), 0);
    check_counts(txn, 3, 2, 1, 0, 0);

    /* The pending tasks are back in claim order, the delayed one waiting for its run_at. */
    const char *order[] = {pending[0].task.id, pending[2].task.id};

    check_claim_order(txn, "r", order, 2);

    /* held[0]'s worker extends its lease; held[1]'s lease lapses at its restored deadline. */
    CU_ASSERT_EQUAL(heartbeat_cancelled(txn, &test_policy, "w", BASE_US + 20 * SECOND_US, cancelled,
                                        sizeof(cancelled)),
                    0);
    CU_ASSERT_STRING_EQUAL(cancelled, "[]");

    gdn_task_t task;
    gdn_json_doc_t *doc = read_task(txn, held[0].task.id, &task);

    CU_ASSERT_EQUAL(task.lease_expires_us, BASE_US + 20 * SECOND_US + lease_us);
    gdn_json_free(doc);
    CU_ASSERT_EQUAL(expire_at(txn, &test_policy, lease_end - 1, NULL), 0);
    CU_ASSERT_EQUAL(expire_at(txn, &test_policy, lease_end, NULL), 1);
    CU_ASSERT_EQUAL(status_of(txn, held[0].task.id), GDN_TASK_PROCESSING);
    doc = read_task(txn, held[1].task.id, &task);
    CU_ASSERT_EQUAL(task.status, GDN_TASK_PENDING);
    CU_ASSERT_EQUAL(task.attempts, 2);
    gdn_json_free(doc);
    CU_ASSERT_EQUAL(expire_at(txn, &test_policy, BASE_US + 20 * SECOND_US + lease_us, NULL), 1);
    CU_ASSERT_EQUAL(status_of(txn, held[0].task.id), GDN_TASK_PENDING);
    CU_ASSERT_EQUAL(expire_at(txn, &test_policy, run_at, NULL), 1);

    const char *all[] = {pending[1].task.id, held[0].task.id, held[1].task.id, pending[0].task.id,
                         pending[2].task.id};

    check_claim_order(txn, "r", all, 5);
    check_counts(txn, 5, 0, 1, 0, 0);

    /* The finished task and its copy keep their times to live from their own times: the copy,
     * which is in the bucket but not in the journal, is deleted from it when its time ends. */
    gdn_journal_record_t record;

    doc = load_record(txn, "task", done.task.id, &record);
    CU_ASSERT_EQUAL(record.expires_us,
                    done.task.updated_us + test_policy.task_retention_s * SECOND_US);
    gdn_json_free(doc);
    CU_ASSERT_EQUAL(copy_state(txn, done.task.id), 0);
    check_copy_expires(txn, &test_policy, done.task.id,
                       done.task.completed_us + test_policy.completed_ttl_s * SECOND_US);
    CU_ASSERT(record_exists(txn, "task", done.task.id));
    gdn_journal_abort(txn);

    for (int i = 0; i < 3; i++)
        free_task(&pending[i]);
    for (int i = 0; i < 2; i++)
        free_task(&held[i]);
    free_task(&done);
    env_close(&env);
}

static void test_queue__expire_handles_a_bounded_number_at_a_time(void)
{
    enum { DUE = GDN_QUEUE_WAKE_MAX + 3 };
    struct queue_env env;
    char id[GDN_JOURNAL_ID_LEN + 1];
    int64_t due = BASE_US + 11 * SECOND_US;
    gdn_queue_wakeups_t wakeups = {0};
    int more = -1;

    env_open(&env);

    gdn_journal_txn_t *txn = begin_write(&env);

    for (int i = 0; i < DUE; i++)
        create_with(txn, BASE_US + i, ",\"delay_s\":10", id);
    CU_ASSERT_EQUAL(gdn_queue_expire(txn, &test_policy, due, 0, &wakeups, &more), 0);
    CU_ASSERT_EQUAL(more, 0);

    /* Two at a time: the pass says more were due. */
    CU_ASSERT_EQUAL(gdn_queue_expire(txn, &test_policy, due, 2, &wakeups, &more), 2);
    CU_ASSERT_EQUAL(more, 1);
    CU_ASSERT(woke_role(&wakeups, "r", 2));

    /* The rest in one pass: more tasks woke than the wakeups can name, so all are woken. */
    CU_ASSERT_EQUAL(gdn_queue_expire(txn, &test_policy, due, DUE, &wakeups, &more), DUE - 2);
    CU_ASSERT_EQUAL(more, 0);
    CU_ASSERT_EQUAL(wakeups.count, GDN_QUEUE_WAKE_MAX);
    CU_ASSERT_EQUAL(wakeups.all, 1);
    CU_ASSERT_EQUAL(gdn_queue_expire(txn, &test_policy, due, DUE, &wakeups, &more), 0);

    gdn_journal_pending_t entries[DUE + 1];

    CU_ASSERT_EQUAL(gdn_journal_pending_list(txn, NULL, NULL, entries, DUE + 1), DUE);
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_queue__policy_comes_from_the_configuration(void)
{
    gdn_config_t config;
    gdn_queue_policy_t policy;
    static const char *const settings[][2] = {
        {"task_lease_s", "45"},      {"worker_ttl_s", "90"},      {"retry_base_s", "3"},
        {"retry_max_s", "70"},       {"completed_ttl_s", "1200"}, {"task_retention_s", "0"},
        {"idempotency_ttl_s", "77"},
    };

    CU_ASSERT_EQUAL_FATAL(gdn_config_init(&config), 0);
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
        CU_ASSERT_EQUAL(gdn_config_set(&config, settings[i][0], settings[i][1], NULL, 0), 0);
    memset(&policy, 0xff, sizeof(policy));
    gdn_queue_policy_init(&policy, &config);
    CU_ASSERT_EQUAL(policy.task_lease_s, 45);
    CU_ASSERT_EQUAL(policy.worker_ttl_s, 90);
    CU_ASSERT_EQUAL(policy.retry_base_s, 3);
    CU_ASSERT_EQUAL(policy.retry_max_s, 70);
    CU_ASSERT_EQUAL(policy.completed_ttl_s, 1200);
    CU_ASSERT_EQUAL(policy.task_retention_s, 0);
    CU_ASSERT_EQUAL(policy.idempotency_ttl_s, 77);
    gdn_config_free(&config);
}

static CU_TestInfo queue_tests[] = {
    {"claims follow priority, then age, then id", test_queue__claim_follows_priority_age_and_id},
    {"a claim over several roles takes the best head among them",
     test_queue__multi_role_claim_takes_best_head},
    {"a claim with no role takes the head of all roles",
     test_queue__no_role_claim_takes_global_head},
    {"each of 1000 tasks of mixed roles is claimed exactly once, in claim order",
     test_queue__each_task_is_claimed_once},
    {"a claimed task is processing, assigned to the worker, on its first attempt and leased",
     test_queue__claimed_task_shows_its_assignment},
    {"a claim is leased for the task's own lease when it names one",
     test_queue__claim_leases_for_the_task_s_own_lease},
    {"complete stores the result, the times and a completed copy with their times to live",
     test_queue__complete_finishes_a_claimed_task},
    {"completing a pending task takes it off the pending index",
     test_queue__complete_takes_a_pending_task_off_the_index},
    {"completing or cancelling an unknown task is not found and changes nothing",
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
    {"a lapsed lease puts the task back in its place in the claim order and wakes its role",
     test_queue__lapsed_lease_puts_the_task_back_in_its_place},
    {"a lease lapse that uses the last attempt fails the task with an error and a copy",
     test_queue__lease_lapses_past_max_attempts_fail_the_task},
    {"a heartbeat extends the leases of the tasks the worker holds, and only those",
     test_queue__heartbeat_extends_the_leases_a_worker_holds},
    {"a silent worker's expiry puts the tasks it held back",
     test_queue__silent_worker_releases_its_tasks},
    {"a silent worker's expiry leaves nothing held under its id",
     test_queue__silent_worker_leaves_nothing_held},
    {"a silent worker with a 198-byte UTF-8 id fails its task's last attempt, id whole",
     test_queue__a_silent_worker_with_a_long_utf8_id_fails_its_task},
    {"a retry puts the task back after a backoff that doubles, until attempts run out",
     test_queue__retry_puts_the_task_back_after_a_backoff},
    {"the retry backoff stops growing at retry_max_s", test_queue__retry_backoff_is_capped},
    {"a completion by a worker that lost the task is late and kept aside",
     test_queue__completion_by_a_worker_that_lost_the_task_is_late},
    {"completing a finished task again is repeated if the same, refused if not",
     test_queue__completing_twice_is_repeated_or_refused},
    {"cancelling a pending task takes it out of the claim order",
     test_queue__cancel_takes_a_pending_task_out_of_the_claim_order},
    {"cancelling a processing task reaches its worker, whose completion is refused",
     test_queue__cancel_of_a_processing_task_reaches_its_worker},
    {"cancelling a finished task conflicts", test_queue__cancel_of_a_finished_task_conflicts},
    {"a delayed task joins the claim order at its run_at, not before",
     test_queue__delayed_task_waits_for_its_run_at},
    {"cancelling a delayed task forgets its run_at",
     test_queue__cancel_of_a_delayed_task_forgets_its_run_at},
    {"finished tasks and their copies expire after their times to live",
     test_queue__finished_records_expire_after_their_time_to_live},
    {"a task retention of 0 keeps finished tasks for good",
     test_queue__retention_of_zero_keeps_finished_tasks},
    {"an Idempotency-Key returns the first task until it is forgotten",
     test_queue__idempotency_key_returns_the_first_task},
    {"the listing pages the claim order of a role with cursors",
     test_queue__listing_pages_the_claim_order_by_role},
    {"the listing by status is oldest first and filters by project and role",
     test_queue__listing_by_status_is_oldest_first_per_project},
    {"the listing refuses a malformed cursor", test_queue__listing_refuses_a_malformed_cursor},
    {"restore rebuilds the claim order, leases, held tasks and counters from the records",
     test_queue__restore_rebuilds_the_indexes_from_tasks},
    {"an expiry pass handles at most its limit and says when more were due",
     test_queue__expire_handles_a_bounded_number_at_a_time},
    {"the queue's time rules come from the configuration",
     test_queue__policy_comes_from_the_configuration},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo gdn_test_suites[] = {
    {.pName = "queue", .pTests = queue_tests},
    CU_SUITE_INFO_NULL,
};
