/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private: the reader's state, shared by the record decoder (trace_reader.c),
 * the time index (trace_index.c) and segment streams (trace_stream.c).
 */
#ifndef MSCOPE_TRACE_READER_INT_H
#define MSCOPE_TRACE_READER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <zstd.h>

#include "mscope_trace.h"
#include "trace_proto.h"

/* A flow definition and the index of the frame that holds it. */
struct idx_flow {
	uint32_t frame;
	struct mscope_flow_def def;
};

/* Set of defined flow refs (open addressing; slot value ref + 1, 0 = empty). */
struct flow_set {
	uint64_t *slot;
	size_t cap, n;
};

struct mscope_trace_reader {
	int fd;                  /* -1: memory */
	const uint8_t *in;       /* input window; in[0] is at file offset in_off */
	size_t in_len, in_pos;
	uint64_t in_off;
	bool eof;
	uint64_t file_size;      /* at open (memory: its length) */
	uint64_t hdr_end;        /* offset of the first frame */
	const uint8_t *mem;      /* memory mode: the whole buffer */
	uint8_t *inbuf;          /* owned chunk buffer (file mode) */
	ZSTD_DCtx *dctx;
	uint8_t *raw;            /* current raw frame */
	size_t raw_cap;
	unsigned max_ratio;      /* refuse frames decoding to more than this x their size */
	/* cursors into the current raw frame */
	const uint8_t *c, *c_end, *wp, *w_end, *fp, *f_end;
	bool in_frame;
	uint64_t frame_off;      /* file offset of the current frame */
	uint64_t frame_csize;    /* its compressed size */
	uint64_t next_off;       /* file offset of the next unread frame */
	/* decoder state */
	uint64_t prev_tsc, next_rx, f_rx, tx_expect, drop_expect;
	bool have_prev;          /* the previous frame was read just before this one */
	uint32_t prev_flow;
	bool flow_ok;            /* prev_flow was checked to be defined */
	bool have_pq;
	uint16_t tx_port, tx_queue;
	bool failed;
	struct mscope_trace_error err;
	struct mscope_trace_header hdr;
	struct flow_set flows;   /* refs defined so far */
	/* what the current frame held so far (checked against the index) */
	struct mscope_frame_info cur;
	bool cur_have_tsc;
	/* time index: frames from the seek table or a scan */
	struct mscope_frame_info *frames;
	size_t nframes;
	struct idx_flow *iflows;
	size_t niflows;
	bool indexed;            /* frames/iflows are valid */
	int rebuilt;
	char index_note[160];    /* why the seek table was not used ("" if it was) */
	uint64_t data_end;       /* where data frames end (the seek table starts) */
	/* window / seek: read frames [f_next, f_end) by index */
	bool by_index;
	size_t f_next, f_stop, f_cur;
	bool have_done;          /* a frame completed (done holds it): for the scan */
	struct mscope_frame_info done;
	size_t replay, replay_end; /* FLOW records still to replay (iflows indices) */
	uint64_t win0, win1;
	size_t win_stop;
	bool win;
	/* segment stream: sub-readers in segment order */
	struct mscope_trace_reader **seg;
	size_t nseg, cur_seg;
	size_t *seg_base;        /* first global frame of each segment */
	bool seg_started;        /* cur_seg has returned a record or been checked */
	uint64_t s_last_tsc, s_next_rx;
	bool s_have_last, s_have_prev;
	uint32_t s_last_segment;
	size_t gaps;
	uint32_t a_wire[MSCOPE_MAX_BURST];
	uint32_t a_flow[MSCOPE_MAX_BURST];
	uint64_t a_seq[MSCOPE_MAX_BURST];
	uint64_t a_ts[MSCOPE_MAX_BURST];
	uint32_t ring[MSCOPE_RX_RING];
	char name[256];
	char *path;              /* file mode: to reopen for a scan */
};

/* Record the (sticky) error, copy it out, return -1. */
int mscope_rd_fail(struct mscope_trace_reader *r, struct mscope_trace_error *err,
		   uint64_t off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Move the input to file offset off (next frame read starts there). */
int mscope_rd_reposition(struct mscope_trace_reader *r, uint64_t off);

/* Forget per-stream decoder state (after a seek: no previous frame). */
void mscope_rd_reset_state(struct mscope_trace_reader *r);

/* Define flow ref; 0 or -1 (out of memory). */
int mscope_rd_flow_add(struct mscope_trace_reader *r, uint32_t ref);

/* The sequential decoder (ignores any window): 1, 0, -1. */
int mscope_rd_next_raw(struct mscope_trace_reader *r, struct mscope_record *rec,
		       struct mscope_trace_error *err);

/* Open a reader of the same source (a path, or the same memory). */
struct mscope_trace_reader *mscope_rd_reopen(const struct mscope_trace_reader *r,
					     struct mscope_trace_error *err);

/* Build the index (seek table or scan) if not yet done. */
int mscope_rd_build_index(struct mscope_trace_reader *r, struct mscope_trace_error *err);

void mscope_rd_free_index(struct mscope_trace_reader *r);

/* Start reading index frames [first, stop), replaying the flows before first. */
int mscope_rd_read_range(struct mscope_trace_reader *r, size_t first, size_t stop,
			 struct mscope_trace_error *err);

/* Frames of f[0..n) overlapping [t0, t1]: [*first, *stop). */
void mscope_rd_window_range(const struct mscope_frame_info *f, size_t n, uint64_t t0,
			    uint64_t t1, size_t *first, size_t *stop);

/* The reader API on a segment stream (trace_stream.c). */
int mscope_rd_stream_next(struct mscope_trace_reader *r, struct mscope_record *rec,
			  struct mscope_trace_error *err);
int mscope_rd_stream_index(struct mscope_trace_reader *r, struct mscope_trace_error *err);
int mscope_rd_stream_window(struct mscope_trace_reader *r, uint64_t t0, uint64_t t1,
			    struct mscope_trace_error *err);
int mscope_rd_stream_seek(struct mscope_trace_reader *r, size_t frame,
			  struct mscope_trace_error *err);

#endif /* MSCOPE_TRACE_READER_INT_H */
