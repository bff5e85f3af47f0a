// libFuzzer target: the control socket message parser. Must never crash
// or throw, whatever the bytes.
#include "channel/unix_msg.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	nlohmann::json j;
	kvmft::Status st = kvmft::ParseMsg(reinterpret_cast<const char *>(data), size, &j);
	if (st.ok() && !j.is_object())
		__builtin_trap();
	if (st.ok())
		(void)j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
	return 0;
}
