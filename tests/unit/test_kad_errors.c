/*
 * test_kad_errors.c - why a kad operation failed (kad_node.h's error
 * contract): -ENOENT when peers answered and none had the name,
 * -EHOSTUNREACH when nobody could be reached (empty table, refused dials),
 * -ETIMEDOUT when the peers stayed silent.  Real hosts on 127.0.0.1, one
 * loop, bounded waits.
 */
#include "crypto/key.h"
#include "crypto/peerid.h"
#include "dht/kad_node.h"
#include "dht/routing.h"
#include "transport/host.h"
#include "transport/identify.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

#define SHORT_MS 400 /* request timeout of the node under test */

static struct an_privkey *ka, *kb, *kx;

struct net {
	struct ev_loop *loop;
	struct an_host *a, *b;
	struct an_kad_node *na, *nb;
	char da[64], db[64];
};

struct res {
	bool done;
	int err;
	size_t n;
};

static void boot_cb(void *arg, int err, size_t size)
{
	struct res *r = arg;
	r->done = true;
	r->err = err;
	r->n = size;
}

static void get_cb(void *arg, int err, const uint8_t *v, size_t len, size_t from)
{
	(void)v; (void)len; (void)from;
	struct res *r = arg;
	r->done = true;
	r->err = err;
}

static void put_cb(void *arg, int err, size_t stored, const struct an_peerid *p, size_t np)
{
	(void)p; (void)np;
	struct res *r = arg;
	r->done = true;
	r->err = err;
	r->n = stored;
}

static void prov_cb(void *arg, int err, const struct an_kad_provider *p, size_t np)
{
	(void)p;
	struct res *r = arg;
	r->done = true;
	r->err = err;
	r->n = np;
}

static int node_new(struct ev_loop *loop, struct an_privkey *k, char *dir, struct an_host **h,
		    struct an_kad_node **n)
{
	struct an_host_config hc = {.key = k};
	struct an_kad_node_config kc = {0};
	snprintf(dir, 64, "/tmp/test_kad_errors.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	if (an_host_new(loop, &hc, h) < 0 || an_identify_service_register(*h) < 0 ||
	    an_host_listen(*h, "/ip4/127.0.0.1/tcp/0") < 0)
		return -1;
	kc.state_dir = dir;
	kc.request_timeout_ms = SHORT_MS;
	return an_kad_node_new(*h, &kc, n) < 0 ? -1 : 0;
}

static void rm_dir(const char *dir)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (dir[0] && system(cmd) != 0)
		printf("# could not remove %s\n", dir);
}

/* A alone (with_b false), or A and B, B's kad serving. */
static int net_new(struct net *t, bool with_b)
{
	memset(t, 0, sizeof(*t));
	t->loop = ev_loop_new(0);
	if (node_new(t->loop, ka, t->da, &t->a, &t->na) < 0)
		return -1;
	if (with_b && node_new(t->loop, kb, t->db, &t->b, &t->nb) < 0)
		return -1;
	return 0;
}

static void net_free(struct net *t)
{
	an_kad_node_free(t->na);
	an_kad_node_free(t->nb);
	an_host_free(t->a);
	an_host_free(t->b);
	if (t->loop)
		ev_loop_destroy(t->loop);
	rm_dir(t->da);
	rm_dir(t->db);
}

static bool wait_res(struct net *t, struct res *r, int ms)
{
	return an_kad_node_wait(t->na, &r->done, ms) == 0;
}

/* B's dial text (/ip4/.../p2p/<id>) into out. */
static void b_addr(struct net *t, char *out, size_t cap)
{
	const char *addrs[1];
	char id[AN_PEERID_TEXT_MAX];
	an_host_addrs(t->b, addrs, 1);
	an_peerid_format(an_host_peer_id(t->b), id, sizeof(id));
	snprintf(out, cap, "%s/p2p/%s", addrs[0], id);
}

/* A TCP port on 127.0.0.1: listening but silent (fd returned), or closed (-1, port set). */
static int tcp_port(bool listening, int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0 || (listening && listen(fd, 16) < 0)) {
		if (fd >= 0)
			close(fd);
		return -2;
	}
	*port = ntohs(sa.sin_port);
	if (!listening) {
		close(fd);
		return -1;
	}
	return fd;
}

static void key_id(const struct an_privkey *k, struct an_peerid *id);

/* Put a peer (kx's ID) at 127.0.0.1:port into A's table. */
static void seed_table(struct net *t, int port)
{
	char text[64];
	struct an_multiaddr ma;
	struct an_peerid id;
	snprintf(text, sizeof(text), "/ip4/127.0.0.1/tcp/%d", port);
	key_id(kx, &id);
	CHECK_EQ_INT(an_multiaddr_parse(text, &ma), 0);
	an_rt_update((struct an_rt *)an_kad_node_rt(t->na), &id, &ma, 1, an_host_now_ms(t->a));
	CHECK_EQ_INT(an_kad_node_rt(t->na)->size, 1);
}

static void key_id(const struct an_privkey *k, struct an_peerid *id)
{
	struct an_pubkey pub;
	an_privkey_public(k, &pub);
	an_peerid_from_pubkey(&pub, id);
}

static void name_key(char *out, size_t cap)
{
	char ph[AN_PEERHASH_LEN + 1];
	struct an_peerid id;
	key_id(ka, &id);
	an_peerhash(&id, ph);
	snprintf(out, cap, "/an/%s@nobody-published-this", ph);
}

static const uint8_t prov_key[34] = {0x12, 0x20, 1, 2, 3};

static void test_empty_table_is_unreachable(void)
{
	struct net t;
	struct res g = {0}, p = {0}, v = {0}, b = {0};
	char key[128];
	CHECK_EQ_INT(net_new(&t, false), 0);
	name_key(key, sizeof(key));
	CHECK_EQ_INT(an_kad_node_get(t.na, (const uint8_t *)key, strlen(key), NULL, 0, get_cb, &g, NULL), 0);
	CHECK(wait_res(&t, &g, 3000));
	CHECK_EQ_INT(g.err, -EHOSTUNREACH);
	CHECK_EQ_INT(an_kad_node_providers(t.na, prov_key, sizeof(prov_key), prov_cb, &v, NULL), 0);
	CHECK(wait_res(&t, &v, 3000));
	CHECK_EQ_INT(v.err, -EHOSTUNREACH);
	CHECK_EQ_INT(an_kad_node_put(t.na, (const uint8_t *)"/xx/raw", 7, (const uint8_t *)"v", 1,
				     AN_KAD_PUT_NO_STORE, NULL, put_cb, &p, NULL, NULL), 0);
	CHECK(wait_res(&t, &p, 3000));
	CHECK_EQ_INT(p.err, -EHOSTUNREACH);
	CHECK_EQ_INT(p.n, 0);
	CHECK_EQ_INT(an_kad_node_bootstrap(t.na, NULL, 0, boot_cb, &b, NULL), 0);
	CHECK(wait_res(&t, &b, 3000));
	CHECK_EQ_INT(b.err, -EHOSTUNREACH);
	net_free(&t);
}

static void test_refused_bootstrap_is_unreachable(void)
{
	struct net t;
	struct res b = {0};
	char text[64];
	const char *addrs[1] = {text};
	int port = 0;
	CHECK_EQ_INT(net_new(&t, false), 0);
	CHECK_EQ_INT(tcp_port(false, &port), -1);
	snprintf(text, sizeof(text), "/ip4/127.0.0.1/tcp/%d", port);
	CHECK_EQ_INT(an_kad_node_bootstrap(t.na, addrs, 1, boot_cb, &b, NULL), 0);
	CHECK(wait_res(&t, &b, 5000));
	CHECK_EQ_INT(b.err, -EHOSTUNREACH);
	net_free(&t);
}

static void test_silent_bootstrap_times_out(void)
{
	struct net t;
	struct res b = {0};
	char text[64];
	const char *addrs[1] = {text};
	int port = 0, fd;
	CHECK_EQ_INT(net_new(&t, false), 0);
	fd = tcp_port(true, &port);
	CHECK(fd >= 0);
	snprintf(text, sizeof(text), "/ip4/127.0.0.1/tcp/%d", port);
	CHECK_EQ_INT(an_kad_node_bootstrap(t.na, addrs, 1, boot_cb, &b, NULL), 0);
	CHECK(wait_res(&t, &b, 5000));
	CHECK_EQ_INT(b.err, -ETIMEDOUT);
	if (fd >= 0)
		close(fd);
	net_free(&t);
}

static void test_refused_peer_is_unreachable(void)
{
	struct net t;
	struct res g = {0};
	char key[128];
	int port = 0;
	CHECK_EQ_INT(net_new(&t, false), 0);
	CHECK_EQ_INT(tcp_port(false, &port), -1);
	seed_table(&t, port);
	name_key(key, sizeof(key));
	CHECK_EQ_INT(an_kad_node_get(t.na, (const uint8_t *)key, strlen(key), NULL, 0, get_cb, &g, NULL), 0);
	CHECK(wait_res(&t, &g, 5000));
	CHECK_EQ_INT(g.err, -EHOSTUNREACH);
	net_free(&t);
}

static void test_silent_peer_times_out(void)
{
	struct net t;
	struct res g = {0}, v = {0};
	char key[128];
	int port = 0, fd;
	CHECK_EQ_INT(net_new(&t, false), 0);
	fd = tcp_port(true, &port);
	CHECK(fd >= 0);
	seed_table(&t, port);
	name_key(key, sizeof(key));
	CHECK_EQ_INT(an_kad_node_get(t.na, (const uint8_t *)key, strlen(key), NULL, 0, get_cb, &g, NULL), 0);
	CHECK(wait_res(&t, &g, 5000));
	CHECK_EQ_INT(g.err, -ETIMEDOUT);
	CHECK_EQ_INT(an_kad_node_providers(t.na, prov_key, sizeof(prov_key), prov_cb, &v, NULL), 0);
	CHECK(wait_res(&t, &v, 5000));
	CHECK_EQ_INT(v.err, -ETIMEDOUT);
	if (fd >= 0)
		close(fd);
	net_free(&t);
}

static void test_answering_peer_without_the_name_is_enoent(void)
{
	struct net t;
	struct res b = {0}, g = {0}, v = {0};
	char key[128], text[256];
	const char *addrs[1] = {text};
	CHECK_EQ_INT(net_new(&t, true), 0);
	b_addr(&t, text, sizeof(text));
	CHECK_EQ_INT(an_kad_node_bootstrap(t.na, addrs, 1, boot_cb, &b, NULL), 0);
	CHECK(wait_res(&t, &b, 5000));
	CHECK_EQ_INT(b.err, 0);
	CHECK_EQ_INT(b.n, 1);
	name_key(key, sizeof(key));
	CHECK_EQ_INT(an_kad_node_get(t.na, (const uint8_t *)key, strlen(key), NULL, 0, get_cb, &g, NULL), 0);
	CHECK(wait_res(&t, &g, 5000));
	CHECK_EQ_INT(g.err, -ENOENT);
	CHECK_EQ_INT(an_kad_node_providers(t.na, prov_key, sizeof(prov_key), prov_cb, &v, NULL), 0);
	CHECK(wait_res(&t, &v, 5000));
	CHECK_EQ_INT(v.err, -ENOENT);
	CHECK_EQ_INT(v.n, 0);
	net_free(&t);
}

int main(void)
{
	if (sodium_init() < 0 || an_privkey_generate(&ka) < 0 || an_privkey_generate(&kb) < 0 ||
	    an_privkey_generate(&kx) < 0)
		return 1;
	RUN(test_empty_table_is_unreachable);
	RUN(test_refused_bootstrap_is_unreachable);
	RUN(test_silent_bootstrap_times_out);
	RUN(test_refused_peer_is_unreachable);
	RUN(test_silent_peer_times_out);
	RUN(test_answering_peer_without_the_name_is_enoent);
	an_privkey_free(ka);
	an_privkey_free(kb);
	an_privkey_free(kx);
	return check_done();
}
