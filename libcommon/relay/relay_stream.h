/*
 * relay_stream.h - what the hop and stop services (relay_server.c) and the
 * relay client (relay_client.c) share on a live stream: writing one
 * length-prefixed relay message.  circuit.h stays sans-I/O; this is the
 * one place a relay message meets an an_stream.
 */
#ifndef AN_RELAY_RELAY_STREAM_H
#define AN_RELAY_RELAY_STREAM_H

#include "relay/circuit.h"
#include "transport/host.h"

/*
 * Encode m (borrowed) as uvarint length || protobuf and queue it on s
 * (borrowed).  0, the errors of an_relay_msg_encode (AN_ETOOBIG) or of
 * an_stream_write (AN_ECLOSED).
 */
int an_relay_stream_send(struct an_stream *s, const struct an_relay_msg *m);

#endif
