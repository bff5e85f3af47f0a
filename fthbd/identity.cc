// identity.cc - public address, gratuitous ARP, ping (identity.h).
#include "identity.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netlink/route/addr.h>
#include <netpacket/packet.h>
#include <linux/if_ether.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

#include "base/unique_fd.h"

namespace kvmft::hbd {

using kvmft::Status;
using kvmft::UniqueFd;

namespace {

Status AddrOp(const std::string &dev, const std::string &cidr, bool add)
{
	const char *what = add ? "add address " : "remove address ";
	struct nl_sock *sk = nl_socket_alloc();
	if (!sk)
		return Status::Error(ENOMEM, "nl_socket_alloc");
	int err = nl_connect(sk, NETLINK_ROUTE);
	struct rtnl_addr *a = rtnl_addr_alloc();
	struct nl_addr *local = nullptr;
	unsigned idx = if_nametoindex(dev.c_str());
	if (!idx)
		err = -NLE_OBJ_NOTFOUND;
	if (!err)
		err = nl_addr_parse(cidr.c_str(), AF_INET, &local);
	if (!err) {
		rtnl_addr_set_ifindex(a, static_cast<int>(idx));
		err = rtnl_addr_set_local(a, local);
	}
	if (!err)
		err = add ? rtnl_addr_add(sk, a, NLM_F_CREATE | NLM_F_REPLACE) : rtnl_addr_delete(sk, a, 0);
	if (!add && err == -NLE_NOADDR)
		err = 0;
	if (local)
		nl_addr_put(local);
	rtnl_addr_put(a);
	nl_socket_free(sk);
	if (err)
		return Status::Error(EIO, what + cidr + " on " + dev + ": " +
						  (idx ? nl_geterror(err) : "no such interface"));
	return Status::Ok();
}

uint16_t Checksum(const void *p, size_t n)
{
	const uint8_t *b = static_cast<const uint8_t *>(p);
	uint32_t s = 0;
	for (size_t i = 0; i + 1 < n; i += 2)
		s += static_cast<uint32_t>(b[i] << 8 | b[i + 1]);
	if (n & 1)
		s += static_cast<uint32_t>(b[n - 1] << 8);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return htons(static_cast<uint16_t>(~s));
}

int64_t NowMs()
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

} // namespace

Status AddAddress(const std::string &dev, const std::string &cidr) { return AddrOp(dev, cidr, true); }
Status DelAddress(const std::string &dev, const std::string &cidr) { return AddrOp(dev, cidr, false); }

Status GratuitousArp(const std::string &dev, const std::string &cidr)
{
	struct in_addr ip;
	if (inet_pton(AF_INET, cidr.substr(0, cidr.find('/')).c_str(), &ip) != 1)
		return Status::Error(EINVAL, "gratuitous ARP: bad address " + cidr);
	UniqueFd s(socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ARP)));
	if (!s.valid())
		return Status::Errno("gratuitous ARP: socket");
	struct ifreq ifr {};
	std::strncpy(ifr.ifr_name, dev.c_str(), IFNAMSIZ - 1);
	if (ioctl(s.get(), SIOCGIFHWADDR, &ifr) < 0)
		return Status::Errno("gratuitous ARP: hardware address of " + dev);
	struct {
		struct arphdr h;
		uint8_t sha[6], spa[4], tha[6], tpa[4];
	} __attribute__((packed)) pkt{};
	pkt.h.ar_hrd = htons(ARPHRD_ETHER);
	pkt.h.ar_pro = htons(ETH_P_IP);
	pkt.h.ar_hln = 6;
	pkt.h.ar_pln = 4;
	pkt.h.ar_op = htons(ARPOP_REQUEST);
	std::memcpy(pkt.sha, ifr.ifr_hwaddr.sa_data, 6);
	std::memcpy(pkt.spa, &ip, 4);
	std::memcpy(pkt.tpa, &ip, 4);
	struct sockaddr_ll to {};
	to.sll_family = AF_PACKET;
	to.sll_protocol = htons(ETH_P_ARP);
	to.sll_ifindex = static_cast<int>(if_nametoindex(dev.c_str()));
	to.sll_halen = 6;
	std::memset(to.sll_addr, 0xff, 6);
	if (sendto(s.get(), &pkt, sizeof pkt, 0, reinterpret_cast<sockaddr *>(&to), sizeof to) < 0)
		return Status::Errno("gratuitous ARP on " + dev);
	return Status::Ok();
}

bool PingAny(const std::vector<std::string> &targets, int timeout_ms)
{
	if (targets.empty())
		return true;
	UniqueFd s(socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP));
	if (!s.valid())
		return false;
	uint16_t id = static_cast<uint16_t>(getpid());
	for (const std::string &t : targets) {
		struct sockaddr_in to {};
		to.sin_family = AF_INET;
		if (inet_pton(AF_INET, t.c_str(), &to.sin_addr) != 1)
			continue;
		struct icmphdr h {};
		h.type = ICMP_ECHO;
		h.un.echo.id = htons(id);
		h.un.echo.sequence = htons(1);
		h.checksum = Checksum(&h, sizeof h);
		sendto(s.get(), &h, sizeof h, 0, reinterpret_cast<sockaddr *>(&to), sizeof to);
	}
	int64_t end = NowMs() + timeout_ms;
	for (int64_t now = NowMs(); now < end; now = NowMs()) {
		struct pollfd p = {s.get(), POLLIN, 0};
		if (poll(&p, 1, static_cast<int>(end - now)) <= 0)
			return false;
		uint8_t buf[1500];
		ssize_t n = recv(s.get(), buf, sizeof buf, 0);
		if (n < static_cast<ssize_t>(sizeof(struct iphdr)))
			continue;
		size_t hl = (buf[0] & 0xf) * 4u;
		if (n < static_cast<ssize_t>(hl + sizeof(struct icmphdr)))
			continue;
		struct icmphdr r;
		std::memcpy(&r, buf + hl, sizeof r);
		if (r.type == ICMP_ECHOREPLY && ntohs(r.un.echo.id) == id)
			return true;
	}
	return false;
}

} // namespace kvmft::hbd
