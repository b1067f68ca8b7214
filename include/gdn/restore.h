/*
 * Rebuilding a journal from the bucket: list every object, read them with several transfers
 * in flight, and store them in the journal with the pending queue and the status counters
 * derived from the task objects.
 *
 * Restored records are not marked for upload: the bucket already holds them.
 */
#ifndef GDN_RESTORE_H
#define GDN_RESTORE_H

#include <stdint.h>

#include "gdn/config.h"
#include "gdn/journal.h"

/** What a restore did. */
typedef struct gdn_restore_report {
    uint64_t listed;   /**< objects in the bucket */
    uint64_t restored; /**< records stored in the journal */
    uint64_t tasks;
    uint64_t pending; /**< tasks put back on the pending queue */
    uint64_t completed;
    uint64_t workers;
    uint64_t skipped; /**< objects that are not records of this server, or not readable */
    int64_t elapsed_us;
} gdn_restore_report_t;

/**
 * Tells whether the bucket holds any object. A missing bucket holds none.
 *
 * @param has set to 1 or 0.
 * @param reason on failure, the S3 error code or transport error.
 * @return 0, GDN_ECONFIG for an unusable endpoint, or -EIO when the bucket could not be read.
 */
int gdn_restore_probe(const gdn_config_t *config, int *has, char *reason, size_t reason_size);

/**
 * Restores every record of the bucket into `journal`, which must hold no records unless
 * `replace` is set (the journal's records, queue and dirty set are then replaced as a whole).
 * Failed S3 requests are retried a few times. Everything is stored in one write transaction,
 * so a restore that fails leaves the journal as it was. The journal is written directly: no
 * writer thread may be running.
 *
 * @param progress if non-zero, a progress line is written to stderr as objects arrive.
 * @return 0; GDN_ECONFLICT for a non-empty journal without `replace`; -EIO when the bucket
 *         could not be listed or an object could not be read (logged); a journal error.
 */
int gdn_restore_run(const gdn_config_t *config, gdn_journal_t *journal, int replace, int progress,
                    gdn_restore_report_t *report);

#endif
