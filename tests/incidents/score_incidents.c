/* SPDX-License-Identifier: BSD-3-Clause */
/* Score `mscope incidents --json` against the simulator's truth.json, as
 * `mscope eval` scores a diagnosis (tools/eval/score.c, docs/evaluation.md):
 * a fault is found when an incident overlaps its window; its rank is the
 * true culprit's in that incident's ranked rules (strict: NF, kind and, for
 * flow faults, an aggregate containing the truth), rules naming another
 * fault active in the incident skipped. Used by tests/incidents and
 * tools/bench-incidents.
 *
 * usage: score_incidents TRUTH.json INCIDENTS.json [MIN_TOP1_FRACTION]
 * Prints one line per fault and a summary; exit 0 when every fault is found
 * and the top-1 fraction is at least MIN (default 0), 1 otherwise, 2 usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "eval.h"

#define MAXC 256

int
main(int argc, char **argv)
{
	json_error_t je;
	json_t *truth, *inc, *f, *x;
	const json_t *faults, *incs;
	double off_us, min_top1 = argc > 3 ? atof(argv[3]) : 0;
	size_t i, j, found = 0, top1 = 0, scored = 0;
	char err[256];

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: score_incidents TRUTH.json INCIDENTS.json [MIN_TOP1]\n");
		return 2;
	}
	truth = json_load_file(argv[1], 0, &je);
	inc = json_load_file(argv[2], 0, &je);
	if (!truth || !inc) {
		fprintf(stderr, "score_incidents: cannot read %s\n", truth ? argv[2] : argv[1]);
		return 1;
	}
	faults = json_object_get(truth, "faults");
	incs = json_object_get(inc, "incidents");
	/* truth counts from start_tsc, the incidents from the earliest record */
	off_us = (double)(json_integer_value(json_object_get(json_object_get(inc, "scan"),
		"origin_tsc")) - json_integer_value(json_object_get(truth, "start_tsc"))) * 1e6 /
		(double)json_integer_value(json_object_get(truth, "tsc_hz"));
	json_array_foreach(faults, i, f) {
		struct ev_culprit t, list[MAXC], others[64];
		double a = json_number_value(json_object_get(f, "start_us")) - off_us;
		double b = json_number_value(json_object_get(f, "end_us")) - off_us;
		int best = 0, hit = 0;
		long which = 0;

		if (ev_culprit_from_truth(json_object_get(f, "culprit"), &t, err, sizeof(err))) {
			fprintf(stderr, "score_incidents: %s: faults[%zu]: %s\n", argv[1], i, err);
			return 1;
		}
		json_array_foreach(incs, j, x) {
			double s = json_number_value(json_object_get(x, "start_us"));
			double e = json_number_value(json_object_get(x, "end_us"));
			size_t no = 0, k;
			json_t *g;
			int n, r;

			if (e < a || s > b)
				continue;
			hit = 1;
			if (!json_object_get(x, "analysis"))
				continue;
			n = ev_culprits_from_analysis(json_object_get(x, "analysis"), list, MAXC, err,
				sizeof(err));
			if (n < 0)
				continue;
			json_array_foreach(faults, k, g) {
				double ga = json_number_value(json_object_get(g, "start_us")) - off_us;
				double gb = json_number_value(json_object_get(g, "end_us")) - off_us;
				if (k != i && no < 64 && !(gb < s || ga > e) &&
						!ev_culprit_from_truth(json_object_get(g, "culprit"), &others[no],
						err, sizeof(err)))
					no++;
			}
			r = ev_rank(list, (size_t)n, &t, others, no, EV_MATCH_STRICT);
			if (r && (!best || r < best)) {
				best = r;
				which = (long)json_integer_value(json_object_get(x, "id"));
			}
		}
		found += hit;
		scored++;
		top1 += best == 1;
		printf("fault %zu %s/%s %.0f-%.0f us: %s", i, t.nf, ev_kind_name(t.kind), a, b,
			hit ? "found" : "MISSED");
		if (hit && best)
			printf(", rank %d (incident %ld)\n", best, which);
		else
			printf(hit ? ", true culprit not named\n" : "\n");
	}
	printf("faults %zu found %zu top1 %zu (%.1f%%) incidents %zu\n", scored, found, top1,
		scored ? 100.0 * (double)top1 / (double)scored : 0, json_array_size(incs));
	json_decref(truth);
	json_decref(inc);
	return found == scored && (double)top1 >= min_top1 * (double)scored ? 0 : 1;
}
