// cli.cc - the parts of ftvmm's commands shared by run, replay and restore.
#include <fcntl.h>
#include <unistd.h>

#include <memory>
#include <cstdio>
#include <fmt/format.h>

#include "lock/holder.h"
#include "vm/loader.h"
#include "machine/machine.h"

#include "cli/cli.h"

using namespace kvmft;
using namespace kvmft::vmm;

namespace kvmft::vmm::cli {

int ExitCodeFor(const Status &s)
{
	switch (s.err()) {
	case EPROTO: return kExitDivergence;
	case ENOLCK: return kExitLock;
	case ENODATA: return kExitLogEnd;
	case EINVAL: case ENOENT: case EEXIST: case ENOTSUP: case EBADMSG: return kExitUsage;
	default: return kExitCrash;
	}
}

int Fail(const Status &s)
{
	fmt::print(stderr, "ftvmm: {}\n", s.msg());
	return ExitCodeFor(s);
}

Status CheckLockOptions(const Options &o)
{
	if (o.lock.empty()) {
		if (o.host_id || !o.lock_name.empty())
			return Status::Error(EINVAL, "--host-id and --lock-name need --lock AREA");
		return Status::Ok();
	}
	if (!o.host_id)
		return Status::Error(EINVAL, "--lock needs --host-id N (this host's id on the area)");
	if (o.lock_name.empty() && o.session.empty())
		return Status::Error(EINVAL, "--lock needs --lock-name NAME (or --session)");
	return Status::Ok();
}

// Take this host's id on the lock area (the claim comes later).
Status OpenLock(const Options &o, std::unique_ptr<lock::Holder> *h)
{
	char host[64] = "?";
	gethostname(host, sizeof(host) - 1);
	Status s = lock::Holder::Open(o.lock, o.host_id,
				      fmt::format("ftvmm {}:{}", host, getpid()),
				      static_cast<int64_t>(o.lock_timeout_s * 1e9), h);
	if (s.ok())
		return s;
	if (s.err() == EBUSY) // our host id is live elsewhere
		return Status::Error(ENOLCK, s.msg());
	if (s.err() == EBADMSG) // not an area: a bad --lock argument
		return Status::Error(EINVAL, s.msg());
	return s.Wrap("lock area " + o.lock);
}

// Own the VM's lock, or stop: the loser of a failover race never runs the
// VM (Documentation/lock.md). Once owned, losing the lease ends the process, and the VM
// with it, at once.
Status ClaimLock(const Options &o, lock::Holder *h)
{
	const std::string name = o.lock_name.empty() ? o.session : o.lock_name;
	Status s = h->Acquire(name, static_cast<int64_t>(o.lock_timeout_s * 1e9),
			      [name](const std::string &why) {
				      fmt::print(stderr, "ftvmm: lost the lock on {}: {}; "
						 "stopping the VM\n", name, why);
				      _exit(kExitLock);
			      });
	if (!s.ok())
		return Status::Error(ENOLCK, fmt::format("the VM's lock {} is not ours: {}",
							 name, s.msg()));
	fmt::print(stderr, "ftvmm: owns the lock on {}\n", name);
	return s;
}

bool ParseMac(const std::string &str, VirtioNet::Mac *mac)
{
	unsigned b[6];
	char end;
	if (sscanf(str.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4],
		   &b[5], &end) != 6)
		return false;
	for (int i = 0; i < 6; i++)
		(*mac)[i] = static_cast<uint8_t>(b[i]);
	return !((*mac)[0] & 1);	// a unicast address
}

Status ParseSize(const std::string &str, uint64_t *out)
{
	char *end = nullptr;
	errno = 0;
	unsigned long long v = strtoull(str.c_str(), &end, 0);
	if (errno || end == str.c_str())
		return Status::Error(EINVAL, "bad size '" + str + "'");
	uint64_t mul = 1;
	std::string suf(end);
	if (suf == "K" || suf == "k") mul = 1ULL << 10;
	else if (suf == "M" || suf == "m") mul = 1ULL << 20;
	else if (suf == "G" || suf == "g") mul = 1ULL << 30;
	else if (!suf.empty())
		return Status::Error(EINVAL, "bad size suffix in '" + str + "' (K, M or G)");
	if (v > UINT64_MAX / mul)
		return Status::Error(EINVAL, "size '" + str + "' too large");
	*out = v * mul;
	return Status::Ok();
}

Status OpenSerial(const std::string &path, int *fd)
{
	*fd = 1;
	if (path.empty())
		return Status::Ok();
	*fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (*fd < 0)
		return Status::Errno("open serial file " + path);
	return Status::Ok();
}

Status Setup(const Options &o, bool dirty_log, std::unique_ptr<Machine> *m,
	     uint64_t *image_hash)
{
	if (o.vcpus < 1 || o.vcpus > kMaxVcpus)
		return Status::Error(EINVAL, fmt::format("--vcpus {}: 1 to {} are supported",
							 o.vcpus, kMaxVcpus));
	MachineConfig cfg;
	cfg.disk = o.disk;
	cfg.net = o.net;
	if (!o.mac.empty() && !ParseMac(o.mac, &cfg.mac))
		return Status::Error(EINVAL, fmt::format("--mac '{}': six hex bytes, e.g. "
							 "52:54:00:12:34:56", o.mac));
	cfg.vcpus = o.vcpus;
	Status s = ParseSize(o.mem, &cfg.mem_bytes);
	if (s.ok())
		s = OpenSerial(o.serial, &cfg.console_fd);
	if (!s.ok())
		return s;
	cfg.dirty_log = dirty_log;
	if (!(s = Machine::Create(std::move(cfg), m)).ok())
		return s;
	if (o.image.empty())
		return Status::Ok();
	return BootImage((*m)->vm(), o.image, o.flat, image_hash);
}

ModeConfig MakeModeConfig(const Options &o)
{
	ModeConfig c;
	c.slice_ns = static_cast<uint64_t>(o.slice_ms * 1e6);
	c.jitter_ns = static_cast<uint64_t>(o.jitter_us * 1e3);
	c.seed = o.seed;
	c.go_live = o.go_live;
	c.private_disk = o.disk_private;
	c.epoch_ns = static_cast<uint64_t>(o.epoch_ms * 1e6);
	c.min_epoch_ns = static_cast<uint64_t>(o.epoch_min_ms * 1e6);
	c.hash_epochs = o.epoch_hash;
	c.say = [](const std::string &what) { fmt::print(stderr, "ftvmm: {}\n", what); };
	return c;
}

uint64_t DiskBytes(Machine &m)
{
	return m.blk() ? m.blk()->disk()->sectors() * 512 : 0;
}

} // namespace kvmft::vmm::cli
