/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NetMedic-style baseline for `mscope eval`, after Kandula, Mahajan, Verkaik,
 * Agarwal, Padhye, Bahl: "Detailed Diagnosis in Enterprise Networks",
 * SIGCOMM 2009, as Microscope (SIGCOMM 2020) compares against it.
 *
 * Components are the NFs and the traffic source. Each component's state in a
 * time window is a vector of variables computed from the traces alone:
 * arrival rate, dequeue (service) rate, transmit rate, queue length at the
 * window's end, mean queue wait, mean processing time, drops, and for the
 * source the rate of its heaviest flow. Then, as in NetMedic §5:
 *   - abnormality of a variable: two-sided probability of its deviation from
 *     the history's mean in units of the history's standard deviation;
 *     a component's abnormality is the largest of its variables';
 *   - edge weight S -> D (S upstream of D in the traffic graph): find the
 *     history windows where S was in a state most like its current one; the
 *     weight is how similar D's state was then to D's state now (a source
 *     state never seen before gets the paper's default high weight, 0.8);
 *   - path weight: the best geometric mean of edge weights over the paths;
 *   - for the effect e (the NF whose queue wait is most abnormal), rank each
 *     component c by Impact(c) * Score(c->e), with Impact(c) = sum over all
 *     components x of W(c->x) * A(x) and Score(c->e) = W(c->e) * A(c).
 * The interval to diagnose may span several windows: per-window rankings are
 * summed, weighted by the effect's abnormality in each.
 *
 * Arrivals at a node are matched by wire ID to the latest upstream transmit
 * of the same ID before the dequeue; the traffic graph is inferred from those
 * matches (edges carrying at least 1% of a node's packets).
 */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "mscope_trace.h"

enum { V_ARR, V_DEQ, V_TX, V_QLEN, V_WAIT, V_PROC, V_DROP, V_MAXFLOW, NV };

#define MAX_COMP 256
#define NO_TIME UINT64_MAX

struct vec_u64 {
	uint64_t *v;
	size_t n, cap;
};

struct node {
	int comp;
	/* dequeues (rx), in file order */
	struct vec_u64 rx_tsc, rx_wire, rx_arr;
	/* departures (tx): time and processing time (e - d) or NO_TIME */
	struct vec_u64 tx_tsc, tx_proc, tx_flow, tx_wire;
	struct vec_u64 drop_tsc;
	/* packet chains for end-to-end latency: each dequeue's upstream
	 * departure (node << 32 | index, or NO_TIME), each departure's dequeue
	 * index (or NO_TIME), and whether a departure arrived somewhere */
	struct vec_u64 rx_up, tx_rx;
	unsigned char *tx_fwd;
};

struct txev {
	uint32_t wire;
	uint32_t node;
	uint64_t tsc;
	uint32_t idx;   /* departure index within its node */
};

struct nm_model {
	char comp[MAX_COMP][64];
	int comp_source[MAX_COMP];
	size_t ncomp;
	struct node *nodes;
	size_t nnodes;
	double tsc_hz;
	uint64_t start, end;
	/* adjacency between components (traffic graph) */
	unsigned char edge[MAX_COMP][MAX_COMP];
};

static void
seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

static int
push(struct vec_u64 *v, uint64_t x)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 1024;
		uint64_t *p = realloc(v->v, cap * sizeof(*p));

		if (!p)
			return -1;
		v->v = p;
		v->cap = cap;
	}
	v->v[v->n++] = x;
	return 0;
}

static int
comp_index(struct nm_model *m, const char *name, int source)
{
	for (size_t i = 0; i < m->ncomp; i++)
		if (!strcmp(m->comp[i], name))
			return (int)i;
	if (m->ncomp == MAX_COMP)
		return -1;
	snprintf(m->comp[m->ncomp], sizeof(m->comp[0]), "%s", name);
	m->comp_source[m->ncomp] = source;
	return (int)m->ncomp++;
}

static int
load_file(struct nm_model *m, const char *path, char *err, size_t errlen)
{
	struct mscope_trace_error terr;
	struct mscope_trace_reader *r = mscope_reader_open(path, &terr);
	const struct mscope_trace_header *h;
	struct mscope_record rec;
	struct node *nd, *nn;
	int rc, source;

	if (!r) {
		seterr(err, errlen, "%s: offset %llu: %s", terr.file,
			(unsigned long long)terr.offset, terr.text);
		return -1;
	}
	h = mscope_reader_header(r);
	source = h->role == MSCOPE_ROLE_SOURCE;
	nn = realloc(m->nodes, (m->nnodes + 1) * sizeof(*nn));
	if (!nn) {
		mscope_reader_close(r);
		seterr(err, errlen, "out of memory");
		return -1;
	}
	m->nodes = nn;
	nd = &m->nodes[m->nnodes];
	memset(nd, 0, sizeof(*nd));
	nd->comp = comp_index(m, source ? "source" : h->nf_name, source);
	if (nd->comp < 0) {
		mscope_reader_close(r);
		seterr(err, errlen, "%s: more than %d components", path, MAX_COMP);
		return -1;
	}
	m->nnodes++;
	if (h->tsc_hz)
		m->tsc_hz = (double)h->tsc_hz;
	while ((rc = mscope_reader_next(r, &rec, &terr)) == 1) {
		uint64_t t = 0;
		int bad = 0;

		switch (rec.type) {
		case MSCOPE_REC_RX:
			t = rec.u.rx.tsc;
			for (uint32_t i = 0; i < rec.u.rx.n && !bad; i++)
				bad = push(&nd->rx_tsc, t) || push(&nd->rx_wire, rec.u.rx.wire_id[i]) ||
					push(&nd->rx_arr, NO_TIME);
			break;
		case MSCOPE_REC_TX:
			t = rec.u.tx.tsc;
			for (uint32_t i = 0; i < rec.u.tx.accepted && !bad; i++) {
				uint64_t s = rec.u.tx.rx_seq ? rec.u.tx.rx_seq[i] : MSCOPE_NO_LINK;
				uint64_t proc = NO_TIME;

				if (s != MSCOPE_NO_LINK && s < nd->rx_tsc.n && nd->rx_tsc.v[s] <= t)
					proc = t - nd->rx_tsc.v[s];
				bad = push(&nd->tx_tsc, t) || push(&nd->tx_proc, proc) ||
					push(&nd->tx_flow, rec.u.tx.flow ? rec.u.tx.flow[i] : 0) ||
					push(&nd->tx_wire, rec.u.tx.wire_id[i]) ||
					push(&nd->tx_rx, proc == NO_TIME ? NO_TIME : s);
			}
			break;
		case MSCOPE_REC_DROP:
			t = rec.u.drop.tsc;
			for (uint32_t i = 0; i < rec.u.drop.n && !bad; i++)
				bad = push(&nd->drop_tsc, t);
			break;
		default:
			break;
		}
		if (bad) {
			mscope_reader_close(r);
			seterr(err, errlen, "out of memory");
			return -1;
		}
		if (t) {
			if (!m->start || t < m->start)
				m->start = t;
			if (t > m->end)
				m->end = t;
		}
	}
	mscope_reader_close(r);
	if (rc < 0) {
		seterr(err, errlen, "%s: offset %llu: %s", terr.file,
			(unsigned long long)terr.offset, terr.text);
		return -1;
	}
	return 0;
}

static int
cmp_txev(const void *a, const void *b)
{
	const struct txev *x = a, *y = b;

	if (x->wire != y->wire)
		return x->wire < y->wire ? -1 : 1;
	if (x->tsc != y->tsc)
		return x->tsc < y->tsc ? -1 : 1;
	return (x->node > y->node) - (x->node < y->node);
}

static int
has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return a >= b && !strcmp(s + a - b, suf);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Arrival of each dequeued packet: the latest transmit of the same wire ID
 * by another node before the dequeue. Also infers the traffic graph. */
static int
match_arrivals(struct nm_model *m, char *err, size_t errlen)
{
	size_t total = 0, k = 0;
	struct txev *ev;
	uint64_t (*cnt)[MAX_COMP];

	for (size_t i = 0; i < m->nnodes; i++)
		total += m->nodes[i].tx_tsc.n;
	ev = malloc((total ? total : 1) * sizeof(*ev));
	cnt = calloc(MAX_COMP, sizeof(*cnt));
	if (!ev || !cnt) {
		free(ev);
		free(cnt);
		seterr(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < m->nnodes; i++)
		for (size_t j = 0; j < m->nodes[i].tx_tsc.n; j++)
			ev[k++] = (struct txev){ (uint32_t)m->nodes[i].tx_wire.v[j], (uint32_t)i,
				m->nodes[i].tx_tsc.v[j], (uint32_t)j };
	qsort(ev, total, sizeof(*ev), cmp_txev);
	for (size_t i = 0; i < m->nnodes; i++) {
		struct node *nd = &m->nodes[i];

		nd->tx_fwd = calloc(nd->tx_tsc.n ? nd->tx_tsc.n : 1, 1);
		nd->rx_up.v = malloc((nd->rx_tsc.n ? nd->rx_tsc.n : 1) * sizeof(uint64_t));
		if (!nd->tx_fwd || !nd->rx_up.v) {
			free(ev);
			free(cnt);
			seterr(err, errlen, "out of memory");
			return -1;
		}
		nd->rx_up.n = nd->rx_up.cap = nd->rx_tsc.n;
		for (size_t j = 0; j < nd->rx_tsc.n; j++)
			nd->rx_up.v[j] = NO_TIME;
	}
	for (size_t i = 0; i < m->nnodes; i++) {
		struct node *nd = &m->nodes[i];
		uint64_t nrx = nd->rx_tsc.n;

		for (size_t j = 0; j < nrx; j++) {
			uint32_t w = (uint32_t)nd->rx_wire.v[j];
			uint64_t d = nd->rx_tsc.v[j];
			size_t lo = 0, hi = total, best = SIZE_MAX;

			/* last event with (wire, tsc) <= (w, d) */
			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;

				if (ev[mid].wire < w || (ev[mid].wire == w && ev[mid].tsc <= d))
					lo = mid + 1;
				else
					hi = mid;
			}
			for (size_t q = lo; q-- > 0 && ev[q].wire == w; ) {
				if (ev[q].node != i) {
					best = q;
					break;
				}
			}
			if (best != SIZE_MAX) {
				nd->rx_arr.v[j] = ev[best].tsc;
				nd->rx_up.v[j] = (uint64_t)ev[best].node << 32 | ev[best].idx;
				m->nodes[ev[best].node].tx_fwd[ev[best].idx] = 1;
				cnt[m->nodes[ev[best].node].comp][nd->comp]++;
			}
		}
	}
	for (size_t d = 0; d < m->ncomp; d++) {
		uint64_t in = 0;

		for (size_t s = 0; s < m->ncomp; s++)
			in += cnt[s][d];
		for (size_t s = 0; s < m->ncomp; s++)
			if (s != d && cnt[s][d] >= 10 && cnt[s][d] * 100 >= in)
				m->edge[s][d] = 1;
	}
	free(ev);
	free(cnt);
	for (size_t i = 0; i < m->nnodes; i++) {
		free(m->nodes[i].tx_wire.v);
		free(m->nodes[i].rx_wire.v);
		memset(&m->nodes[i].tx_wire, 0, sizeof(struct vec_u64));
		memset(&m->nodes[i].rx_wire, 0, sizeof(struct vec_u64));
	}
	return 0;
}

struct nm_model *
nm_load(const char *dir, uint64_t start_tsc, char *err, size_t errlen)
{
	struct nm_model *m = calloc(1, sizeof(*m));
	char **names = NULL;
	size_t nnames = 0;
	struct dirent *de;
	DIR *d;

	if (!m) {
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	m->tsc_hz = 1e9;
	d = opendir(dir);
	if (!d) {
		seterr(err, errlen, "%s: cannot open directory", dir);
		free(m);
		return NULL;
	}
	while ((de = readdir(d))) {
		char **nn;

		if (!has_suffix(de->d_name, ".mst"))
			continue;
		nn = realloc(names, (nnames + 1) * sizeof(*nn));
		if (!nn || !(nn[nnames] = strdup(de->d_name))) {
			free(nn ? nn : names);
			closedir(d);
			seterr(err, errlen, "out of memory");
			free(m);
			return NULL;
		}
		names = nn;
		nnames++;
	}
	closedir(d);
	if (!nnames) {
		seterr(err, errlen, "%s: no trace files (*.mst)", dir);
		free(m);
		return NULL;
	}
	qsort(names, nnames, sizeof(*names), cmp_str);
	for (size_t i = 0; i < nnames; i++) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (load_file(m, path, err, errlen) < 0)
			goto fail;
	}
	if (match_arrivals(m, err, errlen) < 0)
		goto fail;
	if (start_tsc)
		m->start = start_tsc;
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	return m;
fail:
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	nm_free(m);
	return NULL;
}

void
nm_free(struct nm_model *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nnodes; i++) {
		struct node *nd = &m->nodes[i];

		free(nd->rx_tsc.v);
		free(nd->rx_wire.v);
		free(nd->rx_arr.v);
		free(nd->tx_tsc.v);
		free(nd->tx_proc.v);
		free(nd->tx_flow.v);
		free(nd->tx_wire.v);
		free(nd->drop_tsc.v);
		free(nd->rx_up.v);
		free(nd->tx_rx.v);
		free(nd->tx_fwd);
	}
	free(m->nodes);
	free(m);
}

double
nm_duration_us(const struct nm_model *m)
{
	return m->end > m->start ? (double)(m->end - m->start) * 1e6 / m->tsc_hz : 0;
}

size_t
nm_components(const struct nm_model *m)
{
	return m->ncomp;
}

const char *
nm_component_name(const struct nm_model *m, size_t i)
{
	return i < m->ncomp ? m->comp[i] : NULL;
}

static int overlaps(double a0, double a1, const double *ex, size_t n);

static int
cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double
nm_latency_quantile(const struct nm_model *m, const double *exclude, size_t n_exclude, double q)
{
	struct vec_u64 lat = { 0 };
	double *d, res = -1;
	size_t n = 0;

	/* every departure that arrived nowhere left the graph: follow it back
	 * (departure -> its dequeue -> the upstream departure) to the source */
	for (size_t i = 0; i < m->nnodes; i++) {
		const struct node *nd = &m->nodes[i];

		if (m->comp_source[nd->comp])
			continue;
		for (size_t j = 0; j < nd->tx_tsc.n; j++) {
			uint64_t ni = i, tj = j, in = NO_TIME;
			double us;

			if (nd->tx_fwd[j])
				continue;
			for (int hop = 0; hop < 64; hop++) {
				const struct node *x = &m->nodes[ni];
				uint64_t r, up;

				if (m->comp_source[x->comp]) {
					in = x->tx_tsc.v[tj];
					break;
				}
				r = x->tx_rx.v[tj];
				if (r == NO_TIME || r >= x->rx_up.n || (up = x->rx_up.v[r]) == NO_TIME)
					break;
				ni = up >> 32;
				tj = up & 0xffffffffu;
			}
			if (in == NO_TIME || in < m->start || in > nd->tx_tsc.v[j])
				continue;
			us = (double)(in - m->start) * 1e6 / m->tsc_hz;
			if (overlaps(us, us, exclude, n_exclude) ||
			    overlaps(us - 1, us + 1, exclude, n_exclude))
				continue;
			if (push(&lat, nd->tx_tsc.v[j] - in) < 0) {
				free(lat.v);
				return -1;
			}
		}
	}
	if (!lat.n) {
		free(lat.v);
		return -1;
	}
	d = malloc(lat.n * sizeof(*d));
	if (d) {
		for (size_t i = 0; i < lat.n; i++)
			d[n++] = (double)lat.v[i] * 1e6 / m->tsc_hz;
		qsort(d, n, sizeof(*d), cmp_dbl);
		res = d[(size_t)(q * (double)(n - 1))];
	}
	free(d);
	free(lat.v);
	return res;
}

/* ------------------------------------------------------------ diagnosis */

struct series {
	size_t nw, nc;
	double *x;     /* [nw][nc][NV] */
	double *wsum;  /* scratch: wait sums */
};

#define X(s, w, c, v) ((s)->x[((w) * (s)->nc + (c)) * NV + (v)])

static long
win_of(const struct nm_model *m, uint64_t t, double win_cyc, size_t nw)
{
	long w;

	if (t < m->start)
		return -1;
	w = (long)((double)(t - m->start) / win_cyc);
	return (size_t)w < nw ? w : -1;
}

static int
build_series(const struct nm_model *m, double window_us, struct series *s)
{
	double win_cyc = window_us * m->tsc_hz / 1e6;
	size_t nw = (size_t)(nm_duration_us(m) / window_us) + 1;
	double *cnt_wait, *cnt_proc;
	size_t maxflow_refs = 0;
	uint32_t *fc = NULL;

	s->nw = nw;
	s->nc = m->ncomp;
	s->x = calloc(nw * m->ncomp * NV, sizeof(double));
	cnt_wait = calloc(nw * m->ncomp, sizeof(double));
	cnt_proc = calloc(nw * m->ncomp, sizeof(double));
	if (!s->x || !cnt_wait || !cnt_proc)
		goto oom;
	for (size_t i = 0; i < m->nnodes; i++) {
		const struct node *nd = &m->nodes[i];
		int c = nd->comp;

		for (size_t j = 0; j < nd->rx_tsc.n; j++) {
			long w = win_of(m, nd->rx_tsc.v[j], win_cyc, nw);
			uint64_t a = nd->rx_arr.v[j];

			if (w >= 0)
				X(s, w, c, V_DEQ) += 1;
			if (a == NO_TIME)
				a = nd->rx_tsc.v[j];
			if (w >= 0) {
				X(s, w, c, V_WAIT) += (double)(nd->rx_tsc.v[j] - a) * 1e6 / m->tsc_hz;
				cnt_wait[w * m->ncomp + c] += 1;
			}
			w = win_of(m, a, win_cyc, nw);
			if (w >= 0)
				X(s, w, c, V_ARR) += 1;
		}
		for (size_t j = 0; j < nd->tx_tsc.n; j++) {
			long w = win_of(m, nd->tx_tsc.v[j], win_cyc, nw);

			if (w < 0)
				continue;
			X(s, w, c, V_TX) += 1;
			if (nd->tx_proc.v[j] != NO_TIME) {
				X(s, w, c, V_PROC) += (double)nd->tx_proc.v[j] * 1e6 / m->tsc_hz;
				cnt_proc[w * m->ncomp + c] += 1;
			}
			if (nd->tx_flow.v[j] + 1 > maxflow_refs)
				maxflow_refs = nd->tx_flow.v[j] + 1;
		}
		for (size_t j = 0; j < nd->drop_tsc.n; j++) {
			long w = win_of(m, nd->drop_tsc.v[j], win_cyc, nw);

			if (w >= 0) {
				X(s, w, c, V_DROP) += 1;
				X(s, w, c, V_ARR) += 1;
			}
		}
	}
	/* queue length at each window's end; means of wait and processing */
	for (size_t c = 0; c < m->ncomp; c++) {
		double q = 0;

		for (size_t w = 0; w < nw; w++) {
			q += X(s, w, c, V_ARR) - X(s, w, c, V_DROP) - X(s, w, c, V_DEQ);
			X(s, w, c, V_QLEN) = q > 0 ? q : 0;
			if (cnt_wait[w * m->ncomp + c] > 0)
				X(s, w, c, V_WAIT) /= cnt_wait[w * m->ncomp + c];
			if (cnt_proc[w * m->ncomp + c] > 0)
				X(s, w, c, V_PROC) /= cnt_proc[w * m->ncomp + c];
		}
	}
	/* the source's heaviest flow per window (flow refs are small per file) */
	if (maxflow_refs > (1u << 24))
		maxflow_refs = 1u << 24;
	fc = calloc(maxflow_refs ? maxflow_refs : 1, sizeof(*fc));
	if (!fc)
		goto oom;
	for (size_t i = 0; i < m->nnodes; i++) {
		const struct node *nd = &m->nodes[i];
		long cur = -1;
		uint32_t best = 0;
		size_t first = 0;

		if (!m->comp_source[nd->comp])
			continue;
		for (size_t j = 0; j <= nd->tx_tsc.n; j++) {
			long w = j < nd->tx_tsc.n ? win_of(m, nd->tx_tsc.v[j], win_cyc, nw) : -2;

			if (w != cur) {
				if (cur >= 0 && best > X(s, cur, nd->comp, V_MAXFLOW))
					X(s, cur, nd->comp, V_MAXFLOW) = best;
				for (size_t q = first; q < j; q++)
					if (nd->tx_flow.v[q] < maxflow_refs)
						fc[nd->tx_flow.v[q]] = 0;
				cur = w;
				best = 0;
				first = j;
			}
			if (j < nd->tx_tsc.n && w >= 0 && nd->tx_flow.v[j] < maxflow_refs) {
				uint32_t v = ++fc[nd->tx_flow.v[j]];

				if (v > best)
					best = v;
			}
		}
	}
	free(fc);
	free(cnt_wait);
	free(cnt_proc);
	return 0;
oom:
	free(fc);
	free(cnt_wait);
	free(cnt_proc);
	free(s->x);
	s->x = NULL;
	return -1;
}

static int
overlaps(double a0, double a1, const double *ex, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a0 < ex[2 * i + 1] && ex[2 * i] < a1)
			return 1;
	return 0;
}

/* Variables are counts per window or times in us: deviations smaller than
 * one unit are noise, whatever the history's spread. */
static double
sd_floor(int v, double mu)
{
	double f = 0.05 * fabs(mu);

	(void)v;
	return f > 1.0 ? f : 1.0;
}

struct hist {
	double mu[MAX_COMP][NV], sd[MAX_COMP][NV];
	size_t *hw; /* history window indices */
	size_t nh;
};

static double
zval(const struct series *s, const struct hist *h, size_t w, size_t c, int v)
{
	double z = (X(s, w, c, v) - h->mu[c][v]) / h->sd[c][v];

	return z > 10 ? 10 : z < -10 ? -10 : z;
}

static double
abnormality(const struct series *s, const struct hist *h, size_t w, size_t c)
{
	double a = 0;

	for (int v = 0; v < NV; v++) {
		double p = erf(fabs(zval(s, h, w, c, v)) / M_SQRT2);

		if (p > a)
			a = p;
	}
	return a;
}

static double
state_dist(const struct series *s, const struct hist *h, size_t w1, size_t w2, size_t c)
{
	double d = 0;

	for (int v = 0; v < NV; v++)
		d += fabs(zval(s, h, w1, c, v) - zval(s, h, w2, c, v));
	return d / NV;
}

static int
cmp_dbl_idx(const void *a, const void *b)
{
	const double *x = a, *y = b;

	return (x[0] > y[0]) - (x[0] < y[0]);
}

/* NetMedic §5.2: weight of S -> D in window w. */
static double
edge_weight(const struct series *s, const struct hist *h, size_t w, size_t src, size_t dst,
		double *scratch)
{
	size_t k, nk;
	double sum = 0;

	if (!h->nh)
		return 0.8;
	for (size_t i = 0; i < h->nh; i++) {
		scratch[2 * i] = state_dist(s, h, h->hw[i], w, src);
		scratch[2 * i + 1] = (double)h->hw[i];
	}
	qsort(scratch, h->nh, 2 * sizeof(double), cmp_dbl_idx);
	/* the source's current state was never seen: default high weight */
	if (scratch[0] > 1.5)
		return 0.8;
	nk = h->nh / 10 ? h->nh / 10 : 1;
	for (k = 0; k < nk; k++) {
		double dd = state_dist(s, h, (size_t)scratch[2 * k + 1], w, dst);

		sum += 1.0 - (dd / 3.0 < 1.0 ? dd / 3.0 : 1.0);
	}
	return sum / (double)nk;
}

/* Best geometric mean of edge weights over simple paths from c to every x. */
static void
path_weights(const struct nm_model *m, const double ew[MAX_COMP][MAX_COMP], size_t c,
		double *wbest)
{
	size_t stack[MAX_COMP], depth = 0;
	size_t next[MAX_COMP];
	double logsum[MAX_COMP];
	unsigned char on[MAX_COMP] = { 0 };
	unsigned long steps = 0;

	for (size_t x = 0; x < m->ncomp; x++)
		wbest[x] = 0;
	wbest[c] = 1;
	stack[0] = c;
	next[0] = 0;
	logsum[0] = 0;
	on[c] = 1;
	depth = 1;
	/* DFS over simple paths; the NF graphs here are small DAGs. */
	while (depth && steps++ < 2000000) {
		size_t u = stack[depth - 1];
		size_t v = next[depth - 1]++;

		if (v >= m->ncomp) {
			on[u] = 0;
			depth--;
			continue;
		}
		if (!m->edge[u][v] || on[v] || ew[u][v] <= 0)
			continue;
		logsum[depth] = logsum[depth - 1] + log(ew[u][v]);
		{
			double g = exp(logsum[depth] / (double)depth);

			if (g > wbest[v])
				wbest[v] = g;
		}
		stack[depth] = v;
		next[depth] = 0;
		on[v] = 1;
		depth++;
	}
}

struct rankent {
	double score;
	size_t comp;
};

static int
cmp_rank(const void *a, const void *b)
{
	const struct rankent *x = a, *y = b;

	if (x->score != y->score)
		return x->score < y->score ? 1 : -1;
	return (x->comp > y->comp) - (x->comp < y->comp);
}

int
nm_diagnose(const struct nm_model *m, double window_us, const double *exclude,
		size_t n_exclude, double from_us, double to_us, struct ev_culprit *out,
		size_t max, char *err, size_t errlen)
{
	struct series s = { 0 };
	struct hist *h = NULL;
	double (*ew)[MAX_COMP] = NULL;
	double *scratch = NULL, *wb = NULL, *abn = NULL, *impact = NULL, *total = NULL;
	struct rankent *re = NULL;
	size_t nc = m->ncomp, n = 0;
	int rc = -1;

	if (window_us <= 0 || to_us <= from_us) {
		seterr(err, errlen, "netmedic: empty interval or window");
		return -1;
	}
	if (build_series(m, window_us, &s) < 0)
		goto oom;
	h = calloc(1, sizeof(*h));
	ew = calloc(MAX_COMP, sizeof(*ew));
	wb = calloc(nc * nc, sizeof(double));
	abn = calloc(nc, sizeof(double));
	impact = calloc(nc, sizeof(double));
	total = calloc(nc, sizeof(double));
	re = calloc(nc, sizeof(*re));
	if (!h || !ew || !wb || !abn || !impact || !total || !re)
		goto oom;
	h->hw = calloc(s.nw, sizeof(size_t));
	scratch = calloc(2 * s.nw + 2, sizeof(double));
	if (!h->hw || !scratch)
		goto oom;
	/* history: whole windows that overlap no fault (the last window is partial) */
	for (size_t w = 0; w + 1 < s.nw; w++) {
		double a = (double)w * window_us, b = a + window_us;

		if (!overlaps(a, b, exclude, n_exclude) && !overlaps(a, b, (double[]){ from_us, to_us }, 1))
			h->hw[h->nh++] = w;
	}
	for (size_t c = 0; c < nc; c++) {
		for (int v = 0; v < NV; v++) {
			double sum = 0, sq = 0, mu, var;

			for (size_t i = 0; i < h->nh; i++)
				sum += X(&s, h->hw[i], c, v);
			mu = h->nh ? sum / (double)h->nh : 0;
			for (size_t i = 0; i < h->nh; i++) {
				double d = X(&s, h->hw[i], c, v) - mu;

				sq += d * d;
			}
			var = h->nh > 1 ? sq / (double)(h->nh - 1) : 0;
			h->mu[c][v] = mu;
			h->sd[c][v] = fmax(sqrt(var), sd_floor(v, mu));
		}
	}
	for (size_t w = 0; w < s.nw; w++) {
		double a = (double)w * window_us, b = a + window_us;
		size_t e = SIZE_MAX;
		double ebest = 0, rmax = 0;

		if (b <= from_us || a >= to_us)
			continue;
		/* effect: the NF whose queue wait is most abnormally high */
		for (size_t c = 0; c < nc; c++) {
			double z = zval(&s, h, w, c, V_WAIT), p;

			abn[c] = abnormality(&s, h, w, c);
			if (m->comp_source[c] || z <= 0)
				continue;
			p = erf(z / M_SQRT2);
			if (p > ebest) {
				ebest = p;
				e = c;
			}
		}
		if (e == SIZE_MAX || ebest < 0.5)
			continue;
		for (size_t u = 0; u < nc; u++)
			for (size_t v = 0; v < nc; v++)
				ew[u][v] = m->edge[u][v] ? edge_weight(&s, h, w, u, v, scratch) : 0;
		for (size_t c = 0; c < nc; c++) {
			path_weights(m, (const double (*)[MAX_COMP])ew, c, &wb[c * nc]);
			impact[c] = 0;
			for (size_t x = 0; x < nc; x++)
				impact[c] += wb[c * nc + x] * abn[x];
		}
		for (size_t c = 0; c < nc; c++) {
			re[c].comp = c;
			re[c].score = impact[c] * wb[c * nc + e] * abn[c];
			if (re[c].score > rmax)
				rmax = re[c].score;
		}
		if (rmax <= 0)
			continue;
		for (size_t c = 0; c < nc; c++)
			total[c] += ebest * re[c].score / rmax;
	}
	for (size_t c = 0; c < nc; c++) {
		re[c].comp = c;
		re[c].score = total[c];
	}
	qsort(re, nc, sizeof(*re), cmp_rank);
	for (size_t i = 0; i < nc && n < max; i++) {
		if (re[i].score <= 0)
			break;
		memset(&out[n], 0, sizeof(out[n]));
		snprintf(out[n].nf, sizeof(out[n].nf), "%s", m->comp[re[i].comp]);
		out[n].kind = m->comp_source[re[i].comp] ? EV_KIND_SOURCE : EV_KIND_PROCESSING;
		ev_flowset_any(&out[n].flow);
		out[n].score = re[i].score;
		n++;
	}
	rc = (int)n;
	goto done;
oom:
	seterr(err, errlen, "out of memory");
done:
	if (h)
		free(h->hw);
	free(h);
	free(ew);
	free(scratch);
	free(wb);
	free(abn);
	free(impact);
	free(total);
	free(re);
	free(s.x);
	return rc;
}
