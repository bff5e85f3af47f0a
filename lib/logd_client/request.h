// request.h - a client's request on ftlogd's control socket
// (Documentation/ftlogd.md, "Control socket"): what ftvmm and ftlogd's
// diagnostic tools send to register, attach and unregister sessions.
#pragma once

#include <nlohmann/json.hpp>

#include <vector>

#include "base/status.h"
#include "base/unique_fd.h"

namespace kvmft::logd {

// Sends req (with fds) and waits for the reply (skipping pushed events).
// A reply with "ok": false becomes an error with its text.
kvmft::Status Request(int fd, const nlohmann::json &req, const std::vector<int> &fds,
		      nlohmann::json *rep, std::vector<kvmft::UniqueFd> *rfds = nullptr);

} // namespace kvmft::logd
