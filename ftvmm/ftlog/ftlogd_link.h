// ftlogd_link.h - ftvmm's side of ftlogd's control socket
// (Documentation/ftlogd.md): a primary registers its log ring, a
// secondary attaches to the ring ftlogd fills. With kernel capture the
// primary registers its kvm_ft.ko session instead.
#pragma once

#include <string>

#include "base/status.h"
#include "base/unique_fd.h"
#include "ring/ring.h"

namespace kvmft::vmm {

// Creates a one-ring memfd set of ring_bytes and registers it as session
// with peer. *ctl keeps the registration alive; *ack_fd is ftlogd's ACK
// eventfd (invalid with an ftlogd that gives none).
Status RegisterPrimary(const std::string &socket, const std::string &session,
		       const std::string &peer, uint32_t ring_bytes, RingSet *rings,
		       UniqueFd *ctl, UniqueFd *ack_fd);
// Registers a kvm_ft.ko session fd (kernel capture: ftvmm's VM, its
// records appended by KVM_FT_APPEND) as session with peer, as
// `ftctl session register` does. *ctl and *ack_fd as above.
Status RegisterPrimaryKernel(const std::string &socket, const std::string &session,
			     const std::string &peer, int session_fd, UniqueFd *ctl,
			     UniqueFd *ack_fd);
// Attaches to session's secondary ring, retrying until it exists or
// timeout_ns passes. With peer, ftlogd refuses (at once, no retry) a
// session fed by another host than peer (Documentation/ftlogd.md,
// "Secondary side").
Status AttachSecondary(const std::string &socket, const std::string &session,
		       uint64_t timeout_ns, RingSet *rings, UniqueFd *ctl,
		       const std::string &peer = "");

} // namespace kvmft::vmm
