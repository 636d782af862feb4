/* SPDX-License-Identifier: BSD-3-Clause */
/* Per-node timelines (method.md §2): arrivals sorted by time, dequeues in rx
 * order (monotone), Q(t) = #{a <= t} - #{d <= t}, and for every arrival the
 * start of its busy period (the last time before it when the queue was empty),
 * so that n_i and n_p of any packet are two binary searches away. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "an_internal.h"

struct sort_ctx {
	const struct mscope_analysis *an;
	uint32_t base;
};

static int
cmp_arr(const void *x, const void *y, void *arg)
{
	const struct sort_ctx *sc = arg;
	const struct mscope_analysis *sort_an = sc->an;
	uint32_t sort_base = sc->base;
	uint32_t i = *(const uint32_t *)x, j = *(const uint32_t *)y;
	int64_t ai = an_arr(sort_an, sort_base + i), aj = an_arr(sort_an, sort_base + j);

	if (ai != aj)
		return ai < aj ? -1 : 1;
	return i < j ? -1 : i > j;
}

/* Dequeues at or before t. */
uint32_t
an_cnt_deq(const struct mscope_analysis *an, const struct an_node *nd, int64_t t)
{
	const int64_t *d = an->d + nd->base;
	uint32_t lo = 0, hi = nd->nrx;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (d[mid] <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* [ours] Packets *served* by time t. An NF dequeues a burst at d and sends
 * its last packet at e: the burst's packets are taken as served evenly over
 * [d, e]. Counting dequeues instead would treat a 32-packet burst still in
 * service as done and call the wait behind it a processing shortfall. */
double
an_served(const struct mscope_analysis *an, const struct an_node *nd, int64_t t)
{
	uint32_t j = an_cnt_deq(an, nd, t), s, end;
	const uint32_t b = nd->base;
	int64_t db, emax = INT64_MIN;

	if (j == 0)
		return 0;
	s = j - 1;
	while (s > 0 && !(an->fl[b + s] & H_BURST))
		s--;
	end = j;    /* every packet of the burst shares its dequeue time */
	db = an->d[b + s];
	for (uint32_t k = s; k < end; k++)
		if ((an->fl[b + k] & (H_TX | H_DROP)) && an->e[b + k] > emax)
			emax = an->e[b + k];
	if (emax <= db || t >= emax)
		return end;
	return (double)s + (double)(end - s) * (double)(t - db) / (double)(emax - db);
}

/* Position of rx hop `local` in the sorted arrival order. */
uint32_t
an_rank(const struct mscope_analysis *an, const struct an_node *nd, uint32_t local)
{
	uint32_t b = nd->base;
	int64_t t = an_arr(an, b + local);
	uint32_t lo = 0, hi = nd->nrx;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		uint32_t o = ORD(nd, mid);
		int64_t ao = an_arr(an, b + o);
		if (ao < t || (ao == t && o < local))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int
node_timeline(struct mscope_analysis *an, struct an_node *nd)
{
	uint32_t n = nd->nrx, j = 0, start = 0;
	const int64_t *d = an->d + nd->base;
	uint32_t b = nd->base;
	bool sorted = true;
	int64_t *tmp;

	nd->pstart = malloc((n ? n : 1) * sizeof(*nd->pstart));
	tmp = malloc((n ? n : 1) * sizeof(*tmp));
	if (nd->pstart == NULL || tmp == NULL) {
		free(tmp);
		return -1;
	}
	for (uint32_t i = 1; i < n && sorted; i++)
		if (an_arr(an, b + i) < an_arr(an, b + i - 1))
			sorted = false;
	if (!sorted) {
		/* only when arrivals are out of rx order (several upstreams, noise) */
		nd->ord = malloc(n * sizeof(*nd->ord));
		if (nd->ord == NULL) {
			free(tmp);
			return -1;
		}
		for (uint32_t i = 0; i < n; i++)
			nd->ord[i] = i;
		struct sort_ctx sc = { an, nd->base };
		qsort_r(nd->ord, n, sizeof(*nd->ord), cmp_arr, &sc);
	}
	/* Busy periods (queue and server empty: every earlier arrival served)
	 * and the backlog each arrival met, itself included. */
	for (uint32_t i = 0; i < n; i++) {
		int64_t t = an_arr(an, b + ORD(nd, i));
		double served = an_served(an, nd, t);

		(void)j;
		if (served + 1e-9 >= (double)i)
			start = i;
		nd->pstart[i] = start;
		tmp[i] = (int64_t)ceil((double)i + 1 - served - 1e-9);
		if (tmp[i] < 0)
			tmp[i] = 0;
		an->qa[nd->base + ORD(nd, i)] = (uint16_t)(tmp[i] > UINT16_MAX ? UINT16_MAX : tmp[i]);
	}
	nd->qlen_max = 0;
	for (uint32_t i = 0; i < n; i++)
		if ((uint32_t)tmp[i] > nd->qlen_max)
			nd->qlen_max = (uint32_t)tmp[i];
	nd->qlen_p99 = (uint32_t)an_select(tmp, n, 99);
	nd->qlen_p50 = (uint32_t)an_select(tmp, n, 50);
	for (uint32_t i = 0; i < n; i++)
		tmp[i] = d[i] - an_arr(an, b + i);
	nd->wait_p99 = an_select(tmp, n, 99);
	nd->wait_p90 = an_select(tmp, n, 90);
	nd->wait_p50 = an_select(tmp, n, 50);
	free(tmp);
	return 0;
}

static int
timeline_job(struct mscope_analysis *an, uint32_t k, void *scratch)
{
	(void)scratch;
	if (an->nodes[k].is_source)
		return 0;
	return node_timeline(an, &an->nodes[k]);
}

int
an_timeline(struct mscope_analysis *an, struct mscope_an_error *err)
{
	an->t_start = INT64_MAX;
	an->t_end = INT64_MIN;
	for (uint32_t g = 0; g < an->nh; g++) {
		if (an_arr(an, g) < an->t_start)
			an->t_start = an_arr(an, g);
		if (an->d[g] > an->t_end)
			an->t_end = an->d[g];
		if ((an->fl[g] & (H_TX | H_DROP)) && an->e[g] > an->t_end)
			an->t_end = an->e[g];
	}
	if (an->nh == 0)
		an->t_start = an->t_end = 0;
	if (an->windowed)
		an->t_start = an->run_start;    /* the origin of --from/--to */
	an->qa = calloc(an->nh ? an->nh : 1, sizeof(*an->qa));
	if (an->qa == NULL) {
		an_err(err, "out of memory (timeline)");
		return -1;
	}
	if (an_for_nodes(an, timeline_job, 0)) {
		an_err(err, "out of memory (timelines)");
		return -1;
	}
	return 0;
}

/* Queue length over the run, at most `points` samples (max within each bin). */
json_t *
an_series(const struct mscope_analysis *an, const struct an_node *nd, int points)
{
	json_t *obj = json_object(), *ts = json_array(), *qs = json_array();
	const int64_t *d = an->d + nd->base;
	const uint32_t b = nd->base;
	/* a window's series covers its region, not the run before it */
	int64_t s0 = an->windowed && an->region_t0 > an->t_start ? an->region_t0 : an->t_start;
	int64_t span = an->t_end - s0, bin;
	uint32_t i = 0, j = 0, n = nd->nrx;

	if (span <= 0)
		span = 1;
	bin = (span + points - 1) / points;
	if (bin <= 0)
		bin = 1;
	for (int64_t t0 = s0; t0 <= an->t_end; t0 += bin) {
		int64_t t1 = t0 + bin;
		int64_t q, qmax;

		/* state at bin start, then the max over arrivals inside it */
		while (j < n && d[j] < t0)
			j++;
		while (i < n && an_arr(an, b + ORD(nd, i)) < t0)
			i++;
		q = (int64_t)i - (int64_t)j;
		qmax = q < 0 ? 0 : q;
		while (i < n && an_arr(an, b + ORD(nd, i)) < t1) {
			while (j < n && d[j] <= an_arr(an, b + ORD(nd, i)))
				j++;
			i++;
			q = (int64_t)i - (int64_t)j;
			if (q > qmax)
				qmax = q;
		}
		json_array_append_new(ts, json_real(an_us(an, t0 - an->t_start)));
		json_array_append_new(qs, json_integer(qmax));
	}
	json_object_set_new(obj, "t_us", ts);
	json_object_set_new(obj, "qlen", qs);
	return obj;
}
