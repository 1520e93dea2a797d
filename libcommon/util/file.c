#include "util/file.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int an_read_fd(int fd, struct an_buf *out)
{
	for (;;) {
		uint8_t *dst;
		size_t room = out->max - out->len;
		size_t want = room < 65536 ? room : 65536;
		/* Ask for one byte past the cap so an over-long input is noticed. */
		if (want == 0) {
			uint8_t extra;
			ssize_t n = read(fd, &extra, 1);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
			return n == 0 ? 0 : AN_ETOOBIG;
		}
		int rc = an_buf_reserve(out, want, &dst);
		if (rc < 0)
			return rc;
		ssize_t n = read(fd, dst, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		out->len += (size_t)n;
		out->data[out->len] = 0;
	}
}

int an_read_file(const char *path, struct an_buf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = an_read_fd(fd, out);
	close(fd);
	return rc;
}

int an_read_secret_file(const char *path, size_t max, uint8_t **out, size_t *len)
{
	int rc = 0;
	uint8_t *data = NULL;
	size_t have = 0;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return errno == ELOOP ? -ELOOP : -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto out;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		rc = AN_EKEYPERM;
		goto out;
	}
	data = sodium_malloc(max + 1);
	if (!data) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, data + have, max + 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		have += (size_t)n;
		if (have > max) {
			rc = AN_ETOOBIG;
			goto out;
		}
	}
	*out = data;
	*len = have;
	data = NULL;
out:
	if (data)
		sodium_free(data); /* sodium_free wipes */
	close(fd);
	return rc;
}

static int write_all(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int an_write_secret_file(const char *path, const void *data, size_t len, bool force)
{
	char tmp[4096];
	const char *target = path;
	int rc;

	if (force) {
		int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
		if (n < 0 || (size_t)n >= sizeof tmp)
			return -ENAMETOOLONG;
		target = tmp;
		unlink(tmp);
	}
	int fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, data, len);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && force && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(target);
	return rc;
}
