#include "nodeopts.h"

#include "cli.h"
#include "util/error.h"

int cli_host_listen_all(struct an_host *h, const char *const *listen, int n)
{
	for (int i = 0; i < (n ? n : 1); i++) {
		const char *l = n ? listen[i] : CLI_DEFAULT_LISTEN;
		int rc = an_host_listen(h, l);
		if (rc < 0) {
			cli_warn("unable to listen on '%s': %s", l, an_strerror(rc));
			return rc;
		}
	}
	return 0;
}

int cli_host_announce_all(struct an_host *h, const char *const *announce, int n)
{
	for (int i = 0; i < n; i++) {
		int rc = an_host_announce(h, announce[i]);
		if (rc < 0) {
			cli_warn("invalid announce address '%s': %s", announce[i], an_strerror(rc));
			return rc;
		}
	}
	return 0;
}
