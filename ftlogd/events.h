// events.h - ftlogd's event stream: every availability-relevant happening
// (session registered, connected, path switch, peer rejected, frame
// rejected, heartbeat timeout, ...) as one JSON object. Each event goes to
// stderr (the journal under systemd) and into a bounded in-memory log
// that `ftctl monitor` follows over the control socket.
// Thread safety: all methods may be called from any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "base/unique_fd.h"

namespace kvmft::logd {

class EventLog {
public:
	explicit EventLog(std::string host);
	// Records an event: {"id","time","host","type","session","msg", extra...}.
	void Emit(const std::string &type, const std::string &session, const std::string &msg,
		  nlohmann::json extra = nlohmann::json::object());
	// Events with id > after, oldest first (at most the last kKeep).
	std::vector<nlohmann::json> Since(uint64_t after) const;
	uint64_t last_id() const;
	// Readable after each Emit (eventfd); the reader drains it.
	int wake_fd() const { return wake_.get(); }

	static constexpr size_t kKeep = 4096;

private:
	std::string host_;
	mutable std::mutex mu_;
	std::deque<nlohmann::json> log_;
	uint64_t next_id_ = 1;
	kvmft::UniqueFd wake_;
};

} // namespace kvmft::logd
