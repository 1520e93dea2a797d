/* test_route_static: the pure pieces of route/static_site - safe opening, ranges, conditionals. */
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "route/route.h"
#include "route/static_site.h"
#include "util/error.h"

static char tmp[256];
static int root_fd = -1;

/* tmp/site/{a.txt, dir/index.html, dir/b.css, link -> ../secret, inlink -> a.txt, dlink -> dir}, tmp/secret */
static void make_tree(void)
{
	char p[512];
	int fd;
	snprintf(tmp, sizeof(tmp), "/tmp/test_route_static.XXXXXX");
	if (!mkdtemp(tmp))
		abort();
	snprintf(p, sizeof(p), "%s/site", tmp);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/site/dir", tmp);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/secret", tmp);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	if (write(fd, "secret", 6) != 6)
		abort();
	close(fd);
	snprintf(p, sizeof(p), "%s/site/a.txt", tmp);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	if (write(fd, "hello", 5) != 5)
		abort();
	close(fd);
	snprintf(p, sizeof(p), "%s/site/dir/index.html", tmp);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	snprintf(p, sizeof(p), "%s/site/link", tmp);
	if (symlink("../secret", p) < 0)
		abort();
	snprintf(p, sizeof(p), "%s/site/inlink", tmp);
	if (symlink("a.txt", p) < 0)
		abort();
	snprintf(p, sizeof(p), "%s/site/dlink", tmp);
	if (symlink("dir", p) < 0)
		abort();
	snprintf(p, sizeof(p), "%s/site/fifo", tmp);
	if (mkfifo(p, 0600) < 0)
		abort();
	snprintf(p, sizeof(p), "%s/site", tmp);
	root_fd = open(p, O_RDONLY | O_DIRECTORY);
	if (root_fd < 0)
		abort();
}

static void remove_tree(void)
{
	char cmd[600];
	close(root_fd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", tmp);
}

static int open_path(const char *path, struct stat *st)
{
	int fd = -1;
	int rc = an_static_open(root_fd, path, &fd, st);
	if (fd >= 0)
		close(fd);
	return rc;
}

static void test_open_regular_file(void)
{
	struct stat st;
	CHECK_EQ_INT(open_path("/a.txt", &st), 0);
	CHECK(S_ISREG(st.st_mode));
	CHECK_EQ_INT(st.st_size, 5);
}

static void test_open_directory(void)
{
	struct stat st;
	CHECK_EQ_INT(open_path("/dir/", &st), 0);
	CHECK(S_ISDIR(st.st_mode));
	CHECK_EQ_INT(open_path("/", &st), 0);
	CHECK(S_ISDIR(st.st_mode));
}

static void test_open_refuses_symlink_out(void)
{
	struct stat st;
	CHECK_EQ_INT(open_path("/link", &st), -ELOOP);
}

static void test_open_refuses_symlink_inside(void)
{
	struct stat st;
	CHECK_EQ_INT(open_path("/inlink", &st), -ELOOP);
}

static void test_open_refuses_symlinked_directory(void)
{
	struct stat st;
	int rc = open_path("/dlink/index.html", &st);
	CHECK(rc == -ELOOP || rc == -ENOTDIR);
}

static void test_open_refuses_dotdot_and_dot(void)
{
	struct stat st;
	CHECK_EQ_INT(open_path("/../secret", &st), -EINVAL);
	CHECK_EQ_INT(open_path("/dir/../../secret", &st), -EINVAL);
	CHECK_EQ_INT(open_path("/./a.txt", &st), -EINVAL);
	CHECK_EQ_INT(open_path("a.txt", &st), -EINVAL);
}

static void test_open_missing(void)
{
	struct stat st;
	CHECK_EQ_INT(open_path("/nope", &st), -ENOENT);
	CHECK_EQ_INT(open_path("/a.txt/x", &st), -ENOTDIR);
}

static void test_open_fifo_does_not_block(void)
{
	struct stat st;
	/* opened non-blocking (the caller then refuses what is not a regular file) */
	CHECK_EQ_INT(open_path("/fifo", &st), 0);
	CHECK(S_ISFIFO(st.st_mode));
}

/* Whatever the normaliser lets through never opens the secret outside. */
static void test_normalized_targets_stay_inside(void)
{
	static const char *const targets[] = {
		"/%2e%2e/secret", "/..%2fsecret", "/.%2e/secret", "/dir/%2E%2E/%2E%2E/secret",
		"/dir/..", "/%2fsecret", "/link", "/dir/../link", "/..\\secret", "/%5c..%5csecret",
	};
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		char path[AN_STATIC_PATH_MAX];
		struct stat st;
		int rc = an_route_path_normalize(targets[i], path, sizeof(path));
		if (rc == 0) {
			rc = open_path(path, &st);
			CHECK(rc < 0 || st.st_size != 6);
		}
	}
}

static void test_mime(void)
{
	CHECK_EQ_STR(an_static_mime("/a/index.html"), "text/html; charset=utf-8");
	CHECK_EQ_STR(an_static_mime("/x.PNG"), "image/png");
	CHECK_EQ_STR(an_static_mime("/x.tar.gz"), "application/gzip");
	CHECK_EQ_STR(an_static_mime("/noext"), "application/octet-stream");
	CHECK_EQ_STR(an_static_mime("/dir.d/noext"), "application/octet-stream");
	CHECK_EQ_STR(an_static_mime("/trailing."), "application/octet-stream");
}

static void test_http_date_roundtrip(void)
{
	char d[30];
	int64_t t = 0;
	an_static_http_date(784111777, d);
	CHECK_EQ_STR(d, "Sun, 06 Nov 1994 08:49:37 GMT");
	CHECK_EQ_INT(an_static_parse_http_date(d, &t), 0);
	CHECK_EQ_INT(t, 784111777);
}

static void test_http_date_rejects_other_forms(void)
{
	int64_t t;
	CHECK_EQ_INT(an_static_parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", &t), -EINVAL);
	CHECK_EQ_INT(an_static_parse_http_date("Sun Nov  6 08:49:37 1994", &t), -EINVAL);
	CHECK_EQ_INT(an_static_parse_http_date("Sun, 06 Xyz 1994 08:49:37 GMT", &t), -EINVAL);
	CHECK_EQ_INT(an_static_parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC", &t), -EINVAL);
	CHECK_EQ_INT(an_static_parse_http_date(NULL, &t), -EINVAL);
}

static void test_etag_changes_with_file(void)
{
	struct stat a = {0}, b;
	char e1[AN_STATIC_ETAG_MAX], e2[AN_STATIC_ETAG_MAX];
	a.st_size = 5;
	a.st_mtim.tv_sec = 1000;
	a.st_ino = 7;
	b = a;
	an_static_etag(&a, e1);
	CHECK(e1[0] == '"' && e1[strlen(e1) - 1] == '"');
	b.st_mtim.tv_nsec = 1;
	an_static_etag(&b, e2);
	CHECK(strcmp(e1, e2) != 0);
	b = a;
	b.st_size = 6;
	an_static_etag(&b, e2);
	CHECK(strcmp(e1, e2) != 0);
}

static void test_etag_has_no_inode(void)
{
	struct stat a = {0}, b;
	char e1[AN_STATIC_ETAG_MAX], e2[AN_STATIC_ETAG_MAX];
	a.st_size = 0x1234;
	a.st_mtim.tv_sec = 1000;
	a.st_mtim.tv_nsec = 5;
	a.st_ino = 0xabcdef;
	an_static_etag(&a, e1);
	CHECK_EQ_STR(e1, "\"1234-e8d4a51005\"");
	b = a;
	b.st_ino = 7; /* the same file after a restore or on another machine */
	an_static_etag(&b, e2);
	CHECK_EQ_STR(e1, e2);
	CHECK(strstr(e1, "abcdef") == NULL);
}

static void test_dotfiles_hidden(void)
{
	static const char *const hidden[] = {
		"/.env", "/.git/", "/.git/config", "/a/.htpasswd", "/a/b/.x/c", "/..a", "/.well-known/.x",
		"/.well-knownx", "/a/.well-known/x", "/.WELL-KNOWN/x",
	};
	static const char *const shown[] = {
		"/", "/a.txt", "/a/b.c/", "/x.", "/a/b", "/.well-known/", "/.well-known",
		"/.well-known/security.txt",
	};
	for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++)
		if (!an_static_path_hidden(hidden[i])) {
			printf("#   %s should be hidden\n", hidden[i]);
			CHECK(0);
		}
	for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++)
		if (an_static_path_hidden(shown[i])) {
			printf("#   %s should be shown\n", shown[i]);
			CHECK(0);
		}
}

/* A directory's redirect starts with exactly one '/', whatever the target looked like. */
static void test_dir_location_from_normalized_path(void)
{
	static const struct {
		const char *target, *location;
	} cases[] = {
		{"//img", "/img/"},
		{"/a//b", "/a/b/"},
		{"///a/./b?x=1//y", "/a/b/?x=1//y"},
		{"//%2e/img", "/img/"},
		{"/%2F%2Fimg", NULL}, /* refused by the normaliser (400) */
		{"/a%20b?q", "/a%20b/?q"},
		{"/%C3%A9t%C3%A9", "/%C3%A9t%C3%A9/"},
		{"/a%25b", "/a%25b/"},
		{"/a%3Fb", "/a%3Fb/"},
		{"/a%23b", "/a%23b/"},
		{"/@evil:x", "/@evil:x/"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char path[AN_STATIC_PATH_MAX], loc[256];
		int rc = an_route_path_normalize(cases[i].target, path, sizeof(path));
		if (!cases[i].location) {
			CHECK(rc < 0);
			continue;
		}
		CHECK_EQ_INT(rc, 0);
		CHECK_EQ_INT(an_static_dir_location(path, cases[i].target, loc, sizeof(loc)), 0);
		CHECK_EQ_STR(loc, cases[i].location);
		CHECK(loc[0] == '/' && loc[1] != '/' && loc[1] != '\\');
	}
}

static void test_dir_location_limits(void)
{
	char loc[9];
	CHECK_EQ_INT(an_static_dir_location("/abcdef", "/abcdef", loc, sizeof(loc)), 0);
	CHECK_EQ_STR(loc, "/abcdef/");
	CHECK_EQ_INT(an_static_dir_location("/abcdefg", "/abcdefg", loc, sizeof(loc)), AN_ETOOBIG);
	CHECK_EQ_INT(an_static_dir_location("/abc d", "/abc%20d", loc, sizeof(loc)), AN_ETOOBIG);
	CHECK_EQ_INT(an_static_dir_location("/a", "/a?longer", loc, sizeof(loc)), AN_ETOOBIG);
	CHECK_EQ_INT(an_static_dir_location("//a", "//a", loc, sizeof(loc)), -EINVAL);
	CHECK_EQ_INT(an_static_dir_location("a", "a", loc, sizeof(loc)), -EINVAL);
}

static void test_site_init_hides_dotfiles(void)
{
	struct an_static_site s = {.dotfiles = true};
	CHECK_EQ_INT(an_static_site_init(&s, tmp), 0);
	CHECK(!s.dotfiles);
	an_static_site_free(&s);
}

static void test_if_none_match(void)
{
	const char *etag = "\"5-abc-7\"";
	CHECK(an_static_not_modified("\"5-abc-7\"", NULL, etag, 100));
	CHECK(an_static_not_modified("W/\"5-abc-7\"", NULL, etag, 100)); /* weak comparison */
	CHECK(an_static_not_modified("\"x\", \"5-abc-7\"", NULL, etag, 100));
	CHECK(an_static_not_modified("*", NULL, etag, 100));
	CHECK(!an_static_not_modified("\"other\"", NULL, etag, 100));
	CHECK(!an_static_not_modified("5-abc-7", NULL, etag, 100)); /* unquoted: malformed */
}

static void test_if_none_match_wins_over_if_modified_since(void)
{
	const char *etag = "\"5-abc-7\"";
	/* the date alone says not modified; a non-matching tag says modified */
	CHECK(!an_static_not_modified("\"other\"", "Sun, 06 Nov 1994 08:49:37 GMT", etag, 100));
}

static void test_if_modified_since(void)
{
	const char *etag = "\"e\"";
	char d[30];
	an_static_http_date(1000, d);
	CHECK(an_static_not_modified(NULL, d, etag, 1000));
	CHECK(an_static_not_modified(NULL, d, etag, 999));
	CHECK(!an_static_not_modified(NULL, d, etag, 1001));
	CHECK(!an_static_not_modified(NULL, "yesterday", etag, 1));
	CHECK(!an_static_not_modified(NULL, NULL, etag, 1));
}

static void test_range_forms(void)
{
	uint64_t a = 0, b = 0;
	CHECK_EQ_INT(an_static_parse_range("bytes=0-4", 10, &a, &b), AN_RANGE_OK);
	CHECK(a == 0 && b == 4);
	CHECK_EQ_INT(an_static_parse_range("bytes=3-", 10, &a, &b), AN_RANGE_OK);
	CHECK(a == 3 && b == 9);
	CHECK_EQ_INT(an_static_parse_range("bytes=-4", 10, &a, &b), AN_RANGE_OK);
	CHECK(a == 6 && b == 9);
	CHECK_EQ_INT(an_static_parse_range("bytes=-40", 10, &a, &b), AN_RANGE_OK);
	CHECK(a == 0 && b == 9);
	CHECK_EQ_INT(an_static_parse_range("bytes=5-100", 10, &a, &b), AN_RANGE_OK);
	CHECK(a == 5 && b == 9);
	CHECK_EQ_INT(an_static_parse_range("Bytes=1-1", 10, &a, &b), AN_RANGE_OK);
	CHECK(a == 1 && b == 1);
}

static void test_range_unsatisfiable(void)
{
	uint64_t a, b;
	CHECK_EQ_INT(an_static_parse_range("bytes=10-", 10, &a, &b), AN_RANGE_UNSATISFIABLE);
	CHECK_EQ_INT(an_static_parse_range("bytes=10-20", 10, &a, &b), AN_RANGE_UNSATISFIABLE);
	CHECK_EQ_INT(an_static_parse_range("bytes=-0", 10, &a, &b), AN_RANGE_UNSATISFIABLE);
	CHECK_EQ_INT(an_static_parse_range("bytes=0-", 0, &a, &b), AN_RANGE_UNSATISFIABLE);
}

static void test_range_ignored(void)
{
	uint64_t a, b;
	CHECK_EQ_INT(an_static_parse_range(NULL, 10, &a, &b), AN_RANGE_NONE);
	CHECK_EQ_INT(an_static_parse_range("bytes=0-1,3-4", 10, &a, &b), AN_RANGE_NONE);
	CHECK_EQ_INT(an_static_parse_range("bytes=4-2", 10, &a, &b), AN_RANGE_NONE);
	CHECK_EQ_INT(an_static_parse_range("items=0-1", 10, &a, &b), AN_RANGE_NONE);
	CHECK_EQ_INT(an_static_parse_range("bytes=a-b", 10, &a, &b), AN_RANGE_NONE);
	CHECK_EQ_INT(an_static_parse_range("bytes=", 10, &a, &b), AN_RANGE_NONE);
	CHECK_EQ_INT(an_static_parse_range("bytes=99999999999999999999-", 10, &a, &b), AN_RANGE_NONE);
}

static void test_if_range(void)
{
	char d[30];
	an_static_http_date(1000, d);
	CHECK(an_static_if_range(NULL, "\"e\"", 1000));
	CHECK(an_static_if_range("\"e\"", "\"e\"", 1000));
	CHECK(!an_static_if_range("\"f\"", "\"e\"", 1000));
	CHECK(!an_static_if_range("W/\"e\"", "\"e\"", 1000));
	CHECK(an_static_if_range(d, "\"e\"", 1000));
	CHECK(!an_static_if_range(d, "\"e\"", 1001));
}

static void test_site_init_missing_dir(void)
{
	struct an_static_site s;
	CHECK_EQ_INT(an_static_site_init(&s, "/nonexistent/dir/for/test"), -ENOENT);
	an_static_site_free(&s); /* safe on a failed init */
}

int main(void)
{
	make_tree();
	RUN(test_open_regular_file);
	RUN(test_open_directory);
	RUN(test_open_refuses_symlink_out);
	RUN(test_open_refuses_symlink_inside);
	RUN(test_open_refuses_symlinked_directory);
	RUN(test_open_refuses_dotdot_and_dot);
	RUN(test_open_missing);
	RUN(test_open_fifo_does_not_block);
	RUN(test_normalized_targets_stay_inside);
	RUN(test_mime);
	RUN(test_http_date_roundtrip);
	RUN(test_http_date_rejects_other_forms);
	RUN(test_etag_changes_with_file);
	RUN(test_etag_has_no_inode);
	RUN(test_dotfiles_hidden);
	RUN(test_dir_location_from_normalized_path);
	RUN(test_dir_location_limits);
	RUN(test_site_init_hides_dotfiles);
	RUN(test_if_none_match);
	RUN(test_if_none_match_wins_over_if_modified_since);
	RUN(test_if_modified_since);
	RUN(test_range_forms);
	RUN(test_range_unsatisfiable);
	RUN(test_range_ignored);
	RUN(test_if_range);
	RUN(test_site_init_missing_dir);
	remove_tree();
	return check_done();
}
