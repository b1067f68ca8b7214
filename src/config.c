/*
 * The server's configuration: defaults, config file, environment and validation.
 *
 * Every key is one row of `config_keys`: its name, how its text is parsed, where it lives in
 * gdn_config_t, its bounds, its default, its environment variable and whether it is a secret.
 * Defaults, parsing, the environment, printing and logging all walk that one table, so adding a
 * key is adding a row (and a field to the struct).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gdn/auth.h"
#include "gdn/config.h"
#include "gdn/error.h"
#include "gdn/log.h"

/* How a key's text becomes a value, and which C type holds it. */
enum value_kind {
    KIND_STRING,   /* char *, must not be empty */
    KIND_OPTIONAL, /* char *, an empty value leaves it NULL (unset) */
    KIND_INT,      /* int, within [min, max] */
    KIND_SIZE,     /* size_t, within [min, max] */
    KIND_BOOL,     /* int, 0 or 1 */
    KIND_LEVEL,    /* gdn_log_level_t */
};

struct config_key {
    const char *name;
    enum value_kind kind;
    size_t offset;
    long long min;
    long long max;
    bool secret;
    const char *env;           /* the environment variable that overrides the key, or NULL */
    const char *default_value; /* parsed like file text; NULL leaves the field unset */
    int (*check)(const char *value, char *reason, size_t reason_size);
};

static int check_origins(const char *value, char *reason, size_t reason_size);
static int check_endpoint(const char *value, char *reason, size_t reason_size);
static int check_bucket(const char *value, char *reason, size_t reason_size);
static int check_region(const char *value, char *reason, size_t reason_size);

/* clang-format off */
#define KEY(field, kind, min, max, secret, env, default_value, check) \
    {#field, kind, offsetof(gdn_config_t, field), min, max, secret, env, default_value, check}

static const struct config_key config_keys[] = {
    KEY(host, KIND_STRING, 0, 0, false, "HOST", "0.0.0.0", NULL),
    KEY(port, KIND_INT, 1, 65535, false, "PORT", "5000", NULL),
    KEY(data_dir, KIND_STRING, 0, 0, false, NULL, "/var/lib/garden-orchestrator", NULL),
    KEY(threads, KIND_INT, 0, 256, false, NULL, "0", NULL),
    KEY(max_body_bytes, KIND_SIZE, 1024, 1073741824, false, NULL, "1048576", NULL),
    KEY(journal_map_mb, KIND_SIZE, 16, 1048576, false, NULL, "4096", NULL),
    KEY(worker_ttl_s, KIND_INT, 1, 86400 * 30, false, NULL, "600", NULL),
    KEY(task_lease_s, KIND_INT, 1, 86400 * 7, false, NULL, "600", NULL),
    KEY(retry_base_s, KIND_INT, 1, 86400, false, NULL, "5", NULL),
    KEY(retry_max_s, KIND_INT, 1, 86400 * 7, false, NULL, "300", NULL),
    KEY(completed_ttl_s, KIND_INT, 1, 86400 * 3650, false, NULL, "604800", NULL),
    KEY(task_retention_s, KIND_INT, 0, 86400 * 3650, false, NULL, "2592000", NULL),
    KEY(idempotency_ttl_s, KIND_INT, 1, 86400 * 30, false, NULL, "86400", NULL),
    KEY(cors_origins, KIND_STRING, 0, 0, false, NULL, "*", check_origins),
    KEY(tls_cert, KIND_OPTIONAL, 0, 0, false, NULL, NULL, NULL),
    KEY(tls_key, KIND_OPTIONAL, 0, 0, false, NULL, NULL, NULL),
    KEY(minio_endpoint, KIND_OPTIONAL, 0, 0, false, "MINIO_ENDPOINT", NULL, check_endpoint),
    KEY(minio_access_key, KIND_OPTIONAL, 0, 0, false, "MINIO_ACCESS_KEY", NULL, NULL),
    KEY(minio_secret_key, KIND_OPTIONAL, 0, 0, true, "MINIO_SECRET_KEY", NULL, NULL),
    KEY(minio_secure, KIND_BOOL, 0, 1, false, "MINIO_SECURE", "false", NULL),
    KEY(minio_bucket, KIND_STRING, 0, 0, false, "MINIO_BUCKET", "garden-orchestrator",
        check_bucket),
    KEY(minio_region, KIND_STRING, 0, 0, false, "MINIO_REGION", "us-east-1", check_region),
    KEY(s3_connect_timeout_ms, KIND_INT, 100, 600000, false, NULL, "5000", NULL),
    KEY(s3_timeout_ms, KIND_INT, 100, 3600000, false, NULL, "30000", NULL),
    KEY(flush_interval_ms, KIND_INT, 10, 3600000, false, NULL, "1000", NULL),
    KEY(flush_batch_max, KIND_INT, 1, 100000, false, NULL, "256", NULL),
    KEY(flush_concurrency, KIND_INT, 1, 256, false, NULL, "8", NULL),
    KEY(flush_retry_max_ms, KIND_INT, 100, 3600000, false, NULL, "30000", NULL),
    KEY(restore_on_empty, KIND_BOOL, 0, 1, false, NULL, "true", NULL),
    KEY(restore_wait_s, KIND_INT, 0, 86400, false, NULL, "30", NULL),
    KEY(claude_mem_enabled, KIND_BOOL, 0, 1, false, "CLAUDE_MEM_ENABLED", "true", NULL),
    KEY(log_level, KIND_LEVEL, 0, 0, false, NULL, "info", NULL),
    KEY(access_log, KIND_BOOL, 0, 1, false, NULL, "false", NULL),
    KEY(auth_tokens_file, KIND_OPTIONAL, 0, 0, false, NULL, NULL, NULL),
};
/* clang-format on */

#define KEY_COUNT (sizeof(config_keys) / sizeof(config_keys[0]))

/* Room for one reason; values are echoed in reasons, so it allows for a long path. */
#define REASON_SIZE 512

#define SECRET_MASK "********"

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static void set_error(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(char *err, size_t err_size, const char *fmt, ...)
{
    if (err == NULL || err_size == 0)
        return;

    va_list args;

    va_start(args, fmt);
    vsnprintf(err, err_size, fmt, args);
    va_end(args);
}

static const struct config_key *find_key(const char *name)
{
    for (size_t i = 0; i < KEY_COUNT; i++) {
        if (strcmp(config_keys[i].name, name) == 0)
            return &config_keys[i];
    }
    return NULL;
}

static void *field_of(gdn_config_t *cfg, const struct config_key *key)
{
    return (char *)cfg + key->offset;
}

static const void *const_field_of(const gdn_config_t *cfg, const struct config_key *key)
{
    return (const char *)cfg + key->offset;
}

/*
 * Parses a whole decimal integer within [min, max]. strtoll alone would accept leading blanks
 * and stop quietly at trailing junk, so both are checked here.
 */
static int parse_integer(const char *text, long long min, long long max, long long *out,
                         char *reason, size_t reason_size)
{
    char *end = NULL;

    errno = 0;

    long long n = strtoll(text, &end, 10);
    bool starts_well = isdigit((unsigned char)text[0]) || text[0] == '-' || text[0] == '+';

    if (!starts_well || end == text || *end != '\0') {
        set_error(reason, reason_size, "\"%s\" is not a whole number", text);
        return GDN_ECONFIG;
    }
    if (errno == ERANGE || n < min || n > max) {
        set_error(reason, reason_size, "%s is out of range (%lld to %lld)", text, min, max);
        return GDN_ECONFIG;
    }
    *out = n;
    return 0;
}

static int parse_bool(const char *text, int *out, char *reason, size_t reason_size)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(text, yes[i]) == 0 || strcasecmp(text, no[i]) == 0) {
            *out = strcasecmp(text, yes[i]) == 0;
            return 0;
        }
    }
    set_error(reason, reason_size,
              "\"%s\" is not a boolean (use true/false, yes/no, on/off or 1/0)", text);
    return GDN_ECONFIG;
}

/* Replaces the string a field owns; an empty value on an optional key unsets it. */
static int store_string(gdn_config_t *cfg, const struct config_key *key, const char *value,
                        char *reason, size_t reason_size)
{
    if (value[0] == '\0' && key->kind == KIND_STRING) {
        set_error(reason, reason_size, "must not be empty");
        return GDN_ECONFIG;
    }
    if (key->check != NULL && value[0] != '\0') {
        int rc = key->check(value, reason, reason_size);

        if (rc != 0)
            return rc;
    }

    char *copy = NULL;

    if (value[0] != '\0') {
        copy = strdup(value);
        if (copy == NULL) {
            set_error(reason, reason_size, "out of memory");
            return -ENOMEM;
        }
    }

    char **field = field_of(cfg, key);

    free(*field);
    *field = copy;
    return 0;
}

/*
 * Parses `value` for one key and stores it. On failure the field is unchanged and `reason` says
 * why, without naming the key: callers prefix the key, the file line or the variable.
 */
static int apply_value(gdn_config_t *cfg, const struct config_key *key, const char *value,
                       char *reason, size_t reason_size)
{
    long long n = 0;
    int rc = 0;

    switch (key->kind) {
    case KIND_STRING:
    case KIND_OPTIONAL:
        return store_string(cfg, key, value, reason, reason_size);
    case KIND_INT:
        rc = parse_integer(value, key->min, key->max, &n, reason, reason_size);
        if (rc == 0)
            *(int *)field_of(cfg, key) = (int)n;
        return rc;
    case KIND_SIZE:
        rc = parse_integer(value, key->min, key->max, &n, reason, reason_size);
        if (rc == 0)
            *(size_t *)field_of(cfg, key) = (size_t)n;
        return rc;
    case KIND_BOOL:
        return parse_bool(value, field_of(cfg, key), reason, reason_size);
    case KIND_LEVEL:
        rc = gdn_log_parse_level(value, field_of(cfg, key));
        if (rc != 0) {
            set_error(reason, reason_size,
                      "\"%s\" is not a log level (use debug, info, warn or error)", value);
            return GDN_ECONFIG;
        }
        return 0;
    }
    return GDN_ECONFIG;
}

/*
 * Steps through a comma-separated origin list. Returns the next entry with blanks trimmed and
 * its length, or NULL after the last one; *cursor starts at the list.
 */
static const char *next_origin(const char **cursor, size_t *len)
{
    const char *start = *cursor;

    if (start == NULL)
        return NULL;

    const char *comma = strchr(start, ',');
    const char *end = comma != NULL ? comma : start + strlen(start);

    *cursor = comma != NULL ? comma + 1 : NULL;
    while (start < end && isblank((unsigned char)*start))
        start++;
    while (end > start && isblank((unsigned char)end[-1]))
        end--;
    *len = (size_t)(end - start);
    return start;
}

static int check_origins(const char *value, char *reason, size_t reason_size)
{
    const char *cursor = value;
    size_t len = 0;
    int count = 0;

    while (next_origin(&cursor, &len) != NULL) {
        if (len == 0) {
            set_error(reason, reason_size, "\"%s\" has an empty entry", value);
            return GDN_ECONFIG;
        }
        count++;
    }
    if (count > GDN_CONFIG_MAX_ORIGINS) {
        set_error(reason, reason_size, "lists %d origins; at most %d are allowed", count,
                  GDN_CONFIG_MAX_ORIGINS);
        return GDN_ECONFIG;
    }
    return 0;
}

/*
 * An S3 endpoint: `host[:port]`, or a URL `http://` or `https://` (either case) of that, with
 * at most a closing '/'. A path would be signed as part of every key and mislead the client.
 *
 * User information (`user@` or `user:password@`) is refused: requests are signed with
 * minio_access_key and minio_secret_key, so it would only be sent along as part of the host, and
 * a password there would show wherever the endpoint is printed. Any '@' counts, even after a '/',
 * because a password may hold a '/' itself; the error shows only what follows the last '@', so it
 * never repeats a credential.
 */
static int check_endpoint(const char *value, char *reason, size_t reason_size)
{
    const char *at = strrchr(value, '@');

    if (at != NULL) {
        set_error(reason, reason_size,
                  "user information before '@' is not allowed (host part \"%s\"); credentials "
                  "belong in minio_access_key and minio_secret_key",
                  at + 1);
        return GDN_ECONFIG;
    }

    const char *host = value;

    if (strncasecmp(host, "http://", 7) == 0)
        host += 7;
    else if (strncasecmp(host, "https://", 8) == 0)
        host += 8;

    size_t len = strcspn(host, "/");
    const char *colon = memchr(host, ':', len);
    const char *bracket = host[0] == '[' ? memchr(host, ']', len) : NULL;

    if (bracket != NULL)
        colon = bracket + 1 < host + len && bracket[1] == ':' ? bracket + 1 : NULL;

    size_t name_len = colon != NULL ? (size_t)(colon - host) : len;
    int port_ok = 1;

    if (colon != NULL) {
        char *end;
        long port = strtol(colon + 1, &end, 10);

        port_ok = end == host + len && end > colon + 1 && port >= 1 && port <= 65535;
    }
    if (name_len == 0 || name_len > 253 || !port_ok || strpbrk(value, " \t") != NULL ||
        (host[len] == '/' && host[len + 1] != '\0')) {
        /* With no '@' in it, the value holds no credential and can be shown whole. */
        set_error(reason, reason_size,
                  "\"%s\" is not host[:port] or an http:// or https:// URL of one", value);
        return GDN_ECONFIG;
    }
    return 0;
}

/* Tells whether `value` has `min` to `max` bytes, each a lower-case letter, a digit or one of
 * `extra`. */
static int name_of(const char *value, size_t min, size_t max, const char *extra)
{
    size_t len = strlen(value);

    if (len < min || len > max)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = value[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr(extra, c) != NULL))
            return 0;
    }
    return 1;
}

/* A bucket name as S3 and MinIO take it: 3 to 63 lower-case letters, digits, '.' and '-',
 * beginning and ending with a letter or digit. */
static int check_bucket(const char *value, char *reason, size_t reason_size)
{
    size_t len = strlen(value);

    if (!name_of(value, 3, 63, ".-") || !isalnum((unsigned char)value[0]) ||
        !isalnum((unsigned char)value[len - 1])) {
        set_error(reason, reason_size,
                  "\"%s\" is not a bucket name (3 to 63 of a-z, 0-9, '.' and '-')", value);
        return GDN_ECONFIG;
    }
    return 0;
}

/* A region name, which is signed into every request: 1 to 32 of a-z, 0-9 and '-'. */
static int check_region(const char *value, char *reason, size_t reason_size)
{
    if (!name_of(value, 1, 32, "-")) {
        set_error(reason, reason_size, "\"%s\" is not a region name (a-z, 0-9 and '-')", value);
        return GDN_ECONFIG;
    }
    return 0;
}

int gdn_config_init(gdn_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const struct config_key *key = &config_keys[i];

        if (key->default_value == NULL)
            continue;

        /* The defaults are our own text, so only a failed allocation can reject one. */
        int rc = apply_value(cfg, key, key->default_value, NULL, 0);

        if (rc != 0) {
            gdn_config_free(cfg);
            return rc;
        }
    }
    return 0;
}

void gdn_config_free(gdn_config_t *cfg)
{
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const struct config_key *key = &config_keys[i];

        if (key->kind == KIND_STRING || key->kind == KIND_OPTIONAL)
            free(*(char **)field_of(cfg, key));
    }
    memset(cfg, 0, sizeof(*cfg));
}

int gdn_config_set(gdn_config_t *cfg, const char *key, const char *value, char *err,
                   size_t err_size)
{
    const struct config_key *row = find_key(key);

    if (row == NULL) {
        set_error(err, err_size, "unknown key \"%s\"", key);
        return GDN_ECONFIG;
    }

    char reason[REASON_SIZE];
    int rc = apply_value(cfg, row, value != NULL ? value : "", reason, sizeof(reason));

    if (rc != 0)
        set_error(err, err_size, "%s: %s", key, reason);
    return rc;
}

static char *skip_blanks(char *p)
{
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

static void trim_end(char *start, char *end)
{
    while (end > start && isspace((unsigned char)end[-1]))
        end--;
    *end = '\0';
}

/*
 * Splits the value part of a line (after `=`) in place: a double-quoted value runs to the next
 * quote and may hold `#`; a bare value ends at a `#` that follows whitespace.
 */
static int split_value(char *text, char **value, char *reason, size_t reason_size)
{
    char *start = skip_blanks(text);

    if (*start == '"') {
        char *close = strchr(start + 1, '"');

        if (close == NULL) {
            set_error(reason, reason_size, "missing closing double quote");
            return GDN_ECONFIG;
        }
        *close = '\0';

        char *rest = skip_blanks(close + 1);

        if (*rest != '\0' && *rest != '#') {
            set_error(reason, reason_size, "unexpected text after the closing quote");
            return GDN_ECONFIG;
        }
        *value = start + 1;
        return 0;
    }

    char *end = start;

    while (*end != '\0' && !(*end == '#' && isspace((unsigned char)end[-1])))
        end++;
    trim_end(start, end);
    *value = start;
    return 0;
}

/*
 * Splits one config line in place into key and value. Returns 0 for a `key = value` line, 1 for
 * a blank or comment line, GDN_ECONFIG with a reason otherwise.
 */
static int split_line(char *line, char **key, char **value, char *reason, size_t reason_size)
{
    char *start = skip_blanks(line);

    if (*start == '\0' || *start == '#')
        return 1;

    char *end = start;

    while (*end != '\0' && *end != '=' && !(*end == '#' && isspace((unsigned char)end[-1])))
        end++;
    if (*end != '=') {
        set_error(reason, reason_size, "missing '=' (expected key = value)");
        return GDN_ECONFIG;
    }

    char *after = end + 1;

    trim_end(start, end);
    if (*start == '\0') {
        set_error(reason, reason_size, "missing key before '='");
        return GDN_ECONFIG;
    }
    *key = start;
    return split_value(after, value, reason, reason_size);
}

/* Applies one line of the file; `length` is what getline read, to catch embedded NUL bytes. */
static int apply_line(gdn_config_t *cfg, char *line, size_t length, char *reason,
                      size_t reason_size)
{
    if (strlen(line) != length) {
        set_error(reason, reason_size, "line contains a NUL byte");
        return GDN_ECONFIG;
    }

    char *key = NULL;
    char *value = NULL;
    int rc = split_line(line, &key, &value, reason, reason_size);

    if (rc == 1)
        return 0;
    if (rc != 0)
        return rc;
    return gdn_config_set(cfg, key, value, reason, reason_size);
}

int gdn_config_load_file(gdn_config_t *cfg, const char *path, char *err, size_t err_size)
{
    FILE *file = fopen(path, "re");

    if (file == NULL) {
        int rc = -errno;

        set_error(err, err_size, "%s: %s", path, gdn_strerror(rc));
        return rc;
    }

    char *line = NULL;
    size_t capacity = 0;
    unsigned line_number = 0;
    int rc = 0;
    char reason[REASON_SIZE];

    errno = 0;
    for (;;) {
        ssize_t length = getline(&line, &capacity, file);

        if (length < 0)
            break;
        line_number++;
        rc = apply_line(cfg, line, (size_t)length, reason, sizeof(reason));
        if (rc != 0) {
            set_error(err, err_size, "%s:%u: %s", path, line_number, reason);
            goto Exit;
        }
    }
    if (ferror(file)) {
        rc = errno != 0 ? -errno : -EIO;
        set_error(err, err_size, "%s: %s", path, gdn_strerror(rc));
    }

Exit:
    free(line);
    fclose(file);
    return rc;
}

int gdn_config_apply_env(gdn_config_t *cfg, char *err, size_t err_size)
{
    char reason[REASON_SIZE];

    for (size_t i = 0; i < KEY_COUNT; i++) {
        const struct config_key *key = &config_keys[i];
        const char *value = key->env != NULL ? getenv(key->env) : NULL;

        if (value == NULL || value[0] == '\0')
            continue;

        int rc = apply_value(cfg, key, value, reason, sizeof(reason));

        if (rc != 0) {
            set_error(err, err_size, "%s: %s", key->env, reason);
            return rc;
        }
    }
    return 0;
}

/* Two settings that only make sense together must be both set or both unset. */
static int check_pair(const char *first_name, const char *first, const char *second_name,
                      const char *second, char *err, size_t err_size)
{
    if ((first == NULL) == (second == NULL))
        return 0;
    set_error(err, err_size, "%s and %s must be set together (%s is set, %s is not)", first_name,
              second_name, first != NULL ? first_name : second_name,
              first != NULL ? second_name : first_name);
    return GDN_ECONFIG;
}

int gdn_config_validate(const gdn_config_t *cfg, char *err, size_t err_size)
{
    int rc = check_pair("tls_cert", cfg->tls_cert, "tls_key", cfg->tls_key, err, err_size);

    if (rc == 0)
        rc = check_pair("minio_access_key", cfg->minio_access_key, "minio_secret_key",
                        cfg->minio_secret_key, err, err_size);
    if (rc != 0 || cfg->auth_tokens_file == NULL)
        return rc;

    /* The tokens file is read here too, so that --check-config finds its mistakes. */
    gdn_auth_t *auth = NULL;
    int world_readable;

    rc = gdn_auth_load(cfg->auth_tokens_file, &auth, &world_readable, err, err_size);
    gdn_auth_free(auth);
    return rc != 0 ? GDN_ECONFIG : 0;
}

/*
 * Renders one key's value as text: numbers in decimal, booleans as true/false, unset strings
 * as empty and a set secret as the mask. Returns either buf or a constant string.
 */
static const char *format_value(const gdn_config_t *cfg, const struct config_key *key, char *buf,
                                size_t buf_size)
{
    const void *field = const_field_of(cfg, key);

    switch (key->kind) {
    case KIND_STRING:
    case KIND_OPTIONAL: {
        const char *text = *(char *const *)field;

        if (text == NULL)
            return "";
        return key->secret ? SECRET_MASK : text;
    }
    case KIND_INT:
        snprintf(buf, buf_size, "%d", *(const int *)field);
        return buf;
    case KIND_SIZE:
        snprintf(buf, buf_size, "%zu", *(const size_t *)field);
        return buf;
    case KIND_BOOL:
        return *(const int *)field ? "true" : "false";
    case KIND_LEVEL: {
        unsigned level = (unsigned)*(const gdn_log_level_t *)field;

        return level <= GDN_LOG_ERROR ? level_names[level] : "unknown";
    }
    }
    return "";
}

void gdn_config_print(const gdn_config_t *cfg, FILE *out)
{
    char buf[32];

    for (size_t i = 0; i < KEY_COUNT; i++) {
        const struct config_key *key = &config_keys[i];

        fprintf(out, "%s = %s\n", key->name, format_value(cfg, key, buf, sizeof(buf)));
    }
}

void gdn_config_log(const gdn_config_t *cfg)
{
    /* Access-log lines are info lines: say once that a higher log_level drops them all. */
    if (cfg->access_log && !gdn_log_enabled(GDN_LOG_INFO))
        gdn_log(GDN_LOG_WARN, "config", "access_log_dropped",
                "reason=\"access_log lines are written at info level, below log_level\"");
    if (!gdn_log_enabled(GDN_LOG_INFO))
        return;

    /*
     * Larger than a log line, so that gdn_log, which cuts at a whole field, decides what is
     * dropped; a field that does not fit here is left out whole for the same reason.
     */
    char fields[4096];
    size_t used = 0;
    char buf[32];
    char quoted[1024];

    fields[0] = '\0';
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const struct config_key *key = &config_keys[i];
        const char *text = format_value(cfg, key, buf, sizeof(buf));
        int n = snprintf(fields + used, sizeof(fields) - used, "%s%s=%s", used > 0 ? " " : "",
                         key->name, gdn_log_quote(text, quoted, sizeof(quoted)));

        if (n < 0 || (size_t)n >= sizeof(fields) - used) {
            fields[used] = '\0';
            break;
        }
        used += (size_t)n;
    }
    gdn_log(GDN_LOG_INFO, "config", "config_effective", "%s", fields);
}

int gdn_config_origin_allowed(const gdn_config_t *cfg, const char *origin, size_t len)
{
    const char *cursor = cfg->cors_origins;
    size_t entry_len = 0;

    for (;;) {
        const char *entry = next_origin(&cursor, &entry_len);

        if (entry == NULL)
            return 0;
        if (entry_len == 1 && entry[0] == '*')
            return 1;
        if (origin != NULL && entry_len == len && memcmp(entry, origin, len) == 0)
            return 1;
    }
}
