/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * mscope analyzer: queue-based diagnosis (Microscope, SIGCOMM 2020) of the
 * packets that were slow or dropped in a graph of NFs, from the per-node trace
 * files of traces/mscope_trace.h (collector or simulator).
 *
 * ## Pipeline (docs/method.md)
 *   load      every *.mst file of a directory, streamed into compact per-hop
 *             arrays (<= 64 bytes per packet-hop);
 *   match     packets across hops: an upstream tx with wire ID W at time e
 *             is the arrival at the downstream node whose rx (or queue-full
 *             drop) has W: a_f(p) = e_X(p); inside an NF the tx rx_seq link;
 *             ID collisions are resolved by time proximity and counted;
 *   timeline  per node: arrivals, dequeues, busy periods, queue lengths;
 *   rate      robust peak-rate estimate (method.md §2), or an override;
 *   victims   end-to-end latency above a percentile or threshold, and drops;
 *   blame     local scores S_i, S_p, propagation of S_i over PreSet
 *             timespans along every path (paper or our DAG variant),
 *             recursion into upstream NFs, culprit flows;
 *   output    causal relations, ranked culprits, JSON document.
 *
 * ## Use
 *   struct mscope_an_opts o; mscope_an_opts_init(&o);
 *   struct mscope_analysis *an = mscope_an_open(dir, &o, &err);   // load + match + timelines
 *   mscope_an_diagnose(an, &err);                                 // victims + blame
 *   json_t *doc = mscope_an_json(an);                             // report document
 *   mscope_an_write_relations(an, fp);                            // one JSON line per victim
 *   mscope_an_close(an);
 *
 * ## Errors
 * Functions returning a pointer return NULL and fill *err; functions
 * returning int return 0 on success, -1 on failure with *err filled. Problems
 * that do not stop the analysis (collector losses, clamped timestamps,
 * unresolved IDs, approximated arrivals) are collected as warnings
 * (mscope_an_warnings()). The library never prints.
 *
 * Identical input and options give identical output, with any thread count.
 */
#ifndef MSCOPE_ANALYZER_H
#define MSCOPE_ANALYZER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "mscope_trace.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Culprit kinds (the `kind` of a causal relation). */
enum mscope_an_kind {
	MSCOPE_AN_PROCESSING = 0, /**< the NF served slower than its peak rate */
	MSCOPE_AN_SOURCE = 1,     /**< the input traffic itself was bursty */
};

/** DAG variant of method.md §3. */
enum mscope_an_dag {
	MSCOPE_AN_DAG_OURS = 0,  /**< per-path T_exp from the path's long-run rate, weighted by packets */
	MSCOPE_AN_DAG_PAPER = 1, /**< one shared T_exp = n_i / r_f, paths superposed and scaled */
};

/** How the source share is spread over the PreSet's flows. */
enum mscope_an_src_flows {
	MSCOPE_AN_FLOWS_PACKETS = 0, /**< in proportion to their packets in the set */
	MSCOPE_AN_FLOWS_EXCESS = 1,  /**< to their excess over their own average rate (default) */
};

/** A peak-rate override: NF name (all its nodes) or node id ("fw1:p0q0"). */
struct mscope_an_rate {
	char name[96];
	double mpps;
};

/** A victim flow filter; unset fields (len -1 / port -1 / proto -1) match all. */
struct mscope_an_filter {
	int set;
	uint8_t family;
	int src_len, dst_len;   /**< prefix lengths, -1 = any */
	uint8_t src[16], dst[16];
	int32_t sport, dport;   /**< -1 = any */
	int16_t proto;          /**< -1 = any */
};

struct mscope_an_opts {
	/* victims */
	double percentile;        /**< end-to-end latency percentile (default 99) */
	double threshold_us;      /**< absolute latency threshold; > 0 overrides percentile */
	int no_drops;             /**< do not take drops as victims */
	struct mscope_an_filter filter; /**< victim flow filter */
	int64_t from_ns, to_ns;   /**< victim ingress window from run start; to_ns < 0 = end */
	/* method */
	enum mscope_an_dag dag;
	enum mscope_an_src_flows src_flows;
	double min_wait_us;       /**< a victim queued "noticeably" above max(this, node p90 wait) (default 5) */
	int no_post_wait;         /**< [ours] off: no processing blame for the shortfall after arrival */
	double epsilon;           /**< recursion stops below this many packets of score (default 0.01) */
	int max_flows;            /**< culprit flows kept per culprit per victim (default 8) */
	/* matching */
	double match_window_us;   /**< max time from upstream tx to downstream rx (default 2e6: 2 s; congested real chains queue for 100s of ms) */
	/* inputs */
	const char *topology;     /**< topology JSON file (names, rates, allowed links) or NULL */
	const char *run_id;       /**< keep only traces of this run, or NULL */
	struct mscope_an_rate *rates; /**< peak-rate overrides */
	size_t nrates;
	int threads;              /**< worker threads (0 = 2); output is identical for any count */
	double af_threshold;      /**< aggregation threshold (fraction of blame), 0 = library default */
	/* windows (appended) */
	int64_t context_ns;       /**< with from_ns/to_ns: history analysed before the window (peak
	                               rates, usual times) and time after it for its victims to leave
	                               (default 100 ms); the look-back also reaches the start of every
	                               queuing period open then */
	int no_index;             /**< with a window: read every trace whole, not only the frames the
	                               window needs (same results; for tests and comparison) */
	const char *from_clock, *to_clock; /**< the window in wall-clock time, or NULL: "14:32:05.250"
	                               (local time, on the day the run started) or ISO 8601
	                               "2026-12-08T14:32:05Z" / "+01:00" (no zone: local);
	                               through the traces' realtime anchor; override from_ns/to_ns */
};

/** Where analysis failed. */
struct mscope_an_error {
	char text[512];
};

struct mscope_analysis;

/** Fill *o with the defaults. */
void mscope_an_opts_init(struct mscope_an_opts *o);

/**
 * Parse a victim flow filter: space or comma separated `key=value` terms,
 * keys src, dst (address or prefix), sport, dport (number), proto (tcp, udp,
 * icmp or number). E.g. "proto=udp dport=53 src=10.1.0.0/16".
 * @return 0, or -1 with *err naming the bad term.
 */
int mscope_an_filter_parse(const char *text, struct mscope_an_filter *f,
		struct mscope_an_error *err);

/**
 * Parse a wall-clock time (the forms of mscope_an_opts.from_clock) into ns
 * since the epoch; a time of day alone is taken on the day (local time) of
 * `day_ns` (ns since the epoch). @return 0, or -1 when it is not one.
 */
int mscope_an_parse_clock(const char *text, int64_t day_ns, int64_t *ns);

/**
 * Parse a duration with unit ("250us", "3ms", "1.5s", "800ns"; bare = us).
 * @return 0 and *ns, or -1.
 */
int mscope_an_parse_time(const char *text, int64_t *ns);

/**
 * Load every *.mst trace of `dir`, match packets across hops, build the
 * timelines and estimate peak rates.
 * @return the analysis, or NULL with *err filled (no traces, unreadable or
 *   corrupt file, mixed runs, duplicate nodes, bad topology file, ...).
 */
struct mscope_analysis *mscope_an_open(const char *dir,
		const struct mscope_an_opts *opts, struct mscope_an_error *err);

/** Select victims and diagnose them. @return 0, or -1 with *err. */
int mscope_an_diagnose(struct mscope_analysis *an, struct mscope_an_error *err);

/**
 * The report document (schema in docs/analyzer.md: version, summary, nodes,
 * edges, culprits, periods). New reference owned by the caller.
 */
json_t *mscope_an_json(struct mscope_analysis *an);

/** Write one JSON line per diagnosed victim. @return 0, or -1 on write error. */
int mscope_an_write_relations(const struct mscope_analysis *an, FILE *out);

/** Warnings gathered so far (NULL-terminated array of strings, owned by an). */
const char *const *mscope_an_warnings(const struct mscope_analysis *an);

/**
 * Free the per-packet data of a diagnosed analysis: the report, relations
 * and inspection of victims stay available; mscope_an_explain() and
 * mscope_an_local_scores() fail from then on. Lowers peak memory when the
 * culprits are aggregated next. No-op before mscope_an_diagnose().
 */
void mscope_an_release(struct mscope_analysis *an);

/** NULL is a no-op. */
void mscope_an_close(struct mscope_analysis *an);

/* ------------------------------------------------------------ inspection */
/* For tests and tools: read-only views of the results. */

/** Number of nodes (NF input queues and sources). */
size_t mscope_an_node_count(const struct mscope_analysis *an);

/** Index of node `id` ("fw1:p0q0", or a source's name), or -1. */
int mscope_an_node_find(const struct mscope_analysis *an, const char *id);

/** A node's summary. */
struct mscope_an_node_info {
	const char *id;
	const char *nf;
	int is_source;
	double peak_rate_mpps;
	const char *peak_rate_from;  /**< "estimated", "override", "topology" */
	uint64_t packets, victims, drops;
};
int mscope_an_node_info(const struct mscope_analysis *an, size_t i,
		struct mscope_an_node_info *info);

/** One culprit of one victim. */
struct mscope_an_culprit {
	const char *nf;
	enum mscope_an_kind kind;
	int has_flow;
	struct mscope_flow_key flow;
	double score;
};

/** One place where a victim queued. */
struct mscope_an_queued {
	int node;
	double wait_us;
	uint32_t n_i, n_p;
	double period_us;
	double s_i, s_p;
	double s_w;               /**< [ours] r * wait - Q: shortfall while it waited (processing) */
};

/** A diagnosed victim. */
struct mscope_an_victim {
	uint32_t wire_id;         /**< identity at ingress (source tx, else first NF rx) */
	uint64_t tsc;
	double t_us;              /**< ingress time from run start */
	int dropped;
	double latency_us;
	const struct mscope_an_queued *queued;
	size_t nqueued;
	const struct mscope_an_culprit *culprits; /**< sorted by score desc */
	size_t nculprits;
};

size_t mscope_an_victim_count(const struct mscope_analysis *an);
/** Victim i; its queued/culprits arrays stay valid until the next call. @return 0 or -1. */
int mscope_an_victim(struct mscope_analysis *an, size_t i, struct mscope_an_victim *v);

/**
 * Diagnose one packet at one node as if it were a victim there: local
 * scores, propagation, recursion. *out (free() it) gets its culprits sorted
 * by score desc; their nf strings belong to an.
 * @return 0, or -1 with *err (no such node or packet).
 */
int mscope_an_explain(struct mscope_analysis *an, int node, uint32_t wire_id,
		struct mscope_an_culprit **out, size_t *nout, struct mscope_an_error *err);

/** Local scores of node `node`'s packet arriving with wire ID `wire_id` (the
 *  first one at or after time t_ns from run start). For tests. @return 0 or -1. */
int mscope_an_local_scores(const struct mscope_analysis *an, int node, uint32_t wire_id,
		struct mscope_an_queued *q);

/* ------------------------------------------------------------ packet-hops */

/** One packet at one node (analyzer/export.c). Times in us from the run's start. */
struct mscope_an_hop {
	int node;                 /**< node index (mscope_an_node_info()) */
	uint32_t packet_wire;     /**< the packet's wire ID where it entered the graph ... */
	double ingress_us;        /**< ... and when (with packet_wire: the packet's identity) */
	uint32_t wire_in;         /**< wire ID as received (0 at a source) */
	uint32_t wire_out;        /**< wire ID as sent (at an NF: as the next node received it),
	                               0 when not sent or not seen downstream (egress) */
	double arrival_us;        /**< entered the node's queue (upstream departure) */
	int arrival_approx;       /**< arrival approximated (no upstream record) */
	double dequeue_us;        /**< rx call; NAN for a queue-full drop */
	double departure_us;      /**< tx call; NAN when not sent */
	double wait_us;           /**< dequeue - arrival; NAN for a queue-full drop */
	const struct mscope_flow_key *flow; /**< as received (at a source: as sent) */
	const char *drop;         /**< NULL, "queue_full", "nf" (the NF's decision) or "dropped" */
	double drop_us;           /**< when dropped, NAN if not */
};

typedef int (*mscope_an_hop_fn)(void *ctx, const struct mscope_an_hop *hop);

/**
 * Call fn for every packet-hop of node `node` (-1: all nodes, node by node,
 * each in rx order then its queue-full drops) whose arrival is within
 * [from_ns, to_ns] from the run's start (to_ns < 0: the end). Needs the
 * per-hop data: after mscope_an_open(), before mscope_an_release().
 * fn returning non-zero stops the iteration.
 * @return 0, or -1 with *err (released, no such node, stopped by fn).
 */
int mscope_an_hops(const struct mscope_analysis *an, int node, int64_t from_ns, int64_t to_ns,
		mscope_an_hop_fn fn, void *ctx, struct mscope_an_error *err);

#ifdef __cplusplus
}
#endif

#endif /* MSCOPE_ANALYZER_H */
