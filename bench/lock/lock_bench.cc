// lock_bench - figures for the on-disk lock (Documentation/lock.md):
//
//   io        I/O operations and latency per lock operation on a real
//             O_DIRECT file, against one 512-byte O_DIRECT read (baseline)
//   takeover  time from SIGKILL of an `ftctl lock acquire --hold` holder
//             to "acquired" from the waiting host, default timeouts,
//             against host_dead D (the protocol's floor)
//   sim       randomized interleavings of the real code (sim.h) for a time
//             budget: runs, acquisitions, takeovers, split brains (must be 0)
//
// Usage: lock_bench FTCTL [--trials N] [--parallel P] [--sim-seconds S]
//                         [--dir DIR]
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "lock/area.h"
#include "lock/disk.h"
#include "lock/lockspace.h"
#include "lock/sim.h"

using namespace kvmft;
using namespace kvmft::lock;

namespace {

struct Opts {
	std::string ftctl, dir = "/tmp";
	int trials = 40, parallel = 8;
	double sim_seconds = 60;
};

double Pct(std::vector<double> v, double p)
{
	if (v.empty())
		return 0;
	std::sort(v.begin(), v.end());
	size_t i = std::min(v.size() - 1, size_t(p / 100 * double(v.size() - 1) + 0.5));
	return v[i];
}

double NowMs()
{
	using namespace std::chrono;
	return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

// Counts and times I/O passed to a real disk.
class CountingDisk : public Disk {
public:
	explicit CountingDisk(Disk *d) : d_(d) {}
	Status Read(uint64_t l, uint32_t n, void *b) override { reads++; return d_->Read(l, n, b); }
	Status Write(uint64_t l, uint32_t n, const void *b) override { writes++; return d_->Write(l, n, b); }
	uint64_t Sectors() const override { return d_->Sectors(); }
	std::string Name() const override { return d_->Name(); }
	uint64_t reads = 0, writes = 0;
	void Reset() { reads = writes = 0; }

private:
	Disk *d_;
};

void Die(const std::string &m)
{
	std::fprintf(stderr, "lock_bench: %s\n", m.c_str());
	std::exit(1);
}

std::unique_ptr<FileDisk> NewArea(const std::string &path, AreaHeader hdr)
{
	std::unique_ptr<FileDisk> d;
	unlink(path.c_str());
	Status st = FileDisk::Open(path, AreaSectors(hdr), &d);
	if (st.ok())
		st = FormatArea(d.get(), &hdr, true);
	if (!st.ok())
		Die(st.msg());
	return d;
}

void Io(const Opts &o)
{
	std::string path = o.dir + "/lock_bench.io";
	auto fd = NewArea(path, AreaHeader{});
	CountingDisk cd(fd.get());
	SystemClock clk;
	std::vector<uint8_t> sec(kSectorSize);
	std::vector<double> base;
	for (int i = 0; i < 200; i++) {
		double t = NowMs();
		fd->Read(0, 1, sec.data());
		base.push_back(NowMs() - t);
	}
	double b = Pct(base, 50);
	std::unique_ptr<Lockspace> ls;
	if (!Lockspace::Open(&cd, &clk, 1, "bench", 1, &ls).ok())
		Die("open");
	auto row = [&](const char *what, int n, auto fn) {
		std::vector<double> lat;
		uint64_t r0 = cd.reads, w0 = cd.writes;
		for (int i = 0; i < n; i++) {
			double t = NowMs();
			Status st = fn(i);
			lat.push_back(NowMs() - t);
			if (!st.ok())
				Die(std::string(what) + ": " + st.msg());
		}
		std::printf("io  %-22s reads %5.1f writes %4.1f  p50 %8.3f ms  = %7.1f x one read\n",
			    what, double(cd.reads - r0) / n, double(cd.writes - w0) / n,
			    Pct(lat, 50), Pct(lat, 50) / b);
	};
	std::printf("io  baseline: one 512-byte O_DIRECT read p50 %.3f ms on %s\n", b, o.dir.c_str());
	row("acquire host id", 1, [&](int) { return ls->AcquireHostId(clk.Now() + 60000 * kMs); });
	row("renew", 50, [&](int) { return ls->Renew(); });
	row("acquire (free)", 20, [&](int i) { return ls->TryAcquire("vm" + std::to_string(i)); });
	row("release", 20, [&](int i) { return ls->Release("vm" + std::to_string(i)); });
	ls->ReleaseHostId();
	unlink(path.c_str());
}

// A child running `ftctl lock acquire ... --hold`, stdout on a pipe.
struct Child {
	pid_t pid = -1;
	int out = -1;
	std::string buf;
};

Child Spawn(const Opts &o, const std::string &area, int host, double timeout_s)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		Die("pipe");
	Child c;
	c.pid = fork();
	if (c.pid == 0) {
		dup2(p[1], 1);
		int nul = open("/dev/null", O_WRONLY);
		dup2(nul, 2);
		std::string id = std::to_string(host), to = std::to_string(timeout_s);
		execl(o.ftctl.c_str(), "ftctl", "lock", "acquire", area.c_str(), "vm", "--host-id",
		      id.c_str(), "--hold", "--timeout", to.c_str(), (char *)nullptr);
		_exit(127);
	}
	close(p[1]);
	c.out = p[0];
	return c;
}

// Wait until child printed line or deadline; true if it did.
bool WaitLine(Child &c, const std::string &line, double deadline_ms)
{
	while (c.buf.find(line + "\n") == std::string::npos) {
		double left = deadline_ms - NowMs();
		if (left <= 0)
			return false;
		struct pollfd pf = {c.out, POLLIN, 0};
		if (poll(&pf, 1, int(left) + 1) <= 0)
			continue;
		char b[256];
		ssize_t n = read(c.out, b, sizeof(b));
		if (n <= 0)
			return false;
		c.buf.append(b, size_t(n));
	}
	return true;
}

void Reap(Child &c)
{
	if (c.pid > 0) {
		kill(c.pid, SIGKILL);
		waitpid(c.pid, nullptr, 0);
	}
	if (c.out >= 0)
		close(c.out);
}

// One round: P holder/taker pairs, each on its own area; kill holders at
// random moments; time each taker's takeover. Appends ms to out.
void Round(const Opts &o, int pairs, std::mt19937_64 &rng, std::vector<double> *out,
	   int *failed)
{
	std::vector<Child> hold(pairs), take(pairs);
	std::vector<std::string> areas;
	for (int i = 0; i < pairs; i++) {
		areas.push_back(o.dir + "/lock_bench.tk." + std::to_string(i));
		NewArea(areas[i], AreaHeader{});
		hold[i] = Spawn(o, areas[i], 1, 60);
	}
	for (int i = 0; i < pairs; i++)
		if (!WaitLine(hold[i], "acquired vm", NowMs() + 60000))
			Die("holder did not acquire");
	for (int i = 0; i < pairs; i++)
		take[i] = Spawn(o, areas[i], 2, 120);
	// Let the takers get their host ids and start watching, then kill the
	// holders at random points of their renewal cycle.
	std::vector<double> t0(pairs), when(pairs);
	double start = NowMs() + 3000;
	for (int i = 0; i < pairs; i++)
		when[i] = start + double(rng() % 1000);
	std::vector<int> order(pairs);
	for (int i = 0; i < pairs; i++)
		order[i] = i;
	std::sort(order.begin(), order.end(), [&](int a, int b) { return when[a] < when[b]; });
	for (int i : order) {
		double d = when[i] - NowMs();
		if (d > 0)
			usleep(useconds_t(d * 1000));
		t0[i] = NowMs();
		kill(hold[i].pid, SIGKILL);
	}
	std::vector<bool> done(pairs, false);
	double deadline = NowMs() + 60000;
	for (int left = pairs; left > 0 && NowMs() < deadline;) {
		std::vector<pollfd> pf;
		for (int i = 0; i < pairs; i++)
			pf.push_back({done[i] ? -1 : take[i].out, POLLIN, 0});
		if (poll(pf.data(), pf.size(), 1000) <= 0)
			continue;
		double now = NowMs();
		for (int i = 0; i < pairs; i++) {
			if (done[i] || !(pf[i].revents & (POLLIN | POLLHUP)))
				continue;
			char b[256];
			ssize_t n = read(take[i].out, b, sizeof(b));
			if (n > 0)
				take[i].buf.append(b, size_t(n));
			if (take[i].buf.find("acquired vm\n") != std::string::npos || n <= 0) {
				done[i] = true;
				left--;
				if (n > 0)
					out->push_back(now - t0[i]);
				else
					(*failed)++;
			}
		}
	}
	for (int i = 0; i < pairs; i++) {
		*failed += !done[i];
		Reap(hold[i]);
		Reap(take[i]);
		unlink(areas[i].c_str());
	}
}

void Takeover(const Opts &o)
{
	Timing t = TimingOf(Timeouts{});
	std::mt19937_64 rng(12345);
	std::vector<double> ms;
	int failed = 0;
	for (int done = 0; done < o.trials; done += o.parallel)
		Round(o, std::min(o.parallel, o.trials - done), rng, &ms, &failed);
	double d = double(t.host_dead) / kMs;
	int early = int(std::count_if(ms.begin(), ms.end(), [&](double x) {
		return x < d - double(t.renew + t.io) / kMs;
	}));
	std::printf("takeover  defaults renew %u ms, io %u ms, lease %u ms => D = %.0f ms\n",
		    Timeouts{}.renew_ms, Timeouts{}.io_timeout_ms, Timeouts{}.lease_ms, d);
	std::printf("takeover  %zu trials (%d in parallel), %d failed: p50 %.0f ms (%.2f x D), "
		    "p99 %.0f ms (%.2f x D), max %.0f ms; earlier than D - R - T: %d\n",
		    ms.size(), o.parallel, failed, Pct(ms, 50), Pct(ms, 50) / d, Pct(ms, 99),
		    Pct(ms, 99) / d, Pct(ms, 100), early);
}

void Simulate(const Opts &o)
{
	SimResult tot;
	uint64_t runs = 0, bad_runs = 0;
	double end = NowMs() + o.sim_seconds * 1000;
	for (uint64_t seed = 1000000; NowMs() < end; seed++, runs++) {
		SimConfig c;
		c.seed = seed;
		c.actors = 2 + int(seed % 3);
		c.host_ids = seed % 4 == 0 ? 2 : uint32_t(c.actors);
		SimResult r = Sim(c).Run();
		tot.acquisitions += r.acquisitions;
		tot.takeovers += r.takeovers;
		tot.violations += r.violations;
		bad_runs += r.violations > 0;
		if (r.violations && tot.first_violation.empty())
			tot.first_violation = r.first_violation;
	}
	std::printf("sim  %llu randomized runs in %.0f s: %llu acquisitions, %llu changes of owner; "
		    "runs with two owners at once: %llu %s\n",
		    (unsigned long long)runs, o.sim_seconds, (unsigned long long)tot.acquisitions,
		    (unsigned long long)tot.takeovers, (unsigned long long)bad_runs,
		    tot.first_violation.c_str());
}

} // namespace

int main(int argc, char **argv)
{
	Opts o;
	if (argc < 2)
		Die("usage: lock_bench FTCTL [--trials N] [--parallel P] [--sim-seconds S] [--dir DIR]");
	o.ftctl = argv[1];
	for (int i = 2; i + 1 < argc; i += 2) {
		std::string k = argv[i], v = argv[i + 1];
		if (k == "--trials")
			o.trials = std::max(1, std::atoi(v.c_str()));
		else if (k == "--parallel")
			o.parallel = std::max(1, std::atoi(v.c_str()));
		else if (k == "--sim-seconds")
			o.sim_seconds = std::atof(v.c_str());
		else if (k == "--dir")
			o.dir = v;
		else
			Die("unknown option " + k);
	}
	signal(SIGPIPE, SIG_IGN);
	Io(o);
	Takeover(o);
	Simulate(o);
	return 0;
}
