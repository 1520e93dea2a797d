/*
 * host_tcp.c - the host's TCP transport: listening sockets (one port, never
 * shared: probe_port), accept with the per-address limits, non-blocking
 * connect from the listen port, and moving an an_conn's bytes (mss, Noise,
 * yamux) between it and the socket.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/host_priv.h"
#include "util/accept.h"
#include "util/error.h"

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents);

static size_t sockaddr_to_bin(const struct sockaddr_storage *ss, uint8_t *out, size_t cap)
{
	struct an_multiaddr ma;
	if (an_multiaddr_from_sockaddr((const struct sockaddr *)ss, sizeof(*ss), &ma) < 0 ||
	    ma.len > cap)
		return 0;
	memcpy(out, ma.bytes, ma.len);
	return ma.len;
}

static void sockaddr_to_text(const struct sockaddr_storage *ss, char *out, size_t cap)
{
	struct an_multiaddr ma;
	if (an_multiaddr_from_sockaddr((const struct sockaddr *)ss, sizeof(*ss), &ma) < 0 ||
	    an_multiaddr_format(&ma, out, cap) < 0)
		snprintf(out, cap, "?");
}


static bool addr_key_from(const struct sockaddr_storage *ss, struct an_host_addr_key *k)
{
	bool loopback;
	size_t prefix; /* bytes of ip that make the network */
	memset(k, 0, sizeof(*k));
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		k->ip[10] = k->ip[11] = 0xff;
		memcpy(k->ip + 12, &a->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		memcpy(k->ip, &a->sin6_addr, 16);
	} else {
		return false;
	}
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const uint8_t v6loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	if (memcmp(k->ip, v4mapped, 12) == 0) {
		loopback = k->ip[12] == 127;
		prefix = 15; /* /24 */
	} else {
		loopback = memcmp(k->ip, v6loop, 16) == 0;
		prefix = 8; /* /64 */
	}
	memcpy(k->net, k->ip, loopback ? 16 : prefix);
	return true;
}

static int set_reuse(int fd)
{
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}

/*
 * A port already in use is an error (issue 11).  The listener needs
 * SO_REUSEPORT so that our dials can bind its port, but with it Linux lets
 * a second SO_REUSEPORT listener of the same user share the port, and the
 * kernel then splits the connections between two nodes.  So the address is
 * first bound without SO_REUSEPORT (SO_REUSEADDR only, so that our own
 * earlier dial sockets and TIME_WAIT leftovers do not count): that fails
 * with EADDRINUSE while anything listens there.  Port 0 becomes the port
 * the probe got.  Between the probe's close and the listener's bind another
 * process could take the port; it would have to skip the probe itself.
 */
static int probe_port(struct sockaddr_storage *ss, socklen_t sl)
{
	int one = 1, rc = 0;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (ss->ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)ss, sl) < 0) {
		rc = -errno;
		goto out;
	}
	struct sockaddr_storage got;
	socklen_t gl = sizeof(got);
	if (getsockname(fd, (struct sockaddr *)&got, &gl) < 0) {
		rc = -errno;
		goto out;
	}
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = ((struct sockaddr_in *)&got)->sin_port;
	else
		((struct sockaddr_in6 *)ss)->sin6_port = ((struct sockaddr_in6 *)&got)->sin6_port;
out:
	close(fd);
	return rc;
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents);

/* A port another listener holds is -EADDRINUSE (probe_port). */
static int tcp_listen(struct an_host *h, const struct an_multiaddr *ma)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd = -1, rc;

	if (an_multiaddr_to_sockaddr(ma, &ss, &sl) < 0)
		return AN_EMALFORMED;
	rc = probe_port(&ss, sl);
	if (rc < 0)
		return rc;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* SO_REUSEPORT on the listener too, so dials can bind the same port. */
	rc = set_reuse(fd);
	if (rc < 0)
		goto out;
	if (ss.ss_family == AF_INET6) {
		int one = 1;
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0) {
		rc = -errno;
		goto out;
	}
	struct listener *l = &h->listeners[h->n_listeners];
	l->sslen = sizeof(l->ss);
	if (getsockname(fd, (struct sockaddr *)&l->ss, &l->sslen) < 0) {
		rc = -errno;
		goto out;
	}
	sockaddr_to_text(&l->ss, l->text, sizeof(l->text));
	l->fd = fd;
	l->host = h;
	l->tp = &host_tcp_transport;
	ev_io_init(&l->io, accept_cb, fd, EV_READ);
	an_accept_pause_init(&l->pause, &l->io);
	ev_io_start(h->loop, &l->io);
	h->n_listeners++;
	fd = -1;
	host_notify_changed(h);
out:
	if (fd >= 0)
		close(fd);
	return rc;
}


static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	struct listener *l = (struct listener *)w;
	struct an_host *h = l->host;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = an_accept(l->fd, &ss, &sl);
		if (fd == AN_ELIMIT)
			an_accept_pause(loop, &l->pause, w);
		if (an_accept_should_stop(fd))
			return;
		if (fd < 0)
			continue;
		char text[AN_HOST_ADDR_TEXT_MAX];
		sockaddr_to_text(&ss, text, sizeof(text));
		if (h->shutting_down || h->n_conns >= h->lim.max_conns ||
		    h->n_pending >= h->lim.max_pending) {
			host_log_refusal(h, text,
				    h->shutting_down ? "shutting down"
				    : h->n_conns >= h->lim.max_conns ? "connection limit reached"
								      : "pending handshake limit reached");
			close(fd);
			continue;
		}
		struct an_host_addr_key key;
		bool has_key = addr_key_from(&ss, &key);
		const char *why = has_key ? host_addr_refusal(h, &key) : NULL;
		if (why) {
			host_log_refusal(h, text, why);
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct an_host_conn *c = host_conn_new(h, &host_tcp_transport, true, NULL);
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		ev_io_init(&c->io, conn_io_cb, fd, EV_READ);
		c->has_key = has_key;
		c->key = key;
		strcpy(c->remote_text, text);
		c->remote_bin_len = sockaddr_to_bin(&ss, c->remote_bin, sizeof(c->remote_bin));
		ev_io_start(loop, &c->io);
	}
}


/* Bind a dial socket to our listen port (same family) for NAT port reuse. */
static void bind_listen_port(struct an_host *h, int fd, int family)
{
	for (size_t i = 0; i < h->n_listeners; i++) {
		struct listener *l = &h->listeners[i];
		if (l->ss.ss_family != family)
			continue;
		if (set_reuse(fd) < 0)
			return;
		if (bind(fd, (struct sockaddr *)&l->ss, l->sslen) < 0)
			host_log(h, "dial: cannot reuse listen port of %s: %s", l->text, strerror(errno));
		return;
	}
}


static int tcp_dial(struct an_host *h, const struct an_multiaddr *ma, const struct an_peerid *expected,
		    struct an_host_conn **out, int *late_err)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int rc = 0;
	*out = NULL;
	if (an_multiaddr_to_sockaddr(ma, &ss, &sl) < 0)
		return AN_EMALFORMED;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	bind_listen_port(h, fd, ss.ss_family);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		if (errno == EADDRNOTAVAIL || errno == EADDRINUSE) {
			/* the 4-tuple from our listen port is taken: use any port */
			close(fd);
			fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			if (fd >= 0 && connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
				close(fd);
				fd = -1;
			}
		} else {
			rc = -errno;
			close(fd);
			fd = -1;
		}
		if (fd < 0) {
			*late_err = rc ? rc : -ECONNREFUSED;
			return 0;
		}
	}
	struct an_host_conn *c = host_conn_new(h, &host_tcp_transport, false, expected);
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->fd = fd;
	ev_io_init(&c->io, conn_io_cb, fd, EV_READ);
	sockaddr_to_text(&ss, c->remote_text, sizeof(c->remote_text));
	c->remote_bin_len = sockaddr_to_bin(&ss, c->remote_bin, sizeof(c->remote_bin));
	c->has_key = addr_key_from(&ss, &c->key);
	c->connecting = true;
	ev_io_set(&c->io, fd, EV_WRITE);
	ev_io_start(h->loop, &c->io);
	*out = c;
	return 0;
}

static void conn_read(struct an_host_conn *c)
{
	struct an_host *h = c->host;
	uint8_t *p;
	size_t room;
	/* straight into the conn's input buffer: no copy before decryption */
	if (an_conn_input_buffer(c->conn, &p, &room) < 0 || room == 0)
		return;
	ssize_t n = read(c->fd, p, room);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			host_conn_destroy(c, -errno, strerror(errno));
		return;
	}
	if (n == 0) {
		host_conn_destroy(c, AN_ECLOSED, "remote closed the connection");
		return;
	}
	c->last_activity = ev_now(h->loop);
	an_conn_input_commit(c->conn, (size_t)n, an_host_now_ms(h));
	host_conn_handle_events(c);
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	struct an_host_conn *c = (struct an_host_conn *)w;
	c->refs++;
	if (c->connecting && (revents & EV_WRITE)) {
		int err = 0;
		socklen_t l = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err) {
			host_conn_destroy(c, -err, strerror(err));
			goto out;
		}
		c->connecting = false;
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) == 0) {
			sockaddr_to_text(&ss, c->remote_text, sizeof(c->remote_text));
			c->remote_bin_len = sockaddr_to_bin(&ss, c->remote_bin, sizeof(c->remote_bin));
		}
		an_conn_start(c->conn, an_host_now_ms(c->host));
	}
	if (c->alive && (revents & EV_READ))
		conn_read(c);
	if (c->alive)
		host_conn_kick(c);
out:
	host_conn_unref(c);
}


/* Flush the conn's output to the socket; close when finished closing. */
static void tcp_write(struct an_host_conn *c)
{
	const uint8_t *p;
	size_t len;
	an_conn_output(c->conn, &p, &len);
	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			an_conn_output_consume(c->conn, (size_t)n);
			c->last_activity = ev_now(c->host->loop);
			an_conn_output(c->conn, &p, &len);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		host_conn_destroy_later(c, -errno, "write failed");
		return;
	}
	/* Output the conn could not seal for lack of room (and the stream
	 * bytes queued behind it) goes on once the socket has taken the rest:
	 * keep waiting for writability, whose callback kicks the conn again.
	 * Nothing else would: a peer with a wide-open window sends us nothing. */
	bool blocked = an_conn_output_blocked(c->conn);
	int want = EV_READ | (len > 0 || blocked ? EV_WRITE : 0);
	/* A graceful close waits for open streams to finish (identify answers
	 * in flight, a peer's last reads); the shutdown deadline bounds it. */
	if (host_conn_finish_if_done(c, len, blocked))
		return;
	if ((ev_is_active(&c->io) ? c->io.events & (EV_READ | EV_WRITE) : 0) != want) {
		ev_io_stop(c->host->loop, &c->io);
		ev_io_set(&c->io, c->fd, want);
		ev_io_start(c->host->loop, &c->io);
	}
}

/* Let yamux speak, move streams' queued bytes, write: now.  The second
   flush seals what the handlers caused (window updates of resumed reading,
   answers), so it leaves with the rest. */

static bool tcp_handles(const struct an_multiaddr *ma)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	return an_multiaddr_to_sockaddr(ma, &ss, &sl) == 0;
}

static void tcp_quiet(struct an_host_conn *c)
{
	ev_io_stop(c->host->loop, &c->io);
}

static void tcp_close(struct an_host_conn *c)
{
	ev_io_stop(c->host->loop, &c->io);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

const struct an_transport host_tcp_transport = {
	.name = "tcp",
	.handles = tcp_handles,
	.listen = tcp_listen,
	.dial = tcp_dial,
	.write = tcp_write,
	.quiet = tcp_quiet,
	.close = tcp_close,
	.stream_ready = host_yamux_ready,
	.stream_open = host_yamux_open,
	.stream_write = host_yamux_write,
	.stream_close_write = host_yamux_close_write,
	.stream_reset = host_yamux_reset,
	.stream_peek = host_yamux_peek,
	.stream_consume = host_yamux_consume,
	.ping = host_yamux_ping,
	.goaway = host_yamux_goaway,
};
