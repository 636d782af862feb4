/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The writer thread: drains every queue's ring, merging them in TSC order so
 * each file's records stay in order even though a file gets rx records from
 * one lcore and tx records from others, splits tx bursts by the rx node the
 * packets came from, and encodes everything with the trace writer. It
 * flushes a frame at least every 100 ms (a killed NF leaves a file readable
 * to its last frame) and writes the data path's losses into the traces.
 *
 * Merge horizon: a producer stores the TSC of the entry it is building in
 * its ring's `hold` before it builds it (and of a run of refused bursts it
 * has not published yet), and clears it after publishing. The writer merges
 * only entries older than every hold and than now - MERGE_LAG (which covers
 * the few instructions between a producer's TSC read and its hold store),
 * so records reach their files in TSC order without being moved. Only a
 * hold older than MAX_HOLD (a producer preempted mid-burst for longer, a
 * run the NF never follows up) stops holding the others back: such an entry
 * is then written with its file's latest TSC (counted, reported at exit).
 * Records the writer makes itself (clock, loss, imissed drops) are stamped
 * at the horizon, never later than records still to come.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>

#include "collector_priv.h"

#define MERGE_LAG_US 50
#define MAX_HOLD_US 4000     /* longest a stalled producer holds the others */
#define CROWDED_HOLD_US 1000 /* ... when some ring is half full */
#define FLUSH_MS 100
#define STATS_MS 100
#define CLOCK_MS 1000
#define SLEEP_US 200       /* between rounds while rings fill up */
#define IDLE_SLEEP_US 1000 /* between rounds at low rates */
#define MAX_SRC (MC_MAX_NODES + RTE_MAX_ETHPORTS * 64)
#define MAX_SOURCES (RTE_MAX_ETHPORTS * 64)

struct src {
	struct mc_ring *r;
	struct mc_rxq *rxq;
	struct mc_txq *txq;
	uint64_t cons, tail;
};

/* writer thread state (only this thread touches it) */
static struct src srcs[MAX_SRC];
static unsigned nsrc, known_rx, known_tx;
static struct mc_node *sources[MAX_SOURCES];
static unsigned nsources;
static unsigned nb_nodes_seen;

/* scratch for one burst */
static uint32_t s_wire[65536], s_flow[65536];
static uint64_t s_u64[65536];
static uint32_t s_grp[65536];
static uint32_t g_stamp[MC_MAX_NODES + 1], g_id[MC_MAX_NODES + 1], g_burst;
static uint32_t g_origin[MC_MAX_NODES + 1], g_off[MC_MAX_NODES + 1], g_acc[MC_MAX_NODES + 1],
	g_start[MC_MAX_NODES + 1], g_fill[MC_MAX_NODES + 1];
static uint32_t zero_wire[MSCOPE_MAX_BURST];
/* a clock pair taken by the writer, written to every file in TSC order */
static struct mscope_clock ck_pend;
static bool ck_pending;
static uint64_t horizon_tsc; /* everything at or before it has been merged */

static void node_clock(struct mc_node *n, uint64_t unused);

/* ---------------------------------------------------------------- writing */

uint64_t
mc_stamp(struct mc_node *n, uint64_t tsc)
{
	if (tsc < n->last_tsc)
		tsc = n->last_tsc;
	n->last_tsc = tsc;
	return tsc;
}

#define stamp mc_stamp

static uint64_t
clamp(struct mc_node *n, uint64_t tsc)
{
	if (tsc < n->last_tsc) {
		n->clamped++;
		tsc = n->last_tsc;
	}
	n->last_tsc = tsc;
	return tsc;
}

/* Write pending loss (and count the unwritable as lost). */
static void
put_loss(struct mc_node *n, uint64_t now)
{
	struct mscope_loss l;

	if (n->failed || (n->pend_loss_rec == 0 && n->pend_loss_pkt == 0))
		return;
	l.tsc = stamp(n, now);
	l.records = n->pend_loss_rec;
	l.packets = n->pend_loss_pkt;
	n->pend_loss_rec = n->pend_loss_pkt = 0;
	if (!mc_seg_wrote(n, mscope_writer_loss(n->w, &l), 0, 0, 0)) {
		/* fail() counted the frame; this record's counts are still lost */
		n->pend_loss_rec += l.records;
		n->pend_loss_pkt += l.packets;
	}
}

/* A copied packet: its bytes (unwrapped from the ring) and lengths. */
struct pkt {
	uint64_t w[MC_DATA_BYTES / 8];
	uint32_t seg, len;
};

static inline void
get_pkt(const uint64_t *slots, uint64_t mask, uint64_t at, struct pkt *p)
{
	const uint64_t l = slots[at & mask];

	p->seg = (uint32_t)l & 0xffff;
	p->len = (uint32_t)(l >> 32);
	for (unsigned i = 0; i < MC_DATA_BYTES / 8; i++)
		p->w[i] = slots[(at + 1 + i) & mask];
}

/* Flow ref of a key in node n's table; defines it in the file first if new. */
static uint32_t
flow_of_key(struct mc_node *n, const union mc_fkey *k)
{
	bool is_new;
	const uint32_t ref = mc_flow_ref_key(n->flows, k, &is_new);

	if (is_new && !n->failed)
		mc_seg_wrote(n, mscope_writer_flow(n->w, ref, &k->k), 0, 0, 0);
	return ref;
}

/* Flow ref of a packet in node n's table (its key in *k); defines it first if new. */
static uint32_t
flow_of(struct mc_node *n, const struct pkt *p, union mc_fkey *k)
{
	mc_flow_key((const uint8_t *)p->w, p->seg < MC_DATA_BYTES ? p->seg : MC_DATA_BYTES, k);
	return flow_of_key(n, k);
}

static uint64_t
hw_to_tsc(const struct mc_rxq *q, uint64_t ts)
{
	if (ts == 0)
		return 0;
	return q->hw_tsc0 + (uint64_t)((double)(int64_t)(ts - q->hw_clk0) * q->hw_ratio);
}

/*
 * Packets the NF freed without sending, noticed when their mbufs came back
 * in an rx burst (MC_E_FREED): a drop record with the rx seq in the file of
 * each packet's rx queue, at the TSC of that burst.
 */
static uint32_t f_wire[65536], f_flow[65536];
static uint64_t f_seq[65536];

static void
put_freed(struct mc_node *nd, uint64_t tsc, uint8_t reason, bool flows, uint32_t n)
{
	if (nd->failed) {
		nd->pend_loss_rec++;
		nd->pend_loss_pkt += n;
		return;
	}
	/* tsc 0: found when the ports stopped; no later than the node's last record */
	tsc = tsc == 0 ? stamp(nd, nd->last_tsc) : clamp(nd, tsc);
	for (uint32_t i = 0; i < n; i += MSCOPE_MAX_BURST) {
		struct mscope_drop d = {
			.tsc = tsc,
			.reason = reason,
			.n = n - i < MSCOPE_MAX_BURST ? n - i : MSCOPE_MAX_BURST,
			.wire_id = f_wire + i,
			.flow = flows ? f_flow + i : NULL,
			.rx_seq = f_seq + i,
		};

		if (!mc_seg_wrote(nd, mscope_writer_drop(nd->w, &d), tsc, 1, d.n))
			return;
	}
	nd->written_rec++;
}

/* Drop records for n links of packets the NF freed. */
static void
freed_links(const uint64_t *links, uint32_t n, uint64_t tsc)
{
	const unsigned nn = nb_nodes_seen;
	struct mc_node *cur = NULL;
	uint8_t cur_reason = 0;
	bool cur_flows = false;
	uint32_t k = 0;

	/* one record per run of packets of one origin, reason and flow knowledge */
	for (uint32_t i = 0; i <= n; i++) {
		struct mc_node *nd = NULL;
		const struct mc_recent *r = NULL;
		uint8_t reason = 0;
		uint64_t seq = 0;
		bool known = false;

		if (i < n) {
			const uint64_t link = links[i], o = link >> 48;
			bool refused;

			seq = mc_link_seq(link, &refused);
			/* not ours, or its rx record was lost: nothing to point at */
			if (o == 0 || o > nn || seq == MC_SEQ_UNKNOWN || seq >= mc.nodes[o - 1]->rx_count)
				continue;
			nd = mc.nodes[o - 1];
			reason = refused ? MSCOPE_DROP_TX_REFUSED : MSCOPE_DROP_NF;
			/* the packet's identity if it is still among the node's recent ones */
			r = nd->recent ? &nd->recent[seq & (MC_RECENT - 1)] : NULL;
			if (r != NULL && r->seq_plus1 != seq + 1)
				r = NULL;
			/* its flow ref only if defined in the current file */
			known = r != NULL && r->gen == nd->gen;
		}
		if (k != 0 && (i == n || nd != cur || reason != cur_reason || known != cur_flows)) {
			put_freed(cur, tsc, cur_reason, cur_flows, k);
			k = 0;
		}
		if (i == n)
			break;
		cur = nd;
		cur_reason = reason;
		cur_flows = known;
		f_wire[k] = r ? r->wire : 0;
		f_flow[k] = known ? r->flow : 0;
		f_seq[k++] = seq;
	}
}

static uint64_t s_links[65536];

static uint64_t
do_freed(struct src *s)
{
	const uint64_t *slots = s->r->slots, mask = s->r->mask, c = s->cons;
	const uint32_t n = (uint32_t)(slots[c & mask] >> 16) & 0xffff;

	for (uint32_t i = 0; i < n; i++)
		s_links[i] = slots[(c + 2 + i) & mask];
	/* aux 1: found in a pool cache when the ports stopped (collector.c) */
	freed_links(s_links, n, (slots[c & mask] >> 48) == 1 ? 0 : slots[(c + 1) & mask]);
	return 2 + (uint64_t)n;
}

/* The catch-all flow (family 0) of node nd, for a packet with no usable code. */
static uint32_t
nonip_flow(struct mc_node *nd)
{
	union mc_fkey k;

	memset(&k, 0, sizeof(k));
	return flow_of_key(nd, &k);
}

/*
 * Flow ref of a packet from its flow code (rx, or unlinked tx): a cache hit
 * is the ref the writer learnt for that index; a new flow's copy is parsed
 * (and its ref remembered for the index); an uncacheable one is parsed.
 */
static uint32_t
flow_of_code(struct mc_node *nd, uint32_t code, const uint64_t *slots, uint64_t mask,
	     uint64_t *copy, uint64_t copy_end)
{
	const uint32_t kind = code >> 16 & 3, idx = code & 0xffff;
	uint32_t *mirror = nd->mirror;
	union mc_fkey k;
	struct pkt p;
	uint32_t ref;

	if (kind == MC_FK_HIT && idx <= MC_FC_SLOTS) {
		if (mirror[idx] != 0)
			return mirror[idx] - 1;
		/* a new file since the index was learnt: define its flow again */
		if (nd->mkey_ok[idx]) {
			ref = flow_of_key(nd, &nd->mkeys[idx]);
			mirror[idx] = ref + 1;
			return ref;
		}
	}
	if (kind == MC_FK_HIT || *copy >= copy_end)
		return nonip_flow(nd); /* never happens with our data path */
	get_pkt(slots, mask, *copy, &p);
	*copy += MC_COPY_SLOTS;
	ref = flow_of(nd, &p, &k);
	if (kind == MC_FK_DEF && idx <= MC_FC_SLOTS) {
		mirror[idx] = ref + 1;
		nd->mkeys[idx] = k;
		nd->mkey_ok[idx] = 1;
	}
	return ref;
}

static uint64_t
do_rx(struct src *s)
{
	struct mc_rxq *q = s->rxq;
	struct mc_node *nd = q->node;
	const uint64_t *slots = s->r->slots, mask = s->r->mask, c = s->cons;
	const uint64_t hdr = slots[c & mask];
	const uint32_t n = (uint32_t)(hdr >> 16) & 0xffff;
	const uint32_t copies = (uint32_t)(hdr >> 32) & 0xffff;
	const bool hw = (hdr >> 8) & MC_EF_HWTS;
	const unsigned aux = (unsigned)(hdr >> 48);
	const uint64_t copy0 = c + 2 + (uint64_t)n * (1 + hw);
	const uint64_t copy_end = copy0 + (uint64_t)copies * MC_COPY_SLOTS;
	uint64_t tsc = slots[(c + 1) & mask], copy = copy0;

	if ((hdr & 0xff) == MC_E_FREED)
		return do_freed(s);

	for (uint32_t i = 0; i < n; i++) {
		const uint64_t ps = slots[(c + 2 + i) & mask];
		const uint64_t seq = nd->rx_count + i;
		struct mc_recent *r = &nd->recent[seq & (MC_RECENT - 1)];

		s_wire[i] = (uint32_t)ps;
		s_flow[i] = flow_of_code(nd, (uint32_t)(ps >> 32), slots, mask, &copy, copy_end);
		r->seq_plus1 = seq + 1;
		r->wire = s_wire[i];
		r->flow = s_flow[i];
		r->gen = nd->gen;
		if (hw)
			s_u64[i] = hw_to_tsc(q, slots[(c + 2 + (uint64_t)n + i) & mask]);
	}
	nd->rx_count += n;
	if (nd->failed) {
		nd->pend_loss_rec++;
		nd->pend_loss_pkt += n;
	} else {
		tsc = clamp(nd, tsc);
		for (uint32_t i = 0; i < n; i += MSCOPE_MAX_BURST) {
			struct mscope_rx_burst rx = {
				.tsc = tsc,
				.n = n - i < MSCOPE_MAX_BURST ? n - i : MSCOPE_MAX_BURST,
				.qdepth = aux && i + MSCOPE_MAX_BURST >= n ? (int32_t)aux - 1 :
									     MSCOPE_QDEPTH_UNKNOWN,
				.wire_id = s_wire + i,
				.flow = s_flow + i,
				.hw_ts = hw ? s_u64 + i : NULL,
			};

			if (!mc_seg_wrote(nd, mscope_writer_rx(nd->w, &rx), tsc, 1, rx.n))
				break;
		}
		nd->written_rec++;
	}
	return copy_end - c;
}

static struct mc_node *
source_node(struct mc_txq *q)
{
	struct mscope_trace_error err;

	if (q->src != NULL || q->src_failed)
		return q->src;
	memset(&err, 0, sizeof(err));
	if (nsources < MAX_SOURCES)
		q->src = mc_node_open(MSCOPE_ROLE_SOURCE, q->port, q->queue, q->fmirror, q->fkeys,
				      q->fkey_ok, &err);
	else
		snprintf(err.text, sizeof(err.text), "too many source nodes");
	if (q->src == NULL) {
		MC_LOG("cannot create the source trace of port %u queue %u: %s%s%s", q->port,
		       q->queue, MC_ESC(err.file), err.file[0] ? ": " : "", MC_ESC(err.text));
		q->src_failed = true;
		return NULL;
	}
	q->src->index = (uint16_t)(MC_MAX_NODES + nsources);
	sources[nsources++] = q->src;
	return q->src;
}

/* Write one group of a tx burst (split in chunks the format accepts). */
static void
put_tx(struct mc_node *nd, uint64_t tsc, const struct mc_txq *q, uint32_t offered,
       uint32_t acc, const uint32_t *wire, const uint64_t *seq, const uint32_t *flow)
{
	if (nd == NULL)
		return;
	if (nd->failed) {
		nd->pend_loss_rec++;
		nd->pend_loss_pkt += acc;
		return;
	}
	tsc = clamp(nd, tsc);
	for (uint32_t i = 0;; i += MSCOPE_MAX_BURST) {
		const uint32_t k = acc - i < MSCOPE_MAX_BURST ? acc - i : MSCOPE_MAX_BURST;
		const bool last = i + k >= acc;
		struct mscope_tx_burst tx = {
			.tsc = tsc,
			.port = q->port,
			.queue = q->queue,
			.accepted = k,
			.offered = last ? k + (offered - acc) : k,
			.wire_id = wire ? wire + i : NULL,
			.rx_seq = seq ? seq + i : NULL,
			.flow = flow ? flow + i : NULL,
		};

		if (!mc_seg_wrote(nd, mscope_writer_tx(nd->w, &tx), tsc, 1, k))
			return;
		if (last)
			break;
	}
	nd->written_rec++;
}

/* The rx seq a link code points at (its low bits completed), or MSCOPE_NO_LINK. */
static uint64_t
link_seq(const struct mc_node *nd, uint32_t code)
{
	const uint64_t span = MC_LC_UNKNOWN, count = nd->rx_count;
	uint64_t back;

	if ((code & MC_LC_UNKNOWN) || count == 0)
		return MSCOPE_NO_LINK;
	/* the latest seq received so far with these low bits */
	back = (count - 1 - (code & (span - 1))) & (span - 1);
	return back <= count - 1 ? count - 1 - back : MSCOPE_NO_LINK;
}

static uint64_t
do_tx(struct src *s)
{
	struct mc_txq *q = s->txq;
	const uint64_t *slots = s->r->slots, mask = s->r->mask, c = s->cons;
	const uint64_t hdr = slots[c & mask];
	const uint32_t n = (uint32_t)(hdr >> 16) & 0xffff;
	const uint32_t copies = (uint32_t)(hdr >> 32) & 0xffff;
	const uint32_t acc = (uint32_t)(hdr >> 48) <= n ? (uint32_t)(hdr >> 48) : n;
	const uint64_t tsc = slots[(c + 1) & mask];
	const uint64_t copy_end = c + 2 + n + (uint64_t)copies * MC_COPY_SLOTS;
	const unsigned nn = nb_nodes_seen;
	uint64_t copy = c + 2 + n;
	uint32_t ng = 0, at = 0;

	if ((hdr & 0xff) == MC_E_REFUSED) {
		const uint64_t o = hdr >> 48;

		put_tx(o == 0 || o > nn ? source_node(q) : mc.nodes[o - 1], tsc, q,
		       (uint32_t)slots[(c + 2) & mask], 0, NULL, NULL, NULL);
		return MC_RUN_SLOTS;
	}
	/* group the packets by origin: 0 = unlinked, o = rx node o - 1 */
	g_burst++;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t o = (uint32_t)(slots[(c + 2 + i) & mask] >> 32) >> MC_LC_ORIGIN_SHIFT;
		uint32_t g;

		if (o > nn)
			o = 0; /* a node the writer does not know yet: unlinked */
		if (g_stamp[o] != g_burst) {
			g_stamp[o] = g_burst;
			g_id[o] = ng;
			g_origin[ng] = o;
			g_off[ng] = g_acc[ng] = g_fill[ng] = 0;
			ng++;
		}
		g = g_id[o];
		g_off[g]++;
		if (i < acc)
			g_acc[g]++;
		s_grp[i] = g;
	}
	for (uint32_t g = 0; g < ng; g++) {
		g_start[g] = at;
		at += g_acc[g];
	}
	for (uint32_t i = 0; i < n; i++) {
		const uint64_t ps = slots[(c + 2 + i) & mask];
		const uint32_t code = (uint32_t)(ps >> 32), g = s_grp[i];
		const uint32_t o = g_origin[g];
		uint32_t k, flow = 0;

		if (o == 0) {
			/* sourced here: its flow goes to the source node's table */
			struct mc_node *sn = source_node(q);

			if (code >> MC_LC_ORIGIN_SHIFT == 0 && sn != NULL)
				flow = flow_of_code(sn, code, slots, mask, &copy, copy_end);
			else if (sn != NULL)
				flow = nonip_flow(sn); /* linked to a node not known yet */
		}
		if (i >= acc)
			continue; /* refused: counted, not listed */
		k = g_start[g] + g_fill[g]++;
		s_wire[k] = (uint32_t)ps;
		s_flow[k] = flow;
		s_u64[k] = o == 0 ? MSCOPE_NO_LINK : link_seq(mc.nodes[o - 1], code);
	}
	for (uint32_t g = 0; g < ng; g++) {
		const uint32_t o = g_origin[g], b = g_start[g];

		if (o == 0)
			put_tx(source_node(q), tsc, q, g_off[g], g_acc[g], s_wire + b, s_u64 + b,
			       s_flow + b);
		else
			put_tx(mc.nodes[o - 1], tsc, q, g_off[g], g_acc[g], s_wire + b, s_u64 + b,
			       NULL);
	}
	return copy_end - c;
}

/* ---------------------------------------------------------------- rounds */

/* Pick up queues the control path added since the last round. */
static void
snapshot(void)
{
	pthread_mutex_lock(&mc.lock);
	for (; known_rx < mc.nb_rxqs && nsrc < MAX_SRC; known_rx++)
		srcs[nsrc++] = (struct src){ .r = &mc.rxqs[known_rx]->ring, .rxq = mc.rxqs[known_rx] };
	for (; known_tx < mc.nb_txqs && nsrc < MAX_SRC; known_tx++)
		srcs[nsrc++] = (struct src){ .r = &mc.txqs[known_tx]->ring, .txq = mc.txqs[known_tx] };
	nb_nodes_seen = mc.nb_nodes;
	pthread_mutex_unlock(&mc.lock);
}

/*
 * Write the entries every producer is done with (all if `all`), oldest
 * first across all rings, and the pending clock pair in its place.
 * Sets horizon_tsc. @return whether some ring was more than 1/16 full
 * (then come back soon).
 */
static bool
drain(uint64_t now, bool all)
{
	const uint64_t us = mc.tsc_hz / 1000000;
	uint64_t horizon = now - MERGE_LAG_US * us, oldest = UINT64_MAX, floor;
	bool busy = false, crowded = false;

	/* holds before tails: a hold gone means its entry is visible */
	for (unsigned i = 0; i < nsrc; i++) {
		const uint64_t h = __atomic_load_n(&srcs[i].r->hold, __ATOMIC_ACQUIRE);

		if (h != 0 && h < oldest)
			oldest = h;
	}
	for (unsigned i = 0; i < nsrc; i++) {
		srcs[i].cons = srcs[i].r->cons;
		srcs[i].tail = __atomic_load_n(&srcs[i].r->tail, __ATOMIC_ACQUIRE);
		busy |= (srcs[i].tail - srcs[i].cons) * 16 > srcs[i].r->mask;
		crowded |= (srcs[i].tail - srcs[i].cons) * 2 > srcs[i].r->mask;
	}
	if (oldest <= horizon)
		horizon = oldest - 1;
	/* a long stall must not fill the other rings: give up waiting for it */
	floor = now - (crowded ? CROWDED_HOLD_US : MAX_HOLD_US) * us;
	if (horizon < floor)
		horizon = floor;
	if (all)
		horizon = UINT64_MAX;
	for (;;) {
		struct src *best = NULL;
		uint64_t bt = 0;

		for (unsigned i = 0; i < nsrc; i++) {
			struct src *s = &srcs[i];
			uint64_t t;

			if (s->cons == s->tail)
				continue;
			t = s->r->slots[(s->cons + 1) & s->r->mask];
			if (t <= horizon && (best == NULL || t < bt)) {
				best = s;
				bt = t;
			}
		}
		if (ck_pending && (best == NULL ? ck_pend.tsc <= horizon : ck_pend.tsc < bt)) {
			mc_for_each_node(node_clock, 0);
			ck_pending = false;
		}
		if (best == NULL)
			break;
		best->cons += best->rxq ? do_rx(best) : do_tx(best);
		__atomic_store_n(&best->r->cons, best->cons, __ATOMIC_RELEASE);
	}
	horizon_tsc = horizon < now ? horizon : now;
	return busy;
}

static void
collect_losses(uint64_t now)
{
	for (unsigned i = 0; i < nsrc; i++) {
		struct src *s = &srcs[i];

		if (s->rxq != NULL) {
			struct mc_rxq *q = s->rxq;
			const uint64_t r = __atomic_load_n(&q->ring.lost_records, __ATOMIC_RELAXED);
			const uint64_t p = __atomic_load_n(&q->ring.lost_packets, __ATOMIC_RELAXED);

			q->node->pend_loss_rec += r - q->lost_rec_seen;
			q->node->pend_loss_pkt += p - q->lost_pkt_seen;
			q->lost_rec_seen = r;
			q->lost_pkt_seen = p;
			put_loss(q->node, now);
		} else {
			struct mc_txq *q = s->txq;
			const uint64_t t = __atomic_load_n(&q->lost_total, __ATOMIC_RELAXED);

			if (t == q->lost_seen)
				continue;
			q->lost_seen = t;
			for (unsigned o = 0; o <= MC_MAX_NODES; o++) {
				const uint64_t r = __atomic_load_n(&q->lost[o][0], __ATOMIC_RELAXED);
				const uint64_t p = __atomic_load_n(&q->lost[o][1], __ATOMIC_RELAXED);
				struct mc_node *nd;

				if (r == q->lost_seen_by[o][0] && p == q->lost_seen_by[o][1])
					continue;
				nd = o == 0 || o > nb_nodes_seen ? source_node(q) : mc.nodes[o - 1];
				if (nd == NULL)
					continue;
				nd->pend_loss_rec += r - q->lost_seen_by[o][0];
				nd->pend_loss_pkt += p - q->lost_seen_by[o][1];
				q->lost_seen_by[o][0] = r;
				q->lost_seen_by[o][1] = p;
				put_loss(nd, now);
			}
		}
	}
}

/* Packets the NIC dropped because the rx queue was full (port imissed). */
static void
poll_imissed(uint64_t now)
{
	pthread_mutex_lock(&mc.lock);
	for (unsigned p = 0; p < RTE_MAX_ETHPORTS; p++) {
		struct mc_port *mp = &mc.port[p];
		struct rte_eth_stats st;
		struct mc_node *nd;
		uint64_t d;

		if (!mp->started || mp->nb_rxq == 0 || mp->rxq[0] == NULL)
			continue;
		if (mc.api.stats_get((uint16_t)p, &st) != 0 || st.imissed <= mp->imissed_seen)
			continue;
		d = st.imissed - mp->imissed_seen;
		mp->imissed_seen = st.imissed;
		/* per-port counter: charged to queue 0 */
		nd = mp->rxq[0]->node;
		while (d > 0 && !nd->failed) {
			const uint32_t k = d < MSCOPE_MAX_BURST ? (uint32_t)d : MSCOPE_MAX_BURST;
			struct mscope_drop dr = {
				.tsc = stamp(nd, now),
				.reason = MSCOPE_DROP_QUEUE_FULL,
				.n = k,
				.wire_id = zero_wire, /* never dequeued: identity unknown */
			};

			d -= k;
			if (!mc_seg_wrote(nd, mscope_writer_drop(nd->w, &dr), dr.tsc, 1, k))
				break;
		}
		if (d > 0) { /* no file to write them to: counted */
			nd->pend_loss_rec++;
			nd->pend_loss_pkt += d;
		}
	}
	pthread_mutex_unlock(&mc.lock);
}

void
mc_for_each_node(void (*fn)(struct mc_node *, uint64_t), uint64_t arg)
{
	for (unsigned i = 0; i < nb_nodes_seen; i++)
		fn(mc.nodes[i], arg);
	for (unsigned i = 0; i < nsources; i++)
		fn(sources[i], arg);
}

static void
node_flush(struct mc_node *n, uint64_t unused)
{
	if (n->dirty && !n->failed && mc_seg_wrote(n, mscope_writer_flush(n->w), 0, 0, 0))
		n->dirty = false;
}

static void
node_clock(struct mc_node *n, uint64_t unused)
{
	struct mscope_clock ck = ck_pend;

	if (n->failed)
		return;
	ck.tsc = stamp(n, ck.tsc);
	mc_seg_wrote(n, mscope_writer_clock(n->w, &ck), 0, 0, 0);
}

static uint64_t total_clamped, total_written;

static void
node_close(struct mc_node *n, uint64_t unused)
{
	total_clamped += n->clamped;
	total_written += n->written_rec;
	put_loss(n, horizon_tsc);
	mc_seg_close(n, horizon_tsc);
}

static void *
writer_main(void *arg)
{
	const uint64_t hz = mc.tsc_hz;
	uint64_t last_flush, last_stats, last_clock;
	const struct timespec nap = { 0, SLEEP_US * 1000 }, idle = { 0, IDLE_SLEEP_US * 1000 };
	bool busy;

	last_flush = last_stats = last_clock = rte_rdtsc();
	for (;;) {
		const int stop = __atomic_load_n(&mc.stop, __ATOMIC_ACQUIRE);
		const int req = __atomic_load_n(&mc.flush_req, __ATOMIC_ACQUIRE);
		const bool now_all = stop || req != mc.flush_ack;
		const uint64_t now = rte_rdtsc();

		snapshot();
		if (!ck_pending && now - last_clock >= hz / 1000 * CLOCK_MS) {
			/* written by drain() where it belongs among the entries */
			mc_clock_pair(&ck_pend.tsc, &ck_pend.realtime_ns);
			ck_pending = true;
			last_clock = now;
		}
		busy = drain(now, now_all);
		collect_losses(horizon_tsc);
		if (!stop && now - last_stats >= hz / 1000 * STATS_MS) {
			poll_imissed(horizon_tsc);
			last_stats = now;
		}
		if (now_all || now - last_flush >= hz / 1000 * FLUSH_MS) {
			mc_for_each_node(node_flush, 0);
			last_flush = now;
			/* rotation, deletion, keep requests: files change only by frames
			   (and not at exit: no nearly empty last segment) */
			if (!stop)
				mc_seg_round(now, horizon_tsc);
		}
		if (req != mc.flush_ack)
			__atomic_store_n(&mc.flush_ack, req, __ATOMIC_RELEASE);
		if (stop)
			break;
		nanosleep(busy ? &nap : &idle, NULL);
	}
	/* runs of refused bursts still open in the data path */
	for (unsigned i = 0; i < nsrc; i++) {
		struct mc_txq *q = srcs[i].txq;
		const uint64_t n = q ? __atomic_load_n(&q->run_n, __ATOMIC_ACQUIRE) : 0;
		const uint64_t o = n ? q->run_origin : 0;

		if (n != 0)
			put_tx(o == 0 || o > nb_nodes_seen ? source_node(q) : mc.nodes[o - 1],
			       q->run_tsc, q, (uint32_t)n, 0, NULL, NULL, NULL);
	}
	mc_for_each_node(node_close, 0);
	if (total_clamped != 0)
		MC_LOG("%" PRIu64 " of %" PRIu64 " records were merged too late for their time "
		       "(a producer stalled > %u us) and were written at their file's latest time",
		       total_clamped, total_written, MAX_HOLD_US);
	return NULL;
}

int
mc_writer_start(void)
{
	sigset_t all, old;
	int rc;

	/* the writer must never run the NF's signal handlers (they wait for it) */
	sigemptyset(&all);
	sigaddset(&all, SIGINT);
	sigaddset(&all, SIGTERM);
	sigaddset(&all, SIGHUP);
	sigaddset(&all, SIGUSR1);
	sigaddset(&all, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = mc.api.ctrl_thread_create(&mc.writer, "mscope-writer", NULL, writer_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return -1;
	mc.writer_running = true;
	return 0;
}

void
mc_writer_stop(void)
{
	if (!mc.writer_running)
		return;
	__atomic_store_n(&mc.stop, 1, __ATOMIC_RELEASE);
	pthread_join(mc.writer, NULL);
	mc.writer_running = false;
}

void
mc_writer_flush_wait(unsigned timeout_ms)
{
	const struct timespec ms = { 0, 1000000 };
	int target;

	if (!mc.writer_running || __atomic_load_n(&mc.stop, __ATOMIC_ACQUIRE))
		return;
	target = __atomic_add_fetch(&mc.flush_req, 1, __ATOMIC_ACQ_REL);
	for (unsigned i = 0; i < timeout_ms; i++) {
		if (__atomic_load_n(&mc.flush_ack, __ATOMIC_ACQUIRE) - target >= 0)
			return;
		nanosleep(&ms, NULL);
	}
}
