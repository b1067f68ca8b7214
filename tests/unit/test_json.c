/*
 * Unit tests of the JSON document model: parsing every kind of value, the limits a server needs
 * (nesting, UTF-8, comments, trailing data), integer reading and writing documents back out.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cunit_main.h"
#include "gdn/error.h"
#include "gdn/json.h"

/* Parses text that must be valid; the test stops if it is not. */
static gdn_json_doc_t *parse_ok(const char *text, size_t len)
{
    gdn_json_doc_t *doc = NULL;
    gdn_json_error_t err = {0};
    int rc = gdn_json_parse(text, len, &doc, &err);

    if (rc != 0)
        fprintf(stderr, "\nunexpected parse failure at %zu: %s\n", err.offset, err.message);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    return doc;
}

/* Parses text that must be refused and returns the error. */
static gdn_json_error_t parse_bad(const char *text, size_t len)
{
    gdn_json_doc_t *doc = (gdn_json_doc_t *)&doc;
    gdn_json_error_t err = {.offset = (size_t)-1};

    CU_ASSERT_EQUAL(gdn_json_parse(text, len, &doc, &err), GDN_EINVALID);
    CU_ASSERT_PTR_NULL(doc);
    CU_ASSERT(err.offset <= len);
    CU_ASSERT(err.message[0] != '\0');
    CU_ASSERT_PTR_NULL(strchr(err.message, '\n'));
    return err;
}

#define PARSE_OK(literal) parse_ok(literal, sizeof(literal) - 1)
#define PARSE_BAD(literal) parse_bad(literal, sizeof(literal) - 1)

/* Writes a value with a fresh generator and returns the malloc'd text. */
static char *generate(const gdn_json_t *value)
{
    yajl_gen gen = gdn_json_gen_new();

    CU_ASSERT_PTR_NOT_NULL_FATAL(gen);
    CU_ASSERT_EQUAL(gdn_json_gen(gen, value), 0);

    size_t len = 0;
    char *text = gdn_json_gen_take(gen, &len);

    yajl_gen_free(gen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_EQUAL(strlen(text), len);
    return text;
}

/* Checks that text parses and is written back exactly as `expected`. */
static void check_rewrite(const char *text, size_t len, const char *expected)
{
    gdn_json_doc_t *doc = parse_ok(text, len);
    char *out = generate(gdn_json_root(doc));

    if (strcmp(out, expected) != 0)
        fprintf(stderr, "\nwrote %s\nwanted %s\n", out, expected);
    CU_ASSERT_STRING_EQUAL(out, expected);
    free(out);
    gdn_json_free(doc);
}

static void test_json__utf8_is_checked_as_the_generator_requires(void)
{
    static const char *const valid[] = {"",
                                        "plain",
                                        "\xc3\xa9t\xc3\xa9",
                                        "\xe2\x82\xac",
                                        "\xf0\x9f\x8c\xb1",
                                        "\xf4\x8f\xbf\xbf",
                                        "\xed\x9f\xbf"};
    static const char *const invalid[] = {"\xff",
                                          "\x80",
                                          "\xc3",
                                          "\xc0\xaf",
                                          "\xe0\x80\xaf",
                                          "\xed\xa0\x80",
                                          "\xf0\x80\x80\xaf",
                                          "\xf4\x90\x80\x80",
                                          "\xe2\x82",
                                          "ok\xe2\x28\xa1"};

    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
        CU_ASSERT_EQUAL(gdn_json_utf8_valid(valid[i], strlen(valid[i])), 1);
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        CU_ASSERT_EQUAL(gdn_json_utf8_valid(invalid[i], strlen(invalid[i])), 0);
}

static void test_json__parse_every_type(void)
{
    gdn_json_doc_t *doc = PARSE_OK(
        " {\"n\":null,\"t\":true,\"f\":false,\"i\":-12,\"s\":\"h\\u00e9\",\"o\":{\"a\":[]},"
        "\"a\":[1,\"x\",null]} ");
    const gdn_json_t *root = gdn_json_root(doc);

    CU_ASSERT_EQUAL_FATAL(root->type, GDN_JSON_OBJECT);
    CU_ASSERT_EQUAL(root->count, 7);
    CU_ASSERT_PTR_NULL(root->key);
    CU_ASSERT_EQUAL(gdn_json_get(root, "n")->type, GDN_JSON_NULL);
    CU_ASSERT_EQUAL(gdn_json_get(root, "t")->type, GDN_JSON_BOOL);
    CU_ASSERT_EQUAL(gdn_json_get(root, "t")->boolean, 1);
    CU_ASSERT_EQUAL(gdn_json_get(root, "f")->boolean, 0);
    CU_ASSERT_EQUAL(gdn_json_get(root, "i")->type, GDN_JSON_NUMBER);
    CU_ASSERT_STRING_EQUAL(gdn_json_get(root, "i")->text, "-12");

    const gdn_json_t *s = gdn_json_get(root, "s");

    CU_ASSERT_EQUAL_FATAL(s->type, GDN_JSON_STRING);
    CU_ASSERT_EQUAL(s->len, 3);
    CU_ASSERT_EQUAL(memcmp(s->text, "h\xc3\xa9", 3), 0);

    const gdn_json_t *o = gdn_json_get(root, "o");

    CU_ASSERT_EQUAL_FATAL(o->type, GDN_JSON_OBJECT);
    CU_ASSERT_EQUAL(o->count, 1);
    CU_ASSERT_EQUAL(gdn_json_get(o, "a")->type, GDN_JSON_ARRAY);
    CU_ASSERT_EQUAL(gdn_json_get(o, "a")->count, 0);
    CU_ASSERT_PTR_NULL(gdn_json_get(o, "a")->first);

    const gdn_json_t *a = gdn_json_get(root, "a");

    CU_ASSERT_EQUAL_FATAL(a->count, 3);
    CU_ASSERT_EQUAL(a->first->type, GDN_JSON_NUMBER);
    CU_ASSERT_PTR_NULL(a->first->key);
    CU_ASSERT_EQUAL(a->first->next->type, GDN_JSON_STRING);
    CU_ASSERT_EQUAL(a->first->next->next->type, GDN_JSON_NULL);
    CU_ASSERT_PTR_EQUAL(a->last, a->first->next->next);
    CU_ASSERT_PTR_NULL(a->last->next);
    gdn_json_free(doc);
}

static void test_json__parse_scalar_roots(void)
{
    const char *texts[] = {"null", "true", "false", "0", "-1.5e-3", "\"\"", "[]", "{}"};
    const gdn_json_type_t types[] = {GDN_JSON_NULL,   GDN_JSON_BOOL,   GDN_JSON_BOOL,
                                     GDN_JSON_NUMBER, GDN_JSON_NUMBER, GDN_JSON_STRING,
                                     GDN_JSON_ARRAY,  GDN_JSON_OBJECT};

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        gdn_json_doc_t *doc = parse_ok(texts[i], strlen(texts[i]));

        CU_ASSERT_EQUAL(gdn_json_root(doc)->type, types[i]);
        gdn_json_free(doc);
    }
}

static void test_json__strings_keep_nul_bytes(void)
{
    gdn_json_doc_t *doc = PARSE_OK("{\"k\\u0000ey\":\"a\\u0000b\\u0000\"}");
    const gdn_json_t *member = gdn_json_root(doc)->first;

    CU_ASSERT_EQUAL_FATAL(member->key_len, 4);
    CU_ASSERT_EQUAL(memcmp(member->key, "k\0ey", 4), 0);
    CU_ASSERT_EQUAL_FATAL(member->len, 4);
    CU_ASSERT_EQUAL(memcmp(member->text, "a\0b\0", 4), 0);

    /* Lookup by a C string cannot reach a name holding a NUL. */
    CU_ASSERT_PTR_NULL(gdn_json_get(gdn_json_root(doc), "k"));
    gdn_json_free(doc);

    check_rewrite("[\"a\\u0000b\"]", 12, "[\"a\\u0000b\"]");
}

static void test_json__numbers_keep_their_text(void)
{
    const char *text = "[1.50,-0,1E+03,12345678901234567890123,0.1e-400,-7]";
    gdn_json_doc_t *doc = parse_ok(text, strlen(text));
    const char *expected[] = {"1.50", "-0", "1E+03", "12345678901234567890123", "0.1e-400", "-7"};
    const gdn_json_t *item = gdn_json_root(doc)->first;

    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(item);
        CU_ASSERT_EQUAL(item->type, GDN_JSON_NUMBER);
        CU_ASSERT_EQUAL(item->len, strlen(expected[i]));
        CU_ASSERT_STRING_EQUAL(item->text, expected[i]);
        item = item->next;
    }
    gdn_json_free(doc);
    check_rewrite(text, strlen(text), text);
}

/* Builds `depth` nested arrays, or objects with the member "k" when `objects` is set. */
static char *nested(int depth, int objects, size_t *len)
{
    size_t open_len = objects ? 5 : 1;
    char *text = malloc((size_t)depth * (open_len + 1) + 2);
    char *p = text;

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    for (int i = 0; i < depth; i++) {
        memcpy(p, objects ? "{\"k\":" : "[", open_len);
        p += open_len;
    }
    *p++ = '1';
    for (int i = 0; i < depth; i++)
        *p++ = objects ? '}' : ']';
    *p = '\0';
    *len = (size_t)(p - text);
    return text;
}

static void test_json__nesting_up_to_the_limit_is_accepted(void)
{
    for (int objects = 0; objects <= 1; objects++) {
        size_t len;
        char *text = nested(GDN_JSON_MAX_DEPTH, objects, &len);
        gdn_json_doc_t *doc = parse_ok(text, len);
        char *out = generate(gdn_json_root(doc));

        CU_ASSERT_STRING_EQUAL(out, text);
        free(out);
        gdn_json_free(doc);
        free(text);
    }
}

static void test_json__nesting_past_the_limit_is_refused(void)
{
    const int depths[] = {GDN_JSON_MAX_DEPTH + 1, 1000, 100000};

    for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
        for (int objects = 0; objects <= 1; objects++) {
            size_t len;
            char *text = nested(depths[i], objects, &len);
            gdn_json_error_t err = parse_bad(text, len);

            CU_ASSERT_STRING_EQUAL(err.message, "nesting too deep");
            free(text);
        }
    }

    /* Only unterminated openings: refused as soon as the limit is passed, not at the end. */
    char opening[2000];

    memset(opening, '[', sizeof(opening));

    gdn_json_error_t err = parse_bad(opening, sizeof(opening));

    CU_ASSERT_STRING_EQUAL(err.message, "nesting too deep");
    CU_ASSERT(err.offset < sizeof(opening));
}

static void test_json__invalid_utf8_is_refused(void)
{
    const char *bad[] = {
        "\"\xff\"",             /* never valid */
        "\"\xc3\x28\"",         /* lead byte without its continuation */
        "\"\xc0\xaf\"",         /* overlong '/' */
        "\"\xe0\x80\xaf\"",     /* overlong, three bytes */
        "\"\xed\xa0\x80\"",     /* UTF-16 surrogate written as UTF-8 */
        "\"\xf4\x90\x80\x80\"", /* above U+10FFFF */
        "\"\\udc00\"",          /* lone low surrogate escape */
        "{\"\xc0\xaf\":1}",     /* in a member name */
        "\"\xe2\x82\"",         /* truncated sequence */
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gdn_json_error_t err = parse_bad(bad[i], strlen(bad[i]));

        CU_ASSERT_STRING_EQUAL(err.message, "invalid UTF-8");
    }

    /* Sequences of two, three and four bytes, up to U+10FFFF, are accepted. */
    const char *longest = "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"";

    check_rewrite(longest, strlen(longest), longest);
    check_rewrite("\"\\ud83d\\ude00\"", 14, "\"\xf0\x9f\x98\x80\"");
}

static void test_json__trailing_data_is_refused(void)
{
    const char *bad[] = {"{} x", "1 2", "[]]", "{}{}", "\"a\" \"b\"", "null,"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        parse_bad(bad[i], strlen(bad[i]));

    gdn_json_error_t err = PARSE_BAD("{\"a\":1} x");

    CU_ASSERT_STRING_EQUAL(err.message, "trailing garbage");
    CU_ASSERT_EQUAL(err.offset, 8);

    /* The offset is where the extra data starts, also when a number ends the value. */
    err = PARSE_BAD("1 \n 2");
    CU_ASSERT_EQUAL(err.offset, 4);
    err = PARSE_BAD("01");
    CU_ASSERT_EQUAL(err.offset, 1);

    /* White space around the value is not trailing data. */
    gdn_json_free(PARSE_OK("\r\n\t {} \n"));
}

static void test_json__comments_are_refused(void)
{
    const char *bad[] = {"/* c */ {}", "{} // c", "[1, /* c */ 2]", "// c\n1"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        parse_bad(bad[i], strlen(bad[i]));
}

static void test_json__empty_input_is_refused(void)
{
    gdn_json_error_t err = PARSE_BAD("");

    CU_ASSERT_EQUAL(err.offset, 0);
    err = PARSE_BAD("   ");
    CU_ASSERT_EQUAL(err.offset, 3);

    gdn_json_doc_t *doc = NULL;

    CU_ASSERT_EQUAL(gdn_json_parse(NULL, 0, &doc, NULL), GDN_EINVALID);
    CU_ASSERT_PTR_NULL(doc);
}

static void test_json__malformed_input_is_refused_with_its_offset(void)
{
    const char *bad[] = {"[1,,2]", "{\"a\" 1}", "[1,]",   "tru", "01",       "-",   "\"\x01\"",
                         "{1:2}",  "\"\\x\"",   "[\"a\"", "nul", "{\"a\":}", "\x00"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        parse_bad(bad[i], strlen(bad[i]) > 0 ? strlen(bad[i]) : 1);

    gdn_json_error_t err = PARSE_BAD("[1,,2]");

    CU_ASSERT(err.offset >= 3 && err.offset <= 4);

    /* A NUL byte in the input ends nothing: what follows it is still read. */
    parse_bad("[1]\0", 4);
}

static void test_json__get_finds_the_last_duplicate(void)
{
    gdn_json_doc_t *doc = PARSE_OK("{\"a\":1,\"b\":2,\"a\":3,\"ab\":4}");
    const gdn_json_t *root = gdn_json_root(doc);

    CU_ASSERT_STRING_EQUAL(gdn_json_get(root, "a")->text, "3");
    CU_ASSERT_STRING_EQUAL(gdn_json_get(root, "ab")->text, "4");
    CU_ASSERT_PTR_NULL(gdn_json_get(root, "c"));
    CU_ASSERT_PTR_NULL(gdn_json_get(root, ""));
    CU_ASSERT_PTR_NULL(gdn_json_get(root->first, "a"));
    CU_ASSERT_PTR_NULL(gdn_json_get(NULL, "a"));
    gdn_json_free(doc);
}

/* Reads the integer of a one-number document. */
static int read_int(const char *text, int64_t *out, int *integral)
{
    gdn_json_doc_t *doc = parse_ok(text, strlen(text));
    int rc = gdn_json_int(gdn_json_root(doc), out);

    *integral = gdn_json_is_integral(gdn_json_root(doc));
    gdn_json_free(doc);
    return rc;
}

static void test_json__int_accepts_integral_numbers(void)
{
    static const struct {
        const char *text;
        int64_t value;
    } cases[] = {
        {"0", 0},
        {"-0", 0},
        {"-0.0e7", 0},
        {"42", 42},
        {"-42", -42},
        {"5.0", 5},
        {"5.000", 5},
        {"1e3", 1000},
        {"1E+3", 1000},
        {"12.50e1", 125},
        {"100e-2", 1},
        {"0.5e1", 5},
        {"0.0000e5", 0},
        {"9223372036854775807", INT64_MAX},
        {"-9223372036854775808", INT64_MIN},
        {"922337203685477580.7e1", INT64_MAX},
        {"9.223372036854775807e18", INT64_MAX},
        {"0.00001e5", 1},
        {"1000000000000000000000e-3", INT64_C(1000000000000000000)},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t value = -1;
        int integral = 0;
        int rc = read_int(cases[i].text, &value, &integral);

        if (rc != 0 || value != cases[i].value)
            fprintf(stderr, "\n%s read as %lld (rc %d)\n", cases[i].text, (long long)value, rc);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_EQUAL(value, cases[i].value);
        CU_ASSERT_EQUAL(integral, 1);
    }
}

static void test_json__int_refuses_fractions_and_overflow(void)
{
    static const struct {
        const char *text;
        int integral;
    } cases[] = {
        {"1.5", 0},
        {"-0.5", 0},
        {"1e-1", 0},
        {"15e-1", 0},
        {"0.1e-400", 0},
        {"1e-99999999999999999999999", 0},
        {"9223372036854775807.5", 0},
        {"9223372036854775808", 1},
        {"-9223372036854775809", 1},
        {"18446744073709551616", 1},
        {"99999999999999999999", 1},
        {"1e19", 1},
        {"1e400", 1},
        {"-1e400", 1},
        {"1e99999999999999999999999", 1},
        {"9223372036854775808.000", 1},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t value = 77;
        int integral = -1;

        CU_ASSERT_EQUAL(read_int(cases[i].text, &value, &integral), GDN_EINVALID);
        CU_ASSERT_EQUAL(value, 77);
        if (integral != cases[i].integral)
            fprintf(stderr, "\n%s: integral %d\n", cases[i].text, integral);
        CU_ASSERT_EQUAL(integral, cases[i].integral);
    }

    gdn_json_doc_t *doc = PARSE_OK("[\"5\",true,null,{},[]]");
    int64_t value = 77;

    for (const gdn_json_t *item = gdn_json_root(doc)->first; item != NULL; item = item->next) {
        CU_ASSERT_EQUAL(gdn_json_int(item, &value), GDN_EINVALID);
        CU_ASSERT_EQUAL(gdn_json_is_integral(item), 0);
    }
    CU_ASSERT_EQUAL(value, 77);
    CU_ASSERT_EQUAL(gdn_json_int(NULL, &value), GDN_EINVALID);
    gdn_json_free(doc);
}

static void test_json__generated_text_reads_back_the_same(void)
{
    const char *text =
        "{ \"s\" : \"a/b \\\"q\\\" \\\\ \\n\\t\\u0001 \\u00e9\", \"n\":[1 , 2.50, -0],"
        "\"o\":{\"\":null,\"t\":true,\"f\":false}, \"e\":{}, \"a\":[[]] }";
    const char *expected = "{\"s\":\"a/b \\\"q\\\" \\\\ \\n\\t\\u0001 \xc3\xa9\",\"n\":[1,2.50,-0],"
                           "\"o\":{\"\":null,\"t\":true,\"f\":false},\"e\":{},\"a\":[[]]}";

    check_rewrite(text, strlen(text), expected);
    check_rewrite(expected, strlen(expected), expected);
}

static void test_json__generator_helpers_write_compact_json(void)
{
    yajl_gen gen = gdn_json_gen_new();

    CU_ASSERT_PTR_NOT_NULL_FATAL(gen);
    CU_ASSERT_EQUAL(yajl_gen_array_open(gen), yajl_gen_status_ok);
    CU_ASSERT_EQUAL(gdn_json_gen_cstr(gen, "x/y"), 0);
    CU_ASSERT_EQUAL(gdn_json_gen_string(gen, "a\0b", 3), 0);
    CU_ASSERT_EQUAL(gdn_json_gen_time(gen, INT64_C(1768653296123456)), 0);
    CU_ASSERT_EQUAL(gdn_json_gen_time(gen, 0), 0);
    CU_ASSERT_EQUAL(gdn_json_gen(gen, NULL), 0);

    /* Invalid UTF-8 is refused by the generator, not written. */
    CU_ASSERT_EQUAL(gdn_json_gen_string(gen, "\xff", 1), GDN_EINVALID);
    CU_ASSERT_EQUAL(yajl_gen_array_close(gen), yajl_gen_status_ok);

    size_t len = 0;
    char *text = gdn_json_gen_take(gen, &len);
    const char *expected = "[\"x/y\",\"a\\u0000b\",\"2026-01-17T12:34:56.123456\","
                           "\"1970-01-01T00:00:00.000000\",null]";

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_STRING_EQUAL(text, expected);
    CU_ASSERT_EQUAL(len, strlen(expected));
    free(text);
    yajl_gen_free(gen);
}

static void test_json__large_documents_fill_many_chunks(void)
{
    /* 5000 strings of 100 bytes and one string larger than any chunk. */
    size_t big = 3 * 1024 * 1024;
    size_t cap = 5000 * 104 + big + 16;
    char *text = malloc(cap);
    char *p = text;

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    *p++ = '[';
    for (int i = 0; i < 5000; i++) {
        *p++ = '"';
        memset(p, 'a' + i % 26, 100);
        p += 100;
        *p++ = '"';
        *p++ = ',';
    }
    *p++ = '"';
    memset(p, 'z', big);
    p += big;
    *p++ = '"';
    *p++ = ']';

    gdn_json_doc_t *doc = parse_ok(text, (size_t)(p - text));
    const gdn_json_t *root = gdn_json_root(doc);

    CU_ASSERT_EQUAL(root->count, 5001);
    CU_ASSERT_EQUAL(root->first->len, 100);
    CU_ASSERT_EQUAL(root->first->text[99], 'a');
    CU_ASSERT_EQUAL(root->last->len, big);
    CU_ASSERT_EQUAL(root->last->text[big - 1], 'z');
    CU_ASSERT_EQUAL(root->last->text[big], '\0');

    char *out = generate(root);

    CU_ASSERT_EQUAL(strlen(out), (size_t)(p - text));
    CU_ASSERT_EQUAL(memcmp(out, text, (size_t)(p - text)), 0);
    free(out);
    gdn_json_free(doc);
    free(text);
    gdn_json_free(NULL);
}

static CU_TestInfo json_tests[] = {
    {"UTF-8 is checked as the generator requires: no overlongs, surrogates or truncation",
     test_json__utf8_is_checked_as_the_generator_requires},
    {"every JSON type parses into the right nodes", test_json__parse_every_type},
    {"any value may be the root", test_json__parse_scalar_roots},
    {"strings and names keep their NUL bytes", test_json__strings_keep_nul_bytes},
    {"numbers keep the text they were written with", test_json__numbers_keep_their_text},
    {"nesting up to the limit is accepted", test_json__nesting_up_to_the_limit_is_accepted},
    {"nesting past the limit is refused without harm",
     test_json__nesting_past_the_limit_is_refused},
    {"invalid UTF-8 is refused", test_json__invalid_utf8_is_refused},
    {"data after the value is refused", test_json__trailing_data_is_refused},
    {"comments are refused", test_json__comments_are_refused},
    {"empty input is refused", test_json__empty_input_is_refused},
    {"malformed input is refused with its offset",
     test_json__malformed_input_is_refused_with_its_offset},
    {"lookup finds the last of duplicate names", test_json__get_finds_the_last_duplicate},
    {"integral numbers read as integers", test_json__int_accepts_integral_numbers},
    {"fractions and numbers beyond 64 bits are refused as integers",
     test_json__int_refuses_fractions_and_overflow},
    {"generated text reads back the same", test_json__generated_text_reads_back_the_same},
    {"the generator helpers write compact JSON", test_json__generator_helpers_write_compact_json},
    {"large documents fill many arena chunks", test_json__large_documents_fill_many_chunks},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo gdn_test_suites[] = {
    {.pName = "json", .pTests = json_tests},
    CU_SUITE_INFO_NULL,
};
