/*
 * Unit tests of what the server reads from a request besides its body: query parameters and
 * their percent-decoding, the parameters of GET /tasks and GET /poll/next with their 422
 * problems, task paths, and the Idempotency-Key header.
 */
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "cunit_main.h"
#include "gdn/error.h"
#include "gdn/request.h"

/* Reads one parameter of a NUL-terminated query; returns the value (to free) or NULL. */
static char *param(const char *query, const char *name, size_t *len)
{
    int oom = 1;
    char *value = gdn_request_query_param(query, query ? strlen(query) : 0, name, len, &oom);

    CU_ASSERT_EQUAL(oom, 0);
    return value;
}

static void test_request__query_values_are_decoded_and_the_last_one_wins(void)
{
    size_t len = 0;
    char *value = param("a=1&worker_id=x&worker_id=pi%2D1+b%41%zz%4", "worker_id", &len);

    CU_ASSERT_STRING_EQUAL(value, "pi-1 bA%zz%4");
    CU_ASSERT_EQUAL(len, strlen("pi-1 bA%zz%4"));
    free(value);

    value = param("wait&x=%00y", "x", &len);
    CU_ASSERT_EQUAL(len, 2);
    CU_ASSERT(value != NULL && value[0] == '\0' && value[1] == 'y');
    free(value);

    value = param("wait&x=1", "wait", &len);
    CU_ASSERT_STRING_EQUAL(value, "");
    free(value);

    CU_ASSERT_PTR_NULL(param("worker=1&worker_idx=2", "worker_id", &len));
    CU_ASSERT_PTR_NULL(param(NULL, "worker_id", &len));
}

/* Reads and checks the parameters of GET /tasks; returns the check's result. */
static int check_list(const char *query, gdn_queue_listing_t *listing, int *problem_count)
{
    gdn_list_params_t params;
    gdn_problems_t problems;

    CU_ASSERT_FATAL(gdn_request_list_read(query, strlen(query), &params) == 0);
    CU_ASSERT_FATAL(gdn_problems_init(&problems) == 0);

    int rc = gdn_request_list_check(&params, listing, &problems);

    *problem_count = problems.count;
    gdn_problems_free(&problems);
    gdn_request_list_free(&params);
    return rc;
}

static void test_request__listing_parameters_are_read_and_bad_ones_reported(void)
{
    gdn_queue_listing_t listing;
    int count;

    CU_ASSERT_EQUAL(check_list("", &listing, &count), 0);
    CU_ASSERT_EQUAL(listing.status, -1);
    CU_ASSERT_EQUAL(listing.limit, GDN_REQUEST_LIST_LIMIT);
    CU_ASSERT_EQUAL(check_list("status=failed&limit=500", &listing, &count), 0);
    CU_ASSERT_EQUAL(listing.status, GDN_TASK_FAILED);
    CU_ASSERT_EQUAL(listing.limit, 500);

    CU_ASSERT_EQUAL(check_list("status=done&limit=501", &listing, &count), GDN_EINVALID);
    CU_ASSERT_EQUAL(count, 2);
    CU_ASSERT_EQUAL(check_list("limit=0", &listing, &count), GDN_EINVALID);
    CU_ASSERT_EQUAL(check_list("limit=5x", &listing, &count), GDN_EINVALID);
    CU_ASSERT_EQUAL(check_list("limit=", &listing, &count), GDN_EINVALID);
}

static void test_request__poll_parameters_split_roles_and_bound_the_wait(void)
{
    static const char query[] = "worker_id=w&roles=%20a%20,,b+,c&wait=30";
    gdn_poll_params_t params;
    gdn_problems_t problems;

    CU_ASSERT_FATAL(gdn_problems_init(&problems) == 0);
    CU_ASSERT_EQUAL(gdn_request_poll_read(query, strlen(query), &params, &problems), 0);
    CU_ASSERT_EQUAL(params.role_count, 3);
    CU_ASSERT_EQUAL(params.role_lens[0], 1);
    CU_ASSERT_NSTRING_EQUAL(params.roles[0], "a", 1);
    CU_ASSERT_NSTRING_EQUAL(params.roles[2], "c", 1);
    CU_ASSERT_EQUAL(params.wait_s, 30);
    CU_ASSERT_EQUAL(problems.count, 0);
    gdn_request_poll_free(&params);

    /* No worker, a wait out of range: two problems at once. */
    CU_ASSERT_EQUAL(gdn_request_poll_read("wait=31", 7, &params, &problems), GDN_EINVALID);
    CU_ASSERT_EQUAL(problems.count, 2);
    gdn_request_poll_free(&params);
    gdn_problems_free(&problems);
}

static void test_request__poll_worker_id_follows_the_registration_rule(void)
{
    static const char *const refused[] = {
        "worker_id=",          "worker_id=pi%00x", "worker_id=pi%2Fx",
        "worker_id=a/b",       "worker_id=pi%FF",  "worker_id=%C3",
        "worker_id=%ED%A0%80", "worker_id=r%0Ds",  "worker_id=c%01d"};
    static const char *const taken[] = {"worker_id=pi-1", "worker_id=%C3%A9t%C3%A9+1"};
    gdn_poll_params_t params;
    gdn_problems_t problems;

    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        CU_ASSERT_FATAL(gdn_problems_init(&problems) == 0);
        CU_ASSERT_EQUAL(gdn_request_poll_read(refused[i], strlen(refused[i]), &params, &problems),
                        GDN_EINVALID);
        CU_ASSERT_EQUAL(problems.count, 1);
        gdn_request_poll_free(&params);
        gdn_problems_free(&problems);
    }
    for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) {
        CU_ASSERT_FATAL(gdn_problems_init(&problems) == 0);
        CU_ASSERT_EQUAL(gdn_request_poll_read(taken[i], strlen(taken[i]), &params, &problems), 0);
        gdn_request_poll_free(&params);
        gdn_problems_free(&problems);
    }
}

static void test_request__too_many_roles_are_refused(void)
{
    char query[512] = "worker_id=w&roles=";
    size_t len = strlen(query);
    gdn_poll_params_t params;
    gdn_problems_t problems;

    for (int i = 0; i <= GDN_QUEUE_MAX_ROLES; i++) {
        memcpy(query + len, "r,", 3);
        len += 2;
    }
    CU_ASSERT_FATAL(gdn_problems_init(&problems) == 0);
    CU_ASSERT_EQUAL(gdn_request_poll_read(query, strlen(query), &params, &problems), GDN_EINVALID);
    CU_ASSERT_EQUAL(problems.count, 1);
    gdn_request_poll_free(&params);
    gdn_problems_free(&problems);
}

static gdn_task_path_t route(const char *path, char *id, size_t size)
{
    const char *at = NULL;
    size_t len = 0;
    gdn_task_path_t kind = gdn_request_task_path(path, strlen(path), &at, &len);

    id[0] = '\0';
    if (kind != GDN_TASK_PATH_NONE && len < size) {
        memcpy(id, at, len);
        id[len] = '\0';
    }
    return kind;
}

static void test_request__task_paths_name_a_task_or_its_cancel(void)
{
    char id[64];

    CU_ASSERT_EQUAL(route("/tasks/abc", id, sizeof(id)), GDN_TASK_PATH_TASK);
    CU_ASSERT_STRING_EQUAL(id, "abc");
    CU_ASSERT_EQUAL(route("/tasks/abc/cancel", id, sizeof(id)), GDN_TASK_PATH_CANCEL);
    CU_ASSERT_STRING_EQUAL(id, "abc");
    CU_ASSERT_EQUAL(route("/tasks//cancel", id, sizeof(id)), GDN_TASK_PATH_CANCEL);
    CU_ASSERT_STRING_EQUAL(id, "");
    CU_ASSERT_EQUAL(route("/tasks/", id, sizeof(id)), GDN_TASK_PATH_NONE);
    CU_ASSERT_EQUAL(route("/tasks", id, sizeof(id)), GDN_TASK_PATH_NONE);
    CU_ASSERT_EQUAL(route("/tasks/abc/cancel/x", id, sizeof(id)), GDN_TASK_PATH_NONE);
    CU_ASSERT_EQUAL(route("/tasks/abc/cancelled", id, sizeof(id)), GDN_TASK_PATH_NONE);
    CU_ASSERT_EQUAL(route("/taskss/abc", id, sizeof(id)), GDN_TASK_PATH_NONE);
}

static void test_request__idempotency_keys_have_1_to_200_bytes(void)
{
    char key[202];
    gdn_problems_t problems;

    memset(key, 'k', sizeof(key));
    CU_ASSERT_FATAL(gdn_problems_init(&problems) == 0);
    CU_ASSERT_EQUAL(gdn_request_idempotency_key(key, 1, &problems), 0);
    CU_ASSERT_EQUAL(gdn_request_idempotency_key(key, 200, &problems), 0);
    CU_ASSERT_EQUAL(gdn_request_idempotency_key(key, 0, &problems), GDN_EINVALID);
    CU_ASSERT_EQUAL(gdn_request_idempotency_key(key, 201, &problems), GDN_EINVALID);
    CU_ASSERT_EQUAL(problems.count, 2);
    gdn_problems_free(&problems);
}

static CU_TestInfo request_tests[] = {
    {"Query values are percent-decoded, may hold NUL, and the last of a repeated name wins",
     test_request__query_values_are_decoded_and_the_last_one_wins},
    {"Listing parameters are read with their defaults and each bad one is a problem",
     test_request__listing_parameters_are_read_and_bad_ones_reported},
    {"Poll parameters split and trim the roles and bound the wait to 0 to 30 seconds",
     test_request__poll_parameters_split_roles_and_bound_the_wait},
    {"a poll's worker_id follows the rule of a registered worker's id",
     test_request__poll_worker_id_follows_the_registration_rule},
    {"A poll naming more than 32 roles is refused", test_request__too_many_roles_are_refused},
    {"Paths under /tasks/ name a task or its cancel, and nothing else",
     test_request__task_paths_name_a_task_or_its_cancel},
    {"An Idempotency-Key must have 1 to 200 bytes",
     test_request__idempotency_keys_have_1_to_200_bytes},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo gdn_test_suites[] = {
    {.pName = "Request parameters", .pTests = request_tests},
    CU_SUITE_INFO_NULL,
};
