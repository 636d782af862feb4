/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Seeded generator of random but valid trace record streams, and a record
 * comparator, shared by the trace tests and corpus tools. Records own their
 * arrays (freed by tgen_free).
 */
#ifndef MSCOPE_TGEN_H
#define MSCOPE_TGEN_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mscope_trace.h"

struct tgen_rng {
	uint64_t s;
};

static inline uint64_t
tgen_next(struct tgen_rng *r)
{
	/* splitmix64 */
	uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static inline uint64_t
tgen_below(struct tgen_rng *r, uint64_t n)
{
	return n ? tgen_next(r) % n : 0;
}

struct tgen {
	struct tgen_rng rng;
	size_t n, cap;
	struct mscope_record *recs;
	/* state to produce realistic links */
	uint64_t tsc;
	uint64_t next_rx;
	uint64_t tx_next;      /* next rx seq a "forwarding" tx would send */
	uint32_t *rx_wire;     /* wire ID of every rx seq so far */
	size_t rx_wire_cap;
	uint32_t nflows;
	uint32_t *defined;     /* flow refs defined so far (every use is preceded by one) */
	size_t ndefined;
};

static inline void *
tgen_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		abort();
	return p;
}

static inline uint64_t
tgen_tsc_step(struct tgen *g)
{
	switch (tgen_below(&g->rng, 8)) {
	case 0: return 0;
	case 1: return tgen_below(&g->rng, 1ULL << 40); /* big jump */
	default: return tgen_below(&g->rng, 3000);
	}
}

static inline uint32_t
tgen_count(struct tgen *g)
{
	switch (tgen_below(&g->rng, 20)) {
	case 0: return 0;
	case 1: return (uint32_t)tgen_below(&g->rng, MSCOPE_MAX_BURST + 1);
	default: return 1 + (uint32_t)tgen_below(&g->rng, 32);
	}
}

static inline uint32_t
tgen_flow(struct tgen *g)
{
	if (tgen_below(&g->rng, 50) == 0)
		return (uint32_t)tgen_next(&g->rng); /* any 32-bit ref */
	return (uint32_t)tgen_below(&g->rng, g->nflows);
}

static inline uint32_t *
tgen_flows(struct tgen *g, uint32_t n)
{
	uint32_t *f = tgen_xmalloc(n * 4);

	for (uint32_t i = 0; i < n; i++)
		f[i] = i > 0 && tgen_below(&g->rng, 2) ? f[i - 1] : tgen_flow(g);
	return f;
}

/* A link (rx seq) and wire ID for a packet leaving the node. */
static inline void
tgen_link(struct tgen *g, uint64_t *seq, uint32_t *wire, bool forwarding)
{
	uint64_t s;

	switch (forwarding ? 0 : tgen_below(&g->rng, 6)) {
	case 0: /* next in rx order */
		s = g->tx_next < g->next_rx ? g->tx_next++ : MSCOPE_NO_LINK;
		break;
	case 1:
		s = MSCOPE_NO_LINK;
		break;
	case 2: /* any earlier rx packet */
		s = g->next_rx ? tgen_below(&g->rng, g->next_rx) : MSCOPE_NO_LINK;
		break;
	case 3: /* arbitrary value, maybe never received */
		s = tgen_next(&g->rng) >> tgen_below(&g->rng, 64);
		if (s == MSCOPE_NO_LINK)
			s--;
		break;
	default: /* near the expected one */
		s = g->tx_next + tgen_below(&g->rng, 5);
		s = s >= 2 ? s - 2 : s;
		if (s >= g->next_rx)
			s = MSCOPE_NO_LINK;
		break;
	}
	*seq = s;
	if (s != MSCOPE_NO_LINK && s < g->next_rx && tgen_below(&g->rng, 4) != 0)
		*wire = g->rx_wire[s];
	else
		*wire = (uint32_t)tgen_next(&g->rng);
}

static inline struct mscope_record *
tgen_add(struct tgen *g)
{
	if (g->n == g->cap) {
		g->cap = g->cap ? 2 * g->cap : 256;
		g->recs = realloc(g->recs, g->cap * sizeof(*g->recs));
		if (g->recs == NULL)
			abort();
	}
	memset(&g->recs[g->n], 0, sizeof(g->recs[0]));
	return &g->recs[g->n++];
}

static inline void
tgen_rand_key(struct tgen_rng *rng, struct mscope_flow_key *k)
{
	memset(k, 0, sizeof(*k));
	switch (tgen_below(rng, 4)) {
	case 0:
		break;
	case 1:
		k->family = 6;
		for (int i = 0; i < 16; i++) {
			k->src[i] = (uint8_t)tgen_next(rng);
			k->dst[i] = (uint8_t)tgen_next(rng);
		}
		break;
	default:
		k->family = 4;
		for (int i = 0; i < 4; i++) {
			k->src[i] = (uint8_t)tgen_next(rng);
			k->dst[i] = (uint8_t)tgen_next(rng);
		}
		break;
	}
	k->proto = (uint8_t)tgen_next(rng);
	k->sport = (uint16_t)tgen_next(rng);
	k->dport = (uint16_t)tgen_next(rng);
}

/* Append one random record, whose flow refs may not be defined yet. */
static inline void
tgen_one_raw(struct tgen *g)
{
	struct mscope_record *rec = tgen_add(g);
	const unsigned kind = (unsigned)tgen_below(&g->rng, 20);

	g->tsc += tgen_tsc_step(g);
	if (kind < 8) {
		struct mscope_rx_burst *rx = &rec->u.rx;
		uint32_t *w;
		const uint32_t n = tgen_count(g);

		rec->type = MSCOPE_REC_RX;
		rx->tsc = g->tsc;
		rx->n = n;
		rx->first_seq = g->next_rx;
		rx->qdepth = tgen_below(&g->rng, 3) == 0 ? MSCOPE_QDEPTH_UNKNOWN :
			     (int32_t)tgen_below(&g->rng, tgen_below(&g->rng, 2) ? 100 : INT32_MAX);
		w = tgen_xmalloc(n * 4);
		for (uint32_t i = 0; i < n; i++)
			w[i] = (uint32_t)tgen_next(&g->rng);
		rx->wire_id = w;
		rx->flow = tgen_flows(g, n);
		if (n > 0 && tgen_below(&g->rng, 3) == 0) {
			uint64_t *ts = tgen_xmalloc(n * 8);

			for (uint32_t i = 0; i < n; i++)
				ts[i] = tgen_below(&g->rng, 4) ? g->tsc - tgen_below(&g->rng, 500) :
					tgen_next(&g->rng);
			rx->hw_ts = ts;
		}
		while (g->next_rx + n > g->rx_wire_cap) {
			g->rx_wire_cap = g->rx_wire_cap ? 2 * g->rx_wire_cap : 1024;
			g->rx_wire = realloc(g->rx_wire, g->rx_wire_cap * 4);
			if (g->rx_wire == NULL)
				abort();
		}
		if (n)
			memcpy(g->rx_wire + g->next_rx, w, n * 4);
		g->next_rx += n;
	} else if (kind < 14) {
		struct mscope_tx_burst *tx = &rec->u.tx;
		const bool fwd = tgen_below(&g->rng, 2);
		const uint32_t n = tgen_count(g);
		uint32_t *w = tgen_xmalloc(n * 4);
		uint64_t *s = tgen_xmalloc(n * 8);

		rec->type = MSCOPE_REC_TX;
		tx->tsc = g->tsc;
		tx->port = tgen_below(&g->rng, 4) ? 1 : (uint16_t)tgen_next(&g->rng);
		tx->queue = tgen_below(&g->rng, 4) ? 0 : (uint16_t)tgen_next(&g->rng);
		tx->accepted = n;
		tx->offered = n + (tgen_below(&g->rng, 3) ? 0 :
				   (uint32_t)tgen_below(&g->rng, tgen_below(&g->rng, 10) ? 64 :
							UINT32_MAX - n + 1ULL));
		for (uint32_t i = 0; i < n; i++)
			tgen_link(g, &s[i], &w[i], fwd);
		tx->wire_id = w;
		tx->rx_seq = s;
		if (tgen_below(&g->rng, 3) == 0)
			tx->flow = tgen_flows(g, n);
	} else if (kind < 16) {
		struct mscope_drop *d = &rec->u.drop;
		const uint32_t n = tgen_count(g);
		uint32_t *w = tgen_xmalloc(n * 4);
		uint64_t *s = tgen_xmalloc(n * 8);

		rec->type = MSCOPE_REC_DROP;
		d->tsc = g->tsc;
		d->reason = (uint8_t)(tgen_below(&g->rng, 5) ? tgen_below(&g->rng, 4) :
				      tgen_next(&g->rng));
		d->n = n;
		for (uint32_t i = 0; i < n; i++)
			tgen_link(g, &s[i], &w[i], false);
		d->wire_id = w;
		if (tgen_below(&g->rng, 2)) {
			d->rx_seq = s;
		} else {
			free(s);
		}
		if (tgen_below(&g->rng, 2))
			d->flow = tgen_flows(g, n);
	} else if (kind < 18) {
		rec->type = MSCOPE_REC_FLOW;
		rec->u.flow.ref = tgen_flow(g);
		tgen_rand_key(&g->rng, &rec->u.flow.key);
		g->tsc -= 0; /* flow records carry no time */
	} else if (kind < 19) {
		rec->type = MSCOPE_REC_LOSS;
		rec->u.loss.tsc = g->tsc;
		/* bounded like real losses: the reader refuses impossible counts */
		rec->u.loss.records = tgen_next(&g->rng) >> (24 + tgen_below(&g->rng, 40));
		rec->u.loss.packets = tgen_below(&g->rng, rec->u.loss.records * 4096 + 1);
	} else if (tgen_below(&g->rng, 2)) {
		rec->type = MSCOPE_REC_CLOCK;
		rec->u.clock.tsc = g->tsc;
		rec->u.clock.realtime_ns = (int64_t)tgen_next(&g->rng);
	} else {
		struct mscope_deleted *d = &rec->u.deleted;

		rec->type = MSCOPE_REC_DELETED;
		d->tsc = g->tsc;
		d->segment = (uint32_t)tgen_next(&g->rng);
		d->tsc_first = tgen_next(&g->rng) >> tgen_below(&g->rng, 64);
		d->tsc_last = tgen_next(&g->rng) >> tgen_below(&g->rng, 64);
		if (d->tsc_last > UINT64_MAX - d->tsc_first)
			d->tsc_last = UINT64_MAX - d->tsc_first;
		d->tsc_last += d->tsc_first;
		d->records = tgen_next(&g->rng) >> (24 + tgen_below(&g->rng, 40));
		d->packets = tgen_below(&g->rng, d->records * 4096 + 1);
	}
}

static inline bool
tgen_is_defined(const struct tgen *g, uint32_t ref)
{
	for (size_t i = 0; i < g->ndefined; i++)
		if (g->defined[i] == ref)
			return true;
	return false;
}

static inline void
tgen_mark_defined(struct tgen *g, uint32_t ref)
{
	if (tgen_is_defined(g, ref))
		return;
	g->defined = realloc(g->defined, (g->ndefined + 1) * sizeof(*g->defined));
	if (g->defined == NULL)
		abort();
	g->defined[g->ndefined++] = ref;
}

/* Insert FLOW records before record i for the refs it uses that no FLOW record defined. */
static inline void
tgen_define_flows(struct tgen *g, size_t i)
{
	const struct mscope_record *r = &g->recs[i];
	const uint32_t *f = NULL;
	uint32_t n = 0;

	if (r->type == MSCOPE_REC_RX) {
		f = r->u.rx.flow;
		n = r->u.rx.n;
	} else if (r->type == MSCOPE_REC_TX) {
		f = r->u.tx.flow;
		n = r->u.tx.accepted;
	} else if (r->type == MSCOPE_REC_DROP) {
		f = r->u.drop.flow;
		n = r->u.drop.n;
	} else if (r->type == MSCOPE_REC_FLOW) {
		tgen_mark_defined(g, r->u.flow.ref);
	}
	for (uint32_t k = 0; f && k < n; k++) {
		struct mscope_record def;

		if (tgen_is_defined(g, f[k]))
			continue;
		tgen_mark_defined(g, f[k]);
		memset(&def, 0, sizeof(def));
		def.type = MSCOPE_REC_FLOW;
		def.u.flow.ref = f[k];
		tgen_rand_key(&g->rng, &def.u.flow.key);
		tgen_add(g); /* room at the end, then shift record i up */
		memmove(&g->recs[i + 1], &g->recs[i], (g->n - 1 - i) * sizeof(*g->recs));
		g->recs[i] = def;
		i++;
		r = &g->recs[i];
		f = r->type == MSCOPE_REC_RX ? r->u.rx.flow : r->type == MSCOPE_REC_TX ?
		    r->u.tx.flow : r->u.drop.flow;
	}
}

/* Append one random record (after FLOW records defining the refs it uses). */
static inline void
tgen_one(struct tgen *g)
{
	tgen_one_raw(g);
	tgen_define_flows(g, g->n - 1);
}

static inline void
tgen_init(struct tgen *g, uint64_t seed, size_t n)
{
	memset(g, 0, sizeof(*g));
	g->rng.s = seed;
	g->nflows = 1 + (uint32_t)tgen_below(&g->rng, 300);
	g->tsc = tgen_below(&g->rng, 2) ? 0 : tgen_next(&g->rng) >> 20;
	for (size_t i = 0; i < n; i++)
		tgen_one(g);
}

static inline void
tgen_free(struct tgen *g)
{
	for (size_t i = 0; i < g->n; i++) {
		struct mscope_record *r = &g->recs[i];

		switch (r->type) {
		case MSCOPE_REC_RX:
			free((void *)r->u.rx.wire_id);
			free((void *)r->u.rx.flow);
			free((void *)r->u.rx.hw_ts);
			break;
		case MSCOPE_REC_TX:
			free((void *)r->u.tx.wire_id);
			free((void *)r->u.tx.rx_seq);
			free((void *)r->u.tx.flow);
			break;
		case MSCOPE_REC_DROP:
			free((void *)r->u.drop.wire_id);
			free((void *)r->u.drop.rx_seq);
			free((void *)r->u.drop.flow);
			break;
		default:
			break;
		}
	}
	free(g->recs);
	free(g->rx_wire);
	free(g->defined);
	memset(g, 0, sizeof(*g));
}

/* Write one record through the writer. */
static inline int
tgen_write(struct mscope_trace_writer *w, const struct mscope_record *r)
{
	switch (r->type) {
	case MSCOPE_REC_RX: return mscope_writer_rx(w, &r->u.rx);
	case MSCOPE_REC_TX: return mscope_writer_tx(w, &r->u.tx);
	case MSCOPE_REC_DROP: return mscope_writer_drop(w, &r->u.drop);
	case MSCOPE_REC_FLOW: return mscope_writer_flow(w, r->u.flow.ref, &r->u.flow.key);
	case MSCOPE_REC_LOSS: return mscope_writer_loss(w, &r->u.loss);
	case MSCOPE_REC_CLOCK: return mscope_writer_clock(w, &r->u.clock);
	case MSCOPE_REC_DELETED: return mscope_writer_deleted(w, &r->u.deleted);
	}
	return -1;
}

static inline bool
tgen_arr_eq(const void *a, const void *b, size_t n, size_t sz)
{
	if (n == 0)
		return true;
	if ((a == NULL) != (b == NULL))
		return false;
	return a == NULL || memcmp(a, b, n * sz) == 0;
}

/*
 * Compare an expected record with a decoded one; on mismatch write what
 * differs into why and return false.
 */
static inline bool
tgen_rec_eq(const struct mscope_record *e, const struct mscope_record *g, char *why,
	    size_t len)
{
#define DIFF(...) do { snprintf(why, len, __VA_ARGS__); return false; } while (0)
	if (e->type != g->type)
		DIFF("type %d != %d", e->type, g->type);
	switch (e->type) {
	case MSCOPE_REC_RX: {
		const struct mscope_rx_burst *a = &e->u.rx, *b = &g->u.rx;

		if (a->tsc != b->tsc || a->n != b->n || a->qdepth != b->qdepth ||
		    a->first_seq != b->first_seq)
			DIFF("rx scalar: tsc %" PRIu64 "/%" PRIu64 " n %u/%u q %d/%d seq %" PRIu64
			     "/%" PRIu64, a->tsc, b->tsc, a->n, b->n, a->qdepth, b->qdepth,
			     a->first_seq, b->first_seq);
		if (!tgen_arr_eq(a->wire_id, b->wire_id, a->n, 4))
			DIFF("rx wire");
		if (!tgen_arr_eq(a->flow, b->flow, a->n, 4))
			DIFF("rx flow");
		if (a->n && (a->hw_ts == NULL) != (b->hw_ts == NULL))
			DIFF("rx hw_ts presence");
		if (!tgen_arr_eq(a->hw_ts, b->hw_ts, a->n, 8))
			DIFF("rx hw_ts");
		break;
	}
	case MSCOPE_REC_TX: {
		const struct mscope_tx_burst *a = &e->u.tx, *b = &g->u.tx;

		if (a->tsc != b->tsc || a->port != b->port || a->queue != b->queue ||
		    a->offered != b->offered || a->accepted != b->accepted)
			DIFF("tx scalar");
		if (!tgen_arr_eq(a->wire_id, b->wire_id, a->accepted, 4))
			DIFF("tx wire");
		if (!tgen_arr_eq(a->rx_seq, b->rx_seq, a->accepted, 8))
			DIFF("tx rx_seq");
		if (a->accepted && (a->flow == NULL) != (b->flow == NULL))
			DIFF("tx flow presence");
		if (!tgen_arr_eq(a->flow, b->flow, a->accepted, 4))
			DIFF("tx flow");
		break;
	}
	case MSCOPE_REC_DROP: {
		const struct mscope_drop *a = &e->u.drop, *b = &g->u.drop;

		if (a->tsc != b->tsc || a->reason != b->reason || a->n != b->n)
			DIFF("drop scalar");
		if (!tgen_arr_eq(a->wire_id, b->wire_id, a->n, 4))
			DIFF("drop wire");
		if (a->n && ((a->rx_seq == NULL) != (b->rx_seq == NULL) ||
			     (a->flow == NULL) != (b->flow == NULL)))
			DIFF("drop array presence");
		if (!tgen_arr_eq(a->rx_seq, b->rx_seq, a->n, 8))
			DIFF("drop rx_seq");
		if (!tgen_arr_eq(a->flow, b->flow, a->n, 4))
			DIFF("drop flow");
		break;
	}
	case MSCOPE_REC_FLOW:
		if (e->u.flow.ref != g->u.flow.ref ||
		    memcmp(&e->u.flow.key, &g->u.flow.key, sizeof(e->u.flow.key)))
			DIFF("flow def");
		break;
	case MSCOPE_REC_LOSS:
		if (memcmp(&e->u.loss, &g->u.loss, sizeof(e->u.loss)))
			DIFF("loss");
		break;
	case MSCOPE_REC_CLOCK:
		if (e->u.clock.tsc != g->u.clock.tsc ||
		    e->u.clock.realtime_ns != g->u.clock.realtime_ns)
			DIFF("clock");
		break;
	case MSCOPE_REC_DELETED: {
		const struct mscope_deleted *a = &e->u.deleted, *b = &g->u.deleted;

		if (a->tsc != b->tsc || a->segment != b->segment || a->tsc_first != b->tsc_first ||
		    a->tsc_last != b->tsc_last || a->records != b->records ||
		    a->packets != b->packets)
			DIFF("deleted");
		break;
	}
	}
	return true;
#undef DIFF
}

static inline void tgen_header(struct mscope_trace_header *h, const char *nf);

/* Stream g written to path (zstd level 1, frames of frame_bytes, 0: the
 * default), header of node nf. Returns 0, or -1 with the reason on stderr. */
static inline int
tgen_write_file(const char *path, const struct tgen *g, const char *nf, size_t frame_bytes)
{
	struct mscope_trace_header h;
	struct mscope_trace_error err;
	struct mscope_writer_opts o = { .zstd_level = 1, .frame_bytes = frame_bytes };
	struct mscope_trace_writer *w;

	tgen_header(&h, nf);
	w = mscope_writer_open(path, &h, &o, &err);
	if (w == NULL) {
		fprintf(stderr, "%s: %s\n", path, err.text);
		return -1;
	}
	for (size_t i = 0; i < g->n; i++)
		if (tgen_write(w, &g->recs[i]) < 0) {
			fprintf(stderr, "%s: record %zu: %s\n", path, i,
				mscope_writer_error(w)->text);
			mscope_writer_close(w);
			return -1;
		}
	return mscope_writer_close(w) == 0 ? 0 : -1;
}

static inline void
tgen_header(struct mscope_trace_header *h, const char *nf)
{
	memset(h, 0, sizeof(*h));
	h->role = MSCOPE_ROLE_RXQ;
	h->port = 1;
	h->queue = 2;
	h->pid = 4242;
	h->tsc_hz = 2000000000ULL;
	h->anchor_tsc = 123456789;
	h->anchor_realtime_ns = 1700000000000000000LL;
	snprintf(h->nf_name, sizeof(h->nf_name), "%s", nf);
	snprintf(h->host, sizeof(h->host), "testhost");
	snprintf(h->run_id, sizeof(h->run_id), "run-1");
	snprintf(h->writer, sizeof(h->writer), "mscope-test");
	snprintf(h->writer_version, sizeof(h->writer_version), "0.1");
}

/*
 * A forwarding node's stream cut into nseg segments of `bursts` rx+tx burst
 * pairs each, written as segment files <dir>/s.<NNNNNN>.mst and, when one is
 * not NULL, as one file with the same records. Each segment (re)defines its
 * two flows first; its first tx links the last rx packet of the previous
 * segment. Returns 0, or -1 with the reason on stderr.
 */
static inline int
tgen_segments(const char *dir, unsigned nseg, unsigned bursts, const char *one)
{
	struct mscope_trace_header h;
	struct mscope_trace_error err;
	struct mscope_trace_writer *ws = NULL, *w1 = NULL;
	uint64_t seq = 0;
	char path[512];

	tgen_header(&h, "segs");
	h.tsc_hz = 1000000000;
	if (one && (w1 = mscope_writer_open(one, &h, NULL, &err)) == NULL)
		goto fail_open;
	for (unsigned k = 0; k < nseg; k++) {
		struct mscope_writer_opts o = { .rx_seq_start = seq, .frame_bytes = 300 };

		h.segment = k;
		snprintf(path, sizeof(path), "%s/s.%06u.mst", dir, k);
		ws = mscope_writer_open(path, &h, &o, &err);
		if (ws == NULL)
			goto fail_open;
		for (uint32_t f = 0; f < 2; f++) {
			struct mscope_flow_key key = { .family = 4, .proto = 17, .sport = (uint16_t)f,
						       .src = { 10, 0, 0, (uint8_t)k } };

			if (mscope_writer_flow(ws, f, &key) < 0 || (w1 && mscope_writer_flow(w1, f, &key) < 0))
				goto fail;
		}
		for (uint32_t b = 0; b < bursts; b++) {
			const uint64_t t = 1000000 + ((uint64_t)k * bursts + b) * 1000;
			uint32_t wire[4], flow[4];
			uint64_t s[4];
			struct mscope_rx_burst rx = { .tsc = t, .n = 4, .qdepth = (int32_t)b,
						      .wire_id = wire, .flow = flow };
			/* forward the previous burst's last packet and this burst's first three */
			struct mscope_tx_burst tx = { .tsc = t + 500, .port = 1, .offered = 4,
						      .accepted = 4, .wire_id = wire, .rx_seq = s };

			for (uint32_t i = 0; i < 4; i++) {
				wire[i] = (uint32_t)(seq + i) * 2654435761u;
				flow[i] = i & 1;
			}
			if (mscope_writer_rx(ws, &rx) < 0 || (w1 && mscope_writer_rx(w1, &rx) < 0))
				goto fail;
			for (uint32_t i = 0; i < 4; i++) {
				s[i] = seq + i == 0 ? MSCOPE_NO_LINK : seq + i - 1;
				wire[i] = (uint32_t)s[i] * 2654435761u;
			}
			if (mscope_writer_tx(ws, &tx) < 0 || (w1 && mscope_writer_tx(w1, &tx) < 0))
				goto fail;
			seq += 4;
		}
		if (mscope_writer_close(ws) < 0) {
			ws = NULL;
			fprintf(stderr, "tgen_segments: %s: close failed\n", path);
			return -1;
		}
		ws = NULL;
	}
	return w1 && mscope_writer_close(w1) < 0 ? -1 : 0;
fail:
	fprintf(stderr, "tgen_segments: %s\n", mscope_writer_error(ws)->text);
	mscope_writer_close(ws);
	mscope_writer_close(w1);
	return -1;
fail_open:
	fprintf(stderr, "tgen_segments: %s: %s\n", err.file, err.text);
	mscope_writer_close(w1);
	return -1;
}

/* Frame size of tgen_small_stream files: many tiny frames. */
static const struct mscope_writer_opts tgen_small_frames = { .zstd_level = 1, .frame_bytes = 64 };

/*
 * A small forwarding stream (a flow, 12 rx+tx bursts of 2 packets) in many
 * frames: the base of the fuzzer's seek-table inputs (mktrace small writes
 * the same file for the corpus). 0 / -1.
 */
static inline int
tgen_small_stream(struct mscope_trace_writer *w)
{
	const struct mscope_flow_key k = { .family = 4, .proto = 6 };

	if (mscope_writer_flow(w, 0, &k) < 0)
		return -1;
	for (uint32_t b = 0; b < 12; b++) {
		uint32_t wire[2] = { b, b + 100 }, flow[2] = { 0, 0 };
		uint64_t seq[2] = { 2 * b, 2 * b + 1 };
		struct mscope_rx_burst rx = { .tsc = 1000 + b * 10, .n = 2, .qdepth = -1,
					      .wire_id = wire, .flow = flow };
		struct mscope_tx_burst tx = { .tsc = 1005 + b * 10, .offered = 2, .accepted = 2,
					      .wire_id = wire, .rx_seq = seq };

		if (mscope_writer_rx(w, &rx) < 0 || mscope_writer_tx(w, &tx) < 0)
			return -1;
	}
	return mscope_writer_close(w);
}

/* For Criterion test files: a suite `name` whose tests share a fresh
 * directory `tmpdir` (mkdtemp of /tmp/mscope-<prefix>-XXXXXX), removed after
 * each test. Expanded only where criterion.h is included. */
#define TGEN_TMPDIR_SUITE(name, prefix)                                          \
	static char tmpdir[] = "/tmp/mscope-" prefix "-XXXXXX";                  \
	static void tgen_suite_setup(void)                                       \
	{                                                                        \
		cr_assert_not_null(mkdtemp(tmpdir));                             \
	}                                                                        \
	static void tgen_suite_teardown(void)                                    \
	{                                                                        \
		char cmd_[300];                                                  \
		snprintf(cmd_, sizeof(cmd_), "rm -rf '%s'", tmpdir);             \
		(void)system(cmd_);                                              \
	}                                                                        \
	TestSuite(name, .init = tgen_suite_setup, .fini = tgen_suite_teardown)

#endif /* MSCOPE_TGEN_H */
