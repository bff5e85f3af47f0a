// identity.h - the public identity (an IPv4 address on an interface,
// added with libnl-route-3, announced with a gratuitous ARP) and the
// ping targets that tell a passive whether it is isolated.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace kvmft::hbd {

// cidr: "10.0.9.10/24". Adding an address already there is not an error.
kvmft::Status AddAddress(const std::string &dev, const std::string &cidr);
kvmft::Status DelAddress(const std::string &dev, const std::string &cidr);
// Broadcasts an ARP request for ip from ip (cidr's address) on dev.
kvmft::Status GratuitousArp(const std::string &dev, const std::string &cidr);
// True if any target answers an ICMP echo within timeout_ms (raw socket:
// root). No targets: true.
bool PingAny(const std::vector<std::string> &targets, int timeout_ms);

} // namespace kvmft::hbd
