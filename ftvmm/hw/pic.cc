// pic.cc - 8259A PIC pair (pic.h).
#include "hw/pic.h"

#include <fmt/format.h>
#include <linux/kvm_ft_vmm.h>

#include "hw/state_io.h"

namespace kvmft::vmm {

int Pic8259::Highest() const
{
	uint8_t pending = irr & ~imr;
	for (int i = 0; i < 8; i++) {
		if (isr & (1u << i))
			return -1; // a higher-or-equal priority is in service
		if (pending & (1u << i))
			return i;
	}
	return -1;
}

void Pic8259::Write(bool data_port, uint8_t v)
{
	if (!data_port && (v & 0x10)) { // ICW1
		icw_step = 2;
		need_icw4 = v & 1;
		imr = 0;
		isr = 0;
		irr = 0;
		auto_eoi = 0;
		read_isr = 0;
		return;
	}
	if (data_port && icw_step) {
		if (icw_step == 2) {
			base = v & 0xf8;
			icw_step = 3;
		} else if (icw_step == 3) { // cascade wiring: fixed
			icw_step = need_icw4 ? 4 : 0;
		} else {
			auto_eoi = (v >> 1) & 1;
			icw_step = 0;
		}
		return;
	}
	if (data_port) {
		imr = v;
		return;
	}
	if (v & 0x08) { // OCW3
		if (v & 0x02)
			read_isr = v & 1;
		return;
	}
	uint8_t cmd = v >> 5; // OCW2
	if (cmd == 1) {	      // non-specific EOI
		for (int i = 0; i < 8; i++)
			if (isr & (1u << i)) {
				isr &= ~(1u << i);
				break;
			}
	} else if (cmd == 3) { // specific EOI
		isr &= ~(1u << (v & 7));
	}
}

uint8_t Pic8259::Read(bool data_port) const
{
	if (data_port)
		return imr;
	return read_isr ? isr : irr;
}

Pic::Pic()
{
	chip_[0].base = 0x08;
	chip_[1].base = 0x70;
}

void Pic::Port::Read(uint64_t off, uint8_t *d, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		d[i] = chip_->Read(off == 1);
}

void Pic::Port::Write(uint64_t off, const uint8_t *d, uint32_t len)
{
	if (len)
		chip_->Write(off == 1, d[0]);
}

void Pic::UpdateCascade()
{
	if (chip_[1].Highest() >= 0)
		chip_[0].irr |= 1u << 2;
	else
		chip_[0].irr &= ~(1u << 2);
}

void Pic::Raise(int irq)
{
	chip_[irq >> 3].irr |= 1u << (irq & 7);
}

std::string Pic::Describe() const
{
	return fmt::format("PIC irr {:02x}/{:02x} isr {:02x}/{:02x} imr {:02x}/{:02x}", chip_[0].irr,
			   chip_[1].irr, chip_[0].isr, chip_[1].isr, chip_[0].imr, chip_[1].imr);
}

bool Pic::Pending() const
{
	Pic8259 m = chip_[0];
	if (chip_[1].Highest() >= 0)
		m.irr |= 1u << 2;
	else
		m.irr &= ~(1u << 2);
	return m.Highest() >= 0;
}

int Pic::Ack()
{
	UpdateCascade();
	int m = chip_[0].Highest();
	if (m < 0)
		return -1;
	Pic8259 &c = m == 2 ? chip_[1] : chip_[0];
	int ir = m == 2 ? chip_[1].Highest() : m;
	if (m == 2) {
		chip_[0].irr &= ~(1u << 2);
		if (!chip_[0].auto_eoi)
			chip_[0].isr |= 1u << 2;
	}
	c.irr &= ~(1u << ir);
	if (!c.auto_eoi)
		c.isr |= 1u << ir;
	UpdateCascade();
	return c.base + ir;
}

void Pic::AckVector(uint32_t vector)
{
	for (int n = 0; n < 2; n++) {
		Pic8259 &c = chip_[n];
		if (vector < c.base || vector >= c.base + 8u)
			continue;
		int ir = vector - c.base;
		c.irr &= ~(1u << ir);
		if (!c.auto_eoi)
			c.isr |= 1u << ir;
		if (n == 1 && !chip_[0].auto_eoi)
			chip_[0].isr |= 1u << 2;
		break;
	}
	UpdateCascade();
}

uint32_t Pic::state_id() const { return KVM_FT_DEV_PIC; }

void Pic::Save(std::vector<uint8_t> *out) const
{
	StateWriter w(out);
	for (const Pic8259 &c : chip_) {
		w.Put(c.irr), w.Put(c.isr), w.Put(c.imr), w.Put(c.base);
		w.Put(c.icw_step), w.Put(c.need_icw4), w.Put(c.auto_eoi);
		w.Put(c.read_isr);
	}
}

Status Pic::Load(const uint8_t *data, size_t len)
{
	StateReader r(data, len);
	Pic8259 c[2];
	for (Pic8259 &x : c) {
		x.irr = r.Get<uint8_t>(), x.isr = r.Get<uint8_t>();
		x.imr = r.Get<uint8_t>(), x.base = r.Get<uint8_t>();
		x.icw_step = r.Get<uint8_t>(), x.need_icw4 = r.Get<uint8_t>();
		x.auto_eoi = r.Get<uint8_t>(), x.read_isr = r.Get<uint8_t>();
	}
	if (!r.done())
		return Status::Error(EINVAL, "pic state: wrong size");
	chip_[0] = c[0];
	chip_[1] = c[1];
	return Status::Ok();
}

} // namespace kvmft::vmm
