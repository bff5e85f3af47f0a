/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ft_test.h - what the kvm_ft kselftests share on top of the harness:
 * skip a test when /dev/kvm or kvm_ft.ko is missing.
 */
#ifndef FT_TEST_H
#define FT_TEST_H

#include <unistd.h>
#include "kselftest_harness.h"
#include "ftsession.h"

#define NEED_KVM_FT(_metadata) do {					\
	if (access("/dev/kvm", R_OK | W_OK))				\
		SKIP(return, "no /dev/kvm");				\
	if (access(KVM_FT_DEVICE, R_OK | W_OK))				\
		SKIP(return, "no " KVM_FT_DEVICE " (kvm_ft.ko not loaded)"); \
} while (0)

#endif
