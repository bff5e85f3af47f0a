// sqlsvc - the protected application of the fthbd end-to-end tests and
// benchmark, and its client.
//
//   fthb-sqlsvc serve DB ADDR PORT     one transaction per request line "N":
//                                      INSERT row N (WAL, synchronous=FULL),
//                                      COMMIT, reply "ok N"
//   fthb-sqlsvc client ADDR PORT ACKED SECONDS
//                                      sends 1, 2, ... and appends each N the
//                                      service acknowledged to ACKED;
//                                      reconnects after a failure and
//                                      resends the same N (the insert is
//                                      idempotent) until SECONDS pass
//   fthb-sqlsvc verify DB ACKED        the database passes integrity_check
//                                      and holds every acknowledged row
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

namespace {

int Die(const char *what, const char *why)
{
	std::fprintf(stderr, "sqlsvc: %s: %s\n", what, why);
	return 1;
}

bool Exec(sqlite3 *db, const char *sql)
{
	char *err = nullptr;
	if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
		std::fprintf(stderr, "sqlsvc: %s: %s\n", sql, err ? err : "?");
		sqlite3_free(err);
		return false;
	}
	return true;
}

sockaddr_in Addr(const char *ip, const char *port)
{
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_port = htons(static_cast<uint16_t>(std::atoi(port)));
	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

double Now()
{
	timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int Serve(const char *path, const char *ip, const char *port)
{
	sqlite3 *db;
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return Die(path, sqlite3_errmsg(db));
	sqlite3_busy_timeout(db, 5000);
	if (!Exec(db, "PRAGMA journal_mode=WAL") || !Exec(db, "PRAGMA synchronous=FULL") ||
	    !Exec(db, "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, pad BLOB)"))
		return 1;
	sqlite3_stmt *ins;
	sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO t VALUES(?, randomblob(300))", -1, &ins, nullptr);
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	sockaddr_in a = Addr(ip, port);
	if (bind(l, reinterpret_cast<sockaddr *>(&a), sizeof a) < 0 || listen(l, 4) < 0)
		return Die("listen", std::strerror(errno));
	for (;;) {
		int c = accept(l, nullptr, nullptr);
		if (c < 0)
			continue;
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		FILE *in = fdopen(c, "r");
		char line[64];
		while (std::fgets(line, sizeof line, in)) {
			long n = std::atol(line);
			bool ok = Exec(db, "BEGIN");
			sqlite3_bind_int64(ins, 1, n);
			ok = ok && sqlite3_step(ins) == SQLITE_DONE;
			sqlite3_reset(ins);
			ok = ok && Exec(db, "COMMIT");
			if (!ok)
				return 1;
			char r[64];
			int len = std::snprintf(r, sizeof r, "ok %ld\n", n);
			if (write(c, r, len) != len)
				break;
		}
		std::fclose(in);
	}
}

// One request on fd; true if acknowledged within 2 s.
bool Request(int fd, long n)
{
	char r[64];
	int len = std::snprintf(r, sizeof r, "%ld\n", n);
	if (write(fd, r, len) != len)
		return false;
	std::string got;
	double end = Now() + 2;
	while (got.find('\n') == std::string::npos) {
		pollfd p = {fd, POLLIN, 0};
		int ms = static_cast<int>((end - Now()) * 1000);
		if (ms <= 0 || poll(&p, 1, ms) <= 0)
			return false;
		ssize_t k = read(fd, r, sizeof r);
		if (k <= 0)
			return false;
		got.append(r, k);
	}
	return got == "ok " + std::to_string(n) + "\n";
}

int Client(const char *ip, const char *port, const char *acked, double seconds)
{
	FILE *out = std::fopen(acked, "a");
	if (!out)
		return Die(acked, std::strerror(errno));
	double end = Now() + seconds;
	long n = 1;
	int fd = -1;
	while (Now() < end) {
		if (fd < 0) {
			fd = socket(AF_INET, SOCK_STREAM, 0);
			timeval tv = {0, 500000};
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
			sockaddr_in a = Addr(ip, port);
			if (connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) < 0) {
				close(fd);
				fd = -1;
				usleep(50000);
				continue;
			}
		}
		if (Request(fd, n)) {
			std::fprintf(out, "%ld\n", n++);
			std::fflush(out);
		} else {
			close(fd);
			fd = -1;
		}
	}
	return 0;
}

int Verify(const char *path, const char *acked)
{
	sqlite3 *db;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK)
		return Die(path, sqlite3_errmsg(db));
	sqlite3_stmt *s;
	sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, nullptr);
	if (sqlite3_step(s) != SQLITE_ROW)
		return Die("integrity_check", sqlite3_errmsg(db));
	std::string ic = reinterpret_cast<const char *>(sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	if (ic != "ok")
		return Die("integrity_check", ic.c_str());
	std::set<long> have;
	sqlite3_prepare_v2(db, "SELECT id FROM t", -1, &s, nullptr);
	while (sqlite3_step(s) == SQLITE_ROW)
		have.insert(sqlite3_column_int64(s, 0));
	sqlite3_finalize(s);
	FILE *in = std::fopen(acked, "r");
	long n, count = 0, missing = 0;
	while (in && std::fscanf(in, "%ld", &n) == 1) {
		count++;
		if (!have.count(n)) {
			if (missing++ < 10)
				std::fprintf(stderr, "sqlsvc: acknowledged row %ld is missing\n", n);
		}
	}
	if (in)
		std::fclose(in);
	sqlite3_close(db);
	std::printf("integrity ok, %ld acknowledged, %zu rows, %ld missing\n", count, have.size(),
		    missing);
	return missing ? 1 : 0;
}

} // namespace

int main(int argc, char **argv)
{
	if (argc == 5 && !std::strcmp(argv[1], "serve"))
		return Serve(argv[2], argv[3], argv[4]);
	if (argc == 6 && !std::strcmp(argv[1], "client"))
		return Client(argv[2], argv[3], argv[4], std::atof(argv[5]));
	if (argc == 4 && !std::strcmp(argv[1], "verify"))
		return Verify(argv[2], argv[3]);
	std::fprintf(stderr, "usage: fthb-sqlsvc { serve DB ADDR PORT | client ADDR PORT ACKED SECONDS"
			     " | verify DB ACKED }\n");
	return 2;
}
