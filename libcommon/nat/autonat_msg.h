/*
 * autonat_msg.h - the AutoNAT message codecs, sans-I/O (specs
 * autonat/autonat-v1.md, autonat/autonat-v2.md; digest part 1 section 13,
 * part 2 section 4).
 *
 * v1 (/libp2p/autonat/1.0.0, proto2):
 *   message Message { optional MessageType type = 1; optional Dial dial = 2;
 *                     optional DialResponse dialResponse = 3; }
 *   Dial { optional PeerInfo peer = 1; }  PeerInfo { bytes id = 1; repeated bytes addrs = 2; }
 *   DialResponse { ResponseStatus status = 1; string statusText = 2; bytes addr = 3; }
 *   type is always encoded, even DIAL = 0.
 *
 * v2 (/libp2p/autonat/2/dial-request and /dial-back, proto3):
 *   Message { oneof { DialRequest = 1; DialResponse = 2; DialDataRequest = 3;
 *                     DialDataResponse = 4; } }
 *   DialRequest { repeated bytes addrs = 1; fixed64 nonce = 2; }
 *   DialResponse { status = 1; uint32 addrIdx = 2; DialStatus dialStatus = 3; }
 *   DialDataRequest { uint32 addrIdx = 1; uint64 numBytes = 2; }
 *   DialDataResponse { bytes data = 1; }
 *   DialBack { fixed64 nonce = 1; }   DialBackResponse { status = 1; } (OK = 0: 0 bytes)
 *   Zero values are omitted; missing fields decode as 0.
 *
 * Every message travels as one uvarint-length-prefixed frame of at most
 * AN_AUTONAT_MSG_MAX bytes (js's 8 KiB; a DialDataResponse carries up to
 * 4096 data bytes).  Decoding borrows: byte fields point into the input,
 * which must outlive the message.  Addresses are raw binary multiaddrs,
 * unchecked (a peer may list QUIC or DNS addresses we cannot dial); at most
 * AN_AUTONAT_MAX_ADDRS are kept, later ones counted in dropped.  Unknown
 * fields are skipped; a field of a known number with the wrong wire type
 * is AN_EMALFORMED.
 */
#ifndef AN_NAT_AUTONAT_MSG_H
#define AN_NAT_AUTONAT_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define AN_AUTONAT1_PROTOCOL "/libp2p/autonat/1.0.0"
#define AN_AUTONAT2_PROTO_REQUEST "/libp2p/autonat/2/dial-request"
#define AN_AUTONAT2_PROTO_BACK "/libp2p/autonat/2/dial-back"

#define AN_AUTONAT_MSG_MAX 8192
#define AN_AUTONAT_MAX_ADDRS 16
#define AN_AUTONAT_DATA_CHUNK 4096  /* data bytes in one DialDataResponse we send */
#define AN_AUTONAT_STATUS_TEXT_MAX 256

struct an_autonat_bytes {
	const uint8_t *p; /* borrowed */
	size_t len;
};

/* ---- v1 ---- */

enum an_autonat1_type { AN_AUTONAT1_DIAL = 0, AN_AUTONAT1_DIAL_RESPONSE = 1 };

enum an_autonat1_status {
	AN_AUTONAT1_OK = 0,
	AN_AUTONAT1_E_DIAL_ERROR = 100,
	AN_AUTONAT1_E_DIAL_REFUSED = 101,
	AN_AUTONAT1_E_BAD_REQUEST = 200,
	AN_AUTONAT1_E_INTERNAL_ERROR = 300
};

struct an_autonat1_msg {
	uint32_t type;          /* an_autonat1_type (unknown values kept) */
	bool has_dial;
	bool has_peer;
	struct an_autonat_bytes peer_id; /* binary peer ID (a multihash), may be empty */
	size_t naddrs;
	struct an_autonat_bytes addrs[AN_AUTONAT_MAX_ADDRS];
	size_t dropped;
	bool has_response;
	uint32_t status;        /* an_autonat1_status (unknown values kept) */
	struct an_autonat_bytes status_text; /* UTF-8, not NUL-terminated */
	struct an_autonat_bytes addr;        /* may be empty */
};

/* Empty message of type t. */
void an_autonat1_init(struct an_autonat1_msg *m, uint32_t type);

/*
 * Append m as one LP frame to out (borrowed).  0, AN_ETOOBIG over
 * AN_AUTONAT_MSG_MAX or out's cap (out unchanged), -ENOMEM.
 */
int an_autonat1_encode(const struct an_autonat1_msg *m, struct an_buf *out);

/*
 * Decode one bare protobuf p[0..len) (borrowed) into m.  0, AN_ETOOBIG
 * over AN_AUTONAT_MSG_MAX, AN_EMALFORMED, AN_ETRUNCATED.
 */
int an_autonat1_decode(const uint8_t *p, size_t len, struct an_autonat1_msg *m);

/* ---- v2 ---- */

enum an_autonat2_kind {
	AN_AUTONAT2_NONE = 0,
	AN_AUTONAT2_DIAL_REQUEST = 1,
	AN_AUTONAT2_DIAL_RESPONSE = 2,
	AN_AUTONAT2_DIAL_DATA_REQUEST = 3,
	AN_AUTONAT2_DIAL_DATA_RESPONSE = 4
};

enum an_autonat2_status { /* DialResponse.ResponseStatus */
	AN_AUTONAT2_E_INTERNAL_ERROR = 0,
	AN_AUTONAT2_E_REQUEST_REJECTED = 100,
	AN_AUTONAT2_E_DIAL_REFUSED = 101,
	AN_AUTONAT2_OK = 200
};

enum an_autonat2_dial_status {
	AN_AUTONAT2_DIAL_UNUSED = 0,
	AN_AUTONAT2_E_DIAL_ERROR = 100,
	AN_AUTONAT2_E_DIAL_BACK_ERROR = 101,
	AN_AUTONAT2_DIAL_OK = 200
};

struct an_autonat2_msg {
	enum an_autonat2_kind kind; /* the oneof case; NONE: no known case present */
	/* DIAL_REQUEST */
	size_t naddrs;
	struct an_autonat_bytes addrs[AN_AUTONAT_MAX_ADDRS];
	size_t dropped;
	uint64_t nonce;
	/* DIAL_RESPONSE */
	uint32_t status;
	uint32_t addr_idx;      /* also DIAL_DATA_REQUEST */
	uint32_t dial_status;
	/* DIAL_DATA_REQUEST */
	uint64_t num_bytes;
	/* DIAL_DATA_RESPONSE */
	struct an_autonat_bytes data;
};

void an_autonat2_init(struct an_autonat2_msg *m, enum an_autonat2_kind kind);

/* As an_autonat1_encode; -EINVAL for kind NONE. */
int an_autonat2_encode(const struct an_autonat2_msg *m, struct an_buf *out);

/*
 * As an_autonat1_decode.  When several oneof cases appear the last wins
 * (protobuf's rule).
 */
int an_autonat2_decode(const uint8_t *p, size_t len, struct an_autonat2_msg *m);

/* DialBack{nonce} as one LP frame. */
int an_autonat2_dial_back_encode(uint64_t nonce, struct an_buf *out);
int an_autonat2_dial_back_decode(const uint8_t *p, size_t len, uint64_t *nonce);

/* DialBackResponse{status} as one LP frame (OK = 0 is the frame 00). */
int an_autonat2_dial_back_response_encode(uint32_t status, struct an_buf *out);
int an_autonat2_dial_back_response_decode(const uint8_t *p, size_t len, uint32_t *status);

#endif
