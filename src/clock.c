/*
 * Wall-clock time and its ISO-8601 text form.
 *
 * The calendar arithmetic is done here rather than with gmtime_r and timegm: it needs no locale
 * or time-zone state, cannot fail, and is the same code in both directions, which is what makes
 * format and parse exact inverses. Dates are proleptic Gregorian from year 0000 to 9999, the
 * range a four-digit year can spell.
 */
#include <stdbool.h>
#include <time.h>

#include "gdn/clock.h"
#include "gdn/error.h"

#define US_PER_SECOND INT64_C(1000000)
#define SECONDS_PER_DAY INT64_C(86400)

/* Days from 0000-01-01 to 1970-01-01. */
#define EPOCH_DAY INT64_C(719528)

/* The first and last microsecond whose year has four digits; format clamps to these. */
#define FIRST_US (-EPOCH_DAY * SECONDS_PER_DAY * US_PER_SECOND)
#define LAST_US (INT64_C(2932897) * SECONDS_PER_DAY * US_PER_SECOND - 1)

static const int days_before_month[2][13] = {
    {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365},
    {0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335, 366},
};

int64_t gdn_clock_now_us(void)
{
    struct timespec now;

    /* CLOCK_REALTIME cannot fail with a valid clock id and a valid pointer. */
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * US_PER_SECOND + now.tv_nsec / 1000;
}

static bool is_leap_year(int64_t year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

/*
 * Counts the days from 0000-01-01 to January 1st of `year` (year >= 0): 365 a year plus one for
 * each leap year before it. Year 0 is itself a leap year, hence the rounding up.
 */
static int64_t days_before_year(int64_t year)
{
    return 365 * year + (year + 3) / 4 - (year + 99) / 100 + (year + 399) / 400;
}

/* Splits a day number counted from 0000-01-01 into year, month (1-12) and day (1-31). */
static void civil_from_day(int64_t day, int *year, int *month, int *mday)
{
    /* 146097 days make 400 years; the estimate is off by at most one year either way. */
    int64_t y = day * 400 / 146097;

    while (days_before_year(y + 1) <= day)
        y++;
    while (days_before_year(y) > day)
        y--;

    int day_of_year = (int)(day - days_before_year(y));
    const int *before = days_before_month[is_leap_year(y)];
    int m = 1;

    while (before[m] <= day_of_year)
        m++;
    *year = (int)y;
    *month = m;
    *mday = day_of_year - before[m - 1] + 1;
}

/* Writes `value` as exactly `width` decimal digits, most significant first. */
static char *put_digits(char *out, int value, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + value % 10);
        value /= 10;
    }
    return out + width;
}

void gdn_clock_format(int64_t us, char out[GDN_CLOCK_ISO_LEN + 1])
{
    /* Clamping keeps the year at four digits, so the text always has the same length. */
    if (us < FIRST_US)
        us = FIRST_US;
    if (us > LAST_US)
        us = LAST_US;

    /* Shifting to year 0 first keeps every quotient below non-negative: plain division floors. */
    int64_t since_year0 = us - FIRST_US;
    int64_t seconds = since_year0 / US_PER_SECOND;
    int fraction = (int)(since_year0 % US_PER_SECOND);
    int second_of_day = (int)(seconds % SECONDS_PER_DAY);
    int year, month, mday;

    civil_from_day(seconds / SECONDS_PER_DAY, &year, &month, &mday);

    char *p = put_digits(out, year, 4);
    *p++ = '-';
    p = put_digits(p, month, 2);
    *p++ = '-';
    p = put_digits(p, mday, 2);
    *p++ = 'T';
    p = put_digits(p, second_of_day / 3600, 2);
    *p++ = ':';
    p = put_digits(p, second_of_day / 60 % 60, 2);
    *p++ = ':';
    p = put_digits(p, second_of_day % 60, 2);
    *p++ = '.';
    p = put_digits(p, fraction, 6);
    *p = '\0';
}

/* Reads exactly `width` decimal digits at text[pos]; returns -1 if any is not a digit. */
static int read_digits(const char *text, size_t pos, int width)
{
    int value = 0;

    for (int i = 0; i < width; i++) {
        char c = text[pos + (size_t)i];

        if (c < '0' || c > '9')
            return -1;
        value = value * 10 + (c - '0');
    }
    return value;
}

/* Accepts nothing, `Z` or `+00:00` as the text after the seconds and their fraction. */
static bool is_utc_suffix(const char *text, size_t len)
{
    if (len == 0)
        return true;
    if (len == 1)
        return text[0] == 'Z';
    return len == 6 && text[0] == '+' && text[1] == '0' && text[2] == '0' && text[3] == ':' &&
           text[4] == '0' && text[5] == '0';
}

/*
 * Reads an optional `.` and 1 to 6 digits at text[*pos], scaled to microseconds. A dot with no
 * digits, or a seventh digit, makes the text invalid rather than silently losing precision.
 */
static int read_fraction(const char *text, size_t len, size_t *pos, int *fraction)
{
    *fraction = 0;
    if (*pos >= len || text[*pos] != '.')
        return 0;
    (*pos)++;

    int digits = 0;

    while (*pos < len && text[*pos] >= '0' && text[*pos] <= '9') {
        if (++digits > 6)
            return GDN_EINVALID;
        *fraction = *fraction * 10 + (text[*pos] - '0');
        (*pos)++;
    }
    if (digits == 0)
        return GDN_EINVALID;
    for (int i = digits; i < 6; i++)
        *fraction *= 10;
    return 0;
}

int gdn_clock_parse(const char *text, size_t len, int64_t *us)
{
    /* `YYYY-MM-DDTHH:MM:SS` is 19 characters; the separators sit at fixed places. */
    if (text == NULL || len < 19 || text[4] != '-' || text[7] != '-' || text[10] != 'T' ||
        text[13] != ':' || text[16] != ':')
        return GDN_EINVALID;

    int year = read_digits(text, 0, 4);
    int month = read_digits(text, 5, 2);
    int mday = read_digits(text, 8, 2);
    int hour = read_digits(text, 11, 2);
    int minute = read_digits(text, 14, 2);
    int second = read_digits(text, 17, 2);

    if (year < 0 || month < 1 || month > 12 || mday < 1 || hour < 0 || hour > 23 || minute < 0 ||
        minute > 59 || second < 0 || second > 59)
        return GDN_EINVALID;

    const int *before = days_before_month[is_leap_year(year)];

    if (mday > before[month] - before[month - 1])
        return GDN_EINVALID;

    size_t pos = 19;
    int fraction;

    if (read_fraction(text, len, &pos, &fraction) != 0 || !is_utc_suffix(text + pos, len - pos))
        return GDN_EINVALID;

    int64_t day = days_before_year(year) + before[month - 1] + mday - 1 - EPOCH_DAY;
    int64_t seconds = day * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second;

    *us = seconds * US_PER_SECOND + fraction;
    return 0;
}
