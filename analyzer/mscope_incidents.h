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

#ifdef __cplusplus
}
#endif

#endif /* MSCOPE_INCIDENTS_H */
