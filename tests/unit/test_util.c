/* Unit tests for libcommon/util: error codes, capped buffers, file I/O. */
#include "check.h"

#include "util/buf.h"
#include "util/error.h"
#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/an-test-util.XXXXXX";

static void test_error_classes(void)
{
	CHECK_EQ_INT(an_error_class(0), AN_CLASS_OK);
	CHECK_EQ_INT(an_error_class(AN_EMALFORMED), AN_CLASS_DATA);
	CHECK_EQ_INT(an_error_class(AN_EFIELD), AN_CLASS_DATA);
	CHECK_EQ_INT(an_error_class(AN_EBADSIG), AN_CLASS_NEGATIVE);
	CHECK_EQ_INT(an_error_class(AN_EPINNED), AN_CLASS_NEGATIVE);
	CHECK_EQ_INT(an_error_class(-ENOENT), AN_CLASS_SYSTEM);
	CHECK_EQ_INT(an_error_class(AN_EPROTO), AN_CLASS_SYSTEM);
	CHECK_EQ_STR(an_strerror(-ENOENT), "No such file or directory");
	CHECK_EQ_STR(an_strerror(AN_EBADSIG), "signature does not verify");
	for (int e = AN_EBASE - 1; e > AN_ELAST; e--)
		CHECK(an_strerror(e) != NULL);
	CHECK_EQ_STR(an_strerror(AN_ELAST - 5), "unknown error");
}

static void test_buf_cap(void)
{
	struct an_buf b;
	an_buf_init(&b, 10);
	CHECK_EQ_INT(an_buf_append(&b, "0123456789", 10), 0);
	CHECK_EQ_INT(b.len, 10);
	CHECK_EQ_INT(an_buf_putc(&b, 'x'), AN_ETOOBIG);
	CHECK_EQ_INT(b.len, 10);
	CHECK_EQ_INT(b.data[10], 0);
	an_buf_consume(&b, 4);
	CHECK_EQ_STR((char *)b.data, "456789");
	CHECK_EQ_INT(an_buf_append(&b, "abcd", 4), 0);
	CHECK_EQ_STR((char *)b.data, "456789abcd");
	size_t n;
	uint8_t *p = an_buf_steal(&b, &n);
	CHECK_EQ_INT(n, 10);
	CHECK(b.data == NULL && b.len == 0);
	free(p);
	an_buf_free(&b);
	an_buf_free(NULL);
}

static void test_buf_growth(void)
{
	struct an_buf b;
	an_buf_init(&b, 1 << 20);
	for (int i = 0; i < 100000; i++)
		CHECK_EQ_INT(an_buf_putc(&b, (uint8_t)i), 0);
	CHECK_EQ_INT(b.len, 100000);
	CHECK_EQ_INT(b.data[99999], (uint8_t)99999);
	an_buf_reset(&b);
	CHECK_EQ_INT(b.len, 0);
	an_buf_free(&b);
}

static void path_in_tmp(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void test_read_file_cap(void)
{
	char path[256];
	path_in_tmp(path, sizeof path, "data");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK_EQ_INT(write(fd, "hello world", 11), 11);
	close(fd);
	struct an_buf b;
	an_buf_init(&b, 11);
	CHECK_EQ_INT(an_read_file(path, &b), 0);
	CHECK_EQ_STR((char *)b.data, "hello world");
	an_buf_free(&b);
	an_buf_init(&b, 10);
	CHECK_EQ_INT(an_read_file(path, &b), AN_ETOOBIG);
	an_buf_free(&b);
	an_buf_init(&b, 100);
	path_in_tmp(path, sizeof path, "missing");
	CHECK_EQ_INT(an_read_file(path, &b), -ENOENT);
	an_buf_free(&b);
}

static void test_secret_file(void)
{
	char path[256];
	path_in_tmp(path, sizeof path, "key");
	CHECK_EQ_INT(an_write_secret_file(path, "secret", 6, false), 0);
	struct stat st;
	CHECK_EQ_INT(stat(path, &st), 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0600);
	CHECK_EQ_INT(an_write_secret_file(path, "other", 5, false), -EEXIST);
	CHECK_EQ_INT(an_write_secret_file(path, "newer", 5, true), 0);
	uint8_t *data = NULL;
	size_t len = 0;
	CHECK_EQ_INT(an_read_secret_file(path, 64, &data, &len), 0);
	CHECK_EQ_INT(len, 5);
	if (data) {
		CHECK_EQ_MEM(data, "newer", 5);
		sodium_free(data);
	}
	CHECK_EQ_INT(an_read_secret_file(path, 4, &data, &len), AN_ETOOBIG);
	chmod(path, 0644);
	CHECK_EQ_INT(an_read_secret_file(path, 64, &data, &len), AN_EKEYPERM);
	char link[256];
	path_in_tmp(link, sizeof link, "link");
	CHECK_EQ_INT(symlink(path, link), 0);
	CHECK_EQ_INT(an_read_secret_file(link, 64, &data, &len), -ELOOP);
	CHECK_EQ_INT(an_write_secret_file(link, "x", 1, false), -EEXIST);
	unlink(link);
	unlink(path);
}

int main(void)
{
	if (sodium_init() < 0 || !mkdtemp(tmpdir))
		return 1;
	RUN(test_error_classes);
	RUN(test_buf_cap);
	RUN(test_buf_growth);
	RUN(test_read_file_cap);
	RUN(test_secret_file);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		return 1;
	return check_done();
}
