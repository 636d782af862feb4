/* SPDX-License-Identifier: BSD-3-Clause */
/* Known-answer tests of how the analyzer ranks the aggregated rules
 * (analyzer/output.c): root causes (an NF's processing clusters are one
 * cause) and culprits appended for the victims they hurt. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "mscope_autofocus.h"
#include "an_internal.h"

#define EPS 1e-9

enum { NF_SOURCE = 0, NF_NAT1 = 1, NF_FW3 = 2, NNFS = 3 };

static void
flow(struct mscope_flow_key *k, uint8_t client, uint16_t dport, uint8_t proto)
{
	memset(k, 0, sizeof(*k));
	k->family = 4;
	k->proto = proto;
	k->sport = (uint16_t)(10000 + client);
	k->dport = dport;
	k->src[0] = 10;
	k->src[3] = client;
	k->dst[0] = 172;
	k->dst[3] = 1;
}

static struct an_cause_rule
rule(uint32_t nf, int kind, uint32_t cluster, double score)
{
	struct an_cause_rule r;

	memset(&r, 0, sizeof(r));
	r.r.culprit_nf = nf;
	r.r.kind = (uint8_t)kind;
	r.r.cluster = cluster;
	r.r.score = score;
	r.r.cluster_score = score;
	r.victim_share = NAN;
	return r;
}

/* Aggregated clusters (scores = residuals):
 *   0: source, one burst flow      10
 *   1: fw3 processing, flow X       6
 *   2: fw3 processing, flow Y       5   (one bug, two heavy trigger flows)
 *   3: nat1 processing, "*"         4
 *   4: source, another aggregate    3
 *   5: source, "*"                 50   (the traffic's burstiness as a whole)
 * fw3's processing is one cause of 6 + 5 = 11 > 10: its clusters come
 * first (in their own order), then the source burst, nat1, the other
 * source aggregate; the source's "*" after every named cause. */
Test(ranking, nf_processing_clusters_are_one_cause)
{
	struct an_cause_rule o[7] = {
		rule(NF_SOURCE, MSCOPE_AN_SOURCE, 0, 10),
		rule(NF_FW3, MSCOPE_AN_PROCESSING, 1, 6),
		rule(NF_FW3, MSCOPE_AN_PROCESSING, 2, 5),
		rule(NF_NAT1, MSCOPE_AN_PROCESSING, 3, 4),
		rule(NF_SOURCE, MSCOPE_AN_SOURCE, 4, 2),
		rule(NF_SOURCE, MSCOPE_AN_SOURCE, 4, 1),   /* a second rule of cluster 4 */
		rule(NF_SOURCE, MSCOPE_AN_SOURCE, 5, 50),
	};

	for (int i = 0; i < 7; i++)
		o[i].r.culprit_has_flow = i != 3 && i != 6;
	o[4].r.cluster_score = o[5].r.cluster_score = 3;
	cr_assert_eq(an_rank_causes(o, 7, NNFS), 0);
	cr_assert_eq(o[6].cluster, 5);
	cr_assert_float_eq(o[6].cause_score, 50, EPS);
	cr_assert_eq(o[1].cluster, 0);
	cr_assert_eq(o[2].cluster, 1);
	cr_assert_eq(o[0].cluster, 2);
	cr_assert_eq(o[3].cluster, 3);
	cr_assert_eq(o[4].cluster, 4);
	cr_assert_eq(o[5].cluster, 4);
	cr_assert_float_eq(o[1].cause_score, 11, EPS);
	cr_assert_float_eq(o[2].cause_score, 11, EPS);
	cr_assert_float_eq(o[0].cause_score, 10, EPS);
	cr_assert_float_eq(o[3].cause_score, 4, EPS);
	cr_assert_float_eq(o[4].cause_score, 3, EPS);

	/* fw3 with 6 + 3 = 9 < 10: the source burst stays first */
	o[2].r.score = o[2].r.cluster_score = 3;
	cr_assert_eq(an_rank_causes(o, 7, NNFS), 0);
	cr_assert_eq(o[0].cluster, 0);
	cr_assert_eq(o[1].cluster, 1);
	cr_assert_eq(o[2].cluster, 2);
	cr_assert_eq(o[6].cluster, 5);
	/* with a flow, the same 50 is a named cause: first */
	o[6].r.culprit_has_flow = 1;
	cr_assert_eq(an_rank_causes(o, 7, NNFS), 0);
	cr_assert_eq(o[6].cluster, 0);
	cr_assert_eq(o[0].cluster, 1);
	cr_assert_float_eq(o[1].cause_score, 9, EPS);
}

/* 20 victims of a source burst (score 100 each, all on the burst flow) and
 * 2 victims of a stall of nat1 (10 each, nothing else): 2020 of blame, nat1
 * has 20 (0.99%: no AutoFocus rule at 5%), but 2 of 22 victims' own blame
 * (9.1%, >= the 2.5% asked): appended after the source's cluster, with
 * victim_share 2/22 and score 2 x 20 / 2 = 20 (its blame). */
static size_t
stall_relations(struct mscope_af_relation *rel, uint32_t nburst, uint32_t nstall)
{
	size_t n = 0;

	for (uint32_t v = 0; v < nburst + nstall; v++) {
		struct mscope_af_relation *r = &rel[n++];

		memset(r, 0, sizeof(*r));
		r->victim_nf = NF_NAT1;
		flow(&r->victim_flow, (uint8_t)(v + 1), 80, 6);
		r->victim_key = v;
		r->t_ns = 1000 * v;
		if (v < nburst) {
			r->culprit_nf = NF_SOURCE;
			r->kind = MSCOPE_AN_SOURCE;
			r->culprit_has_flow = 1;
			flow(&r->culprit_flow, 200, 5060, 17);
			r->score = 100;
		} else {
			r->culprit_nf = NF_NAT1;
			r->kind = MSCOPE_AN_PROCESSING;
			r->score = 10;
		}
	}
	return n;
}

Test(ranking, victims_hurt_appended)
{
	struct mscope_af_relation rel[64];
	struct mscope_af_rule *rules = NULL;
	struct an_cause_rule *o, *extra = NULL;
	size_t n = stall_relations(rel, 20, 2), nrules = 0, ne;

	cr_assert_eq(mscope_af_aggregate(rel, n, NULL, &rules, &nrules), 0);
	cr_assert_eq(nrules, 1, "only the burst has a rule: %zu", nrules);
	cr_assert_eq(rules[0].culprit_nf, NF_SOURCE);
	o = calloc(nrules, sizeof(*o));
	o[0].r = rules[0];
	o[0].victim_share = NAN;
	cr_assert_eq(an_rank_causes(o, nrules, NNFS), 0);
	ne = an_victim_rules(rel, n, 22, NNFS, o, nrules, 0.025, &extra);
	/* one culprit cluster (its victims may form several victim rules) */
	cr_assert_geq(ne, 1);
	{
		double sum = 0;
		for (size_t j = 0; j < ne; j++) {
			cr_assert_eq(extra[j].r.culprit_nf, NF_NAT1);
			cr_assert_eq(extra[j].r.kind, MSCOPE_AN_PROCESSING);
			cr_assert_eq(extra[j].r.culprit_has_flow, 0);
			cr_assert_eq(extra[j].cluster, 1);
			cr_assert_float_eq(extra[j].victim_share, 2.0 / 22, EPS);
			cr_assert_float_eq(extra[j].r.cluster_score, 20, 1e-6);
			cr_assert_float_eq(extra[j].cause_score, 20, 1e-6);
			cr_assert_eq(extra[j].r.cluster_victims, 2);
			sum += extra[j].r.score;
		}
		cr_assert_float_eq(sum, 20, 1e-6);
	}
	free(extra);

	/* 1 stalled victim of 50 (2%): below the 2.5%, nothing appended */
	free(rules);
	n = stall_relations(rel, 49, 1);
	cr_assert_eq(mscope_af_aggregate(rel, n, NULL, &rules, &nrules), 0);
	cr_assert_eq(nrules, 1);
	o[0].r = rules[0];
	ne = an_victim_rules(rel, n, 50, NNFS, o, nrules, 0.025, &extra);
	cr_assert_eq(ne, 0);
	cr_assert_null(extra);

	/* a culprit that already has a rule is not appended again: at a 1%
	 * threshold nat1 (1 of 50 victims, 10 of 4910 blame) is one */
	{
		struct mscope_af_opts lo = { .threshold = 0.001 };
		free(rules);
		cr_assert_eq(mscope_af_aggregate(rel, n, &lo, &rules, &nrules), 0);
		cr_assert_eq(nrules, 2);
		free(o);
		o = calloc(nrules, sizeof(*o));
		for (size_t i = 0; i < nrules; i++)
			o[i].r = rules[i];
		cr_assert_eq(an_rank_causes(o, nrules, NNFS), 0);
		ne = an_victim_rules(rel, n, 50, NNFS, o, nrules, 0.01, &extra);
		cr_assert_eq(ne, 0);
	}
	free(rules);
	free(o);
}
