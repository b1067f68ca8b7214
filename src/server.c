/*
 * The HTTP server's threads: one h2o event loop per thread, each with its own SO_REUSEPORT
 * listener on the shared address so that the kernel spreads connections across them.
 *
 * Shutdown: the main thread sends each loop a control message. The loop closes its listener,
 * asks h2o to wind its connections down (GOAWAY on HTTP/2, close after the current request on
 * HTTP/1.1), keeps running until the writes it handed to the journal writer have been answered
 * and the answers had a moment to leave, then exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gdn/clock.h"
#include "gdn/error.h"
#include "gdn/http.h"
#include "gdn/log.h"
#include "gdn/writes.h"

/* Request bodies up to twice the configured limit plus 1 MiB are read and answered with the
 * API's JSON 413. h2o refuses larger ones before reading them, or as soon as they grow past
 * that. h2o 2.2.5 reads a whole body before any handler (and so the token check) runs, so this
 * bound is what one request, with or without a token, can make the server hold. */
#define BODY_READ_FACTOR 2
#define BODY_READ_EXTRA (1u << 20)

/* How long HTTP/2 clients get to close their connections after a GOAWAY. */
#define GRACEFUL_SHUTDOWN_MS 2000

/* Once a stopping loop has answered everything, how long it waits for its clients to close
 * their connections before it leaves them to the process exit. */
#define LINGER_AFTER_ANSWERS_US 1000000

/* Room for the quoted form of the configured host and of a TLS file path in a log line; a longer
 * value is cut, since these come from the operator and are quoted like any foreign value. */
#define QUOTED_HOST_SIZE 300
#define QUOTED_PATH_SIZE 512

/* A server with loops that still had connections at exit: kept reachable, not freed, because
 * h2o 2.2.5 cannot dispose of a loop with connections. */
static gdn_server_t *abandoned_server;

struct gdn_server {
    h2o_globalconf_t globalconf;
    int globalconf_ready;
    SSL_CTX *ssl_ctx;
    gdn_loop_t *loops;
    int loop_count;
    h2o_barrier_t started;
    int64_t drain_deadline_us; /* written before the stop messages are sent */
    gdn_queue_policy_t policy;
    gdn_auth_t *auth; /* NULL: no tokens configured */
};

static void on_accept(h2o_socket_t *listener, const char *err)
{
    gdn_loop_t *loop = listener->data;

    if (err != NULL)
        return;
    /* Accept a few at a time so that one busy listener does not starve the loop. */
    for (int i = 0; i < 16; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);

        if (sock == NULL)
            break;
        h2o_accept(&loop->accept_ctx, sock);
    }
}

static void stop_accepting(gdn_loop_t *loop)
{
    if (loop->listener == NULL)
        return;
    h2o_socket_read_stop(loop->listener);
    h2o_socket_close(loop->listener);
    loop->listener = NULL;
}

static void on_control(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    gdn_loop_t *loop = H2O_STRUCT_FROM_MEMBER(gdn_loop_t, control, receiver);

    while (!h2o_linklist_is_empty(messages))
        h2o_linklist_unlink(messages->next);
    if (loop->stopping)
        return;
    loop->stopping = 1;
    stop_accepting(loop);
    gdn_writes_loop_stop(loop);
    h2o_context_request_shutdown(&loop->ctx);
}

static int connections_closed(gdn_loop_t *loop)
{
    return h2o_linklist_is_empty(&loop->ctx.http1._conns) &&
           h2o_linklist_is_empty(&loop->ctx.http2._conns);
}

/*
 * Tells whether a stopping loop may exit now: everything answered, and every connection closed
 * or everything answered a while ago or the drain deadline passed. An operation still with the
 * writer is waited for even past the deadline: its answer is sent to this loop's receiver,
 * which must outlive it, and the writer answers every operation (waiting polls are let go when
 * the loop stops), so only a stalled disk makes this wait long.
 */
static int loop_drained(gdn_loop_t *loop)
{
    int64_t now = gdn_clock_now_us();

    if (loop->in_flight > 0) {
        loop->answered_at_us = 0;
        return 0;
    }
    if (now >= loop->server->drain_deadline_us)
        return 1;
    if (loop->answered_at_us == 0)
        loop->answered_at_us = now;
    return connections_closed(loop) || now - loop->answered_at_us >= LINGER_AFTER_ANSWERS_US;
}

static void *loop_main(void *arg)
{
    gdn_loop_t *loop = arg;
    gdn_server_t *server = loop->server;
    h2o_evloop_t *evloop = h2o_evloop_create();

    h2o_context_init(&loop->ctx, evloop, &server->globalconf);
    loop->accept_ctx.ctx = &loop->ctx;
    loop->accept_ctx.hosts = server->globalconf.hosts;
    loop->accept_ctx.ssl_ctx = server->ssl_ctx;
    h2o_multithread_register_receiver(loop->ctx.queue, &loop->replies, gdn_writes_on_replies);
    gdn_writes_loop_init(loop);
    h2o_multithread_register_receiver(loop->ctx.queue, &loop->control, on_control);

    loop->listener = h2o_evloop_socket_create(evloop, loop->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    loop->listener->data = loop;
    h2o_socket_read_start(loop->listener, on_accept);

    /* Nobody may send to the receivers before they are registered. */
    h2o_barrier_wait(&server->started);

    while (!loop->stopping || !loop_drained(loop))
        h2o_evloop_run(evloop, loop->stopping ? 20 : INT32_MAX);

    stop_accepting(loop);
    h2o_multithread_unregister_receiver(loop->ctx.queue, &loop->replies);
    h2o_multithread_unregister_receiver(loop->ctx.queue, &loop->control);
    if (connections_closed(loop)) {
        /* A shutdown request arms a timer that would close HTTP/2 connections after a grace
         * period; with every connection gone it has nothing left to do. */
        if (h2o_timeout_is_linked(&loop->ctx.http2._graceful_shutdown_timeout))
            h2o_timeout_unlink(&loop->ctx.http2._graceful_shutdown_timeout);
        gdn_writes_loop_dispose(loop);

        h2o_multithread_queue_t *queue = loop->ctx.queue;

        h2o_context_dispose(&loop->ctx);
        /* h2o 2.2.5 closes the context's message queue but, on this backend, never frees it;
         * one loop turn lets the closed sockets go before the loop itself does. */
        free(queue);
        h2o_evloop_run(evloop, 0);
        h2o_evloop_destroy(evloop);
    } else {
        /* Limitation: h2o 2.2.5 cannot free a loop that still has connections, so a loop whose
         * clients kept connections open past the drain deadline is left to the process exit,
         * which follows at once. */
        gdn_log(GDN_LOG_WARN, "http", "connections_abandoned", "thread=%d",
                (int)(loop - loop->server->loops));
        loop->abandoned = 1;
    }
    return NULL;
}

/* Parses the configured host into a socket address, with the port. */
static int resolve_listen(const gdn_config_t *config, struct sockaddr_storage *addr,
                          socklen_t *addr_len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *found;
    char port[16];

    snprintf(port, sizeof(port), "%d", config->port);

    int rc = getaddrinfo(config->host, port, &hints, &found);

    if (rc != 0) {
        char host[QUOTED_HOST_SIZE];

        gdn_log(GDN_LOG_ERROR, "http", "listen_failed", "host=%s reason=\"%s\"",
                gdn_log_quote(config->host, host, sizeof(host)), gai_strerror(rc));
        return GDN_ECONFIG;
    }
    memcpy(addr, found->ai_addr, found->ai_addrlen);
    *addr_len = found->ai_addrlen;
    freeaddrinfo(found);
    return 0;
}

static int open_listener(const struct sockaddr_storage *addr, socklen_t addr_len)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int on = 1;

    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0 ||
        bind(fd, (const struct sockaddr *)addr, addr_len) != 0 || listen(fd, 1024) != 0) {
        int err = errno;

        close(fd);
        return -err;
    }
    return fd;
}

static int setup_tls(gdn_server_t *server, const gdn_config_t *config)
{
    if (config->tls_cert == NULL)
        return 0;

    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL)
        return -ENOMEM;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ctx, config->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, config->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char reason[256];
        char cert[QUOTED_PATH_SIZE];
        char key[QUOTED_PATH_SIZE];

        ERR_error_string_n(ERR_get_error(), reason, sizeof(reason));
        gdn_log(GDN_LOG_ERROR, "http", "tls_setup_failed", "cert=%s key=%s reason=\"%s\"",
                gdn_log_quote(config->tls_cert, cert, sizeof(cert)),
                gdn_log_quote(config->tls_key, key, sizeof(key)), reason);
        SSL_CTX_free(ctx);
        return GDN_ECONFIG;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    server->ssl_ctx = ctx;
    return 0;
}

static int setup_h2o(gdn_server_t *server, const gdn_config_t *config)
{
    h2o_globalconf_t *globalconf = &server->globalconf;

    h2o_config_init(globalconf);
    server->globalconf_ready = 1;
    globalconf->server_name = h2o_iovec_init(H2O_STRLIT("garden-orchestrator"));
    globalconf->max_request_entity_size =
        config->max_body_bytes * BODY_READ_FACTOR + BODY_READ_EXTRA;
    /* After a shutdown request, HTTP/2 clients that keep their connection open past this are
     * cut off by h2o, so that a stop ends within the drain time. */
    globalconf->http2.graceful_shutdown_timeout = GRACEFUL_SHUTDOWN_MS;

    h2o_hostconf_t *hostconf =
        h2o_config_register_host(globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);

    return gdn_routes_register(hostconf);
}

static int online_cores(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    return cores > 0 ? (int)cores : 1;
}

/*
 * SO_REUSEPORT would let a second server bind the port of a running one and silently take half
 * its connections. A socket bound without it first proves the port is free.
 */
static int check_port_free(const struct sockaddr_storage *addr, socklen_t addr_len)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    int rc = 0;

    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (bind(fd, (const struct sockaddr *)addr, addr_len) != 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* Binds one listener per loop, so that a bad address fails before any thread starts. */
static int bind_listeners(gdn_server_t *server, const gdn_config_t *config)
{
    struct sockaddr_storage addr;
    socklen_t addr_len;
    int rc = resolve_listen(config, &addr, &addr_len);

    if (rc == 0)
        rc = check_port_free(&addr, addr_len);

    char host[QUOTED_HOST_SIZE];

    gdn_log_quote(config->host, host, sizeof(host));
    if (rc != 0) {
        if (rc != GDN_ECONFIG)
            gdn_log(GDN_LOG_ERROR, "http", "listen_failed", "host=%s port=%d reason=\"%s\"", host,
                    config->port, gdn_strerror(rc));
        return rc;
    }
    for (int i = 0; i < server->loop_count; i++) {
        server->loops[i].listen_fd = open_listener(&addr, addr_len);
        if (server->loops[i].listen_fd < 0) {
            rc = server->loops[i].listen_fd;
            gdn_log(GDN_LOG_ERROR, "http", "listen_failed", "host=%s port=%d reason=\"%s\"", host,
                    config->port, gdn_strerror(rc));
            for (int j = 0; j < i; j++)
                close(server->loops[j].listen_fd);
            return rc;
        }
    }
    return 0;
}

static void free_server(gdn_server_t *server)
{
    if (server->globalconf_ready)
        h2o_config_dispose(&server->globalconf);
    if (server->ssl_ctx != NULL)
        SSL_CTX_free(server->ssl_ctx);
    gdn_auth_free(server->auth);
    free(server->loops);
    free(server);
}

/*
 * Reads the tokens file. Without one the server answers anyone who can reach it, and says so
 * once, loudly, since that is only right behind a firewall or a proxy that checks callers.
 */
static int setup_auth(gdn_server_t *server, const gdn_config_t *config)
{
    if (config->auth_tokens_file == NULL) {
        gdn_log(GDN_LOG_WARN, "auth", "auth_disabled",
                "reason=\"no auth_tokens_file: every endpoint is open to anyone who can reach "
                "the listener\"");
        return 0;
    }

    char err[512];
    int world_readable = 0;
    int rc =
        gdn_auth_load(config->auth_tokens_file, &server->auth, &world_readable, err, sizeof(err));
    char quoted[600];

    if (rc != 0) {
        gdn_log(GDN_LOG_ERROR, "auth", "tokens_unreadable", "reason=%s",
                gdn_log_quote(err, quoted, sizeof(quoted)));
        return GDN_ECONFIG;
    }
    gdn_log(GDN_LOG_INFO, "auth", "tokens_loaded", "file=%s tokens=%zu",
            gdn_log_quote(config->auth_tokens_file, quoted, sizeof(quoted)),
            gdn_auth_count(server->auth));
    if (world_readable)
        gdn_log(GDN_LOG_WARN, "auth", "tokens_file_world_readable",
                "file=%s reason=\"any local user can read the tokens; chmod 0640\"",
                gdn_log_quote(config->auth_tokens_file, quoted, sizeof(quoted)));
    return 0;
}

int gdn_server_loop_count(const gdn_server_t *server)
{
    return server->loop_count;
}

const gdn_loop_t *gdn_server_loop(const gdn_server_t *server, int index)
{
    return &server->loops[index];
}

int gdn_server_start(gdn_server_t **out, const gdn_config_t *config, gdn_journal_t *journal,
                     gdn_writer_t *writer, gdn_flusher_t *flusher)
{
    gdn_server_t *server = calloc(1, sizeof(*server));

    *out = NULL;
    if (server == NULL)
        return -ENOMEM;
    server->loop_count = config->threads > 0 ? config->threads : online_cores();
    gdn_queue_policy_init(&server->policy, config);
    server->loops = calloc((size_t)server->loop_count, sizeof(*server->loops));

    int rc = server->loops == NULL ? -ENOMEM : setup_auth(server, config);

    if (rc == 0)
        rc = setup_tls(server, config);

    if (rc == 0)
        rc = setup_h2o(server, config);
    if (rc == 0)
        rc = bind_listeners(server, config);
    if (rc != 0) {
        free_server(server);
        return rc;
    }

    for (int i = 0; i < server->loop_count && rc == 0; i++) {
        gdn_loop_t *loop = &server->loops[i];

        loop->server = server;
        loop->config = config;
        loop->writer = writer;
        loop->flusher = flusher;
        loop->policy = &server->policy;
        loop->journal = journal;
        loop->auth = server->auth;
        gdn_observe_init(loop);
        rc = gdn_journal_reader_open(journal, &loop->reader);
    }
    if (rc != 0) {
        for (int i = 0; i < server->loop_count; i++) {
            gdn_journal_reader_close(server->loops[i].reader);
            close(server->loops[i].listen_fd);
        }
        free_server(server);
        return rc;
    }

    gdn_writes_start(writer, &server->policy);
    h2o_barrier_init(&server->started, (size_t)server->loop_count + 1);
    for (int i = 0; i < server->loop_count; i++)
        h2o_multithread_create_thread(&server->loops[i].thread, NULL, loop_main, &server->loops[i]);
    h2o_barrier_wait(&server->started);
    char host[QUOTED_HOST_SIZE];

    gdn_log(GDN_LOG_INFO, "http", "listening", "host=%s port=%d threads=%d tls=%s",
            gdn_log_quote(config->host, host, sizeof(host)), config->port, server->loop_count,
            server->ssl_ctx ? "on" : "off");
    *out = server;
    return 0;
}

void gdn_server_stop(gdn_server_t *server, int drain_ms)
{
    if (server == NULL)
        return;
    server->drain_deadline_us = gdn_clock_now_us() + (int64_t)drain_ms * 1000;
    for (int i = 0; i < server->loop_count; i++)
        h2o_multithread_send_message(&server->loops[i].control, &server->loops[i].stop_message);
    int abandoned = 0;

    for (int i = 0; i < server->loop_count; i++) {
        pthread_join(server->loops[i].thread, NULL);
        gdn_journal_reader_close(server->loops[i].reader);
        abandoned |= server->loops[i].abandoned;
    }
    if (abandoned)
        abandoned_server = server;
    else
        free_server(server);
}
