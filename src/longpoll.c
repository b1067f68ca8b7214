/*
 * The long-poll registry.
 */
#include <pthread.h>
#include <string.h>

#include "gdn/longpoll.h"

/* Loop threads whose waits are closed for good (they are stopping). */
#define CLOSED_OWNERS_MAX 256

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static h2o_linklist_t parked = {&parked, &parked};
static const void *closed_owners[CLOSED_OWNERS_MAX];
static int closed_owner_count;

static int owner_closed(const void *owner)
{
    for (int i = 0; i < closed_owner_count; i++) {
        if (closed_owners[i] == owner)
            return 1;
    }
    return 0;
}

int gdn_longpoll_park(gdn_waiter_t *waiter)
{
    int parked_now = 0;

    pthread_mutex_lock(&registry_lock);
    if (!waiter->closed && !owner_closed(waiter->owner)) {
        h2o_linklist_insert(&parked, &waiter->link);
        waiter->parked = 1;
        parked_now = 1;
    }
    pthread_mutex_unlock(&registry_lock);
    return parked_now;
}

int gdn_longpoll_close(gdn_waiter_t *waiter)
{
    int was_parked;

    pthread_mutex_lock(&registry_lock);
    was_parked = waiter->parked;
    if (was_parked)
        h2o_linklist_unlink(&waiter->link);
    waiter->parked = 0;
    waiter->closed = 1;
    pthread_mutex_unlock(&registry_lock);
    return was_parked;
}

static int accepts(const gdn_waiter_t *waiter, const char *role)
{
    size_t len = strlen(role);

    if (waiter->role_count == 0)
        return 1;
    for (int i = 0; i < waiter->role_count; i++) {
        if (waiter->role_lens[i] == len && memcmp(waiter->roles[i], role, len) == 0)
            return 1;
    }
    return 0;
}

/* Unlinks the oldest parked waiter that accepts `role` (any waiter when role is NULL). */
static gdn_waiter_t *take_match(const char *role)
{
    for (h2o_linklist_t *at = parked.next; at != &parked; at = at->next) {
        gdn_waiter_t *waiter = H2O_STRUCT_FROM_MEMBER(gdn_waiter_t, link, at);

        if (role == NULL || accepts(waiter, role)) {
            h2o_linklist_unlink(&waiter->link);
            waiter->parked = 0;
            return waiter;
        }
    }
    return NULL;
}

void gdn_longpoll_wake(const gdn_queue_wakeups_t *wakeups, void (*resume)(gdn_waiter_t *waiter))
{
    h2o_linklist_t woken = {&woken, &woken};

    pthread_mutex_lock(&registry_lock);
    for (int i = 0; wakeups->all || i < wakeups->count; i++) {
        gdn_waiter_t *waiter = take_match(wakeups->all ? NULL : wakeups->roles[i]);

        if (waiter == NULL) {
            if (wakeups->all)
                break;
            continue;
        }
        h2o_linklist_insert(&woken, &waiter->link);
    }
    pthread_mutex_unlock(&registry_lock);

    /* Resuming hands a waiter back to the writer; it is out of the registry, so its links are
     * free for the local list until then. */
    while (!h2o_linklist_is_empty(&woken)) {
        gdn_waiter_t *waiter = H2O_STRUCT_FROM_MEMBER(gdn_waiter_t, link, woken.next);

        h2o_linklist_unlink(&waiter->link);
        resume(waiter);
    }
}

/* Takes out the parked waiters of `owner` that `pick` selects (all when NULL), marks them
 * closed, and answers each outside the lock. */
static void take_owner(const void *owner, int (*pick)(gdn_waiter_t *waiter),
                       void (*answer)(gdn_waiter_t *waiter))
{
    h2o_linklist_t taken = {&taken, &taken};

    pthread_mutex_lock(&registry_lock);
    for (h2o_linklist_t *at = parked.next; at != &parked;) {
        gdn_waiter_t *waiter = H2O_STRUCT_FROM_MEMBER(gdn_waiter_t, link, at);

        at = at->next;
        if (waiter->owner != owner || (pick != NULL && !pick(waiter)))
            continue;
        h2o_linklist_unlink(&waiter->link);
        waiter->parked = 0;
        waiter->closed = 1;
        h2o_linklist_insert(&taken, &waiter->link);
    }
    pthread_mutex_unlock(&registry_lock);

    while (!h2o_linklist_is_empty(&taken)) {
        gdn_waiter_t *waiter = H2O_STRUCT_FROM_MEMBER(gdn_waiter_t, link, taken.next);

        h2o_linklist_unlink(&waiter->link);
        answer(waiter);
    }
}

void gdn_longpoll_sweep_owner(const void *owner, int (*gone)(gdn_waiter_t *waiter),
                              void (*answer)(gdn_waiter_t *waiter))
{
    take_owner(owner, gone, answer);
}

void gdn_longpoll_close_owner(const void *owner, void (*answer)(gdn_waiter_t *waiter))
{
    pthread_mutex_lock(&registry_lock);
    if (!owner_closed(owner) && closed_owner_count < CLOSED_OWNERS_MAX)
        closed_owners[closed_owner_count++] = owner;
    pthread_mutex_unlock(&registry_lock);
    take_owner(owner, NULL, answer);
}
