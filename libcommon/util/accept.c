#include "util/accept.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <unistd.h>

#include "util/error.h"

static int reserve_fd = -1;

int an_accept_reserve(void)
{
	if (reserve_fd >= 0)
		return 0;
	reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return reserve_fd >= 0 ? 0 : -errno;
}

/* At most this many waiting connections are shed in one call. */
#define SHED_MAX 64

int an_accept(int lfd, struct sockaddr_storage *ss, socklen_t *sl)
{
	int fd = accept4(lfd, (struct sockaddr *)ss, sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0) {
		/* a process that never called an_global_init gets its reserve
		   here, while descriptors are still to be had (best effort) */
		an_accept_reserve();
		return fd;
	}
	int err = errno;
	if (err == EWOULDBLOCK)
		return -EAGAIN;
	if (err != EMFILE && err != ENFILE)
		return -err;
	/* Out of descriptors: use the reserve to take each waiting connection
	   off the backlog and close it, so the listener stops being readable. */
	for (int i = 0; i < SHED_MAX; i++) {
		if (reserve_fd < 0)
			return AN_ELIMIT;
		close(reserve_fd);
		reserve_fd = -1;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		int again = fd < 0 ? errno : 0;
		if (fd >= 0)
			close(fd);
		if (an_accept_reserve() < 0)
			return AN_ELIMIT;
		if (fd < 0)
			return again == EWOULDBLOCK ? -err : -again;
	}
	return -err;
}

bool an_accept_should_stop(int rc)
{
	return rc == -EAGAIN || rc == -EMFILE || rc == -ENFILE || rc == AN_ELIMIT;
}

static void pause_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)revents;
	ev_io *w = t->data;
	if (!ev_is_active(w))
		ev_io_start(loop, w);
}

void an_accept_pause_init(ev_timer *pause, ev_io *w)
{
	ev_timer_init(pause, pause_cb, AN_ACCEPT_PAUSE_MS / 1000.0, 0);
	pause->data = w;
}

void an_accept_pause(struct ev_loop *loop, ev_timer *pause, ev_io *w)
{
	ev_io_stop(loop, w);
	ev_timer_stop(loop, pause);
	ev_timer_set(pause, AN_ACCEPT_PAUSE_MS / 1000.0, 0);
	ev_timer_start(loop, pause);
}
