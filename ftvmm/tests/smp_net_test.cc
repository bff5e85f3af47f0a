// smp_net_test.cc - virtio-net on 2 vCPUs (ftvmm/smp.h): the netecho guest
// on a socketpair instead of a tap. A reply is held until the ACK covers
// its epoch; held replies travel in the epochs and NET_SENT says which were
// sent; a secondary replays the epochs and goes live, sending the held
// replies the log did not report sent, and only those.
#include <catch2/catch.hpp>
#include "base/require_ok.h"
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fmt/format.h>
#include <mutex>
#include <thread>

#include "guest_run.h"
#include "ftlog/file.h"
#include "epoch/epochs.h"

using namespace kvmft;
using namespace kvmft::vmm;
using namespace kvmft::vmm::test;

namespace {

constexpr uint8_t kGuestMac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
constexpr uint8_t kPeerMac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
constexpr size_t kEth = 14, kIp = 20, kUdp = 8;

uint16_t Csum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;
	for (size_t i = 0; i + 1 < n; i += 2)
		s += uint32_t{p[i]} << 8 | p[i + 1];
	if (n & 1)
		s += uint32_t{p[n - 1]} << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return static_cast<uint16_t>(~s);
}

void Put16(uint8_t *p, size_t v)
{
	p[0] = static_cast<uint8_t>(v >> 8);
	p[1] = static_cast<uint8_t>(v);
}

// A datagram from 192.168.77.1 port 7 to the guest's 192.168.77.2 `port`.
std::vector<uint8_t> Udp(uint16_t port, const std::string &payload)
{
	std::vector<uint8_t> f(kEth + kIp + kUdp + payload.size());
	memcpy(&f[0], kGuestMac, 6);
	memcpy(&f[6], kPeerMac, 6);
	f[12] = 0x08;
	uint8_t *ip = &f[kEth];
	ip[0] = 0x45;
	Put16(ip + 2, kIp + kUdp + payload.size());
	ip[8] = 64;
	ip[9] = 17;
	const uint8_t addrs[8] = {192, 168, 77, 1, 192, 168, 77, 2};
	memcpy(ip + 12, addrs, 8);
	Put16(ip + 10, Csum(ip, kIp));
	uint8_t *u = ip + kIp;
	Put16(u, 7);
	Put16(u + 2, port);
	Put16(u + 4, kUdp + payload.size());
	memcpy(u + kUdp, payload.data(), payload.size());
	return f;
}

void Send(int fd, const std::vector<uint8_t> &f)
{
	REQUIRE(write(fd, f.data(), f.size()) == static_cast<ssize_t>(f.size()));
}

// One frame from the wire within timeout_ms (0: only one already there).
bool Recv(int fd, std::vector<uint8_t> *f, int timeout_ms)
{
	pollfd p{fd, POLLIN, 0};
	if (poll(&p, 1, timeout_ms) <= 0)
		return false;
	f->resize(2048);
	ssize_t n = read(fd, f->data(), f->size());
	if (n <= 0)
		return false;
	f->resize(static_cast<size_t>(n));
	return true;
}

// An echo reply: the guest's sequence number, then the payload.
struct Reply {
	uint64_t seq = 0;
	std::string payload;
};
Reply Parse(const std::vector<uint8_t> &f)
{
	Reply r;
	const size_t off = kEth + kIp + kUdp;
	REQUIRE(f.size() >= off + 8);
	CHECK(memcmp(&f[0], kPeerMac, 6) == 0);
	memcpy(&r.seq, &f[off], 8);
	r.payload.assign(f.begin() + off + 8, f.end());
	return r;
}

template <class F> bool WaitFor(F done)
{
	const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
	while (!done()) {
		if (std::chrono::steady_clock::now() > until)
			return false;
		std::this_thread::sleep_for(std::chrono::milliseconds(1));
	}
	return true;
}

// vm->Run in a thread of its own. If the test stops early (a failed
// REQUIRE) the VM is aborted and the thread joined, so that the failure
// is reported instead of a std::terminate, or a hang on a guest that
// never gets the frame that ends it.
struct Running {
	Epochs *vm;
	Status st;
	int status = -1;
	std::thread t;

	explicit Running(Epochs *v) : vm(v), t([this] { st = vm->Run(&status); }) {}
	~Running()
	{
		if (t.joinable()) {
			vm->Abort(Status::Error(ECANCELED, "the test stopped early"));
			t.join();
		}
	}
	void Join() { t.join(); }
};

// The state of a running VM's network path, for a failure's message.
std::string NetState(Epochs &vm, Booted &b)
{
	VirtioNet *net = b.m->net();
	NetLink *l = net->link();
	NetLink::Stats ls = l->stats();
	return fmt::format("{}; device: rx {} dropped {} buffers {}; link: rx {} tx {} sent {} "
			   "held {}; {} epochs, {} frames to the guest; console: {}",
			   vm.WakeState(), net->rx_frames(), net->rx_dropped(),
			   net->CanReceive() ? "yes" : "no", ls.rx_frames, ls.tx_frames, ls.tx_sent,
			   l->held(), vm.stats().epochs, vm.stats().net_rx, b.Output());
}

// A reply within 20 s, or a failure that says where the frames are.
void RecvReply(Epochs &vm, Booted &b, int fd, std::vector<uint8_t> *f)
{
	if (!Recv(fd, f, 20000))
		FAIL("no frame within 20 s: " << NetState(vm, b));
}

// A primary on 2 vCPUs: netecho on a socketpair (its other end `peer`)
// recording into a log file.
struct Primary {
	UniqueFd peer;
	Booted b;
	std::string path;
	std::unique_ptr<LogWriter> w;

	explicit Primary(const char *log)
	{
		int sv[2];
		REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
		peer.reset(sv[1]);
		Status bs = Boot("netecho", true, &b, 64ULL << 20, "", 2, UniqueFd(sv[0]));
		INFO(bs.msg());
		REQUIRE_OK(bs);
		path = TempPath(log);
		auto hdr = MakeFileHeader(KVM_FT_FILE_LOG, b.m->vm().mem_bytes(), b.image_hash, 0);
		hdr.nr_vcpus = 2;
		REQUIRE_OK(LogWriter::Create(path, hdr, &w));
	}
};

// A secondary on its own socketpair that applied log[0, cut).
struct Secondary {
	UniqueFd peer;
	Booted b;
	LogReader rd;
	std::unique_ptr<FileSource> src;
	std::unique_ptr<Epochs> vm;
	Status applied;
	int status = -1;

	Secondary(const std::vector<uint8_t> &log, size_t cut)
	{
		int sv[2];
		REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
		peer.reset(sv[1]);
		Status bs = Boot("netecho", false, &b, 64ULL << 20, "", 2, UniqueFd(sv[0]));
		INFO(bs.msg());
		REQUIRE_OK(bs);
		b.m->net()->link()->set_mode(NetLink::kEpochs);
		REQUIRE(LogReader::FromBytes({log.begin(), log.begin() + static_cast<long>(cut)},
					     "cut", &rd).ok());
		src = std::make_unique<FileSource>(&rd);
		vm = std::make_unique<Epochs>(b.m.get(), ModeConfig{});
		applied = vm->ApplyLog(src.get(), &status);
	}
};

// Log offset just after the first record of `type` at or after `from`
// for which pred(record) holds; 0 if none.
template <class P>
size_t After(std::vector<uint8_t> &log, uint16_t type, P pred)
{
	auto frames = Frames(log);
	for (size_t i = 0; i + 1 < frames.size(); i++)
		if (frames[i].rec->type == type && pred(frames[i].rec))
			return frames[i + 1].off;
	return 0;
}

} // namespace

TEST_CASE("netecho on 2 vCPUs: replies held until their epoch is acknowledged, the "
	  "secondary sends at go-live exactly the held replies not reported sent")
{
	RequireKvm();
	Primary pri("smpnet.log");
	UniqueFd &peer = pri.peer;
	Booted &b = pri.b;
	const std::string &path = pri.path;
	auto &w = pri.w;
	ModeConfig cfg;
	cfg.epoch_ns = 5000000;
	cfg.hold_timeout_ns = 5000000000ULL;
	Epochs smp(b.m.get(), cfg);
	smp.SetRecord(w.get());
	std::atomic<uint64_t> ack{0};
	smp.SetAck([&] { return ack.load(); });
	NetLink *link = b.m->net()->link();
	// Frames held at the end of each epoch, by epoch number (epoch 0 is
	// written before the vCPUs start, without the callback).
	std::mutex mu;
	std::vector<size_t> held{0};
	smp.SetStopPoints(1, [&] {
		std::lock_guard<std::mutex> g(mu);
		held.push_back(link->held());
		return Status::Ok();
	});
	auto epochs = [&] {
		std::lock_guard<std::mutex> g(mu);
		return held.size();
	};
	Running run(&smp);

	Send(peer.get(), Udp(7, "first"));
	REQUIRE(WaitFor([&] { return link->held() == 1; }));
	// Three more epochs end: the reply's epoch is logged, but the ACK
	// covers nothing, so nothing is on the wire.
	const size_t e0 = epochs();
	REQUIRE(WaitFor([&] { return epochs() >= e0 + 3; }));
	std::vector<uint8_t> f;
	CHECK_FALSE(Recv(peer.get(), &f, 0));
	CHECK(link->held() == 1);
	size_t first_held = 0; // the first epoch that ended holding the reply
	{
		std::lock_guard<std::mutex> g(mu);
		for (size_t e = 1; e < held.size() && !first_held; e++)
			if (held[e] == 1)
				first_held = e;
	}
	REQUIRE(first_held);
	ack = UINT64_MAX - 1; // from now on every epoch is acknowledged
	RecvReply(smp, b, peer.get(), &f);
	Reply r = Parse(f);
	CHECK(r.seq == 1);
	CHECK(r.payload == "first");
	for (uint64_t i = 2; i <= 20; i++) {
		Send(peer.get(), Udp(7, fmt::format("echo {}", i)));
		RecvReply(smp, b, peer.get(), &f);
		r = Parse(f);
		CHECK(r.seq == i);
		CHECK(r.payload == fmt::format("echo {}", i));
	}
	Send(peer.get(), Udp(9, ""));
	run.Join();
	INFO(run.st.msg());
	REQUIRE_OK(run.st);
	CHECK(run.status == 1);
	const std::string out = b.Output();
	CHECK(out.find("udp 20 ") != std::string::npos);
	CHECK(link->held() == 0);
	REQUIRE_OK(w->Flush());
	auto log = ReadFile(path);
	unlink(path.c_str());

	SECTION("the whole log replays to the same console, sending nothing")
	{
		Secondary s(log, log.size());
		REQUIRE_OK(s.applied);
		CHECK(s.vm->stats().ended);
		CHECK(s.status == 1);
		CHECK(s.b.Output() == out);
		CHECK_FALSE(Recv(s.peer.get(), &f, 0));
	}
	SECTION("go-live from the first epoch that held the reply: it is sent, the "
		"sequence continues")
	{
		size_t cut = After(log, KVM_FT_REC_VMM_EPOCH_END, [&](const kvm_ft_rec_hdr *h) {
			return h->pos == first_held;
		});
		REQUIRE(cut);
		Secondary s(log, cut);
		REQUIRE_OK(s.applied);
		CHECK(s.vm->stats().applied == first_held + 1);
		CHECK(s.b.m->net()->link()->held() == 1); // kept for go-live
		Running live(s.vm.get());
		RecvReply(*s.vm, s.b, s.peer.get(), &f);
		r = Parse(f);
		CHECK(r.seq == 1);
		CHECK(r.payload == "first");
		Send(s.peer.get(), Udp(7, "after"));
		// The RARP announcement comes first.
		RecvReply(*s.vm, s.b, s.peer.get(), &f);
		CHECK((f.size() >= 14 && f[12] == 0x80 && f[13] == 0x35));
		RecvReply(*s.vm, s.b, s.peer.get(), &f);
		r = Parse(f);
		CHECK(r.seq == 2);
		CHECK(r.payload == "after");
		Send(s.peer.get(), Udp(9, ""));
		live.Join();
		REQUIRE_OK(live.st);
		CHECK(live.status == 1);
		CHECK(s.vm->stats().net_resent == 1);
	}
	SECTION("go-live after the NET_SENT that covers the reply: it is not sent again")
	{
		size_t cut = After(log, KVM_FT_REC_VMM_NET_SENT, [](const kvm_ft_rec_hdr *h) {
			return reinterpret_cast<const kvm_ft_vmm_net_sent *>(h)->sent_frames >= 1;
		});
		REQUIRE(cut);
		Secondary s(log, cut);
		REQUIRE_OK(s.applied);
		CHECK(s.b.m->net()->link()->held() == 0);
		Running live(s.vm.get());
		RecvReply(*s.vm, s.b, s.peer.get(), &f); // the announcement only
		CHECK((f.size() >= 14 && f[12] == 0x80 && f[13] == 0x35));
		Send(s.peer.get(), Udp(7, "again"));
		RecvReply(*s.vm, s.b, s.peer.get(), &f);
		r = Parse(f);
		CHECK(r.seq == 2);
		CHECK(r.payload == "again");
		Send(s.peer.get(), Udp(9, ""));
		live.Join();
		REQUIRE_OK(live.st);
		CHECK(live.status == 1);
		CHECK(s.vm->stats().net_resent == 0);
	}
	SECTION("a NET_SENT counting frames the guest never sent is refused")
	{
		auto frames = Frames(log);
		bool tampered = false;
		for (auto &fr : frames)
			if (fr.rec->type == KVM_FT_REC_VMM_NET_SENT && !tampered) {
				reinterpret_cast<kvm_ft_vmm_net_sent *>(fr.rec)->sent_frames = 1000;
				FixCrc(log, fr);
				tampered = true;
			}
		REQUIRE(tampered);
		Secondary s(log, log.size());
		CHECK(s.applied.err() == EINVAL);
		CHECK(s.applied.msg().find("NET_SENT") != std::string::npos);
		CHECK(s.applied.msg().find("1000 frames sent") != std::string::npos);
	}
}

TEST_CASE("netecho on 2 vCPUs with 60 s epochs: an epoch that holds a reply ends "
	  "early, so replies go out long before the epoch length")
{
	RequireKvm();
	Primary pri("smpearly.log");
	UniqueFd &peer = pri.peer;
	Booted &b = pri.b;
	const std::string &path = pri.path;
	auto &w = pri.w;
	ModeConfig cfg;
	cfg.epoch_ns = 60000000000ULL; // no epoch ends on time in this test
	cfg.min_epoch_ns = 2000000;
	Epochs smp(b.m.get(), cfg);
	smp.SetRecord(w.get());
	smp.SetAck([] { return UINT64_MAX - 1; }); // every epoch acknowledged
	Running run(&smp);
	std::vector<uint8_t> f;
	for (uint64_t i = 1; i <= 10; i++) {
		Send(peer.get(), Udp(7, fmt::format("early {}", i)));
		// Released at the end of its epoch: without the early end,
		// only after 60 s.
		RecvReply(smp, b, peer.get(), &f);
		Reply r = Parse(f);
		CHECK(r.seq == i);
		CHECK(r.payload == fmt::format("early {}", i));
	}
	Send(peer.get(), Udp(9, ""));
	run.Join();
	INFO(run.st.msg());
	REQUIRE_OK(run.st);
	CHECK(run.status == 1);
	const EpochStats &st = smp.stats();
	CHECK(st.early_epochs >= 10);
	CHECK(st.epochs == st.early_epochs + 2); // + epoch 0 and the last one
	REQUIRE_OK(w->Flush());
	auto log = ReadFile(path);
	unlink(path.c_str());
	Secondary s(log, log.size());
	INFO(s.applied.msg());
	REQUIRE_OK(s.applied);
	CHECK(s.status == 1);
	CHECK(s.vm->stats().applied == st.epochs);
}
