// config.h - ftlogd's configuration file (Documentation/ftlogd.md,
// "Configuration"): "key = value" lines, '#' comments, and one
// "[peer NAME]" section per host this one exchanges FT logs with.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "channel/net.h"

namespace kvmft::logd {

// One FT logging path to a peer: our source address and device, the
// peer's listening address. Paths are tried in the order given.
struct Path {
	kvmft::SockAddr local;  // port 0
	std::string dev;        // SO_BINDTODEVICE; empty: not pinned
	kvmft::SockAddr peer;
	std::string str() const;
};

struct Listen {
	kvmft::SockAddr addr;
	std::string dev;
};

struct Peer {
	std::string name;        // expected certificate name (DNS SAN or CN)
	std::string fingerprint; // pinned SHA-256 of its certificate (optional)
	std::vector<Path> paths;
};

struct Config {
	std::string host_name;
	uint32_t host_id = 0;
	std::string control_socket = "/run/ftlogd/ftlogd.sock";
	std::string control_group;          // group name or gid; empty: root only
	std::string ca, cert, key;
	unsigned heartbeat_interval_ms = 100;
	unsigned heartbeat_timeout_ms = 1000;
	unsigned connect_timeout_ms = 1000;
	unsigned frame_bytes = 64 * 1024;   // most record bytes per DATA frame
	unsigned max_pending_connections = 64; // accepted, not yet authenticated + HELLO
	unsigned realtime_priority = 1;     // SCHED_FIFO priority; 0: normal
	bool realtime_priority_set = false; // given in the file (not the default)
	std::vector<Listen> listens;
	std::string metrics_listen;         // "127.0.0.1:9464"; empty: off
	std::vector<Peer> peers;

	const Peer *FindPeer(const std::string &name) const;
};

// The SCHED_FIFO priority to run at on a host where the daemon may run
// on `cpus` CPUs: the configured one, except that the default (1, not
// given in the file) becomes 0 on a single CPU, where a real-time daemon
// leaves the VMMs too little (Documentation/ftlogd.md, "Scheduling").
unsigned EffectivePriority(const Config &c, int cpus);

// Parses text (file name only for messages). Errors name file and line.
kvmft::Status ParseConfig(const std::string &text, const std::string &file, Config *out);
kvmft::Status LoadConfig(const std::string &file, Config *out);

} // namespace kvmft::logd
