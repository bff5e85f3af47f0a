// secondary.cc - secondary side of an FT session: verify, store, ACK.
#include "secondary.h"

#include <algorithm>
#include <cstring>

namespace kvmft::logd {

using kvmft::Frame;
using kvmft::FrameDecoder;
using kvmft::Status;

Secondary::Secondary(Env env, std::string name, std::string peer)
	: env_(env), name_(std::move(name)), peer_(std::move(peer))
{
}

Status Secondary::Init(uint32_t rings, uint32_t ring_bytes)
{
	Status st = kvmft::RingSet::CreateMemfd(rings, ring_bytes, &rs_);
	if (!st.ok())
		return st;
	for (uint32_t i = 0; i < rings; i++)
		writers_.emplace_back(rs_.ring(i), rs_.event_fd());
	next_rec_.assign(rings, kvmft::kRecSeqUnset);
	return Status::Ok();
}

bool Secondary::Fits(uint32_t rings, uint32_t ring_bytes, const std::string &peer) const
{
	return rings == rs_.size() && ring_bytes == rs_.ring(0).size && peer == peer_;
}

void Secondary::SetState(const char *s, const std::string &err)
{
	std::lock_guard<std::mutex> g(mu_);
	state_ = s;
	if (!err.empty())
		last_error_ = err;
}

void Secondary::Serve(std::unique_ptr<Link> l)
{
	takeover_++;
	std::unique_lock<std::mutex> own(own_);
	takeover_--;
	uint64_t stored;
	{
		std::lock_guard<std::mutex> g(mu_);
		stored = stored_;
		connections_++;
	}
	recv_ = kvmft::SeqCheck(stored);
	pending_.clear();
	pending_bytes_ = 0;
	acked_stored_ = stored;
	nlohmann::json w = {{"stored_seq", stored}, {"host", env_.cfg->host_name}};
	std::string ws = w.dump();
	l->Queue(kvmft::kFrameWelcome, 0, 0, ws.data(), ws.size());
	env_.events->Emit("connected", name_,
			  "from " + l->conn().peer_name() + ", stored up to frame " +
				  std::to_string(stored),
			  {{"peer", l->conn().peer_name()}, {"stored_seq", stored}});
	SetState("connected");
	Status st = Loop(l.get());
	for (kvmft::RingWriter &w : writers_) // whatever Loop() stored last
		w.Wake();
	if (stop_ || takeover_) {
		bool ready;
		std::string bye = stop_ ? "session removed on the secondary"
					: "replaced by a newer connection";
		l->Queue(kvmft::kFrameBye, 0, 0, bye.data(), bye.size());
		l->Pump(-1, 0, &ready);
		SetState(stop_ ? "stopped" : "connected");
		return;
	}
	SetState("disconnected", st.msg());
	env_.events->Emit("disconnected", name_, st.msg());
}

Status Secondary::Loop(Link *l)
{
	while (!stop_ && !takeover_) {
		uint64_t now = kvmft::MonotonicNs();
		int timeout = pending_.empty() ? std::min(l->NextDueMs(now), 100) : 1;
		bool ready;
		Status st = l->Pump(-1, timeout, &ready);
		if (!st.ok())
			return st;
		Frame f;
		FrameDecoder::Result r;
		while ((r = l->Next(&f, &st)) == FrameDecoder::kFrame) {
			if (f.hdr.type == kvmft::kFrameData)
				st = OnData(f);
			else if (f.hdr.type == kvmft::kFrameBye)
				return Status::Error(ECONNRESET, "primary closed: " +
					std::string(reinterpret_cast<const char *>(f.payload), f.hdr.len));
			else
				st = Status::Error(EPROTO, std::string("unexpected ") +
							   kvmft::FrameTypeName(f.hdr.type) + " frame");
			if (!st.ok())
				break;
		}
		if (st.ok())
			st = DrainPending();
		if (!st.ok()) {
			{
				std::lock_guard<std::mutex> g(mu_);
				rejected_++;
			}
			env_.events->Emit("frame_rejected", name_, st.msg());
			return st;
		}
		uint64_t stored, consumed = Consumed();
		{
			std::lock_guard<std::mutex> g(mu_);
			stored = stored_;
			bw_.Tick(kvmft::MonotonicNs());
			rtt_ns_ = l->rtt_ns();
		}
		if (stored != acked_stored_ || consumed != acked_consumed_) {
			kvmft::AckPayload a{consumed, 0};
			l->Queue(kvmft::kFrameAck, 0, stored, &a, sizeof(a));
			acked_stored_ = stored;
			acked_consumed_ = consumed;
			// The ACK goes out first, the consumer's wakeup (a syscall
			// that may also preempt us) after it.
			st = l->Send();
			if (!st.ok())
				return st;
		}
		for (kvmft::RingWriter &w : writers_)
			w.Wake();
		now = kvmft::MonotonicNs();
		st = l->Heartbeat(now);
		if (!st.ok()) {
			env_.events->Emit("peer_timeout", name_, st.msg(),
					  {{"silent_ms", l->silent_ns(now) / 1000000},
					   {"timeout_ms", env_.cfg->heartbeat_timeout_ms}});
			return st;
		}
	}
	return Status::Ok();
}

Status Secondary::OnData(const Frame &f)
{
	Status st = recv_.Accept(f.hdr.seq);
	if (!st.ok())
		return st;
	if (f.hdr.stream >= writers_.size())
		return Status::Error(EPROTO, "DATA for ring " + std::to_string(f.hdr.stream) +
						     " of a session with " +
						     std::to_string(writers_.size()));
	bool stored = false;
	if (pending_.empty()) {
		st = Store(f.hdr.seq, f.hdr.stream, f.payload, f.hdr.len, &stored);
		if (!st.ok() || stored)
			return st;
	}
	// The primary never has more than its ring unACKed, so this stays
	// within one ring's worth; more is a protocol violation.
	pending_bytes_ += f.hdr.len;
	if (pending_bytes_ > 2ull * rs_.ring(0).size * rs_.size() + kvmft::kFrameMaxPayload)
		return Status::Error(EPROTO, "primary sent more than its log buffer unACKed");
	pending_.push_back(Pending{f.hdr.seq, f.hdr.stream,
				   std::vector<uint8_t>(f.payload, f.payload + f.hdr.len)});
	std::lock_guard<std::mutex> g(mu_);
	stalls_++;
	return Status::Ok();
}

Status Secondary::DrainPending()
{
	while (!pending_.empty()) {
		Pending &p = pending_.front();
		bool stored = false;
		Status st = Store(p.seq, p.ring, p.payload.data(), p.payload.size(), &stored);
		if (!st.ok() || !stored)
			return st;
		pending_bytes_ -= p.payload.size();
		pending_.pop_front();
	}
	return Status::Ok();
}

Status Secondary::Store(uint64_t seq, uint32_t ring, const uint8_t *p, size_t len, bool *stored)
{
	*stored = false;
	uint64_t next = next_rec_[ring];
	std::vector<std::pair<const uint8_t *, uint32_t>> recs;
	std::vector<uint32_t> lens;
	Status st = kvmft::WalkRecords(p, len, ring, &next, [&](const uint8_t *r, uint32_t n) {
		recs.emplace_back(r, n);
		lens.push_back(n);
	});
	if (!st.ok())
		return st.Wrap("DATA frame " + std::to_string(seq));
	if (recs.empty())
		return Status::Error(EPROTO, "empty DATA frame " + std::to_string(seq));
	kvmft::RingWriter &w = writers_[ring];
	if (!w.Fits(lens))
		return Status::Ok();
	for (auto &[r, n] : recs)
		w.Put(r, n);
	uint64_t end = w.PublishQuiet(); // Wake() once the ACK is out
	next_rec_[ring] = next;
	stored_q_.push_back(Stored{seq, ring, end});
	*stored = true;
	std::lock_guard<std::mutex> g(mu_);
	stored_ = seq;
	frames_++;
	records_ += recs.size();
	bytes_ += len;
	bw_.Add(len);
	return Status::Ok();
}

uint64_t Secondary::Consumed()
{
	while (!stored_q_.empty() &&
	       writers_[stored_q_.front().ring].consumed() >= stored_q_.front().end) {
		consumed_ = stored_q_.front().seq;
		stored_q_.pop_front();
	}
	return consumed_;
}

nlohmann::json Secondary::Stats() const
{
	std::lock_guard<std::mutex> g(mu_);
	kvmft::RingSet::Usage use = rs_.usage();
	nlohmann::json j = {
		{"session", name_}, {"role", "secondary"}, {"state", state_}, {"peer", peer_},
		{"frames_stored", frames_}, {"records_stored", records_}, {"bytes_stored", bytes_},
		{"stored_seq", stored_}, {"connections", connections_},
		{"frames_rejected", rejected_}, {"stalls", stalls_},
		{"log_bandwidth_Bps", bw_.bps()}, {"rtt_us", rtt_ns_ / 1000.0},
		{"buffer_used", use.used}, {"buffer_size", use.size}, {"rings", rs_.size()},
	};
	if (!last_error_.empty())
		j["last_error"] = last_error_;
	return j;
}

} // namespace kvmft::logd
