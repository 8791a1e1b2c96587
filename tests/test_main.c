/* test_main.c - the CUnit runner: `clsoftmax_tests [--suite NAME]...`, exit 77 when skipped. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#include "test_suites.h"
#include "test_util.h"

/* Suites whose names end in "opencl" (or are listed here) need an OpenCL device. */
static int suite_needs_opencl(const char* name)
{
    size_t len = strlen(name);
    return strcmp(name, "buffer") == 0 || (len >= 6 && strcmp(name + len - 6, "opencl") == 0);
}

int main(int argc, char** argv)
{
    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
        return 1;
    }
    test_register_status();
    test_register_validate();
    test_register_plan();
    test_register_softmax();
    test_register_buffer();
    test_register_context();
    test_register_npy();
    test_register_tool();
    test_register_build();
    test_register_threads();
    test_register_host_path();
    test_register_disk_cache();
    test_register_prepare();
    test_register_cpu_kernels();
    test_register_limits();
    test_register_params();
    test_register_ops();

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
        if (suite_needs_opencl(name) && !test_opencl_available()) {
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
