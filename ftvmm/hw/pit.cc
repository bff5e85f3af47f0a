// pit.cc - 8254 PIT (pit.h). Counts are derived from the clock: a
// channel loaded at time `start` with `reload` has counted
// (now - start) * 1193182 / 1e9 input ticks since.
#include <linux/kvm_ft_vmm.h>

#include "hw/pit.h"
#include "hw/state_io.h"

namespace kvmft::vmm {

namespace {
constexpr uint64_t kNsPerSec = 1000000000;

uint64_t TicksSince(uint64_t start, uint64_t now)
{
	if (now <= start)
		return 0;
	return static_cast<uint64_t>(static_cast<unsigned __int128>(now - start) *
				     Pit::kHz / kNsPerSec);
}
} // namespace

uint16_t Pit::Count(const Channel &c, uint64_t now) const
{
	if (!c.armed)
		return static_cast<uint16_t>(c.reload);
	uint64_t t = TicksSince(c.start, now);
	if (c.mode == 0)
		return static_cast<uint16_t>(c.reload - t);
	return static_cast<uint16_t>(c.reload - t % c.reload);
}

// Time of the k-th IRQ0 edge (k >= 1) after the channel was loaded.
uint64_t Pit::Deadline(const Channel &c, uint64_t k) const
{
	unsigned __int128 ticks = static_cast<unsigned __int128>(k) * c.reload;
	return c.start + static_cast<uint64_t>((ticks * kNsPerSec + kHz - 1) / kHz);
}

uint64_t Pit::NextIrq() const
{
	const Channel &c = ch_[0];
	if (!c.armed || (c.mode == 0 && c.fired))
		return UINT64_MAX;
	return Deadline(c, c.fired + 1);
}

bool Pit::PollIrq(uint64_t now)
{
	Channel &c = ch_[0];
	if (now < NextIrq())
		return false;
	if (c.mode == 0)
		c.fired = 1;
	else
		c.fired = TicksSince(c.start, now) / c.reload;
	return true;
}

void Pit::Write(uint64_t off, const uint8_t *d, uint32_t len)
{
	if (!len)
		return;
	uint8_t v = d[0];
	uint64_t now = clock_();
	if (off == 3) {
		if ((v >> 6) == 3)
			return; // read-back: not supported
		Channel &c = ch_[v >> 6];
		uint8_t access = (v >> 4) & 3;
		if (access == 0) {
			c.latch = Count(c, now);
			c.latched = 1;
			return;
		}
		c.access = access;
		c.mode = (v >> 1) & 7;
		if (c.mode > 5)
			c.mode -= 4;
		c.armed = c.write_lsb = c.read_lsb = c.latched = 0;
		return;
	}
	Channel &c = ch_[off];
	uint32_t reload;
	if (c.access == 1) {
		reload = v;
	} else if (c.access == 2) {
		reload = v << 8;
	} else if (!c.write_lsb) {
		c.lsb = v;
		c.write_lsb = 1;
		return;
	} else {
		reload = c.lsb | v << 8;
		c.write_lsb = 0;
	}
	c.reload = reload ? reload : 65536;
	c.start = now;
	c.armed = 1;
	c.fired = 0;
}

void Pit::Read(uint64_t off, uint8_t *d, uint32_t len)
{
	if (!len)
		return;
	if (off == 3) {
		d[0] = 0xff;
		return;
	}
	Channel &c = ch_[off];
	uint16_t val = c.latched ? c.latch : Count(c, clock_());
	bool msb = c.access == 2 || (c.access == 3 && c.read_lsb);
	d[0] = msb ? val >> 8 : val & 0xff;
	if (c.access == 3)
		c.read_lsb ^= 1;
	if (c.latched && (c.access != 3 || !c.read_lsb))
		c.latched = 0;
	for (uint32_t i = 1; i < len; i++)
		d[i] = 0xff;
}

uint32_t Pit::state_id() const { return KVM_FT_DEV_PIT; }

void Pit::Save(std::vector<uint8_t> *out) const
{
	StateWriter w(out);
	uint64_t now = clock_();
	for (const Channel &c : ch_) {
		w.Put(c.mode), w.Put(c.access), w.Put(c.write_lsb);
		w.Put(c.read_lsb), w.Put(c.latched), w.Put(c.armed);
		w.Put(c.latch), w.Put(c.lsb), w.Put(c.reload);
		w.Put(now > c.start ? now - c.start : uint64_t{0});
		w.Put(c.fired);
	}
}

Status Pit::Load(const uint8_t *data, size_t len)
{
	StateReader r(data, len);
	Channel ch[3];
	uint64_t now = clock_();
	for (Channel &c : ch) {
		c.mode = r.Get<uint8_t>(), c.access = r.Get<uint8_t>();
		c.write_lsb = r.Get<uint8_t>(), c.read_lsb = r.Get<uint8_t>();
		c.latched = r.Get<uint8_t>(), c.armed = r.Get<uint8_t>();
		c.latch = r.Get<uint16_t>(), c.lsb = r.Get<uint16_t>();
		c.reload = r.Get<uint32_t>();
		uint64_t elapsed = r.Get<uint64_t>();
		c.start = now >= elapsed ? now - elapsed : 0;
		c.fired = r.Get<uint64_t>();
		if (c.reload == 0 || c.reload > 65536 || c.mode > 5 ||
		    c.access > 3)
			return Status::Error(EINVAL, "pit state: bad channel");
	}
	if (!r.done())
		return Status::Error(EINVAL, "pit state: wrong size");
	for (int i = 0; i < 3; i++)
		ch_[i] = ch[i];
	return Status::Ok();
}

} // namespace kvmft::vmm
