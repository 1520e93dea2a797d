/*
 * check.h - the unit-test harness: TAP output, one line per check group.
 *
 *   static void test_varint_roundtrip(void) { CHECK(x == 1); CHECK_EQ_INT(a, b); }
 *   int main(void) { RUN(test_varint_roundtrip); return check_done(); }
 *
 * tools/run-tests counts the "ok" / "not ok" lines.
 */
#ifndef AN_TEST_CHECK_H
#define AN_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures_in_test;
static int check_tests_run;
static int check_tests_failed;

#define CHECK(cond)                                                                     \
	do {                                                                            \
		if (!(cond)) {                                                          \
			printf("#   %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
			check_failures_in_test++;                                       \
		}                                                                       \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                             \
	do {                                                                           \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);        \
		if (check_a_ != check_b_) {                                            \
			printf("#   %s:%d: %s == %lld, expected %s == %lld\n", __FILE__, \
			       __LINE__, #a, check_a_, #b, check_b_);                  \
			check_failures_in_test++;                                      \
		}                                                                      \
	} while (0)

#define CHECK_EQ_STR(a, b)                                                              \
	do {                                                                            \
		const char *check_a_ = (a), *check_b_ = (b);                            \
		if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {        \
			printf("#   %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__,     \
			       __LINE__, #a, check_a_ ? check_a_ : "(null)",            \
			       check_b_ ? check_b_ : "(null)");                         \
			check_failures_in_test++;                                       \
		}                                                                       \
	} while (0)

#define CHECK_EQ_MEM(a, b, n)                                                          \
	do {                                                                           \
		if (memcmp((a), (b), (n)) != 0) {                                      \
			printf("#   %s:%d: %s differs from %s\n", __FILE__, __LINE__, #a, #b); \
			check_failures_in_test++;                                      \
		}                                                                      \
	} while (0)

#define RUN(fn)                                                                  \
	do {                                                                     \
		check_failures_in_test = 0;                                      \
		fn();                                                            \
		check_tests_run++;                                               \
		if (check_failures_in_test) {                                    \
			check_tests_failed++;                                    \
			printf("not ok %d - %s\n", check_tests_run, #fn);        \
		} else {                                                         \
			printf("ok %d - %s\n", check_tests_run, #fn);            \
		}                                                                \
		fflush(stdout);                                                  \
	} while (0)

static inline int check_done(void)
{
	printf("1..%d\n", check_tests_run);
	return check_tests_failed ? 1 : 0;
}

/* Decode hex into out (cap outlen); returns bytes written or -1. */
static inline int check_unhex(const char *hex, unsigned char *out, size_t outlen)
{
	size_t n = strlen(hex);
	if (n % 2 || n / 2 > outlen)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (unsigned char)v;
	}
	return (int)(n / 2);
}

#endif
