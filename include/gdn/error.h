/*
 * Error codes shared by every module of Garden Orchestrator.
 *
 * Functions return 0 on success and a negative code on failure: -errno for system errors, or one
 * of the project codes below, which sit in a reserved range far below any errno value.
 */
#ifndef GDN_ERROR_H
#define GDN_ERROR_H

enum {
    GDN_ERR_BASE = -30000,
    /** The requested record or index entry does not exist. */
    GDN_ENOTFOUND = GDN_ERR_BASE - 1,
    /** The journal's map is full: the write was not applied. */
    GDN_EJOURNAL_FULL = GDN_ERR_BASE - 2,
    /** The journal reported an error other than a full map (I/O, corruption, reader table). */
    GDN_EJOURNAL = GDN_ERR_BASE - 3,
    /** Input failed validation; the caller holds the details. */
    GDN_EINVALID = GDN_ERR_BASE - 4,
    /** A configuration key or value was rejected. */
    GDN_ECONFIG = GDN_ERR_BASE - 5,
    /** The service is shutting down and takes no new work. */
    GDN_ESHUTDOWN = GDN_ERR_BASE - 6,
    /** The journal was written by an incompatible schema version. */
    GDN_ESCHEMA = GDN_ERR_BASE - 7,
    /** The record is in a state that does not allow the operation. */
    GDN_ECONFLICT = GDN_ERR_BASE - 8,
    /** The caller's credentials do not allow the operation. */
    GDN_EFORBIDDEN = GDN_ERR_BASE - 9,
    GDN_ERR_LAST = GDN_ERR_BASE - 10,
};

/**
 * Describes an error code returned by any gdn_ function.
 *
 * @param code a negative project code or -errno.
 * @return a static, human-readable string; never NULL. Safe from any thread.
 */
const char *gdn_strerror(int code);

#endif
