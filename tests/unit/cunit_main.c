/*
 * Runs the suites of one unit test binary and exits non-zero if any test, assertion or suite
 * set-up failed. CUnit leaves the failure count at 0 when a suite's init fails, so all three
 * counts are checked.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>

#include "cunit_main.h"

void gdn_test_tmpdir(char *out, size_t size)
{
    const char *base = getenv("TMPDIR");

    snprintf(out, size, "%s/gdn-unit-XXXXXX", base && *base ? base : "/tmp");
    CU_ASSERT_FATAL(mkdtemp(out) != NULL);
}

static int on_remove(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void gdn_test_rmdir(const char *path)
{
    nftw(path, on_remove, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    if (CU_register_suites(gdn_test_suites) != CUE_SUCCESS) {
        fprintf(stderr, "cannot register suites: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();

    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed() +
                      CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
