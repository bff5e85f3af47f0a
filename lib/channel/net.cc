// net.cc - TCP sockets bound to the FT logging address and interface.
#include "channel/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <cstring>

namespace kvmft {

std::string SockAddr::str() const
{
	char buf[INET6_ADDRSTRLEN] = "?";
	if (ss.ss_family == AF_INET) {
		auto *a = reinterpret_cast<const sockaddr_in *>(&ss);
		inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf));
		return std::string(buf) + ":" + std::to_string(ntohs(a->sin_port));
	}
	auto *a = reinterpret_cast<const sockaddr_in6 *>(&ss);
	inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf));
	std::string r = "[";
	r.append(buf).append("]:").append(std::to_string(ntohs(a->sin6_port)));
	return r;
}

Status ParseSockAddr(const std::string &s, bool port_optional, SockAddr *out)
{
	std::string host = s, port;
	if (!s.empty() && s[0] == '[') {
		size_t e = s.find(']');
		if (e == std::string::npos)
			return Status::Error(EINVAL, "bad address \"" + s + "\": missing ]");
		host = s.substr(1, e - 1);
		if (e + 1 < s.size()) {
			if (s[e + 1] != ':')
				return Status::Error(EINVAL, "bad address \"" + s + "\"");
			port = s.substr(e + 2);
		}
	} else if (size_t c = s.rfind(':'); c != std::string::npos) {
		host = s.substr(0, c);
		port = s.substr(c + 1);
	}
	unsigned long p = 0;
	if (!port.empty()) {
		char *end;
		p = std::strtoul(port.c_str(), &end, 10);
		if (*end || p > 65535)
			return Status::Error(EINVAL, "bad port in \"" + s + "\"");
	} else if (!port_optional) {
		return Status::Error(EINVAL, "address \"" + s + "\" needs a port");
	}
	*out = SockAddr();
	auto *a4 = reinterpret_cast<sockaddr_in *>(&out->ss);
	auto *a6 = reinterpret_cast<sockaddr_in6 *>(&out->ss);
	if (inet_pton(AF_INET, host.c_str(), &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(static_cast<uint16_t>(p));
		out->len = sizeof(*a4);
	} else if (inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(static_cast<uint16_t>(p));
		out->len = sizeof(*a6);
	} else {
		return Status::Error(EINVAL, "bad IP address \"" + host + "\"");
	}
	return Status::Ok();
}

namespace {

Status Prepare(int fd, const SockOpts &o)
{
	int one = 1;
	if (!o.ifname.empty() &&
	    setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, o.ifname.c_str(),
		       static_cast<socklen_t>(o.ifname.size())) < 0)
		return Status::Errno("bind to device " + o.ifname);
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		return Status::Errno("TCP_NODELAY");
	if (o.user_timeout_ms &&
	    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &o.user_timeout_ms,
		       sizeof(o.user_timeout_ms)) < 0)
		return Status::Errno("TCP_USER_TIMEOUT");
	return Status::Ok();
}

} // namespace

Status ConnectBound(const SockAddr &local, const SockAddr &peer, const SockOpts &o,
		    int timeout_ms, UniqueFd *out)
{
	std::string what = "connect " + local.str() + " -> " + peer.str() +
			   (o.ifname.empty() ? "" : " dev " + o.ifname);
	UniqueFd fd(socket(peer.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
	if (!fd.valid())
		return Status::Errno("socket");
	Status st = Prepare(fd.get(), o);
	if (!st.ok())
		return st.Wrap(what);
	if (local.len && bind(fd.get(), reinterpret_cast<const sockaddr *>(&local.ss), local.len) < 0)
		return Status::Errno(what + ": bind");
	if (connect(fd.get(), reinterpret_cast<const sockaddr *>(&peer.ss), peer.len) < 0) {
		if (errno != EINPROGRESS)
			return Status::Errno(what);
		pollfd p{fd.get(), POLLOUT, 0};
		int r = poll(&p, 1, timeout_ms);
		if (r == 0)
			return Status::Error(ETIMEDOUT, what + ": timed out");
		int err = 0;
		socklen_t l = sizeof(err);
		getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &l);
		if (r < 0 || err)
			return Status::Errno(what, r < 0 ? errno : err);
	}
	*out = std::move(fd);
	return Status::Ok();
}

Status ListenBound(const SockAddr &local, const SockOpts &o, UniqueFd *out)
{
	std::string what = "listen " + local.str() + (o.ifname.empty() ? "" : " dev " + o.ifname);
	UniqueFd fd(socket(local.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
	if (!fd.valid())
		return Status::Errno("socket");
	int one = 1;
	setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	Status st = Prepare(fd.get(), o);
	if (!st.ok())
		return st.Wrap(what);
	if (bind(fd.get(), reinterpret_cast<const sockaddr *>(&local.ss), local.len) < 0)
		return Status::Errno(what + ": bind");
	if (listen(fd.get(), 16) < 0)
		return Status::Errno(what);
	*out = std::move(fd);
	return Status::Ok();
}

Status AcceptConn(int lfd, const SockOpts &o, UniqueFd *out, SockAddr *peer)
{
	peer->len = sizeof(peer->ss);
	UniqueFd fd(accept4(lfd, reinterpret_cast<sockaddr *>(&peer->ss), &peer->len,
			    SOCK_NONBLOCK | SOCK_CLOEXEC));
	if (!fd.valid())
		return Status::Errno("accept");
	SockOpts ao = o;
	ao.ifname.clear(); // inherited from the listener
	Status st = Prepare(fd.get(), ao);
	if (!st.ok())
		return st;
	*out = std::move(fd);
	return Status::Ok();
}

} // namespace kvmft
