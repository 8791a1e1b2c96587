/* test_status.c - suite "status": the status table, its fixed numbers, names, and the version. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "clsoftmax.h"
#include "test_suites.h"
#include "test_util.h"

/* Each enumerator's number is part of the ABI: spelled out here, never derived from the table. */
static void test_fixed_values(void)
{
    CU_ASSERT_EQUAL(CLSOFTMAX_SUCCESS, 0);
    CU_ASSERT_EQUAL(CLSOFTMAX_INVALID_ARGUMENT, 1);
    CU_ASSERT_EQUAL(CLSOFTMAX_INVALID_SHAPE, 2);
    CU_ASSERT_EQUAL(CLSOFTMAX_INVALID_AXIS, 3);
    CU_ASSERT_EQUAL(CLSOFTMAX_INVALID_DTYPE, 4);
    CU_ASSERT_EQUAL(CLSOFTMAX_INVALID_SCALE, 5);
    CU_ASSERT_EQUAL(CLSOFTMAX_SIZE_OVERFLOW, 6);
    CU_ASSERT_EQUAL(CLSOFTMAX_BUFFER_TOO_SMALL, 7);
    CU_ASSERT_EQUAL(CLSOFTMAX_INVALID_CONTEXT, 8);
    CU_ASSERT_EQUAL(CLSOFTMAX_INVALID_QUEUE, 9);
    CU_ASSERT_EQUAL(CLSOFTMAX_UNSUPPORTED, 10);
    CU_ASSERT_EQUAL(CLSOFTMAX_NO_DEVICE, 11);
    CU_ASSERT_EQUAL(CLSOFTMAX_OPENCL_ERROR, 12);
    CU_ASSERT_EQUAL(CLSOFTMAX_BUILD_FAILURE, 13);
    CU_ASSERT_EQUAL(CLSOFTMAX_OUT_OF_MEMORY, 14);
    CU_ASSERT_EQUAL(CLSOFTMAX_OVERLAP, 15);
    /* Other fixed enums of the public ABI. */
    CU_ASSERT_EQUAL(CLSOFTMAX_BACKEND_AUTO, 0);
    CU_ASSERT_EQUAL(CLSOFTMAX_BACKEND_OPENCL, 1);
    CU_ASSERT_EQUAL(CLSOFTMAX_BACKEND_CPU, 2);
    CU_ASSERT_EQUAL(CLSOFTMAX_FLOAT32, 0);
    CU_ASSERT_EQUAL(CLSOFTMAX_FLOAT64, 1);
    CU_ASSERT_EQUAL(CLSOFTMAX_OP_SOFTMAX, 0);
    CU_ASSERT_EQUAL(CLSOFTMAX_OP_LOG_SOFTMAX, 1);
    CU_ASSERT_EQUAL(CLSOFTMAX_MAX_DIMS, 8);
}

static void test_names_and_strings(void)
{
    static const struct {
        clsoftmax_status status;
        const char* name;
    } table[] = {
        {CLSOFTMAX_SUCCESS, "SUCCESS"},
        {CLSOFTMAX_INVALID_ARGUMENT, "INVALID_ARGUMENT"},
        {CLSOFTMAX_INVALID_SHAPE, "INVALID_SHAPE"},
        {CLSOFTMAX_INVALID_AXIS, "INVALID_AXIS"},
        {CLSOFTMAX_INVALID_DTYPE, "INVALID_DTYPE"},
        {CLSOFTMAX_INVALID_SCALE, "INVALID_SCALE"},
        {CLSOFTMAX_SIZE_OVERFLOW, "SIZE_OVERFLOW"},
        {CLSOFTMAX_BUFFER_TOO_SMALL, "BUFFER_TOO_SMALL"},
        {CLSOFTMAX_INVALID_CONTEXT, "INVALID_CONTEXT"},
        {CLSOFTMAX_INVALID_QUEUE, "INVALID_QUEUE"},
        {CLSOFTMAX_UNSUPPORTED, "UNSUPPORTED"},
        {CLSOFTMAX_NO_DEVICE, "NO_DEVICE"},
        {CLSOFTMAX_OPENCL_ERROR, "OPENCL_ERROR"},
        {CLSOFTMAX_BUILD_FAILURE, "BUILD_FAILURE"},
        {CLSOFTMAX_OUT_OF_MEMORY, "OUT_OF_MEMORY"},
        {CLSOFTMAX_OVERLAP, "OVERLAP"},
    };
    const size_t count = sizeof table / sizeof table[0];
    for (size_t i = 0; i < count; ++i) {
        const char* name = clsoftmax_status_name(table[i].status);
        const char* text = clsoftmax_status_string(table[i].status);
        TEST_CHECK(name != NULL && strcmp(name, table[i].name) == 0,
                   "clsoftmax_status_name(%d) = \"%s\", expected \"%s\"", (int)table[i].status,
                   name ? name : "(null)", table[i].name);
        TEST_CHECK(text != NULL && text[0] != '\0', "clsoftmax_status_string(%d) is empty",
                   (int)table[i].status);
        /* Sentences must differ, or a user could not tell errors apart. */
        for (size_t j = 0; j < i && text != NULL; ++j) {
            const char* other = clsoftmax_status_string(table[j].status);
            TEST_CHECK(other == NULL || strcmp(text, other) != 0,
                       "statuses %s and %s share the string \"%s\"", table[i].name, table[j].name,
                       text);
        }
    }
    CU_ASSERT_STRING_EQUAL(clsoftmax_status_string(CLSOFTMAX_SUCCESS), "success");
    CU_ASSERT(test_contains(clsoftmax_status_string(CLSOFTMAX_INVALID_AXIS), "axis"));
    CU_ASSERT(test_contains(clsoftmax_status_string(CLSOFTMAX_OVERLAP), "overlap"));
}

static void test_unknown_values(void)
{
    const int unknown[] = {-1, 16, 17, 100, 0x7fffffff};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; ++i) {
        clsoftmax_status st = (clsoftmax_status)unknown[i];
        const char* name = clsoftmax_status_name(st);
        const char* text = clsoftmax_status_string(st);
        TEST_CHECK(name != NULL && name[0] != '\0', "clsoftmax_status_name(%d) NULL or empty",
                   unknown[i]);
        TEST_CHECK(text != NULL && text[0] != '\0', "clsoftmax_status_string(%d) NULL or empty",
                   unknown[i]);
        /* An unknown value must not masquerade as success. */
        TEST_CHECK(name == NULL || strcmp(name, "SUCCESS") != 0,
                   "clsoftmax_status_name(%d) claims SUCCESS", unknown[i]);
    }
}

static void test_version(void)
{
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", CLSOFTMAX_VERSION_MAJOR,
             CLSOFTMAX_VERSION_MINOR, CLSOFTMAX_VERSION_PATCH);
    const char* got = clsoftmax_version_string();
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    TEST_CHECK(strcmp(got, expected) == 0, "clsoftmax_version_string() = \"%s\", expected \"%s\"",
               got, expected);
    CU_ASSERT_EQUAL(clsoftmax_version_number(), (unsigned)CLSOFTMAX_VERSION_NUMBER);
    CU_ASSERT_EQUAL(CLSOFTMAX_VERSION_NUMBER, CLSOFTMAX_VERSION_MAJOR * 10000 +
                                                  CLSOFTMAX_VERSION_MINOR * 100 +
                                                  CLSOFTMAX_VERSION_PATCH);
}

void test_register_status(void)
{
    CU_pSuite suite = CU_add_suite("status", NULL, NULL);
    if (suite == NULL)
        return;
    CU_add_test(suite, "fixed numeric values", test_fixed_values);
    CU_add_test(suite, "names and strings", test_names_and_strings);
    CU_add_test(suite, "unknown values", test_unknown_values);
    CU_add_test(suite, "version", test_version);
}
