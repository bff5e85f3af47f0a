// primary.cc - primary side of an FT session: connect over the first
// working path, resume from the secondary's stored position, ship frames,
// apply ACKs (output rule), heartbeats, failover to the next path.
#include "primary.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "channel/unix_msg.h"

namespace kvmft::logd {

using kvmft::Frame;
using kvmft::FrameDecoder;
using kvmft::Status;

namespace {

constexpr size_t kOutLimit = 1u << 20; // queued bytes before we wait

} // namespace

Primary::Primary(Env env, std::string name, const Peer *peer, kvmft::RingSet rings,
		 kvmft::UniqueFd ack_fd)
	: env_(env), name_(std::move(name)), peer_(peer), rings_(std::move(rings)),
	  ack_fd_(std::move(ack_fd))
{
	for (uint32_t i = 0; i < rings_.size(); i++)
		readers_.emplace_back(rings_.ring(i));
}

Primary::~Primary() { Stop(); }

void Primary::Start() { thread_ = std::thread([this] { Run(); }); }

void Primary::Stop()
{
	stop_ = true;
	if (thread_.joinable())
		thread_.join();
}

void Primary::SetState(const char *s, const std::string &err)
{
	std::lock_guard<std::mutex> g(mu_);
	state_ = s;
	if (!err.empty())
		last_error_ = err;
}

void Primary::Sleep(int ms)
{
	for (int i = 0; i < ms && !stop_; i += 10)
		usleep(10000);
}

void Primary::Run()
{
	SetState("connecting");
	while (!stop_) {
		std::unique_ptr<Link> l = Connect();
		if (!l)
			continue;
		Status st = Serve(l.get());
		if (stop_)
			break;
		path_ = (static_cast<size_t>(active_path_) + 1) % peer_->paths.size();
		SetState("disconnected", st.msg());
		env_.events->Emit("disconnected", name_, st.msg(),
				  {{"path", peer_->paths[static_cast<size_t>(active_path_)].str()}});
		std::lock_guard<std::mutex> g(mu_);
		reconnects_++;
	}
	std::lock_guard<std::mutex> g(mu_);
	if (state_ != "failed" && state_ != "ended")
		state_ = "stopped";
}

std::unique_ptr<Link> Primary::Connect()
{
	for (int round = 0; !stop_; round++) {
		for (size_t k = 0; k < peer_->paths.size() && !stop_; k++) {
			size_t i = (path_ + k) % peer_->paths.size();
			Status err;
			std::unique_ptr<Link> l = TryPath(i, &err);
			if (l) {
				if (active_path_ >= 0 && static_cast<size_t>(active_path_) != i) {
					env_.events->Emit("path_switch", name_,
							  "now on " + peer_->paths[i].str(),
							  {{"path", peer_->paths[i].str()}, {"index", i}});
					std::lock_guard<std::mutex> g(mu_);
					path_switches_++;
				}
				active_path_ = static_cast<int>(i);
				path_ = i;
				return l;
			}
			if (stop_)
				break;
			SetState("connecting", err.msg());
			bool rejected = err.err() == EACCES;
			env_.events->Emit(rejected ? "peer_rejected" : "path_failed", name_,
					  peer_->paths[i].str() + ": " + err.msg(),
					  {{"path", peer_->paths[i].str()}, {"error", err.msg()}});
		}
		Sleep(std::min(50 << std::min(round, 5), 1000));
	}
	return nullptr;
}

std::unique_ptr<Link> Primary::TryPath(size_t i, Status *err)
{
	const Config &c = *env_.cfg;
	const Path &p = peer_->paths[i];
	kvmft::UniqueFd fd;
	kvmft::SockOpts o{p.dev, 2 * c.heartbeat_timeout_ms};
	*err = kvmft::ConnectBound(p.local, p.peer, o, static_cast<int>(c.connect_timeout_ms), &fd);
	if (!err->ok())
		return nullptr;
	auto conn = std::make_unique<kvmft::TlsConn>(env_.client_tls, std::move(fd));
	*err = conn->Handshake(kvmft::PeerCheck{peer_->name, peer_->fingerprint},
			       static_cast<int>(c.connect_timeout_ms));
	if (!err->ok())
		return nullptr;
	auto l = std::make_unique<Link>(std::move(conn),
					LinkTimes{c.heartbeat_interval_ms, c.heartbeat_timeout_ms});
	nlohmann::json hello = {{"session", name_}, {"host", c.host_name},
				{"rings", rings_.size()}, {"ring_bytes", rings_.ring(0).size}};
	std::string h = hello.dump();
	l->Queue(kvmft::kFrameHello, 0, 0, h.data(), h.size());
	uint64_t deadline = kvmft::MonotonicNs() + c.connect_timeout_ms * 1000000ull;
	while (kvmft::MonotonicNs() < deadline) {
		bool ready;
		*err = l->Pump(-1, 10, &ready);
		if (!err->ok())
			return nullptr;
		Frame f;
		FrameDecoder::Result r = l->Next(&f, err);
		if (r == FrameDecoder::kError)
			return nullptr;
		if (r == FrameDecoder::kNeedMore)
			continue;
		std::string text(reinterpret_cast<const char *>(f.payload), f.hdr.len);
		if (f.hdr.type == kvmft::kFrameBye) {
			*err = Status::Error(ECONNREFUSED, "secondary refused the session: " + text);
			return nullptr;
		}
		nlohmann::json w;
		if (f.hdr.type != kvmft::kFrameWelcome ||
		    !kvmft::ParseJson(text.data(), text.size(), 4096, "WELCOME", &w).ok() ||
		    !w.contains("stored_seq") || !w["stored_seq"].is_number_unsigned()) {
			*err = Status::Error(EPROTO, "bad answer to HELLO");
			return nullptr;
		}
		*err = Resume(w["stored_seq"].get<uint64_t>());
		if (!err->ok()) {
			stop_ = true;
			SetState("failed", err->msg());
			env_.events->Emit("session_failed", name_, err->msg());
			return nullptr;
		}
		env_.events->Emit("connected", name_,
				  "to " + l->conn().peer_name() + " on " + p.str() + ", resuming after frame " +
					  std::to_string(acked_seq_),
				  {{"path", p.str()}, {"peer", l->conn().peer_name()},
				   {"resume_seq", acked_seq_}});
		return l;
	}
	*err = Status::Error(ETIMEDOUT, "no answer to HELLO");
	return nullptr;
}

Status Primary::Resume(uint64_t stored)
{
	if (stored < acked_seq_)
		return Status::Error(EPROTO, "secondary lost acknowledged log: it has frame " +
						     std::to_string(stored) + ", acknowledged " +
						     std::to_string(acked_seq_));
	if (stored >= next_seq_)
		return Status::Error(EPROTO, "secondary claims frame " + std::to_string(stored) +
						     " that was never sent");
	while (!unacked_.empty() && unacked_.front().seq <= stored) {
		readers_[unacked_.front().ring].Ack(unacked_.front().end);
		unacked_.pop_front();
	}
	std::lock_guard<std::mutex> g(mu_);
	acked_seq_ = stored;
	unacked_.clear();
	unconsumed_.clear();
	for (kvmft::RingReader &r : readers_)
		r.Rewind();
	next_seq_ = stored + 1;
	return Status::Ok();
}

Status Primary::FillFrames(Link *l)
{
	for (bool any = true; any;) {
		any = false;
		for (uint32_t r = 0; r < readers_.size(); r++) {
			if (l->unsent() >= kOutLimit)
				return Status::Ok();
			if (!readers_[r].HasUnsent())
				continue;
			std::vector<uint8_t> *out = l->out();
			size_t start = kvmft::BeginFrame(out);
			uint64_t end = 0, ts = 0;
			size_t n = 0;
			Status st = readers_[r].Read(env_.cfg->frame_bytes, out, &end, &ts, &n);
			if (!st.ok() || n == 0) {
				out->resize(start);
				if (!st.ok())
					return st;
				continue;
			}
			kvm_ft_rec_hdr first;
			std::memcpy(&first, out->data() + start + kvmft::kFrameHdrLen, sizeof(first));
			kvmft::FinishFrame(out, start, kvmft::kFrameData, r, next_seq_);
			uint64_t now = kvmft::MonotonicNs();
			unacked_.push_back(Sent{next_seq_, r, end, now, first.ts_ns});
			unconsumed_.push_back(unacked_.back());
			next_seq_++;
			std::lock_guard<std::mutex> g(mu_);
			frames_++;
			records_ += n;
			bytes_ += out->size() - start;
			bw_.Add(out->size() - start);
			any = true;
		}
	}
	return Status::Ok();
}

Status Primary::OnAck(const Frame &f, Link *l)
{
	kvmft::AckPayload a;
	if (f.hdr.len != sizeof(a))
		return Status::Error(EPROTO, "ACK with a payload of " + std::to_string(f.hdr.len) +
						     " bytes");
	std::memcpy(&a, f.payload, sizeof(a));
	if (f.hdr.seq >= next_seq_ || a.consumed_seq > f.hdr.seq)
		return Status::Error(EPROTO, "ACK for frame " + std::to_string(f.hdr.seq) +
						     " that was never sent");
	uint64_t now = kvmft::MonotonicNs();
	std::lock_guard<std::mutex> g(mu_);
	bool moved = false;
	while (!unacked_.empty() && unacked_.front().seq <= f.hdr.seq) {
		const Sent &s = unacked_.front();
		readers_[s.ring].Ack(s.end); // output rule: publishes ack_pos
		ack_lat_.Add(now - s.send_ns);
		unacked_.pop_front();
		moved = true;
	}
	// Output rule: wake the VMM's releaser. The write follows the
	// release store of ack_pos; its read of the eventfd precedes its
	// acquire load of ack_pos, so it sees this position or a later one.
	if (moved && ack_fd_.valid()) {
		uint64_t one = 1;
		ssize_t r = write(ack_fd_.get(), &one, sizeof(one));
		(void)r; // EAGAIN: the counter is saturated, a wakeup is pending anyway
	}
	acked_seq_ = std::max(acked_seq_, f.hdr.seq);
	while (!unconsumed_.empty() && unconsumed_.front().seq <= a.consumed_seq)
		unconsumed_.pop_front();
	// vLockstep interval on the primary's clock only: the secondary
	// consumed everything before the first unconsumed frame about half a
	// round trip ago, and is at least that frame's capture time behind.
	double lag = 0;
	if (!unconsumed_.empty()) {
		double seen = static_cast<double>(now) - l->rtt_ns() / 2;
		lag = std::max(0.0, seen - static_cast<double>(unconsumed_.front().first_ts));
	}
	lag_ns_.Add(lag);
	return Status::Ok();
}

bool Primary::ArmWakeup()
{
	for (uint32_t i = 0; i < rings_.size(); i++) {
		kvm_ft_ring_ctl *c = rings_.ring(i).ctl;
		__atomic_fetch_or(&c->flags, KVM_FT_CTL_WAKEUP, __ATOMIC_RELAXED);
	}
	// Full barrier: pairs with the producer's barrier between publishing
	// producer_pos and reading ctl->flags (Documentation/ring.md).
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (const kvmft::RingReader &r : readers_)
		if (r.HasUnsent())
			return false;
	return true;
}

void Primary::Publish(Link *l)
{
	std::lock_guard<std::mutex> g(mu_);
	bw_.Tick(kvmft::MonotonicNs());
	rtt_ns_ = l->rtt_ns();
	rtt_min_ns_ = l->rtt_min_ns();
}

Status Primary::Serve(Link *l)
{
	SetState("connected");
	const int wake_fd = rings_.event_fd() >= 0 ? rings_.event_fd() : rings_.fd();
	while (!stop_) {
		Status st = FillFrames(l);
		if (!st.ok()) {
			stop_ = true;
			SetState("failed", st.msg());
			env_.events->Emit("session_failed", name_, "bad log ring: " + st.msg());
			return st;
		}
		uint64_t now = kvmft::MonotonicNs();
		int timeout = std::min(l->NextDueMs(now), 100);
		// As Nagle's algorithm: with nothing in flight the first new
		// record wakes us (ring wakeup) and goes out at once; with frames
		// in flight new records wait for the ACK, which wakes us through
		// the socket, and then leave together. So a trickle (console
		// output) is not delayed and a stream goes out in full frames
		// rather than one wakeup and one frame per record.
		int wait_fd = -1;
		if (l->unsent() < kOutLimit && unacked_.empty()) {
			if (owner_gone_ && !ArmWakeup())
				timeout = 0;
			else if (owner_gone_)
				return EndSession(l);
			else if (ArmWakeup())
				wait_fd = wake_fd;
			else
				timeout = 0;
		}
		bool ready = false, hup = false;
		st = l->Pump(wait_fd, timeout, &ready, &hup);
		if (hup) {
			// The wakeup fd hung up: a kvm_ft session fd whose VM is gone,
			// or a VMM's eventfd end gone with it. Polling it again would
			// return at once, forever. What the ring still holds is
			// shipped; then the session ends.
			owner_gone_ = true;
			env_.events->Emit("owner_gone", name_, "wakeup fd hung up: shipping what "
					  "the ring holds, then ending the session");
		}
		for (uint32_t i = 0; i < rings_.size(); i++)
			__atomic_fetch_and(&rings_.ring(i).ctl->flags, ~KVM_FT_CTL_WAKEUP,
					   __ATOMIC_RELAXED);
		if (ready && rings_.event_fd() >= 0) {
			uint64_t v;
			ssize_t r = read(rings_.event_fd(), &v, sizeof(v));
			(void)r;
		}
		if (!st.ok())
			return st;
		Frame f;
		FrameDecoder::Result r;
		while ((r = l->Next(&f, &st)) == FrameDecoder::kFrame) {
			if (f.hdr.type == kvmft::kFrameAck)
				st = OnAck(f, l);
			else if (f.hdr.type == kvmft::kFrameBye)
				st = Status::Error(ECONNRESET, "secondary closed: " +
					std::string(reinterpret_cast<const char *>(f.payload), f.hdr.len));
			else
				st = Status::Error(EPROTO, std::string("unexpected ") +
							   kvmft::FrameTypeName(f.hdr.type) + " frame");
			if (!st.ok())
				break;
		}
		if (!st.ok()) {
			env_.events->Emit("frame_rejected", name_, st.msg());
			return st;
		}
		now = kvmft::MonotonicNs();
		st = l->Heartbeat(now);
		if (!st.ok()) {
			env_.events->Emit("peer_timeout", name_, st.msg(),
					  {{"silent_ms", l->silent_ns(now) / 1000000},
					   {"timeout_ms", env_.cfg->heartbeat_timeout_ms}});
			return st;
		}
		Publish(l);
	}
	const char bye[] = "session stopped";
	l->Queue(kvmft::kFrameBye, 0, 0, bye, sizeof(bye) - 1);
	bool ready;
	l->Pump(-1, 0, &ready);
	return Status::Ok();
}

Status Primary::EndSession(Link *l)
{
	stop_ = true;
	ended_ = true;
	const char bye[] = "session ended: its VM is gone";
	l->Queue(kvmft::kFrameBye, 0, 0, bye, sizeof(bye) - 1);
	bool ready;
	l->Pump(-1, 0, &ready);
	SetState("ended");
	return Status::Ok();
}

nlohmann::json Primary::Stats() const
{
	std::lock_guard<std::mutex> g(mu_);
	kvmft::RingSet::Usage use = rings_.usage();
	// Output rule, as the VMM publishes it in the producer pages.
	kvmft::RingOutputs out = rings_.outputs();
	double hold_us = out.released ? static_cast<double>(out.hold_ns_total) /
						static_cast<double>(out.released) / 1000.0
				      : 0;
	nlohmann::json j = {
		{"session", name_}, {"role", "primary"}, {"state", state_},
		{"peer", peer_->name},
		{"path", active_path_ >= 0 ? peer_->paths[static_cast<size_t>(active_path_.load())].str()
					   : ""},
		{"frames_sent", frames_}, {"records_sent", records_}, {"bytes_sent", bytes_},
		{"acked_seq", acked_seq_}, {"reconnects", reconnects_},
		{"path_switches", path_switches_}, {"log_bandwidth_Bps", bw_.bps()},
		{"ack_latency_us", {{"p50", ack_lat_.Get(50) / 1000.0},
				    {"p99", ack_lat_.Get(99) / 1000.0},
				    {"samples", ack_lat_.count()}}},
		{"rtt_us", rtt_ns_ / 1000.0}, {"rtt_min_us", rtt_min_ns_ / 1000.0},
		{"vlockstep_interval_s", lag_ns_.get() / 1e9},
		{"outputs_held", out.held}, {"outputs_released", out.released},
		{"hold_time_us", hold_us},
		{"buffer_used", use.used}, {"buffer_size", use.size}, {"rings", rings_.size()},
	};
	if (!last_error_.empty())
		j["last_error"] = last_error_;
	return j;
}

} // namespace kvmft::logd
