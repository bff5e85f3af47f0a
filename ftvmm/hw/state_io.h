// state_io.h - little-endian packing of device state for snapshots.
// StateReader never reads past its buffer: a short buffer sets ok() false.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace kvmft::vmm {

class StateWriter {
public:
	explicit StateWriter(std::vector<uint8_t> *out) : out_(out) {}
	template <typename T> void Put(T v)
	{
		static_assert(std::is_integral_v<T>);
		for (size_t i = 0; i < sizeof(T); i++)
			out_->push_back(static_cast<uint8_t>(
				static_cast<uint64_t>(v) >> (8 * i)));
	}
	void PutBytes(const uint8_t *p, size_t n) { out_->insert(out_->end(), p, p + n); }

private:
	std::vector<uint8_t> *out_;
};

class StateReader {
public:
	StateReader(const uint8_t *p, size_t n) : p_(p), n_(n) {}
	template <typename T> T Get()
	{
		static_assert(std::is_integral_v<T>);
		uint64_t v = 0;
		if (n_ < sizeof(T)) {
			ok_ = false;
			return 0;
		}
		for (size_t i = 0; i < sizeof(T); i++)
			v |= static_cast<uint64_t>(p_[i]) << (8 * i);
		p_ += sizeof(T);
		n_ -= sizeof(T);
		return static_cast<T>(v);
	}
	void GetBytes(uint8_t *dst, size_t n)
	{
		if (n_ < n) {
			ok_ = false;
			return;
		}
		memcpy(dst, p_, n);
		p_ += n;
		n_ -= n;
	}
	// True if every Get succeeded and the whole buffer was consumed.
	bool done() const { return ok_ && n_ == 0; }

private:
	const uint8_t *p_;
	size_t n_;
	bool ok_ = true;
};

} // namespace kvmft::vmm
