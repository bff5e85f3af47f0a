// ftlogd_link.cc - register / attach with ftlogd (ftlogd_link.h).
#include "ftlog/ftlogd_link.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "channel/unix_msg.h"
#include "base/clock.h"
#include "logd_client/request.h"

namespace kvmft::vmm {

Status RegisterPrimary(const std::string &socket, const std::string &session,
		       const std::string &peer, uint32_t ring_bytes, RingSet *rings,
		       UniqueFd *ctl, UniqueFd *ack_fd)
{
	Status s = RingSet::CreateMemfd(1, ring_bytes, rings);
	if (s.ok())
		s = ConnectUnix(socket, ctl);
	nlohmann::json rep;
	std::vector<UniqueFd> fds;
	if (s.ok())
		s = kvmft::logd::Request(ctl->get(), {{"cmd", "register"}, {"session", session},
						 {"peer", peer}, {"kind", "memfd"}},
				    {rings->fd(), rings->event_fd()}, &rep, &fds);
	if (s.ok() && fds.size() > 1)
		s = Status::Error(EPROTO, "register: unexpected fds in the reply");
	if (s.ok() && fds.size() == 1)
		*ack_fd = std::move(fds[0]);
	return s.Wrap("ftlogd register " + session);
}

Status RegisterPrimaryKernel(const std::string &socket, const std::string &session,
			     const std::string &peer, int session_fd, UniqueFd *ctl,
			     UniqueFd *ack_fd)
{
	Status s = ConnectUnix(socket, ctl);
	nlohmann::json rep;
	std::vector<UniqueFd> fds;
	if (s.ok())
		s = kvmft::logd::Request(ctl->get(), {{"cmd", "register"}, {"session", session},
						 {"peer", peer}, {"kind", "kvm_ft"}},
				    {session_fd}, &rep, &fds);
	if (s.ok() && fds.size() > 1)
		s = Status::Error(EPROTO, "register: unexpected fds in the reply");
	if (s.ok() && fds.size() == 1)
		*ack_fd = std::move(fds[0]);
	return s.Wrap("ftlogd register " + session);
}

Status AttachSecondary(const std::string &socket, const std::string &session,
		       uint64_t timeout_ns, RingSet *rings, UniqueFd *ctl, const std::string &peer)
{
	Status s = ConnectUnix(socket, ctl);
	uint64_t deadline = MonotonicNs() + timeout_ns;
	nlohmann::json req = {{"cmd", "attach"}, {"session", session}};
	if (!peer.empty())
		req["peer"] = peer;
	while (s.ok()) {
		nlohmann::json rep;
		std::vector<UniqueFd> fds;
		s = kvmft::logd::Request(ctl->get(), req, {}, &rep, &fds);
		if (s.ok() && fds.size() == 2)
			return RingSet::MapMemfd(fds[0].get(), fds[1].get(), rings);
		if (s.ok())
			s = Status::Error(EPROTO, "attach: no ring fds in the reply");
		// A session fed by another host, or another uid's, stays so.
		if (s.msg().find(" is fed by host ") != std::string::npos ||
		    s.msg().find(" belongs to uid ") != std::string::npos)
			break;
		if (MonotonicNs() > deadline)
			break;
		s = Status::Ok();
		usleep(20000);
	}
	return s.Wrap("ftlogd attach " + session);
}

} // namespace kvmft::vmm
