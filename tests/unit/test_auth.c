/*
 * Unit tests of the bearer-token table: parsing the tokens file, finding a presented token,
 * what each scope allows, and how a worker token's roles narrow a poll.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cunit_main.h"
#include "gdn/auth.h"
#include "gdn/error.h"

#define ADMIN_TOKEN "admin-0123456789abcdef"
#define PRODUCER_TOKEN "producer-0123456789abcdef"
#define WORKER_TOKEN "worker-0123456789abcdef"
#define PI_TOKEN "pi#token-0123456789abcdef"
#define METRICS_TOKEN "metrics-0123456789abcdef"

static const char sample[] = "# name  scope  token  roles\n"
                             "ops       admin     " ADMIN_TOKEN "\n"
                             "\n"
                             "   frontend  producer  " PRODUCER_TOKEN "   # the web app\r\n"
                             "any-worker\tworker\t" WORKER_TOKEN "\n"
                             "pi.kitchen worker " PI_TOKEN " archivist,coder\n"
                             "prometheus metrics " METRICS_TOKEN;

static gdn_auth_t *parse_sample(void)
{
    gdn_auth_t *auth = NULL;
    char err[256] = "";

    CU_ASSERT_EQUAL_FATAL(gdn_auth_parse(sample, strlen(sample), &auth, err, sizeof(err)), 0);
    return auth;
}

static const gdn_auth_token_t *find(const gdn_auth_t *auth, const char *header)
{
    return gdn_auth_find(auth, header, strlen(header));
}

/* Parses `text`, expecting GDN_ECONFIG with a message that holds `needle`. */
static void assert_refused(const char *text, const char *needle)
{
    gdn_auth_t *auth = NULL;
    char err[256] = "";

    CU_ASSERT_EQUAL(gdn_auth_parse(text, strlen(text), &auth, err, sizeof(err)), GDN_ECONFIG);
    CU_ASSERT_PTR_NULL(auth);
    if (strstr(err, needle) == NULL)
        fprintf(stderr, "\nunexpected message for %s: %s\n", text, err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
}

static void test_auth__parses_names_scopes_comments_and_blank_lines(void)
{
    gdn_auth_t *auth = parse_sample();

    CU_ASSERT_EQUAL(gdn_auth_count(auth), 5);

    const gdn_auth_token_t *token = find(auth, "Bearer " PRODUCER_TOKEN);

    CU_ASSERT_PTR_NOT_NULL_FATAL(token);
    CU_ASSERT_STRING_EQUAL(gdn_auth_name(token), "frontend");
    token = find(auth, "Bearer " PI_TOKEN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(token);
    CU_ASSERT_STRING_EQUAL(gdn_auth_name(token), "pi.kitchen");
    gdn_auth_free(auth);
}

static void test_auth__finds_only_exact_bearer_tokens(void)
{
    gdn_auth_t *auth = parse_sample();

    CU_ASSERT_PTR_NOT_NULL(find(auth, "bearer " ADMIN_TOKEN));
    CU_ASSERT_PTR_NOT_NULL(find(auth, "BEARER   " ADMIN_TOKEN "  "));
    CU_ASSERT_PTR_NULL(find(auth, "Bearer " ADMIN_TOKEN "x"));
    CU_ASSERT_PTR_NULL(find(auth, "Bearer admin-0123456789abcde"));
    CU_ASSERT_PTR_NULL(find(auth, "Basic " ADMIN_TOKEN));
    CU_ASSERT_PTR_NULL(find(auth, "Bearer" ADMIN_TOKEN));
    CU_ASSERT_PTR_NULL(find(auth, ADMIN_TOKEN));
    CU_ASSERT_PTR_NULL(find(auth, "Bearer "));
    CU_ASSERT_PTR_NULL(find(auth, ""));
    CU_ASSERT_PTR_NULL(gdn_auth_find(NULL, "Bearer " ADMIN_TOKEN, 29));

    /* The header's length bounds the read: a token cut short is not the token. */
    const char *header = "Bearer " ADMIN_TOKEN;

    CU_ASSERT_PTR_NULL(gdn_auth_find(auth, header, strlen(header) - 1));
    gdn_auth_free(auth);
}

static void test_auth__scopes_allow_what_they_name(void)
{
    gdn_auth_t *auth = parse_sample();
    const gdn_auth_token_t *admin = find(auth, "Bearer " ADMIN_TOKEN);
    const gdn_auth_token_t *producer = find(auth, "Bearer " PRODUCER_TOKEN);
    const gdn_auth_token_t *worker = find(auth, "Bearer " WORKER_TOKEN);
    const gdn_auth_token_t *metrics = find(auth, "Bearer " METRICS_TOKEN);
    static const struct {
        gdn_auth_action_t action;
        int admin, producer, worker, metrics;
    } table[] = {
        {GDN_AUTH_READ, 1, 1, 0, 0},  {GDN_AUTH_CREATE, 1, 1, 0, 0}, {GDN_AUTH_CANCEL, 1, 1, 0, 0},
        {GDN_AUTH_STATS, 1, 1, 0, 0}, {GDN_AUTH_POLL, 1, 0, 1, 0},   {GDN_AUTH_METRICS, 1, 0, 0, 1},
    };

    CU_ASSERT_FATAL(admin && producer && worker && metrics);
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        CU_ASSERT_EQUAL(gdn_auth_permits(admin, table[i].action), table[i].admin);
        CU_ASSERT_EQUAL(gdn_auth_permits(producer, table[i].action), table[i].producer);
        CU_ASSERT_EQUAL(gdn_auth_permits(worker, table[i].action), table[i].worker);
        CU_ASSERT_EQUAL(gdn_auth_permits(metrics, table[i].action), table[i].metrics);
    }
    gdn_auth_free(auth);
}

static void test_auth__worker_roles_narrow_polls(void)
{
    gdn_auth_t *auth = parse_sample();
    const gdn_auth_token_t *pi = find(auth, "Bearer " PI_TOKEN);
    const gdn_auth_token_t *any = find(auth, "Bearer " WORKER_TOKEN);
    const char *roles[4] = {"coder"};
    size_t lens[4] = {5};
    int count = 1;

    CU_ASSERT_FATAL(pi && any);
    CU_ASSERT_EQUAL(gdn_auth_limit_roles(pi, roles, lens, &count, 4), 0);
    CU_ASSERT_EQUAL(count, 1);

    /* No roles asked: the token's roles are used. */
    count = 0;
    CU_ASSERT_EQUAL(gdn_auth_limit_roles(pi, roles, lens, &count, 4), 0);
    CU_ASSERT_EQUAL_FATAL(count, 2);
    CU_ASSERT_EQUAL(lens[0], 9);
    CU_ASSERT_NSTRING_EQUAL(roles[0], "archivist", 9);
    CU_ASSERT_EQUAL(lens[1], 5);
    CU_ASSERT_NSTRING_EQUAL(roles[1], "coder", 5);

    /* A role outside the token's is refused, even beside allowed ones; a prefix is not a role. */
    roles[0] = "coder";
    lens[0] = 5;
    roles[1] = "cod";
    lens[1] = 3;
    count = 2;
    CU_ASSERT_EQUAL(gdn_auth_limit_roles(pi, roles, lens, &count, 4), GDN_EFORBIDDEN);

    /* A worker token without roles, or no token at all, leaves the list alone. */
    count = 2;
    CU_ASSERT_EQUAL(gdn_auth_limit_roles(any, roles, lens, &count, 4), 0);
    CU_ASSERT_EQUAL(count, 2);
    count = 0;
    CU_ASSERT_EQUAL(gdn_auth_limit_roles(NULL, roles, lens, &count, 4), 0);
    CU_ASSERT_EQUAL(count, 0);
    gdn_auth_free(auth);
}

static void test_auth__refuses_bad_lines_naming_them(void)
{
    assert_refused("", "lists no token");
    assert_refused("# only a comment\n\n", "lists no token");
    assert_refused("ops admin\n", "line 1: expected");
    assert_refused("\nops admin " ADMIN_TOKEN " a b\n", "line 2: expected");
    assert_refused("ops root " ADMIN_TOKEN "\n", "unknown scope");
    assert_refused("ops admin short\n", "must be 16 to 256");
    assert_refused("o/ps admin " ADMIN_TOKEN "\n", "the name must be");
    assert_refused("ops admin " ADMIN_TOKEN " archivist\n", "only worker tokens take roles");
    assert_refused("pi worker " WORKER_TOKEN " a,,b\n", "roles must be");
    assert_refused("pi worker " WORKER_TOKEN " a,\n", "roles must be");
    assert_refused("ops admin " ADMIN_TOKEN "\nops producer " PRODUCER_TOKEN "\n",
                   "line 2: the name \"ops\" is used twice");
    assert_refused("ops admin " ADMIN_TOKEN "\nweb producer " ADMIN_TOKEN "\n",
                   "\"web\" has the same token as \"ops\"");

    char with_nul[] = "ops admin " ADMIN_TOKEN "\nweb producer x\0yz-0123456789abcdef\n";

    gdn_auth_t *auth = NULL;
    char err[256] = "";

    CU_ASSERT_EQUAL(gdn_auth_parse(with_nul, sizeof(with_nul) - 1, &auth, err, sizeof(err)),
                    GDN_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "line 2: holds a NUL byte"));
}

static void test_auth__messages_never_quote_a_token(void)
{
    gdn_auth_t *auth = NULL;
    char err[256] = "";
    const char text[] = "ops admin " ADMIN_TOKEN "\nweb producer " ADMIN_TOKEN "\n";

    CU_ASSERT_EQUAL(gdn_auth_parse(text, strlen(text), &auth, err, sizeof(err)), GDN_ECONFIG);
    CU_ASSERT_PTR_NULL(strstr(err, ADMIN_TOKEN));
    CU_ASSERT_PTR_NULL(strstr(err, "0123456789"));
}

static void test_auth__loads_a_file_and_tells_if_anyone_may_read_it(void)
{
    char dir[256];
    char path[300];
    gdn_auth_t *auth = NULL;
    int world_readable = -1;
    char err[256] = "";

    gdn_test_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/tokens", dir);

    FILE *file = fopen(path, "w");

    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    fputs(sample, file);
    fclose(file);

    CU_ASSERT_EQUAL(chmod(path, 0640), 0);
    CU_ASSERT_EQUAL(gdn_auth_load(path, &auth, &world_readable, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(world_readable, 0);
    CU_ASSERT_EQUAL(gdn_auth_count(auth), 5);
    gdn_auth_free(auth);

    CU_ASSERT_EQUAL(chmod(path, 0644), 0);
    auth = NULL;
    CU_ASSERT_EQUAL(gdn_auth_load(path, &auth, &world_readable, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(world_readable, 1);
    gdn_auth_free(auth);

    /* A directory and a missing file are refused with the path in the message. */
    CU_ASSERT_EQUAL(gdn_auth_load(dir, &auth, &world_readable, err, sizeof(err)), GDN_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a regular file"));
    snprintf(path, sizeof(path), "%s/missing", dir);
    CU_ASSERT_EQUAL(gdn_auth_load(path, &auth, &world_readable, err, sizeof(err)), GDN_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "missing"));
    gdn_test_rmdir(dir);
}

/* Each example line of conf/tokens.example, uncommented as it stands, stops the server: its
 * placeholder is no token, so an example left in place never admits anyone. */
static void test_auth__example_lines_are_refused_until_filled_in(void)
{
    FILE *file = fopen(GDN_TOKENS_EXAMPLE, "r");
    char line[512];
    int examples = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    while (fgets(line, sizeof(line), file) != NULL) {
        /* Example lines are the comments that hold a scope as their second field, with one
         * blank after the `#` (the notes above them are indented further). */
        char name[64], scope[16];

        if (strncmp(line, "# ", 2) != 0 || line[2] == ' ' ||
            sscanf(line, "# %63s %15s", name, scope) != 2 ||
            (strcmp(scope, "admin") != 0 && strcmp(scope, "producer") != 0 &&
             strcmp(scope, "worker") != 0 && strcmp(scope, "metrics") != 0))
            continue;
        assert_refused(line + 2, "the token must be");
        examples++;
    }
    fclose(file);
    CU_ASSERT(examples >= 4);
}

static CU_TestInfo auth_tests[] = {
    {"the tokens file has names, scopes, roles, comments and blank lines",
     test_auth__parses_names_scopes_comments_and_blank_lines},
    {"only a bearer header with an exact known token finds it",
     test_auth__finds_only_exact_bearer_tokens},
    {"each scope allows what it names and nothing else", test_auth__scopes_allow_what_they_name},
    {"a worker token's roles fill an empty poll and refuse other roles",
     test_auth__worker_roles_narrow_polls},
    {"bad lines are refused with their line number", test_auth__refuses_bad_lines_naming_them},
    {"error messages never quote a token", test_auth__messages_never_quote_a_token},
    {"the example lines of conf/tokens.example are refused until filled in",
     test_auth__example_lines_are_refused_until_filled_in},
    {"a tokens file is loaded and its permissions reported",
     test_auth__loads_a_file_and_tells_if_anyone_may_read_it},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo gdn_test_suites[] = {
    {.pName = "auth", .pTests = auth_tests},
    CU_SUITE_INFO_NULL,
};
