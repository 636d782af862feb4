/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Incidents: the time ranges of a recording of any length where packets
 * were held noticeably longer than in the recording's normal operation, or
 * dropped (docs/incidents.md has the precise definition).
 *
 * ## Pipeline
 *   scan      one streaming pass per node trace (nodes in parallel, no
 *             cross-node matching): each packet's residence at the node,
 *             departure minus the latest time it is known to have been in
 *             the queue (rx queue-depth samples), and the drops, binned
 *             in time (1 ms: count, max, p99 from a log histogram);
 *             bounded memory: bins double in width past a cap;
 *   detect    per node, normal operation = median and MAD of the bins'
 *             p99; a bin stands out when its p99 or its drops are far
 *             above them; standing-out bins of all nodes, each stretched
 *             back by the delay it saw, merged with a gap tolerance;
 *   diagnose  each incident's window (plus margins) is cut out of the
 *             traces into a temporary directory of small trace files and
 *             diagnosed by the analyzer (mscope_analyzer.h) with victims
 *             taken inside the incident.
 *
 * ## Use
 *   struct mscope_inc_opts o; mscope_inc_opts_init(&o);
 *   struct mscope_inc_scan *s = mscope_inc_scan(dir, &o, &err);
 *   mscope_inc_detect(s, &o, &err);
 *   for (i < mscope_inc_count(s)) mscope_inc_diagnose(s, i, &an_opts, &doc, &err);
 *   json_t *j = mscope_inc_json(s);     // timeline, baselines, incidents
 *   mscope_inc_free(s);
 *
 * Errors as in mscope_analyzer.h: NULL / -1 with *err filled. The library
 * never prints.
 */
#ifndef MSCOPE_INCIDENTS_H
#define MSCOPE_INCIDENTS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "mscope_analyzer.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mscope_inc_opts {
	double bin_us;          /**< time bin (default 1000) */
	int64_t from_ns, to_ns; /**< scan window from the run's start; to_ns < 0 = end */
	double k_mad;           /**< a bin's p99 stands out above median + k x 1.4826 MAD (default 8) */
	double factor;          /**< ... and above factor x median (default 3) */
	double min_excess_us;   /**< ... and above median + this (default 20) */
	double gap_us;          /**< incidents closer than this are merged (default 10000) */
	double min_severity;    /**< incidents below this severity are noise (default 2) */
	size_t max_incidents;   /**< most severe kept (default 100) */
	double margin_us;       /**< analysed before an incident (default 20000); after: half */
	int threads;            /**< scan threads (0 = 2) */
	const char *run_id;     /**< only traces of this run, or NULL */
	const char *tmpdir;     /**< where incident windows are cut (NULL: $TMPDIR or /tmp) */
	/** Called about every 200 ms during the scan (from the calling thread). */
	void (*progress)(void *ctx, uint64_t bytes_done, uint64_t bytes_total);
	void *progress_ctx;
};

/** Fill *o with the defaults. */
void mscope_inc_opts_init(struct mscope_inc_opts *o);

struct mscope_inc_scan;

/**
 * Scan every *.mst trace of `dir` (rotated segments of one node are read
 * as one stream, in segment order) into per-node time bins.
 * @return the scan, or NULL with *err (no traces, corrupt file, mixed runs).
 */
struct mscope_inc_scan *mscope_inc_scan(const char *dir, const struct mscope_inc_opts *o,
		struct mscope_an_error *err);

/** Baselines and incidents from the bins. @return 0, or -1 with *err. */
int mscope_inc_detect(struct mscope_inc_scan *s, const struct mscope_inc_opts *o,
		struct mscope_an_error *err);

/** What the scan saw. */
struct mscope_inc_stats {
	size_t nodes, files;
	uint64_t hops;          /**< NF packet-hops scanned: rx'd packets and queue-full drops */
	uint64_t bytes;         /**< trace bytes read (NF traces: the source's is not needed) */
	double cpu_s;           /**< CPU seconds of the scan (all threads) */
	double wall_s;
	double start_us, end_us; /**< scanned range, from the run's start */
	double bin_us;          /**< final bin width (doubles past 2^17 bins) */
	int threads;
};
void mscope_inc_stats(const struct mscope_inc_scan *s, struct mscope_inc_stats *st);

/** An incident. */
struct mscope_incident {
	double start_us, end_us;  /**< from the run's start */
	double severity;          /**< sum over standing-out node-bins of p99 / threshold - 1, plus drops */
	uint64_t drops;           /**< queue-full and tx-refused drops in its bins, all nodes */
	double peak_us;           /**< largest residence seen at one node */
	const char *peak_node;    /**< where */
	size_t nnodes;            /**< nodes that stood out */
};

/** Number of incidents found (after mscope_inc_detect()). */
size_t mscope_inc_count(const struct mscope_inc_scan *s);

/** Incident i, in time order. @return 0, or -1 if out of range. */
int mscope_inc_get(const struct mscope_inc_scan *s, size_t i, struct mscope_incident *inc);

/** Incidents that stood out but were dropped by max_incidents. */
size_t mscope_inc_dropped(const struct mscope_inc_scan *s);

/**
 * Diagnose incident i: its window plus margins is cut out of the traces
 * (temporary trace files, removed afterwards) and analysed with `opts`,
 * victims taken in the incident (opts->from_ns/to_ns are set here).
 * *doc receives the analyzer's report document (mscope_an_json()), also
 * kept for mscope_inc_json(). @return 0, or -1 with *err.
 */
int mscope_inc_diagnose(struct mscope_inc_scan *s, size_t i, const struct mscope_an_opts *opts,
		json_t **doc, struct mscope_an_error *err);

/**
 * End-to-end latency of normal operation: the analyzer's p99 over a 30 ms
 * stretch without incidents (the middle of the longest one; at least 5 ms).
 * Victims of the diagnoses are best taken above it. @return 0 and *p99_us,
 * or -1 with *err (no such stretch).
 */
int mscope_inc_normal_latency(struct mscope_inc_scan *s, const struct mscope_an_opts *opts,
		double *p99_us, struct mscope_an_error *err);

/**
 * Cut [from_us, to_us] (from the run's start) out of the scanned traces into
 * directory `out` (created; one trace file per node file, rx sequence
 * numbers renumbered, flows replayed, packets that entered before the cut
 * left out). @return 0, or -1 with *err.
 */
int mscope_inc_cut(const struct mscope_inc_scan *s, double from_us, double to_us,
		const char *out, struct mscope_an_error *err);

/**
 * The incidents document (docs/incidents.md): scan, per-node baselines,
 * a timeline of at most `points` points (max over nodes of the bin p99, drops),
 * incidents with their diagnoses. New reference.
 */
json_t *mscope_inc_json(const struct mscope_inc_scan *s, int points);

/** NULL is a no-op. */
void mscope_inc_free(struct mscope_inc_scan *s);

/* ------------------------------------------------------------- sharding */
/*
 * A scan split into time shards, one per process of a distributed driver
 * (mscope-mpi, docs/scale-out.md); the library itself has no MPI. Every
 * process opens the recording, plans the same shards, scans its own,
 * exports its bins; every process merges all exports in the same order
 * and so detects the same incidents as one process scanning everything.
 *   s = mscope_inc_scan_open(dir, &o, &err);
 *   mscope_inc_shard_plan(s, n, &err);  mscope_inc_scan_shard(s, k, &err);
 *   mscope_inc_shard_export(s, &buf, &len, &err);  ... exchange ...
 *   mscope_inc_shard_merge(s, bufs, lens, n, &err);  mscope_inc_detect(s, &o, &err);
 * Diagnoses: mscope_inc_diagnose_only() limits a process to its incidents,
 * mscope_inc_diag_export() / mscope_inc_diag_import() carry them (JSON text).
 */

/** The traces listed, the clock and the scan window set; nothing scanned
 *  yet. NULL with *err as mscope_inc_scan(). */
struct mscope_inc_scan *mscope_inc_scan_open(const char *dir, const struct mscope_inc_opts *o,
		struct mscope_an_error *err);

/**
 * Split the scan window into n shards of about the same packets (the frame
 * counts of the traces' time index), of whole bins of the final width (no bin
 * spans two shards). The same on every process. @return 0, or -1 with *err.
 */
int mscope_inc_shard_plan(struct mscope_inc_scan *s, unsigned n, struct mscope_an_error *err);

/** Shard k's time range, us from the run's start (the last one ends at the
 *  recording's end). @return 0, or -1 when there is no such shard. */
int mscope_inc_shard_range(const struct mscope_inc_scan *s, unsigned k, double *from_us,
		double *to_us);

/**
 * Scan shard k: every node from its look-back before the shard (read from
 * that frame on through the time index) to the shard's end; bins and counts
 * of the shard only. A look-back too short for a packet's residence (one
 * that entered earlier) is doubled and the shard scanned again, so that the
 * result is exactly what one scan of everything gives. A damaged frame is an
 * error here (a single scan warns and stops that node). @return 0, or -1 with *err.
 */
int mscope_inc_scan_shard(struct mscope_inc_scan *s, unsigned k, struct mscope_an_error *err);

/** Figures of a shard's scan (after mscope_inc_scan_shard()). */
struct mscope_inc_shard_stats {
	uint64_t hops;          /**< NF packet-hops of the shard */
	uint64_t bytes_read;    /**< trace bytes read, look-back included */
	double cpu_s, wall_s;   /**< CPU (all threads) and wall time of the scan */
	unsigned rescans;       /**< look-backs that had to be doubled */
};
void mscope_inc_shard_stats(const struct mscope_inc_scan *s, struct mscope_inc_shard_stats *st);

/**
 * The shard's bins and counts as one flat buffer (native byte order and
 * float layout: for processes of one architecture; layout in
 * incidents_shard.c). *buf is malloc'ed. @return 0, or -1 with *err.
 */
int mscope_inc_shard_export(const struct mscope_inc_scan *s, void **buf, size_t *len,
		struct mscope_an_error *err);

/**
 * Replace the scan's bins and counts by the union of n shard exports (all
 * shards of one plan, any order): the scan is then the one of the whole
 * window (CPU time: the sum; wall time: the largest). @return 0, or -1 with *err.
 */
int mscope_inc_shard_merge(struct mscope_inc_scan *s, const void *const *bufs,
		const size_t *lens, size_t n, struct mscope_an_error *err);

/** Estimated cost of diagnosing incident i: packets and drops in its window
 *  with margins (after mscope_inc_detect()). */
double mscope_inc_cost(const struct mscope_inc_scan *s, size_t i);

/**
 * Cut only the windows of the incidents with mask[i] != 0 (and the window of
 * normal operation) when diagnosing; NULL: all. The mask must outlive the
 * diagnoses. Call before the first mscope_inc_diagnose() or
 * mscope_inc_normal_latency().
 */
void mscope_inc_diagnose_only(struct mscope_inc_scan *s, const unsigned char *mask);

/** Incident i's diagnosis (its window, the analysis or why there is none)
 *  as JSON text, malloc'ed; NULL if out of memory or out of range. */
char *mscope_inc_diag_export(const struct mscope_inc_scan *s, size_t i);

/** Set incident i's diagnosis from mscope_inc_diag_export() text of another
 *  process. @return 0, or -1 with *err. */
int mscope_inc_diag_import(struct mscope_inc_scan *s, size_t i, const char *text,
		struct mscope_an_error *err);

/** Whether incident i has a diagnosis error, and its text (NULL: none). */
const char *mscope_inc_diag_error(const struct mscope_inc_scan *s, size_t i);

#ifdef __cplusplus
}
#endif

#endif /* MSCOPE_INCIDENTS_H */
