/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mscope-nf-monitor: per-flow packet and byte counters (5-tuple flow table),
 * written as JSON at exit; every packet is forwarded.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_hash.h>
#include <rte_jhash.h>

#include "common.h"

#define NB_MBUFS 8191

struct mon_key {
	uint32_t src, dst;
	uint16_t sport, dport;
	uint8_t proto;
	uint8_t pad[3];
};

struct mon_flow {
	struct mon_key key;
	uint64_t packets, bytes;
	uint64_t first_tsc, last_tsc;
};

struct mon {
	uint32_t max_flows;
	const char *dump_path;
	unsigned int top;
	struct rte_hash *table;
	struct mon_flow *flows;
	uint32_t n_flows;
	uint64_t non_ip_packets, non_ip_bytes, overflow_packets, overflow_bytes;
};

enum { OPT_DUMP = 2000, OPT_MAX_FLOWS, OPT_TOP };

static const struct option mon_opts[] = {
	{ "dump", required_argument, NULL, OPT_DUMP },
	{ "max-flows", required_argument, NULL, OPT_MAX_FLOWS },
	{ "top", required_argument, NULL, OPT_TOP },
	{ NULL, 0, NULL, 0 },
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: mscope-nf-monitor [EAL options] -- [options]\n\n"
		"A DPDK traffic monitor: counts packets and bytes per 5-tuple flow and\n"
		"forwards every packet.\n\n"
		"Monitor:\n"
		"  --dump FILE                write every flow's counters as JSON at exit\n"
		"  --max-flows N              flow table size (default 65536); packets of\n"
		"                             flows beyond it are counted as overflow\n"
		"  --top N                    print the N largest flows at exit (default 5)\n");
	nf_common_usage(f);
}

static int
own_opt(int c, const char *arg, void *st)
{
	struct mon *mon = st;
	uint64_t v;

	switch (c) {
	case OPT_DUMP:
		mon->dump_path = arg;
		return 0;
	case OPT_MAX_FLOWS:
		if (nf_parse_u64(arg, &v) || v < 16 || v > (1u << 24)) {
			fprintf(stderr, "mscope-nf-monitor: bad --max-flows '%s'\n", arg);
			return -1;
		}
		mon->max_flows = (uint32_t)v;
		return 0;
	case OPT_TOP:
		if (nf_parse_u64(arg, &v) || v > 1000000) {
			fprintf(stderr, "mscope-nf-monitor: bad --top '%s'\n", arg);
			return -1;
		}
		mon->top = (unsigned int)v;
		return 0;
	}
	return -1;
}

static void
process(struct nf_ctx *ctx, struct rte_mbuf **pkts, struct nf_pkt *meta, uint16_t n,
		uint16_t *out, void *arg)
{
	struct mon *mon = arg;
	uint64_t now = rte_rdtsc();

	for (uint16_t i = 0; i < n; i++) {
		const struct nf_tuple *t = &meta[i].t;
		uint32_t len = rte_pktmbuf_pkt_len(pkts[i]);
		struct mon_key k;
		struct mon_flow *f;
		void *data;

		if (!t->is_ip) {
			mon->non_ip_packets++;
			mon->non_ip_bytes += len;
			continue;
		}
		memset(&k, 0, sizeof(k));
		k.src = t->src;
		k.dst = t->dst;
		k.sport = t->sport;
		k.dport = t->dport;
		k.proto = t->proto;
		if (rte_hash_lookup_data(mon->table, &k, &data) >= 0) {
			f = &mon->flows[(uintptr_t)data];
		} else if (mon->n_flows < mon->max_flows &&
				rte_hash_add_key_data(mon->table, &k,
					(void *)(uintptr_t)mon->n_flows) >= 0) {
			f = &mon->flows[mon->n_flows++];
			f->key = k;
			f->first_tsc = now;
		} else {
			mon->overflow_packets++;
			mon->overflow_bytes += len;
			continue;
		}
		f->packets++;
		f->bytes += len;
		f->last_tsc = now;
	}
}

static int
by_bytes(const void *a, const void *b)
{
	const struct mon_flow *x = a, *y = b;

	return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}

static const char *
ip_str(uint32_t a, char *buf)
{
	struct in_addr in = { .s_addr = htonl(a) };

	return inet_ntop(AF_INET, &in, buf, INET_ADDRSTRLEN);
}

/* Wall-clock ns of a TSC value, from one pair read now. */
static int64_t
tsc_to_ns(const struct nf_ctx *ctx, uint64_t tsc, uint64_t now_tsc, int64_t now_ns)
{
	return now_ns - (int64_t)((double)(now_tsc - tsc) * 1e9 / (double)ctx->tsc_hz);
}

static void
report(struct mon *mon, const struct nf_ctx *ctx)
{
	char s[INET_ADDRSTRLEN], d[INET_ADDRSTRLEN];
	uint64_t now_tsc = rte_rdtsc();
	int64_t now_ns = nf_realtime_ns();
	uint64_t pk = 0, by = 0;
	json_t *arr = json_array(), *j;

	qsort(mon->flows, mon->n_flows, sizeof(*mon->flows), by_bytes);
	for (uint32_t i = 0; i < mon->n_flows; i++) {
		const struct mon_flow *f = &mon->flows[i];

		pk += f->packets;
		by += f->bytes;
		json_array_append_new(arr, json_pack("{s:i, s:s, s:s, s:i, s:i, s:I, s:I, s:I, s:I}",
			"proto", f->key.proto, "src", ip_str(f->key.src, s),
			"dst", ip_str(f->key.dst, d), "sport", f->key.sport, "dport", f->key.dport,
			"packets", (json_int_t)f->packets, "bytes", (json_int_t)f->bytes,
			"first_realtime_ns", (json_int_t)tsc_to_ns(ctx, f->first_tsc, now_tsc, now_ns),
			"last_realtime_ns", (json_int_t)tsc_to_ns(ctx, f->last_tsc, now_tsc, now_ns)));
		if (i < mon->top && !ctx->opt->quiet)
			fprintf(stderr, "%s: flow %u %s:%u > %s:%u  %" PRIu64 " packets %" PRIu64
				" bytes\n", ctx->opt->name, f->key.proto, s, f->key.sport, d,
				f->key.dport, f->packets, f->bytes);
	}
	json_object_set_new(ctx->extra, "monitor", json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		"flows", (json_int_t)mon->n_flows, "packets", (json_int_t)pk, "bytes", (json_int_t)by,
		"non_ip_packets", (json_int_t)mon->non_ip_packets,
		"non_ip_bytes", (json_int_t)mon->non_ip_bytes,
		"overflow_packets", (json_int_t)mon->overflow_packets,
		"overflow_bytes", (json_int_t)mon->overflow_bytes));
	if (mon->dump_path) {
		j = json_pack("{s:s, s:I, s:I, s:I, s:I, s:o}", "nf", ctx->opt->name,
			"packets", (json_int_t)pk, "bytes", (json_int_t)by,
			"non_ip_packets", (json_int_t)mon->non_ip_packets,
			"overflow_packets", (json_int_t)mon->overflow_packets, "flows", arr);
		if (json_dump_file(j, mon->dump_path, JSON_INDENT(1)) != 0)
			fprintf(stderr, "mscope-nf-monitor: cannot write %s\n", mon->dump_path);
		json_decref(j);
	} else {
		json_decref(arr);
	}
}

int
main(int argc, char **argv)
{
	struct nf_common o;
	struct nf_ctx ctx;
	struct mon mon;
	char name[RTE_HASH_NAMESIZE];
	struct rte_hash_parameters hp = {
		.name = name,
		.key_len = sizeof(struct mon_key),
		.hash_func = rte_jhash,
	};
	int ret;

	if (nf_help_requested(argc, argv)) {
		usage(stdout);
		return 0;
	}
	ret = nf_eal_init(argc, argv);
	argc -= ret;
	argv += ret;
	nf_common_init(&o, "mscope-nf-monitor");
	memset(&mon, 0, sizeof(mon));
	mon.max_flows = 65536;
	mon.top = 5;
	nf_getopt(&o, argc, argv, mon_opts, own_opt, &mon, usage);

	nf_setup(&ctx, &o, NB_MBUFS);
	snprintf(name, sizeof(name), "mon_%d", (int)getpid());
	hp.entries = mon.max_flows * 2;
	hp.socket_id = (int)rte_socket_id();
	mon.table = rte_hash_create(&hp);
	mon.flows = calloc(mon.max_flows, sizeof(*mon.flows));
	if (!mon.table || !mon.flows)
		rte_exit(EXIT_FAILURE, "mscope-nf-monitor: cannot allocate a %u-flow table\n",
			mon.max_flows);

	nf_loop(&ctx, process, &mon);

	report(&mon, &ctx);
	rte_hash_free(mon.table);
	nf_teardown(&ctx);
	free(mon.flows);
	return 0;
}
