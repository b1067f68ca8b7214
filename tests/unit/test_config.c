/*
 * Unit tests of the configuration: defaults, each key, rejected values, the file format, the
 * environment, validation, printing, logging and CORS origin matching.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cunit_main.h"
#include "gdn/config.h"
#include "gdn/error.h"

static const char *const env_names[] = {
    "MINIO_ENDPOINT",
    "MINIO_ACCESS_KEY",
    "MINIO_SECRET_KEY",
    "MINIO_SECURE",
    "MINIO_BUCKET",
    "MINIO_REGION",
    "HOST",
    "PORT",
    "CLAUDE_MEM_ENABLED",
};

/* The tests must not see whatever the shell that runs them exports. */
static void clear_env(void)
{
    for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
        unsetenv(env_names[i]);
}

/* Writes `content` to DIR/NAME and leaves the path in `path`. */
static void write_file(const char *dir, const char *name, const char *content, char *path,
                       size_t path_size)
{
    snprintf(path, path_size, "%s/%s", dir, name);

    FILE *file = fopen(path, "w");

    CU_ASSERT_FATAL(file != NULL);
    CU_ASSERT_EQUAL(fputs(content, file) >= 0, 1);
    CU_ASSERT_EQUAL(fclose(file), 0);
}

/* Returns what gdn_config_print writes, in a buffer the caller frees. */
static char *print_config(const gdn_config_t *cfg)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);

    CU_ASSERT_FATAL(out != NULL);
    gdn_config_print(cfg, out);
    fclose(out);
    return text;
}

static void init_config(gdn_config_t *cfg)
{
    CU_ASSERT_FATAL(gdn_config_init(cfg) == 0);
}

static void set_ok(gdn_config_t *cfg, const char *key, const char *value)
{
    char err[256] = "";

    CU_ASSERT_EQUAL(gdn_config_set(cfg, key, value, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(err, "");
}

/* Checks that validate answers `expected_err`, or 0 when it is NULL. */
static void assert_validate(const gdn_config_t *cfg, const char *expected_err)
{
    char err[256] = "";
    int rc = gdn_config_validate(cfg, err, sizeof(err));

    CU_ASSERT_EQUAL(rc, expected_err != NULL ? GDN_ECONFIG : 0);
    CU_ASSERT_STRING_EQUAL(err, expected_err != NULL ? expected_err : "");
}

/* Compares a string field that may be unset (NULL). */
static void assert_same_string(const char *actual, const char *expected)
{
    CU_ASSERT(expected == NULL ? actual == NULL : actual != NULL && strcmp(actual, expected) == 0);
}

/* Checks every field of `cfg` against `expected`, field by field rather than through print. */
static void assert_config_equal(const gdn_config_t *cfg, const gdn_config_t *expected)
{
    assert_same_string(cfg->host, expected->host);
    CU_ASSERT_EQUAL(cfg->port, expected->port);
    assert_same_string(cfg->data_dir, expected->data_dir);
    CU_ASSERT_EQUAL(cfg->threads, expected->threads);
    CU_ASSERT_EQUAL(cfg->max_body_bytes, expected->max_body_bytes);
    CU_ASSERT_EQUAL(cfg->journal_map_mb, expected->journal_map_mb);
    CU_ASSERT_EQUAL(cfg->worker_ttl_s, expected->worker_ttl_s);
    CU_ASSERT_EQUAL(cfg->task_lease_s, expected->task_lease_s);
    CU_ASSERT_EQUAL(cfg->retry_base_s, expected->retry_base_s);
    CU_ASSERT_EQUAL(cfg->retry_max_s, expected->retry_max_s);
    CU_ASSERT_EQUAL(cfg->completed_ttl_s, expected->completed_ttl_s);
    CU_ASSERT_EQUAL(cfg->task_retention_s, expected->task_retention_s);
    CU_ASSERT_EQUAL(cfg->idempotency_ttl_s, expected->idempotency_ttl_s);
    assert_same_string(cfg->cors_origins, expected->cors_origins);
    assert_same_string(cfg->tls_cert, expected->tls_cert);
    assert_same_string(cfg->tls_key, expected->tls_key);
    assert_same_string(cfg->minio_endpoint, expected->minio_endpoint);
    assert_same_string(cfg->minio_access_key, expected->minio_access_key);
    assert_same_string(cfg->minio_secret_key, expected->minio_secret_key);
    CU_ASSERT_EQUAL(cfg->minio_secure, expected->minio_secure);
    assert_same_string(cfg->minio_bucket, expected->minio_bucket);
    assert_same_string(cfg->minio_region, expected->minio_region);
    CU_ASSERT_EQUAL(cfg->s3_connect_timeout_ms, expected->s3_connect_timeout_ms);
    CU_ASSERT_EQUAL(cfg->s3_timeout_ms, expected->s3_timeout_ms);
    CU_ASSERT_EQUAL(cfg->flush_interval_ms, expected->flush_interval_ms);
    CU_ASSERT_EQUAL(cfg->flush_batch_max, expected->flush_batch_max);
    CU_ASSERT_EQUAL(cfg->flush_concurrency, expected->flush_concurrency);
    CU_ASSERT_EQUAL(cfg->flush_retry_max_ms, expected->flush_retry_max_ms);
    CU_ASSERT_EQUAL(cfg->restore_on_empty, expected->restore_on_empty);
    CU_ASSERT_EQUAL(cfg->restore_wait_s, expected->restore_wait_s);
    CU_ASSERT_EQUAL(cfg->claude_mem_enabled, expected->claude_mem_enabled);
    CU_ASSERT_EQUAL(cfg->log_level, expected->log_level);
}

static void test_config__defaults(void)
{
    const gdn_config_t expected = {
        .host = "0.0.0.0",
        .port = 5000,
        .data_dir = "/var/lib/garden-orchestrator",
        .threads = 0,
        .max_body_bytes = 1048576,
        .journal_map_mb = 4096,
        .worker_ttl_s = 600,
        .task_lease_s = 600,
        .retry_base_s = 5,
        .retry_max_s = 300,
        .completed_ttl_s = 604800,
        .task_retention_s = 2592000,
        .idempotency_ttl_s = 86400,
        .cors_origins = "*",
        .minio_secure = 0,
        .minio_bucket = "garden-orchestrator",
        .minio_region = "us-east-1",
        .s3_connect_timeout_ms = 5000,
        .s3_timeout_ms = 30000,
        .flush_interval_ms = 1000,
        .flush_batch_max = 256,
        .flush_concurrency = 8,
        .flush_retry_max_ms = 30000,
        .restore_on_empty = 1,
        .restore_wait_s = 30,
        .claude_mem_enabled = 1,
        .log_level = GDN_LOG_INFO,
    };
    gdn_config_t cfg;

    init_config(&cfg);
    assert_config_equal(&cfg, &expected);
    assert_validate(&cfg, NULL);
    gdn_config_free(&cfg);
    CU_ASSERT_PTR_NULL(cfg.host);
    CU_ASSERT_EQUAL(cfg.port, 0);
}

static void test_config__every_key_can_be_set(void)
{
    static const char *const settings[][2] = {
        {"host", "127.0.0.1"},
        {"port", "65535"},
        {"data_dir", "/srv/garden"},
        {"threads", "256"},
        {"max_body_bytes", "1024"},
        {"journal_map_mb", "16"},
        {"worker_ttl_s", "2592000"},
        {"task_lease_s", "45"},
        {"retry_base_s", "2"},
        {"retry_max_s", "120"},
        {"completed_ttl_s", "3600"},
        {"task_retention_s", "0"},
        {"idempotency_ttl_s", "600"},
        {"cors_origins", "https://a.example, https://b.example"},
        {"tls_cert", "/etc/ssl/cert.pem"},
        {"tls_key", "/etc/ssl/key.pem"},
        {"minio_endpoint", "https://s3.example:9000"},
        {"minio_access_key", "AKID"},
        {"minio_secret_key", "shh"},
        {"minio_secure", "on"},
        {"minio_bucket", "tasks"},
        {"minio_region", "eu-west-1"},
        {"s3_connect_timeout_ms", "100"},
        {"s3_timeout_ms", "3600000"},
        {"flush_interval_ms", "10"},
        {"flush_batch_max", "100000"},
        {"flush_concurrency", "1"},
        {"flush_retry_max_ms", "250"},
        {"restore_on_empty", "off"},
        {"restore_wait_s", "0"},
        {"claude_mem_enabled", "no"},
        {"log_level", "DEBUG"},
    };
    const gdn_config_t expected = {
        .host = "127.0.0.1",
        .port = 65535,
        .data_dir = "/srv/garden",
        .threads = 256,
        .max_body_bytes = 1024,
        .journal_map_mb = 16,
        .worker_ttl_s = 2592000,
        .task_lease_s = 45,
        .retry_base_s = 2,
        .retry_max_s = 120,
        .completed_ttl_s = 3600,
        .task_retention_s = 0,
        .idempotency_ttl_s = 600,
        .cors_origins = "https://a.example, https://b.example",
        .tls_cert = "/etc/ssl/cert.pem",
        .tls_key = "/etc/ssl/key.pem",
        .minio_endpoint = "https://s3.example:9000",
        .minio_access_key = "AKID",
        .minio_secret_key = "shh",
        .minio_secure = 1,
        .minio_bucket = "tasks",
        .minio_region = "eu-west-1",
        .s3_connect_timeout_ms = 100,
        .s3_timeout_ms = 3600000,
        .flush_interval_ms = 10,
        .flush_batch_max = 100000,
        .flush_concurrency = 1,
        .flush_retry_max_ms = 250,
        .restore_on_empty = 0,
        .restore_wait_s = 0,
        .claude_mem_enabled = 0,
        .log_level = GDN_LOG_DEBUG,
    };
    gdn_config_t cfg;

    init_config(&cfg);
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
        set_ok(&cfg, settings[i][0], settings[i][1]);
    assert_config_equal(&cfg, &expected);
    assert_validate(&cfg, NULL);
    gdn_config_free(&cfg);
}

static void test_config__range_bounds_are_accepted(void)
{
    gdn_config_t cfg;

    init_config(&cfg);
    set_ok(&cfg, "port", "1");
    set_ok(&cfg, "threads", "0");
    set_ok(&cfg, "max_body_bytes", "1073741824");
    set_ok(&cfg, "journal_map_mb", "1048576");
    set_ok(&cfg, "worker_ttl_s", "1");
    set_ok(&cfg, "port", "+80");
    CU_ASSERT_EQUAL(cfg.port, 80);
    CU_ASSERT_EQUAL(cfg.threads, 0);
    CU_ASSERT_EQUAL(cfg.max_body_bytes, 1073741824);
    CU_ASSERT_EQUAL(cfg.journal_map_mb, 1048576);
    CU_ASSERT_EQUAL(cfg.worker_ttl_s, 1);

    /* The time rules of the queue, at both ends of their ranges. */
    static const struct {
        const char *key;
        size_t offset;
        int low;
        int high;
    } times[] = {
        {"task_lease_s", offsetof(gdn_config_t, task_lease_s), 1, 604800},
        {"retry_base_s", offsetof(gdn_config_t, retry_base_s), 1, 86400},
        {"retry_max_s", offsetof(gdn_config_t, retry_max_s), 1, 604800},
        {"completed_ttl_s", offsetof(gdn_config_t, completed_ttl_s), 1, 315360000},
        {"task_retention_s", offsetof(gdn_config_t, task_retention_s), 0, 315360000},
        {"idempotency_ttl_s", offsetof(gdn_config_t, idempotency_ttl_s), 1, 2592000},
    };

    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        const int *field = (const int *)((const char *)&cfg + times[i].offset);
        char text[16];

        snprintf(text, sizeof(text), "%d", times[i].low);
        set_ok(&cfg, times[i].key, text);
        CU_ASSERT_EQUAL(*field, times[i].low);
        snprintf(text, sizeof(text), "%d", times[i].high);
        set_ok(&cfg, times[i].key, text);
        CU_ASSERT_EQUAL(*field, times[i].high);
    }
    gdn_config_free(&cfg);
}

static void test_config__booleans_accept_every_spelling(void)
{
    static const char *const truths[] = {"true", "TRUE", "yes", "Yes", "on", "ON", "1"};
    static const char *const lies[] = {"false", "False", "no", "NO", "off", "Off", "0"};
    gdn_config_t cfg;

    init_config(&cfg);
    for (size_t i = 0; i < sizeof(truths) / sizeof(truths[0]); i++) {
        set_ok(&cfg, "minio_secure", truths[i]);
        CU_ASSERT_EQUAL(cfg.minio_secure, 1);
        set_ok(&cfg, "minio_secure", lies[i]);
        CU_ASSERT_EQUAL(cfg.minio_secure, 0);
    }
    gdn_config_free(&cfg);
}

static void test_config__endpoints_take_a_host_port_or_url(void)
{
    static const char *const endpoints[] = {"minio:9000",         "HTTP://minio:9000",
                                            "https://s3.example", "https://s3.example/",
                                            "[::1]:9000",         "10.0.0.5"};
    gdn_config_t cfg;

    init_config(&cfg);
    for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++)
        set_ok(&cfg, "minio_endpoint", endpoints[i]);
    gdn_config_free(&cfg);
}

static void test_config__endpoint_credentials_are_refused_and_never_shown(void)
{
    static const struct {
        const char *value;
        const char *host_part; /* what follows the last '@', the only part the error may show */
        const char *hidden;    /* text before an '@' that must not appear in the error */
    } cases[] = {
        {"http://AKIA:SuperSecret@127.0.0.1:9", "127.0.0.1:9", "SuperSecret"},
        {"http://AKIA@s3.example", "s3.example", "AKIA"},
        {"AKIA:SuperSecret@minio:9000", "minio:9000", "SuperSecret"},
        {"https://AKIA:Super/Secret@s3.example/", "s3.example/", "Super"},
        {"https://AKIA:p@ssword@s3.example", "s3.example", "ssword"},
        {"https://AKIA:SuperSecret@", "", "SuperSecret"},
        {"minio:9000/SuperSecret@x", "x", "SuperSecret"},
    };
    gdn_config_t cfg;

    init_config(&cfg);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[512] = "";
        char expected[512];

        snprintf(expected, sizeof(expected),
                 "minio_endpoint: user information before '@' is not allowed (host part \"%s\"); "
                 "credentials belong in minio_access_key and minio_secret_key",
                 cases[i].host_part);
        CU_ASSERT_EQUAL(gdn_config_set(&cfg, "minio_endpoint", cases[i].value, err, sizeof(err)),
                        GDN_ECONFIG);
        CU_ASSERT_STRING_EQUAL(err, expected);
        CU_ASSERT_PTR_NULL(strstr(err, cases[i].hidden));
        CU_ASSERT_PTR_NULL(strstr(err, "AKIA"));
        CU_ASSERT_PTR_NULL(cfg.minio_endpoint);
    }
    gdn_config_free(&cfg);
}

static void test_config__endpoint_credentials_from_env_or_file_are_not_shown(void)
{
    char dir[256];
    char path[512];
    char err[512] = "";
    gdn_config_t cfg;

    clear_env();
    init_config(&cfg);
    setenv("MINIO_ENDPOINT", "http://AKIA:SuperSecret@127.0.0.1:9", 1);
    CU_ASSERT_EQUAL(gdn_config_apply_env(&cfg, err, sizeof(err)), GDN_ECONFIG);
    clear_env();
    CU_ASSERT_STRING_EQUAL(err, "MINIO_ENDPOINT: user information before '@' is not allowed "
                                "(host part \"127.0.0.1:9\"); credentials belong in "
                                "minio_access_key and minio_secret_key");
    CU_ASSERT_PTR_NULL(cfg.minio_endpoint);

    gdn_test_tmpdir(dir, sizeof(dir));
    write_file(dir, "endpoint.conf", "minio_endpoint = http://AKIA:SuperSecret@127.0.0.1:9\n", path,
               sizeof(path));
    CU_ASSERT_EQUAL(gdn_config_load_file(&cfg, path, err, sizeof(err)), GDN_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ":1: minio_endpoint: user information before '@'"));
    CU_ASSERT_PTR_NULL(strstr(err, "SuperSecret"));
    CU_ASSERT_PTR_NULL(strstr(err, "AKIA"));
    CU_ASSERT_PTR_NULL(cfg.minio_endpoint);
    gdn_config_free(&cfg);
    gdn_test_rmdir(dir);
}

static void test_config__empty_optional_string_unsets(void)
{
    gdn_config_t cfg;

    init_config(&cfg);
    set_ok(&cfg, "tls_cert", "/etc/ssl/cert.pem");
    set_ok(&cfg, "tls_cert", "");
    CU_ASSERT_PTR_NULL(cfg.tls_cert);
    set_ok(&cfg, "minio_endpoint", "127.0.0.1:9000");
    set_ok(&cfg, "minio_endpoint", "");
    CU_ASSERT_PTR_NULL(cfg.minio_endpoint);
    gdn_config_free(&cfg);
}

static void test_config__bad_values_are_rejected_with_a_reason(void)
{
    static const struct {
        const char *key;
        const char *value;
        const char *err;
    } cases[] = {
        {"port", "0", "port: 0 is out of range (1 to 65535)"},
        {"port", "65536", "port: 65536 is out of range (1 to 65535)"},
        {"port", "-1", "port: -1 is out of range (1 to 65535)"},
        {"port", "abc", "port: \"abc\" is not a whole number"},
        {"port", "5000x", "port: \"5000x\" is not a whole number"},
        {"port", " 5000", "port: \" 5000\" is not a whole number"},
        {"port", "0x50", "port: \"0x50\" is not a whole number"},
        {"port", "", "port: \"\" is not a whole number"},
        {"port", "99999999999999999999", "port: 99999999999999999999 is out of range (1 to 65535)"},
        {"threads", "257", "threads: 257 is out of range (0 to 256)"},
        {"threads", "-1", "threads: -1 is out of range (0 to 256)"},
        {"max_body_bytes", "1023", "max_body_bytes: 1023 is out of range (1024 to 1073741824)"},
        {"max_body_bytes", "1073741825",
         "max_body_bytes: 1073741825 is out of range (1024 to 1073741824)"},
        {"journal_map_mb", "15", "journal_map_mb: 15 is out of range (16 to 1048576)"},
        {"journal_map_mb", "1048577", "journal_map_mb: 1048577 is out of range (16 to 1048576)"},
        {"worker_ttl_s", "0", "worker_ttl_s: 0 is out of range (1 to 2592000)"},
        {"worker_ttl_s", "2592001", "worker_ttl_s: 2592001 is out of range (1 to 2592000)"},
        {"task_lease_s", "0", "task_lease_s: 0 is out of range (1 to 604800)"},
        {"task_lease_s", "604801", "task_lease_s: 604801 is out of range (1 to 604800)"},
        {"retry_base_s", "0", "retry_base_s: 0 is out of range (1 to 86400)"},
        {"retry_base_s", "86401", "retry_base_s: 86401 is out of range (1 to 86400)"},
        {"retry_max_s", "0", "retry_max_s: 0 is out of range (1 to 604800)"},
        {"retry_max_s", "604801", "retry_max_s: 604801 is out of range (1 to 604800)"},
        {"completed_ttl_s", "0", "completed_ttl_s: 0 is out of range (1 to 315360000)"},
        {"completed_ttl_s", "315360001",
         "completed_ttl_s: 315360001 is out of range (1 to 315360000)"},
        {"task_retention_s", "-1", "task_retention_s: -1 is out of range (0 to 315360000)"},
        {"task_retention_s", "315360001",
         "task_retention_s: 315360001 is out of range (0 to 315360000)"},
        {"idempotency_ttl_s", "0", "idempotency_ttl_s: 0 is out of range (1 to 2592000)"},
        {"idempotency_ttl_s", "2592001",
         "idempotency_ttl_s: 2592001 is out of range (1 to 2592000)"},
        {"task_lease_s", "10m", "task_lease_s: \"10m\" is not a whole number"},
        {"minio_secure", "maybe",
         "minio_secure: \"maybe\" is not a boolean (use true/false, yes/no, on/off or 1/0)"},
        {"claude_mem_enabled", "",
         "claude_mem_enabled: \"\" is not a boolean (use true/false, yes/no, on/off or 1/0)"},
        {"log_level", "verbose",
         "log_level: \"verbose\" is not a log level (use debug, info, warn or error)"},
        {"host", "", "host: must not be empty"},
        {"data_dir", "", "data_dir: must not be empty"},
        {"minio_bucket", "", "minio_bucket: must not be empty"},
        {"cors_origins", "", "cors_origins: must not be empty"},
        {"cors_origins", "https://a.example,,https://b.example",
         "cors_origins: \"https://a.example,,https://b.example\" has an empty entry"},
        {"cors_origins", "https://a.example, ",
         "cors_origins: \"https://a.example, \" has an empty entry"},
        {"minio_endpoint", "http://",
         "minio_endpoint: \"http://\" is not host[:port] or an http:// or https:// URL of one"},
        {"minio_endpoint", "minio:0",
         "minio_endpoint: \"minio:0\" is not host[:port] or an http:// or https:// URL of one"},
        {"minio_endpoint", "minio:99999",
         "minio_endpoint: \"minio:99999\" is not host[:port] or an http:// or https:// URL of "
         "one"},
        {"minio_endpoint", "minio:9000/garden",
         "minio_endpoint: \"minio:9000/garden\" is not host[:port] or an http:// or https:// "
         "URL of one"},
        {"minio_endpoint", "mi nio",
         "minio_endpoint: \"mi nio\" is not host[:port] or an http:// or https:// URL of one"},
        {"minio_bucket", "b2",
         "minio_bucket: \"b2\" is not a bucket name (3 to 63 of a-z, 0-9, '.' and '-')"},
        {"minio_bucket", "Tasks",
         "minio_bucket: \"Tasks\" is not a bucket name (3 to 63 of a-z, 0-9, '.' and '-')"},
        {"minio_bucket", "tasks-",
         "minio_bucket: \"tasks-\" is not a bucket name (3 to 63 of a-z, 0-9, '.' and '-')"},
        {"minio_region", "eu west",
         "minio_region: \"eu west\" is not a region name (a-z, 0-9 and '-')"},
        {"colour", "blue", "unknown key \"colour\""},
    };
    gdn_config_t cfg;

    init_config(&cfg);

    char *before = print_config(&cfg);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";

        CU_ASSERT_EQUAL(gdn_config_set(&cfg, cases[i].key, cases[i].value, err, sizeof(err)),
                        GDN_ECONFIG);
        CU_ASSERT_STRING_EQUAL(err, cases[i].err);
    }

    /* A rejected value leaves the configuration as it was. */
    char *after = print_config(&cfg);

    CU_ASSERT_STRING_EQUAL(before, after);
    free(before);
    free(after);
    gdn_config_free(&cfg);
}

static void test_config__too_many_origins_are_rejected(void)
{
    char list[2048];
    size_t used = 0;

    for (int i = 0; i <= GDN_CONFIG_MAX_ORIGINS; i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%shttps://o%d.example",
                                 i > 0 ? "," : "", i);

    gdn_config_t cfg;
    char err[256] = "";

    init_config(&cfg);
    CU_ASSERT_EQUAL(gdn_config_set(&cfg, "cors_origins", list, err, sizeof(err)), GDN_ECONFIG);
    CU_ASSERT_STRING_EQUAL(err, "cors_origins: lists 33 origins; at most 32 are allowed");

    /* One fewer is within the limit. */
    *strrchr(list, ',') = '\0';
    set_ok(&cfg, "cors_origins", list);
    gdn_config_free(&cfg);
}

static void test_config__file_with_comments_quotes_and_blank_lines(void)
{
    char dir[256];
    char path[512];
    gdn_config_t cfg;
    char err[512] = "";

    gdn_test_tmpdir(dir, sizeof(dir));
    write_file(dir, "good.conf",
               "# Garden Orchestrator\n"
               "\n"
               "   # an indented comment\n"
               "host = 127.0.0.1\n"
               "port=8080   # the port\n"
               "\t\n"
               "data_dir = \"/srv/garden data\"  # quoted, with a space\n"
               "tls_key = \"a # not a comment\"\n"
               "minio_access_key = eu#1\n"
               "cors_origins = https://a.example\r\n"
               "tls_cert = \"\"\n"
               "minio_endpoint =\n"
               "task_retention_s = 0   # keep finished tasks\n"
               "task_lease_s = \"90\"\n"
               "threads = 4",
               path, sizeof(path));
    init_config(&cfg);
    CU_ASSERT_EQUAL(gdn_config_load_file(&cfg, path, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(err, "");
    CU_ASSERT_STRING_EQUAL(cfg.host, "127.0.0.1");
    CU_ASSERT_EQUAL(cfg.port, 8080);
    CU_ASSERT_STRING_EQUAL(cfg.data_dir, "/srv/garden data");
    CU_ASSERT_STRING_EQUAL(cfg.tls_key, "a # not a comment");
    CU_ASSERT_STRING_EQUAL(cfg.minio_access_key, "eu#1");
    CU_ASSERT_STRING_EQUAL(cfg.cors_origins, "https://a.example");
    CU_ASSERT_PTR_NULL(cfg.tls_cert);
    CU_ASSERT_PTR_NULL(cfg.minio_endpoint);
    CU_ASSERT_EQUAL(cfg.threads, 4);
    CU_ASSERT_EQUAL(cfg.task_retention_s, 0);
    CU_ASSERT_EQUAL(cfg.task_lease_s, 90);
    gdn_config_free(&cfg);
    gdn_test_rmdir(dir);
}

/* Loads `content` from a fresh file and checks the error text, `PATH:` prefix included. */
static void assert_file_error(const char *content, const char *expected)
{
    char dir[256];
    char path[512];
    char want[1024];
    char err[1024] = "";
    gdn_config_t cfg;

    gdn_test_tmpdir(dir, sizeof(dir));
    write_file(dir, "bad.conf", content, path, sizeof(path));
    snprintf(want, sizeof(want), "%s:%s", path, expected);
    init_config(&cfg);
    CU_ASSERT_EQUAL(gdn_config_load_file(&cfg, path, err, sizeof(err)), GDN_ECONFIG);
    CU_ASSERT_STRING_EQUAL(err, want);
    gdn_config_free(&cfg);
    gdn_test_rmdir(dir);
}

static void test_config__file_unknown_key_names_the_line(void)
{
    assert_file_error("# comment\n\nport = 5001\ncolour = blue\n", "4: unknown key \"colour\"");
    assert_file_error("Port = 5001\n", "1: unknown key \"Port\"");
}

static void test_config__file_missing_equals_names_the_line(void)
{
    assert_file_error("port = 5001\nhost 127.0.0.1\n", "2: missing '=' (expected key = value)");
    assert_file_error("host # = 127.0.0.1\n", "1: missing '=' (expected key = value)");
    assert_file_error("= 127.0.0.1\n", "1: missing key before '='");
}

static void test_config__file_bad_values_name_the_line(void)
{
    assert_file_error("\nport = 0\n", "2: port: 0 is out of range (1 to 65535)");
    assert_file_error("port = \"80\" 80\n", "1: unexpected text after the closing quote");
    assert_file_error("host = \"127.0.0.1\n", "1: missing closing double quote");
    assert_file_error("host = 1\nhost = \n", "2: host: must not be empty");
}

static void test_config__file_that_cannot_be_read(void)
{
    char dir[256];
    char path[512];
    char want[1024];
    char err[1024] = "";
    gdn_config_t cfg;

    gdn_test_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/missing.conf", dir);
    snprintf(want, sizeof(want), "%s: No such file or directory", path);
    init_config(&cfg);
    CU_ASSERT_EQUAL(gdn_config_load_file(&cfg, path, err, sizeof(err)), -ENOENT);
    CU_ASSERT_STRING_EQUAL(err, want);

    /* A directory opens but cannot be read as a file. */
    CU_ASSERT_EQUAL(gdn_config_load_file(&cfg, dir, err, sizeof(err)), -EISDIR);
    gdn_config_free(&cfg);
    gdn_test_rmdir(dir);
}

static void test_config__environment_overrides_file(void)
{
    char dir[256];
    char path[512];
    char err[512] = "";
    gdn_config_t cfg;

    clear_env();
    gdn_test_tmpdir(dir, sizeof(dir));
    write_file(dir, "env.conf",
               "port = 5001\nminio_bucket = from-file\nminio_region = file-region\n"
               "host = 10.0.0.1\n",
               path, sizeof(path));
    init_config(&cfg);
    CU_ASSERT_EQUAL_FATAL(gdn_config_load_file(&cfg, path, err, sizeof(err)), 0);

    setenv("PORT", "6000", 1);
    setenv("MINIO_BUCKET", "from-env", 1);
    setenv("MINIO_REGION", "", 1);
    setenv("MINIO_SECURE", "YES", 1);
    setenv("MINIO_ENDPOINT", "127.0.0.1:9000", 1);
    setenv("MINIO_ACCESS_KEY", "AKID", 1);
    setenv("MINIO_SECRET_KEY", "shh", 1);
    setenv("CLAUDE_MEM_ENABLED", "false", 1);
    CU_ASSERT_EQUAL(gdn_config_apply_env(&cfg, err, sizeof(err)), 0);
    clear_env();

    CU_ASSERT_EQUAL(cfg.port, 6000);
    CU_ASSERT_STRING_EQUAL(cfg.minio_bucket, "from-env");
    CU_ASSERT_STRING_EQUAL(cfg.minio_region, "file-region");
    CU_ASSERT_STRING_EQUAL(cfg.host, "10.0.0.1");
    CU_ASSERT_EQUAL(cfg.minio_secure, 1);
    CU_ASSERT_STRING_EQUAL(cfg.minio_endpoint, "127.0.0.1:9000");
    CU_ASSERT_STRING_EQUAL(cfg.minio_access_key, "AKID");
    CU_ASSERT_STRING_EQUAL(cfg.minio_secret_key, "shh");
    CU_ASSERT_EQUAL(cfg.claude_mem_enabled, 0);
    gdn_config_free(&cfg);
    gdn_test_rmdir(dir);
}

static void test_config__environment_bad_value_names_the_variable(void)
{
    gdn_config_t cfg;
    char err[256] = "";

    clear_env();
    init_config(&cfg);
    setenv("PORT", "abc", 1);
    CU_ASSERT_EQUAL(gdn_config_apply_env(&cfg, err, sizeof(err)), GDN_ECONFIG);
    CU_ASSERT_STRING_EQUAL(err, "PORT: \"abc\" is not a whole number");
    CU_ASSERT_EQUAL(cfg.port, 5000);
    clear_env();

    setenv("HOST", "::1", 1);
    setenv("MINIO_SECURE", "sometimes", 1);
    CU_ASSERT_EQUAL(gdn_config_apply_env(&cfg, err, sizeof(err)), GDN_ECONFIG);
    CU_ASSERT_STRING_EQUAL(
        err,
        "MINIO_SECURE: \"sometimes\" is not a boolean (use true/false, yes/no, on/off or 1/0)");
    clear_env();
    gdn_config_free(&cfg);
}

static void test_config__validate_requires_pairs(void)
{
    gdn_config_t cfg;

    init_config(&cfg);
    set_ok(&cfg, "tls_key", "/etc/ssl/key.pem");
    assert_validate(&cfg, "tls_cert and tls_key must be set together (tls_key is set, tls_cert "
                          "is not)");
    set_ok(&cfg, "tls_cert", "/etc/ssl/cert.pem");
    assert_validate(&cfg, NULL);
    set_ok(&cfg, "tls_key", "");
    assert_validate(&cfg, "tls_cert and tls_key must be set together (tls_cert is set, tls_key "
                          "is not)");
    set_ok(&cfg, "tls_cert", "");

    set_ok(&cfg, "minio_access_key", "AKID");
    assert_validate(&cfg, "minio_access_key and minio_secret_key must be set together "
                          "(minio_access_key is set, minio_secret_key is not)");
    set_ok(&cfg, "minio_access_key", "");
    set_ok(&cfg, "minio_secret_key", "shh");
    assert_validate(&cfg, "minio_access_key and minio_secret_key must be set together "
                          "(minio_secret_key is set, minio_access_key is not)");
    set_ok(&cfg, "minio_access_key", "AKID");
    assert_validate(&cfg, NULL);
    gdn_config_free(&cfg);
}

static void test_config__validate_reads_the_tokens_file(void)
{
    gdn_config_t cfg;
    char dir[256];
    char path[512];
    char err[512] = "";

    gdn_test_tmpdir(dir, sizeof(dir));
    init_config(&cfg);
    write_file(dir, "tokens", "ops admin 0123456789abcdef-secret\n", path, sizeof(path));
    set_ok(&cfg, "auth_tokens_file", path);
    assert_validate(&cfg, NULL);

    /* A mistake is found by validation, named by line, and the token is not repeated. */
    write_file(dir, "tokens", "ops admin 0123456789abcdef-secret\nweb reader x\n", path,
               sizeof(path));
    CU_ASSERT_EQUAL(gdn_config_validate(&cfg, err, sizeof(err)), GDN_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "line 2: unknown scope"));
    CU_ASSERT_PTR_NULL(strstr(err, "0123456789abcdef-secret"));

    set_ok(&cfg, "auth_tokens_file", "/nonexistent/tokens");
    CU_ASSERT_EQUAL(gdn_config_validate(&cfg, err, sizeof(err)), GDN_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/tokens"));
    gdn_config_free(&cfg);
    gdn_test_rmdir(dir);
}

static void test_config__print_masks_the_secret(void)
{
    gdn_config_t cfg;

    init_config(&cfg);
    set_ok(&cfg, "minio_access_key", "AKID");
    set_ok(&cfg, "minio_secret_key", "very-secret-value");

    char *text = print_config(&cfg);

    CU_ASSERT_PTR_NULL(strstr(text, "very-secret-value"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nminio_secret_key = ********\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nminio_access_key = AKID\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\ntls_cert = \n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nminio_secure = false\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nlog_level = info\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nworker_ttl_s = 600\ntask_lease_s = 600\n"
                                        "retry_base_s = 5\nretry_max_s = 300\n"
                                        "completed_ttl_s = 604800\ntask_retention_s = 2592000\n"
                                        "idempotency_ttl_s = 86400\n"));
    CU_ASSERT_EQUAL(strncmp(text, "host = 0.0.0.0\nport = 5000\n", 27), 0);

    size_t lines = 0;

    for (const char *p = text; *p != '\0'; p++)
        lines += *p == '\n';
    CU_ASSERT_EQUAL(lines, 34); /* one line for each of the 34 keys */
    free(text);

    /* An unset secret prints empty, not masked, so the operator sees it is missing. */
    set_ok(&cfg, "minio_secret_key", "");
    text = print_config(&cfg);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nminio_secret_key = \n"));
    free(text);
    gdn_config_free(&cfg);
}

/* Runs gdn_config_log with stderr sent to a file and returns what it wrote. */
static char *capture_config_log(const gdn_config_t *cfg, const char *dir)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/stderr.log", dir);

    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int saved = dup(STDERR_FILENO);

    CU_ASSERT_FATAL(fd >= 0 && saved >= 0);
    fflush(stderr);
    dup2(fd, STDERR_FILENO);
    gdn_config_log(cfg);
    dup2(saved, STDERR_FILENO);
    close(saved);

    char *text = calloc(1, 8192);

    CU_ASSERT_FATAL(text != NULL);
    CU_ASSERT(pread(fd, text, 8191, 0) > 0);
    close(fd);
    return text;
}

static void test_config__log_is_one_masked_line(void)
{
    char dir[256];
    gdn_config_t cfg;

    gdn_test_tmpdir(dir, sizeof(dir));
    init_config(&cfg);
    set_ok(&cfg, "minio_access_key", "AKID");
    set_ok(&cfg, "minio_secret_key", "very-secret-value");
    set_ok(&cfg, "cors_origins", "https://a.example, https://b.example");

    char *text = capture_config_log(&cfg, dir);

    CU_ASSERT_EQUAL(strncmp(text, "ts=", 3), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "Z level=info module=config event=config_effective "
                                        "host=0.0.0.0 port=5000 "));
    CU_ASSERT_PTR_NULL(strstr(text, "very-secret-value"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, " minio_secret_key=******** "));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, " minio_access_key=AKID "));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, " tls_cert=\"\" "));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, " cors_origins=\"https://a.example, https://b.example\" "));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(text, " log_level=info access_log=false auth_tokens_file=\"\"\n"));
    CU_ASSERT_PTR_EQUAL(strchr(text, '\n'), text + strlen(text) - 1);
    free(text);
    gdn_config_free(&cfg);
    gdn_test_rmdir(dir);
}

static void test_config__origin_matching(void)
{
    gdn_config_t cfg;

    init_config(&cfg);
    CU_ASSERT_EQUAL(gdn_config_origin_allowed(&cfg, "https://anything.example", 24), 1);

    set_ok(&cfg, "cors_origins", " https://a.example ,https://b.example:8443");
    CU_ASSERT_EQUAL(gdn_config_origin_allowed(&cfg, "https://a.example", 17), 1);
    CU_ASSERT_EQUAL(gdn_config_origin_allowed(&cfg, "https://b.example:8443", 22), 1);
    CU_ASSERT_EQUAL(gdn_config_origin_allowed(&cfg, "https://b.example", 17), 0);
    CU_ASSERT_EQUAL(gdn_config_origin_allowed(&cfg, "https://a.example.evil", 22), 0);
    CU_ASSERT_EQUAL(gdn_config_origin_allowed(&cfg, "http://a.example", 16), 0);
    CU_ASSERT_EQUAL(gdn_config_origin_allowed(&cfg, "https://a.exampl", 16), 0);
    CU_ASSERT_EQUAL(gdn_config_origin_allowed(&cfg, "", 0), 0);

    /* The length bounds the origin: the bytes after it are not part of it. */
    CU_ASSERT_EQUAL(gdn_config_origin_allowed(&cfg, "https://a.example/path", 17), 1);
    gdn_config_free(&cfg);
}

static CU_TestInfo config_tests[] = {
    {"init fills in every documented default", test_config__defaults},
    {"every key can be set from its text", test_config__every_key_can_be_set},
    {"the bounds of every number are accepted", test_config__range_bounds_are_accepted},
    {"booleans accept true/false, yes/no, on/off and 1/0 in any case",
     test_config__booleans_accept_every_spelling},
    {"an empty value unsets an optional string", test_config__empty_optional_string_unsets},
    {"an S3 endpoint is host[:port] or an http:// or https:// URL of one, either case",
     test_config__endpoints_take_a_host_port_or_url},
    {"an S3 endpoint with user information is refused without showing it",
     test_config__endpoint_credentials_are_refused_and_never_shown},
    {"an S3 endpoint with credentials from the environment or a file is not shown",
     test_config__endpoint_credentials_from_env_or_file_are_not_shown},
    {"bad values are rejected with a reason and change nothing",
     test_config__bad_values_are_rejected_with_a_reason},
    {"more than the allowed number of origins is rejected",
     test_config__too_many_origins_are_rejected},
    {"a file with comments, quotes and blank lines is read",
     test_config__file_with_comments_quotes_and_blank_lines},
    {"an unknown key in a file names its line", test_config__file_unknown_key_names_the_line},
    {"a line without '=' names its line", test_config__file_missing_equals_names_the_line},
    {"a bad value in a file names its line", test_config__file_bad_values_name_the_line},
    {"a file that cannot be read is reported with its path", test_config__file_that_cannot_be_read},
    {"the environment overrides the file; empty variables change nothing",
     test_config__environment_overrides_file},
    {"a bad environment value names the variable",
     test_config__environment_bad_value_names_the_variable},
    {"validate requires the TLS and S3 key pairs together", test_config__validate_requires_pairs},
    {"validate reads the tokens file and names its bad line",
     test_config__validate_reads_the_tokens_file},
    {"print masks the secret key and shows the access key", test_config__print_masks_the_secret},
    {"the config log is one masked, quoted line", test_config__log_is_one_masked_line},
    {"origins match exactly, or all of them under *", test_config__origin_matching},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo gdn_test_suites[] = {
    {.pName = "config", .pTests = config_tests},
    CU_SUITE_INFO_NULL,
};
