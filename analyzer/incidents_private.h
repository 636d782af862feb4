/* SPDX-License-Identifier: BSD-3-Clause */
/* Private state of the incident finder (incidents_*.c); never installed. */
#ifndef INCIDENTS_PRIVATE_H
#define INCIDENTS_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "mscope_incidents.h"

#define INC_MAX_BINS (1u << 17)   /* per node; past it bins double in width */

struct inc_bin {        /* one node, one time bin */
	uint32_t n;         /* packets that left the node in the bin (residence known) */
	uint32_t drops;     /* queue-full and tx-refused drops */
	uint32_t nf_drops;  /* freed by the NF's decision (not congestion) */
	float p99_us, max_us;
};

struct inc_node {
	char id[96];        /* as the analyzer names it: nf:pPqQ, or the source's NF name */
	char **paths;       /* its files, in segment order */
	uint32_t *segs;     /* their header segment numbers (while listing) */
	size_t npaths;
	uint64_t deleted, deleted_packets; /* segments the collector deleted (ring buffer) */
	struct mscope_trace_header hdr;
	bool is_source;
	double hz;
	uint64_t bytes, bytes_done;
	/* results */
	struct inc_bin *bins;
	uint32_t nbins;     /* used */
	uint32_t shift;     /* bin width = base width << shift */
	uint64_t hops, packets, drops;
	uint64_t unlinked;  /* tx packets whose rx was not seen (cut, or too old) */
	/* baseline */
	double med_us, mad_us, thr_us, dthr;
	uint64_t read_from_tsc; /* shard scan: read from the frame of this time (0: the start) */
	uint64_t inexact;   /* shard scan: packets whose residence needs an earlier look-back */
	char err[512];      /* scan failure of this node */
	char warn[512];     /* damaged tail: scanned up to it */
};

struct inc_incident {
	int64_t b0, b1;     /* bins [b0, b1] (final width) */
	double start_us, end_us;
	double severity, peak_us;
	uint64_t drops;
	int peak_node;
	size_t nnodes;
	double cut_from_us, cut_to_us; /* the window cut out for its diagnosis */
	double cut_first_us;  /* earliest record in the cut: the analysis' time 0 */
	json_t *doc;        /* the diagnosis */
	char *diag_err;     /* why it could not be diagnosed */
};

struct mscope_inc_scan {
	char dir[4096];
	struct mscope_inc_opts opts;
	struct inc_node *nodes;
	size_t nnodes, nfiles;
	uint64_t origin_tsc;  /* run start: earliest record of any trace */
	double hz;            /* of the first node: all traces share one host's TSC */
	uint64_t t0_tsc, t1_tsc; /* scan window (t1 = UINT64_MAX: end) */
	double bin_ticks;     /* base width */
	uint32_t shift;       /* common final shift */
	int64_t bin0;         /* index of the first scanned bin from the origin (base width) */
	uint64_t count_tsc;   /* shard scan: records before this are look-back (state only) */
	const unsigned char *cut_mask; /* incidents whose windows are cut (NULL: all) */
	uint64_t *shard_t;    /* shard plan: shard k starts at shard_t[k] (TSC) */
	unsigned nshards, rescans;
	double cpu_s, wall_s;
	int threads;
	uint64_t last_tsc;
	struct inc_incident *inc;
	size_t ninc, ndropped;
	size_t nweak;         /* stood out, below min_severity */
	char cut_root[1024];  /* temporary directory of the cuts, "" none */
	double normal_from_us, normal_to_us, normal_first_us; /* a stretch without incidents */
	int have_normal;
	double normal_p99_us; /* end-to-end p99 latency there, 0 unknown */
};

/* incidents.c: mscope_inc_scan() in two steps, the files listed and the
 * scan window set, then the scan (incidents_shard.c scans shards) */
struct mscope_inc_scan *inc_scan_open(const char *dir, const struct mscope_inc_opts *o,
		struct mscope_an_error *err);
int inc_scan_run(struct mscope_inc_scan *s, struct mscope_an_error *err);

/* incidents.c: clock c in seconds */
double inc_now_s(clockid_t c);

/* incidents.c: fn(ctx, node) on every node stream, s->threads at a time; the
 * calling thread calls tick(s) every 200 ms meanwhile when given. Errors are
 * in the nodes' err. @return 0, or -1 with the first node's error in *err. */
int inc_for_nodes(struct mscope_inc_scan *s, int (*fn)(void *ctx, struct inc_node *nd),
		void *ctx, void (*tick)(struct mscope_inc_scan *s), struct mscope_an_error *err);

/* incidents_scan.c: scan one node stream (ctx: the scan) */
int inc_scan_node(void *ctx, struct inc_node *nd);
/* Where the scan of a node starts reading (0: the start of its files). */
uint64_t inc_read_start(const struct mscope_inc_scan *s, const struct inc_node *nd);
/* Merge a node's bins pairwise: twice the width. */
void inc_halve(struct inc_node *nd);

/* incidents_json.c: why incident i could not be diagnosed */
int inc_set_error(struct mscope_inc_scan *s, size_t i, const char *text);

/* incidents_cut.c: remove the temporary cuts */
void inc_cut_cleanup(struct mscope_inc_scan *s);

/* Bin width (us) and start (us from the run's start) of final bin b. */
double inc_bin_us(const struct mscope_inc_scan *s);
double inc_bin_start_us(const struct mscope_inc_scan *s, int64_t b);

#endif
