/*
 * Long polling: the registry of polls waiting for a task.
 *
 * A poll that asks to wait and finds nothing to claim is parked here by the journal writer,
 * right after the claim came back empty. When a commit makes tasks claimable, the writer takes
 * one matching waiter per task out of the registry and sends it to claim again. Because the
 * writer both parks and wakes, a task committed between a poll's claim and its parking cannot
 * be missed: both happen on one thread, in commit order.
 *
 * A loop thread takes its waiters back out when their wait ends, when their client goes away,
 * or when the server stops. One mutex guards the registry; no journal transaction is ever held
 * while a poll waits.
 */
#ifndef GDN_LONGPOLL_H
#define GDN_LONGPOLL_H

#include <h2o/linklist.h>
#include <h2o/memory.h>
#include <stddef.h>

#include "gdn/queue.h"

/** A waiting poll. Embedded in the loop's request state. */
typedef struct gdn_waiter {
    h2o_linklist_t link;      /**< registry membership while parked */
    const void *owner;        /**< the loop thread it belongs to */
    const char *const *roles; /**< the roles it accepts; none means any */
    const size_t *role_lens;
    int role_count;
    int parked; /**< 1 while in the registry */
    int closed; /**< its wait is over: deliver whatever the claim found, never park again */
} gdn_waiter_t;

/**
 * Parks a waiter whose claim found nothing. Journal writer only.
 * @return 1 if parked (the registry owns it now), 0 if its wait is already over and the
 *         caller must deliver the empty answer.
 */
int gdn_longpoll_park(gdn_waiter_t *waiter);

/**
 * Ends a waiter's wait from its loop thread (deadline, client gone).
 * @return 1 if it was parked: it is out of the registry and the caller answers it; 0 if it is
 *         with the writer: the claim's answer will still come, and it will not park again.
 */
int gdn_longpoll_close(gdn_waiter_t *waiter);

/**
 * Takes out one parked waiter per claimable task noted in `wakeups` (every waiter if
 * `wakeups->all`), oldest first among those whose roles match, and calls `resume` for each
 * outside the registry's lock. Journal writer only.
 */
void gdn_longpoll_wake(const gdn_queue_wakeups_t *wakeups, void (*resume)(gdn_waiter_t *waiter));

/**
 * Takes out the parked waiters of one loop thread for which `gone` says yes (it is called
 * under the registry's lock and must not block), and passes each to `answer` outside the lock.
 * Used to let go of polls whose client disconnected in a way h2o does not report.
 */
void gdn_longpoll_sweep_owner(const void *owner, int (*gone)(gdn_waiter_t *waiter),
                              void (*answer)(gdn_waiter_t *waiter));

/**
 * Closes every wait of one loop thread, for shutdown: parked waiters are taken out and passed
 * to `answer` (outside the lock), and later parks of that loop's waiters are refused.
 */
void gdn_longpoll_close_owner(const void *owner, void (*answer)(gdn_waiter_t *waiter));

#endif
