// diag.h - the DIAG record ftlogd's diagnostic and test tools exchange
// (Documentation/wire-protocol.md, "Diagnostic records"): ftlog-gen
// writes them, ftlog-check verifies them, ftlog-inject sends them in
// frames.
#pragma once

#include <linux/kvm_ft.h>

#include <cstdint>
#include <vector>

#include "base/status.h"

namespace kvmft::logd {

// A diagnostic record: written by ftlog-gen, verified by ftlog-check.
constexpr uint16_t kRecDiag = KVM_FT_REC_CTRL_FIRST + 0xf0;
struct DiagRec {
	kvm_ft_rec_hdr hdr;
	uint64_t index;    // 0, 1, 2, ... per run
	uint32_t crc;      // CRC32C of the fill bytes that follow
	uint32_t fill_len; // bytes of fill after this struct
};

// Fills a record of total length len (multiple of 8, >= sizeof(DiagRec))
// for index i; fill bytes depend on i.
void MakeDiag(uint64_t i, uint32_t len, std::vector<uint8_t> *rec);
// Checks a record made by MakeDiag; the error says what differs.
kvmft::Status CheckDiag(const uint8_t *rec, uint32_t len, uint64_t want_index);

} // namespace kvmft::logd
