/*
 * Tasks and workers as the API shows them.
 *
 * Request bodies are validated the way the FastAPI service that clients already know did it
 * (pydantic v2): every problem of a body is reported, each with pydantic's type and message,
 * located at `["body", FIELD]`. One difference is deliberate: JSON types are strict. pydantic's
 * lax mode would turn the string "5" into an integer and 0 or 1 into a boolean; here a field of
 * the wrong JSON type is a problem. A client that sends the wrong type has most likely made a
 * mistake, and telling it at once is better than storing a guess at what it meant.
 *
 * Stored objects are read back with the same field readers, so a task rendered, parsed and
 * rendered again comes out byte for byte the same.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "gdn/clock.h"
#include "gdn/error.h"
#include "gdn/task.h"

static const char *const status_names[GDN_TASK_STATUS_COUNT] = {
    [GDN_TASK_PENDING] = "pending",     [GDN_TASK_PROCESSING] = "processing",
    [GDN_TASK_COMPLETED] = "completed", [GDN_TASK_FAILED] = "failed",
    [GDN_TASK_CANCELLED] = "cancelled",
};

const char *gdn_task_status_name(gdn_task_status_t status)
{
    if ((unsigned)status >= GDN_TASK_STATUS_COUNT)
        return "unknown";
    return status_names[status];
}

int gdn_task_status_parse(const char *text, size_t len, gdn_task_status_t *out)
{
    for (int i = 0; i < GDN_TASK_STATUS_COUNT; i++) {
        if (strlen(status_names[i]) == len && memcmp(status_names[i], text, len) == 0) {
            *out = (gdn_task_status_t)i;
            return 0;
        }
    }
    return GDN_EINVALID;
}

int gdn_problems_init(gdn_problems_t *problems)
{
    problems->count = 0;
    problems->gen = gdn_json_gen_new();
    if (problems->gen == NULL)
        return -ENOMEM;
    yajl_gen_map_open(problems->gen);
    gdn_json_gen_cstr(problems->gen, "detail");
    yajl_gen_array_open(problems->gen);
    return 0;
}

/* Writes `{"type":TYPE,"loc":[WHERE` and leaves the location open for its last part. */
static void begin_problem(yajl_gen gen, const char *type, const char *where)
{
    yajl_gen_map_open(gen);
    gdn_json_gen_cstr(gen, "type");
    gdn_json_gen_cstr(gen, type);
    gdn_json_gen_cstr(gen, "loc");
    yajl_gen_array_open(gen);
    gdn_json_gen_cstr(gen, where);
}

/* Closes the location and writes the message; the caller closes the problem's object. */
static void end_problem(yajl_gen gen, const char *msg)
{
    yajl_gen_array_close(gen);
    gdn_json_gen_cstr(gen, "msg");
    gdn_json_gen_cstr(gen, msg);
}

/* A NULL list is accepted and ignored: stored objects are read with no list to fill. */
void gdn_problems_add(gdn_problems_t *problems, const char *where, const char *field,
                      const char *type, const char *msg)
{
    if (problems == NULL)
        return;
    problems->count++;
    if (problems->gen == NULL)
        return;
    begin_problem(problems->gen, type, where);
    if (field != NULL)
        gdn_json_gen_cstr(problems->gen, field);
    end_problem(problems->gen, msg);
    yajl_gen_map_close(problems->gen);
}

/* FastAPI reports a body it cannot decode this way, with the decoder's reason in `ctx`. */
void gdn_problems_add_json_error(gdn_problems_t *problems, const gdn_json_error_t *error)
{
    if (problems == NULL)
        return;
    problems->count++;
    if (problems->gen == NULL)
        return;
    begin_problem(problems->gen, "json_invalid", "body");
    yajl_gen_integer(problems->gen, (long long)error->offset);
    end_problem(problems->gen, "JSON decode error");
    gdn_json_gen_cstr(problems->gen, "ctx");
    yajl_gen_map_open(problems->gen);
    gdn_json_gen_cstr(problems->gen, "error");
    gdn_json_gen_cstr(problems->gen, error->message);
    yajl_gen_map_close(problems->gen);
    yajl_gen_map_close(problems->gen);
}

char *gdn_problems_render(gdn_problems_t *problems, size_t *len)
{
    if (problems->gen == NULL)
        return NULL;

    /* A second call finds the document complete; yajl refuses the closes and the text stays. */
    yajl_gen_array_close(problems->gen);
    yajl_gen_map_close(problems->gen);
    return gdn_json_gen_take(problems->gen, len);
}

void gdn_problems_free(gdn_problems_t *problems)
{
    if (problems->gen != NULL)
        yajl_gen_free(problems->gen);
    problems->gen = NULL;
}

/*
 * Reads the fields of one JSON object. Request bodies record each problem in `problems`;
 * stored objects are read with no problem list, where only the count of failures matters.
 */
typedef struct field_reader {
    const gdn_json_t *object;
    gdn_problems_t *problems;
    int failures;
} field_reader_t;

/* What a string field must look like. */
typedef struct string_rule {
    size_t min_len;
    size_t max_len;
    bool nullable;             /* JSON null is accepted and leaves the field unset */
    const char *forbidden;     /* characters refused besides NUL, or NULL to allow anything */
    const char *forbidden_msg; /* the value_error message when one is found */
} string_rule_t;

/* Any string at all: the fields of stored objects, which were checked when they came in. */
static const string_rule_t any_string = {.max_len = SIZE_MAX};

/*
 * Limits are counted in bytes, while pydantic's messages speak of characters; the two agree for
 * ASCII text, which is what these fields hold in practice.
 */
static const string_rule_t field_string = {.max_len = GDN_TASK_FIELD_MAX};
static const string_rule_t nullable_field_string = {.max_len = GDN_TASK_FIELD_MAX,
                                                    .nullable = true};

/* Roles are listed comma-separated in /poll/next queries, so a role cannot hold a comma. */
static const string_rule_t role_rule = {
    .min_len = 1,
    .max_len = GDN_JOURNAL_ROLE_MAX,
    .forbidden = ",",
    .forbidden_msg = "Value error, role must not contain ',' or NUL characters",
};

/* A worker id is part of the record key `worker:ID` and so of an object key in the bucket. */
static const string_rule_t worker_id_rule = {
    .min_len = 1,
    .max_len = GDN_WORKER_ID_MAX,
    .forbidden = GDN_WORKER_ID_FORBIDDEN,
    .forbidden_msg = GDN_WORKER_ID_FORBIDDEN_MSG,
};

static const string_rule_t nullable_worker_id_rule = {
    .min_len = 1,
    .max_len = GDN_WORKER_ID_MAX,
    .nullable = true,
    .forbidden = GDN_WORKER_ID_FORBIDDEN,
    .forbidden_msg = GDN_WORKER_ID_FORBIDDEN_MSG,
};

/* Any string is a task id to look up: one that names no task is "not found", not invalid. */
static const string_rule_t task_id_rule = {.max_len = SIZE_MAX};

/* Records a problem with the field `name`. @return GDN_EINVALID, for the caller to pass on. */
static int reject_field(field_reader_t *reader, const char *name, const char *type, const char *msg)
{
    reader->failures++;
    gdn_problems_add(reader->problems, "body", name, type, msg);
    return GDN_EINVALID;
}

/* Looks up a field. A required one that is absent is a problem. @return the value or NULL. */
static const gdn_json_t *find_field(field_reader_t *reader, const char *name, bool required)
{
    const gdn_json_t *value = gdn_json_get(reader->object, name);

    if (value == NULL && required)
        reject_field(reader, name, "missing", "Field required");
    return value;
}

static bool has_forbidden_byte(const char *text, size_t len, const char *forbidden)
{
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\0' || strchr(forbidden, text[i]) != NULL)
            return true;
    }
    return false;
}

/* Checks a string value against a rule. @return 0, or GDN_EINVALID with the problem recorded. */
static int check_string(field_reader_t *reader, const char *name, const gdn_json_t *value,
                        const string_rule_t *rule)
{
    char msg[96];

    if (value->type != GDN_JSON_STRING)
        return reject_field(reader, name, "string_type", "Input should be a valid string");
    if (value->len < rule->min_len) {
        snprintf(msg, sizeof(msg), "String should have at least %zu character%s", rule->min_len,
                 rule->min_len == 1 ? "" : "s");
        return reject_field(reader, name, "string_too_short", msg);
    }
    if (value->len > rule->max_len) {
        snprintf(msg, sizeof(msg), "String should have at most %zu character%s", rule->max_len,
                 rule->max_len == 1 ? "" : "s");
        return reject_field(reader, name, "string_too_long", msg);
    }
    if (rule->forbidden != NULL && has_forbidden_byte(value->text, value->len, rule->forbidden))
        return reject_field(reader, name, "value_error", rule->forbidden_msg);
    return 0;
}

/* Reads a string field. An absent one leaves *text and *len as they were; null, if allowed, clears
 * them. */
static int read_string(field_reader_t *reader, const char *name, bool required,
                       const string_rule_t *rule, const char **text, size_t *len)
{
    const gdn_json_t *value = find_field(reader, name, required);

    if (value == NULL)
        return required ? GDN_EINVALID : 0;
    if (value->type == GDN_JSON_NULL && rule->nullable) {
        *text = NULL;
        *len = 0;
        return 0;
    }
    if (check_string(reader, name, value, rule) != 0)
        return GDN_EINVALID;
    *text = value->text;
    *len = value->len;
    return 0;
}

/*
 * Looks up a field that must be of one JSON type; a wrong type is the problem `type`.
 * @return 0 with *value set (NULL if an optional field is absent), or GDN_EINVALID.
 */
static int find_typed(field_reader_t *reader, const char *name, bool required,
                      gdn_json_type_t json_type, const char *type, const char *msg,
                      const gdn_json_t **value)
{
    *value = find_field(reader, name, required);
    if (*value == NULL)
        return required ? GDN_EINVALID : 0;
    if ((*value)->type != json_type) {
        *value = NULL;
        return reject_field(reader, name, type, msg);
    }
    return 0;
}

/*
 * Reads an integer field. pydantic accepts a JSON number with no fractional part (5.0, 1e3) for
 * an integer and names a fractional one or one beyond 64 bits separately.
 */
static int read_int(field_reader_t *reader, const char *name, bool required, int64_t *out)
{
    const gdn_json_t *value;
    int rc = find_typed(reader, name, required, GDN_JSON_NUMBER, "int_type",
                        "Input should be a valid integer", &value);

    if (rc != 0 || value == NULL || gdn_json_int(value, out) == 0)
        return rc;
    if (gdn_json_is_integral(value))
        return reject_field(reader, name, "int_parsing_size",
                            "Unable to parse input string as an integer, exceeds maximum size");
    return reject_field(reader, name, "int_from_float",
                        "Input should be a valid integer, got a number with a fractional part");
}

static int read_bool(field_reader_t *reader, const char *name, bool required, int *out)
{
    const gdn_json_t *value;
    int rc = find_typed(reader, name, required, GDN_JSON_BOOL, "bool_type",
                        "Input should be a valid boolean", &value);

    if (value != NULL)
        *out = value->boolean;
    return rc;
}

static int read_object(field_reader_t *reader, const char *name, bool required,
                       const gdn_json_t **out)
{
    const gdn_json_t *value;
    int rc = find_typed(reader, name, required, GDN_JSON_OBJECT, "dict_type",
                        "Input should be a valid dictionary", &value);

    if (value != NULL)
        *out = value;
    return rc;
}

/* Reads a list of strings; each item that is not a string is a problem of its own. */
static int read_string_list(field_reader_t *reader, const char *name, bool required,
                            const gdn_json_t **out)
{
    const gdn_json_t *value;
    int rc = find_typed(reader, name, required, GDN_JSON_ARRAY, "list_type",
                        "Input should be a valid list", &value);

    if (value == NULL)
        return rc;
    for (const gdn_json_t *item = value->first; item != NULL; item = item->next) {
        if (check_string(reader, name, item, &any_string) != 0)
            rc = GDN_EINVALID;
    }
    if (rc == 0)
        *out = value;
    return rc;
}

/* Reads any JSON value; JSON null comes back as NULL, as the structs expect. */
static void read_any(field_reader_t *reader, const char *name, bool required,
                     const gdn_json_t **out)
{
    const gdn_json_t *value = find_field(reader, name, required);

    *out = value == NULL || value->type == GDN_JSON_NULL ? NULL : value;
}

/* Reads a time written by gdn_json_gen_time. */
static int read_time(field_reader_t *reader, const char *name, int64_t *out)
{
    const char *text = NULL;
    size_t len = 0;

    if (read_string(reader, name, true, &any_string, &text, &len) != 0)
        return GDN_EINVALID;
    if (gdn_clock_parse(text, len, out) != 0)
        return reject_field(reader, name, "datetime_parsing", "Input should be a valid datetime");
    return 0;
}

/*
 * Parses a request body that must be a JSON object, as FastAPI does: an empty body is a missing
 * body, text that is not JSON is located at the byte where decoding stopped, and JSON that is not
 * an object cannot be read as a model.
 *
 * @return 0 and reader->object set; GDN_EINVALID with the problem recorded; -ENOMEM.
 */
static int read_body(const char *body, size_t len, gdn_json_doc_t **doc, gdn_problems_t *problems,
                     field_reader_t *reader)
{
    *reader = (field_reader_t){.problems = problems};
    *doc = NULL;
    if (len == 0) {
        gdn_problems_add(problems, "body", NULL, "missing", "Field required");
        return GDN_EINVALID;
    }

    gdn_json_error_t error;
    int rc = gdn_json_parse(body, len, doc, &error);

    if (rc == GDN_EINVALID)
        gdn_problems_add_json_error(problems, &error);
    if (rc != 0)
        return rc;

    const gdn_json_t *root = gdn_json_root(*doc);

    if (root->type != GDN_JSON_OBJECT) {
        gdn_problems_add(problems, "body", NULL, "model_attributes_type",
                         "Input should be a valid dictionary or object to extract fields from");
        return GDN_EINVALID;
    }
    reader->object = root;
    return 0;
}

static void set_create_defaults(gdn_task_t *task)
{
    memset(task, 0, sizeof(*task));
    task->role = "archivist";
    task->role_len = strlen(task->role);
    task->task_type = "";
    task->priority = 5;
    task->status = GDN_TASK_PENDING;
    task->project_id = "default";
    task->project_id_len = strlen(task->project_id);
    task->context_enabled = 1;
    task->context_limit = 10;
    task->max_attempts = GDN_TASK_MAX_ATTEMPTS_DEFAULT;
}

/* Reads an integer field that must lie within [min, max]. */
static void read_bounded_int(field_reader_t *reader, const char *name, int64_t min, int64_t max,
                             int64_t *out)
{
    int64_t value = *out;
    char msg[96];

    if (gdn_json_get(reader->object, name) == NULL || read_int(reader, name, false, &value) != 0)
        return;
    if (value < min) {
        snprintf(msg, sizeof(msg), "Input should be greater than or equal to %lld", (long long)min);
        reject_field(reader, name, "greater_than_equal", msg);
    } else if (value > max) {
        snprintf(msg, sizeof(msg), "Input should be less than or equal to %lld", (long long)max);
        reject_field(reader, name, "less_than_equal", msg);
    } else {
        *out = value;
    }
}

/*
 * Reads when a task becomes claimable: `run_at` (an ISO-8601 time) or `delay_s` (seconds from
 * `now_us`, a whole or fractional number), not both.
 */
static void read_schedule(field_reader_t *reader, gdn_task_t *task, int64_t now_us)
{
    const gdn_json_t *run_at = gdn_json_get(reader->object, "run_at");
    const gdn_json_t *delay = gdn_json_get(reader->object, "delay_s");

    if (run_at != NULL && run_at->type != GDN_JSON_NULL && delay != NULL &&
        delay->type != GDN_JSON_NULL) {
        reject_field(reader, "delay_s", "value_error",
                     "Value error, give run_at or delay_s, not both");
        return;
    }
    if (run_at != NULL && run_at->type != GDN_JSON_NULL) {
        if (run_at->type != GDN_JSON_STRING)
            reject_field(reader, "run_at", "string_type", "Input should be a valid string");
        else if (gdn_clock_parse(run_at->text, run_at->len, &task->run_at_us) != 0)
            reject_field(reader, "run_at", "datetime_parsing", "Input should be a valid datetime");
        return;
    }
    if (delay == NULL || delay->type == GDN_JSON_NULL)
        return;
    if (delay->type != GDN_JSON_NUMBER) {
        reject_field(reader, "delay_s", "float_type", "Input should be a valid number");
        return;
    }

    char text[64];
    size_t len = delay->len < sizeof(text) - 1 ? delay->len : sizeof(text) - 1;

    memcpy(text, delay->text, len);
    text[len] = '\0';

    double seconds = strtod(text, NULL);

    if (!(seconds >= 0)) {
        reject_field(reader, "delay_s", "greater_than_equal",
                     "Input should be greater than or equal to 0");
        return;
    }
    if (seconds > GDN_TASK_DELAY_MAX_S) {
        reject_field(reader, "delay_s", "less_than_equal",
                     "Input should be less than or equal to one year (31622400 seconds)");
        return;
    }
    if (seconds > 0)
        task->run_at_us = now_us + (int64_t)(seconds * 1e6);
}

int gdn_task_parse_create(const char *body, size_t len, int64_t now_us, gdn_task_t *task,
                          gdn_json_doc_t **doc, gdn_problems_t *problems)
{
    field_reader_t reader;

    set_create_defaults(task);

    int rc = read_body(body, len, doc, problems, &reader);

    if (rc != 0)
        return rc;

    read_string(&reader, "task_type", true, &field_string, &task->task_type, &task->task_type_len);
    read_string(&reader, "role", false, &role_rule, &task->role, &task->role_len);
    read_object(&reader, "input_data", false, &task->input_data);
    read_int(&reader, "priority", false, &task->priority);
    read_string(&reader, "project_id", false, &field_string, &task->project_id,
                &task->project_id_len);
    read_bool(&reader, "context_enabled", false, &task->context_enabled);
    read_int(&reader, "context_limit", false, &task->context_limit);
    read_bounded_int(&reader, "lease_s", 1, GDN_TASK_LEASE_MAX_S, &task->lease_s);
    read_bounded_int(&reader, "max_attempts", 1, GDN_TASK_MAX_ATTEMPTS_LIMIT, &task->max_attempts);
    read_schedule(&reader, task, now_us);
    return reader.failures == 0 ? 0 : GDN_EINVALID;
}

/* pydantic checks a Literal field against its values whatever the JSON type of the input. */
static void read_complete_status(field_reader_t *reader, gdn_task_complete_t *complete)
{
    const gdn_json_t *value = find_field(reader, "status", false);
    gdn_task_status_t parsed;

    if (value == NULL)
        return;
    if (value->type == GDN_JSON_STRING && value->len == 5 && memcmp(value->text, "retry", 5) == 0) {
        complete->retry = 1;
        return;
    }
    if (value->type == GDN_JSON_STRING &&
        gdn_task_status_parse(value->text, value->len, &parsed) == 0 &&
        (parsed == GDN_TASK_COMPLETED || parsed == GDN_TASK_FAILED)) {
        complete->status = parsed;
        return;
    }
    reject_field(reader, "status", "literal_error",
                 "Input should be 'completed', 'failed' or 'retry'");
}

int gdn_task_parse_complete(const char *body, size_t len, gdn_task_complete_t *complete,
                            gdn_json_doc_t **doc, gdn_problems_t *problems)
{
    field_reader_t reader;

    memset(complete, 0, sizeof(*complete));
    complete->status = GDN_TASK_COMPLETED;

    int rc = read_body(body, len, doc, problems, &reader);

    if (rc != 0)
        return rc;

    /* An id that is well formed but unknown, or not an id at all, is left empty: not found. */
    const char *task_id = NULL;
    size_t task_id_len = 0;

    if (read_string(&reader, "task_id", true, &task_id_rule, &task_id, &task_id_len) == 0 &&
        gdn_task_id_valid(task_id, task_id_len)) {
        memcpy(complete->task_id, task_id, task_id_len);
        complete->task_id[task_id_len] = '\0';
    }
    read_any(&reader, "result", false, &complete->result);
    read_complete_status(&reader, complete);
    read_string(&reader, "observation_id", false, &nullable_field_string, &complete->observation_id,
                &complete->observation_id_len);
    read_string(&reader, "worker_id", false, &nullable_worker_id_rule, &complete->worker_id,
                &complete->worker_id_len);
    return reader.failures == 0 ? 0 : GDN_EINVALID;
}

/* Reads a register body, or a heartbeat body, which is the same without capabilities. */
static int parse_worker(const char *body, size_t len, gdn_worker_t *worker, gdn_json_doc_t **doc,
                        gdn_problems_t *problems, bool with_capabilities)
{
    field_reader_t reader;

    memset(worker, 0, sizeof(*worker));

    int rc = read_body(body, len, doc, problems, &reader);

    if (rc != 0)
        return rc;
    read_string(&reader, "worker_id", true, &worker_id_rule, &worker->worker_id,
                &worker->worker_id_len);
    if (with_capabilities)
        read_string_list(&reader, "capabilities", false, &worker->capabilities);
    return reader.failures == 0 ? 0 : GDN_EINVALID;
}

int gdn_worker_parse_register(const char *body, size_t len, gdn_worker_t *worker,
                              gdn_json_doc_t **doc, gdn_problems_t *problems)
{
    return parse_worker(body, len, worker, doc, problems, true);
}

int gdn_worker_parse_heartbeat(const char *body, size_t len, gdn_worker_t *worker,
                               gdn_json_doc_t **doc, gdn_problems_t *problems)
{
    return parse_worker(body, len, worker, doc, problems, false);
}

/*
 * Parses a stored object for gdn_task_from_json and gdn_worker_from_json. On success the reader
 * is set on the root object; on failure no document is kept.
 */
static int read_stored(const char *json, size_t len, gdn_json_doc_t **doc, field_reader_t *reader)
{
    *reader = (field_reader_t){0};

    int rc = gdn_json_parse(json, len, doc, NULL);

    if (rc != 0)
        return rc;

    const gdn_json_t *root = gdn_json_root(*doc);

    if (root->type != GDN_JSON_OBJECT) {
        gdn_json_free(*doc);
        *doc = NULL;
        return GDN_EINVALID;
    }
    reader->object = root;
    return 0;
}

/* Ends reading a stored object: any failure drops the document. */
static int finish_stored(field_reader_t *reader, gdn_json_doc_t **doc)
{
    if (reader->failures == 0)
        return 0;
    gdn_json_free(*doc);
    *doc = NULL;
    return GDN_EINVALID;
}

static void read_stored_id(field_reader_t *reader, gdn_task_t *task)
{
    const char *id = NULL;
    size_t id_len = 0;

    if (read_string(reader, "id", true, &any_string, &id, &id_len) != 0)
        return;
    if (!gdn_task_id_valid(id, id_len)) {
        reject_field(reader, "id", "value_error", "Value error, not a task id");
        return;
    }
    memcpy(task->id, id, id_len);
    task->id[id_len] = '\0';
}

static void read_stored_status(field_reader_t *reader, gdn_task_status_t *status)
{
    const char *text = NULL;
    size_t len = 0;

    if (read_string(reader, "status", true, &any_string, &text, &len) != 0)
        return;
    if (gdn_task_status_parse(text, len, status) != 0)
        reject_field(reader, "status", "value_error", "Value error, unknown status");
}

int gdn_task_from_json(const char *json, size_t len, gdn_task_t *task, gdn_json_doc_t **doc)
{
    field_reader_t reader;

    memset(task, 0, sizeof(*task));

    int rc = read_stored(json, len, doc, &reader);

    if (rc != 0)
        return rc;

    read_stored_id(&reader, task);
    read_string(&reader, "role", true, &any_string, &task->role, &task->role_len);
    read_string(&reader, "task_type", true, &any_string, &task->task_type, &task->task_type_len);
    read_object(&reader, "input_data", true, &task->input_data);
    read_int(&reader, "priority", true, &task->priority);
    read_stored_status(&reader, &task->status);
    read_time(&reader, "created_at", &task->created_us);
    read_time(&reader, "updated_at", &task->updated_us);
    read_string(&reader, "project_id", true, &any_string, &task->project_id, &task->project_id_len);
    read_bool(&reader, "context_enabled", true, &task->context_enabled);
    read_int(&reader, "context_limit", true, &task->context_limit);

    /* The optional groups are written together, so one member present means both must be. */
    if (gdn_json_get(reader.object, "assigned_to") != NULL) {
        read_string(&reader, "assigned_to", true, &any_string, &task->assigned_to,
                    &task->assigned_to_len);
        read_time(&reader, "assigned_at", &task->assigned_us);
    }
    if (gdn_json_get(reader.object, "completed_at") != NULL) {
        task->finished = 1;
        read_any(&reader, "result", true, &task->result);
        read_time(&reader, "completed_at", &task->completed_us);
    }
    read_string(&reader, "observation_id", false, &any_string, &task->observation_id,
                &task->observation_id_len);

    /* Objects written before leases existed lack these; they read as the defaults. */
    task->max_attempts = GDN_TASK_MAX_ATTEMPTS_DEFAULT;
    read_int(&reader, "attempts", false, &task->attempts);
    read_int(&reader, "max_attempts", false, &task->max_attempts);
    read_int(&reader, "lease_s", false, &task->lease_s);
    if (gdn_json_get(reader.object, "run_at") != NULL)
        read_time(&reader, "run_at", &task->run_at_us);
    if (gdn_json_get(reader.object, "lease_expires_at") != NULL)
        read_time(&reader, "lease_expires_at", &task->lease_expires_us);
    read_string(&reader, "error", false, &any_string, &task->error, &task->error_len);
    /* A late result may itself be null: present-and-null is kept, unlike for `result`. */
    task->late_result = gdn_json_get(reader.object, "late_result");
    return finish_stored(&reader, doc);
}

int gdn_worker_from_json(const char *json, size_t len, gdn_worker_t *worker, gdn_json_doc_t **doc)
{
    field_reader_t reader;

    memset(worker, 0, sizeof(*worker));

    int rc = read_stored(json, len, doc, &reader);

    if (rc != 0)
        return rc;

    read_string(&reader, "worker_id", true, &any_string, &worker->worker_id,
                &worker->worker_id_len);
    read_string_list(&reader, "capabilities", true, &worker->capabilities);
    read_time(&reader, "registered_at", &worker->registered_us);
    read_time(&reader, "last_heartbeat", &worker->last_heartbeat_us);
    return finish_stored(&reader, doc);
}

/*
 * Writes the members of one object. After the first refusal by the generator the remaining
 * writes are skipped and the failure is reported once at the end.
 */
typedef struct object_writer {
    yajl_gen gen;
    int failed;
} object_writer_t;

static void note_status(object_writer_t *writer, int rc)
{
    if (rc != 0)
        writer->failed = 1;
}

static int yajl_result(yajl_gen_status status)
{
    return status == yajl_gen_status_ok ? 0 : GDN_EINVALID;
}

static bool write_key(object_writer_t *writer, const char *key)
{
    if (!writer->failed)
        note_status(writer, gdn_json_gen_cstr(writer->gen, key));
    return !writer->failed;
}

static void write_string(object_writer_t *writer, const char *key, const char *text, size_t len)
{
    if (write_key(writer, key))
        note_status(writer, gdn_json_gen_string(writer->gen, text, len));
}

static void write_int(object_writer_t *writer, const char *key, int64_t value)
{
    if (write_key(writer, key))
        note_status(writer, yajl_result(yajl_gen_integer(writer->gen, value)));
}

static void write_bool(object_writer_t *writer, const char *key, int value)
{
    if (write_key(writer, key))
        note_status(writer, yajl_result(yajl_gen_bool(writer->gen, value)));
}

static void write_time(object_writer_t *writer, const char *key, int64_t us)
{
    if (write_key(writer, key))
        note_status(writer, gdn_json_gen_time(writer->gen, us));
}

/* Writes a JSON value; NULL writes an empty value of `empty_type`: {}, [] or null. */
static void write_value(object_writer_t *writer, const char *key, const gdn_json_t *value,
                        gdn_json_type_t empty_type)
{
    gdn_json_t empty = {.type = empty_type};

    if (write_key(writer, key))
        note_status(writer, gdn_json_gen(writer->gen, value != NULL ? value : &empty));
}

static int begin_object(object_writer_t *writer, yajl_gen gen)
{
    writer->gen = gen;
    writer->failed = 0;
    return yajl_result(yajl_gen_map_open(gen));
}

static int end_object(object_writer_t *writer)
{
    if (writer->failed || yajl_gen_map_close(writer->gen) != yajl_gen_status_ok)
        return GDN_EINVALID;
    return 0;
}

int gdn_task_gen(yajl_gen gen, const gdn_task_t *task)
{
    object_writer_t writer;

    if (begin_object(&writer, gen) != 0)
        return GDN_EINVALID;
    write_string(&writer, "id", task->id, strnlen(task->id, sizeof(task->id)));
    write_string(&writer, "role", task->role, task->role_len);
    write_string(&writer, "task_type", task->task_type, task->task_type_len);
    write_value(&writer, "input_data", task->input_data, GDN_JSON_OBJECT);
    write_int(&writer, "priority", task->priority);
    write_string(&writer, "status", gdn_task_status_name(task->status),
                 strlen(gdn_task_status_name(task->status)));
    write_time(&writer, "created_at", task->created_us);
    write_time(&writer, "updated_at", task->updated_us);
    write_string(&writer, "project_id", task->project_id, task->project_id_len);
    write_bool(&writer, "context_enabled", task->context_enabled);
    write_int(&writer, "context_limit", task->context_limit);
    write_int(&writer, "attempts", task->attempts);
    write_int(&writer, "max_attempts", task->max_attempts);
    write_int(&writer, "lease_s", task->lease_s);
    if (task->run_at_us != 0)
        write_time(&writer, "run_at", task->run_at_us);
    if (task->assigned_to != NULL) {
        write_string(&writer, "assigned_to", task->assigned_to, task->assigned_to_len);
        write_time(&writer, "assigned_at", task->assigned_us);
    }
    if (task->lease_expires_us != 0)
        write_time(&writer, "lease_expires_at", task->lease_expires_us);
    if (task->finished) {
        write_value(&writer, "result", task->result, GDN_JSON_NULL);
        write_time(&writer, "completed_at", task->completed_us);
    }
    if (task->observation_id != NULL)
        write_string(&writer, "observation_id", task->observation_id, task->observation_id_len);
    if (task->error != NULL)
        write_string(&writer, "error", task->error, task->error_len);
    if (task->late_result != NULL)
        write_value(&writer, "late_result", task->late_result, GDN_JSON_NULL);
    return end_object(&writer);
}

int gdn_worker_gen(yajl_gen gen, const gdn_worker_t *worker)
{
    object_writer_t writer;

    if (begin_object(&writer, gen) != 0)
        return GDN_EINVALID;
    write_string(&writer, "worker_id", worker->worker_id, worker->worker_id_len);
    write_value(&writer, "capabilities", worker->capabilities, GDN_JSON_ARRAY);
    write_time(&writer, "registered_at", worker->registered_us);
    write_time(&writer, "last_heartbeat", worker->last_heartbeat_us);
    write_string(&writer, "status", "active", strlen("active"));
    return end_object(&writer);
}

/* Takes the text of a rendered object, or NULL if rendering failed, and frees the generator. */
static char *finish_render(yajl_gen gen, int rc, size_t *len)
{
    char *text = rc == 0 ? gdn_json_gen_take(gen, len) : NULL;

    yajl_gen_free(gen);
    return text;
}

char *gdn_task_render(const gdn_task_t *task, size_t *len)
{
    yajl_gen gen = gdn_json_gen_new();

    if (gen == NULL)
        return NULL;
    return finish_render(gen, gdn_task_gen(gen, task), len);
}

char *gdn_worker_render(const gdn_worker_t *worker, size_t *len)
{
    yajl_gen gen = gdn_json_gen_new();

    if (gen == NULL)
        return NULL;
    return finish_render(gen, gdn_worker_gen(gen, worker), len);
}

int gdn_task_new_id(char out[GDN_JOURNAL_ID_LEN + 1])
{
    unsigned char bytes[16];
    size_t got = 0;

    /* getrandom blocks only until the kernel's pool is first seeded, then never fails short. */
    while (got < sizeof(bytes)) {
        ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        got += (size_t)n;
    }

    /* RFC 4122: version 4 in the high nibble of byte 6, variant 10xx in byte 8. */
    bytes[6] = (unsigned char)((bytes[6] & 0x0F) | 0x40);
    bytes[8] = (unsigned char)((bytes[8] & 0x3F) | 0x80);

    static const char hex[] = "0123456789abcdef";
    char *p = out;

    for (size_t i = 0; i < sizeof(bytes); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[bytes[i] >> 4];
        *p++ = hex[bytes[i] & 0x0F];
    }
    *p = '\0';
    return 0;
}

int gdn_task_id_valid(const char *text, size_t len)
{
    if (text == NULL || len != GDN_JOURNAL_ID_LEN)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        bool hyphen_place = i == 8 || i == 13 || i == 18 || i == 23;

        if (hyphen_place ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

/* Shortens a byte count so that it does not end inside a UTF-8 sequence. */
static size_t utf8_prefix(const char *text, size_t len)
{
    size_t end = len;

    while (end > 0 && ((unsigned char)text[end - 1] & 0xC0) == 0x80)
        end--;
    if (end == 0)
        return len;

    /* text[end - 1] leads a sequence: keep it only if all its bytes fit. */
    unsigned char lead = (unsigned char)text[end - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;

    return len - (end - 1) >= need ? len : end - 1;
}

size_t gdn_record_key(char out[GDN_JOURNAL_KEY_MAX + 1], const char *kind, const char *id,
                      size_t id_len)
{
    size_t len = strnlen(kind, GDN_JOURNAL_KEY_MAX);

    memcpy(out, kind, len);
    if (len < GDN_JOURNAL_KEY_MAX)
        out[len++] = ':';

    size_t room = GDN_JOURNAL_KEY_MAX - len;

    if (id_len > room)
        id_len = utf8_prefix(id, room);
    memcpy(out + len, id, id_len);
    len += id_len;
    out[len] = '\0';
    return len;
}
