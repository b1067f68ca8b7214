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
