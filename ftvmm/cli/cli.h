// cli.h - what ftvmm's commands share (Documentation/man/ftvmm.1.md):
// the parsed options, the exit status of an error, the machine's set-up
// and the lock on the VM. main.cc parses; cmd_run.cc and cmd_replay.cc
// run the commands.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lock/holder.h"
#include "machine/machine.h"
#include "mode/mode.h"

namespace kvmft::vmm::cli {

// ftvmm's own exit statuses: even, so never a guest status.
constexpr int kExitUsage = 2;		// bad command line, image, log
constexpr int kExitCrash = 4;		// VMM or KVM failure, guest triple fault
constexpr int kExitDivergence = 6;	// replay diverged from the log
constexpr int kExitLogEnd = 8;		// replay: log ended without END
constexpr int kExitLock = 10;		// the VM's lock was not won or was lost

struct Options {
	std::string mem = "64M", serial, record, log, stats, net, mac, disk, image;
	std::string snapshot, ftlogd, session, peer;
	std::string capture = "auto";	// --capture auto|kernel|user (run --ftlogd)
	std::string lock, lock_name;	// --lock AREA, --lock-name (default --session)
	uint32_t host_id = 0;
	double lock_timeout_s = 30;
	uint32_t ring_bytes = 1 << 20;
	double live_timeout_ms = 3000;
	std::vector<std::string> restore;
	uint64_t snapshot_every = 0;
	unsigned vcpus = 1;
	bool flat = false, go_live = false, disk_private = false;
	double slice_ms = 10, jitter_us = 0, epoch_ms = 20, epoch_min_ms = 2;
	bool epoch_hash = false;
	uint64_t seed = 1;
};

// The process exit status for an error (Documentation/man/ftvmm.1.md).
int ExitCodeFor(const Status &s);
// Prints "ftvmm: MESSAGE" and returns ExitCodeFor(s).
int Fail(const Status &s);

Status CheckLockOptions(const Options &o);
Status OpenLock(const Options &o, std::unique_ptr<lock::Holder> *h);
Status ClaimLock(const Options &o, lock::Holder *h);

// Creates the machine of o (RAM, vCPUs, devices, console) and boots
// o.image into it unless empty; *image_hash is the image's hash.
Status Setup(const Options &o, bool dirty_log, std::unique_ptr<Machine> *m,
	     uint64_t *image_hash);
// The replication mode's settings from the options (both modes').
ModeConfig MakeModeConfig(const Options &o);
uint64_t DiskBytes(Machine &m);

int CmdRun(const Options &o);
int CmdReplay(const Options &o);
int CmdRestore(const Options &o);

} // namespace kvmft::vmm::cli
