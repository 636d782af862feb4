/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * mscope trace files: one file per *node* (an NF input queue, or a traffic
 * source), written by the collector inside DPDK NFs and by the simulator, read
 * by the analyzer and `mscope dump`.
 *
 * ## Layout on disk
 * A trace file is a valid zstd stream:
 *   1. a zstd *skippable* frame holding the header (magic "MSCOPE\0\0", format
 *      version, node identity, TSC rate, wall-clock anchor, writer name);
 *   2. a sequence of ordinary zstd frames, each independently decodable and
 *      each ending on a record boundary. Every frame starts with its own
 *      bases (time, packet sequence numbers), so a file cut anywhere is
 *      readable up to its last complete frame;
 *   3. written at close, a zstd skippable frame holding the *seek table*:
 *      per frame its offset, sizes, time range, first rx seq and counts, and
 *      the file's flow definitions (a time index; rebuilt by a scan when
 *      absent or unusable).
 * `zstdcat FILE` therefore prints the raw record stream (and skips the
 * header and the seek table). The exact byte layout lives in the private
 * trace_proto.h; docs/trace-format.md documents it for users.
 *
 * ## Segments
 * A rotating writer splits a node's stream into segment files (header
 * `segment` 0, 1, ...; opts.rx_seq_start keeps rx seqs continuous); a DELETED
 * record says a segment was deleted. mscope_reader_open_segments() reads
 * them as one stream, mscope_trace_group() sorts files into streams.
 *
 * ## Records
 * Times are raw TSC cycles of the writing host (see header tsc_hz and the
 * clock anchors). Packets are identified by a 32-bit *wire ID* computed from
 * their bytes (mscope_wire_id()): identical at the upstream NF's tx and the
 * downstream NF's rx. Inside one NF, a tx'd packet is linked to the rx'd
 * packet it came from by that packet's *rx sequence number* in this file
 * (0 for the first packet of the first rx burst, counting every packet of
 * every rx burst), so rewritten (NAT) or encapsulated (VPN) packets stay
 * linked. Flows are referenced by a small per-file integer; each reference
 * is defined once per file by a flow record that precedes its first use.
 *
 * ## Writing
 *   w = mscope_writer_open(path, &hdr, &opts, &err);
 *   mscope_writer_flow(w, ref, &key);   // before the first use of ref
 *   mscope_writer_rx(w, &rx);           // rx.first_seq is ignored on write
 *   mscope_writer_tx(w, &tx);
 *   mscope_writer_flush(w);             // ends the current frame (call at least every 200 ms)
 *   mscope_writer_close(w);             // flushes, closes; NULL is a no-op
 * A frame also ends by itself when its raw size reaches opts.frame_bytes.
 * Records must be written in non-decreasing TSC order.
 *
 * ## Reading
 *   r = mscope_reader_open(path, &err);
 *   while ((rc = mscope_reader_next(r, &rec, &err)) == 1) { ... }
 *   // rc == 0: clean end of file; rc == -1: err says file, byte offset, what
 *   mscope_reader_close(r);
 * Arrays in a record point into reader-owned memory valid until the next call.
 * The reader treats the file as untrusted: it never reads out of bounds,
 * bounds every count, and reports truncation, corruption, bad magic and
 * unknown versions as errors; also time or rx seq not continuing from one
 * frame to the next, flow refs used but never defined, impossible loss
 * counts, and frames decoding to more than max_ratio x their size (decode
 * bombs). Memory stays bounded (one frame window; the index and flow refs
 * grow with the file, never beyond what it holds).
 *
 * ## Time index
 *   mscope_reader_window(r, t0, t1, &err);  // frames overlapping [t0, t1]
 *   while (mscope_reader_next(r, &rec, &err) == 1) ...  // FLOW replay, then frames
 * A hostile seek table is never trusted: inconsistent tables are ignored and
 * the index rebuilt by a scan (mscope_reader_index_note() says why); frames
 * read through the index are checked against their entry.
 *
 * ## Errors
 * Functions returning a pointer return NULL and fill *err (if err is not
 * NULL); functions returning int return 0 on success and -1 on failure, with
 * the reason in *err or, for the writer, in mscope_writer_error().
 * The library never prints.
 */
#ifndef MSCOPE_TRACE_H
#define MSCOPE_TRACE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Format version written by this library; readers accept exactly this major. */
#define MSCOPE_TRACE_VERSION 2

/** rx_seq value meaning "not linked to any rx packet of this file". */
#define MSCOPE_NO_LINK UINT64_MAX

/** qdepth value meaning "rx queue depth unknown". */
#define MSCOPE_QDEPTH_UNKNOWN (-1)

/** Upper bound on packets in one burst record (reader rejects more). */
#define MSCOPE_MAX_BURST 4096

/** What kind of node a trace file describes. */
enum mscope_node_role {
	MSCOPE_ROLE_RXQ = 0,    /**< an NF input queue (port, queue) */
	MSCOPE_ROLE_SOURCE = 1, /**< packets an NF emits without an rx link: a traffic source */
};

/** Trace file header. Strings are NUL-terminated and truncated to fit. */
struct mscope_trace_header {
	uint32_t version;            /**< filled by the reader; ignored on write */
	uint8_t role;                /**< enum mscope_node_role */
	uint16_t port;               /**< DPDK port id of the node (rx port, or tx port for a source) */
	uint16_t queue;              /**< queue id on that port */
	uint32_t pid;                /**< writing process id */
	uint64_t tsc_hz;             /**< TSC cycles per second (the simulator writes 1e9: TSC == ns) */
	uint64_t anchor_tsc;         /**< TSC value at anchor_realtime_ns */
	int64_t anchor_realtime_ns;  /**< CLOCK_REALTIME in ns at anchor_tsc */
	char nf_name[64];            /**< NF name, e.g. "fw1" or the program name */
	char host[64];               /**< host name */
	char run_id[64];             /**< identifies one run across all NFs ("" if unknown) */
	char writer[32];             /**< "mscope-collector", "mscope-sim", ... */
	char writer_version[16];     /**< writer's version string */
	uint32_t segment;            /**< position in the node's segment stream (0 = first file);
	                                  appended header field: files without it read 0 */
	uint64_t rx_seq_start;       /**< reader: rx seq of the file's first rx packet (appended
	                                  field, 0 if absent); on write opts.rx_seq_start is used */
};

/** A flow's 5-tuple. family 0 is the catch-all for non-IP frames. */
struct mscope_flow_key {
	uint8_t family;   /**< 4, 6, or 0 (not IP) */
	uint8_t proto;    /**< IP protocol number (6 TCP, 17 UDP, ...) */
	uint16_t sport;   /**< host byte order; 0 when the protocol has no ports */
	uint16_t dport;
	uint8_t src[16];  /**< IPv4 uses the first 4 bytes, the rest are 0 */
	uint8_t dst[16];
};

/** An rx_burst call that returned n > 0 packets. */
struct mscope_rx_burst {
	uint64_t tsc;             /**< time of the rx_burst call */
	uint64_t first_seq;       /**< reader: rx sequence number of packet 0; ignored on write */
	uint32_t n;               /**< packets returned */
	int32_t qdepth;           /**< packets left in the rx queue after the call, or MSCOPE_QDEPTH_UNKNOWN */
	const uint32_t *wire_id;  /**< [n] */
	const uint32_t *flow;     /**< [n] flow references */
	const uint64_t *hw_ts;    /**< [n] NIC rx timestamps in TSC units, or NULL if none */
};

/** A tx_burst call: `offered` packets given to the driver, `accepted` taken. */
struct mscope_tx_burst {
	uint64_t tsc;             /**< time of the tx_burst call */
	uint16_t port;            /**< tx port id */
	uint16_t queue;           /**< tx queue id */
	uint32_t offered;         /**< packets offered (accepted + refused) */
	uint32_t accepted;        /**< packets the driver accepted (the first `accepted` offered) */
	const uint32_t *wire_id;  /**< [accepted] wire IDs as sent */
	const uint64_t *rx_seq;   /**< [accepted] rx sequence number in this file, or MSCOPE_NO_LINK */
	const uint32_t *flow;     /**< [accepted] flow refs of the packets as sent, or NULL (same as rx) */
};

/** Why packets were dropped. */
enum mscope_drop_reason {
	MSCOPE_DROP_UNKNOWN = 0,
	MSCOPE_DROP_QUEUE_FULL = 1, /**< input queue overflow: never dequeued */
	MSCOPE_DROP_TX_REFUSED = 2, /**< refused by the tx driver and freed */
	MSCOPE_DROP_NF = 3,         /**< dropped by the NF's own decision (e.g. firewall) */
	MSCOPE_DROP_REASON_MAX = 3,
};

/** Packets dropped at this node. */
struct mscope_drop {
	uint64_t tsc;
	uint8_t reason;           /**< enum mscope_drop_reason */
	uint32_t n;
	const uint32_t *wire_id;  /**< [n] */
	const uint32_t *flow;     /**< [n] flow refs, or NULL */
	const uint64_t *rx_seq;   /**< [n] rx seq if the packet was dequeued here, or NULL */
};

/** Defines flow reference `ref` for the rest of the file. */
struct mscope_flow_def {
	uint32_t ref;
	struct mscope_flow_key key;
};

/** The writer lost records (buffer full, disk full, ...): nothing is silently missing. */
struct mscope_loss {
	uint64_t tsc;             /**< when the loss was noticed */
	uint64_t records;         /**< burst records lost */
	uint64_t packets;         /**< packets in those records */
};

/** A segment of this node's stream was deleted (ring buffer of segment files). */
struct mscope_deleted {
	uint64_t tsc;             /**< when it was deleted */
	uint32_t segment;         /**< its segment number */
	uint64_t tsc_first;       /**< first record time it held */
	uint64_t tsc_last;        /**< last record time it held (>= tsc_first) */
	uint64_t records;         /**< records it held */
	uint64_t packets;         /**< packets it held */
};

/** An additional TSC <-> CLOCK_REALTIME pair. */
struct mscope_clock {
	uint64_t tsc;
	int64_t realtime_ns;
};

enum mscope_rec_type {
	MSCOPE_REC_RX = 1,
	MSCOPE_REC_TX = 2,
	MSCOPE_REC_DROP = 3,
	MSCOPE_REC_FLOW = 4,
	MSCOPE_REC_LOSS = 5,
	MSCOPE_REC_CLOCK = 6,
	MSCOPE_REC_DELETED = 7,
};

/** One decoded record. */
struct mscope_record {
	enum mscope_rec_type type;
	union {
		struct mscope_rx_burst rx;
		struct mscope_tx_burst tx;
		struct mscope_drop drop;
		struct mscope_flow_def flow;
		struct mscope_loss loss;
		struct mscope_clock clock;
		struct mscope_deleted deleted;
	} u;
};

/** Where and why reading or writing failed. */
struct mscope_trace_error {
	char file[256];
	uint64_t offset;          /**< byte offset in the file where the problem lies */
	char text[192];
};

/* ------------------------------------------------------------------ writer */

struct mscope_trace_writer;

struct mscope_writer_opts {
	int zstd_level;           /**< 0 = default (3) */
	size_t frame_bytes;       /**< raw bytes per frame before it ends by itself; 0 = 1 MiB */
	unsigned file_mode;       /**< mode of the created file (umask applies); 0 = 0640 */
	uint64_t rx_seq_start;    /**< rx seq of this file's first rx packet: a rotated stream
	                               passes the previous segment's end, so rx seqs stay
	                               continuous and a tx may link (abs code) an rx packet of
	                               the previous segment. Stored in the header. */
};

/**
 * Create `path` (O_CREAT|O_EXCL|O_NOFOLLOW, mode opts.file_mode, default 0640:
 * never follows a symlink nor clobbers a file) and write the header.
 * @param opts may be NULL for defaults.
 * @return a writer, or NULL with *err filled.
 */
struct mscope_trace_writer *mscope_writer_open(const char *path,
		const struct mscope_trace_header *hdr,
		const struct mscope_writer_opts *opts,
		struct mscope_trace_error *err);

/** Same on an already open fd, which the writer then owns. `name` is for messages. */
struct mscope_trace_writer *mscope_writer_fdopen(int fd, const char *name,
		const struct mscope_trace_header *hdr,
		const struct mscope_writer_opts *opts,
		struct mscope_trace_error *err);

int mscope_writer_flow(struct mscope_trace_writer *w, uint32_t ref,
		const struct mscope_flow_key *key);
int mscope_writer_rx(struct mscope_trace_writer *w, const struct mscope_rx_burst *rx);
int mscope_writer_tx(struct mscope_trace_writer *w, const struct mscope_tx_burst *tx);
int mscope_writer_drop(struct mscope_trace_writer *w, const struct mscope_drop *d);
int mscope_writer_loss(struct mscope_trace_writer *w, const struct mscope_loss *l);
int mscope_writer_clock(struct mscope_trace_writer *w, const struct mscope_clock *c);
/**
 * Record that segment d->segment of this stream was deleted (d->tsc is this
 * record's time, in order with the others; d->tsc_last >= d->tsc_first).
 */
int mscope_writer_deleted(struct mscope_trace_writer *w, const struct mscope_deleted *d);

/** End the current frame and write it out (no-op if empty). */
int mscope_writer_flush(struct mscope_trace_writer *w);

/** Bytes written to the file so far (header and complete frames). */
uint64_t mscope_writer_bytes(const struct mscope_trace_writer *w);

/** Last error of this writer (valid after a call returned -1). */
const struct mscope_trace_error *mscope_writer_error(const struct mscope_trace_writer *w);

/** Flush, close the file and free. @return 0, or -1 if the final write failed. NULL is a no-op. */
int mscope_writer_close(struct mscope_trace_writer *w);

/* ------------------------------------------------------------------ reader */

struct mscope_trace_reader;

/** Open `path` and read its header. @return NULL with *err filled on failure. */
struct mscope_trace_reader *mscope_reader_open(const char *path,
		struct mscope_trace_error *err);

/** Read from a memory buffer (not copied; must outlive the reader). For fuzzing and tests. */
struct mscope_trace_reader *mscope_reader_open_mem(const void *buf, size_t len,
		const char *name, struct mscope_trace_error *err);

const struct mscope_trace_header *mscope_reader_header(const struct mscope_trace_reader *r);

/**
 * Decode the next record into *rec.
 * @return 1 a record, 0 clean end of file, -1 error (*err: file, offset,
 *   text). After -1 every complete frame before the offset has been returned.
 */
int mscope_reader_next(struct mscope_trace_reader *r, struct mscope_record *rec,
		struct mscope_trace_error *err);

/** Byte offset of the next unread frame (of a segment stream: in the current segment's file). */
uint64_t mscope_reader_offset(const struct mscope_trace_reader *r);

/**
 * Bound the decode ratio: a frame that decodes to more than `ratio` times its
 * compressed size is refused as hostile (a few hundred bytes could otherwise
 * hold millions of packets). 0 removes the bound. The default,
 * MSCOPE_MAX_RATIO_DEFAULT, is far above what the writer produces (see
 * docs/trace-format.md, "Decode ratio").
 */
void mscope_reader_set_max_ratio(struct mscope_trace_reader *r, unsigned ratio);

/** What mscope_reader_next() decodes: everything (the default). */
#define MSCOPE_FIELDS_ALL 0u
/**
 * Lean mode: times, counts, rx seqs, tx/drop links, qdepth, hw_ts, ports,
 * drop reasons, FLOW/LOSS/CLOCK/DELETED records as in MSCOPE_FIELDS_ALL, but
 * rx, tx and drop records carry wire_id == NULL and flow == NULL: the wire
 * section is only bounds-checked and skipped, the flow section is not read
 * (so flow codes are not checked against the FLOW records). Every check that
 * guards memory or the record values is kept (counts, section bounds, ring
 * links, sequence continuity, the seek table, the zstd content checksum).
 * For scans that need neither packet identity nor flows (`mscope incidents`).
 */
#define MSCOPE_FIELDS_LEAN 1u

/**
 * Choose what mscope_reader_next() decodes (MSCOPE_FIELDS_ALL or
 * MSCOPE_FIELDS_LEAN); call before the first record (a segment reader passes
 * it to every segment). @return 0, or -1 for an unknown value.
 */
int mscope_reader_set_fields(struct mscope_trace_reader *r, unsigned fields);

/** Default decode-ratio bound. */
#define MSCOPE_MAX_RATIO_DEFAULT 8192u

/* -------------------------------------------------------------- time index */

/** One data frame of a file (or of a segment stream). */
struct mscope_frame_info {
	uint64_t offset;          /**< byte offset of the zstd frame in its file */
	uint32_t csize;           /**< its compressed size */
	uint32_t segment;         /**< header segment number of its file */
	uint64_t tsc_first;       /**< time of its first record (a FLOW record takes the previous record's time) */
	uint64_t tsc_last;        /**< time of its last record */
	uint64_t rx_seq_first;    /**< rx seq of its first rx packet (the next rx seq at its start) */
	uint32_t records, rx_packets, tx_packets, drop_packets; /**< tx: accepted packets */
	uint32_t rsize;           /**< decoded (raw) size */
};

/**
 * The frames of the file (or stream): from the seek table the writer appends
 * at close, or rebuilt by a scan when there is none or it is unusable
 * (*rebuilt = 1; mscope_reader_index_note() says why). The scan stops at the
 * first damaged frame: the index then lists the complete frames before it.
 * Array owned by the reader, valid until it is closed.
 * @return 0, or -1 with *err (the file cannot be read at all).
 */
int mscope_reader_index(struct mscope_trace_reader *r, const struct mscope_frame_info **frames,
			size_t *n, int *rebuilt, struct mscope_trace_error *err);

/** Why the index was rebuilt by a scan ("" if the seek table was used or no index was built). */
const char *mscope_reader_index_note(const struct mscope_trace_reader *r);

/**
 * Restrict reading to frames overlapping [tsc0, tsc1]: the next
 * mscope_reader_next() returns first a FLOW record for every flow defined
 * before the first such frame, then that frame's records; it returns 0 after
 * the last such frame. Records of those frames outside [tsc0, tsc1] are
 * returned too (whole frames). Builds the index if needed.
 * @return 0, or -1 with *err.
 */
int mscope_reader_window(struct mscope_trace_reader *r, uint64_t tsc0, uint64_t tsc1,
			 struct mscope_trace_error *err);

/**
 * Seek to frame i of the index (same FLOW-replay rule), reading to the end
 * (or to the window's end if one is set). frame == n seeks to the end.
 * @return 0, or -1 with *err.
 */
int mscope_reader_seek(struct mscope_trace_reader *r, size_t frame,
		       struct mscope_trace_error *err);

/**
 * A node's segment files as ONE reader: sorted by header segment number,
 * checked to be one stream (same nf, role, port, queue, pid, run_id), read in
 * order with continuous rx seq (each segment starts where the previous ended,
 * see mscope_writer_opts.rx_seq_start). Missing oldest segments are fine (the
 * first present one starts the stream); a missing middle segment is a gap:
 * the reader returns a synthetic LOSS record (records 0, packets = the rx seq
 * gap, tsc = the last time before the gap) and counts it
 * (mscope_reader_gaps()). Time or rx seq going back across segments is an
 * error. The header returned is the first present segment's. A FLOW record of
 * a later segment may redefine a ref for the rest of the stream. The index,
 * window and seek functions work on the stream (frame_info.segment says whose
 * frame; offsets are in that segment's file).
 * @return NULL with *err naming the file on failure.
 */
struct mscope_trace_reader *mscope_reader_open_segments(const char *const *paths, size_t n,
							 struct mscope_trace_error *err);

/** Missing middle segments met so far by a segment reader (0 for a plain reader). */
size_t mscope_reader_gaps(const struct mscope_trace_reader *r);

/** A stream: its files sorted by segment number. */
struct mscope_trace_stream {
	char **paths;
	size_t npaths;
};

/**
 * Group trace file paths into streams (one per node stream: same nf, role,
 * port, queue, pid, run_id), each sorted by segment, streams in the order of
 * their first file in `paths`. Only headers are read. A file whose segment
 * number a stream already holds (a copy) starts another stream.
 * @return 0 with *out (free with mscope_trace_group_free()), or -1 with *err
 *   naming the first file that cannot be read.
 */
int mscope_trace_group(const char *const *paths, size_t n, struct mscope_trace_stream **out,
		       size_t *nout, struct mscope_trace_error *err);

/** Free what mscope_trace_group() returned. NULL is a no-op. */
void mscope_trace_group_free(struct mscope_trace_stream *s, size_t n);

/** NULL is a no-op. */
void mscope_reader_close(struct mscope_trace_reader *r);

/**
 * A record's time: every kind has one except flow definitions.
 * @return 1 and *tsc, or 0 (and *tsc = 0) for a record without a time.
 */
int mscope_record_tsc(const struct mscope_record *rec, uint64_t *tsc);

/* ------------------------------------------------------------------ packets */

/**
 * The 32-bit wire ID of a frame: a hash of its first bytes (from the
 * Ethernet header, at most 64 bytes of `data`) and its total length. Equal
 * bytes give equal IDs in every process, so an upstream tx and the downstream
 * rx of the same unchanged packet agree.
 * @param data first segment of the frame; @param seg_len its length;
 * @param pkt_len the frame's total length.
 */
uint32_t mscope_wire_id(const void *data, uint32_t seg_len, uint32_t pkt_len);

/**
 * The pieces of mscope_wire_id(), for a vectorised implementation that must
 * give the same IDs (the collector's): with w[i] the i-th 8-byte word of the
 * first min(seg_len, 64) bytes, little-endian, zero-padded, and
 * a = w[i] ^ mscope_wire_keys[i], the ID is
 * mscope_wire_mix(((uint64_t)min(seg_len, 64) << 32 | pkt_len) * 0x9E3779B185EBCA87
 *                 + sum over i of (uint32_t)a * (a >> 32) + w[i]).
 */
extern const uint64_t mscope_wire_keys[8];

/** The final step of mscope_wire_id(): the xxHash64 avalanche, folded to 32 bits. */
static inline uint32_t
mscope_wire_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xC2B2AE3D27D4EB4FULL;
	h ^= h >> 29;
	h *= 0x165667B19E3779F9ULL;
	h ^= h >> 32;
	return (uint32_t)h ^ (uint32_t)(h >> 32);
}

/**
 * Parse an Ethernet frame (optionally VLAN/QinQ tagged) into its 5-tuple.
 * Non-IP frames give family 0 and zeros. Never reads past `len`.
 * @return 0 (always succeeds; truncated headers yield what could be read).
 */
int mscope_flow_parse(const void *frame, uint32_t len, struct mscope_flow_key *key);

/** Format a flow key as "proto src:sport > dst:dport" into buf. @return buf. */
char *mscope_flow_format(const struct mscope_flow_key *key, char *buf, size_t len);

/** Name of a drop reason ("queue_full", ...). */
const char *mscope_drop_reason_name(uint8_t reason);

#ifdef __cplusplus
}
#endif

#endif /* MSCOPE_TRACE_H */
