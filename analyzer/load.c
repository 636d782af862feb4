/* SPDX-License-Identifier: BSD-3-Clause */
/* Loading: every *.mst of a directory, streamed into compact per-hop arrays.
 * Files are decoded independently (one thread each at a time), then their
 * arrays are concatenated into the global hop arrays field by field so that
 * the peak stays near one copy of the data. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "an_internal.h"

#define MAX_FLOW_REF (1u << 22)

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Pass 0 counts, pass 1 writes straight into the global arrays (exact
 * sizes: no growth slack, no copies). */
static int
node_push(struct an_node *nd, int64_t d, int64_t e, uint32_t win, uint32_t wout,
		uint32_t flow, uint8_t fl)
{
	struct mscope_analysis *an = nd->an;
	uint32_t g;

	if (nd->counting) {
		nd->n++;
		return 0;
	}
	if (nd->n >= nd->cnt_rx)
		return -1;
	g = nd->base + nd->n;
	an->d[g] = d;
	an->e[g] = e;
	an->win[g] = win;
	an->wout[g] = wout;
	an->flow[g] = flow;
	an->fl[g] = fl;
	nd->n++;
	return 0;
}

static int
qfull_push(struct an_node *nd, int64_t e, uint32_t win, uint32_t flow)
{
	struct mscope_analysis *an = nd->an;
	uint32_t g;

	if (nd->counting) {
		nd->q_n++;
		return 0;
	}
	if (nd->q_n >= nd->cnt_q)
		return -1;
	g = nd->base + nd->cnt_rx + (uint32_t)nd->q_n;
	an->d[g] = e;
	an->e[g] = e;
	an->win[g] = win;
	an->wout[g] = 0;
	an->flow[g] = flow;
	an->fl[g] = H_QFULL | H_DROP;
	nd->q_n++;
	return 0;
}

/* A hop the NF freed by its own decision (pass 1 only). */
static int
nfd_push(struct an_node *nd, uint32_t h)
{
	uint32_t *p = an_grow(nd->nfd, &nd->nfd_cap, nd->nnfd + 1, sizeof(*nd->nfd));

	if (p == NULL)
		return -1;
	nd->nfd = p;
	nd->nfd[nd->nnfd++] = h;
	return 0;
}

/* Local flow index + 1 of a reference, 0 when undefined. */
static uint32_t
flow_local(struct an_node *nd, const uint32_t *flows, uint32_t i)
{
	uint32_t ref;

	if (flows == NULL)
		return 0;
	ref = flows[i];
	if (ref >= nd->ref_cap || nd->ref2local[ref] == 0) {
		nd->undef_flow++;
		return 0;
	}
	return nd->ref2local[ref];
}

static int
def_flow(struct an_node *nd, const struct mscope_flow_def *fd, struct mscope_an_error *err)
{
	struct mscope_flow_key k;

	if (fd->ref >= MAX_FLOW_REF) {
		an_err(err, "%s: flow reference %u is too large (limit %u)", nd->file,
			fd->ref, MAX_FLOW_REF);
		return -1;
	}
	if (fd->ref >= nd->ref_cap) {
		uint32_t cap = nd->ref_cap ? nd->ref_cap : 256;
		uint32_t *p;
		while (cap <= fd->ref)
			cap *= 2;
		p = realloc(nd->ref2local, cap * sizeof(*p));
		if (p == NULL)
			goto oom;
		memset(p + nd->ref_cap, 0, (cap - nd->ref_cap) * sizeof(*p));
		nd->ref2local = p;
		nd->ref_cap = cap;
	}
	if (nd->nfkeys + 1 > nd->fkeys_cap) {
		size_t cap = nd->fkeys_cap;
		void *p = an_grow(nd->fkeys, &cap, nd->nfkeys + 1, sizeof(*nd->fkeys));
		if (p == NULL)
			goto oom;
		nd->fkeys = p;
		nd->fkeys_cap = (uint32_t)cap;
	}
	/* Normalise so that keys compare bytewise. */
	memset(&k, 0, sizeof(k));
	k.family = fd->key.family;
	k.proto = fd->key.proto;
	k.sport = fd->key.sport;
	k.dport = fd->key.dport;
	if (k.family == 4) {
		memcpy(k.src, fd->key.src, 4);
		memcpy(k.dst, fd->key.dst, 4);
	} else if (k.family == 6) {
		memcpy(k.src, fd->key.src, 16);
		memcpy(k.dst, fd->key.dst, 16);
	} else {
		k.family = 0;
		k.proto = 0;
		k.sport = k.dport = 0;
	}
	nd->fkeys[nd->nfkeys] = k;
	nd->ref2local[fd->ref] = ++nd->nfkeys;
	return 0;
oom:
	an_err(err, "%s: out of memory", nd->file);
	return -1;
}

static int64_t
conv(const struct an_node *nd, uint64_t tsc)
{
	if (nd->conv_identity)
		return (int64_t)(tsc & INT64_MAX);
	return (int64_t)llround((double)tsc * nd->conv_scale + nd->conv_offset);
}

/* Map an rx sequence number of this file to a local hop index. */
static uint32_t
seq_hop(const struct an_node *nd, uint64_t seq)
{
	size_t lo = 0, hi = nd->nsegs;

	if (nd->nsegs == 0 || seq < nd->segs[0].seq0 || seq >= nd->seq_next)
		return NO_HOP;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (nd->segs[mid].seq0 <= seq)
			lo = mid;
		else
			hi = mid;
	}
	return nd->segs[lo].hop0 + (uint32_t)(seq - nd->segs[lo].seq0);
}

/* Packets start the run: a collector writes a clock record when its NF
 * starts, long before the first packet (and flow definitions have no time). */
static bool
is_packet_rec(const struct mscope_record *rec)
{
	return rec->type == MSCOPE_REC_RX || rec->type == MSCOPE_REC_TX ||
		rec->type == MSCOPE_REC_DROP;
}

/* A record's time (raw TSC; 0 for a flow definition, which has none). */
static uint64_t
rec_tsc(const struct mscope_record *rec)
{
	uint64_t t;

	mscope_record_tsc(rec, &t);
	return t;
}

/* A node's reader: its file, or its segment files as one stream. */
static struct mscope_trace_reader *
open_node(const struct an_node *nd, struct mscope_trace_error *terr)
{
	if (nd->npaths > 1)
		return mscope_reader_open_segments((const char *const *)nd->paths, nd->npaths, terr);
	return mscope_reader_open(nd->file, terr);
}

/* A link to an rx packet before the part of the file that was read (a
 * windowed load starts inside the file): outside the analysis, not an error. */
static bool
pre_window(const struct an_node *nd, uint64_t seq)
{
	return !nd->from_start && seq != MSCOPE_NO_LINK &&
		(nd->nsegs == 0 || seq < nd->segs[0].seq0);
}

static int
load_node(struct an_node *nd, struct mscope_an_error *err)
{
	struct mscope_trace_error terr;
	struct mscope_trace_reader *r;
	struct mscope_record rec;
	int64_t last = INT64_MIN;
	int rc;

	r = open_node(nd, &terr);
	if (r == NULL) {
		an_err(err, "%s: %s (offset %llu)", terr.file[0] ? terr.file : nd->file, terr.text,
			(unsigned long long)terr.offset);
		return -1;
	}
	if (!nd->from_start && mscope_reader_window(r, nd->rd_tsc0, nd->rd_tsc1, &terr)) {
		an_err(err, "%s: %s (offset %llu)", nd->file, terr.text,
			(unsigned long long)terr.offset);
		mscope_reader_close(r);
		return -1;
	}
	while ((rc = mscope_reader_next(r, &rec, &terr)) == 1) {
		int64_t t;
		uint64_t raw;

		raw = rec_tsc(&rec);
		t = conv(nd, raw);
		if (is_packet_rec(&rec) && nd->from_start && nd->first_t == INT64_MAX)
			nd->first_t = t;    /* the file's first packet: the run's start */
		if (rec.type != MSCOPE_REC_FLOW) {
			if (t < last) {
				/* Keep time monotone per file: the dequeue counts rely on it. */
				nd->backsteps++;
				if (last - t > nd->max_backstep)
					nd->max_backstep = last - t;
				t = last;
			}
			last = t;
		}
		switch (rec.type) {
		case MSCOPE_REC_FLOW:
			if (def_flow(nd, &rec.u.flow, err))
				goto fail;
			break;
		case MSCOPE_REC_RX: {
			const struct mscope_rx_burst *rx = &rec.u.rx;

			if (nd->is_source) {
				nd->src_rx += rx->n;
				break;
			}
			if (rx->n == 0)
				break;
			/* The reader numbers rx packets; a gap (writer loss) starts a segment. */
			if (nd->nsegs == 0 || rx->first_seq != nd->seq_next) {
				if (nd->nsegs && rx->first_seq < nd->seq_next) {
					an_err(err, "%s: rx sequence numbers go backwards (%llu after %llu)",
						nd->file, (unsigned long long)rx->first_seq,
						(unsigned long long)nd->seq_next);
					goto fail;
				}
				void *p = an_grow(nd->segs, &nd->segs_cap, nd->nsegs + 1,
						sizeof(*nd->segs));
				if (p == NULL)
					goto oom;
				nd->segs = p;
				nd->segs[nd->nsegs].seq0 = rx->first_seq;
				nd->segs[nd->nsegs].hop0 = nd->n;
				nd->nsegs++;
			}
			if ((uint64_t)nd->n + rx->n >= UINT32_MAX / 2) {
				an_err(err, "%s: too many packets", nd->file);
				goto fail;
			}
			for (uint32_t i = 0; i < rx->n; i++)
				if (node_push(nd, t, INT64_MIN, rx->wire_id[i], 0,
						flow_local(nd, rx->flow, i), i == 0 ? H_BURST : 0))
					goto oom;
			nd->seq_next = rx->first_seq + rx->n;
			if (rx->qdepth > 0 && !nd->counting) {
				void *p = an_grow(nd->qd, &nd->qd_cap, nd->nqd + 1, sizeof(*nd->qd));
				if (p == NULL)
					goto oom;
				nd->qd = p;
				nd->qd[nd->nqd].hop = nd->n - rx->n;
				nd->qd[nd->nqd].qdepth = rx->qdepth;
				nd->nqd++;
			}
			break;
		}
		case MSCOPE_REC_TX: {
			const struct mscope_tx_burst *tx = &rec.u.tx;

			if (!nd->is_source && nd->counting)
				break;
			if (nd->is_source) {
				if ((uint64_t)nd->n + tx->accepted >= UINT32_MAX / 2) {
					an_err(err, "%s: too many packets", nd->file);
					goto fail;
				}
				for (uint32_t i = 0; i < tx->accepted; i++)
					if (node_push(nd, t, t, 0, tx->wire_id[i],
							flow_local(nd, tx->flow, i), H_TX | H_SRC))
						goto oom;
				break;
			}
			for (uint32_t i = 0; i < tx->accepted; i++) {
				uint32_t h;

				if (tx->rx_seq[i] == MSCOPE_NO_LINK) {
					nd->nolink++;
					continue;
				}
				if (pre_window(nd, tx->rx_seq[i]))
					continue;
				h = seq_hop(nd, tx->rx_seq[i]);
				if (h == NO_HOP || h >= nd->n) {
					nd->badlink++;
					continue;
				}
				if (nd->ld_fl[h] & H_TX) {
					nd->duptx++;
					continue;
				}
				nd->ld_fl[h] |= H_TX;
				nd->ld_fl[h] &= (uint8_t)~H_DROP;
				nd->ld_e[h] = t;
				nd->ld_wout[h] = tx->wire_id[i];
			}
			break;
		}
		case MSCOPE_REC_DROP: {
			const struct mscope_drop *dr = &rec.u.drop;

			if (nd->is_source)
				break;
			for (uint32_t i = 0; i < dr->n; i++) {
				if (dr->rx_seq != NULL && dr->rx_seq[i] != MSCOPE_NO_LINK) {
					if (nd->counting)
						continue;
					if (pre_window(nd, dr->rx_seq[i]))
						continue;
					uint32_t h = seq_hop(nd, dr->rx_seq[i]);
					if (h == NO_HOP || h >= nd->n) {
						nd->badlink++;
						continue;
					}
					if (!(nd->ld_fl[h] & H_TX)) {
						nd->ld_fl[h] |= H_DROP;
						nd->ld_e[h] = t;
						if (dr->reason == MSCOPE_DROP_NF &&
								nfd_push(nd, h))
							goto oom;
					}
				} else {
					/* Never dequeued: arrived at a full input queue. */
					if (qfull_push(nd, t, dr->wire_id[i],
							flow_local(nd, dr->flow, i)))
						goto oom;
				}
			}
			break;
		}
		case MSCOPE_REC_LOSS:
			nd->loss_records += rec.u.loss.records;
			nd->loss_packets += rec.u.loss.packets;
			break;
		case MSCOPE_REC_DELETED:
			nd->del_segments++;
			nd->del_records += rec.u.deleted.records;
			nd->del_packets += rec.u.deleted.packets;
			break;
		case MSCOPE_REC_CLOCK: {
			/* Another TSC <-> realtime pair: how far does it drift from the header's? */
			double hz = (double)nd->hdr.tsc_hz;
			double pred = (double)nd->hdr.anchor_realtime_ns +
				((double)rec.u.clock.tsc - (double)nd->hdr.anchor_tsc) * 1e9 / hz;
			int64_t dis = (int64_t)fabs(pred - (double)rec.u.clock.realtime_ns);
			if (dis > nd->clock_disagree_ns)
				nd->clock_disagree_ns = dis;
			break;
		}
		default:
			break;
		}
	}
	if (rc < 0) {
		/* A truncated or damaged tail: keep what was complete, say what is missing. */
		an_err(err, "%s: %s (offset %llu)", nd->file, terr.text,
			(unsigned long long)terr.offset);
		mscope_reader_close(r);
		return 1;
	}
	mscope_reader_close(r);
	return 0;
oom:
	an_err(err, "%s: out of memory, or the file changed while being read", nd->file);
fail:
	mscope_reader_close(r);
	return -1;
}

/* The last 4 bytes of a trace its writer closed: the seek table's magic
 * "MSIX" (docs/trace-format.md). Without it the writer was killed, or the
 * disk was full: the end of the recording may be missing. */
#define TRACE_CLOSED_MAGIC 0x5849534Du

static bool
trace_closed(const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char b[4];
	bool ok = false;

	if (f == NULL)
		return true;    /* not ours to judge: reading will say what is wrong */
	if (fseeko(f, -4, SEEK_END) == 0 && fread(b, 1, 4, f) == 4)
		ok = ((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
			(uint32_t)b[3] << 24) == TRACE_CLOSED_MAGIC;
	fclose(f);
	return ok;
}

static void
check_closed(struct mscope_analysis *an, struct an_node *nd)
{
	size_t n = nd->npaths > 1 ? nd->npaths : 1;

	for (size_t i = 0; i < n; i++) {
		const char *p = nd->npaths > 1 ? nd->paths[i] : nd->file;
		if (trace_closed(p))
			continue;
		nd->no_index = true;
		/* a few by name, then one line for all */
		if (an->traces_unfinished++ < 3)
			an_warn(an, "%s: ends without its seek table (writer killed, disk full, or a writer older than the index?): records of its last moments may be missing; a window reads it whole",
				p);
	}
}

/* `<trace>.lost`: what the collector could not record in the trace itself
 * (it could not write there any more): one JSON line,
 * {"mscope_lost": 1, "records": R, "packets": P, ...} (docs/collector.md).
 * Added to the node's losses. */
static int
lost_sidecar(struct mscope_analysis *an, struct an_node *nd, const char *trace)
{
	json_int_t r = -1, p = -1;
	json_error_t jerr;
	json_t *doc;
	char *path;

	if (asprintf(&path, "%s.lost", trace) < 0)
		return -1;
	if (access(path, F_OK) != 0) {
		free(path);
		return 0;
	}
	doc = json_load_file(path, JSON_DISABLE_EOF_CHECK, &jerr);
	if (doc == NULL || json_unpack(doc, "{s:I, s:I}", "records", &r, "packets", &p) ||
			r < 0 || p < 0) {
		an_warn(an, "%s: not a collector loss file (a JSON line with records and packets); the collector lost an unknown part of %s",
			path, trace);
		nd->lost_unknown = true;
	} else {
		nd->sidecar_records += (uint64_t)r;
		nd->sidecar_packets += (uint64_t)p;
		nd->loss_records += (uint64_t)r;
		nd->loss_packets += (uint64_t)p;
		an_warn(an, "%s: the collector could not write %lld records (%lld packets) into the trace",
			path, (long long)r, (long long)p);
	}
	json_decref(doc);
	free(path);
	return 0;
}

/* Forget what pass 0 learnt, keep its counts. */
static void
node_reset(struct an_node *nd)
{
	nd->cnt_rx = nd->n;
	nd->cnt_q = (uint32_t)nd->q_n;
	nd->n = 0;
	nd->q_n = 0;
	free(nd->fkeys);
	nd->fkeys = NULL;
	nd->nfkeys = nd->fkeys_cap = 0;
	free(nd->ref2local);
	nd->ref2local = NULL;
	nd->ref_cap = 0;
	nd->nsegs = 0;
	nd->nqd = 0;
	nd->nnfd = 0;
	nd->seq_next = 0;
	nd->loss_records = nd->loss_packets = 0;
	nd->del_segments = nd->del_records = nd->del_packets = 0;
	nd->backsteps = 0;
	nd->max_backstep = 0;
	nd->nolink = nd->badlink = nd->duptx = nd->undef_flow = nd->src_rx = 0;
	nd->tx_before_rx = 0;
	nd->clock_disagree_ns = 0;
}


/* ---------------------------------------------------------------- windows
 * With --from/--to only a region of the run is analysed, the same whether
 * the whole trace was read (opts.no_index) or only the frames the index
 * points at: per rx queue, from a burst where its queue was empty (so that
 * no queuing period is cut) at least `context` before the window, to the
 * window's end plus `context` (victims that entered in it leave later);
 * sources and upstream NFs reach back to what those packets came from. */
#define BURST_FULL 32           /* rx_burst returned fewer: it drained the queue */
#define SLACK_NS 10000000       /* longest rx-to-tx time expected inside an NF */

static int64_t
ns_ticks(const struct mscope_analysis *an, int64_t ns)
{
	return (int64_t)((double)ns * an->hz / 1e9);
}

static bool
has_qd(const struct an_node *nd, uint32_t hop)
{
	size_t lo = 0, hi = nd->nqd;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (nd->qd[mid].hop < hop)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < nd->nqd && nd->qd[lo].hop == hop;
}

/* The last rx burst dequeued at or before t whose queue was empty when it
 * came: the burst before it drained the queue (returned fewer than a full
 * burst, no depth left) and had sent every packet by then. *first: its first
 * hop, *anchor: when the queue was drained (its packets came after).
 * Returns 1 when the data read starts after the search would have to go. */
static int
empty_point(const struct mscope_analysis *an, struct an_node *nd, int64_t t,
		uint32_t *first, int64_t *anchor)
{
	const uint32_t b = nd->base, n = nd->n;
	uint32_t s = 0, hi = n;

	while (s < hi) {            /* first hop dequeued after t */
		uint32_t mid = s + (hi - s) / 2;
		if (an->d[b + mid] <= t)
			s = mid + 1;
		else
			hi = mid;
	}
	if (s == n) {               /* nothing after t: nothing of it is needed */
		*first = n;
		*anchor = INT64_MAX;
		return 0;
	}
	while (s > 0 && !(an->fl[b + s] & H_BURST))
		s--;
	while (s > 0) {
		uint32_t p = s - 1;
		int64_t emax = INT64_MIN;

		while (p > 0 && !(an->fl[b + p] & H_BURST))
			p--;
		for (uint32_t h = p; h < s; h++)
			if ((an->fl[b + h] & (H_TX | H_DROP)) && an->e[b + h] > emax)
				emax = an->e[b + h];
		if (s - p < BURST_FULL && !has_qd(nd, p) && emax <= an->d[b + s]) {
			*first = s;
			*anchor = an->d[b + p];
			return 0;
		}
		s = p;
	}
	*first = 0;
	*anchor = an->d[b];
	return nd->from_start ? 0 : 1;
}

static void
move_hop(struct mscope_analysis *an, uint32_t to, uint32_t from)
{
	an->d[to] = an->d[from];
	an->e[to] = an->e[from];
	an->win[to] = an->win[from];
	an->wout[to] = an->wout[from];
	an->flow[to] = an->flow[from];
	an->fl[to] = an->fl[from];
}

/* Keep hops [lo, hi) of the rx hops and the queue-full drops with times in
 * [qlo, qhi] of node nd, moved down to `base` (nodes are compacted in order). */
static void
keep_hops(struct mscope_analysis *an, struct an_node *nd, uint32_t base, uint32_t lo,
		uint32_t hi, int64_t qlo, int64_t qhi, int64_t ev_max)
{
	uint32_t o = base, b = nd->base, nq = 0;

	for (uint32_t h = lo; h < hi; h++, o++) {
		move_hop(an, o, b + h);
		/* events after the region's end are not seen */
		if ((an->fl[o] & (H_TX | H_DROP)) && an->e[o] > ev_max && !nd->is_source) {
			an->fl[o] &= (uint8_t)~(H_TX | H_DROP);
			an->e[o] = INT64_MIN;
			an->wout[o] = 0;
		}
	}
	for (uint32_t h = nd->n; h < nd->n + (uint32_t)nd->q_n; h++) {
		if (an->e[b + h] < qlo || an->e[b + h] > qhi)
			continue;
		move_hop(an, o, b + h);
		o++;
		nq++;
	}
	/* hop numbers kept per node: queue depth samples, NF drops */
	size_t k = 0;
	for (size_t i = 0; i < nd->nqd; i++)
		if (nd->qd[i].hop >= lo && nd->qd[i].hop < hi) {
			nd->qd[k] = nd->qd[i];
			nd->qd[k++].hop -= lo;
		}
	nd->nqd = k;
	k = 0;
	for (size_t i = 0; i < nd->nnfd; i++)
		if (nd->nfd[i] >= lo && nd->nfd[i] < hi)
			nd->nfd[k++] = nd->nfd[i] - lo;
	nd->nnfd = k;
	if (lo > 0)
		an->fl[base] |= H_BURST;
	nd->base = base;
	nd->n = hi - lo;
	nd->q_n = nq;
	nd->cnt_rx = nd->n;
	nd->cnt_q = nq;
}

/* A wall-clock window (opts.from_clock/to_clock) as times from the run's
 * start, through the clock reference's realtime anchor. */
static int
clock_window(struct mscope_analysis *an, struct mscope_an_error *err)
{
	int64_t rt0 = an_realtime(an, an->run_start);
	const char *txt[2] = { an->opts.from_clock, an->opts.to_clock };
	int64_t *dst[2] = { &an->opts.from_ns, &an->opts.to_ns };

	for (int i = 0; i < 2; i++) {
		int64_t ns;
		if (txt[i] == NULL)
			continue;
		if (mscope_an_parse_clock(txt[i], rt0, &ns)) {
			an_err(err, "--%s '%s': not a wall-clock time (14:32:05.250 or 2026-12-08T14:32:05Z)",
				i ? "to" : "from", txt[i]);
			return -1;
		}
		*dst[i] = ns - rt0;
		if (*dst[i] < 0) {
			time_t t0 = (time_t)(rt0 / 1000000000);
			struct tm tm;
			char when[64] = "?";
			if (localtime_r(&t0, &tm))
				strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z", &tm);
			if (i == 1) {
				an_err(err, "--to '%s' is before the run started (%s)", txt[i], when);
				return -1;
			}
			*dst[i] = 0;
		}
	}
	an->opts.from_clock = an->opts.to_clock = NULL;
	if (an->opts.to_ns >= 0 && an->opts.to_ns < an->opts.from_ns) {
		an_err(err, "the window ends (--to %.3f ms) before it starts (--from %.3f ms)",
			(double)an->opts.to_ns / 1e6, (double)an->opts.from_ns / 1e6);
		return -1;
	}
	return 0;
}

/* A window that starts after the last record of every trace. */
static int
window_after_end(struct mscope_analysis *an, struct mscope_an_error *err)
{
	if (an->run_start + ns_ticks(an, an->opts.from_ns) <= an->run_last)
		return 0;
	an_err(err, "the window starts (--from %.3f ms) after the run ended (%.3f ms from its start)",
		(double)an->opts.from_ns / 1e6, an_us(an, an->run_last - an->run_start) / 1e3);
	return -1;
}

/* The window with its context, in ticks: [*start, *end]. */
static void
window_bounds(const struct mscope_analysis *an, int64_t *start, int64_t *end)
{
	const struct mscope_an_opts *o = &an->opts;
	int64_t ctx = ns_ticks(an, o->context_ns > 0 ? o->context_ns : 0);

	*start = an->run_start + ns_ticks(an, o->from_ns) - ctx;
	*end = o->to_ns < 0 ? INT64_MAX / 4 : an->run_start + ns_ticks(an, o->to_ns) + ctx;
}

/* Raw TSC of a time in the common tick domain, in a node's own clock. */
static uint64_t
node_tsc(const struct an_node *nd, int64_t t)
{
	double x;

	if (t <= 0)
		return 0;
	if (nd->conv_identity)
		return (uint64_t)t;
	x = ((double)t - nd->conv_offset) / nd->conv_scale;
	return x <= 0 ? 0 : x >= 1.8e19 ? UINT64_MAX : (uint64_t)x;
}

/* The time index of every file (once): frame times, the run's start (the
 * earliest record: the first one that is not a flow definition). */
static int
read_indexes(struct mscope_analysis *an, struct mscope_an_error *err)
{
	for (uint32_t k = 0; k < an->nnodes; k++) {
		struct an_node *nd = &an->nodes[k];
		struct mscope_trace_error terr;
		const struct mscope_frame_info *fi;
		struct mscope_trace_reader *r = open_node(nd, &terr);
		struct mscope_record rec;
		size_t n;
		int rebuilt, rc;

		if (r == NULL || mscope_reader_index(r, &fi, &n, &rebuilt, &terr)) {
			an_err(err, "%s: %s (offset %llu)", terr.file[0] ? terr.file : nd->file,
				terr.text, (unsigned long long)terr.offset);
			mscope_reader_close(r);
			return -1;
		}
		nd->no_index = rebuilt != 0;
		nd->nframes = n;
		nd->frame_t = malloc((n ? n : 1) * 2 * sizeof(*nd->frame_t));
		if (nd->frame_t == NULL) {
			mscope_reader_close(r);
			an_err(err, "out of memory (index)");
			return -1;
		}
		for (size_t i = 0; i < n; i++) {
			nd->frame_t[2 * i] = conv(nd, fi[i].tsc_first);
			nd->frame_t[2 * i + 1] = conv(nd, fi[i].tsc_last);
		}
			an->frames_total += n;
		if (n && nd->frame_t[2 * n - 1] > an->run_last)
			an->run_last = nd->frame_t[2 * n - 1];
		while ((rc = mscope_reader_next(r, &rec, &terr)) == 1 && !is_packet_rec(&rec))
			;
		if (rc == 1) {
			nd->first_t = conv(nd, rec_tsc(&rec));
		}
		mscope_reader_close(r);
	}
	an->run_start = INT64_MAX;
	for (uint32_t k = 0; k < an->nnodes; k++)
		if (an->nodes[k].first_t < an->run_start)
			an->run_start = an->nodes[k].first_t;
	if (an->run_start == INT64_MAX)
		an->run_start = 0;
	return clock_window(an, err) || window_after_end(an, err) ? -1 : 0;
}

/* Which frames of every file a windowed analysis reads: those from well
 * before the window's context (its queues must be seen empty, and where
 * their packets came from) to its end; further back on every retry. */
static int
plan_window(struct mscope_analysis *an, int attempt, struct mscope_an_error *err)
{
	int64_t start, end, t0, t1, back = ns_ticks(an, 10000000);

	if (attempt == 0 && read_indexes(an, err))
		return -1;
	window_bounds(an, &start, &end);
	for (int i = 0; i < attempt && back < INT64_MAX / 16; i++)
		back *= 4;
	t0 = start - 2 * ns_ticks(an, SLACK_NS) - back;
	t1 = end >= INT64_MAX / 4 ? INT64_MAX / 4 : end + ns_ticks(an, SLACK_NS);
	an->frames_read = 0;
	for (uint32_t k = 0; k < an->nnodes; k++) {
		struct an_node *nd = &an->nodes[k];
		nd->from_start = t0 <= nd->first_t || attempt >= 12;
		nd->load_t0 = t0;
		nd->rd_tsc0 = node_tsc(nd, t0);
		nd->rd_tsc1 = t1 >= INT64_MAX / 4 ? UINT64_MAX : node_tsc(nd, t1);
		for (size_t i = 0; i < nd->nframes; i++)
			if (nd->from_start ? nd->frame_t[2 * i] <= t1 :
					nd->frame_t[2 * i + 1] >= t0 && nd->frame_t[2 * i] <= t1)
				an->frames_read++;
		if (nd->from_start)
			nd->first_t = INT64_MAX;    /* read again from the records */
	}
	return 0;
}

/* The window's region of every node, then the hop arrays cut to it.
 * @return 0, 1 when a windowed load must read further back, -1 error. */
static int
region(struct mscope_analysis *an, struct mscope_an_error *err)
{
	int64_t slack = ns_ticks(an, SLACK_NS);
	int64_t g = INT64_MAX, g2 = INT64_MAX, start, end;
	uint32_t *lo = calloc(an->nnodes, sizeof(*lo)), base = 0;
	int more = 0;

	if (lo == NULL) {
		an_err(err, "out of memory (window)");
		return -1;
	}
	an->run_start = INT64_MAX;
	for (uint32_t k = 0; k < an->nnodes; k++)
		if (an->nodes[k].first_t < an->run_start)
			an->run_start = an->nodes[k].first_t;
	if (an->run_start == INT64_MAX)
		an->run_start = 0;
	if (an->opts.no_index)
		for (uint32_t k = 0; k < an->nnodes; k++) {
			const struct an_node *nd = &an->nodes[k];
			for (uint32_t h = 0; h < nd->n + (uint32_t)nd->q_n; h++) {
				uint32_t g = nd->base + h;
				int64_t t = (an->fl[g] & (H_TX | H_DROP)) && an->e[g] > an->d[g] ?
					an->e[g] : an->d[g];
				if (t > an->run_last)
					an->run_last = t;
			}
		}
	if (clock_window(an, err) || window_after_end(an, err)) {
		free(lo);
		return -1;
	}
	window_bounds(an, &start, &end);
	/* Queues empty before the context; then again before the upstream tx
	 * of what those queues held (one level of slack, not a fixpoint: the
	 * hops before that are context, not diagnosed). */
	for (int round = 0; round < 2; round++) {
		int64_t t = round == 0 ? start : g - slack;
		for (uint32_t k = 0; k < an->nnodes; k++) {
			struct an_node *nd = &an->nodes[k];
			int64_t anchor;
			if (nd->is_source)
				continue;
			if (empty_point(an, nd, t, &lo[k], &anchor)) {
				nd->ran_off = true;
				more = 1;
			}
			if (round == 0 && anchor < g)
				g = anchor;
			if (round == 1 && anchor < g2)
				g2 = anchor;
		}
		if (g == INT64_MAX)
			g = start;
	}
	if (g2 == INT64_MAX)
		g2 = g - slack;
	for (uint32_t k = 0; k < an->nnodes; k++) {
		struct an_node *nd = &an->nodes[k];
		if (nd->is_source && !nd->from_start && nd->load_t0 > g2) {
			nd->ran_off = true;
			more = 1;
		}
	}
	if (more) {
		free(lo);
		return 1;
	}
	an->region_t0 = g2;
	an->region_t1 = end;
	for (uint32_t k = 0; k < an->nnodes; k++) {
		struct an_node *nd = &an->nodes[k];
		const int64_t *x = nd->is_source ? an->e : an->d;
		uint32_t l = 0, h = nd->n;

		if (nd->is_source) {
			while (l < nd->n && x[nd->base + l] < g2)
				l++;
		} else {
			l = lo[k];
		}
		while (h > l && x[nd->base + h - 1] > end)
			h--;
		keep_hops(an, nd, base, l, h, l < nd->n ? an->d[nd->base + l] : INT64_MAX,
			end, end + slack);
		base += nd->n + (uint32_t)nd->q_n;
	}
	an->nh = base;
	free(lo);
	/* give back what the cut freed (a full read held the whole trace) */
#define SHRINK(a) do { void *q_ = realloc(an->a, (size_t)(base ? base : 1) * sizeof(*an->a)); \
		if (q_) an->a = q_; } while (0)
	SHRINK(d);
	SHRINK(e);
	SHRINK(win);
	SHRINK(wout);
	SHRINK(flow);
	SHRINK(fl);
#undef SHRINK
	return 0;
}

struct load_job {
	struct mscope_analysis *an;
	uint32_t next;
	pthread_mutex_t lock;
	int failed;
	int *rcs;
	struct mscope_an_error *errs;
};

static void *
load_worker(void *arg)
{
	struct load_job *j = arg;

	for (;;) {
		uint32_t i;

		pthread_mutex_lock(&j->lock);
		i = j->next++;
		pthread_mutex_unlock(&j->lock);
		if (i >= j->an->nnodes)
			break;
		j->rcs[i] = load_node(&j->an->nodes[i], &j->errs[i]);
	}
	return NULL;
}

/* Decode all files, two threads at a time; warnings for truncated tails. */
static int
run_loaders(struct mscope_analysis *an, struct mscope_an_error *err)
{
	struct load_job job = { .an = an };
	pthread_t th[8];
	int nth = 0, nthreads, rc = 0;

	nthreads = an->opts.threads > 0 ? an->opts.threads : 2;
	if (nthreads > 8)
		nthreads = 8;
	if ((uint32_t)nthreads > an->nnodes)
		nthreads = (int)an->nnodes;
	job.rcs = calloc(an->nnodes, sizeof(*job.rcs));
	job.errs = calloc(an->nnodes, sizeof(*job.errs));
	if (job.rcs == NULL || job.errs == NULL) {
		free(job.rcs);
		free(job.errs);
		an_err(err, "out of memory");
		return -1;
	}
	pthread_mutex_init(&job.lock, NULL);
	for (int t = 1; t < nthreads; t++)
		if (pthread_create(&th[nth], NULL, load_worker, &job) == 0)
			nth++;
	load_worker(&job);
	for (int t = 0; t < nth; t++)
		pthread_join(th[t], NULL);
	pthread_mutex_destroy(&job.lock);
	for (uint32_t i = 0; i < an->nnodes; i++) {
		if (job.rcs[i] < 0) {
			*err = job.errs[i];
			rc = -1;
			break;
		}
		if (job.rcs[i] > 0 && !an->nodes[i].counting)
			an_warn(an, "%s; analysing the part before it", job.errs[i].text);
	}
	free(job.rcs);
	free(job.errs);
	return rc;
}

static int
cmp_node(const void *a, const void *b)
{
	const struct an_node *x = a, *y = b;

	/* Sources first, then by id: a stable, input-order-independent layout. */
	if (x->is_source != y->is_source)
		return x->is_source ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* Node ids: an rx queue is nf:pPqQ, a source its NF name. A process that
 * sends on several ports or queues has several source traces: the second
 * one of a name becomes nf:srcpPqQ (never an rx queue's id), then
 * nf:srcpPqQ-PID (the same node recorded twice); beyond that it is the same
 * node twice, an error like two traces of one rx queue. */
static int
node_ids(struct mscope_analysis *an, struct mscope_an_error *err)
{
	for (uint32_t i = 0; i < an->nnodes; i++) {
		struct an_node *nd = &an->nodes[i];
		for (int attempt = 0;; attempt++) {
			uint32_t j;
			for (j = 0; j < i; j++)
				if (!strcmp(an->nodes[j].id, nd->id))
					break;
			if (j == i)
				break;
			if (!nd->is_source || attempt == 2) {
				an_err(err, "two traces for node %s: %s and %s", nd->id,
					an->nodes[j].file, nd->file);
				return -1;
			}
			if (attempt == 0)
				snprintf(nd->id, sizeof(nd->id), "%s:srcp%uq%u", nd->nf,
					nd->hdr.port, nd->hdr.queue);
			else
				snprintf(nd->id, sizeof(nd->id), "%s:srcp%uq%u-%u", nd->nf,
					nd->hdr.port, nd->hdr.queue, nd->hdr.pid);
		}
	}
	return 0;
}

/* The *.mst regular files of dir, sorted; empty ones are skipped with a
 * warning (a writer that died before its header). */
static int
list_traces(struct mscope_analysis *an, const char *dir, char ***out, size_t *nout,
		struct mscope_an_error *err)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;

	if (dp == NULL) {
		an_err(err, "%s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(dp)) != NULL) {
		size_t l = strlen(de->d_name);
		char *path;
		struct stat st;

		if (l < 5 || strcmp(de->d_name + l - 4, ".mst"))
			continue;
		if (asprintf(&path, "%s/%s", dir, de->d_name) < 0)
			goto oom;
		if (stat(path, &st) || !S_ISREG(st.st_mode)) {
			free(path);
			continue;
		}
		if (st.st_size == 0) {
			an_warn(an, "%s: empty file (no header); skipped", path);
			free(path);
			continue;
		}
		void *p = an_grow(names, &cap, n + 1, sizeof(*names));
		if (p == NULL) {
			free(path);
			goto oom;
		}
		names = p;
		names[n++] = path;
	}
	closedir(dp);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	*out = names;
	*nout = n;
	return 0;
oom:
	closedir(dp);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	an_err(err, "out of memory while listing %s", dir);
	return -1;
}

int
an_load(struct mscope_analysis *an, const char *dir, struct mscope_an_error *err)
{
	char **names = NULL;
	size_t nnames = 0;
	struct mscope_trace_stream *streams = NULL;
	size_t nstreams = 0;
	char runs[8][64];
	size_t nruns = 0;
	int rc = -1;
	struct an_node *ref;

	if (list_traces(an, dir, &names, &nnames, err))
		return -1;
	if (nnames == 0) {
		an_err(err, "%s: no trace files (*.mst)", dir);
		goto out;
	}

	/* A node's rotated segment files are one stream (headers, not names). */
	{
		struct mscope_trace_error terr;
		if (mscope_trace_group((const char *const *)names, nnames, &streams, &nstreams,
				&terr)) {
			an_err(err, "%s: %s (offset %llu)", terr.file, terr.text,
				(unsigned long long)terr.offset);
			goto out;
		}
	}
	an->nodes = calloc(nstreams ? nstreams : 1, sizeof(*an->nodes));
	if (an->nodes == NULL)
		goto oom;
	for (size_t i = 0; i < nstreams; i++) {
		struct mscope_trace_error terr;
		struct mscope_trace_reader *r;
		struct an_node *nd = &an->nodes[an->nnodes];
		struct mscope_trace_stream *st = &streams[i];
		char *name;
		size_t k;

		r = mscope_reader_open(st->paths[0], &terr);
		if (r == NULL) {
			an_err(err, "%s: %s (offset %llu)", st->paths[0], terr.text,
				(unsigned long long)terr.offset);
			goto out;
		}
		nd->hdr = *mscope_reader_header(r);
		mscope_reader_close(r);
		nd->hdr.nf_name[sizeof(nd->hdr.nf_name) - 1] = '\0';
		nd->hdr.run_id[sizeof(nd->hdr.run_id) - 1] = '\0';
		nd->hdr.host[sizeof(nd->hdr.host) - 1] = '\0';
		if (an->opts.run_id && strcmp(an->opts.run_id, nd->hdr.run_id)) {
			an_warn(an, "%s: skipped (run '%s', not '%s')", st->paths[0],
				nd->hdr.run_id, an->opts.run_id);
			memset(nd, 0, sizeof(*nd));
			continue;
		}
		nd->file = strdup(st->paths[0]);
		if (nd->file == NULL)
			goto oom;
		if (st->npaths > 1) {
			nd->paths = st->paths;
			nd->npaths = st->npaths;
			st->paths = NULL;
			st->npaths = 0;
		}
		an->nnodes++;
		if (nd->hdr.segment > 0)
			an_warn(an, "%s: the oldest segments of this node are gone (first present: segment %u); the run starts at the first data present",
				nd->file, nd->hdr.segment);
		if (nd->hdr.tsc_hz == 0 || nd->hdr.tsc_hz > 100000000000ULL) {
			an_err(err, "%s: header field tsc_hz is %llu", nd->file,
				(unsigned long long)nd->hdr.tsc_hz);
			goto out;
		}
		if (nd->hdr.role != MSCOPE_ROLE_RXQ && nd->hdr.role != MSCOPE_ROLE_SOURCE) {
			an_err(err, "%s: header field role is %u (neither rx queue nor source)",
				nd->file, nd->hdr.role);
			goto out;
		}
		nd->is_source = nd->hdr.role == MSCOPE_ROLE_SOURCE;
		/* names come from files: escaped once here, used as is everywhere */
		bool changed;
		name = an_escape(nd->hdr.nf_name[0] ? nd->hdr.nf_name : "?", &changed);
		if (name == NULL)
			goto oom;
		snprintf(nd->nf, sizeof(nd->nf), "%s", name);
		free(name);
		if (changed)
			an_warn(an, "%s: NF name is not valid UTF-8 text; shown as '%s'",
				nd->file, nd->nf);
		if (nd->is_source)
			snprintf(nd->id, sizeof(nd->id), "%s", nd->nf);
		else
			snprintf(nd->id, sizeof(nd->id), "%s:p%uq%u", nd->nf, nd->hdr.port,
				nd->hdr.queue);
		if (nd->hdr.run_id[0]) {
			for (k = 0; k < nruns; k++)
				if (!strcmp(runs[k], nd->hdr.run_id))
					break;
			if (k == nruns && nruns < 8)
				snprintf(runs[nruns++], sizeof(runs[0]), "%s", nd->hdr.run_id);
		}
	}
	if (nruns > 1) {
		char list[400] = "";
		for (size_t k = 0; k < nruns; k++) {
			size_t l = strlen(list);
			snprintf(list + l, sizeof(list) - l, "%s'%s'", k ? ", " : "", runs[k]);
		}
		an_err(err, "%s: traces of different runs mixed (%s); choose one with --run",
			dir, list);
		goto out;
	}
	if (an->nnodes == 0) {
		an_err(err, "%s: no trace files of run '%s'", dir,
			an->opts.run_id ? an->opts.run_id : "");
		goto out;
	}
	qsort(an->nodes, an->nnodes, sizeof(*an->nodes), cmp_node);
	if (node_ids(an, err))
		goto out;

	/* Clock: the first RXQ file's TSC is the common time base; files of the
	 * same host share it, others are mapped through their realtime anchors. */
	ref = &an->nodes[0];
	for (uint32_t i = 0; i < an->nnodes; i++)
		if (!an->nodes[i].is_source) {
			ref = &an->nodes[i];
			break;
		}
	an->hz = (double)ref->hdr.tsc_hz;
	an->clock_ref = (uint32_t)(ref - an->nodes);
	{
		double off_ref = (double)ref->hdr.anchor_realtime_ns -
			(double)ref->hdr.anchor_tsc * 1e9 / an->hz;
		double worst = 0;
		const char *worst_file = NULL;

		for (uint32_t i = 0; i < an->nnodes; i++) {
			struct an_node *nd = &an->nodes[i];
			double hz = (double)nd->hdr.tsc_hz;

			if (!strcmp(nd->hdr.host, ref->hdr.host)) {
				double off = (double)nd->hdr.anchor_realtime_ns -
					(double)nd->hdr.anchor_tsc * 1e9 / hz;
				nd->conv_identity = true;
				if (fabs(hz - an->hz) > an->hz * 1e-3)
					an_warn(an, "%s: tsc_hz %.0f differs from %.0f of %s on the same host; using the latter",
						nd->file, hz, an->hz, ref->file);
				if (fabs(off - off_ref) > worst) {
					worst = fabs(off - off_ref);
					worst_file = nd->file;
				}
			} else {
				nd->conv_identity = false;
				nd->conv_scale = an->hz / hz;
				nd->conv_offset = (double)ref->hdr.anchor_tsc -
					(double)nd->hdr.anchor_tsc * nd->conv_scale +
					((double)nd->hdr.anchor_realtime_ns -
					 (double)ref->hdr.anchor_realtime_ns) * an->hz / 1e9;
				an_warn(an, "%s: written on host '%s', not '%s': clocks aligned by realtime anchors (accuracy unknown)",
					nd->file, nd->hdr.host, ref->hdr.host);
			}
		}
		if (worst > 1e6 && worst_file)
			an_warn(an, "clock anchors disagree by %.0f us (%s vs %s); one host, so the TSC is used",
				worst / 1e3, worst_file, ref->file);
	}

	an->windowed = an->opts.from_ns > 0 || an->opts.to_ns >= 0 || an->opts.from_clock ||
		an->opts.to_clock;
	an->run_last = INT64_MIN;
	for (uint32_t i = 0; i < an->nnodes; i++) {
		an->nodes[i].from_start = true;
		an->nodes[i].first_t = INT64_MAX;
	}
	for (int attempt = 0;; attempt++) {
	if (an->windowed && !an->opts.no_index && plan_window(an, attempt, err))
		goto out;
	/* Pass 0 counts, then the arrays are allocated exactly, pass 1 fills them. */
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			uint64_t nh = 0;
			for (uint32_t i = 0; i < an->nnodes; i++) {
				struct an_node *nd = &an->nodes[i];
				node_reset(nd);
				nd->base = (uint32_t)nh;
				nh += (uint64_t)nd->cnt_rx + nd->cnt_q;
				if (nh >= UINT32_MAX / 2) {
					an_err(err, "too many packet-hops (limit %u)", UINT32_MAX / 2);
					goto out;
				}
			}
			an->nh = (uint32_t)nh;
			an->d = malloc((nh ? nh : 1) * sizeof(*an->d));
			an->e = malloc((nh ? nh : 1) * sizeof(*an->e));
			an->win = malloc((nh ? nh : 1) * sizeof(*an->win));
			an->wout = malloc((nh ? nh : 1) * sizeof(*an->wout));
			an->flow = malloc((nh ? nh : 1) * sizeof(*an->flow));
			an->fl = malloc((nh ? nh : 1) * sizeof(*an->fl));
			if (!an->d || !an->e || !an->win || !an->wout || !an->flow || !an->fl)
				goto oom;
			for (uint32_t i = 0; i < an->nnodes; i++) {
				struct an_node *nd = &an->nodes[i];
				nd->ld_e = an->e + nd->base;
				nd->ld_wout = an->wout + nd->base;
				nd->ld_fl = an->fl + nd->base;
			}
		}
		for (uint32_t i = 0; i < an->nnodes; i++) {
			an->nodes[i].an = an;
			an->nodes[i].counting = pass == 0;
		}
		if (run_loaders(an, err))
			goto out;
	}
	if (!an->windowed)
		break;
	int more = region(an, err);
	if (more < 0)
		goto out;
	if (more == 0)
		break;
	/* the look-back needs frames before those read: again, further back */
	for (uint32_t i = 0; i < an->nnodes; i++) {
		node_reset(&an->nodes[i]);
		an->nodes[i].ran_off = false;
	}
	an_free_hops(an);
	}

	/* Per-node warnings, global flow ids, hop ranges. */
	for (uint32_t i = 0; i < an->nnodes; i++) {
		struct an_node *nd = &an->nodes[i];
		uint32_t *l2g = NULL;

		if (nd->del_segments) {
			an->del_segments += nd->del_segments;
			an->del_records += nd->del_records;
			an->del_packets += nd->del_packets;
			an_warn(an, "%s: %llu older segments were deleted (%llu records, %llu packets): the run starts later than its recording",
				nd->file, (unsigned long long)nd->del_segments,
				(unsigned long long)nd->del_records,
				(unsigned long long)nd->del_packets);
		}
		for (size_t p = 0; p < (nd->npaths > 1 ? nd->npaths : 1); p++)
			if (lost_sidecar(an, nd, nd->npaths > 1 ? nd->paths[p] : nd->file) < 0)
				goto oom;
		check_closed(an, nd);
		if (nd->loss_records || nd->loss_packets) {
			an->trace_loss_records += nd->loss_records;
			an->trace_loss_packets += nd->loss_packets;
			an->sidecar_records += nd->sidecar_records;
			an->sidecar_packets += nd->sidecar_packets;
			an_warn(an, "%s: the collector lost %llu records (%llu packets); diagnosis around them is incomplete",
				nd->file, (unsigned long long)nd->loss_records,
				(unsigned long long)nd->loss_packets);
		}
		if (nd->backsteps)
			an_warn(an, "%s: %llu records with decreasing timestamps (up to %.1f us back); clamped",
				nd->file, (unsigned long long)nd->backsteps,
				an_us(an, nd->max_backstep));
		if (nd->badlink)
			an_warn(an, "%s: %llu tx/drop records link to unknown rx packets; ignored",
				nd->file, (unsigned long long)nd->badlink);
		if (nd->duptx)
			an_warn(an, "%s: %llu packets transmitted twice; the first tx is used",
				nd->file, (unsigned long long)nd->duptx);
		if (nd->nolink)
			an_warn(an, "%s: %llu packets sent without rx link in an rx-queue trace; ignored",
				nd->file, (unsigned long long)nd->nolink);
		if (nd->undef_flow)
			an_warn(an, "%s: %llu packets reference undefined flows",
				nd->file, (unsigned long long)nd->undef_flow);
		if (nd->src_rx)
			an_warn(an, "%s: source trace holds %llu received packets; ignored",
				nd->file, (unsigned long long)nd->src_rx);
		if (nd->clock_disagree_ns > 1000000)
			an_warn(an, "%s: clock records disagree with the header anchor by %.0f us",
				nd->file, (double)nd->clock_disagree_ns / 1e3);

		if (nd->nfkeys) {
			l2g = malloc(nd->nfkeys * sizeof(*l2g));
			if (l2g == NULL)
				goto oom;
			for (uint32_t f = 0; f < nd->nfkeys; f++) {
				/* a window: only the flows of its hops, in order of use
				 * (the same ids whatever part of the file was read) */
				l2g[f] = an->windowed ? UINT32_MAX - 1 : an_flow_intern(an, &nd->fkeys[f]);
				if (l2g[f] == UINT32_MAX) {
					free(l2g);
					goto oom;
				}
			}
		}
		if (nd->n != nd->cnt_rx || nd->q_n != nd->cnt_q) {
			free(l2g);
			an_err(err, "%s: the file changed while being read", nd->file);
			goto out;
		}
		nd->nrx = nd->n;
		nd->n = nd->nrx + (uint32_t)nd->q_n;
		for (uint32_t h = 0; h < nd->n; h++) {
			uint32_t *f = &an->flow[nd->base + h];
			if (*f && l2g[*f - 1] == UINT32_MAX - 1) {
				l2g[*f - 1] = an_flow_intern(an, &nd->fkeys[*f - 1]);
				if (l2g[*f - 1] == UINT32_MAX) {
					free(l2g);
					goto oom;
				}
			}
			*f = *f ? l2g[*f - 1] : 0;
		}
		free(l2g);
		free(nd->fkeys);
		nd->fkeys = NULL;
		free(nd->ref2local);
		nd->ref2local = NULL;
		if (nd->is_source)
			an->have_source = true;
	}
	if (an->traces_unfinished > 3)
		an_warn(an, "%u trace files in all end without their seek table", an->traces_unfinished);
	for (uint32_t k = 0; k < an->nnodes; k++) {
		struct an_node *nd = &an->nodes[k];
		nd->ld_e = NULL;
		nd->ld_wout = NULL;
		nd->ld_fl = NULL;
	}

	/* NF names */
	an->nfs = calloc(an->nnodes + 1, sizeof(*an->nfs));
	if (an->nfs == NULL)
		goto oom;
	for (uint32_t i = 0; i < an->nnodes; i++) {
		struct an_node *nd = &an->nodes[i];
		uint32_t k;
		for (k = 0; k < an->nnfs; k++)
			if (!strcmp(an->nfs[k], nd->nf))
				break;
		if (k == an->nnfs)
			snprintf(an->nfs[an->nnfs++], sizeof(an->nfs[0]), "%s", nd->nf);
		nd->nf_idx = (int)k;
	}
	/* Input without a source trace is blamed on "source" (the first source
	 * trace's NF when there is one). */
	an->src_nf_default = UINT32_MAX;
	for (uint32_t i = 0; i < an->nnodes; i++)
		if (an->nodes[i].is_source) {
			an->src_nf_default = (uint32_t)an->nodes[i].nf_idx;
			break;
		}
	if (an->src_nf_default == UINT32_MAX) {
		uint32_t k;
		for (k = 0; k < an->nnfs; k++)
			if (!strcmp(an->nfs[k], "source"))
				break;
		if (k == an->nnfs)
			snprintf(an->nfs[an->nnfs++], sizeof(an->nfs[0]), "source");
		an->src_nf_default = k;
	}
	rc = 0;
	goto out;

oom:
	an_err(err, "out of memory while loading %s", dir);
out:
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	mscope_trace_group_free(streams, nstreams);
	return rc;
}

/* Topology file (the simulator's scenario/topology format): NF names with
 * rate_mpps, and links that constrain packet matching. */
int
an_topology(struct mscope_analysis *an, const char *file, struct mscope_an_error *err)
{
	json_error_t jerr;
	json_t *root, *nfs, *links, *v;
	size_t i;

	root = json_load_file(file, 0, &jerr);
	if (root == NULL) {
		an_err(err, "%s:%d:%d: %s", file, jerr.line, jerr.column, jerr.text);
		return -1;
	}
	if (!json_is_object(root)) {
		an_err(err, "%s: not a JSON object", file);
		goto fail;
	}
	nfs = json_object_get(root, "nfs");
	if (nfs && !json_is_array(nfs)) {
		an_err(err, "%s: field 'nfs' is not an array", file);
		goto fail;
	}
	json_array_foreach(nfs, i, v) {
		json_t *name = json_object_get(v, "name");
		json_t *rate = json_object_get(v, "rate_mpps");
		int found = 0;

		if (!json_is_string(name)) {
			an_err(err, "%s: nfs[%zu].name missing or not a string", file, i);
			goto fail;
		}
		if (rate && (!json_is_number(rate) || json_number_value(rate) <= 0)) {
			an_err(err, "%s: nfs[%zu].rate_mpps is not a positive number", file, i);
			goto fail;
		}
		for (uint32_t k = 0; k < an->nnodes; k++) {
			struct an_node *nd = &an->nodes[k];
			if (strcmp(nd->nf, json_string_value(name)))
				continue;
			found = 1;
			if (rate && !nd->is_source && nd->rate_from == NULL) {
				nd->rate = json_number_value(rate) * 1e6 / an->hz;
				nd->rate_from = "topology";
			}
		}
		if (!found)
			an_warn(an, "%s: NF '%s' has no trace in the directory (missing node file?)",
				file, json_string_value(name));
	}
	links = json_object_get(root, "links");
	if (links && !json_is_array(links)) {
		an_err(err, "%s: field 'links' is not an array", file);
		goto fail;
	}
	if (links && json_array_size(links)) {
		an->topo_links = calloc(json_array_size(links), sizeof(*an->topo_links));
		if (an->topo_links == NULL) {
			an_err(err, "out of memory");
			goto fail;
		}
		json_array_foreach(links, i, v) {
			json_t *from = json_object_get(v, "from"), *to = json_object_get(v, "to");
			if (!json_is_string(from) || !json_is_string(to)) {
				an_err(err, "%s: links[%zu] needs string fields 'from' and 'to'", file, i);
				goto fail;
			}
			snprintf(an->topo_links[i][0], 64, "%s", json_string_value(from));
			snprintf(an->topo_links[i][1], 64, "%s", json_string_value(to));
		}
		an->ntopo_links = json_array_size(links);
	}
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	return -1;
}
