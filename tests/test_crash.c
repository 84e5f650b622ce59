#include "harness.h"
static void test_x(void **s){(void)s;}
static const struct CMUnitTest tests[] = {cmocka_unit_test(test_x)};
T_MAIN(tests)
