// net.h - TCP sockets pinned to one network: the FT logging link must use
// its configured address and interface and never fall back to another
// route silently (SO_BINDTODEVICE + bind to the source address).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

#include "base/status.h"
#include "base/unique_fd.h"

namespace kvmft {

struct SockAddr {
	sockaddr_storage ss{};
	socklen_t len = 0;
	std::string str() const; // "10.0.0.1:7301", "[fd00::1]:7301"
};

// "10.0.0.1:7301", "[fd00::1]:7301"; with port_optional, "10.0.0.1" too
// (port 0).
Status ParseSockAddr(const std::string &s, bool port_optional, SockAddr *out);

// Options every FT logging socket gets: TCP_NODELAY (ACKs and small
// frames leave at once), TCP_USER_TIMEOUT = user_timeout_ms (unACKed
// data on a dead link errors out instead of hanging; 0 leaves the
// default), non-blocking, close-on-exec.
struct SockOpts {
	std::string ifname;          // SO_BINDTODEVICE; empty: none
	unsigned user_timeout_ms = 0;
};

// Connects from local (port 0 = any) through ifname to peer within
// timeout_ms. The socket is non-blocking on return.
Status ConnectBound(const SockAddr &local, const SockAddr &peer, const SockOpts &o,
		    int timeout_ms, UniqueFd *out);
// Listens on local through ifname.
Status ListenBound(const SockAddr &local, const SockOpts &o, UniqueFd *out);
// Accepts one connection (non-blocking listener); EAGAIN when none.
Status AcceptConn(int lfd, const SockOpts &o, UniqueFd *out, SockAddr *peer);

} // namespace kvmft
