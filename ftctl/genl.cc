// genl.cc - see genl.h.
#include "genl.h"

#include <poll.h>

#include <cerrno>
#include <cstring>

using kvmft::Status;

namespace kvmft::ctl {

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

namespace {

struct RunState {
	const Genl::Fn *fn;
	int err = 0;		// from NLMSG_ERROR
	std::string extack;
};

int DataCb(const nlmsghdr *h, void *data)
{
	auto *st = static_cast<RunState *>(data);
	if (*st->fn)
		(*st->fn)(h);
	return MNL_CB_OK;
}

// NLMSG_ERROR ends the request: error 0 is the ACK, else it failed.
int ErrorCb(const nlmsghdr *h, void *data)
{
	auto *st = static_cast<RunState *>(data);
	if (h->nlmsg_len < mnl_nlmsg_size(sizeof(nlmsgerr))) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	const auto *e = static_cast<const nlmsgerr *>(mnl_nlmsg_get_payload(h));
	if (e->error == 0)
		return MNL_CB_STOP;
	st->err = -e->error;
	st->extack = Extack(h);
	errno = st->err;
	return MNL_CB_ERROR;
}

int DoneCb(const nlmsghdr *, void *)
{
	return MNL_CB_STOP;
}

} // namespace

Status Genl::Run(nlmsghdr *req, const Fn &fn)
{
	uint32_t seq = req->nlmsg_seq;
	if (mnl_socket_sendto(sk_, req, req->nlmsg_len) < 0)
		return Status::Errno("netlink send");
	mnl_cb_t ctl[NLMSG_MIN_TYPE] = {};
	ctl[NLMSG_ERROR] = ErrorCb;
	ctl[NLMSG_DONE] = DoneCb;
	RunState st{&fn};
	unsigned portid = mnl_socket_get_portid(sk_);
	for (;;) {
		ssize_t len = mnl_socket_recvfrom(sk_, buf_.data(), buf_.size());
		if (len < 0)
			return Status::Errno("netlink receive");
		int ret = mnl_cb_run2(buf_.data(), static_cast<size_t>(len), seq, portid, DataCb,
				      &st, ctl, NLMSG_MIN_TYPE);
		if (ret == MNL_CB_STOP)
			return Status::Ok();
		if (ret < 0 && st.err)
			return Status::Error(st.err, st.extack.empty()
							     ? std::strerror(st.err)
							     : st.extack + " (" + std::strerror(st.err) + ")");
		if (ret < 0)
			return Status::Errno("netlink reply");
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
	RunState st{&fn};
	// Events carry sequence number 0 and port id 0: mnl_cb_run checks neither.
	if (mnl_cb_run(buf_.data(), static_cast<size_t>(len), 0, 0, DataCb, &st) < 0)
		return Status::Errno("netlink event");
	*got = true;
	return Status::Ok();
}

namespace {

struct AttrTable {
	std::vector<const nlattr *> *tb;
	int max;
};

int AttrCb(const nlattr *a, void *data)
{
	auto *t = static_cast<AttrTable *>(data);
	int type = mnl_attr_get_type(a);
	if (type <= t->max)
		(*t->tb)[static_cast<size_t>(type)] = a;
	return MNL_CB_OK;
}

} // namespace

std::vector<const nlattr *> ParseAttrs(const nlmsghdr *h, int max)
{
	std::vector<const nlattr *> tb(static_cast<size_t>(max) + 1, nullptr);
	AttrTable t{&tb, max};
	mnl_attr_parse(h, sizeof(genlmsghdr), AttrCb, &t);
	return tb;
}

std::vector<const nlattr *> ParseNested(const nlattr *n, int max)
{
	std::vector<const nlattr *> tb(static_cast<size_t>(max) + 1, nullptr);
	AttrTable t{&tb, max};
	mnl_attr_parse_nested(n, AttrCb, &t);
	return tb;
}

std::vector<const nlattr *> Children(const nlattr *n)
{
	std::vector<const nlattr *> out;
	// mnl_attr_for_each_nested() assigns a void * (C only): its loop, typed.
	auto *a = static_cast<const nlattr *>(mnl_attr_get_payload(n));
	auto *end = static_cast<const char *>(mnl_attr_get_payload(n)) + mnl_attr_get_payload_len(n);
	for (; mnl_attr_ok(a, static_cast<int>(end - reinterpret_cast<const char *>(a))); a = mnl_attr_next(a))
		out.push_back(a);
	return out;
}

} // namespace kvmft::ctl
