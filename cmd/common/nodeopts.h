/*
 * nodeopts.h - the host set-up the long-running programs share (an-dht
 * daemon, an-relay, an-serve): listening on the --listen addresses and
 * announcing the --announce ones, each failure named on stderr.
 * Ownership: the address lists are borrowed (usually argv).
 */
#ifndef AN_CLI_NODEOPTS_H
#define AN_CLI_NODEOPTS_H

#include "transport/host.h"

/* Where a node listens when no --listen is given. */
#define CLI_DEFAULT_LISTEN "/ip4/127.0.0.1/tcp/0"

/*
 * Listen on each of the n addresses of listen (CLI_DEFAULT_LISTEN when n is
 * 0).  On the first failure: "unable to listen on 'ADDR': REASON" on stderr
 * and an_host_listen's code (the caller picks the exit status).  0 when all
 * listen.
 */
int cli_host_listen_all(struct an_host *h, const char *const *listen, int n);

/*
 * Announce each of the n addresses of announce.  On the first failure:
 * "invalid announce address 'ADDR': REASON" on stderr and an_host_announce's
 * code.  0 when all are taken.
 */
int cli_host_announce_all(struct an_host *h, const char *const *announce, int n);

#endif
