/*
 * Tasks and workers as the API shows them: validation of request bodies into the 422 problem
 * lists clients expect, and the JSON objects stored in the journal and uploaded to the bucket.
 *
 * Everything here is pure computation: no journal, no network. Safe on any thread.
 */
#ifndef GDN_TASK_H
#define GDN_TASK_H

#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>

#include "gdn/json.h"
#include "gdn/journal.h"

/** Longest worker id accepted, in bytes; it is part of a record key. */
#define GDN_WORKER_ID_MAX 200
/**
 * Bytes a worker id may not hold besides NUL: '/' and the control characters. The id is part of
 * an object key in the bucket, which S3 servers read from XML: XML 1.0 has no way to write most
 * control characters, and changes CR into LF.
 */
#define GDN_WORKER_ID_FORBIDDEN                                                                    \
    "/\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16"    \
    "\x17\x18\x19"                                                                                 \
    "\x1a\x1b\x1c\x1d\x1e\x1f\x7f"
/** The message of a worker id that holds one of them. */
#define GDN_WORKER_ID_FORBIDDEN_MSG                                                                \
    "Value error, worker_id must not contain '/', control or NUL characters"
/** Longest `project_id`, `observation_id` or `task_type`, in bytes. */
#define GDN_TASK_FIELD_MAX 1024
/** Default and bounds of a task's attempts, and the longest lease, in seconds. */
#define GDN_TASK_MAX_ATTEMPTS_DEFAULT 3
#define GDN_TASK_MAX_ATTEMPTS_LIMIT 1000
#define GDN_TASK_LEASE_MAX_S (7 * 24 * 3600)
/** The furthest into the future a task may be delayed, in seconds (one year). */
#define GDN_TASK_DELAY_MAX_S (366 * 24 * 3600)

/** Task states. The names are the API's `status` values. */
typedef enum gdn_task_status {
    GDN_TASK_PENDING,
    GDN_TASK_PROCESSING,
    GDN_TASK_COMPLETED,
    GDN_TASK_FAILED,
    GDN_TASK_CANCELLED,
    GDN_TASK_STATUS_COUNT,
} gdn_task_status_t;

/** Returns the API name of a status ("pending", ...). */
const char *gdn_task_status_name(gdn_task_status_t status);

/** Parses a status name. @return 0 and *out set, or GDN_EINVALID. */
int gdn_task_status_parse(const char *text, size_t len, gdn_task_status_t *out);

/**
 * A task. Strings are not NUL-terminated in general: each has a length. They and the JSON
 * values point into a document (or other memory) owned by whoever filled the struct.
 */
typedef struct gdn_task {
    char id[GDN_JOURNAL_ID_LEN + 1];
    const char *role;
    size_t role_len;
    const char *task_type;
    size_t task_type_len;
    const gdn_json_t *input_data; /**< an object; NULL writes {} */
    int64_t priority;
    gdn_task_status_t status;
    int64_t created_us;
    int64_t updated_us;
    const char *project_id;
    size_t project_id_len;
    int context_enabled;
    int64_t context_limit;
    const char *assigned_to; /**< NULL until claimed */
    size_t assigned_to_len;
    int64_t assigned_us;
    int finished;             /**< 1 once completed or failed: result and completed_at are set */
    const gdn_json_t *result; /**< any JSON; NULL writes null */
    int64_t completed_us;
    const char *observation_id; /**< NULL writes no field */
    size_t observation_id_len;
    int64_t attempts;         /**< claims so far */
    int64_t max_attempts;     /**< claims allowed before the task fails */
    int64_t lease_s;          /**< how long a claim lasts without a heartbeat; 0: the default */
    int64_t run_at_us;        /**< not claimable before this; 0 writes no field */
    int64_t lease_expires_us; /**< while processing: when the claim lapses; 0 writes no field */
    const char *error;        /**< why the server failed the task; NULL writes no field */
    size_t error_len;
    const gdn_json_t *late_result; /**< a result that came after the lease; NULL: no field */
} gdn_task_t;

/** A TaskComplete body. */
typedef struct gdn_task_complete {
    char task_id[GDN_JOURNAL_ID_LEN + 1];
    const gdn_json_t *result; /**< NULL for JSON null */
    gdn_task_status_t status; /**< GDN_TASK_COMPLETED or GDN_TASK_FAILED */
    int retry;                /**< 1 for `"status": "retry"`: put the task back after a backoff */
    const char *observation_id;
    size_t observation_id_len;
    const char *worker_id; /**< the completing worker, or NULL when the client does not say */
    size_t worker_id_len;
} gdn_task_complete_t;

/** A worker as stored. */
typedef struct gdn_worker {
    const char *worker_id;
    size_t worker_id_len;
    const gdn_json_t *capabilities; /**< an array of strings; NULL writes [] */
    int64_t registered_us;
    int64_t last_heartbeat_us;
} gdn_worker_t;

/**
 * Collects validation problems and renders them as the 422 body
 * `{"detail":[{"type":T,"loc":[...],"msg":M}, ...]}`.
 */
typedef struct gdn_problems {
    yajl_gen gen;
    int count;
} gdn_problems_t;

/** Starts an empty problem list. @return 0 or -ENOMEM. */
int gdn_problems_init(gdn_problems_t *problems);

/**
 * Adds one problem.
 * @param where "body" or "query".
 * @param field the field name, or NULL when the problem concerns the whole body.
 * @param type the machine-readable type, e.g. "missing", "string_type".
 * @param msg the human-readable message, e.g. "Field required".
 */
void gdn_problems_add(gdn_problems_t *problems, const char *where, const char *field,
                      const char *type, const char *msg);

/** Adds the problem of a body that is not JSON, located at a byte offset. */
void gdn_problems_add_json_error(gdn_problems_t *problems, const gdn_json_error_t *error);

/**
 * Renders the body. @return a malloc'd NUL-terminated string (length in *len), or NULL on
 * allocation failure.
 */
char *gdn_problems_render(gdn_problems_t *problems, size_t *len);

/** Frees the list. */
void gdn_problems_free(gdn_problems_t *problems);

/**
 * Validates a TaskCreate body and fills `task` with its fields and the defaults of the others.
 * Identity and time (id, status, created and updated) are left for the caller to set, and so is
 * `lease_s` when the body gives none (it is 0 then). `delay_s` counts from `now_us`.
 *
 * @param doc receives the parsed document that task's pointers refer to, even on validation
 *        failure (free it with gdn_json_free); NULL if the body is not JSON.
 * @return 0, or GDN_EINVALID with one entry per problem added to `problems`.
 */
int gdn_task_parse_create(const char *body, size_t len, int64_t now_us, gdn_task_t *task,
                          gdn_json_doc_t **doc, gdn_problems_t *problems);

/** Validates a TaskComplete body, as gdn_task_parse_create. */
int gdn_task_parse_complete(const char *body, size_t len, gdn_task_complete_t *complete,
                            gdn_json_doc_t **doc, gdn_problems_t *problems);

/** Validates a register body `{"worker_id":S,"capabilities":[S,...]}`. */
int gdn_worker_parse_register(const char *body, size_t len, gdn_worker_t *worker,
                              gdn_json_doc_t **doc, gdn_problems_t *problems);

/** Validates a heartbeat body `{"worker_id":S}`; the id is returned in `worker`. */
int gdn_worker_parse_heartbeat(const char *body, size_t len, gdn_worker_t *worker,
                               gdn_json_doc_t **doc, gdn_problems_t *problems);

/**
 * Reads a stored task object back.
 * @param doc receives the document the task points into (free with gdn_json_free).
 * @return 0, GDN_EINVALID if the JSON is not a task object, or -ENOMEM.
 */
int gdn_task_from_json(const char *json, size_t len, gdn_task_t *task, gdn_json_doc_t **doc);

/** Reads a stored worker object back, as gdn_task_from_json. */
int gdn_worker_from_json(const char *json, size_t len, gdn_worker_t *worker, gdn_json_doc_t **doc);

/** Writes a task object to a generator. @return 0 or GDN_EINVALID. */
int gdn_task_gen(yajl_gen gen, const gdn_task_t *task);

/** Writes a worker object to a generator. @return 0 or GDN_EINVALID. */
int gdn_worker_gen(yajl_gen gen, const gdn_worker_t *worker);

/**
 * Renders a task object as a malloc'd NUL-terminated string.
 * @return the text (length in *len), or NULL on allocation failure.
 */
char *gdn_task_render(const gdn_task_t *task, size_t *len);

/** Renders a worker object, as gdn_task_render. */
char *gdn_worker_render(const gdn_worker_t *worker, size_t *len);

/**
 * Makes a new random task id: a lower-case UUID version 4.
 * @return 0, or -errno if the system's random source failed.
 */
int gdn_task_new_id(char out[GDN_JOURNAL_ID_LEN + 1]);

/** Checks that `text` is a task id as gdn_task_new_id writes them (any UUID version). */
int gdn_task_id_valid(const char *text, size_t len);

/** Writes the record key `task:ID`, `completed:ID` or `worker:ID` into `out`. @return length. */
size_t gdn_record_key(char out[GDN_JOURNAL_KEY_MAX + 1], const char *kind, const char *id,
                      size_t id_len);

#endif
