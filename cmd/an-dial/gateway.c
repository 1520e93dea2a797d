/* gateway.c - an-dial's HTTP gateway for browsers (see dial.h). */
#include "dial.h"

#include "cli.h"

int gateway_run(struct dial *d, const struct gateway_opts *o)
{
	(void)d;
	(void)o;
	cli_warn("the gateway is not built yet");
	return AN_EXIT_SYSTEM;
}
