// config.h - fthbd.conf: "key = value" lines, '#' comments
// (Documentation/fthbd.md, "Configuration").
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "channel/net.h"

namespace kvmft::hbd {

enum class Mode { kSync, kAsync };
enum class Role { kActive, kPassive };

struct Config {
	std::string name, peer_name; // certificate names of this server and the peer
	std::string service = "service"; // resource name in the lock area
	std::string ca, cert, key;
	kvmft::SockAddr listen;      // channel address (dedicated network)
	std::string listen_dev;
	kvmft::SockAddr peer;        // the peer's channel address
	std::string control_socket = "/run/fthbd/fthbd.sock";
	std::string data_dir;        // protected directory
	std::string safe_queue;      // passive's safe queue file
	std::string app;             // protected application, run by /bin/sh -c
	std::string public_addr;     // "10.0.9.10/24"
	std::string public_dev;
	std::vector<std::string> ping; // IPv4 targets
	unsigned heartbeat_interval_ms = 100;
	unsigned timeout_ms = 1000;    // channel silent this long: peer lost
	unsigned acquire_timeout_ms = 5000; // passive's wait for the lock at failover
	unsigned connect_timeout_ms = 500;
	unsigned max_unsafe_mb = 64;   // unsafe queue bound
	Mode mode = Mode::kSync;
	Role role = Role::kPassive;    // role at start
	std::string lock_area;
	unsigned host_id = 0;

	// Active, peer synchronised: how long updates wait for the channel
	// before the active stops waiting and marks the passive not
	// synchronised. Longer than the passive's detection plus its lock
	// wait, so a passive never fails over behind an acknowledged update.
	unsigned degrade_ms() const { return timeout_ms + acquire_timeout_ms + 2 * timeout_ms; }
};

kvmft::Status ParseConfig(const std::string &text, Config *c);
kvmft::Status LoadConfig(const std::string &path, Config *c);

} // namespace kvmft::hbd
