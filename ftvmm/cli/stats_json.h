// stats_json.h - what `ftvmm ... --stats FILE` writes: one JSON object
// per run (Documentation/ftvmm.md, "Statistics"): the mode's figures,
// then the console's, the disk's and the network's. An empty path writes
// nothing.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace kvmft::vmm {

class LogWriter;
class Machine;
class Mode;
class OutputReleaser;

Status WriteStats(const std::string &path, Machine &m, const Mode &mode, int status,
		  uint64_t wall_ns, const LogWriter *log, const OutputReleaser *rel = nullptr);

} // namespace kvmft::vmm
