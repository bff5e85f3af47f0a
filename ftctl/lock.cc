// lock.cc - `ftctl lock`: the on-disk lock area (Documentation/lock.md,
// Documentation/man/ftctl-lock.8.md).
#include <signal.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>

#include "ftctl.h"
#include "lock/area.h"
#include "lock/fence.h"
#include "lock/lockspace.h"
#include "lock/timing.h"
#include "lock/watchdog.h"

using namespace kvmft;
using namespace kvmft::lock;

namespace kvmft::ctl {

namespace {

void LockUsage(FILE *f)
{
	std::fprintf(f,
		     "Usage: ftctl lock init PATH [ --hosts N ] [ --resources N ] [ --cluster NAME ]\n"
		     "                  [ --renew-ms MS ] [ --io-timeout-ms MS ] [ --lease-ms MS ] [ --force ]\n"
		     "       ftctl lock show PATH\n"
		     "       ftctl lock acquire PATH RESOURCE --host-id N [ --timeout S ] [ --hold | --run CMD ]\n"
		     "       ftctl lock release PATH RESOURCE --host-id N [ --timeout S ]\n"
		     "       ftctl lock help\n");
}

// The options after the positional words. Unknown or malformed: usage.
struct LockArgs {
	std::vector<std::string> pos;
	AreaHeader hdr;
	uint32_t host_id = 0;
	double timeout_s = 60;
	bool hold = false, force = false;
	std::string run; // --run CMD: guarded command, implies --hold
};

bool ParseU32(const std::string &s, uint32_t *v)
{
	char *end = nullptr;
	errno = 0;
	unsigned long x = std::strtoul(s.c_str(), &end, 0);
	if (s.empty() || *end || errno || x > UINT32_MAX || s[0] == '-')
		return false;
	*v = static_cast<uint32_t>(x);
	return true;
}

std::string ParseArgs(const Args &args, LockArgs *a)
{
	for (size_t i = 0; i < args.size(); i++) {
		const std::string &w = args[i];
		if (w.rfind("--", 0) != 0) {
			a->pos.push_back(w);
			continue;
		}
		if (w == "--hold" || w == "--force") {
			(w == "--hold" ? a->hold : a->force) = true;
			continue;
		}
		if (i + 1 >= args.size())
			return "option " + w + " needs a value";
		const std::string &v = args[++i];
		uint32_t *u = w == "--hosts"           ? &a->hdr.hosts
			      : w == "--resources"     ? &a->hdr.rows
			      : w == "--renew-ms"      ? &a->hdr.timeouts.renew_ms
			      : w == "--io-timeout-ms" ? &a->hdr.timeouts.io_timeout_ms
			      : w == "--lease-ms"      ? &a->hdr.timeouts.lease_ms
			      : w == "--host-id"       ? &a->host_id
						       : nullptr;
		if (u) {
			if (!ParseU32(v, u))
				return "bad number \"" + v + "\" for " + w;
		} else if (w == "--cluster") {
			a->hdr.cluster = v;
		} else if (w == "--run") {
			a->run = v;
			a->hold = true;
		} else if (w == "--timeout") {
			char *end = nullptr;
			a->timeout_s = std::strtod(v.c_str(), &end);
			if (v.empty() || *end || !(a->timeout_s >= 0 && a->timeout_s < 1e6))
				return "bad --timeout \"" + v + "\" (seconds)";
		} else {
			return "unknown option \"" + w + "\"";
		}
	}
	return "";
}

int ErrExit(const Options &o, const Status &st)
{
	switch (st.err()) {
	case ETIMEDOUT:
	case EBUSY:
		return Fail(o, EXIT_TIMEOUT, st.msg());
	case ENOLCK:
		return Fail(o, EXIT_LOST, st.msg());
	default:
		return Fail(o, EXIT_ERROR, st.msg());
	}
}

int DoInit(const Options &o, LockArgs &a)
{
	std::unique_ptr<FileDisk> disk;
	Status st = CheckHeader(a.hdr);
	if (st.ok())
		st = FileDisk::Open(a.pos[0], AreaSectors(a.hdr), &disk);
	if (st.ok())
		st = FormatArea(disk.get(), &a.hdr, a.force);
	if (!st.ok())
		return Fail(o, st.err() == EINVAL ? EXIT_USAGE : EXIT_ERROR, st.msg());
	if (o.json)
		PrintJson(o, {{"path", a.pos[0]}, {"uuid", UuidString(a.hdr.uuid)},
			      {"sectors", AreaSectors(a.hdr)}});
	else
		std::printf("initialised %s: area %s, %llu sectors\n", a.pos[0].c_str(),
			    UuidString(a.hdr.uuid).c_str(),
			    static_cast<unsigned long long>(AreaSectors(a.hdr)));
	return EXIT_OK;
}

std::string Owner()
{
	char host[256] = "?";
	gethostname(host, sizeof(host) - 1);
	return std::string(host).substr(0, 40) + ":" + std::to_string(getpid());
}

// Open the area and acquire the host id within the deadline.
int OpenHost(const Options &o, const LockArgs &a, std::unique_ptr<FileDisk> *disk,
	     Clock *clock, int64_t give_up, std::unique_ptr<Lockspace> *ls)
{
	if (!a.host_id)
		return Fail(o, EXIT_USAGE, "--host-id N is required");
	Status st = FileDisk::Open(a.pos[0], 0, disk);
	uint64_t seed = uint64_t(clock->Now()) ^ (uint64_t(getpid()) << 32);
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed ^= uint64_t(time(nullptr));
	if (st.ok())
		st = Lockspace::Open(disk->get(), clock, a.host_id, Owner(), seed, ls);
	if (!st.ok())
		return Fail(o, st.err() == EINVAL ? EXIT_USAGE : EXIT_ERROR, st.msg());
	st = (*ls)->AcquireHostId(give_up);
	return st.ok() ? EXIT_OK : ErrExit(o, st);
}

// Output shared by the holder's main thread and its fence thread.
std::mutex out_mu;

void Say(const Options &o, const char *event, const std::string &res)
{
	if (o.json)
		std::printf("{\"event\":\"%s\",\"resource\":\"%s\"}\n", event, res.c_str());
	else
		std::printf("%s %s\n", event, res.c_str());
	std::fflush(stdout);
}

// Start `cmd` (sh -c) in its own process group, guarded by a watchdog
// process that kills the group at the lease deadline even if we freeze.
pid_t StartGuarded(const std::string &cmd, const sigset_t &blocked)
{
	pid_t child = fork();
	if (child == 0) {
		setpgid(0, 0);
		pthread_sigmask(SIG_UNBLOCK, &blocked, nullptr);
		execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char *>(nullptr));
		_exit(127);
	}
	if (child > 0)
		setpgid(child, child);
	return child;
}

// Stay owner, renewing, until a signal (release, exit 0), the guarded
// command's exit (release, exit 0 or 1 as it did), or the loss of the
// lease (the fence kills the command, prints "lost", exits 4).
int Hold(const Options &o, Lockspace *ls, SystemClock *clock, const std::string &res,
	 const std::string &cmd)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pid_t child = cmd.empty() ? 0 : StartGuarded(cmd, set);
	std::unique_ptr<Watchdog> wd;
	if (child < 0 || (child && !Watchdog::Start(child, ls->Deadline(), 5 * kMs, &wd).ok())) {
		if (child > 0)
			kill(-child, SIGKILL);
		ls->ReleaseHostId();
		return Fail(o, EXIT_ERROR, "cannot start the guarded command and its watchdog");
	}
	Fence fence(ls, [&o, &res, child](const std::string &why) {
		if (child)
			kill(-child, SIGKILL);
		std::lock_guard<std::mutex> g(out_mu);
		Say(o, "lost", res);
		std::fprintf(stderr, "Error: %s: %s\n", res.c_str(), why.c_str());
		std::fflush(stderr);
		_exit(EXIT_LOST);
	});
	struct timespec zero = {};
	int rc = EXIT_OK, status = 0;
	for (;;) {
		Status st = ls->SleepRenewing(clock->Now() + ls->timing().renew / 4);
		if (!st.ok())
			break; // the fence reports it
		if (wd)
			wd->Arm(ls->Deadline());
		bool done = child && waitpid(child, &status, WNOHANG) == child;
		if (done)
			rc = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? EXIT_OK : EXIT_ERROR;
		if (!done && sigtimedwait(&set, nullptr, &zero) <= 0)
			continue;
		if (child && !done) {
			kill(-child, SIGTERM);
			waitpid(child, &status, 0);
		}
		std::lock_guard<std::mutex> g(out_mu);
		if (!ls->Valid())
			break; // too late to release: the fence reports the loss
		if (wd)
			wd->Disarm();
		st = ls->ReleaseHostId();
		if (!st.ok())
			return Fail(o, EXIT_ERROR, st.msg());
		Say(o, "released", res);
		return rc;
	}
	clock->SleepUntil(clock->Now() + 1000 * kMs); // let the fence fire
	return Fail(o, EXIT_LOST, res + ": " + ls->LostReason());
}

int DoAcquire(const Options &o, const LockArgs &a)
{
	// Signals are taken synchronously by Hold(); block them before the
	// fence thread exists so it inherits the mask.
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (a.hold || !a.run.empty())
		pthread_sigmask(SIG_BLOCK, &set, nullptr);
	SystemClock clock;
	int64_t give_up = clock.Now() + int64_t(a.timeout_s * 1e9);
	std::unique_ptr<FileDisk> disk;
	std::unique_ptr<Lockspace> ls;
	if (int rc = OpenHost(o, a, &disk, &clock, give_up, &ls))
		return rc;
	const std::string &res = a.pos[1];
	Status st = ls->Acquire(res, give_up);
	if (!st.ok()) {
		ls->ReleaseHostId();
		return ErrExit(o, st);
	}
	{
		std::lock_guard<std::mutex> g(out_mu);
		if (!ls->Valid())
			return Fail(o, EXIT_LOST, res + ": " + ls->LostReason());
		Say(o, "acquired", res);
	}
	// Without --hold the claim stays on disk and lapses with the host
	// lease (D after this exit), unless `release` clears it first.
	return a.hold ? Hold(o, ls.get(), &clock, res, a.run) : EXIT_OK;
}

int DoRelease(const Options &o, const LockArgs &a)
{
	SystemClock clock;
	std::unique_ptr<FileDisk> disk;
	std::unique_ptr<Lockspace> ls;
	int64_t give_up = clock.Now() + int64_t(a.timeout_s * 1e9);
	if (int rc = OpenHost(o, a, &disk, &clock, give_up, &ls))
		return rc;
	Status st = ls->Release(a.pos[1]);
	Status st2 = ls->ReleaseHostId();
	if (!st.ok())
		return Fail(o, EXIT_ERROR, st.msg());
	if (!st2.ok())
		return Fail(o, EXIT_ERROR, st2.msg());
	if (!o.json)
		std::printf("released %s\n", a.pos[1].c_str());
	return EXIT_OK;
}

double AgeS(uint64_t wall_ns)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
	return wall_ns ? double(now - int64_t(wall_ns)) / 1e9 : -1;
}

void ShowText(const Options &o, const AreaView &v)
{
	const AreaHeader &h = v.hdr;
	Timing t = TimingOf(h.timeouts);
	std::printf("area %s version %u cluster \"%s\" hosts %u resources %u\n",
		    UuidString(h.uuid).c_str(), h.version, h.cluster.c_str(), h.hosts, h.rows);
	std::printf("timeouts renew %ums io-timeout %ums lease %ums host-dead %lldms\n",
		    h.timeouts.renew_ms, h.timeouts.io_timeout_ms, h.timeouts.lease_ms,
		    static_cast<long long>(t.host_dead / kMs));
	for (const HostView &hv : v.hosts) {
		const HostSlot &s = hv.slot;
		if (!hv.error.empty())
			std::printf("host ? error \"%s\"\n", hv.error.c_str());
		else if (s.generation || o.stats)
			std::printf("host %u %s generation %llu counter %llu owner %s age %.1fs\n",
				    s.host_id, s.state == SlotState::kLive ? "live" : "free",
				    static_cast<unsigned long long>(s.generation),
				    static_cast<unsigned long long>(s.counter),
				    s.owner.empty() ? "-" : s.owner.c_str(), AgeS(s.wall_ns));
	}
	for (const ClaimView &c : v.claims)
		std::printf("resource %s host %u generation %llu %s row %u age %.1fs\n",
			    c.claim.resource.c_str(), c.claim.host_id,
			    static_cast<unsigned long long>(c.claim.generation),
			    c.current ? "current" : "void", c.row, AgeS(c.claim.wall_ns));
	for (const std::string &e : v.errors)
		std::printf("error \"%s\"\n", e.c_str());
}

nlohmann::json ShowJson(const AreaView &v)
{
	const AreaHeader &h = v.hdr;
	Timing t = TimingOf(h.timeouts);
	nlohmann::json hosts = nlohmann::json::array(), res = nlohmann::json::array();
	for (const HostView &hv : v.hosts) {
		const HostSlot &s = hv.slot;
		if (!hv.error.empty())
			hosts.push_back({{"error", hv.error}});
		else if (s.generation)
			hosts.push_back({{"host_id", s.host_id},
					 {"state", s.state == SlotState::kLive ? "live" : "free"},
					 {"generation", s.generation}, {"counter", s.counter},
					 {"owner", s.owner}, {"age_s", AgeS(s.wall_ns)}});
	}
	for (const ClaimView &c : v.claims)
		res.push_back({{"resource", c.claim.resource}, {"host_id", c.claim.host_id},
			       {"generation", c.claim.generation}, {"current", c.current},
			       {"row", c.row}, {"age_s", AgeS(c.claim.wall_ns)}});
	return {{"uuid", UuidString(h.uuid)}, {"version", h.version},
		{"cluster", h.cluster}, {"hosts", h.hosts}, {"resources", h.rows},
		{"renew_ms", h.timeouts.renew_ms}, {"io_timeout_ms", h.timeouts.io_timeout_ms},
		{"lease_ms", h.timeouts.lease_ms}, {"host_dead_ms", t.host_dead / kMs},
		{"host_slots", hosts}, {"claims", res}, {"errors", v.errors}};
}

int DoLockShow(const Options &o, const std::string &path)
{
	std::unique_ptr<FileDisk> disk;
	AreaView v;
	Status st = FileDisk::Open(path, 0, &disk);
	if (st.ok())
		st = InspectArea(disk.get(), &v);
	if (!st.ok())
		return Fail(o, EXIT_ERROR, st.msg());
	if (o.json)
		PrintJson(o, ShowJson(v));
	else
		ShowText(o, v);
	return EXIT_OK;
}

} // namespace

int DoLock(const Options &o, const Args &args)
{
	if (args.empty() || Matches(args[0], "help")) {
		LockUsage(args.empty() ? stderr : stdout);
		return args.empty() ? EXIT_USAGE : EXIT_OK;
	}
	LockArgs a;
	std::string err = ParseArgs(Args(args.begin() + 1, args.end()), &a);
	if (!err.empty())
		return Fail(o, EXIT_USAGE, err);
	const std::string &cmd = args[0];
	size_t want = Matches(cmd, "acquire") || Matches(cmd, "release") ? 2 : 1;
	if (a.pos.size() != want) {
		LockUsage(stderr);
		return Fail(o, EXIT_USAGE, "lock " + cmd + ": expected " +
						   (want == 2 ? "PATH RESOURCE" : "PATH"));
	}
	if (Matches(cmd, "init"))
		return DoInit(o, a);
	if (Matches(cmd, "show"))
		return DoLockShow(o, a.pos[0]);
	if (want == 2) {
		Status st = CheckName("resource", a.pos[1]);
		if (!st.ok())
			return Fail(o, EXIT_USAGE, st.msg());
	}
	if (Matches(cmd, "acquire"))
		return DoAcquire(o, a);
	if (Matches(cmd, "release"))
		return DoRelease(o, a);
	LockUsage(stderr);
	return Fail(o, EXIT_USAGE, "lock: unknown command \"" + cmd + "\"");
}

} // namespace kvmft::ctl
