/* yamux.c - placeholder while the session machine is written; see yamux.h. */
#include "transport/yamux.h"
#include "util/error.h"

#include <errno.h>
#include <stddef.h>

void an_yamux_config_default(struct an_yamux_config *c)
{
	c->max_inbound_streams = 512;
	c->max_outbound_streams = 512;
	c->initial_window = AN_YAMUX_INITIAL_WINDOW;
	c->max_window = 16u << 20;
	c->window_budget = 64u << 20;
	c->max_frame_body = 1u << 20;
	c->max_send_frame = 16384;
}

int an_yamux_new(struct an_yamux **out, enum an_yamux_role role, const struct an_yamux_config *cfg)
{
	(void)role;
	(void)cfg;
	*out = NULL;
	return -ENOSYS;
}

void an_yamux_free(struct an_yamux *y)
{
	(void)y;
}

void an_yamux_header_encode(uint8_t out[AN_YAMUX_HEADER_SIZE], uint8_t type, uint16_t flags,
			    uint32_t stream_id, uint32_t length)
{
	out[0] = AN_YAMUX_VERSION;
	out[1] = type;
	out[2] = (uint8_t)(flags >> 8);
	out[3] = (uint8_t)flags;
	for (int i = 0; i < 4; i++) {
		out[4 + i] = (uint8_t)(stream_id >> (24 - 8 * i));
		out[8 + i] = (uint8_t)(length >> (24 - 8 * i));
	}
}
