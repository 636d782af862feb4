/* SPDX-License-Identifier: BSD-3-Clause */
/* Known-answer and reference tests of the AutoFocus aggregation. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mscope_autofocus.h"

/* ------------------------------------------------------------ helpers */

static uint64_t rng_state;

static uint32_t
rnd(void)
{
	/* xorshift64*: fixed seeds, reproducible. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

static struct mscope_flow_key
flow_af(int af, uint8_t proto, const char *src, uint16_t sport, const char *dst,
	uint16_t dport)
{
	struct mscope_flow_key k;

	memset(&k, 0, sizeof(k));
	k.family = af == AF_INET ? 4 : 6;
	k.proto = proto;
	k.sport = sport;
	k.dport = dport;
	cr_assert(inet_pton(af, src, k.src) == 1, "bad test address %s", src);
	cr_assert(inet_pton(af, dst, k.dst) == 1, "bad test address %s", dst);
	return k;
}

static struct mscope_flow_key
flow4(uint8_t proto, const char *src, uint16_t sport, const char *dst, uint16_t dport)
{
	return flow_af(AF_INET, proto, src, sport, dst, dport);
}

static struct mscope_flow_key
flow6(uint8_t proto, const char *src, uint16_t sport, const char *dst, uint16_t dport)
{
	return flow_af(AF_INET6, proto, src, sport, dst, dport);
}

static void
set4(uint8_t *a, uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3)
{
	a[0] = b0;
	a[1] = b1;
	a[2] = b2;
	a[3] = b3;
}

/* A flow with random addresses outside 10.0.0.0/8 and random ports. */
static struct mscope_flow_key
random_flow(uint8_t proto)
{
	struct mscope_flow_key k;

	memset(&k, 0, sizeof(k));
	k.family = 4;
	k.proto = proto;
	set4(k.src, (uint8_t)(11 + rnd() % 200), (uint8_t)rnd(), (uint8_t)rnd(), (uint8_t)rnd());
	set4(k.dst, (uint8_t)(11 + rnd() % 200), (uint8_t)rnd(), (uint8_t)rnd(), (uint8_t)rnd());
	k.sport = (uint16_t)rnd();
	k.dport = (uint16_t)rnd();
	return k;
}

static struct mscope_af_relation
relation(uint32_t cnf, uint8_t kind, const struct mscope_flow_key *cf, uint32_t vnf,
		const struct mscope_flow_key *vf, double score, uint64_t vkey, uint64_t t)
{
	struct mscope_af_relation r;

	memset(&r, 0, sizeof(r));
	r.culprit_nf = cnf;
	r.kind = kind;
	r.culprit_has_flow = cf != NULL;
	if (cf)
		r.culprit_flow = *cf;
	r.victim_nf = vnf;
	r.victim_flow = *vf;
	r.score = score;
	r.victim_key = vkey;
	r.t_ns = t;
	return r;
}

static const char *
fmt(const struct mscope_af_prefix *p)
{
	static char buf[8][160];
	static int i;

	i = (i + 1) % 8;
	return mscope_af_prefix_format(p, buf[i], sizeof(buf[i]));
}

static void
aggregate(const struct mscope_af_relation *rel, size_t n, double thr,
		struct mscope_af_rule **rules, size_t *nrules)
{
	struct mscope_af_opts o = { .threshold = thr };

	cr_assert_eq(mscope_af_aggregate(rel, n, &o, rules, nrules), 0, "aggregate: %s",
			strerror(errno));
}

static void
dump(const struct mscope_af_rule *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "  %zu: nf%u k%u %s -> nf%d %s : %.6g (%.4f) v%llu\n", i,
				r[i].culprit_nf, r[i].kind, fmt(&r[i].culprit),
				(int)r[i].victim_nf, fmt(&r[i].victim), r[i].score, r[i].share,
				(unsigned long long)r[i].victims);
}

/* ------------------------------------------------------------ known answers */

Test(autofocus, empty_input)
{
	struct mscope_af_rule *rules = (void *)1;
	size_t n = 7;

	cr_assert_eq(mscope_af_aggregate(NULL, 0, NULL, &rules, &n), 0);
	cr_assert_null(rules);
	cr_assert_eq(n, 0);
}

Test(autofocus, zero_total_gives_no_rules)
{
	struct mscope_flow_key f = flow4(17, "10.1.2.3", 5000, "10.0.0.53", 53);
	struct mscope_af_relation r[3];
	struct mscope_af_rule *rules;
	size_t n;

	for (int i = 0; i < 3; i++)
		r[i] = relation(1, 0, &f, 2, &f, 0.0, (uint64_t)i, 10);
	aggregate(r, 3, 0, &rules, &n);
	cr_assert_eq(n, 0);
	cr_assert_null(rules);
}

/* One relation: one rule, the exact flows on both sides. */
Test(autofocus, single_relation)
{
	struct mscope_flow_key c = flow4(17, "10.1.2.3", 5000, "10.0.0.53", 53);
	struct mscope_flow_key v = flow6(6, "2001:db8::1", 443, "2001:db8::2", 50000);
	struct mscope_af_relation r = relation(9, 1, &c, 4, &v, 2.5, 77, 1234);
	struct mscope_af_rule *rules;
	size_t n;

	aggregate(&r, 1, 0, &rules, &n);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(fmt(&rules[0].culprit), "udp 10.1.2.3:5000 > 10.0.0.53:53");
	cr_assert_str_eq(fmt(&rules[0].victim), "tcp [2001:db8::1]:443 > [2001:db8::2]:50000");
	cr_assert_eq(rules[0].culprit_nf, 9);
	cr_assert_eq(rules[0].victim_nf, 4);
	cr_assert_eq(rules[0].kind, 1);
	cr_assert_float_eq(rules[0].score, 2.5, 0);
	cr_assert_float_eq(rules[0].share, 1.0, 0);
	cr_assert_eq(rules[0].victims, 1);
	cr_assert_eq(rules[0].t_min_ns, 1234);
	cr_assert_eq(rules[0].t_max_ns, 1234);
	free(rules);
}

/* Extreme NF ids and kinds are ordinary keys. */
Test(autofocus, extreme_keys)
{
	struct mscope_flow_key c = flow4(17, "10.1.2.3", 5000, "10.0.0.53", 53);
	struct mscope_af_relation r[4];
	struct mscope_af_rule *rules;
	size_t n;

	for (int i = 0; i < 4; i++)
		r[i] = relation(UINT32_MAX, 255, &c, UINT32_MAX - 1, &c, 1.0, (uint64_t)i, (uint64_t)i);
	aggregate(r, 4, 0, &rules, &n);
	cr_assert_eq(n, 1);
	cr_assert_eq(rules[0].culprit_nf, UINT32_MAX);
	cr_assert_eq(rules[0].kind, 255);
	cr_assert_eq(rules[0].victim_nf, UINT32_MAX - 1);
	cr_assert_eq(rules[0].relations, 4);
	cr_assert_float_eq(rules[0].share, 1.0, 0);
	free(rules);
}

/* Zero-score relations explain nothing and are in no rule; threshold 1 with
 * blame split over two culprit NFs leaves no cluster at 100%. */
Test(autofocus, zero_scores_and_split_blame)
{
	struct mscope_flow_key c = flow4(17, "10.1.2.3", 5000, "10.0.0.53", 53);
	struct mscope_flow_key d = flow4(6, "10.7.7.7", 1234, "10.8.8.8", 80);
	struct mscope_af_relation r[3] = {
		relation(1, 0, &c, 2, &c, 3.0, 1, 10),
		relation(1, 0, &d, 2, &d, 0.0, 2, 20),
		relation(5, 0, &c, 2, &c, 1.0, 3, 30),
	};
	struct mscope_af_rule *rules;
	size_t n;
	uint64_t rels = 0;

	aggregate(r, 3, 0.2, &rules, &n);
	dump(rules, n);
	for (size_t i = 0; i < n; i++)
		rels += rules[i].relations;
	cr_assert_eq(n, 2);
	cr_assert_eq(rels, 2, "the zero-score relation is in no rule");
	cr_assert_float_eq(rules[0].share, 0.75, 1e-12);
	cr_assert_float_eq(rules[1].share, 0.25, 1e-12);
	free(rules);
	aggregate(r, 3, 1.0, &rules, &n);
	cr_assert_eq(n, 0);
	cr_assert_null(rules);
}

Test(autofocus, bad_arguments)
{
	struct mscope_flow_key f = flow4(17, "10.1.2.3", 5000, "10.0.0.53", 53);
	struct mscope_af_relation r = relation(1, 0, &f, 2, &f, 1.0, 1, 10);
	struct mscope_af_opts o = { 0 };
	struct mscope_af_rule *rules;
	size_t n;
	const double bad_thr[] = { -0.1, 1.5, NAN };
	const uint8_t bad_steps[] = { 8, 8, 32 };

	errno = 0;
	cr_assert_eq(mscope_af_aggregate(&r, 1, NULL, NULL, &n), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(mscope_af_aggregate(NULL, 1, NULL, &rules, &n), -1);
	cr_assert_eq(errno, EINVAL);
	for (size_t i = 0; i < sizeof(bad_thr) / sizeof(bad_thr[0]); i++) {
		o.threshold = bad_thr[i];
		errno = 0;
		cr_assert_eq(mscope_af_aggregate(&r, 1, &o, &rules, &n), -1, "threshold %g", bad_thr[i]);
		cr_assert_eq(errno, EINVAL);
	}
	o.threshold = 0;
	o.victim_share = 1.5;
	cr_assert_eq(mscope_af_aggregate(&r, 1, &o, &rules, &n), -1);
	cr_assert_eq(errno, EINVAL);
	o.victim_share = -0.5;
	cr_assert_eq(mscope_af_aggregate(&r, 1, &o, &rules, &n), -1);
	o.victim_share = 0;
	o.v4_steps = bad_steps;
	o.n_v4_steps = 3;
	cr_assert_eq(mscope_af_aggregate(&r, 1, &o, &rules, &n), -1);
	cr_assert_eq(errno, EINVAL);
	r.score = -1;
	cr_assert_eq(mscope_af_aggregate(&r, 1, NULL, &rules, &n), -1);
	cr_assert_eq(errno, EINVAL);
	r.score = NAN;
	cr_assert_eq(mscope_af_aggregate(&r, 1, NULL, &rules, &n), -1);
	r.score = INFINITY;
	cr_assert_eq(mscope_af_aggregate(&r, 1, NULL, &rules, &n), -1);
	r.score = 1;
	r.victim_nf = MSCOPE_AF_ANY_NF;
	cr_assert_eq(mscope_af_aggregate(&r, 1, NULL, &rules, &n), -1);
	cr_assert_eq(errno, EINVAL);
}

/* All blame from 10.1.2.0/24 (200 hosts, ephemeral ports, many servers) to
 * port 53: one rule, that aggregate, on both sides. */
Test(autofocus, subnet_to_dns_gives_one_rule)
{
	enum { N = 4000 };
	struct mscope_af_relation *r = calloc(N, sizeof(*r));
	struct mscope_af_rule *rules;
	size_t n;

	rng_state = 42;
	for (int i = 0; i < N; i++) {
		struct mscope_flow_key f;
		memset(&f, 0, sizeof(f));
		f.family = 4;
		f.proto = 17;
		set4(f.src, 10, 1, 2, (uint8_t)(1 + rnd() % 200));
		set4(f.dst, (uint8_t)(11 + rnd() % 200), (uint8_t)rnd(), (uint8_t)rnd(), (uint8_t)rnd());
		f.sport = (uint16_t)(49152 + rnd() % 16384);
		f.dport = 53;
		r[i] = relation(3, 1, &f, 5, &f, 0.5 + (rnd() % 100) / 100.0, (uint64_t)i / 2,
				1000 + (uint64_t)i);
	}
	aggregate(r, N, 0, &rules, &n);
	dump(rules, n);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(fmt(&rules[0].culprit), "udp 10.1.2.0/24:49152-65535 > *:53");
	cr_assert_str_eq(fmt(&rules[0].victim), "udp 10.1.2.0/24:49152-65535 > *:53");
	cr_assert_eq(rules[0].culprit_nf, 3);
	cr_assert_eq(rules[0].kind, 1);
	cr_assert_eq(rules[0].culprit_has_flow, 1);
	cr_assert_eq(rules[0].victim_nf, 5);
	cr_assert_float_eq(rules[0].share, 1.0, 1e-12);
	cr_assert_eq(rules[0].victims, N / 2);
	cr_assert_eq(rules[0].relations, N);
	cr_assert_eq(rules[0].t_min_ns, 1000);
	cr_assert_eq(rules[0].t_max_ns, 1000 + N - 1);
	cr_assert_eq(rules[0].culprit.family, 4);
	cr_assert_eq(rules[0].culprit.src_len, 24);
	cr_assert_eq(rules[0].culprit.dst_len, 0);
	cr_assert_eq(rules[0].culprit.proto, 17);
	cr_assert_eq(rules[0].culprit.dport_lo, 53);
	cr_assert_eq(rules[0].culprit.dport_hi, 53);
	free(rules);
	free(r);
}

/* Two hot hosts in 10.5.0.0/16 and a little noise: two host rules, no /16. */
Test(autofocus, two_hot_hosts_not_their_16)
{
	enum { N = 3000 };
	struct mscope_af_relation *r = calloc(N, sizeof(*r));
	struct mscope_af_rule *rules;
	size_t n;
	int seen_a = 0, seen_b = 0;

	rng_state = 7;
	for (int i = 0; i < N; i++) {
		struct mscope_flow_key f = random_flow(6);
		int c = i % 100;
		if (c < 45) {
			set4(f.src, 10, 5, 1, 1);
			f.dport = 80;
		} else if (c < 90) {
			set4(f.src, 10, 5, 200, 7);
			f.dport = 443;
		} else if (c < 94) {
			/* 4% spread over the rest of the /16: below the threshold. */
			set4(f.src, 10, 5, (uint8_t)(2 + rnd() % 190), (uint8_t)rnd());
		}
		f.sport = (uint16_t)(49152 + rnd() % 16384);
		r[i] = relation(1, 0, &f, 2, &f, 1.0, (uint64_t)i, (uint64_t)i);
	}
	aggregate(r, N, 0.05, &rules, &n);
	dump(rules, n);
	for (size_t i = 0; i < n; i++) {
		const struct mscope_af_prefix *p = &rules[i].culprit;
		cr_assert(p->src_len != 16, "a /16 rule: %s", fmt(p));
		if (p->src_len == 32 && !memcmp(p->src, "\x0a\x05\x01\x01", 4)) {
			seen_a++;
			cr_assert_str_eq(fmt(p), "tcp 10.5.1.1:49152-65535 > *:80");
			cr_assert_float_eq(rules[i].share, 0.45, 1e-12);
		}
		if (p->src_len == 32 && !memcmp(p->src, "\x0a\x05\xc8\x07", 4)) {
			seen_b++;
			cr_assert_str_eq(fmt(p), "tcp 10.5.200.7:49152-65535 > *:443");
			cr_assert_float_eq(rules[i].share, 0.45, 1e-12);
		}
	}
	cr_assert_eq(seen_a, 1);
	cr_assert_eq(seen_b, 1);
	cr_assert_eq(rules[0].victims, 1350);
	free(rules);
	free(r);
}

/* 30 from one host of 10.1.2.0/24, 20 from its other hosts, 50 elsewhere:
 * the host gets 30 and the /24 exactly its residual 20, not 50. */
Test(autofocus, parent_residual_is_compressed)
{
	enum { N = 1000 };
	struct mscope_af_relation *r = calloc(N, sizeof(*r));
	struct mscope_af_rule *rules;
	size_t n;
	int host = 0, subnet = 0;
	double sum = 0;

	rng_state = 99;
	for (int i = 0; i < N; i++) {
		struct mscope_flow_key f = random_flow(6);
		int c = i % 10;
		if (c < 5) {
			f.proto = 17;
			set4(f.src, 10, 1, 2, c < 3 ? 5 : (uint8_t)(6 + rnd() % 200));
			set4(f.dst, 10, 0, 0, 53);
			f.sport = (uint16_t)(49152 + rnd() % 16384);
			f.dport = 53;
		}
		r[i] = relation(1, 1, &f, 2, &f, 0.1, (uint64_t)i, (uint64_t)i);
	}
	aggregate(r, N, 0, &rules, &n);
	dump(rules, n);
	for (size_t i = 0; i < n; i++) {
		const char *s = fmt(&rules[i].culprit);
		sum += rules[i].score;
		if (!strcmp(s, "udp 10.1.2.5:49152-65535 > 10.0.0.53:53")) {
			host++;
			cr_assert_float_eq(rules[i].score, 30.0, 1e-9);
			cr_assert_float_eq(rules[i].share, 0.30, 1e-12);
			cr_assert_eq(rules[i].victims, 300);
			cr_assert_float_eq(rules[i].cluster_score, 30.0, 1e-9);
		} else if (!strcmp(s, "udp 10.1.2.0/24:49152-65535 > 10.0.0.53:53")) {
			subnet++;
			cr_assert_float_eq(rules[i].score, 20.0, 1e-9);
			cr_assert_float_eq(rules[i].share, 0.20, 1e-12);
			cr_assert_eq(rules[i].victims, 200);
			cr_assert_eq(rules[i].relations, 200);
		} else {
			cr_assert(rules[i].culprit.family == 0 || rules[i].culprit.src_len < 8 ||
					rules[i].culprit.src[0] != 10, "unexpected rule %s", s);
		}
	}
	cr_assert_eq(host, 1);
	cr_assert_eq(subnet, 1);
	cr_assert(sum <= 100.0 + 1e-9);
	free(rules);
	free(r);
}

Test(autofocus, ipv6_prefixes)
{
	enum { N = 2000 };
	struct mscope_af_relation *r = calloc(N, sizeof(*r));
	struct mscope_af_rule *rules;
	size_t n;
	int found = 0;

	rng_state = 1234;
	for (int i = 0; i < N; i++) {
		char src[64];
		struct mscope_flow_key f;
		/* Many /64s inside 2001:db8:1::/48, many hosts: the /48 is the rule. */
		snprintf(src, sizeof(src), "2001:db8:1:%x::%x:%x", rnd() % 60000 + 1,
				rnd() % 65535 + 1, rnd() % 65535 + 1);
		f = flow6(6, src, (uint16_t)(49152 + rnd() % 16384), "2001:db8:ffff::443", 443);
		r[i] = relation(4, 0, &f, 4, &f, 2.0, (uint64_t)i, (uint64_t)i);
	}
	aggregate(r, N, 0, &rules, &n);
	dump(rules, n);
	cr_assert_eq(n, 1);
	cr_assert_eq(rules[0].culprit.family, 6);
	cr_assert_eq(rules[0].culprit.src_len, 48);
	cr_assert_eq(rules[0].culprit.dst_len, 128);
	cr_assert_str_eq(fmt(&rules[0].culprit),
			"tcp [2001:db8:1::/48]:49152-65535 > [2001:db8:ffff::443]:443");
	for (int i = 0; i < N; i++) {
		found += mscope_af_prefix_contains(&rules[0].culprit, &r[i].culprit_flow);
		cr_assert(mscope_af_prefix_contains(&rules[0].victim, &r[i].victim_flow));
	}
	cr_assert_eq(found, N);
	free(rules);
	free(r);
}

/* Flowless blame (an NF interrupt) goes to "*"; mixed with flows of one host. */
Test(autofocus, wildcard_relations)
{
	enum { N = 1000 };
	struct mscope_af_relation *r = calloc(N, sizeof(*r));
	struct mscope_af_rule *rules;
	size_t n;
	int star = 0, hostr = 0;
	struct mscope_flow_key v = flow4(17, "10.2.0.1", 1111, "10.3.0.1", 2222);
	struct mscope_flow_key c = flow4(6, "192.0.2.9", 40000, "198.51.100.1", 8080);

	for (int i = 0; i < N; i++) {
		if (i % 10 < 6) {
			r[i] = relation(7, 0, NULL, 7, &v, 1.0, (uint64_t)i, (uint64_t)i);
		} else if (i % 10 < 9) {
			r[i] = relation(7, 0, &c, 7, &v, 1.0, (uint64_t)i, (uint64_t)i);
		} else {
			/* A non-IP culprit flow also lands in "*". */
			struct mscope_flow_key x;
			memset(&x, 0, sizeof(x));
			x.sport = 99;
			r[i] = relation(7, 0, &x, 7, &v, 1.0, (uint64_t)i, (uint64_t)i);
		}
	}
	aggregate(r, N, 0, &rules, &n);
	dump(rules, n);
	for (size_t i = 0; i < n; i++) {
		cr_assert_str_eq(fmt(&rules[i].victim), "udp 10.2.0.1:1111 > 10.3.0.1:2222");
		if (mscope_af_prefix_is_any(&rules[i].culprit)) {
			star++;
			cr_assert_eq(rules[i].culprit_has_flow, 0);
			cr_assert_str_eq(fmt(&rules[i].culprit), "*");
			cr_assert_float_eq(rules[i].score, 700.0, 1e-9);
			cr_assert_eq(rules[i].victim_nf, 7);
		} else {
			hostr++;
			cr_assert_eq(rules[i].culprit_has_flow, 1);
			cr_assert_str_eq(fmt(&rules[i].culprit),
					"tcp 192.0.2.9:40000 > 198.51.100.1:8080");
			cr_assert_float_eq(rules[i].score, 300.0, 1e-9);
		}
	}
	cr_assert_eq(star, 1);
	cr_assert_eq(hostr, 1);
	cr_assert_float_eq(rules[0].score, 700.0, 1e-9, "sorted by score");
	free(rules);
	free(r);
}

/* Victims at one NF and a few elsewhere: the victim NF is exact in the main
 * rule, and the all-wildcard victim rule takes what no victim cluster
 * explains even below the threshold, so the culprit cluster's rules add up. */
Test(autofocus, victim_side_and_forced_root)
{
	enum { N = 1000 };
	struct mscope_af_relation *r = calloc(N, sizeof(*r));
	struct mscope_af_rule *rules;
	size_t n;
	double sum = 0;
	int exact = 0, any = 0;
	struct mscope_flow_key c = flow4(17, "10.9.9.9", 50000, "10.0.0.1", 4789);

	rng_state = 77;
	for (int i = 0; i < N; i++) {
		struct mscope_flow_key v;
		if (i % 25) {
			v = flow4(6, "10.2.0.0", (uint16_t)(49152 + rnd() % 1000), "10.3.0.1", 80);
			v.src[3] = (uint8_t)rnd();
			r[i] = relation(1, 0, &c, 2, &v, 1.0, (uint64_t)i, (uint64_t)i);
		} else {
			/* 4%: non-IP victims at 40 different NFs. */
			memset(&v, 0, sizeof(v));
			r[i] = relation(1, 0, &c, (uint32_t)(10 + i % 40), &v, 1.0, (uint64_t)i,
					(uint64_t)i);
		}
	}
	aggregate(r, N, 0.1, &rules, &n);
	dump(rules, n);
	cr_assert_eq(n, 2);
	for (size_t i = 0; i < n; i++) {
		sum += rules[i].score;
		cr_assert_str_eq(fmt(&rules[i].culprit), "udp 10.9.9.9:50000 > 10.0.0.1:4789");
		if (rules[i].victim_nf == 2) {
			exact++;
			cr_assert_str_eq(fmt(&rules[i].victim), "tcp 10.2.0.0/24:49152-65535 > 10.3.0.1:80");
			cr_assert_float_eq(rules[i].score, 960.0, 1e-9);
		}
		if (rules[i].victim_nf == MSCOPE_AF_ANY_NF) {
			any++;
			cr_assert(mscope_af_prefix_is_any(&rules[i].victim));
			cr_assert_float_eq(rules[i].score, 40.0, 1e-9);
			cr_assert_eq(rules[i].victims, 40);
		}
	}
	cr_assert_eq(exact, 1);
	cr_assert_eq(any, 1);
	cr_assert_float_eq(sum, 1000.0, 1e-9, "victim rules add up to the culprit cluster");
	cr_assert_eq(rules[0].cluster, 0);
	cr_assert_eq(rules[1].cluster, 0);
	cr_assert_float_eq(rules[0].cluster_score, 1000.0, 1e-9);
	cr_assert_float_eq(rules[1].cluster_score, 1000.0, 1e-9);
	cr_assert_eq(rules[0].cluster_victims, 1000);
	free(rules);
	free(r);
}

/* A cluster at exactly the threshold is reported; just below is not. */
Test(autofocus, threshold_edges)
{
	enum { N = 100 };
	struct mscope_af_relation r[N];
	struct mscope_af_rule *rules;
	size_t n;
	struct mscope_flow_key hot = flow4(6, "10.7.7.7", 1234, "10.8.8.8", 80);
	int found;

	rng_state = 3;
	for (int i = 0; i < N; i++) {
		struct mscope_flow_key f = random_flow(17);
		r[i] = relation(1, 0, i < 5 ? &hot : &f, 2, i < 5 ? &hot : &f, 1.0,
				(uint64_t)i, (uint64_t)i);
	}
	/* 5 of 100 = exactly the default 5%. */
	aggregate(r, N, 0, &rules, &n);
	found = 0;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(fmt(&rules[i].culprit), "tcp 10.7.7.7:1234 > 10.8.8.8:80")) {
			found++;
			cr_assert_float_eq(rules[i].share, 0.05, 1e-12);
		}
	cr_assert_eq(found, 1, "cluster at exactly the threshold");
	free(rules);

	r[4].score = 0.999;
	aggregate(r, N, 0.05, &rules, &n);
	dump(rules, n);
	for (size_t i = 0; i < n; i++)
		cr_assert_str_neq(fmt(&rules[i].culprit), "tcp 10.7.7.7:1234 > 10.8.8.8:80");
	free(rules);

	/* Threshold 1: a single rule, the most specific aggregate of everything. */
	r[4].score = 1.0;
	aggregate(r, N, 1.0, &rules, &n);
	dump(rules, n);
	cr_assert_eq(n, 1);
	cr_assert_float_eq(rules[0].share, 1.0, 1e-12);
	cr_assert_eq(rules[0].culprit.family, 4);
	cr_assert_eq(rules[0].culprit.src_len, 0);
	cr_assert_eq(rules[0].culprit.proto, -1);
	cr_assert_eq(rules[0].victim_nf, 2);
	cr_assert_eq(rules[0].victims, N);
	free(rules);
}

/* With bit-granular steps a hot /20 is found as a /20 (default steps can only
 * say /16); its /21 halves are below the threshold. */
Test(autofocus, bit_granular_steps)
{
	enum { N = 1000 };
	struct mscope_af_relation *r = calloc(N, sizeof(*r));
	uint8_t steps[32];
	struct mscope_af_opts o = { .threshold = 0.2, .v4_steps = steps, .n_v4_steps = 32 };
	struct mscope_af_rule *rules;
	size_t n;
	int found = 0;

	for (int i = 0; i < 32; i++)
		steps[i] = (uint8_t)(i + 1);
	rng_state = 11;
	for (int i = 0; i < N; i++) {
		struct mscope_flow_key f;
		if (i % 10 < 3) {
			/* 30% from the hosts of 172.16.32.0/20. */
			f = flow4(17, "172.16.32.0", 5353, "224.0.0.251", 5353);
			set4(f.src, 172, 16, (uint8_t)(32 + rnd() % 16), (uint8_t)rnd());
		} else {
			f = random_flow(6);
		}
		r[i] = relation(1, 0, &f, 2, &f, 1.0, (uint64_t)i, (uint64_t)i);
	}
	cr_assert_eq(mscope_af_aggregate(r, N, &o, &rules, &n), 0);
	dump(rules, n);
	for (size_t i = 0; i < n; i++) {
		if (rules[i].culprit.proto != 17)
			continue;
		found++;
		cr_assert_str_eq(fmt(&rules[i].culprit), "udp 172.16.32.0/20:5353 > 224.0.0.251:5353");
		cr_assert_float_eq(rules[i].share, 0.3, 1e-12);
	}
	cr_assert_eq(found, 1);
	free(rules);
	o.v4_steps = NULL;
	cr_assert_eq(mscope_af_aggregate(r, N, &o, &rules, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (rules[i].culprit.proto == 17)
			cr_assert_str_eq(fmt(&rules[i].culprit), "udp 172.16.0.0/16:5353 > 224.0.0.251:5353");
	free(rules);
	free(r);
}

static void
rules_eq(const struct mscope_af_rule *a, size_t na, const struct mscope_af_rule *b, size_t nb,
		double tol)
{
	cr_assert_eq(na, nb, "rule counts %zu vs %zu", na, nb);
	for (size_t i = 0; i < na; i++) {
		cr_assert_eq(a[i].culprit_nf, b[i].culprit_nf, "rule %zu", i);
		cr_assert_eq(a[i].kind, b[i].kind, "rule %zu", i);
		cr_assert_eq(a[i].culprit_has_flow, b[i].culprit_has_flow, "rule %zu", i);
		cr_assert_str_eq(fmt(&a[i].culprit), fmt(&b[i].culprit), "rule %zu", i);
		cr_assert_eq(a[i].victim_nf, b[i].victim_nf, "rule %zu", i);
		cr_assert_str_eq(fmt(&a[i].victim), fmt(&b[i].victim), "rule %zu", i);
		cr_assert_float_eq(a[i].score, b[i].score, tol, "rule %zu", i);
		cr_assert_float_eq(a[i].share, b[i].share, tol, "rule %zu", i);
		cr_assert_eq(a[i].victims, b[i].victims, "rule %zu", i);
		cr_assert_eq(a[i].relations, b[i].relations, "rule %zu", i);
		cr_assert_eq(a[i].t_min_ns, b[i].t_min_ns, "rule %zu", i);
		cr_assert_eq(a[i].t_max_ns, b[i].t_max_ns, "rule %zu", i);
		cr_assert_eq(a[i].cluster, b[i].cluster, "rule %zu", i);
		cr_assert_float_eq(a[i].cluster_score, b[i].cluster_score, tol, "rule %zu", i);
		cr_assert_eq(a[i].cluster_victims, b[i].cluster_victims, "rule %zu", i);
	}
}

/* A mixed workload: a few hot aggregates over a small flow universe. */
static struct mscope_af_relation *
mixed(size_t n, uint64_t seed)
{
	struct mscope_af_relation *r = calloc(n, sizeof(*r));

	rng_state = seed;
	for (size_t i = 0; i < n; i++) {
		struct mscope_flow_key c, v;
		uint32_t x = rnd() % 100;
		memset(&c, 0, sizeof(c));
		c.family = x < 85 ? 4 : 6;
		c.proto = (uint8_t)(x % 3 == 0 ? 17 : x % 7 == 0 ? 1 : 6);
		if (c.family == 4) {
			set4(c.src, 10, (uint8_t)(rnd() % 3), (uint8_t)(rnd() % 4), (uint8_t)(rnd() % 8));
			set4(c.dst, 10, 9, (uint8_t)(rnd() % 2), (uint8_t)(rnd() % 4));
		} else {
			c.src[0] = 0x20;
			c.src[1] = 0x01;
			c.src[5] = (uint8_t)(rnd() % 3);
			c.src[9] = (uint8_t)(rnd() % 3);
			c.src[15] = (uint8_t)(rnd() % 5);
			c.dst[0] = 0x20;
			c.dst[15] = (uint8_t)(rnd() % 2);
		}
		c.sport = (uint16_t)(x < 50 ? 50000 + rnd() % 4 : 1000 + rnd() % 40);
		c.dport = (uint16_t)(x < 30 ? 53 : x < 60 ? 80 : 2000 + rnd() % 3);
		v = c;
		if (rnd() % 3 == 0)
			v.dport = (uint16_t)(8000 + rnd() % 2);
		r[i] = relation(rnd() % 3, (uint8_t)(rnd() % 2), rnd() % 9 == 0 ? NULL : &c,
				1 + rnd() % 3, &v, (double)(1 + rnd() % 4) * 0.25,
				rnd() % (n / 2 + 1), rnd() % 100000);
	}
	return r;
}

Test(autofocus, deterministic_and_order_independent)
{
	enum { N = 20000 };
	struct mscope_af_relation *r = mixed(N, 2024);
	struct mscope_af_rule *a, *b, *c;
	size_t na, nb, nc;

	aggregate(r, N, 0.02, &a, &na);
	aggregate(r, N, 0.02, &b, &nb);
	cr_assert(na > 3, "a non-trivial result (%zu rules)", na);
	rules_eq(a, na, b, nb, 0);
	/* Scores are multiples of 1/4: sums are exact in any order. */
	rng_state = 17;
	for (size_t i = N - 1; i > 0; i--) {
		size_t j = rnd() % (i + 1);
		struct mscope_af_relation t = r[i];
		r[i] = r[j];
		r[j] = t;
	}
	aggregate(r, N, 0.02, &c, &nc);
	rules_eq(a, na, c, nc, 0);
	free(a);
	free(b);
	free(c);
	free(r);
}

/* ------------------------------------------------------------ reference */

/*
 * A brute-force implementation of the documented semantics: every cluster of
 * every level combination is enumerated by generalising each member directly
 * (no pruning, no id tricks), then compressed by scanning members. The
 * library must produce exactly the same rules.
 */
enum { RD_NF, RD_FAM, RD_DST, RD_SRC, RD_DPORT, RD_SPORT, RD_PROTO, RD_N };

static const uint8_t ref_v4[] = { 0, 8, 16, 24, 32 };
static const uint8_t ref_v6[] = { 0, 32, 48, 64, 128 };

struct ref_item {
	int has;                 /* IP flow */
	uint32_t nf;
	struct mscope_flow_key k;
	double score;
	uint32_t assigned;
};

struct ref_node {
	uint8_t depth[RD_N];
	struct mscope_af_prefix p;
	uint32_t nf;
	double count;
	int spec;
};

static int
ref_ports(int proto)
{
	return proto == 6 || proto == 17 || proto == 33 || proto == 132 || proto == 136;
}

static int
ref_class(uint16_t p)
{
	return p < 1024 ? 0 : p < 49152 ? 1 : 2;
}

/* The cluster of `it` at depth vector d, or 0 if it does not have one. */
static int
ref_generalise(const struct ref_item *it, const uint8_t *d, int with_nf, struct ref_node *out)
{
	static const uint16_t lo[3] = { 0, 1024, 49152 }, hi[3] = { 1023, 49151, 65535 };
	struct mscope_af_prefix *p = &out->p;
	const uint8_t *len;

	memset(out, 0, sizeof(*out));
	mscope_af_prefix_any(p);
	memcpy(out->depth, d, RD_N);
	out->nf = MSCOPE_AF_ANY_NF;
	for (int i = 0; i < RD_N; i++)
		out->spec += d[i];
	if (d[RD_NF])
		out->nf = it->nf;
	if (!d[RD_FAM] && !d[RD_DST] && !d[RD_SRC] && !d[RD_DPORT] && !d[RD_SPORT] && !d[RD_PROTO])
		return 1;
	if (!it->has)
		return 0;
	len = it->k.family == 4 ? ref_v4 : ref_v6;
	if (d[RD_FAM])
		p->family = it->k.family;
	if (d[RD_SRC] || d[RD_DST]) {
		struct mscope_flow_key m = it->k;
		if (d[RD_SRC] > 4 || d[RD_DST] > 4)
			return 0;
		p->src_len = len[d[RD_SRC]];
		p->dst_len = len[d[RD_DST]];
		for (int b = 0; b < 128; b++) {
			if (b >= p->src_len)
				m.src[b / 8] &= (uint8_t)~(0x80 >> (b % 8));
			if (b >= p->dst_len)
				m.dst[b / 8] &= (uint8_t)~(0x80 >> (b % 8));
		}
		memcpy(p->src, m.src, 16);
		memcpy(p->dst, m.dst, 16);
	}
	if (d[RD_PROTO])
		p->proto = it->k.proto;
	if (d[RD_SPORT] || d[RD_DPORT]) {
		if (!ref_ports(it->k.proto))
			return 0;
		if (d[RD_SPORT] == 1)
			p->sport_lo = lo[ref_class(it->k.sport)], p->sport_hi = hi[ref_class(it->k.sport)];
		if (d[RD_SPORT] == 2)
			p->sport_lo = p->sport_hi = it->k.sport;
		if (d[RD_DPORT] == 1)
			p->dport_lo = lo[ref_class(it->k.dport)], p->dport_hi = hi[ref_class(it->k.dport)];
		if (d[RD_DPORT] == 2)
			p->dport_lo = p->dport_hi = it->k.dport;
	}
	return 1;
}

static int
ref_same(const struct ref_node *a, const struct ref_node *b)
{
	return !memcmp(a->depth, b->depth, RD_N) && a->nf == b->nf &&
		!memcmp(&a->p, &b->p, sizeof(a->p));
}

/* Processing order: most specific first, then depth vector, then values. */
static int
ref_cmp(const void *x, const void *y)
{
	const struct ref_node *a = x, *b = y;
	int r;

	if (a->spec != b->spec)
		return a->spec > b->spec ? -1 : 1;
	for (int i = 0; i < RD_N; i++)
		if (a->depth[i] != b->depth[i])
			return a->depth[i] > b->depth[i] ? -1 : 1;
	if (a->nf != b->nf)
		return a->nf < b->nf ? -1 : 1;
	if (a->p.family != b->p.family)
		return a->p.family < b->p.family ? -1 : 1;
	if ((r = memcmp(a->p.dst, b->p.dst, 16)))
		return r;
	if ((r = memcmp(a->p.src, b->p.src, 16)))
		return r;
	if (a->p.dport_lo != b->p.dport_lo)
		return a->p.dport_lo < b->p.dport_lo ? -1 : 1;
	if (a->p.sport_lo != b->p.sport_lo)
		return a->p.sport_lo < b->p.sport_lo ? -1 : 1;
	return a->p.proto < b->p.proto ? -1 : a->p.proto > b->p.proto;
}

/* Reported clusters of one side; items[].assigned = index in *out or -1. */
static size_t
ref_side(struct ref_item *it, size_t n, double tcut, int with_nf, int force_root,
		struct ref_node **out)
{
	struct ref_node *nodes = NULL, *rep = NULL;
	size_t nn = 0, cap = 0, nrep = 0;
	uint8_t d[RD_N];

	for (int a = 0; a < (with_nf ? 2 : 1); a++)
	for (int b = 0; b < 2; b++)
	for (int c = 0; c < 5; c++)
	for (int e = 0; e < 5; e++)
	for (int f = 0; f < 3; f++)
	for (int g = 0; g < 3; g++)
	for (int h = 0; h < 2; h++) {
		size_t first = nn;
		if (!b && (c || e))
			continue;
		d[RD_NF] = (uint8_t)a, d[RD_FAM] = (uint8_t)b, d[RD_DST] = (uint8_t)c;
		d[RD_SRC] = (uint8_t)e, d[RD_DPORT] = (uint8_t)f, d[RD_SPORT] = (uint8_t)g;
		d[RD_PROTO] = (uint8_t)h;
		for (size_t i = 0; i < n; i++) {
			struct ref_node x;
			size_t j;
			if (!ref_generalise(&it[i], d, with_nf, &x))
				continue;
			for (j = first; j < nn && !ref_same(&nodes[j], &x); j++)
				;
			if (j == nn) {
				if (nn == cap) {
					cap = cap ? cap * 2 : 256;
					nodes = realloc(nodes, cap * sizeof(*nodes));
				}
				nodes[nn++] = x;
			}
			nodes[j].count += it[i].score;
		}
	}
	qsort(nodes, nn, sizeof(*nodes), ref_cmp);
	rep = calloc(nn + 1, sizeof(*rep));
	for (size_t i = 0; i < n; i++)
		it[i].assigned = UINT32_MAX;
	for (size_t j = 0; j < nn; j++) {
		double res = 0;
		int root = nodes[j].spec == 0;
		if (!(nodes[j].count > 0 && nodes[j].count >= tcut) && !(root && force_root))
			continue;
		for (size_t i = 0; i < n; i++) {
			struct ref_node x;
			if (it[i].assigned == UINT32_MAX &&
					ref_generalise(&it[i], nodes[j].depth, with_nf, &x) &&
					ref_same(&x, &nodes[j]))
				res += it[i].score;
		}
		if (!((res > 0 && res >= tcut) || (root && force_root && res > 0)))
			continue;
		for (size_t i = 0; i < n; i++) {
			struct ref_node x;
			if (it[i].assigned == UINT32_MAX &&
					ref_generalise(&it[i], nodes[j].depth, with_nf, &x) &&
					ref_same(&x, &nodes[j]))
				it[i].assigned = (uint32_t)nrep;
		}
		rep[nrep++] = nodes[j];
	}
	free(nodes);
	*out = rep;
	return nrep;
}

static int
ref_key_cmp(const void *x, const void *y)
{
	const struct mscope_af_relation *a = x, *b = y;

	if (a->culprit_nf != b->culprit_nf)
		return a->culprit_nf < b->culprit_nf ? -1 : 1;
	return a->kind < b->kind ? -1 : a->kind > b->kind;
}

struct ref_rule {
	struct mscope_af_rule r;
	size_t seq;
	size_t crule;
};

static int
ref_rule_cmp(const void *x, const void *y)
{
	const struct ref_rule *a = x, *b = y;

	if (a->r.score != b->r.score)
		return a->r.score > b->r.score ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static size_t
ref_aggregate(const struct mscope_af_relation *in, size_t n, double thr, double vshare,
		struct mscope_af_rule **outp)
{
	uint64_t *cvict = calloc(n + 1, sizeof(*cvict));
	struct mscope_af_relation *rel = malloc(n * sizeof(*rel));
	struct ref_rule *out = calloc(n + 1, sizeof(*out));
	struct ref_item *it = calloc(n, sizeof(*it));
	size_t nout = 0, ncl = 0;
	double total = 0;

	memcpy(rel, in, n * sizeof(*rel));
	for (size_t i = 0; i < n; i++)
		total += rel[i].score;
	/* Groups in (NF, kind) order; order inside a group does not matter here
	 * because scores are exact. */
	qsort(rel, n, sizeof(*rel), ref_key_cmp);
	for (size_t a = 0, b; a < n; a = b) {
		struct ref_node *cn;
		size_t ncn;
		for (b = a; b < n && !ref_key_cmp(&rel[a], &rel[b]); b++)
			;
		for (size_t i = a; i < b; i++) {
			it[i - a].has = rel[i].culprit_has_flow &&
				(rel[i].culprit_flow.family == 4 || rel[i].culprit_flow.family == 6);
			it[i - a].k = rel[i].culprit_flow;
			it[i - a].score = rel[i].score;
		}
		ncn = ref_side(it, b - a, thr * total * (1 - 1e-9), 0, 0, &cn);
		uint32_t *cof = malloc((b - a) * sizeof(*cof));
		for (size_t i = a; i < b; i++)
			cof[i - a] = it[i - a].assigned;
		for (size_t c = 0; c < ncn; c++) {
			struct ref_item *vi = calloc(b - a, sizeof(*vi));
			size_t *map = calloc(b - a, sizeof(*map));
			size_t m = 0, nvn;
			struct ref_node *vn;
			for (size_t i = a; i < b; i++) {
				if (cof[i - a] != c)
					continue;
				vi[m].has = rel[i].victim_flow.family == 4 || rel[i].victim_flow.family == 6;
				vi[m].k = rel[i].victim_flow;
				vi[m].nf = rel[i].victim_nf;
				vi[m].score = rel[i].score;
				map[m++] = i;
			}
			double csum = 0;
			size_t nck = 0;
			uint64_t *ck = calloc(m + 1, sizeof(*ck));
			for (size_t q = 0; q < m; q++)
				csum += vi[q].score;
			nvn = ref_side(vi, m, fmax(thr * total, vshare * csum) * (1 - 1e-9), 1, 1, &vn);
			/* Distinct victims of the culprit cluster, over its rules. */
			for (size_t q = 0; q < m; q++) {
				size_t z;
				if (vi[q].assigned == UINT32_MAX)
					continue;
				for (z = 0; z < nck && ck[z] != rel[map[q]].victim_key; z++)
					;
				if (z == nck)
					ck[nck++] = rel[map[q]].victim_key;
			}
			cvict[ncl + c] = nck;
			free(ck);
			for (size_t v = 0; v < nvn; v++) {
				struct mscope_af_rule *o = &out[nout].r;
				uint64_t *keys = calloc(m + 1, sizeof(*keys));
				size_t nk = 0;
				out[nout].seq = nout;
				out[nout].crule = ncl + c;
				o->culprit_nf = rel[a].culprit_nf;
				o->kind = rel[a].kind;
				o->culprit = cn[c].p;
				o->culprit_has_flow = !mscope_af_prefix_is_any(&cn[c].p);
				o->victim_nf = vn[v].nf;
				o->victim = vn[v].p;
				o->t_min_ns = UINT64_MAX;
				for (size_t q = 0; q < m; q++) {
					const struct mscope_af_relation *r = &rel[map[q]];
					size_t z;
					if (vi[q].assigned != v)
						continue;
					o->score += r->score;
					o->relations++;
					o->t_min_ns = r->t_ns < o->t_min_ns ? r->t_ns : o->t_min_ns;
					o->t_max_ns = r->t_ns > o->t_max_ns ? r->t_ns : o->t_max_ns;
					for (z = 0; z < nk && keys[z] != r->victim_key; z++)
						;
					if (z == nk)
						keys[nk++] = r->victim_key;
				}
				o->victims = nk;
				o->share = o->score / total;
				free(keys);
				nout++;
			}
			free(vn);
			free(vi);
			free(map);
		}
		free(cof);
		free(cn);
		ncl += ncn;
	}
	/* Culprit clusters: score = sum of their rules; rank by score, then creation. */
	for (size_t c = 0; c < ncl; c++) {
		double sc = 0;
		size_t rank = 0;
		for (size_t j = 0; j < nout; j++)
			if (out[j].crule == c)
				sc += out[j].r.score;
		for (size_t d = 0; d < ncl; d++) {
			double sd = 0;
			for (size_t j = 0; j < nout; j++)
				if (out[j].crule == d)
					sd += out[j].r.score;
			if (sd > sc || (sd == sc && d < c))
				rank++;
		}
		for (size_t j = 0; j < nout; j++)
			if (out[j].crule == c) {
				out[j].r.cluster = (uint32_t)rank;
				out[j].r.cluster_score = sc;
				out[j].r.cluster_victims = cvict[c];
			}
	}
	qsort(out, nout, sizeof(*out), ref_rule_cmp);
	*outp = calloc(nout + 1, sizeof(**outp));
	for (size_t i = 0; i < nout; i++)
		(*outp)[i] = out[i].r;
	free(out);
	free(it);
	free(rel);
	free(cvict);
	return nout;
}

Test(autofocus, matches_brute_force_reference, .timeout = 50)
{
	static const struct {
		double thr, vshare;
		size_t n;
	} cfg[] = {
		{ 0.01, 0.2, 300 }, { 0.03, 0.2, 300 }, { 0.05, 0.2, 800 }, { 0.1, 0.2, 800 },
		{ 0.01, 1e-9, 300 }, { 0.05, 1e-9, 800 }, { 0.02, 1.0, 300 }, { 0.05, 0.5, 800 },
	};

	for (size_t k = 0; k < sizeof(cfg) / sizeof(cfg[0]); k++) {
		struct mscope_af_relation *r = mixed(cfg[k].n, 100 + k);
		struct mscope_af_opts o = { .threshold = cfg[k].thr, .victim_share = cfg[k].vshare };
		struct mscope_af_rule *a, *b;
		size_t na, nb;

		cr_assert_eq(mscope_af_aggregate(r, cfg[k].n, &o, &a, &na), 0);
		nb = ref_aggregate(r, cfg[k].n, cfg[k].thr, cfg[k].vshare, &b);
		if (na != nb) {
			fprintf(stderr, "config %zu; library:\n", k);
			dump(a, na);
			fprintf(stderr, "reference:\n");
			dump(b, nb);
		}
		cr_assert(na > 1, "config %zu: a non-trivial result", k);
		rules_eq(a, na, b, nb, 1e-9);
		free(a);
		free(b);
		free(r);
	}
}

/* ------------------------------------------------------------ formatting */

Test(autofocus, prefix_format_and_contains)
{
	struct mscope_af_prefix p;
	char small[8];
	struct mscope_flow_key k = flow4(6, "10.1.2.3", 80, "10.0.0.1", 40000);
	struct mscope_flow_key icmp = flow4(1, "10.1.2.3", 0, "10.0.0.1", 0);

	mscope_af_prefix_any(&p);
	cr_assert_str_eq(fmt(&p), "*");
	cr_assert(mscope_af_prefix_contains(&p, NULL));
	cr_assert(mscope_af_prefix_contains(&p, &k));
	p.family = 4;
	cr_assert_str_eq(fmt(&p), "* 0.0.0.0/0:* > 0.0.0.0/0:*");
	cr_assert(!mscope_af_prefix_contains(&p, NULL));
	p.family = 6;
	cr_assert_str_eq(fmt(&p), "* [::/0]:* > [::/0]:*");
	cr_assert(!mscope_af_prefix_contains(&p, &k));
	mscope_af_prefix_any(&p);
	p.family = 4;
	p.proto = 6;
	p.src_len = 16;
	p.src[0] = 10;
	p.src[1] = 1;
	p.sport_lo = 0;
	p.sport_hi = 1023;
	p.dport_lo = 49152;
	p.dport_hi = 65535;
	cr_assert_str_eq(fmt(&p), "tcp 10.1.0.0/16:0-1023 > *:49152-65535");
	cr_assert(!mscope_af_prefix_contains(&p, &k), "40000 is not ephemeral");
	k.dport = 50000;
	cr_assert(mscope_af_prefix_contains(&p, &k));
	k.src[1] = 2;
	cr_assert(!mscope_af_prefix_contains(&p, &k));
	p.proto = 1;
	p.sport_hi = 65535;
	p.dport_lo = 0;
	cr_assert_str_eq(fmt(&p), "icmp 10.1.0.0/16 > *");
	p.proto = -1;
	p.dport_lo = p.dport_hi = 53;
	cr_assert(!mscope_af_prefix_contains(&p, &icmp), "port-less flows are only in any-port");
	p.proto = 200;
	cr_assert_str_eq(fmt(&p), "proto200 10.1.0.0/16 > *");
	cr_assert_str_eq(mscope_af_prefix_format(&p, small, sizeof(small)), "proto20");
	cr_assert_str_eq(mscope_af_proto_name(17), "udp");
	cr_assert_null(mscope_af_proto_name(253));
}

/* The demo's two rules with one score (nat1 processing, 6.3% each, for
 * 'tcp 10.0.0.0/8:49152-65535 > 172.16.0.0/24:0-1023' and
 * 'tcp 10.0.0.0/8:1024-49151 > 172.16.0.0/24:80'): an older analyzer split
 * each victim's processing share equally over the flows of the period, so
 * two flows in incomparable aggregates had equal sums. Not double counting:
 * each relation is explained once, the two rules are the two flows' own
 * halves, and they are two culprit clusters that each hurt every victim. */
Test(autofocus, equal_halves_in_incomparable_aggregates)
{
	enum { N = 200 };
	struct mscope_af_relation *r = calloc(2 * N, sizeof(*r));
	struct mscope_af_rule *rules;
	struct mscope_flow_key a, b;
	size_t n;
	double sum = 0;
	int ra = -1, rb = -1;

	memset(&a, 0, sizeof(a));
	a.family = 4;
	a.proto = 6;
	b = a;
	set4(a.src, 10, 1, 2, 3);
	set4(a.dst, 172, 16, 0, 7);
	a.sport = 50000;
	a.dport = 443;
	set4(b.src, 10, 9, 8, 7);
	set4(b.dst, 172, 16, 0, 9);
	b.sport = 40000;
	b.dport = 80;
	for (int i = 0; i < N; i++) {
		r[2 * i] = relation(1, 0, &a, 1, &b, 3.0, (uint64_t)i, (uint64_t)i);
		r[2 * i + 1] = relation(1, 0, &b, 1, &b, 3.0, (uint64_t)i, (uint64_t)i);
	}
	aggregate(r, 2 * N, 0.05, &rules, &n);
	dump(rules, n);
	for (size_t i = 0; i < n; i++) {
		sum += rules[i].score;
		if (mscope_af_prefix_contains(&rules[i].culprit, &a) &&
		    !mscope_af_prefix_contains(&rules[i].culprit, &b))
			ra = (int)i;
		if (mscope_af_prefix_contains(&rules[i].culprit, &b) &&
		    !mscope_af_prefix_contains(&rules[i].culprit, &a))
			rb = (int)i;
	}
	cr_assert_float_eq(sum, 2 * N * 3.0, 1e-9, "every relation explained once: %g", sum);
	cr_assert_eq(n, 2, "one rule per flow, got %zu", n);
	cr_assert(ra >= 0 && rb >= 0);
	cr_assert_float_eq(rules[ra].score, N * 3.0, 1e-9);
	cr_assert_float_eq(rules[rb].score, N * 3.0, 1e-9);
	cr_assert_eq(rules[ra].victims, N);
	cr_assert_eq(rules[rb].victims, N);
	cr_assert_neq(rules[ra].cluster, rules[rb].cluster);
	cr_assert_float_eq(rules[ra].cluster_score, N * 3.0, 1e-9);
	cr_assert_eq(rules[ra].cluster_victims, N);
	free(rules);
	free(r);
}
