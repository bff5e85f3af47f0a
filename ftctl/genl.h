// genl.h - a small generic netlink client on libmnl for ftctl: resolve a
// family, send a request, walk the replies, surface the kernel's extack
// message with the errno.
#pragma once

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"

namespace kvmft::ctl {

class Genl {
public:
	Genl() = default;
	~Genl();
	Genl(const Genl &) = delete;
	Genl &operator=(const Genl &) = delete;

	// Open a socket and resolve @family (and its multicast group @mcgrp,
	// if given). ENOENT if the family is not registered.
	kvmft::Status Open(const char *family, const char *mcgrp = nullptr);

	// Start a request; add attributes with mnl_attr_put_*() on the result.
	nlmsghdr *Begin(uint8_t cmd, uint8_t version, bool dump = false);
	// Send it and call @fn on each reply message (may be empty).
	using Fn = std::function<void(const nlmsghdr *)>;
	kvmft::Status Run(nlmsghdr *req, const Fn &fn);

	// Join the family's multicast group; then Receive() one event.
	kvmft::Status Subscribe();
	kvmft::Status Receive(const Fn &fn, int timeout_ms, bool *got);

	int fd() const;

private:
	mnl_socket *sk_ = nullptr;
	uint16_t family_ = 0;
	uint32_t mcgrp_ = 0;
	uint32_t seq_ = 0;
	std::vector<char> buf_ = std::vector<char>(MNL_SOCKET_BUFFER_SIZE * 4);
};

// Parse a message's attributes (after the genl header) into a table
// indexed by type; unknown types above @max are ignored.
std::vector<const nlattr *> ParseAttrs(const nlmsghdr *h, int max);
std::vector<const nlattr *> ParseNested(const nlattr *a, int max);
// The attributes nested in @a, in order.
std::vector<const nlattr *> Children(const nlattr *a);

} // namespace kvmft::ctl
