/* SPDX-License-Identifier: BSD-3-Clause */
/* `mscope export DIR`: the packet-hops of a window as CSV or JSON lines, as
 * the analyzer sees them (matched arrivals, dequeues, departures, waits). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "mscope_analyzer.h"

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: mscope export DIR [options]\n"
		"\n"
		"Write the packet-hops (one packet at one node) of the trace files in DIR as\n"
		"the analyzer rebuilt them: packet identity, node, arrival, dequeue,\n"
		"departure, wait, flow and drop, one row per hop.\n"
		"\n"
		"  --csv                 CSV with a header line (default)\n"
		"  --jsonl               one JSON object per line\n"
		"  -o, --output FILE     write to FILE (default: stdout)\n"
		"  --from TIME, --to TIME  hops that arrived in this window (from the run's start)\n"
		"  --node ID             only this node (e.g. fw1:p0q0, or an NF name: all its\n"
		"                        queues); repeatable\n"
		"  --run ID              only the traces of this run id\n"
		"  --threads N           worker threads for loading (default 2)\n"
		"  -h, --help            this text\n"
		"\n"
		"Columns: packet (ingress wire ID), ingress_us, node, nf, wire_in, wire_out,\n"
		"arrival_us, dequeue_us, departure_us, wait_us, drop, drop_us, proto, src,\n"
		"sport, dst, dport, approx (arrival approximated). Times are microseconds from\n"
		"the run's start; empty (CSV) or null (JSON) when not applicable. Rows go node\n"
		"by node, in each node's rx order. Exit status: 0 ok, 1 bad input or write\n"
		"error, 2 usage error.\n");
}

struct out {
	FILE *f;
	int jsonl;
	const struct mscope_analysis *an;
	const char **ids, **nfs;
	uint64_t rows;
};

static void
num(FILE *f, double v, int jsonl)
{
	if (isnan(v))
		fputs(jsonl ? "null" : "", f);
	else
		fprintf(f, "%.3f", v);
}

static void
addr(char *buf, size_t len, const struct mscope_flow_key *k, const uint8_t *a)
{
	if (k->family == 4)
		inet_ntop(AF_INET, a, buf, (socklen_t)len);
	else if (k->family == 6)
		inet_ntop(AF_INET6, a, buf, (socklen_t)len);
	else
		buf[0] = '\0';
}

static int
row(void *ctx, const struct mscope_an_hop *h)
{
	struct out *o = ctx;
	FILE *f = o->f;
	char src[64], dst[64];
	const struct mscope_flow_key *k = h->flow;

	addr(src, sizeof(src), k, k->src);
	addr(dst, sizeof(dst), k, k->dst);
	if (o->jsonl) {
		/* node ids and NF names are escaped at load; flows are numbers and addresses */
		fprintf(f, "{\"packet\":%u,\"ingress_us\":%.3f,\"node\":\"%s\",\"nf\":\"%s\","
			"\"wire_in\":%u,\"wire_out\":%u,\"arrival_us\":", h->packet_wire, h->ingress_us,
			o->ids[h->node], o->nfs[h->node], h->wire_in, h->wire_out);
		num(f, h->arrival_us, 1);
		fputs(",\"dequeue_us\":", f);
		num(f, h->dequeue_us, 1);
		fputs(",\"departure_us\":", f);
		num(f, h->departure_us, 1);
		fputs(",\"wait_us\":", f);
		num(f, h->wait_us, 1);
		if (h->drop)
			fprintf(f, ",\"drop\":\"%s\",\"drop_us\":", h->drop);
		else
			fputs(",\"drop\":null,\"drop_us\":", f);
		num(f, h->drop_us, 1);
		if (k->family)
			fprintf(f, ",\"proto\":%u,\"src\":\"%s\",\"sport\":%u,\"dst\":\"%s\",\"dport\":%u",
				k->proto, src, k->sport, dst, k->dport);
		else
			fputs(",\"proto\":null,\"src\":null,\"sport\":null,\"dst\":null,\"dport\":null", f);
		fprintf(f, ",\"approx\":%s}\n", h->arrival_approx ? "true" : "false");
	} else {
		fprintf(f, "%u,%.3f,%s,%s,%u,%u,", h->packet_wire, h->ingress_us, o->ids[h->node],
			o->nfs[h->node], h->wire_in, h->wire_out);
		num(f, h->arrival_us, 0);
		fputc(',', f);
		num(f, h->dequeue_us, 0);
		fputc(',', f);
		num(f, h->departure_us, 0);
		fputc(',', f);
		num(f, h->wait_us, 0);
		fprintf(f, ",%s,", h->drop ? h->drop : "");
		num(f, h->drop_us, 0);
		if (k->family)
			fprintf(f, ",%u,%s,%u,%s,%u", k->proto, src, k->sport, dst, k->dport);
		else
			fputs(",,,,,", f);
		fprintf(f, ",%d\n", h->arrival_approx);
	}
	o->rows++;
	return ferror(f) ? -1 : 0;
}

/* Node ids and NF names in CSV/JSON: the analyzer keeps them printable;
 * anything that would break a field is replaced. */
static char *
safe(const char *s)
{
	char *c = strdup(s ? s : "?");

	for (char *p = c; p && *p; p++)
		if (*p == ',' || *p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
			*p = '_';
	return c;
}

int
cmd_export(int argc, char **argv)
{
	enum { O_CSV = 256, O_JSONL, O_FROM, O_TO, O_NODE, O_RUN, O_THREADS };
	static const struct option longopts[] = {
		{ "csv", no_argument, NULL, O_CSV },
		{ "from", required_argument, NULL, O_FROM },
		{ "help", no_argument, NULL, 'h' },
		{ "jsonl", no_argument, NULL, O_JSONL },
		{ "node", required_argument, NULL, O_NODE },
		{ "output", required_argument, NULL, 'o' },
		{ "run", required_argument, NULL, O_RUN },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "to", required_argument, NULL, O_TO },
		{ NULL, 0, NULL, 0 },
	};
	struct mscope_an_opts opts;
	struct mscope_an_error err;
	struct mscope_analysis *an;
	struct out o = { .f = stdout };
	const char *output = NULL, *nodes[64];
	size_t nnodes = 0, n;
	int64_t from = 0, to = -1, ns;
	int c, rc = 0;
	char *end;
	long v;

	mscope_an_opts_init(&opts);
	optind = 1;
	while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case 'o':
			output = optarg;
			break;
		case O_CSV:
			o.jsonl = 0;
			break;
		case O_JSONL:
			o.jsonl = 1;
			break;
		case O_FROM:
			if (mscope_an_parse_time(optarg, &ns)) {
				fprintf(stderr, "mscope export: bad value for --from: '%s'\n", optarg);
				return 2;
			}
			from = ns;
			break;
		case O_TO:
			if (mscope_an_parse_time(optarg, &ns)) {
				fprintf(stderr, "mscope export: bad value for --to: '%s'\n", optarg);
				return 2;
			}
			to = ns;
			break;
		case O_NODE:
			if (nnodes == sizeof(nodes) / sizeof(nodes[0])) {
				fprintf(stderr, "mscope export: at most 64 --node\n");
				return 2;
			}
			nodes[nnodes++] = optarg;
			break;
		case O_RUN:
			opts.run_id = optarg;
			break;
		case O_THREADS:
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || v < 1 || v > 16) {
				fprintf(stderr, "mscope export: bad value for --threads (1..16): '%s'\n",
					optarg);
				return 2;
			}
			opts.threads = (int)v;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "mscope export: expected one directory\n");
		usage(stderr);
		return 2;
	}
	an = mscope_an_open(argv[optind], &opts, &err);
	if (an == NULL) {
		fprintf(stderr, "mscope export: %s\n", err.text);
		return 1;
	}
	n = mscope_an_node_count(an);
	o.an = an;
	o.ids = calloc(n ? n : 1, sizeof(*o.ids));
	o.nfs = calloc(n ? n : 1, sizeof(*o.nfs));
	if (o.ids == NULL || o.nfs == NULL) {
		fprintf(stderr, "mscope export: out of memory\n");
		rc = 1;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct mscope_an_node_info ni;

		mscope_an_node_info(an, i, &ni);
		o.ids[i] = safe(ni.id);
		o.nfs[i] = safe(ni.nf);
	}
	for (size_t j = 0; j < nnodes; j++) {
		int any = 0;

		for (size_t i = 0; i < n; i++)
			any |= !strcmp(o.ids[i], nodes[j]) || !strcmp(o.nfs[i], nodes[j]);
		if (!any) {
			fprintf(stderr, "mscope export: no node or NF '%s' in %s\n", nodes[j],
				argv[optind]);
			rc = 1;
			goto out;
		}
	}
	for (const char *const *w = mscope_an_warnings(an); *w; w++)
		fprintf(stderr, "mscope export: warning: %s\n", *w);
	if (output && (o.f = fopen(output, "w")) == NULL) {
		fprintf(stderr, "mscope export: cannot write %s: %s\n", output, strerror(errno));
		rc = 1;
		goto out;
	}
	if (!o.jsonl)
		fputs("packet,ingress_us,node,nf,wire_in,wire_out,arrival_us,dequeue_us,"
			"departure_us,wait_us,drop,drop_us,proto,src,sport,dst,dport,approx\n", o.f);
	for (size_t i = 0; i < n && rc == 0; i++) {
		int keep = nnodes == 0;

		for (size_t j = 0; j < nnodes; j++)
			keep |= !strcmp(o.ids[i], nodes[j]) || !strcmp(o.nfs[i], nodes[j]);
		if (keep && mscope_an_hops(an, (int)i, from, to, row, &o, &err)) {
			fprintf(stderr, "mscope export: cannot write %s: %s\n",
				output ? output : "stdout", strerror(errno));
			rc = 1;
		}
	}
	if (fflush(o.f) || ferror(o.f)) {
		fprintf(stderr, "mscope export: cannot write %s: %s\n", output ? output : "stdout",
			strerror(errno));
		rc = 1;
	}
	if (output && fclose(o.f) && rc == 0) {
		fprintf(stderr, "mscope export: cannot write %s: %s\n", output, strerror(errno));
		rc = 1;
	}
out:
	for (size_t i = 0; o.ids && i < n; i++) {
		free((void *)o.ids[i]);
		free((void *)o.nfs[i]);
	}
	free(o.ids);
	free(o.nfs);
	mscope_an_close(an);
	return rc;
}
