// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_ft_nl_test - the "kvm_ft" generic netlink family: info, list with
 * counters, persistent attach by pid, events, and every malformed or
 * unprivileged request refused with its errno and extack message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include "kselftest_harness.h"
#include "ftsession.h"
#include "microvm.h"

struct nl {
	struct mnl_socket *sk;
	uint16_t family;
	uint32_t mcgrp;
	char buf[16384];
	char extack[256];
	uint32_t seq;
};

static int family_attr_cb(const struct nlattr *a, void *data)
{
	struct nl *n = data;

	if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID)
		n->family = mnl_attr_get_u16(a);
	if (mnl_attr_get_type(a) == CTRL_ATTR_MCAST_GROUPS) {
		struct nlattr *g, *x;

		mnl_attr_for_each_nested(g, a)
			mnl_attr_for_each_nested(x, g)
				if (mnl_attr_get_type(x) == CTRL_ATTR_MCAST_GRP_ID)
					n->mcgrp = mnl_attr_get_u32(x);
	}
	return MNL_CB_OK;
}

static int family_cb(const struct nlmsghdr *h, void *data)
{
	return mnl_attr_parse(h, sizeof(struct genlmsghdr), family_attr_cb, data);
}

static struct nlmsghdr *put_hdr(struct nl *n, uint16_t type, uint8_t cmd,
				uint16_t flags)
{
	struct nlmsghdr *h = mnl_nlmsg_put_header(n->buf);
	struct genlmsghdr *g;

	h->nlmsg_type = type;
	h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	h->nlmsg_seq = ++n->seq;
	g = mnl_nlmsg_put_extra_header(h, sizeof(*g));
	g->cmd = cmd;
	g->version = 1;
	return h;
}

/* Send, run cb on replies; 0 or -errno, extack text in n->extack. */
static int talk(struct nl *n, struct nlmsghdr *h, mnl_cb_t cb, void *data)
{
	int len;

	n->extack[0] = 0;
	if (mnl_socket_sendto(n->sk, h, h->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		const struct nlmsghdr *r;

		len = mnl_socket_recvfrom(n->sk, n->buf, sizeof(n->buf));
		if (len < 0)
			return -errno;
		r = (void *)n->buf;
		if (r->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(r);
			const struct nlattr *a;
			size_t off = sizeof(*e);

			if (!(r->nlmsg_flags & NLM_F_CAPPED))
				off += e->msg.nlmsg_len - sizeof(e->msg);
			mnl_attr_for_each(a, r, off)
				if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG)
					snprintf(n->extack, sizeof(n->extack),
						 "%s", mnl_attr_get_str(a));
			return e->error;
		}
		len = mnl_cb_run(n->buf, len, 0, 0, cb, data);
		if (len <= MNL_CB_STOP)
			return len < 0 ? -errno : 0;
	}
}

static int nl_open(struct nl *n)
{
	struct nlmsghdr *h;
	int one = 1;

	memset(n, 0, sizeof(*n));
	n->sk = mnl_socket_open(NETLINK_GENERIC);
	if (!n->sk || mnl_socket_bind(n->sk, 0, MNL_SOCKET_AUTOPID) < 0)
		return -errno;
	mnl_socket_setsockopt(n->sk, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(n->sk, NETLINK_CAP_ACK, &one, sizeof(one));
	h = put_hdr(n, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 0);
	mnl_attr_put_strz(h, CTRL_ATTR_FAMILY_NAME, KVM_FT_GENL_NAME);
	return talk(n, h, family_cb, n);
}

struct vminfo {
	uint32_t id, pid, nr_vcpus;
	uint8_t bound, persistent;
	uint64_t records, lost, version, features;
	int count;
};

static int vm_attr_cb(const struct nlattr *a, void *data)
{
	struct vminfo *v = data;
	struct nlattr *ring, *x;

	switch (mnl_attr_get_type(a)) {
	case KVM_FT_A_VM_ID: v->id = mnl_attr_get_u32(a); break;
	case KVM_FT_A_PID: v->pid = mnl_attr_get_u32(a); break;
	case KVM_FT_A_NR_VCPUS: v->nr_vcpus = mnl_attr_get_u32(a); break;
	case KVM_FT_A_BOUND: v->bound = mnl_attr_get_u8(a); break;
	case KVM_FT_A_PERSISTENT: v->persistent = mnl_attr_get_u8(a); break;
	case KVM_FT_A_VERSION: v->version = mnl_attr_get_u32(a); break;
	case KVM_FT_A_FEATURES: v->features = mnl_attr_get_u64(a); break;
	case KVM_FT_A_RINGS:
		mnl_attr_for_each_nested(ring, a)
			mnl_attr_for_each_nested(x, ring) {
				if (mnl_attr_get_type(x) == KVM_FT_A_RSTAT_RECORDS)
					v->records += mnl_attr_get_u64(x);
				if (mnl_attr_get_type(x) == KVM_FT_A_RSTAT_LOST)
					v->lost += mnl_attr_get_u64(x);
			}
		break;
	}
	return MNL_CB_OK;
}

static int vm_cb(const struct nlmsghdr *h, void *data)
{
	((struct vminfo *)data)->count++;
	return mnl_attr_parse(h, sizeof(struct genlmsghdr), vm_attr_cb, data);
}

static int nl_attach(struct nl *n, uint32_t pid, struct vminfo *v)
{
	struct nlmsghdr *h = put_hdr(n, n->family, KVM_FT_CMD_ATTACH, 0);

	mnl_attr_put_u32(h, KVM_FT_A_PID, pid);
	memset(v, 0, sizeof(*v));
	return talk(n, h, vm_cb, v);
}

static int nl_detach(struct nl *n, uint32_t id)
{
	struct nlmsghdr *h = put_hdr(n, n->family, KVM_FT_CMD_DETACH, 0);

	mnl_attr_put_u32(h, KVM_FT_A_VM_ID, id);
	return talk(n, h, NULL, NULL);
}

#define NEED_FAMILY(n) do {						\
	int _e = nl_open(n);						\
	if (_e == -ENOENT)						\
		SKIP(return, "kvm_ft netlink family absent (module not loaded)"); \
	ASSERT_EQ(0, _e);						\
} while (0)

TEST(get_info)
{
	struct nl n;
	struct vminfo v = { 0 };

	NEED_FAMILY(&n);
	ASSERT_EQ(0, talk(&n, put_hdr(&n, n.family, KVM_FT_CMD_GET_INFO, 0),
			  vm_cb, &v));
	EXPECT_EQ(KVM_FT_ABI_VERSION, v.version);
	EXPECT_TRUE(v.features & KVM_FT_FEAT_ATTACH_PID);
	mnl_socket_close(n.sk);
}

/* Persistent attach by pid; list shows it bound, with counters; events. */
TEST(attach_list_detach_events)
{
	struct nl n, ev;
	struct vminfo v, l;
	int go[2], status, nev = 0, seen_attach = 0, seen_bind = 0, seen_detach = 0;
	pid_t child;
	struct fts s;
	char c = 0;

	NEED_FAMILY(&n);
	ASSERT_EQ(0, nl_open(&ev));
	ASSERT_NE(0, ev.mcgrp);
	ASSERT_EQ(0, mnl_socket_setsockopt(ev.sk, NETLINK_ADD_MEMBERSHIP,
					   &ev.mcgrp, sizeof(ev.mcgrp)));
	ASSERT_EQ(0, pipe(go));
	child = fork();
	ASSERT_GE(child, 0);
	if (child == 0) {
		uint8_t code[16];
		struct mvm m;

		if (mvm_create(&m, code, mvm_loop_code(code, 0x80, 30), false) ||
		    read(go[0], &c, 1) != 1 || mvm_run_loop(&m, 0) != 30 ||
		    read(go[0], &c, 1) != 1)
			_exit(2);
		_exit(0);
	}
	ASSERT_EQ(0, nl_attach(&n, child, &v));
	EXPECT_GT(v.id, 0);
	EXPECT_EQ(child, v.pid);
	EXPECT_EQ(1, v.persistent);
	EXPECT_EQ(0, v.bound);
	/* Same process again: refused. */
	EXPECT_EQ(-EBUSY, nl_attach(&n, child, &l));
	EXPECT_NE(NULL, strstr(n.extack, "already attached"));

	ASSERT_EQ(1, write(go[1], &c, 1));	/* run the guest */
	usleep(300000);
	memset(&l, 0, sizeof(l));
	ASSERT_EQ(0, talk(&n, put_hdr(&n, n.family, KVM_FT_CMD_LIST_VMS,
				      NLM_F_DUMP), vm_cb, &l));
	EXPECT_EQ(1, l.count);
	EXPECT_EQ(v.id, l.id);
	EXPECT_EQ(1, l.bound);
	EXPECT_GE(l.records, 90);		/* exit + pio + entry per out */
	EXPECT_EQ(0, l.lost);
	/* A session on it sees the same records. */
	ASSERT_EQ(0, fts_open(&s, v.id));
	fts_drain(&s, 0);
	EXPECT_EQ(l.records, s.nrecs);
	fts_close(&s);
	ASSERT_EQ(0, nl_detach(&n, v.id));
	EXPECT_EQ(-ENOENT, nl_detach(&n, v.id));
	EXPECT_NE(NULL, strstr(n.extack, "no attachment"));
	ASSERT_EQ(1, write(go[1], &c, 1));
	ASSERT_EQ(child, waitpid(child, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));

	/* Events arrived in order: attach, bind, detach. */
	while (nev < 3) {
		struct vminfo e = { 0 };
		struct nlattr *a;
		int len = mnl_socket_recvfrom(ev.sk, ev.buf, sizeof(ev.buf));
		const struct nlmsghdr *h = (void *)ev.buf;

		ASSERT_GT(len, 0);
		mnl_attr_for_each(a, h, sizeof(struct genlmsghdr))
			if (mnl_attr_get_type(a) == KVM_FT_A_EVENT_TYPE)
				e.count = mnl_attr_get_u32(a);
		nev++;
		seen_attach += e.count == KVM_FT_EV_ATTACH && nev == 1;
		seen_bind += e.count == KVM_FT_EV_BIND && nev == 2;
		seen_detach += e.count == KVM_FT_EV_DETACH && nev == 3;
	}
	EXPECT_EQ(1, seen_attach);
	EXPECT_EQ(1, seen_bind);
	EXPECT_EQ(1, seen_detach);
	mnl_socket_close(ev.sk);
	mnl_socket_close(n.sk);
}

/* Malformed requests: errno and the extack message, nothing created. */
TEST(malformed)
{
	struct nlmsghdr *h;
	struct genlmsghdr *g;
	struct vminfo l = { 0 };
	struct nl n;

	NEED_FAMILY(&n);
	/* no PID */
	h = put_hdr(&n, n.family, KVM_FT_CMD_ATTACH, 0);
	EXPECT_EQ(-EINVAL, talk(&n, h, NULL, NULL));
	EXPECT_NE(NULL, strstr(n.extack, "PID attribute is required"));
	/* unknown attribute */
	h = put_hdr(&n, n.family, KVM_FT_CMD_ATTACH, 0);
	mnl_attr_put_u32(h, KVM_FT_A_PID, getpid());
	mnl_attr_put_u32(h, KVM_FT_A_MAX + 5, 1);
	EXPECT_EQ(-EINVAL, talk(&n, h, NULL, NULL));
	EXPECT_NE(0, n.extack[0]);
	/* oversized attribute */
	h = put_hdr(&n, n.family, KVM_FT_CMD_ATTACH, 0);
	mnl_attr_put_u64(h, KVM_FT_A_PID, getpid());
	EXPECT_NE(0, talk(&n, h, NULL, NULL));
	EXPECT_NE(0, n.extack[0]);
	/* out of range */
	h = put_hdr(&n, n.family, KVM_FT_CMD_ATTACH, 0);
	mnl_attr_put_u32(h, KVM_FT_A_PID, getpid());
	mnl_attr_put_u32(h, KVM_FT_A_NR_VCPUS, 0);
	EXPECT_EQ(-ERANGE, talk(&n, h, NULL, NULL));
	h = put_hdr(&n, n.family, KVM_FT_CMD_ATTACH, 0);
	mnl_attr_put_u32(h, KVM_FT_A_PID, getpid());
	mnl_attr_put_u32(h, KVM_FT_A_RING_BYTES, 5000);
	EXPECT_EQ(-EINVAL, talk(&n, h, NULL, NULL));
	EXPECT_NE(NULL, strstr(n.extack, "power of two"));
	/* no such process */
	h = put_hdr(&n, n.family, KVM_FT_CMD_ATTACH, 0);
	mnl_attr_put_u32(h, KVM_FT_A_PID, 4000000);
	EXPECT_EQ(-ESRCH, talk(&n, h, NULL, NULL));
	EXPECT_NE(NULL, strstr(n.extack, "no such process"));
	/* reserved genl header field */
	h = put_hdr(&n, n.family, KVM_FT_CMD_GET_INFO, 0);
	g = mnl_nlmsg_get_payload(h);
	g->reserved = 1;
	EXPECT_EQ(-EINVAL, talk(&n, h, NULL, NULL));
	/* unknown command */
	h = put_hdr(&n, n.family, 200, 0);
	EXPECT_EQ(-EOPNOTSUPP, talk(&n, h, NULL, NULL));
	/* DETACH without id */
	h = put_hdr(&n, n.family, KVM_FT_CMD_DETACH, 0);
	EXPECT_EQ(-EINVAL, talk(&n, h, NULL, NULL));
	EXPECT_NE(NULL, strstr(n.extack, "VM_ID attribute is required"));
	/* nothing was attached by any of this */
	ASSERT_EQ(0, talk(&n, put_hdr(&n, n.family, KVM_FT_CMD_LIST_VMS,
				      NLM_F_DUMP), vm_cb, &l));
	EXPECT_EQ(0, l.count);
	mnl_socket_close(n.sk);
}

TEST(unprivileged)
{
	struct vminfo v;
	struct nl n;

	NEED_FAMILY(&n);
	ASSERT_EQ(0, setresuid(65534, 65534, 65534));
	EXPECT_EQ(-EPERM, nl_attach(&n, getpid(), &v));
	EXPECT_EQ(-EPERM, nl_detach(&n, 1));
	/* Reading is allowed. */
	v.count = 0;
	EXPECT_EQ(0, talk(&n, put_hdr(&n, n.family, KVM_FT_CMD_GET_INFO, 0),
			  vm_cb, &v));
	mnl_socket_close(n.sk);
}

TEST_HARNESS_MAIN
