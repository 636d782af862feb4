/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Internals of `mscope eval`: scoring of analyzer output against ground truth
 * (score.c) and the NetMedic-style baseline (netmedic.c). Not installed; the
 * tests in tests/eval/ link these files directly.
 *
 * Errors: functions returning int return 0 (or a count) on success and -1 on
 * failure with a message in the caller's `err` buffer. Nothing here prints.
 */
#ifndef MSCOPE_EVAL_H
#define MSCOPE_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* ------------------------------------------------------------ flow sets */

/**
 * A set of 5-tuples: an address prefix per side, a port range per side and a
 * protocol (0 = any). A flow aggregate like "udp 10.0.0.0/8:*> *:53" and a
 * ground-truth flow (all fields exact, or only some given) are both sets.
 */
struct ev_flowset {
	uint32_t src, dst;        /**< IPv4 address, host byte order */
	uint8_t src_len, dst_len; /**< prefix lengths, 0 = any */
	uint16_t sport_lo, sport_hi;
	uint16_t dport_lo, dport_hi;
	uint8_t proto;            /**< 0 = any */
};

/** Everything: the all-wildcard set. */
void ev_flowset_any(struct ev_flowset *s);

/** Is `s` the all-wildcard set? */
int ev_flowset_is_any(const struct ev_flowset *s);

/** Does `outer` contain every 5-tuple of `inner`? */
int ev_flowset_contains(const struct ev_flowset *outer, const struct ev_flowset *inner);

/**
 * Parse an aggregate's text. Accepts "*", and "PROTO SRC[:SPORT] > DST[:DPORT]"
 * (the trace library's flow format) where each of PROTO/SRC/SPORT/DST/DPORT
 * may be "*", an address may carry "/LEN", a port may be "LO-HI", PROTO is
 * a name (tcp, udp, icmp) or number; also "src=... dst=... sport=... dport=...
 * proto=..." pairs. @return 0, or -1 if the text is not understood.
 */
int ev_flowset_parse(const char *text, struct ev_flowset *s);

/**
 * From a JSON object {"src","dst","sport","dport","proto"} (any subset; a
 * field that is absent is a wildcard; addresses may be prefixes; ports may be
 * numbers or "LO-HI"). @return 0, or -1 with err filled.
 */
int ev_flowset_from_json(const json_t *o, struct ev_flowset *s, char *err, size_t errlen);

/* ------------------------------------------------------------- culprits */

enum ev_kind { EV_KIND_PROCESSING = 0, EV_KIND_SOURCE = 1 };

/** A culprit as ground truth states it, or as a method names it. */
struct ev_culprit {
	char nf[64];              /**< NF name, or "source" */
	int kind;                 /**< enum ev_kind */
	int has_flow;             /**< flow given (truth: a flow is to blame) */
	struct ev_flowset flow;
	double score;
};

/** How to compare a named culprit against the true one. */
enum ev_match_mode {
	EV_MATCH_STRICT = 0,  /**< NF, kind and, for flow faults, a non-wildcard aggregate that
	                           contains the true flow set or lies inside it (a bug's rule) */
	EV_MATCH_NF_KIND = 1, /**< NF and kind only (baselines that cannot name flows) */
};

/** Parse "processing"/"source" (also "input" as source). @return kind or -1. */
int ev_kind_parse(const char *s);
const char *ev_kind_name(int kind);

/** Does `named` name `truth`? (the NF named "source" matches kind source too) */
int ev_culprit_matches(const struct ev_culprit *named, const struct ev_culprit *truth,
		enum ev_match_mode mode);

/**
 * Rank of the true culprit in a ranked list: 1 + the number of entries before
 * the first match that do not match any of `others` (true culprits of other
 * faults active in the same window: naming those first is no mistake).
 * @return the rank, or 0 if no entry matches.
 */
int ev_rank(const struct ev_culprit *list, size_t n, const struct ev_culprit *truth,
		const struct ev_culprit *others, size_t n_others, enum ev_match_mode mode);

/**
 * Parse the analyzer's --json culprit list (`root.culprits`, in rank order).
 * Flow text that cannot be parsed is kept as all-wildcard (counts as not
 * naming a flow). @return count (<= max), or -1 with err filled.
 */
int ev_culprits_from_analysis(const json_t *root, struct ev_culprit *out, size_t max,
		char *err, size_t errlen);

/** Parse a truth fault's "culprit" object. @return 0, or -1 with err filled. */
int ev_culprit_from_truth(const json_t *culprit, struct ev_culprit *out, char *err, size_t errlen);

/* ------------------------------------------------------------ NetMedic */

struct nm_model;

/**
 * Load every trace (*.mst) of a run directory: per-packet arrival (matched by
 * wire ID to the upstream transmit), dequeue, departure and drops per node.
 * @param start_tsc time zero of the run (0: the earliest record).
 * @return the model, or NULL with err filled.
 */
struct nm_model *nm_load(const char *dir, uint64_t start_tsc, char *err, size_t errlen);

/** Run length in microseconds (last record - start). */
double nm_duration_us(const struct nm_model *m);

/** Number of components (NFs plus the source) and their names. */
size_t nm_components(const struct nm_model *m);
const char *nm_component_name(const struct nm_model *m, size_t i);

/**
 * Diagnose the interval [from_us, to_us] NetMedic-style with windows of
 * `window_us`: per-component variables, abnormality against the history
 * (every window that overlaps none of the `exclude` intervals, given as
 * from,to pairs in us), edge weights from similar past states, ranking by
 * impact. Writes up to `max` culprits in rank order (the source as kind
 * source, NFs as processing). @return count, or -1 with err filled.
 */
int nm_diagnose(const struct nm_model *m, double window_us, const double *exclude,
		size_t n_exclude, double from_us, double to_us, struct ev_culprit *out,
		size_t max, char *err, size_t errlen);

/**
 * Quantile `q` (0..1) of the end-to-end latency (us) of the packets that left
 * the graph and entered it outside the `exclude` intervals (from,to pairs in
 * us): the latency of normal operation. Packets are followed back hop by hop
 * (departure, its dequeue, the upstream departure) to the source's trace.
 * @return the latency in us, or -1 if no packet could be followed.
 */
double nm_latency_quantile(const struct nm_model *m, const double *exclude, size_t n_exclude,
		double q);

void nm_free(struct nm_model *m);

#endif /* MSCOPE_EVAL_H */
