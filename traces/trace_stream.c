/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Segment streams: the files of one node, rotated by the collector, read as
 * one record stream. Each segment is a plain reader; this layer orders them,
 * checks that rx seq and time continue from one to the next, and turns a
 * missing middle segment into a synthetic LOSS record.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mscope_trace.h"
#include "trace_proto.h"
#include "trace_reader_int.h"

static void __attribute__((format(printf, 3, 4)))
set_err(struct mscope_trace_error *err, const char *file, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	snprintf(err->file, sizeof(err->file), "%s", file);
	err->offset = 0;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
}

/* Same node stream? NULL, or the name of the first field that differs. */
static const char *
stream_diff(const struct mscope_trace_header *a, const struct mscope_trace_header *b)
{
	if (strcmp(a->nf_name, b->nf_name))
		return "nf name";
	if (a->role != b->role)
		return "role";
	if (a->port != b->port || a->queue != b->queue)
		return "port/queue";
	if (a->pid != b->pid)
		return "pid";
	if (strcmp(a->run_id, b->run_id))
		return "run id";
	return NULL;
}

static int
cmp_seg(const void *a, const void *b)
{
	const struct mscope_trace_reader *x = *(struct mscope_trace_reader *const *)a;
	const struct mscope_trace_reader *y = *(struct mscope_trace_reader *const *)b;

	return x->hdr.segment < y->hdr.segment ? -1 : x->hdr.segment > y->hdr.segment;
}

struct mscope_trace_reader *
mscope_reader_open_segments(const char *const *paths, size_t n, struct mscope_trace_error *err)
{
	struct mscope_trace_reader *r;

	if (paths == NULL || n == 0) {
		set_err(err, "", "no segment files given");
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL || (r->seg = calloc(n, sizeof(*r->seg))) == NULL) {
		free(r);
		set_err(err, paths[0], "out of memory");
		return NULL;
	}
	r->fd = -1;
	r->max_ratio = MSCOPE_MAX_RATIO_DEFAULT;
	for (size_t i = 0; i < n; i++) {
		const char *why;

		r->seg[i] = mscope_reader_open(paths[i], err);
		if (r->seg[i] == NULL)
			goto fail;
		r->nseg = i + 1;
		why = stream_diff(&r->seg[0]->hdr, &r->seg[i]->hdr);
		if (why) {
			set_err(err, paths[i], "not a segment of the stream of %s: its %s differs",
				paths[0], why);
			goto fail;
		}
	}
	qsort(r->seg, n, sizeof(*r->seg), cmp_seg);
	for (size_t i = 1; i < n; i++)
		if (r->seg[i]->hdr.segment == r->seg[i - 1]->hdr.segment) {
			set_err(err, r->seg[i]->name, "segment %u is also in %s",
				r->seg[i]->hdr.segment, r->seg[i - 1]->name);
			goto fail;
		}
	r->hdr = r->seg[0]->hdr;
	snprintf(r->name, sizeof(r->name), "%s", r->seg[0]->name);
	return r;
fail:
	mscope_reader_close(r);
	return NULL;
}

size_t
mscope_reader_gaps(const struct mscope_trace_reader *r)
{
	return r ? r->gaps : 0;
}

int
mscope_record_tsc(const struct mscope_record *rec, uint64_t *tsc)
{
	switch (rec->type) {
	case MSCOPE_REC_RX: *tsc = rec->u.rx.tsc; return 1;
	case MSCOPE_REC_TX: *tsc = rec->u.tx.tsc; return 1;
	case MSCOPE_REC_DROP: *tsc = rec->u.drop.tsc; return 1;
	case MSCOPE_REC_LOSS: *tsc = rec->u.loss.tsc; return 1;
	case MSCOPE_REC_CLOCK: *tsc = rec->u.clock.tsc; return 1;
	case MSCOPE_REC_DELETED: *tsc = rec->u.deleted.tsc; return 1;
	default: *tsc = 0; return 0;
	}
}

static int
stream_fail(struct mscope_trace_reader *r, struct mscope_trace_error *err,
	    const struct mscope_trace_reader *s, const char *fmt, unsigned long long a,
	    unsigned long long b, unsigned long long c)
{
	r->failed = true;
	snprintf(r->err.file, sizeof(r->err.file), "%s", s->name);
	r->err.offset = s->hdr_end;
	snprintf(r->err.text, sizeof(r->err.text), fmt, a, b, c);
	if (err)
		*err = r->err;
	return -1;
}

/*
 * Entering segment s after the one that ended with (s_last_segment,
 * s_next_rx): 1 and a LOSS record for a gap, 0 if it continues, -1 error.
 */
static int
enter_segment(struct mscope_trace_reader *r, const struct mscope_trace_reader *s,
	      struct mscope_record *rec, struct mscope_trace_error *err)
{
	const bool gap = s->hdr.segment != r->s_last_segment + 1;

	if (s->hdr.rx_seq_start < r->s_next_rx)
		return stream_fail(r, err, s, "segment %llu starts at rx seq %llu, before the end "
				   "of the previous segment (%llu)", s->hdr.segment,
				   s->hdr.rx_seq_start, r->s_next_rx);
	if (!gap && s->hdr.rx_seq_start == r->s_next_rx)
		return 0;
	if (!gap)
		return stream_fail(r, err, s, "segment %llu starts at rx seq %llu, but the previous "
				   "segment ended at %llu", s->hdr.segment, s->hdr.rx_seq_start,
				   r->s_next_rx);
	r->gaps++;
	rec->type = MSCOPE_REC_LOSS;
	rec->u.loss.tsc = r->s_last_tsc;
	rec->u.loss.records = 0;
	rec->u.loss.packets = s->hdr.rx_seq_start - r->s_next_rx;
	return 1;
}

int
mscope_rd_stream_next(struct mscope_trace_reader *r, struct mscope_record *rec,
		      struct mscope_trace_error *err)
{
	if (r->failed) {
		if (err)
			*err = r->err;
		return -1;
	}
	while (r->cur_seg < r->nseg) {
		struct mscope_trace_reader *s = r->seg[r->cur_seg];
		uint64_t tsc;
		int rc;

		if (!r->seg_started) {
			r->seg_started = true;
			if (r->s_have_prev && !(s->by_index && s->f_next >= s->f_stop)) {
				rc = enter_segment(r, s, rec, err);
				if (rc != 0)
					return rc;
			}
		}
		rc = mscope_reader_next(s, rec, err);
		if (rc < 0) {
			r->failed = true;
			r->err = s->err;
			return -1;
		}
		if (rc == 1) {
			if (mscope_record_tsc(rec, &tsc)) {
				if (r->s_have_last && tsc < r->s_last_tsc)
					return stream_fail(r, err, s, "segment %llu: time goes back "
							   "across segments (tsc %llu after %llu)",
							   s->hdr.segment, tsc, r->s_last_tsc);
				r->s_last_tsc = tsc;
				r->s_have_last = true;
			}
			return 1;
		}
		/* the segment ended; an empty window range leaves no trace */
		if (s->have_prev || !s->by_index) {
			r->s_last_segment = s->hdr.segment;
			r->s_next_rx = s->have_prev ? s->next_rx : s->hdr.rx_seq_start;
			r->s_have_prev = true;
		}
		r->cur_seg++;
		r->seg_started = false;
	}
	return 0;
}

int
mscope_rd_stream_index(struct mscope_trace_reader *r, struct mscope_trace_error *err)
{
	size_t total = 0;

	if (r->indexed)
		return 0;
	r->seg_base = calloc(r->nseg + 1, sizeof(*r->seg_base));
	if (r->seg_base == NULL)
		return mscope_rd_fail(r, err, 0, "out of memory");
	r->rebuilt = 0;
	r->index_note[0] = '\0';
	for (size_t i = 0; i < r->nseg; i++) {
		struct mscope_trace_reader *s = r->seg[i];

		if (mscope_rd_build_index(s, err) < 0) {
			r->err = s->err;
			r->failed = true;
			return -1;
		}
		r->seg_base[i] = total;
		total += s->nframes;
		if (s->rebuilt) {
			const size_t l = strlen(r->index_note);

			r->rebuilt = 1;
			snprintf(r->index_note + l, sizeof(r->index_note) - l, "%ssegment %u: %s",
				 l ? "; " : "", s->hdr.segment, s->index_note);
		}
	}
	r->seg_base[r->nseg] = total;
	r->frames = calloc(total ? total : 1, sizeof(*r->frames));
	if (r->frames == NULL)
		return mscope_rd_fail(r, err, 0, "out of memory");
	for (size_t i = 0; i < r->nseg; i++)
		memcpy(r->frames + r->seg_base[i], r->seg[i]->frames,
		       r->seg[i]->nframes * sizeof(*r->frames));
	r->nframes = total;
	r->indexed = true;
	return 0;
}

static void
stream_restart(struct mscope_trace_reader *r, size_t first_seg)
{
	r->cur_seg = first_seg;
	r->seg_started = false;
	r->s_have_prev = false;
	r->s_have_last = false;
	r->failed = false;
}

int
mscope_rd_stream_window(struct mscope_trace_reader *r, uint64_t t0, uint64_t t1,
			struct mscope_trace_error *err)
{
	if (mscope_rd_stream_index(r, err) < 0)
		return -1;
	for (size_t i = 0; i < r->nseg; i++)
		if (mscope_reader_window(r->seg[i], t0, t1, err) < 0) {
			r->err = r->seg[i]->err;
			return -1;
		}
	r->win = true;
	r->win0 = t0;
	r->win1 = t1;
	stream_restart(r, 0);
	return 0;
}

int
mscope_rd_stream_seek(struct mscope_trace_reader *r, size_t frame, struct mscope_trace_error *err)
{
	size_t k = 0;

	if (mscope_rd_stream_index(r, err) < 0)
		return -1;
	if (frame > r->nframes)
		return mscope_rd_fail(r, err, 0, "seek to frame %zu of %zu", frame, r->nframes);
	while (k < r->nseg && frame >= r->seg_base[k + 1])
		k++;
	for (size_t i = k; i < r->nseg; i++)
		if (mscope_reader_seek(r->seg[i], i == k ? frame - r->seg_base[k] : 0, err) < 0) {
			r->err = r->seg[i]->err;
			return -1;
		}
	stream_restart(r, k);
	return 0;
}

/* ------------------------------------------------------------- grouping */

struct group {
	struct mscope_trace_header hdr;
	size_t n, cap;
	char **paths;
	uint32_t *segs;
};

static int
group_add(struct group *g, const char *path, uint32_t seg)
{
	if (g->n == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 8;
		char **p = realloc(g->paths, cap * sizeof(*p));
		uint32_t *s;

		if (p == NULL)
			return -1;
		g->paths = p;
		s = realloc(g->segs, cap * sizeof(*s));
		if (s == NULL)
			return -1;
		g->segs = s;
		g->cap = cap;
	}
	g->paths[g->n] = strdup(path);
	if (g->paths[g->n] == NULL)
		return -1;
	g->segs[g->n++] = seg;
	return 0;
}

static bool
group_has(const struct group *g, uint32_t seg)
{
	for (size_t i = 0; i < g->n; i++)
		if (g->segs[i] == seg)
			return true;
	return false;
}

/* Insertion sort of a group by segment (groups are short, often sorted). */
static void
group_sort(struct group *g)
{
	for (size_t i = 1; i < g->n; i++) {
		char *p = g->paths[i];
		const uint32_t s = g->segs[i];
		size_t j = i;

		for (; j > 0 && g->segs[j - 1] > s; j--) {
			g->paths[j] = g->paths[j - 1];
			g->segs[j] = g->segs[j - 1];
		}
		g->paths[j] = p;
		g->segs[j] = s;
	}
}

int
mscope_trace_group(const char *const *paths, size_t n, struct mscope_trace_stream **out,
		   size_t *nout, struct mscope_trace_error *err)
{
	struct group *g = NULL;
	size_t ng = 0;

	if (out == NULL || nout == NULL || (paths == NULL && n > 0))
		return -1;
	*out = NULL;
	*nout = 0;
	for (size_t i = 0; i < n; i++) {
		struct mscope_trace_reader *r = mscope_reader_open(paths[i], err);
		size_t k;

		if (r == NULL)
			goto fail;
		for (k = 0; k < ng; k++)
			if (!stream_diff(&g[k].hdr, &r->hdr) && !group_has(&g[k], r->hdr.segment))
				break;
		if (k == ng) {
			struct group *ngp = realloc(g, (ng + 1) * sizeof(*g));

			if (ngp == NULL) {
				mscope_reader_close(r);
				goto oom;
			}
			g = ngp;
			memset(&g[ng], 0, sizeof(g[ng]));
			g[ng++].hdr = r->hdr;
		}
		if (group_add(&g[k], paths[i], r->hdr.segment) < 0) {
			mscope_reader_close(r);
			goto oom;
		}
		mscope_reader_close(r);
	}
	*out = calloc(ng ? ng : 1, sizeof(**out));
	if (*out == NULL)
		goto oom;
	for (size_t k = 0; k < ng; k++) {
		group_sort(&g[k]);
		(*out)[k].paths = g[k].paths;
		(*out)[k].npaths = g[k].n;
		free(g[k].segs);
	}
	*nout = ng;
	free(g);
	return 0;
oom:
	set_err(err, n ? paths[0] : "", "out of memory");
fail:
	for (size_t k = 0; k < ng; k++) {
		for (size_t j = 0; j < g[k].n; j++)
			free(g[k].paths[j]);
		free(g[k].paths);
		free(g[k].segs);
	}
	free(g);
	return -1;
}

void
mscope_trace_group_free(struct mscope_trace_stream *s, size_t n)
{
	if (s == NULL)
		return;
	for (size_t k = 0; k < n; k++) {
		for (size_t j = 0; j < s[k].npaths; j++)
			free(s[k].paths[j]);
		free(s[k].paths);
	}
	free(s);
}
