/*
 * garden-orchestrator: the task-queue server's entry point.
 *
 * Reads the configuration (defaults, then the config file, the environment and the command
 * line, each overriding the one before), opens the journal, starts the journal writer and the
 * HTTP loops, and serves until SIGTERM or SIGINT. Then it drains and exits 0.
 *
 * `garden-orchestrator restore` rebuilds the journal from the bucket instead, and exits.
 * `garden-orchestrator import-kv FILE` loads an export of the old key-value store into the
 * journal, and exits. Serving, restore and import-kv each hold a lock on the data directory
 * (flock on the file `lock` in it), so that no two of them use one journal at once.
 *
 * Exit codes: 0 after a clean stop, or an import that read its file (even with rejected
 * records); 1 when the server cannot start (a port in use, a TLS file that cannot be read);
 * 2 for usage or configuration errors, or an import file that cannot be read or is malformed;
 * 3 when the data directory or the journal cannot be used (unwritable, corrupt, another schema,
 * locked by another process, another user's while running as root, not empty for a restore, or
 * too small for an import); 4 when the bucket cannot be read and
 * is needed (a restore, or a start with an empty journal).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "gdn/clock.h"
#include "gdn/config.h"
#include "gdn/error.h"
#include "gdn/http.h"
#include "gdn/import.h"
#include "gdn/journal.h"
#include "gdn/log.h"
#include "gdn/restore.h"
#include "gdn/writer.h"

#define EXIT_START 1
#define EXIT_USAGE 2
#define EXIT_DATA 3
#define EXIT_BUCKET 4

/* How long a stopping server waits for in-flight requests, in milliseconds: the process must
 * be gone within 5 s of SIGTERM. */
#define DRAIN_MS 4000

/* Reader slots beyond one per loop thread, for the flusher and tools run beside the server. */
#define SPARE_READERS 16

typedef struct options {
    const char *config_file;
    const char *listen;
    const char *data_dir;
    const char *threads;
    int check_config;
    int restore;             /* the restore subcommand */
    int force;               /* restore: replace a non-empty journal */
    int import;              /* the import-kv subcommand */
    int dry_run;             /* import-kv: judge everything, write nothing */
    const char *import_file; /* import-kv: the export to read */
} options_t;

static void print_usage(FILE *out)
{
    fprintf(out, "Usage: garden-orchestrator [OPTIONS]\n"
                 "       garden-orchestrator restore [OPTIONS] [--force]\n"
                 "       garden-orchestrator import-kv FILE [OPTIONS] [--dry-run]\n"
                 "\n"
                 "A task-queue server: every change is journaled to local storage before it is\n"
                 "acknowledged.\n"
                 "\n"
                 "Options:\n"
                 "  --config FILE      read settings from FILE (key = value lines)\n"
                 "  --listen HOST:PORT address to serve on (default 0.0.0.0:5000)\n"
                 "  --data-dir DIR     journal directory (default /var/lib/garden-orchestrator)\n"
                 "  --threads N        HTTP loop threads (default: one per core)\n"
                 "  --check-config     validate and print the effective settings, then exit\n"
                 "  --version          print the version and exit\n"
                 "  --help             print this help and exit\n"
                 "\n"
                 "restore rebuilds the journal from the bucket and exits; stop the server first.\n"
                 "It refuses a journal that holds records unless --force is given, which\n"
                 "replaces them.\n"
                 "\n"
                 "import-kv loads FILE, an export of the old key-value store: a JSON array of\n"
                 "{\"key\": K, \"value\": V} entries with keys task:ID, worker:ID, completed:ID\n"
                 "and queue:pending (only cross-checked: pending tasks are queued in claim\n"
                 "order), V being JSON or a string holding JSON. Records the journal already\n"
                 "holds are skipped, so running it twice imports nothing more. Everything is\n"
                 "written in one transaction: a malformed file or a failure writes nothing.\n"
                 "--dry-run judges every entry and writes nothing. On stdout it prints one line\n"
                 "per skipped or rejected entry (skipped|rejected key=K [id=ID] reason=R) and\n"
                 "the summary line last. Imported records are logged for upload: with a bucket\n"
                 "configured they reach it when the server next starts.\n"
                 "\n"
                 "Stop the server before restore or import-kv: serving, restore and import-kv\n"
                 "lock the data directory, and a second one exits with code 3.\n"
                 "\n"
                 "Precedence: command line, then environment, then config file, then defaults.\n"
                 "Exit codes: 0 clean stop (or the import file was read), 1 cannot start,\n"
                 "2 bad usage or configuration (or a malformed import file), 3 data directory\n"
                 "or journal unusable, locked, another user's (run as root) or too small for\n"
                 "the import, 4 bucket unreadable when needed.\n");
}

/* Parses the command line into `options`. Returns -1 to continue, or an exit code. */
static int parse_options(int argc, char **argv, options_t *options)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},   {"listen", required_argument, NULL, 'l'},
        {"data-dir", required_argument, NULL, 'd'}, {"threads", required_argument, NULL, 't'},
        {"check-config", no_argument, NULL, 'k'},   {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},           {"force", no_argument, NULL, 'f'},
        {"dry-run", no_argument, NULL, 'n'},        {NULL, 0, NULL, 0},
    };

    if (argc > 1 && strcmp(argv[1], "restore") == 0)
        options->restore = 1;
    else if (argc > 1 && strcmp(argv[1], "import-kv") == 0)
        options->import = 1;
    if (options->restore || options->import) {
        argv[1] = argv[0];
        argc--;
        argv++;
    }

    for (;;) {
        int opt = getopt_long(argc, argv, "", longopts, NULL);

        if (opt == -1)
            break;
        switch (opt) {
        case 'c':
            options->config_file = optarg;
            break;
        case 'l':
            options->listen = optarg;
            break;
        case 'd':
            options->data_dir = optarg;
            break;
        case 't':
            options->threads = optarg;
            break;
        case 'k':
            options->check_config = 1;
            break;
        case 'f':
            options->force = 1;
            break;
        case 'n':
            options->dry_run = 1;
            break;
        case 'v':
            printf("garden-orchestrator %s\n", GDN_VERSION);
            return 0;
        case 'h':
            print_usage(stdout);
            return 0;
        default:
            print_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (options->import && optind < argc)
        options->import_file = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "garden-orchestrator: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (options->import && options->import_file == NULL) {
        fprintf(stderr, "garden-orchestrator: import-kv needs the FILE to import\n");
        return EXIT_USAGE;
    }
    if (options->dry_run && !options->import) {
        fprintf(stderr, "garden-orchestrator: --dry-run belongs to the import-kv command\n");
        return EXIT_USAGE;
    }
    if (options->force && !options->restore) {
        fprintf(stderr, "garden-orchestrator: --force belongs to the restore command\n");
        return EXIT_USAGE;
    }
    return -1;
}

/* Splits HOST:PORT (or [V6]:PORT) and applies both. */
static int apply_listen(gdn_config_t *config, const char *listen, char *err, size_t err_size)
{
    const char *colon = strrchr(listen, ':');

    if (colon == NULL || colon == listen) {
        snprintf(err, err_size, "--listen: expected HOST:PORT, got '%s'", listen);
        return GDN_ECONFIG;
    }

    char host[256];
    const char *start = listen;
    size_t len = (size_t)(colon - listen);

    if (listen[0] == '[' && colon[-1] == ']') {
        start++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof(host)) {
        snprintf(err, err_size, "--listen: bad host in '%s'", listen);
        return GDN_ECONFIG;
    }
    memcpy(host, start, len);
    host[len] = '\0';

    int rc = gdn_config_set(config, "host", host, err, err_size);

    return rc != 0 ? rc : gdn_config_set(config, "port", colon + 1, err, err_size);
}

/* Builds the effective configuration. Returns 0 or prints the reason and returns non-zero. */
static int load_config(gdn_config_t *config, const options_t *options)
{
    char err[512] = "";
    int rc = gdn_config_init(config);

    if (rc == 0 && options->config_file != NULL)
        rc = gdn_config_load_file(config, options->config_file, err, sizeof(err));
    if (rc == 0)
        rc = gdn_config_apply_env(config, err, sizeof(err));
    if (rc == 0 && options->listen != NULL)
        rc = apply_listen(config, options->listen, err, sizeof(err));
    if (rc == 0 && options->data_dir != NULL)
        rc = gdn_config_set(config, "data_dir", options->data_dir, err, sizeof(err));
    if (rc == 0 && options->threads != NULL)
        rc = gdn_config_set(config, "threads", options->threads, err, sizeof(err));
    if (rc == 0)
        rc = gdn_config_validate(config, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "garden-orchestrator: %s\n", err[0] ? err : gdn_strerror(rc));
    return rc;
}

/* Creates the data directory (and its parents) if it does not exist yet. */
static int make_data_dir(const char *path)
{
    char partial[4096];
    size_t len = strlen(path);

    if (len == 0 || len >= sizeof(partial))
        return -ENAMETOOLONG;
    memcpy(partial, path, len + 1);
    for (char *at = partial + 1; *at != '\0'; at++) {
        if (*at != '/')
            continue;
        *at = '\0';
        if (mkdir(partial, 0750) != 0 && errno != EEXIST)
            return -errno;
        *at = '/';
    }
    if (mkdir(partial, 0750) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/*
 * Takes the data directory's lock: an exclusive flock on the file `lock` in it, held until the
 * process closes it or ends (the kernel drops it even after SIGKILL). Serving, restore and
 * import-kv all take it: LMDB lets several processes share a journal, but each of these
 * assumes it is the journal's only writer (the server's queue state, a restore that clears,
 * an import that checks what exists before it writes).
 * Returns 0 with *fd set, GDN_ECONFLICT when another process holds it, or -errno.
 */
static int lock_data_dir(const char *data_dir, int *fd)
{
    char path[4096];

    if (snprintf(path, sizeof(path), "%s/lock", data_dir) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (*fd < 0)
        return -errno;
    if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
        return 0;

    int rc = errno == EWOULDBLOCK ? GDN_ECONFLICT : -errno;

    close(*fd);
    *fd = -1;
    return rc;
}

/*
 * Root must not create files in a data directory that belongs to another user, such as the
 * service user the package runs the server as: the journal and lock files it made would be
 * root's, and the server could no longer open them. Returns 0, or -EPERM after saying which
 * user to run as.
 */
static int check_data_dir_owner(const char *data_dir)
{
    struct stat st;

    if (geteuid() != 0 || stat(data_dir, &st) != 0 || st.st_uid == 0)
        return 0;

    const struct passwd *owner = getpwuid(st.st_uid);
    char name[64];
    char quoted_dir[PATH_MAX + 8];

    if (owner != NULL)
        snprintf(name, sizeof(name), "%s", owner->pw_name);
    else
        snprintf(name, sizeof(name), "%u", (unsigned)st.st_uid);
    gdn_log(GDN_LOG_ERROR, "main", "data_dir_owner",
            "data_dir=%s owner=%s reason=\"run this as the data directory's owner (runuser -u %s "
            "-- garden-orchestrator ...): files root made there would keep the server from "
            "opening its journal\"",
            gdn_log_quote(data_dir, quoted_dir, sizeof(quoted_dir)), name, name);
    return -EPERM;
}

/* Creates the data directory if needed, locks it and opens its journal. On success the caller
 * owns *journal and *lock_fd and releases both with close_journal. */
static int open_journal(const gdn_config_t *config, unsigned readers, gdn_journal_t **journal,
                        int *lock_fd)
{
    char quoted_dir[PATH_MAX + 8];
    char detail[256];
    int rc = check_data_dir_owner(config->data_dir);

    *lock_fd = -1;
    if (rc != 0)
        return rc;
    gdn_log_quote(config->data_dir, quoted_dir, sizeof(quoted_dir));
    rc = make_data_dir(config->data_dir);
    if (rc == 0)
        rc = lock_data_dir(config->data_dir, lock_fd);
    if (rc == GDN_ECONFLICT) {
        gdn_log(GDN_LOG_ERROR, "main", "data_dir_locked",
                "data_dir=%s reason=\"another garden-orchestrator process (a server, restore or "
                "import-kv) is using this data directory\"",
                quoted_dir);
        return rc;
    }
    if (rc == 0)
        rc = gdn_journal_open(journal, config->data_dir, config->journal_map_mb, readers);
    if (rc != 0) {
        gdn_log(GDN_LOG_ERROR, "journal", "open_failed", "data_dir=%s reason=\"%s\" detail=%s",
                quoted_dir, gdn_strerror(rc),
                gdn_log_quote(gdn_journal_last_error(), detail, sizeof(detail)));
        if (*lock_fd >= 0)
            close(*lock_fd);
        *lock_fd = -1;
    }
    return rc;
}

/* Closes the journal, then lets go of the data directory. Both may be unset. */
static void close_journal(gdn_journal_t *journal, int lock_fd)
{
    gdn_journal_close(journal);
    if (lock_fd >= 0)
        close(lock_fd);
}

/* Blocks the stop signals in every thread (threads inherit the mask) so that only the main
 * thread receives them, synchronously, in sigwait. */
static void block_signals(sigset_t *stop)
{
    sigemptyset(stop);
    sigaddset(stop, SIGTERM);
    sigaddset(stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, stop, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Tells whether the journal holds no records and no changes for the bucket. A journal whose
 * last records were removed while the bucket was out of reach still holds their deletions: it
 * is newer than the bucket, which must not be restored over it. */
static int journal_empty(gdn_journal_t *journal)
{
    gdn_journal_reader_t *reader;
    gdn_journal_txn_t *txn;
    int64_t records = -1;
    int64_t changes = -1;

    if (gdn_journal_reader_open(journal, &reader) != 0)
        return 0;
    if (gdn_journal_read_begin(reader, &txn) == 0) {
        records = gdn_journal_record_count(txn);
        changes = gdn_journal_dirty_count(txn);
        gdn_journal_read_end(reader);
    }
    gdn_journal_reader_close(reader);
    return records == 0 && changes == 0;
}

static void log_restore(const gdn_restore_report_t *report)
{
    gdn_log(GDN_LOG_INFO, "restore", "restore_done",
            "listed=%llu restored=%llu tasks=%llu pending=%llu completed=%llu workers=%llu "
            "skipped=%llu seconds=%.3f",
            (unsigned long long)report->listed, (unsigned long long)report->restored,
            (unsigned long long)report->tasks, (unsigned long long)report->pending,
            (unsigned long long)report->completed, (unsigned long long)report->workers,
            (unsigned long long)report->skipped, (double)report->elapsed_us / 1e6);
}

/*
 * With an empty journal, the bucket decides: if it holds records the server restores them
 * before serving, so that it never starts empty beside a full bucket. The bucket is tried
 * for restore_wait_s; a stop signal ends the wait. Returns 0 to go on serving, or an exit
 * code.
 */
static int restore_if_empty(const gdn_config_t *config, gdn_journal_t *journal,
                            const sigset_t *stop)
{
    if (config->minio_endpoint == NULL || !config->restore_on_empty || !journal_empty(journal))
        return 0;

    int64_t deadline = gdn_clock_now_us() + (int64_t)config->restore_wait_s * 1000000;
    char reason[128] = "";
    int has = 0;

    for (int attempt = 1;; attempt++) {
        if (gdn_restore_probe(config, &has, reason, sizeof(reason)) == 0)
            break;
        /* The code comes from the endpoint's answer: quoted, it cannot pose as other fields. */
        char code[160];

        gdn_log_quote(reason, code, sizeof(code));
        if (gdn_clock_now_us() >= deadline) {
            gdn_log(GDN_LOG_ERROR, "main", "bucket_unreachable",
                    "bucket=%s code=%s waited_s=%d reason=\"the journal is empty and the "
                    "bucket may hold records: refusing to start empty\"",
                    config->minio_bucket, code, config->restore_wait_s);
            return EXIT_BUCKET;
        }
        gdn_log(GDN_LOG_WARN, "main", "bucket_probe_failed", "attempt=%d code=%s", attempt, code);

        struct timespec pause = {.tv_sec = attempt < 5 ? 1 : 3};

        if (sigtimedwait(stop, NULL, &pause) > 0)
            return -1;
    }
    if (!has) {
        gdn_log(GDN_LOG_INFO, "main", "bucket_empty", "bucket=%s", config->minio_bucket);
        return 0;
    }

    gdn_restore_report_t report;

    gdn_log(GDN_LOG_INFO, "restore", "restore_started",
            "bucket=%s reason=\"empty journal, bucket holds records\"", config->minio_bucket);

    int rc = gdn_restore_run(config, journal, 0, 0, &report);

    if (rc != 0) {
        gdn_log(GDN_LOG_ERROR, "restore", "restore_failed", "reason=\"%s\"", gdn_strerror(rc));
        return rc == -EIO ? EXIT_BUCKET : EXIT_DATA;
    }
    log_restore(&report);
    return 0;
}

static int serve(const gdn_config_t *config)
{
    sigset_t stop;
    gdn_journal_t *journal = NULL;
    gdn_writer_t *writer = NULL;
    gdn_flusher_t *flusher = NULL;
    gdn_server_t *server = NULL;
    int lock_fd = -1;
    int threads = config->threads > 0 ? config->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    int status = EXIT_START;

    block_signals(&stop);
    gdn_config_log(config);
    if (config->minio_endpoint == NULL)
        gdn_log(GDN_LOG_INFO, "main", "bucket_disabled",
                "reason=\"no minio_endpoint configured: records are kept in the local "
                "journal only\"");

    if (open_journal(config, (unsigned)(threads > 0 ? threads : 1) + SPARE_READERS, &journal,
                     &lock_fd)) {
        status = EXIT_DATA;
        goto Exit;
    }
    /* Without a bucket nothing would ever clear the change log. */
    if (config->minio_endpoint == NULL)
        gdn_journal_set_change_log(journal, 0);
    status = restore_if_empty(config, journal, &stop);
    if (status != 0) {
        /* A stop signal during the wait is a clean stop. */
        status = status < 0 ? 0 : status;
        goto Exit;
    }
    status = EXIT_START;

    int rc = gdn_writer_start(&writer, journal);

    if (rc == 0 && config->minio_endpoint != NULL)
        rc = gdn_flusher_start(&flusher, config, journal, writer);
    if (rc == 0)
        rc = gdn_server_start(&server, config, journal, writer, flusher);
    if (rc != 0) {
        gdn_log(GDN_LOG_ERROR, "main", "start_failed", "reason=\"%s\"", gdn_strerror(rc));
        goto Exit;
    }

    int signo = 0;

    sigwait(&stop, &signo);
    gdn_log(GDN_LOG_INFO, "main", "stopping", "signal=%s", signo == SIGINT ? "SIGINT" : "SIGTERM");
    status = 0;

Exit:
    gdn_server_stop(server, DRAIN_MS);
    gdn_flusher_stop(flusher);
    gdn_writer_stop(writer);
    close_journal(journal, lock_fd);
    if (status == 0)
        gdn_log(GDN_LOG_INFO, "main", "stopped", NULL);
    return status;
}

/* The restore command: rebuilds the journal from the bucket, with progress and a summary. */
static int run_restore(const gdn_config_t *config, int force)
{
    if (config->minio_endpoint == NULL) {
        fprintf(stderr, "garden-orchestrator: restore needs minio_endpoint (or MINIO_ENDPOINT)\n");
        return EXIT_USAGE;
    }

    gdn_journal_t *journal;
    int lock_fd;

    if (open_journal(config, SPARE_READERS, &journal, &lock_fd) != 0)
        return EXIT_DATA;

    gdn_restore_report_t report;
    int rc = gdn_restore_run(config, journal, force, 1, &report);

    close_journal(journal, lock_fd);
    if (rc == GDN_ECONFLICT) {
        fprintf(stderr,
                "garden-orchestrator: the journal in %s holds records; restore refuses to "
                "replace them without --force\n",
                config->data_dir);
        return EXIT_DATA;
    }
    if (rc != 0) {
        fprintf(stderr, "garden-orchestrator: restore failed: %s\n", gdn_strerror(rc));
        return rc == -EIO ? EXIT_BUCKET : EXIT_DATA;
    }
    log_restore(&report);
    printf("restored %llu records from bucket %s into %s in %.1f s: %llu tasks (%llu pending), "
           "%llu completed copies, %llu workers; %llu objects skipped\n",
           (unsigned long long)report.restored, config->minio_bucket, config->data_dir,
           (double)report.elapsed_us / 1e6, (unsigned long long)report.tasks,
           (unsigned long long)report.pending, (unsigned long long)report.completed,
           (unsigned long long)report.workers, (unsigned long long)report.skipped);
    return 0;
}

/* Reads a whole file into a malloc'd buffer. Returns 0 or -errno. */
static int read_file(const char *path, char **text, size_t *len)
{
    FILE *file = fopen(path, "rb");
    size_t cap = 1 << 16;
    size_t used = 0;
    char *buf = malloc(cap);
    int rc = 0;

    if (file == NULL || buf == NULL) {
        rc = file == NULL ? -errno : -ENOMEM;
        goto Exit;
    }

    struct stat st;

    if (fstat(fileno(file), &st) != 0) {
        rc = -errno;
        goto Exit;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        goto Exit;
    }
    for (;;) {
        used += fread(buf + used, 1, cap - used, file);
        if (used < cap)
            break;

        char *grown = realloc(buf, cap * 2);

        if (grown == NULL) {
            rc = -ENOMEM;
            goto Exit;
        }
        buf = grown;
        cap *= 2;
    }
    if (ferror(file))
        rc = -EIO;

Exit:
    if (file != NULL)
        fclose(file);
    if (rc != 0) {
        free(buf);
        buf = NULL;
    }
    *text = buf;
    *len = used;
    return rc;
}

/* Removes a scratch journal directory made by scratch_journal_dir, and what LMDB put in it. */
static void remove_scratch_dir(const char *dir)
{
    static const char *const files[] = {"data.mdb", "lock.mdb", "lock"};
    char path[PATH_MAX];

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

/*
 * Tells whether `dir` could be made (if absent) and written by this process: it, or the
 * nearest of its parents that exists, must be a directory this process may write and search.
 * Returns 0 or -errno.
 */
static int check_creatable(const char *dir)
{
    char path[PATH_MAX];
    struct stat st;

    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    for (;;) {
        if (stat(path, &st) == 0) {
            if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
            return access(path, W_OK | X_OK) == 0 ? 0 : -errno;
        }
        if (errno != ENOENT)
            return -errno;

        char *slash = strrchr(path, '/');

        if (slash == NULL) {
            snprintf(path, sizeof(path), ".");
        } else if (slash == path) {
            path[1] = '\0';
        } else {
            *slash = '\0';
        }
    }
}

/*
 * A dry run must leave the data directory as it found it. When that holds no journal yet, the
 * export is judged against an empty journal in a temporary directory instead: opening the real
 * one would create the directory and its files, and run as root those would be files the
 * service user cannot open. Returns 1 with `dir` made, 0 when the real journal is to be used,
 * or -1 (reported) when no temporary directory could be made.
 */
static int scratch_journal_dir(const gdn_config_t *config, char *dir, size_t size)
{
    char path[PATH_MAX];
    const char *tmp = getenv("TMPDIR");

    snprintf(path, sizeof(path), "%s/data.mdb", config->data_dir);
    if (access(path, F_OK) == 0)
        return 0;

    /* The judgement is only worth something if the real import could write there. */
    if (check_data_dir_owner(config->data_dir) != 0)
        return -1;

    int rc = check_creatable(config->data_dir);

    if (rc != 0) {
        fprintf(stderr, "garden-orchestrator: data_dir %s cannot be made or written: %s\n",
                config->data_dir, gdn_strerror(rc));
        return -1;
    }
    snprintf(dir, size, "%s/garden-orchestrator-dry-run.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "garden-orchestrator: cannot make a directory for the dry run: %s\n",
                strerror(errno));
        return -1;
    }
    return 1;
}

/* Judges the parsed export against the journal and writes what it accepts, or nothing. */
static int import_into_journal(const gdn_config_t *config, const gdn_import_file_t *file,
                               int dry_run)
{
    gdn_config_t opened = *config;
    char scratch[PATH_MAX] = "";
    int scratch_made = dry_run ? scratch_journal_dir(config, scratch, sizeof(scratch)) : 0;

    if (scratch_made < 0)
        return EXIT_DATA;
    if (scratch_made)
        opened.data_dir = scratch;

    gdn_journal_t *journal;
    int lock_fd;

    if (open_journal(&opened, SPARE_READERS, &journal, &lock_fd) != 0) {
        if (scratch_made)
            remove_scratch_dir(scratch);
        return EXIT_DATA;
    }
    /* As when serving: without a bucket nothing would ever clear the change log. The journal is
     * then marked untracked, and the first start with a bucket uploads everything. */
    if (config->minio_endpoint == NULL) {
        gdn_journal_set_change_log(journal, 0);
        if (!dry_run)
            fprintf(stderr,
                    "garden-orchestrator: no minio_endpoint is set (the MINIO_* variables are "
                    "read from the environment, e.g. /etc/default/garden-orchestrator): the "
                    "imported records are not logged for upload, so the first start with a "
                    "bucket uploads the whole journal\n");
    }

    gdn_queue_policy_t policy;
    gdn_import_report_t report;

    gdn_queue_policy_init(&policy, config);

    int rc = gdn_import_run(journal, &policy, file, gdn_clock_now_us(), config->max_body_bytes,
                            dry_run, &report);

    if (rc == GDN_EJOURNAL_FULL) {
        fprintf(stderr,
                "garden-orchestrator: import failed, nothing was written to %s: the %zu MiB "
                "journal map cannot hold these records and keep its last 64th free for the "
                "server's claims and completions: raise journal_map_mb\n",
                config->data_dir, config->journal_map_mb);
    } else if (rc != 0) {
        fprintf(stderr, "garden-orchestrator: import failed, nothing was written to %s: %s %s\n",
                config->data_dir, gdn_strerror(rc), gdn_journal_last_error());
    } else {
        gdn_import_report_print(&report, stdout);
        if (dry_run)
            printf("dry run: nothing was written to %s\n", config->data_dir);
        char quoted_dir[PATH_MAX + 8];

        gdn_log(GDN_LOG_INFO, "import", dry_run ? "import_checked" : "import_done",
                "data_dir=%s imported=%llu skipped=%llu rejected=%llu",
                gdn_log_quote(config->data_dir, quoted_dir, sizeof(quoted_dir)),
                (unsigned long long)report.imported, (unsigned long long)report.skipped,
                (unsigned long long)report.rejected);
    }
    gdn_import_report_free(&report);
    close_journal(journal, lock_fd);
    if (scratch_made)
        remove_scratch_dir(scratch);
    return rc == 0 ? 0 : EXIT_DATA;
}

/* The import-kv command: a file that cannot be read or is malformed changes nothing. */
static int run_import(const gdn_config_t *config, const char *path, int dry_run)
{
    char *text;
    size_t len;
    int rc = read_file(path, &text, &len);

    if (rc != 0) {
        fprintf(stderr, "garden-orchestrator: cannot read %s: %s\n", path, gdn_strerror(rc));
        return EXIT_USAGE;
    }

    gdn_import_file_t *file;
    char reason[256];

    rc = gdn_import_parse(text, len, &file, reason, sizeof(reason));
    if (rc != 0) {
        fprintf(stderr,
                "garden-orchestrator: %s is not a key-value export, nothing was imported: "
                "%s\n",
                path, rc == GDN_EINVALID ? reason : gdn_strerror(rc));
        free(text);
        return EXIT_USAGE;
    }
    rc = import_into_journal(config, file, dry_run);
    gdn_import_file_free(file);
    free(text);
    return rc;
}

int main(int argc, char **argv)
{
    options_t options = {0};
    int code = parse_options(argc, argv, &options);

    if (code >= 0)
        return code;

    gdn_config_t config;

    if (load_config(&config, &options) != 0) {
        gdn_config_free(&config);
        return EXIT_USAGE;
    }
    if (options.check_config) {
        gdn_config_print(&config, stdout);
        gdn_config_free(&config);
        return 0;
    }

    gdn_log_set_level(config.log_level);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (options.import)
        code = run_import(&config, options.import_file, options.dry_run);
    else
        code = options.restore ? run_restore(&config, options.force) : serve(&config);
    curl_global_cleanup();
    gdn_config_free(&config);
    return code;
}
