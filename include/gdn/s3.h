/*
 * A small S3 client on libcurl: path-style URLs, AWS Signature Version 4 signed by libcurl,
 * kept-alive connections, and several transfers in flight at once through one curl multi
 * handle. It speaks the calls the server needs and that MinIO supports: HeadBucket,
 * CreateBucket, PutObject, GetObject, DeleteObjects and ListObjectsV2.
 *
 * A client is used by one thread at a time. libcurl must have been initialised with
 * curl_global_init before any client is created.
 */
#ifndef GDN_S3_H
#define GDN_S3_H

#include <stddef.h>
#include <stdint.h>

#include "gdn/config.h"

/** Most keys one DeleteObjects request may carry (an S3 limit). */
#define GDN_S3_DELETE_MAX 1000

typedef struct gdn_s3 gdn_s3_t;

/** Request kinds, for the process-wide counters. */
typedef enum gdn_s3_kind {
    GDN_S3_HEAD,
    GDN_S3_GET,
    GDN_S3_PUT,
    GDN_S3_POST,
    GDN_S3_DELETE,
    GDN_S3_KIND_COUNT,
} gdn_s3_kind_t;

/**
 * Requests made by every client of this process since it started, by kind. Each request counts
 * in exactly one of the two, so that both only ever grow, whenever they are read.
 */
typedef struct gdn_s3_counters {
    uint64_t successes[GDN_S3_KIND_COUNT]; /**< answered in the 2xx range */
    uint64_t failures[GDN_S3_KIND_COUNT];  /**< no answer, or an answer outside 2xx */
} gdn_s3_counters_t;

/** Where and how to reach the bucket. Strings are copied by gdn_s3_open. */
typedef struct gdn_s3_config {
    const char *endpoint; /**< "host:port" or "http(s)://host:port" */
    int secure;           /**< use https when the endpoint names no scheme */
    const char *bucket;
    const char *region;
    const char *access_key;
    const char *secret_key;
    long connect_timeout_ms;
    long timeout_ms; /**< whole-transfer limit */
    int concurrency; /**< most transfers in flight at once */
} gdn_s3_config_t;

/** One request and, after gdn_s3_perform, its outcome. */
typedef struct gdn_s3_request {
    /* inputs */
    const char *method; /**< "GET", "PUT", "HEAD", "POST" or "DELETE" */
    const char *key;    /**< object key, or NULL for a bucket-level request */
    const char *query;  /**< canonical query (sorted, encoded, `name=` flags), or NULL */
    const char *body;   /**< request body, or NULL */
    size_t body_len;
    const char *content_type;    /**< or NULL */
    const char *content_md5;     /**< base64 MD5 of the body, or NULL */
    const char *meta_created_at; /**< x-amz-meta-created_at, or NULL */
    const char *meta_expires_at; /**< x-amz-meta-expires_at, or NULL */
    /* outputs */
    long http_status;            /**< 0 when no answer arrived */
    char curl_error[128];        /**< transport failure text, empty on an answer */
    const char *transport_error; /**< libcurl's fixed text for that failure, or NULL */
    char error_code[64];         /**< the S3 <Code> of an error answer, or empty */
    char *response;              /**< the answer body, malloc'd and NUL-terminated, or NULL */
    size_t response_len;
} gdn_s3_request_t;

/** Fills an S3 client configuration from the server's (minio_* and s3_* keys). */
void gdn_s3_config_init(gdn_s3_config_t *out, const gdn_config_t *config);

/**
 * Creates a client.
 * @param err a one-line reason on failure.
 * @return 0 and *out set; GDN_ECONFIG for a bad endpoint; -ENOMEM.
 */
int gdn_s3_open(gdn_s3_t **out, const gdn_s3_config_t *config, char *err, size_t err_size);

/** Frees a client and closes its connections. NULL-safe. */
void gdn_s3_close(gdn_s3_t *s3);

/**
 * Performs requests, at most `concurrency` at once, and fills each one's outputs. Returns when
 * all are done. Responses are freed by gdn_s3_request_reset.
 * @return 0 (see each request's outputs), or -ENOMEM before anything was sent.
 */
int gdn_s3_perform(gdn_s3_t *s3, gdn_s3_request_t *requests, size_t count);

/** Copies the process-wide request counters. Any thread. */
void gdn_s3_counters(gdn_s3_counters_t *out);

/**
 * Makes the client's transfers in progress, and any later ones, end at once as failed. Any
 * thread; used to stop a thread that is waiting on S3.
 */
void gdn_s3_abort(gdn_s3_t *s3);

/** Frees a request's response and clears its outputs, keeping its inputs. */
void gdn_s3_request_reset(gdn_s3_request_t *request);

/** Tells whether a request succeeded (an answer in the 2xx range). */
int gdn_s3_ok(const gdn_s3_request_t *request);

/**
 * Describes a failed request for logs: the S3 error code, else `http_NNN`, else the
 * transport error with its details (address, elapsed time). Returns a pointer into the request
 * or a thread-local or static string.
 */
const char *gdn_s3_failure(const gdn_s3_request_t *request);

/**
 * Names the kind of a failure, the same for every repetition of it: the S3 error code, else
 * `http_NNN`, else libcurl's fixed text for the transport error ("Couldn't connect to server")
 * without the details that change from one attempt to the next. Suits deciding whether a
 * failure is new. Returns a pointer into the request or a thread-local or static string.
 */
const char *gdn_s3_failure_kind(const gdn_s3_request_t *request);

/**
 * Checks that the bucket exists and creates it if it does not.
 * @return 0; GDN_ENOTFOUND never; a negative code with `failed` describing the last answer.
 */
int gdn_s3_ensure_bucket(gdn_s3_t *s3, gdn_s3_request_t *failed);

/**
 * Lists one page of object keys (ListObjectsV2).
 *
 * @param token the continuation token of the previous page, or NULL for the first page.
 * @param on_key called for each key in the page.
 * @param next receives a malloc'd continuation token, or NULL on the last page.
 * @return 0, or a negative code with `failed` describing the answer.
 */
int gdn_s3_list_page(gdn_s3_t *s3, const char *token, int max_keys,
                     void (*on_key)(void *arg, const char *key, size_t key_len), void *arg,
                     char **next, gdn_s3_request_t *failed);

/**
 * Builds a DeleteObjects request body for `count` keys (at most GDN_S3_DELETE_MAX) and fills
 * `request` with it, its Content-MD5 and query. `storage` receives the malloc'd body and MD5
 * text, to be freed with free() after the request is performed.
 * @return 0 or -ENOMEM.
 */
int gdn_s3_delete_request(gdn_s3_request_t *request, const char *const *keys, size_t count,
                          char **storage);

/**
 * Counts the per-key errors in a DeleteObjects answer and reports, through `on_error`, each
 * key that was not deleted.
 * @return the number of failed keys.
 */
int gdn_s3_delete_errors(const gdn_s3_request_t *request,
                         void (*on_error)(void *arg, const char *key, const char *code), void *arg);

#endif
