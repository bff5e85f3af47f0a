// SPDX-License-Identifier: GPL-2.0
/*
 * guest_loop - run a micro-guest that writes 0, 1, 2, ... to a port N
 * times, sleeping between exits: a VM for ftctl trace and rmmod tests to
 * attach to from outside.
 *
 * usage: guest_loop PORT COUNT DELAY_US   (exit 0 if all exits seen)
 */
#include <stdio.h>
#include <stdlib.h>
#include "microvm.h"

int main(int argc, char **argv)
{
	uint8_t code[16];
	struct mvm m;
	long port, n, delay, r;

	if (argc != 4) {
		fprintf(stderr, "usage: guest_loop PORT COUNT DELAY_US\n");
		return 2;
	}
	port = strtol(argv[1], NULL, 0);
	n = strtol(argv[2], NULL, 0);
	delay = strtol(argv[3], NULL, 0);
	if (port < 0 || port > 255 || n < 1 || n > 65535 || delay < 0) {
		fprintf(stderr, "guest_loop: bad arguments\n");
		return 2;
	}
	r = mvm_create(&m, code, mvm_loop_code(code, port, n), false);
	if (r) {
		fprintf(stderr, "guest_loop: cannot create VM: %ld\n", r);
		return 1;
	}
	r = mvm_run_loop(&m, delay);
	mvm_destroy(&m);
	printf("guest_loop: %ld exits\n", r);
	return r == n ? 0 : 1;
}
