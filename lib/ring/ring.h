// ring.h - userspace side of the kvm-ft log ring (uapi/linux/kvm_ft.h).
//
// The same ring layout serves two producers: kvm_ft.ko (rings of a session
// fd, mapped read-only except the control page) and a userspace producer
// (ftvmm without the module) writing into a memfd that the consumer maps.
// The protocol, barrier by barrier, is in Documentation/ring.md; the
// comments below name the barrier each access pairs with.
//
// Thread safety: one RingProducer and one RingConsumer per ring, each used
// by one thread at a time.
#pragma once

#include <linux/kvm_ft.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace kvmft {

// Views of one ring inside a mapping.
struct RingView {
	kvm_ft_ring_ctl *ctl = nullptr;
	kvm_ft_ring_prod *prod = nullptr;
	uint8_t *data = nullptr;
	uint32_t size = 0; // data bytes, power of two
};

// Output rule figures of a producer page (kvm_ft_ring_prod): outputs held
// now, released in total, and the sum of their hold times.
struct RingOutputs {
	uint64_t held = 0;
	uint64_t released = 0;
	uint64_t hold_ns_total = 0;
};

// The VMM holding the outputs (single writer): store-release each field.
void RingPublishOutputs(const RingView &v, const RingOutputs &o);
// A reader (ftlogd): load-acquire each field. Each is exact; together they
// may come from slightly different moments.
RingOutputs RingReadOutputs(const RingView &v);

// Bytes one ring occupies in a mapping: two pages plus its data.
uint64_t RingStride(uint32_t data_bytes);
bool RingSizeValid(uint32_t data_bytes);

// A mapping of nr rings laid out at stride intervals (a kernel session or
// a memfd). Owns the mapping; movable.
class RingSet {
public:
	RingSet() = default;
	RingSet(RingSet &&o) noexcept;
	RingSet &operator=(RingSet &&o) noexcept;
	RingSet(const RingSet &) = delete;
	RingSet &operator=(const RingSet &) = delete;
	~RingSet();

	// Map the rings of a kvm_ft.ko session fd: control pages read-write,
	// producer and data pages read-only.
	static Status MapSession(int session_fd, RingSet *out);
	// Create a memfd holding nr rings of data_bytes each, initialised, and
	// an eventfd for wakeups; both mapped/owned here (producer and consumer
	// in one process, or hand fd()/event_fd() to another process). The
	// memfd is sealed (F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_SEAL): no process
	// can change its size under another's mapping.
	static Status CreateMemfd(uint32_t nr, uint32_t data_bytes, RingSet *out);
	// Map a memfd ring set made by CreateMemfd in another process. Every
	// header is validated: a peer's memory is not trusted. A memfd without
	// F_SEAL_SHRINK and F_SEAL_GROW is refused (EPERM): its owner could
	// shrink it and fault this process on its next access.
	static Status MapMemfd(int memfd, int eventfd, RingSet *out);

	uint32_t size() const { return static_cast<uint32_t>(views_.size()); }
	const RingView &ring(uint32_t i) const { return views_[i]; }
	int fd() const { return fd_.get(); }
	int event_fd() const { return efd_.get(); }

	// Data bytes published and not yet consumed, over every ring (each
	// ring counted at most its size: the producer page may be a peer's
	// memory), and the data bytes of every ring together.
	struct Usage {
		uint64_t used = 0;
		uint64_t size = 0;
	};
	Usage usage() const;
	// Output rule figures of every ring, summed.
	RingOutputs outputs() const;

	// Wait until any ring holds data or timeout_ms passes (-1: forever).
	// Returns true if data is available; false after the timeout, on a
	// signal, or when a kernel session is gone (POLLHUP). Arms and disarms
	// the WAKEUP flag of every ring (Documentation/ring.md, "Wakeups").
	bool Wait(int timeout_ms);

private:
	Status MapCommon(int fd, uint32_t nr, uint64_t stride, bool ro_prod);
	UniqueFd fd_;
	UniqueFd efd_;
	void *base_ = nullptr;
	size_t len_ = 0;
	bool kernel_ = false;
	std::vector<RingView> views_;
};

// Reads records in order from one ring.
class RingConsumer {
public:
	explicit RingConsumer(const RingView &v) : v_(v) {}

	// Calls fn for every complete record available (PAD records are
	// skipped, LOST records are passed to fn and counted), at most max
	// records, then releases the space. A malformed record (bad length,
	// type, or past producer_pos) stops the drain with an error; nothing
	// after it is consumed.
	using Fn = std::function<void(const kvm_ft_rec_hdr &)>;
	Status Drain(const Fn &fn, size_t *n, size_t max = SIZE_MAX);
	bool Empty() const;
	uint64_t lost() const { return lost_; }        // from LOST records
	uint64_t records() const { return records_; }  // non-PAD records read
	uint64_t gaps() const { return gaps_; }        // seq gaps not covered by LOST

private:
	RingView v_;
	uint64_t lost_ = 0, records_ = 0, gaps_ = 0;
	uint64_t next_seq_ = 0;
};

// Writes records into one ring (userspace capture). Never blocks: a record
// that does not fit is dropped and counted, and a LOST record is written
// before the next record that fits.
class RingProducer {
public:
	RingProducer(const RingView &v, int eventfd) : v_(v), efd_(eventfd) {}

	// Append a record: hdr.len, type and payload come from the caller;
	// seq, vcpu and ts_ns are filled here. rec points to len bytes
	// beginning with a kvm_ft_rec_hdr. Returns false if dropped.
	bool Write(const void *rec, uint32_t len);
	uint64_t dropped() const { return dropped_; }

private:
	bool Put(const void *rec, uint32_t len);
	RingView v_;
	int efd_;
	uint64_t seq_ = 0;
	uint64_t pending_lost_ = 0;
	uint64_t dropped_ = 0;
};

} // namespace kvmft
