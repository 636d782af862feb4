/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_autofocus: time mscope_af_aggregate() on synthetic causal relations
 * (run through tools/bench-autofocus on a release build).
 *
 * Workloads, generated with a fixed seed (generation is not timed):
 *  - diagnosis: what an analysis of a faulty chain emits: victims with ~100
 *    relations each, culprit and victim flows from a population of 20000
 *    flows (90% IPv4, 10% IPv6), 4 culprit NFs x 2 kinds, 8 victim NFs, and
 *    planted causes: a DNS burst from 10.1.2.0/24 (30%), a flowless stall at
 *    one NF (25%), a bug triggered by tcp/8080 from 3 hosts (15%), the rest
 *    spread over the population;
 *  - distinct: every relation has its own random culprit and victim flow
 *    (worst case for the search: nothing deduplicates).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mscope_autofocus.h"

static uint64_t rng = 88172645463325252ull;

static uint32_t
rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (uint32_t)((rng * 0x2545F4914F6CDD1Dull) >> 32);
}

static void
random_flow(struct mscope_flow_key *k, int v6_percent)
{
	memset(k, 0, sizeof(*k));
	if ((int)(rnd() % 100) < v6_percent) {
		k->family = 6;
		k->src[0] = 0x20;
		k->src[1] = 0x01;
		k->dst[0] = 0x20;
		k->dst[1] = 0x01;
		for (int i = 2; i < 16; i++) {
			k->src[i] = (uint8_t)rnd();
			k->dst[i] = (uint8_t)rnd();
		}
	} else {
		k->family = 4;
		for (int i = 0; i < 4; i++) {
			k->src[i] = (uint8_t)rnd();
			k->dst[i] = (uint8_t)rnd();
		}
	}
	k->proto = rnd() % 4 ? 6 : 17;
	k->sport = (uint16_t)(49152 + rnd() % 16384);
	k->dport = (uint16_t)(rnd() % 3 ? 80 + rnd() % 2 * 363 : rnd() % 65536);
}

static void
gen_diagnosis(struct mscope_af_relation *r, size_t n)
{
	enum { POP = 20000 };
	struct mscope_flow_key *pop = malloc(POP * sizeof(*pop));

	for (int i = 0; i < POP; i++)
		random_flow(&pop[i], 10);
	for (size_t i = 0; i < n; i++) {
		uint32_t c = rnd() % 100;
		uint64_t victim = i / 100;

		memset(&r[i], 0, sizeof(r[i]));
		r[i].victim_key = victim;
		r[i].t_ns = victim * 100000 + rnd() % 1000;
		r[i].victim_nf = 1 + rnd() % 8;
		r[i].victim_flow = pop[rnd() % POP];
		r[i].score = 0.01 + (rnd() % 1000) / 1000.0;
		r[i].culprit_has_flow = 1;
		if (c < 30) {
			struct mscope_flow_key *k = &r[i].culprit_flow;
			memset(k, 0, sizeof(*k));
			k->family = 4;
			k->proto = 17;
			k->src[0] = 10, k->src[1] = 1, k->src[2] = 2, k->src[3] = (uint8_t)rnd();
			k->dst[0] = 10, k->dst[1] = 0, k->dst[2] = 0, k->dst[3] = 53;
			k->sport = (uint16_t)(49152 + rnd() % 16384);
			k->dport = 53;
			r[i].culprit_nf = 0;
			r[i].kind = 1;
		} else if (c < 55) {
			r[i].culprit_has_flow = 0;
			r[i].culprit_nf = 2;
			r[i].kind = 0;
		} else if (c < 70) {
			struct mscope_flow_key *k = &r[i].culprit_flow;
			*k = pop[rnd() % POP];
			k->family = 4;
			k->proto = 6;
			k->src[0] = 192, k->src[1] = 0, k->src[2] = 2, k->src[3] = (uint8_t)(1 + rnd() % 3);
			memset(k->src + 4, 0, 12);
			memset(k->dst + 4, 0, 12);
			k->dport = 8080;
			r[i].culprit_nf = 3;
			r[i].kind = 0;
		} else {
			r[i].culprit_flow = pop[rnd() % POP];
			r[i].culprit_nf = rnd() % 4;
			r[i].kind = (uint8_t)(rnd() % 2);
		}
	}
	free(pop);
}

static void
gen_distinct(struct mscope_af_relation *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		random_flow(&r[i].culprit_flow, 10);
		random_flow(&r[i].victim_flow, 10);
		r[i].culprit_has_flow = 1;
		r[i].culprit_nf = rnd() % 4;
		r[i].kind = (uint8_t)(rnd() % 2);
		r[i].victim_nf = 1 + rnd() % 8;
		r[i].score = 0.01 + (rnd() % 1000) / 1000.0;
		r[i].victim_key = i / 100;
		r[i].t_ns = i * 1000;
	}
}

static double
now(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: bench_autofocus [-n RELATIONS] [-r REPEATS] [-t THRESHOLD] [-v]\n"
		"  -n  relations per workload (default 1000000)\n"
		"  -r  timed runs per workload, the best is reported (default 3)\n"
		"  -t  threshold (default 0.05; 0.01 is also run when not given)\n"
		"  -v  print the top rules\n");
}

int
main(int argc, char **argv)
{
	size_t n = 1000000;
	int repeats = 3, verbose = 0, c;
	double thr[2] = { 0.05, 0.01 };
	int nthr = 2;
	static const struct {
		const char *name;
		void (*gen)(struct mscope_af_relation *, size_t);
	} wl[] = { { "diagnosis", gen_diagnosis }, { "distinct", gen_distinct } };

	while ((c = getopt(argc, argv, "hn:r:t:v")) != -1) {
		switch (c) {
		case 'n':
			n = strtoull(optarg, NULL, 10);
			break;
		case 'r':
			repeats = atoi(optarg);
			break;
		case 't':
			thr[0] = strtod(optarg, NULL);
			nthr = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (n == 0 || repeats < 1) {
		usage(stderr);
		return 2;
	}
	struct mscope_af_relation *r = malloc(n * sizeof(*r));
	if (!r) {
		fprintf(stderr, "bench_autofocus: out of memory\n");
		return 1;
	}
	/* Wall time suffers from the other jobs of a shared machine; the CPU
	 * time of this (single-threaded) process is the figure to compare. */
	printf("%-10s %10s %9s %7s %10s %10s %12s\n", "workload", "relations", "threshold",
		"rules", "wall_s", "cpu_s", "Mrel/cpu_s");
	for (size_t w = 0; w < sizeof(wl) / sizeof(wl[0]); w++) {
		rng = 88172645463325252ull;
		wl[w].gen(r, n);
		for (int t = 0; t < nthr; t++) {
			struct mscope_af_opts o = { .threshold = thr[t] };
			struct mscope_af_rule *rules = NULL;
			size_t nr = 0;
			double best = 1e30, best_cpu = 1e30;

			for (int k = 0; k < repeats; k++) {
				double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
				if (mscope_af_aggregate(r, n, &o, &rules, &nr)) {
					perror("bench_autofocus: mscope_af_aggregate");
					return 1;
				}
				double dt = now(CLOCK_MONOTONIC) - t0;
				double dc = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
				if (dt < best)
					best = dt;
				if (dc < best_cpu)
					best_cpu = dc;
				if (k + 1 < repeats)
					free(rules);
			}
			printf("%-10s %10zu %9.3f %7zu %10.3f %10.3f %12.2f\n", wl[w].name, n, thr[t],
				nr, best, best_cpu, n / best_cpu / 1e6);
			for (size_t i = 0; verbose && i < nr && i < 10; i++) {
				char a[128], b[128];
				printf("    nf%u kind%u %-44s -> nf%d %-44s %.3f\n", rules[i].culprit_nf,
					rules[i].kind, mscope_af_prefix_format(&rules[i].culprit, a, sizeof(a)),
					(int)rules[i].victim_nf,
					mscope_af_prefix_format(&rules[i].victim, b, sizeof(b)),
					rules[i].share);
			}
			free(rules);
		}
	}
	free(r);
	return 0;
}
