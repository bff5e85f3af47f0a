// control.cc - the control socket: one JSON object per SOCK_SEQPACKET
// message, as ftlogd's (Documentation/fthbd.md, "Control socket").
#include <sys/socket.h>

#include "channel/unix_msg.h"
#include "daemon.h"

namespace kvmft::hbd {

using nlohmann::json;

void Daemon::ControlLoop()
{
	while (!control_stop_) {
		kvmft::UniqueFd c(accept4(control_.get(), nullptr, nullptr, SOCK_CLOEXEC));
		if (!c.valid()) {
			if (control_stop_ || errno == EINVAL)
				return;
			continue;
		}
		json req;
		std::vector<kvmft::UniqueFd> fds;
		kvmft::Status err;
		if (kvmft::RecvMsg(c.get(), &req, &fds, &err) != kvmft::MsgResult::kMsg)
			continue;
		std::string cmd = req.value("cmd", "");
		json resp;
		if (cmd == "show") {
			resp = Show();
			resp["ok"] = true;
		} else {
			resp = {{"ok", false}, {"error", "unknown command \"" + cmd + "\""}};
		}
		kvmft::SendMsg(c.get(), resp);
	}
}

} // namespace kvmft::hbd
