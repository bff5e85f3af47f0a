// daemon.h - fthbd: one per server of an active/passive pair
// (Documentation/fthbd.md).
//
// Threads and who writes what:
//   main (link) thread: the channel, the role and every state change
//     (failover, taking and dropping the identity, the application);
//   FUSE workers (active): UnsafeQueue::Update only;
//   control thread: reads Status() under mu_;
//   lock renewal and fence threads (lib/lock): OnLockLost only.
// mu_ guards the fields marked so; it is never held across I/O.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/unique_fd.h"
#include "channel/tls.h"
#include "config.h"
#include "intercept.h"
#include "lock/holder.h"
#include "peer.h"
#include "queue.h"
#include "unsafe.h"

namespace kvmft::hbd {

class Daemon {
public:
	explicit Daemon(Config c);
	~Daemon();
	kvmft::Status Run(const std::atomic<bool> &stop);
	nlohmann::json Show();

private:
	kvmft::Status Setup();
	kvmft::Status BecomeActive();
	void RunActive(const std::atomic<bool> &stop);
	void RunPassive(const std::atomic<bool> &stop);
	void ServePassive(PeerConn *pc, const std::atomic<bool> &stop);
	bool TryFailover();
	kvmft::Status ApplySafeQueue(uint64_t *applied_to);
	kvmft::Status StartApp();
	void StopApp();
	void StopActive();
	void OnLockLost(const std::string &why);
	void ControlLoop();
	void Event(const std::string &type, const std::string &msg);
	void SetState(const std::string &s);

	const Config c_;
	std::shared_ptr<kvmft::TlsContext> client_ctx_, server_ctx_;
	kvmft::UniqueFd wake_; // eventfd: a record to send
	std::unique_ptr<UnsafeQueue> uq_;
	SafeQueue sq_;
	std::unique_ptr<kvmft::lock::Holder> lock_;
	Intercept fs_;
	pid_t app_ = -1;
	bool has_identity_ = false;
	kvmft::UniqueFd control_;
	std::thread control_thr_;
	std::atomic<bool> control_stop_{false};

	std::mutex mu_;
	Role role_;                   // mu_
	std::string state_;           // mu_
	bool channel_up_ = false;     // mu_
	bool passive_synced_ = false; // mu_ (passive: as the active said)
	uint64_t safe_last_ = 0;      // mu_ (passive: last record stored)
	uint64_t safe_bytes_ = 0;     // mu_
	uint64_t active_last_ = 0;    // mu_ (passive: last seq the active announced)
	int64_t last_heard_ms_ = 0;   // mu_
	unsigned failovers_ = 0;      // mu_
};

} // namespace kvmft::hbd
