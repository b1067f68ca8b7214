/*
 * The server's configuration: built-in defaults, then the config file, then the environment,
 * then the command line, each overriding the one before.
 *
 * The config file holds `key = value` lines; `#` starts a comment (at the start of a line or
 * after whitespace); blank lines are ignored; values may be wrapped in double quotes. Unknown
 * keys and bad values are errors that name the file and line.
 */
#ifndef GDN_CONFIG_H
#define GDN_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gdn/log.h"

/** Most origins `cors_origins` may list. */
#define GDN_CONFIG_MAX_ORIGINS 32

typedef struct gdn_config {
    char *host;                /**< listen address; "0.0.0.0" by default */
    int port;                  /**< listen port; 5000 by default */
    char *data_dir;            /**< journal directory; "/var/lib/garden-orchestrator" */
    int threads;               /**< loop threads; 0 means one per online core */
    size_t max_body_bytes;     /**< largest accepted request body; 1 MiB */
    size_t journal_map_mb;     /**< LMDB map size in MiB; 4096 */
    int worker_ttl_s;          /**< a worker silent this long is not live; 600 */
    int task_lease_s;          /**< a claim's lease when the task names none; 600 */
    int retry_base_s;          /**< first backoff of a task completed with "retry"; 5 */
    int retry_max_s;           /**< longest backoff of a retried task; 300 */
    int completed_ttl_s;       /**< how long completed:ID copies are kept; 604800 (7 days) */
    int task_retention_s;      /**< how long finished tasks are kept; 0 keeps them; 30 days */
    int idempotency_ttl_s;     /**< how long an Idempotency-Key is remembered; 86400 */
    char *cors_origins;        /**< "*" or a comma-separated list of exact origins */
    char *tls_cert;            /**< PEM certificate chain file, or NULL for cleartext */
    char *tls_key;             /**< PEM private key file, or NULL */
    char *minio_endpoint;      /**< "host:port" or a URL; NULL runs without a bucket */
    char *minio_access_key;    /**< S3 access key id; an identifier, printed as is */
    char *minio_secret_key;    /**< S3 secret key; secret in printouts */
    int minio_secure;          /**< 1 to use https when the endpoint has no scheme */
    char *minio_bucket;        /**< bucket name; "garden-orchestrator" */
    char *minio_region;        /**< SigV4 region; "us-east-1" */
    int s3_connect_timeout_ms; /**< S3 connection set-up limit; 5000 */
    int s3_timeout_ms;         /**< S3 whole-request limit; 30000 */
    int flush_interval_ms;     /**< time between flush rounds; 1000 */
    int flush_batch_max;       /**< changes that start a round early, and records per round; 256 */
    int flush_concurrency;     /**< S3 transfers in flight at once; 8 */
    int flush_retry_max_ms;    /**< cap of the backoff between failed rounds; 30000 */
    int restore_on_empty;      /**< restore from the bucket when the journal is empty; true */
    int restore_wait_s;        /**< how long to try reaching the bucket before that; 30 */
    int claude_mem_enabled;    /**< reported in /stats only; true by default */
    gdn_log_level_t log_level; /**< lowest level logged; info */
    int access_log;            /**< one info line per answered request; false */
    char *auth_tokens_file;    /**< bearer tokens and their scopes; NULL serves anyone */
} gdn_config_t;

/**
 * Fills `cfg` with the built-in defaults. Strings are owned by `cfg`: release them with
 * gdn_config_free.
 *
 * @return 0, or -ENOMEM.
 */
int gdn_config_init(gdn_config_t *cfg);

/** Frees every string `cfg` owns and leaves it zeroed. NULL-safe on the strings. */
void gdn_config_free(gdn_config_t *cfg);

/**
 * Sets one key from its text value, as the config file spells it (`max_body_bytes`,
 * `minio_endpoint`, ...). Booleans accept true/false, yes/no, on/off, 1/0.
 *
 * @param err buffer for a one-line reason on failure (may be NULL).
 * @return 0, GDN_ECONFIG (unknown key or bad value, reason in err), or -ENOMEM.
 */
int gdn_config_set(gdn_config_t *cfg, const char *key, const char *value, char *err,
                   size_t err_size);

/**
 * Reads a config file and applies each `key = value` line with gdn_config_set.
 *
 * @param err on failure, `PATH:LINE: reason`, or `PATH: strerror` if the file cannot be read.
 * @return 0, GDN_ECONFIG, -errno, or -ENOMEM. On failure `cfg` may hold the lines before the
 *         bad one.
 */
int gdn_config_load_file(gdn_config_t *cfg, const char *path, char *err, size_t err_size);

/**
 * Applies the environment variables of the deployed service: MINIO_ENDPOINT,
 * MINIO_ACCESS_KEY, MINIO_SECRET_KEY, MINIO_SECURE, MINIO_BUCKET, MINIO_REGION, HOST, PORT,
 * CLAUDE_MEM_ENABLED. Unset or empty variables change nothing.
 *
 * @param err on failure, `NAME: reason`.
 * @return 0, GDN_ECONFIG or -ENOMEM.
 */
int gdn_config_apply_env(gdn_config_t *cfg, char *err, size_t err_size);

/**
 * Checks the combination of values (a TLS key without a certificate, say).
 * @return 0 or GDN_ECONFIG with the reason in err.
 */
int gdn_config_validate(const gdn_config_t *cfg, char *err, size_t err_size);

/**
 * Writes every key as `key = value`, one per line, secrets replaced by `********` when set.
 */
void gdn_config_print(const gdn_config_t *cfg, FILE *out);

/**
 * Logs the effective configuration as one info event, secrets masked.
 */
void gdn_config_log(const gdn_config_t *cfg);

/**
 * Tells whether `origin` may make cross-origin requests under `cors_origins`.
 * @return 1 if allowed, 0 if not.
 */
int gdn_config_origin_allowed(const gdn_config_t *cfg, const char *origin, size_t len);

#endif
