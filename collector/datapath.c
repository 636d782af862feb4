/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Data path: the burst functions installed in rte_eth_fp_ops. They run on
 * the NF's lcores inside rte_eth_rx_burst()/rte_eth_tx_burst(), so they
 * never lock, allocate, make a syscall or log: each outcome is a slot in the
 * queue's own ring or a loss counter. One TSC read per burst.
 *
 * The queue data pointer the NF's inline burst passes in is our queue
 * context (we replaced rxq.data/txq.data); the driver's own queue pointer is
 * re-read from the port's original array every call, so a queue set up
 * again at run time is still found.
 */
#include <string.h>

#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_prefetch.h>

#include "collector_priv.h"

#define PREFETCH_AHEAD 4

/* ---------------------------------------------------------------- ring */

/* Is there room for `need` slots? Re-reads the consumer only when short. */
static inline bool
ring_room(struct mc_ring *r, uint64_t need)
{
	const uint64_t size = r->mask + 1;

	if (likely(r->head + need - r->cons_cache <= size))
		return true;
	r->cons_cache = __atomic_load_n(&r->cons, __ATOMIC_ACQUIRE);
	return r->head + need - r->cons_cache <= size;
}

static inline void
ring_commit(struct mc_ring *r, uint64_t used)
{
	r->head += used;
	__atomic_store_n(&r->tail, r->head, __ATOMIC_RELEASE);
}

static inline void
count_lost(uint64_t *ctr, uint64_t add)
{
	/* single writer: a relaxed store is enough for the reader */
	__atomic_store_n(ctr, *ctr + add, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------- flows */

static inline uint16_t
rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

void
mc_flow_key(const uint8_t *d, uint32_t len, union mc_fkey *k)
{
	k->w[0] = k->w[1] = k->w[2] = k->w[3] = k->w[4] = 0;
	/* untagged IPv4 without options, TCP/UDP, not a later fragment */
	if (likely(len >= 38 && d[12] == 0x08 && d[13] == 0x00 && d[14] == 0x45 &&
		   (rd16(d + 20) & 0x1fff) == 0 && (d[23] == 6 || d[23] == 17))) {
		k->k.family = 4;
		k->k.proto = d[23];
		memcpy(k->k.src, d + 26, 4);
		memcpy(k->k.dst, d + 30, 4);
		k->k.sport = rd16(d + 34);
		k->k.dport = rd16(d + 36);
		return;
	}
	mscope_flow_parse(d, len, &k->k);
}

static inline bool
key_eq(const union mc_fkey *a, const union mc_fkey *b)
{
	return ((a->w[0] ^ b->w[0]) | (a->w[1] ^ b->w[1]) | (a->w[2] ^ b->w[2]) |
		(a->w[3] ^ b->w[3]) | (a->w[4] ^ b->w[4])) == 0;
}

static inline uint32_t
key_hash(const union mc_fkey *k)
{
	uint64_t h = k->w[0] * 0x9E3779B185EBCA87ULL;

	h ^= (k->w[1] + (k->w[2] << 1)) * 0xC2B2AE3D27D4EB4FULL;
	h ^= (k->w[3] + (k->w[4] << 1)) * 0x165667B19E3779F9ULL;
	return (uint32_t)(h >> 32) ^ (uint32_t)h;
}

/*
 * Flow reference of a frame in table t. A new flow gets the next ref and a
 * definition entry at slots[fpos + 6 * *nflow] (ring positions, masked).
 * Open addressing with a few linear probes; when they are all taken the
 * home slot is overwritten, so a flow seen again later gets a new ref (and
 * a new definition with the same key): bounded time, bounded memory.
 */
static inline uint32_t
flow_ref(struct mc_flow_table *t, const uint8_t *d, uint32_t len, uint64_t *slots,
	 uint64_t mask, uint64_t fpos, unsigned *nflow)
{
	union mc_fkey k;
	struct mc_flow_slot *s = NULL;
	uint32_t h, ref;

	mc_flow_key(d, len, &k);
	if (likely(t->have_last && key_eq(&k, &t->last)))
		return t->last_ref;
	h = key_hash(&k);
	for (unsigned p = 0; p < MC_FLOW_PROBES; p++) {
		struct mc_flow_slot *c = &t->slot[(h + p) & (MC_FLOW_SLOTS - 1)];

		if (c->ref_plus1 == 0) {
			s = c;
			break;
		}
		if (key_eq(&c->key, &k)) {
			ref = c->ref_plus1 - 1;
			goto found;
		}
	}
	if (s == NULL)
		s = &t->slot[h & (MC_FLOW_SLOTS - 1)];
	ref = t->next_ref++;
	s->key = k;
	s->ref_plus1 = ref + 1;
	{
		const uint64_t at = fpos + (uint64_t)MC_FLOW_ENTRY_SLOTS * (*nflow)++;

		slots[at & mask] = ref;
		for (unsigned i = 0; i < 5; i++)
			slots[(at + 1 + i) & mask] = k.w[i];
	}
found:
	t->last = k;
	t->last_ref = ref;
	t->have_last = true;
	return ref;
}

/* ---------------------------------------------------------------- rx */

static inline uint64_t *
link_of(struct rte_mbuf *m, int off)
{
	return RTE_MBUF_DYNFIELD(m, off, uint64_t *);
}

static void
record_rx(struct mc_rxq *q, struct rte_mbuf **pkts, uint16_t n)
{
	struct mc_ring *r = &q->ring;
	const uint64_t tsc = rte_rdtsc();
	const int off = mc.link_off;
	const bool hw = q->hwts_off >= 0;
	const uint64_t per = 1 + hw;
	uint64_t *const slots = r->slots;
	const uint64_t mask = r->mask;
	uint64_t base, fpos;
	unsigned nflow = 0, aux = 0;

	if (unlikely(!ring_room(r, 2 + (uint64_t)n * (per + MC_FLOW_ENTRY_SLOTS)))) {
		/* the rx record is lost: its packets keep their node, not a seq */
		for (uint16_t i = 0; i < n; i++)
			*link_of(pkts[i], off) = q->link_base | MC_SEQ_UNKNOWN;
		count_lost(&r->lost_records, 1);
		count_lost(&r->lost_packets, n);
		return;
	}
	base = r->head;
	fpos = base + 2 + (uint64_t)n * per;
	for (uint16_t i = 0; i < PREFETCH_AHEAD && i < n; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *const m = pkts[i];
		const uint8_t *d = rte_pktmbuf_mtod(m, const uint8_t *);
		uint32_t wid, ref;

		if (i + PREFETCH_AHEAD < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + PREFETCH_AHEAD], void *));
		wid = mscope_wire_id(d, m->data_len, m->pkt_len);
		ref = flow_ref(q->flows, d, m->data_len, slots, mask, fpos, &nflow);
		slots[(base + 2 + i) & mask] = wid | (uint64_t)ref << 32;
		*link_of(m, off) = q->link_base | (q->seq + i);
		if (hw)
			slots[(base + 2 + n + i) & mask] = (m->ol_flags & q->hwts_flag) ?
				*RTE_MBUF_DYNFIELD(m, q->hwts_off, uint64_t *) : 0;
	}
	if (q->qd_every != 0 && --q->qd_left == 0) {
		const int c = (int)q->real_count(q->real_data[q->queue]);

		q->qd_left = q->qd_every;
		if (c >= 0)
			aux = (c < 65534 ? (unsigned)c : 65534) + 1;
	}
	slots[base & mask] = mc_hdr(MC_E_RX, hw ? MC_EF_HWTS : 0, n, nflow, aux);
	slots[(base + 1) & mask] = tsc;
	ring_commit(r, 2 + (uint64_t)n * per + (uint64_t)MC_FLOW_ENTRY_SLOTS * nflow);
	q->seq += n;
}

uint16_t
mc_rx_burst(void *qd, struct rte_mbuf **pkts, uint16_t nmax)
{
	struct mc_rxq *q = qd;
	const uint16_t n = q->real_burst(q->real_data[q->queue], pkts, nmax);

	if (n != 0)
		record_rx(q, pkts, n);
	return n;
}

uint32_t
mc_rx_queue_count(void *qd)
{
	struct mc_rxq *q = qd;

	return q->real_count(q->real_data[q->queue]);
}

int
mc_rx_desc_status(void *qd, uint16_t offset)
{
	struct mc_rxq *q = qd;

	return q->real_desc_status(q->real_data[q->queue], offset);
}

/* ---------------------------------------------------------------- tx */

/* Ring full: still forward, clear the links, count the loss per origin. */
static uint16_t
tx_unrecorded(struct mc_txq *q, void *rq, struct rte_mbuf **pkts, uint16_t n)
{
	const int off = mc.link_off;
	uint64_t links[64];
	uint16_t acc, done = 0;

	/* in chunks so the saved links fit on the stack */
	while (done < n) {
		const uint16_t k = n - done < 64 ? n - done : 64;
		uint64_t prev = UINT64_MAX;

		for (uint16_t i = 0; i < k; i++) {
			links[i] = *link_of(pkts[done + i], off);
			*link_of(pkts[done + i], off) = 0;
		}
		acc = q->real_burst(rq, pkts + done, k);
		for (uint16_t i = acc; i < k; i++)
			*link_of(pkts[done + i], off) = links[i];
		/* a record per origin (approximated by runs), its accepted packets */
		for (uint16_t i = 0; i < k; i++) {
			uint64_t o = links[i] >> 48;

			if (o > MC_MAX_NODES)
				o = 0;
			if (o != prev)
				count_lost(&q->lost[o][0], 1);
			if (i < acc)
				count_lost(&q->lost[o][1], 1);
			prev = o;
		}
		count_lost(&q->lost_total, k);
		done += acc;
		if (acc < k)
			break;
	}
	return done;
}

/* Publish the pending run of refused bursts (room was checked by the caller). */
static inline void
put_run(struct mc_txq *q)
{
	struct mc_ring *r = &q->ring;

	r->slots[r->head & r->mask] = mc_hdr(MC_E_REFUSED, 0, 0, 0, (unsigned)q->run_origin);
	r->slots[(r->head + 1) & r->mask] = q->run_tsc;
	r->slots[(r->head + 2) & r->mask] = q->run_n;
	ring_commit(r, MC_RUN_SLOTS);
	q->run_n = 0;
}

uint16_t
mc_tx_burst(void *qd, struct rte_mbuf **pkts, uint16_t n)
{
	struct mc_txq *q = qd;
	struct mc_ring *r = &q->ring;
	void *const rq = q->real_data[q->queue];
	const int off = mc.link_off;
	uint64_t *const slots = r->slots;
	const uint64_t mask = r->mask;
	uint64_t tsc, base, wpos, fpos;
	unsigned nflow = 0;
	uint16_t acc;

	if (unlikely(n == 0))
		return q->real_burst(rq, pkts, 0);
	tsc = rte_rdtsc();
	if (unlikely(!ring_room(r, MC_RUN_SLOTS + 2 + (uint64_t)n * (2 + MC_FLOW_ENTRY_SLOTS))))
		return tx_unrecorded(q, rq, pkts, n);
	/* room for a pending run's entry, written before this one if needed */
	base = r->head + (q->run_n != 0 ? MC_RUN_SLOTS : 0);
	wpos = base + 2 + n;
	fpos = wpos + n;
	for (uint16_t i = 0; i < PREFETCH_AHEAD && i < n; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	/* everything is read before the driver owns the mbufs */
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *const m = pkts[i];
		const uint8_t *d = rte_pktmbuf_mtod(m, const uint8_t *);
		uint64_t *const lp = link_of(m, off);
		const uint64_t link = *lp;
		uint32_t ref = 0;

		if (i + PREFETCH_AHEAD < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + PREFETCH_AHEAD], void *));
		*lp = 0;
		slots[(base + 2 + i) & mask] = link;
		if (unlikely(link == 0)) /* sourced here: its flow goes to the source node */
			ref = flow_ref(q->flows, d, m->data_len, slots, mask, fpos, &nflow);
		slots[(wpos + i) & mask] = mscope_wire_id(d, m->data_len, m->pkt_len) |
					   (uint64_t)ref << 32;
	}
	acc = q->real_burst(rq, pkts, n);
	/* refused packets stay the NF's: give them their link back for a retry */
	for (uint16_t i = acc; i < n; i++)
		*link_of(pkts[i], off) = slots[(base + 2 + i) & mask];
	if (unlikely(acc == 0) && nflow == 0) {
		/*
		 * Under back-pressure an NF may retry millions of times a second:
		 * consecutive fully refused bursts of one origin become one record
		 * (at most run_span long), so the writer keeps up.
		 */
		const uint64_t origin = slots[(base + 2) & mask] >> 48;
		bool same = true;

		for (uint16_t i = 1; i < n; i++)
			same &= (slots[(base + 2 + i) & mask] >> 48) == origin;
		if (same) {
			if (q->run_n != 0 && q->run_origin == origin &&
			    tsc - q->run_tsc < q->run_span && q->run_n < (UINT64_C(1) << 30)) {
				q->run_n += n;
				return 0;
			}
			if (q->run_n != 0)
				put_run(q);
			q->run_n = n;
			q->run_tsc = tsc;
			q->run_origin = origin;
			return 0;
		}
	}
	if (q->run_n != 0)
		put_run(q);
	slots[base & mask] = mc_hdr(MC_E_TX, 0, n, nflow, acc);
	slots[(base + 1) & mask] = tsc;
	ring_commit(r, (base - r->head) + 2 + 2 * (uint64_t)n +
		       (uint64_t)MC_FLOW_ENTRY_SLOTS * nflow);
	return acc;
}

uint16_t
mc_tx_prepare(void *qd, struct rte_mbuf **pkts, uint16_t n)
{
	struct mc_txq *q = qd;

	return q->real_prep(q->real_data[q->queue], pkts, n);
}

int
mc_tx_desc_status(void *qd, uint16_t offset)
{
	struct mc_txq *q = qd;

	return q->real_desc_status(q->real_data[q->queue], offset);
}

/* Queues the port does not have: behave like an empty rx, a refusing tx. */
uint16_t
mc_dead_rx_burst(void *qd, struct rte_mbuf **pkts, uint16_t n)
{
	return 0;
}

uint16_t
mc_dead_tx_burst(void *qd, struct rte_mbuf **pkts, uint16_t n)
{
	return 0;
}
