/*
 * Bearer tokens.
 *
 * Only the SHA-256 digest of each token is kept. A presented token is hashed once and its
 * digest compared with every known digest using CRYPTO_memcmp, without stopping at a match:
 * comparing digests of fixed length also hides the length of the real tokens, which a plain
 * byte comparison would give away.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gdn/auth.h"
#include "gdn/error.h"
#include "gdn/queue.h"

#define DIGEST_LEN 32
#define NAME_MAX_LEN 63
#define FILE_MAX_BYTES (1024 * 1024)

typedef enum scope {
    SCOPE_ADMIN,
    SCOPE_PRODUCER,
    SCOPE_WORKER,
    SCOPE_METRICS,
} scope_t;

static const char *const scope_names[] = {"admin", "producer", "worker", "metrics"};

struct gdn_auth_token {
    char name[NAME_MAX_LEN + 1];
    scope_t scope;
    unsigned char digest[DIGEST_LEN];
    char *roles_text; /* the roles, NUL-separated; NULL for any role */
    const char *roles[GDN_QUEUE_MAX_ROLES];
    size_t role_lens[GDN_QUEUE_MAX_ROLES];
    int role_count;
};

struct gdn_auth {
    gdn_auth_token_t *tokens;
    size_t count;
    size_t cap;
};

static int digest_of(const char *token, size_t len, unsigned char out[DIGEST_LEN])
{
    unsigned int out_len = 0;

    if (EVP_Digest(token, len, out, &out_len, EVP_sha256(), NULL) != 1 || out_len != DIGEST_LEN)
        return -ENOMEM;
    return 0;
}

/* Splits a line into at most `max` whitespace-separated fields; returns how many it found. */
static int split_fields(char *line, char **fields, size_t *lens, int max)
{
    int count = 0;
    char *at = line;

    while (*at != '\0') {
        while (*at == ' ' || *at == '\t')
            at++;
        if (*at == '\0')
            break;
        if (count == max)
            return max + 1;
        fields[count] = at;
        while (*at != '\0' && *at != ' ' && *at != '\t')
            at++;
        lens[count] = (size_t)(at - fields[count]);
        count++;
        if (*at != '\0')
            *at++ = '\0';
    }
    return count;
}

static int name_valid(const char *name, size_t len)
{
    if (len == 0 || len > NAME_MAX_LEN)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

/* Fields are already split on blanks, so only control and non-ASCII bytes remain to refuse. */
static int token_valid(const char *token, size_t len)
{
    if (len < GDN_AUTH_TOKEN_MIN || len > GDN_AUTH_TOKEN_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)token[i];

        if (c < 0x21 || c > 0x7e)
            return 0;
    }
    return 1;
}

/* Splits the roles field in place at commas; empty items are an error. */
static int read_roles(gdn_auth_token_t *token, const char *text, size_t len)
{
    token->roles_text = malloc(len + 1);
    if (token->roles_text == NULL)
        return -ENOMEM;
    memcpy(token->roles_text, text, len + 1);

    char *at = token->roles_text;

    for (;;) {
        char *comma = strchr(at, ',');
        size_t role_len = comma != NULL ? (size_t)(comma - at) : strlen(at);

        if (role_len == 0 || role_len > GDN_JOURNAL_ROLE_MAX ||
            token->role_count == GDN_QUEUE_MAX_ROLES)
            return GDN_EINVALID;
        token->roles[token->role_count] = at;
        token->role_lens[token->role_count] = role_len;
        token->role_count++;
        if (comma == NULL)
            return 0;
        *comma = '\0';
        at = comma + 1;
    }
}

static void free_token(gdn_auth_token_t *token)
{
    free(token->roles_text);
}

void gdn_auth_free(gdn_auth_t *auth)
{
    if (auth == NULL)
        return;
    for (size_t i = 0; i < auth->count; i++)
        free_token(&auth->tokens[i]);
    OPENSSL_cleanse(auth->tokens, auth->cap * sizeof(*auth->tokens));
    free(auth->tokens);
    free(auth);
}

static gdn_auth_token_t *new_token(gdn_auth_t *auth)
{
    if (auth->count == auth->cap) {
        size_t cap = auth->cap ? auth->cap * 2 : 8;
        gdn_auth_token_t *grown = realloc(auth->tokens, cap * sizeof(*grown));

        if (grown == NULL)
            return NULL;
        auth->tokens = grown;
        auth->cap = cap;
    }
    gdn_auth_token_t *token = &auth->tokens[auth->count];

    memset(token, 0, sizeof(*token));
    return token;
}

/*
 * Parses one line that holds fields. Returns 0, or GDN_ECONFIG / -ENOMEM with `err` set to
 * what is wrong (without the line number, which the caller adds).
 */
static int parse_line(gdn_auth_t *auth, char *line, char *err, size_t err_size)
{
    char *fields[4];
    size_t lens[4];
    int count = split_fields(line, fields, lens, 4);

    if (count < 3 || count > 4) {
        snprintf(err, err_size,
                 "expected `name scope token [roles]` (a `#` after a blank starts "
                 "a comment, so no field may begin with `#`)");
        return GDN_ECONFIG;
    }
    if (!name_valid(fields[0], lens[0])) {
        snprintf(err, err_size, "the name must be 1 to 63 letters, digits, '-', '_' or '.'");
        return GDN_ECONFIG;
    }

    int scope = -1;

    for (int s = 0; s < (int)(sizeof(scope_names) / sizeof(scope_names[0])); s++)
        if (strcmp(fields[1], scope_names[s]) == 0)
            scope = s;
    /* A field long enough to be a token is not quoted: on a line whose fields are out of
     * order, it may be one. */
    if (scope < 0 && lens[1] < GDN_AUTH_TOKEN_MIN) {
        snprintf(err, err_size, "unknown scope \"%s\" (admin, producer, worker or metrics)",
                 fields[1]);
        return GDN_ECONFIG;
    }
    if (scope < 0) {
        snprintf(err, err_size, "unknown scope (admin, producer, worker or metrics)");
        return GDN_ECONFIG;
    }
    if (!token_valid(fields[2], lens[2])) {
        /* The name is left out: with the name and token swapped, it would be the token. */
        snprintf(err, err_size, "the token must be %d to %d printable characters",
                 GDN_AUTH_TOKEN_MIN, GDN_AUTH_TOKEN_MAX);
        return GDN_ECONFIG;
    }
    if (count == 4 && scope != SCOPE_WORKER) {
        snprintf(err, err_size, "only worker tokens take roles");
        return GDN_ECONFIG;
    }

    gdn_auth_token_t *token = new_token(auth);

    if (token == NULL)
        return -ENOMEM;
    memcpy(token->name, fields[0], lens[0] + 1);
    token->scope = (scope_t)scope;

    int rc = digest_of(fields[2], lens[2], token->digest);

    OPENSSL_cleanse(fields[2], lens[2]);
    if (rc == 0 && count == 4)
        rc = read_roles(token, fields[3], lens[3]);
    if (rc == GDN_EINVALID) {
        snprintf(err, err_size, "roles must be a comma-separated list of 1 to %d names",
                 GDN_QUEUE_MAX_ROLES);
        rc = GDN_ECONFIG;
    }
    for (size_t i = 0; rc == 0 && i < auth->count; i++) {
        if (strcmp(auth->tokens[i].name, token->name) == 0) {
            snprintf(err, err_size, "the name \"%s\" is used twice", token->name);
            rc = GDN_ECONFIG;
        } else if (CRYPTO_memcmp(auth->tokens[i].digest, token->digest, DIGEST_LEN) == 0) {
            snprintf(err, err_size, "\"%s\" has the same token as \"%s\"", token->name,
                     auth->tokens[i].name);
            rc = GDN_ECONFIG;
        }
    }
    if (rc != 0) {
        free_token(token);
        return rc;
    }
    auth->count++;
    return 0;
}

/*
 * Ends a line at its comment: a `#` at its start or after a blank, so that a token may still
 * hold `#`. A carriage return (a file written on Windows) ends the line too.
 */
static void cut_comment(char *line)
{
    for (char *at = line; *at != '\0'; at++) {
        if (*at == '\r' || (*at == '#' && (at == line || at[-1] == ' ' || at[-1] == '\t'))) {
            *at = '\0';
            return;
        }
    }
}

int gdn_auth_parse(const char *text, size_t len, gdn_auth_t **out, char *err, size_t err_size)
{
    gdn_auth_t *auth = calloc(1, sizeof(*auth));
    char *copy = malloc(len + 1);
    int rc = 0;

    if (auth == NULL || copy == NULL) {
        rc = -ENOMEM;
        goto done;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';

    char *line = copy;
    int number = 1;

    while (rc == 0 && line != NULL) {
        char *newline = memchr(line, '\n', (size_t)(copy + len - line));
        size_t line_len = (size_t)((newline != NULL ? newline : copy + len) - line);

        if (memchr(line, '\0', line_len) != NULL) {
            snprintf(err, err_size, "line %d: holds a NUL byte", number);
            rc = GDN_ECONFIG;
            break;
        }
        line[line_len] = '\0';
        cut_comment(line);
        if (line[strspn(line, " \t")] != '\0') {
            char reason[160];

            rc = parse_line(auth, line, reason, sizeof(reason));
            if (rc == GDN_ECONFIG)
                snprintf(err, err_size, "line %d: %s", number, reason);
        }
        line = newline != NULL ? newline + 1 : NULL;
        number++;
    }
    if (rc == 0 && auth->count == 0) {
        snprintf(err, err_size, "lists no token; leave auth_tokens_file unset to run without");
        rc = GDN_ECONFIG;
    }

done:
    if (copy != NULL) {
        OPENSSL_cleanse(copy, len);
        free(copy);
    }
    if (rc != 0) {
        if (rc == -ENOMEM)
            snprintf(err, err_size, "out of memory");
        gdn_auth_free(auth);
        return rc;
    }
    *out = auth;
    return 0;
}

int gdn_auth_load(const char *path, gdn_auth_t **out, int *world_readable, char *err,
                  size_t err_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;

    if (fd < 0) {
        snprintf(err, err_size, "cannot open %s: %s", path, strerror(errno));
        return GDN_ECONFIG;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > FILE_MAX_BYTES) {
        snprintf(err, err_size, "%s is not a regular file of at most 1 MiB", path);
        close(fd);
        return GDN_ECONFIG;
    }

    size_t size = (size_t)st.st_size;
    char *text = malloc(size + 1);
    size_t got = 0;

    while (text != NULL && got < size) {
        ssize_t n = read(fd, text + got, size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (text == NULL || got != size) {
        snprintf(err, err_size, "cannot read %s", path);
        free(text);
        return GDN_ECONFIG;
    }

    char reason[224];
    int rc = gdn_auth_parse(text, size, out, reason, sizeof(reason));

    OPENSSL_cleanse(text, size);
    free(text);
    if (rc != 0) {
        snprintf(err, err_size, "%s: %s", path, reason);
        return rc == -ENOMEM ? rc : GDN_ECONFIG;
    }
    *world_readable = (st.st_mode & S_IROTH) != 0;
    return 0;
}

size_t gdn_auth_count(const gdn_auth_t *auth)
{
    return auth != NULL ? auth->count : 0;
}

const gdn_auth_token_t *gdn_auth_find(const gdn_auth_t *auth, const char *header, size_t len)
{
    static const char scheme[] = "bearer";
    size_t scheme_len = sizeof(scheme) - 1;

    if (auth == NULL || header == NULL || len <= scheme_len ||
        strncasecmp(header, scheme, scheme_len) != 0 ||
        (header[scheme_len] != ' ' && header[scheme_len] != '\t'))
        return NULL;

    const char *token = header + scheme_len;
    const char *end = header + len;

    while (token < end && (*token == ' ' || *token == '\t'))
        token++;
    while (end > token && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (!token_valid(token, (size_t)(end - token)))
        return NULL;

    unsigned char digest[DIGEST_LEN];

    if (digest_of(token, (size_t)(end - token), digest) != 0)
        return NULL;

    const gdn_auth_token_t *found = NULL;

    for (size_t i = 0; i < auth->count; i++)
        if (CRYPTO_memcmp(auth->tokens[i].digest, digest, DIGEST_LEN) == 0)
            found = &auth->tokens[i];
    return found;
}

int gdn_auth_permits(const gdn_auth_token_t *token, gdn_auth_action_t action)
{
    switch (token->scope) {
    case SCOPE_ADMIN:
        return 1;
    case SCOPE_PRODUCER:
        return action == GDN_AUTH_READ || action == GDN_AUTH_CREATE || action == GDN_AUTH_CANCEL ||
               action == GDN_AUTH_STATS;
    case SCOPE_WORKER:
        return action == GDN_AUTH_POLL;
    case SCOPE_METRICS:
        return action == GDN_AUTH_METRICS;
    }
    return 0;
}

const char *gdn_auth_name(const gdn_auth_token_t *token)
{
    return token->name;
}

static int role_listed(const gdn_auth_token_t *token, const char *role, size_t len)
{
    for (int i = 0; i < token->role_count; i++)
        if (token->role_lens[i] == len && memcmp(token->roles[i], role, len) == 0)
            return 1;
    return 0;
}

int gdn_auth_limit_roles(const gdn_auth_token_t *token, const char **roles, size_t *lens,
                         int *count, int max)
{
    if (token == NULL || token->role_count == 0)
        return 0;
    if (*count == 0) {
        int n = token->role_count < max ? token->role_count : max;

        for (int i = 0; i < n; i++) {
            roles[i] = token->roles[i];
            lens[i] = token->role_lens[i];
        }
        *count = n;
        return 0;
    }
    for (int i = 0; i < *count; i++)
        if (!role_listed(token, roles[i], lens[i]))
            return GDN_EFORBIDDEN;
    return 0;
}
