/* SPDX-License-Identifier: BSD-3-Clause */
/* Running the simulator and the analyzer for `mscope eval` (runner.c). */
#ifndef MSCOPE_EVAL_RUNNER_H
#define MSCOPE_EVAL_RUNNER_H

#include <stddef.h>

#define EV_MAX_RATES 64

struct ev_runner {
	const char *self;   /**< the mscope program (for subprocess runs) */
	int subprocess;     /**< run `mscope sim/analyze` as programs, not in-process */
};

/** One analysis of a run directory. Times are us from the run's start. */
struct ev_analysis_req {
	const char *rundir;
	const char *json_out, *rel_out; /**< rel_out NULL: no relations */
	double from_us, to_us;
	int dag_paper;
	int src_excess;                /**< source flows by excess over their average rate */
	double threshold_us;          /**< > 0: absolute victim threshold */
	const char *rate_nf[EV_MAX_RATES];
	double rate_mpps[EV_MAX_RATES];
	size_t nrates;
};

/** Simulate `scenario` into `outdir`. @return 0, or -1 with err. */
int ev_run_sim(const struct ev_runner *r, const char *scenario, const char *outdir,
		char *err, size_t errlen);

/** Analyse; writes q->json_out and q->rel_out. @return 0, or -1 with err. */
int ev_run_analyze(const struct ev_runner *r, const struct ev_analysis_req *q,
		char *err, size_t errlen);

#endif
