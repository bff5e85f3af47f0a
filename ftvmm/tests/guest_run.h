// guest_run.h - test helpers: run a test guest in-process in any role and
// collect its console output, exit status, memory hash and statistics.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "replay/record_replay.h"
#include "machine/machine.h"

namespace kvmft::vmm::test {

// Exits with 77 (ctest SKIP_RETURN_CODE) and a reason if /dev/kvm is absent.
void RequireKvm();
// "ticker" -> $FTVMM_GUEST_DIR/ticker.elf, else where the build put it.
std::string GuestPath(const std::string &name);
std::string TempPath(const std::string &tag);	// unique per process

// A machine with the guest loaded and a memfd console.
struct Booted {
	std::unique_ptr<Machine> m;
	int console_fd = -1;
	uint64_t image_hash = 0;
	~Booted();
	std::string Output() const;
};
// disk: virtio-blk on this file (none if empty); net_fd: virtio-net on
// this fd (one frame per read/write; none if invalid).
Status Boot(const std::string &guest, bool dirty_log, Booted *b, uint64_t mem = 64ULL << 20,
	    const std::string &disk = "", unsigned vcpus = 1, UniqueFd net_fd = {});

struct GuestRun {
	Status s;
	int status = -2;
	std::string out;
	uint64_t mem_hash = 0;
	ReplayStats st;
};

// Plain run, or record to log_path when it is not empty.
GuestRun RecordGuest(const std::string &guest, const std::string &log_path,
		     const ModeConfig &cfg = {}, const std::string &disk = "");
GuestRun ReplayGuest(const std::string &guest, const std::string &log_path,
		     const ModeConfig &cfg = {}, const std::string &disk = "");

std::vector<uint8_t> ReadFile(const std::string &path);
void WriteFile(const std::string &path, const std::vector<uint8_t> &b);

// Frame of one record inside a log file image.
struct FrameRef {
	size_t off;		// of the frame
	kvm_ft_rec_hdr *rec;	// inside the buffer
};
std::vector<FrameRef> Frames(std::vector<uint8_t> &log);
void FixCrc(std::vector<uint8_t> &log, const FrameRef &f);

} // namespace kvmft::vmm::test
