/* test_main.c - the CUnit runner: `clsoftmax_tests [--suite NAME]...`, exit 77 when skipped. */
#include <stddef.h>

#include "test_runner.h"
#include "test_suites.h"

/* One registration per line, so that additions merge cleanly. */
/* clang-format off */
static const test_register_fn registrations[] = {
    test_register_status,
    test_register_validate,
    test_register_plan,
    test_register_softmax,
    test_register_buffer,
    test_register_context,
    test_register_npy,
    test_register_tool,
    test_register_build,
    test_register_threads,
    test_register_host_path,
    test_register_disk_cache,
    test_register_prepare,
    test_register_cpu_kernels,
    test_register_limits,
    test_register_params,
    test_register_ops,
    test_register_forward16,
    test_register_policy,
    test_register_backward,
    test_register_half_convert,
    test_register_cross_entropy,
};
/* clang-format on */

/* "buffer" needs an OpenCL device although its name does not say so. */
static const char* const opencl_suites[] = {"buffer", NULL};

int main(int argc, char** argv)
{
    return test_runner_main(argc, argv, registrations,
                            (int)(sizeof registrations / sizeof registrations[0]), opencl_suites);
}
