/*
 * The shared main() of the unit test binaries: each binary defines its suites in
 * `gdn_test_suites` and cunit_main.c runs them.
 */
#ifndef GDN_TEST_CUNIT_MAIN_H
#define GDN_TEST_CUNIT_MAIN_H

#include <CUnit/CUnit.h>

/** The suites of one test binary, terminated by CU_SUITE_INFO_NULL. */
extern CU_SuiteInfo gdn_test_suites[];

/**
 * Makes a fresh directory under $TMPDIR (or /tmp) for one test and returns its path in `out`.
 * Fails the calling test if it cannot.
 */
void gdn_test_tmpdir(char *out, size_t size);

/** Removes a directory made by gdn_test_tmpdir and everything in it. */
void gdn_test_rmdir(const char *path);

#endif
