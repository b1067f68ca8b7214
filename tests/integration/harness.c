/*
 * Process control and HTTP plumbing for the integration tests; see harness.h.
 */
#include <CUnit/CUnit.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* How long a fresh server may take to answer /health before the start counts as failed. */
#define START_DEADLINE_S 15.0

/* Starts retried when another process took the port between our probe and the server's bind. */
#define START_ATTEMPTS 5

/* Variables of the deployed service that would override our command line or config file. */
static const char *const inherited_env[] = {
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

double gdn_it_now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void gdn_it_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int gdn_it_global_init(void)
{
    signal(SIGPIPE, SIG_IGN);
    return curl_global_init(CURL_GLOBAL_ALL) == CURLE_OK ? 0 : -1;
}

static const char *server_binary(void)
{
    const char *bin = getenv("GDN_SERVER_BIN");

    if (!bin || !*bin) {
        fprintf(stderr, "GDN_SERVER_BIN is not set: run the tests through ctest\n");
        return NULL;
    }
    return bin;
}

int gdn_it_server_init(gdn_it_server_t *srv)
{
    const char *base = getenv("TMPDIR");

    memset(srv, 0, sizeof(*srv));
    srv->failures_at_init = CU_get_number_of_failures();
    snprintf(srv->dir, sizeof(srv->dir), "%s/gdn-it-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(srv->dir))
        return -errno;
    snprintf(srv->data_dir, sizeof(srv->data_dir), "%s/data", srv->dir);
    snprintf(srv->log_path, sizeof(srv->log_path), "%s/server.log", srv->dir);
    if (mkdir(srv->data_dir, 0700) != 0)
        return -errno;
    return 0;
}

int gdn_it_server_configf(gdn_it_server_t *srv, const char *fmt, ...)
{
    snprintf(srv->config_path, sizeof(srv->config_path), "%s/server.conf", srv->dir);
    FILE *f = fopen(srv->config_path, "w");
    if (!f)
        return -errno;

    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    return fclose(f) == 0 ? 0 : -errno;
}

void gdn_it_server_add_arg(gdn_it_server_t *srv, const char *arg)
{
    if (srv->extra_count < GDN_IT_MAX_ARGS)
        srv->extra_args[srv->extra_count++] = arg;
}

/*
 * Asks the kernel for a free port by binding port 0, then releases it for the server. Another
 * process may take it in between; gdn_it_server_start retries when that happens.
 */
int gdn_it_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -errno;

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    int port = -EADDRNOTAVAIL;
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port);
    close(fd);
    return port;
}

/* Most environment entries passed on to the server; the rest are dropped. */
#define CHILD_ENV_MAX 512

extern char **environ;

/* Copies the environment minus the deployment variables, so that the child needs no changes. */
static void build_child_env(const char **envp)
{
    size_t n = 0;

    for (char **e = environ; *e && n < CHILD_ENV_MAX; e++) {
        int inherited = 0;
        for (size_t i = 0; i < sizeof(inherited_env) / sizeof(inherited_env[0]); i++) {
            size_t len = strlen(inherited_env[i]);
            inherited |= strncmp(*e, inherited_env[i], len) == 0 && (*e)[len] == '=';
        }
        if (!inherited)
            envp[n++] = *e;
    }
    envp[n] = NULL;
}

/* Runs in the child between fork and exec: only async-signal-safe calls and exec. */
static void exec_child(const char *const *argv, const char *const *envp, const char *output_path,
                       int append)
{
    int flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
    int out = open(output_path, flags, 0600);
    int in = open("/dev/null", O_RDONLY);

    if (out < 0 || in < 0)
        _exit(126);
    dup2(in, 0);
    dup2(out, 1);
    dup2(out, 2);
    execve(argv[0], (char *const *)argv, (char *const *)envp);
    _exit(127);
}

static int spawn_server(gdn_it_server_t *srv, const char *bin)
{
    char listen[64];
    const char *argv[16 + GDN_IT_MAX_ARGS];
    int argc = 0;

    snprintf(listen, sizeof(listen), "127.0.0.1:%d", srv->port);
    argv[argc++] = bin;
    argv[argc++] = "--listen";
    argv[argc++] = listen;
    argv[argc++] = "--data-dir";
    argv[argc++] = srv->data_dir;
    if (srv->config_path[0]) {
        argv[argc++] = "--config";
        argv[argc++] = srv->config_path;
    }
    for (int i = 0; i < srv->extra_count; i++)
        argv[argc++] = srv->extra_args[i];
    argv[argc] = NULL;

    const char *envp[CHILD_ENV_MAX + 1];
    build_child_env(envp);

    FILE *log = fopen(srv->log_path, "a");
    if (log) {
        fprintf(log, "# start on port %d\n", srv->port);
        srv->log_offset = ftell(log);
        fclose(log);
    }

    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0)
        exec_child(argv, envp, srv->log_path, 1);
    srv->pid = pid;
    return 0;
}

/* Tells whether the log of the last, failed start says the listening address was taken. */
static int log_mentions_bind_failure(const gdn_it_server_t *srv)
{
    FILE *f = fopen(srv->log_path, "r");
    if (!f)
        return 0;
    fseek(f, srv->log_offset, SEEK_SET);

    char line[1024];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f)) {
        for (char *p = line; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        found = strstr(line, "address already in use") || strstr(line, "eaddrinuse") ||
                strstr(line, "bind");
    }
    fclose(f);
    return found;
}

/* Polls /health until it answers 200, the process dies, or the deadline passes. */
static int wait_until_ready(gdn_it_server_t *srv)
{
    gdn_it_client_t client;
    if (gdn_it_client_open(&client, srv, GDN_IT_HTTP1) != 0)
        return -ENOMEM;

    double deadline = gdn_it_now_seconds() + START_DEADLINE_S;
    int rc = -ETIMEDOUT;
    while (gdn_it_now_seconds() < deadline) {
        int status;
        if (waitpid(srv->pid, &status, WNOHANG) == srv->pid) {
            srv->pid = 0;
            rc = -ECHILD;
            break;
        }

        gdn_it_response_t res;
        gdn_it_call(&client, "GET", "/health", NULL, &res);
        long http = res.status;
        gdn_it_response_free(&res);
        if (http == 200) {
            rc = 0;
            break;
        }
        gdn_it_sleep_ms(20);
    }
    gdn_it_client_close(&client);
    return rc;
}

int gdn_it_server_start(gdn_it_server_t *srv)
{
    const char *bin = server_binary();
    if (!bin)
        return -ENOENT;

    int rc = -EADDRINUSE;
    for (int attempt = 0; attempt < START_ATTEMPTS && rc == -EADDRINUSE; attempt++) {
        srv->port = gdn_it_free_port();
        if (srv->port < 0)
            return srv->port;
        rc = spawn_server(srv, bin);
        if (rc != 0)
            return rc;
        rc = wait_until_ready(srv);
        if (rc == -ECHILD && log_mentions_bind_failure(srv))
            rc = -EADDRINUSE;
    }
    if (rc != 0) {
        fprintf(stderr, "server did not become ready (%s)\n", strerror(-rc));
        gdn_it_server_kill(srv);
        gdn_it_server_dump_log(srv);
    }
    return rc;
}

static void describe_exit(int status, gdn_it_exit_t *out)
{
    out->exited = WIFEXITED(status);
    out->code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    out->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

int gdn_it_server_stop(gdn_it_server_t *srv, int sig, double limit_s, gdn_it_exit_t *out)
{
    memset(out, 0, sizeof(*out));
    if (srv->pid <= 0)
        return -ECHILD;

    double start = gdn_it_now_seconds();
    kill(srv->pid, sig);
    int status = 0;
    int rc = -ETIMEDOUT;
    while (gdn_it_now_seconds() - start < limit_s) {
        if (waitpid(srv->pid, &status, WNOHANG) == srv->pid) {
            rc = 0;
            break;
        }
        gdn_it_sleep_ms(5);
    }
    out->seconds = gdn_it_now_seconds() - start;
    if (rc != 0) {
        kill(srv->pid, SIGKILL);
        waitpid(srv->pid, &status, 0);
    }
    describe_exit(status, out);
    srv->pid = 0;
    return rc;
}

void gdn_it_server_kill(gdn_it_server_t *srv)
{
    if (srv->pid <= 0)
        return;
    kill(srv->pid, SIGKILL);
    waitpid(srv->pid, NULL, 0);
    srv->pid = 0;
}

static int on_remove(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void gdn_it_server_cleanup(gdn_it_server_t *srv)
{
    gdn_it_server_kill(srv);
    if (CU_get_number_of_failures() > srv->failures_at_init)
        gdn_it_server_dump_log(srv);
    if (srv->dir[0])
        nftw(srv->dir, on_remove, 16, FTW_DEPTH | FTW_PHYS);
    srv->dir[0] = '\0';
}

static void copy_file_to(const char *path, FILE *to)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;

    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, to);
    fclose(f);
}

void gdn_it_server_dump_log(const gdn_it_server_t *srv)
{
    fprintf(stderr, "---- server log %s ----\n", srv->log_path);
    copy_file_to(srv->log_path, stderr);
    fprintf(stderr, "---- end of server log ----\n");
}

/* Runs `argv` to completion with its output in `output_path`; kills it after `limit_s`. */
static int run_to_completion(const char *const *argv, const char *output_path, double limit_s,
                             int *exit_code)
{
    const char *envp[CHILD_ENV_MAX + 1];
    build_child_env(envp);

    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0)
        exec_child(argv, envp, output_path, 0);

    double deadline = gdn_it_now_seconds() + limit_s;
    int status = 0;
    *exit_code = -1;
    while (waitpid(pid, &status, WNOHANG) != pid) {
        if (gdn_it_now_seconds() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return 0;
        }
        gdn_it_sleep_ms(10);
    }
    if (WIFEXITED(status))
        *exit_code = WEXITSTATUS(status);
    return 0;
}

static int read_small_file(const char *path, char *out, size_t out_size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;

    size_t n = fread(out, 1, out_size - 1, f);
    out[n] = '\0';
    fclose(f);
    return 0;
}

int gdn_it_run_argv(const char *const *argv, char *out, size_t out_size, int *exit_code)
{
    char path[] = "/tmp/gdn-it-output-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -errno;
    close(fd);

    int rc = run_to_completion(argv, path, 20.0, exit_code);
    if (rc == 0)
        rc = read_small_file(path, out, out_size);
    unlink(path);
    return rc;
}

int gdn_it_run_program(const char *const *args, char *out, size_t out_size, int *exit_code)
{
    const char *bin = server_binary();
    if (!bin)
        return -ENOENT;

    const char *argv[32];
    int argc = 0;
    argv[argc++] = bin;
    for (size_t i = 0; args[i] && argc < 31; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    return gdn_it_run_argv(argv, out, out_size, exit_code);
}

int gdn_it_server_make_cert(gdn_it_server_t *srv)
{
    snprintf(srv->cert_path, sizeof(srv->cert_path), "%s/cert.pem", srv->dir);
    snprintf(srv->key_path, sizeof(srv->key_path), "%s/key.pem", srv->dir);

    char output_path[GDN_IT_PATH_MAX + 16];
    snprintf(output_path, sizeof(output_path), "%s/openssl.out", srv->dir);
    const char *argv[] = {"/usr/bin/openssl",
                          "req",
                          "-x509",
                          "-newkey",
                          "ec",
                          "-pkeyopt",
                          "ec_paramgen_curve:prime256v1",
                          "-nodes",
                          "-days",
                          "2",
                          "-subj",
                          "/CN=127.0.0.1",
                          "-addext",
                          "subjectAltName=IP:127.0.0.1",
                          "-keyout",
                          srv->key_path,
                          "-out",
                          srv->cert_path,
                          NULL};
    int code;
    int rc = run_to_completion(argv, output_path, 30.0, &code);
    if (rc != 0)
        return rc;
    if (code != 0) {
        copy_file_to(output_path, stderr);
        return -EIO;
    }
    srv->tls = 1;
    return 0;
}

int gdn_it_client_open(gdn_it_client_t *client, const gdn_it_server_t *srv, gdn_it_proto_t proto)
{
    client->server = srv;
    client->proto = proto;
    client->curl = curl_easy_init();
    return client->curl ? 0 : -ENOMEM;
}

void gdn_it_client_close(gdn_it_client_t *client)
{
    if (client->curl)
        curl_easy_cleanup(client->curl);
    client->curl = NULL;
}

/* Grows `*buf` to hold `len` more bytes plus a NUL, and appends them. */
static int append_bytes(char **buf, size_t *used, const char *data, size_t len)
{
    char *grown = realloc(*buf, *used + len + 1);
    if (!grown)
        return -ENOMEM;
    memcpy(grown + *used, data, len);
    *used += len;
    grown[*used] = '\0';
    *buf = grown;
    return 0;
}

static size_t on_body(char *data, size_t size, size_t count, void *user)
{
    gdn_it_response_t *res = user;

    return append_bytes(&res->body, &res->body_len, data, size * count) == 0 ? size * count : 0;
}

/* Keeps only the last header block: an h2c upgrade or a 100 Continue comes before the answer. */
static size_t on_header(char *data, size_t size, size_t count, void *user)
{
    gdn_it_response_t *res = user;
    size_t len = size * count;

    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0)
        res->headers_len = 0;
    return append_bytes(&res->headers, &res->headers_len, data, len) == 0 ? len : 0;
}

static long curl_version_for(const gdn_it_client_t *client)
{
    switch (client->proto) {
    case GDN_IT_HTTP2:
        return client->server->tls ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
    case GDN_IT_H2C:
        return CURL_HTTP_VERSION_2_0;
    case GDN_IT_HTTP1:
    default:
        return CURL_HTTP_VERSION_1_1;
    }
}

static int version_number(long curl_version)
{
    switch (curl_version) {
    case CURL_HTTP_VERSION_1_0:
        return 10;
    case CURL_HTTP_VERSION_1_1:
        return 11;
    case CURL_HTTP_VERSION_2_0:
        return 20;
    default:
        return 0;
    }
}

static struct curl_slist *build_headers(const char *body, const char *const *headers)
{
    struct curl_slist *list = NULL;
    int has_type = 0;

    for (size_t i = 0; headers && headers[i]; i++) {
        list = curl_slist_append(list, headers[i]);
        has_type |= strncasecmp(headers[i], "Content-Type:", 13) == 0;
    }
    if (body && !has_type)
        list = curl_slist_append(list, "Content-Type: application/json");
    return list;
}

/* POST carries the body natively; any other method with a body, or none, is sent as written. */
static void set_method(CURL *curl, const char *method, const char *body, size_t body_len)
{
    int is_post = strcmp(method, "POST") == 0;

    if (body || is_post) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ? body : "");
    }
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    else if (!is_post && (body || strcmp(method, "GET") != 0))
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
}

int gdn_it_call_raw(gdn_it_client_t *client, const char *method, const char *path, const char *body,
                    size_t body_len, const char *const *headers, gdn_it_response_t *res)
{
    CURL *curl = client->curl;
    const gdn_it_server_t *srv = client->server;
    char url[GDN_IT_PATH_MAX + 64];

    memset(res, 0, sizeof(*res));
    snprintf(url, sizeof(url), "%s://127.0.0.1:%d%s", srv->tls ? "https" : "http", srv->port, path);
    struct curl_slist *list = build_headers(body, headers);

    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, curl_version_for(client));
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, res);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, res);
    if (srv->tls)
        curl_easy_setopt(curl, CURLOPT_CAINFO, srv->cert_path);
    /* libcurl 7.88 fails the second request on a reused prior-knowledge HTTP/2 connection
     * ("Error in the HTTP2 framing layer", fixed in 8.0): such clients open a connection per
     * request, and the earlier ones stay open, idle, in curl's cache. Connections upgraded from
     * HTTP/1.1 or negotiated by ALPN are reused as usual. */
    if (client->proto == GDN_IT_HTTP2 && !srv->tls)
        curl_easy_setopt(curl, CURLOPT_FRESH_CONNECT, 1L);
    set_method(curl, method, body, body_len);

    res->code = curl_easy_perform(curl);
    curl_slist_free_all(list);

    long http_version = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res->status);
    curl_easy_getinfo(curl, CURLINFO_HTTP_VERSION, &http_version);
    res->version = version_number(http_version);
    /* A server may answer early (a 413, say) and close while the body is still being sent:
     * keep what arrived even when curl reports the broken send. */
    if (res->body_len > 0)
        res->json = yajl_tree_parse(res->body, NULL, 0);
    return res->code == CURLE_OK ? 0 : -1;
}

int gdn_it_call(gdn_it_client_t *client, const char *method, const char *path, const char *body,
                gdn_it_response_t *res)
{
    return gdn_it_call_raw(client, method, path, body, body ? strlen(body) : 0, NULL, res);
}

void gdn_it_response_free(gdn_it_response_t *res)
{
    free(res->body);
    free(res->headers);
    if (res->json)
        yajl_tree_free(res->json);
    memset(res, 0, sizeof(*res));
}

/*
 * Calls `visit` with the trimmed value of every header line named `name`. Stops early when
 * `visit` returns non-zero and returns that value.
 */
static int each_header(const gdn_it_response_t *res, const char *name,
                       int (*visit)(const char *value, size_t len, void *arg), void *arg)
{
    size_t name_len = strlen(name);
    const char *p = res->headers;
    const char *end = p ? p + res->headers_len : NULL;

    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        if ((size_t)(line_end - p) > name_len && strncasecmp(p, name, name_len) == 0 &&
            p[name_len] == ':') {
            const char *v = p + name_len + 1;
            const char *v_end = line_end;
            while (v < v_end && isspace((unsigned char)*v))
                v++;
            while (v_end > v && isspace((unsigned char)v_end[-1]))
                v_end--;
            int rc = visit(v, (size_t)(v_end - v), arg);
            if (rc)
                return rc;
        }
        p = eol ? eol + 1 : end;
    }
    return 0;
}

struct copy_target {
    char *out;
    size_t size;
};

static int on_copy_value(const char *value, size_t len, void *arg)
{
    struct copy_target *t = arg;
    size_t n = len < t->size - 1 ? len : t->size - 1;

    memcpy(t->out, value, n);
    t->out[n] = '\0';
    return 1;
}

char *gdn_it_header(const gdn_it_response_t *res, const char *name, char *out, size_t size)
{
    struct copy_target t = {.out = out, .size = size};

    return each_header(res, name, on_copy_value, &t) ? out : NULL;
}

static int on_find_token(const char *value, size_t len, void *arg)
{
    const char *token = arg;
    size_t token_len = strlen(token);
    const char *p = value;
    const char *end = value + len;

    while (p < end) {
        while (p < end && (*p == ',' || isspace((unsigned char)*p)))
            p++;
        const char *q = p;
        while (q < end && *q != ',')
            q++;
        const char *item_end = q;
        while (item_end > p && isspace((unsigned char)item_end[-1]))
            item_end--;
        if ((size_t)(item_end - p) == token_len && strncasecmp(p, token, token_len) == 0)
            return 1;
        p = q;
    }
    return 0;
}

int gdn_it_header_has_token(const gdn_it_response_t *res, const char *name, const char *token)
{
    return each_header(res, name, on_find_token, (void *)token);
}

/* Follows the NULL-terminated keys in `ap`; at most 15 levels, which the tests never exceed. */
static yajl_val json_follow(yajl_val root, va_list ap)
{
    const char *path[16];
    size_t n = 0;

    for (const char *key = va_arg(ap, const char *); key && n < 15; key = va_arg(ap, const char *))
        path[n++] = key;
    path[n] = NULL;
    if (!root)
        return NULL;
    return n == 0 ? root : yajl_tree_get(root, path, yajl_t_any);
}

yajl_val gdn_it_json_get(yajl_val root, ...)
{
    va_list ap;

    va_start(ap, root);
    yajl_val v = json_follow(root, ap);
    va_end(ap);
    return v;
}

const char *gdn_it_json_string(yajl_val root, ...)
{
    va_list ap;

    va_start(ap, root);
    yajl_val v = json_follow(root, ap);
    va_end(ap);
    return YAJL_IS_STRING(v) ? v->u.string : NULL;
}

int gdn_it_json_integer(yajl_val root, long long *out, ...)
{
    va_list ap;

    va_start(ap, out);
    yajl_val v = json_follow(root, ap);
    va_end(ap);
    if (!YAJL_IS_INTEGER(v))
        return -1;
    *out = YAJL_GET_INTEGER(v);
    return 0;
}

size_t gdn_it_json_length(yajl_val array)
{
    return YAJL_IS_ARRAY(array) ? array->u.array.len : 0;
}

yajl_val gdn_it_json_at(yajl_val array, size_t i)
{
    return i < gdn_it_json_length(array) ? array->u.array.values[i] : NULL;
}

static void copy_id(const char *from, char *id)
{
    snprintf(id, GDN_IT_ID_SIZE, "%s", from ? from : "");
}

long gdn_it_create_task(gdn_it_client_t *client, const char *body, char *id)
{
    gdn_it_response_t res;

    gdn_it_call(client, "POST", "/tasks", body, &res);
    copy_id(gdn_it_json_string(res.json, "task_id", NULL), id);
    long status = res.status;
    gdn_it_response_free(&res);
    return status;
}

long gdn_it_poll(gdn_it_client_t *client, const char *worker, const char *roles, char *id)
{
    char path[512];
    gdn_it_response_t res;

    if (roles)
        snprintf(path, sizeof(path), "/poll/next?worker_id=%s&roles=%s", worker, roles);
    else
        snprintf(path, sizeof(path), "/poll/next?worker_id=%s", worker);
    gdn_it_call(client, "GET", path, NULL, &res);
    copy_id(gdn_it_json_string(res.json, "task", "id", NULL), id);
    long status = res.status;
    gdn_it_response_free(&res);
    return status;
}

long gdn_it_complete(gdn_it_client_t *client, const char *id, const char *result,
                     const char *status)
{
    char body[4096];
    gdn_it_response_t res;

    if (status)
        snprintf(body, sizeof(body), "{\"task_id\":\"%s\",\"result\":%s,\"status\":\"%s\"}", id,
                 result, status);
    else
        snprintf(body, sizeof(body), "{\"task_id\":\"%s\",\"result\":%s}", id, result);
    gdn_it_call(client, "POST", "/poll/complete", body, &res);
    long http = res.status;
    gdn_it_response_free(&res);
    return http;
}

long long gdn_it_stat(gdn_it_client_t *client, const char *name)
{
    gdn_it_response_t res;
    long long value = -1;

    gdn_it_call(client, "GET", "/stats", NULL, &res);
    if (res.status != 200 || gdn_it_json_integer(res.json, &value, name, NULL) != 0)
        value = -1;
    gdn_it_response_free(&res);
    return value;
}

/* ---- the test S3 service of tests/s3, and the bucket against the journal ---- */

/* s3rver's built-in credentials, for reading the bucket around the front. */
#define S3RVER_KEY "S3RVER"

/* SHA-256 of the empty string: the payload hash of a GET. */
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Mismatches printed in detail before the rest are only counted. */
#define SHOWN_MAX 5

int gdn_it_strs_push(gdn_it_strs_t *list, const char *text)
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

void gdn_it_strs_free(gdn_it_strs_t *list)
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

void gdn_it_strs_sort(gdn_it_strs_t *list)
{
    if (list->count > 1)
        qsort(list->items, list->count, sizeof(*list->items), compare_strings);
}

/* Looks `text` up in a list sorted by list_sort. */
int gdn_it_strs_has(const gdn_it_strs_t *list, const char *text)
{
    if (list->count == 0)
        return 0;
    return bsearch(&text, list->items, list->count, sizeof(*list->items), compare_strings) != NULL;
}

void gdn_it_records_free(gdn_it_records_t *exp)
{
    gdn_it_strs_free(&exp->tasks);
    gdn_it_strs_free(&exp->completed);
    gdn_it_strs_free(&exp->workers);
}

/*
 * Runs `bash script arg` with its output in `out_path`, waiting up to `limit_s`.
 * @return its exit code, or -1 if it did not exit by itself in time.
 */
static int run_script(const char *script, const char *arg, const char *out_path, double limit_s)
{
    const char *argv[] = {"/bin/bash", script, arg, NULL};
    int code = -1;

    if (run_to_completion(argv, out_path, limit_s, &code) != 0)
        return -1;
    return code;
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

int gdn_it_s3_start(gdn_it_s3_t *s3)
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
    snprintf(s3->scripts, sizeof(s3->scripts), "%s", dir);
    snprintf(s3->state, sizeof(s3->state), "%s/gdn-s3-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(s3->state))
        return -1;

    /* The service must accept exactly the key pair the servers are given below, whatever the
     * environment of the test run says, and pick free ports. */
    setenv("S3_ACCESS_KEY", GDN_IT_S3_ACCESS_KEY, 1);
    setenv("S3_SECRET_KEY", GDN_IT_S3_SECRET_KEY, 1);
    setenv("S3_REGION", GDN_IT_S3_REGION, 1);
    unsetenv("S3_FRONT_PORT");
    unsetenv("S3_FRONT_CONTROL_PORT");
    unsetenv("S3_FRONT_ARGS");

    snprintf(script, sizeof(script), "%s/start.sh", s3->scripts);
    snprintf(output, sizeof(output), "%s/start.out", s3->state);
    int code = run_script(script, s3->state, output, 120.0);

    s3->running = 1;
    snprintf(env_path, sizeof(env_path), "%s/env", s3->state);
    s3->s3_port = read_env_port(env_path, "S3_PORT");
    s3->control_port = read_env_port(env_path, "S3_CONTROL_PORT");
    s3->s3rver_port = read_env_port(env_path, "S3RVER_PORT");
    if (code != 0 || s3->s3_port < 0 || s3->control_port < 0 || s3->s3rver_port < 0) {
        fprintf(stderr, "the test S3 service did not start (exit %d):\n", code);
        copy_file_to(output, stderr);
        gdn_it_s3_stop(s3);
        return -1;
    }
    memset(&s3->control, 0, sizeof(s3->control));
    s3->control.port = s3->control_port;
    return 0;
}

void gdn_it_s3_stop(gdn_it_s3_t *s3)
{
    char script[GDN_IT_PATH_MAX + 16];
    char output[GDN_IT_DIR_MAX + 32];

    if (s3->running) {
        snprintf(script, sizeof(script), "%s/stop.sh", s3->scripts);
        snprintf(output, sizeof(output), "%s/stop.out", s3->state);
        run_script(script, s3->state, output, 60.0);
        s3->running = 0;
    }
    if (s3->state[0])
        nftw(s3->state, on_remove, 16, FTW_DEPTH | FTW_PHYS);
    s3->state[0] = '\0';
}

/* One request to the front's control API. */
long gdn_it_s3_control_call(const gdn_it_s3_t *s3, const char *method, const char *path,
                            const char *body, gdn_it_response_t *res)
{
    gdn_it_client_t client;

    memset(res, 0, sizeof(*res));
    if (gdn_it_client_open(&client, &s3->control, GDN_IT_HTTP1) != 0)
        return 0;
    gdn_it_call(&client, method, path, body, res);
    gdn_it_client_close(&client);
    return res->status;
}

/* Sends a control request whose answer only matters through its status. */
long gdn_it_s3_control(const gdn_it_s3_t *s3, const char *method, const char *path,
                       const char *body)
{
    gdn_it_response_t res;
    long status = gdn_it_s3_control_call(s3, method, path, body, &res);

    if (status != 200)
        fprintf(stderr, "control %s %s answered %ld: %s\n", method, path, status,
                res.body ? res.body : "");
    gdn_it_response_free(&res);
    return status;
}

/* Reads an integer counter of the front's /stats, following `group` then `name` (name may be
 * NULL). A counter the front has not created yet is 0; -1 means /stats could not be read. */
long long gdn_it_s3_counter(const gdn_it_s3_t *s3, const char *group, const char *name)
{
    gdn_it_response_t res;
    long long value = 0;

    if (gdn_it_s3_control_call(s3, "GET", "/stats", NULL, &res) != 200 || !res.json) {
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
static long bucket_get(const gdn_it_s3_t *s3, CURL *curl, const char *bucket, const char *key,
                       const char *query, gdn_it_response_t *res)
{
    char url[2048];

    memset(res, 0, sizeof(*res));
    if (key) {
        char *escaped = curl_easy_escape(curl, key, 0);

        if (!escaped)
            return 0;
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/%s/%s", s3->s3rver_port, bucket, escaped);
        curl_free(escaped);
    } else {
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/%s?%s", s3->s3rver_port, bucket,
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
        curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, "aws:amz:" GDN_IT_S3_REGION ":s3");
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
static int bucket_list(const gdn_it_s3_t *s3, CURL *curl, const char *bucket, gdn_it_strs_t *keys)
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
        if (bucket_get(s3, curl, bucket, NULL, query, &res) != 200 || !res.body) {
            fprintf(stderr, "listing bucket %s answered %ld: %s\n", bucket, res.status,
                    res.body ? res.body : curl_easy_strerror(res.code));
            rc = -1;
        }

        const char *at = res.body;
        char *key;

        while (rc == 0 && (key = xml_element(at, "Key", &at)) != NULL) {
            rc = gdn_it_strs_push(keys, key);
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

/*
 * Writes a config pointing the server at the front, with `bucket`, `secret` and `extra` lines.
 * Retries are kept short so that recovery stays quick after an outage.
 */
int gdn_it_s3_configure(gdn_it_server_t *srv, const gdn_it_s3_t *s3, const char *bucket,
                        const char *secret, const char *extra)
{
    return gdn_it_server_configf(srv,
                                 "minio_endpoint = 127.0.0.1:%d\n"
                                 "minio_access_key = " GDN_IT_S3_ACCESS_KEY "\n"
                                 "minio_secret_key = %s\n"
                                 "minio_region = " GDN_IT_S3_REGION "\n"
                                 "minio_bucket = %s\n"
                                 "s3_connect_timeout_ms = 1000\n"
                                 "s3_timeout_ms = 5000\n"
                                 "flush_retry_max_ms = 1000\n"
                                 "threads = 2\n"
                                 "%s",
                                 s3->s3_port, secret, bucket, extra ? extra : "");
}

/* Reads /health: the backlog and the bucket state ("ok", "degraded", "disabled"). */
int gdn_it_read_health(gdn_it_client_t *client, long long *backlog, char *state, size_t size)
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
int gdn_it_wait_flushed(gdn_it_client_t *client, double limit_s)
{
    double deadline = gdn_it_now_seconds() + limit_s;
    long long backlog = -1;
    char state[32] = "";

    while (gdn_it_now_seconds() < deadline) {
        if (gdn_it_read_health(client, &backlog, state, sizeof(state)) == 0 && backlog == 0 &&
            strcmp(state, "ok") == 0)
            return 0;
        gdn_it_sleep_ms(50);
    }
    fprintf(stderr, "the server did not catch up in %.0f s: backlog %lld, s3 \"%s\"\n", limit_s,
            backlog, state);
    return -1;
}

/* Waits until /health reports the bucket copy degraded, with records waiting. */
int gdn_it_wait_degraded(gdn_it_client_t *client, double limit_s, long long *backlog)
{
    double deadline = gdn_it_now_seconds() + limit_s;
    char state[32] = "";

    *backlog = -1;
    while (gdn_it_now_seconds() < deadline) {
        if (gdn_it_read_health(client, backlog, state, sizeof(state)) == 0 && *backlog > 0 &&
            strcmp(state, "degraded") == 0)
            return 0;
        gdn_it_sleep_ms(50);
    }
    fprintf(stderr, "the server did not report degraded: backlog %lld, s3 \"%s\"\n", *backlog,
            state);
    return -1;
}

/* GETs `path` and hands its body over to `*body` (malloc'd). Returns the HTTP status. */
long gdn_it_fetch_body(gdn_it_client_t *client, const char *path, char **body, size_t *len)
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

/*
 * Tells whether a bucket object equals the API's view of its record byte for byte, but for an
 * older value of the time `field` (a key with its opening quote, such as "\"last_heartbeat\":\"").
 * Two such fields may lag, as the README's limitations say: a heartbeat refreshes the bucket
 * copy of a worker at most once per half worker_ttl_s, and that of a leased task's
 * lease_expires_at at most once per half lease. The bytes around the two values must be the
 * same, and the bucket's value (an ISO-8601 time, which compares as a string) the earlier.
 */
static int same_but_lagging(const char *object, size_t object_len, const char *api, size_t api_len,
                            const char *field)
{
    if (!api)
        return 0;
    if (object_len == api_len && memcmp(object, api, api_len) == 0)
        return 1;

    size_t field_len = strlen(field);
    const char *in_object = memmem(object, object_len, field, field_len);
    const char *in_api = memmem(api, api_len, field, field_len);
    if (object_len != api_len || !in_object || !in_api || in_object - object != in_api - api)
        return 0;

    size_t head = (size_t)(in_object - object) + field_len;
    const char *object_end = memchr(object + head, '"', object_len - head);
    const char *api_end = memchr(api + head, '"', api_len - head);
    if (!object_end || !api_end || object_end - object != api_end - api)
        return 0;

    size_t value_len = (size_t)(object_end - object) - head;
    size_t tail = (size_t)(object_end - object);
    return memcmp(object, api, head) == 0 && memcmp(object + head, api + head, value_len) < 0 &&
           memcmp(object + tail, api + tail, api_len - tail) == 0;
}

/* Finds the entry of worker `id` in the body of GET /poll/workers; its length in `len`. */
static const char *find_worker(const char *workers_body, const char *id, size_t *len)
{
    char needle[256];

    snprintf(needle, sizeof(needle), "{\"worker_id\":\"%s\"", id);
    const char *entry = strstr(workers_body, needle);
    const char *end = entry ? strchr(entry, '}') : NULL;
    *len = end ? (size_t)(end + 1 - entry) : 0;
    return end ? entry : NULL;
}

/* Compares one object with what the API shows for its record. Returns 0 or 1 mismatch. */
static int check_object(const gdn_it_s3_t *s3, gdn_it_client_t *client, CURL *curl,
                        const char *bucket, const char *key, const char *workers_body)
{
    gdn_it_response_t object;
    int is_worker = strncmp(key, "worker:", 7) == 0;
    int is_completed = strncmp(key, "completed:", 10) == 0;
    int mismatch = 0;

    if (bucket_get(s3, curl, bucket, key, NULL, &object) != 200 || !object.body) {
        fprintf(stderr, "  %s: GET answered %ld\n", key, object.status);
        gdn_it_response_free(&object);
        return 1;
    }
    if (is_worker) {
        /* The listing is a JSON array of the very objects: the bucket's copy must appear in it
         * byte for byte, but for a last_heartbeat that may lag. */
        size_t entry_len = 0;
        const char *entry = find_worker(workers_body, key + 7, &entry_len);

        mismatch = !same_but_lagging(object.body, object.body_len, entry, entry_len,
                                     "\"last_heartbeat\":\"");
        if (mismatch)
            fprintf(stderr, "  %s: object %s is not in /poll/workers %s\n", key, object.body,
                    workers_body);
    } else {
        char path[256];
        char *api = NULL;
        size_t api_len = 0;

        snprintf(path, sizeof(path), "/tasks/%s", strchr(key, ':') + 1);
        long status = gdn_it_fetch_body(client, path, &api, &api_len);

        mismatch = status != 200 || !same_but_lagging(object.body, object.body_len, api, api_len,
                                                      "\"lease_expires_at\":\"");
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

static int add_keys(gdn_it_strs_t *keys, const char *prefix, const gdn_it_strs_t *ids)
{
    char key[256];

    for (size_t i = 0; i < ids->count; i++) {
        snprintf(key, sizeof(key), "%s:%s", prefix, ids->items[i]);
        if (gdn_it_strs_push(keys, key) != 0)
            return -ENOMEM;
    }
    return 0;
}

/*
 * Checks that `bucket` holds exactly the records of `exp` and that every object equals what
 * the server's API shows for the record, byte for byte, with its metadata.
 * @return the number of mismatches (missing, extra or different objects).
 */
int gdn_it_s3_compare_bucket(const gdn_it_s3_t *s3, gdn_it_client_t *client, const char *bucket,
                             const gdn_it_records_t *exp)
{
    gdn_it_strs_t wanted = {0};
    gdn_it_strs_t listed = {0};
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
    gdn_it_strs_sort(&wanted);
    CU_ASSERT_EQUAL(gdn_it_fetch_body(client, "/poll/workers", &workers, &workers_len), 200);

    int listed_ok = bucket_list(s3, curl, bucket, &listed) == 0;

    CU_ASSERT(listed_ok);
    gdn_it_strs_sort(&listed);
    for (size_t i = 0; listed_ok && i < wanted.count; i++) {
        if (!gdn_it_strs_has(&listed, wanted.items[i])) {
            if (missing++ < SHOWN_MAX)
                fprintf(stderr, "  %s: missing from the bucket\n", wanted.items[i]);
        } else if (different < SHOWN_MAX) {
            different +=
                check_object(s3, client, curl, bucket, wanted.items[i], workers ? workers : "");
        }
    }
    for (size_t i = 0; listed_ok && i < listed.count; i++) {
        if (!gdn_it_strs_has(&wanted, listed.items[i]) && extra++ < SHOWN_MAX)
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
    gdn_it_strs_free(&wanted);
    gdn_it_strs_free(&listed);
    curl_easy_cleanup(curl);
    return listed_ok ? missing + extra + different : 1;
}
/* Adds the ids of every task of `status` to `ids` (and to `finished` too when set), paging
 * through GET /tasks?status=. Returns 0, or -1 when a page could not be read. */
static int collect_status(gdn_it_client_t *client, const char *status, gdn_it_strs_t *ids,
                          gdn_it_strs_t *finished)
{
    char cursor[256] = "";
    char path[512];
    int rc = 0;

    do {
        gdn_it_response_t res;

        snprintf(path, sizeof(path), "/tasks?status=%s&limit=500%s%s", status,
                 cursor[0] ? "&cursor=" : "", cursor);
        cursor[0] = '\0';
        gdn_it_call(client, "GET", path, NULL, &res);
        yajl_val tasks = gdn_it_json_get(res.json, "tasks", NULL);
        const char *next = gdn_it_json_string(res.json, "next_cursor", NULL);

        if (res.status != 200 || !YAJL_IS_ARRAY(tasks)) {
            fprintf(stderr, "GET %s answered %ld: %.200s\n", path, res.status,
                    res.body ? res.body : "");
            rc = -1;
        }
        for (size_t i = 0; rc == 0 && i < gdn_it_json_length(tasks); i++) {
            const char *id = gdn_it_json_string(gdn_it_json_at(tasks, i), "id", NULL);

            rc = id ? gdn_it_strs_push(ids, id) : -1;
            if (rc == 0 && finished)
                rc = gdn_it_strs_push(finished, id);
        }
        if (rc == 0 && next) {
            char *escaped = curl_easy_escape(client->curl, next, 0);

            snprintf(cursor, sizeof(cursor), "%s", escaped ? escaped : "");
            curl_free(escaped);
        }
        gdn_it_response_free(&res);
    } while (rc == 0 && cursor[0]);
    return rc;
}

int gdn_it_records_from_api(gdn_it_client_t *client, gdn_it_records_t *out)
{
    gdn_it_response_t res;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    rc |= collect_status(client, "pending", &out->tasks, NULL);
    rc |= collect_status(client, "processing", &out->tasks, NULL);
    rc |= collect_status(client, "cancelled", &out->tasks, NULL);
    rc |= collect_status(client, "completed", &out->tasks, &out->completed);
    rc |= collect_status(client, "failed", &out->tasks, &out->completed);

    gdn_it_call(client, "GET", "/poll/workers", NULL, &res);
    yajl_val workers = gdn_it_json_get(res.json, "workers", NULL);

    if (res.status != 200 || !YAJL_IS_ARRAY(workers))
        rc = -1;
    for (size_t i = 0; rc == 0 && i < gdn_it_json_length(workers); i++) {
        const char *id = gdn_it_json_string(gdn_it_json_at(workers, i), "worker_id", NULL);

        rc = id ? gdn_it_strs_push(&out->workers, id) : -1;
    }
    gdn_it_response_free(&res);
    return rc == 0 ? 0 : -1;
}
