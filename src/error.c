/*
 * One place that turns every error code of the project into text: the project's own range and
 * negated errno values.
 */
#include <string.h>

#include "gdn/error.h"

/*
 * Indexed by GDN_ERR_BASE - code - 1, so the order must follow the enum in error.h. The
 * static assertion below catches a code added to the enum without a message here.
 */
static const char *const project_messages[] = {
    "record not found",
    "journal is full",
    "journal error",
    "invalid input",
    "invalid configuration",
    "service is shutting down",
    "journal schema version is not supported",
    "record state does not allow the operation",
    "not allowed for these credentials",
};

_Static_assert(sizeof(project_messages) / sizeof(project_messages[0]) ==
                   (unsigned)(GDN_ERR_BASE - GDN_ERR_LAST - 1),
               "every project error code needs a message");

const char *gdn_strerror(int code)
{
    if (code == 0)
        return "success";
    if (code < GDN_ERR_BASE && code > GDN_ERR_LAST)
        return project_messages[GDN_ERR_BASE - code - 1];
    if (code < 0 && code > GDN_ERR_BASE) {
        /*
         * strerrordesc_np returns a pointer into glibc's constant table and never touches a
         * shared buffer, unlike strerror, so it is safe from any thread; it returns NULL for
         * numbers it does not know.
         */
        const char *text = strerrordesc_np(-code);

        if (text != NULL)
            return text;
    }
    return "unknown error";
}
