// accept.h - the secondary role's front door. One thread, at normal
// priority, accepts FT logging connections and runs their TLS handshakes
// and HELLOs side by side (non-blocking), each within
// connect_timeout_ms and at most max_pending_connections at a time: a
// connection beyond that is closed at once. No thread and no real-time
// CPU is spent on a peer before it has authenticated and said HELLO; only
// then is the connection handed on, through Take(), to the daemon's loop,
// which gives it its session's thread.
//
// Who writes what: the acceptor thread owns the listeners and the pending
// connections; ready_ (under mu_) is written by it and emptied by Take();
// refused_ is atomic.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "link.h"
#include "primary.h"

namespace kvmft::logd {

class Acceptor {
public:
	struct Ready {
		std::unique_ptr<Link> link;
		const Peer *peer;
		nlohmann::json hello;
		kvmft::SockAddr from;
	};

	Acceptor(Env env, std::vector<kvmft::UniqueFd> listeners);
	~Acceptor();
	kvmft::Status Start();
	// Readable when Take() has connections.
	int ready_fd() const { return wake_.get(); }
	std::vector<Ready> Take();

private:
	struct Pending {
		std::unique_ptr<kvmft::TlsConn> conn; // until the handshake is done
		std::unique_ptr<Link> link;           // then: waiting for HELLO
		const Peer *peer = nullptr;
		kvmft::SockAddr from;
		uint64_t deadline_ns;
	};

	void Run();
	void Accept(int lfd);
	// Advances p; false when it is finished (handed on or refused).
	bool Step(Pending *p);
	void Reject(const Pending &p, const char *type, const kvmft::Status &why);

	Env env_;
	std::vector<kvmft::UniqueFd> listeners_;
	kvmft::UniqueFd wake_;
	std::list<Pending> pending_;
	std::atomic<bool> stop_{false};
	std::atomic<uint64_t> refused_{0};
	std::thread thread_;
	std::mutex mu_;
	std::vector<Ready> ready_;
};

// The configured peer a certificate names (one of its DNS SANs, or its CN)
// and matching its pinned fingerprint, if any; null with *err otherwise.
const Peer *AuthorizedPeer(const Config &c, const kvmft::TlsConn &conn, kvmft::Status *err);

} // namespace kvmft::logd
