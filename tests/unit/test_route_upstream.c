/* test_route_upstream: the upstream URL forms route/upstream accepts and refuses. */
#include "check.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "route/upstream.h"
#include "util/error.h"

static void test_ipv4_url(void)
{
	struct an_upstream u;
	const struct sockaddr_in *a = (const struct sockaddr_in *)&u.addr;
	CHECK_EQ_INT(an_upstream_init(&u, "http://127.0.0.1:8080"), 0);
	CHECK_EQ_INT(a->sin_family, AF_INET);
	CHECK_EQ_INT(ntohs(a->sin_port), 8080);
	CHECK_EQ_INT(ntohl(a->sin_addr.s_addr), 0x7f000001);
	CHECK_EQ_INT(u.addrlen, sizeof(struct sockaddr_in));
}

static void test_ipv6_url(void)
{
	struct an_upstream u;
	const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&u.addr;
	CHECK_EQ_INT(an_upstream_init(&u, "http://[::1]:9000/"), 0);
	CHECK_EQ_INT(a->sin6_family, AF_INET6);
	CHECK_EQ_INT(ntohs(a->sin6_port), 9000);
	CHECK(IN6_IS_ADDR_LOOPBACK(&a->sin6_addr));
}

static void test_trailing_slash_only(void)
{
	struct an_upstream u;
	CHECK_EQ_INT(an_upstream_init(&u, "http://127.0.0.1:80/"), 0);
	CHECK_EQ_INT(an_upstream_init(&u, "http://127.0.0.1:80/app"), AN_EMALFORMED);
	CHECK_EQ_INT(an_upstream_init(&u, "http://127.0.0.1:80?x"), AN_EMALFORMED);
}

static void test_refused_forms(void)
{
	struct an_upstream u;
	static const char *const bad[] = {
		"https://127.0.0.1:443", "127.0.0.1:80", "http://localhost:80", "http://127.0.0.1",
		"http://127.0.0.1:", "http://127.0.0.1:0", "http://127.0.0.1:65536", "http://127.0.0.1:-1",
		"http://[::1:80", "http://::1:80", "http://[::1]", "http://127.0.0.1:8x", "",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = an_upstream_init(&u, bad[i]);
		if (rc != AN_EMALFORMED)
			printf("#   accepted '%s'\n", bad[i]);
		CHECK_EQ_INT(rc, AN_EMALFORMED);
	}
}

int main(void)
{
	RUN(test_ipv4_url);
	RUN(test_ipv6_url);
	RUN(test_trailing_slash_only);
	RUN(test_refused_forms);
	return check_done();
}
