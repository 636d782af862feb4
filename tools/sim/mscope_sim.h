/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * mscope_sim: a deterministic discrete-event simulator of a graph of DPDK-style
 * network functions. It writes the same trace files as the collector (one per
 * NF input queue plus one for the traffic source, through the trace library),
 * and the ground truth of every injected fault: its culprit, its window and
 * its *victims*, the packets slowed or dropped only because of it.
 *
 * ## Use
 *   char err[256];
 *   struct mscope_sim_scenario *s = mscope_sim_load("case.json", err, sizeof(err));
 *   if (s == NULL) { fprintf(stderr, "%s\n", err); exit(1); }
 *   struct mscope_sim_opts o = MSCOPE_SIM_OPTS_DEFAULT;
 *   struct mscope_sim_stats st;
 *   if (mscope_sim_run(s, &o, "out", &st, err, sizeof(err)) < 0) ...
 *   mscope_sim_free(s);
 *
 * A scenario is immutable once loaded; mscope_sim_run() may be called many
 * times on it (each call builds its own state), e.g. with different options,
 * also from several threads at once. A run itself may use threads (victim
 * re-runs, trace compression: opts.threads); its output does not depend on
 * how many.
 * Output (outdir != NULL): outdir/<nf>.mst for every NF, outdir/source.mst,
 * outdir/topology.json, outdir/truth.json and outdir/victims.jsonl. The
 * formats are described in docs/simulator.md.
 *
 * ## Determinism
 * Same scenario, seed and options (thread count aside) give identical bytes: there is no wall
 * clock, pid or host name in the output, and every random draw comes from a
 * PRNG seeded by the scenario seed. Traffic draws and per-packet service
 * jitter are functions of the packet's identity, not of the order events are
 * processed, so a run with a fault disabled replays the very same packets.
 *
 * ## Errors
 * Functions returning a pointer return NULL on failure, functions returning
 * int return 0 on success and -1 on failure; either way the reason is written
 * to the caller's `err` buffer (if not NULL), naming the file and, for
 * scenario problems, the JSON field ("nfs[2].rate_mpps: ..."). The library
 * never prints.
 */
#ifndef MSCOPE_SIM_H
#define MSCOPE_SIM_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Start of the simulated run in TSC units (== ns: the simulator writes tsc_hz = 1e9). */
#define MSCOPE_SIM_START_TSC 1000000000000ULL

/** CLOCK_REALTIME written as the anchor of start_tsc (2020-01-01T00:00:00Z). */
#define MSCOPE_SIM_ANCHOR_REALTIME_NS 1577836800000000000LL

/** Maximum number of faults a scenario may hold (the disable mask is 64 bits). */
#define MSCOPE_SIM_MAX_FAULTS 64

/** A loaded, validated scenario (opaque, immutable). */
struct mscope_sim_scenario;

/** Options of one run. Start from MSCOPE_SIM_OPTS_DEFAULT. */
struct mscope_sim_opts {
	/** Use `seed` instead of the scenario's seed. */
	int override_seed;
	uint64_t seed;
	/** Bit i set: fault i (scenario order) is not injected. */
	uint64_t disabled_faults;
	/** Force every NF's service jitter to 0 (deterministic service times). */
	int no_jitter;
	/** Skip the per-fault re-runs: truth.json then has no victim counts. */
	int no_victims;
	/** Extra end-to-end delay (us) above which a packet is a victim; <= 0: the
	 *  scenario's victim_threshold_us (default 50). */
	double victim_threshold_us;
	/** Remove output files of a previous run in outdir instead of failing. */
	int overwrite;
	/** zstd level of the trace files (0: 1, fast; the collector's default is 3). */
	int zstd_level;
	/** Threads for the victim re-runs, the main run's included (0: one per CPU).
	 *  The output does not depend on it. */
	int threads;
	/** > 0: a fault's re-run stops this many us after the fault's end (victims
	 *  later than that are not looked for: faster on long runs); 0: a re-run
	 *  goes on until it is in the same state as the main run, or to the end. */
	double victim_horizon_us;
};

#define MSCOPE_SIM_OPTS_DEFAULT { 0, 0, 0, 0, 0, 0.0, 0, 0, 0, 0.0 }

/** What happened to one packet that entered the graph (see mscope_sim_outcome_fn). */
struct mscope_sim_packet {
	uint32_t stream;      /**< 0: the traffic; 1 + i: the packets of burst fault i */
	uint64_t index;       /**< index of the packet within its stream */
	uint32_t wire_id;     /**< wire ID at ingress (the source tx record's) */
	uint64_t in_tsc;      /**< TSC of the source tx record that sent it */
	uint64_t out_tsc;     /**< TSC of the egress NF's tx record; 0 if dropped */
	int dropped;          /**< 1 if dropped (in drop_nf's input queue) */
	int drop_nf;          /**< NF index where dropped, or -1 */
	int egress_nf;        /**< NF index it left the graph from, or -1 */
};

/** Called once per packet, in order of ingress, after a run. */
typedef void mscope_sim_outcome_fn(void *arg, const struct mscope_sim_packet *p);

/** Figures of one run (the main run; victim re-runs are counted apart). */
struct mscope_sim_stats {
	uint64_t packets;       /**< packets that entered the graph */
	uint64_t hops;          /**< packets dequeued by an NF, summed over NFs */
	uint64_t drops;         /**< packets dropped at a full input queue */
	uint64_t egress;        /**< packets that left the graph */
	uint64_t end_tsc;       /**< TSC of the last event (the graph drained) */
	uint64_t rerun_hops;    /**< hops simulated by the victim re-runs */
	uint64_t victims;       /**< victims summed over faults */
	uint64_t trace_bytes;   /**< bytes of trace files written */
	double sim_seconds;     /**< wall-clock seconds of the main run (not part of the output) */
	double sim_cpu_seconds; /**< CPU seconds of the main run's thread (the box may be shared) */
	double rerun_seconds;   /**< wall-clock seconds the victim re-runs took beyond the main run
	                             (they run in parallel with it) */
};

/**
 * Load and validate a scenario file. A relative pcap path is taken relative to
 * the scenario file's directory; the pcap is read now.
 * @param err receives e.g. "case.json: nfs[1].queue: must be an integer >= 1".
 * @return the scenario, or NULL.
 */
struct mscope_sim_scenario *mscope_sim_load(const char *path, char *err, size_t errlen);

/**
 * Same from a parsed JSON document (not modified, not kept).
 * @param name scenario name used when the document has no "name" field, and
 *   in messages; @param base_dir directory for relative pcap paths (NULL: cwd).
 */
struct mscope_sim_scenario *mscope_sim_load_json(const json_t *root, const char *name,
		const char *base_dir, char *err, size_t errlen);

/** NULL is a no-op. */
void mscope_sim_free(struct mscope_sim_scenario *s);

/**
 * The scenario as JSON with every default filled in and every value as the
 * simulator reads it (addresses canonical, port matches as [lo, hi], the pcap
 * path resolved), plus the fields only the chain launcher uses (nfs[].program,
 * args, eal_args, rules, byte_ns; traffic.timing, once, count; recording),
 * each validated. Format: docs/simulator.md ("--dry-run --json").
 * @return a new reference (the caller decrefs it), or NULL when out of memory.
 */
json_t *mscope_sim_scenario_json(const struct mscope_sim_scenario *s);

/** The scenario's name ("name" field, else the file name without ".json"). */
const char *mscope_sim_name(const struct mscope_sim_scenario *s);

/** The scenario's seed. */
uint64_t mscope_sim_seed(const struct mscope_sim_scenario *s);

/** Number of faults (their ids are 0 .. n-1 in scenario order). */
unsigned mscope_sim_fault_count(const struct mscope_sim_scenario *s);

/** Number of NFs (indices 0 .. n-1 in scenario order). */
unsigned mscope_sim_nf_count(const struct mscope_sim_scenario *s);

/** Name of NF `i`, or NULL if out of range. */
const char *mscope_sim_nf_name(const struct mscope_sim_scenario *s, unsigned i);

/**
 * Run the simulation.
 * @param opts NULL for defaults.
 * @param outdir directory for the output files (created if missing); NULL runs
 *   without writing anything (and without victim re-runs), e.g. to collect
 *   outcomes or to measure speed.
 * @param stats filled if not NULL.
 * @return 0, or -1 with err filled (bad output directory, a trace write
 *   failed, out of memory).
 */
int mscope_sim_run(const struct mscope_sim_scenario *s, const struct mscope_sim_opts *opts,
		const char *outdir, struct mscope_sim_stats *stats, char *err, size_t errlen);

/**
 * Run without writing files and report every packet's fate to `fn`, in order
 * of ingress (stream by stream merged by ingress time). Use opts
 * disabled_faults to compare runs packet by packet: (stream, index)
 * identifies the same packet in every run of the same scenario and seed.
 * @return 0, or -1 with err filled.
 */
int mscope_sim_outcomes(const struct mscope_sim_scenario *s, const struct mscope_sim_opts *opts,
		mscope_sim_outcome_fn *fn, void *arg, struct mscope_sim_stats *stats,
		char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* MSCOPE_SIM_H */
