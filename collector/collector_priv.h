/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private structures of libmscope-collector (never installed).
 *
 * Three parties share these:
 *  - the control path (rte_eth_dev_start and friends, any NF thread, under
 *    mc_ctl_lock) creates nodes, rings and queue contexts and swaps the
 *    port's fast-path function pointers in rte_eth_fp_ops;
 *  - the data path (NF lcores, inside rx/tx bursts) fills one
 *    single-producer ring per queue, never locking, never allocating: one
 *    8-byte slot per packet (its wire ID, hashed on the NF core, and its
 *    flow cache index or rx->tx link), plus a copy of the packet's first
 *    bytes only when its flow is new to the queue's flow cache;
 *  - the writer thread (one pthread, not an lcore) merges the rings in TSC
 *    order, turns flow cache indexes and links into flow refs and rx
 *    sequence numbers, and encodes records with the trace library.
 *
 * Why hash on the NF core: copying 64 bytes per packet for the writer cost
 * 31 ns a packet (stores into cold ring lines, which the writer's core then
 * reads away); a vector hash of bytes the NF has in cache anyway costs a
 * few ns, and 8 bytes a packet leave the NF's caches alone.
 */
#ifndef MSCOPE_COLLECTOR_PRIV_H
#define MSCOPE_COLLECTOR_PRIV_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <rte_ethdev.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>

#include "mscope_trace.h"

#define MC_LOG(fmt, ...) fprintf(stderr, "mscope-collector: " fmt "\n", ##__VA_ARGS__)

/*
 * `s` made safe to print in a warning line: control characters, '"', '\\'
 * and bytes >= 0x7f as \xNN (a name from the environment or a file name
 * must not move the cursor or forge lines). Truncated to fit `buf`.
 */
const char *mc_esc(const char *s, char *buf, size_t len);
/* mc_esc into a temporary of the calling expression: for MC_LOG arguments */
#define MC_ESC(s) mc_esc((s), (char[320]){ 0 }, 320)

#define MC_MAX_NODES 512          /* rx nodes per process (link field: 16 bits) */
#define MC_FLOW_SLOTS 8192        /* flow cache entries per node (power of 2) */
#define MC_FLOW_PROBES 8          /* linear probes before evicting */
#define MC_DEFAULT_BUFFER (1u << 20) /* ring slots (8 bytes) per queue: 8 MiB, ~7 ms at 15 Mpps */
#define MC_DATA_BYTES 64          /* bytes copied per packet: what mscope_wire_id reads */
#define MC_COPY_SLOTS (1 + MC_DATA_BYTES / 8) /* a packet copy: lengths + bytes */
/* NF-side flow cache per queue: IPv4 entries, then IPv6 entries, then the catch-all */
#define MC_FC4_BITS 14
#define MC_FC6_BITS 11
#define MC_FC4_SLOTS (1u << MC_FC4_BITS)
#define MC_FC6_SLOTS (1u << MC_FC6_BITS)
#define MC_FC_SLOTS (MC_FC4_SLOTS + MC_FC6_SLOTS) /* cache indexes below this */
#define MC_FC_CATCHALL MC_FC_SLOTS /* cache index of the non-IP catch-all flow */
#define MC_DEFAULT_QDEPTH_EVERY 16
#define MC_DEFAULT_ZSTD 3

/* ---------------------------------------------------------------- config */

struct mc_config {
	char dir[PATH_MAX];
	char nf[64];
	char run_id[64];
	int zstd_level;
	uint32_t buffer;          /* ring slots, power of 2 */
	uint32_t qdepth_every;    /* 0: never sample */
	bool disabled;
	/* bounded recording (all 0: one file per queue, unbounded) */
	uint32_t seg_seconds;     /* rotate after this long; 0: not by time */
	uint64_t seg_bytes;       /* rotate at this size; 0: not by size */
	uint32_t segments;        /* segments kept per queue; 0: no count limit */
	uint64_t budget;          /* bytes for all segments of the process; 0: none */
	unsigned file_mode;       /* trace files are created with this mode */
	bool file_mode_set;       /* MSCOPE_FILE_MODE given: exact, not umasked */
	uint64_t mem_avail_test;  /* MSCOPE_TEST_MEM_AVAILABLE (test hook); 0: unset */
};

#define MC_DEFAULT_FILE_MODE 0640
#define MC_MIN_SEG_BYTES (64u << 10)

/* Whether segments rotate at all (any of the bounded-recording settings). */
static inline bool
mc_rotating(const struct mc_config *c)
{
	return c->seg_seconds != 0 || c->seg_bytes != 0 || c->budget != 0;
}

/* Parse the MSCOPE_* environment; prints one warning line per bad value. */
void mc_config_load(struct mc_config *c);

/* ---------------------------------------------------------------- ring */

/*
 * Single-producer single-consumer ring of 8-byte slots. An entry is a
 * header slot, a TSC slot and a payload (see MC_E_* below); entries wrap
 * around the end by masking, so any free space is usable.
 */
struct mc_ring {
	/*
	 * set up once, read by both: never in a line the producer writes, or
	 * every writer access would pull that line away from the NF's core
	 */
	uint64_t *slots;
	uint64_t mask;
	/* producer's cache line */
	uint64_t head __rte_cache_aligned; /* next slot to write (producer private) */
	uint64_t cons_cache;      /* last seen consumer position */
	uint64_t lost_records;    /* written by the producer only (read once a round) */
	uint64_t lost_packets;
	/* published positions, one line each */
	uint64_t tail __rte_cache_aligned; /* producer: entries before this are complete */
	/*
	 * producer: TSC of the oldest entry it has stamped but not yet
	 * published (a burst in progress, a pending run of refused bursts);
	 * 0 = none. The writer merges nothing newer, so entries need no clamp.
	 */
	uint64_t hold;
	uint64_t cons __rte_cache_aligned; /* consumer: slots before this are free */
};

/*
 * Entry header slot: bits 0-7 kind, 8-15 flags, 16-31 n, 32-47 copies,
 * 48-63 aux.
 *
 * Packet slot (rx and tx): bits 0-31 the wire ID, 32-63 a code:
 *  - flow code (rx packets; tx packets not linked to an rx queue): bits 0-15
 *    flow cache index (MC_FC_CATCHALL: the non-IP flow), 16-17 MC_FK_*;
 *  - link code (tx packets received by rx node o - 1): bits 22-31 o (>= 1),
 *    bits 0-20 the low 21 bits of the rx seq, bit 21 set if the seq is
 *    unknown (the rx record was lost). The writer completes the seq from the
 *    node's rx count: a packet is sent within 2^21 packets of that queue.
 * A copy (MC_COPY_SLOTS slots: data_len | pkt_len << 32, then the first
 * MC_DATA_BYTES bytes of the first segment, zero-padded) follows the packet
 * slots for each packet whose flow code is MC_FK_DEF or MC_FK_RAW, in
 * packet order; `copies` counts them.
 */
#define MC_E_RX 1u  /* aux: qdepth + 1 (0 unknown); payload: n packet slots,
		      [n x hw ts if MC_EF_HWTS], copies */
#define MC_E_TX 2u  /* aux: accepted; payload: n packet slots (all offered), copies */
#define MC_E_REFUSED 3u /* aux: origin (link >> 48); payload: offered packets */
#define MC_E_FREED 4u /* rx queues: n packets received in mbufs whose link was
			 still set, so the NF freed their previous packet without
			 sending it; payload: those n old links. aux 1: found in a
			 pool cache when the ports stopped (no time of its own) */
#define MC_EF_HWTS 1u
#define MC_RUN_SLOTS 3u

static inline uint64_t
mc_hdr(unsigned kind, unsigned flags, unsigned n, unsigned aux)
{
	return kind | (uint64_t)flags << 8 | (uint64_t)n << 16 | (uint64_t)aux << 48;
}

#define MC_FK_HIT 0u  /* the flow at this cache index, as the writer last learnt it */
#define MC_FK_DEF 1u  /* a new flow at this index: its copy follows */
#define MC_FK_RAW 2u  /* not cacheable (VLAN, options, extension headers): copy follows */
#define MC_LC_SEQ_BITS 21
#define MC_LC_UNKNOWN (1u << MC_LC_SEQ_BITS)
#define MC_LC_ORIGIN_SHIFT 22

/*
 * NF-side flow cache (one per queue, data path only): direct-mapped, keyed by
 * the raw header words a flow is parsed from, so that a hit is exact. An
 * all-zero entry matches nothing (every key has a nonzero tag word). IPv4
 * keys take 16 bytes, so their table is large (256 KiB: a queue with
 * thousands of interleaved flows still hits); IPv6 keys take 40.
 */
struct mc_fc4_entry {
	uint64_t w[2];
};

struct mc_fc6_entry {
	uint64_t w[5];
	uint64_t pad[3];
} __rte_cache_aligned;

struct mc_fcache {
	bool catchall;            /* the non-IP flow was defined */
	struct mc_fc4_entry e4[MC_FC4_SLOTS] __rte_cache_aligned;
	struct mc_fc6_entry e6[MC_FC6_SLOTS];
};

/*
 * Link carried from rx to tx in the mbuf dynamic field: 0 = none, else
 * (node + 1) << 48 | rx seq; seq MC_SEQ_UNKNOWN when the rx record was lost.
 */
#define MC_SEQ_MASK ((UINT64_C(1) << 48) - 1)
#define MC_SEQ_UNKNOWN MC_SEQ_MASK
/* in a known seq: the tx driver refused the packet (given back to the NF) */
#define MC_SEQ_REFUSED (UINT64_C(1) << 47)

/* The rx seq of a link (MC_SEQ_UNKNOWN if not known), and whether it was refused. */
static inline uint64_t
mc_link_seq(uint64_t link, bool *refused)
{
	const uint64_t s = link & MC_SEQ_MASK;

	if (s == MC_SEQ_UNKNOWN) {
		*refused = false;
		return s;
	}
	*refused = (s & MC_SEQ_REFUSED) != 0;
	return s & ~MC_SEQ_REFUSED;
}

/* ---------------------------------------------------------------- flows */

union mc_fkey {
	struct mscope_flow_key k;
	uint64_t w[5];
};

struct mc_flow_slot {
	union mc_fkey key;
	uint32_t ref_plus1;       /* 0: empty */
	uint32_t pad;
};

struct mc_flow_table {
	uint32_t next_ref;
	uint32_t last_ref;        /* one-entry cache for runs of one flow */
	union mc_fkey last;
	bool have_last;
	struct mc_flow_slot slot[MC_FLOW_SLOTS];
};

/* ---------------------------------------------------------------- nodes */

/*
 * A recently received packet, kept by the writer so that a packet the NF
 * frees gets its wire ID and flow in the drop record.
 */
#define MC_RECENT 4096
struct mc_recent {
	uint64_t seq_plus1;       /* 0: empty */
	uint32_t wire, flow;
	uint32_t gen;             /* flow is a ref of the node's file of this generation */
};

/* A closed segment file of a node, still in MSCOPE_DIR. */
struct mc_seg {
	uint32_t number;
	bool plain;               /* named without the segment number (the first file) */
	uint64_t bytes;
	uint64_t tsc_first, tsc_last; /* first and last burst record */
	uint64_t records, packets;    /* burst records and their packets */
};

/*
 * One node's stream: an rx queue, or the unlinked traffic of a tx queue.
 * It is one file, or (with rotation, after a disk-full pause or a keep) a
 * sequence of segment files with continuous rx seqs.
 */
struct mc_node {
	uint16_t index;           /* rx nodes: index in mc_nodes; sources: MC_MAX_NODES + n */
	uint8_t role;
	uint16_t port, queue;
	char path[PATH_MAX];      /* current (or last) file, for messages */
	char stem[96];            /* <nf>-[src-]p<P>q<Q>-<pid> */
	char name[128];           /* current (or last) file name in MSCOPE_DIR */
	/* writer thread only below */
	struct mscope_trace_writer *w; /* NULL while no file is open (failed) */
	uint64_t last_tsc;        /* records are clamped to stay in order */
	uint64_t clamped;         /* records written later than their TSC */
	uint64_t pend_loss_rec, pend_loss_pkt; /* loss not yet written */
	uint64_t written_rec;
	struct mc_flow_table *flows; /* flows defined in the current file */
	uint32_t *mirror;         /* the feeding queue's cache index -> flow ref + 1 */
	union mc_fkey *mkeys;     /* ... and the key of that cache index */
	uint8_t *mkey_ok;
	uint32_t gen;             /* file generation: flow refs of older files are stale */
	uint64_t rx_count;        /* rx packets seen: the next rx seq */
	struct mc_recent *recent; /* rxq nodes: the last MC_RECENT rx packets */
	bool dirty, failed;
	/* segments (segments.c) */
	struct mc_seg cur;        /* the open file */
	uint64_t cur_open_tsc;
	struct mc_seg *closed;    /* closed files still present, oldest first */
	uint32_t nclosed, cap_closed;
	struct mscope_deleted *dels; /* deletions not yet written into a file */
	uint32_t ndels, cap_dels;
	uint64_t last_bytes;      /* file bytes after the last complete frame */
	uint64_t unframed_rec, unframed_pkt; /* in the frame being built */
	uint64_t retry_tsc;       /* failed: when to try a new file */
	uint64_t failed_rec, failed_pkt; /* lost to failed writes, total */
	int lost_fd;              /* <file>.lost sidecar while writing is failing */
	char lost_name[140];
	char why[192];            /* the write error */
	bool warned_fail, warned_back; /* one line each, however often it happens */
};

struct mc_rxq {
	/* hot, read by every burst */
	eth_rx_burst_t real_burst;
	void **real_data;
	uint16_t queue;
	uint16_t port;
	int32_t hwts_off;         /* -1: no hardware timestamps */
	uint64_t hwts_flag;
	eth_rx_queue_count_t real_count;
	uint32_t qd_every, qd_left;
	uint64_t link_base;       /* (node + 1) << 48 */
	uint64_t seq;             /* next rx sequence number */
	struct mc_ring ring;
	/* cold */
	eth_rx_descriptor_status_t real_desc_status;
	struct mc_node *node;
	/* pool of the first mbuf received (data path): freed_in_caches() */
	struct rte_mempool *pool;
	uint64_t lost_rec_seen, lost_pkt_seen; /* writer */
	uint32_t fmirror[MC_FC_SLOTS + 1]; /* writer: flow ref of each cache index */
	uint8_t fkey_ok[MC_FC_SLOTS + 1];  /* writer: fkeys[i] is set */
	union mc_fkey fkeys[MC_FC_SLOTS + 1]; /* writer: the flow of each cache index */
	struct mc_fcache fc;      /* data path */
	uint32_t codes[UINT16_MAX + 1]; /* data path: a burst's flow codes */
	/* hw timestamp -> TSC: tsc = hw_tsc0 + (ts - hw_clk0) * hw_ratio */
	double hw_ratio;
	uint64_t hw_clk0, hw_tsc0;
};

struct mc_txq {
	eth_tx_burst_t real_burst;
	void **real_data;
	uint16_t queue;
	uint16_t port;
	struct mc_ring ring;
	/* run of fully refused bursts of one origin, merged into one record */
	uint64_t run_n;           /* packets offered in the run; 0: none */
	uint64_t run_tsc;         /* first burst of the run */
	uint64_t run_origin;
	uint64_t run_span;        /* longest run, in TSC */
	uint64_t lost_total;      /* packets lost, all origins (producer) */
#ifdef MC_REFERENCE
	uint64_t ref_seq;         /* the seqs the reference recorder's tx slots claim */
#endif
	eth_tx_prep_t real_prep;
	eth_tx_descriptor_status_t real_desc_status;
	struct mc_node *src __rte_cache_aligned; /* writer: created on first need */
	bool src_failed;          /* writer: the source file could not be created */
	uint64_t lost_seen;       /* writer: lost_total already accounted */
	uint64_t lost_seen_by[MC_MAX_NODES + 1][2];
	/* [0]: unlinked (source), [node + 1]: origin rx node; records, packets */
	uint64_t lost[MC_MAX_NODES + 1][2];
	uint32_t fmirror[MC_FC_SLOTS + 1]; /* writer: flow refs of unlinked packets */
	uint8_t fkey_ok[MC_FC_SLOTS + 1];
	union mc_fkey fkeys[MC_FC_SLOTS + 1];
	struct mc_fcache fc;      /* data path: flows of unlinked packets */
	uint64_t links[UINT16_MAX + 1]; /* data path: a burst's links, for refused packets */
	uint32_t codes[UINT16_MAX + 1]; /* data path: a burst's link or flow codes */
};

struct mc_port {
	bool hooked;              /* contexts exist */
	bool started;             /* between our start and stop hooks */
	uint16_t nb_rxq, nb_txq;
	struct mc_rxq **rxq;      /* [RTE_MAX_QUEUES_PER_PORT] */
	struct mc_txq **txq;
	void **rx_data;           /* installed as rte_eth_fp_ops[port].rxq.data */
	void **tx_data;
	uint64_t imissed_seen;
};

/* ---------------------------------------------------------------- globals */

/* DPDK entry points, resolved with dlsym so that the library loads (and
 * stays inert) in programs without DPDK. */
struct mc_api {
	struct rte_eth_fp_ops *fp_ops;
	int (*dev_info_get)(uint16_t, struct rte_eth_dev_info *);
	int (*dev_conf_get)(uint16_t, struct rte_eth_conf *);
	int (*stats_get)(uint16_t, struct rte_eth_stats *);
	int (*read_clock)(uint16_t, uint64_t *);
	int (*dynfield_register)(const struct rte_mbuf_dynfield *);
	int (*dynfield_lookup)(const char *, struct rte_mbuf_dynfield *);
	int (*dynflag_lookup)(const char *, struct rte_mbuf_dynflag *);
	uint64_t (*get_tsc_hz)(void);
	int (*ctrl_thread_create)(pthread_t *, const char *, const pthread_attr_t *,
			void *(*)(void *), void *);
};

struct mc_state {
	struct mc_config cfg;
	struct mc_api api;
	bool active;              /* hooks may be installed */
	int link_off;             /* mbuf dynfield offset of the link */
	uint64_t tsc_hz;
	char host[64];
	char nf[64];

	pthread_mutex_t lock;     /* control path and writer's ring list */
	struct mc_port port[RTE_MAX_ETHPORTS];
	struct mc_node *nodes[MC_MAX_NODES];
	unsigned nb_nodes;
	struct mc_rxq *rxqs[MC_MAX_NODES];
	unsigned nb_rxqs;
	struct mc_txq *txqs[RTE_MAX_ETHPORTS * 64];
	unsigned nb_txqs;

	int dirfd;                /* MSCOPE_DIR: every file is created through it */

	pthread_t writer;
	bool writer_running;
	volatile int stop;        /* writer: final drain and close */
	volatile int flush_req;   /* writer: drain and flush now (signal handler) */
	volatile int flush_ack;
	volatile int keep_sig;    /* SIGUSR2 asked for a keep (segments.c) */
	bool finalised;
};

extern struct mc_state mc;

/* datapath.c */
uint16_t mc_rx_burst(void *qd, struct rte_mbuf **pkts, uint16_t n);
uint16_t mc_tx_burst(void *qd, struct rte_mbuf **pkts, uint16_t n);
uint16_t mc_tx_prepare(void *qd, struct rte_mbuf **pkts, uint16_t n);
uint32_t mc_rx_queue_count(void *qd);
int mc_rx_desc_status(void *qd, uint16_t off);
int mc_tx_desc_status(void *qd, uint16_t off);
uint16_t mc_dead_rx_burst(void *qd, struct rte_mbuf **pkts, uint16_t n);
uint16_t mc_dead_tx_burst(void *qd, struct rte_mbuf **pkts, uint16_t n);

/* telemetry.c */
/* Offer the /mscope/ commands on DPDK's telemetry socket; nothing if it has none. */
void mc_telemetry_register(void);

/* flows.c */
/* Flow key of a frame (same result as mscope_flow_parse, faster for IPv4). */
void mc_flow_key(const uint8_t *d, uint32_t len, union mc_fkey *k);
/*
 * Flow reference of a frame in table t; *is_new tells whether the caller
 * must define it (key in *key).
 */
uint32_t mc_flow_ref(struct mc_flow_table *t, const uint8_t *d, uint32_t len,
		union mc_fkey *key, bool *is_new);
/* The same for a key already parsed. */
uint32_t mc_flow_ref_key(struct mc_flow_table *t, const union mc_fkey *key, bool *is_new);

/* wireid.c */
/*
 * slots[(at + i) & mask] = wire ID of packet i (mscope_wire_id()) |
 * codes[i] << 32, for i < n. Uses AVX-512 where the CPU has it; the result
 * is the same either way.
 */
typedef void (*mc_wire_ids_fn)(struct rte_mbuf *const *pkts, uint16_t n, const uint32_t *codes,
		uint64_t *slots, uint64_t mask, uint64_t at);
extern mc_wire_ids_fn mc_wire_ids;
void mc_wire_ids_scalar(struct rte_mbuf *const *pkts, uint16_t n, const uint32_t *codes,
		uint64_t *slots, uint64_t mask, uint64_t at);
/* NULL if the CPU (or compiler) has no AVX-512 */
extern const mc_wire_ids_fn mc_wire_ids_avx512;

/* collector.c */
/* A TSC reading and CLOCK_REALTIME (ns) taken together, as closely as possible. */
void mc_clock_pair(uint64_t *tsc, int64_t *realtime);

/* dir.c */
/*
 * Open directory `path`, creating it and missing parents (0777 & ~umask);
 * no symlink is followed in the part it creates. @return a directory fd, or
 * -1 with the reason in why.
 */
int mc_dir_open(const char *path, char *why, size_t why_len);
/*
 * Read regular file `name` of dirfd into buf (NUL-terminated), never
 * following a symlink nor blocking on a FIFO. @return bytes read; -2 not a
 * regular file; -1 other errors (errno).
 */
ssize_t mc_dir_read_small(int dirfd, const char *name, char *buf, size_t len);

/* memory.c */
/*
 * Measure the memory the process may still use (cgroup v2 memory.max and
 * v1 limit_in_bytes minus usage, MemAvailable, MSCOPE_TEST_MEM_AVAILABLE):
 * the collector allows itself half of it. Called once at the first start.
 */
void mc_mem_limit_init(void);
/*
 * Ring slots for a new queue whose context takes `fixed` bytes: the
 * configured size, or less (a power of two, at least 4096) when the limit
 * leaves less room; prints one line the first time. 0: not even the least
 * fits. The bytes are counted as used.
 */
uint32_t mc_mem_ring_slots(size_t fixed);

/* writer.c */
int mc_writer_start(void);
void mc_writer_stop(void);
/* Ask the writer for a flush and wait for it (at most timeout_ms). Signal-safe. */
void mc_writer_flush_wait(unsigned timeout_ms);
/* Call fn on every node the writer knows (writer thread). */
void mc_for_each_node(void (*fn)(struct mc_node *, uint64_t), uint64_t arg);
/* TSC for a record the writer makes itself: in order, not counted as late. */
uint64_t mc_stamp(struct mc_node *n, uint64_t tsc);

/* segments.c: the files of a node (writer thread, or the control path under mc.lock) */
/*
 * A node (role, port, queue) with its first file created, or NULL with
 * *err. mirror/mkeys/mkey_ok: the flow cache mirror of the queue feeding it.
 */
struct mc_node *mc_node_open(uint8_t role, uint16_t port, uint16_t queue, uint32_t *mirror,
		union mc_fkey *mkeys, uint8_t *mkey_ok, struct mscope_trace_error *err);
/*
 * After every write call on n->w (rc its result) for a burst record of
 * `pkt` packets at `tsc` (rec 0, pkt 0 for other records): accounts it in
 * the segment, or, on failure, closes the file and counts what was lost.
 * @return whether it was written.
 */
bool mc_seg_wrote(struct mc_node *n, int rc, uint64_t tsc, uint64_t rec, uint64_t pkt);
/* Rotation, deletion, budget, keep requests, retries after failures: once a round. */
void mc_seg_round(uint64_t now, uint64_t horizon);
/* Set aside a few pages for the .lost sidecars of a disk that fills up. */
void mc_seg_reserve(void);
/* Close the node's file at exit; reports what could never be written. */
void mc_seg_close(struct mc_node *n, uint64_t horizon);
/* SIGUSR2 as a keep trigger (only if the NF has no handler): collector.c */

#endif /* MSCOPE_COLLECTOR_PRIV_H */
