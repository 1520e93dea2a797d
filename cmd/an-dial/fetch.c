/* fetch.c - an-dial's curl-like mode: one request, the body to stdout or -o FILE. */
#include "dial.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "route/client.h"
#include "util/error.h"

#define BODY_CHUNK 65536
#define PROGRESS_AFTER_S 1.0   /* a transfer is "long" after this */
#define PROGRESS_EVERY_S 0.25

struct fetch {
	struct dial *d;
	const struct fetch_opts *o;
	struct an_name name;
	char target[8192];
	struct site_wait wait;
	struct an_route_call *call;
	struct an_route_field fields[32];
	char field_buf[32][1024];
	size_t n_fields;
	int out_fd;
	int in_fd;              /* request body source, -1 for none or literal */
	const char *literal;    /* -d STRING */
	size_t literal_len;
	enum an_route_framing framing;
	uint64_t content_length;
	int status;
	char reason[128];
	bool done;
	int err;
	int write_err;
	uint64_t received, expected; /* expected 0: unknown */
	ev_tstamp started;
	ev_timer progress;
	bool progress_drawn;
	bool progress_ok; /* stderr is a terminal and not -s */
	bool printed;     /* the failure was reported already */
};

/* Write all of p to fd, blocking: a slow pipe holds the loop, and so the
 * socket, which is the backpressure a one-shot client needs. */
static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void human(double v, char *out, size_t cap)
{
	const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int i = 0;
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(out, cap, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static void progress_draw(struct fetch *f, bool final)
{
	char got[32], total[32], rate[32];
	ev_tstamp el = ev_now(f->d->loop) - f->started;
	if (!f->progress_ok || (!f->progress_drawn && (el < PROGRESS_AFTER_S || final)))
		return;
	human((double)f->received, got, sizeof(got));
	human(el > 0 ? (double)f->received / el : 0, rate, sizeof(rate));
	if (f->expected) {
		human((double)f->expected, total, sizeof(total));
		fprintf(stderr, "\r%10s / %-10s %3d%%  %10s/s ", got, total,
			(int)(f->received * 100 / f->expected), rate);
	} else {
		fprintf(stderr, "\r%10s  %10s/s ", got, rate);
	}
	if (final)
		fputc('\n', stderr);
	fflush(stderr);
	f->progress_drawn = true;
}

static void progress_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct fetch *f = (struct fetch *)((char *)t - offsetof(struct fetch, progress));
	progress_draw(f, false);
}

static void finish(struct fetch *f, int err)
{
	f->done = true;
	f->err = err;
	ev_timer_stop(f->d->loop, &f->progress);
	ev_break(f->d->loop, EVBREAK_ALL);
}

static void on_head(struct an_route_call *call, const struct an_route_head *h, void *arg)
{
	struct fetch *f = arg;
	(void)call;
	f->status = h->status;
	snprintf(f->reason, sizeof(f->reason), "%s", h->reason);
	if (h->framing == AN_ROUTE_BODY_LENGTH)
		f->expected = h->content_length;
	if (f->o->include) {
		char line[256];
		int n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", h->status, h->reason);
		int rc = write_all(f->out_fd, (const uint8_t *)line, (size_t)n);
		for (size_t i = 0; rc == 0 && i < h->n_fields; i++) {
			rc = write_all(f->out_fd, (const uint8_t *)h->fields[i].name, strlen(h->fields[i].name));
			if (rc == 0)
				rc = write_all(f->out_fd, (const uint8_t *)": ", 2);
			if (rc == 0)
				rc = write_all(f->out_fd, (const uint8_t *)h->fields[i].value,
					       strlen(h->fields[i].value));
			if (rc == 0)
				rc = write_all(f->out_fd, (const uint8_t *)"\r\n", 2);
		}
		if (rc == 0)
			rc = write_all(f->out_fd, (const uint8_t *)"\r\n", 2);
		if (rc < 0 && !f->write_err) {
			f->write_err = rc;
			an_route_call_abort(f->call);
		}
	}
	ev_timer_start(f->d->loop, &f->progress);
}

static void on_body(struct an_route_call *call, const uint8_t *p, size_t n, void *arg)
{
	struct fetch *f = arg;
	if (f->write_err)
		return;
	int rc = write_all(f->out_fd, p, n);
	f->received += n;
	if (rc < 0) {
		f->write_err = rc;
		an_route_call_abort(call);
	}
}

static void on_done(struct an_route_call *call, int err, void *arg)
{
	struct fetch *f = arg;
	(void)call;
	f->call = NULL;
	progress_draw(f, true);
	finish(f, err);
}

static void on_writable(struct an_route_call *call, void *arg)
{
	struct fetch *f = arg;
	uint8_t buf[BODY_CHUNK];
	int rc = 0;
	if (f->literal) {
		rc = an_route_call_write(call, (const uint8_t *)f->literal, f->literal_len);
		f->literal = NULL;
		if (rc == 0)
			rc = an_route_call_end(call);
	} else if (f->in_fd >= 0) {
		while (rc == 0 && an_route_call_queued(call) < AN_STREAM_QUEUE_HIGH) {
			ssize_t r = read(f->in_fd, buf, sizeof(buf));
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				rc = -errno;
				cli_warn("unable to read the request body: %s", strerror(errno));
				break;
			}
			if (r == 0) {
				rc = an_route_call_end(call);
				f->in_fd = -1;
				break;
			}
			rc = an_route_call_write(call, buf, (size_t)r);
		}
	}
	if (rc < 0) {
		if (rc == AN_ETOOBIG || rc == AN_ETRUNCATED)
			cli_warn("the request body changed size while it was sent");
		an_route_call_abort(call);
	}
}

static const struct an_route_call_handler handler = {
	.on_head = on_head,
	.on_body = on_body,
	.on_done = on_done,
	.on_writable = on_writable,
};

static void site_ready(struct site_wait *w, int err, struct an_host_conn *c)
{
	struct fetch *f = (struct fetch *)((char *)w - offsetof(struct fetch, wait));
	if (err < 0) {
		if (w->why[0])
			cli_warn("%s", w->why);
		else
			cli_warn("'%s': %s", f->o->url, an_strerror(err));
		f->printed = true;
		finish(f, err);
		return;
	}
	struct an_route_call_opts co = {
		.peerhash = site_peerhash(f->d, &f->name),
		.host = f->name.fqdn,
		.method = f->o->method ? f->o->method : (f->o->data ? "POST" : "GET"),
		.target = f->target,
		.fields = f->fields,
		.n_fields = f->n_fields,
		.framing = f->framing,
		.content_length = f->content_length,
		.response_timeout_ms = f->d->cfg.timeout_ms,
		.idle_timeout_ms = f->d->cfg.timeout_ms,
	};
	f->started = ev_now(f->d->loop);
	int rc = an_route_call_start(c, &co, &handler, f, &f->call);
	if (rc < 0) {
		cli_warn("unable to start the request: %s", an_strerror(rc));
		f->printed = true;
		finish(f, rc);
	}
}

/* The target of an an:// URL: its path and query ("/" when none). */
static int url_target(const char *url, char *out, size_t cap)
{
	const char *rest = strncmp(url, "an://", 5) == 0 ? url + 5 : url;
	const char *p = strpbrk(rest, "/?");
	int n;
	if (!p)
		n = snprintf(out, cap, "/");
	else if (*p == '?')
		n = snprintf(out, cap, "/%s", p);
	else
		n = snprintf(out, cap, "%s", p);
	if (n < 0 || (size_t)n >= cap)
		return AN_ETOOBIG;
	for (const char *q = out; *q; q++)
		if ((unsigned char)*q <= 0x20 || *q == 0x7f || *q == '#')
			return AN_EMALFORMED;
	return 0;
}

static int parse_headers(struct fetch *f)
{
	for (size_t i = 0; i < f->o->n_headers; i++) {
		const char *h = f->o->headers[i], *colon = strchr(h, ':');
		if (!colon || colon == h || strlen(h) >= sizeof(f->field_buf[0])) {
			cli_warn("invalid header '%s'", h);
			return AN_EMALFORMED;
		}
		char *b = f->field_buf[i];
		memcpy(b, h, (size_t)(colon - h));
		b[colon - h] = 0;
		const char *v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		if (!strcasecmp(b, "host") || !strcasecmp(b, "content-length") ||
		    !strcasecmp(b, "transfer-encoding")) {
			cli_warn("header '%s' is set by an-dial", b);
			return AN_EMALFORMED;
		}
		char *val = b + (colon - h) + 1;
		snprintf(val, sizeof(f->field_buf[0]) - (size_t)(val - b), "%s", v);
		f->fields[f->n_fields].name = b;
		f->fields[f->n_fields].value = val;
		f->n_fields++;
	}
	return 0;
}

static int open_body(struct fetch *f)
{
	const char *d = f->o->data;
	struct stat st;
	f->in_fd = -1;
	f->framing = AN_ROUTE_BODY_NONE;
	if (!d)
		return 0;
	if (strcmp(d, "-") == 0) {
		f->in_fd = STDIN_FILENO;
	} else if (d[0] == '@') {
		f->in_fd = open(d + 1, O_RDONLY | O_CLOEXEC);
		if (f->in_fd < 0) {
			int e = errno;
			cli_warn("unable to open '%s': %s", d + 1, strerror(e));
			return -e;
		}
	} else {
		f->literal = d;
		f->literal_len = strlen(d);
		f->framing = AN_ROUTE_BODY_LENGTH;
		f->content_length = f->literal_len;
		return 0;
	}
	if (fstat(f->in_fd, &st) == 0 && S_ISREG(st.st_mode)) {
		f->framing = AN_ROUTE_BODY_LENGTH;
		f->content_length = (uint64_t)st.st_size;
	} else {
		f->framing = AN_ROUTE_BODY_CHUNKED;
	}
	return 0;
}

int fetch_run(struct dial *d, const struct fetch_opts *o)
{
	struct fetch *f = calloc(1, sizeof(*f));
	int rc, status;
	if (!f) {
		cli_warn("out of memory");
		return AN_EXIT_SYSTEM;
	}
	f->d = d;
	f->o = o;
	f->out_fd = STDOUT_FILENO;
	f->in_fd = -1;
	ev_timer_init(&f->progress, progress_cb, PROGRESS_EVERY_S, PROGRESS_EVERY_S);
	f->progress_ok = !o->silent && isatty(STDERR_FILENO);
	if (an_name_parse(o->url, true, &f->name) < 0 || url_target(o->url, f->target, sizeof(f->target)) < 0) {
		if (strncmp(o->url, "http://", 7) == 0 || strncmp(o->url, "https://", 8) == 0)
			cli_warn("invalid URL '%s': an-dial fetches an:// URLs, an://PEERHASH@NAME/path "
				 "(for a web site, use curl)", o->url);
		else
			cli_warn("invalid URL '%s': like an://PEERHASH@NAME/path", o->url);
		status = AN_EXIT_DATA;
		goto out;
	}
	if (!f->name.peerhash[0] && d->cfg.connect_to) {
		cli_warn("--connect-to needs a URL with a peer hash");
		status = AN_EXIT_USAGE;
		goto out;
	}
	if (parse_headers(f) < 0) {
		status = AN_EXIT_USAGE;
		goto out;
	}
	if ((rc = open_body(f)) < 0) {
		status = AN_EXIT_SYSTEM;
		goto out;
	}
	if (o->output) {
		f->out_fd = open(o->output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
		if (f->out_fd < 0) {
			cli_warn("unable to open '%s': %s", o->output, strerror(errno));
			status = AN_EXIT_SYSTEM;
			goto out;
		}
	}
	f->wait.cb = site_ready;
	f->wait.pin = true; /* a command a person ran: pins on first use */
	site_get(d, &f->name, &f->wait);
	ev_run(d->loop, 0);
	if (!f->done) {
		site_wait_cancel(&f->wait);
		cli_warn("'%s': interrupted", o->url);
		status = AN_EXIT_SYSTEM;
		goto out;
	}
	if (f->write_err) {
		cli_warn("unable to write '%s': %s", o->output ? o->output : "stdout",
			 strerror(-f->write_err));
		status = AN_EXIT_SYSTEM;
	} else if (f->err < 0) {
		if (f->printed)
			;
		else if (f->status) /* the response started: a transfer error */
			cli_warn("'%s': transfer failed after %llu bytes: %s", o->url,
				 (unsigned long long)f->received, an_strerror(f->err));
		else
			cli_warn("'%s': %s", o->url, f->err == -ETIMEDOUT ? "no response in time"
								   : an_strerror(f->err));
		status = cli_exit_status(f->err);
		if (f->status || status == AN_EXIT_DATA)
			status = AN_EXIT_SYSTEM; /* a broken response is the network's fault */
	} else if (f->status >= 400) {
		cli_warn("'%s': HTTP %d %s", o->url, f->status, f->reason);
		status = AN_EXIT_NEGATIVE;
	} else {
		status = AN_EXIT_OK;
	}
out:
	if (f->out_fd >= 0 && f->out_fd != STDOUT_FILENO && close(f->out_fd) < 0 && status == AN_EXIT_OK) {
		cli_warn("unable to write '%s': %s", o->output, strerror(errno));
		status = AN_EXIT_SYSTEM;
	}
	if (f->in_fd > STDIN_FILENO)
		close(f->in_fd);
	ev_timer_stop(d->loop, &f->progress);
	free(f);
	return status;
}
