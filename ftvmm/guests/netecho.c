/* netecho.c - virtio-net driver and a tiny IPv4 echo responder. Probes the
 * virtio-mmio device at 0xd0001000 (magic, version 2, device id 1),
 * negotiates VIRTIO_F_VERSION_1 + VIRTIO_NET_F_MAC, reads the MAC from the
 * configuration space, sets up the receiveq (queue 0: RXN buffers of 2 KiB,
 * all posted at start) and the transmitq (queue 1: one descriptor per
 * frame, completed synchronously in the QueueNotify(1) write) and takes the
 * used-buffer interrupt on PIC line 6 (no PIT). It waits with interrupts
 * off (rt_wait) for received frames and, as IP_ADDR (192.168.77.2):
 *   - answers ARP requests for IP_ADDR (reply unicast to the requester);
 *   - answers ICMP echo requests (echo reply, checksums recomputed);
 *   - answers UDP to port 7 from port 7 with an 8-byte little-endian
 *     reply sequence number (1, 2, ...) followed by the datagram's payload
 *     (payloads up to 1464 bytes, so that the reply fits one frame);
 *   - on UDP to port 9 prints a summary and exits with status 0.
 * Anything else is counted ("other") and ignored; frames shorter than 14
 * bytes or with a bad IPv4 header (version, length, checksum) are counted
 * as "bad". Nothing is printed per frame. The summary's hash is FNV-1a 64
 * over the bytes of every received frame in order, so that a replay can be
 * compared with the run it replays. */
#include "rt.h"
#include "virtio.h"

#define BASE 0xd0001000UL
#define MMIO(off) (*(volatile u32 *)(BASE + (off)))
#define CONFIG8(off) (*(volatile u8 *)(BASE + 0x100 + (off)))
#define RXN 16			/* receiveq size and buffers */
#define TXN 16			/* transmitq size */
#define BUF 2048
#define HDR 12			/* struct virtio_net_hdr (version 1) */
#define ETH_LEN 14
#define ETH_MAX 1514		/* frame without FCS */
#define IP_ADDR 0xc0a84d02U	/* 192.168.77.2 */
#define ECHO_PORT 7
#define QUIT_PORT 9
#define UDP_MAX (ETH_MAX - ETH_LEN - 20 - 8 - 8)	/* echoed payload */
#define FNV_OFF 14695981039346656037UL
#define FNV_PRIME 1099511628211UL

struct desc {
	u64 addr;
	u32 len;
	u16 flags, next;
};

struct used_elem {
	u32 id, len;
};

static struct desc rx_desc[RXN] __attribute__((aligned(16)));
static volatile struct {
	u16 flags, idx, ring[RXN], used_event;
} rx_avail __attribute__((aligned(4)));
static volatile struct {
	u16 flags, idx;
	struct used_elem ring[RXN];
	u16 avail_event;
} rx_used __attribute__((aligned(8)));
static struct desc tx_desc[TXN] __attribute__((aligned(16)));
static volatile struct {
	u16 flags, idx, ring[TXN], used_event;
} tx_avail __attribute__((aligned(4)));
static volatile struct {
	u16 flags, idx;
	struct used_elem ring[TXN];
	u16 avail_event;
} tx_used __attribute__((aligned(8)));

/* Only the device writes these: each holds a header, then a frame. */
static u8 rx_buf[RXN][BUF] __attribute__((aligned(4096)));
/* Bytes 0..HDR-1 (the header) stay zero. */
static u8 tx_buf[HDR + ETH_MAX] __attribute__((aligned(16)));

static u8 mac[6];
static const u8 bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static u16 rx_last;		/* next rx used element to look at */
static volatile u64 irqs;
static volatile u32 isr_bits;
static u64 n_rx, n_tx, n_arp, n_icmp, n_udp, n_other, n_bad;
static u64 udp_seq;		/* last UDP echo reply sequence number */
static u64 hash = FNV_OFF;

#define barrier() __asm__ volatile("" ::: "memory")

static void net_irq(void)
{
	u32 s = MMIO(0x060);	/* InterruptStatus */
	MMIO(0x064) = s;	/* InterruptACK */
	isr_bits |= s;
	irqs++;
}

static void fail(const char *what)
{
	rt_cli();
	rt_puts("netecho FAILED: ");
	rt_puts(what);
	rt_putc('\n');
	rt_exit(3);
}

static u16 get16(const u8 *p) { return (u16)(p[0] << 8 | p[1]); }
static u32 get32(const u8 *p) { return (u32)p[0] << 24 | (u32)p[1] << 16 | (u32)p[2] << 8 | p[3]; }

static void put16(u8 *p, u16 v)
{
	p[0] = (u8)(v >> 8);
	p[1] = (u8)v;
}

static void put32(u8 *p, u32 v)
{
	put16(p, (u16)(v >> 16));
	put16(p + 2, (u16)v);
}

static void put64le(u8 *p, u64 v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (u8)(v >> 8 * i);
}

/* Byte loops: -fno-builtin does not stop GCC turning a copy loop into a
 * memcpy call, which nothing here provides. */
static void copy(u8 *d, const u8 *s, u32 n)
{
	for (u32 i = 0; i < n; i++) {
		d[i] = s[i];
		barrier();
	}
}

static int same(const u8 *a, const u8 *b, u32 n)
{
	for (u32 i = 0; i < n; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

/* Internet checksum (RFC 1071) of n bytes: 0 when they hold a valid one. */
static u16 csum(const u8 *p, u32 n)
{
	u32 sum = 0;
	for (u32 i = 0; i + 1 < n; i += 2)
		sum += get16(p + i);
	if (n & 1)
		sum += (u32)p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (u16)~sum;
}

static void put_hex2(u8 v)
{
	rt_putc("0123456789abcdef"[v >> 4]);
	rt_putc("0123456789abcdef"[v & 15]);
}

static void put_ip(u32 ip)
{
	for (int i = 24; i >= 0; i -= 8) {
		rt_put_dec(ip >> i & 0xff);
		if (i)
			rt_putc('.');
	}
}

static void put_count(const char *name, u64 v)
{
	rt_putc(' ');
	rt_puts(name);
	rt_putc(' ');
	rt_put_dec(v);
}

static void check(const char *err)
{
	if (err)
		fail(err);
}

static void setup(void)
{
	/* VIRTIO_NET_F_MAC, VIRTIO_F_VERSION_1 */
	check(vio_init(BASE, 1, 1UL << 5 | 1UL << 32));
	check(vio_queue(BASE, 0, RXN, rx_desc, &rx_avail, &rx_used));
	check(vio_queue(BASE, 1, TXN, tx_desc, &tx_avail, &tx_used));
	check(vio_driver_ok(BASE));
	for (int i = 0; i < 6; i++)
		mac[i] = CONFIG8(i);

	/* Every receive buffer: one device-writable descriptor. */
	for (u16 i = 0; i < RXN; i++) {
		rx_desc[i] = (struct desc){(u64)rx_buf[i], BUF, 2, 0};
		rx_avail.ring[i] = i;
	}
	barrier();
	rx_avail.idx = RXN;
	barrier();
	MMIO(0x050) = 0;		/* QueueNotify: receive buffers added */
}

/* Send the frame at tx_buf + HDR: done when the QueueNotify store retires. */
static void send(u32 len)
{
	if (len < ETH_LEN || len > ETH_MAX)
		fail("frame to send of a bad length");
	u16 i = tx_avail.idx;
	u16 d = i % TXN;
	tx_desc[d] = (struct desc){(u64)tx_buf, HDR + len, 0, 0};
	tx_avail.ring[d] = d;
	barrier();
	tx_avail.idx = i + 1;
	barrier();
	MMIO(0x050) = 1;		/* QueueNotify: transmitq */
	barrier();
	if (tx_used.idx != (u16)(i + 1) || tx_used.ring[d].id != d)
		fail("transmitq used ring not updated");
	n_tx++;
}

/* Ethernet header of the reply to frame f: to its sender, from us. */
static void eth_reply(const u8 *f, u16 type)
{
	u8 *t = tx_buf + HDR;
	copy(t, f + 6, 6);
	copy(t + 6, mac, 6);
	put16(t + 12, type);
}

static void arp(const u8 *f, u32 len)
{
	const u8 *a = f + ETH_LEN;
	if (len < ETH_LEN + 28 || get16(a) != 1 || get16(a + 2) != 0x0800 ||
	    a[4] != 6 || a[5] != 4 || get16(a + 6) != 1 || get32(a + 24) != IP_ADDR) {
		n_other++;
		return;
	}
	u8 *t = tx_buf + HDR;
	eth_reply(f, 0x0806);
	u8 *r = t + ETH_LEN;
	put16(r, 1);			/* Ethernet */
	put16(r + 2, 0x0800);		/* IPv4 */
	r[4] = 6;
	r[5] = 4;
	put16(r + 6, 2);		/* reply */
	copy(r + 8, mac, 6);		/* sender: us */
	put32(r + 14, IP_ADDR);
	copy(r + 18, a + 8, 10);	/* target: the requester's MAC and IP */
	send(ETH_LEN + 28);
	n_arp++;
}

/* ICMP echo request (IP header at ip, hl bytes; tl bytes in all). */
static void icmp(const u8 *f, const u8 *ip, u32 hl, u32 tl)
{
	const u8 *m = ip + hl;
	if (tl - hl < 8 || m[0] != 8) {
		n_other++;
		return;
	}
	u8 *t = tx_buf + HDR;
	eth_reply(f, 0x0800);
	u8 *rip = t + ETH_LEN;
	copy(rip, ip, tl);
	rip[8] = 64;			/* TTL */
	put32(rip + 12, IP_ADDR);
	copy(rip + 16, ip + 12, 4);
	put16(rip + 10, 0);
	put16(rip + 10, csum(rip, hl));
	u8 *rm = rip + hl;
	rm[0] = 0;			/* echo reply */
	put16(rm + 2, 0);
	put16(rm + 2, csum(rm, tl - hl));
	send(ETH_LEN + tl);
	n_icmp++;
}

/* UDP to the echo port: reply from it with the sequence number first. */
static void udp_echo(const u8 *f, const u8 *ip, const u8 *u, u32 n)
{
	if (n > UDP_MAX) {
		n_other++;
		return;
	}
	u8 *t = tx_buf + HDR;
	eth_reply(f, 0x0800);
	u8 *rip = t + ETH_LEN;
	u32 tl = 20 + 8 + 8 + n;
	udp_seq++;
	rip[0] = 0x45;			/* version 4, 5 words */
	rip[1] = 0;
	put16(rip + 2, (u16)tl);
	put16(rip + 4, (u16)udp_seq);	/* identification */
	put16(rip + 6, 0x4000);		/* don't fragment */
	rip[8] = 64;			/* TTL */
	rip[9] = 17;			/* UDP */
	put16(rip + 10, 0);
	put32(rip + 12, IP_ADDR);
	copy(rip + 16, ip + 12, 4);
	put16(rip + 10, csum(rip, 20));
	u8 *ru = rip + 20;
	put16(ru, ECHO_PORT);
	copy(ru + 2, u, 2);		/* to the sender's port */
	put16(ru + 4, (u16)(8 + 8 + n));
	put16(ru + 6, 0);		/* no checksum */
	put64le(ru + 8, udp_seq);
	copy(ru + 16, u + 8, n);
	send(ETH_LEN + tl);
	n_udp++;
}

static void summary(void)
{
	rt_puts("netecho:");
	put_count("rx", n_rx);
	put_count("tx", n_tx);
	put_count("arp", n_arp);
	put_count("icmp", n_icmp);
	put_count("udp", n_udp);
	put_count("other", n_other);
	put_count("bad", n_bad);
	rt_puts(" hash ");
	rt_put_hex(hash);
	rt_putc('\n');
}

static void ipv4(const u8 *f, u32 len)
{
	const u8 *ip = f + ETH_LEN;
	if (len < ETH_LEN + 20 || ip[0] >> 4 != 4) {
		n_bad++;
		return;
	}
	u32 hl = (ip[0] & 15) * 4u, tl = get16(ip + 2);
	if (hl < 20 || tl < hl || ETH_LEN + tl > len || csum(ip, hl)) {
		n_bad++;
		return;
	}
	/* Frames may carry padding after the datagram: tl, not len, counts. */
	if (get32(ip + 16) != IP_ADDR || (get16(ip + 6) & 0x3fff)) {
		n_other++;		/* not ours, or a fragment */
		return;
	}
	if (ip[9] == 1) {
		icmp(f, ip, hl, tl);
		return;
	}
	const u8 *u = ip + hl;
	u32 ul = tl - hl;
	if (ip[9] != 17 || ul < 8 || get16(u + 4) < 8 || get16(u + 4) > ul) {
		n_other++;
		return;
	}
	if (get16(u + 2) == ECHO_PORT) {
		udp_echo(f, ip, u, get16(u + 4) - 8u);
	} else if (get16(u + 2) == QUIT_PORT) {
		summary();
		rt_exit(0);
	} else {
		n_other++;
	}
}

static void frame(const u8 *f, u32 len)
{
	for (u32 i = 0; i < len; i++)
		hash = (hash ^ f[i]) * FNV_PRIME;
	if (len < ETH_LEN) {
		n_bad++;
		return;
	}
	if (!same(f, mac, 6) && !same(f, bcast, 6)) {
		n_other++;		/* someone else's unicast, multicast */
		return;
	}
	u16 type = get16(f + 12);
	if (type == 0x0806)
		arp(f, len);
	else if (type == 0x0800)
		ipv4(f, len);
	else
		n_other++;
}

/* Handle every used receive buffer and give it back. Transmitting is an
 * exit where the device may fill more: loop until caught up. */
static void receive(void)
{
	while (rx_used.idx != rx_last) {
		barrier();
		struct used_elem e = rx_used.ring[rx_last % RXN];
		if (e.id >= RXN || e.len < HDR || e.len > BUF)
			fail("bad receiveq used element");
		n_rx++;
		frame(rx_buf[e.id] + HDR, e.len - HDR);
		rx_last++;
		u16 i = rx_avail.idx;
		rx_avail.ring[i % RXN] = (u16)e.id;
		barrier();
		rx_avail.idx = i + 1;
		barrier();
		MMIO(0x050) = 0;	/* QueueNotify: the buffer is back */
	}
}

void guest_main(void)
{
	rt_irq_handler(6, net_irq);
	rt_pic_init(1 << 6);
	setup();
	rt_puts("netecho: mac ");
	for (int i = 0; i < 6; i++) {
		if (i)
			rt_putc(':');
		put_hex2(mac[i]);
	}
	rt_puts(" ip ");
	put_ip(IP_ADDR);
	rt_putc('\n');
	rt_cli();
	for (;;) {
		while (rx_used.idx == rx_last) {
			if (isr_bits & 2)
				fail("configuration change: device needs reset");
			rt_wait();
		}
		receive();
	}
}
