/* SPDX-License-Identifier: BSD-3-Clause */
/* The incident scan of one node: one pass over its trace file(s), no
 * cross-node matching. Each packet's residence at the node is its departure
 * (tx) minus the earliest rx call at which it is known to have been in the
 * queue: an rx call at t that left q packets behind says that every packet
 * up to rx sequence number (dequeued so far + q) had arrived by t. Without
 * queue-depth samples the residence is departure minus dequeue. Residences
 * go into time bins by departure; drops by their time. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "incidents_private.h"

#define RING (1u << 16)       /* packets an NF may hold between rx and tx */
#define AQ (1u << 13)         /* arrival bounds kept */
#define NBUCK 320             /* log histogram: 8 buckets per power of two (ns) */

struct aq_ent {
	uint64_t t;               /* rx call time */
	uint64_t c;               /* packets known to have arrived by then */
};

struct scan {
	struct mscope_inc_scan *s;
	struct inc_node *nd;
	uint64_t *arr;            /* [RING] arrival bound of rx seq & (RING-1) */
	uint64_t seq_next;        /* next rx seq (continuous over segments) */
	uint64_t seq_off;         /* added to the file's seq (segments that restart at 0) */
	struct aq_ent *aq;
	uint32_t aq_head, aq_n;
	uint64_t bin_ticks;       /* current width in ticks (base << shift) */
	double ns_per_tick;
	int64_t live;             /* bin of the histogram, -1 none */
	uint64_t live_t0, live_t1; /* its time range */
	uint32_t hist[NBUCK];
	uint32_t hn;              /* packets in it */
	uint64_t hmax;
	uint64_t exact_seq;       /* shard: residences of packets below it need more look-back */
	int seen_rx;
};

static inline uint32_t
bucket(uint64_t ns)
{
	uint32_t e;

	if (ns < 8)
		return (uint32_t)ns;
	e = 63u - (uint32_t)__builtin_clzll(ns);
	if (e > 40)
		return NBUCK - 1;
	return 8 * (e - 2) + (uint32_t)((ns >> (e - 3)) & 7);
}

/* Middle of bucket b, ns. */
static double
bucket_mid(uint32_t b)
{
	uint32_t e, m;

	if (b < 8)
		return b;
	e = b / 8 + 2;
	m = b % 8;
	return (double)(8 + m) * (double)(1ull << (e - 3)) + (double)(1ull << (e - 3)) / 2;
}

void
inc_halve(struct inc_node *nd)
{
	uint32_t n = (nd->nbins + 1) / 2;

	for (uint32_t i = 0; i < n; i++) {
		struct inc_bin x = nd->bins[2 * i];
		if (2 * i + 1 < nd->nbins) {
			const struct inc_bin *y = &nd->bins[2 * i + 1];
			x.n += y->n;
			x.drops += y->drops;
			x.nf_drops += y->nf_drops;
			/* p99 of the union is at most the larger one */
			x.p99_us = x.p99_us > y->p99_us ? x.p99_us : y->p99_us;
			x.max_us = x.max_us > y->max_us ? x.max_us : y->max_us;
		}
		nd->bins[i] = x;
	}
	memset(nd->bins + n, 0, (nd->nbins - n) * sizeof(*nd->bins));
	nd->nbins = n;
	nd->shift++;
}

/* Double the bins' width until bin index b fits. */
static void
coarsen(struct scan *sc, uint64_t *b)
{
	while (*b >= INC_MAX_BINS) {
		inc_halve(sc->nd);
		sc->bin_ticks <<= 1;
		*b >>= 1;
		if (sc->live >= 0) {
			sc->live >>= 1;
			sc->live_t0 = sc->s->t0_tsc + (uint64_t)sc->live * sc->bin_ticks;
			sc->live_t1 = sc->live_t0 + sc->bin_ticks;
		}
	}
}

/* The bin of time t (>= the scan start), allocated. */
static struct inc_bin *
bin_at(struct scan *sc, uint64_t t)
{
	struct inc_node *nd = sc->nd;
	uint64_t b = (t - sc->s->t0_tsc) / sc->bin_ticks;

	if (b >= INC_MAX_BINS)
		coarsen(sc, &b);
	if (b >= nd->nbins)
		nd->nbins = (uint32_t)b + 1;
	return &nd->bins[b];
}

/* Close the live histogram into its bin. */
static void
flush(struct scan *sc)
{
	struct inc_bin *bn;
	uint32_t need, acc = 0, b;
	float p99, mx;

	if (sc->live < 0 || sc->hn == 0) {
		sc->live = -1;
		return;
	}
	bn = &sc->nd->bins[sc->live];
	/* p99: the ceil(0.99 n)-th smallest = the (n - that + 1)-th largest */
	need = sc->hn - (uint32_t)((uint64_t)sc->hn * 99 / 100 + ((uint64_t)sc->hn * 99 % 100 != 0)) + 1;
	for (b = bucket(sc->hmax) + 1; b-- > 0; ) {
		acc += sc->hist[b];
		if (acc >= need)
			break;
	}
	p99 = (float)(bucket_mid(b) / 1e3);
	mx = (float)((double)sc->hmax / 1e3);
	if (p99 > mx)
		p99 = mx;
	bn->n += sc->hn;
	if (p99 > bn->p99_us)
		bn->p99_us = p99;
	if (mx > bn->max_us)
		bn->max_us = mx;
	memset(sc->hist, 0, sizeof(sc->hist));
	sc->hn = 0;
	sc->hmax = 0;
	sc->live = -1;
}

static void
on_rx(struct scan *sc, const struct mscope_rx_burst *rx)
{
	uint64_t s0 = rx->first_seq + sc->seq_off, c;

	if (s0 < sc->seq_next) {
		/* a segment that restarts its numbering: links do not cross it */
		sc->seq_off += sc->seq_next - s0;
		s0 = sc->seq_next;
		sc->aq_n = 0;
	}
	if (!sc->seen_rx) {
		/* a shard's look-back starts here: packets queued before it are the
		 * ones below the first rx's queue-depth bound */
		sc->seen_rx = 1;
		if (sc->nd->read_from_tsc)
			sc->exact_seq = s0 + rx->n + (rx->qdepth > 0 ? (uint64_t)rx->qdepth : 0);
	}
	/* runs of packets under the same arrival bound (the head of aq, whose
	 * count covers them), each filled in one loop */
	for (uint64_t s = s0, end = s0 + rx->n; s < end; ) {
		uint64_t a = rx->tsc, stop = end;

		while (sc->aq_n && sc->aq[sc->aq_head].c <= s) {
			sc->aq_head = (sc->aq_head + 1) & (AQ - 1);
			sc->aq_n--;
		}
		if (sc->aq_n) {
			if (sc->aq[sc->aq_head].t < a)
				a = sc->aq[sc->aq_head].t;
			if (sc->aq[sc->aq_head].c < stop)
				stop = sc->aq[sc->aq_head].c;
		}
		for (; s < stop; s++)
			sc->arr[s & (RING - 1)] = a;
	}
	sc->seq_next = s0 + rx->n;
	if (rx->tsc >= sc->s->count_tsc)
		sc->nd->hops += rx->n;
	if (rx->qdepth > 0) {
		c = sc->seq_next + (uint64_t)rx->qdepth;
		if (sc->aq_n == 0 || c > sc->aq[(sc->aq_head + sc->aq_n - 1) & (AQ - 1)].c) {
			if (sc->aq_n == AQ) {    /* the oldest bound goes: still a lower bound */
				sc->aq_head = (sc->aq_head + 1) & (AQ - 1);
				sc->aq_n--;
			}
			sc->aq[(sc->aq_head + sc->aq_n) & (AQ - 1)] = (struct aq_ent){ rx->tsc, c };
			sc->aq_n++;
		}
	}
}

/* k packets that stayed `ticks`: into the histogram; the new maximum. */
static inline uint64_t
add_run(const struct scan *sc, uint32_t *hist, uint64_t ticks, uint32_t k, int scale,
	uint64_t hmax)
{
	uint64_t ns = scale ? (uint64_t)((double)ticks * sc->ns_per_tick) : ticks;

	hist[bucket(ns)] += k;
	return ns > hmax ? ns : hmax;
}

static void
on_tx(struct scan *sc, const struct mscope_tx_burst *tx)
{
	struct inc_node *nd = sc->nd;
	uint64_t b, seq_next = sc->seq_next, off = sc->seq_off, hmax = sc->hmax;
	const uint64_t *arr = sc->arr;
	uint32_t *hist = sc->hist, n = 0;
	const int scale = sc->ns_per_tick != 1.0;

	if (tx->tsc < sc->s->count_tsc)
		return;   /* a shard's look-back: state only */
	nd->packets += tx->accepted;
	if (tx->tsc < sc->s->t0_tsc || tx->accepted == 0)
		return;
	/* every packet of the burst left at tx->tsc: one bin (no division
	 * while it stays in the live one) */
	if (sc->live < 0 || tx->tsc < sc->live_t0 || tx->tsc >= sc->live_t1) {
		flush(sc);
		bin_at(sc, tx->tsc);
		b = (tx->tsc - sc->s->t0_tsc) / sc->bin_ticks;
		sc->live = (int64_t)b;
		sc->live_t0 = sc->s->t0_tsc + b * sc->bin_ticks;
		sc->live_t1 = sc->live_t0 + sc->bin_ticks;
		hmax = 0;
	}
	/* packets of one rx burst share their arrival bound: count runs of
	 * equal arrivals, convert and bucket once per run */
	uint64_t prev_a = 0;
	uint32_t run = 0;

	for (uint32_t i = 0; i < tx->accepted; i++) {
		uint64_t r = tx->rx_seq[i], a;

		if (r == MSCOPE_NO_LINK || (r += off) >= seq_next || seq_next - r > RING) {
			nd->unlinked++;
			continue;
		}
		if (r < sc->exact_seq)
			nd->inexact++;
		a = arr[r & (RING - 1)];
		if (run && a == prev_a) {
			run++;
			continue;
		}
		if (run)
			hmax = add_run(sc, hist, tx->tsc - prev_a, run, scale, hmax);
		n += run;
		prev_a = a;
		run = 1;
	}
	if (run)
		hmax = add_run(sc, hist, tx->tsc - prev_a, run, scale, hmax);
	n += run;
	sc->hn += n;
	sc->hmax = hmax;
}

static void
on_drop(struct scan *sc, const struct mscope_drop *d)
{
	struct inc_bin *bn;

	if (d->tsc < sc->s->count_tsc)
		return;
	if (d->reason == MSCOPE_DROP_QUEUE_FULL)
		sc->nd->hops += d->n;
	if (d->tsc < sc->s->t0_tsc)
		return;
	bn = bin_at(sc, d->tsc);
	if (d->reason == MSCOPE_DROP_NF)
		bn->nf_drops += d->n;
	else
		bn->drops += d->n;
	sc->nd->drops += d->n;
}

uint64_t
inc_read_start(const struct mscope_inc_scan *s, const struct inc_node *nd)
{
	/* --from/--to: from 100 ms before the window, so that the packets queued
	 * at its start are known */
	uint64_t slack = (uint64_t)(0.1 * nd->hz);

	if (s->opts.from_ns <= 0 && s->opts.to_ns < 0)
		return 0;
	return s->t0_tsc > slack ? s->t0_tsc - slack : 0;
}

static int
scan_file(struct scan *sc, const char *path, uint64_t *base)
{
	struct inc_node *nd = sc->nd;
	struct mscope_trace_error te;
	struct mscope_trace_reader *r = mscope_reader_open(path, &te);
	struct mscope_record rec;
	uint64_t off = 0, nrec = 0;
	int rc;

	if (r == NULL) {
		snprintf(nd->err, sizeof(nd->err), "%s: offset %llu: %s", te.file,
			(unsigned long long)te.offset, te.text);
		return -1;
	}
	/* neither wire IDs nor flows are needed: the reader skips them */
	mscope_reader_set_fields(r, MSCOPE_FIELDS_LEAN);
	if (nd->read_from_tsc || sc->s->opts.from_ns > 0 || sc->s->opts.to_ns >= 0) {
		/* only the frames of the window (the time index), from a look-back
		 * before it: a shard's, or that of --from/--to */
		uint64_t t0 = nd->read_from_tsc ? nd->read_from_tsc : inc_read_start(sc->s, nd);

		if (mscope_reader_window(r, t0, sc->s->t1_tsc, &te)) {
			snprintf(nd->err, sizeof(nd->err), "%s: offset %llu: %s", te.file,
				(unsigned long long)te.offset, te.text);
			mscope_reader_close(r);
			return -1;
		}
	}
	while ((rc = mscope_reader_next(r, &rec, &te)) == 1) {
		uint64_t t;

		switch (rec.type) {
		case MSCOPE_REC_RX:
			t = rec.u.rx.tsc;
			if (t > sc->s->t1_tsc)
				goto done;
			on_rx(sc, &rec.u.rx);
			break;
		case MSCOPE_REC_TX:
			t = rec.u.tx.tsc;
			if (t > sc->s->t1_tsc)
				goto done;
			on_tx(sc, &rec.u.tx);
			break;
		case MSCOPE_REC_DROP:
			t = rec.u.drop.tsc;
			if (t > sc->s->t1_tsc)
				goto done;
			on_drop(sc, &rec.u.drop);
			break;
		case MSCOPE_REC_DELETED:
			nd->deleted++;
			nd->deleted_packets += rec.u.deleted.packets;
			continue;
		default:
			continue;
		}
		if ((++nrec & 255) == 0 && mscope_reader_offset(r) != off) {
			off = mscope_reader_offset(r);
			__atomic_store_n(&nd->bytes_done, *base + off, __ATOMIC_RELAXED);
		}
	}
done:
	*base += mscope_reader_offset(r);
	mscope_reader_close(r);
	if (rc < 0)   /* a damaged or truncated tail: what was complete counts */
		snprintf(nd->warn, sizeof(nd->warn), "%s: offset %llu: %s (the rest of the file "
			"is not scanned)", te.file, (unsigned long long)te.offset, te.text);
	return 0;
}

int
inc_scan_node(void *ctx, struct inc_node *nd)
{
	struct mscope_inc_scan *s = ctx;
	struct scan sc;
	uint64_t base = 0;
	int rc = 0;

	if (nd->is_source)
		return 0;   /* arrivals are not needed: residence is measured at the NFs */
	memset(&sc, 0, sizeof(sc));
	sc.s = s;
	sc.nd = nd;
	sc.live = -1;
	sc.bin_ticks = (uint64_t)(s->bin_ticks + 0.5);
	if (sc.bin_ticks == 0)
		sc.bin_ticks = 1;
	sc.ns_per_tick = 1e9 / nd->hz;
	sc.exact_seq = nd->read_from_tsc ? UINT64_MAX : 0;
	nd->bins = calloc(INC_MAX_BINS, sizeof(*nd->bins));
	sc.arr = malloc(RING * sizeof(*sc.arr));
	sc.aq = malloc(AQ * sizeof(*sc.aq));
	if (nd->bins == NULL || sc.arr == NULL || sc.aq == NULL) {
		snprintf(nd->err, sizeof(nd->err), "%s: out of memory", nd->id);
		rc = -1;
		goto out;
	}
	for (size_t i = 0; i < nd->npaths && rc == 0; i++)
		rc = scan_file(&sc, nd->paths[i], &base);
	flush(&sc);
out:
	free(sc.arr);
	free(sc.aq);
	return rc;
}
