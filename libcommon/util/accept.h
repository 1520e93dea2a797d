/*
 * accept.h - accepting on a listening socket without spinning when the
 * process is out of file descriptors (the one accept of the host, the
 * control socket and the gateway).
 *
 * libev watches listening sockets level-triggered: an accept callback that
 * returns on EMFILE leaves the connection in the backlog, and libev calls
 * it again at once, for as long as the descriptors stay used up (a daemon
 * under `ulimit -n 48` holding 80 connections burned a whole core).  libev's
 * manual ("The special problem of accept()ing when you can't") names the
 * ways out; an_accept takes the "reserve descriptor" one: the process keeps
 * one descriptor open on /dev/null, and when accept fails for lack of
 * descriptors it closes the reserve, accepts the waiting connection,
 * closes it at once (the peer sees a closed connection instead of a hang)
 * and opens the reserve again.  The backlog empties, so the listener stops
 * being readable and the loop sleeps; once descriptors are free again
 * accepting works as before.  Should the reserve be lost (another process
 * took the system's last file, ENFILE), an_accept says so (AN_ELIMIT) and
 * the caller pauses its watcher (an_accept_pause).
 *
 * Nothing here is thread-safe; the programs are single-threaded.
 */
#ifndef AN_UTIL_ACCEPT_H
#define AN_UTIL_ACCEPT_H

#include <ev.h>
#include <stdbool.h>
#include <sys/socket.h>

/*
 * Open the reserve descriptor now (an_global_init does, util/init.h; else
 * the first successful an_accept).  Idempotent.  0 or -errno.
 */
int an_accept_reserve(void);

/*
 * accept4(lfd) with SOCK_NONBLOCK | SOCK_CLOEXEC.  ss/sl may be NULL (sl
 * in/out as for accept).  Returns the new descriptor (the caller owns it)
 * or a negative code: -EAGAIN when nothing (more) waits (stop reading
 * the backlog), -EMFILE / -ENFILE after the waiting connections were
 * accepted and closed for lack of descriptors (also: stop for now; the
 * reserve is held again), AN_ELIMIT when out of descriptors and the
 * reserve could not be held (pause the watcher: an_accept_pause), other
 * -errno from accept (ECONNABORTED and the like: call again).
 */
int an_accept(int lfd, struct sockaddr_storage *ss, socklen_t *sl);

/* True for the an_accept results that mean "stop reading the backlog now". */
bool an_accept_should_stop(int rc);

/*
 * Stop w (an ev_io on a listening socket, borrowed) for AN_ACCEPT_PAUSE_MS,
 * then start it again.  pause is the caller's ev_timer next to w, set up
 * once by an_accept_pause_init; whoever stops w for good (shutdown, free)
 * stops pause too (ev_timer_stop), or it would restart w.
 */
#define AN_ACCEPT_PAUSE_MS 100
void an_accept_pause_init(ev_timer *pause, ev_io *w);
void an_accept_pause(struct ev_loop *loop, ev_timer *pause, ev_io *w);

#endif
