/* SPDX-License-Identifier: BSD-3-Clause */
/* `mscope incidents DIR`: find the time ranges of a recording where packets
 * were held or dropped far beyond normal operation, and diagnose each. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "mscope_incidents.h"
#ifdef MSCOPE_MPI
#include "mpi_incidents.h"
#endif
#include "mscope_report.h"

#define TIMELINE_POINTS 2000

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: mscope incidents DIR [options]\n"
		"\n"
		"Scan a recording of any length (the *.mst traces in DIR) in one streaming\n"
		"pass, find the incidents (time ranges where packets were held at some NF far\n"
		"longer than in normal operation, or dropped), and diagnose each with the\n"
		"analyzer: victims, drops and top culprits per incident.\n"
		"\n"
		"Scan:\n"
		"  --from TIME, --to TIME  scan only this window (from the run's start)\n"
		"  --bin TIME            time bin (default 1ms)\n"
		"  --k X                 a bin stands out above median + X MADs of its node's\n"
		"                        bin p99 residence (default 8)\n"
		"  --factor X            ... and above X times that median (default 3)\n"
		"  --min-excess TIME     ... and above the median + TIME (default 20us)\n"
		"  --gap TIME            merge incidents closer than this (default 10ms)\n"
		"  --min-severity X      drop incidents of lower severity (sum over standing-out\n"
		"                        node-bins of p99/threshold - 1, plus drops; default 2)\n"
		"  --max N               diagnose at most the N most severe incidents (default 100)\n"
		"  --threads N           threads (default 2)\n"
		"  --run ID              only the traces of this run id\n"
		"\n"
		"Diagnosis:\n"
		"  --threshold TIME      victims: end-to-end latency above TIME (default: the p99\n"
		"                        latency of normal operation, measured on a stretch\n"
		"                        without incidents)\n"
		"  --margin TIME         analysed before each incident (default 20ms; half after)\n"
		"  --no-diagnose         find incidents only\n"
		"\n"
		"Output:\n"
		"  --json FILE           the incidents document with every diagnosis\n"
		"  --html FILE           self-contained page: timeline, incidents, diagnoses\n"
		"  -q, --quiet           no table on stdout\n"
		"  -h, --help            this text\n"
		"\n"
		"Progress goes to stderr when it is a terminal. Exit status: 0 ok (also when\n"
		"nothing stood out), 1 bad input, 2 usage error. TIME takes ns, us, ms or s\n"
		"(bare numbers are microseconds).\n");
}

static int
bad(const char *opt, const char *val)
{
	fprintf(stderr, "mscope incidents: bad value for %s: '%s'\n", opt, val);
	return 2;
}

static int
parse_num(const char *s, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	return errno || end == s || *end || !isfinite(*v) ? -1 : 0;
}

static void
progress(void *ctx, uint64_t done, uint64_t total)
{
	(void)ctx;
	fprintf(stderr, "\rscanning: %3.0f%% of %.1f MB", total ? 100.0 * (double)done /
		(double)total : 100.0, (double)total / 1e6);
	fflush(stderr);
}

static void
print_table(const json_t *doc, FILE *out)
{
	const json_t *scan = json_object_get(doc, "scan"), *incs = json_object_get(doc,
		"incidents"), *x;
	const json_t *det = json_object_get(doc, "detection");
	double cpu = json_real_value(json_object_get(scan, "cpu_s"));
	double hops = (double)json_integer_value(json_object_get(scan, "packet_hops"));
	size_t i;

	fprintf(out, "scanned %lld nodes, %.1f M packet-hops, %.3f-%.3f ms, in %.2f s of CPU "
		"(%.1f M hops/s per core)\n",
		(long long)json_integer_value(json_object_get(scan, "nodes")), hops / 1e6,
		json_real_value(json_object_get(scan, "start_us")) / 1e3,
		json_real_value(json_object_get(scan, "end_us")) / 1e3, cpu,
		cpu > 0 ? hops / cpu / 1e6 : 0);
	if (json_object_get(det, "normal_latency_p99_us"))
		fprintf(out, "normal operation: end-to-end latency p99 %.1f us\n",
			json_real_value(json_object_get(det, "normal_latency_p99_us")));
	if (json_array_size(incs) == 0) {
		fprintf(out, "no incidents: no node's residence or drops stood out against its "
			"normal operation\n");
		return;
	}
	fprintf(out, "%zu incident%s", json_array_size(incs), json_array_size(incs) > 1 ? "s" : "");
	if (json_integer_value(json_object_get(det, "not_kept")))
		fprintf(out, " (and %lld less severe ones not kept: --max)",
			(long long)json_integer_value(json_object_get(det, "not_kept")));
	fprintf(out, "\n\n%3s %12s %12s %8s %7s  %-22s %s\n", "#", "start ms", "end ms",
		"victims", "drops", "peak residence at", "top culprits");
	json_array_foreach(incs, i, x) {
		const json_t *cul = json_object_get(x, "culprits"), *c;
		char peak[64], vict[24];
		size_t j;

		snprintf(peak, sizeof(peak), "%.14s %.0fus",
			json_string_value(json_object_get(x, "peak_node")),
			json_real_value(json_object_get(x, "peak_us")));
		if (json_object_get(x, "victims"))
			snprintf(vict, sizeof(vict), "%lld",
				(long long)json_integer_value(json_object_get(x, "victims")));
		else
			snprintf(vict, sizeof(vict), "-");
		fprintf(out, "%3lld %12.3f %12.3f %8s %7lld  %-22s",
			(long long)json_integer_value(json_object_get(x, "id")),
			json_real_value(json_object_get(x, "start_us")) / 1e3,
			json_real_value(json_object_get(x, "end_us")) / 1e3, vict,
			(long long)json_integer_value(json_object_get(x, "drops")), peak);
		if (json_object_get(x, "error"))
			fprintf(out, " not diagnosed: %s", json_string_value(json_object_get(x, "error")));
		else if (cul && json_array_size(cul) == 0)
			fprintf(out, " (no culprit)");
		json_array_foreach(cul, j, c)
			fprintf(out, "%s%lld. %s %s %s (%.1f%%)\n", j ? "                                  "
				"                           " : " ",
				(long long)json_integer_value(json_object_get(c, "rank")),
				json_string_value(json_object_get(c, "nf")),
				json_string_value(json_object_get(c, "kind")),
				json_string_value(json_object_get(c, "flow")),
				100 * json_real_value(json_object_get(c, "share")));
		if (!cul || json_array_size(cul) == 0)
			fputc('\n', out);
	}
}

int
cmd_incidents(int argc, char **argv)
{
	enum { O_FROM = 256, O_TO, O_BIN, O_K, O_FACTOR, O_MINEX, O_GAP, O_MAX, O_THREADS,
		O_RUN, O_THRESHOLD, O_MARGIN, O_NODIAG, O_JSON, O_HTML, O_MINSEV };
	static const struct option longopts[] = {
		{ "bin", required_argument, NULL, O_BIN },
		{ "factor", required_argument, NULL, O_FACTOR },
		{ "from", required_argument, NULL, O_FROM },
		{ "gap", required_argument, NULL, O_GAP },
		{ "help", no_argument, NULL, 'h' },
		{ "html", required_argument, NULL, O_HTML },
		{ "json", required_argument, NULL, O_JSON },
		{ "k", required_argument, NULL, O_K },
		{ "margin", required_argument, NULL, O_MARGIN },
		{ "max", required_argument, NULL, O_MAX },
		{ "min-excess", required_argument, NULL, O_MINEX },
		{ "min-severity", required_argument, NULL, O_MINSEV },
		{ "no-diagnose", no_argument, NULL, O_NODIAG },
		{ "quiet", no_argument, NULL, 'q' },
		{ "run", required_argument, NULL, O_RUN },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "threshold", required_argument, NULL, O_THRESHOLD },
		{ "to", required_argument, NULL, O_TO },
		{ NULL, 0, NULL, 0 },
	};
	struct mscope_inc_opts o;
	struct mscope_an_opts ao;
	struct mscope_an_error err;
	struct mscope_inc_scan *s;
	const char *json = NULL, *html = NULL;
	int c, quiet = 0, diagnose = 1, rc = 0, show;
	double v;
	int64_t ns;
	json_t *doc;

	mscope_inc_opts_init(&o);
	mscope_an_opts_init(&ao);
	optind = 1;
	while ((c = getopt_long(argc, argv, "hq", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case 'q':
			quiet = 1;
			break;
		case O_FROM:
			if (mscope_an_parse_time(optarg, &ns))
				return bad("--from", optarg);
			o.from_ns = ns;
			break;
		case O_TO:
			if (mscope_an_parse_time(optarg, &ns))
				return bad("--to", optarg);
			o.to_ns = ns;
			break;
		case O_BIN:
			if (mscope_an_parse_time(optarg, &ns) || ns < 1000)
				return bad("--bin (at least 1us)", optarg);
			o.bin_us = (double)ns / 1e3;
			break;
		case O_K:
			if (parse_num(optarg, &v) || !(v > 0))
				return bad("--k", optarg);
			o.k_mad = v;
			break;
		case O_FACTOR:
			if (parse_num(optarg, &v) || !(v >= 1))
				return bad("--factor (at least 1)", optarg);
			o.factor = v;
			break;
		case O_MINEX:
			if (mscope_an_parse_time(optarg, &ns))
				return bad("--min-excess", optarg);
			o.min_excess_us = (double)ns / 1e3;
			break;
		case O_GAP:
			if (mscope_an_parse_time(optarg, &ns))
				return bad("--gap", optarg);
			o.gap_us = (double)ns / 1e3;
			break;
		case O_MINSEV:
			if (parse_num(optarg, &v) || v < 0)
				return bad("--min-severity", optarg);
			o.min_severity = v;
			break;
		case O_MAX:
			if (parse_num(optarg, &v) || v < 1 || v > 1e6)
				return bad("--max", optarg);
			o.max_incidents = (size_t)v;
			break;
		case O_THREADS:
			if (parse_num(optarg, &v) || v < 1 || v > 16)
				return bad("--threads (1..16)", optarg);
			o.threads = (int)v;
			ao.threads = (int)v;
			break;
		case O_RUN:
			o.run_id = optarg;
			ao.run_id = optarg;
			break;
		case O_THRESHOLD:
			if (mscope_an_parse_time(optarg, &ns) || ns <= 0)
				return bad("--threshold", optarg);
			ao.threshold_us = (double)ns / 1e3;
			break;
		case O_MARGIN:
			if (mscope_an_parse_time(optarg, &ns))
				return bad("--margin", optarg);
			o.margin_us = (double)ns / 1e3;
			break;
		case O_NODIAG:
			diagnose = 0;
			break;
		case O_JSON:
			json = optarg;
			break;
		case O_HTML:
			html = optarg;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "mscope incidents: expected one directory\n");
		usage(stderr);
		return 2;
	}
	show = isatty(STDERR_FILENO);
	if (show) {
		o.progress = progress;
	}
#ifdef MSCOPE_MPI
	/* mscope-mpi: the ranks scan and diagnose; rank 0 writes what follows */
	(void)err;
	s = NULL;
	rc = mpi_incidents(argv[optind], &o, &ao, diagnose, show, &s);
	if (s == NULL)
		return rc;
#else
	s = mscope_inc_scan(argv[optind], &o, &err);
	if (show)
		fprintf(stderr, "\r%40s\r", "");
	if (s == NULL) {
		fprintf(stderr, "mscope incidents: %s\n", err.text);
		return 1;
	}
	if (mscope_inc_detect(s, &o, &err)) {
		fprintf(stderr, "mscope incidents: %s\n", err.text);
		mscope_inc_free(s);
		return 1;
	}
	if (diagnose && mscope_inc_count(s)) {
		double p99;

		if (ao.threshold_us <= 0) {
			if (mscope_inc_normal_latency(s, &ao, &p99, &err) == 0)
				ao.threshold_us = p99;
			else
				fprintf(stderr, "mscope incidents: warning: %s: victims above each "
					"incident's own p99 latency\n", err.text);
		}
		for (size_t i = 0; i < mscope_inc_count(s); i++) {
			json_t *d;

			if (show)
				fprintf(stderr, "\rdiagnosing incident %zu of %zu", i + 1,
					mscope_inc_count(s));
			if (mscope_inc_diagnose(s, i, &ao, &d, &err)) {
				fprintf(stderr, "%smscope incidents: incident %zu: %s\n", show ? "\n" : "",
					i + 1, err.text);
				/* a cut that could not be written is fatal; an analysis that
				 * failed is reported in the incident */
				continue;
			}
			json_decref(d);
		}
		if (show)
			fprintf(stderr, "\r%40s\r", "");
	}
#endif
	doc = mscope_inc_json(s, TIMELINE_POINTS);
	mscope_inc_free(s);
	if (doc == NULL) {
		fprintf(stderr, "mscope incidents: out of memory\n");
		return 1;
	}
	{
		const json_t *w;
		size_t i;

		json_array_foreach(json_object_get(json_object_get(doc, "scan"), "warnings"), i, w)
			fprintf(stderr, "mscope incidents: warning: %s\n", json_string_value(w));
	}
	if (json && json_dump_file(doc, json, JSON_INDENT(1) | JSON_PRESERVE_ORDER |
			JSON_REAL_PRECISION(10))) {
		fprintf(stderr, "mscope incidents: cannot write %s: %s\n", json, strerror(errno));
		rc = 1;
	}
	if (html) {
		FILE *f = fopen(html, "w");
		if (f == NULL || mscope_report_incidents_html(doc, f) || fclose(f)) {
			fprintf(stderr, "mscope incidents: cannot write %s: %s\n", html,
				strerror(errno));
			rc = 1;
		}
	}
	if (!quiet)
		print_table(doc, stdout);
	json_decref(doc);
	return rc;
}
