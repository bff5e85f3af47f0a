// lockspace.h - one host's view of a lock area: its host id lease and the
// resources (VMs) it owns. The protocol and its safety argument are in
// Documentation/lock.md; the comments here state the contracts.
//
// Typical use (ftlogd, ftctl lock acquire --hold):
//
//   Lockspace::Open(&disk, &clock, host_id, "hostA:1234", &ls);
//   ls->AcquireHostId(give_up_at);          // delta lease, >= W
//   ls->Acquire("vm-42", give_up_at);       // claim, retried until owned
//   Fence fence(ls.get(), &clock, halt_vm); // fence.h: fires at the deadline
//   every timing().renew: ls->Renew();      // extends the deadline
//   before every act as owner: if (!ls->Valid()) stop;
//
// A holder owns its resources exactly while Valid(): from a successful
// Acquire until Deadline() passes without a successful Renew, or until
// Release/ReleaseHostId. Once invalid, this Lockspace never becomes valid
// again (a new one must acquire the host id anew).
//
// Thread safety: Valid(), Deadline(), Lost(), LostReason() and
// MarkLost() may be called from any thread; every other method from one
// thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "lock/disk.h"
#include "lock/format.h"
#include "lock/monitor.h"
#include "lock/timing.h"

namespace kvmft::lock {

struct IoStats {
	uint64_t reads = 0;
	uint64_t writes = 0;
};

class Lockspace {
public:
	// Read and check the area header of disk; bind to host_id. Neither
	// disk nor clock is owned; both must outlive the Lockspace. `owner`
	// is shown by `ftctl lock show`. seed feeds the incarnation nonce.
	static Status Open(Disk *disk, Clock *clock, uint32_t host_id,
			   const std::string &owner, uint64_t seed,
			   std::unique_ptr<Lockspace> *out);

	const AreaHeader &header() const { return hdr_; }
	const Timing &timing() const { return t_; }
	uint32_t host_id() const { return id_; }
	const IoStats &io() const { return io_; }

	// Acquire the host id (delta lease). Waits while another process's
	// heartbeat in the slot may still be live, up to give_up_at (local
	// clock). EBUSY: the id is in use; other errors: I/O or format.
	Status AcquireHostId(int64_t give_up_at);
	// One heartbeat. Extends the deadline when the write completed in
	// time. ENOLCK once the lease is lost (for good). Call every renew.
	Status Renew();
	// Release every held resource, then the host id. Best effort: returns
	// the first error, but this Lockspace is invalid afterwards anyway.
	Status ReleaseHostId();

	// One attempt to own `resource`. EBUSY: a live host owns it (the
	// message names it); EAGAIN: contention, retry after a random pause;
	// ENOSPC: every row of the resource's window holds another resource
	// of this host; ENOLCK: the host lease is lost.
	Status TryAcquire(const std::string &resource);
	// TryAcquire until owned or give_up_at (ETIMEDOUT, with the last
	// reason), renewing the host lease meanwhile.
	Status Acquire(const std::string &resource, int64_t give_up_at);
	// Stop owning resource and clear this host id's claim on it, also one
	// left by an earlier owner of the host id. ENOENT: no such claim.
	Status Release(const std::string &resource);

	bool Valid();
	int64_t Deadline();
	bool Lost();
	std::string LostReason();
	// Give up the lease at once (fencing, shutdown); idempotent.
	void MarkLost(const std::string &why);
	std::set<std::string> Held() const { return held_; }

	// Sleep until t, renewing the host lease whenever due. ENOLCK if lost.
	Status SleepRenewing(int64_t t);

private:
	Lockspace(Disk *disk, Clock *clock, uint32_t id, std::string owner,
		  uint64_t seed, const AreaHeader &hdr);
	int64_t Now();
	Status ReadHosts();
	Status ReadWindow(uint32_t first, std::vector<Claim> *claims);
	Status WriteSlot(const HostSlot &s);
	Status WriteClaim(uint32_t row, const Claim &c);
	Status WatchSlot(int64_t give_up_at);
	bool RetryIo(const Status &st, int64_t give_up_at);
	bool ClaimLive(const Claim &c);
	Status FindOwner(uint32_t first, const std::string &res,
			 std::vector<Claim> *claims, uint32_t *owner);
	bool ColumnFree(const Claim &own, const std::string &res) const;
	uint64_t Random();

	Disk *disk_;
	Clock *clock_;
	uint32_t id_;
	std::string owner_;
	AreaHeader hdr_;
	Timing t_;
	Monitor mon_;
	IoStats io_;
	uint64_t rng_;
	int64_t last_now_ = 0;
	int64_t next_renew_ = 0;

	HostSlot mine_;      // last value of our slot known written
	HostSlot attempt_;   // value of a write that failed (may have landed)
	std::set<std::string> held_;

	std::vector<bool> bad_;     // host slot failed to decode
	int64_t hosts_read_at_ = 0; // start of the latest ReadHosts

	enum class State { kNone, kValid, kLost, kReleased };
	std::mutex mu_; // guards the fields below
	State state_ = State::kNone;
	int64_t deadline_ = 0;
	std::string why_;
};

} // namespace kvmft::lock
