/*
 * Counters, histograms and the Prometheus text exposition format (version 0.0.4).
 *
 * Histograms are updated with relaxed atomic adds, so any thread may observe into one while
 * another renders it; a rendering may then be a few observations behind, never torn per
 * value. Every bucket is cumulative only when rendered.
 */
#ifndef GDN_METRICS_H
#define GDN_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "gdn/buf.h"

/** Most finite bucket bounds a histogram may have. */
#define GDN_HISTOGRAM_BUCKETS_MAX 20

/** A histogram of non-negative integer observations (microseconds, counts...). */
typedef struct gdn_histogram {
    const uint64_t *bounds; /**< ascending upper bounds, inclusive, in observation units */
    int bound_count;
    atomic_uint_least64_t buckets[GDN_HISTOGRAM_BUCKETS_MAX + 1]; /**< last: above every bound */
    atomic_uint_least64_t count;
    atomic_uint_least64_t sum;
} gdn_histogram_t;

/** Bounds for latencies in microseconds, from 100 us to 30 s. */
extern const uint64_t gdn_metrics_latency_bounds_us[];
extern const int gdn_metrics_latency_bound_count;

/**
 * Sets up a histogram with `bounds` (static storage, ascending, at most
 * GDN_HISTOGRAM_BUCKETS_MAX). Not thread-safe; call before sharing it.
 */
void gdn_histogram_init(gdn_histogram_t *histogram, const uint64_t *bounds, int bound_count);

/** Adds one observation. Any thread. */
void gdn_histogram_observe(gdn_histogram_t *histogram, uint64_t value);

/** A histogram's values copied at one moment, for adding several together. */
typedef struct gdn_histogram_sum {
    const uint64_t *bounds;
    int bound_count;
    uint64_t buckets[GDN_HISTOGRAM_BUCKETS_MAX + 1]; /**< per bucket, not cumulative */
    uint64_t count;
    uint64_t sum;
} gdn_histogram_sum_t;

/** Starts an empty sum with the bounds of `like`. */
void gdn_histogram_sum_init(gdn_histogram_sum_t *sum, const gdn_histogram_t *like);

/** Adds a histogram's current values to a sum of histograms with the same bounds. Any thread. */
void gdn_histogram_sum_add(gdn_histogram_sum_t *sum, const gdn_histogram_t *histogram);

/**
 * Writes the `# HELP` and `# TYPE` lines of a metric family. `type` is "counter", "gauge" or
 * "histogram". Returns 0 or -ENOMEM (as every writer below; the buffer remembers a failure).
 */
int gdn_metrics_family(gdn_buf_t *out, const char *name, const char *type, const char *help);

/**
 * Writes one sample line. `labels` is NULL or a preformatted label list without braces, such
 * as `route="/tasks",status="200"`, built with gdn_metrics_label.
 */
int gdn_metrics_sample(gdn_buf_t *out, const char *name, const char *labels, double value);

/** As gdn_metrics_sample, for an integer value, printed exactly. */
int gdn_metrics_sample_u64(gdn_buf_t *out, const char *name, const char *labels, uint64_t value);

/**
 * Writes the `_bucket`, `_sum` and `_count` lines of a histogram. Observations and bounds are
 * divided by `scale` (1e6 turns microseconds into seconds).
 */
int gdn_metrics_histogram(gdn_buf_t *out, const char *name, const char *labels,
                          const gdn_histogram_sum_t *sum, double scale);

/**
 * Appends `name="value"` to a label list in `out` (after a comma if it is not empty), escaping
 * the value as the format requires: backslash, double quote and line feed. Other bytes pass
 * as they are; the value is cut at `out_size` with the list left well-formed.
 */
void gdn_metrics_label(char *out, size_t out_size, const char *name, const char *value,
                       size_t value_len);

#endif
