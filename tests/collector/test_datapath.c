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

/* The packet copy at ring position at holds frame i's lengths and bytes. */
static void
assert_copy(const struct mc_ring *r, uint64_t at, int i)
{
	uint8_t b[MC_DATA_BYTES];

	cr_assert_eq(slot(r, at), 64 | (uint64_t)64 << 32, "lengths");
	for (int w = 0; w < MC_DATA_BYTES / 8; w++) {
		const uint64_t v = slot(r, at + 1 + w);

		memcpy(b + 8 * w, &v, 8);
	}
	cr_assert_eq(memcmp(b, bufs[i], MC_DATA_BYTES), 0, "bytes of packet %d", i);
}

Test(datapath, rx_entry_copies_packets_and_links_them)
{
	struct mc_rxq *q = new_rxq(1024);
	struct rte_mbuf *got[NPKT];
	uint64_t hdr;

	for (int i = 0; i < 8; i++)
		make_pkt(i, (uint16_t)(i % 3), 1);
	queue_n = 8;
	cr_assert_eq(mc_rx_burst(q, got, 32), 8);
	hdr = slot(&q->ring, 0);
	cr_assert_eq(hdr & 0xff, MC_E_RX);
	cr_assert_eq((hdr >> 16) & 0xffff, 8);
	cr_assert_eq(hdr >> 48, 0, "no queue depth sampled");
	for (int i = 0; i < 8; i++) {
		assert_copy(&q->ring, 2 + (uint64_t)i * MC_PKT_SLOTS, i);
		cr_assert_eq(*RTE_MBUF_DYNFIELD(&mbufs[i], mc.link_off, uint64_t *),
			     ((uint64_t)3 << 48) | (uint64_t)i);
	}
	cr_assert_eq(q->ring.tail, 2 + 8 * MC_PKT_SLOTS);
	cr_assert_eq(q->seq, 8);
	cr_assert_eq(mc_rx_burst(q, got, 32), 8);
	cr_assert_eq(*RTE_MBUF_DYNFIELD(&mbufs[0], mc.link_off, uint64_t *),
		     ((uint64_t)3 << 48) | 8u, "seq continues");
	free_rxq(q);
}

Test(datapath, rx_short_buffer_is_padded)
{
	struct mc_rxq *q = new_rxq(1024);
	struct rte_mbuf *got[NPKT];
	uint64_t v;

	make_pkt(0, 1, 1);
	mbufs[0].buf_len = 40; /* fewer bytes than a full copy: never read past it */
	mbufs[0].data_len = mbufs[0].pkt_len = 40;
	queue_n = 1;
	cr_assert_eq(mc_rx_burst(q, got, 32), 1);
	cr_assert_eq(slot(&q->ring, 2), 40 | (uint64_t)40 << 32);
	memcpy(&v, bufs[0] + 32, 8);
	cr_assert_eq(slot(&q->ring, 2 + 1 + 4), v, "bytes 32..39 copied");
	for (int w = 5; w < MC_DATA_BYTES / 8; w++)
		cr_assert_eq(slot(&q->ring, 2 + 1 + w), 0, "padded with zeros");
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
	*RTE_MBUF_DYNFIELD(&mbufs[1], mc.link_off, uint64_t *) = stale1;
	*RTE_MBUF_DYNFIELD(&mbufs[3], mc.link_off, uint64_t *) = stale3;
	cr_assert_eq(mc_rx_burst(q, got, 32), 4);
	hdr = slot(&q->ring, 0);
	cr_assert_eq(hdr & 0xff, MC_E_FREED);
	cr_assert_eq((hdr >> 16) & 0xffff, 2, "two freed packets");
	cr_assert_neq(slot(&q->ring, 1), 0, "TSC of the burst");
	cr_assert_eq(slot(&q->ring, 2), stale1);
	cr_assert_eq(slot(&q->ring, 3), stale3);
	cr_assert_eq(slot(&q->ring, 4) & 0xff, MC_E_RX, "then the burst itself");
	cr_assert_eq(slot(&q->ring, 5), slot(&q->ring, 1), "at the same TSC");
	cr_assert_eq((slot(&q->ring, 4) >> 16) & 0xffff, 4);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(*RTE_MBUF_DYNFIELD(&mbufs[i], mc.link_off, uint64_t *),
			     ((uint64_t)3 << 48) | (uint64_t)i, "new links");
	cr_assert_eq(q->ring.hold, 0, "nothing held after the burst");
	cr_assert_eq(mc_link_seq(stale3, &refused), 7);
	cr_assert(refused);
	cr_assert_eq(mc_link_seq(stale1, &refused), 41);
	cr_assert_not(refused);
	cr_assert_eq(mc_link_seq(((uint64_t)3 << 48) | MC_SEQ_UNKNOWN, &refused), MC_SEQ_UNKNOWN);
	cr_assert_not(refused);
	/* a clean burst: no freed entry */
	for (int i = 0; i < 4; i++)
		*RTE_MBUF_DYNFIELD(&mbufs[i], mc.link_off, uint64_t *) = 0;
	{
		const uint64_t start = q->ring.tail;

		mc_rx_burst(q, got, 32);
		cr_assert_eq(slot(&q->ring, start) & 0xff, MC_E_RX);
	}
	free_rxq(q);
}

Test(datapath, rx_queue_depth_sampled_every_nth_burst)
{
	struct mc_rxq *q = new_rxq(4096);
	struct rte_mbuf *got[NPKT];
	uint64_t at = 0;

	make_pkt(0, 1, 1);
	queue_n = 1;
	q->real_count = count3;
	q->qd_every = q->qd_left = 4;
	for (int b = 1; b <= 8; b++) {
		const uint64_t start = q->ring.tail;

		/* as if the NF had sent it: no freed-packet entry */
		*RTE_MBUF_DYNFIELD(&mbufs[0], mc.link_off, uint64_t *) = 0;
		mc_rx_burst(q, got, 32);
		at = slot(&q->ring, start) >> 48;
		cr_assert_eq(at, b % 4 == 0 ? 4u : 0u, "burst %d", b);
	}
	free_rxq(q);
}

Test(datapath, rx_ring_full_loses_the_record_and_counts_it)
{
	struct mc_rxq *q = new_rxq(4096);
	struct rte_mbuf *got[NPKT];

	for (int i = 0; i < 32; i++)
		make_pkt(i, 7, 1);
	queue_n = 32;
	/* nobody consumes: fill until the worst-case reservation fails */
	while (q->ring.lost_records == 0) {
		for (int i = 0; i < 32; i++)
			*RTE_MBUF_DYNFIELD(&mbufs[i], mc.link_off, uint64_t *) = 0;
		cr_assert_eq(mc_rx_burst(q, got, 32), 32, "the NF always gets its packets");
	}
	cr_assert_eq(q->ring.lost_packets, 32);
	cr_assert_eq(q->seq % 32, 0);
	cr_assert_eq(*RTE_MBUF_DYNFIELD(&mbufs[5], mc.link_off, uint64_t *),
		     ((uint64_t)3 << 48) | MC_SEQ_UNKNOWN, "lost rx keeps the node, not a seq");
	/* the consumer frees everything: recording resumes, seq had not moved */
	{
		const uint64_t seq = q->seq;

		q->ring.cons = q->ring.tail;
		for (int i = 0; i < 32; i++)
			*RTE_MBUF_DYNFIELD(&mbufs[i], mc.link_off, uint64_t *) = 0;
		mc_rx_burst(q, got, 32);
		cr_assert_eq(q->seq, seq + 32);
		cr_assert_eq(q->ring.lost_records, 1);
	}
	free_rxq(q);
}

Test(datapath, tx_counts_accepted_and_restores_refused_links)
{
	struct mc_txq *q = new_txq(1024);
	struct rte_mbuf *pk[5];
	uint64_t hdr;

	for (int i = 0; i < 5; i++) {
		make_pkt(i, 1, 2);
		pk[i] = &mbufs[i];
		*RTE_MBUF_DYNFIELD(&mbufs[i], mc.link_off, uint64_t *) = ((uint64_t)1 << 48) | (100u + i);
	}
	tx_accept = 3;
	cr_assert_eq(mc_tx_burst(q, pk, 5), 3);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(tx_links_seen[i], 0, "the driver gets cleared links");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(*RTE_MBUF_DYNFIELD(&mbufs[i], mc.link_off, uint64_t *), 0);
	for (int i = 3; i < 5; i++)
		cr_assert_eq(*RTE_MBUF_DYNFIELD(&mbufs[i], mc.link_off, uint64_t *),
			     ((uint64_t)1 << 48) | (100u + i) | MC_SEQ_REFUSED,
			     "refused packets keep their link, marked refused");
	hdr = slot(&q->ring, 0);
	cr_assert_eq(hdr & 0xff, MC_E_TX);
	cr_assert_eq((hdr >> 16) & 0xffff, 5, "offered");
	cr_assert_eq(hdr >> 48, 3, "accepted");
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(slot(&q->ring, 2 + i), ((uint64_t)1 << 48) | (100u + i));
		assert_copy(&q->ring, 2 + 5 + (uint64_t)i * MC_PKT_SLOTS, i);
	}
	cr_assert_eq(q->ring.tail, 2 + 5 * (1 + MC_PKT_SLOTS));
	free_txq(q);
}

Test(datapath, tx_unlinked_packets_carry_no_link)
{
	struct mc_txq *q = new_txq(1024);
	struct rte_mbuf *pk[2];

	make_pkt(0, 9, 1);
	make_pkt(1, 9, 2);
	pk[0] = &mbufs[0];
	pk[1] = &mbufs[1];
	tx_accept = 2;
	cr_assert_eq(mc_tx_burst(q, pk, 2), 2);
	cr_assert_eq(slot(&q->ring, 2), 0);
	cr_assert_eq(slot(&q->ring, 3), 0);
	assert_copy(&q->ring, 4, 0);
	assert_copy(&q->ring, 4 + MC_PKT_SLOTS, 1);
	free_txq(q);
}

Test(datapath, tx_refused_bursts_merge_into_one_run)
{
	struct mc_txq *q = new_txq(4096);
	struct rte_mbuf *pk[4];

	for (int i = 0; i < 4; i++) {
		make_pkt(i, 1, 1);
		pk[i] = &mbufs[i];
	}
	tx_accept = 2;
	cr_assert_eq(mc_tx_burst(q, pk, 4), 2);
	const uint64_t after_first = q->ring.tail;

	tx_accept = 0;
	for (int k = 0; k < 1000; k++)
		cr_assert_eq(mc_tx_burst(q, pk, 4), 0);
	cr_assert_eq(q->ring.tail, after_first, "refusals are held in the run");
	cr_assert_eq(q->run_n, 4000);
	/* a refused burst of mixed origins cannot join: the run is published first */
	*RTE_MBUF_DYNFIELD(&mbufs[3], mc.link_off, uint64_t *) = (uint64_t)1 << 48;
	cr_assert_eq(mc_tx_burst(q, pk, 4), 0);
	cr_assert_eq(slot(&q->ring, after_first) & 0xff, MC_E_REFUSED);
	cr_assert_eq(slot(&q->ring, after_first + 2), 4000);
	cr_assert_eq(slot(&q->ring, after_first + MC_RUN_SLOTS) & 0xff, MC_E_TX);
	cr_assert_eq(slot(&q->ring, after_first + MC_RUN_SLOTS) >> 48, 0, "nothing accepted");
	cr_assert_leq(slot(&q->ring, after_first + 1),
		      slot(&q->ring, after_first + MC_RUN_SLOTS + 1), "TSC order kept");
	cr_assert_eq(q->run_n, 0);
	free_txq(q);
}

Test(datapath, tx_ring_full_still_forwards_and_counts_by_origin)
{
	struct mc_txq *q = new_txq(4096);
	struct rte_mbuf *pk[32];

	for (int i = 0; i < 32; i++) {
		make_pkt(i, 1, 1);
		pk[i] = &mbufs[i];
	}
	tx_accept = 32;
	q->ring.head = q->ring.tail = 4000; /* nearly full, nobody consumes */
	q->ring.cons = q->ring.cons_cache = 4000 - 4096 + 10;
	for (int i = 0; i < 32; i++)
		*RTE_MBUF_DYNFIELD(&mbufs[i], mc.link_off, uint64_t *) =
			i < 16 ? ((uint64_t)2 << 48) | (uint64_t)i : 0;
	cr_assert_eq(mc_tx_burst(q, pk, 32), 32);
	cr_assert_eq(q->ring.tail, 4000, "nothing recorded");
	cr_assert_eq(q->lost[2][0], 1);
	cr_assert_eq(q->lost[2][1], 16);
	cr_assert_eq(q->lost[0][0], 1);
	cr_assert_eq(q->lost[0][1], 16);
	cr_assert_eq(q->lost_total, 32);
	for (int i = 0; i < 32; i++)
		cr_assert_eq(*RTE_MBUF_DYNFIELD(&mbufs[i], mc.link_off, uint64_t *), 0);
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

Test(flows, wire_ids4_equal_mscope_wire_id)
{
	const char *dir = getenv("MSCOPE_DATA");
	char path[1024], eb[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *data;
	uint64_t w[4][MC_DATA_BYTES / 8];
	uint32_t seg[4], len[4], out[4];
	unsigned k = 0, checked = 0;
	pcap_t *p;

	cr_assert_not_null(dir);
	snprintf(path, sizeof(path), "%s/ndpi_gnutella.pcap", dir);
	p = pcap_open_offline(path, eb);
	cr_assert_not_null(p, "%s", eb);
	while (pcap_next_ex(p, &h, &data) == 1) {
		memset(w[k], 0, sizeof(w[k]));
		memcpy(w[k], data, h->caplen < MC_DATA_BYTES ? h->caplen : MC_DATA_BYTES);
		/* vary the lengths: short segments take the per-packet path */
		seg[k] = checked % 7 == 3 ? (h->caplen < 40 ? h->caplen : 40) : h->caplen;
		len[k] = h->len + checked % 3;
		if (++k == 4) {
			const uint64_t *const wp[4] = { w[0], w[1], w[2], w[3] };

			mc_wire_ids4(wp, seg, len, out);
			for (unsigned i = 0; i < 4; i++)
				cr_assert_eq(out[i], mscope_wire_id(w[i], seg[i], len[i]),
					     "packet %u", checked + i);
			checked += 4;
			k = 0;
		}
	}
	pcap_close(p);
	cr_assert_gt(checked, 3000);
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

/* ---------------------------------------------------------------- config */

static void
clear_env(void)
{
	const char *vars[] = { "MSCOPE_DIR", "MSCOPE_NF", "MSCOPE_RUN_ID", "MSCOPE_ZSTD_LEVEL",
			       "MSCOPE_BUFFER", "MSCOPE_DISABLE", "MSCOPE_QDEPTH_EVERY" };

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

Test(config, bad_values_fall_back, .init = cr_redirect_stderr)
{
	struct mc_config c;
	char line[512];
	int lines = 0;
	FILE *err;

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
	fflush(stderr);
	fclose(stderr); /* so that reading the redirected stream ends */
	err = cr_get_redirected_stderr();
	while (fgets(line, sizeof(line), err) != NULL) {
		cr_assert(strncmp(line, "mscope-collector: MSCOPE_", 25) == 0, "line: %s", line);
		lines++;
	}
	cr_assert_eq(lines, 5, "one warning line per bad value");
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
