// sim.cc - the interleaving simulator (sim.h).
//
// Handoff: the scheduler and the actors pass one baton (running_) under
// mu_. Whoever holds it may touch the simulation state; everyone else
// waits on its own condition variable (cv_ for the scheduler, Actor::cv
// for each actor). An actor gives the baton back only inside Block(), so
// the real lock code runs unmodified between two I/Os or sleeps. A killed
// or stopped actor unwinds by exception from Block(): this is test
// scaffolding standing in for a process that dies mid-call.
#include "lock/sim.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "lock/area.h"
#include "lock/fake_disk.h"
#include "lock/lockspace.h"

namespace kvmft::lock {

namespace {
struct Killed {};
struct Stopped {};
} // namespace

class SimDisk : public Disk {
public:
	SimDisk(Sim *s, Sim::Actor *a, uint64_t sectors) : s_(s), a_(a), sectors_(sectors) {}
	Status Read(uint64_t lba, uint32_t n, void *buf) override
	{
		return s_->Io(a_, false, lba, n, buf);
	}
	Status Write(uint64_t lba, uint32_t n, const void *buf) override
	{
		return s_->Io(a_, true, lba, n, const_cast<void *>(buf));
	}
	uint64_t Sectors() const override { return sectors_; }
	std::string Name() const override { return "simdisk"; }

private:
	Sim *s_;
	Sim::Actor *a_;
	uint64_t sectors_;
};

class SimClock : public Clock {
public:
	SimClock(Sim *s, Sim::Actor *a) : s_(s), a_(a) {}
	int64_t Now() override { return s_->LocalNow(a_); }
	void SleepUntil(int64_t t) override { s_->SleepLocal(a_, t); }

private:
	Sim *s_;
	Sim::Actor *a_;
};

struct Sim::Actor {
	int idx = 0;
	uint32_t host_id = 0;
	uint64_t epoch = 0;
	bool killed = false;
	int64_t offset = 0, drift_ppm = 0, jump_at = -1, jump = 0;
	std::unique_ptr<SimDisk> disk;
	std::unique_ptr<SimClock> clock;
	std::unique_ptr<Lockspace> ls;
	std::map<std::string, int64_t> owning; // resource -> real start
	std::condition_variable cv; // wakes this actor when it gets the baton
	std::thread thr;
};

Sim::Sim(const SimConfig &cfg) : cfg_(cfg), t_(TimingOf(cfg.timeouts)), rng_(cfg.seed)
{
	if (!cfg_.run)
		cfg_.run = 60 * t_.host_dead;
	if (!cfg_.io_max)
		cfg_.io_max = t_.io;
	hdr_.hosts = cfg_.host_ids;
	hdr_.rows = 8;
	hdr_.timeouts = cfg_.timeouts;
	MemDisk md(AreaSectors(hdr_));
	Status st = FormatArea(&md, &hdr_, true);
	if (st.ok())
		disk_.assign(md.sector(0), md.sector(0) + md.Sectors() * kSectorSize);
}

Sim::~Sim() = default;

int64_t Sim::Rand(int64_t lo, int64_t hi)
{
	return hi <= lo ? lo : lo + int64_t(rng_() % uint64_t(hi - lo + 1));
}

bool Sim::Chance(double p)
{
	return double(rng_() >> 11) / double(1ULL << 53) < p;
}

void Sim::Push(int64_t t, int actor, std::function<void()> fn)
{
	uint64_t ep = actor >= 0 ? actors_[actor]->epoch : 0;
	q_.push(Event{t, seq_++, actor, ep, std::move(fn)});
}

// Local clock of an actor at real time t: offset, rate error, one jump.
static int64_t LocalAt(const Sim::Actor *a, int64_t t)
{
	int64_t l = a->offset + t + int64_t(__int128(t) * a->drift_ppm / 1000000);
	return a->jump_at >= 0 && t >= a->jump_at ? l + a->jump : l;
}

int64_t Sim::LocalNow(Actor *a) { return LocalAt(a, now_); }

int64_t Sim::RealAt(Actor *a, int64_t local)
{
	int64_t lo = 0, hi = 4 * (cfg_.run + 10 * t_.host_dead);
	if (LocalAt(a, hi) < local)
		return hi;
	while (lo < hi) {
		int64_t mid = lo + (hi - lo) / 2;
		if (LocalAt(a, mid) >= local)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

void Sim::Block(Actor *a, int64_t wake)
{
	if (stopping_)
		throw Stopped{};
	if (Chance(cfg_.p_freeze))
		wake += Rand(0, 3 * t_.host_dead);
	std::unique_lock<std::mutex> g(mu_);
	Push(std::max(wake, now_), a->idx, nullptr);
	running_ = -1;
	cv_.notify_one();
	a->cv.wait(g, [&] { return running_ == a->idx; });
	if (stopping_)
		throw Stopped{};
	if (a->killed) {
		a->killed = false;
		throw Killed{};
	}
}

void Sim::SleepLocal(Actor *a, int64_t local) { Block(a, RealAt(a, local)); }

Status Sim::Io(Actor *a, bool write, uint64_t lba, uint32_t count, void *buf)
{
	size_t n = size_t(count) * kSectorSize;
	if (lba + count > disk_.size() / kSectorSize)
		return Status::Error(ERANGE, "simdisk: beyond end");
	int64_t fast = cfg_.io_max / 40;
	int64_t eff = now_ + Rand(0, Chance(cfg_.p_slow) ? cfg_.io_max : fast);
	int64_t done = eff + Rand(0, Chance(cfg_.p_late) ? 3 * t_.io : fast);
	bool fail = Chance(cfg_.p_fail);
	bool land = !fail || Chance(0.5);
	auto data = std::make_shared<std::vector<uint8_t>>(n);
	if (write) {
		std::memcpy(data->data(), buf, n);
		Push(eff, -1, [this, lba, data, land, n] {
			if (land)
				std::memcpy(&disk_[lba * kSectorSize], data->data(), n);
		});
	} else {
		Push(eff, -1, [this, lba, data, n] {
			std::memcpy(data->data(), &disk_[lba * kSectorSize], n);
		});
	}
	Block(a, done);
	if (!write && lba == 0 && cfg_.skew_lease > 1 && a->idx % 2) {
		AreaHeader h;
		if (DecodeHeader(data->data(), &h).ok()) {
			h.timeouts.lease_ms *= cfg_.skew_lease;
			EncodeHeader(h, data->data());
		}
	}
	if (fail)
		return Status::Error(EIO, std::string("simdisk: injected ") +
						  (write ? "write" : "read") + " error");
	if (!write)
		std::memcpy(buf, data->data(), n);
	return Status::Ok();
}

void Sim::Record(Actor *a, const std::string &res, int64_t from, int64_t to)
{
	owns_[res].push_back({a->idx, from, to});
}

// Hold res, renewing, for a random while; act as owner at each step only
// while Valid(). Ends the ownership record when the lease is lost.
void Sim::Hold(Actor *a, void *lsp, const std::string &res)
{
	Lockspace *ls = static_cast<Lockspace *>(lsp);
	int64_t until = LocalNow(a) + Rand(0, 4 * t_.host_dead);
	while (LocalNow(a) < until) {
		ls->SleepRenewing(std::min(until, LocalNow(a) + t_.renew));
		if (!ls->Valid()) {
			int64_t end = RealAt(a, ls->Deadline()) + t_.fence;
			Record(a, res, a->owning[res], std::min(now_, end));
			a->owning.erase(res);
			return;
		}
	}
}

void Sim::Body(Actor *a)
{
	SleepLocal(a, LocalNow(a) + Rand(0, t_.host_dead)); // downtime
	a->ls.reset();
	Status st = Lockspace::Open(a->disk.get(), a->clock.get(), a->host_id,
				    "sim" + std::to_string(a->idx), rng_(), &a->ls);
	if (!st.ok())
		return;
	Lockspace *ls = a->ls.get();
	if (!ls->AcquireHostId(LocalNow(a) + Rand(t_.host_dead, 4 * t_.host_dead)).ok())
		return;
	for (int k = Rand(1, 3); k > 0 && ls->Valid(); k--) {
		std::string res = "vm" + std::to_string(Rand(0, cfg_.resources - 1));
		if (a->owning.count(res))
			continue;
		st = ls->Acquire(res, LocalNow(a) + Rand(2 * t_.host_dead, 8 * t_.host_dead));
		if (!st.ok() || !ls->Valid())
			continue;
		acquisitions_++;
		a->owning[res] = now_;
		Hold(a, ls, res);
		if (a->owning.count(res) && Chance(0.5)) {
			Record(a, res, a->owning[res], now_);
			a->owning.erase(res);
			ls->Release(res);
		}
	}
	if (ls->Valid() && Chance(0.7)) {
		for (auto &[res, from] : a->owning)
			Record(a, res, from, now_);
		a->owning.clear();
		ls->ReleaseHostId();
	}
	// Otherwise the process exits holding its claims: they lapse.
}

// End every open ownership of an actor that stopped without releasing.
static void EndAll(Sim::Actor *a, int64_t now, int64_t fence,
		   const std::function<int64_t(int64_t)> &real_at,
		   const std::function<void(const std::string &, int64_t, int64_t)> &rec)
{
	int64_t end = a->ls ? real_at(a->ls->Deadline()) + fence : now;
	for (auto &[res, from] : a->owning)
		rec(res, from, end);
	a->owning.clear();
}

void Sim::ActorMain(Actor *a)
{
	auto real_at = [this, a](int64_t l) { return RealAt(a, l); };
	auto rec = [this, a](const std::string &r, int64_t f, int64_t t) { Record(a, r, f, t); };
	{
		std::unique_lock<std::mutex> g(mu_);
		a->cv.wait(g, [&] { return running_ == a->idx; });
	}
	for (bool stop = false; !stop;) {
		try {
			Body(a);
			EndAll(a, now_, t_.fence, real_at, rec);
		} catch (const Killed &) {
			EndAll(a, now_, t_.fence, real_at, rec);
		} catch (const Stopped &) {
			EndAll(a, now_, t_.fence, real_at, rec);
			stop = true;
		}
	}
	a->ls.reset();
	std::lock_guard<std::mutex> g(mu_);
	running_ = -1;
	cv_.notify_one();
}

void Sim::Check(SimResult *r)
{
	for (auto &[res, v] : owns_) {
		std::sort(v.begin(), v.end(), [](const Own &x, const Own &y) { return x.from < y.from; });
		int last = -1;
		for (size_t i = 0; i < v.size(); i++) {
			if (last >= 0 && v[i].actor != last)
				r->takeovers++;
			last = v[i].actor;
			for (size_t j = i + 1; j < v.size() && v[j].from < v[i].to; j++) {
				if (r->violations++ == 0)
					r->first_violation =
						res + ": actor " + std::to_string(v[i].actor) + " [" +
						std::to_string(v[i].from / kMs) + "," +
						std::to_string(v[i].to / kMs) + ") ms overlaps actor " +
						std::to_string(v[j].actor) + " from " +
						std::to_string(v[j].from / kMs) + " ms (seed " +
						std::to_string(cfg_.seed) + ")";
			}
		}
	}
}

SimResult Sim::Run()
{
	if (disk_.empty())
		return {};
	for (int i = 0; i < cfg_.actors; i++) {
		auto a = std::make_unique<Actor>();
		a->idx = i;
		a->host_id = uint32_t(i) % cfg_.host_ids + 1;
		a->offset = Rand(0, 1000000) * kMs;
		a->drift_ppm = Rand(-cfg_.drift_ppm, cfg_.drift_ppm);
		if (cfg_.jumps) {
			a->jump_at = Rand(0, cfg_.run);
			a->jump = Rand(0, 3 * t_.host_dead);
		}
		a->disk = std::make_unique<SimDisk>(this, a.get(), disk_.size() / kSectorSize);
		a->clock = std::make_unique<SimClock>(this, a.get());
		actors_.push_back(std::move(a));
	}
	for (auto &a : actors_) {
		Push(Rand(0, t_.renew), a->idx, nullptr);
		a->thr = std::thread([this, p = a.get()] { ActorMain(p); });
	}
	SimResult r;
	std::unique_lock<std::mutex> g(mu_);
	for (;;) {
		cv_.wait(g, [&] { return running_ == -1; });
		if (q_.empty() || q_.top().t > cfg_.run)
			break;
		Event e = q_.top();
		q_.pop();
		r.events++;
		now_ = std::max(now_, e.t);
		if (e.actor < 0) {
			e.fn();
			continue;
		}
		Actor *a = actors_[e.actor].get();
		if (e.epoch != a->epoch)
			continue;
		if (Chance(cfg_.p_crash)) {
			a->epoch++;
			a->killed = true;
		}
		running_ = e.actor;
		a->cv.notify_one();
	}
	stopping_ = true;
	for (auto &a : actors_) {
		running_ = a->idx;
		a->cv.notify_one();
		cv_.wait(g, [&] { return running_ == -1; });
		g.unlock();
		a->thr.join();
		g.lock();
	}
	r.acquisitions = acquisitions_;
	Check(&r);
	return r;
}

} // namespace kvmft::lock
