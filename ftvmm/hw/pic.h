// pic.h - the 8259A PIC pair (Documentation/ftvmm.md, "Devices").
#pragma once

#include <cstdint>
#include <string>

#include "hw/bus.h"
#include "hw/stateful.h"

namespace kvmft::vmm {

// One 8259A. Edge-triggered, fixed priority (IR0 highest); rotation,
// special mask and poll commands are ignored.
struct Pic8259 {
	uint8_t irr = 0, isr = 0, imr = 0xff;
	uint8_t base = 0;	 // vector of IR0 (ICW2 & 0xf8)
	uint8_t icw_step = 0;	 // 0: operational; 2..4: next ICW expected
	uint8_t need_icw4 = 0;
	uint8_t auto_eoi = 0;
	uint8_t read_isr = 0;	 // OCW3: command port reads ISR, else IRR
	int Highest() const;	 // IR to deliver, -1 if none
	void Write(bool data_port, uint8_t v);
	uint8_t Read(bool data_port) const;
};

// Master at 0x20/0x21 (IR2 = cascade), slave at 0xa0/0xa1. Reset state:
// IMR 0xff, vector bases 0x08 and 0x70 (as a PC BIOS leaves them).
class Pic : public Stateful {
public:
	Pic();
	Pic(const Pic &) = delete;
	Pic &operator=(const Pic &) = delete;
	void Raise(int irq);	// edge on line irq (0..15)
	bool Pending() const;	// INTR output
	int Ack();		// INTA: vector to deliver; -1 if none
	// Replay: mark vector as acknowledged as the primary did.
	void AckVector(uint32_t vector);
	// IRR, ISR and IMR of both chips, for a diagnosis.
	std::string Describe() const;
	BusDevice *master() { return &master_; }
	BusDevice *slave() { return &slave_; }
	uint32_t state_id() const override;
	void Save(std::vector<uint8_t> *out) const override;
	Status Load(const uint8_t *data, size_t len) override;

private:
	class Port : public BusDevice {
	public:
		Port(Pic8259 *c, const char *n) : chip_(c), name_(n) {}
		void Read(uint64_t off, uint8_t *d, uint32_t len) override;
		void Write(uint64_t off, const uint8_t *d, uint32_t len) override;
		const char *name() const override { return name_; }

	private:
		Pic8259 *chip_;
		const char *name_;
	};
	void UpdateCascade();
	Pic8259 chip_[2];
	Port master_{&chip_[0], "pic-master"};
	Port slave_{&chip_[1], "pic-slave"};
};

} // namespace kvmft::vmm
