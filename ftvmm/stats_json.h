// stats_json.h - what `ftvmm ... --stats FILE` writes: one JSON object
// per run (Documentation/ftvmm.md, "Statistics"). An empty path writes
// nothing.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace kvmft::vmm {

class Engine;
class LogWriter;
class Machine;
class OutputReleaser;
class SmpVm;

// One vCPU (run, replay, restore).
Status WriteStats(const std::string &path, Machine &m, const Engine &e, int status,
		  uint64_t wall_ns, const LogWriter *log, const OutputReleaser *rel = nullptr);
// SMP, by epochs.
Status WriteSmpStats(const std::string &path, Machine &m, const SmpVm &smp, int status,
		     uint64_t wall_ns, const LogWriter *log);

} // namespace kvmft::vmm
