/*
 * Answers and query strings.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdn/error.h"
#include "gdn/http.h"
#include "gdn/respond.h"

#define JSON_TYPE "application/json"

/* Adds the CORS headers of an allowed origin to an answer. */
static void add_cors(h2o_req_t *req)
{
    ssize_t at = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);

    if (at < 0)
        return;

    h2o_iovec_t origin = req->headers.entries[at].value;
    const gdn_config_t *config = gdn_loop_of(req)->config;

    if (!gdn_config_origin_allowed(config, origin.base, origin.len))
        return;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCESS_CONTROL_ALLOW_ORIGIN, NULL,
                   origin.base, origin.len);
    h2o_add_header_by_str(&req->pool, &req->res.headers,
                          H2O_STRLIT("access-control-allow-credentials"), 0, NULL,
                          H2O_STRLIT("true"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL, H2O_STRLIT("Origin"));
}

void gdn_respond(h2o_req_t *req, int status, const char *reason, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT(JSON_TYPE));
    add_cors(req);
    h2o_send_inline(req, body, len);
}

void gdn_respond_ok(h2o_req_t *req, const char *body, size_t len)
{
    gdn_respond(req, 200, "OK", body, len);
}

void gdn_respond_detail(h2o_req_t *req, int status, const char *reason, const char *detail)
{
    char body[256];
    int len = snprintf(body, sizeof(body), "{\"detail\":\"%s\"}", detail);

    gdn_respond(req, status, reason, body, (size_t)len);
}

int gdn_respond_not_found(h2o_req_t *req)
{
    gdn_respond_detail(req, 404, "Not Found", "Not Found");
    return 0;
}

int gdn_respond_task_not_found(h2o_req_t *req)
{
    gdn_respond_detail(req, 404, "Not Found", "Task not found");
    return 0;
}

/* A failure of the journal or of memory: nothing was stored, the client may retry. */
int gdn_respond_unavailable(h2o_req_t *req, int rc)
{
    const char *detail = rc == GDN_EJOURNAL_FULL ? "Storage is full: the write was not stored"
                                                 : "Storage unavailable: the write was not stored";

    gdn_respond_detail(req, 503, "Service Unavailable", detail);
    return 0;
}

int gdn_respond_problems(h2o_req_t *req, gdn_problems_t *problems)
{
    size_t len;
    char *body = gdn_problems_render(problems, &len);

    if (body == NULL)
        return gdn_respond_unavailable(req, -ENOMEM);
    gdn_respond(req, 422, "Unprocessable Entity", body, len);
    free(body);
    return 0;
}

/* Answers with a malloc'd body and frees it. */
int gdn_respond_taken(h2o_req_t *req, char *body, size_t len)
{
    if (body == NULL)
        return gdn_respond_unavailable(req, -ENOMEM);
    gdn_respond_ok(req, body, len);
    free(body);
    return 0;
}

/* Preflight answers are plain text, as browsers expect of them. */
void gdn_respond_text(h2o_req_t *req, int status, const char *reason, const char *text)
{
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = strlen(text);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; charset=utf-8"));
    add_cors(req);
    h2o_send_inline(req, text, req->res.content_length);
}

/* The query string is what follows the first `?` of the request target. */
const char *gdn_query_string(h2o_req_t *req, size_t *len)
{
    if (req->query_at == SIZE_MAX) {
        *len = 0;
        return NULL;
    }
    *len = req->path.len - req->query_at - 1;
    return req->path.base + req->query_at + 1;
}
