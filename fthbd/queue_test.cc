// queue_test.cc - record framing, safe queue scan and the failover apply
// rule.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "queue.h"

using namespace kvmft::hbd;

namespace {

Record Write(uint64_t seq, const std::string &path, uint64_t off, const std::string &data,
	     bool status = true)
{
	Record r;
	r.seq = seq;
	r.op = Op::kWrite;
	r.has_status = status;
	r.status = static_cast<int32_t>(data.size());
	r.path = path;
	r.arg = off;
	r.data = data;
	return r;
}

std::string Frames(const std::vector<Record> &rs)
{
	std::string s;
	for (const Record &r : rs)
		Encode(r, &s);
	return s;
}

std::string TempDir()
{
	char t[] = "/tmp/fthbd-test.XXXXXX";
	REQUIRE(mkdtemp(t));
	return t;
}

std::string ReadFile(const std::string &p)
{
	std::ifstream f(p);
	std::stringstream s;
	s << f.rdbuf();
	return s.str();
}

} // namespace

TEST_CASE("record: a frame decodes to what was encoded")
{
	Record r = Write(7, "/db/x", 4096, std::string("a\0b", 3));
	r.path2 = "/other";
	std::string f = Frames({r});
	Record d;
	size_t used = 0;
	std::string why;
	REQUIRE(Decode(reinterpret_cast<const uint8_t *>(f.data()), f.size(), &d, &used, &why) ==
		Decoded::kOk);
	CHECK(used == f.size());
	CHECK(d.seq == 7);
	CHECK(d.op == Op::kWrite);
	CHECK(d.has_status);
	CHECK(d.status == 3);
	CHECK(d.path == "/db/x");
	CHECK(d.path2 == "/other");
	CHECK(d.arg == 4096);
	CHECK(d.data == std::string("a\0b", 3));
}

TEST_CASE("record: every single corrupted byte of a frame is refused")
{
	std::string f = Frames({Write(1, "/f", 0, "hello")});
	for (size_t i = 0; i < f.size(); i++) {
		std::string g = f;
		g[i] ^= 0x40;
		Record d;
		size_t used = 0;
		std::string why;
		Decoded res = Decode(reinterpret_cast<const uint8_t *>(g.data()), g.size(), &d, &used,
				     &why);
		// A corrupted length may also read as "more to come"; never as good.
		INFO("byte " << i);
		CHECK(res != Decoded::kOk);
	}
}

TEST_CASE("record: a truncated frame is short, never decoded")
{
	std::string f = Frames({Write(1, "/f", 0, "hello")});
	for (size_t n = 0; n < f.size(); n++) {
		Record d;
		size_t used = 0;
		std::string why;
		CHECK(Decode(reinterpret_cast<const uint8_t *>(f.data()), n, &d, &used, &why) ==
		      Decoded::kShort);
	}
}

TEST_CASE("safe queue: the scan stops at a torn tail or a corrupt record")
{
	std::string f = Frames({Write(1, "/f", 0, "a"), Write(2, "/f", 1, "b"), Write(3, "/f", 2, "c")});
	ScanResult whole;
	ScanBytes(f, &whole);
	CHECK(whole.records.size() == 3);
	CHECK(whole.stop.empty());

	ScanResult torn;
	ScanBytes(f.substr(0, f.size() - 1), &torn);
	CHECK(torn.records.size() == 2);
	CHECK(torn.stop.find("truncated") != std::string::npos);

	std::string bad = f;
	bad[kHeaderLen + 40 + 2] ^= 1; // inside the second record
	ScanResult corrupt;
	ScanBytes(bad, &corrupt);
	CHECK(corrupt.records.size() == 1); // the third is never trusted either
	CHECK(corrupt.stop.find("CRC") != std::string::npos);
}

TEST_CASE("safe queue: reopening cuts a torn tail and appends after the last good record")
{
	std::string dir = TempDir();
	std::string path = dir + "/safe.q";
	{
		std::ofstream o(path, std::ios::binary);
		std::string f = Frames({Write(1, "/f", 0, "a"), Write(2, "/f", 1, "b")});
		o << f.substr(0, f.size() - 3);
	}
	SafeQueue q;
	uint64_t last = 99;
	std::string note;
	REQUIRE(SafeQueue::Open(path, &q, &last, &note).ok());
	CHECK(last == 1);
	CHECK(note.find("truncated") != std::string::npos);
	REQUIRE(q.Append(Frames({Write(2, "/f", 1, "B")})).ok());
	ScanResult sr;
	REQUIRE(Scan(path, &sr).ok());
	REQUIRE(sr.records.size() == 2);
	CHECK(sr.records[1].data == "B");
	CHECK(sr.stop.empty());
	std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("failover rule: apply in order, stop at a gap or a record without status")
{
	std::vector<Record> rs = {Write(1, "/f", 0, "a"), Write(2, "/f", 1, "b"),
				  Write(4, "/f", 3, "d"), Write(5, "/f", 4, "e")};
	CHECK(PlanApply(rs, 0) == 2); // 3 is missing: 4 and 5 are discarded
	CHECK(PlanApply(rs, 1) == 0); // the first record is not the next one
	rs[2].seq = 3;
	rs[3].seq = 4;
	CHECK(PlanApply(rs, 0) == 4);
	rs[1].has_status = false;
	CHECK(PlanApply(rs, 0) == 1); // 2 never completed: nothing after it
	std::vector<Record> swapped = {Write(2, "/f", 1, "b"), Write(1, "/f", 0, "a")};
	CHECK(PlanApply(swapped, 0) == 0);
}

TEST_CASE("failover rule: applying the plan rebuilds the active's files")
{
	std::string dir = TempDir();
	kvmft::UniqueFd d(open(dir.c_str(), O_RDONLY | O_DIRECTORY));
	REQUIRE(d.valid());
	std::vector<Record> rs;
	auto add = [&](Op op, const std::string &p, uint64_t arg, int32_t status = 0) {
		Record r;
		r.seq = rs.size() + 1;
		r.op = op;
		r.has_status = true;
		r.status = status;
		r.path = p;
		r.arg = arg;
		rs.push_back(r);
		return &rs.back();
	};
	add(Op::kMkdir, "/d", 0755);
	add(Op::kCreate, "/d/f", 0644);
	rs.push_back(Write(3, "/d/f", 0, "hello world"));
	add(Op::kTruncate, "/d/f", 5);
	add(Op::kCreate, "/d/g", 0644);
	add(Op::kRename, "/d/g", 0)->path2 = "/d/h";
	add(Op::kWrite, "/d/missing", 0, -ENOENT)->data = "x"; // failed there: no effect
	rs.push_back(Write(8, "/d/f", 5, "!!"));
	rs.back().has_status = false; // never completed: not applied
	size_t n = PlanApply(rs, 0);
	REQUIRE(n == 7);
	for (size_t i = 0; i < n; i++)
		REQUIRE(ApplyRecord(d.get(), rs[i]).ok());
	CHECK(ReadFile(dir + "/d/f") == "hello");
	CHECK(access((dir + "/d/h").c_str(), F_OK) == 0);
	CHECK(access((dir + "/d/g").c_str(), F_OK) != 0);
	CHECK(access((dir + "/d/missing").c_str(), F_OK) != 0);
	std::system(("rm -rf " + dir).c_str());
}
