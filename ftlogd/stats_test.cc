// Tests for the session measures.
#include "stats.h"

#include <catch2/catch.hpp>

using namespace kvmft::logd;

TEST_CASE("percentiles over the window")
{
	Percentiles p;
	CHECK(p.Get(50) == 0);
	for (uint64_t i = 1; i <= 100; i++)
		p.Add(i);
	CHECK(p.Get(50) == 50);
	CHECK(p.Get(99) == 99);
	CHECK(p.Get(100) == 100);
	// Old samples leave the window.
	for (size_t i = 0; i < Percentiles::kWindow; i++)
		p.Add(7);
	CHECK(p.Get(99) == 7);
	CHECK(p.count() == 100 + Percentiles::kWindow);
}

TEST_CASE("moving average and bandwidth")
{
	Ewma e;
	e.Add(80);
	CHECK(e.get() == 80);
	e.Add(0);
	CHECK(e.get() == 70);
	Bandwidth b;
	b.Tick(1000000000ull);
	b.Add(500);
	b.Tick(1500000000ull); // half a second: no new figure yet
	CHECK(b.bps() == 0);
	b.Add(1500);
	b.Tick(3000000000ull);
	CHECK(b.bps() == 1000);
}
