/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mscope-nf-lb: a load balancer. Spreads flows over N outputs by a hash of
 * the chosen header fields (consistent per flow), optionally weighted.
 * Output links with a filter still take the packets they match first.
 */
#include <stdlib.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_jhash.h>

#include "common.h"

#define NB_MBUFS 8191

enum lb_hash { LB_5TUPLE, LB_SRC, LB_DST, LB_SYMMETRIC };

struct lb {
	enum lb_hash hash;
	const char *weights_arg;
	unsigned int n_out;
	uint16_t out[NF_MAX_LINKS];     /* link index per output */
	uint32_t weight[NF_MAX_LINKS];
	uint32_t total_weight;
	uint64_t packets[NF_MAX_LINKS];
	/* slot -> output, total_weight slots */
	uint16_t *slot;
};

enum { OPT_HASH = 2000, OPT_WEIGHTS };

static const struct option lb_opts[] = {
	{ "hash", required_argument, NULL, OPT_HASH },
	{ "weights", required_argument, NULL, OPT_WEIGHTS },
	{ NULL, 0, NULL, 0 },
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: mscope-nf-lb [EAL options] -- [options]\n\n"
		"A DPDK load balancer: spreads flows over its outputs by hash.\n\n"
		"Load balancer:\n"
		"  --hash 5tuple|src|dst|symmetric   fields hashed (default 5tuple); symmetric\n"
		"                             sends both directions of a flow to one output\n"
		"  --weights W1,W2,...        integer weight per output without filter, in\n"
		"                             --out order (default all 1)\n");
	nf_common_usage(f);
}

static int
own_opt(int c, const char *arg, void *st)
{
	struct lb *lb = st;

	switch (c) {
	case OPT_HASH:
		if (!strcmp(arg, "5tuple"))
			lb->hash = LB_5TUPLE;
		else if (!strcmp(arg, "src"))
			lb->hash = LB_SRC;
		else if (!strcmp(arg, "dst"))
			lb->hash = LB_DST;
		else if (!strcmp(arg, "symmetric"))
			lb->hash = LB_SYMMETRIC;
		else {
			fprintf(stderr, "mscope-nf-lb: bad --hash '%s' (5tuple, src, dst, symmetric)\n",
				arg);
			return -1;
		}
		return 0;
	case OPT_WEIGHTS:
		lb->weights_arg = arg;
		return 0;
	}
	return -1;
}

static void
lb_init(struct lb *lb, const struct nf_ctx *ctx)
{
	const struct nf_common *o = ctx->opt;
	unsigned int k = 0;

	for (unsigned int i = 0; i < o->n_links; i++)
		if (!o->links[i].has_filter)
			lb->out[lb->n_out++] = (uint16_t)i;
	for (unsigned int i = 0; i < lb->n_out; i++)
		lb->weight[i] = 1;
	if (lb->weights_arg) {
		char buf[256], *save = NULL, *tok;
		unsigned int n = 0;
		uint64_t v;

		snprintf(buf, sizeof(buf), "%s", lb->weights_arg);
		for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			if (n >= lb->n_out || nf_parse_u64(tok, &v) || v == 0 || v > 1000) {
				fprintf(stderr, "mscope-nf-lb: bad --weights '%s': one weight 1..1000"
					" per output (%u outputs)\n", lb->weights_arg, lb->n_out);
				exit(1);
			}
			lb->weight[n++] = (uint32_t)v;
		}
		if (n != lb->n_out) {
			fprintf(stderr, "mscope-nf-lb: --weights gives %u weights for %u outputs\n",
				n, lb->n_out);
			exit(1);
		}
	}
	for (unsigned int i = 0; i < lb->n_out; i++)
		lb->total_weight += lb->weight[i];
	lb->slot = calloc(lb->total_weight ? lb->total_weight : 1, sizeof(*lb->slot));
	if (!lb->slot) {
		fprintf(stderr, "mscope-nf-lb: out of memory\n");
		exit(1);
	}
	for (unsigned int i = 0; i < lb->n_out; i++)
		for (uint32_t w = 0; w < lb->weight[i]; w++)
			lb->slot[k++] = (uint16_t)i;
}

static uint32_t
flow_hash(const struct lb *lb, const struct nf_tuple *t)
{
	switch (lb->hash) {
	case LB_SRC:
		return rte_jhash_1word(t->src, 0);
	case LB_DST:
		return rte_jhash_1word(t->dst, 0);
	case LB_SYMMETRIC:
		/* Order-independent: both directions hash alike. */
		return rte_jhash_3words(t->src ^ t->dst, (uint32_t)(t->sport ^ t->dport),
			t->proto, 0);
	default:
		return nf_tuple_hash(t);
	}
}

static void
process(struct nf_ctx *ctx, struct rte_mbuf **pkts, struct nf_pkt *meta, uint16_t n,
		uint16_t *out, void *arg)
{
	struct lb *lb = arg;
	const struct nf_common *o = ctx->opt;

	for (uint16_t i = 0; i < n; i++) {
		unsigned int k;

		out[i] = NF_DEFAULT_OUT;
		for (unsigned int l = 0; l < o->n_links; l++)
			if (o->links[l].has_filter && nf_filter_match(&o->links[l].filter, &meta[i].t))
				goto next;
		if (lb->n_out == 0) {
			out[i] = NF_DROP;
			continue;
		}
		k = lb->slot[flow_hash(lb, &meta[i].t) % lb->total_weight];
		out[i] = lb->out[k];
		lb->packets[k]++;
next:;
	}
}

int
main(int argc, char **argv)
{
	struct nf_common o;
	struct nf_ctx ctx;
	struct lb lb;
	json_t *outs;
	int ret;

	if (nf_help_requested(argc, argv)) {
		usage(stdout);
		return 0;
	}
	ret = nf_eal_init(argc, argv);
	argc -= ret;
	argv += ret;
	nf_common_init(&o, "mscope-nf-lb");
	memset(&lb, 0, sizeof(lb));
	nf_getopt(&o, argc, argv, lb_opts, own_opt, &lb, usage);

	nf_setup(&ctx, &o, NB_MBUFS);
	lb_init(&lb, &ctx);
	nf_loop(&ctx, process, &lb);

	outs = json_array();
	for (unsigned int i = 0; i < lb.n_out; i++)
		json_array_append_new(outs, json_pack("{s:s, s:i, s:I}", "link",
			o.links[lb.out[i]].name, "weight", (int)lb.weight[i],
			"packets", (json_int_t)lb.packets[i]));
	json_object_set_new(ctx.extra, "lb", outs);
	nf_teardown(&ctx);
	free(lb.slot);
	return 0;
}
