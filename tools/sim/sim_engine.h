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
	uint64_t base;           /* packets before it were retired: arrays hold [base, n) */
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

/* The same in steps, so that runs can go side by side (victims are compared
 * as the runs go, memory staying bounded): open, advance to a time again and
 * again, close. res and err must outlive the engine. open returns NULL only
 * when out of memory (err filled); a failed setup makes advance return -1. */
struct sim_engine;
struct sim_engine *sim_engine_open(const struct mscope_sim_scenario *s,
		const struct sim_engine_opts *o, struct sim_result *res, char *err, size_t errlen);
/* Handle every event before until_ps. 1: events remain, 0: the run is over
 * (drained), -1: failed (err filled). */
int sim_engine_advance(struct sim_engine *e, uint64_t until_ps);
/* Flush and close the traces, free the engine; res keeps the figures. 0 / -1. */
int sim_engine_close(struct sim_engine *e);
/* The re-run without fault `fault` from where src is now: a copy of src with
 * the fault left out, into res (outcomes of the packets not yet retired
 * included). Only before the fault acted: 1 when it may have (nothing made;
 * start that re-run from the beginning instead), 0 with *out, -1 out of
 * memory (err filled; *out, if set, must still be closed). */
int sim_engine_clone(const struct sim_engine *src, unsigned fault, struct sim_result *res,
		char *err, size_t errlen, struct sim_engine **out);
/* 1 if both runs are in the same state (the same packets queued and in
 * service, in the same order, the same events pending, the same traffic to
 * come): from there on they do the same, so a re-run can stop. */
int sim_engine_same(const struct sim_engine *a, const struct sim_engine *b);
/* Time of the next event (UINT64_MAX: none). */
uint64_t sim_engine_next(const struct sim_engine *e);
/* Forget the fates of packets before index upto (they were compared). */
void sim_outv_retire(struct sim_outv *v, uint64_t upto);
void sim_result_free(struct sim_result *r);

#endif
