/*
 * Query strings, task paths and the Idempotency-Key header, read from plain bytes.
 *
 * h2o hands the application the raw request target; what follows the `?` is ours to read. This
 * is kept apart from the handlers, which need h2o, so that the same code the server runs can be
 * driven directly by tests and the fuzz target.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gdn/error.h"
#include "gdn/json.h"
#include "gdn/request.h"

static int decode_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes a query value (`+` is a space) into a new malloc'd string. */
static char *decode_query_value(const char *text, size_t len, size_t *out_len)
{
    char *out = malloc(len + 1);
    size_t n = 0;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        int hi = i + 2 < len ? decode_hex(text[i + 1]) : -1;
        int lo = i + 2 < len ? decode_hex(text[i + 2]) : -1;

        if (text[i] == '%' && hi >= 0 && lo >= 0) {
            out[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[n++] = text[i] == '+' ? ' ' : text[i];
        }
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

char *gdn_request_query_param(const char *query, size_t query_len, const char *name, size_t *len,
                              int *oom)
{
    *oom = 0;
    if (query == NULL)
        return NULL;

    const char *at = query;
    const char *end = query + query_len;
    size_t name_len = strlen(name);
    const char *found = NULL;
    size_t found_len = 0;

    while (at < end) {
        const char *amp = memchr(at, '&', (size_t)(end - at));
        const char *stop = amp != NULL ? amp : end;
        const char *eq = memchr(at, '=', (size_t)(stop - at));
        size_t key_len = (size_t)((eq != NULL ? eq : stop) - at);

        if (key_len == name_len && memcmp(at, name, name_len) == 0) {
            found = eq != NULL ? eq + 1 : stop;
            found_len = (size_t)(stop - found);
        }
        at = amp != NULL ? amp + 1 : end;
    }
    if (found == NULL)
        return NULL;

    char *value = decode_query_value(found, found_len, len);

    *oom = value == NULL;
    return value;
}

int gdn_request_list_read(const char *query, size_t query_len, gdn_list_params_t *params)
{
    size_t len;
    int oom = 0;
    int any_oom = 0;

    memset(params, 0, sizeof(*params));
    params->status = gdn_request_query_param(query, query_len, "status", &len, &oom);
    any_oom |= oom;
    params->role = gdn_request_query_param(query, query_len, "role", &len, &oom);
    any_oom |= oom;
    params->project_id =
        gdn_request_query_param(query, query_len, "project_id", &params->project_id_len, &oom);
    any_oom |= oom;
    params->limit = gdn_request_query_param(query, query_len, "limit", &len, &oom);
    any_oom |= oom;
    params->cursor = gdn_request_query_param(query, query_len, "cursor", &params->cursor_len, &oom);
    any_oom |= oom;
    params->given =
        params->status || params->role || params->project_id || params->limit || params->cursor;
    return any_oom ? -ENOMEM : 0;
}

int gdn_request_list_check(const gdn_list_params_t *params, gdn_queue_listing_t *listing,
                           gdn_problems_t *problems)
{
    int rc = 0;
    gdn_task_status_t status;

    *listing = (gdn_queue_listing_t){.status = -1, .limit = GDN_REQUEST_LIST_LIMIT};
    if (params->status != NULL && params->status[0] != '\0') {
        if (gdn_task_status_parse(params->status, strlen(params->status), &status) == 0) {
            listing->status = (int)status;
        } else {
            gdn_problems_add(problems, "query", "status", "enum",
                             "Input should be 'pending', 'processing', 'completed', 'failed' "
                             "or 'cancelled'");
            rc = GDN_EINVALID;
        }
    }
    if (params->limit != NULL) {
        char *end;
        long limit = strtol(params->limit, &end, 10);

        if (params->limit[0] == '\0' || *end != '\0' || limit < 1 ||
            limit > GDN_REQUEST_LIST_LIMIT_MAX) {
            gdn_problems_add(problems, "query", "limit", "int_parsing",
                             "Input should be a whole number from 1 to 500");
            rc = GDN_EINVALID;
        } else {
            listing->limit = (int)limit;
        }
    }
    if (params->role != NULL && params->role[0] != '\0')
        listing->role = params->role;
    if (params->project_id != NULL && params->project_id[0] != '\0') {
        listing->project_id = params->project_id;
        listing->project_id_len = params->project_id_len;
    }
    if (params->cursor != NULL && params->cursor[0] != '\0') {
        listing->cursor = params->cursor;
        listing->cursor_len = params->cursor_len;
    }
    return rc;
}

void gdn_request_list_free(gdn_list_params_t *params)
{
    free(params->status);
    free(params->role);
    free(params->project_id);
    free(params->limit);
    free(params->cursor);
    memset(params, 0, sizeof(*params));
}

/* Splits the roles list in place: comma-separated, spaces trimmed, empty items skipped. */
static int split_roles(gdn_poll_params_t *params, gdn_problems_t *problems)
{
    char *at = params->roles_text;

    while (at != NULL && *at != '\0') {
        char *comma = strchr(at, ',');
        char *end = comma != NULL ? comma : at + strlen(at);
        char *start = at;

        while (start < end && *start == ' ')
            start++;
        while (end > start && end[-1] == ' ')
            end--;
        if (end > start) {
            if (params->role_count == GDN_QUEUE_MAX_ROLES) {
                gdn_problems_add(problems, "query", "roles", "too_long",
                                 "List should have at most 32 roles");
                return GDN_EINVALID;
            }
            params->roles[params->role_count] = start;
            params->role_lens[params->role_count] = (size_t)(end - start);
            params->role_count++;
        }
        at = comma != NULL ? comma + 1 : NULL;
    }
    return 0;
}

/* Reads `wait`: whole seconds from 0 to GDN_REQUEST_WAIT_MAX_S. */
static int read_wait(const char *query, size_t query_len, gdn_poll_params_t *params,
                     gdn_problems_t *problems)
{
    size_t len;
    int oom;
    char *text = gdn_request_query_param(query, query_len, "wait", &len, &oom);

    if (oom)
        return -ENOMEM;
    if (text == NULL)
        return 0;

    char *end;
    long wait = strtol(text, &end, 10);
    int valid = len > 0 && *end == '\0' && wait >= 0 && wait <= GDN_REQUEST_WAIT_MAX_S;

    free(text);
    if (!valid) {
        gdn_problems_add(problems, "query", "wait", "int_parsing",
                         "Input should be a whole number of seconds from 0 to 30");
        return GDN_EINVALID;
    }
    params->wait_s = (int)wait;
    return 0;
}

/* Tells whether a worker id holds NUL or a byte of GDN_WORKER_ID_FORBIDDEN. */
static int worker_id_forbidden(const char *id, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (id[i] == '\0' || strchr(GDN_WORKER_ID_FORBIDDEN, id[i]) != NULL)
            return 1;
    return 0;
}

int gdn_request_poll_read(const char *query, size_t query_len, gdn_poll_params_t *params,
                          gdn_problems_t *problems)
{
    size_t roles_len;
    int oom;

    memset(params, 0, sizeof(*params));
    params->worker_id =
        gdn_request_query_param(query, query_len, "worker_id", &params->worker_id_len, &oom);
    if (oom)
        return -ENOMEM;
    params->roles_text = gdn_request_query_param(query, query_len, "roles", &roles_len, &oom);
    if (oom)
        return -ENOMEM;

    int rc = 0;

    if (params->worker_id == NULL) {
        gdn_problems_add(problems, "query", "worker_id", "missing", "Field required");
        rc = GDN_EINVALID;
    } else if (params->worker_id_len == 0) {
        gdn_problems_add(problems, "query", "worker_id", "string_too_short",
                         "String should have at least 1 character");
        rc = GDN_EINVALID;
    } else if (params->worker_id_len > GDN_WORKER_ID_MAX) {
        gdn_problems_add(problems, "query", "worker_id", "string_too_long",
                         "String should have at most 200 characters");
        rc = GDN_EINVALID;
    } else if (worker_id_forbidden(params->worker_id, params->worker_id_len)) {
        /* The same rule as a registered worker's id: the id names the tasks it holds in the
         * journal's keys, where a NUL would end it early, and its record in the bucket. */
        gdn_problems_add(problems, "query", "worker_id", "value_error",
                         GDN_WORKER_ID_FORBIDDEN_MSG);
        rc = GDN_EINVALID;
    } else if (!gdn_json_utf8_valid(params->worker_id, params->worker_id_len)) {
        /* A claim writes the id into the task as assigned_to, and JSON holds UTF-8 only. */
        gdn_problems_add(problems, "query", "worker_id", "string_type",
                         "Input should be a valid string: the value is not valid UTF-8");
        rc = GDN_EINVALID;
    }
    if (split_roles(params, problems) != 0)
        rc = GDN_EINVALID;

    int wait_rc = read_wait(query, query_len, params, problems);

    return wait_rc == -ENOMEM ? wait_rc : rc != 0 ? rc : wait_rc;
}

void gdn_request_poll_free(gdn_poll_params_t *params)
{
    free(params->worker_id);
    free(params->roles_text);
    memset(params, 0, sizeof(*params));
}

gdn_task_path_t gdn_request_task_path(const char *path, size_t len, const char **id, size_t *id_len)
{
    static const char prefix[] = "/tasks/";
    static const char cancel[] = "/cancel";
    size_t prefix_len = sizeof(prefix) - 1;
    size_t cancel_len = sizeof(cancel) - 1;

    if (len <= prefix_len || memcmp(path, prefix, prefix_len) != 0)
        return GDN_TASK_PATH_NONE;

    const char *start = path + prefix_len;
    size_t rest = len - prefix_len;
    const char *slash = memchr(start, '/', rest);

    *id = start;
    if (slash == NULL) {
        *id_len = rest;
        return GDN_TASK_PATH_TASK;
    }
    if ((size_t)(start + rest - slash) != cancel_len || memcmp(slash, cancel, cancel_len) != 0)
        return GDN_TASK_PATH_NONE;
    *id_len = (size_t)(slash - start);
    return GDN_TASK_PATH_CANCEL;
}

int gdn_request_idempotency_key(const char *value, size_t len, gdn_problems_t *problems)
{
    (void)value;
    if (len == 0 || len > GDN_QUEUE_IDEMPOTENCY_KEY_MAX) {
        gdn_problems_add(problems, "header", "idempotency-key", "string_too_long",
                         "Idempotency-Key should have 1 to 200 characters");
        return GDN_EINVALID;
    }
    return 0;
}
