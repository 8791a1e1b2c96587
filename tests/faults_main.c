/* faults_main.c - the fault-injection runner: `clsoftmax_fault_tests [--suite NAME]...`, exit 77
 * when skipped. */
#include <stddef.h>

#include "test_runner.h"
#include "test_suites.h"

static const test_register_fn registrations[] = {
    test_register_faults,
    test_register_soak,
};

int main(int argc, char** argv)
{
    return test_runner_main(argc, argv, registrations,
                            (int)(sizeof registrations / sizeof registrations[0]), NULL);
}
