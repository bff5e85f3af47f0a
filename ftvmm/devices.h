// devices.h - the PC devices ftvmm offers a guest (Documentation/ftvmm.md
// lists them register by register): 8259A PIC pair, 8254 PIT, 16550 UART,
// CMOS RTC and the exit port. Each is a BusDevice and can save and load
// its state (a fixed little-endian struct, Documentation/log-format.md).
//
// Time enters only through the clocks given to the PIT and the RTC, so a
// recorder logs every value they produce and a replayer never consults
// them for what the guest sees.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "bus.h"

namespace kvmft::vmm {

// State that goes into snapshots and checkpoints.
class Stateful {
public:
	virtual ~Stateful() = default;
	virtual uint32_t state_id() const = 0; // enum kvm_ft_vmm_dev_id
	virtual void Save(std::vector<uint8_t> *out) const = 0;
	virtual Status Load(const uint8_t *data, size_t len) = 0;
};

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

// 8254 PIT at 0x40..0x43, 1.193182 MHz, counting on a monotonic clock.
// Channel 0 drives IRQ0 in modes 0 (one shot), 2 and 3 (periodic).
// BCD counting and the read-back command are not supported.
class Pit : public BusDevice, public Stateful {
public:
	static constexpr uint64_t kHz = 1193182;
	using Clock = std::function<uint64_t()>; // ns
	explicit Pit(Clock clock) : clock_(std::move(clock)) {}
	void Read(uint64_t off, uint8_t *d, uint32_t len) override;
	void Write(uint64_t off, const uint8_t *d, uint32_t len) override;
	const char *name() const override { return "pit"; }
	// Next time channel 0 raises IRQ0 (ns), UINT64_MAX if never.
	uint64_t NextIrq() const;
	// true once per elapsed IRQ0 deadline (missed periods coalesce).
	bool PollIrq(uint64_t now);
	uint32_t state_id() const override;
	void Save(std::vector<uint8_t> *out) const override;
	Status Load(const uint8_t *data, size_t len) override;

	struct Channel {
		uint8_t mode = 0, access = 3;
		uint8_t write_lsb = 0, read_lsb = 0; // next byte is MSB
		uint8_t latched = 0, armed = 0;
		uint16_t latch = 0, lsb = 0;
		uint32_t reload = 65536;
		uint64_t start = 0;	// clock ns when counting began
		uint64_t fired = 0;	// IRQ deadlines consumed (channel 0)
	};

private:
	uint16_t Count(const Channel &c, uint64_t now) const;
	uint64_t Deadline(const Channel &c, uint64_t k) const;
	Clock clock_;
	Channel ch_[3];
};

// 16550 UART at 0x3f8: transmit only. LSR always reads THR empty and
// transmitter empty; no interrupts are raised; no receive data.
class Uart : public BusDevice, public Stateful {
public:
	using Sink = std::function<void(uint8_t)>;
	explicit Uart(Sink sink) : sink_(std::move(sink)) {}
	void Read(uint64_t off, uint8_t *d, uint32_t len) override;
	void Write(uint64_t off, const uint8_t *d, uint32_t len) override;
	const char *name() const override { return "uart"; }
	uint32_t state_id() const override;
	void Save(std::vector<uint8_t> *out) const override;
	Status Load(const uint8_t *data, size_t len) override;

private:
	Sink sink_;
	uint8_t ier_ = 0, lcr_ = 0, mcr_ = 0, scr_ = 0, dll_ = 1, dlm_ = 0;
};

// CMOS RTC at 0x70 (index; bit 7 = NMI mask, ignored) and 0x71 (data).
// Time registers read the host wall clock in UTC; writes to them are
// ignored. Status B selects BCD/binary and 12/24 hours. Other bytes are
// 128 bytes of CMOS RAM.
class Rtc : public BusDevice, public Stateful {
public:
	using WallClock = std::function<time_t()>;
	explicit Rtc(WallClock clock);
	void Read(uint64_t off, uint8_t *d, uint32_t len) override;
	void Write(uint64_t off, const uint8_t *d, uint32_t len) override;
	const char *name() const override { return "rtc"; }
	uint32_t state_id() const override;
	void Save(std::vector<uint8_t> *out) const override;
	Status Load(const uint8_t *data, size_t len) override;

private:
	uint8_t ReadReg(uint8_t reg) const;
	WallClock clock_;
	uint8_t index_ = 0;
	uint8_t ram_[128] = {};
};

// Exit port 0x501: a byte v written ends the VM with status (v << 1) | 1
// (v < 0x80; higher bits are dropped). Reads return 0xff.
class ExitPort : public BusDevice {
public:
	void Read(uint64_t, uint8_t *d, uint32_t len) override;
	void Write(uint64_t, const uint8_t *d, uint32_t len) override;
	const char *name() const override { return "exit"; }
	bool done() const { return done_; }
	int status() const { return status_; }

private:
	bool done_ = false;
	int status_ = 0;
};

} // namespace kvmft::vmm
