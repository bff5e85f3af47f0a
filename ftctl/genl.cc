// genl.cc - see genl.h.
#include "genl.h"

#include <poll.h>

#include <cerrno>
#include <cstring>

using kvmft::Status;

namespace ftctl {

Genl::~Genl()
{
	if (sk_)
		mnl_socket_close(sk_);
}

int Genl::fd() const { return sk_ ? mnl_socket_get_fd(sk_) : -1; }

namespace {

struct FamilyInfo {
	uint16_t id = 0;
	uint32_t mcgrp = 0;
	const char *want_grp = nullptr;
};

void ParseGroups(const nlattr *groups, FamilyInfo *fi)
{
	for (const nlattr *g : Children(groups)) {
		const char *name = nullptr;
		uint32_t id = 0;
		for (const nlattr *x : Children(g)) {
			if (mnl_attr_get_type(x) == CTRL_ATTR_MCAST_GRP_NAME)
				name = mnl_attr_get_str(x);
			else if (mnl_attr_get_type(x) == CTRL_ATTR_MCAST_GRP_ID)
				id = mnl_attr_get_u32(x);
		}
		if (name && fi->want_grp && !std::strcmp(name, fi->want_grp))
			fi->mcgrp = id;
	}
}

} // namespace

Status Genl::Open(const char *family, const char *mcgrp)
{
	sk_ = mnl_socket_open(NETLINK_GENERIC);
	if (!sk_)
		return Status::Errno("netlink socket");
	if (mnl_socket_bind(sk_, 0, MNL_SOCKET_AUTOPID) < 0)
		return Status::Errno("netlink bind");
	int one = 1;
	mnl_socket_setsockopt(sk_, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(sk_, NETLINK_CAP_ACK, &one, sizeof(one));
	family_ = GENL_ID_CTRL;
	nlmsghdr *h = Begin(CTRL_CMD_GETFAMILY, 1);
	mnl_attr_put_strz(h, CTRL_ATTR_FAMILY_NAME, family);
	FamilyInfo fi;
	fi.want_grp = mcgrp;
	Status st = Run(h, [&](const nlmsghdr *m) {
		auto tb = ParseAttrs(m, CTRL_ATTR_MAX);
		if (tb[CTRL_ATTR_FAMILY_ID])
			fi.id = mnl_attr_get_u16(tb[CTRL_ATTR_FAMILY_ID]);
		if (tb[CTRL_ATTR_MCAST_GROUPS])
			ParseGroups(tb[CTRL_ATTR_MCAST_GROUPS], &fi);
	});
	if (!st.ok())
		return st.err() == ENOENT
			       ? Status::Error(ENOENT, std::string("generic netlink family \"") +
							       family + "\" not found")
			       : st;
	family_ = fi.id;
	mcgrp_ = fi.mcgrp;
	return Status::Ok();
}

nlmsghdr *Genl::Begin(uint8_t cmd, uint8_t version, bool dump)
{
	nlmsghdr *h = mnl_nlmsg_put_header(buf_.data());
	h->nlmsg_type = family_;
	h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (dump ? NLM_F_DUMP : 0);
	h->nlmsg_seq = ++seq_;
	auto *g = static_cast<genlmsghdr *>(mnl_nlmsg_put_extra_header(h, sizeof(genlmsghdr)));
	g->cmd = cmd;
	g->version = version;
	return h;
}

namespace {

// The extack message of an NLMSG_ERROR, if any.
std::string Extack(const nlmsghdr *r)
{
	const auto *e = static_cast<const nlmsgerr *>(mnl_nlmsg_get_payload(r));
	size_t off = sizeof(*e);
	if (!(r->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - sizeof(e->msg);
	if (!(r->nlmsg_flags & NLM_F_ACK_TLVS))
		return "";
	auto *a = static_cast<const nlattr *>(mnl_nlmsg_get_payload_offset(r, off));
	auto *end = static_cast<const char *>(mnl_nlmsg_get_payload_tail(r));
	while (mnl_attr_ok(a, static_cast<int>(end - reinterpret_cast<const char *>(a)))) {
		if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG)
			return mnl_attr_get_str(a);
		a = mnl_attr_next(a);
	}
	return "";
}

} // namespace

Status Genl::Run(nlmsghdr *req, const Fn &fn)
{
	uint32_t seq = req->nlmsg_seq;
	if (mnl_socket_sendto(sk_, req, req->nlmsg_len) < 0)
		return Status::Errno("netlink send");
	for (;;) {
		ssize_t len = mnl_socket_recvfrom(sk_, buf_.data(), buf_.size());
		if (len < 0)
			return Status::Errno("netlink receive");
		auto *r = reinterpret_cast<const nlmsghdr *>(buf_.data());
		int left = static_cast<int>(len);
		for (; mnl_nlmsg_ok(r, left); r = mnl_nlmsg_next(r, &left)) {
			if (r->nlmsg_seq != seq)
				continue;
			if (r->nlmsg_type == NLMSG_ERROR) {
				const auto *e = static_cast<const nlmsgerr *>(mnl_nlmsg_get_payload(r));
				if (e->error == 0)
					return Status::Ok();
				std::string msg = Extack(r);
				int err = -e->error;
				return Status::Error(err, msg.empty() ? std::strerror(err)
								      : msg + " (" + std::strerror(err) + ")");
			}
			if (r->nlmsg_type == NLMSG_DONE)
				return Status::Ok();
			if (fn)
				fn(r);
		}
	}
}

Status Genl::Subscribe()
{
	if (!mcgrp_)
		return Status::Error(ENOENT, "multicast group not found");
	if (mnl_socket_setsockopt(sk_, NETLINK_ADD_MEMBERSHIP, &mcgrp_, sizeof(mcgrp_)) < 0)
		return Status::Errno("join multicast group");
	return Status::Ok();
}

Status Genl::Receive(const Fn &fn, int timeout_ms, bool *got)
{
	*got = false;
	pollfd p{fd(), POLLIN, 0};
	int n = poll(&p, 1, timeout_ms);
	if (n < 0)
		return errno == EINTR ? Status::Ok() : Status::Errno("poll netlink");
	if (n == 0)
		return Status::Ok();
	ssize_t len = mnl_socket_recvfrom(sk_, buf_.data(), buf_.size());
	if (len < 0)
		return Status::Errno("netlink receive");
	auto *r = reinterpret_cast<const nlmsghdr *>(buf_.data());
	int left = static_cast<int>(len);
	for (; mnl_nlmsg_ok(r, left); r = mnl_nlmsg_next(r, &left)) {
		*got = true;
		fn(r);
	}
	return Status::Ok();
}

std::vector<const nlattr *> ParseAttrs(const nlmsghdr *h, int max)
{
	std::vector<const nlattr *> tb(static_cast<size_t>(max) + 1, nullptr);
	auto *a = static_cast<const nlattr *>(mnl_nlmsg_get_payload_offset(h, sizeof(genlmsghdr)));
	auto *end = static_cast<const char *>(mnl_nlmsg_get_payload_tail(h));
	for (; mnl_attr_ok(a, static_cast<int>(end - reinterpret_cast<const char *>(a))); a = mnl_attr_next(a)) {
		int t = mnl_attr_get_type(a);
		if (t <= max)
			tb[static_cast<size_t>(t)] = a;
	}
	return tb;
}

std::vector<const nlattr *> ParseNested(const nlattr *n, int max)
{
	std::vector<const nlattr *> tb(static_cast<size_t>(max) + 1, nullptr);
	for (const nlattr *a : Children(n)) {
		int t = mnl_attr_get_type(a);
		if (t <= max)
			tb[static_cast<size_t>(t)] = a;
	}
	return tb;
}

std::vector<const nlattr *> Children(const nlattr *n)
{
	std::vector<const nlattr *> out;
	auto *p = static_cast<const char *>(mnl_attr_get_payload(n));
	int left = static_cast<int>(mnl_attr_get_payload_len(n));
	auto *a = reinterpret_cast<const nlattr *>(p);
	while (mnl_attr_ok(a, left)) {
		out.push_back(a);
		left -= static_cast<int>(MNL_ALIGN(a->nla_len));
		a = reinterpret_cast<const nlattr *>(reinterpret_cast<const char *>(a) +
						     MNL_ALIGN(a->nla_len));
	}
	return out;
}

} // namespace ftctl
