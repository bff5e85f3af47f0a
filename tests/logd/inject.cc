// ftlog-inject - test tool: plays a misbehaving primary against a real
// ftlogd secondary. Over an authenticated connection it sends a good
// DATA frame, then one fault per connection (corrupt payload, reordered
// frame, replayed frame, truncated frame, a frame whose records skip a
// sequence number), each time expecting the secondary to drop the
// connection without storing anything, and to welcome the next
// connection at the last good frame. Finally it sends the next good frame
// and waits for its ACK. Exit 0 if every expectation held.
//
//   ftlog-inject CA CERT KEY PEER_NAME PEER_ADDR:PORT SESSION
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "channel/net.h"
#include "channel/tls.h"
#include "diag.h"
#include "link.h"
#include "ring/ring.h"

using namespace kvmft;
using nlohmann::json;

namespace {

struct Ctx {
	std::shared_ptr<TlsContext> tls;
	SockAddr peer;
	std::string peer_name, session;
};

// DATA payload with DIAG records first..first+n-1 (record seq = index).
std::vector<uint8_t> Diags(uint64_t first, int n, int skip_at = -1)
{
	std::vector<uint8_t> out, rec;
	for (int i = 0; i < n; i++) {
		uint64_t idx = first + static_cast<uint64_t>(i);
		kvmft::logd::MakeDiag(idx, 64, &rec);
		kvm_ft_rec_hdr h;
		std::memcpy(&h, rec.data(), sizeof(h));
		h.seq = idx + (skip_at >= 0 && i >= skip_at ? 1 : 0);
		std::memcpy(rec.data(), &h, sizeof(h));
		out.insert(out.end(), rec.begin(), rec.end());
	}
	return out;
}

std::vector<uint8_t> DataFrame(uint64_t seq, const std::vector<uint8_t> &payload)
{
	std::vector<uint8_t> f;
	AppendFrame(&f, kFrameData, 0, seq, payload.data(), payload.size());
	return f;
}

// Connects, says HELLO, returns the link and the secondary's stored seq.
std::unique_ptr<kvmft::logd::Link> Open(const Ctx &c, uint64_t *stored)
{
	UniqueFd fd;
	Status st = ConnectBound(SockAddr(), c.peer, SockOpts{}, 2000, &fd);
	auto conn = std::make_unique<TlsConn>(c.tls, std::move(fd));
	if (st.ok())
		st = conn->Handshake(PeerCheck{c.peer_name, ""}, 2000);
	if (!st.ok()) {
		std::fprintf(stderr, "inject: connect: %s\n", st.msg().c_str());
		return nullptr;
	}
	auto l = std::make_unique<kvmft::logd::Link>(std::move(conn), kvmft::logd::LinkTimes{100, 5000});
	std::string h = json{{"session", c.session}, {"host", "a"}, {"rings", 1}, {"ring_bytes", 65536}}.dump();
	l->Queue(kFrameHello, 0, 0, h.data(), h.size());
	for (int i = 0; i < 500; i++) {
		bool ready;
		if (!l->Pump(-1, 10, &ready).ok())
			return nullptr;
		kvmft::Frame f;
		if (l->Next(&f, &st) != FrameDecoder::kFrame)
			continue;
		json w = json::parse(f.payload, f.payload + f.hdr.len, nullptr, false);
		if (f.hdr.type != kFrameWelcome || !w.contains("stored_seq"))
			return nullptr;
		*stored = w["stored_seq"].get<uint64_t>();
		return l;
	}
	return nullptr;
}

// Sends raw bytes; then true if the secondary closed the connection
// (after a BYE or not) within 3 s, false if it ACKed instead.
bool Refused(kvmft::logd::Link *l, const std::vector<uint8_t> &bytes, uint64_t *acked)
{
	l->out()->insert(l->out()->end(), bytes.begin(), bytes.end());
	for (int i = 0; i < 300; i++) {
		bool ready;
		if (!l->Pump(-1, 10, &ready).ok())
			return true;
		kvmft::Frame f;
		Status st;
		while (l->Next(&f, &st) == FrameDecoder::kFrame) {
			if (f.hdr.type == kFrameBye)
				return true;
			if (f.hdr.type == kFrameAck)
				*acked = f.hdr.seq;
		}
	}
	return false;
}

bool Expect(bool ok, const char *what)
{
	std::printf("%s: %s\n", ok ? "ok" : "FAILED", what);
	return ok;
}

} // namespace

int main(int argc, char **argv)
{
	if (argc != 7) {
		std::fprintf(stderr, "usage: ftlog-inject CA CERT KEY PEER_NAME ADDR:PORT SESSION\n");
		return 2;
	}
	Ctx c;
	c.peer_name = argv[4];
	c.session = argv[6];
	if (!TlsContext::Create(TlsConfig{argv[1], argv[2], argv[3]}, false, &c.tls).ok() ||
	    !ParseSockAddr(argv[5], false, &c.peer).ok())
		return 2;
	bool ok = true;
	uint64_t stored = 99, acked = 0;
	auto l = Open(c, &stored);
	ok &= Expect(l && stored == 0, "new session welcomed at frame 0");
	ok &= Expect(l && !Refused(l.get(), DataFrame(1, Diags(0, 10)), &acked) && acked == 1,
		     "good frame 1 ACKed");

	auto bad = DataFrame(2, Diags(10, 10));
	bad[100] ^= 0x20;
	struct Fault {
		const char *what;
		std::vector<uint8_t> bytes;
		uint64_t stored_after;
	};
	auto good2 = DataFrame(2, Diags(10, 10));
	std::vector<uint8_t> replay = good2;
	replay.insert(replay.end(), good2.begin(), good2.end());
	auto half = DataFrame(3, Diags(20, 10));
	half.resize(half.size() / 2);
	std::vector<Fault> faults = {
		{"corrupt payload byte refused", bad, 1},
		{"reordered frame (3 before 2) refused", DataFrame(3, Diags(20, 10)), 1},
		{"replayed frame 2 refused", replay, 2},
		{"frame whose records skip a sequence number refused", DataFrame(3, Diags(20, 10, 4)), 2},
	};
	for (const Fault &f : faults) {
		uint64_t s = 99;
		l = Open(c, &s);
		ok &= Expect(l && Refused(l.get(), f.bytes, &acked), f.what);
		l = Open(c, &s);
		ok &= Expect(l && s == f.stored_after, "  and the session resumes at the last good frame");
	}
	// Truncated: half a frame, then the connection ends.
	uint64_t s = 99;
	l = Open(c, &s);
	l->out()->insert(l->out()->end(), half.begin(), half.end());
	bool ready;
	l->Pump(-1, 50, &ready);
	l.reset();
	l = Open(c, &s);
	ok &= Expect(l && s == 2, "truncated frame not stored");
	ok &= Expect(l && !Refused(l.get(), DataFrame(3, Diags(20, 10)), &acked) && acked == 3,
		     "good frame 3 ACKed after all that");
	return ok ? 0 : 1;
}
