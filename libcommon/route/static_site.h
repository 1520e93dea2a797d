/*
 * static_site.h - a directory served over /an/route/1.0.0: a responder
 * (server.h) and the pure pieces it is made of, tested on their own.
 *
 * Paths: the request target goes through an_route_path_normalize (query
 * dropped, percent-decoding once, "." and empty segments dropped; "..",
 * encoded '/' or '\', NUL and control bytes refused: 400).  The file is
 * then opened beneath the site's directory one component at a time with
 * openat(O_NOFOLLOW) - a symlink anywhere on the way is refused (404),
 * whether it would lead out of the directory or not, and no component can
 * climb out because ".." never reaches the walk.  Only regular files are
 * served; a directory answers its index.html, and a directory named
 * without its trailing '/' is redirected there (301), as web servers do, so
 * relative links in the index resolve.  The redirect's Location is built
 * from the normalized path (percent-encoded again), never from the raw
 * target, so it always starts with exactly one '/': "//img" would be a
 * protocol-relative URL to the host "img".
 *
 * Dotfiles: a path with any component that starts with '.' (".env",
 * ".git/config", "a/.htpasswd") is answered 404 as if absent - no 301, no
 * 403, never an index - unless the site allows them (dotfiles).  The one
 * exception is "/.well-known/" as the first component (RFC 8615: published
 * on purpose, security.txt, ACME challenges); a dotfile beneath it is still
 * hidden.
 *
 * Every response carries "X-Content-Type-Options: nosniff": the type is
 * the extension's, and a browser must not guess a script out of a text file.
 *
 * Methods: GET and HEAD; others 405 with "Allow: GET, HEAD".
 * Validators: ETag "<size hex>-<mtime ns hex>" (strong; stable across
 * restarts and copies that keep mtimes; no inode number, which would tell
 * clients about the file system.  A file replaced by another of the same
 * size and the same mtime to the nanosecond is the accepted blind spot) and
 * Last-Modified (IMF-fixdate).  If-None-Match (weak comparison, "*" too)
 * wins over If-Modified-Since (RFC 9110 13.2.2); either gives 304.
 * Range: one "bytes=" range (a-b, a-, -n) gives 206 with Content-Range, an
 * unsatisfiable one 416 with "Content-Range: bytes * /size"; several ranges,
 * a malformed Range, or an If-Range that does not match the ETag or
 * Last-Modified serve the whole file (200), as RFC 9110 14.2 allows.
 * Bodies are read AN_STATIC_CHUNK bytes at a time while the stream is
 * writable; a file that shrinks under us ends in a reset, never a short
 * "complete" body.
 */
#ifndef AN_ROUTE_STATIC_SITE_H
#define AN_ROUTE_STATIC_SITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "route/server.h"

#define AN_STATIC_CHUNK 65536          /* bytes read per step */
#define AN_STATIC_PATH_MAX 4096        /* a normalized request path */
#define AN_STATIC_ETAG_MAX 64
#define AN_STATIC_INDEX "index.html"
#define AN_STATIC_WELL_KNOWN ".well-known" /* the dot directory served by default */

/* The responder; its arg is a struct an_static_site. */
extern const struct an_route_responder an_static_responder;

struct an_static_site {
	int dirfd;     /* owned: O_PATH|O_DIRECTORY of the served directory */
	bool dotfiles; /* serve dotfiles too (an-serve --dotfiles); init sets false */
};

/*
 * Open dir (borrowed) for serving, dotfiles hidden.  0, -errno (-ENOTDIR for a file).
 * Free with an_static_site_free (NULL-safe; the struct itself is the caller's).
 */
int an_static_site_init(struct an_static_site *s, const char *dir);
void an_static_site_free(struct an_static_site *s);

/*
 * Open path (a normalized path from an_route_path_normalize, starting with
 * '/') beneath dirfd without following any symlink: *fd new (O_RDONLY,
 * caller closes), *st filled.  A directory path gives the directory's fd.
 * -ENOENT, -ELOOP (a symlink on the way), -ENOTDIR, -EACCES, -EINVAL (a
 * path that is not absolute or has "." / ".." / empty segments).
 */
int an_static_open(int dirfd, const char *path, int *fd, struct stat *st);

/*
 * Is path (normalized, as for an_static_open) hidden as a dotfile: does a
 * component start with '.', other than a first component ".well-known"?
 */
bool an_static_path_hidden(const char *path);

/*
 * The Location of the redirect for the directory path (normalized, starting
 * with one '/'): path percent-encoded where it is not an RFC 3986 pchar or
 * '/', a '/' appended, then the query of target (borrowed; from its '?',
 * if any) as it came.  Into out (cap bytes, NUL-terminated).  0,
 * AN_ETOOBIG, -EINVAL for a path that does not start with exactly one '/'.
 */
int an_static_dir_location(const char *path, const char *target, char *out, size_t cap);

/* MIME type by the path's extension (case-insensitive); application/octet-stream otherwise. */
const char *an_static_mime(const char *path);

/* The ETag of st into out (AN_STATIC_ETAG_MAX), quotes included. */
void an_static_etag(const struct stat *st, char out[AN_STATIC_ETAG_MAX]);

/* IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT" of t into out (30 bytes). */
void an_static_http_date(int64_t t, char out[30]);

/* Parse an IMF-fixdate (the only form we send; others are -EINVAL). */
int an_static_parse_http_date(const char *s, int64_t *t);

/*
 * Should the answer be 304?  inm: If-None-Match (may be NULL), ims:
 * If-Modified-Since (may be NULL), etag and mtime: the file's.
 */
bool an_static_not_modified(const char *inm, const char *ims, const char *etag, int64_t mtime);

enum an_static_range {
	AN_RANGE_NONE = 0,      /* no usable Range: serve the whole file */
	AN_RANGE_OK = 1,        /* [*first, *last] inclusive */
	AN_RANGE_UNSATISFIABLE  /* 416 */
};

/* A Range field value (may be NULL) against a file of size bytes. */
enum an_static_range an_static_parse_range(const char *value, uint64_t size, uint64_t *first,
					   uint64_t *last);

/* Does If-Range (may be NULL: yes) allow the range, given the file's validators? */
bool an_static_if_range(const char *if_range, const char *etag, int64_t mtime);

#endif
