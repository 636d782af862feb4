/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Time index of a trace file: the seek table the writer appends at close
 * (layout in trace_proto.h), or, when it is missing or unusable, a table
 * rebuilt by decoding the whole file. The seek table is untrusted like the
 * rest of the file: it is used only when its check value matches and every
 * entry fits the file (frames contiguous from the header to the table, time
 * and rx seq never going back, counts possible); otherwise it is ignored,
 * the reason kept in index_note, and the file is scanned. Frames read through
 * the index are checked against their entry as they are decoded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mscope_trace.h"
#include "trace_proto.h"
#include "trace_reader_int.h"

void
mscope_rd_free_index(struct mscope_trace_reader *r)
{
	free(r->frames);
	free(r->iflows);
	r->frames = NULL;
	r->iflows = NULL;
	r->nframes = r->niflows = 0;
	r->indexed = false;
}

/* Read n bytes at file offset off (does not move the stream). 0 / -1. */
static int
read_at(struct mscope_trace_reader *r, uint64_t off, void *dst, size_t n)
{
	size_t done = 0;

	if (off > r->file_size || n > r->file_size - off)
		return -1;
	if (r->fd < 0) {
		memcpy(dst, r->mem + off, n);
		return 0;
	}
	while (done < n) {
		ssize_t k = pread(r->fd, (uint8_t *)dst + done, n - done, (off_t)(off + done));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		done += (size_t)k;
	}
	return 0;
}

static uint64_t
get_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

#define NOTE(...) snprintf(r->index_note, sizeof(r->index_note), __VA_ARGS__)

/* Check one entry against the file and the previous entry; NULL if fine. */
static const char *
entry_problem(const struct mscope_trace_reader *r, const struct mscope_frame_info *e,
	      const struct mscope_frame_info *prev, uint64_t expect_off)
{
	if (e->offset != expect_off)
		return "frame offset out of place (frames must follow each other)";
	if (e->csize < 9 || e->csize > r->data_end - e->offset)
		return "frame size out of range";
	if (e->tsc_first > e->tsc_last)
		return "frame time goes back";
	if (prev && e->tsc_first < prev->tsc_last)
		return "time goes back between frames";
	if (prev && e->rx_seq_first != prev->rx_seq_first + prev->rx_packets)
		return "rx seq does not continue between frames";
	if (e->rx_seq_first > UINT64_MAX - e->rx_packets)
		return "rx seq overflows";
	if (e->records == 0 || e->rsize > MSCOPE_FRAME_RAW_MAX || e->records > e->rsize)
		return "record count or raw size out of range";
	if ((uint64_t)e->rx_packets + e->tx_packets + e->drop_packets >
	    (uint64_t)e->records * MSCOPE_MAX_BURST)
		return "more packets than the records can hold";
	if (r->max_ratio && e->rsize > (uint64_t)r->max_ratio * e->csize)
		return "decode ratio above the bound";
	return NULL;
}

/* Parse the flow definitions; NULL if fine. */
static const char *
parse_flows(struct mscope_trace_reader *r, const uint8_t *p, const uint8_t *end,
	    uint32_t nflows)
{
	uint64_t last_frame = 0;

	for (uint32_t i = 0; i < nflows; i++) {
		struct idx_flow *f = &r->iflows[i];
		uint64_t frame, ref, sport, dport;
		unsigned code, alen;

		if (p >= end || (*p & 0x0f) != MSCOPE_P_FLOW || (*p >> 4) > 2)
			return "bad flow entry";
		code = *p++ >> 4;
		alen = code == 0 ? 0 : code == 1 ? 4 : 16;
		if (mscope_get_varint(&p, end, &frame) < 0 || mscope_get_varint(&p, end, &ref) < 0 ||
		    end - p < 2)
			return "flow entry truncated";
		if (frame >= r->nframes || frame < last_frame || ref > UINT32_MAX)
			return "flow entry frame or ref out of range";
		last_frame = frame;
		memset(f, 0, sizeof(*f));
		f->frame = (uint32_t)frame;
		f->def.ref = (uint32_t)ref;
		f->def.key.family = *p++;
		f->def.key.proto = *p++;
		if (f->def.key.family != 0 && f->def.key.family != 4 && f->def.key.family != 6)
			return "bad flow address family";
		if (mscope_get_varint(&p, end, &sport) < 0 || mscope_get_varint(&p, end, &dport) < 0 ||
		    sport > UINT16_MAX || dport > UINT16_MAX || (size_t)(end - p) < 2 * alen)
			return "flow entry truncated or port out of range";
		f->def.key.sport = (uint16_t)sport;
		f->def.key.dport = (uint16_t)dport;
		memcpy(f->def.key.src, p, alen);
		memcpy(f->def.key.dst, p + alen, alen);
		p += 2 * alen;
	}
	return p == end ? NULL : "flow section has unused bytes";
}

/* Load and check the seek table. 1: used, 0: none or unusable (index_note says). */
static int
load_seek_table(struct mscope_trace_reader *r)
{
	uint8_t foot[MSCOPE_IDX_FOOTER], head[8], *buf = NULL;
	uint64_t payload, start;
	uint32_t nframes, nflows, fbytes, h;
	const char *why = NULL;

	if (r->file_size < r->hdr_end + 8 + MSCOPE_IDX_FOOTER ||
	    read_at(r, r->file_size - sizeof(foot), foot, sizeof(foot)) < 0 ||
	    mscope_get_le32(foot + 16) != MSCOPE_IDX_MAGIC) {
		NOTE("no seek table (writer did not close the file)");
		return 0;
	}
	nframes = mscope_get_le32(foot);
	nflows = mscope_get_le32(foot + 4);
	fbytes = mscope_get_le32(foot + 8);
	payload = (uint64_t)nframes * MSCOPE_IDX_ENTRY + fbytes + MSCOPE_IDX_FOOTER;
	if (payload > MSCOPE_IDX_MAX || payload + 8 > r->file_size - r->hdr_end) {
		NOTE("seek table at the end ignored: %u frames and %u flow bytes do not fit the file",
		     nframes, fbytes);
		return 0;
	}
	start = r->file_size - 8 - payload;
	if (read_at(r, start, head, 8) < 0 || mscope_get_le32(head) != MSCOPE_IDX_FRAME_MAGIC ||
	    mscope_get_le32(head + 4) != payload) {
		NOTE("seek table at offset %llu ignored: bad frame header", (unsigned long long)start);
		return 0;
	}
	if (nflows > fbytes / 7) { /* 7: the smallest flow entry */
		NOTE("seek table at offset %llu ignored: %u flows in %u bytes",
		     (unsigned long long)start, nflows, fbytes);
		return 0;
	}
	buf = malloc(payload);
	r->frames = calloc(nframes ? nframes : 1, sizeof(*r->frames));
	r->iflows = calloc(nflows ? nflows : 1, sizeof(*r->iflows));
	if (buf == NULL || r->frames == NULL || r->iflows == NULL) {
		why = "out of memory";
		goto bad;
	}
	if (read_at(r, start + 8, buf, payload) < 0) {
		why = "read error";
		goto bad;
	}
	h = mscope_fnv_more(2166136261u, buf, payload - 8);
	if (h != mscope_get_le32(buf + payload - 8)) {
		why = "check value mismatch";
		goto bad;
	}
	r->data_end = start;
	r->nframes = nframes;
	for (uint32_t i = 0; i < nframes; i++) {
		const uint8_t *p = buf + (size_t)i * MSCOPE_IDX_ENTRY;
		struct mscope_frame_info *e = &r->frames[i];

		e->offset = get_le64(p);
		e->csize = mscope_get_le32(p + 8);
		e->rsize = mscope_get_le32(p + 12);
		e->tsc_first = get_le64(p + 16);
		e->tsc_last = get_le64(p + 24);
		e->rx_seq_first = get_le64(p + 32);
		e->records = mscope_get_le32(p + 40);
		e->rx_packets = mscope_get_le32(p + 44);
		e->tx_packets = mscope_get_le32(p + 48);
		e->drop_packets = mscope_get_le32(p + 52);
		e->segment = r->hdr.segment;
		why = entry_problem(r, e, i ? e - 1 : NULL,
				    i ? e[-1].offset + e[-1].csize : r->hdr_end);
		if (why) {
			NOTE("seek table at offset %llu ignored: entry %u: %s",
			     (unsigned long long)start, i, why);
			goto bad_noted;
		}
	}
	if (nframes && r->frames[nframes - 1].offset + r->frames[nframes - 1].csize != start) {
		why = "frames do not reach the seek table";
		goto bad;
	}
	if (nframes == 0 && start != r->hdr_end) {
		why = "no frames listed but data present";
		goto bad;
	}
	r->niflows = nflows;
	why = parse_flows(r, buf + (size_t)nframes * MSCOPE_IDX_ENTRY,
			  buf + (size_t)nframes * MSCOPE_IDX_ENTRY + fbytes, nflows);
	if (why)
		goto bad;
	free(buf);
	r->index_note[0] = '\0';
	return 1;
bad:
	NOTE("seek table at offset %llu ignored: %s", (unsigned long long)start, why);
bad_noted:
	free(buf);
	mscope_rd_free_index(r);
	r->data_end = r->file_size;
	return 0;
}

/* Rebuild the index by decoding the file with a second reader. */
static int
scan(struct mscope_trace_reader *r, struct mscope_trace_error *err)
{
	struct mscope_trace_reader *s = mscope_rd_reopen(r, err);
	struct mscope_record rec;
	size_t cap = 0, fcap = 0;
	int rc;

	if (s == NULL)
		return -1;
	for (;;) {
		rc = mscope_rd_next_raw(s, &rec, NULL);
		if (s->have_done) {
			s->have_done = false;
			if (r->nframes == cap) {
				void *n = realloc(r->frames, (cap = cap ? 2 * cap : 64) * sizeof(*r->frames));

				if (n == NULL)
					goto oom;
				r->frames = n;
			}
			r->frames[r->nframes++] = s->done;
		}
		if (rc <= 0)
			break;
		if (rec.type == MSCOPE_REC_FLOW) {
			if (r->niflows == fcap) {
				void *n = realloc(r->iflows, (fcap = fcap ? 2 * fcap : 64) *
						  sizeof(*r->iflows));

				if (n == NULL)
					goto oom;
				r->iflows = n;
			}
			r->iflows[r->niflows].frame = (uint32_t)r->nframes;
			r->iflows[r->niflows++].def = rec.u.flow;
		}
	}
	if (rc < 0) {
		const size_t l = strlen(r->index_note);

		snprintf(r->index_note + l, sizeof(r->index_note) - l,
			 "; scan stopped at offset %llu: %s", (unsigned long long)s->err.offset,
			 s->err.text);
	}
	/* the flows of an unfinished frame are not part of any indexed frame */
	while (r->niflows && r->iflows[r->niflows - 1].frame >= r->nframes)
		r->niflows--;
	mscope_reader_close(s);
	return 0;
oom:
	mscope_reader_close(s);
	return mscope_rd_fail(r, err, r->hdr_end, "out of memory building the index");
}

int
mscope_rd_build_index(struct mscope_trace_reader *r, struct mscope_trace_error *err)
{
	if (r->indexed)
		return 0;
	r->rebuilt = 0;
	if (!load_seek_table(r)) {
		r->rebuilt = 1;
		if (scan(r, err) < 0) {
			mscope_rd_free_index(r);
			return -1;
		}
	}
	r->indexed = true;
	return 0;
}

int
mscope_reader_index(struct mscope_trace_reader *r, const struct mscope_frame_info **frames,
		    size_t *n, int *rebuilt, struct mscope_trace_error *err)
{
	if (r == NULL || frames == NULL || n == NULL)
		return -1;
	if (r->nseg ? mscope_rd_stream_index(r, err) < 0 : mscope_rd_build_index(r, err) < 0)
		return -1;
	*frames = r->frames;
	*n = r->nframes;
	if (rebuilt)
		*rebuilt = r->rebuilt;
	return 0;
}

const char *
mscope_reader_index_note(const struct mscope_trace_reader *r)
{
	return r ? r->index_note : "";
}

/* Start reading frames [first, stop) of a plain reader, replaying earlier flows. */
int
mscope_rd_read_range(struct mscope_trace_reader *r, size_t first, size_t stop,
		     struct mscope_trace_error *err)
{
	size_t k = 0;

	mscope_rd_reset_state(r);
	while (k < r->niflows && r->iflows[k].frame < first)
		if (mscope_rd_flow_add(r, r->iflows[k++].def.ref) < 0)
			return mscope_rd_fail(r, err, r->hdr_end, "out of memory");
	r->replay = 0;
	r->replay_end = first < stop ? k : 0;
	r->by_index = true;
	r->f_next = first;
	r->f_stop = stop;
	r->next_off = UINT64_MAX; /* reposition at the first frame */
	return 0;
}

/* First frame whose tsc_last >= t0 and one past the last with tsc_first <= t1. */
void
mscope_rd_window_range(const struct mscope_frame_info *f, size_t n, uint64_t t0, uint64_t t1,
		       size_t *first, size_t *stop)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		const size_t mid = lo + (hi - lo) / 2;

		if (f[mid].tsc_last < t0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*first = lo;
	hi = n;
	while (lo < hi) {
		const size_t mid = lo + (hi - lo) / 2;

		if (f[mid].tsc_first <= t1)
			lo = mid + 1;
		else
			hi = mid;
	}
	*stop = lo < *first ? *first : lo;
}

int
mscope_reader_window(struct mscope_trace_reader *r, uint64_t tsc0, uint64_t tsc1,
		     struct mscope_trace_error *err)
{
	size_t first, stop;

	if (r == NULL)
		return -1;
	if (tsc1 < tsc0)
		return mscope_rd_fail(r, err, 0, "window end %llu before its start %llu",
				      (unsigned long long)tsc1, (unsigned long long)tsc0);
	if (r->nseg)
		return mscope_rd_stream_window(r, tsc0, tsc1, err);
	if (mscope_rd_build_index(r, err) < 0)
		return -1;
	mscope_rd_window_range(r->frames, r->nframes, tsc0, tsc1, &first, &stop);
	r->win = true;
	r->win0 = tsc0;
	r->win1 = tsc1;
	r->win_stop = stop;
	return mscope_rd_read_range(r, first, stop, err);
}

int
mscope_reader_seek(struct mscope_trace_reader *r, size_t frame, struct mscope_trace_error *err)
{
	size_t stop;

	if (r == NULL)
		return -1;
	if (r->nseg)
		return mscope_rd_stream_seek(r, frame, err);
	if (mscope_rd_build_index(r, err) < 0)
		return -1;
	if (frame > r->nframes)
		return mscope_rd_fail(r, err, 0, "seek to frame %zu of %zu", frame, r->nframes);
	stop = r->win ? r->win_stop : r->nframes;
	return mscope_rd_read_range(r, frame, stop < frame ? frame : stop, err);
}
