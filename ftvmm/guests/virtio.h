/*
 * virtio.h - the test guests' virtio-mmio v2 driver side: probe and
 * feature negotiation, split-queue set-up, DRIVER_OK
 * (Documentation/ftvmm.md lists the registers). Each returns 0 or what
 * went wrong, for the guest's fail().
 */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

#include "rt.h"

#define VIO(base, off) (*(volatile u32 *)((base) + (off)))

/* Resets the device at base, checks it is device `id`, and accepts
 * exactly `features` (VIRTIO_F_VERSION_1 among them), all of which it
 * must offer. */
static inline const char *vio_init(u64 base, u32 id, u64 features)
{
	if (VIO(base, 0x000) != 0x74726976 || VIO(base, 0x004) != 2 || VIO(base, 0x008) != id)
		return "no virtio-mmio v2 device of the expected id";
	VIO(base, 0x070) = 0;		/* reset */
	VIO(base, 0x070) = 1;		/* ACKNOWLEDGE */
	VIO(base, 0x070) = 1 | 2;	/* DRIVER */
	VIO(base, 0x014) = 1;
	u64 offered = (u64)VIO(base, 0x010) << 32;
	VIO(base, 0x014) = 0;
	offered |= VIO(base, 0x010);
	if ((offered & features) != features)
		return "the device lacks a feature we need";
	VIO(base, 0x024) = 0;
	VIO(base, 0x020) = (u32)features;
	VIO(base, 0x024) = 1;
	VIO(base, 0x020) = (u32)(features >> 32);
	VIO(base, 0x070) = 1 | 2 | 8;	/* FEATURES_OK */
	if (!(VIO(base, 0x070) & 8))
		return "features refused";
	return 0;
}

/* Queue q of n entries on these rings. */
static inline const char *vio_queue(u64 base, u32 q, u32 n, const volatile void *desc,
				    const volatile void *avail, const volatile void *used)
{
	VIO(base, 0x030) = q;
	if (VIO(base, 0x034) < n)
		return "queue too small";
	VIO(base, 0x038) = n;
	VIO(base, 0x080) = (u32)(u64)desc, VIO(base, 0x084) = (u64)desc >> 32;
	VIO(base, 0x090) = (u32)(u64)avail, VIO(base, 0x094) = (u64)avail >> 32;
	VIO(base, 0x0a0) = (u32)(u64)used, VIO(base, 0x0a4) = (u64)used >> 32;
	VIO(base, 0x044) = 1;		/* QueueReady */
	if (VIO(base, 0x044) != 1)
		return "queue not ready";
	return 0;
}

static inline const char *vio_driver_ok(u64 base)
{
	VIO(base, 0x070) = 1 | 2 | 8 | 4;	/* DRIVER_OK */
	return VIO(base, 0x070) & 0x40 ? "device needs reset" : 0;
}

#endif
