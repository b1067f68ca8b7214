/*
 * Unit tests of tasks and workers: request validation with its 422 problem lists, defaults,
 * the lifecycle fields (leases, attempts, schedules, retries), the stored JSON objects and their
 * exact round trip, task ids and record keys.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cunit_main.h"
#include "gdn/error.h"
#include "gdn/task.h"

#define VALID_ID "0f8fad5b-d9cb-469f-a165-70867728950e"

/* 2026-01-17T12:34:56.123456 */
#define SOME_TIME INT64_C(1768653296123456)
#define SECOND_US INT64_C(1000000)

typedef enum body_kind {
    BODY_CREATE,
    BODY_COMPLETE,
    BODY_REGISTER,
    BODY_HEARTBEAT,
} body_kind_t;

/* Validates a body of the given kind and discards whatever it filled. */
static int parse_kind(body_kind_t kind, const char *body, size_t len, gdn_problems_t *problems)
{
    gdn_task_t task;
    gdn_task_complete_t complete;
    gdn_worker_t worker;
    gdn_json_doc_t *doc = NULL;
    int rc = -1;

    switch (kind) {
    case BODY_CREATE:
        rc = gdn_task_parse_create(body, len, 0, &task, &doc, problems);
        break;
    case BODY_COMPLETE:
        rc = gdn_task_parse_complete(body, len, &complete, &doc, problems);
        break;
    case BODY_REGISTER:
        rc = gdn_worker_parse_register(body, len, &worker, &doc, problems);
        break;
    case BODY_HEARTBEAT:
        rc = gdn_worker_parse_heartbeat(body, len, &worker, &doc, problems);
        break;
    }
    gdn_json_free(doc);
    return rc;
}

/* Checks that a body is refused with exactly the 422 body `expected`. */
static void check_rejected_len(body_kind_t kind, const char *body, size_t len, const char *expected)
{
    gdn_problems_t problems;

    CU_ASSERT_EQUAL_FATAL(gdn_problems_init(&problems), 0);
    CU_ASSERT_EQUAL(parse_kind(kind, body, len, &problems), GDN_EINVALID);
    CU_ASSERT(problems.count > 0);

    size_t text_len = 0;
    char *text = gdn_problems_render(&problems, &text_len);

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    if (strcmp(text, expected) != 0)
        fprintf(stderr, "\nbody %.*s\ngave   %s\nwanted %s\n", (int)len, body, text, expected);
    CU_ASSERT_STRING_EQUAL(text, expected);
    CU_ASSERT_EQUAL(text_len, strlen(text));
    free(text);
    gdn_problems_free(&problems);
}

static void check_rejected(body_kind_t kind, const char *body, const char *expected)
{
    check_rejected_len(kind, body, strlen(body), expected);
}

/* Checks that a body is refused with one problem of `type` at ["body", field]. */
static void check_field_problem(body_kind_t kind, const char *body, const char *field,
                                const char *type, const char *msg)
{
    char expected[512];

    snprintf(expected, sizeof(expected),
             "{\"detail\":[{\"type\":\"%s\",\"loc\":[\"body\",\"%s\"],\"msg\":\"%s\"}]}", type,
             field, msg);
    check_rejected(kind, body, expected);
}

typedef struct field_case {
    const char *body;
    const char *field;
    const char *type;
    const char *msg;
} field_case_t;

#define STRING_TYPE "string_type", "Input should be a valid string"
#define INT_TYPE "int_type", "Input should be a valid integer"
#define BOOL_TYPE "bool_type", "Input should be a valid boolean"
#define DICT_TYPE "dict_type", "Input should be a valid dictionary"
#define LIST_TYPE "list_type", "Input should be a valid list"
#define MISSING "missing", "Field required"
#define TOO_SHORT "string_too_short", "String should have at least 1 character"
#define FRACTION                                                                                   \
    "int_from_float", "Input should be a valid integer, got a number with a fractional part"
#define TOO_LARGE                                                                                  \
    "int_parsing_size", "Unable to parse input string as an integer, exceeds maximum size"
#define LITERAL "literal_error", "Input should be 'completed', 'failed' or 'retry'"
#define ROLE_CHARS "value_error", "Value error, role must not contain ',' or NUL characters"
#define WORKER_CHARS "value_error", GDN_WORKER_ID_FORBIDDEN_MSG
#define AT_LEAST_1 "greater_than_equal", "Input should be greater than or equal to 1"
#define DATETIME "datetime_parsing", "Input should be a valid datetime"
#define NUMBER_TYPE "float_type", "Input should be a valid number"

static void check_field_cases(body_kind_t kind, const field_case_t *cases, size_t count)
{
    for (size_t i = 0; i < count; i++)
        check_field_problem(kind, cases[i].body, cases[i].field, cases[i].type, cases[i].msg);
}

/* Builds {"NAME":"xxx...","task_type":"t"} with a string of `len` bytes. */
static char *long_string_body(const char *name, size_t len)
{
    size_t cap = len + strlen(name) + 40;
    char *body = malloc(cap);

    CU_ASSERT_PTR_NOT_NULL_FATAL(body);

    int head = snprintf(body, cap, "{\"%s\":\"", name);

    memset(body + head, 'x', len);
    snprintf(body + head + len, cap - (size_t)head - len, "\",\"task_type\":\"t\"}");
    return body;
}

static void test_task__create_fills_defaults(void)
{
    const char *body = "{\"task_type\":\"summarize\",\"unknown\":[1,{\"x\":null}]}";
    gdn_task_t task;
    gdn_json_doc_t *doc = NULL;
    gdn_problems_t problems;

    CU_ASSERT_EQUAL_FATAL(gdn_problems_init(&problems), 0);
    CU_ASSERT_EQUAL_FATAL(gdn_task_parse_create(body, strlen(body), 0, &task, &doc, &problems), 0);
    CU_ASSERT_EQUAL(problems.count, 0);
    CU_ASSERT_PTR_NOT_NULL(doc);
    CU_ASSERT_EQUAL(task.task_type_len, 9);
    CU_ASSERT_EQUAL(memcmp(task.task_type, "summarize", 9), 0);
    CU_ASSERT_EQUAL(task.role_len, 9);
    CU_ASSERT_EQUAL(memcmp(task.role, "archivist", 9), 0);
    CU_ASSERT_PTR_NULL(task.input_data);
    CU_ASSERT_EQUAL(task.priority, 5);
    CU_ASSERT_EQUAL(task.status, GDN_TASK_PENDING);
    CU_ASSERT_EQUAL(task.project_id_len, 7);
    CU_ASSERT_EQUAL(memcmp(task.project_id, "default", 7), 0);
    CU_ASSERT_EQUAL(task.context_enabled, 1);
    CU_ASSERT_EQUAL(task.context_limit, 10);
    CU_ASSERT_PTR_NULL(task.assigned_to);
    CU_ASSERT_EQUAL(task.finished, 0);
    CU_ASSERT_PTR_NULL(task.result);
    CU_ASSERT_PTR_NULL(task.observation_id);

    /* No lease in the body leaves it to the server's default; attempts start unused. */
    CU_ASSERT_EQUAL(task.attempts, 0);
    CU_ASSERT_EQUAL(task.max_attempts, GDN_TASK_MAX_ATTEMPTS_DEFAULT);
    CU_ASSERT_EQUAL(task.max_attempts, 3);
    CU_ASSERT_EQUAL(task.lease_s, 0);
    CU_ASSERT_EQUAL(task.run_at_us, 0);
    CU_ASSERT_EQUAL(task.lease_expires_us, 0);
    CU_ASSERT_PTR_NULL(task.error);
    CU_ASSERT_PTR_NULL(task.late_result);
    gdn_json_free(doc);
    gdn_problems_free(&problems);
}

static void test_task__create_reads_every_field(void)
{
    const char *body = "{\"task_type\":\"t\",\"role\":\"gardener\",\"input_data\":{\"k\":[1,2]},"
                       "\"priority\":-3,\"project_id\":\"p\",\"context_enabled\":false,"
                       "\"context_limit\":1e2,\"priority\":9.0,\"lease_s\":30,"
                       "\"max_attempts\":7,\"run_at\":\"2026-01-17T12:34:56.123456\"}";
    gdn_task_t task;
    gdn_json_doc_t *doc = NULL;
    gdn_problems_t problems;

    CU_ASSERT_EQUAL_FATAL(gdn_problems_init(&problems), 0);
    CU_ASSERT_EQUAL_FATAL(gdn_task_parse_create(body, strlen(body), 0, &task, &doc, &problems), 0);
    CU_ASSERT_EQUAL(task.role_len, 8);
    CU_ASSERT_EQUAL(memcmp(task.role, "gardener", 8), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(task.input_data);
    CU_ASSERT_EQUAL(task.input_data->type, GDN_JSON_OBJECT);
    CU_ASSERT_EQUAL(task.input_data->count, 1);
    CU_ASSERT_EQUAL(task.priority, 9);
    CU_ASSERT_EQUAL(task.project_id_len, 1);
    CU_ASSERT_EQUAL(task.project_id[0], 'p');
    CU_ASSERT_EQUAL(task.context_enabled, 0);
    CU_ASSERT_EQUAL(task.context_limit, 100);
    CU_ASSERT_EQUAL(task.lease_s, 30);
    CU_ASSERT_EQUAL(task.max_attempts, 7);
    CU_ASSERT_EQUAL(task.attempts, 0);
    CU_ASSERT_EQUAL(task.run_at_us, SOME_TIME);
    gdn_json_free(doc);
    gdn_problems_free(&problems);
}

static void test_task__create_refuses_each_wrong_field(void)
{
    static const field_case_t cases[] = {
        {"{}", "task_type", MISSING},
        {"{\"role\":\"r\"}", "task_type", MISSING},
        {"{\"task_type\":5}", "task_type", STRING_TYPE},
        {"{\"task_type\":null}", "task_type", STRING_TYPE},
        {"{\"task_type\":[\"t\"]}", "task_type", STRING_TYPE},
        {"{\"task_type\":\"t\",\"role\":7}", "role", STRING_TYPE},
        {"{\"task_type\":\"t\",\"role\":null}", "role", STRING_TYPE},
        {"{\"task_type\":\"t\",\"role\":\"\"}", "role", TOO_SHORT},
        {"{\"task_type\":\"t\",\"role\":\"a,b\"}", "role", ROLE_CHARS},
        {"{\"task_type\":\"t\",\"role\":\"a\\u0000b\"}", "role", ROLE_CHARS},
        {"{\"task_type\":\"t\",\"input_data\":[]}", "input_data", DICT_TYPE},
        {"{\"task_type\":\"t\",\"input_data\":null}", "input_data", DICT_TYPE},
        {"{\"task_type\":\"t\",\"input_data\":\"{}\"}", "input_data", DICT_TYPE},
        {"{\"task_type\":\"t\",\"priority\":\"5\"}", "priority", INT_TYPE},
        {"{\"task_type\":\"t\",\"priority\":true}", "priority", INT_TYPE},
        {"{\"task_type\":\"t\",\"priority\":null}", "priority", INT_TYPE},
        {"{\"task_type\":\"t\",\"priority\":1.5}", "priority", FRACTION},
        {"{\"task_type\":\"t\",\"priority\":1e-3}", "priority", FRACTION},
        {"{\"task_type\":\"t\",\"priority\":1e400}", "priority", TOO_LARGE},
        {"{\"task_type\":\"t\",\"priority\":9223372036854775808}", "priority", TOO_LARGE},
        {"{\"task_type\":\"t\",\"priority\":-99999999999999999999}", "priority", TOO_LARGE},
        {"{\"task_type\":\"t\",\"project_id\":3}", "project_id", STRING_TYPE},
        {"{\"task_type\":\"t\",\"project_id\":null}", "project_id", STRING_TYPE},
        {"{\"task_type\":\"t\",\"context_enabled\":1}", "context_enabled", BOOL_TYPE},
        {"{\"task_type\":\"t\",\"context_enabled\":0}", "context_enabled", BOOL_TYPE},
        {"{\"task_type\":\"t\",\"context_enabled\":\"true\"}", "context_enabled", BOOL_TYPE},
        {"{\"task_type\":\"t\",\"context_enabled\":null}", "context_enabled", BOOL_TYPE},
        {"{\"task_type\":\"t\",\"context_limit\":2.5}", "context_limit", FRACTION},
        {"{\"task_type\":\"t\",\"context_limit\":{}}", "context_limit", INT_TYPE},
        {"{\"task_type\":\"t\",\"context_limit\":\"10\"}", "context_limit", INT_TYPE},
    };

    check_field_cases(BODY_CREATE, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_task__create_enforces_length_limits(void)
{
    /* At the limit: accepted. */
    char *body = long_string_body("project_id", GDN_TASK_FIELD_MAX);

    CU_ASSERT_EQUAL(parse_kind(BODY_CREATE, body, strlen(body), NULL), 0);
    free(body);
    body = long_string_body("role", GDN_JOURNAL_ROLE_MAX);
    CU_ASSERT_EQUAL(parse_kind(BODY_CREATE, body, strlen(body), NULL), 0);
    free(body);

    /* One byte over: refused with the limit in the message. */
    body = long_string_body("project_id", GDN_TASK_FIELD_MAX + 1);
    check_field_problem(BODY_CREATE, body, "project_id", "string_too_long",
                        "String should have at most 1024 characters");
    free(body);
    body = long_string_body("role", GDN_JOURNAL_ROLE_MAX + 1);
    check_field_problem(BODY_CREATE, body, "role", "string_too_long",
                        "String should have at most 128 characters");
    free(body);

    /* The helper's body holds a task_type already, so this case is built by hand. */
    char big[GDN_TASK_FIELD_MAX + 40];
    int head = snprintf(big, sizeof(big), "{\"task_type\":\"");

    memset(big + head, 't', GDN_TASK_FIELD_MAX + 1);
    snprintf(big + head + GDN_TASK_FIELD_MAX + 1,
             sizeof(big) - (size_t)head - GDN_TASK_FIELD_MAX - 1, "\"}");
    check_field_problem(BODY_CREATE, big, "task_type", "string_too_long",
                        "String should have at most 1024 characters");
}

static void test_task__create_reports_every_problem_together(void)
{
    check_rejected(BODY_CREATE,
                   "{\"task_type\":1,\"role\":\"a,b\",\"priority\":\"high\",\"project_id\":\"p\","
                   "\"context_enabled\":0,\"context_limit\":0.5}",
                   "{\"detail\":["
                   "{\"type\":\"string_type\",\"loc\":[\"body\",\"task_type\"],"
                   "\"msg\":\"Input should be a valid string\"},"
                   "{\"type\":\"value_error\",\"loc\":[\"body\",\"role\"],"
                   "\"msg\":\"Value error, role must not contain ',' or NUL characters\"},"
                   "{\"type\":\"int_type\",\"loc\":[\"body\",\"priority\"],"
                   "\"msg\":\"Input should be a valid integer\"},"
                   "{\"type\":\"bool_type\",\"loc\":[\"body\",\"context_enabled\"],"
                   "\"msg\":\"Input should be a valid boolean\"},"
                   "{\"type\":\"int_from_float\",\"loc\":[\"body\",\"context_limit\"],"
                   "\"msg\":\"Input should be a valid integer, got a number with a fractional "
                   "part\"}]}");

    check_rejected(BODY_COMPLETE, "{\"task_id\":1,\"status\":\"done\",\"observation_id\":2}",
                   "{\"detail\":["
                   "{\"type\":\"string_type\",\"loc\":[\"body\",\"task_id\"],"
                   "\"msg\":\"Input should be a valid string\"},"
                   "{\"type\":\"literal_error\",\"loc\":[\"body\",\"status\"],"
                   "\"msg\":\"Input should be 'completed', 'failed' or 'retry'\"},"
                   "{\"type\":\"string_type\",\"loc\":[\"body\",\"observation_id\"],"
                   "\"msg\":\"Input should be a valid string\"}]}");
}

/* Parses a create body that must be accepted, with `now_us` as the time of the request. */
static void parse_create_ok(const char *body, int64_t now_us, gdn_task_t *task,
                            gdn_json_doc_t **doc)
{
    gdn_problems_t problems;

    CU_ASSERT_EQUAL_FATAL(gdn_problems_init(&problems), 0);

    int rc = gdn_task_parse_create(body, strlen(body), now_us, task, doc, &problems);

    if (rc != 0) {
        char *text = gdn_problems_render(&problems, NULL);

        fprintf(stderr, "\nbody %s\nrefused with %s\n", body, text != NULL ? text : "?");
        free(text);
    }
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    gdn_problems_free(&problems);
}

static void test_task__create_bounds_lease_and_attempts(void)
{
    static const field_case_t cases[] = {
        {"{\"task_type\":\"t\",\"lease_s\":0}", "lease_s", AT_LEAST_1},
        {"{\"task_type\":\"t\",\"lease_s\":-30}", "lease_s", AT_LEAST_1},
        {"{\"task_type\":\"t\",\"lease_s\":604801}", "lease_s", "less_than_equal",
         "Input should be less than or equal to 604800"},
        {"{\"task_type\":\"t\",\"lease_s\":1.5}", "lease_s", FRACTION},
        {"{\"task_type\":\"t\",\"lease_s\":1e400}", "lease_s", TOO_LARGE},
        {"{\"task_type\":\"t\",\"lease_s\":\"60\"}", "lease_s", INT_TYPE},
        {"{\"task_type\":\"t\",\"max_attempts\":0}", "max_attempts", AT_LEAST_1},
        {"{\"task_type\":\"t\",\"max_attempts\":-1}", "max_attempts", AT_LEAST_1},
        {"{\"task_type\":\"t\",\"max_attempts\":1001}", "max_attempts", "less_than_equal",
         "Input should be less than or equal to 1000"},
        {"{\"task_type\":\"t\",\"max_attempts\":true}", "max_attempts", INT_TYPE},
    };

    check_field_cases(BODY_CREATE, cases, sizeof(cases) / sizeof(cases[0]));

    /* Both ends of each range are accepted. */
    gdn_task_t task;
    gdn_json_doc_t *doc = NULL;

    parse_create_ok("{\"task_type\":\"t\",\"lease_s\":1,\"max_attempts\":1}", 0, &task, &doc);
    CU_ASSERT_EQUAL(task.lease_s, 1);
    CU_ASSERT_EQUAL(task.max_attempts, 1);
    gdn_json_free(doc);
    parse_create_ok("{\"task_type\":\"t\",\"lease_s\":604800,\"max_attempts\":1000}", 0, &task,
                    &doc);
    CU_ASSERT_EQUAL(task.lease_s, GDN_TASK_LEASE_MAX_S);
    CU_ASSERT_EQUAL(task.max_attempts, GDN_TASK_MAX_ATTEMPTS_LIMIT);
    gdn_json_free(doc);
}

/* Parses a create body at SOME_TIME and returns the run_at it gives (0 for none). */
static int64_t scheduled_run_at(const char *body)
{
    gdn_task_t task;
    gdn_json_doc_t *doc = NULL;

    parse_create_ok(body, SOME_TIME, &task, &doc);
    gdn_json_free(doc);
    return task.run_at_us;
}

static void test_task__create_schedules_by_run_at_or_delay(void)
{
    int64_t year_s = GDN_TASK_DELAY_MAX_S;

    CU_ASSERT_EQUAL(scheduled_run_at("{\"task_type\":\"t\"}"), 0);
    CU_ASSERT_EQUAL(
        scheduled_run_at("{\"task_type\":\"t\",\"run_at\":\"2026-01-17T12:34:56.123456\"}"),
        SOME_TIME);
    CU_ASSERT_EQUAL(scheduled_run_at("{\"task_type\":\"t\",\"run_at\":\"2026-02-01T00:00:00Z\"}"),
                    INT64_C(1769904000000000));

    /* A time in the past is accepted: the task is claimable at once. */
    CU_ASSERT_EQUAL(scheduled_run_at("{\"task_type\":\"t\",\"run_at\":\"1999-12-31T23:59:59.5\"}"),
                    INT64_C(946684799500000));

    /* delay_s counts from the request, in whole or fractional seconds; 0 is no delay. */
    CU_ASSERT_EQUAL(scheduled_run_at("{\"task_type\":\"t\",\"delay_s\":90}"),
                    SOME_TIME + 90 * SECOND_US);
    CU_ASSERT_EQUAL(scheduled_run_at("{\"task_type\":\"t\",\"delay_s\":0.25}"),
                    SOME_TIME + SECOND_US / 4);
    CU_ASSERT_EQUAL(scheduled_run_at("{\"task_type\":\"t\",\"delay_s\":1.5e1}"),
                    SOME_TIME + 15 * SECOND_US);
    CU_ASSERT_EQUAL(scheduled_run_at("{\"task_type\":\"t\",\"delay_s\":0}"), 0);
    CU_ASSERT_EQUAL(scheduled_run_at("{\"task_type\":\"t\",\"delay_s\":31622400}"),
                    SOME_TIME + year_s * SECOND_US);

    /* A null counts as absent, so one field null and the other given is not both. */
    CU_ASSERT_EQUAL(scheduled_run_at("{\"task_type\":\"t\",\"run_at\":null,\"delay_s\":2}"),
                    SOME_TIME + 2 * SECOND_US);
    CU_ASSERT_EQUAL(scheduled_run_at("{\"task_type\":\"t\",\"run_at\":\"2026-01-17T12:34:56."
                                     "123456\",\"delay_s\":null}"),
                    SOME_TIME);
    CU_ASSERT_EQUAL(scheduled_run_at("{\"task_type\":\"t\",\"run_at\":null,\"delay_s\":null}"), 0);
}

/* Checks that a create body is refused with exactly one problem, located at ["body", field]. */
static void check_refused_at(const char *body, const char *field)
{
    gdn_problems_t problems;
    char loc[128];

    CU_ASSERT_EQUAL_FATAL(gdn_problems_init(&problems), 0);
    CU_ASSERT_EQUAL(parse_kind(BODY_CREATE, body, strlen(body), &problems), GDN_EINVALID);
    CU_ASSERT_EQUAL(problems.count, 1);

    char *text = gdn_problems_render(&problems, NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    snprintf(loc, sizeof(loc), "\"loc\":[\"body\",\"%s\"]", field);
    if (strstr(text, loc) == NULL)
        fprintf(stderr, "\nbody %s\ngave %s\n", body, text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, loc));
    free(text);
    gdn_problems_free(&problems);
}

static void test_task__create_refuses_bad_schedules(void)
{
    static const field_case_t cases[] = {
        {"{\"task_type\":\"t\",\"run_at\":\"tomorrow\"}", "run_at", DATETIME},
        {"{\"task_type\":\"t\",\"run_at\":\"2026-02-30T00:00:00\"}", "run_at", DATETIME},
        {"{\"task_type\":\"t\",\"run_at\":\"2026-01-17 12:34:56\"}", "run_at", DATETIME},
        {"{\"task_type\":\"t\",\"run_at\":\"2026-01-17T12:34:56+02:00\"}", "run_at", DATETIME},
        {"{\"task_type\":\"t\",\"run_at\":1768653296}", "run_at", STRING_TYPE},
        {"{\"task_type\":\"t\",\"delay_s\":\"5\"}", "delay_s", NUMBER_TYPE},
        {"{\"task_type\":\"t\",\"delay_s\":true}", "delay_s", NUMBER_TYPE},
        {"{\"task_type\":\"t\",\"delay_s\":[5]}", "delay_s", NUMBER_TYPE},
        {"{\"task_type\":\"t\",\"run_at\":\"2026-01-17T12:34:56\",\"delay_s\":5}", "delay_s",
         "value_error", "Value error, give run_at or delay_s, not both"},
        {"{\"task_type\":\"t\",\"delay_s\":0,\"run_at\":\"2026-01-17T12:34:56\"}", "delay_s",
         "value_error", "Value error, give run_at or delay_s, not both"},
    };

    check_field_cases(BODY_CREATE, cases, sizeof(cases) / sizeof(cases[0]));

    /* A negative delay, or one beyond a year, is refused. */
    check_refused_at("{\"task_type\":\"t\",\"delay_s\":-1}", "delay_s");
    check_refused_at("{\"task_type\":\"t\",\"delay_s\":-0.000001}", "delay_s");
    check_refused_at("{\"task_type\":\"t\",\"delay_s\":31622400.5}", "delay_s");
    check_refused_at("{\"task_type\":\"t\",\"delay_s\":1e400}", "delay_s");
}

static void test_task__bodies_that_are_not_objects_are_refused(void)
{
    const body_kind_t kinds[] = {BODY_CREATE, BODY_COMPLETE, BODY_REGISTER, BODY_HEARTBEAT};
    const char *not_object = "{\"detail\":[{\"type\":\"model_attributes_type\",\"loc\":[\"body\"],"
                             "\"msg\":\"Input should be a valid dictionary or object to extract "
                             "fields from\"}]}";

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        check_rejected(kinds[i], "[{\"task_type\":\"t\"}]", not_object);
        check_rejected(kinds[i], "null", not_object);
        check_rejected(kinds[i], "\"text\"", not_object);
        check_rejected(kinds[i], "7", not_object);

        /* No body at all is a missing body, as FastAPI reports it. */
        check_rejected_len(kinds[i], NULL, 0,
                           "{\"detail\":[{\"type\":\"missing\",\"loc\":[\"body\"],"
                           "\"msg\":\"Field required\"}]}");

        check_rejected(kinds[i], "{\"task_type\":",
                       "{\"detail\":[{\"type\":\"json_invalid\",\"loc\":[\"body\",13],"
                       "\"msg\":\"JSON decode error\",\"ctx\":{\"error\":\"premature EOF\"}}]}");
        check_rejected(kinds[i], "{} trailing",
                       "{\"detail\":[{\"type\":\"json_invalid\",\"loc\":[\"body\",3],"
                       "\"msg\":\"JSON decode error\","
                       "\"ctx\":{\"error\":\"trailing garbage\"}}]}");
        check_rejected(kinds[i], "   ",
                       "{\"detail\":[{\"type\":\"json_invalid\",\"loc\":[\"body\",3],"
                       "\"msg\":\"JSON decode error\",\"ctx\":{\"error\":\"premature EOF\"}}]}");
    }
}

static void test_task__complete_fills_defaults(void)
{
    const char *body = "{\"task_id\":\"" VALID_ID "\"}";
    gdn_task_complete_t complete;
    gdn_json_doc_t *doc = NULL;
    gdn_problems_t problems;

    CU_ASSERT_EQUAL_FATAL(gdn_problems_init(&problems), 0);
    CU_ASSERT_EQUAL_FATAL(gdn_task_parse_complete(body, strlen(body), &complete, &doc, &problems),
                          0);
    CU_ASSERT_STRING_EQUAL(complete.task_id, VALID_ID);
    CU_ASSERT_PTR_NULL(complete.result);
    CU_ASSERT_EQUAL(complete.status, GDN_TASK_COMPLETED);
    CU_ASSERT_PTR_NULL(complete.observation_id);
    CU_ASSERT_EQUAL(complete.retry, 0);
    CU_ASSERT_PTR_NULL(complete.worker_id);
    gdn_json_free(doc);
    gdn_problems_free(&problems);
}

static void test_task__complete_reads_every_field(void)
{
    const char *body = "{\"task_id\":\"" VALID_ID "\",\"result\":{\"ok\":[true]},"
                       "\"status\":\"failed\",\"observation_id\":\"obs-1\"}";
    gdn_task_complete_t complete;
    gdn_json_doc_t *doc = NULL;

    CU_ASSERT_EQUAL_FATAL(gdn_task_parse_complete(body, strlen(body), &complete, &doc, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(complete.result);
    CU_ASSERT_EQUAL(complete.result->type, GDN_JSON_OBJECT);
    CU_ASSERT_EQUAL(complete.status, GDN_TASK_FAILED);
    CU_ASSERT_EQUAL(complete.observation_id_len, 5);
    CU_ASSERT_EQUAL(memcmp(complete.observation_id, "obs-1", 5), 0);
    gdn_json_free(doc);

    /* null is accepted where the field may be null, and a null result is no result. */
    body = "{\"task_id\":\"" VALID_ID "\",\"result\":null,\"status\":\"completed\","
           "\"observation_id\":null}";
    CU_ASSERT_EQUAL_FATAL(gdn_task_parse_complete(body, strlen(body), &complete, &doc, NULL), 0);
    CU_ASSERT_PTR_NULL(complete.result);
    CU_ASSERT_EQUAL(complete.status, GDN_TASK_COMPLETED);
    CU_ASSERT_PTR_NULL(complete.observation_id);
    gdn_json_free(doc);

    /* Any JSON is a result, scalars included. */
    body = "{\"task_id\":\"" VALID_ID "\",\"result\":\"done\"}";
    CU_ASSERT_EQUAL_FATAL(gdn_task_parse_complete(body, strlen(body), &complete, &doc, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(complete.result);
    CU_ASSERT_EQUAL(complete.result->type, GDN_JSON_STRING);
    gdn_json_free(doc);
}

static void test_task__complete_reads_retry_and_worker(void)
{
    const char *body = "{\"task_id\":\"" VALID_ID "\",\"status\":\"retry\",\"worker_id\":\"pi-4\","
                       "\"result\":{\"error\":\"busy\"}}";
    gdn_task_complete_t complete;
    gdn_json_doc_t *doc = NULL;

    CU_ASSERT_EQUAL_FATAL(gdn_task_parse_complete(body, strlen(body), &complete, &doc, NULL), 0);
    CU_ASSERT_EQUAL(complete.retry, 1);
    CU_ASSERT_EQUAL(complete.worker_id_len, 4);
    CU_ASSERT(complete.worker_id != NULL && memcmp(complete.worker_id, "pi-4", 4) == 0);
    CU_ASSERT_PTR_NOT_NULL(complete.result);
    gdn_json_free(doc);

    /* A finishing status is no retry; a null worker is a client that names none. */
    body = "{\"task_id\":\"" VALID_ID "\",\"status\":\"failed\",\"worker_id\":null}";
    CU_ASSERT_EQUAL_FATAL(gdn_task_parse_complete(body, strlen(body), &complete, &doc, NULL), 0);
    CU_ASSERT_EQUAL(complete.retry, 0);
    CU_ASSERT_EQUAL(complete.status, GDN_TASK_FAILED);
    CU_ASSERT_PTR_NULL(complete.worker_id);
    CU_ASSERT_EQUAL(complete.worker_id_len, 0);
    gdn_json_free(doc);

    /* The longest worker id is accepted, one byte more is not. */
    char big[GDN_WORKER_ID_MAX + 80];
    int head = snprintf(big, sizeof(big), "{\"task_id\":\"" VALID_ID "\",\"worker_id\":\"");

    memset(big + head, 'w', GDN_WORKER_ID_MAX);
    snprintf(big + head + GDN_WORKER_ID_MAX, sizeof(big) - (size_t)head - GDN_WORKER_ID_MAX, "\"}");
    CU_ASSERT_EQUAL_FATAL(gdn_task_parse_complete(big, strlen(big), &complete, &doc, NULL), 0);
    CU_ASSERT_EQUAL(complete.worker_id_len, GDN_WORKER_ID_MAX);
    gdn_json_free(doc);
    memset(big + head, 'w', GDN_WORKER_ID_MAX + 1);
    snprintf(big + head + GDN_WORKER_ID_MAX + 1, sizeof(big) - (size_t)head - GDN_WORKER_ID_MAX - 1,
             "\"}");
    check_field_problem(BODY_COMPLETE, big, "worker_id", "string_too_long",
                        "String should have at most 200 characters");
}

static void test_task__complete_with_an_unknown_id_is_left_for_not_found(void)
{
    /* Any string is looked up: an empty one and a very long one are "not found" too. */
    const char *ids[] = {"nope", "0F8FAD5B-D9CB-469F-A165-70867728950E", VALID_ID "0", "",
                         "0123456789012345678901234567890123456789012345678901234567890123"
                         "0123456789012345678901234567890123456789012345678901234567890123"};

    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        char body[300];
        gdn_task_complete_t complete;
        gdn_json_doc_t *doc = NULL;

        snprintf(body, sizeof(body), "{\"task_id\":\"%s\"}", ids[i]);
        memset(&complete, 'x', sizeof(complete));
        CU_ASSERT_EQUAL(gdn_task_parse_complete(body, strlen(body), &complete, &doc, NULL), 0);
        CU_ASSERT_STRING_EQUAL(complete.task_id, "");
        gdn_json_free(doc);
    }
}

static void test_task__complete_refuses_each_wrong_field(void)
{
    static const field_case_t cases[] = {
        {"{}", "task_id", MISSING},
        {"{\"result\":1}", "task_id", MISSING},
        {"{\"task_id\":5}", "task_id", STRING_TYPE},
        {"{\"task_id\":null}", "task_id", STRING_TYPE},
        {"{\"task_id\":\"" VALID_ID "\",\"status\":\"done\"}", "status", LITERAL},
        {"{\"task_id\":\"" VALID_ID "\",\"status\":\"pending\"}", "status", LITERAL},
        {"{\"task_id\":\"" VALID_ID "\",\"status\":\"Completed\"}", "status", LITERAL},
        {"{\"task_id\":\"" VALID_ID "\",\"status\":1}", "status", LITERAL},
        {"{\"task_id\":\"" VALID_ID "\",\"status\":null}", "status", LITERAL},
        {"{\"task_id\":\"" VALID_ID "\",\"observation_id\":5}", "observation_id", STRING_TYPE},
        {"{\"task_id\":\"" VALID_ID "\",\"observation_id\":{}}", "observation_id", STRING_TYPE},
        {"{\"task_id\":\"" VALID_ID "\",\"status\":\"Retry\"}", "status", LITERAL},
        {"{\"task_id\":\"" VALID_ID "\",\"status\":\"retrying\"}", "status", LITERAL},
        {"{\"task_id\":\"" VALID_ID "\",\"worker_id\":5}", "worker_id", STRING_TYPE},
        {"{\"task_id\":\"" VALID_ID "\",\"worker_id\":\"\"}", "worker_id", TOO_SHORT},
        {"{\"task_id\":\"" VALID_ID "\",\"worker_id\":\"a/b\"}", "worker_id", WORKER_CHARS},
    };

    check_field_cases(BODY_COMPLETE, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_task__register_fills_defaults(void)
{
    const char *body = "{\"worker_id\":\"pi-4\"}";
    gdn_worker_t worker;
    gdn_json_doc_t *doc = NULL;

    CU_ASSERT_EQUAL_FATAL(gdn_worker_parse_register(body, strlen(body), &worker, &doc, NULL), 0);
    CU_ASSERT_EQUAL(worker.worker_id_len, 4);
    CU_ASSERT_EQUAL(memcmp(worker.worker_id, "pi-4", 4), 0);
    CU_ASSERT_PTR_NULL(worker.capabilities);
    gdn_json_free(doc);

    body = "{\"worker_id\":\"pi-4\",\"capabilities\":[\"archivist\",\"gardener\"]}";
    CU_ASSERT_EQUAL_FATAL(gdn_worker_parse_register(body, strlen(body), &worker, &doc, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(worker.capabilities);
    CU_ASSERT_EQUAL(worker.capabilities->count, 2);
    gdn_json_free(doc);

    body = "{\"worker_id\":\"pi-4\",\"capabilities\":[]}";
    CU_ASSERT_EQUAL_FATAL(gdn_worker_parse_register(body, strlen(body), &worker, &doc, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(worker.capabilities);
    CU_ASSERT_EQUAL(worker.capabilities->count, 0);
    gdn_json_free(doc);

    body = "{\"worker_id\":\"pi-4\",\"capabilities\":[1]}";
    CU_ASSERT_EQUAL(gdn_worker_parse_heartbeat(body, strlen(body), &worker, &doc, NULL), 0);
    CU_ASSERT_EQUAL(worker.worker_id_len, 4);
    gdn_json_free(doc);
}

static void test_task__register_and_heartbeat_refuse_each_wrong_field(void)
{
    static const field_case_t cases[] = {
        {"{}", "worker_id", MISSING},
        {"{\"worker_id\":1}", "worker_id", STRING_TYPE},
        {"{\"worker_id\":null}", "worker_id", STRING_TYPE},
        {"{\"worker_id\":\"\"}", "worker_id", TOO_SHORT},
        {"{\"worker_id\":\"a/b\"}", "worker_id", WORKER_CHARS},
        {"{\"worker_id\":\"a\\u0000\"}", "worker_id", WORKER_CHARS},
        {"{\"worker_id\":\"r\\rs\"}", "worker_id", WORKER_CHARS},
        {"{\"worker_id\":\"c\\u0001d\"}", "worker_id", WORKER_CHARS},
        {"{\"worker_id\":\"del\\u007f\"}", "worker_id", WORKER_CHARS},
    };

    check_field_cases(BODY_REGISTER, cases, sizeof(cases) / sizeof(cases[0]));
    check_field_cases(BODY_HEARTBEAT, cases, sizeof(cases) / sizeof(cases[0]));

    static const field_case_t register_cases[] = {
        {"{\"worker_id\":\"w\",\"capabilities\":\"x\"}", "capabilities", LIST_TYPE},
        {"{\"worker_id\":\"w\",\"capabilities\":null}", "capabilities", LIST_TYPE},
        {"{\"worker_id\":\"w\",\"capabilities\":{\"a\":1}}", "capabilities", LIST_TYPE},
        {"{\"worker_id\":\"w\",\"capabilities\":[\"a\",1]}", "capabilities", STRING_TYPE},
    };

    check_field_cases(BODY_REGISTER, register_cases,
                      sizeof(register_cases) / sizeof(register_cases[0]));

    /* Each item that is not a string is its own problem. */
    gdn_problems_t problems;
    const char *body = "{\"worker_id\":\"w\",\"capabilities\":[null,\"a\",[]]}";

    CU_ASSERT_EQUAL_FATAL(gdn_problems_init(&problems), 0);
    CU_ASSERT_EQUAL(parse_kind(BODY_REGISTER, body, strlen(body), &problems), GDN_EINVALID);
    CU_ASSERT_EQUAL(problems.count, 2);
    gdn_problems_free(&problems);

    char id[GDN_WORKER_ID_MAX + 40];
    int head = snprintf(id, sizeof(id), "{\"worker_id\":\"");

    memset(id + head, 'w', GDN_WORKER_ID_MAX);
    snprintf(id + head + GDN_WORKER_ID_MAX, sizeof(id) - (size_t)head - GDN_WORKER_ID_MAX, "\"}");
    CU_ASSERT_EQUAL(parse_kind(BODY_REGISTER, id, strlen(id), NULL), 0);

    memset(id + head, 'w', GDN_WORKER_ID_MAX + 1);
    snprintf(id + head + GDN_WORKER_ID_MAX + 1, sizeof(id) - (size_t)head - GDN_WORKER_ID_MAX - 1,
             "\"}");
    check_field_problem(BODY_HEARTBEAT, id, "worker_id", "string_too_long",
                        "String should have at most 200 characters");
}

static void test_task__problems_render_as_fastapi_does(void)
{
    gdn_problems_t problems;
    gdn_json_error_t error = {.offset = 42};

    snprintf(error.message, sizeof(error.message), "invalid \"UTF-8\"");
    CU_ASSERT_EQUAL_FATAL(gdn_problems_init(&problems), 0);
    gdn_problems_add(&problems, "query", "worker_id", "missing", "Field required");
    gdn_problems_add(&problems, "body", NULL, "missing", "Field required");
    gdn_problems_add_json_error(&problems, &error);
    CU_ASSERT_EQUAL(problems.count, 3);

    size_t len = 0;
    char *text = gdn_problems_render(&problems, &len);

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_STRING_EQUAL(
        text, "{\"detail\":["
              "{\"type\":\"missing\",\"loc\":[\"query\",\"worker_id\"],\"msg\":\"Field required\"},"
              "{\"type\":\"missing\",\"loc\":[\"body\"],\"msg\":\"Field required\"},"
              "{\"type\":\"json_invalid\",\"loc\":[\"body\",42],\"msg\":\"JSON decode error\","
              "\"ctx\":{\"error\":\"invalid \\\"UTF-8\\\"\"}}]}");
    CU_ASSERT_EQUAL(len, strlen(text));
    free(text);
    gdn_problems_free(&problems);
    gdn_problems_free(&problems);
}

/* A task with every optional part filled in, pointing into `doc`. */
static void make_full_task(gdn_task_t *task, gdn_json_doc_t **doc)
{
    const char *values = "{\"input\":{\"path\":\"/a/b\",\"n\":[1,2.50,-0,1E+3],\"s\":\"\\u0000\"},"
                         "\"result\":{\"summary\":\"d\xc3\xa9j\xc3\xa0 vu\",\"ok\":true},"
                         "\"late\":[\"slow\",null]}";

    CU_ASSERT_EQUAL_FATAL(gdn_json_parse(values, strlen(values), doc, NULL), 0);
    memset(task, 0, sizeof(*task));
    memcpy(task->id, VALID_ID, sizeof(task->id));
    task->role = "gardener";
    task->role_len = 8;
    task->task_type = "summarize";
    task->task_type_len = 9;
    task->input_data = gdn_json_get(gdn_json_root(*doc), "input");
    task->priority = INT64_MIN;
    task->status = GDN_TASK_COMPLETED;
    task->created_us = 0;
    task->updated_us = SOME_TIME;
    task->project_id = "default";
    task->project_id_len = 7;
    task->context_enabled = 0;
    task->context_limit = INT64_MAX;
    task->assigned_to = "pi-4";
    task->assigned_to_len = 4;
    task->assigned_us = SOME_TIME - 1;
    task->finished = 1;
    task->result = gdn_json_get(gdn_json_root(*doc), "result");
    task->completed_us = SOME_TIME + 2;
    task->observation_id = "obs";
    task->observation_id_len = 3;
    task->attempts = 2;
    task->max_attempts = 5;
    task->lease_s = 45;
    task->run_at_us = SOME_TIME + 3;
    task->lease_expires_us = SOME_TIME + 4;
    task->error = "lease expired";
    task->error_len = 13;
    task->late_result = gdn_json_get(gdn_json_root(*doc), "late");
}

static void test_task__render_writes_fields_in_order(void)
{
    gdn_task_t task;
    gdn_json_doc_t *doc = NULL;
    size_t len = 0;

    make_full_task(&task, &doc);

    char *text = gdn_task_render(&task, &len);
    const char *expected =
        "{\"id\":\"" VALID_ID "\",\"role\":\"gardener\",\"task_type\":\"summarize\","
        "\"input_data\":{\"path\":\"/a/b\",\"n\":[1,2.50,-0,1E+3],\"s\":\"\\u0000\"},"
        "\"priority\":-9223372036854775808,\"status\":\"completed\","
        "\"created_at\":\"1970-01-01T00:00:00.000000\","
        "\"updated_at\":\"2026-01-17T12:34:56.123456\",\"project_id\":\"default\","
        "\"context_enabled\":false,\"context_limit\":9223372036854775807,"
        "\"attempts\":2,\"max_attempts\":5,\"lease_s\":45,"
        "\"run_at\":\"2026-01-17T12:34:56.123459\","
        "\"assigned_to\":\"pi-4\",\"assigned_at\":\"2026-01-17T12:34:56.123455\","
        "\"lease_expires_at\":\"2026-01-17T12:34:56.123460\","
        "\"result\":{\"summary\":\"d\xc3\xa9j\xc3\xa0 vu\",\"ok\":true},"
        "\"completed_at\":\"2026-01-17T12:34:56.123458\",\"observation_id\":\"obs\","
        "\"error\":\"lease expired\",\"late_result\":[\"slow\",null]}";

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    if (strcmp(text, expected) != 0)
        fprintf(stderr, "\ngave   %s\nwanted %s\n", text, expected);
    CU_ASSERT_STRING_EQUAL(text, expected);
    CU_ASSERT_EQUAL(len, strlen(expected));
    free(text);

    /* A fresh task: no assignment, no result, input_data and result absent, and of the
     * lifecycle fields only the three that every task carries. */
    task.input_data = NULL;
    task.status = GDN_TASK_PENDING;
    task.priority = 5;
    task.context_limit = 10;
    task.context_enabled = 1;
    task.assigned_to = NULL;
    task.finished = 0;
    task.observation_id = NULL;
    task.attempts = 0;
    task.max_attempts = 3;
    task.lease_s = 0;
    task.run_at_us = 0;
    task.lease_expires_us = 0;
    task.error = NULL;
    task.late_result = NULL;
    text = gdn_task_render(&task, &len);
    expected = "{\"id\":\"" VALID_ID "\",\"role\":\"gardener\",\"task_type\":\"summarize\","
               "\"input_data\":{},\"priority\":5,\"status\":\"pending\","
               "\"created_at\":\"1970-01-01T00:00:00.000000\","
               "\"updated_at\":\"2026-01-17T12:34:56.123456\",\"project_id\":\"default\","
               "\"context_enabled\":true,\"context_limit\":10,\"attempts\":0,"
               "\"max_attempts\":3,\"lease_s\":0}";
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_STRING_EQUAL(text, expected);
    free(text);

    /* Finished with no result writes null. */
    task.finished = 1;
    task.result = NULL;
    task.status = GDN_TASK_FAILED;
    text = gdn_task_render(&task, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(text, "\"result\":null,\"completed_at\":\"2026-01-17T12:34:56.123458\"}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"status\":\"failed\""));
    free(text);
    gdn_json_free(doc);
}

/* Renders a task, reads it back and renders it again: the two texts must be identical. */
static void check_task_round_trip(const gdn_task_t *task)
{
    size_t len = 0, again_len = 0;
    char *text = gdn_task_render(task, &len);
    gdn_task_t back;
    gdn_json_doc_t *doc = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_EQUAL_FATAL(gdn_task_from_json(text, len, &back, &doc), 0);

    char *again = gdn_task_render(&back, &again_len);

    CU_ASSERT_PTR_NOT_NULL_FATAL(again);
    CU_ASSERT_EQUAL(again_len, len);
    CU_ASSERT_STRING_EQUAL(again, text);
    CU_ASSERT_STRING_EQUAL(back.id, task->id);
    CU_ASSERT_EQUAL(back.priority, task->priority);
    CU_ASSERT_EQUAL(back.status, task->status);
    CU_ASSERT_EQUAL(back.created_us, task->created_us);
    CU_ASSERT_EQUAL(back.updated_us, task->updated_us);
    CU_ASSERT_EQUAL(back.context_enabled, task->context_enabled);
    CU_ASSERT_EQUAL(back.context_limit, task->context_limit);
    CU_ASSERT_EQUAL(back.finished, task->finished);
    CU_ASSERT_EQUAL(back.assigned_to != NULL, task->assigned_to != NULL);
    CU_ASSERT_EQUAL(back.observation_id != NULL, task->observation_id != NULL);
    if (task->assigned_to != NULL)
        CU_ASSERT_EQUAL(back.assigned_us, task->assigned_us);
    if (task->finished)
        CU_ASSERT_EQUAL(back.completed_us, task->completed_us);
    CU_ASSERT_EQUAL(back.attempts, task->attempts);
    CU_ASSERT_EQUAL(back.max_attempts, task->max_attempts);
    CU_ASSERT_EQUAL(back.lease_s, task->lease_s);
    CU_ASSERT_EQUAL(back.run_at_us, task->run_at_us);
    CU_ASSERT_EQUAL(back.lease_expires_us, task->lease_expires_us);
    CU_ASSERT_EQUAL(back.error != NULL, task->error != NULL);
    if (task->error != NULL && back.error != NULL)
        CU_ASSERT(back.error_len == task->error_len &&
                  memcmp(back.error, task->error, task->error_len) == 0);
    CU_ASSERT_EQUAL(back.late_result != NULL, task->late_result != NULL);
    free(again);
    free(text);
    gdn_json_free(doc);
}

static void test_task__stored_tasks_round_trip_exactly(void)
{
    gdn_task_t task;
    gdn_json_doc_t *doc = NULL;

    make_full_task(&task, &doc);
    check_task_round_trip(&task);

    task.result = NULL;
    check_task_round_trip(&task);

    /* Each optional lifecycle field may be absent on its own. */
    task.late_result = NULL;
    check_task_round_trip(&task);
    task.error = NULL;
    check_task_round_trip(&task);
    task.run_at_us = 0;
    check_task_round_trip(&task);
    task.lease_expires_us = 0;
    check_task_round_trip(&task);

    task.observation_id = NULL;
    task.finished = 0;
    task.status = GDN_TASK_PROCESSING;
    check_task_round_trip(&task);

    task.assigned_to = NULL;
    task.status = GDN_TASK_PENDING;
    task.input_data = NULL;
    check_task_round_trip(&task);

    /* A task built from a create body, as the server makes them. */
    const char *body = "{\"task_type\":\"t\",\"input_data\":{\"deep\":[[[{\"x\":\"\\/\"}]]]}}";
    gdn_json_doc_t *body_doc = NULL;

    CU_ASSERT_EQUAL_FATAL(gdn_task_parse_create(body, strlen(body), 0, &task, &body_doc, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(gdn_task_new_id(task.id), 0);
    task.created_us = SOME_TIME;
    task.updated_us = SOME_TIME;
    check_task_round_trip(&task);
    gdn_json_free(body_doc);
    gdn_json_free(doc);
}

/* Parses a stored task that must be refused; no document may be left over. */
static void check_bad_stored_task(const char *json)
{
    gdn_task_t task;
    gdn_json_doc_t *doc = (gdn_json_doc_t *)&doc;

    CU_ASSERT_EQUAL(gdn_task_from_json(json, strlen(json), &task, &doc), GDN_EINVALID);
    CU_ASSERT_PTR_NULL(doc);
}

static void test_task__stored_tasks_missing_fields_are_refused(void)
{
    static const char *const fields[] = {
        "\"id\"",
        "\"role\"",
        "\"task_type\"",
        "\"input_data\"",
        "\"priority\"",
        "\"status\"",
        "\"created_at\"",
        "\"updated_at\"",
        "\"project_id\"",
        "\"context_enabled\"",
        "\"context_limit\"",
        "\"assigned_at\"",
        "\"result\"",
    };
    gdn_task_t task;
    gdn_json_doc_t *doc = NULL;
    size_t len = 0;

    make_full_task(&task, &doc);

    char *text = gdn_task_render(&task, &len);

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);

    /* Renaming a field makes it unknown (ignored) and leaves the real one missing. */
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        char *copy = strdup(text);
        char *at = strstr(copy, fields[i]);

        CU_ASSERT_PTR_NOT_NULL_FATAL(at);
        at[1] = 'X';
        check_bad_stored_task(copy);
        free(copy);
    }
    free(text);
    gdn_json_free(doc);

    check_bad_stored_task("[]");
    check_bad_stored_task("not json");
    check_bad_stored_task("{}");
}

static void test_task__stored_tasks_with_bad_values_are_refused(void)
{
    const char *good = "{\"id\":\"" VALID_ID "\",\"role\":\"r\",\"task_type\":\"t\","
                       "\"input_data\":{},\"priority\":5,\"status\":\"pending\","
                       "\"created_at\":\"2026-01-17T12:34:56.123456\","
                       "\"updated_at\":\"2026-01-17T12:34:56.123456\",\"project_id\":\"p\","
                       "\"context_enabled\":true,\"context_limit\":10,\"extra\":[1]}";
    gdn_task_t task;
    gdn_json_doc_t *doc = NULL;

    CU_ASSERT_EQUAL_FATAL(gdn_task_from_json(good, strlen(good), &task, &doc), 0);
    CU_ASSERT_EQUAL(task.finished, 0);
    CU_ASSERT_PTR_NULL(task.assigned_to);
    gdn_json_free(doc);

    static const struct {
        const char *from;
        const char *to;
    } swaps[] = {
        {"\"" VALID_ID "\"", "\"not-an-id\""},
        {"\"pending\"", "\"sleeping\""},
        {"\"priority\":5", "\"priority\":5.5"},
        {"\"priority\":5", "\"priority\":\"5\""},
        {"\"input_data\":{}", "\"input_data\":[]"},
        {"\"context_enabled\":true", "\"context_enabled\":1"},
        {"\"created_at\":\"2026-01-17T12:34:56.123456\"", "\"created_at\":\"yesterday\""},
        {"\"role\":\"r\"", "\"role\":null"},
        {"\"extra\":[1]", "\"assigned_to\":\"w\""},
        {"\"extra\":[1]", "\"attempts\":\"1\""},
        {"\"extra\":[1]", "\"max_attempts\":2.5"},
        {"\"extra\":[1]", "\"lease_s\":null"},
        {"\"extra\":[1]", "\"run_at\":\"soon\""},
        {"\"extra\":[1]", "\"lease_expires_at\":5"},
        {"\"extra\":[1]", "\"error\":false"},
    };

    for (size_t i = 0; i < sizeof(swaps) / sizeof(swaps[0]); i++) {
        char json[1024];
        const char *at = strstr(good, swaps[i].from);

        CU_ASSERT_PTR_NOT_NULL_FATAL(at);
        snprintf(json, sizeof(json), "%.*s%s%s", (int)(at - good), good, swaps[i].to,
                 at + strlen(swaps[i].from));
        check_bad_stored_task(json);
    }
}

static void test_task__stored_tasks_without_lifecycle_fields_read_as_defaults(void)
{
    /* An object as the server stored it before tasks had leases and attempts. */
    const char *old = "{\"id\":\"" VALID_ID "\",\"role\":\"r\",\"task_type\":\"t\","
                      "\"input_data\":{},\"priority\":5,\"status\":\"processing\","
                      "\"created_at\":\"2026-01-17T12:34:56.123456\","
                      "\"updated_at\":\"2026-01-17T12:34:56.123456\",\"project_id\":\"p\","
                      "\"context_enabled\":true,\"context_limit\":10,"
                      "\"assigned_to\":\"w\",\"assigned_at\":\"2026-01-17T12:34:56.123456\"}";
    gdn_task_t task;
    gdn_json_doc_t *doc = NULL;

    CU_ASSERT_EQUAL_FATAL(gdn_task_from_json(old, strlen(old), &task, &doc), 0);
    CU_ASSERT_EQUAL(task.attempts, 0);
    CU_ASSERT_EQUAL(task.max_attempts, GDN_TASK_MAX_ATTEMPTS_DEFAULT);
    CU_ASSERT_EQUAL(task.lease_s, 0);
    CU_ASSERT_EQUAL(task.run_at_us, 0);
    CU_ASSERT_EQUAL(task.lease_expires_us, 0);
    CU_ASSERT_PTR_NULL(task.error);
    CU_ASSERT_PTR_NULL(task.late_result);
    CU_ASSERT_EQUAL(task.status, GDN_TASK_PROCESSING);

    /* Written again, it carries the defaults after context_limit. */
    size_t len = 0;
    char *text = gdn_task_render(&task, &len);

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"context_limit\":10,\"attempts\":0,\"max_attempts\":3,"
                                        "\"lease_s\":0,\"assigned_to\":\"w\","));
    free(text);
    gdn_json_free(doc);
}

/* Reads a stored task object and checks that rendering it again gives the same text. */
static void check_stored_text_round_trip(const char *json)
{
    gdn_task_t task;
    gdn_json_doc_t *doc = NULL;

    CU_ASSERT_EQUAL_FATAL(gdn_task_from_json(json, strlen(json), &task, &doc), 0);

    size_t len = 0;
    char *text = gdn_task_render(&task, &len);

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    if (strcmp(text, json) != 0)
        fprintf(stderr, "\nread   %s\nwrote  %s\n", json, text);
    CU_ASSERT_STRING_EQUAL(text, json);
    free(text);
    gdn_json_free(doc);
}

static void test_task__stored_late_results_round_trip_exactly(void)
{
    /* A worker that lost its claim may report any JSON, null included, and the server keeps it
     * as late_result: each later save of the task must keep it as it was. */
    static const char *const late_results[] = {"{\"n\":1}", "[]", "\"text\"", "0", "false", "null"};

    for (size_t i = 0; i < sizeof(late_results) / sizeof(late_results[0]); i++) {
        char json[1024];

        snprintf(json, sizeof(json),
                 "{\"id\":\"" VALID_ID "\",\"role\":\"r\",\"task_type\":\"t\","
                 "\"input_data\":{},\"priority\":5,\"status\":\"pending\","
                 "\"created_at\":\"2026-01-17T12:34:56.123456\","
                 "\"updated_at\":\"2026-01-17T12:34:56.123456\",\"project_id\":\"p\","
                 "\"context_enabled\":true,\"context_limit\":10,\"attempts\":1,"
                 "\"max_attempts\":3,\"lease_s\":0,\"late_result\":%s}",
                 late_results[i]);
        check_stored_text_round_trip(json);
    }
}

static void test_task__stored_workers_round_trip_exactly(void)
{
    const char *body = "{\"worker_id\":\"pi-4\",\"capabilities\":[\"archivist\",\"gardener\"]}";
    gdn_worker_t worker;
    gdn_json_doc_t *body_doc = NULL;

    CU_ASSERT_EQUAL_FATAL(gdn_worker_parse_register(body, strlen(body), &worker, &body_doc, NULL),
                          0);
    worker.registered_us = SOME_TIME;
    worker.last_heartbeat_us = SOME_TIME + 1;

    size_t len = 0;
    char *text = gdn_worker_render(&worker, &len);
    const char *expected = "{\"worker_id\":\"pi-4\",\"capabilities\":[\"archivist\",\"gardener\"],"
                           "\"registered_at\":\"2026-01-17T12:34:56.123456\","
                           "\"last_heartbeat\":\"2026-01-17T12:34:56.123457\","
                           "\"status\":\"active\"}";

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_STRING_EQUAL(text, expected);

    gdn_worker_t back;
    gdn_json_doc_t *doc = NULL;

    CU_ASSERT_EQUAL_FATAL(gdn_worker_from_json(text, len, &back, &doc), 0);
    CU_ASSERT_EQUAL(back.registered_us, SOME_TIME);
    CU_ASSERT_EQUAL(back.last_heartbeat_us, SOME_TIME + 1);

    char *again = gdn_worker_render(&back, NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(again);
    CU_ASSERT_STRING_EQUAL(again, text);
    free(again);
    free(text);
    gdn_json_free(doc);

    /* No capabilities writes an empty list. */
    worker.capabilities = NULL;
    text = gdn_worker_render(&worker, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"capabilities\":[],"));
    free(text);
    gdn_json_free(body_doc);

    const char *missing = "{\"worker_id\":\"w\",\"capabilities\":[],"
                          "\"registered_at\":\"2026-01-17T12:34:56.123456\"}";

    CU_ASSERT_EQUAL(gdn_worker_from_json(missing, strlen(missing), &back, &doc), GDN_EINVALID);
    CU_ASSERT_PTR_NULL(doc);
}

static int compare_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_task__new_ids_are_distinct_version_4_uuids(void)
{
    enum { COUNT = 10000 };
    char(*ids)[GDN_JOURNAL_ID_LEN + 1] = calloc(COUNT, sizeof(*ids));

    CU_ASSERT_PTR_NOT_NULL_FATAL(ids);
    for (int i = 0; i < COUNT; i++) {
        CU_ASSERT_EQUAL_FATAL(gdn_task_new_id(ids[i]), 0);
        CU_ASSERT_EQUAL(strlen(ids[i]), GDN_JOURNAL_ID_LEN);
        CU_ASSERT(gdn_task_id_valid(ids[i], strlen(ids[i])));
        CU_ASSERT_EQUAL(ids[i][14], '4');
        CU_ASSERT_PTR_NOT_NULL(strchr("89ab", ids[i][19]));
    }
    qsort(ids, COUNT, sizeof(*ids), compare_ids);
    for (int i = 1; i < COUNT; i++)
        CU_ASSERT(strcmp(ids[i - 1], ids[i]) != 0);
    free(ids);
}

static void test_task__id_validity_is_checked_exactly(void)
{
    CU_ASSERT(gdn_task_id_valid(VALID_ID, strlen(VALID_ID)));
    /* Any version is accepted, as long as the shape is right. */
    CU_ASSERT(gdn_task_id_valid("00000000-0000-1000-0000-000000000000", 36));

    const char *bad[] = {
        "0F8FAD5B-D9CB-469F-A165-70867728950E", /* upper case */
        "0f8fad5b-d9cb-469f-a165-70867728950",  /* too short */
        "0f8fad5b-d9cb-469f-a165-70867728950e0", "0f8fad5bd-9cb-469f-a165-70867728950e",
        "0f8fad5b-d9cb-469f-a165-70867728950g",  "{f8fad5b-d9cb-469f-a165-70867728950e",
        "0f8fad5b-d9cb-469f-a165+70867728950e",  "",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_FALSE(gdn_task_id_valid(bad[i], strlen(bad[i])));
    CU_ASSERT_FALSE(gdn_task_id_valid(VALID_ID, 35));
    CU_ASSERT_FALSE(gdn_task_id_valid(NULL, 36));
}

static void test_task__record_keys_are_kind_and_id(void)
{
    char key[GDN_JOURNAL_KEY_MAX + 1];

    CU_ASSERT_EQUAL(gdn_record_key(key, "task", VALID_ID, 36), 41);
    CU_ASSERT_STRING_EQUAL(key, "task:" VALID_ID);
    CU_ASSERT_EQUAL(gdn_record_key(key, "worker", "pi-4xyz", 4), 11);
    CU_ASSERT_STRING_EQUAL(key, "worker:pi-4");

    /* Too long: cut at the limit, never inside a UTF-8 sequence. */
    char id[400];

    memset(id, 'a', sizeof(id));
    CU_ASSERT_EQUAL(gdn_record_key(key, "completed", id, sizeof(id)), GDN_JOURNAL_KEY_MAX);
    CU_ASSERT_EQUAL(strlen(key), GDN_JOURNAL_KEY_MAX);

    /* "worker:" is 7 bytes; a 3-byte character starting at key byte 255 does not fit. */
    size_t room = GDN_JOURNAL_KEY_MAX - 7;

    memcpy(id + room - 2, "\xe2\x82\xac", 3);
    CU_ASSERT_EQUAL(gdn_record_key(key, "worker", id, sizeof(id)), GDN_JOURNAL_KEY_MAX - 2);
    CU_ASSERT_EQUAL(key[GDN_JOURNAL_KEY_MAX - 3], 'a');

    /* A character that ends exactly at the limit is kept. */
    memset(id, 'a', sizeof(id));
    memcpy(id + room - 3, "\xe2\x82\xac", 3);
    CU_ASSERT_EQUAL(gdn_record_key(key, "worker", id, sizeof(id)), GDN_JOURNAL_KEY_MAX);
    CU_ASSERT_EQUAL(memcmp(key + GDN_JOURNAL_KEY_MAX - 3, "\xe2\x82\xac", 3), 0);
}

static void test_task__status_names_read_back(void)
{
    for (int i = 0; i < GDN_TASK_STATUS_COUNT; i++) {
        const char *name = gdn_task_status_name((gdn_task_status_t)i);
        gdn_task_status_t back = GDN_TASK_STATUS_COUNT;

        CU_ASSERT_EQUAL(gdn_task_status_parse(name, strlen(name), &back), 0);
        CU_ASSERT_EQUAL(back, (gdn_task_status_t)i);
    }
    CU_ASSERT_STRING_EQUAL(gdn_task_status_name(GDN_TASK_PROCESSING), "processing");

    gdn_task_status_t status;

    CU_ASSERT_EQUAL(gdn_task_status_parse("pend", 4, &status), GDN_EINVALID);
    CU_ASSERT_EQUAL(gdn_task_status_parse("pendingx", 8, &status), GDN_EINVALID);
    CU_ASSERT_EQUAL(gdn_task_status_parse("pending", 6, &status), GDN_EINVALID);
}

static CU_TestInfo task_tests[] = {
    {"a create body fills the defaults of absent fields", test_task__create_fills_defaults},
    {"a create body sets every field it gives", test_task__create_reads_every_field},
    {"a create body with a wrong field is refused with its problem",
     test_task__create_refuses_each_wrong_field},
    {"string fields are limited in length", test_task__create_enforces_length_limits},
    {"every problem of a body is reported together",
     test_task__create_reports_every_problem_together},
    {"lease_s and max_attempts are accepted within their bounds only",
     test_task__create_bounds_lease_and_attempts},
    {"run_at sets the time a task becomes claimable, delay_s counts from the request",
     test_task__create_schedules_by_run_at_or_delay},
    {"a bad run_at or delay_s, or both together, is refused",
     test_task__create_refuses_bad_schedules},
    {"bodies that are empty, not JSON or not objects are refused",
     test_task__bodies_that_are_not_objects_are_refused},
    {"a complete body fills the defaults of absent fields", test_task__complete_fills_defaults},
    {"a complete body sets every field it gives", test_task__complete_reads_every_field},
    {"a complete body reads the retry status and the completing worker",
     test_task__complete_reads_retry_and_worker},
    {"a complete body with an unknown id leaves the id empty",
     test_task__complete_with_an_unknown_id_is_left_for_not_found},
    {"a complete body with a wrong field is refused with its problem",
     test_task__complete_refuses_each_wrong_field},
    {"a register body fills the defaults of absent fields", test_task__register_fills_defaults},
    {"register and heartbeat bodies with a wrong field are refused",
     test_task__register_and_heartbeat_refuse_each_wrong_field},
    {"problems render as FastAPI renders them", test_task__problems_render_as_fastapi_does},
    {"a task renders its fields in the API's order", test_task__render_writes_fields_in_order},
    {"a stored task reads back and renders identically",
     test_task__stored_tasks_round_trip_exactly},
    {"a stored task missing a field is refused",
     test_task__stored_tasks_missing_fields_are_refused},
    {"a stored task with a bad value is refused",
     test_task__stored_tasks_with_bad_values_are_refused},
    {"a stored task without attempts, max_attempts and lease_s reads them as the defaults",
     test_task__stored_tasks_without_lifecycle_fields_read_as_defaults},
    {"a stored late result of any JSON value reads back and renders identically",
     test_task__stored_late_results_round_trip_exactly},
    {"a stored worker reads back and renders identically",
     test_task__stored_workers_round_trip_exactly},
    {"new ids are distinct version 4 UUIDs", test_task__new_ids_are_distinct_version_4_uuids},
    {"id validity is checked exactly", test_task__id_validity_is_checked_exactly},
    {"record keys are the kind and the id", test_task__record_keys_are_kind_and_id},
    {"status names read back as their status", test_task__status_names_read_back},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo gdn_test_suites[] = {
    {.pName = "task", .pTests = task_tests},
    CU_SUITE_INFO_NULL,
};
