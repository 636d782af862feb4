/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * AutoFocus aggregation of causal relations into ranked root-cause rules.
 *
 * The analyzer turns every diagnosed victim packet into causal relations
 * `<culprit NF, kind, culprit flow> -> <victim NF, victim flow> : score`.
 * Thousands of them are unreadable; this library condenses them into a few
 * rules such as
 *
 *   fw1 processing  udp 10.1.2.0/24:49152-65535 > 10.0.0.53:53
 *       -> nat1  tcp *:* > 10.9.0.0/16:80 : share 0.41
 *
 * by exact offline multidimensional hierarchical heavy hitters (HHH) with
 * AutoFocus compression (Estan, Savage, Varghese, SIGCOMM 2003).
 *
 * ## Hierarchies
 * A flow aggregate (struct mscope_af_prefix) generalises a 5-tuple along:
 *  - address family: exact (IPv4 / IPv6) -> any; addresses can only be
 *    narrowed once the family is fixed;
 *  - source and destination address: prefix lengths from a step table,
 *    by default /0 /8 /16 /24 /32 for IPv4 and /0 /32 /48 /64 /128 for IPv6
 *    (bit-granular steps can be given in struct mscope_af_opts);
 *  - source and destination port: exact -> well-known 0-1023 / registered
 *    1024-49151 / ephemeral 49152-65535 -> any. Ports exist only for TCP,
 *    UDP, SCTP, DCCP and UDP-Lite: other protocols' flows sit in "any port";
 *  - protocol: exact -> any.
 * Culprit NF and kind are always exact. The victim NF is exact or any.
 * A culprit without a flow (culprit_has_flow == 0, e.g. an NF interrupt)
 * and a non-IP flow (family 0) only belong to the all-wildcard aggregate "*".
 *
 * ## Clusters, compression, rules
 * The aggregation runs in two stages, as agurim (IMC 2017) aggregates its
 * main attribute first and sub-attributes within each result:
 *  1. per (culprit NF, kind), over the culprit flows: every cluster whose
 *     score is at least `threshold` of the total is found exactly; then,
 *     most specific first, a cluster is reported when the score of its
 *     members that no already reported cluster explains (its *residual*)
 *     is still at least the threshold. Each relation is explained by exactly
 *     one reported cluster (the first one containing it in that order), so
 *     rule scores never add up to more than the total.
 *  2. within each reported culprit cluster, over (victim NF, victim flow)
 *     of the relations it explains, the same search; a victim cluster needs
 *     the global threshold and also `victim_share` (default 20%) of the
 *     culprit cluster's residual, so that one culprit that hurt everything
 *     yields a few rules, not dozens. The all-wildcard victim aggregate is
 *     always reported for what remains, so the victim rules of a culprit
 *     cluster add up exactly to its residual.
 * A rule is one (culprit cluster, victim cluster) pair. Its `score` is the
 * residual, `share` = score / total score of all relations, `victims` the
 * number of distinct victim_key values among the relations it explains, and
 * t_min_ns/t_max_ns their time range.
 *
 * ## Cost
 * Clusters below the threshold are never expanded (an iceberg-cube search,
 * Beyer & Ramakrishnan, SIGMOD 1999), so the work grows with the number of
 * heavy clusters (at most 1/threshold per level combination) rather than
 * with the full lattice. A tiny threshold makes it slow.
 *
 * ## Errors
 * Functions returning int return 0 on success and -1 with errno set.
 * The library never prints.
 */
#ifndef MSCOPE_AUTOFOCUS_H
#define MSCOPE_AUTOFOCUS_H

#include <stddef.h>
#include <stdint.h>

#include "mscope_trace.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Default threshold: 5% of the total score. */
#define MSCOPE_AF_DEFAULT_THRESHOLD 0.05

/** Default victim share: 20% of the culprit cluster's residual. */
#define MSCOPE_AF_DEFAULT_VICTIM_SHARE 0.2

/** victim_nf of a rule whose victims are at several NFs. */
#define MSCOPE_AF_ANY_NF UINT32_MAX

/** One causal relation from the analyzer. */
struct mscope_af_relation {
	uint32_t culprit_nf;              /**< culprit NF id (analyzer's numbering) */
	uint8_t kind;                     /**< culprit kind (analyzer's enum: processing, source) */
	uint8_t culprit_has_flow;         /**< 0: blame has no flow (culprit_flow ignored) */
	struct mscope_flow_key culprit_flow;
	uint32_t victim_nf;               /**< NF where the victim queued (must not be MSCOPE_AF_ANY_NF) */
	struct mscope_flow_key victim_flow;
	double score;                     /**< blame, >= 0 and finite */
	uint64_t victim_key;              /**< identifies the victim packet (distinct count) */
	uint64_t t_ns;                    /**< time of the victim */
};

/** Options. Zero-initialise; zero fields mean the defaults. */
struct mscope_af_opts {
	double threshold;                 /**< fraction of total score, 0 = default 0.05; else in (0, 1] */
	/** IPv4 prefix lengths below /0 from coarse to fine, strictly increasing,
	 * each in 1..32; NULL = {8, 16, 24, 32}. At most 32 steps. */
	const uint8_t *v4_steps;
	size_t n_v4_steps;
	/** IPv6 the same, each in 1..128; NULL = {32, 48, 64, 128}. At most 32 steps. */
	const uint8_t *v6_steps;
	size_t n_v6_steps;
	/** On the victim side a cluster also needs this fraction of its culprit
	 * cluster's residual: 0 = default 0.2; else in (0, 1]. 1 gives one rule
	 * per culprit cluster (its victims' tightest common aggregate); a tiny
	 * value leaves only the global threshold. */
	double victim_share;
};

/** A flow aggregate. */
struct mscope_af_prefix {
	uint8_t family;                   /**< 4, 6, or 0 = any (then src_len = dst_len = 0) */
	uint8_t src_len, dst_len;         /**< prefix lengths in bits */
	uint8_t src[16], dst[16];         /**< network byte order, bits past the length are 0 */
	uint16_t sport_lo, sport_hi, dport_lo, dport_hi; /**< inclusive ranges */
	int16_t proto;                    /**< -1 any */
};

/** One ranked rule. */
struct mscope_af_rule {
	uint32_t culprit_nf;
	uint8_t kind;
	uint8_t culprit_has_flow;         /**< 0 when the culprit aggregate is "*" (all or no flows) */
	struct mscope_af_prefix culprit;
	uint32_t victim_nf;               /**< or MSCOPE_AF_ANY_NF */
	struct mscope_af_prefix victim;
	double score;                     /**< residual score this rule explains */
	double share;                     /**< score / total score of all relations */
	uint64_t victims;                 /**< distinct victim_key among the relations explained */
	uint64_t t_min_ns, t_max_ns;      /**< time range of those relations */
	uint64_t relations;               /**< number of relations explained */
	/** Rank of this rule's culprit cluster (0 = the largest) among all culprit
	 * clusters ordered by cluster_score: the rules of one culprit that hurt
	 * several victim aggregates share it, so a root-cause ranking can count
	 * each culprit once. */
	uint32_t cluster;
	double cluster_score;             /**< residual of the culprit cluster: sum of its rules' scores */
	uint64_t cluster_victims;         /**< distinct victim_key over all rules of the culprit cluster */
};

/**
 * Aggregate relations into ranked rules.
 * @param rel the relations (may be NULL when n == 0).
 * @param opts may be NULL for defaults.
 * @param rules out: malloc'ed array sorted by score descending (ties in a
 *   fixed order), NULL when there are none; the caller free()s it.
 * @param nrules out: number of rules.
 * @return 0, or -1 with errno: EINVAL (NULL output pointers, a negative,
 *   NaN or infinite score, victim_nf == MSCOPE_AF_ANY_NF, bad options),
 *   ENOMEM.
 * Identical input gives identical output. When the total score is 0 there
 * are no rules.
 */
int mscope_af_aggregate(const struct mscope_af_relation *rel, size_t n,
		const struct mscope_af_opts *opts,
		struct mscope_af_rule **rules, size_t *nrules);

/**
 * Format an aggregate like mscope_flow_format(): "PROTO SRC:SPORT > DST:DPORT",
 * e.g. "udp 10.1.2.0/24:49152-65535 > 10.0.0.53:53", "tcp [2001:db8::/32]:* > *:443",
 * "icmp 10.0.0.1 > 10.0.0.2" (no ports for port-less protocols), and "*"
 * for the all-wildcard aggregate. A full-length address has no "/len"; a
 * wildcard address of a known family is "0.0.0.0/0" or "::/0", of any
 * family "*". The result is truncated to fit `len` (always NUL-terminated
 * when len > 0).
 * @return buf.
 */
char *mscope_af_prefix_format(const struct mscope_af_prefix *p, char *buf, size_t len);

/** The all-wildcard aggregate ("*"). */
void mscope_af_prefix_any(struct mscope_af_prefix *p);

/** Whether the aggregate is the all-wildcard one. */
int mscope_af_prefix_is_any(const struct mscope_af_prefix *p);

/**
 * Whether flow `k` belongs to aggregate `p`. A NULL `k` (no flow) and a
 * non-IP flow belong only to the all-wildcard aggregate.
 */
int mscope_af_prefix_contains(const struct mscope_af_prefix *p,
		const struct mscope_flow_key *k);

/** Short protocol name ("tcp", "udp", "icmp", ...) or NULL when unnamed. */
const char *mscope_af_proto_name(int proto);

#ifdef __cplusplus
}
#endif

#endif /* MSCOPE_AUTOFOCUS_H */
