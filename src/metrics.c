/*
 * Histograms and the Prometheus text format.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gdn/metrics.h"

const uint64_t gdn_metrics_latency_bounds_us[] = {
    100,    250,    500,    1000,    2500,    5000,    10000,    25000,    50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 15000000, 30000000,
};
const int gdn_metrics_latency_bound_count =
    (int)(sizeof(gdn_metrics_latency_bounds_us) / sizeof(gdn_metrics_latency_bounds_us[0]));

void gdn_histogram_init(gdn_histogram_t *histogram, const uint64_t *bounds, int bound_count)
{
    histogram->bounds = bounds;
    histogram->bound_count =
        bound_count < GDN_HISTOGRAM_BUCKETS_MAX ? bound_count : GDN_HISTOGRAM_BUCKETS_MAX;
    for (int i = 0; i <= GDN_HISTOGRAM_BUCKETS_MAX; i++)
        atomic_init(&histogram->buckets[i], 0);
    atomic_init(&histogram->count, 0);
    atomic_init(&histogram->sum, 0);
}

void gdn_histogram_observe(gdn_histogram_t *histogram, uint64_t value)
{
    int bucket = 0;

    /* A binary search would save little over a score of bounds; a linear scan stays simple. */
    while (bucket < histogram->bound_count && value > histogram->bounds[bucket])
        bucket++;
    atomic_fetch_add_explicit(&histogram->buckets[bucket], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&histogram->sum, value, memory_order_relaxed);
    atomic_fetch_add_explicit(&histogram->count, 1, memory_order_relaxed);
}

void gdn_histogram_sum_init(gdn_histogram_sum_t *sum, const gdn_histogram_t *like)
{
    memset(sum, 0, sizeof(*sum));
    sum->bounds = like->bounds;
    sum->bound_count = like->bound_count;
}

void gdn_histogram_sum_add(gdn_histogram_sum_t *sum, const gdn_histogram_t *histogram)
{
    for (int i = 0; i <= sum->bound_count; i++)
        sum->buckets[i] += atomic_load_explicit(&histogram->buckets[i], memory_order_relaxed);
    sum->sum += atomic_load_explicit(&histogram->sum, memory_order_relaxed);
    sum->count += atomic_load_explicit(&histogram->count, memory_order_relaxed);
}

int gdn_metrics_family(gdn_buf_t *out, const char *name, const char *type, const char *help)
{
    char line[512];
    int len = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);

    if (len < 0 || (size_t)len >= sizeof(line))
        return -EINVAL;
    return gdn_buf_append(out, line, (size_t)len);
}

/* Writes `name{labels} ` or `name ` before a value. */
static int sample_prefix(gdn_buf_t *out, const char *name, const char *suffix, const char *labels)
{
    gdn_buf_append_str(out, name);
    gdn_buf_append_str(out, suffix);
    if (labels != NULL && labels[0] != '\0') {
        gdn_buf_append_str(out, "{");
        gdn_buf_append_str(out, labels);
        gdn_buf_append_str(out, "}");
    }
    return gdn_buf_append_str(out, " ");
}

/* Values are printed with 15 significant digits, the most a double always holds exactly in
 * decimal: 0.002692 stays 0.002692 instead of showing the binary rounding of its last bits. */
int gdn_metrics_sample(gdn_buf_t *out, const char *name, const char *labels, double value)
{
    char text[64];

    if (isnan(value))
        snprintf(text, sizeof(text), "NaN\n");
    else if (isinf(value))
        snprintf(text, sizeof(text), "%s\n", value > 0 ? "+Inf" : "-Inf");
    else
        snprintf(text, sizeof(text), "%.15g\n", value);
    sample_prefix(out, name, "", labels);
    return gdn_buf_append_str(out, text);
}

int gdn_metrics_sample_u64(gdn_buf_t *out, const char *name, const char *labels, uint64_t value)
{
    char text[32];

    snprintf(text, sizeof(text), "%" PRIu64 "\n", value);
    sample_prefix(out, name, "", labels);
    return gdn_buf_append_str(out, text);
}

int gdn_metrics_histogram(gdn_buf_t *out, const char *name, const char *labels,
                          const gdn_histogram_sum_t *sum, double scale)
{
    char le_labels[600];
    char bound[32];
    uint64_t cumulative = 0;

    for (int i = 0; i <= sum->bound_count; i++) {
        cumulative += sum->buckets[i];
        if (i < sum->bound_count)
            snprintf(bound, sizeof(bound), "%.9g", (double)sum->bounds[i] / scale);
        else
            snprintf(bound, sizeof(bound), "+Inf");
        snprintf(le_labels, sizeof(le_labels), "%s", labels != NULL ? labels : "");
        gdn_metrics_label(le_labels, sizeof(le_labels), "le", bound, strlen(bound));

        char value[32];

        snprintf(value, sizeof(value), "%" PRIu64 "\n", cumulative);
        sample_prefix(out, name, "_bucket", le_labels);
        gdn_buf_append_str(out, value);
    }

    char value[64];

    snprintf(value, sizeof(value), "%.15g\n", (double)sum->sum / scale);
    sample_prefix(out, name, "_sum", labels);
    gdn_buf_append_str(out, value);
    /* The buckets, the sum and the count are read one after another while observations go on:
     * the count printed is the +Inf bucket's, so that the two always agree as the format asks. */
    snprintf(value, sizeof(value), "%" PRIu64 "\n", cumulative);
    sample_prefix(out, name, "_count", labels);
    return gdn_buf_append_str(out, value);
}

void gdn_metrics_label(char *out, size_t out_size, const char *name, const char *value,
                       size_t value_len)
{
    size_t used = strnlen(out, out_size);
    int len = snprintf(out + used, out_size - used, "%s%s=\"", used > 0 ? "," : "", name);

    if (len < 0 || used + (size_t)len + 2 > out_size) {
        out[used] = '\0';
        return;
    }
    used += (size_t)len;
    for (size_t i = 0; i < value_len; i++) {
        const char *escaped = value[i] == '\\' ? "\\\\" : value[i] == '"' ? "\\\"" : NULL;
        char one[2] = {value[i], '\0'};

        if (value[i] == '\n')
            escaped = "\\n";
        if (escaped == NULL)
            escaped = one;

        size_t piece = strlen(escaped);

        /* Keep room for the closing quote and the NUL. */
        if (value[i] == '\0' || used + piece + 2 > out_size)
            break;
        memcpy(out + used, escaped, piece);
        used += piece;
    }
    out[used++] = '"';
    out[used] = '\0';
}
