// request.cc - a request on ftlogd's control socket (request.h).
#include "logd_client/request.h"

#include "channel/unix_msg.h"

namespace kvmft::logd {

using kvmft::Status;

Status Request(int fd, const nlohmann::json &req, const std::vector<int> &fds,
	       nlohmann::json *rep, std::vector<kvmft::UniqueFd> *rfds)
{
	Status st = kvmft::SendMsg(fd, req, fds);
	// A daemon that refuses the client (Documentation/ftlogd.md, "Who may
	// use it") answers at once and closes: its answer is still queued.
	bool refused = !st.ok() && (st.err() == EPIPE || st.err() == ECONNRESET);
	if (!st.ok() && !refused)
		return st;
	std::vector<kvmft::UniqueFd> got;
	for (;;) {
		kvmft::MsgResult r = kvmft::RecvMsg(fd, rep, &got, &st);
		if (r == kvmft::MsgResult::kClosed)
			return Status::Error(ECONNRESET, "ftlogd closed the control connection");
		if (r != kvmft::MsgResult::kMsg)
			return st;
		if (!rep->contains("event"))
			break;
	}
	if (!rep->value("ok", false))
		return Status::Error(EIO, rep->value("error", "request failed"));
	if (rfds)
		*rfds = std::move(got);
	return Status::Ok();
}

} // namespace kvmft::logd
