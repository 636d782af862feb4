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
		nd->rate_fallback = true;
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

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* [ours] Traffic classes (protocol, destination port) that trigger slow
 * processing at this node, judged over the whole run: a class is a trigger
 * when at least 2 of the bursts it was in were slow, at least half of its
 * bursts were, and the neighbouring bursts without it were slow at most half
 * as often. An interrupt or a slowed NF makes neighbouring bursts slow too (no
 * trigger); one interrupted burst gives a class at most one slow burst.
 * Classes, not flows: a bug triggered by many small flows of one service
 * makes almost every burst slow, and only the class is absent from the
 * bursts that stayed fast.
 * When a class is in nearly every burst (a bug under a long queue: every
 * burst is full and holds some of it), there are no bursts without it to
 * compare with. Then the class is judged by how the slow bursts' slowness
 * grows with its fraction of their packets: a least-squares line over the
 * slow bursts (weighted by size), slowness = a + b * fraction (the fast
 * bursts around them may be a drained backlog after the bug ended). A class is a trigger when a
 * burst of it alone would be slow (a + b above SLOW_BURST), b is too and is
 * significant (t >= TRIG_T). An interrupt slows bursts whatever they hold
 * (no slope, or one outlier burst: large residuals, small t); a slowed NF
 * slows them all alike. */
#define NEAR 4  /* bursts around a slow one that count as its time */
#define TRIG_T 4.0      /* t statistic of the slowness-vs-fraction slope */
#define TRIG_MIN_B 6    /* slow bursts needed for the line (t >= 4 with 4 dof: p < 0.02) */

/* The slowness-vs-fraction line of one class, least squares weighted by
 * burst size (a one-packet burst says little about a fraction): sums over the
 * nb bursts judged, of total weight n; the class's fraction is 0 in the
 * bursts without it. */
static bool
slope_trigger(double sx, double sxx, double sxy, double n, double sy, double syy, uint32_t nb)
{
	double vxx, vxy, vyy, b, a, rss, se;

	if (nb < TRIG_MIN_B)
		return false;
	vxx = sxx - sx * sx / n;
	vxy = sxy - sx * sy / n;
	vyy = syy - sy * sy / n;
	if (!(vxx > 1e-9))
		return false;   /* the same fraction in every burst: no slope */
	b = vxy / vxx;
	a = (sy - b * sx) / n;
	if (!(b > SLOW_BURST) || !(a + b > SLOW_BURST))
		return false;
	rss = vyy - b * vxy;
	if (rss < 0)
		rss = 0;
	se = sqrt(rss / (nb - 2) / vxx);
	return se == 0 || b / se >= TRIG_T;
}

static bool
has_class(const struct an_node *nd, uint32_t c)
{
	size_t lo = 0, hi = nd->ntrig;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (nd->trig[mid] < c)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < nd->ntrig && nd->trig[lo] == c;
}

/* The time beyond the usual of every burst that holds a trigger class, slow
 * or not (one trigger packet among 32 makes a burst 1.3x, not "slow", yet
 * it is the bug's time): cumulated, so that a victim's period gets the part
 * of its shortfall the trigger flows explain in O(log n). */
static int
trigger_excess(struct mscope_analysis *an, struct an_node *nd)
{
	size_t cap_a = 0, cap_c = 0;
	double cum = 0;

	for (uint32_t s = 0; s < nd->nrx;) {
		uint32_t nb;
		double sl = an_burst_slowness(an, nd, s, &nb);
		bool trig = false;

		for (uint32_t k = 0; k < nb && sl > 0 && !trig; k++) {
			uint32_t fl = an->flow[nd->base + s + k];
			trig = fl != 0 && has_class(nd, an_flow_class(an, fl));
		}
		if (trig) {
			void *pa = an_grow(nd->txs_at, &cap_a, nd->ntxs + 1, sizeof(*nd->txs_at));
			void *pc = pa ? an_grow(nd->txs_cum, &cap_c, nd->ntxs + 1,
					sizeof(*nd->txs_cum)) : NULL;
			if (pa)
				nd->txs_at = pa;
			if (pc == NULL)
				return -1;
			nd->txs_cum = pc;
			cum += sl * nb * nd->tau_usual;
			nd->txs_at[nd->ntxs] = s;
			nd->txs_cum[nd->ntxs++] = cum;
		}
		s += nb;
	}
	return 0;
}

static int
find_triggers(struct mscope_analysis *an, struct an_node *nd)
{
	struct tr {
		uint32_t flow, in, slow_in, nb_n, nb_slow, last, cnt;
		double sx, sxx, sxy;   /* fraction of the burst: sums for the slope */
	} *t = NULL;
	struct tr **touched = NULL;
	uint32_t cap = 0, n = 0, mask, nt;
	double ny = 0, sy = 0, syy = 0;   /* weighted by burst size */
	uint32_t nbur = 0;
	bool any_slope = false;
	size_t tcap = 0;
	uint32_t nb_cnt = 0;
	uint32_t *bstart = NULL, *bsize = NULL;
	uint8_t *bslow = NULL;
	int rc = -1;

	if (nd->nslow < 2)
		return 0;
	/* bursts of the node */
	for (uint32_t s = 0; s < nd->nrx;) {
		uint32_t nb = 1;
		while (s + nb < nd->nrx && !(an->fl[nd->base + s + nb] & H_BURST))
			nb++;
		nb_cnt++;
		s += nb;
	}
	bstart = malloc(nb_cnt * sizeof(*bstart));
	bsize = malloc(nb_cnt * sizeof(*bsize));
	bslow = calloc(nb_cnt, 1);
	touched = malloc(nd->nrx * sizeof(*touched));
	for (cap = 64; cap < nd->nrx * 2u && cap < (1u << 26); cap *= 2)
		;
	t = calloc(cap, sizeof(*t));
	if (bstart == NULL || bsize == NULL || bslow == NULL || t == NULL || touched == NULL)
		goto out;
	mask = cap - 1;
	{
		uint32_t b = 0, k = 0;
		for (uint32_t s = 0; s < nd->nrx; b++) {
			uint32_t nb = 1;
			while (s + nb < nd->nrx && !(an->fl[nd->base + s + nb] & H_BURST))
				nb++;
			bstart[b] = s;
			bsize[b] = nb;
			while (k < nd->nslow && nd->slow[k] < s)
				k++;
			bslow[b] = k < nd->nslow && nd->slow[k] == s;
			s += nb;
		}
	}
#define TR_GET(fl, res) do {                                                  \
		uint32_t h_ = ((fl) * 2654435761u) & mask;                        \
		while (t[h_].in && t[h_].flow != (fl))                            \
			h_ = (h_ + 1) & mask;                                     \
		if (!t[h_].in) {                                                  \
			if ((n + 1) * 2 > cap)                                    \
				goto out;                                         \
			t[h_].flow = (fl);                                        \
			t[h_].last = UINT32_MAX;                                  \
			n++;                                                      \
		}                                                                 \
		(res) = &t[h_];                                                   \
	} while (0)
	/* judged near slow bursts only: a class that is slow only some of the
	 * time (a bug during a window) is compared with its own time */
	for (uint32_t b = 0; b < nb_cnt; b++)
		if (bslow[b] & 1)
			for (int dlt = -NEAR; dlt <= NEAR; dlt++)
				if ((int64_t)b + dlt >= 0 && (int64_t)b + dlt < nb_cnt)
					bslow[b + dlt] |= 2;
	for (uint32_t b = 0; b < nb_cnt; b++) {
		uint32_t nbu;
		double y;

		if (!(bslow[b] & 2))
			continue;
		y = an_burst_slowness(an, nd, bstart[b], &nbu);
		if (bslow[b] & 1) {
			nbur++;
			ny += bsize[b];
			sy += bsize[b] * y;
			syy += bsize[b] * y * y;
		}
		nt = 0;
		for (uint32_t k = 0; k < bsize[b]; k++) {
			uint32_t f = an_flow_class(an, an->flow[nd->base + bstart[b] + k]);
			struct tr *e;

			if (f == 0)
				continue;
			TR_GET(f, e);
			if (e->last == b) {
				e->cnt++;
				continue;   /* count each burst once per flow */
			}
			e->cnt = 1;
			touched[nt++] = e;
			if (e->in == 0 && e->last == UINT32_MAX)
				e->in = 0;
			e->last = b;
			e->in++;
			if (!(bslow[b] & 1))
				continue;
			e->slow_in++;
			/* neighbours without this flow */
			for (int dlt = -1; dlt <= 1; dlt += 2) {
				int64_t nbi = (int64_t)b + dlt;
				bool has = false;
				if (nbi < 0 || nbi >= nb_cnt)
					continue;
				for (uint32_t q = 0; q < bsize[nbi]; q++)
					if (an_flow_class(an, an->flow[nd->base + bstart[nbi] + q]) == f) {
						has = true;
						break;
					}
				if (has)
					continue;
				e->nb_n++;
				e->nb_slow += bslow[nbi] & 1;
			}
		}
		for (uint32_t i = 0; i < nt && (bslow[b] & 1); i++) {
			double x = (double)touched[i]->cnt / bsize[b];
			touched[i]->sx += bsize[b] * x;
			touched[i]->sxx += bsize[b] * x * x;
			touched[i]->sxy += bsize[b] * x * y;
		}
	}
#undef TR_GET
	for (uint32_t i = 0; i < cap && !any_slope; i++)
		any_slope = t[i].in && t[i].slow_in >= 2 &&
			slope_trigger(t[i].sx, t[i].sxx, t[i].sxy, ny, sy, syy, nbur);
	for (uint32_t i = 0; i < cap; i++) {
		const struct tr *e = &t[i];
		double p, q;

		if (!e->in || e->slow_in < 2)
			continue;
		if (e->nb_n > 0) {
			p = (double)e->slow_in / e->in;
			q = (double)e->nb_slow / e->nb_n;
		} else {
			p = 0;   /* no fast burst without the class to compare with */
			q = 1;
		}
		/* when a class's line explains the slow bursts, the neighbour
		 * comparison (one or two neighbours without a class may be fast
		 * by chance) does not add other classes */
		if (any_slope ? slope_trigger(e->sx, e->sxx, e->sxy, ny, sy, syy, nbur) :
		    p >= 0.5 && q <= 0.5 * p) {
			void *np = an_grow(nd->trig, &tcap, nd->ntrig + 1, sizeof(*nd->trig));
			if (np == NULL)
				goto out;
			nd->trig = np;
			nd->trig[nd->ntrig++] = e->flow;
		}
	}
	if (nd->ntrig)
		qsort(nd->trig, nd->ntrig, sizeof(*nd->trig), cmp_u32);
	rc = nd->ntrig ? trigger_excess(an, nd) : 0;
out:
	if (rc && t && (n + 1) * 2 > cap)
		rc = 0;     /* table full (hostile input): no triggers, not an error */
	free(t);
	free(touched);
	free(bstart);
	free(bsize);
	free(bslow);
	return rc;
}

static int
rate_job(struct mscope_analysis *an, uint32_t k, void *scratch)
{
	struct an_node *nd = &an->nodes[k];
	const char *from = nd->rate_from;
	double fixed = nd->rate;
	double *rates = scratch, *meds = rates + an->rate_scratch;

	if (nd->is_source)
		return 0;
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
		nd->rate_default = true;
	}
	if (!(nd->tau_usual > 0) || !isfinite(nd->tau_usual))
		nd->tau_usual = 1.0 / nd->rate;
	return slow_bursts(an, nd) || find_triggers(an, nd) ? -1 : 0;
}

int
an_rates(struct mscope_analysis *an, struct mscope_an_error *err)
{
	uint32_t maxn = 0;

	for (uint32_t k = 0; k < an->nnodes; k++)
		if (!an->nodes[k].is_source && an->nodes[k].nrx > maxn)
			maxn = an->nodes[k].nrx;
	an->rate_scratch = (size_t)maxn + 1;
	if (an_for_nodes(an, rate_job, 2 * an->rate_scratch * sizeof(double))) {
		an_err(err, "out of memory (rates)");
		return -1;
	}
	for (uint32_t k = 0; k < an->nnodes; k++) {
		const struct an_node *nd = &an->nodes[k];
		if (nd->rate_fallback && nd->rate_from && !strcmp(nd->rate_from, "estimated"))
			an_warn(an, "%s: no burst with a measurable service time; peak rate taken from the busiest millisecond (%.3f Mpps)",
				nd->id, nd->rate * an->hz / 1e6);
		if (nd->rate_default)
			an_warn(an, "%s: no usable peak rate; assuming 1 Mpps", nd->id);
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
	return 0;
}
