/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Trace writer: records are encoded into three growing column buffers
 * (control, wire IDs, flow codes, see trace_proto.h); a frame ends when their
 * raw size reaches frame_bytes, when 200 ms of TSC passed since the frame's
 * first record, or on flush. Each frame is compressed with zstd (content
 * checksum and size on) and written with one write loop; on a failed write the
 * file is cut back to the last complete frame and the writer stays failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "mscope_trace.h"
#include "trace_proto.h"

struct buf {
	uint8_t *p;
	size_t len;
	size_t cap;
};

struct mscope_trace_writer {
	int fd;
	bool failed;             /* a write failed: sticky */
	off_t base;              /* file offset where the header starts */
	uint64_t bytes;          /* header + complete frames written */
	size_t frame_bytes;
	uint64_t frame_tsc_span; /* end a frame after this much TSC (0: never) */
	ZSTD_CCtx *cctx;
	struct buf ctl, wire, flow, out;
	/* encoder state; a frame's preamble holds these values at its start */
	uint64_t prev_tsc;
	uint64_t next_rx;
	uint64_t tx_expect;
	uint64_t drop_expect;
	/* ... and these are reset at every frame start */
	uint64_t f_tsc, f_rx, f_tx_expect, f_drop_expect;
	uint64_t f_first_tsc;
	bool f_have_first;
	uint32_t prev_flow;
	bool have_pq;
	uint16_t tx_port, tx_queue;
	uint32_t ring[MSCOPE_RX_RING];
	struct mscope_trace_error err;
	/* seek table: one entry per written frame, the flow definitions */
	uint32_t f_records, f_rxp, f_txp, f_drp;
	struct buf idx;          /* MSCOPE_IDX_ENTRY bytes per frame */
	struct buf iflows;       /* encoded flow definitions (trace_proto.h) */
	uint32_t nframes, nflows;
	bool idx_failed;         /* out of memory: no seek table (readers scan) */
};

static void
set_err(struct mscope_trace_error *err, const char *file, uint64_t off,
	const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	if (file != err->file)
		snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
	err->offset = off;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
}

#define WERR(w, ...) set_err(&(w)->err, (w)->err.file, (w)->bytes, __VA_ARGS__)

static int
buf_reserve(struct buf *b, size_t extra)
{
	size_t cap;
	uint8_t *p;

	if (b->cap - b->len >= extra)
		return 0;
	cap = b->cap ? b->cap : 4096;
	while (cap - b->len < extra)
		cap *= 2;
	p = realloc(b->p, cap);
	if (p == NULL)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

static inline void
put_v(struct buf *b, uint64_t v)
{
	b->len += mscope_put_varint(b->p + b->len, v);
}

static inline void
put_u8(struct buf *b, uint8_t v)
{
	b->p[b->len++] = v;
}

static inline void
put_wire(struct buf *b, uint32_t v)
{
	mscope_put_le32(b->p + b->len, v);
	b->len += 4;
}

static void
frame_reset(struct mscope_trace_writer *w)
{
	w->ctl.len = w->wire.len = w->flow.len = 0;
	w->f_tsc = w->prev_tsc;
	w->f_rx = w->next_rx;
	w->f_tx_expect = w->tx_expect;
	w->f_drop_expect = w->drop_expect;
	w->f_have_first = false;
	w->f_records = w->f_rxp = w->f_txp = w->f_drp = 0;
	w->prev_flow = 0;
	w->have_pq = false;
}

static int
write_all(struct mscope_trace_writer *w, const void *p, size_t len)
{
	const uint8_t *b = p;
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(w->fd, b + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : ENOSPC;

			/* Cut the partial frame so the file stays readable. */
			if (done > 0 && ftruncate(w->fd, w->base + (off_t)w->bytes) == 0)
				(void)lseek(w->fd, w->base + (off_t)w->bytes, SEEK_SET);
			w->failed = true;
			WERR(w, "write failed: %s", strerror(e));
			return -1;
		}
		done += (size_t)n;
	}
	w->bytes += len;
	return 0;
}

static size_t
raw_len(const struct mscope_trace_writer *w)
{
	return w->ctl.len + w->wire.len + w->flow.len;
}

/* Append the seek table entry of the frame just written at off. */
static void
idx_add(struct mscope_trace_writer *w, uint64_t off, uint32_t csize, uint32_t rsize)
{
	uint8_t *p;

	if (w->idx_failed || buf_reserve(&w->idx, MSCOPE_IDX_ENTRY) < 0 || w->nframes == UINT32_MAX) {
		w->idx_failed = true;
		return;
	}
	p = w->idx.p + w->idx.len;
	memcpy(p, &off, 8);
	mscope_put_le32(p + 8, csize);
	mscope_put_le32(p + 12, rsize);
	memcpy(p + 16, w->f_have_first ? &w->f_first_tsc : &w->prev_tsc, 8);
	memcpy(p + 24, &w->prev_tsc, 8);
	memcpy(p + 32, &w->f_rx, 8);
	mscope_put_le32(p + 40, w->f_records);
	mscope_put_le32(p + 44, w->f_rxp);
	mscope_put_le32(p + 48, w->f_txp);
	mscope_put_le32(p + 52, w->f_drp);
	w->idx.len += MSCOPE_IDX_ENTRY;
	w->nframes++;
}

/* Write the seek table (a skippable frame ending the file, trace_proto.h). */
static int
write_index(struct mscope_trace_writer *w)
{
	const uint64_t payload = (uint64_t)w->idx.len + w->iflows.len + MSCOPE_IDX_FOOTER;
	uint8_t head[8], foot[MSCOPE_IDX_FOOTER];
	uint32_t h = 2166136261u;

	if (w->idx_failed || payload > MSCOPE_IDX_MAX)
		return 0; /* readers rebuild it by a scan */
	mscope_put_le32(head, MSCOPE_IDX_FRAME_MAGIC);
	mscope_put_le32(head + 4, (uint32_t)payload);
	mscope_put_le32(foot, w->nframes);
	mscope_put_le32(foot + 4, w->nflows);
	mscope_put_le32(foot + 8, (uint32_t)w->iflows.len);
	if (w->idx.len)
		h = mscope_fnv_more(h, w->idx.p, w->idx.len);
	if (w->iflows.len)
		h = mscope_fnv_more(h, w->iflows.p, w->iflows.len);
	h = mscope_fnv_more(h, foot, 12);
	mscope_put_le32(foot + 12, h);
	mscope_put_le32(foot + 16, MSCOPE_IDX_MAGIC);
	if (buf_reserve(&w->out, payload + 8) < 0)
		return 0;
	memcpy(w->out.p, head, 8);
	if (w->idx.len)
		memcpy(w->out.p + 8, w->idx.p, w->idx.len);
	if (w->iflows.len)
		memcpy(w->out.p + 8 + w->idx.len, w->iflows.p, w->iflows.len);
	memcpy(w->out.p + 8 + w->idx.len + w->iflows.len, foot, sizeof(foot));
	return write_all(w, w->out.p, (size_t)payload + 8);
}

int
mscope_writer_flush(struct mscope_trace_writer *w)
{
	uint8_t pre[1 + 6 * 10];
	size_t plen = 0, total, bound;
	ZSTD_inBuffer in[4];
	ZSTD_outBuffer out;

	if (w == NULL)
		return -1;
	if (w->failed)
		return -1;
	if (w->ctl.len == 0)
		return 0;
	pre[plen++] = MSCOPE_P_FRAME;
	plen += mscope_put_varint(pre + plen, w->ctl.len);
	plen += mscope_put_varint(pre + plen, w->wire.len);
	plen += mscope_put_varint(pre + plen, w->f_tsc);
	plen += mscope_put_varint(pre + plen, w->f_rx);
	plen += mscope_put_varint(pre + plen, w->f_tx_expect);
	plen += mscope_put_varint(pre + plen, w->f_drop_expect);
	total = plen + raw_len(w);
	bound = ZSTD_compressBound(total);
	if (buf_reserve(&w->out, bound) < 0) {
		WERR(w, "out of memory for a %zu byte frame", bound);
		w->failed = true;
		return -1;
	}
	ZSTD_CCtx_reset(w->cctx, ZSTD_reset_session_only);
	ZSTD_CCtx_setPledgedSrcSize(w->cctx, total);
	in[0] = (ZSTD_inBuffer){ pre, plen, 0 };
	in[1] = (ZSTD_inBuffer){ w->ctl.p, w->ctl.len, 0 };
	in[2] = (ZSTD_inBuffer){ w->wire.p, w->wire.len, 0 };
	in[3] = (ZSTD_inBuffer){ w->flow.p, w->flow.len, 0 };
	out = (ZSTD_outBuffer){ w->out.p, w->out.cap, 0 };
	for (int i = 0; i < 4; i++) {
		const ZSTD_EndDirective end = i == 3 ? ZSTD_e_end : ZSTD_e_continue;
		size_t rc;

		do {
			rc = ZSTD_compressStream2(w->cctx, &out, &in[i], end);
			if (ZSTD_isError(rc) || (rc != 0 && out.pos == out.size)) {
				/* the output has room for the worst case: full means a bug */
				WERR(w, "zstd: %s", ZSTD_isError(rc) ? ZSTD_getErrorName(rc) :
				     "frame larger than its bound");
				w->failed = true;
				return -1;
			}
		} while (in[i].pos < in[i].size || (end == ZSTD_e_end && rc != 0));
	}
	{
		const uint64_t off = w->bytes;

		if (write_all(w, out.dst, out.pos) < 0)
			return -1;
		idx_add(w, off, (uint32_t)out.pos, (uint32_t)total);
	}
	frame_reset(w);
	return 0;
}

/* Room for one record; ends the frame first when it is full or old. */
static int
begin_record(struct mscope_trace_writer *w, uint64_t tsc, size_t ctl, size_t wire,
	     size_t flow)
{
	if (w->failed)
		return -1;
	if (tsc < w->prev_tsc) {
		WERR(w, "record tsc %llu is before the previous record's %llu",
		     (unsigned long long)tsc, (unsigned long long)w->prev_tsc);
		return -1;
	}
	if (w->ctl.len > 0 && (raw_len(w) >= w->frame_bytes ||
	    (w->frame_tsc_span && tsc - w->f_first_tsc >= w->frame_tsc_span))) {
		if (mscope_writer_flush(w) < 0)
			return -1;
	}
	if (buf_reserve(&w->ctl, ctl) < 0 || buf_reserve(&w->wire, wire) < 0 ||
	    buf_reserve(&w->flow, flow) < 0) {
		WERR(w, "out of memory");
		return -1;
	}
	if (!w->f_have_first) {
		w->f_first_tsc = tsc;
		w->f_have_first = true;
	}
	w->f_records++;
	return 0;
}

static inline void
put_flow(struct mscope_trace_writer *w, uint32_t ref)
{
	if (ref == w->prev_flow) {
		put_u8(&w->flow, 0);
	} else {
		put_v(&w->flow, (uint64_t)ref + 1);
		w->prev_flow = ref;
	}
}

/* Is rx seq s in this frame's ring? */
static inline bool
in_ring(const struct mscope_trace_writer *w, uint64_t s)
{
	return s >= w->f_rx && s < w->next_rx && w->next_rx - s <= MSCOPE_RX_RING;
}

/* Link code for one packet (see trace_proto.h). */
static inline void
put_link(struct mscope_trace_writer *w, uint64_t *expect, uint64_t seq, uint32_t wire)
{
	if (seq == MSCOPE_NO_LINK) {
		put_u8(&w->ctl, MSCOPE_LINK_NONE);
		put_wire(&w->wire, wire);
		return;
	}
	const bool same = in_ring(w, seq) && w->ring[seq % MSCOPE_RX_RING] == wire;
	const uint64_t zz = mscope_zz((int64_t)(seq - *expect));

	if (zz >> 62) { /* does not fit beside the code bits: absolute seq */
		put_u8(&w->ctl, MSCOPE_LINK_ABS);
		put_v(&w->ctl, seq);
		put_wire(&w->wire, wire);
	} else {
		put_v(&w->ctl, zz << 2 | (same ? MSCOPE_LINK_RING : MSCOPE_LINK_WIRE));
		if (!same)
			put_wire(&w->wire, wire);
	}
	*expect = seq + 1;
}

int
mscope_writer_rx(struct mscope_trace_writer *w, const struct mscope_rx_burst *rx)
{
	uint8_t flags = 0;
	uint32_t n;

	if (w == NULL || rx == NULL)
		return -1;
	n = rx->n;
	if (n > MSCOPE_MAX_BURST) {
		WERR(w, "rx burst of %u packets exceeds %u", n, MSCOPE_MAX_BURST);
		return -1;
	}
	if (n > 0 && (rx->wire_id == NULL || rx->flow == NULL)) {
		WERR(w, "rx burst without wire_id or flow array");
		return -1;
	}
	if (rx->qdepth < MSCOPE_QDEPTH_UNKNOWN) {
		WERR(w, "rx qdepth %d is negative", rx->qdepth);
		return -1;
	}
	if (begin_record(w, rx->tsc, 3 * 10 + (size_t)n * 10, (size_t)n * 4,
			 (size_t)n * 5) < 0)
		return -1;
	if (rx->hw_ts != NULL && n > 0)
		flags |= MSCOPE_RXF_HWTS;
	if (rx->qdepth >= 0)
		flags |= MSCOPE_RXF_QDEPTH;
	put_u8(&w->ctl, MSCOPE_P_RX | flags << 4);
	put_v(&w->ctl, rx->tsc - w->prev_tsc);
	put_v(&w->ctl, n);
	if (flags & MSCOPE_RXF_QDEPTH)
		put_v(&w->ctl, (uint64_t)rx->qdepth);
	if (flags & MSCOPE_RXF_HWTS) {
		uint64_t prev = rx->tsc;

		for (uint32_t i = 0; i < n; i++) {
			put_v(&w->ctl, mscope_zz((int64_t)(rx->hw_ts[i] - prev)));
			prev = rx->hw_ts[i];
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		put_wire(&w->wire, rx->wire_id[i]);
		w->ring[(w->next_rx + i) % MSCOPE_RX_RING] = rx->wire_id[i];
	}
	for (uint32_t i = 0; i < n; i++)
		put_flow(w, rx->flow[i]);
	w->next_rx += n;
	w->f_rxp += n;
	w->prev_tsc = rx->tsc;
	return 0;
}

int
mscope_writer_tx(struct mscope_trace_writer *w, const struct mscope_tx_burst *tx)
{
	uint8_t flags = 0;
	uint32_t n;
	bool mirror;

	if (w == NULL || tx == NULL)
		return -1;
	n = tx->accepted;
	if (n > tx->offered) {
		WERR(w, "tx accepted %u > offered %u", n, tx->offered);
		return -1;
	}
	if (n > MSCOPE_MAX_BURST) {
		WERR(w, "tx burst of %u packets exceeds %u", n, MSCOPE_MAX_BURST);
		return -1;
	}
	if (n > 0 && (tx->wire_id == NULL || tx->rx_seq == NULL)) {
		WERR(w, "tx burst without wire_id or rx_seq array");
		return -1;
	}
	if (begin_record(w, tx->tsc, 6 * 10 + (size_t)n * 10, (size_t)n * 4,
			 (size_t)n * 5) < 0)
		return -1;
	mirror = true;
	for (uint32_t i = 0; i < n && mirror; i++) {
		const uint64_t s = w->tx_expect + i;

		mirror = tx->rx_seq[i] == s && in_ring(w, s) &&
			 w->ring[s % MSCOPE_RX_RING] == tx->wire_id[i];
	}
	if (mirror)
		flags |= MSCOPE_TXF_MIRROR;
	if (tx->flow != NULL && n > 0)
		flags |= MSCOPE_TXF_FLOWS;
	if (w->have_pq && tx->port == w->tx_port && tx->queue == w->tx_queue)
		flags |= MSCOPE_TXF_SAMEPQ;
	put_u8(&w->ctl, MSCOPE_P_TX | flags << 4);
	put_v(&w->ctl, tx->tsc - w->prev_tsc);
	if (!(flags & MSCOPE_TXF_SAMEPQ)) {
		put_v(&w->ctl, tx->port);
		put_v(&w->ctl, tx->queue);
		w->tx_port = tx->port;
		w->tx_queue = tx->queue;
		w->have_pq = true;
	}
	put_v(&w->ctl, n);
	put_v(&w->ctl, tx->offered - n);
	if (mirror)
		w->tx_expect += n;
	else
		for (uint32_t i = 0; i < n; i++)
			put_link(w, &w->tx_expect, tx->rx_seq[i], tx->wire_id[i]);
	if (flags & MSCOPE_TXF_FLOWS)
		for (uint32_t i = 0; i < n; i++)
			put_flow(w, tx->flow[i]);
	w->f_txp += n;
	w->prev_tsc = tx->tsc;
	return 0;
}

int
mscope_writer_drop(struct mscope_trace_writer *w, const struct mscope_drop *d)
{
	uint8_t flags = 0;
	uint32_t n;

	if (w == NULL || d == NULL)
		return -1;
	n = d->n;
	if (n > MSCOPE_MAX_BURST) {
		WERR(w, "drop of %u packets exceeds %u", n, MSCOPE_MAX_BURST);
		return -1;
	}
	if (n > 0 && d->wire_id == NULL) {
		WERR(w, "drop without wire_id array");
		return -1;
	}
	if (begin_record(w, d->tsc, 4 * 10 + (size_t)n * 10, (size_t)n * 4,
			 (size_t)n * 5) < 0)
		return -1;
	if (d->flow != NULL && n > 0)
		flags |= MSCOPE_DRF_FLOWS;
	if (d->rx_seq != NULL && n > 0)
		flags |= MSCOPE_DRF_SEQS;
	put_u8(&w->ctl, MSCOPE_P_DROP | flags << 4);
	put_v(&w->ctl, d->tsc - w->prev_tsc);
	put_u8(&w->ctl, d->reason);
	put_v(&w->ctl, n);
	if (flags & MSCOPE_DRF_SEQS)
		for (uint32_t i = 0; i < n; i++)
			put_link(w, &w->drop_expect, d->rx_seq[i], d->wire_id[i]);
	else
		for (uint32_t i = 0; i < n; i++)
			put_wire(&w->wire, d->wire_id[i]);
	if (flags & MSCOPE_DRF_FLOWS)
		for (uint32_t i = 0; i < n; i++)
			put_flow(w, d->flow[i]);
	w->f_drp += n;
	w->prev_tsc = d->tsc;
	return 0;
}

static bool
all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int
mscope_writer_flow(struct mscope_trace_writer *w, uint32_t ref,
		   const struct mscope_flow_key *key)
{
	unsigned code, alen;

	if (w == NULL || key == NULL)
		return -1;
	if (key->family != 0 && key->family != 4 && key->family != 6) {
		WERR(w, "flow %u: bad address family %u", ref, key->family);
		return -1;
	}
	{
		const bool had_first = w->f_have_first;

		if (begin_record(w, w->prev_tsc, 2 + 10 + 2 + 2 * 3 + 32, 0, 0) < 0)
			return -1;
		/* a flow record has no time of its own: not the frame's first time */
		w->f_have_first = had_first && w->f_records > 1;
	}
	if (all_zero(key->src + 4, 12) && all_zero(key->dst + 4, 12)) {
		const bool none = all_zero(key->src, 4) && all_zero(key->dst, 4);

		code = none ? 0 : 1;
		alen = none ? 0 : 4;
	} else {
		code = 2;
		alen = 16;
	}
	put_u8(&w->ctl, MSCOPE_P_FLOW | code << 4);
	put_v(&w->ctl, ref);
	put_u8(&w->ctl, key->family);
	put_u8(&w->ctl, key->proto);
	put_v(&w->ctl, key->sport);
	put_v(&w->ctl, key->dport);
	memcpy(w->ctl.p + w->ctl.len, key->src, alen);
	w->ctl.len += alen;
	memcpy(w->ctl.p + w->ctl.len, key->dst, alen);
	w->ctl.len += alen;
	/* the seek table repeats it with the frame that holds it */
	if (!w->idx_failed && buf_reserve(&w->iflows, 1 + 10 + 10 + 2 + 2 * 3 + 32) == 0) {
		struct buf *b = &w->iflows;

		put_u8(b, MSCOPE_P_FLOW | code << 4);
		put_v(b, w->nframes);
		put_v(b, ref);
		put_u8(b, key->family);
		put_u8(b, key->proto);
		put_v(b, key->sport);
		put_v(b, key->dport);
		memcpy(b->p + b->len, key->src, alen);
		b->len += alen;
		memcpy(b->p + b->len, key->dst, alen);
		b->len += alen;
		w->nflows++;
	} else {
		w->idx_failed = true;
	}
	return 0;
}

int
mscope_writer_loss(struct mscope_trace_writer *w, const struct mscope_loss *l)
{
	if (w == NULL || l == NULL)
		return -1;
	if (begin_record(w, l->tsc, 1 + 3 * 10, 0, 0) < 0)
		return -1;
	put_u8(&w->ctl, MSCOPE_P_LOSS);
	put_v(&w->ctl, l->tsc - w->prev_tsc);
	put_v(&w->ctl, l->records);
	put_v(&w->ctl, l->packets);
	w->prev_tsc = l->tsc;
	return 0;
}

int
mscope_writer_deleted(struct mscope_trace_writer *w, const struct mscope_deleted *d)
{
	if (w == NULL || d == NULL)
		return -1;
	if (d->tsc_last < d->tsc_first) {
		WERR(w, "deleted segment %u: tsc_last %llu before tsc_first %llu", d->segment,
		     (unsigned long long)d->tsc_last, (unsigned long long)d->tsc_first);
		return -1;
	}
	if (begin_record(w, d->tsc, 1 + 6 * 10, 0, 0) < 0)
		return -1;
	put_u8(&w->ctl, MSCOPE_P_DELETED);
	put_v(&w->ctl, d->tsc - w->prev_tsc);
	put_v(&w->ctl, d->segment);
	put_v(&w->ctl, d->tsc_first);
	put_v(&w->ctl, d->tsc_last - d->tsc_first);
	put_v(&w->ctl, d->records);
	put_v(&w->ctl, d->packets);
	w->prev_tsc = d->tsc;
	return 0;
}

int
mscope_writer_clock(struct mscope_trace_writer *w, const struct mscope_clock *c)
{
	if (w == NULL || c == NULL)
		return -1;
	if (begin_record(w, c->tsc, 1 + 2 * 10, 0, 0) < 0)
		return -1;
	put_u8(&w->ctl, MSCOPE_P_CLOCK);
	put_v(&w->ctl, c->tsc - w->prev_tsc);
	put_v(&w->ctl, mscope_zz(c->realtime_ns));
	w->prev_tsc = c->tsc;
	return 0;
}

static size_t
put_str(uint8_t *p, const char *s, size_t field)
{
	size_t n = strnlen(s, field - 1);

	p[0] = (uint8_t)n;
	memcpy(p + 1, s, n);
	return n + 1;
}

static int
write_header(struct mscope_trace_writer *w, const struct mscope_trace_header *h,
	     uint64_t rx_seq_start)
{
	uint8_t b[8 + MSCOPE_HDR_FIXED + 5 * 256 + MSCOPE_HDR_APPENDED + 4];
	uint8_t *p = b + 8;
	const uint32_t version = MSCOPE_TRACE_VERSION, pid = h->pid;
	const uint64_t hz = h->tsc_hz, atsc = h->anchor_tsc;
	const int64_t ans = h->anchor_realtime_ns;
	size_t len;

	memcpy(p, MSCOPE_HDR_MAGIC, 8);
	memcpy(p + 8, &version, 4);
	p[12] = h->role;
	p[13] = 0;
	memcpy(p + 14, &h->port, 2);
	memcpy(p + 16, &h->queue, 2);
	memcpy(p + 18, &pid, 4);
	memcpy(p + 22, &hz, 8);
	memcpy(p + 30, &atsc, 8);
	memcpy(p + 38, &ans, 8);
	len = MSCOPE_HDR_FIXED;
	len += put_str(p + len, h->nf_name, sizeof(h->nf_name));
	len += put_str(p + len, h->host, sizeof(h->host));
	len += put_str(p + len, h->run_id, sizeof(h->run_id));
	len += put_str(p + len, h->writer, sizeof(h->writer));
	len += put_str(p + len, h->writer_version, sizeof(h->writer_version));
	mscope_put_le32(p + len, h->segment);
	memcpy(p + len + 4, &rx_seq_start, 8);
	len += MSCOPE_HDR_APPENDED;
	mscope_put_le32(p + len, mscope_hdr_check(p, len));
	len += 4;
	mscope_put_le32(b, MSCOPE_HDR_FRAME_MAGIC);
	mscope_put_le32(b + 4, (uint32_t)len);
	return write_all(w, b, 8 + len);
}

struct mscope_trace_writer *
mscope_writer_fdopen(int fd, const char *name, const struct mscope_trace_header *hdr,
		     const struct mscope_writer_opts *opts, struct mscope_trace_error *err)
{
	struct mscope_trace_writer *w;
	int level = opts && opts->zstd_level ? opts->zstd_level : 3;
	size_t fb = opts && opts->frame_bytes ? opts->frame_bytes : MSCOPE_FRAME_BYTES_DEFAULT;

	if (name == NULL)
		name = "(fd)";
	if (fd < 0 || hdr == NULL) {
		set_err(err, name, 0, "invalid argument");
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		set_err(err, name, 0, "out of memory");
		close(fd);
		return NULL;
	}
	w->fd = fd;
	w->base = lseek(fd, 0, SEEK_CUR);
	if (w->base < 0)
		w->base = 0;
	w->frame_bytes = fb > MSCOPE_FRAME_BYTES_MAX ? MSCOPE_FRAME_BYTES_MAX : fb;
	w->frame_tsc_span = hdr->tsc_hz / 5;
	snprintf(w->err.file, sizeof(w->err.file), "%s", name);
	w->cctx = ZSTD_createCCtx();
	if (w->cctx == NULL ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_contentSizeFlag, 1))) {
		set_err(err, name, 0, "cannot set up zstd (level %d)", level);
		goto fail;
	}
	w->next_rx = w->tx_expect = w->drop_expect = opts ? opts->rx_seq_start : 0;
	frame_reset(w);
	if (write_header(w, hdr, w->next_rx) < 0) {
		if (err)
			*err = w->err;
		goto fail;
	}
	return w;
fail:
	ZSTD_freeCCtx(w->cctx);
	close(fd);
	free(w);
	return NULL;
}

struct mscope_trace_writer *
mscope_writer_open(const char *path, const struct mscope_trace_header *hdr,
		   const struct mscope_writer_opts *opts, struct mscope_trace_error *err)
{
	int fd;

	if (path == NULL) {
		set_err(err, "", 0, "no path");
		return NULL;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  opts && opts->file_mode ? (mode_t)opts->file_mode : 0640);
	if (fd < 0) {
		set_err(err, path, 0, "cannot create: %s", strerror(errno));
		return NULL;
	}
	return mscope_writer_fdopen(fd, path, hdr, opts, err);
}

uint64_t
mscope_writer_bytes(const struct mscope_trace_writer *w)
{
	return w ? w->bytes : 0;
}

const struct mscope_trace_error *
mscope_writer_error(const struct mscope_trace_writer *w)
{
	return w ? &w->err : NULL;
}

int
mscope_writer_close(struct mscope_trace_writer *w)
{
	int rc;

	if (w == NULL)
		return 0;
	rc = mscope_writer_flush(w);
	if (rc == 0)
		rc = write_index(w);
	if (close(w->fd) < 0 && rc == 0)
		rc = -1;
	ZSTD_freeCCtx(w->cctx);
	free(w->ctl.p);
	free(w->wire.p);
	free(w->flow.p);
	free(w->out.p);
	free(w->idx.p);
	free(w->iflows.p);
	free(w);
	return rc;
}
