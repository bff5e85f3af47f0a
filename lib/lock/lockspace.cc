// lockspace.cc - host id delta lease and per-resource claims.
//
// Host id (delta lease, after sanlock): read the slot; if another process
// may still be renewing it, watch it until it has been unchanged for D;
// write a new incarnation (generation + 1, random nonce) no later than X
// after the read began; wait W > X; re-read: still ours means nobody else
// raced us. Renewal: read all host slots (this also feeds the Monitor),
// check ours is untouched, write counter + 1. The deadline moves to start
// of that renewal + L only if the write finished within T and before the
// old deadline.
//
// Resource: a claim row has one sector per host id. To acquire, write
// our claim into our column, then read the row and all host slots: if
// another live incarnation claims the same resource, withdraw and retry
// later; else we own it. Two acquirers cannot both miss each other: the
// later of the two writes precedes the other's read. A claim is void when
// its incarnation no longer holds the host id or its heartbeat has been
// unchanged for D.
#include "lock/lockspace.h"

#include <time.h>

#include <algorithm>
#include <vector>

namespace kvmft::lock {

namespace {

uint64_t WallNs()
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return uint64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string Ms(int64_t ns) { return std::to_string(ns / kMs) + " ms"; }

} // namespace

Status Lockspace::Open(Disk *disk, Clock *clock, uint32_t host_id,
		       const std::string &owner, uint64_t seed,
		       std::unique_ptr<Lockspace> *out)
{
	std::vector<uint8_t> sec(kSectorSize);
	Status st = disk->Read(0, 1, sec.data());
	if (!st.ok())
		return st;
	AreaHeader hdr;
	st = DecodeHeader(sec.data(), &hdr);
	if (!st.ok())
		return st.Wrap(disk->Name());
	if (host_id < 1 || host_id > hdr.hosts)
		return Status::Error(EINVAL, "host id " + std::to_string(host_id) +
						     " out of range 1.." +
						     std::to_string(hdr.hosts));
	if (disk->Sectors() < AreaSectors(hdr))
		return Status::Error(EINVAL, disk->Name() + ": smaller than its lock area");
	out->reset(new Lockspace(disk, clock, host_id, owner, seed, hdr));
	return Status::Ok();
}

Lockspace::Lockspace(Disk *disk, Clock *clock, uint32_t id, std::string owner,
		     uint64_t seed, const AreaHeader &hdr)
	: disk_(disk), clock_(clock), id_(id), owner_(std::move(owner)), hdr_(hdr),
	  t_(TimingOf(hdr.timeouts)), mon_(hdr.hosts, t_),
	  rng_(seed ^ 0x9e3779b97f4a7c15ULL), bad_(hdr.hosts + 1, false)
{
}

uint64_t Lockspace::Random()
{
	// splitmix64: small, seedable, good enough for nonces and backoff.
	uint64_t z = (rng_ += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

int64_t Lockspace::Now()
{
	int64_t now = clock_->Now();
	if (now < last_now_) {
		MarkLost("clock went backwards by " + Ms(last_now_ - now));
		return last_now_;
	}
	last_now_ = now;
	return now;
}

Status Lockspace::ReadHosts()
{
	std::vector<uint8_t> buf(size_t(hdr_.hosts) * kSectorSize);
	int64_t start = Now();
	hosts_read_at_ = start;
	io_.reads++;
	Status st = disk_->Read(HostSector(1), hdr_.hosts, buf.data());
	if (!st.ok())
		return st;
	int64_t end = Now();
	for (uint32_t h = 1; h <= hdr_.hosts; h++) {
		HostSlot s;
		bad_[h] = !DecodeHost(&buf[(h - 1) * kSectorSize], h, &s).ok();
		if (!bad_[h])
			mon_.Observe(h, start, end, s);
	}
	return Status::Ok();
}

// Read the rows first .. first + WindowOf - 1 (one I/O). (*claims)[i] is
// the claim at row first + i / hosts, host i % hosts + 1.
Status Lockspace::ReadWindow(uint32_t first, std::vector<Claim> *claims)
{
	uint32_t n = WindowOf(hdr_) * hdr_.hosts;
	std::vector<uint8_t> buf(size_t(n) * kSectorSize);
	io_.reads++;
	Status st = disk_->Read(ClaimSector(hdr_, first, 1), n, buf.data());
	if (!st.ok())
		return st;
	claims->assign(n, Claim{});
	for (uint32_t i = 0; i < n; i++) {
		st = DecodeClaim(&buf[size_t(i) * kSectorSize], i % hdr_.hosts + 1, &(*claims)[i]);
		if (!st.ok())
			return st.Wrap("row " + std::to_string(first + i / hdr_.hosts));
	}
	return Status::Ok();
}

Status Lockspace::WriteSlot(const HostSlot &s)
{
	std::vector<uint8_t> sec(kSectorSize);
	EncodeHost(s, sec.data());
	io_.writes++;
	return disk_->Write(HostSector(id_), 1, sec.data());
}

Status Lockspace::WriteClaim(uint32_t row, const Claim &c)
{
	// Only the owner of the host id may write its column.
	if (!Valid())
		return Status::Error(ENOLCK, "host id lease lost: " + LostReason());
	std::vector<uint8_t> sec(kSectorSize);
	EncodeClaim(c, sec.data());
	io_.writes++;
	return disk_->Write(ClaimSector(hdr_, row, id_), 1, sec.data());
}

bool Lockspace::Valid()
{
	int64_t now = clock_->Now();
	std::lock_guard<std::mutex> g(mu_);
	return state_ == State::kValid && now < deadline_;
}

int64_t Lockspace::Deadline()
{
	std::lock_guard<std::mutex> g(mu_);
	return deadline_;
}

bool Lockspace::Lost()
{
	int64_t now = clock_->Now();
	std::lock_guard<std::mutex> g(mu_);
	return state_ == State::kLost || (state_ == State::kValid && now >= deadline_);
}

std::string Lockspace::LostReason()
{
	std::lock_guard<std::mutex> g(mu_);
	if (state_ == State::kValid)
		return "lease expired (not renewed in time)";
	return why_;
}

void Lockspace::MarkLost(const std::string &why)
{
	std::lock_guard<std::mutex> g(mu_);
	if (state_ == State::kValid || state_ == State::kNone) {
		state_ = State::kLost;
		why_ = why;
	}
}

Status Lockspace::WatchSlot(int64_t give_up_at)
{
	for (;;) {
		const HostSlot &cur = mon_.Latest(id_);
		if (bad_[id_])
			return Status::Error(EBADMSG, "host slot " + std::to_string(id_) +
							      " is corrupt (re-init the area)");
		if (cur.state == SlotState::kFree || mon_.Stale(id_))
			return Status::Ok();
		int64_t now = Now();
		if (now >= give_up_at)
			return Status::Error(EBUSY, "host id " + std::to_string(id_) +
							    " is in use by " + cur.owner +
							    " (heartbeat unchanged for " +
							    Ms(mon_.Unchanged(id_)) + " of " +
							    Ms(t_.host_dead) + ")");
		clock_->SleepUntil(std::min(now + t_.renew, give_up_at));
		Status st = ReadHosts();
		if (!st.ok())
			return st;
	}
}

// Sleep a heartbeat period and return true if st is a transient I/O
// error worth retrying before give_up_at.
bool Lockspace::RetryIo(const Status &st, int64_t give_up_at)
{
	if (st.err() != EIO || Now() + t_.renew >= give_up_at)
		return false;
	clock_->SleepUntil(Now() + t_.renew);
	return true;
}

Status Lockspace::AcquireHostId(int64_t give_up_at)
{
	if (Valid())
		return Status::Ok();
	for (;;) {
		if (Lost())
			return Status::Error(ENOLCK, "lockspace unusable: " + LostReason());
		Status st = ReadHosts();
		if (st.ok())
			st = WatchSlot(give_up_at);
		if (RetryIo(st, give_up_at))
			continue;
		if (!st.ok())
			return st.Wrap("acquire host id " + std::to_string(id_));
		// The decision rests on the latest read; X runs from its start.
		int64_t rs = hosts_read_at_;
		HostSlot n = mon_.Latest(id_);
		n = {id_, SlotState::kLive, n.generation + 1, Random() | 1, 1, WallNs(), owner_};
		int64_t ws = Now();
		st = WriteSlot(n);
		int64_t we = Now();
		if (RetryIo(st, give_up_at))
			continue; // it may have landed: then we watch our own value
		if (!st.ok())
			return st.Wrap("acquire host id " + std::to_string(id_));
		if (we - rs > t_.id_window)
			continue; // too slow to be sure; our value now looks live: watch it
		clock_->SleepUntil(we + t_.id_wait);
		st = ReadHosts();
		if (RetryIo(st, give_up_at))
			continue;
		if (!st.ok())
			return st.Wrap("acquire host id " + std::to_string(id_));
		if (!(mon_.Latest(id_) == n))
			return Status::Error(EBUSY, "host id " + std::to_string(id_) +
							    " taken at the same time by " +
							    mon_.Latest(id_).owner);
		if (Now() >= ws + t_.lease)
			continue; // we were stalled: renew-or-retry is not safe to assume
		std::lock_guard<std::mutex> g(mu_);
		if (state_ != State::kNone)
			return Status::Error(ENOLCK, "lockspace unusable: " + why_);
		state_ = State::kValid;
		deadline_ = ws + t_.lease;
		mine_ = attempt_ = n;
		next_renew_ = ws + t_.renew;
		return Status::Ok();
	}
}

Status Lockspace::Renew()
{
	if (!Valid())
		return Status::Error(ENOLCK, "host id " + std::to_string(id_) +
						     " lease lost: " + LostReason());
	next_renew_ = Now() + t_.renew;
	Status st = ReadHosts();
	if (!st.ok())
		return st.Wrap("renew host id " + std::to_string(id_));
	const HostSlot &cur = mon_.Latest(id_);
	if (!bad_[id_] && cur == attempt_)
		mine_ = attempt_;
	if (bad_[id_] || !(cur == mine_)) {
		MarkLost("host slot " + std::to_string(id_) + " overwritten by " +
			 (bad_[id_] ? std::string("garbage") : cur.owner));
		return Status::Error(ENOLCK, LostReason());
	}
	HostSlot n = mine_;
	n.counter++;
	n.wall_ns = WallNs();
	attempt_ = n;
	int64_t ws = Now();
	if (!Valid())
		return Status::Error(ENOLCK, "lease expired before renewal");
	st = WriteSlot(n);
	int64_t we = Now();
	if (!st.ok())
		return st.Wrap("renew host id " + std::to_string(id_));
	mine_ = n;
	std::lock_guard<std::mutex> g(mu_);
	if (state_ != State::kValid || we >= deadline_) {
		if (state_ == State::kValid) {
			state_ = State::kLost;
			why_ = "renewal finished after the lease expired";
		}
		return Status::Error(ENOLCK, why_);
	}
	if (we - ws > t_.io)
		return Status::Error(ETIMEDOUT, "renewal write took " + Ms(we - ws) +
							" (io timeout " + Ms(t_.io) + ")");
	deadline_ = ws + t_.lease;
	return Status::Ok();
}

Status Lockspace::ReleaseHostId()
{
	if (!Valid())
		return Status::Ok();
	Status first;
	for (const std::string &r : std::set<std::string>(held_)) {
		Status st = Release(r);
		if (first.ok() && !st.ok())
			first = st;
	}
	{
		std::lock_guard<std::mutex> g(mu_);
		state_ = State::kReleased;
		why_ = "host id released";
	}
	HostSlot n = mine_;
	n.state = SlotState::kFree;
	n.wall_ns = WallNs();
	Status st = WriteSlot(n);
	if (first.ok() && !st.ok())
		first = st.Wrap("release host id " + std::to_string(id_));
	return first;
}

bool Lockspace::ClaimLive(const Claim &c)
{
	if (c.state != ClaimState::kOwned)
		return false;
	if (bad_[c.host_id])
		return true; // cannot tell: assume the worst
	const HostSlot &s = mon_.Latest(c.host_id);
	if (s.generation != c.generation || s.nonce != c.nonce)
		return false; // that incarnation no longer holds the host id
	if (s.state == SlotState::kFree)
		return false; // it released the host id, hence the claim
	return !mon_.Stale(c.host_id);
}

// Read the window, then the host slots (in that order: a claim seen in a
// row was written after its incarnation's slot, so the slot read after
// it shows that incarnation or a later one). *owner = 0 if none.
Status Lockspace::FindOwner(uint32_t first, const std::string &res,
			    std::vector<Claim> *claims, uint32_t *owner)
{
	Status st = ReadWindow(first, claims);
	if (st.ok())
		st = ReadHosts();
	if (!st.ok())
		return st;
	*owner = 0;
	for (const Claim &c : *claims)
		if (c.host_id != id_ && c.resource == res && ClaimLive(c))
			*owner = c.host_id;
	return Status::Ok();
}

Status Lockspace::TryAcquire(const std::string &res)
{
	Status st = CheckName("resource", res);
	if (!st.ok())
		return st;
	if (!Valid())
		return Status::Error(ENOLCK, "host id lease lost: " + LostReason());
	if (held_.count(res))
		return Status::Ok();
	uint32_t first = RowOf(hdr_, res), owner = 0;
	std::vector<Claim> claims;
	st = FindOwner(first, res, &claims, &owner);
	if (!st.ok())
		return st.Wrap("acquire " + res);
	if (owner)
		return Status::Error(EBUSY, res + " is owned by host " +
						    std::to_string(owner) + " (" +
						    mon_.Latest(owner).owner + ")");
	uint32_t row = UINT32_MAX;
	std::string taken;
	for (uint32_t r = 0; r < WindowOf(hdr_) && row == UINT32_MAX; r++) {
		const Claim &own = claims[r * hdr_.hosts + id_ - 1];
		if (ColumnFree(own, res))
			row = first + r;
		else
			taken += (taken.empty() ? "" : ", ") + own.resource;
	}
	if (row == UINT32_MAX)
		return Status::Error(ENOSPC, res + ": its claim rows " + std::to_string(first) +
						     ".." + std::to_string(first + WindowOf(hdr_) - 1) +
						     " hold " + taken +
						     ", held here (init with more --resources)");
	Claim c{id_, ClaimState::kOwned, mine_.generation, mine_.nonce, WallNs(), res};
	st = WriteClaim(row, c);
	if (st.ok())
		st = FindOwner(first, res, &claims, &owner);
	if (!st.ok())
		return st.Wrap("acquire " + res);
	if (owner) {
		c.state = ClaimState::kFree;
		WriteClaim(row, c);
		return Status::Error(EAGAIN, res + ": contention with host " +
						     std::to_string(owner));
	}
	if (!Valid())
		return Status::Error(ENOLCK, "host id lease lost: " + LostReason());
	held_.insert(res);
	return Status::Ok();
}

Status Lockspace::Acquire(const std::string &res, int64_t give_up_at)
{
	for (;;) {
		Status st = TryAcquire(res);
		if (st.ok() || (st.err() != EBUSY && st.err() != EAGAIN && st.err() != EIO))
			return st;
		int64_t now = Now();
		if (now >= give_up_at)
			return Status::Error(ETIMEDOUT, "timed out: " + st.msg());
		int64_t pause = st.err() == EAGAIN ? int64_t(Random() % t_.renew) : t_.renew;
		st = SleepRenewing(std::min(now + pause, give_up_at));
		if (!st.ok())
			return st;
	}
}

// Our column may hold a claim here: free, on res, or on a resource this
// incarnation no longer holds (a release whose write failed, or an
// earlier incarnation's).
bool Lockspace::ColumnFree(const Claim &own, const std::string &res) const
{
	return own.state != ClaimState::kOwned || own.resource == res ||
	       own.generation != mine_.generation || own.nonce != mine_.nonce ||
	       !held_.count(own.resource);
}

Status Lockspace::Release(const std::string &res)
{
	if (!Valid())
		return Status::Error(ENOLCK, "host id lease lost: " + LostReason());
	uint32_t first = RowOf(hdr_, res);
	std::vector<Claim> claims;
	Status st = ReadWindow(first, &claims);
	if (!st.ok())
		return st.Wrap("release " + res);
	held_.erase(res); // stop owning before the claim goes
	bool found = false;
	for (uint32_t r = 0; r < WindowOf(hdr_); r++) {
		Claim c = claims[r * hdr_.hosts + id_ - 1];
		if (c.state != ClaimState::kOwned || c.resource != res)
			continue;
		found = true;
		c.state = ClaimState::kFree;
		c.wall_ns = WallNs();
		st = WriteClaim(first + r, c);
		if (!st.ok())
			return st.Wrap("release " + res);
	}
	if (!found)
		return Status::Error(ENOENT, "host " + std::to_string(id_) +
						     " has no claim on " + res);
	return Status::Ok();
}

Status Lockspace::SleepRenewing(int64_t t)
{
	for (int64_t now = Now(); now < t; now = Now()) {
		if (now >= next_renew_) {
			Status st = Renew();
			if (st.err() == ENOLCK)
				return st;
			continue;
		}
		clock_->SleepUntil(std::min(t, next_renew_));
	}
	return Valid() ? Status::Ok() : Status::Error(ENOLCK, LostReason());
}

} // namespace kvmft::lock
