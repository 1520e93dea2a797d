/*
 * distance.h - the Kademlia keyspace: 256-bit IDs and XOR distance.
 *
 * As in libp2p (kad-dht/README.md, js convertBuffer/convertPeerId, rust
 * kbucket::Key): the position of anything in the keyspace is SHA-256 of its
 * raw key bytes; for a peer that is SHA-256 of its binary peer ID
 * multihash, for a record SHA-256 of the record key (e.g. "/an/<hash>@name"),
 * for a provider key SHA-256 of the multihash bytes.  Distance is the XOR of
 * two positions read as a big-endian 256-bit number.
 */
#ifndef AN_DHT_DISTANCE_H
#define AN_DHT_DISTANCE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/peerid.h"

#define AN_KAD_ID_LEN 32
#define AN_KAD_BITS 256

struct an_kad_id {
	uint8_t b[AN_KAD_ID_LEN];
};

/* SHA-256 of key[0..len) (borrowed). */
void an_kad_id_from_key(const uint8_t *key, size_t len, struct an_kad_id *out);

/* SHA-256 of the binary peer ID (borrowed). */
void an_kad_id_from_peer(const struct an_peerid *id, struct an_kad_id *out);

/* out = a XOR b. */
void an_kad_distance(const struct an_kad_id *a, const struct an_kad_id *b, struct an_kad_id *out);

/* memcmp-style order of two IDs (or distances) as big-endian numbers. */
int an_kad_id_cmp(const struct an_kad_id *a, const struct an_kad_id *b);

/* <0 if a is closer to target than b, 0 if equally close (a == b), >0 otherwise. */
int an_kad_closer(const struct an_kad_id *target, const struct an_kad_id *a,
		  const struct an_kad_id *b);

/* Number of leading bits a and b share: 0..256 (256 when equal). */
unsigned an_kad_cpl(const struct an_kad_id *a, const struct an_kad_id *b);

/*
 * A key whose position shares exactly cpl leading bits with self, for
 * refreshing bucket cpl: a sha2-256 multihash (0x12 0x20 + 32 bytes, so it
 * also reads as a peer ID for implementations that expect one in FIND_NODE)
 * found by hashing a counter that starts at start (the caller's random
 * number).  Tries at most max_tries counters (expected 2^(cpl+1)): keep cpl
 * small (js refreshes buckets up to 15).  key gets 34 bytes.  0 or
 * AN_ENOTFOUND after max_tries, -EINVAL for cpl >= 256.
 */
int an_kad_key_with_cpl(const struct an_kad_id *self, unsigned cpl, uint64_t start,
			uint64_t max_tries, uint8_t key[34]);

#endif
