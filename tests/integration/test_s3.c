/*
 * Integration test of the bucket copy: the real server writes behind to the project's test S3
 * service (s3rver behind the SigV4-checking front of tests/s3), and the tests check what lands
 * in the bucket, how many requests it costs, how the server rides out outages, crashes and a
 * wrong secret, and that `restore` rebuilds a server from the bucket alone.
 *
 * The suite starts one S3 service with tests/s3/start.sh (found through GDN_S3_DIR) and stops
 * it by its recorded pids with tests/s3/stop.sh. Each test writes to a bucket of its own, which
 * the server creates, and resets the front's counters and faults first.
 *
 * The bucket is read back from s3rver directly, on its own port, with requests signed for its
 * built-in key S3RVER (s3rver checks the key, not the signature). Reading around the front
 * keeps its counters for the server's requests alone, and works while the front has an outage.
 */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cunit_main.h"
#include "harness.h"

/* The key pair the front accepts; tests/s3/start.sh is told to use exactly these. */
#define FRONT_ACCESS_KEY "garden-test"
#define FRONT_SECRET_KEY "garden-test-secret"
#define FRONT_REGION "us-east-1"

/* s3rver's built-in credentials, for reading the bucket around the front. */
#define S3RVER_KEY "S3RVER"

/* SHA-256 of the empty string: the payload hash of a GET. */
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Bound of every wait for the server to catch up with the bucket. */
#define CATCH_UP_S 30.0

/* Mismatches printed in detail before the rest are only counted. */
#define SHOWN_MAX 5

/* The load threads of the outage test. */
#define LOAD_THREADS 2

/* Creates per load thread at most, to keep the comparison that follows short. */
#define LOAD_CREATES_MAX 600

/* Room for a bucket name of this suite. */
#define BUCKET_SIZE 64

/* Size of the buffer that receives the output of the restore command. */
#define OUTPUT_MAX 16384

/* The test S3 service of this suite. */
struct s3_service {
    char scripts[GDN_IT_PATH_MAX]; /* tests/s3 */
    char state[GDN_IT_DIR_MAX];    /* STATE_DIR given to start.sh */
    int s3_port;                   /* the front */
    int control_port;              /* the front's control API */
    int s3rver_port;               /* s3rver itself */
    int running;
    gdn_it_server_t control; /* only its port is used: the harness's client talks to it */
};

static struct s3_service service;

/* A growable list of strings, sorted on demand for lookups. */
struct str_list {
    char **items;
    size_t count;
    size_t cap;
};

/* What the test expects the journal, and so the bucket, to hold. */
struct expected {
    struct str_list tasks;     /* task ids: one task:{id} each */
    struct str_list completed; /* finished task ids: one completed:{id} each */
    struct str_list workers;   /* worker ids: one worker:{id} each */
};

static int list_push(struct str_list *list, const char *text)
{
    if (list->count == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 64;
        char **grown = realloc(list->items, cap * sizeof(*grown));

        if (!grown)
            return -ENOMEM;
        list->items = grown;
        list->cap = cap;
    }
    list->items[list->count] = strdup(text);
    if (!list->items[list->count])
        return -ENOMEM;
    list->count++;
    return 0;
}

static void list_free(struct str_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i]);
    free(list->items);
    memset(list, 0, sizeof(*list));
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void list_sort(struct str_list *list)
{
    if (list->count > 1)
        qsort(list->items, list->count, sizeof(*list->items), compare_strings);
}

/* Looks `text` up in a list sorted by list_sort. */
static int list_has(const struct str_list *list, const char *text)
{
    if (list->count == 0)
        return 0;
    return bsearch(&text, list->items, list->count, sizeof(*list->items), compare_strings) != NULL;
}

static void expected_free(struct expected *exp)
{
    list_free(&exp->tasks);
    list_free(&exp->completed);
    list_free(&exp->workers);
}

/* ---- the S3 service: start, stop, control API ---- */

/*
 * Runs `bash script arg` with its output in `out_path`, waiting up to `limit_s`.
 * @return its exit code, or -1 if it did not exit by itself in time.
 */
static int run_script(const char *script, const char *arg, const char *out_path, double limit_s)
{
    pid_t pid = fork();

    if (pid < 0)
        return -1;
    if (pid == 0) {
        int out = open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int in = open("/dev/null", O_RDONLY);

        if (out < 0 || in < 0)
            _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        execl("/bin/bash", "bash", script, arg, (char *)NULL);
        _exit(127);
    }

    double deadline = gdn_it_now_seconds() + limit_s;
    int status = 0;

    while (waitpid(pid, &status, WNOHANG) != pid) {
        if (gdn_it_now_seconds() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        gdn_it_sleep_ms(20);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Reads `NAME=number` from the env file start.sh wrote. Returns the number or -1. */
static int read_env_port(const char *path, const char *name)
{
    FILE *f = fopen(path, "r");
    char line[512];
    size_t name_len = strlen(name);
    int port = -1;

    if (!f)
        return -1;
    while (port < 0 && fgets(line, sizeof(line), f)) {
        if (strncmp(line, name, name_len) != 0 || line[name_len] != '=')
            continue;

        char *end;
        long value = strtol(line + name_len + 1, &end, 10);

        if (end != line + name_len + 1 && value > 0 && value < 65536)
            port = (int)value;
    }
    fclose(f);
    return port;
}

static void print_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char buf[4096];
    size_t n;

    if (!f)
        return;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, stderr);
    fclose(f);
}

static int start_service(void)
{
    const char *dir = getenv("GDN_S3_DIR");
    const char *base = getenv("TMPDIR");
    char script[GDN_IT_PATH_MAX + 16];
    char output[GDN_IT_DIR_MAX + 32];
    char env_path[GDN_IT_DIR_MAX + 16];

    if (!dir || !*dir) {
        fprintf(stderr, "GDN_S3_DIR is not set: run the tests through ctest\n");
        return -1;
    }
    snprintf(service.scripts, sizeof(service.scripts), "%s", dir);
    snprintf(service.state, sizeof(service.state), "%s/gdn-s3-XXXXXX",
             base && *base ? base : "/tmp");
    if (!mkdtemp(service.state))
        return -1;

    /* The service must accept exactly the key pair the servers are given below, whatever the
     * environment of the test run says, and pick free ports. */
    setenv("S3_ACCESS_KEY", FRONT_ACCESS_KEY, 1);
    setenv("S3_SECRET_KEY", FRONT_SECRET_KEY, 1);
    setenv("S3_REGION", FRONT_REGION, 1);
    unsetenv("S3_FRONT_PORT");
    unsetenv("S3_FRONT_CONTROL_PORT");
    unsetenv("S3_FRONT_ARGS");

    snprintf(script, sizeof(script), "%s/start.sh", service.scripts);
    snprintf(output, sizeof(output), "%s/start.out", service.state);
    int code = run_script(script, service.state, output, 120.0);

    service.running = 1;
    snprintf(env_path, sizeof(env_path), "%s/env", service.state);
    service.s3_port = read_env_port(env_path, "S3_PORT");
    service.control_port = read_env_port(env_path, "S3_CONTROL_PORT");
    service.s3rver_port = read_env_port(env_path, "S3RVER_PORT");
    if (code != 0 || service.s3_port < 0 || service.control_port < 0 || service.s3rver_port < 0) {
        fprintf(stderr, "the test S3 service did not start (exit %d):\n", code);
        print_file(output);
        return -1;
    }
    memset(&service.control, 0, sizeof(service.control));
    service.control.port = service.control_port;
    return 0;
}

static void stop_service(void)
{
    char script[GDN_IT_PATH_MAX + 16];
    char output[GDN_IT_DIR_MAX + 32];

    if (service.running) {
        snprintf(script, sizeof(script), "%s/stop.sh", service.scripts);
        snprintf(output, sizeof(output), "%s/stop.out", service.state);
        run_script(script, service.state, output, 60.0);
        service.running = 0;
    }
    if (service.state[0])
        gdn_test_rmdir(service.state);
    service.state[0] = '\0';
}

static int init_suite(void)
{
    if (gdn_it_global_init() != 0)
        return -1;
    if (start_service() != 0) {
        stop_service();
        return -1;
    }
    return 0;
}

static int cleanup_suite(void)
{
    stop_service();
    curl_global_cleanup();
    return 0;
}

/* One request to the front's control API. */
static long control_call(const char *method, const char *path, const char *body,
                         gdn_it_response_t *res)
{
    gdn_it_client_t client;

    memset(res, 0, sizeof(*res));
    if (gdn_it_client_open(&client, &service.control, GDN_IT_HTTP1) != 0)
        return 0;
    gdn_it_call(&client, method, path, body, res);
    gdn_it_client_close(&client);
    return res->status;
}

/* Sends a control request whose answer only matters through its status. */
static long control(const char *method, const char *path, const char *body)
{
    gdn_it_response_t res;
    long status = control_call(method, path, body, &res);

    if (status != 200)
        fprintf(stderr, "control %s %s answered %ld: %s\n", method, path, status,
                res.body ? res.body : "");
    gdn_it_response_free(&res);
    return status;
}

/* Clears every fault and counter, so that a test starts on a healthy, silent service. */
static void reset_service(void)
{
    CU_ASSERT_EQUAL(control("DELETE", "/fault", NULL), 200);
    CU_ASSERT_EQUAL(control("POST", "/reset-stats", NULL), 200);
}

/* Makes the front stop listening until the faults are cleared. */
static void start_outage(void)
{
    CU_ASSERT_EQUAL(control("POST", "/fault", "{\"mode\":\"outage\"}"), 200);
}

static void end_outage(void)
{
    CU_ASSERT_EQUAL(control("DELETE", "/fault", NULL), 200);
}

/* Reads an integer counter of the front's /stats, following `group` then `name` (name may be
 * NULL). A counter the front has not created yet is 0; -1 means /stats could not be read. */
static long long front_counter(const char *group, const char *name)
{
    gdn_it_response_t res;
    long long value = 0;

    if (control_call("GET", "/stats", NULL, &res) != 200 || !res.json) {
        gdn_it_response_free(&res);
        return -1;
    }
    if (gdn_it_json_integer(res.json, &value, group, name, NULL) != 0)
        value = 0;
    gdn_it_response_free(&res);
    return value;
}

/* ---- reading the bucket from s3rver ---- */

/*
 * GETs `bucket`/`key` (key NULL for the bucket itself, with `query`) from s3rver, signed with
 * SigV4 for s3rver's key. Fills `res` as the harness does, without parsing JSON.
 * @return the HTTP status, or 0 when no answer arrived.
 */
static long bucket_get(CURL *curl, const char *bucket, const char *key, const char *query,
                       gdn_it_response_t *res)
{
    char url[2048];

    memset(res, 0, sizeof(*res));
    if (key) {
        char *escaped = curl_easy_escape(curl, key, 0);

        if (!escaped)
            return 0;
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/%s/%s", service.s3rver_port, bucket,
                 escaped);
        curl_free(escaped);
    } else {
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/%s?%s", service.s3rver_port, bucket,
                 query ? query : "");
    }

    /* libcurl's default write function stores into these memory streams. */
    FILE *body = open_memstream(&res->body, &res->body_len);
    FILE *headers = open_memstream(&res->headers, &res->headers_len);
    struct curl_slist *list = curl_slist_append(NULL, "x-amz-content-sha256: " EMPTY_SHA256);

    if (body && headers && list) {
        curl_easy_reset(curl);
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 5L);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
        curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, "aws:amz:" FRONT_REGION ":s3");
        curl_easy_setopt(curl, CURLOPT_USERPWD, S3RVER_KEY ":" S3RVER_KEY);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, headers);
        res->code = curl_easy_perform(curl);
        if (res->code == CURLE_OK)
            curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res->status);
    }
    if (body)
        fclose(body);
    if (headers)
        fclose(headers);
    curl_slist_free_all(list);
    return res->status;
}

/* Decodes the XML entities that s3rver writes in keys and tokens, in place. */
static void xml_unescape(char *text)
{
    static const struct {
        const char *entity;
        char c;
    } entities[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    char *out = text;

    for (const char *in = text; *in;) {
        size_t i = 0;
        size_t n = sizeof(entities) / sizeof(entities[0]);

        while (i < n && strncmp(in, entities[i].entity, strlen(entities[i].entity)) != 0)
            i++;
        if (i < n) {
            *out++ = entities[i].c;
            in += strlen(entities[i].entity);
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
}

/* Copies the text of the element `tag` found at or after `from` into a malloc'd string, and
 * sets *after past its closing tag. Returns NULL when there is none. */
static char *xml_element(const char *from, const char *tag, const char **after)
{
    char open[64];
    char close[64];

    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);

    const char *start = strstr(from, open);
    if (!start)
        return NULL;
    start += strlen(open);

    const char *end = strstr(start, close);
    if (!end)
        return NULL;

    char *text = strndup(start, (size_t)(end - start));
    if (text)
        xml_unescape(text);
    if (after)
        *after = end + strlen(close);
    return text;
}

/* Lists every key of `bucket`, page by page. Returns 0, or -1 after printing why. */
static int bucket_list(CURL *curl, const char *bucket, struct str_list *keys)
{
    char *token = NULL;
    int rc = 0;

    do {
        char query[1024];
        gdn_it_response_t res;

        if (token) {
            char *escaped = curl_easy_escape(curl, token, 0);

            snprintf(query, sizeof(query), "continuation-token=%s&list-type=2",
                     escaped ? escaped : "");
            curl_free(escaped);
        } else {
            snprintf(query, sizeof(query), "list-type=2");
        }
        free(token);
        token = NULL;
        if (bucket_get(curl, bucket, NULL, query, &res) != 200 || !res.body) {
            fprintf(stderr, "listing bucket %s answered %ld: %s\n", bucket, res.status,
                    res.body ? res.body : curl_easy_strerror(res.code));
            rc = -1;
        }

        const char *at = res.body;
        char *key;

        while (rc == 0 && (key = xml_element(at, "Key", &at)) != NULL) {
            rc = list_push(keys, key);
            free(key);
        }
        if (rc == 0) {
            char *truncated = xml_element(res.body, "IsTruncated", NULL);

            if (truncated && strcmp(truncated, "true") == 0)
                token = xml_element(res.body, "NextContinuationToken", NULL);
            free(truncated);
        }
        gdn_it_response_free(&res);
    } while (rc == 0 && token);
    free(token);
    return rc;
}

/* ---- the server under test ---- */

/* Gives each test a bucket of its own, which the server creates. */
static void next_bucket(char *out, size_t size)
{
    static int seq;

    snprintf(out, size, "gdn-s3-%ld-%d", (long)getpid(), ++seq);
}

/*
 * Writes a config pointing the server at the front, with `bucket`, `secret` and `extra` lines.
 * Retries are kept short so that recovery stays quick after an outage.
 */
static int configure(gdn_it_server_t *srv, const char *bucket, const char *secret,
                     const char *extra)
{
    return gdn_it_server_configf(srv,
                                 "minio_endpoint = 127.0.0.1:%d\n"
                                 "minio_access_key = " FRONT_ACCESS_KEY "\n"
                                 "minio_secret_key = %s\n"
                                 "minio_region = " FRONT_REGION "\n"
                                 "minio_bucket = %s\n"
                                 "s3_connect_timeout_ms = 1000\n"
                                 "s3_timeout_ms = 5000\n"
                                 "flush_retry_max_ms = 1000\n"
                                 "threads = 2\n"
                                 "%s",
                                 service.s3_port, secret, bucket, extra ? extra : "");
}

/* Reads /health: the backlog and the bucket state ("ok", "degraded", "disabled"). */
static int read_health(gdn_it_client_t *client, long long *backlog, char *state, size_t size)
{
    gdn_it_response_t res;
    int rc = -1;

    gdn_it_call(client, "GET", "/health", NULL, &res);
    const char *s3 = gdn_it_json_string(res.json, "s3", NULL);

    if (res.status == 200 && s3 && gdn_it_json_integer(res.json, backlog, "backlog", NULL) == 0) {
        snprintf(state, size, "%s", s3);
        rc = 0;
    }
    gdn_it_response_free(&res);
    return rc;
}

/* Waits until every record is in the bucket and the bucket copy is healthy. */
static int wait_flushed(gdn_it_client_t *client, double limit_s)
{
    double deadline = gdn_it_now_seconds() + limit_s;
    long long backlog = -1;
    char state[32] = "";

    while (gdn_it_now_seconds() < deadline) {
        if (read_health(client, &backlog, state, sizeof(state)) == 0 && backlog == 0 &&
            strcmp(state, "ok") == 0)
            return 0;
        gdn_it_sleep_ms(50);
    }
    fprintf(stderr, "the server did not catch up in %.0f s: backlog %lld, s3 \"%s\"\n", limit_s,
            backlog, state);
    return -1;
}

/* Waits until /health reports the bucket copy degraded, with records waiting. */
static int wait_degraded(gdn_it_client_t *client, double limit_s, long long *backlog)
{
    double deadline = gdn_it_now_seconds() + limit_s;
    char state[32] = "";

    *backlog = -1;
    while (gdn_it_now_seconds() < deadline) {
        if (read_health(client, backlog, state, sizeof(state)) == 0 && *backlog > 0 &&
            strcmp(state, "degraded") == 0)
            return 0;
        gdn_it_sleep_ms(50);
    }
    fprintf(stderr, "the server did not report degraded: backlog %lld, s3 \"%s\"\n", *backlog,
            state);
    return -1;
}

/* Copies last_flush_at from /stats ("null" before the first round). */
static int read_last_flush(gdn_it_client_t *client, char *out, size_t size)
{
    gdn_it_response_t res;
    int rc = -1;

    gdn_it_call(client, "GET", "/stats", NULL, &res);
    const char *at = gdn_it_json_string(res.json, "last_flush_at", NULL);

    if (res.status == 200) {
        snprintf(out, size, "%s", at ? at : "null");
        rc = 0;
    }
    gdn_it_response_free(&res);
    return rc;
}

/* Waits for `rounds` flush rounds to end, as seen from last_flush_at changing. */
static int wait_rounds(gdn_it_client_t *client, int rounds, double limit_s)
{
    double deadline = gdn_it_now_seconds() + limit_s;
    char last[64] = "";
    char seen[64];

    if (read_last_flush(client, last, sizeof(last)) != 0)
        return -1;
    while (rounds > 0 && gdn_it_now_seconds() < deadline) {
        gdn_it_sleep_ms(10);
        if (read_last_flush(client, seen, sizeof(seen)) == 0 && strcmp(seen, last) != 0) {
            memcpy(last, seen, sizeof(last));
            rounds--;
        }
    }
    return rounds == 0 ? 0 : -1;
}

static long register_worker(gdn_it_client_t *client, const char *worker, const char *capability)
{
    char body[256];
    gdn_it_response_t res;

    snprintf(body, sizeof(body), "{\"worker_id\":\"%s\",\"capabilities\":[\"%s\"]}", worker,
             capability);
    gdn_it_call(client, "POST", "/poll/register", body, &res);
    long status = res.status;
    gdn_it_response_free(&res);
    return status;
}

static long heartbeat(gdn_it_client_t *client, const char *worker)
{
    char body[256];
    gdn_it_response_t res;

    snprintf(body, sizeof(body), "{\"worker_id\":\"%s\"}", worker);
    gdn_it_call(client, "POST", "/poll/heartbeat", body, &res);
    long status = res.status;
    gdn_it_response_free(&res);
    return status;
}

/* GETs `path` and hands its body over to `*body` (malloc'd). Returns the HTTP status. */
static long fetch_body(gdn_it_client_t *client, const char *path, char **body, size_t *len)
{
    gdn_it_response_t res;

    gdn_it_call(client, "GET", path, NULL, &res);
    long status = res.status;

    *body = res.body;
    *len = res.body_len;
    res.body = NULL;
    gdn_it_response_free(&res);
    return status;
}

/* ---- the bucket against the journal ---- */

/* Checks one object's user metadata against the record it holds. Returns 0 or 1 mismatch. */
static int check_metadata(const gdn_it_response_t *object, const char *key, int is_worker,
                          int wants_expiry)
{
    char created[64];
    char expires[64];
    int has_created =
        gdn_it_header(object, "x-amz-meta-created_at", created, sizeof(created)) != NULL;
    int has_expires =
        gdn_it_header(object, "x-amz-meta-expires_at", expires, sizeof(expires)) != NULL;
    yajl_val json = yajl_tree_parse(object->body, NULL, 0);
    const char *field = gdn_it_json_string(json, is_worker ? "registered_at" : "created_at", NULL);
    int ok = has_created && field && strcmp(created, field) == 0 && has_expires == wants_expiry;

    /* ISO-8601 times of one format compare as strings: an expiry comes after the creation. */
    if (ok && has_expires)
        ok = strlen(expires) == strlen(created) && strcmp(expires, created) > 0;
    if (!ok)
        fprintf(stderr, "  %s: metadata created_at=%s (record %s) expires_at=%s%s\n", key,
                has_created ? created : "(none)", field ? field : "(none)",
                has_expires ? expires : "(none)", wants_expiry ? "" : " (none expected)");
    if (json)
        yajl_tree_free(json);
    return ok ? 0 : 1;
}

/* Compares one object with what the API shows for its record. Returns 0 or 1 mismatch. */
static int check_object(gdn_it_client_t *client, CURL *curl, const char *bucket, const char *key,
                        const char *workers_body)
{
    gdn_it_response_t object;
    int is_worker = strncmp(key, "worker:", 7) == 0;
    int is_completed = strncmp(key, "completed:", 10) == 0;
    int mismatch = 0;

    if (bucket_get(curl, bucket, key, NULL, &object) != 200 || !object.body) {
        fprintf(stderr, "  %s: GET answered %ld\n", key, object.status);
        gdn_it_response_free(&object);
        return 1;
    }
    if (is_worker) {
        /* The listing is a JSON array of the very objects: the bucket's copy must appear in it
         * byte for byte, and name the right worker. */
        yajl_val json = yajl_tree_parse(object.body, NULL, 0);
        const char *id = gdn_it_json_string(json, "worker_id", NULL);

        mismatch = !id || strcmp(id, key + 7) != 0 || !strstr(workers_body, object.body);
        if (json)
            yajl_tree_free(json);
        if (mismatch)
            fprintf(stderr, "  %s: object %s is not in /poll/workers %s\n", key, object.body,
                    workers_body);
    } else {
        char path[256];
        char *api = NULL;
        size_t api_len = 0;

        snprintf(path, sizeof(path), "/tasks/%s", strchr(key, ':') + 1);
        long status = fetch_body(client, path, &api, &api_len);

        mismatch =
            status != 200 || api_len != object.body_len || memcmp(api, object.body, api_len) != 0;
        if (mismatch)
            fprintf(stderr, "  %s: object %s\n  differs from GET %s (%ld) %s\n", key, object.body,
                    path, status, api ? api : "");
        free(api);
    }
    if (!mismatch) {
        /* Workers and completed copies always expire; a task does once it has ended (the
         * server keeps ended tasks task_retention_s), and never while it is open. */
        int ended = !is_worker && (strstr(object.body, "\"completed_at\"") != NULL ||
                                   strstr(object.body, "\"status\":\"cancelled\"") != NULL);

        mismatch = check_metadata(&object, key, is_worker, is_worker || is_completed || ended);
    }
    gdn_it_response_free(&object);
    return mismatch;
}

static int add_keys(struct str_list *keys, const char *prefix, const struct str_list *ids)
{
    char key[256];

    for (size_t i = 0; i < ids->count; i++) {
        snprintf(key, sizeof(key), "%s:%s", prefix, ids->items[i]);
        if (list_push(keys, key) != 0)
            return -ENOMEM;
    }
    return 0;
}

/*
 * Checks that `bucket` holds exactly the records of `exp` and that every object equals what
 * the server's API shows for the record, byte for byte, with its metadata.
 * @return the number of mismatches (missing, extra or different objects).
 */
static int compare_bucket(gdn_it_client_t *client, const char *bucket, const struct expected *exp)
{
    struct str_list wanted = {0};
    struct str_list listed = {0};
    char *workers = NULL;
    size_t workers_len = 0;
    int missing = 0;
    int extra = 0;
    int different = 0;
    CURL *curl = curl_easy_init();

    CU_ASSERT_FATAL(curl != NULL);
    CU_ASSERT_FATAL(add_keys(&wanted, "task", &exp->tasks) == 0);
    CU_ASSERT_FATAL(add_keys(&wanted, "completed", &exp->completed) == 0);
    CU_ASSERT_FATAL(add_keys(&wanted, "worker", &exp->workers) == 0);
    list_sort(&wanted);
    CU_ASSERT_EQUAL(fetch_body(client, "/poll/workers", &workers, &workers_len), 200);

    int listed_ok = bucket_list(curl, bucket, &listed) == 0;

    CU_ASSERT(listed_ok);
    list_sort(&listed);
    for (size_t i = 0; listed_ok && i < wanted.count; i++) {
        if (!list_has(&listed, wanted.items[i])) {
            if (missing++ < SHOWN_MAX)
                fprintf(stderr, "  %s: missing from the bucket\n", wanted.items[i]);
        } else if (different < SHOWN_MAX) {
            different +=
                check_object(client, curl, bucket, wanted.items[i], workers ? workers : "");
        }
    }
    for (size_t i = 0; listed_ok && i < listed.count; i++) {
        if (!list_has(&wanted, listed.items[i]) && extra++ < SHOWN_MAX)
            fprintf(stderr, "  %s: in the bucket but not in the journal\n", listed.items[i]);
    }
    if (missing || extra || different)
        fprintf(stderr, "bucket %s: %zu objects, %zu expected; %d missing, %d extra, %d differ\n",
                bucket, listed.count, wanted.count, missing, extra, different);
    CU_ASSERT_EQUAL(missing, 0);
    CU_ASSERT_EQUAL(extra, 0);
    CU_ASSERT_EQUAL(different, 0);
    CU_ASSERT_EQUAL(listed.count, wanted.count);

    free(workers);
    list_free(&wanted);
    list_free(&listed);
    curl_easy_cleanup(curl);
    return listed_ok ? missing + extra + different : 1;
}

/* Creates one task and records its id. Returns the HTTP status. */
static long create_recorded(gdn_it_client_t *client, const char *body, struct str_list *ids)
{
    char id[GDN_IT_ID_SIZE];
    long status = gdn_it_create_task(client, body, id);

    if (status == 200 && id[0])
        CU_ASSERT_FATAL(list_push(ids, id) == 0);
    return status;
}

/* Claims and finishes tasks of `role` as `worker`: `claims` claims, the first `completes` of
 * them finished (every third one as failed). Returns the number of unexpected answers. */
static int claim_and_complete(gdn_it_client_t *client, const char *worker, const char *role,
                              int claims, int completes, struct expected *exp)
{
    int unexpected = 0;

    for (int i = 0; i < claims; i++) {
        char id[GDN_IT_ID_SIZE];

        if (gdn_it_poll(client, worker, role, id) != 200 || !id[0]) {
            unexpected++;
            continue;
        }
        if (i >= completes)
            continue;

        char result[64];

        snprintf(result, sizeof(result), "{\"n\":%d,\"by\":\"%s\"}", i, worker);
        if (gdn_it_complete(client, id, result, i % 3 == 2 ? "failed" : NULL) != 200)
            unexpected++;
        else
            CU_ASSERT_FATAL(list_push(&exp->completed, id) == 0);
    }
    return unexpected;
}

/* Starts a server on `bucket` with `extra` config lines; fatal if it does not start. */
static void start_server(gdn_it_server_t *srv, const char *bucket, const char *extra)
{
    CU_ASSERT_FATAL(gdn_it_server_init(srv) == 0);
    CU_ASSERT_FATAL(configure(srv, bucket, FRONT_SECRET_KEY, extra) == 0);
    CU_ASSERT_FATAL(gdn_it_server_start(srv) == 0);
}

static void stop_server(gdn_it_server_t *srv)
{
    gdn_it_exit_t ex;

    CU_ASSERT_EQUAL(gdn_it_server_stop(srv, SIGTERM, 10.0, &ex), 0);
    CU_ASSERT(ex.exited && ex.code == 0);
}

/* Begins a test: a service without faults or counts, a fresh bucket, a server on it with
 * `extra` config lines, and a client for it. */
static void begin_test(gdn_it_server_t *srv, gdn_it_client_t *client, char *bucket,
                       const char *extra)
{
    reset_service();
    next_bucket(bucket, BUCKET_SIZE);
    start_server(srv, bucket, extra);
    CU_ASSERT_FATAL(gdn_it_client_open(client, srv, GDN_IT_HTTP1) == 0);
}

/* Ends a test begun with begin_test; the server must stop cleanly. */
static void end_test(gdn_it_server_t *srv, gdn_it_client_t *client, struct expected *exp)
{
    gdn_it_client_close(client);
    stop_server(srv);
    gdn_it_server_cleanup(srv);
    if (exp)
        expected_free(exp);
}

/* ---- the tests ---- */

static void test_s3__bucket_equals_journal_after_flush(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;
    struct expected exp = {0};
    char bucket[BUCKET_SIZE];
    char body[512];
    int unexpected = 0;

    begin_test(&srv, &client, bucket, "flush_interval_ms = 100\n");

    for (int i = 0; i < 24; i++) {
        snprintf(body, sizeof(body),
                 "{\"task_type\":\"t%d\",\"role\":\"%s\",\"priority\":%d,"
                 "\"input_data\":{\"n\":%d,\"text\":\"caf\\u00e9 \\\"q\\\" / \\\\\"}}",
                 i, i % 2 ? "gardener" : "archivist", i % 7, i);
        unexpected += create_recorded(&client, body, &exp.tasks) != 200;
    }
    unexpected += register_worker(&client, "s3-w1", "gardener") != 200;
    unexpected += register_worker(&client, "s3-w2", "archivist") != 200;
    unexpected += register_worker(&client, "s3-w3", "any") != 200;
    CU_ASSERT_FATAL(list_push(&exp.workers, "s3-w1") == 0);
    CU_ASSERT_FATAL(list_push(&exp.workers, "s3-w2") == 0);
    CU_ASSERT_FATAL(list_push(&exp.workers, "s3-w3") == 0);
    unexpected += claim_and_complete(&client, "s3-w1", "gardener", 6, 4, &exp);
    unexpected += claim_and_complete(&client, "s3-w2", "archivist", 5, 3, &exp);
    CU_ASSERT_EQUAL(unexpected, 0);
    CU_ASSERT_EQUAL(exp.tasks.count, 24);
    CU_ASSERT_EQUAL(exp.completed.count, 7);

    CU_ASSERT_EQUAL(wait_flushed(&client, CATCH_UP_S), 0);
    CU_ASSERT_EQUAL(compare_bucket(&client, bucket, &exp), 0);
    CU_ASSERT_EQUAL(gdn_it_stat(&client, "dirty_records"), 0);
    CU_ASSERT(gdn_it_stat(&client, "s3_puts") >= 24 + 7 + 3);

    end_test(&srv, &client, &exp);
}

static void test_s3__one_put_per_record_within_an_interval(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;
    char bucket[BUCKET_SIZE];
    char id[GDN_IT_ID_SIZE];
    char claimed[GDN_IT_ID_SIZE];

    begin_test(&srv, &client, bucket, "flush_interval_ms = 3000\nflush_batch_max = 100000\n");

    /* The first round ends once the bucket is checked; the counters start after it. Then the
     * three changes are made right after a round ended, far from the next one. */
    CU_ASSERT_FATAL(wait_rounds(&client, 1, 15.0) == 0);
    CU_ASSERT_EQUAL(control("POST", "/reset-stats", NULL), 200);
    CU_ASSERT_FATAL(wait_rounds(&client, 1, 10.0) == 0);

    CU_ASSERT_EQUAL(gdn_it_create_task(&client, "{\"task_type\":\"once\",\"role\":\"r2\"}", id),
                    200);
    CU_ASSERT_EQUAL(gdn_it_poll(&client, "s3-once", "r2", claimed), 200);
    CU_ASSERT_STRING_EQUAL(claimed, id);
    CU_ASSERT_EQUAL(gdn_it_complete(&client, id, "{\"ok\":true}", NULL), 200);

    CU_ASSERT_EQUAL(wait_flushed(&client, 15.0), 0);
    long long puts_task = front_counter("by_key", "PUT task");
    long long puts_completed = front_counter("by_key", "PUT completed");
    long long requests = front_counter("requests", NULL);

    printf("  PUT task %lld, PUT completed %lld, requests %lld\n", puts_task, puts_completed,
           requests);
    CU_ASSERT_EQUAL(puts_task, 1);
    CU_ASSERT_EQUAL(puts_completed, 1);
    CU_ASSERT_EQUAL(front_counter("by_key_ok", "PUT task"), 1);
    CU_ASSERT_EQUAL(front_counter("by_key_ok", "PUT completed"), 1);
    CU_ASSERT_EQUAL(requests, 2);

    end_test(&srv, &client, NULL);
}

/* Registers a worker, sends heartbeats every `every_ms` for `count` beats, waits for two more
 * flush rounds, and returns the number of PUTs of worker objects the front saw. */
static long long heartbeat_puts(const char *extra, const char *worker, int count, long every_ms)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;
    char bucket[BUCKET_SIZE];
    int unexpected = 0;

    begin_test(&srv, &client, bucket, extra);
    CU_ASSERT_FATAL(wait_rounds(&client, 1, 15.0) == 0);
    CU_ASSERT_EQUAL(control("POST", "/reset-stats", NULL), 200);

    double start = gdn_it_now_seconds();

    unexpected += register_worker(&client, worker, "beat") != 200;
    for (int i = 1; i <= count; i++) {
        /* Beats follow a fixed schedule from the registration, so that drift cannot add one. */
        long wait_ms =
            (long)((start + (double)(i * every_ms) / 1000.0 - gdn_it_now_seconds()) * 1000.0);

        if (wait_ms > 0)
            gdn_it_sleep_ms(wait_ms);
        unexpected += heartbeat(&client, worker) != 200;
    }
    CU_ASSERT_EQUAL(unexpected, 0);
    CU_ASSERT_EQUAL(wait_flushed(&client, 15.0), 0);
    CU_ASSERT_EQUAL(wait_rounds(&client, 2, 15.0), 0);
    CU_ASSERT_EQUAL(wait_flushed(&client, 15.0), 0);

    long long puts = front_counter("by_key", "PUT worker");

    CU_ASSERT_EQUAL(front_counter("by_method", "PUT"), puts);
    end_test(&srv, &client, NULL);
    return puts;
}

static void test_s3__heartbeats_are_cheap(void)
{
    long long puts =
        heartbeat_puts("flush_interval_ms = 50\nworker_ttl_s = 600\n", "s3-beat", 50, 5);

    printf("  worker_ttl_s 600, 50 heartbeats: %lld PUTs\n", puts);
    CU_ASSERT_EQUAL(puts, 1);

    /* With a 2 s time-to-live the bucket copy is refreshed every second or so: 12 beats over
     * 3 s come to the registration plus about three refreshes. */
    puts = heartbeat_puts("flush_interval_ms = 50\nworker_ttl_s = 2\n", "s3-beat-short", 12, 250);
    printf("  worker_ttl_s 2, 12 heartbeats over 3 s: %lld PUTs\n", puts);
    CU_ASSERT(puts >= 2);
    CU_ASSERT(puts <= 4);
}

/* One thread of the outage load: creates, claims and completes until told to stop. */
struct load_thread {
    pthread_t thread;
    gdn_it_server_t *srv;
    char worker[32];
    atomic_int *stop; /* set by the test thread, read by the load threads */
    struct str_list created;
    struct str_list completed;
    int requests;
    int failures;
    long last_failure;
};

static void count_answer(struct load_thread *t, long status)
{
    t->requests++;
    if (status < 200 || status > 299) {
        t->failures++;
        t->last_failure = status;
    }
}

static void *run_load(void *arg)
{
    struct load_thread *t = arg;
    gdn_it_client_t client;

    if (gdn_it_client_open(&client, t->srv, GDN_IT_HTTP1) != 0) {
        t->failures++;
        return NULL;
    }
    while (!atomic_load(t->stop) && t->created.count < LOAD_CREATES_MAX) {
        char id[GDN_IT_ID_SIZE];
        char body[128];

        snprintf(body, sizeof(body),
                 "{\"task_type\":\"load\",\"role\":\"s3load\",\"priority\":%zu}",
                 t->created.count % 4);
        long status = gdn_it_create_task(&client, body, id);

        count_answer(t, status);
        if (status == 200 && list_push(&t->created, id) != 0)
            break;
        status = gdn_it_poll(&client, t->worker, "s3load", id);
        count_answer(t, status);
        if (status == 200 && id[0] && t->created.count % 2 == 0) {
            status = gdn_it_complete(&client, id, "{\"load\":true}", NULL);
            count_answer(t, status);
            if (status == 200 && list_push(&t->completed, id) != 0)
                break;
        }
        /* A steady pace keeps the run near four seconds without piling up thousands of
         * records for the comparison that follows. */
        gdn_it_sleep_ms(8);
    }
    gdn_it_client_close(&client);
    return NULL;
}

static void test_s3__outage_under_load_then_catch_up(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;
    struct load_thread threads[LOAD_THREADS];
    struct expected exp = {0};
    atomic_int stop = 0;
    char bucket[BUCKET_SIZE];
    long long backlog = -1;
    int requests = 0;
    int failures = 0;

    begin_test(&srv, &client, bucket, "flush_interval_ms = 100\n");
    CU_ASSERT_FATAL(wait_rounds(&client, 1, 15.0) == 0);

    memset(threads, 0, sizeof(threads));
    for (int i = 0; i < LOAD_THREADS; i++) {
        threads[i].srv = &srv;
        threads[i].stop = &stop;
        snprintf(threads[i].worker, sizeof(threads[i].worker), "s3-load-%d", i);
        CU_ASSERT_EQUAL(register_worker(&client, threads[i].worker, "s3load"), 200);
        CU_ASSERT_FATAL(list_push(&exp.workers, threads[i].worker) == 0);
    }
    CU_ASSERT_EQUAL(wait_flushed(&client, CATCH_UP_S), 0);

    start_outage();
    for (int i = 0; i < LOAD_THREADS; i++)
        CU_ASSERT_FATAL(pthread_create(&threads[i].thread, NULL, run_load, &threads[i]) == 0);
    gdn_it_sleep_ms(4000);
    CU_ASSERT_EQUAL(wait_degraded(&client, 5.0, &backlog), 0);
    atomic_store(&stop, 1);
    for (int i = 0; i < LOAD_THREADS; i++) {
        pthread_join(threads[i].thread, NULL);
        requests += threads[i].requests;
        failures += threads[i].failures;
        if (threads[i].failures)
            fprintf(stderr, "  load thread %d: %d of %d requests failed, last answer %ld\n", i,
                    threads[i].failures, threads[i].requests, threads[i].last_failure);
        for (size_t k = 0; k < threads[i].created.count; k++)
            CU_ASSERT_FATAL(list_push(&exp.tasks, threads[i].created.items[k]) == 0);
        for (size_t k = 0; k < threads[i].completed.count; k++)
            CU_ASSERT_FATAL(list_push(&exp.completed, threads[i].completed.items[k]) == 0);
        list_free(&threads[i].created);
        list_free(&threads[i].completed);
    }
    printf("  during the outage: %d requests, %d failed, %zu tasks, %zu completed, backlog "
           "%lld\n",
           requests, failures, exp.tasks.count, exp.completed.count, backlog);
    CU_ASSERT(requests > 0);
    CU_ASSERT_EQUAL(failures, 0);
    CU_ASSERT(backlog > 0);

    end_outage();
    CU_ASSERT_EQUAL(wait_flushed(&client, CATCH_UP_S), 0);
    CU_ASSERT_EQUAL(compare_bucket(&client, bucket, &exp), 0);

    end_test(&srv, &client, &exp);
}

static void test_s3__sigkill_with_backlog_uploads_after_restart(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;
    struct expected exp = {0};
    char bucket[BUCKET_SIZE];
    long long backlog = -1;
    int unexpected = 0;

    begin_test(&srv, &client, bucket, "flush_interval_ms = 100\n");
    CU_ASSERT_FATAL(wait_rounds(&client, 1, 15.0) == 0);

    start_outage();
    for (int i = 0; i < 100; i++) {
        char body[128];

        snprintf(body, sizeof(body), "{\"task_type\":\"crash\",\"priority\":%d}", i % 10);
        unexpected += create_recorded(&client, body, &exp.tasks) != 200;
    }
    CU_ASSERT_EQUAL(unexpected, 0);
    CU_ASSERT_EQUAL(exp.tasks.count, 100);
    CU_ASSERT_EQUAL(wait_degraded(&client, 10.0, &backlog), 0);
    printf("  backlog before SIGKILL: %lld\n", backlog);
    CU_ASSERT_EQUAL(backlog, 100);

    gdn_it_server_kill(&srv);
    end_outage();
    CU_ASSERT_EQUAL(control("POST", "/reset-stats", NULL), 200);
    CU_ASSERT_FATAL(gdn_it_server_start(&srv) == 0);
    CU_ASSERT_EQUAL(wait_flushed(&client, CATCH_UP_S), 0);
    CU_ASSERT_EQUAL(front_counter("by_key_ok", "PUT task"), 100);
    CU_ASSERT_EQUAL(compare_bucket(&client, bucket, &exp), 0);

    end_test(&srv, &client, &exp);
}

/* Everything the restore test compares between the original server and a restored one. */
struct snapshot {
    char *pending; /* GET /tasks: the first 50 pending tasks in claim order */
    size_t pending_len;
    char *workers; /* GET /poll/workers */
    size_t workers_len;
    char **tasks; /* GET /tasks/{id} for every id, in the order of the id list */
    size_t *task_lens;
    size_t count;
    long long stats[6];
};

static const char *const snapshot_stats[] = {
    "pending_tasks", "processing_tasks",   "completed_tasks",
    "failed_tasks",  "registered_workers", "active_workers",
};

static void snapshot_take(gdn_it_client_t *client, const struct str_list *ids, struct snapshot *s)
{
    char path[128];

    memset(s, 0, sizeof(*s));
    CU_ASSERT_EQUAL(fetch_body(client, "/tasks", &s->pending, &s->pending_len), 200);
    CU_ASSERT_EQUAL(fetch_body(client, "/poll/workers", &s->workers, &s->workers_len), 200);
    s->tasks = calloc(ids->count, sizeof(*s->tasks));
    s->task_lens = calloc(ids->count, sizeof(*s->task_lens));
    CU_ASSERT_FATAL(s->tasks != NULL && s->task_lens != NULL);
    s->count = ids->count;

    int failed = 0;

    for (size_t i = 0; i < ids->count; i++) {
        snprintf(path, sizeof(path), "/tasks/%s", ids->items[i]);
        failed += fetch_body(client, path, &s->tasks[i], &s->task_lens[i]) != 200;
    }
    CU_ASSERT_EQUAL(failed, 0);
    for (size_t i = 0; i < sizeof(snapshot_stats) / sizeof(snapshot_stats[0]); i++)
        s->stats[i] = gdn_it_stat(client, snapshot_stats[i]);
}

static void snapshot_free(struct snapshot *s)
{
    free(s->pending);
    free(s->workers);
    for (size_t i = 0; i < s->count; i++)
        free(s->tasks[i]);
    free(s->tasks);
    free(s->task_lens);
    memset(s, 0, sizeof(*s));
}

static int same_bytes(const char *a, size_t a_len, const char *b, size_t b_len)
{
    return a && b && a_len == b_len && memcmp(a, b, a_len) == 0;
}

/* Compares a restored server's snapshot with the original's. Returns the differences. */
static int snapshot_compare(const struct snapshot *want, const struct snapshot *got,
                            const char *what)
{
    int differences = 0;

    if (!same_bytes(want->pending, want->pending_len, got->pending, got->pending_len)) {
        fprintf(stderr, "  %s: GET /tasks differs:\n  %s\n  %s\n", what,
                want->pending ? want->pending : "", got->pending ? got->pending : "");
        differences++;
    }
    if (!same_bytes(want->workers, want->workers_len, got->workers, got->workers_len)) {
        fprintf(stderr, "  %s: GET /poll/workers differs:\n  %s\n  %s\n", what,
                want->workers ? want->workers : "", got->workers ? got->workers : "");
        differences++;
    }
    for (size_t i = 0; i < want->count && i < got->count; i++) {
        if (!same_bytes(want->tasks[i], want->task_lens[i], got->tasks[i], got->task_lens[i])) {
            if (differences++ < SHOWN_MAX)
                fprintf(stderr, "  %s: task differs:\n  %s\n  %s\n", what,
                        want->tasks[i] ? want->tasks[i] : "", got->tasks[i] ? got->tasks[i] : "");
        }
    }
    for (size_t i = 0; i < sizeof(snapshot_stats) / sizeof(snapshot_stats[0]); i++) {
        if (want->stats[i] != got->stats[i]) {
            fprintf(stderr, "  %s: %s is %lld, was %lld\n", what, snapshot_stats[i], got->stats[i],
                    want->stats[i]);
            differences++;
        }
    }
    return differences;
}

/* Runs `garden-orchestrator restore` for `target`'s data directory with `config`. */
static int run_restore(const char *config, const char *data_dir, int force, char *output)
{
    const char *args[] = {
        "restore", "--config", config, "--data-dir", data_dir, force ? "--force" : NULL, NULL};
    int code = -1;

    output[0] = '\0';
    CU_ASSERT_EQUAL(gdn_it_run_program(args, output, OUTPUT_MAX, &code), 0);
    return code;
}

/* Starts a server on an empty data directory with `extra` config lines and snapshots it. */
static void snapshot_fresh(const char *bucket, const char *extra, const struct str_list *ids,
                           struct snapshot *s, char *log, size_t log_size)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;

    start_server(&srv, bucket, extra);
    CU_ASSERT_FATAL(gdn_it_client_open(&client, &srv, GDN_IT_HTTP1) == 0);
    snapshot_take(&client, ids, s);
    gdn_it_client_close(&client);
    stop_server(&srv);

    FILE *f = fopen(srv.log_path, "r");
    size_t n = f ? fread(log, 1, log_size - 1, f) : 0;

    log[n] = '\0';
    if (f)
        fclose(f);
    gdn_it_server_cleanup(&srv);
}

static void test_s3__restore_reproduces_records_and_claim_order(void)
{
    static const char *const roles[] = {"archivist", "gardener", "scout"};
    gdn_it_server_t srv;
    gdn_it_server_t restored;
    gdn_it_client_t client;
    struct expected exp = {0};
    struct snapshot before;
    struct snapshot after;
    char bucket[BUCKET_SIZE];
    char *output = malloc(OUTPUT_MAX);
    int unexpected = 0;

    CU_ASSERT_FATAL(output != NULL);
    begin_test(&srv, &client, bucket, "flush_interval_ms = 100\n");

    for (int i = 0; i < 300; i++) {
        char body[256];

        snprintf(body, sizeof(body),
                 "{\"task_type\":\"restore\",\"role\":\"%s\",\"priority\":%d,"
                 "\"project_id\":\"p%d\",\"input_data\":{\"i\":%d}}",
                 roles[i % 3], (i * 7) % 11 - 2, i % 4, i);
        unexpected += create_recorded(&client, body, &exp.tasks) != 200;
    }
    for (int i = 0; i < 4; i++) {
        char worker[32];

        snprintf(worker, sizeof(worker), "s3-restore-%d", i);
        unexpected += register_worker(&client, worker, roles[i % 3]) != 200;
        CU_ASSERT_FATAL(list_push(&exp.workers, worker) == 0);
    }
    unexpected += claim_and_complete(&client, "s3-restore-0", "archivist", 30, 20, &exp);
    unexpected += claim_and_complete(&client, "s3-restore-1", "gardener,scout", 40, 25, &exp);
    unexpected += claim_and_complete(&client, "s3-restore-2", NULL, 20, 5, &exp);
    CU_ASSERT_EQUAL(unexpected, 0);
    CU_ASSERT_EQUAL(wait_flushed(&client, CATCH_UP_S), 0);
    snapshot_take(&client, &exp.tasks, &before);
    printf("  original: %lld pending, %lld processing, %lld completed, %lld failed, %lld "
           "workers\n",
           before.stats[0], before.stats[1], before.stats[2], before.stats[3], before.stats[4]);
    CU_ASSERT_EQUAL(before.stats[0], 300 - 90);
    CU_ASSERT_EQUAL(before.stats[1], 90 - 50);
    gdn_it_client_close(&client);
    stop_server(&srv);

    /* The restore command on an empty data directory, then twice more on the full one. */
    CU_ASSERT_FATAL(gdn_it_server_init(&restored) == 0);
    CU_ASSERT_FATAL(configure(&restored, bucket, FRONT_SECRET_KEY, NULL) == 0);
    int code = run_restore(restored.config_path, restored.data_dir, 0, output);

    printf("  restore: exit %d: %s", code, output);
    CU_ASSERT_EQUAL(code, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(output, "restored 354 records"));
    code = run_restore(restored.config_path, restored.data_dir, 0, output);
    CU_ASSERT_EQUAL(code, 3);
    code = run_restore(restored.config_path, restored.data_dir, 1, output);
    CU_ASSERT_EQUAL(code, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(output, "restored 354 records"));

    CU_ASSERT_FATAL(gdn_it_server_start(&restored) == 0);
    CU_ASSERT_FATAL(gdn_it_client_open(&client, &restored, GDN_IT_HTTP1) == 0);
    snapshot_take(&client, &exp.tasks, &after);
    CU_ASSERT_EQUAL(snapshot_compare(&before, &after, "restore command"), 0);
    CU_ASSERT_EQUAL(gdn_it_stat(&client, "dirty_records"), 0);
    gdn_it_client_close(&client);
    stop_server(&restored);
    snapshot_free(&after);

    /* A server started on an empty data directory restores by itself... */
    char *log = malloc(OUTPUT_MAX);

    CU_ASSERT_FATAL(log != NULL);
    snapshot_fresh(bucket, NULL, &exp.tasks, &after, log, OUTPUT_MAX);
    CU_ASSERT_EQUAL(snapshot_compare(&before, &after, "restore_on_empty"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "restore_done"));
    snapshot_free(&after);

    /* ...unless told not to. */
    snapshot_fresh(bucket, "restore_on_empty = false\n", &(struct str_list){0}, &after, log,
                   OUTPUT_MAX);
    for (size_t i = 0; i < sizeof(snapshot_stats) / sizeof(snapshot_stats[0]); i++)
        CU_ASSERT_EQUAL(after.stats[i], 0);
    CU_ASSERT_STRING_EQUAL(after.pending ? after.pending : "", "{\"tasks\":[]}");
    CU_ASSERT_PTR_NULL(strstr(log, "restore_done"));
    snapshot_free(&after);

    snapshot_free(&before);
    gdn_it_server_cleanup(&srv);
    gdn_it_server_cleanup(&restored);
    expected_free(&exp);
    free(output);
    free(log);
}

/* Counts the error lines of the server's log that contain `needle`. */
static int count_error_lines(const char *log_path, const char *needle)
{
    FILE *f = fopen(log_path, "r");
    char line[4096];
    int count = 0;

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strstr(line, "level=error") && strstr(line, needle))
            count++;
    }
    fclose(f);
    return count;
}

static void test_s3__wrong_secret_degrades_then_recovers(void)
{
    gdn_it_server_t srv;
    gdn_it_client_t client;
    struct expected exp = {0};
    char bucket[BUCKET_SIZE];
    long long backlog = -1;
    int unexpected = 0;
    const char *extra = "flush_interval_ms = 100\nflush_retry_max_ms = 400\n"
                        "restore_on_empty = false\n";

    reset_service();
    next_bucket(bucket, sizeof(bucket));
    CU_ASSERT_FATAL(gdn_it_server_init(&srv) == 0);
    CU_ASSERT_FATAL(configure(&srv, bucket, "not-the-secret", extra) == 0);
    CU_ASSERT_FATAL(gdn_it_server_start(&srv) == 0);
    CU_ASSERT_FATAL(gdn_it_client_open(&client, &srv, GDN_IT_HTTP1) == 0);

    for (int i = 0; i < 50; i++)
        unexpected += create_recorded(&client, "{\"task_type\":\"secret\"}", &exp.tasks) != 200;
    CU_ASSERT_EQUAL(unexpected, 0);
    CU_ASSERT_EQUAL(wait_degraded(&client, 10.0, &backlog), 0);
    CU_ASSERT_EQUAL(backlog, 50);

    /* Let several retries fail, so that a line per attempt or per record would show. */
    double deadline = gdn_it_now_seconds() + 10.0;

    while (front_counter("rejected", "SignatureDoesNotMatch") < 6 &&
           gdn_it_now_seconds() < deadline)
        gdn_it_sleep_ms(100);
    long long rejected = front_counter("rejected", "SignatureDoesNotMatch");

    CU_ASSERT(rejected >= 6);
    CU_ASSERT(front_counter("by_status", "403") >= rejected);
    CU_ASSERT_EQUAL(front_counter("by_key", "PUT task"), 0);
    CU_ASSERT(read_health(&client, &backlog, (char[32]){0}, 32) == 0 && backlog == 50);
    gdn_it_client_close(&client);
    stop_server(&srv);

    int lines = count_error_lines(srv.log_path, "SignatureDoesNotMatch");

    printf("  %lld requests refused with SignatureDoesNotMatch, %d error lines name it\n", rejected,
           lines);
    CU_ASSERT(lines >= 1);
    CU_ASSERT(lines <= 3);

    /* With the right secret, the same journal goes out in full. */
    CU_ASSERT_FATAL(configure(&srv, bucket, FRONT_SECRET_KEY, extra) == 0);
    CU_ASSERT_FATAL(gdn_it_server_start(&srv) == 0);
    CU_ASSERT_FATAL(gdn_it_client_open(&client, &srv, GDN_IT_HTTP1) == 0);
    CU_ASSERT_EQUAL(wait_flushed(&client, CATCH_UP_S), 0);
    CU_ASSERT_EQUAL(compare_bucket(&client, bucket, &exp), 0);
    end_test(&srv, &client, &exp);
}

/* Knocks on a port while a server that should not serve is running. */
struct knocker {
    gdn_it_server_t target; /* only its port is used */
    atomic_int stop;
    int answers;
};

static void *run_knocker(void *arg)
{
    struct knocker *k = arg;
    gdn_it_client_t client;

    if (gdn_it_client_open(&client, &k->target, GDN_IT_HTTP1) != 0)
        return NULL;
    while (!atomic_load(&k->stop)) {
        gdn_it_response_t res;

        gdn_it_call(&client, "GET", "/health", NULL, &res);
        k->answers += res.status != 0;
        gdn_it_response_free(&res);
        gdn_it_sleep_ms(50);
    }
    gdn_it_client_close(&client);
    return NULL;
}

static void test_s3__empty_journal_and_unreachable_bucket_refuse_to_start(void)
{
    gdn_it_server_t srv;
    struct knocker knocker;
    char bucket[BUCKET_SIZE];
    char listen[64];
    char *output = malloc(OUTPUT_MAX);
    int code = -1;

    CU_ASSERT_FATAL(output != NULL);
    reset_service();
    next_bucket(bucket, sizeof(bucket));
    CU_ASSERT_FATAL(gdn_it_server_init(&srv) == 0);
    CU_ASSERT_FATAL(configure(&srv, bucket, FRONT_SECRET_KEY, "restore_wait_s = 2\n") == 0);

    memset(&knocker, 0, sizeof(knocker));
    knocker.target.port = gdn_it_free_port();
    CU_ASSERT_FATAL(knocker.target.port > 0);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", knocker.target.port);

    const char *args[] = {"--listen", listen,          "--data-dir", srv.data_dir,
                          "--config", srv.config_path, NULL};
    pthread_t thread;

    start_outage();
    CU_ASSERT_FATAL(pthread_create(&thread, NULL, run_knocker, &knocker) == 0);
    double start = gdn_it_now_seconds();

    CU_ASSERT_EQUAL(gdn_it_run_program(args, output, OUTPUT_MAX, &code), 0);
    double seconds = gdn_it_now_seconds() - start;

    atomic_store(&knocker.stop, 1);
    pthread_join(thread, NULL);
    end_outage();

    printf("  exit %d after %.1f s, %d answers on its port\n", code, seconds, knocker.answers);
    CU_ASSERT_EQUAL(code, 4);
    CU_ASSERT_EQUAL(knocker.answers, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(output, "level=error"));
    CU_ASSERT_PTR_NOT_NULL(strstr(output, "bucket_unreachable"));
    if (code != 4 || !strstr(output, "bucket_unreachable"))
        fprintf(stderr, "---- server output ----\n%s\n---- end ----\n", output);
    gdn_it_server_cleanup(&srv);
    free(output);
}

static CU_TestInfo s3_tests[] = {
    {"After a flush the bucket holds exactly the journal's records, byte for byte",
     test_s3__bucket_equals_journal_after_flush},
    {"A task created, claimed and completed within one interval costs one PUT per record",
     test_s3__one_put_per_record_within_an_interval},
    {"Heartbeats upload the worker only when half its time-to-live has passed",
     test_s3__heartbeats_are_cheap},
    {"Requests keep succeeding through an S3 outage and the bucket catches up after it",
     test_s3__outage_under_load_then_catch_up},
    {"A backlog left by SIGKILL is uploaded after a restart with no request",
     test_s3__sigkill_with_backlog_uploads_after_restart},
    {"Restore into an empty data directory reproduces every record and the claim order",
     test_s3__restore_reproduces_records_and_claim_order},
    {"A wrong secret degrades the bucket copy with one error line, and the right one recovers",
     test_s3__wrong_secret_degrades_then_recovers},
    {"An empty journal beside an unreachable bucket exits 4 without serving",
     test_s3__empty_journal_and_unreachable_bucket_refuse_to_start},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo gdn_test_suites[] = {
    {.pName = "Bucket copy on S3",
     .pInitFunc = init_suite,
     .pCleanupFunc = cleanup_suite,
     .pTests = s3_tests},
    CU_SUITE_INFO_NULL,
};
