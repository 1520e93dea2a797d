/*
 * file.h - bounded reads and careful writes of files.
 */
#ifndef AN_UTIL_FILE_H
#define AN_UTIL_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/*
 * Read fd to EOF, appending to out (whose cap bounds the read: AN_ETOOBIG if
 * the input is longer).  Retries EINTR.  Returns 0 or a negative code.
 */
int an_read_fd(int fd, struct an_buf *out);

/* Open path and read it whole into out, as an_read_fd. */
int an_read_file(const char *path, struct an_buf *out);

/*
 * Read a secret file of at most max bytes into memory from sodium_malloc()
 * (*out, *len; the caller wipes and frees it with sodium_free()).  Refuses
 * symlinks and non-regular files, and files that group or others may read or
 * write (AN_EKEYPERM), as ssh and minisign do.
 */
int an_read_secret_file(const char *path, size_t max, uint8_t **out, size_t *len);

/*
 * Write a secret file with mode 0600.  Without force, creates it with
 * O_EXCL|O_NOFOLLOW and fails with -EEXIST if it exists.  With force, writes
 * a temporary file beside it and renames it into place.  fsyncs the file.
 */
int an_write_secret_file(const char *path, const void *data, size_t len, bool force);

#endif
