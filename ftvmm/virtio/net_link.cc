// net_link.cc - tap device and the output rule on sent frames (net_link.h).
#include "virtio/net_link.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fmt/format.h>

namespace kvmft::vmm {

Status NetLink::OpenTap(const std::string &name, std::unique_ptr<NetLink> *out)
{
	if (name.empty() || name.size() >= IFNAMSIZ)
		return Status::Error(EINVAL, fmt::format("--net '{}': a tap interface name of 1 to "
							 "{} characters", name, IFNAMSIZ - 1));
	UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
	if (!fd.valid())
		return Status::Errno("open /dev/net/tun");
	ifreq ifr{};
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	memcpy(ifr.ifr_name, name.data(), name.size());
	if (ioctl(fd.get(), TUNSETIFF, &ifr) < 0)
		return Status::Errno(fmt::format("attach to tap {} (TUNSETIFF; a tap of another "
						 "owner, or not a tap?)", name));
	return FromFd(std::move(fd), name, out);
}

Status NetLink::FromFd(UniqueFd fd, std::string name, std::unique_ptr<NetLink> *out)
{
	int fl = fcntl(fd.get(), F_GETFL);
	if (fl < 0 || fcntl(fd.get(), F_SETFL, fl | O_NONBLOCK) < 0)
		return Status::Errno("make the tap non-blocking");
	std::unique_ptr<NetLink> l(new NetLink);
	l->fd_ = std::move(fd);
	l->name_ = std::move(name);
	*out = std::move(l);
	return Status::Ok();
}

size_t NetLink::Receive(uint8_t *buf)
{
	for (;;) {
		// One byte more than a frame: a longer one is seen as such.
		uint8_t big[kMaxFrame + 1];
		ssize_t n = ::read(fd_.get(), big, sizeof(big));
		if (n <= 0)
			return 0;	// EAGAIN (or the tap went away: no input)
		if (static_cast<size_t>(n) > kMaxFrame || n < 14) {
			st_.rx_discarded++;
			continue;
		}
		memcpy(buf, big, n);
		st_.rx_frames++;
		return static_cast<size_t>(n);
	}
}

uint64_t NetLink::Discard()
{
	uint64_t n = 0;
	uint8_t big[kMaxFrame + 1];
	while (::read(fd_.get(), big, sizeof(big)) > 0)
		n++;
	st_.rx_discarded += n;
	return n;
}

void NetLink::WriteLocked(const Frame &f)
{
	// A full tap queue (or no reader) loses the frame, as a NIC would.
	if (::write(fd_.get(), f.data.data(), f.data.size()) == static_cast<ssize_t>(f.data.size()))
		st_.tx_sent++;
	else
		st_.tx_write_errors++;
	sent_pos_.store(f.pos, std::memory_order_release);
	if (f.seq + 1 > sent_count_.load(std::memory_order_relaxed))
		sent_count_.store(f.seq + 1, std::memory_order_release);
}

void NetLink::Send(const uint8_t *data, size_t len)
{
	std::lock_guard<std::mutex> g(mu_);
	Frame f;
	f.seq = seq_++;
	f.pos = pos_;
	f.tag = tag_;
	f.at_ns = MonotonicNs();
	f.data.assign(data, data + len);
	st_.tx_frames++;
	switch (mode_) {
	case kDirect:
		WriteLocked(f);
		break;
	case kHold:
		q_.push_back(std::move(f));
		PublishLocked();
		break;
	case kEpochs:	// not running: only after a misuse; keep it
	case kReplay:
		if (q_.size() == kReplayKeep) {
			q_.pop_front();	// the log never said it was sent: assume so
			st_.replay_overflow++;
		}
		q_.push_back(std::move(f));
		break;
	}
}

void NetLink::Release(uint64_t ack)
{
	std::lock_guard<std::mutex> g(mu_);
	if (mode_ != kHold)
		return;
	uint64_t now = 0;
	while (!q_.empty() && q_.front().tag <= ack) {
		if (!now)
			now = MonotonicNs();
		uint64_t held = now > q_.front().at_ns ? now - q_.front().at_ns : 0;
		hist_.Add(held);
		st_.hold.released++;
		st_.hold.hold_ns_total += held;
		WriteLocked(q_.front());
		q_.pop_front();
	}
	if (now)
		PublishLocked();
}

void NetLink::Forget(uint64_t pos)
{
	std::lock_guard<std::mutex> g(mu_);
	if (mode_ != kReplay)
		return;
	while (!q_.empty() && q_.front().pos <= pos)
		q_.pop_front();
}

void NetLink::ForgetSent(uint64_t count)
{
	std::lock_guard<std::mutex> g(mu_);
	if (mode_ != kEpochs)
		return;
	forgot_ = std::max(forgot_, count);
	while (!q_.empty() && q_.front().seq < forgot_)
		q_.pop_front();
}

void NetLink::Retag(uint64_t from, uint64_t to)
{
	std::lock_guard<std::mutex> g(mu_);
	for (auto it = q_.rbegin(); it != q_.rend() && it->tag == from; ++it)
		it->tag = to;
}

uint64_t NetLink::SendReplayed()
{
	std::lock_guard<std::mutex> g(mu_);
	uint64_t n = q_.size();
	for (const Frame &f : q_)
		WriteLocked(f);
	q_.clear();
	st_.replay_sent += n;
	return n;
}

void NetLink::Announce(const uint8_t mac[6])
{
	// RARP request "reverse request: who is mac" from mac to broadcast,
	// padded to the 60-byte minimum (what QEMU's self-announce sends).
	uint8_t f[60] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	memcpy(f + 6, mac, 6);
	const uint8_t rest[] = {0x80, 0x35,		// ethertype RARP
				0x00, 0x01, 0x08, 0x00,	// Ethernet, IPv4
				6, 4, 0x00, 0x03};	// sizes, op 3
	memcpy(f + 12, rest, sizeof(rest));
	memcpy(f + 22, mac, 6);		// sender MAC; sender IP 0
	memcpy(f + 32, mac, 6);		// target MAC; target IP 0
	std::lock_guard<std::mutex> g(mu_);
	if (::write(fd_.get(), f, sizeof(f)) != sizeof(f))
		st_.tx_write_errors++;
}

size_t NetLink::held() const
{
	std::lock_guard<std::mutex> g(mu_);
	return q_.size();
}

NetLink::Stats NetLink::stats() const
{
	std::lock_guard<std::mutex> g(mu_);
	Stats s = st_;
	s.held = mode_ == kHold ? q_.size() : 0;
	s.replay_kept = mode_ == kReplay || mode_ == kEpochs ? q_.size() : 0;
	s.hold.held = s.held;
	s.hold.hold_ns_p50 = hist_.Get(50);
	s.hold.hold_ns_p99 = hist_.Get(99);
	s.hold.hold_ns_max = hist_.max();
	return s;
}

std::vector<NetLink::Frame> NetLink::pending() const
{
	std::lock_guard<std::mutex> g(mu_);
	return {q_.begin(), q_.end()};
}

void NetLink::SetPending(std::vector<Frame> frames)
{
	std::lock_guard<std::mutex> g(mu_);
	switch (mode_) {
	case kDirect:
		for (const Frame &f : frames)
			WriteLocked(f);
		break;
	case kHold:
		q_.assign(frames.begin(), frames.end());
		for (Frame &f : q_)
			f.tag = 0, f.at_ns = MonotonicNs();
		break;
	case kEpochs:
		q_.clear();
		for (Frame &f : frames)
			if (f.seq >= forgot_)
				q_.push_back(std::move(f));
		for (Frame &f : q_)
			f.tag = 0, f.at_ns = 0;
		break;
	case kReplay: {
		// Ours are a superset of the primary's, except for those sent
		// before our log started (a FULL checkpoint): add those, in
		// front, in order.
		uint64_t first = q_.empty() ? UINT64_MAX : q_.front().seq;
		std::deque<Frame> older;
		for (Frame &f : frames)
			if (f.seq < first)
				older.push_back(std::move(f));
		q_.insert(q_.begin(), std::make_move_iterator(older.begin()),
			  std::make_move_iterator(older.end()));
		while (q_.size() > kReplayKeep) {
			q_.pop_front();
			st_.replay_overflow++;
		}
		break;
	}
	}
}

} // namespace kvmft::vmm
