/*
 * test_init.c - process-wide state changes only through an_global_init:
 * an_host_new used to call mallopt(M_MMAP_THRESHOLD) on every call, even
 * for a config it then refused.  And the host borrows agent_version, as
 * host.h says (it used to copy it with an unchecked strdup).
 *
 * How the threshold shows: glibc raises its mmap threshold when a mmapped
 * block is freed (a 1 MiB block freed: the next one comes from the heap)
 * unless mallopt fixed it, so "is the second 1 MiB block mmapped" tells
 * whether anyone called mallopt.  Each check runs in a child of its own
 * (the threshold is process-wide).  ASan replaces malloc, which makes
 * mallopt moot: the malloc checks are skipped there (and said so).
 */
#include "crypto/key.h"
#include "transport/host.h"
#include "util/init.h"

#include <errno.h>
#include <ev.h>
#include <malloc.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#if defined(__SANITIZE_ADDRESS__)
#define MALLOC_IS_GLIBC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MALLOC_IS_GLIBC 0
#endif
#endif
#ifndef MALLOC_IS_GLIBC
#define MALLOC_IS_GLIBC 1
#endif

#define BIG (1024 * 1024)

/* In a child: after setup(), is a second big block still mmapped? 1 yes, 0 no. */
static int second_block_mmapped(void (*setup)(void))
{
	pid_t pid = fork();
	if (pid == 0) {
		setup();
		void *volatile a = malloc(BIG);
		free(a);
		void *volatile b = malloc(BIG);
		struct mallinfo2 mi = mallinfo2();
		int mapped = mi.hblks > 0;
		free(b);
		_exit(mapped);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static void nothing(void)
{
}

static void refused_host(void)
{
	struct an_host_config hc = {0}; /* no key: refused */
	struct an_host *h = NULL;
	struct ev_loop *loop = ev_loop_new(0);
	if (an_host_new(loop, &hc, &h) != -EINVAL)
		_exit(9);
	ev_loop_destroy(loop);
}

static void good_host(void)
{
	struct an_privkey *k = NULL;
	struct an_host_config hc = {0};
	struct an_host *h = NULL;
	struct ev_loop *loop = ev_loop_new(0);
	if (an_privkey_generate(&k) < 0)
		_exit(9);
	hc.key = k;
	if (an_host_new(loop, &hc, &h) != 0)
		_exit(9);
	an_host_free(h);
	an_privkey_free(k);
	ev_loop_destroy(loop);
}

static void global_init(void)
{
	if (an_global_init() != 0)
		_exit(9);
}

static void test_malloc_left_alone_without_global_init(void)
{
	if (!MALLOC_IS_GLIBC) {
		printf("# skipped under ASan: malloc is not glibc's\n");
		return;
	}
	CHECK_EQ_INT(second_block_mmapped(nothing), 0);     /* glibc's own behaviour */
	CHECK_EQ_INT(second_block_mmapped(refused_host), 0);
	CHECK_EQ_INT(second_block_mmapped(good_host), 0);
}

static void test_global_init_fixes_the_mmap_threshold(void)
{
	if (!MALLOC_IS_GLIBC) {
		printf("# skipped under ASan: malloc is not glibc's\n");
		return;
	}
	CHECK_EQ_INT(second_block_mmapped(global_init), 1);
}

static void test_global_init_is_idempotent(void)
{
	CHECK_EQ_INT(an_global_init(), 0);
	CHECK_EQ_INT(an_global_init(), 0);
}

static void test_agent_version_is_borrowed(void)
{
	struct an_privkey *k = NULL;
	struct an_host_config hc = {0};
	struct an_host *h = NULL;
	struct ev_loop *loop = ev_loop_new(0);
	static const char agent[] = "test/1";
	CHECK_EQ_INT(an_privkey_generate(&k), 0);
	hc.key = k;
	hc.agent_version = agent;
	CHECK_EQ_INT(an_host_new(loop, &hc, &h), 0);
	CHECK(an_host_agent(h) == agent); /* the very pointer: nothing to fail */
	an_host_free(h);
	hc.agent_version = NULL;
	CHECK_EQ_INT(an_host_new(loop, &hc, &h), 0);
	CHECK(an_host_agent(h) == NULL);
	an_host_free(h);
	an_privkey_free(k);
	ev_loop_destroy(loop);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(test_malloc_left_alone_without_global_init);
	RUN(test_global_init_fixes_the_mmap_threshold);
	RUN(test_global_init_is_idempotent);
	RUN(test_agent_version_is_borrowed);
	return check_done();
}
