/* SPDX-License-Identifier: BSD-3-Clause */
/* Known-answer tests of the analyzer on hand-built traces (method.md §2-3):
 * every expected number below is worked out by hand in the comments. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "an_testutil.h"
#include "mscope_analyzer.h"

#define T0 1000000
#define EPS 1e-6

static struct mscope_analysis *
open_dir(const char *dir, struct mscope_an_opts *o, const char *const *rates)
{
	static struct mscope_an_rate r[8];
	struct mscope_an_error err;
	struct mscope_analysis *an;
	size_t n = 0;

	for (; rates && rates[n]; n++) {
		const char *eq = strchr(rates[n], '=');
		memset(&r[n], 0, sizeof(r[n]));
		memcpy(r[n].name, rates[n], (size_t)(eq - rates[n]));
		r[n].mpps = atof(eq + 1);
	}
	o->rates = r;
	o->nrates = n;
	an = mscope_an_open(dir, o, &err);
	cr_assert_not_null(an, "open: %s", err.text);
	return an;
}

static double
score_of(const struct mscope_an_culprit *c, size_t n, const char *nf, int kind, int has_flow)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(c[i].nf, nf) && (int)c[i].kind == kind &&
				(has_flow < 0 || c[i].has_flow == has_flow))
			s += c[i].score;
	return s;
}

static double
total_of(const struct mscope_an_culprit *c, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += c[i].score;
	return s;
}

/* ---------------------------------------------------------------------
 * The slides' chain: source -> A -> B -> C -> f, 11 packets (wire 100+k).
 *   source sends at T0 + 900k             T_src = 9000 ns
 *   A holds them, sends at +200k          T_A   = 2000
 *   B serves one by one, sends at +600k   T_B   = 6000 (lengthens)
 *   C holds them, sends at +100k          T_C   = 1000 = T_f
 *   f holds them: n_i = 11, |T| = 1000, n_p = 0, r_f = 1 Mpps:
 *     S_i = 11 - 1 = 10, S_p = 1, T_exp = 11000.
 *   Shares of S_i (slides): C (T_B - T_C)/(T_exp - T_C) = 5000/10000 -> 5
 *     A (T_src - T_B)/.. = 3000/10000 -> 3, source (T_exp - T_src) -> 2, B 0.
 *   A and C run at 2 Mpps: their own S_i clamps to 0 (A: 18 > 11 over
 *   9000 ns; C: 12 > 11 over 6000 ns), so recursion gives all to processing.
 */
static void
build_slides(const char *dir)
{
	enum { N = 11 };
	uint32_t wire[N], flow[N] = { 0 };
	int64_t src[N], ad[N], at[N], bd[N], bt[N], cd[N], ct[N], fd[N], ft[N];

	for (int k = 0; k < N; k++) {
		wire[k] = 100 + k;
		src[k] = T0 + 900 * k;
		ad[k] = T0 + 9100;
		at[k] = T0 + 9200 + 200 * k;
		bd[k] = T0 + 9250 + 200 * k;
		bt[k] = T0 + 11300 + 600 * k;
		cd[k] = T0 + 17400;
		ct[k] = T0 + 17500 + 100 * k;
		fd[k] = T0 + 18600;
		ft[k] = T0 + 18700;
	}
	tu_source(dir, "source", N, wire, flow, src, 1);
	tu_node(dir, "A", N, wire, flow, ad, at, NULL, 1);
	tu_node(dir, "B", N, wire, flow, bd, bt, NULL, 1);
	tu_node(dir, "C", N, wire, flow, cd, ct, NULL, 1);
	tu_node(dir, "f", N, wire, flow, fd, ft, NULL, 1);
}

static void
check_slides(enum mscope_an_dag dag)
{
	char *dir = tu_mkdir();
	struct mscope_an_opts o;
	struct mscope_an_error err;
	struct mscope_an_culprit *c;
	struct mscope_an_queued q;
	size_t n;
	const char *rates[] = { "A=2", "B=2", "C=2", "f=1", NULL };

	build_slides(dir);
	mscope_an_opts_init(&o);
	o.dag = dag;
	struct mscope_analysis *an = open_dir(dir, &o, rates);
	int f = mscope_an_node_find(an, "f:p0q0");
	cr_assert_geq(f, 0);

	cr_assert_eq(mscope_an_local_scores(an, f, 110, &q), 0);
	cr_assert_eq(q.n_i, 11);
	cr_assert_eq(q.n_p, 0);
	cr_assert_float_eq(q.period_us, 1.0, EPS);
	cr_assert_float_eq(q.s_i, 10.0, EPS);
	cr_assert_float_eq(q.s_p, 1.0, EPS);

	cr_assert_eq(mscope_an_explain(an, f, 110, &c, &n, &err), 0, "%s", err.text);
	cr_assert_float_eq(score_of(c, n, "C", MSCOPE_AN_PROCESSING, 0), 5.0, EPS);
	cr_assert_float_eq(score_of(c, n, "A", MSCOPE_AN_PROCESSING, 0), 3.0, EPS);
	cr_assert_float_eq(score_of(c, n, "source", MSCOPE_AN_SOURCE, 1), 2.0, EPS);
	cr_assert_float_eq(score_of(c, n, "B", MSCOPE_AN_PROCESSING, -1), 0.0, EPS);
	cr_assert_float_eq(score_of(c, n, "f", MSCOPE_AN_PROCESSING, 0), 1.0, EPS);
	cr_assert_float_eq(total_of(c, n), 11.0, EPS);
	/* sorted by score, the source culprit names the flow */
	cr_assert_str_eq(c[0].nf, "C");
	for (size_t i = 0; i < n; i++)
		if (c[i].kind == MSCOPE_AN_SOURCE)
			cr_assert_eq(c[i].flow.sport, 10001);
	free(c);
	mscope_an_close(an);
	tu_rmdir(dir);
}

Test(analyzer, slides_chain_ours) { check_slides(MSCOPE_AN_DAG_OURS); }
Test(analyzer, slides_chain_paper) { check_slides(MSCOPE_AN_DAG_PAPER); }

/* Local scores and clamping.
 *   f in the slides chain: S_i = 10, S_p = 1 (no clamp, sum = Q = 11);
 *   A: n_i = 11, n_p = 0, r|T| = 18: S_i < 0 -> S_i = 0, S_p = Q = 11;
 *   X below: 10 arrivals 100 ns apart, 3 served at T0+450 (queue never
 *   empty), r = 0.1 Mpps: r|T| = 0.09, S_p = 0.09 - 3 < 0 -> S_p = 0,
 *   S_i = Q = 7. */
Test(analyzer, local_scores_clamping)
{
	char *dir = tu_mkdir();
	struct mscope_an_opts o;
	struct mscope_an_queued q;
	const char *rates[] = { "A=2", "B=2", "C=2", "f=1", NULL };

	build_slides(dir);
	mscope_an_opts_init(&o);
	struct mscope_analysis *an = open_dir(dir, &o, rates);
	cr_assert_eq(mscope_an_local_scores(an, mscope_an_node_find(an, "A:p0q0"), 110, &q), 0);
	cr_assert_eq(q.n_i, 11);
	cr_assert_float_eq(q.period_us, 9.0, EPS);
	cr_assert_float_eq(q.s_i, 0.0, EPS);
	cr_assert_float_eq(q.s_p, 11.0, EPS);
	mscope_an_close(an);
	tu_rmdir(dir);

	dir = tu_mkdir();
	enum { N = 10 };
	uint32_t wire[N], flow[N] = { 0 };
	int64_t src[N], xd[N], xt[N];
	for (int k = 0; k < N; k++) {
		wire[k] = 500 + k;
		src[k] = T0 + 100 * k;
		xd[k] = k < 3 ? T0 + 450 : T0 + 2000;
		xt[k] = xd[k] + 10;
	}
	tu_source(dir, "source", N, wire, flow, src, 1);
	tu_node(dir, "X", N, wire, flow, xd, xt, NULL, 1);
	const char *r2[] = { "X=0.1", NULL };
	mscope_an_opts_init(&o);
	an = open_dir(dir, &o, r2);
	cr_assert_eq(mscope_an_local_scores(an, mscope_an_node_find(an, "X:p0q0"), 509, &q), 0);
	cr_assert_eq(q.n_i, 10);
	cr_assert_eq(q.n_p, 3);
	cr_assert_float_eq(q.s_p, 0.0, EPS);
	cr_assert_float_eq(q.s_i, 7.0, EPS);
	/* the queue was never empty: the first packet opened the period */
	cr_assert_float_eq(q.period_us, 0.9, EPS);
	mscope_an_close(an);
	tu_rmdir(dir);
}

/* ---------------------------------------------------------------------
 * Two-path DAG: source -> X -> f and source -> Y -> f.
 * Background (no queues): 10 packets via X, 30 via Y. Then the PreSet:
 *   via Y: sent at T0 + 1000k, forwarded at once: span 9000 at f;
 *   via X: sent at T0 + 500 + 1000k, held, released 10 ns apart: span 90.
 * f holds all 20: n_i = 20, |T| = 9790 - 100 = 9690, r_f = 1 Mpps:
 *   S_i = 20 - 9.69 = 10.31, S_p = 9.69.
 * Long-run counts at f: via X 20, via Y 40, total 60.
 * ours:  T_exp(X path) = 10*60/(20 r) = 30000: X 8910, source 21000 (sum 29910)
 *        T_exp(Y path) = 10*60/(40 r) = 15000: Y 0, source 6000
 *        weights 1/2 each: X = S_i * 0.5 * 8910/29910, the rest is source:
 *        flow of the Y path S_i/2, of the X path S_i * 0.5 * 21000/29910.
 * paper: T_exp = 20000: X path X 8910, source 11000 (sum 19910);
 *        Y path source 11000 only; scaled by 1/2:
 *        X = S_i * 8910/19910/2, flow Y S_i/2, flow X S_i * 11000/19910/2.
 * X runs at 2 Mpps and held its queue: S_i(X) clamps to 0 -> processing. */
struct pk {
	int64_t src, xd, xt, fd, ft;
	uint32_t wire, flow;
	int path;   /* 0 via X, 1 via Y */
};

static int
cmp_fd(const void *a, const void *b)
{
	const struct pk *x = a, *y = b;
	if (x->fd != y->fd)
		return x->fd < y->fd ? -1 : 1;
	return x->wire < y->wire ? -1 : 1;
}

static int
cmp_src(const void *a, const void *b)
{
	const struct pk *x = a, *y = b;
	if (x->src != y->src)
		return x->src < y->src ? -1 : 1;
	return x->wire < y->wire ? -1 : 1;
}

static void
build_dag(const char *dir)
{
	enum { N = 60 };
	struct pk p[N];
	int n = 0;

	for (int i = 0; i < 10; i++, n++)
		p[n] = (struct pk){ .src = 100000 + 40000 * i, .wire = 1000 + n, .flow = 0, .path = 0 };
	for (int i = 0; i < 30; i++, n++)
		p[n] = (struct pk){ .src = 110000 + 20000 * i, .wire = 1000 + n, .flow = 1, .path = 1 };
	for (int i = 0; i < n; i++) {
		p[i].xd = p[i].src + 50;
		p[i].xt = p[i].src + 100;
		p[i].fd = p[i].src + 150;
		p[i].ft = p[i].src + 200;
	}
	for (int k = 0; k < 10; k++, n++)
		p[n] = (struct pk){ .src = T0 + 1000 * k, .xd = T0 + 1000 * k + 50,
			.xt = T0 + 1000 * k + 100, .fd = T0 + 10000, .ft = T0 + 10100,
			.wire = 2000 + k, .flow = 1, .path = 1 };
	for (int k = 0; k < 10; k++, n++)
		p[n] = (struct pk){ .src = T0 + 500 + 1000 * k, .xd = T0 + 9600,
			.xt = T0 + 9700 + 10 * k, .fd = T0 + 10000, .ft = T0 + 10100,
			.wire = 3000 + k, .flow = 0, .path = 0 };
	cr_assert_eq(n, N);

	uint32_t wire[N], flow[N];
	int64_t a[N], b[N], c[N];
	qsort(p, N, sizeof(p[0]), cmp_src);
	for (int i = 0; i < N; i++) {
		wire[i] = p[i].wire;
		flow[i] = p[i].flow;
		a[i] = p[i].src;
	}
	tu_source(dir, "source", N, wire, flow, a, 2);
	for (int path = 0; path < 2; path++) {
		int m = 0;
		for (int i = 0; i < N; i++)
			if (p[i].path == path) {
				wire[m] = p[i].wire;
				flow[m] = p[i].flow;
				a[m] = p[i].xd;
				b[m] = p[i].xt;
				m++;
			}
		tu_node(dir, path == 0 ? "X" : "Y", (size_t)m, wire, flow, a, b, NULL, 2);
	}
	qsort(p, N, sizeof(p[0]), cmp_fd);
	for (int i = 0; i < N; i++) {
		wire[i] = p[i].wire;
		flow[i] = p[i].flow;
		b[i] = p[i].fd;
		c[i] = p[i].ft;
	}
	tu_node(dir, "f", N, wire, flow, b, c, NULL, 2);
}

static void
check_dag(enum mscope_an_dag dag)
{
	char *dir = tu_mkdir();
	struct mscope_an_opts o;
	struct mscope_an_error err;
	struct mscope_an_culprit *c;
	struct mscope_an_queued q;
	size_t n;
	const char *rates[] = { "X=2", "Y=2", "f=1", NULL };
	const double si = 20 - 9.69;
	double x, fx, fy;

	build_dag(dir);
	mscope_an_opts_init(&o);
	o.dag = dag;
	struct mscope_analysis *an = open_dir(dir, &o, rates);
	int f = mscope_an_node_find(an, "f:p0q0");
	cr_assert_eq(mscope_an_local_scores(an, f, 3009, &q), 0);
	cr_assert_eq(q.n_i, 20);
	cr_assert_eq(q.n_p, 0);
	cr_assert_float_eq(q.s_i, si, EPS);
	cr_assert_float_eq(q.s_p, 9.69, EPS);

	if (dag == MSCOPE_AN_DAG_OURS) {
		x = si * 0.5 * 8910.0 / 29910.0;
		fx = si * 0.5 * 21000.0 / 29910.0;
		fy = si * 0.5;
	} else {
		x = si * 8910.0 / 19910.0 / 2;
		fx = si * 11000.0 / 19910.0 / 2;
		fy = si / 2;
	}
	cr_assert_eq(mscope_an_explain(an, f, 3009, &c, &n, &err), 0, "%s", err.text);
	cr_assert_float_eq(score_of(c, n, "X", MSCOPE_AN_PROCESSING, 0), x, EPS);
	cr_assert_float_eq(score_of(c, n, "Y", MSCOPE_AN_PROCESSING, -1), 0, EPS);
	cr_assert_float_eq(score_of(c, n, "f", MSCOPE_AN_PROCESSING, 0), 9.69, EPS);
	double sx = 0, sy = 0;
	for (size_t i = 0; i < n; i++) {
		if (c[i].kind != MSCOPE_AN_SOURCE)
			continue;
		cr_assert(c[i].has_flow);
		if (c[i].flow.sport == 10001)
			sx += c[i].score;
		else if (c[i].flow.sport == 10002)
			sy += c[i].score;
	}
	cr_assert_float_eq(sx, fx, EPS);
	cr_assert_float_eq(sy, fy, EPS);
	cr_assert_float_eq(total_of(c, n), 20.0, EPS);
	free(c);
	mscope_an_close(an);
	tu_rmdir(dir);
}

Test(analyzer, dag_two_paths_ours) { check_dag(MSCOPE_AN_DAG_OURS); }
Test(analyzer, dag_two_paths_paper) { check_dag(MSCOPE_AN_DAG_PAPER); }

/* ---------------------------------------------------------------------
 * Recursion two levels deep: source -> A -> B -> f, 11 packets.
 *   source T0 + 900k (span 9000); A holds, sends +400k (span 4000);
 *   B holds, sends +10k (span 100); f holds: n_i 11, |T| 100, r_f 1 Mpps:
 *   S_i = 10.9, S_p = 0.1; T_exp = 11000: B 3900, A 5000, source 2000
 *   (sum 10900): B 3.9, A 5, source 2.
 *   B (1 Mpps) over its period: n_i 11, |T| 4000: S_i 7, S_p 4: B keeps
 *   3.9*4/11, passes 3.9*7/11 upstream with its own PreSet: T_exp 11000,
 *   level 4000: A 5000, source 2000 -> A 5/7, source 2/7 of it.
 *   A (2 Mpps) clamps to processing. */
Test(analyzer, recursion_two_levels)
{
	enum { N = 11 };
	char *dir = tu_mkdir();
	uint32_t wire[N], flow[N] = { 0 };
	int64_t src[N], ad[N], at[N], bd[N], bt[N], fd[N], ft[N];
	struct mscope_an_opts o;
	struct mscope_an_error err;
	struct mscope_an_culprit *c;
	size_t n;
	const char *rates[] = { "A=2", "B=1", "f=1", NULL };

	for (int k = 0; k < N; k++) {
		wire[k] = 700 + k;
		src[k] = T0 + 900 * k;
		ad[k] = T0 + 9100;
		at[k] = T0 + 9200 + 400 * k;
		bd[k] = T0 + 13300;
		bt[k] = T0 + 13400 + 10 * k;
		fd[k] = T0 + 13600;
		ft[k] = T0 + 13700;
	}
	tu_source(dir, "source", N, wire, flow, src, 1);
	tu_node(dir, "A", N, wire, flow, ad, at, NULL, 1);
	tu_node(dir, "B", N, wire, flow, bd, bt, NULL, 1);
	tu_node(dir, "f", N, wire, flow, fd, ft, NULL, 1);
	mscope_an_opts_init(&o);
	struct mscope_analysis *an = open_dir(dir, &o, rates);
	cr_assert_eq(mscope_an_explain(an, mscope_an_node_find(an, "f:p0q0"), 710, &c, &n, &err),
		0, "%s", err.text);
	cr_assert_float_eq(score_of(c, n, "f", MSCOPE_AN_PROCESSING, 0), 0.1, EPS);
	cr_assert_float_eq(score_of(c, n, "B", MSCOPE_AN_PROCESSING, 0), 3.9 * 4 / 11, EPS);
	cr_assert_float_eq(score_of(c, n, "A", MSCOPE_AN_PROCESSING, 0), 5 + 3.9 * 5 / 11, EPS);
	cr_assert_float_eq(score_of(c, n, "source", MSCOPE_AN_SOURCE, 1), 2 + 3.9 * 2 / 11, EPS);
	cr_assert_float_eq(total_of(c, n), 11.0, EPS);
	free(c);
	mscope_an_close(an);
	tu_rmdir(dir);
}

/* ---------------------------------------------------------------------
 * Drops are victims: f stalls, two packets meet a full queue. */
Test(analyzer, drops_are_victims)
{
	char *dir = tu_mkdir();
	uint32_t wire[4] = { 1, 2, 3, 4 }, flow[4] = { 0 };
	int64_t src[4] = { T0, T0 + 100, T0 + 200, T0 + 300 };
	struct mscope_an_opts o;
	struct mscope_an_error err;
	struct mscope_an_victim v;
	int drops = 0;

	tu_source(dir, "source", 4, wire, flow, src, 1);
	struct mscope_trace_writer *w = tu_open(dir, "f.mst", "f", MSCOPE_ROLE_RXQ, NULL);
	tu_flows(w, 1);
	struct mscope_drop d1 = { .tsc = T0 + 200, .reason = MSCOPE_DROP_QUEUE_FULL, .n = 1,
		.wire_id = &wire[2], .flow = flow };
	struct mscope_drop d2 = { .tsc = T0 + 300, .reason = MSCOPE_DROP_QUEUE_FULL, .n = 1,
		.wire_id = &wire[3], .flow = flow };
	cr_assert_eq(mscope_writer_drop(w, &d1), 0);
	cr_assert_eq(mscope_writer_drop(w, &d2), 0);
	struct mscope_rx_burst rx = { .tsc = T0 + 1000, .n = 2, .qdepth = 0, .wire_id = wire,
		.flow = flow };
	cr_assert_eq(mscope_writer_rx(w, &rx), 0);
	uint64_t seq[2] = { 0, 1 };
	struct mscope_tx_burst tx = { .tsc = T0 + 1100, .offered = 2, .accepted = 2,
		.wire_id = wire, .rx_seq = seq };
	cr_assert_eq(mscope_writer_tx(w, &tx), 0);
	cr_assert_eq(mscope_writer_close(w), 0);

	mscope_an_opts_init(&o);
	struct mscope_analysis *an = open_dir(dir, &o, (const char *const[]){ "f=1", NULL });
	cr_assert_eq(mscope_an_diagnose(an, &err), 0, "%s", err.text);
	for (size_t i = 0; i < mscope_an_victim_count(an); i++) {
		cr_assert_eq(mscope_an_victim(an, i, &v), 0);
		if (!v.dropped)
			continue;
		drops++;
		cr_assert(v.wire_id == 3 || v.wire_id == 4);
		/* identity: the source tx record */
		cr_assert_eq(v.tsc, (uint64_t)(v.wire_id == 3 ? T0 + 200 : T0 + 300));
		cr_assert_geq(v.nqueued, 1);
		cr_assert_gt(v.nculprits, 0);
		/* queue of 2 at the drop: the blame sums to Q */
		double s = 0;
		for (size_t k = 0; k < v.nculprits; k++)
			s += v.culprits[k].score;
		cr_assert_float_eq(s, 2.0, EPS);
	}
	cr_assert_eq(drops, 2);
	json_t *doc = mscope_an_json(an);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(doc, "summary"), "drops")), 2);
	json_decref(doc);
	mscope_an_close(an);
	tu_rmdir(dir);
}

/* ---------------------------------------------------------------------
 * A packet the NF frees by its own decision (a firewall rule: reason nf) is
 * consumed, not a victim; a tx-refused drop stays one. f dequeues 3 packets,
 * sends packet 1, drops packet 2 by rule, and packet 3 is refused and freed. */
Test(analyzer, nf_policy_drops_are_not_victims)
{
	char *dir = tu_mkdir();
	uint32_t wire[3] = { 1, 2, 3 }, flow[3] = { 0 };
	int64_t src[3] = { T0, T0 + 100, T0 + 200 };
	struct mscope_an_opts o;
	struct mscope_an_error err;
	struct mscope_an_victim v;

	tu_source(dir, "source", 3, wire, flow, src, 1);
	struct mscope_trace_writer *w = tu_open(dir, "f.mst", "f", MSCOPE_ROLE_RXQ, NULL);
	tu_flows(w, 1);
	struct mscope_rx_burst rx = { .tsc = T0 + 1000, .n = 3, .qdepth = 0, .wire_id = wire,
		.flow = flow };
	cr_assert_eq(mscope_writer_rx(w, &rx), 0);
	uint64_t seq[3] = { 0, 1, 2 };
	struct mscope_tx_burst tx = { .tsc = T0 + 1100, .offered = 1, .accepted = 1,
		.wire_id = wire, .rx_seq = seq };
	cr_assert_eq(mscope_writer_tx(w, &tx), 0);
	struct mscope_drop rule = { .tsc = T0 + 1200, .reason = MSCOPE_DROP_NF, .n = 1,
		.wire_id = &wire[1], .flow = flow, .rx_seq = &seq[1] };
	struct mscope_drop refused = { .tsc = T0 + 1300, .reason = MSCOPE_DROP_TX_REFUSED,
		.n = 1, .wire_id = &wire[2], .flow = flow, .rx_seq = &seq[2] };
	cr_assert_eq(mscope_writer_drop(w, &rule), 0);
	cr_assert_eq(mscope_writer_drop(w, &refused), 0);
	cr_assert_eq(mscope_writer_close(w), 0);

	mscope_an_opts_init(&o);
	o.threshold_us = 1000; /* no delivered packet is slow: only drops can be victims */
	struct mscope_analysis *an = open_dir(dir, &o, (const char *const[]){ "f=1", NULL });
	cr_assert_eq(mscope_an_diagnose(an, &err), 0, "%s", err.text);
	cr_assert_eq(mscope_an_victim_count(an), 1);
	cr_assert_eq(mscope_an_victim(an, 0, &v), 0);
	cr_assert(v.dropped);
	cr_assert_eq(v.wire_id, 3);
	json_t *doc = mscope_an_json(an);
	json_t *sum = json_object_get(doc, "summary");
	cr_assert_eq(json_integer_value(json_object_get(sum, "dropped")), 1);
	cr_assert_eq(json_integer_value(json_object_get(sum, "nf_dropped")), 1);
	cr_assert_eq(json_integer_value(json_object_get(sum, "packets")), 3);
	json_t *nodes = json_object_get(doc, "nodes");
	for (size_t i = 0; i < json_array_size(nodes); i++) {
		json_t *n = json_array_get(nodes, i);
		if (strcmp(json_string_value(json_object_get(n, "nf")), "f"))
			continue;
		cr_assert_eq(json_integer_value(json_object_get(n, "drops")), 1);
		cr_assert_eq(json_integer_value(json_object_get(n, "nf_drops")), 1);
	}
	json_decref(doc);
	mscope_an_close(an);
	tu_rmdir(dir);
}

/* The whole pipeline on the slides chain: victims, JSON, relations. */
Test(analyzer, pipeline_json_relations)
{
	char *dir = tu_mkdir();
	struct mscope_an_opts o;
	struct mscope_an_error err;
	char *buf = NULL;
	size_t len = 0;
	const char *rates[] = { "A=2", "B=2", "C=2", "f=1", NULL };

	build_slides(dir);
	mscope_an_opts_init(&o);
	o.threshold_us = 5;     /* latencies are 8.7 .. 17.7 us */
	o.min_wait_us = 0.001;
	struct mscope_analysis *an = open_dir(dir, &o, rates);
	cr_assert_eq(mscope_an_diagnose(an, &err), 0, "%s", err.text);
	cr_assert_eq(mscope_an_victim_count(an), 11);
	json_t *doc = mscope_an_json(an);
	json_t *sum = json_object_get(doc, "summary");
	cr_assert_eq(json_integer_value(json_object_get(sum, "victims")), 11);
	cr_assert_str_eq(json_string_value(json_object_get(sum, "arrivals")), "source");
	cr_assert_str_eq(json_string_value(json_object_get(sum, "dag")), "ours");
	cr_assert_eq(json_array_size(json_object_get(doc, "nodes")), 5);
	cr_assert_eq(json_array_size(json_object_get(doc, "edges")), 4);
	json_t *cul = json_object_get(doc, "culprits");
	cr_assert_gt(json_array_size(cul), 0);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(cul, 0), "rank")), 1);
	/* every rule names its root cause (culprit cluster): rank from 1, its
	 * score = the sum of its rules' scores, its distinct victims */
	{
		size_t i, nc = json_array_size(cul);
		json_t *c;
		long maxc = 0;

		json_array_foreach(cul, i, c) {
			json_t *k = json_object_get(c, "cluster");
			double cs = 0;
			size_t j;
			json_t *d;

			cr_assert(json_is_integer(k), "culprits[%zu]: no cluster", i);
			cr_assert_geq(json_integer_value(k), 1);
			if (json_integer_value(k) > maxc)
				maxc = (long)json_integer_value(k);
			json_array_foreach(cul, j, d)
				if (json_equal(json_object_get(d, "cluster"), k))
					cs += json_number_value(json_object_get(d, "score"));
			cr_assert_float_eq(json_number_value(json_object_get(c, "cluster_score")),
				cs, 1e-6 * (cs + 1));
			cr_assert_geq(json_integer_value(json_object_get(c, "cluster_victims")),
				json_integer_value(json_object_get(c, "victims")));
			cr_assert_leq(json_integer_value(json_object_get(c, "cluster_victims")), 11);
		}
		cr_assert_leq(maxc, (long)nc);
		cr_assert_eq(json_integer_value(json_object_get(json_array_get(cul, 0), "cluster")), 1);
	}
	cr_assert_gt(json_array_size(json_object_get(doc, "periods")), 0);
	json_decref(doc);

	FILE *f = open_memstream(&buf, &len);
	cr_assert_eq(mscope_an_write_relations(an, f), 0);
	fclose(f);
	int lines = 0;
	for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n")) {
		json_error_t jerr;
		json_t *x = json_loads(l, 0, &jerr);
		cr_assert_not_null(x, "%s", jerr.text);
		cr_assert(json_is_integer(json_object_get(x, "wire_id")));
		cr_assert(json_is_integer(json_object_get(x, "tsc")));
		cr_assert(json_is_array(json_object_get(x, "queued_at")));
		cr_assert(json_is_array(json_object_get(x, "culprits")));
		json_decref(x);
		lines++;
	}
	cr_assert_eq(lines, 11);
	free(buf);
	mscope_an_close(an);
	tu_rmdir(dir);
}

/* Identical input, identical output, for any thread count. */
Test(analyzer, deterministic_threads)
{
	char *dir = tu_mkdir();
	struct mscope_an_opts o;
	struct mscope_an_error err;
	char *out[2];
	const char *rates[] = { "X=2", "Y=2", "f=1", NULL };

	build_dag(dir);
	for (int t = 0; t < 2; t++) {
		mscope_an_opts_init(&o);
		o.threads = t + 1;
		o.percentile = 50;
		struct mscope_analysis *an = open_dir(dir, &o, rates);
		cr_assert_eq(mscope_an_diagnose(an, &err), 0, "%s", err.text);
		json_t *doc = mscope_an_json(an);
		out[t] = json_dumps(doc, JSON_COMPACT);
		json_decref(doc);
		mscope_an_close(an);
	}
	cr_assert_str_eq(out[0], out[1]);
	free(out[0]);
	free(out[1]);
	tu_rmdir(dir);
}

/* ---------------------------------------------------------------------
 * Source flows: a steady flow A (1 packet/us for 100 us) and a burst flow B
 * (10 packets in 90 ns) meet a stalled f. The victim (A's packet at +60 us)
 * has n_i = 21 (A 11, B 10) over |T| = 10 us at 1 Mpps: S_i = 11, all to the
 * source (no NF upstream). By packets: A 11/21, B 10/21 of it. By excess over
 * their own average rate during the 10 us span: A ~0.9, B ~9 packets, so B
 * gets ~90%. */
static void
build_flows(const char *dir)
{
	enum { NA = 100, NB = 10, N = NA + NB };
	struct pk p[N];
	int n = 0;

	for (int k = 0; k < NA; k++, n++) {
		int64_t a = T0 + 1000 * k;
		int stalled = a >= T0 + 50000 && a <= T0 + 60000;
		p[n] = (struct pk){ .src = a, .fd = stalled ? T0 + 60500 : a + 10,
			.ft = stalled ? T0 + 60600 : a + 20, .wire = 4000 + k, .flow = 0 };
	}
	for (int k = 0; k < NB; k++, n++)
		p[n] = (struct pk){ .src = T0 + 50000 + 10 * k, .fd = T0 + 60500, .ft = T0 + 60600,
			.wire = 5000 + k, .flow = 1 };
	uint32_t wire[N], flow[N];
	int64_t a[N], b[N];
	qsort(p, N, sizeof(p[0]), cmp_src);
	for (int i = 0; i < N; i++) {
		wire[i] = p[i].wire;
		flow[i] = p[i].flow;
		a[i] = p[i].src;
	}
	tu_source(dir, "source", N, wire, flow, a, 2);
	qsort(p, N, sizeof(p[0]), cmp_fd);
	for (int i = 0; i < N; i++) {
		wire[i] = p[i].wire;
		flow[i] = p[i].flow;
		a[i] = p[i].fd;
		b[i] = p[i].ft;
	}
	tu_node(dir, "f", N, wire, flow, a, b, NULL, 2);
}

Test(analyzer, source_flows_packets_and_excess)
{
	char *dir = tu_mkdir();
	struct mscope_an_opts o;
	struct mscope_an_error err;
	struct mscope_an_culprit *c;
	size_t n;
	const char *rates[] = { "f=1", NULL };

	build_flows(dir);
	for (int v = 0; v < 2; v++) {
		double sa = 0, sb = 0;
		mscope_an_opts_init(&o);
		o.src_flows = v ? MSCOPE_AN_FLOWS_EXCESS : MSCOPE_AN_FLOWS_PACKETS;
		struct mscope_analysis *an = open_dir(dir, &o, rates);
		int f = mscope_an_node_find(an, "f:p0q0");
		cr_assert_eq(mscope_an_explain(an, f, 4060, &c, &n, &err), 0, "%s", err.text);
		for (size_t i = 0; i < n; i++) {
			if (c[i].kind != MSCOPE_AN_SOURCE)
				continue;
			cr_assert(c[i].has_flow);
			if (c[i].flow.sport == 10001)
				sa += c[i].score;
			else
				sb += c[i].score;
		}
		cr_assert_float_eq(sa + sb, 11.0, EPS);
		if (v == 0) {
			cr_assert_float_eq(sa, 11.0 * 11 / 21, EPS);
			cr_assert_float_eq(sb, 11.0 * 10 / 21, EPS);
		} else {
			cr_assert_gt(sb / (sa + sb), 0.85, "burst flow share %g", sb / (sa + sb));
			cr_assert_lt(sb / (sa + sb), 0.95, "burst flow share %g", sb / (sa + sb));
		}
		free(c);
		mscope_an_close(an);
	}
	tu_rmdir(dir);
}

/* ---------------------------------------------------------------------
 * Processing culprit flows [ours]: a single-server NF polled in bursts of up
 * to 8, 0.5 us per packet; flows 0-5 go to TCP port 443, flows 6-7 to UDP
 * port 53. From 100 to 300 us a bug makes every UDP/53 packet take 10 us; at
 * 500 us, long after the bug's backlog drained, the NF stalls for 60 us (an
 * interrupt). A victim of the bug gets processing blame on UDP/53 flows; a
 * victim of the interrupt gets "*". */
static void
build_trigger(const char *dir)
{
	enum { N = 600, NF = 8 };
	static struct mscope_flow_key keys[NF];
	uint32_t wire[N], flow[N];
	int64_t src[N], deq[N], tx[N];
	int64_t busy = T0;
	int i = 0;

	for (int f = 0; f < NF; f++)
		tu_flowkey(&keys[f], (uint32_t)f + 1, f < 6 ? 443 : 53, f < 6 ? 6 : 17);
	for (int k = 0; k < N; k++) {
		wire[k] = 9000 + k;
		/* 7 flows round robin, flow 6/7 every 5th packet */
		flow[k] = (uint32_t)(k % 5 == 0 ? 6 + (k / 5) % 2 : k % 6);
		src[k] = T0 + 1000 * k / 1;     /* 1 Mpps */
	}
	/* the NF: poll when idle, take up to 8 arrived packets */
	while (i < N) {
		int64_t poll = busy > src[i] ? busy : src[i];
		int n = 0;
		int64_t svc = 0;

		if (poll >= T0 + 500000 && poll < T0 + 560000)
			poll = T0 + 560000;     /* interrupt */
		while (i + n < N && n < 8 && src[i + n] <= poll)
			n++;
		for (int k = 0; k < n; k++) {
			bool bug = flow[i + k] >= 6 && poll >= T0 + 100000 && poll < T0 + 300000;
			svc += bug ? 10000 : 500;
		}
		for (int k = 0; k < n; k++) {
			deq[i + k] = poll + 100;
			tx[i + k] = poll + 100 + svc;
		}
		busy = poll + 100 + svc;
		i += n;
	}
	tu_keys = keys;
	tu_source(dir, "source", N, wire, flow, src, NF);
	tu_node(dir, "f", N, wire, flow, deq, tx, NULL, NF);
	tu_keys = NULL;
}

Test(analyzer, processing_trigger_flows)
{
	char *dir = tu_mkdir();
	struct mscope_an_opts o;
	struct mscope_an_error err;
	struct mscope_an_culprit *c;
	size_t n;
	const char *rates[] = { "f=2", NULL };

	build_trigger(dir);
	mscope_an_opts_init(&o);
	struct mscope_analysis *an = open_dir(dir, &o, rates);
	int f = mscope_an_node_find(an, "f:p0q0");
	/* a packet arriving late in the bug window (t = 280 us) */
	cr_assert_eq(mscope_an_explain(an, f, 9280, &c, &n, &err), 0, "%s", err.text);
	double dns = 0, star = 0, other = 0;
	for (size_t k = 0; k < n; k++) {
		if (c[k].kind != MSCOPE_AN_PROCESSING || strcmp(c[k].nf, "f"))
			continue;
		if (!c[k].has_flow)
			star += c[k].score;
		else if (c[k].flow.dport == 53 && c[k].flow.proto == 17)
			dns += c[k].score;
		else
			other += c[k].score;
	}
	cr_assert_gt(dns, 0, "no processing blame on the UDP/53 flows");
	cr_assert_float_eq(other, 0, EPS, "processing blame on non-trigger flows: %g", other);
	cr_assert_gt(dns, 4 * star, "bug blame mostly on flows: dns %g, * %g", dns, star);
	free(c);
	/* a packet that arrived during the interrupt (t = 550 us) */
	cr_assert_eq(mscope_an_explain(an, f, 9550, &c, &n, &err), 0, "%s", err.text);
	star = 0;
	double flows = 0;
	for (size_t k = 0; k < n; k++) {
		if (c[k].kind != MSCOPE_AN_PROCESSING || strcmp(c[k].nf, "f"))
			continue;
		if (c[k].has_flow)
			flows += c[k].score;
		else
			star += c[k].score;
	}
	cr_assert_gt(star, 10, "the interrupt's processing blame should be '*': %g", star);
	cr_assert_float_eq(flows, 0, EPS, "interrupt blamed on flows: %g", flows);
	free(c);
	mscope_an_close(an);
	tu_rmdir(dir);
}

/* ---------------------------------------------------------------------
 * A trigger class in every burst: the same NF, but UDP/53 packets make up
 * 2 to 5 of every 8 (every 4th packet and some more), so under the bug's
 * backlog no full burst is without them and the neighbour comparison has
 * nothing to compare with. From 100 to 300 us each UDP/53 packet takes 4 us
 * (others 0.5 us). The slowness of the bursts grows with their UDP/53
 * fraction: the class is a trigger, and a late victim of the bug gets its
 * processing blame on UDP/53 flows; the interrupt at 500 us stays "*". */
static void
build_trigger_everywhere(const char *dir, int every, unsigned extra, int64_t dns_ns,
		int64_t gap_ns)
{
	enum { N = 600, NF = 8 };
	static struct mscope_flow_key keys[NF];
	uint32_t wire[N], flow[N];
	int64_t src[N], deq[N], tx[N];
	int64_t busy = T0;
	int i = 0;

	for (int f = 0; f < NF; f++)
		tu_flowkey(&keys[f], (uint32_t)f + 1, f < 6 ? 443 : 53, f < 6 ? 6 : 17);
	for (int k = 0; k < N; k++) {
		bool dns = k % every == 0 || (k * 7919u) % 13 < extra;
		wire[k] = 9000 + k;
		flow[k] = (uint32_t)(dns ? 6 + (k / 4) % 2 : k % 6);
		src[k] = T0 + gap_ns * k;
	}
	while (i < N) {
		int64_t poll = busy > src[i] ? busy : src[i];
		int n = 0;
		int64_t svc = 0;

		if (poll >= T0 + 500000 && poll < T0 + 560000)
			poll = T0 + 560000;     /* interrupt */
		while (i + n < N && n < 8 && src[i + n] <= poll)
			n++;
		for (int k = 0; k < n; k++) {
			bool bug = flow[i + k] >= 6 && poll >= T0 + 100000 && poll < T0 + 300000;
			svc += bug ? dns_ns : 500;
		}
		for (int k = 0; k < n; k++) {
			deq[i + k] = poll + 100;
			tx[i + k] = poll + 100 + svc;
		}
		busy = poll + 100 + svc;
		i += n;
	}
	tu_keys = keys;
	tu_source(dir, "source", N, wire, flow, src, NF);
	tu_node(dir, "f", N, wire, flow, deq, tx, NULL, NF);
	tu_keys = NULL;
}

Test(analyzer, processing_trigger_in_every_burst)
{
	char *dir = tu_mkdir();
	struct mscope_an_opts o;
	struct mscope_an_error err;
	struct mscope_an_culprit *c;
	size_t n;
	const char *rates[] = { "f=2", NULL };
	double dns = 0, star = 0, other = 0, flows = 0;

	build_trigger_everywhere(dir, 4, 3, 4000, 1000);
	mscope_an_opts_init(&o);
	struct mscope_analysis *an = open_dir(dir, &o, rates);
	int f = mscope_an_node_find(an, "f:p0q0");
	cr_assert_eq(mscope_an_explain(an, f, 9280, &c, &n, &err), 0, "%s", err.text);
	for (size_t k = 0; k < n; k++) {
		if (c[k].kind != MSCOPE_AN_PROCESSING || strcmp(c[k].nf, "f"))
			continue;
		if (!c[k].has_flow)
			star += c[k].score;
		else if (c[k].flow.dport == 53 && c[k].flow.proto == 17)
			dns += c[k].score;
		else
			other += c[k].score;
	}
	cr_assert_gt(dns, 0, "no processing blame on the UDP/53 flows (* %g)", star);
	cr_assert_float_eq(other, 0, EPS, "processing blame on non-trigger flows: %g", other);
	cr_assert_gt(dns, star, "bug blame mostly on flows: dns %g, * %g", dns, star);
	free(c);
	cr_assert_eq(mscope_an_explain(an, f, 9550, &c, &n, &err), 0, "%s", err.text);
	star = 0;
	for (size_t k = 0; k < n; k++) {
		if (c[k].kind != MSCOPE_AN_PROCESSING || strcmp(c[k].nf, "f"))
			continue;
		if (c[k].has_flow)
			flows += c[k].score;
		else
			star += c[k].score;
	}
	cr_assert_gt(star, 10, "the interrupt's processing blame should be '*': %g", star);
	cr_assert_float_eq(flows, 0, EPS, "interrupt blamed on flows: %g", flows);
	free(c);
	mscope_an_close(an);
	tu_rmdir(dir);
}

/* A milder bug in every burst, at heavy load (1.67 Mpps into 2 Mpps): every
 * 8th packet and a few more are UDP/53, taking 2 us (others 0.5 us) from 100
 * to 300 us. A burst of 8 with one UDP/53 packet takes 1.375x the usual (not
 * "slow"), with two 1.75x. The time beyond the usual of every burst with
 * trigger flows is theirs, not only that of the slow ones: a victim's
 * processing blame is mostly on UDP/53 (with slow bursts only: 37 vs 12 on
 * "*"). */
Test(analyzer, processing_trigger_mild)
{
	char *dir = tu_mkdir();
	struct mscope_an_opts o;
	struct mscope_an_error err;
	struct mscope_an_culprit *c;
	size_t n;
	const char *rates[] = { "f=2", NULL };
	double dns = 0, star = 0, other = 0;

	build_trigger_everywhere(dir, 8, 1, 2000, 600);
	mscope_an_opts_init(&o);
	struct mscope_analysis *an = open_dir(dir, &o, rates);
	int f = mscope_an_node_find(an, "f:p0q0");
	/* t = 174 us, in the bug window */
	cr_assert_eq(mscope_an_explain(an, f, 9290, &c, &n, &err), 0, "%s", err.text);
	for (size_t k = 0; k < n; k++) {
		if (c[k].kind != MSCOPE_AN_PROCESSING || strcmp(c[k].nf, "f"))
			continue;
		if (!c[k].has_flow)
			star += c[k].score;
		else if (c[k].flow.dport == 53 && c[k].flow.proto == 17)
			dns += c[k].score;
		else
			other += c[k].score;
	}
	cr_assert_float_eq(other, 0, EPS, "processing blame on non-trigger flows: %g", other);
	cr_assert_gt(dns, 4 * star, "bug blame mostly on flows: dns %g, * %g", dns, star);
	free(c);
	mscope_an_close(an);
	tu_rmdir(dir);
}

/* ---------------------------------------------------------------------
 * A short bug of a class that is in nearly every burst (method.md §3,
 * culprit flows; the eval's s117): 4 of every 5 packets are UDP/53 (flows 2
 * and 3, alternating), the 5th TCP/443 (flow 1), one every 1 us into an NF
 * of 2 Mpps (0.5 us per packet + 0.1 us to the dequeue, bursts of up to 8).
 * mode 0: bursts polled from 100 to 200 us take 5 us per UDP/53 packet
 * (10x); mode 1: the NF stalls from 100 to 200 us; mode 2: every packet
 * takes 3x then. Before the fault every burst is one packet, after it the
 * backlog drains in fast bursts of 8 full of UDP/53.
 * mode 0, by hand: bursts [101] 101.1-106.1 us, [102-106] 106.2-126.7,
 * [107-114] 126.8-162.3, [115-122] 162.4-193.4, [123-130] 193.5-224.5 (5
 * slow bursts: excess 9, 36, 63, 54, 54 usual packet times), then fast
 * bursts of 8 from 224.6; packet 150 arrives at 150 us and is dequeued at
 * 232.8 us. The run-long test finds no trigger (5 slow bursts < 6 for the
 * line; the fast UDP/53 bursts around them fail the neighbour test); the
 * fit over the period's bursts up to its last slow one gives UDP/53 9
 * usual packet times more per packet (10x), TCP/443 0, and explains all of
 * the excess (216 >= the period's shortfall, 209.6): packet 150's
 * processing blame, S_p + S_w = r x wait = 2/us x 82.8 us = 165.6 (S_i is
 * 0: 50 arrived over 49 us at 2 Mpps), all goes to the UDP/53 flows by
 * their packets in those bursts (12 and 12): 82.8 each, nothing to "*" or
 * TCP/443. The stall and the slow-down of every class name no flow (the
 * stall leaves no slow burst in the period; under the slow-down UDP/53
 * and TCP/443 both cost 2 more); mode 3, mode 0 with UDP/53 only (an NF
 * serving one class: a bug and a slow-down look the same), names none. */
static void
build_short_bug(const char *dir, int mode)
{
	enum { N = 400, NF = 4 };
	static struct mscope_flow_key keys[NF];
	uint32_t wire[N], flow[N];
	int64_t src[N], deq[N], tx[N];
	int64_t busy = T0;
	int i = 0;

	tu_flowkey(&keys[0], 1, 443, 6);
	tu_flowkey(&keys[1], 2, 53, 17);
	tu_flowkey(&keys[2], 3, 53, 17);
	tu_flowkey(&keys[3], 4, 123, 17);
	for (int k = 0; k < N; k++) {
		wire[k] = 7000 + k;
		flow[k] = k % 5 == 0 && mode != 3 ? 0 : 1 + k % 2;
		src[k] = T0 + 1000 * k;
	}
	if (mode == 4) {
		flow[104] = flow[114] = flow[124] = 3;
		for (int k = 133; k < 160; k += 6)
			flow[k] = 3;
	}
	while (i < N) {
		int64_t poll = busy > src[i] ? busy : src[i];
		int n = 0;
		int64_t svc = 0;
		bool in = poll >= T0 + 100000 && poll < T0 + 200000;

		if (mode == 1 && in)
			poll = T0 + 200000;     /* stall */
		while (i + n < N && n < 8 && src[i + n] <= poll)
			n++;
		for (int k = 0; k < n; k++) {
			if ((mode == 0 || mode == 3 || mode == 4) && in && flow[i + k] != 0 &&
					flow[i + k] != 3)
				svc += 5000;
			else if (mode == 2 && in)
				svc += 1500;
			else
				svc += 500;
		}
		for (int k = 0; k < n; k++) {
			deq[i + k] = poll + 100;
			tx[i + k] = poll + 100 + svc;
		}
		busy = poll + 100 + svc;
		i += n;
	}
	tu_keys = keys;
	tu_source(dir, "source", N, wire, flow, src, mode == 4 ? NF : NF - 1);
	tu_node(dir, "f", N, wire, flow, deq, tx, NULL, mode == 4 ? NF : NF - 1);
	tu_keys = NULL;
}

static double sb_rare;

static void
short_bug_blame(int mode, uint32_t wire, double *dns1, double *dns2, double *tcp, double *star)
{
	char *dir = tu_mkdir();
	struct mscope_an_opts o;
	struct mscope_an_error err;
	struct mscope_an_culprit *c;
	size_t n;
	const char *rates[] = { "f=2", NULL };

	build_short_bug(dir, mode);
	mscope_an_opts_init(&o);
	struct mscope_analysis *an = open_dir(dir, &o, rates);
	int f = mscope_an_node_find(an, "f:p0q0");
	cr_assert_eq(mscope_an_explain(an, f, wire, &c, &n, &err), 0, "%s", err.text);
	*dns1 = *dns2 = *tcp = *star = sb_rare = 0;
	for (size_t k = 0; k < n; k++) {
		if (c[k].kind != MSCOPE_AN_PROCESSING || strcmp(c[k].nf, "f"))
			continue;
		if (!c[k].has_flow)
			*star += c[k].score;
		else if (c[k].flow.dport == 443)
			*tcp += c[k].score;
		else if (c[k].flow.dport == 123)
			sb_rare += c[k].score;
		else if (c[k].flow.src[3] == 2)
			*dns1 += c[k].score;
		else
			*dns2 += c[k].score;
	}
	free(c);
	mscope_an_close(an);
	tu_rmdir(dir);
}

Test(analyzer, processing_trigger_in_period)
{
	double d1, d2, tcp, star;

	short_bug_blame(0, 7150, &d1, &d2, &tcp, &star);
	cr_assert_float_eq(d1, 82.8, 1e-6, "UDP/53 flow 2: %g", d1);
	cr_assert_float_eq(d2, 82.8, 1e-6, "UDP/53 flow 3: %g", d2);
	cr_assert_float_eq(tcp, 0, EPS, "TCP/443 blamed: %g", tcp);
	cr_assert_float_eq(star, 0, EPS, "\"*\" blamed: %g", star);
	short_bug_blame(1, 7150, &d1, &d2, &tcp, &star);
	cr_assert_gt(star, 1);
	cr_assert_float_eq(d1 + d2 + tcp, 0, EPS, "interrupt blamed on flows: %g", d1 + d2 + tcp);
	short_bug_blame(2, 7150, &d1, &d2, &tcp, &star);
	cr_assert_gt(star, 1);
	cr_assert_float_eq(d1 + d2 + tcp, 0, EPS, "slow-down blamed on flows: %g", d1 + d2 + tcp);
	short_bug_blame(3, 7150, &d1, &d2, &tcp, &star);
	cr_assert_gt(star, 1);
	cr_assert_float_eq(d1 + d2 + tcp, 0, EPS, "one class blamed: %g", d1 + d2 + tcp);
}

/* mode 4: the bug of mode 0, and a rare class beside it (the eval's s012 on
 * a seed-2 suite: a tcp/443 bug at 40% of a NAT's packets, udp/123 and
 * tcp/22 in a few of its slow bursts): UDP/123 (flow 4) is packets 104, 114,
 * 124 (in slow bursts, served at the usual speed) and 133, 139, ..., 157 (in
 * the fast bursts after them, so that the run-long test finds no trigger).
 * The period's 5 bursts up to its last slow one (189 usual packet times of
 * excess) give UDP/53 9 per packet (x = 9, u = 0: it alone explains it all);
 * TCP/443 (6 packets) fitted by itself, with UDP/53 pooled in its rest,
 * costs 2.5 > 9 / 4, which had vetoed UDP/53 ("*" took packet 150's 138.6);
 * fitted beside UDP/53 it, and UDP/123, cost 0. Packet 150's processing
 * blame, r x wait = 138.6, goes to the UDP/53 flows by their packets in
 * those bursts (9 and 12 packets: 59.4 and 79.2), nothing to "*", TCP/443
 * or UDP/123. */
Test(analyzer, processing_trigger_in_period_rare_class)
{
	double d1, d2, tcp, star;

	short_bug_blame(4, 7150, &d1, &d2, &tcp, &star);
	cr_assert_float_eq(d1, 59.4, 1e-6, "UDP/53 flow 2: %g", d1);
	cr_assert_float_eq(d2, 79.2, 1e-6, "UDP/53 flow 3: %g", d2);
	cr_assert_float_eq(tcp, 0, EPS, "TCP/443 blamed: %g", tcp);
	cr_assert_float_eq(sb_rare, 0, EPS, "UDP/123 blamed: %g", sb_rare);
	cr_assert_float_eq(star, 0, EPS, "\"*\" blamed: %g", star);
}
