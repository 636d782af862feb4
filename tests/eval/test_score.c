/* SPDX-License-Identifier: BSD-3-Clause */
/* Scoring logic of mscope eval: flow-set parsing and containment, culprit
 * matching and the rank of the true culprit, on hand-made JSON. */
#include <criterion/criterion.h>
#include <jansson.h>

#include "eval.h"

static struct ev_flowset
fs(const char *text)
{
	struct ev_flowset s;

	cr_assert_eq(ev_flowset_parse(text, &s), 0, "cannot parse '%s'", text);
	return s;
}

static struct ev_flowset
fsj(const char *json)
{
	json_error_t je;
	json_t *o = json_loads(json, 0, &je);
	struct ev_flowset s;
	char err[128];

	cr_assert_not_null(o, "%s", je.text);
	cr_assert_eq(ev_flowset_from_json(o, &s, err, sizeof(err)), 0, "%s", err);
	json_decref(o);
	return s;
}

Test(flowset, parse_formats)
{
	struct ev_flowset s = fs("udp 10.1.2.3:1234 > 192.0.2.9:53");

	cr_assert_eq(s.proto, 17);
	cr_assert_eq(s.src, 0x0a010203u);
	cr_assert_eq(s.src_len, 32);
	cr_assert_eq(s.sport_lo, 1234);
	cr_assert_eq(s.sport_hi, 1234);
	cr_assert_eq(s.dport_lo, 53);
	s = fs("* 10.0.0.0/8:* > *:1024-2047");
	cr_assert_eq(s.proto, 0);
	cr_assert_eq(s.src_len, 8);
	cr_assert_eq(s.dst_len, 0);
	cr_assert_eq(s.dport_lo, 1024);
	cr_assert_eq(s.dport_hi, 2047);
	cr_assert(ev_flowset_is_any(&(struct ev_flowset){ 0, 0, 0, 0, 0, 65535, 0, 65535, 0 }));
	s = fs("*");
	cr_assert(ev_flowset_is_any(&s));
	s = fs("* *:* > *:*");
	cr_assert(ev_flowset_is_any(&s));
	s = fs("proto=tcp dport=80 src=10.2.0.0/16");
	cr_assert_eq(s.proto, 6);
	cr_assert_eq(s.dport_lo, 80);
	cr_assert_eq(s.src_len, 16);
	s = fs("udp 10.*:* > *:53");
	cr_assert_eq(s.src_len, 8);
	cr_assert_eq(s.src, 0x0a000000u);
	cr_assert_neq(ev_flowset_parse("udp 10.1.2.3:99999 > *:*", &s), 0);
	cr_assert_neq(ev_flowset_parse("garbage", &s), 0);
	cr_assert_neq(ev_flowset_parse("udp 300.1.1.1 > *", &s), 0);
}

Test(flowset, containment)
{
	struct ev_flowset truth = fsj("{\"src\":\"10.200.3.4\",\"dst\":\"192.0.2.7\","
		"\"sport\":40000,\"dport\":53,\"proto\":\"udp\"}");
	struct ev_flowset agg = fs("udp 10.200.0.0/16:* > *:53");
	struct ev_flowset other = fs("udp 10.201.0.0/16:* > *:53");
	struct ev_flowset tcp = fs("tcp 10.200.0.0/16:* > *:*");
	struct ev_flowset narrow = fs("udp 10.200.3.4:40000 > 192.0.2.7:53");
	struct ev_flowset ports = fs("* *:32768-65535 > *:*");
	struct ev_flowset bugrule = fsj("{\"proto\":\"udp\",\"dport\":53}");

	cr_assert(ev_flowset_contains(&agg, &truth));
	cr_assert(ev_flowset_contains(&narrow, &truth));
	cr_assert(ev_flowset_contains(&ports, &truth));
	cr_assert_not(ev_flowset_contains(&other, &truth));
	cr_assert_not(ev_flowset_contains(&tcp, &truth));
	cr_assert_not(ev_flowset_contains(&truth, &agg));
	/* a bug's rule: an aggregate must cover the whole rule */
	{
		struct ev_flowset a = fs("udp *:* > *:53"), b = fs("udp *:* > *:0-1023");
		struct ev_flowset c = fs("udp *:* > *:80");

		cr_assert(ev_flowset_contains(&a, &bugrule));
		cr_assert(ev_flowset_contains(&b, &bugrule));
		cr_assert_not(ev_flowset_contains(&c, &bugrule));
	}
	cr_assert_not(ev_flowset_contains(&narrow, &bugrule));
}

static json_t *
load(const char *s)
{
	json_error_t je;
	json_t *o = json_loads(s, 0, &je);

	cr_assert_not_null(o, "%s", je.text);
	return o;
}

/* The analysis lists the burst at rank 2 behind an unrelated NF, and the
 * all-wildcard source rule at rank 1 does not count as naming the flow. */
Test(rank, burst_and_wildcard)
{
	json_t *an = load("{\"culprits\":["
		"{\"rank\":1,\"nf\":\"source\",\"kind\":\"source\",\"flow\":\"*\",\"score\":50},"
		"{\"rank\":2,\"nf\":\"fw1\",\"kind\":\"processing\",\"flow\":\"*\",\"score\":20},"
		"{\"rank\":3,\"nf\":\"source\",\"kind\":\"source\",\"flow\":\"udp 10.200.0.0/16:* > *:*\",\"score\":10}]}");
	json_t *tr = load("{\"nf\":\"source\",\"kind\":\"source\",\"flow\":{\"src\":\"10.200.1.1\","
		"\"dst\":\"192.0.2.1\",\"sport\":5555,\"dport\":9000,\"proto\":\"udp\"}}");
	struct ev_culprit list[8], truth;
	char err[128];
	int n = ev_culprits_from_analysis(an, list, 8, err, sizeof(err));

	cr_assert_eq(n, 3, "%s", err);
	cr_assert_eq(ev_culprit_from_truth(tr, &truth, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(ev_rank(list, 3, &truth, NULL, 0, EV_MATCH_STRICT), 3);
	/* NF+kind only (baselines): the first source rule */
	cr_assert_eq(ev_rank(list, 3, &truth, NULL, 0, EV_MATCH_NF_KIND), 1);
	/* fw1 is another fault's culprit in the same window: not a mistake */
	{
		struct ev_culprit other = { .kind = EV_KIND_PROCESSING };

		strcpy(other.nf, "fw1");
		cr_assert_eq(ev_rank(list, 3, &truth, &other, 1, EV_MATCH_STRICT), 2);
	}
	json_decref(an);
	json_decref(tr);
}

/* Rules repeating a culprit for other victim clusters count once. */
Test(rank, repeated_culprit)
{
	json_t *an = load("{\"culprits\":["
		"{\"nf\":\"vpn1\",\"kind\":\"processing\",\"flow\":\"*\",\"victim_nf\":\"vpn1\"},"
		"{\"nf\":\"vpn1\",\"kind\":\"processing\",\"flow\":\"*\",\"victim_nf\":\"fw1\"},"
		"{\"nf\":\"source\",\"kind\":\"source\",\"flow\":\"udp 10.0.0.0/8:* > *:*\"},"
		"{\"nf\":\"source\",\"kind\":\"source\",\"flow\":\"udp 10.0.0.0/8:* > *:*\"},"
		"{\"nf\":\"source\",\"kind\":\"source\",\"flow\":\"udp 10.0.0.0/16:* > *:*\"},"
		"{\"nf\":\"nat1\",\"kind\":\"processing\",\"flow\":\"*\"}]}");
	struct ev_culprit list[8], t = { .kind = EV_KIND_PROCESSING };
	int n = ev_culprits_from_analysis(an, list, 8, NULL, 0);

	cr_assert_eq(n, 6);
	strcpy(t.nf, "nat1");
	/* vpn1, source udp 10/8, source udp 10.0/16, nat1 */
	cr_assert_eq(ev_rank(list, 6, &t, NULL, 0, EV_MATCH_STRICT), 4);
	/* NF and kind only: vpn1, source, nat1 */
	cr_assert_eq(ev_rank(list, 6, &t, NULL, 0, EV_MATCH_NF_KIND), 3);
	json_decref(an);
}

/* Rules that carry their culprit cluster's rank are ordered by it. */
Test(rank, cluster_order)
{
	json_t *an = load("{\"culprits\":["
		"{\"nf\":\"vpn1\",\"kind\":\"processing\",\"flow\":\"*\",\"cluster\":1},"
		"{\"nf\":\"nat1\",\"kind\":\"processing\",\"flow\":\"*\",\"cluster\":0},"
		"{\"nf\":\"nat1\",\"kind\":\"processing\",\"flow\":\"*\",\"cluster\":0}]}");
	struct ev_culprit list[8], t = { .kind = EV_KIND_PROCESSING };
	int n = ev_culprits_from_analysis(an, list, 8, NULL, 0);

	cr_assert_eq(n, 3);
	cr_assert_str_eq(list[0].nf, "nat1");
	cr_assert_str_eq(list[2].nf, "vpn1");
	strcpy(t.nf, "nat1");
	cr_assert_eq(ev_rank(list, 3, &t, NULL, 0, EV_MATCH_STRICT), 1);
	strcpy(t.nf, "vpn1");
	cr_assert_eq(ev_rank(list, 3, &t, NULL, 0, EV_MATCH_STRICT), 2);
	json_decref(an);
}

Test(rank, processing_kind_and_miss)
{
	json_t *an = load("{\"culprits\":["
		"{\"nf\":\"nat1\",\"kind\":\"source\",\"flow\":\"*\"},"
		"{\"nf\":\"nat1\",\"kind\":\"processing\",\"flow\":\"*\"},"
		"{\"nf\":\"vpn1\",\"kind\":\"processing\",\"flow\":{\"proto\":\"udp\",\"dport\":53}}]}");
	struct ev_culprit list[8], t = { .kind = EV_KIND_PROCESSING };
	int n = ev_culprits_from_analysis(an, list, 8, NULL, 0);

	cr_assert_eq(n, 3);
	/* the structured flow form is understood */
	cr_assert(list[2].has_flow);
	cr_assert_eq(list[2].flow.dport_lo, 53);
	strcpy(t.nf, "nat1");
	cr_assert_eq(ev_rank(list, 3, &t, NULL, 0, EV_MATCH_STRICT), 2);
	strcpy(t.nf, "fw2");
	cr_assert_eq(ev_rank(list, 3, &t, NULL, 0, EV_MATCH_STRICT), 0);
	/* a bug on vpn1 for udp/53: the culprit must name the flows */
	strcpy(t.nf, "vpn1");
	t.has_flow = 1;
	ev_flowset_from_json(json_object_get(json_array_get(json_object_get(an, "culprits"), 2),
		"flow"), &t.flow, NULL, 0);
	cr_assert_eq(ev_rank(list, 3, &t, NULL, 0, EV_MATCH_STRICT), 3);
	/* one flow that triggered the bug names it too; another port does not */
	cr_assert_eq(ev_flowset_parse("udp 198.51.100.2:4000 > 10.0.0.1:53", &list[2].flow), 0);
	cr_assert_eq(ev_rank(list, 3, &t, NULL, 0, EV_MATCH_STRICT), 3);
	cr_assert_eq(ev_flowset_parse("udp 198.51.100.2:4000 > 10.0.0.1:54", &list[2].flow), 0);
	cr_assert_eq(ev_rank(list, 3, &t, NULL, 0, EV_MATCH_STRICT), 0);
	list[2].has_flow = 0;
	ev_flowset_any(&list[2].flow);
	cr_assert_eq(ev_rank(list, 3, &t, NULL, 0, EV_MATCH_STRICT), 0);
	json_decref(an);
}

Test(rank, bad_input)
{
	json_t *an = load("{\"culprits\":[{\"nf\":\"x\",\"kind\":\"weird\"}]}");
	json_t *none = load("{\"nodes\":[]}");
	json_t *tr = load("{\"nf\":\"x\",\"kind\":\"processing\",\"flow\":{\"src\":\"nope\"}}");
	struct ev_culprit list[2];
	char err[128] = "";

	cr_assert_eq(ev_culprits_from_analysis(an, list, 2, err, sizeof(err)), -1);
	cr_assert(strstr(err, "culprits[0]"), "%s", err);
	cr_assert_eq(ev_culprits_from_analysis(none, list, 2, err, sizeof(err)), -1);
	cr_assert_eq(ev_culprit_from_truth(tr, list, err, sizeof(err)), -1);
	cr_assert(strstr(err, "flow.src"), "%s", err);
	json_decref(an);
	json_decref(none);
	json_decref(tr);
}
