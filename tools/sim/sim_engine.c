/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The discrete-event engine: a traffic source and a DAG of NFs, each with a
 * finite FIFO input queue polled in bursts of up to 32 (a DPDK run-to-
 * completion loop), served at the NF's peak rate with a small jitter, and
 * forwarded along the NF's out-links.
 *
 * Events live in a binary heap ordered by (time, insertion number); each node
 * has at most one pending event (poll, or end of the burst being served), the
 * source one (its next emission). Every trace record is written at its own
 * event's time, so each file is in time order by construction.
 *
 * Time is kept in picoseconds (service times of fractional nanoseconds add up
 * without drift) and written as TSC = ns since MSCOPE_SIM_START_TSC.
 *
 * Reproducibility across runs that differ only in the faults injected:
 * traffic draws come from their own PRNG, a packet's service jitter is a hash
 * of its identity (stream, index) and the NF, NAT ports are a hash of the
 * flow, and routing is a hash of the flow: the same packet gets the same
 * treatment in both runs except where a fault changes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim_engine.h"
#include "sim_wq.h"

#define PS_PER_NS 1000ULL
#define FLUSH_PS (100ULL * 1000 * 1000 * 1000)  /* end trace frames every 100 ms */
#define NO_TIME UINT64_MAX

/* ------------------------------------------------------------------ flows */

/* Per-node state of the flows a node sees, in an open-addressing map keyed by
 * flow id (memory grows with the flows each node sees, not flows x nodes).
 * ref: file ref + 1 (0 = not yet defined in the node's file); route: out
 * position + 2, 1 = egress, 0 = not yet computed. */
struct fment {
	uint32_t flow1;          /* flow id + 1, 0 = empty slot */
	uint32_t ref;
	uint16_t route;
	uint16_t pad;
};

struct fmap {
	struct fment *t;
	uint32_t mask, n, shift;
};

static inline uint32_t
fmap_slot(const struct fmap *m, uint32_t f)
{
	return (uint32_t)(((uint64_t)f * 0x9e3779b97f4a7c15ULL) >> m->shift) & m->mask;
}

static int
fmap_grow(struct fmap *m)
{
	uint32_t size = m->t ? (m->mask + 1) * 2 : 1024, bits = 0;
	while ((1u << bits) < size)
		bits++;
	struct fment *t = calloc(size, sizeof(*t));
	if (t == NULL)
		return -1;
	struct fmap nm = { t, size - 1, 0, 64 - bits };
	for (uint32_t i = 0; m->t && i <= m->mask; i++) {
		if (!m->t[i].flow1)
			continue;
		uint32_t j = fmap_slot(&nm, m->t[i].flow1 - 1);
		while (t[j].flow1)
			j = (j + 1) & nm.mask;
		t[j] = m->t[i];
		nm.n++;
	}
	free(m->t);
	*m = nm;
	return 0;
}

/* The entry of flow f, added (zeroed) if new; NULL when out of memory. */
static inline struct fment *
fmap_get(struct fmap *m, uint32_t f)
{
	if (m->t) {
		uint32_t i = fmap_slot(m, f);
		for (;;) {
			struct fment *x = &m->t[i];
			if (x->flow1 == f + 1)
				return x;
			if (!x->flow1)
				break;
			i = (i + 1) & m->mask;
		}
	}
	if ((!m->t || (m->n + 1) * 4 > (m->mask + 1) * 3) && fmap_grow(m) < 0)
		return NULL;
	uint32_t i = fmap_slot(m, f);
	while (m->t[i].flow1)
		i = (i + 1) & m->mask;
	m->t[i].flow1 = f + 1;
	m->n++;
	return &m->t[i];
}

/* Start loading flow f's slot: the lookup comes later (rx after queueing,
 * tx after service), by then the line is in cache. */
static inline void
fmap_prefetch(const struct fmap *m, uint32_t f)
{
	if (m->t)
		__builtin_prefetch(&m->t[fmap_slot(m, f)]);
}

struct flowtab {
	struct mscope_flow_key *keys;
	uint64_t *hash;
	uint32_t n, cap;
	uint32_t *slots;         /* id + 1, 0 = empty */
	uint32_t mask;
};

static uint64_t
key_hash(const struct mscope_flow_key *k)
{
	uint64_t w[5] = { 0 };   /* the key is 38 bytes: the rest must be defined */

	memcpy(w, k, sizeof(w) < sizeof(*k) ? sizeof(w) : sizeof(*k));
	uint64_t h = 0x6a09e667f3bcc909ULL;
	for (int i = 0; i < 5; i++)
		h = sim_mix64(h ^ w[i]);
	return h;
}

static int
flowtab_grow(struct flowtab *ft)
{
	uint32_t ncap = ft->cap ? ft->cap * 2 : 1024;
	struct mscope_flow_key *k = realloc(ft->keys, ncap * sizeof(*k));
	if (k == NULL)
		return -1;
	ft->keys = k;
	uint64_t *h = realloc(ft->hash, ncap * sizeof(*h));
	if (h == NULL)
		return -1;
	ft->hash = h;
	uint32_t nslots = ncap * 2;
	uint32_t *s = calloc(nslots, sizeof(*s));
	if (s == NULL)
		return -1;
	free(ft->slots);
	ft->slots = s;
	ft->mask = nslots - 1;
	ft->cap = ncap;
	for (uint32_t i = 0; i < ft->n; i++) {
		uint32_t j = (uint32_t)ft->hash[i] & ft->mask;
		while (ft->slots[j])
			j = (j + 1) & ft->mask;
		ft->slots[j] = i + 1;
	}
	return 0;
}

/* The id of flow *k, added if new; -1 out of memory. */
static int64_t
flow_intern(struct flowtab *ft, const struct mscope_flow_key *k)
{
	if (ft->n == ft->cap && flowtab_grow(ft) < 0)
		return -1;
	uint64_t h = key_hash(k);
	uint32_t j = (uint32_t)h & ft->mask;
	while (ft->slots[j]) {
		uint32_t id = ft->slots[j] - 1;
		if (ft->hash[id] == h && !memcmp(&ft->keys[id], k, sizeof(*k)))
			return id;
		j = (j + 1) & ft->mask;
	}
	uint32_t id = ft->n++;
	ft->keys[id] = *k;
	ft->hash[id] = h;
	ft->slots[j] = id + 1;
	return id;
}

static void
flowtab_free(struct flowtab *ft)
{
	free(ft->keys);
	free(ft->hash);
	free(ft->slots);
}


/* ---------------------------------------------------------------- packets */

struct pkt {
	uint64_t fh;             /* hash of the current flow (routing without a table) */
	uint64_t in_ps;
	uint64_t idx;            /* index within its stream */
	uint64_t rx_seq;         /* at the node serving it */
	uint32_t stream;
	uint32_t flow;           /* current flow id */
	uint32_t wire;           /* current wire ID */
	uint32_t len;
	uint32_t next_free;
	uint8_t caplen;
	uint8_t head[SIM_HEAD];
};

/* ------------------------------------------------------------------ nodes */

struct window {
	uint64_t start, end;
};

enum node_state { N_IDLE = 0, N_POLL, N_BUSY };


struct node {
	const struct sim_nf *cfg;    /* NULL for the source */
	int index;                   /* NF index; n_nfs for the source */
	uint64_t salt;
	/* input queue: ring of packet slots */
	uint32_t *q;
	uint32_t qcap, qhead, qlen;
	enum node_state state;
	uint64_t idle_since;
	double base_ps;
	double jitter;
	uint32_t burst[SIM_BURST];
	uint32_t nburst;
	uint64_t rx_seq;
	/* out-links in scenario order; tx port = 1 + position, egress port after them */
	unsigned *out;               /* link indices */
	unsigned n_out;
	unsigned *spread;            /* positions in out[] of links without match */
	unsigned n_spread;
	int has_match;               /* some out-link has a match: routes are cached per flow */
	struct fmap fm;              /* flows seen here: file refs, cached routes */
	uint32_t *nat;               /* per flow: rewritten flow id + 1 */
	size_t nat_cap;
	/* faults */
	struct window *intr;
	unsigned n_intr, intr_cur;
	const struct sim_fault **mods;   /* bug and slow faults of this NF */
	unsigned n_mods;
	/* NAT / VPN state */
	int64_t vpn_flow;
	uint16_t vpn_ipid;
	uint32_t vpn_seq;
	/* trace */
	struct mscope_trace_writer *w;
	uint32_t next_ref;
	struct sim_node_stats st;
};

struct event {
	uint64_t t;
	uint64_t seq;
	uint32_t node;
};

struct stream {
	uint32_t id;
	uint64_t next_idx;
	uint64_t next_t;             /* ps (whole ns), NO_TIME when exhausted */
	const struct sim_fault *burst;
	uint64_t burst_gap_x1k;      /* burst gap in fs, for exact spacing */
	int64_t burst_flow;
};

struct synth {
	struct sim_rng rng;
	uint32_t n;
	double *prob;                /* alias method (Walker/Vose): O(1) weighted flow pick */
	uint32_t *alias;
	uint32_t *flow;              /* flow ids */
	uint16_t *ipid;
	uint32_t *seq, *ack;
	double rate_pps_ps;          /* packets per ps (mean) */
	double on_rate;
	uint64_t on_end, t;
	/* Flow picks have their own PRNG and are drawn one packet ahead, so the
	 * next flow's state can be loaded while this packet is handled. */
	struct sim_rng pick_rng;
	uint32_t next_pick;
};

struct engine {
	const struct mscope_sim_scenario *s;
	uint64_t seed;
	uint64_t disabled;
	int no_jitter;
	unsigned n_nodes;            /* n_nfs + 1 (source last) */
	struct node *nodes;
	struct flowtab ft;
	/* packet pool */
	struct pkt *pool;
	uint32_t pool_n, pool_cap, free_head;
	/* events */
	struct event *heap;
	uint32_t heap_n;
	uint64_t heap_seq;
	/* traffic */
	struct stream *streams;
	unsigned n_streams;
	struct synth syn;
	uint32_t *pcap_flow;
	/* scratch for records */
	uint32_t *s_wire, *s_flow;
	uint64_t *s_seq;
	uint32_t *s_pkt;
	int *s_pos;
	size_t s_cap;
	uint32_t *port_pkts;         /* packets grouped by port */
	uint32_t *pcount, *pstart;   /* [ports + 1] of the node transmitting */
	size_t port_cap;
	uint64_t next_flush;
	struct sim_result *res;
	struct mscope_trace_writer **writers;   /* per node, for the write queue */
	struct sim_wq *wq;
	char *err;
	size_t errlen;
	int failed;
};

__attribute__((format(printf, 2, 3))) static void
eng_fail(struct engine *e, const char *fmt, ...)
{
	va_list ap;

	if (e->failed)
		return;
	e->failed = 1;
	if (e->err && e->errlen) {
		va_start(ap, fmt);
		vsnprintf(e->err, e->errlen, fmt, ap);
		va_end(ap);
	}
}

static int
fault_on(const struct engine *e, unsigned i)
{
	return !(e->disabled >> i & 1);
}

/* ------------------------------------------------------------------ heap */

static int
ev_less(const struct event *a, const struct event *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void
heap_push(struct engine *e, uint64_t t, uint32_t node)
{
	/* capacity n_nodes: a node never has two pending events */
	uint32_t i = e->heap_n++;
	struct event ev = { t, e->heap_seq++, node };

	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (!ev_less(&ev, &e->heap[p]))
			break;
		e->heap[i] = e->heap[p];
		i = p;
	}
	e->heap[i] = ev;
}

static struct event
heap_pop(struct engine *e)
{
	struct event top = e->heap[0];
	struct event last = e->heap[--e->heap_n];
	uint32_t i = 0, n = e->heap_n;

	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && ev_less(&e->heap[c + 1], &e->heap[c]))
			c++;
		if (!ev_less(&e->heap[c], &last))
			break;
		e->heap[i] = e->heap[c];
		i = c;
	}
	if (n)
		e->heap[i] = last;
	return top;
}

/* ------------------------------------------------------------------ pool */

static int64_t
pkt_alloc(struct engine *e)
{
	if (e->free_head != UINT32_MAX) {
		uint32_t i = e->free_head;
		e->free_head = e->pool[i].next_free;
		return i;
	}
	if (e->pool_n == e->pool_cap) {
		uint32_t nc = e->pool_cap ? e->pool_cap * 2 : 4096;
		struct pkt *p = realloc(e->pool, nc * sizeof(*p));
		if (p == NULL)
			return -1;
		e->pool = p;
		e->pool_cap = nc;
	}
	return e->pool_n++;
}

static void
pkt_free(struct engine *e, uint32_t i)
{
	e->pool[i].next_free = e->free_head;
	e->free_head = i;
}

static int
scratch(struct engine *e, size_t n)
{
	if (n <= e->s_cap)
		return 0;
	size_t nc = e->s_cap ? e->s_cap : 256;
	while (nc < n)
		nc *= 2;
	uint32_t *a = realloc(e->s_wire, nc * sizeof(*a));
	if (a)
		e->s_wire = a;
	uint32_t *b = a ? realloc(e->s_flow, nc * sizeof(*b)) : NULL;
	if (b)
		e->s_flow = b;
	uint64_t *c = b ? realloc(e->s_seq, nc * sizeof(*c)) : NULL;
	if (c)
		e->s_seq = c;
	uint32_t *d = c ? realloc(e->s_pkt, nc * sizeof(*d)) : NULL;
	if (d)
		e->s_pkt = d;
	int *f = d ? realloc(e->s_pos, nc * sizeof(*f)) : NULL;
	if (f == NULL)
		return -1;
	e->s_pos = f;
	e->s_cap = nc;
	return 0;
}

/* --------------------------------------------------------------- outcomes */

static int
outv_add(struct engine *e, struct sim_outv *v, uint64_t idx, uint64_t in_ps, uint32_t wire)
{
	/* Packets before v->base were retired (sim_outv_retire): arrays hold [base, n). */
	idx -= v->base;
	if (idx >= v->cap) {
		uint64_t nc = v->cap ? v->cap * 2 : 65536;
		while (nc <= idx)
			nc *= 2;
		uint64_t *a = realloc(v->in_ps, nc * sizeof(*a));
		if (a)
			v->in_ps = a;
		uint64_t *b = a ? realloc(v->out_ps, nc * sizeof(*b)) : NULL;
		if (b)
			v->out_ps = b;
		uint32_t *c = b ? realloc(v->wire, nc * sizeof(*c)) : NULL;
		if (c)
			v->wire = c;
		int32_t *d = c ? realloc(v->nf, nc * sizeof(*d)) : NULL;
		if (d == NULL) {
			eng_fail(e, "out of memory");
			return -1;
		}
		v->nf = d;
		v->cap = nc;
	}
	v->in_ps[idx] = in_ps;
	v->out_ps[idx] = 0;
	v->wire[idx] = wire;
	v->nf[idx] = -1;
	if (v->base + idx >= v->n)
		v->n = v->base + idx + 1;
	return 0;
}

void
sim_outv_retire(struct sim_outv *v, uint64_t upto)
{
	uint64_t k = upto - v->base, left = v->n - upto;

	if (k == 0)
		return;
	memmove(v->in_ps, v->in_ps + k, left * sizeof(*v->in_ps));
	memmove(v->out_ps, v->out_ps + k, left * sizeof(*v->out_ps));
	memmove(v->wire, v->wire + k, left * sizeof(*v->wire));
	memmove(v->nf, v->nf + k, left * sizeof(*v->nf));
	v->base = upto;
}

static void
outcome_end(struct engine *e, const struct pkt *p, uint64_t t, int nf, int dropped)
{
	if (!e->res->outcomes)
		return;
	struct sim_outv *v = &e->res->streams[p->stream];

	v->out_ps[p->idx - v->base] = dropped ? SIM_DROPPED : t;
	v->nf[p->idx - v->base] = nf;
}

/* ------------------------------------------------------------------ trace */

static uint64_t
tsc(uint64_t ps)
{
	return MSCOPE_SIM_START_TSC + ps / PS_PER_NS;
}

/* A trace write failed: stop; sim_wq_finish() tells which file and why. */
static void
writer_fail(struct engine *e)
{
	eng_fail(e, "writing a trace file failed");
}

/* File reference of flow `f` in node n's file, defining it on first use. */
/* Grow a zeroed uint32 array so that index i is valid. */
static int
grow_u32(uint32_t **a, size_t *cap, size_t i)
{
	if (i < *cap)
		return 0;
	size_t nc = *cap ? *cap : 1024;
	while (nc <= i)
		nc *= 2;
	uint32_t *p = realloc(*a, nc * sizeof(*p));
	if (p == NULL)
		return -1;
	memset(p + *cap, 0, (nc - *cap) * sizeof(*p));
	*a = p;
	*cap = nc;
	return 0;
}

static uint32_t file_ref_slow(struct engine *e, struct node *n, uint32_t f);

static inline uint32_t
file_ref(struct engine *e, struct node *n, uint32_t f)
{
	struct fment *x = fmap_get(&n->fm, f);
	if (x && x->ref)
		return x->ref - 1;
	return file_ref_slow(e, n, f);
}

static uint32_t
file_ref_slow(struct engine *e, struct node *n, uint32_t f)
{
	struct fment *x = fmap_get(&n->fm, f);
	if (x == NULL) {
		eng_fail(e, "out of memory");
		return 0;
	}
	if (x->ref == 0) {
		uint32_t r = n->next_ref++;
		x->ref = r + 1;
		if (sim_wq_flow(e->wq, (unsigned)n->index, r, &e->ft.keys[f]) < 0)
			writer_fail(e);
	}
	return x->ref - 1;
}

static void
maybe_flush(struct engine *e, uint64_t t)
{
	if (t < e->next_flush)
		return;
	while (e->next_flush <= t)
		e->next_flush += FLUSH_PS;
	if (sim_wq_flush(e->wq) < 0)
		writer_fail(e);
}

/* ---------------------------------------------------------------- routing */

/* Out position (0..n_out-1) for flow f at node n, or -1 to leave the graph. */
static int route_slow(struct engine *e, struct node *n, uint32_t f);

/* Out position for packet p at node n, or -1 to leave the graph. Without match
 * links the flow hash carried in the packet decides, touching no table. */
static inline int
route(struct engine *e, struct node *n, const struct pkt *p)
{
	if (n->n_out == 0)
		return -1;
	if (!n->has_match)
		return (int)n->spread[n->n_spread == 1 ? 0 : sim_mix64(p->fh ^ n->salt) % n->n_spread];
	const struct fment *x = fmap_get(&n->fm, p->flow);
	if (x && x->route)
		return (int)x->route - 2;
	return route_slow(e, n, p->flow);
}

static int
route_slow(struct engine *e, struct node *n, uint32_t f)
{
	int pos = -1;
	for (unsigned i = 0; i < n->n_out && pos < 0; i++) {
		const struct sim_link *l = &e->s->links[n->out[i]];
		if (l->has_match && sim_match(&l->match, &e->ft.keys[f]))
			pos = (int)i;
	}
	if (pos < 0 && n->n_spread)
		pos = (int)n->spread[sim_mix64(e->ft.hash[f] ^ n->salt) % n->n_spread];
	struct fment *x = fmap_get(&n->fm, f);
	if (x == NULL) {
		eng_fail(e, "out of memory");
		return -1;
	}
	x->route = (uint16_t)(pos + 2);
	return pos;
}

/* ------------------------------------------------------------------- NFs */

static uint64_t
interrupted_until(struct node *n, uint64_t t)
{
	while (n->intr_cur < n->n_intr && n->intr[n->intr_cur].end <= t)
		n->intr_cur++;
	if (n->intr_cur < n->n_intr && n->intr[n->intr_cur].start <= t)
		return n->intr[n->intr_cur].end;
	return 0;
}

/* Time at which `work` ps of service started at t end, the NF being stopped
 * during its interrupt windows (a burst in service is preempted, as a
 * descheduled lcore would be, and resumes afterwards). */
static uint64_t
advance(const struct node *n, uint64_t t, uint64_t work)
{
	for (unsigned i = n->intr_cur; i < n->n_intr && work; i++) {
		const struct window *w = &n->intr[i];
		if (w->end <= t)
			continue;
		if (t + work <= w->start)
			break;
		if (t < w->start)
			work -= w->start - t;
		t = w->end;
	}
	return t + work;
}

static uint64_t
service_ps(struct engine *e, struct node *n, const struct pkt *p, uint64_t t)
{
	double s = n->base_ps;

	if (n->jitter > 0) {
		uint64_t h = sim_mix64(n->salt ^ sim_mix64(((uint64_t)p->stream << 48) ^ p->idx));
		s *= 1.0 + n->jitter * (2.0 * sim_unit(h) - 1.0);
	}
	for (unsigned i = 0; i < n->n_mods; i++) {
		const struct sim_fault *f = n->mods[i];
		if (t < f->at_ps || t >= f->end_ps)
			continue;
		if (f->kind == F_SLOW)
			s /= f->factor;
		else if (sim_match(&f->match, &e->ft.keys[p->flow]))
			s *= f->slowdown;
	}
	/* Overlapping slow-downs may multiply past 64 bits: saturate (about 53 days). */
	uint64_t r = sim_ps_sat(s);
	return r ? r : 1;
}

static void
schedule_poll(struct engine *e, struct node *n, uint64_t t)
{
	uint64_t P = (uint64_t)e->s->poll_ns * PS_PER_NS;
	uint64_t g = t;

	/* The idle loop polls every P since it went idle: the first poll at or after t. */
	if (P && t > n->idle_since)
		g = n->idle_since + (t - n->idle_since + P - 1) / P * P;
	n->state = N_POLL;
	heap_push(e, g, (uint32_t)n->index);
}

/* Hand packets pkts[0..cnt) to node `to` at time t (the upstream tx time). */
static void
deliver(struct engine *e, struct node *to, const uint32_t *pkts, uint32_t cnt, uint64_t t)
{
	uint32_t ndrop = 0;

	for (uint32_t i = 0; i < cnt; i++) {
		struct pkt *p = &e->pool[pkts[i]];
		if (to->qlen == to->qcap) {
			if (e->res->trace) {
				e->s_wire[ndrop] = p->wire;
				e->s_flow[ndrop] = file_ref(e, to, p->flow);
			}
			ndrop++;
			to->st.drops++;
			e->res->drops++;
			outcome_end(e, p, t, to->index, 1);
			pkt_free(e, pkts[i]);
			continue;
		}
		to->q[(to->qhead + to->qlen) % to->qcap] = pkts[i];
		to->qlen++;
		if (e->res->trace || to->has_match)
			fmap_prefetch(&to->fm, p->flow);
		if (p->flow < to->nat_cap)
			__builtin_prefetch(&to->nat[p->flow]);
		if (to->qlen > to->st.max_qlen)
			to->st.max_qlen = to->qlen;
	}
	for (uint32_t done = 0; e->res->trace && done < ndrop; done += MSCOPE_MAX_BURST) {
		uint32_t k = ndrop - done < MSCOPE_MAX_BURST ? ndrop - done : MSCOPE_MAX_BURST;
		struct mscope_drop d = { .tsc = tsc(t), .reason = MSCOPE_DROP_QUEUE_FULL, .n = k,
			.wire_id = e->s_wire + done, .flow = e->s_flow + done, .rx_seq = NULL };
		if (sim_wq_drop(e->wq, (unsigned)to->index, &d) < 0)
			writer_fail(e);
	}
	if (to->qlen && to->state == N_IDLE)
		schedule_poll(e, to, t);
}

/* Transmit the packets in pk[0..cnt) from node n at time t: group by out
 * port, write one tx record per port, deliver downstream; egress packets end. */
static void
transmit(struct engine *e, struct node *n, const uint32_t *pk, uint32_t cnt, uint64_t t,
		int rewrites)
{
	unsigned nports = n->n_out + 1;

	if (e->port_cap < cnt) {
		uint32_t *pp = realloc(e->port_pkts, cnt * sizeof(*pp));
		if (pp == NULL) {
			eng_fail(e, "out of memory");
			return;
		}
		e->port_pkts = pp;
		e->port_cap = cnt;
	}
	/* Counting sort by port keeps arrival order within a port. */
	uint32_t *count = e->pcount, *start = e->pstart;
	int *pos_of = e->s_pos;
	memset(count, 0, (nports + 1) * sizeof(*count));
	for (uint32_t i = 0; i < cnt; i++) {
		int pos = route(e, n, &e->pool[pk[i]]);
		pos_of[i] = pos < 0 ? (int)n->n_out : pos;
		count[pos_of[i] + 1]++;
	}
	for (unsigned i = 1; i <= nports; i++)
		count[i] += count[i - 1];
	memcpy(start, count, (nports + 1) * sizeof(*start));
	for (uint32_t i = 0; i < cnt; i++)
		e->port_pkts[count[pos_of[i]]++] = pk[i];
	for (unsigned port = 0; port < nports; port++) {
		uint32_t a = start[port], m = start[port + 1] - a;
		const uint32_t *pp = e->port_pkts + a;
		if (m == 0)
			continue;
		if (e->res->trace) {
			for (uint32_t done = 0; done < m; done += MSCOPE_MAX_BURST) {
				uint32_t k = m - done < MSCOPE_MAX_BURST ? m - done : MSCOPE_MAX_BURST;
				for (uint32_t i = 0; i < k; i++) {
					const struct pkt *p = &e->pool[pp[done + i]];
					e->s_wire[i] = p->wire;
					e->s_seq[i] = n->cfg ? p->rx_seq : MSCOPE_NO_LINK;
					if (rewrites)
						e->s_flow[i] = file_ref(e, n, p->flow);
				}
				struct mscope_tx_burst tx = { .tsc = tsc(t), .port = (uint16_t)(port + 1),
					.queue = 0, .offered = k, .accepted = k, .wire_id = e->s_wire,
					.rx_seq = e->s_seq, .flow = rewrites ? e->s_flow : NULL };
				if (sim_wq_tx(e->wq, (unsigned)n->index, &tx) < 0)
					writer_fail(e);
			}
		}
		if (port < n->n_out) {
			struct node *to = &e->nodes[e->s->links[n->out[port]].to];
			deliver(e, to, pp, m, t);
		} else {
			for (uint32_t i = 0; i < m; i++) {
				outcome_end(e, &e->pool[pp[i]], t, n->index, 0);
				e->res->egress++;
				pkt_free(e, pp[i]);
			}
		}
	}
}

/* NAT and VPN rewrite a packet as they serve it. */
static void
rewrite(struct engine *e, struct node *n, struct pkt *p)
{
	const struct sim_nf *cfg = n->cfg;

	if (cfg->kind == NF_NAT) {
		uint16_t port = (uint16_t)(1024 + sim_mix64(e->ft.hash[p->flow]) % 64512);
		if (!sim_nat_rewrite(p->head, p->caplen, cfg->addr, port))
			return;
		if (grow_u32(&n->nat, &n->nat_cap, p->flow) < 0) {
			eng_fail(e, "out of memory");
			return;
		}
		if (n->nat[p->flow] == 0) {
			struct mscope_flow_key nk;
			mscope_flow_parse(p->head, p->caplen, &nk);
			int64_t id = flow_intern(&e->ft, &nk);
			if (id < 0) {
				eng_fail(e, "out of memory");
				return;
			}
			n->nat[p->flow] = (uint32_t)id + 1;
		}
		p->flow = n->nat[p->flow] - 1;
		p->fh = e->ft.hash[p->flow];
		p->wire = mscope_wire_id(p->head, p->caplen, p->len);
	} else if (cfg->kind == NF_VPN) {
		static const uint8_t peer[4] = { 203, 0, 113, 1 };
		if (n->vpn_flow < 0) {
			struct mscope_flow_key vk = { .family = 4, .proto = 17, .sport = cfg->vpn_port,
				.dport = cfg->vpn_port };
			memcpy(vk.src, cfg->addr, 4);
			memcpy(vk.dst, peer, 4);
			n->vpn_flow = flow_intern(&e->ft, &vk);
			if (n->vpn_flow < 0) {
				eng_fail(e, "out of memory");
				return;
			}
		}
		uint64_t inner = ((uint64_t)p->wire << 32) ^ p->idx ^ ((uint64_t)p->stream << 56);
		sim_vpn_encap(p->head, &p->caplen, &p->len, cfg->addr, peer, cfg->vpn_port,
			++n->vpn_ipid, 0x1000u + (uint32_t)n->index, ++n->vpn_seq, inner);
		p->flow = (uint32_t)n->vpn_flow;
		p->fh = e->ft.hash[p->flow];
		p->wire = mscope_wire_id(p->head, p->caplen, p->len);
	}
}

static void
nf_poll(struct engine *e, struct node *n, uint64_t t)
{
	uint64_t until = interrupted_until(n, t);

	if (until) {
		n->state = N_POLL;
		heap_push(e, until, (uint32_t)n->index);
		return;
	}
	if (n->qlen == 0) {
		n->state = N_IDLE;
		n->idle_since = t;
		return;
	}
	uint32_t cnt = n->qlen < SIM_BURST ? n->qlen : SIM_BURST;
	uint64_t tt = t;
	for (uint32_t i = 0; i < cnt; i++) {
		uint32_t pi = n->q[n->qhead];
		n->qhead = (n->qhead + 1) % n->qcap;
		struct pkt *p = &e->pool[pi];
		p->rx_seq = n->rx_seq++;
		n->burst[i] = pi;
		if (e->res->trace) {
			e->s_wire[i] = p->wire;
			e->s_flow[i] = file_ref(e, n, p->flow);
		}
		tt = advance(n, tt, service_ps(e, n, p, tt));
		/* A NAT or VPN rewrites the packet as it serves it (after the service
		 * time, which depends on the packet as received); the tx record shows it. */
		if (n->cfg->kind != NF_PLAIN) {
			rewrite(e, n, p);
			if (e->res->trace || n->has_match)
				fmap_prefetch(&n->fm, p->flow);
		}
	}
	n->qlen -= cnt;
	n->nburst = cnt;
	n->st.hops += cnt;
	n->st.bursts++;
	e->res->hops += cnt;
	if (e->res->trace) {
		struct mscope_rx_burst rx = { .tsc = tsc(t), .n = cnt, .qdepth = (int32_t)n->qlen,
			.wire_id = e->s_wire, .flow = e->s_flow, .hw_ts = NULL };
		if (sim_wq_rx(e->wq, (unsigned)n->index, &rx) < 0)
			writer_fail(e);
	}
	n->state = N_BUSY;
	heap_push(e, tt, (uint32_t)n->index);
}

static void
nf_complete(struct engine *e, struct node *n, uint64_t t)
{
	transmit(e, n, n->burst, n->nburst, t, n->cfg->kind != NF_PLAIN);
	n->nburst = 0;
	nf_poll(e, n, t);
}

/* ---------------------------------------------------------------- traffic */

static const uint16_t tcp_ports[] = { 443, 443, 443, 443, 443, 443, 80, 80, 80, 80, 8080, 22 };
static const uint16_t udp_ports[] = { 53, 53, 53, 53, 443, 443, 123 };

static uint32_t
synth_size(struct sim_rng *r, const struct mscope_flow_key *k)
{
	double u = sim_rng_unit(r);

	if (k->proto == 6) {
		if (u < 0.35)
			return 66;                          /* ACKs */
		if (u < 0.85)
			return 1514;
		return 100 + (uint32_t)(sim_rng_unit(r) * 1300);
	}
	if (k->dport == 53)
		return 80 + (uint32_t)(u * 220);
	if (k->dport == 123)
		return 90;
	return 1200 + (uint32_t)(u * 150);          /* QUIC */
}

static uint32_t
synth_pick(struct synth *sy)
{
	uint64_t r = sim_rng_next(&sy->pick_rng);
	uint32_t i = (uint32_t)(((r >> 32) * sy->n) >> 32);

	return sim_unit(r << 32) >= sy->prob[i] ? sy->alias[i] : i;
}

/* Flows: clients 10.0.0.0/8 on ephemeral ports, servers 172.16.0.0/12 on
 * service ports; Pareto(alpha) weights give heavy-tailed flow sizes. */
static int
synth_init(struct engine *e)
{
	const struct sim_traffic *tr = &e->s->traffic;
	struct synth *sy = &e->syn;

	sim_rng_seed(&sy->rng, e->seed ^ 0x7472616666696331ULL);
	sim_rng_seed(&sy->pick_rng, e->seed ^ 0x666c6f777069636bULL);
	sy->n = tr->flows;
	sy->prob = malloc(sy->n * sizeof(*sy->prob));
	sy->alias = malloc(sy->n * sizeof(*sy->alias));
	double *w = malloc(sy->n * sizeof(*w));
	uint32_t *small = malloc(sy->n * sizeof(*small));
	uint32_t *large = malloc(sy->n * sizeof(*large));
	if (!w || !small || !large || !sy->prob || !sy->alias) {
		free(w), free(small), free(large);
		return -1;
	}
	sy->flow = malloc(sy->n * sizeof(*sy->flow));
	sy->ipid = malloc(sy->n * sizeof(*sy->ipid));
	sy->seq = malloc(sy->n * sizeof(*sy->seq));
	sy->ack = malloc(sy->n * sizeof(*sy->ack));
	if (!sy->flow || !sy->ipid || !sy->seq || !sy->ack) {
		free(w), free(small), free(large);
		return -1;
	}
	uint32_t servers = 1 + sy->n / 16;
	if (servers > 65536)
		servers = 65536;
	double total = 0;
	for (uint32_t i = 0; i < sy->n; i++) {
		struct mscope_flow_key k = { .family = 4 };
		uint32_t c = (uint32_t)(sim_rng_next(&sy->rng) >> 40);      /* 24 bits */
		if ((c & 0xff) == 0 || (c & 0xff) == 255)
			c ^= 0x11;
		k.src[0] = 10;
		k.src[1] = (uint8_t)(c >> 16);
		k.src[2] = (uint8_t)(c >> 8);
		k.src[3] = (uint8_t)c;
		uint32_t sv = (uint32_t)(sim_rng_next(&sy->rng) % servers);
		k.dst[0] = 172;
		k.dst[1] = (uint8_t)(16 + (sv >> 16));
		k.dst[2] = (uint8_t)(sv >> 8);
		k.dst[3] = (uint8_t)(1 + (sv & 0xff) % 254);
		k.sport = (uint16_t)(32768 + sim_rng_next(&sy->rng) % 28232);
		if (sim_rng_unit(&sy->rng) < tr->udp_share) {
			k.proto = 17;
			k.dport = udp_ports[sim_rng_next(&sy->rng) % 7];
		} else {
			k.proto = 6;
			k.dport = tcp_ports[sim_rng_next(&sy->rng) % 12];
		}
		int64_t id = flow_intern(&e->ft, &k);
		if (id < 0) {
			free(w), free(small), free(large);
			return -1;
		}
		sy->flow[i] = (uint32_t)id;
		w[i] = pow(1.0 - sim_rng_unit(&sy->rng), -1.0 / tr->alpha);
		total += w[i];
		sy->ipid[i] = (uint16_t)sim_rng_next(&sy->rng);
		sy->seq[i] = (uint32_t)sim_rng_next(&sy->rng);
		sy->ack[i] = (uint32_t)sim_rng_next(&sy->rng);
	}
	/* Vose's alias tables */
	uint32_t ns = 0, nl = 0;
	for (uint32_t i = 0; i < sy->n; i++) {
		w[i] = w[i] * sy->n / total;
		if (w[i] < 1.0)
			small[ns++] = i;
		else
			large[nl++] = i;
	}
	while (ns && nl) {
		uint32_t a = small[--ns], b = large[--nl];
		sy->prob[a] = w[a];
		sy->alias[a] = b;
		w[b] = (w[b] + w[a]) - 1.0;
		if (w[b] < 1.0)
			small[ns++] = b;
		else
			large[nl++] = b;
	}
	while (nl) {
		uint32_t b = large[--nl];
		sy->prob[b] = 1.0;
		sy->alias[b] = b;
	}
	while (ns) {
		uint32_t a = small[--ns];
		sy->prob[a] = 1.0;
		sy->alias[a] = a;
	}
	free(w);
	free(small);
	free(large);
	sy->next_pick = synth_pick(sy);
	sy->rate_pps_ps = tr->rate_mpps * 1e-6;   /* Mpps = packets per us = 1e-6 per ps */
	sy->t = 0;
	sy->on_end = NO_TIME;
	if (tr->arrival == A_ONOFF) {
		sy->on_rate = sy->rate_pps_ps * (tr->on_us + tr->off_us) / tr->on_us;
		sy->on_end = 0;
	}
	return 0;
}

/* Pareto(1.5) period with the given mean (ps): on/off traffic is bursty at every scale. */
static double
pareto_period(struct sim_rng *r, double mean_ps)
{
	const double a = 1.5;
	double xm = mean_ps * (a - 1) / a;
	return xm * pow(1.0 - sim_rng_unit(r), -1.0 / a);
}

/* Time of the base stream's next packet (whole ns), NO_TIME past the duration. */
static uint64_t
synth_next_time(struct engine *e, uint64_t idx)
{
	const struct sim_traffic *tr = &e->s->traffic;
	struct synth *sy = &e->syn;
	double t = (double)sy->t;

	switch (tr->arrival) {
	case A_CBR:
		t = (double)idx / sy->rate_pps_ps;
		break;
	case A_POISSON:
		if (idx)
			t += -log(1.0 - sim_rng_unit(&sy->rng)) / sy->rate_pps_ps;
		break;
	case A_ONOFF:
		t += -log(1.0 - sim_rng_unit(&sy->rng)) / sy->on_rate;
		while (t >= (double)sy->on_end) {
			/* the rest of the gap carries into the next on period */
			double over = t - (double)sy->on_end;
			double off = pareto_period(&sy->rng, tr->off_us * 1e6);
			double on = pareto_period(&sy->rng, tr->on_us * 1e6);
			double start = (double)sy->on_end + (idx || sy->on_end ? off : 0);
			sy->on_end = start + on < 0x1p63 ? (uint64_t)(start + on) : (uint64_t)1 << 63;
			t = start + over;
		}
		break;
	}
	/* Past the duration (perhaps past 64 bits at a very low rate): the stream ends. */
	if (!(t < (double)e->s->duration_ps))
		return NO_TIME;
	sy->t = (uint64_t)t;
	return (uint64_t)t / PS_PER_NS * PS_PER_NS;
}

static void
synth_packet(struct engine *e, struct pkt *p)
{
	struct synth *sy = &e->syn;
	uint32_t lo = sy->next_pick;
	const struct mscope_flow_key *k = &e->ft.keys[sy->flow[lo]];
	uint32_t len = e->s->traffic.size ? e->s->traffic.size : synth_size(&sy->rng, k);

	p->flow = sy->flow[lo];
	p->len = len;
	sim_build_frame(p->head, &p->caplen, k, len, ++sy->ipid[lo], sy->seq[lo], sy->ack[lo]);
	uint32_t hl = k->family == 6 ? 54 : 34;
	sy->seq[lo] += len > hl + 20 ? len - hl - 20 : 0;
	/* the next packet's flow: start loading what it will touch */
	uint32_t nx = synth_pick(sy);
	sy->next_pick = nx;
	__builtin_prefetch(&e->ft.keys[sy->flow[nx]]);
	__builtin_prefetch(&sy->seq[nx]);
	__builtin_prefetch(&sy->ipid[nx]);
	if (e->res->trace)
		fmap_prefetch(&e->nodes[e->s->n_nfs].fm, sy->flow[nx]);
}

static uint64_t
pcap_next_time(struct engine *e, uint64_t idx)
{
	const struct sim_pcap *pc = &e->s->traffic.pcap;
	uint64_t loop = idx / pc->n;
	uint64_t t = loop * pc->period_ps + pc->t_ps[idx % pc->n];

	if (t >= e->s->duration_ps)
		return NO_TIME;
	return t / PS_PER_NS * PS_PER_NS;
}

/* A capture packet; loop L > 0 changes the IPv4 ID (or IPv6 flow label) so
 * that replays are not identical packets. */
static void
pcap_packet(struct engine *e, struct pkt *p, uint64_t idx)
{
	const struct sim_pcap *pc = &e->s->traffic.pcap;
	uint64_t i = idx % pc->n, loop = idx / pc->n;

	memcpy(p->head, pc->head + i * SIM_HEAD, SIM_HEAD);
	p->caplen = pc->caplen[i];
	p->len = pc->len[i];
	p->flow = e->pcap_flow[i];
	if (loop == 0 || p->caplen < 14 + 20)
		return;
	uint16_t et = (uint16_t)(p->head[12] << 8 | p->head[13]);
	if (et == 0x0800 && (p->head[14] >> 4) == 4) {
		uint8_t *ip = p->head + 14;
		uint16_t id = (uint16_t)((ip[4] << 8 | ip[5]) + loop * 40503u);
		ip[4] = (uint8_t)(id >> 8);
		ip[5] = (uint8_t)id;
		unsigned ihl = (ip[0] & 15) * 4u;
		if (ihl >= 20 && 14 + ihl <= p->caplen) {
			ip[10] = ip[11] = 0;
			uint16_t c = sim_ip_csum(ip, ihl);
			ip[10] = (uint8_t)(c >> 8);
			ip[11] = (uint8_t)c;
		}
	} else if (et == 0x86dd) {
		uint32_t fl = (uint32_t)(loop * 2654435761u) & 0xfffff;
		p->head[15] ^= (uint8_t)(fl >> 16);
		p->head[16] ^= (uint8_t)(fl >> 8);
		p->head[17] ^= (uint8_t)fl;
	} else {
		/* not IP: vary the last kept byte */
		p->head[p->caplen - 1] ^= (uint8_t)(loop * 131);
	}
}

static uint64_t
stream_time(struct engine *e, struct stream *st)
{
	if (st->burst) {
		const struct sim_fault *f = st->burst;
		/* exact spacing from the fault start, in whole ns */
		uint64_t off = (uint64_t)((double)st->next_idx * 1e6 / f->rate_mpps);
		uint64_t t = f->at_ps + off;
		if (t >= f->end_ps)
			return NO_TIME;
		return t / PS_PER_NS * PS_PER_NS;
	}
	if (e->s->traffic.kind == T_PCAP)
		return pcap_next_time(e, st->next_idx);
	return synth_next_time(e, st->next_idx);
}

static void
stream_packet(struct engine *e, struct stream *st, struct pkt *p)
{
	if (st->burst) {
		const struct sim_fault *f = st->burst;
		/* the burst's own IP ID sequence, offset so that it rarely meets the flow's */
		uint16_t ipid = (uint16_t)(0x8000u + st->id * 0x1357u + st->next_idx);
		p->flow = (uint32_t)st->burst_flow;
		p->len = f->size;
		sim_build_frame(p->head, &p->caplen, &f->flow, f->size, ipid,
			(uint32_t)(st->next_idx * (f->size - 54)), 0x5eed0000u + st->id);
		return;
	}
	if (e->s->traffic.kind == T_PCAP)
		pcap_packet(e, p, st->next_idx);
	else
		synth_packet(e, p);
}

/* Emit every packet due at time t from all streams, as one source tx record per port. */
static void
source_emit(struct engine *e, struct node *src, uint64_t t)
{
	uint32_t cnt = 0;

	for (unsigned si = 0; si < e->n_streams; si++) {
		struct stream *st = &e->streams[si];
		while (st->next_t == t) {
			int64_t pi = pkt_alloc(e);
			if (pi < 0 || scratch(e, cnt + 1) < 0) {
				eng_fail(e, "out of memory");
				return;
			}
			struct pkt *p = &e->pool[pi];
			p->stream = st->id;
			p->idx = st->next_idx;
			p->in_ps = t;
			p->rx_seq = MSCOPE_NO_LINK;
			stream_packet(e, st, p);
			p->fh = e->ft.hash[p->flow];
			p->wire = mscope_wire_id(p->head, p->caplen, p->len);
			if (e->res->outcomes &&
					outv_add(e, &e->res->streams[st->id], p->idx, t, p->wire) < 0)
				return;
			e->s_pkt[cnt++] = (uint32_t)pi;
			e->res->packets++;
			st->next_idx++;
			st->next_t = stream_time(e, st);
		}
	}
	/* transmit() and deliver() use the other scratch arrays, never s_pkt */
	transmit(e, src, e->s_pkt, cnt, t, 1);
	uint64_t next = NO_TIME;
	for (unsigned si = 0; si < e->n_streams; si++)
		if (e->streams[si].next_t < next)
			next = e->streams[si].next_t;
	if (next != NO_TIME)
		heap_push(e, next, (uint32_t)src->index);
}

/* ------------------------------------------------------------------ setup */

static int
cmp_window(const void *a, const void *b)
{
	const struct window *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return (x->end > y->end) - (x->end < y->end);
}

static int
open_writer(struct engine *e, struct node *n, const char *outdir, int zstd_level, int overwrite)
{
	char file[4096];
	const char *name = n->cfg ? n->cfg->name : "source";
	struct mscope_trace_header h;
	struct mscope_trace_error te;
	/* Level 1 by default: ~10% faster than 3 for 2.5% more bytes on sim traces. */
	struct mscope_writer_opts wo = { .zstd_level = zstd_level ? zstd_level : 1,
		.frame_bytes = 0 };

	snprintf(file, sizeof(file), "%s/%s.mst", outdir, name);
	if (overwrite && unlink(file) < 0 && errno != ENOENT) {
		eng_fail(e, "%s: %s", file, strerror(errno));
		return -1;
	}
	memset(&h, 0, sizeof(h));
	h.role = n->cfg ? MSCOPE_ROLE_RXQ : MSCOPE_ROLE_SOURCE;
	h.port = 0;
	h.queue = 0;
	h.pid = 0;
	h.tsc_hz = 1000000000ULL;
	h.anchor_tsc = MSCOPE_SIM_START_TSC;
	h.anchor_realtime_ns = MSCOPE_SIM_ANCHOR_REALTIME_NS;
	snprintf(h.nf_name, sizeof(h.nf_name), "%s", name);
	snprintf(h.host, sizeof(h.host), "sim");
	snprintf(h.run_id, sizeof(h.run_id), "%.40s-%llu", e->s->name,
		(unsigned long long)e->seed);
	snprintf(h.writer, sizeof(h.writer), "mscope-sim");
	snprintf(h.writer_version, sizeof(h.writer_version), "%s", MSCOPE_VERSION);
	n->w = mscope_writer_open(file, &h, &wo, &te);
	if (n->w == NULL) {
		eng_fail(e, "%s: %s", te.file[0] ? te.file : file, te.text);
		return -1;
	}
	return 0;
}

/* NF n's faults that are on: interrupt windows (sorted, merged) and service
 * modifiers (bugs, slow-downs). -1 out of memory. */
static int
node_faults(struct engine *e, struct node *n)
{
	const struct mscope_sim_scenario *s = e->s;

	free(n->intr);
	free(n->mods);
	n->n_intr = n->n_mods = n->intr_cur = 0;
	n->intr = calloc(s->n_faults + 1, sizeof(*n->intr));
	n->mods = calloc(s->n_faults + 1, sizeof(*n->mods));
	if (!n->intr || !n->mods)
		return -1;
	for (unsigned f = 0; f < s->n_faults; f++) {
		const struct sim_fault *ft = &s->faults[f];
		if (ft->nf != n->index || !fault_on(e, f))
			continue;
		if (ft->kind == F_INTERRUPT)
			n->intr[n->n_intr++] = (struct window){ ft->at_ps, ft->end_ps };
		else
			n->mods[n->n_mods++] = ft;
	}
	qsort(n->intr, n->n_intr, sizeof(*n->intr), cmp_window);
	unsigned m = 0;
	for (unsigned k = 0; k < n->n_intr; k++) {
		if (m && n->intr[k].start <= n->intr[m - 1].end) {
			if (n->intr[k].end > n->intr[m - 1].end)
				n->intr[m - 1].end = n->intr[k].end;
		} else {
			n->intr[m++] = n->intr[k];
		}
	}
	n->n_intr = m;
	return 0;
}

static int
setup(struct engine *e, const char *outdir, int zstd_level, int overwrite, int writer_thread)
{
	const struct mscope_sim_scenario *s = e->s;

	e->n_nodes = s->n_nfs + 1;
	e->pcount = calloc(s->n_links + 2, sizeof(*e->pcount));
	e->pstart = calloc(s->n_links + 2, sizeof(*e->pstart));
	if (!e->pcount || !e->pstart)
		goto oom;
	e->nodes = calloc(e->n_nodes, sizeof(*e->nodes));
	e->heap = calloc(e->n_nodes + 1, sizeof(*e->heap));
	e->free_head = UINT32_MAX;
	if (!e->nodes || !e->heap)
		goto oom;
	for (unsigned i = 0; i < e->n_nodes; i++) {
		struct node *n = &e->nodes[i];
		n->index = (int)i;
		n->salt = sim_mix64(e->seed * 0x100000001b3ULL + i + 1);
		n->vpn_flow = -1;
		n->cfg = i < s->n_nfs ? &s->nfs[i] : NULL;
		if (n->cfg) {
			n->qcap = n->cfg->queue;
			n->q = malloc(n->qcap * sizeof(*n->q));
			if (n->q == NULL)
				goto oom;
			n->base_ps = 1e6 / n->cfg->rate_mpps;
			n->jitter = e->no_jitter ? 0 : n->cfg->jitter;
		}
		int from = n->cfg ? (int)i : -1;
		unsigned nl = 0;
		for (unsigned l = 0; l < s->n_links; l++)
			nl += s->links[l].from == from;
		n->out = calloc(nl + 1, sizeof(*n->out));
		n->spread = calloc(nl + 1, sizeof(*n->spread));
		if (!n->out || !n->spread)
			goto oom;
		for (unsigned l = 0; l < s->n_links; l++) {
			if (s->links[l].from != from)
				continue;
			if (!s->links[l].has_match)
				n->spread[n->n_spread++] = n->n_out;
			else
				n->has_match = 1;
			n->out[n->n_out++] = l;
		}
		if (n->n_out > 65000) {
			eng_fail(e, "too many out-links at one node");
			return -1;
		}
	}
	for (unsigned i = 0; i < s->n_nfs; i++)
		if (node_faults(e, &e->nodes[i]) < 0)
			goto oom;
	/* Streams: 0 = traffic, 1 + i = burst fault i (only if injected). */
	e->res->n_streams = s->n_faults + 1;
	e->res->streams = calloc(e->res->n_streams, sizeof(*e->res->streams));
	e->streams = calloc(s->n_faults + 1, sizeof(*e->streams));
	if (!e->res->streams || !e->streams)
		goto oom;
	if (s->traffic.kind == T_SYNTH) {
		if (synth_init(e) < 0)
			goto oom;
	} else {
		const struct sim_pcap *pc = &s->traffic.pcap;
		e->pcap_flow = malloc(pc->n * sizeof(*e->pcap_flow));
		if (e->pcap_flow == NULL)
			goto oom;
		for (uint64_t i = 0; i < pc->n; i++) {
			struct mscope_flow_key k;
			mscope_flow_parse(pc->head + i * SIM_HEAD, pc->caplen[i], &k);
			int64_t id = flow_intern(&e->ft, &k);
			if (id < 0)
				goto oom;
			e->pcap_flow[i] = (uint32_t)id;
		}
	}
	e->streams[e->n_streams++] = (struct stream){ .id = 0 };
	for (unsigned f = 0; f < s->n_faults; f++) {
		if (s->faults[f].kind != F_BURST || !fault_on(e, f))
			continue;
		int64_t id = flow_intern(&e->ft, &s->faults[f].flow);
		if (id < 0)
			goto oom;
		e->streams[e->n_streams++] = (struct stream){ .id = 1 + f, .burst = &s->faults[f],
			.burst_flow = id };
	}
	if (scratch(e, SIM_BURST * 4) < 0)
		goto oom;
	if (outdir) {
		e->writers = calloc(e->n_nodes, sizeof(*e->writers));
		if (e->writers == NULL)
			goto oom;
		for (unsigned i = 0; i < e->n_nodes; i++) {
			if (open_writer(e, &e->nodes[i], outdir, zstd_level, overwrite) < 0)
				return -1;
			e->writers[i] = e->nodes[i].w;
		}
		e->wq = sim_wq_start(e->writers, e->n_nodes, writer_thread);
		if (e->wq == NULL)
			goto oom;
	}
	e->next_flush = FLUSH_PS;
	return 0;
oom:
	eng_fail(e, "out of memory");
	return -1;
}

static void
teardown(struct engine *e)
{
	char werr[512];

	/* Everything queued reaches its writer before the files are closed. */
	if (e->wq && sim_wq_finish(e->wq, werr, sizeof(werr)) < 0) {
		e->failed = 0;
		eng_fail(e, "%s", werr);
	}
	e->wq = NULL;
	for (unsigned i = 0; e->nodes && i < e->n_nodes; i++) {
		struct node *n = &e->nodes[i];
		if (n->w) {
			if (mscope_writer_flush(n->w) < 0 && !e->failed) {
				const struct mscope_trace_error *we = mscope_writer_error(n->w);
				eng_fail(e, "%s: %s", we->file, we->text);
			}
			e->res->trace_bytes += mscope_writer_bytes(n->w);
			if (mscope_writer_close(n->w) < 0 && !e->failed)
				eng_fail(e, "%s: closing the trace file failed",
					n->cfg ? n->cfg->name : "source");
		}
		if (i < e->s->n_nfs && e->res->nodes)
			e->res->nodes[i] = n->st;
		free(n->q);
		free(n->out);
		free(n->spread);
		free(n->nat);
		free(n->fm.t);
		free(n->intr);
		free(n->mods);
	}
	free(e->nodes);
	free(e->writers);
	free(e->heap);
	free(e->pool);
	free(e->streams);
	free(e->pcap_flow);
	free(e->syn.prob);
	free(e->syn.alias);
	free(e->syn.flow);
	free(e->syn.ipid);
	free(e->syn.seq);
	free(e->syn.ack);
	free(e->s_wire);
	free(e->s_flow);
	free(e->s_seq);
	free(e->s_pkt);
	free(e->s_pos);
	free(e->port_pkts);
	free(e->pcount);
	free(e->pstart);
	flowtab_free(&e->ft);
}

struct sim_engine *
sim_engine_open(const struct mscope_sim_scenario *s, const struct sim_engine_opts *o,
		struct sim_result *res, char *err, size_t errlen)
{
	struct engine *e = calloc(1, sizeof(*e));

	memset(res, 0, sizeof(*res));
	if (e == NULL) {
		if (err && errlen)
			snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->s = s;
	e->seed = o->seed;
	e->disabled = o->disabled;
	e->no_jitter = o->no_jitter;
	e->res = res;
	e->err = err;
	e->errlen = errlen;
	res->trace = o->outdir != NULL;
	res->outcomes = !o->no_outcomes;
	res->nodes = calloc(s->n_nfs, sizeof(*res->nodes));
	if (res->nodes == NULL) {
		eng_fail(e, "out of memory");
		return (struct sim_engine *)e;
	}
	if (setup(e, o->outdir, o->zstd_level, o->overwrite, o->writer_thread) == 0) {
		struct node *src = &e->nodes[s->n_nfs];
		uint64_t first = NO_TIME;
		for (unsigned si = 0; si < e->n_streams; si++) {
			e->streams[si].next_t = stream_time(e, &e->streams[si]);
			if (e->streams[si].next_t < first)
				first = e->streams[si].next_t;
		}
		if (first != NO_TIME)
			heap_push(e, first, (uint32_t)src->index);
	}
	return (struct sim_engine *)e;
}

int
sim_engine_advance(struct sim_engine *se, uint64_t until_ps)
{
	struct engine *e = (struct engine *)se;
	struct sim_result *res = e->res;

	while (e->heap_n && !e->failed && e->heap[0].t < until_ps) {
		struct event ev = heap_pop(e);
		struct node *n = &e->nodes[ev.node];
		if (res->trace)
			maybe_flush(e, ev.t);
		res->end_ps = ev.t;
		if (n->cfg == NULL)
			source_emit(e, n, ev.t);
		else if (n->state == N_BUSY)
			nf_complete(e, n, ev.t);
		else
			nf_poll(e, n, ev.t);
	}
	if (e->failed)
		return -1;
	return e->heap_n > 0;
}

int
sim_engine_close(struct sim_engine *se)
{
	struct engine *e = (struct engine *)se;

	if (e == NULL)
		return -1;
	teardown(e);
	int rc = e->failed ? -1 : 0;
	free(e);
	return rc;
}

int
sim_engine_run(const struct mscope_sim_scenario *s, const struct sim_engine_opts *o,
		struct sim_result *res, char *err, size_t errlen)
{
	struct sim_engine *e = sim_engine_open(s, o, res, err, errlen);

	if (e == NULL)
		return -1;
	sim_engine_advance(e, NO_TIME);
	return sim_engine_close(e);
}

/* ------------------------------------------------------------ re-runs */

/* A copy of n elements of size sz (NULL for none); *ok cleared when out of memory. */
static void *
dup_array(const void *p, size_t n, size_t sz, int *ok)
{
	if (p == NULL || n == 0)
		return NULL;
	void *q = malloc(n * sz);
	if (q == NULL)
		*ok = 0;
	else
		memcpy(q, p, n * sz);
	return q;
}

static int
cmp_event(const void *a, const void *b)
{
	const struct event *x = a, *y = b;

	return ev_less(x, y) ? -1 : ev_less(y, x);
}

/* Time of node i's pending event, NO_TIME if none. */
static uint64_t
pending(const struct engine *e, uint32_t node)
{
	for (uint32_t k = 0; k < e->heap_n; k++)
		if (e->heap[k].node == node)
			return e->heap[k].t;
	return NO_TIME;
}

static int
copy_outcomes(const struct sim_result *from, struct sim_result *to)
{
	int ok = 1;

	to->n_streams = from->n_streams;
	to->streams = calloc(from->n_streams, sizeof(*to->streams));
	if (to->streams == NULL)
		return -1;
	for (unsigned i = 0; i < from->n_streams; i++) {
		const struct sim_outv *a = &from->streams[i];
		struct sim_outv *b = &to->streams[i];
		uint64_t k = a->n - a->base;
		b->n = a->n;
		b->base = a->base;
		b->cap = k;
		b->in_ps = dup_array(a->in_ps, k, sizeof(*a->in_ps), &ok);
		b->out_ps = dup_array(a->out_ps, k, sizeof(*a->out_ps), &ok);
		b->wire = dup_array(a->wire, k, sizeof(*a->wire), &ok);
		b->nf = dup_array(a->nf, k, sizeof(*a->nf), &ok);
		if (k == 0)
			b->n = b->base;
	}
	return ok ? 0 : -1;
}

int
sim_engine_clone(const struct sim_engine *src, unsigned fault, struct sim_result *res,
		char *err, size_t errlen, struct sim_engine **out)
{
	const struct engine *m = (const struct engine *)src;
	const struct mscope_sim_scenario *s = m->s;
	const struct sim_fault *f = &s->faults[fault];
	int ok = 1;

	*out = NULL;
	memset(res, 0, sizeof(*res));
	/* Fault `fault` must not have acted yet: nothing at or after its start
	 * handled, no burst packet sent, and its NF's pending event (a service
	 * end or a poll) computed before the fault could stretch it. */
	if (m->failed || (m->res->end_ps >= f->at_ps && m->res->end_ps))
		return 1;
	if (f->kind != F_BURST && pending(m, (uint32_t)f->nf) >= f->at_ps &&
			pending(m, (uint32_t)f->nf) != NO_TIME)
		return 1;
	for (unsigned i = 0; i < m->n_streams; i++)
		if (m->streams[i].burst == f && m->streams[i].next_idx)
			return 1;
	struct engine *c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto oom;
	*c = *m;
	c->res = res;
	c->err = err;
	c->errlen = errlen;
	c->disabled |= 1ULL << fault;
	c->writers = NULL;
	c->wq = NULL;
	c->nodes = NULL;
	c->heap = NULL;
	c->pool = NULL;
	c->streams = NULL;
	c->pcap_flow = NULL;
	c->syn.prob = NULL;
	c->syn.alias = NULL;
	c->syn.flow = NULL;
	c->syn.ipid = NULL;
	c->syn.seq = c->syn.ack = NULL;
	c->s_wire = c->s_flow = c->s_pkt = NULL;
	c->s_seq = NULL;
	c->s_pos = NULL;
	c->s_cap = 0;
	c->port_pkts = NULL;
	c->port_cap = 0;
	c->pcount = c->pstart = NULL;
	memset(&c->ft, 0, sizeof(c->ft));
	*out = (struct sim_engine *)c;
	res->outcomes = 1;
	res->packets = m->res->packets;
	res->hops = m->res->hops;
	res->drops = m->res->drops;
	res->egress = m->res->egress;
	res->end_ps = m->res->end_ps;
	res->nodes = calloc(s->n_nfs, sizeof(*res->nodes));
	if (res->nodes == NULL || copy_outcomes(m->res, res) < 0)
		goto oom;
	c->nodes = calloc(c->n_nodes, sizeof(*c->nodes));
	if (c->nodes == NULL)
		goto oom;
	for (unsigned i = 0; i < c->n_nodes; i++) {
		const struct node *a = &m->nodes[i];
		struct node *b = &c->nodes[i];
		*b = *a;
		b->w = NULL;
		b->q = dup_array(a->q, a->qcap, sizeof(*a->q), &ok);
		b->out = dup_array(a->out, a->n_out + 1, sizeof(*a->out), &ok);
		b->spread = dup_array(a->spread, a->n_out + 1, sizeof(*a->spread), &ok);
		b->fm.t = dup_array(a->fm.t, a->fm.t ? a->fm.mask + 1 : 0, sizeof(*a->fm.t), &ok);
		b->nat = dup_array(a->nat, a->nat_cap, sizeof(*a->nat), &ok);
		b->intr = NULL;
		b->mods = NULL;
		if (b->cfg && node_faults(c, b) < 0)
			ok = 0;
	}
	c->heap = dup_array(m->heap, c->n_nodes + 1, sizeof(*m->heap), &ok);
	c->pool = dup_array(m->pool, m->pool_cap, sizeof(*m->pool), &ok);
	c->streams = dup_array(m->streams, s->n_faults + 1, sizeof(*m->streams), &ok);
	c->ft.keys = dup_array(m->ft.keys, m->ft.cap, sizeof(*m->ft.keys), &ok);
	c->ft.hash = dup_array(m->ft.hash, m->ft.cap, sizeof(*m->ft.hash), &ok);
	c->ft.slots = dup_array(m->ft.slots, m->ft.slots ? m->ft.mask + 1 : 0,
		sizeof(*m->ft.slots), &ok);
	c->ft.n = m->ft.n;
	c->ft.cap = m->ft.cap;
	c->ft.mask = m->ft.mask;
	if (s->traffic.kind == T_SYNTH) {
		uint32_t n = m->syn.n;
		c->syn.prob = dup_array(m->syn.prob, n, sizeof(*m->syn.prob), &ok);
		c->syn.alias = dup_array(m->syn.alias, n, sizeof(*m->syn.alias), &ok);
		c->syn.flow = dup_array(m->syn.flow, n, sizeof(*m->syn.flow), &ok);
		c->syn.ipid = dup_array(m->syn.ipid, n, sizeof(*m->syn.ipid), &ok);
		c->syn.seq = dup_array(m->syn.seq, n, sizeof(*m->syn.seq), &ok);
		c->syn.ack = dup_array(m->syn.ack, n, sizeof(*m->syn.ack), &ok);
	} else {
		c->pcap_flow = dup_array(m->pcap_flow, s->traffic.pcap.n, sizeof(*m->pcap_flow), &ok);
	}
	c->pcount = calloc(s->n_links + 2, sizeof(*c->pcount));
	c->pstart = calloc(s->n_links + 2, sizeof(*c->pstart));
	if (!ok || !c->pcount || !c->pstart || !c->heap || !c->streams ||
			scratch(c, SIM_BURST * 4) < 0)
		goto oom;
	/* The fault's burst stream goes, and the source's next event with it. */
	unsigned k = 0;
	uint64_t next = NO_TIME;
	for (unsigned i = 0; i < c->n_streams; i++) {
		if (c->streams[i].burst == f)
			continue;
		c->streams[k] = c->streams[i];
		if (c->streams[k].next_t < next)
			next = c->streams[k].next_t;
		k++;
	}
	c->n_streams = k;
	for (uint32_t i = 0; i < c->heap_n; i++)
		if (c->heap[i].node == s->n_nfs) {
			if (next == NO_TIME)
				c->heap[i] = c->heap[--c->heap_n];
			else
				c->heap[i].t = next;
			break;
		}
	/* Sorted by (time, insertion order) is a valid heap. */
	qsort(c->heap, c->heap_n, sizeof(*c->heap), cmp_event);
	return 0;
oom:
	if (err && errlen)
		snprintf(err, errlen, "out of memory");
	if (c)
		c->failed = 1;
	return -1;
}

/* Identity of the packet in pool slot i. */
static inline uint64_t
pkt_id(const struct engine *e, uint32_t i)
{
	return (uint64_t)e->pool[i].stream << 56 ^ e->pool[i].idx;
}

int
sim_engine_same(const struct sim_engine *x, const struct sim_engine *y)
{
	const struct engine *a = (const struct engine *)x, *b = (const struct engine *)y;

	if (a->failed || b->failed || a->heap_n != b->heap_n)
		return 0;
	for (unsigned i = 0; i < a->s->n_nfs; i++) {
		const struct node *p = &a->nodes[i], *q = &b->nodes[i];
		if (p->state != q->state || p->qlen != q->qlen || p->nburst != q->nburst ||
				(p->state == N_IDLE && p->idle_since != q->idle_since))
			return 0;
		for (uint32_t k = 0; k < p->qlen; k++)
			if (pkt_id(a, p->q[(p->qhead + k) % p->qcap]) !=
					pkt_id(b, q->q[(q->qhead + k) % q->qcap]))
				return 0;
		for (uint32_t k = 0; k < p->nburst; k++)
			if (pkt_id(a, p->burst[k]) != pkt_id(b, q->burst[k]))
				return 0;
	}
	/* Streams by id; one only a run has must be over. */
	for (unsigned i = 0; i <= a->s->n_faults; i++) {
		const struct stream *p = NULL, *q = NULL;
		for (unsigned k = 0; k < a->n_streams; k++)
			if (a->streams[k].id == i)
				p = &a->streams[k];
		for (unsigned k = 0; k < b->n_streams; k++)
			if (b->streams[k].id == i)
				q = &b->streams[k];
		uint64_t pt = p ? p->next_t : NO_TIME, qt = q ? q->next_t : NO_TIME;
		if (pt != qt || (p && q && p->next_idx != q->next_idx))
			return 0;
	}
	/* The same events in the same order (insertion numbers differ). */
	struct event *ea = dup_array(a->heap, a->heap_n, sizeof(*a->heap), &(int){ 1 });
	struct event *eb = dup_array(b->heap, b->heap_n, sizeof(*b->heap), &(int){ 1 });
	int same = a->heap_n == 0 || (ea && eb);
	if (same && a->heap_n) {
		qsort(ea, a->heap_n, sizeof(*ea), cmp_event);
		qsort(eb, b->heap_n, sizeof(*eb), cmp_event);
		for (uint32_t k = 0; k < a->heap_n && same; k++)
			same = ea[k].t == eb[k].t && ea[k].node == eb[k].node;
	}
	free(ea);
	free(eb);
	return same;
}

uint64_t
sim_engine_next(const struct sim_engine *e)
{
	const struct engine *x = (const struct engine *)e;

	return x->heap_n && !x->failed ? x->heap[0].t : UINT64_MAX;
}

void
sim_result_free(struct sim_result *r)
{
	for (unsigned i = 0; r->streams && i < r->n_streams; i++) {
		free(r->streams[i].in_ps);
		free(r->streams[i].out_ps);
		free(r->streams[i].wire);
		free(r->streams[i].nf);
	}
	free(r->streams);
	free(r->nodes);
	memset(r, 0, sizeof(*r));
}
