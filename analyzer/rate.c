/* SPDX-License-Identifier: BSD-3-Clause */
/* Peak processing rate per node (method.md §2, [ours]). A naive median or
 * regression over bursts learns the *slowed* rate exactly when an NF is slow
 * (its large bursts are all slow ones), so: per-burst service rate
 * n / (e - d), its median in each 1 ms window, and the p90 of the window
 * medians. Overridable per node or NF (--rate, topology rate_mpps). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "an_internal.h"

#define WINDOW_US 1000.0
#define WINDOW_PCT 90.0

static void
estimate(struct mscope_analysis *an, struct an_node *nd, double *rates, double *meds)
{
	int64_t win = an_ticks(an, WINDOW_US);
	size_t nr = 0, nm = 0, w0 = 0;
	int64_t cur = INT64_MIN;
	double tau_sum_dummy = 0;

	(void)tau_sum_dummy;
	for (uint32_t s = 0; s < nd->nrx;) {
		uint32_t g0 = nd->base + s, nb = 1, done = 0;
		int64_t db = an->d[g0], emax = INT64_MIN, w;

		while (s + nb < nd->nrx && !(an->fl[g0 + nb] & H_BURST))
			nb++;
		for (uint32_t k = 0; k < nb; k++) {
			uint32_t g = g0 + k;
			if (an->fl[g] & H_TX) {
				done++;
				if (an->e[g] > emax)
					emax = an->e[g];
			}
		}
		s += nb;
		if (done == 0 || emax <= db)
			continue;
		w = (db - an->t_start) / (win > 0 ? win : 1);
		if (w != cur) {
			if (nr > w0)
				meds[nm++] = an_select_d(rates + w0, nr - w0, 50);
			w0 = nr;
			cur = w;
		}
		rates[nr++] = (double)nb / (double)(emax - db);
	}
	if (nr > w0)
		meds[nm++] = an_select_d(rates + w0, nr - w0, 50);
	if (nm) {
		nd->rate = an_select_d(meds, nm, WINDOW_PCT);
		nd->tau_usual = 1.0 / an_select_d(rates, nr, 50);
		nd->rate_from = "estimated";
		return;
	}
	/* No burst with a measurable service time: the busiest 1 ms of dequeues. */
	{
		uint32_t j = 0, best = 0;
		for (uint32_t i = 0; i < nd->nrx; i++) {
			while (an->d[nd->base + i] - an->d[nd->base + j] >= win)
				j++;
			if (i - j + 1 > best)
				best = i - j + 1;
		}
		nd->rate = best ? (double)best / (double)(win > 0 ? win : 1) : 1e6 / an->hz;
		nd->tau_usual = 1.0 / nd->rate;
		nd->rate_from = "estimated";
		an_warn(an, "%s: no burst with a measurable service time; peak rate taken from the busiest millisecond (%.3f Mpps)",
			nd->id, nd->rate * an->hz / 1e6);
	}
}

/* Slowness of the burst starting at local hop s: per-packet service time
 * over the usual one, minus 1 (0 when not measurable). *nb: its size. */
double
an_burst_slowness(const struct mscope_analysis *an, const struct an_node *nd, uint32_t s,
		uint32_t *nb)
{
	uint32_t g0 = nd->base + s, n = 1;
	int64_t emax = INT64_MIN;
	double sl;

	while (s + n < nd->nrx && !(an->fl[g0 + n] & H_BURST))
		n++;
	for (uint32_t k = 0; k < n; k++)
		if ((an->fl[g0 + k] & H_TX) && an->e[g0 + k] > emax)
			emax = an->e[g0 + k];
	*nb = n;
	if (emax <= an->d[g0])
		return 0;
	sl = ((double)(emax - an->d[g0]) / n) / nd->tau_usual - 1.0;
	return sl > 0 ? sl : 0;
}

static int
slow_bursts(struct mscope_analysis *an, struct an_node *nd)
{
	size_t cap = 0;

	for (uint32_t s = 0; s < nd->nrx;) {
		uint32_t nb;
		if (an_burst_slowness(an, nd, s, &nb) > SLOW_BURST) {
			void *p = an_grow(nd->slow, &cap, nd->nslow + 1, sizeof(*nd->slow));
			if (p == NULL)
				return -1;
			nd->slow = p;
			nd->slow[nd->nslow++] = s;
		}
		s += nb;
	}
	return 0;
}

int
an_rates(struct mscope_analysis *an, struct mscope_an_error *err)
{
	uint32_t maxn = 0;
	double *rates, *meds;

	for (uint32_t k = 0; k < an->nnodes; k++)
		if (!an->nodes[k].is_source && an->nodes[k].nrx > maxn)
			maxn = an->nodes[k].nrx;
	rates = malloc(((size_t)maxn + 1) * sizeof(*rates));
	meds = malloc(((size_t)maxn + 1) * sizeof(*meds));
	if (rates == NULL || meds == NULL) {
		free(rates);
		free(meds);
		an_err(err, "out of memory (rates)");
		return -1;
	}
	for (uint32_t k = 0; k < an->nnodes; k++) {
		struct an_node *nd = &an->nodes[k];
		const char *from = nd->rate_from;
		double fixed = nd->rate;

		if (nd->is_source)
			continue;
		estimate(an, nd, rates, meds);
		if (from) {   /* topology */
			nd->rate = fixed;
			nd->rate_from = from;
		}
		for (size_t i = 0; i < an->opts.nrates; i++) {
			const struct mscope_an_rate *r = &an->opts.rates[i];
			if (!strcmp(r->name, nd->id) || !strcmp(r->name, nd->nf)) {
				nd->rate = r->mpps * 1e6 / an->hz;
				nd->rate_from = "override";
			}
		}
		if (!(nd->rate > 0) || !isfinite(nd->rate)) {
			nd->rate = 1e6 / an->hz;
			an_warn(an, "%s: no usable peak rate; assuming 1 Mpps", nd->id);
		}
		if (!(nd->tau_usual > 0) || !isfinite(nd->tau_usual))
			nd->tau_usual = 1.0 / nd->rate;
		if (slow_bursts(an, nd)) {
			free(rates);
			free(meds);
			an_err(err, "out of memory (rates)");
			return -1;
		}
	}
	for (size_t i = 0; i < an->opts.nrates; i++) {
		bool used = false;
		for (uint32_t k = 0; k < an->nnodes; k++)
			if (!strcmp(an->opts.rates[i].name, an->nodes[k].id) ||
					!strcmp(an->opts.rates[i].name, an->nodes[k].nf))
				used = true;
		if (!used)
			an_warn(an, "--rate %s: no such NF or node", an->opts.rates[i].name);
	}
	free(rates);
	free(meds);
	return 0;
}
