// sim.h - randomized, reproducible interleavings of the real lock code.
//
// A discrete-event simulation: each simulated host ("actor") is a thread
// running real Lockspace code against a SimDisk and a SimClock, but only
// one actor runs at a time and virtual time moves only when every actor
// is blocked in I/O or sleep. So a seed fixes the whole run.
//
// Fault model (Documentation/lock.md, "Fault model"): an I/O takes effect
// at a random point within io_max of its issue (so concurrent I/O of
// different hosts lands in any order), returns at a later random point
// (sometimes much later: a delayed completion), may fail (a failed write
// lands or not); actors crash and restart (process kill: in-flight I/O
// still lands), freeze for up to 3 D (SIGSTOP), and their clocks drift
// and jump forward once.
//
// An oracle records, for every ownership, the real interval from the
// moment Acquire returned to the moment the owner stopped: release, loss
// noticed, or its deadline (real time) plus the fence margin F. Two
// overlapping intervals of one resource are a split brain.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <queue>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "lock/disk.h"
#include "lock/format.h"
#include "lock/timing.h"

namespace kvmft::lock {

struct SimConfig {
	uint64_t seed = 1;
	int actors = 3;            // simulated hosts
	uint32_t host_ids = 3;     // actor i uses host id i % host_ids + 1
	int resources = 2;         // "vm0".."vmN-1"
	Timeouts timeouts{100, 200, 800};
	int64_t run = 0;           // virtual run time; 0: 60 host-dead periods
	int64_t drift_ppm = 10000; // max |clock rate error| per actor
	bool jumps = true;         // one forward clock jump per actor
	double p_fail = 0.02;      // I/O errors
	double p_slow = 0.05;      // effect late within io_max
	double p_late = 0.03;      // completion returns late
	double p_freeze = 0.005;   // actor frozen on wakeup
	double p_crash = 0.003;    // actor killed on wakeup
	int64_t io_max = 0;        // 0: the io timeout T
	// Negative control: odd actors read a header whose lease is this many
	// times longer than everyone else's (hosts disagreeing on timeouts).
	uint32_t skew_lease = 1;
};

struct SimResult {
	uint64_t acquisitions = 0;
	uint64_t takeovers = 0;    // acquisitions of a resource last held by another
	uint64_t violations = 0;   // overlapping ownerships (must be 0)
	uint64_t events = 0;
	std::string first_violation;
};

class Sim {
public:
	explicit Sim(const SimConfig &cfg);
	~Sim();
	SimResult Run();

	// Used by SimDisk/SimClock/actors (from actor threads).
	struct Actor;
	Status Io(Actor *a, bool write, uint64_t lba, uint32_t count, void *buf);
	int64_t LocalNow(Actor *a);
	void SleepLocal(Actor *a, int64_t local);

private:
	struct Event {
		int64_t t;
		uint64_t seq;
		int actor;          // -1: not an actor wakeup
		uint64_t epoch;     // actor epoch the wakeup belongs to
		std::function<void()> fn;
		bool operator>(const Event &o) const
		{
			return t != o.t ? t > o.t : seq > o.seq;
		}
	};
	void Push(int64_t t, int actor, std::function<void()> fn);
	void Block(Actor *a, int64_t wake);
	void ActorMain(Actor *a);
	void Body(Actor *a);
	void Hold(Actor *a, void *ls, const std::string &res);
	void Record(Actor *a, const std::string &res, int64_t from, int64_t to);
	int64_t RealAt(Actor *a, int64_t local);
	int64_t Rand(int64_t lo, int64_t hi);
	bool Chance(double p);
	void Check(SimResult *r);

	SimConfig cfg_;
	Timing t_;
	AreaHeader hdr_;
	std::vector<uint8_t> disk_;
	std::mt19937_64 rng_;
	std::mutex mu_;
	std::condition_variable cv_;
	int running_ = -1; // actor holding the baton; -1: the scheduler
	bool stopping_ = false;
	int64_t now_ = 0;  // real (virtual) time, ns
	uint64_t seq_ = 0;
	std::priority_queue<Event, std::vector<Event>, std::greater<Event>> q_;
	std::vector<std::unique_ptr<Actor>> actors_;
	struct Own {
		int actor;
		int64_t from, to;
	};
	std::map<std::string, std::vector<Own>> owns_;
	uint64_t acquisitions_ = 0;
};

} // namespace kvmft::lock
