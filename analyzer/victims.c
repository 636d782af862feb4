/* SPDX-License-Identifier: BSD-3-Clause */
/* Victims [ours, method.md §2]: packets whose end-to-end latency exceeds a
 * threshold (absolute, or a percentile of the trace) and dropped packets,
 * optionally restricted by flow and by ingress time. End to end = from the
 * ingress (source tx, else arrival at the first NF) to the last tx or drop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "an_internal.h"

static int
cmp_victim(const void *x, const void *y)
{
	const struct an_victim *a = x, *b = y;

	if (a->t_in != b->t_in)
		return a->t_in < b->t_in ? -1 : 1;
	return a->term < b->term ? -1 : a->term > b->term;
}

static uint32_t
root_of(const struct mscope_analysis *an, uint32_t g)
{
	uint32_t steps = 0;

	while ((an->fl[g] & H_PRED) && steps++ < 1024)
		g = an->pred[g];
	return g;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static bool
nf_drop(const struct an_node *nd, uint32_t h)
{
	return nd->nnfd != 0 &&
		bsearch(&h, nd->nfd, nd->nnfd, sizeof(*nd->nfd), cmp_u32) != NULL;
}

/* Did a packet that entered at t_in (ticks) enter in the --from/--to window? */
static bool
in_window(const struct mscope_analysis *an, int64_t t_in)
{
	const struct mscope_an_opts *o = &an->opts;

	if (t_in - an->t_start < o->from_ns * an->hz / 1e9)
		return false;
	return o->to_ns < 0 || t_in - an->t_start <= o->to_ns * an->hz / 1e9;
}

int
an_victims(struct mscope_analysis *an, struct mscope_an_error *err)
{
	int64_t *lat = NULL;
	size_t nlat = 0, cap = 0;
	const struct mscope_an_opts *o = &an->opts;

	an->delivered = an->dropped_pkts = an->in_flight = an->nf_dropped = 0;
	for (uint32_t k = 0; k < an->nnodes; k++) {
		struct an_node *nd = &an->nodes[k];
		nd->packets = nd->n;
		nd->drops = nd->nf_drops = 0;
		nd->victims = 0;
		if (nd->is_source)
			continue;
		if (nd->nnfd > 1) {
			size_t u = 1;
			qsort(nd->nfd, nd->nnfd, sizeof(*nd->nfd), cmp_u32);
			for (size_t i = 1; i < nd->nnfd; i++)
				if (nd->nfd[i] != nd->nfd[u - 1])
					nd->nfd[u++] = nd->nfd[i];
			nd->nnfd = u;
		}
		for (uint32_t h = 0; h < nd->n; h++) {
			uint32_t g = nd->base + h;
			if (!(an->fl[g] & H_DROP))
				continue;
			if (nf_drop(nd, h))
				nd->nf_drops++;
			else
				nd->drops++;
		}
	}
	/* Latency percentile over delivered packets: those that entered in the
	 * window when there is one (a window's victims are judged against the
	 * window, not against a run whose p99 a fault elsewhere set). */
	bool windowed = an->windowed;
	for (uint32_t k = 0; k < an->nnodes; k++) {
		const struct an_node *nd = &an->nodes[k];
		if (nd->is_source)
			continue;
		for (uint32_t h = 0; h < nd->n; h++) {
			uint32_t g = nd->base + h;
			uint8_t f = an->fl[g];

			if (f & H_SUCC)
				continue;
			if (f & H_DROP) {
				if (nf_drop(nd, h))
					an->nf_dropped++;
				else
					an->dropped_pkts++;
				continue;
			}
			if (!(f & H_TX)) {
				an->in_flight++;
				continue;
			}
			uint32_t r = root_of(an, g);
			int64_t tin = an_arr(an, r);
			an->delivered++;
			if (windowed && !in_window(an, tin))
				continue;
			void *p = an_grow(lat, &cap, nlat + 1, sizeof(*lat));
			if (p == NULL)
				goto oom;
			lat = p;
			lat[nlat++] = an->e[g] - tin;
		}
	}
	if (o->threshold_us > 0) {
		an->lat_threshold = an_ticks(an, o->threshold_us);
		snprintf(an->thr_from, sizeof(an->thr_from), "--threshold");
	} else {
		an->lat_threshold = nlat ? an_select(lat, nlat, o->percentile) : 0;
		snprintf(an->thr_from, sizeof(an->thr_from), "p%g of the %zu packets delivered%s",
			o->percentile, nlat, windowed ? " that entered in the window" : "");
	}
	free(lat);
	lat = NULL;

	cap = 0;
	an->nvictims = 0;
	for (uint32_t k = 0; k < an->nnodes; k++) {
		const struct an_node *nd = &an->nodes[k];
		if (nd->is_source)
			continue;
		for (uint32_t h = 0; h < nd->n; h++) {
			uint32_t g = nd->base + h, r;
			uint8_t f = an->fl[g];
			struct an_victim v;

			if ((f & H_SUCC) || !(f & (H_TX | H_DROP)))
				continue;
			/* The NF's own decision (a firewall rule): not a performance victim. */
			if ((f & H_DROP) && nf_drop(nd, h))
				continue;
			r = root_of(an, g);
			memset(&v, 0, sizeof(v));
			v.term = g;
			v.root = r;
			v.t_in = an_arr(an, r);
			v.latency = an->e[g] - v.t_in;
			v.dropped = (f & H_DROP) != 0;
			if (v.dropped ? o->no_drops : v.latency <= an->lat_threshold)
				continue;
			if (!in_window(an, v.t_in))
				continue;
			if (o->filter.set &&
					!an_filter_match(&o->filter, &an->flows[an->flow[r]]) &&
					!an_filter_match(&o->filter, &an->flows[an->flow[g]]))
				continue;
			void *p = an_grow(an->victims, &cap, (size_t)an->nvictims + 1,
					sizeof(*an->victims));
			if (p == NULL)
				goto oom;
			an->victims = p;
			an->victims[an->nvictims++] = v;
		}
	}
	if (an->nvictims)
		qsort(an->victims, an->nvictims, sizeof(*an->victims), cmp_victim);
	if (an->in_flight)
		an_warn(an, "%llu packets were neither sent on nor dropped (still inside an NF at the end, freed by an NF without a drop record, or trace loss)",
			(unsigned long long)an->in_flight);
	return 0;
oom:
	free(lat);
	an_err(err, "out of memory (victims)");
	return -1;
}
