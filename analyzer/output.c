/* SPDX-License-Identifier: BSD-3-Clause */
/* Output: the report document (JSON, schema in docs/analyzer.md), the
 * per-victim relations (JSON lines), and the aggregation of causal relations
 * into ranked culprits (AutoFocus; the exact grouping alongside). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mscope_autofocus.h"   /* first: an_internal.h declares its ranking helpers */
#include "an_internal.h"

static const char *
kind_name(uint8_t kind)
{
	return kind == MSCOPE_AN_SOURCE ? "source" : "processing";
}

static double
rel_us(const struct mscope_analysis *an, int64_t t)
{
	return an_us(an, t - an->t_start);
}

static int
cmp_cause(const void *x, const void *y)
{
	const double *a = x, *b = y;    /* (diffuse, cause_score, old cluster) */

	if (a[0] != b[0])
		return a[0] < b[0] ? -1 : 1;
	if (a[1] != b[1])
		return a[1] > b[1] ? -1 : 1;
	return a[2] < b[2] ? -1 : a[2] > b[2];
}

/* [ours] Root causes. A processing culprit is the NF: the flows named with
 * it are the trigger flows of one bug, and AutoFocus reports every heavy
 * flow as its own cluster, so a bug hit by several heavy flows would stand
 * as several small causes behind one source aggregate of less blame. All
 * processing clusters of one NF are ranked by their sum (`cause_score`);
 * a source cluster (traffic, where different flows are different causes)
 * by its own score. The source's "*" cluster (blame on the traffic that no
 * flow aggregate carries enough of to be named: the input's burstiness as
 * a whole, in pcap traffic the normal state) comes after every named cause.
 * `cluster` is renumbered in that order (ties: the aggregation's order). */
int
an_rank_causes(struct an_cause_rule *o, size_t n, uint32_t nnfs)
{
	uint32_t ncl = 0, *rank = NULL;
	double *proc = calloc(nnfs ? nnfs : 1, sizeof(*proc));
	double *key = NULL;
	int rc = -1;

	for (size_t i = 0; i < n; i++)
		if (o[i].r.cluster + 1 > ncl)
			ncl = o[i].r.cluster + 1;
	key = calloc(3 * (size_t)(ncl ? ncl : 1), sizeof(*key));
	rank = calloc(ncl ? ncl : 1, sizeof(*rank));
	if (proc == NULL || key == NULL || rank == NULL)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (o[i].r.kind == MSCOPE_AN_PROCESSING && o[i].r.culprit_nf < nnfs)
			proc[o[i].r.culprit_nf] += o[i].r.score;
	for (uint32_t c = 0; c < ncl; c++) {
		key[3 * c] = 2;         /* a cluster number without a rule sorts last */
		key[3 * c + 2] = c;
	}
	for (size_t i = 0; i < n; i++) {
		o[i].cause_score = o[i].r.kind == MSCOPE_AN_PROCESSING &&
			o[i].r.culprit_nf < nnfs ? proc[o[i].r.culprit_nf] : o[i].r.cluster_score;
		key[3 * o[i].r.cluster] = o[i].r.kind == MSCOPE_AN_SOURCE &&
			!o[i].r.culprit_has_flow;
		key[3 * o[i].r.cluster + 1] = o[i].cause_score;
	}
	qsort(key, ncl, 3 * sizeof(*key), cmp_cause);
	for (uint32_t c = 0; c < ncl; c++)
		rank[(uint32_t)key[3 * c + 2]] = c;
	for (size_t i = 0; i < n; i++)
		o[i].cluster = rank[o[i].r.cluster];
	rc = 0;
out:
	if (rc)
		for (size_t i = 0; i < n; i++) {
			o[i].cluster = o[i].r.cluster;
			o[i].cause_score = o[i].r.cluster_score;
		}
	free(proc);
	free(key);
	free(rank);
	return rc;
}

/* [ours] Culprits that hurt many victims a little: a stall of one NF during
 * a burst that queued a thousand packets elsewhere has a few percent of the
 * blame (below the AutoFocus threshold: no rule at all) yet is the main
 * cause for a hundred victims. A second aggregation weighs every victim
 * alike (each relation's score over its victim's total: the victims'
 * own blame); its clusters of a culprit (NF, kind) that has no rule yet
 * are appended after the others (threshold `thr` of that victim-weighted
 * blame), in its order; `victim_share` is their victim-weighted score over
 * the number of victims. Their `score` is blame, as for every rule: the
 * victim-weighted score scaled by the (NF, kind)'s blame over its
 * victim-weighted total. victim_key must be < nvictims. */
size_t
an_victim_rules(const struct mscope_af_relation *rel, size_t nrel, uint32_t nvictims,
		uint32_t nnfs, const struct an_cause_rule *o, size_t n, double thr,
		struct an_cause_rule **extra)
{
	struct mscope_af_relation *r2 = NULL;
	struct mscope_af_rule *rules = NULL;
	struct mscope_af_opts opt = { .threshold = thr };
	double *vt = calloc(nvictims ? nvictims : 1, sizeof(*vt));
	double *blame = NULL, *vblame = NULL, *key = NULL;
	size_t nrules = 0, ne = 0, nk = 2 * (size_t)(nnfs ? nnfs : 1);
	struct an_cause_rule *e = NULL;
	uint32_t base = 0, ncl = 0;

	*extra = NULL;
	blame = calloc(nk, sizeof(*blame));
	vblame = calloc(nk, sizeof(*vblame));
	r2 = malloc((nrel ? nrel : 1) * sizeof(*r2));
	if (vt == NULL || blame == NULL || vblame == NULL || r2 == NULL || nvictims == 0)
		goto out;
	for (size_t i = 0; i < nrel; i++)
		if (rel[i].victim_key < nvictims)
			vt[rel[i].victim_key] += rel[i].score;
	for (size_t i = 0; i < nrel; i++) {
		size_t k = 2 * (size_t)rel[i].culprit_nf + (rel[i].kind == MSCOPE_AN_SOURCE);
		double t = rel[i].victim_key < nvictims ? vt[rel[i].victim_key] : 0;

		r2[i] = rel[i];
		r2[i].score = t > 0 ? rel[i].score / t : 0;
		if (rel[i].culprit_nf < nnfs) {
			blame[k] += rel[i].score;
			vblame[k] += r2[i].score;
		}
	}
	if (mscope_af_aggregate(r2, nrel, &opt, &rules, &nrules) || nrules == 0)
		goto out;
	e = calloc(nrules, sizeof(*e));
	if (e == NULL)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (o[i].cluster + 1 > base)
			base = o[i].cluster + 1;
	for (size_t j = 0; j < nrules; j++) {
		const struct mscope_af_rule *u = &rules[j];
		size_t k = 2 * (size_t)u->culprit_nf + (u->kind == MSCOPE_AN_SOURCE);
		bool have = u->culprit_nf >= nnfs;

		for (size_t i = 0; i < n && !have; i++)
			have = o[i].r.culprit_nf == u->culprit_nf && o[i].r.kind == u->kind;
		if (have || !(vblame[k] > 0))
			continue;
		e[ne].r = *u;
		e[ne].victim_share = u->cluster_score / (double)nvictims;
		e[ne].r.score = u->score * blame[k] / vblame[k];
		e[ne].r.cluster_score = u->cluster_score * blame[k] / vblame[k];
		e[ne].cause_score = e[ne].r.cluster_score;
		if (u->cluster + 1 > ncl)
			ncl = u->cluster + 1;
		ne++;
	}
	/* the appended clusters keep their order (victim-weighted) */
	key = malloc((ncl ? ncl : 1) * sizeof(*key));
	if (key == NULL) {
		ne = 0;
		goto out;
	}
	for (uint32_t c = 0; c < ncl; c++)
		key[c] = -1;
	for (size_t j = 0; j < ne; j++)
		key[e[j].r.cluster] = 0;
	for (uint32_t c = 0, next = base; c < ncl; c++)
		if (key[c] == 0)
			key[c] = next++;
	for (size_t j = 0; j < ne; j++)
		e[j].cluster = (uint32_t)key[e[j].r.cluster];
out:
	if (ne == 0) {
		free(e);
		e = NULL;
	}
	*extra = e;
	free(key);
	free(rules);
	free(r2);
	free(vt);
	free(blame);
	free(vblame);
	return ne;
}

static json_t *
culprits_autofocus(struct mscope_analysis *an, double total)
{
	struct mscope_af_relation *rel;
	struct mscope_af_rule *rules = NULL;
	struct mscope_af_opts o = { .threshold = an->opts.af_threshold };
	struct an_cause_rule *out = NULL, *extra = NULL;
	size_t nrules = 0, nextra = 0;
	json_t *arr = json_array();

	rel = calloc(an->nrels ? an->nrels : 1, sizeof(*rel));
	if (rel == NULL)
		return arr;
	for (size_t i = 0; i < an->nrels; i++) {
		const struct an_rel *r = &an->rels[i];
		const struct an_victim *v = &an->victims[r->victim];
		rel[i].culprit_nf = r->culprit_nf;
		rel[i].kind = r->kind;
		rel[i].culprit_has_flow = r->has_flow;
		rel[i].culprit_flow = an->flows[r->flow];
		rel[i].victim_nf = r->victim_nf;
		rel[i].victim_flow = an->flows[r->victim_flow];
		rel[i].score = r->score;
		rel[i].victim_key = r->victim;
		rel[i].t_ns = (uint64_t)((double)(v->t_in - an->t_start) * 1e9 / an->hz);
	}
	if (mscope_af_aggregate(rel, an->nrels, &o, &rules, &nrules) == 0) {
		double thr = an->opts.af_threshold > 0 ? an->opts.af_threshold :
			MSCOPE_AF_DEFAULT_THRESHOLD;

		out = calloc(nrules ? nrules : 1, sizeof(*out));
		if (out == NULL)
			nrules = 0;
		for (size_t i = 0; i < nrules; i++) {
			out[i].r = rules[i];
			out[i].victim_share = NAN;
		}
		an_rank_causes(out, nrules, an->nnfs);
		nextra = an_victim_rules(rel, an->nrels, an->nvictims, an->nnfs, out, nrules,
			thr / 2, &extra);
		for (size_t i = 0; i < nrules + nextra; i++) {
			const struct an_cause_rule *w = i < nrules ? &out[i] : &extra[i - nrules];
			const struct mscope_af_rule *u = &w->r;
			char cf[160], vf[160];
			json_t *c = json_object();

			if (u->culprit_has_flow)
				mscope_af_prefix_format(&u->culprit, cf, sizeof(cf));
			else
				snprintf(cf, sizeof(cf), "*");
			mscope_af_prefix_format(&u->victim, vf, sizeof(vf));
			json_object_set_new(c, "rank", json_integer((json_int_t)i + 1));
			json_object_set_new(c, "nf", json_string(u->culprit_nf < an->nnfs ?
				an->nfs[u->culprit_nf] : "?"));
			json_object_set_new(c, "kind", json_string(kind_name(u->kind)));
			json_object_set_new(c, "flow", json_string(cf));
			json_object_set_new(c, "victim_nf", json_string(u->victim_nf < an->nnfs ?
				an->nfs[u->victim_nf] : "*"));
			json_object_set_new(c, "victim_flow", json_string(vf));
			json_object_set_new(c, "score", json_real(u->score));
			json_object_set_new(c, "share", json_real(total > 0 ? u->score / total : 0));
			json_object_set_new(c, "victims", json_integer((json_int_t)u->victims));
			json_object_set_new(c, "start_us", json_real((double)u->t_min_ns / 1e3));
			json_object_set_new(c, "end_us", json_real((double)u->t_max_ns / 1e3));
			/* the root cause this rule belongs to: rules of one culprit
			 * cluster (one per victim aggregate it hurt) share these */
			json_object_set_new(c, "cluster", json_integer((json_int_t)w->cluster + 1));
			json_object_set_new(c, "cluster_score", json_real(u->cluster_score));
			json_object_set_new(c, "cluster_victims",
				json_integer((json_int_t)u->cluster_victims));
			json_object_set_new(c, "cause_score", json_real(w->cause_score));
			if (!isnan(w->victim_share))
				json_object_set_new(c, "victim_share", json_real(w->victim_share));
			json_array_append_new(arr, c);
		}
		free(rules);
	}
	free(out);
	free(extra);
	free(rel);
	return arr;
}

/* Exact grouping by (culprit NF, kind, flow): the raw ranking. */
struct grp_rule {
	uint32_t nf, flow;
	uint8_t kind, has_flow;
	uint32_t victim_nf;     /* UINT32_MAX = several */
	double score;
	uint64_t victims;
	uint32_t last_victim;
	int64_t tmin, tmax;
};

static int
cmp_rel_key(const void *x, const void *y)
{
	const struct an_rel *a = *(const struct an_rel *const *)x, *b = *(const struct an_rel *const *)y;

	if (a->culprit_nf != b->culprit_nf)
		return a->culprit_nf < b->culprit_nf ? -1 : 1;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (a->has_flow != b->has_flow)
		return a->has_flow < b->has_flow ? -1 : 1;
	if (a->flow != b->flow)
		return a->flow < b->flow ? -1 : 1;
	return a->victim < b->victim ? -1 : a->victim > b->victim;
}

static int
cmp_rule(const void *x, const void *y)
{
	const struct grp_rule *a = x, *b = y;

	if (a->score != b->score)
		return a->score > b->score ? -1 : 1;
	if (a->nf != b->nf)
		return a->nf < b->nf ? -1 : 1;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	return a->flow < b->flow ? -1 : a->flow > b->flow;
}

static json_t *
culprits_exact(struct mscope_analysis *an, double total)
{
	const struct an_rel **p = malloc((an->nrels ? an->nrels : 1) * sizeof(*p));
	struct grp_rule *r = malloc((an->nrels ? an->nrels : 1) * sizeof(*r));
	size_t nr = 0;
	json_t *arr = json_array();

	if (p == NULL || r == NULL)
		goto out;
	for (size_t i = 0; i < an->nrels; i++)
		p[i] = &an->rels[i];
	qsort(p, an->nrels, sizeof(*p), cmp_rel_key);
	for (size_t i = 0; i < an->nrels; i++) {
		const struct an_rel *x = p[i];
		const struct an_victim *v = &an->victims[x->victim];
		struct grp_rule *g = nr ? &r[nr - 1] : NULL;

		if (g == NULL || g->nf != x->culprit_nf || g->kind != x->kind ||
				g->has_flow != x->has_flow || g->flow != x->flow) {
			g = &r[nr++];
			*g = (struct grp_rule){ .nf = x->culprit_nf, .flow = x->flow,
				.kind = x->kind, .has_flow = x->has_flow,
				.victim_nf = x->victim_nf, .last_victim = UINT32_MAX,
				.tmin = INT64_MAX, .tmax = INT64_MIN };
		}
		g->score += x->score;
		if (g->victim_nf != x->victim_nf)
			g->victim_nf = UINT32_MAX;
		if (g->last_victim != x->victim) {
			g->victims++;
			g->last_victim = x->victim;
		}
		if (v->t_in < g->tmin)
			g->tmin = v->t_in;
		if (v->t_in > g->tmax)
			g->tmax = v->t_in;
	}
	qsort(r, nr, sizeof(*r), cmp_rule);
	for (size_t i = 0; i < nr; i++) {
		char buf[160];
		json_t *c = json_object();

		json_object_set_new(c, "rank", json_integer((json_int_t)i + 1));
		json_object_set_new(c, "nf", json_string(an->nfs[r[i].nf]));
		json_object_set_new(c, "kind", json_string(kind_name(r[i].kind)));
		json_object_set_new(c, "flow", json_string(r[i].has_flow ?
			an_flow_text(an, r[i].flow, buf, sizeof(buf)) : "*"));
		json_object_set_new(c, "victim_nf", json_string(r[i].victim_nf == UINT32_MAX ?
			"*" : an->nfs[r[i].victim_nf]));
		json_object_set_new(c, "victim_flow", json_string("*"));
		json_object_set_new(c, "score", json_real(r[i].score));
		json_object_set_new(c, "share", json_real(total > 0 ? r[i].score / total : 0));
		json_object_set_new(c, "victims", json_integer((json_int_t)r[i].victims));
		json_object_set_new(c, "start_us", json_real(rel_us(an, r[i].tmin)));
		json_object_set_new(c, "end_us", json_real(rel_us(an, r[i].tmax)));
		json_array_append_new(arr, c);
	}
out:
	free(p);
	free(r);
	return arr;
}

json_t *
mscope_an_json(struct mscope_analysis *an)
{
	json_t *doc = json_object(), *sum = json_object(), *nodes = json_array();
	json_t *edges = json_array(), *periods = json_array(), *warn = json_array();
	double total = 0;
	uint64_t drops = 0;

	for (size_t i = 0; i < an->nrels; i++)
		total += an->rels[i].score;
	for (uint32_t v = 0; v < an->nvictims; v++)
		if (an->victims[v].dropped)
			drops++;
	json_object_set_new(doc, "version", json_integer(1));
	json_object_set_new(sum, "victims", json_integer(an->nvictims));
	json_object_set_new(sum, "drops", json_integer((json_int_t)drops));
	json_object_set_new(sum, "packets",
		json_integer((json_int_t)(an->delivered + an->dropped_pkts + an->nf_dropped +
			an->in_flight)));
	json_object_set_new(sum, "delivered", json_integer((json_int_t)an->delivered));
	json_object_set_new(sum, "dropped", json_integer((json_int_t)an->dropped_pkts));
	json_object_set_new(sum, "nf_dropped", json_integer((json_int_t)an->nf_dropped));
	json_object_set_new(sum, "start_us", json_real(0));
	json_object_set_new(sum, "start_realtime_ns",
		json_integer(an->nnodes ? (json_int_t)an_realtime(an, an->t_start) : 0));
	json_object_set_new(sum, "end_us", json_real(rel_us(an, an->t_end)));
	json_object_set_new(sum, "nodes", json_integer(an->nnodes));
	json_object_set_new(sum, "trace_losses", json_integer((json_int_t)an->trace_loss_packets));
	json_object_set_new(sum, "trace_loss_records",
		json_integer((json_int_t)an->trace_loss_records));
	json_object_set_new(sum, "trace_loss_unwritten",
		json_integer((json_int_t)an->sidecar_packets));
	json_object_set_new(sum, "deleted_segments", json_integer((json_int_t)an->del_segments));
	json_object_set_new(sum, "deleted_packets", json_integer((json_int_t)an->del_packets));
	json_object_set_new(sum, "traces_unfinished", json_integer(an->traces_unfinished));
	if (an->windowed) {
		json_object_set_new(sum, "region_start_us", json_real(rel_us(an, an->region_t0)));
		json_object_set_new(sum, "region_end_us", json_real(an->region_t1 >= INT64_MAX / 4 ?
			rel_us(an, an->t_end) : rel_us(an, an->region_t1)));
		json_object_set_new(sum, "frames_read", json_integer((json_int_t)an->frames_read));
		json_object_set_new(sum, "frames_total", json_integer((json_int_t)an->frames_total));
	}
	json_object_set_new(sum, "unresolved_ids",
		json_integer((json_int_t)(an->unresolved + an->conflicts)));
	json_object_set_new(sum, "arrivals", json_string(an->any_approx ? "approximated" : "source"));
	json_object_set_new(sum, "dag", json_string(an->opts.dag == MSCOPE_AN_DAG_PAPER ?
		"paper" : "ours"));
	json_object_set_new(sum, "latency_threshold_us", json_real(an_us(an, an->lat_threshold)));
	json_object_set_new(sum, "latency_threshold_from", json_string(an->thr_from));
	json_object_set_new(sum, "drops_are_victims", json_boolean(!an->opts.no_drops));
	json_object_set_new(sum, "total_score", json_real(total));
	for (size_t i = 0; i < an->nwarn; i++)
		json_array_append_new(warn, json_string(an->warn[i]));
	json_object_set_new(sum, "warnings", warn);
	json_object_set_new(doc, "summary", sum);

	for (uint32_t k = 0; k < an->nnodes; k++) {
		const struct an_node *nd = &an->nodes[k];
		json_t *n = json_object();

		json_object_set_new(n, "id", json_string(nd->id));
		json_object_set_new(n, "nf", json_string(nd->nf));
		json_object_set_new(n, "role", json_string(nd->is_source ? "source" : "rxq"));
		json_object_set_new(n, "port", json_integer(nd->hdr.port));
		json_object_set_new(n, "queue", json_integer(nd->hdr.queue));
		{
			char *f = an_escape(nd->file, NULL);
			json_object_set_new(n, "file", json_string(f ? f : "?"));
			free(f);
		}
		json_object_set_new(n, "peak_rate_mpps",
			json_real(nd->is_source ? 0 : nd->rate * an->hz / 1e6));
		json_object_set_new(n, "peak_rate_from",
			json_string(nd->is_source ? "none" : nd->rate_from));
		json_object_set_new(n, "packets", json_integer(nd->n));
		json_object_set_new(n, "victims", json_integer((json_int_t)nd->victims));
		json_object_set_new(n, "drops", json_integer((json_int_t)nd->drops));
		json_object_set_new(n, "nf_drops", json_integer((json_int_t)nd->nf_drops));
		json_object_set_new(n, "arrivals", json_string(nd->is_source ? "none" :
			nd->approximated ? "approximated" : "matched"));
		json_object_set_new(n, "wait_p50_us", json_real(an_us(an, nd->wait_p50)));
		json_object_set_new(n, "wait_p99_us", json_real(an_us(an, nd->wait_p99)));
		json_object_set_new(n, "qlen_p50", json_integer(nd->qlen_p50));
		json_object_set_new(n, "qlen_p99", json_integer(nd->qlen_p99));
		json_object_set_new(n, "qlen_max", json_integer(nd->qlen_max));
		json_object_set_new(n, "trace_losses", json_integer((json_int_t)nd->loss_packets));
		if (nd->is_source) {
			json_t *s = json_object();
			json_object_set_new(s, "t_us", json_array());
			json_object_set_new(s, "qlen", json_array());
			json_object_set_new(n, "series", s);
		} else if (nd->series) {
			json_object_set(n, "series", nd->series);
		} else {
			json_object_set_new(n, "series", an_series(an, nd, 2000));
		}
		json_array_append_new(nodes, n);
	}
	json_object_set_new(doc, "nodes", nodes);

	/* edges between NFs (summed over their queues) */
	for (uint32_t i = 0; i < an->nedges; i++) {
		const char *f = an->nodes[an->edges[i].from].nf, *t = an->nodes[an->edges[i].to].nf;
		size_t j;
		json_t *e;

		for (j = 0; j < json_array_size(edges); j++) {
			e = json_array_get(edges, j);
			if (!strcmp(json_string_value(json_object_get(e, "from")), f) &&
					!strcmp(json_string_value(json_object_get(e, "to")), t)) {
				json_object_set_new(e, "packets", json_integer(
					json_integer_value(json_object_get(e, "packets")) +
					(json_int_t)an->edges[i].packets));
				break;
			}
		}
		if (j < json_array_size(edges))
			continue;
		e = json_object();
		json_object_set_new(e, "from", json_string(f));
		json_object_set_new(e, "to", json_string(t));
		json_object_set_new(e, "packets", json_integer((json_int_t)an->edges[i].packets));
		json_array_append_new(edges, e);
	}
	json_object_set_new(doc, "edges", edges);

	json_object_set_new(doc, "culprits", culprits_autofocus(an, total));
	json_object_set_new(sum, "aggregation", json_string("autofocus"));
	/* always also the exact per-(NF, kind, flow) totals: the raw ranking */
	json_object_set_new(doc, "culprits_exact", culprits_exact(an, total));

	for (size_t i = 0; i < an->nperiods; i++) {
		const struct an_period *p = &an->periods[i];
		json_t *o = json_object();
		json_object_set_new(o, "node", json_string(an->nodes[p->node].id));
		json_object_set_new(o, "start_us", json_real(rel_us(an, p->t0)));
		json_object_set_new(o, "end_us", json_real(rel_us(an, p->t1)));
		json_object_set_new(o, "victims", json_integer(p->victims));
		json_array_append_new(periods, o);
	}
	json_object_set_new(doc, "periods", periods);
	return doc;
}

int
mscope_an_write_relations(const struct mscope_analysis *an, FILE *out)
{
	for (uint32_t i = 0; i < an->nvictims; i++) {
		const struct an_victim *v = &an->victims[i];
		json_t *o = json_object(), *qa = json_array(), *ca = json_array();
		char *s;

		json_object_set_new(o, "wire_id", json_integer(v->wire));
		json_object_set_new(o, "tsc", json_integer((json_int_t)v->tsc));
		json_object_set_new(o, "t_us", json_real(rel_us(an, v->t_in)));
		json_object_set_new(o, "dropped", json_boolean(v->dropped));
		json_object_set_new(o, "latency_us", json_real(an_us(an, v->latency)));
		for (uint32_t k = 0; k < v->nq; k++) {
			const struct an_queued_int *q = &an->queued[v->q0 + k];
			json_t *x = json_object();
			json_object_set_new(x, "node", json_string(an->nodes[q->node].id));
			json_object_set_new(x, "wait_us", json_real(an_us(an, q->wait)));
			json_object_set_new(x, "n_i", json_integer(q->n_i));
			json_object_set_new(x, "n_p", json_integer(q->n_p));
			json_object_set_new(x, "period_us", json_real(an_us(an, q->period)));
			json_object_set_new(x, "S_i", json_real(q->s_i));
			json_object_set_new(x, "S_p", json_real(q->s_p));
			json_object_set_new(x, "S_w", json_real(q->s_w));
			json_array_append_new(qa, x);
		}
		for (uint32_t k = 0; k < v->nc; k++) {
			const struct an_cul *c = &an->culs[v->c0 + k];
			char buf[160];
			json_t *x = json_object();
			json_object_set_new(x, "nf", json_string(an->nfs[c->nf]));
			json_object_set_new(x, "kind", json_string(kind_name(c->kind)));
			json_object_set_new(x, "flow", json_string(c->has_flow ?
				an_flow_text(an, c->flow, buf, sizeof(buf)) : "*"));
			json_object_set_new(x, "score", json_real(c->score));
			json_array_append_new(ca, x);
		}
		json_object_set_new(o, "queued_at", qa);
		json_object_set_new(o, "culprits", ca);
		s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
		json_decref(o);
		if (s == NULL)
			return -1;
		if (fputs(s, out) == EOF || fputc('\n', out) == EOF) {
			free(s);
			return -1;
		}
		free(s);
	}
	return ferror(out) ? -1 : 0;
}
