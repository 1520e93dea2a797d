#include "control/control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/accept.h"
#include "util/buf.h"
#include "util/error.h"

struct client;

struct an_control_call {
	struct client *client;
	int timeout_ms;
	ev_timer deadline;
	an_control_cancel_fn cancel;
	void *cancel_arg;
};

struct client {
	ev_io io;
	ev_timer idle;
	int fd;
	struct an_control_server *server;
	struct client *next;
	struct an_buf in;
	struct an_buf out;
	struct an_control_call *call; /* one call at a time per client */
	bool closing;                 /* close once out is drained */
};

struct an_control_server {
	struct ev_loop *loop;
	ev_io listen_io;
	ev_timer listen_pause; /* out of descriptors without a reserve (util/accept.h) */
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	an_control_handler_fn handler;
	void *arg;
	struct client *clients;
	int n_clients;
};

int an_control_socket_path(const char *statedir, char *out, size_t outcap)
{
	size_t cap = sizeof(((struct sockaddr_un *)0)->sun_path);
	if (!statedir)
		return -EINVAL;
	if (outcap < cap)
		cap = outcap;
	int n = snprintf(out, cap, "%s/%s", statedir, AN_CONTROL_SOCKET_NAME);
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return 0;
}


static int fill_sun(struct sockaddr_un *sun, const char *path)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	strcpy(sun->sun_path, path);
	return 0;
}

/* ---- server ---- */

static void client_free(struct client *c);

static void call_end(struct an_control_call *call)
{
	struct client *c = call->client;
	ev_timer_stop(c->server->loop, &call->deadline);
	c->call = NULL;
	free(call);
}

static void client_send(struct client *c, json_t *reply)
{
	char *s = json_dumps(reply, JSON_COMPACT);
	json_decref(reply);
	if (!s || an_buf_append(&c->out, s, strlen(s)) < 0 || an_buf_putc(&c->out, '\n') < 0)
		c->closing = true; /* cannot answer: drop the client */
	free(s);
	ev_io_stop(c->server->loop, &c->io);
	ev_io_set(&c->io, c->fd, EV_READ | EV_WRITE);
	ev_io_start(c->server->loop, &c->io);
}

void an_control_reply(struct an_control_call *call, json_t *reply)
{
	struct client *c = call->client;
	if (!reply)
		reply = json_pack("{s:b,s:s}", "ok", 0, "error", "internal error");
	call_end(call);
	if (reply)
		client_send(c, reply);
	else
		c->closing = true;
}

void an_control_reply_error(struct an_control_call *call, int err, const char *msg)
{
	an_control_reply(call, json_pack("{s:b,s:s,s:i}", "ok", 0, "error",
					 msg ? msg : an_strerror(err), "code", err));
}

int an_control_call_timeout_ms(const struct an_control_call *call)
{
	return call->timeout_ms;
}

void an_control_call_on_cancel(struct an_control_call *call, an_control_cancel_fn cancel, void *arg)
{
	call->cancel = cancel;
	call->cancel_arg = arg;
}

static void call_cancel(struct an_control_call *call)
{
	if (call->cancel)
		call->cancel(call, call->cancel_arg);
	call->cancel = NULL;
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct an_control_call *call = (struct an_control_call *)((char *)w -
				       offsetof(struct an_control_call, deadline));
	call_cancel(call);
	an_control_reply_error(call, -ETIMEDOUT, "timeout");
}

static void dispatch(struct client *c, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	struct an_control_call *call = calloc(1, sizeof(*call));
	if (!call) {
		json_decref(req);
		c->closing = true;
		return;
	}
	call->client = c;
	call->timeout_ms = AN_CONTROL_DEFAULT_TIMEOUT_MS;
	c->call = call;
	ev_timer_init(&call->deadline, deadline_cb, 0, 0);
	if (!json_is_object(req) || !json_is_string(json_object_get(req, "cmd"))) {
		json_decref(req);
		an_control_reply_error(call, AN_EMALFORMED, "request is not a JSON object with \"cmd\"");
		return;
	}
	json_t *t = json_object_get(req, "timeoutMs");
	if (json_is_integer(t) && json_integer_value(t) > 0)
		call->timeout_ms = json_integer_value(t) > AN_CONTROL_MAX_TIMEOUT_MS
					   ? AN_CONTROL_MAX_TIMEOUT_MS
					   : (int)json_integer_value(t);
	/* The server's own deadline trails the handler's a little, so a handler
	 * that honours timeoutMs gets to answer with its own detail first. */
	ev_timer_set(&call->deadline, call->timeout_ms / 1000.0 + 0.5, 0);
	ev_timer_start(c->server->loop, &call->deadline);
	c->server->handler(call, req, c->server->arg);
	json_decref(req);
}

static void client_read(struct client *c)
{
	uint8_t *p;
	if (an_buf_reserve(&c->in, 4096, &p) < 0) {
		/* a line longer than the cap */
		c->closing = true;
		return;
	}
	size_t room = c->in.alloc - c->in.len;
	if (room > c->in.max - c->in.len)
		room = c->in.max - c->in.len;
	ssize_t n = read(c->fd, p, room);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			c->closing = true, c->out.len = 0;
		return;
	}
	if (n == 0) {
		/* EOF: finish a pending call's reply if any, then close */
		if (c->call) {
			call_cancel(c->call);
			call_end(c->call);
		}
		c->closing = true;
		c->out.len = 0;
		return;
	}
	c->in.len += (size_t)n;
	ev_timer_again(c->server->loop, &c->idle);
	/* One call at a time: the next line waits until the reply is sent. */
	while (!c->call && !c->closing) {
		uint8_t *nl = memchr(c->in.data, '\n', c->in.len);
		if (!nl) {
			if (c->in.len >= c->in.max)
				c->closing = true;
			break;
		}
		size_t len = (size_t)(nl - c->in.data);
		dispatch(c, (const char *)c->in.data, len);
		an_buf_consume(&c->in, len + 1);
	}
}

static void client_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct client *c = (struct client *)w;
	if ((revents & EV_READ) && !c->closing)
		client_read(c);
	if (c->out.len > 0) {
		ssize_t n = write(c->fd, c->out.data, c->out.len);
		if (n > 0)
			an_buf_consume(&c->out, (size_t)n);
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			c->closing = true, c->out.len = 0;
	}
	if (c->out.len == 0) {
		if (c->closing) {
			client_free(c);
			return;
		}
		ev_io_stop(loop, &c->io);
		ev_io_set(&c->io, c->fd, EV_READ);
		ev_io_start(loop, &c->io);
		/* lines that arrived while a call was running */
		if (!c->call && c->in.len && memchr(c->in.data, '\n', c->in.len)) {
			ev_feed_event(loop, &c->io, EV_READ);
		}
	}
}

static void idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct client *c = (struct client *)((char *)w - offsetof(struct client, idle));
	if (c->call)
		return; /* the call's deadline governs */
	client_free(c);
}

static void client_free(struct client *c)
{
	struct an_control_server *s = c->server;
	if (c->call) {
		call_cancel(c->call);
		call_end(c->call);
	}
	ev_io_stop(s->loop, &c->io);
	ev_timer_stop(s->loop, &c->idle);
	close(c->fd);
	for (struct client **pp = &s->clients; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	s->n_clients--;
	an_buf_free(&c->in);
	an_buf_free(&c->out);
	free(c);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	struct an_control_server *s = (struct an_control_server *)((char *)w -
				       offsetof(struct an_control_server, listen_io));
	for (int i = 0; i < 16; i++) {
		int fd = an_accept(s->fd, NULL, NULL);
		if (fd == AN_ELIMIT)
			an_accept_pause(loop, &s->listen_pause, w);
		if (an_accept_should_stop(fd))
			return;
		if (fd < 0)
			continue;
		struct client *c = NULL;
		if (s->n_clients >= AN_CONTROL_MAX_CLIENTS || !(c = calloc(1, sizeof(*c)))) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->server = s;
		an_buf_init(&c->in, AN_CONTROL_LINE_MAX);
		an_buf_init(&c->out, 4 * AN_CONTROL_LINE_MAX);
		ev_io_init(&c->io, client_cb, fd, EV_READ);
		ev_timer_init(&c->idle, idle_cb, 0, AN_CONTROL_IDLE_MS / 1000.0);
		ev_io_start(loop, &c->io);
		ev_timer_again(loop, &c->idle);
		c->next = s->clients;
		s->clients = c;
		s->n_clients++;
	}
}

int an_control_server_new(struct ev_loop *loop, const char *path, an_control_handler_fn handler,
			  void *arg, struct an_control_server **out)
{
	struct sockaddr_un sun;
	struct an_control_server *s = NULL;
	int fd = -1, rc;

	*out = NULL;
	rc = fill_sun(&sun, path);
	if (rc < 0)
		return rc;
	/* A socket file may be left by a daemon that died: replace it only if
	 * nobody answers on it. */
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return -errno;
	if (connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		close(probe);
		return -EADDRINUSE;
	}
	close(probe);
	unlink(path);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* umask makes the socket 0600 from birth; no window where others may connect. */
	mode_t old = umask(0177);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ? -errno : 0;
	umask(old);
	if (rc < 0)
		goto out;
	if (listen(fd, 16) < 0) {
		rc = -errno;
		unlink(path);
		goto out;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		rc = -ENOMEM;
		unlink(path);
		goto out;
	}
	s->loop = loop;
	s->fd = fd;
	strcpy(s->path, sun.sun_path);
	s->handler = handler;
	s->arg = arg;
	ev_io_init(&s->listen_io, accept_cb, fd, EV_READ);
	an_accept_pause_init(&s->listen_pause, &s->listen_io);
	ev_io_start(loop, &s->listen_io);
	*out = s;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

void an_control_server_free(struct an_control_server *s)
{
	if (!s)
		return;
	while (s->clients)
		client_free(s->clients);
	ev_io_stop(s->loop, &s->listen_io);
	ev_timer_stop(s->loop, &s->listen_pause);
	close(s->fd);
	unlink(s->path);
	free(s);
}

/* ---- client ---- */

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on fd until the deadline: 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = events};
		int n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

int an_control_request(const char *path, const json_t *req, int timeout_ms, json_t **reply)
{
	struct sockaddr_un sun;
	struct an_buf in;
	char *line = NULL;
	int fd = -1, rc;
	long long deadline = now_ms() + timeout_ms;

	*reply = NULL;
	an_buf_init(&in, AN_CONTROL_LINE_MAX);
	rc = fill_sun(&sun, path);
	if (rc < 0)
		goto out;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		/* Unix sockets connect at once or fail (EAGAIN = backlog full). */
		rc = -errno;
		goto out;
	}
	line = json_dumps(req, JSON_COMPACT);
	if (!line) {
		rc = -ENOMEM;
		goto out;
	}
	size_t len = strlen(line), off = 0;
	line[len++] = '\n'; /* replaces the NUL; length tracked explicitly */
	while (off < len) {
		ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			rc = wait_fd(fd, POLLOUT, deadline);
			if (rc < 0)
				goto out;
		} else {
			rc = -errno;
			goto out;
		}
	}
	for (;;) {
		uint8_t *p;
		rc = an_buf_reserve(&in, 4096, &p);
		if (rc < 0)
			goto out;
		size_t room = in.alloc - in.len;
		if (room > in.max - in.len)
			room = in.max - in.len;
		if (room == 0) {
			rc = AN_ETOOBIG;
			goto out;
		}
		ssize_t n = read(fd, p, room);
		if (n > 0) {
			in.len += (size_t)n;
			if (memchr(in.data, '\n', in.len))
				break;
		} else if (n == 0) {
			rc = AN_ECLOSED;
			goto out;
		} else if (errno == EAGAIN || errno == EINTR) {
			rc = wait_fd(fd, POLLIN, deadline);
			if (rc < 0)
				goto out;
		} else {
			rc = -errno;
			goto out;
		}
	}
	size_t ll = (size_t)((uint8_t *)memchr(in.data, '\n', in.len) - in.data);
	json_error_t jerr;
	json_t *v = json_loadb((const char *)in.data, ll, 0, &jerr);
	if (!json_is_object(v)) {
		json_decref(v);
		rc = AN_EMALFORMED;
		goto out;
	}
	*reply = v;
	rc = 0;
out:
	free(line);
	an_buf_free(&in);
	if (fd >= 0)
		close(fd);
	return rc;
}
