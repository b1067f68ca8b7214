/*
 * Unit tests of the ISO-8601 clock helpers: known instants, round trips and rejected text.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cunit_main.h"
#include "gdn/clock.h"
#include "gdn/error.h"

/* Parses a NUL-terminated string; returns the code and leaves *us untouched on failure. */
static int parse_text(const char *text, int64_t *us)
{
    return gdn_clock_parse(text, strlen(text), us);
}

static void assert_formats_as(int64_t us, const char *expected)
{
    char text[GDN_CLOCK_ISO_LEN + 1];

    memset(text, 'x', sizeof(text));
    gdn_clock_format(us, text);
    CU_ASSERT_STRING_EQUAL(text, expected);
    CU_ASSERT_EQUAL(strlen(text), GDN_CLOCK_ISO_LEN);
}

static void assert_parses_as(const char *text, int64_t expected)
{
    int64_t us = -1;

    CU_ASSERT_EQUAL(parse_text(text, &us), 0);
    CU_ASSERT_EQUAL(us, expected);
}

static void test_clock__epoch(void)
{
    assert_formats_as(0, "1970-01-01T00:00:00.000000");
    assert_parses_as("1970-01-01T00:00:00.000000", 0);
}

static void test_clock__leap_day(void)
{
    /* 2024-02-29 is day 19782 after the epoch: 1709164800 seconds. */
    int64_t us = INT64_C(1709210096789012);

    assert_formats_as(us, "2024-02-29T12:34:56.789012");
    assert_parses_as("2024-02-29T12:34:56.789012", us);
    assert_formats_as(INT64_C(951782400000000), "2000-02-29T00:00:00.000000");
    assert_formats_as(INT64_C(1709251199999999), "2024-02-29T23:59:59.999999");
    assert_formats_as(INT64_C(1709251200000000), "2024-03-01T00:00:00.000000");
}

static void test_clock__microsecond_fraction(void)
{
    assert_formats_as(1, "1970-01-01T00:00:00.000001");
    assert_formats_as(999999, "1970-01-01T00:00:00.999999");
    assert_formats_as(-1, "1969-12-31T23:59:59.999999");
    assert_formats_as(INT64_C(1768653296123456), "2026-01-17T12:34:56.123456");
}

static void test_clock__short_fractions_and_suffixes(void)
{
    int64_t base = INT64_C(1768653296000000);

    assert_parses_as("2026-01-17T12:34:56", base);
    assert_parses_as("2026-01-17T12:34:56.5", base + 500000);
    assert_parses_as("2026-01-17T12:34:56.12", base + 120000);
    assert_parses_as("2026-01-17T12:34:56.123", base + 123000);
    assert_parses_as("2026-01-17T12:34:56.00001", base + 10);
    assert_parses_as("2026-01-17T12:34:56.123456Z", base + 123456);
    assert_parses_as("2026-01-17T12:34:56+00:00", base);
    assert_parses_as("2026-01-17T12:34:56.1Z", base + 100000);
}

static void test_clock__round_trip(void)
{
    /* A fixed pseudo-random walk over the whole four-digit-year range, then its two ends. */
    int64_t first = INT64_C(-62167219200000000);
    int64_t last = INT64_C(253402300799999999);
    uint64_t state = 0x9e3779b97f4a7c15u;
    int mismatches = 0;

    for (int i = 0; i < 20000; i++) {
        state = state * 6364136223846793005u + 1442695040888963407u;

        int64_t us = first + (int64_t)(state % (uint64_t)(last - first));
        char text[GDN_CLOCK_ISO_LEN + 1];
        int64_t back = 0;

        gdn_clock_format(us, text);
        if (gdn_clock_parse(text, strlen(text), &back) != 0 || back != us)
            mismatches++;
    }
    CU_ASSERT_EQUAL(mismatches, 0);
    assert_formats_as(first, "0000-01-01T00:00:00.000000");
    assert_parses_as("0000-01-01T00:00:00.000000", first);
    assert_formats_as(last, "9999-12-31T23:59:59.999999");
    assert_parses_as("9999-12-31T23:59:59.999999", last);
}

static void test_clock__agrees_with_gmtime(void)
{
    /* The C library's calendar is an independent check of the arithmetic in clock.c. */
    int64_t first = INT64_C(-62167219200000000);
    int64_t span = INT64_C(253402300799999999) - first;
    uint64_t state = 12345;
    int mismatches = 0;

    for (int i = 0; i < 20000; i++) {
        state = state * 6364136223846793005u + 1442695040888963407u;

        int64_t us = first + (int64_t)(state % (uint64_t)span);
        time_t seconds = (time_t)((us - first) / 1000000 + first / 1000000);
        struct tm tm;
        char expected[64];
        char text[GDN_CLOCK_ISO_LEN + 1];

        gmtime_r(&seconds, &tm);
        snprintf(expected, sizeof(expected), "%04d-%02d-%02dT%02d:%02d:%02d.%06d",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)((us - first) % 1000000));
        gdn_clock_format(us, text);
        if (strcmp(text, expected) != 0)
            mismatches++;
    }
    CU_ASSERT_EQUAL(mismatches, 0);
}

static void test_clock__out_of_range_is_clamped(void)
{
    assert_formats_as(INT64_MIN, "0000-01-01T00:00:00.000000");
    assert_formats_as(INT64_MAX, "9999-12-31T23:59:59.999999");
}

static void test_clock__rejects_malformed_text(void)
{
    static const char *const bad[] = {
        "",
        "2026-01-17",
        "2026-01-17 12:34:56",
        "2026-01-17t12:34:56",
        "2026/01/17T12:34:56",
        "2026-1-17T12:34:56.000",
        "2026-01-17T12:34:56.",
        "2026-01-17T12:34:56.1234567",
        "2026-01-17T12:34:56z",
        "2026-01-17T12:34:56+01:00",
        "2026-01-17T12:34:56-00:00",
        "2026-01-17T12:34:56.123456 ",
        "2026-01-17T12:34:56.123456Zjunk",
        "2026-13-17T12:34:56",
        "2026-00-17T12:34:56",
        "2026-01-32T12:34:56",
        "2026-01-00T12:34:56",
        "2023-02-29T12:00:00",
        "1900-02-29T12:00:00",
        "2024-04-31T12:00:00",
        "2026-01-17T24:00:00",
        "2026-01-17T12:60:00",
        "2026-01-17T12:34:60",
        "+026-01-17T12:34:56",
        "2026-01-17T1a:34:56",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t us = 42;

        CU_ASSERT_EQUAL(parse_text(bad[i], &us), GDN_EINVALID);
        CU_ASSERT_EQUAL(us, 42);
    }
}

static void test_clock__parse_stops_at_len(void)
{
    const char *text = "2026-01-17T12:34:56.123456Zjunk";
    int64_t us = 0;

    CU_ASSERT_EQUAL(gdn_clock_parse(text, 27, &us), 0);
    CU_ASSERT_EQUAL(us, INT64_C(1768653296123456));
    CU_ASSERT_EQUAL(gdn_clock_parse(text, 18, &us), GDN_EINVALID);
    CU_ASSERT_EQUAL(gdn_clock_parse(NULL, 0, &us), GDN_EINVALID);
}

static void test_clock__now_is_after_2020(void)
{
    /* 2020-01-01T00:00:00: any working clock is past it. */
    CU_ASSERT(gdn_clock_now_us() > INT64_C(1577836800000000));
}

static CU_TestInfo clock_tests[] = {
    {"the epoch formats and parses as 1970-01-01T00:00:00.000000", test_clock__epoch},
    {"leap days format and parse exactly", test_clock__leap_day},
    {"the fraction keeps every microsecond, before and after the epoch",
     test_clock__microsecond_fraction},
    {"parse accepts 0 to 6 fraction digits and a Z or +00:00 suffix",
     test_clock__short_fractions_and_suffixes},
    {"format then parse gives back the same microsecond across years 0000 to 9999",
     test_clock__round_trip},
    {"format agrees with the C library's gmtime_r", test_clock__agrees_with_gmtime},
    {"format clamps instants outside four-digit years", test_clock__out_of_range_is_clamped},
    {"parse rejects malformed text, impossible dates and other zones",
     test_clock__rejects_malformed_text},
    {"parse reads only the given length", test_clock__parse_stops_at_len},
    {"now returns a time after 2020", test_clock__now_is_after_2020},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo gdn_test_suites[] = {
    {.pName = "clock", .pTests = clock_tests},
    CU_SUITE_INFO_NULL,
};
