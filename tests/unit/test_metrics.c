/*
 * Unit tests of the histograms and of the Prometheus text writer.
 */
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "cunit_main.h"
#include "gdn/metrics.h"

static const uint64_t bounds[] = {10, 100, 1000};

static char *take(gdn_buf_t *out)
{
    size_t len;
    char *text = gdn_buf_take(out, &len);

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_EQUAL(strlen(text), len);
    return text;
}

static void test_metrics__observations_land_in_inclusive_buckets(void)
{
    gdn_histogram_t histogram;
    gdn_histogram_sum_t sum;

    gdn_histogram_init(&histogram, bounds, 3);
    gdn_histogram_observe(&histogram, 0);
    gdn_histogram_observe(&histogram, 10);
    gdn_histogram_observe(&histogram, 11);
    gdn_histogram_observe(&histogram, 1000);
    gdn_histogram_observe(&histogram, 1001);
    gdn_histogram_sum_init(&sum, &histogram);
    gdn_histogram_sum_add(&sum, &histogram);
    CU_ASSERT_EQUAL(sum.buckets[0], 2);
    CU_ASSERT_EQUAL(sum.buckets[1], 1);
    CU_ASSERT_EQUAL(sum.buckets[2], 1);
    CU_ASSERT_EQUAL(sum.buckets[3], 1);
    CU_ASSERT_EQUAL(sum.count, 5);
    CU_ASSERT_EQUAL(sum.sum, 2022);

    /* A sum of two histograms adds bucket by bucket. */
    gdn_histogram_sum_add(&sum, &histogram);
    CU_ASSERT_EQUAL(sum.buckets[0], 4);
    CU_ASSERT_EQUAL(sum.count, 10);
}

static void test_metrics__histogram_renders_cumulative_buckets_in_units(void)
{
    gdn_histogram_t histogram;
    gdn_histogram_sum_t sum;
    gdn_buf_t out = GDN_BUF_INIT;

    gdn_histogram_init(&histogram, bounds, 3);
    gdn_histogram_observe(&histogram, 5);
    gdn_histogram_observe(&histogram, 50);
    gdn_histogram_observe(&histogram, 5000);
    gdn_histogram_sum_init(&sum, &histogram);
    gdn_histogram_sum_add(&sum, &histogram);
    gdn_metrics_family(&out, "x_seconds", "histogram", "Test.");
    gdn_metrics_histogram(&out, "x_seconds", "route=\"a\"", &sum, 1000.0);

    char *text = take(&out);

    CU_ASSERT_STRING_EQUAL(text, "# HELP x_seconds Test.\n"
                                 "# TYPE x_seconds histogram\n"
                                 "x_seconds_bucket{route=\"a\",le=\"0.01\"} 1\n"
                                 "x_seconds_bucket{route=\"a\",le=\"0.1\"} 2\n"
                                 "x_seconds_bucket{route=\"a\",le=\"1\"} 2\n"
                                 "x_seconds_bucket{route=\"a\",le=\"+Inf\"} 3\n"
                                 "x_seconds_sum{route=\"a\"} 5.055\n"
                                 "x_seconds_count{route=\"a\"} 3\n");
    free(text);
}

static void test_metrics__labels_are_escaped_and_cut_whole(void)
{
    char labels[64] = "";

    gdn_metrics_label(labels, sizeof(labels), "role", "a\"b\\c\nd", 7);
    CU_ASSERT_STRING_EQUAL(labels, "role=\"a\\\"b\\\\c\\nd\"");
    gdn_metrics_label(labels, sizeof(labels), "status", "200", 3);
    CU_ASSERT_STRING_EQUAL(labels, "role=\"a\\\"b\\\\c\\nd\",status=\"200\"");

    /* A value too long for the buffer is cut, and the list still ends with a quote. */
    char small[16] = "";

    gdn_metrics_label(small, sizeof(small), "role", "abcdefghijklmnop", 16);
    CU_ASSERT_EQUAL(strlen(small), sizeof(small) - 1);
    CU_ASSERT_EQUAL(small[strlen(small) - 1], '"');
    CU_ASSERT_EQUAL(strncmp(small, "role=\"abcdefgh", 14), 0);

    /* An escape is never split: a backslash pair either fits whole or is left out. */
    char tight[12] = "";

    gdn_metrics_label(tight, sizeof(tight), "r", "abcd\\\\", 6);
    CU_ASSERT_STRING_EQUAL(tight, "r=\"abcd\\\\\"");
}

static void test_metrics__samples_print_integers_exactly(void)
{
    gdn_buf_t out = GDN_BUF_INIT;

    gdn_metrics_sample_u64(&out, "a_total", NULL, UINT64_C(18446744073709551615));
    gdn_metrics_sample(&out, "b", "x=\"1\"", 0.5);
    gdn_metrics_sample(&out, "c", "", 3.0);

    char *text = take(&out);

    CU_ASSERT_STRING_EQUAL(text, "a_total 18446744073709551615\nb{x=\"1\"} 0.5\nc 3\n");
    free(text);
}

static CU_TestInfo metrics_tests[] = {
    {"observations land in the first bucket whose bound they do not pass",
     test_metrics__observations_land_in_inclusive_buckets},
    {"a histogram renders cumulative buckets, sum and count in scaled units",
     test_metrics__histogram_renders_cumulative_buckets_in_units},
    {"label values are escaped, and cut without breaking the list",
     test_metrics__labels_are_escaped_and_cut_whole},
    {"integer samples print exactly", test_metrics__samples_print_integers_exactly},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo gdn_test_suites[] = {
    {.pName = "metrics", .pTests = metrics_tests},
    CU_SUITE_INFO_NULL,
};
