/*
 * The S3 client. libcurl signs each request (CURLOPT_AWS_SIGV4); this file builds what libcurl
 * 7.88 leaves to the caller: the payload hash header, object keys percent-encoded exactly as
 * they are signed, and canonical query strings.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gdn/buf.h"
#include "gdn/error.h"
#include "gdn/s3.h"

/* Answers larger than this are cut off: listings and records are far smaller. */
#define RESPONSE_MAX (64u << 20)

struct gdn_s3 {
    char *base_url; /* scheme://host:port/bucket */
    char *sigv4;    /* "aws:amz:REGION:s3" */
    char *region;
    char *access_key;
    char *secret_key;
    long connect_timeout_ms;
    long timeout_ms;
    int concurrency;
    CURLM *multi;   /* kept for the client's life: its connection cache keeps sockets alive */
    CURL **handles; /* one reusable easy handle per transfer slot */
    atomic_int aborted;
};

static atomic_uint_fast64_t success_counts[GDN_S3_KIND_COUNT];
static atomic_uint_fast64_t failure_counts[GDN_S3_KIND_COUNT];
static const char *const kind_methods[GDN_S3_KIND_COUNT] = {"HEAD", "GET", "PUT", "POST", "DELETE"};

void gdn_s3_counters(gdn_s3_counters_t *out)
{
    for (int k = 0; k < GDN_S3_KIND_COUNT; k++) {
        out->successes[k] = atomic_load(&success_counts[k]);
        out->failures[k] = atomic_load(&failure_counts[k]);
    }
}

static void count_request(const gdn_s3_request_t *request)
{
    for (int k = 0; k < GDN_S3_KIND_COUNT; k++) {
        if (strcmp(request->method, kind_methods[k]) != 0)
            continue;
        atomic_fetch_add(gdn_s3_ok(request) ? &success_counts[k] : &failure_counts[k], 1);
        return;
    }
}

/* The state of one transfer slot while a request is in flight. */
typedef struct transfer {
    gdn_s3_request_t *request;
    struct curl_slist *headers;
    gdn_buf_t response;
    char url[1024 + 3 * 256];
    char error[CURL_ERROR_SIZE];
} transfer_t;

static char *copy_string(const char *text)
{
    return text != NULL ? strdup(text) : NULL;
}

void gdn_s3_config_init(gdn_s3_config_t *out, const gdn_config_t *config)
{
    *out = (gdn_s3_config_t){
        .endpoint = config->minio_endpoint,
        .secure = config->minio_secure,
        .bucket = config->minio_bucket,
        .region = config->minio_region,
        .access_key = config->minio_access_key,
        .secret_key = config->minio_secret_key,
        .connect_timeout_ms = config->s3_connect_timeout_ms,
        .timeout_ms = config->s3_timeout_ms,
        .concurrency = config->flush_concurrency,
    };
}

int gdn_s3_open(gdn_s3_t **out, const gdn_s3_config_t *config, char *err, size_t err_size)
{
    *out = NULL;
    if (config->endpoint == NULL || *config->endpoint == '\0' || config->bucket == NULL) {
        snprintf(err, err_size, "no S3 endpoint or bucket");
        return GDN_ECONFIG;
    }

    const char *endpoint = config->endpoint;
    const char *scheme = config->secure ? "https" : "http";

    if (strncasecmp(endpoint, "http://", 7) == 0) {
        scheme = "http";
        endpoint += 7;
    } else if (strncasecmp(endpoint, "https://", 8) == 0) {
        scheme = "https";
        endpoint += 8;
    }

    size_t host_len = strcspn(endpoint, "/");

    if (host_len == 0 || host_len > 255) {
        snprintf(err, err_size, "bad S3 endpoint '%s'", config->endpoint);
        return GDN_ECONFIG;
    }

    gdn_s3_t *s3 = calloc(1, sizeof(*s3));
    char base[600];
    char sigv4[128];

    if (s3 == NULL)
        return -ENOMEM;
    snprintf(base, sizeof(base), "%s://%.*s/%s", scheme, (int)host_len, endpoint, config->bucket);
    snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:s3", config->region);
    s3->base_url = strdup(base);
    s3->sigv4 = strdup(sigv4);
    s3->region = copy_string(config->region);
    s3->access_key = copy_string(config->access_key ? config->access_key : "");
    s3->secret_key = copy_string(config->secret_key ? config->secret_key : "");
    s3->connect_timeout_ms = config->connect_timeout_ms;
    s3->timeout_ms = config->timeout_ms;
    s3->concurrency = config->concurrency > 0 ? config->concurrency : 1;
    s3->multi = curl_multi_init();
    s3->handles = calloc((size_t)s3->concurrency, sizeof(*s3->handles));
    if (s3->base_url == NULL || s3->sigv4 == NULL || s3->region == NULL || s3->access_key == NULL ||
        s3->secret_key == NULL || s3->multi == NULL || s3->handles == NULL) {
        gdn_s3_close(s3);
        return -ENOMEM;
    }
    *out = s3;
    return 0;
}

void gdn_s3_close(gdn_s3_t *s3)
{
    if (s3 == NULL)
        return;
    for (int i = 0; s3->handles != NULL && i < s3->concurrency; i++) {
        if (s3->handles[i] != NULL)
            curl_easy_cleanup(s3->handles[i]);
    }
    if (s3->multi != NULL)
        curl_multi_cleanup(s3->multi);
    free(s3->handles);
    free(s3->base_url);
    free(s3->sigv4);
    free(s3->region);
    free(s3->access_key);
    free(s3->secret_key);
    free(s3);
}

void gdn_s3_abort(gdn_s3_t *s3)
{
    if (s3 == NULL)
        return;
    atomic_store(&s3->aborted, 1);
    curl_multi_wakeup(s3->multi);
}

void gdn_s3_request_reset(gdn_s3_request_t *request)
{
    free(request->response);
    request->response = NULL;
    request->response_len = 0;
    request->http_status = 0;
    request->curl_error[0] = '\0';
    request->transport_error = NULL;
    request->error_code[0] = '\0';
}

int gdn_s3_ok(const gdn_s3_request_t *request)
{
    return request->http_status >= 200 && request->http_status < 300;
}

const char *gdn_s3_failure(const gdn_s3_request_t *request)
{
    static _Thread_local char text[32];

    if (request->error_code[0] != '\0')
        return request->error_code;
    if (request->http_status != 0) {
        snprintf(text, sizeof(text), "http_%ld", request->http_status);
        return text;
    }
    return request->curl_error[0] != '\0' ? request->curl_error : "no_answer";
}

const char *gdn_s3_failure_kind(const gdn_s3_request_t *request)
{
    if (request->error_code[0] != '\0' || request->http_status != 0)
        return gdn_s3_failure(request);
    return request->transport_error != NULL ? request->transport_error : "no_answer";
}

/* Percent-encodes everything but RFC 3986's unreserved characters, with upper-case hex, as
 * SigV4 expects. Returns the length written, or 0 if `out` is too small. */
static size_t uri_encode(char *out, size_t size, const char *text, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];

        if (n + 4 > size)
            return 0;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
    return n;
}

static void hex_digest(const EVP_MD *md, const void *data, size_t len, char *out)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;

    EVP_Digest(data, len, digest, &digest_len, md, NULL);
    for (unsigned int i = 0; i < digest_len; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

static int build_url(gdn_s3_t *s3, const gdn_s3_request_t *request, char *url, size_t size)
{
    char key[3 * 256 + 1] = "";

    if (request->key != NULL &&
        uri_encode(key, sizeof(key), request->key, strlen(request->key)) == 0)
        return GDN_EINVALID;

    int len = snprintf(url, size, "%s%s%s%s%s", s3->base_url, request->key ? "/" : "", key,
                       request->query ? "?" : "", request->query ? request->query : "");

    return len > 0 && (size_t)len < size ? 0 : GDN_EINVALID;
}

static struct curl_slist *add_header(struct curl_slist *list, const char *name, const char *value,
                                     int *failed)
{
    char line[512];
    struct curl_slist *grown;

    if (value == NULL || *failed)
        return list;
    snprintf(line, sizeof(line), "%s: %s", name, value);
    grown = curl_slist_append(list, line);
    if (grown == NULL)
        *failed = 1;
    return grown != NULL ? grown : list;
}

static size_t on_response_data(char *data, size_t size, size_t count, void *arg)
{
    transfer_t *transfer = arg;
    size_t len = size * count;

    if (transfer->response.len + len > RESPONSE_MAX)
        return 0;
    return gdn_buf_append(&transfer->response, data, len) == 0 ? len : 0;
}

/* Prepares an easy handle for one request. */
static int setup_transfer(gdn_s3_t *s3, CURL *easy, transfer_t *transfer)
{
    gdn_s3_request_t *request = transfer->request;
    char payload_hash[2 * EVP_MAX_MD_SIZE + 1];
    int failed = 0;

    if (build_url(s3, request, transfer->url, sizeof(transfer->url)) != 0)
        return GDN_EINVALID;
    hex_digest(EVP_sha256(), request->body ? request->body : "", request->body_len, payload_hash);

    /* curl 7.88 signs the headers it is given but does not add the payload hash itself. */
    transfer->headers = add_header(NULL, "x-amz-content-sha256", payload_hash, &failed);
    transfer->headers =
        add_header(transfer->headers, "Content-Type", request->content_type, &failed);
    transfer->headers = add_header(transfer->headers, "Content-MD5", request->content_md5, &failed);
    transfer->headers =
        add_header(transfer->headers, "x-amz-meta-created_at", request->meta_created_at, &failed);
    transfer->headers =
        add_header(transfer->headers, "x-amz-meta-expires_at", request->meta_expires_at, &failed);
    if (failed)
        return -ENOMEM;

    curl_easy_reset(easy);
    curl_easy_setopt(easy, CURLOPT_URL, transfer->url);
    curl_easy_setopt(easy, CURLOPT_AWS_SIGV4, s3->sigv4);
    curl_easy_setopt(easy, CURLOPT_USERNAME, s3->access_key);
    curl_easy_setopt(easy, CURLOPT_PASSWORD, s3->secret_key);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, transfer->headers);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, s3->connect_timeout_ms);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, s3->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, transfer->error);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_response_data);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, transfer);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, transfer);
    if (strcmp(request->method, "HEAD") == 0) {
        curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    } else if (strcmp(request->method, "GET") != 0) {
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request->method);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)request->body_len);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request->body ? request->body : "");
    }
    return 0;
}

/* The longest key text an answer can hold: S3 keys have at most 1024 bytes, each of which XML
 * may spell as a six-character entity (`&quot;`). */
#define LIST_KEY_MAX (6 * 1024 + 1)
/* The longest continuation token read from a listing. */
#define LIST_TOKEN_MAX 2048

/* Copies the text between <tag> and </tag>, from `from` on, into out. Returns a pointer past
 * the closing tag, or NULL if absent; text that does not fit is cut (see xml_fits). */
static const char *xml_text(const char *from, const char *tag, char *out, size_t size)
{
    char open[64];
    char close[64];

    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);

    const char *start = from ? strstr(from, open) : NULL;
    const char *end = start ? strstr(start, close) : NULL;

    if (end == NULL)
        return NULL;
    start += strlen(open);

    size_t len = (size_t)(end - start);

    if (len >= size)
        len = size - 1;
    memcpy(out, start, len);
    out[len] = '\0';
    return end + strlen(close);
}

static void finish_transfer(CURL *easy, transfer_t *transfer, CURLcode result)
{
    gdn_s3_request_t *request = transfer->request;
    size_t len;

    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &request->http_status);
    if (result != CURLE_OK) {
        request->http_status = 0;
        request->transport_error = curl_easy_strerror(result);
        snprintf(request->curl_error, sizeof(request->curl_error), "%.120s",
                 transfer->error[0] ? transfer->error : request->transport_error);
    }
    request->response = gdn_buf_take(&transfer->response, &len);
    request->response_len = request->response != NULL ? len : 0;
    if (request->http_status >= 300 && request->response != NULL)
        xml_text(request->response, "Code", request->error_code, sizeof(request->error_code));
    curl_slist_free_all(transfer->headers);
    transfer->headers = NULL;
    transfer->request = NULL;
    count_request(request);
}

static CURL *slot_handle(gdn_s3_t *s3, int slot)
{
    if (s3->handles[slot] == NULL)
        s3->handles[slot] = curl_easy_init();
    return s3->handles[slot];
}

/* Starts the next request in a free slot. Returns 0, or an error for that request alone. */
static int start_transfer(gdn_s3_t *s3, transfer_t *transfers, int slot, gdn_s3_request_t *request)
{
    CURL *easy = slot_handle(s3, slot);
    transfer_t *transfer = &transfers[slot];

    memset(transfer, 0, sizeof(*transfer));
    transfer->request = request;
    gdn_s3_request_reset(request);

    int rc = easy == NULL ? -ENOMEM : setup_transfer(s3, easy, transfer);

    if (atomic_load(&s3->aborted))
        rc = GDN_ESHUTDOWN;

    if (rc == 0 && curl_multi_add_handle(s3->multi, easy) != CURLM_OK)
        rc = -ENOMEM;
    if (rc != 0) {
        request->transport_error = "request not sent";
        snprintf(request->curl_error, sizeof(request->curl_error), "request not sent: %s",
                 gdn_strerror(rc));
        curl_slist_free_all(transfer->headers);
        transfer->request = NULL;
    }
    return rc;
}

/* Ends every transfer in flight as failed. Returns how many there were. */
static int abort_transfers(gdn_s3_t *s3, transfer_t *transfers)
{
    int ended = 0;

    for (int slot = 0; slot < s3->concurrency; slot++) {
        if (transfers[slot].request == NULL)
            continue;
        curl_multi_remove_handle(s3->multi, s3->handles[slot]);
        finish_transfer(s3->handles[slot], &transfers[slot], CURLE_ABORTED_BY_CALLBACK);
        ended++;
    }
    return ended;
}

int gdn_s3_perform(gdn_s3_t *s3, gdn_s3_request_t *requests, size_t count)
{
    transfer_t *transfers = calloc((size_t)s3->concurrency, sizeof(*transfers));

    if (transfers == NULL)
        return -ENOMEM;

    size_t next = 0;
    int running = 0;

    for (;;) {
        /* Fill every free slot. */
        for (int slot = 0; slot < s3->concurrency && next < count; slot++) {
            if (transfers[slot].request != NULL)
                continue;
            if (start_transfer(s3, transfers, slot, &requests[next++]) == 0)
                running++;
        }
        if (running == 0 && next >= count)
            break;

        int still;

        curl_multi_perform(s3->multi, &still);

        CURLMsg *message;
        int left;

        for (;;) {
            message = curl_multi_info_read(s3->multi, &left);
            if (message == NULL)
                break;
            if (message->msg != CURLMSG_DONE)
                continue;

            transfer_t *transfer;

            curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, (char **)&transfer);
            finish_transfer(message->easy_handle, transfer, message->data.result);
            curl_multi_remove_handle(s3->multi, message->easy_handle);
            running--;
        }
        if (running > 0 && atomic_load(&s3->aborted))
            running -= abort_transfers(s3, transfers);
        if (running > 0)
            curl_multi_poll(s3->multi, NULL, 0, 200, NULL);
    }
    free(transfers);
    return 0;
}

/*
 * Answers to HEAD carry no body, so a refused HeadBucket does not say why (a wrong secret and
 * a missing permission both read as a bare 403). A one-key listing of the same bucket gets the
 * S3 error code into the request, for the operator's log.
 */
static void learn_error_code(gdn_s3_t *s3, gdn_s3_request_t *head)
{
    gdn_s3_request_t list = {.method = "GET", .query = "list-type=2&max-keys=1"};

    gdn_s3_perform(s3, &list, 1);
    if (!gdn_s3_ok(&list) && list.error_code[0] != '\0')
        memcpy(head->error_code, list.error_code, sizeof(head->error_code));
    else if (head->http_status == 403)
        snprintf(head->error_code, sizeof(head->error_code), "AccessDenied");
    gdn_s3_request_reset(&list);
}

int gdn_s3_ensure_bucket(gdn_s3_t *s3, gdn_s3_request_t *failed)
{
    gdn_s3_request_t head = {.method = "HEAD"};

    gdn_s3_perform(s3, &head, 1);
    if (gdn_s3_ok(&head)) {
        gdn_s3_request_reset(&head);
        return 0;
    }
    if (head.http_status != 404) {
        if (head.http_status >= 400 && head.error_code[0] == '\0')
            learn_error_code(s3, &head);
        *failed = head;
        return -EIO;
    }
    gdn_s3_request_reset(&head);

    /* Outside us-east-1, S3 wants the region named in the body; MinIO accepts either. */
    char body[256] = "";

    if (strcmp(s3->region, "us-east-1") != 0)
        snprintf(body, sizeof(body),
                 "<CreateBucketConfiguration><LocationConstraint>%s</LocationConstraint>"
                 "</CreateBucketConfiguration>",
                 s3->region);

    gdn_s3_request_t create = {.method = "PUT", .body = body, .body_len = strlen(body)};

    create.content_type = body[0] ? "application/xml" : NULL;
    gdn_s3_perform(s3, &create, 1);
    if (gdn_s3_ok(&create) || strcmp(create.error_code, "BucketAlreadyOwnedByYou") == 0) {
        gdn_s3_request_reset(&create);
        return 0;
    }
    *failed = create;
    return -EIO;
}

/* Decodes the five XML entities and numeric character references in place. */
static size_t xml_unescape(char *text, size_t len)
{
    static const struct {
        const char *entity;
        char c;
    } entities[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t out = 0;

    for (size_t i = 0; i < len;) {
        int matched = 0;

        for (size_t e = 0; text[i] == '&' && e < 5 && !matched; e++) {
            size_t elen = strlen(entities[e].entity);

            if (i + elen <= len && memcmp(text + i, entities[e].entity, elen) == 0) {
                text[out++] = entities[e].c;
                i += elen;
                matched = 1;
            }
        }
        if (!matched && text[i] == '&' && i + 2 < len && text[i + 1] == '#') {
            char *end;
            long code = text[i + 2] == 'x' ? strtol(text + i + 3, &end, 16)
                                           : strtol(text + i + 2, &end, 10);

            if (*end == ';' && code > 0 && code < 128) {
                text[out++] = (char)code;
                i = (size_t)(end - text) + 1;
                matched = 1;
            }
        }
        if (!matched)
            text[out++] = text[i++];
    }
    text[out] = '\0';
    return out;
}

/* Tells whether the text of the first <tag> after `from` fits in `size` bytes with its NUL. */
static int xml_fits(const char *from, const char *tag, size_t size)
{
    char open[64];
    char close[64];

    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);

    const char *start = strstr(from, open);
    const char *end = start ? strstr(start, close) : NULL;

    return end != NULL && (size_t)(end - start) - strlen(open) < size;
}

/*
 * Checks that a 200 answer is a whole ListObjectsV2 result before any key of it is used: its
 * root element, IsTruncated, a continuation token when it is true, and every key and the token
 * short enough to read whole. A server that answers 200 with something else (a web console, a
 * proxy's page) must not pass for an empty bucket, nor a cut key for one that exists.
 */
static int listing_valid(const char *response)
{
    char truncated[16] = "";

    if (strstr(response, "<ListBucketResult") == NULL ||
        xml_text(response, "IsTruncated", truncated, sizeof(truncated)) == NULL)
        return 0;
    if (strcmp(truncated, "true") == 0 &&
        !xml_fits(response, "NextContinuationToken", LIST_TOKEN_MAX))
        return 0;
    for (const char *at = strstr(response, "<Contents>"); at != NULL;
         at = strstr(at + 1, "<Contents>")) {
        if (!xml_fits(at, "Key", LIST_KEY_MAX))
            return 0;
    }
    return 1;
}

int gdn_s3_list_page(gdn_s3_t *s3, const char *token, int max_keys,
                     void (*on_key)(void *arg, const char *key, size_t key_len), void *arg,
                     char **next, gdn_s3_request_t *failed)
{
    char query[3 * LIST_TOKEN_MAX + 128];
    char encoded[3 * LIST_TOKEN_MAX] = "";

    *next = NULL;
    if (token != NULL && uri_encode(encoded, sizeof(encoded), token, strlen(token)) == 0)
        return GDN_EINVALID;
    /* Parameters in name order, as the canonical request lists them. */
    snprintf(query, sizeof(query), "%s%s%slist-type=2&max-keys=%d",
             token ? "continuation-token=" : "", encoded, token ? "&" : "", max_keys);

    gdn_s3_request_t list = {.method = "GET", .query = query};

    gdn_s3_perform(s3, &list, 1);
    if (gdn_s3_ok(&list) && (list.response == NULL || !listing_valid(list.response)))
        snprintf(list.error_code, sizeof(list.error_code), "InvalidListing");
    if (!gdn_s3_ok(&list) || list.error_code[0] != '\0') {
        *failed = list;
        return -EIO;
    }

    char key[LIST_KEY_MAX];
    const char *at = list.response;

    for (;;) {
        const char *contents = strstr(at, "<Contents>");

        if (contents == NULL)
            break;
        at = xml_text(contents, "Key", key, sizeof(key));
        if (at == NULL)
            break;
        on_key(arg, key, xml_unescape(key, strlen(key)));
    }

    char truncated[16] = "";
    char token_text[LIST_TOKEN_MAX] = "";

    xml_text(list.response, "IsTruncated", truncated, sizeof(truncated));
    if (strcmp(truncated, "true") == 0 &&
        xml_text(list.response, "NextContinuationToken", token_text, sizeof(token_text))) {
        xml_unescape(token_text, strlen(token_text));
        *next = strdup(token_text);
    }
    gdn_s3_request_reset(&list);
    return 0;
}

static void xml_escape_into(gdn_buf_t *out, const char *text)
{
    for (; *text != '\0'; text++) {
        switch (*text) {
        case '&':
            gdn_buf_append_str(out, "&amp;");
            break;
        case '<':
            gdn_buf_append_str(out, "&lt;");
            break;
        case '>':
            gdn_buf_append_str(out, "&gt;");
            break;
        case '"':
            gdn_buf_append_str(out, "&quot;");
            break;
        case '\'':
            gdn_buf_append_str(out, "&apos;");
            break;
        /* XML parsers turn a raw CR or CR LF into LF, and may fold other blanks: spelled as
         * references, they name the key as it is. */
        case '\r':
            gdn_buf_append_str(out, "&#xD;");
            break;
        case '\n':
            gdn_buf_append_str(out, "&#xA;");
            break;
        case '\t':
            gdn_buf_append_str(out, "&#x9;");
            break;
        default:
            gdn_buf_append(out, text, 1);
        }
    }
}

int gdn_s3_delete_request(gdn_s3_request_t *request, const char *const *keys, size_t count,
                          char **storage)
{
    gdn_buf_t body = GDN_BUF_INIT;

    gdn_buf_append_str(&body, "<Delete><Quiet>true</Quiet>");
    for (size_t i = 0; i < count && i < GDN_S3_DELETE_MAX; i++) {
        gdn_buf_append_str(&body, "<Object><Key>");
        xml_escape_into(&body, keys[i]);
        gdn_buf_append_str(&body, "</Key></Object>");
    }
    gdn_buf_append_str(&body, "</Delete>");

    size_t len;
    char *text = gdn_buf_take(&body, &len);

    if (text == NULL)
        return -ENOMEM;

    /* The body and its base64 MD5 share one allocation so that one free() releases both. */
    char *block = realloc(text, len + 1 + 32);

    if (block == NULL) {
        free(text);
        return -ENOMEM;
    }

    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    char *md5 = block + len + 1;

    EVP_Digest(block, len, digest, &digest_len, EVP_md5(), NULL);
    EVP_EncodeBlock((unsigned char *)md5, digest, (int)digest_len);

    memset(request, 0, sizeof(*request));
    request->method = "POST";
    request->query = "delete=";
    request->body = block;
    request->body_len = len;
    request->content_type = "application/xml";
    request->content_md5 = md5;
    *storage = block;
    return 0;
}

int gdn_s3_delete_errors(const gdn_s3_request_t *request,
                         void (*on_error)(void *arg, const char *key, const char *code), void *arg)
{
    int failed = 0;
    const char *at = request->response;

    while (at != NULL) {
        const char *error = strstr(at, "<Error>");
        char key[LIST_KEY_MAX] = "";
        char code[64] = "";

        if (error == NULL)
            break;

        const char *end = strstr(error, "</Error>");

        xml_text(error, "Key", key, sizeof(key));
        xml_text(error, "Code", code, sizeof(code));
        xml_unescape(key, strlen(key));
        if (on_error != NULL)
            on_error(arg, key, code);
        failed++;
        at = end != NULL ? end + 8 : NULL;
    }
    return failed;
}
