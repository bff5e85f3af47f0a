// mode.cc - choosing a VM's replication mode (mode.h).
#include "mode/mode.h"

#include "epoch/epochs.h"
#include "replay/record_replay.h"

namespace kvmft::vmm {

std::unique_ptr<Mode> MakeMode(Machine *m, const ModeConfig &cfg)
{
	if (m->vm().nr_vcpus() == 1)
		return std::make_unique<RecordReplay>(m, cfg);
	return std::make_unique<Epochs>(m, cfg);
}

} // namespace kvmft::vmm
