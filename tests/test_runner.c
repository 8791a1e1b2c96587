/* test_runner.c - the main loop shared by the CUnit runners (suite selection, skip, exit codes). */
#include "test_runner.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#include "test_util.h"

/* Suites whose names end in "opencl" (or are listed by the runner) need an OpenCL device. */
static int suite_needs_opencl(const char* name, const char* const* opencl_suites)
{
    size_t len = strlen(name);
    if (len >= 6 && strcmp(name + len - 6, "opencl") == 0)
        return 1;
    for (const char* const* listed = opencl_suites; listed != NULL && *listed != NULL; ++listed)
        if (strcmp(name, *listed) == 0)
            return 1;
    return 0;
}

int test_runner_main(int argc, char** argv, const test_register_fn* registrations, int count,
                     const char* const* opencl_suites)
{
    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
        return 1;
    }
    for (int i = 0; i < count; ++i)
        registrations[i]();

    CU_basic_set_mode(CU_BRM_VERBOSE);
    int ran = 0;
    int skipped = 0;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--suite") != 0 || i + 1 >= argc) {
            fprintf(stderr, "usage: %s [--suite NAME]...\n", argv[0]);
            CU_cleanup_registry();
            return 2;
        }
        const char* name = argv[++i];
        CU_pSuite suite = CU_get_suite(name);
        if (suite == NULL) {
            fprintf(stderr, "no suite named '%s'\n", name);
            CU_cleanup_registry();
            return 2;
        }
        if (suite_needs_opencl(name, opencl_suites) && !test_opencl_available()) {
            printf("suite %s: skipped, no OpenCL device\n", name);
            ++skipped;
            continue;
        }
        CU_basic_run_suite(suite);
        ++ran;
    }
    if (argc == 1) {
        CU_basic_run_tests();
        ++ran;
    }
    unsigned failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    if (ran == 0 && skipped > 0)
        return 77;
    return failures == 0 ? 0 : 1;
}
