/* SPDX-License-Identifier: BSD-3-Clause */
/* Cutting time windows out of a recording into small trace files that the
 * analyzer reads as a run of their own: one pass per node stream writes
 * every window at once. Inside a window rx sequence numbers are renumbered
 * from its first rx packet; packets that entered the node before the window
 * are left out of its tx and drop records (their rx is not in the cut);
 * flows defined before the window are written first. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "incidents_private.h"

struct win {
	uint64_t t0, t1;          /* TSC */
	const char *dir;
	uint64_t first;           /* earliest record written, any node (UINT64_MAX none) */
};

struct cut_job {
	struct mscope_inc_scan *s;
	struct win *w;
	size_t nw;
	pthread_mutex_t mu;   /* guards w[].first */
};

struct wstate {
	struct mscope_trace_writer *wr;
	uint64_t seq0;            /* global rx seq of the window's first rx packet */
	int closed;
};

struct flowtab {
	struct mscope_flow_key *k;
	uint8_t *def;
	uint32_t cap;
};

struct buf {
	uint32_t *wire, *flow;
	uint64_t *seq;
	uint32_t cap;
};

static int
buf_fit(struct buf *b, uint32_t n)
{
	if (n <= b->cap)
		return 0;
	free(b->wire);
	free(b->flow);
	free(b->seq);
	b->wire = malloc(n * sizeof(*b->wire));
	b->flow = malloc(n * sizeof(*b->flow));
	b->seq = malloc(n * sizeof(*b->seq));
	b->cap = b->wire && b->flow && b->seq ? n : 0;
	return b->cap ? 0 : -1;
}

static int
flow_def(struct flowtab *ft, const struct mscope_flow_def *f)
{
	if (f->ref >= (1u << 22))
		return 0;             /* the analyzer rejects it; nothing to replay */
	if (f->ref >= ft->cap) {
		uint32_t cap = ft->cap ? ft->cap : 256;
		void *k, *d;

		while (cap <= f->ref)
			cap *= 2;
		k = realloc(ft->k, cap * sizeof(*ft->k));
		if (k == NULL)
			return -1;
		ft->k = k;
		d = realloc(ft->def, cap);
		if (d == NULL)
			return -1;
		ft->def = d;
		memset(ft->def + ft->cap, 0, cap - ft->cap);
		ft->cap = cap;
	}
	ft->k[f->ref] = f->key;
	ft->def[f->ref] = 1;
	return 0;
}

static const char *
base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

/* Open window j's writer for node nd: header, then every flow so far. */
static int
open_writer(struct cut_job *job, struct inc_node *nd, struct win *w, struct wstate *ws,
		const struct mscope_trace_header *h, const struct flowtab *ft, uint64_t seq)
{
	char path[1400];
	struct mscope_trace_error te;
	struct mscope_writer_opts wo = { .zstd_level = 1, .frame_bytes = 256 << 10 };
	struct mscope_trace_header hdr = *h;

	hdr.segment = 0;   /* the cut is a stream of its own, numbered from 0 */
	snprintf(path, sizeof(path), "%.1000s/%.300s", w->dir, base_name(nd->paths[0]));
	ws->wr = mscope_writer_open(path, &hdr, &wo, &te);
	if (ws->wr == NULL) {
		snprintf(nd->err, sizeof(nd->err), "%s: %s", te.file, te.text);
		return -1;
	}
	ws->seq0 = seq;
	for (uint32_t r = 0; r < ft->cap; r++)
		if (ft->def[r] && mscope_writer_flow(ws->wr, r, &ft->k[r]))
			goto werr;
	return 0;
werr:
	snprintf(nd->err, sizeof(nd->err), "%.300s: %.180s", path, mscope_writer_error(ws->wr)->text);
	return -1;
}

/* Packets of a tx or drop record whose rx is in the window, renumbered. */
static uint32_t
keep_linked(struct buf *b, const uint32_t *wire, const uint32_t *flow, const uint64_t *seq,
		uint32_t n, uint64_t off, uint64_t seq0)
{
	uint32_t m = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t r = seq[i];

		if (r != MSCOPE_NO_LINK) {
			r += off;
			if (r < seq0)
				continue;
			r -= seq0;
		}
		b->wire[m] = wire[i];
		if (flow)
			b->flow[m] = flow[i];
		b->seq[m] = r;
		m++;
	}
	return m;
}

static int
write_rec(struct wstate *ws, const struct mscope_record *rec, struct buf *b, uint64_t off)
{
	struct mscope_tx_burst tx;
	struct mscope_drop d;

	switch (rec->type) {
	case MSCOPE_REC_RX:
		return mscope_writer_rx(ws->wr, &rec->u.rx);
	case MSCOPE_REC_TX:
		tx = rec->u.tx;
		if (buf_fit(b, tx.accepted ? tx.accepted : 1))
			return -1;
		tx.accepted = keep_linked(b, tx.wire_id, tx.flow, tx.rx_seq, tx.accepted, off,
			ws->seq0);
		tx.offered = tx.accepted + (rec->u.tx.offered - rec->u.tx.accepted);
		if (tx.offered == 0)
			return 0;
		tx.wire_id = b->wire;
		tx.rx_seq = b->seq;
		tx.flow = tx.flow ? b->flow : NULL;
		return mscope_writer_tx(ws->wr, &tx);
	case MSCOPE_REC_DROP:
		d = rec->u.drop;
		if (d.rx_seq) {
			if (buf_fit(b, d.n ? d.n : 1))
				return -1;
			d.n = keep_linked(b, d.wire_id, d.flow, d.rx_seq, d.n, off, ws->seq0);
			if (d.n == 0)
				return 0;
			d.wire_id = b->wire;
			d.flow = d.flow ? b->flow : NULL;
			d.rx_seq = b->seq;
		}
		return mscope_writer_drop(ws->wr, &d);
	case MSCOPE_REC_FLOW:
		return mscope_writer_flow(ws->wr, rec->u.flow.ref, &rec->u.flow.key);
	case MSCOPE_REC_LOSS:
		return mscope_writer_loss(ws->wr, &rec->u.loss);
	case MSCOPE_REC_CLOCK:
		return mscope_writer_clock(ws->wr, &rec->u.clock);
	case MSCOPE_REC_DELETED:
		return 0;   /* a cut is a stream of its own: earlier deletions are not its */
	}
	return 0;
}

/* A record's time (0 for a flow definition). */
static uint64_t
rec_tsc(const struct mscope_record *rec)
{
	uint64_t t;

	mscope_record_tsc(rec, &t);
	return t;
}

static int
close_writer(struct inc_node *nd, struct wstate *ws)
{
	int rc = 0;

	if (ws->wr && mscope_writer_close(ws->wr)) {
		snprintf(nd->err, sizeof(nd->err), "cannot write a cut of %s", nd->id);
		rc = -1;
	}
	ws->wr = NULL;
	ws->closed = 1;
	return rc;
}

/* Read r from the frame of time t0 on (to t1). @return 0, or -1 with nd->err. */
static int
seek_to(struct inc_node *nd, struct mscope_trace_reader *r, uint64_t t0, uint64_t t1)
{
	struct mscope_trace_error te;

	if (mscope_reader_window(r, t0, t1, &te) == 0)
		return 0;
	snprintf(nd->err, sizeof(nd->err), "%s: offset %llu: %s", te.file,
		(unsigned long long)te.offset, te.text);
	return -1;
}

/* One node stream through every window. */
static int
cut_node(void *ctx, struct inc_node *nd)
{
	struct cut_job *job = ctx;
	struct wstate *ws = calloc(job->nw, sizeof(*ws));
	struct flowtab ft = { 0 };
	struct buf b = { 0 };
	uint64_t seq_next = 0, off = 0, tmax = 0, *first = NULL;
	size_t lo = 0;
	int rc = -1, fresh = 1;

	first = malloc(job->nw * sizeof(*first));
	if (ws == NULL || first == NULL) {
		snprintf(nd->err, sizeof(nd->err), "out of memory");
		goto out;
	}
	for (size_t j = 0; j < job->nw; j++) {
		first[j] = UINT64_MAX;
		if (job->w[j].t1 > tmax)
			tmax = job->w[j].t1;
	}
	for (size_t f = 0; f < nd->npaths && lo < job->nw; f++) {
		struct mscope_trace_error te;
		struct mscope_trace_reader *r = mscope_reader_open(nd->paths[f], &te);
		struct mscope_record rec;
		int k = 0;
		size_t jumped;

		if (r == NULL) {
			snprintf(nd->err, sizeof(nd->err), "%s: offset %llu: %s", te.file,
				(unsigned long long)te.offset, te.text);
			goto out;
		}
		/* only the frames from the first window on (the index seeks) */
		if (seek_to(nd, r, job->w[lo].t0, tmax)) {
			mscope_reader_close(r);
			goto out;
		}
		jumped = lo;
		while (lo < job->nw && (k = mscope_reader_next(r, &rec, &te)) == 1) {
			uint64_t t = rec_tsc(&rec);

			if (rec.type == MSCOPE_REC_FLOW) {
				if (flow_def(&ft, &rec.u.flow))
					goto oom;
				for (size_t j = lo; j < job->nw; j++)
					if (ws[j].wr && write_rec(&ws[j], &rec, &b, off))
						goto werr;
				continue;
			}
			if (rec.type == MSCOPE_REC_RX && fresh) {
				/* numbering goes on from the first rx read, wherever it starts */
				seq_next = rec.u.rx.first_seq;
				fresh = 0;
			}
			if (rec.type == MSCOPE_REC_RX && rec.u.rx.first_seq + off < seq_next)
				off += seq_next - (rec.u.rx.first_seq + off);
			while (lo < job->nw && t > job->w[lo].t1) {
				if (close_writer(nd, &ws[lo]))
					goto out;
				lo++;
			}
			if (lo < job->nw && t < job->w[lo].t0 && jumped != lo) {
				/* no window open and the next one later: skip the frames
				 * between (once per window: its first frame may start
				 * before it) */
				jumped = lo;
				if (seek_to(nd, r, job->w[lo].t0, tmax))
					goto rclose;
				fresh = 1;
				continue;
			}
			for (size_t j = lo; j < job->nw && job->w[j].t0 <= t; j++) {
				if (ws[j].closed || t > job->w[j].t1)
					continue;
				if (ws[j].wr == NULL && open_writer(job, nd, &job->w[j], &ws[j],
						mscope_reader_header(r), &ft, seq_next))
					goto rclose;
				if (write_rec(&ws[j], &rec, &b, off))
					goto werr;
				if (t < first[j])
					first[j] = t;
			}
			if (rec.type == MSCOPE_REC_RX)
				seq_next = rec.u.rx.first_seq + off + rec.u.rx.n;
			if (t > tmax)
				break;
			continue;
werr:
			snprintf(nd->err, sizeof(nd->err), "cannot write a cut of %s", nd->id);
rclose:
			mscope_reader_close(r);
			goto out;
		}
		mscope_reader_close(r);
		if (k < 0)   /* a damaged tail (the scan warned): the cut ends there */
			break;
	}
	rc = 0;
	pthread_mutex_lock(&job->mu);
	for (size_t j = 0; j < job->nw; j++)
		if (first[j] < job->w[j].first)
			job->w[j].first = first[j];
	pthread_mutex_unlock(&job->mu);
	goto out;
oom:
	snprintf(nd->err, sizeof(nd->err), "out of memory");
out:
	for (size_t j = 0; ws && j < job->nw; j++)
		if (ws[j].wr && close_writer(nd, &ws[j]))
			rc = -1;
	free(ws);
	free(first);
	free(ft.k);
	free(ft.def);
	free(b.wire);
	free(b.flow);
	free(b.seq);
	return rc;
}

/* Cut windows w[0..nw) (sorted by t0, directories existing). */
static int
cut_windows(struct mscope_inc_scan *s, struct win *w, size_t nw, struct mscope_an_error *err)
{
	struct cut_job job = { .s = s, .w = w, .nw = nw };
	int rc;

	pthread_mutex_init(&job.mu, NULL);
	rc = inc_for_nodes(s, cut_node, &job, NULL, err);
	pthread_mutex_destroy(&job.mu);
	return rc;
}

static uint64_t
tsc_of(const struct mscope_inc_scan *s, double us)
{
	double t = (double)s->origin_tsc + (us > 0 ? us : 0) * s->hz / 1e6;

	return t >= 1.8e19 ? UINT64_MAX : (uint64_t)t;
}

int
mscope_inc_cut(const struct mscope_inc_scan *s, double from_us, double to_us, const char *out,
		struct mscope_an_error *err)
{
	struct win w = { tsc_of(s, from_us), tsc_of(s, to_us), out, UINT64_MAX };

	if (mkdir(out, 0700) && errno != EEXIST) {
		snprintf(err->text, sizeof(err->text), "%.400s: %.100s", out, strerror(errno));
		return -1;
	}
	return cut_windows((struct mscope_inc_scan *)s, &w, 1, err);
}

/* ------------------------------------------------------------ diagnosis */

static void
rm_dir(const char *dir, const struct mscope_inc_scan *s)
{
	char path[1400];

	for (size_t i = 0; i < s->nnodes; i++) {
		snprintf(path, sizeof(path), "%.1000s/%.300s", dir, base_name(s->nodes[i].paths[0]));
		unlink(path);
	}
	rmdir(dir);
}

static int
cmp_win(const void *a, const void *b)
{
	const struct win *x = a, *y = b;

	return (x->t0 > y->t0) - (x->t0 < y->t0);
}

#define NORMAL_US 30000.0     /* length of the normal-operation window */

/* The middle of the longest stretch without incidents (their margins
 * and the gap tolerance kept clear). */
static void
pick_normal(struct mscope_inc_scan *s)
{
	double lo = inc_bin_start_us(s, 0), end = inc_bin_start_us(s, (int64_t)s->last_tsc);
	double best = 0, keep = s->opts.gap_us;

	s->have_normal = 0;
	for (size_t i = 0; i <= s->ninc; i++) {
		double a = i ? s->inc[i - 1].end_us + keep : lo;
		double b = i < s->ninc ? s->inc[i].start_us - keep : end;

		if (b - a > best) {
			best = b - a;
			s->normal_from_us = (a + b) / 2 - NORMAL_US / 2;
			s->normal_to_us = (a + b) / 2 + NORMAL_US / 2;
		}
	}
	if (best >= NORMAL_US) {
		s->have_normal = 1;
	} else if (best > 0 && best >= 5000) {
		s->have_normal = 1;
		s->normal_from_us = s->normal_to_us - best;
	}
	if (s->have_normal) {
		s->normal_from_us = s->normal_from_us < lo ? lo : s->normal_from_us;
		s->normal_to_us = s->normal_from_us + (best < NORMAL_US ? best : NORMAL_US);
	}
}

/* Cut every incident's window (margins included), and a window of normal
 * operation, in one pass. */
static int
prepare(struct mscope_inc_scan *s, struct mscope_an_error *err)
{
	const char *tmp = s->opts.tmpdir ? s->opts.tmpdir : getenv("TMPDIR");
	size_t nw = 0;
	struct win *w;
	char (*dirs)[1200];
	int rc = -1;

	if (s->cut_root[0])
		return 0;
	snprintf(s->cut_root, sizeof(s->cut_root), "%s/mscope-incidents-XXXXXX",
		tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(s->cut_root) == NULL) {
		snprintf(err->text, sizeof(err->text), "%.400s: %.100s", s->cut_root, strerror(errno));
		s->cut_root[0] = '\0';
		return -1;
	}
	pick_normal(s);
	w = calloc(s->ninc + 1, sizeof(*w));
	dirs = calloc(s->ninc + 1, sizeof(*dirs));
	if (w == NULL || dirs == NULL) {
		snprintf(err->text, sizeof(err->text), "out of memory");
		goto out;
	}
	for (size_t i = 0; i <= s->ninc; i++) {
		double from, to;

		if (i < s->ninc && s->cut_mask && !s->cut_mask[i])
			continue;   /* diagnosed elsewhere (a shard driver) */
		if (i < s->ninc) {
			struct inc_incident *x = &s->inc[i];
			x->cut_from_us = x->start_us - s->opts.margin_us;
			if (x->cut_from_us < 0)
				x->cut_from_us = 0;
			x->cut_to_us = x->end_us + s->opts.margin_us / 2;
			from = x->cut_from_us;
			to = x->cut_to_us;
			snprintf(dirs[nw], sizeof(dirs[nw]), "%s/i%zu", s->cut_root, i);
		} else if (s->have_normal) {
			from = s->normal_from_us;
			to = s->normal_to_us;
			snprintf(dirs[nw], sizeof(dirs[nw]), "%s/normal", s->cut_root);
		} else {
			break;
		}
		if (mkdir(dirs[nw], 0700)) {
			snprintf(err->text, sizeof(err->text), "%.400s: %.100s", dirs[nw], strerror(errno));
			goto out;
		}
		w[nw] = (struct win){ tsc_of(s, from), tsc_of(s, to), dirs[nw], UINT64_MAX };
		nw++;
	}
	qsort(w, nw, sizeof(*w), cmp_win);
	if (cut_windows(s, w, nw, err))
		goto out;
	for (size_t j = 0; j < nw; j++) {
		const char *leaf = strrchr(w[j].dir, '/') + 1;
		double first = w[j].first == UINT64_MAX ? -1 :
			(double)(w[j].first - s->origin_tsc) * 1e6 / s->hz;

		if (!strcmp(leaf, "normal"))
			s->normal_first_us = first < 0 ? s->normal_from_us : first;
		else {
			struct inc_incident *x = &s->inc[strtoul(leaf + 1, NULL, 10)];
			x->cut_first_us = first < 0 ? x->cut_from_us : first;
		}
	}
	rc = 0;
out:
	free(w);
	free(dirs);
	return rc;
}

int
mscope_inc_normal_latency(struct mscope_inc_scan *s, const struct mscope_an_opts *opts,
		double *p99_us, struct mscope_an_error *err)
{
	struct mscope_an_opts o = *opts;
	struct mscope_analysis *an;
	char dir[1200];
	json_t *doc;

	*p99_us = 0;
	if (prepare(s, err))
		return -1;
	if (!s->have_normal) {
		snprintf(err->text, sizeof(err->text), "no stretch of normal operation");
		return -1;
	}
	if (s->normal_p99_us > 0) {
		*p99_us = s->normal_p99_us;
		return 0;
	}
	snprintf(dir, sizeof(dir), "%s/normal", s->cut_root);
	o.from_ns = 0;
	o.to_ns = -1;
	o.threshold_us = 0;
	o.percentile = 99;
	an = mscope_an_open(dir, &o, err);
	if (an == NULL || mscope_an_diagnose(an, err)) {
		mscope_an_close(an);
		return -1;
	}
	mscope_an_release(an);
	doc = mscope_an_json(an);
	mscope_an_close(an);
	s->normal_p99_us = json_real_value(json_object_get(json_object_get(doc, "summary"),
		"latency_threshold_us"));
	json_decref(doc);
	rm_dir(dir, s);
	*p99_us = s->normal_p99_us;
	return *p99_us > 0 ? 0 : (snprintf(err->text, sizeof(err->text),
		"no latency measured in the normal window"), -1);
}

int
mscope_inc_diagnose(struct mscope_inc_scan *s, size_t i, const struct mscope_an_opts *opts,
		json_t **doc, struct mscope_an_error *err)
{
	struct mscope_an_opts o = *opts;
	struct inc_incident *x;
	struct mscope_analysis *an;
	char dir[1200];

	*doc = NULL;
	if (i >= s->ninc) {
		snprintf(err->text, sizeof(err->text), "no incident %zu", i);
		return -1;
	}
	if (prepare(s, err))
		return -1;
	x = &s->inc[i];
	snprintf(dir, sizeof(dir), "%s/i%zu", s->cut_root, i);
	o.from_ns = (int64_t)((x->start_us - x->cut_first_us) * 1e3);
	if (o.from_ns < 0)
		o.from_ns = 0;
	o.to_ns = (int64_t)((x->end_us - x->cut_first_us) * 1e3);
	an = mscope_an_open(dir, &o, err);
	if (an == NULL || mscope_an_diagnose(an, err)) {
		mscope_an_close(an);
		rm_dir(dir, s);
		inc_set_error(s, i, err->text);
		return -1;
	}
	mscope_an_release(an);
	*doc = mscope_an_json(an);
	mscope_an_close(an);
	rm_dir(dir, s);
	if (*doc == NULL) {
		snprintf(err->text, sizeof(err->text), "out of memory");
		return -1;
	}
	json_decref(x->doc);
	x->doc = json_incref(*doc);
	return 0;
}

void
inc_cut_cleanup(struct mscope_inc_scan *s)
{
	char dir[1200];

	if (!s->cut_root[0])
		return;
	for (size_t i = 0; i < s->ninc; i++) {
		snprintf(dir, sizeof(dir), "%s/i%zu", s->cut_root, i);
		rm_dir(dir, s);
	}
	snprintf(dir, sizeof(dir), "%s/normal", s->cut_root);
	rm_dir(dir, s);
	rmdir(s->cut_root);
	s->cut_root[0] = '\0';
}
