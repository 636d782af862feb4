/* SPDX-License-Identifier: BSD-3-Clause */
/* Local scores, propagation and recursion (method.md §2-3; Gong et al.,
 * "Microscope", SIGCOMM 2020, §4).
 *
 * For a victim p queued at node f: T = [t0, a_f(p)], n_i = arrivals in T,
 * n_p = dequeues in T, S_i = n_i - r|T|, S_p = r|T| - n_p, clamped [ours].
 * S_i propagates over the PreSet's timespans: walking upstream with a level
 * L (start T_f), hop X with input span I_X gets max(0, min(I_X, T_exp) - L),
 * the source what is left below T_exp. In a DAG the PreSet is split by path
 * (PreSetPath), each path attributed by that chain rule and the results
 * superposed and scaled to S_i: with one shared T_exp (paper) or with a
 * per-path T_exp from the path's long-run rate, weighted by packets [ours].
 * An upstream NF's share is split S_p(X) : S_i(X); the input part recurses.
 *
 * Work sharing: the PreSet of a victim is a prefix of its busy period, so the
 * per-path statistics of the last PreSet of each node are kept and extended
 * when the next query is a longer prefix of the same period. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "an_internal.h"

#define NSTATE 4            /* cached PreSet states per node */
#define MAXL 16             /* upstream levels tracked per path */
#define MAX_CALLS 4096      /* propagation calls per victim (hostile graphs) */
#define MAX_SCAN 4096       /* served packets examined for flow blame */
#define PROC_FLOWS 64       /* trigger flows kept per processing culprit per victim */

struct grp {
	uint32_t path;
	uint32_t n;
	uint32_t levels;        /* levels with data (<= MAXL) */
	int64_t amin[MAXL], amax[MAXL];
	uint32_t gmax[MAXL];    /* hop that met the longest queue at each level */
	uint32_t qmax[MAXL];    /* that queue length */
	uint32_t lvnode[MAXL];  /* node at each level */
	uint32_t root_node;
};

struct fcount {
	uint32_t grp, flow, cnt, used;
};

struct pstate {
	uint32_t ps, re;        /* prefix [ps, re) of sorted arrivals */
	uint64_t used;          /* LRU clock */
	bool valid;
	struct grp *g;
	uint32_t ng, gcap;
	uint32_t last_path, last_grp;
	struct fcount *fc;      /* (group, root flow) -> packets */
	uint32_t fcap, fn;
};

struct acc {
	uint32_t dnode, nf, flow;
	uint8_t kind, has_flow, used;
	double score;
};

struct bctx {
	struct mscope_analysis *an;
	struct pstate *st;          /* NSTATE per node */
	uint64_t clock;
	struct acc *acc;
	uint32_t acap, an_;         /* hash slots, used count */
	uint32_t *aused;            /* used slot list */
	uint32_t calls;
	/* scratch for flow weights */
	struct fcount *sf;
	uint32_t sfcap;
	/* outputs */
	struct an_queued_int *q;
	size_t nq, qcap;
	struct an_rel *rels;
	size_t nrels, rcap;
	struct an_cul *cul;
	size_t ncul, ccap;
	int failed;
};

/* ------------------------------------------------------------ local */

void
an_local(const struct mscope_analysis *an, uint32_t node, uint32_t local,
		struct an_local *l)
{
	const struct an_node *nd = &an->nodes[node];
	uint32_t g = nd->base + local, end;
	int64_t ta = an_arr(an, g);
	double exp, q;

	memset(l, 0, sizeof(*l));
	if (local < nd->nrx) {
		end = an_rank(an, nd, local) + 1;
	} else {
		/* queue-full drop: the PreSet is what arrived up to it */
		uint32_t lo = 0, hi = nd->nrx;
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (an_arr(an, nd->base + ORD(nd, mid)) <= ta)
				lo = mid + 1;
			else
				hi = mid;
		}
		end = lo;
	}
	if (end == 0) {
		l->rank = UINT32_MAX;
		return;
	}
	l->rank = end - 1;
	l->ps = nd->pstart[end - 1];
	l->n_i = end - l->ps;
	{
		/* service done in T: served by a minus what came before the period
		 * (all served by t0, the queue and server being empty then) */
		double np = an_served(an, nd, ta) - (double)l->ps;
		if (np < 0)
			np = 0;
		if (np > l->n_i)
			np = l->n_i;
		l->n_p = (uint32_t)floor(np + 1e-9);
		l->n_p_exact = np;
	}
	l->t0 = an_arr(an, nd->base + ORD(nd, l->ps));
	l->period = ta - l->t0;
	if (l->period < 0)
		l->period = 0;
	q = (double)l->n_i - l->n_p_exact;
	exp = nd->rate * (double)l->period;
	l->s_i = (double)l->n_i - exp;
	l->s_p = exp - l->n_p_exact;
	/* [ours] a negative score is clamped to 0 and Q goes to the other */
	if (q <= 0) {
		l->s_i = l->s_p = 0;
	} else if (l->s_i < 0) {
		l->s_i = 0;
		l->s_p = q;
	} else if (l->s_p < 0) {
		l->s_p = 0;
		l->s_i = q;
	}
	/* [ours] The NF served slower than its peak also *after* p arrived: at
	 * peak p would have waited Q / r; the shortfall while it waited,
	 * r * wait - Q, is processing blame as well (an NF stalling right after
	 * p arrived leaves Q small but the wait long). */
	l->t1 = ta;
	if (local < nd->nrx && !an->opts.no_post_wait) {
		int64_t d = an->d[g];
		double sw = nd->rate * (double)(d - ta) - (q > 0 ? q : 0);
		l->s_w = sw > 0 ? sw : 0;
		l->t1 = d;
	}
}

/* ------------------------------------------------------------ accumulation */

static void
acc_add(struct bctx *c, uint32_t dnode, uint32_t nf, uint8_t kind, uint8_t has_flow,
		uint32_t flow, double score)
{
	uint32_t h, mask;

	if (!(score > 0))
		return;
	if ((c->an_ + 1) * 2 > c->acap) {
		uint32_t cap = c->acap ? c->acap * 2 : 256;
		struct acc *t = calloc(cap, sizeof(*t));
		uint32_t *u = malloc(cap * sizeof(*u));
		uint32_t n = 0;

		if (t == NULL || u == NULL) {
			free(t);
			free(u);
			c->failed = 1;
			return;
		}
		for (uint32_t i = 0; i < c->an_; i++) {
			struct acc *o = &c->acc[c->aused[i]];
			uint32_t s = (o->dnode * 2654435761u ^ o->nf * 40503u ^ o->flow * 97u ^
				o->kind ^ (uint32_t)o->has_flow << 7) & (cap - 1);
			while (t[s].used)
				s = (s + 1) & (cap - 1);
			t[s] = *o;
			u[n++] = s;
		}
		free(c->acc);
		free(c->aused);
		c->acc = t;
		c->aused = u;
		c->acap = cap;
	}
	mask = c->acap - 1;
	h = (dnode * 2654435761u ^ nf * 40503u ^ flow * 97u ^ kind ^ (uint32_t)has_flow << 7) & mask;
	while (c->acc[h].used) {
		struct acc *o = &c->acc[h];
		if (o->dnode == dnode && o->nf == nf && o->kind == kind &&
				o->has_flow == has_flow && o->flow == flow) {
			o->score += score;
			return;
		}
		h = (h + 1) & mask;
	}
	c->acc[h] = (struct acc){ .dnode = dnode, .nf = nf, .flow = flow, .kind = kind,
		.has_flow = has_flow, .used = 1, .score = score };
	c->aused[c->an_++] = h;
}

/* ------------------------------------------------------------ flow scratch */

/* An empty flow scratch table for pk packets (load at most 1/2). */
static bool
sf_reset(struct bctx *c, uint32_t pk)
{
	uint32_t need = 16;

	while (need < pk * 2 + 2)
		need *= 2;
	if (need > c->sfcap) {
		free(c->sf);
		c->sf = malloc(need * sizeof(*c->sf));
		if (c->sf == NULL) {
			c->sfcap = 0;
			c->failed = 1;
			return false;
		}
		c->sfcap = need;
	}
	memset(c->sf, 0, c->sfcap * sizeof(*c->sf));
	return true;
}

static struct fcount *
sf_get(struct bctx *c, uint32_t grp, uint32_t flow, uint32_t *nused, uint32_t **list)
{
	uint32_t mask = c->sfcap - 1, h = (grp * 2654435761u ^ flow * 40503u) & mask;

	(void)nused;
	(void)list;
	while (c->sf[h].used) {
		if (c->sf[h].grp == grp && c->sf[h].flow == flow)
			return &c->sf[h];
		h = (h + 1) & mask;
	}
	c->sf[h] = (struct fcount){ .grp = grp, .flow = flow, .cnt = 0, .used = 1 };
	return &c->sf[h];
}

static int
cmp_fw(const void *x, const void *y)
{
	const double *a = x, *b = y;   /* pairs (weight, flow) */

	if (a[0] != b[0])
		return a[0] > b[0] ? -1 : 1;
	return a[1] < b[1] ? -1 : a[1] > b[1];
}

/* Spread `amount` over (flow, weight) pairs: top max_flows flows, the rest
 * as a flow-less relation. */
static void
spread_flows(struct bctx *c, uint32_t dnode, uint32_t nf, uint8_t kind, double *fw,
		size_t n, double amount)
{
	double tot = 0, given = 0, kept = 0;
	size_t keep, cap = (size_t)c->an->opts.max_flows;

	for (size_t i = 0; i < n; i++)
		tot += fw[2 * i];
	if (!(tot > 0)) {
		acc_add(c, dnode, nf, kind, 0, 0, amount);
		return;
	}
	qsort(fw, n, 2 * sizeof(double), cmp_fw);
	/* Processing shares go only to trigger flows, all culprits alike: keep
	 * more of them and give them the whole share (a "*" remainder would say
	 * "no flow" for what is a class of flows). */
	if (kind == MSCOPE_AN_PROCESSING)
		cap = cap < PROC_FLOWS ? PROC_FLOWS : cap;
	keep = n < cap ? n : cap;
	if (kind == MSCOPE_AN_PROCESSING) {
		for (size_t i = 0; i < keep; i++)
			kept += fw[2 * i];
		tot = kept;
	}
	for (size_t i = 0; i < keep; i++) {
		double s = amount * fw[2 * i] / tot;
		uint32_t flow = (uint32_t)fw[2 * i + 1];
		acc_add(c, dnode, nf, kind, flow != 0, flow, s);
		given += s;
	}
	if (amount - given > 1e-12)
		acc_add(c, dnode, nf, kind, 0, 0, amount - given);
}

/*
 * Processing blame `amount` of node nd: the share frac (clamped to [0, 1])
 * goes to the trigger flows fw (freed here), the rest to the NF as "*".
 */
static void
split_processing(struct bctx *c, uint32_t dnode, const struct an_node *nd, double *fw,
		 uint32_t nfw, double amount, double frac)
{
	if (frac > 1)
		frac = 1;
	if (frac < 0)
		frac = 0;
	spread_flows(c, dnode, (uint32_t)nd->nf_idx, MSCOPE_AN_PROCESSING, fw, nfw, amount * frac);
	acc_add(c, dnode, (uint32_t)nd->nf_idx, MSCOPE_AN_PROCESSING, 0, 0, amount * (1 - frac));
	free(fw);
}

/* ------------------------------------------------------------ processing */

static uint32_t
lower(const uint32_t *v, size_t n, uint32_t x)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (uint32_t)lo;
}

/* Slow bursts starting in local hops [j0, j1). */
static uint32_t
slow_between(const struct an_node *nd, uint32_t j0, uint32_t j1)
{
	return lower(nd->slow, nd->nslow, j1) - lower(nd->slow, nd->nslow, j0);
}

static bool
is_trigger(const struct an_node *nd, uint32_t flow)
{
	uint32_t k = lower(nd->trig, nd->ntrig, flow);
	return k < nd->ntrig && nd->trig[k] == flow;
}

/* [ours] Trigger classes inside one queuing period, for a node where the
 * whole-run test (find_triggers() in rate.c) found none: a short bug of a
 * class that is in nearly every burst (udp/53 at 80% of a NAT's packets,
 * 10x slower for 1 ms) leaves too few slow bursts, all holding the class,
 * and fast bursts with it just before and after, for the run-long test.
 * Within the period, each burst's time beyond the usual (in usual packet
 * times, E_b = n_b x slowness) is fitted as a sum over the traffic classes
 * in it, E_b ~ sum_c n_bc x_c, x_c >= 0 (non-negative least squares by
 * cyclic coordinate descent): x_c is what one packet of class c cost beyond
 * the usual. A class is named when a burst of it alone would be slow
 * (x_c > SLOW_BURST), it costs at least PB_DOMINANT times what the other
 * packets of the period cost on average (a slowed NF slows every class
 * alike; other packets must be in at least PB_MIN_IN bursts to say so),
 * it was in at least PB_MIN_IN bursts of which at least two thirds
 * took at least half the time the fit gives its packets (an interrupt
 * makes one burst slow whatever it holds), and the named classes explain
 * at least half of the period's excess. Returns whether classes were
 * named (then `amount` was spread: the named classes' share of the
 * period's shortfall to their flows, the rest "*"). */
#define PB_MAX 256          /* bursts of a period examined (the latest) */
#define PB_CLASSES 16       /* classes fitted; the rest share one column */
#define PB_MIN_B 4          /* bursts in the period */
#define PB_MIN_IN 3         /* bursts holding the class */
#define PB_DOMINANT 4.0
#define PB_SWEEPS 200

/* E_b ~ x0 n_bk + x1 n_bo + x2 (n_b - n_bk - n_bo), x >= 0: class k, class
 * o beside it, the rest pooled; non-negative least squares by cyclic
 * coordinate descent on the normal equations */
static void
pair_fit(const double *m, uint32_t K, const uint32_t *bn, const double *e, uint32_t nb,
		uint32_t k, uint32_t o, double x[3])
{
	double g[3][3] = { { 0 } }, h[3] = { 0 };

	for (uint32_t b = 0; b < nb; b++) {
		double a[3] = { m[(size_t)b * K + k], m[(size_t)b * K + o], 0 };

		a[2] = bn[b] - a[0] - a[1];
		for (int i = 0; i < 3; i++) {
			h[i] += a[i] * e[b];
			for (int j = 0; j < 3; j++)
				g[i][j] += a[i] * a[j];
		}
	}
	x[0] = x[1] = x[2] = 0;
	for (int it = 0; it < PB_SWEEPS; it++) {
		double d = 0;

		for (int i = 0; i < 3; i++) {
			double r = h[i], v;

			if (!(g[i][i] > 0))
				continue;
			for (int j = 0; j < 3; j++)
				if (j != i)
					r -= g[i][j] * x[j];
			v = r > 0 ? r / g[i][i] : 0;
			d = fmax(d, fabs(v - x[i]));
			x[i] = v;
		}
		if (d <= 1e-9 * (1 + fmax(x[0], fmax(x[1], x[2]))))
			break;
	}
}

static bool
period_classes(struct bctx *c, uint32_t dnode, const struct an_node *nd, uint32_t j0,
		uint32_t j1, int64_t t0, int64_t t1, double amount)
{
	struct mscope_analysis *an = c->an;
	uint32_t bs[PB_MAX], bn[PB_MAX], nb = 0, ncls = 0, cls[PB_CLASSES];
	double e[PB_MAX], *m = NULL, x[PB_CLASSES + 1] = { 0 }, tot[PB_CLASSES + 1] = { 0 };
	double etot = 0, named = 0, deficit, *fw = NULL;
	bool pick[PB_CLASSES + 1] = { false }, fitted[PB_CLASSES + 1] = { false }, any = false;
	bool cand[PB_CLASSES + 1];
	size_t nfw = 0;
	uint32_t nsf = 0;
	const uint32_t K = PB_CLASSES + 1;

	/* the period's bursts, the latest PB_MAX */
	for (uint32_t s = j0; s < j1 && s < nd->nrx;) {
		uint32_t n;
		double sl = an_burst_slowness(an, nd, s, &n);

		if (nb == PB_MAX) {
			memmove(bs, bs + 1, (PB_MAX - 1) * sizeof(*bs));
			memmove(bn, bn + 1, (PB_MAX - 1) * sizeof(*bn));
			memmove(e, e + 1, (PB_MAX - 1) * sizeof(*e));
			nb--;
		}
		bs[nb] = s;
		bn[nb] = n;
		e[nb] = sl * n;
		nb++;
		s += n;
	}
	/* up to the period's last slow burst: the fast ones after it are the
	 * backlog draining once the fault ended, no contrast for the fault */
	while (nb > 0 && !(e[nb - 1] > SLOW_BURST * bn[nb - 1]))
		nb--;
	if (nb < PB_MIN_B)
		return false;
	for (uint32_t b = 0; b < nb; b++)
		etot += e[b];
	if (!(etot > 0))
		return false;
	m = calloc((size_t)nb * K, sizeof(*m));
	if (m == NULL) {
		c->failed = 1;
		return false;
	}
	/* classes: the first PB_CLASSES met (latest bursts first), the rest in
	 * column PB_CLASSES */
	for (uint32_t b = nb; b-- > 0;)
		for (uint32_t q = 0; q < bn[b]; q++) {
			uint32_t fl = an->flow[nd->base + bs[b] + q], cl = fl ? an_flow_class(an, fl) : 0;
			uint32_t k;

			for (k = 0; k < ncls && cls[k] != cl; k++)
				;
			if (k == ncls && ncls < PB_CLASSES && cl != 0)
				cls[ncls++] = cl;
			if (k >= ncls || cl == 0)
				k = PB_CLASSES;
			m[(size_t)b * K + k] += 1;
			tot[k] += 1;
		}
	/* per class: E_b ~ x n_bc + u (n_b - n_bc), x, u >= 0 (the other
	 * classes pooled: one packet of a rare class in a slow burst would
	 * otherwise take that burst's residual as its own cost) */
	for (uint32_t k = 0; k < ncls; k++) {
		double saa = 0, soo = 0, sao = 0, sae = 0, soe = 0, det, xk, u;
		uint32_t in = 0, oin = 0, ok = 0;

		for (uint32_t b = 0; b < nb; b++) {
			double nk = m[(size_t)b * K + k], no = bn[b] - nk;

			in += nk > 0;
			oin += no > 0;
			saa += nk * nk;
			soo += no * no;
			sao += nk * no;
			sae += nk * e[b];
			soe += no * e[b];
		}
		/* other packets in a few bursts too: without them a slowed NF
		 * that serves one class (a monitor of tcp/80, an NF under a
		 * burst of one flow) is indistinguishable from a bug */
		if (in < PB_MIN_IN || oin < PB_MIN_IN || !(saa > 0))
			continue;
		det = saa * soo - sao * sao;
		xk = det > 0 ? (sae * soo - soe * sao) / det : -1;
		u = det > 0 ? (soe * saa - sae * sao) / det : -1;
		if (xk < 0 || u < 0) {
			/* the better of the two one-variable fits on the boundary */
			double x1 = sae / saa, u1 = soo > 0 ? soe / soo : 0;
			double r1 = x1 > 0 ? -x1 * sae : 0, r2 = u1 > 0 ? -u1 * soe : 0;

			if (x1 > 0 && r1 <= r2) {
				xk = x1;
				u = 0;
			} else {
				xk = 0;
				u = u1 > 0 ? u1 : 0;
			}
		}
		x[k] = xk;
		fitted[k] = true;
		if (!(xk > SLOW_BURST) || xk < PB_DOMINANT * u)
			continue;
		for (uint32_t b = 0; b < nb; b++) {
			double nk = m[(size_t)b * K + k];
			if (nk > 0)
				ok += e[b] >= 0.5 * (xk * nk + u * (bn[b] - nk));
		}
		if (3 * ok < 2 * in || !(xk * tot[k] >= 0.5 * etot))
			continue;
		pick[k] = true;
	}
	/* a class alone costs more: the other classes, each fitted beside it
	 * (E_b ~ x n_bc + x_o n_bo + u (the rest)), cost on average, per
	 * packet, at most 1 / PB_DOMINANT of it (a slowed NF under a burst of
	 * one flow: the burst's class dominates every burst, its own fit finds
	 * it costly and the others pooled cheap, but fitted beside it the other
	 * classes cost as much), and no other class that passed the tests
	 * above costs more than 1 / PB_DOMINANT of it in its own fit (two
	 * classes that fill the same bursts: no telling them apart). Each
	 * other class's own fit, with the bug's class pooled in its rest, is
	 * not the measure: a class in a few slow bursts takes their share of
	 * the bug's time (a tcp/443 bug at 40% of a NAT's packets: udp/123 and
	 * tcp/22, 6 and 12 packets, cost more than it in their own fits) */
	memcpy(cand, pick, sizeof(pick));
	for (uint32_t k = 0; k < ncls; k++) {
		double oc = 0, on = 0;

		for (uint32_t o = 0; o < ncls && pick[k]; o++) {
			double xo[3];

			if (o == k || !fitted[o])
				continue;
			if (cand[o] && x[o] * PB_DOMINANT > x[k]) {
				pick[k] = false;
				break;
			}
			pair_fit(m, K, bn, e, nb, k, o, xo);
			oc += tot[o] * xo[1];
			on += tot[o];
		}
		if (pick[k] && on > 0 && oc / on * PB_DOMINANT > x[k])
			pick[k] = false;
		if (pick[k])
			named += x[k] * tot[k];
	}
	if (named > etot)
		named = etot;
	if (!(named >= 0.5 * etot)) {
		free(m);
		return false;
	}
	/* flows of the named classes in the period, by packets */
	{
		uint32_t pk = 0;

		for (uint32_t b = 0; b < nb; b++)
			pk += bn[b];
		if (!sf_reset(c, pk)) {
			free(m);
			return false;
		}
		for (uint32_t b = 0; b < nb; b++)
			for (uint32_t q = 0; q < bn[b]; q++) {
				uint32_t fl = an->flow[nd->base + bs[b] + q], k;
				struct fcount *f;

				if (fl == 0)
					continue;
				for (k = 0; k < ncls && cls[k] != an_flow_class(an, fl); k++)
					;
				if (k == ncls || !pick[k])
					continue;
				f = sf_get(c, 0, fl, NULL, NULL);
				if (f->cnt++ == 0)
					nsf++;
				any = true;
			}
	}
	free(m);
	if (!any)
		return false;
	fw = malloc(2 * (size_t)nsf * sizeof(*fw));
	if (fw == NULL) {
		c->failed = 1;
		return false;
	}
	for (uint32_t i = 0; i < c->sfcap; i++)
		if (c->sf[i].used && c->sf[i].cnt) {
			fw[2 * nfw] = c->sf[i].cnt;
			fw[2 * nfw + 1] = c->sf[i].flow;
			nfw++;
		}
	/* the named classes' part of the period's shortfall */
	deficit = (double)(t1 - t0) - (double)(j1 - j0) * nd->tau_usual;
	split_processing(c, dnode, nd, fw, nfw, amount,
			 deficit > 0 ? named * nd->tau_usual / deficit : 1);
	return true;
}

/* [ours] The processing share at X goes to "*" (interrupt, contention,
 * slowdown: no flow to blame) unless X served, in slow bursts of the period,
 * flows of a class that triggers slow bursts at X over the whole run
 * (find_triggers() in rate.c): then to those flows, weighted by the slowness
 * of their bursts here. */
static void
blame_processing(struct bctx *c, uint32_t dnode, uint32_t node, int64_t t0, int64_t t1,
		double amount)
{
	struct mscope_analysis *an = c->an;
	const struct an_node *nd = &an->nodes[node];
	uint32_t j0, j1, nsf = 0;
	double *fw = NULL, xs = 0, deficit;
	size_t nfw = 0;

	if (!(amount > 0))
		return;
	j0 = an_cnt_deq(an, nd, t0 - 1);
	j1 = an_cnt_deq(an, nd, t1);
	/* back up to the burst start */
	while (j0 > 0 && j0 < nd->nrx && !(an->fl[nd->base + j0] & H_BURST))
		j0--;
	if (nd->ntrig == 0 && j1 > j0 && slow_between(nd, j0, j1) > 0 &&
			period_classes(c, dnode, nd, j0, j1, t0, t1, amount))
		return;
	if (nd->ntrig == 0 || j1 <= j0 || slow_between(nd, j0, j1) == 0) {
		acc_add(c, dnode, (uint32_t)nd->nf_idx, MSCOPE_AN_PROCESSING, 0, 0, amount);
		return;
	}
	/* only the slow bursts of the period matter: walk the slow-burst index */
	{
		uint32_t k0 = lower(nd->slow, nd->nslow, j0), k1 = lower(nd->slow, nd->nslow, j1);
		uint32_t pk = 0;

		for (uint32_t k = k0; k < k1 && pk < MAX_SCAN; k++) {
			uint32_t nb;
			(void)an_burst_slowness(an, nd, nd->slow[k], &nb);
			pk += nb;
		}
		if (!sf_reset(c, pk))
			return;
		pk = 0;
		/* the most recent slow bursts first when there are very many */
		for (uint32_t k = k1; k > k0 && pk < MAX_SCAN; k--) {
			uint32_t s0 = nd->slow[k - 1], g0 = nd->base + s0, nb;
			double sl = an_burst_slowness(an, nd, s0, &nb);
			bool trig = false;

			pk += nb;
			for (uint32_t q = 0; q < nb; q++) {
				uint32_t fl = an->flow[g0 + q];
				struct fcount *f;

				if (fl == 0 || !is_trigger(nd, an_flow_class(an, fl)))
					continue;
				if (!trig) {
					/* the time this burst took beyond the usual */
					xs += sl * nb * nd->tau_usual;
					trig = true;
				}
				f = sf_get(c, 0, fl, NULL, NULL);
				if (f->cnt == 0)
					nsf++;
				f->cnt++;
				/* slowness kept in the spare field as fixed point */
				f->grp += (uint32_t)(sl * 1024 > 1e6 ? 1e6 : sl * 1024);
			}
		}
	}
	if (nsf == 0) {
		acc_add(c, dnode, (uint32_t)nd->nf_idx, MSCOPE_AN_PROCESSING, 0, 0, amount);
		return;
	}
	fw = malloc(2 * (size_t)nsf * sizeof(*fw));
	if (fw == NULL) {
		c->failed = 1;
		return;
	}
	for (uint32_t i = 0; i < c->sfcap; i++) {
		const struct fcount *f = &c->sf[i];
		if (!f->used || f->cnt == 0)
			continue;
		fw[2 * nfw] = f->grp / 1024.0;
		fw[2 * nfw + 1] = f->flow;
		nfw++;
	}
	/* The flows get the part of the period's service shortfall that their
	 * slow bursts explain; the rest (stalls between bursts) stays "*". */
	/* all the period's bursts with trigger flows, not only the slow ones */
	if (nd->ntxs) {
		uint32_t k0 = lower(nd->txs_at, nd->ntxs, j0), k1 = lower(nd->txs_at, nd->ntxs, j1);
		double all = (k1 ? nd->txs_cum[k1 - 1] : 0) - (k0 ? nd->txs_cum[k0 - 1] : 0);
		if (all > xs)
			xs = all;
	}
	deficit = (double)(t1 - t0) - (double)(j1 - j0) * nd->tau_usual;
	split_processing(c, dnode, nd, fw, nfw, amount, deficit > 0 ? xs / deficit : 1);
}

/* ------------------------------------------------------------ PreSet state */

static void
st_reset(struct pstate *s, uint32_t ps)
{
	s->ps = s->re = ps;
	s->valid = true;
	s->ng = 0;
	s->last_path = NO_PATH;
	if (s->fn) {
		memset(s->fc, 0, s->fcap * sizeof(*s->fc));
		s->fn = 0;
	}
}

static int
st_flow_add(struct pstate *s, uint32_t grp, uint32_t flow)
{
	uint32_t mask, h;

	if ((s->fn + 1) * 2 > s->fcap) {
		uint32_t cap = s->fcap ? s->fcap * 2 : 256;
		struct fcount *t = calloc(cap, sizeof(*t));
		if (t == NULL)
			return -1;
		for (uint32_t i = 0; i < s->fcap; i++) {
			if (!s->fc[i].used)
				continue;
			h = (s->fc[i].grp * 2654435761u ^ s->fc[i].flow * 40503u) & (cap - 1);
			while (t[h].used)
				h = (h + 1) & (cap - 1);
			t[h] = s->fc[i];
		}
		free(s->fc);
		s->fc = t;
		s->fcap = cap;
	}
	mask = s->fcap - 1;
	h = (grp * 2654435761u ^ flow * 40503u) & mask;
	while (s->fc[h].used) {
		if (s->fc[h].grp == grp && s->fc[h].flow == flow) {
			s->fc[h].cnt++;
			return 0;
		}
		h = (h + 1) & mask;
	}
	s->fc[h] = (struct fcount){ .grp = grp, .flow = flow, .cnt = 1, .used = 1 };
	s->fn++;
	return 0;
}

/* Extend the PreSet statistics of node f to the prefix [ps, re). */
static struct pstate *
st_get(struct bctx *c, uint32_t f, uint32_t ps, uint32_t re)
{
	struct mscope_analysis *an = c->an;
	struct pstate *s = NULL, *set = &c->st[(size_t)f * NSTATE];
	const struct an_node *nd = &an->nodes[f];

	/* a few PreSets per node: one victim's recursion visits a node through
	 * several paths, and the next victim continues the same periods */
	for (int k = 0; k < NSTATE; k++)
		if (set[k].valid && set[k].ps == ps && set[k].re <= re &&
				(s == NULL || set[k].re > s->re))
			s = &set[k];
	if (s == NULL) {
		s = &set[0];
		for (int k = 1; k < NSTATE; k++)
			if (!set[k].valid || set[k].used < s->used)
				s = &set[k];
		st_reset(s, ps);
	}
	s->used = ++c->clock;
	for (uint32_t i = s->re; i < re; i++) {
		uint32_t g = nd->base + ORD(nd, i), path = an->path[g], gi, lv;
		struct grp *gr;

		if (path == s->last_path) {
			gi = s->last_grp;
		} else {
			for (gi = 0; gi < s->ng; gi++)
				if (s->g[gi].path == path)
					break;
			if (gi == s->ng) {
				if (s->ng + 1 > s->gcap) {
					uint32_t cap = s->gcap ? s->gcap * 2 : 8;
					struct grp *t = realloc(s->g, cap * sizeof(*t));
					if (t == NULL) {
						c->failed = 1;
						return NULL;
					}
					s->g = t;
					s->gcap = cap;
				}
				gr = &s->g[s->ng++];
				memset(gr, 0, sizeof(*gr));
				gr->path = path;
				for (lv = 0; lv < MAXL; lv++) {
					gr->amin[lv] = INT64_MAX;
					gr->amax[lv] = INT64_MIN;
					gr->lvnode[lv] = an_path_node_at(an, path, lv);
				}
			}
			s->last_path = path;
			s->last_grp = gi;
		}
		gr = &s->g[gi];
		gr->n++;
		/* walk the packet upstream: level 0 is f itself */
		for (lv = 0;; lv++) {
			int64_t t = an_arr(an, g);
			if (lv < MAXL) {
				if (t < gr->amin[lv])
					gr->amin[lv] = t;
				if (t > gr->amax[lv])
					gr->amax[lv] = t;
				if (lv > 0) {
					/* The queue this packet met at X: the recursion diagnoses
					 * X's busy period at its deepest point for the set. */
					uint32_t q = an->qa[g];
					if (q > gr->qmax[lv] || (q == gr->qmax[lv] && g > gr->gmax[lv])) {
						gr->qmax[lv] = q;
						gr->gmax[lv] = g;
					}
				}
				if (lv + 1 > gr->levels)
					gr->levels = lv + 1;
			}
			if (!(an->fl[g] & H_PRED))
				break;
			g = an->pred[g];
		}
		if (st_flow_add(s, gi, an->flow[g])) {
			c->failed = 1;
			return NULL;
		}
		gr->root_node = an_hop_node(an, g);
	}
	s->re = re;
	return s;
}

/* ------------------------------------------------------------ propagation */

struct contrib {
	uint32_t node, hop;
	double amount;
};

static void recurse(struct bctx *c, uint32_t dnode, uint32_t node, uint32_t hop, double amount);

/* Packets of a flow in the set beyond its own average rate over the set's
 * timespan at the source level. */
static double
flow_excess(const struct mscope_analysis *an, const struct grp *gr, const struct fcount *fc)
{
	uint32_t lv = gr->levels ? gr->levels - 1 : 0;
	double span = (double)(gr->amax[lv] - gr->amin[lv]);
	double dur = (double)(an->t_end - an->t_start);
	double expct = dur > 0 ? (double)an->flow_total[fc->flow] * span / dur : 0;
	double ex = (double)fc->cnt - expct;

	return ex > 0 ? ex : 0;
}

static uint32_t
src_nf(const struct mscope_analysis *an, uint32_t root_node)
{
	if (an->nodes[root_node].is_source)
		return (uint32_t)an->nodes[root_node].nf_idx;
	return an->src_nf_default;
}

/* Attribute `amount` of input score of node f's PreSet [ps, r] (sorted
 * positions, inclusive) to upstream NFs and the source. */
static void
propagate(struct bctx *c, uint32_t dnode, uint32_t f, uint32_t ps, uint32_t r, double amount)
{
	struct mscope_analysis *an = c->an;
	const struct an_node *nd = &an->nodes[f];
	struct pstate *s;
	uint32_t n_i = r - ps + 1, ng;
	double texp_shared = (double)n_i / nd->rate;
	double *wsrc, *exsum, wtot = 0;
	struct contrib *con = NULL;
	size_t ncon = 0;
	double *fw = NULL;
	size_t nfw = 0;

	if (!(amount > 0) || c->failed)
		return;
	if (++c->calls > MAX_CALLS) {
		acc_add(c, dnode, src_nf(an, f), MSCOPE_AN_SOURCE, 0, 0, amount);
		return;
	}
	s = st_get(c, f, ps, r + 1);
	if (s == NULL)
		return;
	ng = s->ng;
	wsrc = calloc(ng ? ng : 1, sizeof(*wsrc));
	exsum = calloc(ng ? ng : 1, sizeof(*exsum));
	con = malloc(((size_t)ng * MAXL + 1) * sizeof(*con));
	if (wsrc == NULL || con == NULL || exsum == NULL) {
		free(exsum);
		free(wsrc);
		free(con);
		c->failed = 1;
		return;
	}
	for (uint32_t gi = 0; gi < ng; gi++) {
		const struct grp *gr = &s->g[gi];
		double texp, L, sum = 0, share[MAXL], w, src;
		uint32_t lv, top = gr->levels;

		if (an->opts.dag == MSCOPE_AN_DAG_PAPER) {
			texp = texp_shared;
			w = 1;
		} else {
			/* T_exp(P) = n_P / (lambda_P * r_f / lambda_f) */
			double cp = (double)an->path_count[gr->path];
			texp = cp > 0 ? (double)gr->n * (double)nd->nrx / (cp * nd->rate) : texp_shared;
			w = (double)gr->n / (double)n_i;
		}
		/* The root level of a source hop has no NF: the source takes the rest. */
		if (top > 0 && an->nodes[an_path_node_at(an, gr->path, top - 1)].is_source)
			top--;
		L = (double)(gr->amax[0] - gr->amin[0]);
		for (lv = 1; lv < top; lv++) {
			double in = (double)(gr->amax[lv] - gr->amin[lv]);
			double cap = in < texp ? in : texp;
			share[lv] = cap - L > 0 ? cap - L : 0;
			if (cap > L)
				L = cap;
			sum += share[lv];
		}
		src = texp - L > 0 ? texp - L : 0;
		sum += src;
		if (!(sum > 0))
			continue;   /* this path arrived at its usual pace: not compressed */
		wtot += w;
		for (lv = 1; lv < top; lv++)
			if (share[lv] > 0) {
				con[ncon].node = an_path_node_at(an, gr->path, lv);
				con[ncon].hop = gr->gmax[lv];
				con[ncon].amount = w * share[lv] / sum;
				ncon++;
			}
		wsrc[gi] = w * src / sum;
	}
	if (!(wtot > 0)) {
		/* No path was compressed, yet more came than f serves: the offered
		 * load itself; blame the source, all paths by packets. */
		for (uint32_t gi = 0; gi < ng; gi++)
			wsrc[gi] = (double)s->g[gi].n;
		wtot = n_i;
	}
	/* Source shares: the PreSet's flows at the source level. */
	{
		double srct = 0;
		for (uint32_t gi = 0; gi < ng; gi++)
			srct += wsrc[gi];
		if (srct > 0 && s->fn) {
			fw = malloc(2 * (size_t)s->fn * sizeof(*fw));
			if (fw == NULL) {
				c->failed = 1;
				goto out;
			}
			/* group by source NF (normally one) */
			for (uint32_t gi0 = 0; gi0 < ng; gi0++) {
				uint32_t snf = src_nf(an, s->g[gi0].root_node);
				bool first = true;
				double amt = 0;

				for (uint32_t gj = 0; gj < gi0; gj++)
					if (src_nf(an, s->g[gj].root_node) == snf)
						first = false;
				if (!first)
					continue;
				/* [ours] excess: within each path, split its source share by
				 * the flows' excess over their own average rate during the
				 * set's span (by packets when no flow exceeds it) */
				if (an->opts.src_flows == MSCOPE_AN_FLOWS_EXCESS)
					for (uint32_t i = 0; i < s->fcap; i++) {
						const struct fcount *fc = &s->fc[i];
						if (fc->used && wsrc[fc->grp] > 0)
							exsum[fc->grp] += flow_excess(an, &s->g[fc->grp], fc);
					}
				nfw = 0;
				for (uint32_t i = 0; i < s->fcap; i++) {
					const struct fcount *fc = &s->fc[i];
					const struct grp *gr;
					double wgt;

					if (!fc->used || wsrc[fc->grp] <= 0)
						continue;
					gr = &s->g[fc->grp];
					if (src_nf(an, gr->root_node) != snf)
						continue;
					if (exsum[fc->grp] > 0)
						wgt = wsrc[fc->grp] * flow_excess(an, gr, fc) / exsum[fc->grp];
					else
						wgt = wsrc[fc->grp] * (double)fc->cnt / (double)gr->n;
					fw[2 * nfw] = wgt;
					fw[2 * nfw + 1] = fc->flow;
					nfw++;
				}
				for (uint32_t gi = 0; gi < ng; gi++)
					if (src_nf(an, s->g[gi].root_node) == snf)
						amt += wsrc[gi];
				spread_flows(c, dnode, snf, MSCOPE_AN_SOURCE, fw, nfw,
					amount * amt / wtot);
			}
		} else if (srct > 0) {
			acc_add(c, dnode, src_nf(an, s->g[0].root_node), MSCOPE_AN_SOURCE, 0, 0,
				amount * srct / wtot);
		}
	}
	/* Upstream NFs: recursion (the state of f may be clobbered from here on). */
	for (size_t i = 0; i < ncon; i++)
		recurse(c, dnode, con[i].node, con[i].hop, amount * con[i].amount / wtot);
out:
	free(fw);
	free(wsrc);
	free(exsum);
	free(con);
}

/* X got `amount` for compressing the PreSet: split by X's own S_p : S_i over
 * the queuing period of its last PreSet packet; the input part recurses. */
static void
recurse(struct bctx *c, uint32_t dnode, uint32_t node, uint32_t hop, double amount)
{
	struct mscope_analysis *an = c->an;
	const struct an_node *nd = &an->nodes[node];
	struct an_local l;
	double tot, proc, inp;

	if (!(amount > 0))
		return;
	if (nd->is_source || hop < nd->base || hop >= nd->base + nd->nrx) {
		acc_add(c, dnode, (uint32_t)nd->nf_idx, MSCOPE_AN_PROCESSING, 0, 0, amount);
		return;
	}
	an_local(an, node, hop - nd->base, &l);
	tot = l.s_i + l.s_p + l.s_w;
	if (l.rank == UINT32_MAX || !(tot > 0)) {
		blame_processing(c, dnode, node, l.t0, l.t1, amount);
		return;
	}
	proc = amount * (l.s_p + l.s_w) / tot;
	inp = amount * l.s_i / tot;
	blame_processing(c, dnode, node, l.t0, l.t1, proc);
	if (inp >= an->opts.epsilon)
		propagate(c, dnode, node, l.ps, l.rank, inp);
}

/* ------------------------------------------------------------ per victim */

static int
push_q(struct bctx *c, const struct an_queued_int *q)
{
	void *p = an_grow(c->q, &c->qcap, c->nq + 1, sizeof(*c->q));
	if (p == NULL)
		return -1;
	c->q = p;
	c->q[c->nq++] = *q;
	return 0;
}

static int
cmp_acc_idx(const void *x, const void *y, void *arg)
{
	const struct acc *t = arg;
	const struct acc *a = &t[*(const uint32_t *)x], *b = &t[*(const uint32_t *)y];

	if (a->score != b->score)
		return a->score > b->score ? -1 : 1;
	if (a->nf != b->nf)
		return a->nf < b->nf ? -1 : 1;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (a->has_flow != b->has_flow)
		return a->has_flow < b->has_flow ? -1 : 1;
	if (a->flow != b->flow)
		return a->flow < b->flow ? -1 : 1;
	return a->dnode < b->dnode ? -1 : a->dnode > b->dnode;
}

/* A victim's culprits are listed by (NF, kind) total first, so that the
 * first entry names the dominant cause even when a source share is spread
 * over many flows. */
static void
group_totals(struct an_cul *u, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		u[i].group = 0;
		for (size_t j = 0; j < n; j++)
			if (u[j].nf == u[i].nf && u[j].kind == u[i].kind)
				u[i].group += u[j].score;
	}
}

static int
cmp_cul(const void *x, const void *y)
{
	const struct an_cul *a = x, *b = y;

	if (a->group != b->group)
		return a->group > b->group ? -1 : 1;
	if (a->nf != b->nf)
		return a->nf < b->nf ? -1 : 1;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (a->score != b->score)
		return a->score > b->score ? -1 : 1;
	if (a->has_flow != b->has_flow)
		return a->has_flow < b->has_flow ? -1 : 1;
	return a->flow < b->flow ? -1 : a->flow > b->flow;
}

static void
diagnose_victim(struct bctx *c, uint32_t vi)
{
	struct mscope_analysis *an = c->an;
	struct an_victim *v = &an->victims[vi];
	uint32_t g = v->term, best = NO_HOP, steps = 0;
	int64_t best_wait = 0;
	bool any = false;
	size_t q0 = c->nq;

	c->calls = 0;
	c->an_ = 0;
	for (;;) {
		uint32_t node = an_hop_node(an, g);
		const struct an_node *nd = &an->nodes[node];

		if (!nd->is_source) {
			bool qfull = (an->fl[g] & H_QFULL) != 0;
			int64_t wait = qfull ? 0 : an->d[g] - an_arr(an, g);
			int64_t usual = nd->wait_p90;
			int64_t minw = an_ticks(an, an->opts.min_wait_us);

			if (usual < minw)
				usual = minw;
			if (qfull || wait > usual) {
				struct an_queued_int q = { .node = node, .hop = g, .wait = wait };
				if (push_q(c, &q)) {
					c->failed = 1;
					return;
				}
				any = true;
			} else if (wait > best_wait) {
				best_wait = wait;
				best = g;
			}
		}
		if (!(an->fl[g] & H_PRED) || ++steps > 1024)
			break;
		g = an->pred[g];
	}
	if (!any && best != NO_HOP) {
		/* queued nowhere beyond the usual: diagnose where it waited most */
		struct an_queued_int q = { .node = an_hop_node(an, best), .hop = best,
			.wait = best_wait };
		if (push_q(c, &q)) {
			c->failed = 1;
			return;
		}
	}
	for (size_t i = q0; i < c->nq; i++) {
		struct an_queued_int *q = &c->q[i];
		const struct an_node *nd = &an->nodes[q->node];
		struct an_local l;

		an_local(an, q->node, q->hop - nd->base, &l);
		if (l.rank == UINT32_MAX)
			continue;
		q->n_i = l.n_i;
		q->n_p = l.n_p;
		q->period = l.period;
		q->s_i = l.s_i;
		q->s_p = l.s_p;
		q->s_w = l.s_w;
		blame_processing(c, q->node, q->node, l.t0, l.t1, l.s_p + l.s_w);
		propagate(c, q->node, q->node, l.ps, l.rank, l.s_i);
	}
	v->q0 = (uint32_t)q0;
	v->nq = (uint32_t)(c->nq - q0);

	/* relations (per victim NF) and the victim's own culprits (summed over nodes) */
	{
		uint32_t n = c->an_, *idx = malloc((n ? n : 1) * sizeof(*idx));
		size_t c0 = c->ncul;

		if (idx == NULL) {
			c->failed = 1;
			return;
		}
		if (n)
			memcpy(idx, c->aused, n * sizeof(*idx));
		qsort_r(idx, n, sizeof(*idx), cmp_acc_idx, c->acc);
		for (uint32_t i = 0; i < n && !c->failed; i++) {
			const struct acc *a = &c->acc[idx[i]];
			struct an_rel r = {
				.victim = vi, .culprit_nf = a->nf, .kind = a->kind,
				.has_flow = a->has_flow, .flow = a->flow,
				.victim_nf = (uint32_t)an->nodes[a->dnode].nf_idx,
				.victim_flow = an->flow[v->term],
				.score = a->score,
			};
			size_t k;
			void *p;

			/* the victim's flow at the node where it queued */
			for (k = q0; k < c->nq; k++)
				if (c->q[k].node == a->dnode) {
					r.victim_flow = an->flow[c->q[k].hop];
					break;
				}
			p = an_grow(c->rels, &c->rcap, c->nrels + 1, sizeof(*c->rels));
			if (p == NULL) {
				c->failed = 1;
				break;
			}
			c->rels = p;
			c->rels[c->nrels++] = r;
			for (k = c0; k < c->ncul; k++) {
				struct an_cul *u = &c->cul[k];
				if (u->nf == a->nf && u->kind == a->kind &&
						u->has_flow == a->has_flow && u->flow == a->flow) {
					u->score += a->score;
					break;
				}
			}
			if (k == c->ncul) {
				p = an_grow(c->cul, &c->ccap, c->ncul + 1, sizeof(*c->cul));
				if (p == NULL) {
					c->failed = 1;
					break;
				}
				c->cul = p;
				c->cul[c->ncul++] = (struct an_cul){ .nf = a->nf, .kind = a->kind,
					.has_flow = a->has_flow, .flow = a->flow, .score = a->score };
			}
		}
		free(idx);
		group_totals(c->cul + c0, c->ncul - c0);
		if (c->ncul > c0)
			qsort(c->cul + c0, c->ncul - c0, sizeof(*c->cul), cmp_cul);
		v->c0 = (uint32_t)c0;
		v->nc = (uint32_t)(c->ncul - c0);
	}
	/* clear accumulator slots */
	for (uint32_t i = 0; i < c->an_; i++)
		c->acc[c->aused[i]].used = 0;
	c->an_ = 0;
}

/* ------------------------------------------------------------ driver */

struct bjob {
	struct mscope_analysis *an;
	struct bctx ctx;
	uint32_t v0, v1;
};

static void *
bworker(void *arg)
{
	struct bjob *j = arg;

	for (uint32_t v = j->v0; v < j->v1 && !j->ctx.failed; v++) {
		diagnose_victim(&j->ctx, v);
		/* diagnose_victim stored c0/q0 relative to this context */
	}
	return NULL;
}

static void
ctx_free(struct bctx *c, uint32_t nnodes)
{
	if (c->st)
		for (uint32_t k = 0; k < nnodes * NSTATE; k++) {
			free(c->st[k].g);
			free(c->st[k].fc);
		}
	free(c->st);
	free(c->acc);
	free(c->aused);
	free(c->sf);
	free(c->q);
	free(c->rels);
	free(c->cul);
}

static int
cmp_period(const void *x, const void *y)
{
	const struct an_period *a = x, *b = y;

	if (a->node != b->node)
		return a->node < b->node ? -1 : 1;
	if (a->t0 != b->t0)
		return a->t0 < b->t0 ? -1 : 1;
	return a->t1 < b->t1 ? -1 : a->t1 > b->t1;
}

int
an_blame(struct mscope_analysis *an, struct mscope_an_error *err)
{
	int nth = an->opts.threads > 0 ? an->opts.threads : 2;
	struct bjob *jobs;
	pthread_t th[16];
	size_t nq = 0, nr = 0, ncul = 0;
	int started = 0, rc = -1;

	if (nth > 16)
		nth = 16;
	if ((uint32_t)nth > an->nvictims)
		nth = an->nvictims ? (int)an->nvictims : 1;
	/* Packets per flow at the ingress, for the excess-over-average option. */
	an->flow_total = calloc(an->nflows ? an->nflows : 1, sizeof(*an->flow_total));
	if (an->flow_total == NULL)
		goto oom0;
	for (uint32_t g = 0; g < an->nh; g++)
		if (!(an->fl[g] & H_PRED) && !(an->fl[g] & H_QFULL) &&
				(an->fl[g] & (H_SRC | H_TX | H_DROP)))
			an->flow_total[an->flow[g]]++;

	jobs = calloc((size_t)nth, sizeof(*jobs));
	if (jobs == NULL)
		goto oom0;
	for (int t = 0; t < nth; t++) {
		jobs[t].an = an;
		jobs[t].ctx.an = an;
		jobs[t].ctx.st = calloc((size_t)an->nnodes * NSTATE, sizeof(*jobs[t].ctx.st));
		if (jobs[t].ctx.st == NULL)
			goto oom;
		/* contiguous chunks of the time-sorted victims: PreSets are shared */
		jobs[t].v0 = (uint32_t)((uint64_t)an->nvictims * t / nth);
		jobs[t].v1 = (uint32_t)((uint64_t)an->nvictims * (t + 1) / nth);
	}
	for (int t = 1; t < nth; t++)
		if (pthread_create(&th[t], NULL, bworker, &jobs[t]) == 0)
			started |= 1 << t;
		else
			bworker(&jobs[t]);
	bworker(&jobs[0]);
	for (int t = 1; t < nth; t++)
		if (started & (1 << t))
			pthread_join(th[t], NULL);
	for (int t = 0; t < nth; t++) {
		if (jobs[t].ctx.failed)
			goto oom;
		nq += jobs[t].ctx.nq;
		nr += jobs[t].ctx.nrels;
		ncul += jobs[t].ctx.ncul;
	}
	/* Concatenate in chunk order (deterministic for any thread count). */
	an->queued = malloc((nq ? nq : 1) * sizeof(*an->queued));
	an->rels = malloc((nr ? nr : 1) * sizeof(*an->rels));
	an->culs = malloc((ncul ? ncul : 1) * sizeof(*an->culs));
	if (an->queued == NULL || an->rels == NULL || an->culs == NULL)
		goto oom;
	an->nqueued = an->nrels = an->nculs = 0;
	for (int t = 0; t < nth; t++) {
		struct bctx *c = &jobs[t].ctx;
		for (uint32_t v = jobs[t].v0; v < jobs[t].v1; v++) {
			an->victims[v].q0 += (uint32_t)an->nqueued;
			an->victims[v].c0 += (uint32_t)an->nculs;
		}
		if (c->nq)
			memcpy(an->queued + an->nqueued, c->q, c->nq * sizeof(*c->q));
		if (c->nrels)
			memcpy(an->rels + an->nrels, c->rels, c->nrels * sizeof(*c->rels));
		if (c->ncul)
			memcpy(an->culs + an->nculs, c->cul, c->ncul * sizeof(*c->cul));
		an->nqueued += c->nq;
		an->nrels += c->nrels;
		an->nculs += c->ncul;
	}
	/* Per-node victim counts and queuing periods. */
	an->periods = malloc((an->nqueued ? an->nqueued : 1) * sizeof(*an->periods));
	if (an->periods == NULL)
		goto oom;
	an->nperiods = 0;
	for (size_t i = 0; i < an->nqueued; i++) {
		const struct an_queued_int *q = &an->queued[i];
		an->nodes[q->node].victims++;
		an->periods[an->nperiods++] = (struct an_period){ .node = q->node,
			.t0 = an_arr(an, q->hop) - q->period, .t1 = an_arr(an, q->hop), .victims = 1 };
	}
	if (an->nperiods) {
		size_t o = 0;
		qsort(an->periods, an->nperiods, sizeof(*an->periods), cmp_period);
		for (size_t i = 1; i < an->nperiods; i++) {
			struct an_period *p = &an->periods[o], *q = &an->periods[i];
			if (q->node == p->node && q->t0 == p->t0) {
				if (q->t1 > p->t1)
					p->t1 = q->t1;
				p->victims++;
			} else {
				an->periods[++o] = *q;
			}
		}
		an->nperiods = o + 1;
	}
	rc = 0;
	goto out;
oom:
	an_err(err, "out of memory (diagnosis)");
out:
	for (int t = 0; t < nth; t++)
		ctx_free(&jobs[t].ctx, an->nnodes);
	free(jobs);
	return rc;
oom0:
	an_err(err, "out of memory (diagnosis)");
	return -1;
}

/* ------------------------------------------------------------ one packet */

int
mscope_an_explain(struct mscope_analysis *an, int node, uint32_t wire_id,
		struct mscope_an_culprit **out, size_t *nout, struct mscope_an_error *err)
{
	struct bctx c = { .an = an };
	const struct an_node *nd;
	struct an_local l;
	uint32_t h;
	int rc = -1;

	*out = NULL;
	*nout = 0;
	if (an->released) {
		an_err(err, "per-packet data already released");
		return -1;
	}
	if (node < 0 || (uint32_t)node >= an->nnodes || an->nodes[node].is_source) {
		an_err(err, "no such NF node");
		return -1;
	}
	nd = &an->nodes[node];
	for (h = 0; h < nd->n; h++)
		if (an->win[nd->base + h] == wire_id)
			break;
	if (h == nd->n) {
		an_err(err, "%s: no packet with wire ID %u", nd->id, wire_id);
		return -1;
	}
	if (an->flow_total == NULL) {
		an->flow_total = calloc(an->nflows ? an->nflows : 1, sizeof(*an->flow_total));
		if (an->flow_total == NULL)
			goto oom;
		for (uint32_t g = 0; g < an->nh; g++)
			if (!(an->fl[g] & H_PRED) && !(an->fl[g] & H_QFULL) &&
					(an->fl[g] & (H_SRC | H_TX | H_DROP)))
				an->flow_total[an->flow[g]]++;
	}
	c.st = calloc((size_t)an->nnodes * NSTATE, sizeof(*c.st));
	if (c.st == NULL)
		goto oom;
	an_local(an, (uint32_t)node, h, &l);
	if (l.rank != UINT32_MAX) {
		blame_processing(&c, (uint32_t)node, (uint32_t)node, l.t0, l.t1, l.s_p + l.s_w);
		propagate(&c, (uint32_t)node, (uint32_t)node, l.ps, l.rank, l.s_i);
	}
	if (c.failed)
		goto oom;
	{
		uint32_t n = c.an_;
		struct an_cul *u = calloc(n ? n : 1, sizeof(*u));
		size_t k = 0;

		if (u == NULL)
			goto oom;
		for (uint32_t i = 0; i < n; i++) {
			const struct acc *a = &c.acc[c.aused[i]];
			size_t j;
			for (j = 0; j < k; j++)
				if (u[j].nf == a->nf && u[j].kind == a->kind &&
						u[j].has_flow == a->has_flow && u[j].flow == a->flow)
					break;
			if (j == k)
				u[k++] = (struct an_cul){ .nf = a->nf, .kind = a->kind,
					.has_flow = a->has_flow, .flow = a->flow };
			u[j].score += a->score;
		}
		group_totals(u, k);
		qsort(u, k, sizeof(*u), cmp_cul);
		*out = calloc(k ? k : 1, sizeof(**out));
		if (*out == NULL) {
			free(u);
			goto oom;
		}
		for (size_t i = 0; i < k; i++) {
			(*out)[i].nf = an->nfs[u[i].nf];
			(*out)[i].kind = (enum mscope_an_kind)u[i].kind;
			(*out)[i].has_flow = u[i].has_flow;
			(*out)[i].flow = an->flows[u[i].flow];
			(*out)[i].score = u[i].score;
		}
		*nout = k;
		free(u);
	}
	rc = 0;
	goto out;
oom:
	an_err(err, "out of memory");
out:
	ctx_free(&c, an->nnodes);
	return rc;
}
