/*
 * The handlers of the API's writes, and long polling.
 *
 * A write is validated on the loop thread, handed to the journal writer as an operation, and
 * answered when the writer reports it committed: an acknowledged write is on disk. A request
 * can go away while its write is with the writer (an HTTP/2 stream reset, say): the operation
 * is owned by the loop, not by the request, and its answer is then dropped.
 *
 * Loop threads only, except where said.
 */
#ifndef GDN_WRITES_H
#define GDN_WRITES_H

#include <h2o.h>

#include "gdn/http.h"
#include "gdn/queue.h"

/** Longest wait a poll may ask for, in seconds. */
#define GDN_WRITES_WAIT_MAX_S 30

/** POST /tasks. @return 0. */
int gdn_writes_create(h2o_req_t *req);

/** POST /poll/complete. @return 0. */
int gdn_writes_complete(h2o_req_t *req);

/** POST /poll/register. @return 0. */
int gdn_writes_register(h2o_req_t *req);

/** POST /poll/heartbeat. @return 0. */
int gdn_writes_heartbeat(h2o_req_t *req);

/**
 * GET /poll/next, with `wait` for long polling. A worker token with roles (see auth.h) limits
 * the roles polled; NULL for none. @return 0.
 */
int gdn_writes_poll_as(h2o_req_t *req, const gdn_auth_token_t *token);

/** POST /tasks/{id}/cancel. @return 0. */
int gdn_writes_cancel(h2o_req_t *req, const char *id, size_t id_len);

/**
 * Registers with the writer the periodic operation that does what falls due (leases, delays,
 * expiry) and wakes the polls it makes tasks claimable for. Main thread, once, before the
 * loops start. `policy` must outlive the writer.
 */
void gdn_writes_start(gdn_writer_t *writer, const gdn_queue_policy_t *policy);

/** Prepares a loop's long-poll timers. On the loop's thread, before it serves. */
void gdn_writes_loop_init(gdn_loop_t *loop);

/** Answers the loop's waiting polls with the empty answer and takes no more waits. */
void gdn_writes_loop_stop(gdn_loop_t *loop);

/** Frees the loop's long-poll timers; nothing may be waiting. */
void gdn_writes_loop_dispose(gdn_loop_t *loop);

/** Delivers finished operations to their requests: the callback of gdn_loop_t.replies. */
void gdn_writes_on_replies(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);

#endif
