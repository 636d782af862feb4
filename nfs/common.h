/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Shared code of the sample NFs and the traffic source (nfs/): EAL and port
 * setup, the forwarding loop, output links with 5-tuple filters, the
 * per-packet work knob, fault hooks (stall, slow) and the ground-truth and
 * statistics writers.
 *
 * Every program moves packets only with rte_eth_rx_burst/rte_eth_tx_burst on
 * ethdev ports, so a collector preloaded into it sees them unmodified. A
 * program's ports are the EAL --vdev devices in order: by default port 0 is
 * the input and every other port an output; --in and --out say otherwise.
 *
 * Times given to the fault hooks are microseconds from the run's t0 (the
 * instant the traffic source starts sending, CLOCK_REALTIME ns, from --t0 or
 * a --t0-file written by the chain launcher), or from the start of the loop
 * when no t0 is given.
 */
#ifndef MSCOPE_NF_COMMON_H
#define MSCOPE_NF_COMMON_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <rte_mbuf.h>

#define NF_MAX_PORTS 16
#define NF_MAX_LINKS 16
#define NF_MAX_FAULTS 16
#define NF_BURST 32
#define NF_DROP UINT16_MAX          /**< out index meaning "drop this packet" */
#define NF_DEFAULT_OUT (UINT16_MAX - 1) /**< out index meaning "route by links" */

/** A flow's 5-tuple (IPv4; addresses and ports in host byte order). */
struct nf_tuple {
	uint32_t src;
	uint32_t dst;
	uint16_t sport;
	uint16_t dport;
	uint8_t proto;
	uint8_t is_ip;      /**< 0: not IPv4 (all other fields 0) */
};

/** A 5-tuple filter: every set field must match. */
struct nf_filter {
	uint32_t src, src_mask;
	uint32_t dst, dst_mask;
	uint16_t sport_lo, sport_hi;
	uint16_t dport_lo, dport_hi;
	int proto;          /**< -1: any */
	bool any;           /**< matches everything (also non-IP frames) */
	bool none;          /**< matches nothing (a link only NF decisions use) */
};

/** Where an IPv4 packet's headers are inside its first segment. */
struct nf_pkt {
	struct nf_tuple t;
	uint16_t l3_off;    /**< offset of the IPv4 header, 0 if not IPv4 */
	uint16_t l4_off;    /**< offset of the L4 header, 0 if none (or a later fragment) */
};

/** An output link: a named port, optionally reserved for matching packets. */
struct nf_link {
	char name[64];
	uint16_t port;
	bool has_filter;
	struct nf_filter filter;
};

enum nf_fault_kind { NF_FAULT_STALL, NF_FAULT_SLOW };

struct nf_fault {
	enum nf_fault_kind kind;
	uint64_t at_us, dur_us;
	double factor;              /**< slow: per-packet time multiplier */
	struct nf_filter filter;    /**< slow: which packets */
	char filter_text[128];
	/* filled while running */
	int state;                  /**< 0 pending, 1 active, 2 done */
	uint64_t start_tsc, end_tsc;
	int64_t start_ns, end_ns;
	uint64_t packets;           /**< slow: packets slowed */
};

/** Per-port counters kept by the loop (the programs' own view, independent of any collector). */
struct nf_port_stats {
	uint64_t rx, tx, tx_refused, rx_bytes, tx_bytes;
};

/** Options common to all programs (see nf_common_usage()). */
struct nf_common {
	const char *prog;
	char name[64];
	/* ports */
	uint16_t in_ports[NF_MAX_PORTS];
	unsigned int n_in;
	struct nf_link links[NF_MAX_LINKS];
	unsigned int n_links;
	unsigned int nb_rxd, nb_txd, burst;
	unsigned int link_wait_ms;
	/* pacing */
	double work_ns;             /**< per-packet service time, 0 = none */
	bool work_sleep;            /**< sleep through long service times instead of spinning */
	bool yield;
	unsigned int yield_us;      /**< 0: sched_yield, else sleep this long on an empty poll */
	/* faults and bookkeeping */
	struct nf_fault faults[NF_MAX_FAULTS];
	unsigned int n_faults;
	const char *truth_path;
	const char *stats_path;
	const char *ready_path;
	const char *t0_path;
	int64_t t0_ns;              /**< 0 until known */
	bool quiet;
};

/** Run-time state shared by the loop and the programs. */
struct nf_ctx {
	struct nf_common *opt;
	struct rte_mempool *pool;
	uint16_t nb_ports;
	uint64_t tsc_hz;
	uint64_t t0_tsc;            /**< TSC at t0 (valid when opt->t0_ns != 0) */
	uint64_t start_tsc;
	uint64_t end_tsc;           /**< when the loop returned */
	double loop_cpu_s;          /**< CPU time of the loop's thread */
	struct nf_port_stats port[NF_MAX_PORTS];
	uint64_t dropped_nf;        /**< dropped by the NF's own decision */
	uint64_t slowed;
	/* default (unfiltered) links, for hashing */
	uint16_t dflt[NF_MAX_LINKS];
	unsigned int n_dflt;
	double work_cycles;
	uint64_t burst_extra_cycles; /**< added by a process callback: extra service time of this burst */
	json_t *extra;              /**< program-specific statistics, added to --stats */
};

/** Long options understood by nf_common_opt(); ends with a zero entry. */
extern const struct option nf_common_longopts[];

/** Number of entries of nf_common_longopts (without the terminator). */
unsigned int nf_common_nlongopts(void);

/** Defaults; the name comes from MSCOPE_NF when set. */
void nf_common_init(struct nf_common *o, const char *prog);

/**
 * Handle one common option (getopt_long value `c`). Prints an error naming
 * the bad value and exits with 2 on a bad value.
 * @return 1 if the option was common and handled, 0 if not ours.
 */
int nf_common_opt(struct nf_common *o, int c, const char *arg);

/** Print the common options' help. */
void nf_common_usage(FILE *f);

/** True if argv asks for --help/-h (checked before EAL initialisation). */
bool nf_help_requested(int argc, char **argv);

/**
 * Parse the application arguments (after nf_eal_init()): the common options
 * and the program's own `own` options (values >= 2000, alphabetical, zero
 * terminated), which go to own_opt(c, optarg, st) (return 0 if handled,
 * else print why and return -1). --help prints usage(stdout) and exits 0; an
 * unknown option or a stray argument prints usage(stderr) and exits 2.
 */
void nf_getopt(struct nf_common *o, int argc, char **argv, const struct option *own,
		int (*own_opt)(int c, const char *arg, void *st), void *st,
		void (*usage)(FILE *f));

/**
 * Initialise EAL from argv (everything before "--"), install the signal
 * handlers and return the index of the first application argument (argv is
 * left as rte_eal_init() leaves it: argv[ret] is the program name).
 */
int nf_eal_init(int argc, char **argv);

/**
 * Create the mbuf pool, configure and start every port, check the link
 * options against the ports that exist, wait for the output links to come up
 * and write the ready file. Exits with a message on failure.
 */
void nf_setup(struct nf_ctx *ctx, struct nf_common *o, unsigned int nb_mbufs);

/** True once SIGINT or SIGTERM arrived. */
bool nf_quit(void);

/**
 * The forwarding loop: rx a burst from each input port, parse it, let `fn`
 * decide, apply the work knob and the fault hooks, tx to the chosen outputs;
 * packets a driver refuses are freed and counted. Returns when nf_quit().
 *
 * `fn` gets the n packets and their parsed headers; for each it sets out[i]
 * to an index into opt->links, NF_DEFAULT_OUT (first link whose filter
 * matches meta[i].t, else a hash over the links without filter) or NF_DROP.
 * It may rewrite packets in place or prepend to them (then it updates
 * meta[i].t to the outgoing headers), never replace the mbuf. NULL forwards
 * everything to NF_DEFAULT_OUT.
 */
void nf_loop(struct nf_ctx *ctx,
		void (*fn)(struct nf_ctx *ctx, struct rte_mbuf **pkts,
			struct nf_pkt *meta, uint16_t n, uint16_t *out, void *arg),
		void *arg);

/** Stop and close the ports, write statistics and truth, rte_eal_cleanup(). */
void nf_teardown(struct nf_ctx *ctx);

/* ---------------------------------------------------------------- helpers */

/** Parse the frame's Ethernet/VLAN/IPv4/L4 headers (first segment only). */
void nf_parse(const struct rte_mbuf *m, struct nf_pkt *p);

bool nf_filter_match(const struct nf_filter *f, const struct nf_tuple *t);

/**
 * Parse "src=10.0.0.0/8,dst=1.2.3.4,sport=1024-65535,dport=80,proto=tcp";
 * "", "*" and "any" match everything, "none" nothing.
 * @return 0, or -1 with a message in err.
 */
int nf_filter_parse(const char *s, struct nf_filter *f, char *err, size_t errlen);

/** Parse "A.B.C.D" or "A.B.C.D/len" into host-order address and mask. */
int nf_parse_prefix(const char *s, uint32_t *addr, uint32_t *mask);

/** Parse a protocol name (tcp, udp, icmp) or number; -1 if invalid. */
int nf_parse_proto(const char *s);

/** A hash of the 5-tuple (stable across processes). */
uint32_t nf_tuple_hash(const struct nf_tuple *t);

/** Index into ctx->opt->links for a packet: first matching filter, else hash over default links. */
uint16_t nf_route(const struct nf_ctx *ctx, const struct nf_tuple *t);

/** Index of the link called `name`, or -1. */
int nf_link_by_name(const struct nf_common *o, const char *name);

/** CLOCK_REALTIME in ns. */
int64_t nf_realtime_ns(void);

/** Microseconds since t0 (or since the loop started). */
double nf_now_us(const struct nf_ctx *ctx, uint64_t tsc);

/** Try to learn t0 from --t0-file; returns true when t0 is known. */
bool nf_poll_t0(struct nf_ctx *ctx);

/** Busy-wait until the TSC reaches `until`. */
void nf_spin_until(uint64_t until);

/**
 * Append one event to the truth file as a JSON line (steals the reference
 * to `ev`; adds "nf", "pid" and "program"). No-op without --truth.
 */
void nf_truth_event(const struct nf_ctx *ctx, json_t *ev);

/** Parse a decimal number fully; -1 on error. */
int nf_parse_u64(const char *s, uint64_t *v);
int nf_parse_double(const char *s, double *v);

#define NF_LOG(ctx, ...) do { \
	if (!(ctx)->opt->quiet) { \
		fprintf(stderr, "%s: ", (ctx)->opt->name); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
	} \
} while (0)

#endif /* MSCOPE_NF_COMMON_H */
