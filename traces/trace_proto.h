/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private byte layout of mscope trace files (never installed; users read
 * docs/trace-format.md, which mirrors this file).
 *
 * All integers are little-endian. "varint" is unsigned LEB128 (7 bits per
 * byte, low group first, at most 10 bytes for 64 bits, no overlong forms
 * beyond that); "zz" is zigzag ((v << 1) ^ (v >> 63)) followed by varint.
 *
 * ## File
 *   skippable zstd frame: u32 MSCOPE_HDR_FRAME_MAGIC, u32 payload size,
 *     payload = the header below
 *   zstd frames...: each has a content checksum and a content size, decodes to
 *     one *raw frame* of at most MSCOPE_FRAME_RAW_MAX bytes
 *
 * ## Header payload
 *   char magic[8] "MSCOPE\0\0"; u32 version; u8 role; u8 reserved (0);
 *   u16 port; u16 queue; u32 pid; u64 tsc_hz; u64 anchor_tsc;
 *   i64 anchor_realtime_ns; then five strings, each u8 length + bytes (no NUL):
 *   nf_name, host, run_id, writer, writer_version; appended fields (a reader
 *   that lacks one reads 0): u32 segment, u64 rx_seq_start; bytes a later
 *   minor revision may add (ignored by this reader); u32 check =
 *   mscope_hdr_check() of all payload bytes before it (the last 4 bytes).
 *
 * ## Raw frame = control section, wire section, flow section
 * Columns keep the incompressible 32-bit wire IDs apart from the compressible
 * control bytes, so zstd codes each kind in its own blocks.
 *   control: preamble, then records (each starting with a type byte)
 *   wire:    u32 wire IDs, consumed in record order
 *   flow:    flow codes (varint): 0 = same flow as the previous flow code in
 *            this frame (initially ref 0), else ref + 1
 * Preamble (starts every frame; makes it decodable alone):
 *   u8 MSCOPE_P_FRAME; varint ctl_len (bytes of records after the preamble);
 *   varint wire_len (multiple of 4); varint tsc_base (TSC of the previous
 *   record, 0 at the start of the file); varint rx_seq_base (seq of the next rx
 *   packet); varint tx_expect; varint drop_expect.
 * The flow section is what follows the wire section. Every section must be
 * consumed exactly by the records.
 *
 * ## Records: u8 type = kind | flags << 4, then fields; tsc fields are
 *   varint deltas from the previous record's TSC (never negative).
 *   RX (1): flags HWTS, QDEPTH. varint dtsc; varint n; [varint qdepth];
 *     [n x zz(hw_ts[i] - prev), prev starting at the record's tsc];
 *     n wire IDs (wire section); n flow codes (flow section).
 *     first_seq = next rx seq; next rx seq += n.
 *   TX (2): flags MIRROR, FLOWS, SAMEPQ. varint dtsc; [varint port;
 *     varint queue] unless SAMEPQ (same as the previous TX in this frame);
 *     varint accepted; varint refused (offered - accepted).
 *     MIRROR: packet i links rx seq tx_expect + i and carries that rx packet's
 *       wire ID; tx_expect += accepted.
 *     else per packet a varint link code (control section, see below).
 *     [accepted flow codes] if FLOWS.
 *   DROP (3): flags FLOWS, SEQS. varint dtsc; u8 reason; varint n;
 *     SEQS: n link codes against drop_expect; else n wire IDs.
 *     [n flow codes] if FLOWS.
 *   FLOW (4): flags = address length code (0: none, 1: 4 bytes, 2: 16 bytes).
 *     varint ref; u8 family (0, 4, 6); u8 proto; varint sport; varint dport;
 *     src[alen]; dst[alen] (the remaining bytes of the 16 are 0).
 *   LOSS (5): varint dtsc; varint records; varint packets.
 *   CLOCK (6): varint dtsc; zz realtime_ns.
 *   DELETED (7): varint dtsc; varint segment (< 2^32); varint tsc_first;
 *     varint tsc_last - tsc_first; varint records; varint packets.
 * Link code (varint): low 2 bits say what follows, the rest is zz(seq - expect)
 *   for kinds 0 and 1 and must be 0 for kinds 2 and 3:
 *   0 RING: the wire ID is that of the linked rx packet, which must lie in
 *     this frame and among the last MSCOPE_RX_RING rx packets;
 *   1 WIRE: a literal wire ID follows in the wire section;
 *   2 NONE: not linked (MSCOPE_NO_LINK); a literal wire ID follows;
 *   3 ABS: a varint absolute seq follows (deltas too big for the code),
 *     and a literal wire ID.
 *   After a linked packet, expect = seq + 1. Flags not defined here are errors.
 */
#ifndef MSCOPE_TRACE_PROTO_H
#define MSCOPE_TRACE_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MSCOPE_HDR_FRAME_MAGIC 0x184D2A5Du /* zstd skippable frame, nibble D */
#define MSCOPE_IDX_FRAME_MAGIC 0x184D2A5Eu /* skippable frame, nibble E: the seek table */
#define MSCOPE_IDX_MAGIC 0x5849534Du       /* "MSIX": last 4 bytes of the seek table */
#define MSCOPE_IDX_ENTRY 56u               /* bytes per frame entry */
#define MSCOPE_IDX_FOOTER 20u              /* nframes, nflows, flows_bytes, check, magic */
#define MSCOPE_IDX_MAX (256u << 20)        /* largest seek table payload written or read */
#define MSCOPE_ZSTD_MAGIC 0xFD2FB528u
#define MSCOPE_HDR_MAGIC "MSCOPE\0\0"
#define MSCOPE_HDR_FIXED 46u     /* header payload bytes before the strings */
#define MSCOPE_HDR_MIN (MSCOPE_HDR_FIXED + 5 + 4) /* empty strings and the check */
#define MSCOPE_HDR_APPENDED 12u  /* u32 segment, u64 rx_seq_start */
#define MSCOPE_HDR_MAX 4096u     /* largest header payload a reader accepts */

#define MSCOPE_FRAME_RAW_MAX (16u << 20)  /* reader refuses larger raw frames */
#define MSCOPE_FRAME_BYTES_MAX (8u << 20) /* writer clamps opts.frame_bytes */
#define MSCOPE_FRAME_BYTES_DEFAULT (1u << 20)
#define MSCOPE_RX_RING 8192u      /* recent rx wire IDs remembered per frame */

/* Record kinds in the low nibble of the type byte. */
enum {
	MSCOPE_P_FRAME = 0,
	MSCOPE_P_RX = 1,
	MSCOPE_P_TX = 2,
	MSCOPE_P_DROP = 3,
	MSCOPE_P_FLOW = 4,
	MSCOPE_P_LOSS = 5,
	MSCOPE_P_CLOCK = 6,
	MSCOPE_P_DELETED = 7,
};

/* Flags (high nibble of the type byte, already shifted down). */
#define MSCOPE_RXF_HWTS 0x1
#define MSCOPE_RXF_QDEPTH 0x2
#define MSCOPE_TXF_MIRROR 0x1
#define MSCOPE_TXF_FLOWS 0x2
#define MSCOPE_TXF_SAMEPQ 0x4
#define MSCOPE_DRF_FLOWS 0x1
#define MSCOPE_DRF_SEQS 0x2

#define MSCOPE_LINK_RING 0
#define MSCOPE_LINK_WIRE 1
#define MSCOPE_LINK_NONE 2
#define MSCOPE_LINK_ABS 3

static inline uint64_t
mscope_zz(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t
mscope_unzz(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* Write a varint at p (room for 10 bytes needed); returns bytes written. */
static inline unsigned
mscope_put_varint(uint8_t *p, uint64_t v)
{
	unsigned n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/*
 * Read a varint from [*pp, end). Returns 0 and advances *pp, or -1 when the
 * input ends or the value does not fit 64 bits.
 */
static inline int
mscope_get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
	const uint8_t *p = *pp;
	uint64_t v = 0;
	unsigned shift = 0;

	if (p < end && *p < 0x80) { /* fast path: one byte */
		*out = *p;
		*pp = p + 1;
		return 0;
	}
	while (p < end) {
		const uint8_t b = *p++;

		if (shift == 63 && b > 1)
			return -1;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (b < 0x80) {
			*out = v;
			*pp = p;
			return 0;
		}
		shift += 7;
		if (shift > 63)
			return -1;
	}
	return -1;
}

/* Header check value: 32-bit FNV-1a (the header is small and read once). */
static inline uint32_t
mscope_hdr_check(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* Continue an FNV-1a hash over more bytes (the seek table's check). */
static inline uint32_t
mscope_fnv_more(uint32_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static inline void
mscope_put_le32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4); /* the build targets little-endian hosts (x86, arm64) */
}

static inline uint32_t
mscope_get_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "mscope trace files assume a little-endian host"
#endif

#endif /* MSCOPE_TRACE_PROTO_H */
