// uart.cc - 16550 UART, transmit side (uart.h).
#include <linux/kvm_ft_vmm.h>

#include "hw/uart.h"
#include "hw/state_io.h"

namespace kvmft::vmm {

namespace {
enum : uint8_t {
	kLcrDlab = 0x80,
	kLsrThre = 0x20,	// transmit holding register empty
	kLsrTemt = 0x40,	// transmitter empty
	kIirNone = 0x01,	// no interrupt pending
	kMsrIdle = 0xb0,	// DCD, DSR, CTS
};
} // namespace

void Uart::Read(uint64_t off, uint8_t *d, uint32_t len)
{
	uint8_t v = 0;
	bool dlab = lcr_ & kLcrDlab;
	switch (off) {
	case 0: v = dlab ? dll_ : 0; break;
	case 1: v = dlab ? dlm_ : ier_; break;
	case 2: v = kIirNone; break;
	case 3: v = lcr_; break;
	case 4: v = mcr_; break;
	case 5: v = kLsrThre | kLsrTemt; break;
	case 6: v = kMsrIdle; break;
	case 7: v = scr_; break;
	}
	for (uint32_t i = 0; i < len; i++)
		d[i] = i ? 0xff : v;
}

void Uart::Write(uint64_t off, const uint8_t *d, uint32_t len)
{
	if (!len)
		return;
	uint8_t v = d[0];
	bool dlab = lcr_ & kLcrDlab;
	switch (off) {
	case 0:
		if (dlab)
			dll_ = v;
		else
			sink_(v);
		break;
	case 1:
		if (dlab)
			dlm_ = v;
		else
			ier_ = v & 0x0f;
		break;
	case 3: lcr_ = v; break;
	case 4: mcr_ = v & 0x1f; break;
	case 7: scr_ = v; break;
	default: break; // FCR (2), LSR/MSR (read-only)
	}
}

uint32_t Uart::state_id() const { return KVM_FT_DEV_UART; }

void Uart::Save(std::vector<uint8_t> *out) const
{
	StateWriter w(out);
	w.Put(ier_), w.Put(lcr_), w.Put(mcr_), w.Put(scr_), w.Put(dll_);
	w.Put(dlm_);
}

Status Uart::Load(const uint8_t *data, size_t len)
{
	StateReader r(data, len);
	uint8_t v[6];
	for (uint8_t &x : v)
		x = r.Get<uint8_t>();
	if (!r.done())
		return Status::Error(EINVAL, "uart state: wrong size");
	ier_ = v[0], lcr_ = v[1], mcr_ = v[2], scr_ = v[3], dll_ = v[4];
	dlm_ = v[5];
	return Status::Ok();
}

} // namespace kvmft::vmm
