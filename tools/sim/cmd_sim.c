/* SPDX-License-Identifier: BSD-3-Clause */
/* `mscope sim SCENARIO.json -o DIR`: simulate an NF graph, write its traces and truth. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "commands.h"
#include "mscope_sim.h"

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: mscope sim SCENARIO.json -o DIR [options]\n\n"
		"Simulate a graph of NFs (deterministic discrete events) and write one trace per\n"
		"NF (DIR/<nf>.mst), the traffic source (DIR/source.mst), DIR/topology.json,\n"
		"DIR/truth.json (faults, culprits, victim counts) and DIR/victims.jsonl.\n\n"
		"output:\n"
		"  -o, --out DIR            output directory (created if missing)\n"
		"  -n, --dry-run            check the scenario only (no -o); with --json print it\n"
		"                           with every default filled in (what tools/mscope-chain runs)\n"
		"      --model-only         write nothing (no -o): run the model and time it\n"
		"  -f, --force              replace the output files of an earlier run in DIR\n"
		"  -z, --zstd-level N       compression level of the trace files (default 1)\n"
		"run:\n"
		"  -s, --seed N             use seed N instead of the scenario's\n"
		"      --no-jitter          serve every packet in exactly 1/rate\n"
		"  -x, --disable-fault I    do not inject fault I (0-based; repeatable)\n"
		"victims:\n"
		"      --no-victims         skip the per-fault re-runs (faster; no victim counts)\n"
		"  -t, --threshold-us X     extra end-to-end delay that makes a victim (default:\n"
		"                           the scenario's victim_threshold_us, else 50)\n"
		"      --victim-horizon-ms H  stop looking for a fault's victims H ms after it\n"
		"                           ends (faster on long runs; default: until the re-run\n"
		"                           is in the main run's state again, or to the end)\n"
		"  -j, --threads N          threads for the re-runs, alongside the main run\n"
		"                           (default: one per CPU; the output does not depend on it)\n"
		"report:\n"
		"  -q, --quiet              print nothing on success\n"
		"      --json               print the summary as JSON\n"
		"  -h, --help               this text\n\n"
		"Scenario format, truth.json and victims.jsonl: docs/simulator.md.\n");
}

static int
parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (!*s || *end || errno || *s == '-')
		return -1;
	*out = v;
	return 0;
}

static void
print_summary(const char *outdir, const struct mscope_sim_scenario *s,
		const struct mscope_sim_opts *o, const struct mscope_sim_stats *st, int as_json)
{
	char file[4096];
	json_t *truth = NULL;
	double mhops = st->sim_seconds > 0 ? (double)st->hops / st->sim_seconds / 1e6 : 0;

	if (outdir) {
		snprintf(file, sizeof(file), "%s/truth.json", outdir);
		truth = json_load_file(file, 0, NULL);
	}
	if (as_json) {
		json_t *j = json_pack("{s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, "
			"s:f, s:f}",
			"scenario", mscope_sim_name(s),
			"seed", (json_int_t)(o->override_seed ? o->seed : mscope_sim_seed(s)),
			"out", outdir ? outdir : "", "packets", (json_int_t)st->packets, "hops", (json_int_t)st->hops,
			"drops", (json_int_t)st->drops, "delivered", (json_int_t)st->egress,
			"victims", (json_int_t)st->victims, "trace_bytes", (json_int_t)st->trace_bytes,
			"rerun_hops", (json_int_t)st->rerun_hops,
			"seconds", st->sim_seconds, "cpu_seconds", st->sim_cpu_seconds,
			"rerun_seconds", st->rerun_seconds, "mhops_per_s", mhops,
			"mhops_per_cpu_s", st->sim_cpu_seconds > 0 ?
				(double)st->hops / st->sim_cpu_seconds / 1e6 : 0.0);
		if (truth)
			json_object_set(j, "faults", json_object_get(truth, "faults"));
		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
		putchar('\n');
		json_decref(j);
		json_decref(truth);
		return;
	}
	printf("%s (seed %" PRIu64 "): %" PRIu64 " packets, %" PRIu64 " hops, %" PRIu64
		" dropped, %" PRIu64 " delivered; %.2f s (%.2f s CPU), %.2f M hops/s; %.1f MB of "
		"traces%s%s\n",
		mscope_sim_name(s), o->override_seed ? o->seed : mscope_sim_seed(s), st->packets,
		st->hops, st->drops, st->egress, st->sim_seconds, st->sim_cpu_seconds, mhops,
		(double)st->trace_bytes / 1e6, outdir ? " in " : " (dry run)", outdir ? outdir : "");
	json_t *faults = truth ? json_object_get(truth, "faults") : NULL;
	size_t i;
	json_t *f;
	json_array_foreach(faults, i, f) {
		const json_t *c = json_object_get(f, "culprit");
		printf("  fault %lld %-9s %s (%s) %g-%g us",
			(long long)json_integer_value(json_object_get(f, "id")),
			json_string_value(json_object_get(f, "kind")),
			json_string_value(json_object_get(c, "nf")),
			json_string_value(json_object_get(c, "kind")),
			json_number_value(json_object_get(f, "start_us")),
			json_number_value(json_object_get(f, "end_us")));
		if (json_object_get(f, "victims"))
			printf(": %lld victims (%lld dropped)\n",
				(long long)json_integer_value(json_object_get(f, "victims")),
				(long long)json_integer_value(json_object_get(f, "victims_dropped")));
		else
			printf("\n");
	}
	json_decref(truth);
}

/* --dry-run: the scenario is valid; print it (--json) or a one-line summary. */
static int
dry_run(const char *file, struct mscope_sim_scenario *s, int as_json, int quiet)
{
	int rc = 0;

	if (as_json) {
		json_t *doc = mscope_sim_scenario_json(s);
		if (doc == NULL || json_dumpf(doc, stdout, JSON_INDENT(2) |
				JSON_REAL_PRECISION(15)) < 0 || putchar('\n') == EOF ||
				fflush(stdout) == EOF) {
			fprintf(stderr, "mscope sim: %s: cannot print the scenario\n", file);
			rc = 1;
		}
		json_decref(doc);
	} else if (!quiet) {
		printf("%s: valid scenario \"%s\": %u NFs, %u faults\n", file, mscope_sim_name(s),
			mscope_sim_nf_count(s), mscope_sim_fault_count(s));
	}
	mscope_sim_free(s);
	return rc;
}

int
cmd_sim(int argc, char **argv)
{
	enum { OPT_NO_JITTER = 256, OPT_NO_VICTIMS, OPT_JSON, OPT_MODEL_ONLY, OPT_HORIZON };
	static const struct option longopts[] = {
		{ "disable-fault", required_argument, NULL, 'x' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "model-only", no_argument, NULL, OPT_MODEL_ONLY },
		{ "victim-horizon-ms", required_argument, NULL, OPT_HORIZON },
		{ "no-jitter", no_argument, NULL, OPT_NO_JITTER },
		{ "no-victims", no_argument, NULL, OPT_NO_VICTIMS },
		{ "out", required_argument, NULL, 'o' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "threads", required_argument, NULL, 'j' },
		{ "seed", required_argument, NULL, 's' },
		{ "threshold-us", required_argument, NULL, 't' },
		{ "zstd-level", required_argument, NULL, 'z' },
		{ NULL, 0, NULL, 0 },
	};
	struct mscope_sim_opts o = MSCOPE_SIM_OPTS_DEFAULT;
	const char *outdir = NULL;
	int quiet = 0, as_json = 0, dry = 0, model_only = 0, c;
	uint64_t v;
	uint64_t disable_list[MSCOPE_SIM_MAX_FAULTS];
	unsigned n_disable = 0;
	char *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "fhj:no:qs:t:x:z:", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o.overwrite = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'j':
			if (parse_u64(optarg, &v) < 0 || v < 1 || v > 64) {
				fprintf(stderr, "mscope sim: --threads: '%s' is not a number 1-64\n", optarg);
				return 2;
			}
			o.threads = (int)v;
			break;
		case 'n':
			dry = 1;
			break;
		case 'o':
			outdir = optarg;
			break;
		case 'q':
			quiet = 1;
			break;
		case 's':
			if (parse_u64(optarg, &v) < 0) {
				fprintf(stderr, "mscope sim: --seed: '%s' is not a non-negative integer\n",
					optarg);
				return 2;
			}
			o.override_seed = 1;
			o.seed = v;
			break;
		case 't':
			errno = 0;
			o.victim_threshold_us = strtod(optarg, &end);
			if (!*optarg || *end || errno || !(o.victim_threshold_us > 0)) {
				fprintf(stderr, "mscope sim: --threshold-us: '%s' is not a positive number\n",
					optarg);
				return 2;
			}
			break;
		case 'x':
			if (parse_u64(optarg, &v) < 0 || v >= MSCOPE_SIM_MAX_FAULTS) {
				fprintf(stderr, "mscope sim: --disable-fault: '%s' is not a fault index "
					"0-%d\n", optarg, MSCOPE_SIM_MAX_FAULTS - 1);
				return 2;
			}
			disable_list[n_disable++ % MSCOPE_SIM_MAX_FAULTS] = v;
			o.disabled_faults |= 1ULL << v;
			break;
		case 'z':
			if (parse_u64(optarg, &v) < 0 || v < 1 || v > 22) {
				fprintf(stderr, "mscope sim: --zstd-level: '%s' is not a level 1-22\n",
					optarg);
				return 2;
			}
			o.zstd_level = (int)v;
			break;
		case OPT_NO_JITTER:
			o.no_jitter = 1;
			break;
		case OPT_NO_VICTIMS:
			o.no_victims = 1;
			break;
		case OPT_JSON:
			as_json = 1;
			break;
		case OPT_MODEL_ONLY:
			model_only = 1;
			break;
		case OPT_HORIZON:
			errno = 0;
			o.victim_horizon_us = strtod(optarg, &end) * 1000;
			if (!*optarg || *end || errno || !(o.victim_horizon_us > 0) ||
					o.victim_horizon_us > 1e12) {
				fprintf(stderr, "mscope sim: --victim-horizon-ms: '%s' is not a positive "
					"number of ms\n", optarg);
				return 2;
			}
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	int nowrite = dry || model_only;
	if (optind != argc - 1 || (outdir == NULL) == !nowrite || (dry && model_only)) {
		fprintf(stderr, "mscope sim: %s\n", optind != argc - 1 ?
			"exactly one scenario file expected" :
			dry && model_only ? "--dry-run or --model-only, not both" :
			nowrite ? "--dry-run and --model-only write nothing: no -o" :
			"an output directory (-o DIR) is required");
		usage(stderr);
		return 2;
	}
	char err[1024];
	struct mscope_sim_scenario *s = mscope_sim_load(argv[optind], err, sizeof(err));
	if (s == NULL) {
		fprintf(stderr, "mscope sim: %s\n", err);
		return 1;
	}
	for (unsigned i = 0; i < n_disable && i < MSCOPE_SIM_MAX_FAULTS; i++)
		if (disable_list[i] >= mscope_sim_fault_count(s)) {
			fprintf(stderr, "mscope sim: --disable-fault %" PRIu64 ": the scenario has %u "
				"faults\n", disable_list[i], mscope_sim_fault_count(s));
			mscope_sim_free(s);
			return 2;
		}
	if (dry)
		return dry_run(argv[optind], s, as_json, quiet);
	struct mscope_sim_stats st;
	if (mscope_sim_run(s, &o, outdir, &st, err, sizeof(err)) < 0) {
		fprintf(stderr, "mscope sim: %s\n", err);
		mscope_sim_free(s);
		return 1;
	}
	if (!quiet)
		print_summary(outdir, s, &o, &st, as_json);
	mscope_sim_free(s);
	return 0;
}
