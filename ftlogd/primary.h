// primary.h - the primary side of one FT session: ships the VM's log
// from its ring set to the secondary host and publishes the ACKs.
//
// The ring set is the bounded log buffer (lib/log/ring_io.h): records
// stay in it until the secondary has stored them, so a new connection on
// any path resumes from the last ACK with nothing lost or repeated, and a
// lagging secondary fills the ring, which slows the VMM.
// Thread safety: Start/Stop/Stats from any thread; the rest is the
// session's own thread.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config.h"
#include "events.h"
#include "link.h"
#include "log/ring_io.h"
#include "ring/ring.h"
#include "stats.h"

namespace kvmft::logd {

struct Env {
	const Config *cfg;
	EventLog *events;
	std::shared_ptr<kvmft::TlsContext> client_tls, server_tls;
};

class Primary {
public:
	// rings: the VM's ring set (memfd or kvm_ft.ko session). ack_fd
	// (optional, an eventfd of the VMM) is signalled after every new
	// ack_pos, so the VMM releases held outputs at once.
	Primary(Env env, std::string name, const Peer *peer, kvmft::RingSet rings,
		kvmft::UniqueFd ack_fd = {});
	~Primary();
	void Start();
	void Stop();
	nlohmann::json Stats() const;
	const std::string &name() const { return name_; }
	// True once the session ended with its owner: the ring's wakeup fd
	// hung up and everything the ring held was acknowledged. The daemon
	// then removes it.
	bool ended() const { return ended_; }

private:
	struct Sent {
		uint64_t seq;
		uint32_t ring;
		uint64_t end;      // ring position after the frame's records
		uint64_t send_ns;  // when queued for the socket
		uint64_t first_ts; // capture time of its first record
	};

	void Run();
	std::unique_ptr<Link> Connect();
	std::unique_ptr<Link> TryPath(size_t i, kvmft::Status *err);
	kvmft::Status Resume(uint64_t stored);
	kvmft::Status Serve(Link *l);
	kvmft::Status FillFrames(Link *l);
	kvmft::Status OnAck(const kvmft::Frame &f, Link *l);
	kvmft::Status EndSession(Link *l);
	bool ArmWakeup();
	void SetState(const char *s, const std::string &err = "");
	void Publish(Link *l);
	void Sleep(int ms);

	Env env_;
	std::string name_;
	const Peer *peer_;
	kvmft::RingSet rings_;
	kvmft::UniqueFd ack_fd_;
	std::vector<kvmft::RingReader> readers_;
	std::deque<Sent> unacked_, unconsumed_;
	uint64_t next_seq_ = 1, acked_seq_ = 0;
	size_t path_ = 0;
	std::atomic<int> active_path_{-1};
	std::atomic<bool> stop_{false};
	std::atomic<bool> ended_{false};
	bool owner_gone_ = false; // the wakeup fd hung up
	std::thread thread_;

	mutable std::mutex mu_; // guards the fields below
	std::string state_ = "starting", last_error_;
	uint64_t frames_ = 0, records_ = 0, bytes_ = 0, reconnects_ = 0, path_switches_ = 0;
	uint64_t ring_full_ = 0;
	Percentiles ack_lat_;
	Ewma lag_ns_;
	Bandwidth bw_;
	double rtt_ns_ = 0;
	uint64_t rtt_min_ns_ = 0;
};

} // namespace kvmft::logd
