// ftlog-gen - diagnostic load generator: plays the primary VMM. Creates a
// log ring set (memfd), registers it with ftlogd as an FT session, and
// writes DIAG records at a given rate, waiting for ring space as a VMM
// must (the output of flow control: its stalls are counted). With
// --hold it also plays the output rule: after each record it holds an
// "output" until ack_pos covers the record, and reports the hold time.
// Prints a JSON summary. Documentation/ftlogd.md, "Diagnostic tools".
#include <CLI/CLI.hpp>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "base/cpu_time.h"
#include "channel/unix_msg.h"
#include "diag.h"
#include "log/ring_io.h"
#include "logd_client/request.h"
#include "ring/ring.h"

using kvmft::MonotonicNs;
using kvmft::Status;
using nlohmann::json;

namespace {

using kvmft::CpuSeconds;

struct Opts {
	std::string socket = "/run/ftlogd/ftlogd.sock", session, peer;
	uint64_t count = 10000;
	double rate = 0; // records/s, 0 = as fast as the ring allows
	uint32_t size = 64, ring_bytes = KVM_FT_RING_DEF_DATA;
	double ack_timeout = 30;
	bool hold = false, keep = false;
};

uint64_t Pct(std::vector<uint64_t> v, double p)
{
	if (v.empty())
		return 0;
	size_t k = std::min(v.size() - 1, static_cast<size_t>(p / 100 * static_cast<double>(v.size())));
	std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(k), v.end());
	return v[k];
}

uint64_t AckPos(const kvmft::RingView &v)
{
	// Acquire: pairs with ftlogd's release store of ack_pos.
	return __atomic_load_n(&v.ctl->ack_pos, __ATOMIC_ACQUIRE);
}

int Run(const Opts &o)
{
	kvmft::RingSet rs;
	Status st = kvmft::RingSet::CreateMemfd(1, o.ring_bytes, &rs);
	kvmft::UniqueFd ctl;
	if (st.ok())
		st = kvmft::ConnectUnix(o.socket, &ctl);
	json rep;
	if (st.ok())
		st = kvmft::logd::Request(ctl.get(), {{"cmd", "register"}, {"session", o.session},
						 {"peer", o.peer}, {"kind", "memfd"}},
				     {rs.fd(), rs.event_fd()}, &rep);
	if (!st.ok()) {
		std::fprintf(stderr, "ftlog-gen: %s\n", st.msg().c_str());
		return 1;
	}
	const kvmft::RingView &v = rs.ring(0);
	kvmft::RingProducer prod(v, rs.event_fd());
	std::vector<uint8_t> rec;
	std::vector<uint64_t> holds;
	uint64_t stalls = 0, stall_ns = 0, max_used = 0;
	uint64_t t0 = MonotonicNs();
	for (uint64_t i = 0; i < o.count; i++) {
		if (o.rate > 0) {
			uint64_t due = t0 + static_cast<uint64_t>(static_cast<double>(i) * 1e9 / o.rate);
			while (MonotonicNs() < due)
				usleep(static_cast<useconds_t>(std::min<uint64_t>((due - MonotonicNs()) / 1000 + 1, 1000)));
		}
		kvmft::logd::MakeDiag(i, o.size, &rec);
		if (!kvmft::RingFits(v, o.size)) {
			// The log buffer is full: the VM must wait (flow control).
			uint64_t s = MonotonicNs();
			stalls++;
			while (!kvmft::RingFits(v, o.size))
				usleep(50);
			stall_ns += MonotonicNs() - s;
		}
		// The output this record precedes is issued now: hold time counts
		// from here, not from after Write() (which may yield the CPU).
		uint64_t issued = MonotonicNs();
		if (!prod.Write(rec.data(), o.size)) {
			std::fprintf(stderr, "ftlog-gen: record %llu dropped\n", (unsigned long long)i);
			return 1;
		}
		max_used = std::max(max_used, v.size - kvmft::RingFree(v));
		if (o.hold) {
			uint64_t tag = v.prod->producer_pos;
			while (AckPos(v) < tag)
				;
			holds.push_back(MonotonicNs() - issued);
		}
	}
	uint64_t t1 = MonotonicNs();
	uint64_t end = v.prod->producer_pos;
	bool acked = false;
	while (MonotonicNs() - t1 < static_cast<uint64_t>(o.ack_timeout * 1e9)) {
		if ((acked = AckPos(v) >= end))
			break;
		usleep(1000);
	}
	uint64_t t2 = MonotonicNs();
	json sum = {{"records", o.count}, {"bytes", o.count * o.size},
		    {"write_s", (t1 - t0) / 1e9}, {"all_acked_s", (t2 - t0) / 1e9},
		    {"all_acked", acked}, {"stalls", stalls}, {"stall_ms", stall_ns / 1e6},
		    {"max_buffer_used", max_used}, {"buffer_size", v.size},
		    {"dropped", prod.dropped()},
		    {"cpu_s", CpuSeconds()}};
	if (o.hold)
		sum["hold_us"] = {{"p50", Pct(holds, 50) / 1e3}, {"p99", Pct(holds, 99) / 1e3}};
	if (!o.keep)
		kvmft::logd::Request(ctl.get(), {{"cmd", "unregister"}, {"session", o.session}}, {}, &rep);
	std::printf("%s\n", sum.dump().c_str());
	return acked && prod.dropped() == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char **argv)
{
	Opts o;
	CLI::App app{"ftlog-gen: FT log load generator (plays the primary VMM)"};
	app.add_option("--socket", o.socket, "ftlogd control socket");
	app.add_option("--session", o.session, "session name")->required();
	app.add_option("--peer", o.peer, "secondary host (a [peer] of ftlogd.conf)")->required();
	app.add_option("--count", o.count, "records to write");
	app.add_option("--rate", o.rate, "records per second (0: as fast as possible)");
	app.add_option("--size", o.size, "record bytes (multiple of 8, >= 48)")
		->check(CLI::Range(48u, 65536u));
	app.add_option("--ring-bytes", o.ring_bytes, "ring data bytes (power of two)");
	app.add_option("--ack-timeout", o.ack_timeout, "seconds to wait for the last ACK");
	app.add_flag("--hold", o.hold, "hold an output after each record until ACKed");
	app.add_flag("--keep", o.keep, "leave the session registered at exit");
	CLI11_PARSE(app, argc, argv);
	if (o.size % 8) {
		std::fprintf(stderr, "ftlog-gen: --size must be a multiple of 8\n");
		return 2;
	}
	return Run(o);
}
