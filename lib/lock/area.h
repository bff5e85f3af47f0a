// area.h - create and inspect a whole lock area (ftctl lock init/show).
#pragma once

#include <cstdint>
#include <vector>

#include "lock/disk.h"
#include "lock/format.h"

namespace kvmft::lock {

// Write a fresh area: every host slot and claim free, then the header
// (last, so an interrupted init leaves no valid area). Refuses to
// overwrite a valid area unless force. Fills hdr->uuid and created_ns.
Status FormatArea(Disk *disk, AreaHeader *hdr, bool force);

struct HostView {
	HostSlot slot;
	std::string error; // non-empty: the sector did not decode
};

struct ClaimView {
	uint32_t row = 0;
	Claim claim;
	// The claim's incarnation still holds its host id (it is void
	// otherwise). Whether that host is still renewing needs watching
	// over time; see "heartbeat age" in `ftctl lock show`.
	bool current = false;
};

struct AreaView {
	AreaHeader hdr;
	std::vector<HostView> hosts;   // index 0 = host id 1
	std::vector<ClaimView> claims; // owned claims only
	std::vector<std::string> errors; // undecodable claim sectors
};

// One pass over the area (two reads: hosts, then claims).
Status InspectArea(Disk *disk, AreaView *view);

} // namespace kvmft::lock
