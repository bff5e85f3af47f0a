// stats_json.cc - the --stats JSON of a run (stats_json.h).
#include "stats_json.h"

#include <algorithm>
#include <fmt/format.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "disk.h"
#include "engine.h"
#include "logfile.h"
#include "machine.h"
#include "output_release.h"
#include "smp.h"

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

uint64_t Percentile(std::vector<uint64_t> v, double p)
{
	if (v.empty())
		return 0;
	std::sort(v.begin(), v.end());
	size_t i = static_cast<size_t>(p / 100 * (v.size() - 1) + 0.5);
	return v[std::min(i, v.size() - 1)];
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

Status WriteStats(const std::string &path, Machine &m, const Engine &e, int status,
		  uint64_t wall_ns, const LogWriter *log, const OutputReleaser *rel)
{
	if (path.empty())
		return Status::Ok();
	const EngineStats &st = e.stats();
	nlohmann::json j = {
		{"status", status},
		{"positions", st.positions},
		{"host_exits", st.host_exits},
		{"irqs", st.irqs},
		{"windows", st.windows},
		{"checkpoints", st.ckpt.count},
		{"checkpoint_pages", st.ckpt.pages},
		{"checkpoint_ns", st.ckpt.ns},
		{"went_live_at", st.went_live_at},
		{"disk_read_bytes", m.blk() ? m.blk()->read_bytes() : 0},
		{"disk_write_bytes", m.blk() ? m.blk()->written_bytes() : 0},
		{"ack_wakeups", rel ? rel->wakeups() : 0},
	};
	AddCommon(&j, m, log, wall_ns);
	AddNet(&j, m, st.net_resent);
	AddDisk(&j, m);
	return Save(path, j);
}

Status WriteSmpStats(const std::string &path, Machine &m, const SmpVm &smp, int status,
		     uint64_t wall_ns, const LogWriter *log)
{
	if (path.empty())
		return Status::Ok();
	const SmpStats &st = smp.stats();
	nlohmann::json j = {
		{"status", status},
		{"vcpus", m.vm().nr_vcpus()},
		{"epochs", st.epochs},
		{"early_epochs", st.early_epochs},
		{"epochs_applied", st.applied},
		{"epoch_pages", st.pages},
		{"epoch_bytes", {{"p50", Percentile(st.epoch_bytes, 50)},
				 {"max", Percentile(st.epoch_bytes, 100)}}},
		{"stop_us", {{"p50", Percentile(st.stop_ns, 50) / 1000.0},
			     {"max", Percentile(st.stop_ns, 100) / 1000.0}}},
		{"applied_console_bytes", st.console_bytes},
		{"applied_mem_hash", fmt::format("{:016x}", st.last_hash)},
		{"torn_epoch", st.torn_epoch},
	};
	AddCommon(&j, m, log, wall_ns);
	AddNet(&j, m, st.net_resent);
	AddDisk(&j, m);
	return Save(path, j);
}

} // namespace kvmft::vmm
