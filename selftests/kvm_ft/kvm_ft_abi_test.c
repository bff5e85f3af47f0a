// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_ft_abi_test - /dev/kvm_ft refuses what it must: every malformed
 * ioctl and mmap gets its errno and changes nothing, and unprivileged
 * callers get only what is theirs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include "kselftest_harness.h"
#include "ftsession.h"
#include "microvm.h"
#include "ft_test.h"

static int attach_raw(int dev, struct kvm_ft_attach *a)
{
	int fd = ioctl(dev, KVM_FT_ATTACH, a);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return -errno;
}

/* Every malformed ioctl gets its errno and changes nothing. */
TEST(bad_ioctls)
{
	struct kvm_ft_attach a;
	struct kvm_ft_open o = { .id = 0xfffffff0 };
	uint8_t code[16];
	struct mvm m;
	int dev, nul;
	char buf[64] = { 0 };

	NEED_KVM_FT(_metadata);
	ASSERT_EQ(0, mvm_create(&m, code, mvm_loop_code(code, 0x80, 1), false));
	dev = open(KVM_FT_DEVICE, O_RDWR);
	ASSERT_GE(dev, 0);
	nul = open("/dev/null", O_RDWR);
	ASSERT_GE(nul, 0);

	EXPECT_EQ(-1, ioctl(dev, _IO(KVM_FT_IOC_MAGIC, 0x7f)));
	EXPECT_EQ(ENOTTY, errno);
	/* Wrong size: a different command number. */
	EXPECT_EQ(-1, ioctl(dev, _IOW(KVM_FT_IOC_MAGIC, 0x01, char[40]), buf));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(dev, KVM_FT_ATTACH, (void *)16));
	EXPECT_EQ(EFAULT, errno);

#define ATTACH(...) (a = (struct kvm_ft_attach){ __VA_ARGS__ }, attach_raw(dev, &a))
	EXPECT_EQ(-EINVAL, ATTACH(.vm_fd = m.vm, .reserved[2] = 1));
	EXPECT_EQ(-EINVAL, ATTACH(.vm_fd = m.vm, .ring_bytes = 5000));
	EXPECT_EQ(-EINVAL, ATTACH(.vm_fd = m.vm, .ring_bytes = 1024));
	EXPECT_EQ(-EINVAL, ATTACH(.vm_fd = m.vm, .ring_bytes = 1u << 25));
	EXPECT_EQ(-E2BIG, ATTACH(.vm_fd = m.vm, .nr_vcpus = 65));
	EXPECT_EQ(-E2BIG, ATTACH(.vm_fd = m.vm, .nr_vcpus = 64,
				 .ring_bytes = 1u << 24));
	EXPECT_EQ(-EINVAL, ATTACH(.vm_fd = m.vm, .pid = 1));
	EXPECT_EQ(-EINVAL, ATTACH(.vm_fd = nul));		/* not KVM */
	EXPECT_EQ(-EINVAL, ATTACH(.vm_fd = m.kvm));		/* /dev/kvm */
	EXPECT_EQ(-EINVAL, ATTACH(.vm_fd = m.vcpu));		/* a vCPU */
	EXPECT_EQ(-EBADF, ATTACH(.vm_fd = 999));
	EXPECT_EQ(-EINVAL, ATTACH(.vm_fd = -5));
	EXPECT_EQ(-EINVAL, ATTACH(.vm_fd = -1, .pid = 0));
	EXPECT_EQ(-ESRCH, ATTACH(.vm_fd = -1, .pid = 4000000));
#undef ATTACH
	EXPECT_EQ(-1, ioctl(dev, KVM_FT_OPEN, &o));
	EXPECT_EQ(ENOENT, errno);
	o.reserved0 = 1;
	EXPECT_EQ(-1, ioctl(dev, KVM_FT_OPEN, &o));
	EXPECT_EQ(EINVAL, errno);
	/* Nothing above left an attachment behind. */
	a = (struct kvm_ft_attach){ .vm_fd = m.vm };
	EXPECT_EQ(0, attach_raw(dev, &a));
	close(nul);
	close(dev);
	mvm_destroy(&m);
}

/* Only control pages may be mapped writable; no upgrade later. */
TEST(bad_mmap)
{
	long ps = sysconf(_SC_PAGESIZE);
	uint8_t code[16];
	struct fts s;
	struct mvm m;
	void *p;

	NEED_KVM_FT(_metadata);
	ASSERT_EQ(0, mvm_create(&m, code, mvm_loop_code(code, 0x80, 1), false));
	ASSERT_EQ(0, fts_attach(&s, m.vm, 0, 2, 0));
	/* producer page writable */
	p = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_SHARED, s.fd, ps);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EPERM, errno);
	/* whole ring writable */
	p = mmap(NULL, s.si.ring_stride, PROT_READ | PROT_WRITE, MAP_SHARED, s.fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	/* past the end */
	p = mmap(NULL, ps, PROT_READ, MAP_SHARED, s.fd, s.map_len);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	/* private mapping */
	p = mmap(NULL, ps, PROT_READ, MAP_PRIVATE, s.fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	/* read-only data cannot become writable */
	p = mmap(NULL, ps, PROT_READ, MAP_SHARED, s.fd, 2 * ps);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, mprotect(p, ps, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	munmap(p, ps);
	/* the second ring's control page may be writable */
	p = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_SHARED, s.fd,
		 s.si.ring_stride);
	ASSERT_NE(MAP_FAILED, p);
	munmap(p, ps);
	fts_close(&s);
	mvm_destroy(&m);
}

/* Without privileges: pid attach and open refused, fd attach allowed. */
TEST(unprivileged)
{
	uint8_t code[16];
	struct kvm_ft_attach a = { .vm_fd = -1, .pid = 1 };
	struct kvm_ft_open o = { .id = 1 };
	struct mvm m;
	int dev, fd;

	NEED_KVM_FT(_metadata);
	ASSERT_EQ(0, mvm_create(&m, code, mvm_loop_code(code, 0x80, 1), false));
	dev = open(KVM_FT_DEVICE, O_RDWR);
	ASSERT_GE(dev, 0);
	ASSERT_EQ(0, setresuid(65534, 65534, 65534));	/* drops all caps */
	EXPECT_EQ(-1, ioctl(dev, KVM_FT_ATTACH, &a));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, ioctl(dev, KVM_FT_OPEN, &o));
	EXPECT_EQ(EPERM, errno);
	a = (struct kvm_ft_attach){ .vm_fd = m.vm };
	fd = ioctl(dev, KVM_FT_ATTACH, &a);
	EXPECT_GE(fd, 0);
	EXPECT_EQ(-1, open(KVM_FT_DEVICE, O_RDWR));	/* mode 0600 */
	EXPECT_EQ(EACCES, errno);
}

TEST_HARNESS_MAIN
