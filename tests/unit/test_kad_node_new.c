/*
 * test_kad_node_new.c - an_kad_node_new refuses what it cannot hold instead
 * of truncating it (a protocol of 256 bytes or more used to be cut to 255
 * and served under that other name; a state directory of 4096 bytes or more
 * cut to another directory), and its failures leave the host as they found
 * it (no handler registered, nothing leaked: the san suite runs this too).
 */
#include "crypto/key.h"
#include "dht/kad_node.h"
#include "transport/host.h"
#include "util/error.h"

#include <errno.h>
#include <ev.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

static struct an_privkey *key;
static char dir[] = "/tmp/test_kad_node_new.XXXXXX";

struct world {
	struct ev_loop *loop;
	struct an_host *h;
};

static int world_open(struct world *w)
{
	struct an_host_config hc = {.key = key};
	w->loop = ev_loop_new(0);
	w->h = NULL;
	return w->loop ? an_host_new(w->loop, &hc, &w->h) : -ENOMEM;
}

static void world_close(struct world *w)
{
	an_host_free(w->h);
	if (w->loop)
		ev_loop_destroy(w->loop);
}

static void fill(char *s, size_t n, char c)
{
	memset(s, c, n);
	s[n] = '\0';
}

static void test_protocol_too_long_is_refused_not_truncated(void)
{
	struct world w;
	struct an_kad_node_config kc = {0};
	struct an_kad_node *n = (struct an_kad_node *)&w; /* must be reset to NULL */
	char proto[300];
	const char *list[AN_HOST_MAX_PROTOCOLS];
	CHECK_EQ_INT(world_open(&w), 0);
	proto[0] = '/';
	fill(proto + 1, 279, 'p');
	kc.protocol = proto;
	kc.state_dir = dir;
	kc.client = true; /* client mode registers nothing: only the name check can refuse */
	CHECK_EQ_INT(an_kad_node_new(w.h, &kc, &n), -ENAMETOOLONG);
	CHECK(n == NULL);
	kc.client = false;
	CHECK_EQ_INT(an_kad_node_new(w.h, &kc, &n), -ENAMETOOLONG);
	CHECK_EQ_INT(an_host_protocols(w.h, list, AN_HOST_MAX_PROTOCOLS), 0);
	an_kad_node_free(n);
	world_close(&w);
}

static void test_protocol_of_255_bytes_is_taken_whole(void)
{
	struct world w;
	struct an_kad_node_config kc = {0};
	struct an_kad_node *n = NULL;
	char proto[256];
	CHECK_EQ_INT(world_open(&w), 0);
	proto[0] = '/';
	fill(proto + 1, 254, 'q');
	kc.protocol = proto;
	kc.state_dir = dir;
	kc.client = true;
	CHECK_EQ_INT(an_kad_node_new(w.h, &kc, &n), 0);
	CHECK(n != NULL);
	if (n)
		CHECK_EQ_STR(an_kad_node_protocol(n), proto);
	an_kad_node_free(n);
	world_close(&w);
}

static void test_state_dir_too_long_is_refused(void)
{
	struct world w;
	struct an_kad_node_config kc = {0};
	struct an_kad_node *n = NULL;
	static char long_dir[5000];
	CHECK_EQ_INT(world_open(&w), 0);
	/* dir, then "/./" repeated: the same directory to the kernel once cut
	   anywhere, so only the length check tells the two apart */
	size_t len = (size_t)snprintf(long_dir, sizeof(long_dir), "%s", dir);
	while (len + 2 < 4200) {
		memcpy(long_dir + len, "/.", 2);
		len += 2;
	}
	long_dir[len] = '\0';
	kc.state_dir = long_dir;
	CHECK_EQ_INT(an_kad_node_new(w.h, &kc, &n), -ENAMETOOLONG);
	CHECK(n == NULL);
	an_kad_node_free(n);
	world_close(&w);
}

static void test_failure_after_the_store_leaves_the_host_clean(void)
{
	struct world w;
	struct an_kad_node_config kc = {0};
	struct an_kad_node *n = NULL;
	static const struct an_stream_handler none = {0};
	char proto[16];
	const char *list[AN_HOST_MAX_PROTOCOLS];
	CHECK_EQ_INT(world_open(&w), 0);
	/* a full protocol table: the node opens its store, then cannot register */
	for (int i = 0; i < AN_HOST_MAX_PROTOCOLS; i++) {
		snprintf(proto, sizeof(proto), "/p/%d", i);
		CHECK_EQ_INT(an_host_handle(w.h, proto, &none, NULL), 0);
	}
	kc.state_dir = dir;
	CHECK_EQ_INT(an_kad_node_new(w.h, &kc, &n), AN_ELIMIT);
	CHECK(n == NULL);
	CHECK_EQ_INT(an_host_protocols(w.h, list, AN_HOST_MAX_PROTOCOLS), AN_HOST_MAX_PROTOCOLS);
	/* and the store it opened was closed: a second node opens it again */
	an_host_unhandle(w.h, "/p/0");
	CHECK_EQ_INT(an_kad_node_new(w.h, &kc, &n), 0);
	an_kad_node_free(n);
	world_close(&w);
}

int main(void)
{
	if (sodium_init() < 0 || an_privkey_generate(&key) < 0 || !mkdtemp(dir))
		return 1;
	RUN(test_protocol_too_long_is_refused_not_truncated);
	RUN(test_protocol_of_255_bytes_is_taken_whole);
	RUN(test_state_dir_too_long_is_refused);
	RUN(test_failure_after_the_store_leaves_the_host_clean);
	an_privkey_free(key);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 1;
	return check_done();
}
