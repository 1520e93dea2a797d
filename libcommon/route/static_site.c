#include "route/static_site.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "util/error.h"

/* ---- pure pieces ---- */

static const struct {
	const char *ext, *type;
} mime_table[] = {
	{"html", "text/html; charset=utf-8"},   {"htm", "text/html; charset=utf-8"},
	{"css", "text/css; charset=utf-8"},     {"js", "text/javascript; charset=utf-8"},
	{"mjs", "text/javascript; charset=utf-8"}, {"json", "application/json"},
	{"txt", "text/plain; charset=utf-8"},   {"md", "text/markdown; charset=utf-8"},
	{"xml", "application/xml"},             {"svg", "image/svg+xml"},
	{"png", "image/png"},                   {"jpg", "image/jpeg"},
	{"jpeg", "image/jpeg"},                 {"gif", "image/gif"},
	{"webp", "image/webp"},                 {"avif", "image/avif"},
	{"ico", "image/vnd.microsoft.icon"},    {"wasm", "application/wasm"},
	{"pdf", "application/pdf"},             {"woff", "font/woff"},
	{"woff2", "font/woff2"},                {"ttf", "font/ttf"},
	{"otf", "font/otf"},                    {"mp4", "video/mp4"},
	{"webm", "video/webm"},                 {"mp3", "audio/mpeg"},
	{"ogg", "audio/ogg"},                   {"wav", "audio/wav"},
	{"zip", "application/zip"},             {"gz", "application/gzip"},
	{"tar", "application/x-tar"},           {"csv", "text/csv; charset=utf-8"},
};

const char *an_static_mime(const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(slash ? slash : path, '.');
	if (dot && dot[1])
		for (size_t i = 0; i < sizeof(mime_table) / sizeof(mime_table[0]); i++)
			if (strcasecmp(dot + 1, mime_table[i].ext) == 0)
				return mime_table[i].type;
	return "application/octet-stream";
}

void an_static_etag(const struct stat *st, char out[AN_STATIC_ETAG_MAX])
{
	unsigned long long ns = (unsigned long long)st->st_mtim.tv_sec * 1000000000ull +
				(unsigned long long)st->st_mtim.tv_nsec;
	/* no inode number: it tells a client about the file system, and a copy of the site would differ */
	snprintf(out, AN_STATIC_ETAG_MAX, "\"%llx-%llx\"", (unsigned long long)st->st_size, ns);
}

bool an_static_path_hidden(const char *path)
{
	const char *p = path;
	bool first = true;
	while ((p = strchr(p, '/')) != NULL) {
		p++;
		if (*p == '.' && !(first && strncmp(p, AN_STATIC_WELL_KNOWN, strlen(AN_STATIC_WELL_KNOWN)) == 0 &&
				   (p[strlen(AN_STATIC_WELL_KNOWN)] == '/' || p[strlen(AN_STATIC_WELL_KNOWN)] == 0)))
			return true;
		first = false;
	}
	return false;
}

/* Bytes a Location path keeps as they are (RFC 3986 pchar without '%', and '/'). */
static bool location_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("-._~!$&'()*+,;=:@/", c) != NULL;
}

int an_static_dir_location(const char *path, const char *target, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *q = strchr(target, '?');
	size_t o = 0;
	if (path[0] != '/' || path[1] == '/')
		return -EINVAL;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		/* room for this byte's encoding, the '/' to append and the NUL */
		if (o + (location_char(*p) ? 1 : 3) + 2 > cap)
			return AN_ETOOBIG;
		if (location_char(*p)) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	if (o == 0 || out[o - 1] != '/')
		out[o++] = '/';
	if (q) {
		size_t n = strlen(q);
		if (o + n + 1 > cap)
			return AN_ETOOBIG;
		memcpy(out + o, q, n);
		o += n;
	}
	if (o + 1 > cap)
		return AN_ETOOBIG;
	out[o] = 0;
	return 0;
}

void an_static_http_date(int64_t t, char out[30])
{
	struct tm tm;
	time_t tt = (time_t)t;
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	gmtime_r(&tt, &tm);
	/* by hand, not strftime: the names must not follow the locale */
	snprintf(out, 30, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7], tm.tm_mday,
		 months[tm.tm_mon % 12], (tm.tm_year + 1900) % 10000, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int an_static_parse_http_date(const char *s, int64_t *t)
{
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	char wd[4], mon[4], gmt[4];
	int d, y, hh, mm, ss, n = 0;
	struct tm tm = {0};
	if (!s || strlen(s) != 29)
		return -EINVAL;
	if (sscanf(s, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d %3[A-Z]%n", wd, &d, mon, &y, &hh, &mm,
		   &ss, gmt, &n) != 8 ||
	    n != 29 || strcmp(gmt, "GMT") != 0)
		return -EINVAL;
	tm.tm_mon = -1;
	for (int i = 0; i < 12; i++)
		if (strcmp(mon, months[i]) == 0)
			tm.tm_mon = i;
	if (tm.tm_mon < 0 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60 || y < 1970)
		return -EINVAL;
	tm.tm_mday = d;
	tm.tm_year = y - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	*t = (int64_t)timegm(&tm);
	return 0;
}

/* Does the opaque part of tag (with or without W/) equal etag's? */
static bool tag_weak_eq(const char *tag, size_t len, const char *etag)
{
	if (len >= 2 && tag[0] == 'W' && tag[1] == '/') {
		tag += 2;
		len -= 2;
	}
	if (strncmp(etag, "W/", 2) == 0)
		etag += 2;
	return len == strlen(etag) && memcmp(tag, etag, len) == 0;
}

bool an_static_not_modified(const char *inm, const char *ims, const char *etag, int64_t mtime)
{
	if (inm) {
		const char *p = inm;
		while (*p) {
			while (*p == ' ' || *p == '\t' || *p == ',')
				p++;
			if (!*p)
				break;
			if (*p == '*')
				return true;
			const char *start = p;
			if (p[0] == 'W' && p[1] == '/')
				p += 2;
			if (*p != '"')
				return false; /* malformed list: treat as no match */
			const char *close = strchr(p + 1, '"');
			if (!close)
				return false;
			p = close + 1;
			if (tag_weak_eq(start, (size_t)(p - start), etag))
				return true;
		}
		return false;
	}
	if (ims) {
		int64_t t;
		if (an_static_parse_http_date(ims, &t) == 0 && mtime <= t)
			return true;
	}
	return false;
}

static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	if (len == 0 || len > 19)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

enum an_static_range an_static_parse_range(const char *value, uint64_t size, uint64_t *first,
					   uint64_t *last)
{
	const char *p, *dash, *end;
	uint64_t a, b;
	if (!value || strncasecmp(value, "bytes=", 6) != 0 || strchr(value, ','))
		return AN_RANGE_NONE;
	p = value + 6;
	while (*p == ' ' || *p == '\t')
		p++;
	end = p + strlen(p);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	dash = memchr(p, '-', (size_t)(end - p));
	if (!dash)
		return AN_RANGE_NONE;
	if (dash == p) { /* suffix: the last n bytes */
		if (!parse_u64(dash + 1, (size_t)(end - dash - 1), &b))
			return AN_RANGE_NONE;
		if (b == 0 || size == 0)
			return AN_RANGE_UNSATISFIABLE;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return AN_RANGE_OK;
	}
	if (!parse_u64(p, (size_t)(dash - p), &a))
		return AN_RANGE_NONE;
	if (dash + 1 == end) {
		b = UINT64_MAX;
	} else {
		if (!parse_u64(dash + 1, (size_t)(end - dash - 1), &b) || b < a)
			return AN_RANGE_NONE;
	}
	if (a >= size)
		return AN_RANGE_UNSATISFIABLE;
	*first = a;
	*last = b >= size ? size - 1 : b;
	return AN_RANGE_OK;
}

bool an_static_if_range(const char *if_range, const char *etag, int64_t mtime)
{
	int64_t t;
	if (!if_range)
		return true;
	if (if_range[0] == '"')
		return strcmp(if_range, etag) == 0; /* strong comparison */
	if (if_range[0] == 'W' && if_range[1] == '/')
		return false; /* a weak tag never matches If-Range */
	return an_static_parse_http_date(if_range, &t) == 0 && t == mtime;
}

int an_static_open(int dirfd, const char *path, int *fd, struct stat *st)
{
	char buf[AN_STATIC_PATH_MAX];
	char *save = NULL, *comp, *next;
	int cur, rc = 0;
	*fd = -1;
	if (path[0] != '/' || strlen(path) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, path + 1);
	cur = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return -errno;
	comp = strtok_r(buf, "/", &save);
	while (comp) {
		int nfd;
		next = strtok_r(NULL, "/", &save);
		if (strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0) {
			rc = -EINVAL;
			goto out;
		}
		/*
		 * O_NOFOLLOW refuses a symlink as the last component of each step,
		 * and each step has one component, so no symlink is ever followed;
		 * O_NONBLOCK keeps a FIFO from blocking the loop in open().
		 */
		nfd = openat(cur, comp,
			     O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY |
				     (next ? O_DIRECTORY : 0));
		if (nfd < 0) {
			rc = -errno;
			goto out;
		}
		close(cur);
		cur = nfd;
		comp = next;
	}
	if (fstat(cur, st) < 0) {
		rc = -errno;
		goto out;
	}
	*fd = cur;
	cur = -1;
out:
	if (cur >= 0)
		close(cur);
	if (rc == -EMLINK) /* O_NOFOLLOW on some systems */
		rc = -ELOOP;
	return rc;
}

int an_static_site_init(struct an_static_site *s, const char *dir)
{
	s->dotfiles = false;
	s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return s->dirfd < 0 ? -errno : 0;
}

void an_static_site_free(struct an_static_site *s)
{
	if (s && s->dirfd >= 0) {
		close(s->dirfd);
		s->dirfd = -1;
	}
}

/* ---- the responder ---- */

struct sreq {
	int fd;
	uint64_t pos, end; /* bytes [pos, end) still to send */
	bool ended;
};

/* A short text/plain response with extra fields. */
static int simple(struct an_route_exchange *x, int status, const struct an_route_field *f, size_t nf)
{
	char body[64];
	struct an_route_field fields[4];
	int len = snprintf(body, sizeof(body), "%d %s\n", status, an_route_status_reason(status));
	size_t n = 0;
	for (size_t i = 0; i < nf && n < 2; i++)
		fields[n++] = f[i];
	fields[n++] = (struct an_route_field){"Content-Type", "text/plain; charset=utf-8"};
	fields[n++] = (struct an_route_field){"X-Content-Type-Options", "nosniff"};
	struct an_route_response r = {
		.status = status, .fields = fields, .n_fields = n,
		.framing = AN_ROUTE_BODY_LENGTH, .content_length = (uint64_t)len,
	};
	int rc = an_route_exchange_respond(x, &r);
	const struct an_route_head *h = an_route_exchange_head(x);
	if (rc == 0 && strcmp(h->method, "HEAD") != 0)
		rc = an_route_exchange_write(x, body, (size_t)len);
	if (rc == 0)
		rc = an_route_exchange_end(x);
	return rc;
}

static void pump(struct an_route_exchange *x)
{
	struct sreq *q = an_route_exchange_ctx(x);
	static uint8_t chunk[AN_STATIC_CHUNK];
	while (q->pos < q->end && an_route_exchange_writable(x)) {
		size_t want = q->end - q->pos < sizeof(chunk) ? (size_t)(q->end - q->pos) : sizeof(chunk);
		ssize_t r = pread(q->fd, chunk, want, (off_t)q->pos);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) { /* the file shrank or failed under us */
			an_route_exchange_abort(x);
			return;
		}
		if (an_route_exchange_write(x, chunk, (size_t)r) < 0) {
			an_route_exchange_abort(x);
			return;
		}
		q->pos += (uint64_t)r;
	}
	if (q->pos == q->end && !q->ended) {
		q->ended = true;
		an_route_exchange_end(x);
	}
}

/*
 * 301 to the directory's normalized path with its '/', the query kept.
 * Never built from the raw target: "//img" would give "//img/", which a
 * browser reads as the host "img".
 */
static int redirect_dir(struct an_route_exchange *x, const char *path, const char *target)
{
	char loc[AN_ROUTE_LINE_MAX + 2];
	if (an_static_dir_location(path, target, loc, sizeof(loc)) < 0)
		return simple(x, 414, NULL, 0);
	struct an_route_field f = {"Location", loc};
	return simple(x, 301, &f, 1);
}

static int static_start(void *arg, struct an_route_exchange *x, const struct an_route_head *h)
{
	struct an_static_site *site = arg;
	char path[AN_STATIC_PATH_MAX], etag[AN_STATIC_ETAG_MAX], lm[30], cr[96];
	struct an_route_field fields[8];
	struct stat st;
	uint64_t first = 0, last = 0;
	size_t nf = 0;
	int fd = -1, rc;
	bool head = strcmp(h->method, "HEAD") == 0;
	if (!head && strcmp(h->method, "GET") != 0) {
		struct an_route_field allow = {"Allow", "GET, HEAD"};
		return simple(x, 405, &allow, 1);
	}
	rc = an_route_path_normalize(h->target, path, sizeof(path));
	if (rc < 0)
		return simple(x, rc == AN_ETOOBIG ? 414 : 400, NULL, 0);
	if (!site->dotfiles && an_static_path_hidden(path))
		return simple(x, 404, NULL, 0); /* as if absent: no 301, no 403 */
	rc = an_static_open(site->dirfd, path, &fd, &st);
	if (rc == 0 && S_ISDIR(st.st_mode)) {
		int dfd = fd;
		if (path[strlen(path) - 1] != '/') {
			close(dfd);
			return redirect_dir(x, path, h->target);
		}
		rc = an_static_open(dfd, "/" AN_STATIC_INDEX, &fd, &st);
		close(dfd);
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "%s", AN_STATIC_INDEX);
	}
	if (rc < 0)
		return simple(x, rc == -EACCES ? 403 : 404, NULL, 0);
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return simple(x, 404, NULL, 0);
	}
	an_static_etag(&st, etag);
	an_static_http_date((int64_t)st.st_mtim.tv_sec, lm);
	fields[nf++] = (struct an_route_field){"ETag", etag};
	fields[nf++] = (struct an_route_field){"Last-Modified", lm};
	fields[nf++] = (struct an_route_field){"X-Content-Type-Options", "nosniff"};
	if (an_static_not_modified(an_route_head_get(h, "If-None-Match"),
				   an_route_head_get(h, "If-Modified-Since"), etag,
				   (int64_t)st.st_mtim.tv_sec)) {
		struct an_route_response r = {.status = 304, .fields = fields, .n_fields = nf};
		close(fd);
		rc = an_route_exchange_respond(x, &r);
		return rc == 0 ? an_route_exchange_end(x) : rc;
	}
	fields[nf++] = (struct an_route_field){"Accept-Ranges", "bytes"};
	uint64_t size = (uint64_t)st.st_size;
	enum an_static_range range = AN_RANGE_NONE;
	if (an_static_if_range(an_route_head_get(h, "If-Range"), etag, (int64_t)st.st_mtim.tv_sec))
		range = an_static_parse_range(an_route_head_get(h, "Range"), size, &first, &last);
	if (range == AN_RANGE_UNSATISFIABLE) {
		close(fd);
		snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)size);
		struct an_route_field f = {"Content-Range", cr};
		return simple(x, 416, &f, 1);
	}
	struct an_route_response r = {.status = 200, .fields = fields,
				      .framing = AN_ROUTE_BODY_LENGTH, .content_length = size};
	if (range == AN_RANGE_OK) {
		snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", (unsigned long long)first,
			 (unsigned long long)last, (unsigned long long)size);
		fields[nf++] = (struct an_route_field){"Content-Range", cr};
		r.status = 206;
		r.content_length = last - first + 1;
	} else {
		first = 0;
		last = size ? size - 1 : 0;
	}
	fields[nf++] = (struct an_route_field){"Content-Type", an_static_mime(path)};
	r.n_fields = nf;
	rc = an_route_exchange_respond(x, &r);
	if (rc < 0 || head || r.content_length == 0) {
		close(fd);
		return rc < 0 ? rc : an_route_exchange_end(x);
	}
	struct sreq *q = calloc(1, sizeof(*q));
	if (!q) {
		close(fd);
		an_route_exchange_abort(x);
		return 0;
	}
	q->fd = fd;
	q->pos = first;
	q->end = last + 1;
	an_route_exchange_set_ctx(x, q);
	pump(x);
	return 0;
}

static void static_writable(struct an_route_exchange *x)
{
	struct sreq *q = an_route_exchange_ctx(x);
	if (q && !q->ended)
		pump(x);
}

static void static_finish(struct an_route_exchange *x, int err)
{
	(void)err;
	struct sreq *q = an_route_exchange_ctx(x);
	if (q) {
		close(q->fd);
		free(q);
	}
}

const struct an_route_responder an_static_responder = {
	.start = static_start,
	.writable = static_writable,
	.finish = static_finish,
};
