/* SPDX-License-Identifier: BSD-3-Clause */
/* The simulation engine's interface inside the library (never installed). */
#ifndef MSCOPE_SIM_ENGINE_H
#define MSCOPE_SIM_ENGINE_H

#include "sim_private.h"

/* out_ps of a packet dropped at a full queue. */
#define SIM_DROPPED UINT64_MAX

/* Fate of every packet of one stream, indexed by the packet's index in it. */
struct sim_outv {
	uint64_t n, cap;
	uint64_t *in_ps;         /* ingress time */
	uint64_t *out_ps;        /* egress time, SIM_DROPPED, or 0 (never left) */
	uint32_t *wire;          /* ingress wire ID */
	int32_t *nf;             /* egress or drop NF, -1 */
};

struct sim_node_stats {
	uint64_t hops;           /* packets dequeued */
	uint64_t bursts;         /* non-empty polls */
	uint64_t drops;          /* queue-full drops */
	uint32_t max_qlen;
};

struct sim_result {
	int trace;               /* trace files were written */
	int outcomes;            /* streams[] hold every packet's fate */
	unsigned n_streams;
	struct sim_outv *streams;
	struct sim_node_stats *nodes;   /* per NF */
	uint64_t packets, hops, drops, egress;
	uint64_t end_ps;
	uint64_t trace_bytes;
};

struct sim_engine_opts {
	uint64_t seed;
	uint64_t disabled;       /* fault bit mask */
	int no_jitter;
	const char *outdir;      /* NULL: no trace files */
	int zstd_level;
	int overwrite;
	int writer_thread;       /* encode and compress traces on a second thread */
	int no_outcomes;         /* do not keep per-packet fates (memory O(packets in flight)) */
};

/* Run once; res is filled (free with sim_result_free even on failure). */
int sim_engine_run(const struct mscope_sim_scenario *s, const struct sim_engine_opts *o,
		struct sim_result *res, char *err, size_t errlen);
void sim_result_free(struct sim_result *r);

#endif
