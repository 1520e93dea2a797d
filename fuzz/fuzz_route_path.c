/*
 * libFuzzer harness for the static-file path: a request target (the input,
 * NUL-free copy) through an_route_path_normalize, then, when accepted, the
 * no-symlink walk an_static_open beneath a small directory made once:
 *   root/a, root/d/b, root/up -> ..  (a symlink out of the directory)
 * Checks: an accepted path starts with '/', holds no empty, "." or ".."
 * segment, no backslash and no control byte; normalising it again, when
 * it holds no %, ? or #, changes nothing; the walk never succeeds through the
 * "up" symlink.  The static server's pieces on the same path: the dotfile
 * test agrees with a plain reading of its rule, and a directory redirect's
 * Location starts with exactly one '/' and normalises back to the path.
 */
#include "route/route.h"
#include "route/static_site.h"
#include "util/error.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int root_fd = -1;
static char dir[] = "/tmp/fuzz_route_path.XXXXXX";

/* At exit: the tree goes (libFuzzer ends runs with exit()). */
static void remove_root(void)
{
	static const char *const paths[] = {"root/up", "root/d/b", "root/a", "root/d", "root", ""};
	char p[128];
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, paths[i]);
		if (unlink(p) < 0)
			rmdir(p);
	}
}

static void make_root(void)
{
	char p[128];
	if (!mkdtemp(dir))
		abort();
	atexit(remove_root);
	snprintf(p, sizeof(p), "%s/root", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/root/d", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/root/a", dir);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	snprintf(p, sizeof(p), "%s/root/d/b", dir);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	snprintf(p, sizeof(p), "%s/root/up", dir);
	if (symlink("..", p) < 0)
		abort();
	snprintf(p, sizeof(p), "%s/root", dir);
	root_fd = open(p, O_RDONLY | O_DIRECTORY);
	if (root_fd < 0)
		abort();
}

static void check_segments(const char *out)
{
	size_t n = strlen(out);
	if (out[0] != '/' || strchr(out, '\\'))
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			abort();
	/* segments between slashes: none empty (but a trailing '/'), ".", ".." */
	for (const char *s = out + 1; *s;) {
		const char *e = strchr(s, '/');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		if ((len == 0 && e) || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
			abort();
		if (!e)
			break;
		s = e + 1;
	}
}

/* Any segment starting with '.', but a first ".well-known". */
static bool hidden_by_rule(const char *out)
{
	for (const char *s = out + 1; *s;) {
		const char *e = strchr(s, '/');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		if (len && s[0] == '.' && !(s == out + 1 && len == 11 && memcmp(s, ".well-known", 11) == 0))
			return true;
		if (!e)
			break;
		s = e + 1;
	}
	return false;
}

/* The redirect of out as a directory: one leading '/', and it names out again. */
static void check_location(const char *out, const char *target)
{
	char loc[AN_ROUTE_LINE_MAX + 2], path[AN_STATIC_PATH_MAX + 1], back[AN_STATIC_PATH_MAX + 2];
	size_t n = strlen(out);
	int rc = an_static_dir_location(out, target, loc, sizeof(loc));
	if (rc == AN_ETOOBIG)
		return;
	if (rc != 0 || loc[0] != '/' || loc[1] == '/' || loc[1] == '\\')
		abort();
	if (an_route_path_normalize(loc, back, sizeof(back)) != 0)
		abort();
	memcpy(path, out, n + 1);
	if (path[n - 1] != '/') {
		path[n] = '/';
		path[n + 1] = 0;
	}
	if (strcmp(back, path) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char target[AN_ROUTE_LINE_MAX + 1], out[AN_STATIC_PATH_MAX], again[AN_STATIC_PATH_MAX];
	struct stat st;
	int fd;
	if (root_fd < 0)
		make_root();
	if (size > AN_ROUTE_LINE_MAX || memchr(data, 0, size))
		return 0;
	memcpy(target, data, size);
	target[size] = 0;
	if (an_route_path_normalize(target, out, sizeof(out)) != 0)
		return 0;
	check_segments(out);
	if (an_static_path_hidden(out) != hidden_by_rule(out))
		abort();
	check_location(out, target);
	if (!strpbrk(out, "%?#")) { /* a decoded "%", "?" or "#" means something else the second time */
		if (an_route_path_normalize(out, again, sizeof(again)) != 0 || strcmp(out, again) != 0)
			abort();
	}
	if (an_static_open(root_fd, out, &fd, &st) == 0) {
		if (strncmp(out, "/up/", 4) == 0 || strcmp(out, "/up") == 0)
			abort(); /* followed the symlink out */
		close(fd);
	}
	return 0;
}
