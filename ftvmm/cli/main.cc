// main.cc - ftvmm command line (Documentation/man/ftvmm.1.md):
//   ftvmm run [options] IMAGE
//   ftvmm replay --log FILE [options] IMAGE
//   ftvmm restore [options] SNAPSHOT [DELTA...]
#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include <linux/kvm_ft.h>

using namespace kvmft::vmm;
using namespace kvmft::vmm::cli;

namespace {

void LockOptions(CLI::App *c, Options &o)
{
	c->add_option("--lock", o.lock, "Lock area (ftctl lock init) arbitrating the VM");
	c->add_option("--host-id", o.host_id, "This host's id on the lock area");
	c->add_option("--lock-name", o.lock_name, "The VM's name on the area (default --session)");
	c->add_option("--lock-timeout", o.lock_timeout_s,
		      "Give up on the lock after S seconds (default 30)");
}

void CommonOptions(CLI::App *c, Options &o)
{
	c->add_option("--serial", o.serial, "Guest console to FILE (default stdout)");
	c->add_option("--stats", o.stats, "Write run statistics as JSON to FILE");
	c->add_option("--slice", o.slice_ms, "Time slice before a kick, ms (default 10)");
}

} // namespace

int main(int argc, char **argv)
{
	CLI::App app{"ftvmm - KVM VMM with record, replay and checkpoints"};
	app.require_subcommand(1);
	Options o;
	auto *run = app.add_subcommand("run", "Run a guest (optionally recording)");
	CommonOptions(run, o);
	run->add_option("--mem", o.mem, "Guest RAM (e.g. 64M, 1G; max 3G)");
	run->add_option("--vcpus", o.vcpus, "vCPUs, 1 to 8 (default 1; more than 1: "
			"checkpoint replication by epochs)");
	run->add_option("--epoch", o.epoch_ms, "SMP: epoch length, ms (default 20)");
	run->add_option("--epoch-min", o.epoch_min_ms,
			"SMP with an ACK: an epoch in which the guest sent a frame ends "
			"this long after its start, ms (default 2; 0 = never early)");
	run->add_flag("--epoch-hash", o.epoch_hash, "SMP: put the RAM hash into each epoch");
	run->add_option("--record", o.record, "Record the FT log to FILE");
	run->add_option("--ftlogd", o.ftlogd, "Record to a ring registered with ftlogd at SOCKET");
	run->add_option("--session", o.session, "ftlogd session name");
	run->add_option("--capture", o.capture,
			"With --ftlogd: log through kvm_ft.ko's ring (kernel), a "
			"shared-memory ring (user), or kernel if " KVM_FT_DEVICE " exists (auto)")
		->check(CLI::IsMember({"auto", "kernel", "user"}));
	run->add_option("--peer", o.peer, "ftlogd peer host of the secondary");
	run->add_option("--ring-bytes", o.ring_bytes, "Log ring size (power of two)");
	run->add_option("--net", o.net, "virtio-net on tap interface TAP");
	run->add_option("--mac", o.mac, "virtio-net MAC (default 52:54:00:12:34:56)");
	run->add_option("--disk", o.disk, "virtio-blk on FILE (size a multiple of 512)");
	run->add_flag("--flat", o.flat, "IMAGE is a raw binary loaded at 0x100000");
	run->add_option("--jitter", o.jitter_us, "Delay each timer edge by up to US (tests)");
	run->add_option("--seed", o.seed, "Seed of --jitter");
	run->add_option("--snapshot", o.snapshot, "Write PREFIX.0 (full), PREFIX.1.. (deltas)");
	run->add_option("--snapshot-every", o.snapshot_every, "Positions between snapshots");
	LockOptions(run, o);
	run->add_option("IMAGE", o.image, "Guest image")->required();
	auto *rep = app.add_subcommand("replay", "Replay a recorded log");
	CommonOptions(rep, o);
	rep->add_option("--log", o.log, "Log FILE to replay");
	rep->add_option("--ftlogd", o.ftlogd, "Replay live from ftlogd at SOCKET");
	rep->add_option("--session", o.session, "ftlogd session name");
	rep->add_option("--live-timeout", o.live_timeout_ms,
			"Live log silent this long (ms) = ended (default 3000)");
	rep->add_option("--mem", o.mem, "Guest RAM (with --ftlogd; as on the primary)");
	rep->add_option("--vcpus", o.vcpus, "vCPUs (with --ftlogd; as on the primary)");
	rep->add_option("--epoch", o.epoch_ms, "SMP: epoch length after going live, ms");
	rep->add_option("--epoch-min", o.epoch_min_ms,
			"SMP: the --epoch-min of run, after going live");
	rep->add_flag("--epoch-hash", o.epoch_hash, "SMP: after going live, hash RAM per epoch");
	rep->add_flag("--go-live", o.go_live, "At the end of the log, continue as primary");
	rep->add_option("--record", o.record, "After going live, record to FILE");
	rep->add_option("--disk", o.disk, "The primary's virtio-blk disk (written at go-live only)");
	rep->add_flag("--disk-private", o.disk_private,
		      "--disk is this host's own copy: write it as the log replays")
		->needs(rep->get_option("--disk"));
	rep->add_option("--net", o.net, "virtio-net on TAP (used at go-live only)");
	rep->add_option("--mac", o.mac, "virtio-net MAC (the primary's)");
	LockOptions(rep, o);
	rep->add_option("IMAGE", o.image, "Guest image the log was recorded with")->required();
	auto *res = app.add_subcommand("restore", "Restore a snapshot (+ deltas) and run");
	CommonOptions(res, o);
	res->add_option("--disk", o.disk, "virtio-blk on FILE (the snapshotted VM's disk)");
	res->add_option("--net", o.net, "virtio-net on TAP (a snapshotted VM with a network)");
	res->add_option("--mac", o.mac, "virtio-net MAC (the snapshotted VM's)");
	res->add_option("FILES", o.restore, "SNAPSHOT [DELTA...]")->required();
	try {
		app.parse(argc, argv);
	} catch (const CLI::ParseError &e) {
		int r = app.exit(e);
		return r ? kExitUsage : 0;
	}
	if (*run)
		return CmdRun(o);
	if (*rep)
		return CmdReplay(o);
	return CmdRestore(o);
}
