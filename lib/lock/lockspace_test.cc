// Lockspace: host id leases, claims, takeover, renewal failures, clock
// faults, contention at chosen points, and the fence. Hosts here share
// one ManualClock (processes on one machine); hooks on the clock and the
// disk let another host act in the middle of a protocol step.
#include "lock/area.h"
#include "lock/fake_disk.h"
#include "lock/fence.h"
#include "lock/lockspace.h"
#include "lock/monitor.h"
#include "lock/watchdog.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

using namespace kvmft;
using namespace kvmft::lock;

namespace {

struct Rig {
	AreaHeader hdr;
	MemDisk disk;
	ManualClock clk;
	Timing t;
	explicit Rig(uint32_t rows = 16) : hdr(Hdr(rows)), disk(AreaSectors(hdr)), t(TimingOf(hdr.timeouts))
	{
		REQUIRE(FormatArea(&disk, &hdr, false).ok());
		clk.step = t.renew / 2;
	}
	static AreaHeader Hdr(uint32_t rows)
	{
		AreaHeader h;
		h.hosts = 4;
		h.rows = rows;
		h.timeouts = {100, 200, 800};
		return h;
	}
	std::unique_ptr<Lockspace> Open(uint32_t id, const char *name)
	{
		std::unique_ptr<Lockspace> ls;
		REQUIRE(Lockspace::Open(&disk, &clk, id, name, id * 7919, &ls).ok());
		return ls;
	}
	// Open and acquire a host id; it keeps renewing whenever anyone
	// sleeps, until Kill() (the process dies or freezes).
	std::unique_ptr<Lockspace> Host(uint32_t id, const char *name)
	{
		auto ls = Open(id, name);
		REQUIRE(ls->AcquireHostId(clk.Now() + 10 * t.host_dead).ok());
		alive.push_back(ls.get());
		clk.on_sleep = [this] {
			for (Lockspace *l : alive)
				l->Renew();
		};
		return ls;
	}
	void Kill(Lockspace *ls) { std::erase(alive, ls); }
	std::vector<Lockspace *> alive;
};

} // namespace

TEST_CASE("monitor: stale only after D of one unchanged value, gap-free", "[lock]")
{
	Timing t = TimingOf({100, 200, 800});
	Monitor m(2, t);
	HostSlot v{1, SlotState::kLive, 1, 5, 1};
	int64_t now = 0;
	m.Observe(1, now, now + 1, v);
	for (; now < t.host_dead; now += t.renew)
		m.Observe(1, now, now + 1, v);
	CHECK_FALSE(m.Stale(1)); // D not yet complete
	m.Observe(1, now + t.renew, now + t.renew + 1, v);
	CHECK(m.Stale(1));
	v.counter++; // a heartbeat: alive again
	m.Observe(1, now + 2 * t.renew, now + 2 * t.renew, v);
	CHECK_FALSE(m.Stale(1));
	// Our clock jumps by 10 D between two reads: that gap restarts the
	// observation instead of counting as silence.
	now += 2 * t.renew + 10 * t.host_dead;
	m.Observe(1, now, now, v);
	CHECK_FALSE(m.Stale(1));
	CHECK(m.Unchanged(1) == 0);
}

TEST_CASE("host id: acquire waits W, renewals extend, expiry is final", "[lock]")
{
	Rig r;
	auto a = r.Open(1, "A");
	int64_t t0 = r.clk.Now();
	REQUIRE(a->AcquireHostId(t0 + r.t.host_dead).ok());
	CHECK(r.clk.Now() - t0 >= r.t.id_wait);
	CHECK(a->Valid());
	int64_t d0 = a->Deadline();
	CHECK(d0 <= r.clk.Now() + r.t.lease);
	r.clk.Advance(r.t.renew);
	REQUIRE(a->Renew().ok());
	CHECK(a->Deadline() == r.clk.Now() + r.t.lease);
	CHECK(a->io().writes == 2);
	r.clk.Advance(r.t.lease);
	CHECK_FALSE(a->Valid());
	CHECK(a->Lost());
	CHECK(a->Renew().err() == ENOLCK);
	CHECK(a->AcquireHostId(r.clk.Now() + r.t.host_dead).err() == ENOLCK);
}

TEST_CASE("host id: a live id is refused, a silent one taken after D", "[lock]")
{
	Rig r;
	auto a = r.Host(1, "A");
	auto b = r.Open(1, "B");
	Status st = b->AcquireHostId(r.clk.Now() + 3 * r.t.host_dead);
	CHECK(st.err() == EBUSY);
	CHECK(st.msg().find("in use by A") != std::string::npos);
	r.Kill(a.get()); // A freezes
	int64_t t0 = r.clk.Now();
	REQUIRE(b->AcquireHostId(t0 + 3 * r.t.host_dead).ok());
	CHECK(r.clk.Now() - t0 >= r.t.host_dead);
	CHECK_FALSE(a->Valid()); // its lease ran out while frozen
	CHECK(a->Renew().err() == ENOLCK);
	// Generation moved on: A's incarnation is over.
	AreaView v;
	REQUIRE(InspectArea(&r.disk, &v).ok());
	CHECK(v.hosts[0].slot.generation == 2);
	CHECK(v.hosts[0].slot.owner == "B");
}

TEST_CASE("host id: two acquirers of one free id, one wins", "[lock]")
{
	Rig r;
	auto a = r.Open(1, "A");
	auto b = r.Open(1, "B");
	SECTION("B acquires entirely between A's read and A's write")
	{
		bool done = false;
		Status sb;
		r.disk.before = [&](bool write, uint64_t lba) {
			if (write && lba == HostSector(1) && !done) {
				done = true;
				sb = b->AcquireHostId(r.clk.Now() + 3 * r.t.host_dead);
			}
		};
		Status sa = a->AcquireHostId(r.clk.Now() + 5 * r.t.host_dead);
		REQUIRE(sb.ok());
		// A's late write clobbered B's slot; B notices at its next renewal.
		CHECK(b->Renew().err() == ENOLCK);
		// A only got the id after watching it for D, past B's deadline.
		CHECK(sa.ok());
		CHECK(a->Deadline() - r.t.lease > b->Deadline());
	}
	SECTION("B acquires while A waits W before its re-read")
	{
		bool done = false;
		Status sb;
		r.clk.on_sleep = [&] {
			if (!done) {
				done = true;
				sb = b->AcquireHostId(r.clk.Now() + 3 * r.t.host_dead);
			}
		};
		Status sa = a->AcquireHostId(r.clk.Now() + 5 * r.t.host_dead);
		CHECK(sb.ok());
		CHECK(sa.err() == EBUSY);
		CHECK_FALSE(a->Valid());
	}
}

TEST_CASE("resource: busy while the owner lives, free after release", "[lock]")
{
	Rig r;
	auto a = r.Host(1, "A");
	auto b = r.Host(2, "B");
	REQUIRE(a->TryAcquire("vm1").ok());
	Status st = b->TryAcquire("vm1");
	CHECK(st.err() == EBUSY);
	CHECK(st.msg().find("host 1 (A)") != std::string::npos);
	REQUIRE(a->Release("vm1").ok());
	REQUIRE(b->TryAcquire("vm1").ok());
	CHECK(a->TryAcquire("vm1").err() == EBUSY);
	CHECK(a->Release("vm1").err() == ENOENT);
}

TEST_CASE("resource: a dead owner's claim is taken over after D, not before", "[lock]")
{
	Rig r;
	auto a = r.Host(1, "A");
	REQUIRE(a->TryAcquire("vm1").ok());
	auto b = r.Host(2, "B");
	SECTION("owner alive: never")
	{
		Status st = b->Acquire("vm1", r.clk.Now() + 4 * r.t.host_dead);
		CHECK(st.err() == ETIMEDOUT);
		CHECK(a->Valid());
	}
	SECTION("owner dead: after D of silence")
	{
		r.Kill(a.get());
		int64_t t0 = r.clk.Now();
		REQUIRE(b->Acquire("vm1", t0 + 4 * r.t.host_dead).ok());
		CHECK(r.clk.Now() - t0 >= r.t.host_dead - r.t.id_wait);
		CHECK(r.clk.Now() >= a->Deadline() + r.t.fence);
		CHECK_FALSE(a->Valid());
	}
}

TEST_CASE("resource: concurrent acquirers never both win", "[lock]")
{
	// Run B's whole TryAcquire before each I/O of A's TryAcquire in turn.
	for (int k = 0; k < 6; k++) {
		Rig r;
		auto a = r.Host(1, "A");
		auto b = r.Host(2, "B");
		int n = 0;
		Status sb = Status::Error(EINVAL, "not run");
		r.disk.before = [&](bool, uint64_t) {
			if (n++ == k) {
				auto hook = std::move(r.disk.before);
				sb = b->TryAcquire("vm1");
				r.disk.before = std::move(hook);
			}
		};
		Status sa = a->TryAcquire("vm1");
		r.disk.before = nullptr;
		INFO("B ran before A's I/O #" << k << ": A " << sa.msg() << ", B " << sb.msg());
		CHECK_FALSE((sa.ok() && sb.ok()));
		CHECK((sa.ok() || sa.err() == EBUSY || sa.err() == EAGAIN));
		// Whoever lost can tell who owns it now (or retry if neither).
		if (sa.ok())
			CHECK(b->TryAcquire("vm1").err() == EBUSY);
		if (sb.ok())
			CHECK(a->TryAcquire("vm1").err() == EBUSY);
	}
}

TEST_CASE("renewal: slow or failing writes do not extend the lease", "[lock]")
{
	Rig r;
	auto a = r.Host(1, "A");
	REQUIRE(a->TryAcquire("vm1").ok());
	r.Kill(a.get());
	r.clk.Advance(r.t.renew);
	REQUIRE(a->Renew().ok());
	int64_t d = a->Deadline();
	r.disk.clock = &r.clk;
	r.disk.delay = r.t.io + kMs;
	r.clk.Advance(r.t.renew);
	CHECK(a->Renew().err() == ETIMEDOUT);
	CHECK(a->Deadline() == d);
	r.disk.delay = 0;
	r.disk.fail_next = 1000;
	while (r.clk.Now() < d) {
		CHECK(a->Renew().err() == EIO);
		r.clk.Advance(r.t.renew);
	}
	CHECK_FALSE(a->Valid());
	CHECK(a->LostReason().find("expired") != std::string::npos);
	// A failed write that still landed is recognised as our own.
	Rig r2;
	auto c = r2.Host(1, "C");
	r2.disk.fail_next = 1;
	r2.disk.land_failed_writes = true;
	r2.clk.Advance(r2.t.renew);
	CHECK(c->Renew().err() == EIO); // the read fails
	r2.disk.fail_next = 0;
	REQUIRE(c->Renew().ok());
	r2.disk.before = [&](bool w, uint64_t) {
		if (w)
			r2.disk.fail_next = 1;
	};
	CHECK(c->Renew().err() == EIO); // the write "fails" but lands
	r2.disk.before = nullptr;
	CHECK(c->Renew().ok());
}

TEST_CASE("clock faults: backwards is fatal, a forward jump expires", "[lock]")
{
	Rig r;
	auto a = r.Host(1, "A");
	r.clk.Set(r.clk.Now() - kMs);
	CHECK(a->Renew().err() == ENOLCK);
	CHECK(a->LostReason().find("backwards") != std::string::npos);
	auto b = r.Host(2, "B");
	r.Kill(b.get());
	r.clk.Advance(r.t.lease); // a suspend of the whole host
	CHECK_FALSE(b->Valid());
	CHECK(b->TryAcquire("vm1").err() == ENOLCK);
}

TEST_CASE("claims: row collision, release of a dead incarnation's claim, corruption", "[lock]")
{
	Rig r(1); // one row: every resource collides
	auto a = r.Host(1, "A");
	REQUIRE(a->TryAcquire("vm1").ok());
	Status st = a->TryAcquire("vm2");
	CHECK(st.err() == ENOSPC);
	CHECK(st.msg().find("vm1") != std::string::npos);
	// A dies holding vm1; a new incarnation of host 1 clears the claim.
	r.Kill(a.get());
	r.clk.Advance(r.t.host_dead);
	auto a2 = r.Host(1, "A2");
	REQUIRE(a2->Release("vm1").ok());
	AreaView v;
	REQUIRE(InspectArea(&r.disk, &v).ok());
	CHECK(v.claims.empty());
	r.disk.sector(ClaimSector(r.hdr, 0, 3))[20] ^= 1;
	st = a2->TryAcquire("vm3");
	CHECK(st.err() == EBADMSG);
	CHECK(st.msg().find("claim of host 3") != std::string::npos);
}

TEST_CASE("claims: resources whose windows overlap share the rows", "[lock]")
{
	Rig r(2); // one window of two rows: every resource maps to it
	auto a = r.Host(1, "A");
	auto b = r.Host(2, "B");
	REQUIRE(a->TryAcquire("vm1").ok());
	REQUIRE(a->TryAcquire("vm2").ok());
	CHECK(a->TryAcquire("vm3").err() == ENOSPC);
	// B contends for vm2 however it is placed, and may hold two others.
	CHECK(b->TryAcquire("vm2").err() == EBUSY);
	REQUIRE(b->TryAcquire("vm3").ok());
	REQUIRE(b->TryAcquire("vm4").ok());
	REQUIRE(a->Release("vm1").ok());
	REQUIRE(a->TryAcquire("vm5").ok());
	CHECK(b->TryAcquire("vm5").err() == EBUSY);
	AreaView v;
	REQUIRE(InspectArea(&r.disk, &v).ok());
	CHECK(v.claims.size() == 4);
}

TEST_CASE("release of the host id voids its claims at once", "[lock]")
{
	Rig r;
	auto a = r.Host(1, "A");
	REQUIRE(a->TryAcquire("vm1").ok());
	r.Kill(a.get());
	REQUIRE(a->ReleaseHostId().ok());
	CHECK_FALSE(a->Valid());
	CHECK_FALSE(a->Lost()); // released, not lost
	auto b = r.Host(2, "B");
	int64_t t0 = r.clk.Now();
	REQUIRE(b->TryAcquire("vm1").ok());
	CHECK(r.clk.Now() == t0); // no waiting
	CHECK(b->io().reads == 2 + 4); // id: 2 reads + 1 write; claim: 4 + 1
	CHECK(b->io().writes == 2);
}

TEST_CASE("fence fires at the deadline even while renewal is stuck in I/O", "[lock]")
{
	Rig r;
	auto a = r.Host(1, "A");
	r.Kill(a.get());
	std::atomic<bool> fired{false};
	std::string why;
	Fence f(a.get(), [&](const std::string &w) {
		why = w;
		fired = true;
	});
	std::this_thread::sleep_for(std::chrono::milliseconds(20));
	CHECK_FALSE(f.Fired()); // the clock stands still: still valid
	std::promise<void> unblock;
	std::shared_future<void> gate = unblock.get_future().share();
	r.disk.before = [gate](bool, uint64_t) { gate.wait(); };
	std::thread renew([&] { a->Renew(); }); // hangs in its read
	r.clk.Advance(r.t.lease);
	for (int i = 0; i < 10000 && !fired; i++)
		std::this_thread::sleep_for(std::chrono::milliseconds(1));
	CHECK(fired);
	CHECK(why.find("expired") != std::string::npos);
	unblock.set_value();
	renew.join();
	CHECK_FALSE(a->Valid());
}

TEST_CASE("watchdog process kills the guarded group at the deadline, not after disarm", "[lock]")
{
	SystemClock clk;
	auto spawn = [] {
		pid_t p = fork();
		if (p == 0) {
			setpgid(0, 0);
			pause();
			_exit(0);
		}
		setpgid(p, p);
		return p;
	};
	pid_t vm = spawn();
	REQUIRE(vm > 0);
	std::unique_ptr<Watchdog> wd;
	REQUIRE(Watchdog::Start(vm, clk.Now() + 20 * kMs, kMs, &wd).ok());
	int status = 0;
	REQUIRE(waitpid(vm, &status, 0) == vm); // returns only once killed
	CHECK(WIFSIGNALED(status));
	CHECK(WTERMSIG(status) == SIGKILL);
	wd.reset(); // reaps the watchdog
	pid_t vm2 = spawn();
	REQUIRE(Watchdog::Start(vm2, clk.Now() + 20 * kMs, kMs, &wd).ok());
	wd->Disarm();
	std::this_thread::sleep_for(std::chrono::milliseconds(100));
	CHECK(waitpid(vm2, &status, WNOHANG) == 0); // still alive
	CHECK_FALSE(wd->Fired());
	kill(vm2, SIGKILL);
	waitpid(vm2, &status, 0);
}
