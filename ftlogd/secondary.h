// secondary.h - the secondary side of one FT session: verifies frames,
// stores their records, byte for byte, in a ring set of the primary's
// layout that the replaying VMM consumes, and ACKs what is stored
// ("received and stored", not "replayed") as soon as it is.
//
// The session outlives its connections: a new connection (another path,
// or the same one after a flap) takes it over and the primary resumes
// after the last stored frame.
// Thread safety: Serve() runs on a connection's thread, one at a time
// (a newer connection makes the older one return); the rest from any
// thread.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "log/frame.h"
#include "log/ring_io.h"
#include "primary.h"
#include "ring/ring.h"
#include "stats.h"

namespace kvmft::logd {

class Secondary {
public:
	Secondary(Env env, std::string name, std::string peer);
	kvmft::Status Init(uint32_t rings, uint32_t ring_bytes);
	// Serves l until it fails, the primary closes, a newer connection
	// takes over, or Stop().
	void Serve(std::unique_ptr<Link> l);
	void Stop() { stop_ = true; }
	bool Fits(uint32_t rings, uint32_t ring_bytes, const std::string &peer) const;
	const std::string &peer() const { return peer_; }
	nlohmann::json Stats() const;
	int memfd() const { return rs_.fd(); }
	int eventfd() const { return rs_.event_fd(); }
	const std::string &name() const { return name_; }

private:
	struct Pending {
		uint64_t seq;
		uint32_t ring;
		std::vector<uint8_t> payload;
	};
	struct Stored {
		uint64_t seq;
		uint32_t ring;
		uint64_t end;
	};

	kvmft::Status Loop(Link *l);
	kvmft::Status OnData(const kvmft::Frame &f);
	// Stores a frame if it fits (*stored); an error if its records are bad.
	kvmft::Status Store(uint64_t seq, uint32_t ring, const uint8_t *p, size_t len, bool *stored);
	kvmft::Status DrainPending();
	uint64_t Consumed();
	void SetState(const char *s, const std::string &err = "");

	Env env_;
	std::string name_, peer_;
	kvmft::RingSet rs_;
	std::vector<kvmft::RingWriter> writers_;
	std::vector<uint64_t> next_rec_;
	std::deque<Stored> stored_q_;
	std::deque<Pending> pending_;
	size_t pending_bytes_ = 0;
	kvmft::SeqCheck recv_;
	uint64_t consumed_ = 0, acked_stored_ = 0, acked_consumed_ = 0;
	std::atomic<bool> stop_{false};
	std::atomic<int> takeover_{0};
	std::mutex own_; // held by the connection serving the session

	mutable std::mutex mu_; // guards the fields below
	uint64_t stored_ = 0;
	std::string state_ = "waiting", last_error_;
	uint64_t frames_ = 0, records_ = 0, bytes_ = 0, connections_ = 0, rejected_ = 0;
	uint64_t stalls_ = 0;
	Bandwidth bw_;
	double rtt_ns_ = 0;
};

} // namespace kvmft::logd
