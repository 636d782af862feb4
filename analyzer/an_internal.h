/* SPDX-License-Identifier: BSD-3-Clause */
/* Private state of the analyzer, shared by its modules (never installed). */
#ifndef AN_INTERNAL_H
#define AN_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "mscope_analyzer.h"

/* Per-hop flags. A "hop" is one packet at one node: an rx'd packet or a
 * queue-full drop at an NF input queue, or a packet sent by a source. */
#define H_TX     0x01 /* e is the accepted tx time */
#define H_DROP   0x02 /* dropped at this node; e is the drop time */
#define H_QFULL  0x04 /* lost in the full input queue: never dequeued */
#define H_PRED   0x08 /* pred[] is valid */
#define H_SUCC   0x10 /* some downstream hop matched this one's tx */
#define H_APPROX 0x20 /* arrival approximated (no upstream tx seen) */
#define H_BURST  0x40 /* first packet of an rx burst */
#define H_SRC    0x80 /* a source hop */

#define NO_HOP UINT32_MAX
#define NO_PATH UINT32_MAX

struct an_qd {          /* a non-zero rx queue depth sample */
	uint32_t hop;       /* first hop of the burst after which it was seen */
	int32_t qdepth;
};

struct an_seg {         /* rx sequence numbers -> hop indices, split at gaps */
	uint64_t seq0;
	uint32_t hop0;
};

struct an_node {
	char id[320];           /* nf:pPqQ, or the source's name */
	char nf[256];           /* the header's name, escaped (an_escape) */
	char *file;             /* path of the (first) trace file */
	struct mscope_trace_header hdr;
	int nf_idx;
	bool is_source;
	/* time conversion of this file's TSC into the common tick domain */
	bool conv_identity;
	double conv_scale, conv_offset;

	uint32_t base, n, nrx;  /* global hop range [base, base+n); rx hops first */

	/* loading: pass 0 counts, pass 1 writes into the global arrays */
	struct mscope_analysis *an;
	bool counting;
	uint32_t cnt_rx, cnt_q;
	int64_t *ld_e;          /* views of the global arrays at base (pass 1) */
	uint32_t *ld_wout;
	uint8_t *ld_fl;
	size_t q_n;             /* queue-full drops, appended after rx hops */
	struct mscope_flow_key *fkeys; /* local flow table */
	uint32_t nfkeys, fkeys_cap;
	uint32_t *ref2local;    /* flow ref -> local index + 1 (0 = undefined) */
	uint32_t ref_cap;
	struct an_seg *segs;
	size_t nsegs, segs_cap;
	struct an_qd *qd;
	size_t nqd, qd_cap;
	/* local hops the NF freed by its own decision (firewall rule, no NAT
	 * mapping): consumed, not congestion, so never victims (sorted, unique) */
	uint32_t *nfd;
	size_t nnfd, nfd_cap;
	uint64_t seq_next;

	/* load diagnostics */
	uint64_t loss_records, loss_packets;
	uint64_t del_segments, del_records, del_packets; /* DELETED records */
	uint64_t sidecar_records, sidecar_packets;      /* from <trace>.lost */
	bool lost_unknown;      /* a .lost file that could not be read */
	bool no_index;          /* the file ends without its seek table */
	/* windowed analysis: which part of the file was read, which part is kept */
	bool from_start;        /* the hops loaded start at the file's start */
	bool ran_off;           /* the look-back needed data before what was read */
	int64_t first_t;        /* time of the file's first record */
	int64_t load_t0;        /* windowed load: frames from this time were read */
	uint64_t rd_tsc0, rd_tsc1; /* ... as raw TSC: the reader's window */
	int64_t *frame_t;       /* per frame of the index: first and last record time */
	size_t nframes;
	char **paths;           /* segment files of the node's stream (npaths > 1) */
	size_t npaths;
	uint64_t backsteps;
	int64_t max_backstep;
	uint64_t nolink, badlink, duptx, undef_flow, src_rx, tx_before_rx;
	int64_t clock_disagree_ns;

	/* timeline (rx hops only: they entered the queue) */
	uint32_t *ord;          /* local rx hop indices sorted by (a, index); NULL: identity */
	uint32_t *pstart;       /* per sorted position: first sorted position of its busy period */
	int64_t wait_p50, wait_p90, wait_p99;
	uint32_t qlen_p50, qlen_p99, qlen_max;
	uint32_t matched, unmatched;
	bool approximated;

	/* rate */
	double rate;            /* peak rate, packets per tick */
	const char *rate_from;
	double tau_usual;       /* usual per-packet service time, ticks */
	bool rate_fallback, rate_default; /* for warnings after the parallel pass */
	uint32_t *slow;         /* first local hop of each slow burst (sorted) */
	size_t nslow;
	uint32_t *trig;         /* traffic classes whose presence makes bursts slow (sorted) */
	size_t ntrig;
	/* bursts holding a trigger class that took longer than usual: local
	 * start hop (sorted) and the time beyond the usual, cumulated through it */
	uint32_t *txs_at;
	double *txs_cum;
	size_t ntxs;

	/* results */
	uint64_t packets, victims, drops, nf_drops;
	json_t *series;         /* queue length over time (kept when hops are released) */
};

struct an_path {        /* an interned upstream path: node sequence */
	uint32_t parent;    /* NO_PATH for a root */
	uint16_t node;
	uint16_t depth;     /* 1 for a root */
};

struct an_rel {         /* a per-victim causal relation */
	uint32_t victim;    /* victim index */
	uint32_t culprit_nf;
	uint8_t kind;
	uint8_t has_flow;
	uint32_t flow;      /* global flow id */
	uint32_t victim_nf;
	uint32_t victim_flow;
	double score;
};

struct an_cul {         /* one culprit of one victim (summed over nodes) */
	uint32_t nf;
	uint8_t kind, has_flow;
	uint32_t flow;
	double score;
	double group;       /* total of the same (NF, kind): the list's first key */
};

struct an_queued_int {
	uint32_t node;
	uint32_t hop;       /* global */
	int64_t wait;
	uint32_t n_i, n_p;
	int64_t period;
	double s_i, s_p, s_w;
};

struct an_victim {
	uint32_t term;      /* global terminal hop */
	uint32_t root;      /* global ingress hop */
	int64_t t_in;       /* ingress time, ticks */
	int64_t latency;    /* ticks */
	bool dropped;
	uint32_t wire;      /* identity at ingress (filled by diagnosis) */
	uint64_t tsc;
	/* filled by diagnosis */
	uint32_t q0, nq;    /* range in an->queued */
	uint32_t c0, nc;    /* range in an->vculprits */
};

struct an_period {
	uint32_t node;
	int64_t t0, t1;
	uint32_t victims;
};

struct an_edge {
	uint32_t from, to;  /* node indices */
	uint64_t packets;
};

struct mscope_analysis {
	struct mscope_an_opts opts;
	struct mscope_an_rate *rates;

	struct an_node *nodes;
	uint32_t nnodes;
	char (*nfs)[256];
	uint32_t nnfs;

	/* global flow table */
	struct mscope_flow_key *flows;
	uint32_t nflows, flows_cap;
	uint32_t *fh;       /* hash slots: flow id + 1 */
	uint32_t fh_cap;

	/* hops (global SoA) */
	uint32_t nh;
	int64_t *d, *e;     /* arrivals: an_arr() */
	uint32_t *win, *wout, *flow, *pred, *path;
	uint16_t *qa;       /* queue length each rx hop met (itself included), saturated */
	uint8_t *fl;

	/* paths */
	struct an_path *paths;
	uint32_t npaths, paths_cap;
	uint32_t *ph;       /* hash slots: path id + 1 */
	uint32_t ph_cap;
	uint64_t *path_count; /* packets per path (at the path's last node) */

	struct an_edge *edges;
	uint32_t nedges;

	/* clock */
	double hz;          /* ticks per second */
	size_t rate_scratch; /* doubles per rate-estimation scratch array */
	void *job_ctx;      /* context of the running an_for_nodes() job */
	int64_t t_start, t_end;
	bool windowed;          /* --from/--to: only the window's region is analysed */
	int64_t run_start;      /* earliest record of any trace: origin of --from/--to */
	int64_t run_last;       /* latest record of any trace (windows) */
	int64_t region_t0, region_t1; /* the region analysed (ticks) */
	uint32_t clock_ref;     /* node whose TSC is the common time base */
	uint64_t frames_read, frames_total; /* windowed load: frames decoded / in the files */
	bool have_source;
	uint32_t src_nf_default; /* NF index blamed for input with no source trace */
	bool any_approx;
	uint64_t unresolved, conflicts, trace_loss_records, trace_loss_packets;
	uint64_t del_segments, del_records, del_packets;
	uint64_t sidecar_records, sidecar_packets;
	uint32_t traces_unfinished; /* files without their trailing seek table */
	uint64_t lost_source;   /* source packets seen nowhere */
	uint64_t in_flight;     /* packets neither delivered nor dropped */

	/* topology */
	char (*topo_links)[2][64];
	size_t ntopo_links;

	/* victims and diagnosis */
	struct an_victim *victims;
	uint32_t nvictims;
	uint64_t delivered, dropped_pkts, nf_dropped;
	int64_t lat_threshold;
	char thr_from[96];      /* how lat_threshold was derived (for the report) */
	struct an_queued_int *queued;
	size_t nqueued;
	struct mscope_an_queued *queued_pub;
	struct an_rel *rels;
	size_t nrels;
	struct an_cul *culs;
	size_t nculs;
	struct mscope_an_culprit *vculprits; /* public view of one victim's culs */
	size_t vcul_cap, qpub_cap;
	uint64_t *flow_total;   /* packets per flow at the ingress */
	struct an_period *periods;
	size_t nperiods;
	bool diagnosed;
	bool released;          /* per-hop arrays freed (mscope_an_release) */

	/* warnings */
	char **warn;
	size_t nwarn, warn_cap;
};

/* Arrival of hop g: its upstream's tx time (never after its own dequeue),
 * else its dequeue minus the approximation offset kept in pred[]. */
static inline int64_t
an_arr(const struct mscope_analysis *an, uint32_t g)
{
	if (an->fl[g] & H_PRED) {
		int64_t x = an->e[an->pred[g]];
		return x < an->d[g] ? x : an->d[g];
	}
	return an->d[g] - (int64_t)an->pred[g];
}

/* CLOCK_REALTIME (ns) of time t, by the clock reference's anchor (exact in
 * integers: a double has 256 ns steps at today's epoch). */
static inline int64_t
an_realtime(const struct mscope_analysis *an, int64_t t)
{
	const struct mscope_trace_header *h = &an->nodes[an->clock_ref].hdr;

	return h->anchor_realtime_ns + (int64_t)((__int128)(t - (int64_t)h->anchor_tsc) *
		1000000000 / (__int128)h->tsc_hz);
}

/* Traffic class of a flow for trigger detection: protocol and destination
 * port (0: not IP). */
static inline uint32_t
an_flow_class(const struct mscope_analysis *an, uint32_t flow)
{
	const struct mscope_flow_key *k = &an->flows[flow];

	if (k->family == 0)
		return 0;
	return 1u << 24 | (uint32_t)k->proto << 16 | k->dport;
}

/* i-th arrival of a node (ord is NULL when arrivals are in rx order) */
#define ORD(nd, i) ((nd)->ord ? (nd)->ord[(i)] : (uint32_t)(i))

/* util.c */
void an_err(struct mscope_an_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void an_warn(struct mscope_analysis *an, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A name or path from a file as valid UTF-8 without control characters:
 * such bytes become \xNN (*changed says whether any did). malloc'd, or NULL. */
char *an_escape(const char *in, bool *changed);
void *an_grow(void *p, size_t *cap, size_t need, size_t elem);
void *an_big_alloc(size_t bytes);
int an_for_nodes(struct mscope_analysis *an,
		int (*fn)(struct mscope_analysis *an, uint32_t k, void *scratch), size_t scratch);
int64_t an_select(int64_t *v, size_t n, double pct);
double an_select_d(double *v, size_t n, double pct);
uint32_t an_hop_node(const struct mscope_analysis *an, uint32_t g);
static inline double an_us(const struct mscope_analysis *an, int64_t ticks)
{
	return (double)ticks * 1e6 / an->hz;
}
static inline int64_t an_ticks(const struct mscope_analysis *an, double us)
{
	return (int64_t)(us * an->hz / 1e6 + (us >= 0 ? 0.5 : -0.5));
}
uint32_t an_flow_intern(struct mscope_analysis *an, const struct mscope_flow_key *k);
const char *an_flow_text(const struct mscope_analysis *an, uint32_t flow, char *buf, size_t len);
bool an_filter_match(const struct mscope_an_filter *f, const struct mscope_flow_key *k);

/* load.c: read the directory into nodes and global hop arrays */
int an_load(struct mscope_analysis *an, const char *dir, struct mscope_an_error *err);
int an_topology(struct mscope_analysis *an, const char *file, struct mscope_an_error *err);

/* match.c: arrivals, preds, paths, edges */
int an_match(struct mscope_analysis *an, struct mscope_an_error *err);
uint32_t an_path_node_at(const struct mscope_analysis *an, uint32_t path, uint32_t up);

/* timeline.c: sorted arrivals, busy periods, waits and queue lengths */
int an_timeline(struct mscope_analysis *an, struct mscope_an_error *err);
uint32_t an_cnt_deq(const struct mscope_analysis *an, const struct an_node *nd, int64_t t);
double an_served(const struct mscope_analysis *an, const struct an_node *nd, int64_t t);
uint32_t an_rank(const struct mscope_analysis *an, const struct an_node *nd, uint32_t local);
json_t *an_series(const struct mscope_analysis *an, const struct an_node *nd, int points);

/* rate.c */
#define SLOW_BURST 0.5      /* a burst is slow when it took 1.5x the usual time */
double an_burst_slowness(const struct mscope_analysis *an, const struct an_node *nd,
		uint32_t s, uint32_t *nb);
int an_rates(struct mscope_analysis *an, struct mscope_an_error *err);

/* victims.c */
int an_victims(struct mscope_analysis *an, struct mscope_an_error *err);

/* blame.c */
struct an_local {
	uint32_t ps, rank;  /* busy period start and victim position (sorted) */
	uint32_t n_i, n_p;
	double n_p_exact;   /* served in T, fractional (bursts in service) */
	int64_t t0, period;
	int64_t t1;         /* end of the processing window: dequeue, else arrival */
	double s_i, s_p;
	double s_w;         /* [ours] shortfall while the packet waited */
};
void an_local(const struct mscope_analysis *an, uint32_t node, uint32_t local,
		struct an_local *l);
int an_blame(struct mscope_analysis *an, struct mscope_an_error *err);

/* output.c: ranking of the aggregated rules (AutoFocus builds only) */
#ifdef MSCOPE_AUTOFOCUS_H
struct an_cause_rule {
	struct mscope_af_rule r;    /* as aggregated (r.cluster: the aggregation's rank) */
	double cause_score;         /* its root cause's score: the ranking key */
	double victim_share;        /* NAN, or (appended rules) the victims' share */
	uint32_t cluster;           /* root-cause rank, from 0 */
};
int an_rank_causes(struct an_cause_rule *o, size_t n, uint32_t nnfs);
size_t an_victim_rules(const struct mscope_af_relation *rel, size_t nrel, uint32_t nvictims,
		uint32_t nnfs, const struct an_cause_rule *o, size_t n, double thr,
		struct an_cause_rule **extra);
#endif

/* analyzer.c */
void an_free_hops(struct mscope_analysis *an);
int an_victim_identity(const struct mscope_analysis *an, const struct an_victim *v,
		uint32_t *wire, uint64_t *tsc);

#endif /* AN_INTERNAL_H */
