// ring.cc - kvm-ft log ring, userspace producer and consumer.
// Protocol and barrier pairing: Documentation/ring.md.
#include "ring/ring.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <type_traits>

namespace kvmft {

namespace {

// Seals every ring memfd carries (CreateMemfd) and MapMemfd demands.
constexpr int kRingSeals = F_SEAL_SHRINK | F_SEAL_GROW;

uint64_t PageSize()
{
	static const uint64_t ps = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
	return ps;
}

template <typename T> T LoadAcquire(const T *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

template <typename T> void StoreRelease(T *p, std::type_identity_t<T> v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

} // namespace

void RingPublishOutputs(const RingView &v, const RingOutputs &o)
{
	// Release: pairs with RingReadOutputs' acquire loads.
	StoreRelease(&v.prod->hold_ns_total, o.hold_ns_total);
	StoreRelease(&v.prod->outputs_released, o.released);
	StoreRelease(&v.prod->outputs_held, o.held);
}

RingOutputs RingReadOutputs(const RingView &v)
{
	RingOutputs o;
	o.held = LoadAcquire(&v.prod->outputs_held);
	o.released = LoadAcquire(&v.prod->outputs_released);
	o.hold_ns_total = LoadAcquire(&v.prod->hold_ns_total);
	return o;
}

bool RingSizeValid(uint32_t b)
{
	return b >= KVM_FT_RING_MIN_DATA && b <= KVM_FT_RING_MAX_DATA &&
	       (b & (b - 1)) == 0 && b % PageSize() == 0;
}

uint64_t RingStride(uint32_t data_bytes)
{
	return KVM_FT_RING_DATA_OFF * PageSize() + data_bytes;
}

RingSet::RingSet(RingSet &&o) noexcept { *this = std::move(o); }

RingSet &RingSet::operator=(RingSet &&o) noexcept
{
	if (this == &o)
		return *this;
	if (base_)
		munmap(base_, len_);
	fd_ = std::move(o.fd_);
	efd_ = std::move(o.efd_);
	base_ = std::exchange(o.base_, nullptr);
	len_ = std::exchange(o.len_, 0);
	kernel_ = o.kernel_;
	views_ = std::move(o.views_);
	return *this;
}

RingSet::~RingSet()
{
	if (base_)
		munmap(base_, len_);
}

Status RingSet::MapCommon(int fd, uint32_t nr, uint64_t stride, bool ro_prod)
{
	len_ = nr * stride;
	int prot = ro_prod ? PROT_READ : PROT_READ | PROT_WRITE;
	void *p = mmap(nullptr, len_, prot, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return Status::Errno("mmap rings");
	base_ = p;
	auto *b = static_cast<uint8_t *>(p);
	for (uint32_t i = 0; i < nr; i++) {
		uint8_t *r = b + i * stride;
		if (ro_prod) {
			// Remap the control page writable over the read-only one.
			void *c = mmap(r, PageSize(), PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_FIXED, fd,
				       static_cast<off_t>(i * stride));
			if (c == MAP_FAILED)
				return Status::Errno("mmap ring control page");
		}
		RingView v;
		v.ctl = reinterpret_cast<kvm_ft_ring_ctl *>(r);
		v.prod = reinterpret_cast<kvm_ft_ring_prod *>(r + PageSize());
		v.data = r + KVM_FT_RING_DATA_OFF * PageSize();
		v.size = static_cast<uint32_t>(stride - KVM_FT_RING_DATA_OFF * PageSize());
		views_.push_back(v);
	}
	return Status::Ok();
}

Status RingSet::MapSession(int session_fd, RingSet *out)
{
	kvm_ft_session_info si{};
	if (ioctl(session_fd, KVM_FT_SESSION_INFO, &si) < 0)
		return Status::Errno("KVM_FT_SESSION_INFO");
	if (si.ring_stride != RingStride(si.ring_bytes) || si.nr_vcpus == 0)
		return Status::Error(EPROTO, "kvm_ft session: unexpected ring geometry");
	RingSet s;
	s.kernel_ = true;
	int fd = dup(session_fd);
	if (fd < 0)
		return Status::Errno("dup session fd");
	s.fd_.reset(fd);
	Status st = s.MapCommon(fd, si.nr_vcpus, si.ring_stride, true);
	if (!st.ok())
		return st;
	*out = std::move(s);
	return Status::Ok();
}

Status RingSet::CreateMemfd(uint32_t nr, uint32_t data_bytes, RingSet *out)
{
	if (nr == 0 || nr > 64)
		return Status::Error(EINVAL, "ring set: vCPU count must be 1..64");
	if (!RingSizeValid(data_bytes))
		return Status::Error(EINVAL, "ring set: data size must be a power of two, 4 KiB..16 MiB");
	RingSet s;
	int fd = memfd_create("kvm_ft-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return Status::Errno("memfd_create");
	s.fd_.reset(fd);
	uint64_t stride = RingStride(data_bytes);
	if (ftruncate(fd, static_cast<off_t>(nr * stride)) < 0)
		return Status::Errno("ftruncate ring memfd");
	// The consumer maps it: shrinking it under that mapping would make
	// its next access SIGBUS. Sealed, the size is fixed for everyone.
	if (fcntl(fd, F_ADD_SEALS, kRingSeals | F_SEAL_SEAL) < 0)
		return Status::Errno("seal ring memfd");
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0)
		return Status::Errno("eventfd");
	s.efd_.reset(efd);
	Status st = s.MapCommon(fd, nr, stride, false);
	if (!st.ok())
		return st;
	for (uint32_t i = 0; i < nr; i++) {
		kvm_ft_ring_prod *p = s.views_[i].prod;
		p->magic = KVM_FT_RING_MAGIC;
		p->data_size = data_bytes;
		p->vcpu = i;
		p->abi_version = KVM_FT_ABI_VERSION;
	}
	*out = std::move(s);
	return Status::Ok();
}

Status RingSet::MapMemfd(int memfd, int eventfd, RingSet *out)
{
	// Checked before the size is: a memfd that can shrink later would
	// SIGBUS this process at its next access to the mapping.
	int seals = fcntl(memfd, F_GET_SEALS);
	if (seals < 0 || (seals & kRingSeals) != kRingSeals)
		return Status::Error(EPERM, "ring memfd is not sealed against resizing "
					    "(F_SEAL_SHRINK and F_SEAL_GROW are required)");
	struct stat sb;
	if (fstat(memfd, &sb) < 0)
		return Status::Errno("fstat ring memfd");
	uint64_t ps = PageSize();
	if (sb.st_size < static_cast<off_t>(2 * ps))
		return Status::Error(EPROTO, "ring memfd too small");
	// Read the first producer page to learn the geometry.
	kvm_ft_ring_prod first{};
	if (pread(memfd, &first, sizeof(first), static_cast<off_t>(ps)) !=
	    static_cast<ssize_t>(sizeof(first)))
		return Status::Errno("read ring header");
	if (first.magic != KVM_FT_RING_MAGIC)
		return Status::Error(EPROTO, "ring memfd: bad magic");
	if (first.abi_version != KVM_FT_ABI_VERSION)
		return Status::Error(EPROTO, "ring memfd: ABI version " +
						     std::to_string(first.abi_version) + " not supported");
	if (!RingSizeValid(first.data_size))
		return Status::Error(EPROTO, "ring memfd: bad data size");
	uint64_t stride = RingStride(first.data_size);
	if (static_cast<uint64_t>(sb.st_size) % stride)
		return Status::Error(EPROTO, "ring memfd: size is not a whole number of rings");
	uint64_t nr = static_cast<uint64_t>(sb.st_size) / stride;
	if (nr == 0 || nr > 64)
		return Status::Error(EPROTO, "ring memfd: bad ring count");
	RingSet s;
	int fd = dup(memfd);
	if (fd < 0)
		return Status::Errno("dup ring memfd");
	s.fd_.reset(fd);
	if (eventfd >= 0) {
		int e = dup(eventfd);
		if (e < 0)
			return Status::Errno("dup eventfd");
		s.efd_.reset(e);
	}
	Status st = s.MapCommon(fd, static_cast<uint32_t>(nr), stride, false);
	if (!st.ok())
		return st;
	for (uint32_t i = 0; i < nr; i++) {
		const kvm_ft_ring_prod *p = s.views_[i].prod;
		if (p->magic != KVM_FT_RING_MAGIC || p->data_size != first.data_size ||
		    p->vcpu != i)
			return Status::Error(EPROTO, "ring memfd: ring " + std::to_string(i) +
							     " header is inconsistent");
	}
	*out = std::move(s);
	return Status::Ok();
}

RingSet::Usage RingSet::usage() const
{
	Usage u;
	for (const RingView &v : views_) {
		// Acquire: pairs with the release stores of both positions.
		uint64_t used = LoadAcquire(&v.prod->producer_pos) - LoadAcquire(&v.ctl->consumer_pos);
		u.used += std::min<uint64_t>(used, v.size);
		u.size += v.size;
	}
	return u;
}

RingOutputs RingSet::outputs() const
{
	RingOutputs sum;
	for (const RingView &v : views_) {
		RingOutputs o = RingReadOutputs(v);
		sum.held += o.held;
		sum.released += o.released;
		sum.hold_ns_total += o.hold_ns_total;
	}
	return sum;
}

bool RingSet::Wait(int timeout_ms)
{
	auto any = [this] {
		for (const RingView &v : views_)
			if (LoadAcquire(&v.prod->producer_pos) != v.ctl->consumer_pos)
				return true;
		return false;
	};
	for (RingView &v : views_)
		__atomic_store_n(&v.ctl->flags, v.ctl->flags | KVM_FT_CTL_WAKEUP, __ATOMIC_RELAXED);
	// Full barrier: pairs with the producer's barrier between publishing
	// producer_pos and reading ctl->flags (store-buffer pattern).
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	bool ready = any();
	int fd = kernel_ ? fd_.get() : efd_.get();
	uint64_t deadline = timeout_ms < 0 ? 0 : MonotonicNs() + uint64_t(timeout_ms) * 1000000;
	// A wakeup may be stale (left in the eventfd by a record the consumer
	// then read without sleeping): keep waiting until data or the timeout.
	while (!ready && fd >= 0) {
		int left = -1;
		if (timeout_ms >= 0) {
			uint64_t now = MonotonicNs();
			if (now >= deadline)
				break;
			left = int((deadline - now + 999999) / 1000000);
		}
		pollfd p{fd, POLLIN, 0};
		int n = poll(&p, 1, left);
		if (n > 0 && !kernel_) {
			uint64_t v;
			ssize_t r = read(fd, &v, sizeof(v));
			(void)r;
		}
		ready = any();
		if (n < 0 || (p.revents & (POLLHUP | POLLERR)))
			break; // signal, or the session is gone: let the caller look
	}
	for (RingView &v : views_)
		__atomic_store_n(&v.ctl->flags, v.ctl->flags & ~KVM_FT_CTL_WAKEUP,
				 __ATOMIC_RELAXED);
	return ready;
}

bool RingConsumer::Empty() const
{
	return LoadAcquire(&v_.prod->producer_pos) == v_.ctl->consumer_pos;
}

Status RingConsumer::Drain(const Fn &fn, size_t *n, size_t max)
{
	*n = 0;
	// Acquire: pairs with the producer's release store of producer_pos,
	// so the record bytes before it are visible.
	uint64_t prod = LoadAcquire(&v_.prod->producer_pos);
	uint64_t cons = v_.ctl->consumer_pos;
	const uint64_t size = v_.size;
	if (prod - cons > size)
		return Status::Error(EPROTO, "ring: producer position out of range");
	alignas(8) uint8_t buf[512];
	std::vector<uint64_t> big;
	Status st;
	while (cons != prod && *n < max) {
		uint64_t off = cons & (size - 1);
		uint64_t contig = std::min(prod - cons, size - off);
		uint32_t len;
		uint16_t type;
		if (contig < 8) {
			st = Status::Error(EPROTO, "ring: truncated record");
			break;
		}
		std::memcpy(&type, v_.data + off, sizeof(type));
		std::memcpy(&len, v_.data + off + 4, sizeof(len));
		if (len < 8 || len % 8 || len > contig) {
			st = Status::Error(EPROTO, "ring: bad record length " + std::to_string(len) +
							   " at position " + std::to_string(cons));
			break;
		}
		if (type == KVM_FT_REC_PAD) {
			cons += len;
			continue;
		}
		if (len < sizeof(kvm_ft_rec_hdr) || type == 0 || type > KVM_FT_REC_TYPE_MAX) {
			st = Status::Error(EPROTO, "ring: bad record type " + std::to_string(type) +
							   " at position " + std::to_string(cons));
			break;
		}
		// Copy out: the peer may rewrite shared memory under us.
		uint8_t *rec = buf;
		if (len > sizeof(buf)) {
			big.resize(len / 8);
			rec = reinterpret_cast<uint8_t *>(big.data());
		}
		std::memcpy(rec, v_.data + off, len);
		auto *h = reinterpret_cast<kvm_ft_rec_hdr *>(rec);
		if (h->len != len || h->type != type) {
			st = Status::Error(EPROTO, "ring: record changed while read");
			break;
		}
		if (type == KVM_FT_REC_LOST && len >= sizeof(kvm_ft_rec_lost)) {
			uint64_t c = reinterpret_cast<kvm_ft_rec_lost *>(rec)->count;
			lost_ += c;
			if (h->seq != next_seq_)
				gaps_ += h->seq > next_seq_ ? h->seq - next_seq_ : 1;
			next_seq_ = h->seq + c;
		} else {
			if (h->seq != next_seq_)
				gaps_ += h->seq > next_seq_ ? h->seq - next_seq_ : 1;
			next_seq_ = h->seq + 1;
			records_++;
		}
		fn(*h);
		cons += len;
		(*n)++;
	}
	// Release: pairs with the producer's acquire load of consumer_pos, so
	// our reads of the space finish before the producer reuses it.
	StoreRelease(&v_.ctl->consumer_pos, cons);
	return st;
}

bool RingProducer::Put(const void *rec, uint32_t len)
{
	const uint64_t size = v_.size;
	uint64_t prod = v_.prod->producer_pos; // we are the only writer
	// Acquire: pairs with the consumer's release store of consumer_pos.
	uint64_t cons = LoadAcquire(&v_.ctl->consumer_pos);
	if (cons > prod || prod - cons > size)
		return false; // consumer state makes no sense: write nothing
	uint64_t off = prod & (size - 1);
	uint64_t pad = len > size - off ? size - off : 0;
	if (prod + pad + len - cons > size)
		return false;
	if (pad) {
		kvm_ft_rec_hdr h{};
		h.type = KVM_FT_REC_PAD;
		h.len = static_cast<uint32_t>(pad);
		std::memcpy(v_.data + off, &h, std::min<uint64_t>(pad, sizeof(h)));
		prod += pad;
		off = 0;
	}
	std::memcpy(v_.data + off, rec, len);
	v_.prod->records++;
	// Release: pairs with the consumer's acquire load of producer_pos.
	StoreRelease(&v_.prod->producer_pos, prod + len);
	// Full barrier: pairs with the consumer's barrier after it stores
	// consumer_pos and sets KVM_FT_CTL_WAKEUP (RingSet::Wait). Wake only a
	// consumer that asked and had read everything before this record: one
	// wakeup per empty-to-non-empty transition, not one per record.
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	// "Read everything": the larger of consumer_pos and read_pos (a
	// read-ahead consumer, ftlogd, frees space only on ACK).
	uint64_t start = prod - pad;
	uint64_t seen = std::max(__atomic_load_n(&v_.ctl->consumer_pos, __ATOMIC_RELAXED),
				 __atomic_load_n(&v_.ctl->read_pos, __ATOMIC_RELAXED));
	if ((__atomic_load_n(&v_.ctl->flags, __ATOMIC_RELAXED) & KVM_FT_CTL_WAKEUP) &&
	    seen == start && efd_ >= 0) {
		uint64_t one = 1;
		ssize_t r = write(efd_, &one, sizeof(one));
		(void)r;
	}
	return true;
}

bool RingProducer::Write(const void *rec, uint32_t len)
{
	if (len < sizeof(kvm_ft_rec_hdr) || len % 8 || len > v_.size)
		return false;
	auto *h = static_cast<kvm_ft_rec_hdr *>(const_cast<void *>(rec));
	uint64_t now = MonotonicNs();
	if (pending_lost_) {
		kvm_ft_rec_lost l{};
		l.hdr.type = KVM_FT_REC_LOST;
		l.hdr.len = sizeof(l);
		l.hdr.vcpu = v_.prod->vcpu;
		l.hdr.seq = seq_ - pending_lost_;
		l.hdr.pos = h->pos;
		l.hdr.ts_ns = now;
		l.count = pending_lost_;
		if (Put(&l, sizeof(l)))
			pending_lost_ = 0;
	}
	h->len = len;
	h->vcpu = v_.prod->vcpu;
	h->seq = seq_++;
	h->ts_ns = now;
	if (pending_lost_ || !Put(rec, len)) {
		pending_lost_++;
		dropped_++;
		v_.prod->lost++;
		return false;
	}
	return true;
}

} // namespace kvmft
