/* test_suites.h - the registration function of each test file, called by test_main.c. */
#ifndef CLSOFTMAX_TEST_SUITES_H
#define CLSOFTMAX_TEST_SUITES_H

/* Each adds its CUnit suites (named as in tests/CMakeLists.txt) to the registry. */
void test_register_status(void);   /* "status" */
void test_register_validate(void); /* "validate" */
void test_register_plan(void);     /* "plan" */
void test_register_softmax(void);  /* "cpu", "opencl" */
void test_register_buffer(void);   /* "buffer" */
void test_register_context(void);  /* "context_cpu", "context_opencl" */
void test_register_npy(void);      /* "npy" */
void test_register_tool(void);     /* "tool", "tool_opencl" */
void test_register_ops(void);      /* "ops_cpu", "ops_opencl" */

#endif
