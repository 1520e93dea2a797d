/*
 * init.h - the process-wide setup every program does once, at the start of
 * main (as curl_global_init): nothing in libcommon changes process state
 * by itself.
 */
#ifndef AN_UTIL_INIT_H
#define AN_UTIL_INIT_H

/*
 * Fixes glibc's mmap threshold at 128 KiB (mallopt M_MMAP_THRESHOLD) and
 * opens the reserve descriptor of an_accept (util/accept.h).
 *
 * The mmap threshold: glibc raises it each time a large mmapped block is
 * freed, so after a few hundred connections have come and gone the
 * transport's big receive buffers come from the heap instead: a listener
 * measured 8.1 Gbit/s on its first bulk stream and 6.8 after 200 short
 * connections (the copy into the stream buffer cost twice as much; 7.9
 * with the threshold fixed), and freed buffers stayed in the process's
 * RSS.
 *
 * Idempotent.  0, or -errno when the reserve could not be opened (the
 * process works on; an_accept tries again later).
 */
int an_global_init(void);

#endif
