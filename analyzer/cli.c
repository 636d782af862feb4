/* SPDX-License-Identifier: BSD-3-Clause */
/* `mscope analyze DIR [options]`: diagnose the slow and dropped packets of a
 * recorded (or simulated) run and print the ranked culprits. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "mscope_analyzer.h"
#include "mscope_report.h"

#define DEFAULT_TOP 10

struct cli_out {
	const char *json, *relations, *html;
	int top;
	int quiet;
};

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: mscope analyze DIR [options]\n"
		"\n"
		"Diagnose why packets were slow or dropped, from the trace files (*.mst)\n"
		"in DIR, and rank the culprits (NF, processing or source, flows).\n"
		"\n"
		"Victims (default: end-to-end latency above the 99th percentile of the run, or of\n"
		"the window's packets with --from/--to, and drops):\n"
		"  --threshold TIME      latency threshold, e.g. 200us, 1.5ms (overrides --percentile)\n"
		"  --percentile P        latency percentile (default 99)\n"
		"  --flow FILTER         only victims of matching flows, e.g. 'proto=udp dport=53\n"
		"                        src=10.1.0.0/16' (keys src dst sport dport proto)\n"
		"  --from TIME, --to TIME  only victims that entered in this window (from run start,\n"
		"                        or wall-clock: 14:32:05.250, 2026-12-08T14:32:05Z); only\n"
		"                        the window and its context are read and analysed\n"
		"  --context TIME        history analysed before the window (rates, usual times)\n"
		"                        and time after it for its victims to leave (default 100ms)\n"
		"  --no-index            with a window: read the traces whole (same results, slower)\n"
		"  --no-drops            do not take dropped packets as victims\n"
		"\n"
		"Method:\n"
		"  --rate NF=MPPS        peak rate of an NF or node (repeatable; default: estimated)\n"
		"  --topology FILE       topology JSON (nfs[].name, rate_mpps; links[] constrain matching)\n"
		"  --dag ours|paper      DAG variant: per-path expected timespan (ours, default)\n"
		"                        or one shared expected timespan (paper)\n"
		"  --source-flows excess|packets  source blame by each flow's excess over its\n"
		"                        average rate (default) or by its packets in the PreSet\n"
		"  --min-wait TIME       smallest wait that counts as queuing (default 5us)\n"
		"  --no-post-wait        no processing blame for the service shortfall after the\n"
		"                        victim arrived (Microscope's S_i + S_p = Q only)\n"
		"  --epsilon X           recursion stops below X packets of score (default 0.01)\n"
		"  --max-flows N         culprit flows kept per culprit per victim (default 8)\n"
		"  --match-window TIME   longest upstream-tx to rx time when matching (default 2s)\n"
		"  --run ID              analyse only the traces of this run id\n"
		"  --threads N           worker threads (default 2)\n"
		"\n"
		"Output:\n"
		"  --json FILE           report document (JSON)\n"
		"  --relations FILE      one JSON line per diagnosed victim with its culprits\n"
		"  --html FILE           self-contained HTML report\n"
		"  --packet NODE@WIRE    explain one packet at one node (e.g. fw1:p0q0@123456):\n"
		"                        its local scores and culprits, then exit\n"
		"  --top N               culprits shown in the table (default %d)\n"
		"  --af-threshold F      aggregation threshold, fraction of all blame (default 0.05)\n"
		"  -q, --quiet           no table on stdout\n"
		"  -h, --help            this text\n"
		"\n"
		"Exit status: 0 ok, 1 bad input, 2 usage error. TIME takes ns, us, ms or s\n"
		"(bare numbers are microseconds).\n", DEFAULT_TOP);
}

static int
parse_double(const char *s, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	return errno || end == s || *end || !isfinite(*v) ? -1 : 0;
}

static int
bad(const char *opt, const char *val)
{
	fprintf(stderr, "mscope analyze: bad value for %s: '%s'\n", opt, val);
	return 2;
}

/* Per-node table: the peak rate used (and where it came from) is the most
 * sensitive parameter, so it is always shown. */
static void
print_nodes(const json_t *doc, FILE *out)
{
	const json_t *nodes = json_object_get(doc, "nodes"), *n;
	size_t i;
	int approx = 0;

	fprintf(out, "\n%-20s %9s %-9s %9s %8s %7s %10s %8s\n", "node", "peak Mpps", "rate from",
		"packets", "victims", "drops", "wait p99", "qlen max");
	json_array_foreach(nodes, i, n) {
		if (!strcmp(json_string_value(json_object_get(n, "role")), "source"))
			continue;
		fprintf(out, "%-20.20s %9.3f %-9.9s %9lld %8lld %7lld %8.1fus %8lld%s\n",
			json_string_value(json_object_get(n, "id")),
			json_real_value(json_object_get(n, "peak_rate_mpps")),
			json_string_value(json_object_get(n, "peak_rate_from")),
			(long long)json_integer_value(json_object_get(n, "packets")),
			(long long)json_integer_value(json_object_get(n, "victims")),
			(long long)json_integer_value(json_object_get(n, "drops")),
			json_real_value(json_object_get(n, "wait_p99_us")),
			(long long)json_integer_value(json_object_get(n, "qlen_max")),
			strcmp(json_string_value(json_object_get(n, "arrivals")), "approximated") ?
				"" : " *");
		approx |= !strcmp(json_string_value(json_object_get(n, "arrivals")), "approximated");
	}
	if (approx)
		fprintf(out, "* arrivals approximated from rx bursts (no upstream trace)\n");
}

/* No victims: which threshold judged that, and how to choose another. */
static void
print_no_victims(const json_t *doc, FILE *out)
{
	const json_t *sum = json_object_get(doc, "summary");
	const char *from = json_string_value(json_object_get(sum, "latency_threshold_from"));

	if (json_integer_value(json_object_get(sum, "victims")) != 0)
		return;
	fprintf(out, "\nno victims: no packet's end-to-end latency exceeded %.1f us (%s)%s;\n"
		"choose the latency that makes a victim with --threshold TIME (e.g. --threshold 100us)\n"
		"or another percentile with --percentile P\n",
		json_real_value(json_object_get(sum, "latency_threshold_us")), from ? from : "?",
		json_is_true(json_object_get(sum, "drops_are_victims")) ? ", and none was dropped" : "");
}

static int
write_outputs(struct mscope_analysis *an, const struct cli_out *o)
{
	json_t *doc = mscope_an_json(an);
	int rc = 0;

	if (doc == NULL) {
		fprintf(stderr, "mscope analyze: out of memory\n");
		return 1;
	}
	if (o->json && json_dump_file(doc, o->json, JSON_INDENT(1) | JSON_PRESERVE_ORDER |
			JSON_REAL_PRECISION(10))) {
		fprintf(stderr, "mscope analyze: cannot write %s: %s\n", o->json, strerror(errno));
		rc = 1;
	}
	if (o->relations) {
		FILE *f = fopen(o->relations, "w");
		if (f == NULL || mscope_an_write_relations(an, f) || fclose(f)) {
			fprintf(stderr, "mscope analyze: cannot write %s: %s\n", o->relations,
				strerror(errno));
			rc = 1;
		}
	}
	if (o->html) {
		FILE *f = fopen(o->html, "w");
		if (f == NULL || mscope_report_html(doc, f) || fclose(f)) {
			fprintf(stderr, "mscope analyze: cannot write %s: %s\n", o->html,
				strerror(errno));
			rc = 1;
		}
	}
	if (!o->quiet)
		mscope_report_text(doc, stdout, o->top);
	if (!o->quiet)
		print_nodes(doc, stdout);
	print_no_victims(doc, o->quiet ? stderr : stdout);
	json_decref(doc);
	return rc;
}

/* --packet NODE@WIRE: one packet's local scores and culprits. */
static int
explain_packet(struct mscope_analysis *an, const char *spec)
{
	char node[128];
	const char *at = strrchr(spec, '@');
	char *end;
	unsigned long wire;
	struct mscope_an_queued q;
	struct mscope_an_culprit *c;
	struct mscope_an_error err;
	size_t n;
	int k;

	snprintf(node, sizeof(node), "%.*s", (int)(at - spec), spec);
	errno = 0;
	wire = strtoul(at + 1, &end, 0);
	if (errno || *end || end == at + 1 || wire > UINT32_MAX) {
		fprintf(stderr, "mscope analyze: --packet: bad wire ID '%s'\n", at + 1);
		return 2;
	}
	k = mscope_an_node_find(an, node);
	if (k < 0) {
		fprintf(stderr, "mscope analyze: --packet: no node '%s'\n", node);
		return 1;
	}
	if (mscope_an_local_scores(an, k, (uint32_t)wire, &q) ||
			mscope_an_explain(an, k, (uint32_t)wire, &c, &n, &err)) {
		fprintf(stderr, "mscope analyze: --packet: no packet with wire ID %lu at %s\n",
			wire, node);
		return 1;
	}
	printf("%s wire %lu: waited %.1f us; queuing period %.1f us, n_i %u, n_p %u, "
		"S_i %.2f, S_p %.2f, S_w %.2f\n", node, wire, q.wait_us, q.period_us, q.n_i,
		q.n_p, q.s_i, q.s_p, q.s_w);
	for (size_t i = 0; i < n; i++) {
		char buf[160];
		printf("  %8.2f  %-10s %-10s %s\n", c[i].score, c[i].nf,
			c[i].kind == MSCOPE_AN_SOURCE ? "source" : "processing",
			c[i].has_flow ? mscope_flow_format(&c[i].flow, buf, sizeof(buf)) : "*");
	}
	free(c);
	return 0;
}

int
cmd_analyze(int argc, char **argv)
{
	enum { O_THRESHOLD = 256, O_PERCENTILE, O_FLOW, O_FROM, O_TO, O_NODROPS, O_RATE,
		O_TOPOLOGY, O_DAG, O_SRCFLOWS, O_MINWAIT, O_EPS, O_MAXFLOWS, O_WINDOW, O_RUN,
		O_THREADS, O_JSON, O_REL, O_HTML, O_TOP, O_AFT, O_NOPOST, O_PACKET, O_CONTEXT,
		O_NOINDEX };
	static const struct option longopts[] = {
		{ "af-threshold", required_argument, NULL, O_AFT },
		{ "context", required_argument, NULL, O_CONTEXT },
		{ "no-index", no_argument, NULL, O_NOINDEX },
		{ "dag", required_argument, NULL, O_DAG },
		{ "epsilon", required_argument, NULL, O_EPS },
		{ "flow", required_argument, NULL, O_FLOW },
		{ "from", required_argument, NULL, O_FROM },
		{ "help", no_argument, NULL, 'h' },
		{ "html", required_argument, NULL, O_HTML },
		{ "json", required_argument, NULL, O_JSON },
		{ "match-window", required_argument, NULL, O_WINDOW },
		{ "max-flows", required_argument, NULL, O_MAXFLOWS },
		{ "min-wait", required_argument, NULL, O_MINWAIT },
		{ "no-drops", no_argument, NULL, O_NODROPS },
		{ "no-post-wait", no_argument, NULL, O_NOPOST },
		{ "packet", required_argument, NULL, O_PACKET },
		{ "percentile", required_argument, NULL, O_PERCENTILE },
		{ "quiet", no_argument, NULL, 'q' },
		{ "rate", required_argument, NULL, O_RATE },
		{ "relations", required_argument, NULL, O_REL },
		{ "run", required_argument, NULL, O_RUN },
		{ "source-flows", required_argument, NULL, O_SRCFLOWS },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "threshold", required_argument, NULL, O_THRESHOLD },
		{ "to", required_argument, NULL, O_TO },
		{ "top", required_argument, NULL, O_TOP },
		{ "topology", required_argument, NULL, O_TOPOLOGY },
		{ NULL, 0, NULL, 0 },
	};
	struct mscope_an_opts opts;
	struct mscope_an_error err;
	struct mscope_an_rate *rates = NULL;
	struct cli_out out = { .top = DEFAULT_TOP };
	const char *packet = NULL;
	struct mscope_analysis *an;
	size_t nrates = 0;
	int c, rc;
	double v;
	int64_t ns;

	mscope_an_opts_init(&opts);
	optind = 1;
	while ((c = getopt_long(argc, argv, "hq", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			free(rates);
			return 0;
		case 'q':
			out.quiet = 1;
			break;
		case O_THRESHOLD:
			if (mscope_an_parse_time(optarg, &ns) || ns <= 0)
				return free(rates), bad("--threshold", optarg);
			opts.threshold_us = (double)ns / 1e3;
			break;
		case O_PERCENTILE:
			if (parse_double(optarg, &v) || v < 0 || v > 100)
				return free(rates), bad("--percentile", optarg);
			opts.percentile = v;
			break;
		case O_FLOW:
			if (mscope_an_filter_parse(optarg, &opts.filter, &err)) {
				fprintf(stderr, "mscope analyze: --flow: %s\n", err.text);
				free(rates);
				return 2;
			}
			break;
		case O_FROM:
			if (strchr(optarg, ':') && mscope_an_parse_clock(optarg, 0, &ns) == 0)
				opts.from_clock = optarg;   /* wall clock: resolved by the traces' anchor */
			else if (mscope_an_parse_time(optarg, &ns))
				return free(rates), bad("--from", optarg);
			else
				opts.from_ns = ns;
			break;
		case O_TO:
			if (strchr(optarg, ':') && mscope_an_parse_clock(optarg, 0, &ns) == 0)
				opts.to_clock = optarg;
			else if (mscope_an_parse_time(optarg, &ns))
				return free(rates), bad("--to", optarg);
			else
				opts.to_ns = ns;
			break;
		case O_CONTEXT:
			if (mscope_an_parse_time(optarg, &ns) || ns < 0)
				return free(rates), bad("--context", optarg);
			opts.context_ns = ns;
			break;
		case O_NOINDEX:
			opts.no_index = 1;
			break;
		case O_PACKET:
			if (strchr(optarg, '@') == NULL)
				return free(rates), bad("--packet (NODE@WIRE)", optarg);
			packet = optarg;
			break;
		case O_NOPOST:
			opts.no_post_wait = 1;
			break;
		case O_NODROPS:
			opts.no_drops = 1;
			break;
		case O_RATE: {
			const char *eq = strrchr(optarg, '=');
			struct mscope_an_rate *r;

			if (eq == NULL || eq == optarg || (size_t)(eq - optarg) >= sizeof(r->name) ||
					parse_double(eq + 1, &v) || !(v > 0))
				return free(rates), bad("--rate (NF=MPPS)", optarg);
			r = realloc(rates, (nrates + 1) * sizeof(*rates));
			if (r == NULL) {
				free(rates);
				return 1;
			}
			rates = r;
			memset(&rates[nrates], 0, sizeof(rates[nrates]));
			memcpy(rates[nrates].name, optarg, (size_t)(eq - optarg));
			rates[nrates].mpps = v;
			nrates++;
			break;
		}
		case O_TOPOLOGY:
			opts.topology = optarg;
			break;
		case O_DAG:
			if (!strcmp(optarg, "ours"))
				opts.dag = MSCOPE_AN_DAG_OURS;
			else if (!strcmp(optarg, "paper"))
				opts.dag = MSCOPE_AN_DAG_PAPER;
			else
				return free(rates), bad("--dag (ours|paper)", optarg);
			break;
		case O_SRCFLOWS:
			if (!strcmp(optarg, "packets"))
				opts.src_flows = MSCOPE_AN_FLOWS_PACKETS;
			else if (!strcmp(optarg, "excess"))
				opts.src_flows = MSCOPE_AN_FLOWS_EXCESS;
			else
				return free(rates), bad("--source-flows (packets|excess)", optarg);
			break;
		case O_MINWAIT:
			if (mscope_an_parse_time(optarg, &ns))
				return free(rates), bad("--min-wait", optarg);
			opts.min_wait_us = (double)ns / 1e3;
			break;
		case O_EPS:
			if (parse_double(optarg, &v) || !(v > 0))
				return free(rates), bad("--epsilon", optarg);
			opts.epsilon = v;
			break;
		case O_MAXFLOWS:
			if (parse_double(optarg, &v) || v < 1 || v > 100000)
				return free(rates), bad("--max-flows", optarg);
			opts.max_flows = (int)v;
			break;
		case O_WINDOW:
			if (mscope_an_parse_time(optarg, &ns) || ns <= 0)
				return free(rates), bad("--match-window", optarg);
			opts.match_window_us = (double)ns / 1e3;
			break;
		case O_RUN:
			opts.run_id = optarg;
			break;
		case O_THREADS:
			if (parse_double(optarg, &v) || v < 1 || v > 16)
				return free(rates), bad("--threads (1..16)", optarg);
			opts.threads = (int)v;
			break;
		case O_JSON:
			out.json = optarg;
			break;
		case O_REL:
			out.relations = optarg;
			break;
		case O_HTML:
			out.html = optarg;
			break;
		case O_TOP:
			if (parse_double(optarg, &v) || v < 1 || v > 1e6)
				return free(rates), bad("--top", optarg);
			out.top = (int)v;
			break;
		case O_AFT:
			if (parse_double(optarg, &v) || v < 0 || v >= 1)
				return free(rates), bad("--af-threshold", optarg);
			opts.af_threshold = v;
			break;
		default:
			usage(stderr);
			free(rates);
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "mscope analyze: expected one directory\n");
		usage(stderr);
		free(rates);
		return 2;
	}
	opts.rates = rates;
	opts.nrates = nrates;

	an = mscope_an_open(argv[optind], &opts, &err);
	free(rates);
	if (an == NULL) {
		fprintf(stderr, "mscope analyze: %s\n", err.text);
		return 1;
	}
	if (packet) {
		rc = explain_packet(an, packet);
		mscope_an_close(an);
		return rc;
	}
	if (mscope_an_diagnose(an, &err)) {
		fprintf(stderr, "mscope analyze: %s\n", err.text);
		mscope_an_close(an);
		return 1;
	}
	for (const char *const *w = mscope_an_warnings(an); *w; w++)
		fprintf(stderr, "mscope analyze: warning: %s\n", *w);
	mscope_an_release(an);  /* the reports need no per-packet data */
	rc = write_outputs(an, &out);
	mscope_an_close(an);
	return rc;
}
