/*
 * Import: load an export of the key-value store the service used before this server.
 *
 * The export is a JSON array of `{"key": K, "value": V}` entries, where V is the stored value
 * either as JSON or as a JSON string holding JSON text (as key-value bulk tools write them).
 * The keys this server takes are:
 *
 *   task:ID        a task object in the API's shape; fields with a TaskCreate default may be
 *                  absent or null, the extension fields (attempts, lease_s, ...) too
 *   worker:ID      a worker object
 *   completed:ID   a finished task's copy; its task:ID must be imported too, or be stored
 *   queue:pending  the old pending list, an array of task ids: only cross-checked, because the
 *                  claim order is derived from the task objects
 *
 * Import happens in two steps. gdn_import_parse checks the file's shape without touching the
 * journal: a file that is not a JSON array of such entries, or that names a key twice, is
 * refused as a whole. gdn_import_run then judges every entry (imported, skipped or rejected,
 * each with a reason) and writes everything it imports in one write transaction, so that a
 * failure part-way stores nothing. Imported records are logged for upload like any change.
 */
#ifndef GDN_IMPORT_H
#define GDN_IMPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gdn/journal.h"
#include "gdn/queue.h"

/** Longest reason given for a skipped or rejected entry, in bytes. */
#define GDN_IMPORT_REASON_MAX 160

/** An export whose shape was checked: every entry has a key and a value, no key twice. */
typedef struct gdn_import_file gdn_import_file_t;

/** One entry that was not imported, or one id of `queue:pending` that did not check out. */
typedef struct gdn_import_note {
    int rejected; /**< 1: the entry is not usable; 0: skipped on purpose (exists, expired) */
    char *key;    /**< the entry's key, NUL-terminated, owned by the report */
    char *id;     /**< for `queue:pending`, the listed id concerned; else NULL. Owned. */
    char reason[GDN_IMPORT_REASON_MAX];
} gdn_import_note_t;

/** What an import did, or would do in a dry run. */
typedef struct gdn_import_report {
    uint64_t imported;  /**< records imported: tasks, completed copies and workers */
    uint64_t tasks;     /**< task records, pending ones included */
    uint64_t pending;   /**< pending tasks queued in claim order */
    uint64_t completed; /**< completed copies */
    uint64_t workers;
    uint64_t skipped;         /**< notes with rejected == 0 */
    uint64_t rejected;        /**< notes with rejected == 1 */
    gdn_import_note_t *notes; /**< in file order: tasks, workers and unknown keys first, then
                                   completed copies and `queue:pending` */
    size_t note_count;
    size_t note_cap;
} gdn_import_report_t;

/**
 * Parses an export and checks its shape. Nothing is judged against the journal yet.
 *
 * @param text the file's contents; it must outlive *out.
 * @param reason on GDN_EINVALID, why the file is malformed (for example
 *        "entry 3 is not a {\"key\": K, \"value\": V} object").
 * @return 0 and *out set (free with gdn_import_file_free); GDN_EINVALID for a file that is not
 *         JSON, not an array, has an entry that is not an object with a string `key` and a
 *         `value`, or names a key twice; -ENOMEM. Any thread.
 */
int gdn_import_parse(const char *text, size_t len, gdn_import_file_t **out, char *reason,
                     size_t reason_size);

/** Frees a parsed export. NULL-safe. */
void gdn_import_file_free(gdn_import_file_t *file);

/**
 * Judges every entry of `file` against the journal and stores the records that are new, in one
 * write transaction, committed unless `dry_run` is set. A record longer than `record_max` bytes
 * as stored (0: no limit) is rejected: the server would hand it out in every answer that holds
 * it, while it accepts no request body longer than max_body_bytes. A record whose key the journal
 * holds is skipped ("exists"), so a second import of the same file imports nothing; so are finished
 * tasks, completed copies and workers whose time to live under `policy` ended by `now_us`
 * ("expired"). A pending task joins the claim order; a processing task keeps its worker and gets
 * a lease from `now_us`, with `attempts` at least 1 (its current claim). The journal is written
 * directly: no writer thread may be running, and no other process may use it.
 *
 * @param report filled even when nothing is written; free with gdn_import_report_free.
 * @return 0 (also when entries were rejected); GDN_EJOURNAL_FULL when the records would leave
 *         no more than the map's reserve free (see gdn_journal_txn_reaches_reserve), or another
 *         journal error, after either of which nothing of the import is stored; -ENOMEM.
 */
int gdn_import_run(gdn_journal_t *journal, const gdn_queue_policy_t *policy,
                   const gdn_import_file_t *file, int64_t now_us, size_t record_max, int dry_run,
                   gdn_import_report_t *report);

/**
 * Writes the report: one line per note, `skipped key=K reason=R` or `rejected key=K reason=R`
 * (with ` id=ID` after the key for ids of `queue:pending`; each value is quoted and escaped as
 * in the log when it holds spaces, quotes, `=` or control characters), then the summary line
 * `imported N (tasks N, pending N, completed N, workers N), skipped N, rejected N`.
 */
void gdn_import_report_print(const gdn_import_report_t *report, FILE *out);

/** Frees what a report owns and zeroes it. */
void gdn_import_report_free(gdn_import_report_t *report);

#endif
