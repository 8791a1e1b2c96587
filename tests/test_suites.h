/* test_suites.h - the registration function of each test file, called by test_main.c. */
#ifndef CLSOFTMAX_TEST_SUITES_H
#define CLSOFTMAX_TEST_SUITES_H

/* clang-format off */
/* Each adds its CUnit suites (named as in tests/CMakeLists.txt) to the registry. */
void test_register_status(void);        /* "status" */
void test_register_validate(void);      /* "validate" */
void test_register_plan(void);          /* "plan" */
void test_register_softmax(void);       /* "cpu", "opencl", "group_opencl" */
void test_register_buffer(void);        /* "buffer" */
void test_register_context(void);       /* "context_cpu", "context_opencl" */
void test_register_npy(void);           /* "npy" */
void test_register_tool(void);          /* "tool", "tool_opencl" */
void test_register_build(void);         /* "build_opencl" */
void test_register_threads(void);       /* "threads_cpu", "threads_opencl" */
void test_register_host_path(void);     /* "host_path_opencl" */
void test_register_prepare(void);       /* "prepare_cpu", "prepare_opencl" */
void test_register_disk_cache(void);    /* "disk_cache_cpu", "disk_cache_opencl" */
void test_register_cpu_kernels(void);   /* "cpu_kernels" */
void test_register_limits(void);        /* "limits", "limits_opencl" */
void test_register_params(void);        /* "params", "params_opencl" */
void test_register_ops(void);           /* "ops_cpu", "ops_opencl" */
void test_register_half_convert(void);  /* "half_convert" */
void test_register_forward16(void);     /* "forward16_cpu", "forward16_opencl" */
void test_register_policy(void);        /* "policy_cpu", "policy_opencl" */
void test_register_backward(void);      /* "backward_cpu", "backward_opencl" */
void test_register_cross_entropy(void); /* "xent_cpu", "xent_opencl" */
/* In clsoftmax_fault_tests (faults_main.c), linked against the library's internals. */
void test_register_faults(void);        /* "faults_cpu", "faults_opencl", "fallback_opencl" */
void test_register_soak(void);          /* "soak_cpu", "soak_opencl" */
/* clang-format on */

#endif
