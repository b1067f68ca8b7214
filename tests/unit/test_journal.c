/*
 * Unit tests of the LMDB journal on real files: persistence across a reopen, the claim order of
 * the pending indexes, the change log, the secondary indexes, aborted transactions, a full map,
 * refused directories and files, snapshot reads and prefix scans. Each test works in a fresh
 * temporary directory.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <lmdb.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cunit_main.h"
#include "gdn/clock.h"
#include "gdn/error.h"
#include "gdn/journal.h"

/* A map large enough for every test but the one that fills it. */
#define TEST_MAP_MB 16
#define TEST_READERS 8

static gdn_journal_t *open_journal(const char *dir, size_t map_mb)
{
    gdn_journal_t *journal = NULL;
    int rc = gdn_journal_open(&journal, dir, map_mb, TEST_READERS);

    if (rc != 0)
        fprintf(stderr, "\ncannot open journal in %s: %d %s\n", dir, rc, gdn_journal_last_error());
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(journal);
    return journal;
}

/* A journal in a fresh directory of its own. */
struct journal_env {
    char dir[PATH_MAX];
    gdn_journal_t *journal;
};

static gdn_journal_t *env_open(struct journal_env *env, size_t map_mb)
{
    gdn_test_tmpdir(env->dir, sizeof(env->dir));
    env->journal = open_journal(env->dir, map_mb);
    return env->journal;
}

/* Closes the journal and opens it again, as a restart of the server does. */
static gdn_journal_t *env_reopen(struct journal_env *env, size_t map_mb)
{
    gdn_journal_close(env->journal);
    env->journal = NULL;
    env->journal = open_journal(env->dir, map_mb);
    return env->journal;
}

static void env_close(struct journal_env *env)
{
    gdn_journal_close(env->journal);
    gdn_test_rmdir(env->dir);
}

static gdn_journal_txn_t *begin_write(gdn_journal_t *journal)
{
    gdn_journal_txn_t *txn = NULL;

    CU_ASSERT_EQUAL_FATAL(gdn_journal_write_begin(journal, &txn), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(txn);
    return txn;
}

static void commit_ok(gdn_journal_txn_t *txn)
{
    int rc = gdn_journal_commit(txn);

    if (rc != 0)
        fprintf(stderr, "\ncommit failed: %d %s\n", rc, gdn_journal_last_error());
    CU_ASSERT_EQUAL(rc, 0);
}

/* Stores a record and returns its new version. */
static uint64_t put_text(gdn_journal_txn_t *txn, const char *key, const char *json,
                         int64_t expires_us, unsigned flags)
{
    uint64_t version = 0;

    CU_ASSERT_EQUAL(
        gdn_journal_put(txn, key, strlen(key), json, strlen(json), expires_us, flags, &version), 0);
    CU_ASSERT(version != 0);
    return version;
}

/* Checks that a record holds exactly `json`, `version` and `expires_us`. */
static void check_record(gdn_journal_txn_t *txn, const char *key, const char *json,
                         uint64_t version, int64_t expires_us)
{
    gdn_journal_record_t record;
    int rc = gdn_journal_get(txn, key, strlen(key), &record);

    CU_ASSERT_EQUAL(rc, 0);
    if (rc != 0)
        return;
    CU_ASSERT_EQUAL(record.version, version);
    CU_ASSERT_EQUAL(record.expires_us, expires_us);
    CU_ASSERT_EQUAL(record.json_len, strlen(json));
    CU_ASSERT(record.json_len == strlen(json) && memcmp(record.json, json, record.json_len) == 0);
}

static void check_absent(gdn_journal_txn_t *txn, const char *key)
{
    gdn_journal_record_t record;

    CU_ASSERT_EQUAL(gdn_journal_get(txn, key, strlen(key), &record), GDN_ENOTFOUND);
}

static int64_t read_counter(gdn_journal_txn_t *txn, const char *name)
{
    int64_t value = -12345;

    CU_ASSERT_EQUAL(gdn_journal_counter_get(txn, name, &value), 0);
    return value;
}

/* One change the log is expected to hold. */
struct change {
    const char *key;
    uint64_t version;
    int deleted;
};

/* Room for the longest log a test writes, plus one so that an extra entry shows. */
#define LOG_MAX 32

/*
 * Checks that the change log holds exactly `want`, oldest first, and that its count agrees.
 */
static void check_log(gdn_journal_txn_t *txn, const struct change *want, int want_count)
{
    gdn_journal_dirty_t got[LOG_MAX];
    int count = gdn_journal_dirty_list(txn, 0, got, LOG_MAX);

    CU_ASSERT_EQUAL(count, want_count);
    for (int i = 0; i < count && i < want_count; i++) {
        int same = strcmp(got[i].key, want[i].key) == 0 && got[i].version == want[i].version &&
                   got[i].deleted == want[i].deleted;

        if (!same)
            fprintf(stderr, "\nchange %d: got %s@%llu/%d, wanted %s@%llu/%d\n", i, got[i].key,
                    (unsigned long long)got[i].version, got[i].deleted, want[i].key,
                    (unsigned long long)want[i].version, want[i].deleted);
        CU_ASSERT(same);
    }
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), want_count);
}

/* A well-formed id that sorts by `n`: ids compare as text, and the digits are zero-padded. */
static void make_id(char out[GDN_JOURNAL_ID_LEN + 1], unsigned n)
{
    snprintf(out, GDN_JOURNAL_ID_LEN + 1, "00000000-0000-4000-8000-%012u", n);
}

static gdn_journal_pending_t make_entry(const char *role, int64_t priority, int64_t created_us,
                                        unsigned n)
{
    gdn_journal_pending_t entry;

    memset(&entry, 0, sizeof(entry));
    entry.priority = priority;
    entry.created_us = created_us;
    make_id(entry.id, n);
    snprintf(entry.role, sizeof(entry.role), "%s", role);
    return entry;
}

/*
 * The pending entries of the ordering tests, in insertion order, and their claim order by
 * number. Roles "ab" and "abc" share a prefix; priorities and created times include both ends
 * of the 64-bit range; entries 3, 4 and 10 tie on priority and age so their ids decide.
 */
static const struct {
    const char *role;
    int64_t priority;
    int64_t created_us;
    unsigned n;
} order_fixture[] = {
    {"abc", INT64_MIN, 0, 1}, {"ab", INT64_MAX, 100, 2}, {"ab", 0, -5, 3},
    {"abc", 0, -5, 4},        {"ab", 0, INT64_MIN, 5},   {"b", -1, 0, 6},
    {"ab", INT64_MAX, 99, 7}, {"abc", 5, INT64_MAX, 8},  {"b", INT64_MIN, -1, 9},
    {"ab", 0, -5, 10},
};

#define ORDER_COUNT ((int)(sizeof(order_fixture) / sizeof(order_fixture[0])))

static const unsigned order_all[] = {7, 2, 8, 5, 3, 4, 10, 6, 9, 1};
static const unsigned order_ab[] = {7, 2, 5, 3, 10};
static const unsigned order_abc[] = {8, 4, 1};
static const unsigned order_b[] = {6, 9};

static gdn_journal_pending_t fixture_entry(unsigned n)
{
    for (int i = 0; i < ORDER_COUNT; i++) {
        if (order_fixture[i].n == n)
            return make_entry(order_fixture[i].role, order_fixture[i].priority,
                              order_fixture[i].created_us, n);
    }
    CU_FAIL("no such fixture entry");
    return make_entry("none", 0, 0, n);
}

static void add_order_fixture(gdn_journal_t *journal)
{
    gdn_journal_txn_t *txn = begin_write(journal);

    for (int i = 0; i < ORDER_COUNT; i++) {
        gdn_journal_pending_t entry = fixture_entry(order_fixture[i].n);

        CU_ASSERT_EQUAL(gdn_journal_pending_add(txn, &entry), 0);
    }
    commit_ok(txn);
}

/* Opens a journal holding the ordering fixture and begins a write transaction on it. */
static gdn_journal_txn_t *open_with_order_fixture(struct journal_env *env)
{
    add_order_fixture(env_open(env, TEST_MAP_MB));
    return begin_write(env->journal);
}

static int same_entry(const gdn_journal_pending_t *a, const gdn_journal_pending_t *b)
{
    return a->priority == b->priority && a->created_us == b->created_us &&
           strcmp(a->id, b->id) == 0 && strcmp(a->role, b->role) == 0;
}

/* Checks that `got` holds exactly the fixture entries numbered `expected`, in that order. */
static void check_entries(const gdn_journal_pending_t *got, int count, const unsigned *expected,
                          int expected_count)
{
    CU_ASSERT_EQUAL(count, expected_count);
    for (int i = 0; i < count && i < expected_count; i++) {
        gdn_journal_pending_t want = fixture_entry(expected[i]);

        if (!same_entry(&got[i], &want))
            fprintf(stderr, "\nposition %d: got %s/%s, wanted %s/%s\n", i, got[i].role, got[i].id,
                    want.role, want.id);
        CU_ASSERT(same_entry(&got[i], &want));
    }
}

/* Lists a role (NULL: all roles) in one call and checks it against `expected`. */
static void check_listing(gdn_journal_txn_t *txn, const char *role, const unsigned *expected,
                          int expected_count)
{
    gdn_journal_pending_t got[ORDER_COUNT + 4];
    int count = gdn_journal_pending_list(txn, role, NULL, got, ORDER_COUNT + 4);

    check_entries(got, count, expected, expected_count);
}

static void test_journal__state_survives_reopen(void)
{
    struct journal_env env;
    gdn_journal_t *journal = env_open(&env, TEST_MAP_MB);
    gdn_journal_pending_t first = make_entry("r1", 7, 1000, 1);
    gdn_journal_pending_t second = make_entry("r2", 3, 2000, 2);
    gdn_journal_txn_t *txn = begin_write(journal);
    uint64_t v_task = put_text(txn, "task:a", "{\"n\":1}", 0, 0);
    uint64_t v_worker = put_text(txn, "worker:w", "{\"w\":1}", 1234567, 0);
    uint64_t v_local = put_text(txn, "completed:c", "{}", 0, GDN_JOURNAL_PUT_LOCAL_ONLY);

    CU_ASSERT_EQUAL(gdn_journal_pending_add(txn, &first), 0);
    CU_ASSERT_EQUAL(gdn_journal_pending_add(txn, &second), 0);
    CU_ASSERT_EQUAL(gdn_journal_counter_add(txn, "tasks", 3), 0);
    CU_ASSERT_EQUAL(gdn_journal_counter_add(txn, "tasks", -1), 0);
    commit_ok(txn);

    txn = begin_write(journal);

    uint64_t v_task2 = put_text(txn, "task:a", "{\"n\":2}", 0, 0);

    commit_ok(txn);
    CU_ASSERT(v_task < v_worker && v_worker < v_local && v_local < v_task2);

    journal = env_reopen(&env, TEST_MAP_MB);

    gdn_journal_reader_t *reader = NULL;

    CU_ASSERT_EQUAL_FATAL(gdn_journal_reader_open(journal, &reader), 0);
    CU_ASSERT_EQUAL_FATAL(gdn_journal_read_begin(reader, &txn), 0);
    check_record(txn, "task:a", "{\"n\":2}", v_task2, 0);
    check_record(txn, "worker:w", "{\"w\":1}", v_worker, 1234567);
    check_record(txn, "completed:c", "{}", v_local, 0);

    gdn_journal_pending_t pending[4];

    CU_ASSERT_EQUAL(gdn_journal_pending_list(txn, NULL, NULL, pending, 4), 2);
    CU_ASSERT(same_entry(&pending[0], &first));
    CU_ASSERT(same_entry(&pending[1], &second));

    /* Both changes of task:a are logged, in the order they were made; the local-only put is
     * not. */
    const struct change logged[] = {
        {"task:a", v_task, 0},
        {"worker:w", v_worker, 0},
        {"task:a", v_task2, 0},
    };

    check_log(txn, logged, 3);
    CU_ASSERT_EQUAL(read_counter(txn, "tasks"), 2);
    CU_ASSERT_EQUAL(read_counter(txn, "never-written"), 0);
    gdn_journal_read_end(reader);
    gdn_journal_reader_close(reader);

    /* The sequence goes on from where it stopped, so an upload can never be mistaken for an
     * upload of an older write. */
    txn = begin_write(journal);

    uint64_t v_after = put_text(txn, "task:b", "{}", 0, 0);

    commit_ok(txn);
    CU_ASSERT(v_after > v_task2);

    journal = env_reopen(&env, TEST_MAP_MB);
    txn = begin_write(journal);
    CU_ASSERT_EQUAL(gdn_journal_delete(txn, "task:b", 6), 0);

    gdn_journal_dirty_t deleted[2];

    /* The delete is logged after the put it undoes, with a later version than any before the
     * reopen. */
    CU_ASSERT_EQUAL_FATAL(gdn_journal_dirty_list(txn, v_after, deleted, 2), 1);
    CU_ASSERT_STRING_EQUAL(deleted[0].key, "task:b");
    CU_ASSERT_EQUAL(deleted[0].deleted, 1);
    CU_ASSERT(deleted[0].version > v_after);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), 5);
    commit_ok(txn);
    env_close(&env);
}

static void test_journal__claim_order_across_priorities_and_roles(void)
{
    struct journal_env env;
    gdn_journal_txn_t *txn = open_with_order_fixture(&env);

    check_listing(txn, NULL, order_all, ORDER_COUNT);
    check_listing(txn, "ab", order_ab, 5);
    check_listing(txn, "abc", order_abc, 3);
    check_listing(txn, "b", order_b, 2);

    /* The comparison agrees with the index order. */
    for (int i = 0; i + 1 < ORDER_COUNT; i++) {
        gdn_journal_pending_t a = fixture_entry(order_all[i]);
        gdn_journal_pending_t b = fixture_entry(order_all[i + 1]);

        CU_ASSERT(gdn_journal_pending_compare(&a, &b) < 0);
        CU_ASSERT(gdn_journal_pending_compare(&b, &a) > 0);
        CU_ASSERT_EQUAL(gdn_journal_pending_compare(&a, &a), 0);
    }

    /* A listing stops at `max`. */
    gdn_journal_pending_t two[2];

    CU_ASSERT_EQUAL(gdn_journal_pending_list(txn, NULL, NULL, two, 2), 2);
    CU_ASSERT_EQUAL(gdn_journal_pending_list(txn, "ab", NULL, two, 0), 0);
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_journal__role_prefix_does_not_leak(void)
{
    struct journal_env env;
    gdn_journal_txn_t *txn = open_with_order_fixture(&env);
    gdn_journal_pending_t got[ORDER_COUNT];

    /* "a" is a prefix of both "ab" and "abc" and has no entry of its own; "abcd" extends "abc". */
    CU_ASSERT_EQUAL(gdn_journal_pending_list(txn, "a", NULL, got, ORDER_COUNT), 0);
    CU_ASSERT_EQUAL(gdn_journal_pending_list(txn, "abcd", NULL, got, ORDER_COUNT), 0);
    CU_ASSERT_EQUAL(gdn_journal_pending_list(txn, "", NULL, got, ORDER_COUNT), 0);

    int count = gdn_journal_pending_list(txn, "ab", NULL, got, ORDER_COUNT);

    for (int i = 0; i < count; i++)
        CU_ASSERT_STRING_EQUAL(got[i].role, "ab");
    count = gdn_journal_pending_list(txn, "abc", NULL, got, ORDER_COUNT);
    for (int i = 0; i < count; i++)
        CU_ASSERT_STRING_EQUAL(got[i].role, "abc");
    CU_ASSERT_EQUAL(count, 3);
    gdn_journal_abort(txn);
    env_close(&env);
}

/* Lists a role page by page, each page continuing after the last entry of the one before. */
static int list_in_pages(gdn_journal_txn_t *txn, const char *role, int page_size,
                         gdn_journal_pending_t *out, int max)
{
    int total = 0;

    for (;;) {
        const gdn_journal_pending_t *after = total > 0 ? &out[total - 1] : NULL;
        int room = max - total < page_size ? max - total : page_size;
        int count = gdn_journal_pending_list(txn, role, after, out + total, room);

        CU_ASSERT(count >= 0 && count <= room);
        if (count <= 0)
            return total;
        total += count;
    }
}

static void test_journal__after_cursor_continues_listing(void)
{
    struct journal_env env;
    gdn_journal_txn_t *txn = open_with_order_fixture(&env);
    gdn_journal_pending_t got[ORDER_COUNT + 4];

    for (int page = 1; page <= 4; page++) {
        int count = list_in_pages(txn, NULL, page, got, ORDER_COUNT + 4);

        check_entries(got, count, order_all, ORDER_COUNT);
        count = list_in_pages(txn, "ab", page, got, ORDER_COUNT + 4);
        check_entries(got, count, order_ab, 5);
    }

    /* A cursor that is no entry continues at the next entry in claim order. */
    gdn_journal_pending_t between = make_entry("ab", 0, -6, 0);
    static const unsigned rest_all[] = {3, 4, 10, 6, 9, 1};
    static const unsigned rest_ab[] = {3, 10};

    check_entries(got, gdn_journal_pending_list(txn, NULL, &between, got, ORDER_COUNT), rest_all,
                  6);
    check_entries(got, gdn_journal_pending_list(txn, "ab", &between, got, ORDER_COUNT), rest_ab, 2);

    /* An entry of another role works as a cursor too. */
    gdn_journal_pending_t of_abc = fixture_entry(4);
    static const unsigned after_four[] = {10};

    check_entries(got, gdn_journal_pending_list(txn, "ab", &of_abc, got, ORDER_COUNT), after_four,
                  1);

    /* After the last entry there is nothing. */
    gdn_journal_pending_t last = fixture_entry(1);

    CU_ASSERT_EQUAL(gdn_journal_pending_list(txn, NULL, &last, got, ORDER_COUNT), 0);
    last = fixture_entry(10);
    CU_ASSERT_EQUAL(gdn_journal_pending_list(txn, "ab", &last, got, ORDER_COUNT), 0);
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_journal__pending_remove_clears_both_indexes(void)
{
    struct journal_env env;
    gdn_journal_txn_t *txn = open_with_order_fixture(&env);
    gdn_journal_pending_t three = fixture_entry(3);
    gdn_journal_pending_t eight = fixture_entry(8);

    CU_ASSERT_EQUAL(gdn_journal_pending_remove(txn, &three), 0);
    CU_ASSERT_EQUAL(gdn_journal_pending_remove(txn, &eight), 0);
    commit_ok(txn);

    txn = begin_write(env.journal);

    static const unsigned left_all[] = {7, 2, 5, 4, 10, 6, 9, 1};
    static const unsigned left_ab[] = {7, 2, 5, 10};
    static const unsigned left_abc[] = {4, 1};

    check_listing(txn, NULL, left_all, 8);
    check_listing(txn, "ab", left_ab, 4);
    check_listing(txn, "abc", left_abc, 2);

    /* Removing what is not there changes nothing and is no error. */
    gdn_journal_pending_t never = make_entry("zz", 1, 1, 99);

    CU_ASSERT_EQUAL(gdn_journal_pending_remove(txn, &three), 0);
    CU_ASSERT_EQUAL(gdn_journal_pending_remove(txn, &never), 0);
    check_listing(txn, NULL, left_all, 8);
    gdn_journal_abort(txn);
    env_close(&env);
}

/* Checks one role of a gdn_journal_pending_roles listing. */
static void check_depth(const gdn_journal_role_depth_t *got, const char *role, int64_t depth,
                        int64_t oldest_us)
{
    CU_ASSERT_STRING_EQUAL(got->role, role);
    CU_ASSERT_EQUAL(got->depth, depth);
    CU_ASSERT_EQUAL(got->oldest_created_us, oldest_us);
}

static void test_journal__role_depths_follow_the_pending_index(void)
{
    struct journal_env env;
    gdn_journal_txn_t *txn = open_with_order_fixture(&env);
    gdn_journal_role_depth_t roles[8];

    /* Priorities at both ends of the range: the walk from one priority to the next must stop
     * at the last one and still find the oldest. */
    CU_ASSERT_EQUAL_FATAL(gdn_journal_pending_roles(txn, roles, 8), 3);
    check_depth(&roles[0], "ab", 5, INT64_MIN);
    check_depth(&roles[1], "abc", 3, -5);
    check_depth(&roles[2], "b", 2, -1);
    CU_ASSERT_EQUAL(gdn_journal_pending_roles(txn, roles, 1), 1);

    /* Adding an entry again does not count it twice; removing counts once. */
    gdn_journal_pending_t three = fixture_entry(3);
    gdn_journal_pending_t five = fixture_entry(5);
    gdn_journal_pending_t six = fixture_entry(6);
    gdn_journal_pending_t nine = fixture_entry(9);

    CU_ASSERT_EQUAL(gdn_journal_pending_add(txn, &three), 0);
    CU_ASSERT_EQUAL(gdn_journal_pending_remove(txn, &five), 0);
    CU_ASSERT_EQUAL(gdn_journal_pending_remove(txn, &five), 0);
    CU_ASSERT_EQUAL(gdn_journal_pending_remove(txn, &six), 0);
    CU_ASSERT_EQUAL(gdn_journal_pending_remove(txn, &nine), 0);
    commit_ok(txn);

    /* The counts are in the journal: they survive a restart, and an emptied role is gone. */
    env_reopen(&env, TEST_MAP_MB);
    txn = begin_write(env.journal);
    CU_ASSERT_EQUAL_FATAL(gdn_journal_pending_roles(txn, roles, 8), 2);
    check_depth(&roles[0], "ab", 4, -5);
    check_depth(&roles[1], "abc", 3, -5);

    gdn_journal_pending_t ab[ORDER_COUNT];
    int listed = gdn_journal_pending_list(txn, "ab", NULL, ab, ORDER_COUNT);

    CU_ASSERT_EQUAL(listed, 4);
    gdn_journal_abort(txn);
    env_close(&env);
}

/*
 * Makes the journal in `dir` look as if written before the per-role counts existed: removes the
 * counts and the mark that says they were made. This reaches into LMDB directly, which only a
 * test that fabricates an older file has reason to do.
 */
static void forget_depth_counts(const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    MDB_cursor *cursor;
    MDB_val k;
    MDB_val v;

    CU_ASSERT_EQUAL_FATAL(mdb_env_create(&env), MDB_SUCCESS);
    mdb_env_set_maxdbs(env, 32);
    mdb_env_set_mapsize(env, (size_t)TEST_MAP_MB << 20);
    CU_ASSERT_EQUAL_FATAL(mdb_env_open(env, dir, 0, 0600), MDB_SUCCESS);
    CU_ASSERT_EQUAL_FATAL(mdb_txn_begin(env, NULL, 0, &txn), MDB_SUCCESS);
    CU_ASSERT_EQUAL_FATAL(mdb_dbi_open(txn, "meta", 0, &meta), MDB_SUCCESS);
    k.mv_size = 6;
    k.mv_data = "depths";
    CU_ASSERT_EQUAL(mdb_del(txn, meta, &k, NULL), MDB_SUCCESS);
    CU_ASSERT_EQUAL_FATAL(mdb_cursor_open(txn, meta, &cursor), MDB_SUCCESS);

    int removed = 0;
    int rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);

    while (rc == MDB_SUCCESS) {
        if (k.mv_size > 14 && memcmp(k.mv_data, "count:pending:", 14) == 0) {
            CU_ASSERT_EQUAL(mdb_cursor_del(cursor, 0), MDB_SUCCESS);
            removed++;
            rc = mdb_cursor_get(cursor, &k, &v, MDB_GET_CURRENT);
            if (rc == MDB_SUCCESS)
                continue;
        }
        rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    CU_ASSERT_EQUAL(removed, 3);
    CU_ASSERT_EQUAL(mdb_txn_commit(txn), MDB_SUCCESS);
    mdb_env_close(env);
}

static void test_journal__older_journals_get_their_depths_counted_at_open(void)
{
    struct journal_env env;
    gdn_journal_role_depth_t roles[8];

    add_order_fixture(env_open(&env, TEST_MAP_MB));
    gdn_journal_close(env.journal);
    env.journal = NULL;
    forget_depth_counts(env.dir);

    env.journal = open_journal(env.dir, TEST_MAP_MB);

    gdn_journal_txn_t *txn = begin_write(env.journal);

    CU_ASSERT_EQUAL_FATAL(gdn_journal_pending_roles(txn, roles, 8), 3);
    check_depth(&roles[0], "ab", 5, INT64_MIN);
    check_depth(&roles[1], "abc", 3, -5);
    check_depth(&roles[2], "b", 2, -1);
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_journal__dirty_span_gives_oldest_and_newest_change(void)
{
    struct journal_env env;
    gdn_journal_txn_t *txn = begin_write(env_open(&env, TEST_MAP_MB));
    uint64_t oldest = 1;
    uint64_t newest = 1;

    CU_ASSERT_EQUAL(gdn_journal_dirty_span(txn, &oldest, &newest), 0);
    CU_ASSERT_EQUAL(oldest, 0);
    CU_ASSERT_EQUAL(newest, 0);

    uint64_t first = put_text(txn, "task:a", "{}", 0, 0);

    put_text(txn, "task:b", "{}", 0, 0);

    uint64_t last = put_text(txn, "task:c", "{}", 0, 0);

    CU_ASSERT_EQUAL(gdn_journal_dirty_span(txn, &oldest, &newest), 0);
    CU_ASSERT_EQUAL(oldest, first);
    CU_ASSERT_EQUAL(newest, last);
    CU_ASSERT_EQUAL(gdn_journal_dirty_clear(txn, "task:a", first), 0);
    CU_ASSERT_EQUAL(gdn_journal_dirty_span(txn, &oldest, &newest), 0);
    CU_ASSERT(oldest > first);
    CU_ASSERT_EQUAL(newest, last);
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_journal__pending_index_refuses_bad_entries(void)
{
    struct journal_env env;
    gdn_journal_t *journal = env_open(&env, TEST_MAP_MB);
    gdn_journal_txn_t *txn = begin_write(journal);
    gdn_journal_pending_t no_role = make_entry("", 1, 1, 1);
    gdn_journal_pending_t short_id = make_entry("r", 1, 1, 2);
    gdn_journal_pending_t long_role = make_entry("r", 1, 1, 3);

    short_id.id[10] = '\0';
    memset(long_role.role, 'x', sizeof(long_role.role));
    CU_ASSERT_EQUAL(gdn_journal_pending_add(txn, &no_role), GDN_EINVALID);
    CU_ASSERT_EQUAL(gdn_journal_pending_add(txn, &short_id), GDN_EINVALID);
    CU_ASSERT_EQUAL(gdn_journal_pending_add(txn, &long_role), GDN_EINVALID);
    CU_ASSERT_EQUAL(gdn_journal_pending_remove(txn, &short_id), GDN_EINVALID);

    gdn_journal_pending_t got[2];

    CU_ASSERT_EQUAL(gdn_journal_pending_list(txn, NULL, NULL, got, 2), 0);

    /* The longest role allowed is accepted and lists under its own name. */
    gdn_journal_pending_t widest = make_entry("r", 1, 1, 4);

    memset(widest.role, 'y', GDN_JOURNAL_ROLE_MAX);
    widest.role[GDN_JOURNAL_ROLE_MAX] = '\0';
    CU_ASSERT_EQUAL(gdn_journal_pending_add(txn, &widest), 0);
    CU_ASSERT_EQUAL(gdn_journal_pending_list(txn, widest.role, NULL, got, 2), 1);
    CU_ASSERT(same_entry(&got[0], &widest));
    CU_ASSERT_EQUAL(gdn_journal_pending_list(txn, NULL, NULL, got, 2), 1);
    CU_ASSERT(same_entry(&got[0], &widest));
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_journal__change_log_tracks_every_change(void)
{
    struct journal_env env;
    gdn_journal_t *journal = env_open(&env, TEST_MAP_MB);
    gdn_journal_txn_t *txn = begin_write(journal);
    uint64_t v1 = put_text(txn, "task:a", "{\"v\":1}", 0, 0);
    const struct change first[] = {{"task:a", v1, 0}};

    check_log(txn, first, 1);
    commit_ok(txn);

    /* A second write adds an entry of its own rather than replacing the first. */
    txn = begin_write(journal);

    uint64_t v2 = put_text(txn, "task:a", "{\"v\":2}", 0, 0);
    const struct change both[] = {{"task:a", v1, 0}, {"task:a", v2, 0}};

    CU_ASSERT(v2 > v1);
    check_log(txn, both, 2);

    /* A local-only record is stored but not logged. */
    uint64_t v_local = put_text(txn, "task:local", "{}", 0, GDN_JOURNAL_PUT_LOCAL_ONLY);

    CU_ASSERT(v_local > v2);
    check_record(txn, "task:local", "{}", v_local, 0);
    check_log(txn, both, 2);

    /* Clearing the older change leaves the newer one, which only its own clear removes. */
    const struct change newer[] = {{"task:a", v2, 0}};

    CU_ASSERT_EQUAL(gdn_journal_dirty_clear(txn, "task:a", v1), 0);
    check_log(txn, newer, 1);
    CU_ASSERT_EQUAL(gdn_journal_dirty_clear(txn, "task:a", v1), GDN_ENOTFOUND);
    CU_ASSERT_EQUAL(gdn_journal_dirty_clear(txn, "task:a", v_local), GDN_ENOTFOUND);
    CU_ASSERT_EQUAL(gdn_journal_dirty_clear(txn, "task:local", v_local), GDN_ENOTFOUND);
    check_log(txn, newer, 1);
    CU_ASSERT_EQUAL(gdn_journal_dirty_clear(txn, "task:a", v2), 0);
    check_log(txn, NULL, 0);
    CU_ASSERT_EQUAL(gdn_journal_dirty_clear(txn, "task:a", v2), GDN_ENOTFOUND);
    CU_ASSERT_EQUAL(gdn_journal_dirty_clear(txn, "task:none", 1), GDN_ENOTFOUND);
    commit_ok(txn);

    /* A delete logs a delete, with a version of its own; a failed delete logs nothing. */
    txn = begin_write(journal);
    CU_ASSERT_EQUAL(gdn_journal_delete(txn, "task:a", 6), 0);
    check_absent(txn, "task:a");
    CU_ASSERT_EQUAL(gdn_journal_delete(txn, "task:a", 6), GDN_ENOTFOUND);
    CU_ASSERT_EQUAL(gdn_journal_delete(txn, "task:local", 10), 0);

    gdn_journal_dirty_t deletes[3];

    CU_ASSERT_EQUAL_FATAL(gdn_journal_dirty_list(txn, 0, deletes, 3), 2);

    uint64_t v_delete = deletes[0].version;
    uint64_t v_delete_local = deletes[1].version;
    const struct change deleted[] = {{"task:a", v_delete, 1}, {"task:local", v_delete_local, 1}};

    CU_ASSERT(v_delete > v_local && v_delete_local > v_delete);
    check_log(txn, deleted, 2);

    /* Writing the record again logs an upload after the delete, which stays in the log. */
    uint64_t v3 = put_text(txn, "task:a", "{\"v\":3}", 0, 0);
    const struct change rewritten[] = {
        {"task:a", v_delete, 1}, {"task:local", v_delete_local, 1}, {"task:a", v3, 0}};

    CU_ASSERT(v3 > v_delete_local);
    check_log(txn, rewritten, 3);
    CU_ASSERT_EQUAL(gdn_journal_dirty_clear(txn, "task:a", v_delete), 0);
    check_log(txn, rewritten + 1, 2);
    commit_ok(txn);
    env_close(&env);
}

static void test_journal__two_puts_of_one_key_log_two_changes(void)
{
    struct journal_env env;
    gdn_journal_t *journal = env_open(&env, TEST_MAP_MB);
    gdn_journal_txn_t *txn = begin_write(journal);

    /* Two writes in one transaction and a third in the next: three entries, oldest first. */
    uint64_t v1 = put_text(txn, "worker:w", "{\"n\":1}", 0, 0);
    uint64_t v2 = put_text(txn, "worker:w", "{\"n\":2}", 0, 0);

    commit_ok(txn);
    txn = begin_write(journal);

    uint64_t v3 = put_text(txn, "worker:w", "{\"n\":3}", 0, 0);
    const struct change all[] = {{"worker:w", v1, 0}, {"worker:w", v2, 0}, {"worker:w", v3, 0}};

    CU_ASSERT(v1 < v2 && v2 < v3);
    check_log(txn, all, 3);
    commit_ok(txn);

    /* An upload that read the second version clears the first two; the third stays. */
    txn = begin_write(journal);
    CU_ASSERT_EQUAL(gdn_journal_dirty_clear(txn, "worker:w", v1), 0);
    check_log(txn, all + 1, 2);
    CU_ASSERT_EQUAL(gdn_journal_dirty_clear(txn, "worker:w", v2), 0);
    commit_ok(txn);

    txn = begin_write(journal);
    check_log(txn, all + 2, 1);
    check_record(txn, "worker:w", "{\"n\":3}", v3, 0);
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_journal__clear_refuses_a_version_of_another_key(void)
{
    struct journal_env env;
    gdn_journal_t *journal = env_open(&env, TEST_MAP_MB);
    gdn_journal_txn_t *txn = begin_write(journal);
    uint64_t v_a = put_text(txn, "task:a", "{}", 0, 0);
    uint64_t v_b = put_text(txn, "task:b", "{}", 0, 0);
    uint64_t v_long = put_text(txn, "task:aa", "{}", 0, 0);
    const struct change all[] = {{"task:a", v_a, 0}, {"task:b", v_b, 0}, {"task:aa", v_long, 0}};

    commit_ok(txn);

    /* The version names the entry; a key that is not its own, even a prefix or an extension
     * of it, clears nothing. */
    txn = begin_write(journal);
    CU_ASSERT_EQUAL(gdn_journal_dirty_clear(txn, "task:a", v_b), GDN_ENOTFOUND);
    CU_ASSERT_EQUAL(gdn_journal_dirty_clear(txn, "task:b", v_a), GDN_ENOTFOUND);
    CU_ASSERT_EQUAL(gdn_journal_dirty_clear(txn, "task:a", v_long), GDN_ENOTFOUND);
    CU_ASSERT_EQUAL(gdn_journal_dirty_clear(txn, "task:aa", v_a), GDN_ENOTFOUND);
    CU_ASSERT_EQUAL(gdn_journal_dirty_clear(txn, "task:", v_a), GDN_ENOTFOUND);
    CU_ASSERT_EQUAL(gdn_journal_dirty_clear(txn, "task:a", v_long + 1), GDN_ENOTFOUND);
    check_log(txn, all, 3);
    commit_ok(txn);

    /* Nothing was removed, also after the commit; the right key still clears. */
    txn = begin_write(journal);
    check_log(txn, all, 3);
    CU_ASSERT_EQUAL(gdn_journal_dirty_clear(txn, "task:b", v_b), 0);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), 2);
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_journal__change_log_survives_reopen(void)
{
    struct journal_env env;
    gdn_journal_t *journal = env_open(&env, TEST_MAP_MB);
    gdn_journal_txn_t *txn = begin_write(journal);
    uint64_t v1 = put_text(txn, "task:x", "{\"v\":1}", 0, 0);
    uint64_t v2 = put_text(txn, "task:x", "{\"v\":2}", 0, 0);
    uint64_t v_y = put_text(txn, "task:y", "{}", 0, 0);

    commit_ok(txn);
    txn = begin_write(journal);
    CU_ASSERT_EQUAL(gdn_journal_delete(txn, "task:y", 6), 0);
    commit_ok(txn);

    journal = env_reopen(&env, TEST_MAP_MB);
    txn = begin_write(journal);

    gdn_journal_dirty_t last[1];

    CU_ASSERT_EQUAL_FATAL(gdn_journal_dirty_list(txn, v_y, last, 1), 1);

    uint64_t v_delete = last[0].version;
    const struct change before[] = {
        {"task:x", v1, 0}, {"task:x", v2, 0}, {"task:y", v_y, 0}, {"task:y", v_delete, 1}};

    CU_ASSERT(v_delete > v_y);
    check_log(txn, before, 4);

    /* Changes after the reopen get later versions and are logged after the old ones. */
    uint64_t v3 = put_text(txn, "task:x", "{\"v\":3}", 0, 0);

    CU_ASSERT(v3 > v_delete);
    CU_ASSERT_EQUAL(gdn_journal_dirty_clear(txn, "task:x", v1), 0);
    commit_ok(txn);

    journal = env_reopen(&env, TEST_MAP_MB);
    txn = begin_write(journal);

    uint64_t v_z = put_text(txn, "task:z", "{}", 0, 0);
    const struct change after[] = {{"task:x", v2, 0},
                                   {"task:y", v_y, 0},
                                   {"task:y", v_delete, 1},
                                   {"task:x", v3, 0},
                                   {"task:z", v_z, 0}};

    CU_ASSERT(v_z > v3);
    check_log(txn, after, 5);
    commit_ok(txn);
    env_close(&env);
}

static void test_journal__change_log_lists_in_commit_order(void)
{
    struct journal_env env;
    gdn_journal_t *journal = env_open(&env, TEST_MAP_MB);
    struct change want[LOG_MAX];
    int count = 0;

    /* Each commit writes keys in falling key order and revisits keys of earlier commits, so
     * key order and commit order disagree everywhere. */
    static const char *const rounds[3][4] = {
        {"worker:9", "task:5", "task:1", "completed:3"},
        {"task:5", "task:0", "completed:3", "completed:0"},
        {"worker:9", "task:1", "task:0", "completed:9"},
    };

    for (int r = 0; r < 3; r++) {
        gdn_journal_txn_t *txn = begin_write(journal);

        for (int i = 0; i < 4; i++) {
            want[count].key = rounds[r][i];
            want[count].version = put_text(txn, rounds[r][i], "{}", 0, 0);
            want[count].deleted = 0;
            count++;
        }
        commit_ok(txn);
    }

    gdn_journal_txn_t *txn = begin_write(journal);

    CU_ASSERT_EQUAL(gdn_journal_delete(txn, "task:5", 6), 0);
    CU_ASSERT_EQUAL(gdn_journal_delete(txn, "completed:0", 11), 0);

    gdn_journal_dirty_t tail[2];

    CU_ASSERT_EQUAL_FATAL(gdn_journal_dirty_list(txn, want[count - 1].version, tail, 2), 2);
    for (int i = 0; i < 2; i++) {
        want[count].key = i == 0 ? "task:5" : "completed:0";
        want[count].version = tail[i].version;
        want[count].deleted = 1;
        count++;
    }
    for (int i = 1; i < count; i++)
        CU_ASSERT(want[i].version > want[i - 1].version);
    check_log(txn, want, count);
    commit_ok(txn);
    env_close(&env);
}

static void test_journal__change_log_pages_by_version(void)
{
    struct journal_env env;
    gdn_journal_t *journal = env_open(&env, TEST_MAP_MB);
    gdn_journal_txn_t *txn = begin_write(journal);
    uint64_t versions[25];
    int keys[25];

    /* Written out of key order; listed in the order written. A local-only put after the tenth
     * leaves a version that is no entry. */
    uint64_t v_gap = 0;

    for (int i = 0; i < 25; i++) {
        char key[32];

        keys[i] = (i * 7) % 25;
        snprintf(key, sizeof(key), "task:%02d", keys[i]);
        versions[i] = put_text(txn, key, "{}", 0, 0);
        if (i == 9)
            v_gap = put_text(txn, "task:local", "{}", 0, GDN_JOURNAL_PUT_LOCAL_ONLY);
    }
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), 25);

    gdn_journal_dirty_t page[7];
    uint64_t after = 0;
    int seen = 0;

    /* Four pages hold the 25 entries; the bound stops a cursor that does not advance. */
    for (int round = 0; round < 8 && seen <= 25; round++) {
        int count = gdn_journal_dirty_list(txn, after, page, 7);

        CU_ASSERT(count >= 0 && count <= 7);
        if (count <= 0)
            break;
        for (int i = 0; i < count && seen + i < 25; i++) {
            char want[32];

            snprintf(want, sizeof(want), "task:%02d", keys[seen + i]);
            CU_ASSERT_STRING_EQUAL(page[i].key, want);
            CU_ASSERT_EQUAL(page[i].version, versions[seen + i]);
            CU_ASSERT_EQUAL(page[i].deleted, 0);
        }
        seen += count;
        after = page[count - 1].version;
    }
    CU_ASSERT_EQUAL(seen, 25);

    /* A version that is no entry works as a cursor: the listing goes on at the next entry. */
    CU_ASSERT(v_gap > versions[9] && v_gap < versions[10]);
    CU_ASSERT_EQUAL(gdn_journal_dirty_list(txn, v_gap, page, 7), 7);
    CU_ASSERT_EQUAL(page[0].version, versions[10]);
    CU_ASSERT_EQUAL(gdn_journal_dirty_list(txn, versions[9], page, 7), 7);
    CU_ASSERT_EQUAL(page[0].version, versions[10]);

    /* After the last entry there is nothing; 0 starts at the first; a listing stops at max. */
    CU_ASSERT_EQUAL(gdn_journal_dirty_list(txn, versions[24], page, 7), 0);
    CU_ASSERT_EQUAL(gdn_journal_dirty_list(txn, UINT64_MAX, page, 7), 0);
    CU_ASSERT_EQUAL(gdn_journal_dirty_list(txn, 0, page, 7), 7);
    CU_ASSERT_EQUAL(page[0].version, versions[0]);
    CU_ASSERT_EQUAL(gdn_journal_dirty_list(txn, 0, page, 0), 0);

    /* A cleared entry drops out of the listing and its version still works as a cursor. */
    CU_ASSERT_EQUAL(gdn_journal_dirty_clear(txn, "task:00", versions[0]), 0);
    CU_ASSERT_EQUAL(gdn_journal_dirty_list(txn, 0, page, 1), 1);
    CU_ASSERT_EQUAL(page[0].version, versions[1]);
    CU_ASSERT_EQUAL(gdn_journal_dirty_list(txn, versions[0], page, 1), 1);
    CU_ASSERT_EQUAL(page[0].version, versions[1]);
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_journal__aborted_write_leaves_nothing(void)
{
    struct journal_env env;
    gdn_journal_t *journal = env_open(&env, TEST_MAP_MB);
    gdn_journal_txn_t *txn = begin_write(journal);
    uint64_t v_keep = put_text(txn, "task:keep", "{\"k\":1}", 0, 0);

    commit_ok(txn);

    txn = begin_write(journal);
    put_text(txn, "task:gone", "{}", 0, 0);
    put_text(txn, "task:keep", "{\"k\":2}", 0, 0);

    gdn_journal_pending_t entry = make_entry("r", 1, 1, 1);

    /* The clear of the committed change is undone with the rest. */
    CU_ASSERT_EQUAL(gdn_journal_pending_add(txn, &entry), 0);
    CU_ASSERT_EQUAL(gdn_journal_counter_add(txn, "tasks", 5), 0);
    CU_ASSERT_EQUAL(gdn_journal_dirty_clear(txn, "task:keep", v_keep), 0);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), 2);
    gdn_journal_abort(txn);

    gdn_journal_reader_t *reader = NULL;

    CU_ASSERT_EQUAL_FATAL(gdn_journal_reader_open(journal, &reader), 0);
    CU_ASSERT_EQUAL_FATAL(gdn_journal_read_begin(reader, &txn), 0);
    check_absent(txn, "task:gone");
    check_record(txn, "task:keep", "{\"k\":1}", v_keep, 0);

    gdn_journal_pending_t got[2];
    const struct change kept[] = {{"task:keep", v_keep, 0}};

    CU_ASSERT_EQUAL(gdn_journal_pending_list(txn, NULL, NULL, got, 2), 0);
    CU_ASSERT_EQUAL(gdn_journal_pending_list(txn, "r", NULL, got, 2), 0);
    check_log(txn, kept, 1);
    CU_ASSERT_EQUAL(read_counter(txn, "tasks"), 0);
    gdn_journal_read_end(reader);
    gdn_journal_reader_close(reader);

    /* The same holds after a reopen, and later writes still get higher versions. */
    journal = env_reopen(&env, TEST_MAP_MB);
    txn = begin_write(journal);
    check_absent(txn, "task:gone");
    check_record(txn, "task:keep", "{\"k\":1}", v_keep, 0);
    CU_ASSERT(put_text(txn, "task:new", "{}", 0, 0) > v_keep);
    commit_ok(txn);
    env_close(&env);
}

/* Fills a record body with a pattern of its own, so that a damaged record shows. */
static void fill_body(char *body, size_t len, int n)
{
    for (size_t i = 0; i < len; i++)
        body[i] = (char)('a' + (int)((i + (size_t)n) % 26));
}

static void check_big_records(gdn_journal_txn_t *txn, int stored, char *body, size_t len)
{
    uint64_t previous = 0;

    for (int i = 0; i < stored; i++) {
        char key[32];
        gdn_journal_record_t record;

        snprintf(key, sizeof(key), "big:%03d", i);
        fill_body(body, len, i);
        CU_ASSERT_EQUAL_FATAL(gdn_journal_get(txn, key, strlen(key), &record), 0);
        CU_ASSERT_EQUAL(record.json_len, len);
        CU_ASSERT(record.json_len == len && memcmp(record.json, body, len) == 0);
        CU_ASSERT(record.version > previous);
        previous = record.version;
    }

    char key[32];

    snprintf(key, sizeof(key), "big:%03d", stored);
    check_absent(txn, key);
}

/* Puts record `big:NNN` with `len` bytes of fill_body in a transaction of its own. */
static int put_committed(gdn_journal_t *journal, int n, char *body, size_t len)
{
    gdn_journal_txn_t *txn = begin_write(journal);
    char key[32];

    snprintf(key, sizeof(key), "big:%03d", n);
    fill_body(body, len, n);

    int rc = gdn_journal_put(txn, key, strlen(key), body, len, 0, 0, NULL);

    if (rc == 0)
        return gdn_journal_commit(txn);
    gdn_journal_abort(txn);
    return rc;
}

static void test_journal__the_reserve_is_reached_before_the_map_is_full(void)
{
    struct journal_env env;
    gdn_journal_t *journal = env_open(&env, 16);
    size_t len = 16 * 1024;
    char *body = malloc(len);
    int stored = 0;
    int in_reserve = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(body);

    /* 16 KiB records reach the 1 MiB reserve of a 16 MiB map within some 900 writes. */
    while (stored < 2000 && in_reserve == 0) {
        gdn_journal_txn_t *txn = begin_write(journal);

        in_reserve = gdn_journal_in_reserve(txn);
        gdn_journal_abort(txn);
        if (in_reserve == 0 && put_committed(journal, stored, body, len) == 0)
            stored++;
    }
    CU_ASSERT_EQUAL(in_reserve, 1);
    CU_ASSERT(stored > 500);

    /* The reserve is room that writes can still use. */
    for (int i = 0; i < 16; i++)
        CU_ASSERT_EQUAL(put_committed(journal, stored + i, body, len), 0);

    /* Records removed give their pages back, and the journal is out of the reserve. */
    gdn_journal_txn_t *txn = begin_write(journal);

    for (int i = 0; i < stored / 2; i++) {
        char key[32];

        snprintf(key, sizeof(key), "big:%03d", i);
        CU_ASSERT_EQUAL(gdn_journal_delete(txn, key, strlen(key)), 0);
    }
    CU_ASSERT_EQUAL(gdn_journal_commit(txn), 0);
    txn = begin_write(journal);
    CU_ASSERT_EQUAL(gdn_journal_in_reserve(txn), 0);
    gdn_journal_abort(txn);
    free(body);
    env_close(&env);
}

static void test_journal__full_map_refuses_write_and_keeps_data(void)
{
    struct journal_env env;
    gdn_journal_t *journal = env_open(&env, 1);
    size_t len = 64 * 1024;
    char *body = malloc(len);
    int stored = 0;
    int rc = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(body);

    /* 64 KiB records fill a 1 MiB map within 16 writes; 64 bounds the loop if they never do. */
    while (stored < 64 && rc == 0) {
        rc = put_committed(journal, stored, body, len);
        if (rc == 0)
            stored++;
    }
    CU_ASSERT_EQUAL(rc, GDN_EJOURNAL_FULL);
    CU_ASSERT(stored > 0);

    gdn_journal_txn_t *txn = begin_write(journal);

    check_big_records(txn, stored, body, len);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), stored);
    gdn_journal_abort(txn);

    /* A bigger map takes new writes, small and large, and the old records are all there. */
    journal = env_reopen(&env, 8);

    uint64_t map_bytes = 0;
    uint64_t used_bytes = 0;

    CU_ASSERT_EQUAL(gdn_journal_usage(journal, &map_bytes, &used_bytes), 0);
    CU_ASSERT_EQUAL(map_bytes, (uint64_t)8 << 20);
    CU_ASSERT(used_bytes > (uint64_t)stored * len && used_bytes <= map_bytes);
    txn = begin_write(journal);
    check_big_records(txn, stored, body, len);

    uint64_t v_small = put_text(txn, "task:small", "{}", 0, 0);

    CU_ASSERT_EQUAL(gdn_journal_put(txn, "big:new", 7, body, len, 0, 0, NULL), 0);
    commit_ok(txn);
    txn = begin_write(journal);
    check_record(txn, "task:small", "{}", v_small, 0);
    gdn_journal_abort(txn);
    free(body);
    env_close(&env);
}

/* Tells whether a failed open returned a code the header allows: GDN_EJOURNAL or -errno. */
static int is_open_error(int rc)
{
    return rc == GDN_EJOURNAL || (rc < 0 && rc > GDN_ERR_BASE);
}

/* Opens a journal that must not open and checks the code against the -errno the header names. */
static void check_open_fails(const char *path, int expected_errno)
{
    gdn_journal_t *journal = (gdn_journal_t *)&journal;
    int rc = gdn_journal_open(&journal, path, TEST_MAP_MB, TEST_READERS);

    CU_ASSERT_PTR_NULL(journal);
    CU_ASSERT(is_open_error(rc));
    if (rc != -expected_errno)
        fprintf(stderr, "\nopen of %s returned %d (%s), not %d (%s)\n", path, rc,
                gdn_journal_last_error(), -expected_errno, strerror(expected_errno));
    CU_ASSERT_EQUAL(rc, -expected_errno);
    gdn_journal_close(rc == 0 ? journal : NULL);
}

static void test_journal__open_refuses_missing_directory(void)
{
    char dir[PATH_MAX];
    char path[PATH_MAX + 16];

    gdn_test_tmpdir(dir, sizeof(dir));

    /* The header promises -errno for file errors, so that the log can say what is wrong. */
    snprintf(path, sizeof(path), "%s/missing", dir);
    check_open_fails(path, ENOENT);

    /* A path through a regular file is no directory either. */
    snprintf(path, sizeof(path), "%s/file", dir);

    FILE *file = fopen(path, "w");

    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    fclose(file);
    snprintf(path, sizeof(path), "%s/file/journal", dir);
    check_open_fails(path, ENOTDIR);
    gdn_test_rmdir(dir);
}

static void test_journal__open_refuses_unwritable_directory(void)
{
    /* Root passes every permission check, so the mode would refuse nothing. */
    if (geteuid() == 0) {
        printf("skipped: running as root, which ignores directory modes ... ");
        return;
    }

    char dir[PATH_MAX];

    gdn_test_tmpdir(dir, sizeof(dir));
    CU_ASSERT_EQUAL_FATAL(chmod(dir, 0500), 0);
    check_open_fails(dir, EACCES);
    chmod(dir, 0700);
    gdn_test_rmdir(dir);
}

/* Writes `len` bytes of a fixed non-LMDB pattern as DIR/data.mdb. */
static void write_garbage(const char *dir, size_t len)
{
    char path[PATH_MAX + 16];
    unsigned char *bytes = malloc(len);

    CU_ASSERT_PTR_NOT_NULL_FATAL(bytes);
    for (size_t i = 0; i < len; i++)
        bytes[i] = (unsigned char)(0xA5 ^ (i * 31));
    snprintf(path, sizeof(path), "%s/data.mdb", dir);

    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    CU_ASSERT(fd >= 0);
    if (fd >= 0) {
        CU_ASSERT_EQUAL(write(fd, bytes, len), (ssize_t)len);
        CU_ASSERT_EQUAL(close(fd), 0);
    }
    free(bytes);
}

static void test_journal__open_refuses_garbage_file(void)
{
    static const size_t sizes[] = {100, 4096, 64 * 1024};

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char dir[PATH_MAX];

        gdn_test_tmpdir(dir, sizeof(dir));
        write_garbage(dir, sizes[i]);

        gdn_journal_t *journal = (gdn_journal_t *)&journal;
        int rc = gdn_journal_open(&journal, dir, TEST_MAP_MB, TEST_READERS);

        if (rc == 0)
            fprintf(stderr, "\na garbage file of %zu bytes opened as a journal\n", sizes[i]);
        CU_ASSERT(is_open_error(rc));
        CU_ASSERT_PTR_NULL(journal);
        if (rc == GDN_EJOURNAL)
            CU_ASSERT(gdn_journal_last_error()[0] != '\0');
        gdn_journal_close(rc == 0 ? journal : NULL);
        gdn_test_rmdir(dir);
    }
}

static void test_journal__reader_sees_a_snapshot(void)
{
    struct journal_env env;
    gdn_journal_t *journal = env_open(&env, TEST_MAP_MB);
    gdn_journal_txn_t *txn = begin_write(journal);
    uint64_t v1 = put_text(txn, "task:a", "{\"v\":1}", 0, 0);

    commit_ok(txn);

    gdn_journal_reader_t *early = NULL;
    gdn_journal_reader_t *late = NULL;
    gdn_journal_txn_t *early_txn = NULL;
    gdn_journal_txn_t *late_txn = NULL;

    CU_ASSERT_EQUAL_FATAL(gdn_journal_reader_open(journal, &early), 0);
    CU_ASSERT_EQUAL_FATAL(gdn_journal_reader_open(journal, &late), 0);
    CU_ASSERT_EQUAL_FATAL(gdn_journal_read_begin(early, &early_txn), 0);

    txn = begin_write(journal);

    uint64_t v2 = put_text(txn, "task:a", "{\"v\":2}", 0, 0);

    put_text(txn, "task:b", "{}", 0, 0);

    gdn_journal_pending_t entry = make_entry("r", 1, 1, 1);

    CU_ASSERT_EQUAL(gdn_journal_pending_add(txn, &entry), 0);
    CU_ASSERT_EQUAL(gdn_journal_counter_add(txn, "tasks", 1), 0);
    commit_ok(txn);

    /* The read begun before the commit still sees the state it began with. */
    gdn_journal_pending_t got[2];

    check_record(early_txn, "task:a", "{\"v\":1}", v1, 0);
    check_absent(early_txn, "task:b");
    CU_ASSERT_EQUAL(gdn_journal_pending_list(early_txn, NULL, NULL, got, 2), 0);
    CU_ASSERT_EQUAL(read_counter(early_txn, "tasks"), 0);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(early_txn), 1);

    /* A read begun after it sees the change, alongside the older one. */
    CU_ASSERT_EQUAL_FATAL(gdn_journal_read_begin(late, &late_txn), 0);
    check_record(late_txn, "task:a", "{\"v\":2}", v2, 0);
    check_record(early_txn, "task:a", "{\"v\":1}", v1, 0);
    gdn_journal_read_end(late);

    /* Ending and beginning again moves the reader to the newest state. */
    gdn_journal_read_end(early);
    CU_ASSERT_EQUAL_FATAL(gdn_journal_read_begin(early, &early_txn), 0);
    check_record(early_txn, "task:a", "{\"v\":2}", v2, 0);
    CU_ASSERT_EQUAL(gdn_journal_pending_list(early_txn, NULL, NULL, got, 2), 1);
    CU_ASSERT_EQUAL(read_counter(early_txn, "tasks"), 1);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(early_txn), 3);
    gdn_journal_read_end(early);
    gdn_journal_read_end(early);
    gdn_journal_reader_close(early);
    gdn_journal_reader_close(late);
    env_close(&env);
}

/* Collects the keys a scan visits, separated by spaces, and stops after `stop_after` keys. */
struct scan_log {
    char keys[256];
    size_t len;
    int visited;
    int stop_after;
};

static int on_scanned(void *arg, const char *key, size_t key_len,
                      const gdn_journal_record_t *record)
{
    struct scan_log *log = arg;

    CU_ASSERT(record->version != 0);
    if (log->len + key_len + 2 < sizeof(log->keys)) {
        if (log->len > 0)
            log->keys[log->len++] = ' ';
        memcpy(log->keys + log->len, key, key_len);
        log->len += key_len;
        log->keys[log->len] = '\0';
    }
    log->visited++;
    return log->visited == log->stop_after ? 7 : 0;
}

static void test_journal__scan_returns_prefix_matches_in_order(void)
{
    struct journal_env env;
    gdn_journal_t *journal = env_open(&env, TEST_MAP_MB);
    gdn_journal_txn_t *txn = begin_write(journal);
    static const char *const keys[] = {"worker:1",    "task:b", "taskx", "task:a", "tas",
                                       "completed:1", "task:",  "task;", "s"};

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        put_text(txn, keys[i], "{}", 0, 0);
    commit_ok(txn);

    txn = begin_write(journal);

    struct scan_log log = {.stop_after = -1};

    CU_ASSERT_EQUAL(gdn_journal_scan(txn, "task:", on_scanned, &log), 0);
    CU_ASSERT_STRING_EQUAL(log.keys, "task: task:a task:b");

    log = (struct scan_log){.stop_after = -1};
    CU_ASSERT_EQUAL(gdn_journal_scan(txn, "", on_scanned, &log), 0);
    CU_ASSERT_STRING_EQUAL(log.keys, "completed:1 s tas task: task:a task:b task; taskx worker:1");

    log = (struct scan_log){.stop_after = -1};
    CU_ASSERT_EQUAL(gdn_journal_scan(txn, "zz", on_scanned, &log), 0);
    CU_ASSERT_EQUAL(log.visited, 0);
    CU_ASSERT_EQUAL(gdn_journal_scan(txn, "task:c", on_scanned, &log), 0);
    CU_ASSERT_EQUAL(log.visited, 0);

    /* A callback's non-zero result stops the scan and is returned. */
    log = (struct scan_log){.stop_after = 2};
    CU_ASSERT_EQUAL(gdn_journal_scan(txn, "task", on_scanned, &log), 7);
    CU_ASSERT_STRING_EQUAL(log.keys, "task: task:a");
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_journal__records_refuse_bad_keys(void)
{
    struct journal_env env;
    gdn_journal_t *journal = env_open(&env, TEST_MAP_MB);
    gdn_journal_txn_t *txn = begin_write(journal);
    char longest[GDN_JOURNAL_KEY_MAX + 2];
    gdn_journal_record_t record;

    memset(longest, 'k', sizeof(longest));
    longest[GDN_JOURNAL_KEY_MAX + 1] = '\0';
    CU_ASSERT_EQUAL(gdn_journal_put(txn, "", 0, "{}", 2, 0, 0, NULL), GDN_EINVALID);
    CU_ASSERT_EQUAL(gdn_journal_put(txn, longest, GDN_JOURNAL_KEY_MAX + 1, "{}", 2, 0, 0, NULL),
                    GDN_EINVALID);
    CU_ASSERT_EQUAL(gdn_journal_delete(txn, "", 0), GDN_EINVALID);
    CU_ASSERT_EQUAL(gdn_journal_get(txn, longest, GDN_JOURNAL_KEY_MAX + 1, &record), GDN_ENOTFOUND);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), 0);

    /* The longest key allowed is stored, marked and read back. */
    longest[GDN_JOURNAL_KEY_MAX] = '\0';

    uint64_t version = put_text(txn, longest, "{}", 0, 0);

    check_record(txn, longest, "{}", version, 0);
    CU_ASSERT_EQUAL(gdn_journal_dirty_clear(txn, longest, version), 0);
    commit_ok(txn);

    /* A read transaction cannot write. */
    gdn_journal_reader_t *reader = NULL;

    CU_ASSERT_EQUAL_FATAL(gdn_journal_reader_open(journal, &reader), 0);
    CU_ASSERT_EQUAL_FATAL(gdn_journal_read_begin(reader, &txn), 0);
    CU_ASSERT_EQUAL(gdn_journal_put(txn, "task:r", 6, "{}", 2, 0, 0, NULL), GDN_EINVALID);
    CU_ASSERT_EQUAL(gdn_journal_delete(txn, longest, GDN_JOURNAL_KEY_MAX), GDN_EINVALID);
    check_record(txn, longest, "{}", version, 0);
    gdn_journal_read_end(reader);
    gdn_journal_reader_close(reader);
    env_close(&env);
}

static int64_t marked_us_of(gdn_journal_txn_t *txn, const char *key)
{
    gdn_journal_record_t record;

    CU_ASSERT_EQUAL_FATAL(gdn_journal_get(txn, key, strlen(key), &record), 0);
    return record.marked_us;
}

static void test_journal__upload_mark_time_follows_marking_puts(void)
{
    struct journal_env env;
    gdn_journal_t *journal = env_open(&env, TEST_MAP_MB);
    gdn_journal_txn_t *txn = begin_write(journal);
    int64_t before = gdn_clock_now_us();

    put_text(txn, "worker:w", "{\"n\":1}", 0, 0);

    int64_t after = gdn_clock_now_us();
    int64_t marked = marked_us_of(txn, "worker:w");

    CU_ASSERT(marked >= before && marked <= after);

    /* A local-only write keeps the time of the last mark; a new local-only record has none. */
    uint64_t v_local = put_text(txn, "worker:w", "{\"n\":2}", 0, GDN_JOURNAL_PUT_LOCAL_ONLY);

    check_record(txn, "worker:w", "{\"n\":2}", v_local, 0);
    CU_ASSERT_EQUAL(marked_us_of(txn, "worker:w"), marked);
    put_text(txn, "worker:quiet", "{}", 0, GDN_JOURNAL_PUT_LOCAL_ONLY);
    CU_ASSERT_EQUAL(marked_us_of(txn, "worker:quiet"), 0);
    commit_ok(txn);

    /* The time survives a reopen, and a later marking put sets it anew. */
    journal = env_reopen(&env, TEST_MAP_MB);
    txn = begin_write(journal);
    CU_ASSERT_EQUAL(marked_us_of(txn, "worker:w"), marked);
    put_text(txn, "worker:quiet", "{}", 0, 0);
    CU_ASSERT(marked_us_of(txn, "worker:quiet") >= after);
    commit_ok(txn);
    env_close(&env);
}

static void test_journal__clear_empties_all_but_schema_and_sequence(void)
{
    struct journal_env env;
    gdn_journal_txn_t *txn = open_with_order_fixture(&env);

    put_text(txn, "task:a", "{}", 0, 0);
    put_text(txn, "task:a", "{\"n\":2}", 0, 0);

    uint64_t v_last = put_text(txn, "task:b", "{}", 0, GDN_JOURNAL_PUT_LOCAL_ONLY);

    CU_ASSERT_EQUAL(gdn_journal_counter_add(txn, "status:pending", 4), 0);
    CU_ASSERT_EQUAL(gdn_journal_counter_add(txn, "status:failed", 1), 0);
    CU_ASSERT_EQUAL(gdn_journal_record_count(txn), 2);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), 2);
    commit_ok(txn);

    txn = begin_write(env.journal);
    CU_ASSERT_EQUAL(gdn_journal_clear(txn), 0);
    commit_ok(txn);

    txn = begin_write(env_reopen(&env, TEST_MAP_MB));

    gdn_journal_pending_t got[ORDER_COUNT];

    CU_ASSERT_EQUAL(gdn_journal_record_count(txn), 0);
    check_log(txn, NULL, 0);
    CU_ASSERT_EQUAL(gdn_journal_pending_list(txn, NULL, NULL, got, ORDER_COUNT), 0);
    CU_ASSERT_EQUAL(gdn_journal_pending_list(txn, "ab", NULL, got, ORDER_COUNT), 0);
    CU_ASSERT_EQUAL(read_counter(txn, "status:pending"), 0);
    CU_ASSERT_EQUAL(read_counter(txn, "status:failed"), 0);
    check_absent(txn, "task:a");

    /* The emptied log takes new changes, whose versions go on from the sequence. */
    uint64_t v_new = put_text(txn, "task:c", "{}", 0, 0);
    const struct change fresh[] = {{"task:c", v_new, 0}};

    CU_ASSERT(v_new > v_last);
    CU_ASSERT_EQUAL(gdn_journal_record_count(txn), 1);
    check_log(txn, fresh, 1);
    commit_ok(txn);
    env_close(&env);
}

/* Checks that `key` of `index` holds exactly `value` (`len` bytes). */
static void check_index_value(gdn_journal_txn_t *txn, gdn_journal_index_t index, const void *key,
                              size_t key_len, const void *value, size_t len)
{
    const void *got = NULL;
    size_t got_len = 12345;
    int rc = gdn_journal_index_get(txn, index, key, key_len, &got, &got_len);

    CU_ASSERT_EQUAL(rc, 0);
    if (rc != 0)
        return;
    CU_ASSERT_EQUAL(got_len, len);
    CU_ASSERT(got_len == len && (len == 0 || memcmp(got, value, len) == 0));
}

static void check_index_absent(gdn_journal_txn_t *txn, gdn_journal_index_t index, const void *key,
                               size_t key_len)
{
    const void *got = NULL;
    size_t got_len = 0;

    CU_ASSERT_EQUAL(gdn_journal_index_get(txn, index, key, key_len, &got, &got_len), GDN_ENOTFOUND);
}

static void test_journal__index_entries_are_put_replaced_and_deleted(void)
{
    struct journal_env env;
    gdn_journal_t *journal = env_open(&env, TEST_MAP_MB);
    gdn_journal_txn_t *txn = begin_write(journal);

    /* Keys are bytes: a NUL inside a key and a 0xff byte are part of it. */
    static const unsigned char binary_key[] = {'w', 0, 0xff, 0x01};
    static const unsigned char value[] = {0, 1, 2, 0xfe};

    for (int i = 0; i < GDN_JOURNAL_INDEX_COUNT; i++) {
        char text[16];

        snprintf(text, sizeof(text), "value-%d", i);
        CU_ASSERT_EQUAL(
            gdn_journal_index_put(txn, (gdn_journal_index_t)i, "same", 4, text, strlen(text)), 0);
    }
    CU_ASSERT_EQUAL(gdn_journal_index_put(txn, GDN_JOURNAL_HELD, binary_key, sizeof(binary_key),
                                          value, sizeof(value)),
                    0);
    CU_ASSERT_EQUAL(gdn_journal_index_put(txn, GDN_JOURNAL_DEADLINES, "empty", 5, "", 0), 0);
    commit_ok(txn);

    /* Each index keeps its own entries, and they survive a reopen. */
    journal = env_reopen(&env, TEST_MAP_MB);
    txn = begin_write(journal);
    for (int i = 0; i < GDN_JOURNAL_INDEX_COUNT; i++) {
        char text[16];

        snprintf(text, sizeof(text), "value-%d", i);
        check_index_value(txn, (gdn_journal_index_t)i, "same", 4, text, strlen(text));
    }
    check_index_value(txn, GDN_JOURNAL_HELD, binary_key, sizeof(binary_key), value, sizeof(value));
    check_index_absent(txn, GDN_JOURNAL_HELD, binary_key, 1);
    check_index_absent(txn, GDN_JOURNAL_HELD, binary_key, 3);
    check_index_absent(txn, GDN_JOURNAL_DEADLINES, binary_key, sizeof(binary_key));
    check_index_value(txn, GDN_JOURNAL_DEADLINES, "empty", 5, "", 0);
    check_index_absent(txn, GDN_JOURNAL_IDEMPOTENCY, "sam", 3);

    /* A put replaces the value; a delete removes the key from its own index only. */
    CU_ASSERT_EQUAL(gdn_journal_index_put(txn, GDN_JOURNAL_IDEMPOTENCY, "same", 4, "v2", 2), 0);
    check_index_value(txn, GDN_JOURNAL_IDEMPOTENCY, "same", 4, "v2", 2);
    CU_ASSERT_EQUAL(gdn_journal_index_delete(txn, GDN_JOURNAL_IDEMPOTENCY, "same", 4), 0);
    check_index_absent(txn, GDN_JOURNAL_IDEMPOTENCY, "same", 4);
    CU_ASSERT_EQUAL(gdn_journal_index_delete(txn, GDN_JOURNAL_IDEMPOTENCY, "same", 4),
                    GDN_ENOTFOUND);
    check_index_value(txn, GDN_JOURNAL_BY_STATUS, "same", 4, "value-3", 7);

    /* Index entries are not records and are never marked for upload. */
    CU_ASSERT_EQUAL(gdn_journal_record_count(txn), 0);
    CU_ASSERT_EQUAL(gdn_journal_dirty_count(txn), 0);
    commit_ok(txn);

    /* An aborted transaction leaves its index changes out. */
    txn = begin_write(journal);
    CU_ASSERT_EQUAL(gdn_journal_index_put(txn, GDN_JOURNAL_HELD, "gone", 4, "", 0), 0);
    CU_ASSERT_EQUAL(gdn_journal_index_delete(txn, GDN_JOURNAL_BY_STATUS, "same", 4), 0);
    gdn_journal_abort(txn);
    txn = begin_write(journal);
    check_index_absent(txn, GDN_JOURNAL_HELD, "gone", 4);
    check_index_value(txn, GDN_JOURNAL_BY_STATUS, "same", 4, "value-3", 7);
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_journal__index_refuses_bad_keys_indexes_and_read_writes(void)
{
    struct journal_env env;
    gdn_journal_t *journal = env_open(&env, TEST_MAP_MB);
    gdn_journal_txn_t *txn = begin_write(journal);
    char longest[GDN_JOURNAL_KEY_MAX + 1];
    const void *value = NULL;
    size_t value_len = 0;

    memset(longest, 'k', sizeof(longest));
    CU_ASSERT_EQUAL(gdn_journal_index_put(txn, GDN_JOURNAL_HELD, "", 0, "v", 1), GDN_EINVALID);
    CU_ASSERT_EQUAL(gdn_journal_index_put(txn, GDN_JOURNAL_HELD, longest, sizeof(longest), "v", 1),
                    GDN_EINVALID);
    CU_ASSERT_EQUAL(gdn_journal_index_put(txn, GDN_JOURNAL_INDEX_COUNT, "k", 1, "v", 1),
                    GDN_EINVALID);
    CU_ASSERT_EQUAL(gdn_journal_index_put(txn, (gdn_journal_index_t)-1, "k", 1, "v", 1),
                    GDN_EINVALID);
    CU_ASSERT_EQUAL(gdn_journal_index_delete(txn, GDN_JOURNAL_HELD, "", 0), GDN_EINVALID);
    CU_ASSERT_EQUAL(gdn_journal_index_delete(txn, GDN_JOURNAL_INDEX_COUNT, "k", 1), GDN_EINVALID);
    CU_ASSERT_EQUAL(
        gdn_journal_index_get(txn, GDN_JOURNAL_HELD, longest, sizeof(longest), &value, &value_len),
        GDN_ENOTFOUND);
    CU_ASSERT_EQUAL(gdn_journal_index_get(txn, GDN_JOURNAL_INDEX_COUNT, "k", 1, &value, &value_len),
                    GDN_ENOTFOUND);
    CU_ASSERT_EQUAL(gdn_journal_index_scan(txn, GDN_JOURNAL_INDEX_COUNT, NULL, 0, 0, NULL, NULL),
                    GDN_EINVALID);

    /* The longest key allowed is stored and read back. */
    CU_ASSERT_EQUAL(
        gdn_journal_index_put(txn, GDN_JOURNAL_HELD, longest, GDN_JOURNAL_KEY_MAX, "v", 1), 0);
    check_index_value(txn, GDN_JOURNAL_HELD, longest, GDN_JOURNAL_KEY_MAX, "v", 1);
    commit_ok(txn);

    /* A read transaction sees the entries and cannot change them. */
    gdn_journal_reader_t *reader = NULL;

    CU_ASSERT_EQUAL_FATAL(gdn_journal_reader_open(journal, &reader), 0);
    CU_ASSERT_EQUAL_FATAL(gdn_journal_read_begin(reader, &txn), 0);
    check_index_value(txn, GDN_JOURNAL_HELD, longest, GDN_JOURNAL_KEY_MAX, "v", 1);
    CU_ASSERT_EQUAL(gdn_journal_index_put(txn, GDN_JOURNAL_HELD, "k", 1, "v", 1), GDN_EINVALID);
    CU_ASSERT_EQUAL(gdn_journal_index_delete(txn, GDN_JOURNAL_HELD, longest, GDN_JOURNAL_KEY_MAX),
                    GDN_EINVALID);
    check_index_value(txn, GDN_JOURNAL_HELD, longest, GDN_JOURNAL_KEY_MAX, "v", 1);
    gdn_journal_read_end(reader);
    gdn_journal_reader_close(reader);
    env_close(&env);
}

/* Collects the keys an index scan visits, as printable text, and stops after `stop_after`. */
struct index_log {
    char keys[256];
    size_t len;
    int visited;
    int stop_after;
};

/* Appends one key to the log: bytes below 0x20 or above 0x7e are written as `%XX`. */
static void log_index_key(struct index_log *log, const unsigned char *key, size_t key_len)
{
    char text[64];
    size_t used = 0;

    for (size_t i = 0; i < key_len && used + 4 < sizeof(text); i++) {
        if (key[i] < 0x20 || key[i] > 0x7e)
            used += (size_t)snprintf(text + used, sizeof(text) - used, "%%%02X", key[i]);
        else
            text[used++] = (char)key[i];
    }
    text[used] = '\0';
    if (log->len + used + 2 < sizeof(log->keys)) {
        if (log->len > 0)
            log->keys[log->len++] = ' ';
        memcpy(log->keys + log->len, text, used + 1);
        log->len += used;
    }
}

static int on_index_entry(void *arg, const void *key, size_t key_len, const void *value,
                          size_t value_len)
{
    struct index_log *log = arg;

    /* Every value of the scan fixture is its key's first byte. */
    CU_ASSERT(value_len == 1 && key_len > 0 && *(const char *)value == *(const char *)key);
    log_index_key(log, key, key_len);
    log->visited++;
    return log->visited == log->stop_after ? 9 : 0;
}

/* Scans `index` from `start` and checks the keys visited. */
static void check_index_scan(gdn_journal_txn_t *txn, gdn_journal_index_t index, const char *start,
                             size_t start_len, int after, const char *expected)
{
    struct index_log log = {.stop_after = -1};

    CU_ASSERT_EQUAL(
        gdn_journal_index_scan(txn, index, start, start_len, after, on_index_entry, &log), 0);
    if (strcmp(log.keys, expected) != 0)
        fprintf(stderr, "\nscan from %.*s (after %d) gave \"%s\", wanted \"%s\"\n", (int)start_len,
                start != NULL ? start : "", after, log.keys, expected);
    CU_ASSERT_STRING_EQUAL(log.keys, expected);
}

static void test_journal__index_scan_starts_at_or_after_a_key(void)
{
    struct journal_env env;
    gdn_journal_t *journal = env_open(&env, TEST_MAP_MB);
    gdn_journal_txn_t *txn = begin_write(journal);
    static const struct {
        const char *key;
        size_t len;
    } keys[] = {{"c", 1}, {"b\0x", 3}, {"a", 1}, {"ba", 2}, {"\xff", 1}, {"b", 1}};

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        CU_ASSERT_EQUAL(gdn_journal_index_put(txn, GDN_JOURNAL_DEADLINES, keys[i].key, keys[i].len,
                                              keys[i].key, 1),
                        0);
    }

    /* Another index's entries are never visited. */
    CU_ASSERT_EQUAL(gdn_journal_index_put(txn, GDN_JOURNAL_HELD, "bb", 2, "b", 1), 0);
    commit_ok(txn);

    txn = begin_write(journal);

    /* Keys compare as bytes: a key sorts right after its prefixes, 0xff last. */
    check_index_scan(txn, GDN_JOURNAL_DEADLINES, NULL, 0, 0, "a b b%00x ba c %FF");
    check_index_scan(txn, GDN_JOURNAL_DEADLINES, NULL, 0, 1, "a b b%00x ba c %FF");
    check_index_scan(txn, GDN_JOURNAL_DEADLINES, "b", 1, 0, "b b%00x ba c %FF");
    check_index_scan(txn, GDN_JOURNAL_DEADLINES, "b", 1, 1, "b%00x ba c %FF");
    check_index_scan(txn, GDN_JOURNAL_DEADLINES, "b\0x", 3, 1, "ba c %FF");

    /* A start key that is not there starts at the next one, with or without `after`. */
    check_index_scan(txn, GDN_JOURNAL_DEADLINES, "bb", 2, 0, "c %FF");
    check_index_scan(txn, GDN_JOURNAL_DEADLINES, "bb", 2, 1, "c %FF");
    check_index_scan(txn, GDN_JOURNAL_DEADLINES, "\0", 1, 1, "a b b%00x ba c %FF");
    check_index_scan(txn, GDN_JOURNAL_DEADLINES, "\xff", 1, 1, "");
    check_index_scan(txn, GDN_JOURNAL_DEADLINES, "\xff\xff", 2, 0, "");
    check_index_scan(txn, GDN_JOURNAL_HELD, NULL, 0, 0, "bb");
    check_index_scan(txn, GDN_JOURNAL_IDEMPOTENCY, NULL, 0, 0, "");

    /* A callback's non-zero result stops the scan and is returned. */
    struct index_log log = {.stop_after = 2};

    CU_ASSERT_EQUAL(
        gdn_journal_index_scan(txn, GDN_JOURNAL_DEADLINES, "b", 1, 0, on_index_entry, &log), 9);
    CU_ASSERT_STRING_EQUAL(log.keys, "b b%00x");

    /* Entries put or deleted in the transaction are seen by its scans. */
    CU_ASSERT_EQUAL(gdn_journal_index_delete(txn, GDN_JOURNAL_DEADLINES, "ba", 2), 0);
    CU_ASSERT_EQUAL(gdn_journal_index_put(txn, GDN_JOURNAL_DEADLINES, "bz", 2, "b", 1), 0);
    check_index_scan(txn, GDN_JOURNAL_DEADLINES, "b", 1, 1, "b%00x bz c %FF");
    gdn_journal_abort(txn);
    env_close(&env);
}

static void test_journal__clear_empties_secondary_indexes(void)
{
    struct journal_env env;
    gdn_journal_t *journal = env_open(&env, TEST_MAP_MB);
    gdn_journal_txn_t *txn = begin_write(journal);

    for (int i = 0; i < GDN_JOURNAL_INDEX_COUNT; i++) {
        CU_ASSERT_EQUAL(gdn_journal_index_put(txn, (gdn_journal_index_t)i, "k1", 2, "k", 1), 0);
        CU_ASSERT_EQUAL(gdn_journal_index_put(txn, (gdn_journal_index_t)i, "k2", 2, "k", 1), 0);
    }
    commit_ok(txn);

    txn = begin_write(journal);
    CU_ASSERT_EQUAL(gdn_journal_clear(txn), 0);
    commit_ok(txn);

    txn = begin_write(env_reopen(&env, TEST_MAP_MB));
    for (int i = 0; i < GDN_JOURNAL_INDEX_COUNT; i++) {
        check_index_scan(txn, (gdn_journal_index_t)i, NULL, 0, 0, "");
        check_index_absent(txn, (gdn_journal_index_t)i, "k1", 2);
    }

    /* The indexes work as before once emptied. */
    CU_ASSERT_EQUAL(gdn_journal_index_put(txn, GDN_JOURNAL_HELD, "k3", 2, "k", 1), 0);
    check_index_scan(txn, GDN_JOURNAL_HELD, NULL, 0, 0, "k3");
    gdn_journal_abort(txn);
    env_close(&env);
}

static CU_TestInfo journal_tests[] = {
    {"records, versions, indexes, the change log and counters survive a reopen",
     test_journal__state_survives_reopen},
    {"pending entries list by priority, then age, then id, per role and across roles",
     test_journal__claim_order_across_priorities_and_roles},
    {"a role that prefixes another lists only its own entries",
     test_journal__role_prefix_does_not_leak},
    {"an after cursor continues a listing exactly", test_journal__after_cursor_continues_listing},
    {"removing a pending entry clears both indexes and absent entries are fine",
     test_journal__pending_remove_clears_both_indexes},
    {"per-role depths and oldest ages follow the pending index and survive a restart",
     test_journal__role_depths_follow_the_pending_index},
    {"a journal written before the per-role counts gets them counted at open",
     test_journal__older_journals_get_their_depths_counted_at_open},
    {"the dirty span gives the oldest and newest logged change",
     test_journal__dirty_span_gives_oldest_and_newest_change},
    {"the pending index refuses entries with a bad id or role",
     test_journal__pending_index_refuses_bad_entries},
    {"the change log holds one entry per put and delete, none for local-only puts",
     test_journal__change_log_tracks_every_change},
    {"two puts of one key log two changes and clearing the first leaves the second",
     test_journal__two_puts_of_one_key_log_two_changes},
    {"clearing with a version of another key fails and removes nothing",
     test_journal__clear_refuses_a_version_of_another_key},
    {"the change log survives a reopen and later versions still grow",
     test_journal__change_log_survives_reopen},
    {"changes of many keys list in commit order, not key order",
     test_journal__change_log_lists_in_commit_order},
    {"the change log lists by version, page by page after a version",
     test_journal__change_log_pages_by_version},
    {"an aborted write transaction leaves nothing", test_journal__aborted_write_leaves_nothing},
    {"a full map refuses the write, keeps committed data and grows on reopen",
     test_journal__full_map_refuses_write_and_keeps_data},
    {"the reserve is reached before the map is full, takes writes, and is left when space frees",
     test_journal__the_reserve_is_reached_before_the_map_is_full},
    {"opening a missing directory or a path through a file fails with -errno",
     test_journal__open_refuses_missing_directory},
    {"opening a read-only directory fails with -EACCES",
     test_journal__open_refuses_unwritable_directory},
    {"opening a garbage data file fails without a crash", test_journal__open_refuses_garbage_file},
    {"a read sees the snapshot it began with", test_journal__reader_sees_a_snapshot},
    {"a scan returns the keys with a prefix in key order",
     test_journal__scan_returns_prefix_matches_in_order},
    {"records refuse empty and over-long keys and writes in reads",
     test_journal__records_refuse_bad_keys},
    {"a marking put stamps its time and a local-only put keeps it",
     test_journal__upload_mark_time_follows_marking_puts},
    {"clearing empties records, indexes, marks and counters but keeps the sequence",
     test_journal__clear_empties_all_but_schema_and_sequence},
    {"secondary index entries are put, replaced and deleted, each index on its own",
     test_journal__index_entries_are_put_replaced_and_deleted},
    {"secondary indexes refuse bad keys, unknown indexes and writes in reads",
     test_journal__index_refuses_bad_keys_indexes_and_read_writes},
    {"an index scan starts at its key, or after it, in byte order",
     test_journal__index_scan_starts_at_or_after_a_key},
    {"clearing empties the secondary indexes", test_journal__clear_empties_secondary_indexes},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo gdn_test_suites[] = {
    {.pName = "journal", .pTests = journal_tests},
    CU_SUITE_INFO_NULL,
};
