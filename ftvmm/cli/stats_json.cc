// stats_json.cc - the --stats JSON of a run (stats_json.h).
#include "cli/stats_json.h"

#include <fmt/format.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "ftlog/file.h"
#include "machine/machine.h"
#include "mode/mode.h"
#include "output/releaser.h"

namespace kvmft::vmm {

namespace {

// The output rule's figures of one kind of output, in µs.
nlohmann::json HoldTimes(const OutputStats &s)
{
	return {{"p50", s.hold_ns_p50 / 1000.0}, {"p99", s.hold_ns_p99 / 1000.0},
		{"max", s.hold_ns_max / 1000.0}};
}

// What every run reports about its console and memory.
void AddCommon(nlohmann::json *j, Machine &m, const LogWriter *log, uint64_t wall_ns)
{
	const OutputStats hs = m.console().stats();
	(*j)["log_records"] = log ? log->records() : 0;
	(*j)["log_bytes"] = log ? log->bytes() : 0;
	(*j)["console_bytes"] = m.console().written();
	(*j)["outputs_held"] = hs.held;
	(*j)["outputs_released"] = hs.released;
	(*j)["hold_time_us"] = HoldTimes(hs);
	(*j)["mem_hash"] = fmt::format("{:016x}", m.vm().MemHash());
	(*j)["wall_ns"] = wall_ns;
}

Status Save(const std::string &path, const nlohmann::json &j)
{
	std::ofstream f(path);
	f << j.dump(1) << "\n";
	if (!f)
		return Status::Errno("write stats " + path);
	return Status::Ok();
}

// The "disk" object: output hold (primary) and kept writes (replayer).
void AddDisk(nlohmann::json *j, Machine &m)
{
	if (!m.blk())
		return;
	const OutputStats ds = m.blk()->disk()->stats();
	const Disk::ReplayStats rs = m.blk()->disk()->replay_stats();
	const Disk::Mode mode = m.blk()->disk()->mode();
	(*j)["disk"] = {
		{"held", mode == Disk::kHold ? ds.held : 0},
		{"released", ds.released},
		{"hold_time_us", HoldTimes(ds)},
		{"replay_kept", mode == Disk::kReplay || mode == Disk::kEpochs ? ds.held : 0},
		{"replay_dropped", rs.dropped},
		{"replay_peak", rs.peak},
		{"applied_at_go_live", rs.applied},
		{"written_to_private_copy", rs.copied},
	};
}
// The "net" object: frames in and out, output hold, kept frames.
void AddNet(nlohmann::json *j, Machine &m, uint64_t resent)
{
	if (!m.net())
		return;
	const NetLink::Stats ns = m.net()->link()->stats();
	(*j)["net"] = {
		{"rx_frames", m.net()->rx_frames()},
		{"rx_dropped", m.net()->rx_dropped()},
		{"rx_discarded", ns.rx_discarded},
		{"tx_frames", m.net()->tx_frames()},
		{"tx_errors", m.net()->tx_errors()},
		{"tx_sent", ns.tx_sent},
		{"tx_write_errors", ns.tx_write_errors},
		{"held", ns.held},
		{"released", ns.hold.released},
		{"hold_time_us", HoldTimes(ns.hold)},
		{"replay_kept", ns.replay_kept},
		{"replay_overflow", ns.replay_overflow},
		{"resent_at_go_live", resent},
	};
}
} // namespace

Status WriteStats(const std::string &path, Machine &m, const Mode &mode, int status,
		  uint64_t wall_ns, const LogWriter *log, const OutputReleaser *rel)
{
	if (path.empty())
		return Status::Ok();
	nlohmann::json j = {{"status", status}};
	mode.AddStats(&j);
	j["ack_wakeups"] = rel ? rel->wakeups() : 0;
	AddCommon(&j, m, log, wall_ns);
	AddNet(&j, m, mode.frames_resent());
	AddDisk(&j, m);
	return Save(path, j);
}

} // namespace kvmft::vmm
