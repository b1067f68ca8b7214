/*
 * The LMDB journal. See include/gdn/journal.h for the databases and their keys.
 *
 * This is the only file that includes lmdb.h: LMDB results are translated into gdn codes here,
 * and the LMDB text of the last failure is kept per thread for the caller's log line.
 */
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "gdn/bytes.h"
#include "gdn/error.h"
#include "gdn/journal.h"

/* Bytes of a record value before its JSON: version, expiry, time marked for upload. */
#define RECORD_HEADER 24
/* Bytes of a change-log key: the version of the change, big-endian. */
#define CHANGE_KEY 8
/* Bytes of an index position: claim rank, created time, id. */
#define RANK_LEN (8 + 8 + GDN_JOURNAL_ID_LEN)
/* Longest counter name: "pending:" and a role. */
#define COUNTER_NAME_MAX (8 + GDN_JOURNAL_ROLE_MAX)
/* The longest key a scan may start from: any key of any database. */
#define SEEK_MAX (GDN_JOURNAL_KEY_MAX + 64)

struct gdn_journal {
    MDB_env *env;
    MDB_dbi records;
    MDB_dbi pending;
    MDB_dbi pending_all;
    MDB_dbi dirty;
    MDB_dbi meta;
    MDB_dbi indexes[GDN_JOURNAL_INDEX_COUNT];
    /* The version sequence. Only the writer thread touches it; it is persisted in `meta` by
     * every commit that used it. Numbers taken by an aborted transaction are simply skipped. */
    uint64_t seq;
    /* Whether changes are logged for upload; set before any write transaction. */
    int change_log;
};

struct gdn_journal_txn {
    gdn_journal_t *journal;
    MDB_txn *txn;
    int write;
    int seq_used;
    int untracked; /* a change was not logged: the journal is marked as ahead of any bucket */
};

struct gdn_journal_reader {
    gdn_journal_t *journal;
    MDB_txn *txn; /* kept reset between reads so that its reader slot is reused */
    int active;
    gdn_journal_txn_t handle;
};

static _Thread_local char last_error[160];

const char *gdn_journal_last_error(void)
{
    return last_error;
}

/* Translates an LMDB result into a gdn code and keeps LMDB's text for the caller's log. */
static int translate(int rc, const char *what)
{
    if (rc == MDB_SUCCESS)
        return 0;
    if (rc == MDB_NOTFOUND)
        return GDN_ENOTFOUND;
    snprintf(last_error, sizeof(last_error), "%s: %s", what, mdb_strerror(rc));
    if (rc == MDB_MAP_FULL)
        return GDN_EJOURNAL_FULL;
    if (rc > 0) /* LMDB passes system errors through as positive errno values */
        return -rc;
    return GDN_EJOURNAL;
}

static void decode_record(const MDB_val *value, gdn_journal_record_t *out)
{
    memcpy(&out->version, value->mv_data, 8);
    memcpy(&out->expires_us, (const char *)value->mv_data + 8, 8);
    memcpy(&out->marked_us, (const char *)value->mv_data + 16, 8);
    out->json = (const char *)value->mv_data + RECORD_HEADER;
    out->json_len = value->mv_size - RECORD_HEADER;
}

static int64_t wall_clock_us(void)
{
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

/*
 * The index position of a pending task. Flipping the sign bit maps signed integers onto
 * unsigned ones in the same order; inverting the priority then makes higher priorities sort
 * first under LMDB's plain byte comparison.
 */
static void encode_rank(unsigned char out[RANK_LEN], const gdn_journal_pending_t *entry)
{
    gdn_put_u64be(out, ~((uint64_t)entry->priority ^ UINT64_C(0x8000000000000000)));
    gdn_put_u64be(out + 8, (uint64_t)entry->created_us ^ UINT64_C(0x8000000000000000));
    memcpy(out + 16, entry->id, GDN_JOURNAL_ID_LEN);
}

static void decode_rank(const unsigned char in[RANK_LEN], gdn_journal_pending_t *entry)
{
    entry->priority = (int64_t)(~gdn_get_u64be(in) ^ UINT64_C(0x8000000000000000));
    entry->created_us = (int64_t)(gdn_get_u64be(in + 8) ^ UINT64_C(0x8000000000000000));
    memcpy(entry->id, in + 16, GDN_JOURNAL_ID_LEN);
    entry->id[GDN_JOURNAL_ID_LEN] = '\0';
}

static int add_depth(gdn_journal_txn_t *txn, const char *role, int64_t delta);

/*
 * Journals written before the per-role counts existed have claimable tasks but no counts: the
 * first open counts them once, in the transaction that opens the databases, and leaves a mark.
 */
static int count_depths_once(gdn_journal_t *journal, MDB_txn *mdb_txn)
{
    gdn_journal_txn_t txn = {.journal = journal, .txn = mdb_txn, .write = 1};
    MDB_val mark = {.mv_size = 6, .mv_data = "depths"};
    MDB_val v;
    int rc = mdb_get(mdb_txn, journal->meta, &mark, &v);

    if (rc != MDB_NOTFOUND)
        return translate(rc, "get depths mark");

    MDB_cursor *cursor;

    rc = mdb_cursor_open(mdb_txn, journal->pending, &cursor);
    if (rc != MDB_SUCCESS)
        return translate(rc, "open cursor");

    MDB_val k;
    char role[GDN_JOURNAL_ROLE_MAX + 1] = "";
    int64_t run = 0;
    int result = 0;

    rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
    for (; rc == MDB_SUCCESS && result == 0; rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
        const char *key = k.mv_data;
        size_t role_len = strnlen(key, k.mv_size);

        if (role_len == 0 || role_len > GDN_JOURNAL_ROLE_MAX || role_len == k.mv_size)
            continue;
        if (run > 0 && (strlen(role) != role_len || memcmp(role, key, role_len) != 0)) {
            result = add_depth(&txn, role, run);
            run = 0;
        }
        memcpy(role, key, role_len);
        role[role_len] = '\0';
        run++;
    }
    mdb_cursor_close(cursor);
    if (result == 0 && rc != MDB_NOTFOUND)
        result = translate(rc, "count pending");
    if (result == 0 && run > 0)
        result = add_depth(&txn, role, run);
    v.mv_size = 0;
    v.mv_data = NULL;
    if (result == 0)
        result = translate(mdb_put(mdb_txn, journal->meta, &mark, &v, 0), "put depths mark");
    return result;
}

static int open_databases(gdn_journal_t *journal)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(journal->env, NULL, 0, &txn);

    if (rc != MDB_SUCCESS)
        return translate(rc, "mdb_txn_begin");
    struct {
        const char *name;
        MDB_dbi *dbi;
    } databases[] = {
        {"records", &journal->records},
        {"pending", &journal->pending},
        {"pending_all", &journal->pending_all},
        {"dirty", &journal->dirty},
        {"meta", &journal->meta},
        {"deadlines", &journal->indexes[GDN_JOURNAL_DEADLINES]},
        {"held", &journal->indexes[GDN_JOURNAL_HELD]},
        {"idempotency", &journal->indexes[GDN_JOURNAL_IDEMPOTENCY]},
        {"by_status", &journal->indexes[GDN_JOURNAL_BY_STATUS]},
    };

    for (size_t i = 0; i < sizeof(databases) / sizeof(databases[0]); i++) {
        rc = mdb_dbi_open(txn, databases[i].name, MDB_CREATE, databases[i].dbi);
        if (rc != MDB_SUCCESS)
            goto Error;
    }

    MDB_val key = {.mv_size = 6, .mv_data = "schema"};
    MDB_val value;
    uint32_t schema = GDN_JOURNAL_SCHEMA;

    rc = mdb_get(txn, journal->meta, &key, &value);
    if (rc == MDB_NOTFOUND) {
        value.mv_size = sizeof(schema);
        value.mv_data = &schema;
        rc = mdb_put(txn, journal->meta, &key, &value, 0);
        if (rc != MDB_SUCCESS)
            goto Error;
    } else if (rc != MDB_SUCCESS) {
        goto Error;
    } else if (value.mv_size != sizeof(schema) || memcmp(value.mv_data, &schema, 4) != 0) {
        mdb_txn_abort(txn);
        snprintf(last_error, sizeof(last_error), "journal schema differs from version %d",
                 GDN_JOURNAL_SCHEMA);
        return GDN_ESCHEMA;
    }

    key.mv_size = 3;
    key.mv_data = "seq";
    rc = mdb_get(txn, journal->meta, &key, &value);
    if (rc == MDB_SUCCESS && value.mv_size == sizeof(uint64_t))
        memcpy(&journal->seq, value.mv_data, sizeof(uint64_t));
    else if (rc != MDB_NOTFOUND && rc != MDB_SUCCESS)
        goto Error;

    rc = count_depths_once(journal, txn);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }

    rc = mdb_txn_commit(txn);
    return translate(rc, "mdb_txn_commit");

Error:
    mdb_txn_abort(txn);
    return translate(rc, "open databases");
}

/*
 * Refuses a data file shorter than the pages its meta page says are in use. LMDB maps the file
 * and trusts the meta page, so a journal truncated by a full disk, a bad copy or a restored
 * partial backup would open, and the first read past the end of the file would kill the
 * process with SIGBUS. A clear error at open is what lets the caller stop with its exit code.
 */
static int check_file_size(MDB_env *env)
{
    MDB_envinfo info;
    MDB_stat stat;
    mdb_filehandle_t fd;
    struct stat st;
    int rc = mdb_env_info(env, &info);

    if (rc == MDB_SUCCESS)
        rc = mdb_env_stat(env, &stat);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_get_fd(env, &fd);
    if (rc != MDB_SUCCESS)
        return translate(rc, "mdb_env_info");
    if (fstat(fd, &st) != 0)
        return translate(errno, "fstat data.mdb");

    uint64_t needed = ((uint64_t)info.me_last_pgno + 1) * stat.ms_psize;

    if ((uint64_t)st.st_size < needed) {
        snprintf(last_error, sizeof(last_error),
                 "data.mdb is truncated: %lld bytes, its pages need %llu", (long long)st.st_size,
                 (unsigned long long)needed);
        return GDN_EJOURNAL;
    }
    return 0;
}

int gdn_journal_open(gdn_journal_t **out, const char *dir, size_t map_mb, unsigned max_readers)
{
    gdn_journal_t *journal = calloc(1, sizeof(*journal));
    int rc;

    *out = NULL;
    if (journal == NULL)
        return -ENOMEM;
    rc = mdb_env_create(&journal->env);
    if (rc != MDB_SUCCESS) {
        free(journal);
        return translate(rc, "mdb_env_create");
    }
    rc = mdb_env_set_mapsize(journal->env, (size_t)map_mb << 20);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_set_maxdbs(journal->env, 16);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_set_maxreaders(journal->env, max_readers);
    if (rc != MDB_SUCCESS) {
        rc = translate(rc, "mdb_env_set");
        goto Error;
    }

    /* MDB_NOTLS ties read transactions to reader objects rather than threads, so a loop thread
     * can keep one reset transaction and renew it for each request. Durability stays on: no
     * MDB_NOSYNC, no MDB_MAPASYNC. */
    rc = mdb_env_open(journal->env, dir, MDB_NOTLS, 0640);
    if (rc != MDB_SUCCESS) {
        rc = translate(rc, "mdb_env_open");
        goto Error;
    }

    rc = check_file_size(journal->env);
    if (rc != 0)
        goto Error;

    int dead = 0;

    mdb_reader_check(journal->env, &dead);
    journal->change_log = 1;
    rc = open_databases(journal);
    if (rc != 0)
        goto Error;
    *out = journal;
    return 0;

Error:
    mdb_env_close(journal->env);
    free(journal);
    return rc;
}

void gdn_journal_close(gdn_journal_t *journal)
{
    if (journal == NULL)
        return;
    mdb_env_close(journal->env);
    free(journal);
}

int gdn_journal_write_begin(gdn_journal_t *journal, gdn_journal_txn_t **out)
{
    gdn_journal_txn_t *txn = calloc(1, sizeof(*txn));
    int rc;

    *out = NULL;
    if (txn == NULL)
        return -ENOMEM;
    rc = mdb_txn_begin(journal->env, NULL, 0, &txn->txn);
    if (rc != MDB_SUCCESS) {
        free(txn);
        return translate(rc, "mdb_txn_begin");
    }
    txn->journal = journal;
    txn->write = 1;
    *out = txn;
    return 0;
}

int gdn_journal_commit(gdn_journal_txn_t *txn)
{
    int rc = MDB_SUCCESS;

    if (txn->seq_used) {
        MDB_val key = {.mv_size = 3, .mv_data = "seq"};
        MDB_val value = {.mv_size = sizeof(uint64_t), .mv_data = &txn->journal->seq};

        rc = mdb_put(txn->txn, txn->journal->meta, &key, &value, 0);
    }
    if (rc == MDB_SUCCESS && txn->untracked) {
        MDB_val key = {.mv_size = 9, .mv_data = "untracked"};
        MDB_val value = {.mv_size = 1, .mv_data = "1"};

        rc = mdb_put(txn->txn, txn->journal->meta, &key, &value, 0);
    }
    if (rc == MDB_SUCCESS)
        rc = mdb_txn_commit(txn->txn);
    else
        mdb_txn_abort(txn->txn);
    free(txn);
    return translate(rc, "mdb_txn_commit");
}

void gdn_journal_abort(gdn_journal_txn_t *txn)
{
    if (txn == NULL)
        return;
    mdb_txn_abort(txn->txn);
    free(txn);
}

int gdn_journal_reader_open(gdn_journal_t *journal, gdn_journal_reader_t **out)
{
    gdn_journal_reader_t *reader = calloc(1, sizeof(*reader));

    *out = reader;
    if (reader == NULL)
        return -ENOMEM;
    reader->journal = journal;
    reader->handle.journal = journal;
    return 0;
}

void gdn_journal_reader_close(gdn_journal_reader_t *reader)
{
    if (reader == NULL)
        return;
    if (reader->txn != NULL)
        mdb_txn_abort(reader->txn);
    free(reader);
}

int gdn_journal_read_begin(gdn_journal_reader_t *reader, gdn_journal_txn_t **out)
{
    int rc;

    *out = NULL;
    if (reader->active)
        return -EBUSY;
    if (reader->txn == NULL)
        rc = mdb_txn_begin(reader->journal->env, NULL, MDB_RDONLY, &reader->txn);
    else
        rc = mdb_txn_renew(reader->txn);
    if (rc != MDB_SUCCESS) {
        if (reader->txn != NULL) {
            mdb_txn_abort(reader->txn);
            reader->txn = NULL;
        }
        return translate(rc, "begin read");
    }
    reader->active = 1;
    reader->handle.txn = reader->txn;
    *out = &reader->handle;
    return 0;
}

void gdn_journal_read_end(gdn_journal_reader_t *reader)
{
    if (reader == NULL || !reader->active)
        return;
    mdb_txn_reset(reader->txn);
    reader->active = 0;
}

static int key_valid(size_t key_len)
{
    return key_len > 0 && key_len <= GDN_JOURNAL_KEY_MAX;
}

int gdn_journal_get(gdn_journal_txn_t *txn, const char *key, size_t key_len,
                    gdn_journal_record_t *out)
{
    if (!key_valid(key_len))
        return GDN_ENOTFOUND;

    MDB_val k = {.mv_size = key_len, .mv_data = (void *)key};
    MDB_val v;
    int rc = mdb_get(txn->txn, txn->journal->records, &k, &v);

    if (rc != MDB_SUCCESS)
        return translate(rc, "get record");
    if (v.mv_size < RECORD_HEADER) {
        snprintf(last_error, sizeof(last_error), "record shorter than its header");
        return GDN_EJOURNAL;
    }
    decode_record(&v, out);
    return 0;
}

/*
 * Logs a change for upload. The log is keyed by the change's version, which only grows, so
 * every change of a commit lands on the log's last page or two: a log keyed by record key
 * would touch one scattered page per change, and each page costs its share of the fsync.
 */
static int mark_dirty(gdn_journal_txn_t *txn, const char *key, size_t key_len, uint64_t version,
                      int deleted)
{
    if (!txn->journal->change_log) {
        txn->untracked = 1;
        return 0;
    }

    unsigned char seq[CHANGE_KEY];
    MDB_val k = {.mv_size = sizeof(seq), .mv_data = seq};
    MDB_val v = {.mv_size = 1 + key_len, .mv_data = NULL};

    gdn_put_u64be(seq, version);

    int rc = mdb_put(txn->txn, txn->journal->dirty, &k, &v, MDB_RESERVE | MDB_APPEND);

    if (rc == MDB_KEYEXIST) /* not the log's last key: only after a reopen with a reset seq */
        rc = mdb_put(txn->txn, txn->journal->dirty, &k, &v, MDB_RESERVE);
    if (rc != MDB_SUCCESS)
        return translate(rc, "mark dirty");
    ((unsigned char *)v.mv_data)[0] = (unsigned char)deleted;
    memcpy((unsigned char *)v.mv_data + 1, key, key_len);
    return 0;
}

static uint64_t next_version(gdn_journal_txn_t *txn)
{
    txn->seq_used = 1;
    return ++txn->journal->seq;
}

int gdn_journal_put(gdn_journal_txn_t *txn, const char *key, size_t key_len, const char *json,
                    size_t json_len, int64_t expires_us, unsigned flags, uint64_t *version_out)
{
    if (!key_valid(key_len) || !txn->write)
        return GDN_EINVALID;

    int local_only = (flags & GDN_JOURNAL_PUT_LOCAL_ONLY) != 0;
    int64_t marked_us = local_only ? 0 : wall_clock_us();
    MDB_val k = {.mv_size = key_len, .mv_data = (void *)key};
    MDB_val v;
    int rc;

    if (local_only) {
        rc = mdb_get(txn->txn, txn->journal->records, &k, &v);
        if (rc == MDB_SUCCESS && v.mv_size >= RECORD_HEADER)
            memcpy(&marked_us, (const char *)v.mv_data + 16, 8);
        else if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
            return translate(rc, "get record");
    }

    uint64_t version = next_version(txn);

    v.mv_size = RECORD_HEADER + json_len;
    v.mv_data = NULL;
    rc = mdb_put(txn->txn, txn->journal->records, &k, &v, MDB_RESERVE);
    if (rc != MDB_SUCCESS)
        return translate(rc, "put record");
    memcpy(v.mv_data, &version, 8);
    memcpy((char *)v.mv_data + 8, &expires_us, 8);
    memcpy((char *)v.mv_data + 16, &marked_us, 8);
    memcpy((char *)v.mv_data + RECORD_HEADER, json, json_len);

    if (!local_only) {
        rc = mark_dirty(txn, key, key_len, version, 0);
        if (rc != 0)
            return rc;
    }
    if (version_out != NULL)
        *version_out = version;
    return 0;
}

int gdn_journal_delete(gdn_journal_txn_t *txn, const char *key, size_t key_len)
{
    if (!key_valid(key_len) || !txn->write)
        return GDN_EINVALID;

    MDB_val k = {.mv_size = key_len, .mv_data = (void *)key};
    int rc = mdb_del(txn->txn, txn->journal->records, &k, NULL);

    if (rc != MDB_SUCCESS)
        return translate(rc, "delete record");
    return mark_dirty(txn, key, key_len, next_version(txn), 1);
}

void gdn_journal_set_change_log(gdn_journal_t *journal, int enabled)
{
    journal->change_log = enabled;
}

int gdn_journal_untracked(gdn_journal_txn_t *txn, int *untracked)
{
    MDB_val key = {.mv_size = 9, .mv_data = "untracked"};
    MDB_val value;
    int rc = mdb_get(txn->txn, txn->journal->meta, &key, &value);

    *untracked = rc == MDB_SUCCESS;
    return rc == MDB_SUCCESS || rc == MDB_NOTFOUND ? 0 : translate(rc, "get untracked");
}

int gdn_journal_clear_untracked(gdn_journal_txn_t *txn)
{
    MDB_val key = {.mv_size = 9, .mv_data = "untracked"};
    int rc = mdb_del(txn->txn, txn->journal->meta, &key, NULL);

    return rc == MDB_SUCCESS || rc == MDB_NOTFOUND ? 0 : translate(rc, "clear untracked");
}

int gdn_journal_mark(gdn_journal_txn_t *txn, const char *key, size_t key_len, int deleted)
{
    if (!key_valid(key_len) || !txn->write)
        return GDN_EINVALID;
    return mark_dirty(txn, key, key_len, next_version(txn), deleted != 0);
}

int gdn_journal_scan(gdn_journal_txn_t *txn, const char *prefix,
                     int (*cb)(void *arg, const char *key, size_t key_len,
                               const gdn_journal_record_t *record),
                     void *arg)
{
    size_t prefix_len = strlen(prefix);
    MDB_cursor *cursor;
    int rc = mdb_cursor_open(txn->txn, txn->journal->records, &cursor);

    if (rc != MDB_SUCCESS)
        return translate(rc, "open cursor");

    MDB_val k = {.mv_size = prefix_len, .mv_data = (void *)prefix};
    MDB_val v;
    int result = 0;

    rc = mdb_cursor_get(cursor, &k, &v, prefix_len ? MDB_SET_RANGE : MDB_FIRST);
    while (rc == MDB_SUCCESS && result == 0) {
        if (k.mv_size < prefix_len || memcmp(k.mv_data, prefix, prefix_len) != 0)
            break;
        if (v.mv_size >= RECORD_HEADER) {
            gdn_journal_record_t record;

            decode_record(&v, &record);
            result = cb(arg, k.mv_data, k.mv_size, &record);
        }
        rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    if (result != 0)
        return result;
    return rc == MDB_NOTFOUND ? 0 : translate(rc, "scan records");
}

/* Builds the per-role index key: role, a NUL separator (roles hold no NUL), then the rank. */
static size_t role_key(unsigned char *out, const gdn_journal_pending_t *entry)
{
    size_t role_len = strlen(entry->role);

    memcpy(out, entry->role, role_len);
    out[role_len] = '\0';
    encode_rank(out + role_len + 1, entry);
    return role_len + 1 + RANK_LEN;
}

static int entry_valid(const gdn_journal_pending_t *entry)
{
    size_t role_len = strnlen(entry->role, sizeof(entry->role));

    return role_len > 0 && role_len <= GDN_JOURNAL_ROLE_MAX &&
           strnlen(entry->id, sizeof(entry->id)) == GDN_JOURNAL_ID_LEN;
}

/* Moves the per-role count of claimable tasks, the counter "pending:<role>". */
static int add_depth(gdn_journal_txn_t *txn, const char *role, int64_t delta)
{
    char name[COUNTER_NAME_MAX + 1];

    snprintf(name, sizeof(name), "pending:%s", role);
    return gdn_journal_counter_add(txn, name, delta);
}

int gdn_journal_pending_add(gdn_journal_txn_t *txn, const gdn_journal_pending_t *entry)
{
    if (!txn->write || !entry_valid(entry))
        return GDN_EINVALID;

    unsigned char by_role[GDN_JOURNAL_ROLE_MAX + 1 + RANK_LEN];
    unsigned char rank[RANK_LEN];
    MDB_val k = {.mv_size = role_key(by_role, entry), .mv_data = by_role};
    MDB_val v = {.mv_size = 0, .mv_data = NULL};
    int rc = mdb_put(txn->txn, txn->journal->pending, &k, &v, MDB_NOOVERWRITE);

    if (rc == MDB_SUCCESS)
        rc = add_depth(txn, entry->role, 1);
    else if (rc == MDB_KEYEXIST)
        rc = 0;
    else
        return translate(rc, "add pending");
    if (rc != 0)
        return rc;

    encode_rank(rank, entry);
    k.mv_size = RANK_LEN;
    k.mv_data = rank;
    v.mv_size = strlen(entry->role);
    v.mv_data = (void *)entry->role;
    return translate(mdb_put(txn->txn, txn->journal->pending_all, &k, &v, 0), "add pending");
}

int gdn_journal_pending_remove(gdn_journal_txn_t *txn, const gdn_journal_pending_t *entry)
{
    if (!txn->write || !entry_valid(entry))
        return GDN_EINVALID;

    unsigned char by_role[GDN_JOURNAL_ROLE_MAX + 1 + RANK_LEN];
    unsigned char rank[RANK_LEN];
    MDB_val k = {.mv_size = role_key(by_role, entry), .mv_data = by_role};
    int rc = mdb_del(txn->txn, txn->journal->pending, &k, NULL);

    if (rc == MDB_SUCCESS)
        rc = add_depth(txn, entry->role, -1);
    else if (rc == MDB_NOTFOUND)
        rc = 0;
    else
        return translate(rc, "remove pending");
    if (rc != 0)
        return rc;

    encode_rank(rank, entry);
    k.mv_size = RANK_LEN;
    k.mv_data = rank;
    rc = mdb_del(txn->txn, txn->journal->pending_all, &k, NULL);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        return translate(rc, "remove pending");
    return 0;
}

/*
 * Positions `cursor` on the first index key at or after `seek` (after it, if `skip_equal` and
 * the key exists). Returns the LMDB result.
 */
static int seek_after(MDB_cursor *cursor, MDB_val *k, MDB_val *v, int skip_equal)
{
    size_t seek_len = k->mv_size;
    unsigned char seek[SEEK_MAX];

    if (seek_len > sizeof(seek))
        return MDB_BAD_VALSIZE;
    memcpy(seek, k->mv_data, seek_len);

    int rc = mdb_cursor_get(cursor, k, v, MDB_SET_RANGE);

    if (rc == MDB_SUCCESS && skip_equal && k->mv_size == seek_len &&
        memcmp(k->mv_data, seek, seek_len) == 0)
        rc = mdb_cursor_get(cursor, k, v, MDB_NEXT);
    return rc;
}

static int list_one_role(gdn_journal_txn_t *txn, const char *role,
                         const gdn_journal_pending_t *after, gdn_journal_pending_t *out, int max)
{
    size_t role_len = strlen(role);

    if (role_len == 0 || role_len > GDN_JOURNAL_ROLE_MAX || max <= 0)
        return 0;

    unsigned char start[GDN_JOURNAL_ROLE_MAX + 1 + RANK_LEN];
    size_t start_len = role_len + 1;

    memcpy(start, role, role_len);
    start[role_len] = '\0';
    if (after != NULL) {
        encode_rank(start + start_len, after);
        start_len += RANK_LEN;
    }

    MDB_cursor *cursor;
    int rc = mdb_cursor_open(txn->txn, txn->journal->pending, &cursor);

    if (rc != MDB_SUCCESS)
        return translate(rc, "open cursor");

    MDB_val k = {.mv_size = start_len, .mv_data = start};
    MDB_val v;
    int count = 0;

    rc = seek_after(cursor, &k, &v, after != NULL);
    while (rc == MDB_SUCCESS && count < max) {
        if (k.mv_size != role_len + 1 + RANK_LEN || memcmp(k.mv_data, start, role_len + 1) != 0)
            break;
        decode_rank((const unsigned char *)k.mv_data + role_len + 1, &out[count]);
        memcpy(out[count].role, role, role_len + 1);
        count++;
        rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        return translate(rc, "list pending");
    return count;
}

static int list_all_roles(gdn_journal_txn_t *txn, const gdn_journal_pending_t *after,
                          gdn_journal_pending_t *out, int max)
{
    unsigned char start[RANK_LEN];
    MDB_cursor *cursor;
    int rc = mdb_cursor_open(txn->txn, txn->journal->pending_all, &cursor);

    if (rc != MDB_SUCCESS)
        return translate(rc, "open cursor");

    MDB_val k = {.mv_size = 0, .mv_data = start};
    MDB_val v;
    int count = 0;

    if (after != NULL) {
        encode_rank(start, after);
        k.mv_size = RANK_LEN;
        rc = seek_after(cursor, &k, &v, 1);
    } else {
        rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
    }
    while (rc == MDB_SUCCESS && count < max) {
        if (k.mv_size == RANK_LEN && v.mv_size > 0 && v.mv_size <= GDN_JOURNAL_ROLE_MAX) {
            decode_rank(k.mv_data, &out[count]);
            memcpy(out[count].role, v.mv_data, v.mv_size);
            out[count].role[v.mv_size] = '\0';
            count++;
        }
        rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        return translate(rc, "list pending");
    return count;
}

int gdn_journal_pending_list(gdn_journal_txn_t *txn, const char *role,
                             const gdn_journal_pending_t *after, gdn_journal_pending_t *out,
                             int max)
{
    if (role != NULL)
        return list_one_role(txn, role, after, out, max);
    return list_all_roles(txn, after, out, max);
}

int gdn_journal_pending_compare(const gdn_journal_pending_t *a, const gdn_journal_pending_t *b)
{
    unsigned char rank_a[RANK_LEN];
    unsigned char rank_b[RANK_LEN];

    encode_rank(rank_a, a);
    encode_rank(rank_b, b);
    return memcmp(rank_a, rank_b, RANK_LEN);
}

int gdn_journal_dirty_list(gdn_journal_txn_t *txn, uint64_t after_version, gdn_journal_dirty_t *out,
                           int max)
{
    MDB_cursor *cursor;
    int rc = mdb_cursor_open(txn->txn, txn->journal->dirty, &cursor);

    if (rc != MDB_SUCCESS)
        return translate(rc, "open cursor");

    unsigned char seq[CHANGE_KEY];
    MDB_val k = {.mv_size = sizeof(seq), .mv_data = seq};
    MDB_val v;
    int count = 0;

    gdn_put_u64be(seq, after_version);
    rc = seek_after(cursor, &k, &v, 1);
    while (rc == MDB_SUCCESS && count < max) {
        size_t key_len = v.mv_size > 0 ? v.mv_size - 1 : 0;

        if (k.mv_size == CHANGE_KEY && key_valid(key_len)) {
            memcpy(out[count].key, (const char *)v.mv_data + 1, key_len);
            out[count].key[key_len] = '\0';
            out[count].version = gdn_get_u64be(k.mv_data);
            out[count].deleted = ((const unsigned char *)v.mv_data)[0] != 0;
            count++;
        }
        rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        return translate(rc, "list dirty");
    return count;
}

int gdn_journal_dirty_clear(gdn_journal_txn_t *txn, const char *key, uint64_t version)
{
    size_t key_len = strnlen(key, GDN_JOURNAL_KEY_MAX + 1);

    if (!key_valid(key_len) || !txn->write)
        return GDN_EINVALID;

    unsigned char seq[CHANGE_KEY];
    MDB_val k = {.mv_size = sizeof(seq), .mv_data = seq};
    MDB_val v;

    gdn_put_u64be(seq, version);

    int rc = mdb_get(txn->txn, txn->journal->dirty, &k, &v);

    if (rc != MDB_SUCCESS)
        return translate(rc, "get dirty");
    if (v.mv_size != 1 + key_len || memcmp((const char *)v.mv_data + 1, key, key_len) != 0)
        return GDN_ENOTFOUND;
    return translate(mdb_del(txn->txn, txn->journal->dirty, &k, NULL), "clear dirty");
}

int64_t gdn_journal_dirty_count(gdn_journal_txn_t *txn)
{
    MDB_stat stat;
    int rc = mdb_stat(txn->txn, txn->journal->dirty, &stat);

    if (rc != MDB_SUCCESS)
        return translate(rc, "stat dirty");
    return (int64_t)stat.ms_entries;
}

int gdn_journal_dirty_span(gdn_journal_txn_t *txn, uint64_t *oldest, uint64_t *newest)
{
    MDB_cursor *cursor;
    MDB_val k;
    MDB_val v;
    int rc = mdb_cursor_open(txn->txn, txn->journal->dirty, &cursor);

    *oldest = 0;
    *newest = 0;
    if (rc != MDB_SUCCESS)
        return translate(rc, "open cursor");
    rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
    if (rc == MDB_SUCCESS && k.mv_size == CHANGE_KEY)
        *oldest = gdn_get_u64be(k.mv_data);
    if (rc == MDB_SUCCESS)
        rc = mdb_cursor_get(cursor, &k, &v, MDB_LAST);
    if (rc == MDB_SUCCESS && k.mv_size == CHANGE_KEY)
        *newest = gdn_get_u64be(k.mv_data);
    mdb_cursor_close(cursor);
    return rc == MDB_NOTFOUND ? 0 : translate(rc, "dirty span");
}

/*
 * Finds the created time of the oldest claimable task of a role. Within one priority the index
 * is in created order, so the first entry of each priority is its oldest: the walk seeks from
 * one priority to the next instead of reading every entry.
 */
static int oldest_of_role(MDB_cursor *cursor, const char *role, int64_t *oldest)
{
    size_t role_len = strlen(role);
    unsigned char seek[GDN_JOURNAL_ROLE_MAX + 1 + 8];
    MDB_val k = {.mv_size = role_len + 1, .mv_data = seek};
    MDB_val v;

    memcpy(seek, role, role_len + 1);
    *oldest = INT64_MAX;

    int rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);

    while (rc == MDB_SUCCESS) {
        const unsigned char *key = k.mv_data;

        if (k.mv_size != role_len + 1 + RANK_LEN || memcmp(key, seek, role_len + 1) != 0)
            break;

        gdn_journal_pending_t entry;

        decode_rank(key + role_len + 1, &entry);
        if (entry.created_us < *oldest)
            *oldest = entry.created_us;

        /* The next priority: the 8-byte priority prefix plus one, unless it was the last. */
        uint64_t prefix = gdn_get_u64be(key + role_len + 1);

        if (prefix == UINT64_MAX)
            break;
        gdn_put_u64be(seek + role_len + 1, prefix + 1);
        k.mv_size = role_len + 1 + 8;
        k.mv_data = seek;
        rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
    }
    if (*oldest == INT64_MAX)
        *oldest = 0;
    return rc == MDB_SUCCESS || rc == MDB_NOTFOUND ? 0 : translate(rc, "oldest pending");
}

int gdn_journal_pending_roles(gdn_journal_txn_t *txn, gdn_journal_role_depth_t *out, int max)
{
    static const char prefix[] = "count:pending:";
    size_t prefix_len = sizeof(prefix) - 1;
    MDB_cursor *counters;
    MDB_cursor *pending;
    int rc = mdb_cursor_open(txn->txn, txn->journal->meta, &counters);

    if (rc != MDB_SUCCESS)
        return translate(rc, "open cursor");
    rc = mdb_cursor_open(txn->txn, txn->journal->pending, &pending);
    if (rc != MDB_SUCCESS) {
        mdb_cursor_close(counters);
        return translate(rc, "open cursor");
    }

    MDB_val k = {.mv_size = prefix_len, .mv_data = (void *)prefix};
    MDB_val v;
    int count = 0;
    int result = 0;

    rc = mdb_cursor_get(counters, &k, &v, MDB_SET_RANGE);
    while (rc == MDB_SUCCESS && count < max && result == 0) {
        size_t role_len = k.mv_size - prefix_len;

        if (k.mv_size <= prefix_len || memcmp(k.mv_data, prefix, prefix_len) != 0)
            break;
        if (role_len <= GDN_JOURNAL_ROLE_MAX && v.mv_size == sizeof(int64_t)) {
            gdn_journal_role_depth_t *depth = &out[count++];

            memcpy(depth->role, (const char *)k.mv_data + prefix_len, role_len);
            depth->role[role_len] = '\0';
            memcpy(&depth->depth, v.mv_data, sizeof(int64_t));
            result = oldest_of_role(pending, depth->role, &depth->oldest_created_us);
        }
        rc = mdb_cursor_get(counters, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(pending);
    mdb_cursor_close(counters);
    if (result != 0)
        return result;
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        return translate(rc, "list roles");
    return count;
}

int64_t gdn_journal_record_count(gdn_journal_txn_t *txn)
{
    MDB_stat stat;
    int rc = mdb_stat(txn->txn, txn->journal->records, &stat);

    if (rc != MDB_SUCCESS)
        return translate(rc, "stat records");
    return (int64_t)stat.ms_entries;
}

/* Deletes the counters: the meta keys that start with "count:". */
static int clear_counters(gdn_journal_txn_t *txn)
{
    MDB_cursor *cursor;
    int rc = mdb_cursor_open(txn->txn, txn->journal->meta, &cursor);

    if (rc != MDB_SUCCESS)
        return translate(rc, "open cursor");

    for (;;) {
        MDB_val k = {.mv_size = 6, .mv_data = "count:"};
        MDB_val v;

        /* Seek afresh after each deletion rather than trust the cursor's position. */
        rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
        if (rc != MDB_SUCCESS || k.mv_size < 6 || memcmp(k.mv_data, "count:", 6) != 0)
            break;
        rc = mdb_cursor_del(cursor, 0);
        if (rc != MDB_SUCCESS)
            break;
    }
    mdb_cursor_close(cursor);
    return rc == MDB_NOTFOUND || rc == MDB_SUCCESS ? 0 : translate(rc, "clear counters");
}

int gdn_journal_clear(gdn_journal_txn_t *txn)
{
    if (!txn->write)
        return GDN_EINVALID;

    MDB_dbi emptied[4 + GDN_JOURNAL_INDEX_COUNT] = {txn->journal->records, txn->journal->pending,
                                                    txn->journal->pending_all, txn->journal->dirty};

    for (int i = 0; i < GDN_JOURNAL_INDEX_COUNT; i++)
        emptied[4 + i] = txn->journal->indexes[i];

    for (size_t i = 0; i < sizeof(emptied) / sizeof(emptied[0]); i++) {
        int rc = mdb_drop(txn->txn, emptied[i], 0);

        if (rc != MDB_SUCCESS)
            return translate(rc, "clear");
    }
    return clear_counters(txn);
}

static int index_valid(gdn_journal_index_t index, size_t key_len)
{
    return (unsigned)index < GDN_JOURNAL_INDEX_COUNT && key_valid(key_len);
}

int gdn_journal_index_put(gdn_journal_txn_t *txn, gdn_journal_index_t index, const void *key,
                          size_t key_len, const void *value, size_t value_len)
{
    if (!txn->write || !index_valid(index, key_len))
        return GDN_EINVALID;

    MDB_val k = {.mv_size = key_len, .mv_data = (void *)key};
    MDB_val v = {.mv_size = value_len, .mv_data = (void *)value};

    return translate(mdb_put(txn->txn, txn->journal->indexes[index], &k, &v, 0), "index put");
}

int gdn_journal_index_get(gdn_journal_txn_t *txn, gdn_journal_index_t index, const void *key,
                          size_t key_len, const void **value, size_t *value_len)
{
    if (!index_valid(index, key_len))
        return GDN_ENOTFOUND;

    MDB_val k = {.mv_size = key_len, .mv_data = (void *)key};
    MDB_val v;
    int rc = mdb_get(txn->txn, txn->journal->indexes[index], &k, &v);

    if (rc != MDB_SUCCESS)
        return translate(rc, "index get");
    *value = v.mv_data;
    *value_len = v.mv_size;
    return 0;
}

int gdn_journal_index_delete(gdn_journal_txn_t *txn, gdn_journal_index_t index, const void *key,
                             size_t key_len)
{
    if (!txn->write || !index_valid(index, key_len))
        return GDN_EINVALID;

    MDB_val k = {.mv_size = key_len, .mv_data = (void *)key};

    return translate(mdb_del(txn->txn, txn->journal->indexes[index], &k, NULL), "index delete");
}

int gdn_journal_index_scan(gdn_journal_txn_t *txn, gdn_journal_index_t index, const void *start,
                           size_t start_len, int after,
                           int (*cb)(void *arg, const void *key, size_t key_len, const void *value,
                                     size_t value_len),
                           void *arg)
{
    if ((unsigned)index >= GDN_JOURNAL_INDEX_COUNT || start_len > SEEK_MAX)
        return GDN_EINVALID;

    MDB_cursor *cursor;
    int rc = mdb_cursor_open(txn->txn, txn->journal->indexes[index], &cursor);

    if (rc != MDB_SUCCESS)
        return translate(rc, "open cursor");

    MDB_val k = {.mv_size = start_len, .mv_data = (void *)start};
    MDB_val v;
    int result = 0;

    if (start_len > 0)
        rc = seek_after(cursor, &k, &v, after);
    else
        rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
    while (rc == MDB_SUCCESS && result == 0) {
        result = cb(arg, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
        if (result == 0)
            rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    if (result != 0)
        return result;
    return rc == MDB_NOTFOUND ? 0 : translate(rc, "index scan");
}

/* Counter keys: "count:" and a name of at most COUNTER_NAME_MAX bytes. */
#define COUNTER_KEY_SIZE (6 + COUNTER_NAME_MAX + 1)

static size_t counter_key(char *out, size_t size, const char *name)
{
    int len = snprintf(out, size, "count:%s", name);

    return len < 0 ? 0 : (size_t)len >= size ? size - 1 : (size_t)len;
}

int gdn_journal_counter_get(gdn_journal_txn_t *txn, const char *name, int64_t *value)
{
    char key[COUNTER_KEY_SIZE];
    MDB_val k = {.mv_size = counter_key(key, sizeof(key), name), .mv_data = key};
    MDB_val v;
    int rc = mdb_get(txn->txn, txn->journal->meta, &k, &v);

    *value = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != MDB_SUCCESS)
        return translate(rc, "get counter");
    if (v.mv_size == sizeof(int64_t))
        memcpy(value, v.mv_data, sizeof(int64_t));
    return 0;
}

int gdn_journal_counter_add(gdn_journal_txn_t *txn, const char *name, int64_t delta)
{
    if (!txn->write)
        return GDN_EINVALID;

    int64_t value;
    int rc = gdn_journal_counter_get(txn, name, &value);

    if (rc != 0)
        return rc;
    value += delta;

    char key[COUNTER_KEY_SIZE];
    MDB_val k = {.mv_size = counter_key(key, sizeof(key), name), .mv_data = key};
    MDB_val v = {.mv_size = sizeof(value), .mv_data = &value};

    /* An absent counter reads as 0, so one that comes back to 0 is removed: counters named
     * after client-chosen roles would otherwise pile up. */
    if (value == 0) {
        rc = mdb_del(txn->txn, txn->journal->meta, &k, NULL);
        return rc == MDB_NOTFOUND ? 0 : translate(rc, "delete counter");
    }
    return translate(mdb_put(txn->txn, txn->journal->meta, &k, &v, 0), "put counter");
}

/* Counts the pages on LMDB's free list, up to `enough`. Only a read transaction may open the
 * free list; each of its values is a page list whose first word is its length. */
static int count_free_pages(MDB_env *env, uint64_t enough, uint64_t *out)
{
    MDB_txn *read;
    MDB_cursor *cursor = NULL;
    int rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &read);

    *out = 0;
    if (rc != MDB_SUCCESS)
        return rc;
    rc = mdb_cursor_open(read, 0, &cursor);

    MDB_val key;
    MDB_val value;

    for (MDB_cursor_op op = MDB_FIRST; rc == MDB_SUCCESS && *out < enough; op = MDB_NEXT) {
        rc = mdb_cursor_get(cursor, &key, &value, op);
        if (rc == MDB_SUCCESS && value.mv_size >= sizeof(size_t))
            *out += *(const size_t *)value.mv_data;
    }
    if (cursor != NULL)
        mdb_cursor_close(cursor);
    mdb_txn_abort(read);
    return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
}

/* The map's size in pages, its reserve in pages, and the last committed page number. */
typedef struct map_room {
    uint64_t map_pages;
    uint64_t reserve;
    uint64_t last_pgno;
} map_room_t;

static int read_map_room(MDB_env *env, map_room_t *room)
{
    MDB_envinfo info;
    MDB_stat stat;
    int rc = mdb_env_info(env, &info);

    if (rc == MDB_SUCCESS)
        rc = mdb_env_stat(env, &stat);
    if (rc != MDB_SUCCESS)
        return translate(rc, "env info");
    room->map_pages = info.me_mapsize / stat.ms_psize;
    room->reserve = room->map_pages / GDN_JOURNAL_RESERVE_SHARE;
    if (room->reserve < GDN_JOURNAL_RESERVE_MIN_BYTES / stat.ms_psize)
        room->reserve = GDN_JOURNAL_RESERVE_MIN_BYTES / stat.ms_psize;
    if (room->reserve > room->map_pages / 8)
        room->reserve = room->map_pages / 8;
    room->last_pgno = info.me_last_pgno;
    return 0;
}

int gdn_journal_in_reserve(gdn_journal_txn_t *txn)
{
    MDB_env *env = txn->journal->env;
    map_room_t room;
    int rc = read_map_room(env, &room);

    if (rc != 0)
        return rc;

    uint64_t map_pages = room.map_pages;
    uint64_t reserve = room.reserve;
    uint64_t unused = map_pages > room.last_pgno + 1 ? map_pages - room.last_pgno - 1 : 0;
    uint64_t free_pages;

    if (unused >= reserve)
        return 0;
    rc = count_free_pages(env, reserve - unused, &free_pages);
    if (rc == MDB_READERS_FULL)
        return 0;
    if (rc != MDB_SUCCESS)
        return translate(rc, "count free pages");
    return unused + free_pages < reserve;
}

int gdn_journal_txn_reaches_reserve(gdn_journal_txn_t *txn)
{
    gdn_journal_t *journal = txn->journal;
    MDB_dbi dbis[6 + GDN_JOURNAL_INDEX_COUNT] = {
        journal->records, journal->pending, journal->pending_all, journal->dirty, journal->meta};
    size_t count = 5;
    map_room_t room;
    uint64_t used = 0;
    int rc = read_map_room(journal->env, &room);

    if (rc != 0)
        return rc;
    for (int i = 0; i < GDN_JOURNAL_INDEX_COUNT; i++)
        dbis[count++] = journal->indexes[i];
    /* The main database, which holds the named ones. */
    rc = mdb_dbi_open(txn->txn, NULL, 0, &dbis[count++]);
    for (size_t i = 0; i < count && rc == MDB_SUCCESS; i++) {
        MDB_stat stat;

        rc = mdb_stat(txn->txn, dbis[i], &stat);
        if (rc == MDB_SUCCESS)
            used += stat.ms_branch_pages + stat.ms_leaf_pages + stat.ms_overflow_pages;
    }
    if (rc != MDB_SUCCESS)
        return translate(rc, "stat");
    return used + room.reserve > room.map_pages;
}

int gdn_journal_usage(gdn_journal_t *journal, uint64_t *map_bytes, uint64_t *used_bytes)
{
    MDB_envinfo info;
    MDB_stat stat;
    int rc = mdb_env_info(journal->env, &info);

    if (rc == MDB_SUCCESS)
        rc = mdb_env_stat(journal->env, &stat);
    if (rc != MDB_SUCCESS)
        return translate(rc, "env info");
    *map_bytes = info.me_mapsize;
    *used_bytes = ((uint64_t)info.me_last_pgno + 1) * stat.ms_psize;
    return 0;
}
