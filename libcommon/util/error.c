#include "util/error.h"

#include <string.h>

static const char *const an_messages[] = {
	[-(AN_EMALFORMED - AN_EBASE)] = "malformed data",
	[-(AN_ETOOBIG - AN_EBASE)] = "input exceeds its size limit",
	[-(AN_ETRUNCATED - AN_EBASE)] = "input is truncated",
	[-(AN_EKEYTYPE - AN_EBASE)] = "unsupported key type",
	[-(AN_EKEYPERM - AN_EBASE)] = "secret key file is accessible by group or others",
	[-(AN_EFIELD - AN_EBASE)] = "missing or invalid field",
	[-(AN_EDIRPERM - AN_EBASE)] = "directory is writable by others (group or world) or not ours (chmod 700 it)",
	[-(AN_EBADSIG - AN_EBASE)] = "signature does not verify",
	[-(AN_EEXPIRED - AN_EBASE)] = "expired",
	[-(AN_ENOTYET - AN_EBASE)] = "not valid yet",
	[-(AN_EMISMATCH - AN_EBASE)] = "key does not match the claimed identity",
	[-(AN_ENOTFOUND - AN_EBASE)] = "not found",
	[-(AN_EROOT - AN_EBASE)] = "root record missing or not matching",
	[-(AN_ESTALE - AN_EBASE)] = "older than the record already held",
	[-(AN_EPINNED - AN_EBASE)] = "answer does not match the pinned peer hash",
	[-(AN_EPROTO - AN_EBASE)] = "protocol violation by peer",
	[-(AN_ENOPROTO - AN_EBASE)] = "protocol not supported by peer",
	[-(AN_ECLOSED - AN_EBASE)] = "connection closed",
	[-(AN_ERESET - AN_EBASE)] = "stream reset by peer",
	[-(AN_ELIMIT - AN_EBASE)] = "resource limit reached",
	[-(AN_EAGAIN - AN_EBASE)] = "more input needed",
};

const char *an_strerror(int err)
{
	if (err == 0)
		return "success";
	if (err < AN_EBASE && err > AN_ELAST) {
		const char *m = an_messages[-(err - AN_EBASE)];
		return m ? m : "unknown error";
	}
	if (err < 0 && err > AN_EBASE)
		return strerror(-err);
	return "unknown error";
}

enum an_error_class an_error_class(int err)
{
	if (err == 0)
		return AN_CLASS_OK;
	if (err <= AN_EMALFORMED && err >= AN_EFIELD)
		return AN_CLASS_DATA;
	if (err <= AN_EBADSIG && err >= AN_EPINNED)
		return AN_CLASS_NEGATIVE;
	return AN_CLASS_SYSTEM;
}
