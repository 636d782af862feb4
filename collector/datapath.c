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

#include "collector_priv.h"

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

/*
 * Tell the writer that an entry stamped `tsc` (0: none) is on its way: it
 * merges nothing newer from other rings until the entry is published. The
 * line is the one of `tail`, which the producer writes anyway; stored after
 * the tail so that a writer that sees the hold gone also sees the entry.
 */
static inline void
ring_hold(struct mc_ring *r, uint64_t tsc)
{
	__atomic_store_n(&r->hold, tsc, __ATOMIC_RELEASE);
}

static inline void
count_lost(uint64_t *ctr, uint64_t add)
{
	/* single writer: a relaxed store is enough for the reader */
	__atomic_store_n(ctr, *ctr + add, __ATOMIC_RELAXED);
}

/*
 * Ask for the ring lines a few bursts ahead now, for writing: the writer's
 * core read them last, and waiting for them on the store would stall the NF.
 */
static inline void
ring_prefetch(const struct mc_ring *r)
{
	for (unsigned k = 0; k < 4; k++)
		__builtin_prefetch(&r->slots[(r->head + 256 + 8 * k) & r->mask], 1, 3);
}

/* ---------------------------------------------------------------- packets */

/*
 * Copy a packet for the writer, which parses its flow: its lengths and
 * first bytes. Reading a full MC_DATA_BYTES is safe whenever the buffer has
 * them (the writer only uses the first data_len); tiny buffers are padded
 * with zeros. Only for packets of a flow new to the cache.
 */
static __rte_noinline void
copy_pkt(const struct rte_mbuf *m, uint64_t *slots, uint64_t mask, uint64_t at)
{
	const uint8_t *d = rte_pktmbuf_mtod(m, const uint8_t *);
	uint64_t w[MC_DATA_BYTES / 8];

	if (likely((uint32_t)m->buf_len - m->data_off >= MC_DATA_BYTES)) {
		memcpy(w, d, MC_DATA_BYTES);
	} else {
		memset(w, 0, sizeof(w));
		memcpy(w, d, m->data_len < MC_DATA_BYTES ? m->data_len : MC_DATA_BYTES);
	}
	slots[at & mask] = m->data_len | (uint64_t)m->pkt_len << 32;
	for (unsigned i = 0; i < MC_DATA_BYTES / 8; i++)
		slots[(at + 1 + i) & mask] = w[i];
}

static inline uint64_t
ld64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static inline uint32_t
ld32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

#define FC_M1 0x9E3779B185EBCA87ULL
#define FC_M2 0xC2B2AE3D27D4EB4FULL

static inline uint32_t
fc4_code(struct mc_fc4_entry *e, uint32_t idx, uint64_t k0, uint64_t k1)
{
	if (((e->w[0] ^ k0) | (e->w[1] ^ k1)) == 0)
		return idx;
	e->w[0] = k0;
	e->w[1] = k1;
	return idx | MC_FK_DEF << 16;
}

static inline uint32_t
fc6_code(struct mc_fc6_entry *e, uint32_t idx, const uint64_t k[5])
{
	if (((e->w[0] ^ k[0]) | (e->w[1] ^ k[1]) | (e->w[2] ^ k[2]) | (e->w[3] ^ k[3]) |
	     (e->w[4] ^ k[4])) == 0)
		return idx;
	memcpy(e->w, k, sizeof(e->w));
	return idx | MC_FK_DEF << 16;
}

/*
 * Flow code of a frame (see collector_priv.h). Cached are exactly the frames
 * whose 5-tuple the parser takes from fixed offsets: untagged IPv4 without
 * options, not a later fragment, TCP or UDP, or a protocol without ports
 * (ICMP, ESP, GRE, ...); untagged IPv6 whose next header is TCP or UDP;
 * non-IP frames (one catch-all flow). The key is the raw bytes
 * the parser reads, tagged by family, so equal keys mean equal 5-tuples.
 */
static inline uint32_t
flow_code(struct mc_fcache *fc, const uint8_t *d, uint32_t seg)
{
	uint64_t k[5];
	uint32_t idx;
	const uint16_t type = seg >= 14 ? (uint16_t)(d[12] << 8 | d[13]) : 0;

	if (likely(type == 0x0800)) {
		uint64_t k0, k1;
		uint8_t pr;

		if (unlikely(seg < 38 || d[14] != 0x45 || (d[20] & 0x1f) != 0 || d[21] != 0))
			return MC_FK_RAW << 16;
		pr = d[23];
		k0 = ld64(d + 26); /* addresses */
		if (likely(pr == 6 || pr == 17))
			k1 = ld32(d + 34) | (uint64_t)pr << 32 | UINT64_C(4) << 40;
		else if (pr != 132 && pr != 136 && pr != 33)
			k1 = (uint64_t)pr << 32 | UINT64_C(4) << 40; /* no ports: ICMP, ESP, GRE... */
		else
			return MC_FK_RAW << 16;
		idx = (uint32_t)(((k0 * FC_M1) ^ (k1 * FC_M2)) >> (64 - MC_FC4_BITS));
		return fc4_code(&fc->e4[idx], idx, k0, k1);
	}
	if (type == 0x86dd) {
		if (seg >= 58 && (d[14] >> 4) == 6 && (d[20] == 6 || d[20] == 17)) {
			k[0] = ld64(d + 22);
			k[1] = ld64(d + 30);
			k[2] = ld64(d + 38);
			k[3] = ld64(d + 46);
			k[4] = ld32(d + 54) | (uint64_t)d[20] << 32 | UINT64_C(6) << 40;
			idx = (uint32_t)((((k[0] ^ k[2]) * FC_M1) ^ ((k[1] ^ k[3] ^ k[4]) * FC_M2)) >>
					 (64 - MC_FC6_BITS));
			return fc6_code(&fc->e6[idx], MC_FC4_SLOTS + idx, k);
		}
		return MC_FK_RAW << 16;
	}
	if (type == 0x8100 || type == 0x88a8 || type == 0x9100)
		return MC_FK_RAW << 16;
	if (likely(fc->catchall))
		return MC_FC_CATCHALL;
	fc->catchall = true;
	return MC_FC_CATCHALL | MC_FK_DEF << 16;
}

/* Undo the cache entries a burst defined, when its entry is not published. */
static void
fc_forget(struct mc_fcache *fc, const uint32_t *codes, uint16_t n)
{
	for (uint16_t i = 0; i < n; i++) {
		const uint32_t code = codes[i];

		if (code >> MC_LC_ORIGIN_SHIFT != 0 || (code >> 16 & 3) != MC_FK_DEF)
			continue;
		if ((code & 0xffff) == MC_FC_CATCHALL)
			fc->catchall = false;
		else if ((code & 0xffff) < MC_FC4_SLOTS)
			memset(&fc->e4[code & 0xffff], 0, sizeof(fc->e4[0]));
		else
			memset(&fc->e6[(code & 0xffff) - MC_FC4_SLOTS], 0, sizeof(fc->e6[0]));
	}
}

/* ---------------------------------------------------------------- rx */

static inline uint64_t *
link_of(struct rte_mbuf *m, int off)
{
	return RTE_MBUF_DYNFIELD(m, off, uint64_t *);
}

/*
 * mbufs that arrive with a link still set held a packet of ours that the NF
 * freed without sending (sent packets have their link cleared): publish
 * those links, so the writer records the drops. Called rarely (only when
 * the NF drops), before the burst's own entry.
 */
static __rte_noinline void
record_freed(struct mc_rxq *q, struct rte_mbuf **pkts, uint16_t n, uint16_t nf,
	     uint64_t tsc)
{
	struct mc_ring *r = &q->ring;
	const int off = mc.link_off;
	uint64_t at;

	if (unlikely(!ring_room(r, 2 + (uint64_t)nf))) {
		count_lost(&r->lost_records, 1);
		return;
	}
	at = r->head + 2;
	for (uint16_t i = 0; i < n; i++) {
		const uint64_t l = *link_of(pkts[i], off);

		if (l != 0)
			r->slots[at++ & r->mask] = l;
	}
	r->slots[r->head & r->mask] = mc_hdr(MC_E_FREED, 0, nf, 0);
	r->slots[(r->head + 1) & r->mask] = tsc;
	ring_commit(r, 2 + (uint64_t)nf);
}

static void
record_rx(struct mc_rxq *q, struct rte_mbuf **pkts, uint16_t n)
{
	struct mc_ring *r = &q->ring;
	const uint64_t tsc = rte_rdtsc();
	const int off = mc.link_off;
	const bool hw = q->hwts_off >= 0;
	uint64_t *const slots = r->slots;
	uint32_t *const codes = q->codes;
	const uint64_t mask = r->mask;
	uint64_t base, at;
	unsigned aux = 0, copies = 0;

	ring_hold(r, tsc);
	{
		uint16_t nf = 0;

		for (uint16_t i = 0; i < n; i++)
			nf += *link_of(pkts[i], off) != 0;
		if (unlikely(nf != 0))
			record_freed(q, pkts, n, nf, tsc);
		if (unlikely(q->pool == NULL))
			q->pool = pkts[0]->pool;
	}
	/* room for the worst case: every packet copied */
	if (unlikely(!ring_room(r, 2 + (uint64_t)n * (1 + hw + MC_COPY_SLOTS)))) {
		/* the rx record is lost: its packets keep their node, not a seq */
		for (uint16_t i = 0; i < n; i++)
			*link_of(pkts[i], off) = q->link_base | MC_SEQ_UNKNOWN;
		count_lost(&r->lost_records, 1);
		count_lost(&r->lost_packets, n);
		ring_hold(r, 0);
		return;
	}
	base = r->head;
	ring_prefetch(r);
	at = base + 2 + (uint64_t)n * (1 + hw);
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *const m = pkts[i];
		const uint32_t code = flow_code(&q->fc, rte_pktmbuf_mtod(m, const uint8_t *),
						m->data_len);

		codes[i] = code;
		if (unlikely(code >> 16 != MC_FK_HIT)) {
			copy_pkt(m, slots, mask, at);
			at += MC_COPY_SLOTS;
			copies++;
		}
		*link_of(m, off) = q->link_base | (q->seq + i);
		if (hw)
			slots[(base + 2 + (uint64_t)n + i) & mask] =
				(m->ol_flags & q->hwts_flag) ?
				*RTE_MBUF_DYNFIELD(m, q->hwts_off, uint64_t *) : 0;
	}
	mc_wire_ids(pkts, n, codes, slots, mask, base + 2);
	if (q->qd_every != 0 && --q->qd_left == 0) {
		const int c = (int)q->real_count(q->real_data[q->queue]);

		q->qd_left = q->qd_every;
		if (c >= 0)
			aux = (c < 65534 ? (unsigned)c : 65534) + 1;
	}
	slots[base & mask] = mc_hdr(MC_E_RX, hw ? MC_EF_HWTS : 0, n, aux) | (uint64_t)copies << 32;
	slots[(base + 1) & mask] = tsc;
	ring_commit(r, at - base);
	ring_hold(r, 0);
	q->seq += n;
}

#ifdef MC_REFERENCE
/*
 * The reference recorder (libmscope-reference.so, for tools/bench-collector
 * only): what every per-packet recorder does on the NF core and nothing
 * more: one TSC read and one entry per burst, one 8-byte slot per packet,
 * the same rings and writer. It reads no packet byte (the "wire ID" is the
 * length) and no link: rx packets go to the catch-all flow, tx packets to
 * consecutive seqs of the first node (so that the writer does the work it
 * does for linked packets). Its throughput bounds what a collector that
 * identifies packets can reach.
 */
static uint16_t tx_unrecorded(struct mc_txq *q, void *rq, struct rte_mbuf **pkts, uint16_t n);

static inline void
reference_commit(struct mc_ring *r, unsigned kind, uint16_t n, unsigned aux, unsigned copies,
		 uint64_t tsc)
{
	r->slots[r->head & r->mask] = mc_hdr(kind, 0, n, aux) | (uint64_t)copies << 32;
	r->slots[(r->head + 1) & r->mask] = tsc;
	ring_commit(r, 2 + (uint64_t)n + copies * MC_COPY_SLOTS);
	ring_hold(r, 0);
}

static void
reference_rx(struct mc_rxq *q, struct rte_mbuf **pkts, uint16_t n)
{
	struct mc_ring *r = &q->ring;
	const uint64_t tsc = rte_rdtsc();
	unsigned copies = 0;

	ring_hold(r, tsc);
	if (unlikely(!ring_room(r, 2 + (uint64_t)n + MC_COPY_SLOTS))) {
		count_lost(&r->lost_records, 1);
		count_lost(&r->lost_packets, n);
		ring_hold(r, 0);
		return;
	}
	ring_prefetch(r);
	for (uint16_t i = 0; i < n; i++)
		r->slots[(r->head + 2 + i) & r->mask] =
			pkts[i]->pkt_len | (uint64_t)MC_FC_CATCHALL << 32;
	if (unlikely(!q->fc.catchall)) {
		/* the catch-all flow, defined once as the collector does */
		q->fc.catchall = true;
		r->slots[(r->head + 2) & r->mask] |= (uint64_t)MC_FK_DEF << 48;
		copy_pkt(pkts[0], r->slots, r->mask, r->head + 2 + n);
		copies = 1;
	}
	reference_commit(r, MC_E_RX, n, 0, copies, tsc);
	q->seq += n;
}

static uint16_t
reference_tx(struct mc_txq *q, void *rq, struct rte_mbuf **pkts, uint16_t n)
{
	struct mc_ring *r = &q->ring;
	const uint64_t tsc = rte_rdtsc();
	uint16_t acc;

	ring_hold(r, tsc);
	if (unlikely(!ring_room(r, 2 + (uint64_t)n))) {
		acc = tx_unrecorded(q, rq, pkts, n);
		ring_hold(r, 0);
		return acc;
	}
	ring_prefetch(r);
	/* written before the driver owns the mbufs */
	for (uint16_t i = 0; i < n; i++)
		r->slots[(r->head + 2 + i) & r->mask] =
			pkts[i]->pkt_len |
			(uint64_t)(1u << MC_LC_ORIGIN_SHIFT | ((q->ref_seq + i) & (MC_LC_UNKNOWN - 1)))
				<< 32;
	q->ref_seq += n;
	acc = q->real_burst(rq, pkts, n);
	reference_commit(r, MC_E_TX, n, acc, 0, tsc);
	return acc;
}
#endif

uint16_t
mc_rx_burst(void *qd, struct rte_mbuf **pkts, uint16_t nmax)
{
	struct mc_rxq *q = qd;
	const uint16_t n = q->real_burst(q->real_data[q->queue], pkts, nmax);

	if (n == 0)
		return 0;
#ifdef MC_REFERENCE
	reference_rx(q, pkts, n);
	return n;
#endif
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
			*link_of(pkts[done + i], off) =
				links[i] == 0 || (links[i] & MC_SEQ_MASK) == MC_SEQ_UNKNOWN ?
					links[i] : links[i] | MC_SEQ_REFUSED;
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

	r->slots[r->head & r->mask] = mc_hdr(MC_E_REFUSED, 0, 0, (unsigned)q->run_origin);
	r->slots[(r->head + 1) & r->mask] = q->run_tsc;
	r->slots[(r->head + 2) & r->mask] = q->run_n;
	ring_commit(r, MC_RUN_SLOTS);
	q->run_n = 0;
}

/* The code of a packet about to be sent: its link, or its flow if unlinked. */
static inline uint32_t
tx_code(struct mc_txq *q, const struct rte_mbuf *m, uint64_t link)
{
	const uint64_t o = link >> 48;
	uint64_t seq;

	if (likely(o != 0 && o <= MC_MAX_NODES)) {
		seq = link & MC_SEQ_MASK;
		return (uint32_t)o << MC_LC_ORIGIN_SHIFT |
		       (seq == MC_SEQ_UNKNOWN ? MC_LC_UNKNOWN :
						(uint32_t)seq & (MC_LC_UNKNOWN - 1));
	}
	return flow_code(&q->fc, rte_pktmbuf_mtod(m, const uint8_t *), m->data_len);
}

uint16_t
mc_tx_burst(void *qd, struct rte_mbuf **pkts, uint16_t n)
{
	struct mc_txq *q = qd;
	struct mc_ring *r = &q->ring;
	void *const rq = q->real_data[q->queue];
	const int off = mc.link_off;
	uint64_t *const slots = r->slots;
	uint64_t *const links = q->links;
	uint32_t *const codes = q->codes;
	const uint64_t mask = r->mask;
	uint64_t tsc, base, at;
	unsigned copies = 0;
	uint16_t acc;

	if (unlikely(n == 0))
		return q->real_burst(rq, pkts, 0);
#ifdef MC_REFERENCE
	return reference_tx(q, rq, pkts, n);
#endif
	tsc = rte_rdtsc();
	ring_hold(r, q->run_n != 0 ? q->run_tsc : tsc);
	if (unlikely(!ring_room(r, MC_RUN_SLOTS + 2 + (uint64_t)n * (1 + MC_COPY_SLOTS)))) {
		acc = tx_unrecorded(q, rq, pkts, n);
		ring_hold(r, q->run_n != 0 ? q->run_tsc : 0);
		return acc;
	}
	/* room for a pending run's entry, written before this one if needed */
	base = r->head + (q->run_n != 0 ? MC_RUN_SLOTS : 0);
	at = base + 2 + n;
	ring_prefetch(r);
	/* everything is read before the driver owns the mbufs */
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *const m = pkts[i];
		uint64_t *const lp = link_of(m, off);
		const uint32_t code = tx_code(q, m, *lp);

		links[i] = *lp;
		*lp = 0;
		codes[i] = code;
		if (unlikely(code >> MC_LC_ORIGIN_SHIFT == 0 && code >> 16 != MC_FK_HIT)) {
			copy_pkt(m, slots, mask, at);
			at += MC_COPY_SLOTS;
			copies++;
		}
	}
	mc_wire_ids(pkts, n, codes, slots, mask, base + 2);
	acc = q->real_burst(rq, pkts, n);
	/*
	 * refused packets stay the NF's: give them their link back for a retry,
	 * marked refused (if the NF frees them instead, that is the reason)
	 */
	for (uint16_t i = acc; i < n; i++) {
		const uint64_t l = links[i];

		*link_of(pkts[i], off) = l == 0 || (l & MC_SEQ_MASK) == MC_SEQ_UNKNOWN ?
						 l : l | MC_SEQ_REFUSED;
	}
	if (unlikely(acc == 0)) {
		/*
		 * Under back-pressure an NF may retry millions of times a second:
		 * consecutive fully refused bursts of one origin become one record
		 * (at most run_span long), so the writer keeps up.
		 */
		const uint64_t origin = links[0] >> 48;
		bool same = true;

		for (uint16_t i = 1; i < n; i++)
			same &= (links[i] >> 48) == origin;
		if (same) {
			/* this entry is not published: nor are the flows it defined */
			if (copies != 0)
				fc_forget(&q->fc, codes, n);
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
			/* the run is published later: hold the writer at its start */
			ring_hold(r, tsc);
			return 0;
		}
	}
	if (q->run_n != 0)
		put_run(q);
	slots[base & mask] = mc_hdr(MC_E_TX, 0, n, acc) | (uint64_t)copies << 32;
	slots[(base + 1) & mask] = tsc;
	ring_commit(r, at - r->head);
	ring_hold(r, 0);
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
