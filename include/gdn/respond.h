/*
 * Answers in the API's shapes, with the CORS headers every answer carries, and the query
 * string reading h2o leaves to the application. Loop threads only.
 */
#ifndef GDN_RESPOND_H
#define GDN_RESPOND_H

#include <h2o.h>
#include <stddef.h>

#include "gdn/task.h"

/** Sends a JSON answer (copied), with the CORS headers of an allowed Origin. */
void gdn_respond(h2o_req_t *req, int status, const char *reason, const char *body, size_t len);

/** Sends a 200 JSON answer. */
void gdn_respond_ok(h2o_req_t *req, const char *body, size_t len);

/** Sends `{"detail":DETAIL}`; `detail` must need no JSON escaping. */
void gdn_respond_detail(h2o_req_t *req, int status, const char *reason, const char *detail);

/** Sends a plain-text answer (CORS preflights). */
void gdn_respond_text(h2o_req_t *req, int status, const char *reason, const char *text);

/** 404 `{"detail":"Not Found"}`. @return 0, for handlers to return. */
int gdn_respond_not_found(h2o_req_t *req);

/** 404 `{"detail":"Task not found"}`. @return 0. */
int gdn_respond_task_not_found(h2o_req_t *req);

/** 503: the journal (or memory) failed and nothing was stored. @return 0. */
int gdn_respond_unavailable(h2o_req_t *req, int rc);

/** 422 with the problem list. @return 0. */
int gdn_respond_problems(h2o_req_t *req, gdn_problems_t *problems);

/** 200 with a malloc'd body, which it frees; 503 if `body` is NULL. @return 0. */
int gdn_respond_taken(h2o_req_t *req, char *body, size_t len);

/**
 * Returns the request's query string, the text after `?` without it (length in *len), for the
 * readers of request.h; NULL when the target has no `?`. It points into the request.
 */
const char *gdn_query_string(h2o_req_t *req, size_t *len);

#endif
