/* test_runner.h - the main loop shared by the CUnit runners (suite selection, skip, exit codes). */
#ifndef CLSOFTMAX_TEST_RUNNER_H
#define CLSOFTMAX_TEST_RUNNER_H

/* Registers the runner's suites: called once the CUnit registry exists. */
typedef void (*test_register_fn)(void);

/* Runs `prog [--suite NAME]...` (no argument: every suite) over the suites the functions in
 * `registrations` (count entries) register. Suites whose names end in "opencl", or that are named
 * in the NULL-terminated `opencl_suites` (may be NULL), are skipped where no OpenCL device exists.
 * Returns the process exit status: 0 passed, 1 failed, 2 usage error, 77 every suite skipped. */
int test_runner_main(int argc, char** argv, const test_register_fn* registrations, int count,
                     const char* const* opencl_suites);

#endif
