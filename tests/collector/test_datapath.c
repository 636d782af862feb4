/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the collector's data path and configuration, without EAL:
 * the burst wrappers run on hand-made mbufs and a fake driver, and the
 * ring entries they produce are checked slot by slot.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <dirent.h>
#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "collector_priv.h"

struct mc_state mc;

#define NPKT 64
static struct rte_mbuf mbufs[NPKT];
static uint8_t bufs[NPKT][128];
static struct rte_mbuf *queue_pkts[NPKT];
static uint16_t queue_n;     /* fake rx driver: returns these */
static uint16_t tx_accept;   /* fake tx driver: accepts this many */
static uint64_t tx_links_seen[NPKT]; /* links as the driver saw them */
static void *fake_qd[1] = { (void *)0x1 };

static uint16_t
fake_rx(void *qd, struct rte_mbuf **pkts, uint16_t n)
{
	const uint16_t k = queue_n < n ? queue_n : n;

	memcpy(pkts, queue_pkts, k * sizeof(*pkts));
	return k;
}

static uint16_t
fake_tx(void *qd, struct rte_mbuf **pkts, uint16_t n)
{
	for (uint16_t i = 0; i < n; i++)
		tx_links_seen[i] = *RTE_MBUF_DYNFIELD(pkts[i], mc.link_off, uint64_t *);
	return tx_accept < n ? tx_accept : n;
}

/* A UDP/IPv4 frame whose source port is `flow` and payload byte `tag`. */
static void
make_pkt(int i, uint16_t flow, uint8_t tag)
{
	uint8_t *d = bufs[i];

	memset(d, 0, sizeof(bufs[i]));
	d[12] = 0x08;
	d[14] = 0x45;
	d[23] = 17;
	d[26] = 10, d[29] = 1;
	d[30] = 10, d[33] = 2;
	d[34] = (uint8_t)(flow >> 8), d[35] = (uint8_t)flow;
	d[37] = 53;
	d[50] = tag;
	d[51] = (uint8_t)i;
	memset(&mbufs[i], 0, sizeof(mbufs[i]));
	mbufs[i].buf_addr = d;
	mbufs[i].buf_len = sizeof(bufs[i]);
	mbufs[i].data_len = 64;
	mbufs[i].pkt_len = 64;
	queue_pkts[i] = &mbufs[i];
}

static struct mc_rxq *
new_rxq(uint32_t slots)
{
	struct mc_rxq *q = aligned_alloc(64, sizeof(*q));

	memset(q, 0, sizeof(*q));
	q->real_burst = fake_rx;
	q->real_data = fake_qd;
	q->hwts_off = -1;
	q->link_base = (uint64_t)3 << 48; /* node 2 */
	q->ring.slots = calloc(slots, sizeof(uint64_t));
	q->ring.mask = slots - 1;
	return q;
}

static struct mc_txq *
new_txq(uint32_t slots)
{
	struct mc_txq *q = aligned_alloc(64, sizeof(*q));

	memset(q, 0, sizeof(*q));
	q->real_burst = fake_tx;
	q->real_data = fake_qd;
	q->run_span = UINT64_MAX;
	q->ring.slots = calloc(slots, sizeof(uint64_t));
	q->ring.mask = slots - 1;
	return q;
}

static void
free_rxq(struct mc_rxq *q)
{
	free(q->ring.slots);
	free(q);
}

static void
free_txq(struct mc_txq *q)
{
	free(q->ring.slots);
	free(q);
}

static uint64_t
slot(const struct mc_ring *r, uint64_t i)
{
	return r->slots[i & r->mask];
}

static void
setup(void)
{
	memset(&mc, 0, sizeof(mc));
	/* what rte_mbuf_dynfield_register would give: 8-byte aligned */
	mc.link_off = (int)((offsetof(struct rte_mbuf, dynfield1) + 7) & ~(size_t)7);
}

TestSuite(datapath, .init = setup);

static uint64_t *
linkp(struct rte_mbuf *m)
{
	return RTE_MBUF_DYNFIELD(m, mc.link_off, uint64_t *);
}

/* The wire ID of frame i, as the trace library computes it. */
static uint32_t
wid(int i)
{
	return mscope_wire_id(bufs[i], mbufs[i].data_len, mbufs[i].pkt_len);
}

static uint32_t
code_at(const struct mc_ring *r, uint64_t at)
{
	return (uint32_t)(slot(r, at) >> 32);
}

#define FK(code) ((code) >> 16)
#define FIDX(code) ((code) & 0xffff)
#define LINKC(node, seq) ((uint32_t)((node) + 1) << MC_LC_ORIGIN_SHIFT | (uint32_t)(seq))

/* The packet copy at ring position at holds frame i's lengths and bytes. */
static void
assert_copy(const struct mc_ring *r, uint64_t at, int i)
{
	uint8_t b[MC_DATA_BYTES];
	const uint32_t n = mbufs[i].data_len < MC_DATA_BYTES ? mbufs[i].data_len : MC_DATA_BYTES;

	cr_assert_eq(slot(r, at), mbufs[i].data_len | (uint64_t)mbufs[i].pkt_len << 32,
		     "lengths of packet %d at %lu", i, (unsigned long)at);
	for (int w = 0; w < MC_DATA_BYTES / 8; w++) {
		const uint64_t v = slot(r, at + 1 + w);

		memcpy(b + 8 * w, &v, 8);
	}
	cr_assert_eq(memcmp(b, bufs[i], n), 0, "bytes of packet %d", i);
}

/* Packet slot at ring position at: frame i's wire ID and the code `code`. */
static void
assert_pkt(const struct mc_ring *r, uint64_t at, int i, uint32_t code)
{
	cr_assert_eq((uint32_t)slot(r, at), wid(i), "wire ID of packet %d", i);
	cr_assert_eq(code_at(r, at), code, "code of packet %d: %#x, want %#x", i,
		     code_at(r, at), code);
}

/* An entry header's fields. */
static void
assert_hdr(uint64_t hdr, unsigned kind, unsigned flags, unsigned n, unsigned copies,
	   unsigned aux)
{
	cr_assert_eq(hdr & 0xff, kind, "kind");
	cr_assert_eq(hdr >> 8 & 0xff, flags, "flags");
	cr_assert_eq(hdr >> 16 & 0xffff, n, "n");
	cr_assert_eq(hdr >> 32 & 0xffff, copies, "copies: %u, want %u",
		     (unsigned)(hdr >> 32 & 0xffff), copies);
	cr_assert_eq(hdr >> 48, aux, "aux");
}

/* Receive frames 0..n-1 (links cleared first, as if the NF had sent them). */
static void
rx(struct mc_rxq *q, uint16_t n)
{
	struct rte_mbuf *got[NPKT];

	for (int i = 0; i < n; i++) {
		queue_pkts[i] = &mbufs[i];
		*linkp(&mbufs[i]) = 0;
	}
	queue_n = n;
	cr_assert_eq(mc_rx_burst(q, got, NPKT), n);
}

/* Send frames 0..n-1 with their current links. */
static uint16_t
tx(struct mc_txq *q, uint16_t n)
{
	struct rte_mbuf *pk[NPKT];

	for (int i = 0; i < n; i++)
		pk[i] = &mbufs[i];
	return mc_tx_burst(q, pk, n);
}

/*
 * Eight frames of three flows; started at ring position start (the entry
 * may wrap around the ring's end): one slot per packet, a copy for the
 * first packet of each flow, after the packet slots.
 */
static void
check_rx_entry(uint64_t start)
{
	struct mc_rxq *q = new_rxq(1024);
	uint32_t idx[3];

	q->ring.head = q->ring.tail = q->ring.cons = q->ring.cons_cache = start;
	for (int i = 0; i < 8; i++)
		make_pkt(i, (uint16_t)(i % 3), 1);
	rx(q, 8);
	assert_hdr(slot(&q->ring, start), MC_E_RX, 0, 8, 3, 0);
	cr_assert_neq(slot(&q->ring, start + 1), 0, "TSC");
	for (int i = 0; i < 3; i++) {
		idx[i] = FIDX(code_at(&q->ring, start + 2 + i));
		cr_assert_lt(idx[i], MC_FC_SLOTS);
	}
	cr_assert(idx[0] != idx[1] && idx[1] != idx[2] && idx[0] != idx[2],
		  "three flows, three cache entries (%u %u %u)", idx[0], idx[1], idx[2]);
	for (int i = 0; i < 8; i++) {
		assert_pkt(&q->ring, start + 2 + i, i,
			   idx[i % 3] | (i < 3 ? MC_FK_DEF : MC_FK_HIT) << 16);
		cr_assert_eq(*linkp(&mbufs[i]), ((uint64_t)3 << 48) | (uint64_t)i);
	}
	for (int i = 0; i < 3; i++)
		assert_copy(&q->ring, start + 2 + 8 + (uint64_t)i * MC_COPY_SLOTS, i);
	cr_assert_eq(q->ring.tail, start + 2 + 8 + 3 * MC_COPY_SLOTS);
	cr_assert_eq(q->ring.head, q->ring.tail);
	cr_assert_eq(q->seq, 8);
	cr_assert_eq(q->ring.hold, 0);
	/* the same flows again: hits only, no copy */
	{
		const uint64_t s2 = q->ring.tail;

		rx(q, 8);
		assert_hdr(slot(&q->ring, s2), MC_E_RX, 0, 8, 0, 0);
		for (int i = 0; i < 8; i++)
			assert_pkt(&q->ring, s2 + 2 + i, i, idx[i % 3]);
		cr_assert_eq(q->ring.tail, s2 + 2 + 8);
		cr_assert_eq(*linkp(&mbufs[0]), ((uint64_t)3 << 48) | 8u, "seq continues");
	}
	free_rxq(q);
}

Test(datapath, rx_entry_hashes_packets_and_links_them)
{
	check_rx_entry(0);
}

Test(datapath, rx_entry_wraps_around_the_ring)
{
	for (uint64_t s = 1024 - 12; s < 1024 + 2; s++)
		check_rx_entry(s);
	check_rx_entry(5 * 1024 - 3);
}

Test(datapath, rx_short_buffer_is_padded)
{
	struct mc_rxq *q = new_rxq(1024);
	uint64_t v;

	make_pkt(0, 1, 1);
	mbufs[0].buf_len = 40; /* fewer bytes than a full copy: never read past it */
	mbufs[0].data_len = mbufs[0].pkt_len = 40;
	memset(bufs[0] + 40, 0xee, sizeof(bufs[0]) - 40); /* beyond the buffer */
	rx(q, 1);
	assert_hdr(slot(&q->ring, 0), MC_E_RX, 0, 1, 1, 0);
	cr_assert_eq(FK(code_at(&q->ring, 2)), MC_FK_DEF);
	cr_assert_eq((uint32_t)slot(&q->ring, 2), mscope_wire_id(bufs[0], 40, 40));
	cr_assert_eq(slot(&q->ring, 3), 40 | (uint64_t)40 << 32);
	memcpy(&v, bufs[0] + 32, 8);
	cr_assert_eq(slot(&q->ring, 3 + 1 + 4), v, "bytes 32..39 copied");
	for (int w = 5; w < MC_DATA_BYTES / 8; w++)
		cr_assert_eq(slot(&q->ring, 3 + 1 + w), 0, "padded with zeros");
	cr_assert_eq(q->ring.tail, 3 + MC_COPY_SLOTS);
	free_rxq(q);
}

Test(datapath, rx_empty_burst_records_nothing)
{
	struct mc_rxq *q = new_rxq(1024);
	struct rte_mbuf *got[NPKT];

	queue_n = 0;
	cr_assert_eq(mc_rx_burst(q, got, 32), 0);
	cr_assert_eq(q->ring.tail, 0);
	free_rxq(q);
}

/* Hardware timestamps: n slots after the packet slots, then the copies. */
Test(datapath, rx_hw_timestamps_come_before_the_copies)
{
	struct mc_rxq *q = new_rxq(1024);
	struct rte_mbuf *got[NPKT];

	q->hwts_off = mc.link_off + 8;
	q->hwts_flag = UINT64_C(1) << 40;
	for (int i = 0; i < 4; i++) {
		make_pkt(i, (uint16_t)(i < 2 ? 5 : 6 + i), 1);
		*RTE_MBUF_DYNFIELD(&mbufs[i], q->hwts_off, uint64_t *) = 1000u + i;
		if (i != 2)
			mbufs[i].ol_flags = q->hwts_flag;
		queue_pkts[i] = &mbufs[i];
	}
	queue_n = 4;
	cr_assert_eq(mc_rx_burst(q, got, 32), 4);
	/* flows: 5, 5, 8, 9 -> copies of packets 0, 2, 3 */
	assert_hdr(slot(&q->ring, 0), MC_E_RX, MC_EF_HWTS, 4, 3, 0);
	cr_assert_eq(FK(code_at(&q->ring, 2)), MC_FK_DEF);
	cr_assert_eq(code_at(&q->ring, 3), FIDX(code_at(&q->ring, 2)) | MC_FK_HIT << 16);
	cr_assert_eq(FK(code_at(&q->ring, 4)), MC_FK_DEF);
	cr_assert_eq(FK(code_at(&q->ring, 5)), MC_FK_DEF);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq((uint32_t)slot(&q->ring, 2 + i), wid(i));
		cr_assert_eq(slot(&q->ring, 6 + i), i == 2 ? 0 : 1000u + i, "hw ts %d", i);
	}
	assert_copy(&q->ring, 10, 0);
	assert_copy(&q->ring, 10 + MC_COPY_SLOTS, 2);
	assert_copy(&q->ring, 10 + 2 * MC_COPY_SLOTS, 3);
	cr_assert_eq(q->ring.tail, 10 + 3 * MC_COPY_SLOTS);
	free_rxq(q);
}

static uint32_t
count3(void *qd)
{
	return 3;
}

/*
 * An mbuf that comes back in an rx burst with its link still set held a
 * packet the NF freed without sending it: its old link is published first.
 */
Test(datapath, rx_of_a_linked_mbuf_publishes_the_freed_packet)
{
	struct mc_rxq *q = new_rxq(4096);
	struct rte_mbuf *got[NPKT];
	const uint64_t stale1 = ((uint64_t)2 << 48) | 41;
	const uint64_t stale3 = ((uint64_t)1 << 48) | 7 | MC_SEQ_REFUSED;
	uint64_t hdr;
	bool refused;

	for (int i = 0; i < 4; i++)
		make_pkt(i, 1, 1);
	queue_n = 4;
	*linkp(&mbufs[1]) = stale1;
	*linkp(&mbufs[3]) = stale3;
	cr_assert_eq(mc_rx_burst(q, got, 32), 4);
	hdr = slot(&q->ring, 0);
	assert_hdr(hdr, MC_E_FREED, 0, 2, 0, 0);
	cr_assert_neq(slot(&q->ring, 1), 0, "TSC of the burst");
	cr_assert_eq(slot(&q->ring, 2), stale1);
	cr_assert_eq(slot(&q->ring, 3), stale3);
	assert_hdr(slot(&q->ring, 4), MC_E_RX, 0, 4, 1, 0);
	cr_assert_eq(slot(&q->ring, 5), slot(&q->ring, 1), "at the same TSC");
	cr_assert_eq(FK(code_at(&q->ring, 6)), MC_FK_DEF);
	for (int i = 0; i < 4; i++) {
		assert_pkt(&q->ring, 6 + i, i, FIDX(code_at(&q->ring, 6)) | (i ? 0 : MC_FK_DEF << 16));
		cr_assert_eq(*linkp(&mbufs[i]), ((uint64_t)3 << 48) | (uint64_t)i, "new links");
	}
	assert_copy(&q->ring, 10, 0);
	cr_assert_eq(q->ring.tail, 10 + MC_COPY_SLOTS);
	cr_assert_eq(q->ring.hold, 0, "nothing held after the burst");
	cr_assert_eq(mc_link_seq(stale3, &refused), 7);
	cr_assert(refused);
	cr_assert_eq(mc_link_seq(stale1, &refused), 41);
	cr_assert_not(refused);
	cr_assert_eq(mc_link_seq(((uint64_t)3 << 48) | MC_SEQ_UNKNOWN, &refused), MC_SEQ_UNKNOWN);
	cr_assert_not(refused);
	/* a clean burst: no freed entry */
	{
		const uint64_t start = q->ring.tail;

		rx(q, 4);
		assert_hdr(slot(&q->ring, start), MC_E_RX, 0, 4, 0, 0);
	}
	free_rxq(q);
}

Test(datapath, rx_queue_depth_sampled_every_nth_burst)
{
	struct mc_rxq *q = new_rxq(4096);

	make_pkt(0, 1, 1);
	q->real_count = count3;
	q->qd_every = q->qd_left = 4;
	for (int b = 1; b <= 8; b++) {
		const uint64_t start = q->ring.tail;

		rx(q, 1);
		assert_hdr(slot(&q->ring, start), MC_E_RX, 0, 1, b == 1, b % 4 == 0 ? 4u : 0u);
	}
	free_rxq(q);
}

Test(datapath, rx_ring_full_loses_the_record_and_counts_it)
{
	struct mc_rxq *q = new_rxq(4096);
	uint64_t bursts = 0;

	for (int i = 0; i < 32; i++)
		make_pkt(i, 7, 1);
	/* nobody consumes: fill until the worst-case reservation fails */
	while (q->ring.lost_records == 0) {
		rx(q, 32); /* the NF always gets its packets */
		bursts++;
	}
	/* one flow: one copy, then 2 + 32 slots a burst; fails below 2 + 32 x 10 free */
	cr_assert_eq(bursts - 1, (4096 - (2 + 32 * (1 + MC_COPY_SLOTS)) - (2 + 32 + MC_COPY_SLOTS)) /
					 (2 + 32) + 2,
		     "%lu bursts", (unsigned long)bursts);
	cr_assert_eq(q->ring.lost_packets, 32);
	cr_assert_eq(q->seq, (bursts - 1) * 32);
	cr_assert_eq(*linkp(&mbufs[5]), ((uint64_t)3 << 48) | MC_SEQ_UNKNOWN,
		     "lost rx keeps the node, not a seq");
	cr_assert_eq(q->ring.hold, 0);
	/* the consumer frees everything: recording resumes, seq had not moved */
	{
		const uint64_t seq = q->seq, start = q->ring.tail;

		q->ring.cons = q->ring.tail;
		rx(q, 32);
		cr_assert_eq(q->seq, seq + 32);
		cr_assert_eq(q->ring.lost_records, 1);
		assert_hdr(slot(&q->ring, start), MC_E_RX, 0, 32, 0, 0);
	}
	free_rxq(q);
}

/* ---------------------------------------------------------------- flow cache */

/* An IPv6 UDP (or TCP) frame, ports flow -> 53. */
static void
make_pkt6(int i, uint16_t flow, uint8_t proto)
{
	uint8_t *d = bufs[i];

	make_pkt(i, 0, 1);
	memset(d, 0, 64);
	d[12] = 0x86, d[13] = 0xdd;
	d[14] = 0x60;
	d[20] = proto;
	d[21] = 64;
	d[22] = 0x20, d[23] = 0x01, d[37] = 1;
	d[38] = 0x20, d[39] = 0x01, d[53] = 2;
	d[54] = (uint8_t)(flow >> 8), d[55] = (uint8_t)flow;
	d[57] = 53;
	d[60] = (uint8_t)i; /* payload */
}

/*
 * Receive frames 0..n-1 in one burst and return their codes; the copies
 * must be those of the packets whose code is DEF or RAW, in order.
 */
static void
rx_codes(struct mc_rxq *q, uint16_t n, uint32_t *code)
{
	const uint64_t start = q->ring.tail;
	unsigned copies = 0;

	rx(q, n);
	for (int i = 0; i < n; i++) {
		code[i] = code_at(&q->ring, start + 2 + i);
		cr_assert_eq((uint32_t)slot(&q->ring, start + 2 + i), wid(i));
		if (FK(code[i]) != MC_FK_HIT)
			assert_copy(&q->ring, start + 2 + n + (uint64_t)copies++ * MC_COPY_SLOTS, i);
	}
	assert_hdr(slot(&q->ring, start), MC_E_RX, 0, n, copies, 0);
	cr_assert_eq(q->ring.tail, start + 2 + n + (uint64_t)copies * MC_COPY_SLOTS);
}

Test(datapath, flow_cache_ipv4_tcp_udp)
{
	struct mc_rxq *q = new_rxq(4096);
	uint32_t c[8], d[8];

	make_pkt(0, 1000, 1); /* UDP flow A */
	make_pkt(1, 1000, 2); /* A again, other payload */
	make_pkt(2, 1001, 1); /* UDP flow B */
	make_pkt(3, 1000, 3);
	bufs[3][23] = 6;      /* TCP, same addresses and ports: flow C */
	make_pkt(4, 1000, 4);
	bufs[4][20] = 0x40;   /* DF set: still flow A */
	make_pkt(5, 1000, 5);
	bufs[5][20] = 0x20;   /* MF, offset 0: a first fragment, still A */
	rx_codes(q, 6, c);
	cr_assert_eq(FK(c[0]), MC_FK_DEF);
	cr_assert_lt(FIDX(c[0]), MC_FC_SLOTS);
	cr_assert_eq(c[1], FIDX(c[0]) | MC_FK_HIT << 16, "same flow: a hit at the same index");
	cr_assert_eq(FK(c[2]), MC_FK_DEF, "another flow: defined");
	cr_assert_neq(FIDX(c[2]), FIDX(c[0]), "... at another index");
	cr_assert_eq(FK(c[3]), MC_FK_DEF, "TCP is another flow than UDP");
	cr_assert_neq(FIDX(c[3]), FIDX(c[0]));
	cr_assert_eq(c[4], FIDX(c[0]), "DF does not change the flow");
	cr_assert_eq(c[5], FIDX(c[0]), "nor does MF on a first fragment");
	/* the next burst: all hits (a different payload does not matter) */
	bufs[0][60] ^= 0xff;
	rx_codes(q, 6, d);
	for (int i = 0; i < 6; i++)
		cr_assert_eq(d[i], FIDX(c[i]), "packet %d", i);
	/* the other direction is another flow */
	make_pkt(0, 1000, 1);
	bufs[0][26] = 10, bufs[0][29] = 2, bufs[0][30] = 10, bufs[0][33] = 1;
	rx_codes(q, 1, d);
	cr_assert_eq(FK(d[0]), MC_FK_DEF);
	free_rxq(q);
}

Test(datapath, flow_cache_ipv6_tcp_udp)
{
	struct mc_rxq *q = new_rxq(4096);
	uint32_t c[8], d[8];

	make_pkt6(0, 7, 17);
	make_pkt6(1, 7, 17);
	make_pkt6(2, 8, 17);
	make_pkt6(3, 7, 6);
	make_pkt6(4, 7, 17);
	bufs[4][53] = 3; /* another destination */
	rx_codes(q, 5, c);
	cr_assert_eq(FK(c[0]), MC_FK_DEF);
	cr_assert_lt(FIDX(c[0]), MC_FC_SLOTS);
	cr_assert_eq(c[1], FIDX(c[0]), "same flow: a hit");
	for (int i = 2; i < 5; i++) {
		cr_assert_eq(FK(c[i]), MC_FK_DEF, "packet %d: a new flow", i);
		cr_assert_neq(FIDX(c[i]), FIDX(c[0]));
	}
	rx_codes(q, 5, d);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(d[i], FIDX(c[i]), "packet %d", i);
	/* IPv4 and IPv6 caches do not mix */
	make_pkt(0, 7, 1);
	rx_codes(q, 1, d);
	cr_assert_eq(FK(d[0]), MC_FK_DEF);
	free_rxq(q);
}

Test(datapath, flow_cache_non_ip_is_one_catchall_flow)
{
	struct mc_rxq *q = new_rxq(4096);
	uint32_t c[8];

	for (int i = 0; i < 4; i++)
		make_pkt(i, 1, (uint8_t)i);
	bufs[0][12] = 0x08, bufs[0][13] = 0x06; /* ARP */
	bufs[1][12] = 0x88, bufs[1][13] = 0xcc; /* LLDP */
	bufs[2][12] = 0x08, bufs[2][13] = 0x06;
	mbufs[3].data_len = mbufs[3].pkt_len = 12; /* too short for an EtherType */
	rx_codes(q, 4, c);
	cr_assert_eq(c[0], MC_FC_CATCHALL | MC_FK_DEF << 16);
	for (int i = 1; i < 4; i++)
		cr_assert_eq(c[i], MC_FC_CATCHALL, "packet %d", i);
	rx_codes(q, 4, c);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(c[i], MC_FC_CATCHALL, "packet %d", i);
	free_rxq(q);
}

Test(datapath, flow_cache_raw_frames_are_copied_every_time)
{
	struct mc_rxq *q = new_rxq(8192);
	uint32_t c[8];

	for (int i = 0; i < 8; i++)
		make_pkt(i, 1, 1);
	memmove(bufs[0] + 16, bufs[0] + 12, 60); /* VLAN tag */
	bufs[0][12] = 0x81, bufs[0][13] = 0x00, bufs[0][14] = 0, bufs[0][15] = 5;
	bufs[1][14] = 0x46;                      /* IPv4 with options */
	bufs[2][21] = 0x10;                      /* a later fragment */
	bufs[3][23] = 132;                       /* SCTP: ports, not cached */
	mbufs[4].data_len = 37;                  /* ports not in the segment */
	bufs[5][12] = 0x88, bufs[5][13] = 0xa8;  /* QinQ */
	bufs[6][14] = 0x65;                      /* not IPv4 behind 0x0800 */
	make_pkt6(7, 1, 17);
	bufs[7][20] = 0;                         /* IPv6 hop-by-hop header */
	for (int round = 0; round < 3; round++) {
		rx_codes(q, 8, c);
		for (int i = 0; i < 8; i++)
			cr_assert_eq(c[i], MC_FK_RAW << 16, "round %d packet %d: %#x", round, i,
				     c[i]);
	}
	free_rxq(q);
}

/* IPv4 protocols without ports (ICMP, ESP): cached by addresses and protocol. */
Test(datapath, flow_cache_portless_protocols)
{
	struct mc_rxq *q = new_rxq(8192);
	uint32_t c[4];

	for (int i = 0; i < 4; i++)
		make_pkt(i, 3, 1);
	bufs[0][23] = bufs[1][23] = 1;               /* ICMP */
	bufs[1][34] = 0x08, bufs[1][36] = 0x55;      /* other type and checksum */
	bufs[2][23] = bufs[3][23] = 50;              /* ESP */
	bufs[3][34] = 0x77;                          /* other SPI */
	rx_codes(q, 4, c);
	cr_assert_eq(FK(c[0]), MC_FK_DEF, "%#x", c[0]);
	cr_assert_eq(c[1], FIDX(c[0]), "bytes past the IPv4 header do not count: %#x", c[1]);
	cr_assert_eq(FK(c[2]), MC_FK_DEF, "%#x", c[2]);
	cr_assert_neq(FIDX(c[2]), FIDX(c[0]), "ESP is another flow than ICMP");
	cr_assert_eq(c[3], FIDX(c[2]), "%#x", c[3]);
	rx_codes(q, 4, c);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(FK(c[i]), MC_FK_HIT, "packet %d: %#x", i, c[i]);
	free_rxq(q);
}

Test(datapath, flow_caches_are_per_queue)
{
	struct mc_rxq *a = new_rxq(1024), *b = new_rxq(1024);
	uint32_t c[2];

	make_pkt(0, 1, 1);
	make_pkt(1, 2, 2);
	bufs[1][12] = 0x08, bufs[1][13] = 0x06;
	rx_codes(a, 2, c);
	cr_assert_eq(FK(c[0]), MC_FK_DEF);
	cr_assert_eq(c[1], MC_FC_CATCHALL | MC_FK_DEF << 16);
	rx_codes(b, 2, c);
	cr_assert_eq(FK(c[0]), MC_FK_DEF, "queue b has its own cache");
	cr_assert_eq(c[1], MC_FC_CATCHALL | MC_FK_DEF << 16);
	free_rxq(a);
	free_rxq(b);
}

/* ---------------------------------------------------------------- tx */

Test(datapath, tx_counts_accepted_and_restores_refused_links)
{
	struct mc_txq *q = new_txq(1024);

	for (int i = 0; i < 5; i++) {
		make_pkt(i, 1, 2);
		*linkp(&mbufs[i]) = ((uint64_t)1 << 48) | (100u + i);
	}
	tx_accept = 3;
	cr_assert_eq(tx(q, 5), 3);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(tx_links_seen[i], 0, "the driver gets cleared links");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(*linkp(&mbufs[i]), 0);
	for (int i = 3; i < 5; i++)
		cr_assert_eq(*linkp(&mbufs[i]), ((uint64_t)1 << 48) | (100u + i) | MC_SEQ_REFUSED,
			     "refused packets keep their link, marked refused");
	assert_hdr(slot(&q->ring, 0), MC_E_TX, 0, 5, 0, 3);
	cr_assert_neq(slot(&q->ring, 1), 0, "TSC");
	for (int i = 0; i < 5; i++)
		assert_pkt(&q->ring, 2 + i, i, LINKC(0, 100 + i));
	cr_assert_eq(q->ring.tail, 2 + 5, "linked packets: no copies");
	cr_assert_eq(q->ring.hold, 0);
	free_txq(q);
}

Test(datapath, tx_link_codes)
{
	struct mc_txq *q = new_txq(1024);

	for (int i = 0; i < 5; i++)
		make_pkt(i, (uint16_t)i, 1);
	*linkp(&mbufs[0]) = ((uint64_t)1 << 48) | 0;
	*linkp(&mbufs[1]) = ((uint64_t)MC_MAX_NODES << 48) | (UINT64_C(3) << 21 | 12345);
	*linkp(&mbufs[2]) = ((uint64_t)7 << 48) | MC_SEQ_UNKNOWN;
	*linkp(&mbufs[3]) = ((uint64_t)2 << 48) | (UINT64_C(0x123456789a) | 0x1fffff);
	*linkp(&mbufs[4]) = ((uint64_t)7 << 48) | MC_SEQ_UNKNOWN;
	tx_accept = 3;
	cr_assert_eq(tx(q, 5), 3);
	assert_hdr(slot(&q->ring, 0), MC_E_TX, 0, 5, 0, 3);
	assert_pkt(&q->ring, 2, 0, LINKC(0, 0));
	assert_pkt(&q->ring, 3, 1, LINKC(MC_MAX_NODES - 1, 12345));
	assert_pkt(&q->ring, 4, 2, LINKC(6, MC_LC_UNKNOWN));
	assert_pkt(&q->ring, 5, 3, LINKC(1, 0x1fffff));
	assert_pkt(&q->ring, 6, 4, LINKC(6, MC_LC_UNKNOWN));
	cr_assert_eq(code_at(&q->ring, 3), (uint32_t)MC_MAX_NODES << 22 | 12345);
	cr_assert_eq(code_at(&q->ring, 4), 7u << 22 | 1u << 21);
	cr_assert_eq(q->ring.tail, 7);
	cr_assert_eq(*linkp(&mbufs[3]),
		     ((uint64_t)2 << 48) | (UINT64_C(0x123456789a) | 0x1fffff) | MC_SEQ_REFUSED);
	cr_assert_eq(*linkp(&mbufs[4]), ((uint64_t)7 << 48) | MC_SEQ_UNKNOWN,
		     "an unknown seq is not marked refused");
	free_txq(q);
}

Test(datapath, tx_unlinked_packets_get_flow_codes)
{
	struct mc_txq *q = new_txq(1024);
	uint32_t idx;

	make_pkt(0, 9, 1);
	make_pkt(1, 9, 2);
	tx_accept = 2;
	cr_assert_eq(tx(q, 2), 2);
	assert_hdr(slot(&q->ring, 0), MC_E_TX, 0, 2, 1, 2);
	idx = FIDX(code_at(&q->ring, 2));
	cr_assert_lt(idx, MC_FC_SLOTS);
	assert_pkt(&q->ring, 2, 0, idx | MC_FK_DEF << 16);
	assert_pkt(&q->ring, 3, 1, idx);
	assert_copy(&q->ring, 4, 0);
	cr_assert_eq(q->ring.tail, 4 + MC_COPY_SLOTS);
	/* linked and unlinked mixed: copies in packet order, after all slots */
	make_pkt(0, 10, 1);
	bufs[0][12] = 0x08, bufs[0][13] = 0x06; /* non-IP */
	make_pkt(1, 9, 3);
	*linkp(&mbufs[1]) = ((uint64_t)4 << 48) | 77; /* linked: no flow code */
	make_pkt(2, 9, 3);                             /* known flow */
	make_pkt(3, 11, 3);                            /* new flow */
	make_pkt(4, 11, 3);
	bufs[4][14] = 0x47;                            /* options: raw */
	tx_accept = 5;
	{
		const uint64_t s = q->ring.tail;

		cr_assert_eq(tx(q, 5), 5);
		assert_hdr(slot(&q->ring, s), MC_E_TX, 0, 5, 3, 5);
		assert_pkt(&q->ring, s + 2, 0, MC_FC_CATCHALL | MC_FK_DEF << 16);
		assert_pkt(&q->ring, s + 3, 1, LINKC(3, 77));
		assert_pkt(&q->ring, s + 4, 2, idx);
		cr_assert_eq(FK(code_at(&q->ring, s + 5)), MC_FK_DEF);
		cr_assert_neq(FIDX(code_at(&q->ring, s + 5)), idx);
		assert_pkt(&q->ring, s + 6, 4, MC_FK_RAW << 16);
		assert_copy(&q->ring, s + 7, 0);
		assert_copy(&q->ring, s + 7 + MC_COPY_SLOTS, 3);
		assert_copy(&q->ring, s + 7 + 2 * MC_COPY_SLOTS, 4);
		cr_assert_eq(q->ring.tail, s + 7 + 3 * MC_COPY_SLOTS);
	}
	free_txq(q);
}

Test(datapath, tx_refused_bursts_merge_into_one_run)
{
	struct mc_txq *q = new_txq(4096);

	for (int i = 0; i < 4; i++)
		make_pkt(i, 1, 1);
	tx_accept = 2;
	cr_assert_eq(tx(q, 4), 2);
	const uint64_t after_first = q->ring.tail;

	cr_assert_eq(after_first, 2 + 4 + MC_COPY_SLOTS);
	tx_accept = 0;
	for (int k = 0; k < 1000; k++)
		cr_assert_eq(tx(q, 4), 0);
	cr_assert_eq(q->ring.tail, after_first, "refusals are held in the run");
	cr_assert_eq(q->run_n, 4000);
	cr_assert_eq(q->run_origin, 0);
	cr_assert_eq(q->ring.hold, q->run_tsc, "the writer is held at the run's start");
	/* a refused burst of mixed origins cannot join: the run is published first */
	*linkp(&mbufs[3]) = (uint64_t)1 << 48;
	cr_assert_eq(tx(q, 4), 0);
	assert_hdr(slot(&q->ring, after_first), MC_E_REFUSED, 0, 0, 0, 0);
	cr_assert_eq(slot(&q->ring, after_first + 2), 4000);
	assert_hdr(slot(&q->ring, after_first + MC_RUN_SLOTS), MC_E_TX, 0, 4, 0, 0);
	for (int i = 0; i < 3; i++)
		assert_pkt(&q->ring, after_first + MC_RUN_SLOTS + 2 + i, i,
			   FIDX(code_at(&q->ring, 2)));
	assert_pkt(&q->ring, after_first + MC_RUN_SLOTS + 2 + 3, 3, LINKC(0, 0));
	cr_assert_leq(slot(&q->ring, after_first + 1),
		      slot(&q->ring, after_first + MC_RUN_SLOTS + 1), "TSC order kept");
	cr_assert_eq(q->ring.tail, after_first + MC_RUN_SLOTS + 2 + 4);
	cr_assert_eq(q->run_n, 0);
	cr_assert_eq(q->ring.hold, 0);
	free_txq(q);
}

/*
 * A fully refused burst merged into a run is never published: the flows it
 * defined in the cache must be forgotten, or the writer would meet hits of
 * flows it never learnt.
 */
Test(datapath, tx_merged_burst_forgets_its_flow_definitions)
{
	struct mc_txq *q = new_txq(4096);
	uint32_t idx, idx2;

	make_pkt(0, 21, 1);
	make_pkt(1, 21, 2);
	make_pkt(2, 22, 1);
	bufs[2][12] = 0x08, bufs[2][13] = 0x06; /* non-IP: the catch-all */
	tx_accept = 0;
	cr_assert_eq(tx(q, 3), 0);
	cr_assert_eq(q->ring.tail, 0);
	cr_assert_eq(q->run_n, 3);
	cr_assert_eq(q->run_origin, 0);
	cr_assert_not(q->fc.catchall, "catch-all definition forgotten");
	/* again refused, joins the run */
	cr_assert_eq(tx(q, 3), 0);
	cr_assert_eq(q->run_n, 6);
	cr_assert_eq(q->ring.tail, 0);
	/* accepted: the run, then a burst that defines the flows anew */
	tx_accept = 3;
	cr_assert_eq(tx(q, 3), 3);
	assert_hdr(slot(&q->ring, 0), MC_E_REFUSED, 0, 0, 0, 0);
	cr_assert_eq(slot(&q->ring, 2), 6);
	assert_hdr(slot(&q->ring, 3), MC_E_TX, 0, 3, 2, 3);
	idx = FIDX(code_at(&q->ring, 5));
	assert_pkt(&q->ring, 5, 0, idx | MC_FK_DEF << 16);
	assert_pkt(&q->ring, 6, 1, idx);
	assert_pkt(&q->ring, 7, 2, MC_FC_CATCHALL | MC_FK_DEF << 16);
	assert_copy(&q->ring, 8, 0);
	assert_copy(&q->ring, 8 + MC_COPY_SLOTS, 2);
	cr_assert_eq(q->ring.tail, 8 + 2 * MC_COPY_SLOTS);
	/* a known flow in a merged burst stays known; a new one is forgotten */
	make_pkt(3, 23, 1);
	tx_accept = 0;
	{
		struct rte_mbuf *pk[2] = { &mbufs[0], &mbufs[3] };

		cr_assert_eq(mc_tx_burst(q, pk, 2), 0);
		cr_assert_eq(q->run_n, 2);
		tx_accept = 2;
		cr_assert_eq(mc_tx_burst(q, pk, 2), 2);
	}
	{
		const uint64_t s = 8 + 2 * MC_COPY_SLOTS + MC_RUN_SLOTS;

		assert_hdr(slot(&q->ring, s), MC_E_TX, 0, 2, 1, 2);
		assert_pkt(&q->ring, s + 2, 0, idx);
		idx2 = FIDX(code_at(&q->ring, s + 3));
		cr_assert_eq(code_at(&q->ring, s + 3), idx2 | MC_FK_DEF << 16);
		assert_copy(&q->ring, s + 4, 3);
	}
	free_txq(q);
}

/* A refused burst that is published (mixed origins) keeps its definitions. */
Test(datapath, tx_published_refused_burst_keeps_its_flow_definitions)
{
	struct mc_txq *q = new_txq(4096);
	uint32_t idx;

	make_pkt(0, 31, 1);
	make_pkt(1, 32, 1);
	*linkp(&mbufs[1]) = ((uint64_t)2 << 48) | 5;
	tx_accept = 0;
	cr_assert_eq(tx(q, 2), 0);
	assert_hdr(slot(&q->ring, 0), MC_E_TX, 0, 2, 1, 0);
	idx = FIDX(code_at(&q->ring, 2));
	assert_pkt(&q->ring, 2, 0, idx | MC_FK_DEF << 16);
	assert_pkt(&q->ring, 3, 1, LINKC(1, 5));
	assert_copy(&q->ring, 4, 0);
	cr_assert_eq(*linkp(&mbufs[0]), 0, "unlinked and refused: still no link");
	cr_assert_eq(*linkp(&mbufs[1]), ((uint64_t)2 << 48) | 5 | MC_SEQ_REFUSED);
	tx_accept = 1;
	cr_assert_eq(tx(q, 1), 1);
	assert_hdr(slot(&q->ring, 4 + MC_COPY_SLOTS), MC_E_TX, 0, 1, 0, 1);
	assert_pkt(&q->ring, 4 + MC_COPY_SLOTS + 2, 0, idx);
	free_txq(q);
}

Test(datapath, tx_ring_full_still_forwards_and_counts_by_origin)
{
	struct mc_txq *q = new_txq(4096);

	for (int i = 0; i < 32; i++)
		make_pkt(i, 1, 1);
	tx_accept = 32;
	q->ring.head = q->ring.tail = 4000; /* nearly full, nobody consumes */
	q->ring.cons = q->ring.cons_cache = 4000 - 4096 + 10;
	for (int i = 0; i < 32; i++)
		*linkp(&mbufs[i]) = i < 16 ? ((uint64_t)2 << 48) | (uint64_t)i : 0;
	cr_assert_eq(tx(q, 32), 32);
	cr_assert_eq(q->ring.tail, 4000, "nothing recorded");
	cr_assert_eq(q->lost[2][0], 1);
	cr_assert_eq(q->lost[2][1], 16);
	cr_assert_eq(q->lost[0][0], 1);
	cr_assert_eq(q->lost[0][1], 16);
	cr_assert_eq(q->lost_total, 32);
	cr_assert_eq(q->ring.hold, 0);
	for (int i = 0; i < 32; i++)
		cr_assert_eq(*linkp(&mbufs[i]), 0);
	free_txq(q);
}

/* Room for the worst case, every packet copied: MC_RUN_SLOTS + 2 + n x 10. */
Test(datapath, tx_records_when_the_worst_case_fits)
{
	struct mc_txq *q = new_txq(4096);
	const uint64_t need = MC_RUN_SLOTS + 2 + 32 * (1 + MC_COPY_SLOTS);

	for (int i = 0; i < 32; i++)
		make_pkt(i, (uint16_t)(100 + i), 1);
	tx_accept = 32;
	q->ring.head = q->ring.tail = 4000;
	q->ring.cons = q->ring.cons_cache = 4000 + need - 4096;
	cr_assert_eq(tx(q, 32), 32);
	cr_assert_eq(q->lost_total, 0);
	assert_hdr(slot(&q->ring, 4000), MC_E_TX, 0, 32, 32, 32);
	for (int i = 0; i < 32; i++)
		assert_copy(&q->ring, 4000 + 2 + 32 + (uint64_t)i * MC_COPY_SLOTS, i);
	free_txq(q);
}

Test(flows, refs_in_first_seen_order)
{
	struct mc_flow_table *t = calloc(1, sizeof(*t));
	union mc_fkey k;
	bool is_new;

	for (int i = 0; i < 6; i++)
		make_pkt(i, (uint16_t)(i % 3), 1);
	for (int i = 0; i < 6; i++) {
		cr_assert_eq(mc_flow_ref(t, bufs[i], 64, &k, &is_new), (uint32_t)(i % 3));
		cr_assert_eq(is_new, i < 3);
	}
	free(t);
}

Test(flows, overflow_keeps_refs_defined)
{
	struct mc_flow_table *t = calloc(1, sizeof(*t));
	uint32_t next = 0;
	union mc_fkey k;
	bool is_new;

	/* 3x the table size in distinct flows, twice: evictions give new refs */
	for (int round = 0; round < 2; round++)
		for (uint32_t f = 0; f < 3 * MC_FLOW_SLOTS; f++) {
			uint32_t ref;

			make_pkt(0, (uint16_t)f, 1);
			bufs[0][29] = (uint8_t)(f >> 16);
			ref = mc_flow_ref(t, bufs[0], 64, &k, &is_new);
			if (is_new)
				cr_assert_eq(ref, next++, "new refs are dense");
			else
				cr_assert_lt(ref, next, "a known ref was defined");
		}
	cr_assert_geq(next, 3 * MC_FLOW_SLOTS, "every distinct flow got a ref");
	free(t);
}

/* The IPv4 fast path must agree with the trace library's parser everywhere. */
static void
check_frame(const uint8_t *d, uint32_t len)
{
	union mc_fkey k;
	struct mscope_flow_key want;

	mc_flow_key(d, len, &k);
	mscope_flow_parse(d, len, &want);
	cr_assert_eq(memcmp(&k.k, &want, sizeof(want)), 0, "flow key differs (len %u)", len);
	cr_assert_eq(k.w[4] >> 48, 0, "padding must stay zero");
}

Test(datapath, flow_key_matches_parser_on_real_traffic)
{
	const char *dir = getenv("MSCOPE_DATA");
	const char *files[] = { "pcapplusplus_example.pcap", "ndpi_gnutella.pcap",
				"tcp/zeek_tcp_ssh-dups.pcap", "tcp/ndpi_fix2.pcap" };
	unsigned checked = 0;

	cr_assert_not_null(dir, "MSCOPE_DATA not set");
	for (unsigned f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		char path[1024], eb[PCAP_ERRBUF_SIZE];
		struct pcap_pkthdr *h;
		const u_char *data;
		pcap_t *p;

		snprintf(path, sizeof(path), "%s/%s", dir, files[f]);
		p = pcap_open_offline(path, eb);
		if (p == NULL)
			continue;
		while (pcap_next_ex(p, &h, &data) == 1) {
			check_frame(data, h->caplen);
			/* and every truncation of the headers */
			for (uint32_t l = 0; l < h->caplen && l < 80; l += 3)
				check_frame(data, l);
			checked++;
		}
		pcap_close(p);
	}
	cr_assert_gt(checked, 5000, "only %u packets checked", checked);
}

Test(datapath, flow_key_matches_parser_on_edge_frames)
{
	uint8_t d[128];

	memset(d, 0, sizeof(d));
	d[12] = 0x08, d[14] = 0x45, d[23] = 6;
	check_frame(d, 64);
	d[20] = 0x20; /* MF set, offset 0: first fragment, has ports */
	check_frame(d, 64);
	d[21] = 0x10; /* later fragment: no ports */
	check_frame(d, 64);
	d[20] = d[21] = 0;
	d[14] = 0x46; /* options */
	check_frame(d, 64);
	d[14] = 0x45, d[23] = 1; /* ICMP */
	check_frame(d, 64);
	d[12] = 0x81, d[13] = 0x00; /* VLAN */
	check_frame(d, 64);
	d[12] = 0x86, d[13] = 0xdd; /* IPv6 header garbage */
	check_frame(d, 64);
	d[12] = 0x08, d[13] = 0x06; /* ARP */
	check_frame(d, 64);
}

/* ---------------------------------------------------------------- wire IDs */

typedef mc_wire_ids_fn wire_ids_fn;

/* distinct codes, so that a code landing in the wrong slot shows */
static uint32_t wcodes[256];

#define WRING 64
#define WGUARD 0x5a5a5a5a5a5a5a5aULL

/*
 * Run f on pkts[0..n-1] into a 64-slot ring at position at (wrapping
 * around): each slot must hold exactly mscope_wire_id() of its packet, high
 * bits clear, and no other slot may be touched.
 */
static void
check_wire_ids(const char *name, wire_ids_fn f, struct rte_mbuf *const *pkts, uint16_t n,
	       uint64_t at)
{
	uint64_t ring[WRING];

	for (unsigned i = 0; i < WRING; i++)
		ring[i] = WGUARD;
	for (unsigned i = 0; i < 256; i++)
		wcodes[i] = 0x80000000u | i * 7919u;
	f(pkts, n, wcodes, ring, WRING - 1, at);
	for (uint16_t i = 0; i < n; i++) {
		const struct rte_mbuf *m = pkts[i];
		const uint64_t want =
			mscope_wire_id(rte_pktmbuf_mtod(m, const void *), m->data_len, m->pkt_len) |
			(uint64_t)wcodes[i] << 32;

		cr_assert_eq(ring[(at + i) & (WRING - 1)], want,
			     "%s: packet %u (data_len %u, pkt_len %u, at %lu): %#lx, want %#lx", name,
			     i, m->data_len, m->pkt_len, (unsigned long)at,
			     (unsigned long)ring[(at + i) & (WRING - 1)], (unsigned long)want);
	}
	for (unsigned i = n; i < WRING; i++)
		cr_assert_eq(ring[(at + i) & (WRING - 1)], WGUARD, "%s: slot %u touched", name,
			     (unsigned)((at + i) & (WRING - 1)));
}

/* Every implementation, at several ring positions (some wrap around). */
static void
check_all_wire_ids(struct rte_mbuf *const *pkts, uint16_t n)
{
	const uint64_t ats[] = { 0, WRING - 1 - n / 2, WRING - 1, 3 * WRING - 5 };

	for (unsigned a = 0; a < sizeof(ats) / sizeof(ats[0]); a++) {
		check_wire_ids("scalar", mc_wire_ids_scalar, pkts, n, ats[a]);
		check_wire_ids("selected", mc_wire_ids, pkts, n, ats[a]);
		if (mc_wire_ids_avx512 != NULL)
			check_wire_ids("avx512", mc_wire_ids_avx512, pkts, n, ats[a]);
	}
}

Test(wireid, implementations_equal_mscope_wire_id_on_real_traffic)
{
	const char *dir = getenv("MSCOPE_DATA");
	const char *files[] = { "ndpi_gnutella.pcap", "pcapplusplus_example.pcap",
				"tcp/zeek_tcp_ssh-dups.pcap" };
	static uint8_t store[32][2048];
	static struct rte_mbuf m[32];
	struct rte_mbuf *pk[32];
	unsigned k = 0, checked = 0;

	cr_assert_not_null(dir, "MSCOPE_DATA not set");
	if (mc_wire_ids_avx512 == NULL)
		cr_log_warn("no AVX-512 on this CPU: only the scalar wire IDs are checked");
	for (unsigned f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		char path[1024], eb[PCAP_ERRBUF_SIZE];
		struct pcap_pkthdr *h;
		const u_char *data;
		pcap_t *p;

		snprintf(path, sizeof(path), "%s/%s", dir, files[f]);
		p = pcap_open_offline(path, eb);
		cr_assert_not_null(p, "%s", eb);
		while (pcap_next_ex(p, &h, &data) == 1) {
			const uint32_t cap = h->caplen < 2000 ? h->caplen : 2000;
			/* vary where the data starts and how much of it the segment holds */
			const uint16_t off = (uint16_t)(checked % 5 * 3);

			memset(store[k], 0xa5, sizeof(store[k]));
			memcpy(store[k] + off, data, cap);
			memset(&m[k], 0, sizeof(m[k]));
			m[k].buf_addr = store[k];
			m[k].buf_len = sizeof(store[k]);
			m[k].data_off = off;
			m[k].data_len = (uint16_t)(checked % 7 == 3 && cap > 40 ? 40 : cap);
			m[k].pkt_len = h->len + checked % 3;
			pk[k] = &m[k];
			if (++k == 32) {
				check_all_wire_ids(pk, 32);
				k = 0;
			}
			checked++;
		}
		pcap_close(p);
	}
	if (k != 0)
		check_all_wire_ids(pk, (uint16_t)k);
	cr_assert_gt(checked, 5000, "only %u packets checked", checked);
}

/*
 * Short segments (0..64 bytes, the packet longer: more segments follow) at
 * the very end of a readable page: nothing past the segment may be read
 * (a guard page faults) and nothing past it may count.
 */
Test(wireid, short_segments_at_the_end_of_a_page)
{
	const long pg = sysconf(_SC_PAGESIZE);
	uint8_t *map = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	static struct rte_mbuf m[65];
	struct rte_mbuf *pk[65];

	cr_assert_neq(map, MAP_FAILED);
	cr_assert_eq(mprotect(map + pg, (size_t)pg, PROT_NONE), 0);
	for (unsigned i = 0; i < (unsigned)pg; i++)
		map[i] = (uint8_t)(i * 131 + 7);
	for (unsigned len = 0; len <= 64; len++) {
		memset(&m[len], 0, sizeof(m[len]));
		m[len].buf_addr = map;
		m[len].buf_len = (uint16_t)pg;
		m[len].data_off = (uint16_t)(pg - len);
		m[len].data_len = (uint16_t)len;
		m[len].pkt_len = len + 1000 + len * 3;
		pk[len] = &m[len];
	}
	/* one at a time and as bursts */
	for (unsigned len = 0; len <= 64; len++)
		check_all_wire_ids(&pk[len], 1);
	check_all_wire_ids(pk, 33);
	check_all_wire_ids(pk + 33, 32);
	/* bytes past a short segment do not count: the same ID as zero padding */
	for (unsigned len = 0; len < 64; len++) {
		uint8_t z[64] = { 0 };
		const uint32_t code = 0;
		uint64_t s;

		memcpy(z, map + pg - len, len);
		m[len].data_off = (uint16_t)(pg - 100);
		memcpy(map + pg - 100, z, len);
		mc_wire_ids_scalar(&pk[len], 1, &code, &s, 0, 0);
		cr_assert_eq(s, mscope_wire_id(z, len, m[len].pkt_len), "len %u", len);
		if (mc_wire_ids_avx512 != NULL) {
			mc_wire_ids_avx512(&pk[len], 1, &code, &s, 0, 0);
			cr_assert_eq(s, mscope_wire_id(z, len, m[len].pkt_len), "avx512, len %u",
				     len);
		}
	}
	munmap(map, (size_t)pg * 2);
}

/* The length enters the ID: same bytes, different lengths, different IDs. */
Test(wireid, lengths_change_the_id)
{
	uint8_t d[64];
	struct rte_mbuf a, b;
	struct rte_mbuf *pk[2] = { &a, &b };
	uint64_t s[2];
	const uint32_t codes[2] = { 0, 0 };

	for (int i = 0; i < 64; i++)
		d[i] = (uint8_t)i;
	memset(&a, 0, sizeof(a));
	a.buf_addr = d;
	a.buf_len = 64;
	a.data_len = 64;
	a.pkt_len = 64;
	b = a;
	b.pkt_len = 65;
	mc_wire_ids(pk, 2, codes, s, 1, 0);
	cr_assert_neq(s[0], s[1], "pkt_len counts");
	b.pkt_len = 64;
	b.data_len = 63;
	mc_wire_ids(pk, 2, codes, s, 1, 0);
	cr_assert_neq(s[0], s[1], "data_len counts");
	cr_assert_eq(s[1], mscope_wire_id(d, 63, 64));
}

/* ---------------------------------------------------------------- config */

static void
clear_env(void)
{
	const char *vars[] = { "MSCOPE_DIR", "MSCOPE_NF", "MSCOPE_RUN_ID", "MSCOPE_ZSTD_LEVEL",
			       "MSCOPE_BUFFER", "MSCOPE_DISABLE", "MSCOPE_QDEPTH_EVERY",
			       "MSCOPE_SEGMENT_SECONDS", "MSCOPE_SEGMENT_BYTES", "MSCOPE_SEGMENTS",
			       "MSCOPE_BUDGET", "MSCOPE_FILE_MODE", "MSCOPE_TEST_MEM_AVAILABLE" };

	for (unsigned i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
}

TestSuite(config, .init = clear_env, .fini = clear_env);

Test(config, defaults)
{
	struct mc_config c;

	mc_config_load(&c);
	cr_assert_str_eq(c.dir, ".");
	cr_assert_str_eq(c.nf, program_invocation_short_name);
	cr_assert_str_eq(c.run_id, "");
	cr_assert_eq(c.zstd_level, MC_DEFAULT_ZSTD);
	cr_assert_eq(c.buffer, MC_DEFAULT_BUFFER);
	cr_assert_eq(c.qdepth_every, MC_DEFAULT_QDEPTH_EVERY);
	cr_assert(!c.disabled);
}

Test(config, good_values)
{
	struct mc_config c;

	setenv("MSCOPE_DIR", "/var/tmp/x", 1);
	setenv("MSCOPE_NF", "fw-1.a_b", 1);
	setenv("MSCOPE_RUN_ID", "r42", 1);
	setenv("MSCOPE_ZSTD_LEVEL", "-3", 1);
	setenv("MSCOPE_BUFFER", "5000", 1);
	setenv("MSCOPE_QDEPTH_EVERY", "0", 1);
	setenv("MSCOPE_DISABLE", "0", 1);
	mc_config_load(&c);
	cr_assert_str_eq(c.dir, "/var/tmp/x");
	cr_assert_str_eq(c.nf, "fw-1.a_b");
	cr_assert_str_eq(c.run_id, "r42");
	cr_assert_eq(c.zstd_level, -3);
	cr_assert_eq(c.buffer, 8192, "rounded up to a power of two");
	cr_assert_eq(c.qdepth_every, 0);
	cr_assert(!c.disabled);
}

/* Lines the test printed on its redirected stderr, each a MSCOPE_ warning. */
static int
warning_lines(void)
{
	char line[512];
	int lines = 0;
	FILE *err;

	fflush(stderr);
	fclose(stderr); /* so that reading the redirected stream ends */
	err = cr_get_redirected_stderr();
	while (fgets(line, sizeof(line), err) != NULL) {
		cr_assert(strncmp(line, "mscope-collector: MSCOPE_", 25) == 0, "line: %s", line);
		lines++;
	}
	return lines;
}

Test(config, bad_values_fall_back, .init = cr_redirect_stderr)
{
	struct mc_config c;

	clear_env();
	setenv("MSCOPE_NF", "../etc", 1);
	setenv("MSCOPE_RUN_ID", "x y", 1);
	setenv("MSCOPE_ZSTD_LEVEL", "99", 1);
	setenv("MSCOPE_BUFFER", "12abc", 1);
	setenv("MSCOPE_QDEPTH_EVERY", "-1", 1);
	mc_config_load(&c);
	cr_assert_str_eq(c.nf, program_invocation_short_name);
	cr_assert_str_eq(c.run_id, "");
	cr_assert_eq(c.zstd_level, MC_DEFAULT_ZSTD);
	cr_assert_eq(c.buffer, MC_DEFAULT_BUFFER);
	cr_assert_eq(c.qdepth_every, MC_DEFAULT_QDEPTH_EVERY);
	cr_assert(!c.disabled);
	cr_assert_eq(warning_lines(), 5, "one warning line per bad value");
}

Test(config, disable_switch)
{
	struct mc_config c;

	setenv("MSCOPE_DISABLE", "1", 1);
	mc_config_load(&c);
	cr_assert(c.disabled);
	setenv("MSCOPE_DISABLE", "perhaps", 1);
	mc_config_load(&c);
	cr_assert(c.disabled, "an unclear switch disables");
}

Test(config, bounded_recording)
{
	struct mc_config c;

	mc_config_load(&c);
	cr_assert(!mc_rotating(&c), "no rotation by default");
	cr_assert_eq(c.file_mode, 0640);
	cr_assert(!c.file_mode_set);
	setenv("MSCOPE_SEGMENT_SECONDS", "30", 1);
	setenv("MSCOPE_SEGMENT_BYTES", "64M", 1);
	setenv("MSCOPE_SEGMENTS", "10", 1);
	setenv("MSCOPE_BUDGET", "2G", 1);
	setenv("MSCOPE_FILE_MODE", "0600", 1);
	mc_config_load(&c);
	cr_assert_eq(c.seg_seconds, 30);
	cr_assert_eq(c.seg_bytes, 64ull << 20);
	cr_assert_eq(c.segments, 10);
	cr_assert_eq(c.budget, 2ull << 30);
	cr_assert_eq(c.file_mode, 0600);
	cr_assert(c.file_mode_set);
	setenv("MSCOPE_SEGMENT_BYTES", "300k", 1);
	setenv("MSCOPE_BUDGET", "1048576", 1);
	mc_config_load(&c);
	cr_assert_eq(c.seg_bytes, 300ull << 10);
	cr_assert_eq(c.budget, 1ull << 20);
	setenv("MSCOPE_SEGMENT_BYTES", "2KiB", 1);
	setenv("MSCOPE_SEGMENT_BYTES", "1MiB", 1);
	mc_config_load(&c);
	cr_assert_eq(c.seg_bytes, 1ull << 20);
}

Test(config, bounded_recording_bad_values, .init = cr_redirect_stderr)
{
	struct mc_config c;

	clear_env();
	setenv("MSCOPE_SEGMENTS", "5", 1); /* without anything that rotates */
	setenv("MSCOPE_SEGMENT_SECONDS", "0", 1);
	setenv("MSCOPE_SEGMENT_BYTES", "1k", 1); /* below 64k */
	setenv("MSCOPE_BUDGET", "10T", 1);
	setenv("MSCOPE_FILE_MODE", "0666", 1); /* world-writable */
	mc_config_load(&c);
	cr_assert(!mc_rotating(&c));
	cr_assert_eq(c.segments, 0);
	cr_assert_eq(c.file_mode, 0640);
	setenv("MSCOPE_FILE_MODE", "644x", 1);
	setenv("MSCOPE_SEGMENT_BYTES", "99999999999999999999G", 1);
	unsetenv("MSCOPE_SEGMENTS");
	unsetenv("MSCOPE_SEGMENT_SECONDS");
	unsetenv("MSCOPE_BUDGET");
	mc_config_load(&c);
	cr_assert_eq(c.seg_bytes, 0);
	cr_assert_eq(c.file_mode, 0640);
	cr_assert_eq(warning_lines(), 7, "one warning line per bad value");
}

Test(config, escapes)
{
	char buf[64];

	cr_assert_str_eq(mc_esc("fw1-a.b", buf, sizeof(buf)), "fw1-a.b");
	cr_assert_str_eq(mc_esc("a\x1b[2J\nb", buf, sizeof(buf)), "a\\x1b[2J\\x0ab");
	cr_assert_str_eq(mc_esc("q\"\\\x7f\xff", buf, sizeof(buf)), "q\\x22\\x5c\\x7f\\xff");
	cr_assert_str_eq(mc_esc(NULL, buf, sizeof(buf)), "");
	/* too long: cut whole, marked */
	cr_assert_str_eq(mc_esc("\x01\x01\x01\x01\x01", buf, 16), "\\x01\\x01...");
	cr_assert_lt(strlen(mc_esc("0123456789012345678901234567890123456789", buf, 16)), 16);
}
