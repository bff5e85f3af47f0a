// crc_bench.cc - CRC-32C speed of lib/log (every FT log byte is checked
// four times: ring record, wire frame on both ends, replay) against two
// baselines measured in the same run: memcpy of the same buffer, and a
// single serial chain of the crc32 instruction (what a plain loop gets).
// Prints Google Benchmark's table, then each figure as a ratio.
#include <benchmark/benchmark.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "log/crc32c.h"

namespace {

std::vector<uint8_t> Buffer(size_t n)
{
	std::vector<uint8_t> b(n);
	uint32_t x = 1;
	for (auto &c : b) {
		x = x * 1103515245 + 12345;
		c = static_cast<uint8_t>(x >> 16);
	}
	return b;
}

__attribute__((target("sse4.2"))) uint32_t SerialChain(const uint8_t *p, size_t n)
{
	uint64_t c = ~0U;
	for (; n >= 8; n -= 8, p += 8) {
		uint64_t v;
		std::memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	return ~static_cast<uint32_t>(c);
}

void BmMemcpy(benchmark::State &s)
{
	auto src = Buffer(s.range(0));
	std::vector<uint8_t> dst(src.size());
	for (auto _ : s) {
		std::memcpy(dst.data(), src.data(), src.size());
		benchmark::ClobberMemory();
	}
	s.SetBytesProcessed(s.iterations() * s.range(0));
}

void BmSerial(benchmark::State &s)
{
	auto b = Buffer(s.range(0));
	for (auto _ : s)
		benchmark::DoNotOptimize(SerialChain(b.data(), b.size()));
	s.SetBytesProcessed(s.iterations() * s.range(0));
}

void BmCrc32c(benchmark::State &s)
{
	auto b = Buffer(s.range(0));
	for (auto _ : s)
		benchmark::DoNotOptimize(kvmft::Crc32c(0, b.data(), b.size()));
	s.SetBytesProcessed(s.iterations() * s.range(0));
}

void BmSoft(benchmark::State &s)
{
	auto b = Buffer(s.range(0));
	for (auto _ : s)
		benchmark::DoNotOptimize(kvmft::Crc32cSoft(0, b.data(), b.size()));
	s.SetBytesProcessed(s.iterations() * s.range(0));
}

// 4 KiB: one log record; 64 KiB: one wire frame.
BENCHMARK(BmMemcpy)->Arg(4096)->Arg(65536);
BENCHMARK(BmSerial)->Arg(4096)->Arg(65536);
BENCHMARK(BmCrc32c)->Arg(4096)->Arg(65536);
BENCHMARK(BmSoft)->Arg(4096)->Arg(65536);

// Keeps each run's bytes per second for the ratio table.
class Collect : public benchmark::ConsoleReporter {
public:
	std::map<std::string, double> bps;
	void ReportRuns(const std::vector<Run> &runs) override
	{
		ConsoleReporter::ReportRuns(runs);
		for (const auto &r : runs)
			if (r.counters.count("bytes_per_second"))
				bps[r.benchmark_name()] = r.counters.at("bytes_per_second");
	}
};

} // namespace

int main(int argc, char **argv)
{
	benchmark::Initialize(&argc, argv);
	Collect rep;
	benchmark::RunSpecifiedBenchmarks(&rep);
	benchmark::Shutdown();
	for (const char *size : {"4096", "65536"}) {
		auto get = [&](const char *bm) {
			auto it = rep.bps.find(fmt::format("{}/{}", bm, size));
			return it == rep.bps.end() ? 0.0 : it->second;
		};
		double mc = get("BmMemcpy"), ser = get("BmSerial"), crc = get("BmCrc32c"),
		       soft = get("BmSoft");
		if (mc <= 0 || ser <= 0)
			continue;
		fmt::print("{:>5} B  Crc32c {:.2f} GB/s = {:.2f} x serial crc32 chain, {:.2f} x memcpy"
			   "; table version {:.2f} x serial\n",
			   size, crc / 1e9, crc / ser, crc / mc, soft / ser);
	}
	return 0;
}
