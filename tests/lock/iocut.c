// iocut.c - LD_PRELOAD shim that cuts one process off its storage, for
// tests/lock/storage_cut.sh. While the file named by $KVMFT_IOCUT exists,
// every pread/pwrite of the process hangs (file says "hang") until the
// file is removed, or fails with EIO (anything else). Other processes,
// and this one before the cut, do real I/O.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

typedef ssize_t (*io_fn)(int, void *, size_t, off_t);

// 0: not cut; 1: hang; 2: error.
static int cut_mode(void)
{
	const char *path = getenv("KVMFT_IOCUT");
	char buf[8] = {0};
	if (!path)
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n >= 4 && strncmp(buf, "hang", 4) == 0 ? 1 : 2;
}

static int gate(void)
{
	struct timespec ts = {0, 20 * 1000 * 1000};
	int m;
	while ((m = cut_mode()) == 1)
		nanosleep(&ts, NULL);
	if (m == 2) {
		errno = EIO;
		return -1;
	}
	return 0;
}

ssize_t pread64(int fd, void *buf, size_t n, off_t off)
{
	static io_fn real;
	if (!real)
		real = (io_fn)dlsym(RTLD_NEXT, "pread64");
	return gate() ? -1 : real(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	static io_fn real;
	if (!real)
		real = (io_fn)dlsym(RTLD_NEXT, "pwrite64");
	return gate() ? -1 : real(fd, (void *)buf, n, off);
}

ssize_t pread(int fd, void *buf, size_t n, off_t off) { return pread64(fd, buf, n, off); }
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) { return pwrite64(fd, buf, n, off); }
