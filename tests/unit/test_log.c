/*
 * Unit tests of the logfmt helpers: quoting and escaping of values, UTF-8 handling, truncation
 * to the caller's buffer, and the last line of defence in gdn_log itself.
 */
#include <CUnit/CUnit.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cunit_main.h"
#include "gdn/log.h"

/*
 * Decodes text as UTF-8 by computing each code point and checking it against the shortest
 * form, the surrogate range and U+10FFFF. Independent of the code under test on purpose.
 */
static bool is_valid_utf8(const char *text)
{
    static const uint32_t shortest[] = {0, 0, 0x80, 0x800, 0x10000};
    const unsigned char *p = (const unsigned char *)text;

    while (*p != '\0') {
        size_t len = *p < 0x80             ? 1
                     : (*p & 0xe0) == 0xc0 ? 2
                     : (*p & 0xf0) == 0xe0 ? 3
                     : (*p & 0xf8) == 0xf0 ? 4
                                           : 0;

        if (len == 0)
            return false;

        uint32_t cp = len == 1 ? *p : *p & (0x7f >> len);

        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (cp < shortest[len] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return false;
        p += len;
    }
    return true;
}

/*
 * True when text is one logfmt quoted value: an opening quote, then plain characters or the
 * escapes \" \\ \n \r \t \u00XX \xNN, then a closing quote that is not escaped and ends it.
 */
static bool is_one_quoted_value(const char *text)
{
    size_t len = strlen(text);

    if (len < 2 || text[0] != '"')
        return false;
    for (size_t i = 1; i < len; i++) {
        if (text[i] == '"')
            return i == len - 1;
        if (text[i] != '\\')
            continue;
        if (i + 1 >= len)
            return false;

        char kind = text[i + 1];

        if (strchr("\"\\nrt", kind) != NULL)
            i += 1;
        else if (kind == 'u' && strncmp(text + i + 2, "00", 2) == 0 && i + 5 < len)
            i += 5;
        else if (kind == 'x' && i + 3 < len)
            i += 3;
        else
            return false;
    }
    return false;
}

static void assert_quotes_as(const char *value, const char *expected)
{
    char out[256];

    CU_ASSERT_STRING_EQUAL(gdn_log_quote(value, out, sizeof(out)), expected);
}

/*
 * Quotes value into every buffer size from 1 up to past its full form and checks that each
 * result is valid UTF-8, a single logfmt value when quoted, and the full form cut at a
 * character or escape boundary: the quoted content is a prefix of the full content and what
 * follows it in the full form starts a new character or escape.
 */
static void assert_every_cut_is_clean(const char *value)
{
    char full[1024];

    gdn_log_quote(value, full, sizeof(full));
    CU_ASSERT_FATAL(strlen(full) < sizeof(full) - 1);

    bool quoted = full[0] == '"';
    size_t full_len = strlen(full) - (quoted ? 1 : 0);

    for (size_t size = 1; size <= full_len + 3; size++) {
        char *out = malloc(size);

        CU_ASSERT_FATAL(out != NULL);
        gdn_log_quote(value, out, size);

        size_t len = strlen(out);

        CU_ASSERT(len < size);
        CU_ASSERT(is_valid_utf8(out));
        if (quoted && len > 0) {
            CU_ASSERT(is_one_quoted_value(out));
            len--; /* compare without the closing quote */
        }
        CU_ASSERT(len <= full_len);
        CU_ASSERT(strncmp(out, full, len) == 0);

        /* What was left out starts a character (not a continuation byte) or an escape. */
        unsigned char next = (unsigned char)full[len];

        CU_ASSERT((next & 0xc0) != 0x80);
        if (len > 0 && len < full_len) {
            size_t backslashes = 0;

            for (size_t i = len; i > 0 && out[i - 1] == '\\'; i--)
                backslashes++;
            CU_ASSERT(backslashes % 2 == 0);
        }
        free(out);
    }
}

static void test_log__overflow_after_escaped_quote_keeps_the_closing_quote(void)
{
    /* An access-log path of 127 bytes: 126 quotes escape to 252 bytes and fill a 256-byte
     * buffer but for the stray byte, which then no longer fits. */
    char value[160];
    char out[256];
    size_t n = 0;

    value[n++] = '/';
    for (int i = 0; i < 126; i++)
        value[n++] = '"';
    value[n++] = (char)0x80;
    value[n] = '\0';
    gdn_log_quote(value, out, sizeof(out));

    size_t len = strlen(out);

    CU_ASSERT_EQUAL(len, 255);
    CU_ASSERT(is_one_quoted_value(out));
    CU_ASSERT(is_valid_utf8(out));
    CU_ASSERT_STRING_EQUAL(out + len - 5, "\\\"\\\"\"");
}

static void test_log__overflow_inside_multibyte_input_is_clean(void)
{
    static const char *const tails[] = {"\x80",
                                        "\xc3\xa9",
                                        "\xe2\x82\xac",
                                        "\xf0\x9f\x98\x80",
                                        "\xe2\x82",
                                        "\xc3\xa9\xa9\xa9",
                                        "\x80\xc3\xa9",
                                        "\xed\xa0\x80",
                                        "\xf0\x9f\x98\x80x"};

    for (size_t t = 0; t < sizeof(tails) / sizeof(tails[0]); t++) {
        for (int quotes = 0; quotes < 4; quotes++) {
            for (int prefix = 0; prefix < 2; prefix++) {
                char value[32];

                snprintf(value, sizeof(value), "%s%.*s%s", prefix ? "/" : "", quotes, "\"\"\"\"",
                         tails[t]);
                assert_every_cut_is_clean(value);
            }
        }
    }
}

static void test_log__invalid_utf8_bytes_are_escaped(void)
{
    assert_quotes_as("a\x80z", "\"a\\x80z\"");
    assert_quotes_as("\xff", "\"\\xff\"");
    assert_quotes_as("\xc0\xaf", "\"\\xc0\\xaf\"");                   /* overlong '/' */
    assert_quotes_as("\xe0\x80\xaf", "\"\\xe0\\x80\\xaf\"");          /* overlong, 3 bytes */
    assert_quotes_as("\xf0\x80\x80\xaf", "\"\\xf0\\x80\\x80\\xaf\""); /* overlong, 4 bytes */
    assert_quotes_as("\xed\xa0\x80", "\"\\xed\\xa0\\x80\"");          /* surrogate U+D800 */
    assert_quotes_as("\xf4\x90\x80\x80", "\"\\xf4\\x90\\x80\\x80\""); /* U+110000 */
    assert_quotes_as("\xf5\x80\x80\x80", "\"\\xf5\\x80\\x80\\x80\"");
    assert_quotes_as("ok\xe2\x82", "\"ok\\xe2\\x82\"");    /* cut short at the end */
    assert_quotes_as("\xe2\x82z", "\"\\xe2\\x82z\"");      /* cut short by ASCII */
    assert_quotes_as("\xc3\xa9\x80", "\"\xc3\xa9\\x80\""); /* good, then a stray */
    assert_quotes_as("\xc3\xa9 \x80", "\"\xc3\xa9 \\x80\"");
}

static void test_log__valid_multibyte_passes_through(void)
{
    assert_quotes_as("h\xc3\xa9llo", "h\xc3\xa9llo");
    assert_quotes_as("\xe2\x82\xac", "\xe2\x82\xac");         /* U+20AC */
    assert_quotes_as("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"); /* U+1F600 */
    assert_quotes_as("\xc2\x80", "\xc2\x80");                 /* U+0080, the lowest */
    assert_quotes_as("\xed\x9f\xbf", "\xed\x9f\xbf");         /* U+D7FF, below surrogates */
    assert_quotes_as("\xee\x80\x80", "\xee\x80\x80");         /* U+E000, above them */
    assert_quotes_as("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"); /* U+10FFFF, the highest */
    assert_quotes_as("caf\xc3\xa9 cr\xc3\xa8me", "\"caf\xc3\xa9 cr\xc3\xa8me\"");
}

static void test_log__control_characters_and_quotes_are_escaped(void)
{
    assert_quotes_as("", "\"\"");
    assert_quotes_as(NULL, "\"\"");
    assert_quotes_as("plain", "plain");
    assert_quotes_as("a=b", "\"a=b\"");
    assert_quotes_as("say \"hi\"\\", "\"say \\\"hi\\\"\\\\\"");
    assert_quotes_as("a\nb\rc\td", "\"a\\nb\\rc\\td\"");
    assert_quotes_as("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
}

/* A value given by length: only those bytes count, NULs among them are escaped, and a cut at
 * the output's size still keeps whole characters. */
static void test_log__a_value_given_by_length_is_quoted_as_its_bytes(void)
{
    static const char path[] = "/tasks/a\0b/c\xc3\xa9/rest-not-counted";
    char out[64];

    CU_ASSERT_STRING_EQUAL(gdn_log_quote_n(path, 7, out, sizeof(out)), "/tasks/");
    CU_ASSERT_STRING_EQUAL(gdn_log_quote_n(path, 14, out, sizeof(out)),
                           "\"/tasks/a\\u0000b/c\xc3\xa9\"");
    /* Room for the quotes and "/tasks/a" only: the NUL's escape does not fit whole. */
    CU_ASSERT_STRING_EQUAL(gdn_log_quote_n(path, 14, out, 11), "\"/tasks/a\"");
    /* "c\xc3\xa9" needs no quotes; room for two bytes would cut the character, so it goes. */
    CU_ASSERT_STRING_EQUAL(gdn_log_quote_n(path + 11, 3, out, 4), "c\xc3\xa9");
    CU_ASSERT_STRING_EQUAL(gdn_log_quote_n(path + 11, 3, out, 3), "c");
}

static void test_log__truncation_never_splits_a_character(void)
{
    char out[8];

    /* Unquoted: five two-byte characters into room for three bytes keep one character. */
    CU_ASSERT_STRING_EQUAL(gdn_log_quote("\xc3\xa9\xc3\xa9\xc3\xa9", out, 4), "\xc3\xa9");
    CU_ASSERT_STRING_EQUAL(gdn_log_quote("\xc3\xa9\xc3\xa9\xc3\xa9", out, 5), "\xc3\xa9\xc3\xa9");
    CU_ASSERT_STRING_EQUAL(gdn_log_quote("\xf0\x9f\x98\x80", out, 4), "");
    /* Quoted: the four-byte character does not fit beside the quotes, the escape does not
     * fit in part. */
    CU_ASSERT_STRING_EQUAL(gdn_log_quote(" \xf0\x9f\x98\x80", out, 6), "\" \"");
    CU_ASSERT_STRING_EQUAL(gdn_log_quote(" \x80", out, 6), "\" \"");
    CU_ASSERT_STRING_EQUAL(gdn_log_quote(" \x80", out, 7), "\" \"");
    CU_ASSERT_STRING_EQUAL(gdn_log_quote(" \x80", out, 8), "\" \\x80\"");
    CU_ASSERT_STRING_EQUAL(gdn_log_quote(" \x01", out, 8), "\" \"");
    CU_ASSERT_STRING_EQUAL(gdn_log_quote(" x", out, 2), "");

    assert_every_cut_is_clean("caf\xc3\xa9 \xe2\x82\xac\xf0\x9f\x98\x80 \"q\" \\ \x80\x01 end");
    assert_every_cut_is_clean("\xe4\xb8\xad\xe6\x96\x87\xe4\xb8\xad\xe6\x96\x87");
    assert_every_cut_is_clean("\xc3\xa9\xc3");
}

/* Runs gdn_log with stderr sent to a file and returns what it wrote; the caller frees it. */
static char *capture_log_line(const char *value)
{
    char dir[256];
    char path[300];

    gdn_test_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/stderr", dir);

    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    int saved = dup(STDERR_FILENO);

    CU_ASSERT_FATAL(fd >= 0 && saved >= 0);
    dup2(fd, STDERR_FILENO);
    gdn_log(GDN_LOG_ERROR, "test", "probe", "raw=%s", value);
    dup2(saved, STDERR_FILENO);
    close(saved);

    char *text = calloc(1, 4096);

    CU_ASSERT_FATAL(text != NULL);

    ssize_t n = pread(fd, text, 4095, 0);

    CU_ASSERT(n > 0);
    close(fd);
    gdn_test_rmdir(dir);
    return text;
}

static void test_log__line_never_carries_invalid_utf8(void)
{
    char *line = capture_log_line("a\x80z\xc3\xa9\xed\xa0\x80\nq");

    CU_ASSERT_PTR_NOT_NULL(strstr(line, " level=error module=test event=probe "));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, " raw=a?z\xc3\xa9???"
                                        "?q\n"));
    CU_ASSERT(is_valid_utf8(line));
    CU_ASSERT_EQUAL(strchr(line, '\n'), line + strlen(line) - 1);
    free(line);
}

static CU_TestInfo log_tests[] = {
    {"a value cut right after an escaped quote still ends in an unescaped closing quote",
     test_log__overflow_after_escaped_quote_keeps_the_closing_quote},
    {"a value cut in or near multibyte input is valid UTF-8 and one quoted value at every size",
     test_log__overflow_inside_multibyte_input_is_clean},
    {"bytes that are not well-formed UTF-8 are quoted and written as \\xNN",
     test_log__invalid_utf8_bytes_are_escaped},
    {"well-formed multibyte UTF-8 is copied as it is", test_log__valid_multibyte_passes_through},
    {"control characters, quotes and backslashes are escaped",
     test_log__control_characters_and_quotes_are_escaped},
    {"a value given by length is quoted as exactly its bytes, NULs escaped",
     test_log__a_value_given_by_length_is_quoted_as_its_bytes},
    {"truncation keeps whole characters and whole escapes",
     test_log__truncation_never_splits_a_character},
    {"gdn_log replaces stray bytes and control characters in a line it writes",
     test_log__line_never_carries_invalid_utf8},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo gdn_test_suites[] = {
    {.pName = "log", .pTests = log_tests},
    CU_SUITE_INFO_NULL,
};
