// vmm_bench.cc - ftvmm costs as ratios to baselines of the same run
// (bench/vmm/README.md). Medians over REPEATS runs (default 3).
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "guest_run.h"

using namespace kvmft;
using namespace kvmft::vmm;
using namespace kvmft::vmm::test;

namespace {
double Median(std::vector<double> v)
{
	std::sort(v.begin(), v.end());
	return v[v.size() / 2];
}

double Secs(uint64_t ns) { return ns / 1e9; }

void RequireOk(const Status &s, const char *what)
{
	if (!s.ok()) {
		fmt::print(stderr, "vmm_bench: {}: {}\n", what, s.msg());
		exit(1);
	}
}
#define REQUIRE_OK(x) RequireOk((x), #x)

// Work units the guest reports: compute = fixed; ticker = its counter.
double WorkOf(const std::string &guest, const std::string &out)
{
	if (guest != "ticker")
		return 1;
	auto at = out.rfind(' ');
	return at == std::string::npos ? 0 : double(std::stoull(out.substr(at + 3), nullptr, 16));
}

struct Timed {
	GuestRun r;
	double secs;
	uint64_t log_bytes = 0;
};

Timed TimedRecord(const std::string &guest, const std::string &log, ModeConfig cfg = {})
{
	uint64_t t0 = MonotonicNs();
	Timed t{RecordGuest(guest, log, cfg), 0};
	t.secs = Secs(MonotonicNs() - t0);
	if (!t.r.s.ok() || t.r.status != 1) {
		fmt::print(stderr, "vmm_bench: {}: {} (status {})\n", guest, t.r.s.msg(), t.r.status);
		exit(1);
	}
	if (!log.empty())
		t.log_bytes = ReadFile(log).size();
	return t;
}

void RecordVsPlain(int reps)
{
	fmt::print("\n== recording overhead, log volume, replay speed (ring-3 guests)\n");
	fmt::print("{:<9} {:>10} {:>12} {:>12} {:>10} {:>12}\n", "guest", "rate ratio",
		   "log KiB/s", "ckpts/s", "replay/rec", "positions/s");
	for (std::string g : {"compute", "ticker", "dirtier", "rtc"}) {
		std::vector<double> ratio, vol, ck, rep, pos;
		std::string log = TempPath("bench.log");
		for (int i = 0; i < reps; i++) {
			Timed plain = TimedRecord(g, "");
			Timed rec = TimedRecord(g, log);
			uint64_t t0 = MonotonicNs();
			GuestRun rp = ReplayGuest(g, log);
			double rsecs = Secs(MonotonicNs() - t0);
			if (!rp.s.ok() || rp.out != rec.r.out) {
				fmt::print(stderr, "vmm_bench: replay of {} failed: {}\n", g, rp.s.msg());
				exit(1);
			}
			double wp = WorkOf(g, plain.r.out) / plain.secs;
			double wr = WorkOf(g, rec.r.out) / rec.secs;
			ratio.push_back(wr / wp);
			vol.push_back(rec.log_bytes / rec.secs / 1024);
			ck.push_back(rec.r.st.ckpt.count / rec.secs);
			rep.push_back(rsecs / rec.secs);
			pos.push_back(rec.r.st.positions / rec.secs);
		}
		unlink(log.c_str());
		fmt::print("{:<9} {:>10.3f} {:>12.1f} {:>12.1f} {:>10.3f} {:>12.0f}\n", g,
			   Median(ratio), Median(vol), Median(ck), Median(rep), Median(pos));
	}
	fmt::print("rate ratio = guest work rate recording / plain (1.0 = free);\n"
		   "replay/rec = replay wall time / recording wall time.\n");
}

void SliceSweep(int reps)
{
	fmt::print("\n== log volume vs time slice (ticker, 200 Hz timer)\n");
	fmt::print("{:>9} {:>12} {:>10} {:>14}\n", "slice ms", "log KiB/s", "ckpts", "vs 10 ms");
	std::string log = TempPath("slice.log");
	double base = 0;
	for (double ms : {10.0, 3.0, 1.0}) {
		std::vector<double> vol, ck;
		for (int i = 0; i < reps; i++) {
			ModeConfig c;
			c.slice_ns = static_cast<uint64_t>(ms * 1e6);
			Timed t = TimedRecord("ticker", log, c);
			vol.push_back(t.log_bytes / t.secs / 1024);
			ck.push_back(t.r.st.ckpt.count);
		}
		if (!base)
			base = Median(vol);
		fmt::print("{:>9.0f} {:>12.1f} {:>10.0f} {:>14.3f}\n", ms, Median(vol), Median(ck),
			   Median(vol) / base);
	}
	unlink(log.c_str());
}

void CheckpointCost(int reps)
{
	fmt::print("\n== checkpoint deltas (dirtier: 256 pages per 10 ms tick, no exits)\n");
	std::vector<double> per_mib, bytes_per_page, copy;
	std::string log = TempPath("ckpt.log");
	for (int i = 0; i < reps; i++) {
		Timed t = TimedRecord("dirtier", log);
		const CkptStats &c = t.r.st.ckpt;
		double mib = c.pages * 4096.0 / (1 << 20);
		per_mib.push_back(c.ns / 1e6 / mib);
		bytes_per_page.push_back(double(t.log_bytes) / std::max<uint64_t>(c.pages, 1));
		std::vector<uint8_t> a(1 << 20, 1), b(1 << 20);
		uint64_t t0 = MonotonicNs();
		for (int k = 0; k < 64; k++) {
			a[k] = k;
			memcpy(b.data(), a.data(), a.size());
		}
		copy.push_back((MonotonicNs() - t0) / 1e6 / 64);
	}
	unlink(log.c_str());
	fmt::print("checkpoint time per MiB dirtied: {:.3f} ms (memcpy of 1 MiB: {:.3f} ms, "
		   "ratio {:.1f})\n", Median(per_mib), Median(copy), Median(per_mib) / Median(copy));
	fmt::print("log bytes per dirty page: {:.0f} (page 4096, ratio {:.3f})\n",
		   Median(bytes_per_page), Median(bytes_per_page) / 4096);
}

// Snapshot of a 256 MiB guest with every page written, then restore;
// baseline: write and read the same bytes as one plain file.
void SnapshotCost(int reps)
{
	const uint64_t mem = 256ULL << 20;
	fmt::print("\n== snapshot / restore of 256 MiB (all pages non-zero)\n");
	std::vector<double> snap, rest, wr, rd;
	std::string path = TempPath("snap");
	for (int i = 0; i < reps; i++) {
		Booted src;
		REQUIRE_OK(Boot("compute", false, &src, mem));
		for (uint64_t off = kImageMin + (1 << 20) * 10; off < mem; off += 4096)
			memset(src.m->vm().mem() + off, int(off >> 12), 4096);
		RecordReplay e(src.m.get());
		uint64_t t0 = MonotonicNs();
		{
			auto hdr = MakeFileHeader(KVM_FT_FILE_SNAPSHOT, mem, 0, 0);
			std::unique_ptr<LogWriter> w;
			CkptStats st;
			REQUIRE_OK(LogWriter::Create(path, hdr, &w));
			REQUIRE_OK(WriteCheckpoint(*src.m, e.state(), w.get(), KVM_FT_CKPT_FULL, 0, 0, &st));
			REQUIRE_OK(w->Flush());
		}
		snap.push_back(Secs(MonotonicNs() - t0));
		t0 = MonotonicNs();
		{
			Booted dst;
			REQUIRE_OK(Boot("compute", false, &dst, mem));
			RecordReplay ed(dst.m.get());
			LogReader r;
			REQUIRE_OK(LogReader::Open(path, &r));
			const kvm_ft_rec_hdr *h;
			REQUIRE_OK(r.Next(&h));
			FileSource fs(&r);
			CkptStats st;
			REQUIRE_OK(ApplyCheckpoint(*dst.m, ed.state(), h, &fs, &st));
		}
		rest.push_back(Secs(MonotonicNs() - t0));
		t0 = MonotonicNs();
		WriteFile(path, std::vector<uint8_t>(src.m->vm().mem(), src.m->vm().mem() + mem));
		wr.push_back(Secs(MonotonicNs() - t0));
		t0 = MonotonicNs();
		auto back = ReadFile(path);
		rd.push_back(Secs(MonotonicNs() - t0));
	}
	unlink(path.c_str());
	fmt::print("snapshot {:.3f} s (plain file write {:.3f} s, ratio {:.2f})\n", Median(snap),
		   Median(wr), Median(snap) / Median(wr));
	fmt::print("restore  {:.3f} s (plain file read  {:.3f} s, ratio {:.2f})\n", Median(rest),
		   Median(rd), Median(rest) / Median(rd));
}
} // namespace

int main(int argc, char **argv)
{
	int reps = argc > 1 ? std::max(1, atoi(argv[1])) : 3;
	RequireKvm();
	fmt::print("vmm_bench: medians of {} runs; guests' work loops run in ring 3\n", reps);
	RecordVsPlain(reps);
	SliceSweep(reps);
	CheckpointCost(reps);
	SnapshotCost(reps);
	return 0;
}
